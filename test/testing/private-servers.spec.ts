import { afterAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  cacheDir,
  findExecutable,
  findPostgresBinDir,
  FERRETDB_VERSION,
  pgProbe,
  redisPing,
  startPrivateFerretDB,
  startPrivatePostgres,
  startPrivateRedis,
  waitForPort,
  type PrivateServer,
} from '../support/private-servers.js';

// These helpers start real server processes; a test that needs a binary that is not installed is skipped
// with a warning (run-tests.mjs makes sure the shared services exist, not these binaries).
const started: PrivateServer[] = [];
afterAll(async () => {
  await Promise.all(started.map((server) => server.stop()));
});

function available(what: string, ok: boolean): boolean {
  if (!ok) console.warn(`skipped: ${what} is not available`);
  return ok;
}

describe('private servers', () => {
  it('startPrivateRedis() starts, survives a crash + restart, and stops', async () => {
    if (!available('redis-server', findExecutable('redis-server') !== undefined)) return;
    const redis = await startPrivateRedis();
    started.push(redis);
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(await redisPing(redis.port)).toBe('+PONG');

    await redis.kill(); // SIGKILL: a crash
    expect(redis.isRunning()).toBe(false);
    expect(await redisPing(redis.port)).toBeUndefined();
    await redis.restart();
    expect(await redisPing(redis.port)).toBe('+PONG');

    redis.signal('SIGSTOP'); // frozen: connections stay open but nothing answers
    // signal() is relayed by the supervisor shell, so it lands a moment later: give it time before probing.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await redisPing(redis.port)).toBeUndefined(); // redisPing gives up after 1 s
    redis.signal('SIGCONT');
    expect(await redisPing(redis.port)).toBe('+PONG');

    redis.signal('SIGSTOP');
    const stopping = performance.now();
    await redis.stop(); // also stops a frozen server, without waiting for the kill timeout
    expect(performance.now() - stopping).toBeLessThan(5000);
    expect(redis.isRunning()).toBe(false);
    expect(await redisPing(redis.port)).toBeUndefined();
  });

  it('startPrivatePostgres() starts, restarts on the same port, and stops', async () => {
    if (!available('PostgreSQL server binaries (initdb)', findPostgresBinDir() !== undefined)) return;
    const pg = await startPrivatePostgres();
    started.push(pg);
    expect(pg.url).toBe(`postgres://postgres@127.0.0.1:${pg.port}/postgres`);
    expect(await pgProbe({ port: pg.port })).toEqual({ state: 'ready' });

    await pg.restart();
    expect(await pgProbe({ port: pg.port })).toEqual({ state: 'ready' });
    await pg.kill();
    expect((await pgProbe({ port: pg.port })).state).toBe('down');
    await pg.restart(); // crash recovery
    expect(await pgProbe({ port: pg.port })).toEqual({ state: 'ready' });

    await pg.stop();
    expect((await pgProbe({ port: pg.port })).state).toBe('down');
  });

  it('startPrivateFerretDB() starts and stops (when the FerretDB binary is built already)', async () => {
    const binary =
      process.env.NESTJS_POOL_FERRETDB_BIN ?? join(cacheDir(), 'bin', `ferretdb-${FERRETDB_VERSION}`);
    if (!available(`a built FerretDB (${binary})`, existsSync(binary))) return;
    const mongo = await startPrivateFerretDB();
    started.push(mongo);
    expect(mongo.url).toBe(`mongodb://127.0.0.1:${mongo.port}/`);
    await waitForPort(mongo.port, { timeoutMs: 1000 });
    await mongo.stop();
    expect(mongo.isRunning()).toBe(false);
  });
});
