/**
 * Runs one backend through the chaos timeline: a FaultProxy in front of the real server, the Nest app's
 * pool pointed at the proxy, CALLERS concurrent caller loops going through the app's service, a sampler of
 * the server-side connection count, and the timeline's faults one after another. Everything measured ends
 * up in a ChaosResult (written for docs/reliability.md); the checks are in expect-resilient.ts.
 */
import type { Type } from '@nestjs/common';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import {
  createBackoffDelay,
  type PoolEngineOptions,
  type PoolErrorContext,
  type PoolLeakInfo,
  type PoolMetrics,
  type PoolModuleOptions,
  type PoolStateChange,
  type ResolvedCreateRetry,
} from '../../lib/index.js';
import { FaultProxy } from '../../lib/testing/fault-proxy.js';
import { sleep, waitUntil } from '../support/wait.js';
import { startChaosApp, type ChaosCaller } from './chaos-app.js';
import type { ChaosResult, PhaseResult } from './chaos-results.js';
import { CHAOS_TIMELINE } from './chaos-timeline.js';
import { CallRecorder } from './call-recorder.js';

export const CALLERS = 50;
export const MAX = 5;
export const ACQUIRE_TIMEOUT_MS = 1000;
export const QUERY_TIMEOUT_MS = 500;
/** Event-loop slack on a loaded 2-vCPU machine: 50 callers, the sampler and the proxy share one thread. */
export const SLACK_MS = 1000;
export const CALL_BOUND_MS = ACQUIRE_TIMEOUT_MS + QUERY_TIMEOUT_MS + SLACK_MS;
/** The engine's defaults, spelled out because the outage's attempt bound is computed from them. */
export const CREATE_RETRY: ResolvedCreateRetry = {
  initialDelayMs: 100,
  maxDelayMs: 1000,
  factor: 2,
  jitter: 0.2,
};
/**
 * Half the default resetTimeoutMs: with the default 1 s, a MongoDB pool (whose driver re-discovers the
 * server by a heartbeat every 500 ms before the breaker's probe can succeed) sometimes needed just over 2 s
 * to get back to half its throughput on the loaded CI machine.
 */
export const CIRCUIT_BREAKER = { failureThreshold: 5, resetTimeoutMs: 500 };
export const MAX_CONCURRENT_CREATES = 2;
/** Longer than any call may take, so a 'leak' event means a lease that was really never given back. */
const LEAK_DETECTION_MS = 5000;
const SAMPLE_EVERY_MS = 100;
/** Trace samples kept per heal phase (one per SAMPLE_EVERY_MS at most). */
const MAX_TRACE = 40;
/** Calls the recorder has room for (typed arrays, allocated before the first heap measurement). */
const RECORDER_CAPACITY = 1_500_000;
/** Throughput is "back" when a window of this length reaches half the pre-fault rate. */
const THROUGHPUT_WINDOW_MS = 250;
/** The pre-fault rate: successes in this long before the fault started. */
const REFERENCE_WINDOW_MS = 1000;

/** The pool options every backend shares (backends add their own, e.g. a longer createTimeoutMs). */
export function chaosPoolOptions(overrides: PoolEngineOptions = {}): PoolEngineOptions {
  return {
    max: MAX,
    acquireTimeoutMs: ACQUIRE_TIMEOUT_MS,
    createTimeoutMs: 500,
    validationTimeoutMs: 300,
    maxConcurrentCreates: MAX_CONCURRENT_CREATES,
    createRetry: CREATE_RETRY,
    circuitBreaker: CIRCUIT_BREAKER,
    leakDetectionMs: LEAK_DETECTION_MS,
    ...overrides,
  };
}

/** What the run needs of a backend's pool (every BackendPool has it). */
export interface ChaosPool {
  metrics(): PoolMetrics;
  on(event: 'error', listener: (error: Error, context: PoolErrorContext) => void): unknown;
  on(event: 'leak', listener: (info: PoolLeakInfo) => void): unknown;
  on(event: 'state', listener: (change: PoolStateChange) => void): unknown;
}

/** What a backend's chaos file provides. */
export interface ChaosBackend<TPool extends ChaosPool> {
  readonly backend: string;
  /** The real server the proxy forwards to. */
  readonly target: { host: string; port: number };
  /** PoolModule options for a pool named CHAOS_POOL that connects to `proxy`. */
  moduleOptions(proxy: FaultProxy): PoolModuleOptions;
  /** The @InjectPool service the callers go through. */
  readonly service: Type<ChaosCaller>;
  /** Most server-side connections allowed: `max`, plus any the driver keeps for itself (MongoDB monitoring). */
  readonly connectionLimit: number;
  readonly connectionSource: string;
  /** The pool's connections as the server (or, for MongoDB, the proxy) counts them now. */
  serverConnections(proxy: FaultProxy, pool: TPool): Promise<number>;
  /** Connection attempts made so far (cumulative). */
  attempts(pool: TPool, createFailures: number): number;
  /** The most attempts the backoff schedule allows in `windowMs` of total outage. */
  attemptBound(windowMs: number): number;
  readonly attemptsCounted: string;
  /**
   * Error kinds (see CallRecorder) a caller may get: the pool's typed errors, and the driver's own for a
   * connection cut under a running call. Anything else fails the run.
   */
  readonly acceptedErrors: RegExp;
  /** A one-line state of the pool beyond metrics() (Redis: the shared client), sampled during heal phases. */
  trace?(pool: TPool): string;
}

export interface ChaosRun {
  readonly result: ChaosResult;
  /** Errors that were not Error objects. */
  readonly untyped: readonly string[];
  /** Every error kind seen, in any phase. */
  readonly errorKinds: readonly string[];
}

/**
 * The most connection attempts the engine may start in `windowMs` of a total outage in which each attempt
 * fails at once: the first MAX_CONCURRENT_CREATES together, then one at a time after the backoff (its
 * shortest, full jitter taken off); once `failureThreshold` failed in a row the circuit opens for
 * resetTimeoutMs before each single probe.
 */
export function engineAttemptBound(windowMs: number, firstAttempts = MAX_CONCURRENT_CREATES): number {
  const minDelay = (failures: number): number => createBackoffDelay(CREATE_RETRY, failures, () => 1);
  let attempts = firstAttempts;
  let failures = firstAttempts;
  let t = 0;
  for (;;) {
    t += failures >= CIRCUIT_BREAKER.failureThreshold ? CIRCUIT_BREAKER.resetTimeoutMs : minDelay(failures);
    if (t > windowMs) return attempts;
    attempts++;
    failures++;
  }
}

/**
 * The same for a single client that follows the engine's schedule (createRetry, then one attempt per
 * resetTimeoutMs once failureThreshold attempts failed): Redis `shared`.
 */
export function singleClientAttemptBound(windowMs: number): number {
  return engineAttemptBound(windowMs, 1);
}

/**
 * The only error kinds a caller may get: the pool's typed errors (PoolConnectionError with its cause's
 * code, e.g. `PoolConnectionError (ECONNRESET)`). A driver's own error is recorded as "not a PoolError: ..."
 * and fails the run.
 */
export const POOL_ERRORS = /^Pool[A-Za-z]*Error( \([\w-]+\))?$/;

/** `global.gc`, also inside Jest's sandbox (a fresh context gets the flag's `gc` too). */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function heapUsedMb(gc: () => void): number {
  gc();
  gc();
  return Math.round((process.memoryUsage().heapUsed / 2 ** 20) * 10) / 10;
}

export async function runChaos<TPool extends ChaosPool>(spec: ChaosBackend<TPool>): Promise<ChaosRun> {
  const wallStart = performance.now();
  const unhandled: unknown[] = [];
  const uncaught: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  const onUncaught = (error: unknown): void => void uncaught.push(error);
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUncaught);

  const proxy = new FaultProxy({ target: spec.target });
  await proxy.start();
  const gc = collector();
  const recorder = new CallRecorder(RECORDER_CAPACITY);
  const phaseCount = CHAOS_TIMELINE.length;
  const peaks = new Array<number>(phaseCount).fill(0);
  let sampling = true;
  let sampler: Promise<void> | undefined;
  let callers: Promise<void>[] = [];
  let running = true;
  let app: Awaited<ReturnType<typeof startChaosApp<TPool>>> | undefined;
  try {
    const moduleOptions = spec.moduleOptions(proxy);
    const poolOptions = moduleOptions.pool ?? {};
    app = await startChaosApp<TPool>(moduleOptions, spec.service);
    const { pool, service } = app;
    let createFailures = 0;
    let leakEvents = 0;
    const poolErrors = Array.from({ length: phaseCount }, () => ({}) as Record<string, number>);
    pool.on('error', (_error, context) => {
      if (context.phase === 'create') createFailures++;
      const counts = poolErrors[recorder.phase]!;
      counts[context.phase] = (counts[context.phase] ?? 0) + 1;
    });
    pool.on('leak', () => void leakEvents++);
    const starts: number[] = [];
    const traces = Array.from({ length: phaseCount }, () => [] as string[]);
    // When the circuit changed, ms into the phase: the first thing to look at when a recovery is slow.
    const circuitChanges = Array.from({ length: phaseCount }, () => [] as string[]);
    pool.on('state', (change) => {
      if (change.circuit === change.previousCircuit) return;
      const at = Math.round(performance.now() - (starts[recorder.phase] ?? wallStart));
      circuitChanges[recorder.phase]!.push(`${at} ms ${change.circuit}`);
    });

    // Warm up (JIT, lazily created clients), so the first heap figure is not taken from a cold start.
    // A slow server may time a few of these out (the pool is still growing): one success is enough.
    const warmUp = await Promise.allSettled(Array.from({ length: CALLERS }, (_, i) => service.call(i)));
    const warm = warmUp.find((outcome) => outcome.status === 'fulfilled');
    if (warm === undefined) throw (warmUp[0] as PromiseRejectedResult).reason;
    const heapStart = heapUsedMb(gc);

    const sampled = (): Promise<void> =>
      (async () => {
        while (sampling) {
          const phase = recorder.phase;
          try {
            const trace = spec.trace?.(pool);
            if (trace !== undefined && CHAOS_TIMELINE[phase]!.heal && traces[phase]!.length < MAX_TRACE) {
              const at = Math.round(performance.now() - starts[phase]!);
              traces[phase]!.push(`${at} ms ${trace}`);
            }
            const count = await spec.serverConnections(proxy, pool);
            peaks[phase] = Math.max(peaks[phase]!, count);
          } catch {
            // A failed sample (the admin connection hiccuped) is skipped; the next one counts.
          }
          await sleep(SAMPLE_EVERY_MS);
        }
      })();
    sampler = sampled();

    callers = Array.from({ length: CALLERS }, async (_, i) => {
      while (running) {
        const slot = recorder.start();
        if (slot < 0) return; // out of room: reported as a capacity failure below
        try {
          await service.call(i);
          recorder.succeed(slot);
        } catch (error) {
          recorder.fail(slot, error);
          await sleep(10); // a failing caller must not spin (an open circuit fails at once)
        }
      }
    });

    const ends: number[] = [];
    const accepted: number[] = [];
    const poolAtEnd: PhaseResult['poolAtEnd'][] = [];
    let outage = { windowMs: 0, attempts: 0 };
    for (const [index, phase] of CHAOS_TIMELINE.entries()) {
      const startedAt = performance.now();
      const attemptsBefore = spec.attempts(pool, createFailures);
      const acceptedBefore = proxy.stats.accepted;
      recorder.phase = index;
      starts.push(startedAt);
      await phase.apply(proxy);
      await sleep(Math.max(0, startedAt + phase.ms - performance.now()));
      const endedAt = performance.now();
      ends.push(endedAt);
      accepted.push(proxy.stats.accepted - acceptedBefore);
      const { circuit, size, pending, waiting, max } = pool.metrics();
      poolAtEnd.push({ circuit, size, pending, waiting, max });
      if (phase.outage) {
        outage = {
          windowMs: endedAt - startedAt,
          attempts: spec.attempts(pool, createFailures) - attemptsBefore,
        };
      }
    }

    running = false;
    // A call that never settles must not hang the run: wait at most the call bound, then count it as lost.
    await within(Promise.all(callers), CALL_BOUND_MS + 2000);
    sampling = false;
    await sampler;
    await waitUntil(() => pool.metrics().active === 0, 'leases to come back', 3000).catch(() => undefined);
    const after = pool.metrics();
    const heapEnd = heapUsedMb(gc);

    const baselineIndex = 0;
    const baselineFrom = starts[baselineIndex]! + 500;
    const baselineOk = recorder.successEnds(baselineFrom, ends[baselineIndex]!).length;
    const baselineOkPerSecond = (baselineOk * 1000) / (ends[baselineIndex]! - baselineFrom);

    const phases: PhaseResult[] = CHAOS_TIMELINE.map((phase, index) => {
      const summary = recorder.summary(index);
      const result: PhaseResult = {
        name: phase.name,
        fault: phase.fault,
        durationMs: Math.round(ends[index]! - starts[index]!),
        ...summary,
        peakConnections: peaks[index]!,
        accepted: accepted[index]!,
        poolErrors: poolErrors[index]!,
        circuitChanges: circuitChanges[index]!,
        poolAtEnd: poolAtEnd[index]!,
      };
      if (!phase.heal) return result;
      const healedAt = starts[index]!;
      // Throughput is compared with the pool's own just before the fault: the last second of the healthy
      // phase that preceded it (the baseline, or the previous heal). On a machine whose speed drifts over
      // the run (other work starting or stopping), the baseline of 30 s earlier says little about now.
      const healthyEnd = ends[index - 2] ?? ends[baselineIndex]!;
      const referenceOkPerSecond =
        recorder.successEnds(healthyEnd - REFERENCE_WINDOW_MS, healthyEnd).length *
        (1000 / REFERENCE_WINDOW_MS);
      // The first success of a call made after the heal; throughput counts every success that ended after it.
      const [firstOk] = recorder.successEnds(healedAt, ends[index]!, healedAt);
      const okEnds = recorder.successEnds(healedAt, ends[index]!);
      return {
        ...result,
        firstSuccessMs: firstOk === undefined ? undefined : Math.round(firstOk - healedAt),
        referenceOkPerSecond: Math.round(referenceOkPerSecond),
        recoveryMs: throughputRecoveryMs(okEnds, healedAt, ends[index]!, referenceOkPerSecond),
        okPerWindow: okPerWindow(okEnds, healedAt, ends[index]!),
        trace: traces[index]!,
      };
    });

    const result: ChaosResult = {
      backend: spec.backend,
      callers: CALLERS,
      max: MAX,
      connectionLimit: spec.connectionLimit,
      connectionSource: spec.connectionSource,
      acquireTimeoutMs: ACQUIRE_TIMEOUT_MS,
      queryTimeoutMs: QUERY_TIMEOUT_MS,
      callBoundMs: CALL_BOUND_MS,
      acceptedErrors: spec.acceptedErrors.source,
      poolOptions,
      phases,
      outage: {
        windowMs: Math.round(outage.windowMs),
        attempts: outage.attempts,
        bound: spec.attemptBound(outage.windowMs),
        counted: spec.attemptsCounted,
      },
      baselineOkPerSecond: Math.round(baselineOkPerSecond),
      heapUsedStartMb: heapStart,
      heapUsedEndMb: heapEnd,
      unhandledRejections: unhandled.length,
      uncaughtExceptions: uncaught.length,
      leakEvents: Math.max(leakEvents, after.leaks),
      activeAfter: after.active,
      acquired: after.acquired,
      released: after.released,
      recorderFull: recorder.count >= recorder.capacity,
      wallMs: 0,
    };
    const kinds = new Set<string>();
    for (const phase of phases) for (const kind of Object.keys(phase.errors)) kinds.add(kind);
    return {
      result: { ...result, wallMs: Math.round(performance.now() - wallStart) },
      untyped: [...recorder.untyped, ...unhandled.map(String), ...uncaught.map(String)],
      errorKinds: [...kinds],
    };
  } finally {
    running = false;
    sampling = false;
    await within(Promise.all(callers), CALL_BOUND_MS + 2000);
    await sampler;
    await app?.app.close();
    await proxy.stop();
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUncaught);
  }
}

/** Successful calls per THROUGHPUT_WINDOW_MS window (not sliding) from `healedAt`: the recovery's shape. */
function okPerWindow(okEnds: readonly number[], healedAt: number, phaseEnd: number): number[] {
  const counts = new Array<number>(Math.ceil((phaseEnd - healedAt) / THROUGHPUT_WINDOW_MS)).fill(0);
  for (const end of okEnds) {
    const at = Math.floor((end - healedAt) / THROUGHPUT_WINDOW_MS);
    if (at >= 0 && at < counts.length) counts[at]!++;
  }
  return counts;
}

/** Waits for `work`, but no longer than `ms` (and leaves no timer behind). */
async function within(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/**
 * ms from `healedAt` until the end of the first THROUGHPUT_WINDOW_MS window (sliding by 50 ms) in which
 * successful calls ended at >= 50% of `referenceOkPerSecond`; undefined if that never happened in the phase.
 */
function throughputRecoveryMs(
  okEnds: readonly number[],
  healedAt: number,
  phaseEnd: number,
  referenceOkPerSecond: number,
): number | undefined {
  const needed = (referenceOkPerSecond * THROUGHPUT_WINDOW_MS) / 1000 / 2;
  let first = 0;
  let last = 0;
  for (let from = healedAt; from + THROUGHPUT_WINDOW_MS <= phaseEnd; from += 50) {
    const to = from + THROUGHPUT_WINDOW_MS;
    while (first < okEnds.length && okEnds[first]! < from) first++;
    while (last < okEnds.length && okEnds[last]! < to) last++;
    if (last - first >= needed) return Math.round(to - healedAt);
  }
  return undefined;
}
