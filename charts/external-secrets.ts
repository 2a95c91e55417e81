/**
 * External Secrets Operator (security layer): the `external-secrets` chart with its CRDs. It
 * turns every secret a service declares (`needSecret`) into a Kubernetes Secret read from
 * Vault; the SecretStores and ExternalSecrets themselves come from the secret-delivery pass (lib/passes/secret-delivery.ts) through `deliverTo`.
 * Its own need is a probe value the Vault configurator writes: the checkpoint waits until
 * that ExternalSecret is Ready, which proves the whole chain (Vault unsealed, Kubernetes
 * auth, role and policy, store, controller).
 */
import { k8s } from 'cdk8s-plus-34';
import { Construct } from 'constructs';
import { z } from '../lib/model/config/zod';
import type { ExternalSecretsValues } from '../imports/helm/external-secrets';
import {
  ExternalSecret,
  ExternalSecretSpecSecretStoreRefKind,
  ExternalSecretSpecTargetCreationPolicy,
  ExternalSecretSpecTargetTemplateEngineVersion,
} from '../imports/external-secrets-external-secrets.io';
import { SecretStore, SecretStoreSpecProviderVaultVersion } from '../imports/external-secrets-secretstore-external-secrets.io';
import { defineService } from '../lib/model/catalog';
import { Checkpoint } from '../lib/model/checkpoint';
import { bool, resourcesSchema } from '../lib/model/config/primitives';
import { helmRelease } from './helm-release';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { Resources, resources } from '../lib/model/resources';
import type { SecretDelivery, SecretNeed } from '../lib/model/secrets';
import { HomelabService } from '../lib/model/service';
import { IMAGES } from './versions';
import { Vault, vaultEntry } from './vault';
import { KUBERNETES_AUTH_MOUNT, VAULT_AUDIENCE, VAULT_KV_MOUNT, VaultAccess, vaultAccess, vaultPath } from './vault-configurator';

/** `services.externalSecrets`. */
export const externalSecretsSettings = z
  .strictObject({
    enabled: bool.default(false),
    /** The controller container; its webhook and cert-controller are sized by the construct. */
    resources: resourcesSchema.default({ requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } }),
  })
  .prefault({});

export type ExternalSecretsSettings = z.output<typeof externalSecretsSettings>;


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
const POD_LABELS_SOURCE: Record<keyof typeof POD_LABELS, string> = {
  controller: 'external-secrets helm-chart-2.9.0 templates/deployment.yaml, _helpers.tpl selectorLabels',
  webhook: 'external-secrets helm-chart-2.9.0 templates/webhook-deployment.yaml',
  'cert-controller': 'external-secrets helm-chart-2.9.0 templates/cert-controller-deployment.yaml',
};

export type ExternalSecretsProps = Omit<ExternalSecretsSettings, 'enabled'> & {
  /** Where the secrets come from: External Secrets syncs after Vault (and its configurator). */
  readonly vault: Vault;
};

/** How External Secrets refreshes a delivered Secret from Vault. */
const REFRESH_INTERVAL = '1h';

export class ExternalSecrets extends HomelabService implements SecretDelivery {
  readonly vault: Vault;
  /** The checkpoint's probe: a value in Vault the configurator writes, delivered like any other secret. */
  readonly probe: SecretNeed;

  constructor(scope: Platform, props: ExternalSecretsProps) {
    super(scope, 'external-secrets', props, {
      // Services of every layer read the Secrets it delivers: ADR 23.
      layer: Layer.FOUNDATION,
      namespace: EXTERNAL_SECRETS_NAMESPACE,
      installsCrdGroups: [EXTERNAL_SECRETS_GROUP],
      // The chart's webhook validates SecretStores (failurePolicy Fail, templates/validatingwebhook.yaml in external-secrets 2.9.0).
      admissionWebhookGroups: [EXTERNAL_SECRETS_GROUP],
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
      this.requestCapacity(workload, 1, demand.requests);
    }
    this.serveApiServer({ port: WEBHOOK_PORT, podSelector: POD_LABELS.webhook });
    this.addMonitoring();
    this.addCheckpoint();
    this.callApiServer({}, 'the controller, webhook and cert-controller watch and change the cluster');
  }

  get backend(): Vault {
    return this.vault;
  }

  /**
   * The consumer's ServiceAccount, SecretStore and one ExternalSecret per declared Secret, in
   * its namespace, created in `host`'s tree: called by the secret-delivery pass.
   */
  deliverTo(consumer: HomelabService, host: HomelabService): void {
    new ServiceSecretDelivery(host, `secret-delivery-${consumer.serviceName}`, {
      consumer,
      vault: this.vault,
      access: vaultAccess(consumer),
    });
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

interface ServiceSecretDeliveryProps {
  readonly consumer: HomelabService;
  readonly vault: Vault;
  readonly access: VaultAccess;
}

/**
 * One consumer's ServiceAccount, SecretStore and ExternalSecrets, in its namespace, created in
 * the host's tree. The store logs in to Vault as the consumer's own ServiceAccount and role,
 * whose policy reads only the consumer's subtree (docs/adr/0010).
 */
class ServiceSecretDelivery extends Construct {
  constructor(host: HomelabService, id: string, props: ServiceSecretDeliveryProps) {
    super(host, id);
    const { consumer, vault, access } = props;
    const namespace = consumer.namespaceName;
    const labels = host.labelsFor('secrets');
    const store = `${consumer.serviceName}-vault`;
    new k8s.KubeServiceAccount(this, 'account', {
      metadata: { name: access.serviceAccount, namespace, labels },
      // Only External Secrets uses it, through the TokenRequest API: no pod mounts its token.
      automountServiceAccountToken: false,
    });
    new SecretStore(this, 'store', {
      metadata: { name: store, namespace, labels },
      spec: {
        provider: {
          vault: {
            server: vault.address,
            path: VAULT_KV_MOUNT,
            version: SecretStoreSpecProviderVaultVersion.V2,
            auth: {
              kubernetes: {
                mountPath: KUBERNETES_AUTH_MOUNT,
                role: access.role,
                serviceAccountRef: { name: access.serviceAccount, audiences: [VAULT_AUDIENCE] },
              },
            },
          },
        },
      },
    });
    for (const need of consumer.secretNeeds) {
      const template = need.template;
      new ExternalSecret(this, `secret-${need.name}`, {
        metadata: {
          name: need.name,
          namespace,
          labels,
          annotations: {
            'homelab.dev/purpose': need.purpose,
            // Rendered from other services' values, which change with the config (the object store's
            // identities): Ready before the workloads of its Application roll (Argo CD's health check of
            // ExternalSecret), so that they start with the new values. Not in External Secrets' own
            // Application, where a wave before its chart would precede the ExternalSecret CRD.
            ...(template && host === consumer && { 'argocd.argoproj.io/sync-wave': '-1' }),
          },
        },
        spec: {
          refreshInterval: REFRESH_INTERVAL,
          secretStoreRef: { kind: ExternalSecretSpecSecretStoreRefKind.SECRET_STORE, name: store },
          target: {
            name: need.name,
            creationPolicy: ExternalSecretSpecTargetCreationPolicy.OWNER,
            ...((template || need.labels) && {
              template: {
                // A template with metadata alone keeps the fetched keys as the Secret's data
                // (external-secrets v2.9.0 pkg/controllers/externalsecret, applyTemplate: without
                // data or templateFrom the keys from `data` are the Secret's).
                ...(need.labels && { metadata: { labels: { ...need.labels } } }),
                ...(template && { engineVersion: ExternalSecretSpecTargetTemplateEngineVersion.V2, data: { ...template.data } }),
              },
            }),
          },
          data: template
            ? template.inputs.map((input) => ({ secretKey: input.variable, remoteRef: { key: vaultPath(input.from), property: input.key } }))
            : need.keys.map((key) => ({ secretKey: key, remoteRef: { key: vaultPath(need), property: key } })),
        },
      });
    }
  }
}

export const externalSecretsEntry = defineService({
  name: 'external-secrets',
  settings: { key: 'externalSecrets', schema: externalSecretsSettings },
  names: [EXTERNAL_SECRETS_NAMESPACE],
  requires: () => [{ entry: vaultEntry, path: ['enabled'], reason: 'External Secrets delivers secrets from Vault' }],
  upstreamTargets: Object.fromEntries(
    Object.entries(POD_LABELS).map(([name, selector]) => [`external-secrets-${name}`, { selector, port: 'metrics', source: POD_LABELS_SOURCE[name as keyof typeof POD_LABELS] }]),
  ),
  build: (platform, settings, context) => new ExternalSecrets(platform, { ...settings, vault: context.required(vaultEntry) }),
});
