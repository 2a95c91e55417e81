/**
 * A config file to synthesized environments, for the commands that synthesize (synth,
 * diff): every environment, or the one `--env` names; in this thread, or for a large config
 * also in worker threads (environment-workers.ts).
 */
import type { Catalog } from '../model/catalog';
import { loadConfigFile } from '../model/config/load';
import { UserError } from '../util/errors';
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { EnvironmentProgress, EnvironmentTask, EnvironmentWorkers, ParallelSynthesis, threadsForConfig, WorkerEntry } from './environment-workers';
import { SynthesizedEnvironment, synthesizeEnvironment } from './synthesize';

export interface SynthesizeOptions {
  readonly configFile: string;
  /** The services there are (the built-in catalog, charts/catalog.ts). */
  readonly catalog: Catalog;
  /** Only this environment. @default every environment in the file */
  readonly environment?: string;
  /** Called as each environment is done, e.g. to show progress. */
  readonly onEnvironment?: EnvironmentProgress;
}

export interface ParallelOptions {
  /** How a worker thread is started (its entry must answer with the same catalog). */
  readonly entry: WorkerEntry;
  /** The output directory to compare each environment with, in the thread that made it. @default none */
  readonly compareWith?: string;
  /** Threads to use. @default for a large config file, one per CPU core and one more; else 1 */
  readonly threads?: number;
}

export function synthesizeConfigFile(options: SynthesizeOptions): SynthesizedEnvironment[] {
  return environmentTasks(options).map((task, i, tasks) => {
    const started = performance.now();
    const result = synthesizeTask(task, options.catalog);
    options.onEnvironment?.(result, { elapsedMs: performance.now() - started, done: i + 1, total: tasks.length });
    return result;
  });
}

/** Like synthesizeConfigFile, with the environments spread over threads when that is faster. */
export async function synthesizeConfigFileInParallel(options: SynthesizeOptions & ParallelOptions): Promise<ParallelSynthesis> {
  // One environment (--env) is one thread's work.
  const threads = options.environment !== undefined ? 1 : (options.threads ?? threadsForConfig(statSync(options.configFile, { throwIfNoEntry: false })?.size ?? 0));
  if (threads === 1) return { results: synthesizeConfigFile(options), unchanged: new Set() };
  // Started before the config is parsed, so that they load the code meanwhile; no more than
  // the cores before it is known how many environments there are.
  const workers = EnvironmentWorkers.start(options.entry, Math.min(threads - 1, availableParallelism()));
  try {
    const tasks = environmentTasks(options).map((task) => ({ ...task, compareWith: options.compareWith }));
    workers.add(Math.min(threads, tasks.length) - 1);
    return await workers.synthesize(tasks, (task) => synthesizeTask(task, options.catalog), options.onEnvironment);
  } finally {
    await workers.close();
  }
}

/** The validated config of each environment to synthesize; all problems of the file at once. */
function environmentTasks(options: SynthesizeOptions): EnvironmentTask[] {
  const { configFile, environment } = options;
  const config = loadConfigFile(configFile, options.catalog);
  const names = [...config.environments.keys()];
  if (environment !== undefined && !config.environments.has(environment)) {
    throw new UserError([`--env: expected one of the environments in ${configFile} (${names.join(', ')}), received "${environment}"`]);
  }
  const selected = environment !== undefined ? [environment] : names;
  return selected.map((name) => ({ configFile, environment: name, config: config.environments.get(name)! }));
}

/** One environment; problems found while building the graph (cycles, wave conflicts) point at the config file too. */
export function synthesizeTask(task: EnvironmentTask, catalog: Catalog): SynthesizedEnvironment {
  try {
    return synthesizeEnvironment(task.environment, task.config, catalog);
  } catch (error) {
    if (error instanceof UserError) throw new UserError(error.problems.map((p) => `${task.configFile}: environments.${task.environment}: ${p}`));
    throw error;
  }
}
