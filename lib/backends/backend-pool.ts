/**
 * BackendPool<TConnection>: the engine's Pool wired to a backend definition, with what every backend pool
 * adds on top of the engine: the driver loaded on `start()`, connections that break on their own never
 * lent again, credentials kept out of every output, and `checkHealth()`. Backends subclass it for their
 * own conveniences (PostgresPool adds `query` and `transaction`).
 *
 * Everything that holds a secret (the options, the engine, whose factory closes over them) lives in
 * `#private` fields, which neither `util.inspect` nor `JSON.stringify` nor `Object.keys` can reach.
 */
import {
  Pool,
  PoolError,
  toError,
  type AcquireOptions,
  type CloseOptions,
  type DrainOptions,
  type DrainResult,
  type Lease,
  type PoolEventListener,
  type PoolEventName,
  type PoolFactory,
  type PoolMetrics,
  type PoolState,
  type ResolvedPoolOptions,
  PoolConfigError,
  resolvePoolOptions,
} from '../core/index.js';
import type { PoolConnectionInfo, PoolConnectionState, PoolHistograms } from '../core/pool.js';
import type { BackendContext, BackendDefinition, BackendPoolInit } from './backend-definition.js';
import {
  DEFAULT_HEALTH_TIMEOUT_MS,
  type HealthCheckOptions,
  type HealthCheckResult,
} from './backend-health.js';
import type { ResolvedBackendOptions } from './backend-options.js';
import { PoolConnectionError } from './pool-connection-error.js';
import { PoolQueryTimeoutError } from './pool-query-timeout-error.js';
import { redactUri, Redactor, secretsOfOptions, secretsOfUri } from './redaction.js';

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

/** What `JSON.stringify(pool)` shows: the metrics plus where the pool connects (redacted). */
export interface BackendPoolSnapshot extends PoolMetrics {
  backend: string;
  target: string;
}

/**
 * One live connection as `pool.connections()` lists it: the engine's view (state, age, uses) plus what ran on
 * it. Never the connection object itself, nor anything secret.
 */
export interface BackendConnectionInfo {
  /** Stable for the connection's life (the engine's id; MongoDB: the pool's number for a driver connection). */
  readonly id: number;
  /** `shared`: a connection every caller uses at once, outside leases (Redis `pool.shared`). */
  readonly state: PoolConnectionState | 'shared';
  /** When it was opened, epoch ms. */
  readonly createdAt: number;
  readonly ageMs: number;
  /** How long it has been idle; 0 unless idle. */
  readonly idleMs: number;
  /** Times it was lent (MongoDB: checked out by the driver). */
  readonly uses: number;
  /** Queries (PostgreSQL) or commands (Redis, MongoDB) run on it. */
  readonly queries: number;
  /** Their mean duration in milliseconds; null when `queries` is 0. */
  readonly avgQueryMs: number | null;
  /** The last error seen on it (a failed query, validation or reset), redacted. */
  readonly lastError?: string;
}

export class BackendPool<TConnection = unknown> implements AsyncDisposable {
  /** Names the pool in errors, events, metrics and logs. */
  readonly name: string;
  /** The backend, e.g. `postgres`. */
  readonly backend: string;
  /** Where the pool connects, with credentials redacted: safe to log. */
  readonly target: string;
  /** The client-side query timeout in milliseconds; Infinity when off. */
  readonly queryTimeoutMs: number;

  readonly #engine: Pool<TConnection>;
  readonly #definition: BackendDefinition<TConnection, unknown>;
  readonly #redactor: Redactor;
  readonly #context: BackendContext<TConnection, unknown>;
  /** Connections that broke on their own, with why: never lent again. */
  readonly #lost = new WeakMap<object, Error>();
  /** The loaded driver, boxed so a driver-less backend (`undefined`) still counts as loaded. */
  #driver: { value: unknown } | undefined;
  #driverLoading: Promise<void> | undefined;

  constructor(init: BackendPoolInit<TConnection, unknown>) {
    const { definition, options } = init;
    this.name = options.name;
    this.backend = options.backend;
    this.queryTimeoutMs = options.queryTimeoutMs;
    this.#definition = definition;
    this.#redactor = new Redactor([
      ...secretsOfUri(options.uri),
      ...secretsOfOptions(options.connection),
      ...(definition.secrets?.(options) ?? []),
    ]);
    this.target = this.#redactor.text(
      options.uri !== undefined
        ? redactUri(options.uri)
        : (definition.describeTarget?.(options) ?? options.backend),
    );
    if (definition.loadDriver === undefined) this.#driver = { value: undefined };
    this.#context = this.#createContext(options);
    const engineOptions = {
      ...definition.poolDefaults,
      ...options.pool,
      name: options.name,
      factory: this.#createFactory(),
    };
    // Validate first with the `pool.` prefix so errors name the field the way the user wrote it (`pool.min`).
    resolvePoolOptions(engineOptions, { fieldPrefix: 'pool.' });
    this.#engine = new Pool<TConnection>(engineOptions);
  }

  /** The engine's state: `starting → ready ⇄ paused`, `draining`, `closed`. */
  get state(): PoolState {
    return this.#engine.state;
  }

  // ---------------------------------------------------------------------------------------------------
  // Lifecycle
  // ---------------------------------------------------------------------------------------------------

  /**
   * Loads the driver (PoolDriverMissingError if its package is not installed, whatever `startup` says), then
   * starts the engine: `fail-fast` opens max(min, 1) connections or rejects with PoolUnavailableError;
   * `lazy` resolves at once. May be called again after a failure.
   */
  start(): Promise<void> {
    return this.#loadDriver()
      .then(() => this.#engine.start())
      .catch((error: unknown) => Promise.reject(this.#redactor.error(error)));
  }

  pause(): void {
    this.#engine.pause();
  }

  resume(): void {
    this.#engine.resume();
  }

  drain(options?: DrainOptions): Promise<DrainResult> {
    return this.#engine.drain(options);
  }

  /** Closes every connection (exactly once each) and leaves no handles; idempotent. */
  close(options?: CloseOptions): Promise<void> {
    return this.#engine.close(options);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------------------------------------------
  // Leases
  // ---------------------------------------------------------------------------------------------------

  /**
   * Borrows a connection (see the engine's `acquire`). A connection that breaks on its own is never lent:
   * it is evicted from the engine when it breaks (at once if idle, when it comes back if lent), so this is
   * the engine's acquire with nothing added on the hot path. Errors are already redacted: the engine's
   * only carry connection errors, which the factory redacts.
   */
  acquire(options?: AcquireOptions): Promise<Lease<TConnection>> {
    if (this.#driver === undefined) return this.#loadDriver().then(() => this.#engine.acquire(options));
    return this.#engine.acquire(options);
  }

  /**
   * The engine's shared acquire (see Pool.acquireShared), for a subclass whose leases several callers may
   * share (PostgresPool's pipelined `query()`). Loads the driver first, like acquire().
   */
  protected acquireShared(
    share: object,
    onLease: (lease: Lease<TConnection>) => void,
    onError: (error: unknown) => void,
  ): void {
    if (this.#driver === undefined) {
      this.#loadDriver()
        .then(() => this.#engine.acquireShared(share, onLease, onError), onError)
        .catch(onError); // onLease threw: the caller hears of it, not the process
      return;
    }
    this.#engine.acquireShared(share, onLease, onError);
  }

  /** See Pool.adoptShared: queued shared work that a lease already out may take over, or undefined. */
  protected adoptShared(): unknown {
    return this.#engine.adoptShared();
  }

  /** See Pool.shareJoinable: may new shared work join a lease that is already out? */
  protected shareJoinable(): boolean {
    return this.#engine.shareJoinable();
  }

  /**
   * Acquires, runs `fn`, and always gives the connection back: destroyed if the error broke it. A call
   * whose connection failed under it rejects with PoolConnectionError (see `callError`).
   */
  async use<R>(fn: (connection: TConnection) => R | Promise<R>, options?: AcquireOptions): Promise<R> {
    const lease = await this.acquire(options);
    let result: R;
    try {
      result = await fn(lease.connection);
    } catch (error) {
      throw this.returnAfterFailure(lease, error);
    }
    lease.release();
    return result;
  }

  // ---------------------------------------------------------------------------------------------------
  // Observability
  // ---------------------------------------------------------------------------------------------------

  metrics(): PoolMetrics {
    return this.#engine.metrics();
  }

  /**
   * A snapshot of every live connection (see BackendConnectionInfo): the engine's list, with the backend's
   * per-connection query statistics. Cheap and without I/O; the connections themselves are not exposed.
   */
  connections(): BackendConnectionInfo[] {
    return this.#engine.connections().map((info) => this.#describeConnection(info));
  }

  /** Acquire-wait and create-time histograms, and use-time while `trackUseTime` is on (see the engine). */
  histograms(): PoolHistograms {
    return this.#engine.histograms();
  }

  /** Records how long each lease is held (the `use` histogram); off by default. */
  trackUseTime(enabled: boolean): void {
    this.#engine.trackUseTime(enabled);
  }

  on<K extends PoolEventName>(event: K, listener: PoolEventListener<TConnection, K>): this {
    this.#engine.on(event, listener);
    return this;
  }

  once<K extends PoolEventName>(event: K, listener: PoolEventListener<TConnection, K>): this {
    this.#engine.once(event, listener);
    return this;
  }

  off<K extends PoolEventName>(event: K, listener: PoolEventListener<TConnection, K>): this {
    this.#engine.off(event, listener);
    return this;
  }

  /**
   * Really tries the server: acquires a connection and pings it, all within `timeoutMs` (default 1000),
   * however saturated the pool or silent the network. Never rejects (bad options aside).
   */
  async checkHealth(options?: HealthCheckOptions): Promise<HealthCheckResult> {
    const timeoutMs = options?.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS;
    if (typeof timeoutMs !== 'number' || !(timeoutMs > 0 && timeoutMs < Infinity)) {
      throw new PoolConfigError(
        this.name,
        'timeoutMs',
        `must be a positive finite number (got ${String(timeoutMs)})`,
      );
    }
    const startedAt = performance.now();
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new PoolError(this.name, `health check timed out after ${timeoutMs} ms`);
        controller.abort(error);
        reject(error);
      }, timeoutMs);
      timer.unref();
    });
    const probe = this.#probe(timeoutMs, controller.signal).then(() =>
      this.probeOtherConnections(controller.signal),
    );
    probe.catch(noop); // when the timer wins, the probe cleans up after itself
    try {
      await Promise.race([probe, timedOut]);
      return { status: 'up', latencyMs: elapsed(startedAt), metrics: this.metrics() };
    } catch (error) {
      const message = this.#redactor.text(toError(error).message);
      return { status: 'down', latencyMs: elapsed(startedAt), error: message, metrics: this.metrics() };
    } finally {
      clearTimeout(timer);
    }
  }

  /** `console.log(pool)` shows state and a redacted target, never options or connections. */
  [inspectSymbol](): string {
    const m = this.metrics();
    return (
      `${this.constructor.name} { name: '${m.name}', backend: '${this.backend}', target: '${this.target}', ` +
      `state: '${m.state}', circuit: '${m.circuit}', size: ${m.size}, idle: ${m.idle}, active: ${m.active}, ` +
      `waiting: ${m.waiting}, max: ${m.max} }`
    );
  }

  toJSON(): BackendPoolSnapshot {
    return { backend: this.backend, target: this.target, ...this.metrics() };
  }

  // ---------------------------------------------------------------------------------------------------
  // For subclasses
  // ---------------------------------------------------------------------------------------------------

  /**
   * checkHealth()'s probe of connections the engine doesn't lend (RedisPool's shared client), after a lease
   * answered its ping; bounded by the same timeout (`signal` aborts when it passes). None by default.
   */
  protected probeOtherConnections(_signal: AbortSignal): Promise<void> {
    return Promise.resolve();
  }

  /** Scrubs an error (and its cause chain) of this pool's secrets, in place; returns it. */
  protected redactError<E>(error: E): E {
    return this.#redactor.error(error);
  }

  /**
   * What the caller of a failed call on `connection` gets, redacted (`broken`: the connection is destroyed
   * for it). The driver reporting that the connection failed under the call (a reset socket, a closed
   * client, the server ending the session) becomes PoolConnectionError, or the pool's own reason when the
   * pool itself had discarded the connection (a query timeout): that, not its consequences, is what went
   * wrong. The pool's errors, a statement the server refused, and the caller's own errors pass unchanged.
   */
  protected callError(connection: TConnection, error: unknown, broken: boolean): unknown {
    if (!broken || error instanceof PoolError) return this.#redactor.error(error);
    if (this.#definition.isConnectionError?.(error, this.#context) === false)
      return this.#redactor.error(error);
    const lost = this.#lostReason(connection);
    if (lost instanceof PoolError) return lost;
    return new PoolConnectionError(this.name, this.#redactor.error(error));
  }

  /**
   * After a call on `lease` failed with `error`: gives the lease back (destroyed if the error broke the
   * connection, released otherwise) and returns what the caller gets (see `callError`).
   */
  protected returnAfterFailure(lease: Lease<TConnection>, error: unknown): unknown {
    const broken = this.#engine.isBroken(lease.connection, error);
    const failure = this.callError(lease.connection, error, broken);
    if (broken) lease.destroy(error);
    else lease.release();
    return failure;
  }

  /** Whether `error` (thrown while `connection` was lent) left it unusable. */
  protected isBroken(connection: TConnection, error: unknown): boolean {
    return this.#engine.isBroken(connection, error);
  }

  /** The engine's options, as it resolved them (defaults and preset applied), for subclasses to read. */
  protected get engineOptions(): Readonly<ResolvedPoolOptions> {
    return this.#engine.options;
  }

  /** The context the definition's functions get (for subclasses that call into their backend). */
  protected get backendContext(): BackendContext<TConnection, unknown> {
    return this.#context;
  }

  // ---------------------------------------------------------------------------------------------------
  // Internals
  // ---------------------------------------------------------------------------------------------------

  #loadDriver(): Promise<void> {
    if (this.#driver !== undefined) return Promise.resolve();
    const load = this.#definition.loadDriver;
    this.#driverLoading ??= Promise.resolve()
      .then(() => load!.call(this.#definition, this.#context))
      .then(
        (driver) => {
          this.#driver = { value: driver };
        },
        (error: unknown) => {
          this.#driverLoading = undefined; // not cached: a later start() tries again
          throw this.#redactor.error(error);
        },
      );
    return this.#driverLoading;
  }

  /** Acquire + ping for checkHealth; on abort it gives the connection back (or destroys a stuck one). */
  async #probe(timeoutMs: number, signal: AbortSignal): Promise<void> {
    const lease = await this.acquire({ timeoutMs, signal });
    if (signal.aborted) {
      lease.release();
      throw signal.reason;
    }
    // A ping that outlives the check is stuck (blackholed network): destroy its connection so it ends.
    const onAbort = (): void => lease.destroy(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const lost = this.#lostReason(lease.connection);
      if (lost !== undefined) throw lost;
      await this.#definition.ping(lease.connection, signal, this.#context);
    } catch (error) {
      lease.destroy(error);
      throw error;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    lease.release();
  }

  #describeConnection(info: PoolConnectionInfo<TConnection>): BackendConnectionInfo {
    const stats = this.#definition.connectionStats?.(info.connection);
    const queries = stats?.queries ?? 0;
    // The query's error first: a failed validation or reset usually ends the connection (so it leaves this
    // list), so on a live connection it is rarely the later of the two.
    const lastError = stats?.lastError ?? info.lastError;
    const described: BackendConnectionInfo = {
      id: info.id,
      state: info.state,
      createdAt: info.createdAt,
      ageMs: info.ageMs,
      idleMs: info.idleMs,
      uses: info.uses,
      queries,
      avgQueryMs: queries > 0 ? stats!.totalQueryMs / queries : null,
    };
    return lastError === undefined ? described : { ...described, lastError: this.#redactor.text(lastError) };
  }

  #lostReason(connection: TConnection): Error | undefined {
    return isObjectLike(connection) ? this.#lost.get(connection) : undefined;
  }

  #markLost(connection: TConnection, error: unknown, report: boolean): void {
    if (!isObjectLike(connection) || this.#lost.has(connection)) return;
    const cause = this.#redactor.error(toError(error));
    this.#lost.set(connection, cause);
    // Destroy it now if idle (so `min` is refilled at once), or when it comes back if lent. Before the event:
    // a listener that queries at once must find the pool knowing it lost the connection.
    this.#engine.evict(connection, cause);
    if (report) {
      this.#engine.emit(
        'error',
        new PoolError(this.name, `a connection failed and is dropped: ${cause.message}`, { cause }),
        { phase: 'connection' },
      );
    }
  }

  #createContext(options: ResolvedBackendOptions): BackendContext<TConnection, unknown> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the getter below needs the pool, not the context
    const pool = this;
    return Object.freeze({
      poolName: options.name,
      backend: options.backend,
      options,
      redactor: this.#redactor,
      get driver(): unknown {
        if (pool.#driver === undefined) throw new PoolError(pool.name, 'the driver is not loaded yet');
        return pool.#driver.value;
      },
      connectionLost: (connection: TConnection, error: unknown) => this.#markLost(connection, error, true),
      discard: (connection: TConnection, error: unknown) => this.#markLost(connection, error, false),
      [inspectSymbol]: () => `BackendContext { pool: '${options.name}', backend: '${options.backend}' }`,
    });
  }

  /** The engine factory: the definition's functions, with lost connections refused and errors redacted. */
  #createFactory(): PoolFactory<TConnection> {
    const definition = this.#definition;
    const context = this.#context;
    const redact = <E>(error: E): E => this.#redactor.error(error);
    const factory: PoolFactory<TConnection> = {
      create: async (signal) => {
        await this.#loadDriver();
        let connection: TConnection;
        try {
          connection = await definition.connect(signal, context);
        } catch (error) {
          throw redact(error);
        }
        // Broke before the engine holds it (so evict() could not find it): refuse it here.
        const lost = this.#lostReason(connection);
        if (lost !== undefined) {
          await definition.close(connection, context).catch(() => undefined);
          throw lost;
        }
        return connection;
      },
      destroy: async (connection) => {
        try {
          await definition.close(connection, context);
        } catch (error) {
          throw redact(error);
        }
      },
      validate: async (connection, signal) => {
        if (this.#lostReason(connection) !== undefined) return false;
        try {
          await definition.ping(connection, signal, context);
        } catch (error) {
          throw redact(error);
        }
        return true;
      },
      isBroken: (connection, error) =>
        this.#lostReason(connection) !== undefined ||
        error instanceof PoolQueryTimeoutError ||
        (definition.isBroken?.(connection, error, context) ?? false),
    };
    const reset = definition.reset;
    if (reset !== undefined) {
      // Synchronous when the backend has nothing to clean, so the engine can lend the connection again at once.
      factory.reset = (connection) => {
        const lost = this.#lostReason(connection);
        if (lost !== undefined) throw lost;
        let outcome: Promise<void> | void;
        try {
          outcome = reset.call(definition, connection, context);
        } catch (error) {
          throw redact(error);
        }
        if (outcome === undefined) return undefined;
        return outcome.then(
          () => {
            // It may have died while being reset (the server's goodbye arriving just after a failed query).
            const lostMeanwhile = this.#lostReason(connection);
            if (lostMeanwhile !== undefined) throw lostMeanwhile;
          },
          (error: unknown) => {
            throw redact(error);
          },
        );
      };
    }
    return factory;
  }
}

function isObjectLike(value: unknown): value is object {
  return (typeof value === 'object' || typeof value === 'function') && value !== null;
}

function elapsed(startedAt: number): number {
  return Math.round((performance.now() - startedAt) * 1000) / 1000;
}

function noop(): void {}
