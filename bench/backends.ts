/**
 * Backend benchmark: the backend pools against their drivers' own clients, against real servers, in one
 * process.
 *
 * - postgres: `users.query('SELECT 1')` (max 10, validateOnBorrow with a 500 ms bypass window,
 *   pipelineDepth 4) vs `pg.Pool({ max: 10 }).query('SELECT 1')`. Target ≥ 1.0×. The same pool without
 *   pipelining (pipelineDepth 1, the default: one connection per query, as pg.Pool) is measured in the same
 *   rounds and shown for information: it drives the same pg.Client with the same system calls per query as
 *   pg.Pool, so it runs at parity.
 * - redis: `pool.shared.get(key)` vs one bare ioredis client's `get(key)`. Target ≥ 0.9×. The lease path,
 *   `pool.use((r) => r.get(key))`, is measured in the same rounds and shown for information.
 * - mongodb: `pool.use((db) => db.collection(c).findOne({ _id }))` vs a bare MongoClient with the same
 *   `maxPoolSize`. Target ≥ 0.9×.
 *
 * `callers` concurrent callers each run the operation back to back for `durationMs`; every participant of a
 * backend is warmed up first, then measured once per round, the order rotated each round (ours first, then
 * the peer first, ...). Throughput, p50 and p99 are the medians over the rounds; the ratio is ours / peer of
 * the median throughputs. A backend whose server can't be reached is reported as skipped, with the reason.
 *
 * Servers: DATABASE_URL, REDIS_URL, MONGODB_URI (defaults below). The result is plain data (JSON-safe).
 */
import { cpus, loadavg } from 'node:os';
import { MongoClient } from 'mongodb';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createPool } from '../lib/index.js';
import {
  type Check,
  collectGarbage,
  formatRatio,
  median,
  pairedRatio,
  spread,
  table,
  verdict,
} from './report.js';

export type BackendName = 'postgres' | 'redis' | 'mongodb';

export interface BackendBenchOptions {
  /** Length of one measured sample (per participant and round). */
  durationMs: number;
  rounds: number;
  /** Concurrent callers. */
  callers: number;
  quick: boolean;
}

/** One participant's figures: medians over the rounds, plus the per-round values. */
export interface ParticipantResult {
  label: string;
  /** Median over the rounds of completed operations per wall-clock second. */
  opsPerSecond: number;
  /** Median over the rounds of operations per CPU-second of this process (the client-side cost). */
  cpuOpsPerSecond: number;
  /** Median over the rounds of each round's latency percentile, in milliseconds. */
  p50Ms: number;
  p99Ms: number;
  /** (max - min) / median of the rounds' throughput. */
  spread: number;
  roundOpsPerSecond: number[];
  roundP50Ms: number[];
  roundP99Ms: number[];
}

export interface MeasuredBackend {
  backend: BackendName;
  status: 'measured';
  /** What one operation is, e.g. "SELECT 1". */
  operation: string;
  /** Where it ran, credentials redacted. */
  server: string;
  ours: ParticipantResult;
  peer: ParticipantResult;
  /** Extra paths of ours shown for information (the Redis lease path, the unpipelined PostgreSQL pool). */
  extras: ParticipantResult[];
  /** ours / peer, of the median throughputs. */
  ratio: number;
  /** Median of the per-round ratios (the two samples of a round ran back to back). */
  pairedRatio: number;
  target: number;
  pass: boolean;
}

export interface UnmeasuredBackend {
  backend: BackendName;
  /** skipped: the server could not be reached; failed: an operation failed during the measurement. */
  status: 'skipped' | 'failed';
  operation: string;
  server: string;
  reason: string;
  target: number;
}

export type BackendOutcome = MeasuredBackend | UnmeasuredBackend;

export interface BackendBenchResult {
  callers: number;
  durationMs: number;
  warmupMs: number;
  rounds: number;
  quick: boolean;
  poolMax: number;
  backends: BackendOutcome[];
  /** 1-minute load average at the start and end, and the number of CPUs: wall-clock figures are noisy when high. */
  loadAverage: { start: number; end: number; cpus: number };
  /** One check per measured backend (skipped or failed backends have none), scenario "backends". */
  checks: Check[];
}

export const BACKEND_POOL_MAX = 10;
export const BACKEND_TARGETS: Readonly<Record<BackendName, number>> = Object.freeze({
  postgres: 1.0,
  redis: 0.9,
  mongodb: 0.9,
});

const DEFAULT_URLS: Readonly<Record<BackendName, string>> = Object.freeze({
  postgres: 'postgres://postgres@127.0.0.1:5432/test',
  redis: 'redis://127.0.0.1:6379/0',
  mongodb: 'mongodb://127.0.0.1:27017/',
});
const ENV_NAMES: Readonly<Record<BackendName, string>> = Object.freeze({
  postgres: 'DATABASE_URL',
  redis: 'REDIS_URL',
  mongodb: 'MONGODB_URI',
});
const OPERATIONS: Readonly<Record<BackendName, string>> = Object.freeze({
  postgres: 'SELECT 1',
  redis: 'GET',
  mongodb: 'findOne by _id',
});

/** The postgres pool's `pipelineDepth` in the checked comparison. */
const PIPELINE_DEPTH = 4;

/** How long probing a server may take before the backend is skipped. */
const PROBE_TIMEOUT_MS = 3_000;
const MONGO_DATABASE = 'nestjs_pool_bench';
const MONGO_COLLECTION = 'backends';

// ---------------------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------------------

type Operation = () => Promise<unknown>;

interface Participant {
  label: string;
  run: Operation;
}

interface Sample {
  opsPerSecond: number;
  cpuOpsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

interface SampleState {
  until: number;
  ops: number;
  latencies: number[];
}

async function worker(run: Operation, state: SampleState): Promise<void> {
  for (;;) {
    const started = performance.now();
    await run();
    const ended = performance.now();
    state.latencies.push(ended - started);
    state.ops++;
    if (ended >= state.until) return;
  }
}

/** Untimed run after the forced GC, before each sample (see sample()). */
const REWARM_MS = 100;

async function untimed(run: Operation, callers: number, durationMs: number): Promise<void> {
  const state: SampleState = { until: performance.now() + durationMs, ops: 0, latencies: [] };
  await Promise.allSettled(Array.from({ length: callers }, () => worker(run, state)));
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[index]!;
}

/** `callers` callers run `run` back to back for `durationMs`; an operation that fails fails the sample. */
async function sample(run: Operation, callers: number, durationMs: number): Promise<Sample> {
  await collectGarbage();
  // As in the engine bench: a forced full GC makes V8 drop optimized code, so an untimed run re-optimizes
  // it first; otherwise each sample would time its own re-optimization (more for the path with more layers).
  await untimed(run, callers, REWARM_MS);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const state: SampleState = { until: started + durationMs, ops: 0, latencies: [] };
  const workers: Promise<void>[] = [];
  for (let i = 0; i < callers; i++) workers.push(worker(run, state));
  const outcomes = await Promise.allSettled(workers);
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
  const sorted = Float64Array.from(state.latencies).sort();
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return {
    opsPerSecond: (state.ops * 1000) / elapsedMs,
    cpuOpsPerSecond: cpuSeconds > 0 ? state.ops / cpuSeconds : NaN,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
  };
}

function summarise(label: string, samples: readonly Sample[]): ParticipantResult {
  const ops = samples.map((s) => s.opsPerSecond);
  return {
    label,
    opsPerSecond: median(ops),
    cpuOpsPerSecond: median(samples.map((s) => s.cpuOpsPerSecond)),
    p50Ms: median(samples.map((s) => s.p50Ms)),
    p99Ms: median(samples.map((s) => s.p99Ms)),
    spread: spread(ops),
    roundOpsPerSecond: ops.map(round3),
    roundP50Ms: samples.map((s) => round3(s.p50Ms)),
    roundP99Ms: samples.map((s) => round3(s.p99Ms)),
  };
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/**
 * Warms every participant up, then measures each once per round; round r starts with participant
 * r mod n (so with two participants, ours and the peer alternate going first).
 */
async function compare(
  participants: readonly Participant[],
  options: BackendBenchOptions & { warmupMs: number },
  log: (line: string) => void,
): Promise<{ results: ParticipantResult[]; pairedRatio: number }> {
  for (const p of participants) await sample(p.run, options.callers, options.warmupMs);
  const samples: Sample[][] = participants.map(() => []);
  for (let round = 0; round < options.rounds; round++) {
    for (let k = 0; k < participants.length; k++) {
      const index = (round + k) % participants.length;
      samples[index]!.push(await sample(participants[index]!.run, options.callers, options.durationMs));
    }
    log(
      `  round ${round + 1}/${options.rounds}: ` +
        participants.map((p, i) => `${p.label} ${Math.round(samples[i]![round]!.opsPerSecond)}/s`).join(', '),
    );
  }
  const ops = (i: number): number[] => samples[i]!.map((s) => s.opsPerSecond);
  return {
    results: participants.map((p, i) => summarise(p.label, samples[i]!)),
    pairedRatio: pairedRatio(ops(0), ops(1)),
  };
}

// ---------------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------------

class Unreachable extends Error {}

function errorMessage(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return [...new Set(error.errors.map(errorMessage))].join('; ');
  }
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** The URL without its password. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Runs `fn` with a list of cleanups it registers; they run in reverse order, whatever happens. */
async function withCleanups<T>(
  fn: (defer: (cleanup: () => Promise<unknown>) => void) => Promise<T>,
): Promise<T> {
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    return await fn((cleanup) => cleanups.push(cleanup));
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch {
        // best effort: the other cleanups still run
      }
    }
  }
}

type Settings = BackendBenchOptions & { warmupMs: number };

async function benchPostgres(url: string, settings: Settings, log: (line: string) => void) {
  return withCleanups(async (defer) => {
    const peer = new pg.Pool({ connectionString: url, max: BACKEND_POOL_MAX });
    peer.on('error', () => {}); // an idle client's error: the sample's own queries report real failures
    defer(() => peer.end());
    try {
      await withTimeout(peer.query('SELECT 1'), PROBE_TIMEOUT_MS, 'SELECT 1');
    } catch (error) {
      throw new Unreachable(errorMessage(error));
    }

    const poolOptions = { max: BACKEND_POOL_MAX, validateOnBorrow: true, validationBypassMs: 500 };
    const users = createPool({
      name: 'users',
      backend: 'postgres',
      uri: url,
      pipelineDepth: PIPELINE_DEPTH,
      pool: poolOptions,
    });
    users.on('error', () => {});
    defer(() => users.close());
    await users.start();
    const unpipelined = createPool({
      name: 'users-unpipelined',
      backend: 'postgres',
      uri: url,
      pool: poolOptions,
    });
    unpipelined.on('error', () => {});
    defer(() => unpipelined.close());
    await unpipelined.start();

    return compare(
      [
        { label: `users.query() pipelineDepth ${PIPELINE_DEPTH}`, run: () => users.query('SELECT 1') },
        { label: 'pg.Pool.query()', run: () => peer.query('SELECT 1') },
        { label: 'users.query() pipelineDepth 1', run: () => unpipelined.query('SELECT 1') },
      ],
      settings,
      log,
    );
  });
}

async function benchRedis(url: string, settings: Settings, log: (line: string) => void) {
  return withCleanups(async (defer) => {
    const key = `nestjs-pool:bench:${process.pid}`;
    const peer = new Redis(url, { lazyConnect: true, connectTimeout: PROBE_TIMEOUT_MS });
    let lastError: unknown;
    peer.on('error', (error: unknown) => (lastError = error));
    defer(async () => {
      if (peer.status === 'ready') await peer.quit();
      else peer.disconnect();
    });
    try {
      await withTimeout(peer.connect(), PROBE_TIMEOUT_MS, 'connect');
      await peer.set(key, 'x'.repeat(64));
    } catch (error) {
      peer.disconnect();
      // ioredis rejects connect() with "Connection is closed."; the 'error' event says why.
      throw new Unreachable(errorMessage(lastError ?? error));
    }
    defer(() => peer.del(key));

    const cache = createPool({ name: 'cache', backend: 'redis', uri: url, pool: { max: BACKEND_POOL_MAX } });
    cache.on('error', () => {});
    defer(() => cache.close());
    await cache.start();

    return compare(
      [
        { label: 'pool.shared.get()', run: () => cache.shared.get(key) },
        { label: 'bare ioredis get()', run: () => peer.get(key) },
        { label: 'pool.use(r => r.get())', run: () => cache.use((r) => r.get(key)) },
      ],
      settings,
      log,
    );
  });
}

async function benchMongo(url: string, settings: Settings, log: (line: string) => void) {
  return withCleanups(async (defer) => {
    const id = `bench-${process.pid}`;
    const peer = new MongoClient(url, {
      maxPoolSize: BACKEND_POOL_MAX,
      serverSelectionTimeoutMS: PROBE_TIMEOUT_MS,
      connectTimeoutMS: PROBE_TIMEOUT_MS,
    });
    defer(() => peer.close());
    const peerCollection = peer
      .db(MONGO_DATABASE)
      .collection<{ _id: string; payload: string }>(MONGO_COLLECTION);
    try {
      await withTimeout(peer.connect(), PROBE_TIMEOUT_MS + 1_000, 'connect');
      await peerCollection.replaceOne({ _id: id }, { payload: 'x'.repeat(64) }, { upsert: true });
    } catch (error) {
      throw new Unreachable(errorMessage(error));
    }
    defer(() => peerCollection.deleteOne({ _id: id }));

    const events = createPool({
      name: 'events',
      backend: 'mongodb',
      uri: url,
      database: MONGO_DATABASE,
      pool: { max: BACKEND_POOL_MAX },
    });
    events.on('error', () => {});
    defer(() => events.close());
    await events.start();

    return compare(
      [
        {
          label: 'pool.use(db => findOne)',
          run: () =>
            events.use((db) => db.collection<{ _id: string }>(MONGO_COLLECTION).findOne({ _id: id })),
        },
        {
          label: 'bare MongoClient findOne',
          run: () =>
            peer.db(MONGO_DATABASE).collection<{ _id: string }>(MONGO_COLLECTION).findOne({ _id: id }),
        },
      ],
      settings,
      log,
    );
  });
}

const RUNNERS: Readonly<
  Record<
    BackendName,
    (
      url: string,
      settings: Settings,
      log: (line: string) => void,
    ) => Promise<{ results: ParticipantResult[]; pairedRatio: number }>
  >
> = { postgres: benchPostgres, redis: benchRedis, mongodb: benchMongo };

export const BACKEND_NAMES: readonly BackendName[] = ['postgres', 'redis', 'mongodb'];

/** Measures every backend in turn; never throws for a server that is down (that backend is skipped). */
export async function runBackendBench(
  options: BackendBenchOptions,
  log: (line: string) => void = (line) => console.error(line),
): Promise<BackendBenchResult> {
  const loadAtStart = loadavg()[0]!;
  const warmupMs = Math.min(options.durationMs, options.quick ? 200 : 400);
  const settings: Settings = { ...options, warmupMs };
  const backends: BackendOutcome[] = [];
  const checks: Check[] = [];

  for (const backend of BACKEND_NAMES) {
    const url = process.env[ENV_NAMES[backend]] || DEFAULT_URLS[backend];
    const target = BACKEND_TARGETS[backend];
    const common = { backend, operation: OPERATIONS[backend], server: redact(url), target };
    log(`backends: ${backend} (${common.server})`);
    try {
      const { results, pairedRatio } = await RUNNERS[backend](url, settings, log);
      const [ours, peer, ...extras] = results as [
        ParticipantResult,
        ParticipantResult,
        ...ParticipantResult[],
      ];
      const ratio = ours.opsPerSecond / peer.opsPerSecond;
      const pass = ratio >= target;
      backends.push({
        ...common,
        status: 'measured',
        ours,
        peer,
        extras,
        ratio,
        pairedRatio,
        pass,
      });
      checks.push({
        scenario: 'backends',
        name: `${backend}: ${ours.label} / ${peer.label}`,
        value: ratio,
        shown: formatRatio(ratio),
        target: `≥ ${target}×`,
        pass,
      });
    } catch (error) {
      const status = error instanceof Unreachable ? 'skipped' : 'failed';
      const reason =
        error instanceof Unreachable ? `server unreachable: ${error.message}` : errorMessage(error);
      log(`  ${status}: ${reason}`);
      backends.push({ ...common, status, reason });
    }
  }

  return {
    callers: options.callers,
    durationMs: options.durationMs,
    warmupMs,
    rounds: options.rounds,
    quick: options.quick,
    poolMax: BACKEND_POOL_MAX,
    loadAverage: { start: loadAtStart, end: loadavg()[0]!, cpus: cpus().length },
    backends,
    checks,
  };
}

// ---------------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------------

function formatRate(opsPerSecond: number): string {
  if (!Number.isFinite(opsPerSecond)) return 'n/a';
  if (opsPerSecond >= 1e4) return `${(opsPerSecond / 1e3).toFixed(1)} k/s`;
  return `${Math.round(opsPerSecond)} /s`;
}

function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  return ms >= 10 ? `${ms.toFixed(1)} ms` : `${ms.toFixed(2)} ms`;
}

/** The result as plain-text tables: every participant's figures, then the ratios and verdicts. */
export function formatBackendTable(result: BackendBenchResult): string {
  const title = `Backends: ${result.callers} concurrent callers against real servers (pool max ${result.poolMax})`;
  const lines: string[] = [
    `\n${title}\n${'='.repeat(title.length)}`,
    `median of ${result.rounds} rounds × ${result.durationMs} ms per participant (after a ${result.warmupMs} ms ` +
      `warm-up), order rotated each round; p50/p99: per-operation latency, median over the rounds`,
    '',
  ];

  const rows: string[][] = [];
  for (const b of result.backends) {
    if (b.status !== 'measured') {
      rows.push([`${b.backend} ${b.operation}`, b.status.toUpperCase(), '', '', '', '', '']);
      continue;
    }
    const participants: [string, ParticipantResult][] = [
      ['ours', b.ours],
      ['peer', b.peer],
      ...b.extras.map((e): [string, ParticipantResult] => ['ours (info)', e]),
    ];
    for (const [role, p] of participants) {
      rows.push([
        `${b.backend} ${b.operation}`,
        role,
        p.label,
        formatRate(p.opsPerSecond),
        `±${((p.spread * 100) / 2).toFixed(0)}%`,
        formatMs(p.p50Ms),
        formatMs(p.p99Ms),
      ]);
    }
  }
  lines.push(table(['backend', 'role', 'path', 'throughput', 'spread', 'p50', 'p99'], rows), '');

  const verdicts: string[][] = [];
  for (const b of result.backends) {
    if (b.status !== 'measured') {
      verdicts.push([b.backend, 'n/a', '', '', `≥ ${b.target}×`, `${b.status.toUpperCase()}: ${b.reason}`]);
      continue;
    }
    verdicts.push([
      `${b.backend}: ours / peer`,
      formatRatio(b.ratio),
      formatRatio(b.pairedRatio),
      formatRatio(b.ours.cpuOpsPerSecond / b.peer.cpuOpsPerSecond),
      `≥ ${b.target}×`,
      verdict(b.pass),
    ]);
    for (const e of b.extras) {
      verdicts.push([
        `${b.backend}: ${e.label} / peer`,
        formatRatio(e.opsPerSecond / b.peer.opsPerSecond),
        '',
        formatRatio(e.cpuOpsPerSecond / b.peer.cpuOpsPerSecond),
        '',
        'info',
      ]);
    }
  }
  lines.push(
    table(['ratio', 'value', 'paired', 'per CPU-s', 'target', 'result'], verdicts),
    '(value: ratio of the median throughputs; paired: median of the per-round ratios; per CPU-s: ratio of',
    ' operations per CPU-second of this process, i.e. of the client-side cost)',
  );
  const { start, end, cpus: cpuCount } = result.loadAverage;
  lines.push(
    `load average (1 min) at start ${start.toFixed(2)}, at end ${end.toFixed(2)}, ${cpuCount} CPUs` +
      (Math.max(start, end) > cpuCount * 0.75
        ? ' — other processes were competing for the CPUs (the servers run here too); wall-clock figures are noisy'
        : ''),
  );
  return lines.join('\n');
}
