/**
 * PostgresReader: `pool.read`, the read side of a PostgresPool. Each call goes to a healthy replica chosen
 * by the balance strategy (or to the primary when there are no replicas, or none is healthy and
 * `readFallback` is 'primary'), so code written against `pool.read` keeps working as replicas come and go.
 *
 * Retries: a read that fails because its replica failed (connection refused or lost, circuit open, timed
 * out) takes the replica out of the rotation and runs once more on another member when that is safe:
 * always for `query()` (one statement, which on a replica can only read) and `acquire()` (nothing ran);
 * for `use()` and `transaction()` only when the failure came before the callback started.
 */
import type { Client, QueryConfig, QueryResult, QueryResultRow } from 'pg';
import type { AcquireOptions, Lease } from '../../core/index.js';
import { isConnectionError } from '../postgres/postgres-connection.js';
import type { PostgresPool } from '../postgres/postgres-pool.js';
import type { TransactionOptions } from '../postgres/postgres-options.js';
import { isPoolLevelFailure, type ReplicaSet } from './replica-set.js';

export class PostgresReader {
  readonly #primary: PostgresPool;
  readonly #replicas: ReplicaSet<PostgresPool> | undefined;

  constructor(primary: PostgresPool, replicas: ReplicaSet<PostgresPool> | undefined) {
    this.#primary = primary;
    this.#replicas = replicas;
  }

  /** Runs one (read-only) query on a replica; resolves with pg's QueryResult. */
  query<R extends QueryResultRow = QueryResultRow>(
    text: string | QueryConfig<unknown[]>,
    values?: unknown[],
  ): Promise<QueryResult<R>> {
    if (this.#replicas === undefined) return this.#primary.query<R>(text, values);
    return this.#replicas.run((pool) => pool.query<R>(text, values), true);
  }

  /** Borrows a connection from a replica; `release()` it (it goes back to that replica's pool). */
  acquire(options?: AcquireOptions): Promise<Lease<Client>> {
    if (this.#replicas === undefined) return this.#primary.acquire(options);
    return this.#replicas.run((pool) => pool.acquire(options), true);
  }

  /** Acquires from a replica, runs `fn`, always gives the connection back. */
  use<R>(fn: (client: Client) => R | Promise<R>, options?: AcquireOptions): Promise<R> {
    if (this.#replicas === undefined) return this.#primary.use(fn, options);
    return this.#replicas.run(
      (pool, begin) =>
        pool.use((client) => {
          begin();
          return fn(client);
        }, options),
      false,
    );
  }

  /**
   * A READ ONLY transaction on one replica connection (a consistent snapshot across several queries with
   * `isolation: 'repeatable read'`). `readOnly` is forced: writes are the primary's `transaction()`.
   */
  transaction<R>(fn: (client: Client) => R | Promise<R>, options?: TransactionOptions): Promise<R> {
    const readOnly = { ...options, readOnly: true };
    if (this.#replicas === undefined) return this.#primary.transaction(fn, readOnly);
    return this.#replicas.run(
      (pool, begin) =>
        pool.transaction((client) => {
          begin();
          return fn(client);
        }, readOnly),
      false,
    );
  }
}

/**
 * PostgreSQL errors that mean the server (not the statement) failed: the pool's own unavailability errors,
 * SQLSTATE class 08 (connection exception) and 57P (shutdown, crash, cannot connect now), FATAL/PANIC,
 * socket errors and pg's "connection terminated" family. A syntax error or a constraint violation is the
 * query's fault and keeps the replica in the rotation.
 */
export function isPostgresMemberFailure(error: unknown): boolean {
  return isPoolLevelFailure(error) || isConnectionError(error);
}
