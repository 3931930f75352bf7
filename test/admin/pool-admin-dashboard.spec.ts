/**
 * The admin dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core and
 * installed by scripts/browser.mjs when missing), served by a Nest app on a free port with a global prefix
 * and custom paths, over real PostgreSQL and Redis pools: sign-in with the token, pool names and numbers in
 * the DOM, live refresh, the pause button, no request leaving the app's origin, and screenshots whose
 * pixels show the names and numbers (checked by decoding them in the browser).
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { getPoolToken, PoolModule, type Lease, type PostgresPool } from '../../lib/index.js';
import { PoolAdminModule } from '../../lib/admin/index.js';
import { CHROMIUM_ARGS, ensureChromium } from '../../scripts/browser.mjs';
import { pgUrl, uniqueName } from '../backends/postgres/pg-test-support.js';
import { redisUrl } from '../backends/redis/redis-test-support.js';

const TOKEN = 'dashboard-T0ken-0123456789abcdef';
const PASSWORD = 'Dashb0ard-S3cret';
const BROWSER_SETUP_TIMEOUT_MS = 15 * 60_000; // a first run installs Chromium with apt-get

/** Screenshots go here; set NESTJS_POOL_SCREENSHOT_DIR to keep them for a look. */
const screenshotDir =
  process.env.NESTJS_POOL_SCREENSHOT_DIR ?? mkdtempSync(join(tmpdir(), 'nestjs-pool-dashboard-'));

let app: INestApplication;
let origin: string;
let billing: PostgresPool;
const leases: Lease<unknown>[] = [];
let browser: Browser;
let page: Page;
const requests: string[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  // Fails loudly (BrowserProvisionError naming what is missing) when Chromium cannot be provisioned.
  const executablePath = ensureChromium();

  const moduleRef = await Test.createTestingModule({
    imports: [
      PoolModule.forRoot({
        name: 'billing-db',
        backend: 'postgres',
        uri: pgUrl({ application_name: uniqueName('dash') }, { user: 'postgres', password: PASSWORD }),
        pool: { min: 1, max: 5 },
      }),
      PoolModule.forRoot({ name: 'session-cache', backend: 'redis', uri: redisUrl(), pool: { max: 4 } }),
      PoolAdminModule.forRoot({ token: TOKEN, path: 'ops/pools', dashboardPath: 'ops/ui/dashboard' }),
    ],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  app.setGlobalPrefix('api');
  await app.listen(0, '127.0.0.1');
  origin = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  billing = app.get<PostgresPool>(getPoolToken('billing-db'));
  for (let i = 0; i < 3; i++) leases.push(await billing.acquire());

  browser = await chromium.launch({ executablePath, args: [...CHROMIUM_ARGS] });
  page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
  page.on('request', (request) => requests.push(request.url()));
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
}, BROWSER_SETUP_TIMEOUT_MS);

afterAll(async () => {
  await browser?.close();
  for (const lease of leases) lease.release();
  await app?.close();
  if (process.env.NESTJS_POOL_SCREENSHOT_DIR === undefined) {
    rmSync(screenshotDir, { recursive: true, force: true });
  }
});

/** The few browser APIs the page functions below use (the project compiles without the DOM lib). */
interface BrowserGlobals {
  document: { querySelector(selector: string): { textContent: string | null } | null };
  createImageBitmap(blob: Blob): Promise<{ width: number; height: number }>;
  OffscreenCanvas: new (
    width: number,
    height: number,
  ) => {
    getContext(kind: '2d'): {
      drawImage(image: unknown, x: number, y: number): void;
      getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
    };
  };
}

const field = (pool: string, name: string) => page.locator(`[data-pool="${pool}"] [data-field="${name}"]`);

/** Waits until the element's text is `expected` (the page refreshes every 1.5 s). */
async function waitForText(pool: string, name: string, expected: string): Promise<void> {
  await page.waitForFunction(
    ([selector, text]) =>
      (globalThis as unknown as BrowserGlobals).document.querySelector(selector)?.textContent === text,
    [`[data-pool="${pool}"] [data-field="${name}"]`, expected] as const,
    { timeout: 15_000 },
  );
}

/**
 * Decodes a PNG in a blank page (no CSP there) and counts its pixels: how many differ from the top-left
 * (background) pixel, how many are dark (text), and how many distinct colours there are.
 */
async function pixelStats(
  png: Buffer,
): Promise<{ width: number; changed: number; dark: number; colours: number }> {
  const scratch = await browser.newPage();
  try {
    return await scratch.evaluate(async (base64) => {
      const { createImageBitmap, OffscreenCanvas } = globalThis as unknown as BrowserGlobals;
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const context = canvas.getContext('2d');
      context.drawImage(bitmap, 0, 0);
      const { data } = context.getImageData(0, 0, bitmap.width, bitmap.height);
      const colours = new Set<number>();
      let changed = 0;
      let dark = 0;
      for (let i = 0; i < data.length; i += 4) {
        const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
        colours.add((r << 16) | (g << 8) | b);
        if (r !== data[0] || g !== data[1] || b !== data[2]) changed++;
        if (r + g + b < 200) dark++;
      }
      return { width: bitmap.width, changed, dark, colours: colours.size };
    }, png.toString('base64'));
  } finally {
    await scratch.close();
  }
}

function expectPng(png: Buffer, minBytes: number): void {
  expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  expect(png.length).toBeGreaterThan(minBytes);
}

describe('the dashboard in headless Chromium', () => {
  it('asks for the token, then renders every pool with its numbers', async () => {
    await page.goto(`${origin}/api/ops/ui/dashboard`);
    await page.locator('#login').waitFor({ state: 'visible', timeout: 15_000 });
    expect(await page.locator('#login-message').textContent()).toContain('needs the admin token');
    expect(await page.locator('[data-pool]').count()).toBe(0);

    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    await waitForText('billing-db', 'active', '3');

    expect(await page.locator('#login').isHidden()).toBe(true);
    expect(await page.locator('[data-pool] .name').allTextContents()).toEqual([
      'billing-db',
      'session-cache',
    ]);
    expect(await field('billing-db', 'backend').textContent()).toBe('postgres');
    expect(await field('billing-db', 'state').textContent()).toBe('ready');
    expect(await field('billing-db', 'circuit').textContent()).toBe('circuit closed');
    expect(await field('billing-db', 'max').textContent()).toBe('5');
    expect(Number(await field('billing-db', 'size').textContent())).toBeGreaterThanOrEqual(3);
    expect(await field('billing-db', 'waiting').textContent()).toBe('0');
    expect(await field('billing-db', 'timeouts').textContent()).toBe('0');
    expect(await field('billing-db', 'waitP99').textContent()).toMatch(/^\d+(\.\d)? ms$/);
    expect(await page.locator('[data-pool="billing-db"] .util').textContent()).toContain('utilisation 60%');
    const target = await page.locator('[data-pool="billing-db"] .target').textContent();
    expect(target).toContain('postgres:***@127.0.0.1');
    expect(await field('session-cache', 'backend').textContent()).toBe('redis');
    expect(await field('session-cache', 'max').textContent()).toBe(
      String(app.get(getPoolToken('session-cache')).metrics().max),
    );
    expect(await page.locator('#status').textContent()).toMatch(/^updated .* · 2 pool\(s\)$/);

    const html = await page.content();
    for (const secret of [PASSWORD, encodeURIComponent(PASSWORD), TOKEN]) expect(html).not.toContain(secret);
  });

  it('screenshots show the pools: a non-blank page, and pixels that change with the numbers', async () => {
    const full = await page.screenshot({ path: join(screenshotDir, 'dashboard.png'), fullPage: true });
    expectPng(full, 10_000);
    const blank = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    const blankPng = await blank.screenshot();
    await blank.close();
    const [fullStats, blankStats] = [await pixelStats(full), await pixelStats(blankPng)];
    expect(blankStats.changed).toBe(0);
    expect(fullStats.changed).toBeGreaterThan(10_000);
    expect(fullStats.colours).toBeGreaterThan(20); // text antialiasing, badges, bars

    const name = await page.locator('[data-pool="billing-db"] .name').screenshot();
    writeFileSync(join(screenshotDir, 'name.png'), name);
    expect((await pixelStats(name)).dark).toBeGreaterThan(50); // the name's glyphs

    const activeBefore = await field('billing-db', 'active').screenshot();
    expect((await pixelStats(activeBefore)).dark).toBeGreaterThan(5); // the digit "3"
    leases.pop()!.release();
    await waitForText('billing-db', 'active', '2'); // live refresh, no reload
    const activeAfter = await field('billing-db', 'active').screenshot();
    writeFileSync(join(screenshotDir, 'active-3.png'), activeBefore);
    writeFileSync(join(screenshotDir, 'active-2.png'), activeAfter);
    expect(activeAfter.equals(activeBefore)).toBe(false);
    expect(await page.locator('[data-pool="billing-db"] .util').textContent()).toContain('utilisation 40%');
  });

  it('the pause and resume buttons act on the real pool', async () => {
    await page.click('[data-pool="billing-db"] button:text("pause")');
    await waitForText('billing-db', 'state', 'paused');
    expect(billing.state).toBe('paused');
    await page.click('[data-pool="billing-db"] button:text("resume")');
    await waitForText('billing-db', 'state', 'ready');
    expect(billing.state).toBe('ready');
  });

  it('made no request outside the app, and raised no error besides the expected first 401', () => {
    expect(requests.length).toBeGreaterThan(3);
    for (const url of requests)
      expect(url.startsWith(`${origin}/api/ops/`) || url.startsWith('data:')).toBe(true);
    expect(requests).toContain(`${origin}/api/ops/pools`);
    expect(pageErrors.filter((e) => !/401 \(Unauthorized\)/.test(e))).toEqual([]);
  });
});
