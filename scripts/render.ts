/**
 * `npm run render [-- --env prod] [--out .rendered] [--check]`: everything Argo CD would apply
 * for each Application of each environment (lib/tools/render), written one object a file to
 * a git-ignored folder for reading and diffing; with `--check`, the whole-cluster checks over
 * it (lib/tools/render/checks.ts).
 */
import { join } from 'node:path';
import { CommandSpec, parseCommandLine, runCommandAsync, usageError } from '../lib/tools/cli';
import { UserError } from '../lib/util/errors';
import { builtInApi } from '../lib/tools/render/cluster-api';
import { SOURCE_CACHE_VARIABLE } from '../lib/tools/render/sources';
import { CHART_CACHE_VARIABLE } from '../lib/tools/upstream/chart-archive';
import { renderEnvironment, RenderedObject } from '../lib/tools/render/render';
import { renderedTreeRefusal, writeRenderedTree } from '../lib/tools/render/rendered-tree';
import { checkRendered } from '../lib/tools/render/checks';
import { readdirSync, existsSync } from 'node:fs';

const RENDER_COMMAND: CommandSpec = {
  usage: 'npm run render -- [--env <name>] [--from <dir>] [--out <dir>] [--check] [--chart-cache <dir>] [--source-cache <dir>]',
  description:
    'Renders every Application of the synthesized environments as Argo CD would: the upstream Helm charts with our values\n' +
    '(helm template), the upstream kustomize and git folders, and our own manifests; writes one file per object into --out.\n' +
    'With --check, runs the whole-cluster checks over the rendered set and exits 1 on a problem.',
  options: {
    env: {
      type: 'string',
      value: '<name>',
      description: 'render only this environment',
    },
    from: {
      type: 'string',
      value: '<dir>',
      description: 'the synthesized output to render',
      default: 'k8s',
    },
    out: {
      type: 'string',
      value: '<dir>',
      description: 'where to write the rendered objects (replaced)',
      default: '.rendered',
    },
    check: {
      type: 'boolean',
      description: 'run the whole-cluster checks; exit 1 on a problem',
    },
    'chart-cache': {
      type: 'string',
      value: '<dir>',
      description: `a folder of chart archives to take charts from, offline (or ${CHART_CACHE_VARIABLE})`,
    },
    'source-cache': {
      type: 'string',
      value: '<dir>',
      description: `a folder of git sources (<owner>/<repo>/<revision>/<path>), offline (or ${SOURCE_CACHE_VARIABLE})`,
    },
  },
  exitStatus: ['0  rendered (and the checks passed)', '1  a whole-cluster check failed', '2  a usage error, a missing tool or source, or a chart that does not render'],
};

export function main(argv: readonly string[]): Promise<number> {
  return runCommandAsync(async () => {
    const parsed = parseCommandLine(RENDER_COMMAND, argv);
    if (!parsed) return 0;
    const values = parsed.values as {
      env?: string;
      from: string;
      out: string;
      check?: boolean;
      'chart-cache'?: string;
      'source-cache'?: string;
    };
    const environments = values.env ? [values.env] : environmentsIn(values.from);
    if (values.env && !existsSync(join(values.from, values.env))) throw usageError(RENDER_COMMAND, `--env: no environment ${values.env} in ${values.from}`);
    // Before the minutes of rendering: where the result will go.
    const refusal = renderedTreeRefusal(values.out, values.from);
    if (refusal) throw new UserError([refusal]);
    const { apiVersions, clusterScoped } = builtInApi();
    const rendered = new Map<string, RenderedObject[]>();
    for (const environment of environments) {
      const started = performance.now();
      const objects = await renderEnvironment({
        outdir: values.from,
        environment,
        apiVersions,
        clusterScoped,
        caches: { charts: values['chart-cache'], git: values['source-cache'] },
      });
      rendered.set(environment, objects);
      process.stderr.write(
        `${environment}: ${objects.length} objects of ${new Set(objects.map((o) => o.application)).size} Applications (${((performance.now() - started) / 1000).toFixed(1)} s)\n`,
      );
    }
    writeRenderedTree(values.out, values.from, rendered, {
      partial: values.env !== undefined,
    });
    if (!values.check) return 0;
    const problems = checkRendered(rendered);
    for (const problem of problems) process.stdout.write(`${problem}\n`);
    process.stderr.write(problems.length === 0 ? 'whole-cluster checks: no problem\n' : `whole-cluster checks: ${problems.length} problems\n`);
    return problems.length === 0 ? 0 : 1;
  });
}

function environmentsIn(dir: string): string[] {
  if (!existsSync(dir)) throw new UserError([`${dir}: no such folder; run \`npm run synth\` first`]);
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(dir, entry.name, 'apps')))
    .map((entry) => entry.name)
    .sort();
}

if (require.main === module) void main(process.argv.slice(2)).then((status) => (process.exitCode = status));
