import { describe, expect, it } from '@jest/globals';
import {
  PoolClosedError,
  PoolConfigError,
  PoolError,
  PoolQueueFullError,
  PoolTimeoutError,
  PoolUnavailableError,
} from '../../lib/core/index.js';

describe('Pool errors', () => {
  it('have distinct names, the pool name and a message that says which pool', () => {
    const cause = new Error('connect ECONNREFUSED');
    const timeout = new PoolTimeoutError(
      'users',
      { timeoutMs: 50, size: 2, active: 2, idle: 0, pending: 1, waiting: 3, max: 2 },
      { cause },
    );
    expect(timeout.name).toBe('PoolTimeoutError');
    expect(timeout.poolName).toBe('users');
    expect(timeout.cause).toBe(cause);
    expect(timeout.message).toContain('Pool "users": timed out after 50 ms');
    expect(timeout.message).toContain('last connection error: connect ECONNREFUSED');
    expect(timeout).toMatchObject({ size: 2, active: 2, waiting: 3 });
    expect(new PoolUnavailableError('a', 'x').name).toBe('PoolUnavailableError');
    expect(new PoolClosedError('a', 'x').name).toBe('PoolClosedError');
    expect(new PoolQueueFullError('a', 3).name).toBe('PoolQueueFullError');
    expect(new PoolConfigError('a', 'min', 'x').name).toBe('PoolConfigError');
  });

  it('answer instanceof for their own class and PoolError only', () => {
    const error = new PoolTimeoutError('p', {
      timeoutMs: 1,
      size: 0,
      active: 0,
      idle: 0,
      pending: 0,
      waiting: 0,
      max: 1,
    });
    expect(error).toBeInstanceOf(PoolTimeoutError);
    expect(error).toBeInstanceOf(PoolError);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(PoolClosedError);
    expect(new Error('plain')).not.toBeInstanceOf(PoolError);
    expect((null as unknown as object) instanceof PoolError).toBe(false);
  });

  it('answer instanceof for an error made by another copy of the classes (the other of the ESM/CJS builds)', () => {
    // Simulate the twin build: a class with the same name and the same global brand, but no shared prototype.
    const brand = Symbol.for('nestjs-pool.error-kinds');
    class TwinPoolClosedError extends Error {}
    Object.defineProperty(TwinPoolClosedError.prototype, brand, { value: ['PoolError', 'PoolClosedError'] });
    const foreign = new TwinPoolClosedError('closed');
    expect(foreign).toBeInstanceOf(PoolClosedError);
    expect(foreign).toBeInstanceOf(PoolError);
    expect(foreign).not.toBeInstanceOf(PoolTimeoutError);
  });
});
