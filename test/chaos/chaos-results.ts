/**
 * What one backend's chaos run measured, as written to `<results dir>/<backend>.json` for
 * scripts/run-chaos.mjs to render into docs/reliability.md. Only measured figures go in here.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PoolEngineOptions } from '../../lib/index.js';

export interface PhaseResult {
  /** The scenario's name in the timeline (e.g. `blackhole`, `heal after blackhole`). */
  readonly name: string;
  /** What the proxy did during it. */
  readonly fault: string;
  /** Measured wall time of the phase. */
  readonly durationMs: number;
  /** Calls started during the phase. */
  readonly requests: number;
  readonly results: number;
  /** Errors by kind (`error.name`, with the Node/driver `code` when it has one). */
  readonly errors: Readonly<Record<string, number>>;
  /** Calls started in the phase that never settled. */
  readonly lost: number;
  /** Slowest call started in the phase. */
  readonly slowestMs: number;
  /** Highest server-side connection count sampled during the phase. */
  readonly peakConnections: number;
  /** Connections the proxy accepted during the phase (refused ones never reach it). */
  readonly accepted: number;
  /** The pool's 'error' events during the phase, by the event's phase (create, connection, ...). */
  readonly poolErrors: Readonly<Record<string, number>>;
  /** For a heal phase: successful calls per 250 ms window from the heal (the recovery's shape). */
  readonly okPerWindow?: readonly number[];
  /** For a heal phase: the backend's trace (e.g. Redis' shared client), every 100 ms or so. */
  readonly trace?: readonly string[];
  /** The circuit breaker's changes during the phase, as `<ms into the phase> ms <circuit>`, for diagnosis. */
  readonly circuitChanges: readonly string[];
  /** metrics() at the end of the phase, for diagnosis. */
  readonly poolAtEnd: {
    readonly circuit: string;
    readonly size: number;
    readonly pending: number;
    readonly waiting: number;
    readonly max: number;
  };
  /** For a heal phase: successful calls per second in the last second before the fault (what "back" means). */
  readonly referenceOkPerSecond?: number;
  /** For a heal phase: ms from the heal until the first successful call (started after the heal) ended. */
  readonly firstSuccessMs?: number;
  /** For a heal phase: ms from the heal until throughput was back at >= 50% of the baseline's. */
  readonly recoveryMs?: number;
}

export interface OutageAttempts {
  readonly windowMs: number;
  /** Connection attempts the pool made during the outage. */
  readonly attempts: number;
  /** The most the backoff schedule allows over the window. */
  readonly bound: number;
  /** How they were counted. */
  readonly counted: string;
}

export interface ChaosResult {
  readonly backend: string;
  readonly callers: number;
  readonly max: number;
  /** The most server-side connections allowed (max, plus the driver's monitoring sockets for MongoDB). */
  readonly connectionLimit: number;
  /** How server-side connections were counted. */
  readonly connectionSource: string;
  readonly acquireTimeoutMs: number;
  readonly queryTimeoutMs: number;
  /** Bound on each call: acquireTimeoutMs + queryTimeoutMs + slack. */
  readonly callBoundMs: number;
  /** The error kinds a caller may see (a regular expression's source), the pool's typed errors first. */
  readonly acceptedErrors: string;
  /** The pool's engine options as the suite set them. */
  readonly poolOptions: Readonly<PoolEngineOptions>;
  readonly phases: readonly PhaseResult[];
  readonly outage: OutageAttempts;
  /** Successful calls per second during the baseline. */
  readonly baselineOkPerSecond: number;
  readonly heapUsedStartMb: number;
  readonly heapUsedEndMb: number;
  readonly unhandledRejections: number;
  readonly uncaughtExceptions: number;
  readonly leakEvents: number;
  /** metrics() after the callers stopped. */
  readonly activeAfter: number;
  readonly acquired: number;
  readonly released: number;
  /** The call recorder ran out of room (the run then fails: calls went unrecorded). */
  readonly recorderFull: boolean;
  readonly wallMs: number;
}

/** Where results go: NESTJS_POOL_CHAOS_RESULTS (set by scripts/run-chaos.mjs) or a temp directory. */
export function resultsDir(): string {
  return process.env.NESTJS_POOL_CHAOS_RESULTS ?? join(tmpdir(), 'nestjs-pool-chaos');
}

export function writeResult(result: ChaosResult): string {
  const dir = resultsDir();
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${result.backend}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  return file;
}
