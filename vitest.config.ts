import { defineConfig, defaultServerConditions } from 'vite';
import { configDefaults } from 'vitest/config';

// Tests run against package sources through the `@hvmmu/source` export
// condition (no build needed); custom conditions replace Vite's defaults, so
// the defaults are appended (toolchain.md).
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
    setupFiles: ['reflect-metadata'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
