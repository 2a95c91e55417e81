/**
 * Monitoring as part of every service, over the example's prod built with the
 * prometheus-operator CRDs (so monitors and rules are emitted): the monitors are valid and
 * select what they are meant to, every PromQL expression parses, every service is alerted
 * on, monitoring orders services after the CRDs only, and dashboards are pinned.
 */
import { App } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { appSettings, CustomApp } from '../charts/custom-app';
import { PrometheusOperatorCrds } from '../charts/prometheus-operator-crds';
import { BUILTIN_CATALOG } from '../charts/catalog';
import { upstreamTargetsOf } from '../lib/model/catalog';

import { Layer } from '../lib/model/layers';
import { ENDPOINT_LABEL, isOwnDashboard, MONITORING_GROUP, SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { resources } from '../lib/model/resources';
import { SynthesizedEnvironment, synthesizePlatform } from '../lib/output/synthesize';
import { ManifestValidator } from '../lib/tools/validate/manifest-validator';
import { buildPlatform, platformText, Manifest, manifestsOf, parseText } from './support';
import { CloudnativePg, cloudnativePgSettings } from '../charts/cloudnative-pg';
import { CLUSTER_LABEL } from '../charts/cloudnative-pg-backups';
import { Authentik, authentikSettings } from '../charts/authentik';
import type { Longhorn } from '../charts/longhorn';
import { assertValidPromql, promqlErrors } from './support-promql';

/** An own app serving metrics on a named port and path, for the own-target checks. */
const PROBE_APP = 'metrics-probe';

function synthesizeProdWithMonitoring(): { platform: Platform; manifests: { path: string; manifest: Manifest }[]; summary: SynthesizedEnvironment } {
  const config = parseText(platformText(), 'homelab.yaml');
  const app = new App({ outdir: '/dev/null' });
  const platform = buildPlatform(app, 'prod', config.environments.get('prod')!);
  if (!platform.services.some((s) => s.installsCrdGroups.includes(MONITORING_GROUP))) new PrometheusOperatorCrds(platform);
  // Where the config leaves CloudNativePG off in prod, its monitor is checked all the same.
  const databases = (platform.services.find((s) => s.serviceName === 'cloudnative-pg') as CloudnativePg | undefined) ?? new CloudnativePg(platform, cloudnativePgSettings.parse({}));
  // Authentik's too (its database from CloudNativePG, on Longhorn).
  const storage = platform.services.find((s) => s.serviceName === 'longhorn') as Longhorn;
  if (!platform.services.some((s) => s.serviceName === 'authentik')) new Authentik(platform, { ...authentikSettings.parse({}), databases, storage });
  new CustomApp(platform, PROBE_APP, {
    ...appSettings.parse({
      image: 'docker.io/library/busybox:1.37.0',
      resources: resources('10m', '32Mi', '100m', '64Mi'),
      ports: { http: 8080, metrics: 9100 },
      probes: { readiness: { tcp: { port: 'http' } } },
      metrics: { port: 'metrics', path: '/stats', interval: '1m' },
    }),
    dependsOn: [],
  });
  const summary = synthesizePlatform(app, platform);
  return { platform, manifests: manifestsOf(summary), summary };
}

const { platform, manifests, summary } = synthesizeProdWithMonitoring();
const ofKind = (kind: string) => manifests.filter(({ manifest }) => manifest.kind === kind);
const monitors = [...ofKind('ServiceMonitor'), ...ofKind('PodMonitor')];
const rules = ofKind('PrometheusRule');
const alertRules = rules.flatMap(({ manifest }) =>
  (manifest.spec.groups as any[]).flatMap((group) => (group.rules as any[]).map((rule) => ({ service: group.name as string, ...rule }))),
);

/** Services with nothing to alert on, and why. */
const NOT_ALERTED: Readonly<Record<string, string>> = {
  'prometheus-operator-crds': 'installs CRDs only: no workload runs',
  verification: 'runs hook Jobs only: a failed check fails its sync and shows in Argo CD',
  'network-policies': 'runs no workload: the policies live in every other namespace, and its checkpoint proves them',
};

describe('monitoring of the example prod with the prometheus-operator CRDs', () => {
  it('emits valid ServiceMonitors, PodMonitors and PrometheusRules', () => {
    const validator = ManifestValidator.shared();
    const objects = [...monitors, ...rules];
    expect(monitors.length).toBeGreaterThan(10);
    expect(objects.flatMap(({ path, manifest }) => validator.validate(manifest).map((p) => `${path}: ${p}`))).toEqual([]);
  });

  it('labels every scraped series with the service and endpoint it was declared by', () => {
    for (const { path, manifest } of monitors) {
      const endpoints = manifest.spec.endpoints ?? manifest.spec.podMetricsEndpoints;
      expect(endpoints, path).toHaveLength(1);
      const targets = (endpoints[0].relabelings as any[]).map((r) => r.targetLabel);
      expect(targets, path).toEqual([SERVICE_LABEL, ENDPOINT_LABEL]);
    }
  });

  it('parses every alert expression with the PromQL grammar', () => {
    expect(alertRules.length).toBeGreaterThan(20);
    expect(() => assertValidPromql(alertRules.map((rule) => ({ label: `${rule.service}/${rule.alert}`, expr: rule.expr })))).not.toThrow();
  });

  it('catches broken PromQL, so the check above can fail', () => {
    for (const broken of ['sum(rate(up[5m])', 'up{job="a"', 'rat(up[5m])', 'rate(up)', 'up[5m] > 0', 'sum by (job) (up) by (pod)', '']) {
      expect(promqlErrors(broken), broken).not.toEqual([]);
    }
    expect(() => assertValidPromql([{ label: 'Broken', expr: 'max(up' }])).toThrow(/Broken: syntax error/);
  });

  it('gives every rule a severity, a service label, a duration and a summary', () => {
    for (const rule of alertRules) {
      const name = `${rule.service}/${rule.alert}`;
      expect(rule.alert, name).toMatch(/^[A-Z][A-Za-z0-9]+$/);
      expect(['critical', 'warning', 'info'], name).toContain(rule.labels.severity);
      expect(rule.labels[SERVICE_LABEL], name).toBe(rule.service);
      expect(rule.for, name).toMatch(/^(\d+[smh])+$/);
      expect(rule.annotations.summary, name).not.toBe('');
    }
  });

  it('alerts on every service but those with nothing to alert on', () => {
    const alerted = new Set(alertRules.map((rule) => rule.service));
    for (const { name } of summary.services) {
      if (name in NOT_ALERTED) expect(alerted.has(name), name).toBe(false);
      else expect(alerted.has(name), `${name} has no alert rule`).toBe(true);
    }
  });

  it('alerts on a failed Longhorn backup where Longhorn backs up', () => {
    const failed = alertRules.find((rule) => rule.alert === 'LonghornBackupFailed');
    expect(platform.config.services.longhorn).toMatchObject({ backup: expect.anything() });
    expect(failed?.expr).toMatch(/longhorn_backup_state\{[^}]*\}\) == 4$/);
  });

  it('has a target-down alert for every declared endpoint', () => {
    for (const service of platform.services) {
      for (const endpoint of service.metricsEndpoints) {
        const down = alertRules.filter((rule) => rule.service === service.serviceName && rule.alert.endsWith('TargetDown'));
        expect(down.map((rule) => rule.expr), service.serviceName).toContainEqual(
          `up{${SERVICE_LABEL}="${service.serviceName}", ${ENDPOINT_LABEL}="${endpoint.name}"} == 0`,
        );
      }
    }
  });

  it('selects upstream targets by the labels and port names verified in their sources', () => {
    for (const [name, expected] of Object.entries(upstreamTargetsOf(BUILTIN_CATALOG))) {
      const monitor = monitors.find(({ manifest }) => manifest.metadata.name === name);
      expect(monitor, `${name} (${expected.source})`).toBeDefined();
      const { kind, metadata, spec } = monitor!.manifest;
      expect(spec.selector.matchLabels, expected.source).toEqual(expected.selector);
      expect((spec.endpoints ?? spec.podMetricsEndpoints)[0].port, expected.source).toBe(expected.port);
      // Nothing of ours is scraped by mistake next to the upstream targets.
      const ours = kind === 'ServiceMonitor' ? servicesIn(metadata.namespace!) : podTemplatesIn(metadata.namespace!);
      expect(ours.filter((target) => matches(spec.selector.matchLabels, target.labels)).map((t) => t.name), name).toEqual([]);
    }
  });

  it('selects exactly one of our Services or pod templates, with the port, for every other monitor', () => {
    // A database's instances are pods the CloudNativePG operator makes (test/database-backups.test.ts checks their monitors).
    const own = monitors.filter(({ manifest }) => !(manifest.metadata.name in upstreamTargetsOf(BUILTIN_CATALOG)) && !(CLUSTER_LABEL in manifest.spec.selector.matchLabels));
    expect(own.map(({ manifest }) => manifest.metadata.name).sort()).toEqual(['cloudflared-connector', `${PROBE_APP}-app`, 'n8n-n8n', 'triton-server']);
    for (const { path, manifest } of own) {
      const spec = manifest.spec;
      const namespace = spec.namespaceSelector?.matchNames?.[0] ?? manifest.metadata.namespace;
      const port = (spec.endpoints ?? spec.podMetricsEndpoints)[0].port;
      const candidates = manifest.kind === 'ServiceMonitor' ? servicesIn(namespace) : podTemplatesIn(namespace);
      const selected = candidates.filter((c) => matches(spec.selector.matchLabels, c.labels));
      expect(selected.map((c) => c.name), path).toHaveLength(1);
      expect(selected[0].ports, path).toContain(port);
    }
  });

  it('scrapes the own app on its declared path and interval', () => {
    const monitor = monitors.find(({ manifest }) => manifest.metadata.name === `${PROBE_APP}-app`)!.manifest;
    expect(monitor.spec.endpoints[0]).toMatchObject({ port: 'metrics', path: '/stats', interval: '1m' });
  });

  it('declares the metrics port on every RayCluster pod template, head and workers', () => {
    const cluster = ofKind('RayCluster')[0].manifest;
    const templates = [cluster.spec.headGroupSpec.template, ...cluster.spec.workerGroupSpecs.map((g: any) => g.template)];
    expect(templates.length).toBeGreaterThan(1);
    for (const template of templates) {
      const ports = (template.spec.containers as any[]).flatMap((c) => (c.ports ?? []).map((p: any) => p.name));
      expect(ports).toContain(upstreamTargetsOf(BUILTIN_CATALOG)['ray-nodes'].port);
    }
  });

  it('orders services with monitoring after the CRDs, never after the monitoring stack', () => {
    const withMonitoring = new Set([...monitors, ...rules].map(({ path }) => path.split('/')[0]));
    const observability = new Set(summary.services.filter((s) => s.layer === Layer.OBSERVABILITY).map((s) => s.name));
    const exposing = new Set(platform.services.filter((s) => s.exposures.length > 0).map((s) => s.serviceName));
    expect(withMonitoring.size).toBeGreaterThan(5);
    for (const service of summary.services) {
      if (!withMonitoring.has(service.name)) continue;
      expect(service.dependsOn, service.name).toContain('prometheus-operator-crds');
      if (service.layer !== Layer.OBSERVABILITY) {
        // The router depends on what it routes to (Grafana), never because of monitoring.
        const routedTo = service.name === 'traefik' ? exposing : new Set<string>();
        expect(service.dependsOn.filter((d) => observability.has(d) && !routedTo.has(d)), service.name).toEqual([]);
      }
    }
  });

  it('pins every declared grafana.com dashboard to an integer ID and revision, gives every own one its JSON, one dashboard per name', () => {
    const declared = platform.services.flatMap((s) => s.dashboards.map((d) => ({ service: s.serviceName, ...d })));
    expect(declared.map((d) => d.service).sort()).toEqual(expect.arrayContaining(['argocd', 'longhorn', 'rabbitmq', 'triton']));
    const byName = new Map<string, object>();
    for (const { service, ...dashboard } of declared) {
      if (isOwnDashboard(dashboard)) {
        expect(JSON.parse(dashboard.json).title, `${service}: ${dashboard.name}`).toEqual(expect.any(String));
      } else {
        expect(Number.isInteger(dashboard.gnetId) && dashboard.gnetId > 0, `${service}: ${dashboard.name}`).toBe(true);
        expect(Number.isInteger(dashboard.revision) && dashboard.revision > 0, `${service}: ${dashboard.name}`).toBe(true);
      }
      expect(byName.get(dashboard.name) ?? dashboard, `${service}: ${dashboard.name}`).toEqual(dashboard);
      byName.set(dashboard.name, dashboard);
    }
  });
});

describe('an own app with metrics', () => {
  it('must name one of its ports', () => {
    const config = parseText(platformText(), 'homelab.yaml');
    const platform = buildPlatform(new App({ outdir: '/dev/null' }), 'dev', config.environments.get('dev')!);
    expect(
      () =>
        new CustomApp(platform, 'bad-metrics', {
          ...appSettings.parse({
            image: 'docker.io/library/busybox:1.37.0',
            resources: resources('10m', '32Mi', '100m', '64Mi'),
            ports: { http: 8080 },
            probes: { none: 'a test app' },
            metrics: { port: 'metrics' },
          }),
          dependsOn: [],
        }),
    ).toThrow('bad-metrics: the metrics port "metrics" is not one of its ports');
  });
});

interface Target {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly ports: string[];
}

function servicesIn(namespace: string): Target[] {
  return ofKind('Service')
    .filter(({ manifest }) => manifest.metadata.namespace === namespace)
    .map(({ manifest }) => ({
      name: manifest.metadata.name,
      labels: manifest.metadata.labels ?? {},
      ports: (manifest.spec.ports as any[]).map((p) => p.name),
    }));
}

const WORKLOADS = ['Deployment', 'StatefulSet', 'DaemonSet'];

function podTemplatesIn(namespace: string): Target[] {
  return manifests
    .filter(({ manifest }) => WORKLOADS.includes(manifest.kind) && manifest.metadata.namespace === namespace)
    .map(({ manifest }) => ({
      name: `${manifest.kind}/${manifest.metadata.name}`,
      labels: manifest.spec.template.metadata?.labels ?? {},
      ports: (manifest.spec.template.spec.containers as any[]).flatMap((c) => (c.ports ?? []).map((p: any) => p.name)),
    }));
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}
