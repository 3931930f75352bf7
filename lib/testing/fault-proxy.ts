import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * What the proxy currently does with traffic:
 * - `pass`: forwards everything unchanged.
 * - `latency`: delays every chunk in both directions (order preserved).
 * - `blackhole`: a network partition: connections are accepted but nothing gets through in either direction.
 * - `reset`: every new connection is reset (RST) right after it is accepted.
 * - `refuse`: nothing listens on the port any more (ECONNREFUSED), like a server that is down.
 * - `close-after-bytes`: each connection is closed after n bytes from the server reached the client.
 */
export type FaultMode = 'pass' | 'latency' | 'blackhole' | 'reset' | 'refuse' | 'close-after-bytes';

export interface FaultProxyTarget {
  host: string;
  port: number;
}

export interface FaultProxyOptions {
  /** The real server. */
  target: FaultProxyTarget;
  /** Address to listen on; default 127.0.0.1. */
  listenHost?: string;
  /** Port to listen on; default 0 (a free port, see `port` after start()). */
  listenPort?: number;
}

export interface LatencyOptions {
  /** Delay added to every chunk, in each direction. */
  ms: number;
  /** Up to this many extra milliseconds, random per chunk (order is still preserved). */
  jitterMs?: number;
}

export interface BlackholeOptions {
  /**
   * false (default): the proxy holds the traffic back, as a real partition does while TCP keeps
   * retransmitting; when the blackhole ends it is delivered in order (to whoever has not given up).
   * true: traffic is thrown away, so a connection that survives the blackhole is desynchronised.
   */
  discard?: boolean;
}

export interface FaultProxyStats {
  /** Client connections accepted since start() (including ones that were reset or black-holed). */
  accepted: number;
  /** Bytes forwarded from clients to the server. */
  bytesUp: number;
  /** Bytes forwarded from the server to clients. */
  bytesDown: number;
  /** Bytes thrown away by blackhole({ discard: true }). */
  bytesDropped: number;
}

interface QueueEntry {
  /** performance.now() at which the entry may be delivered. */
  due: number;
  /** null marks the end of the stream (FIN), which must not overtake queued data. */
  data: Buffer | null;
}

/**
 * A loopback TCP proxy that a test puts between a client (a pool) and its server to inject network faults.
 *
 * ```ts
 * const proxy = new FaultProxy({ target: { host: '127.0.0.1', port: 5432 } });
 * await proxy.start();
 * // connect the pool to proxy.host:proxy.port, then e.g.
 * await proxy.blackhole();
 * await proxy.pass();
 * await proxy.stop();
 * ```
 *
 * Mode changes take effect immediately for new data and connections; await them anyway, because leaving
 * `refuse` has to listen on the port again.
 */
export class FaultProxy {
  private readonly target: FaultProxyTarget;
  private readonly listenHost: string;
  private boundPort: number;
  private server: Server | undefined;
  private currentMode: FaultMode = 'pass';
  private latencyMs = 0;
  private jitterMs = 0;
  private discardInBlackhole = false;
  private closeAfter = 0;
  private started = false;
  private stopped = false;
  /** Listen/close operations run one after another, whatever order the mode changes come in. */
  private listenChain: Promise<void> = Promise.resolve();
  private readonly links = new Set<Link>();
  /** waitForConnections() calls in progress: their check, and how to fail them. */
  private readonly waiters = new Map<() => void, (error: Error) => void>();
  private readonly counters: FaultProxyStats = { accepted: 0, bytesUp: 0, bytesDown: 0, bytesDropped: 0 };

  constructor(options: FaultProxyOptions) {
    this.target = { ...options.target };
    this.listenHost = options.listenHost ?? '127.0.0.1';
    this.boundPort = options.listenPort ?? 0;
  }

  /** Starts listening (in `pass` mode). */
  async start(): Promise<void> {
    if (this.started) throw new Error('FaultProxy already started');
    this.started = true;
    await this.setListening(true);
  }

  /** The address clients should connect to. */
  get host(): string {
    return this.listenHost;
  }

  /** The port clients should connect to; stays the same across refuse() and the following mode change. */
  get port(): number {
    if (!this.started) throw new Error('FaultProxy not started');
    return this.boundPort;
  }

  get mode(): FaultMode {
    return this.currentMode;
  }

  /**
   * Client connections that are open: neither closed by the proxy nor closed or half-closed by the client
   * (during a blackhole the proxy still holds a connection the client has closed, as the server would).
   */
  get connections(): number {
    let open = 0;
    for (const link of this.links) if (link.open) open++;
    return open;
  }

  /** A snapshot of the counters. */
  get stats(): FaultProxyStats {
    return { ...this.counters };
  }

  /** Forward everything unchanged (again). */
  pass(): Promise<void> {
    return this.setMode('pass');
  }

  /** Delay each chunk in both directions by ms (+ up to jitterMs), preserving order. */
  latency(options: LatencyOptions): Promise<void> {
    if (!(options.ms >= 0) || !((options.jitterMs ?? 0) >= 0)) throw new RangeError('latency must be >= 0');
    this.latencyMs = options.ms;
    this.jitterMs = options.jitterMs ?? 0;
    return this.setMode('latency');
  }

  /**
   * Partition: new connections are accepted but never answered (nor connected to the server before the
   * partition ends); existing connections stop forwarding in both directions. See BlackholeOptions for
   * what happens to the traffic. Closes and resets are held back as well, like in a real partition.
   */
  blackhole(options: BlackholeOptions = {}): Promise<void> {
    this.discardInBlackhole = options.discard ?? false;
    return this.setMode('blackhole');
  }

  /** Resets (RST) all open connections now and every new one until the next mode change. */
  reset(): Promise<void> {
    this.resetAll();
    return this.setMode('reset');
  }

  /** Resets (RST) all open connections now, both towards the client and the server; the mode stays. */
  resetAll(): void {
    for (const link of [...this.links]) link.abort();
  }

  /**
   * Stop listening, so connections are refused, and close the open ones (like a server going down).
   * Any other mode listens again on the same port.
   */
  refuse(): Promise<void> {
    return this.setMode('refuse');
  }

  /** Close each connection after n bytes from the server have reached the client (counting from now). */
  closeAfterBytes(n: number): Promise<void> {
    if (!Number.isInteger(n) || n < 0) throw new RangeError('closeAfterBytes needs an integer >= 0');
    this.closeAfter = n;
    return this.setMode('close-after-bytes');
  }

  /** Resolves once `connections === count`; rejects after timeoutMs. */
  waitForConnections(count: number, timeoutMs = 5000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.connections === count) return resolve();
      const check = (): void => {
        if (this.connections !== count) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const fail = (error: Error): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        reject(error);
      };
      const timer = setTimeout(() => {
        fail(
          new Error(`FaultProxy: ${this.connections} connections, expected ${count} within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.waiters.set(check, fail);
    });
  }

  /** Closes the listener and all connections; leaves no handles behind. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const closing = [...this.links].map((link) => link.destroy());
    await Promise.all([this.setListening(false), ...closing]);
    // Nothing will connect any more: a wait for a count other than 0 fails now, not at its timeout.
    this.notify();
    for (const fail of [...this.waiters.values()])
      fail(new Error('FaultProxy: stopped while waiting for connections'));
  }

  // ---------------------------------------------------------------------------------------------------
  // Internals shared with Link

  /** @internal */
  get blackholed(): boolean {
    return this.currentMode === 'blackhole';
  }

  /** @internal */
  get discarding(): boolean {
    return this.currentMode === 'blackhole' && this.discardInBlackhole;
  }

  /** @internal Delay for a chunk arriving now. */
  delay(): number {
    if (this.currentMode !== 'latency') return 0;
    return this.latencyMs + (this.jitterMs > 0 ? Math.random() * this.jitterMs : 0);
  }

  /** @internal */
  count(key: keyof FaultProxyStats, n: number): void {
    this.counters[key] += n;
  }

  /** @internal The byte budget a connection gets in the current mode (undefined = unlimited). */
  downBudget(): number | undefined {
    return this.currentMode === 'close-after-bytes' ? this.closeAfter : undefined;
  }

  /** @internal */
  connectUpstream(): Socket {
    // allowHalfOpen: a FIN from one side is forwarded as a FIN in order with the data (see Direction).
    const socket = createConnection({ host: this.target.host, port: this.target.port, allowHalfOpen: true });
    socket.setNoDelay(true);
    return socket;
  }

  /** @internal */
  forget(link: Link): void {
    this.links.delete(link);
    this.notify();
  }

  /** @internal Re-evaluates waitForConnections() waiters. */
  notify(): void {
    for (const check of [...this.waiters.keys()]) check();
  }

  private setMode(mode: FaultMode): Promise<void> {
    if (!this.started || this.stopped) return Promise.reject(new Error('FaultProxy is not running'));
    const previous = this.currentMode;
    this.currentMode = mode;
    const budget = this.downBudget();
    for (const link of [...this.links]) {
      link.setDownBudget(budget);
      if (mode === 'refuse') void link.destroy();
      else if (previous === 'blackhole') link.update();
    }
    return this.setListening(mode !== 'refuse');
  }

  private setListening(listening: boolean): Promise<void> {
    const op = this.listenChain.then(() => (listening ? this.listen() : this.unlisten()));
    this.listenChain = op.catch(() => undefined);
    return op;
  }

  private listen(): Promise<void> {
    if (this.server || this.stopped) return Promise.resolve();
    // A fresh server each time: after refuse() the port is listened on again, and an old Server object
    // could still be waiting for its 'close'.
    const server = createServer({ allowHalfOpen: true }, (client) => this.onConnection(client));
    return new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.listenHost, port: this.boundPort }, () => {
        server.off('error', reject);
        // Errors after listening (there are hardly any for a server) must not crash the test process.
        server.on('error', () => undefined);
        const address = server.address();
        if (address && typeof address === 'object') this.boundPort = address.port;
        this.server = server;
        resolve();
      });
    });
  }

  private unlisten(): Promise<void> {
    const server = this.server;
    if (!server) return Promise.resolve();
    this.server = undefined;
    // close() stops accepting at once; its callback waits for accepted sockets, which are closed by now.
    return new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private onConnection(client: Socket): void {
    this.counters.accepted++;
    client.on('error', () => undefined); // a socket error must never become an uncaught exception
    if (this.stopped || this.currentMode === 'refuse') {
      client.destroy(); // raced with refuse()/stop(): the listener was already closing
      return;
    }
    if (this.currentMode === 'reset') {
      resetSocket(client);
      return;
    }
    client.setNoDelay(true);
    this.links.add(new Link(this, client));
    this.notify();
  }
}

/** Sends RST instead of FIN (what a crashed middlebox or an iptables REJECT --reject-with tcp-reset does). */
function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting) {
    socket.destroy(); // nothing to reset yet (resetAndDestroy() would wait for the connect)
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy(); // not a TCP handle (cannot happen here) or already closing
  }
}

/** One client connection and its server connection. */
class Link {
  readonly client: Socket;
  private upstream: Socket | undefined;
  private readonly up: Direction;
  private readonly down: Direction;
  /** Bytes still allowed towards the client in close-after-bytes mode. */
  private budget: number | undefined;
  /** An abort (RST) from one side that arrived during a blackhole: delivered when it ends. */
  private pendingAbort = false;
  private closed = false;
  private readonly closedSockets: Promise<void>[] = [];

  constructor(
    private readonly proxy: FaultProxy,
    client: Socket,
  ) {
    this.client = client;
    this.budget = proxy.downBudget();
    this.up = new Direction(proxy, this, 'up');
    this.down = new Direction(proxy, this, 'down');
    this.closedSockets.push(closeOf(client));
    client.on('data', (chunk: Buffer) => this.up.onData(chunk));
    client.on('end', () => {
      this.up.onEnd();
      this.proxy.notify();
    });
    client.on('error', () => this.onAbort());
    client.on('close', () => {
      this.proxy.notify();
      this.settle();
    });
    // During a blackhole the server is not even connected yet: the partition hides the new connection.
    if (!proxy.blackholed) this.ensureUpstream();
    // closeAfterBytes(0): not one byte may reach the client, so nothing to wait for.
    if (this.budget === 0) this.closeClient();
  }

  /** Whether the client still has the connection open (neither closed nor half-closed it). */
  get open(): boolean {
    return !this.client.destroyed && !this.client.readableEnded;
  }

  source(direction: 'up' | 'down'): Socket | undefined {
    return direction === 'up' ? this.client : this.upstream;
  }

  sink(direction: 'up' | 'down'): Socket | undefined {
    return direction === 'up' ? this.upstream : this.client;
  }

  setDownBudget(budget: number | undefined): void {
    this.budget = budget;
    // closeAfterBytes(0) closes at once, an idle connection too (not at the server's next chunk).
    if (budget === 0 && !this.closed) this.closeClient();
  }

  /**
   * Limits a chunk for the client to the close-after-bytes budget.
   * @returns the part to deliver and whether the connection must be closed after it
   */
  takeBudget(chunk: Buffer): { deliver: Buffer; close: boolean } {
    if (this.budget === undefined) return { deliver: chunk, close: false };
    if (chunk.length < this.budget) {
      this.budget -= chunk.length;
      return { deliver: chunk, close: false };
    }
    const deliver = chunk.subarray(0, this.budget);
    this.budget = 0;
    return { deliver, close: true };
  }

  /** Catches up after a blackhole ended: delivers held traffic, closes and resets in order. */
  update(): void {
    if (this.closed || this.proxy.blackholed) return;
    // The partition is over: whatever happened meanwhile reaches the other side now, in order.
    if (this.pendingAbort) return this.abort();
    this.ensureUpstream();
    this.up.pump();
    this.down.pump();
    this.settle();
  }

  /** Closes the client connection the way a server closing it would (FIN after the delivered data). */
  closeClient(): void {
    this.closed = true;
    this.up.clear();
    this.down.clear();
    closeSocket(this.client);
    this.upstream?.destroy();
  }

  /** RST towards both sides. */
  abort(): void {
    this.closed = true;
    this.up.clear();
    this.down.clear();
    resetSocket(this.client);
    if (this.upstream) resetSocket(this.upstream);
  }

  /** Closes both sockets at once; resolves when both are closed. */
  destroy(): Promise<void> {
    this.closed = true;
    this.up.clear();
    this.down.clear();
    this.client.destroy();
    this.upstream?.destroy();
    return Promise.all(this.closedSockets).then(() => undefined);
  }

  private ensureUpstream(): void {
    if (this.upstream || this.closed || this.client.destroyed) return;
    const upstream = this.proxy.connectUpstream();
    this.upstream = upstream;
    this.closedSockets.push(closeOf(upstream));
    upstream.on('data', (chunk: Buffer) => this.down.onData(chunk));
    upstream.on('end', () => this.down.onEnd());
    // Covers a refused connect too: the client sees its connection reset, as with the server itself.
    upstream.on('error', () => this.onAbort());
    upstream.on('close', () => this.settle());
  }

  private onAbort(): void {
    if (this.closed) return;
    // During a partition the other side cannot learn about it before the partition ends.
    if (this.proxy.blackholed) this.pendingAbort = true;
    else this.abort();
  }

  /** Called whenever a socket closed or a blackhole ended: finishes a half-closed link, forgets a closed one. */
  private settle(): void {
    const upstream = this.upstream;
    if (this.client.destroyed && (!upstream || upstream.destroyed)) {
      this.closed = true;
      this.up.clear();
      this.down.clear();
      this.proxy.forget(this);
      return;
    }
    if (this.closed || this.proxy.blackholed || this.pendingAbort) return;
    // One side is gone: deliver what is still queued for the other one, then close it too.
    if (this.client.destroyed && upstream) this.up.afterFlush(() => closeSocket(upstream));
    else if (upstream?.destroyed) this.down.afterFlush(() => closeSocket(this.client));
  }
}

/** FIN after everything written so far, then release the socket (what close(2) on a server does). */
function closeSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.writableFinished) socket.destroy();
  else if (socket.writableEnded) socket.once('finish', () => socket.destroy());
  else socket.end(() => socket.destroy());
}

/** Resolves when the socket emits 'close' (at once if it already has). */
function closeOf(socket: Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise<void>((resolve) => socket.once('close', () => resolve()));
}

/**
 * One direction of a link. Every chunk (and the FIN) goes through a queue with a due time, so latency
 * and blackholes never reorder the stream, and a later mode change cannot overtake queued data.
 */
class Direction {
  private readonly queue: QueueEntry[] = [];
  private lastDue = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingForDrain = false;
  private flushed: (() => void) | undefined;

  constructor(
    private readonly proxy: FaultProxy,
    private readonly link: Link,
    private readonly direction: 'up' | 'down',
  ) {}

  onData(chunk: Buffer): void {
    if (this.proxy.discarding) {
      this.proxy.count('bytesDropped', chunk.length);
      return;
    }
    this.enqueue(chunk);
  }

  onEnd(): void {
    this.enqueue(null);
  }

  /** Drops everything queued (the connection is being closed). */
  clear(): void {
    this.queue.length = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flushed = undefined;
  }

  /** Runs fn once the queue is empty (at once if it is). */
  afterFlush(fn: () => void): void {
    if (this.queue.length === 0) fn();
    else this.flushed = fn;
  }

  private enqueue(data: Buffer | null): void {
    const now = performance.now();
    // Never earlier than the previous entry: jitter or a switch from latency to pass must not reorder.
    const due = Math.max(now + this.proxy.delay(), this.lastDue);
    this.lastDue = due;
    this.queue.push({ due, data });
    this.pump();
  }

  /** Delivers what is due (nothing during a blackhole); schedules a timer for the rest. */
  pump(): void {
    if (this.timer || this.proxy.blackholed) return;
    const sink = this.link.sink(this.direction);
    if (!sink) return; // the server connection does not exist yet (blackhole); update() pumps again
    while (this.queue.length > 0) {
      const wait = this.queue[0].due - performance.now();
      if (wait > 0) {
        // Timers may fire a fraction of a millisecond early; pump() re-checks and waits again if so.
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, Math.ceil(wait));
        return;
      }
      const entry = this.queue.shift()!;
      if (!this.deliver(sink, entry.data)) {
        this.clear();
        return;
      }
    }
    const flushed = this.flushed;
    this.flushed = undefined;
    flushed?.();
  }

  /** @returns false when the link was closed by the delivery (close-after-bytes) */
  private deliver(sink: Socket, data: Buffer | null): boolean {
    if (sink.destroyed || sink.writableEnded) return true; // the peer is gone: nothing to deliver to
    if (data === null) {
      sink.end();
      return true;
    }
    let chunk = data;
    let close = false;
    if (this.direction === 'down') ({ deliver: chunk, close } = this.link.takeBudget(data));
    if (chunk.length > 0) {
      this.proxy.count(this.direction === 'up' ? 'bytesUp' : 'bytesDown', chunk.length);
      if (!sink.write(chunk) && !this.waitingForDrain) {
        // Backpressure: stop reading from the source until the sink has written its buffer out.
        this.waitingForDrain = true;
        this.applyFlow();
        sink.once('drain', () => {
          this.waitingForDrain = false;
          this.applyFlow();
        });
      }
    }
    if (close) {
      this.link.closeClient();
      return false;
    }
    return true;
  }

  /** Reading from the source stops while the sink is congested. */
  private applyFlow(): void {
    const source = this.link.source(this.direction);
    if (!source || source.destroyed) return;
    if (this.waitingForDrain) source.pause();
    else source.resume();
  }
}
