import { defineConfig } from 'vitest/config';
import buildPlugins from './bin/build-plugins.cjs';

const { GENERATED_L1, withLinearFilter } = buildPlugins;

export default defineConfig({
  // The tests run the code as the bundles do (bin/build-plugins.cjs; cdk8s-plus's in test/setup/linear-l1-filters.ts).
  plugins: [{ name: 'linear-l1-filters', enforce: 'pre', transform: (code: string, id: string) => (GENERATED_L1.test(id) ? withLinearFilter(code) : undefined) }],
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'threads',
    maxWorkers: 2,
    isolate: false,
    testTimeout: 0,
    hookTimeout: 0,
    experimental: { fsModuleCache: true },
    setupFiles: ['test/setup/linear-l1-filters.ts', 'test/setup/temp-dirs.ts'],
  },
});
