import { describe, expect, it } from '@jest/globals';
import { LatencyHistogram } from '../../lib/core/index.js';

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
});
