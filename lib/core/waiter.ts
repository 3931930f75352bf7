/**
 * One caller waiting for a connection. It sits in the fair wait queue (priority lanes of FIFO linked
 * lists), which is also the deadline list of waiters on the pool's acquireTimeoutMs; a waiter with its own
 * timeoutMs is in the deadline timer's heap too. Removals are O(1) (O(log n) in the heap) through the
 * fields below, so a timeout or abort leaves no tombstone behind.
 */
import type { Lease } from './lease.js';

export class Waiter<T> {
  // Declared, then assigned in the constructor: emitted class fields would each be defined (a slower
  // define-own-property per field) and the constructor parameters stored twice. One Waiter per queued acquire.
  /**
   * Intrusive links of the lane this waiter sits in. `lane` is null once it has left the queue for good
   * (served, timed out, aborted, rejected): that is how the pool tells a settled waiter.
   */
  declare prev: Waiter<T> | null;
  declare next: Waiter<T> | null;
  declare lane: WaitLane<T> | null;
  /** Position in the deadline timer's heap (own timeoutMs only), or -1. */
  declare heapIndex: number;
  declare onAbort: (() => void) | null;
  /** Stack of the acquire() call, kept only when leak detection is on. */
  declare stack: string | undefined;
  /** The acquire promise's settlers, filled in by promiseFor(). */
  declare resolve: (lease: Lease<T>) => void;
  declare reject: (error: unknown) => void;
  /**
   * A shared acquire's payload (see Pool.acquireShared): what a lease already out may take over instead of
   * lending this waiter a connection of its own. null for a plain acquire.
   */
  declare share: unknown;
  /** When the wait times out. NaN until the deadline timer stamps it, at the end of the event-loop turn. */
  declare deadline: number;
  /** When it was queued, by the shared clock (for the wait histogram only: it may be a little early). */
  declare enqueuedAt: number;
  declare readonly timeoutMs: number;
  /** Has its own timeoutMs (deadline in the heap) rather than the pool's (deadline in queue order). */
  declare readonly ownTimeout: boolean;
  declare readonly signal: AbortSignal | undefined;

  constructor(timeoutMs: number, ownTimeout: boolean, signal: AbortSignal | undefined) {
    this.prev = null;
    this.next = null;
    this.lane = null;
    this.heapIndex = -1;
    this.onAbort = null;
    this.stack = undefined;
    this.resolve = noop;
    this.reject = noop;
    this.share = null;
    this.deadline = NaN;
    this.enqueuedAt = 0;
    this.timeoutMs = timeoutMs;
    this.ownTimeout = ownTimeout;
    this.signal = signal;
  }
}

/**
 * A new promise whose resolve/reject the waiter holds.
 *
 * The executor is a closure on purpose. A shared executor that found its waiter through a module variable
 * saved the closure, but storing each new Waiter into that long-lived variable cost a GC write barrier on
 * every queued acquire, more than a short-lived closure costs: the closure measured ~10% more contended
 * throughput (paired A/B of two builds, 100 callers).
 */
export function promiseFor<T>(waiter: Waiter<T>): Promise<Lease<T>> {
  return new Promise<Lease<T>>((resolve, reject) => {
    waiter.resolve = resolve;
    waiter.reject = reject;
  });
}

function noop(): void {}

/** Waiters of one priority, oldest first. */
export class WaitLane<T> {
  head: Waiter<T> | null = null;
  tail: Waiter<T> | null = null;
  constructor(readonly priority: number) {}
}
