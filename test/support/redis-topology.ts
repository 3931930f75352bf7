/**
 * Private Redis topologies for tests: a Redis Cluster of N masters (no replicas) and a master watched by one
 * Sentinel, on free loopback ports, without persistence, in a temporary directory.
 *
 * Each redis-server runs under a tiny `sh` supervisor (the same idea as scripts/services.mjs): it stops the
 * server when our stdin pipe closes, so a test process that dies (even SIGKILLed) leaves no server behind.
 * Tests still call stop() in afterAll.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable, findFreePort, redisPing } from './private-servers.js';
import { sleep, waitUntil } from './wait.js';

// fd 4 keeps our stdin pipe: a background job's own stdin is /dev/null in a non-interactive shell.
const SUPERVISOR = `
exec 4<&0
"$@" </dev/null 4<&- &
pid=$!
( cat <&4 >/dev/null; kill -TERM "$pid" 2>/dev/null; kill -CONT "$pid" 2>/dev/null ) </dev/null >/dev/null 2>&1 &
watcher=$!
wait "$pid"
rc=$?
kill "$watcher" 2>/dev/null
exit "$rc"
`;

interface ServerProcess {
  isRunning(): boolean;
  /** The last 16 KiB of the server's output (for failure messages). */
  output(): string;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and waits for its exit. Idempotent. */
  stop(): Promise<void>;
  /** Kills it at once (SIGKILL: a crash, no goodbye) and waits for its exit. */
  kill(): Promise<void>;
}

export interface RedisNode extends ServerProcess {
  readonly host: string;
  readonly port: number;
  /** Starts it again with the same arguments (same port, same cluster config file) and waits for PONG. */
  start(): Promise<void>;
}

function redisServerPath(): string {
  const bin = findExecutable('redis-server');
  if (bin === undefined) throw new Error('redis-server is not installed (apt-get install redis-server)');
  return bin;
}

function redisNode(args: readonly string[], port: number): RedisNode {
  let current = launch(args);
  const self: RedisNode = {
    host: '127.0.0.1',
    port,
    isRunning: () => current.isRunning(),
    output: () => current.output(),
    stop: () => current.stop(),
    kill: () => current.kill(),
    async start() {
      if (current.isRunning()) return;
      current = launch(args);
      await waitForPong(self);
    },
  };
  return self;
}

function launch(args: readonly string[]): ServerProcess {
  const child: ChildProcess = spawn(
    'sh',
    ['-c', SUPERVISOR, 'nestjs-pool-supervisor', redisServerPath(), ...args],
    {
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const append = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-16_384);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  child.stdin!.on('error', () => undefined);
  let running = true;
  const exited = new Promise<void>((resolve) => {
    child.once('error', () => {
      running = false;
      resolve();
    });
    child.once('close', () => {
      running = false;
      resolve();
    });
  });
  const killGroup = (): void => {
    try {
      // The supervisor leads its own process group (detached): this reaches the server too.
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  return {
    isRunning: () => running,
    output: () => output,
    async kill() {
      if (running) killGroup();
      await exited;
      child.stdin!.destroy();
      child.stdout!.destroy();
      child.stderr!.destroy();
    },
    async stop() {
      if (running) {
        child.stdin!.end();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timedOut = await Promise.race([
          exited.then(() => false),
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), 5_000))),
        ]);
        clearTimeout(timer);
        if (timedOut) {
          killGroup();
          await exited;
        }
      }
      child.stdin!.destroy();
      child.stdout!.destroy();
      child.stderr!.destroy();
    },
  };
}

async function waitForPong(node: RedisNode): Promise<void> {
  await waitUntil(
    async () => {
      if (!node.isRunning()) throw new Error(`redis-server on ${node.port} exited:\n${node.output()}`);
      // -NOAUTH: up, with a password.
      const reply = await redisPing(node.port);
      return reply === '+PONG' || reply?.startsWith('-NOAUTH') === true;
    },
    `redis-server on 127.0.0.1:${node.port}`,
    15_000,
    25,
  );
}

function makeDir(kind: string): string {
  return mkdtempSync(join(tmpdir(), `nestjs-pool-${kind}-${process.pid}-`));
}

const BASE_ARGS = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'];

// ---------------------------------------------------------------------------------------------------------
// Cluster

export interface PrivateRedisCluster {
  /** The masters, in creation order. */
  readonly nodes: readonly RedisNode[];
  /** `[{ host, port }, ...]` for the pool's `cluster.nodes`. */
  readonly seeds: readonly { host: string; port: number }[];
  /** Stops every node and removes the directory. Idempotent; never throws. */
  stop(): Promise<void>;
}

/**
 * Starts `masters` cluster-enabled servers (each with an explicit bus port, so no port + 10000 clash),
 * creates the cluster with `redis-cli --cluster create` and waits for `cluster_state:ok` on every node.
 * `nodeTimeoutMs` is `cluster-node-timeout` (how soon a stopped master is declared failed).
 */
export async function startPrivateRedisCluster(
  options: { masters?: number; nodeTimeoutMs?: number } = {},
): Promise<PrivateRedisCluster> {
  const masters = options.masters ?? 3;
  const cli = findExecutable('redis-cli');
  if (cli === undefined) throw new Error('redis-cli is not installed (apt-get install redis-tools)');
  const dir = makeDir('rcluster');
  const nodes: RedisNode[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => node.stop().catch(() => undefined)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const used = new Set<number>();
    const freePort = async (): Promise<number> => {
      for (;;) {
        const port = await findFreePort();
        if (!used.has(port)) {
          used.add(port);
          return port;
        }
      }
    };
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      const busPort = await freePort();
      nodes.push(
        redisNode(
          [
            ...BASE_ARGS,
            '--port',
            String(port),
            '--cluster-enabled',
            'yes',
            '--cluster-port',
            String(busPort),
            '--cluster-config-file',
            join(dir, `nodes-${port}.conf`),
            '--cluster-node-timeout',
            String(options.nodeTimeoutMs ?? 2_000),
            '--dir',
            dir,
          ],
          port,
        ),
      );
    }
    await Promise.all(nodes.map((node) => waitForPong(node)));
    const created = spawnSync(
      cli,
      [
        '--cluster',
        'create',
        ...nodes.map((node) => `127.0.0.1:${node.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    if (created.status !== 0) {
      throw new Error(`redis-cli --cluster create failed:\n${created.stdout}\n${created.stderr}`);
    }
    for (const node of nodes) {
      await waitUntil(
        () => clusterInfo(cli, node.port).includes('cluster_state:ok'),
        `cluster_state:ok on 127.0.0.1:${node.port}`,
        15_000,
        50,
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  let stopped: Promise<void> | undefined;
  return {
    nodes,
    seeds: nodes.map((node) => ({ host: node.host, port: node.port })),
    stop: () => (stopped ??= stop()),
  };
}

function clusterInfo(cli: string, port: number): string {
  const result = spawnSync(cli, ['-h', '127.0.0.1', '-p', String(port), 'cluster', 'info'], {
    encoding: 'utf8',
    timeout: 5_000,
  });
  return result.stdout ?? '';
}

// ---------------------------------------------------------------------------------------------------------
// Sentinel

export interface PrivateRedisSentinel {
  /** The monitored master's name (the pool's `sentinel.name`). */
  readonly name: string;
  readonly master: RedisNode;
  readonly sentinel: RedisNode;
  /** Stops the sentinel and the master and removes the directory. Idempotent; never throws. */
  stop(): Promise<void>;
}

/**
 * Starts a master and one Sentinel monitoring it (quorum 1); resolves once the Sentinel knows the master.
 * `password`: the master's requirepass (the sentinel gets it as auth-pass); `sentinelPassword`: the
 * sentinel's own requirepass.
 */
export async function startPrivateRedisSentinel(
  name = 'np-master',
  options: { password?: string; sentinelPassword?: string } = {},
): Promise<PrivateRedisSentinel> {
  const dir = makeDir('rsentinel');
  const nodes: RedisNode[] = [];
  const stop = async (): Promise<void> => {
    for (const node of [...nodes].reverse()) await node.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const masterPort = await findFreePort();
    const auth = options.password === undefined ? [] : ['--requirepass', options.password];
    const master = redisNode([...BASE_ARGS, '--port', String(masterPort), '--dir', dir, ...auth], masterPort);
    nodes.push(master);
    await waitForPong(master);
    let sentinelPort = await findFreePort();
    while (sentinelPort === masterPort) sentinelPort = await findFreePort();
    // Sentinel rewrites its config file: it must be its own, writable.
    const config = join(dir, 'sentinel.conf');
    writeFileSync(
      config,
      [
        'bind 127.0.0.1',
        `port ${sentinelPort}`,
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`,
        `sentinel down-after-milliseconds ${name} 5000`,
        ...(options.password === undefined ? [] : [`sentinel auth-pass ${name} ${options.password}`]),
        ...(options.sentinelPassword === undefined ? [] : [`requirepass ${options.sentinelPassword}`]),
        '',
      ].join('\n'),
    );
    const sentinel = redisNode([config, '--sentinel'], sentinelPort);
    nodes.push(sentinel);
    await waitForPong(sentinel);
    const cli = findExecutable('redis-cli');
    if (cli !== undefined) {
      await waitUntil(
        () => {
          const reply = spawnSync(
            cli,
            [
              '-h',
              '127.0.0.1',
              '-p',
              String(sentinelPort),
              ...(options.sentinelPassword === undefined
                ? []
                : ['--no-auth-warning', '-a', options.sentinelPassword]),
              'sentinel',
              'get-master-addr-by-name',
              name,
            ],
            { encoding: 'utf8', timeout: 5_000 },
          );
          return (reply.stdout ?? '').includes(String(masterPort));
        },
        `sentinel on ${sentinelPort} to know ${name}`,
        10_000,
        50,
      );
    } else {
      await sleep(200);
    }
    let stopped: Promise<void> | undefined;
    return { name, master, sentinel, stop: () => (stopped ??= stop()) };
  } catch (error) {
    await stop();
    throw error;
  }
}
