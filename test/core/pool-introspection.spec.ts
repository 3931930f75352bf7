import { describe, expect, it } from '@jest/globals';
import { POOL_DEFAULTS, POOL_ENGINE_OPTION_KEYS, PoolConfigError, type Pool } from '../../lib/core/index.js';
import { delay, FakeFactory, tick, waitFor, type FakeConnection } from '../support/fake-factory.js';
import { usePoolHarness } from '../support/pool-harness.js';

const makePool = usePoolHarness('introspect');

function stateOf(pool: Pool<FakeConnection>, id: number): string | undefined {
  return pool.connections().find((c) => c.connection.id === id)?.state;
}

describe('pool.connections()', () => {
  it('lists every open connection with its id, state, age and number of uses', async () => {
    const { pool } = makePool({ max: 3 });
    const before = Date.now();
    const a = await pool.acquire();
    const b = await pool.acquire();
    b.release();
    (await pool.acquire()).release(); // LIFO: b again
    const infos = pool.connections();
    expect(infos).toHaveLength(2);
    const [first, second] = infos;
    expect(first).toMatchObject({ state: 'lent', uses: 1, idleMs: 0, connection: a.connection });
    expect(second).toMatchObject({ state: 'idle', uses: 2, connection: b.connection });
    expect(first!.id).not.toBe(second!.id);
    for (const info of infos) {
      expect(info.createdAt).toBeGreaterThanOrEqual(before - 5);
      expect(info.createdAt).toBeLessThanOrEqual(Date.now() + 5);
      expect(info.ageMs).toBeGreaterThanOrEqual(0);
      expect(info.lastError).toBeUndefined();
      expect('lastError' in info).toBe(false);
    }
    a.release();
    expect(pool.connections().map((c) => c.state)).toEqual(['idle', 'idle']);
  });

  it('keeps an id for the life of the connection and drops destroyed ones', async () => {
    const { pool } = makePool({ max: 2 });
    const lease = await pool.acquire();
    const id = pool.connections()[0]!.id;
    lease.release();
    (await pool.acquire()).release();
    expect(pool.connections()[0]!.id).toBe(id);
    (await pool.acquire()).destroy(new Error('broken'));
    expect(pool.connections()).toEqual([]);
  });

  it('reports how long an idle connection has been idle, and 0 while lent', async () => {
    const { pool } = makePool({ max: 1, idleTimeoutMs: 0 });
    const lease = await pool.acquire();
    await delay(40);
    expect(pool.connections()[0]!.idleMs).toBe(0);
    expect(pool.connections()[0]!.ageMs).toBeGreaterThanOrEqual(35);
    lease.release();
    expect(pool.connections()[0]!.idleMs).toBeLessThan(30); // coarse clock: at most ~10 ms stale
    await delay(60);
    const info = pool.connections()[0]!;
    expect(info.idleMs).toBeGreaterThanOrEqual(45);
    expect(info.ageMs).toBeGreaterThanOrEqual(info.idleMs);
  });

  it('shows connections being validated or reset as validating / resetting', async () => {
    let finishValidation!: (ok: boolean) => void;
    let finishReset!: () => void;
    const factory = new FakeFactory({ withValidate: true });
    factory.validate = () => new Promise<boolean>((resolve) => (finishValidation = resolve));
    factory.reset = () => new Promise<void>((resolve) => (finishReset = resolve));
    const { pool } = makePool({ max: 2, validationBypassMs: 0 }, factory);

    const first = await pool.acquire(); // fresh: not validated
    first.release();
    expect(stateOf(pool, 1)).toBe('resetting');
    finishReset();
    await waitFor(() => stateOf(pool, 1) === 'idle', 'reset done');

    const second = pool.acquire(); // idle one is validated first
    await tick();
    expect(stateOf(pool, 1)).toBe('validating');
    finishValidation(false);
    const lease = await second; // served by a new connection
    expect(lease.connection.id).toBe(2);
    expect(stateOf(pool, 1)).toBeUndefined(); // destroyed, no longer listed
    expect(pool.metrics().validationFailures).toBe(1);

    lease.release();
    finishReset();
    await waitFor(() => stateOf(pool, 2) === 'idle', 'second reset done');
  });

  it('shows the message of a failed reset on the connection until it is removed', async () => {
    const factory = new FakeFactory();
    factory.reset = () => Promise.reject(new Error('ROLLBACK failed'));
    const { pool } = makePool({ max: 1 }, factory);
    const seen: (string | undefined)[] = [];
    pool.on('error', (_error, context) => {
      if (context.phase === 'reset') seen.push(pool.connections()[0]?.lastError);
    });
    (await pool.acquire()).release();
    await waitFor(() => pool.metrics().destroyed.error === 1, 'reset failure destroys');
    expect(seen).toEqual(['ROLLBACK failed']);
    expect(pool.connections()).toEqual([]);
  });

  it('records lastError when a testOnReturn validation times out', async () => {
    const factory = new FakeFactory({ withValidate: true });
    const { pool } = makePool(
      { max: 1, testOnReturn: true, validationTimeoutMs: 30, validationBypassMs: 10_000 },
      factory,
    );
    const lease = await pool.acquire();
    const snapshots: (string | undefined)[] = [];
    factory.validate = async (_connection, signal) => {
      await delay(100, signal).catch(() => undefined);
      return true;
    };
    pool.on('error', () => snapshots.push(pool.connections()[0]?.lastError));
    lease.release();
    await waitFor(() => snapshots.length === 1, 'validation timeout error');
    expect(snapshots[0]).toMatch(/validation timed out after 30 ms/);
  });
});

describe('pool.metrics()', () => {
  it('lists its fields in the documented order (gauges, then totals as PoolMetrics declares them)', async () => {
    const { pool } = makePool({ max: 2 });
    (await pool.acquire()).release();
    // JSON.stringify, logs and the admin API print the snapshot in key order; `acquired` is derived, and once
    // came out after `leaks` because the stored totals were spread first.
    expect(Object.keys(pool.metrics())).toEqual([
      'name',
      'state',
      'circuit',
      'size',
      'idle',
      'active',
      'pending',
      'waiting',
      'min',
      'max',
      'created',
      'destroyed',
      'acquired',
      'released',
      'timeouts',
      'createErrors',
      'validationFailures',
      'leaks',
      'acquireWaitMs',
    ]);
    expect(pool.metrics()).toMatchObject({ created: 1, acquired: 1, released: 1 });
  });
});

describe('pool.histograms()', () => {
  it('records one create per successful connection attempt and one wait per acquire; counts add up', async () => {
    const { pool } = makePool({ max: 2 }, new FakeFactory({ createDelayMs: 20 }));
    const leases = await Promise.all([pool.acquire(), pool.acquire()]);
    const third = pool.acquire(); // waits for a release
    await delay(15);
    leases[0]!.release();
    (await third).release();
    leases[1]!.release();
    for (let i = 0; i < 5; i++) (await pool.acquire()).release(); // served at once: wait 0

    const { wait, create, use } = pool.histograms();
    expect(create.count).toBe(2);
    expect(create.sumMs).toBeGreaterThanOrEqual(2 * 15);
    expect(wait.count).toBe(8);
    expect(wait.counts[0]).toBeGreaterThanOrEqual(5); // the zero waits
    expect(wait.sumMs).toBeGreaterThanOrEqual(30); // two waited for a create, one for a release
    for (const h of [wait, create, use]) {
      expect(h.counts).toHaveLength(h.boundsMs.length + 1);
      expect(h.counts.reduce((a, b) => a + b, 0)).toBe(h.count);
      expect([...h.boundsMs].sort((a, b) => a - b)).toEqual(h.boundsMs);
    }
    expect(use.count).toBe(0); // off by default
    expect(pool.metrics().acquireWaitMs.max).toBeGreaterThan(0);
  });

  it('does not count failed connection attempts as creates', async () => {
    const factory = new FakeFactory();
    factory.failNext = 1;
    const { pool } = makePool({ max: 1, createRetry: { initialDelayMs: 5 } }, factory);
    (await pool.acquire()).release();
    expect(factory.createAttempts).toBe(2);
    expect(pool.histograms().create.count).toBe(1);
  });

  it('measures lease hold time only while trackUseTime is on', async () => {
    const { pool } = makePool({ max: 2 });
    const untracked = await pool.acquire();
    await delay(20);
    untracked.release();
    expect(pool.histograms().use.count).toBe(0);

    pool.trackUseTime(true);
    const tracked = await pool.acquire();
    await delay(30);
    tracked.release();
    const destroyed = await pool.acquire();
    destroyed.destroy(new Error('broken'));
    let use = pool.histograms().use;
    expect(use.count).toBe(2);
    expect(use.sumMs).toBeGreaterThanOrEqual(25);
    // 30 ms lands in a bucket whose bound is above 25 ms.
    const slowBuckets = use.counts.slice(use.boundsMs.findIndex((b) => b >= 25));
    expect(slowBuckets.reduce((a, b) => a + b, 0)).toBe(1);

    // A lease taken while off and returned while on is not measured (its start is unknown).
    pool.trackUseTime(false);
    const spanning = await pool.acquire();
    pool.trackUseTime(true);
    spanning.release();
    pool.trackUseTime(false);
    (await pool.acquire()).release();
    use = pool.histograms().use;
    expect(use.count).toBe(2);
  });

  it('records a lease lent and returned within one burst as a zero hold, however many there are', async () => {
    const { pool } = makePool({ max: 1, trackUseTime: true });
    (await pool.acquire()).release(); // the connection exists: the loop below runs in microtasks only
    // More than one clock reading's worth of lends (it is shared by 128 reads): each return measures from the
    // reading its lend took, not from a newer one, so none shows a hold it did not have.
    for (let i = 0; i < 500; i++) (await pool.acquire()).release();
    const use = pool.histograms().use;
    expect(use.count).toBe(501);
    expect(use.sumMs).toBe(0);
  });

  it('counts zero holds exactly, however often it is read and however often tracking is switched', async () => {
    const { pool } = makePool({ max: 2 });
    const lentBefore = await pool.acquire(); // out when tracking starts: never measured
    pool.trackUseTime(true);
    for (let i = 0; i < 10; i++) (await pool.acquire()).release(); // zero holds, counted, not recorded
    expect(pool.histograms().use.count).toBe(10);
    expect(pool.histograms().use.count).toBe(10); // reading again adds nothing
    lentBefore.release();
    expect(pool.histograms().use.count).toBe(10);

    pool.trackUseTime(false);
    for (let i = 0; i < 3; i++) (await pool.acquire()).release(); // off: not counted
    pool.trackUseTime(true);
    for (let i = 0; i < 4; i++) (await pool.acquire()).release();
    const held = await pool.acquire();
    await delay(5);
    held.release(); // one hold above 0: recorded with its value

    const use = pool.histograms().use;
    expect(use.count).toBe(15);
    expect(use.counts[0]).toBe(14); // the zeros, in the lowest bucket
    expect(use.sumMs).toBeGreaterThanOrEqual(4);
    expect(use.counts.reduce((a, b) => a + b, 0)).toBe(15);
  });

  it('takes trackUseTime as an option (validated) and listed with the engine options', async () => {
    expect(POOL_DEFAULTS.trackUseTime).toBe(false);
    expect(POOL_ENGINE_OPTION_KEYS).toContain('trackUseTime');
    const { pool } = makePool({ trackUseTime: true });
    expect(pool.options.trackUseTime).toBe(true);
    (await pool.acquire()).release();
    expect(pool.histograms().use.count).toBe(1);
    expect(() => makePool({ trackUseTime: 'yes' as unknown as boolean })).toThrow(PoolConfigError);
    expect(() => pool.trackUseTime(1 as unknown as boolean)).toThrow(/trackUseTime/);
  });
});
