import { describe, expect, it } from '@jest/globals';
import {
  MAX_TIMER_MS,
  Pool,
  PoolConfigError,
  PoolError,
  POOL_DEFAULTS,
  type PoolOptions,
} from '../../lib/core/index.js';
import { FakeFactory, type FakeConnection } from '../support/fake-factory.js';

function configError(options: unknown): PoolConfigError {
  try {
    new Pool(options as PoolOptions<FakeConnection>);
  } catch (error) {
    expect(error).toBeInstanceOf(PoolConfigError);
    expect(error).toBeInstanceOf(PoolError);
    return error as PoolConfigError;
  }
  throw new Error('expected a PoolConfigError');
}

describe('Pool options', () => {
  const factory = new FakeFactory();

  it('applies documented defaults', () => {
    const pool = new Pool({ name: 'users', factory });
    expect(pool.options).toMatchObject({
      name: 'users',
      min: POOL_DEFAULTS.min,
      max: POOL_DEFAULTS.max,
      acquireTimeoutMs: 10_000,
      idleTimeoutMs: 60_000,
      maxLifetimeMs: 1_800_000,
      maxLifetimeJitter: 0.05,
      keepaliveMs: Infinity,
      validateOnBorrow: false,
      validationBypassMs: 500,
      order: 'lifo',
      maxWaiting: Infinity,
      maxUses: Infinity,
      leakDetectionMs: Infinity,
      createRetry: { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.2 },
      circuitBreaker: { failureThreshold: 5, resetTimeoutMs: 1000 },
      startup: 'fail-fast',
    });
    expect(new Pool({ factory }).name).toBe('default');
  });

  it('turns validateOnBorrow on by default when the factory can validate', () => {
    const pool = new Pool({ factory: new FakeFactory({ withValidate: true }) });
    expect(pool.options.validateOnBorrow).toBe(true);
  });

  it('rejects min > max naming the pool and the field', () => {
    const error = configError({ name: 'users', factory, min: 5, max: 2 });
    expect(error.poolName).toBe('users');
    expect(error.field).toBe('min');
    expect(error.name).toBe('PoolConfigError');
    expect(error.message).toBe(
      'Pool "users": invalid option "min": must not be greater than max (min 5, max 2)',
    );
  });

  it.each([
    [{ acquireTimeoutMs: -1 }, 'acquireTimeoutMs', 'greater than 0'],
    [{ acquireTimeoutMs: '5000' }, 'acquireTimeoutMs', 'must be a number (got a string "5000")'],
    [{ idleTimeoutMs: NaN }, 'idleTimeoutMs', 'must be a number'],
    [{ createTimeoutMs: 0 }, 'createTimeoutMs', 'greater than 0'],
    [{ max: 0 }, 'max', 'at least 1'],
    [{ max: 2.5 }, 'max', 'whole number'],
    [{ order: 'random' }, 'order', "one of 'fifo', 'lifo'"],
    [{ startup: 'eager' }, 'startup', "one of 'fail-fast', 'lazy'"],
    [{ maxLifetimeJitter: 0.9 }, 'maxLifetimeJitter', 'at most 0.5'],
    [{ createRetry: { factor: 0.5 } }, 'createRetry.factor', 'at least 1'],
    [
      { createRetry: { initialDelayMs: 500, maxDelayMs: 100 } },
      'createRetry.maxDelayMs',
      'must not be less than',
    ],
    // Only initialDelayMs given, above the default ceiling: the error names the field the user wrote.
    [
      { createRetry: { initialDelayMs: 5000 } },
      'createRetry.initialDelayMs',
      'must not be greater than createRetry.maxDelayMs',
    ],
    [{ createRetry: { backoff: 1 } }, 'createRetry.backoff', 'unknown option'],
    [{ circuitBreaker: { failureThreshold: 0 } }, 'circuitBreaker.failureThreshold', 'at least 1'],
    [{ circuitBreaker: 'yes' }, 'circuitBreaker', 'must be an object'],
    [{ validateOnBorrow: 'true' }, 'validateOnBorrow', 'true or false'],
    [{ validateOnBorrow: true }, 'validateOnBorrow', 'needs factory.validate'],
    [{ keepaliveMs: 1000 }, 'keepaliveMs', 'needs factory.validate'],
    [{ maxWaiting: -1 }, 'maxWaiting', 'at least 0'],
    // Node fires a timer longer than 2^31 - 1 ms after 1 ms: such a timeout would expire at once.
    [
      { createTimeoutMs: 2 ** 31 },
      'createTimeoutMs',
      'at most 2147483647 ms, the longest a Node timer can wait',
    ],
    [{ acquireTimeoutMs: 1e10 }, 'acquireTimeoutMs', 'at most 2147483647 ms'],
    [{ idleTimeoutMs: 2 ** 31 }, 'idleTimeoutMs', 'at most 2147483647 ms'],
    [
      { circuitBreaker: { resetTimeoutMs: 2 ** 32 } },
      'circuitBreaker.resetTimeoutMs',
      'at most 2147483647 ms',
    ],
  ])('rejects %j as field %s', (extra, field, reason) => {
    const error = configError({ name: 'p', factory, ...extra });
    expect(error.field).toBe(field);
    expect(error.message).toContain(reason);
    expect(error.message).toContain('Pool "p"');
  });

  it('rejects unknown options and suggests the intended one', () => {
    const error = configError({ name: 'p', factory, maxLifetime: 1000 });
    expect(error.field).toBe('maxLifetime');
    expect(error.message).toContain('unknown option; did you mean "maxLifetimeMs"?');
  });

  it('requires a factory with create and destroy', () => {
    expect(configError({ name: 'p' }).field).toBe('factory');
    expect(configError({ name: 'p', factory: { create: async () => 1 } }).field).toBe('factory.destroy');
    expect(configError({ name: 'p', factory: { ...factory, create: 1 } }).field).toBe('factory.create');
    expect(
      configError({ name: 'p', factory: { create: async () => 1, destroy: async () => {}, validate: 3 } })
        .field,
    ).toBe('factory.validate');
  });

  it('rejects a non-object and an empty name', () => {
    expect(configError(undefined).field).toBe('options');
    expect(configError({ name: '', factory }).field).toBe('name');
  });

  it('accepts 0 as "off" for optional durations, and circuitBreaker: false', () => {
    const pool = new Pool({
      factory,
      idleTimeoutMs: 0,
      maxLifetimeMs: 0,
      leakDetectionMs: 0,
      maxUses: 0,
      circuitBreaker: false,
    });
    expect(pool.options.idleTimeoutMs).toBe(Infinity);
    expect(pool.options.maxLifetimeMs).toBe(Infinity);
    expect(pool.options.maxUses).toBe(Infinity);
    expect(pool.options.circuitBreaker).toBe(false);
    expect(pool.metrics().circuit).toBe('closed');
  });

  it('accepts the longest timer delay, and Infinity where a duration can be off', () => {
    const pool = new Pool({ factory, acquireTimeoutMs: MAX_TIMER_MS, idleTimeoutMs: Infinity });
    expect(pool.options.acquireTimeoutMs).toBe(2_147_483_647);
    expect(pool.options.idleTimeoutMs).toBe(Infinity);
  });

  it('rejects bad per-call acquire options with a typed error', async () => {
    const pool = new Pool({ name: 'p', factory });
    await expect(pool.acquire({ timeoutMs: -5 })).rejects.toMatchObject({
      name: 'PoolConfigError',
      field: 'timeoutMs',
    });
    await expect(pool.acquire({ timeoutMs: 2 ** 31 })).rejects.toMatchObject({ field: 'timeoutMs' });
    await expect(pool.drain({ timeoutMs: 2 ** 31 })).rejects.toMatchObject({ field: 'drain.timeoutMs' });
    await expect(pool.close({ timeoutMs: -1 })).rejects.toMatchObject({ field: 'close.timeoutMs' });
    await expect(pool.acquire({ priority: Number.NaN })).rejects.toMatchObject({ field: 'priority' });
    await pool.close();
  });
});
