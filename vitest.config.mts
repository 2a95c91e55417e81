import { defineConfig } from 'vitest/config';
import buildPlugins from './bin/build-plugins.cjs';

const { GENERATED_L1, withLinearFilter } = buildPlugins;

export default defineConfig({
  // The tests run the code as the bundles do (bin/build-plugins.cjs; cdk8s-plus's in test/setup/linear-l1-filters.ts).
  plugins: [{ name: 'linear-l1-filters', enforce: 'pre', transform: (code: string, id: string) => (GENERATED_L1.test(id) ? withLinearFilter(code) : undefined) }],
  test: {
    include: ['test/**/*.test.ts'],
    // Two processes, each running its files without isolation (one synth per fixture per
    // process, test/support.ts). Processes, not threads: every program a test starts is forked
    // from its worker, and forking the one process of two threads (~1.2 GB) cost 6–13 ms each,
    // a worker process 3–5 ms; one V8 helper thread each on 2 cores (ADR 31, seventh round).
    pool: 'forks',
    maxWorkers: 2,
    execArgv: ['--v8-pool-size=1'],
    isolate: false,
    testTimeout: 0,
    hookTimeout: 0,
    experimental: { fsModuleCache: true },
    globalSetup: ['test/setup/scratch-directory.ts'],
    setupFiles: ['test/setup/linear-l1-filters.ts', 'test/setup/temp-dirs.ts'],
  },
});
