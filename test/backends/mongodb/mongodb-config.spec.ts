/**
 * MongoDB pool options: typed PoolConfigErrors naming the field for bad input (malformed URI, unknown
 * option, options the pool owns set in the URI or `connection`, bad database), the database name's
 * precedence, URI options honoured, and start() against a refused port (fail-fast rejects fast, lazy resolves).
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { createPool, PoolConfigError, PoolUnavailableError, type MongoPool } from '../../../lib/index.js';
import type { BackendPoolOptions } from '../../../lib/index.js';
import { mongoUrl, uniqueDatabase } from './mongo-test-support.js';

const DATABASE = uniqueDatabase('config');

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function make(options: Record<string, unknown>): MongoPool {
  const pool = createPool({
    name: 'cfg',
    backend: 'mongodb',
    ...options,
  } as unknown as BackendPoolOptions) as MongoPool;
  cleanups.push(() => pool.close({ timeoutMs: 1000 }));
  return pool;
}

function configError(options: Record<string, unknown>): PoolConfigError {
  try {
    make(options);
  } catch (error) {
    expect(error).toBeInstanceOf(PoolConfigError);
    return error as PoolConfigError;
  }
  throw new Error('expected a PoolConfigError');
}

describe('mongodb options', () => {
  it('rejects a malformed URI, naming the field and never echoing it', () => {
    const error = configError({ uri: 'mongodb://user:pa ss@[bad/db' });
    expect(error.field).toBe('uri');
    expect(error.message).toMatch(/^Pool "cfg": invalid option "uri": is not a valid URI/);
    expect(error.message).not.toContain('pa ss');
    expect(configError({ uri: 'postgres://h/db' }).message).toMatch(
      /must start with mongodb:\/\/ or mongodb\+srv:\/\//,
    );
    expect(configError({}).field).toBe('uri');
    expect(configError({ connection: { appName: 'x' } }).field).toBe('uri');
  });

  it('rejects unknown options with the field name', () => {
    expect(configError({ uri: mongoUrl(DATABASE), databse: 'x' }).field).toBe('databse');
    expect(configError({ uri: mongoUrl(DATABASE), pool: { maxx: 1 } }).field).toBe('pool.maxx');
  });

  it('rejects driver options the pool owns, in the URI and in connection, naming what to use', () => {
    const inUri = configError({ uri: mongoUrl(DATABASE, { maxPoolSize: '50' }) });
    expect(inUri.field).toBe('uri');
    expect(inUri.message).toContain('sets "maxPoolSize", which the pool owns: use "pool.max"');
    // Mongo URI options are case-insensitive.
    expect(configError({ uri: mongoUrl(DATABASE, { waitqueuetimeoutms: '5' }) }).message).toContain(
      'use "pool.acquireTimeoutMs"',
    );
    const inConnection = configError({ uri: mongoUrl(DATABASE), connection: { minPoolSize: 2 } });
    expect(inConnection.field).toBe('connection.minPoolSize');
    expect(inConnection.message).toContain('use "pool.min"');
    expect(configError({ uri: mongoUrl(DATABASE), connection: { dbName: 'x' } }).field).toBe(
      'connection.dbName',
    );
    expect(configError({ uri: mongoUrl(DATABASE), pool: { min: 3, max: 2 } }).field).toBe('pool.min');
  });

  it('rejects a bad database name', () => {
    expect(configError({ uri: mongoUrl(DATABASE), database: 'a.b' }).field).toBe('database');
    expect(configError({ uri: mongoUrl(DATABASE), database: '' }).field).toBe('database');
    expect(configError({ uri: 'mongodb://127.0.0.1:1/a$b' }).field).toBe('uri');
  });

  it('takes the database from the URI path, or `database` (which wins), else "test"', () => {
    expect(make({ uri: mongoUrl(DATABASE) }).databaseName).toBe(DATABASE);
    expect(make({ uri: mongoUrl('admin'), database: DATABASE }).databaseName).toBe(DATABASE);
    expect(make({ uri: 'mongodb://127.0.0.1:1' }).databaseName).toBe('test');
  });

  it('accepts multi-host URIs and redacts their target', () => {
    const pool = make({ uri: 'mongodb://app:s3cretpw@h1:27017,h2:27018/app?replicaSet=rs0' });
    expect(pool.target).toBe('mongodb://app:***@h1:27017,h2:27018/app?replicaSet=rs0');
    expect(pool.databaseName).toBe('app');
  });

  it('honours URI options, which override the timeouts derived from the pool options', async () => {
    const pool = make({
      uri: mongoUrl(DATABASE, {
        serverSelectionTimeoutMS: '1234',
        appName: 'cfg-app',
        heartbeatFrequencyMS: '700',
      }),
      connection: { connectTimeoutMS: 4321 },
      pool: { createTimeoutMs: 2000, max: 2 },
    });
    await pool.start();
    expect(pool.client.options).toMatchObject({
      serverSelectionTimeoutMS: 1234,
      connectTimeoutMS: 4321,
      appName: 'cfg-app',
      heartbeatFrequencyMS: 700,
      maxPoolSize: 2,
    });
  });

  it('fail-fast start on a refused port rejects with a typed error, quickly', async () => {
    const pool = make({
      uri: 'mongodb://127.0.0.1:1/app',
      pool: { createTimeoutMs: 5000, startupTimeoutMs: 8000 },
    });
    const started = performance.now();
    const error = await pool.start().catch((e: unknown) => e);
    // The heartbeat's ECONNREFUSED fails the attempt at once: no waiting out server selection.
    expect(performance.now() - started).toBeLessThan(2000);
    expect(error).toBeInstanceOf(PoolUnavailableError);
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
    expect((error as Error & { cause?: { name?: string } }).cause?.name).toBe('MongoNetworkError');
  });

  it('lazy start on a refused port resolves; use() then fails with a typed error', async () => {
    const pool = make({
      uri: 'mongodb://127.0.0.1:1/app',
      pool: { startup: 'lazy', acquireTimeoutMs: 500 },
    });
    await pool.start();
    expect(pool.state).toBe('ready');
    const error = await pool.use(() => 1).catch((e: unknown) => e);
    expect((error as Error).name).toMatch(/^Pool(Timeout|Unavailable)Error$/);
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
  });
});
