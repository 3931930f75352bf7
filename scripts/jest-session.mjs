// What run-tests.mjs (`npm test`) and run-chaos.mjs (`npm run test:chaos`) share: provision the servers
// (services.mjs), run Jest in a child process, print the plain "N passed, N failed" line CI reads, and always
// stop whatever was started - after Jest, on failure, and on SIGINT/SIGTERM/SIGHUP (forwarded to Jest first).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseServiceList, provisionServices, ServiceError, stopAll } from './services.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const jestBin = join(root, 'node_modules', 'jest', 'bin', 'jest.js');

/** A promise that never settles: returned once a signal is being handled (the handler exits). */
const interruptedForever = () => new Promise(() => {});

/**
 * @typedef {object} RunJestOptions
 * @property {string[]} jestArgs      Jest's arguments (config, paths, flags); --json output is added.
 * @property {NodeJS.ProcessEnv} env
 * @property {string[]} [nodeArgs]    Extra Node flags (e.g. --expose-gc).
 * @property {string} [resultsFile]   Where Jest writes its JSON results (default: a temp file, removed).
 * @property {number} [timeoutMs]     Stop Jest (SIGTERM, then SIGKILL) when it runs longer.
 */

/**
 * Installs the signal handlers and returns the session's two steps.
 * @param {string} tag  prefix of this script's messages, e.g. `run-tests`
 */
export function startJestSession(tag) {
  /** @type {import('node:child_process').ChildProcess | undefined} */
  let jest;
  /** @type {NodeJS.Signals | undefined} */
  let interrupted;

  /** @param {NodeJS.Signals} signal */
  function onSignal(signal) {
    if (jest && jest.exitCode === null && jest.signalCode === null) {
      // Jest usually got the terminal's signal itself already; forwarding covers `kill <pid>`. Cleanup
      // follows once Jest has exited (the caller's finally).
      interrupted = signal;
      jest.kill(signal);
      return;
    }
    if (interrupted) return; // second signal while cleaning up: cleanup is already running
    interrupted = signal;
    process.stderr.write(`\n[${tag}] ${signal}: stopping services\n`);
    // Interrupted while provisioning (e.g. during the FerretDB build): stop everything started so far.
    void stopAll().finally(() => process.exit(128 + (constants.signals[signal] ?? 1)));
  }
  for (const signal of /** @type {NodeJS.Signals[]} */ (['SIGINT', 'SIGTERM', 'SIGHUP']))
    process.on(signal, onSignal);

  return {
    /**
     * Provisions what NESTJS_POOL_SERVICES asks for (default: all). Resolves undefined (after printing why)
     * when it fails; never resolves when a signal arrived meanwhile (the handler exits).
     * @returns {Promise<Awaited<ReturnType<typeof provisionServices>> | undefined>}
     */
    async provision() {
      try {
        const services = await provisionServices({
          need: parseServiceList(process.env.NESTJS_POOL_SERVICES),
        });
        if (interrupted) return interruptedForever();
        for (const [key, value] of Object.entries(services.env)) {
          process.stderr.write(`[${tag}] ${key}=${value}\n`);
        }
        return services;
      } catch (err) {
        await stopAll();
        if (interrupted) return interruptedForever();
        process.stderr.write(
          `[${tag}] ${err instanceof ServiceError ? err.message : err instanceof Error ? err.stack : err}\n`,
        );
        return undefined;
      }
    },

    /**
     * Runs Jest; resolves its exit code (128 + signal number when it was killed).
     * @param {RunJestOptions} options
     * @returns {Promise<number>}
     */
    runJest({ jestArgs, env, nodeArgs = [], resultsFile, timeoutMs }) {
      const tempDir =
        resultsFile === undefined ? mkdtempSync(join(tmpdir(), 'nestjs-pool-jest-')) : undefined;
      const outputFile = resultsFile ?? join(/** @type {string} */ (tempDir), 'results.json');
      const child = spawn(
        process.execPath,
        [
          ...nodeArgs,
          '--experimental-vm-modules',
          jestBin,
          ...jestArgs,
          '--json',
          `--outputFile=${outputFile}`,
        ],
        { cwd: root, env, stdio: 'inherit' },
      );
      jest = child;
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              process.stderr.write(`\n[${tag}] Jest exceeded ${timeoutMs} ms: stopping it\n`);
              child.kill('SIGTERM');
              setTimeout(() => child.kill('SIGKILL'), 5000).unref();
            }, timeoutMs);
      return new Promise((resolveCode) => {
        child.once('error', (err) => {
          clearTimeout(timer);
          process.stderr.write(`[${tag}] could not start Jest: ${err.message}\n`);
          resolveCode(1);
        });
        child.once('exit', (exitCode, signal) => {
          clearTimeout(timer);
          printSummary(outputFile);
          if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true });
          resolveCode(exitCode ?? 128 + (signal ? (constants.signals[signal] ?? 1) : 1));
        });
      });
    },
  };
}

/** Ends the output with the plain "N passed, N failed" line CI reads. @param {string} resultsFile */
function printSummary(resultsFile) {
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
  }
}
