/**
 * Randomized stress: thousands of operations with random aborts, timeouts, priorities, destroys, validation
 * and create failures, from a seeded PRNG (set STRESS_SEED to replay one seed's decision sequence). After
 * each run the pool's invariants must hold.
 */
import { describe, expect, it } from '@jest/globals';
import { Pool, PoolError, type Lease } from '../../lib/core/index.js';
import { delay, FakeFactory, tick, waitFor, type FakeConnection } from '../support/fake-factory.js';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function runStress(seed: number, operations: number): Promise<void> {
  const random = mulberry32(seed);
  const factory = new FakeFactory({ withValidate: true, withReset: true, createDelayMs: 1 });
  // Random create and validation failures.
  const baseCreate = factory.create.bind(factory);
  factory.create = async (signal) => {
    if (random() < 0.1) {
      factory.createAttempts++;
      throw new Error('random create failure');
    }
    return baseCreate(signal);
  };
  const baseValidate = factory.validate!;
  factory.validate = async (c, signal) => (random() < 0.05 ? false : baseValidate(c, signal));

  const max = 1 + Math.floor(random() * 6);
  const pool = new Pool<FakeConnection>({
    name: `stress-${seed}`,
    factory,
    min: Math.floor(random() * (max + 1)),
    max,
    acquireTimeoutMs: 30,
    validateOnBorrow: random() < 0.7,
    validationBypassMs: random() < 0.5 ? 0 : 5,
    testOnReturn: random() < 0.3,
    maxUses: random() < 0.3 ? 5 : Infinity,
    maxLifetimeMs: random() < 0.3 ? 40 : 0,
    idleTimeoutMs: random() < 0.5 ? 20 : 0,
    order: random() < 0.5 ? 'fifo' : 'lifo',
    maxWaiting: random() < 0.2 ? 5 : Infinity,
    createRetry: { initialDelayMs: 1, maxDelayMs: 5, factor: 2, jitter: 0.5 },
    circuitBreaker: { failureThreshold: 4, resetTimeoutMs: 10 },
    startup: 'lazy',
  });
  const errors: Error[] = [];
  pool.on('error', (e) => errors.push(e)); // expected: random failures

  const lentNow = new Set<number>();
  let maxSeenSize = 0;
  let violations = 0;
  let countViolations = 0;
  let timeouts = 0;
  const checkSize = () => {
    const m = pool.metrics();
    maxSeenSize = Math.max(maxSeenSize, m.size + m.pending);
    if (m.size + m.pending > max) violations++;
  };
  pool.on('create', checkSize);
  pool.on('acquire', checkSize);
  await pool.start();

  const worker = async (): Promise<void> => {
    for (;;) {
      if (remaining-- <= 0) return;
      const controller = random() < 0.15 ? new AbortController() : undefined;
      if (controller) setTimeout(() => controller.abort(new Error('aborted')), Math.floor(random() * 10));
      let lease: Lease<FakeConnection>;
      try {
        lease = await pool.acquire({
          signal: controller?.signal,
          priority: Math.floor(random() * 3),
          timeoutMs: random() < 0.2 ? 1 + Math.floor(random() * 5) : undefined,
        });
      } catch (error) {
        if (!(error instanceof PoolError) && (error as Error).message !== 'aborted') throw error;
        if ((error as Error).name === 'PoolTimeoutError') timeouts++;
        // Immediate rejections (circuit open, queue full) must not become a microtask spin that starves timers.
        await tick();
        continue;
      }
      const id = lease.connection.id;
      if (lentNow.has(id)) throw new Error(`connection ${id} lent twice at once`);
      if (lease.connection.destroyed) throw new Error(`destroyed connection ${id} was lent`);
      lentNow.add(id);
      // Leases out by the pool's count (acquired - released: nothing is revoked before close) cover every
      // lease a worker holds, and never exceed max.
      const counts = pool.metrics();
      const out = counts.acquired - counts.released;
      if (out < lentNow.size || out > max) countViolations++;
      const hold = random();
      if (hold < 0.5) await Promise.resolve();
      else await delay(Math.floor(hold * 4));
      lentNow.delete(id);
      const action = random();
      if (action < 0.1) lease.destroy(new Error('broken'));
      else lease.release();
      if (random() < 0.05) lease.release(); // double release must be a no-op
    }
  };
  let remaining = operations;
  // Sometimes fewer callers than connections (the idle fast path), sometimes many more (the wait queue).
  const workers = random() < 0.5 ? 1 + Math.floor(random() * max) : max + 1 + Math.floor(random() * 12);
  await Promise.all(Array.from({ length: workers }, worker));

  // Nothing lent: everything settles back to idle (validations/resets finish).
  await waitFor(() => pool.metrics().active === 0 && pool.metrics().waiting === 0, 'pool to settle', 3000);
  const m = pool.metrics();
  expect(violations).toBe(0);
  expect(countViolations).toBe(0);
  expect(maxSeenSize).toBeLessThanOrEqual(max);
  expect(m.acquired).toBe(m.released);
  expect(m.timeouts).toBe(timeouts);
  expect(m.created - m.destroyed.total).toBe(m.size);
  expect(m.size).toBe(m.idle);
  expect(factory.live.length).toBe(m.size + 0); // every live fake is known to the pool (none lost)
  // The pool's own count of leases out is back to 0: each lease was counted back exactly once, however it
  // ended (released, destroyed, its connection retired on return).
  await expect(pool.drain({ timeoutMs: 0 })).resolves.toEqual({ drained: true, active: 0 });

  await pool.close();
  await waitFor(() => factory.live.length === 0, 'all destroyed', 2000);
  const after = pool.metrics();
  expect(after.size).toBe(0);
  expect(after.created).toBe(factory.created.length);
  expect(after.destroyed.total).toBe(after.created);
  // Exactly once: the fake throws on a second destroy, and ids are unique.
  expect(new Set(factory.destroyedIds).size).toBe(factory.destroyedIds.length);
  expect(factory.destroyedIds.length).toBe(factory.created.length);
  expect(errors.some((e) => e.message.includes('destroyed twice'))).toBe(false);
}

describe('randomized stress', () => {
  const seeds = process.env['STRESS_SEED'] ? [Number(process.env['STRESS_SEED'])] : [1, 2, 3, 4, 5, 6, 7, 8];
  it.each(seeds)('seed %i: invariants hold after 1500 random operations', async (seed) => {
    await runStress(seed, 1500);
  });
});

describe('randomized close under load', () => {
  it.each([11, 12, 13, 14])(
    'seed %i: close() in the middle of traffic destroys every connection exactly once',
    async (seed) => {
      const random = mulberry32(seed);
      const factory = new FakeFactory({ withValidate: true, withReset: true, createDelayMs: 2 });
      const pool = new Pool<FakeConnection>({
        name: `close-${seed}`,
        factory,
        max: 4,
        acquireTimeoutMs: 50,
        validationBypassMs: 0,
        startup: 'lazy',
      });
      await pool.start();
      let closed = false;
      const worker = async (): Promise<void> => {
        while (!closed) {
          try {
            const lease = await pool.acquire();
            await delay(Math.floor(random() * 5));
            if (random() < 0.1) lease.destroy();
            else lease.release();
          } catch (error) {
            if (!(error instanceof PoolError)) throw error;
            await tick(); // after close, acquire rejects at once: yield so close() can progress
          }
        }
      };
      const workers = Array.from({ length: 10 }, worker);
      await delay(20 + Math.floor(random() * 40));
      await pool.close({ timeoutMs: Math.floor(random() * 10) });
      closed = true;
      await Promise.all(workers);
      await waitFor(() => factory.live.length === 0, 'all destroyed', 2000);
      const m = pool.metrics();
      expect(m.size).toBe(0);
      expect(m.created).toBe(factory.created.length);
      expect(m.destroyed.total).toBe(m.created);
      expect(new Set(factory.destroyedIds).size).toBe(factory.created.length);
    },
  );
});
