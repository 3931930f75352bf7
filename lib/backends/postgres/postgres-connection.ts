/**
 * One pooled PostgreSQL connection: a `pg.Client` plus what the pool must know about it and pg does not
 * expose directly: its transaction status (from the ReadyForQuery messages), whether it broke, whether a
 * query is still running on it, and whether we are closing it ourselves. The state lives in a WeakMap, not
 * on the client, so `util.inspect(client)` shows nothing of ours.
 *
 * `client.query` is wrapped per client (an own, non-enumerable property) so that every promise query,
 * whichever way the caller got the client (`pool.query`, `transaction`, a lease), is bounded by
 * `queryTimeoutMs` and counted. Callback and Submittable (cursor, stream) queries pass through untouched.
 */
import { connectAbortable } from '../connect-abortable.js';
import type { Client, ClientConfig } from 'pg';
import type { BackendContext } from '../backend-definition.js';
import type { PoolQueryTimeoutError } from '../pool-query-timeout-error.js';
import { withQueryTimeout } from '../query-timeout.js';
import { sendCancelRequest } from './postgres-cancel.js';

/** What the pool needs from the `pg` module. */
export interface PgDriver {
  Client: new (config: ClientConfig) => Client;
}

export type PostgresContext = BackendContext<Client, PgDriver>;

/** ReadyForQuery's status byte: idle, in a transaction block, in a failed transaction block. */
export type TransactionStatus = 'I' | 'T' | 'E';

interface ConnectionState {
  /** null until the first ReadyForQuery. */
  txStatus: TransactionStatus | null;
  /** Promise queries sent and not yet settled. */
  inFlight: number;
  /** connect() succeeded: errors are now the pool's business, not the connect promise's. */
  connected: boolean;
  /** We are closing it (close(), a query timeout, an aborted connect): its errors and end are expected. */
  closing: boolean;
}

/** How long `end()` (Terminate, then wait for the server's FIN) may take before the socket is destroyed. */
const CLOSE_GRACE_MS = 1_000;

const states = new WeakMap<Client, ConnectionState>();

/** The connection's transaction status, or null if unknown (never used, or not one of ours). */
export function transactionStatus(client: Client): TransactionStatus | null {
  return states.get(client)?.txStatus ?? null;
}

/** Opens a client; `signal` (create timeout, pool close) destroys its socket mid-connect. */
export async function openClient(signal: AbortSignal, context: PostgresContext): Promise<Client> {
  const { options } = context;
  const config: ClientConfig = { ...(options.connection as ClientConfig | undefined) };
  if (options.uri !== undefined) config.connectionString = options.uri;
  if (typeof config.password === 'function') {
    // Resolved here rather than by pg (which only calls it if the server asks), so it is known, and
    // redacted, before anything can print it.
    const password: unknown = await config.password();
    if (typeof password !== 'string') throw new TypeError('connection.password() must return a string');
    context.redactor.add(password);
    config.password = password;
  }
  const client = new context.driver.Client(config);
  const state: ConnectionState = { txStatus: null, inFlight: 0, connected: false, closing: false };
  states.set(client, state);

  // Attached before connecting: an 'error' with no listener would crash the process. Before connect()
  // resolves, failures reach its promise; after, they mean the connection is gone.
  client.on('error', (error: Error) => {
    if (state.connected && !state.closing) context.connectionLost(client, error);
  });
  client.on('end', () => {
    if (state.connected && !state.closing) {
      context.connectionLost(client, new Error('the server closed the connection'));
    }
  });
  // pg parses every ReadyForQuery into { status } before it resolves the query's promise, so by the time
  // a caller sees a result, this is up to date.
  client.connection.on('readyForQuery', (message: { status?: unknown }) => {
    const status = message?.status;
    state.txStatus = status === 'I' || status === 'T' || status === 'E' ? status : null;
  });
  wrapQuery(client, state, context);

  await connectAbortable(
    signal,
    () => client.connect(),
    () => {
      state.closing = true;
      client.connection.stream.destroy();
    },
  );
  state.connected = true;
  forgetPassword(client);
  return client;
}

/**
 * pg keeps the password on the client (`client.password`, `client.connectionParameters.password`; hidden
 * from a plain inspect, not from `showHidden`) although a connected client never authenticates again. The
 * client is lent to callers and passed to event listeners, so it should not carry the secret around.
 */
function forgetPassword(client: Client): void {
  for (const holder of [
    client,
    (client as unknown as { connectionParameters?: object }).connectionParameters,
  ]) {
    if (typeof holder !== 'object' || holder === null || !('password' in holder)) continue;
    try {
      Object.defineProperty(holder, 'password', {
        value: undefined,
        writable: true,
        configurable: true,
        enumerable: false,
      });
    } catch {
      // not configurable in some future pg: the pool's own outputs are redacted regardless
    }
  }
}

/** Ends a client politely, or destroys its socket when it is broken, busy, or the goodbye hangs. */
export async function closeClient(client: Client): Promise<void> {
  const state = states.get(client);
  if (state !== undefined) state.closing = true;
  const stream = client.connection.stream;
  if (stream.destroyed) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const graceful = await Promise.race([
    client.end().then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(resolve, CLOSE_GRACE_MS, false);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
  if (!graceful) stream.destroy();
}

/** `SELECT 1`: validation and health checks. The pool bounds it (validationTimeoutMs, the check's timeout). */
export async function pingClient(client: Client): Promise<void> {
  await client.query('SELECT 1');
}

/**
 * Makes a returned connection safe for the next borrower: a transaction left open or failed is rolled back;
 * a connection still running a query, or that won't leave its transaction, is refused (destroyed).
 */
export function resetClient(client: Client): Promise<void> | undefined {
  const state = states.get(client);
  if (state === undefined) return undefined;
  if (state.inFlight > 0) {
    throw new Error(
      `released while ${state.inFlight} query(ies) were still running; the connection is discarded`,
    );
  }
  // pg rejects a failed query on the ErrorResponse, before the ReadyForQuery that carries the new status
  // (e.g. 'E' after `BEGIN; SELECT 1/0`). Until it arrives, the status we hold is stale: wait for it.
  const statusPending = (client as unknown as { readyForQuery?: unknown }).readyForQuery === false;
  if (!statusPending) {
    checkOpen(client, state);
    // The common case: idle, nothing to clean. Returning synchronously lets the engine lend it again at once.
    if (state.txStatus !== 'T' && state.txStatus !== 'E') return undefined;
  }
  return rollbackIfNeeded(client, state, statusPending);
}

async function rollbackIfNeeded(
  client: Client,
  state: ConnectionState,
  statusPending: boolean,
): Promise<void> {
  if (statusPending) await nextReadyForQuery(client);
  checkOpen(client, state);
  if (state.txStatus === 'T' || state.txStatus === 'E') {
    await client.query('ROLLBACK');
    const after = transactionStatus(client);
    if (after !== 'I') {
      throw new Error(`still in a transaction after ROLLBACK (status ${String(after)})`);
    }
  }
}

function checkOpen(client: Client, state: ConnectionState): void {
  if (state.closing || client.connection.stream.destroyed) {
    throw new Error('the connection was closed while being returned');
  }
}

/** Resolves on the client's next ReadyForQuery, or when the connection ends (the pool bounds the wait). */
function nextReadyForQuery(client: Client): Promise<void> {
  if (client.connection.stream.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      client.connection.off('readyForQuery', done);
      client.connection.off('end', done);
      resolve();
    };
    client.connection.on('readyForQuery', done);
    client.connection.on('end', done);
  });
}

/** Did `error`, thrown by a query, leave the connection unusable? */
export function isClientBroken(client: Client, error: unknown): boolean {
  if (states.get(client)?.closing) return true;
  if (typeof error !== 'object' || error === null) return false;
  const { severity, code, message } = error as { severity?: unknown; code?: unknown; message?: unknown };
  // FATAL/PANIC: the server ends the session after sending it.
  if (severity === 'FATAL' || severity === 'PANIC') return true;
  if (typeof code === 'string') {
    // 08xxx connection exceptions; 57P01-57P05 admin/crash shutdown, cannot connect now, idle timeouts.
    if (code.startsWith('08') || code.startsWith('57P')) return true;
    if (['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED', 'ERR_STREAM_DESTROYED'].includes(code))
      return true;
  }
  return (
    typeof message === 'string' &&
    /Connection terminated|not queryable|Client was closed|Connection ended/i.test(message)
  );
}

/** Counts promise queries and, when `queryTimeoutMs` is set, bounds them. */
function wrapQuery(client: Client, state: ConnectionState, context: PostgresContext): void {
  const original = client.query;
  const { queryTimeoutMs } = context.options;
  const query = function query(...args: unknown[]): unknown {
    const result: unknown = Reflect.apply(original, client, args);
    if (!isThenable(result)) return result;
    state.inFlight++;
    const counted = result.then(
      (value) => {
        state.inFlight--;
        return value;
      },
      (error: unknown) => {
        state.inFlight--;
        throw error;
      },
    );
    return withQueryTimeout(counted, {
      poolName: context.poolName,
      timeoutMs: queryTimeoutMs,
      onTimeout: (error) => abandonClient(client, state, context, error),
    });
  };
  Object.defineProperty(client, 'query', {
    value: query,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}

/**
 * A query timed out: the connection is never used again. Cancel the query server-side (so it stops holding
 * locks), then destroy the socket (pg's end() does when a query is active).
 */
function abandonClient(
  client: Client,
  state: ConnectionState,
  context: PostgresContext,
  error: PoolQueryTimeoutError,
): void {
  context.discard(client, error);
  state.closing = true;
  const { processID, secretKey } = client as unknown as { processID?: unknown; secretKey?: unknown };
  if (typeof processID === 'number' && typeof secretKey === 'number' && typeof client.host === 'string') {
    void sendCancelRequest({ host: client.host, port: client.port, processID, secretKey });
  }
  client.end().catch(() => undefined);
  // end() with no active query (the answer raced the timer) waits for the server; don't.
  client.connection.stream.destroy();
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  );
}
