/**
 * `npm run synth [-- --config homelab.yaml] [--env prod] [--out k8s] [--docs docs/platform.md] [--check] [--quiet]`:
 * validate the homelab description and write the Argo CD app-of-apps and every service's
 * manifests to k8s/ and the diagrams of the platform to docs/platform.md (or, with --check,
 * only tell whether both are what the code produces).
 */
import { BUILTIN_CATALOG } from './charts/catalog';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CommandSpec, parseCommandLine, runCommand } from './lib/tools/cli';
import { colours } from './lib/util/colours';
import { changedFiles, readDirectoryTree, treeOf } from './lib/output/output-tree';
import { renderPlatformDoc } from './lib/output/platform-doc';
import { formatSummary } from './lib/output/summary';
import type { SynthesizedEnvironment } from './lib/output/synthesize';
import { synthesizeConfigFile } from './lib/output/synthesize-config';
import { writeOutput } from './lib/output/writer';

export const SYNTH_COMMAND: CommandSpec = {
  usage: 'npm run synth -- [--config <file>] [--env <name>] [--out <dir>] [--docs <file>] [--check] [--quiet]',
  description:
    'Validates the homelab description and writes the Argo CD app-of-apps and every service\'s manifests to the\n' +
    'output directory, all at once: on any error nothing is written. Progress goes to stderr, the summary to stdout.',
  options: {
    config: { type: 'string', value: '<file>', default: 'homelab.yaml', description: 'the homelab description' },
    env: { type: 'string', value: '<name>', description: 'only this environment; the others stay as they are' },
    out: { type: 'string', value: '<dir>', default: 'k8s', description: 'the output directory' },
    docs: { type: 'string', value: '<file>', description: 'the diagrams of the platform (default: <dir>/../docs/platform.md; not written with --env)' },
    check: { type: 'boolean', description: 'write nothing; list the files that would change (for CI)' },
    quiet: { type: 'boolean', description: 'print errors only' },
  },
  exitStatus: [
    '0  written (with --check: the output directory is what a synth would write)',
    '1  with --check: the output directory would change',
    '2  usage or config error; nothing was written',
  ],
};

export function main(argv: readonly string[]): number {
  const started = performance.now();
  return runCommand(() => {
    const parsed = parseCommandLine(SYNTH_COMMAND, argv);
    if (!parsed) return 0;
    const { config, env, out, check, quiet, ...values } = parsed.values as {
      config: string;
      env?: string;
      out: string;
      docs?: string;
      check?: boolean;
      quiet?: boolean;
    };
    // Beside the output directory, so a synth into a temporary directory stays there.
    const docs = values.docs ?? join(dirname(out.replace(/\/+$/, '')), 'docs', 'platform.md');
    const progress = colours(process.stderr);
    const results = synthesizeConfigFile({
      configFile: config,
      catalog: BUILTIN_CATALOG,
      environment: env,
      onEnvironment: quiet
        ? undefined
        : (result, { elapsedMs, done, total }) =>
            process.stderr.write(
              `${progress.dim(`[${done}/${total}]`)} ${result.environment}: ${result.services.length} services, ${result.files.size} files ${progress.dim(`(${(elapsedMs / 1000).toFixed(2)} s)`)}\n`,
            ),
    });
    // The diagrams cover every environment: a run for one of them leaves them as they are.
    const documents = new Map(env === undefined ? [[docs, renderPlatformDoc(results)]] : []);
    if (check) return checkOutput(results, documents, { outdir: out, partial: env !== undefined, quiet: quiet === true });
    writeOutput(results, { outdir: out, partial: env !== undefined, documents });
    if (!quiet) process.stdout.write(formatSummary(results, out, performance.now() - started, colours(process.stdout)));
    return 0;
  }, ['nothing was written; the output directory is unchanged']);
}

/** --check: compare with the output directory instead of writing it; list what would change. */
function checkOutput(
  results: readonly SynthesizedEnvironment[],
  documents: ReadonlyMap<string, string>,
  options: { outdir: string; partial: boolean; quiet: boolean },
): number {
  const outdir = options.outdir.replace(/\/+$/, '');
  const fresh = treeOf(results);
  const current = readDirectoryTree(outdir, options.partial ? results.map((r) => r.environment) : undefined);
  const changes = changedFiles(current, fresh).map(({ path, kind }) => `${kind.padEnd(8)} ${outdir}/${path}`);
  for (const [path, content] of documents) {
    if (!existsSync(path)) changes.push(`added    ${path}`);
    else if (readFileSync(path, 'utf8') !== content) changes.push(`changed  ${path}`);
  }
  if (changes.length === 0) {
    if (!options.quiet) process.stdout.write(`${outdir}/ is up to date: ${fresh.size} files match a fresh synth\n`);
    return 0;
  }
  const paint = colours(process.stderr);
  process.stderr.write(`${paint.red('error:')} ${outdir}/ differs from a fresh synth; ${changes.length} file${changes.length === 1 ? '' : 's'} would change:\n`);
  for (const change of changes) process.stderr.write(`  ${change}\n`);
  process.stderr.write(`run \`npm run synth\` and commit the changes (\`npm run diff\` shows the changed fields)\n`);
  return 1;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
