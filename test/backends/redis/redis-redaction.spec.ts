/**
 * A Redis pool configured with a password lets it out nowhere: errors (and cause chains), events, metrics(),
 * checkHealth(), inspect() and JSON of a working pool, of one with the wrong password, and of leased and
 * shared clients. Uses a private redis-server with `requirepass` (set at runtime) and an ACL user.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { dump, expectNoSecret } from '../../support/secrets.js';
import { Redis } from 'ioredis';
import { inspect } from 'node:util';
import { createPool, PoolUnavailableError, type RedisPool } from '../../../lib/index.js';
import { startPrivateRedis, type PrivateServer } from '../../support/private-servers.js';
import { redisUrl, uniqueName } from './redis-test-support.js';

const PASSWORD = 'Hunter2-S3cret/Pa55#word';
const ENCODED = encodeURIComponent(PASSWORD);
const SECRETS = [PASSWORD, ENCODED, 'S3cret'];

let server: PrivateServer;

beforeAll(async () => {
  server = await startPrivateRedis();
  const setup = new Redis(server.port, '127.0.0.1', { lazyConnect: true });
  await setup.connect();
  await setup.acl('SETUSER', 'app', 'on', `>${PASSWORD}`, '~*', '&*', '+@all');
  await setup.config('SET', 'requirepass', PASSWORD);
  setup.disconnect();
});

afterAll(async () => {
  await server.stop();
});

function record(pool: RedisPool, outputs: string[]): void {
  for (const event of ['acquire', 'release', 'create', 'destroy', 'error', 'state'] as const) {
    pool.on(event, (...args: unknown[]) => outputs.push(`${event}: ${args.map((a) => dump(a)).join(' ')}`));
  }
}

describe('credentials never leave a redis pool', () => {
  it('username/password from the URI: working pool, failing commands, timeouts, health, inspect', async () => {
    const name = uniqueName('redact');
    const outputs: string[] = [];
    const uri = redisUrl({ base: server.url, db: 1, user: 'app', password: PASSWORD });
    const pool = createPool({ name, backend: 'redis', uri, queryTimeoutMs: 200, pool: { max: 3 } });
    record(pool, outputs);
    try {
      await pool.start();
      await pool.shared.set('k', 'v');
      outputs.push(dump(await pool.shared.get('k')));
      outputs.push(dump(await pool.shared.hget('k', 'f').catch((e: unknown) => e))); // WRONGTYPE
      outputs.push(
        dump(await pool.shared.eval(`return redis.error_reply('${PASSWORD}')`, 0).catch((e) => e)),
      );
      outputs.push(dump(await pool.use((redis) => redis.blpop('none', 1)).catch((e: unknown) => e)));
      outputs.push(dump(await pool.use((redis) => redis.client('INFO'))));
      const lease = await pool.acquire();
      outputs.push(dump(lease), inspect(lease.connection, { depth: 4, showHidden: true }));
      lease.release();
      outputs.push(inspect(pool.shared, { depth: 4, showHidden: true }));
      outputs.push(dump(await pool.checkHealth({ timeoutMs: 1000 })));
      outputs.push(dump(pool), dump(pool.metrics()), dump(pool.toJSON()), pool.target, String(pool));
      outputs.push(inspect(pool, { customInspect: false, showHidden: true, depth: 8 }));
      expect(pool.target).toMatch(/^redis:\/\/app:\*\*\*@127\.0\.0\.1:\d+\/1$/);
      expect(inspect(pool)).toMatch(new RegExp(`^RedisPool \\{ name: '${name}', backend: 'redis'`));
    } finally {
      await pool.close();
    }
    outputs.push(dump(await pool.checkHealth({ timeoutMs: 200 })));
    outputs.push(dump(await pool.start().catch((e: unknown) => e)));
    expect(outputs.some((o) => o.includes('***'))).toBe(true);
    expectNoSecret(outputs, SECRETS);
  });

  it('a shared client printed while it connects, or after its connect failed, shows no password', async () => {
    const outputs: string[] = [];
    const pools = [
      // Refused (nothing listens on port 1), and the real server with a wrong password.
      createPool({
        name: uniqueName('redact-refused'),
        backend: 'redis',
        connection: { host: '127.0.0.1', port: 1, password: PASSWORD },
        pool: { startup: 'lazy' },
      }),
      createPool({
        name: uniqueName('redact-wrongpass'),
        backend: 'redis',
        uri: redisUrl({ base: server.url, user: 'app', password: `${PASSWORD}x` }),
        pool: { startup: 'lazy' },
      }),
    ];
    try {
      for (const pool of pools) {
        await pool.start();
        const shared = pool.shared; // connecting
        outputs.push(inspect(shared, { depth: 6, showHidden: true }));
        outputs.push(dump(await shared.ping().catch((e: unknown) => e)));
        outputs.push(inspect(shared, { depth: 6, showHidden: true })); // its connect failed
        expect(inspect(shared)).toMatch(/^Redis \{ pool: '.+', role: 'shared', status: '\w+' \}$/);
      }
    } finally {
      await Promise.all(pools.map((pool) => pool.close()));
    }
    expectNoSecret(outputs, SECRETS);
  });

  it('wrong password: start() rejects with the auth error as cause, redacted', async () => {
    const outputs: string[] = [];
    const pools = [
      createPool({
        name: uniqueName('wrongpass-uri'),
        backend: 'redis',
        uri: redisUrl({ base: server.url, user: 'app', password: `${PASSWORD}x` }),
        pool: { createRetry: { initialDelayMs: 10, maxDelayMs: 20 }, startupTimeoutMs: 1000 },
      }),
      createPool({
        name: uniqueName('wrongpass-conn'),
        backend: 'redis',
        connection: { host: '127.0.0.1', port: server.port, password: `${PASSWORD}x` },
        pool: { createRetry: { initialDelayMs: 10, maxDelayMs: 20 }, startupTimeoutMs: 1000 },
      }),
    ];
    try {
      for (const pool of pools) {
        record(pool, outputs);
        const error = await pool.start().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(PoolUnavailableError);
        expect(String((error as Error).cause)).toMatch(/WRONGPASS/);
        outputs.push(dump(error));
        outputs.push(dump(await pool.checkHealth({ timeoutMs: 200 })), dump(pool), pool.target);
      }
    } finally {
      await Promise.all(pools.map((pool) => pool.close()));
    }
    expectNoSecret(outputs, SECRETS);
  });
});
