/**
 * A call failed because its connection did: the socket was reset or closed, the server ended the session
 * (PostgreSQL FATAL 57P01 admin shutdown, say), or the driver reports the connection lost. The connection
 * has been destroyed (never lent again). `cause` is the driver's error, redacted; its `code` (ECONNRESET,
 * 57P01, ...) is copied here, so `err.code` checks written against the driver's errors keep working.
 *
 * A statement the server refused (SQL syntax, duplicate key, WRONGTYPE) is not one of these: the caller
 * gets the driver's own error for it.
 */
import { brandPoolError, PoolError } from '../core/index.js';

export class PoolConnectionError extends PoolError {
  override name = 'PoolConnectionError';
  /** The driver's error code (`ECONNRESET`, `57P01`, ...), when it had one. */
  readonly code?: string | number;

  constructor(poolName: string, cause: unknown) {
    super(poolName, `the connection failed during the call: ${messageOf(cause)}`, { cause });
    const code = (cause as { code?: unknown } | null | undefined)?.code;
    if (typeof code === 'string' || typeof code === 'number') this.code = code;
  }
}
brandPoolError(PoolConnectionError, PoolError);

function messageOf(error: unknown): string {
  // Not `instanceof Error`: a driver's error may come from another realm (Jest's sandbox, a vm context).
  const message = (error as { message?: unknown } | null | undefined)?.message;
  const text = typeof message === 'string' && message !== '' ? message : String(error);
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
}
