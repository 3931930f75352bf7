/**
 * PoolAdminModule's JSON API for pools with replicas and shards, over HTTP against the real PostgreSQL
 * (the replica through a FaultProxy, so it can be taken out of the read rotation).
 *
 * Asserted: `members` lists every physical pool with its role, redacted target, own metrics and (replicas)
 * its place in the read rotation; connections are tagged by member; pause/resume reach every member; a plain
 * pool's answers are unchanged; no password in any response.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { getPoolToken, PoolModule, type PostgresPool } from '../../lib/index.js';
import type { ShardedPool } from '../../lib/backends/routing/sharded-pool.js';
import { PoolAdminModule } from '../../lib/admin/index.js';
import type { PoolAdminConnections, PoolAdminList, PoolAdminSummary } from '../../lib/admin/index.js';
import type { PoolAdminMember } from '../../lib/admin/pool-admin.views.js';
import { FaultProxy } from '../../lib/testing/index.js';
import { DATABASE_URL, pgUrl, uniqueName, waitUntil } from '../backends/postgres/pg-test-support.js';

const TOKEN = 'routing-admin-T0ken-0123456789ab';
const PASSWORD = 'R0uted-Adm1n-Pa55';
const bearer = { Authorization: `Bearer ${TOKEN}` };
const seen: string[] = [];
let app: INestApplication;
let proxy: FaultProxy;
let users: PostgresPool;
let orders: ShardedPool<PostgresPool>;

function url(port?: number): string {
  const uri = new URL(
    pgUrl({ application_name: uniqueName('adroute') }, { user: 'postgres', password: PASSWORD }),
  );
  if (port !== undefined) uri.port = String(port);
  return uri.toString();
}

async function get<T>(path: string): Promise<T> {
  const response = await request(app.getHttpServer()).get(path).set(bearer).expect(200);
  seen.push(response.text);
  return response.body as T;
}

async function post<T>(path: string): Promise<T> {
  const response = await request(app.getHttpServer()).post(path).set(bearer).send({}).expect(200);
  seen.push(response.text);
  return response.body as T;
}

beforeAll(async () => {
  const target = new URL(DATABASE_URL);
  proxy = new FaultProxy({ target: { host: target.hostname, port: Number(target.port || 5432) } });
  await proxy.start();
  const moduleRef = await Test.createTestingModule({
    imports: [
      PoolModule.forRoot([
        {
          name: 'users',
          backend: 'postgres',
          uri: url(),
          replicas: [{ name: 'r1', uri: url(proxy.port), weight: 2 }],
          balance: 'weighted',
          healthCheck: { intervalMs: 0, recheckIntervalMs: 100, timeoutMs: 400 },
          queryTimeoutMs: 300,
          pool: {
            min: 1,
            max: 3,
            acquireTimeoutMs: 300,
            createTimeoutMs: 300,
            createRetry: { initialDelayMs: 20, maxDelayMs: 100, factor: 2, jitter: 0 },
            circuitBreaker: { failureThreshold: 3, resetTimeoutMs: 200 },
          },
          logger: false,
        },
        {
          name: 'orders',
          backend: 'postgres',
          pool: { min: 1, max: 2 },
          shards: { a: url(), b: url() },
          logger: false,
        },
        { name: 'plain', backend: 'postgres', uri: url(), logger: false },
      ]),
      PoolAdminModule.forRoot({ token: TOKEN }),
    ],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  users = app.get<PostgresPool>(getPoolToken('users'));
  orders = app.get<ShardedPool<PostgresPool>>(getPoolToken('orders'));
});

afterAll(async () => {
  await app?.close();
  await proxy?.stop();
  const all = seen.join('\n');
  expect(all).not.toContain(PASSWORD);
  expect(all).not.toContain(encodeURIComponent(PASSWORD));
});

function member(summary: PoolAdminSummary, name: string): PoolAdminMember {
  const found = summary.members?.find((m) => m.name === name);
  if (found === undefined) throw new Error(`no member ${name} in ${JSON.stringify(summary.members)}`);
  return found;
}

describe('admin API with replicas and shards', () => {
  it('lists every member with its role, target, own metrics and rotation; a plain pool has none', async () => {
    const list = await get<PoolAdminList>('/admin/pools');
    const byName = new Map(list.pools.map((pool) => [pool.name, pool]));
    const usersSummary = byName.get('users')!;
    expect(usersSummary.members!.map((m) => [m.name, m.member, m.role])).toEqual([
      ['users', 'primary', 'primary'],
      ['users.replica[r1]', 'r1', 'replica'],
    ]);
    const replica = member(usersSummary, 'users.replica[r1]');
    expect(replica.rotation).toEqual({ healthy: true, inRotation: true, weight: 2 });
    expect(replica.target).toContain(`:${proxy.port}/`);
    expect(replica.metrics).toMatchObject({ name: 'users.replica[r1]', state: 'ready', max: 3, size: 1 });
    expect(member(usersSummary, 'users').rotation).toBeUndefined();
    // The pool's own figures stay flat: members are listed apart.
    expect(Object.keys(usersSummary.metrics)).not.toContain('members');

    const ordersSummary = byName.get('orders')!;
    expect(ordersSummary.members!.map((m) => [m.name, m.member, m.role, m.shard])).toEqual([
      ['orders.shard[a]', 'a', 'shard', 'a'],
      ['orders.shard[b]', 'b', 'shard', 'b'],
    ]);
    expect(ordersSummary.metrics).toMatchObject({ name: 'orders', max: 4, size: 2 });
    expect(Object.keys(ordersSummary.metrics)).not.toContain('shards');
    expect(byName.get('plain')!.members).toBeUndefined();
  });

  it('tags each connection with its member; a plain pool’s connections are as before', async () => {
    await users.read.query('SELECT 1');
    const { connections } = await get<PoolAdminConnections>('/admin/pools/users/connections');
    expect(new Set(connections.map((c) => c.member))).toEqual(new Set(['users', 'users.replica[r1]']));
    const replicaConnections = connections.filter((c) => c.member === 'users.replica[r1]');
    expect(replicaConnections.reduce((sum, c) => sum + c.queries, 0)).toBeGreaterThanOrEqual(1);
    const sharded = await get<PoolAdminConnections>('/admin/pools/orders/connections');
    expect(sharded.connections.map((c) => c.member).sort()).toEqual(['orders.shard[a]', 'orders.shard[b]']);
    const plain = await get<PoolAdminConnections>('/admin/pools/plain/connections');
    expect(plain.connections.length).toBeGreaterThanOrEqual(1);
    for (const connection of plain.connections) expect(connection.member).toBeUndefined();
  });

  it('shows a refused replica out of the rotation, with why, and back once healed', async () => {
    await proxy.refuse();
    proxy.resetAll();
    await users.checkHealth({ timeoutMs: 400 });
    const down = member(await get<PoolAdminSummary>('/admin/pools/users'), 'users.replica[r1]');
    expect(down.rotation).toMatchObject({ healthy: false, inRotation: false, downSince: expect.any(Number) });
    expect(typeof down.rotation!.error).toBe('string');

    await proxy.pass();
    await waitUntil(
      async () =>
        member(await get<PoolAdminSummary>('/admin/pools/users'), 'users.replica[r1]').rotation!.healthy,
      'the replica back in the rotation',
      10_000,
      100,
    );
  });

  it('pause and resume reach every member', async () => {
    const paused = await post<PoolAdminSummary>('/admin/pools/orders/pause');
    expect(paused.members!.map((m) => m.metrics.state)).toEqual(['paused', 'paused']);
    expect(orders.shard('b').state).toBe('paused');
    const resumed = await post<PoolAdminSummary>('/admin/pools/orders/resume');
    expect(resumed.members!.map((m) => m.metrics.state)).toEqual(['ready', 'ready']);
  });
});
