/**
 * Helpers for the MongoDB backend tests, against the server from MONGODB_URI (FerretDB provisioned by
 * scripts/run-tests.mjs, or a real mongod). Test files run concurrently against it, so each file uses a
 * database of its own (uniqueDatabase) and asserts on its own pool's driver counters, not server totals.
 */
import { parseUri } from '../../../lib/backends/redaction.js';

export const MONGODB_URI = process.env.MONGODB_URI ?? 'mongodb://127.0.0.1:27017/';

let counter = 0;

/** A database name unique to this file and run (Mongo: < 64 bytes, no dots). */
export function uniqueDatabase(prefix: string): string {
  counter++;
  return `np_${prefix}_${process.pid}_${Date.now().toString(36)}_${counter}`.slice(0, 60);
}

/**
 * MONGODB_URI with the database as its path, query parameters set and optionally credentials; `host` and
 * `port` replace the server's address (for a FaultProxy in front of a single-host URI).
 */
export function mongoUrl(
  database: string,
  params: Record<string, string> = {},
  extra: { auth?: { user: string; password: string }; host?: string; port?: number } = {},
): string {
  const parsed = parseUri(MONGODB_URI);
  if (parsed === undefined) throw new Error('MONGODB_URI is not a valid URI');
  const { url } = parsed;
  url.pathname = `/${database}`;
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  if (extra.auth !== undefined) {
    url.username = encodeURIComponent(extra.auth.user);
    url.password = encodeURIComponent(extra.auth.password);
  }
  if (extra.host !== undefined) url.hostname = extra.host;
  if (extra.port !== undefined) url.port = String(extra.port);
  let text = url.toString();
  if (parsed.hosts !== undefined && extra.host === undefined)
    text = text.replace('multi-host.invalid', parsed.hosts);
  return text;
}

/** The first server of MONGODB_URI (what a FaultProxy forwards to). */
export function mongoServer(): { host: string; port: number } {
  const match = /^mongodb:\/\/(?:[^@/]*@)?([^/?,]+)/.exec(MONGODB_URI);
  if (match === null) throw new Error('MONGODB_URI must be a mongodb:// URI for proxied tests');
  const [host, port] = match[1]!.split(':');
  return { host: host === 'localhost' ? '127.0.0.1' : host!, port: Number(port ?? 27017) };
}

/** A proxied pool must talk to the proxy only: a replica-set URI would discover the real members. */
export function proxiedParams(): Record<string, string> {
  return { directConnection: 'true' };
}

export { sleep, waitUntil } from '../../support/wait.js';
