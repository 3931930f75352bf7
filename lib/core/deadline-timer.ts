/**
 * One timer for all waiters' deadlines.
 *
 * Waiters on the pool's acquireTimeoutMs (the usual case) all share one timeout, so within a wait-queue
 * lane their deadlines are in arrival order: the queue itself is their deadline list, and they cost the
 * timer nothing to add or remove (no links of their own, no writes into long-lived structures on a
 * hand-off). The owner finds and expires them through `SharedDeadlines`. Waiters with their own timeoutMs
 * go into a binary min-heap here, O(log n).
 *
 * Deadlines are stamped late, in one batch: a waiter is queued unstamped (deadline NaN), and one clock
 * read at the end of the current event-loop turn (a setImmediate) stamps every waiter queued in
 * that turn (deadline = that reading + its timeout). A reading taken after the acquire can only make a
 * deadline late, never early, and late only by the rest of the turn: while the turn's code and microtasks
 * run, no timer can fire anyway. However many callers queue in a turn, it costs one clock read and one
 * immediate. (A microtask per burst of waiters was tried first: at a hundred contended callers it ran every
 * ~11 acquires and cost 8-13% of the pool's throughput.)
 *
 * A single unref'd setTimeout is armed for the earliest deadline; removing a waiter leaves it armed (it
 * fires once, finds nothing due and re-arms or stops), which is cheaper than re-arming on every hand-off.
 */
import { preciseNow } from './coarse-clock.js';

export interface Deadlined {
  /** NaN until stamped. */
  deadline: number;
  /** Position in the heap, or NOT_TRACKED. */
  heapIndex: number;
}

/** The deadlines the owner keeps in its own order (the wait queue's shared-timeout waiters). */
export interface SharedDeadlines {
  /** Stamps everything queued since the last call; returns the earliest deadline it gave, or Infinity. */
  stamp(now: number): number;
  /** Expires every waiter due by `now`; returns the earliest deadline still pending, or Infinity. */
  expire(now: number): number;
}

export const NOT_TRACKED = -1;

export class DeadlineTimer<E extends Deadlined> {
  private readonly heap: E[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private armedFor = Infinity;
  private stampScheduled: ReturnType<typeof setImmediate> | null = null;

  constructor(
    private readonly shared: SharedDeadlines,
    private readonly onExpire: (item: E) => void,
  ) {}

  /** Items in the heap (shared-timeout waiters are counted by their owner). */
  get size(): number {
    return this.heap.length;
  }

  /** Something unstamped was queued: stamp it (and whatever follows in this turn) at the end of the turn. */
  requestStamp(): void {
    if (this.stampScheduled !== null) return;
    // Ref'd, unlike the deadline timer: an unref'd immediate lets the loop's poll phase sleep until the next
    // timer or I/O before running it, so a waiter queued from a setImmediate callback would be stamped that
    // much late. A ref'd one keeps the process up for one more turn at most.
    this.stampScheduled = setImmediate(this.stamp);
  }

  /** Adds an item whose deadline is set. */
  add(item: E): void {
    const heap = this.heap;
    item.heapIndex = heap.length;
    heap.push(item);
    this.siftUp(item.heapIndex);
    if (item.deadline < this.armedFor) this.arm(item.deadline);
  }

  /** Removes a heap item; a no-op for anything else. */
  remove(item: E): void {
    const index = item.heapIndex;
    if (index < 0) return;
    const heap = this.heap;
    const last = heap.pop()!;
    item.heapIndex = NOT_TRACKED;
    if (last !== item) {
      heap[index] = last;
      last.heapIndex = index;
      this.siftDown(index);
      this.siftUp(last.heapIndex);
    }
  }

  /** Stops the timer and a pending stamp, and forgets the heap (without calling onExpire). */
  clear(): void {
    if (this.stampScheduled !== null) clearImmediate(this.stampScheduled);
    this.stampScheduled = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Infinity;
    for (const item of this.heap.splice(0)) item.heapIndex = NOT_TRACKED;
  }

  private readonly stamp = (): void => {
    this.stampScheduled = null;
    const earliest = this.shared.stamp(preciseNow());
    // Earlier shared deadlines were armed for when they were stamped, so only a new earliest matters.
    if (earliest < this.armedFor) this.arm(earliest);
  };

  private arm(deadline: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.armedFor = deadline;
    this.timer = setTimeout(this.fire, Math.max(0, Math.ceil(deadline - preciseNow())));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = null;
    this.armedFor = Infinity;
    const now = preciseNow();
    const heap = this.heap;
    while (heap.length > 0 && heap[0]!.deadline <= now) {
      const item = heap[0]!;
      this.remove(item);
      this.onExpire(item);
    }
    const nextShared = this.shared.expire(now);
    const next = Math.min(nextShared, heap.length > 0 ? heap[0]!.deadline : Infinity);
    if (next !== Infinity && this.timer === null) this.arm(next);
  };

  private siftUp(index: number): void {
    const heap = this.heap;
    const item = heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (parent.deadline <= item.deadline) break;
      heap[index] = parent;
      parent.heapIndex = index;
      index = parentIndex;
    }
    heap[index] = item;
    item.heapIndex = index;
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    const length = heap.length;
    const item = heap[index]!;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= length) break;
      const right = left + 1;
      const child = right < length && heap[right]!.deadline < heap[left]!.deadline ? right : left;
      if (heap[child]!.deadline >= item.deadline) break;
      heap[index] = heap[child]!;
      heap[index]!.heapIndex = index;
      index = child;
    }
    heap[index] = item;
    item.heapIndex = index;
  }
}
