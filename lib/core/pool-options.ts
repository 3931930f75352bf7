/**
 * The engine's options: their types, defaults and validation. Validation runs once, in the constructor,
 * and turns every mistake into a PoolConfigError that names the pool and the field.
 */
import { PoolConfigError } from './pool-errors.js';

/** How the pool makes, checks, cleans and disposes of connections. Only `create` and `destroy` are required. */
export interface PoolFactory<T> {
  /** Open a connection. Honour `signal`: it aborts on `createTimeoutMs` and on `close()`. */
  create(signal: AbortSignal): Promise<T>;
  /** Close a connection. Bounded by `destroyTimeoutMs`; errors become `'error'` events. */
  destroy(connection: T): Promise<void>;
  /** Is this connection still usable (e.g. a ping)? Bounded by `validationTimeoutMs` through `signal`. */
  validate?(connection: T, signal: AbortSignal): Promise<boolean>;
  /**
   * Put a returned connection back into a clean state (e.g. ROLLBACK). Return nothing (synchronously) when
   * there is nothing to clean: the connection is then available again at once. A throw or rejection
   * destroys the connection.
   */
  reset?(connection: T): Promise<void> | void;
  /** Did `error` (thrown while the connection was lent) leave the connection unusable? */
  isBroken?(connection: T, error: unknown): boolean;
}

export interface CreateRetryOptions {
  /** Delay after the first failed create. Default 100. */
  initialDelayMs?: number;
  /** Upper bound of the delay. Default 1000. */
  maxDelayMs?: number;
  /** Growth factor per consecutive failure. Default 2. */
  factor?: number;
  /** Random fraction (0..1) taken off each delay so many pools don't retry in lock-step. Default 0.2. */
  jitter?: number;
}

export interface CircuitBreakerOptions {
  /** Consecutive create failures that open the circuit. Default 5. */
  failureThreshold?: number;
  /** How long the circuit stays open before one probe create is let through (half-open). Default 1000. */
  resetTimeoutMs?: number;
}

export interface DynamicSizingOptions {
  /** Length of one sample window. Default 1000. */
  sampleIntervalMs?: number;
  /** Consecutive quiet windows before the target steps down by one. Default 5. */
  shrinkAfterWindows?: number;
}

export type PoolOrder = 'fifo' | 'lifo';
export type StartupMode = 'fail-fast' | 'lazy';

/** Every option of the engine except `name` and `factory`: what backends accept under `pool`. */
export interface PoolEngineOptions {
  /** Connections kept open even when idle. Default 0. */
  min?: number;
  /** Upper bound on open connections (idle + lent + being created). Default 10. */
  max?: number;
  /** How long `acquire()` waits before rejecting with PoolTimeoutError. Default 10000. */
  acquireTimeoutMs?: number;
  /** How long one connection attempt may take. Default 10000. */
  createTimeoutMs?: number;
  /** How long one `factory.destroy` may take before the pool stops waiting for it. Default 5000. */
  destroyTimeoutMs?: number;
  /** Idle connections above `min` are closed after this long unused. 0 disables. Default 60000. */
  idleTimeoutMs?: number;
  /** Connections are retired after this age (a lent one when it is returned). 0 disables. Default 1800000. */
  maxLifetimeMs?: number;
  /** Fraction (0..0.5) by which each connection's lifetime is randomly shortened. Default 0.05. */
  maxLifetimeJitter?: number;
  /** Validate connections that sat idle this long (needs `factory.validate`). 0 disables. Default 0. */
  keepaliveMs?: number;
  /** Validate a connection before lending it. Default: true when `factory.validate` exists. */
  validateOnBorrow?: boolean;
  /** Skip borrow validation for a connection used within this window. Default 500. */
  validationBypassMs?: number;
  /** Validate a connection when it is returned. Default false. */
  testOnReturn?: boolean;
  /** Bound on one `factory.validate` call; a slower one counts as failed. Default 5000. */
  validationTimeoutMs?: number;
  /** Which idle connection is lent: the most recently returned (`lifo`) or the least (`fifo`). Default 'lifo'. */
  order?: PoolOrder;
  /** Bound on the wait queue; a caller beyond it gets PoolQueueFullError. Default Infinity. */
  maxWaiting?: number;
  /** Retire a connection after this many leases. 0 or Infinity disables. Default Infinity. */
  maxUses?: number;
  /** Emit `'leak'` for a lease held longer than this (captures the acquire stack). 0 disables. Default 0. */
  leakDetectionMs?: number;
  /** Connection attempts in flight at once. Default 2. */
  maxConcurrentCreates?: number;
  /** Backoff between failed connection attempts. */
  createRetry?: CreateRetryOptions;
  /** Fail fast while the server is down; `false` disables the breaker. */
  circuitBreaker?: CircuitBreakerOptions | false;
  /** `fail-fast`: `start()` opens max(min, 1) connections or rejects. `lazy`: it resolves at once. Default 'fail-fast'. */
  startup?: StartupMode;
  /** Bound on `start()` in fail-fast mode. Default 30000. */
  startupTimeoutMs?: number;
  /** Record how long each lease is held (the `use` histogram); also `pool.trackUseTime()`. Default false. */
  trackUseTime?: boolean;
  /**
   * A documented option set (see POOL_PRESETS) applied under the options given explicitly, which always
   * win. Default 'balanced' (the plain defaults).
   */
  preset?: PoolPresetName;
  /**
   * Keep a measured target size between `min` and `max` warm (grown when callers wait, shrunk when
   * connections sit idle); see DynamicSizer. `true` uses the default windows. The `dynamic` preset turns
   * it on. Default false.
   */
  dynamicSizing?: boolean | DynamicSizingOptions;
}

export interface PoolOptions<T> extends PoolEngineOptions {
  /** Names the pool in errors, events, metrics and logs. Default 'default'. */
  name?: string;
  factory: PoolFactory<T>;
}

export interface ResolvedCreateRetry {
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
  jitter: number;
}

export interface ResolvedCircuitBreaker {
  failureThreshold: number;
  resetTimeoutMs: number;
}

/** Options after defaults and validation; `0`-means-off values are normalised to `Infinity`/`0`. */
export interface ResolvedPoolOptions {
  name: string;
  factory: PoolFactory<unknown>;
  min: number;
  max: number;
  acquireTimeoutMs: number;
  createTimeoutMs: number;
  destroyTimeoutMs: number;
  idleTimeoutMs: number;
  maxLifetimeMs: number;
  maxLifetimeJitter: number;
  keepaliveMs: number;
  validateOnBorrow: boolean;
  validationBypassMs: number;
  testOnReturn: boolean;
  validationTimeoutMs: number;
  order: PoolOrder;
  maxWaiting: number;
  maxUses: number;
  leakDetectionMs: number;
  maxConcurrentCreates: number;
  createRetry: ResolvedCreateRetry;
  circuitBreaker: ResolvedCircuitBreaker | false;
  startup: StartupMode;
  startupTimeoutMs: number;
  trackUseTime: boolean;
  /** The preset the options were expanded from ('balanced' when none was given). */
  preset: PoolPresetName;
  dynamicSizing: ResolvedDynamicSizing | false;
}

export interface ResolvedDynamicSizing {
  sampleIntervalMs: number;
  shrinkAfterWindows: number;
}

export const DEFAULT_POOL_NAME = 'default';

/**
 * The longest delay a Node timer takes: 2^31 - 1 ms, about 24.8 days. Node fires a longer one after 1 ms
 * (with a TimeoutOverflowWarning), so a longer timeout would expire at once and a longer idle period would
 * wake housekeeping every millisecond: durations above it are rejected.
 */
export const MAX_TIMER_MS = 2_147_483_647;

export const POOL_DEFAULTS = Object.freeze({
  min: 0,
  max: 10,
  acquireTimeoutMs: 10_000,
  createTimeoutMs: 10_000,
  destroyTimeoutMs: 5_000,
  idleTimeoutMs: 60_000,
  maxLifetimeMs: 1_800_000,
  maxLifetimeJitter: 0.05,
  keepaliveMs: 0,
  validationBypassMs: 500,
  testOnReturn: false,
  validationTimeoutMs: 5_000,
  order: 'lifo' as PoolOrder,
  maxWaiting: Infinity,
  maxUses: Infinity,
  leakDetectionMs: 0,
  maxConcurrentCreates: 2,
  createRetry: Object.freeze({ initialDelayMs: 100, maxDelayMs: 1_000, factor: 2, jitter: 0.2 }),
  circuitBreaker: Object.freeze({ failureThreshold: 5, resetTimeoutMs: 1_000 }),
  startup: 'fail-fast' as StartupMode,
  startupTimeoutMs: 30_000,
  trackUseTime: false,
  dynamicSizing: Object.freeze({ sampleIntervalMs: 1_000, shrinkAfterWindows: 5 }),
});

export type PoolPresetName = 'balanced' | 'throughput' | 'latency' | 'dynamic';
export const POOL_PRESET_NAMES: readonly PoolPresetName[] = Object.freeze([
  'balanced',
  'throughput',
  'latency',
  'dynamic',
]);

/** A preset's option set. `min: 'max'` means "as many as `max`", whatever `max` ends up being. */
export type PoolPresetOptions = Readonly<
  Omit<PoolEngineOptions, 'preset' | 'min' | 'createRetry' | 'circuitBreaker'> & { min?: number | 'max' }
>;

/**
 * The presets, applied under the caller's explicit options. Options that need `factory.validate`
 * (validateOnBorrow, keepaliveMs) are left out when the factory has none, so a preset never makes a
 * valid configuration invalid.
 */
export const POOL_PRESETS: Readonly<Record<PoolPresetName, PoolPresetOptions>> = Object.freeze({
  /** The plain defaults: no connection kept open unless asked (`min` 0), idle ones closed after 60 s. */
  balanced: Object.freeze({}),
  /**
   * Sustained heavy traffic: every connection opened at start and kept (`min` = `max`, so no create ever
   * lands on the request path), the most recently returned (hottest) one lent first, borrow validation
   * skipped for anything used in the last 5 s (a busy connection has just proven itself), more connects in
   * flight so a refill after a failover is quick, and no validation round trip on return.
   */
  throughput: Object.freeze({
    min: 'max',
    order: 'lifo',
    validationBypassMs: 5_000,
    maxConcurrentCreates: 4,
    testOnReturn: false,
  }),
  /**
   * Latency-sensitive callers: every connection warm (`min` = `max`), fail fast rather than queue for long
   * (acquire 1 s, connect 2 s), and keep idle connections proven in the background (keepalive every 5 s)
   * so that borrow validation, still on as a safety net, almost never costs a round trip (bypass 10 s).
   */
  latency: Object.freeze({
    min: 'max',
    order: 'lifo',
    acquireTimeoutMs: 1_000,
    createTimeoutMs: 2_000,
    validateOnBorrow: true,
    validationBypassMs: 10_000,
    keepaliveMs: 5_000,
  }),
  /**
   * Variable traffic: `min` stays as given and the dynamic sizer keeps a measured target warm between
   * `min` and `max`. LIFO keeps the surplus at the cold end of the idle list, where a 10 s idle timeout
   * closes it once the target has come down.
   */
  dynamic: Object.freeze({
    dynamicSizing: true,
    order: 'lifo',
    idleTimeoutMs: 10_000,
  }),
});

/** The option names the engine accepts (besides `name` and `factory`). */
export const POOL_ENGINE_OPTION_KEYS: readonly (keyof PoolEngineOptions)[] = Object.freeze([
  'min',
  'max',
  'acquireTimeoutMs',
  'createTimeoutMs',
  'destroyTimeoutMs',
  'idleTimeoutMs',
  'maxLifetimeMs',
  'maxLifetimeJitter',
  'keepaliveMs',
  'validateOnBorrow',
  'validationBypassMs',
  'testOnReturn',
  'validationTimeoutMs',
  'order',
  'maxWaiting',
  'maxUses',
  'leakDetectionMs',
  'maxConcurrentCreates',
  'createRetry',
  'circuitBreaker',
  'startup',
  'startupTimeoutMs',
  'trackUseTime',
  'preset',
  'dynamicSizing',
]);

const POOL_OPTION_KEYS: readonly string[] = ['name', 'factory', ...POOL_ENGINE_OPTION_KEYS];

/** Reads and checks one options object, reporting errors against `poolName` and a field prefix. */
export class OptionReader {
  constructor(
    readonly poolName: string,
    private readonly source: Record<string, unknown>,
    private readonly prefix = '',
  ) {}

  fail(field: string, reason: string): never {
    throw new PoolConfigError(this.poolName, this.prefix + field, reason);
  }

  /** Rejects keys that are not in `known`, suggesting the closest known one. */
  rejectUnknown(known: readonly string[]): void {
    for (const key of Object.keys(this.source)) {
      if (known.includes(key)) continue;
      const suggestion = closest(key, known);
      this.fail(key, `unknown option${suggestion ? `; did you mean "${this.prefix}${suggestion}"?` : ''}`);
    }
  }

  /**
   * A number in [min, max]. `Infinity` is accepted only when `allowInfinity`; `integer` requires a whole number.
   * A string (e.g. straight from `process.env`) is rejected rather than guessed at.
   */
  number(
    field: string,
    fallback: number,
    rule: { min: number; max?: number; integer?: boolean; allowInfinity?: boolean; exclusiveMin?: boolean },
  ): number {
    const value = this.source[field];
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || Number.isNaN(value)) {
      this.fail(field, `must be a number (got ${describe(value)})`);
    }
    if (value === Infinity && rule.allowInfinity) return value;
    if (!Number.isFinite(value)) this.fail(field, `must be a finite number (got ${value})`);
    if (rule.integer && !Number.isInteger(value)) this.fail(field, `must be a whole number (got ${value})`);
    if (rule.exclusiveMin ? value <= rule.min : value < rule.min) {
      this.fail(
        field,
        `must be ${rule.exclusiveMin ? 'greater than' : 'at least'} ${rule.min} (got ${value})`,
      );
    }
    if (rule.max !== undefined && value > rule.max) {
      const unit = rule.max === MAX_TIMER_MS ? ' ms, the longest a Node timer can wait' : '';
      this.fail(field, `must be at most ${rule.max}${unit} (got ${value})`);
    }
    return value;
  }

  /** A duration where 0 (or Infinity) means "off"; returns Infinity for off. */
  optionalDuration(field: string, fallback: number): number {
    const value = this.number(field, fallback, { min: 0, max: MAX_TIMER_MS, allowInfinity: true });
    return value === 0 ? Infinity : value;
  }

  boolean(field: string, fallback: boolean): boolean {
    const value = this.source[field];
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') this.fail(field, `must be true or false (got ${describe(value)})`);
    return value;
  }

  oneOf<V extends string>(field: string, fallback: V, allowed: readonly V[]): V {
    const value = this.source[field];
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.fail(field, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')} (got ${describe(value)})`);
    }
    return value as V;
  }

  /** A nested options object, read with its own reader (field names prefixed, e.g. `createRetry.factor`). */
  nested(field: string): OptionReader | undefined {
    const value = this.source[field];
    if (value === undefined) return undefined;
    if (!isPlainObject(value)) this.fail(field, `must be an object (got ${describe(value)})`);
    return new OptionReader(this.poolName, value, `${this.prefix}${field}.`);
  }

  raw(field: string): unknown {
    return this.source[field];
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Short, credential-free description of a bad value for an error message. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `a string "${value.length > 20 ? value.slice(0, 20) + '…' : value}"`;
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  return `${typeof value} ${String(value)}`;
}

function closest(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(input.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = editDistance(input.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

export interface ResolvePoolOptionsSettings {
  /** Prefix for reported field names, e.g. `pool.` when the engine options sit under `pool`. */
  fieldPrefix?: string;
}

/** Applies defaults and validates. Throws PoolConfigError naming the pool and the field. */
export function resolvePoolOptions(
  input: unknown,
  settings?: ResolvePoolOptionsSettings,
): ResolvedPoolOptions {
  const prefix = settings?.fieldPrefix ?? '';
  if (!isPlainObject(input)) {
    throw new PoolConfigError(
      DEFAULT_POOL_NAME,
      prefix || 'options',
      `must be an object (got ${describe(input)})`,
    );
  }
  const rawName = input['name'];
  if (rawName !== undefined && (typeof rawName !== 'string' || rawName.trim() === '')) {
    throw new PoolConfigError(String(rawName ?? DEFAULT_POOL_NAME), 'name', 'must be a non-empty string');
  }
  const name = (rawName as string | undefined) ?? DEFAULT_POOL_NAME;
  const explicit = new OptionReader(name, input, prefix);
  explicit.rejectUnknown(POOL_OPTION_KEYS);
  const preset = explicit.oneOf('preset', 'balanced', POOL_PRESET_NAMES);
  const factory = readFactory(explicit);
  const { min: presetMin, ...presetRest } = POOL_PRESETS[preset];
  const read = new OptionReader(name, underPreset(presetRest, input, factory), prefix);
  const d = POOL_DEFAULTS;

  let min: number;
  let max: number;
  if (presetMin === 'max' && read.raw('min') === undefined) {
    max = read.number('max', d.max, { min: 1, integer: true });
    min = max;
  } else {
    min = read.number('min', typeof presetMin === 'number' ? presetMin : d.min, { min: 0, integer: true });
    max = read.number('max', d.max, { min: 1, integer: true });
  }
  if (min > max) read.fail('min', `must not be greater than max (min ${min}, max ${max})`);

  // Every duration that arms a timer: above 0, at most what a Node timer can wait.
  const timerDelay = { min: 0, exclusiveMin: true, max: MAX_TIMER_MS } as const;
  const retry = read.nested('createRetry');
  const createRetry: ResolvedCreateRetry = {
    initialDelayMs:
      retry?.number('initialDelayMs', d.createRetry.initialDelayMs, timerDelay) ??
      d.createRetry.initialDelayMs,
    maxDelayMs: retry?.number('maxDelayMs', d.createRetry.maxDelayMs, timerDelay) ?? d.createRetry.maxDelayMs,
    factor: retry?.number('factor', d.createRetry.factor, { min: 1 }) ?? d.createRetry.factor,
    jitter: retry?.number('jitter', d.createRetry.jitter, { min: 0, max: 1 }) ?? d.createRetry.jitter,
  };
  retry?.rejectUnknown(['initialDelayMs', 'maxDelayMs', 'factor', 'jitter']);
  if (createRetry.maxDelayMs < createRetry.initialDelayMs) {
    // Blame the field the user set: with only initialDelayMs given, it is the one above the default ceiling.
    if (retry!.raw('maxDelayMs') === undefined) {
      retry!.fail(
        'initialDelayMs',
        `must not be greater than createRetry.maxDelayMs (${createRetry.initialDelayMs} > ${createRetry.maxDelayMs}, ` +
          `the default); set createRetry.maxDelayMs too`,
      );
    }
    retry!.fail(
      'maxDelayMs',
      `must not be less than createRetry.initialDelayMs (${createRetry.maxDelayMs} < ${createRetry.initialDelayMs})`,
    );
  }

  let circuitBreaker: ResolvedCircuitBreaker | false;
  if (read.raw('circuitBreaker') === false) {
    circuitBreaker = false;
  } else {
    const breaker = read.nested('circuitBreaker');
    breaker?.rejectUnknown(['failureThreshold', 'resetTimeoutMs']);
    circuitBreaker = {
      failureThreshold:
        breaker?.number('failureThreshold', d.circuitBreaker.failureThreshold, { min: 1, integer: true }) ??
        d.circuitBreaker.failureThreshold,
      resetTimeoutMs:
        breaker?.number('resetTimeoutMs', d.circuitBreaker.resetTimeoutMs, timerDelay) ??
        d.circuitBreaker.resetTimeoutMs,
    };
  }

  const validateOnBorrow = read.boolean('validateOnBorrow', factory.validate !== undefined);
  const testOnReturn = read.boolean('testOnReturn', d.testOnReturn);
  const keepaliveMs = read.optionalDuration('keepaliveMs', d.keepaliveMs);
  if (factory.validate === undefined) {
    if (validateOnBorrow) read.fail('validateOnBorrow', 'needs factory.validate');
    if (testOnReturn) read.fail('testOnReturn', 'needs factory.validate');
    if (keepaliveMs !== Infinity) read.fail('keepaliveMs', 'needs factory.validate');
  }

  const maxUses = read.number('maxUses', d.maxUses, { min: 0, integer: true, allowInfinity: true });

  return {
    name,
    factory: factory as PoolFactory<unknown>,
    min,
    max,
    acquireTimeoutMs: read.number('acquireTimeoutMs', d.acquireTimeoutMs, timerDelay),
    createTimeoutMs: read.number('createTimeoutMs', d.createTimeoutMs, timerDelay),
    destroyTimeoutMs: read.number('destroyTimeoutMs', d.destroyTimeoutMs, timerDelay),
    idleTimeoutMs: read.optionalDuration('idleTimeoutMs', d.idleTimeoutMs),
    maxLifetimeMs: read.optionalDuration('maxLifetimeMs', d.maxLifetimeMs),
    maxLifetimeJitter: read.number('maxLifetimeJitter', d.maxLifetimeJitter, { min: 0, max: 0.5 }),
    keepaliveMs,
    validateOnBorrow,
    validationBypassMs: read.number('validationBypassMs', d.validationBypassMs, { min: 0 }),
    testOnReturn,
    validationTimeoutMs: read.number('validationTimeoutMs', d.validationTimeoutMs, timerDelay),
    order: read.oneOf('order', d.order, ['fifo', 'lifo']),
    maxWaiting: read.number('maxWaiting', d.maxWaiting, { min: 0, integer: true, allowInfinity: true }),
    maxUses: maxUses === 0 ? Infinity : maxUses,
    leakDetectionMs: read.optionalDuration('leakDetectionMs', d.leakDetectionMs),
    maxConcurrentCreates: read.number('maxConcurrentCreates', d.maxConcurrentCreates, {
      min: 1,
      integer: true,
    }),
    createRetry,
    circuitBreaker,
    startup: read.oneOf('startup', d.startup, ['fail-fast', 'lazy']),
    startupTimeoutMs: read.number('startupTimeoutMs', d.startupTimeoutMs, timerDelay),
    trackUseTime: read.boolean('trackUseTime', d.trackUseTime),
    preset,
    dynamicSizing: readDynamicSizing(read),
  };
}

/**
 * The preset's options with the explicit ones on top. An explicit `undefined` counts as not given, and
 * preset options that need `factory.validate` are dropped when the factory has none.
 */
function underPreset(
  preset: PoolPresetOptions,
  input: Record<string, unknown>,
  factory: PoolFactory<unknown>,
): Record<string, unknown> {
  const merged: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(preset)) {
    if (factory.validate === undefined && (key === 'validateOnBorrow' || key === 'keepaliveMs')) continue;
    merged[key] = value;
  }
  for (const [key, value] of Object.entries(input)) if (value !== undefined) merged[key] = value;
  return merged;
}

function readDynamicSizing(read: OptionReader): ResolvedDynamicSizing | false {
  const raw = read.raw('dynamicSizing');
  const d = POOL_DEFAULTS.dynamicSizing;
  if (raw === undefined || raw === false) return false;
  if (raw === true) return { ...d };
  if (!isPlainObject(raw))
    read.fail('dynamicSizing', `must be true, false or an object (got ${describe(raw)})`);
  const nested = read.nested('dynamicSizing')!;
  nested.rejectUnknown(['sampleIntervalMs', 'shrinkAfterWindows']);
  return {
    sampleIntervalMs: nested.number('sampleIntervalMs', d.sampleIntervalMs, { min: 1, max: MAX_TIMER_MS }),
    shrinkAfterWindows: nested.number('shrinkAfterWindows', d.shrinkAfterWindows, { min: 1, integer: true }),
  };
}

function readFactory(read: OptionReader): PoolFactory<unknown> {
  const factory = read.raw('factory');
  if (factory === undefined) read.fail('factory', 'is required (an object with create() and destroy())');
  if (typeof factory !== 'object' || factory === null)
    read.fail('factory', `must be an object (got ${describe(factory)})`);
  const f = factory as Record<string, unknown>;
  for (const method of ['create', 'destroy'] as const) {
    if (typeof f[method] !== 'function') read.fail(`factory.${method}`, 'is required and must be a function');
  }
  for (const method of ['validate', 'reset', 'isBroken'] as const) {
    if (f[method] !== undefined && typeof f[method] !== 'function') {
      read.fail(`factory.${method}`, `must be a function (got ${describe(f[method])})`);
    }
  }
  return factory as PoolFactory<unknown>;
}
