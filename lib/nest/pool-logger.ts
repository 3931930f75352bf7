/**
 * PoolLogger: a pool's events as log lines, at levels an operator expects and in bounded numbers.
 *
 * - lifecycle (`ready`, `paused`, `resumed`, `draining`, `closed`) at `log`;
 * - a leaked lease at `warn`, with the stack of the acquire() that took it;
 * - failed connection attempts: the first at `error`, repeats summarized at most once per
 *   `summaryIntervalMs` (on the next failure after it, so no timer), then one `log` line on recovery;
 * - the circuit breaker: `open` (warn), the first `half-open` probe and `closed` (log) once per outage,
 *   however many probes fail in between;
 * - other errors (a connection dropped, a failed reset/validation/destroy, a throwing listener) at `warn`,
 *   throttled per phase the same way.
 *
 * Errors reaching the events are already redacted by the backend; the sink scrubs URIs once more.
 */
import type {
  PoolErrorContext,
  PoolErrorPhase,
  PoolEventListener,
  PoolEventName,
  PoolLeakInfo,
  PoolMetrics,
  PoolStateChange,
} from '../core/index.js';
import { FailureThrottle } from './failure-throttle.js';
import type { PoolLogSink } from './pool-log-sink.js';

/** What the logger needs from a pool: any BackendPool. */
export interface LoggablePool {
  readonly name: string;
  readonly backend: string;
  /** Where it connects, credentials redacted. */
  readonly target: string;
  metrics(): PoolMetrics;
  on<K extends PoolEventName>(event: K, listener: PoolEventListener<unknown, K>): unknown;
  off<K extends PoolEventName>(event: K, listener: PoolEventListener<unknown, K>): unknown;
}

export interface PoolLoggerOptions {
  /** Minimum time between two lines about the same repeating failure. Default 30 s. */
  summaryIntervalMs?: number;
  /** The clock (ms), for tests. */
  now?: () => number;
}

export const DEFAULT_LOG_SUMMARY_INTERVAL_MS = 30_000;

export class PoolLogger {
  readonly #pool: LoggablePool;
  readonly #sink: PoolLogSink;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #throttles = new Map<PoolErrorPhase, FailureThrottle>();
  /** The circuit left `closed` and has not closed again yet. */
  #outageSince: number | undefined;
  #probeLogged = false;
  #attached = false;

  constructor(pool: LoggablePool, sink: PoolLogSink, options: PoolLoggerOptions = {}) {
    this.#pool = pool;
    this.#sink = sink;
    this.#intervalMs = options.summaryIntervalMs ?? DEFAULT_LOG_SUMMARY_INTERVAL_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Subscribes to the pool's events (idempotent). */
  attach(): this {
    if (this.#attached) return this;
    this.#attached = true;
    this.#pool.on('state', this.#onState);
    this.#pool.on('error', this.#onError);
    this.#pool.on('leak', this.#onLeak);
    this.#pool.on('create', this.#onCreate);
    return this;
  }

  detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    this.#pool.off('state', this.#onState);
    this.#pool.off('error', this.#onError);
    this.#pool.off('leak', this.#onLeak);
    this.#pool.off('create', this.#onCreate);
  }

  readonly #onState = (change: PoolStateChange): void => {
    if (change.circuit !== change.previousCircuit) this.#circuitChanged(change);
    if (change.state === change.previousState) return;
    const m = this.#pool.metrics();
    switch (change.state) {
      case 'ready':
        // resume() after pause() or drain(); a pool that was `starting` is ready for the first time.
        if (change.previousState === 'paused' || change.previousState === 'draining')
          this.#sink.write('log', 'resumed');
        else
          this.#sink.write(
            'log',
            `ready (${this.#pool.backend} at ${this.#pool.target}; ${plural(m.size, 'connection')} open, max ${m.max})`,
          );
        break;
      case 'paused':
        this.#sink.write('log', 'paused: no new leases until resume()');
        break;
      case 'draining':
        this.#sink.write('log', `draining (${plural(m.active, 'connection')} lent)`);
        break;
      case 'closed':
        this.#sink.write('log', 'closed');
        break;
      case 'starting':
        break;
    }
  };

  #circuitChanged(change: PoolStateChange): void {
    if (change.circuit === 'open' && this.#outageSince === undefined) {
      this.#outageSince = this.#now();
      this.#probeLogged = false;
      this.#sink.write(
        'warn',
        `circuit open after ${plural(this.#pool.metrics().createErrors, 'failed connection attempt')} in total: ` +
          'acquires that no connection can serve fail at once (PoolUnavailableError) until a probe connects',
      );
    } else if (change.circuit === 'half-open' && !this.#probeLogged) {
      this.#probeLogged = true;
      this.#sink.write('log', 'circuit half-open: probing the server with one connection attempt');
    } else if (change.circuit === 'closed' && this.#outageSince !== undefined) {
      const seconds = formatSeconds(this.#now() - this.#outageSince);
      this.#outageSince = undefined;
      this.#sink.write('log', `circuit closed: connection attempts succeed again (was open for ${seconds})`);
    }
  }

  readonly #onError = (error: Error, { phase }: PoolErrorContext): void => {
    const report = this.#throttle(phase).failure(error.message);
    if (phase === 'create') {
      const target = this.#pool.target;
      if (report.kind === 'first') {
        this.#sink.write(
          'error',
          `cannot connect to ${target}: ${report.message} (retrying with backoff; repeats are summarized every ${formatSeconds(this.#intervalMs)})`,
        );
      } else if (report.kind === 'summary') {
        this.#sink.write(
          'error',
          `still cannot connect to ${target}: ${plural(report.suppressed, 'more failed attempt')} in the last ` +
            `${formatSeconds(report.windowMs)} (${report.total} in ${formatSeconds(report.sinceMs)}); last error: ${report.message}`,
        );
      }
      return;
    }
    if (report.kind === 'first') this.#sink.write('warn', `${phase} error: ${report.message}`);
    else if (report.kind === 'summary') {
      this.#sink.write(
        'warn',
        `${phase} error: ${report.message} (${report.suppressed} more in the last ${formatSeconds(report.windowMs)})`,
      );
    }
  };

  readonly #onCreate = (): void => {
    const recovery = this.#throttles.get('create')?.success();
    if (recovery === undefined) return;
    this.#sink.write(
      'log',
      `connected to ${this.#pool.target} again: recovered after ${plural(recovery.failures, 'failed attempt')} in ${formatSeconds(recovery.durationMs)}`,
    );
  };

  readonly #onLeak = (leak: PoolLeakInfo): void => {
    this.#sink.write(
      'warn',
      `possible connection leak: a lease has been held for ${leak.heldMs} ms without being released; acquired at:\n${leak.stack}`,
    );
  };

  #throttle(phase: PoolErrorPhase): FailureThrottle {
    let throttle = this.#throttles.get(phase);
    if (throttle === undefined) {
      throttle = new FailureThrottle({ intervalMs: this.#intervalMs, now: this.#now });
      this.#throttles.set(phase, throttle);
    }
    return throttle;
  }
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function formatSeconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}
