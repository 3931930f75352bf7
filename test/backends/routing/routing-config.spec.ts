/**
 * Validation of the routing options (`replicas`, `balance`, `readFallback`, `healthCheck`, `shards`,
 * `shardKey`): createPool() throws PoolConfigError naming the pool the user configured and the nested
 * field, never echoing a value (replica and shard URIs carry passwords). Nothing here connects.
 */
import { describe, expect, it } from '@jest/globals';
import { inspect } from 'node:util';
import {
  BackendPool,
  createPool,
  PostgresPool,
  type BackendPoolOptions,
} from '../../../lib/backends/index.js';
import { PoolConfigError } from '../../../lib/core/index.js';
import { ShardedPool } from '../../../lib/backends/routing/sharded-pool.js';

const SECRET = 'Routing-Secret-Pw-91f3';
const PRIMARY = `postgres://app:${SECRET}@127.0.0.1:1/app`;
const REPLICA = `postgres://app:${SECRET}@127.0.0.1:2/app`;

function configError(options: Record<string, unknown>): PoolConfigError {
  try {
    createPool(options as unknown as BackendPoolOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(PoolConfigError);
    expect((error as Error).message).not.toContain(SECRET);
    return error as PoolConfigError;
  }
  throw new Error('expected a PoolConfigError');
}

const base = { name: 'users', backend: 'postgres', uri: PRIMARY };

/** What `process.env.X` is when X is unset: its type is `string | undefined`, as the options accept. */
const UNSET_ENV: string | undefined = process.env['NESTJS_POOL_TEST_SURELY_UNSET_URL'];

/** The PoolConfigError createPool() threw (typed options: this must compile without a cast). */
function thrownBy(create: () => unknown): PoolConfigError {
  try {
    create();
  } catch (error) {
    expect(error).toBeInstanceOf(PoolConfigError);
    return error as PoolConfigError;
  }
  throw new Error('expected a PoolConfigError');
}

describe('replica options', () => {
  it.each(
    [
      [{ replicas: REPLICA }, 'replicas'],
      [{ replicas: [42] }, 'replicas[0]'],
      [{ replicas: [REPLICA, { weight: 2 }] }, 'replicas[1].uri'],
      [{ replicas: [{ uri: REPLICA, weight: 0 }] }, 'replicas[0].weight'],
      [{ replicas: [{ uri: REPLICA, weight: 2.5 }] }, 'replicas[0].weight'],
      [{ replicas: [{ uri: REPLICA, wieght: 2 }] }, 'replicas[0].wieght'],
      [{ replicas: [{ uri: REPLICA, name: 'a b' }] }, 'replicas[0].name'],
      [
        {
          replicas: [
            { uri: REPLICA, name: 'eu' },
            { uri: REPLICA, name: 'eu' },
          ],
        },
        'replicas[1].name',
      ],
      [{ replicas: ['mysql://app:x@h/db'] }, 'replicas[0].uri'],
      [{ replicas: ['not a uri'] }, 'replicas[0].uri'],
      [{ replicas: [{ uri: REPLICA, pool: { min: 5, max: 2 } }] }, 'replicas[0].pool.min'],
      [{ replicas: [{ uri: REPLICA, connection: { port: 'x' } }] }, 'replicas[0].connection.port'],
      [{ replicas: [REPLICA], balance: 'fastest' }, 'balance'],
      [{ replicas: [REPLICA], readFallback: 'replica' }, 'readFallback'],
      [{ replicas: [], readFallback: 'fail' }, 'readFallback'],
      [{ replicas: [REPLICA], healthCheck: { intervalMs: -1 } }, 'healthCheck.intervalMs'],
      [{ replicas: [REPLICA], healthCheck: { recheckIntervalMs: 0 } }, 'healthCheck.recheckIntervalMs'],
      [{ replicas: [REPLICA], healthCheck: { timeout: 5 } }, 'healthCheck.timeout'],
      [{ replicas: [REPLICA], healthCheck: 'fast' }, 'healthCheck'],
      [{ replica: [REPLICA] }, 'replica'],
    ].map(([extra, field]) => [field, extra]) as [string, Record<string, unknown>][],
  )('field %s', (field, extra) => {
    const error = configError({ ...base, ...extra });
    expect(error.poolName).toBe('users');
    expect(error.field).toBe(field);
  });

  it('replicas need a backend whose pool routes reads (redis and mongodb do not yet)', () => {
    const error = configError({
      name: 'cache',
      backend: 'redis',
      uri: 'redis://127.0.0.1:6379',
      replicas: ['redis://127.0.0.1:6380'],
    });
    expect(error).toMatchObject({ poolName: 'cache', field: 'replicas' });
    expect(error.message).toMatch(/not supported by the "redis" backend/);
  });

  it('builds one pool per server under one name, inheriting connection and pool options', () => {
    const pool = createPool({
      ...base,
      backend: 'postgres',
      connection: { application_name: 'np_routing_config' },
      pool: { max: 3 },
      replicas: [REPLICA, { name: 'eu', uri: REPLICA, weight: 3, pool: { max: 7 } }],
      balance: 'weighted',
    });
    expect(pool).toBeInstanceOf(PostgresPool);
    const set = pool.replicaSet!;
    expect(set.replicaNames).toEqual(['replica[0]', 'eu']);
    expect(set.group.balance).toBe('weighted');
    expect(set.group.members().map((m) => m.weight)).toEqual([1, 3]);
    expect(set.group.pool('replica[0]').name).toBe('users.replica[0]');
    expect(set.group.pool('eu').name).toBe('users.replica[eu]');
    const members = (pool.metrics() as { members: Record<string, { max: number; role: string }> }).members;
    expect(Object.keys(members)).toEqual(['primary', 'replica[0]', 'eu']);
    expect(members['primary']).toMatchObject({ role: 'primary', max: 3 });
    expect(members['replica[0]']).toMatchObject({ role: 'replica', max: 3 });
    expect(members['eu']).toMatchObject({ role: 'replica', max: 7 });
    // Nothing shows a password: metrics, JSON, inspect, the replicas' targets.
    for (const text of [
      JSON.stringify(pool),
      JSON.stringify(pool.metrics()),
      inspect(pool, { depth: 5 }),
      inspect(set, { depth: 5 }),
      set.group.pool('eu').target,
    ]) {
      expect(text).not.toContain(SECRET);
    }
  });

  it('a replica URI from an unset environment variable compiles and is refused, naming the pool and the field', () => {
    expect(UNSET_ENV).toBeUndefined();
    const error = thrownBy(() =>
      createPool({ name: 'users', backend: 'postgres', uri: PRIMARY, replicas: [REPLICA, UNSET_ENV] }),
    );
    expect(error).toMatchObject({ poolName: 'users', field: 'replicas[1].uri' });
    expect(error.message).toBe(
      'Pool "users": invalid option "replicas[1].uri": must be a URI string or an object with "uri" ' +
        '(got undefined; is its environment variable set?)',
    );
    for (const [value, got] of [
      ['', 'an empty string'],
      ['  ', 'a blank string'],
    ]) {
      const empty = thrownBy(() =>
        createPool({ name: 'users', backend: 'postgres', uri: PRIMARY, replicas: [value] }),
      );
      expect(empty).toMatchObject({ poolName: 'users', field: 'replicas[0].uri' });
      expect(empty.message).toContain(`(got ${got}; is its environment variable set?)`);
    }
    // In the object form, an undefined `uri` (and no `connection`) is refused the same way.
    const inObject = thrownBy(() =>
      createPool({ name: 'users', backend: 'postgres', uri: PRIMARY, replicas: [{ uri: UNSET_ENV }] }),
    );
    expect(inObject).toMatchObject({ poolName: 'users', field: 'replicas[0].uri' });
  });

  it('without replicas, `read` is there and routing options are accepted (one config for both setups)', () => {
    const pool = createPool({ ...base, backend: 'postgres', balance: 'round-robin', readFallback: 'fail' });
    expect(pool.replicaSet).toBeUndefined();
    expect(typeof pool.read.query).toBe('function');
    expect(pool.metrics()).not.toHaveProperty('members');
  });
});

describe('shard options', () => {
  const shards = { a: `postgres://app:${SECRET}@127.0.0.1:3/a`, b: { uri: REPLICA } };

  it.each(
    [
      [{ shards: 'a' }, 'shards'],
      [{ shards: {} }, 'shards'],
      [{ shards, uri: PRIMARY }, 'uri'],
      [{ shards, replicas: [REPLICA] }, 'replicas'],
      [{ shards: { 'a b': REPLICA } }, 'shards.a b'],
      [{ shards: { a: 42 } }, 'shards.a'],
      [{ shards: { a: { pool: { max: 2 } } } }, 'shards.a.uri'],
      [{ shards: { a: { uri: REPLICA, name: 'x' } } }, 'shards.a.name'],
      [{ shards: { a: { uri: REPLICA, pool: { max: 0 } } } }, 'shards.a.pool.max'],
      [
        { shards: { a: { uri: REPLICA, replicas: [{ uri: REPLICA, weight: -1 }] } } },
        'shards.a.replicas[0].weight',
      ],
      [{ shards: { a: 'redis://x' } }, 'shards.a.uri'],
      [{ shards, shardKey: 'a' }, 'shardKey'],
      [{ shardKey: () => 'a' }, 'shardKey'],
      [{ shards, balance: 'fastest' }, 'balance'],
      [{ shards, extra: true }, 'extra'],
    ].map(([extra, field]) => [field, extra]) as [string, Record<string, unknown>][],
  )('field %s', (field, extra) => {
    const { uri: _uri, ...rest } = base;
    const error = configError({ ...rest, ...extra });
    expect(error.poolName).toBe('users');
    expect(error.field).toBe(field);
  });

  it('builds a ShardedPool of one pool per shard (replicas inside a shard included)', () => {
    const orders = createPool({
      name: 'orders',
      backend: 'postgres',
      pool: { max: 4 },
      shards: {
        a: `postgres://app:${SECRET}@127.0.0.1:3/a`,
        b: { uri: REPLICA, replicas: [REPLICA], pool: { max: 2 } },
      },
    });
    expect(orders).toBeInstanceOf(ShardedPool);
    expect(orders.names).toEqual(['a', 'b']);
    expect(orders.shard('a')).toBeInstanceOf(PostgresPool);
    expect(orders.shard('a').name).toBe('orders.shard[a]');
    expect(orders.shard('b').replicaSet?.replicaNames).toEqual(['replica[0]']);
    expect(orders.shard('b').replicaSet?.group.pool('replica[0]').name).toBe('orders.shard[b].replica[0]');
    const metrics = orders.metrics();
    expect(metrics).toMatchObject({ name: 'orders', max: 6, size: 0 });
    expect(metrics.shards['a']).toMatchObject({ name: 'orders.shard[a]', max: 4 });
    expect(metrics.shards['b']).toMatchObject({ name: 'orders.shard[b]', max: 2 });
    for (const text of [JSON.stringify(orders), inspect(orders), orders.target]) {
      expect(text).not.toContain(SECRET);
    }
    expect(orders.target).toContain('a=postgres://app:***@127.0.0.1:3/a');
  });

  it('a shard URI from an unset environment variable compiles and is refused, naming the pool and the field', () => {
    const error = thrownBy(() =>
      createPool({ name: 'orders', backend: 'postgres', shards: { a: REPLICA, b: UNSET_ENV } }),
    );
    expect(error).toMatchObject({ poolName: 'orders', field: 'shards.b.uri' });
    expect(error.message).toBe(
      'Pool "orders": invalid option "shards.b.uri": must be a URI string or an object of pool options ' +
        '(got undefined; is its environment variable set?)',
    );
    const empty = thrownBy(() => createPool({ name: 'orders', backend: 'redis', shards: { a: '' } }));
    expect(empty).toMatchObject({ poolName: 'orders', field: 'shards.a.uri' });
    expect(empty.message).toContain('(got an empty string; is its environment variable set?)');
    // A shard's replicas too, with the nested field.
    const nestedReplica = thrownBy(() =>
      createPool({
        name: 'orders',
        backend: 'postgres',
        shards: { a: { uri: REPLICA, replicas: [UNSET_ENV] } },
      }),
    );
    expect(nestedReplica).toMatchObject({ poolName: 'orders', field: 'shards.a.replicas[0].uri' });
  });

  it('a registered backend is sharded the same way', () => {
    const orders = createPool({
      name: 'kv',
      backend: 'redis',
      shards: { one: 'redis://127.0.0.1:1', two: 'redis://127.0.0.1:2' },
    });
    expect(orders.names).toEqual(['one', 'two']);
    expect(orders.shard('two')).toBeInstanceOf(BackendPool);
  });
});
