import { afterEach, describe, expect, it } from '@jest/globals';
import { coarseNow, coarseReading, preciseNow, stopCoarseClock } from '../../lib/core/coarse-clock.js';
import { FakeFactory } from '../support/fake-factory.js';
import { usePoolHarness } from '../support/pool-harness.js';

const makePool = usePoolHarness('clock');

describe('coarse clock', () => {
  afterEach(() => stopCoarseClock());

  it('coarseNow() reads within a tick of the precise clock, and coarseReading() sees the same value', () => {
    const before = preciseNow();
    const now = coarseNow();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(preciseNow());
    expect(coarseReading()).toBe(now);
  });

  it('coarseReading() is +Infinity ("long ago") while the ticker is stopped, never a stale time', () => {
    coarseNow();
    stopCoarseClock();
    expect(coarseReading()).toBe(Infinity);
    const restarted = coarseNow(); // the next coarseNow() restarts it with a fresh reading
    expect(Number.isFinite(restarted)).toBe(true);
    expect(coarseReading()).toBe(restarted);
  });

  it('a borrow inside the bypass window is validated when the clock has stopped (errs towards checking)', async () => {
    const { pool, factory } = makePool(
      { max: 1, validationBypassMs: 60_000 },
      new FakeFactory({ withValidate: true }),
    );
    (await pool.acquire()).release();
    (await pool.acquire()).release(); // used just now: bypassed
    expect(factory.validations).toBe(0);
    stopCoarseClock(); // as after a quiet second with no reader: no reading to trust
    (await pool.acquire()).release();
    expect(factory.validations).toBe(1);
    (await pool.acquire()).release(); // the release restarted the clock: bypassed again
    expect(factory.validations).toBe(1);
  });
});
