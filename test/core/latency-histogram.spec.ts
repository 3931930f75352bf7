import { describe, expect, it } from '@jest/globals';
import { DEFAULT_HISTOGRAM_BOUNDS_MS, LatencyHistogram } from '../../lib/core/index.js';

describe('LatencyHistogram', () => {
  it('reports zeros for an empty histogram', () => {
    expect(new LatencyHistogram().summary()).toEqual({ p50: 0, p95: 0, p99: 0, max: 0 });
  });

  it('estimates percentiles within its bucket resolution', () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) h.record(i); // 1..1000 ms
    const s = h.summary();
    expect(s.p50).toBeGreaterThanOrEqual(500);
    expect(s.p50).toBeLessThanOrEqual(500 * 1.07);
    expect(s.p99).toBeGreaterThanOrEqual(990);
    expect(s.p99).toBeLessThanOrEqual(1000);
    expect(s.max).toBe(1000);
  });

  it('counts zero waits and keeps fixed memory', () => {
    const h = new LatencyHistogram();
    for (let i = 0; i < 98; i++) h.recordZero();
    h.record(10);
    h.record(20);
    expect(h.count).toBe(100);
    expect(h.quantile(0.5)).toBe(0);
    expect(h.quantile(0.99)).toBeGreaterThanOrEqual(10);
    expect(h.quantile(1)).toBe(20);
    for (let i = 0; i < 100_000; i++) h.record(Math.random() * 1e6);
    expect(h.count).toBe(100_100);
  });

  it('records zeros in bulk like one by one, and ignores a count that is not positive', () => {
    const bulk = new LatencyHistogram();
    const single = new LatencyHistogram();
    bulk.recordZeros(5);
    bulk.recordZeros(0);
    bulk.recordZeros(-3);
    bulk.recordZeros(NaN);
    for (let i = 0; i < 5; i++) single.recordZero();
    bulk.record(2);
    single.record(2);
    expect(bulk.snapshot()).toEqual(single.snapshot());
    expect(bulk.count).toBe(6);
    expect(bulk.quantile(0.8)).toBe(0);
  });

  it('snapshots into fixed bounds with per-bucket counts that add up and a sum', () => {
    const h = new LatencyHistogram();
    h.recordZero();
    for (const ms of [0.3, 1, 1, 7, 40, 40, 40, 90_000]) h.record(ms);
    const snap = h.snapshot([1, 10, 100]);
    expect(snap.boundsMs).toEqual([1, 10, 100]);
    expect(snap.counts).toEqual([4, 1, 3, 1]); // 0, 0.3, 1, 1 | 7 | 40 x3 | 90 s
    expect(snap.count).toBe(9);
    expect(snap.sumMs).toBeCloseTo(0.3 + 2 + 7 + 120 + 90_000, 6);
    const defaults = h.snapshot();
    expect(defaults.boundsMs).toEqual(DEFAULT_HISTOGRAM_BOUNDS_MS);
    expect(defaults.counts).toHaveLength(DEFAULT_HISTOGRAM_BOUNDS_MS.length + 1);
    expect(defaults.counts.reduce((a, b) => a + b, 0)).toBe(9);
    expect(defaults.counts.at(-1)).toBe(1); // 90 s is above the last bound
  });
  it('puts each value in its log-linear bucket (1/16 of a power of two of µs), at the edges too', () => {
    // Reference: octave = floor(log2(µs)), sub-bucket = floor of the 16ths of the octave above it.
    const lowerEdgeMs = (ms: number): number => {
      const micros = ms * 1000;
      const octave = Math.min(Math.floor(Math.log2(micros)), 32);
      const base = 2 ** octave;
      const sub = Math.min(Math.floor(((micros - base) / base) * 16), 15);
      return (base + (sub * base) / 16) / 1000;
    };
    const values = [
      0.001, 0.0011, 0.00106, 0.0010625, 0.002, 0.0031, 0.05, 0.0999, 0.1, 0.123456, 1, 1.0625, 2.5, 17.3,
      1000, 65_535.9, 134_217.727, 134_217.728, 134_217.729, 200_000, 4_294_967.296, 1e9,
    ];
    for (const ms of values) {
      const h = new LatencyHistogram();
      h.record(ms);
      const lower = lowerEdgeMs(ms);
      // A bucket goes to the first bound at or above its lower edge: bounds just around the reference edge
      // catch it in the middle slot only if the bucket is exactly the reference one.
      const snapshot = h.snapshot([lower * (1 - 1e-9), lower * (1 + 1e-9)]);
      expect({ ms, counts: snapshot.counts }).toEqual({ ms, counts: [0, 1, 0] });
    }
  });

  it('reports values beyond its top bucket (about 2.4 h) by the observed max, never below them', () => {
    const h = new LatencyHistogram();
    const threeHours = 3 * 3_600_000;
    h.record(threeHours);
    h.record(threeHours + 1000);
    expect(h.quantile(0.5)).toBe(threeHours + 1000);
    expect(h.summary()).toEqual({
      p50: threeHours + 1000,
      p95: threeHours + 1000,
      p99: threeHours + 1000,
      max: threeHours + 1000,
    });
    h.record(5); // a short one below them: p90 is still a long one, p10 the short one's bucket
    expect(h.quantile(0.9)).toBe(threeHours + 1000);
    expect(h.quantile(0.1)).toBeLessThan(6);
  });

  it('counts values below 1 µs, and NaN, as zeros', () => {
    const h = new LatencyHistogram();
    for (const ms of [0, 0.0009999, Number.NaN, -5]) h.record(ms);
    expect(h.snapshot([0.001]).counts).toEqual([4, 0]);
    expect(h.count).toBe(4);
  });
});
