/**
 * Which kinds live outside namespaces. cdk8s gives every object of a chart the chart's
 * namespace, but a cluster-scoped object must not name one: the API server drops it, so Argo
 * CD, ConfigSync and other tools keyed on (namespace, name) see a different object than the
 * manifest and report it out of sync or missing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../util/project';

/**
 * Written by `npm run import` (scripts/import-schemas.ts) into imports/schemas from the
 * Kubernetes kinds and the CRDs' `spec.scope`; read when first needed, so that building the
 * commands (the import among them) never depends on it.
 */
export const CLUSTER_SCOPED_FILE = 'cluster-scoped.json';

let clusterScopedKinds: ReadonlySet<string> | undefined;

/** `Kind.group` as `kubectl api-resources` names it (`ClusterRole.rbac.authorization.k8s.io`), the core group as `Kind`. */
export function scopedKindName(apiVersion: string, kind: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? kind : `${kind}.${apiVersion.slice(0, slash)}`;
}

/** The kinds listed in `<schemaDir>/cluster-scoped.json`. */
export function readClusterScopedKinds(schemaDir: string): ReadonlySet<string> {
  return new Set((JSON.parse(readFileSync(join(schemaDir, CLUSTER_SCOPED_FILE), 'utf8')) as { kinds: string[] }).kinds);
}

/** False for namespaced kinds and for kinds the imported schemas do not know. */
export function isClusterScoped(apiVersion: string, kind: string): boolean {
  return clusterScopedName(apiVersion, kind) !== undefined;
}

/** The `Kind.group` of a cluster-scoped kind; undefined for namespaced kinds and kinds the imported schemas do not know. */
export function clusterScopedName(apiVersion: string, kind: string): string | undefined {
  clusterScopedKinds ??= readClusterScopedKinds(join(projectRoot(), 'imports', 'schemas'));
  const name = scopedKindName(apiVersion, kind);
  return clusterScopedKinds.has(name) ? name : undefined;
}
