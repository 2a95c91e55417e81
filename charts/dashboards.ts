/**
 * Grafana dashboards from grafana.com, each pinned to one revision: Grafana downloads exactly
 * that JSON, so a dashboard changes only when someone edits a revision here (and reviews the
 * new one). Services declare theirs with `HomelabService.addDashboard(DASHBOARDS.x)`.
 *
 * Only IDs and revisions that were verified to exist are listed; the comment on each says
 * where. Revision 1 is a dashboard's first upload, which grafana.com keeps downloadable.
 */
import type { Dashboard } from '../lib/model/monitoring';

// ============================== PINNED DASHBOARDS ==============================
export const DASHBOARDS = {
  /** "Node Exporter Full" (rfmoz): grafana.com/api/dashboards/1860 lists revision 45 as current. */
  nodeExporterFull: { name: 'node-exporter-full', gnetId: 1860, revision: 45 },
  /** "Kubernetes / Views / Global" (dotdc/grafana-dashboards-kubernetes): revision 43 is pinned by public configs. */
  kubernetesGlobal: { name: 'kubernetes-views-global', gnetId: 15757, revision: 43 },
  /** "ArgoCD": Argo CD's own examples/dashboard.json, uploaded once (June 2021). */
  argocd: { name: 'argocd', gnetId: 14584, revision: 1 },
  /**
   * "Longhorn Example v1.1.0": revision 6. Its robustness panels read the numeric
   * longhorn_volume_robustness of Longhorn < 1.8; 1.12 exports one series per `state` label.
   */
  longhorn: { name: 'longhorn', gnetId: 13032, revision: 6 },
  /** "RabbitMQ-Overview", the RabbitMQ team's dashboard for the rabbitmq_prometheus plugin: revision 15. */
  rabbitmqOverview: { name: 'rabbitmq-overview', gnetId: 10991, revision: 15 },
  /** "Triton Inference Server" (nv_inference_* and nv_gpu_* metrics): first revision. */
  triton: { name: 'triton-inference-server', gnetId: 12832, revision: 1 },
  /** "Traefik Official Kubernetes Dashboard" (Traefik Labs): revision 9. */
  traefik: { name: 'traefik', gnetId: 17347, revision: 9 },
  /** "HashiCorp Vault": revision 2. */
  vault: { name: 'vault', gnetId: 12904, revision: 2 },
  /** "Logs / App", a Loki log browser: revision 2. */
  lokiLogs: { name: 'loki-logs', gnetId: 13639, revision: 2, datasource: 'Loki' },
} as const satisfies Record<string, Dashboard>;
