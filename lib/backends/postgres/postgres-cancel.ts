/**
 * PostgreSQL's out-of-band CancelRequest: a 16-byte packet on a fresh connection naming the backend
 * process and its secret key. When a query times out client-side, its connection is destroyed, but the
 * server would otherwise keep running the query (holding its locks) until it next tries to talk to the
 * vanished client. pg has no public cancel API, so the packet is written here with node:net.
 *
 * Best effort: no reply is part of the protocol, failures are ignored, and the socket is bounded by a
 * timer (a blackholed network swallows the cancel too).
 */
import { connect, type Socket } from 'node:net';

/** The CancelRequest code from the protocol (1234 << 16 | 5678). */
const CANCEL_REQUEST_CODE = 80877102;
const DEFAULT_CANCEL_TIMEOUT_MS = 2_000;

export interface CancelTarget {
  /** The server host, or a Unix socket directory (starting with '/'). */
  host: string;
  port: number;
  processID: number;
  secretKey: number;
}

/** Sends a CancelRequest; resolves when the server closed the socket, on failure, or after `timeoutMs`. */
export function sendCancelRequest(
  target: CancelTarget,
  timeoutMs = DEFAULT_CANCEL_TIMEOUT_MS,
): Promise<void> {
  return new Promise<void>((resolve) => {
    const packet = Buffer.alloc(16);
    packet.writeInt32BE(16, 0);
    packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
    packet.writeInt32BE(target.processID, 8);
    packet.writeInt32BE(target.secretKey, 12);

    let socket: Socket;
    try {
      socket = target.host.startsWith('/')
        ? connect({ path: `${target.host}/.s.PGSQL.${target.port}` })
        : connect({ host: target.host, port: target.port });
    } catch {
      resolve();
      return;
    }
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    timer.unref();
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.on('connect', () => socket.end(packet));
  });
}
