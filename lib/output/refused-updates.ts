/**
 * Changes the API server refuses to make in place: a sync that carries one fails on that
 * resource ("Forbidden: updates to parameters are forbidden") until the operator removes the
 * live object, which nothing in k8s/ can say. The diff marks such a change with what to do.
 *
 * The rules are Kubernetes' update validation (pkg/apis/<group>/validation, Validate<Kind>Update,
 * and for the apps/v1 selectors pkg/registry/apps/<kind>/strategy.go), for the objects in k8s/ and,
 * with `npm run diff -- --rendered`, those the upstream charts render. A hook (Argo CD's, or
 * Helm's, which Argo CD runs as one) is created anew at every sync: no rule applies.
 */
import type { FieldChange } from './diff';
import { parseQuantity } from '../util/quantity';

interface Rule {
  readonly apiVersion: string;
  readonly kind: string;
  /** Of a resource's changed fields (diff paths), those the API server refuses to update. */
  refused(fields: readonly FieldChange[]): readonly FieldChange[];
  /** What the operator does about it, for the resource's name and namespace. */
  remedy(name: string, namespace: string | undefined): string;
}

/** Paths under one of these fields (`parameters`, `parameters.numberOfReplicas`). */
const under = (fields: readonly FieldChange[], roots: readonly string[]) =>
  fields.filter((field) => roots.some((root) => field.path === root || field.path.startsWith(`${root}.`) || field.path.startsWith(`${root}[`)));

const namespaced = (namespace: string | undefined) => (namespace ? ` -n ${namespace}` : '');

const RULES: readonly Rule[] = [
  {
    // ValidateStorageClassUpdate: parameters, provisioner, reclaimPolicy and volumeBindingMode are fixed at creation.
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    refused: (fields) => under(fields, ['parameters', 'provisioner', 'reclaimPolicy', 'volumeBindingMode']),
    remedy: (name) =>
      `delete it before the sync (\`kubectl delete storageclass ${name}\`), and Argo CD creates it anew; the volumes it provisioned keep their settings, volumes provisioned after get the new ones`,
  },
  {
    // ValidatePersistentVolumeClaimUpdate: a bound claim's spec is fixed but for a larger storage request (and its volume attributes class).
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    refused: (fields) =>
      under(fields, ['spec']).filter((field) => {
        if (field.path === 'spec.volumeAttributesClassName') return false;
        if (field.path !== 'spec.resources.requests.storage' || field.kind !== 'changed') return true;
        return parseQuantity(String(field.after)) < parseQuantity(String(field.before));
      }),
    remedy: (name, namespace) =>
      `a claim's storage can only grow, and nothing else of its spec can change: move the data to a new claim, or delete this one (\`kubectl delete pvc ${name}${namespaced(namespace)}\`, its data with it unless its volume is retained) before the sync`,
  },
  {
    // ValidateStatefulSetUpdate: only these fields of the spec may change.
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    refused: (fields) =>
      under(fields, ['spec']).filter((field) => under([field], ['spec.replicas', 'spec.template', 'spec.updateStrategy', 'spec.persistentVolumeClaimRetentionPolicy', 'spec.minReadySeconds', 'spec.ordinals', 'spec.revisionHistoryLimit']).length === 0),
    remedy: (name, namespace) =>
      `delete it but not its pods before the sync (\`kubectl delete statefulset ${name}${namespaced(namespace)} --cascade=orphan\`): the new one adopts them and their claims`,
  },
  ...['Deployment', 'DaemonSet'].map(
    (kind): Rule => ({
      // The selector is fixed in apps/v1: the registry's update strategy checks it (pkg/registry/apps/deployment and daemonset, strategy.go ValidateUpdate).
      apiVersion: 'apps/v1',
      kind,
      refused: (fields) => under(fields, ['spec.selector']),
      remedy: (name, namespace) => `delete it before the sync (\`kubectl delete ${kind.toLowerCase()} ${name}${namespaced(namespace)}\`), its pods with it`,
    }),
  ),
  ...['RoleBinding', 'ClusterRoleBinding'].map(
    (kind): Rule => ({
      // ValidateRoleBindingUpdate / ValidateClusterRoleBindingUpdate: "cannot change roleRef".
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind,
      refused: (fields) => under(fields, ['roleRef']),
      remedy: (name, namespace) => `delete it before the sync (\`kubectl delete ${kind.toLowerCase()} ${name}${namespaced(namespace)}\`), and Argo CD creates it anew`,
    }),
  ),
];

/**
 * Why the API server refuses to update `before` to `after` in place, and what to do: undefined
 * when it takes the change (or when the resource is a hook, created anew at each sync).
 */
export function refusedUpdate(before: unknown, after: unknown, fields: readonly FieldChange[]): string | undefined {
  if (!isResource(before) || !isResource(after) || before.kind !== after.kind || before.apiVersion !== after.apiVersion) return undefined;
  const annotations = after.metadata.annotations ?? {};
  if (annotations['argocd.argoproj.io/hook'] !== undefined || annotations['helm.sh/hook'] !== undefined) return undefined;
  const rule = RULES.find((r) => r.apiVersion === after.apiVersion && r.kind === after.kind);
  const refused = rule?.refused(fields) ?? [];
  if (!rule || refused.length === 0) return undefined;
  const paths = refused.slice(0, 3).map((field) => field.path);
  const more = refused.length > paths.length ? ` and ${refused.length - paths.length} more` : '';
  return `Kubernetes refuses to change ${paths.join(', ')}${more} in place: ${rule.remedy(after.metadata.name, after.metadata.namespace)}`;
}

interface Resource {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly annotations?: Readonly<Record<string, string>> };
}

function isResource(value: unknown): value is Resource {
  if (typeof value !== 'object' || value === null) return false;
  const { apiVersion, kind, metadata } = value as Record<string, any>;
  return typeof apiVersion === 'string' && typeof kind === 'string' && typeof metadata?.name === 'string';
}
