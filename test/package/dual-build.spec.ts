/**
 * An app can load both builds of this package (ESM and CommonJS: a Nest 11 app with an ESM dependency that
 * uses it, say), which is two copies of every class. Here the second copy is a copy of lib/ made for the test:
 * PoolModule comes from one, the health indicator, the metrics and the admin API from the other, and these
 * must still find the pools PoolModule registered (a string token, not the class) and recognise a pool with
 * replicas (a brand, not `instanceof`). Against the real PostgreSQL server.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Registry } from 'prom-client';
import request from 'supertest';
import { PoolModule } from '../../lib/index.js';
import { DATABASE_URL } from '../backends/postgres/pg-test-support.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// Inside the repository (git-ignored), so that its imports find the same node_modules: one @nestjs/common,
// as in a real app that loads both builds.
const copy = join(root, '.cache', `dual-build-${process.pid}`);
const TOKEN = 'dual-build-admin-token-0123456789';

type AdminEntry = typeof import('../../lib/admin/index.js');
type HealthEntry = typeof import('../../lib/health/index.js');
type MetricsEntry = typeof import('../../lib/metrics/index.js');

let other: { admin: AdminEntry; health: HealthEntry; metrics: MetricsEntry };
let app: INestApplication;
const registry = new Registry();

beforeAll(async () => {
  mkdirSync(copy, { recursive: true });
  cpSync(join(root, 'lib'), join(copy, 'lib'), { recursive: true });
  const load = (entry: string): Promise<unknown> =>
    import(pathToFileURL(join(copy, 'lib', entry, 'index.ts')).href);
  other = {
    admin: (await load('admin')) as AdminEntry,
    health: (await load('health')) as HealthEntry,
    metrics: (await load('metrics')) as MetricsEntry,
  };
  // The copy's classes really are other classes.
  const mine = (await import('../../lib/health/index.js')) as HealthEntry;
  expect(other.health.PoolHealthIndicator).not.toBe(mine.PoolHealthIndicator);

  const moduleRef = await Test.createTestingModule({
    imports: [
      PoolModule.forRoot([
        { name: 'users', backend: 'postgres', uri: DATABASE_URL, pool: { max: 2 } },
        { name: 'reads', backend: 'postgres', uri: DATABASE_URL, replicas: [DATABASE_URL], pool: { max: 2 } },
      ]),
      other.health.PoolHealthModule,
      other.metrics.PoolMetricsModule.forRoot({ registry, path: false }),
      other.admin.PoolAdminModule.forRoot({ token: TOKEN }),
    ],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
});

afterAll(async () => {
  await app?.close();
  rmSync(copy, { recursive: true, force: true });
});

describe("the other build's health, metrics and admin", () => {
  it('the health indicator checks the pools PoolModule registered, members of a pool with replicas too', async () => {
    const indicator = app.get(other.health.PoolHealthIndicator);
    const result = await indicator.isHealthy('users', { timeoutMs: 2000 });
    expect(result['users']).toMatchObject({ status: 'up' });
    const reads = (await indicator.isHealthy('reads', { timeoutMs: 2000 }))['reads'] as {
      status: string;
      members?: Record<string, unknown>;
    };
    expect(reads.status).toBe('up');
    expect(Object.keys(reads.members ?? {}).sort()).toEqual(['primary', 'replica[0]']);
  });

  it('the metrics export every pool, each member of the pool with replicas', async () => {
    const text = await registry.metrics();
    expect(text).toMatch(/db_client_connection_count\{pool_name="users",[^}]*state="idle"\} 1/);
    expect(text).toMatch(/pool_name="reads\.replica\[0\]",[^}]*pool_role="replica"/);
  });

  it('the admin API lists the pools and their members', async () => {
    const response = await request(app.getHttpServer())
      .get('/admin/pools')
      .set('Authorization', `Bearer ${TOKEN}`);
    expect(response.status).toBe(200);
    const pools = (response.body as { pools: { name: string; members?: { member: string }[] }[] }).pools;
    expect(pools.map((p) => p.name)).toEqual(['users', 'reads']);
    expect(pools[1]!.members?.map((m) => m.member)).toEqual(['primary', 'replica[0]']);
  });
});
