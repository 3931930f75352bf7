/**
 * /health for pools with replicas and shards, through Terminus over HTTP, against the real PostgreSQL:
 * each replica and shard reaches it through its own FaultProxy, so one member can be refused and healed
 * while the others stay up.
 *
 * Asserted: every member listed with its status, role and latency; a refused replica shown down while the
 * pool stays up (reads fall back to the primary), or takes it down with `readFallback: 'fail'`; a refused
 * shard takes its pool down; all up again once healed; no password anywhere.
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
import { DATABASE_URL, uniqueName, waitUntil } from '../backends/postgres/pg-test-support.js';

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly pools: PoolHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.pools.checkAll({ timeoutMs: 500 })]);
  }
}

const PASSWORD = 'Rout3d-Hea1th-S3cret';
const target = new URL(DATABASE_URL);
const proxies: Record<'replica' | 'strict' | 'shard', FaultProxy> = {
  replica: new FaultProxy({ target: { host: target.hostname, port: Number(target.port || 5432) } }),
  strict: new FaultProxy({ target: { host: target.hostname, port: Number(target.port || 5432) } }),
  shard: new FaultProxy({ target: { host: target.hostname, port: Number(target.port || 5432) } }),
};
let app: INestApplication;

function uri(port?: number): string {
  const url = new URL(DATABASE_URL);
  if (port !== undefined) url.port = String(port);
  url.username = 'postgres';
  url.password = PASSWORD; // trust auth ignores it; it must never show up in /health
  url.searchParams.set('application_name', uniqueName('hroute'));
  return url.toString();
}

const memberPool = {
  acquireTimeoutMs: 300,
  createTimeoutMs: 300,
  validationTimeoutMs: 300,
  createRetry: { initialDelayMs: 20, maxDelayMs: 100, factor: 2, jitter: 0 },
  circuitBreaker: { failureThreshold: 3, resetTimeoutMs: 200 },
};
const healthCheck = { intervalMs: 0, recheckIntervalMs: 100, timeoutMs: 400 };

beforeAll(async () => {
  await Promise.all(Object.values(proxies).map((proxy) => proxy.start()));
  const moduleRef = await Test.createTestingModule({
    imports: [
      PoolModule.forRoot([
        {
          name: 'users',
          backend: 'postgres',
          uri: uri(),
          replicas: [{ name: 'r1', uri: uri(proxies.replica.port) }],
          readFallback: 'primary',
          healthCheck,
          queryTimeoutMs: 300,
          pool: memberPool,
          logger: false,
        },
        {
          name: 'strict',
          backend: 'postgres',
          uri: uri(),
          replicas: [uri(proxies.strict.port)],
          readFallback: 'fail',
          healthCheck,
          queryTimeoutMs: 300,
          pool: memberPool,
          logger: false,
        },
        {
          name: 'orders',
          backend: 'postgres',
          shards: { a: uri(), b: uri(proxies.shard.port) },
          queryTimeoutMs: 300,
          pool: memberPool,
          logger: false,
        },
        {
          name: 'regions',
          backend: 'postgres',
          shards: { eu: { uri: uri(), replicas: [uri()] } },
          healthCheck,
          logger: false,
        },
        { name: 'plain', backend: 'postgres', uri: uri(), logger: false },
      ]),
      TerminusModule,
      PoolHealthModule,
    ],
    controllers: [HealthController],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
});

afterAll(async () => {
  await app?.close();
  await Promise.all(Object.values(proxies).map((proxy) => proxy.stop()));
});

type Details = Record<
  string,
  Record<string, unknown> & { members?: Record<string, Record<string, unknown>> }
>;

async function health(): Promise<{ status: number; details: Details; error: Details }> {
  const response = await request(app.getHttpServer()).get('/health');
  expect(JSON.stringify(response.body)).not.toContain(PASSWORD);
  return {
    status: response.status,
    details: response.body.details as Details,
    error: (response.body.error ?? {}) as Details,
  };
}

const upMember = (role: string) => ({
  status: 'up',
  role,
  latencyMs: expect.any(Number),
  circuit: 'closed',
  max: 10,
});

describe('/health with replicas and shards', () => {
  it('lists every member with its status, role and latency; a plain pool has no members', async () => {
    const { status, details } = await health();
    expect(status).toBe(200);
    expect(details['users']).toMatchObject({ status: 'up', latencyMs: expect.any(Number) });
    expect(details['users']!.members).toEqual({
      primary: expect.objectContaining(upMember('primary')),
      r1: expect.objectContaining(upMember('replica')),
    });
    expect(Object.keys(details['strict']!.members!)).toEqual(['primary', 'replica[0]']);
    expect(details['orders']!.members).toEqual({
      a: expect.objectContaining(upMember('shard')),
      b: expect.objectContaining(upMember('shard')),
    });
    // A shard with replicas: its own members nest under it.
    expect(details['regions']!.members!['eu']).toMatchObject({
      ...upMember('shard'),
      members: { primary: upMember('primary'), 'replica[0]': upMember('replica') },
    });
    expect(details['plain']).toMatchObject({ status: 'up' });
    expect(details['plain']!.members).toBeUndefined();
  });

  it('a refused replica is down in its members while the pool stays up (reads fall back to the primary); healed, it is up', async () => {
    await proxies.replica.refuse();
    proxies.replica.resetAll();
    const down = await health();
    expect(down.status).toBe(200);
    expect(down.details['users']!.status).toBe('up');
    const r1 = down.details['users']!.members!['r1']!;
    expect(r1).toMatchObject({ status: 'down', role: 'replica', latencyMs: expect.any(Number) });
    expect(typeof r1['error']).toBe('string');
    expect(down.details['users']!.members!['primary']).toMatchObject({ status: 'up' });

    await proxies.replica.pass();
    let healed: Details | undefined;
    await waitUntil(
      async () => {
        healed = (await health()).details;
        return healed['users']!.members!['r1']!['status'] === 'up';
      },
      'the replica to be up again',
      10_000,
      100,
    );
    expect(healed!['users']!.members!['r1']!['error']).toBeUndefined();
  });

  it("with readFallback 'fail', a refused replica (the only one) takes the pool down; healed, it is up", async () => {
    await proxies.strict.refuse();
    proxies.strict.resetAll();
    const down = await health();
    expect(down.status).toBe(503);
    expect(Object.keys(down.error)).toEqual(['strict']);
    expect(down.error['strict']).toMatchObject({
      status: 'down',
      error: expect.stringContaining('readFallback'),
    });
    expect(down.error['strict']!.members!['replica[0]']).toMatchObject({ status: 'down', role: 'replica' });
    expect(down.error['strict']!.members!['primary']).toMatchObject({ status: 'up', role: 'primary' });

    await proxies.strict.pass();
    await waitUntil(async () => (await health()).status === 200, 'every pool up again', 10_000, 100);
  });

  it('a refused shard takes its sharded pool down, naming the shard; healed, it is up', async () => {
    await proxies.shard.refuse();
    proxies.shard.resetAll();
    const down = await health();
    expect(down.status).toBe(503);
    expect(Object.keys(down.error)).toEqual(['orders']);
    expect(down.error['orders']).toMatchObject({
      status: 'down',
      error: expect.stringMatching(/^shard b: /),
    });
    expect(down.error['orders']!.members!['b']).toMatchObject({ status: 'down', role: 'shard' });
    expect(down.error['orders']!.members!['a']).toMatchObject({ status: 'up', role: 'shard' });

    await proxies.shard.pass();
    await waitUntil(async () => (await health()).status === 200, 'every pool up again', 10_000, 100);
  });
});
