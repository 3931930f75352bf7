#!/usr/bin/env node
// `npm test` (after lint and typecheck): provisions PostgreSQL, Redis and MongoDB (see services.mjs), runs
// Jest with every argument passed through, and always stops whatever it started - after Jest, on Jest
// failure and on SIGINT/SIGTERM/SIGHUP. Exits with Jest's exit code.
//
// NESTJS_POOL_SERVICES=postgres,redis (or "none") limits what gets provisioned; DATABASE_URL, REDIS_URL and
// MONGODB_URI point the tests at existing servers instead.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseServiceList, provisionServices, ServiceError, stopAll } from './services.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const jestBin = join(root, 'node_modules', 'jest', 'bin', 'jest.js');

/** @type {import('node:child_process').ChildProcess | undefined} */
let jest;
/** @type {NodeJS.Signals | undefined} */
let interrupted;

/** @param {NodeJS.Signals} signal */
function onSignal(signal) {
  if (jest && jest.exitCode === null && jest.signalCode === null) {
    // Jest usually got the terminal's signal itself already; forwarding covers `kill <pid>`. Cleanup
    // follows once Jest has exited (see below).
    interrupted = signal;
    jest.kill(signal);
    return;
  }
  if (interrupted) return; // second signal while cleaning up: cleanup is already running
  interrupted = signal;
  process.stderr.write(`\n[run-tests] ${signal}: stopping services\n`);
  // Interrupted while provisioning (e.g. during the FerretDB build): stop everything started so far.
  void stopAll().finally(() => process.exit(128 + (constants.signals[signal] ?? 1)));
}
for (const signal of /** @type {NodeJS.Signals[]} */ (['SIGINT', 'SIGTERM', 'SIGHUP']))
  process.on(signal, onSignal);

async function main() {
  /** @type {Awaited<ReturnType<typeof provisionServices>> | undefined} */
  let services;
  try {
    services = await provisionServices({ need: parseServiceList(process.env.NESTJS_POOL_SERVICES) });
  } catch (err) {
    await stopAll();
    if (interrupted) return new Promise(() => {}); // onSignal exits
    process.stderr.write(
      `[run-tests] ${err instanceof ServiceError ? err.message : err instanceof Error ? err.stack : err}\n`,
    );
    return 1;
  }
  if (interrupted) return new Promise(() => {});

  try {
    for (const [key, value] of Object.entries(services.env)) {
      process.stderr.write(`[run-tests] ${key}=${value}\n`);
    }
    return await runJest({ ...process.env, ...services.env });
  } finally {
    await services.stop();
    await stopAll();
  }
}

/**
 * @param {NodeJS.ProcessEnv} env
 * @returns {Promise<number>} Jest's exit code (128 + signal number when it was killed)
 */
function runJest(env) {
  // Jest's JSON results go to a file so we can end with the plain "N passed, N failed" line CI reads.
  const resultsFile = join(mkdtempSync(join(tmpdir(), 'nestjs-pool-jest-')), 'results.json');
  const child = spawn(
    process.execPath,
    [
      '--experimental-vm-modules',
      jestBin,
      '--detectOpenHandles',
      '--json',
      `--outputFile=${resultsFile}`,
      ...process.argv.slice(2),
    ],
    { cwd: root, env, stdio: 'inherit' },
  );
  child.once('exit', () => {
    try {
      const results = JSON.parse(readFileSync(resultsFile, 'utf8'));
      const skipped = results.numPendingTests + results.numTodoTests;
      process.stdout.write(
        `\n${results.numPassedTests} passed, ${results.numFailedTests} failed` +
          (skipped > 0 ? `, ${skipped} skipped` : '') +
          '\n',
      );
    } catch {
      // Jest died before writing results; its exit code tells the story.
    } finally {
      rmSync(dirname(resultsFile), { recursive: true, force: true });
    }
  });
  jest = child;
  return new Promise((resolveCode) => {
    child.once('error', (err) => {
      process.stderr.write(`[run-tests] could not start Jest: ${err.message}\n`);
      resolveCode(1);
    });
    child.once('exit', (exitCode, signal) =>
      resolveCode(exitCode ?? 128 + (signal ? (constants.signals[signal] ?? 1) : 1)),
    );
  });
}

process.exitCode = await main();
