/**
 * One timer for all waiters' deadlines, plus the structures that find the earliest one:
 *
 * - an intrusive FIFO list for deadlines that arrive in non-decreasing order. Every caller using the pool's
 *   acquireTimeoutMs (the usual case) lands here: O(1) to add and to remove, so a hand-off costs two
 *   pointer updates instead of a heap sift;
 * - a binary min-heap for the rest (a per-call timeoutMs shorter than the list's tail), O(log n).
 *
 * The earliest deadline is the smaller of the list head and the heap top. A single unref'd setTimeout is
 * armed for it; removing an item leaves the timer armed (it fires once, finds nothing due and re-arms or
 * stops), which is cheaper than clearing and re-creating it on every hand-off.
 */
import { preciseNow } from './coarse-clock.js';

export interface Deadlined<E> {
  readonly deadline: number;
  /** Position in the heap; NOT_TRACKED when in neither structure, IN_LIST while in the FIFO list. */
  heapIndex: number;
  /** FIFO list links (null when not in the list). */
  deadlinePrev: E | null;
  deadlineNext: E | null;
}

export const NOT_TRACKED = -1;
const IN_LIST = -2;

export class DeadlineTimer<E extends Deadlined<E>> {
  private head: E | null = null;
  private tail: E | null = null;
  private listSize = 0;
  private readonly heap: E[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private armedFor = Infinity;

  constructor(private readonly onExpire: (item: E) => void) {}

  get size(): number {
    return this.listSize + this.heap.length;
  }

  add(item: E): void {
    const tail = this.tail;
    if (tail === null || item.deadline >= tail.deadline) {
      item.heapIndex = IN_LIST;
      item.deadlinePrev = tail;
      item.deadlineNext = null;
      if (tail === null) this.head = item;
      else tail.deadlineNext = item;
      this.tail = item;
      this.listSize++;
    } else {
      const heap = this.heap;
      item.heapIndex = heap.length;
      heap.push(item);
      this.siftUp(item.heapIndex);
    }
    if (item.deadline < this.armedFor) this.arm(item.deadline);
  }

  remove(item: E): void {
    const index = item.heapIndex;
    if (index === IN_LIST) {
      const prev = item.deadlinePrev;
      const next = item.deadlineNext;
      if (prev === null) this.head = next;
      else prev.deadlineNext = next;
      if (next === null) this.tail = prev;
      else next.deadlinePrev = prev;
      item.deadlinePrev = item.deadlineNext = null;
      item.heapIndex = NOT_TRACKED;
      this.listSize--;
      return;
    }
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

  /** Stops the timer and forgets every item (without calling onExpire). */
  clear(): E[] {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Infinity;
    const items = this.heap.splice(0);
    for (let item = this.head; item !== null; item = item.deadlineNext) items.push(item);
    for (const item of items) {
      item.heapIndex = NOT_TRACKED;
      item.deadlinePrev = item.deadlineNext = null;
    }
    this.head = this.tail = null;
    this.listSize = 0;
    return items;
  }

  private earliest(): E | null {
    const head = this.head;
    const top = this.heap.length > 0 ? this.heap[0]! : null;
    if (head === null) return top;
    if (top === null || head.deadline <= top.deadline) return head;
    return top;
  }

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
    for (let item = this.earliest(); item !== null && item.deadline <= now; item = this.earliest()) {
      this.remove(item);
      this.onExpire(item);
    }
    const next = this.earliest();
    if (next !== null && this.timer === null) this.arm(next.deadline);
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
