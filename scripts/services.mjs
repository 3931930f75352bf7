#!/usr/bin/env node
// Test services for nestjs-pool: provisions PostgreSQL, Redis and MongoDB (FerretDB) for the integration
// tests, and starts private, throw-away server instances for tests that kill or restart a server.
//
// Plain ESM JavaScript with Node built-ins only, so it runs before anything is compiled and can be imported
// both by scripts (run-tests.mjs, the benchmarks) and by Jest tests (types: services.d.mts).
//
// Standalone: `node scripts/services.mjs [postgres] [redis] [mongodb]` prints `export NAME=value` lines and
// keeps the servers up until Ctrl-C.
//
// Every server this module starts runs under a tiny `sh` supervisor whose stdin is a pipe from this Node
// process. When the pipe closes - on stop(), but also when this process dies in any way, even SIGKILL -
// the supervisor signals the server, so no server can outlive the process that started it.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { resolveSrv } from 'node:dns/promises';
import {
  accessSync,
  chmodSync,
  chownSync,
  constants as fsConstants,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** FerretDB release used when MONGODB_URI is not set (the last release with the SQLite handler). */
export const FERRETDB_VERSION = 'v1.24.2';
const FERRETDB_PACKAGE = 'github.com/FerretDB/FerretDB/cmd/ferretdb';
const FERRETDB_MODULE = 'github.com/FerretDB/FerretDB';

/** All services the integration tests know about. */
export const ALL_SERVICES = /** @type {const} */ (['postgres', 'redis', 'mongodb']);

/**
 * @typedef {'postgres' | 'redis' | 'mongodb'} ServiceName
 *
 * @typedef {object} ProvisionedServices
 * @property {Record<string, string>} env  Variables for the test process (DATABASE_URL, REDIS_URL, ...).
 * @property {() => Promise<void>} stop    Stops whatever provisionServices started; idempotent.
 *
 * @typedef {object} PrivateServer
 * @property {string} host
 * @property {number} port
 * @property {string} url               Connection URL for the matching client library.
 * @property {number} startupMs         Wall time of the first start (including initdb etc.).
 * @property {() => boolean} isRunning  Whether the server process is alive.
 * @property {(signal: string) => void} signal  Sends a signal to the main server process, e.g. SIGSTOP / SIGCONT
 *   to freeze a server while its connections stay open (stop() and restart() continue a stopped server).
 * @property {(signal?: string) => Promise<void>} kill  Sends a signal (default SIGKILL: a crash) and waits for the exit.
 * @property {() => Promise<void>} restart  Stops the server gracefully (keeping its data) and starts it on the same port.
 * @property {() => Promise<void>} stop     Stops the server and deletes its files; idempotent.
 */

/** Thrown for environment problems; run-tests.mjs prints only the message. */
export class ServiceError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'ServiceError';
  }
}

/**
 * Where server data directories go: NESTJS_POOL_TMPDIR, else /dev/shm when it is a roomy tmpfs (copying a
 * PostgreSQL data directory there takes ~0.1 s instead of up to 1 s on a slow disk), else os.tmpdir().
 * @returns {string}
 */
export function scratchDir() {
  if (process.env.NESTJS_POOL_TMPDIR) return resolve(process.env.NESTJS_POOL_TMPDIR);
  try {
    accessSync('/dev/shm', fsConstants.W_OK);
    const fs = statfsSync('/dev/shm');
    if (fs.bavail * fs.bsize >= 1024 * 1024 * 1024) return '/dev/shm';
  } catch {
    // no /dev/shm (macOS) or no statfs
  }
  return tmpdir();
}

/**
 * Temporary directories are named nestjs-pool-<kind>-<pid>-XXXXXX so that a later run can delete the ones
 * left behind by a process that died without cleaning up (SIGKILL). The servers in them are gone already:
 * their supervisors stop them when the owning process dies.
 * @param {string} kind
 * @param {string} [parent]
 */
function makeTempDir(kind, parent = tmpdir()) {
  for (const dir of new Set([tmpdir(), scratchDir()])) sweepStaleTempDirs(dir);
  return mkdtempSync(join(parent, `nestjs-pool-${kind}-${process.pid}-`));
}

/** @param {string} parent */
function sweepStaleTempDirs(parent) {
  let names;
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const match = /^nestjs-pool-[a-z]+-(\d+)-/.exec(name);
    if (!match || Number(match[1]) === process.pid) continue;
    try {
      process.kill(Number(match[1]), 0);
    } catch (err) {
      if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'ESRCH') continue; // alive (EPERM)
      try {
        rmSync(join(parent, name), { recursive: true, force: true });
      } catch {
        // not ours to delete (another user) or read-only files: leave it
      }
    }
  }
}

/** @param {string} message */
function info(message) {
  process.stderr.write(`[services] ${message}\n`);
}

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Cache directory for built binaries and templates; git-ignored. */
export function cacheDir() {
  return resolve(process.env.NESTJS_POOL_CACHE_DIR || join(ROOT, '.cache'));
}

// ---------------------------------------------------------------------------------------------------------
// Cleanup registry: everything started is registered, so stopAll() can clean up even halfway through
// provisioning (e.g. on Ctrl-C during the FerretDB build).

/** @type {Set<() => Promise<void>>} */
const cleanups = new Set();

/**
 * @param {() => Promise<void>} fn
 * @returns {() => Promise<void>} runs fn once and unregisters it
 */
function registerCleanup(fn) {
  let done = false;
  const once = async () => {
    if (done) return;
    done = true;
    cleanups.delete(once);
    await fn();
  };
  cleanups.add(once);
  return once;
}

/** Stops every server and build this module started and has not stopped yet (newest first). */
export async function stopAll() {
  const pending = [...cleanups].reverse();
  for (const fn of pending) {
    try {
      await fn();
    } catch (err) {
      info(`cleanup failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers

/**
 * Finds an executable in PATH and in extra directories.
 * @param {string} name
 * @param {string[]} [extraDirs]
 * @returns {string | undefined}
 */
export function findExecutable(name, extraDirs = []) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...extraDirs].filter(Boolean);
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Asks the kernel for a free loopback port. Another process could take it before we bind it; callers that
 * start servers retry on a bind failure.
 * @param {string} [host]
 * @returns {Promise<number>}
 */
export function findFreePort(host = '127.0.0.1') {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/**
 * One TCP connection attempt.
 * @param {number} port
 * @param {string} [host]
 * @param {number} [timeoutMs]
 * @returns {Promise<boolean>}
 */
export function canConnect(port, host = '127.0.0.1', timeoutMs = 1000) {
  return new Promise((done) => {
    const socket = createConnection({ host, port });
    const finish = (/** @type {boolean} */ ok) => {
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/**
 * Polls until a TCP connection to host:port succeeds.
 * @param {number} port
 * @param {{ host?: string, timeoutMs?: number, intervalMs?: number, isAlive?: () => boolean }} [options]
 *   isAlive: stop waiting early when the server process has already exited.
 * @returns {Promise<void>}
 */
export async function waitForPort(port, options = {}) {
  const { host = '127.0.0.1', timeoutMs = 30_000, intervalMs = 50, isAlive } = options;
  await waitFor(() => canConnect(port, host, 1000), {
    timeoutMs,
    intervalMs,
    isAlive,
    what: `${host}:${port}`,
  });
}

/**
 * @param {() => Promise<boolean>} probe
 * @param {{ timeoutMs: number, intervalMs?: number, isAlive?: () => boolean, what: string }} options
 */
async function waitFor(probe, { timeoutMs, intervalMs = 50, isAlive, what }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (isAlive && !isAlive()) throw new ServiceError(`${what}: the server process exited during start-up`);
    if (Date.now() >= deadline) throw new ServiceError(`${what}: not ready after ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

/**
 * Sends one request over a fresh TCP connection and collects the reply.
 * @param {{ host: string, port: number, request: Buffer | string, timeoutMs?: number,
 *           complete: (reply: Buffer) => boolean }} options
 * @returns {Promise<Buffer>} what arrived (possibly incomplete when the peer closed)
 */
function tcpRequest({ host, port, request, timeoutMs = 2000, complete }) {
  return new Promise((resolveReply, reject) => {
    const socket = createConnection({ host, port });
    /** @type {Buffer[]} */
    const chunks = [];
    const finish = (/** @type {Error | undefined} */ err) => {
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.destroy();
      if (err) reject(err);
      else resolveReply(Buffer.concat(chunks));
    };
    socket.setTimeout(timeoutMs, () =>
      finish(new Error(`no reply from ${host}:${port} within ${timeoutMs} ms`)),
    );
    socket.once('connect', () => socket.write(request));
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      if (complete(Buffer.concat(chunks))) finish(undefined);
    });
    socket.once('end', () => finish(undefined));
    socket.once('error', finish);
  });
}

/**
 * Sends PING over plain TCP (RESP inline command).
 * @param {number} [port]
 * @param {string} [host]
 * @returns {Promise<string | undefined>} the first reply line ('+PONG', '-NOAUTH ...', '-LOADING ...'), or
 *   undefined when nothing (or nothing RESP-like) answered
 */
export async function redisPing(port = 6379, host = '127.0.0.1') {
  try {
    const reply = await tcpRequest({
      host,
      port,
      request: 'PING\r\n',
      timeoutMs: 1000,
      complete: (buf) => buf.includes('\r\n'),
    });
    const line = reply.toString('latin1').split('\r\n')[0];
    return /^[+-]/.test(line) ? line : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Speaks just enough of the PostgreSQL protocol to tell whether a server accepts sessions: sends a
 * StartupMessage and reads the first reply. Leaves politely (Terminate) when the session was accepted.
 * @param {{ host?: string, port?: number, user?: string, database?: string, timeoutMs?: number }} [options]
 * @returns {Promise<{ state: 'ready' } | { state: 'error', code: string, message: string } | { state: 'down', message: string }>}
 *   ready: authentication succeeded or was requested (server up); error: the server answered with an
 *   ErrorResponse (code 57P03 = still starting, 3D000 = no such database, ...); down: no PostgreSQL answered.
 */
export async function pgProbe(options = {}) {
  const { host = '127.0.0.1', port = 5432, user = 'postgres', database = user, timeoutMs = 2000 } = options;
  const params = Buffer.from(`user\0${user}\0database\0${database}\0\0`, 'utf8');
  const startup = Buffer.alloc(8 + params.length);
  startup.writeInt32BE(startup.length, 0);
  startup.writeInt32BE(196608, 4); // protocol 3.0
  params.copy(startup, 8);
  // A complete message: type byte + int32 length (including itself) + body.
  const hasMessage = (/** @type {Buffer} */ buf) => buf.length >= 5 && buf.length >= 1 + buf.readInt32BE(1);
  return new Promise((done) => {
    const socket = createConnection({ host, port });
    /** @type {Buffer} */
    let buf = Buffer.alloc(0);
    const finish = (/** @type {Awaited<ReturnType<typeof pgProbe>>} */ result, terminate = false) => {
      socket.removeAllListeners();
      socket.on('error', () => {});
      if (terminate)
        socket.end(Buffer.from([0x58, 0, 0, 0, 4])); // 'X' Terminate
      else socket.destroy();
      done(result);
    };
    socket.setTimeout(timeoutMs, () => finish({ state: 'down', message: `no reply within ${timeoutMs} ms` }));
    socket.once('connect', () => socket.write(startup));
    socket.once('error', (err) => finish({ state: 'down', message: err.message }));
    socket.once('end', () => finish({ state: 'down', message: 'connection closed without a reply' }));
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (!hasMessage(buf)) return;
      const type = String.fromCharCode(buf[0]);
      if (type === 'R') {
        const authOk = buf.readInt32BE(5) === 0;
        finish({ state: 'ready' }, authOk);
      } else if (type === 'E') {
        /** @type {Record<string, string>} */
        const fields = {};
        const end = 1 + buf.readInt32BE(1);
        for (let i = 5; i < end && buf[i] !== 0;) {
          const code = String.fromCharCode(buf[i]);
          const zero = buf.indexOf(0, i + 1);
          fields[code] = buf.toString('utf8', i + 1, zero);
          i = zero + 1;
        }
        finish({ state: 'error', code: fields.C ?? '', message: fields.M ?? 'unknown error' });
      } else {
        finish({ state: 'down', message: `unexpected reply ${JSON.stringify(type)}` });
      }
    });
  });
}

/**
 * Runs a command to completion and returns its output; throws a ServiceError with the output on failure.
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ cwd?: string, env?: NodeJS.ProcessEnv }} [options]
 */
function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  if (result.error) throw new ServiceError(`${cmd} failed to start: ${result.error.message}`);
  if (result.status !== 0) {
    throw new ServiceError(
      `\`${[cmd, ...args].join(' ')}\` exited with ${result.status ?? result.signal}:\n${result.stdout}${result.stderr}`,
    );
  }
  return result.stdout;
}

/**
 * Runs a command asynchronously, in its own process group, so that stopAll() can interrupt it together with
 * everything it started (the Go compiler processes of a build).
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ cwd?: string, env?: NodeJS.ProcessEnv }} [options]
 * @returns {Promise<string>} stdout
 */
function runAsync(cmd, args, options = {}) {
  const child = spawn(cmd, args, { ...options, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  /** @type {Promise<{ code: number | null, signal: NodeJS.Signals | null, error?: Error }>} */
  let finished = false;
  const exited = new Promise((resolveExit) => {
    child.once('error', (error) => resolveExit({ code: null, signal: null, error }));
    child.once('close', (code, signal) => resolveExit({ code, signal }));
  }).finally(() => (finished = true));
  const cleanup = registerCleanup(async () => {
    try {
      // the whole group: go build runs the compiler in child processes
      if (child.pid && !finished) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already exited
    }
    await exited;
  });
  return exited.then(({ code, signal, error }) => {
    void cleanup();
    if (error) throw new ServiceError(`${cmd} failed to start: ${error.message}`);
    if (code !== 0)
      throw new ServiceError(`\`${[cmd, ...args].join(' ')}\` exited with ${code ?? signal}:\n${out}${err}`);
    return out;
  });
}

// ---------------------------------------------------------------------------------------------------------
// Supervised processes

// $1 = signal for a graceful stop, $2... = the server command. fd 4 keeps the pipe from Node; the watcher
// reads signal names from it (for kill()/signal()) and sends the stop signal at EOF - which also happens when
// the Node process dies (CONT after it, in case a test left the server stopped with STOP).
// The server itself gets neither stdin nor fd 4.
const SUPERVISOR = `
stop_sig="$1"; shift
exec 4<&0
"$@" </dev/null 4<&- &
pid=$!
(
  while IFS= read -r sig <&4; do kill -s "$sig" "$pid" 2>/dev/null; done
  kill -s "$stop_sig" "$pid" 2>/dev/null
  kill -s CONT "$pid" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
watcher=$!
wait "$pid"
rc=$?
kill "$watcher" 2>/dev/null
exit "$rc"
`;

/**
 * @typedef {object} Supervised
 * @property {() => boolean} isRunning
 * @property {() => string} output  The last 64 KiB of the server's stdout + stderr.
 * @property {Promise<void>} exited
 * @property {(signal: string) => void} signal  Sends the signal to the server process.
 * @property {(signal: string) => Promise<void>} kill  Sends the signal and waits for the exit.
 * @property {(timeoutMs?: number) => Promise<void>} stop  Graceful stop, SIGKILL after timeoutMs.
 */

/**
 * Starts a server under the sh supervisor, in its own process group (so a Ctrl-C in the terminal reaches
 * only the test runner, which then stops the servers in order).
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ stopSignal?: string, runAs?: string, cwd?: string, name: string }} options
 * @returns {Supervised}
 */
function spawnSupervised(cmd, args, { stopSignal = 'TERM', runAs, cwd, name }) {
  const argv = ['sh', '-c', SUPERVISOR, 'nestjs-pool-supervisor', stopSignal, cmd, ...args];
  const [file, ...rest] = runAs ? ['runuser', '-u', runAs, '--', ...argv] : argv;
  const child = spawn(file, rest, { cwd, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  const append = (/** @type {Buffer} */ chunk) => {
    output = (output + chunk.toString('utf8')).slice(-65536);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  child.stdin.on('error', () => {}); // EPIPE after the supervisor exited
  let running = true;
  const exited = new Promise((resolveExit) => {
    child.once('error', (err) => {
      append(Buffer.from(`\n${file}: ${err.message}\n`));
      running = false;
      resolveExit(undefined);
    });
    child.once('close', () => {
      running = false;
      resolveExit(undefined);
    });
  }).then(() => undefined);

  const unregister = registerCleanup(() => stop());

  /** @param {string} name */
  function signal(name) {
    if (!/^(SIG)?[A-Z0-9]+$/.test(name)) throw new Error(`not a signal name: ${name}`);
    if (running && child.stdin.writable) child.stdin.write(`${name.replace(/^SIG/, '')}\n`);
  }

  /** @param {string} name */
  async function kill(name) {
    if (!running) return;
    signal(name);
    await exited;
    child.stdin.destroy();
  }

  async function stop(timeoutMs = 10_000) {
    if (running) {
      child.stdin.end();
      let timer;
      const timedOut = await Promise.race([
        exited.then(() => false),
        new Promise((r) => (timer = setTimeout(() => r(true), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        info(`${name} did not stop within ${timeoutMs} ms; killing it`);
        try {
          // The supervisor leads its own process group (detached), so this reaches the server too.
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
        await exited;
      }
    }
    child.stdin.destroy();
    void unregister();
  }

  return { isRunning: () => running, output: () => output, exited, signal, kill, stop };
}

// ---------------------------------------------------------------------------------------------------------
// Redis

/**
 * @param {number} port
 * @param {string} [dir]
 */
function redisArgs(port, dir) {
  const args = [
    '--daemonize',
    'no',
    '--bind',
    '127.0.0.1',
    '--port',
    String(port),
    '--save',
    '',
    '--appendonly',
    'no',
  ];
  if (dir) args.push('--dir', dir);
  return args;
}

/**
 * Starts redis-server under supervision and waits for +PONG.
 * @param {number} port
 * @param {string} name
 */
async function launchRedis(port, name) {
  const bin = findExecutable('redis-server');
  if (!bin)
    throw new ServiceError(
      'redis-server is not installed (apt-get install redis-server) and REDIS_URL is not set',
    );
  const proc = spawnSupervised(bin, redisArgs(port, tmpdir()), { name, stopSignal: 'TERM' });
  try {
    await waitFor(async () => (await redisPing(port)) === '+PONG', {
      timeoutMs: 15_000,
      isAlive: proc.isRunning,
      what: `${name} on 127.0.0.1:${port}`,
    });
  } catch (err) {
    await proc.stop();
    throw new ServiceError(
      `${err instanceof Error ? err.message : String(err)}\n--- redis-server output ---\n${proc.output()}`,
    );
  }
  return proc;
}

/**
 * Finds a free loopback port and launches a server on it, trying again (3 attempts) if the port was taken
 * between findFreePort() and the server's bind.
 * @param {(port: number) => Promise<Supervised>} launch
 * @returns {Promise<{ port: number, proc: Supervised }>}
 */
async function launchOnFreePort(launch) {
  for (let attempt = 1; ; attempt++) {
    const port = await findFreePort();
    try {
      return { port, proc: await launch(port) };
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

/**
 * Starts a private redis-server on a free loopback port (no persistence). Meant for tests that kill or
 * restart the server - never use the shared one for that.
 * @returns {Promise<PrivateServer>}
 */
export async function startPrivateRedis() {
  const started = Date.now();
  const { port, proc } = await launchOnFreePort((p) => launchRedis(p, 'private redis'));
  let current = proc;
  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    url: `redis://127.0.0.1:${port}`,
    startupMs: Date.now() - started,
    isRunning: () => current.isRunning(),
    signal: (signal) => current.signal(signal),
    kill: (signal = 'SIGKILL') => current.kill(signal),
    async restart() {
      if (stopped) throw new Error('private redis was stopped');
      await current.stop();
      current = await launchRedis(port, 'private redis');
    },
    async stop() {
      stopped = true;
      await current.stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// PostgreSQL

/**
 * Where the PostgreSQL server binaries (initdb, postgres) are: on PATH, or the newest /usr/lib/postgresql/N/bin.
 * @returns {string | undefined}
 */
export function findPostgresBinDir() {
  // realpath: distributions link /usr/local/bin/initdb -> /usr/lib/postgresql/N/bin/initdb, and postgres
  // must come from the same directory.
  const onPath = findExecutable('initdb');
  const dir = onPath && dirname(realpathSync(onPath));
  if (dir && existsSync(join(dir, 'postgres'))) return dir;
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')) && existsSync(join(base, v, 'bin', 'postgres')))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  return versions.length ? join(base, versions[0], 'bin') : undefined;
}

/**
 * initdb refuses to run as root: as root we run the server as the `postgres` OS user.
 * @returns {{ user: string, uid: number, gid: number } | undefined}
 */
function postgresOsUser() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line)
    throw new ServiceError('running as root, but there is no `postgres` OS user to run PostgreSQL as');
  const [, , uid, gid] = line.split(':');
  return { user: 'postgres', uid: Number(uid), gid: Number(gid) };
}

/**
 * @param {string[]} argv
 * @param {string | undefined} runAs
 */
function asUser(argv, runAs) {
  return runAs ? ['runuser', '-u', runAs, '--', ...argv] : argv;
}

// Small WAL segments make the data directory 29 MB instead of 39 MB: copying it is most of the start-up.
const INITDB_ARGS = ['-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--wal-segsize=1'];

/**
 * initdb takes ~1 s; do it once per PostgreSQL build and copy the result for each server (0.1-0.5 s,
 * depending on the disk).
 * @param {string} binDir
 * @param {{ user: string, uid: number, gid: number } | undefined} osUser
 * @returns {string} template data directory
 */
function postgresTemplate(binDir, osUser) {
  const version = run(join(binDir, 'postgres'), ['--version']).trim();
  const key = createHash('sha256')
    .update([binDir, version, ...INITDB_ARGS].join('\n'))
    .digest('hex')
    .slice(0, 12);
  const template = join(cacheDir(), `pg-template-${key}`);
  if (existsSync(join(template, 'PG_VERSION'))) return template;
  info(`initdb for the private PostgreSQL template (${version}) ...`);
  // initdb into os.tmpdir() (the cache directory may not be reachable for the postgres user), then copy.
  const work = makeTempDir('initdb');
  try {
    if (osUser) chownSync(work, osUser.uid, osUser.gid);
    const data = join(work, 'data');
    const [cmd, ...args] = asUser([join(binDir, 'initdb'), '-D', data, ...INITDB_ARGS], osUser?.user);
    run(cmd, args);
    mkdirSync(cacheDir(), { recursive: true });
    const partial = `${template}.tmp-${process.pid}`;
    rmSync(partial, { recursive: true, force: true });
    run('cp', ['-a', data, partial]); // -a keeps the owner (postgres) when we are root
    try {
      renameSync(partial, template);
    } catch {
      // another process created it concurrently; theirs is as good as ours
      rmSync(partial, { recursive: true, force: true });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return template;
}

/**
 * @param {{ binDir: string, data: string, port: number, runAs: string | undefined }} options
 */
async function launchPostgres({ binDir, data, port, runAs }) {
  // `postgres` in the foreground rather than `pg_ctl start`: pg_ctl daemonizes the server, which would
  // escape our supervisor. SIGINT is PostgreSQL's "fast" shutdown (disconnects clients, no waiting).
  const args = [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    data,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=200',
  ];
  const proc = spawnSupervised(join(binDir, 'postgres'), args, {
    name: 'private postgres',
    stopSignal: 'INT',
    runAs,
  });
  try {
    await waitFor(
      async () => (await pgProbe({ port, user: 'postgres', database: 'postgres' })).state === 'ready',
      {
        timeoutMs: 30_000,
        isAlive: proc.isRunning,
        what: `private postgres on 127.0.0.1:${port}`,
      },
    );
  } catch (err) {
    await proc.stop();
    throw new ServiceError(
      `${err instanceof Error ? err.message : String(err)}\n--- postgres output ---\n${proc.output()}`,
    );
  }
  return proc;
}

/**
 * Starts a private PostgreSQL (trust auth, user and database `postgres`) on a free loopback port, with its
 * data in a temporary directory that stop() deletes. Meant for tests that kill or restart the server.
 * @returns {Promise<PrivateServer>}
 */
export async function startPrivatePostgres() {
  const started = Date.now();
  const binDir = findPostgresBinDir();
  if (!binDir) {
    throw new ServiceError(
      'a private PostgreSQL needs the server binaries (initdb, postgres) on PATH or under /usr/lib/postgresql/*/bin',
    );
  }
  const osUser = postgresOsUser();
  const template = postgresTemplate(binDir, osUser);
  const dir = makeTempDir('pg', scratchDir());
  const removeDir = registerCleanup(async () => rmSync(dir, { recursive: true, force: true }));
  const data = join(dir, 'data');
  /** @type {{ port: number, proc: Supervised }} */
  let launched;
  try {
    if (osUser) chownSync(dir, osUser.uid, osUser.gid);
    run('cp', ['-a', template, data]);
    chmodSync(data, 0o700); // postgres insists on it
    launched = await launchOnFreePort((p) => launchPostgres({ binDir, data, port: p, runAs: osUser?.user }));
  } catch (err) {
    await removeDir();
    throw err;
  }
  const { port, proc } = launched;
  let current = proc;
  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    startupMs: Date.now() - started,
    isRunning: () => current.isRunning(),
    signal: (signal) => current.signal(signal),
    kill: (signal = 'SIGKILL') => current.kill(signal),
    async restart() {
      if (stopped) throw new Error('private postgres was stopped');
      await current.stop();
      current = await launchPostgres({ binDir, data, port, runAs: osUser?.user });
    },
    async stop() {
      stopped = true;
      await current.stop();
      await removeDir();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// MongoDB via FerretDB

/**
 * Returns the cached FerretDB binary, building it with Go on first use.
 * NESTJS_POOL_FERRETDB_BIN may point at a ready binary instead.
 * @returns {Promise<string>}
 */
export async function ensureFerretDB() {
  const override = process.env.NESTJS_POOL_FERRETDB_BIN;
  if (override) {
    if (!existsSync(override)) throw new ServiceError(`NESTJS_POOL_FERRETDB_BIN=${override} does not exist`);
    return override;
  }
  const binary = join(cacheDir(), 'bin', `ferretdb-${FERRETDB_VERSION}`);
  if (existsSync(binary)) return binary;

  const go = findExecutable('go', ['/usr/local/go/bin']);
  if (!go)
    throw new ServiceError(
      'MongoDB tests need either MONGODB_URI or Go to build FerretDB; install Go or set MONGODB_URI',
    );

  info(
    `building FerretDB ${FERRETDB_VERSION} with Go into ${binary} (first time only; takes a few minutes) ...`,
  );
  const started = Date.now();
  const work = makeTempDir('ferretbuild');
  // Registered before the go commands, so stopAll() (newest first) kills a running build before this.
  const partial = `${binary}.tmp-${process.pid}`;
  const removeWork = registerCleanup(async () => {
    if (existsSync(work)) run('chmod', ['-R', 'u+w', work]); // the module source copy is read-only
    rmSync(work, { recursive: true, force: true });
    rmSync(partial, { force: true });
  });
  try {
    // `go install ...@v1.24.2` asks the module proxy for the module's version list (deprecation check),
    // which some proxies refuse; resolving the exact version inside a throw-away module avoids that lookup.
    writeFileSync(join(work, 'go.mod'), 'module ferretbuild\n\ngo 1.22\n');
    // GOTMPDIR inside the work directory: an interrupted build must not leave /tmp/go-build* behind.
    mkdirSync(join(work, 'gotmp'));
    const env = { ...process.env, GOFLAGS: '-mod=mod', GO111MODULE: 'on', GOTMPDIR: join(work, 'gotmp') };
    await runAsync(go, ['get', `${FERRETDB_PACKAGE}@${FERRETDB_VERSION}`], { cwd: work, env });
    const moduleDir = (
      await runAsync(go, ['list', '-m', '-f', '{{.Dir}}', FERRETDB_MODULE], { cwd: work, env })
    ).trim();
    if (!moduleDir || !existsSync(moduleDir))
      throw new ServiceError(`go list did not locate ${FERRETDB_MODULE}`);

    // FerretDB panics at start-up unless build/version/version.txt holds a version - the release process
    // generates it and the module zip lacks it. So build from a copy of the module with that file added.
    const src = join(work, 'src');
    cpSync(moduleDir, src, { recursive: true });
    run('chmod', ['-R', 'u+w', src]); // the module cache is read-only
    writeFileSync(join(src, 'build', 'version', 'version.txt'), `${FERRETDB_VERSION}\n`);

    mkdirSync(dirname(binary), { recursive: true });
    await runAsync(go, ['build', '-buildvcs=false', '-trimpath', '-o', partial, './cmd/ferretdb'], {
      cwd: src,
      env: { ...env, CGO_ENABLED: '0' },
    });
    run(partial, ['--version']); // fails loudly if the binary would not start
    renameSync(partial, binary);
  } finally {
    await removeWork();
  }
  info(`built FerretDB in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return binary;
}

/**
 * @param {{ binary: string, dir: string, port: number }} options
 */
async function launchFerretDB({ binary, dir, port }) {
  const args = [
    '--handler=sqlite',
    `--sqlite-url=file:${dir}/`,
    `--listen-addr=127.0.0.1:${port}`,
    `--state-dir=${dir}`, // state.json would otherwise land in the current directory
    '--debug-addr=-', // no HTTP debug listener (it would need a port of its own)
    '--telemetry=disable',
    '--log-level=warn',
  ];
  const proc = spawnSupervised(binary, args, { name: 'ferretdb', stopSignal: 'TERM', cwd: dir });
  try {
    await waitForPort(port, { timeoutMs: 30_000, isAlive: proc.isRunning });
  } catch (err) {
    await proc.stop();
    throw new ServiceError(
      `FerretDB did not start: ${err instanceof Error ? err.message : String(err)}\n--- ferretdb output ---\n${proc.output()}`,
    );
  }
  return proc;
}

/**
 * Starts FerretDB (MongoDB wire protocol, SQLite storage in a temporary directory) on a free loopback port.
 * Used for the shared MongoDB of a test run, and by tests that need a private one.
 * @returns {Promise<PrivateServer>}
 */
export async function startPrivateFerretDB() {
  const started = Date.now();
  const binary = await ensureFerretDB();
  const dir = makeTempDir('ferretdb', scratchDir());
  const removeDir = registerCleanup(async () => rmSync(dir, { recursive: true, force: true }));
  /** @type {{ port: number, proc: Supervised }} */
  let launched;
  try {
    launched = await launchOnFreePort((p) => launchFerretDB({ binary, dir, port: p }));
  } catch (err) {
    await removeDir();
    throw err;
  }
  const { port, proc } = launched;
  let current = proc;
  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    url: `mongodb://127.0.0.1:${port}/`,
    startupMs: Date.now() - started,
    isRunning: () => current.isRunning(),
    signal: (signal) => current.signal(signal),
    kill: (signal = 'SIGKILL') => current.kill(signal),
    async restart() {
      if (stopped) throw new Error('private FerretDB was stopped');
      await current.stop();
      current = await launchFerretDB({ binary, dir, port });
    },
    async stop() {
      stopped = true;
      await current.stop();
      await removeDir();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Shared services for a test run

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * @param {string} url
 * @param {number} defaultPort
 */
function hostPort(url, defaultPort) {
  const u = new URL(url);
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: Number(u.port) || defaultPort,
    url: u,
  };
}

/** @returns {Promise<{ env: Record<string, string>, stop?: () => Promise<void> }>} */
async function provisionPostgres() {
  const given = process.env.DATABASE_URL;
  if (given) {
    const { host, port, url } = hostPort(given, 5432);
    const user = decodeURIComponent(url.username) || process.env.PGUSER || process.env.USER || 'postgres';
    const database = decodeURIComponent(url.pathname.slice(1)) || user;
    const probe = await pgProbe({ host, port, user, database });
    if (probe.state === 'down')
      throw new ServiceError(`DATABASE_URL=${given} is not reachable: ${probe.message}`);
    if (probe.state === 'error') info(`DATABASE_URL server answered: ${probe.message} (${probe.code})`);
    return { env: { DATABASE_URL: given } };
  }

  const check = () => pgProbe({ port: 5432, user: 'postgres', database: 'test' });
  let probe = await check();
  /** @type {(() => Promise<void>) | undefined} */
  let stop;
  if (probe.state === 'down') {
    const ctl = findExecutable('pg_ctlcluster');
    const versions = existsSync('/etc/postgresql')
      ? readdirSync('/etc/postgresql').filter((v) => existsSync(join('/etc/postgresql', v, 'main')))
      : [];
    if (!ctl || versions.length === 0) {
      throw new ServiceError(
        'PostgreSQL is not running on 127.0.0.1:5432 and could not be started (no pg_ctlcluster / cluster in ' +
          '/etc/postgresql): install postgresql or set DATABASE_URL',
      );
    }
    const version = versions.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))[0];
    info(`PostgreSQL is not running on 127.0.0.1:5432; starting the system cluster ${version}/main ...`);
    const started = spawnSync(ctl, ['--skip-systemctl-redirect', version, 'main', 'start'], {
      encoding: 'utf8',
    });
    if (started.status !== 0) {
      const output = `${started.stdout ?? ''}${started.stderr ?? ''}${started.error?.message ?? ''}`.trim();
      throw new ServiceError(
        started.status === 2
          ? `PostgreSQL cluster ${version}/main is running but does not accept connections on 127.0.0.1:5432 ` +
              '(check port and listen_addresses in its postgresql.conf), or set DATABASE_URL'
          : `PostgreSQL is not running on 127.0.0.1:5432 and could not be started: install postgresql or set ` +
              `DATABASE_URL\n\`pg_ctlcluster ${version} main start\`: ${output}`,
      );
    }
    info(`started PostgreSQL ${version}/main; it will be stopped again after the run`);
    // We started the machine's cluster, so we stop it again - but only then.
    stop = registerCleanup(async () => {
      info(`stopping the system PostgreSQL cluster ${version}/main that this run started`);
      run(ctl, ['--skip-systemctl-redirect', version, 'main', 'stop', '-m', 'fast']);
    });
    try {
      await waitFor(
        async () => ['ready', 'error'].includes((probe = await check()).state) && probe.code !== '57P03',
        {
          timeoutMs: 30_000,
          what: 'PostgreSQL on 127.0.0.1:5432',
        },
      );
    } catch (err) {
      await stop();
      throw err;
    }
  }
  if (probe.state === 'error') {
    const hint =
      probe.code === '3D000'
        ? ' - create it with `createdb -h 127.0.0.1 -U postgres test`'
        : ' - the tests expect trust auth for user postgres (or set DATABASE_URL)';
    await stop?.();
    throw new ServiceError(`PostgreSQL on 127.0.0.1:5432 refused the test session: ${probe.message}${hint}`);
  }
  return { env: { DATABASE_URL: DEFAULT_DATABASE_URL }, stop };
}

/** @returns {Promise<{ env: Record<string, string>, stop?: () => Promise<void> }>} */
async function provisionRedis() {
  const given = process.env.REDIS_URL;
  if (given) {
    const { host, port, url } = hostPort(given, 6379);
    const reachable =
      url.protocol === 'rediss:' ? await canConnect(port, host) : (await redisPing(port, host)) !== undefined;
    if (!reachable) throw new ServiceError(`REDIS_URL=${given} is not reachable`);
    return { env: { REDIS_URL: given } };
  }
  const pong = await redisPing(6379);
  if (pong === '+PONG') return { env: { REDIS_URL: DEFAULT_REDIS_URL } };
  if (pong !== undefined || (await canConnect(6379))) {
    throw new ServiceError(
      `something on 127.0.0.1:6379 answers but not like an open Redis (${pong ?? 'no PING reply'}); set REDIS_URL`,
    );
  }
  info('Redis is not running on 127.0.0.1:6379; starting redis-server for this run');
  const proc = await launchRedis(6379, 'redis-server');
  return { env: { REDIS_URL: DEFAULT_REDIS_URL }, stop: () => proc.stop() };
}

/** @returns {Promise<{ env: Record<string, string>, stop?: () => Promise<void> }>} */
async function provisionMongo() {
  const given = process.env.MONGODB_URI;
  if (given) {
    const match = /^(mongodb(?:\+srv)?):\/\/(?:[^@/]*@)?([^/?]+)/.exec(given);
    if (!match) throw new ServiceError(`MONGODB_URI=${given} is not a mongodb:// URI`);
    /** @type {string} */
    let host;
    /** @type {string} */
    let portText;
    if (match[1] === 'mongodb+srv') {
      const records = await resolveSrv(`_mongodb._tcp.${match[2]}`).catch(() => []);
      if (records.length === 0)
        throw new ServiceError(`MONGODB_URI=${given}: no SRV records for ${match[2]}`);
      [host, portText] = [records[0].name, String(records[0].port)];
    } else {
      const first = match[2].split(',')[0];
      const ipv6 = /^\[(.*)\](?::(\d+))?$/.exec(first);
      [host, portText] = ipv6 ? [ipv6[1], ipv6[2] ?? ''] : [first.split(':')[0], first.split(':')[1] ?? ''];
    }
    if (!(await canConnect(Number(portText) || 27017, host, 3000))) {
      throw new ServiceError(`MONGODB_URI=${given} is not reachable (${host}:${portText || 27017})`);
    }
    return { env: { MONGODB_URI: given } };
  }
  const server = await startPrivateFerretDB();
  info(
    `FerretDB ${FERRETDB_VERSION} listening on 127.0.0.1:${server.port} (started in ${server.startupMs} ms)`,
  );
  return { env: { MONGODB_URI: server.url }, stop: () => server.stop() };
}

/**
 * Makes the servers the integration tests need available and returns the environment for the tests.
 * Reuses running servers (PostgreSQL on 5432, Redis on 6379) or the URLs from DATABASE_URL / REDIS_URL /
 * MONGODB_URI; starts what is missing. Whatever it started, stop() stops again.
 * @param {{ need?: readonly ServiceName[] }} [options]
 * @returns {Promise<ProvisionedServices>}
 */
export async function provisionServices({ need = ALL_SERVICES } = {}) {
  /** @type {Record<ServiceName, () => Promise<{ env: Record<string, string>, stop?: () => Promise<void> }>>} */
  const provisioners = { postgres: provisionPostgres, redis: provisionRedis, mongodb: provisionMongo };
  /** @type {Array<() => Promise<void>>} */
  const stops = [];
  /** @type {Record<string, string>} */
  const env = { NESTJS_POOL_TEST_SERVICES: '1' };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const fn of stops.reverse()) {
      try {
        await fn();
      } catch (err) {
        info(`stopping failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  };
  try {
    for (const name of need) {
      const provision = provisioners[name];
      if (!provision)
        throw new ServiceError(`unknown service ${JSON.stringify(name)} (known: ${ALL_SERVICES.join(', ')})`);
      const result = await provision();
      Object.assign(env, result.env);
      if (result.stop) stops.push(result.stop);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { env, stop };
}

/**
 * Parses a service list such as "postgres,redis" (or "none"); empty means all.
 * @param {string | undefined} text
 * @returns {ServiceName[]}
 */
export function parseServiceList(text) {
  if (!text || !text.trim()) return [...ALL_SERVICES];
  if (text.trim() === 'none') return [];
  const names = text.split(/[\s,]+/).filter(Boolean);
  for (const name of names) {
    if (!(/** @type {readonly string[]} */ (ALL_SERVICES).includes(name))) {
      throw new ServiceError(
        `unknown service ${JSON.stringify(name)} (known: ${ALL_SERVICES.join(', ')}, none)`,
      );
    }
  }
  return /** @type {ServiceName[]} */ (names);
}

// ---------------------------------------------------------------------------------------------------------
// Standalone: node scripts/services.mjs [postgres] [redis] [mongodb]

async function main() {
  let services;
  let exiting = false;
  const onSignal = async (/** @type {NodeJS.Signals} */ signal) => {
    if (exiting) return;
    exiting = true;
    info(`${signal}: stopping services`);
    await (services ? services.stop() : stopAll());
    await stopAll();
    process.exit(0);
  };
  for (const signal of /** @type {NodeJS.Signals[]} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
    process.on(signal, (s) => void onSignal(s));
  }
  try {
    services = await provisionServices({ need: parseServiceList(process.argv.slice(2).join(',')) });
  } catch (err) {
    await stopAll();
    process.stderr.write(
      `${err instanceof ServiceError ? err.message : err instanceof Error ? err.stack : err}\n`,
    );
    process.exit(1);
  }
  for (const [key, value] of Object.entries(services.env)) process.stdout.write(`export ${key}=${value}\n`);
  info('services are up; press Ctrl-C to stop them');
  setInterval(() => {}, 1 << 30); // keep the process (and with it the servers) alive
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void main();
}
