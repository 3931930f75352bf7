/**
 * The chaos suite (`npm run test:chaos`, through scripts/run-chaos.mjs): the same set-up as jest.config.mjs,
 * but only test/chaos/*.chaos.ts, which `npm test` never picks up (it matches *.spec.ts).
 * @type {import('jest').Config}
 */
import base from './jest.config.mjs';

export default {
  ...base,
  roots: ['<rootDir>/test/chaos'],
  testMatch: ['**/*.chaos.ts'],
  // One backend's timeline takes about 35 s; the runner bounds the whole suite.
  testTimeout: 120_000,
};
