/**
 * What `npm pack` puts in the tarball: the licence and the metadata npm shows, and source maps that work
 * without lib/ (which is not shipped): every map carries its sources (`sourcesContent`) or names only files
 * that are in the tarball, and every `sourceMappingURL` names a shipped map. Runs against dist/ (npm test
 * builds first); `npm pack --dry-run` lists the files without writing a tarball.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';

const root = process.cwd();

interface SourceMap {
  sources: string[];
  sourceRoot?: string;
  sourcesContent?: (string | null)[];
}

let files: Set<string>;

beforeAll(() => {
  // Without what `npm run` sets for its own script, so that npm packs this directory as it is.
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_update_notifier: 'false' };
  for (const key of Object.keys(env)) {
    if (/^npm_(package|lifecycle)_/.test(key) || key === 'npm_config_local_prefix') delete env[key];
  }
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: root,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [packed] = JSON.parse(out.slice(out.indexOf('['))) as [{ files: { path: string }[] }];
  files = new Set(packed.files.map((file) => file.path));
}, 60_000);

describe('the packed tarball', () => {
  it('has been built (npm test runs the build first)', () => {
    expect(existsSync(join(root, 'dist/esm/index.js'))).toBe(true);
    expect(files.has('dist/esm/index.js')).toBe(true);
    expect(files.has('dist/cjs/index.js')).toBe(true);
  });

  it('ships the MIT licence, and package.json says where the project lives', () => {
    expect(files.has('LICENSE')).toBe(true);
    expect(files.has('README.md')).toBe(true);
    expect(readFileSync(join(root, 'LICENSE'), 'utf8')).toMatch(
      /^MIT License\n\nCopyright \(c\) 2026 the nestjs-pool authors\n/,
    );
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.license).toBe('MIT');
    expect(pkg.repository).toEqual({
      type: 'git',
      url: 'git+https://github.com/nestjs-pool/nestjs-pool.git',
    });
    expect(pkg.bugs).toEqual({ url: 'https://github.com/nestjs-pool/nestjs-pool/issues' });
    expect(pkg.homepage).toBe('https://github.com/nestjs-pool/nestjs-pool#readme');
  });

  it('ships no lib/ sources, so every source map embeds its sources or names only shipped files', () => {
    expect([...files].filter((file) => file.startsWith('lib/'))).toEqual([]);
    const maps = [...files].filter((file) => file.endsWith('.map'));
    // Both builds map their JavaScript (the debugger shows the TypeScript, from sourcesContent).
    expect(maps).toContain('dist/esm/index.js.map');
    expect(maps).toContain('dist/cjs/index.js.map');
    const broken: string[] = [];
    for (const file of maps) {
      const map = JSON.parse(readFileSync(join(root, file), 'utf8')) as SourceMap;
      map.sources.forEach((source, index) => {
        if (typeof map.sourcesContent?.[index] === 'string') return;
        const target = posix.normalize(posix.join(posix.dirname(file), map.sourceRoot ?? '', source));
        if (!files.has(target)) broken.push(`${file}: ${source}`);
      });
    }
    expect(broken).toEqual([]);
  });

  it('every sourceMappingURL in a shipped file names a shipped map', () => {
    const dangling: string[] = [];
    for (const file of files) {
      if (!/\.(c|m)?js$|\.d\.(c|m)?ts$/.test(file)) continue;
      const text = readFileSync(join(root, file), 'utf8');
      for (const match of text.matchAll(/^\/\/# sourceMappingURL=(\S+)$/gm)) {
        const url = match[1]!;
        if (url.startsWith('data:')) continue;
        const target = posix.normalize(posix.join(posix.dirname(file), url));
        if (!files.has(target)) dangling.push(`${file} -> ${url}`);
      }
    }
    expect(dangling).toEqual([]);
  });
});
