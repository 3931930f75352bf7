/**
 * RedisPool: a BackendPool of exclusive ioredis clients (leases, for MULTI/WATCH, blocking commands,
 * SELECT, SUBSCRIBE: `pool.use(fn)`, `pool.acquire()`), plus `pool.shared`, one multiplexed client for
 * stateless commands. The shared client is one of `pool.max`; `metrics()` describes the leases (its `max`
 * is `pool.max - 1`) and adds `shared`.
 */
import type { Redis } from 'ioredis';
import {
  PoolError,
  resolvePoolOptions,
  type AcquireOptions,
  type CloseOptions,
  type PoolMetrics,
} from '../../core/index.js';
import type { BackendPoolInit } from '../backend-definition.js';
import { BackendPool } from '../backend-pool.js';
import { leaseFailure, type RedisContext } from './redis-connection.js';
import { hasSharedClient } from './redis-options.js';
import { SharedRedisClient, type SharedClientMetrics } from './redis-shared.js';

export interface RedisPoolMetrics extends PoolMetrics {
  /** The shared client (not counted in `size`, `max`, `idle` or `active`, which describe the leases). */
  shared: SharedClientMetrics;
}

export class RedisPool extends BackendPool<Redis> {
  readonly #shared: SharedRedisClient | undefined;
  readonly #startup: 'fail-fast' | 'lazy';

  constructor(init: BackendPoolInit<Redis, unknown>) {
    super(init);
    const { options } = init;
    // Validated already (BackendPool's constructor): only read here.
    const resolved = resolvePoolOptions({ ...options.pool, name: options.name, factory: NO_FACTORY });
    this.#startup = resolved.startup;
    this.#shared = hasSharedClient(options)
      ? new SharedRedisClient(
          this.backendContext as RedisContext,
          resolved.createRetry,
          resolved.createTimeoutMs,
        )
      : undefined;
  }

  /**
   * The pool's multiplexed client for stateless commands (`await pool.shared.get('k')`). Stateful commands
   * (WATCH, SELECT, SUBSCRIBE, blocking ones, MULTI without pipelining) are refused: use `pool.use()`.
   * Don't keep the returned client around: after a failure this returns a fresh one.
   */
  get shared(): Redis {
    if (this.#shared === undefined) {
      throw new PoolError(this.name, 'the shared client is disabled ("shared: false"); use pool.use()');
    }
    return this.#shared.get();
  }

  /**
   * Acquires a lease, runs `fn` on its exclusive client, and gives it back clean (see BackendPool.use). When a
   * command timed out, the caller gets PoolQueryTimeoutError even if `fn` failed on a later consequence of it.
   */
  override async use<R>(fn: (client: Redis) => R | Promise<R>, options?: AcquireOptions): Promise<R> {
    let client: Redis | undefined;
    try {
      return await super.use((leased) => {
        client = leased;
        return fn(leased);
      }, options);
    } catch (error) {
      throw leaseFailure(client, error);
    }
  }

  /** Starts the leases (see BackendPool.start), then, unless `startup` is `lazy`, connects the shared client. */
  override async start(): Promise<void> {
    await super.start();
    if (this.#shared !== undefined && this.#startup !== 'lazy') {
      try {
        await this.#shared.ready();
      } catch (error) {
        throw this.redactError(error);
      }
    }
  }

  /** Closes the shared client and every lease connection; idempotent. */
  override async close(options?: CloseOptions): Promise<void> {
    await Promise.all([this.#shared?.close(), super.close(options)]);
  }

  override metrics(): RedisPoolMetrics {
    const shared: SharedClientMetrics = this.#shared?.metrics() ?? {
      state: 'disabled',
      created: 0,
      failures: 0,
    };
    return { ...super.metrics(), shared };
  }
}

const NO_FACTORY = Object.freeze({
  create: () => Promise.reject(new Error('unused')),
  destroy: () => Promise.resolve(),
});
