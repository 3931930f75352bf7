/**
 * `pool.connections()` on a RedisPool: every lease with the commands run on it (count, mean time, last
 * error, redacted), and the shared client as a `shared` entry with the commands of all its callers.
 * ioredis' own handshake (INFO, CLIENT SETNAME, SELECT) is not counted: the counts below are exact.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { createPool, type RedisPool } from '../../../lib/index.js';
import type { BackendConnectionInfo } from '../../../lib/backends/backend-pool.js';
import { SHARED_CONNECTION_ID } from '../../../lib/backends/redis/redis-pool.js';
import { startPrivateRedis, type PrivateServer } from '../../support/private-servers.js';
import { expectNoSecret } from '../../support/secrets.js';
import { adminClient, KEY_PREFIX, redisUrl, uniqueName } from './redis-test-support.js';

let admin: Redis;

beforeAll(async () => {
  admin = await adminClient();
});

afterAll(async () => {
  const keys = await admin.keys(`${KEY_PREFIX}conn:*`);
  if (keys.length > 0) await admin.del(...keys);
  admin.disconnect();
});

const key = (name: string): string => `${KEY_PREFIX}conn:${name}`;

function poolFor(name: string, extra: Record<string, unknown> = {}): RedisPool {
  return createPool({
    name,
    backend: 'redis',
    uri: redisUrl(),
    connection: { connectionName: name },
    pool: { max: 3, min: 2 },
    ...extra,
  });
}

function sharedEntry(list: BackendConnectionInfo[]): BackendConnectionInfo | undefined {
  return list.find((c) => c.state === 'shared');
}

describe('RedisPool.connections()', () => {
  it('lists the leases and the shared client, each with the commands run on it', async () => {
    const name = uniqueName('conns');
    const pool = poolFor(name);
    await pool.start();
    try {
      let list = pool.connections();
      // min 2 = the shared client + one lease, neither has run a command yet (the handshake doesn't count).
      expect(list).toHaveLength(2);
      expect(list.map((c) => c.state).sort()).toEqual(['idle', 'shared']);
      for (const entry of list) {
        expect(entry.queries).toBe(0);
        expect(entry.avgQueryMs).toBeNull();
        expect(entry.lastError).toBeUndefined();
        expect(entry).not.toHaveProperty('connection');
      }
      expect(sharedEntry(list)!.id).toBe(SHARED_CONNECTION_ID);

      for (let i = 0; i < 5; i++) await pool.shared.set(key(`s${i}`), String(i));
      // A pipeline counts each command it carries; MULTI/EXEC count as the commands they are.
      await pool.shared.pipeline().get(key('s0')).get(key('s1')).exec();
      await pool.shared.multi().incr(key('n')).exec(); // MULTI, INCR, EXEC

      let leaseId = 0;
      await pool.use(async (redis) => {
        leaseId = pool.connections().find((c) => c.state === 'lent')!.id;
        await redis.set(key('l'), 'x');
        await redis.get(key('l'));
      });

      list = pool.connections();
      const shared = sharedEntry(list)!;
      expect(shared.queries).toBe(5 + 2 + 3);
      expect(shared.avgQueryMs).toBeGreaterThan(0);
      expect(shared.avgQueryMs).toBeLessThan(5_000);
      expect(shared.uses).toBe(0);
      expect(shared.createdAt).toBeLessThanOrEqual(Date.now());

      const lease = list.find((c) => c.id === leaseId)!;
      expect(lease.state).toBe('idle');
      expect(lease.uses).toBe(1);
      expect(lease.queries).toBe(2);
      expect(lease.avgQueryMs).toBeGreaterThan(0);
      // Ids are the engine's (from 1): never the shared client's.
      expect(list.filter((c) => c.id === SHARED_CONNECTION_ID)).toHaveLength(1);
    } finally {
      await pool.close();
    }
  });

  it('reports the last failed command, and keeps counting after it', async () => {
    const name = uniqueName('conns-err');
    const pool = poolFor(name);
    await pool.start();
    try {
      await pool.shared.set(key('str'), 'v');
      await expect(pool.shared.hget(key('str'), 'f')).rejects.toThrow(/WRONGTYPE/);
      let shared = sharedEntry(pool.connections())!;
      expect(shared.queries).toBe(2);
      expect(shared.lastError).toMatch(/WRONGTYPE/);

      await pool.shared.get(key('str'));
      shared = sharedEntry(pool.connections())!;
      expect(shared.queries).toBe(3);
      expect(shared.lastError).toMatch(/WRONGTYPE/); // the last failure, not the last command

      await expect(pool.use((redis) => redis.lpush(key('str'), 'x'))).rejects.toThrow(/WRONGTYPE/);
      const leases = pool.connections().filter((c) => c.state !== 'shared');
      const failed = leases.filter((c) => c.lastError !== undefined);
      expect(failed).toHaveLength(1);
      expect(failed[0]!.lastError).toMatch(/WRONGTYPE/);
      expect(failed[0]!.queries).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it("counts the caller's commands only: not the pool's reset, validation or health commands", async () => {
    const pool = poolFor(uniqueName('conns-own'), { pool: { max: 2, validationBypassMs: 0 } });
    await pool.start();
    try {
      await pool.use(async (redis) => {
        await redis.select(3); // the pool SELECTs back on release
        await redis.watch(key('own')); // and UNWATCHes
      });
      await pool.use((redis) => redis.get(key('own'))); // validated (PING) first: no bypass window
      await pool.checkHealth();
      const leases = pool.connections().filter((c) => c.state !== 'shared');
      expect(leases.reduce((sum, c) => sum + c.queries, 0)).toBe(3);
      expect(sharedEntry(pool.connections())!.queries).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('counts the same with queryTimeoutMs on (the bounded path)', async () => {
    const pool = poolFor(uniqueName('conns-timeout'), { queryTimeoutMs: 5_000 });
    await pool.start();
    try {
      await pool.shared.set(key('t'), '1');
      await pool.shared.pipeline().get(key('t')).incr(key('t')).exec();
      await expect(pool.shared.hget(key('t'), 'f')).rejects.toThrow(/WRONGTYPE/);
      await pool.use((redis) => redis.get(key('t')));
      const list = pool.connections();
      const shared = sharedEntry(list)!;
      expect(shared.queries).toBe(4);
      expect(shared.lastError).toMatch(/WRONGTYPE/);
      expect(list.filter((c) => c.state !== 'shared').reduce((sum, c) => sum + c.queries, 0)).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('lists nothing for the shared client before it exists or with "shared: false"', async () => {
    const lazy = poolFor(uniqueName('conns-lazy'), { pool: { max: 3, startup: 'lazy' } });
    const none = poolFor(uniqueName('conns-none'), { shared: false });
    await Promise.all([lazy.start(), none.start()]);
    try {
      expect(sharedEntry(lazy.connections())).toBeUndefined();
      await lazy.shared.ping();
      expect(sharedEntry(lazy.connections())!.queries).toBe(1);

      await none.use((redis) => redis.ping());
      const list = none.connections();
      expect(sharedEntry(list)).toBeUndefined();
      expect(list.reduce((sum, c) => sum + c.queries, 0)).toBe(1);
    } finally {
      await Promise.all([lazy.close(), none.close()]);
    }
  });

  describe('with a password', () => {
    const PASSWORD = 'Conn-St4ts/S3cret#pw';
    let server: PrivateServer;

    beforeAll(async () => {
      server = await startPrivateRedis();
      const setup = new Redis(server.port, '127.0.0.1', { lazyConnect: true });
      await setup.connect();
      await setup.config('SET', 'requirepass', PASSWORD);
      setup.disconnect();
    });

    afterAll(async () => {
      await server.stop();
    });

    it('never shows it in a last error', async () => {
      const pool = createPool({
        name: uniqueName('conns-secret'),
        backend: 'redis',
        uri: redisUrl({ base: server.url, db: 0, password: PASSWORD }),
        pool: { max: 2 },
      });
      await pool.start();
      try {
        const quote = `return redis.error_reply('bad ${PASSWORD}')`;
        await expect(pool.shared.eval(quote, 0)).rejects.toThrow(/bad/);
        await expect(pool.use((redis) => redis.eval(quote, 0))).rejects.toThrow(/bad/);
        const list = pool.connections();
        expect(list.filter((c) => c.lastError?.includes('bad'))).toHaveLength(2);
        expectNoSecret([JSON.stringify(list)], [PASSWORD, encodeURIComponent(PASSWORD)]);
      } finally {
        await pool.close();
      }
    });
  });
});
