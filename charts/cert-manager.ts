/**
 * cert-manager (networking layer): the chart with its CRDs, and ClusterIssuers for Let's
 * Encrypt staging and production solving DNS-01 through Cloudflare — publicly signed
 * certificates, nothing self-signed. The API token is a declared need: the Secret
 * CLOUDFLARE_API_TOKEN_SECRET in cert-manager's own namespace, where cert-manager reads the
 * references of ClusterIssuers (its cluster resource namespace, the chart's default).
 */
import { z } from '../lib/model/config/zod';
import type { CertManagerValues } from '../imports/helm/cert-manager';
import { ClusterIssuer } from '../imports/cert-manager-cert-manager.io';
import { defineService } from '../lib/model/catalog';
import { Checkpoint } from '../lib/model/checkpoint';
import { bool } from '../lib/model/config/primitives';
import { helmRelease } from './helm-release';
import { Layer } from '../lib/model/layers';
import { Platform } from '../lib/model/platform';
import { Resources, resources } from '../lib/model/resources';
import { HomelabService } from '../lib/model/service';
import { IMAGES } from './versions';

/** `services.certManager`. */
export const certManagerSettings = z
  .strictObject({
    enabled: bool.default(false),
    /** Contact for the Let's Encrypt account (expiry notices). */
    email: z.email({ error: 'expected an e-mail address' }).optional(),
  })
  .superRefine((certManager, ctx) => {
    if (!certManager.enabled) return;
    if (!certManager.email) ctx.addIssue({ code: 'custom', path: ['email'], message: "expected an e-mail address for the Let's Encrypt account" });
  })
  .prefault({});

export type CertManagerSettings = z.output<typeof certManagerSettings>;

export type CertManagerProps = Omit<CertManagerSettings, 'enabled'>;

/** The controller's metrics as the chart's Service serves them. */
const CONTROLLER_METRICS_SOURCE = 'cert-manager/cert-manager deploy/charts/cert-manager/templates/service.yaml';

export const CERT_MANAGER_NAMESPACE = 'cert-manager';
/** The Secret with the Cloudflare API token (Zone:DNS:Edit) the DNS-01 solver uses, under the key `api-token`. */
export const CLOUDFLARE_API_TOKEN_SECRET = 'cloudflare-api-token';

/** The issuers, by name: try a new setup on staging (no rate limits), then switch to production. */
export const CLUSTER_ISSUERS = {
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory',
  'letsencrypt-production': 'https://acme-v02.api.letsencrypt.org/directory',
} as const;

const COMPONENTS: Record<'controller' | 'webhook' | 'cainjector', Resources> = {
  controller: resources('20m', '64Mi', '200m', '256Mi'),
  webhook: resources('10m', '32Mi', '100m', '128Mi'),
  cainjector: resources('10m', '64Mi', '100m', '256Mi'),
};

/**
 * The controller's metrics Service (chart templates/service.yaml: `prometheus.enabled`); the
 * controller's pods carry the same labels and serve the metrics on container port 9402.
 */
const METRICS_SERVICE = { 'app.kubernetes.io/name': 'cert-manager', 'app.kubernetes.io/instance': 'cert-manager', 'app.kubernetes.io/component': 'controller' };
/** The name of that Service's port 9402 in the pinned chart (older charts named it `tcp-prometheus-servicemonitor`). */
const METRICS_SERVICE_PORT = 'http-metrics';
const METRICS_POD_PORT = 9402;
/** The webhook's pods (chart templates/webhook-deployment.yaml) and `webhook.securePort`, which the API server calls. */
const WEBHOOK_PODS = { 'app.kubernetes.io/name': 'webhook', 'app.kubernetes.io/instance': 'cert-manager', 'app.kubernetes.io/component': 'webhook' };
const WEBHOOK_PORT = 10250;

export class CertManager extends HomelabService {
  constructor(scope: Platform, props: CertManagerProps) {
    const email = props.email;
    if (email === undefined) throw new Error("cert-manager: the Let's Encrypt account needs an e-mail address");
    super(scope, 'cert-manager', props, {
      // Every layer may need certificates (the RabbitMQ operators' webhooks, the routes): ADR 23.
      layer: Layer.FOUNDATION,
      namespace: CERT_MANAGER_NAMESPACE,
      installsCrdGroups: ['cert-manager.io', 'acme.cert-manager.io'],
      // The chart's webhook (webhook.failurePolicy: Fail, templates/webhook-validating-webhook.yaml in cert-manager v1.21.1).
      admissionWebhookGroups: ['cert-manager.io', 'acme.cert-manager.io'],
      helm: helmRelease('certManager', certManagerValues()),
      ignoreDifferences: [
        // cainjector writes the webhook's CA into these after every sync.
        ...['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'].map((kind) => ({
          group: 'admissionregistration.k8s.io',
          kind,
          jqPathExpressions: ['.webhooks[]?.clientConfig.caBundle'],
        })),
      ],
    });
    // Read only when a challenge is solved: registering the ACME account (the checkpoint) does not
    // need it, so cert-manager does not wait for Vault; the Certificates' Applications do.
    const cloudflare = this.needSecret(CLOUDFLARE_API_TOKEN_SECRET, ['api-token'], 'Cloudflare API token with Zone:DNS:Edit on the domains, for ACME DNS-01 challenges', {
      neededToStart: false,
    });
    for (const [name, issuer] of Object.entries(CLUSTER_ISSUERS)) {
      new ClusterIssuer(this, name, {
        metadata: { name },
        spec: {
          acme: {
            server: issuer,
            email,
            // The ACME account key cert-manager generates in the cluster.
            privateKeySecretRef: { name: `${name}-account-key` },
            solvers: [{ dns01: { cloudflare: { apiTokenSecretRef: cloudflare.keySelector('api-token') } } }],
          },
        },
      });
    }
    for (const [workload, r] of Object.entries(COMPONENTS)) {
      this.requestCapacity(workload, 1, r.requests);
    }
    this.exposeMetrics({ name: 'controller', kind: 'service', selector: METRICS_SERVICE, port: METRICS_SERVICE_PORT,
      podPort: METRICS_POD_PORT,
      podSelector: METRICS_SERVICE,
    });
    this.serveApiServer({ port: WEBHOOK_PORT, podSelector: WEBHOOK_PODS });
    this.callApiServer({}, 'the controller, CA injector and webhook watch and change the cluster');
    this.allowEgress({
      name: 'acme',
      podSelector: METRICS_SERVICE,
      // HTTPS: the ACME directories (CLUSTER_ISSUERS) and the Cloudflare API (api.cloudflare.com)
      // for DNS-01; DNS: the DNS-01 self-check asks the zone's authoritative nameservers
      // directly (cert-manager pkg/issuer/acme/dns/util/wait.go).
      to: { kind: 'external', destinations: [{ to: 'internet', ports: [{ port: 443 }, { port: 53, protocol: 'UDP' }, { port: 53 }] }] },
      reason: "the controller registers with Let's Encrypt, answers DNS-01 challenges through Cloudflare's API and checks them at the authoritative nameservers",
    });
    this.addAlerts(
      {
        alert: 'CertificateExpiringSoon',
        expr: 'certmanager_certificate_expiration_timestamp_seconds - time() < 14 * 24 * 3600',
        for: '1h',
        severity: 'warning',
        summary: 'certificate {{ $labels.namespace }}/{{ $labels.name }} expires within 14 days and has not been renewed',
      },
      {
        alert: 'CertificateNotReady',
        expr: 'certmanager_certificate_ready_status{condition="False"} == 1',
        for: '15m',
        severity: 'warning',
        summary: 'certificate {{ $labels.namespace }}/{{ $labels.name }} is not ready',
      },
    );
    this.addCheckpoint();
  }

  /** Both issuers registered their ACME account with Let's Encrypt (condition Ready). */
  private addCheckpoint(): void {
    const names = Object.keys(CLUSTER_ISSUERS);
    new Checkpoint(this, 'checkpoint', {
      description: `the ClusterIssuers ${names.join(' and ')} are Ready (ACME account registered)`,
      image: IMAGES.curl,
      readsCluster: [{ apiGroups: ['cert-manager.io'], resources: ['clusterissuers'], verbs: ['get'], resourceNames: names }],
      // One command per line: under `sh -e` a failure inside an && list would not stop the script.
      script: names.map((name) => `kube_condition /apis/cert-manager.io/v1/clusterissuers/${name} Ready\necho "ClusterIssuer ${name} Ready"`).join('\n'),
    });
  }
}

function certManagerValues(): CertManagerValues {
  return {
    crds: { enabled: true, keep: true },
    // The chart defaults to kube-system, outside the namespaces the AppProject allows.
    global: { leaderElection: { namespace: CERT_MANAGER_NAMESPACE } },
    resources: COMPONENTS.controller,
    webhook: { resources: COMPONENTS.webhook },
    cainjector: { resources: COMPONENTS.cainjector },
    // The metrics Service; our own ServiceMonitor scrapes it (lib/passes/monitoring.ts).
    prometheus: { enabled: true, servicemonitor: { enabled: false } },
    // Checks that the API serves cert-manager resources; a Helm test Job, not ours.
    startupapicheck: { enabled: false },
  };
}

export const certManagerEntry = defineService({
  name: 'cert-manager',
  settings: { key: 'certManager', schema: certManagerSettings },
  names: [CERT_MANAGER_NAMESPACE],
  upstreamTargets: { 'cert-manager-controller': { selector: METRICS_SERVICE, port: METRICS_SERVICE_PORT, source: CONTROLLER_METRICS_SOURCE } },
  build: (platform, settings) => new CertManager(platform, settings),
});
