/**
 * Helpers for the Redis backend tests, against the shared server from REDIS_URL (default 127.0.0.1:6379).
 *
 * Other test files use the same server concurrently: these tests use database TEST_DB, keys under a
 * per-process prefix, and tag each pool's connections with a unique connectionName, so CLIENT LIST and
 * CLIENT KILL only ever see (and kill) that pool's connections. Nothing here flushes anything.
 */
import { Redis } from 'ioredis';
import { sleep } from '../../support/wait.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The database these tests use on the shared server. */
export const TEST_DB = 7;

let counter = 0;

/** A connectionName unique across test files and runs (CLIENT SETNAME takes no spaces). */
export function uniqueName(prefix: string): string {
  counter++;
  return `np-redis-${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

/** A key prefix unique to this process. */
export const KEY_PREFIX = `np:redis-test:${process.pid}:${Date.now().toString(36)}:`;

/** REDIS_URL (or `base`) with a database path and optionally a different host/port or credentials. */
export function redisUrl(
  options: {
    db?: number;
    port?: number;
    host?: string;
    user?: string;
    password?: string;
    base?: string;
  } = {},
): string {
  const url = new URL(options.base ?? REDIS_URL);
  url.pathname = `/${options.db ?? TEST_DB}`;
  if (options.host !== undefined) url.hostname = options.host;
  if (options.port !== undefined) url.port = String(options.port);
  if (options.user !== undefined) url.username = encodeURIComponent(options.user);
  if (options.password !== undefined) url.password = encodeURIComponent(options.password);
  return url.toString();
}

/** A plain client for assertions (not pooled), named so it never counts as a pool connection. */
export async function adminClient(url = REDIS_URL): Promise<Redis> {
  const client = new Redis(url, { lazyConnect: true, connectionName: 'np-redis-test-admin', db: TEST_DB });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

interface ClientInfo {
  id: string;
  name: string;
  db: number;
  flags: string;
  cmd: string;
}

/** CLIENT LIST entries with this name. */
export async function clientsNamed(admin: Redis, name: string): Promise<ClientInfo[]> {
  const text = (await admin.client('LIST')) as string;
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => Object.fromEntries(line.split(' ').map((pair) => pair.split('=', 2) as [string, string])))
    .filter((fields) => fields['name'] === name)
    .map((fields) => ({
      id: fields['id']!,
      name: fields['name']!,
      db: Number(fields['db']),
      flags: fields['flags'] ?? '',
      cmd: fields['cmd'] ?? '',
    }));
}

export async function countClients(admin: Redis, name: string): Promise<number> {
  return (await clientsNamed(admin, name)).length;
}

/** CLIENT KILL every connection with this name (only ours: the name is unique); returns how many. */
export async function killClients(admin: Redis, name: string): Promise<number> {
  let killed = 0;
  for (const client of await clientsNamed(admin, name)) {
    killed += Number(await admin.client('KILL', 'ID', client.id));
  }
  return killed;
}

/** Samples a value every `intervalMs` until stopped; `stop()` resolves with the peak. */
export function sampleMax(sample: () => Promise<number>, intervalMs = 10): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, await sample());
      await sleep(intervalMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}

export { sleep, waitUntil } from '../../support/wait.js';
