/**
 * RedisPool: a BackendPool of exclusive ioredis clients (leases, for MULTI/WATCH, blocking commands,
 * SELECT, SUBSCRIBE: `pool.use(fn)`, `pool.acquire()`), plus `pool.shared`, one multiplexed client for
 * stateless commands. The shared client is one of `pool.max`; `metrics()` describes the leases (its `max`
 * is `pool.max - 1`) and adds `shared`.
 *
 * `TClient` is ioredis' `Cluster` for a pool created with the `cluster` option (`RedisPool<Cluster>`),
 * `Redis` otherwise (one server, or the master found through Sentinel).
 */
import type { Cluster, Redis } from 'ioredis';
import { PoolError, toError, type CloseOptions, type PoolMetrics } from '../../core/index.js';
import type { BackendPoolInit } from '../backend-definition.js';
import { BackendPool, type BackendConnectionInfo } from '../backend-pool.js';
import { clientStats, pingClient, type RedisContext } from './redis-connection.js';
import { hasSharedClient } from './redis-options.js';
import { SharedRedisClient, type SharedClientMetrics } from './redis-shared.js';

export interface RedisPoolMetrics extends PoolMetrics {
  /** The shared client (not counted in `size`, `max`, `idle` or `active`, which describe the leases). */
  shared: SharedClientMetrics;
}

/** `connections()`'s entry for the shared client: it is not the engine's, so its id is 0 (the engine's start at 1). */
export const SHARED_CONNECTION_ID = 0;

export class RedisPool<TClient extends Redis | Cluster = Redis> extends BackendPool<TClient> {
  readonly #shared: SharedRedisClient | undefined;
  readonly #startup: 'fail-fast' | 'lazy';
  /** The health check's PING of the shared client still waiting for its answer, if any. */
  #sharedPing: Promise<void> | undefined;

  constructor(init: BackendPoolInit<TClient, unknown>) {
    super(init);
    const { options } = init;
    // The shared client retries, breaks and times out its connection attempts as the leases' do.
    const resolved = this.engineOptions;
    this.#startup = resolved.startup;
    this.#shared = hasSharedClient(options)
      ? new SharedRedisClient(
          this.backendContext as unknown as RedisContext,
          resolved.createRetry,
          resolved.circuitBreaker,
          resolved.createTimeoutMs,
        )
      : undefined;
    const shared = this.#shared;
    // A lease opening proves the server is back: the shared client need not wait out its backoff.
    if (shared !== undefined) this.on('create', () => shared.serverReachable());
  }

  /**
   * The pool's multiplexed client for stateless commands (`await pool.shared.get('k')`). Stateful commands
   * (WATCH, SELECT, SUBSCRIBE, blocking ones, MULTI without pipelining) are refused: use `pool.use()`.
   * Don't keep the returned client around: after a failure this returns a fresh one.
   */
  get shared(): TClient {
    if (this.#shared === undefined) {
      throw new PoolError(this.name, 'the shared client is disabled ("shared: false"); use pool.use()');
    }
    return this.#shared.get() as TClient;
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

  /**
   * The leases (see BackendPool.connections), then the shared client once it exists, with state `shared`
   * and id SHARED_CONNECTION_ID: its command count and time are those of every caller of `pool.shared`.
   */
  override connections(): BackendConnectionInfo[] {
    const leases = super.connections();
    const client = this.#shared?.peek();
    const createdAt = this.#shared?.createdAt;
    if (client === undefined || createdAt === undefined) return leases;
    const stats = clientStats(client);
    const queries = stats?.queries ?? 0;
    const shared: BackendConnectionInfo = {
      id: SHARED_CONNECTION_ID,
      state: 'shared',
      createdAt,
      ageMs: Math.max(0, Date.now() - createdAt),
      idleMs: 0,
      uses: 0, // never lent: every caller of `pool.shared` uses it at once
      queries,
      avgQueryMs: queries === 0 ? null : stats!.totalQueryMs / queries,
      ...(stats?.lastError === undefined ? {} : { lastError: stats.lastError }),
    };
    return [...leases, shared];
  }

  /**
   * checkHealth() pings a lease (see BackendPool) and then the shared client, which most commands go
   * through: a pool whose shared client can't reach the server is down. A shared client nobody has used yet
   * (lazy start-up) is not opened for it.
   */
  protected override async probeOtherConnections(signal: AbortSignal): Promise<void> {
    const shared = this.#shared;
    if (shared === undefined || shared.peek() === undefined) return;
    // One PING at a time: on a stuck link, checks that time out don't pile PINGs up on the shared client.
    let ping = this.#sharedPing;
    if (ping === undefined) {
      ping = this.#sharedPing = pingShared(shared).finally(() => {
        this.#sharedPing = undefined;
      });
      // Its outcome may reach no check (each gives up at its own timeout): never an unhandled rejection.
      ping.catch(noop);
    }
    try {
      await abortable(ping, signal);
    } catch (error) {
      throw this.redactError(
        new PoolError(this.name, `the shared client: ${toError(error).message}`, { cause: error }),
      );
    }
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

/** `work`, or the signal's reason once it aborts (the ping itself is left to the client's own timeouts). */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Connects the shared client if needed, then the pool's own PING (CLUSTER INFO on a Cluster; not counted). */
async function pingShared(shared: SharedRedisClient): Promise<void> {
  await shared.ready();
  await pingClient(shared.get());
}

function noop(): void {}
