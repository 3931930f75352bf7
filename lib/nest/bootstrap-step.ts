/**
 * Bootstrap steps of modules outside PoolModule (the admin's options factory and guard, the metrics
 * registration) that may fail once pools are open. Nest runs no shutdown hook after a failed bootstrap, so
 * such a step runs under the manager's failBootstrapOnError(), which closes the pools before the error goes
 * on. The manager comes by its string token and may be the other build's, hence typed by its shape.
 */
import type { PoolManager } from './pool-manager.js';

type BootstrapGuard = Pick<PoolManager, 'failBootstrapOnError'>;

/** Runs `step` under `manager` (whatever POOL_MANAGER injected); without PoolModule, just runs it. */
export async function runBootstrapStep<R>(manager: unknown, step: () => R | Promise<R>): Promise<R> {
  if (typeof (manager as Partial<BootstrapGuard> | undefined)?.failBootstrapOnError === 'function') {
    return (manager as BootstrapGuard).failBootstrapOnError(step);
  }
  return step();
}
