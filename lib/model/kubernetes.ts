/**
 * The Kubernetes minor version the platform targets, the oldest cluster it supports (ADR 32): the
 * manifests are typed by the cdk8s-plus line of this minor (package.json `cdk8s-plus-34`) and
 * validated against its OpenAPI definitions (vendor/kubernetes), the Pod Security labels pin it,
 * and `npm run render` renders every chart for it (helm's `--kube-version`, which charts'
 * `kubeVersion` constraints are checked against).
 */
export const KUBERNETES_VERSION = 'v1.34';

/**
 * The ConfigMap with the cluster's CA (`ca.crt`) that kube-controller-manager's root CA publisher
 * keeps in every namespace (Kubernetes 1.20+, RootCAConfigMap): what a projected API token volume
 * reads the CA from, like the one kubelet mounts by default.
 */
export const ROOT_CA_CONFIG_MAP = 'kube-root-ca.crt';

/**
 * Namespaces of Kubernetes itself: `default`, and the `kube-` prefix, which Kubernetes reserves
 * for its system namespaces (kube-system, kube-public, kube-node-lease; "Namespaces" in its
 * concepts). A service of ours must not make one its own (its Pod Security labels and
 * NetworkPolicies would take it over).
 */
export function isKubernetesNamespace(name: string): boolean {
  return name === 'default' || name.startsWith('kube-');
}
