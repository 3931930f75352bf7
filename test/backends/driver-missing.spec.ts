/**
 * `pg` is an optional peer dependency. The package is compiled (ESM and CommonJS, like the real build) into
 * a temporary directory outside this repository, where `pg` cannot be resolved, and loaded by plain Node:
 * importing it must work (no driver is loaded at import), createPool() must work (options are validated
 * without the driver), and start() must reject PoolDriverMissingError saying `npm install pg`.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = process.cwd();
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nestjs-pool-no-driver-'));
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const flags = [
    '--declaration',
    'false',
    '--declarationMap',
    'false',
    '--sourceMap',
    'false',
    '--inlineSources',
    'false',
  ];
  for (const [config, out, type] of [
    ['tsconfig.build.json', 'esm', 'module'],
    ['tsconfig.cjs.json', 'cjs', 'commonjs'],
  ] as const) {
    execFileSync(process.execPath, [tsc, '-p', join(root, config), '--outDir', join(dir, out), ...flags], {
      cwd: root,
      stdio: 'pipe',
    });
    writeFileSync(join(dir, out, 'package.json'), JSON.stringify({ type }));
  }
  // Everything the package needs (Nest, rxjs, ...) resolves as in an app; only the driver is missing.
  mkdirSync(join(dir, 'node_modules'));
  for (const entry of readdirSync(join(root, 'node_modules'))) {
    if (entry === 'pg' || entry === '.bin') continue;
    symlinkSync(join(root, 'node_modules', entry), join(dir, 'node_modules', entry));
  }
}, 120_000);

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** What the child prints: whether import worked, then start()'s rejection. */
const probe = `
  const pool = m.createPool({ name: 'users', backend: 'postgres', uri: 'postgres://app:Pa55-nodriver@127.0.0.1:1/x' });
  const drivers = ['/node_modules/pg/', '/node_modules/ioredis/', '/node_modules/mongodb/'];
  const loaded = Object.keys(typeof require === 'function' ? require.cache : {}).filter((p) => drivers.some((d) => p.includes(d)));
  pool.start().then(
    () => console.log(JSON.stringify({ started: true })),
    (e) => console.log(JSON.stringify({
      name: e.name,
      message: e.message,
      packageName: e.packageName,
      missing: e instanceof m.PoolDriverMissingError,
      poolError: e instanceof m.PoolError,
      loaded,
    })),
  ).finally(() => pool.close());
`;

function run(type: 'module' | 'commonjs'): Record<string, unknown> {
  const entry = join(dir, type === 'module' ? 'esm' : 'cjs', 'index.js');
  const code =
    type === 'module'
      ? `const m = await import(${JSON.stringify(pathToFileURL(entry).href)});${probe}`
      : `const m = require(${JSON.stringify(entry)});${probe}`;
  const out = execFileSync(process.execPath, [`--input-type=${type}`, '-e', code], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, NODE_PATH: '' },
  });
  return JSON.parse(out.trim()) as Record<string, unknown>;
}

describe('without the pg package', () => {
  for (const type of ['module', 'commonjs'] as const) {
    it(`${type}: imports, creates the pool, and start() says to npm install pg`, () => {
      const result = run(type);
      expect(result).toEqual({
        name: 'PoolDriverMissingError',
        message:
          'Pool "users": the "postgres" backend needs the "pg" package, which is not installed; run: npm install pg',
        packageName: 'pg',
        missing: true,
        poolError: true,
        loaded: [],
      });
    });
  }
});
