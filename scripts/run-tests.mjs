#!/usr/bin/env node
// `npm test` (after lint and typecheck): provisions PostgreSQL, Redis and MongoDB (see services.mjs), runs
// Jest with every argument passed through, and always stops whatever it started - after Jest, on Jest
// failure and on SIGINT/SIGTERM/SIGHUP (jest-session.mjs). Exits with Jest's exit code.
//
// NESTJS_POOL_SERVICES=postgres,redis (or "none") limits what gets provisioned; DATABASE_URL, REDIS_URL and
// MONGODB_URI point the tests at existing servers instead. Chromium (for the dashboard test) is installed when
// missing; NESTJS_POOL_BROWSER=none skips that.
import { BrowserProvisionError, ensureChromium } from './browser.mjs';
import { startJestSession } from './jest-session.mjs';
import { stopAll } from './services.mjs';

const session = startJestSession('run-tests');

async function main() {
  const services = await session.provision();
  if (services === undefined) return 1;
  try {
    // The admin dashboard test drives a real headless Chromium (Debian's package; installed when missing).
    if (process.env.NESTJS_POOL_BROWSER !== 'none') {
      try {
        ensureChromium();
      } catch (err) {
        process.stderr.write(`[run-tests] ${err instanceof BrowserProvisionError ? err.message : err}\n`);
        return 1;
      }
    }
    return await session.runJest({
      jestArgs: ['--detectOpenHandles', ...process.argv.slice(2)],
      env: { ...process.env, ...services.env },
    });
  } finally {
    await services.stop();
    await stopAll();
  }
}

process.exitCode = await main();
