/**
 * Re-derives the footprint of a pinned upstream source (the cluster-scoped kinds it can create and
 * the namespaces it names itself) from the offline copies in ../shared, without helm or kustomize:
 * a chart archive's templates and crds/ (subcharts included), read document by document; a
 * kustomization followed through its resources; a directory of plain manifests. What
 * charts/versions.ts declares beside each pinned version must be exactly this
 * (test/upstream-footprint.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, parse } from 'yaml';
import type { GitManifests, HelmChartVersion, KustomizeSource, UpstreamFootprint } from '../lib/model/sources';
import { readClusterScopedKinds, scopedKindName } from '../lib/output/cluster-scoped';
import { ROOT, tempDir } from './support';

/** This machine's stand-in for the network (absent on a fresh clone: the test then skips). */
export const SHARED = join(ROOT, '..', 'shared');
const CLUSTER_SCOPED = readClusterScopedKinds(join(ROOT, 'imports', 'schemas'));

/** One object an upstream source can create, as far as its text says (undefined: templated). */
interface UpstreamObject {
  readonly apiVersion?: string;
  readonly kind: string;
  readonly namespace?: string;
}

/** Where the packaged chart of a pinned version is. */
export const chartArchive = (chart: HelmChartVersion): string => join(SHARED, 'chart-archives', `${chart.chart}-${chart.version}.tgz`);

/** Where the copy of a Git source at its pinned tag is: `git-sources/<owner>/<repo>/<tag>/<path>`. */
export function gitSourceDir(source: KustomizeSource | GitManifests): string {
  const repo = /^https:\/\/github\.com\/([^/]+\/[^/.]+)(\.git)?$/.exec(source.repoURL);
  if (!repo) throw new Error(`${source.repoURL}: not a GitHub repository`);
  return join(SHARED, 'git-sources', repo[1], source.revision, source.path);
}

/** Every file below `dir`, sorted. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const path = join(dir, entry);
      return statSync(path).isDirectory() ? filesUnder(path) : [path];
    });
}

/** A top-level (column 0) literal field of a template document; undefined when templated or absent. */
function topLevel(document: string, field: string): string | undefined {
  const value = new RegExp(`^${field}:[ \\t]*(.+?)[ \\t]*$`, 'm').exec(document)?.[1].replace(/^["']|["']$/g, '');
  return value === undefined || value.includes('{{') ? undefined : value;
}

/** A literal `metadata.namespace` (two-space indent under a column-0 `metadata:`). */
function metadataNamespace(document: string): string | undefined {
  const metadata = /^metadata:[ \t]*\n((?:(?:[ \t].*|\{\{.*|)\n)*)/m.exec(`${document}\n`)?.[1] ?? '';
  const value = /^  namespace:[ \t]*(.+?)[ \t]*$/m.exec(metadata)?.[1].replace(/^["']|["']$/g, '');
  return value === undefined || value.includes('{{') ? undefined : value;
}

/** The objects a chart archive's templates and crds/ folders (its own and its subcharts') can create. */
export function chartObjects(archive: string): UpstreamObject[] {
  const dir = tempDir('homelab-chart-');
  try {
    const tar = spawnSync('tar', ['-xzf', archive, '-C', dir], { encoding: 'utf8' });
    if (tar.status !== 0) throw new Error(`tar -xzf ${archive}: ${tar.stderr}`);
    return filesUnder(dir)
      .filter((file) => /\/(templates|crds)\//.test(file) && /\.(ya?ml|tpl)$/.test(file))
      .flatMap((file) =>
        readFileSync(file, 'utf8')
          .split(/^---/m)
          .flatMap((document): UpstreamObject[] => {
            const kind = topLevel(document, 'kind');
            return kind ? [{ apiVersion: topLevel(document, 'apiVersion'), kind, namespace: metadataNamespace(document) }] : [];
          }),
      );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The objects a kustomization builds: its resources (files, or directories holding a
 * kustomization), with its `namespace` set on every namespaced object, as kustomize does.
 */
export function kustomizationObjects(dir: string): UpstreamObject[] {
  const file = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'].map((name) => join(dir, name)).find((path) => existsSync(path));
  if (!file) throw new Error(`${dir}: no kustomization`);
  const kustomization = parse(readFileSync(file, 'utf8')) as { namespace?: string; resources?: string[]; bases?: string[]; components?: string[] };
  const objects = [...(kustomization.resources ?? []), ...(kustomization.bases ?? []), ...(kustomization.components ?? [])].flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? kustomizationObjects(path) : manifestObjects(path);
  });
  const namespace = kustomization.namespace;
  return namespace ? objects.map((o) => (isClusterScopedObject(o) ? o : { ...o, namespace })) : objects;
}

/** The objects of plain manifests: a file, or every YAML file of a directory. */
export function manifestObjects(path: string): UpstreamObject[] {
  const files = statSync(path).isDirectory() ? filesUnder(path).filter((file) => /\.ya?ml$/.test(file)) : [path];
  return files.flatMap((file) =>
    parseAllDocuments(readFileSync(file, 'utf8'))
      .map((document) => document.toJS() as { apiVersion?: string; kind?: string; metadata?: { namespace?: string } } | null)
      .flatMap((o) => (o?.kind ? [{ apiVersion: o.apiVersion, kind: o.kind, namespace: o.metadata?.namespace }] : [])),
  );
}

/**
 * `Kind.group` of a cluster-scoped object, or undefined for a namespaced one. A templated
 * apiVersion (`{{ include "rbac.apiVersion" . }}`) is resolved by the kind's name, which names
 * one cluster-scoped kind at most (checked by the test).
 */
function clusterScopedName(o: UpstreamObject): string | undefined {
  if (o.apiVersion !== undefined) {
    const name = scopedKindName(o.apiVersion, o.kind);
    return CLUSTER_SCOPED.has(name) ? name : undefined;
  }
  const candidates = [...CLUSTER_SCOPED].filter((name) => name.split('.')[0] === o.kind);
  if (candidates.length > 1) throw new Error(`kind ${o.kind} with a templated apiVersion is ambiguous: ${candidates.join(', ')}`);
  return candidates[0];
}

const isClusterScopedObject = (o: UpstreamObject) => clusterScopedName(o) !== undefined;

/** The footprint of a list of objects: what charts/versions.ts must declare for their source. */
export function footprintOf(objects: readonly UpstreamObject[]): UpstreamFootprint {
  const clusterScoped = new Set<string>();
  const namespaces = new Set<string>();
  for (const o of objects) {
    const name = clusterScopedName(o);
    if (name) clusterScoped.add(name);
    else if (o.namespace) namespaces.add(o.namespace);
  }
  return { clusterScoped: [...clusterScoped].sort(), namespaces: [...namespaces].sort() };
}

/** The objects of `kinds` (Argo CD's own: only the root may create them) among a source's, by kind. */
export const argoCdObjects = (objects: readonly UpstreamObject[], kinds: readonly string[]): string[] =>
  objects.filter((o) => kinds.includes(o.kind) && (o.apiVersion === undefined || o.apiVersion.startsWith('argoproj.io/'))).map((o) => o.kind);
