/**
 * Redis-specific options: the `connection` object (ioredis' RedisOptions minus what the pool owns), the
 * `shared` switch, and how `pool.max` is split between the shared client and the leases.
 * Types come from `ioredis` through `import type`, which is erased: no runtime dependency on the driver.
 */
import type { ClusterOptions, RedisOptions } from 'ioredis';
import { isPlainObject, resolvePoolOptions } from '../../core/index.js';
import type { BackendPoolInit } from '../backend-definition.js';
import type { BackendPoolOptions, ResolvedBackendOptions } from '../backend-options.js';

/**
 * The ioredis options the pool owns: a pooled connection never reconnects or queues on its own (the pool
 * replaces lost connections with backoff), and the timeouts are the pool's.
 */
export const REDIS_OWNED_OPTIONS: Readonly<Record<string, string>> = Object.freeze({
  lazyConnect: 'is set by the pool (it opens connections itself)',
  enableOfflineQueue:
    'is set by the pool: pooled connections fail fast instead of queueing against a dead server',
  offlineQueue: 'is set by the pool: pooled connections fail fast instead of queueing against a dead server',
  retryStrategy: 'is set by the pool: it replaces lost connections itself (see "pool.createRetry")',
  reconnectOnError: 'is set by the pool: it replaces lost connections itself (see "pool.createRetry")',
  maxRetriesPerRequest: 'is set by the pool: it replaces lost connections itself (see "pool.createRetry")',
  commandTimeout: 'use "queryTimeoutMs"',
  connectTimeout: 'use "pool.createTimeoutMs"',
  monitor: 'is not supported by the pool (create a dedicated client for MONITOR)',
});

/** ioredis' options minus what the pool owns (see REDIS_OWNED_OPTIONS). */
export type RedisConnectionOptions = Omit<
  RedisOptions,
  | 'lazyConnect'
  | 'enableOfflineQueue'
  | 'offlineQueue'
  | 'retryStrategy'
  | 'reconnectOnError'
  | 'maxRetriesPerRequest'
  | 'commandTimeout'
  | 'connectTimeout'
  | 'monitor'
>;

/**
 * Redis Cluster: every pooled connection (the shared client and each lease) is an ioredis `Cluster`. `connection`
 * holds the per-node options (credentials, TLS, ...). No `uri` (the nodes are listed here) and no db but 0.
 */
export interface RedisClusterConfig {
  /** Seed nodes, `'host:port'` or `{ host, port }`; the rest of the cluster is discovered from them. */
  nodes: Array<string | { host: string; port: number }>;
  /** ioredis' ClusterOptions, minus what the pool owns (see REDIS_OWNED_CLUSTER_OPTIONS). */
  options?: RedisClusterOptions;
}

/** ioredis' ClusterOptions minus what the pool owns (per-node options go in `connection`). */
export type RedisClusterOptions = Omit<
  ClusterOptions,
  | 'lazyConnect'
  | 'enableOfflineQueue'
  | 'clusterRetryStrategy'
  | 'redisOptions'
  | 'enableReadyCheck'
  | 'maxRedirections'
> & {
  /** How many MOVED/ASK/TRYAGAIN/CLUSTERDOWN redirections a command follows before failing (ioredis: 16). */
  maxRedirections?: number;
};

/**
 * Redis Sentinel: every pooled connection asks the sentinels where the master called `name` is (a failover
 * is followed by the next connection the pool opens). `connection` holds the master's options.
 */
export interface RedisSentinelConfig {
  sentinels: Array<{ host: string; port: number }>;
  /** The master's name, as in `sentinel monitor <name> ...`. */
  name: string;
  /** `master` (default) or `slave` (a replica, for reads). */
  role?: 'master' | 'slave';
  sentinelUsername?: string;
  sentinelPassword?: string;
  /** TLS options for the connections to the sentinels (tls.connect's). */
  sentinelTLS?: Record<string, unknown>;
  enableTLSForSentinelMode?: boolean;
}

export interface RedisPoolOptions extends BackendPoolOptions<RedisConnectionOptions> {
  backend: 'redis';
  /** Connect to a Redis Cluster (exclusive with `sentinel` and `uri`). */
  cluster?: RedisClusterConfig;
  /** Find the master through Redis Sentinel (exclusive with `cluster` and `uri`). */
  sentinel?: RedisSentinelConfig;
  /**
   * `pool.shared`, one multiplexed client for stateless commands (default true). It is one of `pool.max`
   * connections: the leases get `max - 1` (and `min - 1`). `false`: leases only, `pool.shared` throws.
   */
  shared?: boolean;
}

export const REDIS_URI_SCHEMES: readonly string[] = Object.freeze(['redis', 'rediss']);
export const REDIS_OPTION_KEYS: readonly string[] = Object.freeze(['shared', 'cluster', 'sentinel']);

/** ClusterOptions the pool owns, with what to do instead. */
export const REDIS_OWNED_CLUSTER_OPTIONS: Readonly<Record<string, string>> = Object.freeze({
  lazyConnect: 'is set by the pool (it opens connections itself)',
  enableOfflineQueue:
    'is set by the pool: pooled connections fail fast instead of queueing against a dead cluster',
  clusterRetryStrategy: 'is set by the pool: it replaces lost connections itself (see "pool.createRetry")',
  enableReadyCheck: 'is set by the pool (a connection is ready once the cluster says cluster_state:ok)',
  redisOptions: 'use "connection" (it applies to every node)',
});

/** How the pool reaches Redis: one server (`uri`/`connection`), a Redis Cluster, or through Sentinel. */
export type RedisTopology = 'standalone' | 'cluster' | 'sentinel';

export function redisTopology(options: ResolvedBackendOptions): RedisTopology {
  if (options.extras['cluster'] !== undefined) return 'cluster';
  if (options.extras['sentinel'] !== undefined) return 'sentinel';
  return 'standalone';
}

/** Synchronous checks of `uri`, `connection`, `shared` and `pool.max` (called by createPool()). Never echoes a value. */
export function validateRedisOptions(
  options: ResolvedBackendOptions,
  fail: (field: string, reason: string) => never,
): void {
  const topology = validateTopology(options, fail);
  if (options.uri !== undefined) {
    let url: URL;
    try {
      url = new URL(options.uri);
    } catch {
      fail('uri', 'must name one host, as in redis://user:password@host:6379/0');
    }
    for (const key of url.searchParams.keys()) {
      const hint = REDIS_OWNED_OPTIONS[key];
      if (hint !== undefined) fail('uri', `query parameter "${key}" ${hint}`);
    }
    if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d{1,5}$/.test(url.pathname)) {
      fail('uri', 'the path must be a database number, as in redis://host:6379/2');
    }
  }
  const connection = options.connection;
  if (connection !== undefined) {
    for (const [key, hint] of Object.entries(REDIS_OWNED_OPTIONS)) {
      if (connection[key] !== undefined) fail(`connection.${key}`, hint);
    }
    for (const key of ['host', 'username', 'password', 'path', 'connectionName', 'keyPrefix'] as const) {
      const value = connection[key];
      if (value !== undefined && typeof value !== 'string') fail(`connection.${key}`, 'must be a string');
    }
    const port = connection['port'];
    if (port !== undefined && !(Number.isInteger(port) && (port as number) > 0 && (port as number) < 65536)) {
      fail('connection.port', 'must be a whole number between 1 and 65535');
    }
    const db = connection['db'];
    if (db !== undefined && !(Number.isInteger(db) && (db as number) >= 0)) {
      fail('connection.db', 'must be a whole number >= 0');
    }
    if (topology === 'cluster' && db !== undefined && db !== 0) {
      fail('connection.db', 'must be 0 with "cluster" (Redis Cluster has only database 0)');
    }
    if (topology !== 'standalone') {
      for (const key of ['host', 'port', 'path'] as const) {
        if (connection[key] !== undefined) {
          fail(`connection.${key}`, `is not used with "${topology}": list the servers in ${topology}`);
        }
      }
    }
    for (const key of ['sentinels', 'name', 'role', 'sentinelPassword', 'sentinelUsername'] as const) {
      if (connection[key] !== undefined) {
        fail(`connection.${key}`, `use the "sentinel" option (sentinel: { sentinels, name, ... })`);
      }
    }
    const tls = connection['tls'];
    if (tls !== undefined && !isPlainObject(tls) && typeof tls !== 'boolean' && typeof tls !== 'string') {
      fail('connection.tls', "must be an object of TLS options (tls.connect's)");
    }
  }
  const shared = options.extras['shared'];
  if (shared !== undefined && typeof shared !== 'boolean') fail('shared', 'must be true or false');
  const max = options.pool.max;
  if (shared !== false && typeof max === 'number' && max < 2) {
    fail(
      'pool.max',
      `must be at least 2 with the shared client on (it is one of the pool's connections; got ${max}); ` +
        'set "shared: false" for a pool of leases only',
    );
  }
}

/**
 * `cluster` and `sentinel` (exclusive with each other and with `uri`), and that the pool has somewhere to
 * connect (the definition sets `requiresTarget: false` because a cluster needs no `uri` or `connection`).
 */
function validateTopology(
  options: ResolvedBackendOptions,
  fail: (field: string, reason: string) => never,
): RedisTopology {
  const { cluster, sentinel } = options.extras;
  if (cluster !== undefined && sentinel !== undefined) {
    fail('sentinel', 'cannot be combined with "cluster": choose one');
  }
  const topology = redisTopology(options);
  if (topology !== 'standalone' && options.uri !== undefined) {
    fail('uri', `is not used with "${topology}" (it names one server): put credentials in "connection"`);
  }
  if (topology === 'standalone' && options.uri === undefined && options.connection === undefined) {
    fail('uri', 'is required (or "connection" with the driver\'s options, or "cluster", or "sentinel")');
  }
  if (cluster !== undefined) validateCluster(cluster, fail);
  if (sentinel !== undefined) validateSentinel(sentinel, fail);
  return topology;
}

function validateCluster(cluster: unknown, fail: (field: string, reason: string) => never): void {
  if (!isPlainObject(cluster)) fail('cluster', 'must be an object: { nodes: ["host:port", ...] }');
  for (const key of Object.keys(cluster)) {
    if (key !== 'nodes' && key !== 'options') fail(`cluster.${key}`, 'is not an option (nodes, options)');
  }
  const nodes = cluster['nodes'];
  if (!Array.isArray(nodes) || nodes.length === 0) {
    fail('cluster.nodes', 'must be a non-empty array of "host:port" or { host, port }');
  }
  nodes.forEach((node: unknown, i) => validateAddress(node, `cluster.nodes[${i}]`, true, fail));
  const clusterOptions = cluster['options'];
  if (clusterOptions === undefined) return;
  if (!isPlainObject(clusterOptions)) fail('cluster.options', "must be an object of ioredis' ClusterOptions");
  for (const [key, hint] of Object.entries(REDIS_OWNED_CLUSTER_OPTIONS)) {
    if (clusterOptions[key] !== undefined) fail(`cluster.options.${key}`, hint);
  }
  const redirections = clusterOptions['maxRedirections'];
  if (redirections !== undefined && !(Number.isInteger(redirections) && (redirections as number) >= 0)) {
    fail('cluster.options.maxRedirections', 'must be a whole number >= 0');
  }
}

function validateSentinel(sentinel: unknown, fail: (field: string, reason: string) => never): void {
  if (!isPlainObject(sentinel)) fail('sentinel', 'must be an object: { sentinels: [{ host, port }], name }');
  const known = [
    'sentinels',
    'name',
    'role',
    'sentinelUsername',
    'sentinelPassword',
    'sentinelTLS',
    'enableTLSForSentinelMode',
  ];
  for (const key of Object.keys(sentinel)) {
    if (!known.includes(key)) fail(`sentinel.${key}`, `is not an option (${known.join(', ')})`);
  }
  const sentinels = sentinel['sentinels'];
  if (!Array.isArray(sentinels) || sentinels.length === 0) {
    fail('sentinel.sentinels', 'must be a non-empty array of { host, port }');
  }
  sentinels.forEach((node: unknown, i) => validateAddress(node, `sentinel.sentinels[${i}]`, false, fail));
  const name = sentinel['name'];
  if (typeof name !== 'string' || name === '') {
    fail('sentinel.name', 'must be the master\'s name (as in "sentinel monitor <name> ...")');
  }
  const role = sentinel['role'];
  if (role !== undefined && role !== 'master' && role !== 'slave') {
    fail('sentinel.role', 'must be "master" or "slave"');
  }
  for (const key of ['sentinelUsername', 'sentinelPassword'] as const) {
    if (sentinel[key] !== undefined && typeof sentinel[key] !== 'string') {
      fail(`sentinel.${key}`, 'must be a string');
    }
  }
  const tls = sentinel['sentinelTLS'];
  if (tls !== undefined && !isPlainObject(tls)) {
    fail('sentinel.sentinelTLS', "must be an object of TLS options (tls.connect's)");
  }
  const tlsMode = sentinel['enableTLSForSentinelMode'];
  if (tlsMode !== undefined && typeof tlsMode !== 'boolean') {
    fail('sentinel.enableTLSForSentinelMode', 'must be true or false');
  }
}

/** `{ host, port }`, or (`allowString`) `'host:port'`. Never echoes the value (it could be a URL with a password). */
function validateAddress(
  node: unknown,
  field: string,
  allowString: boolean,
  fail: (field: string, reason: string) => never,
): void {
  const expected = allowString ? '"host:port" or { host, port }' : '{ host, port }';
  if (typeof node === 'string') {
    if (!allowString) fail(field, `must be ${expected}`);
    const match = /^([^\s@/:]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})$/.exec(node);
    if (match === null || !isPort(Number(match[2]))) {
      fail(field, `must be ${expected} (credentials go in "connection")`);
    }
    return;
  }
  if (!isPlainObject(node)) fail(field, `must be ${expected}`);
  for (const key of Object.keys(node)) {
    if (key !== 'host' && key !== 'port') fail(`${field}.${key}`, 'is not an option (host, port)');
  }
  if (typeof node['host'] !== 'string' || node['host'] === '') fail(`${field}.host`, 'must be a host name');
  if (!isPort(node['port'])) fail(`${field}.port`, 'must be a whole number between 1 and 65535');
}

function isPort(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) > 0 && (value as number) < 65536;
}

/** `redis://user@host:port/db` (or `rediss://`), without a password, for logs when there is no `uri`. */
export function describeRedisTarget(options: ResolvedBackendOptions): string {
  const c = options.connection ?? {};
  const user = typeof c['username'] === 'string' ? `${encodeURIComponent(c['username'])}@` : '';
  const cluster = options.extras['cluster'] as RedisClusterConfig | undefined;
  if (cluster !== undefined) {
    const nodes = cluster.nodes.map((n) => (typeof n === 'string' ? n : `${n.host}:${n.port}`));
    return `redis-cluster://${user}${nodes.join(',')}`;
  }
  const sentinel = options.extras['sentinel'] as RedisSentinelConfig | undefined;
  if (sentinel !== undefined) {
    const nodes = sentinel.sentinels.map((n) => `${n.host}:${n.port}`);
    const db = typeof c['db'] === 'number' ? c['db'] : 0;
    return `redis-sentinel://${user}${nodes.join(',')}/${encodeURIComponent(sentinel.name)}/${db}`;
  }
  if (typeof c['path'] === 'string') return `redis+unix://${c['path']}`;
  const scheme = c['tls'] !== undefined && c['tls'] !== false ? 'rediss' : 'redis';
  const host = typeof c['host'] === 'string' ? c['host'] : 'localhost';
  const port = typeof c['port'] === 'number' ? c['port'] : 6379;
  const db = typeof c['db'] === 'number' ? c['db'] : 0;
  return `${scheme}://${user}${host}:${port}/${db}`;
}

/** Secrets the generic collector misses (it takes `password`-like keys, not these). */
export function redisSecrets(options: ResolvedBackendOptions): string[] {
  const c = options.connection ?? {};
  const secrets: string[] = [];
  const sentinel = options.extras['sentinel'];
  for (const source of [c, isPlainObject(sentinel) ? sentinel : {}]) {
    const value = source['sentinelPassword'];
    if (typeof value === 'string') secrets.push(value);
  }
  return secrets;
}

/** Whether the pool has a shared client (the `shared` option, default true). */
export function hasSharedClient(options: ResolvedBackendOptions): boolean {
  return options.extras['shared'] !== false;
}

/**
 * The shared client is one of `pool.max` (and of `pool.min`): the engine, which only sees leases, gets
 * `max - 1` and `min - 1`, so the server never sees more than `max` connections from the pool. Invalid
 * values are passed through untouched for the engine to report as the user wrote them.
 */
export function splitConnectionBudget<TConnection, TDriver>(
  init: BackendPoolInit<TConnection, TDriver>,
): BackendPoolInit<TConnection, TDriver> {
  const { options } = init;
  if (!hasSharedClient(options)) return init;
  // min and max as the engine would resolve them (defaults, a preset's min = max), by the engine's own rules.
  let resolved: { min: number; max: number };
  try {
    resolved = resolvePoolOptions({ ...options.pool, name: options.name, factory: REDIS_OPTIONS_FACTORY });
  } catch {
    return init; // the engine reports it, as the user wrote it
  }
  const { min, max } = resolved;
  if (max < 2) return init;
  const pool = Object.freeze({ ...options.pool, max: max - 1, min: Math.max(0, min - 1) });
  return { ...init, options: Object.freeze({ ...options, pool }) };
}

/**
 * What the engine will see of the Redis factory, for resolving options before the pool exists (the budget
 * split): it validates (PING), so keepaliveMs, validateOnBorrow and testOnReturn are allowed.
 */
const REDIS_OPTIONS_FACTORY = Object.freeze({
  create: () => Promise.reject(new Error('unused')),
  destroy: () => Promise.resolve(),
  validate: () => Promise.resolve(true),
});
