/**
 * `npm run diff [-- --base <rev>] [--format text|markdown] [--max-chars <n>] [--config <file>] [--env <name>]`:
 * what a fresh synth (in memory; k8s/ is not written) changes against the committed k8s/,
 * per environment and Argo CD Application, with the changed fields of every resource.
 */
import { BUILTIN_CATALOG } from '../charts/catalog';
import { CommandSpec, countOption, parseCommandLine, runCommandAsync, usageError } from '../lib/tools/cli';
import { builtInApi } from '../lib/tools/render/cluster-api';
import { renderTree } from '../lib/tools/render/rendered-diff';
import { SOURCE_CACHE_VARIABLE, SourceCaches } from '../lib/tools/render/sources';
import { CHART_CACHE_VARIABLE } from '../lib/tools/upstream/chart-archive';
import { colours } from '../lib/util/colours';
import { diffTrees } from '../lib/output/diff';
import { formatMarkdown, formatText, GITHUB_COMMENT_MAX_CHARS } from '../lib/output/diff-format';
import { readGitTreeWhile, treeOf } from '../lib/output/output-tree';
import { synthesizeConfigFile } from '../lib/output/synthesize-config';
import { recoverInterruptedWrites } from '../lib/output/atomic-replace';
import { resolve } from 'node:path';

export const DIFF_COMMAND: CommandSpec = {
  usage: 'npm run diff -- [--base <rev>] [--format text|markdown] [--max-chars <n>] [--config <file>] [--env <name>] [--out <dir>] [--rendered]',
  description:
    'Synthesizes in memory (writes nothing) and compares with the output directory as committed in a git revision:\n' +
    'per environment and Argo CD Application, the resources added, removed or changed, with the changed fields.',
  options: {
    base: { type: 'string', value: '<rev>', default: 'HEAD', description: 'the git revision to compare with (a branch, tag or commit)' },
    format: { type: 'string', value: '<format>', default: 'text', description: 'text, or markdown for a pull-request comment' },
    'max-chars': {
      type: 'string',
      value: '<n>',
      description: `with --format markdown: the longest the comment may be; past it, details are left out in steps (default: ${GITHUB_COMMENT_MAX_CHARS}, GitHub's limit)`,
    },
    config: { type: 'string', value: '<file>', default: 'homelab.yaml', description: 'the homelab description' },
    env: { type: 'string', value: '<name>', description: 'only this environment' },
    out: { type: 'string', value: '<dir>', default: 'k8s', description: 'the output directory, relative to the working directory' },
    rendered: { type: 'boolean', description: 'compare what Argo CD would apply: both sides rendered, upstream charts included (see npm run render)' },
    'chart-cache': { type: 'string', value: '<dir>', description: `with --rendered: a folder of chart archives, offline (or ${CHART_CACHE_VARIABLE})` },
    'source-cache': { type: 'string', value: '<dir>', description: `with --rendered: a folder of git sources, offline (or ${SOURCE_CACHE_VARIABLE})` },
  },
  exitStatus: ['0  no change', '1  changes (printed)', '2  usage, config or git error'],
};

const FORMATS = ['text', 'markdown'] as const;

export function main(argv: readonly string[], options: { cwd?: string } = {}): Promise<number> {
  return runCommandAsync(async () => {
    const parsed = parseCommandLine(DIFF_COMMAND, argv);
    if (!parsed) return 0;
    const values = parsed.values as {
      base: string;
      format: string;
      'max-chars'?: string;
      config: string;
      env?: string;
      out: string;
      rendered?: boolean;
      'chart-cache'?: string;
      'source-cache'?: string;
    };
    const { base, format, config, env, out } = values;
    if (!(FORMATS as readonly string[]).includes(format)) throw usageError(DIFF_COMMAND, `--format: expected one of ${FORMATS.join(', ')}, received "${format}"`);
    const maxChars = maxCharsOption(values['max-chars'], format);
    for (const cache of ['chart-cache', 'source-cache'] as const) {
      if (values[cache] !== undefined && !values.rendered) throw usageError(DIFF_COMMAND, `--${cache}: only with --rendered`);
    }
    // A synth killed while replacing the output left it to be finished (README: what a killed synth leaves).
    recoverInterruptedWrites(resolve(options.cwd ?? process.cwd(), out));
    // git lists the commit's files while this thread synthesizes; only those whose content differs from the synth's are read.
    const { commit, tree: committed, result: head } = await readGitTreeWhile(base, out, { cwd: options.cwd, environments: env !== undefined ? [env] : undefined }, () =>
      treeOf(synthesizeConfigFile({ configFile: config, catalog: BUILTIN_CATALOG, environment: env })),
    );
    const diff = values.rendered
      ? diffTrees(...(await renderBoth(committed, head, { charts: values['chart-cache'], git: values['source-cache'] })))
      : diffTrees(committed, head);
    const context = { base: `${base} (${commit.slice(0, 7)})`, outdir: out.replace(/\/+$/, '') };
    if (format === 'markdown') {
      const markdown = formatMarkdown(diff, context, { maxChars });
      process.stdout.write(markdown);
      if (maxChars !== undefined && markdown.length > maxChars) process.stderr.write(`warning: the totals alone are ${markdown.length} characters, more than --max-chars ${maxChars}\n`);
    } else {
      process.stdout.write(formatText(diff, context, colours(process.stdout)));
    }
    return diff.length > 0 ? 1 : 0;
  });
}

/** `--max-chars` as a number (only with Markdown, a whole number above 0), or undefined for formatMarkdown's default. */
function maxCharsOption(value: string | undefined, format: string): number | undefined {
  if (value === undefined) return undefined;
  if (format !== 'markdown') throw usageError(DIFF_COMMAND, '--max-chars: only with --format markdown');
  return countOption(DIFF_COMMAND, 'max-chars', value, 'characters');
}

/** Both trees rendered, the base first (one render, so charts rendered with the same values are rendered once). */
async function renderBoth(base: ReadonlyMap<string, string>, head: ReadonlyMap<string, string>, caches: SourceCaches): Promise<[Map<string, string>, Map<string, string>]> {
  const cluster = { ...builtInApi(), caches };
  return [await renderTree(base, cluster), await renderTree(head, cluster)];
}

if (require.main === module) void main(process.argv.slice(2)).then((status) => (process.exitCode = status));
