/**
 * One MongoClient per named pool, and what the pool's "connections" are over it: lease slots, each its own
 * `client.db(name)` object. The driver owns the sockets (its pool is sized from the engine's options); the
 * engine's leases bound how much work runs at once, fairly, with its queue, timeouts and metrics.
 *
 * - create (a slot): connect the client if needed and `ping`, bounded by the engine's signal. While the
 *   server is unreachable (no server known and a heartbeat just failed: refused, reset) it fails at once with
 *   the heartbeat's error instead of waiting out server selection, so the engine's backoff and circuit
 *   breaker see real failures, fast.
 * - destroy: nothing (a slot holds no socket); the client is closed by `pool.close()`.
 * - validate / checkHealth: `ping`.
 *
 * The driver's real connection counts, and its connections one by one (`pool.connections()`), come from its
 * CMAP events, which the driver emits whether or not anyone listens.
 */
import type { Db, MongoClient, MongoClientOptions } from 'mongodb';
import { PoolClosedError, PoolError } from '../../core/index.js';
import type { BackendContext } from '../backend-definition.js';
import type { BackendConnectionInfo } from '../backend-pool.js';
import { redactUri } from '../redaction.js';
import { MonitorWatchdog } from './mongodb-monitor-watchdog.js';
import { mongoClientSettings, type MongoClientSettings } from './mongodb-options.js';

/** What the pool needs from the `mongodb` module. */
export interface MongoDriver {
  MongoClient: new (url: string, options?: MongoClientOptions) => MongoClient;
}

export type MongoContext = BackendContext<Db, MongoDriver>;

/** The driver's own connection pool, from its CMAP events (all servers together). */
export interface MongoDriverMetrics {
  /** Connections open now (created − closed). */
  connections: number;
  /** Connections checked out by an operation now. */
  checkedOut: number;
  /** Connections created since the client was made. */
  created: number;
  /** Connections closed since the client was made. */
  closed: number;
}

/** One of the driver's connections, as its CMAP events describe it. */
interface DriverConnection {
  /** Our number for it: the driver's ids are per server, so they may repeat across servers. */
  readonly id: number;
  /** Epoch ms, and the same instant on performance.now()'s clock. */
  readonly createdAt: number;
  readonly createdAtPrecise: number;
  /** `validating` until its handshake is done. */
  state: 'validating' | 'idle' | 'lent';
  idleSince: number;
  /** Checkouts (an operation, or a cursor's getMore, each), and their total checked-out time. */
  uses: number;
  checkedOutAt: number;
  totalUseMs: number;
}

/** What CMAP events say about which connection they are about. */
interface ConnectionEvent {
  address: string;
  connectionId: number | '<monitor>';
}

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

/** Errors after which a slot should not be lent again: the server is unreachable or the client gone. */
const UNREACHABLE_ERRORS = new Set([
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoServerSelectionError',
  'MongoPoolClearedError',
  'MongoTopologyClosedError',
  'MongoServerClosedError',
  'MongoNotConnectedError',
]);

/**
 * Socket error codes: the driver usually wraps them in MongoNetworkError, but a socket reset under an
 * operation in flight has been seen to reach the caller as Node's bare error.
 */
const SOCKET_ERROR_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'ERR_STREAM_DESTROYED',
]);

/**
 * Did `error` mean the server is unreachable or the connection failed (so the slot is destroyed, the caller
 * gets PoolConnectionError, and creation decides what next)?
 */
export function isUnreachableError(error: unknown): boolean {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 4; depth++) {
    const { name, code } = e as { name?: unknown; code?: unknown };
    if (typeof name === 'string' && UNREACHABLE_ERRORS.has(name)) return true;
    if (typeof code === 'string' && SOCKET_ERROR_CODES.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

const holders = new WeakMap<object, MongoClientHolder>();

/** The holder of a pool (its context identifies it), made on first use. */
export function holderOf(context: MongoContext): MongoClientHolder {
  let holder = holders.get(context);
  if (holder === undefined) {
    holder = new MongoClientHolder(context);
    holders.set(context, holder);
  }
  return holder;
}

/** Called on the next heartbeat failure while no server is known. */
type DownListener = (error: Error) => void;

export class MongoClientHolder {
  readonly settings: MongoClientSettings;
  readonly #context: MongoContext;
  #client: MongoClient | undefined;
  /** Restarts the driver's server monitor when a heartbeat hangs (see mongodb-monitor-watchdog.ts). */
  #watchdog: MonitorWatchdog | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #hasKnownServers = false;
  /** The last heartbeat's error; cleared by a successful heartbeat. */
  #heartbeatFailure: Error | undefined;
  readonly #downListeners = new Set<DownListener>();
  readonly #counts = { created: 0, closed: 0, checkedOut: 0, checkedIn: 0 };
  /** The driver's open connections, by server address, then the driver's id. */
  readonly #connections = new Map<string, Map<number, DriverConnection>>();
  #nextConnectionId = 1;

  constructor(context: MongoContext) {
    this.#context = context;
    this.settings = mongoClientSettings(context.options);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The client, or undefined before the first start/create. */
  get current(): MongoClient | undefined {
    return this.#client;
  }

  metrics(): MongoDriverMetrics {
    this.#reapUnreported();
    const c = this.#counts;
    return {
      connections: Math.max(0, c.created - c.closed),
      checkedOut: Math.max(0, c.checkedOut - c.checkedIn),
      created: c.created,
      closed: c.closed,
    };
  }

  /**
   * The driver's open connections. `uses` and `queries` are both the checkouts (one per operation; the
   * driver's command monitoring, which would count commands, costs too much to leave on), and
   * `avgQueryMs` is the mean time a checkout held the connection.
   */
  connections(): BackendConnectionInfo[] {
    this.#reapUnreported();
    const now = performance.now();
    const infos: BackendConnectionInfo[] = [];
    for (const byId of this.#connections.values()) {
      for (const c of byId.values()) {
        infos.push({
          id: c.id,
          state: c.state,
          createdAt: c.createdAt,
          ageMs: Math.max(0, now - c.createdAtPrecise),
          idleMs: c.state === 'idle' ? Math.max(0, now - c.idleSince) : 0,
          uses: c.uses,
          queries: c.uses,
          avgQueryMs: c.uses > 0 ? c.totalUseMs / c.uses : null,
        });
      }
    }
    return infos.sort((a, b) => a.id - b.id);
  }

  /** The client (made, not connected, on first call: the driver connects on first use). */
  client(): MongoClient {
    if (this.#closed) throw this.#closedError();
    if (this.#client !== undefined) return this.#client;
    const { uri, clientOptions } = this.settings;
    const client = new this.#context.driver.MongoClient(uri, clientOptions);
    const counts = this.#counts;
    client.on('connectionCreated', (event) => {
      counts.created++;
      this.#connectionCreated(event);
    });
    client.on('connectionReady', (event) => {
      const c = this.#connection(event);
      if (c !== undefined && c.state === 'validating') {
        c.state = 'idle';
        c.idleSince = performance.now();
      }
    });
    client.on('connectionClosed', (event) => {
      // Not counted twice: #reapUnreported may have counted it already.
      const known = this.#connections.get(event.address);
      if (typeof event.connectionId !== 'number' || known === undefined) counts.closed++;
      else if (known.delete(event.connectionId)) counts.closed++;
    });
    client.on('connectionCheckedOut', (event) => {
      counts.checkedOut++;
      const c = this.#connection(event);
      if (c === undefined) return;
      c.state = 'lent';
      c.uses++;
      c.checkedOutAt = performance.now();
    });
    client.on('connectionCheckedIn', (event) => {
      counts.checkedIn++;
      const c = this.#connection(event);
      if (c === undefined || c.state !== 'lent') return;
      const now = performance.now();
      c.state = 'idle';
      c.idleSince = now;
      c.totalUseMs += now - c.checkedOutAt;
    });
    client.on('topologyDescriptionChanged', (event) => {
      this.#hasKnownServers = event.newDescription.hasKnownServers;
      this.#notifyDown();
    });
    client.on('serverHeartbeatSucceeded', () => {
      this.#heartbeatFailure = undefined;
    });
    client.on('serverHeartbeatFailed', (event) => {
      this.#heartbeatFailure = event.failure;
      this.#notifyDown();
    });
    // The client keeps the URI, password included (client.options, client.s.url): a slot (Db) or the
    // client printed by a user's logger shows this instead.
    const target = this.#context.redactor.text(redactUri(uri));
    Object.defineProperty(client, inspectSymbol, {
      value: () => `MongoClient { pool: '${this.#context.poolName}', target: '${target}' }`,
      configurable: true,
      enumerable: false,
      writable: true,
    });
    this.#watchdog = new MonitorWatchdog(client);
    this.#client = client;
    return client;
  }

  /**
   * The driver does not report every connection it drops: one whose handshake completes after its pool was
   * cleared (the server marked Unknown meanwhile: a reset, a refusal) is destroyed without a
   * `connectionClosed` event (mongodb 6-7, ConnectionPool#createConnection). Counted from the events alone,
   * it would stay open forever, and `connections` would drift above `pool.max`. The driver's pool knows how
   * many handshakes are really pending: surplus `validating` entries (the oldest first) are closed here.
   * Read from the driver's internals defensively: without them, nothing is reaped.
   */
  #reapUnreported(): void {
    const servers = (this.#client as { topology?: { s?: { servers?: unknown } } } | undefined)?.topology?.s
      ?.servers;
    if (!(servers instanceof Map)) return;
    for (const [address, byId] of this.#connections) {
      const pending = (servers.get(address) as { pool?: { pendingConnectionCount?: unknown } } | undefined)
        ?.pool?.pendingConnectionCount;
      if (typeof pending !== 'number') continue;
      let surplus = -pending;
      for (const c of byId.values()) if (c.state === 'validating') surplus++;
      for (const [id, c] of byId) {
        if (surplus <= 0) break;
        if (c.state !== 'validating') continue;
        byId.delete(id);
        this.#counts.closed++;
        surplus--;
      }
    }
  }

  #connectionCreated(event: ConnectionEvent): void {
    if (typeof event.connectionId !== 'number') return;
    let byId = this.#connections.get(event.address);
    if (byId === undefined) {
      byId = new Map();
      this.#connections.set(event.address, byId);
    }
    const now = performance.now();
    byId.set(event.connectionId, {
      id: this.#nextConnectionId++,
      createdAt: Math.round(performance.timeOrigin + now),
      createdAtPrecise: now,
      state: 'validating',
      idleSince: now,
      uses: 0,
      checkedOutAt: now,
      totalUseMs: 0,
    });
  }

  #connection(event: ConnectionEvent): DriverConnection | undefined {
    return typeof event.connectionId === 'number'
      ? this.#connections.get(event.address)?.get(event.connectionId)
      : undefined;
  }

  /** Creates a slot: the client connected and the server answering `ping`, bounded by `signal`. */
  async openSlot(signal: AbortSignal): Promise<Db> {
    const client = this.client();
    await this.#bounded(signal, client.connect(), true);
    const db = client.db(this.settings.database);
    await this.#bounded(signal, db.command({ ping: 1 }), true);
    if (this.#closed) throw this.#closedError();
    return db;
  }

  /** `ping` on a slot's Db, bounded by `signal`. */
  async ping(db: Db, signal: AbortSignal): Promise<void> {
    await this.#bounded(signal, db.command({ ping: 1 }), false);
  }

  /** Closes the client (idempotent); waits at most `timeoutMs` for its goodbye. */
  close(timeoutMs: number): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.#closeClient(timeoutMs);
    return this.#closing;
  }

  async #closeClient(timeoutMs: number): Promise<void> {
    const client = this.#client;
    if (client === undefined) return;
    this.#watchdog?.stop();
    // Closed with the client, whether or not the driver reports each one before close() settles.
    this.#connections.clear();
    for (const listener of this.#downListeners) listener(this.#closedError());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closing = client.close();
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([closing, timedOut]);
    } catch (error) {
      throw this.#context.redactor.error(
        new PoolError(this.#context.poolName, 'closing the MongoDB client failed', { cause: error }),
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** No server known and the last heartbeat failed: the server is down now (refused, reset, unresolvable). */
  #closedError(): PoolClosedError {
    return new PoolClosedError(this.#context.poolName, 'is closed');
  }

  #notifyDown(): void {
    const failure = this.#heartbeatFailure;
    if (this.#hasKnownServers || failure === undefined || this.#downListeners.size === 0) return;
    for (const listener of [...this.#downListeners]) listener(failure);
  }

  /**
   * Settles like `work`, unless `signal` aborts first or (with `failWhenDown`) a heartbeat fails while no
   * server is known. An abandoned `work` is absorbed.
   */
  #bounded<T>(signal: AbortSignal, work: Promise<T>, failWhenDown: boolean): Promise<T> {
    if (signal.aborted) {
      work.catch(noop);
      return Promise.reject(signal.reason as Error);
    }
    return new Promise<T>((resolve, reject) => {
      const onDown: DownListener = (error) => finish(() => reject(error));
      const onAbort = (): void => finish(() => reject(signal.reason as Error));
      const finish = (settle: () => void): void => {
        signal.removeEventListener('abort', onAbort);
        this.#downListeners.delete(onDown);
        settle();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      if (failWhenDown) this.#downListeners.add(onDown);
      work.then(
        (value) => finish(() => resolve(value)),
        (error: unknown) => finish(() => reject(error)),
      );
    });
  }
}

function noop(): void {}
