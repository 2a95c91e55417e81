/**
 * The monitoring stack of the observability layer: kube-prometheus-stack (Prometheus,
 * Alertmanager, Grafana, the prometheus-operator, kube-state-metrics, node-exporter) with
 * k3s-friendly defaults. The CRDs are not the chart's: the prometheus-operator-crds service
 * installs them in the first wave (server-side apply), so services can emit monitors long
 * before this stack runs, and Prometheus then picks up every ServiceMonitor, PodMonitor,
 * Probe, ScrapeConfig and PrometheusRule in the cluster, whoever emitted it.
 *
 * No secret is in Git: Grafana's admin comes from the declared Secret GRAFANA_ADMIN_SECRET,
 * and Alertmanager's receivers read their webhook URLs and SMTP passwords from files of the
 * declared Secret ALERTMANAGER_RECEIVERS_SECRET (one key per receiver and integration), both
 * in the monitoring namespace, where the chart and the operator read them.
 */
import { z } from '../lib/model/config/zod';
import type { KubePrometheusStackValues } from '../imports/helm/kube-prometheus-stack';
import { defineService } from '../lib/model/catalog';
import { Checkpoint, retrySeconds } from '../lib/model/checkpoint';
import { bool, k8sName, resourcesSchema, subdomain, volumeSize } from '../lib/model/config/primitives';
import { helmRelease } from './helm-release';
import { Layer } from '../lib/model/layers';
import { Dashboard, DashboardHost, isOwnDashboard, MONITORING_GROUP, ServiceDashboard } from '../lib/model/monitoring';
import { INTERNET_HTTPS, MetricsScraper, NetworkPeer } from '../lib/model/network';
import { Platform } from '../lib/model/platform';
import { parseQuantity } from '../lib/util/quantity';
import { byCodeUnits } from '../lib/util/text-order';
import { resources, Resources, sumOfContainers } from '../lib/model/resources';
import type { SecretRef } from '../lib/model/secrets';
import { HomelabService } from '../lib/model/service';
import { OIDC_CLIENT_SECRET_KEY, OidcIssuer, OidcLoginService, SingleSignOnProvider } from '../lib/model/single-sign-on';
import type { StorageProvider } from '../lib/model/storage';
import { IMAGES } from './versions';
import { longhornEntry, longhornStorageClassIssues } from './longhorn';
import { lokiEntry } from './loki';
import { tempoEntry } from './tempo';
import { PrometheusOperatorCrds } from './prometheus-operator-crds';

/** Receiver Alertmanager drops alerts into; the chart's own routes use it too. */
export const NULL_RECEIVER = 'null';

/** Requests and limits per component; Prometheus' memory grows with the number of series. */
export const DEFAULT_MONITORING_RESOURCES = {
  prometheus: { requests: { cpu: '200m', memory: '1Gi' }, limits: { cpu: '1', memory: '2Gi' } },
  alertmanager: { requests: { cpu: '20m', memory: '64Mi' }, limits: { cpu: '200m', memory: '128Mi' } },
  grafana: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
  operator: { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '200m', memory: '256Mi' } },
  kubeStateMetrics: { requests: { cpu: '20m', memory: '64Mi' }, limits: { cpu: '200m', memory: '256Mi' } },
  nodeExporter: { requests: { cpu: '20m', memory: '32Mi' }, limits: { cpu: '200m', memory: '64Mi' } },
};

/** Prometheus keeps this much history: hours, days or weeks (`15d`, `2w`). */
const retention = z
  .string({ error: 'expected a retention such as "15d" (h, d or w)' })
  .regex(/^[1-9]\d*(h|d|w)$/, { error: 'expected a retention such as "15d" (h, d or w)' });

/** One address or a comma-separated list, as Alertmanager's `to` takes it. */
const emailAddresses = z
  .string({ error: 'expected an e-mail address' })
  .regex(/^[^@\s,]+@[^@\s,]+\.[^@\s,]+(\s*,\s*[^@\s,]+@[^@\s,]+\.[^@\s,]+)*$/, { error: 'expected an e-mail address (or a comma-separated list)' });

const smarthost = z
  .string({ error: 'expected an SMTP server as "host:port"' })
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?:\d{1,5}$/, { error: 'expected an SMTP server as "host:port", e.g. "smtp.example.net:587"' });

const emailSchema = z
  .strictObject({
    to: emailAddresses,
    from: emailAddresses,
    smarthost,
    /**
     * SMTP user; its password is the key `<receiver>-smtp-password` of `alertmanager-receivers`.
     * @default no SMTP authentication (a relay that trusts the cluster)
     */
    username: z.string({ error: 'expected a user name' }).min(1, { error: 'expected a user name' }).optional(),
    /** STARTTLS is required unless this is false. */
    requireTls: bool.default(true),
  });

/** Where one receiver sends its notifications: any combination of the integrations. */
const receiverSchema = z
  .strictObject({
    /**
     * Generic webhook (JSON POST); the URL often embeds a token, so it is the key
     * `<receiver>-webhook-url` of `alertmanager-receivers`.
     */
    webhook: z.strictObject({}).optional(),
    /** Discord channel webhook; its URL is the key `<receiver>-discord-webhook-url` of `alertmanager-receivers`. */
    discord: z.strictObject({}).optional(),
    email: emailSchema.optional(),
  })
  .superRefine((receiver, ctx) => {
    if (!receiver.webhook && !receiver.discord && !receiver.email) {
      ctx.addIssue({ code: 'custom', path: [], message: 'expected at least one of webhook, discord, email' });
    }
  });

const alertmanagerSchema = z
  .strictObject({
    /** Alertmanager's UI (alerts, silences), an admin route. */
    subdomain: subdomain.default('alertmanager'),
    receivers: z.record(k8sName, receiverSchema).default({}),
    route: z
      .strictObject({
        /** Gets every warning (and critical alert, unless `critical` is set). @default none: alerts show in the UIs only */
        receiver: k8sName.optional(),
        /** Gets `severity: critical` alerts, e.g. a pager. @default `receiver` */
        critical: k8sName.optional(),
      })
      .prefault({}),
  })
  .superRefine((alertmanager, ctx) => {
    const declared = Object.keys(alertmanager.receivers);
    if (declared.includes(NULL_RECEIVER)) {
      ctx.addIssue({ code: 'custom', path: ['receivers', NULL_RECEIVER], message: `expected another name: "${NULL_RECEIVER}" is the receiver that drops alerts` });
    }
    for (const level of ['receiver', 'critical'] as const) {
      const name = alertmanager.route[level];
      if (name !== undefined && !declared.includes(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['route', level],
          message: `expected a declared receiver (${declared.sort().join(', ') || 'none declared'}), received "${name}"`,
        });
      }
    }
    if (alertmanager.route.critical !== undefined && alertmanager.route.receiver === undefined) {
      ctx.addIssue({ code: 'custom', path: ['route', 'receiver'], message: 'expected a default receiver next to the critical one' });
    }
    const routed = new Set([alertmanager.route.receiver, alertmanager.route.critical]);
    for (const name of declared) {
      if (name !== NULL_RECEIVER && !routed.has(name)) {
        ctx.addIssue({ code: 'custom', path: ['receivers', name], message: 'expected the receiver in route.receiver or route.critical: nothing is sent to it' });
      }
    }
  });

/** `services.monitoring`. */
export const monitoringSettings = z
  .strictObject({
    enabled: bool.default(false),
    /** How long Prometheus keeps samples; it also stops at 85% of the volume, whichever comes first. */
    retention: retention.default('15d'),
    /** Prometheus' volume (Alertmanager gets a small one of its own). */
    storageSize: volumeSize.default('20Gi'),
    /** Longhorn class of both volumes. @default Longhorn's default class */
    storageClass: k8sName.optional(),
    grafana: z
      .strictObject({
        /** Grafana's public hostname is `<subdomain>.<domain>`. */
        subdomain: subdomain.default('grafana'),
      })
      .prefault({}),
    /** Prometheus' own UI (queries, targets, rules), an admin route. */
    prometheus: z.strictObject({ subdomain: subdomain.default('prometheus') }).prefault({}),
    alertmanager: alertmanagerSchema.prefault({}),
    resources: z
      .strictObject({
        prometheus: resourcesSchema.default(DEFAULT_MONITORING_RESOURCES.prometheus),
        alertmanager: resourcesSchema.default(DEFAULT_MONITORING_RESOURCES.alertmanager),
        grafana: resourcesSchema.default(DEFAULT_MONITORING_RESOURCES.grafana),
        operator: resourcesSchema.default(DEFAULT_MONITORING_RESOURCES.operator),
        kubeStateMetrics: resourcesSchema.default(DEFAULT_MONITORING_RESOURCES.kubeStateMetrics),
        /** Per node: node-exporter runs on every node. */
        nodeExporter: resourcesSchema.default(DEFAULT_MONITORING_RESOURCES.nodeExporter),
      })
      .prefault({}),
  })
  .prefault({});

export type MonitoringSettings = z.output<typeof monitoringSettings>;
export type AlertmanagerSettings = MonitoringSettings['alertmanager'];
export type ReceiverSettings = AlertmanagerSettings['receivers'][string];
export type MonitoringResources = MonitoringSettings['resources'];

export const MONITORING_NAMESPACE = 'monitoring';
/**
 * The chart's `fullnameOverride`: its objects are named `monitoring-<component>` instead of
 * `<release>-kube-prometheus-stack` cut to 26 characters. The subcharts (Grafana,
 * kube-state-metrics, node-exporter) are named after the release, which is also `monitoring`.
 */
const FULLNAME = 'monitoring';

/** In-cluster endpoints of the stack (the chart's Services). */
export const GRAFANA_URL = `http://${FULLNAME}-grafana.${MONITORING_NAMESPACE}.svc`;

/** The Secret with Grafana's administrator, keys GRAFANA_ADMIN_KEYS (the chart's userKey and passwordKey). */
export const GRAFANA_ADMIN_SECRET = 'grafana-admin';
const GRAFANA_ADMIN_KEYS = { user: 'admin-user', password: 'admin-password' } as const;
/** The Secret with the receivers' webhook URLs and SMTP passwords: keys from receiverSecretKeys(). */
export const ALERTMANAGER_RECEIVERS_SECRET = 'alertmanager-receivers';
/**
 * Grafana's Service from the grafana subchart (grafana-community/helm-charts charts/grafana
 * templates/service.yaml): `<release>-grafana`, port 80 (`service.port`) to the pod port
 * `grafana` (`podPortName`, container port 3000), selected by name and release.
 */
export const GRAFANA_SERVICE = {
  serviceName: `${FULLNAME}-grafana`,
  servicePort: 80,
  podPort: 3000,
  podSelector: { 'app.kubernetes.io/name': 'grafana', 'app.kubernetes.io/instance': FULLNAME },
} as const;

/** Where the operator mounts each Secret listed in `alertmanagerSpec.secrets`. */
const ALERTMANAGER_SECRETS_DIR = '/etc/alertmanager/secrets';
/** Silences and the notification log survive restarts; a few MiB in practice. */
const ALERTMANAGER_VOLUME = '1Gi';
/** Prometheus stops at this share of its volume even before the retention time is reached. */
const RETENTION_SIZE_SHARE = 0.85;

/** Checkpoint pacing: 30 checks 10 s apart give new targets five minutes for a first scrape. */
const TARGET_CHECKS = 30;
const GRAFANA_CHECKS = 12;
const CHECK_INTERVAL_SECONDS = 10;
/** curl's --max-time for each call of the checkpoint. */
const CALL_MAX_SECONDS = 20;
/**
 * The alert delivery test: an alert with this label is routed to every receiver (the first
 * routes), sent by the checkpoint and resolved by Alertmanager after DELIVERY_SECONDS.
 */
const DELIVERY_TEST = { label: 'homelab_delivery_test', alert: 'HomelabAlertDeliveryTest', seconds: 120, checks: 18 } as const;

/** Grafana's file provider for the dashboards the platform's services declare. */
const DASHBOARD_PROVIDER = 'homelab';
const DASHBOARD_FOLDER_UID = 'homelab';
/** Data source names as Grafana knows them: the chart's default sidecar names Prometheus and Alertmanager. */
const DATASOURCE = { prometheus: 'Prometheus', alertmanager: 'Alertmanager', loki: 'Loki', tempo: 'Tempo' } as const;
/** Data source uids: Prometheus' is the chart's (values grafana.sidecar.datasources.uid); the others are ours. */
const DATASOURCE_UID = { prometheus: 'prometheus', loki: 'loki', tempo: 'tempo' } as const;

/**
 * The stack's own grafana.com dashboards, next to the ones the chart ships (its Kubernetes
 * and node-exporter dashboards, provisioned by the sidecar from ConfigMaps).
 */
const STACK_DASHBOARDS: readonly Dashboard[] = [
  /** "Node Exporter Full" (rfmoz): grafana.com/api/dashboards/1860 lists revision 45 as current. */
  { name: 'node-exporter-full', gnetId: 1860, revision: 45 },
  /** "Kubernetes / Views / Global" (dotdc/grafana-dashboards-kubernetes): revision 43 is pinned by public configs. */
  { name: 'kubernetes-views-global', gnetId: 15757, revision: 43 },
];

/** Containers whose resources the config does not size (the chart leaves them unset). */
const CONFIG_RELOADER_RESOURCES = resources('10m', '32Mi', '100m', '64Mi');
const GRAFANA_SIDECAR_RESOURCES = resources('20m', '96Mi', '100m', '192Mi');
const GRAFANA_SIDECARS = 2; // dashboards and data sources
const HOOK_RESOURCES = resources('10m', '32Mi', '100m', '64Mi');

/** A Loki the stack's Grafana queries; the Loki service satisfies it (charts/loki.ts). */
export interface LokiDataSource extends HomelabService {
  /** Base URL of Loki's HTTP API for queries, e.g. `http://loki.loki.svc:3100`. */
  readonly queryUrl: string;
}

/** A Tempo the stack's Grafana queries; the Tempo service satisfies it (charts/tempo.ts). */
export interface TempoDataSource extends HomelabService {
  /** Base URL of Tempo's HTTP API, e.g. `http://tempo.tempo.svc:3200`. */
  readonly queryUrl: string;
}

export type MonitoringStackProps = Omit<MonitoringSettings, 'enabled'> & {
  /** Volumes of Prometheus and Alertmanager. */
  readonly storage: StorageProvider;
  /** Adds the Loki data source to Grafana (and makes the stack wait for Loki). @default no Loki data source */
  readonly loki?: LokiDataSource;
  /** Adds the Tempo data source, linked to the logs and metrics (and makes the stack wait for Tempo). @default no Tempo data source */
  readonly tempo?: TempoDataSource;
};

/**
 * The Prometheus pods: the labels prometheus-operator gives the pods of the Prometheus
 * `<fullname>-prometheus` (what the chart's own Prometheus Service selects).
 */
const PROMETHEUS_PODS = { 'app.kubernetes.io/name': 'prometheus', 'operator.prometheus.io/name': `${FULLNAME}-prometheus` } as const;
/**
 * The operator serves the PrometheusRule admission webhook itself (admissionWebhooks.deployment
 * off) on `prometheusOperator.tls.internalPort`, its pods labelled as in the chart's
 * templates/prometheus-operator/deployment.yaml (`kube-prometheus-stack.name` is the chart name).
 */
const OPERATOR_PODS = { app: 'kube-prometheus-stack-operator', release: FULLNAME } as const;
/** The Alertmanager pods: prometheus-operator labels every Alertmanager's pods `app.kubernetes.io/name: alertmanager` (pkg/alertmanager/statefulset.go); the stack runs one. */
const ALERTMANAGER_PODS = { 'app.kubernetes.io/name': 'alertmanager' } as const;
const OPERATOR_WEBHOOK_PORT = 10250;
/**
 * The chart's Prometheus and Alertmanager Services (templates/prometheus/service.yaml,
 * templates/alertmanager/service.yaml: `<fullname>-prometheus` port 9090 and
 * `<fullname>-alertmanager` port 9093, each to the same container port, values.yaml
 * `prometheus.service` and `alertmanager.service`), for their UIs' routes.
 */
const PROMETHEUS_SERVICE = { serviceName: `${FULLNAME}-prometheus`, servicePort: 9090, podPort: 9090, podSelector: PROMETHEUS_PODS } as const;
const ALERTMANAGER_SERVICE = { serviceName: `${FULLNAME}-alertmanager`, servicePort: 9093, podPort: 9093, podSelector: ALERTMANAGER_PODS } as const;
/** Prometheus' API, and Alertmanager's API v2 and metrics, in the cluster (the same Services). */
export const PROMETHEUS_URL = `http://${PROMETHEUS_SERVICE.serviceName}.${MONITORING_NAMESPACE}.svc:${PROMETHEUS_SERVICE.servicePort}`;
export const ALERTMANAGER_URL = `http://${ALERTMANAGER_SERVICE.serviceName}.${MONITORING_NAMESPACE}.svc:${ALERTMANAGER_SERVICE.servicePort}`;

/** The Secret of Grafana's OIDC client secret, and the client id. */
const GRAFANA_OIDC_CLIENT_SECRET = 'grafana-oidc-client';
const GRAFANA_OIDC_CLIENT_ID = 'grafana';

/** Grafana's login through the single sign-on service: what its values are made from. */
interface GrafanaOidcLogin {
  readonly issuer: OidcIssuer;
  readonly clientSecret: SecretRef;
  /** The button's text on the login page. */
  readonly providerName: string;
}

export class MonitoringStack extends HomelabService implements MetricsScraper, DashboardHost, OidcLoginService {
  /** Public hostname Grafana is (to be) routed at: root_url of its links. */
  readonly grafanaHost: string;
  /** Grafana's administrator (user name and password). */
  readonly grafanaAdmin: SecretRef;
  /** Prometheus, which scrapes every declared metrics endpoint. */
  readonly scraperName = 'Prometheus';
  readonly scraperPods: NetworkPeer = { namespace: MONITORING_NAMESPACE, podSelector: PROMETHEUS_PODS };
  private readonly props: MonitoringStackProps;
  private readonly receivers?: SecretRef;
  private provisioned?: ReadonlyMap<string, Dashboard>;
  private oidcLogin?: GrafanaOidcLogin;
  private readonly prometheusHost: string;
  private readonly alertmanagerHost: string;

  /** The chart and the checkpoint come with the platform's dashboards (`provisionDashboards`). */
  constructor(scope: Platform, props: MonitoringStackProps) {
    super(scope, 'monitoring', props, {
      layer: Layer.OBSERVABILITY,
      namespace: MONITORING_NAMESPACE,
      podSecurity: {
        level: 'privileged',
        reason: 'node-exporter reads the host: hostNetwork, hostPID and hostPath mounts of /, /proc and /sys (the other pods keep non-root contexts)',
      },
      // The chart's Prometheus, Alertmanager, ServiceMonitors and PrometheusRules need the CRDs.
      requiresCrdGroups: [MONITORING_GROUP],
      ignoreDifferences: ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration'].map((kind) => ({
        // The chart's admission-patch hook Job writes the CA of the certificate it generated
        // into both webhook configurations after every sync; Git has none.
        group: 'admissionregistration.k8s.io',
        kind,
        name: `${FULLNAME}-admission`,
        jqPathExpressions: ['.webhooks[]?.clientConfig.caBundle'],
      })),
    });
    for (const dashboard of STACK_DASHBOARDS) this.addDashboard(dashboard);
    this.props = props;
    this.grafanaHost = scope.hostname(props.grafana.subdomain);
    this.prometheusHost = scope.hostname(props.prometheus.subdomain);
    this.alertmanagerHost = scope.hostname(props.alertmanager.subdomain);
    this.grafanaAdmin = this.needSecret(GRAFANA_ADMIN_SECRET, Object.values(GRAFANA_ADMIN_KEYS), 'Grafana administrator: user name and password');
    this.receivers = this.receiverSecret(props.alertmanager);
    // Checked now rather than when the chart is installed.
    props.storage.storageClass(props.storageClass);

    // k3s runs CoreDNS as an ordinary Deployment behind the kube-dns Service (port `metrics`,
    // 9153). The chart's own CoreDNS scrape would add a Service and a ServiceMonitor to
    // kube-system, outside the namespaces this service's Application may write to.
    // kube-system is not ours: no NetworkPolicy is derived for it.
    this.exposeMetrics({
      name: 'coredns',
      kind: 'service',
      namespace: 'kube-system',
      selector: { 'k8s-app': 'kube-dns' },
      port: 'metrics',
      podPort: 9153,
      podSelector: { 'k8s-app': 'kube-dns' },
    });

    this.serveApiServer({ port: OPERATOR_WEBHOOK_PORT, podSelector: OPERATOR_PODS });
    this.declareEgress(props.alertmanager);
    this.declareCapacity(props.resources, scope);
    this.expose({ subdomain: props.grafana.subdomain, ...GRAFANA_SERVICE, admin: true, ownOidcLogin: true });
    this.expose({ subdomain: props.prometheus.subdomain, ...PROMETHEUS_SERVICE, admin: true });
    this.expose({ subdomain: props.alertmanager.subdomain, ...ALERTMANAGER_SERVICE, admin: true });
  }

  /**
   * Grafana logs users in through the provider (generic OAuth, callback
   * `<root_url>/login/generic_oauth`: Grafana docs "Configure generic OAuth2 authentication"),
   * besides the login form, kept for the local admin. Before the chart is installed (dashboards pass).
   */
  logInThrough(provider: SingleSignOnProvider): void {
    if (this.provisioned) throw new Error('monitoring: the single sign-on pass runs before the dashboards pass installs the chart');
    // Grafana starts without the client secret (the variable is optional) and the login form still works.
    const { issuer, clientSecret } = this.registerOidcLogin(provider, {
      secretName: GRAFANA_OIDC_CLIENT_SECRET,
      clientId: GRAFANA_OIDC_CLIENT_ID,
      displayName: 'Grafana',
      redirectUris: [`https://${this.grafanaHost}/login/generic_oauth`],
      pods: GRAFANA_SERVICE.podSelector,
    });
    this.oidcLogin = { issuer, clientSecret, providerName: provider.serviceName };
  }

  /** Dashboards provisioned from grafana.com, by name: the platform's services' and their data source. */
  get provisionedDashboards(): ReadonlyMap<string, Dashboard> {
    if (!this.provisioned) throw new Error('monitoring: the dashboards are provisioned by the dashboards pass');
    return this.provisioned;
  }

  /** Installs the chart with every declared dashboard, and the checkpoint that counts them. */
  provisionDashboards(declared: readonly ServiceDashboard[]): void {
    if (this.provisioned) throw new Error('monitoring: dashboards are provisioned once');
    const { props } = this;
    const dashboards = platformDashboards(declared, props.loki !== undefined);
    this.provisioned = dashboards;
    this.installChart(
      helmRelease(
        'kubePrometheusStack',
        stackValues({
          retention: props.retention,
          storageSize: props.storageSize,
          storageClass: props.storage.storageClass(props.storageClass),
          grafanaHost: this.grafanaHost,
          prometheusHost: this.prometheusHost,
          alertmanagerHost: this.alertmanagerHost,
          grafanaAdmin: this.grafanaAdmin,
          oidcLogin: this.oidcLogin,
          alertmanager: props.alertmanager,
          receiverSecret: this.receivers,
          loki: props.loki,
          tempo: props.tempo,
          dashboards,
          sizes: props.resources,
        }),
      ),
    );
    this.addCheckpoint([...(props.loki ? [DATASOURCE.loki] : []), ...(props.tempo ? [DATASOURCE.tempo] : [])], dashboards.size);
  }

  /**
   * Beyond the graph: the API server (the operator, kube-state-metrics, Grafana's sidecars,
   * Prometheus' discovery and its scrape of the API server), the nodes (kubelets and
   * node-exporter on the host network), grafana.com (dashboards) and the receivers.
   */
  private declareEgress(alertmanager: AlertmanagerSettings): void {
    this.callApiServer({}, "the operator, kube-state-metrics, Grafana's sidecars and Prometheus' service discovery read the cluster; Prometheus scrapes the API server");
    this.allowEgress({
      name: 'nodes',
      podSelector: PROMETHEUS_PODS,
      // The kubelets' HTTPS port (10250) and node-exporter's host-network port (the
      // prometheus-node-exporter subchart's service.port, 9100, kube-prometheus-stack 88.5.3).
      to: { kind: 'nodes', ports: [{ port: 10250 }, { port: 9100 }] },
      reason: 'Prometheus scrapes the kubelets and node-exporter on the nodes',
    });
    this.allowEgress({
      name: 'grafana-com',
      podSelector: GRAFANA_SERVICE.podSelector,
      // The grafana subchart's download-dashboards init container fetches each gnetId from grafana.com over HTTPS.
      to: { kind: 'external', destinations: [INTERNET_HTTPS] },
      reason: 'Grafana downloads its provisioned dashboards from grafana.com',
    });
    const receivers = Object.values(alertmanager.receivers);
    const ports = [
      // Webhook and Discord URLs are in the receivers' Secret: HTTPS assumed.
      ...(receivers.some((r) => r.webhook || r.discord) ? [443] : []),
      ...receivers.flatMap((r) => (r.email ? [Number(r.email.smarthost.split(':')[1])] : [])),
    ];
    if (ports.length > 0) {
      this.allowEgress({
        name: 'alertmanager-receivers',
        podSelector: ALERTMANAGER_PODS,
        to: { kind: 'external', destinations: [{ to: 'internet', ports: [...new Set(ports)].sort((a, b) => a - b).map((port) => ({ port })) }] },
        reason: 'Alertmanager notifies its receivers (webhooks, Discord, SMTP servers)',
      });
    }
  }

  /** The receivers' URLs and passwords, where any receiver has one. */
  private receiverSecret(alertmanager: AlertmanagerSettings): SecretRef | undefined {
    const keys = Object.entries(alertmanager.receivers).flatMap(([name, r]) => Object.values(receiverSecretKeys(name, r)));
    if (keys.length === 0) return undefined;
    return this.needSecret(ALERTMANAGER_RECEIVERS_SECRET, keys, 'Alertmanager receivers: webhook URLs and SMTP passwords, one key per receiver and integration');
  }

  private declareCapacity(sizes: MonitoringResources, platform: Platform): void {
    this.requestCapacity('prometheus', 1, sumOfContainers(sizes.prometheus, CONFIG_RELOADER_RESOURCES).requests);
    this.requestCapacity('alertmanager', 1, sumOfContainers(sizes.alertmanager, CONFIG_RELOADER_RESOURCES).requests);
    this.requestCapacity('grafana', 1, sumOfContainers(sizes.grafana, ...Array<Resources>(GRAFANA_SIDECARS).fill(GRAFANA_SIDECAR_RESOURCES)).requests);
    this.requestCapacity('prometheus-operator', 1, sizes.operator.requests);
    this.requestCapacity('kube-state-metrics', 1, sizes.kubeStateMetrics.requests);
    // A DaemonSet: one pod per node (the subchart tolerates every NoSchedule taint, prometheus-node-exporter values.yaml `tolerations`).
    this.requestCapacity('node-exporter', Object.keys(platform.config.nodes).length, sizes.nodeExporter.requests, { placement: 'every-node' });
  }

  /**
   * One Job for both halves (the base allows one checkpoint per service). Prometheus: every
   * active target is up; a fresh target is `unknown` until its first scrape, so the check
   * retries for five minutes, then lists each target that is not up with its last error.
   * Grafana: its health endpoint reports the database ok, the data sources exist and the
   * dashboards downloaded from grafana.com are in their folder, retried for two minutes.
   */
  private addCheckpoint(extraDatasources: readonly string[], dashboards: number): void {
    const datasources = [DATASOURCE.prometheus, DATASOURCE.alertmanager, ...extraDatasources];
    const receivers = Object.keys(this.props.alertmanager.receivers).sort();
    const integrations = deliveryIntegrations(this.props.alertmanager);
    const delivery = receivers.length > 0 ? `; a synthetic alert reaches every Alertmanager receiver (${receivers.join(', ')}) and resolves itself` : '';
    new Checkpoint(this, 'checkpoint', {
      description: `every Prometheus scrape target is up; Grafana is healthy with the data sources ${datasources.join(', ')} and ${dashboards} provisioned dashboards${delivery}`,
      image: IMAGES.curl,
      // Every check failing slowly: each call (one per target check, up to three per Grafana
      // check, two per integration and delivery check, plus the alert and the routing) at its
      // --max-time, then the interval; after the pod started.
      scriptSeconds: retrySeconds(TARGET_CHECKS, CALL_MAX_SECONDS, CHECK_INTERVAL_SECONDS) + retrySeconds(GRAFANA_CHECKS, 3 * CALL_MAX_SECONDS, CHECK_INTERVAL_SECONDS) + (integrations.length > 0 ? retrySeconds(DELIVERY_TEST.checks, 2 * integrations.length * CALL_MAX_SECONDS, CHECK_INTERVAL_SECONDS) + (2 + 2 * integrations.length) * CALL_MAX_SECONDS : 0),
      env: {
        PROMETHEUS_URL,
        GRAFANA_URL,
        TARGET_CHECKS: String(TARGET_CHECKS),
        GRAFANA_CHECKS: String(GRAFANA_CHECKS),
        CHECK_INTERVAL_SECONDS: String(CHECK_INTERVAL_SECONDS),
        CALL_MAX_SECONDS: String(CALL_MAX_SECONDS),
        DATASOURCES: datasources.join(' '),
        DASHBOARD_FOLDER_UID,
        EXPECTED_DASHBOARDS: String(dashboards),
        ALERTMANAGER_URL,
        DELIVERY_RECEIVERS: receivers.join(' '),
        DELIVERY_INTEGRATIONS: integrations.map(({ integration, receivers: n }) => `${integration}=${n}`).join(' '),
        DELIVERY_LABEL: DELIVERY_TEST.label,
        DELIVERY_ALERT: DELIVERY_TEST.alert,
        DELIVERY_SECONDS: String(DELIVERY_TEST.seconds),
        DELIVERY_CHECKS: String(DELIVERY_TEST.checks),
      },
      secretEnv: {
        GRAFANA_USER: this.grafanaAdmin.keySelector(GRAFANA_ADMIN_KEYS.user),
        GRAFANA_PASSWORD: this.grafanaAdmin.keySelector(GRAFANA_ADMIN_KEYS.password),
      },
      script: CHECKPOINT_SCRIPT,
    });
  }
}

/**
 * Each half retries on its own (no curl retries inside: the loops are the retries, and
 * --max-time bounds a hung call). Prometheus writes each active target as an object whose
 * scrapePool, scrapeUrl and lastError come before its health (web/api/v1 Target): the
 * token stream is folded into one line per target, `<health> <pool> <url> (<last error>)`.
 * Data goes through printf, not echo: some shells' echo interprets the backslashes of
 * JSON-escaped errors. Grafana's data sources arrive through a sidecar that reloads them
 * after Grafana started, hence the retries there too. Counts from the env are read as
 * `${X:?…}` (unset, `[` fails, `if` takes it as false and the loop never gives up); the
 * dashboards' count at the start, since grafana_problem reads it inside a command substitution,
 * which `:?` would end instead of the script.
 */
const CHECKPOINT_SCRIPT = String.raw`: "${'$'}{EXPECTED_DASHBOARDS:?unset (the Job sets it)}"
get() { curl -fsS --connect-timeout 5 --max-time "$CALL_MAX_SECONDS" "$@"; }
targets() {
  get "$PROMETHEUS_URL/api/v1/targets?state=active" | tr -d '\n' \
    | grep -oE '"(scrapePool|scrapeUrl|lastError)":"([^"\\]|\\.)*"|"health":"[a-z]*"' \
    | sed 's/^"\([A-Za-z]*\)":"\(.*\)"$/\1 \2/' \
    | while read -r key value; do
        case "$key" in
          scrapePool) pool=$value ;;
          scrapeUrl) url=$value ;;
          lastError) error=$value ;;
          health) if [ -n "$error" ]; then printf '%s %s %s (%s)\n' "$value" "$pool" "$url" "$error"; else printf '%s %s %s\n' "$value" "$pool" "$url"; fi ;;
        esac
      done
}
check=1
while :; do
  all=$(targets || true)
  pending=$(printf '%s\n' "$all" | grep -v '^up ' || true)
  if [ -n "$all" ] && [ -z "$pending" ]; then break; fi
  if [ "$check" -ge "${'$'}{TARGET_CHECKS:?unset (the Job sets it)}" ]; then
    [ -n "$pending" ] || pending="no active targets at all"
    echo "Prometheus scrape targets not up after $TARGET_CHECKS checks:" >&2
    printf '%s\n' "$pending" >&2
    exit 1
  fi
  echo "waiting for $(printf '%s\n' "$pending" | grep -c .) scrape targets to come up"
  check=$((check + 1))
  sleep "$CHECK_INTERVAL_SECONDS"
done
echo "all $(printf '%s\n' "$all" | grep -c '^up ') scrape targets are up"

# Prints what is still missing in Grafana, nothing once all is there.
grafana_problem() {
  health=$(get "$GRAFANA_URL/api/health" | tr -d ' \n')
  case $health in *'"database":"ok"'*) ;; *) echo "Grafana is not healthy: $health"; return ;; esac
  sources=$(get -u "$GRAFANA_USER:$GRAFANA_PASSWORD" "$GRAFANA_URL/api/datasources" | tr -d ' \n')
  for name in $DATASOURCES; do
    case $sources in *"\"name\":\"$name\""*) ;; *) echo "Grafana has no data source $name"; return ;; esac
  done
  found=$(get -u "$GRAFANA_USER:$GRAFANA_PASSWORD" "$GRAFANA_URL/api/search?type=dash-db&folderUIDs=$DASHBOARD_FOLDER_UID" \
    | tr -d ' \n' | grep -o '"type":"dash-db"' | grep -c . || true)
  [ "$found" -ge "$EXPECTED_DASHBOARDS" ] || echo "Grafana has $found of the $EXPECTED_DASHBOARDS provisioned dashboards in folder $DASHBOARD_FOLDER_UID"
}
check=1
until problem=$(grafana_problem) && [ -z "$problem" ]; do
  if [ "$check" -ge "${'$'}{GRAFANA_CHECKS:?unset (the Job sets it)}" ]; then
    echo "$problem (after $GRAFANA_CHECKS checks)" >&2
    exit 1
  fi
  echo "$problem; checking again"
  check=$((check + 1))
  sleep "$CHECK_INTERVAL_SECONDS"
done
echo "Grafana is healthy with the data sources $DATASOURCES and the $EXPECTED_DASHBOARDS provisioned dashboards"
[ -n "$DELIVERY_RECEIVERS" ] || exit 0
# Alert delivery: Alertmanager's request counters per integration (alertmanager notify/notify.go:
# notification_requests_total counts every request to a receiver once it returned,
# notification_requests_failed_total those that failed; unlike notifications_total, which counts
# an attempt when it starts, and notifications_failed_total, only once retrying gave up), before
# and after a synthetic alert routed to every receiver: a success is a request that did not fail.
counter() {
  get "$ALERTMANAGER_URL/metrics" | awk -v series="alertmanager_$1{" -v label="integration=\"$2\"" 'index($0, series) == 1 && index($0, label) { sum += $NF } END { print sum + 0 }'
}
for pair in $DELIVERY_INTEGRATIONS; do
  name=${'$'}{pair%=*}
  eval "requests_$name=$(counter notification_requests_total "$name") failures_$name=$(counter notification_requests_failed_total "$name")"
done
now=$(date +%s)
ends=$(date -u -d "@$((now + DELIVERY_SECONDS))" +%Y-%m-%dT%H:%M:%SZ)
alert="[{\"labels\":{\"alertname\":\"$DELIVERY_ALERT\",\"$DELIVERY_LABEL\":\"true\",\"severity\":\"warning\",\"run\":\"$now\"},\"annotations\":{\"summary\":\"Synthetic alert of the monitoring checkpoint: a delivery test to every receiver, resolved by itself\"},\"endsAt\":\"$ends\"}]"
if ! get -X POST -H 'Content-Type: application/json' -d "$alert" "$ALERTMANAGER_URL/api/v2/alerts" >/dev/null; then
  echo "Alertmanager refused the synthetic alert" >&2
  exit 1
fi
routed=$(get "$ALERTMANAGER_URL/api/v2/alerts?filter=$DELIVERY_LABEL%3D%22true%22" | tr -d ' \n')
for receiver in $DELIVERY_RECEIVERS; do
  case $routed in
    *"{\"name\":\"$receiver\"}"*) ;;
    *) echo "the synthetic alert is not routed to the receiver $receiver" >&2; exit 1 ;;
  esac
done
check=1
while :; do
  pending=
  for pair in $DELIVERY_INTEGRATIONS; do
    name=${'$'}{pair%=*}
    want=${'$'}{pair#*=}
    eval "before=\$requests_$name failed_before=\$failures_$name"
    requests=$(counter notification_requests_total "$name")
    failures=$(counter notification_requests_failed_total "$name")
    if [ "$failures" -gt "$failed_before" ]; then
      echo "Alertmanager failed to notify through $name ($((failures - failed_before)) failed request(s)): check its receivers' settings and the alertmanager-receivers Secret, and the Alertmanager log" >&2
      exit 1
    fi
    [ $(((requests - failures) - (before - failed_before))) -ge "$want" ] || pending="$pending $name"
  done
  [ -z "$pending" ] && break
  if [ "$check" -ge "${'$'}{DELIVERY_CHECKS:?unset (the Job sets it)}" ]; then
    echo "no notification through$pending after $DELIVERY_CHECKS checks" >&2
    exit 1
  fi
  check=$((check + 1))
  sleep "$CHECK_INTERVAL_SECONDS"
done
echo "the synthetic alert reached every receiver ($DELIVERY_RECEIVERS) and resolves itself at $ends"`;

/**
 * The grafana.com dashboards every service of the platform declared (the stack's own among
 * them), by name. Services share a dashboard by declaring the same one; two different
 * dashboards under one name are a bug. Dashboards that query Loki are left out where Grafana
 * has no Loki data source.
 */
function platformDashboards(declared: readonly ServiceDashboard[], withLoki: boolean): Map<string, Dashboard> {
  const found = new Map<string, { dashboard: Dashboard; service: string }>();
  for (const { service, dashboard } of declared) {
    const other = found.get(dashboard.name);
    if (!other) {
      found.set(dashboard.name, { dashboard, service });
    } else if (!sameDashboard(other.dashboard, dashboard)) {
      throw new Error(
        `dashboard "${dashboard.name}" is declared twice, differently: ${describe(other.dashboard)} by ${other.service}, ${describe(dashboard)} by ${service}`,
      );
    }
  }
  return new Map(
    [...found.values()]
      .map(({ dashboard }) => dashboard)
      .filter((dashboard) => withLoki || datasourceOf(dashboard) !== DATASOURCE.loki)
      .sort((a, b) => byCodeUnits(a.name, b.name))
      .map((dashboard) => [dashboard.name, dashboard]),
  );
}

function datasourceOf(dashboard: Dashboard): string {
  return dashboard.datasource ?? DATASOURCE.prometheus;
}

function sameDashboard(a: Dashboard, b: Dashboard): boolean {
  return describe(a) === describe(b);
}

function describe(d: Dashboard): string {
  return isOwnDashboard(d) ? `an own dashboard of ${d.json.length} characters on ${datasourceOf(d)}` : `grafana.com ${d.gnetId} revision ${d.revision} on ${datasourceOf(d)}`;
}

interface StackSettings {
  readonly retention: string;
  readonly storageSize: string;
  readonly storageClass: string;
  readonly grafanaHost: string;
  /** Where Prometheus and Alertmanager are routed: the links they write (an alert's source, a silence) point there. */
  readonly prometheusHost: string;
  readonly alertmanagerHost: string;
  readonly grafanaAdmin: SecretRef;
  /** @default the login form only */
  readonly oidcLogin?: GrafanaOidcLogin;
  readonly alertmanager: AlertmanagerSettings;
  readonly receiverSecret?: SecretRef;
  readonly loki?: LokiDataSource;
  readonly tempo?: TempoDataSource;
  readonly dashboards: ReadonlyMap<string, Dashboard>;
  readonly sizes: MonitoringResources;
}

/**
 * `[auth.generic_oauth]` (Grafana 13 docs, "Configure generic OAuth2 authentication"): the
 * endpoints (generic OAuth reads no discovery document), PKCE, and the role from the groups
 * claim — Admin for the admin group, Viewer for the viewer group, and with
 * `role_attribute_strict` no login for anyone else. New users are created at their first login;
 * the login form stays for the local admin (`[auth] disable_login_form` false).
 */
function grafanaOidcIni({ issuer, providerName }: GrafanaOidcLogin): Record<string, Record<string, string | boolean>> {
  // JMESPath over the ID token/userinfo claims; the claim is a quoted identifier, the groups raw strings.
  const member = (group: string) => `contains("${issuer.groupsClaim}"[*], '${group}')`;
  return {
    auth: { disable_login_form: false },
    'auth.generic_oauth': {
      enabled: true,
      name: providerName,
      client_id: GRAFANA_OIDC_CLIENT_ID,
      scopes: issuer.scopes.join(' '),
      auth_url: issuer.endpoints.authorization,
      token_url: issuer.endpoints.token,
      api_url: issuer.endpoints.userinfo,
      use_pkce: true,
      allow_sign_up: true,
      auto_login: false,
      role_attribute_path: `${member(issuer.adminGroup)} && 'Admin' || ${member(issuer.viewerGroup)} && 'Viewer'`,
      role_attribute_strict: true,
    },
  };
}

/**
 * Grafana's data source provisioning (Grafana docs, "Loki data source" and "Tempo data source",
 * provisioning examples). Provisioning files expand `$VAR`, so Grafana's own `${__...}`
 * variables are written `$${__...}`.
 */
function lokiDataSource(loki: LokiDataSource, withTempo: boolean) {
  // Logs to traces: a trace ID in a line (`traceID=...`, `trace_id=...`, `"traceId":"..."`) links to Tempo.
  const derivedFields = withTempo
    ? [{ name: 'TraceID', datasourceUid: DATASOURCE_UID.tempo, matcherRegex: '(?:trace_?[iI][dD])"?[=:]\\s*"?([0-9a-fA-F]{16,32})', url: '$${__value.raw}' }]
    : [];
  return { name: DATASOURCE.loki, uid: DATASOURCE_UID.loki, type: 'loki', access: 'proxy', url: loki.queryUrl, editable: false, jsonData: { maxLines: 1000, ...(withTempo && { derivedFields }) } };
}

function tempoDataSource(tempo: TempoDataSource, withLoki: boolean) {
  const window = { spanStartTimeShift: '-5m', spanEndTimeShift: '5m' };
  return {
    name: DATASOURCE.tempo,
    uid: DATASOURCE_UID.tempo,
    type: 'tempo',
    access: 'proxy',
    url: tempo.queryUrl,
    editable: false,
    jsonData: {
      // Traces to logs: the lines of any namespace that mention the trace ID, around the span.
      ...(withLoki && {
        tracesToLogsV2: { datasourceUid: DATASOURCE_UID.loki, ...window, customQuery: true, query: '{namespace=~".+"} |= "$${__trace.traceId}"' },
      }),
      // Traces to metrics: the Prometheus series around the span, by the service's name.
      tracesToMetrics: { datasourceUid: DATASOURCE_UID.prometheus, ...window, tags: [{ key: 'service.name', value: 'service' }] },
      serviceMap: { datasourceUid: DATASOURCE_UID.prometheus },
      nodeGraph: { enabled: true },
    },
  };
}

function stackValues(s: StackSettings): KubePrometheusStackValues {
  return {
    fullnameOverride: FULLNAME,
    // The prometheus-operator-crds service installs them, a wave earlier, server-side applied.
    crds: { enabled: false },
    // k3s runs the controller manager, scheduler and kube-proxy inside its own process, bound
    // to 127.0.0.1, and keeps its datastore in SQLite (embedded etcd exposes metrics only with
    // --etcd-expose-metrics): there is nothing to scrape, and the chart's Services for them
    // would have no endpoints while their "Down" alerts fire forever. Their rules go with them.
    // CoreDNS is scraped by our own ServiceMonitor (see MonitoringStack). The API server
    // (default/kubernetes) and the kubelets (the operator's kube-system Service) stay.
    kubeControllerManager: { enabled: false },
    kubeScheduler: { enabled: false },
    kubeProxy: { enabled: false },
    kubeEtcd: { enabled: false },
    coreDns: { enabled: false },
    kubeDns: { enabled: false },
    defaultRules: {
      create: true,
      rules: { etcd: false, kubeControllerManager: false, kubeSchedulerAlerting: false, kubeSchedulerRecording: false, kubeProxy: false, windows: false },
    },
    prometheusOperator: {
      resources: s.sizes.operator,
      prometheusConfigReloader: { resources: CONFIG_RELOADER_RESOURCES },
      // Kept on: a PrometheusRule with bad PromQL then fails the sync of the service that
      // emits it instead of being skipped silently. The chart's hook Jobs (PreSync/PostSync
      // under Argo CD) generate the certificate in the cluster and patch the CA into the
      // webhook configurations (ignoreDifferences above); failurePolicy stays Ignore, so
      // rules are not blocked while the operator is down. cert-manager would do the same, but
      // it comes with the networking layer, after this one.
      admissionWebhooks: { patch: { resources: HOOK_RESOURCES } },
    },
    prometheus: {
      prometheusSpec: {
        // Select every monitor and rule in every namespace, not only those with the release label.
        ruleSelectorNilUsesHelmValues: false,
        serviceMonitorSelectorNilUsesHelmValues: false,
        podMonitorSelectorNilUsesHelmValues: false,
        probeSelectorNilUsesHelmValues: false,
        scrapeConfigSelectorNilUsesHelmValues: false,
        externalUrl: `https://${s.prometheusHost}`,
        retention: s.retention,
        retentionSize: retentionSize(s.storageSize),
        resources: s.sizes.prometheus,
        storageSpec: { volumeClaimTemplate: claimTemplate(s.storageClass, s.storageSize) },
      },
    },
    alertmanager: {
      config: alertmanagerConfig(s.alertmanager, s.receiverSecret),
      alertmanagerSpec: {
        externalUrl: `https://${s.alertmanagerHost}`,
        // The operator mounts each at /etc/alertmanager/secrets/<name>/.
        secrets: s.receiverSecret ? [s.receiverSecret.secretName] : [],
        storage: { volumeClaimTemplate: claimTemplate(s.storageClass, ALERTMANAGER_VOLUME) },
        resources: s.sizes.alertmanager,
      },
    },
    grafana: {
      // Credentials are never rendered: the chart reads them from this Secret.
      admin: {
        existingSecret: s.grafanaAdmin.secretName,
        userKey: s.grafanaAdmin.keySelector(GRAFANA_ADMIN_KEYS.user).key,
        passwordKey: s.grafanaAdmin.keySelector(GRAFANA_ADMIN_KEYS.password).key,
      },
      // Stateless on purpose: data sources, dashboards and the admin are all provisioned, so
      // the SQLite database in an emptyDir is rebuilt on every start (UI edits do not persist).
      persistence: { enabled: false },
      'grafana.ini': { server: { root_url: `https://${s.grafanaHost}` }, ...(s.oidcLogin && grafanaOidcIni(s.oidcLogin)) },
      // Grafana's environment overrides its ini (GF_<SECTION>_<KEY>); optional, so that Grafana
      // starts before the Secret is delivered (it reads it at start).
      ...(s.oidcLogin && {
        envValueFrom: { GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET: { secretKeyRef: { ...s.oidcLogin.clientSecret.keySelector(OIDC_CLIENT_SECRET_KEY), optional: true } } },
      }),
      resources: s.sizes.grafana,
      sidecar: {
        resources: GRAFANA_SIDECAR_RESOURCES,
        // Metrics to traces: exemplars carrying a trace_id label open the trace in Tempo.
        ...(s.tempo && { datasources: { exemplarTraceIdDestinations: { datasourceUid: DATASOURCE_UID.tempo, traceIdLabelName: 'trace_id' } } }),
      },
      downloadDashboards: { resources: HOOK_RESOURCES },
      // A Helm test pod; the checkpoint is our test.
      testFramework: { enabled: false },
      additionalDataSources: [...(s.loki ? [lokiDataSource(s.loki, s.tempo !== undefined)] : []), ...(s.tempo ? [tempoDataSource(s.tempo, s.loki !== undefined)] : [])],
      ...dashboardValues(s.dashboards),
    },
    'kube-state-metrics': { resources: s.sizes.kubeStateMetrics },
    'prometheus-node-exporter': { resources: s.sizes.nodeExporter },
  };
}

/**
 * The grafana subchart downloads each `gnetId` dashboard at the pinned `revision` from
 * grafana.com (an init container, so the cluster needs to reach grafana.com) into the
 * provider's folder, replacing the dashboard's data source references with `datasource`; an
 * own dashboard's `json` it writes there as is (grafana 12.11.1 templates/dashboards-json-configmap.yaml).
 */
function dashboardValues(dashboards: ReadonlyMap<string, Dashboard>): Record<string, unknown> {
  if (dashboards.size === 0) return {};
  return {
    dashboardProviders: {
      'dashboardproviders.yaml': {
        apiVersion: 1,
        providers: [
          {
            name: DASHBOARD_PROVIDER,
            orgId: 1,
            folder: 'Homelab',
            folderUid: DASHBOARD_FOLDER_UID,
            type: 'file',
            disableDeletion: true,
            editable: false,
            allowUiUpdates: false,
            options: { path: `/var/lib/grafana/dashboards/${DASHBOARD_PROVIDER}` },
          },
        ],
      },
    },
    dashboards: {
      [DASHBOARD_PROVIDER]: Object.fromEntries(
        [...dashboards.values()].map((d) => [d.name, isOwnDashboard(d) ? { json: d.json } : { gnetId: d.gnetId, revision: d.revision, datasource: datasourceOf(d) }]),
      ),
    },
  };
}

function claimTemplate(storageClass: string, size: string): Record<string, unknown> {
  return { spec: { storageClassName: storageClass, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } } } };
}

/** Prometheus' size-based retention (powers of two, as Prometheus reads `GB`). */
function retentionSize(volume: string): string {
  return `${Math.floor((parseQuantity(volume) / 2 ** 30) * RETENTION_SIZE_SHARE)}GB`;
}

/**
 * The Alertmanager configuration. Routes by severity: `critical` to the critical receiver
 * (or the default one), warnings to the default receiver, `info` nowhere (context for
 * dashboards, and the chart's InfoInhibitor works on it); Watchdog, the chart's
 * always-firing heartbeat, is dropped until something external watches it.
 */
function alertmanagerConfig(alertmanager: AlertmanagerSettings, secret: SecretRef | undefined): Record<string, unknown> {
  const receiver = alertmanager.route.receiver ?? NULL_RECEIVER;
  const critical = alertmanager.route.critical ?? receiver;
  return {
    global: { resolve_timeout: '5m' },
    route: {
      receiver,
      group_by: ['namespace', 'alertname'],
      group_wait: '30s',
      group_interval: '5m',
      repeat_interval: '12h',
      routes: [
        ...deliveryTestRoutes(alertmanager),
        { receiver: NULL_RECEIVER, matchers: ['alertname =~ "Watchdog|InfoInhibitor"'] },
        { receiver: critical, matchers: ['severity = "critical"'], repeat_interval: '4h' },
        { receiver: NULL_RECEIVER, matchers: ['severity = "info"'] },
      ],
    },
    // The chart's defaults: a critical alert mutes the warning and info alerts of the same
    // name and namespace, a warning mutes info.
    inhibit_rules: [
      { source_matchers: ['severity = "critical"'], target_matchers: ['severity =~ "warning|info"'], equal: ['namespace', 'alertname'] },
      { source_matchers: ['severity = "warning"'], target_matchers: ['severity = "info"'], equal: ['namespace', 'alertname'] },
      { source_matchers: ['alertname = "InfoInhibitor"'], target_matchers: ['severity = "info"'], equal: ['namespace'] },
      { target_matchers: ['alertname = "InfoInhibitor"'] },
    ],
    receivers: [
      { name: NULL_RECEIVER },
      ...Object.entries(alertmanager.receivers)
        .sort(([a], [b]) => byCodeUnits(a, b))
        .map(([name, r]) => receiverConfig(name, r, secret)),
    ],
    templates: ['/etc/alertmanager/config/*.tmpl'],
  };
}

/**
 * The checkpoint's synthetic alert goes to every receiver: one route each, matched first,
 * each continuing to the next but the last, which stops it before the severity routes.
 */
function deliveryTestRoutes(alertmanager: AlertmanagerSettings): Record<string, unknown>[] {
  const receivers = Object.keys(alertmanager.receivers).sort();
  return receivers.map((receiver, i) => ({
    receiver,
    matchers: [`${DELIVERY_TEST.label} = "true"`],
    // Each run (its `run` label) a group of its own, sent at once: a run soon after another (the
    // verification's replay, a retried sync) would otherwise wait for the group's next interval.
    group_by: ['alertname', 'run'],
    group_wait: '0s',
    group_interval: '10s',
    continue: i < receivers.length - 1,
  }));
}

/** Each Alertmanager integration the receivers use, with how many receivers use it (alertmanager's integration names). */
function deliveryIntegrations(alertmanager: AlertmanagerSettings): { integration: string; receivers: number }[] {
  const receivers = Object.values(alertmanager.receivers);
  return (['discord', 'email', 'webhook'] as const)
    .map((integration) => ({ integration, receivers: receivers.filter((r) => r[integration] !== undefined).length }))
    .filter(({ receivers: n }) => n > 0);
}

/** The keys of ALERTMANAGER_RECEIVERS_SECRET a receiver reads, by integration. */
export function receiverSecretKeys(name: string, r: ReceiverSettings): { webhook?: string; discord?: string; smtpPassword?: string } {
  return {
    ...(r.webhook ? { webhook: `${name}-webhook-url` } : {}),
    ...(r.discord ? { discord: `${name}-discord-webhook-url` } : {}),
    ...(r.email?.username ? { smtpPassword: `${name}-smtp-password` } : {}),
  };
}

/** Secret values are referenced as files of the mounted Secret (`*_file`), never inlined. */
function receiverConfig(name: string, r: ReceiverSettings, secret: SecretRef | undefined): Record<string, unknown> {
  const email = r.email;
  const keys = receiverSecretKeys(name, r);
  // Declared whenever a receiver has a key (MonitoringStack.receiverSecret).
  const file = (key: string) => `${ALERTMANAGER_SECRETS_DIR}/${secret!.keySelector(key).name}/${key}`;
  return {
    name,
    ...(keys.webhook ? { webhook_configs: [{ url_file: file(keys.webhook), send_resolved: true }] } : {}),
    ...(keys.discord ? { discord_configs: [{ webhook_url_file: file(keys.discord), send_resolved: true }] } : {}),
    ...(email
      ? {
          email_configs: [
            {
              to: email.to,
              from: email.from,
              smarthost: email.smarthost,
              ...(email.username && keys.smtpPassword ? { auth_username: email.username, auth_password_file: file(keys.smtpPassword) } : {}),
              require_tls: email.requireTls,
              send_resolved: true,
            },
          ],
        }
      : {}),
  };
}

/**
 * The prometheus-operator CRDs, a service of their own in the first wave while monitoring is
 * enabled (charts/prometheus-operator-crds.ts): every service emitting monitors or rules
 * depends on them, not on the stack.
 */
export const prometheusOperatorCrdsEntry = defineService({
  name: 'prometheus-operator-crds',
  enabled: (_settings, env) => env.isEnabled(monitoringEntry),
  names: ['prometheus-operator-crds'],
  serviceNames: () => [],
  build: (platform) => new PrometheusOperatorCrds(platform),
});

export const monitoringEntry = defineService({
  name: 'monitoring',
  settings: { key: 'monitoring', schema: monitoringSettings },
  names: [MONITORING_NAMESPACE],
  subdomains: (settings) => [
    { path: ['grafana', 'subdomain'], subdomain: settings.grafana.subdomain },
    { path: ['prometheus', 'subdomain'], subdomain: settings.prometheus.subdomain },
    { path: ['alertmanager', 'subdomain'], subdomain: settings.alertmanager.subdomain },
  ],
  requires: () => [{ entry: longhornEntry, path: ['enabled'], reason: 'Prometheus and Alertmanager keep their data on Longhorn' }],
  check: (settings, env) => longhornStorageClassIssues(env, ['storageClass'], settings.storageClass),
  upstreamTargets: {
    // k3s's CoreDNS, scraped by the stack's own ServiceMonitor (the chart's would write to kube-system).
    'monitoring-coredns': { selector: { 'k8s-app': 'kube-dns' }, port: 'metrics', source: 'k3s-io/k3s manifests/coredns.yaml' },
  },
  build: (platform, settings, context) =>
    new MonitoringStack(platform, { ...settings, storage: context.required(longhornEntry), loki: context.optional(lokiEntry), tempo: context.optional(tempoEntry) }),
});
