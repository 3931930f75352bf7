/**
 * End-to-end through the sample app (sample/), as a user runs it: real PostgreSQL, Redis and MongoDB
 * (FerretDB), HTTP via supertest. The `users` pool talks to PostgreSQL through a FaultProxy so the test can
 * make it unreachable and heal it without touching the shared server.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type pg from 'pg';
import request from 'supertest';
import { getPoolToken, type MongoPool, type PostgresPool, type RedisPool } from '../../lib/index.js';
import { FaultProxy } from '../../lib/testing/index.js';
import {
  adminClient,
  countBackends,
  DATABASE_URL,
  uniqueName,
  waitUntil,
} from '../backends/postgres/pg-test-support.js';

const appName = uniqueName('sample');
let proxy: FaultProxy;
let app: INestApplication;
let admin: pg.Client;

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
