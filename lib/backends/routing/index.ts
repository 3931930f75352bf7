/**
 * Routing one pool name over several servers: read replicas (ReplicaSet, PostgresPool's `read`) and shards
 * (ShardedPool). The balancing and failover themselves are PoolGroup's, in nestjs-pool/core.
 */
export { ShardedPool, DEFAULT_FAN_OUT_CONCURRENCY } from './sharded-pool.js';
export type { ShardedPoolMetrics, ShardedPoolInit, ShardMemberPool, EachOptions } from './sharded-pool.js';
export {
  ReplicaSet,
  PRIMARY_MEMBER,
  attachReplicaSet,
  replicaFailure,
  supportsReplicas,
  isPoolLevelFailure,
} from './replica-set.js';
export type {
  ReplicaSetInit,
  ReplicaCapablePool,
  RoutedMemberPool,
  ReadRoute,
  ReplicaRole,
  ReplicaMemberMetrics,
  ReplicatedPoolMetrics,
  MemberHealthResult,
  RoutedHealthCheckResult,
} from './replica-set.js';
export { PostgresReader, isPostgresMemberFailure } from './postgres-reader.js';
export { PoolNoHealthyMemberError, PoolUnknownShardError, PoolFanOutError } from './routing-errors.js';
export {
  DEFAULT_ROUTING_CHECK_INTERVAL_MS,
  DEFAULT_ROUTING_RECHECK_INTERVAL_MS,
  DEFAULT_ROUTING_CHECK_TIMEOUT_MS,
} from './routing-options.js';
export type {
  ReplicaOptions,
  ReplicaRoutingOptions,
  ReadFallback,
  RoutingHealthCheckOptions,
  ShardOptions,
  ShardRoutingOptions,
  ShardKey,
} from './routing-options.js';
export { RendezvousHash } from './shard-hash.js';
export { aggregateMetrics } from './aggregate-metrics.js';
