/**
 * PoolManager: the app's registry of named pools (one per application, provided by the global
 * PoolManagerModule). It opens pools at bootstrap with retries, then drains and closes them in
 * `onApplicationShutdown`, all in parallel, each bounded, never throwing. Not in `beforeApplicationShutdown`:
 * every module's hook of that phase, a global one registered before PoolModule included, may still use the
 * pools.
 *
 * If one pool cannot be opened, bootstrap fails, and Nest then runs no shutdown hook at all: the manager
 * closes every pool it already opened itself (and any still opening closes as soon as it is done), so a
 * failed bootstrap leaves no sockets behind. Other bootstrap steps that may fail after pools opened (the
 * admin's and metrics' own) run under failBootstrapOnError() for the same reason.
 */
import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { MAX_TIMER_MS, OptionReader, PoolConfigError, PoolError, type PoolMetrics } from '../core/index.js';
import {
  createPool,
  PoolDriverMissingError,
  type BackendPoolOptions,
  type HealthCheckOptions,
  type HealthCheckResult,
} from '../backends/index.js';
import {
  DEFAULT_SHUTDOWN_CLOSE_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_DRAIN_TIMEOUT_MS,
  DEFAULT_RETRY_ATTEMPTS,
  DEFAULT_RETRY_DELAY_MS,
} from './pool.constants.js';
import type { PoolModuleLifecycleOptions, PoolModuleOptions } from './interfaces/index.js';
import type { ManagedPool } from './managed-pool.js';
import { createPoolLogSink, type PoolLogSink } from './pool-log-sink.js';
import { RoutedPoolLogger } from './routed-pool-logger.js';

interface PoolEntry {
  readonly pool: ManagedPool;
  readonly drainTimeoutMs: number;
  readonly closeTimeoutMs: number;
  readonly log: PoolLogSink;
  readonly logger: RoutedPoolLogger;
}

@Injectable()
export class PoolManager implements OnApplicationShutdown {
  private readonly pools = new Map<string, PoolEntry>();
  /** Set once bootstrap failed: pools that finish opening afterwards close themselves. */
  private aborted: Error | undefined;
  private closing: Promise<void> | undefined;
  /** Retry waits in progress: an abort ends them at once. */
  private readonly retryWaits = new Set<() => void>();

  /**
   * Creates, registers and starts a pool (called by PoolModule's providers). Retries `start()` up to
   * `retryAttempts` times, `retryDelayMs` apart; configuration errors and a missing driver fail at once.
   * A pool with replicas or shards is one managed pool: its start/drain/close cover every member.
   */
  async openPool(name: string, options: PoolModuleOptions): Promise<ManagedPool> {
    let registered: ReturnType<PoolManager['register']>;
    try {
      registered = this.register(name, options);
    } catch (error) {
      await this.abort(error);
      throw error;
    }
    const { lifecycle, pool, log } = registered;
    const attempts = lifecycle.retryAttempts ?? DEFAULT_RETRY_ATTEMPTS;
    const delayMs = lifecycle.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
    for (let attempt = 0; ; attempt++) {
      if (this.aborted !== undefined || this.closing !== undefined) break;
      try {
        await pool.start();
        break;
      } catch (error) {
        // Bootstrap failed elsewhere, or the app is closing, and this pool was closed under its start():
        // not worth a retry.
        if (this.aborted !== undefined || this.closing !== undefined) break;
        const fatal = error instanceof PoolConfigError || error instanceof PoolDriverMissingError;
        if (fatal || attempt >= attempts) {
          await this.abort(error);
          throw error;
        }
        log.write(
          'warn',
          `could not open (${messageOf(error)}); retrying (${attempt + 1}/${attempts}) in ${delayMs} ms`,
        );
        await this.waitBeforeRetry(delayMs);
      }
    }
    if (this.aborted !== undefined) {
      await pool.close();
      throw new PoolError(name, `not opened: application bootstrap failed (${messageOf(this.aborted)})`, {
        cause: this.aborted,
      });
    }
    if (this.closing !== undefined) {
      await pool.close();
      throw new PoolError(name, 'not opened: the application closed while it was starting');
    }
    return pool;
  }

  /**
   * Checks the options, creates the pool and registers it, with its logger. Synchronous: the name check and
   * the registration happen together (two providers opening one name can't both pass), and start() follows
   * without a turn in between.
   */
  private register(
    name: string,
    options: PoolModuleOptions,
  ): { lifecycle: PoolModuleLifecycleOptions; pool: ManagedPool; log: PoolLogSink } {
    const { lifecycle, poolOptions } = splitOptions(name, options);
    if (this.pools.has(name)) {
      throw new PoolConfigError(
        name,
        'name',
        `a pool named "${name}" is already registered; each PoolModule.forRoot()/forRootAsync() needs a unique name`,
      );
    }
    // A BackendPool, or a ShardedPool when the options have `shards`: both are managed pools.
    const pool: ManagedPool = createPool({ ...poolOptions, name });
    // Subscribed before start(), so the first connection failures and the `ready` line are logged.
    const log = createPoolLogSink(name, lifecycle.logger);
    const logger = new RoutedPoolLogger(pool, log).attach();
    this.pools.set(name, {
      pool,
      drainTimeoutMs: lifecycle.shutdown?.drainTimeoutMs ?? DEFAULT_SHUTDOWN_DRAIN_TIMEOUT_MS,
      closeTimeoutMs: lifecycle.shutdown?.closeTimeoutMs ?? DEFAULT_SHUTDOWN_CLOSE_TIMEOUT_MS,
      log,
      logger,
    });
    return { lifecycle, pool, log };
  }

  /** The pool registered under `name`; throws naming the registered ones if there is none. */
  get<P extends ManagedPool = ManagedPool>(name: string): P {
    const managed = this.pools.get(name);
    if (managed === undefined) {
      const known = [...this.pools.keys()].map((n) => `"${n}"`).join(', ') || 'none';
      throw new PoolError(
        name,
        `no pool with this name is registered (registered: ${known}); add PoolModule.forRoot({ name: '${name}', ... })`,
      );
    }
    return managed.pool as P;
  }

  has(name: string): boolean {
    return this.pools.has(name);
  }

  names(): string[] {
    return [...this.pools.keys()];
  }

  /** Every pool's metrics, keyed by name. */
  metrics(): Record<string, PoolMetrics> {
    const result: Record<string, PoolMetrics> = {};
    for (const [name, { pool }] of this.pools) result[name] = pool.metrics();
    return result;
  }

  /** Checks every pool in parallel (each bounded by `timeoutMs`), keyed by name. */
  async checkHealth(options?: HealthCheckOptions): Promise<Record<string, HealthCheckResult>> {
    const entries = await Promise.all(
      [...this.pools].map(async ([name, { pool }]) => [name, await pool.checkHealth(options)] as const),
    );
    return Object.fromEntries(entries);
  }

  /** Drains every pool in parallel, each bounded by its `shutdown.drainTimeoutMs`. Never throws. */
  async drainAll(): Promise<void> {
    await Promise.all(
      [...this.pools].map(async ([, { pool, drainTimeoutMs, log }]) => {
        try {
          const result = await pool.drain({ timeoutMs: drainTimeoutMs });
          if (!result.drained) {
            log.write('warn', `${result.active} connection(s) still lent after ${drainTimeoutMs} ms`);
          }
        } catch (error) {
          log.write('error', `drain failed: ${messageOf(error)}`);
        }
      }),
    );
  }

  /** Closes every pool in parallel, each bounded by its `shutdown.closeTimeoutMs`. Idempotent, never throws. */
  closeAll(): Promise<void> {
    this.wakeRetryWaits(); // a pool waiting to retry its start gives up: no timer outlives the close
    this.closing ??= Promise.all(
      [...this.pools].map(async ([, { pool, closeTimeoutMs, log, logger }]) => {
        try {
          await pool.close({ timeoutMs: closeTimeoutMs });
        } catch (error) {
          log.write('error', `close failed: ${messageOf(error)}`);
          // Whatever refused the bounded close (it should not happen), the pool must not stay open.
          await pool.close().catch(() => undefined);
        } finally {
          logger.detach(); // after the `closed` line: a closed pool has nothing more to say
        }
      }),
    ).then(() => undefined);
    return this.closing;
  }

  /**
   * `retryDelayMs` before the next start() attempt, cut short by an abort or a close. Ref'd: while the app
   * waits to retry, nothing else may hold the event loop, and Node must not exit (code 0) mid-bootstrap.
   */
  private waitBeforeRetry(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.retryWaits.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.retryWaits.add(wake);
    });
  }

  private wakeRetryWaits(): void {
    for (const wake of [...this.retryWaits]) wake();
  }

  /**
   * Drains, then closes. In this last phase rather than `beforeApplicationShutdown`: Nest runs each shutdown
   * phase module by module, global modules last and in reverse registration order, so a global module
   * registered before PoolModule runs its `beforeApplicationShutdown` after this manager's and would find the
   * pools draining.
   */
  async onApplicationShutdown(): Promise<void> {
    await this.drainAll();
    await this.closeAll();
  }

  /**
   * @internal Runs a bootstrap step that may fail once pools are open (a forRootAsync() options factory and
   * the check of what it returned; the admin's options factory and guard; the metrics registration). If it
   * throws, bootstrap fails, and Nest runs no shutdown hook: the pools already open are closed, then it
   * rethrows.
   */
  async failBootstrapOnError<R>(step: () => R | Promise<R>): Promise<R> {
    try {
      return await step();
    } catch (error) {
      await this.abort(error);
      throw error;
    }
  }

  /** Bootstrap failed: close what is open now; pools still opening close when they finish. */
  private async abort(error: unknown): Promise<void> {
    this.aborted ??= error instanceof Error ? error : new Error(String(error));
    await this.closeAll();
    this.closing = undefined; // a pool registered later is closed by its own openPool()
  }
}

function splitOptions(
  name: string,
  options: PoolModuleOptions,
): { lifecycle: PoolModuleLifecycleOptions; poolOptions: BackendPoolOptions } {
  if (typeof options !== 'object' || options === null) {
    throw new PoolConfigError(name, 'options', 'must be an object (the pool options)');
  }
  const { retryAttempts, retryDelayMs, shutdown, logger, ...poolOptions } = options as PoolModuleOptions &
    PoolModuleLifecycleOptions;
  // Checked as the engine checks its own options (typed errors naming the field); the values are kept as
  // given (openPool applies the defaults). Timer delays are at most MAX_TIMER_MS (Node fires a longer one
  // at once); the shutdown waits may be Infinity (unbounded).
  const read = new OptionReader(name, options as unknown as Record<string, unknown>);
  read.number('retryAttempts', 0, { min: 0, integer: true });
  read.number('retryDelayMs', 0, { min: 0, max: MAX_TIMER_MS });
  const shutdownRead = read.nested('shutdown');
  if (shutdownRead !== undefined) {
    shutdownRead.rejectUnknown(['drainTimeoutMs', 'closeTimeoutMs']);
    const wait = { min: 0, max: MAX_TIMER_MS, allowInfinity: true };
    shutdownRead.number('drainTimeoutMs', 0, wait);
    shutdownRead.number('closeTimeoutMs', 0, wait);
  }
  if (logger !== undefined && logger !== false && !isLoggerService(logger)) {
    throw new PoolConfigError(
      name,
      'logger',
      'must be false (silent) or a LoggerService (an object with log, warn and error methods)',
    );
  }
  return {
    lifecycle: { retryAttempts, retryDelayMs, shutdown, logger },
    poolOptions: poolOptions as BackendPoolOptions,
  };
}

function isLoggerService(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const service = value as Record<string, unknown>;
  return ['log', 'warn', 'error'].every((method) => typeof service[method] === 'function');
}

function messageOf(error: unknown): string {
  return typeof (error as { message?: unknown })?.message === 'string'
    ? (error as Error).message
    : String(error);
}
