/**
 * The routing options createPool() takes on top of a backend's: `replicas` (one primary, reads balanced over
 * replicas) and `shards` (one pool per shard, chosen by key). Validation is synchronous and names the pool
 * the user configured and the field (`replicas[1].weight`, `shards.eu.uri`); it never echoes a value.
 *
 * A replica or a shard is configured like a pool of its own, and inherits what it does not set: the
 * top-level `connection` (merged under its own), `pool`, `queryTimeoutMs`. Never the top-level `uri`: a
 * replica that silently connected to the primary would look healthy and carry no read load away.
 */
import { isPlainObject, OptionReader, PoolConfigError, type PoolEngineOptions } from '../../core/index.js';
import {
  BALANCE_STRATEGIES,
  DEFAULT_BALANCE_STRATEGY,
  type BalanceStrategyName,
} from '../../core/balance-strategy.js';
import { MAX_MEMBER_WEIGHT } from '../../core/pool-group.js';
import { describeType } from '../backend-options.js';

/** What happens to reads when no replica is healthy. */
export type ReadFallback = 'primary' | 'fail';

export interface RoutingHealthCheckOptions {
  /** Every replica is checked this often, so a silent failure is found before a caller hits it. 0: off. Default 5000. */
  intervalMs?: number;
  /** A replica that is out of the rotation is re-checked this often. Default 1000. */
  recheckIntervalMs?: number;
  /** Bound on one check (acquire + ping). Default 1000. */
  timeoutMs?: number;
}

/**
 * One replica: its URI, or an object like a pool's options (plus `weight` and `name`). `undefined` is
 * accepted by the type so that `process.env.REPLICA_URL` compiles; at runtime an undefined or empty URI is
 * a PoolConfigError naming the pool and the field (`replicas[0].uri`).
 */
export type ReplicaOptions<TConnectionOptions extends object = Record<string, unknown>> =
  | string
  | undefined
  | {
      /** Names the member in metrics and health (`users.replica[eu-1]`); default its index. */
      name?: string;
      uri?: string;
      /** Merged over the primary's `connection`. */
      connection?: TConnectionOptions;
      /** Engine options, merged over the primary's `pool`. */
      pool?: PoolEngineOptions;
      queryTimeoutMs?: number;
      /** For `balance: 'weighted'`: a whole number from 1. Default 1. */
      weight?: number;
    };

export interface ReplicaRoutingOptions<TConnectionOptions extends object = Record<string, unknown>> {
  /**
   * Read replicas: `pool.read.query()` goes to one of them, `pool.query()` / `transaction()` to the primary
   * (`uri`). Without replicas, `pool.read` is the primary itself.
   */
  replicas?: readonly ReplicaOptions<TConnectionOptions>[];
  /** How reads are spread over healthy replicas. Default `least-active`. */
  balance?: BalanceStrategyName;
  /** With no healthy replica: `primary` (default) runs reads on the primary, `fail` rejects them. */
  readFallback?: ReadFallback;
  healthCheck?: RoutingHealthCheckOptions;
}

export const REPLICA_OPTION_KEYS: readonly string[] = Object.freeze([
  'replicas',
  'balance',
  'readFallback',
  'healthCheck',
]);
export const SHARD_OPTION_KEYS: readonly string[] = Object.freeze(['shards', 'shardKey']);
export const ROUTING_OPTION_KEYS: readonly string[] = Object.freeze([
  ...REPLICA_OPTION_KEYS,
  ...SHARD_OPTION_KEYS,
]);

export const DEFAULT_ROUTING_CHECK_INTERVAL_MS = 5_000;
export const DEFAULT_ROUTING_RECHECK_INTERVAL_MS = 1_000;
export const DEFAULT_ROUTING_CHECK_TIMEOUT_MS = 1_000;

export interface ResolvedRoutingHealthCheck {
  /** 0 when off. */
  readonly intervalMs: number;
  readonly recheckIntervalMs: number;
  readonly timeoutMs: number;
}

export interface ResolvedReplica {
  /** The member's name (`replica[0]` or the given name). */
  readonly member: string;
  readonly weight: number;
  /** Field prefix for errors about it: `replicas[0].`. */
  readonly fieldPrefix: string;
  /** The replica's own pool options (name `users.replica[0]`), ready for validation as any pool's. */
  readonly options: Record<string, unknown>;
}

export interface ResolvedReplicaRouting {
  readonly replicas: readonly ResolvedReplica[];
  readonly balance: BalanceStrategyName;
  readonly readFallback: ReadFallback;
  readonly healthCheck: ResolvedRoutingHealthCheck;
}

const REPLICA_KEYS = ['name', 'uri', 'connection', 'pool', 'queryTimeoutMs', 'weight'];
const MEMBER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$/;

/** The member pool's name: `users.replica[0]`, `orders.shard[eu]`. */
export function memberPoolName(poolName: string, role: 'replica' | 'shard', member: string): string {
  return role === 'replica' && member.startsWith('replica[')
    ? `${poolName}.${member}`
    : `${poolName}.${role}[${member}]`;
}

/**
 * Reads `replicas`, `balance`, `readFallback` and `healthCheck`. undefined when `replicas` is absent (the
 * other three are then accepted and unused, so one config can serve deployments with and without replicas).
 */
export function readReplicaRouting(
  poolName: string,
  input: Record<string, unknown>,
): ResolvedReplicaRouting | undefined {
  const read = new OptionReader(poolName, input);
  const balance = readBalance(read, input['balance']);
  const readFallback = input['readFallback'] ?? 'primary';
  if (readFallback !== 'primary' && readFallback !== 'fail') {
    read.fail('readFallback', `must be 'primary' or 'fail' (got ${describeType(readFallback)})`);
  }
  const healthCheck = readHealthCheck(poolName, input['healthCheck']);
  const raw = input['replicas'];
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw))
    read.fail('replicas', `must be an array of URIs or objects (got ${describeType(raw)})`);
  const list = raw as unknown[];
  if (list.length === 0 && readFallback === 'fail') {
    read.fail('readFallback', `'fail' needs at least one replica (reads would always fail)`);
  }
  const seen = new Set<string>();
  const replicas = list.map((entry, index) => {
    const prefix = `replicas[${index}].`;
    const replica = readReplica(poolName, entry, index, prefix);
    if (seen.has(replica.member))
      read.fail(`${prefix}name`, `"${replica.member}" is used by another replica`);
    seen.add(replica.member);
    return {
      ...replica,
      fieldPrefix: prefix,
      options: inheritOptions(input, replica.own, memberPoolName(poolName, 'replica', replica.member)),
    };
  });
  return Object.freeze({
    replicas: Object.freeze(
      replicas.map(({ member, weight, fieldPrefix, options }) => ({ member, weight, fieldPrefix, options })),
    ),
    balance,
    readFallback: readFallback as ReadFallback,
    healthCheck,
  });
}

function readReplica(
  poolName: string,
  entry: unknown,
  index: number,
  prefix: string,
): { member: string; weight: number; own: Record<string, unknown> } {
  const fail = (field: string, reason: string): never => {
    throw new PoolConfigError(poolName, `${prefix}${field}`, reason);
  };
  const fallbackName = `replica[${index}]`;
  const missing = describeMissingUri(entry);
  if (missing !== undefined) {
    fail(
      'uri',
      `must be a URI string or an object with "uri" (got ${missing}; is its environment variable set?)`,
    );
  }
  if (typeof entry === 'string') return { member: fallbackName, weight: 1, own: { uri: entry } };
  if (!isPlainObject(entry)) {
    throw new PoolConfigError(
      poolName,
      `replicas[${index}]`,
      `must be a URI string or an object with "uri" (got ${describeType(entry)})`,
    );
  }
  new OptionReader(poolName, entry, prefix).rejectUnknown(REPLICA_KEYS);
  const name = entry['name'];
  if (name !== undefined && (typeof name !== 'string' || !MEMBER_NAME.test(name))) {
    fail('name', 'must be 1 to 63 letters, digits or _ . : - (starting with a letter or digit)');
  }
  if (entry['uri'] === undefined && entry['connection'] === undefined) {
    fail('uri', `is required (or "connection"); a replica does not inherit the primary's uri`);
  }
  const weight = new OptionReader(poolName, entry, prefix).number('weight', 1, {
    min: 1,
    max: MAX_MEMBER_WEIGHT,
    integer: true,
  });
  const { name: _name, weight: _weight, ...own } = entry;
  return { member: (name as string | undefined) ?? fallbackName, weight, own };
}

/**
 * How a replica's or a shard's URI given as a plain value is missing (`undefined`, typically an unset
 * environment variable, or an empty string), never the value itself; undefined when it is not missing.
 */
function describeMissingUri(value: unknown): string | undefined {
  if (value === undefined) return 'undefined';
  if (typeof value !== 'string' || value.trim() !== '') return undefined;
  return value === '' ? 'an empty string' : 'a blank string';
}

/** A member's options: the parent's common ones (no `uri`, no routing keys) under the member's own. */
export function inheritOptions(
  parent: Record<string, unknown>,
  own: Record<string, unknown>,
  memberName: string,
): Record<string, unknown> {
  const base: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parent)) {
    if (key === 'uri' || key === 'name' || ROUTING_OPTION_KEYS.includes(key)) continue;
    base[key] = value;
  }
  const merged: Record<string, unknown> = { ...base, ...own, name: memberName };
  for (const key of ['connection', 'pool'] as const) {
    const mine = own[key];
    const theirs = parent[key];
    if (isPlainObject(mine) && isPlainObject(theirs)) merged[key] = { ...theirs, ...mine };
  }
  return merged;
}

function readBalance(read: OptionReader, value: unknown): BalanceStrategyName {
  if (value === undefined) return DEFAULT_BALANCE_STRATEGY;
  if (typeof value !== 'string' || !(BALANCE_STRATEGIES as readonly string[]).includes(value)) {
    read.fail(
      'balance',
      `must be one of ${BALANCE_STRATEGIES.map((s) => `'${s}'`).join(', ')} (got ${describeType(value)})`,
    );
  }
  return value as BalanceStrategyName;
}

function readHealthCheck(poolName: string, value: unknown): ResolvedRoutingHealthCheck {
  if (value === undefined) {
    return Object.freeze({
      intervalMs: DEFAULT_ROUTING_CHECK_INTERVAL_MS,
      recheckIntervalMs: DEFAULT_ROUTING_RECHECK_INTERVAL_MS,
      timeoutMs: DEFAULT_ROUTING_CHECK_TIMEOUT_MS,
    });
  }
  if (!isPlainObject(value)) {
    throw new PoolConfigError(poolName, 'healthCheck', `must be an object (got ${describeType(value)})`);
  }
  const read = new OptionReader(poolName, value, 'healthCheck.');
  read.rejectUnknown(['intervalMs', 'recheckIntervalMs', 'timeoutMs']);
  return Object.freeze({
    intervalMs: read.number('intervalMs', DEFAULT_ROUTING_CHECK_INTERVAL_MS, { min: 0, max: 86_400_000 }),
    recheckIntervalMs: read.number('recheckIntervalMs', DEFAULT_ROUTING_RECHECK_INTERVAL_MS, {
      min: 0,
      max: 86_400_000,
      exclusiveMin: true,
    }),
    timeoutMs: read.number('timeoutMs', DEFAULT_ROUTING_CHECK_TIMEOUT_MS, {
      min: 0,
      max: 600_000,
      exclusiveMin: true,
    }),
  });
}

// -----------------------------------------------------------------------------------------------------
// Shards
// -----------------------------------------------------------------------------------------------------

/** What a shard key may be: its `String()` is hashed (or handed to `shardKey`). */
export type ShardKey = string | number | bigint;

/**
 * One shard: its URI, or an object like a pool's options (replicas included). `undefined` is accepted by the
 * type so that `process.env.SHARD_URL` compiles; at runtime an undefined or empty URI is a PoolConfigError
 * naming the pool and the field (`shards.eu.uri`).
 */
export type ShardOptions<TPoolOptions extends object = Record<string, unknown>> =
  string | undefined | Omit<Partial<TPoolOptions>, 'name' | 'backend' | 'shards' | 'shardKey'>;

export interface ShardRoutingOptions<TPoolOptions extends object = Record<string, unknown>> {
  /** Shard name → where it is. Each shard is a pool of its own (`orders.shard[eu]`). */
  shards: Readonly<Record<string, ShardOptions<TPoolOptions>>>;
  /**
   * Which shard holds `key`. Default: rendezvous (highest random weight) hashing of `String(key)` over the
   * shard names, so adding a shard moves only the keys the new shard wins (about 1/n of them).
   */
  shardKey?: (key: ShardKey) => string;
}

export interface ResolvedShard {
  readonly name: string;
  /** The shard's own pool options (name `orders.shard[eu]`), to be created like any pool's. */
  readonly options: Record<string, unknown>;
  /** Field prefix for errors about it: `shards.eu.`. */
  readonly fieldPrefix: string;
}

export interface ResolvedShardRouting {
  readonly shards: readonly ResolvedShard[];
  readonly shardKey: ((key: ShardKey) => string) | undefined;
}

/** Reads `shards` and `shardKey`; undefined when `shards` is absent (then `shardKey` is an error). */
export function readShardRouting(
  poolName: string,
  input: Record<string, unknown>,
): ResolvedShardRouting | undefined {
  const read = new OptionReader(poolName, input);
  const raw = input['shards'];
  const shardKey = input['shardKey'];
  if (shardKey !== undefined && typeof shardKey !== 'function') {
    read.fail('shardKey', `must be a function (key) => shard name (got ${describeType(shardKey)})`);
  }
  if (raw === undefined) {
    if (shardKey !== undefined) read.fail('shardKey', 'needs "shards"');
    return undefined;
  }
  if (!isPlainObject(raw)) {
    read.fail('shards', `must be an object of shard name → URI or options (got ${describeType(raw)})`);
  }
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length === 0) read.fail('shards', 'needs at least one shard');
  if (input['uri'] !== undefined) read.fail('uri', 'give each shard its own "uri" (under "shards")');
  if (input['replicas'] !== undefined)
    read.fail('replicas', 'put replicas inside each shard (shards.<name>.replicas)');
  const shards = entries.map(([name, value]) => {
    const fieldPrefix = `shards.${name}.`;
    if (!MEMBER_NAME.test(name)) {
      read.fail(
        `shards.${name.slice(0, 40)}`,
        'a shard name must be 1 to 63 letters, digits or _ . : - (starting with a letter or digit)',
      );
    }
    const missing = describeMissingUri(value);
    if (missing !== undefined) {
      read.fail(
        `${fieldPrefix}uri`,
        `must be a URI string or an object of pool options (got ${missing}; is its environment variable set?)`,
      );
    }
    let own: Record<string, unknown>;
    if (typeof value === 'string') own = { uri: value };
    else if (isPlainObject(value)) own = value;
    else {
      throw new PoolConfigError(
        poolName,
        `shards.${name}`,
        `must be a URI string or an object of pool options (got ${describeType(value)})`,
      );
    }
    for (const reserved of ['name', 'backend', 'shards', 'shardKey']) {
      if (own[reserved] !== undefined) read.fail(`${fieldPrefix}${reserved}`, 'is set by the sharded pool');
    }
    if (own['uri'] === undefined && own['connection'] === undefined) {
      read.fail(`${fieldPrefix}uri`, 'is required (or "connection")');
    }
    return Object.freeze({
      name,
      fieldPrefix,
      options: inheritShardOptions(input, own, memberPoolName(poolName, 'shard', name)),
    });
  });
  return Object.freeze({
    shards: Object.freeze(shards),
    shardKey: shardKey as ResolvedShardRouting['shardKey'],
  });
}

/** Like inheritOptions, and a shard also inherits the replica settings (balance, readFallback, healthCheck). */
function inheritShardOptions(
  parent: Record<string, unknown>,
  own: Record<string, unknown>,
  memberName: string,
): Record<string, unknown> {
  const merged = inheritOptions(parent, own, memberName);
  for (const key of ['balance', 'readFallback', 'healthCheck']) {
    if (merged[key] === undefined && parent[key] !== undefined) merged[key] = parent[key];
  }
  return merged;
}
