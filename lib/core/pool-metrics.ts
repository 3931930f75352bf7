/** The shape of `pool.metrics()`. */
import type { HistogramSnapshot } from './latency-histogram.js';
import type { DestroyReason } from './pool-events.js';

export type PoolState = 'starting' | 'ready' | 'paused' | 'draining' | 'closed';
export type PoolCircuitState = 'closed' | 'open' | 'half-open';

export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface PoolMetrics {
  name: string;
  state: PoolState;
  circuit: PoolCircuitState;
  /** Open connections: idle + active. */
  size: number;
  idle: number;
  /** Connections not idle: lent, or being validated/reset. */
  active: number;
  /** Connection attempts in flight. */
  pending: number;
  /** Callers waiting in the queue. */
  waiting: number;
  min: number;
  max: number;
  created: number;
  destroyed: Record<DestroyReason, number> & { total: number };
  acquired: number;
  released: number;
  timeouts: number;
  createErrors: number;
  validationFailures: number;
  leaks: number;
  /** How long acquires waited, in milliseconds (0 for those served at once). */
  acquireWaitMs: LatencySummary;
  /** Only with dynamic sizing (the `dynamic` preset): the size the sizer currently keeps warm. */
  targetSize?: number;
}

/** `pool.histograms()`: full latency distributions, for exporters. */
export interface PoolHistograms {
  /** How long acquires waited (0 for those served at once). Always recorded. */
  readonly wait: HistogramSnapshot;
  /** How long successful connection attempts took. Always recorded. */
  readonly create: HistogramSnapshot;
  /** How long leases were held (lend to release/destroy); recorded only while `trackUseTime` is on. */
  readonly use: HistogramSnapshot;
}
