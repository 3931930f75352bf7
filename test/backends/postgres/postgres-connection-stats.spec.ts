/**
 * `pool.connections()` for PostgreSQL: each pooled pg.Client with its state, uses, and the queries run on
 * it (every form: promise, callback, Submittable), their mean duration and the last error, redacted.
 * Also `histograms()` and `trackUseTime()`, forwarded to the engine.
 */
import { describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { createPool, type PostgresPool } from '../../../lib/index.js';
import type { BackendConnectionInfo } from '../../../lib/backends/backend-pool.js';
import { pgUrl, uniqueName, waitUntil } from './pg-test-support.js';

/** The server trusts every connection, so the password is never checked, only carried (and redacted). */
const PASSWORD = 'Stats-Pa55w0rd-91x';

function poolFor(app: string, pool: Record<string, unknown> = {}): PostgresPool {
  return createPool({
    name: app,
    backend: 'postgres',
    uri: pgUrl({ application_name: app }, { user: 'postgres', password: PASSWORD }),
    pool: { max: 1, ...pool },
  });
}

function only(pool: PostgresPool): BackendConnectionInfo {
  const list = pool.connections();
  expect(list).toHaveLength(1);
  return list[0]!;
}

describe('PostgresPool.connections()', () => {
  it('shows a lease lent while held, with the queries run on it, then idle after release', async () => {
    const pool = poolFor(uniqueName('stats'), { validateOnBorrow: true, validationBypassMs: 0 });
    await pool.start();
    try {
      const before = only(pool);
      expect(before).toMatchObject({ state: 'idle', uses: 0, queries: 0, avgQueryMs: null });
      expect(before.lastError).toBeUndefined();

      const lease = await pool.acquire();
      for (let i = 0; i < 5; i++) await lease.connection.query('SELECT pg_sleep(0.002)');
      const held = only(pool);
      expect(held).toMatchObject({ id: before.id, state: 'lent', uses: 1, queries: 5, idleMs: 0 });
      // pg_sleep(0.002) takes 2 ms on the server at least.
      expect(held.avgQueryMs).toBeGreaterThanOrEqual(1.5);
      lease.release();

      const after = only(pool);
      expect(after).toMatchObject({ id: before.id, state: 'idle', uses: 1, queries: 5 });
      expect(after.avgQueryMs).toBe(held.avgQueryMs);
      expect(after.ageMs).toBeGreaterThan(0);
      expect(after.createdAt).toBeGreaterThan(Date.now() - 60_000);
      expect(after.createdAt).toBeLessThanOrEqual(Date.now());
      // The validation ping (SELECT 1 on borrow) is the pool's, not a query of the caller's.
      await pool.query('SELECT 1');
      expect(only(pool)).toMatchObject({ uses: 2, queries: 6 });
      // Never the connection itself.
      expect(JSON.stringify(pool.connections())).not.toContain('Client');
      expect(Object.keys(after).sort()).toEqual(
        ['ageMs', 'avgQueryMs', 'createdAt', 'id', 'idleMs', 'queries', 'state', 'uses'].sort(),
      );
    } finally {
      await pool.close();
    }
    expect(pool.connections()).toEqual([]);
  });

  it('counts callback and Submittable queries without changing what they deliver', async () => {
    const pool = poolFor(uniqueName('forms'));
    await pool.start();
    try {
      await pool.use(async (client) => {
        const viaCallback = await new Promise<number>((resolve, reject) => {
          client.query<{ n: number }>('SELECT 41 + 1 AS n', (error, result) =>
            error ? reject(error) : resolve(result.rows[0]!.n),
          );
        });
        expect(viaCallback).toBe(42);
        const withValues = await new Promise<string>((resolve, reject) => {
          client.query<{ v: string }>('SELECT $1::text AS v', ['x'], (error, result) =>
            error ? reject(error) : resolve(result.rows[0]!.v),
          );
        });
        expect(withValues).toBe('x');
        // A Submittable (what cursors and streams are): pg's own Query, with rows as events.
        const rows: unknown[] = [];
        const submitted = client.query(new pg.Query('SELECT generate_series(1, 3) AS n'));
        await new Promise<void>((resolve, reject) => {
          submitted.on('row', (row: unknown) => rows.push(row));
          submitted.on('end', () => resolve());
          submitted.on('error', reject);
        });
        expect(rows).toHaveLength(3);
      });
      expect(only(pool)).toMatchObject({ queries: 3 });
      expect(only(pool).avgQueryMs).toBeGreaterThan(0);
    } finally {
      await pool.close();
    }
  });

  it('keeps the last failed query error, redacted, and the failed callback query counted', async () => {
    const pool = poolFor(uniqueName('error'));
    await pool.start();
    try {
      // The server echoes the bad value in its message: here, the password.
      await expect(pool.query('SELECT $1::int', [PASSWORD])).rejects.toThrow(/invalid input syntax/);
      // pg rejects on the error, before the server's ReadyForQuery that the reset waits for: briefly resetting.
      expect(['resetting', 'idle']).toContain(only(pool).state);
      await waitUntil(() => only(pool).state === 'idle', 'the connection to be idle again');
      const info = only(pool);
      expect(info).toMatchObject({ state: 'idle', queries: 1 });
      expect(info.lastError).toMatch(/invalid input syntax for type integer.*\(22P02\)/);
      expect(info.lastError).toContain('***');
      expect(JSON.stringify(pool.connections())).not.toContain(PASSWORD);

      const callbackError = await pool.use(
        (client) =>
          new Promise<Error>((resolve) => {
            client.query('SELECT * FROM np_no_such_table_stats', (error: Error) => resolve(error));
          }),
      );
      expect(callbackError.message).toMatch(/does not exist/);
      expect(only(pool)).toMatchObject({ queries: 2 });
      expect(only(pool).lastError).toMatch(/np_no_such_table_stats.*does not exist \(42P01\)/);
      // A later success keeps the last error (it is the last *error*).
      await pool.query('SELECT 1');
      expect(only(pool).lastError).toMatch(/does not exist/);
    } finally {
      await pool.close();
    }
  });

  it('forwards histograms() and trackUseTime() to the engine', async () => {
    const pool = poolFor(uniqueName('hist'));
    await pool.start();
    try {
      await pool.query('SELECT 1');
      expect(pool.histograms().use.count).toBe(0); // off by default
      expect(pool.histograms().create.count).toBe(1);
      pool.trackUseTime(true);
      await pool.query('SELECT 1');
      await pool.query('SELECT 1');
      const { use, wait } = pool.histograms();
      expect(use.count).toBe(2);
      expect(use.sumMs).toBeGreaterThan(0);
      expect(use.counts.reduce((a, b) => a + b, 0)).toBe(2);
      expect(wait.count).toBe(3);
      pool.trackUseTime(false);
      await pool.query('SELECT 1');
      expect(pool.histograms().use.count).toBe(2);
    } finally {
      await pool.close();
    }
  });
});
