/**
 * Records every call the chaos callers make: when it started, when it settled, in which phase, and how
 * (a result, or an error kind). Storage is preallocated typed arrays, so recording tens of thousands of
 * calls does not grow the heap the suite measures for leaks.
 */
import { types } from 'node:util';
import { PoolError } from '../../lib/index.js';

const OK = 0;

export interface CallSummary {
  requests: number;
  results: number;
  errors: Record<string, number>;
  lost: number;
  slowestMs: number;
}

export class CallRecorder {
  readonly #startedAt: Float64Array;
  readonly #endedAt: Float64Array;
  readonly #phase: Uint8Array;
  readonly #kind: Uint16Array;
  readonly #kinds: string[] = ['ok'];
  readonly #kindIds = new Map<string, number>([['ok', OK]]);
  /** Errors that were not Error objects (a thrown string, undefined, ...): must stay empty. */
  readonly untyped: string[] = [];
  #count = 0;
  /** Phase a call starting now belongs to. */
  phase = 0;

  constructor(readonly capacity: number) {
    this.#startedAt = new Float64Array(capacity);
    this.#endedAt = new Float64Array(capacity).fill(Number.NaN);
    this.#phase = new Uint8Array(capacity);
    this.#kind = new Uint16Array(capacity);
  }

  get count(): number {
    return this.#count;
  }

  /** Starts a call; returns its slot, or -1 once the capacity is used up (the run then fails). */
  start(): number {
    const slot = this.#count;
    if (slot >= this.capacity) return -1;
    this.#count++;
    this.#startedAt[slot] = performance.now();
    this.#phase[slot] = this.phase;
    return slot;
  }

  succeed(slot: number): void {
    if (slot < 0) return;
    this.#endedAt[slot] = performance.now();
    this.#kind[slot] = OK;
  }

  fail(slot: number, error: unknown): void {
    if (slot < 0) return;
    this.#endedAt[slot] = performance.now();
    this.#kind[slot] = this.#kindId(errorKind(error, this.untyped));
  }

  /** Counts for the calls started in `phase`. */
  summary(phase: number): CallSummary {
    const summary: CallSummary = { requests: 0, results: 0, errors: {}, lost: 0, slowestMs: 0 };
    for (let i = 0; i < this.#count; i++) {
      if (this.#phase[i] !== phase) continue;
      summary.requests++;
      const ended = this.#endedAt[i]!;
      if (Number.isNaN(ended)) {
        summary.lost++;
        continue;
      }
      summary.slowestMs = Math.max(summary.slowestMs, ended - this.#startedAt[i]!);
      const kind = this.#kind[i]!;
      if (kind === OK) summary.results++;
      else {
        const name = this.#kinds[kind]!;
        summary.errors[name] = (summary.errors[name] ?? 0) + 1;
      }
    }
    summary.slowestMs = Math.round(summary.slowestMs);
    return summary;
  }

  /** End times (ascending) of successful calls that ended in [from, to) and started at or after `startedFrom`. */
  successEnds(from: number, to: number, startedFrom = -Infinity): number[] {
    const ends: number[] = [];
    for (let i = 0; i < this.#count; i++) {
      const ended = this.#endedAt[i]!;
      if (this.#kind[i] === OK && ended >= from && ended < to && this.#startedAt[i]! >= startedFrom) {
        ends.push(ended);
      }
    }
    return ends.sort((a, b) => a - b);
  }

  #kindId(kind: string): number {
    let id = this.#kindIds.get(kind);
    if (id === undefined) {
      id = this.#kinds.length;
      this.#kinds.push(kind);
      this.#kindIds.set(kind, id);
    }
    return id;
  }
}

/**
 * `error.name`, plus the `code` Node and the drivers put on socket/server errors (PoolConnectionError copies
 * its cause's), or a bare Error's message; prefixed with "not a PoolError: " unless it is one of the pool's
 * typed errors. Non-Errors are recorded as untyped.
 */
function errorKind(error: unknown, untyped: string[]): string {
  // Node's own errors come from outside Jest's module realm: instanceof Error is false for them.
  if (!(error instanceof Error || types.isNativeError(error))) {
    untyped.push(String(error));
    return 'non-Error';
  }
  const code = (error as { code?: unknown }).code;
  // Only the pool's typed errors are expected: anything else (a driver's own error) is marked as such.
  const typed = error instanceof PoolError ? '' : 'not a PoolError: ';
  if (typeof code === 'string' || typeof code === 'number') return `${typed}${error.name} (${code})`;
  // A bare Error says nothing by its name: its message is the kind (drivers' "Connection is closed." etc.).
  if (error.name === 'Error') return `${typed}Error: ${error.message.slice(0, 80)}`;
  return `${typed}${error.name}`;
}
