import { availableParallelism } from 'node:os';
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
    // At least two test files at once. Vitest's default is one per core but one, so one on a
    // two-core machine: most of the slow files wait on the CLI processes they start, and a second
    // file fills the idle core (the suite went from 21 to 13.5 minutes on a two-core machine of
    // the kind CI runs on, every file passing). Larger machines keep vitest's default.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 60_000,
    setupFiles: ['tools/vitest-setup.ts'],
  },
});
