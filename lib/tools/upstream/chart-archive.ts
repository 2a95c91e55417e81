/**
 * Where the archive (`<chart>-<version>.tgz`) of a pinned Helm chart comes from, for every
 * command that needs a chart's own files: `npm run upgrade` (the vendored Chart.yaml, values.yaml
 * and values.schema.json) and anything that renders charts.
 *
 * - A chart cache folder given by `--chart-cache DIR` or the HOMELAB_CHART_CACHE variable: the
 *   archive must be there (offline; a folder made by `helm pull` or `helm repo index` will do).
 * - Otherwise the git-ignored download cache `.cache/charts/`, filled on first use: for an HTTP(S)
 *   repository from the repository's index.yaml with Node's fetch (no helm needed), for an OCI
 *   registry with `helm pull`.
 * The sha256 digest a repository's index.yaml publishes is checked whenever there is one.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import type { ChartReference } from '../../model/sources';
import { UserError } from '../../util/errors';
import { projectRoot } from '../../util/project';
import { readTarGz } from '../../util/tar-gz';

/** The environment variable that names a chart cache folder (what `--chart-cache` sets). */
export const CHART_CACHE_VARIABLE = 'HOMELAB_CHART_CACHE';

export interface ChartArchiveOptions {
  /**
   * A folder of `<chart>-<version>.tgz` archives to take charts from instead of the network.
   * @default the HOMELAB_CHART_CACHE variable; without it, charts are downloaded into .cache/charts/
   */
  readonly chartCache?: string;
  /** Where downloaded archives are kept. @default .cache/charts/ in the project */
  readonly downloadCache?: string;
}

/** The chart cache a command was given: its `--chart-cache` option, else HOMELAB_CHART_CACHE; undefined for none (download). */
export function chartCacheOption(option: string | undefined): string | undefined {
  const folder = option ?? process.env[CHART_CACHE_VARIABLE];
  return folder ? resolve(folder) : undefined;
}

/** The git-ignored folder downloaded archives are kept in. */
export function downloadCache(): string {
  return join(projectRoot(), '.cache', 'charts');
}

/** The name `helm pull` and `helm package` give a chart's archive. */
export function archiveName(chart: ChartReference): string {
  return `${chart.chart}-${chart.version}.tgz`;
}

/** Argo CD takes an OCI registry as a repoURL without scheme (`ghcr.io/org/charts`), an HTTP repository with one. */
export function isOciRepository(repoURL: string): boolean {
  return !/^https?:\/\//.test(repoURL);
}

/** The path of the pinned chart's archive, from the chart cache or downloaded (see the module comment). */
export async function chartArchive(chart: ChartReference, options: ChartArchiveOptions = {}): Promise<string> {
  const cache = options.chartCache ?? chartCacheOption(undefined);
  return cache === undefined ? downloadedArchive(chart, options.downloadCache ?? downloadCache()) : cachedArchive(chart, cache);
}

/**
 * The files of the chart in an archive, by their path below the chart's folder (`values.yaml`,
 * `crds/x.yaml`, `charts/<subchart>.tgz` ...).
 */
export function chartFiles(archive: string, chart: string): Map<string, Buffer> {
  let entries: Map<string, Buffer>;
  try {
    entries = readTarGz(readFileSync(archive));
  } catch (error) {
    throw new UserError([`${archive}: not a chart archive (${(error as Error).message})`]);
  }
  const prefix = `${chart}/`;
  const files = new Map([...entries].filter(([path]) => path.startsWith(prefix)).map(([path, bytes]) => [path.slice(prefix.length), bytes]));
  if (!files.has('Chart.yaml')) throw new UserError([`${archive}: holds no ${prefix}Chart.yaml: not the archive of chart ${chart}`]);
  return files;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function cachedArchive(chart: ChartReference, cache: string): string {
  if (!existsSync(cache) || !statSync(cache).isDirectory()) {
    throw new UserError([`chart cache ${cache}: no such folder (from --chart-cache or ${CHART_CACHE_VARIABLE})`]);
  }
  const archive = join(cache, archiveName(chart));
  if (!existsSync(archive)) {
    throw new UserError([
      `chart ${chart.chart} ${chart.version} is not in the chart cache ${cache} (no ${archiveName(chart)}): ` +
        `add it (\`helm pull ${pullTarget(chart)} --version ${chart.version} -d ${cache}\`), ` +
        `or run without --chart-cache and ${CHART_CACHE_VARIABLE} to download it from ${chart.repoURL}`,
    ]);
  }
  // A cache made by `helm repo index` publishes digests: an archive that is not the one indexed is refused.
  const index = join(cache, 'index.yaml');
  if (existsSync(index)) checkDigest(archive, indexEntry(parse(readFileSync(index, 'utf8')), chart)?.digest);
  return archive;
}

async function downloadedArchive(chart: ChartReference, cache: string): Promise<string> {
  const archive = join(cache, archiveName(chart));
  if (existsSync(archive)) return archive;
  mkdirSync(cache, { recursive: true });
  if (isOciRepository(chart.repoURL)) helmPull(chart, cache);
  else await httpDownload(chart, archive);
  return archive;
}

interface IndexEntry {
  version: string;
  urls?: string[];
  digest?: string;
}

function indexEntry(index: unknown, chart: ChartReference): IndexEntry | undefined {
  const entries = (index as { entries?: Record<string, IndexEntry[]> } | null)?.entries?.[chart.chart] ?? [];
  return entries.find((entry) => String(entry.version) === chart.version);
}

async function httpDownload(chart: ChartReference, archive: string): Promise<void> {
  const indexUrl = new URL('index.yaml', chart.repoURL.endsWith('/') ? chart.repoURL : `${chart.repoURL}/`).href;
  const entry = indexEntry(parse((await download(indexUrl)).toString('utf8')), chart);
  if (!entry?.urls?.length) throw new UserError([`chart ${chart.chart} ${chart.version} is not in the repository index ${indexUrl}`]);
  const url = new URL(entry.urls[0], indexUrl).href;
  const bytes = await download(url);
  const staging = `${archive}.download-${process.pid}`;
  writeFileSync(staging, bytes);
  try {
    checkDigest(staging, entry.digest, url);
    renameSync(staging, archive);
  } finally {
    rmSync(staging, { force: true });
  }
}

/** GET url, or a UserError naming it (offline, refused, not found). */
export async function download(url: string): Promise<Buffer> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new UserError([
      `cannot download ${url}: ${cause?.code ?? cause?.message ?? (error as Error).message} ` +
        `(offline? charts can come from a folder of archives: --chart-cache DIR or ${CHART_CACHE_VARIABLE})`,
    ]);
  }
  if (!response.ok) throw new UserError([`cannot download ${url}: HTTP ${response.status} ${response.statusText}`]);
  return Buffer.from(await response.arrayBuffer());
}

function checkDigest(archive: string, digest: string | undefined, source = archive): void {
  if (digest === undefined) return;
  const actual = sha256(readFileSync(archive));
  if (actual !== digest) throw new UserError([`${source}: sha256 ${actual}, but the repository index says ${digest}`]);
}

function pullTarget(chart: ChartReference): string {
  return isOciRepository(chart.repoURL) ? `oci://${chart.repoURL}/${chart.chart}` : `${chart.chart} --repo ${chart.repoURL}`;
}

function helmPull(chart: ChartReference, cache: string): void {
  const target = pullTarget(chart);
  // The helm `npm run render` uses when named (HOMELAB_HELM), else the one on PATH.
  const result = spawnSync(process.env.HOMELAB_HELM ?? 'helm', ['pull', target, '--version', chart.version, '--destination', cache], { encoding: 'utf8' });
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new UserError([
      `helm is needed to pull the OCI chart ${target} ${chart.version} and is not on PATH: ` +
        `install helm (https://helm.sh/docs/intro/install/), or put ${archiveName(chart)} into a chart cache (--chart-cache DIR)`,
    ]);
  }
  if (result.status !== 0) {
    const reason = (result.stderr || result.error?.message || '').trim().split('\n').at(-1);
    throw new UserError([`helm pull ${target} --version ${chart.version} failed: ${reason}`]);
  }
}
