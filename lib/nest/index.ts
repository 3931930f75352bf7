/** The Nest module: PoolModule, @InjectPool, getPoolToken, PoolManager. */
export { PoolModule } from './pool.module.js';
export { PoolCoreModule } from './pool-core.module.js';
export { PoolManagerModule } from './pool-manager.module.js';
export { PoolManager } from './pool-manager.js';
export { InjectPool } from './pool.decorators.js';
export { getPoolToken, getPoolOptionsToken } from './pool.utils.js';
export { PoolLogger, DEFAULT_LOG_SUMMARY_INTERVAL_MS } from './pool-logger.js';
export type { LoggablePool, PoolLoggerOptions } from './pool-logger.js';
export { createPoolLogSink, poolLogContext } from './pool-log-sink.js';
export type { PoolLoggerOption, PoolLogSink, PoolLogLevel } from './pool-log-sink.js';
export {
  POOL_MANAGER,
  POOL_TOKEN_PREFIX,
  DEFAULT_RETRY_ATTEMPTS,
  DEFAULT_RETRY_DELAY_MS,
  DEFAULT_SHUTDOWN_DRAIN_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_CLOSE_TIMEOUT_MS,
} from './pool.constants.js';
export type { ManagedPool } from './managed-pool.js';
export { listPoolMembers, replicaSetOf, isShardedPool, isRoutedPool } from './pool-members.js';
export type { PoolMember, PoolMemberRole } from './pool-members.js';
export { RoutedPoolLogger } from './routed-pool-logger.js';
export type * from './interfaces/index.js';
