#!/usr/bin/env node
// Builds the two distributions: dist/esm (Node ESM) and dist/cjs (CommonJS, for Nest 11 apps).
// The CJS folder gets its own {"type":"commonjs"} package.json so Node reads its .js files as CommonJS
// even though this package is "type": "module".
// lib/ is not shipped, so tsconfig.build.json (which tsconfig.cjs.json extends) embeds each source in its .js.map
// (`inlineSources`) and emits no declaration maps (they cannot embed sources: they would point at missing files).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

rmSync(join(root, 'dist'), { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.cjs.json'], { cwd: root, stdio: 'inherit' });
mkdirSync(join(root, 'dist', 'cjs'), { recursive: true });
writeFileSync(
  join(root, 'dist', 'cjs', 'package.json'),
  JSON.stringify({ type: 'commonjs' }, null, 2) + '\n',
);
writeFileSync(join(root, 'dist', 'esm', 'package.json'), JSON.stringify({ type: 'module' }, null, 2) + '\n');

// The drivers are optional peers, so an app may lack one of them (and its types). The declarations import
// driver types (`import type { Client } from 'pg'`), which would then fail to compile with
// skipLibCheck: false (TS2307). TypeScript strips `// @ts-ignore` from emitted .d.ts files, so add it here:
// in an app without a driver, that driver's types are `any`; with it, they are exact.
const DRIVER_IMPORT = /^(import (?:type )?[^\n]* from '(?:pg|ioredis|mongodb)';)$/gm;
for (const file of readdirSync(join(root, 'dist'), { recursive: true })) {
  if (!String(file).endsWith('.d.ts')) continue;
  const path = join(root, 'dist', String(file));
  const text = readFileSync(path, 'utf8');
  const patched = text.replace(
    DRIVER_IMPORT,
    '// @ts-ignore -- optional peer dependency: its types exist only when it is installed\n$1',
  );
  if (patched !== text) writeFileSync(path, patched);
}
console.log('built dist/esm and dist/cjs');
