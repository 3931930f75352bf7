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
 *
 * A pooled connection is an ioredis `Redis` (one server, or the master found through Sentinel) or, with the
 * `cluster` option, an ioredis `Cluster` (one socket per node, routing each command to its slot's master).
 * Each wrapped client also counts its commands and their total time, for `pool.connections()`.
 */
import { connectAbortable } from '../connect-abortable.js';
import { ListenerGuard } from '../listener-snapshot.js';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { PoolClosedError, PoolError, PoolUnavailableError, toError } from '../../core/index.js';
import type { BackendContext } from '../backend-definition.js';
import { withQueryTimeout } from '../query-timeout.js';
import { REDACTED } from '../redaction.js';
import { PoolConnectionError } from '../pool-connection-error.js';
import { PoolQueryTimeoutError } from '../pool-query-timeout-error.js';

import { redisTopology, type RedisClusterConfig, type RedisSentinelConfig } from './redis-options.js';

/** What the pool needs from the `ioredis` module. */
export interface RedisDriver {
  Redis: new (...args: unknown[]) => Redis;
  Cluster: new (...args: unknown[]) => Cluster;
}

/** A pooled connection: a Redis client, or a Cluster client with the `cluster` option. */
export type RedisClient = Redis | Cluster;

export type RedisContext = BackendContext<RedisClient, RedisDriver>;

export type RedisClientRole = 'lease' | 'shared';

export interface RedisClientState {
  readonly role: RedisClientRole;
  /** An ioredis Cluster (no SELECT, no `condition`; WATCH and MULTI live on the node of their keys). */
  readonly cluster: boolean;
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
  /** Caller commands answered (or failed) so far; ioredis' own handshake is not counted. */
  commands: number;
  /** Their total time, send to answer, in ms. */
  commandMs: number;
  /** The message of the last command that failed (redacted). */
  lastCommandError: string | undefined;
  /** Every listener on the client once connected (the pool's, ioredis' own): what a release restores. */
  listeners: ListenerGuard | undefined;
}

/** What ioredis' Command looks like to the wrapper (it is not part of ioredis' typed API). */
interface RedisCommand {
  name: string;
  args: unknown[];
  resolve(value: unknown): unknown;
  reject(error: unknown): void;
  promise: Promise<unknown>;
  /** Set once the wrapper has taken the command in (a re-send, from an offline queue, passes through). */
  [TAKEN]?: true;
}

const TAKEN = Symbol('nestjs-pool.redis.taken');

type SendCommand = (command: RedisCommand, stream?: unknown, node?: unknown) => unknown;

const states = new WeakMap<RedisClient, RedisClientState>();

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

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
const HANDSHAKE = new Set(['hello', 'auth', 'select', 'client', 'readonly', 'info', 'role']);

/** Subscribing commands: on a Cluster they go to a subscriber connection the pool can't clean. */
const SUBSCRIBING = new Set(['subscribe', 'psubscribe', 'ssubscribe']);

/** Every command the wrapper looks at more closely (refused, tracked, or with its own timeout). */
const SPECIAL = new Set([
  ...SHARED_REFUSED,
  ...BLOCKING,
  ...SUBSCRIBING,
  'xread',
  'xreadgroup',
  'multi',
  'exec',
  'discard',
  'watch',
  'unwatch',
  'client',
]);

/** Messages of ioredis errors that mean the connection itself failed (not a command). */
const CONNECTION_FAILURE =
  /Connection is closed|Stream isn't writeable|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|socket|write after end/i;

export function clientState(client: RedisClient): RedisClientState | undefined {
  return states.get(client);
}

/** Per-connection command stats for `pool.connections()` (the definition's `connectionStats`). */
export function clientStats(
  client: RedisClient,
): { queries: number; totalQueryMs: number; lastError?: string } | undefined {
  const state = states.get(client);
  if (state === undefined) return undefined;
  return state.lastCommandError === undefined
    ? { queries: state.commands, totalQueryMs: state.commandMs }
    : { queries: state.commands, totalQueryMs: state.commandMs, lastError: state.lastCommandError };
}

export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: unknown }).isCluster === true;
}

/**
 * Builds a client (not connected: `lazyConnect`) with the pool's settings, its 'error' listener and the
 * command wrapper. `onLost` runs once if the connection ends on its own after the handshake.
 */
export function createClient(
  context: RedisContext,
  role: RedisClientRole,
  onLost: (client: RedisClient, error: Error) => void,
): RedisClient {
  const { options } = context;
  const topology = redisTopology(options);
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
  let client: RedisClient;
  if (topology === 'cluster') {
    const { nodes, options: clusterOptions } = options.extras['cluster'] as RedisClusterConfig;
    const clusterSettings: ClusterOptions = {
      ...(clusterOptions as ClusterOptions | undefined),
      lazyConnect: true,
      enableOfflineQueue: role === 'shared',
      // Never reconnects as a whole: a Cluster client that lost every node is replaced by the pool. Losing
      // one node is ioredis' business (it refreshes the slots and follows MOVED/ASK).
      clusterRetryStrategy: () => null,
      enableReadyCheck: true,
      // Per node; ioredis itself sets retryStrategy null and enableOfflineQueue true on node clients.
      redisOptions: {
        ...(options.connection as RedisOptions | undefined),
        connectTimeout: owned.connectTimeout,
        maxRetriesPerRequest: 1,
        autoResendUnfulfilledCommands: false,
        autoResubscribe: false,
      },
    };
    client = new context.driver.Cluster(nodes, clusterSettings);
  } else if (topology === 'sentinel') {
    const sentinel = options.extras['sentinel'] as RedisSentinelConfig;
    client = new context.driver.Redis({
      ...settings,
      ...sentinel,
      // One pass over the sentinels per connect attempt; the pool's createRetry spaces the attempts.
      sentinelRetryStrategy: () => null,
      failoverDetector: false,
    });
  } else {
    // ioredis gives the URI precedence over the options object (validation rejects pool-owned URI parameters).
    client =
      options.uri !== undefined
        ? new context.driver.Redis(options.uri, settings)
        : new context.driver.Redis(settings);
  }
  const cluster = isCluster(client);
  const state: RedisClientState = {
    role,
    cluster,
    db: cluster ? 0 : Number((client as Redis).options.db ?? 0) || 0,
    inFlight: 0,
    multi: false,
    watching: false,
    tainted: undefined,
    connected: false,
    lost: false,
    closing: false,
    lastError: undefined,
    downReason: undefined,
    commands: 0,
    commandMs: 0,
    lastCommandError: undefined,
    listeners: undefined,
  };
  states.set(client, state);
  // Attached before connecting: an 'error' with no listener must never reach the process.
  client.on('error', (error: Error) => {
    state.lastError = error;
  });
  // A Cluster reports one node's failure as 'node error' (it copes: refreshes the slots, redirects).
  if (cluster) client.on('node error', noop);
  client.on('end', () => {
    if (state.lost) return;
    state.lost = true;
    if (state.connected && !state.closing) {
      onLost(client, state.lastError ?? new Error('the server closed the connection'));
    }
  });
  wrapSendCommand(client, state, context);
  if (role === 'shared') guardSharedPipelines(client, context);
  // ioredis keeps the password in `options` (and `condition.auth`) until connectClient() drops it, and a
  // Cluster for good: a client printed while connecting, after a failed connect, or a Cluster lease, shows
  // this instead (as a MongoClient does).
  Object.defineProperty(client, inspectSymbol, {
    value: () =>
      `${cluster ? 'Cluster' : 'Redis'} { pool: '${context.poolName}', role: '${role}', status: '${client.status}' }`,
    configurable: true,
    enumerable: false,
    writable: true,
  });
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
  client: RedisClient,
  signal: AbortSignal,
  context: RedisContext,
): Promise<RedisClient> {
  const state = states.get(client)!;
  try {
    await connectAbortable(
      signal,
      () => (isCluster(client) ? connectCluster(client) : client.connect()),
      () => {
        state.closing = true;
        // Why it is down, for the commands the shared client queued meanwhile: PoolUnavailableError with this
        // cause (a `closing` client without a reason is one closed by pool.close(): PoolClosedError).
        state.downReason ??= toError(signal.aborted ? signal.reason : (state.lastError ?? 'connect failed'));
        void destroyClient(client);
      },
      (error) => redactCommand(context.redactor.error(state.lastError ?? error), context),
    );
  } catch (error) {
    forgetPassword(client, context); // never reconnected (no retry strategy): it has no use for it
    throw error;
  }
  if (client.status !== 'ready' || state.lost) {
    forgetPassword(client, context);
    throw state.lastError ?? new Error('the connection closed during the handshake');
  }
  state.connected = true;
  state.listeners = new ListenerGuard(client);
  forgetPassword(client, context);
  return client;
}

/**
 * Cluster#connect(), which never settles when the ready check fails (cluster_state:fail: ioredis closes the
 * client, but its connect promise has already stopped listening): the client's 'end' rejects it too.
 */
function connectCluster(client: Cluster): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onEnd = (): void => {
      reject(new Error('the cluster could not be reached, or is not serving all its slots (cluster_state)'));
    };
    client.once('end', onEnd);
    client.connect().then(
      () => {
        client.off('end', onEnd);
        resolve();
      },
      (error: unknown) => {
        client.off('end', onEnd);
        reject(error as Error);
      },
    );
  });
}

/** Opens a lease connection (the definition's `connect`). */
export async function openLeaseClient(signal: AbortSignal, context: RedisContext): Promise<RedisClient> {
  const client = createClient(context, 'lease', (lost, error) => context.connectionLost(lost, error));
  return connectClient(client, signal, context);
}

/**
 * ioredis keeps the password (`options.password`, `condition.auth`) for reconnecting, which pooled clients
 * never do. The client is lent to callers and passed to event listeners: it should not carry the secret.
 */
function forgetPassword(client: RedisClient, context: RedisContext): void {
  if (isCluster(client)) {
    // A Cluster opens node connections for as long as it lives (new nodes, failovers): it must keep the
    // password. The redactor knows it, so it never reaches an error or a log of ours.
    const password = client.options.redisOptions?.password;
    if (typeof password === 'string') context.redactor.add(password);
    return;
  }
  const { password, sentinelPassword } = client.options;
  if (typeof password === 'string') context.redactor.add(password);
  client.options.password = undefined;
  if (client.condition !== null) client.condition.auth = undefined;
  // Through Sentinel, the sentinels' password was only needed to find the master.
  if (typeof sentinelPassword === 'string') context.redactor.add(sentinelPassword);
  client.options.sentinelPassword = undefined;
}

/** Closes a client and resolves when its socket is closed (bounded). */
export function closeClient(client: RedisClient): Promise<void> {
  const state = states.get(client);
  if (state !== undefined) state.closing = true;
  return destroyClient(client);
}

const CLOSE_GRACE_MS = 1_000;

const closing = new WeakMap<RedisClient, Promise<void>>();

/** Disconnects at once (idempotent: every caller gets the same promise). */
function destroyClient(client: RedisClient): Promise<void> {
  let done = closing.get(client);
  if (done === undefined) {
    done = disconnect(client);
    closing.set(client, done);
  }
  return done;
}

function disconnect(client: RedisClient): Promise<void> {
  if (isCluster(client)) return disconnectCluster(client);
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

/** A Cluster closes its node clients on disconnect(); resolves at its 'end' (bounded). */
function disconnectCluster(client: Cluster): Promise<void> {
  if (client.status === 'end') return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, CLOSE_GRACE_MS);
    timer.unref();
    client.once('end', () => {
      clearTimeout(timer);
      resolve();
    });
    client.disconnect();
  });
}

/**
 * PING: validation and health checks. The pool bounds it (validationTimeoutMs, the check's timeout). On a
 * Cluster, CLUSTER INFO instead: PING is answered even by a cluster that refuses every key (a master lost,
 * its slots uncovered), while `cluster_state:ok` says the cluster serves all of them. Every node answers
 * CLUSTER INFO with its view of the cluster, which the nodes share once a failure is declared, so any live master will do.
 */
export async function pingClient(client: RedisClient): Promise<void> {
  if (isCluster(client)) {
    // Ask a node the client holds a live connection to: a keyless command otherwise goes to a random node,
    // and one that just died answers "Too many Cluster redirections" before the cluster itself has an opinion,
    // so health would flap with the draw. No live node: the client routes it (and fails typed).
    const node = client.nodes('master').find((candidate) => candidate.status === 'ready');
    const info = String(await poolCommand(() => (node ?? client).cluster('INFO')));
    const state = /cluster_state:(\w+)/.exec(info)?.[1];
    if (state !== 'ok') throw new Error(`the cluster is not serving all its slots (cluster_state:${state})`);
    return;
  }
  const reply = await poolCommand(() => client.ping());
  if (reply !== 'PONG') throw new Error(`unexpected PING reply ${JSON.stringify(reply).slice(0, 40)}`);
}

/**
 * Makes a returned lease safe for the next borrower: DISCARD if in MULTI, UNWATCH if watching, SELECT back
 * to the configured db, unsubscribe from everything. Nothing to clean (the common case): returns
 * synchronously. A connection with unanswered commands, or state that can't be undone, is refused (destroyed).
 */
export function resetClient(client: RedisClient): Promise<void> | undefined {
  const state = states.get(client);
  if (state === undefined) return undefined;
  checkUsable(client, state);
  state.listeners?.restore();
  if (isCluster(client)) {
    if (!state.multi && !state.watching) return undefined;
    return cleanCluster(client, state);
  }
  const condition = client.condition;
  const subscribed = condition !== null && condition.subscriber !== false;
  const selected = condition !== null && Number(condition.select) !== state.db;
  if (!state.multi && !state.watching && !subscribed && !selected) return undefined;
  return cleanClient(client, state);
}

function checkUsable(client: RedisClient, state: RedisClientState): void {
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
    // One kind at a time, naming the channels: ioredis settles a bare UNSUBSCRIBE only once no subscription
    // of any kind is left, so with a PSUBSCRIBE too it would wait (and swallow the PUNSUBSCRIBE reply).
    const channels = subscriber.channels('subscribe');
    if (channels.length > 0) await poolCommand(() => client.unsubscribe(...channels));
    const patterns = subscriber.channels('psubscribe');
    if (patterns.length > 0) await poolCommand(() => client.punsubscribe(...patterns));
    const shardChannels = subscriber.channels('ssubscribe');
    if (shardChannels.length > 0) await poolCommand(() => client.sunsubscribe(...shardChannels));
    if (client.condition?.subscriber) throw new Error('still subscribed after UNSUBSCRIBE');
  }
  if (state.multi) {
    // DISCARD also forgets WATCHed keys. "DISCARD without MULTI" (MULTI itself failed) is fine.
    await poolCommand(() => client.discard()).catch((error: unknown) => {
      if (!/without MULTI/i.test(String((error as { message?: unknown })?.message))) throw error;
    });
    state.multi = false;
    state.watching = false;
  }
  if (state.watching) await poolCommand(() => client.unwatch());
  if (Number(client.condition?.select) !== state.db) await poolCommand(() => client.select(state.db));
  checkUsable(client, state);
  if (state.multi || state.watching || Number(client.condition?.select) !== state.db) {
    throw new Error('the connection could not be cleaned');
  }
}

/**
 * A Cluster's WATCH and MULTI live on the connection to the node of their keys, which the Cluster client
 * does not remember: DISCARD / UNWATCH go to every node it is connected to.
 */
async function cleanCluster(client: Cluster, state: RedisClientState): Promise<void> {
  const nodes = client.nodes('all');
  await Promise.all(
    nodes.map(async (node) => {
      if (state.multi) {
        await node.discard().catch((error: unknown) => {
          if (!/without MULTI/i.test(String((error as { message?: unknown })?.message))) throw error;
        });
      }
      await node.unwatch();
    }),
  );
  state.multi = false;
  state.watching = false;
  checkUsable(client, state);
}

/** Did `error`, thrown while the connection was lent, leave it unusable? */
export function isClientBroken(client: RedisClient, error: unknown): boolean {
  const state = states.get(client);
  if (state === undefined) return false;
  if (state.lost || state.closing || client.status !== 'ready') return true;
  // A Cluster copes with a lost node itself (slot refresh, redirections): its errors don't condemn it.
  if (state.cluster) return false;
  const message = typeof error === 'object' && error !== null ? (error as { message?: unknown }).message : '';
  return typeof message === 'string' && CONNECTION_FAILURE.test(message) && !isReplyError(error);
}

function isConnectionFailure(error: unknown): boolean {
  const message = typeof error === 'object' && error !== null ? (error as { message?: unknown }).message : '';
  return typeof message === 'string' && CONNECTION_FAILURE.test(message);
}

/** Is `error` ioredis saying the connection failed (closed, reset, unwritable), not a reply of the server? */
export function isConnectionError(error: unknown): boolean {
  return isConnectionFailure(error) && !isReplyError(error);
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
    // Options come before STREAMS; after it, a stream named "block" is just a key. Arguments may be Buffers.
    for (let at = 0; at < args.length; at++) {
      const option = optionName(args[at]);
      if (option === 'streams') return undefined;
      if (option === 'block') return toNumber(args[at + 1]);
      // XREADGROUP GROUP <group> <consumer>: names, not options, whatever they spell.
      if (option === 'group' && name === 'xreadgroup') at += 2;
      else if (option === 'count') at += 1;
    }
    return undefined;
  }
  if (!BLOCKING.has(name)) return undefined;
  if (name === 'wait') return toNumber(args[1]);
  if (name === 'waitaof') return toNumber(args[2]);
  if (name === 'blmpop' || name === 'bzmpop') return toNumber(args[0]) * 1000;
  return toNumber(args[args.length - 1]) * 1000;
}

/** An option token, lower-cased, whether given as a string or a Buffer; '' for anything else. */
function optionName(arg: unknown): string {
  if (typeof arg === 'string') return arg.toLowerCase();
  if (arg instanceof Uint8Array && arg.length <= 8) return Buffer.from(arg).toString('latin1').toLowerCase();
  return '';
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

/** Why a Cluster lease refuses a command, or undefined. */
function clusterRefusal(name: string, pipelined: boolean): string | undefined {
  if (!pipelined && (name === 'multi' || name === 'exec' || name === 'discard')) {
    return 'a Cluster client sends it to a random node; use multi().…exec(), which goes to the node of its keys';
  }
  return undefined;
}

function track(state: RedisClientState, name: string, args: readonly unknown[]): void {
  // On a Cluster, a subscription lives on a subscriber connection the pool cannot clean: never lend it again.
  if (state.cluster && SUBSCRIBING.has(name)) {
    state.tainted ??= name;
    return;
  }
  switch (name) {
    case 'multi':
      state.multi = true;
      return;
    case 'exec':
    case 'discard':
      // Inside MULTI both end the transaction and forget the WATCHed keys; without one the server refuses
      // them ("without MULTI") and the WATCH stays.
      if (state.multi) state.watching = false;
      state.multi = false;
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

function isPipelineStream(stream: unknown): stream is { write(data: string): void } {
  return (
    typeof stream === 'object' &&
    stream !== null &&
    (stream as { isPipeline?: unknown }).isPipeline === true &&
    typeof (stream as { write?: unknown }).write === 'function'
  );
}

/** What ioredis' Pipeline looks like to the guard below (its queue is not part of the typed API). */
interface RedisPipeline {
  _queue?: unknown;
  exec(callback?: (error: unknown, result?: unknown) => void): Promise<unknown>;
}

/**
 * pool.shared: a pipeline (or `multi()...exec()`) holding a command the shared client refuses is refused
 * whole, before anything is sent. Refusing only that command as ioredis hands it over would leave the
 * others of a transaction to run without it, their results misplaced in the EXEC reply.
 */
function guardSharedPipelines(client: RedisClient, context: RedisContext): void {
  for (const method of ['pipeline', 'multi'] as const) {
    const original = (client as unknown as Record<string, (...args: unknown[]) => unknown>)[method]!;
    Object.defineProperty(client, method, {
      value: function guarded(...args: unknown[]): unknown {
        const made = Reflect.apply(original, client, args) as Partial<RedisPipeline> | undefined;
        // multi({ pipeline: false }) sends MULTI at once (refused by sendCommand) and returns a promise.
        if (made === undefined || typeof made.exec !== 'function' || !Array.isArray(made._queue)) return made;
        const exec = made.exec;
        made.exec = function exec_(this: RedisPipeline, callback) {
          const failure = refusedCommandIn(this._queue as RedisCommand[], context);
          if (failure === undefined) return Reflect.apply(exec, this, [callback]) as Promise<unknown>;
          const refused = Promise.reject(failure);
          if (typeof callback === 'function') refused.catch((error: unknown) => callback(error));
          return refused;
        };
        return made;
      },
      configurable: true,
      enumerable: false,
      writable: true,
    });
  }
}

function refusedCommandIn(queue: readonly RedisCommand[], context: RedisContext): Error | undefined {
  for (const command of queue) {
    const name = String(command.name).toLowerCase();
    if (!SPECIAL.has(name)) continue;
    const args = Array.isArray(command.args) ? command.args : NO_ARGS;
    const refused = sharedRefusalError(name, args, true, context);
    if (refused !== undefined) return refused;
  }
  return undefined;
}

/** True while the pool itself sends a command (a reset, a ping): sent like any other, not counted as a caller's. */
let sendingPoolCommand = false;

/**
 * Sends the pool's own command(s) through `send` (ioredis hands a command to sendCommand synchronously, inside
 * the call): bounded and tracked as usual, but left out of the connection's caller statistics.
 */
function poolCommand<R>(send: () => Promise<R>): Promise<R> {
  sendingPoolCommand = true;
  try {
    return send();
  } finally {
    sendingPoolCommand = false;
  }
}

/**
 * Wraps `client.sendCommand`: counts unanswered commands, tracks MULTI/WATCH, refuses stateful commands on
 * the shared client, bounds each command by `queryTimeoutMs` (a timed-out client is destroyed: its
 * protocol state is unknown) and redacts errors. ioredis' own handshake commands pass untouched.
 */
function wrapSendCommand(client: RedisClient, state: RedisClientState, context: RedisContext): void {
  const host = client as unknown as { sendCommand: SendCommand };
  const original = host.sendCommand;
  const { queryTimeoutMs } = context.options;
  const cluster = state.cluster;
  const shared = state.role === 'shared';
  const sendCommand: SendCommand = function sendCommand(command, stream, node) {
    const raw = command.name;
    const name = typeof raw === 'string' ? raw.toLowerCase() : String(raw).toLowerCase();
    // ioredis recognises SELECT, SUBSCRIBE, QUIT, ... by their lower-case names only: `call('SELECT', 5)`
    // would change the database without its knowing (nor ours: reset reads its `condition.select`).
    if (raw !== name) command.name = name;
    // ioredis' own handshake (HELLO, SELECT, CLIENT SETNAME/SETINFO, INFO; a Cluster's CLUSTER INFO ready
    // check), and the second pass of a command queued while the shared client connected: not the caller's,
    // or already counted and bounded.
    if (
      command[TAKEN] === true ||
      (cluster
        ? name === 'cluster' && client.status !== 'ready'
        : (client as Redis).condition?.handshake === true && HANDSHAKE.has(name))
    ) {
      return original.call(client, command, stream, node);
    }
    command[TAKEN] = true;
    // The common case (GET, SET, ...) costs one Set lookup: only the commands below need a closer look.
    const special = SPECIAL.has(name);
    const args = special && Array.isArray(command.args) ? command.args : NO_ARGS;
    if (special || (shared && state.lost)) {
      const failure = shared
        ? sharedFailure(state, name, args, stream !== undefined, context)
        : cluster
          ? clusterFailure(name, stream !== undefined, context)
          : undefined;
      if (failure !== undefined) {
        command.reject(failure);
        command.promise.catch(noop);
        // A pipeline writes once every command has written: write nothing for this one, or the others (queued
        // for their replies) would never be sent, and other callers' replies would be taken for theirs.
        if (isPipelineStream(stream) && !state.lost) {
          try {
            stream.write('');
          } catch {
            // No socket yet to write the others to: they were queued offline, and are sent when it connects.
          }
        }
        return rejected(failure);
      }
      if (special) track(state, name, args);
    }
    state.inFlight++;
    observe(command, state, context, sendingPoolCommand ? NaN : performance.now());
    const sent = original.call(client, command, stream, node) as Promise<unknown>;
    const timeoutMs =
      queryTimeoutMs === Infinity
        ? Infinity
        : commandTimeoutMs(name, special ? args : NO_ARGS, queryTimeoutMs);
    // No timeout: the caller gets ioredis' own promise, nothing added (the accounting is in `observe`).
    if (timeoutMs === Infinity) return sent;
    const result = withQueryTimeout(sent, {
      poolName: context.poolName,
      timeoutMs,
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

const NO_ARGS: readonly unknown[] = Object.freeze([]);

/**
 * Counts the command when it is answered, through its own resolve/reject (which ioredis calls with the
 * reply) rather than a `.then()` on its promise: no extra promise or microtask per command. A failure is
 * translated (redacted, typed) before it reaches the command's promise, so pipelines see it too. `startedAt`
 * is NaN for the pool's own commands: settled and translated alike, but not counted.
 */
function observe(
  command: RedisCommand,
  state: RedisClientState,
  context: RedisContext,
  startedAt: number,
): void {
  const resolve = command.resolve;
  const reject = command.reject;
  let settled = false;
  const settle = (): void => {
    settled = true;
    state.inFlight--;
    if (Number.isNaN(startedAt)) return;
    state.commands++;
    state.commandMs += performance.now() - startedAt;
  };
  command.resolve = function resolveObserved(this: RedisCommand, value: unknown) {
    if (!settled) settle();
    return resolve.call(this, value);
  };
  command.reject = function rejectObserved(this: RedisCommand, error: unknown) {
    if (settled) return reject.call(this, error);
    settle();
    const translated = translateError(state, error, context);
    state.lastCommandError = errorMessage(translated);
    return reject.call(this, translated);
  };
}

function clusterFailure(name: string, pipelined: boolean, context: RedisContext): Error | undefined {
  const refusal = clusterRefusal(name, pipelined);
  if (refusal === undefined) return undefined;
  return new PoolError(
    context.poolName,
    `${name.toUpperCase()} is not allowed on a Cluster lease: ${refusal}`,
  );
}

/** An error's message, already redacted (it comes out of translateError). */
function errorMessage(error: unknown): string {
  const message =
    typeof error === 'object' && error !== null ? (error as { message?: unknown }).message : error;
  return String(message).slice(0, 500);
}

function sharedFailure(
  state: RedisClientState,
  name: string,
  args: readonly unknown[],
  pipelined: boolean,
  context: RedisContext,
): Error | undefined {
  const refused = sharedRefusalError(name, args, pipelined, context);
  if (refused !== undefined) return refused;
  if (state.lost) return sharedDownError(state, context);
  return undefined;
}

function sharedRefusalError(
  name: string,
  args: readonly unknown[],
  pipelined: boolean,
  context: RedisContext,
): PoolError | undefined {
  const refusal = sharedRefusal(name, args, pipelined);
  if (refusal === undefined) return undefined;
  return new PoolError(
    context.poolName,
    `${name.toUpperCase()} is not allowed on pool.shared: ${refusal}. Use pool.use() for an exclusive connection`,
  );
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

/**
 * A command's failure as the caller sees it: redacted; on the shared client, a lost connection is typed:
 * PoolConnectionError for a command the connection took and then failed under, PoolUnavailableError for
 * one that never had a connection (queued while a connect attempt failed), PoolClosedError after close().
 * A lease's are typed by BackendPool.use (see `isConnectionError`).
 */
function translateError(state: RedisClientState, error: unknown, context: RedisContext): unknown {
  // The connection was given up because a command got no answer in time: the commands sent with it or after
  // it (a pipeline's or MULTI's others, which read their own promises, and other callers' on the shared
  // client) got none either, and are failed as ioredis closes the socket. They timed out too.
  const timedOut = state.downReason;
  if (timedOut instanceof PoolQueryTimeoutError && !(error instanceof PoolError) && !isReplyError(error)) {
    return new PoolQueryTimeoutError(context.poolName, timedOut.timeoutMs, {
      cause: redactCommand(context.redactor.error(error), context),
    });
  }
  // Translated as ioredis fails the command, which may come before the client's 'end' (so before `lost`).
  if (
    state.role === 'shared' &&
    !(error instanceof PoolError) &&
    !isReplyError(error) &&
    (state.lost || (!state.cluster && isConnectionFailure(error)))
  ) {
    if (state.connected && !(state.closing && state.downReason === undefined)) {
      return new PoolConnectionError(context.poolName, redactCommand(context.redactor.error(error), context));
    }
    const typed = sharedDownError(state, context);
    if (typed.cause === undefined)
      Object.defineProperty(typed, 'cause', { value: error, configurable: true });
    return context.redactor.error(typed);
  }
  if (state.cluster && !(error instanceof PoolError) && isClusterUnavailable(error)) {
    const reason = context.redactor.text(String((error as { message?: unknown }).message));
    return context.redactor.error(
      new PoolUnavailableError(context.poolName, `the Redis Cluster could not serve the command: ${reason}`, {
        cause: redactCommand(error, context),
      }),
    );
  }
  return redactCommand(context.redactor.error(error), context);
}

/**
 * A Cluster gave up on a command for want of a node (ioredis' "Too many Cluster redirections" after a lost
 * node or CLUSTERDOWN replies), the cluster itself refuses keys (CLUSTERDOWN: a slot has no master), or the
 * Cluster client could reach no node at all (its queued commands are failed).
 */
function isClusterUnavailable(error: unknown): boolean {
  const message = typeof error === 'object' && error !== null ? (error as { message?: unknown }).message : '';
  return typeof message === 'string' && CLUSTER_UNAVAILABLE.test(message);
}

const CLUSTER_UNAVAILABLE =
  /^(Too many Cluster redirections|CLUSTERDOWN|None of startup nodes is available|Cluster is ended)/;

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

/** A command timed out: the client is never used again (its answer may still come, or never). */
function abandonClient(
  client: RedisClient,
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
