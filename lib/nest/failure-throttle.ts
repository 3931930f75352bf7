/**
 * Turns a stream of repeated failures into a bounded number of log lines: the first failure after a
 * success is reported at once, later ones are counted and summarized at most once per interval (on the
 * next failure after it: no timer), and the first success after failures reports the recovery.
 */
export interface FailureThrottleOptions {
  /** Minimum time between two summary lines. */
  intervalMs: number;
  /** The clock (ms); injectable for tests. */
  now?: () => number;
}

export type FailureReport =
  | { kind: 'first'; message: string }
  | { kind: 'summary'; message: string; suppressed: number; total: number; sinceMs: number; windowMs: number }
  | { kind: 'quiet' };

export interface RecoveryReport {
  failures: number;
  durationMs: number;
}

export class FailureThrottle {
  readonly #intervalMs: number;
  readonly #now: () => number;
  /** Failures since the last success (0: healthy). */
  #failures = 0;
  #firstAt = 0;
  #lastLineAt = 0;
  /** Failures since the last line. */
  #suppressed = 0;

  constructor(options: FailureThrottleOptions) {
    this.#intervalMs = options.intervalMs;
    this.#now = options.now ?? Date.now;
  }

  get failing(): boolean {
    return this.#failures > 0;
  }

  failure(message: string): FailureReport {
    const now = this.#now();
    this.#failures++;
    if (this.#failures === 1) {
      this.#firstAt = now;
      this.#lastLineAt = now;
      this.#suppressed = 0;
      return { kind: 'first', message };
    }
    this.#suppressed++;
    if (now - this.#lastLineAt < this.#intervalMs) return { kind: 'quiet' };
    const report: FailureReport = {
      kind: 'summary',
      message,
      suppressed: this.#suppressed,
      total: this.#failures,
      sinceMs: now - this.#firstAt,
      windowMs: now - this.#lastLineAt,
    };
    this.#lastLineAt = now;
    this.#suppressed = 0;
    return report;
  }

  /** A success: the recovery to report if failures preceded it. */
  success(): RecoveryReport | undefined {
    if (this.#failures === 0) return undefined;
    const report = { failures: this.#failures, durationMs: this.#now() - this.#firstAt };
    this.#failures = 0;
    this.#suppressed = 0;
    return report;
  }
}
