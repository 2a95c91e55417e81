/**
 * The RabbitMQ Cluster Operator and the Messaging Topology Operator, from their upstream
 * kustomizations at pinned tags with pinned images (there is no official Helm chart; see
 * docs/adr/0005-rabbitmq-operators.md). They install the rabbitmq.com CRDs, so the service
 * emitting the RabbitmqCluster and its topology (charts/rabbitmq.ts) syncs after this one.
 * Their admission webhooks get certificates from cert-manager Issuers inside the
 * kustomizations, hence the requirement on cert-manager.io.
 */
import { Checkpoint, curlRetryOptions, curlRetrySeconds, STARTING_SERVER_CALL } from '../lib/model/checkpoint';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { HomelabService } from '../lib/model/service';
import { IMAGES, KUSTOMIZATIONS } from './versions';

/** Fixed by both upstream kustomizations. */
export const RABBITMQ_OPERATORS_NAMESPACE = 'rabbitmq-system';

/** The operators' Deployments (one replica each) as the pinned manifests request them. */
const OPERATOR_REQUESTS = [
  { workload: 'cluster-operator', cpu: '200m', memory: '500Mi' },
  { workload: 'messaging-topology-operator', cpu: '300m', memory: '128Mi' },
] as const;

/** Each webhook's Service, the Secret cert-manager writes its certificate to, and a path it serves. */
const WEBHOOKS = [
  { service: 'cluster-operator-webhook-service', certificateSecret: 'cluster-operator-webhook-server-cert', path: '/validate-rabbitmq-com-v1beta1-rabbitmqcluster' },
  { service: 'messaging-topology-webhook-service', certificateSecret: 'webhook-server-cert', path: '/validate-rabbitmq-com-v1beta1-queue' },
] as const;

/**
 * The Cluster Operator's metrics Service (config/installation/metrics_service.yaml at
 * v2.22.3): plain HTTP on 8080, port `http`, the manager's default --metrics-bind-address.
 * The Messaging Topology Operator's kustomization serves its metrics only over HTTPS with
 * authentication (--metrics-secure on :8443, config/default/manager_metrics_patch.yaml at
 * v1.20.1), which a metrics endpoint declaration cannot express yet: it is not scraped.
 */
export const CLUSTER_OPERATOR_METRICS_LABELS = {
  'app.kubernetes.io/name': 'rabbitmq-cluster-operator',
  'app.kubernetes.io/component': 'rabbitmq-operator',
} as const;
/** The Cluster Operator's pods (the Service above selects them by their name label). */
const CLUSTER_OPERATOR_PODS = { 'app.kubernetes.io/name': 'rabbitmq-cluster-operator' } as const;
const CLUSTER_OPERATOR_METRICS_PORT = 8080;

/** The checkpoint's webhook calls: retried for a minute (the webhooks may still be starting), each attempt within curl's limit. */
const WEBHOOK_CALL = STARTING_SERVER_CALL;

/**
 * Both operators' webhook servers listen on controller-runtime's default 9443 (the webhook
 * Services' targetPort: config/webhook/service.yaml of both repositories, and the topology
 * operator's config/default/manager_webhook_patch.yaml). The two operators are the only
 * pods of the namespace, so the rule selects them all rather than relying on labels the
 * two kustomizations set differently.
 */
const WEBHOOK_SERVER_PORT = 9443;

export class RabbitmqOperators extends HomelabService {
  constructor(scope: Platform) {
    super(scope, 'rabbitmq-operators', {}, {
      layer: Layer.DATA_MESH,
      namespace: RABBITMQ_OPERATORS_NAMESPACE,
      installsCrdGroups: ['rabbitmq.com'],
      kustomizations: [KUSTOMIZATIONS.rabbitmqClusterOperator, KUSTOMIZATIONS.rabbitmqTopologyOperator],
      requiresCrdGroups: ['cert-manager.io'],
      // Both operators validate rabbitmq.com resources (failurePolicy: Fail, config/webhook/manifests.yaml at the pinned tags).
      admissionWebhookGroups: ['rabbitmq.com'],
      // The Certificates of the kustomizations (config/certmanager), whose CA the checkpoint reads.
      upstreamSecrets: WEBHOOKS.map((webhook) => webhook.certificateSecret),
      generatesSecrets: [
        // The Cluster Operator's default user, `<cluster>-default-user` (the checkpoint of charts/rabbitmq.ts reads it).
        { group: 'rabbitmq.com', kind: 'RabbitmqCluster', secretNames: (cluster) => [`${cluster}-default-user`] },
        // The Topology Operator's credentials for a User without importCredentialsSecret (charts/rabbitmq.ts userCredentialsSecret).
        { group: 'rabbitmq.com', kind: 'User', secretNames: (user) => [`${user}-user-credentials`] },
      ],
      ignoreDifferences: ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'].map((kind) => ({
        // cert-manager's CA injector writes the CA into the webhooks after every sync.
        group: 'admissionregistration.k8s.io',
        kind,
        jqPathExpressions: ['.webhooks[]?.clientConfig.caBundle'],
      })),
    });
    for (const request of OPERATOR_REQUESTS) this.requestCapacity(request.workload, 1, request);
    this.addCheckpoint();
    this.addMonitoring();
    this.serveApiServer({ port: WEBHOOK_SERVER_PORT, podSelector: {} });
    this.callApiServer({}, 'both operators reconcile their resources');
  }

  private addMonitoring(): void {
    this.exposeMetrics({
      name: 'cluster-operator',
      kind: 'service',
      selector: CLUSTER_OPERATOR_METRICS_LABELS,
      port: 'http',
      podPort: CLUSTER_OPERATOR_METRICS_PORT,
      podSelector: CLUSTER_OPERATOR_PODS,
    });
    this.addAlerts({
      alert: 'RabbitmqClusterOperatorReconcileErrors',
      // controller-runtime's counter: errors in every 15-minute window for 30 minutes is no transient conflict.
      expr: `sum by (controller) (rate(controller_runtime_reconcile_errors_total{${SERVICE_LABEL}="${this.serviceName}"}[15m])) > 0`,
      for: '30m',
      severity: 'warning',
      summary: 'The RabbitMQ Cluster Operator keeps failing to reconcile {{ $labels.controller }} resources',
      description: 'Changes to RabbitmqClusters are not applied: see the operator logs in rabbitmq-system.',
    });
  }

  /**
   * Both webhooks answer over TLS with a certificate for their Service name, verified with
   * the CA cert-manager issued. They are `failurePolicy: Fail`: until they answer, no
   * RabbitmqCluster or topology object can be created.
   */
  private addCheckpoint(): void {
    new Checkpoint(this, 'checkpoint', {
      description: 'both operators\' admission webhooks answer over TLS with the certificates cert-manager issued for them',
      image: IMAGES.curl,
      // Each webhook's call with its retries at curl's limit, after the pod's start.
      scriptSeconds: WEBHOOKS.length * curlRetrySeconds(WEBHOOK_CALL),
      script: [
        // Any HTTP status below 500 is an answer from the webhook server.
        'check() {',
        `  code=$(curl -sS ${curlRetryOptions(WEBHOOK_CALL)} --cacert "/certs/$1/ca.crt" -o /dev/null -w '%{http_code}' "https://$1.${RABBITMQ_OPERATORS_NAMESPACE}.svc$2") || :`,
        '  echo "$1: HTTP $code"',
        // 000: no answer (curl failed, its -w still printed the code).
        '  [ "$code" -ge 100 ] && [ "$code" -lt 500 ]',
        '}',
        ...WEBHOOKS.map((webhook) => `check ${webhook.service} ${webhook.path}`),
      ].join('\n'),
      // Only the CA certificate: the checkpoint never sees the webhooks' private keys.
      volumes: WEBHOOKS.map((webhook) => ({
        name: webhook.service,
        secret: { secretName: webhook.certificateSecret, items: [{ key: 'ca.crt', path: 'ca.crt' }] },
      })),
      volumeMounts: WEBHOOKS.map((webhook) => ({ name: webhook.service, mountPath: `/certs/${webhook.service}`, readOnly: true })),
    });
  }
}
