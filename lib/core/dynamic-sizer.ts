/**
 * The `dynamic` preset's sizer (after the Uno pool design): a `target` between `min` and `max` that the
 * pool keeps warm, moved by what each sample window measured.
 *
 * - Grow fast: a window in which callers had to wait *and* demand (lent + waiting) reached the target
 *   raises the target to that window's peak demand (at least +1), capped at `max`. Waits while demand was
 *   below the target (a connection being validated, the pool still filling up) are not a sizing problem.
 * - Shrink slowly: only after `shrinkAfterWindows` consecutive quiet windows (nobody waited and peak demand
 *   stayed at most `target - band`, the band being a quarter of the target, at least 1) does the target
 *   drop by one; the count then starts over, so every step down needs another run of quiet windows, and a
 *   grow restarts it too (the cooldown).
 * - No oscillation: a step down never goes below the window's peak demand (the band guarantees it), so a
 *   steady load never triggers the waits that would push it back up.
 *
 * The pool feeds it from the paths it already runs (lend, enqueue); the sizer itself only owns the
 * window counters and one unref'd timer, which stops when the pool is idle at `min` and restarts on the
 * next acquire, so an idle pool does no work.
 */

/** What the sizer needs from the pool. */
export interface DynamicSizerHost {
  /** Connections lent or being validated/reset, plus callers waiting: the demand right now. */
  currentDemand(): number;
  /** The target changed: grow opens connections, shrink lets idle eviction close the surplus. */
  targetChanged(target: number, previous: number): void;
}

export interface DynamicSizerSettings {
  min: number;
  max: number;
  sampleIntervalMs: number;
  shrinkAfterWindows: number;
}

export class DynamicSizer {
  /** The moving floor: the pool keeps this many connections open. */
  target: number;
  /** Peak demand seen in the current window (updated by the pool on lend and enqueue). */
  peak = 0;
  /** Acquires in the current window that waited for a connection (served late or timed out). */
  waits = 0;
  /** Anything lent or queued in the current window. */
  active = false;
  private quietWindows = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private stopped = true;
  private closed = false;

  constructor(
    private readonly settings: DynamicSizerSettings,
    private readonly host: DynamicSizerHost,
  ) {
    this.target = settings.min;
  }

  /** Whether the sample timer is running (false while the pool is idle at `min`, and after close). */
  get ticking(): boolean {
    return this.timer !== null;
  }

  /** The pool started: begin sampling. */
  start(): void {
    this.stopped = false;
    this.wake();
  }

  /** Called from the pool's lend/enqueue paths: records demand and restarts a sleeping timer. */
  observe(demand: number): void {
    this.active = true;
    if (demand > this.peak) this.peak = demand;
    if (this.timer === null) this.wake();
  }

  private wake(): void {
    if (this.timer !== null || this.stopped || this.closed) return;
    this.timer = setInterval(this.tick, this.settings.sampleIntervalMs);
    this.timer.unref();
  }

  private sleep(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** The pool closed: no more ticks, ever. */
  close(): void {
    this.closed = true;
    this.sleep();
  }

  /** One sample window ended: decide, then start a new window. Public so tests can step it. */
  readonly tick = (): void => {
    if (this.closed) return;
    const now = this.host.currentDemand();
    const peak = Math.max(this.peak, now);
    const waited = this.waits > 0;
    const wasActive = this.active || now > 0;
    this.peak = now;
    this.waits = 0;
    this.active = false;

    const { min, max, shrinkAfterWindows } = this.settings;
    const previous = this.target;
    if (waited && peak >= previous) {
      this.quietWindows = 0;
      this.target = Math.min(max, Math.max(previous + 1, peak));
    } else if (!waited && peak <= previous - shrinkBand(previous) && previous > min) {
      if (++this.quietWindows >= shrinkAfterWindows) {
        this.quietWindows = 0;
        this.target = previous - 1;
      }
    } else {
      this.quietWindows = 0;
    }
    if (this.target !== previous) this.host.targetChanged(this.target, previous);
    // Nothing to watch and nothing left to shrink: stop until the next acquire.
    if (!wasActive && this.target === min) this.sleep();
  };
}

/** Hysteresis: how far below the target peak demand must stay for a window to count as quiet. */
export function shrinkBand(target: number): number {
  return Math.max(1, Math.floor(target / 4));
}
