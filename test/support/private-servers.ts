// Private, throw-away servers for tests that kill, restart or partition a server. Never do that to the
// shared servers from DATABASE_URL / REDIS_URL / MONGODB_URI: other test files use them concurrently.
//
// The implementation lives in scripts/services.mjs (plain JS, shared with scripts/run-tests.mjs); this module
// gives tests a stable, typed import path. Each server runs under a supervisor that stops it when the test
// process exits, but tests should still call stop() in afterAll (Jest's --detectOpenHandles reports the
// child process otherwise).
export {
  cacheDir,
  FERRETDB_VERSION,
  findExecutable,
  findFreePort,
  findPostgresBinDir,
  pgProbe,
  redisPing,
  startPrivateFerretDB,
  startPrivatePostgres,
  startPrivateRedis,
  waitForPort,
} from '../../scripts/services.mjs';
export type { PrivateServer } from '../../scripts/services.mjs';

/** True when scripts/run-tests.mjs (or `node scripts/services.mjs`) provisioned the shared services. */
export const servicesProvisioned = process.env.NESTJS_POOL_TEST_SERVICES === '1';
