/**
 * A heartbeat written to a socket that is already destroyed but not yet reported closed never settles in
 * the driver (no `drain`, no `error`, no timeout on a destroyed socket), and its monitor never checks the
 * server again. Here that race is set up on purpose (the monitor's socket destroyed, a check requested in
 * the same tick, as when a server or proxy closes every connection at once), then the server is made
 * unreachable and back (so it is marked Unknown and only a heartbeat can make it selectable again). The
 * pool must heal: the stuck monitor is restarted (mongodb-monitor-watchdog.ts).
 */
import { afterEach, expect, it } from '@jest/globals';
import type { MongoClient } from 'mongodb';
import { createPool, type MongoPool } from '../../../lib/index.js';
import { FaultProxy } from '../../../lib/testing/fault-proxy.js';
import { mongoServer, mongoUrl, proxiedParams, sleep, uniqueDatabase } from './mongo-test-support.js';

const DATABASE = uniqueDatabase('monitor');

/** The driver's server, its monitor and the monitor's socket (mongodb 6-7 internals, test only). */
interface DriverServer {
  requestCheck(): void;
  monitor: { connection?: { closed: boolean; socket: { destroy(): void } } | null };
}

function onlyServer(client: MongoClient): DriverServer {
  const servers = (client as unknown as { topology: { s: { servers: Map<string, DriverServer> } } }).topology
    .s.servers;
  expect(servers.size).toBe(1);
  return [...servers.values()][0]!;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

it('recovers when a heartbeat hangs on a socket destroyed under it', async () => {
  const proxy = new FaultProxy({ target: mongoServer() });
  await proxy.start();
  cleanups.push(() => proxy.stop());
  const pool: MongoPool = createPool({
    name: 'monitor-recovery',
    backend: 'mongodb',
    uri: mongoUrl(DATABASE, proxiedParams(), { host: proxy.host, port: proxy.port }),
    queryTimeoutMs: 500,
    // A short connectTimeoutMS bounds each heartbeat; a longer createTimeoutMs lets a loaded machine start.
    connection: { connectTimeoutMS: 500 },
    pool: { max: 2, acquireTimeoutMs: 3000, createTimeoutMs: 3000 },
  });
  cleanups.push(() => pool.close({ timeoutMs: 2000 }));
  await pool.start();
  await pool.use((db) => db.command({ ping: 1 }));

  const heartbeats: string[] = [];
  pool.client.on('serverHeartbeatStarted', () => heartbeats.push('started'));
  pool.client.on('serverHeartbeatSucceeded', () => heartbeats.push('settled'));
  pool.client.on('serverHeartbeatFailed', () => heartbeats.push('settled'));

  // Past minHeartbeatFrequencyMS (500 ms) since the last check, so requestCheck() checks at once.
  await sleep(800);
  const server = onlyServer(pool.client);
  const connection = server.monitor.connection;
  expect(connection?.closed).toBe(false);
  connection!.socket.destroy();
  server.requestCheck();
  expect(heartbeats).toEqual(['started']); // the check began on the destroyed socket

  // Unreachable, so the server is marked Unknown; then back.
  await proxy.refuse();
  const whileDown = await Promise.allSettled(
    Array.from({ length: 3 }, () => pool.use((db) => db.command({ ping: 1 }))),
  );
  expect(whileDown.some((outcome) => outcome.status === 'rejected')).toBe(true);
  await proxy.pass();

  // Heals well within 8 s (connectTimeoutMS is 500 ms; the driver's own next heartbeat is 10 s away, and a
  // stuck monitor never makes it).
  const healedAt = performance.now();
  let ok = false;
  while (!ok && performance.now() - healedAt < 8000) {
    ok = await pool
      .use((db) => db.command({ ping: 1 }))
      .then(
        () => true,
        () => sleep(100).then(() => false),
      );
  }
  expect(ok).toBe(true);
  expect(heartbeats).toContain('settled');
}, 20_000);
