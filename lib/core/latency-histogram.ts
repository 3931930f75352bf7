/**
 * A bounded-memory latency histogram (log-linear buckets, ~6% resolution), so percentiles cost a fixed
 * 2 KiB per pool however many acquires it has seen. Values are milliseconds.
 */
import type { LatencySummary } from './pool-metrics.js';

/** Sub-buckets per power of two: 16 gives ≤ 6.25% relative error. */
const SUB_BUCKET_BITS = 4;
const SUB_BUCKETS = 1 << SUB_BUCKET_BITS;
/** Powers of two covered, in microseconds: 2^0 µs .. 2^32 µs (~71 min); larger values land in the last. */
const OCTAVES = 33;

export class LatencyHistogram {
  private readonly counts = new Float64Array(OCTAVES * SUB_BUCKETS);
  /** Values below 1 µs (an acquire served at once records 0). */
  private zeros = 0;
  private total = 0;
  private maxValue = 0;

  /** Records a zero without any arithmetic: the hot path's case. */
  recordZero(): void {
    this.zeros++;
    this.total++;
  }

  record(ms: number): void {
    this.total++;
    if (ms > this.maxValue) this.maxValue = ms;
    const micros = ms * 1000;
    if (!(micros >= 1)) {
      this.zeros++;
      return;
    }
    this.counts[bucketOf(micros)]!++;
  }

  get count(): number {
    return this.total;
  }

  /** Value at quantile q (0..1), as the upper edge of its bucket, capped at the observed max. */
  quantile(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.ceil(q * this.total);
    let seen = this.zeros;
    if (seen >= rank) return 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(upperEdgeMs(i), this.maxValue);
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

function bucketOf(micros: number): number {
  if (micros < FAST_LIMIT_MICROS) {
    // In 1/16 µs units, the octave is the bit length minus 4 and the sub-bucket the 4 bits after the top one.
    const sixteenths = Math.floor(micros * SUB_BUCKETS);
    const octave = 31 - Math.clz32(sixteenths) - SUB_BUCKET_BITS;
    return octave * SUB_BUCKETS + (sixteenths >>> octave) - SUB_BUCKETS;
  }
  return slowBucketOf(micros);
}

/** Below this (2^27 µs, ~134 s) a value in 1/16 µs fits in 31 bits and bucketOf takes the integer path. */
const FAST_LIMIT_MICROS = 2 ** 27;

function slowBucketOf(micros: number): number {
  const octave = Math.min(Math.floor(Math.log2(micros)), OCTAVES - 1);
  const base = 2 ** octave;
  const sub = Math.min(Math.floor(((micros - base) / base) * SUB_BUCKETS), SUB_BUCKETS - 1);
  return octave * SUB_BUCKETS + sub;
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
