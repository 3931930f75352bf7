/**
 * DeadlineTimer's stamping on its own: one stamp (one clock read) per event-loop turn however many waiters
 * queue in it, taken after they queued (so never early), and none left pending by clear().
 */
import { describe, expect, it } from '@jest/globals';
import { DeadlineTimer, type Deadlined } from '../../lib/core/deadline-timer.js';

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function makeTimer() {
  const stamps: number[] = [];
  const timer = new DeadlineTimer<Deadlined>(
    {
      stamp: (now) => {
        stamps.push(now);
        return Infinity; // nothing to arm: only the stamping is under test
      },
      expire: () => Infinity,
    },
    () => undefined,
  );
  return { timer, stamps };
}

describe('DeadlineTimer stamping', () => {
  it('stamps once at the end of the turn, however many waiters asked in it', async () => {
    const { timer, stamps } = makeTimer();
    for (let i = 0; i < 100; i++) timer.requestStamp();
    await Promise.resolve(); // microtasks of the same turn: not yet
    expect(stamps).toHaveLength(0);
    await nextTurn();
    expect(stamps).toHaveLength(1);
    timer.requestStamp(); // a later turn gets its own stamp
    await nextTurn();
    expect(stamps).toHaveLength(2);
    timer.clear();
  });

  it('reads the clock after the requests, so a deadline is never early', async () => {
    const { timer, stamps } = makeTimer();
    const requestedAt = performance.now();
    timer.requestStamp();
    await nextTurn();
    expect(stamps[0]).toBeGreaterThanOrEqual(requestedAt);
    timer.clear();
  });

  it('clear() cancels a stamp still pending', async () => {
    const { timer, stamps } = makeTimer();
    timer.requestStamp();
    timer.clear();
    await nextTurn();
    await nextTurn();
    expect(stamps).toHaveLength(0);
    timer.requestStamp(); // and stamping works again afterwards
    await nextTurn();
    expect(stamps).toHaveLength(1);
    timer.clear();
  });

  it('stamps in the next turn even when the loop would otherwise sleep until a far timer', async () => {
    // A stamp requested from a setImmediate callback (a waiter queued there) runs in the next loop
    // iteration. Were the stamp's immediate unref'd, the poll phase would sleep until the next timer
    // (here 300 ms away) first, and the waiter's deadline would start that much late.
    let stamped!: (now: number) => void;
    const stampedAt = new Promise<number>((resolve) => (stamped = resolve));
    const timer = new DeadlineTimer<Deadlined>(
      {
        stamp: (now) => {
          stamped(now);
          return Infinity;
        },
        expire: () => Infinity,
      },
      () => undefined,
    );
    const far = setTimeout(() => undefined, 300);
    const requestedAt = await new Promise<number>((resolve) =>
      setImmediate(() => {
        timer.requestStamp();
        resolve(performance.now());
      }),
    );
    const lateBy = (await stampedAt) - requestedAt;
    clearTimeout(far);
    expect(lateBy).toBeLessThan(50);
    timer.clear();
  });
});
