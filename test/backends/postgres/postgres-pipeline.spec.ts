/**
 * Pipelined query() (`pipelineDepth`), against the real server: under load, one-shot queries share a
 * connection, each caller still getting its own result or error; statements that could open a transaction
 * never share; a plain acquire() queued behind them is served in its turn; a broken or timed-out connection
 * fails the queries on it with typed errors and is replaced.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import {
  createPool,
  PoolConfigError,
  PoolConnectionError,
  PoolError,
  PoolQueryTimeoutError,
  type PostgresPool,
} from '../../../lib/index.js';
import { hasPipelineMode } from '../../../lib/backends/postgres/postgres-backend.js';
import { pipelinable, QUERIES_PER_SHARED_LEASE } from '../../../lib/backends/postgres/postgres-pipeline.js';
import {
  adminClient,
  backendPids,
  countBackends,
  pgUrl,
  proxiedUri,
  sleep,
  uniqueName,
  waitUntil,
} from './pg-test-support.js';

let admin: pg.Client;
const table = `np_pipeline_${process.pid}`;

beforeAll(async () => {
  admin = await adminClient();
  await admin.query(`CREATE TABLE IF NOT EXISTS ${table} (id int)`);
});

afterAll(async () => {
  await admin.query(`DROP TABLE IF EXISTS ${table}`);
  await admin.end();
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function poolFor(
  app: string,
  extra: {
    pipelineDepth?: number;
    queryTimeoutMs?: number;
    uri?: string;
    pool?: Record<string, unknown>;
  } = {},
): PostgresPool {
  const pool = createPool({
    name: app,
    backend: 'postgres',
    uri: extra.uri ?? pgUrl({ application_name: app }),
    // Present but undefined: the option unset, for the default.
    pipelineDepth: 'pipelineDepth' in extra ? extra.pipelineDepth : 4,
    queryTimeoutMs: extra.queryTimeoutMs,
    pool: { max: 2, ...extra.pool },
  });
  pool.on('error', () => undefined);
  cleanups.push(() => pool.close({ timeoutMs: 2000 }));
  return pool;
}

describe('pipelined query()', () => {
  it('shares the busy connections: callers beyond max run pipelined, not queued, each with its own result', async () => {
    const app = uniqueName('pipe_share');
    const pool = poolFor(app, { pool: { min: 2, max: 2 } });
    await pool.start();

    const calls = Array.from({ length: 10 }, (_, i) =>
      pool.query<{ n: number }>('SELECT $1::int AS n, pg_sleep(0.2)', [i]),
    );
    // Two connections each carry 4 queries; only the last 2 callers wait for room.
    expect(pool.metrics()).toMatchObject({ active: 2, idle: 0, waiting: 2 });
    expect(await countBackends(admin, app)).toBe(2);

    const results = await Promise.all(calls);
    expect(results.map((r) => r.rows[0]!.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(pool.metrics()).toMatchObject({ active: 0, idle: 2, waiting: 0, created: 2 });
    expect(pool.metrics().destroyed.total).toBe(0);
  });

  it.each([undefined, 1])(
    'is off by default and at 1 (pipelineDepth %p): every query has a connection to itself',
    async (depth) => {
      const app = uniqueName('pipe_off');
      const pool = poolFor(app, { pipelineDepth: depth, pool: { min: 2, max: 2 } });
      await pool.start();
      const calls = Array.from({ length: 10 }, () => pool.query('SELECT pg_sleep(0.05)'));
      expect(pool.metrics()).toMatchObject({ active: 2, waiting: 8 });
      await Promise.all(calls);
    },
  );

  it('opens a connection rather than share one while the pool is below max', async () => {
    const app = uniqueName('pipe_grow');
    const pool = poolFor(app, { pool: { min: 1, max: 3 } });
    await pool.start();
    const slow = pool.query('SELECT pg_sleep(1)');
    const started = performance.now();
    await pool.query('SELECT 1');
    // Pipelined behind the slow query, it would have waited about a second.
    expect(performance.now() - started).toBeLessThan(700);
    expect(pool.metrics().created).toBe(2);
    await slow;
  });

  it('hands a shared connection back to the pool now and then under sustained load', async () => {
    const app = uniqueName('pipe_cycle');
    const pool = poolFor(app, { pool: { min: 1, max: 1 } });
    await pool.start();
    let left = QUERIES_PER_SHARED_LEASE * 3;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (left-- > 0) await pool.query('SELECT 1');
      }),
    );
    // Eight callers keep the lease busy throughout: without the cap it would never go back (1 acquire).
    expect(pool.metrics().acquired).toBeGreaterThanOrEqual(3);
    expect(pool.metrics()).toMatchObject({ active: 0, idle: 1, created: 1 });
  });

  it('answers each caller right when pg fails a query while sending it (a value it cannot serialise)', async () => {
    const app = uniqueName('pipe_serialise');
    const pool = poolFor(app, { pool: { min: 1, max: 1 } });
    await pool.start();
    const unserialisable = { n: 1n }; // JSON.stringify throws on a BigInt, inside pg's query()

    // Four fill the connection; the bad one and three more queue, and are taken over from the queue as room
    // frees up: the bad one fails inside pg's send loop, with queued work behind it.
    const running = Array.from({ length: 4 }, (_, i) =>
      pool.query<{ n: number }>('SELECT $1::int AS n, pg_sleep(0.05)', [i]),
    );
    const bad = pool.query('SELECT $1::jsonb AS v', [unserialisable]).catch((e: unknown) => e);
    const queued = Array.from({ length: 3 }, (_, i) =>
      pool.query<{ n: number }>('SELECT $1::int AS n', [i + 4]),
    );

    expect((await Promise.all(running)).map((r) => r.rows[0]!.n)).toEqual([0, 1, 2, 3]);
    expect(await bad).toBeInstanceOf(TypeError);
    expect((await Promise.all(queued)).map((r) => r.rows[0]!.n)).toEqual([4, 5, 6]);
    // The next borrower gets a clean connection and its own answers.
    expect(await pool.transaction(async (client) => (await client.query('SELECT 7 AS n')).rows)).toEqual([
      { n: 7 },
    ]);
    expect((await pool.query<{ n: number }>('SELECT 8 AS n')).rows).toEqual([{ n: 8 }]);
  });

  it('retires a connection pg failed a query on while sending it, quietly: no false "connection lost"', async () => {
    const app = uniqueName('pipe_retire');
    const pool = poolFor(app, { pool: { min: 1, max: 1 } });
    const errors: unknown[] = [];
    pool.on('error', (error) => errors.push(error));
    await pool.start();

    for (let round = 0; round < 5; round++) {
      const good = [1, 2].map((n) => pool.query<{ n: number }>('SELECT $1::int AS n', [n]));
      const bad = pool.query('SELECT $1::jsonb AS v', [{ n: 1n }]).catch((e: unknown) => e);
      expect((await Promise.all(good)).map((r) => r.rows[0]!.n)).toEqual([1, 2]);
      expect(await bad).toBeInstanceOf(TypeError);
    }
    await waitUntil(() => pool.metrics().destroyed.total === 5, 'the five retired connections to close');
    await sleep(100); // the retired connections' last answers, had they been misread
    expect(errors).toEqual([]);
    expect((await pool.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
  });

  it('uses an idle connection before it pipelines', async () => {
    const app = uniqueName('pipe_idle');
    const pool = poolFor(app, { pool: { min: 2, max: 2 } });
    await pool.start();
    const calls = [pool.query('SELECT pg_sleep(0.1)'), pool.query('SELECT pg_sleep(0.1)')];
    expect(pool.metrics()).toMatchObject({ active: 2, idle: 0, waiting: 0 });
    await Promise.all(calls);
  });

  it("keeps each caller's error to itself: a failing query doesn't fail the ones pipelined with it", async () => {
    const app = uniqueName('pipe_errors');
    const pool = poolFor(app, { pool: { min: 1, max: 1 } });
    await pool.start();
    const pids = await backendPids(admin, app);

    const outcomes = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        pool.query<{ n: number }>(
          i % 2 === 0 ? 'SELECT $1::int AS n' : 'SELECT 1 / ($1::int - $1::int) AS n',
          [i],
        ),
      ),
    );
    outcomes.forEach((outcome, i) => {
      if (i % 2 === 0) {
        expect(outcome).toMatchObject({ status: 'fulfilled', value: { rows: [{ n: i }] } });
      } else {
        expect(outcome.status).toBe('rejected');
        expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: '22012' }); // division_by_zero
      }
    });
    // A statement's error leaves the connection fine: kept, not replaced.
    expect(await backendPids(admin, app)).toEqual(pids);
    expect(pool.metrics().destroyed.total).toBe(0);
    expect((await pool.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
  });

  it('never pipelines a statement that may open a transaction: BEGIN takes a connection of its own', async () => {
    const app = uniqueName('pipe_begin');
    const pool = poolFor(app, { pool: { min: 1, max: 1 } });
    await pool.start();
    const marker = Math.floor(Math.random() * 1e9);

    // With one connection, an INSERT pipelined behind the BEGIN would run inside that transaction and be
    // rolled back when the pool resets the connection. Unpipelined, it waits and commits on its own.
    const begin = pool.query('BEGIN');
    const inserts = Array.from({ length: 3 }, () => pool.query(`INSERT INTO ${table} VALUES (${marker})`));
    await Promise.all([begin, ...inserts]);

    const rows = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE id = $1`, [
      marker,
    ]);
    expect(rows.rows[0]!.n).toBe(3);
    expect((await pool.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
  });

  it('serves a plain acquire() queued behind pipelined work in its turn, under sustained load', async () => {
    const app = uniqueName('pipe_fair');
    const pool = poolFor(app, { pool: { min: 1, max: 1 } });
    await pool.start();

    let running = true;
    const load = Array.from({ length: 8 }, async () => {
      while (running) await pool.query('SELECT pg_sleep(0.01)');
    });
    await sleep(100);
    const started = performance.now();
    const lease = await pool.acquire({ timeoutMs: 1500 });
    const waited = performance.now() - started;
    lease.release();
    running = false;
    await Promise.all(load);
    // At most the queries already on the connection (4 × 10 ms) ran before it; never the whole load.
    expect(waited).toBeLessThan(1000);
  });

  it('queues behind the pool when it is paused and runs the queued queries after resume()', async () => {
    const app = uniqueName('pipe_pause');
    const pool = poolFor(app, { pool: { min: 1, max: 1 } });
    await pool.start();
    const first = pool.query('SELECT pg_sleep(0.1)');
    pool.pause();
    const second = pool.query<{ n: number }>('SELECT 2 AS n');
    expect(pool.metrics().waiting).toBe(1); // nothing joins a lease while the pool is paused
    await first;
    await sleep(50);
    expect(pool.metrics().waiting).toBe(1);
    pool.resume();
    expect((await second).rows).toEqual([{ n: 2 }]);
  });

  it('fails every query on a connection the server killed with PoolConnectionError, then replaces it', async () => {
    const app = uniqueName('pipe_kill');
    const pool = poolFor(app, { pool: { min: 1, max: 1 } });
    await pool.start();
    const [pid] = await backendPids(admin, app);

    const calls = Array.from({ length: 4 }, () => pool.query('SELECT pg_sleep(2)').catch((e: unknown) => e));
    await sleep(100);
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    const errors = await Promise.all(calls);
    for (const error of errors) expect(error).toBeInstanceOf(PoolConnectionError);

    expect((await pool.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    expect(await backendPids(admin, app)).not.toContain(pid);
  });

  it('never joins a connection the pool already knows is lost, though its queries have not failed yet', async () => {
    const app = uniqueName('pipe_lost');
    const { proxy, uri } = await proxiedUri(app, (cleanup) => cleanups.push(cleanup));
    const pool = poolFor(app, { uri, pool: { min: 1, max: 1 } });
    await pool.start();

    const running = [1, 2].map(() => pool.query('SELECT pg_sleep(1)').catch((e: unknown) => e));
    await sleep(100);
    // The socket error reaches the pool (its 'error' event) a tick before pg fails the queries on it: a query
    // made right then must not join them.
    let late: Promise<unknown> | undefined;
    pool.on('error', () => {
      late ??= pool.query<{ n: number }>('SELECT 1 AS n').then(
        (r) => r.rows,
        (e: unknown) => e,
      );
    });
    proxy.resetAll();
    for (const error of await Promise.all(running)) expect(error).toBeInstanceOf(PoolConnectionError);
    await waitUntil(() => late !== undefined, "the pool's 'error' event");
    expect(await late).toEqual([{ n: 1 }]);
  });

  it('a timed-out query destroys its connection; the queries behind it fail at once, typed, and the pool recovers', async () => {
    const app = uniqueName('pipe_timeout');
    const pool = poolFor(app, { queryTimeoutMs: 200, pool: { min: 1, max: 1 } });
    await pool.start();

    const started = performance.now();
    const [slow, ...behind] = await Promise.all([
      pool.query('SELECT pg_sleep(5)').catch((e: unknown) => e),
      pool.query('SELECT 1').catch((e: unknown) => e),
      pool.query('SELECT 2').catch((e: unknown) => e),
    ]);
    expect(performance.now() - started).toBeLessThan(1500);
    expect(slow).toBeInstanceOf(PoolQueryTimeoutError);
    // They were on the destroyed connection: each gets a typed error (the timeout that destroyed it, or their
    // own, which ran out at the same moment), never an answer late or a hang.
    for (const error of behind) expect(error).toBeInstanceOf(PoolError);

    await waitUntil(async () => (await countBackends(admin, app)) <= 1, 'the timed-out backend to go', 3000);
    expect((await pool.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    expect(pool.metrics().destroyed.error).toBe(1);
  });

  it('close() waits for pipelined queries, then leaves no connection behind', async () => {
    const app = uniqueName('pipe_close');
    const pool = poolFor(app, { pool: { min: 1, max: 1 } });
    await pool.start();
    const calls = Array.from({ length: 4 }, (_, i) =>
      pool.query<{ n: number }>('SELECT $1::int AS n, pg_sleep(0.1)', [i]),
    );
    await pool.close({ timeoutMs: 2000 });
    expect((await Promise.all(calls)).map((r) => r.rows[0]!.n)).toEqual([0, 1, 2, 3]);
    await waitUntil(async () => (await countBackends(admin, app)) === 0, 'the connection to close', 3000);
  });

  it('leaves a connection out of pipeline mode when it goes back: a lease can use portals and transactions', async () => {
    const app = uniqueName('pipe_mode');
    const pool = poolFor(app, { pool: { min: 1, max: 1 } });
    await pool.start();
    await Promise.all(Array.from({ length: 4 }, () => pool.query('SELECT 1')));
    const lease = await pool.acquire();
    expect((lease.connection as pg.Client & { pipeline: boolean }).pipeline).toBe(false);
    // A query through a row-limited portal (what cursors use), which pg refuses in pipeline mode.
    // (`rows` is pg's option, missing from @types/pg's QueryConfig.)
    const limitedQuery = { text: 'SELECT generate_series(1, 5) AS n', rows: 2 } as pg.QueryConfig;
    const limited = await lease.connection.query(limitedQuery);
    expect(limited.rows.map((row) => row['n'] as number)).toEqual([1, 2, 3, 4, 5]); // fetched 2 at a time
    lease.release();
    expect(await pool.transaction(async (client) => (await client.query('SELECT 1 AS n')).rows)).toEqual([
      { n: 1 },
    ]);
  });
});

describe('pipelineDepth configuration', () => {
  it.each([0, 1.5, 65, '4', -1])('refuses pipelineDepth %p, naming the field', (depth) => {
    expect(() =>
      createPool({ name: 'bad', backend: 'postgres', uri: pgUrl(), pipelineDepth: depth as number }),
    ).toThrow(PoolConfigError);
    try {
      createPool({ name: 'bad', backend: 'postgres', uri: pgUrl(), pipelineDepth: depth as number });
    } catch (error) {
      expect(error).toMatchObject({ poolName: 'bad', field: 'pipelineDepth' });
    }
  });

  it("points pg's own pipeline switch at pipelineDepth", () => {
    expect(() =>
      createPool({ name: 'own', backend: 'postgres', uri: pgUrl(), connection: { pipeline: true } as never }),
    ).toThrow(/connection\.pipeline.*pipelineDepth/);
  });

  it('detects pipeline mode on the installed pg, and its absence on an older Client', () => {
    expect(hasPipelineMode(pg.Client)).toBe(true);
    class OldClient {
      query(): void {}
    }
    expect(hasPipelineMode(OldClient)).toBe(false);
    expect(hasPipelineMode(undefined)).toBe(false);
  });

  it('pipelines only statements that cannot open a transaction, COPY or LISTEN', () => {
    for (const text of [
      'SELECT 1',
      'INSERT INTO t VALUES (1)',
      'UPDATE t SET a = 1',
      'SELECT * FROM starts',
    ]) {
      expect(pipelinable(text)).toBe(true);
    }
    for (const text of [
      'BEGIN',
      'begin isolation level serializable',
      'SELECT 1; BEGIN',
      'START TRANSACTION',
      'start/**/transaction',
      'COPY t FROM STDIN',
      'LISTEN ch',
      'DO $$ BEGIN PERFORM 1; END $$',
    ]) {
      expect(pipelinable(text)).toBe(false);
    }
  });
});
