/**
 * A RedisPool over a private 3-master Redis Cluster (no replicas): `shared` is an ioredis Cluster that
 * spreads keys over every master, leases are Cluster clients whose WATCH/MULTI go to the node of their keys
 * and come back unwatched, and losing a master gives typed errors, a `down` health check while the cluster
 * refuses keys (cluster_state:fail), then recovery once the master is back.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis, type Cluster } from 'ioredis';
import { createPool, PoolError, PoolUnavailableError, type RedisPool } from '../../../lib/index.js';
import type { RedisClusterConfig, RedisPoolOptions } from '../../../lib/backends/redis/redis-options.js';
import { startPrivateRedisCluster, type PrivateRedisCluster } from '../../support/redis-topology.js';
import { uniqueName, waitUntil } from './redis-test-support.js';

let cluster: PrivateRedisCluster;
/** One plain client per master, for assertions. */
let admins: Redis[] = [];

beforeAll(async () => {
  cluster = await startPrivateRedisCluster({ masters: 3, nodeTimeoutMs: 1_000 });
  admins = cluster.nodes.map((node) => {
    const admin = new Redis(node.port, node.host, { lazyConnect: true, retryStrategy: () => null });
    admin.on('error', () => undefined);
    return admin;
  });
  await Promise.all(admins.map((admin) => admin.connect()));
}, 30_000);

afterAll(async () => {
  // disconnect() on an ended client arms a timer for a socket already gone.
  for (const admin of admins) if (admin.status !== 'end') admin.disconnect();
  await cluster?.stop();
});

function clusterPool(name: string, extra: Partial<RedisPoolOptions> = {}): RedisPool<Cluster> {
  const options = {
    name,
    backend: 'redis',
    cluster: { nodes: [...cluster.seeds] },
    connection: { connectionName: name },
    pool: { max: 2 },
    ...extra,
  } as RedisPoolOptions & { backend: 'redis'; cluster: RedisClusterConfig };
  // With `cluster`, createPool() types the pool as RedisPool<Cluster>: its clients are Cluster clients.
  return createPool(options);
}

/** Which master (index in cluster.nodes) holds `key` (the others answer MOVED). */
async function ownerOf(key: string): Promise<number> {
  const found = await Promise.all(
    admins.map(async (admin) => (await admin.exists(key).catch(() => 0)) === 1),
  );
  return found.indexOf(true);
}

describe('Redis Cluster', () => {
  it('shared is a Cluster client spreading keys over every master; leases are Cluster clients', async () => {
    const name = uniqueName('cluster');
    const pool = clusterPool(name);
    await pool.start();
    try {
      expect(pool.target).toBe(
        `redis-cluster://${cluster.seeds.map((s) => `${s.host}:${s.port}`).join(',')}`,
      );
      const keys = Array.from({ length: 60 }, (_, i) => `spread:${i}`);
      for (const key of keys) await pool.shared.set(key, key);
      for (const key of keys) expect(await pool.shared.get(key)).toBe(key);
      const owners = await Promise.all(keys.map(ownerOf));
      expect(new Set(owners)).toEqual(new Set([0, 1, 2]));
      expect(pool.shared.nodes('master')).toHaveLength(3);

      const masters = await pool.use((client) => client.nodes('master').length);
      expect(masters).toBe(3);
      expect(pool.metrics().shared.state).toBe('ready');
      const health = await pool.checkHealth({ timeoutMs: 2_000 });
      expect(health.status).toBe('up');

      const list = pool.connections();
      expect(list.find((c) => c.state === 'shared')!.queries).toBe(120);
    } finally {
      await pool.close();
    }
  });

  it('a lease WATCHes and runs MULTI on the node of its key, and comes back unwatched', async () => {
    const pool = clusterPool(uniqueName('cluster-tx')); // max 2: one lease connection, reused each time
    await pool.start();
    try {
      const key = 'tx:{user42}:balance';
      await pool.shared.set(key, '10');
      const owner = admins[await ownerOf(key)]!;

      const committed = await pool.use(async (client) => {
        await client.watch(key);
        const balance = Number(await client.get(key));
        return client
          .multi()
          .set(key, String(balance + 5))
          .exec();
      });
      expect(committed).toEqual([[null, 'OK']]);
      expect(await owner.get(key)).toBe('15');

      // A conflicting write aborts the transaction, as on a single server.
      const aborted = await pool.use(async (client) => {
        await client.watch(key);
        await owner.set(key, '100');
        return client.multi().set(key, '0').exec();
      });
      expect(aborted).toBeNull();
      expect(await owner.get(key)).toBe('100');

      // Released while WATCHing: the reset UNWATCHes on the node, so the next borrower's EXEC isn't aborted
      // by a write that happened between the two leases.
      const leaseId = pool.connections().find((c) => c.state === 'idle')!.id;
      await pool.use((client) => client.watch(key));
      await owner.set(key, '200');
      const next = await pool.use((client) => client.multi().set(key, '1').exec());
      expect(next).toEqual([[null, 'OK']]);
      const lease = pool.connections().find((c) => c.id === leaseId);
      expect(lease).toMatchObject({ state: 'idle', uses: 4 }); // the same connection, cleaned, not replaced

      // MULTI sent on its own would go to a random node: refused, the lease stays usable.
      await expect(pool.use((client) => client.multi({ pipeline: false }))).rejects.toThrow(
        /MULTI is not allowed on a Cluster lease/,
      );
      await expect(pool.use((client) => client.multi({ pipeline: false }))).rejects.toBeInstanceOf(PoolError);
      expect(await pool.use((client) => client.get(key))).toBe('1');
      expect(pool.connections().find((c) => c.id === leaseId)?.state).toBe('idle');

      // A subscription lives on the Cluster client's own subscriber connection, which the pool can't clean:
      // that lease is closed on release, never lent again.
      await pool.use((client) => client.subscribe('news'));
      await waitUntil(() => pool.connections().every((c) => c.id !== leaseId), 'the subscribed lease closed');
      expect(await pool.use((client) => client.get(key))).toBe('1');
    } finally {
      await pool.close();
    }
  });

  it('losing a master: its keys fail typed, then the cluster refuses all keys and health is down, then recovers', async () => {
    const pool = clusterPool(uniqueName('cluster-fail'), {
      queryTimeoutMs: 5_000,
      cluster: { nodes: [...cluster.seeds], options: { maxRedirections: 3 } },
    });
    pool.on('error', () => undefined);
    await pool.start();
    const victimIndex = 0;
    const victim = cluster.nodes[victimIndex]!;
    try {
      const keys = Array.from({ length: 30 }, (_, i) => `fail:${i}`);
      for (const key of keys) await pool.shared.set(key, key);
      const owners = await Promise.all(keys.map(ownerOf));
      const lostKey = keys[owners.indexOf(victimIndex)]!;
      const keptKey = keys[owners.findIndex((owner) => owner !== victimIndex)]!;

      await victim.kill();
      // Until the cluster declares the master failed, the other masters' keys are served...
      expect(await pool.shared.get(keptKey)).toBe(keptKey);
      // ...and the lost master's fail after a few redirections, as PoolUnavailableError.
      const lost = await pool.shared.get(lostKey).catch((error: unknown) => error);
      expect(lost).toBeInstanceOf(PoolUnavailableError);
      expect((lost as Error).message).toMatch(/the Redis Cluster could not serve the command/);

      // Once it is declared failed (cluster-node-timeout 1 s), cluster_state:fail: every key is refused.
      let health = await pool.checkHealth({ timeoutMs: 2_000 });
      await waitUntil(
        async () => {
          health = await pool.checkHealth({ timeoutMs: 2_000 });
          return health.status === 'down';
        },
        'health down',
        15_000,
        100,
      );
      expect(health.status === 'down' && health.error).toMatch(/cluster_state:fail/);
      const refused = await pool.shared.get(keptKey).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(PoolUnavailableError);
      // A new connection fails at once (ioredis' own connect() would wait for the create timeout).
      const fresh = clusterPool(uniqueName('cluster-fresh'), { pool: { max: 2, createTimeoutMs: 8_000 } });
      const startedAt = performance.now();
      await expect(fresh.start()).rejects.toBeInstanceOf(PoolUnavailableError);
      expect(performance.now() - startedAt).toBeLessThan(6_000);
      await fresh.close();

      // The master comes back with its slots: the cluster is ok again, and so is the pool.
      await victim.start();
      await waitUntil(
        async () => (await pool.checkHealth({ timeoutMs: 2_000 })).status === 'up',
        'health up',
        20_000,
        100,
      );
      await waitUntil(
        async () => (await pool.shared.get(lostKey).catch(() => undefined)) === null,
        'the restarted master serving its slots (empty: no persistence)',
        10_000,
        100,
      );
      expect(await pool.shared.get(keptKey)).toBe(keptKey);
      expect(await pool.use((client) => client.get(keptKey))).toBe(keptKey);
    } finally {
      await pool.close();
      if (!victim.isRunning()) await victim.start();
    }
  });
});
