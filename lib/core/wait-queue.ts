/**
 * The fair wait queue: callers are served highest priority first and, within a priority, in arrival order.
 * Lanes are kept sorted by priority (descending); there is usually exactly one.
 */
import { WaitLane, type Waiter } from './waiter.js';

export class WaitQueue<T> {
  private lanes: WaitLane<T>[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(waiter: Waiter<T>, priority: number): void {
    const lane = this.laneFor(priority);
    waiter.lane = lane;
    waiter.prev = lane.tail;
    waiter.next = null;
    if (lane.tail === null) lane.head = waiter;
    else lane.tail.next = waiter;
    lane.tail = waiter;
    this.count++;
  }

  /** The waiter to serve next, left in the queue; null if none. */
  peek(): Waiter<T> | null {
    const lanes = this.lanes;
    for (let i = 0; i < lanes.length; i++) {
      const head = lanes[i]!.head;
      if (head !== null) return head;
    }
    return null;
  }

  /** Removes and returns the waiter to serve next, or null. */
  shift(): Waiter<T> | null {
    const lanes = this.lanes;
    for (let i = 0; i < lanes.length; i++) {
      const lane = lanes[i]!;
      const waiter = lane.head;
      if (waiter === null) continue;
      // remove(), specialised for the head: this runs on every hand-off.
      const next = waiter.next;
      lane.head = next;
      if (next !== null) {
        next.prev = null;
        waiter.next = null;
      } else {
        lane.tail = null;
        if (lanes.length > 1) this.lanes = lanes.filter((l) => l !== lane);
      }
      waiter.lane = null;
      this.count--;
      return waiter;
    }
    return null;
  }

  /** Unlinks a waiter wherever it is; a no-op if it is not queued. */
  remove(waiter: Waiter<T>): boolean {
    const lane = waiter.lane;
    if (lane === null) return false;
    if (waiter.prev === null) lane.head = waiter.next;
    else waiter.prev.next = waiter.next;
    if (waiter.next === null) lane.tail = waiter.prev;
    else waiter.next.prev = waiter.prev;
    waiter.prev = waiter.next = null;
    waiter.lane = null;
    this.count--;
    if (lane.head === null && this.lanes.length > 1) this.lanes = this.lanes.filter((l) => l !== lane);
    return true;
  }

  /**
   * Stamps the waiters queued since the last stamp (they are at the tails of their lanes): deadline = now +
   * their timeout. Own-timeout waiters are handed to `toHeap`. Returns the earliest shared-timeout deadline
   * given, or Infinity.
   */
  stamp(now: number, toHeap: (waiter: Waiter<T>) => void): number {
    let earliest = Infinity;
    const lanes = this.lanes;
    for (let i = 0; i < lanes.length; i++) {
      let first: Waiter<T> | null = null;
      for (let w = lanes[i]!.tail; w !== null && w.deadline !== w.deadline; w = w.prev) first = w;
      // Oldest first, so heap insertions arrive mostly in deadline order and the timer is re-armed rarely.
      for (let w = first; w !== null; w = w.next) {
        w.deadline = now + w.timeoutMs;
        if (w.ownTimeout) toHeap(w);
        else if (w.deadline < earliest) earliest = w.deadline;
      }
    }
    return earliest;
  }

  /**
   * Calls `onExpire` for every shared-timeout waiter due by `now` (own-timeout ones are the heap's). In a
   * lane their deadlines are in queue order, so each lane is read only up to its first one not due.
   * Returns the earliest shared-timeout deadline left, or Infinity.
   */
  expire(now: number, onExpire: (waiter: Waiter<T>) => void): number {
    let earliest = Infinity;
    for (const lane of this.lanes) {
      let w = lane.head;
      while (w !== null) {
        const next = w.next;
        if (!w.ownTimeout) {
          if (!(w.deadline <= now)) {
            if (w.deadline < earliest) earliest = w.deadline; // NaN (unstamped) compares false
            break;
          }
          onExpire(w); // removes it from the lane
        }
        w = next;
      }
    }
    return earliest;
  }

  /** Removes every waiter, oldest of the highest priority first. */
  drain(): Waiter<T>[] {
    const all: Waiter<T>[] = [];
    for (let w = this.shift(); w !== null; w = this.shift()) all.push(w);
    return all;
  }

  private laneFor(priority: number): WaitLane<T> {
    const lanes = this.lanes;
    for (let i = 0; i < lanes.length; i++) {
      const lane = lanes[i]!;
      if (lane.priority === priority) return lane;
      if (lane.priority < priority) {
        if (lane.head === null) {
          // Reuse an empty lane (the last one left) instead of allocating.
          lanes[i] = new WaitLane<T>(priority);
          return lanes[i]!;
        }
        const created = new WaitLane<T>(priority);
        lanes.splice(i, 0, created);
        return created;
      }
    }
    const created = new WaitLane<T>(priority);
    lanes.push(created);
    return created;
  }
}
