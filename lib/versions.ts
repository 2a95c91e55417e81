/**
 * Every upstream version the platform deploys, in one place. Chart versions must match the
 * chart copies the typed values in imports/helm/ were generated from (a test checks this).
 */

export interface HelmChartVersion {
  /** Helm repository URL as Argo CD's `spec.source.repoURL` takes it. */
  readonly repoURL: string;
  readonly chart: string;
  /** Exact chart version (Argo CD `targetRevision`). */
  readonly version: string;
}

export const CHARTS = {
  argocd: { repoURL: 'https://argoproj.github.io/argo-helm', chart: 'argo-cd', version: '10.1.1' },
  longhorn: { repoURL: 'https://charts.longhorn.io', chart: 'longhorn', version: '1.12.1' },
  nvidiaDevicePlugin: { repoURL: 'https://nvidia.github.io/k8s-device-plugin', chart: 'nvidia-device-plugin', version: '0.20.0' },
  kuberayOperator: { repoURL: 'https://ray-project.github.io/kuberay-helm/', chart: 'kuberay-operator', version: '1.7.0' },
} as const satisfies Record<string, HelmChartVersion>;

/** Images of the containers we write ourselves (checkpoints, helpers), pinned by tag. */
export const IMAGES = {
  /** HTTP probes in checkpoints. */
  curl: 'docker.io/curlimages/curl:8.11.1',
  /** Shell for filesystem checks in checkpoints. */
  busybox: 'docker.io/library/busybox:1.37.0',
} as const;

/** Kubernetes minor version the manifests and Pod Security labels target. */
export const KUBERNETES_VERSION = 'v1.28';
