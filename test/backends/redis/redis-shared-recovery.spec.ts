/**
 * The shared client after an outage: its reconnection backs off like the leases (createRetry, then the
 * circuit breaker's probe interval), but a lease connection opening proves the server is back, so the
 * shared client does not wait out the rest of its backoff. And a command that was running on the shared
 * connection when it broke gets PoolConnectionError, one issued while it is down PoolUnavailableError; the
 * same for a lease's command, while a reply error (WRONGTYPE) stays ioredis' own.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { createPool, PoolError, PoolUnavailableError, type RedisPool } from '../../../lib/index.js';
import { PoolConnectionError } from '../../../lib/backends/pool-connection-error.js';
import { FaultProxy } from '../../../lib/testing/index.js';
import {
  adminClient,
  clientsNamed,
  KEY_PREFIX,
  killClients,
  REDIS_URL,
  redisUrl,
  uniqueName,
  waitUntil,
} from './redis-test-support.js';

/** Far longer than anything below may take: a reconnection that waited for it would fail the test. */
const LONG_BACKOFF_MS = 20_000;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function proxiedPool(): Promise<{ pool: RedisPool; proxy: FaultProxy }> {
  const server = new URL(REDIS_URL);
  const proxy = new FaultProxy({ target: { host: server.hostname, port: Number(server.port || 6379) } });
  await proxy.start();
  cleanups.push(() => proxy.stop());
  const pool: RedisPool = createPool({
    name: uniqueName('shared-recovery'),
    backend: 'redis',
    uri: redisUrl({ host: proxy.host, port: proxy.port }),
    pool: {
      max: 3,
      min: 0,
      createTimeoutMs: 1000,
      acquireTimeoutMs: 2000,
      createRetry: { initialDelayMs: LONG_BACKOFF_MS, maxDelayMs: LONG_BACKOFF_MS },
      circuitBreaker: { failureThreshold: 5, resetTimeoutMs: LONG_BACKOFF_MS },
    },
  });
  cleanups.push(() => pool.close());
  await pool.start();
  return { pool, proxy };
}

describe('RedisPool shared client recovery', () => {
  it('reconnects as soon as a lease connects, without waiting out its backoff', async () => {
    const { pool, proxy } = await proxiedPool();
    expect(await pool.shared.ping()).toBe('PONG');

    await proxy.refuse(); // the shared connection is cut, and reconnecting is refused
    await waitUntil(() => pool.metrics().shared.state === 'down', 'the shared client to notice');
    await expect(pool.shared.ping()).rejects.toBeInstanceOf(PoolUnavailableError);
    await waitUntil(() => pool.metrics().shared.failures === 1, 'the reconnection to fail');
    // Backing off now: a command fails at once, with no new attempt.
    await expect(pool.shared.ping()).rejects.toBeInstanceOf(PoolUnavailableError);
    expect(pool.metrics().shared).toMatchObject({ state: 'down', failures: 1 });
    const created = pool.metrics().shared.created;

    await proxy.pass();
    // The leases made no attempt while it was down (min 0, nobody asked): this one connects at once...
    expect(await pool.use((client) => client.ping())).toBe('PONG');
    // ...and the shared client follows, LONG_BACKOFF_MS early.
    expect(await pool.shared.ping()).toBe('PONG');
    expect(pool.metrics().shared).toMatchObject({ state: 'ready', failures: 0, created: created + 1 });
  });

  it('a command running when the shared connection breaks: PoolConnectionError; issued while down: PoolUnavailableError', async () => {
    const { pool, proxy } = await proxiedPool();
    expect(await pool.shared.ping()).toBe('PONG');

    await proxy.blackhole();
    const running = pool.shared.get('nothing').catch((e: unknown) => e);
    proxy.resetAll(); // the connection is reset under the unanswered command
    const error = await running;
    expect(error).toBeInstanceOf(PoolConnectionError);
    expect(error).toMatchObject({ name: 'PoolConnectionError', poolName: pool.name });
    expect((error as Error).cause).toBeInstanceOf(Error);

    await proxy.refuse();
    await waitUntil(() => pool.metrics().shared.state === 'down', 'the shared client to be down');
    await expect(pool.shared.ping()).rejects.toBeInstanceOf(PoolUnavailableError);
  });
});

describe('RedisPool leases: which error the caller gets', () => {
  it('a lease killed under a running command: PoolConnectionError; a WRONGTYPE reply: the ReplyError itself', async () => {
    const name = uniqueName('lease-errors');
    const pool: RedisPool = createPool({
      name,
      backend: 'redis',
      uri: redisUrl(),
      connection: { connectionName: name },
      pool: { max: 2, min: 0 },
    });
    cleanups.push(() => pool.close());
    const admin = await adminClient();
    cleanups.push(async () => admin.disconnect());
    await pool.start();
    const key = `${KEY_PREFIX}lease-errors:${name}`;
    cleanups.push(() => admin.del(key, `${key}:list`));

    // A statement the server refuses: ioredis' ReplyError, untouched; the connection is fine and reused.
    const wrongType = await pool
      .use(async (client) => {
        await client.set(key, 'string');
        return client.lpush(key, 'x');
      })
      .catch((e: unknown) => e);
    expect(wrongType).not.toBeInstanceOf(PoolError);
    expect(wrongType).toMatchObject({ name: 'ReplyError', message: expect.stringMatching(/^WRONGTYPE/) });
    expect(pool.metrics().destroyed.error).toBe(0);

    // The server kills the connection while a blocking command waits on it.
    const blocked = pool.use((client) => client.blpop(`${key}:list`, 5)).catch((e: unknown) => e);
    await waitUntil(
      async () => (await clientsNamed(admin, name)).some((c) => c.cmd === 'blpop'),
      'BLPOP to block',
    );
    expect(await killClients(admin, name)).toBeGreaterThan(0);
    const error = await blocked;
    expect(error).toBeInstanceOf(PoolConnectionError);
    expect(error).toMatchObject({ name: 'PoolConnectionError', poolName: name });
    expect((error as Error).cause).toMatchObject({ message: expect.stringMatching(/Connection is closed/) });
    await waitUntil(() => pool.metrics().destroyed.error >= 1, 'the killed lease to be destroyed');
    expect(await pool.use((client) => client.ping())).toBe('PONG');
  });
});

describe('RedisPool.checkHealth and the shared client', () => {
  function directPool(startup: 'fail-fast' | 'lazy' = 'fail-fast'): RedisPool {
    const pool: RedisPool = createPool({
      name: uniqueName('shared-health'),
      backend: 'redis',
      uri: REDIS_URL,
      pool: { max: 3, min: 0, startup },
    });
    cleanups.push(() => pool.close());
    return pool;
  }

  it('is down when the shared client does not answer, though a lease does', async () => {
    const pool = directPool();
    await pool.start();
    expect((await pool.checkHealth({ timeoutMs: 1000 })).status).toBe('up');
    // The shared connection stuck (as behind a blackholed link): its PING never answers.
    const shared = pool.shared;
    const stuck = new Promise<'PONG'>(() => undefined);
    let pings = 0;
    shared.ping = (() => {
      pings++;
      return stuck;
    }) as typeof shared.ping;
    const health = await pool.checkHealth({ timeoutMs: 300 });
    expect(health.status).toBe('down');
    expect(health.error).toContain('health check timed out after 300 ms');
    // Later checks wait for the same PING instead of piling more onto the stuck connection.
    expect((await pool.checkHealth({ timeoutMs: 100 })).status).toBe('down');
    expect(pings).toBe(1);
  });

  it('reports why the shared client is down', async () => {
    const pool = directPool();
    await pool.start();
    const shared = pool.shared;
    shared.ping = (() =>
      Promise.reject(new Error('LOADING Redis is loading the dataset'))) as typeof shared.ping;
    const health = await pool.checkHealth({ timeoutMs: 1000 });
    expect(health.status).toBe('down');
    expect(health.error).toContain('the shared client: LOADING Redis is loading the dataset');
  });

  it('a shared-client PING that fails after its check gave up is not an unhandled rejection', async () => {
    const pool = directPool();
    await pool.start();
    const shared = pool.shared;
    shared.ping = (() =>
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('late failure')), 20),
      )) as unknown as typeof shared.ping;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      // A check whose time ran out just as the lease answered: the shared PING starts with the signal aborted.
      const probe = (
        pool as unknown as { probeOtherConnections(signal: AbortSignal): Promise<void> }
      ).probeOtherConnections(AbortSignal.abort(new Error('check timed out')));
      await expect(probe).rejects.toThrow('the shared client: check timed out');
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('does not open a shared client nobody used (lazy start-up)', async () => {
    const pool = directPool('lazy');
    await pool.start();
    expect((await pool.checkHealth({ timeoutMs: 1000 })).status).toBe('up');
    expect(pool.metrics().shared.state).toBe('idle');
  });
});
