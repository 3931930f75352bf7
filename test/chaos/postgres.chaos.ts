/**
 * Chaos suite, PostgreSQL: 50 callers through a Nest app's PostgresPool while a FaultProxy in front of the
 * shared server runs the timeline (chaos-timeline.ts). Server-side connections are the pool's backends in
 * pg_stat_activity (by a unique application_name), counted over a direct admin connection.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import type pg from 'pg';
import { InjectPool, type PostgresPool } from '../../lib/index.js';
import {
  adminClient,
  countBackends,
  DATABASE_URL,
  uniqueName,
} from '../backends/postgres/pg-test-support.js';
import { CHAOS_POOL, type ChaosCaller } from './chaos-app.js';
import { writeResult } from './chaos-results.js';
import {
  chaosPoolOptions,
  engineAttemptBound,
  MAX,
  POOL_ERRORS,
  QUERY_TIMEOUT_MS,
  runChaos,
} from './chaos-run.js';
import { expectResilient } from './expect-resilient.js';

const APP = uniqueName('chaos');

@Injectable()
class PostgresChaosService implements ChaosCaller {
  constructor(@InjectPool(CHAOS_POOL) private readonly pool: PostgresPool) {}

  async call(caller: number): Promise<void> {
    const result = await this.pool.query<{ n: number }>('SELECT $1::int AS n', [caller]);
    if (result.rows[0]?.n !== caller) throw new Error(`caller ${caller} got ${JSON.stringify(result.rows)}`);
  }
}

let admin: pg.Client;
beforeAll(async () => {
  admin = await adminClient();
});
afterAll(async () => {
  await admin.end();
});

it('PostgreSQL: 50 callers through the Nest app survive the fault timeline', async () => {
  const server = new URL(DATABASE_URL);
  const run = await runChaos<PostgresPool>({
    backend: 'postgres',
    target: { host: server.hostname, port: Number(server.port || 5432) },
    moduleOptions: (proxy) => {
      const uri = new URL(DATABASE_URL);
      uri.hostname = proxy.host;
      uri.port = String(proxy.port);
      uri.searchParams.set('application_name', APP);
      return {
        name: CHAOS_POOL,
        backend: 'postgres',
        uri: uri.toString(),
        queryTimeoutMs: QUERY_TIMEOUT_MS,
        pool: chaosPoolOptions(),
        retryAttempts: 1,
      };
    },
    service: PostgresChaosService,
    connectionLimit: MAX,
    connectionSource: "pg_stat_activity rows with the pool's application_name",
    serverConnections: () => countBackends(admin, APP),
    // Refused connects never reach the proxy: each attempt is one failed create ('error', phase create).
    attempts: (_pool, createFailures) => createFailures,
    attemptBound: engineAttemptBound,
    attemptsCounted: "failed creates ('error' events, phase create)",
    acceptedErrors: POOL_ERRORS,
  });
  writeResult(run.result);
  expectResilient(run);
  expect(await countBackends(admin, APP)).toBeLessThanOrEqual(MAX);
}, 120_000);
