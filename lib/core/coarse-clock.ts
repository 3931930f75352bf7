/**
 * A cheap, coarse monotonic clock for the hot path.
 *
 * `performance.now()` costs ~60 ns on this class of machine, more than the rest of an acquire+release
 * together. Release stamps "last used" and borrow checks the validation bypass window on every lease, and
 * neither needs better than ~10 ms, so they read this cached value instead. A shared unref'd ticker
 * refreshes it while someone reads it and stops by itself after a quiet second, so an idle process has
 * no timer from here. The first read after a pause is exact (the ticker restarts with a fresh reading).
 *
 * Precise times (waiter deadlines, wait-time histogram, connection creation) use preciseNow().
 */

/**
 * `performance` is a lazy accessor property on Node's globalThis: every `performance.now()` first runs its
 * getter (~15-20 ns, about as much as the clock read itself). Keep the object and read through it.
 */
const performanceRef = globalThis.performance;

/** performance.now(), minus the global accessor. */
export function preciseNow(): number {
  return performanceRef.now();
}

const TICK_MS = 10;
/** Quiet ticks (no reads) before the ticker stops. */
const IDLE_TICKS_BEFORE_STOP = 100;

/**
 * The cached reading, as a raw double (a Float64Array element; a module `let` would box it), or Infinity
 * while the ticker is stopped (never a stale reading: see coarseReading).
 */
const reading = new Float64Array(1);
reading[0] = Infinity;

/**
 * The cached reading itself (`[0]`), for the one hot-path check that can't afford a call (see
 * Pool.validationMaybeDue): Infinity while the ticker is stopped, so a check against it must treat a large value
 * as "maybe" and confirm through coarseReading(). Read it, never write it.
 */
export const coarseClockCell: Readonly<Float64Array> = reading;
let ticker: ReturnType<typeof setInterval> | null = null;
let readSinceTick = false;
let quietTicks = 0;

function tick(): void {
  reading[0] = preciseNow();
  if (readSinceTick) {
    readSinceTick = false;
    quietTicks = 0;
  } else if (++quietTicks >= IDLE_TICKS_BEFORE_STOP) {
    stopCoarseClock();
  }
}

function startTicker(): void {
  reading[0] = preciseNow();
  quietTicks = 0;
  ticker = setInterval(tick, TICK_MS);
  ticker.unref();
}

/** Milliseconds on the performance.now() timeline, at most ~TICK_MS stale. */
export function coarseNow(): number {
  if (ticker === null) startTicker();
  readSinceTick = true;
  return reading[0]!;
}

/**
 * coarseNow() without its write, for a check on a path that already calls coarseNow() elsewhere (every
 * release stamps lastUsedAt with it, which keeps the ticker alive): Pool.validationConfirmedDue, behind the
 * hot path's raw read of coarseClockCell. A stopped ticker (Infinity) is restarted, so the value is never
 * staler than coarseNow()'s.
 */
export function coarseReading(): number {
  const now = reading[0]!;
  return now !== Infinity ? now : coarseNow();
}

/** Stops the ticker (the next read restarts it). Used when the last pool closes. */
export function stopCoarseClock(): void {
  if (ticker !== null) {
    clearInterval(ticker);
    ticker = null;
    reading[0] = Infinity;
  }
}
