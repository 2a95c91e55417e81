/**
 * The test workers' spawnSync goes through a spawner (test/setup/spawners.ts,
 * spawn-through-spawner.ts) and gives what forking the worker gives.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { forkingSpawnSync, throughSpawner } from './setup/spawn-through-spawner';
import { tempDir } from './support';

/** A result without what differs between two runs of one command: the process id, and an error's stack. */
function comparable(result: ReturnType<typeof spawnSync>) {
  const { pid, error, ...rest } = result;
  return { ...rest, started: pid > 0, error: error && { ...error, message: error.message } };
}

describe("the test workers' spawnSync", () => {
  it('runs through a spawner in every worker', () => {
    expect(throughSpawner()).toBe(true);
  });

  it('gives what forking gives: output bytes, input, encodings, env, cwd, exit status, signal, failures and limits', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'sub'));
    const script = join(dir, 'script');
    writeFileSync(script, '#!/bin/sh\nprintf \'%s|%s|\' "$GREETING" "$(pwd)"; cat; printf \'\\377\\000\\n\' >&2; exit 3\n', { mode: 0o755 });
    const cases: [string, string[], Parameters<typeof spawnSync>[2]][] = [
      [script, [], { env: { GREETING: 'hi', PATH: process.env.PATH }, cwd: join(dir, 'sub'), input: 'naïve — ü' }],
      [script, [], { encoding: 'utf8', input: Buffer.from([0xff, 0x00, 0x41]) }],
      [script, [], { encoding: 'latin1', input: 'é' }],
      ['sh', ['-c', 'kill -TERM $$'], {}],
      ['sh', ['-c', 'sleep 5'], { timeout: 50 }],
      [join(dir, 'no-such-program'), ['a'], { encoding: 'utf8' }],
      ['sh', ['-c', 'exit 0'], { stdio: 'pipe' }],
    ];
    for (const [file, args, options] of cases) {
      expect(comparable(spawnSync(file, args, options)), `${file} ${args.join(' ')}`).toEqual(comparable(forkingSpawnSync(file, args, options)));
    }
    // Over maxBuffer: how much was read before the kill depends on how the pipe was read.
    const overflow = (run: typeof spawnSync) => {
      const { status, signal, error } = run('sh', ['-c', 'yes | head -c 100000'], { maxBuffer: 1000, encoding: 'utf8' });
      return { status, signal, code: (error as NodeJS.ErrnoException | undefined)?.code };
    };
    expect(overflow(spawnSync)).toEqual(overflow(forkingSpawnSync));
  });
});
