/**
 * Which pools the metrics cover, resolved at every scrape: a pool added to the PoolManager after the
 * collectors were registered is exported from the next scrape on.
 */
import type { PoolHistograms, PoolMetrics } from '../core/index.js';

/** What the exporter reads from a pool: every BackendPool (and the engine's Pool) has it. */
export interface MetricsPool {
  readonly name: string;
  /** The backend (`postgres`, ...); the engine's own Pool has none and is exported with `backend=""`. */
  readonly backend?: string;
  metrics(): PoolMetrics;
  histograms(): PoolHistograms;
  trackUseTime(enabled: boolean): void;
}

/** A registry of named pools, such as the PoolManager (kept structural so this file needs no Nest import). */
export interface MetricsPoolRegistry {
  names(): string[];
  get(name: string): MetricsPool;
}

/** A PoolManager, a fixed list of pools, or a function returning the pools to export at scrape time. */
export type PoolMetricsSource = MetricsPoolRegistry | Iterable<MetricsPool> | (() => Iterable<MetricsPool>);

/** The pools `source` holds right now. */
export function resolvePools(source: PoolMetricsSource): MetricsPool[] {
  if (typeof source === 'function') return [...source()];
  if (isRegistry(source)) return source.names().map((name) => source.get(name));
  return [...source];
}

function isRegistry(source: PoolMetricsSource): source is MetricsPoolRegistry {
  return (
    typeof (source as Partial<MetricsPoolRegistry>).names === 'function' &&
    typeof (source as Partial<MetricsPoolRegistry>).get === 'function'
  );
}
