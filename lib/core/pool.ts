/**
 * Pool<T>: the backend-agnostic engine (HikariCP's HikariPool). It owns the connections, lends them through
 * leases, queues callers fairly, creates connections in the background with backoff and a circuit breaker,
 * and retires them by idle time, lifetime, use count or failed validation.
 *
 * Hot path (acquire from idle + release to idle): no clock reads but a cached coarse one, no timers, no
 * allocation beyond the lease and its resolved promise, events only when someone listens.
 */
import { CircuitBreaker } from './circuit-breaker.js';
import { coarseClockCell, coarseNow, coarseReading, preciseNow } from './coarse-clock.js';
import { createBackoffDelay } from './create-backoff.js';
import { DeadlineTimer } from './deadline-timer.js';
import { DynamicSizer } from './dynamic-sizer.js';
import { LatencyHistogram } from './latency-histogram.js';
import { Lease, type LeaseOwner } from './lease.js';
import type { PoolConnectionInfo, PoolConnectionState } from './pool-connection-info.js';
import {
  PoolClosedError,
  PoolConfigError,
  PoolCreateTimeoutError,
  PoolError,
  PoolQueueFullError,
  PoolTimeoutError,
  PoolUnavailableError,
} from './pool-errors.js';
import { PoolEventEmitter, toError, type DestroyReason } from './pool-events.js';
import type { PoolCircuitState, PoolHistograms, PoolMetrics, PoolState } from './pool-metrics.js';
import {
  MAX_TIMER_MS,
  resolvePoolOptions,
  type PoolFactory,
  type PoolOptions,
  type ResolvedPoolOptions,
} from './pool-options.js';
import { PooledConnection, type ConnectionState } from './pooled-connection.js';
import { WaitQueue } from './wait-queue.js';
import { promiseFor, Waiter } from './waiter.js';
import { sharedClock, sharedClockCell } from './shared-clock.js';

export type { PoolConnectionInfo, PoolConnectionState } from './pool-connection-info.js';
export type { HistogramSnapshot } from './latency-histogram.js';
export type { PoolHistograms } from './pool-metrics.js';

export interface AcquireOptions {
  /** Overrides `acquireTimeoutMs` for this call. */
  timeoutMs?: number;
  /** Higher is served first; equal priorities are served in arrival order. Default 0. */
  priority?: number;
  /** Aborting removes the caller from the queue; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface DrainOptions {
  /** How long to wait for lent connections to come back. Default 10000. */
  timeoutMs?: number;
}

export interface DrainResult {
  /** True when every lease came back within the timeout. */
  drained: boolean;
  /** Connections still lent when drain() resolved. */
  active: number;
}

export interface CloseOptions {
  /** How long to wait for lent connections before destroying them anyway. Default 5000. */
  timeoutMs?: number;
}

export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
export const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;

/** One connection attempt in flight; `abandon` settles it early (timeout, close). */
interface CreateAttempt {
  abandon(error: Error): void;
}

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

export class Pool<T> extends PoolEventEmitter<T> implements LeaseOwner<T>, AsyncDisposable {
  readonly name: string;
  /** The validated options (durations that are "off" read as Infinity). */
  readonly options: Readonly<ResolvedPoolOptions>;

  private readonly factory: PoolFactory<T>;
  private currentState: PoolState = 'starting';
  /** currentState is 'ready' or 'starting': the pool hands out connections (one load on the hot path). */
  private lending = true;
  /** start() has run: from then on the pool keeps `min` connections. */
  private started = false;

  private readonly entries = new Set<PooledConnection<T>>();
  /** Idle connections, least recently returned first. */
  private readonly idle: PooledConnection<T>[] = [];
  private lent = 0;
  private pendingCreates = 0;
  /** Idle connections taken out to be validated for a waiter; each will serve one. */
  private validatingForBorrow = 0;

  private readonly waiters = new WaitQueue<T>();
  private readonly deadlines = new DeadlineTimer<Waiter<T>>(
    {
      stamp: (now) => this.waiters.stamp(now, this.addToHeap),
      expire: (now) => this.waiters.expire(now, this.expireWaiter),
    },
    (waiter) => this.expireWaiter(waiter),
  );
  private readonly addToHeap = (waiter: Waiter<T>): void => this.deadlines.add(waiter);
  private readonly breaker: CircuitBreaker | null;
  private readonly createAttempts = new Set<CreateAttempt>();
  /** A fail-fast start's workers waiting for a create slot (see warm()). */
  private createSlotWaiters: Array<() => void> = [];
  private consecutiveCreateFailures = 0;
  private lastCreateError: Error | undefined;
  private nextCreateAt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private retryAt = Infinity;
  private housekeepingTimer: ReturnType<typeof setTimeout> | null = null;
  private housekeepingAt = Infinity;

  /** Background work (destroys, validations, resets, creates) that close() waits for. */
  private readonly inFlight = new Set<Promise<void>>();
  private startPromise: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  /** Callbacks waiting for "nothing lent or returning" (drain/close); null when nobody waits. */
  private drainWatchers: (() => void)[] | null = null;
  private nextConnectionId = 1;
  /** Leases revoked by close() (their connection destroyed while still lent): never released. */
  private revokedLeases = 0;

  private readonly waitHistogram = new LatencyHistogram();
  private readonly createHistogram = new LatencyHistogram();
  private readonly useHistogram = new LatencyHistogram();
  /** Lease hold times are measured (two precise clock reads per lease) only while this is on. */
  private trackingUse: boolean;
  /**
   * Holds that measure 0 (lent and returned within one shared clock reading, most of them on a busy pool) are
   * not recorded one by one but counted when the histogram is read: the measured returns that recorded
   * nothing. These three give that count: returns measured in earlier tracking periods, `totals.released`
   * when tracking last turned on, and the returns since then of leases lent before (not measured).
   */
  private trackedReturnsBefore = 0;
  private releasedWhenTrackingOn = 0;
  private untrackedReturns = 0;
  /** Counters of metrics(); `acquired` is derived: released + lent + revoked (one increment fewer per lend). */
  private readonly totals = {
    created: 0,
    released: 0,
    timeouts: 0,
    createErrors: 0,
    validationFailures: 0,
    leaks: 0,
  };
  private readonly destroyedBy: Record<DestroyReason, number> = {
    idle: 0,
    lifetime: 0,
    validation: 0,
    error: 0,
    maxUses: 0,
    close: 0,
  };

  // Hot-path copies of options.
  private readonly lifo: boolean;
  private readonly validateOnBorrow: boolean;
  private readonly bypassMs: number;
  /** How long idle before borrowing validates it: bypassMs, or -Infinity with no window (always). */
  private readonly validateAfterIdleMs: number;
  /** coarseClockCell, held here: a field load is cheaper than a module binding's (a live import's cell). */
  private readonly clock = coarseClockCell;
  /** sharedClock, held here for the same reason (use-time tracking reads it on every lend and return). */
  private readonly useClock = sharedClock;
  private readonly useReading = sharedClockCell;
  private readonly returnWork: boolean;
  private readonly maxUses: number;
  private readonly leakDetectionMs: number;
  /** Only with dynamicSizing: moves the floor of kept connections (`min` otherwise). */
  private readonly sizer: DynamicSizer | null;
  /**
   * Something watches lends / returns (dynamic sizing, leak detection, listeners): one flag each, so that a
   * pool with none of them pays one load and branch per lease, and lend() and returnLease() stay small enough
   * for V8 to inline the whole acquire/release path into the caller. Use-time tracking stays inline: a pool
   * that measures does it on every lease, and a call out would cost it more than the measuring.
   */
  private observingLend = false;
  private observingReturn = false;

  constructor(options: PoolOptions<T>) {
    super();
    const resolved = resolvePoolOptions(options);
    this.options = Object.freeze(resolved);
    this.name = resolved.name;
    this.factory = resolved.factory as PoolFactory<T>;
    this.lifo = resolved.order === 'lifo';
    this.validateOnBorrow = resolved.validateOnBorrow;
    this.bypassMs = resolved.validationBypassMs;
    this.validateAfterIdleMs = this.bypassMs > 0 ? this.bypassMs : -Infinity;
    this.returnWork = this.factory.reset !== undefined || resolved.testOnReturn;
    this.maxUses = resolved.maxUses;
    this.leakDetectionMs = resolved.leakDetectionMs;
    this.trackingUse = resolved.trackUseTime;
    this.sizer =
      resolved.dynamicSizing === false
        ? null
        : new DynamicSizer(
            { min: resolved.min, max: resolved.max, ...resolved.dynamicSizing },
            {
              currentDemand: () => this.entries.size - this.idle.length + this.waiters.size,
              targetChanged: (target, previous) => this.onTargetChange(target, previous),
            },
          );
    this.refreshObservers();
    this.breaker =
      resolved.circuitBreaker === false
        ? null
        : new CircuitBreaker(resolved.circuitBreaker, (circuit, previous) =>
            this.onCircuitChange(circuit, previous),
          );
  }

  get state(): PoolState {
    return this.currentState;
  }

  // ---------------------------------------------------------------------------------------------------
  // Lifecycle
  // ---------------------------------------------------------------------------------------------------

  /**
   * Warms the pool. `fail-fast`: opens max(min, 1) connections and rejects with PoolUnavailableError if one
   * fails or `startupTimeoutMs` passes (the pool stays usable; start() may be called again). `lazy`:
   * resolves at once and fills `min` in the background. Idempotent.
   */
  start(): Promise<void> {
    if (this.currentState === 'closed') return Promise.reject(this.closedError());
    this.startPromise ??= this.options.startup === 'lazy' ? this.startLazy() : this.startFailFast();
    return this.startPromise;
  }

  private startLazy(): Promise<void> {
    this.markStarted();
    return Promise.resolve();
  }

  private async startFailFast(): Promise<void> {
    const target = Math.max(this.options.min, 1) - this.entries.size;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new PoolUnavailableError(
              this.name,
              `start-up did not complete within ${this.options.startupTimeoutMs} ms`,
              {
                cause: this.lastCreateError,
              },
            ),
          ),
        this.options.startupTimeoutMs,
      );
      timer.unref();
    });
    const run = { cancelled: false };
    const warming = this.warm(target, run);
    warming.catch(noop); // if the timeout wins, a later failure must not surface as an unhandled rejection
    try {
      await Promise.race([warming, timeout]);
    } catch (error) {
      this.startPromise = undefined;
      if (this.currentState === 'closed') throw this.closedError();
      if (error instanceof PoolUnavailableError) throw error;
      const cause = toError(error);
      throw new PoolUnavailableError(this.name, `could not open a connection at start-up: ${cause.message}`, {
        cause,
      });
    } finally {
      clearTimeout(timer);
      // A start that timed out stops opening connections: a retried start() must not add to its attempts.
      run.cancelled = true;
      if (this.createSlotWaiters.length > 0) this.wakeCreateSlotWaiters();
    }
    if (this.currentState === 'closed') throw this.closedError();
    this.markStarted();
  }

  /**
   * Opens `count` connections for a fail-fast start; rejects on the first failure. Goes through the same
   * gates as fill(): at most `maxConcurrentCreates` attempts in flight (counting those made for waiters and by
   * an earlier start that timed out), none before the backoff allows, none while the circuit is open.
   */
  private async warm(count: number, run: { cancelled: boolean }): Promise<void> {
    let remaining = count;
    const worker = async (): Promise<void> => {
      while (remaining > 0 && !run.cancelled && this.currentState !== 'closed') {
        if (this.entries.size + this.pendingCreates >= this.options.max) return;
        // As in fill(): while attempts are failing, one at a time.
        const concurrency = this.consecutiveCreateFailures > 0 ? 1 : this.options.maxConcurrentCreates;
        if (this.pendingCreates >= concurrency) {
          await this.createSlotFreed();
          continue;
        }
        if (this.breaker !== null && this.breaker.state !== 'closed') {
          if (this.breaker.state === 'open') throw this.unavailableError();
          // Half-open: one probe at a time. Another worker's (or fill()'s) is out; wait for its verdict.
          if (!this.breaker.tryAcquireAttempt()) {
            await this.createSlotFreed();
            continue;
          }
        } else {
          const backoff = this.nextCreateAt - preciseNow();
          if (backoff > 0) {
            await this.createSlotFreed(backoff);
            continue;
          }
        }
        remaining--;
        await this.attemptCreate(run);
      }
    };
    const workers = Array.from({ length: Math.min(count, this.options.maxConcurrentCreates) }, worker);
    await Promise.all(workers);
  }

  /**
   * Resolves when a connection attempt settles, the pool closes or a start times out (a create slot may be
   * free, or the worker should stop), or after `timeoutMs` (the backoff). That timer is ref'd, unlike the
   * pool's own: the caller awaits start(), so the process must stay up; it is cleared on any wake-up.
   */
  private createSlotFreed(timeoutMs?: number): Promise<void> {
    return new Promise((resolve) => {
      if (timeoutMs === undefined) {
        this.createSlotWaiters.push(resolve);
        return;
      }
      const timer = setTimeout(wake, timeoutMs);
      function wake(): void {
        clearTimeout(timer);
        resolve();
      }
      this.createSlotWaiters.push(wake);
    });
  }

  private markStarted(): void {
    this.started = true;
    this.sizer?.start();
    if (this.currentState === 'starting') this.setState('ready');
    this.fill();
  }

  /** Stops lending: new acquires queue until resume(). Returned connections go idle. */
  pause(): void {
    if (this.lending) this.setState('paused');
  }

  /** Lends again after pause() or drain(). */
  resume(): void {
    if (this.currentState !== 'paused' && this.currentState !== 'draining') return;
    this.setState(this.started ? 'ready' : 'starting');
    this.dispatch();
    this.fill();
  }

  /**
   * Stops lending (waiting and new callers get PoolClosedError) and waits up to `timeoutMs` for lent
   * connections to come back. Idle connections stay open; follow with close(), or resume().
   */
  async drain(options?: DrainOptions): Promise<DrainResult> {
    const timeoutMs =
      checkDuration(this.name, 'drain.timeoutMs', options?.timeoutMs) ?? DEFAULT_DRAIN_TIMEOUT_MS;
    if (this.currentState !== 'closed' && this.currentState !== 'draining') {
      this.setState('draining');
      this.rejectAllWaiters(new PoolClosedError(this.name, 'is draining; no connections are lent'));
    }
    const drained = await this.waitUntilNothingLent(timeoutMs);
    return { drained, active: this.lent };
  }

  /**
   * Closes the pool: rejects waiters with PoolClosedError, destroys idle connections at once and lent ones
   * when they come back (or after `timeoutMs`, revoking their leases). Destroys every connection exactly
   * once, waits for that, and is idempotent. Safe while start() is still running.
   */
  close(options?: CloseOptions): Promise<void> {
    if (this.closePromise === undefined) {
      let timeoutMs: number;
      try {
        timeoutMs =
          checkDuration(this.name, 'close.timeoutMs', options?.timeoutMs) ?? DEFAULT_CLOSE_TIMEOUT_MS;
      } catch (error) {
        return Promise.reject(error);
      }
      this.closePromise = this.closeNow(timeoutMs);
    }
    return this.closePromise;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async closeNow(timeoutMs: number): Promise<void> {
    const startedAt = preciseNow();
    this.setState('closed');
    this.breaker?.dispose();
    this.sizer?.close();
    this.clearTimer('retry');
    this.clearTimer('housekeeping');
    this.deadlines.clear();
    this.rejectAllWaiters(this.closedError());
    const closed = this.closedError();
    for (const attempt of [...this.createAttempts]) attempt.abandon(closed);
    this.wakeCreateSlotWaiters(); // a start() still warming sees the pool closed
    for (const entry of this.idle.splice(0)) this.destroyEntry(entry, 'close');

    await this.waitUntilNothingLent(timeoutMs);
    // Whatever is still out (lent past the timeout, or being validated) is destroyed now; its lease is revoked.
    for (const entry of [...this.entries]) this.destroyEntry(entry, 'close');
    this.notifyIfNothingLent(); // a drain() still waiting sees the revoked leases gone

    const remaining = Math.max(0, timeoutMs - (preciseNow() - startedAt));
    await this.settleInFlight(remaining + this.options.destroyTimeoutMs);
    sharedClock.reset();
  }

  /** Waits for background work (destroys are individually bounded by destroyTimeoutMs). */
  private async settleInFlight(timeoutMs: number): Promise<void> {
    const deadline = preciseNow() + timeoutMs;
    while (this.inFlight.size > 0) {
      const left = deadline - preciseNow();
      if (left <= 0) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(this.inFlight),
        new Promise<void>((resolve) => {
          timer = timerUnlessInfinite(resolve, left);
        }),
      ]);
      clearTimeout(timer);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Acquire / release
  // ---------------------------------------------------------------------------------------------------

  /**
   * Borrows a connection. Resolves with a Lease; rejects with PoolTimeoutError, PoolUnavailableError,
   * PoolClosedError, PoolQueueFullError, or the signal's reason.
   */
  acquire(options?: AcquireOptions): Promise<Lease<T>> {
    // Kept small, like lend() and returnLease(): V8 inlines by bytecode size, and the whole uncontended
    // acquire + release fits into the caller only if each step is short. Options take their own path.
    const stack = this.leakDetectionMs !== Infinity ? captureStack() : undefined;
    if (options !== undefined) return this.acquireWith(options, stack);
    if (this.lending && this.waiters.size === 0 && this.idle.length > 0)
      return this.lendIdle(undefined, stack);
    return this.enqueue(undefined, stack);
  }

  /** acquire() with options: checked first; an already-aborted signal rejects even with a connection idle. */
  private acquireWith(options: AcquireOptions, stack: string | undefined): Promise<Lease<T>> {
    const invalid = this.checkAcquireOptions(options);
    if (invalid !== undefined) return Promise.reject(invalid);
    if (this.lending && this.waiters.size === 0 && this.idle.length > 0) {
      const signal = options.signal;
      if (signal !== undefined && signal.aborted) return Promise.reject(signal.reason);
      return this.lendIdle(options, stack);
    }
    return this.enqueue(options, stack);
  }

  /**
   * Lends an idle connection at once or, when it is due for validation, validates it on this caller's
   * behalf: the caller waits in the queue meanwhile (at its head) and the validated connection is handed to
   * the head waiter.
   */
  private lendIdle(options: AcquireOptions | undefined, stack: string | undefined): Promise<Lease<T>> {
    const entry = this.lifo ? this.idle.pop()! : this.idle.shift()!;
    if (!this.validateOnBorrow || !this.validationMaybeDue(entry)) {
      this.waitHistogram.recordZero();
      return Promise.resolve(this.lend(entry, stack));
    }
    return this.validateOrLend(entry, options, stack);
  }

  /** lendIdle() for a connection that looks due: validated on the caller's behalf if it really is. */
  private validateOrLend(
    entry: PooledConnection<T>,
    options: AcquireOptions | undefined,
    stack: string | undefined,
  ): Promise<Lease<T>> {
    if (!this.validationConfirmedDue(entry)) {
      this.waitHistogram.recordZero();
      return Promise.resolve(this.lend(entry, stack));
    }
    this.startBorrowValidation(entry);
    return this.enqueue(options, stack);
  }

  /**
   * validateOnBorrow: may this idle connection be outside its bypass window (or is there none)? On the hot
   * path one load and one comparison, and nothing else, so that it stays within V8's inlining budget and the
   * whole uncontended acquire inlines into its caller (a call to the clock here cost ~5% of a 1-caller
   * acquire + release). A stopped ticker's reading (Infinity) looks due: validationConfirmedDue(), on the
   * slow path, then reads the clock properly, as it does for every connection that is due.
   */
  private validationMaybeDue(entry: PooledConnection<T>): boolean {
    return this.clock[0]! - entry.lastUsedAt >= this.validateAfterIdleMs;
  }

  private validationConfirmedDue(entry: PooledConnection<T>): boolean {
    return coarseReading() - entry.lastUsedAt >= this.validateAfterIdleMs;
  }

  /** Is this idle connection due for validation? The cheap check, then, if it says maybe, the clock. */
  private validationDue(entry: PooledConnection<T>): boolean {
    return this.validationMaybeDue(entry) && this.validationConfirmedDue(entry);
  }

  /** Acquires, runs `fn` with the connection, and always gives it back (destroyed if `isBroken` says so). */
  async use<R>(fn: (connection: T) => R | Promise<R>, options?: AcquireOptions): Promise<R> {
    const lease = await this.acquire(options);
    let result: R;
    try {
      result = await fn(lease.connection);
    } catch (error) {
      if (this.isBroken(lease.connection, error)) lease.destroy(error);
      else lease.release();
      throw error;
    }
    lease.release();
    return result;
  }

  /** Asks the factory whether `error` broke the connection; a throwing isBroken counts as broken. */
  isBroken(connection: T, error: unknown): boolean {
    const isBroken = this.factory.isBroken;
    if (isBroken === undefined) return false;
    try {
      return isBroken.call(this.factory, connection, error);
    } catch {
      return true;
    }
  }

  /**
   * Tells the pool a connection broke on its own (e.g. the driver reported a dead socket): an idle one is
   * destroyed at once (and `min` refilled), a lent or busy one when it comes back. Returns false for a
   * connection the pool doesn't hold.
   */
  evict(connection: T, reason?: unknown): boolean {
    for (const entry of this.entries) {
      if (entry.connection !== connection) continue;
      if (entry.state === 'idle') {
        this.retire(entry, 'error', reason);
      } else {
        entry.evicted = true;
      }
      return true;
    }
    return false;
  }

  /** @internal Called by Lease.release()/destroy(). */
  returnLease(lease: Lease<T>, destroy: boolean, reason: unknown): void {
    const entry = lease.entry;
    if (entry.borrowId !== lease.borrowId || entry.state !== 'lent') return; // revoked by close()
    // No longer 'lent' from here, so that retiring it below (destroy, evicted, used up, too old) does not
    // count the lease back a second time: only a connection destroyed while lent (close() revoking its
    // lease) is counted back in destroyEntry.
    entry.state = 'returning';
    this.lent--;
    this.totals.released++;
    // Returned under the reading it was lent under: held for 0, which histograms() counts without a record.
    if (this.trackingUse && entry.useStartedAt !== this.useReading[0]) this.recordUse(entry);
    if (this.observingReturn) this.observeReturn(entry);
    if (destroy || entry.evicted || this.returnWork) this.returnWithWork(entry, destroy, reason);
    else this.putBack(entry, false);
    if (this.drainWatchers !== null) this.notifyIfNothingLent();
  }

  /** returnLease() for a connection to destroy (broken) or to reset / test first; not inline there (size). */
  private returnWithWork(entry: PooledConnection<T>, destroy: boolean, reason: unknown): void {
    if (destroy || entry.evicted) this.retire(entry, 'error', reason);
    else this.returnWithReset(entry);
  }

  /** A returned (and, if configured, reset) connection: retire it or make it available again. */
  private putBack(entry: PooledConnection<T>, validated: boolean): void {
    const now = coarseNow();
    entry.lastUsedAt = now;
    entry.idleSince = now;
    if (entry.uses < this.maxUses && entry.expiresAt > now && this.currentState !== 'closed') {
      this.makeAvailable(entry, validated);
    } else {
      this.retireReturned(entry);
    }
  }

  /** putBack() for a connection that is not to be lent again: the pool closed, or it is used up or too old. */
  private retireReturned(entry: PooledConnection<T>): void {
    if (this.currentState === 'closed') this.destroyEntry(entry, 'close');
    else if (entry.uses >= this.maxUses) this.retire(entry, 'maxUses');
    else this.retire(entry, 'lifetime'); // expiresAt <= now
  }

  /**
   * Runs factory.reset (and testOnReturn). A reset that returns synchronously ("nothing to clean") puts the
   * connection straight back; a promise, or testOnReturn, takes the async path.
   */
  private returnWithReset(entry: PooledConnection<T>): void {
    const reset = this.factory.reset;
    let pending: PromiseLike<void> | undefined;
    if (reset !== undefined) {
      try {
        const outcome = reset.call(this.factory, entry.connection);
        if (outcome !== undefined && typeof (outcome as PromiseLike<void>).then === 'function')
          pending = outcome;
      } catch (error) {
        const failure = toError(error);
        entry.lastError = failure.message;
        this.emit('error', failure, { phase: 'reset' });
        this.retire(entry, 'error', error);
        return;
      }
    }
    if (pending === undefined && !this.options.testOnReturn) {
      this.putBack(entry, false);
      return;
    }
    entry.state = 'returning';
    this.track(this.runReturnWork(entry, pending));
  }

  private async runReturnWork(
    entry: PooledConnection<T>,
    resetting: PromiseLike<void> | undefined,
  ): Promise<void> {
    if (resetting !== undefined) {
      const error = await this.bounded(() => Promise.resolve(resetting), 'reset');
      if (error !== undefined) {
        entry.lastError = error.message;
        this.emit('error', error, { phase: 'reset' });
        if (entry.state === 'returning') {
          this.retire(entry, 'error', error);
        }
        this.notifyIfNothingLent();
        return;
      }
    }
    let validated = false;
    if (this.options.testOnReturn && entry.state === 'returning') {
      if (!(await this.validate(entry))) {
        if (entry.state === 'returning') {
          this.totals.validationFailures++;
          this.retire(entry, 'validation');
        }
        this.notifyIfNothingLent();
        return;
      }
      validated = true;
    }
    if (entry.state === 'returning') this.putBack(entry, validated);
    this.notifyIfNothingLent();
  }

  private lend(entry: PooledConnection<T>, stack: string | undefined): Lease<T> {
    entry.state = 'lent';
    entry.borrowId++; // also its count of uses
    this.lent++;
    // peek(), not now(): a lend doesn't use up the shared reading (queued callers' enqueues refresh it), so
    // the uncontended path writes no clock state; a hold inside one burst measures 0.
    if (this.trackingUse) entry.useStartedAt = this.useClock.peek();
    if (this.observingLend) this.observeLend(entry, stack);
    return new Lease(this, entry);
  }

  /** What watches a lend (see observingLend): the sizer, leak detection, listeners. */
  private observeLend(entry: PooledConnection<T>, stack: string | undefined): void {
    if (this.sizer !== null) this.sizer.observe(this.lent + this.waiters.size);
    if (stack !== undefined) this.watchForLeak(entry, stack);
    if (this.listeningAcquire) this.emit('acquire', entry.connection);
  }

  /** What watches a return (see observingReturn): leak detection, listeners. */
  private observeReturn(entry: PooledConnection<T>): void {
    entry.acquireStack = undefined;
    if (this.listeningRelease) this.emit('release', entry.connection);
  }

  /** Recomputes observingLend / observingReturn after a change to what they summarise. */
  private refreshObservers(): void {
    const leakDetection = this.leakDetectionMs !== Infinity;
    this.observingLend = this.sizer !== null || leakDetection || this.listeningAcquire;
    this.observingReturn = leakDetection || this.listeningRelease;
  }

  protected override listenersChanged(): void {
    super.listenersChanged();
    this.refreshObservers();
  }

  /** Leak detection on: remember who borrowed `entry` and when, and wake housekeeping when it is overdue. */
  private watchForLeak(entry: PooledConnection<T>, stack: string): void {
    entry.lentAt = coarseNow();
    entry.acquireStack = stack;
    entry.leakReported = false;
    this.scheduleHousekeeping(entry.lentAt + this.leakDetectionMs);
  }

  /**
   * Gives an available connection to the head waiter, or puts it in the idle list. `validated` says it was
   * just created or checked; otherwise, with a zero bypass window, it is validated first.
   */
  private makeAvailable(entry: PooledConnection<T>, validated: boolean): void {
    // Nobody waiting for it (the common case below saturation): straight back on the idle list.
    if (!entry.evicted && (this.waiters.size === 0 || !this.lending)) {
      entry.state = 'idle';
      this.idle.push(entry);
      return;
    }
    this.handOff(entry, validated);
  }

  /**
   * makeAvailable() for an evicted connection (destroyed) or with callers waiting. One ready to lend goes
   * to the head waiter even if a borrow validation runs on that caller's behalf: the validated connection
   * then goes idle, and the caller is not kept waiting on a slow check beside a good connection. One that
   * must be validated first (zero bypass window) is checked only for callers no validation covers yet.
   */
  private handOff(entry: PooledConnection<T>, validated: boolean): void {
    if (entry.evicted) {
      this.retire(entry, 'error');
    } else if (validated || !this.validateOnBorrow || this.bypassMs !== 0) {
      this.serve(this.waiters.shift()!, entry);
    } else if (this.waiters.size > this.validatingForBorrow) {
      this.startBorrowValidation(entry);
    } else {
      entry.state = 'idle';
      this.idle.push(entry);
    }
  }

  /** Serves waiters from the idle list while both exist and the pool lends. */
  private dispatch(): void {
    if (!this.lending) return;
    while (this.waiters.size > this.validatingForBorrow && this.idle.length > 0) {
      const entry = this.lifo ? this.idle.pop()! : this.idle.shift()!;
      if (this.validateOnBorrow && this.validationDue(entry)) {
        this.startBorrowValidation(entry);
      } else {
        this.serve(this.waiters.shift()!, entry);
      }
    }
  }

  private serve(waiter: Waiter<T>, entry: PooledConnection<T>): void {
    this.recordWaitEnded(waiter);
    waiter.resolve(this.lend(entry, waiter.stack));
  }

  /** A waiter leaves the queue served: off the deadline heap and its signal, its wait recorded. */
  private recordWaitEnded(waiter: Waiter<T>): void {
    if (waiter.heapIndex >= 0) this.deadlines.remove(waiter);
    if (waiter.onAbort !== null) detachSignal(waiter);
    // peek(): the enqueues keep the shared reading fresh. 0 when both ends saw the same reading (a wait
    // within one burst, shorter than the shared clock resolves); the sizer counts it all the same: the
    // caller found no idle connection.
    const waited = sharedClock.peek() - waiter.enqueuedAt;
    if (waited > 0) this.waitHistogram.record(waited);
    else this.waitHistogram.recordZero();
    if (this.sizer !== null) this.sizer.waits++;
  }

  private enqueue(options: AcquireOptions | undefined, stack: string | undefined): Promise<Lease<T>> {
    const refusal = this.refuseWait(options);
    if (refusal !== undefined) return Promise.reject(refusal.error);
    const ownTimeoutMs = options?.timeoutMs;
    const signal = options?.signal;
    const waiter = new Waiter<T>(
      ownTimeoutMs ?? this.options.acquireTimeoutMs,
      ownTimeoutMs !== undefined,
      signal,
    );
    const promise = promiseFor(waiter);
    if (stack !== undefined) waiter.stack = stack;
    this.queueWaiter(waiter, options?.priority ?? 0);
    return signal === undefined ? promise : settleUnlessAborted(promise, signal);
  }

  /** Why a caller may not wait (closed, draining, aborted, queue full, circuit open); undefined if it may. */
  private refuseWait(options: AcquireOptions | undefined): { error: unknown } | undefined {
    const state = this.currentState;
    if (state === 'draining' || state === 'closed') {
      return {
        error:
          state === 'closed'
            ? this.closedError()
            : new PoolClosedError(this.name, 'is draining; no connections are lent'),
      };
    }
    const signal = options?.signal;
    if (signal !== undefined && signal.aborted) return { error: signal.reason };
    // maxWaiting bounds callers who must wait for a connection to come back; those a connection is being
    // validated or can still be created for are not counted.
    const covered = this.validatingForBorrow + (this.options.max - this.entries.size);
    if (this.waiters.size - covered >= this.options.maxWaiting) {
      return { error: new PoolQueueFullError(this.name, this.options.maxWaiting) };
    }
    if (this.isUnservable()) return { error: this.unavailableError() };
    return undefined;
  }

  /** Puts a waiter at the tail of its priority's lane, and starts whatever can serve it. */
  private queueWaiter(waiter: Waiter<T>, priority: number): void {
    waiter.enqueuedAt = sharedClock.now();
    this.waiters.push(waiter, priority);
    this.deadlines.requestStamp();
    if (this.sizer !== null) this.sizer.observe(this.entries.size - this.idle.length + this.waiters.size);
    const signal = waiter.signal;
    if (signal !== undefined) waiter.onAbort = this.listenForAbort(waiter, signal);
    // dispatch() and fill() would return at once with nothing idle and the pool at max: skip the calls.
    if (this.idle.length > 0) this.dispatch();
    if (this.entries.size + this.pendingCreates < this.options.max) this.fill();
  }

  /**
   * @internal For a backend whose leases several callers may share (pipelined PostgreSQL queries):
   * acquire() with callbacks instead of a promise, and the caller's work (`share`) kept in the queue, where
   * adoptShared() can hand it to a lease that is already out. Lends at once (calling `onLease` before it
   * returns) when acquire() would; otherwise the caller waits in the same fair queue, with the same timeout
   * and the same errors (given to `onError`).
   */
  acquireShared(share: object, onLease: (lease: Lease<T>) => void, onError: (error: unknown) => void): void {
    const stack = this.leakDetectionMs !== Infinity ? captureStack() : undefined;
    if (this.lending && this.waiters.size === 0 && this.idle.length > 0) {
      const entry = this.lifo ? this.idle.pop()! : this.idle.shift()!;
      if (!this.validateOnBorrow || !this.validationDue(entry)) {
        this.waitHistogram.recordZero();
        onLease(this.lend(entry, stack));
        return;
      }
      this.startBorrowValidation(entry);
    }
    const refusal = this.refuseWait(undefined);
    if (refusal !== undefined) {
      onError(refusal.error);
      return;
    }
    const waiter = new Waiter<T>(this.options.acquireTimeoutMs, false, undefined);
    waiter.resolve = onLease;
    waiter.reject = onError;
    waiter.share = share;
    if (stack !== undefined) waiter.stack = stack;
    this.queueWaiter(waiter, 0);
  }

  /**
   * @internal May a shared acquire join a lease that is already out, rather than ask for one? Only when the
   * pool lends, nobody waits (joining would overtake them), no connection is idle (one would be lent) and
   * the pool is at `max` (one would be opened).
   */
  shareJoinable(): boolean {
    return this.lending && this.waiters.size === 0 && this.isSaturated();
  }

  /** No connection is idle and none can be opened: sharing one that is out is the only way to serve now. */
  private isSaturated(): boolean {
    return this.idle.length === 0 && this.entries.size + this.pendingCreates >= this.options.max;
  }

  /**
   * @internal The `share` of the head waiter, taken out of the queue, when that waiter is an acquireShared(),
   * the pool lends, and it could not serve the waiter otherwise (no idle connection, at `max`); undefined if
   * not. The caller runs the work on a lease it holds: the waiter counts as served (its wait is recorded),
   * and no connection is lent for it. Only the head, so that a plain acquire queued first is never
   * overtaken: it gets the next connection that comes back.
   */
  adoptShared(): unknown {
    if (!this.lending || !this.isSaturated()) return undefined;
    const head = this.waiters.peek();
    if (head === null || head.share === null) return undefined;
    this.waiters.shift();
    this.recordWaitEnded(head);
    return head.share;
  }

  /** Not inline in enqueue(): a closure there would make V8 allocate a context on every call, signal or not. */
  private listenForAbort(waiter: Waiter<T>, signal: AbortSignal): () => void {
    const onAbort = (): void => this.abortWaiter(waiter);
    signal.addEventListener('abort', onAbort, { once: true });
    return onAbort;
  }

  private checkAcquireOptions(options: AcquireOptions): PoolConfigError | undefined {
    const { timeoutMs, priority, signal } = options;
    if (
      timeoutMs !== undefined &&
      !(typeof timeoutMs === 'number' && timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)
    ) {
      return new PoolConfigError(
        this.name,
        'timeoutMs',
        `must be a positive number of ms, at most ${MAX_TIMER_MS} (got ${String(timeoutMs)})`,
      );
    }
    if (priority !== undefined && !(typeof priority === 'number' && Number.isFinite(priority))) {
      return new PoolConfigError(this.name, 'priority', `must be a finite number (got ${String(priority)})`);
    }
    if (signal !== undefined && (typeof signal !== 'object' || signal === null || !('aborted' in signal))) {
      return new PoolConfigError(this.name, 'signal', 'must be an AbortSignal');
    }
    return undefined;
  }

  private readonly expireWaiter = (waiter: Waiter<T>): void => {
    if (waiter.lane === null) return; // settled already
    this.waiters.remove(waiter);
    detachSignal(waiter);
    this.totals.timeouts++;
    if (this.sizer !== null) this.sizer.waits++;
    const cause = this.consecutiveCreateFailures > 0 ? this.lastCreateError : undefined;
    waiter.reject(
      new PoolTimeoutError(
        this.name,
        {
          timeoutMs: waiter.timeoutMs,
          size: this.entries.size,
          active: this.entries.size - this.idle.length,
          idle: this.idle.length,
          pending: this.pendingCreates,
          waiting: this.waiters.size,
          max: this.options.max,
        },
        { cause },
      ),
    );
  };

  private abortWaiter(waiter: Waiter<T>): void {
    if (waiter.lane === null) return; // settled already
    this.waiters.remove(waiter);
    this.deadlines.remove(waiter);
    waiter.onAbort = null;
    waiter.reject(waiter.signal?.reason);
  }

  private rejectAllWaiters(error: Error): void {
    for (const waiter of this.waiters.drain()) {
      this.deadlines.remove(waiter);
      detachSignal(waiter);
      waiter.reject(error);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Creation: background, bounded, with backoff and a circuit breaker
  // ---------------------------------------------------------------------------------------------------

  /**
   * Starts connection attempts for whoever needs one: waiters not yet covered by an attempt or a validation,
   * and (after start()) the `min` floor. Never more than `max` in total or `maxConcurrentCreates` at once;
   * after failures, attempts wait for the backoff, and an open circuit lets none through.
   */
  private fill(): void {
    const state = this.currentState;
    if (state === 'closed' || state === 'draining') return;
    // While attempts are failing, one at a time: a down server gets one attempt per backoff step.
    const concurrency = this.consecutiveCreateFailures > 0 ? 1 : this.options.maxConcurrentCreates;
    for (;;) {
      const total = this.entries.size + this.pendingCreates;
      if (total >= this.options.max || this.pendingCreates >= concurrency) return;
      const forWaiters =
        state === 'paused' ? 0 : this.waiters.size - this.validatingForBorrow - this.pendingCreates;
      const forMin = this.started ? this.floor() - total : 0;
      // Half-open: the one probe goes out even with nobody waiting, so the circuit closes as soon as the
      // server is back. A pool nobody calls while it is open (a group member taken out of the rotation)
      // would otherwise stay half-open, and out, for good.
      const probing = this.breaker !== null && this.breaker.state === 'half-open';
      if (forWaiters <= 0 && forMin <= 0 && !probing) return;
      if (this.breaker !== null && this.breaker.state !== 'closed') {
        if (!this.breaker.tryAcquireAttempt()) return;
      } else if (preciseNow() < this.nextCreateAt) {
        this.scheduleRetry(this.nextCreateAt);
        return;
      }
      this.attemptCreate().catch(noop);
    }
  }

  /**
   * One connection attempt. Resolves with the new connection (already placed), rejects with the failure. A
   * fail-fast start passes its `run`: a failure cancels it before the start's other workers are woken, so
   * none of them makes another attempt for a start that has already failed.
   */
  private attemptCreate(run?: { cancelled: boolean }): Promise<PooledConnection<T>> {
    this.pendingCreates++;
    const startedAt = preciseNow();
    return new Promise<PooledConnection<T>>((resolve, reject) => {
      const controller = new AbortController();
      let settled = false;
      const finish = (error: Error | undefined, connection?: T): void => {
        settled = true;
        clearTimeout(timer);
        this.createAttempts.delete(attempt);
        this.pendingCreates--;
        if (error !== undefined && run !== undefined) run.cancelled = true;
        if (this.createSlotWaiters.length > 0) this.wakeCreateSlotWaiters();
        if (error !== undefined) {
          this.onCreateFailure(error);
          reject(error);
        } else {
          this.createHistogram.record(preciseNow() - startedAt);
          resolve(this.onCreateSuccess(connection as T));
        }
      };
      const attempt: CreateAttempt = {
        abandon: (error) => {
          if (settled) return;
          controller.abort(error);
          finish(error);
        },
      };
      this.createAttempts.add(attempt);
      const timer = setTimeout(() => {
        attempt.abandon(
          new PoolCreateTimeoutError(
            this.name,
            `connection attempt timed out after ${this.options.createTimeoutMs} ms`,
          ),
        );
      }, this.options.createTimeoutMs);
      timer.unref();

      let created: Promise<T>;
      try {
        created = Promise.resolve(this.factory.create(controller.signal));
      } catch (error) {
        created = Promise.reject(error);
      }
      this.track(
        created.then(
          (connection) => {
            if (settled) this.destroyLate(connection);
            else finish(undefined, connection);
          },
          (error: unknown) => {
            if (!settled) finish(toError(error));
          },
        ),
      );
    });
  }

  private onCreateSuccess(connection: T): PooledConnection<T> {
    const now = preciseNow();
    const { maxLifetimeMs, maxLifetimeJitter } = this.options;
    const lifetime =
      maxLifetimeMs === Infinity ? Infinity : maxLifetimeMs * (1 - maxLifetimeJitter * Math.random());
    const entry = new PooledConnection(connection, this.nextConnectionId++, now, now + lifetime);
    this.entries.add(entry);
    this.totals.created++;
    this.consecutiveCreateFailures = 0;
    this.nextCreateAt = 0;
    this.lastCreateError = undefined;
    this.emit('create', connection);
    if (this.currentState === 'closed') {
      this.destroyEntry(entry, 'close');
      return entry;
    }
    this.breaker?.onSuccess();
    if (entry.state === 'destroyed') return entry; // a 'create' listener evicted it (and refilled)
    this.scheduleHousekeeping(this.nextHousekeepingFor(entry));
    this.makeAvailable(entry, true);
    this.fill();
    return entry;
  }

  private onCreateFailure(error: Error): void {
    if (this.currentState === 'closed') {
      this.breaker?.onAbandoned();
      return;
    }
    this.totals.createErrors++;
    this.consecutiveCreateFailures++;
    this.lastCreateError = error;
    this.nextCreateAt =
      preciseNow() + createBackoffDelay(this.options.createRetry, this.consecutiveCreateFailures);
    this.emit('error', error, { phase: 'create' });
    if ((this.currentState as PoolState) === 'closed') return; // an 'error' listener closed the pool
    this.breaker?.onFailure();
    this.fill();
    // The circuit may have opened while another attempt was in flight; with this one gone too, nothing can
    // serve the waiters any more: fail them now, not when the next probe fails.
    this.failWaitersIfUnservable();
  }

  /** A connection that arrived after its attempt was abandoned (timeout/close): counted, then destroyed. */
  private destroyLate(connection: T): void {
    const entry = new PooledConnection(connection, this.nextConnectionId++, preciseNow(), Infinity);
    this.entries.add(entry);
    this.totals.created++;
    this.emit('create', connection);
    this.destroyEntry(entry, this.currentState === 'closed' ? 'close' : 'error');
  }

  private scheduleRetry(at: number): void {
    if (this.retryTimer !== null && this.retryAt <= at) return;
    this.clearTimer('retry');
    this.retryAt = at;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = null;
        this.retryAt = Infinity;
        this.fill();
      },
      Math.max(0, Math.ceil(at - preciseNow())),
    );
    this.retryTimer.unref();
  }

  private onCircuitChange(circuit: PoolCircuitState, previous: PoolCircuitState): void {
    this.emit('state', {
      state: this.currentState,
      circuit,
      previousState: this.currentState,
      previousCircuit: previous,
    });
    if (circuit === 'open') this.failWaitersIfUnservable();
    else if (circuit === 'half-open') this.fill();
  }

  /** Circuit open and nothing that could ever serve a waiter: no connection, no attempt in flight. */
  private isUnservable(): boolean {
    return (
      this.breaker !== null &&
      this.breaker.state === 'open' &&
      this.entries.size === 0 &&
      this.pendingCreates === 0
    );
  }

  private failWaitersIfUnservable(): void {
    if (this.waiters.size > 0 && this.isUnservable()) this.rejectAllWaiters(this.unavailableError());
  }

  /** Destroys a connection the pool loses while open (broken, evicted, retired) and refills behind it. */
  private retire(entry: PooledConnection<T>, reason: DestroyReason, detail?: unknown): void {
    this.destroyEntry(entry, reason, detail);
    this.afterConnectionLost();
  }

  /** After a connection is gone: replace it if someone needs it, and fail fast if nothing can serve. */
  private afterConnectionLost(): void {
    this.fill();
    this.failWaitersIfUnservable();
  }

  // ---------------------------------------------------------------------------------------------------
  // Validation and destruction
  // ---------------------------------------------------------------------------------------------------

  private startBorrowValidation(entry: PooledConnection<T>): void {
    entry.state = 'validating';
    this.validatingForBorrow++;
    this.track(
      this.validate(entry).then((ok) => {
        this.validatingForBorrow--;
        entry.idleSince = coarseNow();
        this.afterValidation(entry, ok);
        // One fewer validation covers a waiter: serve from idle or create for whoever is still waiting.
        this.dispatch();
        this.afterConnectionLost();
      }),
    );
  }

  /** Keepalive: checks a connection that sat idle for `keepaliveMs`. */
  private startKeepalive(entry: PooledConnection<T>): void {
    entry.state = 'validating';
    this.track(
      this.validate(entry).then((ok) => {
        if (!this.afterValidation(entry, ok)) this.afterConnectionLost();
      }),
    );
  }

  /**
   * A validation finished: a valid connection becomes available again (or is closed if the pool closed
   * meanwhile), an invalid one is destroyed. Returns false when the connection is gone. Does nothing if
   * close() already destroyed it.
   */
  private afterValidation(entry: PooledConnection<T>, ok: boolean): boolean {
    if (entry.state !== 'validating') return false;
    if (!ok) {
      this.totals.validationFailures++;
      this.destroyEntry(entry, 'validation');
      return false;
    }
    const now = coarseNow();
    entry.lastUsedAt = now;
    if (this.currentState === 'closed') {
      this.destroyEntry(entry, 'close');
      return false;
    }
    // Its lifetime may have run out while the check ran; lending it now would outlive maxLifetimeMs.
    if (entry.expiresAt <= now) {
      this.destroyEntry(entry, 'lifetime');
      return false;
    }
    this.makeAvailable(entry, true);
    return true;
  }

  /** Runs factory.validate bounded by validationTimeoutMs; a throw or timeout counts as invalid. */
  private async validate(entry: PooledConnection<T>): Promise<boolean> {
    const validate = this.factory.validate;
    if (validate === undefined) return true;
    let valid = false;
    const error = await this.bounded(async (signal) => {
      valid = (await validate.call(this.factory, entry.connection, signal)) === true;
    }, 'validation');
    if (error !== undefined) {
      entry.lastError = error.message;
      this.emit('error', error, { phase: 'validate' });
    } else if (!valid) {
      entry.lastError = 'validation failed';
    }
    return error === undefined && valid;
  }

  /**
   * Runs `work` with an AbortSignal that fires after validationTimeoutMs; resolves with the error (a
   * timeout included) or undefined. Never rejects.
   */
  private async bounded(
    work: (signal: AbortSignal) => Promise<unknown>,
    what: string,
  ): Promise<Error | undefined> {
    const controller = new AbortController();
    const timeoutMs = this.options.validationTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<Error>((resolve) => {
      timer = setTimeout(() => {
        const error = new PoolError(this.name, `connection ${what} timed out after ${timeoutMs} ms`);
        controller.abort(error);
        resolve(error);
      }, timeoutMs);
      timer.unref();
    });
    try {
      return await Promise.race([
        Promise.resolve()
          .then(() => work(controller.signal))
          .then(
            () => undefined,
            (error: unknown) => toError(error),
          ),
        timedOut,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Removes a connection from the pool and closes it (exactly once, bounded by destroyTimeoutMs). */
  private destroyEntry(entry: PooledConnection<T>, reason: DestroyReason, _detail?: unknown): void {
    if (entry.state === 'destroyed') return;
    if (entry.state === 'lent') {
      this.lent--;
      this.revokedLeases++;
    } else if (entry.state === 'idle') {
      const index = this.idle.indexOf(entry);
      if (index !== -1) this.idle.splice(index, 1);
    }
    entry.state = 'destroyed';
    entry.borrowId++; // revokes an outstanding lease
    entry.acquireStack = undefined;
    this.entries.delete(entry);
    this.destroyedBy[reason]++;
    this.emit('destroy', entry.connection, reason);
    this.track(this.closeConnection(entry.connection));
  }

  private async closeConnection(connection: T): Promise<void> {
    const timeoutMs = this.options.destroyTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(resolve, timeoutMs, 'timeout');
      timer.unref();
    });
    try {
      const outcome = await Promise.race([
        Promise.resolve().then(() => this.factory.destroy(connection)),
        timedOut,
      ]);
      if (outcome === 'timeout') {
        this.emit(
          'error',
          new PoolError(this.name, `closing a connection took longer than ${timeoutMs} ms; abandoned it`),
          {
            phase: 'destroy',
          },
        );
      }
    } catch (error) {
      this.emit('error', toError(error), { phase: 'destroy' });
    } finally {
      clearTimeout(timer);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Housekeeping: idle eviction, lifetime, keepalive, leaks, min — one timer armed for the next due time
  // ---------------------------------------------------------------------------------------------------

  private nextHousekeepingFor(entry: PooledConnection<T>): number {
    const { idleTimeoutMs, keepaliveMs } = this.options;
    return Math.min(entry.expiresAt, entry.idleSince + idleTimeoutMs, entry.lastUsedAt + keepaliveMs);
  }

  private scheduleHousekeeping(at: number): void {
    if (at === Infinity || this.currentState === 'closed') return;
    if (this.housekeepingTimer !== null && this.housekeepingAt <= at) return;
    this.clearTimer('housekeeping');
    this.housekeepingAt = at;
    this.housekeepingTimer = setTimeout(this.housekeep, Math.max(0, Math.ceil(at - preciseNow())));
    this.housekeepingTimer.unref();
  }

  private readonly housekeep = (): void => {
    this.housekeepingTimer = null;
    this.housekeepingAt = Infinity;
    if (this.currentState === 'closed') return;
    const now = preciseNow();
    const { idleTimeoutMs, keepaliveMs } = this.options;
    let next = Infinity;
    let evictable = this.entries.size - this.floor();

    // Oldest-returned first, so idle eviction takes the longest-unused connections.
    for (const entry of [...this.idle]) {
      // A listener of an event below ('destroy') may have borrowed or destroyed one meanwhile.
      if (entry.state !== 'idle') continue;
      if (entry.expiresAt <= now) {
        this.destroyEntry(entry, 'lifetime');
        evictable--;
        continue;
      }
      next = Math.min(next, entry.expiresAt);
      // Idle eviction counts from the return (idleSince): a keepalive check is not a use.
      if (idleTimeoutMs !== Infinity && evictable > 0) {
        if (now - entry.idleSince >= idleTimeoutMs) {
          this.destroyEntry(entry, 'idle');
          evictable--;
          continue;
        }
        next = Math.min(next, entry.idleSince + idleTimeoutMs);
      }
      if (keepaliveMs !== Infinity) {
        if (now - entry.lastUsedAt >= keepaliveMs) {
          const index = this.idle.indexOf(entry);
          if (index !== -1) this.idle.splice(index, 1);
          this.startKeepalive(entry);
          continue;
        }
        next = Math.min(next, entry.lastUsedAt + keepaliveMs);
      }
    }

    const busy = this.entries.size - this.idle.length;
    if (busy > 0) {
      // Lent connections become idle when returned (their lifetime is checked then); look at them again
      // one idle period from now at the latest, and when the first of them expires (one returned before
      // then would otherwise sit idle past its lifetime, with no idle timeout to wake housekeeping).
      next = Math.min(next, now + Math.min(idleTimeoutMs, keepaliveMs));
      for (const entry of this.entries) {
        if (entry.state !== 'idle' && entry.expiresAt > now) next = Math.min(next, entry.expiresAt);
      }
      if (this.leakDetectionMs !== Infinity) next = Math.min(next, this.checkLeaks(now));
    }

    this.fill();
    this.scheduleHousekeeping(next);
  };

  /** Reports leases held past leakDetectionMs (once each); returns when the next one would be due. */
  private checkLeaks(now: number): number {
    let next = Infinity;
    for (const entry of this.entries) {
      if (entry.state !== 'lent' || entry.leakReported || entry.acquireStack === undefined) continue;
      const dueAt = entry.lentAt + this.leakDetectionMs;
      if (dueAt <= now) {
        entry.leakReported = true;
        this.totals.leaks++;
        this.emit('leak', {
          poolName: this.name,
          heldMs: Math.round(now - entry.lentAt),
          stack: entry.acquireStack,
        });
      } else {
        next = Math.min(next, dueAt);
      }
    }
    return next;
  }

  // ---------------------------------------------------------------------------------------------------
  // Drain support, state, metrics
  // ---------------------------------------------------------------------------------------------------

  private hasOutstanding(): boolean {
    if (this.lent > 0) return true;
    for (const entry of this.entries) if (entry.state === 'returning') return true;
    return false;
  }

  private waitUntilNothingLent(timeoutMs: number): Promise<boolean> {
    if (!this.hasOutstanding()) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = timerUnlessInfinite(() => {
        this.drainWatchers = this.drainWatchers?.filter((w) => w !== watcher) ?? null;
        if (this.drainWatchers?.length === 0) this.drainWatchers = null;
        resolve(false);
      }, timeoutMs);
      const watcher = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      (this.drainWatchers ??= []).push(watcher);
    });
  }

  private notifyIfNothingLent(): void {
    if (this.drainWatchers === null || this.hasOutstanding()) return;
    const watchers = this.drainWatchers;
    this.drainWatchers = null;
    for (const watcher of watchers) watcher();
  }

  private setState(next: PoolState): void {
    const previous = this.currentState;
    if (previous === next) return;
    this.currentState = next;
    this.lending = next === 'ready' || next === 'starting';
    const circuit = this.breaker?.state ?? 'closed';
    this.emit('state', { state: next, circuit, previousState: previous, previousCircuit: circuit });
  }

  /** Connections kept open even when idle: `min`, or the dynamic sizer's target. */
  private floor(): number {
    return this.sizer === null ? this.options.min : this.sizer.target;
  }

  /** Grow: open connections up to the new target. Shrink: let idle eviction look at the surplus now. */
  private onTargetChange(target: number, previous: number): void {
    if (this.currentState === 'closed') return;
    if (target > previous) this.fill();
    else this.scheduleHousekeeping(preciseNow());
  }

  /** A consistent snapshot of the pool's gauges, totals and acquire wait percentiles. */
  metrics(): PoolMetrics {
    const size = this.entries.size;
    const idle = this.idle.length;
    const destroyed = this.destroyedBy;
    const totals = this.totals;
    // Listed one by one (not spread) so the keys come in PoolMetrics' order: created, destroyed, acquired, ...
    return {
      name: this.name,
      state: this.currentState,
      circuit: this.breaker?.state ?? 'closed',
      size,
      idle,
      active: size - idle,
      pending: this.pendingCreates,
      waiting: this.waiters.size,
      min: this.options.min,
      max: this.options.max,
      created: totals.created,
      destroyed: {
        ...destroyed,
        total:
          destroyed.idle +
          destroyed.lifetime +
          destroyed.validation +
          destroyed.error +
          destroyed.maxUses +
          destroyed.close,
      },
      acquired: totals.released + this.lent + this.revokedLeases,
      released: totals.released,
      timeouts: totals.timeouts,
      createErrors: totals.createErrors,
      validationFailures: totals.validationFailures,
      leaks: totals.leaks,
      acquireWaitMs: this.waitHistogram.summary(),
      ...(this.sizer === null ? {} : { targetSize: this.sizer.target }),
    };
  }

  /** One entry per open connection (in creation order): a snapshot, no I/O. */
  connections(): PoolConnectionInfo<T>[] {
    const now = preciseNow();
    const origin = performance.timeOrigin;
    const infos: PoolConnectionInfo<T>[] = [];
    for (const entry of this.entries) {
      const state = PUBLIC_STATE[entry.state];
      if (state === undefined) continue;
      const info: {
        -readonly [K in keyof PoolConnectionInfo<T>]: PoolConnectionInfo<T>[K];
      } = {
        id: entry.id,
        state,
        createdAt: Math.round(origin + entry.createdAt),
        ageMs: Math.max(0, now - entry.createdAt),
        idleMs: state === 'idle' ? Math.max(0, now - entry.idleSince) : 0,
        uses: entry.uses,
        connection: entry.connection,
      };
      if (entry.lastError !== undefined) info.lastError = entry.lastError;
      infos.push(info);
    }
    return infos;
  }

  /** Acquire wait, connection create and (while trackUseTime is on) lease hold time distributions. */
  histograms(): PoolHistograms {
    // The zero holds not recorded yet (see trackedReturnsBefore).
    this.useHistogram.recordZeros(this.trackedReturns() - this.useHistogram.count);
    return {
      wait: this.waitHistogram.snapshot(),
      create: this.createHistogram.snapshot(),
      use: this.useHistogram.snapshot(),
    };
  }

  /**
   * Turns lease hold time measurement on or off. Leases already out when it is turned on are not measured
   * (their start was not recorded).
   */
  trackUseTime(enabled: boolean): void {
    if (typeof enabled !== 'boolean') {
      throw new PoolConfigError(this.name, 'trackUseTime', `must be true or false (got ${typeof enabled})`);
    }
    if (enabled === this.trackingUse) return;
    if (enabled) {
      this.releasedWhenTrackingOn = this.totals.released;
      this.untrackedReturns = 0;
    } else {
      this.trackedReturnsBefore = this.trackedReturns();
      for (const entry of this.entries) entry.useStartedAt = NaN;
    }
    this.trackingUse = enabled;
  }

  /** Returns whose hold time was measured, zero or not. */
  private trackedReturns(): number {
    const current = this.trackingUse
      ? this.totals.released - this.releasedWhenTrackingOn - this.untrackedReturns
      : 0;
    return this.trackedReturnsBefore + current;
  }

  /** One return while tracking: a hold above 0 is recorded; a zero one only counted later (histograms()). */
  private recordUse(entry: PooledConnection<T>): void {
    const startedAt = entry.useStartedAt;
    // NaN: lent before tracking was turned on (turning it off resets every entry; the next lend while
    // tracking overwrites it). Checked before the clock, which it must not refresh.
    if (startedAt !== startedAt) {
      this.untrackedReturns++;
      return;
    }
    const held = this.useClock.peek() - startedAt;
    if (held > 0) this.useHistogram.record(held);
  }

  private wakeCreateSlotWaiters(): void {
    const waiting = this.createSlotWaiters;
    this.createSlotWaiters = [];
    for (const wake of waiting) wake();
  }

  private closedError(): PoolClosedError {
    return new PoolClosedError(this.name, 'is closed');
  }

  private unavailableError(): PoolUnavailableError {
    const cause = this.lastCreateError;
    return new PoolUnavailableError(
      this.name,
      `circuit breaker is open after ${this.consecutiveCreateFailures} failed connection attempts` +
        (cause ? `; last error: ${cause.message}` : ''),
      { cause },
    );
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private clearTimer(which: 'retry' | 'housekeeping'): void {
    if (which === 'retry') {
      if (this.retryTimer !== null) clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.retryAt = Infinity;
    } else {
      if (this.housekeepingTimer !== null) clearTimeout(this.housekeepingTimer);
      this.housekeepingTimer = null;
      this.housekeepingAt = Infinity;
    }
  }

  /** `console.log(pool)` shows the pool's state, never its factory or options (which may hold secrets). */
  [inspectSymbol](): string {
    const m = this.metrics();
    return `Pool { name: '${m.name}', state: '${m.state}', circuit: '${m.circuit}', size: ${m.size}, idle: ${m.idle}, active: ${m.active}, waiting: ${m.waiting}, max: ${m.max} }`;
  }

  toJSON(): PoolMetrics {
    return this.metrics();
  }
}

/** Internal states as connections() reports them; destroyed connections are not listed. */
const PUBLIC_STATE: Record<ConnectionState, PoolConnectionState | undefined> = {
  idle: 'idle',
  lent: 'lent',
  validating: 'validating',
  returning: 'resetting',
  destroyed: undefined,
};

function detachSignal<T>(waiter: Waiter<T>): void {
  if (waiter.onAbort !== null && waiter.signal !== undefined) {
    waiter.signal.removeEventListener('abort', waiter.onAbort);
    waiter.onAbort = null;
  }
}

/**
 * The hand-off and an abort can happen in the same tick (release() resolves the waiter, then the caller
 * aborts before its continuation runs). The caller then gets the abort reason and the connection goes to
 * the next waiter instead of being stranded with a caller that gave up.
 */
function settleUnlessAborted<T>(promise: Promise<Lease<T>>, signal: AbortSignal): Promise<Lease<T>> {
  return promise.then((lease) => {
    if (signal.aborted) {
      lease.release();
      throw signal.reason;
    }
    return lease;
  });
}

function captureStack(): string {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, captureStack);
  return `Lease acquired at:${holder.stack?.slice(holder.stack.indexOf('\n')) ?? ''}`;
}

/** drain() / close() timeoutMs: 0 up to what a timer can wait, or Infinity (no limit, no timer). */
function checkDuration(poolName: string, field: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !(value >= 0) || (value > MAX_TIMER_MS && value !== Infinity)) {
    throw new PoolConfigError(
      poolName,
      field,
      `must be a non-negative number of ms, at most ${MAX_TIMER_MS}, or Infinity (got ${String(value)})`,
    );
  }
  return value;
}

/**
 * An unref'd timer, or none for Infinity. A Node timer fires a delay above MAX_TIMER_MS after 1 ms, so a
 * finite one beyond it (a sum of two timeouts) is cut to it: the callers wait in a loop or report the wait.
 */
function timerUnlessInfinite(
  callback: () => void,
  delayMs: number,
): ReturnType<typeof setTimeout> | undefined {
  if (delayMs === Infinity) return undefined;
  const timer = setTimeout(callback, Math.min(delayMs, MAX_TIMER_MS));
  timer.unref();
  return timer;
}

function noop(): void {}
