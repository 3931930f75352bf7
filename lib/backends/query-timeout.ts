/**
 * The client-side query timeout every backend applies: race the driver's promise with a timer. A
 * server-side limit (PostgreSQL's statement_timeout, say) cannot help when the network blackholes a
 * connection mid-query: no answer, and no error either, ever comes back. Only the client can give up.
 */
import { PoolQueryTimeoutError } from './pool-query-timeout-error.js';

export interface QueryTimeoutOptions {
  poolName: string;
  /** Infinity (or a non-positive value) disables the timeout and returns `work` unchanged. */
  timeoutMs: number;
  /**
   * Called once, when the timer fires, before the caller's promise rejects: destroy the connection here
   * (it must never be reused) and, if the driver allows, cancel the query server-side.
   */
  onTimeout(error: PoolQueryTimeoutError): void;
}

/**
 * Resolves or rejects like `work`, unless `timeoutMs` passes first: then rejects with PoolQueryTimeoutError.
 * A late outcome of `work` is absorbed (no unhandled rejection).
 */
export function withQueryTimeout<R>(work: PromiseLike<R>, options: QueryTimeoutOptions): Promise<R> {
  const { timeoutMs } = options;
  if (!(timeoutMs > 0 && timeoutMs < Infinity)) return Promise.resolve(work);
  return new Promise<R>((resolve, reject) => {
    let settled = false;
    // Unref'd like every pool timer: the connection's socket keeps the process alive while it matters.
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      const error = new PoolQueryTimeoutError(options.poolName, timeoutMs);
      try {
        options.onTimeout(error);
      } finally {
        reject(error);
      }
    }, timeoutMs);
    timer.unref();
    work.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
