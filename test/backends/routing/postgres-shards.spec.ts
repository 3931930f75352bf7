/**
 * A sharded PostgreSQL pool against real servers: shards a and b on the shared server, c and d on a
 * private instance (killed and restarted here). Each shard tags its connections with its own
 * application_name, so every answer says which shard pool served it.
 *
 * Asserted: keys go to the shard the hashing (or `shardKey`) names, consistently; typed errors for unknown
 * shards; `each()` runs on every shard within its concurrency limit and reports partial failure; health
 * and metrics per shard (a dead server takes down exactly its shards); close() leaves no connection.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { createPool, type PostgresPool } from '../../../lib/backends/index.js';
import { PoolError } from '../../../lib/core/index.js';
import { PoolFanOutError, PoolUnknownShardError } from '../../../lib/backends/routing/routing-errors.js';
import type { RoutedHealthCheckResult } from '../../../lib/backends/routing/replica-set.js';
import type { ShardedPool } from '../../../lib/backends/routing/sharded-pool.js';
import { startPrivatePostgres, type PrivateServer } from '../../support/private-servers.js';
import {
  adminClient,
  countBackends,
  DATABASE_URL,
  uniqueName,
  waitUntil,
} from '../postgres/pg-test-support.js';

const SECRET = 'Shard-Secret-Pw-0b7e';
let server: PrivateServer;
const pools: ShardedPool<PostgresPool>[] = [];

beforeAll(async () => {
  server = await startPrivatePostgres();
}, 60_000);

afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.close({ timeoutMs: 1000 })));
  await server.stop();
});

function shardUri(shard: string, app: string): string {
  const url = new URL(['a', 'b'].includes(shard) ? DATABASE_URL : server.url);
  url.username = 'postgres';
  url.password = SECRET;
  url.searchParams.set('application_name', `${app}_${shard}`);
  return url.toString();
}

function sharded(shardKey?: (key: string | number | bigint) => string): {
  orders: ShardedPool<PostgresPool>;
  app: string;
} {
  const app = uniqueName('shards');
  const orders = createPool({
    name: app,
    backend: 'postgres',
    pool: {
      max: 3,
      acquireTimeoutMs: 1000,
      createTimeoutMs: 500,
      createRetry: { initialDelayMs: 20, maxDelayMs: 100, factor: 2, jitter: 0 },
    },
    shards: Object.fromEntries(['a', 'b', 'c', 'd'].map((shard) => [shard, shardUri(shard, app)])),
    ...(shardKey === undefined ? {} : { shardKey }),
  });
  pools.push(orders);
  return { orders, app };
}

async function whichShard(pool: PostgresPool, app: string): Promise<string> {
  const result = await pool.query<{ app: string }>("SELECT current_setting('application_name') AS app");
  return result.rows[0]!.app.slice(app.length + 1);
}

describe('sharded PostgreSQL pool', () => {
  it('forKey() sends every key to the shard the hashing names, always the same one', async () => {
    const { orders, app } = sharded();
    await orders.start();
    const seen: Record<string, number> = {};
    for (let customer = 0; customer < 80; customer++) {
      const shard = orders.shardFor(customer);
      expect(await whichShard(orders.forKey(customer), app)).toBe(shard);
      expect(orders.shardFor(String(customer))).toBe(shard); // String(key) is what is hashed
      seen[shard] = (seen[shard] ?? 0) + 1;
    }
    expect(Object.keys(seen).sort()).toEqual(['a', 'b', 'c', 'd']);
    for (const n of Object.values(seen)) expect(n).toBeGreaterThan(8);
    // Stable across pool instances (a restarted app routes the same keys the same way).
    const again = sharded().orders;
    for (let customer = 0; customer < 200; customer++) {
      expect(again.shardFor(customer)).toBe(orders.shardFor(customer));
    }
  });

  it('a shardKey function decides; an unknown shard is a typed error naming the pool, never the key', async () => {
    const { orders, app } = sharded((key) => (Number(key) % 2 === 0 ? 'a' : Number(key) < 100 ? 'c' : 'zz'));
    await orders.start();
    expect(await whichShard(orders.forKey(42), app)).toBe('a');
    expect(await whichShard(orders.forKey(7), app)).toBe('c');
    let error: unknown;
    try {
      orders.forKey(12345);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PoolUnknownShardError);
    expect(error).toMatchObject({ poolName: app, shard: 'zz', shards: ['a', 'b', 'c', 'd'] });
    expect(String((error as Error).message)).not.toContain('12345');
    expect(() => orders.shard('nope')).toThrow(PoolUnknownShardError);
    expect(() => orders.forKey({ id: 1 } as never)).toThrow(PoolError);
    expect(await whichShard(orders.shard('d'), app)).toBe('d');
  });

  it('each() runs on every shard within its concurrency limit and collects the results by shard', async () => {
    const { orders, app } = sharded();
    await orders.start();
    let running = 0;
    let peak = 0;
    const visit = async (pool: PostgresPool, shard: string): Promise<string> => {
      running++;
      peak = Math.max(peak, running);
      try {
        await pool.query('SELECT pg_sleep(0.1)');
        return `${shard}:${await whichShard(pool, app)}`;
      } finally {
        running--;
      }
    };
    expect(await orders.each(visit, { concurrency: 2 })).toEqual({
      a: 'a:a',
      b: 'b:b',
      c: 'c:c',
      d: 'd:d',
    });
    expect(peak).toBe(2);
    peak = 0;
    await orders.each(visit);
    expect(peak).toBe(4); // default limit (8) above the shard count: all at once
    peak = 0;
    await orders.each(visit, { concurrency: 1 });
    expect(peak).toBe(1);
    await expect(orders.each(visit, { concurrency: 0 })).rejects.toThrow(/concurrency/);
  });

  it('each() runs every shard even when some fail, then reports which failed and what the others returned', async () => {
    const { orders } = sharded();
    await orders.start();
    const ran: string[] = [];
    const error = await orders
      .each(async (pool, shard) => {
        ran.push(shard);
        const result = await pool.query<{ n: number }>(
          shard === 'b' ? 'SELECT * FROM np_no_such_table_shards' : 'SELECT 1 AS n',
        );
        return result.rows[0]!.n;
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(ran.sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(error).toBeInstanceOf(PoolFanOutError);
    const fanOut = error as PoolFanOutError<number>;
    expect(Object.keys(fanOut.errors)).toEqual(['b']);
    expect(fanOut.errors['b']).toMatchObject({ code: '42P01' });
    expect(fanOut.results).toEqual({ a: 1, c: 1, d: 1 });
    expect(fanOut.message).toMatch(/1 of 4 shards failed \("b"\)/);
  });

  it('health and metrics per shard: a dead server takes down exactly its shards, and they recover', async () => {
    const { orders, app } = sharded();
    await orders.start();
    await orders.each((pool) => pool.query('SELECT 1'));
    let health = await orders.checkHealth({ timeoutMs: 1000 });
    expect(health.status).toBe('up');
    expect(Object.keys(health.members)).toEqual(['a', 'b', 'c', 'd']);

    const metrics = orders.metrics();
    expect(Object.keys(metrics.shards)).toEqual(['a', 'b', 'c', 'd']);
    expect(metrics.name).toBe(app);
    expect(metrics.size).toBe(Object.values(metrics.shards).reduce((sum, m) => sum + m.size, 0));
    expect(metrics.max).toBe(12);
    expect(metrics.shards['c']!.name).toBe(`${app}.shard[c]`);

    await server.kill();
    try {
      health = (await orders.checkHealth({ timeoutMs: 700 })) as RoutedHealthCheckResult;
      expect(health.status).toBe('down');
      expect(Object.fromEntries(Object.entries(health.members).map(([s, m]) => [s, m.status]))).toEqual({
        a: 'up',
        b: 'up',
        c: 'down',
        d: 'down',
      });
      expect(health.error).toMatch(/^shard c: .*; shard d: /);
      expect(JSON.stringify(health)).not.toContain(SECRET);
      // Keys of live shards are still served.
      expect(await whichShard(orders.shard('a'), app)).toBe('a');
      await expect(orders.shard('c').query('SELECT 1')).rejects.toBeInstanceOf(PoolError);
    } finally {
      await server.restart();
    }
    await waitUntil(
      async () => (await orders.checkHealth({ timeoutMs: 700 })).status === 'up',
      'all shards up',
      10_000,
    );
  }, 30_000);

  it('connections(), histograms() and trackUseTime() cover every shard', async () => {
    const { orders } = sharded();
    await orders.start();
    orders.trackUseTime(true);
    await orders.each((pool) => pool.query('SELECT 1'));
    const connections = orders.connections();
    expect([...new Set(connections.map((c) => c.shard))].sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(connections.every((c) => typeof c.id === 'number' && c.ageMs >= 0)).toBe(true);
    const merged = orders.histograms();
    const perShard = orders.names.map((name) => orders.shard(name).histograms());
    expect(merged.wait.count).toBe(perShard.reduce((sum, h) => sum + h.wait.count, 0));
    expect(merged.wait.counts.reduce((a, b) => a + b, 0)).toBe(merged.wait.count);
    expect(merged.use.count).toBeGreaterThanOrEqual(4);
    expect(perShard.every((h) => h.use.count >= 1)).toBe(true);
  });

  it('start() fails while a shard is unreachable; close() leaves no connection on any server', async () => {
    const { orders, app } = sharded();
    await server.kill();
    try {
      await expect(orders.start()).rejects.toBeInstanceOf(PoolError);
    } finally {
      await server.restart();
    }
    await orders.start();
    await orders.each((pool) => pool.query('SELECT 1'));
    const admins = await Promise.all([adminClient(DATABASE_URL), adminClient(server.url)]);
    try {
      expect(await countBackends(admins[0]!, `${app}_a`)).toBeGreaterThan(0);
      expect(await countBackends(admins[1]!, `${app}_c`)).toBeGreaterThan(0);
      await orders.close();
      expect(orders.state).toBe('closed');
      for (const [admin, shard] of [
        [admins[0]!, 'a'],
        [admins[0]!, 'b'],
        [admins[1]!, 'c'],
        [admins[1]!, 'd'],
      ] as const) {
        await waitUntil(
          async () => (await countBackends(admin, `${app}_${shard}`)) === 0,
          `shard ${shard} closed`,
        );
      }
    } finally {
      await Promise.all(admins.map((admin: pg.Client) => admin.end()));
    }
  }, 30_000);

  it('a shard can have its own replicas', async () => {
    const app = uniqueName('shards_rep');
    const orders = createPool({
      name: app,
      backend: 'postgres',
      shards: {
        main: { uri: shardUri('a', app), replicas: [shardUri('c', app)] },
      },
    });
    pools.push(orders);
    await orders.start();
    const primary = await whichShard(orders.shard('main'), app);
    const replica = await orders
      .shard('main')
      .read.query<{ app: string }>("SELECT current_setting('application_name') AS app");
    expect(primary).toBe('a');
    expect(replica.rows[0]!.app).toBe(`${app}_c`);
  });
});
