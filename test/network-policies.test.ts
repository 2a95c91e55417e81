/**
 * NetworkPolicies derived from the service graph: checked against the platform they were
 * derived from (its references, served ports, metrics endpoints and exposures), over every
 * environment of the example and variants of it, and the enforcement checkpoint run under
 * `sh` against a fake API server and a fake target.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { App } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../lib/model/checkpoint';

import { Layer } from '../lib/model/layers';
import { scrapedPods } from '../lib/model/monitoring';
import { isMetricsScraper } from '../lib/model/network';
import { ALLOW_SAME_NAMESPACE, DEFAULT_DENY, NAMESPACE_NAME_LABEL } from '../lib/passes/network-policies';
import type { ExposureRouter } from '../lib/model/exposure';
import { Platform } from '../lib/model/platform';
import { HomelabService } from '../lib/model/service';
import { synthesizePlatform } from '../lib/output/synthesize';
import { buildPlatform, platformObject, platformText, FAKE_SLEEP, Manifest, manifestsOf, parseText, runWithFakeCommands, toYamlText } from './support';

/** Each environment of a config (or the `only` one), built and synthesized, with `extra` services added to the platform. */
function synth(text: string, { extra = () => {}, only }: { extra?: (platform: Platform) => void; only?: string } = {}) {
  const environments = [...parseText(text, 'homelab.yaml').environments].filter(([name]) => only === undefined || name === only);
  return environments.map(([name, config]) => {
    const app = new App();
    const platform = buildPlatform(app, name, config);
    extra(platform);
    const out = synthesizePlatform(app, platform);
    const docs = manifestsOf(out);
    const policies = docs.filter(({ manifest }) => manifest.kind === 'NetworkPolicy').map(({ path, manifest }) => ({ path, policy: manifest }));
    return { name, platform, out, docs, policies };
  });
}

const variant = (change: (config: Record<string, any>) => void) => {
  const config = platformObject();
  change(config);
  return toYamlText(config);
};

const example = synth(platformText());
const prod = example.find((e) => e.name === 'prod')!;

type Env = (typeof example)[number];
const inNamespace = (env: Env, namespace: string) => env.policies.filter(({ policy }) => policy.metadata.namespace === namespace).map((p) => p.policy);
const named = (env: Env, namespace: string, name: string) => inNamespace(env, namespace).filter((p) => p.metadata.name === name);
const namespaceSelector = (namespace: string) => ({ matchLabels: { [NAMESPACE_NAME_LABEL]: namespace } });
const selectorOf = (labels: Readonly<Record<string, string>>) => (Object.keys(labels).length > 0 ? { matchLabels: { ...labels } } : {});

/** A service that exposes a port, for the exposure rules (the example has no exposures yet). */
class ExposedApp extends HomelabService {
  constructor(scope: Platform) {
    super(scope, 'exposed-app', {}, { layer: Layer.AUTOMATION, namespace: 'exposed-app' });
    this.expose({ subdomain: 'exposed', serviceName: 'exposed-app', servicePort: 80, podPort: 'http', podSelector: { app: 'exposed' }, admin: false });
    new Checkpoint(this, 'checkpoint', { description: 'test', image: 'busybox:1.37.0', script: 'true' });
  }
}

/** Traefik's pods (traefik 41.3.0 `traefik.labelselector`), as the stand-in router declares them. */
const ROUTER_PODS = { 'app.kubernetes.io/name': 'traefik' } as const;

/** Stands in for Traefik: only its namespace and pods matter here, not the routes. */
class Router extends HomelabService implements ExposureRouter {
  readonly routerName = 'Traefik';
  readonly routerPods = { namespace: 'traefik', podSelector: ROUTER_PODS };

  constructor(scope: Platform) {
    super(scope, 'traefik', {}, { layer: Layer.NETWORKING, namespace: 'traefik' });
    new Checkpoint(this, 'checkpoint', { description: 'test', image: 'busybox:1.37.0', script: 'true' });
  }

  readonly routedHosts = [];

  routeExposures(): void {}
}

describe('derived NetworkPolicies', () => {
  it('deny all ingress to every namespace the platform creates, exactly once, and let its own pods in', () => {
    for (const env of example) {
      const namespaces = env.docs.filter(({ manifest }) => manifest.kind === 'Namespace').map(({ manifest }) => manifest.metadata.name);
      expect(namespaces.length).toBe(env.platform.services.length);
      for (const namespace of namespaces) {
        const denies = inNamespace(env, namespace).filter((p) => p.spec.ingress === undefined);
        expect(denies.map((p) => p.metadata.name), namespace).toEqual([DEFAULT_DENY]);
        expect(denies[0].spec).toEqual({ podSelector: {}, policyTypes: ['Ingress'] });
        expect(named(env, namespace, ALLOW_SAME_NAMESPACE).map((p) => p.spec), namespace).toEqual([
          { podSelector: {}, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: {} }] }] },
        ]);
      }
      // Every policy is in a namespace of ours, in the folder of the service owning it.
      const owner = new Map(env.platform.services.map((s) => [s.namespaceName, s.serviceName]));
      for (const { path, policy } of env.policies) expect(path.split('/')[0], path).toBe(owner.get(policy.metadata.namespace!));
    }
  });

  it('allow each service exactly the ports its references serve, from its namespace, to the serving pods', () => {
    let edges = 0;
    for (const env of example) {
      for (const provider of env.platform.services) {
        for (const served of provider.servedPorts) {
          const clients = served.clients ?? env.platform.services.filter((s) => s.references.has(provider));
          for (const client of clients.filter((c) => c.namespaceName !== provider.namespaceName)) {
            edges++;
            const matching = inNamespace(env, provider.namespaceName).filter(
              (p) => JSON.stringify(p.spec.ingress?.[0]?.from) === JSON.stringify([{ namespaceSelector: namespaceSelector(client.namespaceName) }]),
            );
            const where = `${env.name}: ${client.serviceName} -> ${provider.serviceName}:${served.port}`;
            const rule = matching.filter((p) => p.spec.ingress[0].ports[0].port === served.port);
            expect(rule, where).toHaveLength(1);
            expect(rule[0].spec.podSelector, where).toEqual(selectorOf(served.podSelector));
            expect(rule[0].spec.ingress, where).toEqual([{ from: [{ namespaceSelector: namespaceSelector(client.namespaceName) }], ports: [{ port: served.port, protocol: 'TCP' }] }]);
          }
        }
      }
    }
    // node-red -> home-assistant, alloy and Grafana -> Loki, the topology operator -> RabbitMQ management.
    expect(edges).toBeGreaterThanOrEqual(3 * 4);
    expect(named(prod, 'rabbitmq', 'allow-rabbitmq-operators-15672')).toHaveLength(1);
    expect(named(prod, 'loki', 'allow-alloy-3100')).toHaveLength(1);
    expect(named(prod, 'loki', 'allow-monitoring-3100')).toHaveLength(1);
    expect(named(prod, 'home-assistant', 'allow-node-red-8123')).toHaveLength(1);
  });

  it('allow nothing broader: every source is one named namespace, its own pods, or the API server on a webhook port', () => {
    for (const env of example) {
      for (const { path, policy } of env.policies) {
        const name = policy.metadata.name;
        if (name === DEFAULT_DENY || name === ALLOW_SAME_NAMESPACE) continue;
        expect(policy.spec.ingress, path).toHaveLength(1);
        const [{ from, ports }] = policy.spec.ingress;
        expect(from?.length, `${path}: from`).toBeGreaterThan(0);
        expect(ports?.length, `${path}: ports`).toBeGreaterThan(0);
        for (const peer of from) {
          if (peer.ipBlock) {
            // The documented exceptions: the API server calls webhooks from the host network, and
            // the entry points (Traefik) take clients from anywhere.
            expect(name, path).toMatch(/^allow-(api-server|public)-/);
            expect(peer, path).toEqual({ ipBlock: { cidr: '0.0.0.0/0' } });
          } else {
            expect(Object.keys(peer.namespaceSelector?.matchLabels ?? {}), path).toEqual([NAMESPACE_NAME_LABEL]);
          }
        }
      }
    }
  });

  it('open exactly the declared entry points to any client: the web and websecure ports of Traefik', () => {
    for (const env of example) {
      const declared = env.platform.services.flatMap((s) => s.publicPorts.map((p) => `${s.namespaceName}/allow-public-${p.port}`));
      const emitted = env.policies.filter(({ policy }) => policy.metadata.name.startsWith('allow-public-')).map(({ policy }) => `${policy.metadata.namespace}/${policy.metadata.name}`);
      expect(emitted.sort()).toEqual(declared.sort());
      expect(emitted.sort()).toEqual(['traefik/allow-public-8000', 'traefik/allow-public-8443']);
    }
    const [web] = named(prod, 'traefik', 'allow-public-8443');
    expect(web.spec.podSelector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'traefik', 'app.kubernetes.io/instance': 'traefik-traefik' });
  });

  it('let the API server reach every declared webhook port, and nothing else from outside the namespaces', () => {
    for (const env of example) {
      const declared = env.platform.services.flatMap((s) => s.apiServerPorts.map((p) => `${s.namespaceName}/allow-api-server-${p.port}`));
      const emitted = env.policies.filter(({ policy }) => policy.metadata.name.startsWith('allow-api-server-')).map(({ policy }) => `${policy.metadata.namespace}/${policy.metadata.name}`);
      expect(emitted.sort()).toEqual(declared.sort());
    }
    expect(
      named(prod, 'cert-manager', 'allow-api-server-10250')[0].spec.podSelector.matchLabels,
    ).toEqual({ 'app.kubernetes.io/name': 'webhook', 'app.kubernetes.io/instance': 'cert-manager', 'app.kubernetes.io/component': 'webhook' });
    const webhookPorts = (namespace: string) => inNamespace(prod, namespace).filter((p) => p.metadata.name.startsWith('allow-api-server-')).map((p) => p.spec.ingress[0].ports[0].port);
    expect(webhookPorts('longhorn-system').sort()).toEqual([9501, 9502]);
    expect(webhookPorts('rabbitmq-system')).toEqual([9443]);
    expect(webhookPorts('monitoring')).toEqual([10250]);
  });

  it('narrow the API-server rule to the configured sources, and reject a malformed one naming the path', () => {
    const [dev] = synth(variant((config) => (config.services.networkPolicies = { apiServerSources: ['192.168.1.10/32', '192.168.1.11/32'] })), { only: 'dev' });
    expect(named(dev, 'cert-manager', 'allow-api-server-10250')[0].spec.ingress[0].from).toEqual([
      { ipBlock: { cidr: '192.168.1.10/32' } },
      { ipBlock: { cidr: '192.168.1.11/32' } },
    ]);
    expect(() => parseText(variant((config) => (config.services.networkPolicies = { apiServerSources: ['192.168.1.300/32'] })), 'homelab.yaml')).toThrow(
      expect.objectContaining({ problems: [expect.stringContaining('services.networkPolicies.apiServerSources.0: expected an IPv4 CIDR block')] }),
    );
  });

  it('let Prometheus scrape every declared endpoint in our namespaces on the pods behind it, and leave kube-system alone', () => {
    for (const env of example) {
      const scraper = env.platform.services.find(isMetricsScraper)!;
      const prometheus = { namespaceSelector: namespaceSelector('monitoring'), podSelector: { matchLabels: { ...scraper.scraperPods.podSelector } } };
      expect(scraper.scraperPods.podSelector).toEqual({ 'app.kubernetes.io/name': 'prometheus', 'operator.prometheus.io/name': 'monitoring-prometheus' });
      let endpoints = 0;
      for (const service of env.platform.services) {
        for (const endpoint of service.metricsEndpoints) {
          const namespace = endpoint.namespace ?? service.namespaceName;
          if (namespace === 'monitoring' || namespace === 'kube-system') continue;
          endpoints++;
          const { port, podSelector } = scrapedPods(endpoint);
          const rule = named(env, namespace, `allow-prometheus-${endpoint.name}`);
          expect(rule, `${env.name} ${service.serviceName}/${endpoint.name}`).toHaveLength(1);
          expect(rule[0].spec.podSelector).toEqual(selectorOf(podSelector));
          expect(rule[0].spec.ingress).toEqual([{ from: [prometheus], ports: [{ port, protocol: 'TCP' }] }]);
        }
      }
      expect(endpoints).toBeGreaterThanOrEqual(10);
      expect(inNamespace(env, 'kube-system')).toEqual([]);
    }
  });

  it('let Traefik reach every exposed port, only where a traefik service runs', () => {
    // The example's own Traefik (and the tunnel behind it) make way for the test router.
    const noTraefik = variant((config) => {
      config.services.traefik.enabled = false;
      config.environments.prod.services.cloudflared.enabled = false;
    });
    const [withRouter] = synth(noTraefik, {
      only: 'dev',
      extra: (platform) => {
        new ExposedApp(platform);
        new Router(platform);
      },
    });
    expect(named(withRouter, 'exposed-app', 'allow-traefik-exposed').map((p) => p.spec)).toEqual([
      {
        podSelector: { matchLabels: { app: 'exposed' } },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ namespaceSelector: namespaceSelector('traefik'), podSelector: { matchLabels: { ...ROUTER_PODS } } }], ports: [{ port: 'http', protocol: 'TCP' }] }],
      },
    ]);
    // Traefik's own namespace is denied like every other.
    expect(named(withRouter, 'traefik', DEFAULT_DENY)).toHaveLength(1);
    const [withoutRouter] = synth(noTraefik, { only: 'dev', extra: (platform) => new ExposedApp(platform) });
    expect(inNamespace(withoutRouter, 'exposed-app').map((p) => p.metadata.name).sort()).toEqual([ALLOW_SAME_NAMESPACE, DEFAULT_DENY]);
  });

  it('follow the graph: removing an edge removes its rule, and a consumer gets only the ports meant for it', () => {
    const [dev] = synth(
      variant((config) => {
        delete config.apps['node-red'].dependsOn;
        config.services.alloy.enabled = false;
        config.apps['home-assistant'].dependsOn = ['rabbitmq'];
      }),
      { only: 'dev' },
    );
    expect(named(dev, 'home-assistant', 'allow-node-red-8123')).toEqual([]);
    expect(named(dev, 'loki', 'allow-alloy-3100')).toEqual([]);
    expect(named(dev, 'loki', 'allow-monitoring-3100')).toHaveLength(1);
    // AMQP for the app; the management API stays the topology operator's.
    expect(inNamespace(dev, 'rabbitmq').map((p) => p.metadata.name).sort()).toEqual([
      'allow-home-assistant-5672',
      'allow-n8n-5672',
      'allow-prometheus-broker',
      'allow-rabbitmq-operators-15672',
      ALLOW_SAME_NAMESPACE,
      // The management UI is exposed.
      'allow-traefik-rabbitmq',
      DEFAULT_DENY,
    ]);
  });

  it('are not emitted at all when turned off, and neither is the check', () => {
    for (const env of synth(variant((config) => (config.services.networkPolicies = { enabled: false })))) {
      expect(env.policies).toEqual([]);
      expect(env.platform.services.map((s) => s.serviceName)).not.toContain('network-policies');
      expect(env.docs.some(({ manifest }) => manifest.kind === 'Namespace' && manifest.metadata.name === 'netpol-check')).toBe(false);
    }
  });
});

describe('the network-policies checkpoint', () => {
  const job = prod.docs.find(({ path }) => path === 'network-policies/job-network-policies-checkpoint.yaml')!.manifest as Manifest;
  const container = job.spec.template.spec.containers[0];

  it('runs in a namespace no allow rule names, ordered after Argo CD, with read access to one Endpoints object only', () => {
    expect(job.metadata.namespace).toBe('netpol-check');
    const sources = prod.policies.flatMap(({ policy }) => policy.spec.ingress ?? []).flatMap((rule: any) => rule.from ?? []);
    expect(sources.filter((peer: any) => peer.namespaceSelector?.matchLabels?.[NAMESPACE_NAME_LABEL] === 'netpol-check')).toEqual([]);
    expect(prod.out.services.find((s) => s.name === 'network-policies')!.dependsOn).toEqual(['argocd']);
    const role = prod.docs.find(({ manifest }) => manifest.kind === 'ClusterRole' && manifest.metadata.name === 'network-policies-checkpoint')!.manifest;
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['endpoints'], verbs: ['get'], resourceNames: ['argocd-server'] }]);
  });

  const READY = '{"subsets": [{"addresses": [{"ip": "10.42.0.12"}], "ports": [{"port": 8080}]}]}';
  const NOT_READY = '{"subsets": [{"notReadyAddresses": [{"ip": "10.42.0.12"}], "ports": [{"port": 8080}]}]}';

  /** Endpoints for the API call; for the target, the next exit code from the `codes` list (the last one repeats). */
  function run(endpoints: string, codes: number[]) {
    const curl = String.raw`case "$*" in
  *kubernetes.default.svc/api/v1/namespaces/argocd/endpoints/argocd-server*) printf '%s\n' "$ENDPOINTS"; exit 0 ;;
  *http://argocd-server.argocd.svc:80/healthz*)
    echo x >> "$FAKE_BIN/calls"
    code=$(sed -n "$(wc -l < "$FAKE_BIN/calls")p" "$FAKE_BIN/codes"); [ -n "$code" ] || code=$(tail -n 1 "$FAKE_BIN/codes")
    exit "$code" ;;
  *) echo "unexpected curl $*" >&2; exit 99 ;;
esac`;
    return runWithFakeCommands(
      container,
      { curl, sleep: FAKE_SLEEP, cat: 'echo token' },
      {
        env: { ENDPOINTS: endpoints },
        prepare: (bin) => writeFileSync(`${bin}/codes`, codes.join('\n') + '\n'),
        collect: (bin) => (existsSync(`${bin}/calls`) ? readFileSync(`${bin}/calls`, 'utf8').split('\n').filter(Boolean).length : 0),
      },
    );
  }

  it.each([
    [7, 'refused'],
    [28, 'dropped until the timeout'],
  ])('passes when the running target is refused (curl exit %i: %s)', (code) => {
    const result = run(READY, [code]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('NetworkPolicies are enforced');
    expect(result.collected).toBe(1);
  });

  it('passes once a just-synced policy takes effect', () => {
    const result = run(READY, [0, 0, 7]);
    expect(result.status).toBe(0);
    expect(result.collected).toBe(3);
  });

  it.each([
    [0, 'an HTTP answer'],
    [52, 'an empty reply after connecting'],
  ])('fails when the connection gets through (curl exit %i: %s)', (code) => {
    const result = run(READY, [code]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('got through');
    expect(result.stderr).toContain('NetworkPolicies are not enforced');
    expect(result.collected).toBe(12);
  });

  it('fails without trying when the target has no ready endpoint: a refusal would prove nothing', () => {
    const result = run(NOT_READY, [7]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('no ready endpoint');
    expect(result.collected).toBe(0);
  });

  it('fails as inconclusive when the target name does not resolve', () => {
    const result = run(READY, [6]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('did not resolve');
  });
});
