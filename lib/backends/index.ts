/**
 * The backend layer: `createPool()`, `registerBackend()`, the shared BackendPool, and the built-in backends.
 * Driver types are imported with `import type` only: importing this module loads no driver.
 */
export { createPool, registerBackend, unregisterBackend, knownBackends } from './backend-registry.js';
export type { BackendPoolTypes, ShardedPoolOptions } from './backend-registry.js';
export { BackendPool } from './backend-pool.js';
export type { BackendPoolSnapshot, BackendConnectionInfo } from './backend-pool.js';
export type {
  BackendDefinition,
  BackendContext,
  BackendPoolInit,
  BackendConnectionStats,
} from './backend-definition.js';
export { COMMON_OPTION_KEYS } from './backend-options.js';
export type { BackendPoolOptions, ResolvedBackendOptions } from './backend-options.js';
export { DEFAULT_HEALTH_TIMEOUT_MS } from './backend-health.js';
export type { HealthCheckOptions, HealthCheckResult } from './backend-health.js';
export { PoolDriverMissingError } from './pool-driver-missing-error.js';
export { PoolQueryTimeoutError } from './pool-query-timeout-error.js';
export { PoolConnectionError } from './pool-connection-error.js';
export { PoolUnsupportedError } from './pool-unsupported-error.js';
export { withQueryTimeout } from './query-timeout.js';
export type { QueryTimeoutOptions } from './query-timeout.js';
export { loadDriver, moduleExport } from './load-driver.js';
export type { LoadDriverOptions } from './load-driver.js';
export { Redactor, redactUri, redactUriCredentials, parseUri, REDACTED } from './redaction.js';
export { PostgresPool } from './postgres/postgres-pool.js';
export { postgresBackend } from './postgres/postgres-backend.js';
export type {
  PostgresPoolOptions,
  PostgresConnectionOptions,
  TransactionOptions,
  IsolationLevel,
} from './postgres/postgres-options.js';
export { transactionStatus } from './postgres/postgres-connection.js';
export type { TransactionStatus, PostgresConnectionStats } from './postgres/postgres-connection.js';
export { MongoPool } from './mongodb/mongodb-pool.js';
export type { MongoPoolMetrics } from './mongodb/mongodb-pool.js';
export { mongodbBackend } from './mongodb/mongodb-backend.js';
export type { MongoDriverMetrics } from './mongodb/mongodb-client.js';
export type {
  MongoPoolOptions,
  MongoConnectionOptions,
  MongoTransactionOptions,
} from './mongodb/mongodb-options.js';
export { RedisPool, SHARED_CONNECTION_ID } from './redis/redis-pool.js';
export type { RedisPoolMetrics } from './redis/redis-pool.js';
export { redisBackend } from './redis/redis-backend.js';
export type {
  RedisPoolOptions,
  RedisConnectionOptions,
  RedisClusterConfig,
  RedisClusterOptions,
  RedisSentinelConfig,
} from './redis/redis-options.js';
export type { SharedClientMetrics } from './redis/redis-shared.js';
export * from './routing/index.js';
