/**
 * ShardedPool: one pool per shard under one name. `forKey(key)` is the pool of the shard that holds `key`
 * (the `shardKey` function's answer, or rendezvous hashing of `String(key)` over the shard names);
 * `shard(name)` is a shard by name; `each(fn)` runs `fn` on every shard, a few at a time. Lifecycle,
 * metrics and health cover every shard, each reported on its own as well.
 *
 * A shard is a pool like any other (replicas included), created from the shard's options over the
 * top-level ones; its name is `orders.shard[eu]`.
 */
import {
  PoolError,
  type CloseOptions,
  type DrainOptions,
  type DrainResult,
  type PoolEventListener,
  type PoolHistograms,
  type PoolEventName,
  type PoolMetrics,
  type PoolState,
} from '../../core/index.js';
import type { HealthCheckOptions } from '../backend-health.js';
import type { BackendConnectionInfo } from '../backend-pool.js';
import { aggregateMetrics, mergePoolHistograms } from './aggregate-metrics.js';
import type { MemberHealthResult, RoutedHealthCheckResult, RoutedMemberPool } from './replica-set.js';
import { PoolFanOutError, PoolUnknownShardError } from './routing-errors.js';
import type { ShardKey } from './routing-options.js';
import { RendezvousHash } from './shard-hash.js';
import { brandRoutingKind } from './routing-kind.js';

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

/** What a shard's pool must offer: routing's member needs plus every pool event. */
export interface ShardMemberPool extends RoutedMemberPool {
  readonly backend: string;
  readonly target: string;
  connections(): BackendConnectionInfo[];
  histograms(): PoolHistograms;
  trackUseTime(enabled: boolean): void;
  on<K extends PoolEventName>(event: K, listener: PoolEventListener<unknown, K>): unknown;
  off<K extends PoolEventName>(event: K, listener: PoolEventListener<unknown, K>): unknown;
}

/** `metrics()`: every shard's summed (see aggregateMetrics), plus each shard's own. */
export interface ShardedPoolMetrics extends PoolMetrics {
  readonly shards: Readonly<Record<string, PoolMetrics>>;
}

export interface ShardedPoolInit<P extends ShardMemberPool> {
  readonly name: string;
  readonly backend: string;
  readonly shards: readonly { readonly name: string; readonly pool: P }[];
  readonly shardKey?: (key: ShardKey) => string;
}

export interface EachOptions {
  /** How many shards run `fn` at once. Default 8. */
  concurrency?: number;
}

export const DEFAULT_FAN_OUT_CONCURRENCY = 8;

export class ShardedPool<P extends ShardMemberPool = ShardMemberPool> implements AsyncDisposable {
  readonly name: string;
  readonly backend: string;
  /** Each shard's redacted target: safe to log. */
  readonly target: string;
  /** Shard names, in configuration order. */
  readonly names: readonly string[];
  readonly #pools: ReadonlyMap<string, P>;
  readonly #hash: RendezvousHash;
  readonly #shardKey: ((key: ShardKey) => string) | undefined;

  constructor(init: ShardedPoolInit<P>) {
    this.name = init.name;
    this.backend = init.backend;
    this.names = Object.freeze(init.shards.map((shard) => shard.name));
    this.#pools = new Map(init.shards.map((shard) => [shard.name, shard.pool]));
    this.#hash = new RendezvousHash(this.names);
    this.#shardKey = init.shardKey;
    this.target = init.shards.map((shard) => `${shard.name}=${shard.pool.target}`).join(', ');
  }

  /** The most alarming shard state (see aggregateMetrics). */
  get state(): PoolState {
    return aggregateMetrics(
      this.name,
      this.#all().map((pool) => pool.metrics()),
    ).state;
  }

  // ---------------------------------------------------------------------------------------------------
  // Routing
  // ---------------------------------------------------------------------------------------------------

  /** The name of the shard that holds `key`. */
  shardFor(key: ShardKey): string {
    if (typeof key !== 'string' && typeof key !== 'number' && typeof key !== 'bigint') {
      throw new PoolError(this.name, `a shard key must be a string, number or bigint (got ${typeof key})`);
    }
    if (this.#shardKey === undefined) return this.#hash.pick(String(key));
    const shard: unknown = this.#shardKey(key);
    if (typeof shard !== 'string' || !this.#pools.has(shard)) {
      throw new PoolUnknownShardError(this.name, String(shard), this.names, 'shardKey returned');
    }
    return shard;
  }

  /** The pool of the shard that holds `key`. */
  forKey(key: ShardKey): P {
    return this.#pools.get(this.shardFor(key))!;
  }

  /** A shard's pool by name; PoolUnknownShardError for a name the pool does not have. */
  shard(name: string): P {
    const pool = this.#pools.get(name);
    if (pool === undefined) throw new PoolUnknownShardError(this.name, String(name), this.names, 'shard');
    return pool;
  }

  /**
   * Runs `fn` on every shard, at most `concurrency` at once, and resolves with the results by shard name.
   * If some fail, every shard still runs, then it rejects with PoolFanOutError (errors and results by shard).
   */
  async each<R>(
    fn: (pool: P, shard: string) => R | Promise<R>,
    options?: EachOptions,
  ): Promise<Record<string, R>> {
    const concurrency = options?.concurrency ?? DEFAULT_FAN_OUT_CONCURRENCY;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new PoolError(
        this.name,
        `each(): concurrency must be a whole number from 1 (got ${String(concurrency)})`,
      );
    }
    const results: Record<string, R> = {};
    const errors: Record<string, Error> = {};
    const queue = [...this.names];
    const worker = async (): Promise<void> => {
      for (let shard = queue.shift(); shard !== undefined; shard = queue.shift()) {
        try {
          results[shard] = await fn(this.#pools.get(shard)!, shard);
        } catch (error) {
          errors[shard] = error instanceof Error ? error : new Error(String(error));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
    if (Object.keys(errors).length > 0)
      throw new PoolFanOutError<R>(this.name, errors, ordered(this.names, results));
    return ordered(this.names, results);
  }

  // ---------------------------------------------------------------------------------------------------
  // Lifecycle: every shard, in parallel
  // ---------------------------------------------------------------------------------------------------

  /**
   * Starts every shard. Rejects (after all have settled) when one cannot be opened: a sharded pool missing
   * a shard cannot serve that shard's keys, which is as much an outage as a single pool being down. The
   * shards that did start stay started; start() may be called again.
   */
  async start(): Promise<void> {
    const outcomes = await Promise.allSettled(this.#all().map((pool) => pool.start()));
    const failed = outcomes.findIndex((outcome) => outcome.status === 'rejected');
    if (failed !== -1) throw (outcomes[failed] as PromiseRejectedResult).reason;
  }

  pause(): void {
    for (const pool of this.#all()) pool.pause();
  }

  resume(): void {
    for (const pool of this.#all()) pool.resume();
  }

  async drain(options?: DrainOptions): Promise<DrainResult> {
    const results = await Promise.all(this.#all().map((pool) => pool.drain(options)));
    return {
      drained: results.every((r) => r.drained),
      active: results.reduce((sum, r) => sum + r.active, 0),
    };
  }

  async close(options?: CloseOptions): Promise<void> {
    await Promise.all(this.#all().map((pool) => pool.close(options)));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------------------------------------------
  // Observability
  // ---------------------------------------------------------------------------------------------------

  metrics(): ShardedPoolMetrics {
    const shards: Record<string, PoolMetrics> = {};
    for (const name of this.names) shards[name] = this.#pools.get(name)!.metrics();
    return { ...aggregateMetrics(this.name, Object.values(shards)), shards };
  }

  /** Every shard's connections, each tagged with its shard (ids are unique within a shard only). */
  connections(): (BackendConnectionInfo & { readonly shard: string })[] {
    return this.names.flatMap((shard) =>
      this.#pools
        .get(shard)!
        .connections()
        .map((info) => ({ ...info, shard })),
    );
  }

  /** The shards' histograms added together (see mergeHistograms). */
  histograms(): PoolHistograms {
    return mergePoolHistograms(this.#all().map((pool) => pool.histograms()));
  }

  trackUseTime(enabled: boolean): void {
    for (const pool of this.#all()) pool.trackUseTime(enabled);
  }

  /** Checks every shard in parallel: up only when all are; each shard's result under `members`. */
  async checkHealth(options?: HealthCheckOptions): Promise<RoutedHealthCheckResult> {
    const startedAt = performance.now();
    const results = await Promise.all(this.names.map((name) => this.#pools.get(name)!.checkHealth(options)));
    const members: Record<string, MemberHealthResult> = {};
    const down: string[] = [];
    this.names.forEach((name, i) => {
      members[name] = { ...results[i]!, role: 'shard' };
      if (results[i]!.status !== 'up') down.push(`${name}: ${results[i]!.error ?? 'down'}`);
    });
    const base = {
      latencyMs: Math.round((performance.now() - startedAt) * 1000) / 1000,
      metrics: this.metrics(),
      members,
    };
    return down.length === 0
      ? { status: 'up', ...base }
      : { status: 'down', error: `shard ${down.join('; shard ')}`, ...base };
  }

  /** Listens on every shard (the event's pool is in its arguments where the event has one). */
  on<K extends PoolEventName>(event: K, listener: PoolEventListener<unknown, K>): this {
    for (const pool of this.#all()) pool.on(event, listener);
    return this;
  }

  off<K extends PoolEventName>(event: K, listener: PoolEventListener<unknown, K>): this {
    for (const pool of this.#all()) pool.off(event, listener);
    return this;
  }

  [inspectSymbol](): string {
    return `ShardedPool { name: '${this.name}', backend: '${this.backend}', shards: [${this.names
      .map((n) => `'${n}'`)
      .join(', ')}], state: '${this.state}' }`;
  }

  toJSON(): ShardedPoolMetrics & { backend: string; target: string } {
    return { backend: this.backend, target: this.target, ...this.metrics() };
  }

  #all(): P[] {
    return [...this.#pools.values()];
  }
}
brandRoutingKind(ShardedPool, 'sharded-pool');

function ordered<R>(names: readonly string[], values: Record<string, R>): Record<string, R> {
  const result: Record<string, R> = {};
  for (const name of names) if (name in values) result[name] = values[name]!;
  return result;
}
