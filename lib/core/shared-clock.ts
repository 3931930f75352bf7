/**
 * A precise clock reading shared by bursts of hand-offs, for the wait and use-time histograms.
 *
 * On the machines this runs on a clock read (`performance.now()`, ~60-150 ns) costs about as much as a whole
 * contended acquire+release of the minimal pool, so reading it for every waiter served and every lease
 * lent and returned would more than halve throughput. Instead one reading serves up to SHARED_READS callers
 * and is dropped at the next turn of the event loop, whichever comes first: inside a burst of microtasks
 * a reading is at most SHARED_READS hand-offs old (tens of microseconds), and across I/O it is never reused.
 *
 * Only for measurements: a reading may be older than "now", never newer, so it must not be used where
 * early is wrong (waiter deadlines are stamped by DeadlineTimer with a fresh read instead).
 */
import { preciseNow } from './coarse-clock.js';

/** Callers served by one reading before the clock is read again. */
const SHARED_READS = 128;

/**
 * The reading and the reads left, in one typed array: a Float64Array element is read and written as a raw
 * double (a double in an object field or module variable sits in a heap box), and the hot path is a load,
 * a compare and a store.
 */
const state = new Float64Array(2);
const READING = 0;
const READS_LEFT = 1;
state[READING] = NaN; // no reading yet

/**
 * The current reading (`[0]`, NaN once expired), for a hot-path comparison that must not call anything (see
 * Pool.returnLease: a lease returned under the reading it was lent under held for 0). Read it, never write it.
 */
export const sharedClockCell: Readonly<Float64Array> = state;

class SharedClock {
  /** `state`, held as a field: a field load is cheaper than a module constant's (a context slot, hole-checked). */
  private readonly cells = state;
  private expiry: ReturnType<typeof setImmediate> | null = null;
  private readonly expire = (): void => {
    this.expiry = null;
    state[READS_LEFT] = 0;
    state[READING] = NaN;
  };

  /** performance.now() as of at most SHARED_READS calls ago, and never from an earlier event-loop turn. */
  now(): number {
    const left = state[READS_LEFT]!;
    if (left > 0) {
      state[READS_LEFT] = left - 1;
      return state[READING]!;
    }
    return this.read();
  }

  /**
   * The current reading without using up one of its reads, even when now() has used them all (a fresh one
   * only at a new event-loop turn). For the cheap end of a measurement: a wait is served, and a lease lent
   * and returned, with peek() (the enqueues' now() keep the reading fresh): a lease lent and returned
   * within one burst measures 0 (below the histograms' 1 µs resolution anyway).
   */
  peek(): number {
    // state[0] is state[READING], and readFresh() this.read(): spelled so the method stays within V8's
    // "small function" size (27 bytes of bytecode), which it inlines at every call site whatever else is
    // inlined there. Each module constant read costs a hole check, a method call a property load.
    const reading = this.cells[0]!;
    return reading === reading ? reading : readFresh(); // NaN: expired
  }

  /** @internal For readFresh(). */
  read(): number {
    const reading = preciseNow();
    state[READING] = reading;
    state[READS_LEFT] = SHARED_READS - 1;
    // Not unref'd: a pending ref'd immediate keeps the next poll phase from blocking, so I/O callbacks that
    // arrive later cannot run before it and reuse an old reading. It fires on the next turn and is gone.
    this.expiry ??= setImmediate(this.expire);
    return reading;
  }

  /** Drops the current reading and its pending expiry (a closing pool leaves no handle behind). */
  reset(): void {
    if (this.expiry !== null) clearImmediate(this.expiry);
    this.expiry = null;
    state[READS_LEFT] = 0;
    state[READING] = NaN;
  }
}

export const sharedClock = new SharedClock();

function readFresh(): number {
  return sharedClock.read();
}
