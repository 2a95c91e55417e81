/**
 * Where the upstream sources an Application names come from when rendering: chart archives
 * and git folders, from a local cache the operator points at (offline: CI and this project's
 * machines have the pinned ones in ../shared) or fetched from the network into the project's
 * git-ignored `.cache/` on first use.
 *
 * - Charts: `<cache>/<chart>-<version>.tgz`, the name `helm pull` and `helm package` give an
 *   archive (an `index.yaml` beside them, as `helm repo index` writes, is honoured too). Without
 *   a cache, `helm pull --repo <repoURL>` (or `oci://`) fills `.cache/charts`.
 * - Git sources: `<cache>/<owner>/<repo>/<revision>/<path>` for `https://github.com/<owner>/<repo>`.
 *   Without a cache, `git clone --depth 1 --branch <revision>` fills `.cache/git`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { UserError } from '../../util/errors';
import { projectRoot } from '../../util/project';

export const CHART_CACHE_VARIABLE = 'HOMELAB_CHART_CACHE';
export const SOURCE_CACHE_VARIABLE = 'HOMELAB_SOURCE_CACHE';

export interface SourceCaches {
  /** Folder of chart archives. @default $HOMELAB_CHART_CACHE, else `.cache/charts` filled from the network */
  readonly charts?: string;
  /** Folder of git sources by owner/repo/revision. @default $HOMELAB_SOURCE_CACHE, else `.cache/git` filled from the network */
  readonly git?: string;
}

export interface ChartReference {
  readonly repoURL: string;
  readonly chart: string;
  readonly version: string;
}

/** The archive of a pinned chart. */
export function chartArchive(ref: ChartReference, caches: SourceCaches, helm: () => string): string {
  const given = caches.charts ?? process.env[CHART_CACHE_VARIABLE];
  if (given) {
    const found = archiveIn(resolve(given), ref);
    if (!found) throw new UserError([`${given}: no archive of chart ${ref.chart} ${ref.version} (from ${ref.repoURL}); add it with \`helm pull ${ref.chart} --repo ${ref.repoURL} --version ${ref.version} -d ${given}\``]);
    return found;
  }
  const cache = join(projectRoot(), '.cache', 'charts');
  const cached = archiveIn(cache, ref);
  if (cached) return cached;
  mkdirSync(cache, { recursive: true });
  const staging = mkdtempSync(join(cache, '.pull-'));
  try {
    const args = ref.repoURL.startsWith('oci://')
      ? ['pull', `${ref.repoURL.replace(/\/$/, '')}/${ref.chart}`, '--version', ref.version, '-d', staging]
      : ['pull', ref.chart, '--repo', ref.repoURL, '--version', ref.version, '-d', staging];
    try {
      execFileSync(helm(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (error) {
      throw new UserError([`chart ${ref.chart} ${ref.version}: \`helm ${args.join(' ')}\` failed (${firstLine(error)}); offline, point --chart-cache (or ${CHART_CACHE_VARIABLE}) at a folder of chart archives`]);
    }
    const archive = `${ref.chart}-${ref.version}.tgz`;
    renameSync(join(staging, archive), join(cache, archive));
    return join(cache, archive);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function archiveIn(dir: string, ref: ChartReference): string | undefined {
  const direct = join(dir, `${ref.chart}-${ref.version}.tgz`);
  if (existsSync(direct)) return direct;
  const index = join(dir, 'index.yaml');
  if (!existsSync(index)) return undefined;
  const entries = (parse(readFileSync(index, 'utf8')) as { entries?: Record<string, { version: string; urls?: string[] }[]> }).entries ?? {};
  const url = entries[ref.chart]?.find((entry) => entry.version === ref.version)?.urls?.[0];
  return url && !/^[a-z]+:\/\//.test(url) && existsSync(join(dir, url)) ? join(dir, url) : undefined;
}

/** The folder `path` of a git repository at `revision`. */
export function gitSource(repoURL: string, revision: string, path: string, caches: SourceCaches): string {
  const match = /^https:\/\/github\.com\/([^/]+)\/([^/]+?)(\.git)?\/?$/.exec(repoURL);
  if (!match) throw new UserError([`${repoURL}: only GitHub repositories can be rendered (https://github.com/<owner>/<repo>)`]);
  const [, owner, repo] = match;
  const given = caches.git ?? process.env[SOURCE_CACHE_VARIABLE];
  if (given) {
    const folder = join(resolve(given), owner, repo, revision, path);
    if (!existsSync(folder)) throw new UserError([`${given}: no ${owner}/${repo}/${revision}/${path} (the source ${repoURL} ${path} at ${revision})`]);
    return folder;
  }
  const checkout = join(projectRoot(), '.cache', 'git', owner, repo, revision);
  if (!existsSync(checkout)) {
    mkdirSync(join(checkout, '..'), { recursive: true });
    const staging = mkdtempSync(`${checkout}.clone-`);
    try {
      execFileSync('git', ['clone', '--quiet', '--depth', '1', '--branch', revision, repoURL, staging], { stdio: ['ignore', 'ignore', 'pipe'] });
      renameSync(staging, checkout);
    } catch (error) {
      rmSync(staging, { recursive: true, force: true });
      throw new UserError([`${repoURL} at ${revision}: git clone failed (${firstLine(error)}); offline, point --source-cache (or ${SOURCE_CACHE_VARIABLE}) at a folder of sources`]);
    }
  }
  const folder = join(checkout, path);
  if (!existsSync(folder)) throw new UserError([`${repoURL} at ${revision}: no folder ${path}`]);
  return folder;
}

function firstLine(error: unknown): string {
  return String((error as { stderr?: Buffer | string }).stderr ?? (error as Error).message).trim().split('\n')[0];
}
