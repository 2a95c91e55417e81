/**
 * NetworkPolicies derived from the service model, never written by hand (docs/adr/0013):
 * every namespace of the platform denies all ingress, then allows
 * - its own pods (checkpoint Jobs, clustering, a service's components talking to each other);
 * - each service that references it in its props, to the ports it serves (`serveClients`),
 *   or the clients a served port names;
 * - the metrics scraper (Prometheus) to each declared metrics endpoint;
 * - the exposure router's pods (Traefik) to each exposed port;
 * - the API server to the webhook ports (`serveApiServer`), from the configured sources;
 * - every trace emitter's sending pods to the trace receiver's OTLP port (lib/passes/tracing.ts);
 * - the pods that ask for a routed host by its public name (`routed-host` egress) to the router's entry port.
 * Where egress is restricted (docs/adr/0024) every namespace also denies all egress, then lets
 * its pods reach each other and DNS — both in one baseline policy per namespace (docs/adr/0031)
 * — and derives the mirror of each ingress rule on the sending
 * side (a reference, a scrape, a route), plus what the services declare with `allowEgress`: the
 * API server, the nodes, the repositories, destinations outside the cluster.
 */
import { k8s } from 'cdk8s-plus-34';
import { Construct } from 'constructs';
import { isEdgePublisher, isExposureRouter } from '../model/exposure';
import { scrapedPods } from '../model/monitoring';
import {
  CLUSTER_DNS,
  DNS_PORTS,
  Egress,
  EgressPort,
  EgressSettings,
  ExternalDestination,
  INTERNET_HTTPS,
  isMetricsScraper,
  isNetworkPolicyProvider,
  NetworkPeer,
  NetworkPolicyProvider,
  NON_PUBLIC_IPV4,
  NON_PUBLIC_IPV6,
  ServedPort,
  urlDestination,
} from '../model/network';
import type { Platform } from '../model/platform';
import type { HomelabService } from '../model/service';
import { traceConnections } from './tracing';
import { byCodeUnits } from '../util/text-order';

export const NETWORK_POLICY_COMPONENT = 'network-policy';
/** Set by Kubernetes (1.21+) on every namespace: selects a namespace by its name. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
/** Annotation on every allow rule saying what it is derived from. */
export const ALLOWS_ANNOTATION = 'homelab.dev/allows';

/**
 * The one policy every namespace gets first: it selects every pod for ingress (and egress, where
 * restricted), so anything not allowed by a rule is denied, and allows what every namespace
 * needs — its pods reach each other (clustering, the checkpoint Job) and the cluster DNS.
 */
export const NAMESPACE_BASELINE = 'namespace-baseline';
/** Every egress allow rule's name starts with it (ingress rules' with `allow-`). */
export const EGRESS_PREFIX = 'egress-';

type Port = { readonly port: number | string; readonly protocol: 'TCP' | 'UDP' };

/** One egress allow rule: the pods matching `podSelector` in the policy's namespace may connect to each of `egress`. */
export interface EgressRule {
  readonly name: string;
  readonly podSelector: Readonly<Record<string, string>>;
  /** Each: these destinations on these ports (every port when left out). */
  readonly egress: readonly { readonly to: readonly k8s.NetworkPolicyPeer[]; readonly ports?: readonly Port[] }[];
  /** What the rule is derived from. */
  readonly reason: string;
}

/** One allow rule: `from` may reach `ports` of the pods matching `podSelector` in the policy's namespace. */
export interface AllowRule {
  readonly name: string;
  readonly podSelector: Readonly<Record<string, string>>;
  readonly ports: readonly Port[];
  readonly from: readonly k8s.NetworkPolicyPeer[];
  /** What the rule is derived from. */
  readonly reason: string;
}

/** Rules by the service owning the namespace they go into; a name used twice in one namespace is a bug. */
function ruleSets<Rule extends { readonly name: string }>(platform: Platform): { rules: Map<HomelabService, Rule[]>; add: (service: HomelabService, rule: Rule) => void } {
  const rules = new Map(platform.services.map((s): [HomelabService, Rule[]] => [s, []]));
  const add = (service: HomelabService, rule: Rule) => {
    const list = rules.get(service)!;
    if (list.some((r) => r.name === rule.name)) throw new Error(`${service.serviceName}: two NetworkPolicies named ${rule.name}`);
    list.push(rule);
  };
  return { rules, add };
}

/**
 * The connections between namespaces that the typed graph declares; each becomes an ingress rule
 * on the receiving side and an egress rule on the sending side.
 */
function* references(platform: Platform): Generator<{ client: HomelabService; provider: HomelabService; served: ServedPort }> {
  const referrers = referrersOf(platform);
  for (const provider of platform.services) {
    for (const served of provider.servedPorts) {
      for (const client of served.clients ?? referrers.get(provider) ?? []) {
        if (client.namespaceName !== provider.namespaceName) yield { client, provider, served };
      }
    }
  }
}

/** The metrics scraper to every declared endpoint outside its own namespace. */
function* scrapes(platform: Platform) {
  const scraper = platform.services.find(isMetricsScraper);
  if (!scraper) return;
  for (const service of platform.services) {
    for (const endpoint of service.metricsEndpoints) {
      const namespace = endpoint.namespace ?? service.namespaceName;
      if (namespace !== scraper.scraperPods.namespace) yield { scraper, service, endpoint, namespace, ...scrapedPods(endpoint) };
    }
  }
}

/** The exposure router to every exposure outside its own namespace. */
function* routes(platform: Platform) {
  const router = platform.services.find(isExposureRouter);
  if (!router) return;
  for (const service of platform.services) {
    if (service.namespaceName === router.namespaceName) continue;
    for (const exposure of service.exposures) yield { router, service, exposure };
  }
}

/** Every declared `routed-host` egress outside the router's own namespace, where the platform has a router. */
function* routedHostClients(platform: Platform) {
  const router = platform.services.find(isExposureRouter);
  if (!router) return;
  for (const service of platform.services) {
    if (service.namespaceName === router.namespaceName) continue;
    for (const egress of service.egress) if (egress.to.kind === 'routed-host') yield { router, service, egress };
  }
}

/** Every trace emission to the receiver's OTLP port of its protocol, outside the receiver's namespace. */
function* traces(platform: Platform) {
  for (const { emitter, emission, receiver } of traceConnections(platform)) {
    if (emitter.namespaceName === receiver.namespaceName) continue;
    const port: Port = { port: receiver.otlpPorts[emission.protocol], protocol: 'TCP' };
    const reason = `${emitter.serviceName} sends traces (OTLP/${emission.protocol}) to ${receiver.serviceName}`;
    yield { emitter, emission, receiver, port, reason };
  }
}

/** The allow rules of every namespace, by the service owning it (besides the deny and same-namespace policies). */
export function allowRules(platform: Platform, apiServerSources: readonly string[]): Map<HomelabService, AllowRule[]> {
  const { rules, add } = ruleSets<AllowRule>(platform);
  for (const { client, provider, served } of references(platform)) {
    add(provider, {
      name: `allow-${client.serviceName}-${portKey(served)}`,
      podSelector: served.podSelector,
      ports: [portOf(served)],
      from: [namespacePeer(client.namespaceName)],
      reason: `${client.serviceName} connects to ${provider.serviceName}`,
    });
  }
  for (const provider of platform.services) {
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
  const owners = new Map(platform.services.map((s) => [s.namespaceName, s]));
  for (const { scraper, service, endpoint, namespace, port, podSelector } of scrapes(platform)) {
    // Namespaces we do not create (kube-system) get no policy from us.
    const owner = owners.get(namespace);
    if (!owner) continue;
    const scraperKey = scraper.scraperName.toLowerCase();
    add(owner, {
      name: owner === service ? `allow-${scraperKey}-${endpoint.name}` : `allow-${scraperKey}-${service.serviceName}-${endpoint.name}`,
      podSelector,
      ports: [{ port, protocol: 'TCP' }],
      from: [peer(scraper.scraperPods)],
      reason: `${scraper.scraperName} scrapes the ${endpoint.name} metrics of ${service.serviceName}`,
    });
  }
  for (const { router, service, exposure } of routes(platform)) {
    add(service, {
      name: `allow-${router.routerName.toLowerCase()}-${exposure.subdomain}`,
      podSelector: exposure.podSelector,
      ports: [{ port: exposure.podPort, protocol: 'TCP' }],
      from: [peer(router.routerPods)],
      reason: `${router.routerName} routes ${exposure.subdomain} to ${exposure.serviceName}`,
    });
    if (exposure.checkedFrom) {
      add(router, {
        name: `allow-${service.serviceName}-check-${exposure.subdomain}`,
        podSelector: router.routerPods.podSelector,
        ports: [{ port: router.routerEntryPort, protocol: 'TCP' }],
        from: [peer({ namespace: service.namespaceName, podSelector: exposure.checkedFrom })],
        reason: `${service.serviceName} checks ${exposure.subdomain} through ${router.routerName}`,
      });
    }
  }
  for (const { router, service, egress } of routedHostClients(platform)) {
    add(router, {
      name: `allow-${service.serviceName}-${egress.name}`,
      podSelector: router.routerPods.podSelector,
      ports: [{ port: router.routerEntryPort, protocol: 'TCP' }],
      from: [peer({ namespace: service.namespaceName, podSelector: egress.podSelector })],
      reason: egress.reason,
    });
  }
  for (const { emitter, emission, receiver, port, reason } of traces(platform)) {
    add(receiver, {
      name: `allow-traces-${emitter.serviceName}-${emission.name}`,
      podSelector: receiver.traceReceiverPods.podSelector,
      ports: [port],
      from: [peer({ namespace: emitter.namespaceName, podSelector: emission.podSelector })],
      reason,
    });
  }
  return rules;
}

/**
 * The egress allow rules of every namespace, by the service owning it (besides the deny,
 * same-namespace and DNS policies): the sending side of every ingress rule between our
 * namespaces, scrapes and routes into namespaces of any owner, and each service's declarations.
 */
function egressRules(platform: Platform, policies: Pick<NetworkPolicyProvider, 'apiServerSources'>, settings: EgressSettings): Map<HomelabService, EgressRule[]> {
  const { rules, add } = ruleSets<EgressRule>(platform);
  for (const { client, provider, served } of references(platform)) {
    add(client, {
      name: `${EGRESS_PREFIX}${provider.serviceName}-${portKey(served)}`,
      podSelector: {},
      egress: [{ to: [peer({ namespace: provider.namespaceName, podSelector: served.podSelector })], ports: [portOf(served)] }],
      reason: `${client.serviceName} connects to ${provider.serviceName}`,
    });
  }
  for (const { scraper, service, endpoint, namespace, port, podSelector } of scrapes(platform)) {
    add(scraper, {
      name: `${EGRESS_PREFIX}scrape-${service.serviceName}-${endpoint.name}`,
      podSelector: scraper.scraperPods.podSelector,
      egress: [{ to: [peer({ namespace, podSelector })], ports: [{ port, protocol: 'TCP' }] }],
      reason: `${scraper.scraperName} scrapes the ${endpoint.name} metrics of ${service.serviceName}`,
    });
  }
  for (const { router, service, exposure } of routes(platform)) {
    add(router, {
      name: `${EGRESS_PREFIX}route-${exposure.subdomain}`,
      podSelector: router.routerPods.podSelector,
      egress: [{ to: [peer({ namespace: service.namespaceName, podSelector: exposure.podSelector })], ports: [{ port: exposure.podPort, protocol: 'TCP' }] }],
      reason: `${router.routerName} routes ${exposure.subdomain} to ${exposure.serviceName}`,
    });
    if (exposure.checkedFrom) {
      add(service, {
        name: `${EGRESS_PREFIX}check-${exposure.subdomain}`,
        podSelector: exposure.checkedFrom,
        egress: [{ to: [peer(router.routerPods)], ports: [{ port: router.routerEntryPort, protocol: 'TCP' }] }],
        reason: `${service.serviceName} checks ${exposure.subdomain} through ${router.routerName}`,
      });
    }
  }
  for (const { emitter, emission, receiver, port, reason } of traces(platform)) {
    add(emitter, {
      name: `${EGRESS_PREFIX}traces-${emission.name}`,
      podSelector: emission.podSelector,
      egress: [{ to: [peer(receiver.traceReceiverPods)], ports: [port] }],
      reason,
    });
  }
  for (const service of platform.services) {
    for (const declared of service.egress) {
      add(service, {
        name: `${EGRESS_PREFIX}${declared.name}`,
        podSelector: declared.podSelector,
        egress: declaredEgress(declared, platform, policies, settings),
        reason: declared.reason,
      });
    }
  }
  return rules;
}

function declaredEgress(declared: Egress, platform: Platform, policies: Pick<NetworkPolicyProvider, 'apiServerSources'>, settings: EgressSettings): EgressRule['egress'] {
  const target = declared.to;
  switch (target.kind) {
    case 'api-server':
      // The Service kubernetes.default (443) is DNATed to the API server's own address and
      // port before the policy sees the packet: those are what is allowed.
      return [{ to: ipBlocks(policies.apiServerSources), ports: [{ port: settings.apiServerPort, protocol: 'TCP' }] }];
    case 'nodes':
      return [{ to: ipBlocks(settings.nodeNetworks), ports: target.ports.map(tcpByDefault) }];
    case 'pods':
      return [{ to: [peer(target.peer)], ...(target.ports && { ports: target.ports.map(tcpByDefault) }) }];
    case 'external':
      return target.destinations.map((destination) => externalEgress(destination, settings));
    case 'repositories':
      return repositoryDestinations(repositoryUrls(platform)).map((destination) => externalEgress(destination, settings));
    case 'routed-host': {
      const router = platform.services.find(isExposureRouter);
      const routed = router?.routedHosts.find((host) => host.host === target.host);
      // The public internet only where the name resolves outside the cluster: a tunnel's or a proxy's edge, or a host we do not route.
      const atEdge = routed === undefined || platform.services.filter(isEdgePublisher).some((publisher) => publisher.publishesAtEdge(routed));
      return [
        ...(router ? [{ to: [peer(router.routerPods)], ports: [{ port: router.routerEntryPort, protocol: 'TCP' as const }] }] : []),
        ...(atEdge ? [externalEgress(INTERNET_HTTPS, settings)] : []),
      ];
    }
  }
}

/** `internet`: every address but the non-public ranges (and the private networks allowed); or the CIDR blocks given. */
function externalEgress(destination: ExternalDestination, settings: EgressSettings): EgressRule['egress'][number] {
  const to: k8s.NetworkPolicyPeer[] =
    destination.to === 'internet'
      ? [
          { ipBlock: { cidr: '0.0.0.0/0', except: [...NON_PUBLIC_IPV4] } },
          { ipBlock: { cidr: '::/0', except: [...NON_PUBLIC_IPV6] } },
          ...ipBlocks(settings.privateNetworks),
        ]
      : ipBlocks(destination.to);
  return { to, ...(destination.ports && { ports: destination.ports.map(tcpByDefault) }) };
}

/** Every repository URL the platform's Applications pull from: the platform's Git repository and the upstream sources. */
function repositoryUrls(platform: Platform): string[] {
  const urls = [
    platform.config.git.repoURL,
    ...platform.services.flatMap((s) => s.upstreamSources.map((source) => source.repoURL)),
  ];
  return [...new Set(urls)];
}

/** The repositories' servers, each `internet` or address block once, with every port its URLs use. */
export function repositoryDestinations(urls: readonly string[]): ExternalDestination[] {
  const ports = new Map<string, { to: ExternalDestination['to']; ports: Set<number> }>();
  for (const url of urls) {
    const destination = urlDestination(url);
    const key = String(destination.to);
    const entry = ports.get(key) ?? { to: destination.to, ports: new Set<number>() };
    for (const { port } of destination.ports) entry.ports.add(Number(port));
    ports.set(key, entry);
  }
  return [...ports]
    .sort(([a], [b]) => byCodeUnits(a, b))
    .map(([, { to, ports }]) => ({ to, ports: [...ports].sort((a, b) => a - b).map((port) => ({ port, protocol: 'TCP' as const })) }));
}

/** Who references whom (in platform order, as the rules are emitted). */
function referrersOf(platform: Platform): Map<HomelabService, HomelabService[]> {
  const referrers = new Map<HomelabService, HomelabService[]>();
  for (const service of platform.services) {
    for (const provider of service.references) referrers.set(provider, [...(referrers.get(provider) ?? []), service]);
  }
  return referrers;
}

/**
 * Adds the policies of every service's namespace to the service (its folder, its Application),
 * where the platform has a NetworkPolicy provider.
 */
export function emitNetworkPolicies(platform: Platform): void {
  const provider = platform.services.find(isNetworkPolicyProvider);
  if (!provider) return;
  const egress = provider.egressRestriction && egressRules(platform, provider, provider.egressRestriction);
  for (const [service, rules] of allowRules(platform, provider.apiServerSources)) new NamespacePolicies(service, rules, egress?.get(service));
}

class NamespacePolicies extends Construct {
  /** @param egress the namespace's egress allow rules, where egress is restricted */
  constructor(
    private readonly service: HomelabService,
    rules: readonly AllowRule[],
    egress?: readonly EgressRule[],
  ) {
    super(service, 'namespace-policies');
    // One service per namespace: its pods trust each other, and its checkpoint Job runs here.
    const sameNamespace = `the pods of ${service.serviceName}, its checkpoint included, reach each other`;
    if (egress) {
      this.policy(NAMESPACE_BASELINE, `nothing else in or out of this namespace without an allow rule: ${sameNamespace}, and every pod resolves names with the cluster DNS`, {
        podSelector: {},
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{ from: [{ podSelector: {} }] }],
        egress: [{ to: [{ podSelector: {} }] }, { to: [peer(CLUSTER_DNS)], ports: DNS_PORTS.map(tcpByDefault).map(policyPort) }],
      });
    } else {
      this.policy(NAMESPACE_BASELINE, `nothing else into this namespace without an allow rule: ${sameNamespace}`, {
        podSelector: {},
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ podSelector: {} }] }],
      });
    }
    for (const rule of rules) {
      this.policy(rule.name, rule.reason, {
        podSelector: selector(rule.podSelector),
        policyTypes: ['Ingress'],
        ingress: [{ from: [...rule.from], ports: rule.ports.map(policyPort) }],
      });
    }
    for (const rule of egress ?? []) {
      this.policy(rule.name, rule.reason, {
        podSelector: selector(rule.podSelector),
        policyTypes: ['Egress'],
        egress: rule.egress.map(({ to, ports }) => ({ to: [...to], ...(ports && { ports: ports.map(policyPort) }) })),
      });
    }
  }

  /** One NetworkPolicy of the namespace, named and annotated with what it allows. */
  private policy(name: string, reason: string, spec: k8s.NetworkPolicySpec): void {
    new k8s.KubeNetworkPolicy(this, name, {
      metadata: { name, labels: this.service.labelsFor(NETWORK_POLICY_COMPONENT), annotations: { [ALLOWS_ANNOTATION]: reason } },
      spec,
    });
  }
}

function policyPort({ port, protocol }: Port): k8s.NetworkPolicyPort {
  return { port: typeof port === 'number' ? k8s.IntOrString.fromNumber(port) : k8s.IntOrString.fromString(port), protocol };
}

function tcpByDefault(port: EgressPort): Port {
  return { port: port.port, protocol: port.protocol ?? 'TCP' };
}

function ipBlocks(cidrs: readonly string[]): k8s.NetworkPolicyPeer[] {
  return cidrs.map((cidr) => ({ ipBlock: { cidr } }));
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
  return { ...namespacePeer(pods.namespace), podSelector: selector(pods.podSelector) };
}

/** `{}` selects every pod. */
function selector(labels: Readonly<Record<string, string>>): k8s.LabelSelector {
  return Object.keys(labels).length > 0 ? { matchLabels: { ...labels } } : {};
}
