/**
 * A bounded-memory latency histogram (log-linear buckets, ~6% resolution), so percentiles cost a fixed
 * 4 KiB per histogram however many values it has seen. Values are milliseconds.
 *
 * snapshot() folds the fine buckets into a handful of fixed bounds (Prometheus-style) when asked, so
 * recording never pays for them.
 */
import type { LatencySummary } from './pool-metrics.js';

/** Per-bucket counts over fixed upper bounds, for exporters (Prometheus histograms, dashboards). */
export interface HistogramSnapshot {
  /** Ascending bucket upper bounds, in ms. */
  readonly boundsMs: readonly number[];
  /** Per bucket (not cumulative); `boundsMs.length + 1` entries, the last one for values above every bound. */
  readonly counts: readonly number[];
  readonly count: number;
  readonly sumMs: number;
}

/** Default snapshot bounds: 50 µs to 1 min, roughly 1-2.5-5 steps. */
export const DEFAULT_HISTOGRAM_BOUNDS_MS: readonly number[] = Object.freeze([
  0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
]);

/** Sub-buckets per power of two: 16 gives ≤ 6.25% relative error. */
const SUB_BUCKET_BITS = 4;
const SUB_BUCKETS = 1 << SUB_BUCKET_BITS;
/** Powers of two covered, in microseconds: 2^0 µs .. 2^32 µs (~71 min); larger values land in the last. */
const OCTAVES = 33;
/** 2^31 sixteenths of a µs (2^27 µs, ~134 s): the largest value record() buckets with int32 arithmetic. */
const INT_LIMIT = 2 ** 31;

export class LatencyHistogram {
  private readonly counts = new Float64Array(OCTAVES * SUB_BUCKETS);
  /** Values below 1 µs (an acquire served at once records 0). */
  private zeros = 0;
  private total = 0;
  private sum = 0;
  private maxValue = 0;

  /** Records a zero without any arithmetic: the hot path's case. */
  recordZero(): void {
    this.zeros++;
    this.total++;
  }

  /** Records `count` zeros at once (a caller that counts its zero values instead of recording each). */
  recordZeros(count: number): void {
    if (!(count > 0)) return;
    this.zeros += count;
    this.total += count;
  }

  record(ms: number): void {
    this.total++;
    this.sum += ms;
    if (ms > this.maxValue) this.maxValue = ms;
    // In 1/16 µs units: below 2^31 (~134 s) the value truncates to an int32 and the bucket is bit
    // arithmetic (octave = bit length minus 4, sub-bucket = the 4 bits after the top one); this runs
    // on every hand-off, so no Math.floor and no call.
    const micros = ms * 1000;
    const sixteenths = micros * SUB_BUCKETS; // exact: a power of two
    if (!(sixteenths >= SUB_BUCKETS)) {
      this.zeros++; // below 1 µs (NaN too)
      return;
    }
    if (sixteenths < INT_LIMIT) {
      const units = sixteenths | 0;
      const octave = 27 - Math.clz32(units);
      this.counts[(octave << SUB_BUCKET_BITS) + (units >>> octave) - SUB_BUCKETS]!++;
      return;
    }
    this.counts[slowBucketOf(micros)]!++;
  }

  get count(): number {
    return this.total;
  }

  get sumMs(): number {
    return this.sum;
  }

  /**
   * Counts per fixed bound. A fine bucket lands in the first bound at or above its lower edge, so a value within
   * ~6% of a bound may be counted on either side of it; counts always add up to `count`.
   */
  snapshot(boundsMs: readonly number[] = DEFAULT_HISTOGRAM_BOUNDS_MS): HistogramSnapshot {
    const counts = new Array<number>(boundsMs.length + 1).fill(0);
    counts[0]! += this.zeros;
    let slot = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const n = this.counts[i]!;
      if (n === 0) continue;
      const lower = lowerEdgeMs(i);
      while (slot < boundsMs.length && lower > boundsMs[slot]!) slot++;
      counts[slot]! += n;
    }
    return { boundsMs: [...boundsMs], counts, count: this.total, sumMs: this.sum };
  }

  /** Value at quantile q (0..1), as the upper edge of its bucket, capped at the observed max. */
  quantile(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.ceil(q * this.total);
    let seen = this.zeros;
    if (seen >= rank) return 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen < rank) continue;
      // The last bucket also holds everything beyond it (2^33 µs, about 2.4 h): its edge is no bound there.
      return i === this.counts.length - 1 ? this.maxValue : Math.min(upperEdgeMs(i), this.maxValue);
    }
    return this.maxValue;
  }

  summary(): LatencySummary {
    return {
      p50: round(this.quantile(0.5)),
      p95: round(this.quantile(0.95)),
      p99: round(this.quantile(0.99)),
      max: round(this.maxValue),
    };
  }
}

function slowBucketOf(micros: number): number {
  const octave = Math.min(Math.floor(Math.log2(micros)), OCTAVES - 1);
  const base = 2 ** octave;
  const sub = Math.min(Math.floor(((micros - base) / base) * SUB_BUCKETS), SUB_BUCKETS - 1);
  return octave * SUB_BUCKETS + sub;
}

function lowerEdgeMs(bucket: number): number {
  const octave = Math.floor(bucket / SUB_BUCKETS);
  const sub = bucket % SUB_BUCKETS;
  const base = 2 ** octave;
  return (base + (sub * base) / SUB_BUCKETS) / 1000;
}

function upperEdgeMs(bucket: number): number {
  const octave = Math.floor(bucket / SUB_BUCKETS);
  const sub = bucket % SUB_BUCKETS;
  const base = 2 ** octave;
  return (base + ((sub + 1) * base) / SUB_BUCKETS) / 1000;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
