/**
 * PoolConnectionError and the shared path that raises it (BackendPool.use → callError): a call whose
 * connection failed under it gets the typed error, with the driver's error (redacted) as `cause` and its
 * `code` copied; a statement error or the caller's own error passes unchanged; a connection the pool had
 * discarded for a query timeout reports the timeout, not its consequences. The backend here is a minimal
 * in-memory one registered through the public registerBackend(): what is tested is the shared layer, the
 * same for every backend (the backends' own specs check their drivers' real errors).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  BackendPool,
  createPool,
  PoolError,
  PoolQueryTimeoutError,
  registerBackend,
  unregisterBackend,
  type BackendContext,
  type BackendDefinition,
} from '../../lib/index.js';
import { PoolConnectionError } from '../../lib/backends/pool-connection-error.js';

const SECRET = 's3cret-pw';

interface FakeConnection {
  readonly id: number;
  /** Set by the test: the next call fails this way. */
  context?: BackendContext<FakeConnection>;
}

let nextId = 1;

/** A driver's socket error: a plain Error with a code, as Node makes them. */
function socketError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

function definition(withHook: boolean): BackendDefinition<FakeConnection> {
  return {
    requiresTarget: false,
    connect: (_signal, context) => Promise.resolve({ id: nextId++, context }),
    close: () => Promise.resolve(),
    ping: () => Promise.resolve(),
    isBroken: (_connection, error) => (error as { code?: unknown }).code === 'ECONNRESET',
    ...(withHook
      ? { isConnectionError: (error: unknown) => (error as { code?: unknown }).code === 'ECONNRESET' }
      : {}),
  };
}

beforeAll(() => {
  registerBackend('fake-conn-hook', definition(true));
  registerBackend('fake-conn-nohook', definition(false));
});
afterAll(() => {
  unregisterBackend('fake-conn-hook');
  unregisterBackend('fake-conn-nohook');
});

function newPool(backend = 'fake-conn-hook'): BackendPool<FakeConnection> {
  return createPool({
    name: 'conn-errors',
    backend,
    uri: `fake://app:${SECRET}@localhost/db`,
    pool: { max: 1, acquireTimeoutMs: 1000 },
  }) as BackendPool<FakeConnection>;
}

describe('PoolConnectionError', () => {
  it('is a branded PoolError: name, poolName, cause, and the cause’s code copied', () => {
    const cause = socketError('read ECONNRESET', 'ECONNRESET');
    const error = new PoolConnectionError('orders', cause);
    expect(error).toBeInstanceOf(PoolConnectionError);
    expect(error).toBeInstanceOf(PoolError);
    expect(error).toMatchObject({ name: 'PoolConnectionError', poolName: 'orders', code: 'ECONNRESET' });
    expect(error.cause).toBe(cause);
    expect(error.message).toBe('Pool "orders": the connection failed during the call: read ECONNRESET');
    // A SQLSTATE not in the message is appended, so the log line says which failure it was.
    const fatal = new PoolConnectionError(
      'orders',
      Object.assign(new Error('terminating'), { code: '57P01' }),
    );
    expect(fatal.code).toBe('57P01');
    expect(fatal.message).toMatch(/terminating \(57P01\)$/);
    // No code: none invented.
    expect(new PoolConnectionError('orders', new Error('Connection is closed.')).code).toBeUndefined();
  });

  it('answers instanceof for a twin class from another build (ESM and CJS loaded together)', () => {
    const brand = Symbol.for('nestjs-pool.error-kinds');
    class TwinPoolConnectionError extends Error {}
    Object.defineProperty(TwinPoolConnectionError.prototype, brand, {
      value: ['PoolError', 'PoolConnectionError'],
    });
    const foreign = new TwinPoolConnectionError('reset');
    expect(foreign).toBeInstanceOf(PoolConnectionError);
    expect(foreign).toBeInstanceOf(PoolError);
    expect(new PoolQueryTimeoutError('x', 10)).not.toBeInstanceOf(PoolConnectionError);
  });
});

describe('BackendPool.use: which error the caller gets', () => {
  it('a connection failure under the call: PoolConnectionError (redacted), and the connection is destroyed', async () => {
    const pool = newPool();
    await pool.start();
    try {
      const cause = socketError(`write ECONNRESET to app:${SECRET}@localhost`, 'ECONNRESET');
      const error = await pool
        .use(() => {
          throw cause;
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PoolConnectionError);
      expect(error).toMatchObject({ poolName: 'conn-errors', code: 'ECONNRESET' });
      expect((error as Error).cause).toBe(cause);
      expect(String((error as Error).message)).not.toContain(SECRET);
      expect(cause.message).not.toContain(SECRET); // redacted in place: the cause is safe to log too
      expect(pool.metrics().destroyed.error).toBe(1);
      // The next caller gets a fresh connection.
      const id = await pool.use((connection) => connection.id);
      expect(pool.metrics().created).toBe(2);
      expect(typeof id).toBe('number');
    } finally {
      await pool.close();
    }
  });

  it('a statement error passes unchanged, and the connection is reused', async () => {
    const pool = newPool();
    await pool.start();
    try {
      const statement = Object.assign(new Error('syntax error at or near "SELEC"'), { code: '42601' });
      const first = await pool.use((connection) => connection.id);
      await expect(
        pool.use(() => {
          throw statement;
        }),
      ).rejects.toBe(statement);
      expect(await pool.use((connection) => connection.id)).toBe(first);
      expect(pool.metrics().destroyed.error).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it("the caller's own error on a connection lost meanwhile passes unchanged (the connection is still dropped)", async () => {
    const pool = newPool();
    await pool.start();
    try {
      class NotFound extends Error {}
      const own = new NotFound('no such order');
      await expect(
        pool.use((connection) => {
          connection.context!.connectionLost(connection, socketError('socket closed', 'ECONNRESET'));
          throw own;
        }),
      ).rejects.toBe(own);
      expect(pool.metrics().destroyed.error).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('a backend without isConnectionError: every error of a call whose connection broke is typed', async () => {
    const pool = newPool('fake-conn-nohook');
    await pool.start();
    try {
      const cause = socketError('read ECONNRESET', 'ECONNRESET');
      const error = await pool
        .use(() => {
          throw cause;
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PoolConnectionError);
      expect((error as Error).cause).toBe(cause);
    } finally {
      await pool.close();
    }
  });

  it('a connection the pool discarded for a query timeout: the caller gets the timeout, not its consequence', async () => {
    const pool = newPool();
    await pool.start();
    try {
      const timeout = new PoolQueryTimeoutError('conn-errors', 50);
      const error = await pool
        .use((connection) => {
          // What a backend does when its query timer fires: the connection is discarded, its socket destroyed,
          // and the caller's code then sees the driver's "closed" error for it.
          connection.context!.discard(connection, timeout);
          throw socketError('Connection is closed.', 'ECONNRESET');
        })
        .catch((e: unknown) => e);
      expect(error).toBe(timeout);
      expect(pool.metrics().destroyed.error).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('the pool’s own errors pass unchanged', async () => {
    const pool = newPool();
    await pool.start();
    try {
      const own = new PoolQueryTimeoutError('conn-errors', 10);
      await expect(
        pool.use(() => {
          throw own;
        }),
      ).rejects.toBe(own);
    } finally {
      await pool.close();
    }
  });
});
