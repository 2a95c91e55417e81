/**
 * `npm run synth [-- --config homelab.yaml] [--env prod] [--out k8s] [--docs docs/platform.md] [--runbook docs/disaster-recovery.md] [--check] [--quiet] [--jobs n]`:
 * validate the homelab description and write the Argo CD app-of-apps and every service's
 * manifests to k8s/, the diagrams of the platform to docs/platform.md and the disaster-recovery
 * runbook to docs/disaster-recovery.md (or, with --check, only tell whether all are what the
 * code produces).
 */
import { BUILTIN_CATALOG } from './charts/catalog';
import { existsSync, lstatSync, readFileSync, symlinkSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { CommandSpec, countOption, parseCommandLine, runCommand, runCommandAsync } from './lib/tools/cli';
import { colours } from './lib/util/colours';
import { byCodeUnits } from './lib/util/text-order';
import { changedFiles, FileChange, readDirectory, treeOf } from './lib/output/output-tree';
import type { GeneratedDocument } from './lib/output/output-guard';
import { PLATFORM_DOC_HEADER, renderPlatformDoc } from './lib/output/platform-doc';
import { RECOVERY_DOC_HEADER, renderRecoveryDoc } from './lib/output/recovery-doc';
import { formatSummary } from './lib/output/summary';
import type { EnvironmentOutput } from './lib/output/synthesize';
import { PARALLEL_FROM_CONFIG_BYTES, serveEnvironments, WorkerEntry } from './lib/output/environment-workers';
import { SynthesizeOptions, synthesizeConfigFile, synthesizeConfigFileInParallel, synthesizeTask } from './lib/output/synthesize-config';
import { outputDirectory, prepareOutput, writeOutput } from './lib/output/writer';

export const SYNTH_COMMAND: CommandSpec = {
  usage: 'npm run synth -- [--config <file>] [--env <name>] [--out <dir>] [--docs <file>] [--runbook <file>] [--check] [--quiet] [--jobs <n>]',
  description:
    'Validates the homelab description and writes the Argo CD app-of-apps and every service\'s manifests to the\n' +
    'output directory, all at once: on any error nothing is written. Progress goes to stderr, the summary to stdout.',
  options: {
    config: { type: 'string', value: '<file>', default: 'homelab.yaml', description: 'the homelab description' },
    env: { type: 'string', value: '<name>', description: 'only this environment; the others stay as they are' },
    out: { type: 'string', value: '<dir>', default: 'k8s', description: 'the output directory' },
    docs: { type: 'string', value: '<file>', description: 'the diagrams of the platform (default: <dir>/../docs/platform.md; not written with --env)' },
    runbook: { type: 'string', value: '<file>', description: 'the disaster-recovery runbook (default: disaster-recovery.md beside --docs; not written with --env)' },
    check: { type: 'boolean', description: 'write nothing; list the files that would change (for CI)' },
    quiet: { type: 'boolean', description: 'print errors only' },
    jobs: {
      type: 'string',
      value: '<n>',
      description: `threads to synthesize environments on (default: for a config file of ${PARALLEL_FROM_CONFIG_BYTES / 1000} kB or more, about 300 own apps, one per CPU core and one more; else 1)`,
    },
  },
  exitStatus: [
    '0  written (with --check: the output directory is what a synth would write)',
    '1  with --check: the output directory would change',
    '2  usage or config error; nothing was written',
  ],
};

const AFTER_ERROR = ['nothing was written; the output directory is unchanged'];

/** In this process and thread (the tests call it so). */
export function main(argv: readonly string[]): number {
  return runCommand(() => {
    const run = prepare(argv);
    return typeof run === 'number' ? run : run.finish(synthesizeConfigFile(run.synthesis));
  }, AFTER_ERROR);
}

/**
 * The compiled CLI's synth (bin/run.cjs): as `main`, with the environments of a large config
 * synthesized in worker threads that `entry` starts (each calls `worker`).
 */
export function mainWithWorkers(argv: readonly string[], entry: WorkerEntry): Promise<number> {
  return runCommandAsync(async () => {
    const run = prepare(argv);
    if (typeof run === 'number') return run;
    const { results, unchanged } = await synthesizeConfigFileInParallel({ ...run.synthesis, entry, threads: run.threads, compareWith: run.compareWith });
    return run.finish(results, unchanged);
  }, AFTER_ERROR);
}

/** A worker thread started by mainWithWorkers: synthesizes the environments it is sent. */
export function worker(): void {
  serveEnvironments((task) => synthesizeTask(task, BUILTIN_CATALOG));
}

/** The command line read: what to synthesize, and what to do with the result (an exit status if there is nothing to do). */
function prepare(argv: readonly string[]):
  | number
  | { synthesis: SynthesizeOptions; threads?: number; compareWith?: string; finish: (results: EnvironmentOutput[], unchanged?: ReadonlySet<string>) => number } {
  const started = performance.now();
  const parsed = parseCommandLine(SYNTH_COMMAND, argv);
  if (!parsed) return 0;
  const { config, env, check, quiet, jobs, ...values } = parsed.values as {
    config: string;
    env?: string;
    out: string;
    docs?: string;
    runbook?: string;
    check?: boolean;
    quiet?: boolean;
    jobs?: string;
  };
  const out = outputDirectory(values.out);
  const threads = jobs === undefined ? undefined : countOption(SYNTH_COMMAND, 'jobs', jobs, 'threads');
  // Beside the output directory, so a synth into a temporary directory stays there.
  const docs = values.docs ?? join(dirname(out), 'docs', 'platform.md');
  const runbook = values.runbook ?? join(dirname(docs), 'disaster-recovery.md');
  // Markdown links use slashes on every platform.
  const runbookLink = relative(dirname(docs), runbook).split(sep).join('/');
  // The documents cover every environment: a run for one of them leaves them as they are.
  const documentPaths =
    env === undefined
      ? [
          { path: docs, header: PLATFORM_DOC_HEADER, option: '--docs', render: (results: EnvironmentOutput[]) => renderPlatformDoc(results, runbookLink) },
          { path: runbook, header: RECOVERY_DOC_HEADER, option: '--runbook', render: renderRecoveryDoc },
        ]
      : [];
  // Before the synthesis, so that a path synth must not write to is reported at once.
  prepareOutput(out, documentPaths);
  const progress = colours(process.stderr);
  const synthesis: SynthesizeOptions = {
    configFile: config,
    catalog: BUILTIN_CATALOG,
    environment: env,
    onEnvironment: quiet
      ? undefined
      : (result, { elapsedMs, done, total }) =>
          process.stderr.write(
            `${progress.dim(`[${done}/${total}]`)} ${result.environment}: ${result.services.length} services, ${result.files.size} files ${progress.dim(`(${(elapsedMs / 1000).toFixed(2)} s)`)}\n`,
          ),
  };
  const finish = (results: EnvironmentOutput[], unchanged?: ReadonlySet<string>) => {
    const documents = documentPaths.map(({ render, ...document }) => ({ ...document, content: render(results) }));
    if (check) return checkOutput(results, documents, { outdir: out, partial: env !== undefined, quiet: quiet === true });
    writeOutput(results, { outdir: out, partial: env !== undefined, documents, unchanged });
    linkCdk8sOutput(out);
    if (!quiet) process.stdout.write(formatSummary(results, out, performance.now() - started, colours(process.stdout)));
    return 0;
  };
  // The threads compare what they made with the output directory, unless nothing is to be written.
  return { synthesis, threads, compareWith: check ? undefined : out, finish };
}

/**
 * `npx cdk8s synth` removes cdk8s.yaml's `output` before it starts the app (cdk8s-cli's synth
 * command), so that `output` is a scratch name and never k8s/, which a config error or a kill
 * would otherwise leave gone. The app, run with it as CDK8S_OUTDIR, points it at the output
 * directory it wrote, where cdk8s-cli then finds the manifests. A path that exists is left alone:
 * cdk8s-cli has just removed its own, so it is someone else's.
 */
function linkCdk8sOutput(outdir: string): void {
  const cdk8sOutdir = process.env.CDK8S_OUTDIR;
  if (!cdk8sOutdir || resolve(cdk8sOutdir) === resolve(outdir)) return;
  try {
    lstatSync(cdk8sOutdir);
    return;
  } catch {
    // Absent, as it should be.
  }
  // A junction on Windows needs no privilege; elsewhere the type is ignored.
  symlinkSync(relative(dirname(resolve(cdk8sOutdir)), resolve(outdir)) || '.', cdk8sOutdir, 'junction');
}

/** --check: compare with the output directory instead of writing it; list what would change. */
function checkOutput(
  results: readonly EnvironmentOutput[],
  documents: readonly GeneratedDocument[],
  options: { outdir: string; partial: boolean; quiet: boolean },
): number {
  const { outdir } = options;
  const fresh = treeOf(results);
  const current = readDirectory(outdir, options.partial ? results.map((r) => r.environment) : undefined);
  // A link (never followed) is not the file a synth writes there, whatever it points to.
  const notRegular = new Set(current.others);
  const fileChanges: (FileChange & { note?: string })[] = [
    ...changedFiles(current.files, fresh).filter((change) => !notRegular.has(change.path)),
    ...current.others.map((path) => ({ path, kind: fresh.has(path) ? ('changed' as const) : ('removed' as const), note: ' (not a regular file)' })),
  ].sort((a, b) => byCodeUnits(a.path, b.path));
  const changes = fileChanges.map(({ path, kind, note }) => `${kind.padEnd(8)} ${outdir}/${path}${note ?? ''}`);
  for (const { path, content } of documents) {
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
