/**
 * The test workers' spawnSync goes through a spawner (test/setup/spawners.ts,
 * spawn-through-spawner.ts) and gives, or throws, what forking the worker gives.
 */
import { spawnSync, SpawnSyncOptions } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { forkingSpawnSync, throughSpawner } from './setup/spawn-through-spawner';
import { tempDir } from './support';

type Run = (...call: Parameters<typeof spawnSync>) => ReturnType<typeof spawnSync>;

/** What a call gives, without what differs between two runs of one command (the process id, an error's stack), or what it throws. */
function outcome(run: Run, ...call: Parameters<typeof spawnSync>) {
  try {
    const { pid, error, ...rest } = run(...call);
    return { ...rest, started: pid > 0, error: error && { ...error, message: error.message } };
  } catch (thrown) {
    const { name, message, code } = thrown as NodeJS.ErrnoException;
    return { thrown: { name, message, code } };
  }
}

describe("the test workers' spawnSync", () => {
  it("runs through the spawner of this worker's slot, with stdin, stdout or stderr left out too", () => {
    expect(throughSpawner()).toBe(true);
    // The spawner is the shell's parent, not this worker (as it is when forking: the check's own check).
    const file = join(tempDir(), 'parent');
    const parent = (options: SpawnSyncOptions, run: Run = spawnSync) => {
      run('sh', ['-c', 'echo $PPID > "$0"', file], options);
      return Number(readFileSync(file, 'utf8'));
    };
    expect(parent({})).not.toBe(process.pid);
    expect(parent({ stdio: 'ignore' })).not.toBe(process.pid);
    expect(parent({ stdio: ['ignore', 'pipe', 'ignore'] })).not.toBe(process.pid);
    expect(parent({ stdio: ['ignore', 'pipe', 'ignore'] }, forkingSpawnSync)).toBe(process.pid);
    // Where the spawner cannot stand in (the worker's own stdout, a file descriptor of the worker's), forking does.
    expect(parent({ stdio: 'inherit' })).toBe(process.pid);
    expect(parent({ stdio: ['ignore', 'pipe', 2] })).toBe(process.pid);
  });

  it('gives what forking gives: output bytes, input, encodings, env, cwd, exit status, signal, failures and limits', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'sub'));
    const script = join(dir, 'script');
    // The names of the child's variables: the worker's env where none is given, else only the one given.
    writeFileSync(script, '#!/bin/sh\nprintf \'%s|%s|%s|\' "$GREETING" "$(env | cut -d= -f1 | sort | tr \'\\n\' ,)" "$(pwd)"; cat; printf \'\\377\\000\\n\' >&2; exit 3\n', { mode: 0o755 });
    const calls: Parameters<typeof spawnSync>[] = [
      [script, [], { env: { GREETING: 'hi', PATH: process.env.PATH }, cwd: join(dir, 'sub'), input: 'naïve — ü' }],
      [script, [], { encoding: 'utf8', input: Buffer.from([0xff, 0x00, 0x41]) }],
      [script, [], { encoding: 'latin1', input: 'é' }],
      // Arguments left out, options given.
      ['sh', undefined as unknown as string[], { encoding: 'utf8', input: 'echo from stdin' }],
      ['sh', ['-c', 'kill -TERM $$'], {}],
      ['sleep', ['5'], { timeout: 50 }],
      // Over maxBuffer: killed, whatever was read by then.
      ['yes', [], { maxBuffer: 1000, encoding: 'utf8' }],
      [join(dir, 'no-such-program'), ['a'], { encoding: 'utf8' }],
      ['sh', ['-c', 'exit 0'], { stdio: 'pipe' }],
      // Nothing for some of stdin, stdout and stderr.
      ['sh', ['-c', 'echo out; echo err >&2; exit 4'], { stdio: 'ignore' }],
      ['sh', ['-c', 'cat; echo err >&2'], { stdio: ['pipe', 'ignore', 'pipe'], input: 'in', encoding: 'utf8' }],
      ['sh', ['-c', 'read -r line; echo "[$line]"; echo err >&2'], { stdio: ['ignore', 'pipe', null], encoding: 'utf8' }],
      // Invalid calls: spawnSync throws.
      ['sh', ['-c', 'a\0b'], {}],
      ['sh', ['-c', 'exit 0'], { timeout: -1 }],
    ];
    const comparable = (result: ReturnType<typeof outcome>) => ('stdout' in result && typeof result.stdout === 'string' && result.stdout.startsWith('y\n') ? { ...result, stdout: 'y…', output: 'y…' } : result);
    for (const call of calls) {
      expect(comparable(outcome(spawnSync, ...call)), `${call[0]} ${call[1]?.join(' ')}`).toEqual(comparable(outcome(forkingSpawnSync, ...call)));
    }
    // Without a cwd, the worker's.
    const cwd = process.cwd();
    process.chdir(join(dir, 'sub'));
    try {
      expect(outcome(spawnSync, script, [], { encoding: 'utf8' })).toEqual(outcome(forkingSpawnSync, script, [], { encoding: 'utf8' }));
    } finally {
      process.chdir(cwd);
    }
  });
});
