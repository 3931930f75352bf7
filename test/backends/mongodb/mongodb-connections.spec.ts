/**
 * `MongoPool.connections()`: the driver's own connections (not the lease slots), from its CMAP events, each
 * idle or lent (checked out by an operation) with its checkouts as uses and queries.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { createPool, type MongoPool } from '../../../lib/index.js';
import type { BackendConnectionInfo } from '../../../lib/backends/backend-pool.js';
import { mongoUrl, uniqueDatabase } from './mongo-test-support.js';

const DATABASE = uniqueDatabase('conns');

function poolFor(name: string, max: number): MongoPool {
  return createPool({ name, backend: 'mongodb', uri: mongoUrl(DATABASE), pool: { max } });
}

afterAll(async () => {
  const pool = poolFor('conns-drop', 1);
  await pool.start();
  await pool.db.dropDatabase();
  await pool.close();
});

function totalUses(list: readonly BackendConnectionInfo[]): number {
  return list.reduce((sum, c) => sum + c.uses, 0);
}

describe('MongoPool.connections()', () => {
  it("lists the driver's connections: lent during an operation, idle after, checkouts counted", async () => {
    const pool = poolFor('conns', 3);
    expect(pool.connections()).toEqual([]);
    await pool.start();
    try {
      await pool.use((db) => db.collection('c').insertOne({ _id: 'one', n: 1 } as never));
      const before = pool.connections();
      expect(before.length).toBeGreaterThanOrEqual(1);
      expect(before.length).toBe(pool.metrics().driver.connections);
      for (const c of before) {
        expect(c.state).toBe('idle');
        expect(c.idleMs).toBeGreaterThanOrEqual(0);
        expect(c.queries).toBe(c.uses);
      }

      // The driver emits connectionCheckedOut as the operation takes its connection: our listener ran first.
      const seenDuringOperation: BackendConnectionInfo[][] = [];
      const onCheckedOut = (): void => void seenDuringOperation.push(pool.connections());
      pool.client.on('connectionCheckedOut', onCheckedOut);
      for (let i = 0; i < 5; i++) {
        await pool.use((db) => db.collection('c').findOne({ _id: 'one' } as never));
      }
      pool.client.off('connectionCheckedOut', onCheckedOut);

      expect(seenDuringOperation).toHaveLength(5);
      for (const snapshot of seenDuringOperation) {
        expect(snapshot.filter((c) => c.state === 'lent')).toHaveLength(1);
      }
      const after = pool.connections();
      expect(after.every((c) => c.state === 'idle')).toBe(true);
      expect(totalUses(after)).toBe(totalUses(before) + 5);
      const used = after.filter((c) => c.uses > 0);
      expect(used.length).toBeGreaterThan(0);
      for (const c of used) {
        expect(c.avgQueryMs).toBeGreaterThan(0);
        expect(c.ageMs).toBeGreaterThan(0);
        expect(c.createdAt).toBeLessThanOrEqual(Date.now());
      }
      expect(new Set(after.map((c) => c.id)).size).toBe(after.length);
      expect(JSON.stringify(after)).not.toMatch(/mongodb:|Db|Connection \{/);
    } finally {
      await pool.close();
    }
    expect(pool.connections()).toEqual([]);
  });

  it('shows as many connections as concurrent operations needed, within max', async () => {
    const pool = poolFor('conns-many', 3);
    await pool.start();
    try {
      await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          pool.use((db) => db.collection('c').findOne({ _id: `missing-${i}` } as never)),
        ),
      );
      const list = pool.connections();
      expect(list.length).toBeGreaterThanOrEqual(1);
      expect(list.length).toBeLessThanOrEqual(3);
      expect(totalUses(list)).toBeGreaterThanOrEqual(12);
    } finally {
      await pool.close();
    }
  });
});
