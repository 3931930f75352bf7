/**
 * MongoDB-specific options: the `connection` object (the driver's MongoClientOptions), the `database` extra,
 * and how the engine's options map onto the driver's own connection pool. Types come from `mongodb` through
 * `import type`, which is erased: no runtime dependency on the driver.
 *
 * Who decides what:
 * - owned by the pool (rejected in the URI and in `connection`, with the option to use instead):
 *   `maxPoolSize` ← `pool.max`, `minPoolSize` ← `pool.min`, `maxIdleTimeMS` ← `pool.idleTimeoutMs`,
 *   `waitQueueTimeoutMS` ← `pool.acquireTimeoutMs`, `maxConnecting` ← `pool.maxConcurrentCreates`,
 *   `timeoutMS` (ignored by driver 7) ← `queryTimeoutMs`, `dbName` ← `database`;
 * - derived defaults, which the URI or `connection` override: `serverSelectionTimeoutMS` and
 *   `connectTimeoutMS` ← `pool.createTimeoutMs`, `socketTimeoutMS` ← `queryTimeoutMs` + 250 ms (when set);
 * - everything else in the URI (replicaSet, authSource, tls, w, readPreference, heartbeatFrequencyMS, ...) and
 *   in `connection` goes to the driver unchanged; `connection` wins over the URI (the driver's rule).
 */
import type { MongoClientOptions, TransactionOptions as DriverTransactionOptions } from 'mongodb';
import {
  resolvePoolOptions,
  type AcquireOptions,
  type PoolFactory,
  type ResolvedPoolOptions,
} from '../../core/index.js';
import type { BackendPoolOptions, ResolvedBackendOptions } from '../backend-options.js';
import { parseUri } from '../redaction.js';

/** The driver's client options, minus what the pool owns (see the module comment). */
export type MongoConnectionOptions = Omit<
  MongoClientOptions,
  | 'maxPoolSize'
  | 'minPoolSize'
  | 'maxIdleTimeMS'
  | 'waitQueueTimeoutMS'
  | 'maxConnecting'
  | 'timeoutMS'
  | 'dbName'
>;

export interface MongoPoolOptions extends BackendPoolOptions<MongoConnectionOptions> {
  backend: 'mongodb';
  /** The database `use()` and `db` work on. Default: the URI's path (`mongodb://host/app` → `app`), else `test`. */
  database?: string;
}

export interface MongoTransactionOptions extends DriverTransactionOptions {
  /** How to wait for the lease. */
  acquire?: AcquireOptions;
}

export const MONGODB_URI_SCHEMES: readonly string[] = Object.freeze(['mongodb', 'mongodb+srv']);
export const MONGODB_OPTION_KEYS: readonly string[] = Object.freeze(['database']);

/** Driver options the pool sets itself, and what to use instead (keys lower-cased: Mongo options are case-insensitive). */
const OWNED_BY_POOL: ReadonlyMap<string, [name: string, hint: string]> = new Map([
  ['maxpoolsize', ['maxPoolSize', 'use "pool.max"']],
  ['minpoolsize', ['minPoolSize', 'use "pool.min"']],
  ['maxidletimems', ['maxIdleTimeMS', 'use "pool.idleTimeoutMs"']],
  ['waitqueuetimeoutms', ['waitQueueTimeoutMS', 'use "pool.acquireTimeoutMs"']],
  ['maxconnecting', ['maxConnecting', 'use "pool.maxConcurrentCreates"']],
  ['timeoutms', ['timeoutMS', 'use "queryTimeoutMs"']],
  ['dbname', ['dbName', 'use the top-level "database" (or the URI path)']],
]);

/** Derived from the pool's options unless the URI or `connection` sets them. */
const DERIVED = ['serverSelectionTimeoutMS', 'connectTimeoutMS', 'socketTimeoutMS'] as const;

/** How much later than `queryTimeoutMs` the driver's socket timeout fires, so the pool's typed error wins. */
export const SOCKET_TIMEOUT_MARGIN_MS = 250;

/** Everything the client needs, computed once from the validated options. */
export interface MongoClientSettings {
  uri: string;
  database: string;
  clientOptions: MongoClientOptions;
}

const DUMMY_FACTORY: PoolFactory<unknown> = {
  create: () => Promise.resolve({}),
  destroy: () => Promise.resolve(),
};

/** Synchronous checks (called by createPool()). Never echoes a value. */
export function validateMongoOptions(
  options: ResolvedBackendOptions,
  fail: (field: string, reason: string) => never,
): void {
  if (options.uri === undefined) {
    fail(
      'uri',
      'is required (mongodb://user:password@host:port/database); "connection" only adds driver options',
    );
  }
  for (const key of uriOptionKeys(options.uri)) {
    const owned = OWNED_BY_POOL.get(key.toLowerCase());
    if (owned !== undefined) fail('uri', `sets "${owned[0]}", which the pool owns: ${owned[1]}`);
  }
  const connection = options.connection ?? {};
  for (const key of Object.keys(connection)) {
    const owned = OWNED_BY_POOL.get(key.toLowerCase());
    if (owned !== undefined) fail(`connection.${key}`, `is owned by the pool: ${owned[1]}`);
  }
  const database = options.extras['database'];
  if (database !== undefined) {
    const reason = databaseNameProblem(database);
    if (reason !== undefined) fail('database', reason);
  } else {
    const fromUri = databaseFromUri(options.uri);
    const reason = fromUri === undefined ? undefined : databaseNameProblem(fromUri);
    if (reason !== undefined) fail('uri', `names an invalid database: ${reason}`);
  }
}

/** The driver settings for a validated pool: the URI as given, plus the mapped and derived options. */
export function mongoClientSettings(options: ResolvedBackendOptions): MongoClientSettings {
  const engine: ResolvedPoolOptions = resolvePoolOptions(
    { ...options.pool, name: options.name, factory: DUMMY_FACTORY },
    { fieldPrefix: 'pool.' },
  );
  const connection = { ...(options.connection as MongoClientOptions | undefined) };
  const given = new Set(
    [...uriOptionKeys(options.uri), ...Object.keys(connection)].map((k) => k.toLowerCase()),
  );

  const derived: Partial<Record<(typeof DERIVED)[number], number>> = {};
  if (isFinitePositive(engine.createTimeoutMs)) {
    derived.serverSelectionTimeoutMS = engine.createTimeoutMs;
    derived.connectTimeoutMS = engine.createTimeoutMs;
  }
  if (isFinitePositive(options.queryTimeoutMs)) {
    derived.socketTimeoutMS = options.queryTimeoutMs + SOCKET_TIMEOUT_MARGIN_MS;
  }
  const clientOptions: MongoClientOptions = { ...connection };
  for (const key of DERIVED) {
    const value = derived[key];
    if (value !== undefined && !given.has(key.toLowerCase())) clientOptions[key] = value;
  }
  clientOptions.maxPoolSize = engine.max;
  clientOptions.minPoolSize = engine.min;
  clientOptions.maxIdleTimeMS = isFinitePositive(engine.idleTimeoutMs) ? engine.idleTimeoutMs : 0;
  clientOptions.waitQueueTimeoutMS = isFinitePositive(engine.acquireTimeoutMs) ? engine.acquireTimeoutMs : 0;
  clientOptions.maxConnecting = engine.maxConcurrentCreates;

  const database =
    (options.extras['database'] as string | undefined) ?? databaseFromUri(options.uri) ?? 'test';
  return { uri: options.uri!, database, clientOptions };
}

/** Secrets the generic collector misses: Mongo's own secret-bearing URI parameters and options. */
export function mongoSecrets(options: ResolvedBackendOptions): string[] {
  const secrets: string[] = [];
  const url = options.uri === undefined ? undefined : parseUri(options.uri)?.url;
  for (const [key, value] of url?.searchParams ?? []) {
    const lower = key.toLowerCase();
    if (lower === 'tlscertificatekeyfilepassword' && value !== '')
      secrets.push(value, encodeURIComponent(value));
    if (lower === 'authmechanismproperties') {
      for (const match of value.matchAll(/AWS_SESSION_TOKEN:([^,]+)/gi)) secrets.push(match[1]!);
    }
  }
  const tlsPassword = options.connection?.['tlsCertificateKeyFilePassword'];
  if (typeof tlsPassword === 'string') secrets.push(tlsPassword);
  return secrets;
}

function uriOptionKeys(uri: string | undefined): string[] {
  const url = uri === undefined ? undefined : parseUri(uri)?.url;
  return url === undefined ? [] : [...url.searchParams.keys()];
}

function databaseFromUri(uri: string | undefined): string | undefined {
  const url = uri === undefined ? undefined : parseUri(uri)?.url;
  const path = url?.pathname.replace(/^\//, '') ?? '';
  if (path === '') return undefined;
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** MongoDB's rules for database names (the subset every platform shares). */
function databaseNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '') return 'must be a non-empty string';
  if (Buffer.byteLength(name) >= 64) return 'must be shorter than 64 bytes';
  if (/[/\\. "$*<>:|?\0]/.test(name)) return 'must not contain any of / \\ . " $ * < > : | ? or spaces';
  return undefined;
}

function isFinitePositive(value: number): boolean {
  return value > 0 && value < Infinity;
}
