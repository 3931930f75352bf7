/**
 * registerPoolMetrics(): prom-client collectors for every pool of a source, computed at scrape time from
 * `pool.metrics()` and `pool.histograms()` (no timer, no per-acquire hook). For apps without Nest too.
 *
 * One series per physical pool: a pool with replicas is exported as its primary (`pool_name="users"`) and
 * each replica (`pool_name="users.replica[0]"`); a sharded pool as each shard (`orders.shard[eu]`, and its
 * replicas), without a summed series of its own (sum by `pool_group` for that). `pool_group` (the
 * registered name) and `pool_role` (`primary`, `replica`, `shard`) follow from `pool_name`, so they add no
 * cardinality: the series count is bounded by the configured members.
 */
import { Counter, Gauge, register as globalRegistry, type Registry } from 'prom-client';
import type { DestroyReason, PoolCircuitState, PoolMetrics, PoolState } from '../core/index.js';
import { isRoutedPool, listPoolMembers, type PoolMemberRole } from '../nest/pool-members.js';
import type { ManagedPool } from '../nest/managed-pool.js';
import {
  BACKEND_LABEL,
  METRIC_NAMES,
  POOL_GROUP_LABEL,
  POOL_NAME_LABEL,
  POOL_ROLE_LABEL,
  REASON_LABEL,
  STATE_LABEL,
  type PoolMetricKey,
} from './metric-names.js';
import { resolvePools, type MetricsPool, type PoolMetricsSource } from './metrics-pool-source.js';
import { SnapshotHistogram, type HistogramSeries } from './snapshot-histogram.js';

export interface PoolMetricsOptions {
  /** Where to register the collectors. Default: prom-client's global registry (`register`). */
  registry?: Registry;
  /** Prepended to every metric name (e.g. `myapp_`). Default: none. */
  prefix?: string;
}

/** Removes the collectors again (idempotent). */
export type UnregisterPoolMetrics = () => void;

const DESTROY_REASONS: readonly DestroyReason[] = [
  'idle',
  'lifetime',
  'validation',
  'error',
  'maxUses',
  'close',
];
const CIRCUIT_STATES: readonly PoolCircuitState[] = ['closed', 'open', 'half-open'];
const POOL_STATES: readonly PoolState[] = ['starting', 'ready', 'paused', 'draining', 'closed'];
const POOL_LABELS = [POOL_NAME_LABEL, BACKEND_LABEL, POOL_GROUP_LABEL, POOL_ROLE_LABEL] as const;

interface PoolReading {
  /** The physical pool: the registered one, or one of its replicas or shards. */
  readonly pool: MetricsPool;
  readonly labels: Record<string, string>;
  readonly metrics: PoolMetrics;
}

/**
 * Registers the pool collectors on `options.registry` and returns a function that removes them.
 * Turns on `trackUseTime` for each pool (from now on for pools that join the source later), so the
 * use-time histogram has data. Throws if a metric of the same name is already registered there.
 */
export function registerPoolMetrics(
  source: PoolMetricsSource,
  options: PoolMetricsOptions = {},
): UnregisterPoolMetrics {
  const registry = options.registry ?? globalRegistry;
  const prefix = options.prefix ?? '';
  const name = (key: PoolMetricKey): string => `${prefix}${METRIC_NAMES[key]}`;
  for (const key of Object.keys(METRIC_NAMES) as PoolMetricKey[]) {
    if (registry.getSingleMetric(name(key)) !== undefined) {
      throw new Error(
        `nestjs-pool metrics: "${name(key)}" is already registered in this registry ` +
          '(registerPoolMetrics() or PoolMetricsModule used twice on it? call the unregister function first, or set a prefix)',
      );
    }
  }

  const reader = new ScrapeReader(source);
  reader.enableUseTime();
  const registers = [registry];
  const poolGauge = (key: PoolMetricKey, help: string, value: (m: PoolMetrics) => number): Gauge<string> =>
    new Gauge({
      name: name(key),
      help,
      labelNames: [...POOL_LABELS],
      registers,
      collect() {
        this.reset();
        for (const { labels, metrics } of reader.read()) this.set(labels, value(metrics));
      },
    });
  const poolCounter = (
    key: PoolMetricKey,
    help: string,
    value: (m: PoolMetrics) => number,
  ): Counter<string> =>
    new Counter({
      name: name(key),
      help,
      labelNames: [...POOL_LABELS],
      registers,
      collect() {
        this.reset();
        for (const { labels, metrics } of reader.read()) this.inc(labels, value(metrics));
      },
    });
  const histogram = (
    key: PoolMetricKey,
    help: string,
    pick: (h: ReturnType<MetricsPool['histograms']>) => HistogramSeries['snapshot'],
  ): SnapshotHistogram =>
    new SnapshotHistogram({
      name: name(key),
      help,
      labelNames: POOL_LABELS,
      registry,
      read: () => reader.read().map(({ pool, labels }) => ({ labels, snapshot: pick(pool.histograms()) })),
    });

  new Gauge({
    name: name('connectionCount'),
    help: 'Connections in the pool by state: idle, or used (lent, or being validated/reset).',
    labelNames: [...POOL_LABELS, STATE_LABEL],
    registers,
    collect() {
      this.reset();
      for (const { labels, metrics } of reader.read()) {
        this.set({ ...labels, [STATE_LABEL]: 'idle' }, metrics.idle);
        this.set({ ...labels, [STATE_LABEL]: 'used' }, metrics.active);
      }
    },
  });
  poolGauge('connectionMax', 'The maximum number of open connections allowed (pool.max).', (m) => m.max);
  poolGauge(
    'connectionIdleMax',
    'The maximum number of idle connections allowed: pool.max (those above pool.min close after idleTimeoutMs).',
    (m) => m.max,
  );
  poolGauge(
    'connectionIdleMin',
    'The minimum number of idle connections kept open (pool.min).',
    (m) => m.min,
  );
  poolGauge(
    'pendingRequests',
    'Callers waiting for a connection (acquire() calls in the queue).',
    (m) => m.waiting,
  );
  new Gauge({
    name: name('targetSize'),
    help: "The dynamic sizer's target size (pool preset 'dynamic'); no series for fixed-size pools.",
    labelNames: [...POOL_LABELS],
    registers,
    collect() {
      this.reset();
      for (const { labels, metrics } of reader.read()) {
        if (metrics.targetSize !== undefined) this.set(labels, metrics.targetSize);
      }
    },
  });
  poolCounter('timeouts', 'acquire() calls that timed out waiting for a connection.', (m) => m.timeouts);
  histogram('waitTime', 'Time acquire() waited for a connection, in seconds.', (h) => h.wait);
  histogram('createTime', 'Time it took to open a connection, in seconds.', (h) => h.create);
  histogram('useTime', 'Time a connection was lent before it came back, in seconds.', (h) => h.use);
  new Counter({
    name: name('closes'),
    help: `Connections closed, by reason (${DESTROY_REASONS.join(', ')}).`,
    labelNames: [...POOL_LABELS, REASON_LABEL],
    registers,
    collect() {
      this.reset();
      for (const { labels, metrics } of reader.read()) {
        for (const reason of DESTROY_REASONS) {
          this.inc({ ...labels, [REASON_LABEL]: reason }, metrics.destroyed[reason]);
        }
      }
    },
  });
  poolCounter('createErrors', 'Failed connection attempts.', (m) => m.createErrors);
  poolCounter('leaks', 'Leases held longer than leakDetectionMs.', (m) => m.leaks);
  stateGauge(
    name('circuitState'),
    'The circuit breaker: 1 for its current state.',
    CIRCUIT_STATES,
    (m) => m.circuit,
  );
  stateGauge(
    name('poolState'),
    "The pool's lifecycle state: 1 for the current one.",
    POOL_STATES,
    (m) => m.state,
  );

  function stateGauge(
    metricName: string,
    help: string,
    states: readonly string[],
    current: (m: PoolMetrics) => string,
  ): void {
    new Gauge({
      name: metricName,
      help,
      labelNames: [...POOL_LABELS, STATE_LABEL],
      registers,
      collect() {
        this.reset();
        for (const { labels, metrics } of reader.read()) {
          const now = current(metrics);
          for (const state of states) this.set({ ...labels, [STATE_LABEL]: state }, state === now ? 1 : 0);
        }
      },
    });
  }

  let registered = true;
  return () => {
    if (!registered) return;
    registered = false;
    for (const key of Object.keys(METRIC_NAMES) as PoolMetricKey[]) registry.removeSingleMetric(name(key));
  };
}

/**
 * Reads every pool once per scrape: the Registry calls all collectors in the same tick, so the pools'
 * snapshots are taken once and shared by them, and dropped right after.
 */
class ScrapeReader {
  readonly #source: PoolMetricsSource;
  readonly #useTimeOn = new WeakSet<MetricsPool>();
  #current: PoolReading[] | undefined;

  constructor(source: PoolMetricsSource) {
    this.#source = source;
  }

  read(): PoolReading[] {
    if (this.#current !== undefined) return this.#current;
    const readings = this.enableUseTime().flatMap((pool) =>
      physicalPools(pool).map(({ member, role }) => ({
        pool: member,
        labels: {
          [POOL_NAME_LABEL]: member.name,
          [BACKEND_LABEL]: member.backend ?? pool.backend ?? '',
          [POOL_GROUP_LABEL]: pool.name,
          [POOL_ROLE_LABEL]: role,
        },
        metrics: member.metrics(),
      })),
    );
    this.#current = readings;
    queueMicrotask(() => {
      this.#current = undefined;
    });
    return readings;
  }

  /**
   * The source's pools, with use-time tracking turned on for any seen for the first time (a routed pool
   * turns it on for every member).
   */
  enableUseTime(): MetricsPool[] {
    const pools = resolvePools(this.#source);
    for (const pool of pools) {
      if (this.#useTimeOn.has(pool)) continue;
      this.#useTimeOn.add(pool);
      pool.trackUseTime(true);
    }
    return pools;
  }
}

/** The pools behind `pool` that hold connections: itself, or its primary, replicas and shards. */
function physicalPools(pool: MetricsPool): { member: MetricsPool; role: PoolMemberRole }[] {
  if (!isRoutedPool(pool)) return [{ member: pool, role: 'primary' }];
  return listPoolMembers(pool as unknown as ManagedPool).map(({ pool: member, role }) => ({ member, role }));
}
