import { defineConfig, defaultServerConditions } from 'vite';
import { configDefaults } from 'vitest/config';

// Tests run against package sources through the `@hvmmu/source` export
// condition (no build needed); custom conditions replace Vite's defaults, so
// the defaults are appended (Vite 6 migration guide, "Default value for
// resolve.conditions": use ...defaultServerConditions).
export default defineConfig({
  ssr: {
    resolve: {
      conditions: ['@hvmmu/source', ...defaultServerConditions],
    },
  },
  resolve: {
    conditions: ['@hvmmu/source'],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, '**/dist/**'],
    setupFiles: ['reflect-metadata', './test-support/fastCheckSetup.ts'],
    testTimeout: 60_000,
    // .ci/run sets HVMMU_TEST_JSON to collect the totals for its closing line.
    reporters: process.env.HVMMU_TEST_JSON ? ['default', 'json'] : ['default'],
    ...(process.env.HVMMU_TEST_JSON ? { outputFile: { json: process.env.HVMMU_TEST_JSON } } : {}),
    hookTimeout: 60_000,
  },
});
