/**
 * The physical pools behind one registered pool, one entry per server: the pool itself when it is a plain
 * pool; the primary and each replica of a pool with `replicas`; each shard (and each shard's replicas) of
 * a ShardedPool. Health, metrics, admin and logging show every member through this one list.
 *
 * No Nest import: the metrics entry (usable without Nest) reads it too.
 */
import type { PoolGroupMemberStatus } from '../core/pool-group.js';
import type { ReplicaSet, RoutedMemberPool } from '../backends/routing/replica-set.js';
import { isRoutingKind } from '../backends/routing/routing-kind.js';
import type { ShardedPool } from '../backends/routing/sharded-pool.js';
import type { ManagedPool } from './managed-pool.js';

/**
 * `primary`: where writes go (a plain pool is its own primary); `replica`: a read replica; `shard`: a shard
 * (its primary, when the shard has replicas).
 */
export type PoolMemberRole = 'primary' | 'replica' | 'shard';

export interface PoolMember {
  /** The member pool's own name: `users`, `users.replica[0]`, `orders.shard[eu]`, `orders.shard[eu].replica[0]`. */
  readonly name: string;
  /** Its key in its parent's `metrics().members` / `checkHealth().members`: `primary`, `replica[0]`, `eu`. */
  readonly member: string;
  readonly role: PoolMemberRole;
  /** The shard it belongs to, in a sharded pool. */
  readonly shard?: string;
  readonly pool: ManagedPool;
  /** A replica's place in the read rotation (healthy, in rotation, why it is out). */
  readonly rotation?: PoolGroupMemberStatus;
}

/** The replica set of a pool that has replicas (PostgresPool's `replicaSet`), else undefined. */
export function replicaSetOf(pool: object): ReplicaSet<RoutedMemberPool> | undefined {
  const set = (pool as { replicaSet?: unknown }).replicaSet;
  // A brand, not instanceof: the pool may come from the other build (see routing-kind.ts).
  return isRoutingKind(set, 'replica-set') ? (set as ReplicaSet<RoutedMemberPool>) : undefined;
}

export function isShardedPool(pool: object): pool is ShardedPool {
  return isRoutingKind(pool, 'sharded-pool');
}

/** Whether the pool routes over several servers (replicas or shards). */
export function isRoutedPool(pool: object): boolean {
  return isShardedPool(pool) || (replicaSetOf(pool)?.group.size ?? 0) > 0;
}

/** Every physical pool behind `pool`, primary first, in configuration order. */
export function listPoolMembers(pool: ManagedPool): PoolMember[] {
  if (isShardedPool(pool)) {
    return pool.names.flatMap((shard) =>
      membersOf(pool.shard(shard) as unknown as ManagedPool, shard, 'shard', shard),
    );
  }
  return membersOf(pool, 'primary', 'primary', undefined);
}

function membersOf(
  pool: ManagedPool,
  member: string,
  role: PoolMemberRole,
  shard: string | undefined,
): PoolMember[] {
  const own: PoolMember = { name: pool.name, member, role, pool, ...(shard === undefined ? {} : { shard }) };
  const set = replicaSetOf(pool);
  if (set === undefined) return [own];
  const statuses = new Map(set.group.members().map((status) => [status.name, status]));
  return [
    own,
    ...set.replicaNames.map((replica) => {
      // createPool() builds every replica as a backend pool of the primary's backend: a managed pool.
      const replicaPool = set.group.pool(replica) as unknown as ManagedPool;
      return {
        name: replicaPool.name,
        member: replica,
        role: 'replica' as const,
        ...(shard === undefined ? {} : { shard }),
        pool: replicaPool,
        rotation: statuses.get(replica)!,
      };
    }),
  ];
}
