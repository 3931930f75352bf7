/**
 * Pipelined `query()` (`pipelineDepth` > 1): under load, up to `pipelineDepth` one-shot queries share one
 * pooled connection, sent one after the other without waiting for the answers (pg's pipeline mode, pg 8.23+).
 *
 * Why: with every connection busy, a caller of `query()` would otherwise wait for one to come back, and each
 * query costs a full round trip on its own: a write that wakes the server, a read that wakes us. Pipelined,
 * the server finds the next query already there when it finishes one. On one machine with client and
 * server sharing two CPUs that is about 1.5× the queries per second of pg.Pool (see the README's benchmark
 * section).
 *
 * How, without giving up the engine's guarantees:
 * - A query takes a lease of its own whenever the pool has one idle or can open one: pipelining only starts
 *   when the pool is at `max` with every connection out, so a pool below that behaves exactly as without it.
 * - Otherwise it joins the least busy lease already carrying pipelined queries, if that one has room and
 *   nobody is queued for a connection (joining would overtake them).
 * - Otherwise it waits in the engine's own fair queue (Pool.acquireShared: same timeout, same errors). When a
 *   pipelined query finishes, its lease takes over the work at the head of that queue, but only while the
 *   head is such a query: a plain acquire() (a transaction, a lease) queued first gets the next connection
 *   that comes back, and a lease whose queries are all done goes back to the pool.
 * - Only statements that can't leave the connection in a transaction, a COPY or LISTENing are pipelined
 *   (see `pipelinable`); the rest take a connection of their own, as before.
 * - A shared lease takes at most QUERIES_PER_SHARED_LEASE queries, then goes back to the pool once they have
 *   settled, so that what the pool does when a lease returns (maxLifetimeMs, maxUses, an eviction, leak
 *   detection's view of how long it was out) still happens under sustained load.
 * - A query that breaks the connection (its timeout included) fails the queries pipelined with it: they
 *   were on the same socket. Each gets a typed error (PoolConnectionError, or the PoolQueryTimeoutError
 *   that destroyed the connection); the connection is destroyed when the last one settles.
 */
import type { Client, QueryResult } from 'pg';
import type { Lease } from '../../core/index.js';
import { runQuery } from './postgres-connection.js';

/** One caller's query, queued or running. */
export interface PipelinedQuery {
  readonly text: string;
  readonly values: unknown[] | undefined;
  readonly resolve: (result: QueryResult) => void;
  readonly reject: (error: unknown) => void;
}

/** What the pipeline needs from its PostgresPool (the engine's shared acquire, error typing). */
export interface PipelineHost {
  acquireShared(
    share: PipelinedQuery,
    onLease: (lease: Lease<Client>) => void,
    onError: (error: unknown) => void,
  ): void;
  adoptShared(): PipelinedQuery | undefined;
  shareJoinable(): boolean;
  isBroken(client: Client, error: unknown): boolean;
  callError(client: Client, error: unknown, broken: boolean): unknown;
}

/**
 * Statements that may start a transaction block (BEGIN, START TRANSACTION), a COPY, or a LISTEN: the words,
 * in any case, anywhere in the text. A false alarm (`SELECT 'begin'`, a function body) only means the query
 * takes a connection of its own.
 */
const NOT_PIPELINABLE = /\b(?:begin|start|copy|listen)\b/i;

/** May `text` share a connection with other callers' queries? */
export function pipelinable(text: string): boolean {
  return !NOT_PIPELINABLE.test(text);
}

/** pg's client with its pipeline switch (pg 8.23+; switched only while no query is on it). */
type PipelineClient = Client & { pipeline: boolean };

/** How many queries one shared lease takes before it goes back to the pool (see the header). */
export const QUERIES_PER_SHARED_LEASE = 256;

/** A lease carrying pipelined queries. */
class PipelinedLease {
  inFlight = 0;
  /** Queries it has taken, in all. */
  taken = 0;
  /** Why the connection can't be trusted any more: nothing more joins, and it is destroyed at the end. */
  broken: unknown = undefined;
  returned = false;
  constructor(readonly lease: Lease<Client>) {}

  /** May it take another query (given room below the depth)? Not once its connection was lost (evicted). */
  get taking(): boolean {
    return (
      !this.returned &&
      this.broken === undefined &&
      this.taken < QUERIES_PER_SHARED_LEASE &&
      !this.lease.entry.evicted
    );
  }
}

export class QueryPipeline {
  readonly #depth: number;
  readonly #host: PipelineHost;
  /** Leases carrying pipelined queries (at most the pool's max). */
  readonly #leases: PipelinedLease[] = [];
  /** A query is being handed to pg (see #run). */
  #submitting = false;

  constructor(depth: number, host: PipelineHost) {
    this.#depth = depth;
    this.#host = host;
  }

  /** Runs `text` pipelined; resolves with pg's QueryResult. */
  query(text: string, values: unknown[] | undefined): Promise<QueryResult> {
    return new Promise<QueryResult>((resolve, reject) => {
      const query: PipelinedQuery = { text, values, resolve, reject };
      const joined = this.#host.shareJoinable() ? this.#leastBusy() : undefined;
      if (joined !== undefined) this.#run(joined, query);
      else this.#host.acquireShared(query, (lease) => this.#open(lease, query), reject);
    });
  }

  #leastBusy(): PipelinedLease | undefined {
    let best: PipelinedLease | undefined;
    for (const held of this.#leases) {
      if (!held.taking || held.inFlight >= this.#depth) continue;
      if (best === undefined || held.inFlight < best.inFlight) best = held;
    }
    return best;
  }

  /** A lease for `first`: switched to pipeline mode, then filled from the queue. */
  #open(lease: Lease<Client>, first: PipelinedQuery): void {
    (lease.connection as PipelineClient).pipeline = true;
    const held = new PipelinedLease(lease);
    this.#leases.push(held);
    this.#run(held, first);
    this.#fill(held);
  }

  /** Takes over queued pipelined queries (the head of the engine's queue only) while there is room. */
  #fill(held: PipelinedLease): void {
    while (held.taking && held.inFlight < this.#depth) {
      const next = this.#host.adoptShared();
      if (next === undefined) return;
      this.#run(held, next);
    }
  }

  /**
   * Hands `query` to pg. pg may answer it before client.query() returns (a value it can't serialise fails
   * there and then), from inside its own send loop: taking more work then would put a query on pg's list of
   * sent queries ahead of the one whose messages went out first, and answer each with the other's result. So
   * an answer that comes during the call is handled on the next tick, and the connection, whose list pg may
   * still hold that query on, is retired.
   */
  #run(held: PipelinedLease, query: PipelinedQuery): void {
    held.inFlight++;
    held.taken++;
    this.#submitting = true;
    try {
      runQuery(held.lease.connection, query.text, query.values, (error, result) => {
        if (!this.#submitting) {
          this.#settled(held, query, error, result);
          return;
        }
        held.broken ??= error ?? new Error('pg answered a query before it was sent');
        process.nextTick(() => this.#settled(held, query, error, result));
      });
    } finally {
      this.#submitting = false;
    }
  }

  #settled(
    held: PipelinedLease,
    query: PipelinedQuery,
    error: unknown,
    result: QueryResult | undefined,
  ): void {
    held.inFlight--;
    let failure: unknown;
    try {
      if (error) {
        const client = held.lease.connection;
        const broken = this.#host.isBroken(client, error);
        if (broken && held.broken === undefined) held.broken = error;
        failure = this.#host.callError(client, error, broken);
      }
      this.#fill(held);
      if (held.inFlight === 0) this.#giveBack(held);
    } catch (unexpected) {
      // Never into pg's socket handler: the caller hears of it.
      failure = unexpected;
      error = unexpected;
    }
    if (error) query.reject(failure);
    else query.resolve(result!);
  }

  /**
   * All its queries settled: back to the pool out of pipeline mode, or destroyed if one broke it. A broken
   * one stays in pipeline mode: pg may still hold a query it failed while sending (see #run), whose answers
   * only pipeline mode reads as that query's (out of it, pg would report them as unexpected messages).
   */
  #giveBack(held: PipelinedLease): void {
    held.returned = true;
    this.#leases.splice(this.#leases.indexOf(held), 1);
    if (held.broken !== undefined) {
      held.lease.destroy(held.broken);
      return;
    }
    (held.lease.connection as PipelineClient).pipeline = false;
    held.lease.release();
  }
}
