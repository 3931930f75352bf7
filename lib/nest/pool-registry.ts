/**
 * What health, metrics and the admin read of the PoolManager, injected by the string token POOL_MANAGER
 * (see pool.constants.ts): typed by its shape, since the manager may be the other build's class.
 */
import type { ManagedPool } from './managed-pool.js';
import type { PoolManager } from './pool-manager.js';

export type PoolRegistry = Pick<PoolManager, 'get' | 'has' | 'names'>;

/** Stands in when no PoolModule is imported (nothing provides POOL_MANAGER): no pools. */
export const NO_POOLS: PoolRegistry = Object.freeze({
  get<P extends ManagedPool = ManagedPool>(name: string): P {
    throw new Error(`no pool named "${name}": PoolModule is not imported`);
  },
  has: () => false,
  names: () => [],
});
