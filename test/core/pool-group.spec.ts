/**
 * PoolGroup membership: members leave the rotation (marked down, circuit open) and come back when a check
 * passes (re-checked on a timer only while one is down, or on demand), events on every change, the
 * periodic check of all members, close(), and option validation. One test uses real engine Pools whose
 * circuit breakers open on failing connection attempts.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { Pool, PoolConfigError } from '../../lib/core/index.js';
import { PoolGroup, type PoolGroupLoad, type PoolGroupOptions } from '../../lib/core/pool-group.js';
import { FakeFactory, waitFor, type FakeConnection } from '../support/fake-factory.js';
import { sleep } from '../support/wait.js';

class FakeMember {
  load: { -readonly [K in keyof PoolGroupLoad]: PoolGroupLoad[K] } = {
    state: 'ready',
    circuit: 'closed',
    active: 0,
    waiting: 0,
  };
  /** What the group's check sees: healthy or the error it rejects with. */
  healthy = true;
  checks = 0;
  metrics(): PoolGroupLoad {
    return this.load;
  }
}

const groups: PoolGroup<FakeMember>[] = [];
afterEach(() => {
  for (const g of groups.splice(0)) g.close();
});

function makeGroup(
  options: Partial<PoolGroupOptions<FakeMember>> = {},
  count = 3,
): { group: PoolGroup<FakeMember>; members: FakeMember[]; events: string[] } {
  const members = Array.from({ length: count }, () => new FakeMember());
  const g = new PoolGroup<FakeMember>({
    name: 'users',
    balance: 'round-robin',
    members: members.map((pool, i) => ({ name: `r${i}`, pool })),
    check: async (pool) => {
      pool.checks++;
      if (!pool.healthy) throw new Error('connect ECONNREFUSED');
    },
    recheckIntervalMs: 20,
    ...options,
  });
  groups.push(g);
  const events: string[] = [];
  g.on('down', (member, error) => events.push(`down ${member}: ${error.message}`));
  g.on('up', (member) => events.push(`up ${member}`));
  return { group: g, members, events };
}

function picks(g: PoolGroup<FakeMember>, n: number): string[] {
  return Array.from({ length: n }, () => g.pick()?.name ?? '-');
}

describe('PoolGroup membership', () => {
  it('a member marked down leaves the rotation, and comes back when the re-check passes', async () => {
    const { group: g, members, events } = makeGroup();
    members[1]!.healthy = false;
    g.markDown('r1', new Error('read failed'));
    g.markDown('r1', new Error('read failed again')); // idempotent: one event, latest reason
    expect(events).toEqual(['down r1: read failed']);
    expect(g.status('r1')).toMatchObject({ healthy: false, inRotation: false, error: 'read failed again' });
    expect(g.status('r1').downSince).toBeGreaterThan(Date.now() - 1000);
    expect(new Set(picks(g, 30))).toEqual(new Set(['r0', 'r2']));

    // Re-checked every 20 ms while down; failing checks keep it out (with the check's reason).
    await waitFor(() => members[1]!.checks >= 3, 'three re-checks');
    expect(g.status('r1')).toMatchObject({ healthy: false, error: 'connect ECONNREFUSED' });
    expect(new Set(picks(g, 30))).toEqual(new Set(['r0', 'r2']));

    members[1]!.healthy = true;
    await waitFor(() => g.status('r1').healthy, 'r1 back');
    expect(events).toEqual(['down r1: read failed', 'up r1']);
    expect(new Set(picks(g, 30))).toEqual(new Set(['r0', 'r1', 'r2']));

    // No timer runs while every member is up: the check count stops moving.
    const checksWhenUp = members.map((m) => m.checks);
    await sleep(120);
    expect(members.map((m) => m.checks)).toEqual(checksWhenUp);
    // Healthy members were never checked by the re-check timer.
    expect(members[0]!.checks).toBe(0);
    expect(members[2]!.checks).toBe(0);
  });

  it('reports how long a member was down with the up event', async () => {
    const { group: g } = makeGroup({ recheckIntervalMs: 60_000 });
    const downFor: number[] = [];
    g.on('up', (_member, ms) => downFor.push(ms));
    g.markDown('r0', new Error('x'));
    await sleep(50);
    g.markUp('r0');
    g.markUp('r0'); // already up: no second event
    expect(downFor).toHaveLength(1);
    expect(downFor[0]).toBeGreaterThanOrEqual(40);
  });

  it('a member whose circuit opens is taken out at the next pick and comes back once its check passes', async () => {
    const { group: g, members, events } = makeGroup();
    members[0]!.load.circuit = 'open';
    members[0]!.healthy = false;
    expect(new Set(picks(g, 10))).toEqual(new Set(['r1', 'r2']));
    expect(events).toEqual(['down r0: circuit breaker is open']);
    // Half-open is still out: it needs the check (which is what makes the half-open probe happen).
    members[0]!.load.circuit = 'half-open';
    await waitFor(() => members[0]!.checks >= 2, 're-checks');
    expect(g.status('r0').healthy).toBe(false);
    members[0]!.healthy = true;
    members[0]!.load.circuit = 'closed';
    await waitFor(() => g.status('r0').healthy, 'r0 back');
    expect(picks(g, 3).sort()).toEqual(['r0', 'r1', 'r2']);
  });

  it('a check that passes while the circuit is still open does not bring the member back', async () => {
    const { group: g, members } = makeGroup();
    members[2]!.load.circuit = 'open';
    g.markDown('r2', new Error('x'));
    expect(await g.check('r2')).toBe(false);
    expect(g.status('r2')).toMatchObject({ healthy: false, error: 'circuit breaker is open' });
  });

  it('check() on demand: concurrent calls share one check; check() of all marks failures down', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const {
      group: g,
      members,
      events,
    } = makeGroup({
      check: async (pool) => {
        pool.checks++;
        await gate;
        if (!pool.healthy) throw new Error('ping failed');
      },
    });
    members[1]!.healthy = false;
    const all = [g.check('r1'), g.check('r1'), g.check()];
    release();
    const [one, two, every] = await Promise.all(all);
    expect([one, two, every]).toEqual([false, false, false]);
    expect(members.map((m) => m.checks)).toEqual([1, 1, 1]);
    expect(events).toEqual(['down r1: ping failed']);
  });

  it('a check that started before markDown() does not bring the member back; a new check decides', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const {
      group: g,
      members,
      events,
    } = makeGroup({
      check: async (pool) => {
        pool.checks++;
        const healthyWhenAsked = pool.healthy;
        await gate;
        if (!healthyWhenAsked) throw new Error('ping failed');
      },
      recheckIntervalMs: 10_000, // only the checks this test starts
    });
    const early = g.check('r0'); // asks while r0 is still fine
    members[0]!.healthy = false;
    g.markDown('r0', new Error('query failed: ECONNRESET')); // a caller saw it fail meanwhile
    const late = g.check('r0'); // not joined to the early check: it started before the failure
    release();
    expect(await early).toBe(false); // its pass predates the failure: it proves nothing
    expect(await late).toBe(false);
    expect(members[0]!.checks).toBe(2);
    expect(g.status('r0')).toMatchObject({ healthy: false, error: 'ping failed' });
    expect(events).toEqual(['down r0: query failed: ECONNRESET']);
  });

  it('pick(exclude) skips the member that just failed a caller; undefined when no member is left', () => {
    const { group: g } = makeGroup({}, 2);
    expect(new Set(picks(g, 4))).toEqual(new Set(['r0', 'r1']));
    expect(g.pick('r0')?.name).toBe('r1');
    g.markDown('r1', new Error('x'));
    expect(g.pick('r0')).toBeUndefined();
    g.markDown('r0', new Error('y'));
    expect(g.pick()).toBeUndefined();
  });

  it('watch() checks every member periodically; close() stops every timer', async () => {
    const { group: g, members, events } = makeGroup({ checkIntervalMs: 20, recheckIntervalMs: 20 });
    g.watch();
    g.watch(); // idempotent
    await waitFor(() => members.every((m) => m.checks >= 2), 'periodic checks');
    members[2]!.healthy = false;
    await waitFor(() => !g.status('r2').healthy, 'r2 found down by the periodic check');
    expect(events).toEqual(['down r2: connect ECONNREFUSED']);
    g.close();
    const frozen = members.map((m) => m.checks);
    await sleep(100);
    expect(members.map((m) => m.checks)).toEqual(frozen);
    // Marking down after close starts no timer either.
    g.markDown('r0', new Error('x'));
    await sleep(60);
    expect(members[0]!.checks).toBe(frozen[0]);
  });

  it('a paused, draining or closed member is not checked (its lifecycle is not its health)', async () => {
    const { group: g, members } = makeGroup();
    members[0]!.load.state = 'paused';
    members[0]!.healthy = false;
    expect(await g.check('r0')).toBe(true);
    expect(members[0]!.checks).toBe(0);
    expect(g.status('r0')).toMatchObject({ healthy: true, inRotation: false });
    members[0]!.load.state = 'ready';
    expect(await g.check('r0')).toBe(false);
    expect(members[0]!.checks).toBe(1);
  });

  it('without a check function, a member is healthy when it lends with a closed circuit', async () => {
    const { group: g, members } = makeGroup({ check: undefined });
    g.markDown('r0', new Error('x'));
    expect(await g.check('r0')).toBe(true);
    members[1]!.load.circuit = 'open';
    expect(await g.check('r1')).toBe(false);
    expect(g.members().map((m) => m.healthy)).toEqual([true, false, true]);
  });

  it('a throwing listener does not break the pick that reported the change', () => {
    const { group: g, members } = makeGroup();
    g.on('down', () => {
      throw new Error('listener bug');
    });
    members[0]!.load.circuit = 'open';
    expect(g.pick()?.name).toBe('r1');
  });

  // Without a check function the member comes back on its pool's own half-open probe: nobody calls a pool
  // the group routes around, so the probe must go out with nobody waiting.
  it.each([
    [
      'a check function that acquires',
      async (pool: Pool<FakeConnection>) => (await pool.acquire({ timeoutMs: 100 })).release(),
    ],
    ['no check function', undefined],
  ])(
    'works over real engine pools (%s): an open circuit breaker takes a member out, a recovered one comes back',
    async (_, check) => {
      const factories = [new FakeFactory(), new FakeFactory()];
      const pools = factories.map(
        (factory, i) =>
          new Pool<FakeConnection>({
            name: `p${i}`,
            factory,
            acquireTimeoutMs: 200,
            createRetry: { initialDelayMs: 5, maxDelayMs: 5, factor: 1, jitter: 0 },
            circuitBreaker: { failureThreshold: 2, resetTimeoutMs: 50 },
          }),
      );
      const g = new PoolGroup<Pool<FakeConnection>>({
        name: 'engine',
        balance: 'round-robin',
        members: pools.map((pool, i) => ({ name: `p${i}`, pool })),
        ...(check === undefined ? {} : { check }),
        recheckIntervalMs: 20,
      });
      try {
        await Promise.all(pools.map((p) => p.start()));
        factories[1]!.failing = true;
        // Force p1 to need new connections: its idle one is destroyed.
        const lease = await pools[1]!.acquire();
        lease.destroy(new Error('gone'));
        await pools[1]!.acquire().then(
          (l) => l.release(),
          () => undefined,
        );
        await waitFor(() => pools[1]!.metrics().circuit !== 'closed', 'p1 circuit open');
        expect(new Set(picks(g as unknown as PoolGroup<FakeMember>, 10))).toEqual(new Set(['p0']));
        expect(g.status('p1').healthy).toBe(false);
        factories[1]!.failing = false;
        await waitFor(() => g.status('p1').healthy, 'p1 back', 3000);
        expect(pools[1]!.metrics().circuit).toBe('closed');
        expect(new Set(picks(g as unknown as PoolGroup<FakeMember>, 10))).toEqual(new Set(['p0', 'p1']));
      } finally {
        g.close();
        await Promise.all(pools.map((p) => p.close()));
      }
    },
  );
});

describe('PoolGroup options', () => {
  function configError(options: Partial<PoolGroupOptions<FakeMember>>): PoolConfigError {
    try {
      new PoolGroup<FakeMember>({ name: 'users', members: [], ...options });
    } catch (error) {
      expect(error).toBeInstanceOf(PoolConfigError);
      return error as PoolConfigError;
    }
    throw new Error('expected a PoolConfigError');
  }
  const member = (name: string, weight?: number): { name: string; pool: FakeMember; weight?: number } => ({
    name,
    pool: new FakeMember(),
    weight,
  });

  it('names the pool and the field of a bad option', () => {
    expect(configError({ balance: 'fastest' as never })).toMatchObject({
      poolName: 'users',
      field: 'balance',
    });
    expect(configError({ members: [member('a'), member('a')] }).field).toBe('members[1].name');
    expect(configError({ members: [member('a', 0)] }).field).toBe('members[0].weight');
    expect(configError({ members: [member('a', 1.5)] }).field).toBe('members[0].weight');
    expect(configError({ recheckIntervalMs: 0 }).field).toBe('recheckIntervalMs');
    expect(configError({ checkIntervalMs: -1 }).field).toBe('checkIntervalMs');
    // Above the longest a Node timer can wait, setTimeout fires after 1 ms: a busy loop, not a slow check.
    expect(configError({ checkIntervalMs: 2 ** 31 }).message).toMatch(/checkIntervalMs.*2147483647/);
    expect(configError({ recheckIntervalMs: 2 ** 31 }).field).toBe('recheckIntervalMs');
  });

  it('an unknown member name is a typed error listing the members', () => {
    const g = new PoolGroup<FakeMember>({ name: 'users', members: [member('a')] });
    expect(() => g.markDown('b', new Error('x'))).toThrow(/no member named "b" \(members: a\)/);
  });
});
