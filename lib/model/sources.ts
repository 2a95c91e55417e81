/**
 * Upstream sources of a service. A chart as an Argo CD Helm source: the pinned version from lib/versions.ts and
 * values of the type generated from that very chart (imports/helm/), so a chart can only be
 * given its own values and a misspelled key fails type-checking.
 */
import type { ArgoCdValues } from '../../imports/helm/argo-cd';
import type { AlloyValues } from '../../imports/helm/alloy';
import type { CertManagerValues } from '../../imports/helm/cert-manager';
import type { ExternalSecretsValues } from '../../imports/helm/external-secrets';
import type { KubePrometheusStackValues } from '../../imports/helm/kube-prometheus-stack';
import type { KuberayOperatorValues } from '../../imports/helm/kuberay-operator';
import type { LokiValues } from '../../imports/helm/loki';
import type { LonghornValues } from '../../imports/helm/longhorn';
import type { NvidiaDevicePluginValues } from '../../imports/helm/nvidia-device-plugin';
import type { TraefikValues } from '../../imports/helm/traefik';
import type { VaultValues } from '../../imports/helm/vault';
import { CHARTS, HelmChartVersion } from '../../charts/versions';

/** The values type of each chart in CHARTS. */
interface ValuesByChart {
  argocd: ArgoCdValues;
  longhorn: LonghornValues;
  nvidiaDevicePlugin: NvidiaDevicePluginValues;
  kuberayOperator: KuberayOperatorValues;
  kubePrometheusStack: KubePrometheusStackValues;
  loki: LokiValues;
  alloy: AlloyValues;
  certManager: CertManagerValues;
  traefik: TraefikValues;
  vault: VaultValues;
  externalSecrets: ExternalSecretsValues;
}

export type PinnedChart = keyof typeof CHARTS & keyof ValuesByChart;

export interface HelmRelease {
  readonly chart: HelmChartVersion;
  readonly values: object;
  readonly releaseName?: string;
}

/**
 * @param releaseName the Helm release name. @default the Application (service) name
 */
export function helmRelease<K extends PinnedChart>(chart: K, values: ValuesByChart[K], releaseName?: string): HelmRelease {
  return { chart: CHARTS[chart], values, releaseName };
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
