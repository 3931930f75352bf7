/**
 * Helpers for the PostgreSQL backend tests, against the real server from DATABASE_URL (default: the
 * shared trust-auth server on 127.0.0.1:5432, user postgres, database test).
 *
 * Test files run concurrently against the same server, so each test tags its pool's connections with a
 * unique application_name and counts those in pg_stat_activity, and each file uses its own table.
 */
import pg from 'pg';
import { FaultProxy } from '../../../lib/testing/fault-proxy.js';

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let counter = 0;

/** A name unique across test files and runs, short enough for application_name (63 bytes). */
export function uniqueName(prefix: string): string {
  counter++;
  return `np_${prefix}_${process.pid}_${Date.now().toString(36)}_${counter}`.slice(0, 60);
}

/** DATABASE_URL with query parameters set (e.g. application_name) and optionally other credentials. */
export function pgUrl(
  params: Record<string, string> = {},
  auth?: { user: string; password: string },
): string {
  const url = new URL(DATABASE_URL);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  if (auth !== undefined) {
    url.username = encodeURIComponent(auth.user);
    url.password = encodeURIComponent(auth.password);
  }
  return url.toString();
}

/** A plain pg.Client for assertions (not pooled), tagged so it never counts as a pool connection. */
export async function adminClient(url = DATABASE_URL): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'nestjs-pool-test-admin' });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Server processes (backends) with this application_name. */
export async function countBackends(admin: pg.Client, applicationName: string): Promise<number> {
  const result = await admin.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
    [applicationName],
  );
  return result.rows[0]!.n;
}

export async function backendPids(admin: pg.Client, applicationName: string): Promise<number[]> {
  const result = await admin.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid',
    [applicationName],
  );
  return result.rows.map((row) => row.pid);
}

/**
 * A FaultProxy in front of the real server, and a URI through it tagged with `applicationName`; `onCleanup`
 * gets the proxy's stop.
 */
export async function proxiedUri(
  applicationName: string,
  onCleanup: (cleanup: () => Promise<void>) => void,
): Promise<{ proxy: FaultProxy; uri: string }> {
  const server = new URL(DATABASE_URL);
  const proxy = new FaultProxy({ target: { host: server.hostname, port: Number(server.port || 5432) } });
  await proxy.start();
  onCleanup(() => proxy.stop());
  const url = new URL(pgUrl({ application_name: applicationName }));
  url.hostname = proxy.host;
  url.port = String(proxy.port);
  return { proxy, uri: url.toString() };
}

export { sleep, waitUntil } from '../../support/wait.js';
