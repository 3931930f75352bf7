#!/usr/bin/env node
// Headless Chromium for the browser tests (the admin dashboard is checked in a real browser through
// playwright-core). playwright-core never downloads a browser itself; we drive Debian's `chromium` package,
// installed here with apt-get when it is missing and we are root.
//
// Plain ESM JavaScript with Node built-ins only, so run-tests.mjs and Jest tests can both import it
// (types: browser.d.mts). Standalone: `node scripts/browser.mjs` installs it if needed and prints its path.

import { spawnSync } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** Where Debian's `chromium` package puts the browser; CHROMIUM_PATH overrides it. */
export const DEFAULT_CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Flags for a quiet, sandbox-free headless run inside containers and CI: no GPU, no QUIC, and none of the
 * background traffic (component updates, sync, field trials) a fresh profile would start.
 */
export const CHROMIUM_ARGS = Object.freeze([
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]);

/** Thrown when Chromium is missing and cannot be installed; the message says what to do. */
export class BrowserProvisionError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'BrowserProvisionError';
  }
}

/** @param {string} path */
function isExecutable(path) {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * @param {string} command
 * @param {string[]} args
 */
function run(command, args) {
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    // Several jobs may share the machine: wait for another apt run's lock instead of failing.
    timeout: 15 * 60_000,
  });
  if (result.error) return { ok: false, output: result.error.message };
  return { ok: result.status === 0, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

/** @param {string} output */
function tail(output) {
  return output.trim().split('\n').slice(-15).join('\n');
}

/**
 * Returns the path of a runnable Chromium, installing Debian's `chromium` package first when it is missing
 * and this process is root. Throws a BrowserProvisionError naming what is missing otherwise.
 *
 * @param {{ log?: (line: string) => void }} [options]
 * @returns {string}
 */
export function ensureChromium(options = {}) {
  const log = options.log ?? ((line) => process.stderr.write(`[browser] ${line}\n`));
  const path = process.env.CHROMIUM_PATH || DEFAULT_CHROMIUM_PATH;
  if (isExecutable(path)) return path;
  if (process.env.CHROMIUM_PATH) {
    throw new BrowserProvisionError(`CHROMIUM_PATH=${path} is not an executable file`);
  }
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    throw new BrowserProvisionError(
      `Chromium is missing: ${path} does not exist and this process is not root, so it cannot install it. ` +
        `Install the Debian package "chromium" (sudo apt-get install -y chromium), or set CHROMIUM_PATH ` +
        `to a Chromium/Chrome executable.`,
    );
  }
  if (!isExecutable('/usr/bin/apt-get')) {
    throw new BrowserProvisionError(
      `Chromium is missing (${path}) and apt-get is not available to install it; install Chromium and set ` +
        `CHROMIUM_PATH to its executable.`,
    );
  }
  const lockWait = ['-o', 'DPkg::Lock::Timeout=600'];
  log('installing the Debian package "chromium" (apt-get update && apt-get install -y chromium)...');
  const update = run('apt-get', [...lockWait, 'update']);
  if (!update.ok) {
    throw new BrowserProvisionError(
      `apt-get update failed; cannot install chromium:\n${tail(update.output)}`,
    );
  }
  const install = run('apt-get', [...lockWait, 'install', '-y', '--no-install-recommends', 'chromium']);
  if (!install.ok) {
    throw new BrowserProvisionError(
      `apt-get install -y chromium failed; the browser tests need it:\n${tail(install.output)}`,
    );
  }
  if (!isExecutable(path)) {
    throw new BrowserProvisionError(`apt-get installed "chromium" but ${path} is still missing`);
  }
  log(`installed ${path}`);
  return path;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    process.stdout.write(`${ensureChromium()}\n`);
  } catch (err) {
    process.stderr.write(`[browser] ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
