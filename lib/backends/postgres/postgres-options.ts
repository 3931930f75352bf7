/**
 * PostgreSQL-specific options: the `connection` object (pg's ClientConfig) and `transaction()` options.
 * Types come from `pg` through `import type`, which is erased: no runtime dependency on the driver.
 */
import type { ClientConfig } from 'pg';
import { isPlainObject, PoolConfigError, type AcquireOptions } from '../../core/index.js';
import type { BackendPoolOptions, ResolvedBackendOptions } from '../backend-options.js';
import type { ReplicaRoutingOptions } from '../routing/routing-options.js';

/**
 * pg's client options, minus what the pool owns: `connectionString` (use `uri`) and the timeouts the pool
 * enforces itself (`connectionTimeoutMillis` → `pool.createTimeoutMs`, `query_timeout` → `queryTimeoutMs`).
 */
export type PostgresConnectionOptions = Omit<
  ClientConfig,
  'connectionString' | 'connectionTimeoutMillis' | 'query_timeout'
>;

/** With `replicas`, `uri`/`connection` is the primary; see ReplicaRoutingOptions. */
export interface PostgresPoolOptions
  extends BackendPoolOptions<PostgresConnectionOptions>, ReplicaRoutingOptions<PostgresConnectionOptions> {
  backend: 'postgres';
  /**
   * How many `query()` calls may share one connection when none is idle, pipelined (pg's pipeline mode,
   * pg 8.23+). 1, the default, is off: every `query()` has a connection to itself. See the README's
   * "Pipelined query()" for what sharing means.
   */
  pipelineDepth?: number;
}

/** Backend-specific top-level option keys. */
export const POSTGRES_OPTION_KEYS: readonly string[] = Object.freeze(['pipelineDepth']);

/** The largest `pipelineDepth` accepted: past a few, a deeper pipeline only queues inside one connection. */
export const MAX_PIPELINE_DEPTH = 64;

/** `pipelineDepth`, validated by validatePostgresOptions; 1 when unset. */
export function readPipelineDepth(options: ResolvedBackendOptions): number {
  const depth = options.extras['pipelineDepth'];
  return typeof depth === 'number' ? depth : 1;
}

export const POSTGRES_URI_SCHEMES: readonly string[] = Object.freeze(['postgres', 'postgresql']);

const OWNED_BY_POOL: Readonly<Record<string, string>> = Object.freeze({
  connectionString: 'use the top-level "uri"',
  connectionTimeoutMillis: 'use "pool.createTimeoutMs"',
  query_timeout: 'use "queryTimeoutMs"',
  pipeline: 'is switched by the pool: use the top-level "pipelineDepth"',
});

/** Synchronous checks of `connection` (called by createPool()). Never echoes a value. */
export function validatePostgresOptions(
  options: ResolvedBackendOptions,
  fail: (field: string, reason: string) => never,
): void {
  const depth = options.extras['pipelineDepth'];
  if (
    depth !== undefined &&
    !(typeof depth === 'number' && Number.isInteger(depth) && depth >= 1 && depth <= MAX_PIPELINE_DEPTH)
  ) {
    fail('pipelineDepth', `must be a whole number from 1 (off) to ${MAX_PIPELINE_DEPTH}`);
  }
  const ownedInUri = ownedUriParameter(options.uri);
  if (ownedInUri !== undefined)
    fail('uri', `sets ?${ownedInUri}, which the pool owns: ${OWNED_BY_POOL[ownedInUri]!}`);
  const connection = options.connection;
  if (connection === undefined) return;
  for (const [key, hint] of Object.entries(OWNED_BY_POOL)) {
    if (connection[key] !== undefined) fail(`connection.${key}`, hint);
  }
  const password = connection['password'];
  if (password !== undefined && typeof password !== 'string' && typeof password !== 'function') {
    fail('connection.password', 'must be a string or a function returning one');
  }
  const port = connection['port'];
  if (
    port !== undefined &&
    !(typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536)
  ) {
    fail('connection.port', 'must be a whole number between 1 and 65535');
  }
  for (const key of ['host', 'user', 'database', 'application_name'] as const) {
    const value = connection[key];
    if (value !== undefined && typeof value !== 'string') fail(`connection.${key}`, 'must be a string');
  }
}

/**
 * The first query parameter of `uri` that the pool owns, if any: pg copies every URI parameter into the
 * client's config, so `?query_timeout=100` would otherwise arm pg's own timer (an untyped error, and the
 * connection lent on) behind the pool's back. Only the query string is read: it holds no password.
 */
function ownedUriParameter(uri: string | undefined): string | undefined {
  if (uri === undefined) return undefined;
  const query = uri.indexOf('?');
  if (query < 0) return undefined;
  const end = uri.indexOf('#', query);
  const parameters = new URLSearchParams(uri.slice(query + 1, end < 0 ? undefined : end));
  for (const key of parameters.keys()) {
    if (Object.hasOwn(OWNED_BY_POOL, key)) return key;
  }
  return undefined;
}

/** `postgres://user@host:port/database`, without a password, for logs when there is no `uri`. */
export function describePostgresTarget(options: ResolvedBackendOptions): string {
  const c = options.connection ?? {};
  const user = typeof c['user'] === 'string' ? `${encodeURIComponent(c['user'])}@` : '';
  const host = typeof c['host'] === 'string' ? c['host'] : 'localhost';
  const port = typeof c['port'] === 'number' ? c['port'] : 5432;
  const database = typeof c['database'] === 'string' ? c['database'] : '';
  return `postgres://${user}${host}:${port}/${encodeURIComponent(database)}`;
}

export type IsolationLevel = 'read uncommitted' | 'read committed' | 'repeatable read' | 'serializable';

const ISOLATION_LEVELS: readonly IsolationLevel[] = [
  'read uncommitted',
  'read committed',
  'repeatable read',
  'serializable',
];

export interface TransactionOptions {
  /** `BEGIN ISOLATION LEVEL ...`; default: the server's default_transaction_isolation. */
  isolation?: IsolationLevel;
  /** `READ ONLY`. */
  readOnly?: boolean;
  /** `DEFERRABLE` (only meaningful for serializable read-only transactions). */
  deferrable?: boolean;
  /** How to wait for the connection. */
  acquire?: AcquireOptions;
}

/** The BEGIN statement for `options`; throws PoolConfigError (field `isolation`, ...) for bad ones. */
export function beginStatement(poolName: string, options: TransactionOptions | undefined): string {
  if (options === undefined) return 'BEGIN';
  if (!isPlainObject(options))
    throw new PoolConfigError(poolName, 'transaction options', 'must be an object');
  const parts = ['BEGIN'];
  const { isolation, readOnly, deferrable } = options;
  if (isolation !== undefined) {
    const level = typeof isolation === 'string' ? isolation.toLowerCase().trim().replace(/\s+/g, ' ') : '';
    if (!(ISOLATION_LEVELS as readonly string[]).includes(level)) {
      throw new PoolConfigError(
        poolName,
        'isolation',
        `must be one of ${ISOLATION_LEVELS.map((l) => `'${l}'`).join(', ')}`,
      );
    }
    parts.push(`ISOLATION LEVEL ${level.toUpperCase()}`);
  }
  for (const [field, value, keyword] of [
    ['readOnly', readOnly, 'READ ONLY'],
    ['deferrable', deferrable, 'DEFERRABLE'],
  ] as const) {
    if (value === undefined) continue;
    if (typeof value !== 'boolean') throw new PoolConfigError(poolName, field, 'must be true or false');
    if (value) parts.push(keyword);
  }
  return parts.join(' ');
}
