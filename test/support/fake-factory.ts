/**
 * A controllable in-memory factory for the engine's unit tests (the only place test doubles are used:
 * backends are tested against real servers).
 */
import type { PoolFactory } from '../../lib/core/index.js';

export interface FakeConnection {
  readonly id: number;
  destroyed: boolean;
  /** Tests flip this to make validate() fail. */
  healthy: boolean;
  /** Set by tests to simulate state left behind by a borrower (reset() clears it). */
  dirty: boolean;
}

export interface FakeFactoryOptions {
  /** Delay of create(), ms (0 = resolve in a microtask). */
  createDelayMs?: number;
  validateDelayMs?: number;
  destroyDelayMs?: number;
  withValidate?: boolean;
  withReset?: boolean;
}

export class FakeFactory implements PoolFactory<FakeConnection> {
  readonly created: FakeConnection[] = [];
  readonly destroyedIds: number[] = [];
  createAttempts = 0;
  validations = 0;
  resets = 0;
  /** While > 0 (or `failing` is true), create() rejects. */
  failNext = 0;
  failing = false;
  failure: () => Error = () =>
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  /** create() never settles (until aborted). */
  hang = false;
  validateResult = true;
  createAttemptTimes: number[] = [];
  validate?: PoolFactory<FakeConnection>['validate'];
  reset?: PoolFactory<FakeConnection>['reset'];
  private nextId = 1;

  constructor(private readonly options: FakeFactoryOptions = {}) {
    if (options.withValidate) {
      this.validate = async (connection, signal) => {
        this.validations++;
        if (options.validateDelayMs) await delay(options.validateDelayMs, signal);
        return this.validateResult && connection.healthy && !connection.destroyed;
      };
    }
    if (options.withReset) {
      this.reset = async (connection) => {
        this.resets++;
        connection.dirty = false;
      };
    }
  }

  async create(signal: AbortSignal): Promise<FakeConnection> {
    this.createAttempts++;
    this.createAttemptTimes.push(performance.now());
    if (this.hang) {
      await new Promise((_, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
      );
    }
    if (this.options.createDelayMs) await delay(this.options.createDelayMs, signal);
    if (this.failing || this.failNext > 0) {
      if (this.failNext > 0) this.failNext--;
      throw this.failure();
    }
    const connection: FakeConnection = { id: this.nextId++, destroyed: false, healthy: true, dirty: false };
    this.created.push(connection);
    return connection;
  }

  async destroy(connection: FakeConnection): Promise<void> {
    if (this.options.destroyDelayMs) await delay(this.options.destroyDelayMs);
    if (connection.destroyed) throw new Error(`connection ${connection.id} destroyed twice`);
    connection.destroyed = true;
    this.destroyedIds.push(connection.id);
  }

  get live(): FakeConnection[] {
    return this.created.filter((c) => !c.destroyed);
  }
}

export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** Resolves after pending microtasks and one macrotask turn. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Polls `condition` until true or `timeoutMs` passes (then throws with `what`). */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(2);
  }
}
