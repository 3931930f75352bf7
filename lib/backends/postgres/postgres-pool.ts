/**
 * PostgresPool: a BackendPool of `pg.Client`s with the two things most callers want: `query()` (acquire,
 * query, release, or destroy when the query broke the connection) and `transaction()` (BEGIN, COMMIT, and
 * ROLLBACK when the callback throws).
 */
import type { Client, QueryConfig, QueryResult, QueryResultRow } from 'pg';
import { PoolError, type Lease } from '../../core/index.js';
import { BackendPool } from '../backend-pool.js';
import { transactionStatus } from './postgres-connection.js';
import { beginStatement, type TransactionOptions } from './postgres-options.js';

export class PostgresPool extends BackendPool<Client> {
  /** Runs one query on a pooled connection; resolves with pg's QueryResult (`.rows`, `.rowCount`, ...). */
  query<R extends QueryResultRow = QueryResultRow>(
    text: string | QueryConfig<unknown[]>,
    values?: unknown[],
  ): Promise<QueryResult<R>> {
    return this.use((client) => client.query<R, unknown[]>(text, values));
  }

  /**
   * Runs `fn` in a transaction on one connection: BEGIN (with `isolation`, `readOnly`, `deferrable`), then
   * COMMIT when `fn` resolves, ROLLBACK when it throws (the error is rethrown). A transaction that failed
   * inside `fn` (its error caught there) is not reported as committed: COMMIT answers ROLLBACK and this
   * rejects.
   */
  async transaction<R>(fn: (client: Client) => R | Promise<R>, options?: TransactionOptions): Promise<R> {
    const begin = beginStatement(this.name, options);
    const lease = await this.acquire(options?.acquire);
    const client = lease.connection;
    let result: R;
    try {
      await client.query(begin);
      result = await fn(client);
      const commit = await client.query('COMMIT');
      if (commit.command === 'ROLLBACK') {
        throw new PoolError(
          this.name,
          'the transaction was rolled back at COMMIT: a statement inside it failed (and its error was caught)',
        );
      }
    } catch (error) {
      await this.rollbackAndReturn(lease, error);
      throw this.redactError(error);
    }
    lease.release();
    return result;
  }

  /** After a failed transaction: ROLLBACK and release, or destroy a connection that can't be trusted. */
  private async rollbackAndReturn(lease: Lease<Client>, error: unknown): Promise<void> {
    const client = lease.connection;
    if (this.isBroken(client, error)) {
      lease.destroy(error);
      return;
    }
    if (transactionStatus(client) === 'I') {
      lease.release();
      return;
    }
    try {
      await client.query('ROLLBACK');
      lease.release();
    } catch (rollbackError) {
      lease.destroy(rollbackError);
    }
  }
}
