/**
 * The dynamic sizer's decisions, stepped window by window through tick() (no timers involved), and its
 * timer's lifecycle.
 */
import { describe, expect, it } from '@jest/globals';
import { DynamicSizer, shrinkBand } from '../../lib/core/dynamic-sizer.js';

interface Harness {
  sizer: DynamicSizer;
  /** Demand the host reports at the end of a window. */
  demand: number;
  changes: [target: number, previous: number][];
  /** One window in which demand peaked at `peak` and `waits` acquires waited. */
  window(peak: number, waits?: number): number;
}

function harness(min: number, max: number, shrinkAfterWindows = 3): Harness {
  const h: Harness = {
    demand: 0,
    changes: [],
    sizer: undefined as unknown as DynamicSizer,
    window(peak, waits = 0) {
      if (peak > 0) h.sizer.observe(peak);
      h.sizer.waits += waits;
      h.sizer.tick();
      return h.sizer.target;
    },
  };
  // A long interval: these tests step windows by hand; the timer never fires (and is never started).
  h.sizer = new DynamicSizer(
    { min, max, sampleIntervalMs: 60_000, shrinkAfterWindows },
    {
      currentDemand: () => h.demand,
      targetChanged: (target, previous) => h.changes.push([target, previous]),
    },
  );
  return h;
}

describe('DynamicSizer', () => {
  it('starts at min', () => {
    expect(harness(2, 10).sizer.target).toBe(2);
  });

  it('grows to the peak demand when callers waited, capped at max', () => {
    const h = harness(1, 10);
    expect(h.window(6, 3)).toBe(6);
    expect(h.window(8, 1)).toBe(8);
    expect(h.window(40, 25)).toBe(10);
    expect(h.window(40, 25)).toBe(10);
    expect(h.changes).toEqual([
      [6, 1],
      [8, 6],
      [10, 8],
    ]);
  });

  it('grows by at least one when callers wait at the target', () => {
    const h = harness(0, 10);
    h.window(0);
    expect(h.window(3, 1)).toBe(3);
    expect(h.window(3, 1)).toBe(4);
    expect(h.window(4, 2)).toBe(5);
  });

  it('does not grow for waits while demand stayed below the target (validation, filling up)', () => {
    const h = harness(0, 10);
    h.window(5, 1);
    expect(h.sizer.target).toBe(5);
    for (let i = 0; i < 20; i++) expect(h.window(4, 1)).toBe(5);
    expect(h.changes).toHaveLength(1);
  });

  it('shrinks back to min one step per run of quiet windows after load stops', () => {
    const h = harness(2, 10, 3);
    h.window(10, 5);
    expect(h.sizer.target).toBe(10);
    const targets: number[] = [];
    for (let i = 0; i < 40; i++) targets.push(h.window(0));
    // 8 steps (10 → 2), each after exactly 3 quiet windows, then it stays at min.
    expect(targets.slice(0, 24)).toEqual([
      10, 10, 9, 9, 9, 8, 8, 8, 7, 7, 7, 6, 6, 6, 5, 5, 5, 4, 4, 4, 3, 3, 3, 2,
    ]);
    expect(targets.slice(24).every((t) => t === 2)).toBe(true);
    expect(h.changes.slice(1).every(([target, previous]) => previous - target === 1)).toBe(true);
  });

  it('keeps a constant target under a steady load', () => {
    const h = harness(0, 20, 2);
    // Ramp-up: callers wait until the target reaches the load.
    h.window(8, 4);
    const changesAfterRampUp = h.changes.length;
    h.demand = 8;
    for (let i = 0; i < 200; i++) h.window(8);
    expect(h.sizer.target).toBe(8);
    expect(h.changes).toHaveLength(changesAfterRampUp);
  });

  it('does not oscillate under a load that fluctuates within the hysteresis band', () => {
    const h = harness(0, 20, 3);
    h.window(12, 6);
    expect(h.sizer.target).toBe(12);
    // Demand between 10 and 12 (band at 12 is 3: quiet means peak ≤ 9); nobody waits.
    for (let i = 0; i < 300; i++) h.window(10 + (i % 3));
    expect(h.sizer.target).toBe(12);
    expect(h.changes).toHaveLength(1);
  });

  it('settles at the steady demand after an overshoot and stays there', () => {
    const h = harness(0, 20, 2);
    h.window(16, 10); // a burst
    h.demand = 6;
    for (let i = 0; i < 100; i++) h.window(6);
    expect(h.sizer.target).toBe(6);
    const settled = h.changes.length;
    for (let i = 0; i < 100; i++) h.window(6);
    expect(h.changes).toHaveLength(settled);
    // Never stepped below the demand on the way down.
    expect(h.changes.every(([target]) => target >= 6)).toBe(true);
  });

  it('restarts the shrink count after a grow (cooldown)', () => {
    const h = harness(0, 10, 3);
    h.window(6, 2);
    h.window(0);
    h.window(0);
    h.window(7, 1); // grow to 7: quiet count starts over
    expect(h.sizer.target).toBe(7);
    expect(h.window(0)).toBe(7);
    expect(h.window(0)).toBe(7);
    expect(h.window(0)).toBe(6);
  });

  it('has a hysteresis band of a quarter of the target, at least one', () => {
    expect([1, 3, 4, 7, 8, 20, 100].map(shrinkBand)).toEqual([1, 1, 1, 1, 2, 5, 25]);
  });

  it('ticks only while started, sleeps when idle at min, wakes on demand and never after close', () => {
    const h = harness(0, 10);
    expect(h.sizer.ticking).toBe(false);
    h.sizer.observe(1); // not started yet: no timer
    expect(h.sizer.ticking).toBe(false);
    h.sizer.start();
    expect(h.sizer.ticking).toBe(true);
    h.sizer.tick(); // the window saw the observe above
    expect(h.sizer.ticking).toBe(true);
    h.sizer.tick(); // nothing happened, target at min
    expect(h.sizer.ticking).toBe(false);
    h.sizer.observe(2);
    expect(h.sizer.ticking).toBe(true);
    h.sizer.close();
    expect(h.sizer.ticking).toBe(false);
    h.sizer.observe(3);
    h.sizer.start();
    expect(h.sizer.ticking).toBe(false);
  });

  it('keeps ticking while idle above min, until it has shrunk to min', () => {
    const h = harness(0, 10, 1);
    h.sizer.start();
    h.window(3, 2);
    expect(h.sizer.target).toBe(3);
    h.window(0);
    h.window(0);
    expect(h.sizer.ticking).toBe(true);
    h.window(0);
    expect(h.sizer.target).toBe(0);
    expect(h.sizer.ticking).toBe(false);
    h.sizer.close();
  });
});
