/**
 * A config file to synthesized environments, for the commands that synthesize (synth,
 * diff): every environment, or the one `--env` names.
 */
import type { Catalog } from '../model/catalog';
import { loadConfigFile } from '../model/config/load';
import type { EnvironmentConfig } from '../model/config/environment';
import { UserError } from '../util/errors';
import { SynthesizedEnvironment, synthesizeEnvironment } from './synthesize';

export interface SynthesizeOptions {
  readonly configFile: string;
  /** The services there are (the built-in catalog, charts/catalog.ts). */
  readonly catalog: Catalog;
  /** Only this environment. @default every environment in the file */
  readonly environment?: string;
  /** Called as each environment is done, e.g. to show progress. */
  readonly onEnvironment?: (result: SynthesizedEnvironment, progress: { elapsedMs: number; done: number; total: number }) => void;
}

export function synthesizeConfigFile(options: SynthesizeOptions): SynthesizedEnvironment[] {
  const { configFile, environment } = options;
  const config = loadConfigFile(configFile, options.catalog);
  const names = [...config.environments.keys()];
  if (environment !== undefined && !config.environments.has(environment)) {
    throw new UserError([`--env: expected one of the environments in ${configFile} (${names.join(', ')}), received "${environment}"`]);
  }
  const selected = environment !== undefined ? [environment] : names;
  return selected.map((name, i) => {
    const started = performance.now();
    const result = synthesizeOrExplain(configFile, name, config.environments.get(name)!, options.catalog);
    options.onEnvironment?.(result, { elapsedMs: performance.now() - started, done: i + 1, total: selected.length });
    return result;
  });
}

/** Problems found while building the graph (cycles, wave conflicts) point at the config file too. */
function synthesizeOrExplain(file: string, environment: string, config: EnvironmentConfig, catalog: Catalog): SynthesizedEnvironment {
  try {
    return synthesizeEnvironment(environment, config, catalog);
  } catch (error) {
    if (error instanceof UserError) throw new UserError(error.problems.map((p) => `${file}: environments.${environment}: ${p}`));
    throw error;
  }
}
