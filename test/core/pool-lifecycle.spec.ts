import { describe, expect, it } from '@jest/globals';
import { PoolClosedError, PoolUnavailableError, type Lease, type PoolState } from '../../lib/core/index.js';
import { delay, FakeFactory, tick, waitFor, type FakeConnection } from '../support/fake-factory.js';
import { usePoolHarness } from '../support/pool-harness.js';

const makePool = usePoolHarness('db');

describe('start', () => {
  it('fail-fast warms max(min, 1) connections and becomes ready', async () => {
    const { pool, factory } = makePool({ min: 3 });
    expect(pool.state).toBe('starting');
    await pool.start();
    expect(pool.state).toBe('ready');
    expect(factory.created).toHaveLength(3);
    expect(pool.metrics()).toMatchObject({ size: 3, idle: 3 });
    await pool.start(); // idempotent
    expect(factory.created).toHaveLength(3);

    const { pool: minZero, factory: f2 } = makePool({ min: 0 });
    await minZero.start();
    expect(f2.created).toHaveLength(1); // proves the server is reachable even with min 0
  });

  it('fail-fast rejects with PoolUnavailableError (cause = the connection error) when the server is down', async () => {
    const { pool, factory } = makePool({ name: 'users' });
    factory.failing = true;
    const error = (await pool.start().catch((e: unknown) => e)) as PoolUnavailableError;
    expect(error).toBeInstanceOf(PoolUnavailableError);
    expect(error.poolName).toBe('users');
    expect(error.message).toContain('could not open a connection at start-up: connect ECONNREFUSED');
    expect((error.cause as Error).message).toContain('ECONNREFUSED');
    // start() may be retried once the server is back.
    factory.failing = false;
    await delay(120); // past the backoff from the failure
    await pool.start();
    expect(pool.state).toBe('ready');
  });

  it('fail-fast is bounded by startupTimeoutMs', async () => {
    const { pool, factory } = makePool({ startupTimeoutMs: 40, createTimeoutMs: 10_000 });
    factory.hang = true;
    const started = performance.now();
    await expect(pool.start()).rejects.toThrow('start-up did not complete within 40 ms');
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('a retried fail-fast start adds no attempts beyond maxConcurrentCreates to those still in flight', async () => {
    const { pool, factory } = makePool({
      min: 6,
      maxConcurrentCreates: 2,
      startupTimeoutMs: 30,
      createTimeoutMs: 10_000,
    });
    factory.hang = true;
    await expect(pool.start()).rejects.toThrow('start-up did not complete within 30 ms');
    await expect(pool.start()).rejects.toThrow('start-up did not complete within 30 ms');
    await delay(20);
    // Both starts' attempts hang: the second start waits for a free slot instead of opening two more.
    expect(factory.createAttempts).toBe(2);
    expect(pool.metrics().pending).toBe(2);
  });

  it('a retried fail-fast start waits out the backoff and fails at once while the circuit is open', async () => {
    const { pool, factory } = makePool({
      createRetry: { initialDelayMs: 80, maxDelayMs: 80, jitter: 0 },
      circuitBreaker: { failureThreshold: 2, resetTimeoutMs: 60_000 },
    });
    factory.failing = true;
    await expect(pool.start()).rejects.toBeInstanceOf(PoolUnavailableError);
    await expect(pool.start()).rejects.toThrow('could not open a connection at start-up');
    const [first, second] = factory.createAttemptTimes;
    expect(second! - first!).toBeGreaterThanOrEqual(70); // the backoff, not an immediate second attempt
    expect(pool.metrics().circuit).toBe('open');
    const error = (await pool.start().catch((e: unknown) => e)) as PoolUnavailableError;
    expect(error).toBeInstanceOf(PoolUnavailableError);
    expect(error.message).toContain('circuit breaker is open');
    expect(factory.createAttempts).toBe(2); // the open circuit let no attempt through
  });

  it('close() ends a retried start waiting out its backoff at once, leaving no timer', async () => {
    const { pool, factory } = makePool({
      createRetry: { initialDelayMs: 4000, maxDelayMs: 4000, jitter: 0 },
    });
    factory.failing = true;
    await expect(pool.start()).rejects.toBeInstanceOf(PoolUnavailableError);
    // The backoff wait's timer (with the start-up timeout, the only ones over a second) must be cleared by the close.
    const long = new Set<ReturnType<typeof setTimeout>>();
    const realSetTimeout = globalThis.setTimeout;
    const realClearTimeout = globalThis.clearTimeout;
    globalThis.setTimeout = ((callback: () => void, ms?: number) => {
      const timer = realSetTimeout(callback, ms);
      if (ms !== undefined && ms > 1000) long.add(timer);
      return timer;
    }) as typeof setTimeout;
    globalThis.clearTimeout = ((timer: ReturnType<typeof setTimeout>) => {
      long.delete(timer);
      realClearTimeout(timer);
    }) as typeof clearTimeout;
    try {
      const retried = pool.start().catch((e: unknown) => e);
      await delay(20); // now waiting out the 4 s backoff
      expect(long.size).toBeGreaterThanOrEqual(1); // the backoff wait (and the start-up timeout)
      const started = performance.now();
      await pool.close();
      expect(await retried).toBeInstanceOf(PoolClosedError);
      expect(performance.now() - started).toBeLessThan(500);
      expect(long.size).toBe(0);
    } finally {
      globalThis.setTimeout = realSetTimeout;
      globalThis.clearTimeout = realClearTimeout;
    }
    expect(factory.createAttempts).toBe(1);
  });

  it('a fail-fast start after failed attempts makes one attempt at a time, as fill() does', async () => {
    const { pool, factory } = makePool(
      {
        min: 8,
        maxConcurrentCreates: 8,
        createRetry: { initialDelayMs: 1, maxDelayMs: 1, jitter: 0 },
        circuitBreaker: false,
      },
      new FakeFactory({ createDelayMs: 5 }),
    );
    factory.failing = true;
    await expect(pool.start()).rejects.toBeInstanceOf(PoolUnavailableError);
    const firstStartAttempts = factory.createAttempts;
    let inFlight = 0;
    let mostInFlight = 0;
    const create = factory.create.bind(factory);
    factory.create = async (signal) => {
      mostInFlight = Math.max(mostInFlight, ++inFlight);
      try {
        return await create(signal);
      } finally {
        inFlight--;
      }
    };
    // A slow 'error' listener (or a busy machine) lets the 1 ms backoff run out before the start's other
    // workers, woken by the failure, look again: they must see the start has failed, not try once more.
    pool.on('error', () => {
      const until = performance.now() + 3;
      while (performance.now() < until);
    });
    await expect(pool.start()).rejects.toBeInstanceOf(PoolUnavailableError);
    expect(factory.createAttempts).toBe(firstStartAttempts + 1);
    expect(mostInFlight).toBe(1);
  });

  it('lazy resolves at once while the server is down and fills min once it is back', async () => {
    const { pool, factory } = makePool({ min: 2, startup: 'lazy' });
    factory.failing = true;
    await pool.start();
    expect(pool.state).toBe('ready');
    factory.failing = false;
    await waitFor(() => pool.metrics().size === 2, 'min filled after recovery', 3000);
  });

  it('close() during start(): start rejects with PoolClosedError and everything is destroyed once', async () => {
    const { pool, factory } = makePool(
      { min: 4, maxConcurrentCreates: 4 },
      new FakeFactory({ createDelayMs: 30 }),
    );
    const starting = pool.start();
    await delay(5);
    await pool.close();
    await expect(starting).rejects.toBeInstanceOf(PoolClosedError);
    await waitFor(() => factory.live.length === 0, 'late connections destroyed');
    expect(factory.destroyedIds.length).toBe(factory.created.length);
    expect(new Set(factory.destroyedIds).size).toBe(factory.destroyedIds.length);
  });
});

describe('pause / resume / drain', () => {
  it('pause queues acquires until resume', async () => {
    const { pool } = makePool({ max: 1 });
    await pool.start();
    pool.pause();
    expect(pool.state).toBe('paused');
    let served = false;
    const waiting = pool.acquire().then((l) => {
      served = true;
      return l;
    });
    await delay(20);
    expect(served).toBe(false);
    expect(pool.metrics().waiting).toBe(1);
    pool.resume();
    (await waiting).release();
    expect(pool.state).toBe('ready');
  });

  it('drain stops lending, rejects waiters, and waits for leases', async () => {
    const { pool } = makePool({ max: 1 });
    const held = await pool.acquire();
    const waiter = pool.acquire();
    const draining = pool.drain({ timeoutMs: 1000 });
    await expect(waiter).rejects.toBeInstanceOf(PoolClosedError);
    await expect(pool.acquire()).rejects.toThrow('is draining');
    let done = false;
    void draining.then(() => (done = true));
    await delay(20);
    expect(done).toBe(false);
    held.release();
    await expect(draining).resolves.toEqual({ drained: true, active: 0 });
    expect(pool.metrics()).toMatchObject({ state: 'draining', idle: 1 });
  });

  it('drain with timeoutMs Infinity waits for the last lease, however long', async () => {
    const { pool } = makePool({ max: 1 });
    const lease = await pool.acquire();
    let result: unknown;
    void pool.drain({ timeoutMs: Infinity }).then((r) => (result = r));
    await delay(50); // a timer armed with Infinity would have fired after 1 ms
    expect(result).toBeUndefined();
    lease.release();
    await tick();
    expect(result).toEqual({ drained: true, active: 0 });
  });

  it('a drain still waiting when close() revokes the leases resolves then, not at its own timeout', async () => {
    const { pool } = makePool({ max: 1 });
    const lease = await pool.acquire();
    const startedAt = performance.now();
    const draining = pool.drain({ timeoutMs: 3000 });
    await pool.close({ timeoutMs: 30 });
    await expect(draining).resolves.toEqual({ drained: true, active: 0 });
    expect(performance.now() - startedAt).toBeLessThan(1000);
    expect(lease.connection.destroyed).toBe(true);
  });

  it('drain gives up after its timeout and says how many are still out', async () => {
    const { pool } = makePool({ max: 2 });
    const a = await pool.acquire();
    await expect(pool.drain({ timeoutMs: 30 })).resolves.toEqual({ drained: false, active: 1 });
    a.release();
  });

  // A lease that ends by retiring its connection at once (destroy(), evicted, maxUses, lifetime, a throwing
  // reset) is counted back exactly once: drain and close still see every other lease that is out.
  it.each([
    ['destroy()', {}, (lease: Lease<FakeConnection>) => lease.destroy(new Error('broken'))],
    ['maxUses', { maxUses: 1 }, (lease: Lease<FakeConnection>) => lease.release()],
  ] as const)('still waits for the leases out after one ended by %s', async (_, options, end) => {
    const { pool } = makePool({ max: 2, ...options });
    end(await pool.acquire());
    const out = await pool.acquire();
    expect(pool.metrics()).toMatchObject({ acquired: 2, released: 1 });
    await expect(pool.drain({ timeoutMs: 30 })).resolves.toEqual({ drained: false, active: 1 });
    out.release();
    await expect(pool.drain({ timeoutMs: 30 })).resolves.toEqual({ drained: true, active: 0 });
    expect(pool.metrics()).toMatchObject({ acquired: 2, released: 2 });
  });
});

describe('close', () => {
  it('rejects waiters, destroys idle at once and lent ones when released, exactly once', async () => {
    const { pool, factory } = makePool({ max: 2 });
    const lent = await pool.acquire();
    (await pool.acquire()).release();
    pool.pause(); // so the next acquires wait although a connection is idle
    const waiter = pool.acquire({ timeoutMs: 5000 });
    const waiter2 = pool.acquire({ timeoutMs: 5000 });
    const closing = pool.close({ timeoutMs: 1000 });
    await expect(waiter).rejects.toBeInstanceOf(PoolClosedError);
    await expect(waiter2).rejects.toThrow('Pool "db": is closed');
    await tick();
    expect(factory.destroyedIds).toEqual([2]); // the idle one, at once
    expect(lent.connection.destroyed).toBe(false);
    lent.release();
    await closing;
    expect(factory.destroyedIds.sort()).toEqual([1, 2]);
    expect(pool.metrics()).toMatchObject({ state: 'closed', size: 0 });
    expect(pool.metrics().destroyed.close).toBe(2);
  });

  it('forces lent connections closed after its timeout, revoking the lease', async () => {
    const { pool, factory } = makePool({ max: 1 });
    const lent = await pool.acquire();
    const started = performance.now();
    await pool.close({ timeoutMs: 40 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(38);
    expect(factory.destroyedIds).toEqual([1]);
    lent.release(); // late release of a revoked lease: no-op, no double destroy
    await tick();
    expect(factory.destroyedIds).toEqual([1]);
    // The revoked lease still counts as acquired, never as released.
    expect(pool.metrics()).toMatchObject({ acquired: 1, released: 0, active: 0 });
  });

  it('is idempotent and closes connections being validated or reset', async () => {
    const factory = new FakeFactory({ withValidate: true, withReset: true, validateDelayMs: 20 });
    const { pool } = makePool({ max: 2, testOnReturn: true }, factory);
    const a = await pool.acquire();
    a.release(); // now being reset + validated (20 ms)
    const first = pool.close();
    const second = pool.close();
    expect(second).toBe(first);
    await first;
    expect(factory.live).toHaveLength(0);
    expect(factory.destroyedIds).toEqual([1]);
  });

  it('waits for slow destroys but bounds each by destroyTimeoutMs', async () => {
    const factory = new FakeFactory({ destroyDelayMs: 2000 });
    const { pool } = makePool({ destroyTimeoutMs: 40 }, factory);
    await pool.start();
    const errors: string[] = [];
    pool.on('error', (e, ctx) => errors.push(`${ctx.phase}:${e.message}`));
    const started = performance.now();
    await pool.close();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(errors).toEqual(['destroy:Pool "db": closing a connection took longer than 40 ms; abandoned it']);
  });

  it('leaves no timers or handles behind', async () => {
    const before = new Set(process.getActiveResourcesInfo());
    const { pool } = makePool({ min: 2, idleTimeoutMs: 50, keepaliveMs: 0, leakDetectionMs: 100 });
    await pool.start();
    const lease = await pool.acquire();
    const waiting = pool.acquire({ timeoutMs: 60_000 });
    const waiting2 = pool.acquire({ timeoutMs: 60_000 });
    (await waiting).release();
    lease.release();
    (await waiting2).release();
    await pool.close();
    const after = process.getActiveResourcesInfo().filter((r) => !before.has(r));
    expect(after).toEqual([]);
  });

  it('emits state changes', async () => {
    const { pool } = makePool();
    const states: PoolState[] = [];
    pool.on('state', (change) => states.push(change.state));
    await pool.start();
    pool.pause();
    pool.resume();
    await pool.drain();
    await pool.close();
    expect(states).toEqual(['ready', 'paused', 'ready', 'draining', 'closed']);
  });
});
