/**
 * registerPoolMetrics() over pools that route over several servers, with a real prom-client Registry and
 * the real PostgreSQL (each member connects with its own application_name: what is tested is that each is
 * exported as its own pool, not where it connects).
 *
 * Asserted: one series per physical pool (`pool_name` the member's own name, `pool_group` the registered
 * name, `pool_role`), no summed series for a sharded pool, values that move only on the member that did the
 * work, and no URI or password in the exposition.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { createPool, type PostgresPool } from '../../lib/index.js';
import type { ShardedPool } from '../../lib/backends/routing/sharded-pool.js';
import { registerPoolMetrics } from '../../lib/metrics/index.js';
import { pgUrl, uniqueName } from '../backends/postgres/pg-test-support.js';
import { expectNoSecret } from '../support/secrets.js';
import { parseExposition, valueOf, type Exposition } from './prometheus-text.js';

const PASSWORD = 'r0uted-Metrics-pw';
const open: { close(): Promise<void> }[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((pool) => pool.close()));
});

function url(prefix: string): string {
  return pgUrl({ application_name: uniqueName(prefix) }, { user: 'postgres', password: PASSWORD });
}

function replicated(): PostgresPool {
  const pool = createPool({
    name: 'users',
    backend: 'postgres',
    uri: url('mrprimary'),
    replicas: [{ name: 'r1', uri: url('mrreplica'), pool: { max: 3 } }],
    healthCheck: { intervalMs: 0 },
    pool: { min: 1, max: 2 },
  });
  open.push(pool);
  return pool;
}

function sharded(): ShardedPool<PostgresPool> {
  const pool = createPool({
    name: 'orders',
    backend: 'postgres',
    pool: { min: 1, max: 4 },
    shards: { a: url('mrsharda'), b: { uri: url('mrshardb'), pool: { max: 5 } } },
  });
  open.push(pool);
  return pool;
}

const series = {
  primary: { pool_name: 'users', pool_group: 'users', pool_role: 'primary', backend: 'postgres' },
  replica: { pool_name: 'users.replica[r1]', pool_group: 'users', pool_role: 'replica', backend: 'postgres' },
  shardA: { pool_name: 'orders.shard[a]', pool_group: 'orders', pool_role: 'shard', backend: 'postgres' },
  shardB: { pool_name: 'orders.shard[b]', pool_group: 'orders', pool_role: 'shard', backend: 'postgres' },
};

async function scrape(registry: Registry): Promise<{ text: string; exposition: Exposition }> {
  const text = await registry.metrics();
  return { text, exposition: parseExposition(text) };
}

describe('registerPoolMetrics with replicas and shards', () => {
  it('exports each member as its own pool, labelled with its group and role, and no summed sharded series', async () => {
    const registry = new Registry();
    const users = replicated();
    const orders = sharded();
    await Promise.all([users.start(), orders.start()]);
    registerPoolMetrics([users, orders], { registry });
    const { text, exposition } = await scrape(registry);

    const members = new Set(
      exposition.samples.map(
        (s) => `${s.labels['pool_name']}|${s.labels['pool_group']}|${s.labels['pool_role']}`,
      ),
    );
    expect([...members].sort()).toEqual(
      Object.values(series)
        .map((labels) => `${labels.pool_name}|${labels.pool_group}|${labels.pool_role}`)
        .sort(),
    );
    expect(valueOf(exposition, 'db_client_connection_max', series.primary)).toBe(2);
    expect(valueOf(exposition, 'db_client_connection_max', series.replica)).toBe(3);
    expect(valueOf(exposition, 'db_client_connection_max', series.shardA)).toBe(4);
    expect(valueOf(exposition, 'db_client_connection_max', series.shardB)).toBe(5);
    // `min` opened on every member, each counted once.
    for (const labels of Object.values(series)) {
      expect(valueOf(exposition, 'db_client_connection_count', { ...labels, state: 'idle' })).toBe(1);
      expect(valueOf(exposition, 'nestjs_pool_state', { ...labels, state: 'ready' })).toBe(1);
    }
    expectNoSecret([text], [PASSWORD, encodeURIComponent(PASSWORD), '127.0.0.1', 'postgres://']);
  });

  it('values move on the member that did the work only', async () => {
    const registry = new Registry();
    const users = replicated();
    const orders = sharded();
    await Promise.all([users.start(), orders.start()]);
    registerPoolMetrics([users, orders], { registry });
    const before = (await scrape(registry)).exposition;

    for (let i = 0; i < 4; i++) await users.read.query('SELECT 1');
    await users.query('SELECT 1');
    for (let i = 0; i < 3; i++) await orders.shard('a').query('SELECT 1');
    const lease = await users.read.acquire();
    const after = (await scrape(registry)).exposition;
    lease.release();

    const delta = (name: string, labels: Record<string, string>): number =>
      valueOf(after, name, labels) - valueOf(before, name, labels);
    const uses = 'db_client_connection_use_time_seconds_count';
    expect(delta(uses, series.replica)).toBe(4);
    expect(delta(uses, series.primary)).toBe(1);
    expect(delta(uses, series.shardA)).toBe(3);
    expect(delta(uses, series.shardB)).toBe(0);
    expect(valueOf(after, 'db_client_connection_count', { ...series.replica, state: 'used' })).toBe(1);
    expect(valueOf(after, 'db_client_connection_count', { ...series.primary, state: 'used' })).toBe(0);
  });

  it('names a shard’s replicas under the shard, in the sharded pool’s group', async () => {
    const registry = new Registry();
    const regions = createPool({
      name: 'regions',
      backend: 'postgres',
      healthCheck: { intervalMs: 0 },
      shards: { eu: { uri: url('mrregion'), replicas: [url('mrregionr')] } },
    });
    open.push(regions);
    await regions.start();
    registerPoolMetrics([regions], { registry });
    const { exposition } = await scrape(registry);
    const members = new Set(
      exposition.samples.map(
        (s) => `${s.labels['pool_name']}|${s.labels['pool_group']}|${s.labels['pool_role']}`,
      ),
    );
    expect([...members].sort()).toEqual([
      'regions.shard[eu].replica[0]|regions|replica',
      'regions.shard[eu]|regions|shard',
    ]);
    await regions.shard('eu').read.query('SELECT 1');
    const after = (await scrape(registry)).exposition;
    expect(
      valueOf(after, 'db_client_connection_use_time_seconds_count', {
        pool_name: 'regions.shard[eu].replica[0]',
      }),
    ).toBe(1);
  });
});
