/**
 * A PostgresPool under load (50 concurrent callers: half `query()`, half `transaction()`) while its
 * connections are killed by the server (pg_terminate_backend), the network fails (FaultProxy: refuse,
 * blackhole) or a private server restarts. With no 'error' listener on the pool:
 * - no unhandled rejection, no crash;
 * - every call settles within acquireTimeoutMs + queryTimeoutMs (+ slack);
 * - while it is down, callers see typed errors (see `classify()` for exactly what is accepted);
 * - connection attempts follow the backoff schedule (one at a time, not one per caller);
 * - no lease leaks; the server's own count of the pool's backends (pg_stat_activity, by a unique
 *   application_name, sampled every 50 ms) never exceeds `max` and is 0 after close();
 * - throughput is back within 2 s of healing.
 *
 * Only backends tagged with this file's application_names are ever terminated on the shared server; the
 * restart runs against a private server. Set DEBUG_FAULTS=1 to print the measured figures.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { types } from 'node:util';
import pg from 'pg';
import {
  createBackoffDelay,
  createPool,
  PoolQueryTimeoutError,
  PoolTimeoutError,
  PoolUnavailableError,
  type PostgresPool,
} from '../../../lib/index.js';
import { PoolConnectionError } from '../../../lib/backends/pool-connection-error.js';
import { FaultProxy } from '../../../lib/testing/fault-proxy.js';
import { startPrivatePostgres, type PrivateServer } from '../../support/private-servers.js';
import { adminClient, countBackends, DATABASE_URL, sleep, uniqueName, waitUntil } from './pg-test-support.js';

const CALLERS = 50;
/** Small enough that 50 callers always queue (the pool is saturated), big enough to see a peak of `max`. */
const MAX = 5;
/**
 * A caller may wait this long for a connection. Longer than one connection attempt (CREATE_TIMEOUT_MS) plus
 * the first backoff steps, so a caller whose connection was killed can still be served by its replacement
 * while the server is up; short enough that, while it is down, callers hear about it within a second.
 */
const ACQUIRE_TIMEOUT_MS = 1000;
/** Bounds each query: a query on a connection that went silent (blackhole) fails after this. */
const QUERY_TIMEOUT_MS = 500;
/**
 * One connection attempt. Under a blackhole an attempt never completes, so this is what paces the
 * attempts (with the backoff); below the acquire timeout so an attempt can finish within one caller's wait.
 */
const CREATE_TIMEOUT_MS = 500;
/** Borrow-time SELECT 1 on a connection idle for more than validationBypassMs; well inside the acquire budget. */
const VALIDATION_TIMEOUT_MS = 300;
/**
 * Event-loop slack for 50 callers plus the sampler. A transaction is several queries, but once one times
 * out its connection is destroyed and the rest fail at once, so it is bounded like a single query.
 */
const SLACK_MS = 500;
const SETTLE_BOUND_MS = ACQUIRE_TIMEOUT_MS + QUERY_TIMEOUT_MS + SLACK_MS;
/** The engine's defaults, spelled out because the attempt bound below is computed from them. */
const CREATE_RETRY = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.2 };
const CIRCUIT_BREAKER = { failureThreshold: 5, resetTimeoutMs: 1000 };
const MAX_CONCURRENT_CREATES = 2;
const FAULT_MS = 3000;
const RECOVERY_MS = 2000;
const SAMPLE_EVERY_MS = 50;
/** Sent as the URI's password: the servers trust loopback and never ask for it, but the pool redacts it. */
const SECRET = 'Fault-Secret-Pw-7c1e';

const sharedServer = new URL(DATABASE_URL);
let admin: pg.Client;

beforeAll(async () => {
  admin = await adminClient();
});

afterAll(async () => {
  await admin.end();
});

/** Counts unhandled rejections while a test runs (installed and removed by the test itself). */
function trackUnhandled(): { reasons: unknown[]; stop(): void } {
  const reasons: unknown[] = [];
  const listener = (reason: unknown): void => void reasons.push(reason);
  process.on('unhandledRejection', listener);
  return { reasons, stop: () => process.off('unhandledRejection', listener) };
}

/** A URI to `target` (the shared server by default) tagged with `app`, with the trust-ignored password. */
function uriFor(app: string, target: { host: string; port: number; database?: string } | undefined): string {
  const url = new URL(DATABASE_URL);
  if (target !== undefined) {
    url.hostname = target.host;
    url.port = String(target.port);
    if (target.database !== undefined) url.pathname = `/${target.database}`;
  }
  url.username = 'postgres';
  url.password = SECRET;
  url.searchParams.set('application_name', app);
  return url.toString();
}

function poolFor(app: string, target?: { host: string; port: number; database?: string }): PostgresPool {
  return createPool({
    name: app,
    backend: 'postgres',
    uri: uriFor(app, target),
    queryTimeoutMs: QUERY_TIMEOUT_MS,
    pool: {
      max: MAX,
      acquireTimeoutMs: ACQUIRE_TIMEOUT_MS,
      createTimeoutMs: CREATE_TIMEOUT_MS,
      validationTimeoutMs: VALIDATION_TIMEOUT_MS,
      maxConcurrentCreates: MAX_CONCURRENT_CREATES,
      createRetry: CREATE_RETRY,
      circuitBreaker: CIRCUIT_BREAKER,
    },
  });
}

interface Outcome {
  startedAt: number;
  endedAt: number;
  error?: unknown;
}

/** CALLERS loops until stopped: even ones `query()`, odd ones a `transaction()` of one statement. */
function load(pool: PostgresPool): { outcomes: Outcome[]; stop(): Promise<void> } {
  const outcomes: Outcome[] = [];
  let running = true;
  const loops = Array.from({ length: CALLERS }, async (_, i) => {
    while (running) {
      const startedAt = performance.now();
      try {
        const result =
          i % 2 === 0
            ? await pool.query<{ i: number }>('SELECT $1::int AS i', [i])
            : await pool.transaction((client) => client.query<{ i: number }>('SELECT $1::int AS i', [i]));
        if (result.rows[0]?.i !== i) throw new Error(`caller ${i} got ${JSON.stringify(result.rows)}`);
        outcomes.push({ startedAt, endedAt: performance.now() });
      } catch (error) {
        outcomes.push({ startedAt, endedAt: performance.now(), error });
        await sleep(10); // a failing caller must not spin (PoolUnavailableError comes back at once)
      }
    }
  });
  return {
    outcomes,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/**
 * Samples the server's count of `app`'s backends every SAMPLE_EVERY_MS. `connect` gives a client to ask
 * with; a failed sample (the server restarting) drops that client and takes a fresh one next time.
 */
function sampleBackends(
  app: string,
  connect: () => Promise<pg.Client>,
): { samples: number[]; stop(): Promise<number> } {
  const samples: number[] = [];
  let running = true;
  let client: pg.Client | undefined;
  const loop = (async () => {
    while (running) {
      try {
        client ??= await connect();
        samples.push(await countBackends(client, app));
      } catch {
        const broken = client;
        client = undefined;
        if (broken !== undefined && broken !== admin) await broken.end().catch(() => undefined);
      }
      await sleep(SAMPLE_EVERY_MS);
    }
    if (client !== undefined && client !== admin) await client.end().catch(() => undefined);
  })();
  return {
    samples,
    async stop() {
      running = false;
      await loop;
      return Math.max(0, ...samples);
    },
  };
}

type ErrorKind =
  | 'PoolTimeoutError'
  | 'PoolUnavailableError'
  | 'PoolQueryTimeoutError'
  | 'connection error (57P01)'
  | 'connection error (socket)';

/**
 * What a caller may see while the server or network is down; anything else fails the test. Accepted:
 * - PoolTimeoutError: no connection within acquireTimeoutMs;
 * - PoolUnavailableError: the circuit breaker is open and nothing could serve the caller;
 * - PoolQueryTimeoutError: the query got no answer within queryTimeoutMs (blackhole);
 * - PoolConnectionError for a connection that died under a running query, with pg's error (redacted) as
 *   its cause: the server's 57P01 (FATAL, "terminating connection due to administrator command":
 *   pg_terminate_backend, fast shutdown; the code is copied onto the PoolConnectionError) or the client
 *   side of a closed socket ("Connection terminated unexpectedly", ECONNRESET, EPIPE, or "not queryable"
 *   for a client that broke between acquire and query).
 * Every accepted error is a PoolError, and none carries the URI's password anywhere in its text.
 */
function classify(error: unknown): ErrorKind {
  // Node's own errors (ECONNRESET) come from outside Jest's module realm: instanceof Error is false there.
  if (!(error instanceof Error || types.isNativeError(error))) {
    throw new Error(`a caller got a non-Error: ${String(error)}`);
  }
  const text = [error.message, error.stack, String((error.cause as Error | undefined)?.message)].join('\n');
  if (text.includes(SECRET)) throw new Error(`an error leaked the password: ${error.message}`);
  if (error instanceof PoolTimeoutError) return 'PoolTimeoutError';
  if (error instanceof PoolUnavailableError) return 'PoolUnavailableError';
  if (error instanceof PoolQueryTimeoutError) return 'PoolQueryTimeoutError';
  if (!(error instanceof PoolConnectionError)) {
    throw new Error(
      `unexpected ${error.name} (${String((error as { code?: unknown }).code)}): ${error.message}`,
    );
  }
  const cause = error.cause as { code?: unknown; severity?: unknown; message?: unknown } | undefined;
  expect(error.code).toBe(cause?.code);
  if (cause?.code === '57P01' && cause.severity === 'FATAL') return 'connection error (57P01)';
  if (
    cause?.code === 'ECONNRESET' ||
    cause?.code === 'EPIPE' ||
    /^(Connection terminated unexpectedly|Client has encountered a connection error and is not queryable|Client was closed and is not queryable)$/.test(
      String(cause?.message),
    )
  ) {
    return 'connection error (socket)';
  }
  throw new Error(`unexpected PoolConnectionError cause (${String(cause?.code)}): ${error.message}`);
}

function countKinds(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    const kind = o.error === undefined ? 'ok' : classify(o.error);
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

function slowestMs(outcomes: Outcome[]): number {
  return Math.round(Math.max(...outcomes.map((o) => o.endedAt - o.startedAt)));
}

/** ms from `from` until the first success of a call started at or after it. */
function recoveryMs(outcomes: Outcome[], from: number): number {
  const ends = outcomes.filter((o) => o.error === undefined && o.startedAt >= from).map((o) => o.endedAt);
  return ends.length === 0 ? Infinity : Math.min(...ends) - from;
}

/** Successful calls per second that started and ended within [from, to). */
function throughput(outcomes: Outcome[], from: number, to: number): number {
  const ok = outcomes.filter((o) => o.error === undefined && o.startedAt >= from && o.endedAt < to);
  return (ok.length * 1000) / (to - from);
}

/**
 * The most connection attempts the engine may start in `windowMs` of a total outage in which each attempt
 * takes `attemptMs` to fail: the first failures may overlap (maxConcurrentCreates), then one at a time,
 * each after the backoff (its shortest, full jitter taken off), and once `failureThreshold` failed in a
 * row the circuit opens for resetTimeoutMs before each single probe.
 */
function attemptBound(windowMs: number, attemptMs: number): number {
  const minDelay = (failures: number): number => createBackoffDelay(CREATE_RETRY, failures, () => 1);
  let attempts = MAX_CONCURRENT_CREATES; // at t = 0, together
  let failures = MAX_CONCURRENT_CREATES;
  let t = attemptMs;
  for (;;) {
    t += failures >= CIRCUIT_BREAKER.failureThreshold ? CIRCUIT_BREAKER.resetTimeoutMs : minDelay(failures);
    if (t > windowMs) return attempts;
    attempts++;
    failures++;
    t += attemptMs;
  }
}

function report(name: string, figures: Record<string, unknown>): void {
  if (process.env.DEBUG_FAULTS) console.log(name, JSON.stringify(figures, null, 1));
}

/** The checks every scenario shares, after the load has stopped. */
async function expectWellBehaved(
  pool: PostgresPool,
  outcomes: Outcome[],
  unhandled: unknown[],
): Promise<void> {
  expect(unhandled).toEqual([]);
  expect(slowestMs(outcomes)).toBeLessThan(SETTLE_BOUND_MS);
  for (const { error } of outcomes) if (error !== undefined) classify(error); // throws on anything else
  await waitUntil(() => pool.metrics().active === 0, 'leases to come back', 2000);
  const m = pool.metrics();
  expect(m).toMatchObject({ active: 0, waiting: 0 });
  expect(m.acquired).toBe(m.released);
}

/** Healthy before `faultAt`, all failing with pool errors in the steady outage, recovered after `healedAt`. */
function expectPhases(outcomes: Outcome[], faultAt: number, healedAt: number): void {
  const before = outcomes.filter((o) => o.endedAt < faultAt);
  expect(before.length).toBeGreaterThan(CALLERS);
  expect(before.filter((o) => o.error !== undefined)).toEqual([]);
  // Every query sent before the fault has timed out (or failed) QUERY_TIMEOUT_MS after it, and its connection
  // is gone: calls started after that (+ slack) and settled before the heal have nothing that could work.
  const down = outcomes.filter(
    (o) => o.startedAt > faultAt + QUERY_TIMEOUT_MS + SLACK_MS && o.endedAt < healedAt,
  );
  expect(down.length).toBeGreaterThan(0);
  const downKinds = new Set(down.map((o) => (o.error === undefined ? 'ok' : classify(o.error))));
  for (const kind of downKinds) expect(['PoolTimeoutError', 'PoolUnavailableError']).toContain(kind);
  expect(recoveryMs(outcomes, healedAt)).toBeLessThan(RECOVERY_MS);
  const recovered = outcomes.filter((o) => o.startedAt > healedAt + RECOVERY_MS);
  expect(recovered.length).toBeGreaterThan(CALLERS);
  expect(recovered.filter((o) => o.error !== undefined)).toEqual([]);
}

describe('PostgresPool under faults, 50 callers', () => {
  it('pg_terminate_backend of every pool connection, twice: typed errors, fresh connections, never more than max', async () => {
    const unhandled = trackUnhandled();
    const app = uniqueName('flt_kill');
    const pool = poolFor(app);
    const sampler = sampleBackends(app, async () => admin);
    let run: ReturnType<typeof load> | undefined;
    let peak: number;
    try {
      await pool.start();
      run = load(pool);
      await sleep(500);
      const faultAt = performance.now();
      const kill = async (): Promise<number> =>
        (
          await admin.query(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
            [app],
          )
        ).rowCount ?? 0;
      const killedFirst = await kill();
      await sleep(300);
      const killedSecond = await kill(); // the replacements
      const lastKillAt = performance.now();
      await sleep(RECOVERY_MS + 500);
      await run.stop();
      const { outcomes } = run;

      expect(killedFirst).toBe(MAX);
      expect(killedSecond).toBeGreaterThanOrEqual(1);
      const before = outcomes.filter((o) => o.endedAt < faultAt);
      expect(before.length).toBeGreaterThan(CALLERS);
      expect(before.filter((o) => o.error !== undefined)).toEqual([]);
      const kinds = countKinds(outcomes);
      // The server is up: only calls running on a killed connection fail, with pg's error (57P01 when the
      // server's FATAL arrived first, else the closed socket's); classify() rejects anything else.
      expect(
        (kinds['connection error (57P01)'] ?? 0) + (kinds['connection error (socket)'] ?? 0),
      ).toBeGreaterThan(0);
      const recovery = recoveryMs(outcomes, lastKillAt);
      expect(recovery).toBeLessThan(RECOVERY_MS);
      const recovered = outcomes.filter((o) => o.startedAt > lastKillAt + RECOVERY_MS / 2);
      expect(recovered.length).toBeGreaterThan(CALLERS);
      expect(recovered.filter((o) => o.error !== undefined)).toEqual([]);
      await expectWellBehaved(pool, outcomes, unhandled.reasons);
      expect(pool.metrics().destroyed.error).toBeGreaterThanOrEqual(killedFirst + killedSecond);
      report('kill', {
        requests: outcomes.length,
        kinds,
        slowestMs: slowestMs(outcomes),
        killed: [killedFirst, killedSecond],
        recoveryMs: Math.round(recovery),
        okPerSecondBefore: Math.round(throughput(outcomes, faultAt - 500, faultAt)),
        okPerSecondAfter: Math.round(throughput(outcomes, lastKillAt + 1000, lastKillAt + 2000)),
        metrics: pool.metrics(),
      });
    } finally {
      await run?.stop();
      await pool.close();
      peak = await sampler.stop();
      unhandled.stop();
    }
    expect(peak).toBeLessThanOrEqual(MAX);
    expect(peak).toBeGreaterThan(0);
    await waitUntil(async () => (await countBackends(admin, app)) === 0, 'the backends to exit');
  }, 15_000);

  for (const fault of ['refuse', 'blackhole'] as const) {
    it(`${fault} for ${FAULT_MS} ms, then heal: bounded typed failures, backoff, recovery within ${RECOVERY_MS} ms`, async () => {
      const unhandled = trackUnhandled();
      const app = uniqueName(`flt_${fault}`);
      const proxy = new FaultProxy({
        target: { host: sharedServer.hostname, port: Number(sharedServer.port || 5432) },
      });
      await proxy.start();
      const pool = poolFor(app, { host: proxy.host, port: proxy.port });
      const sampler = sampleBackends(app, async () => admin);
      let run: ReturnType<typeof load> | undefined;
      let peak: number;
      try {
        await pool.start();
        run = load(pool);
        await sleep(1000);
        const acceptedBefore = proxy.stats.accepted;
        const createErrorsBefore = pool.metrics().createErrors;
        const faultAt = performance.now();
        await (fault === 'refuse' ? proxy.refuse() : proxy.blackhole({ discard: true }));
        await sleep(FAULT_MS);
        const accepted = proxy.stats.accepted - acceptedBefore;
        const createErrors = pool.metrics().createErrors - createErrorsBefore;
        const healedAt = performance.now();
        await proxy.pass();
        await sleep(RECOVERY_MS + 1000);
        await run.stop();
        const { outcomes } = run;

        const bound = attemptBound(healedAt - faultAt, fault === 'refuse' ? 0 : CREATE_TIMEOUT_MS);
        const cancels = outcomes.filter(
          (o) => o.endedAt < healedAt && o.error instanceof PoolQueryTimeoutError,
        ).length;
        const recovery = recoveryMs(outcomes, healedAt);
        const okPerSecondBefore = throughput(outcomes, faultAt - 1000, faultAt);
        const okPerSecondAfter = throughput(outcomes, healedAt + RECOVERY_MS, healedAt + RECOVERY_MS + 1000);
        report(fault, {
          requests: outcomes.length,
          kinds: countKinds(outcomes),
          slowestMs: slowestMs(outcomes),
          attempts: { accepted, createErrors, cancels, bound },
          recoveryMs: Math.round(recovery),
          okPerSecondBefore: Math.round(okPerSecondBefore),
          okPerSecondAfter: Math.round(okPerSecondAfter),
          metrics: pool.metrics(),
        });

        expectPhases(outcomes, faultAt, healedAt);
        await expectWellBehaved(pool, outcomes, unhandled.reasons);
        // Connection attempts during the outage, against the backoff schedule over the measured window.
        // Refused ones never reach the proxy (it is not listening), so they are counted by the pool's
        // failures; black-holed ones are accepted and time out. A blackhole also swallows the CancelRequest
        // sent for each query that timed out, which the proxy accepts too: one per PoolQueryTimeoutError.
        expect(createErrors).toBeGreaterThanOrEqual(2); // it kept trying
        expect(createErrors).toBeLessThanOrEqual(bound);
        if (fault === 'refuse')
          expect(accepted).toBeLessThanOrEqual(1); // one may race the listener's close
        else expect(accepted).toBeLessThanOrEqual(bound + cancels);
        expect(okPerSecondAfter).toBeGreaterThan(okPerSecondBefore / 3);
      } finally {
        await run?.stop();
        await pool.close();
        await proxy.stop();
        peak = await sampler.stop();
        unhandled.stop();
      }
      report(`${fault} peak`, { peak });
      expect(peak).toBeLessThanOrEqual(MAX);
      expect(peak).toBeGreaterThan(0);
      await waitUntil(async () => (await countBackends(admin, app)) === 0, 'the backends to exit');
    }, 15_000);
  }
});

describe('PostgresPool while a private server restarts, 50 callers', () => {
  /** Longer than a caller waits (acquireTimeoutMs), so callers have to hear about the outage. */
  const DOWN_MS = 2500;
  let server: PrivateServer | undefined;

  beforeAll(async () => {
    server = await startPrivatePostgres();
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('restart(), then down for 2.5 s: typed errors while down, success again within 2 s of it being back', async () => {
    const unhandled = trackUnhandled();
    const app = uniqueName('flt_restart');
    const pool = poolFor(app, { host: server!.host, port: server!.port, database: 'postgres' });
    const connect = async (): Promise<pg.Client> => {
      const client = new pg.Client({
        connectionString: server!.url,
        application_name: 'nestjs-pool-test-admin',
      });
      client.on('error', () => undefined);
      await client.connect();
      return client;
    };
    const sampler = sampleBackends(app, connect);
    let run: ReturnType<typeof load> | undefined;
    let peak: number;
    try {
      await pool.start();
      run = load(pool);
      await sleep(1000);
      // 1. restart(): PostgreSQL's fast shutdown (SIGINT: sessions end with 57P01), then a start on the same
      //    port; a few hundred ms, shorter than a caller waits. Calls running on a connection fail with pg's
      //    connection errors, waiting ones are served by new connections once it is back.
      const restartAt = performance.now();
      await server!.restart();
      const restartedAt = performance.now();
      await sleep(RECOVERY_MS + 500);
      // 2. The same fast shutdown, but the server stays down for DOWN_MS before restart() starts it again.
      const downAt = performance.now();
      await server!.kill('SIGINT');
      const stoppedAt = performance.now();
      await sleep(DOWN_MS);
      const startAt = performance.now();
      await server!.restart();
      const backAt = performance.now();
      await sleep(RECOVERY_MS + 1000);
      await run.stop();
      const { outcomes } = run;

      const inPhase = (from: number, to: number): Outcome[] =>
        outcomes.filter((o) => o.startedAt >= from && o.startedAt < to);
      // Started once every query sent before the shutdown had failed or timed out, ended before the server
      // was started again: nothing could work.
      const down = outcomes.filter(
        (o) => o.startedAt > downAt + QUERY_TIMEOUT_MS + SLACK_MS && o.endedAt < startAt,
      );
      const restartRecovery = recoveryMs(outcomes, restartedAt);
      const recovery = recoveryMs(outcomes, backAt);
      report('restart', {
        requests: outcomes.length,
        slowestMs: slowestMs(outcomes),
        restart: {
          ms: Math.round(restartedAt - restartAt),
          kinds: countKinds(inPhase(restartAt - SETTLE_BOUND_MS, restartedAt + RECOVERY_MS)),
          recoveryMs: Math.round(restartRecovery),
        },
        down: {
          stopMs: Math.round(stoppedAt - downAt),
          downMs: Math.round(backAt - stoppedAt),
          kinds: countKinds(inPhase(downAt - SETTLE_BOUND_MS, backAt)),
          steadyKinds: countKinds(down),
          recoveryMs: Math.round(recovery),
        },
        okPerSecondBefore: Math.round(throughput(outcomes, restartAt - 1000, restartAt)),
        okPerSecondAfter: Math.round(throughput(outcomes, backAt + RECOVERY_MS, backAt + RECOVERY_MS + 1000)),
        metrics: pool.metrics(),
      });

      const before = outcomes.filter((o) => o.endedAt < restartAt);
      expect(before.length).toBeGreaterThan(CALLERS);
      expect(before.filter((o) => o.error !== undefined)).toEqual([]);
      // restart(): back within 2 s, then all calls succeed until the shutdown.
      expect(restartRecovery).toBeLessThan(RECOVERY_MS);
      const between = outcomes.filter((o) => o.startedAt > restartedAt + RECOVERY_MS && o.endedAt < downAt);
      expect(between.length).toBeGreaterThan(CALLERS);
      expect(between.filter((o) => o.error !== undefined)).toEqual([]);
      // Down: every call fails, with the pool's errors (the queue timed out, or the circuit is open).
      expect(down.length).toBeGreaterThan(CALLERS);
      const downKinds = new Set(down.map((o) => (o.error === undefined ? 'ok' : classify(o.error))));
      for (const kind of downKinds) expect(['PoolTimeoutError', 'PoolUnavailableError']).toContain(kind);
      // Back: a success within 2 s, and nothing fails after that.
      expect(recovery).toBeLessThan(RECOVERY_MS);
      const recovered = outcomes.filter((o) => o.startedAt > backAt + RECOVERY_MS);
      expect(recovered.length).toBeGreaterThan(CALLERS);
      expect(recovered.filter((o) => o.error !== undefined)).toEqual([]);
      await expectWellBehaved(pool, outcomes, unhandled.reasons);
    } finally {
      await run?.stop();
      await pool.close();
      peak = await sampler.stop();
      unhandled.stop();
    }
    report('restart peak', { peak });
    expect(peak).toBeLessThanOrEqual(MAX);
    expect(peak).toBeGreaterThan(0);
    const check = await connect();
    try {
      await waitUntil(async () => (await countBackends(check, app)) === 0, 'the backends to exit');
    } finally {
      await check.end();
    }
  }, 15_000);
});
