/**
 * Scenario 6: the sizing presets on one workload. 100 callers share a pool of max 10; each acquires,
 * holds the connection for ~1 ms of simulated async work (a timer), and releases. The factory takes
 * ~2 ms to connect and answers validation after one event-loop turn (a cheap ping).
 *
 * Each round gives every preset a freshly started pool (start() not timed), the order rotated by one per
 * round, so what a preset opens up front versus on demand shows in the figures. Reported: median ops/s
 * over the rounds, and acquire latency (measured by the callers, around `acquire()`) over every acquire
 * of every round.
 */
import { Pool, POOL_PRESET_NAMES, type PoolFactory, type PoolPresetName } from '../lib/core/index.js';
import { collectGarbage, median, sleep, spread } from './report.js';

export const PRESETS_POOL_MAX = 10;
export const PRESETS_CALLERS = 100;
export const PRESETS_HOLD_MS = 1;
export const PRESETS_CREATE_DELAY_MS = 2;

interface Connection {
  readonly id: number;
}

export interface PresetResult {
  preset: PoolPresetName;
  /** Median ops/s (wall clock) over the rounds. */
  opsPerSecond: number;
  samples: number[];
  spread: number;
  /** Acquire latency over every acquire of every round, ms. */
  acquireP50Ms: number;
  acquireP99Ms: number;
  acquireMaxMs: number;
  /** Connections opened per round (median), start() included. */
  created: number;
  /** Pool size at the end of a round (median). */
  finalSize: number;
  /** The dynamic sizer's target at the end of a round (median); null for the other presets. */
  targetSize: number | null;
}

export interface PresetsResult {
  callers: number;
  poolMax: number;
  holdMs: number;
  createDelayMs: number;
  rounds: number;
  sampleMs: number;
  byPreset: PresetResult[];
}

export interface PresetsOptions {
  rounds: number;
  sampleMs: number;
  log: (line: string) => void;
}

function makeFactory(): PoolFactory<Connection> {
  let nextId = 1;
  return {
    create: () =>
      new Promise((resolve) => setTimeout(() => resolve({ id: nextId++ }), PRESETS_CREATE_DELAY_MS)),
    destroy: async () => {},
    validate: () => new Promise((resolve) => setImmediate(() => resolve(true))),
  };
}

interface Round {
  ops: number;
  elapsedMs: number;
  latencies: Float64Array;
  created: number;
  finalSize: number;
  targetSize: number | null;
}

async function runRound(preset: PoolPresetName, sampleMs: number): Promise<Round> {
  const pool = new Pool<Connection>({
    name: `bench-${preset}`,
    preset,
    max: PRESETS_POOL_MAX,
    factory: makeFactory(),
  });
  await pool.start();
  await collectGarbage();
  // Upper bound on acquires in a sample: 10 connections × one per hold, with generous headroom.
  const latencies = new Float64Array(Math.ceil((sampleMs / PRESETS_HOLD_MS) * PRESETS_POOL_MAX * 4) + 1024);
  let ops = 0;
  let stop = false;
  const start = performance.now();
  const until = start + sampleMs;
  const caller = async (): Promise<void> => {
    while (!stop) {
      const asked = performance.now();
      const lease = await pool.acquire();
      const got = performance.now();
      if (ops < latencies.length) latencies[ops] = got - asked;
      ops++;
      await sleep(PRESETS_HOLD_MS);
      lease.release();
      if (got >= until) stop = true;
    }
  };
  await Promise.all(Array.from({ length: PRESETS_CALLERS }, caller));
  const elapsedMs = performance.now() - start;
  const metrics = pool.metrics();
  await pool.close();
  return {
    ops,
    elapsedMs,
    latencies: latencies.subarray(0, Math.min(ops, latencies.length)),
    created: metrics.created,
    finalSize: metrics.size,
    targetSize: metrics.targetSize ?? null,
  };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export async function runPresets(options: PresetsOptions): Promise<PresetsResult> {
  const presets = POOL_PRESET_NAMES;
  const rounds = new Map<PoolPresetName, Round[]>(presets.map((p) => [p, []]));
  // One unmeasured round per preset to warm up the JIT.
  for (const preset of presets) await runRound(preset, Math.min(options.sampleMs, 200));
  for (let round = 0; round < options.rounds; round++) {
    for (let i = 0; i < presets.length; i++) {
      const preset = presets[(i + round) % presets.length]!;
      rounds.get(preset)!.push(await runRound(preset, options.sampleMs));
    }
    options.log(`  round ${round + 1}/${options.rounds} done`);
  }

  const byPreset = presets.map((preset): PresetResult => {
    const list = rounds.get(preset)!;
    const opsPerSecond = list.map((r) => (r.ops / r.elapsedMs) * 1000);
    const all = new Float64Array(list.reduce((n, r) => n + r.latencies.length, 0));
    let offset = 0;
    for (const r of list) {
      all.set(r.latencies, offset);
      offset += r.latencies.length;
    }
    all.sort();
    const targets = list.map((r) => r.targetSize).filter((t): t is number => t !== null);
    return {
      preset,
      opsPerSecond: median(opsPerSecond),
      samples: opsPerSecond,
      spread: spread(opsPerSecond),
      acquireP50Ms: percentile(all, 50),
      acquireP99Ms: percentile(all, 99),
      acquireMaxMs: all.length > 0 ? all[all.length - 1]! : NaN,
      created: median(list.map((r) => r.created)),
      finalSize: median(list.map((r) => r.finalSize)),
      targetSize: targets.length > 0 ? median(targets) : null,
    };
  });
  return {
    callers: PRESETS_CALLERS,
    poolMax: PRESETS_POOL_MAX,
    holdMs: PRESETS_HOLD_MS,
    createDelayMs: PRESETS_CREATE_DELAY_MS,
    rounds: options.rounds,
    sampleMs: options.sampleMs,
    byPreset,
  };
}
