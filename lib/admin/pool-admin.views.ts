/**
 * What the admin API answers, built from a pool's public, already-redacted views (target, metrics,
 * connections). Fields are copied one by one rather than spread, so nothing a future backend adds to those
 * objects (a raw connection, an option) can reach a response unreviewed.
 */
import type { PoolMetrics } from '../core/index.js';
import type { BackendConnectionInfo } from '../backends/backend-pool.js';
import type { ManagedPool } from '../nest/managed-pool.js';
import { isRoutedPool, listPoolMembers, type PoolMemberRole } from '../nest/pool-members.js';

/** One pool, as `GET <path>` lists it and `GET <path>/:name` returns it. */
export interface PoolAdminSummary {
  readonly name: string;
  /** e.g. `postgres`. */
  readonly backend: string;
  /** Where the pool connects, credentials redacted. */
  readonly target: string;
  /** The pool's figures: a pool with replicas, its primary's; a sharded pool, its shards' summed. */
  readonly metrics: PoolMetrics;
  /** Only for a pool with replicas or shards: every physical pool behind it, primary first. */
  readonly members?: PoolAdminMember[];
}

/** One physical pool of a pool with replicas or shards. */
export interface PoolAdminMember {
  /** Its own name: `users.replica[0]`, `orders.shard[eu]`. */
  readonly name: string;
  /** Its key in the pool's `metrics().members` / health `members`: `primary`, `replica[0]`, `eu`. */
  readonly member: string;
  readonly role: PoolMemberRole;
  /** The shard it belongs to, in a sharded pool. */
  readonly shard?: string;
  /** Where it connects, credentials redacted. */
  readonly target: string;
  readonly metrics: PoolMetrics;
  /** Replicas: their place in the read rotation. */
  readonly rotation?: {
    /** Not marked down. */
    readonly healthy: boolean;
    /** Would a read go there now. */
    readonly inRotation: boolean;
    readonly weight: number;
    /** Why it is out (redacted). */
    readonly error?: string;
    /** Epoch ms it went down. */
    readonly downSince?: number;
  };
}

/** `GET <path>`. */
export interface PoolAdminList {
  /** When the snapshot was taken, epoch ms. */
  readonly generatedAt: number;
  readonly pools: PoolAdminSummary[];
}

/** A connection as the admin lists it: `member` names the physical pool it belongs to in a routed pool. */
export type PoolAdminConnection = BackendConnectionInfo & { readonly member?: string };

/** `GET <path>/:name/connections`. */
export interface PoolAdminConnections {
  readonly name: string;
  /** A pool with replicas or shards: every member's, each with `member` (ids are unique per member only). */
  readonly connections: PoolAdminConnection[];
}

/** `POST <path>/:name/drain`. */
export interface PoolAdminDrainResult {
  readonly name: string;
  /** Whether every lent connection came back within the timeout. */
  readonly drained: boolean;
  /** Connections still lent when the drain ended. */
  readonly active: number;
  readonly state: PoolMetrics['state'];
}

export function summarizePool(pool: ManagedPool): PoolAdminSummary {
  const summary = {
    name: pool.name,
    backend: pool.backend,
    target: pool.target,
    metrics: ownMetrics(pool.metrics()),
  };
  if (!isRoutedPool(pool)) return summary;
  const members = listPoolMembers(pool).map(({ name, member, role, shard, pool: memberPool, rotation }) => ({
    name,
    member,
    role,
    ...(shard === undefined ? {} : { shard }),
    target: memberPool.target,
    metrics: ownMetrics(memberPool.metrics()),
    ...(rotation === undefined
      ? {}
      : {
          rotation: {
            healthy: rotation.healthy,
            inRotation: rotation.inRotation,
            weight: rotation.weight,
            ...(rotation.error === undefined ? {} : { error: rotation.error }),
            ...(rotation.downSince === undefined ? {} : { downSince: rotation.downSince }),
          },
        }),
  }));
  return { ...summary, members };
}

export function describeConnections(pool: ManagedPool): PoolAdminConnections {
  if (!isRoutedPool(pool)) return { name: pool.name, connections: pool.connections().map((c) => copy(c)) };
  return {
    name: pool.name,
    connections: listPoolMembers(pool).flatMap(({ name, pool: memberPool }) =>
      // Each member's own list: a pool with replicas lists only its primary's in connections().
      memberPool.connections().map((info) => ({ ...copy(info), member: name })),
    ),
  };
}

function copy(info: BackendConnectionInfo): BackendConnectionInfo {
  return {
    id: info.id,
    state: info.state,
    createdAt: info.createdAt,
    ageMs: info.ageMs,
    idleMs: info.idleMs,
    uses: info.uses,
    queries: info.queries,
    avgQueryMs: info.avgQueryMs,
    ...(info.lastError === undefined ? {} : { lastError: info.lastError }),
  };
}

/** The pool's own figures, without the per-member maps routed pools add (members are listed apart). */
function ownMetrics(metrics: PoolMetrics): PoolMetrics {
  const {
    members: _members,
    shards: _shards,
    ...own
  } = metrics as PoolMetrics & {
    members?: unknown;
    shards?: unknown;
  };
  return own;
}
