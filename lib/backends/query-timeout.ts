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

/** Whether `timeoutMs` bounds anything (Infinity and non-positive values mean "off"). */
function isBounded(timeoutMs: number): boolean {
  return timeoutMs > 0 && timeoutMs < Infinity;
}

/**
 * Arms the timer both forms share. When it fires first it calls `onTimeout`, then `expire` with the
 * PoolQueryTimeoutError. The returned `claim()` is for the driver's outcome: true (and the timer cleared) when
 * it came first, false when the timeout already fired (the late outcome is to be dropped).
 */
function armQueryTimeout(
  options: QueryTimeoutOptions,
  expire: (error: PoolQueryTimeoutError) => void,
): () => boolean {
  const { poolName, timeoutMs } = options;
  let settled = false;
  // Unref'd like every pool timer: the connection's socket keeps the process alive while it matters.
  const timer = setTimeout(() => {
    if (settled) return;
    settled = true;
    const error = new PoolQueryTimeoutError(poolName, timeoutMs);
    try {
      options.onTimeout(error);
    } finally {
      expire(error);
    }
  }, timeoutMs);
  timer.unref();
  return () => {
    if (settled) return false;
    settled = true;
    clearTimeout(timer);
    return true;
  };
}

/**
 * Resolves or rejects like `work`, unless `timeoutMs` passes first: then rejects with PoolQueryTimeoutError.
 * A late outcome of `work` is absorbed (no unhandled rejection).
 */
export function withQueryTimeout<R>(work: PromiseLike<R>, options: QueryTimeoutOptions): Promise<R> {
  if (!isBounded(options.timeoutMs)) return Promise.resolve(work);
  return new Promise<R>((resolve, reject) => {
    const claim = armQueryTimeout(options, reject);
    work.then(
      (value) => {
        if (claim()) resolve(value);
      },
      (error: unknown) => {
        if (claim()) reject(error);
      },
    );
  });
}

/** A driver's completion callback: an error, or none and the value. */
export type QueryCallback<R> = (error: unknown, value?: R) => void;

/**
 * The callback form of withQueryTimeout, for hot paths on a driver's callback API (no promise per query):
 * returns the callback to hand the driver. It passes the driver's outcome on to `done`, unless `timeoutMs`
 * passes first: then `done` gets PoolQueryTimeoutError (after `onTimeout`) and the late outcome is dropped.
 * With the timeout off it returns `done` itself, so an unbounded pool pays nothing.
 */
export function withQueryTimeoutCallback<R>(
  done: QueryCallback<R>,
  options: QueryTimeoutOptions,
): QueryCallback<R> {
  if (!isBounded(options.timeoutMs)) return done;
  const claim = armQueryTimeout(options, done);
  return (error, value) => {
    if (claim()) done(error, value);
  };
}
