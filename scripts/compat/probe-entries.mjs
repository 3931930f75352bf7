// Copied into each compat app by run.mjs and run there, with the app's @nestjs/terminus moved out of the way:
//
//   node compat-probe.mjs require|import
//
// Loads every entry point of the installed nestjs-pool through one module system (CommonJS `require` or ESM
// `import`) and prints one JSON line. Without @nestjs/terminus, `nestjs-pool`, `/core` and `/testing` must
// load (so Terminus is needed only by `/health`), and `nestjs-pool/health` must fail for want of it. The app
// has no ioredis, mongodb or prom-client installed either, so loading the main entry also shows that it
// imports no driver, and `nestjs-pool/metrics` must fail for want of prom-client.
// It must sit inside the app: bare specifiers resolve from the importing file's folder.
import { createRequire } from 'node:module';

const mode = process.argv[2];
if (mode !== 'require' && mode !== 'import') {
  process.stderr.write('usage: node compat-probe.mjs require|import\n');
  process.exit(2);
}
const require = createRequire(import.meta.url);

/** Exports each entry must have (a smoke test that the right file loaded, not the API's full list). */
const ENTRIES = /** @type {const} */ ({
  'nestjs-pool': ['PoolModule', 'PoolManager', 'InjectPool', 'getPoolToken', 'PostgresPool', 'createPool'],
  'nestjs-pool/core': ['Pool'],
  'nestjs-pool/testing': ['FaultProxy'],
  'nestjs-pool/admin': ['PoolAdminModule'],
  'nestjs-pool/health': ['PoolHealthModule', 'PoolHealthIndicator'],
  'nestjs-pool/metrics': ['PoolMetricsModule', 'registerPoolMetrics'],
});

/**
 * @typedef {object} EntryResult
 * @property {string} [resolved]  The file Node resolved the specifier to.
 * @property {boolean} loaded
 * @property {string[]} [missing] Expected exports that were not there.
 * @property {string} [error]     Why it did not load: error code and message.
 */

/**
 * @param {string} specifier
 * @returns {Promise<EntryResult>}
 */
async function probe(specifier) {
  /** @type {EntryResult} */
  const result = { loaded: false };
  try {
    result.resolved = mode === 'require' ? require.resolve(specifier) : import.meta.resolve(specifier);
    const namespace = /** @type {Record<string, unknown>} */ (
      mode === 'require' ? require(specifier) : await import(specifier)
    );
    result.loaded = true;
    result.missing = ENTRIES[/** @type {keyof typeof ENTRIES} */ (specifier)].filter(
      (name) => namespace[name] === undefined,
    );
  } catch (error) {
    const err = /** @type {{ code?: unknown, message?: unknown }} */ (error);
    result.error = `${String(err?.code ?? 'no code')}: ${String(err?.message ?? error).split('\n')[0]}`;
  }
  return result;
}

/** @type {Record<string, EntryResult>} */
const results = {};
for (const specifier of Object.keys(ENTRIES)) results[specifier] = await probe(specifier);
process.stdout.write(`COMPAT_PROBE ${JSON.stringify(results)}\n`);
