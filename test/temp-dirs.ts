/**
 * Temporary directories for tests (outputs of real synths, copies of them, fake commands'
 * state), each removed after the test file that made it (test/setup/temp-dirs.ts): left behind,
 * every run of the suite would add tens of thousands of files to the system's temporary directory.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];

/** A new empty directory under the system's temporary directory, removed after the current test file. */
export function tempDir(prefix = 'homelab-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Removes every directory tempDir made so far. */
export function removeTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Linux's shared-memory file system, a tmpfs on every distribution that has it. */
const MEMORY_FS = '/dev/shm';
/** What the memory file system must have free to be used: the suite holds ~30 MB at a time, so this leaves room for many runs at once. */
const MEMORY_FS_MIN_FREE_BYTES = 1024 ** 3;

/**
 * Where the tests' temporary directories go (vitest.config.mts sets TMPDIR to it for the test
 * processes and what they start): the memory file system where the machine has one the tests can
 * use — writable, with a GiB free, and not mounted `noexec`, as containers often mount it, since
 * the fake commands are run from there. The suite writes and removes tens of thousands of
 * files (synth outputs, copies of them, fake commands): on a disk's file system that cost a
 * 2-core run ~1.3 s of its ~24 s (ADR 31, seventh round). undefined: the system's temporary
 * directory, as everywhere when TMPDIR is set.
 */
export function memoryScratchDirectory(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.TMPDIR || process.platform !== 'linux') return undefined;
  try {
    const fs = statfsSync(MEMORY_FS);
    if (fs.bavail * fs.bsize < MEMORY_FS_MIN_FREE_BYTES) return undefined;
    const probe = mkdtempSync(join(MEMORY_FS, 'homelab-test-probe-'));
    try {
      const script = join(probe, 'runs');
      writeFileSync(script, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
      return spawnSync(script).status === 0 ? MEMORY_FS : undefined;
    } finally {
      rmSync(probe, { recursive: true, force: true });
    }
  } catch {
    return undefined;
  }
}
