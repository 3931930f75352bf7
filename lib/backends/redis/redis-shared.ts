/**
 * The shared client behind `pool.shared`: one multiplexed ioredis client for stateless commands, owned by
 * the pool. It is one of `pool.max` connections (the leases get the rest, see splitConnectionBudget).
 *
 * - Created at `start()` (fail-fast) or on first access; never reconnects by itself (`retryStrategy: null`).
 * - Lost (server closed it, CLIENT KILL, a timed-out command): the next access creates a fresh one.
 * - A failed connect attempt backs off like the engine (`pool.createRetry`): meanwhile `pool.shared` returns
 *   the dead client, whose commands fail at once with PoolUnavailableError (the connect error as `cause`),
 *   so a down server sees one attempt per backoff step, not one per caller.
 */
import type { Redis } from 'ioredis';
import {
  createBackoffDelay,
  PoolClosedError,
  PoolCreateTimeoutError,
  PoolError,
  PoolUnavailableError,
  toError,
  type ResolvedCreateRetry,
} from '../../core/index.js';
import {
  clientState,
  closeClient,
  connectClient,
  createClient,
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
  readonly #createTimeoutMs: number;
  #client: Redis | undefined;
  #connecting: Promise<void> | undefined;
  #failures = 0;
  #retryAt = 0;
  #created = 0;
  #closed = false;

  constructor(context: RedisContext, retry: ResolvedCreateRetry, createTimeoutMs: number) {
    this.#context = context;
    this.#retry = retry;
    this.#createTimeoutMs = createTimeoutMs;
  }

  /** The current client, or a fresh one if it was lost (unless a failed attempt is backing off). */
  get(): Redis {
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

  #open(): Redis {
    const context = this.#context;
    let client: Redis;
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
    if (previous !== undefined) void closeClient(previous);

    const controller = new AbortController();
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
        this.#failures = 0;
        this.#retryAt = 0;
      },
      (error: unknown) => {
        clearTimeout(timer);
        const cause = context.redactor.error(toError(error));
        state.lost = true;
        state.downReason = cause;
        if (!this.#closed && this.#client === client) {
          this.#failures++;
          this.#retryAt = performance.now() + createBackoffDelay(this.#retry, this.#failures);
          // Reported like any lost connection (an 'error' event, phase 'connection'); nobody else hears of it.
          context.connectionLost(client, cause);
        }
        throw cause;
      },
    );
    this.#connecting.catch(noop);
    return client;
  }

  #unavailable(cause: unknown): PoolError {
    if (this.#closed) return new PoolClosedError(this.#context.poolName, 'the pool is closed');
    const message = cause === undefined ? '' : `: ${this.#context.redactor.text(toError(cause).message)}`;
    return new PoolUnavailableError(this.#context.poolName, `could not connect the shared client${message}`, {
      cause,
    });
  }
}

function noop(): void {}
