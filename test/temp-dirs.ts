/**
 * Temporary directories for tests (outputs of real synths, copies of them, fake commands'
 * state), each removed after the test file that made it (test/setup/temp-dirs.ts): left behind,
 * every run of the suite would add tens of thousands of files to the system's temporary directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
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
