/**
 * Nothing a PostgresPool does waits forever: a slow query (queryTimeoutMs), a blackholed network mid-query,
 * a stuck validation, and checkHealth() on a saturated pool or a silent server all end on time, and the
 * pool recovers afterwards. Network faults come from the loopback FaultProxy in front of the real server.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type pg from 'pg';
import {
  createPool,
  PoolError,
  PoolQueryTimeoutError,
  PoolTimeoutError,
  type PostgresPool,
} from '../../../lib/index.js';
import {
  adminClient,
  countBackends,
  proxiedUri,
  pgUrl,
  sleep,
  uniqueName,
  waitUntil,
} from './pg-test-support.js';

let admin: pg.Client;

beforeAll(async () => {
  admin = await adminClient();
});

afterAll(async () => {
  await admin.end();
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function poolFor(
  app: string,
  extra: { queryTimeoutMs?: number; pool?: Record<string, unknown>; uri?: string } = {},
) {
  const pool: PostgresPool = createPool({
    name: app,
    backend: 'postgres',
    uri: extra.uri ?? pgUrl({ application_name: app }),
    queryTimeoutMs: extra.queryTimeoutMs,
    pool: { max: 2, ...extra.pool },
  });
  cleanups.push(() => pool.close({ timeoutMs: 1000 }));
  return pool;
}

async function within<T>(ms: number, work: Promise<T>): Promise<{ value: T; elapsed: number }> {
  const started = performance.now();
  const value = await work;
  const elapsed = performance.now() - started;
  expect(elapsed).toBeLessThan(ms);
  return { value, elapsed };
}

describe('queryTimeoutMs', () => {
  it('rejects a slow query with PoolQueryTimeoutError, kills its backend, destroys the connection and recovers', async () => {
    const app = uniqueName('qt_sleep');
    const pool = poolFor(app, { queryTimeoutMs: 150, pool: { max: 1 } });
    await pool.start();

    const started = performance.now();
    const error = await pool.query('SELECT pg_sleep(5)').catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(PoolQueryTimeoutError);
    expect(error).toBeInstanceOf(PoolError);
    expect(error).toMatchObject({ poolName: app, timeoutMs: 150 });
    expect((error as Error).message).toBe(
      `Pool "${app}": query timed out after 150 ms; its connection was destroyed`,
    );
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(1000);

    // The server-side query was cancelled and its session ended: nothing of ours is left running.
    await waitUntil(async () => (await countBackends(admin, app)) === 0, 'the timed-out backend to go', 3000);
    expect(pool.metrics().destroyed.error).toBe(1);

    // The pool recovers with a new connection.
    expect((await pool.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    expect(pool.metrics().created).toBe(2);
  });

  it('bounds queries on a lease and inside transactions too', async () => {
    const app = uniqueName('qt_lease');
    const pool = poolFor(app, { queryTimeoutMs: 100, pool: { max: 1 } });
    const lease = await pool.acquire();
    await expect(lease.connection.query('SELECT pg_sleep(5)')).rejects.toBeInstanceOf(PoolQueryTimeoutError);
    lease.release(); // released, not destroyed, by the caller: the pool still never reuses it
    await waitUntil(() => pool.metrics().destroyed.total === 1, 'the timed-out connection to be destroyed');

    await expect(pool.transaction((client) => client.query('SELECT pg_sleep(5)'))).rejects.toBeInstanceOf(
      PoolQueryTimeoutError,
    );
    expect((await pool.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    expect(pool.metrics().destroyed.total).toBe(2);
  });

  it('does not touch queries that answer in time', async () => {
    const app = uniqueName('qt_fast');
    const pool = poolFor(app, { queryTimeoutMs: 2000 });
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => pool.query('SELECT $1::int AS i', [i])),
    );
    expect(results.map((r) => r.rows[0].i)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(pool.metrics().destroyed.total).toBe(0);
  });

  it('bounds a caller when the network blackholes the connection mid-query', async () => {
    const app = uniqueName('qt_blackhole');
    const { proxy, uri } = await proxiedUri(app, (cleanup) => cleanups.push(cleanup));
    const pool = poolFor(app, { uri, queryTimeoutMs: 300, pool: { max: 1, createTimeoutMs: 500 } });
    await pool.start();
    expect((await pool.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);

    await proxy.blackhole();
    const { value: error } = await within(
      1500,
      pool.query('SELECT 2 AS n').catch((e: unknown) => e),
    );
    expect(error).toBeInstanceOf(PoolQueryTimeoutError);
    expect(pool.metrics().destroyed.error).toBe(1);

    await proxy.pass();
    expect((await pool.query('SELECT 3 AS n')).rows).toEqual([{ n: 3 }]);
  });
});

describe('validation of a stuck connection', () => {
  it('is bounded by validationTimeoutMs: the connection is destroyed, the caller times out instead of hanging', async () => {
    const app = uniqueName('val_stuck');
    const { proxy, uri } = await proxiedUri(app, (cleanup) => cleanups.push(cleanup));
    const pool = poolFor(app, {
      uri,
      pool: {
        max: 1,
        validationBypassMs: 0,
        validationTimeoutMs: 200,
        createTimeoutMs: 300,
        acquireTimeoutMs: 800,
      },
    });
    await pool.start();
    // Engine quirk (reported): a connection stamped within the coarse clock's ~10 ms skips borrow
    // validation even with validationBypassMs 0. Let it age past that.
    await sleep(50);
    await proxy.blackhole();
    const { value: error } = await within(
      1500,
      pool.acquire().catch((e: unknown) => e),
    );
    expect(error).toBeInstanceOf(PoolTimeoutError);
    expect(pool.metrics().destroyed.validation).toBe(1);

    await proxy.pass();
    const lease = await pool.acquire();
    expect((await lease.connection.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    lease.release();
  });
});

describe('checkHealth', () => {
  it('reports up with latency and metrics', async () => {
    const app = uniqueName('health_up');
    const pool = poolFor(app);
    await pool.start();
    const health = await pool.checkHealth({ timeoutMs: 1000 });
    expect(health).toMatchObject({ status: 'up', metrics: { name: app, state: 'ready' } });
    expect(health.latencyMs).toBeGreaterThanOrEqual(0);
    expect(health.error).toBeUndefined();
  });

  it('reports down within its timeout when the pool is saturated', async () => {
    const app = uniqueName('health_busy');
    const pool = poolFor(app, { pool: { max: 1 } });
    const lease = await pool.acquire();
    try {
      const { value: health } = await within(800, pool.checkHealth({ timeoutMs: 200 }));
      expect(health.status).toBe('down');
      expect(health.error).toMatch(/timed out/);
      expect(health.metrics).toMatchObject({ active: 1, max: 1 });
    } finally {
      lease.release();
    }
    // The abandoned check left nothing behind: the pool is whole.
    await waitUntil(() => pool.metrics().waiting === 0 && pool.metrics().idle === 1, 'the pool to settle');
    expect((await pool.checkHealth({ timeoutMs: 1000 })).status).toBe('up');
  });

  it('reports down within its timeout when the server is blackholed, and destroys the stuck connection', async () => {
    const app = uniqueName('health_hole');
    const { proxy, uri } = await proxiedUri(app, (cleanup) => cleanups.push(cleanup));
    const pool = poolFor(app, { uri, pool: { max: 1, validateOnBorrow: false } });
    await pool.start();
    await proxy.blackhole();
    const { value: health } = await within(900, pool.checkHealth({ timeoutMs: 300 }));
    expect(health).toMatchObject({
      status: 'down',
      error: `Pool "${app}": health check timed out after 300 ms`,
    });
    await waitUntil(() => pool.metrics().destroyed.total === 1, 'the stuck connection to be destroyed');

    await proxy.pass();
    expect((await pool.checkHealth({ timeoutMs: 2000 })).status).toBe('up');
  });

  it('reports down (never throws) when the server refuses connections', async () => {
    const app = uniqueName('health_refused');
    const { proxy, uri } = await proxiedUri(app, (cleanup) => cleanups.push(cleanup));
    await proxy.refuse();
    const pool = poolFor(app, { uri, pool: { startup: 'lazy' } });
    await pool.start();
    const { value: health } = await within(900, pool.checkHealth({ timeoutMs: 300 }));
    expect(health.status).toBe('down');
    expect(health.error).toMatch(/ECONNREFUSED|timed out/);
  });

  it('rejects a bad timeout', async () => {
    const pool = poolFor(uniqueName('health_bad'));
    await expect(pool.checkHealth({ timeoutMs: -1 })).rejects.toMatchObject({
      name: 'PoolConfigError',
      field: 'timeoutMs',
    });
  });
});
