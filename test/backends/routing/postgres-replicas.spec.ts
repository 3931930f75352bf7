/**
 * A PostgresPool with read replicas, against real servers: the primary is the shared server, the replicas
 * are two private PostgreSQL instances (independent servers: routing is what is tested, not replication),
 * each behind a FaultProxy. Which server answered a read is read back from the server itself
 * (`current_setting('port')`).
 *
 * Asserted: the distribution per balance strategy, writes on the primary, failover (a replica refused by
 * the proxy or killed leaves the rotation and no read is lost: each runs once more elsewhere), recovery
 * (it comes back once its check passes), fallback to the primary or failure when no replica is up, health
 * and metrics per member, no password anywhere, and close() leaving no connection on any server.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { inspect } from 'node:util';
import pg from 'pg';
import { createPool, type PostgresPool } from '../../../lib/backends/index.js';
import { PoolUnavailableError } from '../../../lib/core/index.js';
import type { BalanceStrategyName } from '../../../lib/core/balance-strategy.js';
import { PoolNoHealthyMemberError } from '../../../lib/backends/routing/routing-errors.js';
import type {
  ReplicatedPoolMetrics,
  RoutedHealthCheckResult,
} from '../../../lib/backends/routing/replica-set.js';
import { FaultProxy } from '../../../lib/testing/fault-proxy.js';
import { startPrivatePostgres, type PrivateServer } from '../../support/private-servers.js';
import {
  adminClient,
  countBackends,
  DATABASE_URL,
  uniqueName,
  waitUntil,
} from '../postgres/pg-test-support.js';

/** Sent as every URI's password: the servers trust loopback and never ask, but nothing may show it. */
const SECRET = 'Replica-Secret-Pw-4d2a';
const PRIMARY_PORT = Number(new URL(DATABASE_URL).port || 5432);

let servers: PrivateServer[] = [];
let proxies: FaultProxy[] = [];
const pools: PostgresPool[] = [];

beforeAll(async () => {
  servers = await Promise.all([startPrivatePostgres(), startPrivatePostgres()]);
  proxies = servers.map((server) => new FaultProxy({ target: { host: server.host, port: server.port } }));
  await Promise.all(proxies.map((proxy) => proxy.start()));
}, 60_000);

afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.close({ timeoutMs: 1000 })));
  await Promise.all(proxies.map((proxy) => proxy.stop()));
  await Promise.all(servers.map((server) => server.stop()));
});

function uri(host: string, port: number, database: string, app: string): string {
  const url = new URL(`postgres://postgres@${host}:${port}/${database}`);
  url.password = SECRET;
  url.searchParams.set('application_name', app);
  return url.toString();
}

interface Options {
  balance?: BalanceStrategyName;
  weights?: [number, number];
  readFallback?: 'primary' | 'fail';
  intervalMs?: number;
  queryTimeoutMs?: number;
}

function replicated(options: Options = {}): { pool: PostgresPool; app: string } {
  const app = uniqueName('replicas');
  const primary = new URL(DATABASE_URL);
  const pool = createPool({
    name: app,
    backend: 'postgres',
    uri: uri(primary.hostname, PRIMARY_PORT, primary.pathname.slice(1) || 'test', app),
    replicas: proxies.map((proxy, i) => ({
      name: `r${i + 1}`,
      uri: uri(proxy.host, proxy.port, 'postgres', app),
      weight: options.weights?.[i] ?? 1,
    })),
    balance: options.balance ?? 'round-robin',
    readFallback: options.readFallback ?? 'primary',
    healthCheck: { intervalMs: options.intervalMs ?? 0, recheckIntervalMs: 100, timeoutMs: 500 },
    queryTimeoutMs: options.queryTimeoutMs ?? 2000,
    pool: {
      max: 4,
      acquireTimeoutMs: 1000,
      createTimeoutMs: 500,
      createRetry: { initialDelayMs: 20, maxDelayMs: 100, factor: 2, jitter: 0 },
      circuitBreaker: { failureThreshold: 3, resetTimeoutMs: 200 },
    },
  });
  pools.push(pool);
  return { pool, app };
}

/** Which server answered: 'primary', 'r1' or 'r2'. */
function label(port: number): string {
  if (port === PRIMARY_PORT) return 'primary';
  const index = servers.findIndex((server) => server.port === port);
  return index === -1 ? `port ${port}` : `r${index + 1}`;
}

const WHO = "SELECT current_setting('port')::int AS port";

async function readWho(pool: PostgresPool): Promise<string> {
  const result = await pool.read.query<{ port: number }>(WHO);
  return label(result.rows[0]!.port);
}

function tally(list: string[]): Record<string, number> {
  const result: Record<string, number> = {};
  for (const item of list) result[item] = (result[item] ?? 0) + 1;
  return result;
}

async function sequentialReads(pool: PostgresPool, n: number): Promise<string[]> {
  const answers: string[] = [];
  for (let i = 0; i < n; i++) answers.push(await readWho(pool));
  return answers;
}

/**
 * Readers that never stop until `stop()`: every read's outcome with its time, to check that none failed
 * and which member answered when.
 */
function readLoad(pool: PostgresPool, workers = 4) {
  const outcomes: { startedAt: number; at: number; who?: string; error?: unknown }[] = [];
  let running = true;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      const startedAt = performance.now();
      try {
        const who = await readWho(pool);
        outcomes.push({ startedAt, at: performance.now(), who });
      } catch (error) {
        outcomes.push({ startedAt, at: performance.now(), error });
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  });
  return {
    outcomes,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe('PostgresPool with replicas', () => {
  it('without replicas, pool.read is the primary', async () => {
    const app = uniqueName('replicas_none');
    const primary = new URL(DATABASE_URL);
    const pool = createPool({
      name: app,
      backend: 'postgres',
      uri: uri(primary.hostname, PRIMARY_PORT, primary.pathname.slice(1) || 'test', app),
    });
    pools.push(pool);
    await pool.start();
    expect(await sequentialReads(pool, 3)).toEqual(['primary', 'primary', 'primary']);
    const lease = await pool.read.acquire();
    lease.release();
  });

  it('round-robin alternates the replicas; query() and transaction() stay on the primary', async () => {
    const { pool } = replicated({ balance: 'round-robin' });
    await pool.start();
    const answers = await sequentialReads(pool, 20);
    expect(tally(answers)).toEqual({ r1: 10, r2: 10 });
    for (let i = 1; i < answers.length; i++) expect(answers[i]).not.toBe(answers[i - 1]);
    const write = await pool.query<{ port: number }>(WHO);
    expect(label(write.rows[0]!.port)).toBe('primary');
    const inTransaction = await pool.transaction((client) => client.query<{ port: number }>(WHO));
    expect(label(inTransaction.rows[0]!.port)).toBe('primary');
    // read.use / read.transaction (read only) go to a replica too.
    const viaUse = await pool.read.use((client) => client.query<{ port: number }>(WHO));
    expect(label(viaUse.rows[0]!.port)).toMatch(/^r[12]$/);
    const readOnly = await pool.read.transaction((client) =>
      client.query<{ ro: string }>("SELECT current_setting('transaction_read_only') AS ro"),
    );
    expect(readOnly.rows[0]!.ro).toBe('on');
  });

  it('weighted 3:1 sends exactly three reads to r1 for each read to r2', async () => {
    const { pool } = replicated({ balance: 'weighted', weights: [3, 1] });
    await pool.start();
    const answers = await sequentialReads(pool, 40);
    expect(tally(answers)).toEqual({ r1: 30, r2: 10 });
  });

  it('least-active avoids the replica whose connections are in use', async () => {
    const { pool } = replicated({ balance: 'least-active' });
    await pool.start();
    expect(tally(await sequentialReads(pool, 10))).toEqual({ r1: 5, r2: 5 });
    const held = await pool.read.acquire();
    const busy = label((await held.connection.query<{ port: number }>(WHO)).rows[0]!.port);
    const idle = busy === 'r1' ? 'r2' : 'r1';
    try {
      expect(tally(await sequentialReads(pool, 8))).toEqual({ [idle]: 8 });
    } finally {
      held.release();
    }
    expect(tally(await sequentialReads(pool, 4))).toEqual({ r1: 2, r2: 2 });
  });

  it('random spreads reads over both replicas', async () => {
    const { pool } = replicated({ balance: 'random' });
    await pool.start();
    const counts = tally(await sequentialReads(pool, 100));
    expect(counts['r1']).toBeGreaterThan(20);
    expect(counts['r2']).toBeGreaterThan(20);
    expect(counts['r1']! + counts['r2']!).toBe(100);
  });

  it('fails over when a replica is refused (no read lost) and takes it back when it recovers', async () => {
    const { pool } = replicated({ balance: 'least-active' });
    await pool.start();
    const set = pool.replicaSet!;
    const events: { event: string; member: string; at: number }[] = [];
    set.group.on('down', (member) => events.push({ event: 'down', member, at: performance.now() }));
    set.group.on('up', (member) => events.push({ event: 'up', member, at: performance.now() }));

    const load = readLoad(pool);
    await waitUntil(() => load.outcomes.length >= 40, 'reads before the fault');
    const faultAt = performance.now();
    await proxies[0]!.refuse();
    await waitUntil(() => events.some((e) => e.event === 'down'), 'r1 marked down', 5000);
    const downAt = events.find((e) => e.event === 'down')!.at;
    await new Promise((resolve) => setTimeout(resolve, 800));
    const healAt = performance.now();
    await proxies[0]!.pass();
    await waitUntil(() => events.some((e) => e.event === 'up'), 'r1 back', 10_000);
    const upAt = events.find((e) => e.event === 'up')!.at;
    await waitUntil(
      () => load.outcomes.some((o) => o.at > upAt && o.who === 'r1'),
      'r1 serving reads again',
      5000,
    );
    await load.stop();

    expect(events.map((e) => `${e.event} ${e.member}`)).toEqual(['down r1', 'up r1']);
    // Every read succeeded: the ones r1 failed ran once more on r2.
    expect(load.outcomes.filter((o) => o.error !== undefined).map((o) => String(o.error))).toEqual([]);
    // Nothing went to r1 while it was known to be down (a read answered just after `down` started earlier).
    const whileDown = load.outcomes.filter((o) => o.at > downAt + 50 && o.at < upAt);
    expect(whileDown.length).toBeGreaterThan(10);
    expect(new Set(whileDown.map((o) => o.who))).toEqual(new Set(['r2']));
    // Failover within the check's bounds; recovery within a few re-check periods (generous: shared CPU).
    expect(downAt - faultAt).toBeLessThan(3000);
    expect(upAt - healAt).toBeLessThan(5000);
    if (process.env['DEBUG_ROUTING']) {
      console.log(`failover ${Math.round(downAt - faultAt)} ms, recovery ${Math.round(upAt - healAt)} ms`);
    }
  });

  it('fails over when a replica goes silent (network partition): its reads time out and run again elsewhere', async () => {
    const { pool } = replicated({ balance: 'round-robin', queryTimeoutMs: 400 });
    await pool.start();
    const group = pool.replicaSet!.group;
    const load = readLoad(pool, 3);
    await waitUntil(() => load.outcomes.length >= 20, 'reads before the partition');
    await proxies[0]!.blackhole();
    try {
      await waitUntil(() => !group.status('r1').healthy, 'r1 marked down', 5000);
      const downCount = load.outcomes.length;
      await waitUntil(() => load.outcomes.length >= downCount + 30, 'reads during the partition');
      // The reads stuck on r1 when it went silent may still land after this point; none routed later does.
      expect(load.outcomes.slice(downCount + 3, downCount + 30).every((o) => o.who === 'r2')).toBe(true);
    } finally {
      await proxies[0]!.pass();
    }
    await waitUntil(() => group.status('r1').healthy, 'r1 back', 10_000);
    await load.stop();
    expect(load.outcomes.filter((o) => o.error !== undefined).map((o) => String(o.error))).toEqual([]);
    // A stuck read waited one query timeout (400 ms) before running again: bounded (generously: shared CPU).
    const slowest = Math.max(...load.outcomes.map((o) => o.at - o.startedAt));
    expect(slowest).toBeGreaterThanOrEqual(350);
    expect(slowest).toBeLessThan(3000);
  });

  it('fails over when a replica server is killed and takes it back after its restart', async () => {
    const { pool } = replicated({ balance: 'round-robin' });
    await pool.start();
    const group = pool.replicaSet!.group;
    const load = readLoad(pool, 2);
    await waitUntil(() => load.outcomes.length >= 20, 'reads before the crash');
    await servers[1]!.kill();
    await waitUntil(() => !group.status('r2').healthy, 'r2 marked down', 5000);
    const downCount = load.outcomes.length;
    await waitUntil(() => load.outcomes.length >= downCount + 20, 'reads while r2 is down');
    await servers[1]!.restart();
    await waitUntil(() => group.status('r2').healthy, 'r2 back', 15_000);
    const upAt = performance.now();
    await waitUntil(() => load.outcomes.some((o) => o.at > upAt && o.who === 'r2'), 'r2 serving again');
    await load.stop();
    expect(load.outcomes.filter((o) => o.error !== undefined).map((o) => String(o.error))).toEqual([]);
    expect(load.outcomes.slice(downCount, downCount + 20).every((o) => o.who === 'r1')).toBe(true);
  }, 40_000);

  it('with no replica up, reads fall back to the primary, or fail with readFallback "fail"', async () => {
    const fallback = replicated({ readFallback: 'primary' });
    const failing = replicated({ readFallback: 'fail' });
    await Promise.all([fallback.pool.start(), failing.pool.start()]);
    await Promise.all(proxies.map((proxy) => proxy.refuse()));
    try {
      for (const pool of [fallback.pool, failing.pool]) {
        const health = (await pool.checkHealth({ timeoutMs: 500 })) as RoutedHealthCheckResult;
        expect(health.members['r1']?.status).toBe('down');
        expect(health.members['r2']?.status).toBe('down');
        expect(health.members['primary']?.status).toBe('up');
        expect(health.status).toBe(pool === fallback.pool ? 'up' : 'down');
        expect(JSON.stringify(health)).not.toContain(SECRET);
      }
      expect(await sequentialReads(fallback.pool, 3)).toEqual(['primary', 'primary', 'primary']);
      const members = (fallback.pool.metrics() as ReplicatedPoolMetrics).members;
      expect(members['primary']).toMatchObject({ role: 'primary', inRotation: true });
      expect(members['r1']).toMatchObject({ role: 'replica', healthy: false, inRotation: false });

      const error = await failing.pool.read.query(WHO).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(PoolNoHealthyMemberError);
      expect(error).toBeInstanceOf(PoolUnavailableError);
      expect((error as PoolNoHealthyMemberError).poolName).toBe(failing.app);
      expect(Object.keys((error as PoolNoHealthyMemberError).members)).toEqual(['r1', 'r2']);
      expect(String((error as Error).message)).not.toContain(SECRET);
      expect(inspect(error)).not.toContain(SECRET);
    } finally {
      await Promise.all(proxies.map((proxy) => proxy.pass()));
    }
    // Both come back by themselves; reads leave the primary again.
    const group = fallback.pool.replicaSet!.group;
    await waitUntil(() => group.members().every((m) => m.healthy), 'replicas back', 10_000);
    expect(tally(await sequentialReads(fallback.pool, 4))).toEqual({ r1: 2, r2: 2 });
  }, 30_000);

  it('the periodic check takes a silent replica out before any read hits it', async () => {
    const { pool } = replicated({ intervalMs: 100 });
    await pool.start();
    const group = pool.replicaSet!.group;
    await proxies[1]!.refuse();
    try {
      await waitUntil(() => !group.status('r2').healthy, 'r2 found down by the periodic check', 5000);
      expect(tally(await sequentialReads(pool, 6))).toEqual({ r1: 6 });
    } finally {
      await proxies[1]!.pass();
    }
    await waitUntil(() => group.status('r2').healthy, 'r2 back', 10_000);
  });

  it('a failing statement does not take a replica out; a connection killed inside read.use() does, without a retry', async () => {
    const { pool } = replicated();
    await pool.start();
    const group = pool.replicaSet!.group;
    await expect(pool.read.query('SELECT * FROM np_no_such_table_routing')).rejects.toMatchObject({
      code: '42P01',
    });
    // Nor does one whose message happens to quote pg's "Connection terminated" (the caller's input).
    await expect(pool.read.query('SELECT $1::int', ['Connection terminated'])).rejects.toMatchObject({
      code: '22P02',
    });
    expect(group.members().every((m) => m.healthy)).toBe(true);

    let calls = 0;
    const killed = await pool.read
      .use(async (client) => {
        calls++;
        await client.query('SELECT pg_terminate_backend(pg_backend_pid())');
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(killed).toBeDefined();
    expect(calls).toBe(1);
    expect(group.members().filter((m) => !m.healthy)).toHaveLength(1);
    // The server is fine: the re-check brings the replica back.
    await waitUntil(() => group.members().every((m) => m.healthy), 'replica back', 5000);
  });

  it('reports health and metrics per member; drain() and close() cover every member', async () => {
    const { pool, app } = replicated();
    await pool.start();
    await sequentialReads(pool, 4);
    const health = (await pool.checkHealth()) as RoutedHealthCheckResult;
    expect(health.status).toBe('up');
    expect(Object.keys(health.members)).toEqual(['primary', 'r1', 'r2']);
    expect(Object.values(health.members).map((m) => [m.role, m.status])).toEqual([
      ['primary', 'up'],
      ['replica', 'up'],
      ['replica', 'up'],
    ]);
    pool.trackUseTime(true); // reaches every member
    await sequentialReads(pool, 2);
    for (const member of ['r1', 'r2']) {
      expect(pool.replicaSet!.group.pool(member).histograms().use.count).toBe(1);
    }
    const metrics = pool.metrics() as ReplicatedPoolMetrics;
    expect(metrics.name).toBe(app);
    expect(Object.keys(metrics.members)).toEqual(['primary', 'r1', 'r2']);
    expect(metrics.members['r1']).toMatchObject({
      name: `${app}.replica[r1]`,
      healthy: true,
      inRotation: true,
    });
    expect(metrics.members['r1']!.acquired).toBeGreaterThan(0);
    for (const text of [JSON.stringify(pool), inspect(pool), JSON.stringify(metrics)]) {
      expect(text).not.toContain(SECRET);
    }

    const admins = await Promise.all(servers.map((server) => adminClient(server.url)));
    try {
      for (const admin of admins) expect(await countBackends(admin, app)).toBeGreaterThan(0);
      const drained = await pool.drain({ timeoutMs: 1000 });
      expect(drained).toEqual({ drained: true, active: 0 });
      await pool.close();
      const members = pool.replicaSet!.group.names.map((m) => pool.replicaSet!.group.pool(m).state);
      expect([pool.state, ...members]).toEqual(['closed', 'closed', 'closed']);
      for (const admin of admins) {
        await waitUntil(async () => (await countBackends(admin, app)) === 0, 'no connection left');
      }
    } finally {
      await Promise.all(admins.map((admin: pg.Client) => admin.end()));
    }
  });
});
