/**
 * nestjs-pool/metrics: Prometheus metrics for the pools. Only this entry imports prom-client (an optional
 * peer): apps that don't use metrics needn't install it.
 */
export { registerPoolMetrics } from './register-pool-metrics.js';
export type { PoolMetricsOptions, UnregisterPoolMetrics } from './register-pool-metrics.js';
export {
  PoolMetricsModule,
  PoolMetricsRegistration,
  POOL_METRICS_REGISTRY,
  DEFAULT_METRICS_PATH,
} from './pool-metrics.module.js';
export type { PoolMetricsModuleOptions } from './pool-metrics.module.js';
export {
  METRIC_NAMES,
  POOL_NAME_LABEL,
  BACKEND_LABEL,
  STATE_LABEL,
  REASON_LABEL,
  POOL_GROUP_LABEL,
  POOL_ROLE_LABEL,
} from './metric-names.js';
export type { PoolMetricKey } from './metric-names.js';
export type { MetricsPool, MetricsPoolRegistry, PoolMetricsSource } from './metrics-pool-source.js';
