/**
 * The prometheus-operator CRDs (ServiceMonitor, PodMonitor, PrometheusRule, Prometheus,
 * Alertmanager ...) as their own service in the first wave. Every service emitting monitors
 * or rules depends on this one through the CRD edge — not on the monitoring stack — so
 * storage and data services never wait for Prometheus and Grafana (docs/adr/0008).
 */
import { Checkpoint } from '../lib/model/checkpoint';
import { Layer } from '../lib/model/layers';
import { MONITORING_GROUP } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { HomelabService } from '../lib/model/service';
import { IMAGES, MANIFESTS } from './versions';

export const PROMETHEUS_OPERATOR_CRDS_NAMESPACE = 'prometheus-operator-crds';

/** The CRDs the platform's own resources use; the checkpoint waits for each to be Established. */
const USED_CRDS = ['servicemonitors', 'podmonitors', 'prometheusrules', 'prometheuses', 'alertmanagers'].map((plural) => `${plural}.${MONITORING_GROUP}`);

export class PrometheusOperatorCrds extends HomelabService {
  constructor(scope: Platform) {
    super(scope, 'prometheus-operator-crds', {}, {
      layer: Layer.GITOPS,
      namespace: PROMETHEUS_OPERATOR_CRDS_NAMESPACE,
      installsCrdGroups: [MONITORING_GROUP],
      manifests: [MANIFESTS.prometheusOperatorCrds],
    });
    new Checkpoint(this, 'checkpoint', {
      description: `the API server serves the CRDs: ${USED_CRDS.join(', ')}`,
      image: IMAGES.curl,
      readsCluster: [{ apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], verbs: ['get'], resourceNames: USED_CRDS }],
      // One command per line: under `sh -e` a failure inside an && list would not stop the script.
      script: USED_CRDS.map((crd) => `kube_condition /apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd} Established\necho "${crd} established"`).join('\n'),
    });
  }
}
