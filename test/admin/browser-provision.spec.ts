/**
 * scripts/browser.mjs, which the dashboard test relies on: it finds the installed Chromium (installing
 * Debian's package first when missing and root), and fails with a message naming what is missing otherwise.
 */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const script = join(process.cwd(), 'scripts', 'browser.mjs');

function run(env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [script], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 15 * 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('scripts/browser.mjs', () => {
  it(
    'prints the path of a runnable Chromium',
    () => {
      const result = run({});
      expect(result.status).toBe(0);
      const path = result.stdout.trim();
      expect(path).toBe(process.env.CHROMIUM_PATH || '/usr/bin/chromium');
      const version = spawnSync(path, ['--version'], { encoding: 'utf8' });
      expect(version.stdout).toMatch(/Chromium \d+\./);
    },
    15 * 60_000,
  );

  it('fails with exit code 1 naming the problem when CHROMIUM_PATH is not an executable', () => {
    const result = run({ CHROMIUM_PATH: '/nonexistent/chromium' });
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('CHROMIUM_PATH=/nonexistent/chromium is not an executable file');
  });
});
