/**
 * Which kinds live outside namespaces. cdk8s gives every object of a chart the chart's
 * namespace, but a cluster-scoped object must not name one: the API server drops it, so Argo
 * CD, ConfigSync and other tools keyed on (namespace, name) see a different object than the
 * manifest and report it out of sync or missing.
 */
import clusterScoped from '../../imports/schemas/cluster-scoped.json';

/** Written by `npm run import` (scripts/import-schemas.ts) from the Kubernetes kinds and the CRDs' `spec.scope`. */
export const CLUSTER_SCOPED_FILE = 'cluster-scoped.json';

const CLUSTER_SCOPED_KINDS: ReadonlySet<string> = new Set(clusterScoped.kinds);

/** `Kind.group` as `kubectl api-resources` names it (`ClusterRole.rbac.authorization.k8s.io`), the core group as `Kind`. */
export function scopedKindName(apiVersion: string, kind: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? kind : `${kind}.${apiVersion.slice(0, slash)}`;
}

/** False for namespaced kinds and for kinds the imported schemas do not know. */
export function isClusterScoped(apiVersion: string, kind: string): boolean {
  return CLUSTER_SCOPED_KINDS.has(scopedKindName(apiVersion, kind));
}
