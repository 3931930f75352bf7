/**
 * The built-in shard choice (rendezvous hashing): stable, even, independent of listing order, and adding
 * a shard moves about 1/n of the keys, all of them to the new shard (removing one moves only its keys).
 */
import { describe, expect, it } from '@jest/globals';
import { fnv1a32, RendezvousHash } from '../../../lib/backends/routing/shard-hash.js';

const KEYS = Array.from({ length: 10_000 }, (_, i) => `customer-${i}`);

function assign(names: string[]): Map<string, string> {
  const hash = new RendezvousHash(names);
  return new Map(KEYS.map((key) => [key, hash.pick(key)]));
}

describe('rendezvous shard hashing', () => {
  it('FNV-1a matches the reference values (stable across processes and versions)', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('spreads keys evenly (each of 4 shards within 10% of its share)', () => {
    const counts = new Map<string, number>();
    for (const shard of assign(['a', 'b', 'c', 'd']).values())
      counts.set(shard, (counts.get(shard) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual(['a', 'b', 'c', 'd']);
    for (const n of counts.values()) {
      expect(n).toBeGreaterThan((KEYS.length / 4) * 0.9);
      expect(n).toBeLessThan((KEYS.length / 4) * 1.1);
    }
  });

  it('numeric-looking and sequential keys spread too', () => {
    const hash = new RendezvousHash(['s1', 's2', 's3']);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 9000; i++) {
      const shard = hash.pick(String(i));
      counts[shard] = (counts[shard] ?? 0) + 1;
    }
    for (const n of Object.values(counts)) expect(Math.abs(n - 3000)).toBeLessThan(300);
  });

  it('does not depend on the order shards are listed in', () => {
    const one = assign(['a', 'b', 'c', 'd']);
    const other = assign(['d', 'b', 'a', 'c']);
    expect([...one].filter(([key, shard]) => other.get(key) !== shard)).toEqual([]);
  });

  it('adding a shard moves about 1/n of the keys, all to the new shard', () => {
    const before = assign(['a', 'b', 'c', 'd']);
    const after = assign(['a', 'b', 'c', 'd', 'e']);
    const moved = KEYS.filter((key) => before.get(key) !== after.get(key));
    expect(moved.every((key) => after.get(key) === 'e')).toBe(true);
    expect(moved.length / KEYS.length).toBeGreaterThan(0.2 * 0.85);
    expect(moved.length / KEYS.length).toBeLessThan(0.2 * 1.15);
  });

  it('removing a shard moves only its own keys', () => {
    const before = assign(['a', 'b', 'c', 'd']);
    const after = assign(['a', 'b', 'd']);
    const moved = KEYS.filter((key) => before.get(key) !== 'c' && after.get(key) !== before.get(key));
    expect(moved).toEqual([]);
  });
});
