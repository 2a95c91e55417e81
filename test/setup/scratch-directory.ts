/**
 * Global setup (vitest.config.mts): where the tests' temporary directories go. The suite writes
 * and removes tens of thousands of files (synth outputs, copies of them, fake commands), which
 * on a disk's file system cost a 2-core run 1–2 s of wall time and ~1.9 s of kernel time (ADR 31,
 * seventh round). So, where the machine has a memory file system the tests can use, the run
 * gets a directory of its own there as TMPDIR, for the test processes and what they start, and
 * removes it when it ends; one left by a run that was killed (its process gone) is removed by
 * the next run. Otherwise, and whenever TMPDIR, TMP or TEMP is set, nothing changes.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRunning } from '../../lib/util/processes';

/** Linux's shared-memory file system, where a distribution has one. */
const MEMORY_FS = '/dev/shm';
/** statfs' type of a tmpfs (linux/magic.h): memory, not a disk mounted there. */
const TMPFS_MAGIC = 0x01021994;
/** What the memory file system must have free to be used: the suite holds ~30 MB at a time, so this leaves room for many runs at once. */
const MEMORY_FS_MIN_FREE_BYTES = 1024 ** 3;
/** A run's directory: this prefix and the process id of the vitest process that made it. */
const RUN_DIRECTORY = /^homelab-tests-(\d+)$/;

export default function setup(): (() => void) | undefined {
  const root = memoryScratchDirectory();
  if (root === undefined) return undefined;
  removeAbandonedRuns(root);
  const dir = join(root, `homelab-tests-${process.pid}`);
  // A directory of this process id can only be a dead run's whose id came round again.
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o700 });
  // The worker processes start after this with the main process's environment.
  process.env.TMPDIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}

/**
 * The memory file system, when the tests can use it: Linux, no temporary directory chosen
 * (TMPDIR, TMP, TEMP, as os.tmpdir() reads them), a tmpfs, writable, with a GiB free, and not
 * mounted `noexec` (as containers often mount it), since the fake commands run from there.
 */
function memoryScratchDirectory(): string | undefined {
  const { TMPDIR, TMP, TEMP } = process.env;
  if (TMPDIR || TMP || TEMP || process.platform !== 'linux') return undefined;
  try {
    const fs = statfsSync(MEMORY_FS);
    if (fs.type !== TMPFS_MAGIC || fs.bavail * fs.bsize < MEMORY_FS_MIN_FREE_BYTES) return undefined;
    const probe = mkdtempSync(join(MEMORY_FS, 'homelab-tests-probe-'));
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

/** Removes the directories of runs whose vitest process is gone (killed before its teardown). */
function removeAbandonedRuns(root: string): void {
  for (const name of readdirSync(root)) {
    const pid = RUN_DIRECTORY.exec(name)?.[1];
    if (pid === undefined || isRunning(Number(pid))) continue;
    try {
      rmSync(join(root, name), { recursive: true, force: true });
    } catch {
      // Another user's: theirs to remove.
    }
  }
}
