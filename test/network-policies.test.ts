/**
 * NetworkPolicies derived from the service graph: checked against the platform they were
 * derived from (its references, served ports, metrics endpoints and exposures), over every
 * environment of the example and variants of it, and the enforcement checkpoint run under
 * `sh` against a fake API server and a fake target.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { App } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../lib/model/checkpoint';

import { Layer } from '../lib/model/layers';
import { scrapedPods } from '../lib/model/monitoring';
import { CLUSTER_DNS, isMetricsScraper, isNetworkPolicyProvider, NON_PUBLIC_IPV4, urlDestination } from '../lib/model/network';
import { CHECK_START_SECONDS, CHECKPOINT_PODS } from '../lib/model/checkpoint';
import { EGRESS_PREFIX, NAMESPACE_BASELINE, NAMESPACE_NAME_LABEL, repositoryDestinations } from '../lib/passes/network-policies';
import { isExposureRouter } from '../lib/model/exposure';
import { Platform } from '../lib/model/platform';
import { HomelabService } from '../lib/model/service';
import { SynthesizedEnvironment, synthesizePlatform } from '../lib/output/synthesize';
import { answerAsApiServer, buildPlatform, fakeCallCount, platformObject, platformText, FAKE_SLEEP, Manifest, manifestsOf, parseText, runWithFakeCommands, synthesizePlatforms, toYamlText, kubeGetMaxSeconds } from './support';

/** Each environment of a config (or the `only` one), built and synthesized, with `extra` services added to the platform. */
function synth(text: string, { extra = () => {}, only }: { extra?: (platform: Platform) => void; only?: string } = {}) {
  const environments = [...parseText(text, 'homelab.yaml').environments].filter(([name]) => only === undefined || name === only);
  return environments.map(([name, config]) => {
    const app = new App();
    const platform = buildPlatform(app, name, config);
    extra(platform);
    return withPolicies(name, platform, synthesizePlatform(app, platform));
  });
}

/** An environment's synthesis with its documents and, among them, its NetworkPolicies. */
function withPolicies(name: string, platform: Platform, out: SynthesizedEnvironment) {
  const docs = manifestsOf(out);
  const policies = docs.filter(({ manifest }) => manifest.kind === 'NetworkPolicy').map(({ path, manifest }) => ({ path, policy: manifest }));
  return { name, platform, out, docs, policies };
}

const variant = (change: (config: Record<string, any>) => void) => {
  const config = platformObject();
  change(config);
  return toYamlText(config);
};

/** The config problems of the platform fixture after `change`; none if it is valid. */
const problems = (change: (config: Record<string, any>) => void): string[] => {
  try {
    parseText(variant(change), 'homelab.yaml');
  } catch (error) {
    return (error as { problems: string[] }).problems;
  }
  return [];
};

/** The platform fixture's environments, synthesized once per test worker (test/support.ts). */
const example = synthesizePlatforms(platformText()).map(({ platform, env }) => withPolicies(env.environment, platform, env));
const prod = example.find((e) => e.name === 'prod')!;

type Env = (typeof example)[number];
const inNamespace = (env: Env, namespace: string) => env.policies.filter(({ policy }) => policy.metadata.namespace === namespace).map((p) => p.policy);
const named = (env: Env, namespace: string, name: string) => inNamespace(env, namespace).filter((p) => p.metadata.name === name);
const namespaceSelector = (namespace: string) => ({ matchLabels: { [NAMESPACE_NAME_LABEL]: namespace } });
const isEgressPolicy = (name: string) => name.startsWith(EGRESS_PREFIX);
/** A pod that can call the API: its token mounted, by the pod's automount or a projected token volume (the checkpoints'). */
const mountsApiToken = (pod: any): boolean => pod.automountServiceAccountToken !== false || (pod.volumes ?? []).some((v: any) => v.projected?.sources?.some((s: any) => s.serviceAccountToken));
const selectorOf = (labels: Readonly<Record<string, string>>) => (Object.keys(labels).length > 0 ? { matchLabels: { ...labels } } : {});

/** A service that exposes a port where no router runs. */
class ExposedApp extends HomelabService {
  constructor(scope: Platform) {
    super(scope, 'exposed-app', {}, { layer: Layer.AUTOMATION, namespace: 'exposed-app' });
    this.expose({ subdomain: 'exposed', serviceName: 'exposed-app', servicePort: 80, podPort: 'http', podSelector: { app: 'exposed' }, admin: false });
    new Checkpoint(this, 'checkpoint', { description: 'test', image: 'busybox:1.37.0', script: 'true' });
  }
}

describe('derived NetworkPolicies', () => {
  it('deny all ingress to every namespace the platform creates, exactly once, and let its own pods in', () => {
    for (const env of example) {
      const namespaces = env.docs.filter(({ manifest }) => manifest.kind === 'Namespace').map(({ manifest }) => manifest.metadata.name);
      expect(namespaces.length).toBe(env.platform.services.length);
      for (const namespace of namespaces) {
        // One policy selects every pod: what no rule allows is denied.
        const [baseline, ...more] = named(env, namespace, NAMESPACE_BASELINE);
        expect(more, namespace).toEqual([]);
        expect(baseline.spec, namespace).toMatchObject({ podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] });
        expect(baseline.spec.policyTypes, namespace).toContain('Ingress');
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
        if (name === NAMESPACE_BASELINE || !policy.spec.policyTypes.includes('Ingress')) continue;
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

  it("let the router's pods reach every exposed port, and only where a router runs", () => {
    let exposures = 0;
    for (const env of example) {
      // The example's Traefik: the pods it declares are checked against its rendered chart by `npm run render`.
      const router = env.platform.services.find(isExposureRouter)!;
      for (const service of env.platform.services) {
        for (const exposure of service.exposures) {
          exposures += 1;
          expect(named(env, service.namespaceName, `allow-${router.routerName.toLowerCase()}-${exposure.subdomain}`).map((p) => p.spec)).toEqual([
            {
              podSelector: { matchLabels: { ...exposure.podSelector } },
              policyTypes: ['Ingress'],
              ingress: [{ from: [{ namespaceSelector: namespaceSelector(router.routerPods.namespace), podSelector: { matchLabels: { ...router.routerPods.podSelector } } }], ports: [{ port: exposure.podPort, protocol: 'TCP' }] }],
            },
          ]);
        }
      }
      // Traefik's own namespace is denied like every other.
      expect(named(env, router.routerPods.namespace, NAMESPACE_BASELINE)).toHaveLength(1);
    }
    expect(exposures).toBeGreaterThan(0);
    // Without Traefik (and the tunnel and DNS records behind it), an exposure lets nobody in.
    const noTraefik = variant((config) => {
      config.services.traefik.enabled = false;
      config.environments.prod.services.cloudflared.enabled = false;
      config.services.externalDns.enabled = false;
      for (const app of Object.values<Record<string, unknown>>(config.apps)) delete app.expose;
    });
    const [withoutRouter] = synth(noTraefik, { only: 'dev', extra: (platform) => new ExposedApp(platform) });
    expect(inNamespace(withoutRouter, 'exposed-app').map((p) => p.metadata.name).filter((name) => !isEgressPolicy(name)).sort()).toEqual([NAMESPACE_BASELINE]);
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
    expect(inNamespace(dev, 'rabbitmq').map((p) => p.metadata.name).filter((name) => !isEgressPolicy(name)).sort()).toEqual([
      'allow-home-assistant-5672',
      'allow-n8n-5672',
      'allow-prometheus-broker',
      'allow-rabbitmq-operators-15672',
      // The management UI is exposed.
      'allow-traefik-rabbitmq',
      NAMESPACE_BASELINE,
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
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['endpoints'], verbs: ['get'], resourceNames: ['argocd-server', 'kube-dns'] }]);
  });

  const READY = '{"subsets":[{"addresses":[{"ip":"10.42.0.12"}],"ports":[{"port":8080}]}]}';
  const NOT_READY = '{"subsets":[{"notReadyAddresses":[{"ip":"10.42.0.12"}],"ports":[{"port":8080}]}]}';

  /**
   * Endpoints for the API calls; for each target, the next exit code from its list (the last one
   * repeats): Argo CD's server (ingress) and the cluster DNS's metrics port (egress). Collects how
   * often each target was tried.
   */
  function run(endpoints: string, codes: number[], egress: { endpoints?: string; codes?: number[] } = {}, env: Record<string, string> = {}) {
    // Counted and read by the shell itself: a fake is called many times a run.
    const target = (name: string) => String.raw`
    ${fakeCallCount('calls', `$FAKE_BIN/${name}-calls`)}
    i=0; while [ "$i" -lt "$calls" ] && read -r next; do i=$((i + 1)); code=$next; done < "$FAKE_BIN/${name}-codes"
    exit "$code" ;;`;
    const curl = String.raw`case "$*" in
  *kubernetes.default.svc/api/v1/namespaces/argocd/endpoints/argocd-server*) ${answerAsApiServer(`printf '%s\\n' "$ENDPOINTS"`)}; exit 0 ;;
  *kubernetes.default.svc/api/v1/namespaces/kube-system/endpoints/kube-dns*) ${answerAsApiServer(`printf '%s\\n' "$EGRESS_ENDPOINTS"`)}; exit 0 ;;
  *http://argocd-server.argocd.svc:80/healthz*) ${target('ingress')}
  *http://kube-dns.kube-system.svc:9153/metrics*) ${target('egress')}
  *) echo "unexpected curl $*" >&2; exit 99 ;;
esac`;
    const calls = (bin: string, name: string) => (existsSync(`${bin}/${name}-calls`) ? Number(readFileSync(`${bin}/${name}-calls`, 'utf8')) : 0);
    return runWithFakeCommands(
      container,
      { curl, sleep: FAKE_SLEEP },
      {
        env: { ENDPOINTS: endpoints, EGRESS_ENDPOINTS: egress.endpoints ?? READY, ...env },
        prepare: (bin) => {
          writeFileSync(`${bin}/ingress-codes`, codes.join('\n') + '\n');
          writeFileSync(`${bin}/egress-codes`, (egress.codes ?? [28]).join('\n') + '\n');
        },
        collect: (bin) => ({ ingress: calls(bin, 'ingress'), egress: calls(bin, 'egress') }),
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
    expect(result.collected).toEqual({ ingress: 1, egress: 1 });
  });

  it('passes once a just-synced policy takes effect', () => {
    const result = run(READY, [0, 0, 7]);
    expect(result.status).toBe(0);
    expect(result.collected).toEqual({ ingress: 3, egress: 1 });
  });

  it.each([
    [0, 'an HTTP answer'],
    [52, 'an empty reply after connecting'],
  ])('fails when the connection gets through (curl exit %i: %s)', (code) => {
    const result = run(READY, [code]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('got through');
    expect(result.stderr).toContain('NetworkPolicies are not enforced');
    // The egress check does not run after a failed ingress check.
    expect(result.collected).toEqual({ ingress: 12, egress: 0 });
  });

  it('stops with a message where the Job leaves its attempts unset', () => {
    const result = run(READY, [0], {}, { ATTEMPTS: '' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('ATTEMPTS: unset (the Job sets it)');
    expect(result.collected).toEqual({ ingress: 1, egress: 0 });
  });

  it('fails without trying when the target has no ready endpoint: a refusal would prove nothing', () => {
    const result = run(NOT_READY, [7]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('no ready endpoint');
    expect(result.collected).toEqual({ ingress: 0, egress: 0 });
  });

  it('fails as inconclusive when the target name does not resolve', () => {
    const result = run(READY, [6]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('did not resolve');
  });

  it('checks egress after ingress: passes when the cluster DNS metrics port is refused, and says why', () => {
    const result = run(READY, [7], { codes: [7] });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('ingress: http://argocd-server.argocd.svc:80/healthz refused this pod');
    expect(result.stdout).toContain('egress: http://kube-dns.kube-system.svc:9153/metrics refused this pod');
    expect(result.collected).toEqual({ ingress: 1, egress: 1 });
  });

  it('fails when the egress target is reached: egress is not enforced', () => {
    const result = run(READY, [7], { codes: [0] });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('egress: the connection to http://kube-dns.kube-system.svc:9153/metrics got through');
    expect(result.collected).toEqual({ ingress: 1, egress: 12 });
  });

  it('fails as inconclusive when the egress target does not resolve (DNS is not allowed), and without trying when it has no ready endpoint', () => {
    const unresolved = run(READY, [7], { codes: [6] });
    expect(unresolved.status).not.toBe(0);
    expect(unresolved.stderr).toContain("egress: the target's name did not resolve");
    const down = run(READY, [7], { endpoints: NOT_READY, codes: [7] });
    expect(down.status).not.toBe(0);
    expect(down.stderr).toContain('egress: the target has no ready endpoint');
    expect(down.collected).toEqual({ ingress: 1, egress: 0 });
  });

  it('checks ingress only where egress is not restricted', () => {
    const [dev] = synth(variant((config) => (config.services.networkPolicies = { egress: { enabled: false } })), { only: 'dev' });
    const devJob = dev.docs.find(({ path }) => path === 'network-policies/job-network-policies-checkpoint.yaml')!.manifest as Manifest;
    const env = devJob.spec.template.spec.containers[0].env.map((e: { name: string }) => e.name);
    expect(env).toContain('TARGET_URL');
    expect(env).not.toContain('EGRESS_TARGET_URL');
    // One direction's worst case in the deadline, two where egress is checked too.
    expect(devJob.spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(worstSeconds(devJob, 1));
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(worstSeconds(job, 2));
    expect(devJob.spec.activeDeadlineSeconds).toBeLessThan(job.spec.activeDeadlineSeconds);
  });

  /** The pod's start, then per direction the endpoints' read and every attempt at curl's limit with its pause. */
  function worstSeconds(probe: Manifest, directions: number): number {
    const container = probe.spec.template.spec.containers[0];
    const script: string = container.command.at(-1);
    const value = (name: string) => Number(container.env.find((e: { name: string }) => e.name === name).value);
    const apiCallSeconds = kubeGetMaxSeconds(script);
    const pauseSeconds = Number(/\bsleep (\d+)/.exec(script)![1]);
    return CHECK_START_SECONDS + directions * (apiCallSeconds + value('ATTEMPTS') * (2 * value('CONNECT_TIMEOUT_SECONDS') + pauseSeconds));
  }
});

describe('derived egress NetworkPolicies', () => {
  const egressOf = (env: Env, namespace: string) => inNamespace(env, namespace).filter((p) => p.spec.policyTypes.includes('Egress'));
  const egressNamed = (env: Env, namespace: string, name: string) => egressOf(env, namespace).filter((p) => p.metadata.name === name);
  const toPods = (peer: { namespace: string; podSelector: Readonly<Record<string, string>> }) => ({ namespaceSelector: namespaceSelector(peer.namespace), podSelector: selectorOf(peer.podSelector) });
  const blocks = (policy: any) => (policy.spec.egress ?? []).flatMap((rule: any) => rule.to ?? []).filter((peer: any) => peer.ipBlock).map((peer: any) => peer.ipBlock.cidr);
  const settingsOf = (env: Env) => env.platform.services.find(isNetworkPolicyProvider)!;

  it('deny all egress from every namespace, then let its pods reach each other and the cluster DNS (UDP and TCP 53)', () => {
    for (const env of example) {
      for (const service of env.platform.services) {
        const namespace = service.namespaceName;
        // The same one policy that denies ingress: it selects every pod for egress too.
        expect(egressNamed(env, namespace, NAMESPACE_BASELINE).map((p) => p.spec), namespace).toEqual([{
          podSelector: {},
          policyTypes: ['Ingress', 'Egress'],
          ingress: [{ from: [{ podSelector: {} }] }],
          egress: [{ to: [{ podSelector: {} }] }, { to: [toPods(CLUSTER_DNS)], ports: [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }] }],
        }]);
      }
    }
  });

  it('mirror every ingress rule between our namespaces on the sending side: same destination pods, same ports', () => {
    let mirrored = 0;
    for (const env of example) {
      const services = new Map(env.platform.services.map((s) => [s.namespaceName, s]));
      for (const { policy } of env.policies) {
        if (!policy.spec.policyTypes.includes('Ingress') || !policy.spec.ingress?.length) continue;
        for (const source of policy.spec.ingress[0].from ?? []) {
          const from = source.namespaceSelector?.matchLabels?.[NAMESPACE_NAME_LABEL];
          if (!from || !services.has(from)) continue;
          mirrored++;
          const destination = { namespaceSelector: namespaceSelector(policy.metadata.namespace!), podSelector: policy.spec.podSelector };
          const senders = source.podSelector ?? {};
          const allowing = egressOf(env, from).filter(
            (p) =>
              (Object.keys(p.spec.podSelector).length === 0 || JSON.stringify(p.spec.podSelector) === JSON.stringify(senders)) &&
              (p.spec.egress ?? []).some((rule: any) => rule.to.some((to: any) => JSON.stringify(to) === JSON.stringify(destination)) && JSON.stringify(rule.ports) === JSON.stringify(policy.spec.ingress[0].ports)),
          );
          expect(allowing.map((p) => p.metadata.name), `${env.name}: ${from} -> ${policy.metadata.namespace}/${policy.metadata.name}`).toHaveLength(1);
        }
      }
    }
    // References (node-red -> home-assistant, alloy -> loki ...), scrapes and routes.
    expect(mirrored).toBeGreaterThanOrEqual(3 * 20);
  });

  it('let Prometheus reach the endpoints outside our namespaces too, and the kubelets and node-exporter on the nodes', () => {
    for (const env of example) {
      const scraper = env.platform.services.find(isMetricsScraper)!;
      const [coredns] = egressNamed(env, 'monitoring', `${EGRESS_PREFIX}scrape-monitoring-coredns`);
      expect(coredns.spec.podSelector).toEqual(selectorOf(scraper.scraperPods.podSelector));
      expect(coredns.spec.egress).toEqual([{ to: [toPods(CLUSTER_DNS)], ports: [{ port: 9153, protocol: 'TCP' }] }]);
      const [nodes] = egressNamed(env, 'monitoring', `${EGRESS_PREFIX}nodes`);
      expect(nodes.spec.egress).toEqual([{ to: settingsOf(env).egressRestriction!.nodeNetworks.map((cidr) => ({ ipBlock: { cidr } })), ports: [{ port: 10250, protocol: 'TCP' }, { port: 9100, protocol: 'TCP' }] }]);
    }
  });

  it('let exactly the declared pods and every checkpoint that reads the cluster reach the API server, at its configured sources and port', () => {
    for (const env of example) {
      const { apiServerSources, egressRestriction } = settingsOf(env);
      const apiServerRule = [{ to: apiServerSources.map((cidr) => ({ ipBlock: { cidr } })), ports: [{ port: egressRestriction!.apiServerPort, protocol: 'TCP' }] }];
      const declared = env.platform.services.flatMap((s) => s.egress.filter((e) => e.to.kind === 'api-server').map((e) => `${s.namespaceName}/${EGRESS_PREFIX}${e.name}`));
      const emitted = env.policies.filter(({ policy }) => isDeepStrictEqual(policy.spec.egress, apiServerRule)).map(({ policy }) => `${policy.metadata.namespace}/${policy.metadata.name}`);
      expect(emitted.sort()).toEqual(declared.sort());
      for (const service of env.platform.services) {
        const readsCluster = env.docs.some(({ path, manifest }) => path.startsWith(`${service.serviceName}/`) && manifest.kind === 'Job' && mountsApiToken(manifest.spec.template.spec) && manifest.metadata.namespace === service.namespaceName);
        const rule = egressNamed(env, service.namespaceName, `${EGRESS_PREFIX}checkpoint-api-server`);
        expect(rule.length, `${env.name}/${service.serviceName}`).toBe(readsCluster ? 1 : 0);
        if (readsCluster) expect(rule[0].spec.podSelector).toEqual(selectorOf(CHECKPOINT_PODS));
      }
    }
    // Operators and controllers, by name.
    for (const namespace of ['argocd', 'cert-manager', 'longhorn-system', 'rabbitmq-system', 'monitoring', 'traefik', 'vault', 'external-secrets', 'alloy']) {
      expect(egressNamed(prod, namespace, `${EGRESS_PREFIX}api-server`), namespace).toHaveLength(1);
    }
    for (const namespace of ['n8n', 'cloudflared', 'home-assistant', 'rabbitmq']) {
      expect(egressNamed(prod, namespace, `${EGRESS_PREFIX}api-server`), namespace).toEqual([]);
    }
    const [dev] = synth(variant((config) => (config.services.networkPolicies = { apiServerSources: ['192.168.1.10/32'], egress: { apiServerPort: 16443 } })), { only: 'dev' });
    expect(egressNamed(dev, 'argocd', `${EGRESS_PREFIX}api-server`)[0].spec.egress).toEqual([{ to: [{ ipBlock: { cidr: '192.168.1.10/32' } }], ports: [{ port: 16443, protocol: 'TCP' }] }]);
  });

  it('open public addresses only to services that declared them, never the private ranges or the pod network unless allowed', () => {
    // `internet` is the one rule with 0.0.0.0/0 minus the non-public ranges (the API-server and node rules list their blocks as configured).
    const opensInternet = (policy: any) => (policy.spec.egress ?? []).some((rule: any) => (rule.to ?? []).some((peer: any) => peer.ipBlock?.cidr === '0.0.0.0/0' && peer.ipBlock.except));
    const internetOwners = (env: Env) => [...new Set(env.policies.filter(({ policy }) => opensInternet(policy)).map(({ policy }) => policy.metadata.namespace))].sort();
    for (const env of example) {
      const declaring = env.platform.services
        .filter((s) => s.egress.some((e) => (e.to.kind === 'external' && e.to.destinations.some((d) => d.to === 'internet')) || e.to.kind === 'repositories' || e.to.kind === 'routed-host'))
        .map((s) => s.namespaceName);
      for (const namespace of internetOwners(env)) expect(declaring, `${env.name}: ${namespace}`).toContain(namespace);
      for (const { policy } of env.policies) {
        for (const rule of policy.spec.egress ?? []) {
          for (const peer of rule.to ?? []) {
            if (peer.ipBlock?.cidr === '0.0.0.0/0' && peer.ipBlock.except) expect(peer.ipBlock.except).toEqual([...NON_PUBLIC_IPV4]);
          }
        }
      }
    }
    expect(internetOwners(prod)).toEqual(expect.arrayContaining(['argocd', 'cert-manager', 'cloudflared', 'n8n']));
    // cloudflared: the edge's documented ports only.
    expect(egressNamed(prod, 'cloudflared', `${EGRESS_PREFIX}cloudflare-edge`)[0].spec.egress[0].ports).toEqual([
      { port: 7844, protocol: 'TCP' },
      { port: 7844, protocol: 'UDP' },
      { port: 443, protocol: 'TCP' },
    ]);
    // Home Assistant declares nothing in the fixture: it reaches nothing outside the cluster.
    expect(egressOf(prod, 'home-assistant').flatMap(blocks)).toEqual([]);
    const [withLan] = synth(variant((config) => (config.services.networkPolicies = { egress: { privateNetworks: ['192.168.1.0/24'] } })), { only: 'dev' });
    expect(blocks(egressNamed(withLan, 'n8n', `${EGRESS_PREFIX}external`)[0])).toEqual(['0.0.0.0/0', '::/0', '192.168.1.0/24']);
  });

  it("take an app's and n8n's destinations from the config, and reject a bad one naming its path", () => {
    const [dev] = synth(
      variant((config) => {
        config.apps['home-assistant'].egress = [{ to: 'internet', ports: [443] }, { to: ['192.168.1.0/24'], ports: [1883, '5353/udp'] }];
        config.services.n8n.egress = [];
      }),
      { only: 'dev' },
    );
    const [assistant] = egressNamed(dev, 'home-assistant', `${EGRESS_PREFIX}external`);
    expect(assistant.spec.podSelector).toEqual(selectorOf(dev.platform.services.find((s) => s.serviceName === 'home-assistant')!.selectorFor('app')));
    expect(assistant.spec.egress[0].ports).toEqual([{ port: 443, protocol: 'TCP' }]);
    expect(assistant.spec.egress[1]).toEqual({ to: [{ ipBlock: { cidr: '192.168.1.0/24' } }], ports: [{ port: 1883, protocol: 'TCP' }, { port: 5353, protocol: 'UDP' }] });
    expect(egressNamed(dev, 'n8n', `${EGRESS_PREFIX}external`)).toEqual([]);
    expect(problems((config) => (config.apps['home-assistant'].egress = [{ to: 'anywhere' }]))).toEqual([expect.stringContaining('apps.home-assistant.egress.0.to: expected "internet" or a list of CIDR blocks')]);
    expect(problems((config) => (config.apps['home-assistant'].egress = [{ to: ['10.0.0.0/33'] }]))).toEqual([expect.stringContaining('apps.home-assistant.egress.0.to')]);
    expect(problems((config) => (config.services.n8n.egress = [{ to: 'internet', ports: ['99999/udp'] }]))).toEqual([expect.stringContaining('services.n8n.egress.0.ports.0')]);
  });

  it("let Argo CD's repository server reach every repository the Applications pull from, on their ports", () => {
    const [repositories] = egressNamed(prod, 'argocd', `${EGRESS_PREFIX}repositories`);
    expect(repositories.spec.podSelector).toEqual({ matchLabels: { 'app.kubernetes.io/name': 'argocd-repo-server', 'app.kubernetes.io/instance': 'argocd' } });
    expect(repositories.spec.egress.map((rule: any) => rule.ports)).toEqual([[{ port: 443, protocol: 'TCP' }]]);
    expect(
      repositoryDestinations(['https://github.com/a/b.git', 'git@gitea.lan:a/b.git', 'ssh://git@192.168.1.5:2222/a/b.git', 'http://192.168.1.5:3000/a/b.git', 'registry-1.docker.io/bitnamicharts']),
    ).toEqual([
      { to: ['192.168.1.5/32'], ports: [{ port: 2222, protocol: 'TCP' }, { port: 3000, protocol: 'TCP' }] },
      { to: 'internet', ports: [{ port: 22, protocol: 'TCP' }, { port: 443, protocol: 'TCP' }] },
    ]);
    expect(urlDestination('http://minio.lan:9000')).toEqual({ to: 'internet', ports: [{ port: 9000, protocol: 'TCP' }] });
    expect(urlDestination('https://[fd00::1]:6443')).toEqual({ to: ['fd00::1/128'], ports: [{ port: 6443, protocol: 'TCP' }] });
    expect(() => urlDestination('https://k8s.lan:99999')).toThrow(/k8s\.lan:99999: not a URL an egress rule can be derived from/);
  });

  it('refuse a repository or API server URL that does not parse, at its config path', () => {
    expect(problems((config) => (config.git.repoURL = 'https://github.com:99999/example/homelab.git'))).toEqual([expect.stringContaining('git.repoURL: expected a Git URL with a valid host and port')]);
    expect(problems((config) => (config.environments.dev.cluster = { server: 'https://k8s.lan:99999' }))).toEqual([
      expect.stringContaining('environments.dev.cluster.server: expected an https:// URL with a valid host and port'),
    ]);
  });

  it('are not emitted in an environment that turns egress off, and stay in the others', () => {
    const text = variant((config) => (config.environments.dev.services = { ...config.environments.dev.services, networkPolicies: { egress: { enabled: false } } }));
    for (const env of synth(text)) {
      const egress = env.policies.filter(({ policy }) => policy.spec.policyTypes.includes('Egress'));
      if (env.name === 'dev') expect(egress).toEqual([]);
      else expect(egress.length, env.name).toBeGreaterThan(0);
      // Ingress is unaffected.
      expect(env.policies.some(({ policy }) => policy.metadata.name === NAMESPACE_BASELINE)).toBe(true);
    }
  });
});
