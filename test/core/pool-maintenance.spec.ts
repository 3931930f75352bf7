import { describe, expect, it } from '@jest/globals';
import { type Lease, type PoolLeakInfo } from '../../lib/core/index.js';
import { delay, FakeFactory, tick, waitFor, type FakeConnection } from '../support/fake-factory.js';
import { usePoolHarness } from '../support/pool-harness.js';

const makePool = usePoolHarness('db');

describe('maintenance', () => {
  it('evicts idle connections above min after idleTimeoutMs, never below min', async () => {
    const { pool } = makePool({ min: 1, max: 4, idleTimeoutMs: 60 });
    await pool.start();
    const leases = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
    leases.forEach((l) => l.release());
    expect(pool.metrics().size).toBe(3);
    await waitFor(() => pool.metrics().size === 1, 'eviction to min', 1000);
    expect(pool.metrics().destroyed.idle).toBe(2);
    await delay(150);
    expect(pool.metrics().size).toBe(1);
  });

  it('retires connections at max lifetime (with jitter), a lent one only when it comes back', async () => {
    const { pool, factory } = makePool({
      max: 2,
      maxLifetimeMs: 80,
      maxLifetimeJitter: 0.25,
      idleTimeoutMs: 0,
    });
    const lent = await pool.acquire();
    const idle = await pool.acquire();
    idle.release();
    await waitFor(() => pool.metrics().destroyed.lifetime === 1, 'idle connection retired', 1000);
    expect(factory.created[1]!.destroyed).toBe(true);
    await delay(90); // past the longest possible lifetime of the lent one
    expect(lent.connection.destroyed).toBe(false); // never taken from its borrower
    lent.release();
    await tick();
    expect(lent.connection.destroyed).toBe(true);
    expect(pool.metrics().destroyed.lifetime).toBe(2);
  });

  it('spreads expiry with jitter so connections do not all expire together', async () => {
    const { pool } = makePool({ max: 20, maxLifetimeMs: 10_000, maxLifetimeJitter: 0.5 });
    const leases = await Promise.all(Array.from({ length: 20 }, () => pool.acquire()));
    const lifetimes = leases.map((l) => l.entry.expiresAt - l.entry.createdAt);
    for (const life of lifetimes) {
      expect(life).toBeLessThanOrEqual(10_000);
      expect(life).toBeGreaterThanOrEqual(5_000);
    }
    expect(new Set(lifetimes.map((l) => Math.round(l))).size).toBeGreaterThan(10);
    leases.forEach((l) => l.release());
  });

  it('validates on borrow unless the connection was used within validationBypassMs', async () => {
    const { pool, factory } = makePool(
      { max: 1, validationBypassMs: 50 },
      new FakeFactory({ withValidate: true }),
    );
    (await pool.acquire()).release(); // fresh connection: no validation
    (await pool.acquire()).release(); // used just now: bypass
    expect(factory.validations).toBe(0);
    await delay(70);
    (await pool.acquire()).release(); // idle longer than the window: validated
    expect(factory.validations).toBe(1);
  });

  it('destroys a connection that fails borrow validation and serves the caller with a new one', async () => {
    const { pool, factory } = makePool(
      { max: 1, validationBypassMs: 0 },
      new FakeFactory({ withValidate: true }),
    );
    const first = await pool.acquire();
    first.connection.healthy = false;
    first.release();
    const second = await pool.acquire();
    expect(second.connection.id).toBe(2);
    expect(factory.created[0]!.destroyed).toBe(true);
    expect(pool.metrics()).toMatchObject({ validationFailures: 1 });
    expect(pool.metrics().destroyed.validation).toBe(1);
    second.release();
  });

  it('does not lend a connection whose lifetime ran out while its borrow validation ran', async () => {
    const { pool, factory } = makePool(
      { max: 1, validationBypassMs: 0, maxLifetimeMs: 150, maxLifetimeJitter: 0 },
      new FakeFactory({ withValidate: true, validateDelayMs: 120 }),
    );
    (await pool.acquire()).release(); // connection 1, born now, expires at 150 ms
    await delay(60);
    const lease = await pool.acquire(); // validation runs from ~60 ms to ~180 ms, past the expiry
    expect(factory.validations).toBeGreaterThanOrEqual(1);
    expect(lease.connection.id).toBe(2);
    expect(factory.created[0]!.destroyed).toBe(true);
    expect(pool.metrics().destroyed.lifetime).toBe(1);
    lease.release();
  });

  it('treats a validation that hangs past validationTimeoutMs as failed', async () => {
    const factory = new FakeFactory({ withValidate: true, validateDelayMs: 1000 });
    const { pool } = makePool({ max: 1, validationBypassMs: 0, validationTimeoutMs: 30 }, factory);
    const first = await pool.acquire();
    first.release();
    const started = performance.now();
    const second = await pool.acquire();
    expect(performance.now() - started).toBeLessThan(500);
    expect(second.connection.id).toBe(2);
    second.release();
  });

  it('tests on return when testOnReturn is set', async () => {
    const { pool, factory } = makePool(
      { max: 1, testOnReturn: true, validateOnBorrow: false },
      new FakeFactory({ withValidate: true }),
    );
    const lease = await pool.acquire();
    lease.connection.healthy = false;
    lease.release();
    await waitFor(() => pool.metrics().size === 0, 'destroyed on return');
    expect(factory.validations).toBe(1);
    expect(pool.metrics().destroyed.validation).toBe(1);
  });

  it('resets a returned connection before anyone else gets it', async () => {
    const { pool, factory } = makePool({ max: 1 }, new FakeFactory({ withReset: true }));
    const first = await pool.acquire();
    first.connection.dirty = true;
    first.release();
    const second = await pool.acquire();
    expect(second.connection).toBe(first.connection);
    expect(second.connection.dirty).toBe(false);
    expect(factory.resets).toBe(1);
    second.release();
  });

  it('destroys a connection whose reset fails, and reports it', async () => {
    const factory = new FakeFactory();
    factory.reset = async () => {
      throw new Error('ROLLBACK failed');
    };
    const { pool } = makePool({ max: 1 }, factory);
    const errors: string[] = [];
    pool.on('error', (e, ctx) => errors.push(`${ctx.phase}:${e.message}`));
    const lease = await pool.acquire();
    lease.release();
    const next = await pool.acquire();
    expect(next.connection.id).toBe(2);
    expect(errors).toEqual(['reset:ROLLBACK failed']);
    next.release();
  });

  it('retires a connection after maxUses leases', async () => {
    const { pool } = makePool({ max: 1, maxUses: 3 });
    const ids: number[] = [];
    for (let i = 0; i < 7; i++) {
      const lease = await pool.acquire();
      ids.push(lease.connection.id);
      lease.release();
    }
    expect(ids).toEqual([1, 1, 1, 2, 2, 2, 3]);
    expect(pool.metrics().destroyed.maxUses).toBe(2);
  });

  it('keepalive validates idle connections and replaces dead ones', async () => {
    const { pool, factory } = makePool(
      { min: 1, max: 1, keepaliveMs: 40 },
      new FakeFactory({ withValidate: true }),
    );
    await pool.start();
    await waitFor(() => factory.validations >= 1, 'first keepalive', 1000);
    expect(pool.metrics()).toMatchObject({ size: 1, idle: 1 });
    factory.created[0]!.healthy = false;
    await waitFor(() => factory.created.length === 2 && pool.metrics().size === 1, 'replacement', 1000);
    expect(pool.metrics().destroyed.validation).toBe(1);
  });

  it('reports a lease held past leakDetectionMs once, with the acquire stack', async () => {
    const { pool } = makePool({ max: 1, leakDetectionMs: 40 });
    const leaks: PoolLeakInfo[] = [];
    pool.on('leak', (info) => leaks.push(info));
    const lease = await pool.acquire();
    await waitFor(() => leaks.length === 1, 'leak report', 1000);
    await delay(100);
    expect(leaks).toHaveLength(1);
    expect(leaks[0]!.poolName).toBe('db');
    expect(leaks[0]!.heldMs).toBeGreaterThanOrEqual(40);
    expect(leaks[0]!.stack).toContain('pool-maintenance.spec.ts');
    expect(pool.metrics().leaks).toBe(1);
    lease.release();
  });

  it('does no leak bookkeeping when leak detection is off', async () => {
    const { pool } = makePool({ max: 1 });
    const lease = await pool.acquire();
    expect(lease.entry.acquireStack).toBeUndefined();
    lease.release();
  });

  it('a synchronous reset that returns nothing puts the connection straight back', async () => {
    const factory = new FakeFactory();
    let resets = 0;
    factory.reset = () => {
      resets++;
    };
    const { pool } = makePool({ max: 1 }, factory);
    const lease = await pool.acquire();
    lease.release();
    expect(pool.metrics()).toMatchObject({ idle: 1, active: 0 }); // synchronously, no async hop
    expect(resets).toBe(1);
  });

  it('a synchronous reset that throws destroys the connection', async () => {
    const factory = new FakeFactory();
    factory.reset = () => {
      throw new Error('still in a transaction');
    };
    const { pool } = makePool({ max: 1 }, factory);
    const errors: string[] = [];
    pool.on('error', (e, ctx) => errors.push(`${ctx.phase}:${e.message}`));
    (await pool.acquire()).release();
    expect(pool.metrics().size).toBe(0);
    expect(errors).toEqual(['reset:still in a transaction']);
  });

  it('evict() destroys an idle connection at once and refills min', async () => {
    const { pool, factory } = makePool({ min: 2, max: 2 });
    await pool.start();
    await waitFor(() => pool.metrics().idle === 2, 'min');
    expect(pool.evict(factory.created[0]!, new Error('socket closed'))).toBe(true);
    expect(pool.metrics().destroyed.error).toBe(1); // taken out synchronously
    await tick();
    expect(factory.created[0]!.destroyed).toBe(true);
    await waitFor(() => pool.metrics().size === 2 && factory.created.length === 3, 'refill');
    expect(pool.metrics().destroyed.error).toBe(1);
    expect(pool.evict({ id: 99, destroyed: false, healthy: true, dirty: false })).toBe(false);
  });

  it('evict() on a lent connection destroys it when it comes back, never re-lending it', async () => {
    const { pool } = makePool({ max: 1 });
    const lease = await pool.acquire();
    expect(pool.evict(lease.connection)).toBe(true);
    expect(lease.connection.destroyed).toBe(false); // not taken from its borrower
    lease.release();
    const next = await pool.acquire();
    expect(next.connection.id).toBe(2);
    expect(lease.connection.destroyed).toBe(true);
    next.release();
  });

  it('validationBypassMs 0 validates every borrow, even of a brand-new connection', async () => {
    const { pool, factory } = makePool(
      { max: 1, validationBypassMs: 0 },
      new FakeFactory({ withValidate: true }),
    );
    await pool.start();
    (await pool.acquire()).release();
    (await pool.acquire()).release();
    expect(factory.validations).toBe(2);
  });
  it('hands a returned connection to a caller whose borrow validation is slow, instead of idling it', async () => {
    const factory = new FakeFactory({ withValidate: true });
    const check = factory.validate!;
    let slowChecks = 1;
    factory.validate = async (connection, signal) => {
      if (slowChecks-- > 0) await delay(400, signal);
      return check.call(factory, connection, signal);
    };
    const { pool } = makePool({ min: 2, max: 2, validationBypassMs: 20, validationTimeoutMs: 1000 }, factory);
    await pool.start();
    const held = await pool.acquire(); // fresh: inside the bypass window, lent as is
    await delay(40); // the other idle connection is now due for a check
    const startedAt = performance.now();
    const waiting = pool.acquire({ timeoutMs: 200 }); // starts that (slow) check and waits for it
    await tick();
    expect(pool.connections().map((c) => c.state)).toContain('validating');
    held.release(); // a good connection comes back while the check runs
    const lease = await waiting;
    expect(lease.connection).toBe(held.connection);
    expect(performance.now() - startedAt).toBeLessThan(150);
    lease.release();
    // The checked connection goes idle when its check ends: nothing is lost.
    await waitFor(() => pool.metrics().idle === 2, 'validated connection back on the idle list');
  });

  it('closes idle connections above min after idleTimeoutMs even while keepalive checks them', async () => {
    const factory = new FakeFactory({ withValidate: true });
    const { pool } = makePool({ min: 0, max: 2, idleTimeoutMs: 200, keepaliveMs: 50 }, factory);
    (await pool.acquire()).release();
    await waitFor(() => factory.validations >= 2, 'keepalive checks');
    await waitFor(() => pool.metrics().size === 0, 'idle eviction despite keepalive', 1000);
    expect(pool.metrics().destroyed.idle).toBe(1);
  });

  it('retires a connection returned before its lifetime ends when it expires idle, with no idle timeout', async () => {
    const { pool } = makePool({ min: 0, max: 2, idleTimeoutMs: 0, maxLifetimeMs: 200, maxLifetimeJitter: 0 });
    const first = await pool.acquire();
    await delay(100);
    const second = await pool.acquire(); // expires about 100 ms after the first
    await delay(120); // housekeeping for the first's lifetime ran with both lent
    second.release(); // idle, with about 80 ms of lifetime left
    first.release(); // expired: retired on return
    await waitFor(() => pool.metrics().size === 0, 'second retired at its lifetime', 1000);
    expect(pool.metrics().destroyed.lifetime).toBe(2);
    const next = await pool.acquire();
    expect(next.connection).not.toBe(second.connection);
    next.release();
  });

  it('never destroys a connection a destroy listener borrowed while housekeeping walks the idle list', async () => {
    const { pool } = makePool({ min: 0, max: 3, idleTimeoutMs: 60 });
    const leases = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
    for (const lease of leases) lease.release();
    let borrowed: Promise<Lease<FakeConnection>> | undefined;
    pool.on('destroy', () => {
      borrowed ??= pool.acquire(); // served at once from the idle list housekeeping is walking
    });
    await waitFor(() => borrowed !== undefined, 'first idle eviction', 1000);
    const lease = await borrowed!;
    await delay(100);
    expect(lease.connection.destroyed).toBe(false);
    expect(pool.metrics()).toMatchObject({ active: 1, size: 1 });
    lease.release();
    expect(pool.metrics()).toMatchObject({ active: 0, released: 4 });
  });
});
