/**
 * Small helpers shared by the scenarios: statistics, number formatting, plain-text tables and the list of
 * pass/fail checks that ends up in the summary and the JSON output.
 */

export interface Check {
  scenario: string;
  name: string;
  /** The measured value the target applies to. */
  value: number;
  /** The value as shown in the tables, e.g. "5.12×" or "-120.0 kB". */
  shown: string;
  /** Human-readable target, e.g. "≥ 5×". */
  target: string;
  pass: boolean;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Median of the per-round ratios a[i] / b[i]: each round's two figures were measured moments apart, so a
 * machine that speeds up or slows down between rounds moves both and cancels out.
 */
export function pairedRatio(a: readonly number[], b: readonly number[]): number {
  return median(a.map((value, i) => value / b[i]!));
}

/** Relative spread of the samples: (max - min) / median. */
export function spread(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  return (Math.max(...values) - Math.min(...values)) / median(values);
}

export function formatOps(opsPerSecond: number): string {
  if (!Number.isFinite(opsPerSecond)) return 'n/a';
  if (opsPerSecond >= 1e6) return `${(opsPerSecond / 1e6).toFixed(2)} M/s`;
  if (opsPerSecond >= 1e3) return `${(opsPerSecond / 1e3).toFixed(1)} k/s`;
  return `${opsPerSecond.toFixed(1)} /s`;
}

export function formatRatio(ratio: number): string {
  return Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : 'n/a';
}

export function formatBytes(bytes: number): string {
  const sign = bytes < 0 ? '-' : '';
  const abs = Math.abs(bytes);
  if (abs >= 1024 * 1024) return `${sign}${(abs / 1024 / 1024).toFixed(2)} MB`;
  if (abs >= 1024) return `${sign}${(abs / 1024).toFixed(1)} kB`;
  return `${sign}${abs} B`;
}

export function verdict(pass: boolean): string {
  return pass ? 'PASS' : 'FAIL';
}

/** Renders rows as an aligned table: first column left-aligned, the others right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), rule, ...rows.map(line)].join('\n');
}

export function heading(title: string): string {
  return `\n${title}\n${'='.repeat(title.length)}`;
}

/** Forces a full collection (twice, with a turn of the event loop between so weak callbacks run). */
export async function collectGarbage(): Promise<void> {
  const gc = globalThis.gc;
  if (gc === undefined) return;
  gc();
  await new Promise<void>((resolve) => setImmediate(resolve));
  gc();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
