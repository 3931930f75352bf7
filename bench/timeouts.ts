/**
 * Scenario 3: a storm of acquires that all time out. Pool max 1, its one resource held for the whole
 * scenario; N acquires with a small timeout are launched in batches (so the storm ends in a few seconds
 * and the queue never holds more than one batch). Afterwards: how many timers are still alive, and how
 * much the heap grew (after a full GC) compared with the moment just before the storm.
 *
 * Timers are counted two ways:
 * - `process.getActiveResourcesInfo()` entries of type 'Timeout' (what the issue asks for). This only
 *   sees ref'd timers; ours unrefs all of its own, so on its own it would prove little.
 * - every setTimeout/setInterval created during the storm, tracked through thin wrappers around the
 *   globals (installed only for this scenario) until it fires or is cleared. This sees unref'd ones too.
 */
import genericPool from 'generic-pool';
import { Pool as TarnPool, TimeoutError as TarnTimeoutError } from 'tarn';
import { Pool } from '../lib/core/index.js';
import { makeResource, type Resource } from './floor-pool.js';
import { collectGarbage, nextTurn } from './report.js';

export type StormPoolName = 'ours' | 'generic-pool' | 'tarn';

export interface TimeoutStormOptions {
  total: number;
  batch: number;
  timeoutMs: number;
  /** A smaller storm first, so compiled code and inline caches are not counted as growth. */
  warmup: number;
  log: (line: string) => void;
}

export interface TimeoutStormResult {
  pool: StormPoolName;
  acquires: number;
  timedOut: number;
  /** Acquires that settled some other way (should be 0). */
  otherOutcomes: number;
  durationMs: number;
  /** getActiveResourcesInfo() 'Timeout' count before and after the storm. */
  activeTimeoutsBefore: number;
  activeTimeoutsAfter: number;
  /** Timers created during the storm (ref'd or not) that are still pending afterwards. */
  trackedTimersCreated: number;
  trackedTimersLeft: number;
  heapUsedBefore: number;
  heapUsedAfter: number;
  heapGrowth: number;
  /** The pool's own count, where it has one (ours: metrics().timeouts delta). */
  poolReportedTimeouts: number | null;
}

interface StormSubject {
  name: StormPoolName;
  /** Resolves true if the acquire timed out, false if it settled otherwise. */
  acquireExpectingTimeout(): Promise<boolean>;
  reportedTimeouts(): number | null;
  close(): Promise<void>;
}

async function createSubject(name: StormPoolName, timeoutMs: number): Promise<StormSubject> {
  if (name === 'ours') {
    const pool = new Pool<Resource>({
      name: 'bench-timeouts',
      min: 0,
      max: 1,
      acquireTimeoutMs: timeoutMs,
      factory: { create: async () => makeResource(), destroy: async () => {} },
    });
    await pool.start();
    const held = await pool.acquire();
    return {
      name,
      acquireExpectingTimeout: () =>
        pool.acquire().then(
          (lease) => {
            lease.release();
            return false;
          },
          (error: unknown) => (error as Error).name === 'PoolTimeoutError',
        ),
      reportedTimeouts: () => pool.metrics().timeouts,
      close: async () => {
        held.release();
        await pool.close();
      },
    };
  }
  if (name === 'generic-pool') {
    const pool = genericPool.createPool<Resource>(
      { create: async () => makeResource(), destroy: async () => {} },
      { min: 0, max: 1, acquireTimeoutMillis: timeoutMs },
    );
    const held = await pool.acquire();
    return {
      name,
      acquireExpectingTimeout: () =>
        pool.acquire().then(
          (resource) => {
            void pool.release(resource);
            return false;
          },
          (error: unknown) => (error as Error).name === 'TimeoutError',
        ),
      reportedTimeouts: () => null,
      close: async () => {
        await pool.release(held);
        await pool.drain();
        await pool.clear();
      },
    };
  }
  const pool = new TarnPool<Resource>({
    create: async () => makeResource(),
    destroy: () => {},
    min: 0,
    max: 1,
    acquireTimeoutMillis: timeoutMs,
  });
  const held = await pool.acquire().promise;
  return {
    name,
    acquireExpectingTimeout: () =>
      pool.acquire().promise.then(
        (resource) => {
          pool.release(resource);
          return false;
        },
        (error: unknown) => error instanceof TarnTimeoutError,
      ),
    reportedTimeouts: () => null,
    close: async () => {
      pool.release(held);
      await pool.destroy();
    },
  };
}

/** Wraps the timer globals to follow every timer created until uninstall(). */
class TimerTracker {
  readonly live = new Set<unknown>();
  created = 0;
  private readonly original = {
    setTimeout: globalThis.setTimeout,
    clearTimeout: globalThis.clearTimeout,
    setInterval: globalThis.setInterval,
    clearInterval: globalThis.clearInterval,
  };

  install(): void {
    const { live, original } = this;
    const count = (): void => {
      this.created++;
    };
    const wrappedSetTimeout = (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const timer = original.setTimeout(
        (...callbackArgs: unknown[]) => {
          live.delete(timer);
          callback(...callbackArgs);
        },
        ms,
        ...args,
      );
      live.add(timer);
      count();
      return timer;
    };
    const wrappedSetInterval = (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const timer = original.setInterval(callback, ms, ...args);
      live.add(timer);
      count();
      return timer;
    };
    const wrappedClear = (timer: unknown): void => {
      live.delete(timer);
      original.clearTimeout(timer as Parameters<typeof clearTimeout>[0]);
    };
    globalThis.setTimeout = wrappedSetTimeout as unknown as typeof setTimeout;
    globalThis.setInterval = wrappedSetInterval as unknown as typeof setInterval;
    globalThis.clearTimeout = wrappedClear as typeof clearTimeout;
    globalThis.clearInterval = wrappedClear as typeof clearInterval;
  }

  uninstall(): void {
    globalThis.setTimeout = this.original.setTimeout;
    globalThis.clearTimeout = this.original.clearTimeout;
    globalThis.setInterval = this.original.setInterval;
    globalThis.clearInterval = this.original.clearInterval;
  }
}

function activeTimeouts(): number {
  return process.getActiveResourcesInfo().filter((type) => type === 'Timeout').length;
}

async function storm(
  subject: StormSubject,
  total: number,
  batch: number,
): Promise<{ timedOut: number; other: number }> {
  let timedOut = 0;
  let other = 0;
  for (let launched = 0; launched < total;) {
    const size = Math.min(batch, total - launched);
    const pending: Promise<boolean>[] = new Array(size);
    for (let i = 0; i < size; i++) pending[i] = subject.acquireExpectingTimeout();
    launched += size;
    for (const outcome of await Promise.all(pending)) {
      if (outcome) timedOut++;
      else other++;
    }
  }
  return { timedOut, other };
}

export async function runTimeoutStorm(
  name: StormPoolName,
  options: TimeoutStormOptions,
): Promise<TimeoutStormResult> {
  const subject = await createSubject(name, options.timeoutMs);
  try {
    await storm(subject, options.warmup, options.batch);
    const tracker = new TimerTracker();
    tracker.install();
    let uninstalled = false;
    try {
      await collectGarbage();
      const heapUsedBefore = process.memoryUsage().heapUsed;
      const activeTimeoutsBefore = activeTimeouts();
      const reportedBefore = subject.reportedTimeouts();

      const start = performance.now();
      const { timedOut, other } = await storm(subject, options.total, options.batch);
      const durationMs = performance.now() - start;

      // Let anything scheduled "right after" the last rejection run before counting.
      await nextTurn();
      await nextTurn();
      const trackedTimersLeft = tracker.live.size;
      const activeTimeoutsAfter = activeTimeouts();
      tracker.uninstall();
      uninstalled = true;
      await collectGarbage();
      const heapUsedAfter = process.memoryUsage().heapUsed;
      const reportedAfter = subject.reportedTimeouts();

      const result: TimeoutStormResult = {
        pool: name,
        acquires: options.total,
        timedOut,
        otherOutcomes: other,
        durationMs,
        activeTimeoutsBefore,
        activeTimeoutsAfter,
        trackedTimersCreated: tracker.created,
        trackedTimersLeft,
        heapUsedBefore,
        heapUsedAfter,
        heapGrowth: heapUsedAfter - heapUsedBefore,
        poolReportedTimeouts:
          reportedBefore === null || reportedAfter === null ? null : reportedAfter - reportedBefore,
      };
      options.log(
        `  ${name}: ${timedOut} timeouts in ${durationMs.toFixed(0)} ms, ${trackedTimersLeft} timers left`,
      );
      return result;
    } finally {
      if (!uninstalled) tracker.uninstall();
    }
  } finally {
    await subject.close();
  }
}
