/**
 * Validation of the `cluster` and `sentinel` options: typed PoolConfigError naming the pool and the field,
 * no value echoed, credentials never in `target`, errors or JSON. No server needed.
 */
import { describe, expect, it } from '@jest/globals';
import { inspect } from 'node:util';
import { createPool, PoolConfigError, type RedisPoolOptions } from '../../../lib/index.js';
import { expectNoSecret } from '../../support/secrets.js';

const SECRET = 'T0pology-S3cret#pw';

function configError(options: Record<string, unknown>): PoolConfigError {
  try {
    createPool({ name: 'topo', backend: 'redis', ...options } as RedisPoolOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(PoolConfigError);
    expect((error as PoolConfigError).poolName).toBe('topo');
    expectNoSecret([String((error as Error).message)], [SECRET]);
    return error as PoolConfigError;
  }
  throw new Error('createPool() accepted the options');
}

const CLUSTER = { nodes: ['127.0.0.1:7000', { host: '127.0.0.1', port: 7001 }] };
const SENTINEL = { sentinels: [{ host: '127.0.0.1', port: 26379 }], name: 'mymaster' };

describe('cluster option', () => {
  it('accepts seed nodes as "host:port" or { host, port }, without uri or connection', () => {
    const pool = createPool({ name: 'topo', backend: 'redis', cluster: CLUSTER });
    expect(pool.target).toBe('redis-cluster://127.0.0.1:7000,127.0.0.1:7001');
    expect(pool.state).toBe('starting');
  });

  it('rejects bad nodes, naming the one at fault', () => {
    expect(configError({ cluster: {} })).toMatchObject({ field: 'cluster.nodes' });
    expect(configError({ cluster: { nodes: [] } })).toMatchObject({ field: 'cluster.nodes' });
    expect(configError({ cluster: { nodes: 'a:1' } })).toMatchObject({ field: 'cluster.nodes' });
    expect(configError({ cluster: ['a:1'] })).toMatchObject({ field: 'cluster' });
    expect(configError({ cluster: { nodes: ['a:1', 'a'] } })).toMatchObject({ field: 'cluster.nodes[1]' });
    expect(configError({ cluster: { nodes: ['a:70000'] } })).toMatchObject({ field: 'cluster.nodes[0]' });
    // A URL with credentials in a node is refused without being echoed.
    const withPassword = configError({ cluster: { nodes: [`redis://u:${SECRET}@h:1`] } });
    expect(withPassword).toMatchObject({ field: 'cluster.nodes[0]' });
    expect(withPassword.message).toMatch(/credentials go in "connection"/);
    expect(configError({ cluster: { nodes: [{ host: 'h' }] } })).toMatchObject({
      field: 'cluster.nodes[0].port',
    });
    expect(configError({ cluster: { nodes: [{ host: 'h', port: 1, password: SECRET }] } })).toMatchObject({
      field: 'cluster.nodes[0].password',
    });
    expect(configError({ cluster: { ...CLUSTER, slots: 1 } })).toMatchObject({ field: 'cluster.slots' });
  });

  it('rejects what the pool owns, a database other than 0, uri, and per-server connection fields', () => {
    for (const owned of ['lazyConnect', 'enableOfflineQueue', 'clusterRetryStrategy', 'redisOptions']) {
      expect(configError({ cluster: { ...CLUSTER, options: { [owned]: {} } } })).toMatchObject({
        field: `cluster.options.${owned}`,
      });
    }
    expect(configError({ cluster: { ...CLUSTER, options: { maxRedirections: -1 } } })).toMatchObject({
      field: 'cluster.options.maxRedirections',
    });
    expect(configError({ cluster: CLUSTER, connection: { db: 2 } })).toMatchObject({
      field: 'connection.db',
    });
    expect(configError({ cluster: CLUSTER, uri: `redis://:${SECRET}@127.0.0.1:7000` })).toMatchObject({
      field: 'uri',
    });
    expect(configError({ cluster: CLUSTER, connection: { host: 'x' } })).toMatchObject({
      field: 'connection.host',
    });
    expect(configError({ cluster: CLUSTER, sentinel: SENTINEL })).toMatchObject({ field: 'sentinel' });
    // db 0 is what a cluster has: fine.
    expect(() =>
      createPool({ name: 'topo', backend: 'redis', cluster: CLUSTER, connection: { db: 0 } }),
    ).not.toThrow();
  });

  it('keeps the node password out of target, inspect and JSON', () => {
    const pool = createPool({
      name: 'topo',
      backend: 'redis',
      cluster: CLUSTER,
      connection: { username: 'app', password: SECRET },
    });
    expect(pool.target).toBe('redis-cluster://app@127.0.0.1:7000,127.0.0.1:7001');
    expectNoSecret([inspect(pool, { depth: 6, showHidden: true }), JSON.stringify(pool)], [SECRET]);
  });
});

describe('sentinel option', () => {
  it('accepts sentinels and a master name, without uri or connection', () => {
    const pool = createPool({ name: 'topo', backend: 'redis', sentinel: SENTINEL, connection: { db: 3 } });
    expect(pool.target).toBe('redis-sentinel://127.0.0.1:26379/mymaster/3');
  });

  it('rejects bad input, naming the field', () => {
    expect(configError({ sentinel: { name: 'm' } })).toMatchObject({ field: 'sentinel.sentinels' });
    expect(configError({ sentinel: { sentinels: ['h:1'], name: 'm' } })).toMatchObject({
      field: 'sentinel.sentinels[0]',
    });
    expect(configError({ sentinel: { sentinels: SENTINEL.sentinels } })).toMatchObject({
      field: 'sentinel.name',
    });
    expect(configError({ sentinel: { ...SENTINEL, role: 'replica' } })).toMatchObject({
      field: 'sentinel.role',
    });
    expect(configError({ sentinel: { ...SENTINEL, sentinelPassword: 42 } })).toMatchObject({
      field: 'sentinel.sentinelPassword',
    });
    expect(configError({ sentinel: { ...SENTINEL, retry: 1 } })).toMatchObject({ field: 'sentinel.retry' });
    expect(configError({ sentinel: SENTINEL, uri: 'redis://127.0.0.1:6379' })).toMatchObject({
      field: 'uri',
    });
    // Sentinel mode is the `sentinel` option, not ioredis' connection fields.
    expect(configError({ connection: { sentinels: SENTINEL.sentinels, name: 'm' } })).toMatchObject({
      field: 'connection.sentinels',
    });
  });

  it('keeps both passwords out of target, inspect and JSON', () => {
    const pool = createPool({
      name: 'topo',
      backend: 'redis',
      sentinel: { ...SENTINEL, sentinelPassword: `${SECRET}-sentinel` },
      connection: { password: SECRET },
    });
    expectNoSecret(
      [pool.target, inspect(pool, { depth: 6, showHidden: true }), JSON.stringify(pool)],
      [SECRET, `${SECRET}-sentinel`],
    );
  });
});
