/**
 * Where the upstream git folders an Application names come from when rendering (charts come from
 * lib/tools/upstream/chart-archive.ts): a local cache the operator points at, laid out
 * `<cache>/<owner>/<repo>/<revision>/<path>` for `https://github.com/<owner>/<repo>` (offline: CI
 * and this project's machines have the pinned ones in ../shared/git-sources), or, without one,
 * `git clone --depth 1 --branch <revision>` into the project's git-ignored `.cache/git`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../../util/errors';
import { projectRoot } from '../../util/project';

export const SOURCE_CACHE_VARIABLE = 'HOMELAB_SOURCE_CACHE';

export interface SourceCaches {
  /** Folder of chart archives (see chartArchive). @default $HOMELAB_CHART_CACHE, else downloaded into `.cache/charts` */
  readonly charts?: string;
  /** Folder of git sources by owner/repo/revision. @default $HOMELAB_SOURCE_CACHE, else `.cache/git` filled from the network */
  readonly git?: string;
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
      throw new UserError([
        `${repoURL} at ${revision}: git clone failed (${firstLine(error)}); offline, point --source-cache (or ${SOURCE_CACHE_VARIABLE}) at a folder of sources`,
      ]);
    }
  }
  const folder = join(checkout, path);
  if (!existsSync(folder)) throw new UserError([`${repoURL} at ${revision}: no folder ${path}`]);
  return folder;
}

function firstLine(error: unknown): string {
  return String((error as { stderr?: Buffer | string }).stderr ?? (error as Error).message)
    .trim()
    .split('\n')[0];
}
