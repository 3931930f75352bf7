/**
 * Scenario 4: the database is down. The factory fails every attempt (after `failLatencyMs`, like a refused
 * connection) for `durationMs`, while 50 callers keep asking: each acquires (timeout 1000 ms), and when
 * that fails — timeout, fast failure, anything — yields one turn of the event loop and asks again. We
 * count how many times each pool calls factory.create in that window.
 *
 * Ours must stay within its backoff schedule: `expectedMaxAttempts` replays the schedule in its most
 * aggressive form (failures take no time, every delay gets the full jitter reduction) and counts the
 * attempts that could start before `durationMs`.
 */
import genericPool from 'generic-pool';
import { Pool as TarnPool } from 'tarn';
import { Pool, type ResolvedPoolOptions } from '../lib/core/index.js';
import { nextTurn, sleep } from './report.js';

export type CreateStormPoolName = 'ours' | 'generic-pool' | 'tarn';

export interface CreateStormOptions {
  durationMs: number;
  waiters: number;
  acquireTimeoutMs: number;
  failLatencyMs: number;
  log: (line: string) => void;
}

export interface CreateStormResult {
  pool: CreateStormPoolName;
  durationMs: number;
  /** factory.create calls that started within durationMs. */
  attempts: number;
  attemptsPerSecond: number;
  /** acquire() calls made by the callers within durationMs, and how many of them failed. */
  acquireCalls: number;
  acquireFailures: number;
  /** Ours only: the most attempts its schedule allows in durationMs. */
  expectedMaxAttempts: number | null;
  /** Ours only: the schedule's steady-state rate (attempts per second once the breaker is open). */
  steadyStateAttemptsPerSecond: number | null;
}

/**
 * The most create attempts ours can start in `durationMs` while every attempt fails, replaying the
 * engine's rules (Pool.fill / onCreateFailure / CircuitBreaker): the first wave starts up to
 * `maxConcurrentCreates` attempts; once an attempt has failed they go one at a time, each allowed
 * delay(failures) after the previous failure (shortest jitter); after `failureThreshold` consecutive
 * failures the breaker opens, and every `resetTimeoutMs` it lets exactly one probe through, whose
 * failure re-opens it. Failures are taken to be instant, which only makes the schedule denser than
 * reality, so the real count can only be lower.
 */
export function expectedMaxAttempts(
  options: Pick<ResolvedPoolOptions, 'createRetry' | 'circuitBreaker' | 'maxConcurrentCreates' | 'max'>,
  durationMs: number,
): number {
  const { createRetry: retry, circuitBreaker: breaker } = options;
  const shortestDelay = (failures: number): number =>
    Math.min(retry.maxDelayMs, retry.initialDelayMs * retry.factor ** (failures - 1)) * (1 - retry.jitter);
  let attempts = 0;
  let failures = 0;
  let now = 0;
  let open = false;
  while (now < durationMs) {
    if (open && breaker !== false) {
      // Half-open: a single probe; it fails and the breaker opens again for resetTimeoutMs.
      attempts++;
      failures++;
      now += breaker.resetTimeoutMs;
      continue;
    }
    const wave = failures === 0 ? Math.min(options.maxConcurrentCreates, options.max) : 1;
    attempts += wave;
    failures += wave;
    if (breaker !== false && failures >= breaker.failureThreshold) {
      open = true;
      now += breaker.resetTimeoutMs;
    } else {
      now += shortestDelay(failures);
    }
  }
  return attempts;
}

/** Attempts per second once the breaker is open (or, without one, at the capped backoff). */
export function steadyStateRate(
  options: Pick<ResolvedPoolOptions, 'createRetry' | 'circuitBreaker' | 'maxConcurrentCreates'>,
): number {
  if (options.circuitBreaker !== false) return 1000 / options.circuitBreaker.resetTimeoutMs;
  return 1000 / (options.createRetry.maxDelayMs * (1 - options.createRetry.jitter / 2));
}

class FailingFactory {
  attempts = 0;
  counting = true;

  constructor(private readonly latencyMs: number) {}

  create = (): Promise<never> => {
    if (this.counting) this.attempts++;
    return new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('connect ECONNREFUSED 127.0.0.1:5432 (simulated)')), this.latencyMs),
    );
  };
}

interface Subject {
  acquireAndRelease(): Promise<void>;
  close(): Promise<void>;
  expectedMaxAttempts(durationMs: number): number | null;
  steadyStateRate(): number | null;
}

async function createSubject(
  name: CreateStormPoolName,
  factory: FailingFactory,
  options: CreateStormOptions,
): Promise<Subject> {
  const destroy = async (): Promise<void> => {};
  if (name === 'ours') {
    const pool = new Pool<never>({
      name: 'bench-create-storm',
      min: 0,
      max: 10,
      acquireTimeoutMs: options.acquireTimeoutMs,
      startup: 'lazy',
      factory: { create: factory.create, destroy },
    });
    await pool.start();
    return {
      acquireAndRelease: async () => (await pool.acquire()).release(),
      close: () => pool.close(),
      expectedMaxAttempts: (durationMs) => expectedMaxAttempts(pool.options, durationMs),
      steadyStateRate: () => steadyStateRate(pool.options),
    };
  }
  if (name === 'generic-pool') {
    const pool = genericPool.createPool<never>(
      { create: factory.create, destroy },
      { min: 0, max: 10, acquireTimeoutMillis: options.acquireTimeoutMs },
    );
    return {
      acquireAndRelease: async () => {
        await pool.release(await pool.acquire());
      },
      close: async () => {
        await pool.drain();
        await pool.clear();
      },
      expectedMaxAttempts: () => null,
      steadyStateRate: () => null,
    };
  }
  const pool = new TarnPool<never>({
    create: factory.create,
    destroy,
    min: 0,
    max: 10,
    acquireTimeoutMillis: options.acquireTimeoutMs,
  });
  return {
    acquireAndRelease: async () => {
      pool.release(await pool.acquire().promise);
    },
    close: () => pool.destroy().then(() => undefined),
    expectedMaxAttempts: () => null,
    steadyStateRate: () => null,
  };
}

export async function runCreateStorm(
  name: CreateStormPoolName,
  options: CreateStormOptions,
): Promise<CreateStormResult> {
  const factory = new FailingFactory(options.failLatencyMs);
  const subject = await createSubject(name, factory, options);
  let stopped = false;
  let acquireCalls = 0;
  let acquireFailures = 0;

  const caller = async (): Promise<void> => {
    while (!stopped) {
      acquireCalls++;
      try {
        await subject.acquireAndRelease();
      } catch {
        if (!stopped) acquireFailures++;
      }
      await nextTurn();
    }
  };

  const start = performance.now();
  const callers = Array.from({ length: options.waiters }, caller);
  await sleep(options.durationMs);
  const elapsed = performance.now() - start;
  stopped = true;
  factory.counting = false;
  const result: CreateStormResult = {
    pool: name,
    durationMs: elapsed,
    attempts: factory.attempts,
    attemptsPerSecond: (factory.attempts / elapsed) * 1000,
    acquireCalls,
    acquireFailures,
    // The bound is computed for the window actually observed (the sleep may overrun a little).
    expectedMaxAttempts: subject.expectedMaxAttempts(elapsed),
    steadyStateAttemptsPerSecond: subject.steadyStateRate(),
  };
  await subject.close();
  await Promise.all(callers);
  options.log(`  ${name}: ${factory.attempts} create attempts in ${elapsed.toFixed(0)} ms`);
  return result;
}
