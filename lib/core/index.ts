/**
 * nestjs-pool/core: the backend-agnostic pool engine. Imports nothing from Nest or any driver.
 */
export { Pool, DEFAULT_CLOSE_TIMEOUT_MS, DEFAULT_DRAIN_TIMEOUT_MS } from './pool.js';
export type { AcquireOptions, CloseOptions, DrainOptions, DrainResult } from './pool.js';
export type { PoolConnectionInfo, PoolConnectionState } from './pool-connection-info.js';
export { Lease } from './lease.js';
export {
  PoolError,
  PoolTimeoutError,
  PoolUnavailableError,
  PoolClosedError,
  PoolQueueFullError,
  PoolCreateTimeoutError,
  PoolConfigError,
  brandPoolError,
} from './pool-errors.js';
export type { PoolErrorOptions, PoolTimeoutDetails } from './pool-errors.js';
export {
  POOL_DEFAULTS,
  POOL_ENGINE_OPTION_KEYS,
  POOL_PRESETS,
  POOL_PRESET_NAMES,
  DEFAULT_POOL_NAME,
  MAX_TIMER_MS,
  resolvePoolOptions,
  OptionReader,
  isPlainObject,
} from './pool-options.js';
export type { ResolvePoolOptionsSettings } from './pool-options.js';
export type {
  PoolFactory,
  PoolOptions,
  PoolEngineOptions,
  CreateRetryOptions,
  CircuitBreakerOptions,
  PoolOrder,
  StartupMode,
  ResolvedPoolOptions,
  ResolvedCreateRetry,
  ResolvedCircuitBreaker,
  PoolPresetName,
  PoolPresetOptions,
  DynamicSizingOptions,
  ResolvedDynamicSizing,
} from './pool-options.js';
export { PoolEventEmitter, toError } from './pool-events.js';
export type {
  PoolEvents,
  PoolEventName,
  PoolEventListener,
  DestroyReason,
  PoolErrorPhase,
  PoolErrorContext,
  PoolLeakInfo,
  PoolStateChange,
} from './pool-events.js';
export type {
  PoolMetrics,
  PoolState,
  PoolCircuitState,
  LatencySummary,
  PoolHistograms,
} from './pool-metrics.js';
export { LatencyHistogram, DEFAULT_HISTOGRAM_BOUNDS_MS } from './latency-histogram.js';
export type { HistogramSnapshot } from './latency-histogram.js';
export { createBackoffDelay } from './create-backoff.js';
export { coarseNow } from './coarse-clock.js';
export { PoolGroup, DEFAULT_RECHECK_INTERVAL_MS, MAX_MEMBER_WEIGHT } from './pool-group.js';
export type {
  PoolGroupOptions,
  PoolGroupMemberOptions,
  PoolGroupMemberStatus,
  PoolGroupPick,
  PoolGroupLoad,
  PoolGroupPool,
  PoolGroupEvents,
  PoolGroupEventName,
  PoolGroupListener,
} from './pool-group.js';
export { BALANCE_STRATEGIES, DEFAULT_BALANCE_STRATEGY, createBalanceStrategy } from './balance-strategy.js';
export type {
  BalanceStrategyName,
  BalanceStrategy,
  BalanceCandidate,
  BalanceStrategySettings,
} from './balance-strategy.js';
