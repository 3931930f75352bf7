/**
 * PoolModule with @nestjs/testing, against the real PostgreSQL server: every way of registering a pool,
 * injection, the PoolManager, start-up retries and failures, and that nothing is left open afterwards.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { Global, Inject, Injectable, Module, type BeforeApplicationShutdown } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import type pg from 'pg';
import {
  getPoolToken,
  InjectPool,
  PoolConfigError,
  PoolManager,
  PoolModule,
  PostgresPool,
  type PoolModuleFactoryOptions,
  type PoolOptionsFactory,
} from '../../lib/index.js';
import { FaultProxy } from '../../lib/testing/index.js';
import {
  adminClient,
  countBackends,
  DATABASE_URL,
  pgUrl,
  uniqueName,
  waitUntil,
} from '../backends/postgres/pg-test-support.js';

let admin: pg.Client;
beforeAll(async () => {
  admin = await adminClient();
});
afterAll(async () => {
  await admin.end();
});

@Injectable()
class UsersService {
  constructor(@InjectPool('users') readonly users: PostgresPool) {}
  async one(): Promise<number> {
    const result = await this.users.query<{ n: number }>('SELECT 1::int AS n');
    return result.rows[0]!.n;
  }
}

describe('PoolModule.forRoot', () => {
  it('registers a named pool, injects it with @InjectPool, and closes it with the app', async () => {
    const app = uniqueName('forroot');
    const moduleRef = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({
          name: 'users',
          backend: 'postgres',
          uri: pgUrl({ application_name: app }),
          pool: { min: 2 },
        }),
      ],
      providers: [UsersService],
    }).compile();
    await moduleRef.init();
    const service = moduleRef.get(UsersService);
    expect(service.users).toBeInstanceOf(PostgresPool);
    await expect(service.one()).resolves.toBe(1);
    expect(moduleRef.get(getPoolToken('users'))).toBe(service.users);
    const manager = moduleRef.get(PoolManager);
    expect(manager.names()).toEqual(['users']);
    expect(manager.get('users')).toBe(service.users);
    expect(manager.metrics()['users']).toMatchObject({ name: 'users', min: 2 });
    await waitUntil(async () => (await countBackends(admin, app)) === 2, 'min connections open');
    await moduleRef.close();
    expect(service.users.state).toBe('closed');
    await waitUntil(async () => (await countBackends(admin, app)) === 0, 'connections closed');
  });

  it('takes several pools at once, and the default name', async () => {
    @Injectable()
    class Both {
      constructor(
        @InjectPool() readonly primary: PostgresPool,
        @InjectPool('reports') readonly reports: PostgresPool,
      ) {}
    }
    const moduleRef = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot([
          { backend: 'postgres', uri: DATABASE_URL },
          { name: 'reports', backend: 'postgres', uri: DATABASE_URL, pool: { max: 2 } },
        ]),
      ],
      providers: [Both],
    }).compile();
    await moduleRef.init();
    const both = moduleRef.get(Both);
    expect(both.primary.name).toBe('default');
    expect(both.reports.name).toBe('reports');
    expect(moduleRef.get(PoolManager).names().sort()).toEqual(['default', 'reports']);
    await moduleRef.close();
  });

  it('honours options carried in the URI (application_name)', async () => {
    const app = uniqueName('uriopt');
    const moduleRef = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({ name: 'users', backend: 'postgres', uri: pgUrl({ application_name: app }) }),
      ],
    }).compile();
    await moduleRef.init();
    const pool = moduleRef.get<PostgresPool>(getPoolToken('users'));
    const result = await pool.query<{ name: string }>('SELECT current_setting($1) AS name', [
      'application_name',
    ]);
    expect(result.rows[0]!.name).toBe(app);
    await moduleRef.close();
  });
});

describe('PoolModule.forRootAsync', () => {
  it('useFactory with imports and inject (ConfigService)', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        PoolModule.forRootAsync({
          name: 'users',
          imports: [ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => ({ DATABASE_URL })] })],
          inject: [ConfigService],
          useFactory: (config: ConfigService) => ({
            backend: 'postgres',
            uri: config.getOrThrow<string>('DATABASE_URL'),
            pool: { max: 3 },
          }),
        }),
      ],
      providers: [UsersService],
    }).compile();
    await moduleRef.init();
    await expect(moduleRef.get(UsersService).one()).resolves.toBe(1);
    expect(moduleRef.get(UsersService).users.metrics().max).toBe(3);
    await moduleRef.close();
  });

  it('useClass gets the pool name; useExisting reuses a provider; extraProviders are available', async () => {
    @Injectable()
    class Settings implements PoolOptionsFactory {
      constructor(@Inject('DB_URL') private readonly url: string) {}
      createPoolOptions(poolName: string): PoolModuleFactoryOptions {
        return { backend: 'postgres', uri: this.url, pool: { max: poolName === 'users' ? 4 : 2 } };
      }
    }
    @Module({ providers: [Settings, { provide: 'DB_URL', useValue: DATABASE_URL }], exports: [Settings] })
    class SettingsModule {}

    const moduleRef = await Test.createTestingModule({
      imports: [
        PoolModule.forRootAsync({
          name: 'users',
          useClass: Settings,
          extraProviders: [{ provide: 'DB_URL', useValue: DATABASE_URL }],
        }),
        PoolModule.forRootAsync({ name: 'audit', imports: [SettingsModule], useExisting: Settings }),
      ],
    }).compile();
    await moduleRef.init();
    const manager = moduleRef.get(PoolManager);
    expect(manager.get('users').metrics().max).toBe(4);
    expect(manager.get('audit').metrics().max).toBe(2);
    await moduleRef.close();
  });

  it('rejects a forRootAsync with no or several option sources', () => {
    expect(() => PoolModule.forRootAsync({ name: 'x' })).toThrow(PoolConfigError);
    expect(() =>
      PoolModule.forRootAsync({
        name: 'x',
        useFactory: () => ({ backend: 'postgres' }),
        useClass: class {} as never,
      }),
    ).toThrow('needs exactly one of useFactory, useClass or useExisting');
  });
});

describe('failures at bootstrap', () => {
  it('a configuration error fails at once, naming the pool and the field, without retries', async () => {
    const started = performance.now();
    const error = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({
          name: 'users',
          backend: 'postgres',
          uri: DATABASE_URL,
          pool: { min: 5, max: 2 },
          retryAttempts: 5,
          retryDelayMs: 1000,
        }),
      ],
    })
      .compile()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolConfigError);
    expect((error as PoolConfigError).message).toContain('Pool "users": invalid option "pool.min"');
    expect(performance.now() - started).toBeLessThan(900);
  });

  it('a missing uri (e.g. an unset environment variable) is a PoolConfigError', async () => {
    const uri: string | undefined = process.env['NESTJS_POOL_SURELY_UNSET_VARIABLE'];
    const error = await Test.createTestingModule({
      imports: [PoolModule.forRoot({ name: 'users', backend: 'postgres', uri })],
    })
      .compile()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolConfigError);
    expect((error as PoolConfigError).poolName).toBe('users');
  });

  it('duplicate pool names are rejected with what to fix', async () => {
    const error = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({ name: 'users', backend: 'postgres', uri: DATABASE_URL }),
        PoolModule.forRoot({ name: 'users', backend: 'postgres', uri: DATABASE_URL }),
      ],
    })
      .compile()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolConfigError);
    expect((error as Error).message).toContain('a pool named "users" is already registered');
  });

  it('@InjectPool of an unregistered name fails with the token in the message', async () => {
    @Injectable()
    class NeedsMissing {
      constructor(@InjectPool('missing') readonly pool: PostgresPool) {}
    }
    const error = await Test.createTestingModule({
      imports: [PoolModule.forRoot({ name: 'users', backend: 'postgres', uri: DATABASE_URL })],
      providers: [NeedsMissing],
    })
      .compile()
      .catch((e: unknown) => e);
    expect(String((error as Error).message)).toContain('nestjs-pool:pool:missing');
  });

  it('retries opening the pool while the server is unreachable, then starts', async () => {
    const target = new URL(DATABASE_URL);
    const proxy = new FaultProxy({ target: { host: target.hostname, port: Number(target.port || 5432) } });
    await proxy.start();
    await proxy.refuse();
    const uri = new URL(DATABASE_URL);
    uri.port = String(proxy.port);
    setTimeout(() => void proxy.pass(), 400);
    try {
      const moduleRef = await Test.createTestingModule({
        imports: [
          PoolModule.forRoot({
            name: 'users',
            backend: 'postgres',
            uri: uri.toString(),
            retryAttempts: 10,
            retryDelayMs: 150,
          }),
        ],
      }).compile();
      await moduleRef.init();
      await expect(
        moduleRef.get<PostgresPool>(getPoolToken('users')).query('SELECT 1'),
      ).resolves.toBeDefined();
      await moduleRef.close();
    } finally {
      await proxy.stop();
    }
  });

  it("startup: 'lazy' lets the app start while the database is down; its health check still tries the server", async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({
          name: 'users',
          backend: 'postgres',
          uri: 'postgres://postgres@127.0.0.1:1/test',
          retryAttempts: 0,
          pool: { startup: 'lazy' },
        }),
      ],
    }).compile();
    await moduleRef.init();
    const health = await moduleRef.get(PoolManager).checkHealth({ timeoutMs: 300 });
    expect(health['users']!.status).toBe('down');
    await moduleRef.close();
  });

  it('when the second pool cannot connect, the first one (already open) is closed: nothing left behind', async () => {
    const app = uniqueName('halfway');
    const error = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({
          name: 'users',
          backend: 'postgres',
          uri: pgUrl({ application_name: app }),
          pool: { min: 2 },
        }),
        PoolModule.forRoot({
          name: 'broken',
          backend: 'postgres',
          uri: 'postgres://postgres@127.0.0.1:1/test',
          retryAttempts: 1,
          retryDelayMs: 100,
        }),
      ],
    })
      .compile()
      .catch((e: unknown) => e);
    expect((error as Error).name).toBe('PoolUnavailableError');
    expect((error as Error).message).toContain('Pool "broken"');
    await waitUntil(async () => (await countBackends(admin, app)) === 0, 'first pool closed');
  });

  it('a bad lifecycle option or a failing forRootAsync factory fails bootstrap and closes the pools already open', async () => {
    const failures = [
      {
        name: 'lifecycle option',
        broken: PoolModule.forRoot({
          name: 'broken',
          backend: 'postgres',
          uri: DATABASE_URL,
          retryAttempts: -1,
        }),
        expected: /retryAttempts/,
      },
      {
        name: 'factory',
        broken: PoolModule.forRootAsync({
          name: 'broken',
          useFactory: async (): Promise<PoolModuleFactoryOptions> => {
            await new Promise((resolve) => setTimeout(resolve, 20));
            throw new Error('DATABASE_URL is not set');
          },
        }),
        expected: /DATABASE_URL is not set/,
      },
      {
        name: 'factory result',
        broken: PoolModule.forRootAsync({
          name: 'broken',
          useFactory: () => null as unknown as PoolModuleFactoryOptions,
        }),
        expected: /must return the pool options/,
      },
    ];
    for (const failure of failures) {
      const app = uniqueName('abort');
      const users = PoolModule.forRoot({
        name: 'users',
        backend: 'postgres',
        uri: pgUrl({ application_name: app }),
        pool: { min: 2 },
      });
      const error = await Test.createTestingModule({ imports: [users, failure.broken] })
        .compile()
        .catch((e: unknown) => e);
      expect(String(error)).toMatch(failure.expected);
      // Nest runs no shutdown hook after a failed bootstrap: the manager closes what the first pool opened.
      await waitUntil(async () => (await countBackends(admin, app)) === 0, `users closed (${failure.name})`);
    }
  });

  it('a pool still starting when bootstrap fails elsewhere is closed, not retried', async () => {
    const lines: string[] = [];
    const logger = {
      log: (message: string) => lines.push(message),
      warn: (message: string) => lines.push(message),
      error: (message: string) => lines.push(message),
    };
    const error = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({
          name: 'refused',
          backend: 'postgres',
          uri: 'postgres://postgres@127.0.0.1:1/test', // nothing listens: its first start fails
          retryAttempts: 3,
          retryDelayMs: 3000,
          logger,
        }),
        PoolModule.forRoot({ name: 'broken', backend: 'postgres', uri: DATABASE_URL, retryDelayMs: -5 }),
      ],
    })
      .compile()
      .catch((e: unknown) => e);
    expect(String(error)).toMatch(/retryDelayMs/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(lines.filter((line) => line.includes('retrying'))).toEqual([]);
  });

  it('waits between start-up retries on a ref’d timer (the process cannot exit mid-bootstrap), ended by a close', async () => {
    const retryDelayMs = 4_321; // tells the retry wait's timer from the driver's
    const retryTimers: NodeJS.Timeout[] = [];
    const realSetTimeout = globalThis.setTimeout;
    const spy = jest.spyOn(globalThis, 'setTimeout').mockImplementation(((
      callback: () => void,
      ms?: number,
    ) => {
      const timer = realSetTimeout(callback, ms);
      if (ms === retryDelayMs) retryTimers.push(timer);
      return timer;
    }) as typeof setTimeout);
    const manager = new PoolManager();
    try {
      const opening = manager
        .openPool('refused', {
          backend: 'postgres',
          uri: 'postgres://postgres@127.0.0.1:1/test', // nothing listens: its first start fails
          retryAttempts: 1,
          retryDelayMs,
          logger: false,
        })
        .catch((e: unknown) => e);
      await waitUntil(() => retryTimers.length === 1, 'the retry wait');
      // Nothing else may hold the event loop while the app waits to retry: an unref'd timer would let
      // Node exit with code 0 in the middle of bootstrap.
      expect(retryTimers[0]!.hasRef()).toBe(true);
      const started = performance.now();
      await manager.closeAll();
      expect(await opening).toBeInstanceOf(Error);
      expect(performance.now() - started).toBeLessThan(retryDelayMs / 2); // the wait did not outlive close
      expect(manager.get('refused').metrics().state).toBe('closed');
    } finally {
      spy.mockRestore();
    }
  });
});

describe('shutdown', () => {
  it('drains then closes in onApplicationShutdown (waits for leases), idempotent', async () => {
    const app = uniqueName('shutdown');
    const moduleRef = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({
          name: 'users',
          backend: 'postgres',
          uri: pgUrl({ application_name: app }),
          shutdown: { drainTimeoutMs: 2000, closeTimeoutMs: 500 },
        }),
      ],
    }).compile();
    await moduleRef.init();
    const pool = moduleRef.get<PostgresPool>(getPoolToken('users'));
    const lease = await pool.acquire();
    const states: string[] = [];
    pool.on('state', (change) => states.push(change.state));
    setTimeout(() => lease.release(), 200);
    const started = performance.now();
    await moduleRef.close();
    expect(performance.now() - started).toBeGreaterThanOrEqual(150); // waited for the lease
    expect(states).toEqual(['draining', 'closed']);
    await moduleRef.close(); // idempotent
    await waitUntil(async () => (await countBackends(admin, app)) === 0, 'connections closed');
  });

  it('shutdown timeouts: longer than a timer can wait is a config error; Infinity waits for every lease', async () => {
    const error = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({
          name: 'users',
          backend: 'postgres',
          uri: DATABASE_URL,
          shutdown: { closeTimeoutMs: 30 * 24 * 3_600_000 },
        }),
      ],
    })
      .compile()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolConfigError);
    expect((error as PoolConfigError).field).toBe('shutdown.closeTimeoutMs');

    const moduleRef = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({
          name: 'users',
          backend: 'postgres',
          uri: DATABASE_URL,
          shutdown: { drainTimeoutMs: Infinity, closeTimeoutMs: Infinity },
        }),
      ],
    }).compile();
    await moduleRef.init();
    const pool = moduleRef.get<PostgresPool>(getPoolToken('users'));
    const lease = await pool.acquire();
    setTimeout(() => lease.release(), 150);
    await moduleRef.close();
    expect(pool.metrics()).toMatchObject({ state: 'closed', size: 0, released: 1 });
  });

  it('a lease never returned is bounded by drain and close timeouts', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({
          name: 'users',
          backend: 'postgres',
          uri: DATABASE_URL,
          shutdown: { drainTimeoutMs: 100, closeTimeoutMs: 100 },
        }),
      ],
    }).compile();
    await moduleRef.init();
    const pool = moduleRef.get<PostgresPool>(getPoolToken('users'));
    await pool.acquire(); // leaked on purpose
    const started = performance.now();
    await moduleRef.close();
    expect(performance.now() - started).toBeLessThan(2000);
    expect(pool.metrics()).toMatchObject({ state: 'closed', size: 0 });
  });

  it('a global module imported before PoolModule can still use the pool in its beforeApplicationShutdown', async () => {
    @Injectable()
    class AuditFlush implements BeforeApplicationShutdown {
      flushed: number | undefined;
      constructor(@InjectPool('users') readonly users: PostgresPool) {}
      async beforeApplicationShutdown(): Promise<void> {
        this.flushed = await this.users.use(
          async (client) => (await client.query<{ n: number }>('SELECT 1::int AS n')).rows[0]!.n,
        );
      }
    }
    @Global()
    @Module({ providers: [AuditFlush], exports: [AuditFlush] })
    class AuditModule {}

    const moduleRef = await Test.createTestingModule({
      // Global like PoolManagerModule and registered first, so Nest runs its shutdown hooks after the manager's.
      imports: [AuditModule, PoolModule.forRoot({ name: 'users', backend: 'postgres', uri: DATABASE_URL })],
    }).compile();
    await moduleRef.init();
    const audit = moduleRef.get(AuditFlush);
    await moduleRef.close();
    expect(audit.flushed).toBe(1);
    expect(audit.users.metrics().state).toBe('closed');
  });
});
