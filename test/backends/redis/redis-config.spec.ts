/**
 * What createPool() and start() say about bad Redis options: typed errors naming the pool and the field,
 * never echoing a URI or a password.
 */
import { describe, expect, it } from '@jest/globals';
import {
  createPool,
  PoolConfigError,
  PoolUnavailableError,
  RedisPool,
  type RedisPoolOptions,
} from '../../../lib/index.js';
import { findFreePort } from '../../support/private-servers.js';
import { redisUrl, TEST_DB, uniqueName } from './redis-test-support.js';

function configError(options: Record<string, unknown>): PoolConfigError {
  try {
    createPool({ name: 'cfg', backend: 'redis', ...options } as RedisPoolOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(PoolConfigError);
    return error as PoolConfigError;
  }
  throw new Error('createPool() accepted the options');
}

describe('option validation', () => {
  it('rejects malformed URIs, other schemes and non-numeric database paths without echoing them', () => {
    expect(configError({ uri: 'redis://:s3cretpw@[bad' })).toMatchObject({ field: 'uri' });
    expect(configError({ uri: 'redis://:s3cretpw@[bad' }).message).not.toContain('s3cretpw');
    expect(configError({ uri: 'http://127.0.0.1:6379' }).message).toMatch(/redis:\/\/ or rediss:\/\//);
    expect(configError({ uri: 'redis://127.0.0.1:6379/cache' }).message).toMatch(/database number/);
    expect(configError({ uri: 'redis://127.0.0.1:6379/0?enableOfflineQueue=true' })).toMatchObject({
      field: 'uri',
    });
    expect(configError({})).toMatchObject({ field: 'uri' });
  });

  it('rejects unknown options, bad connection options and what the pool owns', () => {
    expect(configError({ uri: redisUrl(), cache: true }).message).toMatch(
      /invalid option "cache": unknown option/,
    );
    expect(configError({ uri: redisUrl(), connection: 'redis://x' })).toMatchObject({ field: 'connection' });
    for (const owned of ['retryStrategy', 'enableOfflineQueue', 'lazyConnect', 'commandTimeout', 'monitor']) {
      expect(configError({ uri: redisUrl(), connection: { [owned]: 1 } })).toMatchObject({
        field: `connection.${owned}`,
      });
    }
    expect(configError({ connection: { port: '6379' } })).toMatchObject({ field: 'connection.port' });
    expect(configError({ connection: { password: 42 } })).toMatchObject({ field: 'connection.password' });
    expect(configError({ connection: { db: -1 } })).toMatchObject({ field: 'connection.db' });
    expect(configError({ uri: redisUrl(), shared: 'yes' })).toMatchObject({ field: 'shared' });
    expect(configError({ uri: redisUrl(), pool: { max: 1 } })).toMatchObject({ field: 'pool.max' });
    expect(configError({ uri: redisUrl(), pool: { min: 3, max: 2 } }).message).toMatch(/\(min 3, max 2\)/);
    expect(configError({ uri: redisUrl(), queryTimeoutMs: '100' })).toMatchObject({
      field: 'queryTimeoutMs',
    });
  });

  it('returns a RedisPool with a redacted target, the shared client counted in max', () => {
    const pool = createPool({
      name: 'cfg-ok',
      backend: 'redis',
      uri: 'rediss://app:pa55word@cache.internal:6380/4',
      pool: { min: 2, max: 5 },
    });
    expect(pool).toBeInstanceOf(RedisPool);
    expect(pool.target).toBe('rediss://app:***@cache.internal:6380/4');
    expect(pool.metrics()).toMatchObject({ min: 1, max: 4, shared: { state: 'idle' } });
    const viaConnection = createPool({
      name: 'cfg-conn',
      backend: 'redis',
      connection: { host: 'h', port: 7000, username: 'u', password: 'pa55word', db: 3, tls: {} },
      shared: false,
    });
    expect(viaConnection.target).toBe('rediss://u@h:7000/3');
    expect(viaConnection.metrics()).toMatchObject({ max: 10, shared: { state: 'disabled' } });
    expect(() => pool.shared).toThrow(/start\(\)/);
  });

  it('accepts the validation options (the Redis factory pings), with or without the shared client', () => {
    for (const shared of [true, false]) {
      for (const extra of [{ keepaliveMs: 30_000 }, { validateOnBorrow: true }, { testOnReturn: true }]) {
        const pool = createPool({
          name: 'cfg-validate',
          backend: 'redis',
          uri: 'redis://cache.internal:6379',
          shared,
          pool: { min: 2, max: 5, ...extra },
        });
        // The shared client's share of the budget is still taken off the leases'.
        expect(pool.metrics()).toMatchObject(shared ? { min: 1, max: 4 } : { min: 2, max: 5 });
      }
    }
  });
});

describe('start()', () => {
  it('a refused port: fail-fast start rejects with PoolUnavailableError, lazy start resolves', async () => {
    const port = await findFreePort();
    const failFast = createPool({
      name: uniqueName('refused'),
      backend: 'redis',
      uri: redisUrl({ port }),
      pool: { startupTimeoutMs: 2000, createRetry: { initialDelayMs: 10, maxDelayMs: 20 } },
    });
    const error = await failFast.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolUnavailableError);
    expect(String((error as Error).cause)).toMatch(/ECONNREFUSED/);
    await failFast.close();

    const lazy = createPool({
      name: uniqueName('refused-lazy'),
      backend: 'redis',
      uri: redisUrl({ port }),
      pool: { startup: 'lazy', acquireTimeoutMs: 300 },
    });
    await expect(lazy.start()).resolves.toBeUndefined();
    await expect(lazy.shared.ping()).rejects.toBeInstanceOf(PoolUnavailableError);
    await expect(lazy.use((redis) => redis.ping())).rejects.toMatchObject({ name: 'PoolTimeoutError' });
    await lazy.close();
  });

  it('honours the database of the URI over connection.db', async () => {
    const pool = createPool({
      name: uniqueName('db'),
      backend: 'redis',
      uri: redisUrl({ db: TEST_DB }),
      connection: { db: 1 },
    });
    await pool.start();
    try {
      expect(await pool.use((redis) => redis.client('INFO'))).toMatch(new RegExp(`db=${TEST_DB}\\b`));
      expect(await pool.shared.client('INFO')).toMatch(new RegExp(`db=${TEST_DB}\\b`));
    } finally {
      await pool.close();
    }
  });
});
