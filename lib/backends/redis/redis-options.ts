/**
 * Redis-specific options: the `connection` object (ioredis' RedisOptions minus what the pool owns), the
 * `shared` switch, and how `pool.max` is split between the shared client and the leases.
 * Types come from `ioredis` through `import type`, which is erased: no runtime dependency on the driver.
 */
import type { RedisOptions } from 'ioredis';
import { isPlainObject, POOL_DEFAULTS } from '../../core/index.js';
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

export interface RedisPoolOptions extends BackendPoolOptions<RedisConnectionOptions> {
  backend: 'redis';
  /**
   * `pool.shared`, one multiplexed client for stateless commands (default true). It is one of `pool.max`
   * connections: the leases get `max - 1` (and `min - 1`). `false`: leases only, `pool.shared` throws.
   */
  shared?: boolean;
}

export const REDIS_URI_SCHEMES: readonly string[] = Object.freeze(['redis', 'rediss']);
export const REDIS_OPTION_KEYS: readonly string[] = Object.freeze(['shared']);

/** Synchronous checks of `uri`, `connection`, `shared` and `pool.max` (called by createPool()). Never echoes a value. */
export function validateRedisOptions(
  options: ResolvedBackendOptions,
  fail: (field: string, reason: string) => never,
): void {
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

/** `redis://user@host:port/db` (or `rediss://`), without a password, for logs when there is no `uri`. */
export function describeRedisTarget(options: ResolvedBackendOptions): string {
  const c = options.connection ?? {};
  if (typeof c['path'] === 'string') return `redis+unix://${c['path']}`;
  const scheme = c['tls'] !== undefined && c['tls'] !== false ? 'rediss' : 'redis';
  const user = typeof c['username'] === 'string' ? `${encodeURIComponent(c['username'])}@` : '';
  const host = typeof c['host'] === 'string' ? c['host'] : 'localhost';
  const port = typeof c['port'] === 'number' ? c['port'] : 6379;
  const db = typeof c['db'] === 'number' ? c['db'] : 0;
  return `${scheme}://${user}${host}:${port}/${db}`;
}

/** Secrets the generic collector misses (it takes `password`-like keys, not these). */
export function redisSecrets(options: ResolvedBackendOptions): string[] {
  const c = options.connection ?? {};
  const secrets: string[] = [];
  for (const key of ['sentinelPassword']) {
    const value = c[key];
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
  const max = options.pool.max ?? POOL_DEFAULTS.max;
  const min = options.pool.min ?? POOL_DEFAULTS.min;
  const valid = (n: unknown): n is number => typeof n === 'number' && (Number.isInteger(n) || n === Infinity);
  if (!valid(max) || !valid(min) || max < 2 || min < 0 || min > max) return init;
  const pool = Object.freeze({ ...options.pool, max: max - 1, min: Math.max(0, min - 1) });
  return { ...init, options: Object.freeze({ ...options, pool }) };
}
