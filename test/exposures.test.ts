/**
 * Exposures as a declaration of the service model: every exposure of every service becomes,
 * in Traefik's folder and the exposing service's namespace, an IngressRoute on websecure with
 * security headers (and the admin access control for admin UIs) and a Certificate for its
 * host; Traefik syncs after every exposing service; each route targets a Service that exists.
 */
import { App } from 'cdk8s';
import { k8s } from 'cdk8s-plus-34';
import { describe, expect, it } from 'vitest';
import type { Exposure } from '../lib/model/exposure';

import { Layer } from '../lib/model/layers';
import { Platform } from '../lib/model/platform';
import { HomelabService } from '../lib/model/service';
import { Checkpoint } from '../lib/model/checkpoint';
import { SynthesizedEnvironment, synthesizePlatform } from '../lib/output/synthesize';
import { settingsIn } from '../lib/model/catalog';
import { traefikEntry } from '../charts/traefik';
import { buildPlatform, platformObject, platformText, Manifest, manifestsOf, parseText, toYamlText, synthesizeEnvironment } from './support';

/** A service of our own that serves a public page, as n8n will. */
class Website extends HomelabService {
  constructor(scope: Platform, exposure: Partial<Exposure> = {}) {
    super(scope, 'website', {}, { layer: Layer.AUTOMATION, namespace: 'website' });
    const podSelector = this.selectorFor('web');
    new k8s.KubeService(this, 'service', {
      metadata: { name: 'website' },
      spec: { selector: podSelector, ports: [{ name: 'http', port: 8080, targetPort: k8s.IntOrString.fromNumber(8080) }] },
    });
    new Checkpoint(this, 'checkpoint', { description: 'test', image: 'busybox:1.37.0', script: 'true' });
    this.expose({ subdomain: 'www', serviceName: 'website', servicePort: 8080, podPort: 8080, podSelector, admin: false, ...exposure });
  }
}

interface Synthesized {
  platform: Platform;
  env: SynthesizedEnvironment;
  docs: { path: string; manifest: Manifest }[];
}

function synthesize(environment: string, extra?: (platform: Platform) => void, text = platformText()): Synthesized {
  const config = parseText(text, 'homelab.yaml').environments.get(environment)!;
  const app = new App({ outdir: '/dev/null' });
  const platform = buildPlatform(app, environment, config);
  extra?.(platform);
  const env = synthesizePlatform(app, platform);
  return { platform, env, docs: manifestsOf(env) };
}

/**
 * Services that upstream charts and operators create (so not in our output), as verified in
 * their sources: `<namespace>/<name>` -> port.
 */
const UPSTREAM_BACKENDS: Readonly<Record<string, { port: number; source: string }>> = {
  'argocd/argocd-server': { port: 80, source: 'argo-helm argo-cd 10.1.1 templates/argocd-server/service.yaml (server.service.servicePortHttp)' },
  'monitoring/monitoring-grafana': { port: 80, source: 'grafana-community/helm-charts charts/grafana templates/service.yaml (release monitoring, service.port)' },
  'monitoring/monitoring-prometheus': { port: 9090, source: 'kube-prometheus-stack 88.5.3 templates/prometheus/service.yaml (fullname monitoring, prometheus.service.port)' },
  'monitoring/monitoring-alertmanager': { port: 9093, source: 'kube-prometheus-stack 88.5.3 templates/alertmanager/service.yaml (fullname monitoring, alertmanager.service.port)' },
  'longhorn-system/longhorn-frontend': { port: 80, source: 'longhorn 1.12.1 chart/templates/deployment-ui.yaml' },
  'rabbitmq/rabbitmq': { port: 15672, source: 'rabbitmq/cluster-operator v2.22.3 internal/resource/service.go: the client Service is named after the RabbitmqCluster' },
  'ray/ray-head-svc': { port: 8265, source: 'KubeRay v1.7.0: the head Service is <RayCluster>-head-svc with the head container ports' },
  'vault/vault-ui': { port: 8200, source: 'vault-helm v0.34.1 templates/ui-service.yaml (<fullname>-ui, ui.externalPort)' },
};
/** The custom resource whose operator creates each upstream-operator Service. */
const OPERATOR_OWNERS: Readonly<Record<string, { kind: string; name: string }>> = {
  'rabbitmq/rabbitmq': { kind: 'RabbitmqCluster', name: 'rabbitmq' },
  'ray/ray-head-svc': { kind: 'RayCluster', name: 'ray' },
};

const ofKind = (docs: Synthesized['docs'], kind: string) => docs.filter(({ manifest }) => manifest.kind === kind);

describe.each(['dev', 'staging', 'prod'])('exposures of the example %s', (environment) => {
  const { platform, env, docs } = synthesize(environment);
  const exposures = platform.services.flatMap((service) => service.exposures.map((exposure) => ({ service, exposure })));
  const routes = ofKind(docs, 'IngressRoute');
  const domain = platform.config.domain;

  it('exposes the built-in admin UIs of the enabled services, n8n publicly, and the own apps as their config says', () => {
    // Node-RED's editor has no login of its own: admin. Home Assistant has its own: public.
    const admin = ['alertmanager', 'argocd', 'grafana', 'longhorn', 'node-red', 'prometheus', 'rabbitmq', ...(environment === 'prod' ? ['ray'] : []), 'vault'];
    expect(exposures.filter(({ exposure }) => exposure.admin).map(({ exposure }) => exposure.subdomain).sort()).toEqual(admin);
    // n8n has its own login, and its webhooks must be reachable by their callers; its metrics are not.
    expect(exposures.filter(({ exposure }) => !exposure.admin).map(({ exposure }) => [exposure.subdomain, exposure.hiddenPaths])).toEqual([
      ['n8n', ['/metrics']],
      ['home', []],
    ]);
  });

  it('routes every exposure with an IngressRoute on websecure, in the exposing namespace, emitted by Traefik', () => {
    for (const { service, exposure } of exposures) {
      const host = `${exposure.subdomain}.${domain}`;
      // The host, minus the paths the exposure keeps private (n8n's metrics).
      const match = [`Host(\`${host}\`)`, ...(exposure.hiddenPaths ?? []).map((path) => `!PathPrefix(\`${path}\`)`)].join(' && ');
      const route = routes.find(({ manifest }) => manifest.spec.routes[0].match === match);
      expect(route, host).toBeDefined();
      expect(route!.path, host).toMatch(/^traefik\//);
      expect(route!.manifest.metadata.namespace, host).toBe(service.namespaceName);
      expect(route!.manifest.spec.routes[0].services, host).toEqual([{ kind: 'Service', name: exposure.serviceName, port: exposure.servicePort }]);
    }
    // One route per exposure, plus Traefik's dashboard.
    expect(routes).toHaveLength(exposures.length + 1);
  });

  it('listens only on websecure, with a Certificate for the host from the configured issuer', () => {
    const certificates = ofKind(docs, 'Certificate').map(({ manifest }) => manifest);
    for (const { manifest } of routes) {
      expect(manifest.spec.entryPoints, manifest.metadata.name).toEqual(['websecure']);
      const host = /^Host\(`([^`]+)`\)/.exec(manifest.spec.routes[0].match)![1];
      const certificate = certificates.find((c) => c.metadata.namespace === manifest.metadata.namespace && c.spec.secretName === manifest.spec.tls.secretName);
      expect(certificate?.spec.dnsNames, host).toEqual([host]);
      expect(certificate?.spec.issuerRef, host).toEqual({ group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'letsencrypt-production' });
    }
  });

  it('adds security headers to every route and the allow-list to admin routes, all in the route namespace', () => {
    const middlewares = ofKind(docs, 'Middleware').map(({ manifest }) => manifest);
    const allowList = settingsIn(parseText(platformText(), 'homelab.yaml').environments.get(environment)!, traefikEntry).adminAccess.allowList;
    for (const { manifest } of routes) {
      const refs = manifest.spec.routes[0].middlewares as { name: string; namespace?: string }[];
      // No cross-namespace references: the provider's allowCrossNamespace stays false.
      expect(refs.every((ref) => ref.namespace === undefined), manifest.metadata.name).toBe(true);
      const used = refs.map((ref) => middlewares.find((m) => m.metadata.name === ref.name && m.metadata.namespace === manifest.metadata.namespace));
      expect(used.every(Boolean), manifest.metadata.name).toBe(true);
      expect(used[0]!.spec.headers).toMatchObject({ stsSeconds: 31536000, contentTypeNosniff: true, frameDeny: true, referrerPolicy: 'strict-origin-when-cross-origin' });
      // Admin UIs (and the dashboard) only answer the allow-list; public hosts have no access control.
      const host = /Host\(`([^`]+)`\)/.exec(manifest.spec.routes[0].match)![1];
      const admin = host === `traefik.${domain}` || exposures.some(({ exposure }) => exposure.admin && `${exposure.subdomain}.${domain}` === host);
      expect(used.map((m) => m!.spec.ipAllowList?.sourceRange).filter(Boolean), manifest.metadata.name).toEqual(admin ? [allowList] : []);
    }
  });

  it('targets Services that exist: ours in the output, upstream ones as verified in their sources', () => {
    const services = ofKind(docs, 'Service').map(({ manifest }) => manifest);
    for (const { manifest } of routes) {
      const [backend] = manifest.spec.routes[0].services;
      if (backend.kind === 'TraefikService') {
        expect(backend.name).toBe('api@internal');
        continue;
      }
      const key = `${manifest.metadata.namespace}/${backend.name}`;
      const ours = services.find((s) => `${s.metadata.namespace}/${s.metadata.name}` === key);
      if (ours) {
        expect(ours.spec.ports.map((p: any) => p.port), key).toContain(backend.port);
        continue;
      }
      expect(UPSTREAM_BACKENDS[key], `${key} is neither ours nor a verified upstream Service`).toBeDefined();
      expect(backend.port, UPSTREAM_BACKENDS[key].source).toBe(UPSTREAM_BACKENDS[key].port);
      const owner = OPERATOR_OWNERS[key];
      if (owner) {
        expect(docs.some(({ manifest: m }) => m.kind === owner.kind && m.metadata.name === owner.name && m.metadata.namespace === manifest.metadata.namespace), key).toBe(true);
      }
    }
  });

  it('syncs Traefik after every exposing service, without a cycle', () => {
    const traefik = env.services.find((s) => s.name === 'traefik')!;
    const wave = new Map(env.services.map((s) => [s.name, s.wave]));
    for (const { service } of exposures) {
      expect(traefik.dependsOn, service.serviceName).toContain(service.serviceName);
      expect(traefik.wave, service.serviceName).toBeGreaterThan(wave.get(service.serviceName)!);
    }
    // No exposing service waits for Traefik or cert-manager's routes.
    for (const { service } of exposures) expect(env.services.find((s) => s.name === service.serviceName)!.dependsOn).not.toContain('traefik');
  });
});

describe('routing any exposure', () => {
  it('routes an exposure of any service: public ones get headers but no access control', () => {
    const { env, docs } = synthesize('dev', (platform) => new Website(platform));
    const route = ofKind(docs, 'IngressRoute').find(({ manifest }) => manifest.metadata.name === 'www')!;
    // Placed in another service's namespace: the file name says which.
    expect(route.path).toBe('traefik/ingressroute-website-www.yaml');
    expect(route.manifest.metadata.namespace).toBe('website');
    expect(route.manifest.spec.routes[0]).toMatchObject({
      match: 'Host(`www.dev.home.example.net`)',
      middlewares: [{ name: 'www-security-headers' }],
      services: [{ kind: 'Service', name: 'website', port: 8080 }],
    });
    expect(env.services.find((s) => s.name === 'traefik')!.dependsOn).toContain('website');
  });

  it('passes the backend scheme on', () => {
    const { docs } = synthesize('dev', (platform) => new Website(platform, { backendScheme: 'https' }));
    const route = ofKind(docs, 'IngressRoute').find(({ manifest }) => manifest.metadata.name === 'www')!;
    expect(route.manifest.spec.routes[0].services[0].scheme).toBe('https');
  });

  it('rejects a subdomain another service already routes, naming both', () => {
    expect(() => synthesize('dev', (platform) => new Website(platform, { subdomain: 'grafana' }))).toThrow(
      'website: subdomain grafana is already routed (monitoring/grafana)',
    );
  });

  it('emits no route without Traefik', () => {
    const config = platformObject();
    config.services.traefik.enabled = false;
    config.environments.prod.services.cloudflared.enabled = false;
    config.services.externalDns.enabled = false;
    for (const app of Object.values<Record<string, unknown>>(config.apps)) delete app.expose;
    const dev = synthesizeEnvironment(toYamlText(config), 'dev').env;
    expect(dev.services.map((s) => s.name)).not.toContain('traefik');
    expect(manifestsOf(dev).filter(({ manifest }) => ['IngressRoute', 'Middleware', 'Certificate'].includes(manifest.kind))).toEqual([]);
  });
});
