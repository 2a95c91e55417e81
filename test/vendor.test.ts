/**
 * vendor/ holds every upstream input the project reads (ADR 25), at the versions of
 * charts/versions.ts (that imports/ is what `npm run import` makes from it is CI's `import --check`); `npm run upgrade`'s
 * refresh (scripts/refresh-vendor.ts) takes the inputs again for a bumped version, offline from a
 * chart cache, and leaves vendor/ as it was when something cannot be fetched. The refresh tests
 * run on inputs of their own: a tiny chart archive built here and CRD files served from memory.
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHARTS, CRD_RELEASES, KUSTOMIZATIONS, MANIFESTS } from '../charts/versions';
import type { ChartReference } from '../lib/model/sources';
import { download } from '../lib/tools/upstream/chart-archive';
import { UserError } from '../lib/util/errors';
import { npmCommandArgs } from '../lib/util/npm-scripts';
import { cdk8sImports, expectedCdk8sImports } from '../scripts/import-crds';
import { HELM_VALUES_IMPORTS } from '../scripts/import-helm-values';
import { refreshVendor, selectCrds, withoutConditional } from '../scripts/refresh-vendor';
import { chartIsCurrent, crdModuleIsCurrent, crdModules, KUBERNETES_DEFINITIONS, readLock, staleInputs, UpstreamInputs, VENDOR_DIR } from '../scripts/upstream-inputs';
import { readTree, ROOT, tempDir, userErrorOf } from './support';
import { chartTgz } from './tar';

describe('vendor/', () => {
  it('holds the inputs of the pinned versions, unedited (after a version bump: `npm run upgrade`)', () => {
    expect(staleInputs()).toEqual([]);
  });

  it('counts an input as stale once its version in the table changes', () => {
    const lock = readLock();
    const [chart] = Object.values(CHARTS);
    expect(chartIsCurrent(VENDOR_DIR, lock, chart)).toBe(true);
    expect(chartIsCurrent(VENDOR_DIR, lock, { ...chart, version: `${chart.version}-next` })).toBe(false);
    const [module, sources] = Object.entries(crdModules())[0];
    const bumped = sources.map((source) => ('url' in source ? { ...source, url: source.url.replace(/\/(v?\d[^/]*)\//, '/$1-next/') } : source));
    expect(crdModuleIsCurrent(VENDOR_DIR, lock, module, sources)).toBe(true);
    expect(crdModuleIsCurrent(VENDOR_DIR, lock, module, bumped)).toBe(false);
  });

  it('takes every CRD file from a release the versions table pins', () => {
    const versions = [
      ...Object.values(CHARTS).map((chart) => chart.version),
      ...[...Object.values(KUSTOMIZATIONS), ...Object.values(MANIFESTS), ...Object.values(CRD_RELEASES)].map((source) => source.revision),
    ].map((version) => version.replace(/^v/, ''));
    for (const [module, sources] of Object.entries(crdModules())) {
      for (const source of sources) {
        if ('chart' in source) {
          // A chart template: the chart exactly as pinned.
          expect(Object.values(CHARTS).some((c) => c.chart === source.chart.chart && c.version === source.chart.version && c.repoURL === source.chart.repoURL), module).toBe(true);
          continue;
        }
        const tag = /^https:\/\/raw\.githubusercontent\.com\/[^/]+\/[^/]+\/v?([^/]+)\//.exec(source.url)?.[1];
        expect(versions, `${module}: ${source.url}`).toContain(tag);
      }
    }
  });

  it('is where cdk8s.yaml imports each CRD module from', () => {
    expect([...cdk8sImports()]).toEqual([...expectedCdk8sImports()]);
  });

  it('holds the charts whose values are typed: those of the versions table', () => {
    expect(Object.keys(HELM_VALUES_IMPORTS).sort()).toEqual(Object.values(CHARTS).map((chart) => chart.chart).sort());
  });
});

// ---- the refresh, on inputs of its own ----

const CRD = (name: string, kind: string) =>
  `apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: ${name}\nspec:\n  group: example.org\n  names: { kind: ${kind} }\n`;

/** What the fake upstream serves, by URL. */
const UPSTREAM: Record<string, string> = {
  'https://example.org/widgets/v1/widgets.yaml': `# license header\n---\n${CRD('widgets.example.org', 'Widget')}`,
  'https://example.org/all/v1/all.yaml': `${CRD('gadgets.example.org', 'Gadget')}---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: operator\n---\n${CRD('gizmos.example.org', 'Gizmo')}`,
  'https://example.org/k8s/definitions.json': '{"definitions": {}}\n',
};
const fakeDownload = async (url: string): Promise<Buffer> => {
  if (!(url in UPSTREAM)) throw new UserError([`cannot download ${url}: HTTP 404 Not Found`]);
  return Buffer.from(UPSTREAM[url]);
};

function demoChart(version: string): ChartReference {
  return { repoURL: 'https://charts.example.org', chart: 'demo', version };
}

/** A vendor folder, a chart cache with demo 1.0.0, and the inputs pinning them. */
function fixture(version = '1.0.0') {
  const root = tempDir();
  const cache = join(root, 'cache');
  const inputs: UpstreamInputs = {
    dir: join(root, 'vendor'),
    charts: new Map([['demo', demoChart(version)]]),
    crdModules: {
      widgets: [{ url: 'https://example.org/widgets/v1/widgets.yaml' }],
      gadgets: [{ url: 'https://example.org/all/v1/all.yaml', crds: ['gadgets.example.org'] }],
    },
    kubernetesUrl: 'https://example.org/k8s/definitions.json',
  };
  mkdirSync(cache);
  writeFileSync(
    join(cache, 'demo-1.0.0.tgz'),
    chartTgz('demo', '1.0.0', { 'values.yaml': 'replicas: 1\n', 'values.schema.json': '{}\n', 'templates/deployment.yaml': 'kind: Deployment\n' }),
  );
  return { root, cache, inputs, refresh: (options: { force?: boolean; inputs?: UpstreamInputs } = {}) => refreshVendor({ chartCache: cache, download: fakeDownload, inputs, ...options }) };
}


describe('refreshVendor', () => {
  it("vendors the chart's Chart.yaml, values.yaml and values.schema.json, the selected CRDs and the definitions, with a lock", async () => {
    const { inputs, refresh } = fixture();
    expect(await refresh()).toEqual([
      'vendor/charts/demo: demo 1.0.0 (added)',
      'vendor/crds/widgets.yaml: from https://example.org/widgets/v1/widgets.yaml',
      'vendor/crds/gadgets.yaml: from https://example.org/all/v1/all.yaml',
      'vendor/kubernetes: from https://example.org/k8s/definitions.json',
    ]);
    const tree = readTree(inputs.dir);
    expect([...tree.keys()].sort()).toEqual([
      'charts/demo/Chart.yaml',
      'charts/demo/values.schema.json',
      'charts/demo/values.yaml',
      'crds/gadgets.yaml',
      'crds/widgets.yaml',
      `kubernetes/${KUBERNETES_DEFINITIONS}`,
      'lock.json',
    ]);
    expect(tree.get('charts/demo/values.yaml')).toBe('replicas: 1\n');
    expect(tree.get('crds/gadgets.yaml')).toBe(`---\n${CRD('gadgets.example.org', 'Gadget').trimEnd()}\n`);
    expect(readLock(inputs.dir)!.charts.demo).toMatchObject({ repoURL: 'https://charts.example.org', version: '1.0.0', archive: 'demo-1.0.0.tgz' });
    expect(staleInputs(inputs)).toEqual([]);
  });

  it('changes nothing when all is current, and with --force reproduces every file byte for byte from the cache and the URLs', async () => {
    const { inputs, refresh } = fixture();
    await refresh();
    const vendored = readTree(inputs.dir);
    expect(await refresh()).toEqual([]);
    expect(await refresh({ force: true })).toEqual([]);
    expect(readTree(inputs.dir)).toEqual(vendored);
  });

  it('takes an edited or deleted file again', async () => {
    const { inputs, refresh } = fixture();
    await refresh();
    const vendored = readTree(inputs.dir);
    writeFileSync(join(inputs.dir, 'charts', 'demo', 'values.yaml'), 'replicas: 5\n');
    rmSync(join(inputs.dir, 'crds', 'widgets.yaml'));
    expect(staleInputs(inputs)).toEqual(['vendor/charts/demo: not chart demo 1.0.0 as pinned', 'vendor/crds/widgets.yaml: not the CRDs of the pinned release']);
    expect(await refresh()).toEqual([
      'vendor/charts/demo: restored (its files were not the ones vendor/lock.json records)',
      'vendor/crds/widgets.yaml: restored (its files were not the ones vendor/lock.json records)',
    ]);
    expect(readTree(inputs.dir)).toEqual(vendored);
  });

  it('fails on a bump to a version the chart cache lacks, naming it, and leaves vendor/ as it was', async () => {
    const { cache, inputs, refresh } = fixture();
    await refresh();
    const vendored = readTree(inputs.dir);
    const bumped: UpstreamInputs = { ...inputs, charts: new Map([['demo', demoChart('1.0.1')]]) };
    expect(await userErrorOf(refresh({ inputs: bumped }))).toContain(`chart demo 1.0.1 is not in the chart cache ${cache} (no demo-1.0.1.tgz)`);
    expect(readTree(inputs.dir)).toEqual(vendored);
    expect(staleInputs(bumped)).toEqual(['vendor/charts/demo: not chart demo 1.0.1 as pinned']);

    writeFileSync(join(cache, 'demo-1.0.1.tgz'), chartTgz('demo', '1.0.1', { 'values.yaml': 'replicas: 2\n' }));
    expect(await refresh({ inputs: bumped })).toEqual(['vendor/charts/demo: demo 1.0.0 -> 1.0.1 (Chart.yaml, values.schema.json, values.yaml changed)']);
    expect(readFileSync(join(inputs.dir, 'charts', 'demo', 'values.yaml'), 'utf8')).toBe('replicas: 2\n');
    expect(staleInputs(bumped)).toEqual([]);
  });

  it('refuses an archive that is another version than its name says', async () => {
    const { cache, inputs, refresh } = fixture();
    writeFileSync(join(cache, 'demo-1.0.2.tgz'), chartTgz('demo', '1.0.0'));
    const bumped: UpstreamInputs = { ...inputs, charts: new Map([['demo', demoChart('1.0.2')]]) };
    expect(await userErrorOf(refresh({ inputs: bumped }))).toBe(`${join(cache, 'demo-1.0.2.tgz')}: its Chart.yaml says version 1.0.0, the versions table pins demo 1.0.2`);
  });

  it('fails offline naming the URL, and leaves vendor/ as it was', async () => {
    const { inputs, refresh } = fixture();
    await refresh();
    const vendored = readTree(inputs.dir);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/widgets/v2/widgets.yaml`;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const bumped: UpstreamInputs = { ...inputs, crdModules: { ...inputs.crdModules, widgets: [{ url }] } };
    expect(await userErrorOf(refreshVendor({ inputs: bumped, download }))).toMatch(new RegExp(`^cannot download ${url.replace(/[.]/g, '\\.')}: ECONNREFUSED`));
    expect(readTree(inputs.dir)).toEqual(vendored);
  });

  it('removes what is no longer pinned', async () => {
    const { inputs, refresh } = fixture();
    await refresh();
    const fewer: UpstreamInputs = { ...inputs, charts: new Map(), crdModules: { widgets: inputs.crdModules.widgets } };
    expect(await refresh({ inputs: fewer })).toEqual(['vendor/charts/demo: removed (no longer pinned)', 'vendor/crds/gadgets.yaml: removed (no longer pinned)']);
    expect([...readTree(inputs.dir).keys()].sort()).toEqual(['crds/widgets.yaml', `kubernetes/${KUBERNETES_DEFINITIONS}`, 'lock.json']);
    expect(staleInputs(fewer)).toEqual([]);
  });

  it("removes another Kubernetes version's definitions, left from before a move to a new version", async () => {
    const { inputs, refresh } = fixture();
    await refresh();
    const vendored = readTree(inputs.dir);
    writeFileSync(join(inputs.dir, 'kubernetes', 'v1.0.0_definitions.json'), '{}\n');
    expect(staleInputs(inputs)).toEqual(['vendor/kubernetes/v1.0.0_definitions.json: no longer pinned']);
    expect(await refresh()).toEqual(['vendor/kubernetes/v1.0.0_definitions.json: removed (no longer pinned)']);
    expect(readTree(inputs.dir)).toEqual(vendored);
  });
});

describe('npm run upgrade', () => {
  it('fails with an error line and exit 2, writing nothing, when a chart cannot be had', () => {
    const before = readTree(VENDOR_DIR);
    const missing = join(tempDir(), 'no-such-cache');
    const result = spawnSync(process.execPath, [...npmCommandArgs('upgrade'), '--chart-cache', missing, '--force'], { cwd: ROOT, encoding: 'utf8' });
    expect(result.status).toBe(2);
    expect(result.stderr).toBe(`error: chart cache ${missing}: no such folder (from --chart-cache or HOMELAB_CHART_CACHE)\n`);
    expect(readTree(VENDOR_DIR)).toEqual(before);
  });
});

describe('CRDs from a chart template', () => {
  const template = `{{- if .Values.crds.create }}\n---\n${CRD('widgets.example.org', 'Widget')}---\n${CRD('gadgets.example.org', 'Gadget')}{{- end }}\n`;

  it('takes the selected CRDs out of the pinned chart\'s archive, without the if around them, and locks chart and template', async () => {
    const { inputs, cache, refresh } = fixture();
    writeFileSync(join(cache, 'demo-1.0.0.tgz'), chartTgz('demo', '1.0.0', { 'values.yaml': 'replicas: 1\n', 'templates/crds/crds.yaml': template }));
    const source = { chart: demoChart('1.0.0'), template: 'templates/crds/crds.yaml', crds: ['gadgets.example.org'] };
    const withTemplate: UpstreamInputs = { ...inputs, crdModules: { gadgets: [source] } };
    expect(await refresh({ inputs: withTemplate })).toContain('vendor/crds/gadgets.yaml: from demo@1.0.0');
    expect(readFileSync(join(inputs.dir, 'crds', 'gadgets.yaml'), 'utf8')).toBe(`---\n${CRD('gadgets.example.org', 'Gadget')}`);
    expect(readLock(inputs.dir)!.crds.gadgets.sources).toEqual([source]);
    // Current now: a second refresh takes nothing again.
    expect(await refresh({ inputs: withTemplate })).toEqual([]);
  });

  it('refuses a template with expressions besides the if, naming it', () => {
    expect(withoutConditional(template, 't')).not.toContain('{{');
    expect(() => withoutConditional(`${template}  name: {{ .Release.Name }}\n`, 'demo-1.0.0.tgz templates/crds/crds.yaml')).toThrow(
      'demo-1.0.0.tgz templates/crds/crds.yaml: holds template expressions besides an if around the CRDs',
    );
  });
});

describe('selectCrds', () => {
  it('names the URL when a selected CRD is missing, or a file of CRDs holds something else', () => {
    const all = UPSTREAM['https://example.org/all/v1/all.yaml'];
    expect(() => selectCrds(all, { url: 'u', crds: ['gadgets.example.org', 'sprockets.example.org'] })).toThrow('u: no CustomResourceDefinition sprockets.example.org');
    expect(() => selectCrds(all, { url: 'u' })).toThrow('u: expected only CustomResourceDefinitions');
    expect(selectCrds(all, { url: 'u', crds: ['gizmos.example.org'] })).toEqual([CRD('gizmos.example.org', 'Gizmo').trimEnd()]);
  });
});
