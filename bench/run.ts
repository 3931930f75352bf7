/**
 * `npm run bench` — the engine against generic-pool, tarn and a hand-written floor, in one process.
 *
 *   npm run bench                      full run (~1.5 min)
 *   npm run bench -- --quick           shorter samples, fewer rounds, 3 s create storm
 *   npm run bench -- --json out.json   also write every number as JSON
 *
 * Other flags: --rounds N, --sample-ms N, --warmup-ms N, --timeouts N, --storm-ms N, --presets-ms N,
 * --only throughput,timeouts,storm,backends,presets, --strict (exit 1 when a target fails), --help.
 */
import { readdirSync, readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCreateStorm, type CreateStormPoolName, type CreateStormResult } from './create-storm.js';
import {
  type Check,
  formatBytes,
  formatOps,
  formatRatio,
  heading,
  pairedRatio,
  table,
  verdict,
} from './report.js';
import { PARTICIPANTS, runThroughput, type ParticipantName, type ThroughputResult } from './throughput.js';
import { runTimeoutStorm, type StormPoolName, type TimeoutStormResult } from './timeouts.js';
import { formatBackendTable, runBackendBench, type BackendBenchResult } from './backends.js';
import { runPresets, type PresetsResult } from './presets.js';
import type { ProvisionedServices } from '../scripts/services.mjs';

/** scripts/services.mjs is plain JavaScript, not compiled: import it from the source tree (build/bench/bench/ → ../../../). */
const SERVICES_URL = new URL('../../../scripts/services.mjs', import.meta.url);
type ServicesModule = typeof import('../scripts/services.mjs');

type ScenarioName = 'throughput' | 'timeouts' | 'storm' | 'backends' | 'presets';
const ALL_SCENARIOS: readonly ScenarioName[] = ['throughput', 'timeouts', 'storm', 'backends', 'presets'];

interface Settings {
  quick: boolean;
  json: string | undefined;
  strict: boolean;
  only: readonly ScenarioName[];
  rounds: number;
  sampleMs: number;
  warmupMs: number;
  callerCounts: readonly number[];
  timeouts: { total: number; batch: number; timeoutMs: number; warmup: number };
  storm: { durationMs: number; waiters: number; acquireTimeoutMs: number; failLatencyMs: number };
  presets: { rounds: number; sampleMs: number };
}

const USAGE = `Usage: npm run bench -- [--quick] [--json <file>] [--strict] [--only throughput,timeouts,storm,backends,presets]
                        [--rounds N] [--sample-ms N] [--warmup-ms N] [--timeouts N] [--storm-ms N] [--presets-ms N]`;

class UsageError extends Error {}

function parseArgs(argv: readonly string[]): Settings {
  const known = [
    'quick',
    'strict',
    'help',
    'json',
    'only',
    'rounds',
    'sample-ms',
    'warmup-ms',
    'timeouts',
    'storm-ms',
    'presets-ms',
  ];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument ${arg}`);
    const [name, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    if (!known.includes(name)) throw new UsageError(`unknown flag --${name}`);
    if (['quick', 'strict', 'help'].includes(name)) {
      flags.set(name, true);
    } else {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      flags.set(name, value);
    }
  }
  if (flags.has('help')) {
    console.log(USAGE);
    process.exit(0);
  }

  const quick = flags.has('quick');
  const number = (name: string, fallback: number): number => {
    const raw = flags.get(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!(value > 0) || !Number.isFinite(value)) throw new UsageError(`--${name} must be a positive number`);
    return value;
  };
  const json = flags.get('json');
  const only = flags.get('only');
  const scenarios =
    typeof only === 'string' ? (only.split(',').map((s) => s.trim()) as ScenarioName[]) : [...ALL_SCENARIOS];
  for (const s of scenarios) if (!ALL_SCENARIOS.includes(s)) throw new UsageError(`unknown scenario ${s}`);

  return {
    quick,
    json: typeof json === 'string' ? json : undefined,
    strict: flags.has('strict'),
    only: scenarios,
    rounds: Math.round(number('rounds', quick ? 3 : 7)),
    sampleMs: number('sample-ms', quick ? 150 : 300),
    warmupMs: number('warmup-ms', quick ? 150 : 400),
    callerCounts: [1, 100],
    timeouts: {
      total: Math.round(number('timeouts', 100_000)),
      batch: 10_000,
      timeoutMs: 10,
      warmup: 10_000,
    },
    storm: {
      durationMs: number('storm-ms', quick ? 3_000 : 10_000),
      waiters: 50,
      acquireTimeoutMs: 1_000,
      failLatencyMs: 1,
    },
    presets: {
      rounds: quick ? 3 : 5,
      sampleMs: number('presets-ms', quick ? 400 : 1_000),
    },
  };
}

/** Is the engine we compiled byte-for-byte what dist/esm ships (ignoring source-map comments)? */
function engineProvenance(): { source: string; identicalToDist: boolean | null; files: number } {
  const here = dirname(fileURLToPath(import.meta.url));
  const compiled = resolve(here, '../lib/core');
  const dist = resolve(here, '../../../dist/esm/core');
  const strip = (text: string): string => text.replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
  if (!existsSync(dist)) return { source: compiled, identicalToDist: null, files: 0 };
  let files = 0;
  for (const file of readdirSync(compiled)) {
    if (!file.endsWith('.js')) continue;
    files++;
    const distFile = join(dist, file);
    if (!existsSync(distFile)) return { source: compiled, identicalToDist: false, files };
    if (strip(readFileSync(join(compiled, file), 'utf8')) !== strip(readFileSync(distFile, 'utf8'))) {
      return { source: compiled, identicalToDist: false, files };
    }
  }
  return { source: compiled, identicalToDist: true, files };
}

// ---------------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------------

interface Ratio {
  name: string;
  numerator: ParticipantName;
  denominator: ParticipantName;
  /** The target (at least this ratio), or null for a ratio shown for information. */
  min: number | null;
}

const THROUGHPUT_RATIOS: readonly Ratio[] = [
  { name: 'ours / generic-pool', numerator: 'ours', denominator: 'generic-pool', min: 5 },
  { name: 'ours / tarn', numerator: 'ours', denominator: 'tarn', min: 8 },
  { name: 'ours / floor', numerator: 'ours', denominator: 'floor', min: 0.5 },
  { name: 'ours / floor (Array.shift)', numerator: 'ours', denominator: 'floor (Array.shift)', min: null },
];
const VALIDATION_RATIO: Ratio = {
  name: 'ours+validate / ours',
  numerator: 'ours+validate',
  denominator: 'ours',
  min: 0.95,
};
/** Metrics collection on (lease hold times measured) must cost at most 10%. */
const TRACK_USE_RATIO: Ratio = {
  name: 'ours+trackUseTime / ours',
  numerator: 'ours+trackUseTime',
  denominator: 'ours',
  min: 0.9,
};

function reportThroughput(result: ThroughputResult, checks: Check[]): string[] {
  const out: string[] = [];
  const callers = Object.keys(result.byCallers);
  const callerLabel = (c: string): string => (c === '1' ? '1 caller' : `${c} callers`);

  out.push(
    heading(`Scenarios 1+2: acquire + release of an idle resource (max ${result.poolMax})`),
    `median of ${result.rounds} rounds × ${result.sampleMs} ms per pool and caller count, rotated order; ` +
      `acquire timeout ${result.acquireTimeoutMs} ms where the pool has one`,
    '',
    table(
      ['pool', ...callers.flatMap((c) => [callerLabel(c), 'spread', 'per CPU-s'])],
      PARTICIPANTS.map((name) => [
        name,
        ...callers.flatMap((c) => {
          const r = result.byCallers[c]![name];
          return [
            formatOps(r.opsPerSecond),
            `±${((r.spread * 100) / 2).toFixed(0)}%`,
            formatOps(r.cpuOpsPerSecond),
          ];
        }),
      ]),
    ),
    '(spread: half the max-min range of the rounds, relative to the median; per CPU-s: ops per second of',
    ' this process’s CPU time, which other processes competing for the cores disturb less)',
    '',
  );

  const rows: string[][] = [];
  for (const ratio of [...THROUGHPUT_RATIOS, VALIDATION_RATIO, TRACK_USE_RATIO]) {
    for (const c of callers) {
      const byName = result.byCallers[c]!;
      const value = byName[ratio.numerator].opsPerSecond / byName[ratio.denominator].opsPerSecond;
      const paired = formatRatio(
        pairedRatio(byName[ratio.numerator].samples, byName[ratio.denominator].samples),
      );
      const cpuValue = byName[ratio.numerator].cpuOpsPerSecond / byName[ratio.denominator].cpuOpsPerSecond;
      const figures = [ratio.name, callerLabel(c), formatRatio(value), paired, formatRatio(cpuValue)];
      if (ratio.min === null) {
        rows.push([...figures, '', 'info']);
        continue;
      }
      const pass = value >= ratio.min;
      const target = `≥ ${ratio.min}×`;
      checks.push({
        scenario:
          ratio === VALIDATION_RATIO ? 'validation' : ratio === TRACK_USE_RATIO ? 'metrics' : 'throughput',
        name: `${ratio.name} @ ${callerLabel(c)}`,
        value,
        shown: formatRatio(value),
        target,
        pass,
      });
      rows.push([...figures, target, verdict(pass)]);
    }
  }
  out.push(
    table(['ratio', 'callers', 'value', 'paired', 'per CPU-s', 'target', 'result'], rows),
    '(value: ratio of the median throughputs, the figure checked; paired: median of the per-round ratios,',
    ' steadier when the machine speeds up or slows down between rounds)',
  );
  return out;
}

function reportTimeouts(
  results: readonly TimeoutStormResult[],
  settings: Settings,
  checks: Check[],
): string[] {
  const t = settings.timeouts;
  const out: string[] = [
    heading('Scenario 3: acquires that time out (max 1, resource held)'),
    `${t.total} acquires, timeout ${t.timeoutMs} ms, launched in batches of ${t.batch} (after a ${t.warmup}-acquire warm-up)`,
    '',
    table(
      [
        'pool',
        'timed out',
        'time',
        'ref’d Timeouts before→after',
        'timers created',
        'timers left',
        'heap growth',
      ],
      results.map((r) => [
        r.pool,
        `${r.timedOut}/${r.acquires}`,
        `${r.durationMs.toFixed(0)} ms`,
        `${r.activeTimeoutsBefore} → ${r.activeTimeoutsAfter}`,
        String(r.trackedTimersCreated),
        String(r.trackedTimersLeft),
        formatBytes(r.heapGrowth),
      ]),
    ),
    '',
  ];
  const ours = results.find((r) => r.pool === 'ours');
  if (ours !== undefined) {
    const rows: string[][] = [];
    const add = (name: string, value: number, target: string, pass: boolean, shown: string): void => {
      checks.push({ scenario: 'timeouts', name, value, shown, target, pass });
      rows.push([name, shown, target, verdict(pass)]);
    };
    add(
      'ours: all acquires timed out',
      ours.timedOut,
      `= ${ours.acquires}`,
      ours.timedOut === ours.acquires,
      String(ours.timedOut),
    );
    const leftRefd = ours.activeTimeoutsAfter - ours.activeTimeoutsBefore;
    add('ours: new ref’d Timeouts left', leftRefd, '= 0', leftRefd === 0, String(leftRefd));
    add(
      'ours: timers left (incl. unref’d)',
      ours.trackedTimersLeft,
      '= 0',
      ours.trackedTimersLeft === 0,
      String(ours.trackedTimersLeft),
    );
    add(
      'ours: heap growth after GC',
      ours.heapGrowth,
      '< 1 MB',
      ours.heapGrowth < 1024 * 1024,
      formatBytes(ours.heapGrowth),
    );
    out.push(table(['check', 'value', 'target', 'result'], rows));
  }
  return out;
}

function reportStorm(results: readonly CreateStormResult[], settings: Settings, checks: Check[]): string[] {
  const s = settings.storm;
  const out: string[] = [
    heading(`Scenario 4: create attempts while the factory fails (${s.durationMs / 1000} s)`),
    `${s.waiters} callers, acquire timeout ${s.acquireTimeoutMs} ms, retry on every failure after one event-loop ` +
      `turn; each create fails after ${s.failLatencyMs} ms`,
    '',
    table(
      ['pool', 'create attempts', 'attempts/s', 'acquire calls', 'acquire failures'],
      results.map((r) => [
        r.pool,
        String(r.attempts),
        r.attemptsPerSecond.toFixed(1),
        String(r.acquireCalls),
        String(r.acquireFailures),
      ]),
    ),
    '',
  ];
  const ours = results.find((r) => r.pool === 'ours');
  if (ours !== undefined && ours.expectedMaxAttempts !== null) {
    const bound = ours.expectedMaxAttempts;
    const pass = ours.attempts <= bound;
    const boundRate = (bound / s.durationMs) * 1000;
    checks.push({
      scenario: 'storm',
      name: 'ours: create attempts within backoff bound',
      value: ours.attempts,
      shown: String(ours.attempts),
      target: `≤ ${bound}`,
      pass,
    });
    out.push(
      table(
        ['check', 'value', 'target', 'result'],
        [
          [
            'ours: create attempts within backoff bound',
            `${ours.attempts} (${ours.attemptsPerSecond.toFixed(2)}/s)`,
            `≤ ${bound} (${boundRate.toFixed(2)}/s)`,
            verdict(pass),
          ],
        ],
      ),
      `bound: the schedule replayed with instant failures and full jitter reduction; steady state ` +
        `${ours.steadyStateAttemptsPerSecond?.toFixed(2) ?? 'n/a'} attempt/s once the breaker is open`,
    );
  }
  return out;
}

function reportPresets(result: PresetsResult): string[] {
  const ms = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(2)} ms` : 'n/a');
  return [
    heading(`Scenario 6: sizing presets, ${result.callers} callers, max ${result.poolMax}`),
    `each caller acquires, holds ~${result.holdMs} ms (a timer), releases; create takes ~${result.createDelayMs} ms, ` +
      `validate one event-loop turn; a fresh pool per preset and round (start() not timed), ` +
      `${result.rounds} rounds × ${result.sampleMs} ms, rotated order`,
    '',
    table(
      ['preset', 'ops/s', 'spread', 'acquire p50', 'acquire p99', 'acquire max', 'created', 'size', 'target'],
      result.byPreset.map((r) => [
        r.preset,
        formatOps(r.opsPerSecond),
        `±${((r.spread * 100) / 2).toFixed(0)}%`,
        ms(r.acquireP50Ms),
        ms(r.acquireP99Ms),
        ms(r.acquireMaxMs),
        String(r.created),
        String(r.finalSize),
        r.targetSize === null ? '-' : String(r.targetSize),
      ]),
    ),
    '(ops/s: median of the rounds; acquire latency: over every acquire of every round, measured by the',
    ' callers; created/size/target: per round, median; target: the dynamic sizer’s, at the end of a round)',
  ];
}

// ---------------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------------

interface Meta {
  date: string;
  node: string;
  v8: string;
  platform: string;
  cpu: string;
  cpus: number;
  quick: boolean;
  engine: ReturnType<typeof engineProvenance>;
  loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
}

async function main(): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  if (globalThis.gc === undefined) {
    console.warn('warning: run with --expose-gc (npm run bench does) for stable numbers and heap figures');
  }
  const log = (line: string): void => console.error(line);
  const provenance = engineProvenance();
  const meta: Meta = {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${process.arch}`,
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    quick: settings.quick,
    engine: provenance,
    loadAverageAtStart: loadavg(),
    loadAverageAtEnd: [],
  };
  console.log(
    `nestjs-pool bench — Node ${meta.node}, ${meta.cpus} × ${meta.cpu}${settings.quick ? ' (quick)' : ''}`,
  );
  console.log(
    `engine: lib/core compiled by tsc; ` +
      (provenance.identicalToDist === null
        ? 'dist/esm not built, not compared'
        : provenance.identicalToDist
          ? `identical to dist/esm/core (${provenance.files} files)`
          : 'DIFFERS from dist/esm/core (rebuild dist?)'),
  );

  // The engine unrefs its timers (an idle pool must not keep a process alive), so while a scenario awaits
  // an acquire that only a timer can settle, something has to hold the event loop open: this does.
  const keepAlive = setInterval(() => {}, 60_000);

  try {
    await runScenarios(settings, meta, log);
  } finally {
    clearInterval(keepAlive);
  }
}

async function runScenarios(settings: Settings, meta: Meta, log: (line: string) => void): Promise<void> {
  const checks: Check[] = [];
  const lines: string[] = [];
  const results: {
    throughput?: ThroughputResult;
    timeouts?: TimeoutStormResult[];
    createStorm?: CreateStormResult[];
    backends?: BackendBenchResult;
    presets?: PresetsResult;
  } = {};

  if (settings.only.includes('throughput')) {
    log('scenarios 1+2: throughput');
    results.throughput = await runThroughput({
      callerCounts: settings.callerCounts,
      rounds: settings.rounds,
      sampleMs: settings.sampleMs,
      warmupMs: settings.warmupMs,
      log,
    });
    lines.push(...reportThroughput(results.throughput, checks));
  }

  if (settings.only.includes('timeouts')) {
    log('scenario 3: timeout storm');
    results.timeouts = [];
    for (const name of ['ours', 'generic-pool', 'tarn'] as StormPoolName[]) {
      results.timeouts.push(await runTimeoutStorm(name, { ...settings.timeouts, log }));
    }
    lines.push(...reportTimeouts(results.timeouts, settings, checks));
  }

  if (settings.only.includes('storm')) {
    log(`scenario 4: failing factory for ${settings.storm.durationMs} ms per pool`);
    results.createStorm = [];
    for (const name of ['ours', 'generic-pool', 'tarn'] as CreateStormPoolName[]) {
      results.createStorm.push(await runCreateStorm(name, { ...settings.storm, log }));
    }
    lines.push(...reportStorm(results.createStorm, settings, checks));
  }

  if (settings.only.includes('backends')) {
    log('scenario 5: backends against their bare drivers (real servers)');
    let services: ProvisionedServices | undefined;
    try {
      const { provisionServices } = (await import(SERVICES_URL.href)) as ServicesModule;
      services = await provisionServices({ need: ['postgres', 'redis', 'mongodb'] });
      for (const [key, value] of Object.entries(services.env)) process.env[key] = value;
    } catch (error) {
      // Not fatal: each backend whose server is unreachable is reported as skipped, with the reason.
      log(`could not provision services: ${error instanceof Error ? error.message : String(error)}`);
    }
    try {
      results.backends = await runBackendBench(
        settings.quick
          ? { durationMs: 250, rounds: 3, callers: 50, quick: true }
          : { durationMs: 700, rounds: 7, callers: 50, quick: false },
        log,
      );
    } finally {
      await services?.stop();
    }
    lines.push(
      heading('Scenario 5: backends, 50 callers, against the bare drivers'),
      formatBackendTable(results.backends),
    );
    checks.push(...results.backends.checks);
  }

  if (settings.only.includes('presets')) {
    log('scenario 6: sizing presets on one workload');
    results.presets = await runPresets({ ...settings.presets, log });
    lines.push(...reportPresets(results.presets));
  }

  meta.loadAverageAtEnd = loadavg();
  const failed = checks.filter((c) => !c.pass);
  lines.push(
    heading('Summary'),
    table(
      ['check', 'value', 'target', 'result'],
      checks.map((c) => [c.name, c.shown, c.target, verdict(c.pass)]),
    ),
    '',
    `${checks.length - failed.length}/${checks.length} targets met`,
    `load average (1 min) at start ${meta.loadAverageAtStart[0]!.toFixed(2)}, at end ${meta.loadAverageAtEnd[0]!.toFixed(2)}` +
      (Math.max(meta.loadAverageAtStart[0]!, meta.loadAverageAtEnd[0]!) > 1.5
        ? ' — other processes were competing for the CPUs; wall-clock figures are noisy'
        : ''),
  );
  console.log(lines.join('\n'));

  if (settings.json !== undefined) {
    const base = process.env['INIT_CWD'] ?? process.cwd();
    const file = resolve(base, settings.json);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify({ meta, settings, results, checks }, null, 2) + '\n');
    console.log(`wrote ${file}`);
  }
  if (settings.strict && failed.length > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  if (error instanceof UsageError) console.error(`${error.message}\n${USAGE}`);
  else console.error(error);
  process.exitCode = 1;
});
