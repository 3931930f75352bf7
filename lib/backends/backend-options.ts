/**
 * The options every backend pool takes (the same object the Nest module takes), and their validation.
 * Validation is synchronous, runs in `createPool()`, and throws PoolConfigError naming the pool and the
 * field; it never echoes a URI or a password.
 */
import {
  DEFAULT_POOL_NAME,
  isPlainObject,
  OptionReader,
  PoolConfigError,
  type PoolEngineOptions,
} from '../core/index.js';
import { parseUri } from './redaction.js';

export interface BackendPoolOptions<TConnectionOptions extends object = Record<string, unknown>> {
  /** Names the pool in errors, events, metrics and logs. Default 'default'. */
  name?: string;
  /** Which backend: `postgres`, or one added with registerBackend(). */
  backend: string;
  /** Where to connect, e.g. `postgres://app:secret@127.0.0.1:5432/app?application_name=api`. */
  uri?: string;
  /** Driver connection options (e.g. pg's ClientConfig). Combined with `uri`, the URI wins. */
  connection?: TConnectionOptions;
  /**
   * A query that gets no answer within this many milliseconds rejects with PoolQueryTimeoutError and its
   * connection is destroyed. 0 or omitted: no timeout.
   */
  queryTimeoutMs?: number;
  /** The engine's options (min, max, timeouts, startup, ...). */
  pool?: PoolEngineOptions;
}

/** Options after validation, handed to the backend definition. */
export interface ResolvedBackendOptions {
  readonly name: string;
  readonly backend: string;
  readonly uri: string | undefined;
  readonly connection: Readonly<Record<string, unknown>> | undefined;
  /** Infinity when off. */
  readonly queryTimeoutMs: number;
  readonly pool: Readonly<PoolEngineOptions>;
  /** The backend-specific top-level options (the definition's `optionKeys`), as given. */
  readonly extras: Readonly<Record<string, unknown>>;
}

export const COMMON_OPTION_KEYS: readonly string[] = Object.freeze([
  'name',
  'backend',
  'uri',
  'connection',
  'queryTimeoutMs',
  'pool',
]);

/** What the common validation needs to know about the chosen backend. */
export interface BackendOptionRules {
  /** Accepted URI schemes without the colon, e.g. `['postgres', 'postgresql']`; omitted: any scheme. */
  uriSchemes?: readonly string[];
  /** Backend-specific top-level option keys. */
  optionKeys?: readonly string[];
  /** When true (the default), one of `uri` and `connection` is required. */
  requiresTarget?: boolean;
}

/** Reads and checks `name` first, so every later error can name the pool. */
export function readPoolName(input: unknown): string {
  if (!isPlainObject(input)) {
    throw new PoolConfigError(DEFAULT_POOL_NAME, 'options', `must be an object (got ${describeType(input)})`);
  }
  const name = input['name'];
  if (name === undefined) return DEFAULT_POOL_NAME;
  if (typeof name !== 'string' || name.trim() === '') {
    throw new PoolConfigError(
      DEFAULT_POOL_NAME,
      'name',
      `must be a non-empty string (got ${describeType(name)})`,
    );
  }
  return name;
}

/** Reads `backend`: a non-empty string (whether it is known is the registry's business). */
export function readBackendName(
  poolName: string,
  input: Record<string, unknown>,
  known: readonly string[],
): string {
  const backend = input['backend'];
  const knownText = `known backends: ${known.map((b) => `"${b}"`).join(', ')}`;
  if (backend === undefined) throw new PoolConfigError(poolName, 'backend', `is required; ${knownText}`);
  if (typeof backend !== 'string' || backend === '') {
    throw new PoolConfigError(
      poolName,
      'backend',
      `must be a backend name (got ${describeType(backend)}); ${knownText}`,
    );
  }
  return backend;
}

/** Validates the common fields; backend extras are only checked for being known keys. */
export function resolveBackendOptions(
  input: Record<string, unknown>,
  name: string,
  backend: string,
  rules: BackendOptionRules,
): ResolvedBackendOptions {
  const read = new OptionReader(name, input);
  const extraKeys = rules.optionKeys ?? [];
  read.rejectUnknown([...COMMON_OPTION_KEYS, ...extraKeys]);

  const uri = readUri(name, input['uri'], rules.uriSchemes);
  const connection = input['connection'];
  if (connection !== undefined && !isPlainObject(connection)) {
    read.fail('connection', `must be an object of driver options (got ${describeType(connection)})`);
  }
  if ((rules.requiresTarget ?? true) && uri === undefined && connection === undefined) {
    read.fail('uri', `is required (or "connection" with the driver's options)`);
  }

  const queryTimeoutMs = read.optionalDuration('queryTimeoutMs', 0);

  const rawPool = input['pool'];
  if (rawPool !== undefined && !isPlainObject(rawPool)) {
    read.fail('pool', `must be an object of pool options (got ${describeType(rawPool)})`);
  }
  const pool = rawPool as Record<string, unknown> | undefined;
  for (const reserved of ['name', 'factory']) {
    if (pool !== undefined && reserved in pool) {
      read.fail(
        `pool.${reserved}`,
        `is set by the backend; ${reserved === 'name' ? 'use the top-level "name"' : 'remove it'}`,
      );
    }
  }

  const extras: Record<string, unknown> = {};
  for (const key of extraKeys) if (input[key] !== undefined) extras[key] = input[key];

  return Object.freeze({
    name,
    backend,
    uri,
    connection: connection === undefined ? undefined : Object.freeze({ ...connection }),
    queryTimeoutMs,
    pool: Object.freeze({ ...(pool ?? {}) }) as Readonly<PoolEngineOptions>,
    extras: Object.freeze(extras),
  });
}

/**
 * A well-formed URI with an accepted scheme. Errors describe what is wrong without echoing the input: a
 * malformed URI's password cannot be located, so not even a redacted form is safe to show.
 */
function readUri(
  poolName: string,
  value: unknown,
  schemes: readonly string[] | undefined,
): string | undefined {
  if (value === undefined) return undefined;
  const expected = schemes?.length
    ? `${schemes[0]}://user:password@host:port/database`
    : 'scheme://host:port';
  if (typeof value !== 'string' || value.trim() === '') {
    throw new PoolConfigError(
      poolName,
      'uri',
      `must be a URI string like ${expected} (got ${describeType(value)})`,
    );
  }
  // parseUri also takes the multi-host form (mongodb://a:27017,b:27017/db) that `new URL()` rejects.
  const url = parseUri(value)?.url;
  if (url === undefined) {
    throw new PoolConfigError(poolName, 'uri', `is not a valid URI (expected ${expected})`);
  }
  const scheme = url.protocol.slice(0, -1);
  if (schemes !== undefined && schemes.length > 0 && !schemes.includes(scheme)) {
    throw new PoolConfigError(
      poolName,
      'uri',
      `must start with ${schemes.map((s) => `${s}://`).join(' or ')} (got a "${scheme.slice(0, 20)}:" URI)`,
    );
  }
  return value;
}

/** A credential-free description of a bad value: its type only, never its content. */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value === '' ? 'an empty string' : 'a string';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return typeof value;
}
