/**
 * PoolAdminModule's JSON API over HTTP (supertest) against real PostgreSQL and Redis pools: auth by token
 * (401), by guard (403), both, and through forRootAsync; listing, one pool, connections, pause/resume/drain
 * changing what the pools really do; 404/400; and no password or token in any response.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Inject,
  Injectable,
  Module,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
  type LoggerService,
  type Type,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import {
  getPoolToken,
  PoolClosedError,
  PoolConfigError,
  PoolModule,
  type PostgresPool,
  type RedisPool,
} from '../../lib/index.js';
import { PoolAdminConfigError, PoolAdminModule } from '../../lib/admin/index.js';
import type { PoolAdminConnections, PoolAdminList, PoolAdminSummary } from '../../lib/admin/index.js';
import { pgUrl, uniqueName } from '../backends/postgres/pg-test-support.js';
import { redisUrl } from '../backends/redis/redis-test-support.js';

const TOKEN = 'admin-T0ken-for-tests-0123456789';
const PASSWORD = 'Adm1n-S3cret-Pa55';
const ENCODED_PASSWORD = encodeURIComponent(PASSWORD);
/** Every response body and header seen, to check none carries a secret. */
const seen: string[] = [];

function record(response: request.Response): request.Response {
  seen.push(response.text ?? '', JSON.stringify(response.headers));
  return response;
}

const bearer = { Authorization: `Bearer ${TOKEN}` };

describe('token auth, against postgres and redis pools', () => {
  let app: INestApplication;
  let orders: PostgresPool;
  let cache: RedisPool;
  const get = async (path: string, headers: Record<string, string> = bearer) =>
    record(await request(app.getHttpServer()).get(path).set(headers));
  const post = async (path: string, body?: object, headers: Record<string, string> = bearer) =>
    record(
      await request(app.getHttpServer())
        .post(path)
        .set(headers)
        .send(body ?? {}),
    );

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({
          name: 'orders',
          backend: 'postgres',
          // trust auth ignores the password: it is there to prove it never shows
          uri: pgUrl({ application_name: uniqueName('admin') }, { user: 'postgres', password: PASSWORD }),
          pool: { min: 1, max: 4 },
        }),
        PoolModule.forRoot({ name: 'cache', backend: 'redis', uri: redisUrl(), pool: { max: 3 } }),
        PoolAdminModule.forRoot({ token: TOKEN }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    orders = app.get<PostgresPool>(getPoolToken('orders'));
    cache = app.get<RedisPool>(getPoolToken('cache'));
  });

  afterAll(async () => {
    await app?.close();
  });

  it('answers 401 with a Bearer challenge without the token, with a wrong one, or with another scheme', async () => {
    for (const headers of [
      {} as Record<string, string>,
      { Authorization: `Bearer ${TOKEN}x` },
      { Authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { Authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` },
      { Authorization: TOKEN },
    ]) {
      for (const path of ['/admin/pools', '/admin/pools/orders', '/admin/pools/orders/connections']) {
        const response = await get(path, headers);
        expect(response.status).toBe(401);
        expect(response.headers['www-authenticate']).toBe('Bearer realm="pools"');
      }
      const pause = await post('/admin/pools/orders/pause', {}, headers);
      expect(pause.status).toBe(401);
    }
    expect(orders.state).toBe('ready'); // the refused pause did nothing
  });

  it('lists every pool with its backend, redacted target and metrics', async () => {
    const response = await get('/admin/pools');
    expect(response.status).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = response.body as PoolAdminList;
    expect(body.pools.map((p) => p.name).sort()).toEqual(['cache', 'orders']);
    const pg = body.pools.find((p) => p.name === 'orders')!;
    expect(pg.backend).toBe('postgres');
    expect(pg.target).toContain('postgres:***@127.0.0.1');
    expect(pg.metrics).toMatchObject({ name: 'orders', state: 'ready', max: 4, min: 1 });
    expect(pg.metrics.size).toBeGreaterThanOrEqual(1);
    const redis = body.pools.find((p) => p.name === 'cache')!;
    expect(redis.backend).toBe('redis');
    expect(redis.metrics).toMatchObject({ name: 'cache', state: 'ready', max: cache.metrics().max });
    expect(Math.abs(body.generatedAt - Date.now())).toBeLessThan(60_000);
  });

  it('shows one pool and its connections as they are: lent ones, and the queries run on them', async () => {
    const first = await orders.acquire();
    const second = await orders.acquire();
    try {
      await first.connection.query('SELECT 1');
      await first.connection.query('SELECT 2');
      const one = (await get('/admin/pools/orders')).body as PoolAdminSummary;
      expect(one).toMatchObject({ name: 'orders', backend: 'postgres' });
      expect(one.metrics.active).toBe(2);
      expect(one.metrics.acquired).toBeGreaterThanOrEqual(2);

      const response = await get('/admin/pools/orders/connections');
      expect(response.status).toBe(200);
      const { name, connections } = response.body as PoolAdminConnections;
      expect(name).toBe('orders');
      expect(connections.filter((c) => c.state === 'lent')).toHaveLength(2);
      expect(new Set(connections.map((c) => c.id)).size).toBe(connections.length);
      const busiest = connections.reduce((a, b) => (b.queries > a.queries ? b : a));
      expect(busiest.queries).toBeGreaterThanOrEqual(2);
      expect(typeof busiest.avgQueryMs).toBe('number');
      for (const connection of connections) {
        expect(Object.keys(connection).sort()).toEqual(
          expect.arrayContaining(['ageMs', 'createdAt', 'id', 'idleMs', 'queries', 'state', 'uses']),
        );
        expect(connection).not.toHaveProperty('connection');
      }
    } finally {
      first.release();
      second.release();
    }
    const after = (await get('/admin/pools/orders')).body as PoolAdminSummary;
    expect(after.metrics.active).toBe(0);
  });

  it('answers 404 for a pool that does not exist, on every route', async () => {
    for (const response of [
      await get('/admin/pools/missing'),
      await get('/admin/pools/missing/connections'),
      await post('/admin/pools/missing/pause'),
      await post('/admin/pools/missing/resume'),
      await post('/admin/pools/missing/drain'),
    ]) {
      expect(response.status).toBe(404);
      expect(response.body).toMatchObject({ statusCode: 404, message: 'no pool named "missing"' });
    }
  });

  it('pause holds new acquires until resume', async () => {
    const paused = await post('/admin/pools/orders/pause');
    expect(paused.status).toBe(200);
    expect((paused.body as PoolAdminSummary).metrics.state).toBe('paused');
    expect(orders.state).toBe('paused');

    let served = false;
    const waiting = orders.acquire({ timeoutMs: 20_000 }).then((lease) => {
      served = true;
      return lease;
    });
    const during = (await get('/admin/pools/orders')).body as PoolAdminSummary;
    expect(during.metrics.state).toBe('paused');
    expect(during.metrics.waiting).toBe(1);
    expect(served).toBe(false);

    const resumed = await post('/admin/pools/orders/resume');
    expect(resumed.status).toBe(200);
    expect((resumed.body as PoolAdminSummary).metrics.state).toBe('ready');
    const lease = await waiting;
    lease.release();
    expect(served).toBe(true);
  });

  it('drain stops lending (waiting for lent connections up to timeoutMs) and resume undoes it', async () => {
    const lease = await cache.acquire();
    const drain = await post('/admin/pools/cache/drain', { timeoutMs: 50 });
    expect(drain.status).toBe(200);
    expect(drain.body).toEqual({ name: 'cache', drained: false, active: 1, state: 'draining' });
    await expect(cache.acquire()).rejects.toBeInstanceOf(PoolClosedError);
    lease.release();

    const again = await post('/admin/pools/cache/drain', {});
    expect(again.body).toEqual({ name: 'cache', drained: true, active: 0, state: 'draining' });

    expect((await post('/admin/pools/cache/resume')).body.metrics.state).toBe('ready');
    await cache.use((redis) => redis.ping());
  });

  it('answers 400 for a bad drain timeout, without draining', async () => {
    // 3e9 ms is over the longest wait a Node timer takes: the engine would refuse it (a 400, not a 500).
    for (const timeoutMs of [-1, 'soon', null, 3_000_000_000]) {
      const response = await post('/admin/pools/cache/drain', { timeoutMs });
      expect(response.status).toBe(400);
    }
    expect(cache.state).toBe('ready');
  });

  it('refuses actions a browser labels cross-site (403), but not same-origin ones', async () => {
    const crossSite = await post(
      '/admin/pools/orders/pause',
      {},
      { ...bearer, 'Sec-Fetch-Site': 'cross-site' },
    );
    expect(crossSite.status).toBe(403);
    expect(orders.state).toBe('ready');
    const sameOrigin = await post(
      '/admin/pools/orders/pause',
      {},
      { ...bearer, 'Sec-Fetch-Site': 'same-origin' },
    );
    expect(sameOrigin.status).toBe(200);
    await post('/admin/pools/orders/resume');
    expect(orders.state).toBe('ready');
  });

  it('serves the dashboard page without the token, with no data in it and a strict CSP', async () => {
    const response = await get('/admin/dashboard', {});
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.headers['content-security-policy']).toContain("default-src 'none'");
    expect(response.headers['content-security-policy']).toContain("connect-src 'self'");
    expect(response.text).toContain('<title>Connection pools</title>');
    expect(response.text).not.toMatch(/<script[^>]+src=|<link[^>]+stylesheet|https?:\/\//);
    for (const text of ['orders', 'guarded', '127.0.0.1', '***']) expect(response.text).not.toContain(text);
  });

  it('never shows the password or the token in any response', () => {
    expect(seen.length).toBeGreaterThan(20);
    const all = seen.join('\n');
    expect(all).toContain('***'); // the redacted target is there...
    for (const secret of [PASSWORD, ENCODED_PASSWORD, 'S3cret', TOKEN]) expect(all).not.toContain(secret);
  });
});

/** Lets a request through when it carries `x-admin: yes`; has a dependency, to prove DI works for it. */
@Injectable()
class AdminHeaderPolicy {
  readonly header = 'x-admin';
}

@Module({ providers: [AdminHeaderPolicy], exports: [AdminHeaderPolicy] })
class AdminPolicyModule {}

@Injectable()
class AdminHeaderGuard implements CanActivate {
  constructor(@Inject(AdminHeaderPolicy) private readonly policy: AdminHeaderPolicy) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>();
    return req.headers[this.policy.header] === 'yes';
  }
}

/** What a pool logged (its `logger` option): its lifecycle shows whether a failed bootstrap closed it. */
function lifecycleLines(): { lines: string[]; logger: LoggerService } {
  const lines: string[] = [];
  const logger = { log: (m: string) => lines.push(m), warn: () => undefined, error: () => undefined };
  return { lines, logger };
}

async function startApp(admin: ReturnType<typeof PoolAdminModule.forRoot>): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      PoolModule.forRoot({ name: 'guarded', backend: 'redis', uri: redisUrl(), pool: { max: 2 } }),
      admin,
    ],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

describe('guard auth', () => {
  it('a guard class (with its dependencies from `imports`) alone: 403 when it says no, on the page too', async () => {
    const app = await startApp(
      PoolAdminModule.forRoot({ guard: AdminHeaderGuard, imports: [AdminPolicyModule] }),
    );
    try {
      const server = app.getHttpServer();
      expect((await request(server).get('/admin/pools')).status).toBe(403);
      expect((await request(server).get('/admin/pools').set('x-admin', 'no')).status).toBe(403);
      expect((await request(server).post('/admin/pools/guarded/pause')).status).toBe(403);
      expect((await request(server).get('/admin/dashboard')).status).toBe(403);
      const allowed = await request(server).get('/admin/pools').set('x-admin', 'yes');
      expect(allowed.status).toBe(200);
      expect((allowed.body as PoolAdminList).pools.map((p) => p.name)).toEqual(['guarded']);
      expect((await request(server).get('/admin/dashboard').set('x-admin', 'yes')).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('token and guard instance together: 401 without the token, 403 with it when the guard says no', async () => {
    let calls = 0;
    const guard: CanActivate = {
      canActivate: (context) => {
        calls++;
        return (
          context.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers['x-admin'] ===
          'yes'
        );
      },
    };
    const app = await startApp(PoolAdminModule.forRoot({ token: TOKEN, guard, path: '/ops/pools/' }));
    try {
      const server = app.getHttpServer();
      expect((await request(server).get('/ops/pools').set('x-admin', 'yes')).status).toBe(401);
      expect(calls).toBe(0); // the token is checked first
      expect((await request(server).get('/ops/pools').set(bearer)).status).toBe(403);
      const ok = await request(server).get('/ops/pools/guarded').set(bearer).set('x-admin', 'yes');
      expect(ok.status).toBe(200);
      expect((ok.body as PoolAdminSummary).name).toBe('guarded');
      expect((await request(server).get('/admin/pools').set(bearer).set('x-admin', 'yes')).status).toBe(404);
    } finally {
      await app.close();
    }
  });
  it('refuses at bootstrap a guard class without canActivate (not 500 on every request), closing the pools', async () => {
    @Injectable()
    class MisspelledGuard {
      canActive(): boolean {
        return true;
      }
    }
    const { lines, logger } = lifecycleLines();
    const moduleRef = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({ name: 'guarded', backend: 'redis', uri: redisUrl(), logger }),
        PoolAdminModule.forRoot({ guard: MisspelledGuard as unknown as Type<CanActivate> }),
      ],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    try {
      const error = await app.init().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(PoolAdminConfigError);
      expect(error).toMatchObject({ field: 'guard' });
      expect((error as Error).message).toContain('MisspelledGuard has no canActivate() method');
      expect(lines).toEqual([expect.stringMatching(/^ready/), 'closed']);
    } finally {
      await app.close();
    }
  });
});

describe('forRootAsync', () => {
  const ADMIN_TOKEN = 'ADMIN_TOKEN_PROVIDER';

  @Module({ providers: [{ provide: ADMIN_TOKEN, useValue: TOKEN }], exports: [ADMIN_TOKEN] })
  class SecretsModule {}

  it('takes the token from an injected provider', async () => {
    const app = await startApp(
      PoolAdminModule.forRootAsync({
        imports: [SecretsModule],
        inject: [ADMIN_TOKEN],
        useFactory: (token: string) => ({ token }),
        dashboardPath: false,
      }),
    );
    try {
      const server = app.getHttpServer();
      expect((await request(server).get('/admin/pools')).status).toBe(401);
      expect((await request(server).get('/admin/pools').set(bearer)).status).toBe(200);
      expect((await request(server).get('/admin/dashboard')).status).toBe(404); // dashboardPath: false
    } finally {
      await app.close();
    }
  });

  it('a factory that throws fails bootstrap and closes the pools already open', async () => {
    const { lines, logger } = lifecycleLines();
    const error = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({ name: 'guarded', backend: 'redis', uri: redisUrl(), logger }),
        PoolAdminModule.forRootAsync({
          // Injecting the pool makes sure it is open when the factory fails.
          inject: [getPoolToken('guarded')],
          useFactory: () => {
            throw new Error('ADMIN_TOKEN is not set');
          },
        }),
      ],
    })
      .compile()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(String(error)).toContain('ADMIN_TOKEN is not set');
    // Nest runs no shutdown hook after a failed bootstrap: the pool must not stay open.
    expect(lines).toEqual([expect.stringMatching(/^ready/), 'closed']);
  });

  it('fails bootstrap with PoolAdminConfigError when the factory gives neither token nor guard', async () => {
    const compiling = Test.createTestingModule({
      imports: [PoolAdminModule.forRootAsync({ useFactory: () => ({}) })],
    }).compile();
    const error = await compiling.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PoolAdminConfigError);
    expect(error).toBeInstanceOf(PoolConfigError);
    expect(error).toMatchObject({ field: 'token' });
  });
});
