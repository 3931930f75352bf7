/**
 * Bad input to a postgres pool: typed errors naming the pool and the field, at createPool() for options and
 * at start() for the server (refused port, wrong password), never a crash and never a password.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer } from 'node:net';
import pg from 'pg';
import {
  createPool,
  PoolConfigError,
  PoolError,
  PoolTimeoutError,
  PoolUnavailableError,
  PostgresPool,
  type BackendPoolOptions,
} from '../../../lib/index.js';
import { startPrivatePostgres, type PrivateServer } from '../../support/private-servers.js';
import { pgUrl, uniqueName } from './pg-test-support.js';

/** A loopback port nothing listens on (bound, then released). */
async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function configError(options: unknown): PoolConfigError {
  try {
    createPool(options as BackendPoolOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(PoolConfigError);
    return error as PoolConfigError;
  }
  throw new Error('createPool did not throw');
}

describe('createPool() option errors', () => {
  it('unknown backend: names the field and lists the known backends', () => {
    const error = configError({ name: 'users', backend: 'mysql', uri: 'mysql://x@localhost/db' });
    expect(error).toMatchObject({ poolName: 'users', field: 'backend' });
    expect(error.message).toBe(
      'Pool "users": invalid option "backend": unknown backend "mysql"; known backends: "postgres", "mongodb", "redis" ' +
        '(add your own with registerBackend())',
    );
  });

  it('missing backend, missing target, bad name, not an object', () => {
    expect(configError({ name: 'users', uri: 'postgres://localhost/db' })).toMatchObject({
      field: 'backend',
    });
    expect(configError({ name: 'users', backend: 'postgres' })).toMatchObject({ field: 'uri' });
    expect(configError({ name: '', backend: 'postgres' })).toMatchObject({
      field: 'name',
      poolName: 'default',
    });
    expect(configError('postgres://localhost/db')).toMatchObject({ field: 'options' });
    expect(configError(null)).toMatchObject({ field: 'options' });
  });

  it('malformed or foreign URIs: field uri, and the password is never echoed', () => {
    for (const uri of [
      'postgres://app:Sup3rSecret!@127.0.0.1:notaport/test',
      'postgres://app:Sup3rSecret!@[bad/test',
      'not a uri at all Sup3rSecret!',
      'mysql://app:Sup3rSecret!@127.0.0.1:3306/test',
      'postgres://app:Sup3rSecret!@127.0.0.1:99999/test',
    ]) {
      const error = configError({ name: 'users', backend: 'postgres', uri });
      expect(error).toMatchObject({ poolName: 'users', field: 'uri' });
      expect(`${error.message}\n${error.stack}`).not.toContain('Sup3rSecret');
    }
    expect(configError({ name: 'users', backend: 'postgres', uri: 42 }).field).toBe('uri');
  });

  it('engine options under pool: fields are reported as pool.*', () => {
    const minMax = configError({
      name: 'users',
      backend: 'postgres',
      uri: pgUrl(),
      pool: { min: 5, max: 2 },
    });
    expect(minMax.field).toBe('pool.min');
    expect(minMax.message).toBe(
      'Pool "users": invalid option "pool.min": must not be greater than max (min 5, max 2)',
    );
    expect(configError({ backend: 'postgres', uri: pgUrl(), pool: { max: '10' } }).field).toBe('pool.max');
    expect(configError({ backend: 'postgres', uri: pgUrl(), pool: { maxx: 1 } }).field).toBe('pool.maxx');
    expect(configError({ backend: 'postgres', uri: pgUrl(), pool: { name: 'x' } }).field).toBe('pool.name');
    expect(configError({ backend: 'postgres', uri: pgUrl(), pool: 3 }).field).toBe('pool');
  });

  it('common and driver options', () => {
    const typo = configError({ name: 'users', backend: 'postgres', url: pgUrl() });
    expect(typo).toMatchObject({ field: 'url' });
    expect(typo.message).toContain('did you mean "uri"?');
    expect(configError({ backend: 'postgres', uri: pgUrl(), queryTimeoutMs: '100' }).field).toBe(
      'queryTimeoutMs',
    );
    expect(configError({ backend: 'postgres', uri: pgUrl(), queryTimeoutMs: -1 }).field).toBe(
      'queryTimeoutMs',
    );
    expect(configError({ backend: 'postgres', connection: 'postgres://x' }).field).toBe('connection');
    expect(configError({ backend: 'postgres', connection: { connectionString: pgUrl() } }).field).toBe(
      'connection.connectionString',
    );
    expect(configError({ backend: 'postgres', connection: { query_timeout: 5 } }).field).toBe(
      'connection.query_timeout',
    );
    // pg copies every URI parameter into its config: the pool's own settings can't be slipped in there.
    for (const key of ['query_timeout', 'connectionTimeoutMillis', 'pipeline']) {
      const inUri = configError({ backend: 'postgres', uri: pgUrl({ [key]: '50' }) });
      expect(inUri.field).toBe('uri');
      expect(inUri.message).toContain(`?${key}`);
    }
    expect(configError({ backend: 'postgres', connection: { port: 70000 } }).field).toBe('connection.port');
    expect(configError({ backend: 'postgres', connection: { password: 12 } }).field).toBe(
      'connection.password',
    );
  });

  it('valid options give a PostgresPool without touching the network or the driver', async () => {
    const pool = createPool({ name: 'lazy-one', backend: 'postgres', uri: pgUrl(), pool: { max: 1 } });
    expect(pool).toBeInstanceOf(PostgresPool);
    expect(pool.metrics()).toMatchObject({ name: 'lazy-one', size: 0, created: 0, state: 'starting' });
    await pool.close();
  });

  it('accepts connection options instead of a URI', async () => {
    const url = new URL(pgUrl());
    const app = uniqueName('conn_opts');
    const pool = createPool({
      name: app,
      backend: 'postgres',
      connection: {
        host: url.hostname,
        port: Number(url.port || 5432),
        user: decodeURIComponent(url.username) || 'postgres',
        database: url.pathname.slice(1),
        application_name: app,
      },
      pool: { max: 1 },
    });
    try {
      expect(pool.target).toBe(
        `postgres://${decodeURIComponent(url.username) || 'postgres'}@${url.hostname}:${url.port || 5432}/${url.pathname.slice(1)}`,
      );
      const { rows } = await pool.query<{ app: string }>("SELECT current_setting('application_name') AS app");
      expect(rows[0]!.app).toBe(app);
    } finally {
      await pool.close();
    }
  });
});

describe('server unreachable at start', () => {
  it("startup 'fail-fast' (the default): start() rejects PoolUnavailableError with the refusal as cause", async () => {
    const port = await refusedPort();
    const pool = createPool({
      name: 'refused',
      backend: 'postgres',
      uri: `postgres://app:Refused-Pa55@127.0.0.1:${port}/test`,
    });
    try {
      const error = (await pool.start().catch((e: unknown) => e)) as PoolUnavailableError;
      expect(error).toBeInstanceOf(PoolUnavailableError);
      expect(error.poolName).toBe('refused');
      expect(error.message).toMatch(
        /^Pool "refused": could not open a connection at start-up: .*ECONNREFUSED/,
      );
      // (The cause is Node's socket error; under Jest's VM realm the engine's toError() re-wraps it, so its
      // `code` is only checked through the message here.)
      expect(String((error.cause as Error).message)).toContain('ECONNREFUSED');
      expect(JSON.stringify([error.message, error.stack, String(error.cause)])).not.toContain('Refused-Pa55');
    } finally {
      await pool.close();
    }
  });

  it("startup 'lazy': start() resolves; callers time out with the refusal as cause; health is down", async () => {
    const port = await refusedPort();
    const pool = createPool({
      name: 'refused-lazy',
      backend: 'postgres',
      uri: `postgres://app:Refused-Pa55@127.0.0.1:${port}/test`,
      pool: { startup: 'lazy', acquireTimeoutMs: 300 },
    });
    try {
      await expect(pool.start()).resolves.toBeUndefined();
      const error = (await pool.query('SELECT 1').catch((e: unknown) => e)) as PoolTimeoutError;
      expect(error).toBeInstanceOf(PoolTimeoutError);
      expect(error.message).toContain('ECONNREFUSED');
      const health = await pool.checkHealth({ timeoutMs: 300 });
      expect(health.status).toBe('down');
      expect(JSON.stringify(health)).not.toContain('Refused-Pa55');
    } finally {
      await pool.close();
    }
  });
});

describe('wrong password (private PostgreSQL with scram-sha-256 for non-superusers)', () => {
  let server: PrivateServer;
  const password = 'Right-Pa55word-9f3';

  beforeAll(async () => {
    server = await startPrivatePostgres();
    // Only on this private server: require passwords for every role but postgres over TCP.
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    try {
      const hba = (await admin.query<{ hba_file: string }>('SHOW hba_file')).rows[0]!.hba_file;
      const lines = [
        'local all all trust',
        'host all postgres 127.0.0.1/32 trust',
        'host all all 127.0.0.1/32 scram-sha-256',
      ];
      await admin.query(
        `COPY (SELECT unnest(ARRAY[${lines.map((l) => pg.escapeLiteral(l)).join(', ')}])) TO ${pg.escapeLiteral(hba)}`,
      );
      await admin.query('SELECT pg_reload_conf()');
      await admin.query(`CREATE ROLE app LOGIN PASSWORD ${pg.escapeLiteral(password)}`);
    } finally {
      await admin.end();
    }
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  function uriWith(pass: string): string {
    return `postgres://app:${encodeURIComponent(pass)}@127.0.0.1:${server.port}/postgres`;
  }

  it('the right password works', async () => {
    const pool = createPool({ name: 'auth-ok', backend: 'postgres', uri: uriWith(password) });
    try {
      await pool.start();
      expect((await pool.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u).toBe('app');
    } finally {
      await pool.close();
    }
  });

  it('a wrong password fails start() with the auth error (28P01) as cause, redacted', async () => {
    const wrong = 'Wr0ng-Pa55word-c0de';
    const events: string[] = [];
    const pool = createPool({
      name: 'auth-bad',
      backend: 'postgres',
      uri: uriWith(wrong),
      pool: { circuitBreaker: false },
    });
    pool.on('error', (error, { phase }) => events.push(`${phase}: ${error.message} ${String(error.stack)}`));
    try {
      const error = (await pool.start().catch((e: unknown) => e)) as PoolUnavailableError;
      expect(error).toBeInstanceOf(PoolUnavailableError);
      expect(error).toBeInstanceOf(PoolError);
      expect(error.message).toMatch(/password authentication failed for user "app"/);
      expect((error.cause as { code?: string }).code).toBe('28P01');
      expect(events.length).toBeGreaterThan(0);
      const everything = JSON.stringify([
        error.message,
        error.stack,
        String(error.cause),
        events,
        pool.target,
      ]);
      expect(everything).not.toContain(wrong);
      expect(pool.target).toBe(`postgres://app:***@127.0.0.1:${server.port}/postgres`);
    } finally {
      await pool.close();
    }
  });
});
