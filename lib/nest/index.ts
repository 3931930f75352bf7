/** The Nest module: PoolModule, @InjectPool, getPoolToken, PoolManager. */
export { PoolModule } from './pool.module.js';
export { PoolCoreModule } from './pool-core.module.js';
export { PoolManagerModule } from './pool-manager.module.js';
export { PoolManager } from './pool-manager.js';
export { InjectPool } from './pool.decorators.js';
export { getPoolToken, getPoolOptionsToken } from './pool.utils.js';
export {
  POOL_TOKEN_PREFIX,
  DEFAULT_RETRY_ATTEMPTS,
  DEFAULT_RETRY_DELAY_MS,
  DEFAULT_SHUTDOWN_DRAIN_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_CLOSE_TIMEOUT_MS,
} from './pool.constants.js';
export type * from './interfaces/index.js';
