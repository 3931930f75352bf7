/**
 * ReplicaSet: a primary pool and its read replicas (each a pool of the same backend), with a PoolGroup
 * deciding which replica serves the next read. Backend-independent: a backend's pool class offers reads
 * through it (PostgresPool's `read`) and implements the `attachReplicaSet` hook createPool() calls.
 *
 * Health: a replica leaves the rotation when its circuit opens, when a read on it fails with a
 * connection-level error, or when a health check fails (the periodic one, `healthCheck.intervalMs`, or
 * the app's `/health`); it comes back when a check passes (re-checked every `recheckIntervalMs` while out,
 * and at once when its circuit closes). With no replica in the rotation, reads go to the primary
 * (`readFallback: 'primary'`) or fail with PoolNoHealthyMemberError (`'fail'`).
 */
import {
  PoolClosedError,
  PoolCreateTimeoutError,
  PoolTimeoutError,
  PoolUnavailableError,
  type CloseOptions,
  type DrainOptions,
  type DrainResult,
  type PoolMetrics,
  type PoolState,
  type PoolStateChange,
} from '../../core/index.js';
import { PoolGroup, type PoolGroupMemberStatus } from '../../core/pool-group.js';
import type { HealthCheckOptions, HealthCheckResult } from '../backend-health.js';
import { PoolConnectionError } from '../pool-connection-error.js';
import { PoolQueryTimeoutError } from '../pool-query-timeout-error.js';
import { PoolNoHealthyMemberError } from './routing-errors.js';
import type { ReadFallback, ResolvedReplicaRouting } from './routing-options.js';
import { brandRoutingKind } from './routing-kind.js';

/**
 * What routing needs of a member pool: a BackendPool has all of it (a structural type, because the
 * backends' pool classes hold #private fields that make BackendPool<Client> no BackendPool<unknown>).
 */
export interface RoutedMemberPool {
  readonly name: string;
  readonly state: PoolState;
  start(): Promise<void>;
  pause(): void;
  resume(): void;
  drain(options?: DrainOptions): Promise<DrainResult>;
  close(options?: CloseOptions): Promise<void>;
  metrics(): PoolMetrics;
  checkHealth(options?: HealthCheckOptions): Promise<HealthCheckResult>;
  trackUseTime(enabled: boolean): void;
  on(event: 'state', listener: (change: PoolStateChange) => void): unknown;
}

/** createPool() calls `pool[attachReplicaSet](set)` on a backend pool that supports replicas. */
export const attachReplicaSet: unique symbol = Symbol.for('nestjs-pool.attachReplicaSet') as never;

/**
 * Optional, next to attachReplicaSet: does `error` show the replica itself failing (its server, not the
 * query)? Without it, only the pool's own unavailability errors and query timeouts count.
 */
export const replicaFailure: unique symbol = Symbol.for('nestjs-pool.replicaFailure') as never;

/** A backend pool class that can route reads to replicas. */
export interface ReplicaCapablePool {
  [attachReplicaSet](set: ReplicaSet<RoutedMemberPool>): void;
  [replicaFailure]?(error: unknown): boolean;
}

export function supportsReplicas(pool: object): pool is ReplicaCapablePool {
  return typeof (pool as Partial<ReplicaCapablePool>)[attachReplicaSet] === 'function';
}

export type ReplicaRole = 'primary' | 'replica';

/** One member in `metrics().members`. */
export interface ReplicaMemberMetrics extends PoolMetrics {
  readonly role: ReplicaRole;
  /** Replicas: not marked down. The primary: always true (its health is its own circuit and checks). */
  readonly healthy: boolean;
  /** Would a read go there now (for the primary: is it the read fallback in use now). */
  readonly inRotation: boolean;
  readonly weight?: number;
  /** Why a replica is out (redacted). */
  readonly error?: string;
}

/** `metrics()` of a pool with replicas: the primary's own metrics, plus every member's. */
export interface ReplicatedPoolMetrics extends PoolMetrics {
  readonly members: Readonly<Record<string, ReplicaMemberMetrics>>;
}

export interface MemberHealthResult extends HealthCheckResult {
  readonly role: ReplicaRole | 'shard';
}

/** `checkHealth()` of a routed pool: the overall status, plus every member's own check. */
export interface RoutedHealthCheckResult extends HealthCheckResult {
  readonly members: Readonly<Record<string, MemberHealthResult>>;
}

export interface ReplicaSetInit<P extends RoutedMemberPool> {
  /** The pool name the user configured (the primary's). */
  readonly name: string;
  readonly primary: P;
  readonly replicas: readonly { readonly member: string; readonly pool: P; readonly weight: number }[];
  readonly routing: ResolvedReplicaRouting;
  /**
   * Did `error` show the member itself failing (as opposed to the query: a syntax error, a constraint)?
   * Default: the pool's own unavailability errors and query timeouts.
   */
  readonly isMemberFailure?: (error: unknown) => boolean;
}

/** Where a read goes. */
export interface ReadRoute<P> {
  readonly member: string;
  readonly pool: P;
  readonly role: ReplicaRole;
}

export const PRIMARY_MEMBER = 'primary';

export class ReplicaSet<P extends RoutedMemberPool> {
  readonly name: string;
  readonly primary: P;
  readonly readFallback: ReadFallback;
  /** The replicas' rotation (balance strategy, health). */
  readonly group: PoolGroup<P>;
  readonly #isMemberFailure: (error: unknown) => boolean;
  readonly #checkTimeoutMs: number;

  constructor(init: ReplicaSetInit<P>) {
    this.name = init.name;
    this.primary = init.primary;
    this.readFallback = init.routing.readFallback;
    this.#isMemberFailure = init.isMemberFailure ?? isPoolLevelFailure;
    this.#checkTimeoutMs = init.routing.healthCheck.timeoutMs;
    this.group = new PoolGroup<P>({
      name: init.name,
      members: init.replicas.map(({ member, pool, weight }) => ({ name: member, pool, weight })),
      balance: init.routing.balance,
      recheckIntervalMs: init.routing.healthCheck.recheckIntervalMs,
      checkIntervalMs: init.routing.healthCheck.intervalMs,
      check: async (pool) => {
        const result = await pool.checkHealth({ timeoutMs: this.#checkTimeoutMs });
        if (result.status !== 'up') throw new Error(result.error ?? 'health check failed');
      },
    });
    for (const { member, pool } of init.replicas) {
      pool.on('state', (change: PoolStateChange) => this.#onStateChange(member, change));
    }
    // A replica whose start-up failed is only half started: once it is back, finish (fills `min`).
    this.group.on('up', (member) => {
      const pool = this.group.pool(member);
      if (pool.state === 'starting') pool.start().catch(noop);
    });
  }

  /** The replicas' member names, in order. */
  get replicaNames(): string[] {
    return this.group.names;
  }

  /**
   * Where the next read goes: a healthy replica by the balance strategy (never `exclude`), else the primary
   * or PoolNoHealthyMemberError, by `readFallback`.
   */
  route(exclude?: string): ReadRoute<P> {
    const picked = this.group.pick(exclude);
    if (picked !== undefined) return { member: picked.name, pool: picked.pool, role: 'replica' };
    if (this.readFallback === 'primary' || this.group.size === 0) {
      return { member: PRIMARY_MEMBER, pool: this.primary, role: 'primary' };
    }
    const reasons: Record<string, string> = {};
    for (const status of this.group.members()) reasons[status.name] = describeOut(status);
    throw new PoolNoHealthyMemberError(this.name, 'replica to read from', reasons);
  }

  /**
   * Runs a read on the routed member. When it fails because the replica failed (not the query), the
   * replica leaves the rotation, and the read runs once more elsewhere if `op` had not started yet
   * (`begin()` marks the point after which it has effects of its own) or `retryStarted` says the whole op
   * is safe to repeat (one read-only statement).
   */
  async run<R>(op: (pool: P, begin: () => void) => Promise<R>, retryStarted: boolean): Promise<R> {
    let exclude: string | undefined;
    for (let attempt = 1; ; attempt++) {
      const route = this.route(exclude);
      let started = false;
      try {
        return await op(route.pool, () => {
          started = true;
        });
      } catch (error) {
        if (route.role !== 'replica' || !this.#isMemberFailure(error)) throw error;
        this.group.markDown(route.member, error);
        if (attempt >= 2 || (started && !retryStarted)) throw error;
        exclude = route.member;
      }
    }
  }

  /** Starts every replica; one that cannot be opened starts out of the rotation instead of failing. */
  async startReplicas(): Promise<void> {
    await Promise.all(
      this.group.names.map(async (member) => {
        try {
          await this.group.pool(member).start();
        } catch (error) {
          this.group.markDown(member, error);
        }
      }),
    );
    this.group.watch();
  }

  async drainReplicas(options?: DrainOptions): Promise<DrainResult[]> {
    return Promise.all(this.group.names.map((member) => this.group.pool(member).drain(options)));
  }

  async closeReplicas(options?: CloseOptions): Promise<void> {
    this.group.close();
    await Promise.all(this.group.names.map((member) => this.group.pool(member).close(options)));
  }

  /** Every member's metrics, the primary's (passed in: the caller's own) first. */
  memberMetrics(primaryMetrics: PoolMetrics): Record<string, ReplicaMemberMetrics> {
    const members: Record<string, ReplicaMemberMetrics> = {};
    const statuses = this.group.members();
    const anyInRotation = statuses.some((status) => status.inRotation);
    members[PRIMARY_MEMBER] = {
      ...primaryMetrics,
      role: 'primary',
      healthy: true,
      inRotation: !anyInRotation && this.readFallback === 'primary',
    };
    for (const status of statuses) {
      const metrics = this.group.pool(status.name).metrics();
      members[status.name] = {
        ...metrics,
        role: 'replica',
        healthy: status.healthy,
        inRotation: status.inRotation,
        weight: status.weight,
        ...(status.error === undefined ? {} : { error: status.error }),
      };
    }
    return members;
  }

  /**
   * Checks the primary (through `checkPrimary`, the pool's own check) and every replica in parallel. A
   * replica's result updates the rotation. Down when the primary is, or when reads cannot be served
   * (`readFallback: 'fail'` and no replica up); the members say which.
   */
  async checkHealth(
    checkPrimary: () => Promise<HealthCheckResult>,
    options?: HealthCheckOptions,
  ): Promise<RoutedHealthCheckResult> {
    const [primary, ...replicas] = await Promise.all([
      checkPrimary(),
      ...this.group.names.map(async (member) => {
        const pool = this.group.pool(member);
        const result = await pool.checkHealth(options);
        const lending = pool.state === 'ready' || pool.state === 'starting';
        if (result.status === 'up') this.group.markUp(member);
        else if (lending) this.group.markDown(member, new Error(result.error ?? 'health check failed'));
        return [member, result] as const;
      }),
    ]);
    const members: Record<string, MemberHealthResult> = {
      [PRIMARY_MEMBER]: { ...primary, role: 'primary' },
    };
    for (const [member, result] of replicas) members[member] = { ...result, role: 'replica' };
    let status = primary.status;
    let error = primary.error;
    const readable = replicas.some(([, result]) => result.status === 'up');
    if (status === 'up' && !readable && this.readFallback === 'fail' && replicas.length > 0) {
      status = 'down';
      error = 'no replica is up and readFallback is "fail"';
    }
    return { ...primary, status, ...(error === undefined ? {} : { error }), members };
  }

  #onStateChange(member: string, change: PoolStateChange): void {
    if (change.circuit === change.previousCircuit) return;
    if (change.circuit === 'open') this.group.markDown(member, new Error('circuit breaker opened'));
    else if (change.circuit === 'closed') void this.group.check(member);
  }
}
brandRoutingKind(ReplicaSet, 'replica-set');

/**
 * The failures that are the member's, whatever the backend: it cannot lend (circuit open, closed, its
 * connection attempts failing or timing out), a query got no answer in time, or its connection broke.
 */
export function isPoolLevelFailure(error: unknown): boolean {
  if (error instanceof PoolNoHealthyMemberError) return false;
  if (
    error instanceof PoolUnavailableError ||
    error instanceof PoolCreateTimeoutError ||
    error instanceof PoolClosedError ||
    error instanceof PoolQueryTimeoutError ||
    error instanceof PoolConnectionError
  ) {
    return true;
  }
  // A wait that timed out while connection attempts were failing (its cause); a merely busy pool is not down.
  return error instanceof PoolTimeoutError && (error as { cause?: unknown }).cause !== undefined;
}

function describeOut(status: PoolGroupMemberStatus): string {
  if (status.error !== undefined) return status.error;
  return status.inRotation ? 'in rotation' : 'not lending (paused, draining or closed)';
}

function noop(): void {}
