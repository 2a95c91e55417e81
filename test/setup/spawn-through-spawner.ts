/**
 * Runs the test worker's synchronous child processes (`spawnSync`: the checkpoint scripts, the
 * CLI, git) through its slot's spawner (test/setup/spawners.ts, spawner.cjs) instead of forking
 * the worker. Forking copies the page tables of the whole worker (hundreds of MB) and marks every
 * page of it copy-on-write: after each child, the worker's next write to each page faults again,
 * ~950 faults a spawn in a worker of 300 MB (ADR 31). The spawner calls Node.js's own spawnSync
 * with the same options, so the results are the same, and what it throws for an invalid call is
 * thrown here alike. A call it cannot pass on as JSON (other stdio than pipes or `'ignore'`, an
 * input that is not text or bytes, a cwd or file that is not a string, an env that is not a
 * plain object, a number that is not finite, an option it does not know) forks the worker as
 * before; so does every call where there is no spawner (none started, none on this slot, or one
 * found gone before a request reached it), while a call during which the spawner ends fails,
 * naming the slot. Two differences are left: a child's parent is the spawner, and Node.js's own
 * variables the spawner adds (NODE_V8_COVERAGE) are the spawner's.
 * (`execFileSync` is not routed: Node.js calls its own spawnSync for it.)
 */
import nodeChildProcess, { SpawnSyncOptions, SpawnSyncReturns } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { readMessage, writeMessage } from './messages.cjs';
import { SPAWNERS_VARIABLE } from './spawners';

/** Options the spawner passes on as they are (JSON). */
const PASSED_ON = new Set(['cwd', 'env', 'timeout', 'killSignal', 'maxBuffer', 'argv0', 'shell', 'uid', 'gid', 'windowsHide', 'windowsVerbatimArguments', 'encoding', 'input', 'stdio']);

/** An output as the spawner sends it (spawner.cjs, outputOf). */
type SentOutput = { none: true } | null | { text: string } | { base64: string };

interface Answer {
  /** The request's: a worker started on a killed one's slot skips the answer meant for it. */
  id: string;
  /** What spawnSync threw instead of running anything (an invalid call). */
  thrown?: { name: string; message: string; code?: string };
  pid: number;
  status: number | null;
  signal: NodeJS.Signals | null;
  /** False when the program did not start: spawnSync's `output` is then null. */
  started: boolean;
  stdout: SentOutput;
  stderr: SentOutput;
  error?: { message: string; code?: string; errno?: number; syscall?: string; path?: string; spawnargs?: string[] };
}

/** An output as spawnSync gives it, from what the spawner sent. */
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

/** This worker's spawner, connecting to it at the first call. */
function spawnerEnds(): { requests: number; answers: number } | null {
  if (state.spawner === undefined) state.spawner = connect();
  return state.spawner;
}

/** Requests this worker made, for their ids. */
let requestCount = 0;

/**
 * The spawner's answer to a request, or undefined if the spawner was gone before the request
 * reached it (nothing ran). A spawner that ends after it is an error: the program may have run.
 */
function ask(ends: { requests: number; answers: number }, request: object): Answer | undefined {
  const id = `${process.pid}:${++requestCount}`;
  try {
    writeMessage(ends.requests, { ...request, id });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EPIPE') return undefined;
    throw error;
  }
  for (;;) {
    const answer = readMessage(ends.answers) as Answer | undefined;
    if (answer === undefined) throw new Error(`the spawner of test worker slot ${process.env.VITEST_POOL_ID} ended during a call (test/setup/spawner.cjs)`);
    if (answer.id === id) return answer;
  }
}

/** Whether a value is a plain object: its own enumerable properties are all it holds, as JSON sends them. */
function isPlainObject(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** What the spawner can give a child in place of the worker's stdin, stdout or stderr: a pipe (what undefined and null mean), or nothing. */
const PASSABLE_STDIO = new Set<unknown>(['pipe', 'ignore', undefined, null]);

/**
 * Whether the spawner can run this call as spawnSync would here: pipes or nothing for stdio; an
 * input of bytes, or text in a text encoding; a string cwd; an env of its own strings (or this
 * process's); finite numbers; options it passes on.
 */
function passable(options: SpawnSyncOptions): boolean {
  const { stdio, input, cwd, env, encoding } = options;
  const stdioOk = Array.isArray(stdio) ? stdio.length <= 3 && stdio.every((s) => PASSABLE_STDIO.has(s)) : PASSABLE_STDIO.has(stdio);
  const inputOk = input === undefined || ArrayBuffer.isView(input) || (typeof input === 'string' && encoding !== 'buffer');
  const numbersOk = Object.values(options).every((value) => typeof value !== 'number' || Number.isFinite(value));
  return (
    stdioOk &&
    inputOk &&
    numbersOk &&
    (cwd === undefined || typeof cwd === 'string') &&
    (env === undefined || env === process.env || isPlainObject(env)) &&
    Object.keys(options).every((key) => PASSED_ON.has(key))
  );
}

/** spawnSync, run by this worker's spawner where it can be (see above), else by forking. */
function spawnSyncThroughSpawner(file: string, argsOrOptions?: readonly string[] | SpawnSyncOptions | null, maybeOptions?: SpawnSyncOptions): SpawnSyncReturns<string | Buffer> {
  // As spawnSync reads them: spawnSync(file, options) too, and args left out as undefined or null.
  const argsGiven = Array.isArray(argsOrOptions) || argsOrOptions == null;
  const args = Array.isArray(argsOrOptions) ? [...argsOrOptions] : [];
  const options: SpawnSyncOptions = (argsGiven ? maybeOptions : (argsOrOptions as SpawnSyncOptions)) ?? {};
  const spawner = spawnerEnds();
  if (spawner === null || typeof file !== 'string' || !passable(options)) return forkingSpawnSync(file, args, options);
  const { input, ...passed } = options;
  // A text input in the output's encoding, as spawnSync encodes it.
  const inputBytes = typeof input === 'string' ? Buffer.from(input, (passed.encoding as BufferEncoding | undefined) ?? 'utf8') : input && Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const answer = ask(spawner, { file, args, input: inputBytes?.toString('base64'), options: { ...passed, cwd: passed.cwd ?? process.cwd(), env: passed.env ?? process.env } });
  if (answer === undefined) {
    // The spawner was gone before the call reached it: fork from now on.
    closeSync(spawner.requests);
    closeSync(spawner.answers);
    state.spawner = null;
    return forkingSpawnSync(file, args, options);
  }
  if (answer.thrown) {
    const { name, message, code } = answer.thrown;
    const Thrown = { TypeError, RangeError, SyntaxError }[name] ?? Error;
    throw Object.assign(new Thrown(message), code === undefined ? {} : { code });
  }
  const stdout = received(answer.stdout);
  const stderr = received(answer.stderr);
  const result = { pid: answer.pid, output: answer.started ? [null, stdout, stderr] : null, stdout, stderr, status: answer.status, signal: answer.signal } as SpawnSyncReturns<string | Buffer>;
  if (answer.error) result.error = Object.assign(new Error(answer.error.message), answer.error);
  return result;
}

/** Whether this worker's spawnSync goes through a spawner (connecting to it if it has not yet). */
export function throughSpawner(): boolean {
  return spawnerEnds() !== null && nodeChildProcess.spawnSync === state.installed;
}

export { forkingSpawnSync };

if (nodeChildProcess.spawnSync === forkingSpawnSync) {
  (nodeChildProcess as { spawnSync: unknown }).spawnSync = state.installed = spawnSyncThroughSpawner;
  syncBuiltinESMExports();
}
