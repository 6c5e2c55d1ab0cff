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
    // Two test files at once. Vitest's default on a two-core machine is one: most of the slow
    // files wait on the CLI processes they start, so a second file fills the idle core (the suite
    // went from 21 to 13.5 minutes on a two-core machine of the kind CI runs on, every file passing). Two, not a
    // share of the cores: the files that start PostgreSQL and Chromium are known to pass side by
    // side two at a time, not sixteen.
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 60_000,
    setupFiles: ['tools/vitest-setup.ts'],
  },
});
