/**
 * `npm run synth [-- --config homelab.yaml] [--env prod] [--out k8s] [--docs docs/platform.md]`:
 * validate the homelab description and write the Argo CD app-of-apps and every service's
 * manifests to k8s/, and the diagrams of the platform to docs/platform.md.
 */
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from './lib/config/load';
import { UserError } from './lib/errors';
import { renderPlatformDoc } from './lib/platform-doc';
import { formatSummary } from './lib/summary';
import type { EnvironmentConfig } from './lib/config/schema';
import { SynthesizedEnvironment, synthesizeEnvironment } from './lib/synth';
import { writeOutput } from './lib/writer';

const USAGE = 'usage: npm run synth -- [--config homelab.yaml] [--env <name>] [--out k8s] [--docs <out>/../docs/platform.md]';

export function main(argv: readonly string[]): number {
  const started = performance.now();
  try {
    const options = parseOptions(argv);
    const config = loadConfigFile(options.config);
    const names = [...config.environments.keys()];
    if (options.env !== undefined && !config.environments.has(options.env)) {
      throw new UserError([`--env: expected one of the environments in ${options.config} (${names.join(', ')}), received "${options.env}"`]);
    }
    const selected = options.env !== undefined ? [options.env] : names;
    const results = selected.map((name) => synthesizeOrExplain(options.config, name, config.environments.get(name)!));
    // The diagrams cover every environment: a run for one of them leaves them as they are.
    const documents = new Map(options.env === undefined ? [[options.docs, renderPlatformDoc(results)]] : []);
    writeOutput(results, { outdir: options.out, partial: options.env !== undefined, documents });
    process.stdout.write(formatSummary(results, options.out, performance.now() - started));
    return 0;
  } catch (error) {
    if (error instanceof UserError) {
      for (const problem of error.problems) process.stderr.write(`error: ${problem}\n`);
      process.stderr.write(`nothing was written; k8s output is unchanged\n`);
      return 1;
    }
    throw error;
  }
}

/** Problems found while building the graph (cycles, wave conflicts) point at the config file too. */
function synthesizeOrExplain(file: string, environment: string, config: EnvironmentConfig): SynthesizedEnvironment {
  try {
    return synthesizeEnvironment(environment, config);
  } catch (error) {
    if (error instanceof UserError) throw new UserError(error.problems.map((p) => `${file}: environments.${environment}: ${p}`));
    throw error;
  }
}

function parseOptions(argv: readonly string[]): { config: string; env?: string; out: string; docs: string } {
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        config: { type: 'string', default: 'homelab.yaml' },
        env: { type: 'string' },
        out: { type: 'string', default: 'k8s' },
        // Beside the output directory, so a synth into a temporary directory stays there.
        docs: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    });
    const docs = values.docs ?? join(dirname(values.out!.replace(/\/+$/, '')), 'docs', 'platform.md');
    return { config: values.config!, env: values.env, out: values.out!, docs };
  } catch (error) {
    throw new UserError([`${(error as Error).message}`, USAGE]);
  }
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
