/** Kubernetes minor version the manifests and Pod Security labels target. */
export const KUBERNETES_VERSION = 'v1.28';
