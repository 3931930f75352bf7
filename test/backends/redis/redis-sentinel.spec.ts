/**
 * A RedisPool through Redis Sentinel: a private master and one sentinel monitoring it. Every pooled
 * connection asks the sentinel where the master is; `shared` and leases serve commands on the master;
 * a sentinel that can't be reached fails start() with a typed error.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { inspect } from 'node:util';
import { createPool, PoolUnavailableError, type RedisPool } from '../../../lib/index.js';
import { dump, expectNoSecret } from '../../support/secrets.js';
import { findFreePort } from '../../support/private-servers.js';
import { startPrivateRedisSentinel, type PrivateRedisSentinel } from '../../support/redis-topology.js';
import { clientsNamed, uniqueName } from './redis-test-support.js';

let topology: PrivateRedisSentinel;
let master: Redis;

beforeAll(async () => {
  topology = await startPrivateRedisSentinel('np-sentinel-master');
  master = new Redis(topology.master.port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null });
  master.on('error', () => undefined);
  await master.connect();
}, 30_000);

afterAll(async () => {
  if (master?.status !== 'end') master?.disconnect();
  await topology?.stop();
});

function sentinelPool(name: string, sentinelPort: number, extra: Record<string, unknown> = {}): RedisPool {
  return createPool({
    name,
    backend: 'redis',
    sentinel: { sentinels: [{ host: '127.0.0.1', port: sentinelPort }], name: topology.name },
    connection: { connectionName: name, db: 2 },
    pool: { max: 3, min: 2 },
    ...extra,
  });
}

describe('Redis Sentinel', () => {
  it('finds the master through the sentinel; shared and leases serve commands there', async () => {
    const name = uniqueName('sentinel');
    const pool = sentinelPool(name, topology.sentinel.port);
    await pool.start();
    try {
      expect(pool.target).toBe(`redis-sentinel://127.0.0.1:${topology.sentinel.port}/${topology.name}/2`);
      await pool.shared.set('sentinel:k', 'v');
      expect(await pool.use((client) => client.get('sentinel:k'))).toBe('v');
      await pool.use(async (client) => {
        await client.watch('sentinel:k');
        expect(await client.multi().incr('sentinel:n').exec()).toEqual([[null, 1]]);
      });

      // The connections are the master's (db 2, as configured): the shared client and the min lease.
      const onMaster = await clientsNamed(master, name);
      expect(onMaster).toHaveLength(2);
      expect(onMaster.every((c) => c.db === 2)).toBe(true);
      expect(await master.select(2).then(() => master.get('sentinel:k'))).toBe('v');

      expect((await pool.checkHealth({ timeoutMs: 2_000 })).status).toBe('up');
      expect(pool.connections().find((c) => c.state === 'shared')!.queries).toBe(1);
    } finally {
      await pool.close();
    }
    expect(await clientsNamed(master, name)).toHaveLength(0);
  });

  it('fails start() with PoolUnavailableError when no sentinel answers', async () => {
    const pool = sentinelPool(uniqueName('sentinel-down'), await findFreePort(), {
      pool: { max: 2, createRetry: { initialDelayMs: 20, maxDelayMs: 50 }, createTimeoutMs: 2_000 },
    });
    const started = performance.now();
    try {
      await expect(pool.start()).rejects.toBeInstanceOf(PoolUnavailableError);
      expect(performance.now() - started).toBeLessThan(10_000);
    } finally {
      await pool.close();
    }
  });

  it('with passwords on the master and the sentinel: connects, and lets neither out', async () => {
    const password = 'M4ster-S3cret#pw';
    const sentinelPassword = 'S3ntinel-S3cret#pw';
    const secured = await startPrivateRedisSentinel('np-secured', { password, sentinelPassword });
    const outputs: string[] = [];
    const pool = createPool({
      name: uniqueName('sentinel-auth'),
      backend: 'redis',
      sentinel: {
        sentinels: [{ host: '127.0.0.1', port: secured.sentinel.port }],
        name: secured.name,
        sentinelPassword,
      },
      connection: { password },
      pool: { max: 2 },
    });
    try {
      await pool.start();
      await pool.shared.set('k', 'v');
      expect(await pool.use((client) => client.get('k'))).toBe('v');
      const quote = `return redis.error_reply('${password} ${sentinelPassword}')`;
      outputs.push(dump(await pool.shared.eval(quote, 0).catch((error: unknown) => error)));
      outputs.push(dump(await pool.use((client) => client.eval(quote, 0)).catch((error: unknown) => error)));
      const lease = await pool.acquire();
      outputs.push(inspect(lease.connection, { depth: 4, showHidden: true }));
      lease.release();
      outputs.push(inspect(pool.shared, { depth: 4, showHidden: true }));
      outputs.push(dump(pool), JSON.stringify(pool.connections()), dump(await pool.checkHealth()));
      expect(outputs.join('\n')).toContain('***');
    } finally {
      await pool.close();
      await secured.stop();
    }
    expectNoSecret(outputs, [password, sentinelPassword, encodeURIComponent(password)]);
  });
});
