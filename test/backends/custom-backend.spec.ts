/**
 * registerBackend(): a user's backend goes through the same public path as the built-in ones. The backend
 * here speaks a tiny line protocol over real node:net sockets to a server started by the test (PING → PONG,
 * ECHO x → x, SLEEP ms → after ms), and gets option validation, leases, connection-loss handling,
 * query timeouts, health checks and redaction from the shared layer.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { inspect } from 'node:util';
import {
  BackendPool,
  createPool,
  knownBackends,
  loadDriver,
  PoolConfigError,
  PoolDriverMissingError,
  PoolError,
  PoolQueryTimeoutError,
  registerBackend,
  unregisterBackend,
  withQueryTimeout,
  type BackendContext,
  type PoolErrorContext,
} from '../../lib/index.js';

// ------------------------------------------------------------------------------------------------------
// The server: one line in, one line out.
// ------------------------------------------------------------------------------------------------------

let server: Server;
let port: number;
const serverSockets = new Set<Socket>();

beforeAll(async () => {
  server = createServer((socket) => {
    serverSockets.add(socket);
    socket.on('close', () => serverSockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const [command, ...rest] = line.split(' ');
        const argument = rest.join(' ');
        if (command === 'PING') socket.write('PONG\n');
        else if (command === 'ECHO') socket.write(`${argument}\n`);
        else if (command === 'SLEEP')
          setTimeout(() => socket.writable && socket.write('AWAKE\n'), Number(argument));
        else socket.write(`ERR unknown command\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  for (const socket of serverSockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

// ------------------------------------------------------------------------------------------------------
// The client side: a connection class, the backend definition and a pool class with a `request` method.
// ------------------------------------------------------------------------------------------------------

class LineConnection {
  private buffered = '';
  private readonly pending: ((line: string) => void)[] = [];
  /** What the backend's connectionStats hook reports: requests answered, their time, the last ERR answer. */
  readonly stats: { queries: number; totalQueryMs: number; lastError?: string } = {
    queries: 0,
    totalQueryMs: 0,
  };

  constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      for (let nl = this.buffered.indexOf('\n'); nl !== -1; nl = this.buffered.indexOf('\n')) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        this.pending.shift()?.(line);
      }
    });
  }

  request(line: string): Promise<string> {
    if (this.socket.destroyed) return Promise.reject(new Error('socket closed'));
    const started = performance.now();
    return new Promise<string>((resolve, reject) => {
      this.pending.push((answer) => {
        this.stats.queries++;
        this.stats.totalQueryMs += performance.now() - started;
        if (answer.startsWith('ERR')) this.stats.lastError = `server answered ${answer}`;
        resolve(answer);
      });
      this.socket.once('close', () => reject(new Error('socket closed')));
      this.socket.write(`${line}\n`);
    });
  }
}

class LinePool extends BackendPool<LineConnection> {
  request(line: string): Promise<string> {
    return this.use((connection) =>
      withQueryTimeout(connection.request(line), {
        poolName: this.name,
        timeoutMs: this.queryTimeoutMs,
        onTimeout: () => connection.socket.destroy(),
      }),
    );
  }
}

function connectLine(signal: AbortSignal, context: BackendContext<LineConnection>): Promise<LineConnection> {
  const url = new URL(context.options.uri!);
  return new Promise<LineConnection>((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    const onAbort = (): void => {
      socket.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', (error) => {
      signal.removeEventListener('abort', onAbort);
      reject(error);
    });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      const connection = new LineConnection(socket);
      socket.removeAllListeners('error');
      socket.on('error', (error) => context.connectionLost(connection, error));
      socket.on('close', () => context.connectionLost(connection, new Error('server closed the connection')));
      resolve(connection);
    });
  });
}

registerBackend<LineConnection>('line', {
  uriSchemes: ['line'],
  optionKeys: ['greeting'],
  validateOptions(options, fail) {
    const greeting = options.extras['greeting'];
    if (greeting !== undefined && typeof greeting !== 'string') fail('greeting', 'must be a string');
  },
  connect: connectLine,
  async close(connection) {
    connection.socket.destroy();
  },
  async ping(connection) {
    const answer = await connection.request('PING');
    if (answer !== 'PONG') throw new Error(`unexpected answer ${answer}`);
  },
  isBroken: (connection) => connection.socket.destroyed,
  connectionStats: (connection) => connection.stats,
  createPool: (init) => new LinePool(init),
});

const SECRET = 'Line-Pa55w0rd-7a1';

function linePool(extra: Record<string, unknown> = {}): LinePool {
  return createPool<LineConnection>({
    name: 'lines',
    backend: 'line',
    uri: `line://user:${SECRET}@127.0.0.1:${port}`,
    pool: { max: 2 },
    ...extra,
  }) as LinePool;
}

describe('a registered backend', () => {
  it('is listed and created through createPool(), with its own pool class', async () => {
    expect(knownBackends()).toEqual(expect.arrayContaining(['postgres', 'line']));
    const pool = linePool({ greeting: 'hello' });
    expect(pool).toBeInstanceOf(LinePool);
    expect(pool).toBeInstanceOf(BackendPool);
    expect(pool.target).toBe(`line://user:***@127.0.0.1:${port}`);
    expect(inspect(pool)).toMatch(
      /^LinePool \{ name: 'lines', backend: 'line', target: 'line:\/\/user:\*\*\*@/,
    );
    await pool.start();
    try {
      expect(await pool.request('ECHO hi')).toBe('hi');
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => pool.request(`ECHO ${i}`)));
      expect(answers).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
      expect(serverSockets.size).toBeLessThanOrEqual(2);
      expect(await pool.use((c) => c.request('PING'))).toBe('PONG');
      expect((await pool.checkHealth({ timeoutMs: 500 })).status).toBe('up');
    } finally {
      await pool.close();
    }
    await waitFor(() => serverSockets.size === 0);
  });

  it('validates its extras and the common options like any backend', () => {
    expect(() => linePool({ greeting: 5 })).toThrow(PoolConfigError);
    expect(() => linePool({ greeting: 5 })).toThrow(
      'Pool "lines": invalid option "greeting": must be a string',
    );
    expect(() => linePool({ greting: 'x' })).toThrow(
      /invalid option "greting": unknown option; did you mean "greeting"\?/,
    );
    expect(() => linePool({ uri: `postgres://user:${SECRET}@127.0.0.1:1/x` })).toThrow(
      'Pool "lines": invalid option "uri": must start with line:// (got a "postgres:" URI)',
    );
    expect(() => linePool({ pool: { min: 3, max: 1 } })).toThrow(/invalid option "pool.min"/);
    expect(() => createPool({ name: 'x', backend: 'nope', uri: 'line://h:1' })).toThrow(
      /unknown backend "nope"; known backends: "postgres", "mongodb", "redis", "line"/,
    );
  });

  it('drops connections the server closes (error event, phase connection) and serves with fresh ones', async () => {
    const pool = linePool({ pool: { min: 2, max: 2 } });
    const errors: { error: Error; context: PoolErrorContext }[] = [];
    pool.on('error', (error, context) => errors.push({ error, context }));
    await pool.start();
    try {
      await waitFor(() => pool.metrics().size === 2 && serverSockets.size === 2);
      for (const socket of serverSockets) socket.destroy();
      await waitFor(() => errors.length === 2);
      expect(errors.map((e) => e.context.phase)).toEqual(['connection', 'connection']);
      expect(errors[0]!.error.message).toMatch(/^Pool "lines": a connection failed and is dropped/);
      expect(await Promise.all([pool.request('ECHO a'), pool.request('ECHO b')])).toEqual(['a', 'b']);
      expect(pool.metrics().destroyed.error).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('gets query timeouts from the shared helper', async () => {
    const pool = linePool({ queryTimeoutMs: 100 });
    try {
      const error = await pool.request('SLEEP 2000').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PoolQueryTimeoutError);
      expect((error as Error).message).toBe(
        'Pool "lines": query timed out after 100 ms; its connection was destroyed',
      );
      expect(pool.metrics().destroyed.error).toBe(1);
      expect(await pool.request('ECHO after')).toBe('after');
    } finally {
      await pool.close();
    }
  });
});

describe('connections() of a registered backend', () => {
  it("lists the engine's connections with what the definition's connectionStats hook reports, redacted", async () => {
    const pool = linePool({ pool: { max: 1, validateOnBorrow: false } });
    await pool.start();
    try {
      const lease = await pool.acquire();
      await lease.connection.request('ECHO a');
      await lease.connection.request('SLEEP 5');
      await lease.connection.request(`ECHO ERR bad token ${SECRET}`);
      const [held, ...rest] = pool.connections();
      expect(rest).toEqual([]);
      expect(held).toMatchObject({ state: 'lent', uses: 1, queries: 3, idleMs: 0 });
      expect(held!.avgQueryMs).toBeGreaterThan(5 / 3 - 0.5);
      expect(held!.lastError).toBe('server answered ERR bad token ***');
      lease.release();
      const [idle] = pool.connections();
      expect(idle).toMatchObject({ id: held!.id, state: 'idle', uses: 1, queries: 3 });
      expect(JSON.stringify(pool.connections())).not.toContain(SECRET);
      expect(JSON.stringify(pool.connections())).not.toContain('socket');
    } finally {
      await pool.close();
    }
  });

  it('shows no queries for a backend without the hook', async () => {
    registerBackend<LineConnection>('line-plain', {
      uriSchemes: ['line'],
      connect: connectLine,
      async close(connection) {
        connection.socket.destroy();
      },
      async ping() {},
    });
    const pool = createPool<LineConnection>({
      name: 'plain',
      backend: 'line-plain',
      uri: `line://127.0.0.1:${port}`,
      pool: { max: 1 },
    });
    await pool.start();
    try {
      await pool.use((connection) => connection.request('ECHO x'));
      expect(pool.connections()).toEqual([
        expect.objectContaining({ state: 'idle', uses: 1, queries: 0, avgQueryMs: null }),
      ]);
    } finally {
      await pool.close();
      unregisterBackend('line-plain');
    }
  });
});

describe('registerBackend() errors', () => {
  it('rejects bad names, taken names and incomplete definitions', () => {
    const minimal = { connect: connectLine, close: async () => undefined, ping: async () => undefined };
    expect(() => registerBackend('postgres', minimal)).toThrow(TypeError);
    expect(() => registerBackend('line', minimal)).toThrow(
      'registerBackend(): a backend named "line" already exists',
    );
    expect(() => registerBackend('', minimal)).toThrow(TypeError);
    expect(() => registerBackend('bad name', minimal)).toThrow(TypeError);
    expect(() =>
      registerBackend('half', {
        connect: connectLine,
        close: async () => undefined,
      } as unknown as typeof minimal),
    ).toThrow('registerBackend("half"): definition.ping must be a function');
    for (const hook of ['isConnectionError', 'connectionStats', 'reset', 'createPool']) {
      expect(() => registerBackend('typo', { ...minimal, [hook]: 'yes' })).toThrow(
        `registerBackend("typo"): definition.${hook} must be a function`,
      );
    }
    expect(knownBackends()).not.toContain('typo');
    registerBackend('temporary', minimal);
    expect(knownBackends()).toContain('temporary');
    expect(unregisterBackend('temporary')).toBe(true);
    expect(unregisterBackend('postgres')).toBe(false);
    expect(knownBackends()).not.toContain('temporary');
  });
});

describe('a definition written as a class', () => {
  it('works through its prototype methods, with `this` the instance, and later changes to it change nothing', async () => {
    class LineBackend {
      opened = 0;
      async connect(signal: AbortSignal, context: BackendContext<LineConnection>) {
        this.opened++;
        return connectLine(signal, context);
      }
      async close(connection: LineConnection) {
        connection.socket.destroy();
      }
      async ping(connection: LineConnection) {
        if ((await connection.request('PING')) !== 'PONG') throw new Error('no PONG');
      }
    }
    const definition = new LineBackend();
    registerBackend<LineConnection>('line-class', definition);
    const pool = createPool<LineConnection>({
      name: 'classy',
      backend: 'line-class',
      uri: `line://127.0.0.1:${port}`,
    });
    try {
      await pool.start();
      expect(await pool.use((line) => line.request('ECHO hi'))).toBe('hi');
      expect(definition.opened).toBe(1);
      (definition as { connect: unknown }).connect = () => Promise.reject(new Error('replaced'));
      const [first, second] = await Promise.all([pool.acquire(), pool.acquire()]); // a second connection
      first.release();
      second.release();
      expect(definition.opened).toBe(2);
    } finally {
      await pool.close();
      unregisterBackend('line-class');
    }
  });
});

describe('driver loading', () => {
  const missingPackage = 'nestjs-pool-no-such-driver';
  registerBackend<never, unknown>('needs-driver', {
    requiresTarget: false,
    loadDriver: (context) =>
      loadDriver({
        poolName: context.poolName,
        backend: context.backend,
        packageName: missingPackage,
        importer: () => import(missingPackage),
      }),
    connect: async () => {
      throw new Error('never reached');
    },
    close: async () => undefined,
    ping: async () => undefined,
  });

  it('createPool() succeeds; start(), acquire() and checkHealth() report the missing package', async () => {
    const pool = createPool({ name: 'drv', backend: 'needs-driver' });
    try {
      const error = await pool.start().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PoolDriverMissingError);
      expect(error).toBeInstanceOf(PoolError);
      expect(error).toMatchObject({ poolName: 'drv', backend: 'needs-driver', packageName: missingPackage });
      expect((error as Error).message).toBe(
        `Pool "drv": the "needs-driver" backend needs the "${missingPackage}" package, which is not installed; ` +
          `run: npm install ${missingPackage}`,
      );
      await expect(pool.acquire()).rejects.toBeInstanceOf(PoolDriverMissingError);
      const health = await pool.checkHealth({ timeoutMs: 300 });
      expect(health).toMatchObject({ status: 'down' });
      expect(health.error).toContain(`npm install ${missingPackage}`);
    } finally {
      await pool.close();
    }
  });

  it('a package that is there but fails to load is a PoolError with the failure as cause', async () => {
    registerBackend<never, unknown>('broken-driver', {
      requiresTarget: false,
      loadDriver: (context) =>
        loadDriver({
          poolName: context.poolName,
          backend: context.backend,
          packageName: 'pg',
          importer: () => Promise.reject(new SyntaxError('Unexpected token in driver')),
        }),
      connect: async () => {
        throw new Error('never reached');
      },
      close: async () => undefined,
      ping: async () => undefined,
    });
    const pool = createPool({ name: 'drv2', backend: 'broken-driver' });
    const error = (await pool.start().catch((e: unknown) => e)) as PoolError;
    expect(error).toBeInstanceOf(PoolError);
    expect(error).not.toBeInstanceOf(PoolDriverMissingError);
    expect(error.message).toBe('Pool "drv2": could not load the "pg" package: Unexpected token in driver');
    expect(error.cause).toBeInstanceOf(SyntaxError);
    await pool.close();
  });
});

describe('redaction for any backend', () => {
  it('scrubs a leaky driver error: message, stack, string fields, cause chain and AggregateError entries', async () => {
    registerBackend<never, unknown>('leaky', {
      uriSchemes: ['leaky'],
      connect: async () => {
        const inner = new Error(`auth failed for leaky://user:${SECRET}@db:1 (password=${SECRET})`);
        const aggregate = new AggregateError(
          [inner, new Error(`again ${encodeURIComponent(SECRET)}`)],
          'all failed',
        );
        const outer = new Error(`connect to leaky://user:${SECRET}@db:1 failed`, { cause: aggregate });
        Object.assign(outer, { detail: `password was ${SECRET}`, code: 'ELEAK' });
        throw outer;
      },
      close: async () => undefined,
      ping: async () => undefined,
    });
    const events: string[] = [];
    const pool = createPool({ name: 'leaky', backend: 'leaky', uri: `leaky://user:${SECRET}@db:1` });
    pool.on('error', (error) => events.push(inspect(error, { depth: 8 })));
    try {
      const error = (await pool.start().catch((e: unknown) => e)) as PoolError;
      expect(error).toBeInstanceOf(PoolError);
      const text = [inspect(error, { depth: 8, showHidden: true }), ...events].join('\n');
      expect(text).toContain('ELEAK'); // the error keeps its fields...
      expect(text).toContain('leaky://user:***@db:1');
      expect(text).not.toContain(SECRET); // ...minus the secret, everywhere
      expect(text).not.toContain(encodeURIComponent(SECRET));
    } finally {
      await pool.close();
    }
  });
});

async function waitFor(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
