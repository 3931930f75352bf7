/**
 * PoolModule with pools that route over several servers, against real ones: `users` (a primary on the
 * shared PostgreSQL, a read replica on a private instance) and `orders` (shard `a` on the shared server,
 * shard `b` on the private one). Which server answered is read back from the server itself
 * (`current_setting('port')`); which sessions are open, from pg_stat_activity on each server.
 *
 * Asserted: injection keeps working (`PostgresPool` with `read`, `ShardedPool<PostgresPool>`), bootstrap
 * retries a shard that is unreachable at first, app.close() leaves no session on either server, and the
 * replica leaving and rejoining the read rotation is logged once each, in the pool's context.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Injectable, type LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type pg from 'pg';
import { getPoolToken, InjectPool, PoolManager, PoolModule, PostgresPool } from '../../lib/index.js';
import { ShardedPool } from '../../lib/backends/routing/sharded-pool.js';
import { FaultProxy } from '../../lib/testing/index.js';
import { startPrivatePostgres, type PrivateServer } from '../support/private-servers.js';
import {
  adminClient,
  countBackends,
  DATABASE_URL,
  uniqueName,
  waitUntil,
} from '../backends/postgres/pg-test-support.js';

const SECRET = 'R0uting-Nest-Secret';
const SHARED_PORT = Number(new URL(DATABASE_URL).port || 5432);
const WHO = "SELECT current_setting('port')::int AS port";

let server: PrivateServer;
let sharedAdmin: pg.Client;
let privateAdmin: pg.Client;

beforeAll(async () => {
  server = await startPrivatePostgres();
  sharedAdmin = await adminClient();
  privateAdmin = await adminClient(server.url);
}, 60_000);

afterAll(async () => {
  await sharedAdmin?.end();
  await privateAdmin?.end();
  await server?.stop();
});

function uri(host: string, port: number, database: string, app: string): string {
  const url = new URL(`postgres://postgres@${host}:${port}/${database}`);
  url.password = SECRET; // trust auth ignores it
  url.searchParams.set('application_name', app);
  return url.toString();
}

function sharedUri(app: string): string {
  const shared = new URL(DATABASE_URL);
  return uri(shared.hostname, SHARED_PORT, shared.pathname.slice(1) || 'test', app);
}

/** Sessions of `app` on both servers. */
async function sessions(app: string): Promise<{ shared: number; private: number }> {
  return {
    shared: await countBackends(sharedAdmin, app),
    private: await countBackends(privateAdmin, app),
  };
}

const TIGHT_POOL = {
  acquireTimeoutMs: 1000,
  createTimeoutMs: 500,
  createRetry: { initialDelayMs: 20, maxDelayMs: 100, factor: 2, jitter: 0 },
  circuitBreaker: { failureThreshold: 3, resetTimeoutMs: 200 },
};

@Injectable()
class Repositories {
  constructor(
    @InjectPool('users') readonly users: PostgresPool,
    @InjectPool('orders') readonly orders: ShardedPool<PostgresPool>,
  ) {}

  async readPort(): Promise<number> {
    return (await this.users.read.query<{ port: number }>(WHO)).rows[0]!.port;
  }

  async writePort(): Promise<number> {
    return (await this.users.query<{ port: number }>(WHO)).rows[0]!.port;
  }

  async orderPort(customer: string): Promise<number> {
    return (await this.orders.forKey(customer).query<{ port: number }>(WHO)).rows[0]!.port;
  }
}

/** A LoggerService that keeps every line with its level and context. */
function recordingLogger(): {
  logger: LoggerService;
  lines: { level: string; message: string; context: string }[];
} {
  const lines: { level: string; message: string; context: string }[] = [];
  const record =
    (level: string) =>
    (message: unknown, ...rest: unknown[]): void => {
      lines.push({ level, message: String(message), context: String(rest.at(-1)) });
    };
  return { logger: { log: record('log'), warn: record('warn'), error: record('error') }, lines };
}

describe('PoolModule with replicas and shards', () => {
  it('injects both, routes reads and shards to their servers, and app.close() leaves no session on either', async () => {
    const usersApp = uniqueName('nestrepl');
    const ordersApp = uniqueName('nestshard');
    const moduleRef = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot([
          {
            name: 'users',
            backend: 'postgres',
            uri: sharedUri(usersApp),
            replicas: [uri(server.host, server.port, 'postgres', usersApp)],
            healthCheck: { intervalMs: 0 },
            pool: { min: 1, max: 3 },
            logger: false,
          },
          {
            name: 'orders',
            backend: 'postgres',
            pool: { min: 1, max: 3 },
            shards: { a: sharedUri(ordersApp), b: uri(server.host, server.port, 'postgres', ordersApp) },
            shardKey: (key) => (String(key).startsWith('eu-') ? 'b' : 'a'),
            logger: false,
          },
        ]),
      ],
      providers: [Repositories],
    }).compile();
    await moduleRef.init();
    const repositories = moduleRef.get(Repositories);
    expect(repositories.users).toBeInstanceOf(PostgresPool);
    expect(repositories.orders).toBeInstanceOf(ShardedPool);
    expect(moduleRef.get(getPoolToken('orders'))).toBe(repositories.orders);
    const manager = moduleRef.get(PoolManager);
    expect(manager.names().sort()).toEqual(['orders', 'users']);
    expect(manager.get<ShardedPool<PostgresPool>>('orders').names).toEqual(['a', 'b']);

    await expect(repositories.readPort()).resolves.toBe(server.port);
    await expect(repositories.writePort()).resolves.toBe(SHARED_PORT);
    await expect(repositories.orderPort('eu-42')).resolves.toBe(server.port);
    await expect(repositories.orderPort('us-7')).resolves.toBe(SHARED_PORT);

    // Every member opened its `min` at bootstrap, on its own server.
    await waitUntil(async () => {
      const [users, orders] = await Promise.all([sessions(usersApp), sessions(ordersApp)]);
      return users.shared >= 1 && users.private >= 1 && orders.shared >= 1 && orders.private >= 1;
    }, 'every member open');
    expect(Object.keys(manager.metrics()['orders']!)).toContain('shards');
    const health = await manager.checkHealth({ timeoutMs: 1000 });
    expect(health['users']!.status).toBe('up');
    expect(health['orders']!.status).toBe('up');

    await moduleRef.close();
    expect(repositories.users.replicaSet!.group.pool('replica[0]').state).toBe('closed');
    expect(repositories.orders.shard('a').state).toBe('closed');
    expect(repositories.orders.shard('b').state).toBe('closed');
    await waitUntil(async () => {
      const [users, orders] = await Promise.all([sessions(usersApp), sessions(ordersApp)]);
      return users.shared + users.private + orders.shared + orders.private === 0;
    }, 'no session left on either server');
  });

  it('retries bootstrap while a shard is unreachable, then starts with every shard', async () => {
    const ordersApp = uniqueName('nestretry');
    const proxy = new FaultProxy({ target: { host: server.host, port: server.port } });
    await proxy.start();
    await proxy.refuse();
    const { logger, lines } = recordingLogger();
    try {
      // Providers (and so the pools) are created by compile(): heal the shard once a retry was logged.
      const heal = waitUntil(
        () => lines.some((line) => line.message.includes('retrying')),
        'a retry to be logged',
      ).then(() => proxy.pass());
      const moduleRef = await Test.createTestingModule({
        imports: [
          PoolModule.forRoot({
            name: 'orders',
            backend: 'postgres',
            pool: { ...TIGHT_POOL, min: 1, max: 2 },
            shards: { a: sharedUri(ordersApp), b: uri(proxy.host, proxy.port, 'postgres', ordersApp) },
            retryAttempts: 20,
            retryDelayMs: 150,
            logger,
          }),
        ],
      }).compile();
      await moduleRef.init();
      await heal;
      const orders = moduleRef.get<ShardedPool<PostgresPool>>(getPoolToken('orders'));
      await expect(orders.shard('b').query(WHO)).resolves.toMatchObject({ rows: [{ port: server.port }] });
      expect(lines.filter((line) => line.message.includes('retrying')).length).toBeGreaterThanOrEqual(1);
      // The shard's own lines carry its name, in the registered pool's context.
      expect(lines.every((line) => line.context === 'PoolModule:orders')).toBe(true);
      expect(lines.some((line) => line.message.startsWith('orders.shard[b]: cannot connect'))).toBe(true);
      expect(JSON.stringify(lines)).not.toContain(SECRET);
      await moduleRef.close();
      await waitUntil(async () => {
        const counts = await sessions(ordersApp);
        return counts.shared + counts.private === 0;
      }, 'no session left');
    } finally {
      await proxy.stop();
    }
  });

  it('logs a replica leaving the read rotation once, and coming back once', async () => {
    const usersApp = uniqueName('nestlog');
    const proxy = new FaultProxy({ target: { host: server.host, port: server.port } });
    await proxy.start();
    const { logger, lines } = recordingLogger();
    try {
      const moduleRef = await Test.createTestingModule({
        imports: [
          PoolModule.forRoot({
            name: 'users',
            backend: 'postgres',
            uri: sharedUri(usersApp),
            replicas: [{ name: 'r1', uri: uri(proxy.host, proxy.port, 'postgres', usersApp) }],
            readFallback: 'primary',
            healthCheck: { intervalMs: 0, recheckIntervalMs: 100, timeoutMs: 500 },
            queryTimeoutMs: 2000,
            pool: { ...TIGHT_POOL, max: 2 },
            logger,
          }),
        ],
      }).compile();
      await moduleRef.init();
      const users = moduleRef.get<PostgresPool>(getPoolToken('users'));
      const rotation = (): string[] =>
        lines.filter((line) => line.message.includes('read rotation')).map((line) => line.level);

      await proxy.refuse();
      proxy.resetAll();
      // Reads keep working (on the primary) while the replica is out; several checks notice it.
      for (let i = 0; i < 5; i++) {
        const port = (await users.read.query<{ port: number }>(WHO)).rows[0]!.port;
        expect([server.port, SHARED_PORT]).toContain(port);
        await users.checkHealth({ timeoutMs: 500 });
      }
      await waitUntil(() => rotation().length === 1, 'the replica to leave the rotation');
      const down = lines.find((line) => line.message.includes('left the read rotation'))!;
      expect(down).toMatchObject({ level: 'warn', context: 'PoolModule:users' });
      expect(down.message).toMatch(/^users\.replica\[r1\] left the read rotation: .+reads go to the primary/);
      await expect(users.read.query<{ port: number }>(WHO)).resolves.toMatchObject({
        rows: [{ port: SHARED_PORT }],
      });

      await proxy.pass();
      await waitUntil(() => rotation().length === 2, 'the replica to come back', 10_000);
      const up = lines.find((line) => line.message.includes('back in the read rotation'))!;
      expect(up).toMatchObject({ level: 'log', context: 'PoolModule:users' });
      expect(up.message).toMatch(/^users\.replica\[r1\] is back in the read rotation after \d/);
      await waitUntil(
        async () => (await users.read.query<{ port: number }>(WHO)).rows[0]!.port === server.port,
        'reads on the replica again',
      );
      expect(rotation()).toEqual(['warn', 'log']);
      expect(JSON.stringify(lines)).not.toContain(SECRET);
      await moduleRef.close();
    } finally {
      await proxy.stop();
    }
  });
});
