/** The shape of `checkHealth()`: what a Terminus indicator or a readiness probe needs, and nothing secret. */
import type { PoolMetrics } from '../core/index.js';

export interface HealthCheckOptions {
  /** Upper bound on the whole check (waiting for a connection included). Default 1000. */
  timeoutMs?: number;
}

export interface HealthCheckResult {
  status: 'up' | 'down';
  /** Wall time of the check, in milliseconds. */
  latencyMs: number;
  /** Why the pool is down; credentials redacted. */
  error?: string;
  metrics: PoolMetrics;
}

/** Terminus' own default for ping checks. */
export const DEFAULT_HEALTH_TIMEOUT_MS = 1_000;
