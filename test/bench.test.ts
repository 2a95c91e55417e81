/**
 * `npm run bench`'s CPU figure (scripts/bench.ts): the CPU time of the children it waited for,
 * and the system's share of it, read from Linux's /proc/self/stat.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { childrenCpuOf } from '../scripts/bench';

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

  it.runIf(existsSync('/proc/self/stat'))('grows by what a child spent once it has been waited for', () => {
    const spent = () => childrenCpuOf(readFileSync('/proc/self/stat', 'utf8'))!.totalMs;
    const before = spent();
    // The child spends 60 ms of CPU in its loop (user and system: each check is a system call), and more starting;
    // 50 leaves room for ticks of 10 ms.
    const loop = 'const total = ({ user, system }) => user + system; const end = total(process.cpuUsage()) + 60000; while (total(process.cpuUsage()) < end);';
    const run = spawnSync(process.execPath, ['-e', loop]);
    expect(run.status).toBe(0);
    expect(spent() - before).toBeGreaterThanOrEqual(50);
  });

  it.runIf(existsSync('/proc/self/stat'))("counts a child's system calls as system time", () => {
    const system = () => childrenCpuOf(readFileSync('/proc/self/stat', 'utf8'))!.systemMs;
    const before = system();
    // 60 ms in the kernel by the child's own count (getrusage, which /proc's figures come from), asking it about a file.
    const loop = "const { statSync } = require('node:fs'); const end = process.cpuUsage().system + 60000; while (process.cpuUsage().system < end) statSync('/');";
    const run = spawnSync(process.execPath, ['-e', loop]);
    expect(run.status).toBe(0);
    expect(system() - before).toBeGreaterThanOrEqual(50);
  });
});
