import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSystemFailure } from './errors';

/** Whether a process with this id exists (EPERM: it does, another user's). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** How a process inBackground started ended, with all it wrote. */
export interface Ended {
  /** Its exit status; null if it could not start or a signal ended it. */
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: string;
  /** Why it could not start. */
  readonly error?: Error;
}

export interface BackgroundOptions {
  /** Where it runs. */
  readonly cwd: string;
  /** What runs, naming its temporary files (`homelab-<name>-<pid>-…`). */
  readonly name: string;
}

/**
 * A process started now, whose output and errors go into temporary files (unlinked at once, so
 * nothing is left behind, also by a killed run): a pipe would make it wait for this thread,
 * busy meanwhile, to drain it, and a stream costs this thread ~5 ms of start-up. Where the
 * temporary folder takes no file, pipes all the same. Settles when the process has ended;
 * rejects only if its output cannot be read back.
 */
export function inBackground(command: string, args: readonly string[], options: BackgroundOptions): Promise<Ended> {
  const files = temporaryFiles(options.name);
  return new Promise((settle, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let ended = false;
    const end = (status: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      if (ended) return;
      ended = true;
      try {
        const stdout = files ? readWhole(files[0]) : Buffer.concat(out);
        const stderr = (files ? readWhole(files[1]) : Buffer.concat(err)).toString('utf8');
        settle({ status, signal, stdout, stderr, error });
      } catch (readError) {
        reject(fileSystemFailure(readError, `cannot read what ${command} wrote`));
      } finally {
        for (const fd of files ?? []) closeSync(fd);
      }
    };
    try {
      const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', files?.[0] ?? 'pipe', files?.[1] ?? 'pipe'] });
      child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
      child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
      child.on('error', (error) => end(null, null, error));
      child.on('close', (status, signal) => end(status, signal));
    } catch (error) {
      // Most failures to start come as the 'error' event; others (a cwd that is a file: ENOTDIR) are thrown.
      end(null, null, error as Error);
    }
  });
}

/** Two files open for reading and writing that no path names any more; none where the temporary folder takes none. */
function temporaryFiles(name: string): [number, number] | undefined {
  const opened: number[] = [];
  try {
    while (opened.length < 2) {
      const path = join(tmpdir(), `homelab-${name}-${process.pid}-${randomUUID()}`);
      opened.push(openSync(path, 'wx+', 0o600));
      unlinkSync(path);
    }
    return [opened[0], opened[1]];
  } catch {
    for (const fd of opened) closeSync(fd);
    return undefined;
  }
}

/** All of a file, from its start, by its descriptor (shared with the process that wrote it, so its offset is at the end). */
function readWhole(fd: number): Buffer {
  const buffer = Buffer.allocUnsafe(fstatSync(fd).size);
  for (let done = 0; done < buffer.length; ) {
    const read = readSync(fd, buffer, done, buffer.length - done, done);
    if (read === 0) return buffer.subarray(0, done);
    done += read;
  }
  return buffer;
}
