/**
 * Metric and label names: OpenTelemetry's database client connection metrics (semantic conventions,
 * `db.client.connection.*`) in Prometheus form (dots → underscores, the unit as a `_seconds` suffix,
 * counters ending in `_total`), plus this package's own under `nestjs_pool_`.
 */

/** OTel `db.client.connection.pool.name`. */
export const POOL_NAME_LABEL = 'pool_name';
/**
 * The registered pool a series belongs to (the name given to createPool()/PoolModule, what `@InjectPool`
 * takes). Equal to `pool_name` for a plain pool; for a pool with replicas or shards, every member has its
 * own `pool_name` (`users.replica[0]`, `orders.shard[eu]`) and they share this one.
 */
export const POOL_GROUP_LABEL = 'pool_group';
/** `primary` (writes; a plain pool too), `replica` or `shard`. */
export const POOL_ROLE_LABEL = 'pool_role';
/** The pool's backend (`postgres`, `redis`, `mongodb`, ...): never its URI. */
export const BACKEND_LABEL = 'backend';
/** OTel `db.client.connection.state`: `idle` or `used`. */
export const STATE_LABEL = 'state';
export const REASON_LABEL = 'reason';

export const METRIC_NAMES = Object.freeze({
  connectionCount: 'db_client_connection_count',
  connectionMax: 'db_client_connection_max',
  connectionIdleMax: 'db_client_connection_idle_max',
  connectionIdleMin: 'db_client_connection_idle_min',
  pendingRequests: 'db_client_connection_pending_requests',
  timeouts: 'db_client_connection_timeouts_total',
  waitTime: 'db_client_connection_wait_time_seconds',
  createTime: 'db_client_connection_create_time_seconds',
  useTime: 'db_client_connection_use_time_seconds',
  closes: 'nestjs_pool_closes_total',
  createErrors: 'nestjs_pool_create_errors_total',
  leaks: 'nestjs_pool_leaks_total',
  circuitState: 'nestjs_pool_circuit_state',
  poolState: 'nestjs_pool_state',
  targetSize: 'nestjs_pool_target_size',
});

export type PoolMetricKey = keyof typeof METRIC_NAMES;
