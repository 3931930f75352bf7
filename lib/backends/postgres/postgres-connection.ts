/**
 * One pooled PostgreSQL connection: a `pg.Client` plus what the pool must know about it and pg does not
 * expose directly: its transaction status (from the ReadyForQuery messages), whether it broke, whether a
 * query is still running on it, and whether we are closing it ourselves. The state lives in a WeakMap, not
 * on the client, so `util.inspect(client)` shows nothing of ours.
 *
 * `client.query` is wrapped per client (an own, non-enumerable property) so that every promise query,
 * whichever way the caller got the client (`pool.query`, `transaction`, a lease), is bounded by
 * `queryTimeoutMs` and tracked as in flight (the common `query(text, values?)` runs as pg's callback form
 * under one promise of ours, so returns a native Promise even with pg's `Promise` option; `pool.query()` runs
 * the same path with no promise at all, see runQuery). Every query, whatever its form, is also counted and timed for
 * `pool.connections()` (a counter and two clock reads per query): promise and callback queries from the call
 * to their outcome, Submittables (cursors, streams) from the call to their `end` or error, without
 * otherwise touching them. The pool's own `SELECT 1` pings and reset ROLLBACKs bypass the wrapper.
 */
import { errorMonitor } from 'node:events';
import type { Client, ClientConfig, QueryResult } from 'pg';
import { connectAbortable } from '../connect-abortable.js';
import { ListenerGuard, NO_EVENTS } from '../listener-snapshot.js';
import type { BackendContext } from '../backend-definition.js';
import type { PoolQueryTimeoutError } from '../pool-query-timeout-error.js';
import { type QueryCallback, withQueryTimeout, withQueryTimeoutCallback } from '../query-timeout.js';
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
  /** pg's own `query`, for the pool's housekeeping queries (not counted, not bounded). */
  readonly rawQuery: Client['query'];
  /** Queries run on it (all forms), and their total duration. */
  queries: number;
  totalQueryMs: number;
  /** The last failed query's message, redacted. */
  lastError: string | undefined;
  /** Runs a `(text, values?)` query counted, timed, in flight and bounded (see createTextQueryRunner). */
  runText: TextQueryRunner;
  /** The client's listeners once set up (the pool's, pg's): what a release restores. */
  listeners: ListenerGuard | undefined;
  /** A query of this lease may have run LISTEN: the release ends it (UNLISTEN *). */
  mayListen: boolean;
}

/** Runs `text` with `values` on the connection and reports to `done` (pg's callback form, no promise). */
type TextQueryRunner = (text: string, values: unknown, done: QueryCallback<QueryResult>) => void;

/** A connection's query statistics, for `pool.connections()`. */
export interface PostgresConnectionStats {
  readonly queries: number;
  readonly totalQueryMs: number;
  readonly lastError?: string;
}

/** How long `end()` (Terminate, then wait for the server's FIN) may take before the socket is destroyed. */
const CLOSE_GRACE_MS = 1_000;

const states = new WeakMap<Client, ConnectionState>();

/** The connection's transaction status, or null if unknown (never used, or not one of ours). */
export function transactionStatus(client: Client): TransactionStatus | null {
  return states.get(client)?.txStatus ?? null;
}

/** What has run on `client` (undefined for a client the pool did not open). */
export function connectionStats(client: Client): PostgresConnectionStats | undefined {
  const state = states.get(client);
  if (state === undefined) return undefined;
  const { queries, totalQueryMs, lastError } = state;
  return lastError === undefined ? { queries, totalQueryMs } : { queries, totalQueryMs, lastError };
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
  const state: ConnectionState = {
    txStatus: null,
    inFlight: 0,
    connected: false,
    closing: false,
    rawQuery: client.query,
    queries: 0,
    totalQueryMs: 0,
    lastError: undefined,
    runText: notWrappedYet,
    listeners: undefined,
    mayListen: false,
  };
  state.runText = createTextQueryRunner(client, state, context);
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
  state.listeners = new ListenerGuard(client);
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
  await rawQuery(client, 'SELECT 1');
}

/** A housekeeping query: pg's own `query`, neither counted in the connection's stats nor bounded. */
function rawQuery(client: Client, text: string): Promise<unknown> {
  const state = states.get(client);
  return state === undefined ? client.query(text) : Reflect.apply(state.rawQuery, client, [text]);
}

/**
 * Makes a returned connection safe for the next borrower: a transaction left open or failed is rolled back;
 * listeners the borrower added are taken off, and when one was a 'notification' listener, its LISTENs are
 * ended (UNLISTEN *) so the next borrower doesn't hear those channels; a connection still running a query,
 * or that won't leave its transaction, is refused (destroyed).
 */
export function resetClient(client: Client): Promise<void> | undefined {
  const state = states.get(client);
  if (state === undefined) return undefined;
  if (state.inFlight > 0) {
    throw new Error(
      `released while ${state.inFlight} query(ies) were still running; the connection is discarded`,
    );
  }
  const added = state.listeners === undefined ? NO_EVENTS : state.listeners.restore();
  const unlisten = state.mayListen || added.includes('notification');
  // pg rejects a failed query on the ErrorResponse, before the ReadyForQuery that carries the new status
  // (e.g. 'E' after `BEGIN; SELECT 1/0`). Until it arrives, the status we hold is stale: wait for it.
  const statusPending = (client as unknown as { readyForQuery?: unknown }).readyForQuery === false;
  if (!statusPending) {
    checkOpen(client, state);
    // The common case: idle, nothing to clean. Returning synchronously lets the engine lend it again at once.
    if (state.txStatus !== 'T' && state.txStatus !== 'E' && !unlisten) return undefined;
  }
  return cleanUp(client, state, statusPending, unlisten);
}

async function cleanUp(
  client: Client,
  state: ConnectionState,
  statusPending: boolean,
  unlisten: boolean,
): Promise<void> {
  if (statusPending) {
    await nextReadyForQuery(client);
    checkOpen(client, state);
    // On that ReadyForQuery pg sends the next query in its queue, if any: a callback or Submittable query
    // the borrower left queued (only promise queries are counted in flight). Lent on, the connection would
    // run it for the next borrower, e.g. a BEGIN that swallows the next borrower's statements: refuse it.
    if ((client as unknown as { readyForQuery?: unknown }).readyForQuery === false) {
      throw new Error('released with queries still queued; the connection is discarded');
    }
  }
  checkOpen(client, state);
  if (state.txStatus === 'T' || state.txStatus === 'E') {
    await rawQuery(client, 'ROLLBACK');
    const after = transactionStatus(client);
    if (after !== 'I') {
      throw new Error(`still in a transaction after ROLLBACK (status ${String(after)})`);
    }
  }
  // After the ROLLBACK: a LISTEN inside the open transaction is undone by it, and UNLISTEN can't run in an
  // aborted one.
  if (unlisten) {
    await rawQuery(client, 'UNLISTEN *');
    state.mayListen = false;
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
  return isConnectionError(error);
}

/** Socket-level codes: the connection is gone, whatever the statement was. */
const SOCKET_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ERR_STREAM_DESTROYED',
]);

/** A SQLSTATE: five characters, digits and upper-case letters. pg's own client-side errors carry none. */
const SQLSTATE = /^[0-9A-Z]{5}$/;

/**
 * Is `error` pg (or the server) saying the connection itself failed: a socket error, the connection ended,
 * or a FATAL/PANIC or connection-class SQLSTATE after which the server ends the session?
 */
export function isConnectionError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { severity, code, message } = error as { severity?: unknown; code?: unknown; message?: unknown };
  // FATAL/PANIC: the server ends the session after sending it.
  if (severity === 'FATAL' || severity === 'PANIC') return true;
  if (typeof code === 'string') {
    // 08xxx connection exceptions; 57P01-57P05 admin/crash shutdown, cannot connect now, idle timeouts.
    if (code.startsWith('08') || code.startsWith('57P')) return true;
    if (SOCKET_ERROR_CODES.has(code)) return true;
    // Any other SQLSTATE is the statement's fault, even when its message quotes "Connection terminated"
    // (say, from the caller's own input): only pg's client-side errors are recognised by their wording.
    if (SQLSTATE.test(code)) return false;
  }
  return (
    typeof message === 'string' &&
    /Connection terminated|not queryable|Client was closed|Connection ended/i.test(message)
  );
}

/**
 * Runs a `(text, values?)` query on one of the pool's clients for `pool.query()`, with no promise of its own
 * (the caller settles one promise for acquire, query and release): counted, timed, tracked in flight and
 * bounded by `queryTimeoutMs`, exactly like the same query through `client.query`. `done` is called once.
 */
export function runQuery(
  client: Client,
  text: string,
  values: unknown,
  done: QueryCallback<QueryResult>,
): void {
  const state = states.get(client);
  if (state !== undefined) state.runText(text, values, done);
  else Reflect.apply(client.query, client, [text, values, done]);
}

function notWrappedYet(): never {
  throw new Error('the connection is not set up yet');
}

/**
 * A statement that may run LISTEN: the word, in any case (a false alarm, e.g. a column named "listen", costs one
 * UNLISTEN * on release). Matched on every text query, so a plain regex scan, no parsing. A LISTEN run inside a
 * function isn't seen; its channels stay (as with pg.Pool).
 */
const LISTEN = /\blisten\b/i;

/** Flags the lease for UNLISTEN * when `query` (pg's first argument: text or a config) may LISTEN. */
function noteListen(state: ConnectionState, query: unknown): void {
  const text = typeof query === 'string' ? query : (query as { text?: unknown } | null)?.text;
  if (typeof text === 'string' && LISTEN.test(text)) state.mayListen = true;
}

/**
 * The common query form, `(text, values?)`, run as pg's callback form: no promise per query (pg's own
 * promise form makes two), and `done` called once with the outcome or, first, PoolQueryTimeoutError.
 */
function createTextQueryRunner(
  client: Client,
  state: ConnectionState,
  context: PostgresContext,
): TextQueryRunner {
  const original = state.rawQuery as (...args: unknown[]) => unknown;
  const timeout = {
    poolName: context.poolName,
    timeoutMs: context.options.queryTimeoutMs,
    onTimeout: (error: PoolQueryTimeoutError) => abandonClient(client, state, context, error),
  };
  return function runText(text, values, done) {
    noteListen(state, text);
    const started = performance.now();
    const finish = withQueryTimeoutCallback(done, timeout);
    let settled = false;
    state.inFlight++;
    try {
      Reflect.apply(original, client, [
        text,
        values,
        (error: unknown, result: QueryResult) => {
          // pg may call back twice: a value it can't serialise fails the query at once, inside query(), and
          // the query is answered again at its ReadyForQuery.
          if (settled) return;
          settled = true;
          state.inFlight--;
          state.queries++;
          state.totalQueryMs += performance.now() - started;
          if (error) state.lastError = describeError(error, context);
          finish(error, result);
        },
      ]);
    } catch (error) {
      // pg refused it before sending (nothing will call back): not in flight, and the caller must hear of it.
      if (settled) return;
      settled = true;
      state.inFlight--;
      finish(error);
    }
  };
}

/**
 * Counts and times every query; tracks promise queries in flight and, when `queryTimeoutMs` is set, bounds
 * them. Callback and Submittable queries run exactly as pg runs them: only observed.
 */
function wrapQuery(client: Client, state: ConnectionState, context: PostgresContext): void {
  const original = state.rawQuery;
  const { queryTimeoutMs } = context.options;
  const bounded = queryTimeoutMs > 0 && queryTimeoutMs < Infinity;
  const failed = (error: unknown): void => {
    state.lastError = describeError(error, context);
  };
  const record = (started: number): void => {
    state.queries++;
    state.totalQueryMs += performance.now() - started;
  };
  const query = function query(...args: unknown[]): unknown {
    if (typeof args[0] === 'string' && args.length <= 2 && typeof args[1] !== 'function') {
      // The common case (text, values?): pg's callback form under one promise of ours, instead of pg's
      // promise (two promises) plus ours to observe it. Errors get pg's treatment: a stack that leads back
      // to the caller (captured in a promise reaction, where V8 knows the awaiting functions).
      const text = args[0];
      const values = args[1];
      return new Promise<unknown>((resolve, reject) => {
        state.runText(text, values, (error, value) => (error ? reject(error as Error) : resolve(value)));
      }).catch(rethrowWithCallerStack);
    }
    noteListen(state, args[0]);
    const started = performance.now();
    const observed = observeNonPromiseForms(args, started, record, failed);
    const result: unknown = Reflect.apply(original, client, args);
    if (observed || !isThenable(result)) return result;
    state.inFlight++;
    const counted = result.then(
      (value) => {
        state.inFlight--;
        record(started);
        return value;
      },
      (error: unknown) => {
        state.inFlight--;
        record(started);
        failed(error);
        throw error;
      },
    );
    if (!bounded) return counted;
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
 * Observes the forms of `query` that return no promise, without changing how they run: a callback (in the
 * `values` or `callback` position, or a config's or Submittable's `callback`) is wrapped; a Submittable
 * without one (cursor, stream) is watched for its `end` and its errors, through `errorMonitor` so that one
 * without an 'error' listener still fails the way it would without us. Returns whether the query is one of
 * these forms (otherwise it is a promise query, observed through its promise).
 */
function observeNonPromiseForms(
  args: unknown[],
  started: number,
  record: (started: number) => void,
  failed: (error: unknown) => void,
): boolean {
  const [config, values, callback] = args;
  const observe = (userCallback: Callback): Callback =>
    function observedCallback(this: unknown, error: unknown, result: unknown): unknown {
      record(started);
      if (error) failed(error);
      return Reflect.apply(userCallback, this, [error, result]);
    };
  if (typeof values === 'function' || typeof callback === 'function') {
    const index = typeof values === 'function' ? 1 : 2;
    args[index] = observe(args[index] as Callback);
    return true;
  }
  if (typeof config !== 'object' || config === null) return false;
  const query = config as Partial<ObservableQuery>;
  if (typeof query.submit !== 'function') {
    if (typeof query.callback !== 'function') return false;
    args[0] = { ...query, callback: observe(query.callback) };
    return true;
  }
  if (typeof query.callback === 'function') {
    query.callback = observe(query.callback); // pg itself sets a Submittable's callback the same way
  } else if (typeof query.once === 'function' && typeof query.off === 'function') {
    const { once, off } = query as Required<Pick<ObservableQuery, 'once' | 'off'>>;
    let settled = false;
    const settle = (error: unknown, isError: boolean): void => {
      Reflect.apply(off, query, ['end', onEnd]);
      Reflect.apply(off, query, [errorMonitor, onError]);
      if (settled) return;
      settled = true;
      record(started);
      if (isError) failed(error);
    };
    const onEnd = (): void => settle(undefined, false);
    const onError = (error: unknown): void => settle(error, true);
    Reflect.apply(once, query, ['end', onEnd]);
    Reflect.apply(once, query, [errorMonitor, onError]);
  } else {
    record(started); // nothing to wait for: counted when submitted
  }
  return true;
}

type Callback = (error: unknown, result: unknown) => unknown;

/** What a config object or Submittable passed to `query` may carry that we observe. */
interface ObservableQuery {
  submit: unknown;
  callback: Callback;
  once(event: string | symbol, listener: (error?: unknown) => void): unknown;
  off(event: string | symbol, listener: (error?: unknown) => void): unknown;
}

/** A query error as `pool.connections()` shows it: its message, redacted, with the SQLSTATE if any. */
function describeError(error: unknown, context: PostgresContext): string {
  const { message, code } = (error ?? {}) as { message?: unknown; code?: unknown };
  const text = typeof message === 'string' ? message : String(error);
  return context.redactor.text(typeof code === 'string' ? `${text} (${code})` : text);
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

/**
 * For a promise's rejection handler: gives a query error a stack that leads back to the caller (captured in
 * a promise reaction, where V8 knows the awaiting async functions) instead of to the socket's read.
 */
export function rethrowWithCallerStack(error: unknown): never {
  if (error instanceof Error) {
    try {
      Error.captureStackTrace(error, rethrowWithCallerStack);
    } catch {
      // a frozen error keeps the stack it has
    }
  }
  throw error;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  );
}
