/**
 * The monitoring stack (kube-prometheus-stack) on the example's dev and prod platforms: every
 * service the example builds, the prometheus-operator CRDs, a stand-in Loki and an app with
 * dashboards, then the stack built last from settings parsed by the config schema. Checked:
 * the Helm values against the chart's schema and for what the chart does with them, the
 * Alertmanager route tree by evaluating it, the Application (waves, drift), the documents
 * against the Kubernetes and CRD schemas, and the checkpoint script run with a fake curl.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'cdk8s';
import { parse } from 'yaml';
import type { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { LokiDataSource, monitoringSettings as monitoringSchema, MonitoringStack, PROMETHEUS_URL } from '../charts/kube-prometheus-stack';
import { PrometheusOperatorCrds } from '../charts/prometheus-operator-crds';
import { CHECK_START_SECONDS, Checkpoint } from '../lib/model/checkpoint';
import { deepMerge } from '../lib/model/config/merge';
import type { EnvironmentConfig } from '../lib/model/config/environment';
import { helmValuesErrors } from '../lib/tools/validate/helm-values';
import { provisionDashboards } from '../lib/passes/monitoring';

import { Layer } from '../lib/model/layers';
import { Dashboard, isOwnDashboard, MONITORING_GROUP } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { HomelabService } from '../lib/model/service';
import type { StorageProvider } from '../lib/model/storage';
import { SynthesizedEnvironment, synthesizePlatform } from '../lib/output/synthesize';
import { ManifestValidator } from '../lib/tools/validate/manifest-validator';
import { IMAGES } from '../charts/versions';
import { buildPlatform, platformText, FAKE_SLEEP, Manifest, manifestsOf, parseText, fakeCallCount, runWithFakeCommands, shellQuoted } from './support';

/** `services.monitoring` as proposed for homelab.yaml: the base, then each environment's overrides. */
const MONITORING_YAML = {
  base: `
enabled: true
retention: 15d
storageSize: 20Gi
grafana:
  subdomain: grafana
alertmanager:
  receivers:
    homelab-webhook:
      webhook: {}
  route:
    receiver: homelab-webhook
`,
  dev: `
retention: 3d
storageSize: 10Gi
`,
  prod: `
retention: 30d
storageSize: 50Gi
alertmanager:
  receivers:
    pager:
      email:
        to: oncall@example.net
        from: alertmanager@example.net
        smarthost: smtp.example.net:587
        username: alertmanager@example.net
  route:
    critical: pager
resources:
  prometheus:
    requests: { cpu: 500m, memory: 2Gi }
    limits: { cpu: "2", memory: 4Gi }
`,
};

const settingsFor = (env: 'dev' | 'prod') => monitoringSchema.parse(deepMerge(parse(MONITORING_YAML.base), parse(MONITORING_YAML[env])));

/** A service with dashboards of its own, and those it shares with another service. */
class DashboardedApp extends HomelabService {
  constructor(platform: Platform, name: string, dashboards: Dashboard[]) {
    super(platform, name, {}, { layer: Layer.AUTOMATION, namespace: name });
    for (const dashboard of dashboards) this.addDashboard(dashboard);
    new Checkpoint(this, 'checkpoint', { description: 'test double', image: IMAGES.busybox, script: 'true' });
  }
}

const APP_OVERVIEW: Dashboard = { name: 'app-overview', gnetId: 12345, revision: 7 };

const examples = parseText(platformText(), 'homelab.yaml').environments;

/** The example environment, without a monitoring stack of its own should it enable one: the test builds it. */
function exampleEnvironment(env: string): EnvironmentConfig {
  const config = examples.get(env)!;
  const services: Record<string, any> = config.services;
  if (!('monitoring' in services)) return config;
  const disabled = { monitoring: { ...services.monitoring, enabled: false } };
  return { ...config, services: { ...config.services, ...disabled } };
}

interface Built {
  readonly platform: Platform;
  readonly stack: MonitoringStack;
  readonly storage: StorageProvider;
  /** The example's Loki, handed to the stack (unless `loki: false`). */
  readonly loki?: LokiDataSource;
  readonly out: SynthesizedEnvironment;
  readonly docs: { path: string; manifest: Manifest }[];
  readonly values: any;
}

function build(env: 'dev' | 'prod', options: { loki?: boolean } = {}): Built {
  const app = new App({ outdir: '/dev/null' });
  const platform = buildPlatform(app, env, exampleEnvironment(env));
  if (!platform.services.some((s) => s.installsCrdGroups.includes(MONITORING_GROUP))) new PrometheusOperatorCrds(platform);
  const exampleLoki = platform.services.find((s) => s.serviceName === 'loki') as unknown as LokiDataSource;
  const loki = options.loki === false ? undefined : exampleLoki;
  // One dashboard of its own, and Loki's (on the Loki data source), declared a second time.
  new DashboardedApp(platform, 'dashboarded-app', [APP_OVERVIEW, ...exampleLoki.dashboards]);
  const storage = platform.services.find((s) => s.serviceName === 'longhorn') as unknown as StorageProvider;
  const stack = new MonitoringStack(platform, { ...settingsFor(env), storage, loki });
  const out = synthesizePlatform(app, platform);
  const docs = manifestsOf(out);
  const application = docs.find(({ manifest }) => manifest.kind === 'Application' && manifest.metadata.name === 'monitoring')!.manifest;
  return { platform, stack, storage, loki, out, docs, values: application.spec.sources[0].helm.valuesObject };
}

const dev = build('dev');
const prod = build('prod');
const envs = [dev, prod];

const one = (built: Built, kind: string, name: string): Manifest =>
  built.docs.find(({ manifest }) => manifest.kind === kind && manifest.metadata.name === name)!.manifest;
const waveOf = (built: Built, service: string) => Number(one(built, 'Application', service).metadata.annotations!['argocd.argoproj.io/sync-wave']);

describe('the kube-prometheus-stack values', () => {
  it('pass the chart values schema, as the Application carries them', () => {
    for (const { values } of envs) expect(helmValuesErrors('kube-prometheus-stack', values)).toEqual([]);
  });

  it('pin the chart and release it as "monitoring" into its own namespace', () => {
    const application = one(prod, 'Application', 'monitoring');
    expect(application.spec.sources[0]).toMatchObject({
      repoURL: 'https://prometheus-community.github.io/helm-charts',
      chart: 'kube-prometheus-stack',
      targetRevision: '88.5.3',
      helm: { releaseName: 'monitoring' },
    });
    expect(application.spec.destination.namespace).toBe('monitoring');
    expect(prod.values.fullnameOverride).toBe('monitoring');
  });

  it('leave the CRDs to the prometheus-operator-crds service', () => {
    for (const { values } of envs) expect(values.crds).toEqual({ enabled: false });
  });

  it('let Prometheus select every monitor, probe, scrape config and rule in the cluster', () => {
    for (const { values } of envs) {
      const spec = values.prometheus.prometheusSpec;
      for (const kind of ['rule', 'serviceMonitor', 'podMonitor', 'probe', 'scrapeConfig']) {
        expect(spec[`${kind}SelectorNilUsesHelmValues`], kind).toBe(false);
        // Left empty: with the switch off, an empty selector selects everything.
        expect(spec[`${kind}Selector`]).toBeUndefined();
      }
    }
  });

  it('drop the control-plane scrapes and rules k3s cannot serve, keeping the API server, kubelets and node metrics', () => {
    for (const { values } of envs) {
      for (const component of ['kubeControllerManager', 'kubeScheduler', 'kubeProxy', 'kubeEtcd', 'coreDns', 'kubeDns']) {
        expect(values[component], component).toEqual({ enabled: false });
      }
      expect(values.defaultRules.create).toBe(true);
      expect(values.defaultRules.rules).toEqual({
        etcd: false,
        kubeControllerManager: false,
        kubeSchedulerAlerting: false,
        kubeSchedulerRecording: false,
        kubeProxy: false,
        windows: false,
      });
      for (const kept of ['kubeApiServer', 'kubelet', 'kubeStateMetrics', 'nodeExporter', 'kubernetesServiceMonitors']) {
        expect(values[kept]?.enabled, kept).not.toBe(false);
      }
    }
  });

  it('scrape k3s CoreDNS through its kube-dns Service from the monitoring namespace, not from kube-system', () => {
    const monitor = one(prod, 'ServiceMonitor', 'monitoring-coredns');
    expect(monitor.metadata.namespace).toBe('monitoring');
    expect(monitor.spec).toMatchObject({
      selector: { matchLabels: { 'k8s-app': 'kube-dns' } },
      namespaceSelector: { matchNames: ['kube-system'] },
      endpoints: [expect.objectContaining({ port: 'metrics', path: '/metrics' })],
    });
    // Nothing this service writes lands outside its namespace.
    const namespaced = prod.docs.filter(({ path, manifest }) => path.startsWith('monitoring/') && manifest.kind !== 'Namespace');
    for (const { manifest } of namespaced) expect(manifest.metadata.namespace, manifest.metadata.name).toBe('monitoring');
  });

  it('keep samples for the environment\'s retention on a Longhorn volume of its size, stopping at 85% of it', () => {
    const expected = { dev: ['3d', '10Gi', '8GB'], prod: ['30d', '50Gi', '42GB'] };
    for (const built of envs) {
      const [retention, size, retentionSize] = expected[built.platform.environment as 'dev' | 'prod'];
      const spec = built.values.prometheus.prometheusSpec;
      expect(spec.retention).toBe(retention);
      expect(spec.retentionSize).toBe(retentionSize);
      const storageClass = built.storage.defaultStorageClass;
      expect(storageClass).toBe('longhorn-replicated');
      expect(spec.storageSpec).toEqual({
        volumeClaimTemplate: { spec: { storageClassName: storageClass, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } } } },
      });
      expect(built.values.alertmanager.alertmanagerSpec.storage.volumeClaimTemplate.spec).toMatchObject({ storageClassName: storageClass });
    }
  });

  it('put the volumes on another Longhorn class when asked, and refuse an unknown one', () => {
    const app = new App({ outdir: '/dev/null' });
    const platform = buildPlatform(app, 'prod', exampleEnvironment('prod'));
    const storage = platform.services.find((s) => s.serviceName === 'longhorn') as unknown as StorageProvider;
    const stack = new MonitoringStack(platform, { ...settingsFor('prod'), storageClass: 'longhorn-scratch', storage });
    provisionDashboards(platform);
    expect((stack.helm!.values as any).prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec.storageClassName).toBe('longhorn-scratch');
    const other = buildPlatform(new App({ outdir: '/dev/null' }), 'prod', exampleEnvironment('prod'));
    const otherStorage = other.services.find((s) => s.serviceName === 'longhorn') as unknown as StorageProvider;
    expect(() => new MonitoringStack(other, { ...settingsFor('prod'), storageClass: 'nvme', storage: otherStorage })).toThrow('Longhorn has no storage class "nvme"');
  });
});

/** The first route an alert with these labels takes, as Alertmanager walks the tree (no `continue`). */
function routeOf(config: any, labels: Record<string, string>): string {
  const matches = (matcher: string) => {
    const [, name, op, value] = /^(\w+) (=~|=) "(.*)"$/.exec(matcher)!;
    const actual = labels[name] ?? '';
    return op === '=' ? actual === value : new RegExp(`^(?:${value})$`).test(actual);
  };
  const walk = (route: any): string => {
    for (const child of route.routes ?? []) {
      if ((child.matchers ?? []).every(matches)) return walk(child);
    }
    return route.receiver;
  };
  return walk(config.route);
}

describe('Alertmanager', () => {
  it('routes critical alerts to the critical receiver, warnings to the default one, info and the heartbeat nowhere', () => {
    const cases: [Built, Record<string, string>, string][] = [
      [prod, { alertname: 'KubePodCrashLooping', severity: 'critical', namespace: 'n8n' }, 'pager'],
      [prod, { alertname: 'KubePodNotReady', severity: 'warning', namespace: 'n8n' }, 'homelab-webhook'],
      [prod, { alertname: 'MonitoringCorednsTargetDown', severity: 'warning' }, 'homelab-webhook'],
      [prod, { alertname: 'CPUThrottlingHigh', severity: 'info' }, 'null'],
      [prod, { alertname: 'Watchdog', severity: 'none' }, 'null'],
      [prod, { alertname: 'InfoInhibitor', severity: 'none' }, 'null'],
      [prod, { alertname: 'NoSeverity' }, 'homelab-webhook'],
      // dev has no critical receiver: critical alerts go to the default one.
      [dev, { alertname: 'KubePodCrashLooping', severity: 'critical' }, 'homelab-webhook'],
    ];
    for (const [built, labels, receiver] of cases) {
      expect(routeOf(built.values.alertmanager.config, labels), `${built.platform.environment} ${JSON.stringify(labels)}`).toBe(receiver);
    }
    for (const { values } of envs) {
      const receivers = values.alertmanager.config.receivers.map((r: any) => r.name);
      const routed = [values.alertmanager.config.route, ...values.alertmanager.config.route.routes].map((r: any) => r.receiver);
      for (const name of routed) expect(receivers).toContain(name);
    }
  });

  it('reads webhook URLs and SMTP passwords from the mounted Secrets, never from the values', () => {
    const config = prod.values.alertmanager.config;
    expect(config.receivers).toEqual([
      { name: 'null' },
      { name: 'homelab-webhook', webhook_configs: [{ url_file: '/etc/alertmanager/secrets/alertmanager-receivers/homelab-webhook-webhook-url', send_resolved: true }] },
      {
        name: 'pager',
        email_configs: [
          {
            to: 'oncall@example.net',
            from: 'alertmanager@example.net',
            smarthost: 'smtp.example.net:587',
            auth_username: 'alertmanager@example.net',
            auth_password_file: '/etc/alertmanager/secrets/alertmanager-receivers/pager-smtp-password',
            require_tls: true,
            send_resolved: true,
          },
        ],
      },
    ]);
    // The operator mounts each listed Secret at /etc/alertmanager/secrets/<name>/: the one the stack declares, with a key per file.
    expect(dev.stack.secretNeeds.find((n) => n.name === 'alertmanager-receivers')?.keys).toEqual(['homelab-webhook-webhook-url']);
    expect(prod.stack.secretNeeds.find((n) => n.name === 'alertmanager-receivers')?.keys).toEqual(['homelab-webhook-webhook-url', 'pager-smtp-password']);
    for (const { values } of envs) {
      expect(values.alertmanager.alertmanagerSpec.secrets).toEqual(['alertmanager-receivers']);
      const text = JSON.stringify(values.alertmanager.config);
      for (const inline of ['"url":', '"webhook_url":', '"auth_password":', '"api_url":', 'smtp_auth_password"']) expect(text).not.toContain(inline);
      for (const file of text.match(/"\w+_file":"[^"]+"/g) ?? []) {
        expect(file).toMatch(/":"\/etc\/alertmanager\/secrets\/alertmanager-receivers\/[-\w.]+"$/);
      }
    }
    for (const { docs } of envs) expect(docs.filter(({ manifest }) => manifest.kind === 'Secret')).toEqual([]);
  });

  it('renders Discord receivers and SMTP relays without authentication the same way', () => {
    const settings = monitoringSchema.parse({
      enabled: true,
      alertmanager: {
        receivers: {
          chat: { discord: {} },
          relay: { email: { to: 'a@example.net, b@example.net', from: 'am@example.net', smarthost: 'relay.lan:25', requireTls: false } },
        },
        route: { receiver: 'chat', critical: 'relay' },
      },
    });
    const platform = buildPlatform(new App({ outdir: '/dev/null' }), 'dev', exampleEnvironment('dev'));
    const storage = platform.services.find((s) => s.serviceName === 'longhorn') as unknown as StorageProvider;
    const stack = new MonitoringStack(platform, { ...settings, storage });
    provisionDashboards(platform);
    const values = stack.helm!.values as any;
    expect(values.alertmanager.config.receivers.slice(1)).toEqual([
      { name: 'chat', discord_configs: [{ webhook_url_file: '/etc/alertmanager/secrets/alertmanager-receivers/chat-discord-webhook-url', send_resolved: true }] },
      { name: 'relay', email_configs: [{ to: 'a@example.net, b@example.net', from: 'am@example.net', smarthost: 'relay.lan:25', require_tls: false, send_resolved: true }] },
    ]);
    expect(values.alertmanager.alertmanagerSpec.secrets).toEqual(['alertmanager-receivers']);
    expect(stack.secretNeeds.map((n) => [n.name, n.keys])).toEqual([
      ['grafana-admin', ['admin-password', 'admin-user']],
      ['alertmanager-receivers', ['chat-discord-webhook-url']],
    ]);
    expect(helmValuesErrors('kube-prometheus-stack', values)).toEqual([]);
  });
});

describe('Grafana', () => {
  it('takes its admin from the Secret it declares and renders no credential', () => {
    for (const { values, stack } of envs) {
      expect(stack.secretNeeds).toContainEqual(
        expect.objectContaining({ service: 'monitoring', namespace: 'monitoring', name: 'grafana-admin', keys: ['admin-password', 'admin-user'] }),
      );
      expect(values.grafana.admin).toEqual({ existingSecret: 'grafana-admin', userKey: 'admin-user', passwordKey: 'admin-password' });
      expect(values.grafana.adminPassword).toBeUndefined();
    }
  });

  it('has the Prometheus and Alertmanager data sources of the chart, and Loki from the Loki service', () => {
    for (const { values, loki } of envs) {
      // The chart's sidecar provisions Prometheus (default) and Alertmanager unless switched off.
      expect(values.grafana.sidecar?.datasources).toBeUndefined();
      expect(values.grafana.additionalDataSources).toEqual([
        { name: 'Loki', uid: 'loki', type: 'loki', access: 'proxy', url: loki!.queryUrl, editable: false, jsonData: { maxLines: 1000 } },
      ]);
    }
  });

  it('provisions every dashboard the platform\'s services declare, pinned by grafana.com ID and revision, each once', () => {
    for (const { values, platform, stack } of envs) {
      const declared = platform.services.flatMap((s) => s.dashboards);
      expect(declared.length).toBeGreaterThanOrEqual(3);
      // The stack's own, next to the chart's built-in Kubernetes and node-exporter dashboards.
      expect(stack.dashboards.map((d) => d.name)).toEqual(['node-exporter-full', 'kubernetes-views-global']);
      const provisioned = values.grafana.dashboards.homelab;
      expect(Object.keys(provisioned)).toEqual([...new Set(declared.map((d) => d.name))].sort());
      for (const dashboard of declared) {
        expect(provisioned[dashboard.name]).toEqual(
          isOwnDashboard(dashboard) ? { json: dashboard.json } : { gnetId: dashboard.gnetId, revision: dashboard.revision, datasource: dashboard.datasource ?? 'Prometheus' },
        );
      }
      for (const entry of Object.values<any>(provisioned).filter((e) => !('json' in e))) {
        expect(Number.isInteger(entry.gnetId) && entry.gnetId > 0).toBe(true);
        expect(Number.isInteger(entry.revision) && entry.revision > 0).toBe(true);
      }
      // The grafana chart downloads them into the provider's path.
      expect(values.grafana.dashboardProviders['dashboardproviders.yaml'].providers).toEqual([
        expect.objectContaining({ name: 'homelab', folderUid: 'homelab', type: 'file', options: { path: '/var/lib/grafana/dashboards/homelab' } }),
      ]);
    }
  });

  it('without Loki: no Loki data source and no dashboards that need one', () => {
    const built = build('dev', { loki: false });
    expect(built.values.grafana.additionalDataSources).toEqual([]);
    const withoutLoki = built.platform.services.flatMap((s) => s.dashboards).filter((d) => d.datasource !== 'Loki');
    expect(Object.keys(built.values.grafana.dashboards.homelab)).toEqual([...new Set(withoutLoki.map((d) => d.name))].sort());
    expect(Object.keys(built.values.grafana.dashboards.homelab)).toContain('app-overview');
    expect(Object.values<any>(built.values.grafana.dashboards.homelab).filter((d) => d.datasource === 'Loki')).toEqual([]);
    const job = one(built, 'Job', 'monitoring-checkpoint');
    expect(envOf(job).DATASOURCES).toBe('Prometheus Alertmanager');
    expect(helmValuesErrors('kube-prometheus-stack', built.values)).toEqual([]);
  });

  it('refuses two different dashboards under one name', () => {
    const platform = buildPlatform(new App({ outdir: '/dev/null' }), 'dev', exampleEnvironment('dev'));
    new DashboardedApp(platform, 'one', [{ name: 'overview', gnetId: 1, revision: 1 }]);
    new DashboardedApp(platform, 'two', [{ name: 'overview', gnetId: 1, revision: 2 }]);
    const storage = platform.services.find((s) => s.serviceName === 'longhorn') as unknown as StorageProvider;
    new MonitoringStack(platform, { ...settingsFor('dev'), storage });
    expect(() => provisionDashboards(platform)).toThrow(
      'dashboard "overview" is declared twice, differently: grafana.com 1 revision 1 on Prometheus by one, grafana.com 1 revision 2 on Prometheus by two',
    );
  });
});

describe('the monitoring Application', () => {
  it('syncs after Longhorn, the prometheus-operator CRDs and Loki', () => {
    for (const built of envs) {
      for (const dependency of ['longhorn', 'prometheus-operator-crds', 'loki']) {
        expect(waveOf(built, 'monitoring'), dependency).toBeGreaterThan(waveOf(built, dependency));
      }
      // External Secrets delivers Grafana's admin and the receivers' Secret (a CRD edge) from Vault (the backend of its SecretStore).
      expect(built.out.services.find((s) => s.name === 'monitoring')!.dependsOn).toEqual(['external-secrets', 'loki', 'longhorn', 'prometheus-operator-crds', 'vault']);
    }
  });

  it('ignores the CA the admission-patch hook writes into the webhook configurations', () => {
    const application = one(prod, 'Application', 'monitoring');
    expect(application.spec.ignoreDifferences).toEqual(
      ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration'].map((kind) => ({
        group: 'admissionregistration.k8s.io',
        kind,
        name: 'monitoring-admission',
        jqPathExpressions: ['.webhooks[]?.clientConfig.caBundle'],
      })),
    );
    expect(application.spec.syncPolicy.syncOptions).toEqual(expect.arrayContaining(['RespectIgnoreDifferences=true', 'ServerSideApply=true']));
    // The webhooks and their patch hooks stay on; the chart then sets failurePolicy Ignore.
    expect(prod.values.prometheusOperator.admissionWebhooks.enabled).not.toBe(false);
    expect(prod.values.prometheusOperator.admissionWebhooks.patch.enabled).not.toBe(false);
    expect(prod.values.prometheusOperator.admissionWebhooks.failurePolicy).toBeUndefined();
  });

  it('runs in a privileged namespace, for node-exporter\'s host network, PIDs and paths', () => {
    const namespace = one(prod, 'Namespace', 'monitoring');
    expect(namespace.metadata.labels).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'privileged' });
  });

  it('validates against the Kubernetes and CRD schemas, every document', () => {
    const validator = ManifestValidator.shared();
    for (const { out, docs } of envs) {
      const problems = docs.flatMap(({ path, manifest }) => validator.validate(manifest).map((p) => `${out.environment}/${path}: ${p}`));
      expect(problems).toEqual([]);
    }
  });

  it('declares what its workloads request, node-exporter once per node (on every node, tainted or not)', () => {
    expect(prod.stack.demands).toEqual([
      { service: 'monitoring', workload: 'prometheus', replicas: 1, cpu: '510m', memory: '2080Mi' },
      { service: 'monitoring', workload: 'alertmanager', replicas: 1, cpu: '30m', memory: '96Mi' },
      { service: 'monitoring', workload: 'grafana', replicas: 1, cpu: '140m', memory: '448Mi' },
      { service: 'monitoring', workload: 'prometheus-operator', replicas: 1, cpu: '50m', memory: '128Mi' },
      { service: 'monitoring', workload: 'kube-state-metrics', replicas: 1, cpu: '20m', memory: '64Mi' },
      { service: 'monitoring', workload: 'node-exporter', replicas: 3, cpu: '20m', memory: '32Mi', placement: 'every-node' },
    ]);
    expect(dev.stack.demands.find((d) => d.workload === 'node-exporter')!.replicas).toBe(1);
    expect(prod.values.prometheus.prometheusSpec.resources).toEqual({ requests: { cpu: '500m', memory: '2Gi' }, limits: { cpu: '2', memory: '4Gi' } });
    expect(dev.values.prometheus.prometheusSpec.resources).toEqual({ requests: { cpu: '200m', memory: '1Gi' }, limits: { cpu: '1', memory: '2Gi' } });
  });
});

function envOf(job: Manifest): Record<string, string> {
  return Object.fromEntries(job.spec.template.spec.containers[0].env.filter((e: any) => 'value' in e).map((e: any) => [e.name, e.value]));
}

/** A target as Prometheus' /api/v1/targets lists it (compact JSON, fields in the API's order). */
const target = (pool: string, url: string, health: string, lastError = '') =>
  `{"discoveredLabels":{"__address__":"${new URL(url).host}","__meta_kubernetes_namespace":"monitoring","job":"${pool}"},` +
  `"labels":{"instance":"${new URL(url).host}","job":"${pool.split('/')[2]}","namespace":"monitoring"},` +
  `"scrapePool":"${pool}","scrapeUrl":"${url}","globalUrl":"${url}","lastError":${JSON.stringify(lastError)},` +
  `"lastScrape":"2026-11-23T10:00:00.123Z","lastScrapeDuration":0.004,"health":"${health}","scrapeInterval":"30s","scrapeTimeout":"10s"}`;
const targetsResponse = (...targets: string[]) =>
  `{"status":"success","data":{"activeTargets":[${targets.join(',')}],"droppedTargets":[],"droppedTargetCounts":{"serviceMonitor/monitoring/monitoring-coredns/0":2}}}`;

const NODE = target('serviceMonitor/monitoring/monitoring-prometheus-node-exporter/0', 'http://10.42.0.12:9100/metrics', 'up');
const GRAFANA = target('serviceMonitor/monitoring/monitoring-grafana/0', 'http://10.42.0.31:3000/metrics', 'up');
const COREDNS_UP = target('serviceMonitor/monitoring/monitoring-coredns/0', 'http://10.42.1.7:9153/metrics', 'up');
const COREDNS_DOWN = target(
  'serviceMonitor/monitoring/monitoring-coredns/0',
  'http://10.42.1.7:9153/metrics',
  'down',
  'Get "http://10.42.1.7:9153/metrics": dial tcp 10.42.1.7:9153: connect: connection refused',
);
/** Grafana's /api/datasources, compact as Grafana writes it. */
const DATASOURCES = JSON.stringify(
  [
    ['prometheus', 'Prometheus'],
    ['alertmanager', 'Alertmanager'],
    ['loki', 'Loki'],
  ].map(([type, name], i) => ({ id: i + 1, uid: type, orgId: 1, name, type })),
);
const search = (n: number) => `[${Array.from({ length: n }, (_, i) => `{"id":${i + 10},"uid":"d${i}","title":"D ${i}","type":"dash-db","folderUid":"homelab"}`).join(',')}]`;

/**
 * Alertmanager's notification counters as /metrics prints them: [requests, failed requests] per
 * integration; the attempt counters (which count a notification when it starts) rise with the
 * requests, so that a check reading them would pass on failing requests.
 */
const notificationMetrics = (counts: Record<string, [number, number]>) =>
  [
    '# HELP alertmanager_notifications_total The total number of attempted notifications.',
    '# TYPE alertmanager_notifications_total counter',
    ...['discord', 'email', 'webhook'].map((i) => `alertmanager_notifications_total{integration="${i}"} ${counts[i]?.[0] ?? 0}`),
    '# HELP alertmanager_notification_requests_total The total number of attempted notification requests.',
    '# TYPE alertmanager_notification_requests_total counter',
    ...['discord', 'email', 'webhook'].map((i) => `alertmanager_notification_requests_total{integration="${i}"} ${counts[i]?.[0] ?? 0}`),
    '# HELP alertmanager_notification_requests_failed_total The total number of failed notification requests.',
    '# TYPE alertmanager_notification_requests_failed_total counter',
    ...['discord', 'email', 'webhook'].map((i) => `alertmanager_notification_requests_failed_total{integration="${i}"} ${counts[i]?.[1] ?? 0}`),
  ].join('\n');
/** The synthetic alert as Alertmanager's API v2 lists it, with the receivers it was routed to. */
const routedAlert = (...receivers: string[]) =>
  JSON.stringify([{ labels: { alertname: 'HomelabAlertDeliveryTest', homelab_delivery_test: 'true', severity: 'warning' }, receivers: receivers.map((name) => ({ name })), status: { state: 'active' } }], null, 2);

interface Responses {
  /** Targets responses in order; the last one repeats. */
  readonly targets: string[];
  /** Data source lists in order; the last one repeats. @default all three */
  readonly datasources?: string[];
  readonly dashboards?: number;
  /**
   * Alertmanager: its metrics before and after the synthetic alert arrived, and the alerts its
   * API lists for the delivery label. @default one more attempt per integration, no failure, routed to every receiver
   */
  readonly alertmanager?: { readonly before?: string; readonly after?: string; readonly routed?: string };
  /** Overrides of the Job's env, e.g. fewer checks for a test that runs out of them. */
  readonly env?: Record<string, string>;
}

/** Fewer rounds than the Job's own, for the tests that use them all up: the logic is the same, the fakes run fewer times. */
const FEW_CHECKS = { TARGET_CHECKS: '4', GRAFANA_CHECKS: '3' };

/** Runs the checkpoint Job's script with its env, a fake `curl` answering per URL and a `sleep` that returns at once. */
function runCheckpoint(built: Built, responses: Responses): { status: number | null; stdout: string; stderr: string; calls: string[] } {
  const print = (body: string) => `printf '%s' ${shellQuoted(body)}`;
  /** The n-th call of a kind answers the n-th of `bodies`, or the last one. */
  const inOrder = (kind: string, bodies: readonly string[]) =>
    bodies.map((body, i) => `    ${i < bodies.length - 1 ? shellQuoted(`${kind} ${i + 1}`) : `${shellQuoted(`${kind} `)}*`}) ${print(body)} ;;`);
  // The answers in the fake itself: a call starts no process.
  const curl = [
    'echo "$*" >> "$FAKE_BIN/calls"',
    'for url; do :; done',
    'answer() {',
    `  ${fakeCallCount('n', '$FAKE_BIN/$1.count')}`,
    '  case "$1 $n" in',
    ...inOrder('targets', responses.targets),
    ...inOrder('datasources', responses.datasources ?? [DATASOURCES]),
    '  esac',
    '}',
    'case "$url" in',
    '  */api/v1/targets*) answer targets ;;',
    `  */api/health) printf '{\\n  "commit": "abc",\\n  "database": "ok",\\n  "version": "13.2.0"\\n}' ;;`,
    '  */api/datasources) answer datasources ;;',
    `  */api/search*) ${print(search(responses.dashboards ?? built.stack.provisionedDashboards.size))} ;;`,
    // Alertmanager: the metrics change once the synthetic alert was posted.
    `  */api/v2/alerts\\?*) ${print(responses.alertmanager?.routed ?? routedAlert('homelab-webhook', 'pager'))} ;;`,
    '  */api/v2/alerts) echo "$*" > "$FAKE_BIN/posted"; echo "" ;;',
    `  */metrics) if [ -f "$FAKE_BIN/posted" ]; then ${print(responses.alertmanager?.after ?? notificationMetrics({ email: [4, 0], webhook: [6, 1] }))}; else ${print(responses.alertmanager?.before ?? notificationMetrics({ email: [3, 0], webhook: [5, 1] }))}; fi ;;`,
    '  *) exit 7 ;;',
    'esac',
  ].join('\n');
  const job = one(built, 'Job', 'monitoring-checkpoint');
  const result = runWithFakeCommands(job.spec.template.spec.containers[0], { curl, sleep: FAKE_SLEEP }, {
    env: { GRAFANA_USER: 'admin', GRAFANA_PASSWORD: 's3cret', ...responses.env },
    // No file where the script stopped before its first call.
    collect: (bin) => (existsSync(join(bin, 'calls')) ? readFileSync(join(bin, 'calls'), 'utf8').trim().split('\n') : []),
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, calls: result.collected };
}

describe('the checkpoint', () => {
  const job = one(prod, 'Job', 'monitoring-checkpoint');

  it('is a PostSync hook with the Grafana admin from the Secret and a deadline above its retries', () => {
    expect(job.metadata.annotations).toMatchObject({ 'argocd.argoproj.io/hook': 'PostSync' });
    const env = job.spec.template.spec.containers[0].env;
    expect(env).toEqual(
      expect.arrayContaining([
        { name: 'GRAFANA_USER', valueFrom: { secretKeyRef: { name: 'grafana-admin', key: 'admin-user' } } },
        { name: 'GRAFANA_PASSWORD', valueFrom: { secretKeyRef: { name: 'grafana-admin', key: 'admin-password' } } },
      ]),
    );
    expect(envOf(job)).toMatchObject({
      PROMETHEUS_URL: 'http://monitoring-prometheus.monitoring.svc:9090',
      GRAFANA_URL: 'http://monitoring-grafana.monitoring.svc',
      DATASOURCES: 'Prometheus Alertmanager Loki',
      EXPECTED_DASHBOARDS: String(prod.stack.provisionedDashboards.size),
    });
    // Even when every call hangs until its --max-time, the retries end before the deadline, the pod's start counted.
    const n = (name: string) => Number(envOf(job)[name]);
    const integrations = envOf(job).DELIVERY_INTEGRATIONS.split(' ').filter(Boolean).length;
    const worstCase =
      CHECK_START_SECONDS +
      n('TARGET_CHECKS') * (n('CALL_MAX_SECONDS') + n('CHECK_INTERVAL_SECONDS')) +
      n('GRAFANA_CHECKS') * (3 * n('CALL_MAX_SECONDS') + n('CHECK_INTERVAL_SECONDS')) +
      n('DELIVERY_CHECKS') * (2 * integrations * n('CALL_MAX_SECONDS') + n('CHECK_INTERVAL_SECONDS')) +
      (2 + 2 * integrations) * n('CALL_MAX_SECONDS');
    expect(integrations).toBeGreaterThan(0);
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(worstCase);
    // New targets get five minutes for their first scrape.
    expect(n('TARGET_CHECKS') * n('CHECK_INTERVAL_SECONDS')).toBe(300);
  });

  it('passes when every target is up and Grafana has its data sources and dashboards', () => {
    const run = runCheckpoint(prod, { targets: [targetsResponse(NODE, GRAFANA, COREDNS_UP)] });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('all 3 scrape targets are up');
    expect(run.stdout).toContain(`Grafana is healthy with the data sources Prometheus Alertmanager Loki and the ${prod.stack.provisionedDashboards.size} provisioned dashboards`);
    expect(run.calls[0]).toMatch(new RegExp(`${PROMETHEUS_URL}/api/v1/targets\\?state=active$`));
    expect(run.calls.filter((c) => c.includes('/api/datasources'))[0]).toContain('-u admin:s3cret');
  });

  it('waits while targets are still unknown or down, and passes once they are up', () => {
    const grafanaUnscraped = target('serviceMonitor/monitoring/monitoring-grafana/0', 'http://10.42.0.31:3000/metrics', 'unknown');
    const run = runCheckpoint(prod, {
      targets: [targetsResponse(), targetsResponse(NODE, grafanaUnscraped), targetsResponse(NODE, COREDNS_DOWN), targetsResponse(NODE, GRAFANA, COREDNS_UP)],
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.calls.filter((c) => c.includes('/api/v1/targets'))).toHaveLength(4);
  });

  it('fails after its retries, naming each target that is down with its last error', () => {
    const run = runCheckpoint(prod, { targets: [targetsResponse(NODE, GRAFANA, COREDNS_DOWN)], env: FEW_CHECKS });
    expect(run.status).toBe(1);
    expect(run.calls.filter((c) => c.includes('/api/v1/targets'))).toHaveLength(4);
    expect(run.stderr).toContain('Prometheus scrape targets not up after 4 checks:');
    expect(run.stderr).toContain(
      'down serviceMonitor/monitoring/monitoring-coredns/0 http://10.42.1.7:9153/metrics (Get \\"http://10.42.1.7:9153/metrics\\": dial tcp 10.42.1.7:9153: connect: connection refused)',
    );
    expect(run.stderr).not.toContain('node-exporter');
    expect(run.calls.some((c) => c.includes('/api/health'))).toBe(false);
  });

  it('fails when Prometheus lists no target at all', () => {
    const run = runCheckpoint(prod, { targets: [targetsResponse()], env: FEW_CHECKS });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('no active targets at all');
  });

  it('fails when a data source or a dashboard is missing', () => {
    const up = [targetsResponse(NODE, GRAFANA, COREDNS_UP)];
    const noLoki = runCheckpoint(prod, { targets: up, datasources: [DATASOURCES.replace(/,\{[^{}]*"name":"Loki"[^{}]*\}/, '')], env: FEW_CHECKS });
    expect(noLoki.status).toBe(1);
    expect(noLoki.stderr).toContain('Grafana has no data source Loki (after 3 checks)');
    const missing = runCheckpoint(prod, { targets: up, dashboards: 1, env: FEW_CHECKS });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain(`Grafana has 1 of the ${prod.stack.provisionedDashboards.size} provisioned dashboards in folder homelab`);
  });

  it('fires a synthetic alert routed to every receiver, resolving itself, and sees every integration notify without a failure', () => {
    expect(envOf(job)).toMatchObject({ DELIVERY_RECEIVERS: 'homelab-webhook pager', DELIVERY_INTEGRATIONS: 'email=1 webhook=1', ALERTMANAGER_URL: 'http://monitoring-alertmanager.monitoring.svc:9093' });
    const run = runCheckpoint(prod, { targets: [targetsResponse(NODE, GRAFANA, COREDNS_UP)] });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/the synthetic alert reached every receiver \(homelab-webhook pager\) and resolves itself at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/);
    const posted = run.calls.find((c) => c.endsWith('/api/v2/alerts'))!;
    const body = JSON.parse(/-d (\[.*\]) http/.exec(posted)![1]);
    expect(body[0].labels).toMatchObject({ alertname: 'HomelabAlertDeliveryTest', homelab_delivery_test: 'true' });
    // Resolves itself two minutes later.
    expect(Date.parse(body[0].endsAt) - Number(body[0].labels.run) * 1000).toBe(120_000);
  });

  it('routes the synthetic alert to every receiver before any other route, and to nothing else', () => {
    const { routes } = prod.values.alertmanager.config.route;
    const receivers = prod.values.alertmanager.config.receivers.map((r: any) => r.name).filter((name: string) => name !== 'null');
    const delivery = routes.filter((r: any) => r.matchers.includes('homelab_delivery_test = "true"'));
    expect(routes.slice(0, delivery.length)).toEqual(delivery);
    expect(delivery.map((r: any) => r.receiver)).toEqual(receivers);
    // Every route but the last lets the alert on to the next; the last stops it before the severity routes.
    expect(delivery.map((r: any) => r.continue)).toEqual(receivers.map((_: string, i: number) => i < receivers.length - 1));
  });

  it.each([
    ['a request to a receiver fails (Alertmanager retries it, counting no failed notification yet)', { after: notificationMetrics({ email: [4, 1], webhook: [6, 1] }) }, 'Alertmanager failed to notify through email (1 failed request(s))'],
    ['no notification goes out', { after: notificationMetrics({ email: [3, 0], webhook: [6, 1] }) }, 'no notification through email after 3 checks'],
    ['a receiver is not routed to', { routed: routedAlert('homelab-webhook') }, 'the synthetic alert is not routed to the receiver pager'],
  ])('fails when %s', (_, alertmanager, message) => {
    const run = runCheckpoint(prod, { targets: [targetsResponse(NODE, GRAFANA, COREDNS_UP)], alertmanager, env: { DELIVERY_CHECKS: '3' } });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(message);
  });

  it('stops with a message where the Job leaves a count unset, where a count left empty would make it wait for ever', () => {
    const up = [targetsResponse(NODE, GRAFANA, COREDNS_UP)];
    const runs = {
      EXPECTED_DASHBOARDS: runCheckpoint(prod, { targets: up, env: { EXPECTED_DASHBOARDS: '' } }),
      TARGET_CHECKS: runCheckpoint(prod, { targets: [targetsResponse(NODE, GRAFANA, COREDNS_DOWN)], env: { TARGET_CHECKS: '' } }),
      GRAFANA_CHECKS: runCheckpoint(prod, { targets: up, dashboards: 1, env: { GRAFANA_CHECKS: '' } }),
      DELIVERY_CHECKS: runCheckpoint(prod, { targets: up, alertmanager: { after: notificationMetrics({ email: [3, 0], webhook: [6, 1] }) }, env: { DELIVERY_CHECKS: '' } }),
    };
    for (const [variable, run] of Object.entries(runs)) {
      expect(run.status, variable).not.toBe(0);
      expect(run.stderr).toContain(`${variable}: unset (the Job sets it)`);
    }
    // The dashboards' count is required before anything is asked; each loop stops at its first comparison.
    expect(runs.EXPECTED_DASHBOARDS.calls).toEqual([]);
    expect(runs.TARGET_CHECKS.calls.filter((c) => c.includes('/api/v1/targets'))).toHaveLength(1);
    expect(runs.GRAFANA_CHECKS.calls.filter((c) => c.includes('/api/search'))).toHaveLength(1);
  });

  it('sends no alert where no receiver is configured', () => {
    const run = runCheckpoint(prod, { targets: [targetsResponse(NODE, GRAFANA, COREDNS_UP)], env: { DELIVERY_RECEIVERS: '', DELIVERY_INTEGRATIONS: '' } });
    expect(run.status, run.stderr).toBe(0);
    expect(run.calls.some((c) => c.includes('monitoring-alertmanager'))).toBe(false);
  });

  it('waits for the data sources the sidecar loads after Grafana started', () => {
    const late = DATASOURCES.replace(/,\{[^{}]*"name":"Loki"[^{}]*\}/, '');
    const run = runCheckpoint(prod, { targets: [targetsResponse(NODE, GRAFANA, COREDNS_UP)], datasources: [late, late, DATASOURCES] });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('Grafana has no data source Loki; checking again');
    expect(run.calls.filter((c) => c.includes('/api/datasources'))).toHaveLength(3);
  });
});

describe('the monitoring config', () => {
  const problems = (input: unknown) => {
    const result = monitoringSchema.safeParse(input);
    return result.success ? [] : result.error.issues.map((i: z.core.$ZodIssue) => `${i.path.join('.')}: ${i.message}`);
  };

  it('defaults to off, 15 days on 20Gi and no receivers', () => {
    expect(monitoringSchema.parse({})).toMatchObject({
      enabled: false,
      retention: '15d',
      storageSize: '20Gi',
      grafana: { subdomain: 'grafana' },
      alertmanager: { receivers: {}, route: {} },
    });
  });

  it('reports mistakes with their path', () => {
    expect(problems({ retention: '30 days', storageSize: '50GB' })).toEqual([
      'retention: expected a retention such as "15d" (h, d or w)',
      'storageSize: expected a volume size in Gi or Ti, such as "10Gi"',
    ]);
    expect(problems({ alertmanager: { receivers: { x: {} }, route: { receiver: 'x' } } })).toEqual(['alertmanager.receivers.x: expected at least one of webhook, discord, email']);
    // An inline URL is not even a key, nor is a Secret name: the stack names its Secret.
    expect(problems({ alertmanager: { receivers: { x: { webhook: { url: 'https://hooks.example.net/abc' } } }, route: { receiver: 'x' } } })).toEqual([
      'alertmanager.receivers.x.webhook: Unrecognized key: "url"',
    ]);
    expect(problems({ alertmanager: { receivers: { x: { webhook: { urlSecret: { name: 's', key: 'k' } } } }, route: { receiver: 'x' } } })).toEqual([
      'alertmanager.receivers.x.webhook: Unrecognized key: "urlSecret"',
    ]);
    expect(problems({ grafana: { adminSecret: 'admin' } })).toEqual(['grafana: Unrecognized key: "adminSecret"']);
    expect(problems({ alertmanager: { receivers: { hook: { webhook: {} } }, route: { receiver: 'hook', critical: 'pager' } } })).toEqual([
      'alertmanager.route.critical: expected a declared receiver (hook), received "pager"',
    ]);
    expect(problems({ alertmanager: { receivers: { hook: { webhook: {} } } } })).toEqual([
      'alertmanager.receivers.hook: expected the receiver in route.receiver or route.critical: nothing is sent to it',
    ]);
    expect(problems({ alertmanager: { receivers: { null: { webhook: {} } } } })).toEqual([
      'alertmanager.receivers.null: expected another name: "null" is the receiver that drops alerts',
    ]);
    expect(
      problems({
        alertmanager: {
          receivers: { mail: { email: { to: 'a@example.net', from: 'b@example.net', smarthost: 'smtp.example.net:587', passwordSecret: { name: 's', key: 'k' } } } },
          route: { receiver: 'mail' },
        },
      }),
    ).toEqual(['alertmanager.receivers.mail.email: Unrecognized key: "passwordSecret"']);
  });
});

describe('snapshots for review', () => {
  it('monitoring', () => {
    const files = [...prod.out.files].filter(([path]) => path.startsWith('monitoring/') || path === 'apps/application-monitoring.yaml');
    expect(files.map(([path, text]) => `=== ${path}\n${text}`).join('\n')).toMatchSnapshot();
  });
});
