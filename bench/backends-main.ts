/**
 * The backend benchmark on its own: provisions PostgreSQL, Redis and MongoDB (FerretDB) through
 * scripts/services.mjs (or uses DATABASE_URL, REDIS_URL, MONGODB_URI), runs it, prints the tables and stops
 * what it started.
 *
 *   npx tsc -p bench/tsconfig.json && node --expose-gc build/bench/bench/backends-main.js [--quick] [--json f]
 *
 * Other flags: --rounds N, --duration-ms N, --callers N, --strict (exit 1 when a target is missed).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { formatBackendTable, runBackendBench, type BackendBenchOptions } from './backends.js';
import type { ProvisionedServices } from '../scripts/services.mjs';

/** scripts/services.mjs is plain JavaScript, not compiled: import it from the source tree (build/bench/bench/ → ../../../). */
const SERVICES_URL = new URL('../../../scripts/services.mjs', import.meta.url);
type ServicesModule = typeof import('../scripts/services.mjs');

const USAGE =
  'Usage: node build/bench/bench/backends-main.js [--quick] [--strict] [--json <file>] ' +
  '[--rounds N] [--duration-ms N] [--callers N]';

interface MainSettings extends BackendBenchOptions {
  strict: boolean;
  json: string | undefined;
}

function parseArgs(argv: readonly string[]): MainSettings {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}\n${USAGE}`);
    const [name, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    if (['quick', 'strict', 'help'].includes(name)) {
      flags.set(name, true);
    } else if (['json', 'rounds', 'duration-ms', 'callers'].includes(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value\n${USAGE}`);
      flags.set(name, value);
    } else {
      throw new Error(`unknown flag --${name}\n${USAGE}`);
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
    if (!(value > 0) || !Number.isFinite(value)) throw new Error(`--${name} must be a positive number`);
    return Math.round(value);
  };
  const json = flags.get('json');
  return {
    quick,
    strict: flags.has('strict'),
    json: typeof json === 'string' ? json : undefined,
    rounds: number('rounds', quick ? 3 : 7),
    durationMs: number('duration-ms', quick ? 250 : 700),
    callers: number('callers', 50),
  };
}

async function main(): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  const log = (line: string): void => console.error(line);
  let services: ProvisionedServices | undefined;
  try {
    const { provisionServices } = (await import(SERVICES_URL.href)) as ServicesModule;
    services = await provisionServices({ need: ['postgres', 'redis', 'mongodb'] });
    for (const [key, value] of Object.entries(services.env)) process.env[key] = value;
  } catch (error) {
    // Not fatal: each backend not reachable is reported as skipped.
    log(`could not provision services: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    const started = performance.now();
    const result = await runBackendBench(settings, log);
    console.log(formatBackendTable(result));
    console.log(`\n(${((performance.now() - started) / 1000).toFixed(1)} s)`);
    if (settings.json !== undefined) {
      const file = resolve(process.env['INIT_CWD'] ?? process.cwd(), settings.json);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
      console.log(`wrote ${file}`);
    }
    if (settings.strict && result.checks.some((c) => !c.pass)) process.exitCode = 1;
  } finally {
    await services?.stop();
  }
  // The services' supervisor processes exit shortly after stop(): give them a moment before looking.
  const openHandles = (): string[] =>
    process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'PipeWrap' && r !== 'Timeout');
  for (let waited = 0; openHandles().length > 0 && waited < 2_000; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50).unref());
  }
  const left = openHandles();
  if (left.length > 0) log(`handles still open: ${left.join(', ')}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
