/**
 * Environments synthesized side by side: each environment is independent of the others, so a
 * large config (hundreds of apps in several environments) takes about the time of its largest
 * environment plus a share of the rest, instead of their sum. The calling thread synthesizes
 * the first environment itself while worker threads do the others; the results are the same
 * bytes as in one thread (the workers run the same compiled code on the same validated config).
 *
 * A worker thread runs the entry point the caller names (bin/run.cjs, which loads the compiled
 * command and calls its `worker` export, see main.ts), so this module stays free of any
 * catalog. Workers are started before the config is parsed, so that loading the code overlaps
 * the parsing.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parentPort, Worker } from 'node:worker_threads';
import type { EnvironmentConfig } from '../model/config/environment';
import { UserError } from '../util/errors';
import type { EnvironmentOutput, SynthesizedEnvironment } from './synthesize';
import { folderMatches } from './writer';

/** How to start a worker thread that answers with `serveEnvironments`. */
export interface WorkerEntry {
  /** The script the worker runs, e.g. bin/run.cjs. */
  readonly filename: string;
  /** Passed to the worker (bin/run.cjs reads the command from it). */
  readonly workerData: Readonly<Record<string, unknown>>;
}

/** One environment to synthesize. */
export interface EnvironmentTask {
  readonly configFile: string;
  readonly environment: string;
  readonly config: EnvironmentConfig;
  /** The output directory to compare the environment's folder with, by the thread that made it. */
  readonly compareWith?: string;
}

/** Environments in the tasks' order, and those whose folder in `compareWith` already holds exactly their files. */
export interface ParallelSynthesis {
  readonly results: EnvironmentOutput[];
  readonly unchanged: ReadonlySet<string>;
}

/** Progress of one finished environment; `elapsedMs` is its own synthesis time, wherever it ran. */
export type EnvironmentProgress = (result: EnvironmentOutput, progress: { elapsedMs: number; done: number; total: number }) => void;

/** What a worker answers: the environment, or the problems with it, or the bug it hit. */
type WorkerAnswer =
  | { readonly kind: 'done'; readonly result: EnvironmentOutput; readonly elapsedMs: number; readonly unchanged: boolean }
  | { readonly kind: 'user-error'; readonly problems: readonly string[] }
  | { readonly kind: 'bug'; readonly stack: string };

/**
 * From this size of config file (bytes) on, several threads are faster: each worker spends
 * about 0.1 s loading the compiled code, and the threads share two cores with the garbage
 * collector. The shipped example is about 10 000 bytes; each own app adds about 300. Measured
 * on two cores (three environments): 200 apps 1.41 s in one thread, 1.45 s in three; 400 apps
 * 2.26 s and 2.17 s; 800 apps 4.1 s and 3.3 s.
 */
export const PARALLEL_FROM_CONFIG_BYTES = 100_000;

/**
 * The threads to use for a config file of `bytes`: one per core and this one, which mostly
 * waits on garbage collection as the workers do (measured: three threads on two cores beat two);
 * one thread for a small config.
 */
export function threadsForConfig(bytes: number): number {
  return bytes >= PARALLEL_FROM_CONFIG_BYTES ? availableParallelism() + 1 : 1;
}

/** Worker threads, loading the compiled code from the moment they are created. */
export class EnvironmentWorkers {
  private readonly workers: Worker[] = [];

  /** Starts `count` workers; if one cannot be started, stops those that were. */
  static start(entry: WorkerEntry, count: number): EnvironmentWorkers {
    const pool = new EnvironmentWorkers(entry);
    try {
      pool.add(count);
    } catch (error) {
      void pool.close();
      throw error;
    }
    return pool;
  }

  private constructor(private readonly entry: WorkerEntry) {}

  /** Starts workers until there are `count`. */
  add(count: number): void {
    while (this.workers.length < count) {
      const worker = new Worker(this.entry.filename, { workerData: this.entry.workerData, stdout: false, stderr: false });
      // A worker that fails before it is asked anything (it may never be) must not crash the
      // process: its failure is reported to whoever asks it, and it is stopped with the rest.
      worker.on('error', () => {});
      this.workers.push(worker);
    }
  }

  /**
   * Synthesizes the tasks: `here` (this thread) takes the first, the workers the others, one at
   * a time each. Results come back in the tasks' order. A problem stops the rest; the one of the
   * first environment in order is thrown (as a UserError if it is one), as in one thread: tasks
   * start in order, so every task before a failed one has run.
   */
  async synthesize(tasks: readonly EnvironmentTask[], here: (task: EnvironmentTask) => SynthesizedEnvironment, onEnvironment?: EnvironmentProgress): Promise<ParallelSynthesis> {
    const results: EnvironmentOutput[] = new Array(tasks.length);
    const unchanged = new Set<string>();
    let done = 0;
    const report = (index: number, answer: { result: EnvironmentOutput; elapsedMs: number; unchanged: boolean }) => {
      results[index] = answer.result;
      if (answer.unchanged) unchanged.add(answer.result.environment);
      done += 1;
      onEnvironment?.(answer.result, { elapsedMs: answer.elapsedMs, done, total: tasks.length });
    };
    const queue = tasks.slice(1).map((task, i) => ({ task, index: i + 1 }));
    const failures: { index: number; error: unknown }[] = [];
    const lane = async (worker: Worker) => {
      for (let next = queue.shift(); next && failures.length === 0; next = queue.shift()) {
        try {
          report(next.index, await ask(worker, next.task));
        } catch (error) {
          failures.push({ index: next.index, error });
        }
      }
    };
    const lanes = this.workers.slice(0, queue.length).map(lane);
    try {
      report(0, synthesizeAndCompare(tasks[0], here));
    } catch (error) {
      failures.push({ index: 0, error });
    }
    await Promise.all(lanes);
    if (failures.length > 0) throw failures.reduce((first, f) => (f.index < first.index ? f : first)).error;
    return { results, unchanged };
  }

  /** Stops every worker (they wait for tasks until then). */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}

function ask(worker: Worker, task: EnvironmentTask): Promise<{ result: EnvironmentOutput; elapsedMs: number; unchanged: boolean }> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number) => reject(new Error(`the worker thread synthesizing ${task.environment} stopped (exit code ${code}) without an answer`));
    const settle = () => {
      worker.off('error', reject);
      worker.off('exit', onExit);
    };
    worker.once('message', (answer: WorkerAnswer) => {
      settle();
      if (answer.kind === 'done') resolve(answer);
      else if (answer.kind === 'user-error') reject(new UserError(answer.problems));
      else reject(new Error(`synthesizing ${task.environment} in a worker thread failed:\n${answer.stack}`));
    });
    worker.once('error', reject);
    worker.once('exit', onExit);
    worker.postMessage(task);
  });
}

/** One task, timed, and compared with its folder in the output directory: the reading is spread over the threads too. */
function synthesizeAndCompare(task: EnvironmentTask, synthesize: (task: EnvironmentTask) => SynthesizedEnvironment) {
  const started = performance.now();
  const result = synthesize(task);
  const elapsedMs = performance.now() - started;
  return { result, elapsedMs, unchanged: task.compareWith !== undefined && folderMatches(join(task.compareWith, task.environment), result.files) };
}

/** In a worker thread: synthesizes each task it is sent with `synthesize` and answers. */
export function serveEnvironments(synthesize: (task: EnvironmentTask) => SynthesizedEnvironment): void {
  if (!parentPort) throw new Error('serveEnvironments runs in a worker thread');
  const port = parentPort;
  port.on('message', (task: EnvironmentTask) => {
    let answer: WorkerAnswer;
    try {
      const { result, ...timing } = synthesizeAndCompare(task, synthesize);
      const { manifests: _, ...output } = result;
      answer = { kind: 'done', result: output, ...timing };
    } catch (error) {
      answer =
        error instanceof UserError
          ? { kind: 'user-error', problems: error.problems }
          : { kind: 'bug', stack: error instanceof Error ? (error.stack ?? error.message) : String(error) };
    }
    port.postMessage(answer);
  });
}
