/**
 * Jest 30 on native ESM (run through `node --experimental-vm-modules`).
 * ts-jest only transpiles (tsconfig sets isolatedModules); `npm run typecheck` does the type checking.
 * @type {import('jest').Config}
 */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    // The sample app imports the package by name, as users do; in tests that is the source.
    '^nestjs-pool$': '<rootDir>/lib/index.ts',
    '^nestjs-pool/(core|health|testing|metrics|admin)$': '<rootDir>/lib/$1/index.ts',
    // Sources import siblings as './x.js' (Node ESM); Jest resolves the .ts file.
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testTimeout: 30_000,
};
