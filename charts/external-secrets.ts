/**
 * External Secrets Operator (security layer): the `external-secrets` chart with its CRDs. It
 * turns every secret a service declares (`needSecret`) into a Kubernetes Secret read from
 * Vault; the SecretStores and ExternalSecrets themselves come from lib/secret-delivery.ts.
 * Its own need is a probe value the Vault configurator writes: the checkpoint waits until
 * that ExternalSecret is Ready, which proves the whole chain (Vault unsealed, Kubernetes
 * auth, role and policy, store, controller).
 */
import { Duration } from 'cdk8s';
import type { ExternalSecretsValues } from '../imports/helm/external-secrets';
import { Checkpoint } from '../lib/model/checkpoint';
import { helmRelease } from '../lib/model/sources';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { Resources, resources } from '../lib/model/resources';
import type { SecretNeed } from '../lib/model/secrets';
import { HomelabService } from '../lib/model/service';
import { IMAGES } from './versions';
import type { Vault } from './vault';

export const EXTERNAL_SECRETS_NAMESPACE = 'external-secrets';
/** API group of SecretStore and ExternalSecret. */
export const EXTERNAL_SECRETS_GROUP = 'external-secrets.io';
/** The webhook's port (chart `webhook.port`), called by the API server for SecretStore validation. */
const WEBHOOK_PORT = 10250;
const WEBHOOK_RESOURCES = resources('10m', '32Mi', '200m', '128Mi');
const CERT_CONTROLLER_RESOURCES = resources('10m', '32Mi', '200m', '128Mi');

/** Pod labels of the chart's three Deployments (release name = service name): _helpers.tpl selectorLabels. */
const POD_LABELS = {
  controller: { 'app.kubernetes.io/name': 'external-secrets', 'app.kubernetes.io/instance': 'external-secrets' },
  webhook: { 'app.kubernetes.io/name': 'external-secrets-webhook', 'app.kubernetes.io/instance': 'external-secrets' },
  'cert-controller': { 'app.kubernetes.io/name': 'external-secrets-cert-controller', 'app.kubernetes.io/instance': 'external-secrets' },
} as const;

export interface ExternalSecretsProps {
  /** Where the secrets come from: External Secrets syncs after Vault (and its configurator). */
  readonly vault: Vault;
  /** The controller container. */
  readonly resources: Resources;
}

export class ExternalSecrets extends HomelabService {
  static isExternalSecrets(x: unknown): x is ExternalSecrets {
    // Not `instanceof`: cdk8s' Chart answers it for every chart (Symbol.hasInstance).
    return ExternalSecrets.prototype.isPrototypeOf(x as object);
  }

  readonly vault: Vault;
  /** The checkpoint's probe: a value in Vault the configurator writes, delivered like any other secret. */
  readonly probe: SecretNeed;

  constructor(scope: Platform, props: ExternalSecretsProps) {
    super(scope, 'external-secrets', props, {
      layer: Layer.SECURITY,
      namespace: EXTERNAL_SECRETS_NAMESPACE,
      installsCrdGroups: [EXTERNAL_SECRETS_GROUP],
      helm: helmRelease('externalSecrets', externalSecretsValues(props.resources)),
      ignoreDifferences: [
        // The cert-controller writes the webhook's CA into the webhook configurations and its certificate into the Secret.
        { group: 'admissionregistration.k8s.io', kind: 'ValidatingWebhookConfiguration', jqPathExpressions: ['.webhooks[]?.clientConfig.caBundle'] },
        { kind: 'Secret', name: 'external-secrets-webhook', jsonPointers: ['/data'] },
      ],
    });
    this.vault = props.vault;
    this.probe = this.needSecret('external-secrets-probe', ['probe'], 'checkpoint probe of External Secrets; the Vault configurator writes it, nothing to do').need;
    for (const [workload, demand] of [
      ['controller', props.resources],
      ['webhook', WEBHOOK_RESOURCES],
      ['cert-controller', CERT_CONTROLLER_RESOURCES],
    ] as const) {
      this.requestCapacity({ workload, replicas: 1, cpu: demand.requests.cpu, memory: demand.requests.memory });
    }
    this.serveApiServer({ port: WEBHOOK_PORT, podSelector: POD_LABELS.webhook });
    this.addMonitoring();
    this.addCheckpoint();
  }

  private addMonitoring(): void {
    for (const [name, selector] of Object.entries(POD_LABELS)) {
      this.exposeMetrics({ name, kind: 'pod', selector, port: 'metrics' });
    }
    const eso = `${SERVICE_LABEL}="${this.serviceName}"`;
    // Metric names from v2.9.0: pkg/controllers/externalsecret/esmetrics and secretstore/ssmetrics
    // (labels name, namespace, condition, status; the scrape renames namespace to exported_namespace).
    this.addAlerts(
      {
        alert: 'ExternalSecretNotSynced',
        expr: `externalsecret_status_condition{${eso}, condition="Ready", status="False"} == 1`,
        for: '15m',
        severity: 'critical',
        summary: 'ExternalSecret {{ $labels.exported_namespace }}/{{ $labels.name }} cannot sync from Vault',
        description: 'Its Secret keeps the last value (or does not exist). Check the value exists in Vault at the path the synth summary lists, and that Vault is unsealed.',
      },
      {
        alert: 'SecretStoreNotReady',
        expr: `secretstore_status_condition{${eso}, condition="Ready", status="False"} == 1`,
        for: '15m',
        severity: 'warning',
        summary: 'SecretStore {{ $labels.exported_namespace }}/{{ $labels.name }} cannot log in to Vault',
        description: 'The Vault role of the service may be missing: the vault Application\'s configurator Job creates it on every sync.',
      },
    );
  }

  private addCheckpoint(): void {
    const path = `/apis/${EXTERNAL_SECRETS_GROUP}/v1/namespaces/${this.namespaceName}/externalsecrets/${this.probe.name}`;
    new Checkpoint(this, 'checkpoint', {
      description: 'the probe ExternalSecret is Ready: a value delivered from Vault',
      image: IMAGES.curl,
      timeout: Duration.minutes(10),
      readsCluster: [{ apiGroups: [EXTERNAL_SECRETS_GROUP], resources: ['externalsecrets'], verbs: ['get'], resourceNames: [this.probe.name] }],
      script: `kube_condition ${path} Ready\necho "ExternalSecret ${this.probe.name} Ready: delivered from Vault"`,
    });
  }
}

function externalSecretsValues(controller: Resources): ExternalSecretsValues {
  return {
    installCRDs: true,
    resources: controller,
    webhook: { resources: WEBHOOK_RESOURCES, port: WEBHOOK_PORT },
    certController: { resources: CERT_CONTROLLER_RESOURCES },
  };
}
