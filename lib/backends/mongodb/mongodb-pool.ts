/**
 * MongoPool: a BackendPool of lease slots over one MongoClient (see mongodb-client.ts).
 *
 * - `use(fn)`: a lease over the Db (fair queue, acquire timeout, metrics); with `queryTimeoutMs`, `fn` is
 *   bounded and a slot whose work timed out is destroyed, never lent again.
 * - `db` / `client`: direct access, bounded only by the driver's own pool (`maxPoolSize` = `pool.max`).
 * - `transaction(fn)`: a session transaction where the server supports them (replica set, mongos), else
 *   PoolUnsupportedError.
 * - `metrics()`: the engine's metrics plus `driver` (the driver's real connection counts).
 * - `connections()`: the driver's connections (not the lease slots), from its CMAP events.
 */
import type { ClientSession, Db, MongoClient } from 'mongodb';
import {
  DEFAULT_CLOSE_TIMEOUT_MS,
  PoolError,
  type AcquireOptions,
  type CloseOptions,
  type PoolMetrics,
} from '../../core/index.js';
import type { BackendPoolInit } from '../backend-definition.js';
import { BackendPool, type BackendConnectionInfo } from '../backend-pool.js';
import type { PoolQueryTimeoutError } from '../pool-query-timeout-error.js';
import { PoolUnsupportedError } from '../pool-unsupported-error.js';
import { withQueryTimeout } from '../query-timeout.js';
import {
  holderOf,
  type MongoClientHolder,
  type MongoContext,
  type MongoDriverMetrics,
} from './mongodb-client.js';
import type { MongoTransactionOptions } from './mongodb-options.js';

export interface MongoPoolMetrics extends PoolMetrics {
  /** The driver's own connection pool, from its CMAP events. */
  driver: MongoDriverMetrics;
}

/** Server error codes that mean "no transactions on this deployment". */
const NO_TRANSACTIONS_CODES = new Set([
  20 /* IllegalOperation */, 263 /* OperationNotSupportedInTransaction */,
]);

export class MongoPool extends BackendPool<Db> {
  readonly #holder: MongoClientHolder;
  /** hello's verdict, cached once it answered. */
  #transactions: Promise<string | undefined> | undefined;

  constructor(init: BackendPoolInit<Db, unknown>) {
    super(init);
    this.#holder = holderOf(this.backendContext as MongoContext);
  }

  /** The database name `use()` and `db` work on. */
  get databaseName(): string {
    return this.#holder.settings.database;
  }

  /**
   * The MongoClient, for direct use (bounded by the driver's own pool, not by leases). Available once
   * `start()` resolved; PoolClosedError after `close()`.
   */
  get client(): MongoClient {
    if (this.#holder.current === undefined && !this.#holder.closed) {
      throw new PoolError(this.name, 'the pool is not started: call start() first');
    }
    return this.#holder.client();
  }

  /** The pool's Db, for direct use (see `client`). */
  get db(): Db {
    return this.client.db(this.databaseName);
  }

  /** Starts the pool (see BackendPool.start); the client exists afterwards, even with `startup: 'lazy'`. */
  override async start(): Promise<void> {
    await super.start();
    if (!this.#holder.closed) this.#holder.client();
  }

  /** Closes the leases (engine), then the client; leaves no handles. */
  override async close(options?: CloseOptions): Promise<void> {
    try {
      await super.close(options);
    } finally {
      await this.#holder.close(options?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
    }
  }

  /**
   * A lease over the Db for `fn`. With `queryTimeoutMs`, `fn` is bounded: past it the call rejects with
   * PoolQueryTimeoutError and the slot is destroyed (the driver's socket timeout, a little later, frees the
   * driver connection the operation was stuck on).
   */
  override use<R>(fn: (db: Db) => R | Promise<R>, options?: AcquireOptions): Promise<R> {
    return super.use((db) => this.#bound(db, () => fn(db)), options);
  }

  /** The engine's metrics plus the driver's connection counts. */
  override metrics(): MongoPoolMetrics {
    return { ...super.metrics(), driver: this.#holder.metrics() };
  }

  /**
   * The driver's connections (the sockets, not the lease slots): `state` idle or lent (checked out by an
   * operation), or validating during its handshake; `uses` and `queries` are its checkouts, `avgQueryMs` the
   * mean time a checkout held it. No `lastError`: the driver reports failures per operation, not per
   * connection. Empty before the client connects and after `close()`.
   */
  override connections(): BackendConnectionInfo[] {
    return this.#holder.connections();
  }

  /**
   * Whether the server supports transactions (a replica set member or mongos, from `hello`). Resolves
   * `undefined` when it does, else the reason.
   */
  async transactionsUnsupportedReason(): Promise<string | undefined> {
    if (this.#transactions === undefined) {
      const asking = this.use(async (db) => {
        const hello = (await db.admin().command({ hello: 1 })) as { setName?: unknown; msg?: unknown };
        if (typeof hello.setName === 'string' || hello.msg === 'isdbgrid') return undefined;
        return 'the server is a standalone (hello reports no replica set and no mongos); MongoDB transactions need a replica set or a sharded cluster';
      });
      this.#transactions = asking;
      asking.catch(() => {
        if (this.#transactions === asking) this.#transactions = undefined; // ask again next time
      });
    }
    return this.#transactions;
  }

  /**
   * Runs `fn` in a transaction on one lease: startTransaction, then commit when `fn` resolves, abort when it
   * throws (the error is rethrown). Pass `{ session }` to every operation inside. `fn` runs once (no
   * automatic retry of TransientTransactionError); with `queryTimeoutMs`, the whole transaction is bounded.
   * Rejects with PoolUnsupportedError where the server has no transactions (standalone mongod, FerretDB).
   */
  async transaction<R>(
    fn: (db: Db, session: ClientSession) => R | Promise<R>,
    options?: MongoTransactionOptions,
  ): Promise<R> {
    const { acquire, ...transactionOptions } = options ?? {};
    const unsupported = await this.transactionsUnsupportedReason();
    if (unsupported !== undefined) throw new PoolUnsupportedError(this.name, 'transactions', unsupported);
    const lease = await this.acquire(acquire);
    const db = lease.connection;
    const session = this.#holder.client().startSession();
    try {
      const result = await this.#bound(db, async () => {
        session.startTransaction(transactionOptions);
        try {
          const value = await fn(db, session);
          await session.commitTransaction();
          return value;
        } catch (error) {
          if (session.inTransaction()) await session.abortTransaction().catch(noop);
          throw error;
        }
      });
      lease.release();
      return result;
    } catch (error) {
      throw this.returnAfterFailure(lease, this.#unsupported(error) ?? error);
    } finally {
      session.endSession().catch(noop);
    }
  }

  /** Runs `work` within `queryTimeoutMs` (if set); a timeout discards the slot. */
  #bound<R>(db: Db, work: () => R | Promise<R>): Promise<R> {
    const started = Promise.resolve().then(work);
    return withQueryTimeout(started, {
      poolName: this.name,
      timeoutMs: this.queryTimeoutMs,
      onTimeout: (error: PoolQueryTimeoutError) => this.backendContext.discard(db, error),
    });
  }

  /** The server's "transactions need a replica set" errors, as PoolUnsupportedError. */
  #unsupported(error: unknown): PoolUnsupportedError | undefined {
    const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
    const text = typeof message === 'string' ? message : '';
    if (
      (typeof code === 'number' && NO_TRANSACTIONS_CODES.has(code) && /transaction/i.test(text)) ||
      /Transaction numbers are only allowed on a replica set member or mongos/i.test(text)
    ) {
      return new PoolUnsupportedError(this.name, 'transactions', text, { cause: error });
    }
    return undefined;
  }
}

function noop(): void {}
