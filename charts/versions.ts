import type { GitManifests, HelmChartVersion, KustomizeSource } from '../lib/model/sources';

/**
 * Every upstream version the platform deploys, in one place. An upgrade is one edit here, then
 * `npm run upgrade`: it refreshes the vendored upstream inputs (vendor/: each chart's values and
 * schema, the CRDs) for these versions, regenerates imports/ and re-synthesizes k8s/ (ADR 25).
 * renovate.json proposes the edits: one of its managers matches each entry (a test checks), so
 * keep an entry's fields in the shape and order they have.
 *
 * Beside each version, its `footprint`: the cluster-scoped kinds and the namespaces the pinned
 * source can create objects in, which its service's AppProject must admit (docs/adr/0022). They
 * are upstream facts, read from the source itself — every template and crds/ file of the chart
 * archive (subcharts included), every object the kustomization builds; `npm run render -- --check`
 * fails when a rendered object falls outside its Application's project, so a version bump that
 * changes them cannot go unnoticed.
 */

/** Cluster-scoped kinds upstream sources create, as `Kind.group`. */
const CLUSTER_ROLE = 'ClusterRole.rbac.authorization.k8s.io';
const CLUSTER_ROLE_BINDING = 'ClusterRoleBinding.rbac.authorization.k8s.io';
const CRD = 'CustomResourceDefinition.apiextensions.k8s.io';
const MUTATING_WEBHOOK = 'MutatingWebhookConfiguration.admissionregistration.k8s.io';
const VALIDATING_WEBHOOK = 'ValidatingWebhookConfiguration.admissionregistration.k8s.io';
const INGRESS_CLASS = 'IngressClass.networking.k8s.io';
const PRIORITY_CLASS = 'PriorityClass.scheduling.k8s.io';
const NAMESPACE = 'Namespace';
const BUCKET_CLASS = 'BucketClass.objectstorage.k8s.io';
const BUCKET_ACCESS_CLASS = 'BucketAccessClass.objectstorage.k8s.io';

export const CHARTS = {
  argocd: {
    repoURL: 'https://argoproj.github.io/argo-helm', chart: 'argo-cd', version: '10.1.1',
    /** From argo-cd-10.1.1.tgz. */
    footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING, CRD], namespaces: [] },
  },
  longhorn: {
    repoURL: 'https://charts.longhorn.io', chart: 'longhorn', version: '1.12.1',
    /** From longhorn-1.12.1.tgz. */
    footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING, CRD, PRIORITY_CLASS], namespaces: [] },
  },
  nvidiaDevicePlugin: {
    repoURL: 'https://nvidia.github.io/k8s-device-plugin', chart: 'nvidia-device-plugin', version: '0.20.0',
    /** From nvidia-device-plugin-0.20.0.tgz (with node-feature-discovery 0.19.0). */
    footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING, CRD], namespaces: [] },
  },
  /** NVIDIA DCGM exporter 4.8.2 (DCGM 4.5.3): GPU telemetry on the GPU nodes. */
  dcgmExporter: {
    repoURL: 'https://nvidia.github.io/dcgm-exporter/helm-charts', chart: 'dcgm-exporter', version: '4.8.2',
    /** From dcgm-exporter-4.8.2.tgz. */
    footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING], namespaces: [] },
  },
  kuberayOperator: {
    repoURL: 'https://ray-project.github.io/kuberay-helm/', chart: 'kuberay-operator', version: '1.7.0',
    /** From kuberay-operator-1.7.0.tgz. */
    footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING, CRD], namespaces: [] },
  },
  kubePrometheusStack: {
    repoURL: 'https://prometheus-community.github.io/helm-charts', chart: 'kube-prometheus-stack', version: '88.5.3',
    /** From kube-prometheus-stack-88.5.3.tgz (with its subcharts crds, grafana, kube-state-metrics, prometheus-node-exporter and prometheus-windows-exporter); kube-system: the exporters' Services, Endpoints and ServiceMonitors of the control plane, default: the API server's ServiceMonitor. */
    footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING, CRD, MUTATING_WEBHOOK, VALIDATING_WEBHOOK], namespaces: ['default', 'kube-system'] },
  },
  loki: {
    repoURL: 'https://grafana-community.github.io/helm-charts', chart: 'loki', version: '18.11.0',
    /** From loki-18.11.0.tgz (with minio and rollout-operator). */
    footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING, CRD, MUTATING_WEBHOOK, VALIDATING_WEBHOOK], namespaces: [] },
  },
  alloy: {
    repoURL: 'https://grafana.github.io/helm-charts', chart: 'alloy', version: '1.11.1',
    /** From alloy-1.11.1.tgz. */
    footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING, CRD], namespaces: [] },
  },
  /** Grafana Tempo 2.10.8, single binary: the trace store. */
  tempo: {
    repoURL: 'https://grafana-community.github.io/helm-charts', chart: 'tempo', version: '2.2.4',
    /** From tempo-2.2.4.tgz. */
    footprint: { clusterScoped: [], namespaces: [] },
  },
  certManager: {
    repoURL: 'https://charts.jetstack.io', chart: 'cert-manager', version: 'v1.21.1',
    /** From cert-manager-v1.21.1.tgz. */
    footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING, CRD, MUTATING_WEBHOOK, VALIDATING_WEBHOOK], namespaces: [] },
  },
  /** Traefik v3.7.11; installs the traefik.io (and hub.traefik.io) CRDs from its crds/ folder. */
  traefik: {
    repoURL: 'https://traefik.github.io/charts', chart: 'traefik', version: '41.3.0',
    /** From traefik-41.3.0.tgz. */
    footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING, CRD, INGRESS_CLASS, MUTATING_WEBHOOK], namespaces: [] },
  },
  vault: {
    repoURL: 'https://helm.releases.hashicorp.com', chart: 'vault', version: '0.34.1',
    /** From vault-0.34.1.tgz. */
    footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING, MUTATING_WEBHOOK], namespaces: [] },
  },
  externalSecrets: {
    repoURL: 'https://charts.external-secrets.io', chart: 'external-secrets', version: '2.9.0',
    /** From external-secrets-2.9.0.tgz (with bitwarden-sdk-server). */
    footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING, VALIDATING_WEBHOOK], namespaces: [] },
  },
  /** ExternalDNS 0.21.0: DNS records at Cloudflare from our DNSEndpoints (docs/adr/0034); installs the DNSEndpoint CRD from its crds/ folder. */
  externalDns: {
    repoURL: 'https://kubernetes-sigs.github.io/external-dns/', chart: 'external-dns', version: '1.21.1',
    /** From external-dns-1.21.1.tgz (ClusterRole and ClusterRoleBinding unless `namespaced`, which we set). */
    footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING, CRD], namespaces: [] },
  },
  /** The CloudNativePG operator 1.30.0 (Apache-2.0); its CRDs are templates of the chart (crds.create). */
  cloudnativePg: {
    repoURL: 'https://cloudnative-pg.github.io/charts', chart: 'cloudnative-pg', version: '0.29.0',
    /** From cloudnative-pg-0.29.0.tgz (with its `monitoring` subchart, off). */
    footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING, CRD, MUTATING_WEBHOOK, VALIDATING_WEBHOOK], namespaces: [] },
  },
  /**
   * The Barman Cloud plugin v0.13.0 (CNPG-I, Apache-2.0): WAL archiving and base backups of the
   * CloudNativePG clusters to the environment's backup target; installs barmancloud.cnpg.io (a
   * chart template, crds.create). A second chart of the CloudNativePG Application (docs/adr/0039).
   */
  barmanCloud: {
    repoURL: 'https://cloudnative-pg.github.io/charts', chart: 'plugin-barman-cloud', version: '0.7.0',
    /** From plugin-barman-cloud-0.7.0.tgz (its cert-manager Issuer and Certificates are namespaced). */
    footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING, CRD], namespaces: [] },
  },
  /** SeaweedFS 4.44 (Apache-2.0): object storage, released with each server tag (docs/adr/0027). */
  seaweedfs: {
    repoURL: 'https://seaweedfs.github.io/seaweedfs/helm', chart: 'seaweedfs', version: '4.44.0',
    /** From seaweedfs-4.44.0.tgz (its COSI BucketClass and BucketAccessClass are cluster-scoped). */
    footprint: { clusterScoped: [BUCKET_ACCESS_CLASS, BUCKET_CLASS, CLUSTER_ROLE, CLUSTER_ROLE_BINDING], namespaces: [] },
  },
  /**
   * authentik 2026.2.3 (GPL-3.0): single sign-on (docs/adr/0037). Not the newest: from 2026.5 on its
   * Bitnami postgresql dependency is only in an OCI registry and the archive no longer renders offline.
   */
  authentik: {
    repoURL: 'https://charts.goauthentik.io', chart: 'authentik', version: '2026.2.3',
    /** From authentik-2026.2.3.tgz, with `serviceAccount.create` false (its authentik-remote-cluster subchart would add a ClusterRole and binding; postgresql stays off). */
    footprint: { clusterScoped: [], namespaces: [] },
  },
} as const satisfies Record<string, HelmChartVersion>;

/**
 * Upstream kustomizations Argo CD builds from Git at a release tag, with the images their
 * kustomizations leave at `latest` pinned by override to the same release (facts: docs/adr/0005).
 */
export const KUSTOMIZATIONS = {
  /** The kustomization's own `images` entry names an image the manifests do not use; the Deployment runs `ghcr.io/rabbitmq/cluster-operator:latest`. */
  rabbitmqClusterOperator: withReleaseImage(
    {
      repoURL: 'https://github.com/rabbitmq/cluster-operator',
      revision: 'v2.22.3',
      path: 'config/installation',
      /** From config/installation at v2.22.3 (16 objects; its Namespace is replaced by the service's own). */
      footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING, CRD, MUTATING_WEBHOOK, NAMESPACE, VALIDATING_WEBHOOK], namespaces: ['rabbitmq-system'] },
    },
    'ghcr.io/rabbitmq/cluster-operator',
    'ghcr.io/rabbitmq/cluster-operator',
  ),
  /** Overrides the kustomization's own entry (tag `latest`), as the project's release CI does. */
  rabbitmqTopologyOperator: withReleaseImage(
    {
      repoURL: 'https://github.com/rabbitmq/messaging-topology-operator',
      revision: 'v1.20.1',
      path: 'config/installation',
      /** From config/installation at v1.20.1 (30 objects; its Namespace is replaced by the service's own). */
      footprint: { clusterScoped: [CLUSTER_ROLE, CLUSTER_ROLE_BINDING, CRD, MUTATING_WEBHOOK, NAMESPACE, VALIDATING_WEBHOOK], namespaces: ['rabbitmq-system'] },
    },
    'rabbitmqoperator/messaging-topology-operator',
    'ghcr.io/rabbitmq/messaging-topology-operator',
  ),
} as const satisfies Record<string, KustomizeSource>;

/** The kustomization with its image `name` replaced by `newName` at the release's tag (`v2.22.3` → `2.22.3`). */
function withReleaseImage(source: Omit<KustomizeSource, 'images'>, name: string, newName: string): KustomizeSource {
  return { ...source, images: [`${name}=${newName}:${source.revision.replace(/^v/, '')}`] };
}

/** Upstream directories of plain manifests Argo CD applies from Git at a release tag. */
export const MANIFESTS = {
  /** The CRDs the prometheus-operator of kube-prometheus-stack 88.5.3 (v0.93.x) serves; the same files as imports/. */
  prometheusOperatorCrds: {
    repoURL: 'https://github.com/prometheus-operator/prometheus-operator',
    revision: 'v0.93.0',
    path: 'example/prometheus-operator-crd',
    /** From example/prometheus-operator-crd at v0.93.0 (10 CRDs). */
    footprint: { clusterScoped: [CRD], namespaces: [] },
  },
} as const satisfies Record<string, GitManifests>;

/**
 * Upstream releases whose CRDs type custom resources we write (imports/), where no chart or
 * source above pins them. Argo CD's CRDs come from v3.5.1 while the argo-cd chart installs
 * Argo CD v3.4.4: between the two the CRDs only add fields (vendor/README.md).
 */
export const CRD_RELEASES = {
  argocd: { repoURL: 'https://github.com/argoproj/argo-cd', revision: 'v3.5.1' },
} as const satisfies Record<string, Omit<GitManifests, 'path' | 'footprint'>>;

/** Ray release of the RayCluster: the one KubeRay v1.7.0's samples run. Head and workers must match. */
export const RAY_VERSION = '2.52.0';

/** Images of the containers we write ourselves (workloads, checkpoints), pinned by tag. */
export const IMAGES = {
  /** The broker: the 4.2 series Cluster Operator 2.22.3 defaults to (4.2.6), at its latest patch. */
  rabbitmq: 'docker.io/library/rabbitmq:4.2.8-management',
  /** Triton Inference Server 2.71.0, with the Python backend the smoke-test model uses. */
  triton: 'nvcr.io/nvidia/tritonserver:26.07-py3',
  /** Ray head and CPU workers. */
  ray: `docker.io/rayproject/ray:${RAY_VERSION}`,
  /** Ray GPU workers: the same release on CUDA (`-gpu` aliases the release's default `-cuXX`). */
  rayGpu: `docker.io/rayproject/ray:${RAY_VERSION}-gpu`,
  /** n8n: a 2.40 patch release (Docker Hub n8nio/n8n tags follow the n8n@x.y.z releases). */
  n8n: 'docker.io/n8nio/n8n:2.40.2',
  /** Cloudflare Tunnel connector (release 2026.8.2; distroless, runs as uid 65532). */
  cloudflared: 'docker.io/cloudflare/cloudflared:2026.8.2',
  /** HTTP probes in checkpoints. */
  curl: 'docker.io/curlimages/curl:8.11.1',
  /**
   * The Vault CLI for the configurator Job: the release vault-helm 0.34.1 runs (its values.yaml
   * and acceptance workflow pin hashicorp/vault 2.0.4).
   */
  vault: 'docker.io/hashicorp/vault:2.0.4',
  /**
   * PostgreSQL 18.1 for CloudNativePG clusters, the project's `system` image (Debian trixie, with
   * Barman Cloud; cloudnative-pg/postgres-containers). Pinned here rather than left to the
   * operator's default, which moves with the operator (pkg/versions/versions.go of the pinned
   * operator names its default). Also the checks' psql.
   */
  postgres: 'ghcr.io/cloudnative-pg/postgresql:18.1-system-trixie',
  /**
   * The Barman Cloud plugin's operator and the sidecar it injects into every PostgreSQL instance
   * with a backup: the release plugin-barman-cloud 0.7.0 defaults to (its appVersion v0.13.0),
   * pinned here rather than left to the chart's default.
   */
  barmanCloudPlugin: 'ghcr.io/cloudnative-pg/plugin-barman-cloud:v0.13.0',
  barmanCloudSidecar: 'ghcr.io/cloudnative-pg/plugin-barman-cloud-sidecar:v0.13.0',
  /** Shell for filesystem checks in checkpoints. */
  busybox: 'docker.io/library/busybox:1.37.0',
} as const;
