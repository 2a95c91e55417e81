/**
 * A pinned chart as an Argo CD Helm source: the version from the versions table and values of
 * the type generated from that very chart (imports/helm/), so a chart can only be given its
 * own values and a misspelled key fails type-checking.
 */
import type { ArgoCdValues } from '../imports/helm/argo-cd';
import type { AlloyValues } from '../imports/helm/alloy';
import type { AuthentikValues } from '../imports/helm/authentik';
import type { CertManagerValues } from '../imports/helm/cert-manager';
import type { CloudnativePgValues } from '../imports/helm/cloudnative-pg';
import type { DcgmExporterValues } from '../imports/helm/dcgm-exporter';
import type { ExternalDnsValues } from '../imports/helm/external-dns';
import type { ExternalSecretsValues } from '../imports/helm/external-secrets';
import type { KubePrometheusStackValues } from '../imports/helm/kube-prometheus-stack';
import type { KuberayOperatorValues } from '../imports/helm/kuberay-operator';
import type { LokiValues } from '../imports/helm/loki';
import type { LonghornValues } from '../imports/helm/longhorn';
import type { NvidiaDevicePluginValues } from '../imports/helm/nvidia-device-plugin';
import type { PluginBarmanCloudValues } from '../imports/helm/plugin-barman-cloud';
import type { SeaweedfsValues } from '../imports/helm/seaweedfs';
import type { TempoValues } from '../imports/helm/tempo';
import type { TraefikValues } from '../imports/helm/traefik';
import type { VaultValues } from '../imports/helm/vault';
import type { HelmRelease } from '../lib/model/sources';
import { CHARTS } from './versions';

/** The values type of each chart in CHARTS. */
interface ValuesByChart {
  argocd: ArgoCdValues;
  longhorn: LonghornValues;
  nvidiaDevicePlugin: NvidiaDevicePluginValues;
  dcgmExporter: DcgmExporterValues;
  kuberayOperator: KuberayOperatorValues;
  kubePrometheusStack: KubePrometheusStackValues;
  loki: LokiValues;
  alloy: AlloyValues;
  tempo: TempoValues;
  certManager: CertManagerValues;
  traefik: TraefikValues;
  vault: VaultValues;
  externalSecrets: ExternalSecretsValues;
  externalDns: ExternalDnsValues;
  seaweedfs: SeaweedfsValues;
  cloudnativePg: CloudnativePgValues;
  barmanCloud: PluginBarmanCloudValues;
  authentik: AuthentikValues;
}

export type PinnedChart = keyof typeof CHARTS & keyof ValuesByChart;

/**
 * @param releaseName the Helm release name. @default the Application (service) name
 */
export function helmRelease<K extends PinnedChart>(chart: K, values: ValuesByChart[K], releaseName?: string): HelmRelease {
  return { chart: CHARTS[chart], values, releaseName };
}
