/**
 * End-to-end through the sample app (sample/), as a user runs it: real PostgreSQL, Redis and MongoDB
 * (FerretDB), HTTP via supertest. The `users` pool talks to PostgreSQL through a FaultProxy so the test can
 * make it unreachable and heal it without touching the shared server.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type pg from 'pg';
import request from 'supertest';
import { getPoolToken, type MongoPool, type PostgresPool, type RedisPool } from '../../lib/index.js';
import { FaultProxy } from '../../lib/testing/index.js';
import { parseExposition, valueOf, type Exposition } from '../metrics/prometheus-text.js';
import {
  adminClient,
  countBackends,
  DATABASE_URL,
  uniqueName,
  waitUntil,
} from '../backends/postgres/pg-test-support.js';

const appName = uniqueName('sample');
const ADMIN_TOKEN = `sample-admin-${randomBytes(12).toString('hex')}`;
let proxy: FaultProxy;
let app: INestApplication;
let admin: pg.Client;

async function scrapeMetrics(): Promise<Exposition> {
  const response = await request(app.getHttpServer()).get('/metrics').expect(200);
  expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(response.text);
}

async function healthStatus(): Promise<number> {
  return (await request(app.getHttpServer()).get('/health')).status;
}

beforeAll(async () => {
  admin = await adminClient();
  const target = new URL(DATABASE_URL);
  proxy = new FaultProxy({ target: { host: target.hostname, port: Number(target.port || 5432) } });
  await proxy.start();
  const uri = new URL(DATABASE_URL);
  uri.port = String(proxy.port);
  uri.searchParams.set('application_name', appName);
  // The sample reads its configuration from the environment when its module is loaded.
  process.env['DATABASE_URL'] = uri.toString();
  process.env['REDIS_URL'] = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379/0';
  const mongo = new URL(process.env['MONGODB_URI'] ?? 'mongodb://127.0.0.1:27017/');
  mongo.pathname = '/nestjs_pool_sample_e2e';
  process.env['MONGODB_URI'] = mongo.toString();
  process.env['POOL_ADMIN_TOKEN'] = ADMIN_TOKEN;
  const { AppModule } = await import('../../sample/app.module.js');
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
});

afterAll(async () => {
  await app?.close();
  await proxy?.stop();
  await admin?.end();
});

describe('sample app', () => {
  it('creates a user (PostgreSQL transaction), reads it through the Redis cache, logs it to MongoDB', async () => {
    const name = `Ada ${Date.now()}`;
    const created = await request(app.getHttpServer()).post('/users').send({ name }).expect(201);
    expect(created.body).toEqual({ id: expect.any(Number), name });
    const id = created.body.id as number;

    const first = await request(app.getHttpServer()).get(`/users/${id}`).expect(200);
    expect(first.body).toEqual({ id, name, cached: false });
    const second = await request(app.getHttpServer()).get(`/users/${id}`).expect(200);
    expect(second.body).toEqual({ id, name, cached: true });

    const events = await request(app.getHttpServer()).get('/events').expect(200);
    expect(events.body).toEqual(
      expect.arrayContaining([expect.objectContaining({ type: 'user.created', userId: id })]),
    );

    await request(app.getHttpServer()).get('/users/999999999').expect(404);
    await request(app.getHttpServer()).post('/users').send({}).expect(400);
  });

  it('/metrics: every pool, labelled by name and backend (no URI), with counts that move after requests', async () => {
    const before = await scrapeMetrics();
    const pools = new Set(
      before.samples.map((sample) => `${sample.labels['pool_name']}/${sample.labels['backend']}`),
    );
    expect([...pools].sort()).toEqual(['cache/redis', 'events/mongodb', 'users/postgres']);
    const text = (await request(app.getHttpServer()).get('/metrics')).text;
    expect(text).not.toMatch(/postgres:\/\/|redis:\/\/|mongodb:\/\/|127\.0\.0\.1/);

    const name = `Metrics ${Date.now()}`;
    const created = await request(app.getHttpServer()).post('/users').send({ name }).expect(201);
    await request(app.getHttpServer())
      .get(`/users/${created.body.id as number}`)
      .expect(200);
    await request(app.getHttpServer()).get('/events').expect(200);
    const after = await scrapeMetrics();

    const users = { pool_name: 'users', backend: 'postgres' };
    const events = { pool_name: 'events', backend: 'mongodb' };
    const moved = (exposition: Exposition, metric: string, labels: Record<string, string>): number =>
      valueOf(exposition, metric, labels);
    // The transaction and the cache-miss read: two leases of `users`; the event record and the list: two of `events`.
    for (const labels of [users, events]) {
      for (const metric of [
        'db_client_connection_wait_time_seconds_count',
        'db_client_connection_use_time_seconds_count',
      ]) {
        expect(moved(after, metric, labels) - moved(before, metric, labels)).toBeGreaterThanOrEqual(2);
      }
    }
    expect(moved(after, 'db_client_connection_count', { ...users, state: 'used' })).toBe(0);
    expect(moved(after, 'db_client_connection_count', { ...users, state: 'idle' })).toBeGreaterThanOrEqual(1);
    expect(moved(after, 'db_client_connection_max', users)).toBe(10);
    expect(moved(after, 'nestjs_pool_circuit_state', { ...users, state: 'closed' })).toBe(1);
  });

  it('/admin/pools (POOL_ADMIN_TOKEN set): every pool with its metrics behind the token, the dashboard page', async () => {
    await request(app.getHttpServer()).get('/admin/pools').expect(401);
    const list = await request(app.getHttpServer())
      .get('/admin/pools')
      .set('authorization', `Bearer ${ADMIN_TOKEN}`)
      .expect(200);
    const pools = list.body.pools as { name: string; backend: string; target: string }[];
    expect(pools.map((p) => `${p.name}:${p.backend}`).sort()).toEqual([
      'cache:redis',
      'events:mongodb',
      'users:postgres',
    ]);
    expect(JSON.stringify(list.body)).not.toContain(ADMIN_TOKEN);
    const page = await request(app.getHttpServer()).get('/admin/dashboard').expect(200);
    expect(page.text).toContain('<html');
    expect(page.text).not.toContain(ADMIN_TOKEN);
  });

  it('/health: 200, then 503 naming the pool whose server is unreachable, then 200 again when it heals', async () => {
    const ok = await request(app.getHttpServer()).get('/health').expect(200);
    expect(Object.keys(ok.body.info).sort()).toEqual(['cache', 'events', 'users']);

    await proxy.blackhole({ discard: true });
    proxy.resetAll();
    const started = performance.now();
    const down = await request(app.getHttpServer()).get('/health').expect(503);
    expect(performance.now() - started).toBeLessThan(3000);
    expect(Object.keys(down.body.error)).toEqual(['users']);
    expect(down.body.info.cache.status).toBe('up');

    await proxy.pass();
    // Bounded by the sample's createTimeoutMs (2 s): an attempt swallowed by the black hole gives up, the next works.
    await waitUntil(async () => (await healthStatus()) === 200, '/health back to 200', 8000, 100);
  });

  it('after app.close() the servers are back to their baseline: no connection left', async () => {
    const users = app.get<PostgresPool>(getPoolToken('users'));
    const cache = app.get<RedisPool>(getPoolToken('cache'));
    const events = app.get<MongoPool>(getPoolToken('events'));
    await users.query('SELECT 1');
    expect(await countBackends(admin, appName)).toBeGreaterThan(0);
    await app.close();
    for (const pool of [users, cache, events])
      expect(pool.metrics()).toMatchObject({ state: 'closed', size: 0 });
    await waitUntil(async () => (await countBackends(admin, appName)) === 0, 'PostgreSQL connections closed');
    expect(events.metrics().driver.connections).toBe(0);
  });
});
