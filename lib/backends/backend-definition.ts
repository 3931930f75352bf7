/**
 * What a backend is: how to load its driver and how to open, check, clean and close one connection. The
 * built-in backends (postgres, and later redis and mongodb) are definitions like any other, and
 * `registerBackend()` takes the same shape, so a user's backend goes through the same public path, option
 * validation, redaction, query timeouts and health checks included.
 */
import type { PoolEngineOptions } from '../core/index.js';
import type { BackendPool } from './backend-pool.js';
import type { ResolvedBackendOptions } from './backend-options.js';
import type { Redactor } from './redaction.js';

/** What a definition's functions get to know about the pool they serve. */
export interface BackendContext<TConnection = unknown, TDriver = unknown> {
  readonly poolName: string;
  readonly backend: string;
  /** The validated options, secrets included: use them to connect, never print them. */
  readonly options: ResolvedBackendOptions;
  /** The loaded driver (what `loadDriver` resolved). Throws if read before it is loaded. */
  readonly driver: TDriver;
  /** The pool's redactor: scrub every error a definition throws or reports. */
  readonly redactor: Redactor;
  /**
   * The connection broke on its own (a socket error or an end while idle or lent). The pool drops it (it is
   * never lent again) and emits `'error'` with phase `connection`. Never throws; idempotent.
   */
  connectionLost(connection: TConnection, error: unknown): void;
  /** Like connectionLost, without the event: for failures the caller already hears about (a query timeout). */
  discard(connection: TConnection, error: unknown): void;
}

/** Per-connection query statistics a backend reports through `connectionStats`. */
export interface BackendConnectionStats {
  /** Queries (PostgreSQL) or commands (Redis, MongoDB) run on the connection. */
  readonly queries: number;
  /** Their total duration, in milliseconds. */
  readonly totalQueryMs: number;
  /** The last failed query's error message, redacted. */
  readonly lastError?: string;
}

/** The arguments a pool class is constructed with; `createPool` builds them. */
export interface BackendPoolInit<TConnection = unknown, TDriver = unknown> {
  readonly definition: BackendDefinition<TConnection, TDriver>;
  readonly options: ResolvedBackendOptions;
}

export interface BackendDefinition<TConnection = unknown, TDriver = unknown> {
  /** The npm package the backend needs, for messages (`loadDriver` does the loading). */
  readonly driverPackage?: string;
  /** Accepted `uri` schemes, without the colon (e.g. `['postgres', 'postgresql']`). Omitted: any scheme. */
  readonly uriSchemes?: readonly string[];
  /** Backend-specific top-level options besides the common ones; anything else is rejected. */
  readonly optionKeys?: readonly string[];
  /** When true (the default), the user must give `uri` or `connection`. */
  readonly requiresTarget?: boolean;
  /**
   * Engine option defaults for this backend, under the user's `pool` options (e.g. `validateOnBorrow: false`
   * when a "connection" is a lease over a driver that checks its own sockets).
   */
  readonly poolDefaults?: Readonly<PoolEngineOptions>;

  /**
   * Synchronous checks of `connection` and the extras, run by createPool(). Report a problem with
   * `fail(field, reason)` (it throws PoolConfigError naming the pool). Never put a value in the reason.
   */
  validateOptions?(options: ResolvedBackendOptions, fail: (field: string, reason: string) => never): void;
  /** Secrets the generic collector can't find (it already takes the URI's and `connection.password`-like keys). */
  secrets?(options: ResolvedBackendOptions): Iterable<string | undefined>;
  /** A log-safe description of where the pool connects when there is no `uri` (e.g. `postgres://app@db:5432/app`). */
  describeTarget?(options: ResolvedBackendOptions): string;

  /**
   * Loads the driver, once per pool, from `start()` or the first `acquire()`: use the `loadDriver()` helper
   * so a missing package becomes PoolDriverMissingError. Omitted: the backend needs no driver.
   */
  loadDriver?(context: Omit<BackendContext<TConnection, TDriver>, 'driver'>): Promise<TDriver>;

  /** Opens a connection. Honour `signal` (create timeout, close): abort the attempt and release its socket. */
  connect(signal: AbortSignal, context: BackendContext<TConnection, TDriver>): Promise<TConnection>;
  /** Closes a connection; must not hang (bound it, then force the socket). */
  close(connection: TConnection, context: BackendContext<TConnection, TDriver>): Promise<void>;
  /** Proves the connection works (e.g. `SELECT 1`); throws otherwise. Used for validation and checkHealth(). */
  ping(
    connection: TConnection,
    signal: AbortSignal,
    context: BackendContext<TConnection, TDriver>,
  ): Promise<void>;
  /**
   * Cleans a returned connection (e.g. ROLLBACK); a throw or rejection destroys it. Return nothing
   * (synchronously) when there is nothing to clean, so the connection is available again at once.
   */
  reset?(connection: TConnection, context: BackendContext<TConnection, TDriver>): Promise<void> | void;
  /** Did `error`, thrown while the connection was lent, leave it unusable? */
  isBroken?(connection: TConnection, error: unknown, context: BackendContext<TConnection, TDriver>): boolean;
  /**
   * Is `error` the driver saying the connection itself failed (socket reset or closed, session ended by the
   * server), as opposed to a statement the server refused or the caller's own error? When a call on a
   * broken connection failed with such an error, the caller gets PoolConnectionError (the driver's error
   * as its `cause`). Omitted: every error of a call whose connection `isBroken` condemned counts.
   */
  isConnectionError?(error: unknown, context: BackendContext<TConnection, TDriver>): boolean;

  /**
   * What has run on `connection`, for `pool.connections()`: the queries (or commands) it ran, their total
   * duration in milliseconds, and the last one's error message if one failed (redact it with the context's
   * redactor). Called only when someone asks for the list, so it may allocate; but keep the counting behind
   * it cheap (a counter and a clock read per query), as it runs on every query. Omitted, or `undefined` for a
   * connection: it shows 0 queries.
   */
  connectionStats?(connection: TConnection): BackendConnectionStats | undefined;

  /** Builds the pool object (a BackendPool subclass with backend methods such as `query`). Default: BackendPool. */
  createPool?(init: BackendPoolInit<TConnection, TDriver>): BackendPool<TConnection>;
}
