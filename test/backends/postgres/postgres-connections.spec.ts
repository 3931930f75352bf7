/**
 * What the server sees of a PostgresPool: connections tagged by the URI's application_name, never more than
 * `max`, all gone after close(); and what the pool does when the server kills its connections.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type pg from 'pg';
import { createPool, PoolError, type PoolErrorContext, type PostgresPool } from '../../../lib/index.js';
import { PoolConnectionError } from '../../../lib/backends/pool-connection-error.js';
import {
  adminClient,
  backendPids,
  countBackends,
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

function poolFor(app: string, pool: Record<string, unknown> = {}): PostgresPool {
  return createPool({
    name: app,
    backend: 'postgres',
    uri: pgUrl({ application_name: app }),
    pool: { max: 3, ...pool },
  });
}

describe('server-side view', () => {
  it('honours application_name from the URI', async () => {
    const app = uniqueName('appname');
    const pool = poolFor(app);
    await pool.start();
    try {
      const { rows } = await pool.query<{ name: string }>('SELECT current_setting($1) AS name', [
        'application_name',
      ]);
      expect(rows[0]!.name).toBe(app);
      expect(await countBackends(admin, app)).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('never opens more than max connections, however many callers', async () => {
    const app = uniqueName('max');
    const pool = poolFor(app, { max: 3 });
    await pool.start();
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await countBackends(admin, app));
        await sleep(10);
      }
    })();
    try {
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          pool.query<{ i: number }>('SELECT $1::int AS i, pg_sleep(0.05)', [i]),
        ),
      );
      expect(results.map((r) => r.rows[0]!.i)).toEqual(Array.from({ length: 12 }, (_, i) => i));
      expect(pool.metrics().created).toBe(3);
    } finally {
      sampling = false;
      await sampler;
      await pool.close();
    }
    expect(peak).toBe(3);
  });

  it('close() returns the server to its baseline', async () => {
    const app = uniqueName('close');
    const pool = poolFor(app, { min: 2, max: 4 });
    await pool.start();
    await Promise.all(Array.from({ length: 4 }, () => pool.query('SELECT pg_sleep(0.02)')));
    expect(await countBackends(admin, app)).toBe(4);
    await pool.close();
    expect(pool.metrics()).toMatchObject({ state: 'closed', size: 0 });
    // The server reaps a backend just after the client's Terminate; give it a moment.
    await waitUntil(async () => (await countBackends(admin, app)) === 0, 'the server backends to exit');
  });

  it('keeps min connections open after start()', async () => {
    const app = uniqueName('min');
    const pool = poolFor(app, { min: 2, max: 4 });
    await pool.start();
    try {
      await waitUntil(async () => (await countBackends(admin, app)) === 2, 'min connections');
      expect(pool.metrics()).toMatchObject({ size: 2, idle: 2 });
    } finally {
      await pool.close();
    }
  });
});

describe('connections killed by the server', () => {
  it('survives pg_terminate_backend on idle connections: no crash, an error event, a fresh connection next', async () => {
    const app = uniqueName('kill_idle');
    const pool = poolFor(app, { min: 2, max: 2 });
    const errors: { error: Error; context: PoolErrorContext }[] = [];
    pool.on('error', (error, context) => errors.push({ error, context }));
    await pool.start();
    try {
      await waitUntil(async () => (await countBackends(admin, app)) === 2, 'two connections');
      const before = await backendPids(admin, app);

      await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
        [app],
      );
      await waitUntil(() => errors.length >= 2, 'an error event per killed connection');

      expect(errors.every((e) => e.context.phase === 'connection')).toBe(true);
      expect(errors[0]!.error).toBeInstanceOf(PoolError);
      expect(errors[0]!.error.message).toMatch(new RegExp(`^Pool "${app}": a connection failed`));
      // 57P01: terminating connection due to administrator command.
      expect((errors[0]!.error.cause as { code?: string }).code).toBe('57P01');

      // Both callers get working connections: the dead idle ones are destroyed, not lent.
      const rows = await Promise.all([
        pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid, pg_sleep(0.05)'),
        pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid, pg_sleep(0.05)'),
      ]);
      for (const result of rows) expect(before).not.toContain(result.rows[0]!.pid);
      expect(pool.metrics().destroyed.error).toBe(2);
      await waitUntil(async () => (await countBackends(admin, app)) === 2, 'replacement connections');
    } finally {
      await pool.close();
    }
  });

  it('survives pg_terminate_backend mid-query: the query fails, the connection is destroyed, not returned', async () => {
    const app = uniqueName('kill_busy');
    const pool = poolFor(app, { max: 1 });
    const phases: string[] = [];
    pool.on('error', (_error, { phase }) => phases.push(phase));
    await pool.start();
    try {
      const running = pool.query('SELECT pg_sleep(5)');
      await waitUntil(
        async () =>
          (
            await admin.query(
              "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'SELECT pg_sleep%'",
              [app],
            )
          ).rowCount === 1,
        'the query to run',
      );
      await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
        [app],
      );
      // A typed error, with pg's FATAL as its cause and its SQLSTATE copied, so `code` checks still work.
      const error = await running.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PoolConnectionError);
      expect(error).toMatchObject({
        name: 'PoolConnectionError',
        poolName: pool.name,
        code: '57P01',
        cause: { code: '57P01', severity: 'FATAL' },
      });
      // The caller heard about it (the rejection) and the pool destroyed the connection before pg's own
      // 'error' for the closed socket arrived, so there is nothing left to report as an event.
      expect(phases.every((phase) => phase === 'connection')).toBe(true);

      expect((await pool.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
      expect(pool.metrics()).toMatchObject({ created: 2, destroyed: { error: 1 } });
    } finally {
      await pool.close();
    }
  });

  it('an idle client error with no pool listener does not crash the process', async () => {
    const app = uniqueName('kill_nolisten');
    const pool = poolFor(app, { min: 1, max: 1 });
    await pool.start();
    try {
      await waitUntil(async () => (await countBackends(admin, app)) === 1, 'one connection');
      await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
        [app],
      );
      await sleep(100); // an unhandled 'error' on the pg.Client would have thrown by now
      expect((await pool.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    } finally {
      await pool.close();
    }
  });

  it('a lease holding a killed connection: its query fails, and release() destroys it', async () => {
    const app = uniqueName('kill_lease');
    const pool = poolFor(app, { max: 1 });
    const phases: string[] = [];
    pool.on('error', (_error, { phase }) => phases.push(phase));
    await pool.start();
    try {
      const lease = await pool.acquire();
      await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
        [app],
      );
      // The lent client's 'error' (no query running) is caught and reported; nothing crashes.
      await waitUntil(() => phases.includes('connection'), "the pool's connection error event");
      await expect(lease.connection.query('SELECT 1')).rejects.toThrow();
      lease.release();
      await waitUntil(() => pool.metrics().destroyed.total === 1, 'the dead connection to be destroyed');
      expect((await pool.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    } finally {
      await pool.close();
    }
  });
});
