import { describe, expect, it } from '@jest/globals';
import {
  createBackoffDelay,
  PoolCreateTimeoutError,
  PoolTimeoutError,
  PoolUnavailableError,
  type PoolStateChange,
} from '../../lib/core/index.js';
import { delay, FakeFactory, waitFor } from '../support/fake-factory.js';
import { usePoolHarness } from '../support/pool-harness.js';

const makePool = usePoolHarness('db');

describe('createBackoffDelay', () => {
  const retry = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.2 };
  it('grows exponentially up to the cap, with jitter taken off', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => createBackoffDelay(retry, n, () => 0))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
    expect(createBackoffDelay(retry, 1, () => 1)).toBeCloseTo(80);
    expect(createBackoffDelay(retry, 0)).toBe(0);
  });
});

describe('connection creation', () => {
  it('while the database is down, waiters time out with the last connection error as cause', async () => {
    const { pool, factory } = makePool({ acquireTimeoutMs: 60 });
    factory.failing = true;
    const errors: Error[] = [];
    pool.on('error', (e) => errors.push(e));
    const error = (await pool.acquire().catch((e: unknown) => e)) as PoolTimeoutError;
    expect(error).toBeInstanceOf(PoolTimeoutError);
    expect(error.cause).toBeInstanceOf(Error);
    expect((error.cause as Error).message).toContain('ECONNREFUSED');
    expect(error.message).toContain('last connection error: connect ECONNREFUSED');
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(pool.metrics().createErrors).toBe(errors.length);
  });

  it('is decoupled from waiters: 50 waiters do not cause 50 attempts, attempts follow the backoff', async () => {
    const { pool, factory } = makePool({
      max: 10,
      acquireTimeoutMs: 700,
      createRetry: { initialDelayMs: 50, maxDelayMs: 200, factor: 2, jitter: 0 },
      circuitBreaker: false,
    });
    factory.failing = true;
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => pool.acquire()));
    expect(results.every((r) => r.status === 'rejected' && r.reason instanceof PoolTimeoutError)).toBe(true);
    // 2 concurrent attempts at t=0, then one at a time per backoff step: 50, 100, 200, 200 ms ...
    // Within 700 ms that is 2 + 5 attempts at most; 50 waiters must not multiply it.
    expect(factory.createAttempts).toBeGreaterThanOrEqual(4);
    expect(factory.createAttempts).toBeLessThanOrEqual(7);
    const times = factory.createAttemptTimes;
    const gaps = times.slice(2).map((t, i) => t - times[i + 1]!);
    const expected = [50, 100, 200, 200, 200];
    gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(expected[i]! - 3));
  });

  it('recovers as soon as the database is back: the next attempt after the backoff serves the waiters', async () => {
    const { pool, factory } = makePool({ acquireTimeoutMs: 2000 });
    factory.failNext = 3;
    const started = performance.now();
    const lease = await pool.acquire();
    const elapsed = performance.now() - started;
    expect(factory.createAttempts).toBe(4);
    expect(elapsed).toBeGreaterThanOrEqual(100 * 0.8 + 200 * 0.8 + 400 * 0.8 - 5); // the backoff was honoured
    expect(elapsed).toBeLessThan(1500);
    lease.release();
    expect(pool.metrics()).toMatchObject({ createErrors: 3, created: 1, circuit: 'closed' });
  });

  it('opens the circuit after failureThreshold failures: acquires fail at once, then a half-open probe closes it (nobody waiting)', async () => {
    const { pool, factory } = makePool({
      acquireTimeoutMs: 5000,
      createRetry: { initialDelayMs: 5, maxDelayMs: 5, factor: 1, jitter: 0 },
      circuitBreaker: { failureThreshold: 3, resetTimeoutMs: 150 },
      maxConcurrentCreates: 1,
    });
    const changes: PoolStateChange[] = [];
    pool.on('state', (c) => changes.push(c));
    factory.failing = true;
    const first = await pool.acquire().catch((e: unknown) => e);
    // The waiter is failed fast when the circuit opens (nothing could serve it), long before acquireTimeoutMs.
    expect(first).toBeInstanceOf(PoolUnavailableError);
    expect((first as PoolUnavailableError).cause).toBeInstanceOf(Error);
    expect(factory.createAttempts).toBe(3);
    expect(pool.metrics().circuit).toBe('open');

    const started = performance.now();
    await expect(pool.acquire()).rejects.toBeInstanceOf(PoolUnavailableError);
    expect(performance.now() - started).toBeLessThan(20);
    expect(factory.createAttempts).toBe(3); // no attempt while open

    factory.failing = false; // the server is back
    // The probe goes out at half-open on its own: no caller has to come (and wait) for it.
    await waitFor(() => pool.metrics().circuit === 'closed', 'the probe to close the circuit', 1000);
    expect(factory.createAttempts).toBe(4);
    expect(pool.metrics()).toMatchObject({ size: 1, idle: 1 });
    const lease = await pool.acquire();
    expect(lease.connection).toBe(factory.created[0]);
    lease.release();
    expect(changes.map((c) => c.circuit)).toEqual(['open', 'half-open', 'closed']);
  });

  it('a failed probe re-opens the circuit; only one probe per reset period, callers or not', async () => {
    const { pool, factory } = makePool(
      {
        createRetry: { initialDelayMs: 5, maxDelayMs: 5, factor: 1, jitter: 0 },
        circuitBreaker: { failureThreshold: 2, resetTimeoutMs: 100 },
        maxConcurrentCreates: 1,
      },
      new FakeFactory({ createDelayMs: 30 }),
    );
    factory.failing = true;
    await expect(pool.acquire()).rejects.toBeInstanceOf(PoolUnavailableError);
    const attemptsAtOpen = factory.createAttempts;
    // Nobody waiting: one probe per reset period (100 ms open + 30 ms the probe takes to fail).
    await delay(420);
    const periodic = factory.createAttempts - attemptsAtOpen;
    expect(periodic).toBeGreaterThanOrEqual(2);
    expect(periodic).toBeLessThanOrEqual(4);
    // Callers arriving while a probe is in flight wait for it, add no attempt, and fail with it.
    await waitFor(() => pool.metrics().circuit === 'half-open', 'half-open');
    const attemptsBefore = factory.createAttempts;
    const callers = await Promise.allSettled([pool.acquire(), pool.acquire(), pool.acquire()]);
    expect(callers.every((p) => p.status === 'rejected' && p.reason instanceof PoolUnavailableError)).toBe(
      true,
    );
    expect(factory.createAttempts).toBe(attemptsBefore);
    expect(pool.metrics().circuit).toBe('open');
  });

  it('fails queued callers at once when the circuit opened while another attempt was still in flight', async () => {
    const factory = new FakeFactory({ createDelayMs: 20 });
    factory.failing = true;
    const { pool } = makePool(
      {
        max: 2,
        maxConcurrentCreates: 2,
        acquireTimeoutMs: 3000,
        circuitBreaker: { failureThreshold: 1, resetTimeoutMs: 2500 },
      },
      factory,
    );
    const startedAt = performance.now();
    // Two attempts start together; the first failure opens the circuit, the second leaves nothing to wait for.
    const outcomes = await Promise.allSettled([pool.acquire(), pool.acquire()]);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(PoolUnavailableError);
    }
    expect(performance.now() - startedAt).toBeLessThan(1000); // not at the half-open probe, 2.5 s on
  });

  it('arms no breaker timer and reports no circuit change once an error listener closed the pool', async () => {
    const factory = new FakeFactory();
    factory.failing = true;
    const { pool } = makePool(
      { max: 1, circuitBreaker: { failureThreshold: 1, resetTimeoutMs: 50 } },
      factory,
    );
    const changes: PoolStateChange[] = [];
    pool.on('error', () => void pool.close());
    pool.on('state', (change) => changes.push(change));
    await expect(pool.acquire()).rejects.toBeInstanceOf(Error);
    await delay(150); // past resetTimeoutMs
    expect(changes.map((c) => `${c.state}/${c.circuit}`)).toEqual(['closed/closed']);
    expect(pool.metrics()).toMatchObject({ state: 'closed', circuit: 'closed' });
  });

  it('does not lend a new connection a create listener evicted; it replaces it', async () => {
    const { pool, factory } = makePool({ max: 1 });
    let evictFirst = true;
    pool.on('create', (connection) => {
      if (evictFirst) pool.evict(connection, 'rejected by a listener');
      evictFirst = false;
    });
    const lease = await pool.acquire({ timeoutMs: 500 });
    expect(lease.connection.destroyed).toBe(false);
    expect(lease.connection).toBe(factory.created[1]);
    expect(factory.created[0]!.destroyed).toBe(true);
    expect(pool.metrics()).toMatchObject({ size: 1, active: 1, created: 2 });
    expect(pool.metrics().destroyed.error).toBe(1);
    lease.release();
  });

  it('with connections still lent, an open circuit lets waiters queue for a release', async () => {
    const { pool, factory } = makePool({
      max: 2,
      createRetry: { initialDelayMs: 5, maxDelayMs: 5, factor: 1, jitter: 0 },
      circuitBreaker: { failureThreshold: 2, resetTimeoutMs: 10_000 },
    });
    const held = await pool.acquire();
    factory.failing = true;
    const waiting = pool.acquire(); // can't create (down), but `held` will come back
    await waitFor(() => pool.metrics().circuit === 'open', 'open circuit');
    held.release();
    const lease = await waiting;
    expect(lease.connection).toBe(held.connection);
    lease.release();
  });

  it('bounds each attempt with createTimeoutMs and aborts the factory signal', async () => {
    const { pool, factory } = makePool({ createTimeoutMs: 30, acquireTimeoutMs: 100, circuitBreaker: false });
    factory.hang = true;
    const errors: Error[] = [];
    pool.on('error', (e) => errors.push(e));
    const error = (await pool.acquire().catch((e: unknown) => e)) as PoolTimeoutError;
    expect(error).toBeInstanceOf(PoolTimeoutError);
    expect(error.cause).toBeInstanceOf(PoolCreateTimeoutError);
    expect(errors[0]).toBeInstanceOf(PoolCreateTimeoutError);
  });

  it('destroys a connection that arrives after its attempt timed out', async () => {
    const factory = new FakeFactory({ createDelayMs: 60 });
    // Make the fake ignore the abort signal, like a driver that doesn't support cancellation.
    const ignoring = Object.assign(Object.create(factory) as FakeFactory, {
      create: (_signal: AbortSignal) => factory.create(new AbortController().signal),
    });
    const { pool } = makePool({ createTimeoutMs: 20, acquireTimeoutMs: 40, circuitBreaker: false }, ignoring);
    await expect(pool.acquire()).rejects.toBeInstanceOf(PoolTimeoutError);
    await waitFor(
      () => factory.created.length >= 1 && factory.live.length === 0,
      'late connection destroyed',
    );
    expect(pool.metrics()).toMatchObject({ size: 0, created: 1 });
    expect(pool.metrics().destroyed.error).toBe(1);
  });

  it('keeps min connections after start and replaces lost ones', async () => {
    const { pool, factory } = makePool({ min: 3, max: 5 });
    await pool.start();
    await waitFor(() => pool.metrics().size === 3, 'min connections');
    const lease = await pool.acquire();
    lease.destroy();
    await waitFor(() => pool.metrics().size === 3, 'replacement');
    expect(factory.created).toHaveLength(4);
  });

  it('with failing creates for a while, the number of attempts stays on the backoff schedule (no storm)', async () => {
    const { pool, factory } = makePool({ acquireTimeoutMs: 100 });
    factory.failing = true;
    const deadline = performance.now() + 1500;
    const callers = Array.from({ length: 20 }, async () => {
      while (performance.now() < deadline) {
        await pool.acquire().then(
          (l) => l.release(),
          () => delay(5),
        );
      }
    });
    await Promise.all(callers);
    // Defaults: 100, 200, 400, 800 ms backoff (minus ≤20% jitter), breaker opens at 5 failures, probes every 1 s.
    // In 1.5 s: ≤ 2 (initial, concurrent) + 4 backoff steps + 1 probe.
    expect(factory.createAttempts).toBeLessThanOrEqual(8);
    expect(factory.createAttempts).toBeGreaterThanOrEqual(4);
  });

  it('with default options, serves again within 2 s after a multi-second outage ends', async () => {
    const { pool, factory } = makePool({ acquireTimeoutMs: 500 });
    await pool.start();
    factory.failing = true;
    (await pool.acquire()).destroy(); // the only connection dies with the outage
    let recoveredAt = Infinity;
    const stopAt = performance.now() + 6000;
    const callers = Array.from({ length: 10 }, async () => {
      while (performance.now() < stopAt && recoveredAt === Infinity) {
        try {
          const lease = await pool.acquire();
          recoveredAt = Math.min(recoveredAt, performance.now());
          lease.release();
        } catch {
          await delay(20);
        }
      }
    });
    await delay(3000);
    expect(pool.metrics().circuit).not.toBe('closed');
    factory.failing = false;
    const healedAt = performance.now();
    await Promise.all(callers);
    expect(recoveredAt - healedAt).toBeLessThan(2000);
    expect(factory.createAttempts).toBeLessThanOrEqual(12); // ~1 per second once the circuit opened
  });
});
