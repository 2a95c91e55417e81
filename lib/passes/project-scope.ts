/**
 * What an Argo CD project must admit for the Applications in it (docs/adr/0022): the
 * cluster-scoped kinds and the namespaces of every object each service emits itself (its folder,
 * derived objects included) and of the footprint its upstream sources declare (charts/versions.ts),
 * plus each Application's destination namespace. Nothing more: no `*`.
 */
import type { HomelabService } from '../model/service';

/** `Kind.group` of a cluster-scoped kind (the core group as `Kind`), undefined for a namespaced one. */
export type ClusterScopedName = (apiVersion: string, kind: string) => string | undefined;

export interface ProjectScope {
  /** Cluster-scoped kinds as `Kind.group`, sorted. */
  readonly clusterScoped: readonly string[];
  /** Namespaces, sorted. */
  readonly namespaces: readonly string[];
}

/** An AppProject resource entry (`clusterResourceWhitelist` ...). */
export interface GroupKind {
  readonly group: string;
  readonly kind: string;
}

/**
 * What the Applications of `services` deploy, which their project must admit: each one's
 * destination namespace, its objects, its upstream footprints.
 */
export function projectScope(services: readonly HomelabService[], clusterScopedName: ClusterScopedName): ProjectScope {
  const clusterScoped = new Set<string>();
  const namespaces = new Set<string>();
  for (const service of services) {
    namespaces.add(service.namespaceName);
    for (const object of service.apiObjects) {
      const name = clusterScopedName(object.apiVersion, object.kind);
      if (name) clusterScoped.add(name);
      else namespaces.add(object.metadata.namespace ?? service.namespaceName);
    }
    for (const { footprint } of service.upstreamSources) {
      footprint.clusterScoped.forEach((kind) => clusterScoped.add(kind));
      footprint.namespaces.forEach((namespace) => namespaces.add(namespace));
    }
  }
  return { clusterScoped: [...clusterScoped].sort(), namespaces: [...namespaces].sort() };
}

/** The union of scopes. */
export function mergeScopes(...scopes: readonly ProjectScope[]): ProjectScope {
  return {
    clusterScoped: [...new Set(scopes.flatMap((s) => s.clusterScoped))].sort(),
    namespaces: [...new Set(scopes.flatMap((s) => s.namespaces))].sort(),
  };
}

/** `ClusterRole.rbac.authorization.k8s.io` as `{ group: 'rbac.authorization.k8s.io', kind: 'ClusterRole' }`; `Namespace` in the core group `''`. */
export function groupKind(scopedName: string): GroupKind {
  const dot = scopedName.indexOf('.');
  return dot < 0 ? { group: '', kind: scopedName } : { group: scopedName.slice(dot + 1), kind: scopedName.slice(0, dot) };
}
