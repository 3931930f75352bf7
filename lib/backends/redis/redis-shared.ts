/**
 * The shared client behind `pool.shared`: one multiplexed ioredis client for stateless commands, owned by
 * the pool. It is one of `pool.max` connections (the leases get the rest, see splitConnectionBudget).
 *
 * - Created at `start()` (fail-fast) or on first access; never reconnects by itself (`retryStrategy: null`).
 * - Lost (server closed it, CLIENT KILL, a timed-out command): the next access creates a fresh one.
 * - A failed connect attempt backs off like the engine's leases: `pool.createRetry`, then, once
 *   `circuitBreaker.failureThreshold` attempts failed in a row, one attempt per `resetTimeoutMs` (the
 *   breaker's half-open probe). Meanwhile `pool.shared` returns the dead client, whose commands fail at once
 *   with PoolUnavailableError (the connect error as `cause`), so a down server sees one attempt per step,
 *   not one per caller.
 * - A lease connection opening is proof the server is back: the backoff is cut short and the next access
 *   reconnects at once. Without that, after a long outage the shared client (most of a typical app's
 *   traffic) would come back up to a whole backoff step after the leases.
 */
import {
  createBackoffDelay,
  PoolClosedError,
  PoolCreateTimeoutError,
  PoolError,
  PoolUnavailableError,
  toError,
  type ResolvedCircuitBreaker,
  type ResolvedCreateRetry,
} from '../../core/index.js';
import {
  clientState,
  closeClient,
  connectClient,
  createClient,
  type RedisClient,
  type RedisContext,
} from './redis-connection.js';

/** What `metrics().shared` reports. */
export interface SharedClientMetrics {
  /** `idle`: not created yet; `connecting`; `ready`; `down` (lost or backing off); `closed`; `disabled`. */
  state: 'idle' | 'connecting' | 'ready' | 'down' | 'closed' | 'disabled';
  /** Clients created (connect attempts) so far. */
  created: number;
  /** Connect attempts that failed in a row (0 once one succeeds). */
  failures: number;
}

export class SharedRedisClient {
  readonly #context: RedisContext;
  readonly #retry: ResolvedCreateRetry;
  readonly #breaker: ResolvedCircuitBreaker | false;
  readonly #createTimeoutMs: number;
  #client: RedisClient | undefined;
  #connecting: Promise<void> | undefined;
  #failures = 0;
  #retryAt = 0;
  #created = 0;
  #createdAt: number | undefined;
  #closed = false;
  /** The connect attempt in flight, if any. */
  #attempt: AbortController | undefined;

  constructor(
    context: RedisContext,
    retry: ResolvedCreateRetry,
    breaker: ResolvedCircuitBreaker | false,
    createTimeoutMs: number,
  ) {
    this.#context = context;
    this.#retry = retry;
    this.#breaker = breaker;
    this.#createTimeoutMs = createTimeoutMs;
  }

  /**
   * The server answered another connection (a lease opened): if the client is down and waiting out its
   * backoff, the next access reconnects at once.
   */
  serverReachable(): void {
    this.#retryAt = 0;
    // An attempt still in flight after failed ones may be stuck in the fault that just healed (a blackholed
    // handshake waits out createTimeoutMs): it is dropped, without counting as a failure, and the next access
    // connects afresh. A first attempt (no failures) is left alone: it is as fresh as the lease's.
    if (this.#failures > 0) this.#attempt?.abort(SUPERSEDED);
  }

  /** The current client, or a fresh one if it was lost (unless a failed attempt is backing off). */
  get(): RedisClient {
    if (this.#closed) throw new PoolClosedError(this.#context.poolName, 'the pool is closed');
    const current = this.#client;
    if (current !== undefined) {
      const state = clientState(current)!;
      if (!state.lost) return current;
      if (performance.now() < this.#retryAt) return current;
    }
    return this.#open();
  }

  /** Opens the client if needed and waits until it is ready; rejects with PoolUnavailableError otherwise. */
  async ready(): Promise<void> {
    const client = this.get();
    const state = clientState(client)!;
    if (state.lost) throw this.#unavailable(state.downReason ?? state.lastError);
    try {
      await this.#connecting;
    } catch (error) {
      throw this.#unavailable(error);
    }
  }

  /** The current client, if any (for `pool.connections()`); never opens one. */
  peek(): RedisClient | undefined {
    return this.#closed ? undefined : this.#client;
  }

  /** When the current client was created (epoch ms), or undefined. */
  get createdAt(): number | undefined {
    return this.#createdAt;
  }

  metrics(): SharedClientMetrics {
    let state: SharedClientMetrics['state'];
    const client = this.#client;
    if (this.#closed) state = 'closed';
    else if (client === undefined) state = 'idle';
    else if (clientState(client)!.lost) state = 'down';
    else state = client.status === 'ready' ? 'ready' : 'connecting';
    return { state, created: this.#created, failures: this.#failures };
  }

  /** Closes the client; `pool.shared` throws PoolClosedError from now on. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    return client === undefined ? Promise.resolve() : closeClient(client);
  }

  #open(): RedisClient {
    const context = this.#context;
    let client: RedisClient;
    try {
      client = createClient(context, 'shared', (lost, error) => context.connectionLost(lost, error));
    } catch (error) {
      if (error instanceof PoolError) {
        throw new PoolError(context.poolName, 'pool.shared is available once start() has been called', {
          cause: error,
        });
      }
      throw context.redactor.error(error);
    }
    const previous = this.#client;
    this.#client = client;
    this.#created++;
    this.#createdAt = Date.now();
    if (previous !== undefined) void closeClient(previous);

    const controller = new AbortController();
    this.#attempt = controller;
    const timer = setTimeout(() => {
      controller.abort(
        new PoolCreateTimeoutError(context.poolName, `connect timed out after ${this.#createTimeoutMs} ms`),
      );
    }, this.#createTimeoutMs);
    timer.unref();
    const state = clientState(client)!;
    this.#connecting = connectClient(client, controller.signal, context).then(
      () => {
        clearTimeout(timer);
        if (this.#attempt === controller) this.#attempt = undefined;
        this.#failures = 0;
        this.#retryAt = 0;
      },
      (error: unknown) => {
        clearTimeout(timer);
        const cause = context.redactor.error(toError(error));
        state.lost = true;
        state.downReason = cause;
        if (this.#attempt === controller) this.#attempt = undefined;
        if (controller.signal.reason === SUPERSEDED) {
          // Not a failure of the server's: the next access reconnects at once (see serverReachable).
          if (this.#client === client) this.#retryAt = 0;
        } else if (!this.#closed && this.#client === client) {
          this.#failures++;
          this.#retryAt = performance.now() + this.#retryDelay();
          // Reported like any lost connection (an 'error' event, phase 'connection'); nobody else hears of it.
          context.connectionLost(client, cause);
        }
        throw cause;
      },
    );
    this.#connecting.catch(noop);
    return client;
  }

  /** After #failures failed attempts in a row: the engine's backoff, then its breaker's probe interval. */
  #retryDelay(): number {
    const breaker = this.#breaker;
    if (breaker !== false && this.#failures >= breaker.failureThreshold) return breaker.resetTimeoutMs;
    return createBackoffDelay(this.#retry, this.#failures);
  }

  #unavailable(cause: unknown): PoolError {
    if (this.#closed) return new PoolClosedError(this.#context.poolName, 'the pool is closed');
    const message = cause === undefined ? '' : `: ${this.#context.redactor.text(toError(cause).message)}`;
    return new PoolUnavailableError(this.#context.poolName, `could not connect the shared client${message}`, {
      cause,
    });
  }
}

/** Why an attempt was dropped by serverReachable() (the reason its queued commands fail with). */
const SUPERSEDED = new Error('the connect attempt was dropped: another connection to the server just opened');

function noop(): void {}
