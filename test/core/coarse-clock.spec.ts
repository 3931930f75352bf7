import { afterEach, describe, expect, it } from '@jest/globals';
import { coarseNow, coarseReading, preciseNow, stopCoarseClock } from '../../lib/core/coarse-clock.js';
import { delay, FakeFactory } from '../support/fake-factory.js';
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

  it('coarseReading() after the ticker stopped is a fresh reading, not the one from when it stopped', async () => {
    const old = coarseNow();
    stopCoarseClock();
    await delay(40);
    const before = preciseNow();
    const now = coarseReading();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now - old).toBeGreaterThanOrEqual(35);
    expect(coarseReading()).toBe(now); // and the ticker runs again
  });

  it('the bypass window holds across a stopped clock: a recently used connection is not validated', async () => {
    const { pool, factory } = makePool(
      { max: 1, validationBypassMs: 60_000 },
      new FakeFactory({ withValidate: true }),
    );
    await pool.start();
    stopCoarseClock(); // as after a quiet second with no reader
    (await pool.acquire()).release(); // brand new: inside the window
    stopCoarseClock();
    await delay(20);
    (await pool.acquire()).release(); // used 20 ms ago
    expect(factory.validations).toBe(0);
  });

  it('a connection idle past the bypass window is validated even if the clock stopped meanwhile', async () => {
    const { pool, factory } = makePool(
      { max: 1, validationBypassMs: 30 },
      new FakeFactory({ withValidate: true }),
    );
    (await pool.acquire()).release();
    stopCoarseClock();
    await delay(60);
    (await pool.acquire()).release();
    expect(factory.validations).toBe(1);
  });
});
