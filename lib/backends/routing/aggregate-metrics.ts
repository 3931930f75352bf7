/**
 * One PoolMetrics for several pools (a sharded pool's shards), so whatever reads `metrics()` of a single
 * pool (dashboards, the Nest PoolManager) reads a sharded one unchanged; the per-shard figures sit next to
 * it. Counts are summed; latency percentiles cannot be combined exactly and are the worst shard's (an
 * upper bound); the state and circuit are the most alarming one.
 */
import {
  DEFAULT_HISTOGRAM_BOUNDS_MS,
  type HistogramSnapshot,
  type PoolCircuitState,
  type PoolHistograms,
  type PoolMetrics,
  type PoolState,
} from '../../core/index.js';

const STATE_SEVERITY: readonly PoolState[] = ['ready', 'starting', 'paused', 'draining', 'closed'];
const CIRCUIT_SEVERITY: readonly PoolCircuitState[] = ['closed', 'half-open', 'open'];

export function aggregateMetrics(name: string, parts: readonly PoolMetrics[]): PoolMetrics {
  const total: Record<string, unknown> = {};
  for (const part of parts) {
    for (const [key, value] of Object.entries(part)) {
      if (typeof value === 'number') total[key] = ((total[key] as number | undefined) ?? 0) + value;
      else if (key === 'destroyed' || key === 'acquireWaitMs') {
        const into = ((total[key] as Record<string, number> | undefined) ?? {}) as Record<string, number>;
        for (const [inner, n] of Object.entries(value as Record<string, number>)) {
          if (typeof n !== 'number') continue;
          into[inner] = key === 'destroyed' ? (into[inner] ?? 0) + n : Math.max(into[inner] ?? 0, n);
        }
        total[key] = into;
      }
    }
  }
  const worst = <T>(order: readonly T[], values: T[]): T =>
    values.reduce((a, b) => (order.indexOf(b) > order.indexOf(a) ? b : a), order[0]!);
  // All closed is closed; one shard closed among live ones is a degraded pool, reported as draining.
  const states = parts.map((p) => p.state);
  let state = worst(STATE_SEVERITY, states);
  if (state === 'closed' && !states.every((s) => s === 'closed')) state = 'draining';
  return {
    ...(total as unknown as PoolMetrics),
    name,
    state,
    circuit: worst(
      CIRCUIT_SEVERITY,
      parts.map((p) => p.circuit),
    ),
  };
}

/**
 * One histogram for several pools: counts added bucket by bucket. Pools of one sharded pool share the
 * engine's bounds; a snapshot with other bounds has each bucket added to the first bucket that covers it.
 */
export function mergeHistograms(parts: readonly HistogramSnapshot[]): HistogramSnapshot {
  const first = parts[0];
  if (first === undefined) {
    return {
      boundsMs: DEFAULT_HISTOGRAM_BOUNDS_MS,
      counts: new Array<number>(DEFAULT_HISTOGRAM_BOUNDS_MS.length + 1).fill(0),
      count: 0,
      sumMs: 0,
    };
  }
  const bounds = first.boundsMs;
  const counts = new Array<number>(bounds.length + 1).fill(0);
  let count = 0;
  let sumMs = 0;
  for (const part of parts) {
    count += part.count;
    sumMs += part.sumMs;
    part.counts.forEach((n, i) => {
      const upper = part.boundsMs[i] ?? Infinity;
      let target = bounds.findIndex((bound) => bound >= upper);
      if (target === -1) target = bounds.length;
      counts[target]! += n;
    });
  }
  return { boundsMs: bounds, counts, count, sumMs };
}

export function mergePoolHistograms(parts: readonly PoolHistograms[]): PoolHistograms {
  return {
    wait: mergeHistograms(parts.map((p) => p.wait)),
    create: mergeHistograms(parts.map((p) => p.create)),
    use: mergeHistograms(parts.map((p) => p.use)),
  };
}
