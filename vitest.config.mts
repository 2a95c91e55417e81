import { defineConfig } from 'vitest/config';
// Compiles the project's code as the bundles do, for Node.js to run (Vite's module runner is off):
// importing it installs it in this process, where the global setup runs; the workers `--import` it.
import { pruneTestCaches, TYPESCRIPT_LOADER_URL } from './test/setup/typescript-loader.mjs';

pruneTestCaches();

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Two processes, each running its files without isolation (one synth per fixture per
    // process, test/support.ts). Processes, not threads: a program a test starts with anything
    // but spawnSync is forked from its worker, and forking the one process of two threads
    // (~1.2 GB) cost 6–13 ms each, a worker process 3–5 ms; one V8 helper thread each on 2 cores
    // (ADR 31, seventh round). spawnSync's programs (but those it cannot pass on, e.g. with
    // `stdio: 'inherit'`) come from a small process per worker, the spawner, so that the worker
    // is not forked (test/setup/spawners.ts, twenty-first and twenty-third rounds).
    pool: 'forks',
    maxWorkers: 2,
    execArgv: ['--v8-pool-size=1', '--import', TYPESCRIPT_LOADER_URL],
    isolate: false,
    testTimeout: 0,
    hookTimeout: 0,
    experimental: { viteModuleRunner: false, nodeLoader: false },
    globalSetup: ['test/setup/scratch-directory.ts', 'test/setup/spawners.ts'],
    setupFiles: ['test/setup/spawn-through-spawner.ts', 'test/setup/temp-dirs.ts', 'test/setup/compile-cache.ts'],
  },
});
