/**
 * The backends `createPool()` knows: the built-in ones and those added with `registerBackend()`.
 *
 * `createPool()` is synchronous: it validates every option at once (typed errors naming the pool and the
 * field) and returns the pool; the driver is imported by `start()` (or the first `acquire()`), because
 * loading is asynchronous and drivers are optional peer dependencies.
 */
import { OptionReader, PoolConfigError } from '../core/index.js';
import type { BackendDefinition, BackendPoolInit } from './backend-definition.js';
import {
  COMMON_OPTION_KEYS,
  readBackendName,
  readPoolName,
  resolveBackendOptions,
  type BackendPoolOptions,
  type ResolvedBackendOptions,
} from './backend-options.js';
import { BackendPool } from './backend-pool.js';
import {
  attachReplicaSet,
  replicaFailure,
  ReplicaSet,
  supportsReplicas,
  type RoutedMemberPool,
} from './routing/replica-set.js';
import {
  readReplicaRouting,
  readShardRouting,
  ROUTING_OPTION_KEYS,
  type ShardRoutingOptions,
} from './routing/routing-options.js';
import { ShardedPool, type ShardMemberPool } from './routing/sharded-pool.js';
import { postgresBackend } from './postgres/postgres-backend.js';
import type { PostgresPool } from './postgres/postgres-pool.js';
import type { PostgresPoolOptions } from './postgres/postgres-options.js';
import { mongodbBackend } from './mongodb/mongodb-backend.js';
import type { MongoPool } from './mongodb/mongodb-pool.js';
import type { MongoPoolOptions } from './mongodb/mongodb-options.js';
import { redisBackend } from './redis/redis-backend.js';
import type { RedisPool } from './redis/redis-pool.js';
import type { RedisClusterConfig, RedisPoolOptions } from './redis/redis-options.js';
import type { Cluster } from 'ioredis';

/**
 * Backend name → its options and pool type, so `createPool({ backend: 'postgres', ... })` is typed as a
 * PostgresPool. Backends added later (or by users, through declaration merging on 'nestjs-pool') extend it.
 */
export interface BackendPoolTypes {
  postgres: { options: PostgresPoolOptions; pool: PostgresPool };
  mongodb: { options: MongoPoolOptions; pool: MongoPool };
  redis: { options: RedisPoolOptions; pool: RedisPool };
}

type AnyDefinition = BackendDefinition<unknown, unknown>;

const BUILT_IN: ReadonlyMap<string, AnyDefinition> = new Map<string, AnyDefinition>([
  ['postgres', postgresBackend as AnyDefinition],
  ['mongodb', mongodbBackend as AnyDefinition],
  ['redis', redisBackend as AnyDefinition],
]);

const registered = new Map<string, AnyDefinition>();

/** Names `createPool()` accepts as `backend`, built-in first. */
export function knownBackends(): string[] {
  return [...BUILT_IN.keys(), ...registered.keys()];
}

/**
 * Adds a backend. Its definition says how to open, ping, reset and close one connection (and optionally
 * load a driver); the pool, option validation, redaction, query timeouts and health checks come with it.
 * Throws TypeError for a bad name or definition, or a name already taken.
 */
export function registerBackend<TConnection, TDriver = unknown>(
  name: string,
  definition: BackendDefinition<TConnection, TDriver>,
): void {
  if (typeof name !== 'string' || !/^[a-z][a-z0-9._-]*$/i.test(name)) {
    throw new TypeError(
      `registerBackend(): the name must be a word like "my-backend" (got ${JSON.stringify(name)})`,
    );
  }
  if (BUILT_IN.has(name) || registered.has(name)) {
    throw new TypeError(`registerBackend(): a backend named "${name}" already exists`);
  }
  if (typeof definition !== 'object' || definition === null) {
    throw new TypeError(`registerBackend("${name}"): the definition must be an object`);
  }
  for (const method of REQUIRED_METHODS) {
    if (typeof definition[method] !== 'function') {
      throw new TypeError(`registerBackend("${name}"): definition.${method} must be a function`);
    }
  }
  for (const method of OPTIONAL_METHODS) {
    if (definition[method] !== undefined && typeof definition[method] !== 'function') {
      throw new TypeError(`registerBackend("${name}"): definition.${method} must be a function`);
    }
  }
  registered.set(name, snapshotDefinition(definition as AnyDefinition));
}

const REQUIRED_METHODS = ['connect', 'close', 'ping'] as const;
const OPTIONAL_METHODS = [
  'loadDriver',
  'reset',
  'isBroken',
  'isConnectionError',
  'connectionStats',
  'validateOptions',
  'secrets',
  'describeTarget',
  'createPool',
] as const;

/**
 * A frozen copy of `definition`, so that changing it after registration changes nothing: its own properties,
 * plus its methods wherever they are defined (a definition may be a class instance, its methods on the
 * prototype), each bound to the original so that `this` inside them is what the author expects.
 */
function snapshotDefinition(definition: AnyDefinition): AnyDefinition {
  const copy: Record<string, unknown> = { ...definition };
  for (const method of [...REQUIRED_METHODS, ...OPTIONAL_METHODS]) {
    const value: unknown = definition[method];
    if (typeof value === 'function') copy[method] = value.bind(definition);
  }
  return Object.freeze(copy) as unknown as AnyDefinition;
}

/** Removes a backend added with registerBackend(); built-in ones stay. Returns whether it existed. */
export function unregisterBackend(name: string): boolean {
  return registered.delete(name);
}

/** A backend's options for a sharded pool: the shared options (no `uri`), and `shards` (see ShardRoutingOptions). */
export type ShardedPoolOptions<TOptions extends object> = Omit<TOptions, 'uri' | 'replicas'> &
  ShardRoutingOptions<TOptions>;

/**
 * Creates a pool (not yet started: call `start()`). Validates every option synchronously and throws
 * PoolConfigError naming the pool and the field: unknown backend (listing the known ones), malformed `uri`,
 * `pool.min > pool.max`, an unknown option, ...
 *
 * With `replicas` (backends that support them: postgres), the pool is the primary and `pool.read` goes to
 * the replicas. With `shards`, the result is a ShardedPool of one pool per shard. Errors about a replica or
 * a shard name the pool and the nested field (`replicas[1].uri`, `shards.eu.pool.max`).
 */
export function createPool<K extends keyof BackendPoolTypes>(
  options: ShardedPoolOptions<BackendPoolTypes[K]['options']> & { backend: K },
): ShardedPool<BackendPoolTypes[K]['pool']>;
export function createPool(
  options: RedisPoolOptions & { backend: 'redis'; cluster: RedisClusterConfig },
): RedisPool<Cluster>;
export function createPool<K extends keyof BackendPoolTypes>(
  options: BackendPoolTypes[K]['options'] & { backend: K },
): BackendPoolTypes[K]['pool'];
export function createPool(options: ShardedPoolOptions<BackendPoolOptions>): ShardedPool;
export function createPool<TConnection = unknown>(options: BackendPoolOptions): BackendPool<TConnection>;
export function createPool(
  options: BackendPoolOptions | ShardedPoolOptions<BackendPoolOptions>,
): BackendPool<unknown> | RedisPool<Cluster> | ShardedPool {
  const name = readPoolName(options);
  const input = options as unknown as Record<string, unknown>;
  const backend = readBackendName(name, input, knownBackends());
  const definition = registered.get(backend) ?? BUILT_IN.get(backend);
  if (definition === undefined) {
    throw new PoolConfigError(
      name,
      'backend',
      `unknown backend "${backend.slice(0, 40)}"; known backends: ${knownBackends()
        .map((b) => `"${b}"`)
        .join(', ')} (add your own with registerBackend())`,
    );
  }

  const sharding = readShardRouting(name, input);
  if (sharding !== undefined) {
    // The shared options are validated through each shard (which inherits them); typos are caught here.
    new OptionReader(name, input).rejectUnknown([
      ...COMMON_OPTION_KEYS,
      ...(definition.optionKeys ?? []),
      ...ROUTING_OPTION_KEYS,
    ]);
    readReplicaRouting(name, { ...input, replicas: undefined });
    // Each shard is created (and validated) like a pool of its own; errors are renamed to the field here.
    const shards = sharding.shards.map((shard) => ({
      name: shard.name,
      pool: nested(name, shard.fieldPrefix, () =>
        createPool(shard.options as unknown as BackendPoolOptions),
      ) as unknown as ShardMemberPool,
    }));
    return new ShardedPool({ name, backend, shards, shardKey: sharding.shardKey });
  }

  const replication = readReplicaRouting(name, input);
  const primary = buildPool(definition, resolveOptions(definition, input, name, backend));
  if (replication === undefined) return primary;
  if (!supportsReplicas(primary)) {
    throw new PoolConfigError(name, 'replicas', `are not supported by the "${backend}" backend yet`);
  }
  const replicas = replication.replicas.map((replica) => {
    const pool = nested(name, replica.fieldPrefix, () => {
      const replicaName = replica.options['name'] as string;
      return buildPool(definition, resolveOptions(definition, replica.options, replicaName, backend));
    });
    return { member: replica.member, weight: replica.weight, pool: pool as unknown as RoutedMemberPool };
  });
  const classify = primary[replicaFailure];
  primary[attachReplicaSet](
    new ReplicaSet<RoutedMemberPool>({
      name,
      primary: primary as unknown as RoutedMemberPool,
      replicas,
      routing: replication,
      isMemberFailure: classify === undefined ? undefined : (error) => classify.call(primary, error),
    }),
  );
  return primary;
}

/** Validates one pool's options (routing keys aside: the caller reads those). */
function resolveOptions(
  definition: AnyDefinition,
  input: Record<string, unknown>,
  name: string,
  backend: string,
): ResolvedBackendOptions {
  const resolved = resolveBackendOptions(input, name, backend, {
    uriSchemes: definition.uriSchemes,
    optionKeys: [...(definition.optionKeys ?? []), ...ROUTING_OPTION_KEYS],
    requiresTarget: definition.requiresTarget,
  });
  definition.validateOptions?.(resolved, (field, reason) => {
    throw new PoolConfigError(name, field, reason);
  });
  const extras: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(resolved.extras)) {
    if (!ROUTING_OPTION_KEYS.includes(key)) extras[key] = value;
  }
  return Object.freeze({ ...resolved, extras: Object.freeze(extras) });
}

function buildPool(definition: AnyDefinition, options: ResolvedBackendOptions): BackendPool<unknown> {
  const init: BackendPoolInit<unknown, unknown> = { definition, options };
  return definition.createPool?.(init) ?? new BackendPool<unknown>(init);
}

/**
 * Builds a replica's or a shard's pool; a PoolConfigError about it is re-raised on the pool the user
 * named, with the nested field (`replicas[0].` + `pool.max`). The reason is carried over verbatim (it
 * never holds a value).
 */
function nested<T>(poolName: string, fieldPrefix: string, build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (!(error instanceof PoolConfigError)) throw error;
    const head = `Pool "${error.poolName}": invalid option "${error.field}": `;
    const reason = error.message.startsWith(head) ? error.message.slice(head.length) : error.message;
    const field = error.field.startsWith(fieldPrefix) ? error.field : `${fieldPrefix}${error.field}`;
    throw new PoolConfigError(poolName, field, reason);
  }
}
