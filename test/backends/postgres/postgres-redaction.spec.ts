/**
 * A postgres pool configured with a password lets it out nowhere: every error (and cause chain), event,
 * metrics(), checkHealth(), inspect() and JSON output of a busy, failing pool is searched for it.
 * (The shared server uses trust auth, so it accepts the pool whatever the password.)
 */
import { describe, expect, it } from '@jest/globals';
import { dump, expectNoSecret } from '../../support/secrets.js';
import { inspect } from 'node:util';
import { createPool, type PostgresPool } from '../../../lib/index.js';
import { pgUrl, uniqueName } from './pg-test-support.js';

const PASSWORD = 'Hunter2-S3cret/Pa55#word';
const ENCODED = encodeURIComponent(PASSWORD);
const SECRETS = [PASSWORD, ENCODED, 'S3cret'];

function record(pool: PostgresPool, outputs: string[]): void {
  for (const event of ['acquire', 'release', 'create', 'destroy', 'error', 'leak', 'state'] as const) {
    pool.on(event, (...args: unknown[]) => outputs.push(`${event}: ${args.map((a) => dump(a)).join(' ')}`));
  }
}

describe('credentials never leave a postgres pool', () => {
  it('working pool, failing queries, timeouts, health, inspect and JSON', async () => {
    const app = uniqueName('redact');
    const outputs: string[] = [];
    const uri = pgUrl({ application_name: app }, { user: 'postgres', password: PASSWORD });
    expect(uri).toContain(ENCODED);
    const pool = createPool({ name: app, backend: 'postgres', uri, queryTimeoutMs: 200, pool: { max: 2 } });
    record(pool, outputs);
    try {
      await pool.start();
      outputs.push(dump(await pool.query('SELECT 1 AS n')));
      outputs.push(dump(await pool.query('SELECT nope').catch((e: unknown) => e)));
      outputs.push(dump(await pool.query('SELECT pg_sleep(3)').catch((e: unknown) => e)));
      outputs.push(
        dump(await pool.transaction(() => Promise.reject(new Error('rolled'))).catch((e: unknown) => e)),
      );
      const lease = await pool.acquire();
      outputs.push(dump(lease), inspect(lease.connection, { depth: 4 }));
      lease.release();
      outputs.push(dump(await pool.checkHealth({ timeoutMs: 1000 })));
      outputs.push(dump(pool), dump(pool.metrics()), dump(pool.toJSON()), pool.target, String(pool));
      outputs.push(inspect(pool, { customInspect: false, showHidden: true, depth: 8 }));
      outputs.push(JSON.stringify(Object.entries(pool)), JSON.stringify(Object.getOwnPropertyNames(pool)));
      expect(pool.target).toMatch(/^postgres:\/\/postgres:\*\*\*@/);
      expect(inspect(pool)).toMatch(
        new RegExp(
          `^PostgresPool \\{ name: '${app}', backend: 'postgres', target: 'postgres://postgres:\\*\\*\\*@`,
        ),
      );
    } finally {
      await pool.close();
    }
    outputs.push(
      dump(await pool.checkHealth({ timeoutMs: 200 })),
      dump(await pool.start().catch((e: unknown) => e)),
    );
    expect(outputs.length).toBeGreaterThan(15);
    expectNoSecret(outputs, SECRETS);
  });

  it('unreachable server, password in the URI and in connection options', async () => {
    const outputs: string[] = [];
    const viaUri = createPool({
      name: 'down-uri',
      backend: 'postgres',
      uri: `postgres://app:${ENCODED}@127.0.0.1:1/test`,
      pool: { acquireTimeoutMs: 200, createRetry: { initialDelayMs: 10, maxDelayMs: 20 } },
    });
    const viaConnection = createPool({
      name: 'down-conn',
      backend: 'postgres',
      connection: { host: '127.0.0.1', port: 1, user: 'app', password: PASSWORD, database: 'test' },
      pool: { acquireTimeoutMs: 200, createRetry: { initialDelayMs: 10, maxDelayMs: 20 } },
    });
    try {
      for (const pool of [viaUri, viaConnection]) {
        record(pool, outputs);
        outputs.push(dump(await pool.start().catch((e: unknown) => e)));
        outputs.push(dump(await pool.query('SELECT 1').catch((e: unknown) => e)));
        outputs.push(dump(await pool.checkHealth({ timeoutMs: 200 })));
        outputs.push(dump(pool), dump(pool.metrics()), pool.target);
      }
    } finally {
      await viaUri.close();
      await viaConnection.close();
    }
    expect(viaConnection.target).toBe('postgres://app@127.0.0.1:1/test');
    expect(outputs.some((o) => o.includes('ECONNREFUSED'))).toBe(true);
    expectNoSecret(outputs, SECRETS);
  });

  it('a password supplied by a function is redacted once it is known', async () => {
    const url = new URL(pgUrl());
    const outputs: string[] = [];
    const pool = createPool({
      name: 'pw-fn',
      backend: 'postgres',
      connection: {
        host: url.hostname,
        port: Number(url.port || 5432),
        user: decodeURIComponent(url.username) || 'postgres',
        database: url.pathname.slice(1),
        password: () => PASSWORD,
      },
    });
    try {
      await pool.start();
      // A driver error quoting the password (as a careless one might) is scrubbed.
      outputs.push(dump(await pool.query(`SELECT '${PASSWORD}'::int`).catch((e: unknown) => e)));
      outputs.push(dump(pool));
    } finally {
      await pool.close();
    }
    expect(outputs[0]).toContain('***');
    expectNoSecret(outputs, SECRETS);
  });
});
