/**
 * Scrape targets that upstream charts or operators create (not in k8s/: charts are rendered
 * by Argo CD), by the name of the ServiceMonitor/PodMonitor that selects them, with the labels
 * and port names verified in their sources (the same facts the constructs cite). The
 * monitoring tests check the monitors against this table; `npm run lint:k8s` accepts a
 * monitor that selects nothing in k8s/ only when it selects exactly these.
 */
export interface UpstreamTarget {
  readonly selector: Readonly<Record<string, string>>;
  readonly port: string;
  readonly source: string;
}

export const UPSTREAM_TARGETS: Readonly<Record<string, UpstreamTarget>> = {
  'argocd-controller': {
    selector: { 'app.kubernetes.io/name': 'argocd-metrics', 'app.kubernetes.io/instance': 'argocd', 'app.kubernetes.io/component': 'application-controller' },
    port: 'http-metrics',
    source: 'argo-helm argo-cd 10.1.1 templates/argocd-application-controller/metrics.yaml, _common.tpl',
  },
  'argocd-server': {
    selector: { 'app.kubernetes.io/name': 'argocd-server-metrics', 'app.kubernetes.io/instance': 'argocd', 'app.kubernetes.io/component': 'server' },
    port: 'http-metrics',
    source: 'argo-helm argo-cd 10.1.1 templates/argocd-server/metrics.yaml',
  },
  'argocd-repo-server': {
    selector: { 'app.kubernetes.io/name': 'argocd-repo-server-metrics', 'app.kubernetes.io/instance': 'argocd', 'app.kubernetes.io/component': 'repo-server' },
    port: 'http-metrics',
    source: 'argo-helm argo-cd 10.1.1 templates/argocd-repo-server/metrics.yaml',
  },
  'argocd-applicationset': {
    selector: { 'app.kubernetes.io/name': 'argocd-metrics', 'app.kubernetes.io/instance': 'argocd', 'app.kubernetes.io/component': 'applicationset-controller' },
    port: 'http-metrics',
    source: 'argo-helm argo-cd 10.1.1 templates/argocd-applicationset/metrics.yaml',
  },
  'longhorn-manager': {
    selector: { app: 'longhorn-manager' },
    port: 'manager',
    source: 'longhorn 1.12.1 chart/templates/daemonset-sa.yaml (Service longhorn-backend), servicemonitor.yaml',
  },
  'rabbitmq-operators-cluster-operator': {
    selector: { 'app.kubernetes.io/name': 'rabbitmq-cluster-operator', 'app.kubernetes.io/component': 'rabbitmq-operator' },
    port: 'http',
    source: 'rabbitmq/cluster-operator v2.22.3 config/installation/metrics_service.yaml',
  },
  // The RabbitmqCluster is ours, but the operator makes its Services from it.
  'rabbitmq-broker': {
    selector: { 'app.kubernetes.io/name': 'rabbitmq', 'app.kubernetes.io/component': 'rabbitmq' },
    port: 'prometheus',
    source: 'rabbitmq/cluster-operator v2.22.3 internal/metadata/label.go, internal/resource/service.go',
  },
  'kuberay-operator-operator': {
    selector: { 'app.kubernetes.io/name': 'kuberay-operator', 'app.kubernetes.io/instance': 'kuberay-operator' },
    port: 'http',
    source: 'ray-project/kuberay v1.7.0 helm-chart/kuberay-operator/templates/service.yaml, _helpers.tpl',
  },
  // The pod templates are ours (in the RayCluster), but KubeRay makes the pods and adds the label.
  'ray-nodes': {
    selector: { 'ray.io/cluster': 'ray' },
    port: 'metrics',
    source: 'ray-project/kuberay v1.7.0 ray-operator/controllers/ray/common/pod.go labelPod',
  },
  'loki-server': {
    selector: { 'app.kubernetes.io/name': 'loki', 'app.kubernetes.io/instance': 'loki', 'app.kubernetes.io/component': 'single-binary' },
    port: 'http-metrics',
    source: 'grafana-community/helm-charts loki-18.11.0 templates/single-binary/statefulset-single-binary.yaml, _helpers.tpl',
  },
  'alloy-agent': {
    selector: { 'app.kubernetes.io/name': 'alloy', 'app.kubernetes.io/instance': 'alloy' },
    port: 'http-metrics',
    source: 'grafana/alloy helm-chart/1.11.1 templates/containers/_agent.yaml, _helpers.tpl',
  },
  'cert-manager-controller': {
    selector: { 'app.kubernetes.io/name': 'cert-manager', 'app.kubernetes.io/instance': 'cert-manager', 'app.kubernetes.io/component': 'controller' },
    port: 'tcp-prometheus-servicemonitor',
    source: 'cert-manager/cert-manager deploy/charts/cert-manager/templates/service.yaml',
  },
  'vault-server': {
    selector: { 'app.kubernetes.io/name': 'vault', 'app.kubernetes.io/instance': 'vault', component: 'server' },
    port: 'http',
    source: 'vault-helm v0.34.1 templates/server-statefulset.yaml (port named after vault.scheme, http with tlsDisable)',
  },
  'external-secrets-controller': {
    selector: { 'app.kubernetes.io/name': 'external-secrets', 'app.kubernetes.io/instance': 'external-secrets' },
    port: 'metrics',
    source: 'external-secrets helm-chart-2.9.0 templates/deployment.yaml, _helpers.tpl selectorLabels',
  },
  'external-secrets-webhook': {
    selector: { 'app.kubernetes.io/name': 'external-secrets-webhook', 'app.kubernetes.io/instance': 'external-secrets' },
    port: 'metrics',
    source: 'external-secrets helm-chart-2.9.0 templates/webhook-deployment.yaml',
  },
  'external-secrets-cert-controller': {
    selector: { 'app.kubernetes.io/name': 'external-secrets-cert-controller', 'app.kubernetes.io/instance': 'external-secrets' },
    port: 'metrics',
    source: 'external-secrets helm-chart-2.9.0 templates/cert-controller-deployment.yaml',
  },
  'traefik-proxy': {
    selector: { 'app.kubernetes.io/name': 'traefik', 'app.kubernetes.io/instance': 'traefik-traefik' },
    port: 'metrics',
    source: 'traefik/traefik-helm-chart v41.3.0 traefik/templates/_helpers.tpl traefik.labelselector, _podtemplate.tpl ports',
  },
  // k3s's CoreDNS, scraped by the monitoring stack's own ServiceMonitor (the chart's would write to kube-system).
  'monitoring-coredns': {
    selector: { 'k8s-app': 'kube-dns' },
    port: 'metrics',
    source: 'k3s-io/k3s manifests/coredns.yaml',
  },
};
