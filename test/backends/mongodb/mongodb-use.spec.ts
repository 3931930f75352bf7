/**
 * A MongoPool against the real server: leases over the Db through use(), direct access through db/client,
 * metrics with the driver's own connection counts, checkHealth(), queryTimeoutMs, transactions (or a typed
 * PoolUnsupportedError where the server has none), and a close that leaves nothing open.
 */
import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import {
  createPool,
  PoolClosedError,
  PoolError,
  PoolQueryTimeoutError,
  PoolUnsupportedError,
  type MongoPool,
} from '../../../lib/index.js';
import { FaultProxy } from '../../../lib/testing/fault-proxy.js';
import { mongoServer, mongoUrl, proxiedParams, uniqueDatabase, waitUntil } from './mongo-test-support.js';

const DATABASE = uniqueDatabase('use');

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  const pool = poolFor('drop');
  await pool.start();
  await pool.db.dropDatabase();
  await pool.close();
});

function poolFor(
  name: string,
  extra: { uri?: string; queryTimeoutMs?: number; pool?: Record<string, unknown> } = {},
) {
  const pool: MongoPool = createPool({
    name,
    backend: 'mongodb',
    uri: extra.uri ?? mongoUrl(DATABASE),
    queryTimeoutMs: extra.queryTimeoutMs,
    pool: { max: 4, ...extra.pool },
  });
  cleanups.push(() => pool.close({ timeoutMs: 2000 }));
  return pool;
}

describe('MongoPool', () => {
  it('leases the Db through use(), with distinct slot objects and engine + driver metrics', async () => {
    const pool = poolFor('use-basic');
    await pool.start();
    expect(pool.databaseName).toBe(DATABASE);
    await pool.use((db) => db.collection('e').insertMany([{ n: 1 }, { n: 2 }, { n: 3 }]));
    const found = await pool.use((db) => db.collection('e').findOne({ n: 2 }, { projection: { _id: 0 } }));
    expect(found).toEqual({ n: 2 });

    // Leases held at the same time get distinct Db objects (identities), all on the same database.
    const leases = await Promise.all(Array.from({ length: 4 }, () => pool.acquire()));
    expect(new Set(leases.map((l) => l.connection)).size).toBe(4);
    await Promise.all(leases.map((l) => l.connection.collection('e').countDocuments()));
    for (const lease of leases) {
      expect(lease.connection.databaseName).toBe(DATABASE);
      lease.release();
    }

    const m = pool.metrics();
    expect(m).toMatchObject({ name: 'use-basic', state: 'ready', max: 4, size: 4, active: 0 });
    expect(m.acquired).toBeGreaterThanOrEqual(6);
    expect(m.driver.connections).toBeGreaterThan(0);
    expect(m.driver.connections).toBeLessThanOrEqual(4);
    expect(m.driver.checkedOut).toBe(0);
    expect(JSON.parse(JSON.stringify(pool))).toMatchObject({ backend: 'mongodb', driver: { checkedOut: 0 } });
  });

  it('maps the engine options onto the driver pool', async () => {
    const pool = poolFor('use-mapping', {
      queryTimeoutMs: 700,
      pool: {
        min: 1,
        max: 3,
        acquireTimeoutMs: 1500,
        idleTimeoutMs: 20_000,
        createTimeoutMs: 2500,
        maxConcurrentCreates: 1,
      },
    });
    await pool.start();
    expect(pool.client.options).toMatchObject({
      maxPoolSize: 3,
      minPoolSize: 1,
      waitQueueTimeoutMS: 1500,
      maxIdleTimeMS: 20_000,
      maxConnecting: 1,
      serverSelectionTimeoutMS: 2500,
      connectTimeoutMS: 2500,
      socketTimeoutMS: 950,
    });
  });

  it('gives direct access through db and client, bounded by the driver pool', async () => {
    const pool = poolFor('use-direct', { pool: { max: 2, startup: 'lazy' } });
    expect(() => pool.db).toThrow(/not started/);
    await pool.start();
    await Promise.all(Array.from({ length: 10 }, (_, i) => pool.db.collection('direct').insertOne({ i })));
    expect(await pool.client.db(DATABASE).collection('direct').countDocuments()).toBe(10);
    expect(pool.metrics().driver.connections).toBeLessThanOrEqual(2);
    await pool.close();
    expect(() => pool.db).toThrow(PoolClosedError);
  });

  it('checkHealth pings within its timeout', async () => {
    const pool = poolFor('use-health');
    await pool.start();
    const health = await pool.checkHealth({ timeoutMs: 1000 });
    expect(health).toMatchObject({ status: 'up', metrics: { name: 'use-health', state: 'ready' } });
    expect((health.metrics as { driver?: unknown }).driver).toBeDefined();
  });

  it('closes the client on close(): the driver count returns to 0 and nothing stays open', async () => {
    const pool = poolFor('use-close', { pool: { min: 2, max: 3 } });
    await pool.start();
    await waitUntil(() => pool.metrics().driver.connections >= 2, 'minPoolSize connections');
    await pool.close();
    expect(pool.metrics().driver).toMatchObject({ connections: 0, checkedOut: 0 });
    expect(pool.state).toBe('closed');
    await expect(pool.use(() => 1)).rejects.toBeInstanceOf(PoolClosedError);
  });

  it('queryTimeoutMs bounds use() on a silent network and destroys the slot', async () => {
    const proxy = new FaultProxy({ target: mongoServer() });
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const uri = mongoUrl(DATABASE, proxiedParams(), { host: proxy.host, port: proxy.port });
    const pool = poolFor('use-qt', { uri, queryTimeoutMs: 300, pool: { max: 1, createTimeoutMs: 1000 } });
    await pool.start();
    await pool.use((db) => db.collection('qt').insertOne({ a: 1 }));

    await proxy.blackhole({ discard: true });
    const started = performance.now();
    const error = await pool.use((db) => db.collection('qt').findOne({})).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(1200);
    expect(error).toBeInstanceOf(PoolQueryTimeoutError);
    expect(error).toMatchObject({ poolName: 'use-qt', timeoutMs: 300 });
    expect(pool.metrics().destroyed.error).toBe(1);

    await proxy.pass();
    await waitUntil(
      async () => (await pool.use((db) => db.collection('qt').countDocuments()).catch(() => -1)) === 1,
      'the pool to serve again',
      8000,
    );
  });

  it('transaction(): commits where supported, PoolUnsupportedError (typed, clear) where not', async () => {
    const pool = poolFor('use-txn');
    await pool.start();
    const reason = await pool.transactionsUnsupportedReason();
    if (reason !== undefined) {
      // FerretDB, standalone mongod
      const error = await pool
        .transaction((db, session) => db.collection('t').insertOne({ a: 1 }, { session }))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PoolUnsupportedError);
      expect(error).toBeInstanceOf(PoolError);
      expect(error).toMatchObject({
        name: 'PoolUnsupportedError',
        feature: 'transactions',
        poolName: 'use-txn',
      });
      expect((error as Error).message).toMatch(
        /^Pool "use-txn": transactions are not supported here: .*replica set or a sharded cluster/,
      );
      expect(pool.metrics()).toMatchObject({ active: 0 });
      return;
    }
    // Replica set or mongos: commit, and abort on throw.
    await pool.use((db) => db.createCollection('t').catch(() => undefined));
    const id = await pool.transaction(async (db, session) => {
      const r = await db.collection('t').insertOne({ a: 1 }, { session });
      return r.insertedId;
    });
    expect(await pool.use((db) => db.collection('t').countDocuments({ _id: id }))).toBe(1);
    await expect(
      pool.transaction(async (db, session) => {
        await db.collection('t').insertOne({ a: 2 }, { session });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await pool.use((db) => db.collection('t').countDocuments({ a: 2 }))).toBe(0);
    expect(pool.metrics()).toMatchObject({ active: 0 });
  });
});
