/**
 * One timer for all waiters' deadlines: a binary min-heap ordered by deadline plus a single unref'd
 * setTimeout armed for the earliest one. With one shared acquire timeout, deadlines arrive in increasing
 * order, so an insert is O(1) in practice; removal of a served waiter is O(log n).
 */

export interface Deadlined {
  readonly deadline: number;
  heapIndex: number;
}

export class DeadlineTimer<E extends Deadlined> {
  private readonly heap: E[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private armedFor = Infinity;

  constructor(private readonly onExpire: (item: E) => void) {}

  get size(): number {
    return this.heap.length;
  }

  add(item: E): void {
    const heap = this.heap;
    item.heapIndex = heap.length;
    heap.push(item);
    this.siftUp(item.heapIndex);
    if (item.deadline < this.armedFor) this.arm(item.deadline);
  }

  remove(item: E): void {
    const index = item.heapIndex;
    if (index < 0) return;
    const heap = this.heap;
    const last = heap.pop()!;
    item.heapIndex = -1;
    if (last !== item) {
      heap[index] = last;
      last.heapIndex = index;
      this.siftDown(index);
      this.siftUp(last.heapIndex);
    }
    // The timer is left armed: it fires once, finds nothing due and re-arms or stops. Cheaper than
    // clearing and re-creating it on every hand-off.
  }

  /** Stops the timer and forgets every item (without calling onExpire). */
  clear(): E[] {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Infinity;
    const items = this.heap.splice(0);
    for (const item of items) item.heapIndex = -1;
    return items;
  }

  private arm(deadline: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.armedFor = deadline;
    this.timer = setTimeout(this.fire, Math.max(0, Math.ceil(deadline - performance.now())));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = null;
    this.armedFor = Infinity;
    const heap = this.heap;
    const now = performance.now();
    while (heap.length > 0 && heap[0]!.deadline <= now) {
      const item = heap[0]!;
      this.remove(item);
      this.onExpire(item);
    }
    if (heap.length > 0 && this.timer === null) this.arm(heap[0]!.deadline);
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
