/**
 * /health through Terminus with PoolHealthIndicator, over HTTP (supertest), against the real PostgreSQL
 * behind a FaultProxy so one pool's server can be made unreachable and healed.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { PoolModule } from '../../lib/index.js';
import { PoolHealthIndicator, PoolHealthModule } from '../../lib/health/index.js';
import { FaultProxy } from '../../lib/testing/index.js';
import { DATABASE_URL } from '../backends/postgres/pg-test-support.js';

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly pools: PoolHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([
      () => this.pools.isHealthy('users', { timeoutMs: 500 }),
      () => this.pools.isHealthy('reports', { timeoutMs: 500 }),
    ]);
  }

  @Get('all')
  @HealthCheck()
  all() {
    return this.health.check([() => this.pools.checkAll({ timeoutMs: 500 })]);
  }
}

const PASSWORD = 'Hea1th-S3cret';
let proxy: FaultProxy;
let app: INestApplication;

function proxiedUri(): string {
  const uri = new URL(DATABASE_URL);
  uri.port = String(proxy.port);
  uri.username = 'postgres';
  uri.password = PASSWORD; // trust auth ignores it; it must never show up in /health
  return uri.toString();
}

beforeAll(async () => {
  const target = new URL(DATABASE_URL);
  proxy = new FaultProxy({ target: { host: target.hostname, port: Number(target.port || 5432) } });
  await proxy.start();
  const moduleRef = await Test.createTestingModule({
    imports: [
      PoolModule.forRoot({ name: 'users', backend: 'postgres', uri: DATABASE_URL }),
      PoolModule.forRoot({
        name: 'reports',
        backend: 'postgres',
        uri: proxiedUri(),
        queryTimeoutMs: 300,
        pool: { acquireTimeoutMs: 300, validationTimeoutMs: 300, createTimeoutMs: 300 },
      }),
      TerminusModule,
      PoolHealthModule,
    ],
    controllers: [HealthController],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
});

afterAll(async () => {
  await app.close();
  await proxy.stop();
});

describe('/health', () => {
  it('answers 200 with flat details per pool when all are up', async () => {
    const response = await request(app.getHttpServer()).get('/health').expect(200);
    expect(response.body.status).toBe('ok');
    expect(response.body.info.users).toMatchObject({ status: 'up', max: 10, circuit: 'closed' });
    for (const key of ['latencyMs', 'size', 'active', 'idle', 'waiting']) {
      expect(typeof response.body.info.users[key]).toBe('number');
    }
    expect(JSON.stringify(response.body)).not.toContain(PASSWORD);
  });

  it('answers 503 naming the pool whose server is unreachable, within its timeout, and 200 again once healed', async () => {
    await proxy.blackhole({ discard: true });
    proxy.resetAll();
    const started = performance.now();
    const down = await request(app.getHttpServer()).get('/health').expect(503);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(down.body.status).toBe('error');
    expect(Object.keys(down.body.error)).toEqual(['reports']);
    expect(down.body.error.reports.status).toBe('down');
    expect(typeof down.body.error.reports.error).toBe('string');
    expect(down.body.info.users.status).toBe('up');
    expect(JSON.stringify(down.body)).not.toContain(PASSWORD);

    await proxy.pass();
    const deadline = performance.now() + 5000;
    let status = 503;
    while (status !== 200 && performance.now() < deadline) {
      status = (await request(app.getHttpServer()).get('/health')).status;
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toBe(200);
  });

  it('checkAll reports every registered pool', async () => {
    const response = await request(app.getHttpServer()).get('/health/all').expect(200);
    expect(Object.keys(response.body.details).sort()).toEqual(['reports', 'users']);
  });

  it('a name that is not registered is reported down, not thrown (no 500)', async () => {
    const indicator = app.get(PoolHealthIndicator);
    const result = await indicator.isHealthy('nope');
    expect(result['nope']).toMatchObject({ status: 'down' });
    expect(String(result['nope']!['error'])).toContain('no pool with this name is registered');
  });
});

describe('PoolHealthIndicator listed in the app’s own providers next to TerminusModule', () => {
  it('resolves and works', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({ name: 'users', backend: 'postgres', uri: DATABASE_URL }),
        TerminusModule,
      ],
      providers: [PoolHealthIndicator],
    }).compile();
    await moduleRef.init();
    const result = await moduleRef.get(PoolHealthIndicator).isHealthy('users');
    expect(result['users']).toMatchObject({ status: 'up' });
    await moduleRef.close();
  });
});
