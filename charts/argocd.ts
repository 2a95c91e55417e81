/**
 * Argo CD, the first service: installed once by hand from the same chart and values
 * (README, k8s/<env>/bootstrap/argo-cd.values.yaml), then managing itself through its own
 * Application like every other service.
 */
import { z } from '../lib/model/config/zod';
import type { ArgoCdValues } from '../imports/helm/argo-cd';
import { ARGOCD_GROUP, ARGOCD_NAMESPACE } from '../lib/model/argocd';
import { defineService, ownSubdomain } from '../lib/model/catalog';
import { Checkpoint, CONNECT_MAX_SECONDS, curlRetryOptions, STARTING_SERVER_CALL } from '../lib/model/checkpoint';
import { intBetween, subdomain } from '../lib/model/config/primitives';
import { helmRelease } from './helm-release';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { Resources, resources } from '../lib/model/resources';
import { urlDestination } from '../lib/model/network';
import type { TraceEmission, TraceEmitter } from '../lib/model/tracing';
import { HomelabService } from '../lib/model/service';
import { OIDC_CLIENT_SECRET_KEY, OidcLoginService, SingleSignOnProvider } from '../lib/model/single-sign-on';
import { emitYaml } from '../lib/util/yaml-emitter';
import { IMAGES } from './versions';

/** `services.argocd`: Argo CD is always there (it syncs everything else). */
export const argoCdSettings = z
  .strictObject({
    /** Subdomain of the environment's domain the UI is served on (an admin route). */
    subdomain: subdomain.default('argocd'),
    /** Replicas of the API server and the repo server. */
    replicas: intBetween(1, 5).default(1),
  })
  .prefault({});

export type ArgoCdProps = z.output<typeof argoCdSettings>;

/** "ArgoCD": Argo CD's own examples/dashboard.json, uploaded to grafana.com once (June 2021). */
const DASHBOARD = { name: 'argocd', gnetId: 14584, revision: 1 } as const;

/** The Helm release name; the chart's labels carry it as app.kubernetes.io/instance. */
const RELEASE_NAME = 'argocd';

/** The in-cluster API server, `cluster.server`'s default: reached through the API-server rule. */
const IN_CLUSTER_SERVER = 'https://kubernetes.default.svc';

/**
 * The UI and API: the chart's `argocd-server` Service, port 80 (`server.service.servicePortHttp`)
 * to the server's container port 8080 (`server.containerPorts.server`), plain HTTP with
 * `server.insecure` (argo-helm argo-cd 10.1.1 templates/argocd-server/service.yaml, deployment.yaml).
 */
export const ARGOCD_SERVER = {
  serviceName: 'argocd-server',
  servicePort: 80,
  podPort: 8080,
  podSelector: { 'app.kubernetes.io/name': 'argocd-server', 'app.kubernetes.io/instance': RELEASE_NAME },
} as const;

/**
 * The chart's `<component>.metrics` Services (templates/argocd-<component>/metrics.yaml in argo-helm
 * argo-cd 10.1.1): labels from argo-cd.labels with nameOverride `argocd`, the port named by
 * `metrics.service.portName` (default `http-metrics`). The controller's and the
 * ApplicationSet controller's Services are both named `argocd-metrics` in their
 * app.kubernetes.io/name label: the component label tells them apart.
 */
const METRICS_SERVICES = [
  {
    name: 'controller',
    labelName: 'argocd-metrics',
    component: 'application-controller',
    podPort: 8082,
    source: 'argo-helm argo-cd 10.1.1 templates/argocd-application-controller/metrics.yaml, _common.tpl',
  },
  { name: 'server', labelName: 'argocd-server-metrics', component: 'server', podPort: 8083, source: 'argo-helm argo-cd 10.1.1 templates/argocd-server/metrics.yaml' },
  {
    name: 'repo-server',
    labelName: 'argocd-repo-server-metrics',
    component: 'repo-server',
    podPort: 8084,
    source: 'argo-helm argo-cd 10.1.1 templates/argocd-repo-server/metrics.yaml',
  },
  {
    name: 'applicationset',
    labelName: 'argocd-metrics',
    component: 'applicationset-controller',
    podPort: 8080,
    source: 'argo-helm argo-cd 10.1.1 templates/argocd-applicationset/metrics.yaml',
  },
] as const;

/** The labels of a component's metrics Service. */
function metricsServiceSelector(service: (typeof METRICS_SERVICES)[number]): Record<string, string> {
  return { 'app.kubernetes.io/name': service.labelName, 'app.kubernetes.io/instance': RELEASE_NAME, 'app.kubernetes.io/component': service.component };
}

/**
 * The chart's selector labels of a component's pods (argo-cd.selectorLabels: the name is
 * `argocd-<component>` with nameOverride `argocd`); the metrics ports above are the
 * components' `containerPorts.metrics` defaults in argo-cd 10.1.1 values.yaml.
 */
function podLabels(component: string): Record<string, string> {
  return { 'app.kubernetes.io/name': `argocd-${component}`, 'app.kubernetes.io/instance': RELEASE_NAME };
}

const METRICS_PORT = 'http-metrics';

/**
 * Argo CD stopped assessing Application health in 1.8, so waves of child Applications
 * would not wait for each other. This check restores it, and also reports a child whose
 * last sync failed (e.g. a failed checkpoint hook) as Degraded, and one whose sync
 * (hooks included) is still running as Progressing: the stock check reads only
 * status.health, which turns Healthy before PostSync hooks have run.
 */
export const APPLICATION_HEALTH_LUA = `hs = {}
hs.status = "Progressing"
hs.message = ""
if obj.status == nil then
  return hs
end
local op = obj.status.operationState
if op ~= nil then
  if op.phase == "Failed" or op.phase == "Error" then
    hs.status = "Degraded"
    hs.message = "last sync " .. string.lower(op.phase) .. ": " .. (op.message or "")
    return hs
  end
  if op.phase == "Running" or op.phase == "Terminating" then
    hs.message = "sync in progress"
    return hs
  end
end
if obj.status.health ~= nil then
  hs.status = obj.status.health.status
  if obj.status.health.message ~= nil then
    hs.message = obj.status.health.message
  end
end
return hs
`;

/**
 * The Secret of the OIDC client's secret. Argo CD resolves `$<secret>:<key>` in argocd-cm only
 * from a Secret of its namespace labelled `app.kubernetes.io/part-of: argocd` (Argo CD v3.4
 * docs, operator-manual/user-management "Sensitive Data and SSO Client Secrets").
 */
const OIDC_CLIENT_SECRET = 'argocd-oidc-client';
const ARGOCD_SECRET_LABELS = { 'app.kubernetes.io/part-of': 'argocd' } as const;

export class ArgoCd extends HomelabService implements TraceEmitter, OidcLoginService {
  readonly hostname: string;
  readonly values: ArgoCdValues;
  /**
   * The API server, repository server and application controller read `otlp.address` (OTLP/gRPC,
   * `host:port`; `otlp.insecure` defaults to true) from argocd-cmd-params-cm (argo-cd 10.1.1
   * templates: ARGOCD_*_OTLP_ADDRESS). The bootstrap values file carries it too.
   */
  readonly traceEmissions: readonly TraceEmission[] = [
    {
      name: 'argocd',
      podSelector: { 'app.kubernetes.io/part-of': 'argocd' },
      protocol: 'grpc',
      connect: (endpoint) => {
        this.values.configs!.params = { ...this.values.configs!.params, 'otlp.address': endpoint };
      },
    },
  ];

  constructor(scope: Platform, props: ArgoCdProps) {
    const hostname = scope.hostname(props.subdomain);
    const values = argoCdValues(hostname, props.replicas);
    super(scope, 'argocd', props, {
      layer: Layer.GITOPS,
      namespace: ARGOCD_NAMESPACE,
      installsCrdGroups: [ARGOCD_GROUP],
      helm: helmRelease('argocd', values, RELEASE_NAME),
    });
    this.hostname = hostname;
    this.values = values;
    for (const [workload, component] of Object.entries(components(props.replicas))) {
      this.requestCapacity(workload, component.replicas, component.resources.requests);
    }

    new Checkpoint(this, 'checkpoint', {
      description: 'the API server answers its full health check (which includes Redis) and serves its version',
      image: IMAGES.curl,
      // Both calls within curl's limit: (10 + 1) × 10 + 10 × 6 + 10 s at most, well inside the default deadline.
      script: [
        `curl -fsS ${curlRetryOptions(STARTING_SERVER_CALL)} "http://argocd-server.argocd.svc/healthz?full=true"`,
        `curl -fsS --connect-timeout ${CONNECT_MAX_SECONDS} --max-time ${STARTING_SERVER_CALL.maxSeconds} "http://argocd-server.argocd.svc/api/version" | grep -q "\\"Version\\""`,
      ].join('\n'),
    });
    this.addMonitoring();
    this.callApiServer({}, 'the application controller, server, ApplicationSet and notifications controllers watch and change the cluster');
    const server = scope.config.cluster.server;
    if (server !== IN_CLUSTER_SERVER) {
      this.allowEgress({
        name: 'destination-cluster',
        podSelector: {},
        to: { kind: 'external', destinations: [urlDestination(server)] },
        reason: `the controller and server deploy to and read the cluster at ${server}`,
      });
    }
    this.allowEgress({
      name: 'repositories',
      podSelector: podLabels('repo-server'),
      to: { kind: 'repositories' },
      reason: 'the repository server pulls the Git repository and every chart and kustomization the Applications name',
    });
    // The CLI reaches the API through Traefik with `argocd login <host> --grpc-web`.
    this.expose({ subdomain: props.subdomain, ...ARGOCD_SERVER, admin: true, ownOidcLogin: true });
  }

  /**
   * Logs users in through the provider as well as the local admin (kept for before the provider
   * is up, and for when it is down): Argo CD's own OIDC client in argocd-cm (no Dex), with its
   * callback at `<url>/auth/callback` (the chart's `url` is `https://<global.domain>`, argo-cd
   * 10.1.1 templates/_helpers.tpl argo-cd.config.cm.presets; Argo CD docs "Existing OIDC Provider").
   * The admin group gets role:admin, the viewer group role:readonly; anyone else signed in gets
   * nothing (`policy.default` stays empty).
   */
  logInThrough(provider: SingleSignOnProvider): void {
    // Read when someone logs in: Argo CD starts (and syncs everything) without it.
    const { issuer, clientSecret } = this.registerOidcLogin(provider, {
      secretName: OIDC_CLIENT_SECRET,
      clientId: 'argocd',
      displayName: 'Argo CD',
      redirectUris: [`https://${this.hostname}/auth/callback`],
      pods: podLabels('server'),
      podsName: "Argo CD's API server",
      secretLabels: ARGOCD_SECRET_LABELS,
    });
    const configs = this.values.configs!;
    configs.cm = {
      ...configs.cm,
      'oidc.config': emitYaml({
        name: provider.serviceName,
        issuer: issuer.issuerUrl,
        clientID: 'argocd',
        clientSecret: `$${clientSecret.secretName}:${OIDC_CLIENT_SECRET_KEY}`,
        requestedScopes: [...issuer.scopes],
        requestedIDTokenClaims: { [issuer.groupsClaim]: { essential: true } },
      }),
    };
    configs.rbac = {
      'policy.csv': `g, ${issuer.adminGroup}, role:admin\ng, ${issuer.viewerGroup}, role:readonly\n`,
      // The claim whose values the `g` lines name (argo-cd 10.1.1 values.yaml configs.rbac.scopes).
      scopes: `[${issuer.groupsClaim}]`,
    };
  }

  /**
   * The four components' metrics; alerts on what the application controller reports about
   * every Application (argocd_app_info, one series per Application with its sync and health
   * status as labels: controller/metrics/metrics.go).
   */
  private addMonitoring(): void {
    for (const service of METRICS_SERVICES) {
      this.exposeMetrics({
        name: service.name,
        kind: 'service',
        selector: metricsServiceSelector(service),
        port: METRICS_PORT,
        podPort: service.podPort,
        podSelector: podLabels(service.component),
      });
    }
    const apps = (selector: string) => `argocd_app_info{${SERVICE_LABEL}="${this.serviceName}", ${selector}}`;
    this.addAlerts(
      {
        alert: 'ArgocdAppDegraded',
        expr: `max by (name, project) (${apps('health_status="Degraded"')}) > 0`,
        // A failed checkpoint hook makes its Application Degraded (the health check in argocd-cm).
        for: '10m',
        severity: 'warning',
        summary: 'Argo CD Application {{ $labels.name }} is Degraded',
        description: 'Its last sync or checkpoint failed, or one of its resources is unhealthy: see the Application in the Argo CD UI.',
      },
      {
        alert: 'ArgocdAppOutOfSync',
        expr: `max by (name, project) (${apps('sync_status="OutOfSync", autosync_enabled="true"')}) > 0`,
        for: '30m',
        severity: 'warning',
        summary: 'Argo CD Application {{ $labels.name }} has been OutOfSync for 30 minutes despite automated sync',
        description: 'Automated sync keeps failing or something keeps changing the live resources: see the sync status in the Argo CD UI.',
      },
      {
        alert: 'ArgocdAppAwaitingSync',
        expr: `max by (name, project) (${apps('sync_status="OutOfSync", autosync_enabled="false"')}) > 0`,
        for: '30m',
        // With manual sync, OutOfSync is the expected state after a merge, until someone syncs.
        severity: 'info',
        summary: 'Argo CD Application {{ $labels.name }} has changes waiting for a manual sync for 30 minutes',
      },
    );
    this.addDashboard(DASHBOARD);
  }
}

/** Long-running Argo CD components: replicas and resources, for the values and the capacity check. */
function components(replicas: number): Record<'controller' | 'server' | 'repoServer' | 'applicationSet' | 'redis', { replicas: number; resources: Resources }> {
  return {
    controller: { replicas: 1, resources: resources('250m', '512Mi', '1', '1Gi') },
    server: { replicas, resources: resources('50m', '128Mi', '500m', '256Mi') },
    repoServer: { replicas, resources: resources('100m', '256Mi', '1', '512Mi') },
    applicationSet: { replicas: 1, resources: resources('25m', '64Mi', '250m', '128Mi') },
    redis: { replicas: 1, resources: resources('50m', '64Mi', '250m', '128Mi') },
  };
}

function argoCdValues(hostname: string, replicas: number): ArgoCdValues {
  const c = components(replicas);
  return {
    global: { domain: hostname },
    crds: { install: true, keep: true },
    configs: {
      cm: {
        'application.resourceTrackingMethod': 'annotation',
        'resource.customizations.health.argoproj.io_Application': APPLICATION_HEALTH_LUA,
        'admin.enabled': true,
        'exec.enabled': false,
        'statusbadge.enabled': false,
      },
      // TLS ends at the ingress (Traefik); the server speaks plain HTTP inside the cluster.
      params: { 'server.insecure': true },
    },
    // Argo CD's built-in OIDC client logs users in through the single sign-on service where one runs (logInThrough, ADR 38): no Dex.
    dex: { enabled: false },
    notifications: { enabled: false },
    // The metrics Services the ServiceMonitors select (ArgoCd.addMonitoring); the chart's own
    // ServiceMonitors stay off: monitors come from the declarations, where the CRDs exist.
    controller: { resources: c.controller.resources, metrics: { enabled: true } },
    server: { replicas: c.server.replicas, resources: c.server.resources, metrics: { enabled: true } },
    repoServer: { replicas: c.repoServer.replicas, resources: c.repoServer.resources, metrics: { enabled: true } },
    applicationSet: { resources: c.applicationSet.resources, metrics: { enabled: true } },
    redis: { resources: c.redis.resources },
    redisSecretInit: { resources: resources('10m', '32Mi', '100m', '64Mi') },
  };
}

export const argoCdEntry = defineService({
  name: 'argocd',
  settings: { key: 'argocd', schema: argoCdSettings },
  enabled: () => true,
  names: [ARGOCD_NAMESPACE],
  subdomains: ownSubdomain,
  upstreamTargets: Object.fromEntries(
    METRICS_SERVICES.map((service) => [
      `argocd-${service.name}`,
      {
        selector: metricsServiceSelector(service),
        port: METRICS_PORT,
        source: service.source,
      },
    ]),
  ),
  build: (platform, settings) => new ArgoCd(platform, settings),
});
