/**
 * The "floor": the least a fair pool with promises can do. An idle array and a FIFO queue of resolvers;
 * no timeouts, no metrics, no validation, no growth (it starts full). Anything a real pool adds shows up
 * as the gap between it and this.
 *
 * Two spellings of the FIFO queue, because the obvious one is not the cheap one:
 * - FloorPool keeps the resolvers in a growable ring buffer. This is the reference the targets use.
 * - ShiftFloorPool keeps them in a plain array and takes the head with Array.prototype.shift(). With ~90
 *   callers queued, V8 moves every remaining element on each shift (and the long-lived array sits in old
 *   space, so every moved pointer goes through the write barrier): several times slower at 100 callers.
 *   It is shown for reference only.
 */
export class FloorPool<R> {
  private readonly idle: R[];
  private ring: (((resource: R) => void) | undefined)[] = new Array<undefined>(16).fill(undefined);
  private mask = 15;
  private head = 0;
  private tail = 0;

  constructor(resources: readonly R[]) {
    this.idle = [...resources];
  }

  acquire(): Promise<R> {
    const resource = this.idle.pop();
    if (resource !== undefined) return Promise.resolve(resource);
    return new Promise<R>((resolve) => {
      this.ring[this.tail] = resolve;
      this.tail = (this.tail + 1) & this.mask;
      if (this.tail === this.head) this.grow();
    });
  }

  release(resource: R): void {
    if (this.head === this.tail) {
      this.idle.push(resource);
      return;
    }
    const next = this.ring[this.head]!;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    next(resource);
  }

  /** The ring is full (tail caught up with head): double it, unrolled so the head is at 0. */
  private grow(): void {
    const old = this.ring;
    const size = old.length;
    const ring = new Array<((resource: R) => void) | undefined>(size * 2).fill(undefined);
    for (let i = 0; i < size; i++) ring[i] = old[(this.head + i) & this.mask];
    this.ring = ring;
    this.head = 0;
    this.tail = size;
    this.mask = size * 2 - 1;
  }
}

export class ShiftFloorPool<R> {
  private readonly idle: R[];
  private readonly waiting: ((resource: R) => void)[] = [];

  constructor(resources: readonly R[]) {
    this.idle = [...resources];
  }

  acquire(): Promise<R> {
    const resource = this.idle.pop();
    if (resource !== undefined) return Promise.resolve(resource);
    return new Promise<R>((resolve) => this.waiting.push(resolve));
  }

  release(resource: R): void {
    const next = this.waiting.shift();
    if (next !== undefined) next(resource);
    else this.idle.push(resource);
  }
}

/** The dummy resource every pool hands out. */
export interface Resource {
  readonly id: number;
}

let nextResourceId = 1;

export function makeResource(): Resource {
  return { id: nextResourceId++ };
}
