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

  push(waiter: Waiter<T>): void {
    const lane = this.laneFor(waiter.priority);
    waiter.lane = lane;
    waiter.prev = lane.tail;
    waiter.next = null;
    if (lane.tail === null) lane.head = waiter;
    else lane.tail.next = waiter;
    lane.tail = waiter;
    this.count++;
  }

  /** Removes and returns the waiter to serve next, or null. */
  shift(): Waiter<T> | null {
    const lanes = this.lanes;
    for (let i = 0; i < lanes.length; i++) {
      const waiter = lanes[i]!.head;
      if (waiter !== null) {
        this.remove(waiter);
        return waiter;
      }
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
