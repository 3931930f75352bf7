/**
 * Scenarios 1 and 2: acquire + release of an idle dummy resource, by 1 caller and by 100 callers, pool
 * max 10, for ours (plain, with validate-on-borrow, with trackUseTime), generic-pool, tarn and the floor.
 *
 * Every participant is warmed up at every caller count first; then each round measures every
 * participant once, the order rotated by one each round so no pool always runs first (or right after a
 * GC-heavy one). The reported figure is the median of the rounds.
 *
 * Each pool has its own worker function (not one generic loop through an adapter) so the call sites
 * `pool.acquire()` / `release()` stay monomorphic, as they would be in an application.
 */
import genericPool from 'generic-pool';
import { Pool as TarnPool } from 'tarn';
import { Pool } from '../lib/core/index.js';
import { FloorPool, ShiftFloorPool, makeResource, type Resource } from './floor-pool.js';
import { collectGarbage, median, spread } from './report.js';

export const POOL_MAX = 10;
/** Ours always has an acquire timeout; the peers get the same one so they pay for theirs too. */
export const ACQUIRE_TIMEOUT_MS = 10_000;

interface RunState {
  stop: boolean;
  ops: number;
  until: number;
}

/** How often (in completed operations, as a mask) a worker looks at the clock. */
const CLOCK_MASK = 1023;

async function oursWorker(pool: Pool<Resource>, run: RunState): Promise<void> {
  while (!run.stop) {
    const lease = await pool.acquire();
    lease.release();
    if ((++run.ops & CLOCK_MASK) === 0 && performance.now() >= run.until) run.stop = true;
  }
}

async function oursValidateWorker(pool: Pool<Resource>, run: RunState): Promise<void> {
  while (!run.stop) {
    const lease = await pool.acquire();
    lease.release();
    if ((++run.ops & CLOCK_MASK) === 0 && performance.now() >= run.until) run.stop = true;
  }
}

async function oursTrackUseWorker(pool: Pool<Resource>, run: RunState): Promise<void> {
  while (!run.stop) {
    const lease = await pool.acquire();
    lease.release();
    if ((++run.ops & CLOCK_MASK) === 0 && performance.now() >= run.until) run.stop = true;
  }
}

async function genericPoolWorker(pool: genericPool.Pool<Resource>, run: RunState): Promise<void> {
  while (!run.stop) {
    const resource = await pool.acquire();
    void pool.release(resource);
    if ((++run.ops & CLOCK_MASK) === 0 && performance.now() >= run.until) run.stop = true;
  }
}

async function tarnWorker(pool: TarnPool<Resource>, run: RunState): Promise<void> {
  while (!run.stop) {
    const resource = await pool.acquire().promise;
    pool.release(resource);
    if ((++run.ops & CLOCK_MASK) === 0 && performance.now() >= run.until) run.stop = true;
  }
}

async function floorWorker(pool: FloorPool<Resource>, run: RunState): Promise<void> {
  while (!run.stop) {
    const resource = await pool.acquire();
    pool.release(resource);
    if ((++run.ops & CLOCK_MASK) === 0 && performance.now() >= run.until) run.stop = true;
  }
}

async function shiftFloorWorker(pool: ShiftFloorPool<Resource>, run: RunState): Promise<void> {
  while (!run.stop) {
    const resource = await pool.acquire();
    pool.release(resource);
    if ((++run.ops & CLOCK_MASK) === 0 && performance.now() >= run.until) run.stop = true;
  }
}

export type ParticipantName =
  'floor' | 'floor (Array.shift)' | 'ours' | 'ours+validate' | 'ours+trackUseTime' | 'generic-pool' | 'tarn';
export const PARTICIPANTS: readonly ParticipantName[] = [
  'floor',
  'floor (Array.shift)',
  'ours',
  'ours+validate',
  'ours+trackUseTime',
  'generic-pool',
  'tarn',
];

interface Participant {
  name: ParticipantName;
  worker(run: RunState): Promise<void>;
  close(): Promise<void>;
}

async function createParticipants(): Promise<Participant[]> {
  const factory = { create: async () => makeResource(), destroy: async () => {} };

  const ours = new Pool<Resource>({
    name: 'bench',
    min: 0,
    max: POOL_MAX,
    acquireTimeoutMs: ACQUIRE_TIMEOUT_MS,
    factory,
  });
  await ours.start();

  const oursValidate = new Pool<Resource>({
    name: 'bench-validate',
    min: 0,
    max: POOL_MAX,
    acquireTimeoutMs: ACQUIRE_TIMEOUT_MS,
    validateOnBorrow: true,
    validationBypassMs: 500,
    factory: { ...factory, validate: async () => true },
  });
  await oursValidate.start();

  // Metrics collection on: lease hold times measured with the precise clock on every lend and return.
  const oursTrackUse = new Pool<Resource>({
    name: 'bench-track-use',
    min: 0,
    max: POOL_MAX,
    acquireTimeoutMs: ACQUIRE_TIMEOUT_MS,
    trackUseTime: true,
    factory,
  });
  await oursTrackUse.start();

  const generic = genericPool.createPool<Resource>(factory, {
    min: 0,
    max: POOL_MAX,
    acquireTimeoutMillis: ACQUIRE_TIMEOUT_MS,
  });

  const tarn = new TarnPool<Resource>({
    create: async () => makeResource(),
    destroy: () => {},
    min: 0,
    max: POOL_MAX,
    acquireTimeoutMillis: ACQUIRE_TIMEOUT_MS,
  });

  const floor = new FloorPool<Resource>(Array.from({ length: POOL_MAX }, makeResource));
  const shiftFloor = new ShiftFloorPool<Resource>(Array.from({ length: POOL_MAX }, makeResource));

  return [
    { name: 'floor', worker: (run) => floorWorker(floor, run), close: async () => {} },
    {
      name: 'floor (Array.shift)',
      worker: (run) => shiftFloorWorker(shiftFloor, run),
      close: async () => {},
    },
    { name: 'ours', worker: (run) => oursWorker(ours, run), close: () => ours.close() },
    {
      name: 'ours+validate',
      worker: (run) => oursValidateWorker(oursValidate, run),
      close: () => oursValidate.close(),
    },
    {
      name: 'ours+trackUseTime',
      worker: (run) => oursTrackUseWorker(oursTrackUse, run),
      close: () => oursTrackUse.close(),
    },
    {
      name: 'generic-pool',
      worker: (run) => genericPoolWorker(generic, run),
      close: async () => {
        await generic.drain();
        await generic.clear();
      },
    },
    {
      name: 'tarn',
      worker: (run) => tarnWorker(tarn, run),
      close: () => tarn.destroy().then(() => undefined),
    },
  ];
}

interface Sample {
  /** Operations per wall-clock second. */
  wall: number;
  /** Operations per second of CPU time used by this process (all threads, GC helpers included). */
  cpu: number;
}

/**
 * Untimed run after the forced GC, before each sample. A full GC makes V8 throw away optimized code whose
 * embedded objects died (`--trace-deopt` shows "weak objects" for the pools' acquire/release after every
 * forced GC, ours and the peers' alike), so without it every sample would start in unoptimized code and
 * time its own re-optimization. Applications don't force a GC every 300 ms.
 */
const REWARM_MS = 25;

/** Runs `callers` concurrent workers for about `durationMs`. */
async function measure(participant: Participant, callers: number, durationMs: number): Promise<Sample> {
  await collectGarbage();
  await run(participant, callers, REWARM_MS);
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const ops = await run(participant, callers, durationMs);
  const elapsedMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return { wall: (ops / elapsedMs) * 1000, cpu: (ops / cpuMs) * 1000 };
}

/** `callers` workers of `participant` for about `durationMs`; resolves with the operations they completed. */
async function run(participant: Participant, callers: number, durationMs: number): Promise<number> {
  const state: RunState = { stop: false, ops: 0, until: performance.now() + durationMs };
  const workers: Promise<void>[] = [];
  for (let i = 0; i < callers; i++) workers.push(participant.worker(state));
  await Promise.all(workers);
  return state.ops;
}

export interface ThroughputOptions {
  callerCounts: readonly number[];
  rounds: number;
  sampleMs: number;
  warmupMs: number;
  log: (line: string) => void;
}

export interface ParticipantResult {
  /** Median ops/s (wall clock) over the rounds. */
  opsPerSecond: number;
  /** Every round's ops/s, in round order. */
  samples: number[];
  /** (max - min) / median of the samples. */
  spread: number;
  /** Median ops per CPU-second: less sensitive to other processes competing for the cores. */
  cpuOpsPerSecond: number;
  cpuSamples: number[];
}

export interface ThroughputResult {
  sampleMs: number;
  warmupMs: number;
  rounds: number;
  poolMax: number;
  acquireTimeoutMs: number;
  /** callers → participant → result */
  byCallers: Record<string, Record<ParticipantName, ParticipantResult>>;
}

export async function runThroughput(options: ThroughputOptions): Promise<ThroughputResult> {
  const participants = await createParticipants();
  const samples = new Map<string, Sample[]>();
  const key = (name: string, callers: number): string => `${name}@${callers}`;

  try {
    for (const callers of options.callerCounts) {
      for (const participant of participants) await measure(participant, callers, options.warmupMs);
    }
    options.log(`  warmed up ${participants.length} pools at ${options.callerCounts.join(' and ')} callers`);

    for (let round = 0; round < options.rounds; round++) {
      for (const callers of options.callerCounts) {
        for (let i = 0; i < participants.length; i++) {
          const participant = participants[(i + round) % participants.length]!;
          const sample = await measure(participant, callers, options.sampleMs);
          const list = samples.get(key(participant.name, callers)) ?? [];
          list.push(sample);
          samples.set(key(participant.name, callers), list);
        }
      }
      options.log(`  round ${round + 1}/${options.rounds} done`);
    }
  } finally {
    for (const participant of participants) await participant.close();
  }

  const byCallers: ThroughputResult['byCallers'] = {};
  for (const callers of options.callerCounts) {
    const results = {} as Record<ParticipantName, ParticipantResult>;
    for (const participant of participants) {
      const list = samples.get(key(participant.name, callers)) ?? [];
      const wall = list.map((sample) => sample.wall);
      const cpu = list.map((sample) => sample.cpu);
      results[participant.name] = {
        opsPerSecond: median(wall),
        samples: wall,
        spread: spread(wall),
        cpuOpsPerSecond: median(cpu),
        cpuSamples: cpu,
      };
    }
    byCallers[String(callers)] = results;
  }
  return {
    sampleMs: options.sampleMs,
    warmupMs: options.warmupMs,
    rounds: options.rounds,
    poolMax: POOL_MAX,
    acquireTimeoutMs: ACQUIRE_TIMEOUT_MS,
    byCallers,
  };
}
