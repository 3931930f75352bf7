/**
 * Chaos suite, Redis: 50 callers through a Nest app's RedisPool (half on `shared`, half on leases) while a
 * FaultProxy in front of the shared server runs the timeline (chaos-timeline.ts). Server-side connections
 * are CLIENT LIST entries with the pool's unique connection name; the shared client is one of `max`.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { InjectPool, type RedisPool } from '../../lib/index.js';
import {
  adminClient,
  countClients,
  KEY_PREFIX,
  REDIS_URL,
  redisUrl,
  uniqueName,
} from '../backends/redis/redis-test-support.js';
import { CHAOS_POOL, type ChaosCaller } from './chaos-app.js';
import { writeResult } from './chaos-results.js';
import {
  chaosPoolOptions,
  engineAttemptBound,
  MAX,
  QUERY_TIMEOUT_MS,
  POOL_ERRORS,
  runChaos,
  singleClientAttemptBound,
} from './chaos-run.js';
import { expectResilient } from './expect-resilient.js';

const NAME = uniqueName('chaos');
const KEYS = `${KEY_PREFIX}chaos:`;

@Injectable()
class RedisChaosService implements ChaosCaller {
  constructor(@InjectPool(CHAOS_POOL) private readonly pool: RedisPool) {}

  async call(caller: number): Promise<void> {
    const key = `${KEYS}${caller}`;
    if (caller % 2 === 0) {
      await this.pool.shared.incr(key);
    } else {
      const replies = await this.pool.use((redis) => redis.multi().incr(key).expire(key, 60).exec());
      if (replies === null || replies.some(([error]) => error !== null)) {
        throw new Error(`caller ${caller}: MULTI failed`);
      }
    }
  }
}

let admin: Redis;
beforeAll(async () => {
  admin = await adminClient();
});
afterAll(async () => {
  const keys = await admin.keys(`${KEYS}*`);
  if (keys.length > 0) await admin.del(...keys);
  admin.disconnect();
});

it('Redis: 50 callers through the Nest app survive the fault timeline', async () => {
  const server = new URL(REDIS_URL);
  const run = await runChaos<RedisPool>({
    backend: 'redis',
    target: { host: server.hostname, port: Number(server.port || 6379) },
    moduleOptions: (proxy) => ({
      name: CHAOS_POOL,
      backend: 'redis',
      uri: redisUrl({ host: proxy.host, port: proxy.port }),
      connection: { connectionName: NAME },
      queryTimeoutMs: QUERY_TIMEOUT_MS,
      pool: chaosPoolOptions(),
      retryAttempts: 1,
    }),
    service: RedisChaosService,
    // `shared` is one of `max` (the leases get max - 1), so the server never sees more than max.
    connectionLimit: MAX,
    connectionSource: "CLIENT LIST entries with the pool's connection name (shared client included)",
    serverConnections: () => countClients(admin, NAME),
    attempts: (pool, createFailures) => createFailures + pool.metrics().shared.created,
    // Leases and `shared` each follow the engine's schedule: backoff, then one probe per resetTimeoutMs.
    attemptBound: (windowMs) => engineAttemptBound(windowMs) + singleClientAttemptBound(windowMs),
    attemptsCounted: "failed lease creates ('error' events, phase create) + shared client connects",
    acceptedErrors: POOL_ERRORS,
    trace: (pool) => {
      const { shared, size, idle, circuit } = pool.metrics();
      return `shared ${shared.state} (created ${shared.created}, failures ${shared.failures}); leases ${size} (idle ${idle}), ${circuit}`;
    },
  });
  writeResult(run.result);
  expectResilient(run);
  expect(await countClients(admin, NAME)).toBe(0);
}, 120_000);
