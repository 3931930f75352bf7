/**
 * The engine's shared acquire (acquireShared / adoptShared / shareJoinable), which a backend uses to let
 * several callers' work share one lease (PostgreSQL's pipelined query()): same queue, same timeout, same
 * errors as acquire(), and never ahead of a plain acquire() queued first.
 */
import { describe, expect, it } from '@jest/globals';
import { type Lease, PoolClosedError, PoolTimeoutError } from '../../lib/core/index.js';
import { type FakeConnection, tick } from '../support/fake-factory.js';
import { usePoolHarness } from '../support/pool-harness.js';

const makePool = usePoolHarness('shared');

function sharedAcquire(pool: ReturnType<typeof makePool>['pool'], share: object) {
  const outcome: { lease?: Lease<FakeConnection>; error?: unknown } = {};
  pool.acquireShared(
    share,
    (lease) => (outcome.lease = lease),
    (error) => (outcome.error = error),
  );
  return outcome;
}

describe('acquireShared', () => {
  it('lends at once, before it returns, when acquire() would', async () => {
    const { pool } = makePool({ max: 1, min: 1 });
    await pool.start();
    const outcome = sharedAcquire(pool, { id: 1 });
    expect(outcome.lease).toBeDefined();
    expect(pool.metrics()).toMatchObject({ active: 1, acquired: 1 });
    outcome.lease!.release();
  });

  it('queues otherwise; adoptShared() hands its work to a lease already out, counting the wait as served', async () => {
    const { pool } = makePool({ max: 1, min: 1 });
    await pool.start();
    const held = await pool.acquire();
    expect(pool.shareJoinable()).toBe(true); // nothing idle, nobody waiting
    const share = { id: 2 };
    const outcome = sharedAcquire(pool, share);
    expect(outcome.lease).toBeUndefined();
    expect(pool.metrics().waiting).toBe(1);
    expect(pool.shareJoinable()).toBe(false); // somebody waits: joining would overtake them

    expect(pool.adoptShared()).toBe(share);
    expect(pool.metrics().waiting).toBe(0);
    expect(pool.histograms().wait.count).toBe(2);
    expect(pool.adoptShared()).toBeUndefined();
    held.release();
    expect(outcome.lease).toBeUndefined(); // adopted work gets no lease of its own
  });

  it('neither joins nor adopts while the pool could lend or open a connection instead', async () => {
    const full = makePool({ max: 2, min: 2 }).pool;
    await full.start();
    const first = await full.acquire();
    expect(full.shareJoinable()).toBe(false); // one is idle
    const second = await full.acquire();
    expect(full.shareJoinable()).toBe(true); // at max, all out
    first.release();
    second.release();

    const growing = makePool({ max: 3, min: 1 }).pool;
    await growing.start();
    const held = await growing.acquire();
    expect(growing.shareJoinable()).toBe(false); // below max: one can be opened
    const waiting = sharedAcquire(growing, { id: 10 }); // queued; a connection is opened for it, one more could be
    expect(growing.adoptShared()).toBeUndefined();
    held.release();
    await tick();
    waiting.lease!.release();

    // At max, counting the connection being opened: the work may be taken over rather than wait for it.
    const opening = makePool({ max: 2, min: 1 }).pool;
    await opening.start();
    const out = await opening.acquire();
    sharedAcquire(opening, { id: 11 });
    expect(opening.metrics()).toMatchObject({ size: 1, pending: 1 });
    expect(opening.adoptShared()).toEqual({ id: 11 });
    out.release();
  });

  it('adopts only the head: a plain acquire() queued first gets the next connection back', async () => {
    const { pool } = makePool({ max: 1, min: 1 });
    await pool.start();
    const held = await pool.acquire();
    const plain = pool.acquire();
    const shared = sharedAcquire(pool, { id: 3 });
    expect(pool.adoptShared()).toBeUndefined();
    held.release();
    const lease = await plain;
    expect(pool.adoptShared()).toEqual({ id: 3 }); // now at the head
    lease.release();
    expect(shared.lease).toBeUndefined();
  });

  it('gives a queued shared acquire a lease of its own when a connection comes back', async () => {
    const { pool } = makePool({ max: 1, min: 1 });
    await pool.start();
    const held = await pool.acquire();
    const outcome = sharedAcquire(pool, { id: 4 });
    held.release();
    expect(outcome.lease).toBeDefined(); // synchronously, through the callback
    outcome.lease!.release();
  });

  it('times out like acquire(), and close() rejects it', async () => {
    const { pool } = makePool({ max: 1, min: 1, acquireTimeoutMs: 30 });
    await pool.start();
    const held = await pool.acquire();
    const timedOut = sharedAcquire(pool, { id: 5 });
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(timedOut.error).toBeInstanceOf(PoolTimeoutError);
    expect(pool.metrics().waiting).toBe(0);

    const closing = sharedAcquire(pool, { id: 6 });
    held.release();
    closing.lease!.release();
    const held2 = await pool.acquire();
    const rejected = sharedAcquire(pool, { id: 7 });
    const closed = pool.close({ timeoutMs: 50 });
    await tick();
    expect(rejected.error).toBeInstanceOf(PoolClosedError);
    held2.release();
    await closed;
    expect(sharedAcquire(pool, { id: 8 }).error).toBeInstanceOf(PoolClosedError);
  });

  it('adopts nothing while the pool is paused', async () => {
    const { pool } = makePool({ max: 1, min: 1 });
    await pool.start();
    const held = await pool.acquire();
    sharedAcquire(pool, { id: 9 });
    pool.pause();
    expect(pool.adoptShared()).toBeUndefined();
    expect(pool.shareJoinable()).toBe(false);
    pool.resume();
    expect(pool.adoptShared()).toEqual({ id: 9 });
    held.release();
  });
});
