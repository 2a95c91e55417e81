/**
 * Runs the test worker's synchronous child processes (`spawnSync`: the checkpoint scripts, the
 * CLI, git) through its slot's spawner (test/setup/spawners.ts, spawner.cjs) instead of forking
 * the worker. Forking copies the page tables of the whole worker (hundreds of MB) and marks every
 * page of it copy-on-write: after each child, the worker's next write to each page faults again,
 * ~950 faults a spawn in a worker of 300 MB (ADR 31). The spawner calls Node.js's own spawnSync
 * with the same options, so the results are the same; a call whose options it cannot pass on
 * (other stdio than pipes, an input that is not text or bytes), and every call where there is no
 * spawner, forks the worker as before. (`execFileSync` is not routed: Node.js calls its own
 * spawnSync for it.)
 */
import nodeChildProcess, { SpawnSyncOptions, SpawnSyncReturns } from 'node:child_process';
import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { SPAWNERS_VARIABLE } from './spawners';

/** Options the spawner passes on as they are (JSON). */
const PASSED_ON = new Set(['cwd', 'env', 'timeout', 'killSignal', 'maxBuffer', 'argv0', 'shell', 'uid', 'gid', 'windowsHide', 'windowsVerbatimArguments', 'encoding', 'input', 'stdio']);

/** An output as the spawner sends it (spawner.cjs, outputOf). */
type SentOutput = { none: true } | null | { text: string } | { base64: string };

interface Answer {
  pid: number;
  status: number | null;
  signal: NodeJS.Signals | null;
  /** False when the program did not start: spawnSync's `output` is then null. */
  started: boolean;
  stdout: SentOutput;
  stderr: SentOutput;
  error?: { message: string; code?: string; errno?: number; syscall?: string; path?: string; spawnargs?: string[] };
}

function received(output: SentOutput): string | Buffer {
  if (output === null) return null as unknown as Buffer;
  if ('none' in output) return undefined as unknown as Buffer;
  return 'text' in output ? output.text : Buffer.from(output.base64, 'base64');
}

/**
 * What this worker keeps across its test files (a setup file runs again for each): Node.js's own
 * spawnSync, and the two ends of the spawner's FIFOs once it runs (null if it could not start).
 */
interface WorkerState {
  forkingSpawnSync: typeof nodeChildProcess.spawnSync;
  /** The spawnSync installed in its place (this module is evaluated again for each test file, and by a test that imports it). */
  installed?: unknown;
  spawner?: { requests: number; answers: number } | null;
}
const STATE = Symbol.for('homelab.spawnThroughSpawner');
const holder = globalThis as unknown as { [STATE]?: WorkerState };
const state: WorkerState = (holder[STATE] ??= { forkingSpawnSync: nodeChildProcess.spawnSync });
const forkingSpawnSync = state.forkingSpawnSync;

/**
 * This worker's ends of its slot's spawner FIFOs (test/setup/spawners.ts), or null where there is
 * none: no spawners, or none waiting on this slot (opening for writing without blocking fails
 * with ENXIO when nothing reads). The second, blocking, open for writing finds the spawner there.
 */
function connect(): { requests: number; answers: number } | null {
  const dir = process.env[SPAWNERS_VARIABLE];
  const slot = process.env.VITEST_POOL_ID;
  if (!dir || !slot) return null;
  let probe: number;
  try {
    probe = openSync(join(dir, `requests-${slot}`), constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    // In the spawner's order: it opens the answers FIFO once the requests one has a writer.
    const requests = openSync(join(dir, `requests-${slot}`), 'w');
    const answers = openSync(join(dir, `answers-${slot}`), 'r');
    return { requests, answers };
  } finally {
    closeSync(probe);
  }
}

function readExactly(fd: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  let offset = 0;
  while (offset < length) {
    const read = readSync(fd, buffer, offset, length - offset, null);
    if (read === 0) throw new Error('the spawner ended');
    offset += read;
  }
  return buffer;
}

function ask(ends: { requests: number; answers: number }, request: unknown): Answer {
  const body = Buffer.from(JSON.stringify(request));
  const header = Buffer.alloc(4);
  header.writeUInt32LE(body.length);
  const message = Buffer.concat([header, body]);
  let offset = 0;
  while (offset < message.length) offset += writeSync(ends.requests, message, offset);
  return JSON.parse(readExactly(ends.answers, readExactly(ends.answers, 4).readUInt32LE()).toString('utf8')) as Answer;
}

/** Whether the spawner can run this call as spawnSync would: pipes for stdio, an input of text or bytes, options it passes on. */
function passable(options: SpawnSyncOptions): boolean {
  const { stdio, input, cwd } = options;
  const pipes = stdio === undefined || stdio === 'pipe' || (Array.isArray(stdio) && stdio.length <= 3 && stdio.every((s) => s === 'pipe' || s === undefined || s === null));
  const inputOk = input === undefined || typeof input === 'string' || ArrayBuffer.isView(input);
  return pipes && inputOk && (cwd === undefined || typeof cwd === 'string') && Object.keys(options).every((key) => PASSED_ON.has(key));
}

function spawnSyncThroughSpawner(file: string, argsOrOptions?: readonly string[] | SpawnSyncOptions, maybeOptions?: SpawnSyncOptions): SpawnSyncReturns<string | Buffer> {
  const args = Array.isArray(argsOrOptions) ? [...argsOrOptions] : [];
  const options: SpawnSyncOptions = (Array.isArray(argsOrOptions) ? maybeOptions : (argsOrOptions as SpawnSyncOptions | undefined)) ?? {};
  if (state.spawner === undefined) state.spawner = connect();
  const spawner = state.spawner;
  if (spawner === null || typeof file !== 'string' || !passable(options)) return forkingSpawnSync(file, args, options);
  const { input, stdio: _pipes, ...passed } = options;
  // A text input in the output's encoding, as spawnSync encodes it.
  const inputBytes = typeof input === 'string' ? Buffer.from(input, passed.encoding && passed.encoding !== 'buffer' ? passed.encoding : 'utf8') : input && Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const answer = ask(spawner, { file, args, input: inputBytes?.toString('base64'), options: { ...passed, cwd: passed.cwd ?? process.cwd(), env: passed.env ?? process.env } });
  const stdout = received(answer.stdout);
  const stderr = received(answer.stderr);
  const result = { pid: answer.pid, output: answer.started ? [null, stdout, stderr] : null, stdout, stderr, status: answer.status, signal: answer.signal } as SpawnSyncReturns<string | Buffer>;
  if (answer.error) result.error = Object.assign(new Error(answer.error.message), answer.error);
  return result;
}

/** Whether this worker's spawnSync goes through a spawner (connecting to it if it has not yet). */
export function throughSpawner(): boolean {
  if (state.spawner === undefined) state.spawner = connect();
  return state.spawner !== null && nodeChildProcess.spawnSync === state.installed;
}

export { forkingSpawnSync };

if (nodeChildProcess.spawnSync === forkingSpawnSync) {
  (nodeChildProcess as { spawnSync: unknown }).spawnSync = state.installed = spawnSyncThroughSpawner;
  syncBuiltinESMExports();
}
