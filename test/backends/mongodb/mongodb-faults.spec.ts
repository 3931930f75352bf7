/**
 * 50 concurrent callers through use() while a FaultProxy in front of the server resets every connection,
 * refuses them, or blackholes the network for a few seconds, then heals. With no 'error' listener attached:
 * no unhandled rejection, every call settles within acquireTimeoutMs + queryTimeoutMs (+ slack) with a typed
 * error while down, no lease leaks, the driver's connection count (CMAP) never exceeds `max` and is 0 after
 * close, and throughput is back within 2 s of healing.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createPool, PoolError, type MongoPool } from '../../../lib/index.js';
import { FaultProxy } from '../../../lib/testing/fault-proxy.js';
import {
  mongoServer,
  mongoUrl,
  proxiedParams,
  sleep,
  uniqueDatabase,
  waitUntil,
} from './mongo-test-support.js';

const DATABASE = uniqueDatabase('faults');
const CALLERS = 50;
const MAX = 10;
const ACQUIRE_TIMEOUT_MS = 1500;
const QUERY_TIMEOUT_MS = 500;
const SLACK_MS = 700;
const FAULT_MS = 2500;
const RECOVERY_MS = 2000;

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  const pool = createPool({ name: 'faults-drop', backend: 'mongodb', uri: mongoUrl(DATABASE) });
  await pool.start();
  await pool.db.dropDatabase();
  await pool.close();
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Outcome {
  startedAt: number;
  endedAt: number;
  error?: unknown;
}

/** CALLERS loops calling use() until stopped; every outcome recorded with its timing. */
function load(pool: MongoPool): { outcomes: Outcome[]; stop: () => Promise<void> } {
  const outcomes: Outcome[] = [];
  let running = true;
  const caller = async (): Promise<void> => {
    while (running) {
      const startedAt = performance.now();
      try {
        await pool.use((db) => db.collection('f').findOne({}));
        outcomes.push({ startedAt, endedAt: performance.now() });
      } catch (error) {
        outcomes.push({ startedAt, endedAt: performance.now(), error });
        await sleep(20); // a failing caller backs off a little, as a real one would
      }
    }
  };
  const callers = Array.from({ length: CALLERS }, caller);
  return {
    outcomes,
    stop: async () => {
      running = false;
      await Promise.all(callers);
    },
  };
}

async function scenario(name: string, fault: (proxy: FaultProxy) => Promise<void>): Promise<void> {
  const proxy = new FaultProxy({ target: mongoServer() });
  await proxy.start();
  cleanups.push(() => proxy.stop());
  const pool: MongoPool = createPool({
    name,
    backend: 'mongodb',
    uri: mongoUrl(DATABASE, proxiedParams(), { host: proxy.host, port: proxy.port }),
    queryTimeoutMs: QUERY_TIMEOUT_MS,
    pool: { max: MAX, acquireTimeoutMs: ACQUIRE_TIMEOUT_MS, createTimeoutMs: 1000 },
  });
  cleanups.push(() => pool.close({ timeoutMs: 2000 }));
  await pool.start();
  await pool.use((db) => db.collection('f').insertOne({ ok: true }));

  let peak = 0;
  const sample = (): void => {
    peak = Math.max(peak, pool.metrics().driver.connections);
  };
  for (const event of ['connectionCreated', 'connectionCheckedOut'] as const) pool.client.on(event, sample);

  const { outcomes, stop } = load(pool);
  await sleep(1000);
  const faultAt = performance.now();
  await fault(proxy);
  await sleep(FAULT_MS);
  await proxy.pass();
  const healedAt = performance.now();
  await sleep(RECOVERY_MS + 500);
  await stop();

  if (process.env.DEBUG_FAULTS) {
    const phase = (o: Outcome): string =>
      o.endedAt < faultAt
        ? 'before'
        : o.endedAt < healedAt
          ? 'down'
          : o.startedAt > healedAt + RECOVERY_MS
            ? 'recovered'
            : 'healing';
    const stats: Record<string, Record<string, number>> = {};
    for (const o of outcomes) {
      const key = o.error === undefined ? 'ok' : (o.error as Error).name;
      const p = (stats[phase(o)] ??= {});
      p[key] = (p[key] ?? 0) + 1;
    }
    const firstOk = outcomes.find((o) => o.error === undefined && o.startedAt > healedAt);
    console.log(
      name,
      JSON.stringify(stats),
      'first ok after heal',
      firstOk && firstOk.endedAt - healedAt,
      'peak',
      peak,
    );
  }
  // Every call settled within its bounds.
  const slowest = Math.max(...outcomes.map((o) => o.endedAt - o.startedAt));
  expect(slowest).toBeLessThan(ACQUIRE_TIMEOUT_MS + QUERY_TIMEOUT_MS + SLACK_MS);

  // Healthy before the fault.
  const before = outcomes.filter((o) => o.endedAt < faultAt);
  expect(before.length).toBeGreaterThan(10);
  expect(before.every((o) => o.error === undefined)).toBe(true);

  // While down: failures, all the pool's typed errors (PoolConnectionError, with the driver's error as its
  // cause, for an operation cut mid-flight).
  const down = outcomes.filter((o) => o.startedAt > faultAt + 200 && o.endedAt < healedAt);
  expect(down.length).toBeGreaterThan(0);
  expect(down.filter((o) => o.error === undefined).length).toBeLessThan(down.length * 0.05 + 1);
  for (const { error } of down.filter((o) => o.error !== undefined)) {
    if (!(error instanceof PoolError)) throw new Error(`untyped error while down: ${String(error)}`);
  }

  // Recovered within 2 s of healing: everything started after that succeeds, and there is throughput.
  const recovered = outcomes.filter((o) => o.startedAt > healedAt + RECOVERY_MS);
  expect(recovered.length).toBeGreaterThan(10);
  expect(recovered.filter((o) => o.error !== undefined)).toEqual([]);

  // No lease leaks, the driver never went over max, nothing unhandled.
  await waitUntil(() => pool.metrics().active === 0, 'leases to come back');
  const m = pool.metrics();
  expect(m).toMatchObject({ active: 0, waiting: 0 });
  expect(m.acquired).toBe(m.released);
  expect(peak).toBeLessThanOrEqual(MAX);
  expect(m.driver.connections).toBeLessThanOrEqual(MAX);
  // FerretDB's serverStatus has no `connections` section, so the server-side count is not asserted; the
  // driver's CMAP count above is what bounds the sockets.
  await pool.close();
  expect(pool.metrics().driver).toMatchObject({ connections: 0, checkedOut: 0 });
  expect(unhandled).toEqual([]);
}

describe('MongoPool under faults, 50 callers', () => {
  it('every connection reset (RST) for a while, then healed', async () => {
    await scenario('faults-reset', (proxy) => proxy.reset());
  }, 15_000);

  it('connections refused for a while, then healed', async () => {
    await scenario('faults-refuse', (proxy) => proxy.refuse());
  }, 15_000);

  it('network blackholed for a while, then healed', async () => {
    await scenario('faults-blackhole', (proxy) => proxy.blackhole());
  }, 15_000);
});
