/**
 * A prom-client Histogram whose values come from the pools' own histograms at scrape time, instead of
 * `observe()` calls: the engine already records every wait/create/use duration in fixed memory, so the
 * exporter only converts its snapshot (ms, per bucket) into Prometheus' form (seconds, cumulative).
 */
import { Histogram, type Registry } from 'prom-client';
import type { HistogramSnapshot } from '../core/index.js';

type Labels = Record<string, string>;

/** One labelled series: the labels identifying it and the snapshot to expose. */
export interface HistogramSeries {
  readonly labels: Labels;
  readonly snapshot: HistogramSnapshot;
}

interface SampleValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

export interface SnapshotHistogramConfiguration {
  name: string;
  help: string;
  labelNames: readonly string[];
  registry: Registry;
  /** Called at every scrape. */
  read: () => HistogramSeries[];
}

/** The metric object prom-client's Registry renders. */
interface HistogramExport {
  name: string;
  help: string;
  type: 'histogram';
  aggregator: 'sum';
  values: SampleValue[];
}

export class SnapshotHistogram extends Histogram<string> {
  readonly #name: string;
  readonly #help: string;
  readonly #read: () => HistogramSeries[];

  constructor(configuration: SnapshotHistogramConfiguration) {
    super({
      name: configuration.name,
      help: configuration.help,
      labelNames: [...configuration.labelNames],
      registers: [configuration.registry],
    });
    this.#name = configuration.name;
    this.#help = configuration.help;
    this.#read = configuration.read;
  }

  override async get(): ReturnType<Histogram<string>['get']> {
    return this.#export() as unknown as Awaited<ReturnType<Histogram<string>['get']>>;
  }

  /** What the Registry reads for the text format (it prefers this over `get()` when a metric has it). */
  async getForPromString(): Promise<HistogramExport> {
    return this.#export();
  }

  #export(): HistogramExport {
    const values: SampleValue[] = [];
    for (const { labels, snapshot } of this.#read())
      values.push(...toPrometheus(this.#name, labels, snapshot));
    return { name: this.#name, help: this.#help, type: 'histogram', aggregator: 'sum', values };
  }
}

/** Buckets in seconds, cumulative, then `+Inf`, `_sum` and `_count`. */
export function toPrometheus(name: string, labels: Labels, snapshot: HistogramSnapshot): SampleValue[] {
  const values: SampleValue[] = [];
  let cumulative = 0;
  snapshot.boundsMs.forEach((boundMs, i) => {
    cumulative += snapshot.counts[i] ?? 0;
    values.push({
      labels: { ...labels, le: msToSeconds(boundMs) },
      value: cumulative,
      metricName: `${name}_bucket`,
    });
  });
  values.push(
    { labels: { ...labels, le: '+Inf' }, value: snapshot.count, metricName: `${name}_bucket` },
    { labels: { ...labels }, value: snapshot.sumMs / 1000, metricName: `${name}_sum` },
    { labels: { ...labels }, value: snapshot.count, metricName: `${name}_count` },
  );
  return values;
}

/** 2.5 ms → 0.0025, without binary floating-point noise in the `le` label. */
function msToSeconds(ms: number): number {
  return Number((ms / 1000).toPrecision(12));
}
