/**
 * `npm run upgrade`: the step after a version bump in charts/versions.ts (by hand or by a
 * Renovate pull request). Refreshes the vendored upstream inputs for the pinned versions
 * (scripts/refresh-vendor.ts), regenerates imports/ from them, and re-synthesizes k8s/ and
 * docs/platform.md in a fresh process (the CRD classes just regenerated are compiled into it),
 * printing what changed at each step. ADR 25.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { changedFiles, readDirectoryTree } from '../lib/output/output-tree';
import { CommandSpec, parseCommandLine, runCommandAsync } from '../lib/tools/cli';
import { CHART_CACHE_VARIABLE, chartCacheOption } from '../lib/tools/upstream/chart-archive';
import { npmCommandArgs } from '../lib/util/npm-scripts';
import { projectRoot } from '../lib/util/project';
import { importAll } from './import';
import { refreshVendor } from './refresh-vendor';

const UPGRADE_COMMAND: CommandSpec = {
  usage: 'npm run upgrade -- [options]',
  description:
    'Brings vendor/ in line with charts/versions.ts (chart values and schemas from the pinned chart archives, CRDs and the\n' +
    'Kubernetes definitions from their URLs; only what changed is fetched), regenerates imports/ and runs `npm run synth`.\n' +
    `Charts come from their Helm repositories (OCI registries need helm), or from --chart-cache / ${CHART_CACHE_VARIABLE}.`,
  options: {
    'chart-cache': { type: 'string', value: '<dir>', description: `a folder of <chart>-<version>.tgz archives to take the charts from, offline (default: $${CHART_CACHE_VARIABLE}, else download)` },
    force: { type: 'boolean', description: 'fetch every input again, also those whose version did not change' },
  },
  exitStatus: ['0  vendor/, imports/ and k8s/ are current', '1  generation or synthesis failed', '2  usage error, a download failed (offline?), a chart is not in the chart cache, or the config is invalid'],
};

export function main(argv: readonly string[]): Promise<number> {
  return runCommandAsync(async () => {
    const parsed = parseCommandLine(UPGRADE_COMMAND, argv);
    if (!parsed) return 0;
    const root = projectRoot();
    const vendored = await refreshVendor({ chartCache: chartCacheOption(parsed.values['chart-cache'] as string | undefined), force: parsed.values.force === true });
    report('vendor/', vendored.length > 0 ? vendored : ['current']);

    const before = readDirectoryTree(join(root, 'imports'));
    await importAll();
    const imports = changedFiles(before, readDirectoryTree(join(root, 'imports')));
    report('imports/', imports.length > 0 ? imports.map(({ path, kind }) => `${kind} imports/${path}`) : ['unchanged']);

    process.stdout.write('synth:\n');
    const synth = spawnSync(process.execPath, npmCommandArgs('synth', root), { cwd: root, stdio: 'inherit' });
    if (synth.status !== 0) return synth.status ?? 1;
    process.stdout.write('next: `npm run build && npm test`, then commit vendor/, imports/, k8s/, docs/platform.md and docs/disaster-recovery.md with the version bump\n');
    return 0;
  });
}

function report(title: string, lines: readonly string[]): void {
  process.stdout.write(`${title}\n${lines.map((line) => `  ${line}\n`).join('')}`);
}

if (require.main === module) void main(process.argv.slice(2)).then((status) => (process.exitCode = status));
