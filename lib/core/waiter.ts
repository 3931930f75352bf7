/**
 * One caller waiting for a connection. It sits in two structures at once: the fair wait queue (priority
 * lanes of FIFO linked lists) and the deadline heap. Both removals are O(1)/O(log n) through the fields
 * below, so a timeout or abort leaves no tombstone behind.
 */
import type { Lease } from './lease.js';

export class Waiter<T> {
  /** Intrusive links of the lane this waiter sits in (null when not queued). */
  prev: Waiter<T> | null = null;
  next: Waiter<T> | null = null;
  lane: WaitLane<T> | null = null;
  /** Position in the deadline heap, -1 when not in it. */
  heapIndex = -1;
  /** Set when the waiter leaves the queue for good (served, timed out, aborted, rejected). */
  settled = false;
  onAbort: (() => void) | null = null;
  /** Stack of the acquire() call, kept only when leak detection is on. */
  stack: string | undefined = undefined;

  constructor(
    readonly resolve: (lease: Lease<T>) => void,
    readonly reject: (error: unknown) => void,
    readonly priority: number,
    readonly deadline: number,
    readonly enqueuedAt: number,
    readonly timeoutMs: number,
    readonly signal: AbortSignal | undefined,
  ) {}
}

/** Waiters of one priority, oldest first. */
export class WaitLane<T> {
  head: Waiter<T> | null = null;
  tail: Waiter<T> | null = null;
  constructor(readonly priority: number) {}
}
