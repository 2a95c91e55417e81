/**
 * What an Application needs before it can become Healthy, and what provides it. Argo CD syncs
 * the waves in order and starts a wave only once every Application of the previous one is
 * Healthy: a need that only a later wave provides is a deadlock. The ordering pass derives the
 * needs from the objects each service emits (and, for its upstream chart, which synth does not
 * render, from its declarations), makes them edges of the dependency graph and proves every
 * one is provided by an earlier wave or by the service itself (lib/passes/needs.ts, ADR 23).
 */

/** One thing an Application waits for, by what identifies it in the cluster. */
export type Need =
  /** The CRD of custom resources it emits. */
  | { readonly kind: 'crd'; readonly group: string }
  /** An admission webhook that validates custom resources it emits. */
  | { readonly kind: 'webhook'; readonly group: string }
  /** A Secret its pods or its chart read at start (a certificate's Secret included). */
  | { readonly kind: 'secret'; readonly namespace: string; readonly name: string }
  /** The StorageClass its claims name. */
  | { readonly kind: 'storage-class'; readonly name: string }
  /** A PersistentVolumeClaim its pods mount. */
  | { readonly kind: 'pvc'; readonly namespace: string; readonly name: string }
  /** The ClusterIssuer its Certificates are issued by. */
  | { readonly kind: 'issuer'; readonly name: string }
  /** The secret backend its SecretStores read from, by the namespace of its in-cluster address. */
  | { readonly kind: 'secret-backend'; readonly namespace: string };

/** A key that two equal needs share. */
export function needKey(need: Need): string {
  return Object.values(need).join('/');
}

/** The need as the operator reads it: `Secret n8n/n8n-encryption-key`. */
export function describeNeed(need: Need): string {
  switch (need.kind) {
    case 'crd':
      return `the CRDs of ${need.group}`;
    case 'webhook':
      return `the admission webhook for ${need.group}`;
    case 'secret':
      return `Secret ${need.namespace}/${need.name}`;
    case 'storage-class':
      return `StorageClass ${need.name}`;
    case 'pvc':
      return `PersistentVolumeClaim ${need.namespace}/${need.name}`;
    case 'issuer':
      return `ClusterIssuer ${need.name}`;
    case 'secret-backend':
      return `the secret backend in namespace ${need.namespace}`;
  }
}

/**
 * Secrets an operator generates from a custom resource it reconciles, in the resource's
 * namespace (e.g. the RabbitMQ Cluster Operator's `<cluster>-default-user`): declared by the
 * service installing the CRD, provided by the Application that emits the resource.
 */
export interface GeneratedSecrets {
  readonly group: string;
  readonly kind: string;
  /** The Secrets generated for a resource of that name. */
  secretNames(resourceName: string): readonly string[];
}

/** API group of an apiVersion (`apps/v1` -> `apps`, `v1` -> ``). */
export function apiGroup(apiVersion: string): string {
  return apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
}

/** Groups served by Kubernetes itself, never by a CRD of ours. */
export function isBuiltInGroup(group: string): boolean {
  return !group.includes('.') || group.endsWith('.k8s.io');
}
