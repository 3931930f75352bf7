/**
 * Engine unit tests' set-up: `makePool()` builds a Pool over a FakeFactory and every pool made in a test is
 * closed after it, so no test leaks timers or connections into the next.
 */
import { afterEach } from '@jest/globals';
import { Pool, type PoolOptions } from '../../lib/core/index.js';
import { FakeFactory, type FakeConnection } from './fake-factory.js';

export type MakePool = (
  options?: Partial<PoolOptions<FakeConnection>>,
  factory?: FakeFactory,
) => { pool: Pool<FakeConnection>; factory: FakeFactory };

/** Call at the top of a spec file; returns the file's makePool(). */
export function usePoolHarness(defaultName: string): MakePool {
  const pools: Pool<FakeConnection>[] = [];
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });
  return (options = {}, factory = new FakeFactory()) => {
    const pool = new Pool<FakeConnection>({ name: defaultName, factory, ...options });
    pools.push(pool);
    return { pool, factory };
  };
}
