/**
 * `npm run bench`'s CPU figure (scripts/bench.ts): the CPU time of the children it waited for,
 * and the system's share of it, read from Linux's /proc/self/stat.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { childrenCpuOf, cpuSpent } from '../scripts/bench';

/** A /proc/<pid>/stat line with the given command name and children's user and system ticks (1/100 s). */
const statLine = (command: string, cutime: number, cstime: number) =>
  `4242 (${command}) S 1 4242 4242 0 -1 4194560 1000 2000 0 0 37 12 ${cutime} ${cstime} 20 0 1 0 100 1000000 2000 18446744073709551615`;

describe("the CPU time of a process's waited-for children", () => {
  it('is read after the command name, whatever that holds', () => {
    expect(childrenCpuOf(statLine('node', 150, 25))).toEqual({ totalMs: 1750, systemMs: 250 });
    expect(childrenCpuOf(statLine('a) b (c) 1 2', 3, 4))).toEqual({ totalMs: 70, systemMs: 40 });
  });

  it('is unknown in a line without those fields', () => {
    expect(childrenCpuOf('4242 (node) S 1')).toBeUndefined();
    expect(childrenCpuOf('')).toBeUndefined();
  });

  /**
   * How much a child running `loop` (Node.js code) added to this process's children's CPU time,
   * in total and of it system time. execFileSync, so that the child is this process's own: the
   * tests' spawnSync runs it in a spawner (test/setup/spawn-through-spawner.ts). It throws if the
   * child fails.
   */
  const spentBy = (loop: string) => {
    const before = childrenCpuOf(readFileSync('/proc/self/stat', 'utf8'))!;
    execFileSync(process.execPath, ['-e', loop]);
    return cpuSpent(before, childrenCpuOf(readFileSync('/proc/self/stat', 'utf8'))!);
  };

  // Each child spends 60 ms in its loop by its own count (getrusage, which /proc's figures come from), and more
  // starting; 50 leaves room for ticks of 10 ms.
  it.runIf(existsSync('/proc/self/stat'))('grows by what a child spent once it has been waited for', () => {
    // User and system time: each check is a system call.
    const loop = 'const total = ({ user, system }) => user + system; const end = total(process.cpuUsage()) + 60000; while (total(process.cpuUsage()) < end);';
    expect(spentBy(loop).totalMs).toBeGreaterThanOrEqual(50);
  });

  it.runIf(existsSync('/proc/self/stat'))("counts a child's system calls as system time, and only those", () => {
    // In the kernel, asking it about a file.
    const calls = "const { statSync } = require('node:fs'); const end = process.cpuUsage().system + 60000; while (process.cpuUsage().system < end) statSync('/');";
    expect(spentBy(calls).systemMs).toBeGreaterThanOrEqual(50);
    // 200 ms of computing without a system call (Date.now reads a clock the kernel maps into the process).
    const computing = spentBy('const end = Date.now() + 200; while (Date.now() < end);');
    expect(computing.systemMs).toBeLessThan(computing.totalMs / 2);
  });
});
