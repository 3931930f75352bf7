/**
 * The assertions every backend's chaos run must pass (the list), on the figures in ChaosResult.
 * Time bounds are generous: the machine running this is loaded, and what is checked is that calls are
 * bounded and the pool recovers, not how fast the machine is. Failures name the phase.
 */
import { expect } from '@jest/globals';
import type { ChaosRun } from './chaos-run.js';

/** Throughput back within this long after each heal. */
export const RECOVERY_BOUND_MS = 2000;
/** heapUsed after gc may grow at most this much over the run (JIT, Nest's and the drivers' caches). */
export const HEAP_GROWTH_BOUND_MB = 40;

export function expectResilient(run: ChaosRun): void {
  const { result } = run;
  const acceptedErrors = new RegExp(result.acceptedErrors);
  // No crash and nothing unhandled; every error an Error.
  expect(run.untyped).toEqual([]);
  expect(result.unhandledRejections).toBe(0);
  expect(result.uncaughtExceptions).toBe(0);
  expect(result.recorderFull).toBe(false);
  // Every error is one of the pool's typed errors (or the driver's, named, for a connection cut mid-call).
  expect(run.errorKinds.filter((kind) => !acceptedErrors.test(kind))).toEqual([]);

  // A healthy baseline: most calls succeed; the only failures are timeouts - callers that waited out
  // acquireTimeoutMs behind the other 49 (50 callers share `max` connections), or a query slower than
  // queryTimeoutMs (a loaded machine or server is slow).
  const [baseline] = result.phases;
  expect(baseline!.results).toBeGreaterThan(result.callers);
  expect(baseline!.results).toBeGreaterThanOrEqual(baseline!.requests / 2);
  const timeouts = ['PoolTimeoutError', 'PoolQueryTimeoutError'];
  expect(Object.keys(baseline!.errors).filter((kind) => !timeouts.includes(kind))).toEqual([]);

  // Every caller got a result or an error (lost = 0), within acquireTimeoutMs + queryTimeoutMs + slack.
  const unsettled = result.phases.filter(
    (p) => p.lost !== 0 || p.requests !== p.results + sumOf(p.errors) || p.slowestMs > result.callBoundMs,
  );
  expect(
    unsettled.map(({ name, requests, results, errors, lost, slowestMs }) => ({
      name,
      requests,
      results,
      errors,
      lost,
      slowestMs,
    })),
  ).toEqual([]);

  // The server never saw more connections from the pool than it may have.
  const crowded = result.phases.filter((p) => p.peakConnections > result.connectionLimit);
  expect(crowded.map((p) => [p.name, p.peakConnections])).toEqual([]);
  expect(Math.max(...result.phases.map((p) => p.peakConnections))).toBeGreaterThan(0);

  // Back within 2 s of each heal: a first success, and throughput at >= 50% of the rate just before the fault.
  const heals = result.phases.filter((p) => p.name.startsWith('heal'));
  expect(heals.length).toBeGreaterThan(0);
  const slow = heals.filter(
    (p) =>
      !((p.firstSuccessMs ?? Infinity) < RECOVERY_BOUND_MS && (p.recoveryMs ?? Infinity) < RECOVERY_BOUND_MS),
  );
  // On failure the recovery's shape and the backend's trace are printed with it: a slow heal is diagnosed from
  // CI's output alone.
  expect(
    slow.map(({ name, firstSuccessMs, recoveryMs, referenceOkPerSecond, okPerWindow, trace }) => ({
      name,
      firstSuccessMs,
      recoveryMs,
      referenceOkPerSecond,
      okPerWindow,
      trace,
    })),
  ).toEqual([]);
  // ...and fully back by the end of the heal: circuit closed, every connection (re)opened or opening (50 callers keep
  // the pool saturated), so a pool that recovered only part of its capacity does not pass either.
  expect(
    heals
      .filter(
        (p) => p.poolAtEnd.circuit !== 'closed' || p.poolAtEnd.size + p.poolAtEnd.pending !== p.poolAtEnd.max,
      )
      .map((p) => ({ name: p.name, ...p.poolAtEnd })),
  ).toEqual([]);

  // The outage: the pool kept trying, but no faster than the backoff schedule allows.
  expect(result.outage.attempts).toBeGreaterThanOrEqual(1);
  expect(result.outage.attempts).toBeLessThanOrEqual(result.outage.bound);

  // No lease leaked.
  expect(result.leakEvents).toBe(0);
  expect(result.activeAfter).toBe(0);
  expect(result.acquired).toBe(result.released);

  // Memory stable over the run.
  expect(result.heapUsedEndMb - result.heapUsedStartMb).toBeLessThan(HEAP_GROWTH_BOUND_MB);
}

function sumOf(counts: Readonly<Record<string, number>>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}
