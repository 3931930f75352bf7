/**
 * RedisPool's two ways in: `shared` (one multiplexed client, stateless commands) and leases (`use`,
 * `acquire`) that come back clean: DISCARD, UNWATCH, SELECT back, unsubscribed, or destroyed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Redis } from 'ioredis';
import { createPool, PoolError, type RedisPool } from '../../../lib/index.js';
import {
  adminClient,
  clientsNamed,
  countClients,
  KEY_PREFIX,
  redisUrl,
  sampleMax,
  TEST_DB,
  uniqueName,
  waitUntil,
} from './redis-test-support.js';

let admin: Redis;

beforeAll(async () => {
  admin = await adminClient();
});

afterAll(async () => {
  const keys = await admin.keys(`${KEY_PREFIX}*`);
  if (keys.length > 0) await admin.del(...keys);
  admin.disconnect();
});

function poolFor(
  name: string,
  pool: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): RedisPool {
  return createPool({
    name,
    backend: 'redis',
    uri: redisUrl(),
    connection: { connectionName: name },
    pool: { max: 3, ...pool },
    ...extra,
  });
}

const key = (name: string): string => `${KEY_PREFIX}${name}`;

describe('shared client', () => {
  it('serves stateless commands on one connection, in the URI database', async () => {
    const name = uniqueName('shared');
    const pool = poolFor(name);
    await pool.start();
    try {
      await pool.shared.set(key('a'), 'one');
      expect(await pool.shared.get(key('a'))).toBe('one');
      expect(await admin.get(key('a'))).toBe('one'); // the admin client is on TEST_DB too
      expect(pool.shared).toBe(pool.shared);
      const [set, get] = (await pool.shared.multi().set(key('b'), '2').get(key('b')).exec())!;
      expect([set![1], get![1]]).toEqual(['OK', '2']);
      const clients = await clientsNamed(admin, name);
      // start(): the shared client and one warm lease.
      expect(clients).toHaveLength(2);
      expect(clients.every((c) => c.db === TEST_DB)).toBe(true);
      expect(pool.metrics()).toMatchObject({ max: 2, shared: { state: 'ready', created: 1, failures: 0 } });
    } finally {
      await pool.close();
    }
    await waitUntil(async () => (await countClients(admin, name)) === 0, 'connections to close');
    expect(() => pool.shared).toThrow(/closed/);
  });

  it('refuses stateful commands with a hint to use a lease', async () => {
    const pool = poolFor(uniqueName('refuse'));
    await pool.start();
    try {
      for (const attempt of [
        () => pool.shared.watch(key('w')),
        () => pool.shared.select(3),
        () => pool.shared.subscribe('chan'),
        () => pool.shared.blpop(key('list'), 1),
        () => pool.shared.multi({ pipeline: false }),
        () => pool.shared.client('SETNAME', 'other'),
        () => pool.shared.xread('BLOCK', 100, 'STREAMS', key('s'), '$'),
        // ioredis sends Buffers as they are: a Buffer 'BLOCK' blocks the connection just the same.
        // A group named "streams" doesn't end the options: the BLOCK after it is seen.
        () => pool.shared.xreadgroup('GROUP', 'streams', 'c1', 'BLOCK', 100, 'STREAMS', key('s'), '>'),
        () => {
          const xread = pool.shared.xreadBuffer.bind(pool.shared) as (...args: unknown[]) => Promise<unknown>;
          return xread(Buffer.from('BLOCK'), 100, 'STREAMS', key('s'), '$');
        },
      ]) {
        const error = await Promise.resolve()
          .then(attempt)
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(PoolError);
        expect((error as Error).message).toMatch(/not allowed on pool\.shared.*pool\.use\(\)/);
      }
      expect(await pool.shared.ping()).toBe('PONG');
      // Without BLOCK, and with a stream that happens to be named "block", XREAD doesn't block: allowed.
      expect(await pool.shared.xread('COUNT', 1, 'STREAMS', key('block'), '0')).toBeNull();
      // Nor does XREADGROUP with a group and a consumer named "block" (NOGROUP: it got to the server).
      await expect(
        pool.shared.xreadgroup('GROUP', 'block', 'block', 'COUNT', 1, 'STREAMS', key('g'), '>'),
      ).rejects.toThrow(/NOGROUP/);
      expect(pool.shared.condition?.select).toBe(TEST_DB);
    } finally {
      await pool.close();
    }
  });

  it('refuses a whole pipeline or transaction holding a refused command; other callers get their own replies', async () => {
    const pool = poolFor(uniqueName('refuse-pipe'));
    await pool.start();
    try {
      await pool.shared.mset(key('pa'), 'A', key('pc'), 'C');
      // ioredis writes a pipeline once every command has written: a command refused on its way would leave
      // the others queued for replies that never come, and take other callers' replies instead.
      const piped = pool.shared.pipeline().get(key('pa')).select(5).get(key('pa')).exec();
      const transaction = pool.shared.multi().set(key('pa'), 'changed').watch(key('pa')).exec();
      const [others, pipedError, transactionError] = await Promise.all([
        Promise.all([pool.shared.get(key('pc')), pool.shared.get(key('pa')), pool.shared.del(key('none'))]),
        piped.catch((e: unknown) => e),
        transaction.catch((e: unknown) => e),
      ]);
      expect(others).toEqual(['C', 'A', 0]);
      expect(pipedError).toBeInstanceOf(PoolError);
      expect((pipedError as Error).message).toMatch(/SELECT is not allowed on pool\.shared/);
      expect(transactionError).toBeInstanceOf(PoolError);
      expect((transactionError as Error).message).toMatch(/WATCH is not allowed on pool\.shared/);
      expect(await admin.get(key('pa'))).toBe('A'); // nothing of the refused transaction ran
      // A callback is told too, and a pipeline of allowed commands still works.
      const told = await new Promise<unknown>((resolve) => {
        void pool.shared
          .pipeline()
          .select(2)
          .exec((error) => resolve(error))
          .catch(() => undefined);
      });
      expect(told).toBeInstanceOf(PoolError);
      const results = await pool.shared.pipeline().get(key('pa')).get(key('pc')).exec();
      expect(results).toEqual([
        [null, 'A'],
        [null, 'C'],
      ]);
      expect(pool.shared.condition?.select).toBe(TEST_DB);
    } finally {
      await pool.close();
    }
  });

  it('is created lazily with startup: lazy, and never together with more than max connections', async () => {
    const name = uniqueName('lazy');
    const pool = poolFor(name, { startup: 'lazy', max: 3 });
    await pool.start();
    try {
      expect(pool.metrics().shared.state).toBe('idle');
      expect(await countClients(admin, name)).toBe(0);
      const peak = sampleMax(() => countClients(admin, name), 5);
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          i % 2 === 0
            ? pool.shared.incr(key('lazy'))
            : pool.use(async (redis) => {
                await redis.set(key(`lazy-${i}`), i);
                return Number(await redis.get(key(`lazy-${i}`)));
              }),
        ),
      );
      expect(results.filter((_, i) => i % 2 === 1)).toEqual(Array.from({ length: 15 }, (_, i) => 2 * i + 1));
      expect(await peak.stop()).toBeLessThanOrEqual(3);
      expect(pool.metrics()).toMatchObject({ max: 2, active: 0, shared: { state: 'ready', created: 1 } });
    } finally {
      await pool.close();
    }
  });

  it('a preset with min = max keeps every lease warm beside the shared client', async () => {
    const name = uniqueName('preset');
    const pool = poolFor(name, { max: 4, preset: 'throughput' });
    await pool.start();
    try {
      expect(pool.metrics()).toMatchObject({ min: 3, max: 3, size: 3 });
      await pool.shared.ping();
      expect(await countClients(admin, name)).toBe(4);
    } finally {
      await pool.close();
    }
  });

  it('max is the whole budget: shared + leases never exceed it; shared: false gives leases all of it', async () => {
    const name = uniqueName('budget');
    const pool = poolFor(name, { max: 1 }, { shared: false });
    await pool.start();
    try {
      expect(pool.metrics()).toMatchObject({ max: 1, shared: { state: 'disabled' } });
      expect(() => pool.shared).toThrow(/disabled/);
      expect(await pool.use((redis) => redis.ping())).toBe('PONG');
      expect(await countClients(admin, name)).toBe(1);
    } finally {
      await pool.close();
    }
  });
});

describe('leases come back clean', () => {
  it('the common case resets synchronously: the same connection is lent again at once', async () => {
    const pool = poolFor(uniqueName('sync'), { max: 2 });
    await pool.start();
    try {
      const first = await pool.acquire();
      const client = first.connection;
      await client.set(key('s'), '1');
      first.release();
      // Lent again in the same tick: a reset that returned a promise would not have made it idle yet.
      const second = await pool.acquire();
      expect(second.connection).toBe(client);
      second.release();
      expect(pool.metrics().destroyed.total).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('WATCH + MULTI/EXEC through use(); a lease left in MULTI is DISCARDed, WATCH is UNWATCHed', async () => {
    const pool = poolFor(uniqueName('multi'), { max: 2 });
    await pool.start();
    try {
      await pool.use(async (redis) => {
        await redis.watch(key('k'));
        const result = await redis.multi().set(key('k'), 1).exec();
        expect(result).toEqual([[null, 'OK']]);
      });
      let leaked: Redis | undefined;
      await pool.use(async (redis) => {
        leaked = redis;
        await redis.watch(key('k'));
        expect(await redis.multi({ pipeline: false })).toBe('OK');
        expect(await redis.set(key('k'), 'never')).toBe('QUEUED');
      });
      // The same connection is lent back, clean: not in MULTI (a SET answers OK, not QUEUED), nothing watched.
      await pool.use(async (redis) => {
        expect(redis).toBe(leaked);
        expect(await redis.set(key('k'), 'after')).toBe('OK');
        await admin.set(key('k'), 'changed-by-other');
        // If the WATCH had survived, this EXEC would abort (null).
        expect(await redis.multi().get(key('k')).exec()).toEqual([[null, 'changed-by-other']]);
      });
      expect(await admin.get(key('k'))).toBe('changed-by-other');
      expect(pool.metrics().destroyed.total).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('SELECT is reset to the configured database', async () => {
    const pool = poolFor(uniqueName('select'), { max: 2 });
    await pool.start();
    try {
      let client: Redis | undefined;
      await pool.use(async (redis) => {
        client = redis;
        await redis.select(TEST_DB + 1);
      });
      await pool.use(async (redis) => {
        expect(redis).toBe(client);
        await redis.set(key('db'), 'here');
      });
      expect(await admin.get(key('db'))).toBe('here');
    } finally {
      await pool.close();
    }
  });

  it('SELECT sent through call() in upper case is reset too', async () => {
    const pool = poolFor(uniqueName('select-call'), { max: 1 }, { shared: false });
    await pool.start();
    try {
      // ioredis notices a database change only by the lower-case name; the pool passes it on normalised.
      await pool.use((redis) => redis.call('SELECT', TEST_DB + 1));
      await pool.use((redis) =>
        redis
          .multi()
          .call('SELECT', TEST_DB + 2)
          .exec(),
      );
      const info = await pool.use((redis) => redis.client('INFO') as Promise<string>);
      expect(info).toMatch(new RegExp(` db=${TEST_DB} `));
    } finally {
      await pool.close();
    }
  });

  it('a WATCH that a DISCARD or EXEC without MULTI left in place is UNWATCHed', async () => {
    const pool = poolFor(uniqueName('watch-left'), { max: 1 }, { shared: false });
    await pool.start();
    try {
      await pool.use(async (redis) => {
        await redis.watch(key('watched'));
        await expect(redis.discard()).rejects.toThrow(/without MULTI/); // the WATCH stays on the server
      });
      await admin.set(key('watched'), 'changed by someone else');
      // Still watching, the next borrower's transaction would be aborted (EXEC answers null).
      const result = await pool.use((redis) => redis.multi().set(key('after'), '1').exec());
      expect(result).toEqual([[null, 'OK']]);
      expect(pool.metrics().destroyed.total).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('a lease with pattern and plain subscriptions is cleaned at once, not after the reset timeout', async () => {
    const pool = poolFor(uniqueName('psub'), { max: 1 }, { shared: false });
    const errors: string[] = [];
    pool.on('error', (error) => errors.push(error.message));
    await pool.start();
    try {
      let client: Redis | undefined;
      await pool.use(async (redis) => {
        client = redis;
        await redis.psubscribe(`${key('pchan')}*`);
        await redis.subscribe(key('chan-a'), key('chan-b'));
      });
      const startedAt = Date.now();
      await pool.use(async (redis) => {
        expect(redis).toBe(client); // cleaned, not replaced
        expect(redis.condition?.subscriber).toBe(false);
        expect(await redis.ping()).toBe('PONG');
      });
      expect(Date.now() - startedAt).toBeLessThan(1000); // the reset used to wait 5 s for its timeout
      expect(await admin.publish(`${key('pchan')}x`, 'm')).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      await pool.close();
    }
  });

  it('a subscribed lease is unsubscribed and its message listeners dropped', async () => {
    const name = uniqueName('sub');
    const pool = poolFor(name, { max: 2 });
    await pool.start();
    try {
      const heard: string[] = [];
      let client: Redis | undefined;
      await pool.use(async (redis) => {
        client = redis;
        redis.on('message', (_channel: string, message: string) => heard.push(message));
        await redis.subscribe(key('chan'));
        await admin.publish(key('chan'), 'one');
        await waitUntil(() => heard.length === 1, 'the message');
      });
      await pool.use(async (redis) => {
        expect(redis).toBe(client);
        expect(redis.condition?.subscriber).toBe(false);
        expect(redis.listenerCount('message')).toBe(0);
        expect(await admin.publish(key('chan'), 'two')).toBe(0);
        expect(await redis.ping()).toBe('PONG');
      });
      expect(heard).toEqual(['one']);
    } finally {
      await pool.close();
    }
  });

  it('listeners a borrower added are taken off on release, subscribed or not; removing the pool’s own destroys it', async () => {
    const name = uniqueName('listeners');
    const pool = poolFor(name, { max: 2 }, { shared: false });
    await pool.start();
    try {
      const heardByFirst: string[] = [];
      let client: Redis | undefined;
      await pool.use(async (redis) => {
        client = redis;
        redis.on('message', (_channel: string, message: string) => heardByFirst.push(message));
        redis.on('error', () => undefined);
        redis.once('end', () => undefined);
        await redis.subscribe(key('first'));
        await redis.unsubscribe(key('first')); // unsubscribed itself: nothing else to clean but the listeners
      });
      const heardBySecond: string[] = [];
      await pool.use(async (redis) => {
        expect(redis).toBe(client);
        expect(redis.listenerCount('message')).toBe(0);
        expect(redis.listenerCount('error')).toBe(1); // the pool's own
        redis.on('message', (_channel: string, message: string) => heardBySecond.push(message));
        await redis.subscribe(key('second'));
        await admin.publish(key('second'), 'for-second');
        await waitUntil(() => heardBySecond.length === 1, 'the second borrower’s message');
      });
      expect(heardByFirst).toEqual([]);
      expect(pool.metrics().destroyed.error).toBe(0);

      await pool.use(async (redis) => {
        expect(redis).toBe(client);
        redis.removeAllListeners('error'); // an 'error' now would reach the process
      });
      await waitUntil(() => pool.metrics().destroyed.error === 1, 'the stripped connection destroyed');
      await waitUntil(() => client!.status === 'end', 'its socket closed');
    } finally {
      await pool.close();
    }
  });

  it('a lease released with a blocking command in flight, or after CLIENT TRACKING, is destroyed', async () => {
    const name = uniqueName('inflight');
    const pool = poolFor(name, { max: 2 });
    await pool.start();
    try {
      const lease = await pool.acquire();
      const blocked = lease.connection.blpop(key('nothing'), 5).catch((e: unknown) => e);
      lease.release();
      await waitUntil(() => pool.metrics().destroyed.total === 1, 'the busy lease to be destroyed');
      expect(await blocked).toBeInstanceOf(Error);

      await pool.use((redis) => redis.client('TRACKING', 'ON'));
      await waitUntil(() => pool.metrics().destroyed.total === 2, 'the tainted lease to be destroyed');
      expect(await pool.use((redis) => redis.ping())).toBe('PONG');
      await waitUntil(async () => (await countClients(admin, name)) <= 2, 'the destroyed ones to go');
    } finally {
      await pool.close();
    }
  });

  it('blocking commands work on a lease, within queryTimeoutMs plus their own timeout', async () => {
    const pool = poolFor(uniqueName('block'), { max: 2 }, { queryTimeoutMs: 300 });
    await pool.start();
    try {
      const started = Date.now();
      expect(await pool.use((redis) => redis.blpop(key('empty'), 0.5))).toBeNull();
      expect(Date.now() - started).toBeGreaterThanOrEqual(450);
      const waiting = pool.use((redis) => redis.blpop(key('list'), 2));
      await pool.shared.rpush(key('list'), 'x');
      expect(await waiting).toEqual([key('list'), 'x']);
      expect(pool.metrics().destroyed.total).toBe(0);
    } finally {
      await pool.close();
    }
  });
});

describe('health', () => {
  it('checkHealth pings a lease within the timeout', async () => {
    const pool = poolFor(uniqueName('health'));
    await pool.start();
    try {
      const health = await pool.checkHealth({ timeoutMs: 1000 });
      expect(health).toMatchObject({ status: 'up', metrics: { name: pool.name } });
      expect(health.latencyMs).toBeLessThan(1000);
    } finally {
      await pool.close();
    }
    expect(await pool.checkHealth({ timeoutMs: 200 })).toMatchObject({ status: 'down' });
  });
});
