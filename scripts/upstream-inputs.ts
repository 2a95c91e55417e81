/**
 * The upstream files the project reads at import and test time, all vendored under vendor/
 * (ADR 25), and derived from the versions table (charts/versions.ts), so that a version bump
 * there names the new inputs:
 *   vendor/charts/<chart>/   Chart.yaml, values.yaml, values.schema.json of each pinned chart
 *   vendor/crds/<module>.yaml  the CRDs of each module of imports/ (cdk8s.yaml lists the modules)
 *   vendor/kubernetes/       the Kubernetes OpenAPI definitions imports/schemas checks against
 *   vendor/lock.json         what each came from (URL, version, sha256): written by `npm run upgrade`
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { CHARTS, CRD_RELEASES, KUSTOMIZATIONS, MANIFESTS } from '../charts/versions';
import { KUBERNETES_VERSION } from '../lib/model/kubernetes';
import type { ChartReference } from '../lib/model/sources';
import { sha256 } from '../lib/tools/upstream/chart-archive';
import { projectRoot } from '../lib/util/project';

export const VENDOR_DIR = join(projectRoot(), 'vendor');
export const VENDORED_CHARTS = join(VENDOR_DIR, 'charts');

/** What is vendored, and where: the versions table's inputs in vendor/ (pinnedInputs), or a test's. */
export interface UpstreamInputs {
  readonly dir: string;
  /** By chart name (its folder under charts/). */
  readonly charts: ReadonlyMap<string, ChartReference>;
  /** The CRD files of each module of imports/. */
  readonly crdModules: Readonly<Record<string, readonly CrdSource[]>>;
  /** The Kubernetes OpenAPI definitions. */
  readonly kubernetesUrl: string;
}

export function pinnedInputs(): UpstreamInputs {
  return { dir: VENDOR_DIR, charts: vendoredCharts(), crdModules: crdModules(), kubernetesUrl: KUBERNETES_DEFINITIONS_URL };
}

export const lockFile = (dir: string) => join(dir, 'lock.json');
export const chartFolder = (dir: string, chart: string) => join(dir, 'charts', chart);
export const crdFile = (module: string, dir = VENDOR_DIR) => join(dir, 'crds', `${module}.yaml`);
/** The Kubernetes definitions of the targeted version, `v1.34.0_definitions.json` (the upstream file's name, with its folder's). */
export const KUBERNETES_DEFINITIONS = `${KUBERNETES_VERSION}.0_definitions.json`;
export const kubernetesFile = (dir = VENDOR_DIR) => join(dir, 'kubernetes', KUBERNETES_DEFINITIONS);

/** The files of a chart the typed values are generated from (scripts/import-helm-values.ts); the schema only where the chart has one. */
export const CHART_FILES = ['Chart.yaml', 'values.yaml', 'values.schema.json'] as const;

/** One upstream file of CRDs: a raw file at a release URL, or a template of a pinned chart. */
export type CrdSource = UrlCrdSource | ChartTemplateCrdSource;

interface CrdSelection {
  /** The CRDs to take (by metadata.name) from a file that holds more objects. @default all of its documents, each a CRD */
  readonly crds?: readonly string[];
}

export interface UrlCrdSource extends CrdSelection {
  readonly url: string;
}

/**
 * A template of a pinned chart that only wraps plain CRDs in an `if` (cloudnative-pg's
 * templates/crds/crds.yaml), or a plain file of its crds/ folder (external-dns), taken from the
 * chart's archive — a chart cache folder serves it offline — without those lines: for charts
 * whose CRDs are nowhere else as plain files at a tag that is the chart's version.
 */
export interface ChartTemplateCrdSource extends CrdSelection {
  readonly chart: ChartReference;
  /** Path of the template in the chart, e.g. `templates/crds/crds.yaml`. */
  readonly template: string;
}

/** How a source is named in messages: its URL, or `<chart>-<version>.tgz <template>`. */
export function crdSourceName(source: CrdSource): string {
  return 'url' in source ? source.url : `${source.chart.chart}-${source.chart.version}.tgz ${source.template}`;
}

/**
 * The OpenAPI definitions of the targeted Kubernetes version (KUBERNETES_VERSION), from the cdk8s
 * repository at a fixed commit (the one that holds v1.34.0 in the form `cdk8s import` reads,
 * cdk8s-team/cdk8s#2799): the version the cdk8s-plus line of package.json types, so the two move together.
 */
const KUBERNETES_DEFINITIONS_URL = `https://raw.githubusercontent.com/cdk8s-team/cdk8s/71f8cba7ecc809d861e837e842217202d5e5a16c/kubernetes-schemas/${KUBERNETES_VERSION}.0/_definitions.json`;

/** Each pinned chart, by chart name (its folder under vendor/charts). */
function vendoredCharts(): ReadonlyMap<string, ChartReference> {
  return new Map(Object.values(CHARTS).map((chart) => [chart.chart, chart]));
}

/** The CRD files of each module of imports/, at the versions the table pins. */
export function crdModules(): Readonly<Record<string, readonly CrdSource[]>> {
  const argocd = githubRaw(CRD_RELEASES.argocd.repoURL, CRD_RELEASES.argocd.revision);
  const clusterOperator = githubRaw(KUSTOMIZATIONS.rabbitmqClusterOperator.repoURL, KUSTOMIZATIONS.rabbitmqClusterOperator.revision);
  const topologyOperator = githubRaw(KUSTOMIZATIONS.rabbitmqTopologyOperator.repoURL, KUSTOMIZATIONS.rabbitmqTopologyOperator.revision);
  const prometheusOperator = githubRaw(MANIFESTS.prometheusOperatorCrds.repoURL, MANIFESTS.prometheusOperatorCrds.revision);
  const kuberay = githubRaw('https://github.com/ray-project/kuberay', tag(CHARTS.kuberayOperator.version));
  const traefik = githubRaw('https://github.com/traefik/traefik-helm-chart', tag(CHARTS.traefik.version));
  const certManager = githubRaw('https://github.com/cert-manager/cert-manager', tag(CHARTS.certManager.version));
  const externalSecrets = githubRaw('https://github.com/external-secrets/external-secrets', tag(CHARTS.externalSecrets.version));
  const longhorn = githubRaw('https://github.com/longhorn/longhorn', tag(CHARTS.longhorn.version));
  const chartTemplate = (chart: ChartReference, template: string, crds: readonly string[]): CrdSource[] => [
    { chart: { repoURL: chart.repoURL, chart: chart.chart, version: chart.version }, template, crds },
  ];
  const files = (at: (path: string) => string, paths: readonly string[]): CrdSource[] => paths.map((path) => ({ url: at(path) }));
  return {
    'argocd-application': files(argocd, ['manifests/crds/application-crd.yaml']),
    'argocd-appproject': files(argocd, ['manifests/crds/appproject-crd.yaml']),
    // The chart's CRDs are templates; the release's rendered manifest holds them as plain YAML.
    longhorn: [{ url: longhorn('deploy/longhorn.yaml'), crds: ['backups.longhorn.io', 'backuptargets.longhorn.io', 'recurringjobs.longhorn.io', 'settings.longhorn.io'] }],
    'rabbitmq-cluster': files(clusterOperator, ['config/crd/bases/rabbitmq.com_rabbitmqclusters.yaml']),
    'rabbitmq-topology': files(
      topologyOperator,
      ['bindings', 'exchanges', 'permissions', 'policies', 'queues', 'users', 'vhosts'].map((kind) => `config/crd/bases/rabbitmq.com_${kind}.yaml`),
    ),
    'kuberay-raycluster': files(kuberay, ['ray-operator/config/crd/bases/ray.io_rayclusters.yaml']),
    'prometheus-servicemonitor': files(prometheusOperator, [`${MANIFESTS.prometheusOperatorCrds.path}/monitoring.coreos.com_servicemonitors.yaml`]),
    'prometheus-podmonitor': files(prometheusOperator, [`${MANIFESTS.prometheusOperatorCrds.path}/monitoring.coreos.com_podmonitors.yaml`]),
    'prometheus-prometheusrule': files(prometheusOperator, [`${MANIFESTS.prometheusOperatorCrds.path}/monitoring.coreos.com_prometheusrules.yaml`]),
    traefik: files(traefik, ['traefik/crds/traefik.io_ingressroutes.yaml']),
    'traefik-middleware': files(traefik, ['traefik/crds/traefik.io_middlewares.yaml']),
    'cert-manager': files(
      certManager,
      ['certificates', 'clusterissuers', 'issuers'].map((kind) => `deploy/crds/cert-manager.io_${kind}.yaml`),
    ),
    'external-secrets': files(externalSecrets, ['config/crds/bases/external-secrets.io_externalsecrets.yaml']),
    'external-secrets-clustersecretstore': files(externalSecrets, ['config/crds/bases/external-secrets.io_clustersecretstores.yaml']),
    'external-secrets-secretstore': files(externalSecrets, ['config/crds/bases/external-secrets.io_secretstores.yaml']),
    // The chart renders the operator's CRDs from one template wrapped in `if .Values.crds.create`.
    'cnpg-cluster': chartTemplate(CHARTS.cloudnativePg, 'templates/crds/crds.yaml', ['clusters.postgresql.cnpg.io']),
    // Its own module: cnpg-cluster's classes stay as they are (one group, distinct module names).
    'cnpg-scheduledbackup': chartTemplate(CHARTS.cloudnativePg, 'templates/crds/crds.yaml', ['scheduledbackups.postgresql.cnpg.io']),
    // The plugin's chart renders its one CRD from a template wrapped in `if .Values.crds.create`, like the operator's.
    'barman-cloud-objectstore': chartTemplate(CHARTS.barmanCloud, 'templates/crds/crds.yaml', ['objectstores.barmancloud.cnpg.io']),
    // The chart's crds/ folder holds the CRD as plain YAML; its Git tag is `external-dns-helm-chart-<version>`, not a version.
    'external-dns': chartTemplate(CHARTS.externalDns, 'crds/dnsendpoints.externaldns.k8s.io.yaml', ['dnsendpoints.externaldns.k8s.io']),
  };
}

/** `https://github.com/<owner>/<repo>` at a tag → a function from a path in the repository to its raw URL. */
function githubRaw(repoURL: string, revision: string): (path: string) => string {
  const repo = /^https:\/\/github\.com\/([^/]+\/[^/]+?)(\.git)?$/.exec(repoURL)?.[1];
  if (!repo) throw new Error(`not a GitHub repository URL: ${repoURL}`);
  return (path) => `https://raw.githubusercontent.com/${repo}/${revision}/${path}`;
}

/** The git tag of a release whose chart version has no `v` (kuberay 1.7.0 → v1.7.0); cert-manager's has one already. */
function tag(version: string): string {
  return version.startsWith('v') ? version : `v${version}`;
}

// ---- the lock ----

export interface ChartLock {
  readonly repoURL: string;
  readonly version: string;
  /** The archive the files were taken from, and its sha256. */
  readonly archive: string;
  readonly archiveSha256: string;
  /** sha256 of each vendored file. */
  readonly files: Readonly<Record<string, string>>;
}

export interface CrdLock {
  readonly sources: readonly CrdSource[];
  /** sha256 of vendor/crds/<module>.yaml. */
  readonly sha256: string;
}

export interface VendorLock {
  readonly charts: Readonly<Record<string, ChartLock>>;
  readonly crds: Readonly<Record<string, CrdLock>>;
  readonly kubernetes: { readonly url: string; readonly sha256: string };
}

export function readLock(dir = VENDOR_DIR): VendorLock | undefined {
  const file = lockFile(dir);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as VendorLock) : undefined;
}

function fileSha256(path: string): string | undefined {
  return existsSync(path) ? sha256(readFileSync(path)) : undefined;
}

/** Whether <dir>/charts/<chart> holds the chart's files at the pinned version, unedited. */
export function chartIsCurrent(dir: string, lock: VendorLock | undefined, chart: ChartReference): boolean {
  const entry = lock?.charts[chart.chart];
  if (!entry || entry.version !== chart.version || entry.repoURL !== chart.repoURL) return false;
  const folder = chartFolder(dir, chart.chart);
  const present = existsSync(folder) ? readdirSync(folder).sort() : [];
  return (
    isDeepStrictEqual(present, Object.keys(entry.files).sort()) &&
    Object.entries(entry.files).every(([file, hash]) => fileSha256(join(folder, file)) === hash)
  );
}

/** Whether <dir>/crds/<module>.yaml holds the module's CRDs from the pinned sources, unedited. */
export function crdModuleIsCurrent(dir: string, lock: VendorLock | undefined, module: string, sources: readonly CrdSource[]): boolean {
  const entry = lock?.crds[module];
  return entry !== undefined && isDeepStrictEqual(entry.sources, sources) && fileSha256(crdFile(module, dir)) === entry.sha256;
}

export function kubernetesIsCurrent(inputs: UpstreamInputs, lock: VendorLock | undefined): boolean {
  return lock?.kubernetes.url === inputs.kubernetesUrl && fileSha256(kubernetesFile(inputs.dir)) === lock.kubernetes.sha256;
}

/**
 * What in vendor/ does not match the versions table (a version bumped without `npm run
 * upgrade`, a vendored file edited by hand, a leftover), one line each; [] when all is current.
 */
export function staleInputs(inputs: UpstreamInputs = pinnedInputs()): string[] {
  const lock = readLock(inputs.dir);
  const stale = [
    ...[...inputs.charts.values()]
      .filter((chart) => !chartIsCurrent(inputs.dir, lock, chart))
      .map((chart) => `vendor/charts/${chart.chart}: not chart ${chart.chart} ${chart.version} as pinned`),
    ...Object.entries(inputs.crdModules)
      .filter(([module, sources]) => !crdModuleIsCurrent(inputs.dir, lock, module, sources))
      .map(([module]) => `vendor/crds/${module}.yaml: not the CRDs of the pinned release`),
    ...(kubernetesIsCurrent(inputs, lock) ? [] : ['vendor/kubernetes: not the pinned Kubernetes definitions']),
  ];
  const leftovers = [
    ...listing(join(inputs.dir, 'charts')).filter((name) => !inputs.charts.has(name)).map((name) => `vendor/charts/${name}`),
    ...listing(join(inputs.dir, 'crds')).filter((name) => !(name.replace(/\.yaml$/, '') in inputs.crdModules)).map((name) => `vendor/crds/${name}`),
    ...listing(join(inputs.dir, 'kubernetes')).filter((name) => name !== KUBERNETES_DEFINITIONS).map((name) => `vendor/kubernetes/${name}`),
  ];
  return [...stale, ...leftovers.map((path) => `${path}: no longer pinned`)];
}

export function listing(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}
