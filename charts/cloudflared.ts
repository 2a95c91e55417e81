/**
 * Cloudflare Tunnel (networking layer, optional): connectors that dial out to Cloudflare's
 * edge, so public hosts work without an open port at home. A locally-managed tunnel: its
 * ingress rules are generated here from the non-admin exposures Traefik routes (admin UIs
 * never go through the tunnel), each forwarded to Traefik's websecure with the host as SNI
 * and Host header, and the certificate verified. The credentials file comes from a declared
 * Secret (docs/adr/0011-routing-exposures.md).
 */
import { createHash } from 'node:crypto';
import { k8s } from 'cdk8s-plus-34';
import { z } from '../lib/model/config/zod';
import { defineService } from '../lib/model/catalog';
import { Checkpoint, retrySeconds } from '../lib/model/checkpoint';
import { bool, intBetween, resourcesSchema } from '../lib/model/config/primitives';
import type { EdgePublisher, RoutedHost } from '../lib/model/exposure';
import { spreadOverNodes } from '../lib/model/placement';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { restrictedContainerContext, restrictedPodContext } from '../lib/model/pod-security';
import { toResourceRequirements } from '../lib/model/resources';
import type { SecretRef } from '../lib/model/secrets';
import { HomelabService } from '../lib/model/service';
import { IMAGES } from './versions';
import { emitYaml } from '../lib/util/yaml-emitter';
import { Traefik, traefikEntry, WEBSECURE_ADDRESS } from './traefik';
import { byCodeUnits } from '../lib/util/text-order';

export const CLOUDFLARED_NAMESPACE = 'cloudflared';
const COMPONENT = 'connector';
const METRICS_PORT = 2000;
const CONFIG_DIR = '/etc/cloudflared/config';
const CREDENTIALS_DIR = '/etc/cloudflared/credentials';
const CREDENTIALS_KEY = 'credentials.json';
/** The image's `nonroot` user (distroless). */
const NONROOT = 65532;
/** The checkpoint asks /ready 30 times, 10 s apart (five minutes), each call at most 5 s. */
const READY_CHECKS = 30;
const READY_PAUSE_SECONDS = 10;
const READY_CALL_MAX_SECONDS = 5;

export const DEFAULT_CLOUDFLARED_RESOURCES = { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } };

/** `services.cloudflared`. */
export const cloudflaredSettings = z
  .strictObject({
    enabled: bool.default(false),
    /** UUID of the locally-managed tunnel (`cloudflared tunnel create <name>` prints it). */
    tunnelId: z.uuid({ error: 'expected the tunnel UUID (cloudflared tunnel create prints it)' }).optional(),
    /** Connectors; each keeps its own connections to Cloudflare's edge. */
    replicas: intBetween(1, 5).default(1),
    resources: resourcesSchema.default(DEFAULT_CLOUDFLARED_RESOURCES),
  })
  .superRefine((cloudflared, ctx) => {
    if (cloudflared.enabled && !cloudflared.tunnelId) {
      ctx.addIssue({ code: 'custom', path: ['tunnelId'], message: 'expected the tunnel UUID (cloudflared tunnel create prints it)' });
    }
  })
  .prefault({});

export type CloudflaredSettings = z.output<typeof cloudflaredSettings>;

export type CloudflaredProps = Omit<CloudflaredSettings, 'enabled'> & {
  /** Where the tunnel forwards: its public routes become the ingress rules. */
  readonly router: Traefik;
};

export class Cloudflared extends HomelabService implements EdgePublisher {
  private readonly credentials: SecretRef;
  private readonly replicas: number;
  private readonly tunnelId: string;

  constructor(scope: Platform, private readonly props: CloudflaredProps) {
    const tunnelId = props.tunnelId;
    if (tunnelId === undefined) throw new Error('cloudflared: needs the tunnel UUID');
    super(scope, 'cloudflared', props, { layer: Layer.NETWORKING, namespace: CLOUDFLARED_NAMESPACE });
    this.tunnelId = tunnelId;
    this.replicas = props.replicas;
    this.credentials = this.needSecret('cloudflared-credentials', [CREDENTIALS_KEY], `credentials file of tunnel ${tunnelId} (cloudflared tunnel create writes it as ~/.cloudflared/${tunnelId}.json)`);
    this.requestCapacity(COMPONENT, this.replicas, props.resources.requests);
    new k8s.KubeService(this, 'metrics-service', {
      metadata: { name: 'cloudflared-metrics', labels: this.labelsFor(COMPONENT) },
      spec: { selector: this.selectorFor(COMPONENT), ports: [{ name: 'metrics', port: METRICS_PORT, targetPort: k8s.IntOrString.fromString('metrics') }] },
    });
    if (this.replicas > 1) {
      new k8s.KubePodDisruptionBudget(this, 'disruption-budget', {
        metadata: { name: 'cloudflared', labels: this.labelsFor(COMPONENT) },
        spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: this.selectorFor(COMPONENT) } },
      });
    }
    this.addMonitoring();
    this.addCheckpoint();
    this.allowEgress({
      name: 'cloudflare-edge',
      podSelector: this.selectorFor(COMPONENT),
      // Cloudflare's "Tunnel with firewall" (developers.cloudflare.com/cloudflare-one/connections/
      // connect-networks/configure-tunnels/tunnel-with-firewall/): the edge (region1/region2.v2.
      // argotunnel.com) on 7844 over TCP (http2) and UDP (quic), and api.cloudflare.com on 443.
      to: { kind: 'external', destinations: [{ to: 'internet', ports: [{ port: 7844 }, { port: 7844, protocol: 'UDP' }, { port: 443 }] }] },
      reason: 'the connectors keep the tunnel to the Cloudflare edge',
    });
  }

  /** What a host the tunnel serves resolves to: the tunnel's own name, as a proxied CNAME (Cloudflare's "tunnel route dns" makes the same). */
  get dnsTarget(): string {
    return `${this.tunnelId}.cfargotunnel.com`;
  }

  /** Whether the tunnel publishes a host: every public one, never an admin UI. */
  serves(host: RoutedHost): boolean {
    return !host.admin;
  }

  /** A host the tunnel serves resolves to Cloudflare's edge (`dnsTarget`, proxied). */
  publishesAtEdge(host: RoutedHost): boolean {
    return this.serves(host);
  }

  /**
   * The tunnel's config file and the connectors, restarted when it changes (cloudflared reads
   * it once): called by the routing pass with every host the router routes.
   */
  followRoutes(hosts: readonly RoutedHost[]): void {
    const config = emitYaml(tunnelConfig(this.tunnelId, hosts.filter((h) => this.serves(h))));
    new k8s.KubeConfigMap(this, 'config', {
      metadata: { name: 'cloudflared-config', labels: this.labelsFor(COMPONENT) },
      data: { 'config.yaml': config },
    });
    new k8s.KubeDeployment(this, 'deployment', {
      metadata: { name: 'cloudflared', labels: this.labelsFor(COMPONENT) },
      spec: {
        replicas: this.replicas,
        selector: { matchLabels: this.selectorFor(COMPONENT) },
        template: {
          metadata: {
            labels: this.labelsFor(COMPONENT),
            annotations: { 'homelab.dev/config-sha256': createHash('sha256').update(config).digest('hex') },
          },
          spec: {
            automountServiceAccountToken: false,
            securityContext: restrictedPodContext(NONROOT),
            affinity: this.replicas > 1 ? spreadOverNodes(this.selectorFor(COMPONENT)) : undefined,
            containers: [
              {
                name: 'cloudflared',
                image: IMAGES.cloudflared,
                // The image's entrypoint is `cloudflared --no-autoupdate`.
                args: ['tunnel', '--config', `${CONFIG_DIR}/config.yaml`, '--metrics', `0.0.0.0:${METRICS_PORT}`, 'run'],
                ports: [{ name: 'metrics', containerPort: METRICS_PORT }],
                // /ready answers 200 while the connector holds at least one edge connection.
                readinessProbe: { httpGet: { path: '/ready', port: k8s.IntOrString.fromString('metrics') }, periodSeconds: 10, failureThreshold: 3 },
                livenessProbe: { httpGet: { path: '/ready', port: k8s.IntOrString.fromString('metrics') }, initialDelaySeconds: 30, periodSeconds: 10, failureThreshold: 6 },
                resources: toResourceRequirements(this.props.resources),
                securityContext: restrictedContainerContext(),
                volumeMounts: [
                  { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
                  { name: 'credentials', mountPath: CREDENTIALS_DIR, readOnly: true },
                ],
              },
            ],
            volumes: [
              { name: 'config', configMap: { name: 'cloudflared-config' } },
              { name: 'credentials', secret: { secretName: this.credentials.secretName, items: [{ key: this.credentials.keySelector(CREDENTIALS_KEY).key, path: CREDENTIALS_KEY }] } },
            ],
          },
        },
      },
    });
  }

  private addMonitoring(): void {
    this.exposeMetrics({ name: COMPONENT, kind: 'pod', selector: this.selectorFor(COMPONENT), port: 'metrics' });
    this.addAlerts({
      alert: 'CloudflareTunnelDown',
      expr: `sum(cloudflared_tunnel_ha_connections{${SERVICE_LABEL}="${this.serviceName}"}) < 1`,
      for: '5m',
      severity: 'critical',
      summary: 'The Cloudflare Tunnel has no connection to the edge: public hosts are unreachable',
      description: 'Check the connector logs in namespace cloudflared (credentials, outbound access to Cloudflare on port 7844).',
    });
  }

  private addCheckpoint(): void {
    new Checkpoint(this, 'checkpoint', {
      description: 'the tunnel connectors hold connections to the Cloudflare edge (/ready)',
      image: IMAGES.curl,
      // Every try at curl's limit and the pause, after the pod's start.
      scriptSeconds: retrySeconds(READY_CHECKS, READY_CALL_MAX_SECONDS, READY_PAUSE_SECONDS),
      env: { READY_URL: `http://cloudflared-metrics.${CLOUDFLARED_NAMESPACE}.svc:${METRICS_PORT}/ready` },
      script: [
        `for _ in $(seq ${READY_CHECKS}); do`,
        `  if body=$(curl -fsS --max-time ${READY_CALL_MAX_SECONDS} "$READY_URL") && printf "%s" "$body" | grep -Eq '"readyConnections": *[1-9]'; then`,
        '    echo "tunnel ready: $body"',
        '    exit 0',
        '  fi',
        '  echo "the tunnel has no edge connection yet"',
        `  sleep ${READY_PAUSE_SECONDS}`,
        'done',
        'echo "the tunnel did not connect to the Cloudflare edge within 5 minutes" >&2',
        'exit 1',
      ].join('\n'),
    });
  }
}

/**
 * The locally-managed tunnel's config: one rule per public host to Traefik's websecure, with
 * the host as SNI (Traefik picks the certificate by it, cloudflared verifies it) and as Host
 * header (Traefik routes by it); anything else gets a 404 at the connector.
 */
export function tunnelConfig(tunnelId: string, publicHosts: readonly RoutedHost[]): object {
  return {
    tunnel: tunnelId,
    'credentials-file': `${CREDENTIALS_DIR}/${CREDENTIALS_KEY}`,
    ingress: [
      ...[...publicHosts]
        .sort((a, b) => byCodeUnits(a.host, b.host))
        .map(({ host }) => ({ hostname: host, service: `https://${WEBSECURE_ADDRESS}`, originRequest: { originServerName: host, httpHostHeader: host } })),
      { service: 'http_status:404' },
    ],
  };
}

export const cloudflaredEntry = defineService({
  name: 'cloudflared',
  settings: { key: 'cloudflared', schema: cloudflaredSettings },
  names: [CLOUDFLARED_NAMESPACE],
  requires: () => [{ entry: traefikEntry, path: ['enabled'], reason: 'the tunnel forwards to Traefik' }],
  check: (_settings, env) =>
    env.isEnabled(traefikEntry) && env.settingsOf(traefikEntry).issuer !== 'letsencrypt-production'
      ? [
          {
            path: ['enabled'],
            message: "expected services.traefik.issuer letsencrypt-production: the tunnel verifies Traefik's certificates, and staging ones are not publicly trusted",
          },
        ]
      : [],
  build: (platform, settings, context) => new Cloudflared(platform, { ...settings, router: context.required(traefikEntry) }),
});
