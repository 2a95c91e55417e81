/** Upstream sources of a service: a pinned Helm chart with its values, kustomizations and plain manifests from Git. */

export interface HelmChartVersion {
  /** Helm repository URL as Argo CD's `spec.source.repoURL` takes it. */
  readonly repoURL: string;
  readonly chart: string;
  /** Exact chart version (Argo CD `targetRevision`). */
  readonly version: string;
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
}

/** Plain manifests (no kustomization) in a directory of an upstream Git repository, at a pinned tag. */
export interface GitManifests {
  readonly repoURL: string;
  /** A tag, never a branch. */
  readonly revision: string;
  readonly path: string;
}
