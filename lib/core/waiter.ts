/**
 * One caller waiting for a connection. It sits in two structures at once: the fair wait queue (priority
 * lanes of FIFO linked lists) and the deadline timer (a FIFO list, or a heap for out-of-order deadlines).
 * Removals are O(1) (O(log n) in the heap) through the fields below, so a timeout or abort leaves no
 * tombstone behind.
 */
import type { Lease } from './lease.js';

export class Waiter<T> {
  /** Intrusive links of the lane this waiter sits in (null when not queued). */
  prev: Waiter<T> | null = null;
  next: Waiter<T> | null = null;
  lane: WaitLane<T> | null = null;
  /** Where the deadline timer keeps it: a heap position, or a marker (see DeadlineTimer). */
  heapIndex = -1;
  /** Links of the deadline timer's FIFO list. */
  deadlinePrev: Waiter<T> | null = null;
  deadlineNext: Waiter<T> | null = null;
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
