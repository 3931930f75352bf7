/**
 * prom-client is an optional peer: only `nestjs-pool/metrics` may load it. Follows the relative imports
 * from each other entry point and checks that neither prom-client nor lib/metrics is reachable.
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const lib = resolve(dirname(fileURLToPath(import.meta.url)), '../../lib');
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g;

/** Every file reachable from `entry` through runtime (non-type) imports, and the packages they import. */
function reachable(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(IMPORT)) {
      if (/^\s*(?:import|export)\s+type\s/.test(match[0].trimStart())) continue;
      const specifier = (match[1] ?? match[2])!;
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
      else packages.add(specifier);
    }
  };
  visit(entry);
  return { files, packages };
}

describe('the metrics entry', () => {
  it.each(['index.ts', 'core/index.ts', 'health/index.ts', 'testing/index.ts'])(
    '%s loads neither prom-client nor lib/metrics',
    (entry) => {
      const { files, packages } = reachable(join(lib, entry));
      expect(files.size).toBeGreaterThan(1);
      expect([...packages]).not.toContain('prom-client');
      expect([...files].filter((f) => f.startsWith(join(lib, 'metrics')))).toEqual([]);
    },
  );

  it('metrics/index.ts does load prom-client (the check above can see it)', () => {
    expect([...reachable(join(lib, 'metrics/index.ts')).packages]).toContain('prom-client');
  });
});
