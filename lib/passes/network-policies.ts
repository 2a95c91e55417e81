/**
 * NetworkPolicies derived from the service model, never written by hand (docs/adr/0013):
 * every namespace of the platform denies all ingress, then allows
 * - its own pods (checkpoint Jobs, clustering, a service's components talking to each other);
 * - each service that references it in its props, to the ports it serves (`serveClients`),
 *   or the clients a served port names;
 * - the metrics scraper (Prometheus) to each declared metrics endpoint;
 * - the exposure router's pods (Traefik) to each exposed port;
 * - the API server to the webhook ports (`serveApiServer`), from the configured sources.
 * Egress stays open: every rule is on the receiving side, so a refused connection always
 * proves the receiver's policy.
 */
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { isExposureRouter } from '../model/exposure';
import { scrapedPods } from '../model/monitoring';
import { isMetricsScraper, isNetworkPolicyProvider, NetworkPeer, ServedPort } from '../model/network';
import type { Platform } from '../model/platform';
import type { HomelabService } from '../model/service';

export const NETWORK_POLICY_COMPONENT = 'network-policy';
/** Set by Kubernetes (1.21+) on every namespace: selects a namespace by its name. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
/** Annotation on every allow rule saying what it is derived from. */
export const ALLOWS_ANNOTATION = 'homelab.dev/allows';

export const DEFAULT_DENY = 'default-deny-ingress';
export const ALLOW_SAME_NAMESPACE = 'allow-same-namespace';

/** One allow rule: `from` may reach `ports` of the pods matching `podSelector` in the policy's namespace. */
export interface AllowRule {
  readonly name: string;
  readonly podSelector: Readonly<Record<string, string>>;
  readonly ports: readonly { readonly port: number | string; readonly protocol: 'TCP' | 'UDP' }[];
  readonly from: readonly k8s.NetworkPolicyPeer[];
  /** What the rule is derived from. */
  readonly reason: string;
}

/** The allow rules of every namespace, by the service owning it (besides the deny and same-namespace policies). */
export function allowRules(platform: Platform, apiServerSources: readonly string[]): Map<HomelabService, AllowRule[]> {
  const rules = new Map(platform.services.map((s): [HomelabService, AllowRule[]] => [s, []]));
  const add = (service: HomelabService, rule: AllowRule) => {
    const list = rules.get(service)!;
    if (list.some((r) => r.name === rule.name)) throw new Error(`${service.serviceName}: two NetworkPolicies named ${rule.name}`);
    list.push(rule);
  };
  // Who references whom, once (in platform order, as the rules are emitted).
  const referrers = new Map<HomelabService, HomelabService[]>();
  for (const service of platform.services) {
    for (const provider of service.references) referrers.set(provider, [...(referrers.get(provider) ?? []), service]);
  }
  for (const provider of platform.services) {
    for (const served of provider.servedPorts) {
      for (const client of served.clients ?? referrers.get(provider) ?? []) {
        if (client.namespaceName === provider.namespaceName) continue;
        add(provider, {
          name: `allow-${client.serviceName}-${portKey(served)}`,
          podSelector: served.podSelector,
          ports: [portOf(served)],
          from: [namespacePeer(client.namespaceName)],
          reason: `${client.serviceName} connects to ${provider.serviceName}`,
        });
      }
    }
    // Entry points: the load balancer forwards clients from anywhere (with externalTrafficPolicy
    // Local their own addresses), so no narrower source exists.
    for (const served of provider.publicPorts) {
      add(provider, {
        name: `allow-public-${portKey(served)}`,
        podSelector: served.podSelector,
        ports: [portOf(served)],
        from: [{ ipBlock: { cidr: '0.0.0.0/0' } }],
        reason: `${provider.serviceName} is an entry point of the platform`,
      });
    }
    for (const served of provider.apiServerPorts) {
      add(provider, {
        name: `allow-api-server-${portKey(served)}`,
        podSelector: served.podSelector,
        ports: [portOf(served)],
        from: apiServerSources.map((cidr) => ({ ipBlock: { cidr } })),
        reason: `the API server calls a webhook of ${provider.serviceName}`,
      });
    }
  }
  const scraper = platform.services.find(isMetricsScraper);
  if (scraper) {
    const scraperKey = scraper.scraperName.toLowerCase();
    const owners = new Map(platform.services.map((s) => [s.namespaceName, s]));
    for (const service of platform.services) {
      for (const endpoint of service.metricsEndpoints) {
        const namespace = endpoint.namespace ?? service.namespaceName;
        // Namespaces we do not create (kube-system) get no policy from us.
        const owner = owners.get(namespace);
        if (!owner || namespace === scraper.scraperPods.namespace) continue;
        const { port, podSelector } = scrapedPods(endpoint);
        add(owner, {
          name: owner === service ? `allow-${scraperKey}-${endpoint.name}` : `allow-${scraperKey}-${service.serviceName}-${endpoint.name}`,
          podSelector,
          ports: [{ port, protocol: 'TCP' }],
          from: [peer(scraper.scraperPods)],
          reason: `${scraper.scraperName} scrapes the ${endpoint.name} metrics of ${service.serviceName}`,
        });
      }
    }
  }
  const router = platform.services.find(isExposureRouter);
  if (router) {
    for (const service of platform.services) {
      if (service.namespaceName === router.namespaceName) continue;
      for (const exposure of service.exposures) {
        add(service, {
          name: `allow-${router.routerName.toLowerCase()}-${exposure.subdomain}`,
          podSelector: exposure.podSelector,
          ports: [{ port: exposure.podPort, protocol: 'TCP' }],
          from: [peer(router.routerPods)],
          reason: `${router.routerName} routes ${exposure.subdomain} to ${exposure.serviceName}`,
        });
      }
    }
  }
  return rules;
}

/**
 * Adds the policies of every service's namespace to the service (its folder, its Application),
 * where the platform has a NetworkPolicy provider.
 */
export function emitNetworkPolicies(platform: Platform): void {
  const provider = platform.services.find(isNetworkPolicyProvider);
  if (!provider) return;
  for (const [service, rules] of allowRules(platform, provider.apiServerSources)) new NamespacePolicies(service, rules);
}

class NamespacePolicies extends Construct {
  constructor(service: HomelabService, rules: readonly AllowRule[]) {
    super(service, 'namespace-policies');
    const metadata = (name: string, reason: string) => ({
      name,
      labels: service.labelsFor(NETWORK_POLICY_COMPONENT),
      annotations: { [ALLOWS_ANNOTATION]: reason },
    });
    new k8s.KubeNetworkPolicy(this, DEFAULT_DENY, {
      metadata: metadata(DEFAULT_DENY, 'nothing: every connection to this namespace needs one of the allow rules'),
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    });
    // One service per namespace: its pods trust each other, and its checkpoint Job runs here.
    new k8s.KubeNetworkPolicy(this, ALLOW_SAME_NAMESPACE, {
      metadata: metadata(ALLOW_SAME_NAMESPACE, `the pods of ${service.serviceName}, its checkpoint included, reach each other`),
      spec: { podSelector: {}, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: {} }] }] },
    });
    for (const rule of rules) {
      new k8s.KubeNetworkPolicy(this, rule.name, {
        metadata: metadata(rule.name, rule.reason),
        spec: {
          podSelector: Object.keys(rule.podSelector).length > 0 ? { matchLabels: { ...rule.podSelector } } : {},
          policyTypes: ['Ingress'],
          ingress: [
            {
              from: [...rule.from],
              ports: rule.ports.map(({ port, protocol }) => ({
                port: typeof port === 'number' ? k8s.IntOrString.fromNumber(port) : k8s.IntOrString.fromString(port),
                protocol,
              })),
            },
          ],
        },
      });
    }
  }
}

function portOf(served: ServedPort): { port: number | string; protocol: 'TCP' | 'UDP' } {
  return { port: served.port, protocol: served.protocol ?? 'TCP' };
}

/** Names a port in a policy name: `5672`, `http`, `53-udp`. */
function portKey(served: ServedPort): string {
  return served.protocol === 'UDP' ? `${served.port}-udp` : String(served.port);
}

function namespacePeer(namespace: string): k8s.NetworkPolicyPeer {
  return { namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: namespace } } };
}

function peer(pods: NetworkPeer): k8s.NetworkPolicyPeer {
  return { ...namespacePeer(pods.namespace), podSelector: { matchLabels: { ...pods.podSelector } } };
}
