/**
 * What the Nest layer (PoolManager, health, metrics, admin, logging) needs of a registered pool. Structural,
 * so a backend pool (PostgresPool, with or without replicas; RedisPool; MongoPool; a custom backend's) and a
 * ShardedPool are all managed pools: `@InjectPool('orders')` is then typed by the user as
 * `ShardedPool<PostgresPool>`, `@InjectPool('users')` as `PostgresPool`.
 */
import type { PoolEventListener, PoolEventName, PoolHistograms } from '../core/index.js';
import type { BackendConnectionInfo } from '../backends/backend-pool.js';
import type { RoutedMemberPool } from '../backends/routing/replica-set.js';

export interface ManagedPool extends Omit<RoutedMemberPool, 'on'> {
  /** e.g. `postgres`. */
  readonly backend: string;
  /** Where it connects, credentials redacted (a sharded pool: every shard's). */
  readonly target: string;
  connections(): BackendConnectionInfo[];
  histograms(): PoolHistograms;
  on<K extends PoolEventName>(event: K, listener: PoolEventListener<unknown, K>): unknown;
  off<K extends PoolEventName>(event: K, listener: PoolEventListener<unknown, K>): unknown;
}
