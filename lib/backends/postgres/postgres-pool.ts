/**
 * PostgresPool: a BackendPool of `pg.Client`s with the two things most callers want: `query()` (acquire,
 * query, release, or destroy when the query broke the connection) and `transaction()` (BEGIN, COMMIT, and
 * ROLLBACK when the callback throws).
 *
 * With `replicas`, it is the primary of a replica set: `query()` and `transaction()` stay on the primary,
 * `read.query()` (and `read.acquire()`, `read.use()`, `read.transaction()`) go to a healthy replica, and
 * start/drain/close/metrics/checkHealth cover every member. Without replicas, `read` is the primary itself.
 */
import type { Client, QueryConfig, QueryResult, QueryResultRow } from 'pg';
import {
  PoolError,
  type CloseOptions,
  type DrainOptions,
  type DrainResult,
  type Lease,
  type PoolMetrics,
} from '../../core/index.js';
import type { HealthCheckOptions, HealthCheckResult } from '../backend-health.js';
import type { BackendPoolInit } from '../backend-definition.js';
import { BackendPool } from '../backend-pool.js';
import { isPostgresMemberFailure, PostgresReader } from '../routing/postgres-reader.js';
import {
  attachReplicaSet,
  replicaFailure,
  type ReplicatedPoolMetrics,
  type ReplicaSet,
  type RoutedMemberPool,
  type RoutedHealthCheckResult,
} from '../routing/replica-set.js';
import { rethrowWithCallerStack, runQuery, transactionStatus } from './postgres-connection.js';
import { beginStatement, readPipelineDepth, type TransactionOptions } from './postgres-options.js';
import { pipelinable, type PipelinedQuery, QueryPipeline } from './postgres-pipeline.js';

export class PostgresPool extends BackendPool<Client> {
  #replicas: ReplicaSet<PostgresPool> | undefined;
  #reader: PostgresReader | undefined;
  /** `pipelineDepth` > 1: where `query()` shares connections under load (see QueryPipeline). */
  readonly #pipeline: QueryPipeline | undefined;

  constructor(init: BackendPoolInit<Client, unknown>) {
    super(init);
    const depth = readPipelineDepth(init.options);
    this.#pipeline =
      depth > 1
        ? new QueryPipeline(depth, {
            acquireShared: (share, onLease, onError) => this.acquireShared(share, onLease, onError),
            adoptShared: () => this.adoptShared() as PipelinedQuery | undefined,
            shareJoinable: () => this.shareJoinable(),
            isBroken: (client, error) => this.isBroken(client, error),
            callError: (client, error, broken) => this.callError(client, error, broken),
          })
        : undefined;
  }

  /** Reads: routed to a healthy replica (the primary when there are none; see PostgresReader). */
  get read(): PostgresReader {
    this.#reader ??= new PostgresReader(this, this.#replicas);
    return this.#reader;
  }

  /** The replica set (rotation, member health and events), when the pool has `replicas`. */
  get replicaSet(): ReplicaSet<PostgresPool> | undefined {
    return this.#replicas;
  }

  /** Called once by createPool() with the replicas it built. */
  [attachReplicaSet](set: ReplicaSet<RoutedMemberPool>): void {
    if (this.#replicas !== undefined) throw new PoolError(this.name, 'replicas are already attached');
    this.#replicas = set as unknown as ReplicaSet<PostgresPool>;
    this.#reader = undefined;
  }

  /** Which read failures take a replica out of the rotation (see isPostgresMemberFailure). */
  [replicaFailure](error: unknown): boolean {
    return isPostgresMemberFailure(error);
  }

  /**
   * Starts the primary (its failure rejects, as without replicas) and every replica; a replica that cannot
   * be opened starts out of the rotation and joins when its health check passes.
   */
  override start(): Promise<void> {
    const replicas = this.#replicas;
    if (replicas === undefined) return super.start();
    return Promise.all([super.start(), replicas.startReplicas()]).then(() => undefined);
  }

  override pause(): void {
    super.pause();
    for (const member of this.#replicas?.replicaNames ?? []) this.#replicas!.group.pool(member).pause();
  }

  override resume(): void {
    super.resume();
    for (const member of this.#replicas?.replicaNames ?? []) this.#replicas!.group.pool(member).resume();
  }

  /** Use-time tracking on every member (the histograms themselves stay the primary's; members have their own). */
  override trackUseTime(enabled: boolean): void {
    super.trackUseTime(enabled);
    for (const member of this.#replicas?.replicaNames ?? []) {
      this.#replicas!.group.pool(member).trackUseTime(enabled);
    }
  }

  /** Drains every member; `drained` only if all did, `active` summed. */
  override async drain(options?: DrainOptions): Promise<DrainResult> {
    const replicas = this.#replicas;
    if (replicas === undefined) return super.drain(options);
    const results = await Promise.all([super.drain(options), replicas.drainReplicas(options)]);
    const all = [results[0], ...results[1]];
    return { drained: all.every((r) => r.drained), active: all.reduce((sum, r) => sum + r.active, 0) };
  }

  override async close(options?: CloseOptions): Promise<void> {
    const replicas = this.#replicas;
    if (replicas === undefined) return super.close(options);
    await Promise.all([super.close(options), replicas.closeReplicas(options)]);
  }

  /** The primary's metrics; with replicas, plus `members` (each member's, with its role and health). */
  override metrics(): PoolMetrics & Partial<Pick<ReplicatedPoolMetrics, 'members'>> {
    const own = super.metrics();
    const replicas = this.#replicas;
    if (replicas === undefined) return own;
    return { ...own, members: replicas.memberMetrics(own) };
  }

  /**
   * The primary's check; with replicas, every member is checked in parallel (a failing replica leaves the
   * rotation, a passing one comes back) and reported under `members`.
   */
  override checkHealth(
    options?: HealthCheckOptions,
  ): Promise<HealthCheckResult & Partial<Pick<RoutedHealthCheckResult, 'members'>>> {
    const replicas = this.#replicas;
    if (replicas === undefined) return super.checkHealth(options);
    return replicas.checkHealth(() => super.checkHealth(options), options);
  }

  /**
   * Runs one query on a pooled connection; resolves with pg's QueryResult (`.rows`, `.rowCount`, ...).
   *
   * What `use((client) => client.query(text, values))` does, on the hot path of most applications, so
   * without its async frames: one promise for acquire, query and release, the query run as pg's callback
   * form, and the connection given back (to the next waiter, at once) before the caller resumes, as
   * pg.Pool does. A connection the error broke is destroyed, and the error typed (see `returnAfterFailure`).
   * With `pipelineDepth` > 1, a text query may instead share a busy connection (see QueryPipeline).
   */
  query<R extends QueryResultRow = QueryResultRow>(
    text: string | QueryConfig<unknown[]>,
    values?: unknown[],
  ): Promise<QueryResult<R>> {
    if (typeof text !== 'string') return this.use((client) => client.query<R, unknown[]>(text, values));
    if (this.#pipeline !== undefined && pipelinable(text)) {
      return (this.#pipeline.query(text, values) as Promise<QueryResult<R>>).catch(rethrowWithCallerStack);
    }
    return new Promise<QueryResult<R>>((resolve, reject) => {
      this.acquire().then((lease) => {
        const client = lease.connection;
        runQuery(client, text, values, (error, result) => {
          try {
            if (!error) {
              lease.release();
              resolve(result as QueryResult<R>);
              return;
            }
            reject(this.returnAfterFailure(lease, error));
          } catch (unexpected) {
            // Never into pg's socket handler: the caller hears of it.
            reject(unexpected);
          }
        });
      }, reject);
    }).catch(rethrowWithCallerStack);
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
      const broken = this.isBroken(client, error);
      const failure = this.callError(client, error, broken);
      await this.rollbackAndReturn(lease, error, broken);
      throw failure;
    }
    lease.release();
    return result;
  }

  /** After a failed transaction: ROLLBACK and release, or destroy a connection that can't be trusted. */
  private async rollbackAndReturn(lease: Lease<Client>, error: unknown, broken: boolean): Promise<void> {
    const client = lease.connection;
    if (broken) {
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
