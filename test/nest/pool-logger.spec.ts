/**
 * Pool logging: what reaches a LoggerService, at which level and how often, with real pools against the
 * real PostgreSQL server (through a FaultProxy to make it unreachable): lifecycle lines, a leak's stack,
 * connection failures throttled into a bounded number of lines, the circuit breaker once per outage, the
 * `logger` option (default Nest Logger, `false`, a custom one), and no password anywhere.
 */
import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { createPool, PoolConfigError, PoolManager, PoolModule, type PostgresPool } from '../../lib/index.js';
import { FailureThrottle } from '../../lib/nest/failure-throttle.js';
import { createPoolLogSink } from '../../lib/nest/pool-log-sink.js';
import { PoolLogger } from '../../lib/nest/pool-logger.js';
import type { PoolEngineOptions } from '../../lib/core/index.js';
import { FaultProxy } from '../../lib/testing/index.js';
import { DATABASE_URL, pgUrl, uniqueName, waitUntil } from '../backends/postgres/pg-test-support.js';
import { expectNoSecret } from '../support/secrets.js';

const PASSWORD = 'logger-Secr3t-pw';

interface Line {
  level: 'log' | 'warn' | 'error' | 'debug' | 'verbose' | 'fatal';
  message: string;
  context: unknown;
}

/** A LoggerService that keeps every line, with the context Nest's convention passes last. */
class CapturingLogger implements LoggerService {
  readonly lines: Line[] = [];
  log(message: unknown, ...rest: unknown[]): void {
    this.push('log', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.push('warn', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.push('error', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.push('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.push('verbose', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.push('fatal', message, rest);
  }
  of(context: string): Line[] {
    return this.lines.filter((line) => line.context === context);
  }
  private push(level: Line['level'], message: unknown, rest: unknown[]): void {
    this.lines.push({ level, message: String(message), context: rest.at(-1) });
  }
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A proxy to the real server, so a test can refuse connections and let them through again. */
async function startProxy(): Promise<FaultProxy> {
  const target = new URL(DATABASE_URL);
  const proxy = new FaultProxy({ target: { host: target.hostname, port: Number(target.port || 5432) } });
  await proxy.start();
  cleanups.push(() => proxy.stop());
  return proxy;
}

function proxiedUri(proxy: FaultProxy): string {
  const uri = new URL(
    pgUrl({ application_name: uniqueName('logger') }, { user: 'postgres', password: PASSWORD }),
  );
  uri.port = String(proxy.port);
  return uri.toString();
}

/**
 * A lazy `users` pool (min 1) behind a proxy that refuses connections, with a capturing logger: its creates
 * fail and retry from the start. The proxy lets them through again on `proxy.pass()`.
 */
async function poolBehindRefusingProxy(
  options: Pick<PoolEngineOptions, 'createRetry' | 'circuitBreaker'>,
): Promise<{ proxy: FaultProxy; pool: PostgresPool; capture: CapturingLogger }> {
  const proxy = await startProxy();
  await proxy.refuse();
  const pool = createPool({
    name: 'users',
    backend: 'postgres',
    uri: proxiedUri(proxy),
    pool: { startup: 'lazy', min: 1, ...options },
  });
  cleanups.push(() => pool.close());
  return { proxy, pool, capture: new CapturingLogger() };
}

describe('FailureThrottle', () => {
  it('turns 50 failures over 10 s into the first line, one summary per interval, and one recovery', () => {
    let now = 0;
    const throttle = new FailureThrottle({ intervalMs: 1_000, now: () => now });
    const reports = [];
    for (let i = 0; i < 50; i++) {
      now = i * 200;
      reports.push(throttle.failure(`attempt ${i}`));
    }
    const lines = reports.filter((r) => r.kind !== 'quiet');
    expect(lines[0]).toEqual({ kind: 'first', message: 'attempt 0' });
    // A summary at t = 1 s, 2 s, ... 9 s, each counting the failures since the previous line.
    expect(lines.slice(1).map((r) => (r.kind === 'summary' ? r.suppressed : -1))).toEqual(Array(9).fill(5));
    expect(lines.at(-1)).toMatchObject({ kind: 'summary', total: 46, sinceMs: 9_000, message: 'attempt 45' });
    now = 10_000;
    expect(throttle.success()).toEqual({ failures: 50, durationMs: 10_000 });
    expect(throttle.success()).toBeUndefined();
    expect(throttle.failure('again')).toEqual({ kind: 'first', message: 'again' });
  });
});

describe('PoolLogger with a real pool', () => {
  it('throttles 50+ failed connection attempts into a few lines, then reports the recovery once', async () => {
    const { proxy, pool, capture } = await poolBehindRefusingProxy({
      createRetry: { initialDelayMs: 1, maxDelayMs: 5, factor: 1.5 },
      circuitBreaker: false,
    });
    const logger = new PoolLogger(pool, createPoolLogSink('users', capture), {
      summaryIntervalMs: 300,
    }).attach();
    const startedAt = Date.now();
    await pool.start();
    await waitUntil(() => pool.metrics().createErrors >= 50, '50 failed attempts', 20_000);
    const elapsedMs = Date.now() - startedAt;
    const failureLines = capture.lines.filter((l) => l.message.includes('connect to'));
    expect(failureLines.every((l) => l.level === 'error')).toBe(true);
    expect(failureLines[0]!.message).toMatch(
      /^cannot connect to postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/test/,
    );
    // The first one, then at most one summary per 300 ms: never one line per attempt.
    expect(failureLines.length).toBeLessThanOrEqual(2 + Math.ceil(elapsedMs / 300));
    expect(failureLines.length).toBeLessThan(pool.metrics().createErrors / 2);
    for (const line of failureLines.slice(1))
      expect(line.message).toMatch(/^still cannot connect to .*failed attempts? in the last/);

    await proxy.pass();
    await waitUntil(
      () => capture.lines.some((l) => l.message.includes('recovered after')),
      'the recovery line',
      10_000,
    );
    const recovery = capture.lines.filter((l) => l.message.includes('recovered after'));
    expect(recovery).toHaveLength(1);
    expect(recovery[0]!.level).toBe('log');
    const failures = Number(/recovered after (\d+) failed attempts/.exec(recovery[0]!.message)?.[1]);
    expect(failures).toBeGreaterThanOrEqual(50);
    expect(failures).toBe(pool.metrics().createErrors);
    expect(capture.lines.every((l) => l.context === 'PoolModule:users')).toBe(true);
    expectNoSecret(
      capture.lines.map((l) => l.message),
      [PASSWORD, encodeURIComponent(PASSWORD)],
    );
    logger.detach();
  });

  it('logs the circuit breaker once per outage however many probes fail, and its closing', async () => {
    const { proxy, pool, capture } = await poolBehindRefusingProxy({
      createRetry: { initialDelayMs: 1, maxDelayMs: 5 },
      circuitBreaker: { failureThreshold: 2, resetTimeoutMs: 20 },
    });
    new PoolLogger(pool, createPoolLogSink('users', capture)).attach();
    let opened = 0;
    pool.on('state', (change) => {
      if (change.circuit === 'open' && change.previousCircuit !== 'open') opened++;
    });
    await pool.start();
    await waitUntil(() => opened >= 5, 'the circuit to re-open after failed probes', 20_000);
    const circuitLines = (): Line[] => capture.lines.filter((l) => l.message.startsWith('circuit '));
    expect(circuitLines().map((l) => [l.level, l.message.split(':')[0]])).toEqual([
      ['warn', 'circuit open after 2 failed connection attempts in total'],
      ['log', 'circuit half-open'],
    ]);
    await proxy.pass();
    await waitUntil(() => pool.metrics().circuit === 'closed' && pool.metrics().size >= 1, 'circuit closed');
    expect(circuitLines().map((l) => l.message.split(':')[0])).toEqual([
      'circuit open after 2 failed connection attempts in total',
      'circuit half-open',
      'circuit closed',
    ]);
    expect(circuitLines()[2]!.level).toBe('log');
  });

  it('logs `resumed`, not a second `ready`, when a drained pool is resumed', async () => {
    const capture = new CapturingLogger();
    const pool = createPool({
      name: 'users',
      backend: 'postgres',
      uri: pgUrl({ application_name: uniqueName('resume') }),
    });
    cleanups.push(() => pool.close());
    new PoolLogger(pool, createPoolLogSink('users', capture)).attach();
    await pool.start();
    await pool.drain();
    pool.resume();
    pool.pause();
    pool.resume();
    await pool.close();
    expect(capture.lines.map((l) => l.message)).toEqual([
      expect.stringMatching(/^ready \(postgres at /),
      'draining (0 connections lent)',
      'resumed',
      'paused: no new leases until resume()',
      'resumed',
      'closed',
    ]);
  });

  it('warns about a leaked lease with the stack of the acquire() that took it', async () => {
    const capture = new CapturingLogger();
    const pool = createPool({
      name: 'leaky',
      backend: 'postgres',
      uri: pgUrl({ application_name: uniqueName('leak') }),
      pool: { leakDetectionMs: 50 },
    });
    cleanups.push(() => pool.close({ timeoutMs: 100 }));
    new PoolLogger(pool, createPoolLogSink('leaky', capture)).attach();
    await pool.start();
    async function borrowAndForget(p: PostgresPool): Promise<void> {
      await p.acquire();
    }
    await borrowAndForget(pool);
    await waitUntil(() => capture.lines.some((l) => l.level === 'warn'), 'the leak warning', 5_000);
    const leak = capture.lines.find((l) => l.level === 'warn')!;
    expect(leak.message).toMatch(/^possible connection leak: a lease has been held for \d+ ms/);
    expect(leak.message).toContain('borrowAndForget');
    expect(leak.context).toBe('PoolModule:leaky');
  });
});

describe('the logger option of PoolModule', () => {
  it('a LoggerService gets the lifecycle at `log` with the pool named in the context', async () => {
    const capture = new CapturingLogger();
    const moduleRef = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot({
          name: 'users',
          backend: 'postgres',
          uri: pgUrl({ application_name: uniqueName('logopt') }, { user: 'postgres', password: PASSWORD }),
          pool: { min: 2 },
          logger: capture,
        }),
      ],
    }).compile();
    await moduleRef.init();
    const ready = capture.of('PoolModule:users');
    expect(ready).toEqual([
      {
        level: 'log',
        message: expect.stringMatching(
          /^ready \(postgres at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:5432\/test.*; 2 connections open, max 10\)$/,
        ),
        context: 'PoolModule:users',
      },
    ]);
    const pool = moduleRef.get(PoolManager).get('users');
    pool.pause();
    pool.resume();
    await moduleRef.close();
    expect(capture.of('PoolModule:users').map((l) => [l.level, l.message])).toEqual([
      ['log', expect.stringMatching(/^ready/)],
      ['log', 'paused: no new leases until resume()'],
      ['log', 'resumed'],
      ['log', 'draining (0 connections lent)'],
      ['log', 'closed'],
    ]);
    expectNoSecret(
      capture.lines.map((l) => l.message),
      [PASSWORD],
    );
  });

  it('by default logs through Nest’s Logger (context PoolModule:<name>); `false` silences a pool', async () => {
    const appLogger = new CapturingLogger();
    const moduleRef = await Test.createTestingModule({
      imports: [
        PoolModule.forRoot([
          { name: 'loud', backend: 'postgres', uri: pgUrl({ application_name: uniqueName('loud') }) },
          {
            name: 'quiet',
            backend: 'postgres',
            uri: pgUrl({ application_name: uniqueName('quiet') }),
            logger: false,
          },
        ]),
      ],
    })
      .setLogger(appLogger)
      .compile();
    await moduleRef.init();
    await moduleRef.close();
    expect(appLogger.of('PoolModule:loud').map((l) => l.message)).toEqual([
      expect.stringMatching(/^ready/),
      'draining (0 connections lent)',
      'closed',
    ]);
    expect(appLogger.lines.filter((l) => String(l.context).includes('quiet'))).toEqual([]);
  });

  it('retries at bootstrap are logged through the pool’s logger; an invalid logger is a PoolConfigError', async () => {
    const proxy = await startProxy();
    await proxy.refuse();
    const capture = new CapturingLogger();
    const failing = Test.createTestingModule({
      imports: [
        PoolModule.forRoot({
          name: 'down',
          backend: 'postgres',
          uri: proxiedUri(proxy),
          retryAttempts: 1,
          retryDelayMs: 10,
          pool: { startupTimeoutMs: 2_000, circuitBreaker: false },
          logger: capture,
        }),
      ],
    })
      .compile()
      .then((m) => m.init());
    await expect(failing).rejects.toThrow();
    const lines = capture.of('PoolModule:down');
    expect(
      lines.some(
        (l) => l.level === 'warn' && /^could not open \(.*\); retrying \(1\/1\) in 10 ms$/.test(l.message),
      ),
    ).toBe(true);
    expect(
      lines.filter((l) => l.level === 'error' && l.message.startsWith('cannot connect to')),
    ).toHaveLength(1);
    expectNoSecret(
      lines.map((l) => l.message),
      [PASSWORD, encodeURIComponent(PASSWORD)],
    );

    const manager = new PoolManager();
    await expect(
      manager.openPool('bad', {
        backend: 'postgres',
        uri: DATABASE_URL,
        logger: 'console' as unknown as false,
      }),
    ).rejects.toMatchObject({ name: 'PoolConfigError', field: 'logger' });
    await expect(
      manager.openPool('bad2', { backend: 'postgres', uri: DATABASE_URL, logger: {} as unknown as false }),
    ).rejects.toBeInstanceOf(PoolConfigError);
  });

  it('the sink scrubs URI credentials from any line, whoever wrote it', () => {
    const capture = new CapturingLogger();
    createPoolLogSink('x', capture).write(
      'error',
      `failed: postgres://app:${PASSWORD}@db:5432/x and password=${PASSWORD}`,
    );
    expect(capture.lines).toEqual([
      {
        level: 'error',
        message: 'failed: postgres://app:***@db:5432/x and password=***',
        context: 'PoolModule:x',
      },
    ]);
    createPoolLogSink('y', false).write('error', 'nothing');
    expect(capture.lines).toHaveLength(1);
  });
});
