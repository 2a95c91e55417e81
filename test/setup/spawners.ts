/**
 * Global setup (vitest.config.mts): a spawner (test/setup/spawner.cjs) for each worker slot,
 * which runs that worker's synchronous child processes (test/setup/spawn-through-spawner.ts),
 * started here so that they are this process's children: their CPU time, and that of what they
 * start, is counted in the run's (`npm run bench`), and they end with it (in its teardown, or
 * when the pipe on their stdin closes, if it is killed first). Their FIFOs are in a
 * folder of their own, named to the workers by HOMELAB_TEST_SPAWNERS; slot n's are
 * `requests-n` and `answers-n` (vitest's VITEST_POOL_ID). Where mkfifo fails, there are none,
 * and the workers fork as before.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

/** The environment variable that names the spawners' folder to the workers. */
export const SPAWNERS_VARIABLE = 'HOMELAB_TEST_SPAWNERS';

export default function setup(project: TestProject): (() => Promise<void>) | undefined {
  // After scratch-directory.ts: in the run's own temporary folder where it made one.
  const dir = mkdtempSync(join(tmpdir(), 'homelab-spawners-'));
  const slots = Array.from({ length: project.config.maxWorkers }, (_, i) => i + 1);
  if (slots.length === 0) throw new Error(`test/setup/spawners.ts: no worker slots (maxWorkers ${project.config.maxWorkers})`);
  const fifos = slots.map((slot) => [join(dir, `requests-${slot}`), join(dir, `answers-${slot}`)]);
  if (spawnSync('mkfifo', fifos.flat()).status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  // Their stdin is a pipe from here, which ends when this process does, killed or not: they end then.
  const spawners: ChildProcess[] = fifos.map((paths) => spawn(process.execPath, [join(__dirname, 'spawner.cjs'), ...paths], { stdio: ['pipe', 'ignore', 'inherit'] }));
  for (const child of spawners) (child.stdin as unknown as { unref(): void }).unref();
  process.env[SPAWNERS_VARIABLE] = dir;
  return async () => {
    await Promise.all(
      spawners.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            // Waiting for a worker or for the next request: nothing is left to run.
            child.kill('SIGTERM');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
}
