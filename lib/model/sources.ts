/** Upstream sources of a service: a pinned Helm chart with its values, kustomizations and plain manifests from Git. */

/**
 * What an upstream source can create beyond the namespace Argo CD deploys it to, which synth
 * cannot see (Argo CD renders it): the AppProject of its service must admit exactly this
 * (docs/adr/0022). Derived from the pinned source itself, every template or manifest of it;
 * `npm run render -- --check` reports a rendered object its project does not admit (ADR 26).
 */
export interface UpstreamFootprint {
  /** Cluster-scoped kinds as `Kind.group` (`ClusterRole.rbac.authorization.k8s.io`; the core group as `Kind`), sorted. */
  readonly clusterScoped: readonly string[];
  /** Namespaces its objects name themselves (the others land in the Application's destination namespace), sorted. */
  readonly namespaces: readonly string[];
}

/** A pinned chart: where it is published and which version. */
export interface ChartReference {
  /** Helm repository URL as Argo CD's `spec.source.repoURL` takes it. */
  readonly repoURL: string;
  readonly chart: string;
  /** Exact chart version (Argo CD `targetRevision`). */
  readonly version: string;
}

export interface HelmChartVersion extends ChartReference {
  /** What its templates and crds/ can create (subcharts included). */
  readonly footprint: UpstreamFootprint;
}

export interface HelmRelease {
  readonly chart: HelmChartVersion;
  readonly values: object;
  /** The Helm release name. @default the Application (service) name */
  readonly releaseName?: string;
}

/** A kustomization in an upstream Git repository, at a pinned tag. */
export interface KustomizeSource {
  readonly repoURL: string;
  /** A tag, never a branch. */
  readonly revision: string;
  readonly path: string;
  /** `name=newName:tag` overrides, so nothing runs with an unpinned image from the kustomization. */
  readonly images?: readonly string[];
  /** What the kustomization builds (its `namespace` set on every namespaced object). */
  readonly footprint: UpstreamFootprint;
}

/** Plain manifests (no kustomization) in a directory of an upstream Git repository, at a pinned tag. */
export interface GitManifests {
  readonly repoURL: string;
  /** A tag, never a branch. */
  readonly revision: string;
  readonly path: string;
  /** What the directory's manifests create. */
  readonly footprint: UpstreamFootprint;
}
