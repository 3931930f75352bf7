/**
 * Waiter deadlines: waiters on acquireTimeoutMs are stamped in a batch at the end of their event-loop turn and kept
 * in queue order; waiters with their own timeoutMs go to a heap. Both must expire in deadline order, never
 * before their timeout, whatever the mix of priorities and timeouts.
 */
import { describe, expect, it } from '@jest/globals';
import { PoolTimeoutError } from '../../lib/core/index.js';
import { delay } from '../support/fake-factory.js';
import { usePoolHarness } from '../support/pool-harness.js';

const makePool = usePoolHarness('deadlines');

describe('waiter deadlines', () => {
  it('never times a caller out before its timeout', async () => {
    const { pool } = makePool({ max: 1, acquireTimeoutMs: 40 });
    const held = await pool.acquire();
    const startedAt = performance.now();
    const outcomes = await Promise.allSettled([
      pool.acquire(),
      pool.acquire({ timeoutMs: 25 }),
      pool.acquire({ priority: 5 }),
    ]);
    const elapsed = performance.now() - startedAt;
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(PoolTimeoutError);
    }
    expect(elapsed).toBeGreaterThanOrEqual(39); // 40 ms, allowing for timer rounding to the ms
    expect(pool.metrics()).toMatchObject({ timeouts: 3, waiting: 0 });
    held.release();
  });

  it('expires shared-timeout and own-timeout waiters of several priorities in deadline order', async () => {
    const { pool } = makePool({ max: 1, acquireTimeoutMs: 60 });
    const held = await pool.acquire();
    const order: string[] = [];
    const watch = (label: string, promise: Promise<unknown>) =>
      promise.then(
        () => order.push(`${label}:served`),
        () => order.push(label),
      );
    const all = [
      watch('shared-1', pool.acquire()),
      watch('own-120', pool.acquire({ timeoutMs: 120 })),
      watch('own-20', pool.acquire({ timeoutMs: 20, priority: 3 })),
      watch('shared-hi', pool.acquire({ priority: 3 })),
    ];
    await delay(30); // a later burst: its shared deadline is later than the first ones'
    all.push(watch('shared-2', pool.acquire()), watch('own-10', pool.acquire({ timeoutMs: 10 })));
    await Promise.all(all);
    expect(order.slice(0, 2)).toEqual(['own-20', 'own-10']);
    // shared-1 and shared-hi share a burst (same deadline, either order), then shared-2 (~90 ms), then own-120.
    expect(new Set(order.slice(2, 4))).toEqual(new Set(['shared-1', 'shared-hi']));
    expect(order.slice(4)).toEqual(['shared-2', 'own-120']);
    held.release();
  });

  it('a served or aborted waiter leaves the deadlines of the others intact', async () => {
    const { pool } = makePool({ max: 1, acquireTimeoutMs: 50 });
    const held = await pool.acquire();
    const controller = new AbortController();
    const first = pool.acquire();
    const aborted = pool.acquire({ signal: controller.signal });
    const own = pool.acquire({ timeoutMs: 30 });
    const last = pool.acquire();
    controller.abort(new Error('gave up'));
    await expect(aborted).rejects.toThrow('gave up');
    held.release(); // goes to `first`
    const lease = await first;
    await expect(own).rejects.toBeInstanceOf(PoolTimeoutError);
    await expect(last).rejects.toBeInstanceOf(PoolTimeoutError);
    expect(pool.metrics()).toMatchObject({ timeouts: 2, waiting: 0 });
    lease.release();
    (await pool.acquire()).release(); // still lends after all that
  });

  it('records wait time for callers served after waiting', async () => {
    const { pool } = makePool({ max: 1 });
    const held = await pool.acquire();
    const waiting = pool.acquire();
    await delay(30);
    held.release();
    (await waiting).release();
    const { wait } = pool.histograms();
    expect(wait.count).toBe(2);
    expect(wait.sumMs).toBeGreaterThanOrEqual(25);
    expect(pool.metrics().acquireWaitMs.max).toBeGreaterThanOrEqual(25);
  });
});
