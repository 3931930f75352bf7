/**
 * Typed errors. Every error the pool raises is an `instanceof PoolError`, carries the pool's name in
 * `poolName` and has a distinct `name`, so callers can branch on either.
 *
 * The package ships an ESM and a CommonJS build, and an app can end up loading both (a Nest 11 app with an
 * ESM dependency, say). Those are two copies of every class, so a plain `instanceof` would fail across them.
 * Each error class therefore answers `instanceof` from a brand stored on the prototype under a global
 * symbol, which both copies share.
 */

const ERROR_KINDS = Symbol.for('nestjs-pool.error-kinds');

type Branded = { readonly [ERROR_KINDS]?: readonly string[] };

function brand(errorClass: { prototype: object; name: string }, parent?: { prototype: object }): void {
  const parentKinds = parent ? ((parent.prototype as Branded)[ERROR_KINDS] ?? []) : [];
  Object.defineProperty(errorClass.prototype, ERROR_KINDS, {
    value: Object.freeze([...parentKinds, errorClass.name]),
  });
}

function hasKind(value: unknown, kind: string): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const kinds = (value as Branded)[ERROR_KINDS];
  return Array.isArray(kinds) && kinds.includes(kind);
}

export interface PoolErrorOptions {
  cause?: unknown;
}

export class PoolError extends Error {
  override name = 'PoolError';
  /** The name of the pool that raised the error. */
  readonly poolName: string;

  constructor(poolName: string, message: string, options?: PoolErrorOptions) {
    super(
      `Pool "${poolName}": ${message}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.poolName = poolName;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(this, value) || hasKind(value, this.name);
  }
}
brand(PoolError);

/** Snapshot of the pool at the moment an acquire gave up waiting. */
export interface PoolTimeoutDetails {
  timeoutMs: number;
  size: number;
  active: number;
  idle: number;
  pending: number;
  waiting: number;
  max: number;
}

/**
 * An acquire waited `timeoutMs` without getting a connection. When the pool could not create connections
 * meanwhile, `cause` is the last connection error (e.g. ECONNREFUSED).
 */
export class PoolTimeoutError extends PoolError implements PoolTimeoutDetails {
  override name = 'PoolTimeoutError';
  readonly timeoutMs: number;
  readonly size: number;
  readonly active: number;
  readonly idle: number;
  readonly pending: number;
  readonly waiting: number;
  readonly max: number;

  constructor(poolName: string, details: PoolTimeoutDetails, options?: PoolErrorOptions) {
    // Not `instanceof Error`: a driver's error may come from another realm (vm context, Jest's sandbox).
    const causeMessage = (options?.cause as { message?: unknown } | undefined)?.message;
    const causeText = typeof causeMessage === 'string' ? `; last connection error: ${causeMessage}` : '';
    super(
      poolName,
      `timed out after ${details.timeoutMs} ms waiting for a connection ` +
        `(size ${details.size}/${details.max}, active ${details.active}, idle ${details.idle}, ` +
        `pending ${details.pending}, waiting ${details.waiting})${causeText}`,
      options,
    );
    this.timeoutMs = details.timeoutMs;
    this.size = details.size;
    this.active = details.active;
    this.idle = details.idle;
    this.pending = details.pending;
    this.waiting = details.waiting;
    this.max = details.max;
  }
}
brand(PoolTimeoutError, PoolError);

/**
 * The pool cannot serve right now: its circuit breaker is open after repeated connection failures (and no
 * connection is left that could be released to this caller), or start-up could not open a connection.
 * `cause` is the last connection error.
 */
export class PoolUnavailableError extends PoolError {
  override name = 'PoolUnavailableError';
}
brand(PoolUnavailableError, PoolError);

/** The pool is draining or closed and lends no more connections. */
export class PoolClosedError extends PoolError {
  override name = 'PoolClosedError';
}
brand(PoolClosedError, PoolError);

/** The wait queue already holds `maxWaiting` callers. */
export class PoolQueueFullError extends PoolError {
  override name = 'PoolQueueFullError';
  readonly maxWaiting: number;

  constructor(poolName: string, maxWaiting: number) {
    super(poolName, `wait queue is full (maxWaiting ${maxWaiting})`);
    this.maxWaiting = maxWaiting;
  }
}
brand(PoolQueueFullError, PoolError);

/** A connection attempt took longer than `createTimeoutMs`. */
export class PoolCreateTimeoutError extends PoolError {
  override name = 'PoolCreateTimeoutError';
}
brand(PoolCreateTimeoutError, PoolError);

/**
 * An option is invalid. Thrown synchronously by the constructor (and by `createPool()`), never later.
 * `field` is the option's path, e.g. `min` or `createRetry.factor`.
 */
export class PoolConfigError extends PoolError {
  override name = 'PoolConfigError';
  readonly field: string;

  constructor(poolName: string, field: string, reason: string) {
    super(poolName, `invalid option "${field}": ${reason}`);
    this.field = field;
  }
}
brand(PoolConfigError, PoolError);

/** Lets other modules (backends) brand their own PoolError subclasses the same way. */
export const brandPoolError: (
  errorClass: { prototype: object; name: string },
  parent: { prototype: object },
) => void = brand;
