/**
 * Brings vendor/ in line with the versions table (scripts/upstream-inputs.ts says what is
 * vendored): every input whose pinned source changed, or whose files are not the ones the lock
 * recorded, is taken again from upstream — charts from their archives (lib/tools/upstream/
 * chart-archive.ts: a chart cache folder, or the chart's repository), CRDs and the Kubernetes
 * definitions from their URLs. Everything is fetched before anything is written: a failure
 * (offline, a chart missing from the cache) leaves vendor/ as it was.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { chartArchive, chartFiles, download, sha256 } from '../lib/tools/upstream/chart-archive';
import { UserError } from '../lib/util/errors';
import {
  CHART_FILES,
  chartFolder,
  ChartLock,
  chartIsCurrent,
  crdFile,
  crdModuleIsCurrent,
  CrdLock,
  CrdSource,
  crdSourceName,
  KUBERNETES_DEFINITIONS,
  kubernetesFile,
  kubernetesIsCurrent,
  listing,
  lockFile,
  pinnedInputs,
  readLock,
  UpstreamInputs,
  VendorLock,
} from './upstream-inputs';

export interface RefreshOptions {
  /** A folder of chart archives to take charts from instead of their repositories. @default see chartArchive */
  readonly chartCache?: string;
  /** Take every input again, current or not. @default false */
  readonly force?: boolean;
  /** Fetches a CRD or definitions URL. @default an HTTP GET that fails with a UserError naming the URL */
  readonly download?: (url: string) => Promise<Buffer>;
  /** What to vendor, and where. @default the versions table's inputs in vendor/ */
  readonly inputs?: UpstreamInputs;
}

const RESTORED = 'restored (its files were not the ones vendor/lock.json records)';

/** File path (absolute) → new contents; undefined deletes the file or folder. */
type Writes = Map<string, Buffer | undefined>;

/** Refreshes vendor/; returns one line per input that changed ([] when vendor/ was current). */
export async function refreshVendor(options: RefreshOptions = {}): Promise<string[]> {
  const get = options.download ?? download;
  const inputs = options.inputs ?? pinnedInputs();
  const { dir } = inputs;
  const lock = readLock(dir);
  const writes: Writes = new Map();
  const changes: string[] = [];

  const charts: Record<string, ChartLock> = {};
  for (const chart of inputs.charts.values()) {
    const current = chartIsCurrent(dir, lock, chart);
    if (!options.force && current) {
      charts[chart.chart] = lock!.charts[chart.chart];
      continue;
    }
    const archive = await chartArchive(chart, { chartCache: options.chartCache });
    const files = chartFiles(archive, chart.chart);
    const pinned = String((parse(files.get('Chart.yaml')!.toString('utf8')) as { version?: unknown }).version);
    if (pinned !== chart.version) throw new UserError([`${archive}: its Chart.yaml says version ${pinned}, the versions table pins ${chart.chart} ${chart.version}`]);
    const folder = chartFolder(dir, chart.chart);
    const kept = CHART_FILES.filter((file) => files.has(file));
    writes.set(folder, undefined);
    for (const file of kept) writes.set(join(folder, file), files.get(file)!);
    charts[chart.chart] = {
      repoURL: chart.repoURL,
      version: chart.version,
      archive: archive.split(/[\\/]/).at(-1)!,
      archiveSha256: sha256(readFileSync(archive)),
      files: Object.fromEntries(kept.map((file) => [file, sha256(files.get(file)!)])),
    };
    const before = lock?.charts[chart.chart];
    const changed = changedFiles(before?.files ?? {}, charts[chart.chart].files);
    if (!before) changes.push(`vendor/charts/${chart.chart}: ${chart.chart} ${chart.version} (added)`);
    else if (changed.length > 0 || before.version !== chart.version) {
      changes.push(`vendor/charts/${chart.chart}: ${chart.chart} ${before.version} -> ${chart.version} (${changed.length > 0 ? `${changed.join(', ')} changed` : 'same files'})`);
    } else if (!current) changes.push(`vendor/charts/${chart.chart}: ${RESTORED}`);
  }

  const crds: Record<string, CrdLock> = {};
  for (const [module, sources] of Object.entries(inputs.crdModules)) {
    const current = crdModuleIsCurrent(dir, lock, module, sources);
    if (!options.force && current) {
      crds[module] = lock!.crds[module];
      continue;
    }
    const documents: string[] = [];
    for (const source of sources) documents.push(...selectCrds(await crdText(source, get, options.chartCache), source));
    const bytes = Buffer.from(documents.map((document) => `---\n${document}\n`).join(''));
    writes.set(crdFile(module, dir), bytes);
    crds[module] = { sources, sha256: sha256(bytes) };
    if (!isDeepStrictEqual(lock?.crds[module], crds[module])) changes.push(`vendor/crds/${module}.yaml: from ${releasesOf(sources)}`);
    else if (!current) changes.push(`vendor/crds/${module}.yaml: ${RESTORED}`);
  }

  let kubernetes = lock?.kubernetes;
  const kubernetesCurrent = kubernetesIsCurrent(inputs, lock);
  if (options.force || !kubernetesCurrent) {
    const bytes = await get(inputs.kubernetesUrl);
    try {
      JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new UserError([`${inputs.kubernetesUrl}: not JSON`]); // a truncated or HTML answer fails here, not in the import
    }
    writes.set(kubernetesFile(dir), bytes);
    kubernetes = { url: inputs.kubernetesUrl, sha256: sha256(bytes) };
    if (!isDeepStrictEqual(lock?.kubernetes, kubernetes)) changes.push(`vendor/kubernetes: from ${inputs.kubernetesUrl}`);
    else if (!kubernetesCurrent) changes.push(`vendor/kubernetes: ${RESTORED}`);
  }

  for (const [folder, pinned] of [
    ['charts', new Set(Object.keys(charts))],
    ['crds', new Set(Object.keys(crds).map((module) => `${module}.yaml`))],
    ['kubernetes', new Set([KUBERNETES_DEFINITIONS])], // another version's definitions, after a move to a new Kubernetes version
  ] as const) {
    for (const name of listing(join(dir, folder)).filter((entry) => !pinned.has(entry))) {
      writes.set(join(dir, folder, name), undefined);
      changes.push(`vendor/${folder}/${name}: removed (no longer pinned)`);
    }
  }

  const next: VendorLock = { charts: sortByKey(charts), crds: sortByKey(crds), kubernetes: kubernetes! };
  if (!isDeepStrictEqual(next, lock)) writes.set(lockFile(dir), Buffer.from(`${JSON.stringify(next, null, 2)}\n`));
  apply(writes);
  return changes;
}

/** The text of a CRD source: the file at its URL, or the chart template without its `if` lines. */
async function crdText(source: CrdSource, get: (url: string) => Promise<Buffer>, chartCache: string | undefined): Promise<string> {
  if ('url' in source) return (await get(source.url)).toString('utf8');
  const archive = await chartArchive(source.chart, { chartCache });
  const file = chartFiles(archive, source.chart.chart).get(source.template);
  if (!file) throw new UserError([`${archive}: holds no ${source.template}`]);
  return withoutConditional(file.toString('utf8'), crdSourceName(source));
}

/**
 * A chart template that only wraps plain YAML in `{{- if ... }}` and `{{- end }}` lines, without
 * those lines: what `helm template` renders with the condition true. Any other template
 * expression fails, naming the template, rather than being vendored unrendered.
 */
export function withoutConditional(text: string, name: string): string {
  const lines = text.split('\n').filter((line) => !/^\{\{-?\s*(if\s.*|end)\s*-?\}\}\s*$/.test(line));
  if (lines.some((line) => line.includes('{{'))) throw new UserError([`${name}: holds template expressions besides an if around the CRDs`]);
  return lines.join('\n');
}

/**
 * The YAML documents of a fetched file that are the source's CRDs, as text (comments kept,
 * surrounding blank lines and `---` separators dropped). Fails naming the URL when a selected
 * CRD is missing or an unselected file holds something other than CRDs.
 */
export function selectCrds(text: string, source: CrdSource): string[] {
  const chunks = text
    .split(/^---[^\S\n]*$/m)
    .map((chunk) => chunk.replace(/^\s*\n/, '').trimEnd())
    .filter((chunk) => parse(chunk) != null);
  const named = chunks.map((chunk) => {
    const documents = parseAllDocuments(chunk);
    if (documents.length !== 1 || documents[0].errors.length > 0) throw new UserError([`${crdSourceName(source)}: not YAML: ${documents[0]?.errors[0]?.message ?? 'several documents'}`]);
    const object = documents[0].toJS() as { kind?: string; metadata?: { name?: string } };
    return { chunk, crd: object?.kind === 'CustomResourceDefinition' ? object.metadata?.name : undefined };
  });
  if (!source.crds) {
    const other = named.find(({ crd }) => crd === undefined);
    if (other || named.length === 0) throw new UserError([`${crdSourceName(source)}: expected only CustomResourceDefinitions`]);
    return named.map(({ chunk }) => chunk);
  }
  const wanted = new Set(source.crds);
  const missing = source.crds.filter((name) => !named.some(({ crd }) => crd === name));
  if (missing.length > 0) throw new UserError([`${crdSourceName(source)}: no CustomResourceDefinition ${missing.join(', ')}`]);
  return named.filter(({ crd }) => crd !== undefined && wanted.has(crd)).map(({ chunk }) => chunk);
}

/** `owner/repo@tag` of the raw GitHub URLs, `<chart>@<version>` of chart templates, once each. */
function releasesOf(sources: readonly CrdSource[]): string {
  const release = (source: CrdSource) =>
    'url' in source
      ? (/^https:\/\/raw\.githubusercontent\.com\/([^/]+\/[^/]+)\/([^/]+)\//.exec(source.url)?.slice(1).join('@') ?? source.url)
      : `${source.chart.chart}@${source.chart.version}`;
  return [...new Set(sources.map(release))].join(', ');
}

function changedFiles(before: Readonly<Record<string, string>>, after: Readonly<Record<string, string>>): string[] {
  return [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((file) => before[file] !== after[file]).sort();
}

function sortByKey<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Deletions first (a chart folder is replaced as a whole), then the files. */
function apply(writes: Writes): void {
  for (const [path, bytes] of writes) if (bytes === undefined) rmSync(path, { recursive: true, force: true });
  for (const [path, bytes] of writes) {
    if (bytes === undefined) continue;
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, bytes);
  }
}
