/**
 * The built package as users get it: both builds load through `exports`, with `nestjs-pool/core` free of
 * Nest and drivers, and errors recognised across the two copies. Runs against dist/ (npm test builds first).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';

const root = process.cwd();

function node(code: string, type: 'module' | 'commonjs'): string {
  const args =
    type === 'module' ? ['--input-type=module', '-e', code] : ['--input-type=commonjs', '-e', code];
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' }).trim();
}

describe('package exports', () => {
  it('has been built (npm test runs the build first)', () => {
    expect(existsSync(join(root, 'dist/esm/core/index.js'))).toBe(true);
    expect(existsSync(join(root, 'dist/cjs/core/index.js'))).toBe(true);
    expect(JSON.parse(readFileSync(join(root, 'dist/cjs/package.json'), 'utf8'))).toEqual({
      type: 'commonjs',
    });
  });

  it('loads nestjs-pool/core through import and require, each with its own types', () => {
    const esm = node(`import { Pool } from 'nestjs-pool/core'; console.log(typeof Pool);`, 'module');
    const cjs = node(`const { Pool } = require('nestjs-pool/core'); console.log(typeof Pool);`, 'commonjs');
    expect(esm).toBe('function');
    expect(cjs).toBe('function');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    for (const condition of ['import', 'require']) {
      const target = pkg.exports['./core'][condition];
      expect(existsSync(join(root, target.types))).toBe(true);
      expect(existsSync(join(root, target.default))).toBe(true);
    }
  });

  it('core imports nothing from Nest or a driver', () => {
    const loaded = node(
      `require('nestjs-pool/core'); console.log(Object.keys(require.cache).filter((p) => p.includes('node_modules')).join(','));`,
      'commonjs',
    );
    expect(loaded).toBe('');
  });

  it.each(['metrics', 'admin', 'health', 'testing'])(
    'loads nestjs-pool/%s through import and require',
    (sub) => {
      const esm = node(
        `import * as m from 'nestjs-pool/${sub}'; console.log(Object.keys(m).length > 0);`,
        'module',
      );
      const cjs = node(`console.log(Object.keys(require('nestjs-pool/${sub}')).length > 0);`, 'commonjs');
      expect([esm, cjs]).toEqual(['true', 'true']);
      const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
      for (const condition of ['import', 'require']) {
        const target = pkg.exports[`./${sub}`][condition];
        expect(existsSync(join(root, target.types))).toBe(true);
      }
      expect(pkg.typesVersions['*'][sub]).toEqual([pkg.exports[`./${sub}`].require.types]);
    },
  );

  it('the main entry does not load prom-client (only nestjs-pool/metrics does)', () => {
    const loaded = node(
      `require('nestjs-pool'); console.log(Object.keys(require.cache).some((p) => p.includes('prom-client')));`,
      'commonjs',
    );
    expect(loaded).toBe('false');
    const withMetrics = node(
      `require('nestjs-pool/metrics'); console.log(Object.keys(require.cache).some((p) => p.includes('prom-client')));`,
      'commonjs',
    );
    expect(withMetrics).toBe('true');
  });

  it('an error from the CJS build is instanceof the ESM build classes', () => {
    const out = node(
      `import { createRequire } from 'node:module';
       import * as esm from 'nestjs-pool/core';
       const cjs = createRequire(process.cwd() + '/')('nestjs-pool/core');
       const error = new cjs.PoolTimeoutError('p', { timeoutMs: 1, size: 0, active: 0, idle: 0, pending: 0, waiting: 0, max: 1 });
       console.log(cjs.Pool !== esm.Pool, error instanceof esm.PoolTimeoutError, error instanceof esm.PoolError, error instanceof esm.PoolClosedError);`,
      'module',
    );
    expect(out).toBe('true true true false');
  });
});
