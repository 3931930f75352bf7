/**
 * The admin dashboard in a real headless Chromium for a pool with a read replica and a sharded pool: one
 * row per member under its pool's card, with its role, state and health, live (a replica refused through
 * its FaultProxy turns `down` at the next refresh, `up` again once healed), and no page error (the
 * Content-Security-Policy still allows exactly the page's own code).
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { getPoolToken, PoolModule, type PostgresPool } from '../../lib/index.js';
import { PoolAdminModule } from '../../lib/admin/index.js';
import { FaultProxy } from '../../lib/testing/index.js';
import { CHROMIUM_ARGS, ensureChromium } from '../../scripts/browser.mjs';
import { DATABASE_URL, pgUrl, uniqueName } from '../backends/postgres/pg-test-support.js';

const TOKEN = 'members-dash-T0ken-0123456789abc';
const BROWSER_SETUP_TIMEOUT_MS = 15 * 60_000; // a first run installs Chromium with apt-get

let app: INestApplication;
let origin: string;
let proxy: FaultProxy;
let users: PostgresPool;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

function url(port?: number): string {
  const uri = new URL(pgUrl({ application_name: uniqueName('dashmem') }));
  if (port !== undefined) uri.port = String(port);
  return uri.toString();
}

beforeAll(async () => {
  const executablePath = ensureChromium();
  const target = new URL(DATABASE_URL);
  proxy = new FaultProxy({ target: { host: target.hostname, port: Number(target.port || 5432) } });
  await proxy.start();
  const moduleRef = await Test.createTestingModule({
    imports: [
      PoolModule.forRoot([
        {
          name: 'users',
          backend: 'postgres',
          uri: url(),
          replicas: [{ name: 'r1', uri: url(proxy.port) }],
          healthCheck: { intervalMs: 0, recheckIntervalMs: 100, timeoutMs: 400 },
          pool: {
            max: 3,
            acquireTimeoutMs: 300,
            createTimeoutMs: 300,
            createRetry: { initialDelayMs: 20, maxDelayMs: 100, factor: 2, jitter: 0 },
            circuitBreaker: { failureThreshold: 3, resetTimeoutMs: 200 },
          },
          logger: false,
        },
        { name: 'orders', backend: 'postgres', shards: { a: url(), b: url() }, logger: false },
      ]),
      PoolAdminModule.forRoot({ token: TOKEN }),
    ],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  origin = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  users = app.get<PostgresPool>(getPoolToken('users'));

  browser = await chromium.launch({ executablePath, args: [...CHROMIUM_ARGS] });
  page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
}, BROWSER_SETUP_TIMEOUT_MS);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await proxy?.stop();
});

interface BrowserGlobals {
  document: { querySelector(selector: string): { textContent: string | null } | null };
}

const memberRow = (pool: string, member: string): string => `[data-pool="${pool}"] [data-member="${member}"]`;

async function waitForHealth(member: string, expected: 'up' | 'down'): Promise<void> {
  await page.waitForFunction(
    ([selector, text]) =>
      (globalThis as unknown as BrowserGlobals).document.querySelector(selector)?.textContent === text,
    [`${memberRow('users', member)} [data-field="health"]`, expected] as const,
    { timeout: 15_000 },
  );
}

describe('dashboard members', () => {
  it('shows one row per member, with role and health, refreshed live', async () => {
    await page.goto(`${origin}/admin/dashboard#token=${TOKEN}`);
    await page.locator(memberRow('users', 'users.replica[r1]')).waitFor({ timeout: 15_000 });
    expect(await page.locator(`${memberRow('users', 'users')}`).textContent()).toMatch(
      /^users\s*primary\s*ready\s*up/,
    );
    expect(await page.locator(memberRow('users', 'users.replica[r1]')).textContent()).toMatch(
      /^users\.replica\[r1\]\s*replica\s*ready\s*up\s*\d+ active \/ \d+ open \/ 3 max$/,
    );
    expect(await page.locator('[data-pool="orders"] [data-member]').count()).toBe(2);
    expect(await page.locator(memberRow('orders', 'orders.shard[b]')).textContent()).toContain('shard');

    await proxy.refuse();
    proxy.resetAll();
    await users.checkHealth({ timeoutMs: 400 });
    await waitForHealth('users.replica[r1]', 'down');
    await proxy.pass();
    await waitForHealth('users.replica[r1]', 'up');
    expect(pageErrors).toEqual([]);
  });
});
