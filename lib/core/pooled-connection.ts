/**
 * The pool's record of one live connection (HikariCP's PoolEntry): its state and timestamps. The
 * connection itself is only handed out wrapped in a Lease.
 */

export type ConnectionState =
  /** In the idle list, ready to lend. */
  | 'idle'
  /** Lent to a caller through a lease. */
  | 'lent'
  /** Being checked (borrow validation or keepalive); neither idle nor lent. */
  | 'validating'
  /** Returned: being put back, or reset / tested before it can be lent again. */
  | 'returning'
  /** Gone: factory.destroy was called (exactly once). */
  | 'destroyed';

export class PooledConnection<T> {
  state: ConnectionState = 'idle';
  /**
   * Incremented on every lend (and once more when destroyed): a lease whose id no longer matches is stale
   * (double release, forced close). While the connection lives, it is also its number of uses.
   */
  borrowId = 0;
  /** Coarse-clock time of the last return (or creation, or successful validation). */
  lastUsedAt: number;
  /** Coarse-clock time it last became available (a keepalive check does not restart it); for connections(). */
  idleSince: number;
  /** Precise time the current lease began, while use time is tracked; NaN otherwise. */
  useStartedAt = NaN;
  /** Message of the last failed validation or reset. */
  lastError: string | undefined = undefined;
  /** Coarse-clock time the current lease began; only kept when leak detection is on. */
  lentAt = 0;
  /** Stack of the acquire() holding it; only kept when leak detection is on. */
  acquireStack: string | undefined = undefined;
  leakReported = false;
  /** Reported broken (Pool.evict) while lent or busy: destroyed instead of made available again. */
  evicted = false;

  /** How many times it was lent. */
  get uses(): number {
    return this.borrowId;
  }

  constructor(
    readonly connection: T,
    readonly id: number,
    readonly createdAt: number,
    /** When max lifetime (minus jitter) retires it; Infinity when lifetime is off. */
    readonly expiresAt: number,
  ) {
    this.lastUsedAt = createdAt;
    this.idleSince = createdAt;
  }
}
