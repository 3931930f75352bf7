/**
 * Restarts a MongoDB server monitor whose heartbeat never settles.
 *
 * Why: the driver (mongodb 6-7, Connection#writeCommand) waits for the socket's `drain` when `write()`
 * returns false. A socket already destroyed (its peer closed or reset it) but whose `close` event has not
 * run yet still looks open to the driver; a heartbeat started in that window writes `hello` to it, `write()`
 * returns false, and Node emits neither `drain` nor `error` on a destroyed socket (nor a timeout). The
 * heartbeat never settles, the monitor stays "monitoring" forever and never checks the server again. Once an
 * operation's network error has marked the server Unknown (a proxy or server closing every connection at
 * once does both), nothing can select it: every create waits out server selection, for good. Seen when a
 * server stops listening (ECONNREFUSED) and comes back: the pool never recovered.
 *
 * How: every heartbeat has a bound (a new connection: connectTimeoutMS to connect plus connectTimeoutMS for
 * its handshake; an awaited (streaming) one: connectTimeoutMS + heartbeatFrequencyMS). One that has neither
 * succeeded nor failed well past its bound is stuck: its monitor is closed and connected again, which is
 * what the driver itself does to a monitor on close/connect; the next heartbeat starts at once. The monitor
 * is reached through the driver's internals, defensively: without them, nothing is done.
 */
import type {
  MongoClient,
  ServerHeartbeatFailedEvent,
  ServerHeartbeatStartedEvent,
  ServerHeartbeatSucceededEvent,
} from 'mongodb';

/** Added to a heartbeat's bound before it is called stuck (timers and the event loop are late under load). */
export const HEARTBEAT_GRACE_MS = 500;

/** What the watchdog uses of a driver monitor (mongodb 6-7 internals). */
interface DriverMonitor {
  s?: { state?: unknown };
  close(): void;
  connect(): void;
}

export class MonitorWatchdog {
  readonly #client: MongoClient;
  /** Timers of heartbeats in flight, by server address. */
  readonly #inFlight = new Map<string, ReturnType<typeof setTimeout>>();
  #restarts = 0;
  #stopped = false;

  constructor(client: MongoClient) {
    this.#client = client;
    client.on('serverHeartbeatStarted', (event: ServerHeartbeatStartedEvent) => this.#started(event));
    const settled = (event: ServerHeartbeatSucceededEvent | ServerHeartbeatFailedEvent): void =>
      this.#settled(event.connectionId);
    client.on('serverHeartbeatSucceeded', settled);
    client.on('serverHeartbeatFailed', settled);
  }

  /** Monitors restarted because a heartbeat was stuck. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Forgets every heartbeat in flight (the client is closing). */
  stop(): void {
    this.#stopped = true;
    for (const timer of this.#inFlight.values()) clearTimeout(timer);
    this.#inFlight.clear();
  }

  #started(event: ServerHeartbeatStartedEvent): void {
    this.#settled(event.connectionId);
    const boundMs = this.#boundMs(event.awaited);
    if (this.#stopped || boundMs === undefined) return;
    const address = event.connectionId;
    const timer = setTimeout(() => {
      this.#inFlight.delete(address);
      this.#restart(address);
    }, boundMs + HEARTBEAT_GRACE_MS);
    timer.unref();
    this.#inFlight.set(address, timer);
  }

  #settled(address: string): void {
    const timer = this.#inFlight.get(address);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#inFlight.delete(address);
  }

  /** The longest a heartbeat may take; undefined when the driver has no bound (connectTimeoutMS 0). */
  #boundMs(awaited: boolean): number | undefined {
    const { connectTimeoutMS, heartbeatFrequencyMS } = this.#client.options;
    if (!(connectTimeoutMS > 0)) return undefined;
    return awaited ? connectTimeoutMS + heartbeatFrequencyMS : 2 * connectTimeoutMS;
  }

  #restart(address: string): void {
    if (this.#stopped) return;
    const monitor = monitorOf(this.#client, address);
    if (monitor?.s?.state !== 'monitoring') return;
    try {
      monitor.close();
      monitor.connect();
      this.#restarts++;
    } catch {
      // The driver's internals changed shape: leave the monitor as it is.
    }
  }
}

function monitorOf(client: MongoClient, address: string): DriverMonitor | undefined {
  const servers = (client as { topology?: { s?: { servers?: unknown } } }).topology?.s?.servers;
  if (!(servers instanceof Map)) return undefined;
  const monitor = (servers.get(address) as { monitor?: unknown } | undefined)?.monitor;
  if (typeof monitor !== 'object' || monitor === null) return undefined;
  const { close, connect } = monitor as Partial<DriverMonitor>;
  return typeof close === 'function' && typeof connect === 'function'
    ? (monitor as DriverMonitor)
    : undefined;
}
