/**
 * Terminus health indicator for the app's pools. Built on HealthIndicatorService (Terminus 11 and 12; the
 * old HealthIndicator/HealthCheckError are gone in 12). It never throws (Terminus would answer 500) and
 * never waits past its timeout: each check is the pool's own bounded checkHealth(), which really tries the
 * server. Details are flat numbers and states, never a URI or a credential.
 *
 * A pool with replicas or shards is up or down as its checkHealth() says (a replica down does not take
 * down a pool whose reads fall back to the primary; a shard down does take down a sharded pool), and its
 * details list every member under `members`, each with its own status, role and latency.
 */
import { Inject, Injectable, Optional } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import type { HealthCheckResult } from '../backends/backend-health.js';
import type { MemberHealthResult } from '../backends/routing/replica-set.js';
import { POOL_MANAGER } from '../nest/pool.constants.js';
import { NO_POOLS, type PoolRegistry } from '../nest/pool-registry.js';

export interface PoolHealthCheckOptions {
  /** Bound on the check (acquire + ping). Default 1000. */
  timeoutMs?: number;
}

/** What `/health` shows for one pool (Terminus adds `status: 'up' | 'down'`). A type, not an interface, so it
 * fits Terminus' index-signature data type. `members`: only for a pool with replicas or shards. */
export type PoolHealthDetails = {
  latencyMs: number;
  size: number;
  active: number;
  idle: number;
  waiting: number;
  max: number;
  circuit: string;
  error?: string;
  members?: Record<string, PoolMemberHealthDetails>;
};

/** One member of a routed pool in `/health`: a replica, the primary, a shard (whose own members nest). */
export type PoolMemberHealthDetails = {
  status: 'up' | 'down';
  role: MemberHealthResult['role'];
} & PoolHealthDetails;

@Injectable()
export class PoolHealthIndicator {
  constructor(
    private readonly healthIndicatorService: HealthIndicatorService,
    // By its string token (the manager may be the other build's); without PoolModule, no pools.
    @Optional() @Inject(POOL_MANAGER) private readonly pools: PoolRegistry = NO_POOLS,
  ) {}

  /** Checks the pool registered as `name`; the result is keyed by that name. */
  async isHealthy(name: string, options?: PoolHealthCheckOptions): Promise<HealthIndicatorResult> {
    const indicator = this.healthIndicatorService.check(name);
    try {
      const pool = this.pools.get(name);
      const result = await pool.checkHealth({ timeoutMs: options?.timeoutMs });
      const details: PoolHealthDetails = describe(result);
      if (result.status === 'up') return indicator.up(details);
      return indicator.down({ ...details, error: result.error ?? 'down' });
    } catch (error) {
      const message =
        typeof (error as { message?: unknown })?.message === 'string'
          ? (error as Error).message
          : String(error);
      return indicator.down({ error: message });
    }
  }

  /** Checks every registered pool in parallel; one key per pool. */
  async checkAll(options?: PoolHealthCheckOptions): Promise<HealthIndicatorResult> {
    const results = await Promise.all(this.pools.names().map((name) => this.isHealthy(name, options)));
    return Object.assign({}, ...results) as HealthIndicatorResult;
  }
}

/** The flat figures of one check, plus its members' (copied field by field: nothing else can leak). */
function describe(result: HealthCheckResult): PoolHealthDetails {
  const m = result.metrics;
  const details: PoolHealthDetails = {
    latencyMs: result.latencyMs,
    size: m.size,
    active: m.active,
    idle: m.idle,
    waiting: m.waiting,
    max: m.max,
    circuit: m.circuit,
  };
  const members = membersOf(result);
  return members === undefined ? details : { ...details, members };
}

function membersOf(result: HealthCheckResult): Record<string, PoolMemberHealthDetails> | undefined {
  const members = (result as { members?: Readonly<Record<string, MemberHealthResult>> }).members;
  if (members === undefined) return undefined;
  const described: Record<string, PoolMemberHealthDetails> = {};
  for (const [member, memberResult] of Object.entries(members)) {
    const { members: nested, ...figures } = describe(memberResult);
    described[member] = {
      status: memberResult.status,
      role: memberResult.role,
      ...figures,
      ...(memberResult.error === undefined ? {} : { error: memberResult.error }),
      ...(nested === undefined ? {} : { members: nested }),
    };
  }
  return described;
}
