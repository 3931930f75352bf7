/**
 * PoolGroup's balance strategies over members whose load and health the test sets: the exact distribution
 * and order of picks per strategy, and how each behaves when members leave and rejoin the rotation.
 */
import { describe, expect, it } from '@jest/globals';
import { PoolGroup, type PoolGroupLoad } from '../../lib/core/pool-group.js';
import type { BalanceStrategyName } from '../../lib/core/balance-strategy.js';

class FakeMember {
  load: { -readonly [K in keyof PoolGroupLoad]: PoolGroupLoad[K] } = {
    state: 'ready',
    circuit: 'closed',
    active: 0,
    waiting: 0,
  };
  metrics(): PoolGroupLoad {
    return this.load;
  }
}

function group(
  balance: BalanceStrategyName,
  weights: number[] = [1, 1, 1],
  random?: () => number,
): { group: PoolGroup<FakeMember>; members: FakeMember[] } {
  const members = weights.map(() => new FakeMember());
  const names = 'abcdefgh'.split('');
  return {
    members,
    group: new PoolGroup({
      name: 'users',
      balance,
      random,
      members: members.map((pool, i) => ({ name: names[i]!, pool, weight: weights[i] })),
    }),
  };
}

function picks(g: PoolGroup<FakeMember>, n: number): string[] {
  return Array.from({ length: n }, () => g.pick()?.name ?? '-');
}

function counts(list: string[]): Record<string, number> {
  const result: Record<string, number> = {};
  for (const name of list) result[name] = (result[name] ?? 0) + 1;
  return result;
}

describe('PoolGroup balance strategies', () => {
  it('round-robin takes turns in member order', () => {
    const { group: g } = group('round-robin');
    expect(picks(g, 7)).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a']);
    // Continues after 'a': b, c, a, ... so the 299 picks leave 'a' one short.
    expect(counts(picks(g, 299))).toEqual({ a: 99, b: 100, c: 100 });
  });

  it('round-robin skips a member that is out and keeps the others in turn', () => {
    const { group: g } = group('round-robin');
    expect(picks(g, 2)).toEqual(['a', 'b']);
    g.markDown('c', new Error('down'));
    expect(picks(g, 4)).toEqual(['a', 'b', 'a', 'b']);
    g.markUp('c');
    expect(picks(g, 3)).toEqual(['c', 'a', 'b']);
  });

  it('least-active picks the member with the fewest active + waiting, ties taking turns', () => {
    const { group: g, members } = group('least-active');
    expect(picks(g, 6)).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
    members[0]!.load.active = 3;
    members[1]!.load.active = 1;
    members[2]!.load.active = 2;
    expect(picks(g, 3)).toEqual(['b', 'b', 'b']);
    members[1]!.load.waiting = 2; // b: 1 + 2 = 3, c: 2
    expect(g.pick()?.name).toBe('c');
    members[2]!.load.active = 3; // a 3, b 3, c 3: a tie again, turns resume after the last pick (c)
    expect(picks(g, 3)).toEqual(['a', 'b', 'c']);
  });

  it('least-active follows the load as it changes (simulated in-flight work)', () => {
    const { group: g, members } = group('least-active');
    // Each pick takes a connection; the loads stay within one of each other.
    for (let i = 0; i < 30; i++) {
      const chosen = g.pick()!;
      members['abc'.indexOf(chosen.name)]!.load.active++;
      const loads = members.map((m) => m.load.active);
      expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
    }
    expect(members.map((m) => m.load.active)).toEqual([10, 10, 10]);
  });

  it('random uses the injected source and is uniform with Math.random', () => {
    const values = [0, 0.34, 0.99, 0.5];
    const { group: g } = group('random', [1, 1, 1], () => values.shift() ?? 0);
    expect(picks(g, 4)).toEqual(['a', 'b', 'c', 'b']);
    const { group: uniform } = group('random');
    const n = 6000;
    const result = counts(picks(uniform, n));
    for (const name of ['a', 'b', 'c']) {
      expect(result[name]).toBeGreaterThan((n / 3) * 0.85);
      expect(result[name]).toBeLessThan((n / 3) * 1.15);
    }
  });

  it('weighted is smooth weighted round-robin: exact shares, interleaved', () => {
    const { group: g } = group('weighted', [5, 1, 1]);
    expect(picks(g, 7)).toEqual(['a', 'a', 'b', 'a', 'c', 'a', 'a']);
    expect(counts(picks(g, 700))).toEqual({ a: 500, b: 100, c: 100 });
  });

  it('weighted shares the load among the members still in the rotation by their weights', () => {
    const { group: g } = group('weighted', [3, 2, 1]);
    g.markDown('a', new Error('down'));
    expect(counts(picks(g, 300))).toEqual({ b: 200, c: 100 });
    g.markUp('a');
    expect(counts(picks(g, 600))).toEqual({ a: 300, b: 200, c: 100 });
  });

  it('every strategy skips members that are not lending and returns undefined when none is left', () => {
    for (const balance of ['least-active', 'round-robin', 'random', 'weighted'] as const) {
      const { group: g, members } = group(balance);
      members[0]!.load.state = 'paused';
      members[1]!.load.state = 'draining';
      expect(new Set(picks(g, 20))).toEqual(new Set(['c']));
      expect(g.pick('c')).toBeUndefined();
      members[2]!.load.state = 'closed';
      expect(g.pick()).toBeUndefined();
      // Lifecycle is not health: nobody was marked down.
      expect(g.members().map((m) => m.healthy)).toEqual([true, true, true]);
      expect(g.members().map((m) => m.inRotation)).toEqual([false, false, false]);
      g.close();
    }
  });
});
