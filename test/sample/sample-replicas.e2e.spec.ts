/**
 * The sample app with a read replica (`DATABASE_REPLICA_URLS`), as a user would deploy it: writes on the
 * primary, `GET /users/:id` read from the replica, the replica visible in /health and /metrics, and nothing
 * left open after app.close(). The replica is the shared PostgreSQL reached through a FaultProxy under its
 * own application_name (routing is what is tested, not replication), so it can also be refused: reads then
 * fall back to the primary and the app stays healthy.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type pg from 'pg';
import request from 'supertest';
import { getPoolToken, type PostgresPool } from '../../lib/index.js';
import { FaultProxy } from '../../lib/testing/index.js';
import { parseExposition, valueOf } from '../metrics/prometheus-text.js';
import {
  adminClient,
  countBackends,
  DATABASE_URL,
  uniqueName,
  waitUntil,
} from '../backends/postgres/pg-test-support.js';

const primaryApp = uniqueName('sampleprim');
const replicaApp = uniqueName('samplerepl');
let proxy: FaultProxy;
let app: INestApplication;
let admin: pg.Client;

/** Leases the replica has lent so far: one per read routed to it. */
function replicaReads(users: PostgresPool): number {
  return users.replicaSet!.group.pool('replica[0]').metrics().acquired;
}

beforeAll(async () => {
  admin = await adminClient();
  const target = new URL(DATABASE_URL);
  proxy = new FaultProxy({ target: { host: target.hostname, port: Number(target.port || 5432) } });
  await proxy.start();
  const primary = new URL(DATABASE_URL);
  primary.searchParams.set('application_name', primaryApp);
  const replica = new URL(DATABASE_URL);
  replica.port = String(proxy.port);
  replica.searchParams.set('application_name', replicaApp);
  process.env['DATABASE_URL'] = primary.toString();
  process.env['DATABASE_REPLICA_URLS'] = ` ${replica.toString()} ,`; // spaces and a trailing comma are fine
  process.env['REDIS_URL'] = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379/0';
  const mongo = new URL(process.env['MONGODB_URI'] ?? 'mongodb://127.0.0.1:27017/');
  mongo.pathname = '/nestjs_pool_sample_e2e';
  process.env['MONGODB_URI'] = mongo.toString();
  const { AppModule } = await import('../../sample/app.module.js');
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
});

afterAll(async () => {
  delete process.env['DATABASE_REPLICA_URLS'];
  await app?.close();
  await proxy?.stop();
  await admin?.end();
});

describe('sample app with a read replica', () => {
  it('writes on the primary, reads a user from the replica, and shows the replica in /health and /metrics', async () => {
    const users = app.get<PostgresPool>(getPoolToken('users'));
    expect(users.replicaSet?.replicaNames).toEqual(['replica[0]']);
    const name = `Grace ${Date.now()}`;
    const created = await request(app.getHttpServer()).post('/users').send({ name }).expect(201);
    const id = created.body.id as number;
    const before = replicaReads(users);
    const read = await request(app.getHttpServer()).get(`/users/${id}`).expect(200);
    expect(read.body).toEqual({ id, name, cached: false });
    expect(replicaReads(users)).toBe(before + 1);
    expect(await countBackends(admin, replicaApp)).toBeGreaterThan(0);

    const health = await request(app.getHttpServer()).get('/health').expect(200);
    expect(health.body.info.users.members).toMatchObject({
      primary: { status: 'up', role: 'primary' },
      'replica[0]': { status: 'up', role: 'replica' },
    });

    const metrics = parseExposition((await request(app.getHttpServer()).get('/metrics').expect(200)).text);
    const replicaSeries = { pool_name: 'users.replica[0]', pool_group: 'users', pool_role: 'replica' };
    expect(valueOf(metrics, 'db_client_connection_max', replicaSeries)).toBe(10);
    expect(
      valueOf(metrics, 'db_client_connection_use_time_seconds_count', replicaSeries),
    ).toBeGreaterThanOrEqual(1);
  });

  it('with the replica refused, reads fall back to the primary and /health stays 200 with the replica down', async () => {
    const users = app.get<PostgresPool>(getPoolToken('users'));
    await proxy.refuse();
    proxy.resetAll();
    const health = await request(app.getHttpServer()).get('/health').expect(200);
    expect(health.body.info.users.members['replica[0]']).toMatchObject({ status: 'down', role: 'replica' });

    const name = `Hopper ${Date.now()}`;
    const created = await request(app.getHttpServer()).post('/users').send({ name }).expect(201);
    const read = await request(app.getHttpServer())
      .get(`/users/${created.body.id as number}`)
      .expect(200);
    expect(read.body).toMatchObject({ name, cached: false });
    expect(users.replicaSet!.group.status('replica[0]').healthy).toBe(false);
    await proxy.pass();
  });

  it('after app.close() no connection is left on the primary nor the replica', async () => {
    await app.close();
    await waitUntil(
      async () => (await countBackends(admin, primaryApp)) + (await countBackends(admin, replicaApp)) === 0,
      'PostgreSQL connections closed',
    );
  });
});
