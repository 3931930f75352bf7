/**
 * One pooled ioredis client (a lease connection or the shared client) plus what the pool must know about
 * it and ioredis does not say: whether it is inside MULTI or WATCHing, whether a command left state the
 * pool can't undo, how many commands are still unanswered, whether it is lost or being closed by us.
 * The state lives in a WeakMap, not on the client, so `util.inspect(client)` shows nothing of ours.
 *
 * Every command goes through `client.sendCommand` (plain calls, pipelines, MULTI/EXEC), which is wrapped
 * per client (an own, non-enumerable property): that is where state is observed, where `queryTimeoutMs`
 * is enforced with the shared `withQueryTimeout`, and where the shared client refuses stateful commands.
 * The db (SELECT) and pub/sub state are read from ioredis' own `client.condition`.
 */
import { connectAbortable } from '../connect-abortable.js';
import type { Redis, RedisOptions } from 'ioredis';
import { PoolClosedError, PoolError, PoolUnavailableError } from '../../core/index.js';
import type { BackendContext } from '../backend-definition.js';
import { withQueryTimeout } from '../query-timeout.js';
import { REDACTED } from '../redaction.js';
import type { PoolQueryTimeoutError } from '../pool-query-timeout-error.js';

/** What the pool needs from the `ioredis` module. */
export interface RedisDriver {
  Redis: new (...args: unknown[]) => Redis;
}

export type RedisContext = BackendContext<Redis, RedisDriver>;

export type RedisClientRole = 'lease' | 'shared';

export interface RedisClientState {
  readonly role: RedisClientRole;
  /** The configured database (from the URI's path or `connection.db`): what SELECT is reset to. */
  readonly db: number;
  /** Commands sent and not yet answered. */
  inFlight: number;
  /** MULTI sent, EXEC/DISCARD not yet. */
  multi: boolean;
  /** WATCH sent, UNWATCH/EXEC/DISCARD not yet. */
  watching: boolean;
  /** A command that left state the pool cannot undo (AUTH, HELLO, CLIENT TRACKING, ...): never lend it again. */
  tainted: string | undefined;
  /** The handshake completed. */
  connected: boolean;
  /** The client ended (its socket closed): never usable again. */
  lost: boolean;
  /** We are closing it (close(), a timeout, an aborted connect): its errors and end are expected. */
  closing: boolean;
  /** The last 'error' event (ioredis rejects connect() with "Connection is closed.", the reason is here). */
  lastError: Error | undefined;
  /** Set by the shared client's owner: why it is down (the cause of PoolUnavailableError). */
  downReason: Error | undefined;
}

/** What ioredis' Command looks like to the wrapper (it is not part of ioredis' typed API). */
interface RedisCommand {
  name: string;
  args: unknown[];
  reject(error: Error): void;
  promise: Promise<unknown>;
}

type SendCommand = (command: RedisCommand, stream?: unknown, node?: unknown) => unknown;

const states = new WeakMap<Redis, RedisClientState>();

/** Commands that block the connection until data arrives (or their own timeout). */
const BLOCKING = new Set([
  'blpop',
  'brpop',
  'brpoplpush',
  'blmove',
  'blmpop',
  'bzpopmin',
  'bzpopmax',
  'bzmpop',
  'wait',
  'waitaof',
]);

/** Commands whose effect on the connection the pool cannot undo: the connection is destroyed on release. */
const TAINTING = new Set([
  'auth',
  'hello',
  'reset',
  'readonly',
  'readwrite',
  'quit',
  'monitor',
  'sync',
  'psync',
]);
const TAINTING_CLIENT_SUBCOMMANDS = new Set([
  'tracking',
  'reply',
  'setname',
  'setinfo',
  'no-evict',
  'no-touch',
  'caching',
]);

/** Commands the shared client refuses: they change the connection's state for every caller. */
const SHARED_REFUSED = new Set([
  'watch',
  'unwatch',
  'select',
  'swapdb',
  'subscribe',
  'psubscribe',
  'ssubscribe',
  'unsubscribe',
  'punsubscribe',
  'sunsubscribe',
  ...TAINTING,
]);

/** What ioredis sends while connecting (before 'ready'); caller commands then are queued and re-sent. */
const HANDSHAKE = new Set(['hello', 'auth', 'select', 'client', 'readonly', 'info']);

const SUBSCRIBER_EVENTS = [
  'message',
  'messageBuffer',
  'pmessage',
  'pmessageBuffer',
  'smessage',
  'smessageBuffer',
] as const;

/** Messages of ioredis errors that mean the connection itself failed (not a command). */
const CONNECTION_FAILURE =
  /Connection is closed|Stream isn't writeable|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|socket|write after end/i;

export function clientState(client: Redis): RedisClientState | undefined {
  return states.get(client);
}

/**
 * Builds a client (not connected: `lazyConnect`) with the pool's settings, its 'error' listener and the
 * command wrapper. `onLost` runs once if the connection ends on its own after the handshake.
 */
export function createClient(
  context: RedisContext,
  role: RedisClientRole,
  onLost: (client: Redis, error: Error) => void,
): Redis {
  const { options } = context;
  const owned: RedisOptions = {
    lazyConnect: true,
    // The shared client queues commands issued while it (re)connects: that one connect attempt is bounded by
    // createTimeoutMs (and each command by queryTimeoutMs), and a failed attempt fails the queue, since it
    // never retries. A lease is only lent once connected, so it never queues.
    enableOfflineQueue: role === 'shared',
    retryStrategy: () => null,
    reconnectOnError: null,
    maxRetriesPerRequest: 1,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: false,
    connectTimeout: createTimeoutOf(options.pool.createTimeoutMs),
  };
  const settings: RedisOptions = { ...(options.connection as RedisOptions | undefined), ...owned };
  // ioredis gives the URI precedence over the options object (validation rejects pool-owned URI parameters).
  const client =
    options.uri !== undefined
      ? new context.driver.Redis(options.uri, settings)
      : new context.driver.Redis(settings);
  const state: RedisClientState = {
    role,
    db: Number(client.options.db ?? 0) || 0,
    inFlight: 0,
    multi: false,
    watching: false,
    tainted: undefined,
    connected: false,
    lost: false,
    closing: false,
    lastError: undefined,
    downReason: undefined,
  };
  states.set(client, state);
  // Attached before connecting: an 'error' with no listener must never reach the process.
  client.on('error', (error: Error) => {
    state.lastError = error;
  });
  client.on('end', () => {
    if (state.lost) return;
    state.lost = true;
    if (state.connected && !state.closing) {
      onLost(client, state.lastError ?? new Error('the server closed the connection'));
    }
  });
  wrapSendCommand(client, state, context);
  return client;
}

function createTimeoutOf(value: unknown): number {
  return typeof value === 'number' && value > 0 && value < 2 ** 31 ? value : 10_000;
}

/**
 * Connects a client built by createClient(); `signal` (create timeout, pool close) destroys its socket
 * mid-connect or mid-handshake. Rejects with the real reason (refused, WRONGPASS, ...), not ioredis'
 * generic "Connection is closed.".
 */
export async function connectClient(
  client: Redis,
  signal: AbortSignal,
  context: RedisContext,
): Promise<Redis> {
  const state = states.get(client)!;
  await connectAbortable(
    signal,
    () => client.connect(),
    () => {
      state.closing = true;
      void destroyClient(client);
    },
    (error) => redactCommand(context.redactor.error(state.lastError ?? error), context),
  );
  if (client.status !== 'ready' || state.lost) {
    throw state.lastError ?? new Error('the connection closed during the handshake');
  }
  state.connected = true;
  forgetPassword(client, context);
  return client;
}

/** Opens a lease connection (the definition's `connect`). */
export async function openLeaseClient(signal: AbortSignal, context: RedisContext): Promise<Redis> {
  const client = createClient(context, 'lease', (lost, error) => context.connectionLost(lost, error));
  return connectClient(client, signal, context);
}

/**
 * ioredis keeps the password (`options.password`, `condition.auth`) for reconnecting, which pooled clients
 * never do. The client is lent to callers and passed to event listeners: it should not carry the secret.
 */
function forgetPassword(client: Redis, context: RedisContext): void {
  const { password } = client.options;
  if (typeof password === 'string') context.redactor.add(password);
  client.options.password = undefined;
  if (client.condition !== null) client.condition.auth = undefined;
}

/** Closes a client and resolves when its socket is closed (bounded). */
export function closeClient(client: Redis): Promise<void> {
  const state = states.get(client);
  if (state !== undefined) state.closing = true;
  return destroyClient(client);
}

const CLOSE_GRACE_MS = 1_000;

const closing = new WeakMap<Redis, Promise<void>>();

/** Disconnects at once (idempotent: every caller gets the same promise). */
function destroyClient(client: Redis): Promise<void> {
  let done = closing.get(client);
  if (done === undefined) {
    done = disconnect(client);
    closing.set(client, done);
  }
  return done;
}

function disconnect(client: Redis): Promise<void> {
  const stream = client.stream as (typeof client.stream & { closed?: boolean }) | undefined;
  // disconnect() on an ended client would arm ioredis' (ref'd) disconnect timer for a socket already gone.
  if (client.status !== 'end') client.disconnect();
  if (stream === undefined || stream === null || stream.closed === true) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, CLOSE_GRACE_MS);
    timer.unref();
    stream.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    stream.destroy();
  });
}

/** PING: validation and health checks. The pool bounds it (validationTimeoutMs, the check's timeout). */
export async function pingClient(client: Redis): Promise<void> {
  const reply = await client.ping();
  if (reply !== 'PONG') throw new Error(`unexpected PING reply ${JSON.stringify(reply).slice(0, 40)}`);
}

/**
 * Makes a returned lease safe for the next borrower: DISCARD if in MULTI, UNWATCH if watching, SELECT back
 * to the configured db, unsubscribe from everything. Nothing to clean (the common case): returns
 * synchronously. A connection with unanswered commands, or state that can't be undone, is refused (destroyed).
 */
export function resetClient(client: Redis): Promise<void> | undefined {
  const state = states.get(client);
  if (state === undefined) return undefined;
  checkUsable(client, state);
  const condition = client.condition;
  const subscribed = condition !== null && condition.subscriber !== false;
  const selected = condition !== null && Number(condition.select) !== state.db;
  if (!state.multi && !state.watching && !subscribed && !selected) return undefined;
  return cleanClient(client, state);
}

function checkUsable(client: Redis, state: RedisClientState): void {
  if (state.lost || state.closing || client.status !== 'ready') {
    throw new Error('the connection was closed while being returned');
  }
  if (state.tainted !== undefined) {
    throw new Error(`${state.tainted.toUpperCase()} changed the connection in a way the pool cannot undo`);
  }
  if (state.inFlight > 0) {
    throw new Error(
      `released while ${state.inFlight} command(s) were unanswered; the connection is discarded`,
    );
  }
}

async function cleanClient(client: Redis, state: RedisClientState): Promise<void> {
  const subscriber = client.condition?.subscriber;
  if (subscriber) {
    // The borrower's message listeners must not hear the next borrower's subscriptions.
    for (const event of SUBSCRIBER_EVENTS) client.removeAllListeners(event);
    await Promise.all([client.unsubscribe(), client.punsubscribe(), client.sunsubscribe()]);
    if (client.condition?.subscriber) throw new Error('still subscribed after UNSUBSCRIBE');
  }
  if (state.multi) {
    // DISCARD also forgets WATCHed keys. "DISCARD without MULTI" (MULTI itself failed) is fine.
    await client.discard().catch((error: unknown) => {
      if (!/without MULTI/i.test(String((error as { message?: unknown })?.message))) throw error;
    });
    state.multi = false;
    state.watching = false;
  }
  if (state.watching) await client.unwatch();
  if (Number(client.condition?.select) !== state.db) await client.select(state.db);
  checkUsable(client, state);
  if (state.multi || state.watching || Number(client.condition?.select) !== state.db) {
    throw new Error('the connection could not be cleaned');
  }
}

/** Did `error`, thrown while the connection was lent, leave it unusable? */
export function isClientBroken(client: Redis, error: unknown): boolean {
  const state = states.get(client);
  if (state === undefined) return false;
  if (state.lost || state.closing || client.status !== 'ready') return true;
  const message = typeof error === 'object' && error !== null ? (error as { message?: unknown }).message : '';
  return typeof message === 'string' && CONNECTION_FAILURE.test(message) && !isReplyError(error);
}

function isReplyError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'ReplyError';
}

/** How long the client may wait for `name`'s answer: queryTimeoutMs, plus a blocking command's own timeout. */
function commandTimeoutMs(name: string, args: readonly unknown[], queryTimeoutMs: number): number {
  if (!(queryTimeoutMs < Infinity)) return Infinity;
  const blockMs = blockingMs(name, args);
  if (blockMs === undefined) return queryTimeoutMs;
  // 0 blocks until data arrives: no client-side limit (the server answers when it has something).
  return blockMs === 0 ? Infinity : queryTimeoutMs + blockMs;
}

/** A blocking command's own timeout in ms (0 = forever); undefined for commands that don't block. */
function blockingMs(name: string, args: readonly unknown[]): number | undefined {
  if (name === 'xread' || name === 'xreadgroup') {
    const at = args.findIndex((arg) => typeof arg === 'string' && arg.toLowerCase() === 'block');
    return at === -1 ? undefined : toNumber(args[at + 1]);
  }
  if (!BLOCKING.has(name)) return undefined;
  if (name === 'wait') return toNumber(args[1]);
  if (name === 'waitaof') return toNumber(args[2]);
  if (name === 'blmpop' || name === 'bzmpop') return toNumber(args[0]) * 1000;
  return toNumber(args[args.length - 1]) * 1000;
}

function toNumber(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(String(value));
  return Number.isFinite(n) && n >= 0 ? n : 0;
}

function isBlocking(name: string, args: readonly unknown[]): boolean {
  return blockingMs(name, args) !== undefined;
}

/** Why the shared client refuses a command, or undefined. */
function sharedRefusal(name: string, args: readonly unknown[], pipelined: boolean): string | undefined {
  if (SHARED_REFUSED.has(name)) return 'it changes the connection for every caller';
  if (name === 'client' && TAINTING_CLIENT_SUBCOMMANDS.has(String(args[0]).toLowerCase())) {
    return 'it changes the connection for every caller';
  }
  // multi() (pipelined: MULTI ... EXEC written at once) is fine; multi({ pipeline: false }) is not.
  if (!pipelined && (name === 'multi' || name === 'exec' || name === 'discard')) {
    return 'a MULTI spanning several writes would take in other callers’ commands; use multi().…exec()';
  }
  if (isBlocking(name, args)) return 'a blocking command stalls every caller of the shared client';
  return undefined;
}

function track(state: RedisClientState, name: string, args: readonly unknown[]): void {
  switch (name) {
    case 'multi':
      state.multi = true;
      return;
    case 'exec':
    case 'discard':
      state.multi = false;
      state.watching = false;
      return;
    case 'watch':
      state.watching = true;
      return;
    case 'unwatch':
      state.watching = false;
      return;
    case 'client':
      if (TAINTING_CLIENT_SUBCOMMANDS.has(String(args[0]).toLowerCase()))
        state.tainted ??= `client ${args[0]}`;
      return;
    default:
      if (TAINTING.has(name)) state.tainted ??= name;
  }
}

/**
 * Wraps `client.sendCommand`: counts unanswered commands, tracks MULTI/WATCH, refuses stateful commands on
 * the shared client, bounds each command by `queryTimeoutMs` (a timed-out client is destroyed: its
 * protocol state is unknown) and redacts errors. ioredis' own handshake commands pass untouched.
 */
function wrapSendCommand(client: Redis, state: RedisClientState, context: RedisContext): void {
  const host = client as unknown as { sendCommand: SendCommand };
  const original = host.sendCommand;
  const seen = new WeakSet<RedisCommand>();
  const { queryTimeoutMs } = context.options;
  const sendCommand: SendCommand = function sendCommand(command, stream, node) {
    // ioredis' own handshake (HELLO, SELECT, CLIENT SETNAME/SETINFO, INFO), and the second pass of a command
    // queued while the shared client connected: not the caller's, or already counted and bounded.
    const name = String(command.name).toLowerCase();
    if (seen.has(command) || (client.condition?.handshake === true && HANDSHAKE.has(name))) {
      return Reflect.apply(original, client, [command, stream, node]);
    }
    seen.add(command);
    const args = Array.isArray(command.args) ? command.args : [];
    if (state.role === 'shared') {
      const failure = sharedFailure(state, name, args, stream !== undefined, context);
      if (failure !== undefined) {
        command.reject(failure);
        command.promise.catch(noop);
        return rejected(failure);
      }
    }
    track(state, name, args);
    state.inFlight++;
    const sent = Reflect.apply(original, client, [command, stream, node]) as Promise<unknown>;
    const counted = sent.then(
      (value) => {
        state.inFlight--;
        return value;
      },
      (error: unknown) => {
        state.inFlight--;
        throw translateError(state, error, context);
      },
    );
    const result = withQueryTimeout(counted, {
      poolName: context.poolName,
      timeoutMs: commandTimeoutMs(name, args, queryTimeoutMs),
      onTimeout: (error) => abandonClient(client, state, context, error),
    });
    // Pipelines ignore this promise (they read the command's own): it must never be an unhandled rejection.
    result.catch(noop);
    return result;
  };
  Object.defineProperty(client, 'sendCommand', {
    value: sendCommand,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}

function sharedFailure(
  state: RedisClientState,
  name: string,
  args: readonly unknown[],
  pipelined: boolean,
  context: RedisContext,
): Error | undefined {
  const refusal = sharedRefusal(name, args, pipelined);
  if (refusal !== undefined) {
    return new PoolError(
      context.poolName,
      `${name.toUpperCase()} is not allowed on pool.shared: ${refusal}. Use pool.use() for an exclusive connection`,
    );
  }
  if (state.lost) return sharedDownError(state, context);
  return undefined;
}

function sharedDownError(state: RedisClientState, context: RedisContext): PoolError {
  if (state.closing && state.downReason === undefined) {
    return new PoolClosedError(context.poolName, 'the shared client was closed');
  }
  const cause = state.downReason ?? state.lastError;
  const reason = cause === undefined ? '' : `: ${context.redactor.text(cause.message)}`;
  return new PoolUnavailableError(context.poolName, `the shared Redis connection is down${reason}`, {
    cause,
  });
}

/** A command's failure as the caller sees it: redacted; on the shared client, a lost connection is typed. */
function translateError(state: RedisClientState, error: unknown, context: RedisContext): unknown {
  if (state.role === 'shared' && !(error instanceof PoolError) && !isReplyError(error) && state.lost) {
    const typed = sharedDownError(state, context);
    if (typed.cause === undefined)
      Object.defineProperty(typed, 'cause', { value: error, configurable: true });
    return context.redactor.error(typed);
  }
  return redactCommand(context.redactor.error(error), context);
}

/**
 * ioredis attaches `{ name, args }` of the failed command to its errors (a plain object it made for the
 * error): its arguments are replaced by a scrubbed copy, since they may quote a secret.
 */
function redactCommand(error: unknown, context: RedisContext): unknown {
  if (typeof error !== 'object' || error === null) return error;
  const command = (error as { command?: unknown }).command;
  if (typeof command !== 'object' || command === null) return error;
  const { name, args } = command as { name?: unknown; args?: unknown };
  if (!Array.isArray(args)) return error;
  const scrubbed = args.map((arg: unknown) => (typeof arg === 'string' ? context.redactor.text(arg) : arg));
  // AUTH [user] password, HELLO 3 AUTH user password: whatever the password, it goes.
  const verb = String(name).toLowerCase();
  const authAt = args.findIndex((arg: unknown) => String(arg).toUpperCase() === 'AUTH');
  const at = verb === 'auth' ? args.length - 1 : verb === 'hello' && authAt >= 0 ? authAt + 2 : -1;
  if (at >= 0 && at < scrubbed.length) scrubbed[at] = REDACTED;
  try {
    Object.defineProperty(error, 'command', {
      value: { name, args: scrubbed },
      writable: true,
      configurable: true,
      enumerable: true,
    });
  } catch {
    // not configurable: the message and stack are scrubbed regardless
  }
  return error;
}

/**
 * The error a caller of `pool.use()` sees: when its lease was abandoned for a timed-out command, the typed
 * timeout rather than what ioredis then says about the commands that shared its fate (a pipeline's EXEC
 * fails with "Connection is closed.").
 */
export function leaseFailure(client: Redis | undefined, error: unknown): unknown {
  if (client === undefined || error instanceof PoolError) return error;
  const reason = states.get(client)?.downReason;
  return reason instanceof PoolError ? reason : error;
}

/** A command timed out: the client is never used again (its answer may still come, or never). */
function abandonClient(
  client: Redis,
  state: RedisClientState,
  context: RedisContext,
  error: PoolQueryTimeoutError,
): void {
  if (state.role === 'lease') context.discard(client, error);
  state.closing = true;
  state.lost = true;
  state.downReason ??= error;
  void destroyClient(client);
}

function rejected(error: Error): Promise<never> {
  const promise = Promise.reject(error);
  promise.catch(noop);
  return promise;
}

function noop(): void {}
