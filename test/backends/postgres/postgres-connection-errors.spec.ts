/**
 * Which error a PostgresPool caller gets: a connection that fails under `query()` or `transaction()` gives
 * PoolConnectionError (pg's error, redacted, as `cause`; its SQLSTATE copied to `code`); a statement the
 * server refuses (syntax error, unique violation) gives pg's own DatabaseError, untouched, and the
 * connection stays in the pool.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type pg from 'pg';
import { createPool, PoolError, type PostgresPool } from '../../../lib/index.js';
import { PoolConnectionError } from '../../../lib/backends/pool-connection-error.js';
import { adminClient, pgUrl, uniqueName, waitUntil } from './pg-test-support.js';

let admin: pg.Client;
beforeAll(async () => {
  admin = await adminClient();
});
afterAll(async () => {
  await admin.end();
});

function poolFor(app: string): PostgresPool {
  return createPool({
    name: app,
    backend: 'postgres',
    uri: pgUrl({ application_name: app }),
    pool: { max: 1 },
  });
}

/** Terminates the pool's backend once it runs `pg_sleep` (so the query is in flight). */
async function terminateSleeping(app: string): Promise<void> {
  await waitUntil(
    async () =>
      (
        await admin.query(
          "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%pg_sleep%'",
          [app],
        )
      ).rowCount === 1,
    'the query to run',
  );
  await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
    app,
  ]);
}

describe('PostgresPool: connection errors are typed, statement errors are not', () => {
  it('a statement error (syntax, unique violation) is pg’s own, and the connection is reused', async () => {
    const app = uniqueName('stmt_err');
    const pool = poolFor(app);
    await pool.start();
    try {
      const syntax = await pool.query('SELEC 1').catch((e: unknown) => e);
      expect(syntax).not.toBeInstanceOf(PoolError);
      expect(syntax).toMatchObject({ code: '42601', severity: 'ERROR' });

      const table = `np_conn_err_${process.pid}_${Date.now().toString(36)}`;
      await pool.query(`CREATE TEMP TABLE ${table} (id int PRIMARY KEY)`);
      const duplicate = await pool
        .transaction(async (client) => {
          await client.query(`INSERT INTO ${table} VALUES (1)`);
          await client.query(`INSERT INTO ${table} VALUES (1)`);
        })
        .catch((e: unknown) => e);
      expect(duplicate).not.toBeInstanceOf(PoolError);
      expect(duplicate).toMatchObject({ code: '23505' });
      // Rolled back, same connection (the temp table is still there), nothing destroyed.
      expect((await pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows).toEqual([{ n: 0 }]);
      expect(pool.metrics()).toMatchObject({ created: 1, destroyed: { error: 0 } });
    } finally {
      await pool.close();
    }
  });

  it('a statement error whose message quotes "Connection terminated" is still the statement’s', async () => {
    // The caller's own input ends up in the server's message; only pg's client-side errors (no SQLSTATE) are
    // recognised by their wording.
    const app = uniqueName('stmt_quote');
    const pool = poolFor(app);
    await pool.start();
    try {
      const error = await pool.query('SELECT $1::int', ['Connection terminated']).catch((e: unknown) => e);
      expect(error).not.toBeInstanceOf(PoolError);
      expect(error).toMatchObject({ code: '22P02' });
      expect((await pool.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
      expect(pool.metrics()).toMatchObject({ created: 1, destroyed: { error: 0 } });
    } finally {
      await pool.close();
    }
  });

  it('a transaction whose connection is terminated: PoolConnectionError with the SQLSTATE, connection destroyed', async () => {
    const app = uniqueName('tx_kill');
    const pool = poolFor(app);
    await pool.start();
    try {
      const running = pool
        .transaction(async (client) => {
          await client.query('SELECT pg_sleep(5)');
        })
        .catch((e: unknown) => e);
      await terminateSleeping(app);
      const error = await running;
      expect(error).toBeInstanceOf(PoolConnectionError);
      expect(error).toMatchObject({
        name: 'PoolConnectionError',
        poolName: app,
        code: '57P01',
        cause: { code: '57P01', severity: 'FATAL' },
      });
      expect((await pool.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
      expect(pool.metrics()).toMatchObject({ created: 2, destroyed: { error: 1 } });
    } finally {
      await pool.close();
    }
  });
});
