import { defineConfig } from 'vitest/config';

// Tests import sibling packages through the `@primer-search/source` export condition, so
// they run against `src/` without a build. Both `resolve` and `ssr.resolve` need it:
// with only the first, Node-environment tests silently import `dist/`.
const conditions = ['@primer-search/source', 'module', 'node', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'tools/**/*.test.ts', 'examples/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    testTimeout: 60_000,
    setupFiles: ['tools/vitest-setup.ts'],
  },
});
