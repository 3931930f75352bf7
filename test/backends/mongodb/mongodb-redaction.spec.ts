/**
 * A MongoDB pool configured with a password lets it out nowhere: errors (and cause chains), events,
 * metrics(), checkHealth(), inspect()/JSON of the pool, and inspect() of the Db a lease (or an event) hands
 * out, whose MongoClient keeps the URI. Against a refused port, and against the real server (FerretDB v1
 * refuses SCRAM authentication, so there every attempt fails, which is what this test wants to see too).
 */
import { describe, expect, it } from '@jest/globals';
import { dump, expectNoSecret } from '../../support/secrets.js';
import { inspect } from 'node:util';
import { createPool, type MongoPool } from '../../../lib/index.js';
import { mongoUrl, uniqueDatabase } from './mongo-test-support.js';

const PASSWORD = 'Hunter2-S3cret/Pa55#word';
const ENCODED = encodeURIComponent(PASSWORD);
const SECRETS = [PASSWORD, ENCODED, 'S3cret'];
const DATABASE = uniqueDatabase('redact');

function record(pool: MongoPool, outputs: string[]): void {
  for (const event of ['acquire', 'release', 'create', 'destroy', 'error', 'leak', 'state'] as const) {
    pool.on(event, (...args: unknown[]) => outputs.push(`${event}: ${args.map((a) => dump(a)).join(' ')}`));
  }
}

async function exercise(pool: MongoPool, outputs: string[]): Promise<void> {
  record(pool, outputs);
  outputs.push(dump(await pool.start().catch((e: unknown) => e)));
  outputs.push(dump(await pool.use((db) => db.collection('r').findOne({})).catch((e: unknown) => e)));
  outputs.push(
    dump(
      await pool
        .transaction((db, session) => db.collection('r').insertOne({}, { session }))
        .catch((e: unknown) => e),
    ),
  );
  outputs.push(dump(await pool.checkHealth({ timeoutMs: 500 })));
  outputs.push(dump(pool), dump(pool.metrics()), dump(pool.toJSON()), pool.target, String(pool));
  outputs.push(inspect(pool, { customInspect: false, showHidden: true, depth: 8 }));
  outputs.push(inspect(pool.client, { depth: 4 }), inspect(pool.db, { depth: 4 }));
  outputs.push(JSON.stringify(Object.entries(pool)), JSON.stringify(Object.getOwnPropertyNames(pool)));
}

describe('credentials never leave a mongodb pool', () => {
  it('refused port: start, use, transaction, health, inspect of the pool, client and Db', async () => {
    const outputs: string[] = [];
    const pool: MongoPool = createPool({
      name: 'redact-down',
      backend: 'mongodb',
      uri: `mongodb://app:${ENCODED}@127.0.0.1:1/app?authSource=admin`,
      pool: { acquireTimeoutMs: 300, createTimeoutMs: 500, startupTimeoutMs: 1000 },
    });
    try {
      await exercise(pool, outputs);
    } finally {
      await pool.close();
    }
    outputs.push(
      dump(await pool.checkHealth({ timeoutMs: 200 })),
      dump(await pool.start().catch((e: unknown) => e)),
    );
    expect(pool.target).toBe('mongodb://app:***@127.0.0.1:1/app?authSource=admin');
    expect(inspect(pool)).toMatch(
      /^MongoPool \{ name: 'redact-down', backend: 'mongodb', target: 'mongodb:\/\/app:\*\*\*@/,
    );
    expect(outputs.some((o) => o.includes('ECONNREFUSED'))).toBe(true);
    expectNoSecret(outputs, SECRETS);
  });

  it('real server, password in the URI and in connection.auth', async () => {
    const outputs: string[] = [];
    const viaUri: MongoPool = createPool({
      name: 'redact-uri',
      backend: 'mongodb',
      uri: mongoUrl(DATABASE, {}, { auth: { user: 'app', password: PASSWORD } }),
      queryTimeoutMs: 500,
      pool: { max: 2, acquireTimeoutMs: 500, createTimeoutMs: 1000, startupTimeoutMs: 1500 },
    });
    const viaConnection: MongoPool = createPool({
      name: 'redact-conn',
      backend: 'mongodb',
      uri: mongoUrl(DATABASE),
      connection: { auth: { username: 'app', password: PASSWORD } },
      pool: { max: 2, acquireTimeoutMs: 500, createTimeoutMs: 1000, startupTimeoutMs: 1500 },
    });
    try {
      await exercise(viaUri, outputs);
      await exercise(viaConnection, outputs);
    } finally {
      await viaUri.close();
      await viaConnection.close();
    }
    expect(outputs.length).toBeGreaterThan(15);
    expectNoSecret(outputs, SECRETS);
  });
});
