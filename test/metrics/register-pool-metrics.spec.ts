/**
 * registerPoolMetrics() with a real prom-client Registry over real pools (PostgreSQL and Redis): the
 * OpenTelemetry-named series a scraper reads, their labels (pool name and backend, never a URI or a
 * password), and values that move with real traffic.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import {
  createPool,
  PoolTimeoutError,
  type BackendPool,
  type PostgresPool,
  type RedisPool,
} from '../../lib/index.js';
import { Pool } from '../../lib/core/index.js';
import { registerPoolMetrics, METRIC_NAMES, type MetricsPool } from '../../lib/metrics/index.js';
import { pgUrl, sleep, uniqueName } from '../backends/postgres/pg-test-support.js';
import { KEY_PREFIX, redisUrl, uniqueName as redisName } from '../backends/redis/redis-test-support.js';
import { FakeFactory } from '../support/fake-factory.js';
import { expectNoSecret } from '../support/secrets.js';
import { parseExposition, valueOf, type Exposition } from './prometheus-text.js';

const PASSWORD = 'metrics-Secr3t-pw';
const open: BackendPool<unknown>[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((pool) => pool.close()));
});

function postgresPool(name = 'users'): PostgresPool {
  const pool = createPool({
    name,
    backend: 'postgres',
    // Trust auth: the server accepts the password, so the pool really holds it.
    uri: pgUrl({ application_name: uniqueName('metrics') }, { user: 'postgres', password: PASSWORD }),
    pool: { min: 1, max: 2 },
  });
  open.push(pool as BackendPool<unknown>);
  return pool;
}

function redisPool(name = 'cache'): RedisPool {
  const pool = createPool({
    name,
    backend: 'redis',
    uri: redisUrl(),
    connection: { connectionName: redisName('metrics') },
    pool: { max: 3 },
  });
  open.push(pool as BackendPool<unknown>);
  return pool;
}

async function scrape(registry: Registry): Promise<Exposition> {
  return parseExposition(await registry.metrics());
}

const users = { pool_name: 'users', backend: 'postgres' };
const cache = { pool_name: 'cache', backend: 'redis' };

describe('registerPoolMetrics', () => {
  it('exports every OTel-named series with its type, labelled by pool name, group, role and backend only', async () => {
    const registry = new Registry();
    const pg = postgresPool();
    const redis = redisPool();
    await Promise.all([pg.start(), redis.start()]);
    registerPoolMetrics([pg, redis], { registry });
    const text = await registry.metrics();
    const exposition = parseExposition(text);

    expect(Object.fromEntries(exposition.types)).toEqual({
      db_client_connection_count: 'gauge',
      db_client_connection_max: 'gauge',
      db_client_connection_idle_max: 'gauge',
      db_client_connection_idle_min: 'gauge',
      db_client_connection_pending_requests: 'gauge',
      db_client_connection_timeouts_total: 'counter',
      db_client_connection_wait_time_seconds: 'histogram',
      db_client_connection_create_time_seconds: 'histogram',
      db_client_connection_use_time_seconds: 'histogram',
      nestjs_pool_closes_total: 'counter',
      nestjs_pool_create_errors_total: 'counter',
      nestjs_pool_leaks_total: 'counter',
      nestjs_pool_circuit_state: 'gauge',
      nestjs_pool_state: 'gauge',
      nestjs_pool_target_size: 'gauge',
    });
    // Neither pool sizes itself dynamically: the target-size gauge has no series for them.
    expect(exposition.samples.some((s) => s.name === 'nestjs_pool_target_size')).toBe(false);
    const labelNames = new Set(exposition.samples.flatMap((s) => Object.keys(s.labels)));
    expect([...labelNames].sort()).toEqual([
      'backend',
      'le',
      'pool_group',
      'pool_name',
      'pool_role',
      'reason',
      'state',
    ]);
    // A plain pool is its own group and primary.
    expect(
      exposition.samples.every(
        (s) => s.labels['pool_group'] === s.labels['pool_name'] && s.labels['pool_role'] === 'primary',
      ),
    ).toBe(true);
    expect(new Set(exposition.samples.map((s) => s.labels['backend']))).toEqual(
      new Set(['postgres', 'redis']),
    );
    // Neither the URI nor any part of the credentials.
    expectNoSecret([text], [PASSWORD, encodeURIComponent(PASSWORD), '127.0.0.1', 'postgres://', 'redis://']);

    expect(valueOf(exposition, 'db_client_connection_max', users)).toBe(2);
    expect(valueOf(exposition, 'db_client_connection_idle_min', users)).toBe(1);
    expect(valueOf(exposition, 'db_client_connection_count', { ...users, state: 'idle' })).toBe(1);
    expect(valueOf(exposition, 'db_client_connection_count', { ...users, state: 'used' })).toBe(0);
    expect(valueOf(exposition, 'db_client_connection_max', cache)).toBe(redis.metrics().max);
    expect(valueOf(exposition, 'nestjs_pool_circuit_state', { ...users, state: 'closed' })).toBe(1);
    expect(valueOf(exposition, 'nestjs_pool_circuit_state', { ...users, state: 'open' })).toBe(0);
    expect(valueOf(exposition, 'nestjs_pool_state', { ...cache, state: 'ready' })).toBe(1);
    // The first connection's creation is in the create-time histogram, in seconds, buckets cumulative.
    expect(
      valueOf(exposition, 'db_client_connection_create_time_seconds_count', users),
    ).toBeGreaterThanOrEqual(1);
    const buckets = exposition.samples.filter(
      (s) =>
        s.name === 'db_client_connection_create_time_seconds_bucket' && s.labels['pool_name'] === 'users',
    );
    expect(buckets.at(-1)!.labels['le']).toBe('+Inf');
    expect(buckets.map((b) => b.value)).toEqual([...buckets.map((b) => b.value)].sort((a, b) => a - b));
    expect(buckets.some((b) => b.labels['le'] === '0.0025')).toBe(true);
  });

  it('values move with traffic: connections in use, waits, use time, timeouts, closes by reason', async () => {
    const registry = new Registry();
    const pg = postgresPool();
    const redis = redisPool();
    await Promise.all([pg.start(), redis.start()]);
    registerPoolMetrics([pg, redis], { registry });
    const before = await scrape(registry);

    for (let i = 0; i < 5; i++) await pg.query('SELECT 1');
    await redis.use((client) => client.set(`${KEY_PREFIX}metrics`, '1'));
    const first = await pg.acquire();
    const second = await pg.acquire();
    const holding = await scrape(registry);
    expect(valueOf(holding, 'db_client_connection_count', { ...users, state: 'used' })).toBe(2);
    expect(valueOf(holding, 'db_client_connection_count', { ...users, state: 'idle' })).toBe(0);
    // A third caller waits (a pending request) and times out; a fourth waits until a lease comes back.
    const timingOut = pg.acquire({ timeoutMs: 100 });
    const duringWait = await scrape(registry);
    expect(valueOf(duringWait, 'db_client_connection_pending_requests', users)).toBe(1);
    await expect(timingOut).rejects.toBeInstanceOf(PoolTimeoutError);
    const late = pg.acquire();
    await sleep(150);
    first.release();
    (await late).release();
    second.destroy(new Error('broken on purpose'));
    const after = await scrape(registry);

    const delta = (name: string, labels: Record<string, string>): number =>
      valueOf(after, name, labels) - valueOf(before, name, labels);
    // Successful acquires: 5 queries, 2 held leases, the late one (a timed-out wait is counted as a timeout).
    expect(delta('db_client_connection_wait_time_seconds_count', users)).toBe(8);
    expect(delta('db_client_connection_timeouts_total', users)).toBe(1);
    // The late caller waited at least 150 ms: above the 0.1 s bucket.
    expect(
      delta('db_client_connection_wait_time_seconds_bucket', { ...users, le: '+Inf' }) -
        delta('db_client_connection_wait_time_seconds_bucket', { ...users, le: '0.1' }),
    ).toBe(1);
    expect(delta('db_client_connection_wait_time_seconds_sum', users)).toBeGreaterThanOrEqual(0.15);
    expect(delta('db_client_connection_use_time_seconds_count', users)).toBe(8);
    expect(delta('db_client_connection_use_time_seconds_sum', users)).toBeGreaterThanOrEqual(0.15);
    expect(delta('db_client_connection_use_time_seconds_count', cache)).toBe(1);
    expect(valueOf(after, 'db_client_connection_pending_requests', users)).toBe(0);
    expect(delta('nestjs_pool_closes_total', { ...users, reason: 'error' })).toBe(1);
    expect(valueOf(after, 'db_client_connection_count', { ...users, state: 'used' })).toBe(0);

    await pg.close();
    const closed = await scrape(registry);
    expect(valueOf(closed, 'nestjs_pool_state', { ...users, state: 'closed' })).toBe(1);
    expect(valueOf(closed, 'nestjs_pool_closes_total', { ...users, reason: 'close' })).toBeGreaterThanOrEqual(
      1,
    );
  });

  it('reads the source at scrape time: a pool added to a manager later is exported', async () => {
    const registry = new Registry();
    const pools = new Map<string, MetricsPool>();
    const manager = { names: () => [...pools.keys()], get: (name: string) => pools.get(name)! };
    registerPoolMetrics(manager, { registry, prefix: 'app_' });
    expect((await scrape(registry)).samples).toEqual([]);

    const pg = postgresPool('late');
    await pg.start();
    pools.set('late', pg);
    await pg.query('SELECT 1');
    const exposition = await scrape(registry);
    expect(
      valueOf(exposition, 'app_db_client_connection_max', { pool_name: 'late', backend: 'postgres' }),
    ).toBe(2);
    // trackUseTime is turned on at the first scrape that sees the pool: the next lease is measured.
    await pg.query('SELECT 1');
    const next = await scrape(registry);
    expect(valueOf(next, 'app_db_client_connection_use_time_seconds_count', { pool_name: 'late' })).toBe(1);
  });

  it('exports an engine Pool (no backend) with backend="" and its circuit state moving', async () => {
    const registry = new Registry();
    const factory = new FakeFactory();
    const pool = new Pool({
      name: 'jobs',
      factory,
      createRetry: { initialDelayMs: 1, maxDelayMs: 1 },
      circuitBreaker: { failureThreshold: 2, resetTimeoutMs: 60_000 },
    });
    await pool.start();
    const unregister = registerPoolMetrics([pool], { registry });
    const jobs = { pool_name: 'jobs', backend: '' };
    expect(valueOf(await scrape(registry), 'nestjs_pool_circuit_state', { ...jobs, state: 'closed' })).toBe(
      1,
    );
    factory.failing = true;
    (await pool.acquire()).destroy(new Error('gone'));
    await expect(pool.acquire({ timeoutMs: 500 })).rejects.toThrow();
    const exposition = await scrape(registry);
    expect(valueOf(exposition, 'nestjs_pool_circuit_state', { ...jobs, state: 'open' })).toBe(1);
    expect(valueOf(exposition, 'nestjs_pool_circuit_state', { ...jobs, state: 'closed' })).toBe(0);
    expect(valueOf(exposition, 'nestjs_pool_create_errors_total', jobs)).toBeGreaterThanOrEqual(2);
    unregister();
    await pool.close();
  });

  it("exports a dynamic pool's target size, and it moves with demand", async () => {
    const registry = new Registry();
    const pool = new Pool({
      name: 'elastic',
      factory: new FakeFactory(),
      min: 1,
      max: 3,
      preset: 'dynamic',
      dynamicSizing: { sampleIntervalMs: 20 },
    });
    await pool.start();
    const unregister = registerPoolMetrics([pool], { registry });
    const labels = { pool_name: 'elastic', backend: '' };
    expect(valueOf(await scrape(registry), 'nestjs_pool_target_size', labels)).toBe(1);
    // Every connection is held and two more callers wait (and time out): the sizer raises its target to max.
    const leases = await Promise.all([1, 2, 3].map(() => pool.acquire()));
    const waits = [pool.acquire({ timeoutMs: 50 }), pool.acquire({ timeoutMs: 50 })];
    await Promise.allSettled(waits);
    let target = 1;
    for (let i = 0; i < 100 && target < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      target = valueOf(await scrape(registry), 'nestjs_pool_target_size', labels);
    }
    expect(target).toBe(3);
    for (const lease of leases) lease.release();
    unregister();
    await pool.close();
  });

  it('unregisters, and refuses a second registration on the same registry', async () => {
    const registry = new Registry();
    const pg = postgresPool();
    const unregister = registerPoolMetrics(() => [pg], { registry });
    expect(() => registerPoolMetrics([pg], { registry })).toThrow(
      /db_client_connection_count" is already registered/,
    );
    unregister();
    unregister();
    expect(registry.getMetricsAsArray()).toEqual([]);
    const again = registerPoolMetrics([pg], { registry });
    expect(registry.getMetricsAsArray().map((m) => m.name)).toEqual(
      expect.arrayContaining(Object.values(METRIC_NAMES)),
    );
    again();
  });
});
