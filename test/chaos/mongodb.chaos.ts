/**
 * Chaos suite, MongoDB (FerretDB in CI): 50 callers through a Nest app's MongoPool while a FaultProxy in
 * front of the server runs the timeline (chaos-timeline.ts). FerretDB reports no per-client connection
 * list, so server-side connections are the proxy's open connections: the driver's pool (at most `max`)
 * plus its two monitoring sockets (heartbeat and round-trip time).
 */
import 'reflect-metadata';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { createPool, InjectPool, type MongoPool } from '../../lib/index.js';
import {
  mongoServer,
  mongoUrl,
  proxiedParams,
  uniqueDatabase,
} from '../backends/mongodb/mongo-test-support.js';
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

const DATABASE = uniqueDatabase('chaos');
/** The driver's monitoring connections (heartbeat + RTT), which are not part of its connection pool. */
const MONITORING_SOCKETS = 2;

@Injectable()
class MongoChaosService implements ChaosCaller {
  constructor(@InjectPool(CHAOS_POOL) private readonly pool: MongoPool) {}

  async call(caller: number): Promise<void> {
    const doc = await this.pool.use((db) => db.collection('chaos').findOne({ seed: true }));
    if (doc === null) throw new Error(`caller ${caller}: the seed document is missing`);
  }
}

async function direct<T>(fn: (pool: MongoPool) => Promise<T>): Promise<T> {
  const pool = createPool({ name: 'chaos-setup', backend: 'mongodb', uri: mongoUrl(DATABASE) });
  await pool.start();
  try {
    return await fn(pool);
  } finally {
    await pool.close();
  }
}

beforeAll(async () => {
  await direct((pool) => pool.db.collection('chaos').insertOne({ seed: true }));
});
afterAll(async () => {
  await direct((pool) => pool.db.dropDatabase());
});

it('MongoDB: 50 callers through the Nest app survive the fault timeline', async () => {
  let driverPeak = 0;
  const run = await runChaos<MongoPool>({
    backend: 'mongodb',
    target: mongoServer(),
    moduleOptions: (proxy) => ({
      name: CHAOS_POOL,
      backend: 'mongodb',
      uri: mongoUrl(DATABASE, proxiedParams(), { host: proxy.host, port: proxy.port }),
      queryTimeoutMs: QUERY_TIMEOUT_MS,
      pool: chaosPoolOptions(),
      retryAttempts: 1,
    }),
    service: MongoChaosService,
    connectionLimit: MAX + MONITORING_SOCKETS,
    connectionSource: `open connections through the proxy (the driver's pool, max ${MAX}, + ${MONITORING_SOCKETS} monitoring sockets)`,
    serverConnections: async (proxy, pool) => {
      driverPeak = Math.max(driverPeak, pool.metrics().driver.connections);
      return proxy.connections;
    },
    attempts: (_pool, createFailures) => createFailures,
    attemptBound: engineAttemptBound,
    attemptsCounted: "failed slot creates ('error' events, phase create)",
    acceptedErrors: POOL_ERRORS,
    trace: (pool) => {
      const { driver, size, idle, pending, circuit } = pool.metrics();
      return `driver ${driver.connections} open (${driver.checkedOut} out, created ${driver.created}, closed ${driver.closed}); slots ${size} (idle ${idle}, pending ${pending}), ${circuit}`;
    },
  });
  writeResult(run.result);
  expectResilient(run);
  expect(driverPeak).toBeLessThanOrEqual(MAX);
}, 120_000);
