#!/usr/bin/env node
// Compatibility check (`npm run test:compat`, run by CI after `npm test`): builds and packs nestjs-pool, then
// installs the tarball into two throw-away apps made from ./templates and checks that each compiles, runs and
// shuts down cleanly:
//
//   nest11-cjs  Nest 11, CommonJS, tsc module commonjs + moduleResolution node10 (typesVersions is what
//               resolves `nestjs-pool/health`); Node loads dist/cjs through the "require" condition.
//   nest12-esm  Nest 12, "type": "module", tsc module/moduleResolution nodenext; Node loads dist/esm.
//
// For each app, in parallel:
//   1. npm install --no-audit --no-fund <tarball> (a real copy, never a symlink: a second @nestjs/core
//      would break DI), timed.
//   2. node_modules: one copy of @nestjs/common and @nestjs/core of the expected major, no ioredis, mongodb
//      or prom-client anywhere, nestjs-pool from the tarball, with @nestjs/terminus, pg, ioredis, mongodb
//      and prom-client marked as optional peers (so npm installs none of them unasked).
//   3. With @nestjs/terminus moved away: every entry but `nestjs-pool/health` and `/metrics` loads (admin
//      included), through both `require` and `import`; `/health` fails naming @nestjs/terminus and
//      `/metrics` naming prom-client (probe-entries.mjs).
//   4. tsc (this repo's TypeScript) with the app's strict tsconfig. skipLibCheck is off, so errors in
//      nestjs-pool's .d.ts files are reported too; those do not stop the run, errors in the app's code do.
//   5. node dist/main.js on a free port: GET /users/one (200, {"n":1}), GET /health (200, info.users up),
//      GET /admin/pools (PoolAdminModule's runtime-built controller: 401 without the token, 200 with it);
//      its pool's sessions show in pg_stat_activity under a unique application_name.
//   6. SIGTERM: the process must exit by itself with code 0 within 5 s (the app keeps Nest's re-raised
//      SIGTERM from killing it, so a leftover socket or timer shows as a hang), and the pool's sessions
//      must be gone from pg_stat_activity.
//
// Usage: node scripts/compat/run.mjs [--skip-build] [--keep] [--prefer-offline] [nest11-cjs] [nest12-esm]
//   --skip-build      pack the dist/ that is there (e.g. right after `npm test`, which built it)
//   --keep            keep the temporary folder (its path is printed) to poke at the apps; delete it yourself
//   --prefer-offline  passed to npm install: use cached package metadata without revalidating it
// PostgreSQL: DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test (started if it is the machine's
// stopped cluster; see ../services.mjs). Only Node built-ins, plus `pg` from this repo for the session count.
// Exit code 0 when every app passed, 1 otherwise, 128+n on a signal.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { constants as osConstants, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { provisionServices, ServiceError, stopAll } from '../services.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/**
 * @typedef {object} AppSpec
 * @property {string} name        Folder under ./templates.
 * @property {number} nestMajor
 * @property {string} format      The app's module format, for the summary.
 * @property {string} build       Folder of nestjs-pool that Node must load for this app.
 */

/** @type {AppSpec[]} */
const APPS = [
  { name: 'nest11-cjs', nestMajor: 11, format: 'CommonJS', build: 'dist/cjs' },
  { name: 'nest12-esm', nestMajor: 12, format: 'ESM', build: 'dist/esm' },
];

/** Drivers of the other backends: optional peers that an app using only pg must not get. */
const FORBIDDEN_PACKAGES = ['ioredis', 'mongodb', 'prom-client'];
/** Packages that must exist exactly once: two copies of @nestjs/core or /common break DI. */
const SINGLE_COPY_PACKAGES = ['@nestjs/common', '@nestjs/core'];

const START_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 10_000;
const EXIT_TIMEOUT_MS = 5_000;
/** The apps' PoolAdminModule token (POOL_ADMIN_TOKEN), checked through GET /admin/pools. */
const ADMIN_TOKEN = randomBytes(16).toString('hex');
const SESSIONS_GONE_TIMEOUT_MS = 3_000;

// ---------------------------------------------------------------------------------------------------------
// Options

const args = process.argv.slice(2);
const options = {
  skipBuild: args.includes('--skip-build'),
  keep: args.includes('--keep'),
  preferOffline: args.includes('--prefer-offline'),
};
const unknownFlags = args.filter(
  (a) => a.startsWith('-') && !['--skip-build', '--keep', '--prefer-offline'].includes(a),
);
const selectedNames = args.filter((a) => !a.startsWith('-'));
const unknownApps = selectedNames.filter((n) => !APPS.some((app) => app.name === n));
if (unknownFlags.length > 0 || unknownApps.length > 0) {
  process.stderr.write(
    `[compat] unknown ${unknownFlags.length > 0 ? `option(s) ${unknownFlags.join(' ')}` : `app(s) ${unknownApps.join(' ')}`}\n` +
      `usage: node scripts/compat/run.mjs [--skip-build] [--keep] [--prefer-offline] [${APPS.map((a) => a.name).join('] [')}]\n`,
  );
  process.exit(2);
}
const selectedApps = selectedNames.length > 0 ? APPS.filter((a) => selectedNames.includes(a.name)) : APPS;

// ---------------------------------------------------------------------------------------------------------
// Logging, errors, child processes and cleanup

/** @param {string} message */
function log(message) {
  process.stdout.write(`[compat] ${message}\n`);
}

/** @param {number} ms */
const seconds = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/**
 * A timeout for Promise.race that does not keep this process alive by itself (what it races against does).
 * @param {number} ms
 * @returns {Promise<undefined>}
 */
const deadline = (ms) => new Promise((r) => setTimeout(() => r(undefined), ms).unref());

/**
 * A failed check. Thrown, it ends that app's run (the later steps need what failed); checks whose failure
 * does not stop the next steps are collected instead, so one run reports every problem.
 */
class CheckError extends Error {
  /**
   * @param {string} message
   * @param {{ output?: string }} [details] output: shown with the failure (npm/tsc/app output)
   */
  constructor(message, details = {}) {
    super(message);
    this.name = 'CheckError';
    this.output = details.output;
  }
}

/** Children still running: killed (with their process group) on a signal or an early exit. */
/** @type {Set<import('node:child_process').ChildProcess>} */
const children = new Set();
/** @type {string | undefined} */
let tempDir;
/** @type {import('../services.mjs').ProvisionedServices | undefined} */
let services;
/** @type {NodeJS.Signals | undefined} */
let interrupted;

/** Kills every child this script started, with whatever it started (each child leads its own group). */
function killChildren() {
  for (const child of children) {
    if (child.pid === undefined) continue;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function removeTempDir() {
  if (tempDir === undefined) return;
  if (options.keep) {
    log(`kept ${tempDir}`);
  } else {
    rmSync(tempDir, { recursive: true, force: true, maxRetries: 3 });
  }
  tempDir = undefined;
}

/** @param {NodeJS.Signals} signal */
function onSignal(signal) {
  if (interrupted) return;
  interrupted = signal;
  process.stderr.write(`\n[compat] ${signal}: stopping the apps and removing the temporary folder\n`);
  killChildren();
  void (async () => {
    await sleep(100); // let the killed npm/node processes release their files
    try {
      removeTempDir();
    } catch (error) {
      process.stderr.write(`[compat] could not remove ${tempDir}: ${String(error)}\n`);
    }
    await (services ? services.stop() : Promise.resolve()).catch(() => {});
    await stopAll().catch(() => {});
    process.exit(128 + (osConstants.signals[signal] ?? 1));
  })();
}
for (const signal of /** @type {NodeJS.Signals[]} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
  process.on(signal, onSignal);
}
// Last resort for a crash of this script: nothing it started may outlive it.
process.on('exit', () => {
  killChildren();
  try {
    removeTempDir();
  } catch {
    // best effort
  }
});

/**
 * @typedef {object} Spawned
 * @property {import('node:child_process').ChildProcess} child
 * @property {() => string} output  stdout and stderr so far, interleaved as they arrived.
 * @property {() => string} stdout
 * @property {() => string} stderr
 * @property {Promise<{ code: number | null, signal: NodeJS.Signals | null }>} exited
 */

/**
 * Starts a process in its own process group (so a kill reaches its children too) and collects its output.
 * @param {string} command
 * @param {string[]} argv
 * @param {{ cwd: string, env?: NodeJS.ProcessEnv, onLine?: (line: string) => void }} spawnOptions
 * @returns {Spawned}
 */
function start(command, argv, { cwd, env = process.env, onLine }) {
  const child = spawn(command, argv, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let all = '';
  let out = '';
  let err = '';
  let partial = '';
  child.stdout?.setEncoding('utf8').on('data', (/** @type {string} */ chunk) => {
    all += chunk;
    out += chunk;
    if (onLine) {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (/** @type {string} */ chunk) => {
    all += chunk;
    err += chunk;
  });
  const exited = new Promise((resolveExit) => {
    child.once('error', (error) => {
      all += `\n${error.message}\n`;
      err += `\n${error.message}\n`;
      children.delete(child);
      resolveExit({ code: null, signal: null });
    });
    child.once('close', (code, signal) => {
      children.delete(child);
      resolveExit({ code, signal });
    });
  });
  return { child, output: () => all, stdout: () => out, stderr: () => err, exited };
}

/**
 * Runs a command to completion.
 * @param {string} command
 * @param {string[]} argv
 * @param {{ cwd: string, env?: NodeJS.ProcessEnv }} runOptions
 * @returns {Promise<{ code: number | null, signal: NodeJS.Signals | null, output: string, stdout: string, ms: number }>}
 */
async function run(command, argv, runOptions) {
  const started = performance.now();
  const proc = start(command, argv, runOptions);
  const { code, signal } = await proc.exited;
  return { code, signal, output: proc.output(), stdout: proc.stdout(), ms: performance.now() - started };
}

/** How to call npm: the npm that runs this script (`npm run test:compat`), else the one on PATH. */
function npmCommand() {
  const execPath = process.env.npm_execpath;
  if (execPath && /npm-cli\.c?js$/.test(basename(execPath)))
    return { command: process.execPath, pre: [execPath] };
  return { command: 'npm', pre: [] };
}

/** The environment for npm: ours without what `npm run` sets for its own script (package, lifecycle). */
function npmEnv() {
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, npm_config_update_notifier: 'false' };
  for (const key of Object.keys(env)) {
    if (/^npm_(package|lifecycle)_/.test(key) || key === 'npm_config_local_prefix') delete env[key];
  }
  return env;
}

/** @param {string} text  @param {number} [lines] */
function tail(text, lines = 60) {
  const all = text.trimEnd().split('\n');
  return (
    all.length > lines ? [`... (${all.length - lines} earlier lines)`, ...all.slice(-lines)] : all
  ).join('\n');
}

/** @param {unknown} error */
function messageOf(error) {
  return error instanceof Error ? error.message : String(error);
}

// ---------------------------------------------------------------------------------------------------------
// Build and pack

/**
 * Builds (unless --skip-build) and packs the library; checks that every file package.json points at is in
 * the tarball.
 * @param {string} destination
 * @returns {Promise<{ tarball: string, version: string, buildMs: number, packMs: number }>}
 */
async function buildAndPack(destination) {
  let buildMs = 0;
  if (!options.skipBuild) {
    const build = await run(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT });
    if (build.code !== 0) throw new CheckError('node scripts/build.mjs failed', { output: build.output });
    buildMs = build.ms;
    log(`built dist/ in ${seconds(build.ms)}`);
  } else if (!existsSync(join(ROOT, 'dist', 'esm', 'index.js')) || !existsSync(join(ROOT, 'dist', 'cjs'))) {
    throw new CheckError('--skip-build: there is no dist/ to pack; run `node scripts/build.mjs` first');
  }

  const npm = npmCommand();
  const pack = await run(npm.command, [...npm.pre, 'pack', '--json', '--pack-destination', destination], {
    cwd: ROOT,
    env: npmEnv(),
  });
  if (pack.code !== 0) throw new CheckError('npm pack failed', { output: pack.output });
  /** @type {Array<{ filename: string, version: string, files: Array<{ path: string }> }>} */
  let packed;
  try {
    packed = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('[')));
  } catch {
    throw new CheckError('npm pack --json printed no JSON', { output: pack.output });
  }
  const [{ filename, version, files }] = packed;
  const tarball = join(destination, basename(filename));
  log(`packed ${basename(filename)} (${files.length} files) in ${seconds(pack.ms)}`);

  const inTarball = new Set(files.map((f) => f.path));
  const missing = packageTargets(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))).filter(
    ({ target }) => !inTarball.has(target.replace(/^\.\//, '')),
  );
  if (missing.length > 0) {
    throw new CheckError(
      `package.json points at files that are not in the tarball:\n${missing
        .map(({ field, target }) => `  ${field}: ${target}`)
        .join('\n')}`,
    );
  }
  return { tarball, version, buildMs, packMs: pack.ms };
}

/**
 * Every file package.json's main/module/types, exports and typesVersions name.
 * @param {Record<string, unknown>} pkg
 * @returns {Array<{ field: string, target: string }>}
 */
function packageTargets(pkg) {
  /** @type {Array<{ field: string, target: string }>} */
  const targets = [];
  for (const field of ['main', 'module', 'types']) {
    if (typeof pkg[field] === 'string') targets.push({ field, target: /** @type {string} */ (pkg[field]) });
  }
  /** @param {unknown} value @param {string} field */
  const walk = (value, field) => {
    if (typeof value === 'string') {
      if (!value.includes('*')) targets.push({ field, target: value });
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, `${field}[${i}]`));
    } else if (value && typeof value === 'object') {
      for (const [key, v] of Object.entries(value)) walk(v, `${field}["${key}"]`);
    }
  };
  walk(pkg.exports, 'exports');
  walk(pkg.typesVersions, 'typesVersions');
  return targets.filter(({ target }) => target !== './package.json');
}

// ---------------------------------------------------------------------------------------------------------
// node_modules inspection

/**
 * Every installed package, by name, with the folders holding it (nested node_modules included).
 * @param {string} nodeModules
 * @param {Map<string, string[]>} [found]
 * @returns {Map<string, string[]>}
 */
function installedPackages(nodeModules, found = new Map()) {
  /** @type {string[]} */
  let names;
  try {
    names = readdirSync(nodeModules);
  } catch {
    return found;
  }
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const dirs = name.startsWith('@')
      ? readdirSync(join(nodeModules, name))
          .filter((n) => !n.startsWith('.'))
          .map((n) => ({ pkg: `${name}/${n}`, dir: join(nodeModules, name, n) }))
      : [{ pkg: name, dir: join(nodeModules, name) }];
    for (const { pkg, dir } of dirs) {
      found.set(pkg, [...(found.get(pkg) ?? []), dir]);
      installedPackages(join(dir, 'node_modules'), found);
    }
  }
  return found;
}

/** @param {string} dir */
function packageVersion(dir) {
  try {
    return String(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version);
  } catch {
    return 'unknown';
  }
}

/**
 * Step 2: what npm installed.
 * @param {AppSpec} app
 * @param {string} appDir
 * @param {string} libVersion
 * @returns {{ problems: string[], versions: Record<string, string>, packageCount: number }}
 */
function inspectInstall(app, appDir, libVersion) {
  const nodeModules = join(appDir, 'node_modules');
  const installed = installedPackages(nodeModules);
  /** @type {string[]} */
  const problems = [];
  const rel = (/** @type {string} */ dir) => dir.slice(appDir.length + 1);

  for (const name of FORBIDDEN_PACKAGES) {
    const copies = installed.get(name);
    if (copies) {
      problems.push(
        `${name} is installed (${copies.map(rel).join(', ')}) although the app uses only pg: it must stay an ` +
          'optional peer dependency of nestjs-pool (peerDependenciesMeta optional: true), never a dependency',
      );
    }
  }
  for (const name of SINGLE_COPY_PACKAGES) {
    const copies = installed.get(name) ?? [];
    if (copies.length !== 1) {
      problems.push(
        `expected exactly one copy of ${name}, found ${copies.length}: ${copies.map(rel).join(', ')}`,
      );
    }
  }
  const coreVersion = packageVersion(join(nodeModules, '@nestjs', 'core'));
  if (Number.parseInt(coreVersion, 10) !== app.nestMajor) {
    problems.push(`@nestjs/core ${coreVersion} installed, expected major ${app.nestMajor}`);
  }
  const libDir = join(nodeModules, 'nestjs-pool');
  if (!existsSync(libDir)) {
    problems.push('node_modules/nestjs-pool is missing');
  } else {
    if (lstatSync(libDir).isSymbolicLink()) {
      problems.push('node_modules/nestjs-pool is a symlink; it must be a copy installed from the tarball');
    }
    if (packageVersion(libDir) !== libVersion) {
      problems.push(`node_modules/nestjs-pool is ${packageVersion(libDir)}, the tarball is ${libVersion}`);
    }
    const meta = JSON.parse(readFileSync(join(libDir, 'package.json'), 'utf8')).peerDependenciesMeta ?? {};
    for (const name of ['@nestjs/terminus', 'pg', ...FORBIDDEN_PACKAGES]) {
      if (meta[name]?.optional !== true) {
        problems.push(
          `nestjs-pool's peerDependenciesMeta does not mark ${name} optional: npm would install it into every app`,
        );
      }
    }
    if (existsSync(join(libDir, 'node_modules'))) {
      const nested = [...installedPackages(join(libDir, 'node_modules')).keys()];
      if (nested.length > 0) {
        problems.push(
          `nestjs-pool got its own node_modules (${nested.join(', ')}); its peers must be shared`,
        );
      }
    }
  }
  /** @type {Record<string, string>} */
  const versions = {};
  for (const name of ['@nestjs/core', '@nestjs/terminus', 'pg', 'reflect-metadata', 'rxjs']) {
    versions[name] = packageVersion(join(nodeModules, ...name.split('/')));
  }
  return { problems, versions, packageCount: installed.size };
}

// ---------------------------------------------------------------------------------------------------------
// The entry probe (step 3)

/**
 * @param {string} appDir
 * @returns {Promise<string[]>} problems
 */
async function probeEntriesWithoutTerminus(appDir) {
  const terminus = join(appDir, 'node_modules', '@nestjs', 'terminus');
  const hidden = join(appDir, 'node_modules', '@nestjs', '.terminus-hidden-by-compat');
  const script = join(appDir, 'compat-probe.mjs');
  cpSync(join(HERE, 'probe-entries.mjs'), script);
  /** @type {string[]} */
  const problems = [];
  renameSync(terminus, hidden);
  try {
    const runs = await Promise.all(
      /** @type {const} */ (['require', 'import']).map(async (mode) => ({
        mode,
        result: await run(process.execPath, [script, mode], { cwd: appDir }),
      })),
    );
    for (const { mode, result } of runs) {
      const line = result.stdout.split('\n').find((l) => l.startsWith('COMPAT_PROBE '));
      if (result.code !== 0 || !line) {
        problems.push(`entry probe (${mode}) failed:\n${tail(result.output, 20)}`);
        continue;
      }
      /** @type {Record<string, { resolved?: string, loaded: boolean, missing?: string[], error?: string }>} */
      const entries = JSON.parse(line.slice('COMPAT_PROBE '.length));
      const build = mode === 'require' ? '/dist/cjs/' : '/dist/esm/';
      for (const [specifier, entry] of Object.entries(entries)) {
        const where = `${mode}('${specifier}')`;
        if (entry.resolved && !entry.resolved.includes(build)) {
          problems.push(`${where} resolved to ${entry.resolved}, expected a file in ${build}`);
        }
        if (specifier === 'nestjs-pool/metrics') {
          if (entry.loaded) {
            problems.push(`${where} loaded without prom-client installed: how, if it uses prom-client?`);
          } else if (!entry.error?.includes('prom-client')) {
            problems.push(`${where} failed without prom-client, but not for want of it: ${entry.error}`);
          }
        } else if (specifier === 'nestjs-pool/health') {
          if (entry.loaded) {
            problems.push(`${where} loaded without @nestjs/terminus installed: how, if it uses Terminus?`);
          } else if (!entry.error?.includes('@nestjs/terminus')) {
            problems.push(`${where} failed without @nestjs/terminus, but not for want of it: ${entry.error}`);
          }
        } else if (!entry.loaded) {
          problems.push(
            `${where} failed without @nestjs/terminus (only nestjs-pool/health and /metrics may need it): ${entry.error}`,
          );
        } else if (entry.missing && entry.missing.length > 0) {
          problems.push(`${where} lacks the exports ${entry.missing.join(', ')}`);
        }
      }
    }
  } finally {
    renameSync(hidden, terminus);
    rmSync(script, { force: true });
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------
// Compile (step 4)

/**
 * @param {string} appDir
 * @returns {Promise<{ ms: number, declarationProblems: string[] }>}
 */
async function compile(appDir) {
  const tsc = await run(process.execPath, [TSC, '-p', join(appDir, 'tsconfig.json'), '--pretty', 'false'], {
    cwd: appDir,
  });
  const errors = tsc.stdout.split('\n').filter((l) => /^\S.*\(\d+,\d+\): error TS\d+/.test(l));
  const inDependencies = errors.filter((l) => l.startsWith('node_modules/'));
  const inApp = errors.filter((l) => !l.startsWith('node_modules/'));
  const emitted = existsSync(join(appDir, 'dist', 'main.js'));
  if (inApp.length > 0 || (tsc.code !== 0 && errors.length === 0) || !emitted) {
    throw new CheckError(`tsc failed on the app's code (${inApp.length} error(s))`, { output: tsc.output });
  }
  /** @type {string[]} */
  const declarationProblems = [];
  if (inDependencies.length > 0) {
    /** @type {Map<string, string[]>} */
    const byPackage = new Map();
    for (const line of inDependencies) {
      const match = /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(line);
      const pkg = match ? match[1] : 'node_modules';
      byPackage.set(pkg, [...(byPackage.get(pkg) ?? []), line]);
    }
    for (const [pkg, lines] of byPackage) {
      declarationProblems.push(
        `${lines.length} type error(s) in ${pkg}'s declaration files (an app compiled with ` +
          `"skipLibCheck": false cannot build):\n${lines.map((l) => `    ${l}`).join('\n')}`,
      );
    }
  }
  return { ms: tsc.ms, declarationProblems };
}

// ---------------------------------------------------------------------------------------------------------
// Running the app (steps 5 and 6)

/**
 * GET over a fresh connection (no keep-alive, so the server has nothing to wait for on shutdown).
 * @param {number} port
 * @param {string} path
 * @param {Record<string, string>} [headers]
 * @returns {Promise<{ status: number, body: string }>}
 */
function get(port, path, headers = {}) {
  return new Promise((resolveGet, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, headers, agent: false, timeout: REQUEST_TIMEOUT_MS },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolveGet({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** pg from this repo's node_modules (a dev dependency), for counting the app's sessions. */
function loadPg() {
  return /** @type {{ Client: new (config: object) => PgClient }} */ (
    createRequire(join(ROOT, 'package.json'))('pg')
  );
}
/**
 * @typedef {object} PgClient
 * @property {() => Promise<void>} connect
 * @property {() => Promise<void>} end
 * @property {(text: string, values?: unknown[]) => Promise<{ rows: Array<Record<string, unknown>> }>} query
 */

/**
 * @param {string} databaseUrl
 * @param {string} applicationName
 * @returns {Promise<number>} the sessions with that application_name
 */
async function countSessions(databaseUrl, applicationName) {
  const { Client } = loadPg();
  const client = new Client({ connectionString: databaseUrl, application_name: 'nestjs-pool-compat-check' });
  await client.connect();
  try {
    const { rows } = await client.query(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
      [applicationName],
    );
    return Number(rows[0].n);
  } finally {
    await client.end();
  }
}

/**
 * @param {string} databaseUrl
 * @param {string} applicationName
 */
function withApplicationName(databaseUrl, applicationName) {
  const url = new URL(databaseUrl);
  url.searchParams.set('application_name', applicationName);
  return url.toString();
}

/**
 * Steps 5 and 6.
 * @param {AppSpec} app
 * @param {string} appDir
 * @param {string} databaseUrl
 * @param {(message: string) => void} say
 * @returns {Promise<{ bootMs: number, shutdownMs: number, sessions: number }>}
 */
async function runApp(app, appDir, databaseUrl, say) {
  const applicationName = `nestjs-pool-compat-${app.name}-${process.pid}-${randomBytes(4).toString('hex')}`;
  /** @type {(value: { port: number, resolved: string }) => void} */
  let onReady = () => {};
  const ready = new Promise((r) => (onReady = r));
  const started = performance.now();
  const proc = start(process.execPath, [join(appDir, 'dist', 'main.js')], {
    cwd: appDir,
    env: {
      ...process.env,
      DATABASE_URL: withApplicationName(databaseUrl, applicationName),
      POOL_ADMIN_TOKEN: ADMIN_TOKEN,
      PORT: '0',
      NO_COLOR: '1',
    },
    onLine: (line) => {
      if (line.startsWith('COMPAT_READY ')) onReady(JSON.parse(line.slice('COMPAT_READY '.length)));
    },
  });
  const appOutput = () => `--- ${app.name} stdout+stderr ---\n${tail(proc.output())}`;
  const fail = (/** @type {string} */ message) => new CheckError(message, { output: appOutput() });

  try {
    const first = await Promise.race([
      ready,
      proc.exited.then(({ code, signal }) => ({ exited: `code ${code}, signal ${signal}` })),
      deadline(START_TIMEOUT_MS).then(() => ({ timeout: true })),
    ]);
    if ('exited' in first) throw fail(`the app exited during start-up (${first.exited})`);
    if ('timeout' in first) throw fail(`the app did not start within ${seconds(START_TIMEOUT_MS)}`);
    const { port, resolved } = first;
    const bootMs = performance.now() - started;
    /** @type {string[]} */
    const problems = [];
    if (!resolved.includes(`/node_modules/nestjs-pool/${app.build}/`)) {
      problems.push(`the app loaded nestjs-pool from ${resolved}, expected ${app.build}`);
    }

    const one = await get(port, '/users/one');
    if (one.status !== 200 || one.body.replace(/\s/g, '') !== '{"n":1}') {
      problems.push(`GET /users/one answered ${one.status} ${one.body}, expected 200 {"n":1}`);
    }
    const health = await get(port, '/health');
    /** @type {{ status?: string, info?: { users?: { status?: string } } }} */
    let healthBody = {};
    try {
      healthBody = JSON.parse(health.body);
    } catch {
      // reported below
    }
    if (health.status !== 200 || healthBody.info?.users?.status !== 'up') {
      problems.push(
        `GET /health answered ${health.status} ${health.body}, expected 200 with info.users.status "up"`,
      );
    }
    const adminDenied = await get(port, '/admin/pools');
    const admin = await get(port, '/admin/pools', { authorization: `Bearer ${ADMIN_TOKEN}` });
    if (adminDenied.status !== 401) {
      problems.push(`GET /admin/pools without the token answered ${adminDenied.status}, expected 401`);
    }
    if (admin.status !== 200 || !admin.body.includes('"name":"users"') || admin.body.includes(ADMIN_TOKEN)) {
      problems.push(`GET /admin/pools with the token answered ${admin.status} ${admin.body.slice(0, 200)}`);
    }
    const sessions = await countSessions(databaseUrl, applicationName);
    if (sessions < 1 || sessions > 2) {
      problems.push(
        `pg_stat_activity shows ${sessions} session(s) named ${applicationName} while the app runs, ` +
          'expected 1 or 2 (pool max 2); the application_name check below would prove nothing',
      );
    }
    say(
      `up in ${seconds(bootMs)} on port ${port}: /users/one ${one.status}, /health ${health.status}, /admin/pools ${admin.status}, ${sessions} session(s)`,
    );

    const signalled = performance.now();
    proc.child.kill('SIGTERM');
    const exit = await Promise.race([proc.exited, deadline(EXIT_TIMEOUT_MS)]);
    const shutdownMs = performance.now() - signalled;
    if (exit === undefined) {
      throw fail(
        `the app was still running ${seconds(EXIT_TIMEOUT_MS)} after SIGTERM (killed now): something kept the ` +
          'event loop alive (see COMPAT_STILL_RUNNING in its output for what was open)',
      );
    }
    if (!/^COMPAT_SHUTDOWN SIGTERM$/m.test(proc.stdout())) {
      problems.push("after SIGTERM, AppModule.onApplicationShutdown('SIGTERM') did not run");
    }
    if (exit.code !== 0 || exit.signal !== null) {
      problems.push(
        `after SIGTERM the app exited with code ${exit.code}, signal ${exit.signal}; expected code 0`,
      );
    }
    const until = performance.now() + SESSIONS_GONE_TIMEOUT_MS;
    let left = await countSessions(databaseUrl, applicationName);
    while (left > 0 && performance.now() < until) {
      await sleep(100);
      left = await countSessions(databaseUrl, applicationName);
    }
    if (left > 0) {
      problems.push(
        `${left} session(s) named ${applicationName} still in pg_stat_activity ${seconds(SESSIONS_GONE_TIMEOUT_MS)} after the app exited`,
      );
    }
    if (problems.length > 0) throw new CheckError(problems.join('\n'), { output: appOutput() });
    return { bootMs, shutdownMs, sessions };
  } finally {
    if (proc.child.exitCode === null && proc.child.signalCode === null && proc.child.pid !== undefined) {
      try {
        process.kill(-proc.child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// One app

/**
 * @typedef {object} AppResult
 * @property {AppSpec} app
 * @property {CheckError[]} failures
 * @property {Record<string, number>} timings
 * @property {Record<string, string>} versions
 */

/**
 * @param {AppSpec} app
 * @param {{ tarball: string, version: string, databaseUrl: string }} context
 * @returns {Promise<AppResult>}
 */
async function checkApp(app, { tarball, version, databaseUrl }) {
  const say = (/** @type {string} */ message) => log(`${app.name}: ${message}`);
  /** @type {AppResult} */
  const result = { app, failures: [], timings: {}, versions: {} };
  /** @param {string[]} problems */
  const note = (problems) => {
    for (const p of problems) result.failures.push(new CheckError(p));
  };
  const appDir = join(/** @type {string} */ (tempDir), app.name);
  try {
    cpSync(join(HERE, 'templates', app.name), appDir, { recursive: true });

    const npm = npmCommand();
    const install = await run(
      npm.command,
      [
        ...npm.pre,
        'install',
        '--no-audit',
        '--no-fund',
        ...(options.preferOffline ? ['--prefer-offline'] : []),
        tarball,
      ],
      { cwd: appDir, env: npmEnv() },
    );
    if (install.code !== 0) throw new CheckError('npm install failed', { output: install.output });
    result.timings.install = install.ms;

    const inspection = inspectInstall(app, appDir, version);
    result.versions = inspection.versions;
    note(inspection.problems);
    say(
      `installed ${inspection.packageCount} packages in ${seconds(install.ms)} (@nestjs/core ` +
        `${inspection.versions['@nestjs/core']}, @nestjs/terminus ${inspection.versions['@nestjs/terminus']}, ` +
        `pg ${inspection.versions.pg})`,
    );

    const probeProblems = await probeEntriesWithoutTerminus(appDir);
    note(probeProblems);
    say(
      probeProblems.length === 0
        ? 'without @nestjs/terminus and prom-client: nestjs-pool, /core, /testing, /admin load; /health and /metrics fail for want of them (require and import)'
        : `entry probe: ${probeProblems.length} problem(s)`,
    );

    const compiled = await compile(appDir);
    result.timings.compile = compiled.ms;
    note(compiled.declarationProblems);
    say(
      `compiled in ${seconds(compiled.ms)}${compiled.declarationProblems.length > 0 ? ' (with errors in declaration files)' : ''}`,
    );

    const ran = await runApp(app, appDir, databaseUrl, say);
    result.timings.boot = ran.bootMs;
    result.timings.shutdown = ran.shutdownMs;
    say(`exited with code 0 ${seconds(ran.shutdownMs)} after SIGTERM; its PostgreSQL sessions are gone`);
  } catch (error) {
    if (interrupted) throw error;
    result.failures.push(
      error instanceof CheckError
        ? error
        : new CheckError(`unexpected error: ${messageOf(error)}`, {
            output: error instanceof Error ? error.stack : undefined,
          }),
    );
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// Main

async function main() {
  const started = performance.now();
  try {
    services = await provisionServices({ need: ['postgres'] });
  } catch (error) {
    process.stderr.write(
      `[compat] FAIL: PostgreSQL is needed (the apps query it): ${error instanceof ServiceError ? error.message : messageOf(error)}\n`,
    );
    return 1;
  }
  const databaseUrl = services.env.DATABASE_URL;
  try {
    await countSessions(databaseUrl, 'nestjs-pool-compat-probe');
  } catch (error) {
    process.stderr.write(`[compat] FAIL: cannot query PostgreSQL at ${databaseUrl}: ${messageOf(error)}\n`);
    return 1;
  }

  // nestjs-pool-<kind>-<pid>-: a later run of services.mjs deletes it should this process die without
  // cleaning up (SIGKILL). A --keep folder is named so that this sweep leaves it alone.
  tempDir = mkdtempSync(
    join(tmpdir(), options.keep ? 'nestjs-pool-compat-kept-' : `nestjs-pool-compat-${process.pid}-`),
  );
  log(`working in ${tempDir}; PostgreSQL ${databaseUrl}`);
  /** @type {AppResult[]} */
  let results;
  /** @type {{ buildMs: number, packMs: number }} */
  let packTimes;
  try {
    const packed = await buildAndPack(tempDir);
    packTimes = packed;
    results = await Promise.all(
      selectedApps.map((app) =>
        checkApp(app, { tarball: packed.tarball, version: packed.version, databaseUrl }),
      ),
    );
  } catch (error) {
    if (interrupted) return new Promise(() => {}); // onSignal exits
    process.stderr.write(`[compat] FAIL: ${messageOf(error)}\n`);
    if (error instanceof CheckError && error.output) process.stderr.write(`${tail(error.output)}\n`);
    return 1;
  } finally {
    if (!interrupted) {
      killChildren();
      removeTempDir();
      await services.stop();
    }
  }

  process.stdout.write('\n');
  for (const { app, failures, timings, versions } of results) {
    const times = Object.entries(timings)
      .map(([step, ms]) => `${step} ${seconds(ms)}`)
      .join(', ');
    const what = `${app.name} (Nest ${versions['@nestjs/core'] ?? '?'}, terminus ${versions['@nestjs/terminus'] ?? '?'}, ${app.format} app on ${app.build})`;
    if (failures.length === 0) {
      log(`PASS ${what}: ${times}`);
      continue;
    }
    log(`FAIL ${what}: ${failures.length} problem(s)${times ? `; ${times}` : ''}`);
    for (const failure of failures) {
      process.stderr.write(`  - ${failure.message.replace(/\n/g, '\n    ')}\n`);
      if (failure.output) process.stderr.write(`${failure.output.replace(/^/gm, '    | ')}\n`);
    }
  }
  const passed = results.filter((r) => r.failures.length === 0).length;
  log(
    `${passed}/${results.length} apps passed in ${seconds(performance.now() - started)} ` +
      `(build ${seconds(packTimes.buildMs)}, pack ${seconds(packTimes.packMs)})`,
  );
  return passed === results.length ? 0 : 1;
}

process.exitCode = await main();
await stopAll();
