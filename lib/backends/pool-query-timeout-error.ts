/**
 * A query got no answer within `queryTimeoutMs`. Its connection has been destroyed (never returned to the
 * pool): the query may still be running, or the network may have swallowed it, and in either case the
 * connection's protocol state is unknown.
 */
import { brandPoolError, PoolError, type PoolErrorOptions } from '../core/index.js';

export class PoolQueryTimeoutError extends PoolError {
  override name = 'PoolQueryTimeoutError';
  readonly timeoutMs: number;

  constructor(poolName: string, timeoutMs: number, options?: PoolErrorOptions) {
    super(poolName, `query timed out after ${timeoutMs} ms; its connection was destroyed`, options);
    this.timeoutMs = timeoutMs;
  }
}
brandPoolError(PoolQueryTimeoutError, PoolError);
