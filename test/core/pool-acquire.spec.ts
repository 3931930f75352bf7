import { describe, expect, it } from '@jest/globals';
import { Lease, PoolClosedError, PoolQueueFullError, PoolTimeoutError } from '../../lib/core/index.js';
import { delay, FakeFactory, tick, type FakeConnection } from '../support/fake-factory.js';
import { usePoolHarness } from '../support/pool-harness.js';

const makePool = usePoolHarness('test');

describe('acquire and release', () => {
  it('lends a connection through a lease and takes it back', async () => {
    const { pool, factory } = makePool({ max: 2 });
    const lease = await pool.acquire();
    expect(lease).toBeInstanceOf(Lease);
    expect(lease.connection).toBe(factory.created[0]);
    expect(pool.metrics()).toMatchObject({ size: 1, active: 1, idle: 0, acquired: 1 });
    lease.release();
    expect(lease.released).toBe(true);
    expect(pool.metrics()).toMatchObject({ size: 1, active: 0, idle: 1, released: 1 });
  });

  it('a lease is not a thenable: promises fulfil with it, and its `then` stays out of sight', async () => {
    const { pool } = makePool({ max: 1 });
    const lease = await pool.acquire();
    // The hot path relies on Lease.prototype.then being undefined (it ends V8's thenable lookup early).
    expect(Object.getOwnPropertyDescriptor(Lease.prototype, 'then')).toEqual({
      value: undefined,
      writable: false,
      enumerable: false,
      configurable: false,
    });
    expect(await Promise.resolve(lease)).toBe(lease);
    expect(Object.keys(lease)).not.toContain('then');
    expect(JSON.stringify(Object.keys(Object.getPrototypeOf(lease) as object))).toBe('[]');
    lease.release();
    expect(lease.released).toBe(true);
  });

  it('counts only the first of release()/destroy(); later calls are no-ops', async () => {
    const { pool, factory } = makePool({ max: 1 });
    const first = await pool.acquire();
    first.release();
    const second = await pool.acquire(); // same connection, new lease
    expect(second.connection).toBe(first.connection);
    first.release(); // stale lease: must not return the connection lent to `second`
    first.destroy();
    expect(pool.metrics()).toMatchObject({ active: 1, released: 1 });
    second.destroy('broken');
    second.release();
    await tick();
    expect(pool.metrics()).toMatchObject({ size: 0, active: 0, released: 2 });
    expect(pool.metrics().destroyed.error).toBe(1);
    expect(factory.destroyedIds).toEqual([1]);
  });

  it('releases on scope exit with `await using`', async () => {
    const { pool } = makePool({ max: 1 });
    {
      await using lease = await pool.acquire();
      expect(pool.metrics().active).toBe(1);
      expect(lease.connection.id).toBe(1);
    }
    expect(pool.metrics()).toMatchObject({ active: 0, idle: 1 });
  });

  it('use() always releases, and destroys when isBroken says so', async () => {
    const factory = new FakeFactory();
    const brokenFactory = Object.assign(factory, {
      isBroken: (_c: FakeConnection, error: unknown) => (error as Error).message === 'socket hang up',
    });
    const { pool } = makePool({ max: 1 }, brokenFactory);
    await expect(pool.use(async (c) => c.id * 10)).resolves.toBe(10);
    await expect(
      pool.use(() => {
        throw new Error('syntax error');
      }),
    ).rejects.toThrow('syntax error');
    expect(pool.metrics()).toMatchObject({ size: 1, idle: 1 });
    await expect(
      pool.use(async () => {
        throw new Error('socket hang up');
      }),
    ).rejects.toThrow('socket hang up');
    expect(pool.metrics()).toMatchObject({ size: 0, idle: 0 });
    expect(pool.metrics().destroyed.error).toBe(1);
  });

  it('never exceeds max and hands a released connection straight to the head waiter', async () => {
    const { pool, factory } = makePool({ max: 2 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    const order: number[] = [];
    const waiters = [1, 2, 3].map((n) =>
      pool.acquire().then((lease) => {
        order.push(n);
        return lease;
      }),
    );
    await tick();
    expect(pool.metrics()).toMatchObject({ size: 2, waiting: 3 });
    a.release();
    // A newcomer arriving right after the release must not barge past the waiters.
    const newcomer = pool.acquire().then((lease) => {
      order.push(4);
      return lease;
    });
    const first = await waiters[0]!;
    b.release();
    first.release();
    (await waiters[1]!).release();
    (await waiters[2]!).release();
    (await newcomer).release();
    expect(order).toEqual([1, 2, 3, 4]);
    expect(factory.created).toHaveLength(2);
  });

  it('serves higher priority first, FIFO within a priority', async () => {
    const { pool } = makePool({ max: 1 });
    const held = await pool.acquire();
    const order: string[] = [];
    const request = (label: string, priority: number) =>
      pool.acquire({ priority }).then((lease) => {
        order.push(label);
        lease.release();
      });
    const all = [
      request('low-1', 0),
      request('high-1', 10),
      request('low-2', 0),
      request('high-2', 10),
      request('mid', 5),
    ];
    await tick();
    held.release();
    await Promise.all(all);
    expect(order).toEqual(['high-1', 'high-2', 'mid', 'low-1', 'low-2']);
  });

  it('lends the most recently returned connection with order lifo, the least with fifo', async () => {
    for (const [order, expected] of [
      ['lifo', 2],
      ['fifo', 1],
    ] as const) {
      const { pool } = makePool({ max: 2, order });
      const a = await pool.acquire();
      const b = await pool.acquire();
      a.release();
      b.release();
      const next = await pool.acquire();
      expect(next.connection.id).toBe(expected);
      next.release();
    }
  });

  it('times out a waiter with PoolTimeoutError carrying the pool snapshot', async () => {
    const { pool } = makePool({ name: 'users', max: 1, acquireTimeoutMs: 30 });
    const held = await pool.acquire();
    const started = performance.now();
    const error = (await pool.acquire().catch((e: unknown) => e)) as PoolTimeoutError;
    const waited = performance.now() - started;
    expect(error).toBeInstanceOf(PoolTimeoutError);
    expect(error.poolName).toBe('users');
    expect(error).toMatchObject({ timeoutMs: 30, size: 1, active: 1, max: 1 });
    expect(error.cause).toBeUndefined(); // the pool was healthy, just busy
    expect(waited).toBeGreaterThanOrEqual(29);
    expect(waited).toBeLessThan(500);
    expect(pool.metrics()).toMatchObject({ waiting: 0, timeouts: 1 });
    held.release();
  });

  it('per-call timeoutMs overrides acquireTimeoutMs; deadlines fire in order with one shared timer', async () => {
    const { pool } = makePool({ max: 1, acquireTimeoutMs: 10_000 });
    const held = await pool.acquire();
    const settled: string[] = [];
    const watch = (label: string, timeoutMs: number) =>
      pool.acquire({ timeoutMs }).catch((e: unknown) => settled.push(`${label}:${(e as Error).name}`));
    const realSetTimeout = globalThis.setTimeout;
    let timersCreated = 0;
    globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
      timersCreated++;
      return realSetTimeout(...args);
    }) as typeof setTimeout;
    const all: Promise<unknown>[] = [];
    try {
      all.push(watch('slow', 60), watch('fast', 20), watch('mid', 40));
      for (let i = 0; i < 100; i++) all.push(watch(`bulk${i}`, 200 + i));
      // Deadlines are stamped (and the timer armed) at the end of the event-loop turn.
      await new Promise<void>((resolve) => setImmediate(resolve));
    } finally {
      globalThis.setTimeout = realSetTimeout;
    }
    // One shared deadline timer, re-armed when an earlier deadline arrives ('fast' after 'slow'), not one per waiter.
    expect(timersCreated).toBe(2);
    await Promise.all(all);
    settled.splice(3);
    expect(settled).toEqual(['fast:PoolTimeoutError', 'mid:PoolTimeoutError', 'slow:PoolTimeoutError']);
    held.release();
  });

  it('rejects with the signal reason on abort and removes the waiter', async () => {
    const { pool } = makePool({ max: 1 });
    const held = await pool.acquire();
    const controller = new AbortController();
    const waiting = pool.acquire({ signal: controller.signal });
    const other = pool.acquire();
    await tick();
    expect(pool.metrics().waiting).toBe(2);
    const reason = new Error('client went away');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(pool.metrics().waiting).toBe(1);
    held.release();
    const next = await other; // the aborted waiter did not swallow the hand-off
    next.release();
  });

  it('rejects at once for an already-aborted signal, even with an idle connection', async () => {
    const { pool } = makePool({ max: 1 });
    await pool.start();
    const reason = new Error('already gone');
    await expect(pool.acquire({ signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(pool.metrics()).toMatchObject({ idle: 1, active: 0 });
  });

  it('abort in the same tick as the hand-off: the connection goes to the next waiter, never lost', async () => {
    const { pool } = makePool({ max: 1 });
    const held = await pool.acquire();
    const controller = new AbortController();
    const aborted = pool.acquire({ signal: controller.signal });
    const next = pool.acquire();
    await tick();
    held.release(); // hands the connection to the aborted-to-be waiter...
    controller.abort(new Error('late abort')); // ...which aborts before its continuation runs
    await expect(aborted).rejects.toThrow('late abort');
    const lease = await next;
    expect(lease.connection.id).toBe(1);
    lease.release();
    expect(pool.metrics()).toMatchObject({ size: 1, idle: 1, active: 0, waiting: 0 });
  });

  it('timeout and release in the same tick: exactly one of them wins, nothing is lost', async () => {
    for (let i = 0; i < 20; i++) {
      const { pool } = makePool({ max: 1, acquireTimeoutMs: 15 });
      const held = await pool.acquire();
      const waiter = pool.acquire().then(
        (lease) => ({ lease }),
        (error: unknown) => ({ error }),
      );
      await delay(14 + (i % 3)); // land the release around the deadline
      held.release();
      const outcome = await waiter;
      if ('lease' in outcome) outcome.lease.release();
      else expect(outcome.error).toBeInstanceOf(PoolTimeoutError);
      expect(pool.metrics()).toMatchObject({ size: 1, idle: 1, active: 0, waiting: 0 });
    }
  });

  it('bounds the queue with maxWaiting', async () => {
    const { pool } = makePool({ name: 'q', max: 1, maxWaiting: 1 });
    const held = await pool.acquire();
    const queued = pool.acquire();
    const error = await pool.acquire().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolQueueFullError);
    expect((error as PoolQueueFullError).maxWaiting).toBe(1);
    held.release();
    (await queued).release();
  });

  it('maxWaiting 0 means "never wait for a connection to come back" (creating one is fine)', async () => {
    const { pool } = makePool({ max: 2, maxWaiting: 0 });
    const first = await pool.acquire(); // a connection is created for it
    const second = await pool.acquire();
    await expect(pool.acquire()).rejects.toBeInstanceOf(PoolQueueFullError);
    first.release();
    second.release();
  });

  it('creates connections on demand up to max, not one per waiter beyond it', async () => {
    const { pool, factory } = makePool({ max: 3 }, new FakeFactory({ createDelayMs: 5 }));
    const leases = await Promise.all(Array.from({ length: 3 }, () => pool.acquire()));
    const extra = Array.from({ length: 10 }, () => pool.acquire());
    await delay(20);
    expect(factory.createAttempts).toBe(3);
    expect(pool.metrics()).toMatchObject({ size: 3, waiting: 10, pending: 0 });
    leases.forEach((l) => l.release());
    for (const p of extra) (await p).release();
  });

  it('keeps at most maxConcurrentCreates attempts in flight', async () => {
    const { pool, factory } = makePool(
      { max: 10, maxConcurrentCreates: 2 },
      new FakeFactory({ createDelayMs: 10 }),
    );
    const all = Array.from({ length: 6 }, () => pool.acquire());
    await tick();
    expect(pool.metrics().pending).toBe(2);
    const leases = await Promise.all(all);
    expect(factory.createAttempts).toBe(6);
    leases.forEach((l) => l.release());
  });

  it('rejects acquires after close with PoolClosedError', async () => {
    const { pool } = makePool();
    await pool.close();
    await expect(pool.acquire()).rejects.toBeInstanceOf(PoolClosedError);
  });

  it('emits acquire/release/create/destroy events', async () => {
    const { pool } = makePool({ max: 1 });
    const seen: string[] = [];
    pool.on('create', (c) => seen.push(`create:${c.id}`));
    pool.on('acquire', (c) => seen.push(`acquire:${c.id}`));
    pool.on('release', (c) => seen.push(`release:${c.id}`));
    pool.on('destroy', (c, reason) => seen.push(`destroy:${c.id}:${reason}`));
    const lease = await pool.acquire();
    lease.release();
    await pool.close();
    expect(seen).toEqual(['create:1', 'acquire:1', 'release:1', 'destroy:1:close']);
  });

  it('hears acquire/release listeners added while it runs, and stops when they are removed', async () => {
    const { pool } = makePool({ max: 1 });
    (await pool.acquire()).release(); // nobody listening yet
    const seen: string[] = [];
    const onAcquire = (c: { id: number }): number => seen.push(`acquire:${c.id}`);
    const onRelease = (c: { id: number }): number => seen.push(`release:${c.id}`);
    pool.on('acquire', onAcquire).on('release', onRelease);
    (await pool.acquire()).release();
    pool.off('acquire', onAcquire).off('release', onRelease);
    (await pool.acquire()).release();
    expect(seen).toEqual(['acquire:1', 'release:1']);
    await pool.close();
  });

  it('a throwing listener does not break the pool, and an unheard error is not an uncaught exception', async () => {
    const { pool, factory } = makePool({ max: 1, acquireTimeoutMs: 2000 });
    const errors: string[] = [];
    pool.on('acquire', () => {
      throw new Error('listener bug');
    });
    const lease = await pool.acquire();
    lease.release();
    pool.on('error', (e, ctx) => errors.push(`${ctx.phase}:${e.message}`));
    (await pool.acquire()).release();
    expect(errors).toEqual(['listener:listener bug']);
    pool.removeAllListeners();
    factory.failNext = 1;
    const broken = await pool.acquire();
    broken.destroy();
    // The next create fails with no 'error' listener attached: must not throw anywhere; the retry succeeds.
    await expect(pool.acquire()).resolves.toBeInstanceOf(Lease);
    expect(pool.metrics().createErrors).toBe(1);
  });

  it('shows its state, never its factory, in console.log / JSON', async () => {
    const factory = Object.assign(new FakeFactory(), { secret: 'postgres://app:s3cret@db/x' });
    const { pool } = makePool({ name: 'users' }, factory);
    const { inspect } = await import('node:util');
    expect(inspect(pool)).toContain("Pool { name: 'users'");
    expect(inspect(pool)).not.toContain('s3cret');
    expect(JSON.stringify(pool)).not.toContain('s3cret');
  });
});
