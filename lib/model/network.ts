/**
 * Network declarations of the service model, from which NetworkPolicies are derived
 * (lib/passes/network-policies.ts): the ports a service serves to the services that reference it,
 * the ports the Kubernetes API server calls (admission webhooks, aggregated APIs), and where a
 * service's pods connect beyond what the graph implies (the API server, the internet).
 */
import { isIPv6 } from 'node:net';
import { UserError } from '../util/errors';
import type { HomelabService } from './service';

export interface ServedPort {
  /** Port the pods listen on: number or container port name. */
  readonly port: number | string;
  /** @default 'TCP' */
  readonly protocol?: 'TCP' | 'UDP';
  /** Labels of the pods serving it (`{}`: every pod of the namespace). */
  readonly podSelector: Readonly<Record<string, string>>;
  /**
   * The services that connect to this port, when they are not the ones referencing this
   * service (an operator managing it, e.g. the RabbitMQ topology operator calling the
   * management API). @default every service that references this one in its props
   */
  readonly clients?: readonly HomelabService[];
}

/** Pods in one namespace: a source of traffic. */
export interface NetworkPeer {
  readonly namespace: string;
  readonly podSelector: Readonly<Record<string, string>>;
}

/** A service whose pods scrape every declared metrics endpoint (Prometheus). */
export interface MetricsScraper extends HomelabService {
  /** What scrapes, in NetworkPolicy names (lowercased) and reasons, e.g. `Prometheus`. */
  readonly scraperName: string;
  readonly scraperPods: NetworkPeer;
}

export function isMetricsScraper(service: HomelabService): service is MetricsScraper {
  return 'scraperPods' in service;
}

/**
 * The service whose presence makes the platform derive NetworkPolicies for every namespace
 * (the network-policies pass), and whose checkpoint proves them enforced.
 */
export interface NetworkPolicyProvider extends HomelabService {
  /** Where the API server's calls to admission and conversion webhooks come from (CIDRs). */
  readonly apiServerSources: readonly string[];
  /** Egress restrictions: each namespace denies all egress but what is derived. @default none: egress stays open */
  readonly egressRestriction?: EgressSettings;
}

export function isNetworkPolicyProvider(service: HomelabService): service is NetworkPolicyProvider {
  return 'apiServerSources' in service;
}

/** A port a pod connects to: TCP unless said otherwise. */
export interface EgressPort {
  readonly port: number | string;
  /** @default 'TCP' */
  readonly protocol?: 'TCP' | 'UDP';
}

/**
 * Where pods of a service connect outside their namespace, besides what the platform derives
 * from the typed graph (DNS, references, scraping, routing):
 * - `api-server`: the Kubernetes API server (operators, controllers, checkpoints reading the cluster);
 * - `nodes`: the nodes' host network on `ports` (kubelets, host-network exporters);
 * - `repositories`: every Git and Helm repository the platform's Applications come from (the
 *   GitOps engine's repository server), derived from their URLs;
 * - `external`: addresses outside the cluster, each `internet` or CIDR blocks, on its `ports`
 *   (all ports when none are given);
 * - `pods`: pods of another namespace that do not serve this service as a reference (the
 *   enforcement probe's path to its target, a server named by URL), on `ports` (every port
 *   when none are given: a Service port says nothing about the pods' ports);
 * - `routed-host`: `host`, a host of the platform by its public name (a server fetching an OIDC
 *   issuer's discovery document and exchanging codes there): the router's entry port, where the
 *   name resolves to the router's address (the cluster DNATs it to the router's pods before the
 *   policy sees the packet; the router lets these pods in); and any public address on HTTPS
 *   only where a route follower publishes the host at an edge outside the cluster (a tunnel, a
 *   proxied record: `EdgePublisher`) or no router routes it (docs/adr/0038).
 */
export type EgressTarget =
  | { readonly kind: 'api-server' }
  | { readonly kind: 'nodes'; readonly ports: readonly EgressPort[] }
  | { readonly kind: 'repositories' }
  | { readonly kind: 'external'; readonly destinations: readonly ExternalDestination[] }
  | { readonly kind: 'pods'; readonly peer: NetworkPeer; readonly ports?: readonly EgressPort[] }
  | { readonly kind: 'routed-host'; readonly host: string };

/** Addresses outside the cluster a service connects to (the `egress:` entries of the config). */
export interface ExternalDestination {
  /** `internet`: every public address (not the cluster's or private ranges), or these CIDR blocks. */
  readonly to: 'internet' | readonly string[];
  /** @default every port */
  readonly ports?: readonly EgressPort[];
}

/** One egress declaration: which pods of the service connect where, and why. */
export interface Egress {
  /** Names the policy (`egress-<name>`): unique in the service. */
  readonly name: string;
  /** Labels of the pods that connect (`{}`: every pod of the namespace). */
  readonly podSelector: Readonly<Record<string, string>>;
  readonly to: EgressTarget;
  /** Why they connect there (the policy's `homelab.dev/allows` annotation). */
  readonly reason: string;
}

/** The egress settings of a NetworkPolicy provider, where egress is restricted. */
export interface EgressSettings {
  /** The port the API server's endpoints listen on, as pods reach them after the Service's DNAT. */
  readonly apiServerPort: number;
  /** CIDRs of the nodes' host network (kubelets, host-network exporters). */
  readonly nodeNetworks: readonly string[];
  /** Private ranges that count as part of `internet` (a NAS, an S3 or SMTP server on the LAN). */
  readonly privateNetworks: readonly string[];
}

/**
 * The cluster DNS every pod resolves names with: k3s runs CoreDNS as the Deployment `coredns` in
 * kube-system, its pods labelled `k8s-app: kube-dns`, listening on 53 UDP and TCP (k3s-io/k3s
 * manifests/coredns.yaml); the kube-dns Service's DNAT makes those pods the destination.
 */
export const CLUSTER_DNS: NetworkPeer = { namespace: 'kube-system', podSelector: { 'k8s-app': 'kube-dns' } };
export const DNS_PORTS: readonly EgressPort[] = [
  { port: 53, protocol: 'UDP' },
  { port: 53, protocol: 'TCP' },
];

/**
 * What `internet` leaves out: the private, shared (CGNAT), loopback and link-local ranges
 * (RFC 1918, 6598, 1122, 3927; IPv6 RFC 4193, 4291). The cluster's pod and service networks are
 * in them (k3s: 10.42.0.0/16 and 10.43.0.0/16), so `internet` never reaches a pod.
 */
export const NON_PUBLIC_IPV4 = ['10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16'] as const;
export const NON_PUBLIC_IPV6 = ['fc00::/7', 'fe80::/10'] as const;

/**
 * node:net's isIPv6, asked only of a value with a colon (which every IPv6 address has, and no
 * IPv4 address or hostname): its first call compiles a large regular expression, ~4 ms of a
 * synth whose addresses are IPv4.
 */
export function isIPv6Address(value: string): boolean {
  return value.includes(':') && isIPv6(value);
}

/** Whether two IPv4 CIDRs share an address (one contains the other). */
export function cidrsOverlap(a: string, b: string): boolean {
  const [baseA, bitsA] = parseCidr(a);
  const [baseB, bitsB] = parseCidr(b);
  const bits = Math.min(bitsA, bitsB);
  return network(baseA, bits) === network(baseB, bits);
}

function parseCidr(cidr: string): [number, number] {
  const [address, bits] = cidr.split('/');
  const value = address.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0);
  return [value, Number(bits)];
}

function network(address: number, bits: number): number {
  return bits === 0 ? 0 : Math.floor(address / 2 ** (32 - bits));
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'https:': 443, 'http:': 80, 'ssh:': 22, 'git:': 9418 };

/**
 * The namespace of a server a URL names by its in-cluster Service name (`http://<service>.<namespace>.svc[.cluster.local][:port]/...`).
 * @returns undefined for any other host
 */
export function inClusterNamespace(url: string): string | undefined {
  return /^[a-z]+:\/\/[a-z0-9-]+\.([a-z0-9-]+)\.svc(\.cluster\.local)?(:\d+)?(\/|$)/.exec(url)?.[1];
}

/**
 * Where a URL's server is, as an egress target: an in-cluster Service (`<service>.<namespace>.svc`)
 * is any pod of its namespace on any port (the Service's target port is not known here); any
 * other server its urlDestination.
 */
export function urlEgressTarget(url: string): EgressTarget {
  const namespace = inClusterNamespace(url);
  return namespace ? { kind: 'pods', peer: { namespace, podSelector: {} } } : { kind: 'external', destinations: [urlDestination(url)] };
}

/** Any public address on HTTPS: where a name resolved at run time (an API, a bucket) lives. */
export const INTERNET_HTTPS: ExternalDestination = { to: 'internet', ports: [{ port: 443 }] };

/** An S3 server: its endpoint URL's server, or (AWS, no endpoint) any public address on HTTPS. */
export function s3Destination(endpoint: string | undefined): ExternalDestination {
  return endpoint ? urlDestination(endpoint) : INTERNET_HTTPS;
}

/**
 * The server a URL names, as an egress destination: a host given as an IPv4 address as its
 * `/32` block, any other host (a name, resolved at run time) as `internet`; on the URL's port,
 * else the scheme's default (`git@host:path` is SSH, 22; no scheme or an unknown one, HTTPS).
 */
export function urlDestination(url: string): ExternalDestination & { readonly ports: readonly EgressPort[] } {
  const scp = /^[^@\s/]+@([^:\s/]+):/.exec(url);
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `https://${url}`;
  if (!scp && !URL.canParse(withScheme)) throw new UserError([`${url}: not a URL an egress rule can be derived from (a host and, optionally, a port from 1 to 65535)`]);
  const parsed = scp ? undefined : new URL(withScheme);
  const host = scp ? scp[1] : parsed!.hostname;
  const port = scp ? 22 : parsed!.port ? Number(parsed!.port) : (DEFAULT_PORTS[parsed!.protocol] ?? 443);
  // An address is its own block (`[fd00::1]` is an IPv6 literal); a name resolves at run time.
  const to = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) ? [`${host}/32`] : /^\[[0-9a-f:.]+\]$/i.test(host) ? [`${host.slice(1, -1)}/128`] : 'internet';
  return { to, ports: [{ port, protocol: 'TCP' }] };
}
