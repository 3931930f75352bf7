/**
 * Circuit breaker over connection attempts. Closed: attempts flow (with backoff). After
 * `failureThreshold` consecutive failures it opens: no attempts, and callers that nothing could serve fail
 * at once. After `resetTimeoutMs` it turns half-open and lets exactly one probe through; the probe's
 * success closes it, its failure opens it again.
 */
import type { ResolvedCircuitBreaker } from './pool-options.js';
import type { PoolCircuitState } from './pool-metrics.js';

export class CircuitBreaker {
  private current: PoolCircuitState = 'closed';
  private consecutiveFailures = 0;
  private probeInFlight = false;
  private resetTimer: ReturnType<typeof setTimeout> | null = null;
  /** Set when its pool closes: from then on it arms no timer and reports no change. */
  private disposed = false;

  constructor(
    private readonly options: ResolvedCircuitBreaker,
    /** Told about every state change; the pool re-emits it and, on half-open, probes if anyone waits. */
    private readonly onChange: (state: PoolCircuitState, previous: PoolCircuitState) => void,
  ) {}

  get state(): PoolCircuitState {
    return this.current;
  }

  /** May a connection attempt start now? In half-open, claims the single probe slot. */
  tryAcquireAttempt(): boolean {
    if (this.current === 'closed') return true;
    if (this.current === 'open' || this.probeInFlight) return false;
    this.probeInFlight = true;
    return true;
  }

  onSuccess(): void {
    this.consecutiveFailures = 0;
    this.probeInFlight = false;
    if (this.current !== 'closed') this.transition('closed');
  }

  onFailure(): void {
    this.consecutiveFailures++;
    const wasProbe = this.probeInFlight;
    this.probeInFlight = false;
    if (
      wasProbe ||
      (this.current === 'closed' && this.consecutiveFailures >= this.options.failureThreshold)
    ) {
      this.open();
    }
  }

  /** An attempt that neither succeeded nor failed (aborted by close): free the probe slot. */
  onAbandoned(): void {
    this.probeInFlight = false;
  }

  dispose(): void {
    this.disposed = true;
    this.clearResetTimer();
  }

  private clearResetTimer(): void {
    if (this.resetTimer !== null) clearTimeout(this.resetTimer);
    this.resetTimer = null;
  }

  private open(): void {
    if (this.disposed) return;
    this.clearResetTimer();
    this.resetTimer = setTimeout(() => {
      this.resetTimer = null;
      this.transition('half-open');
    }, this.options.resetTimeoutMs);
    this.resetTimer.unref();
    if (this.current !== 'open') this.transition('open');
  }

  private transition(next: PoolCircuitState): void {
    if (this.disposed) return;
    const previous = this.current;
    this.current = next;
    this.onChange(next, previous);
  }
}
