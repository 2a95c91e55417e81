/**
 * NetworkPolicy semantics over a rendered set (networking.k8s.io/v1): whether a connection from
 * one pod to another on a port is allowed by both the egress policies selecting the source and
 * the ingress policies selecting the destination. A pod no policy of a direction selects is open
 * in that direction. `ipBlock` peers never match pods: pod addresses are the cluster's, which the
 * set does not know, and our policies name pods by selectors.
 */
import { containersOf } from '../../model/workloads';
import type { Manifest } from './render';

/** A pod as the policies see it: where it runs, its labels, its container ports. */
export interface PodEndpoint {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Container ports by name, to resolve named ports of policies and Services. */
  readonly namedPorts: ReadonlyMap<string, number>;
}

/** The API server calling a webhook, or another caller outside every pod network: only ipBlock peers (or none) admit it. */
export const FROM_OUTSIDE_PODS = 'outside-pods' as const;

export function podEndpoint(namespace: string, labels: Record<string, string>, pod: any): PodEndpoint {
  const namedPorts = new Map<string, number>();
  for (const container of containersOf(pod)) for (const port of container.ports ?? []) if (port.name) namedPorts.set(port.name, port.containerPort);
  return { namespace, labels, namedPorts };
}

/** Set by Kubernetes on every namespace: its name, which policies select namespaces by. */
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** Each namespace's labels as policies see them, the one Kubernetes sets included. */
export function namespaceLabels(namespaces: readonly Manifest[]): Map<string, Record<string, string>> {
  return new Map(namespaces.map((n) => [n.metadata.name, { ...n.metadata.labels, [NAMESPACE_NAME_LABEL]: n.metadata.name }]));
}

export class PolicySet {
  private readonly namespaceLabels: ReadonlyMap<string, Record<string, string>>;

  constructor(
    private readonly policies: readonly Manifest[],
    namespaces: readonly Manifest[],
  ) {
    this.namespaceLabels = namespaceLabels(namespaces);
  }

  /**
   * Why a TCP connection is refused (the direction and the policies in the way), or undefined if
   * it is allowed. `port` is the destination container's port number.
   */
  refusal(from: PodEndpoint | typeof FROM_OUTSIDE_PODS, to: PodEndpoint, port: number, protocol = 'TCP'): string | undefined {
    if (from !== FROM_OUTSIDE_PODS) {
      const egress = this.selecting(from, 'Egress');
      if (egress.length > 0 && !egress.some((p) => (p.spec.egress ?? []).some((rule: any) => this.ruleAdmits(p.metadata.namespace!, rule, rule.to, to, to, port, protocol)))) {
        return `egress from ${from.namespace}: no rule of the ${describe(egress)} selecting the pod admits it`;
      }
    }
    const ingress = this.selecting(to, 'Ingress');
    if (ingress.length > 0 && !ingress.some((p) => (p.spec.ingress ?? []).some((rule: any) => this.ruleAdmits(p.metadata.namespace!, rule, rule.from, from, to, port, protocol)))) {
      return `ingress to ${to.namespace}: no rule of the ${describe(ingress)} selecting the pod admits it`;
    }
    return undefined;
  }

  private selecting(pod: PodEndpoint, direction: 'Ingress' | 'Egress'): Manifest[] {
    return this.policies.filter((p) => p.metadata.namespace === pod.namespace && policyTypes(p).includes(direction) && labelsMatch(p.spec.podSelector, pod.labels));
  }

  /** A rule admits the peer if a peer entry matches it (none listed: any peer) and a port entry the port (none listed: any port). */
  private ruleAdmits(
    policyNamespace: string,
    rule: any,
    peers: any[] | undefined,
    peer: PodEndpoint | typeof FROM_OUTSIDE_PODS,
    destination: PodEndpoint,
    port: number,
    protocol: string,
  ): boolean {
    const portMatches =
      !rule.ports ||
      rule.ports.length === 0 ||
      rule.ports.some((p: any) => {
        if ((p.protocol ?? 'TCP') !== protocol) return false;
        if (p.port === undefined) return true;
        const start = typeof p.port === 'number' ? p.port : destination.namedPorts.get(p.port);
        return start !== undefined && port >= start && port <= (p.endPort ?? start);
      });
    if (!portMatches) return false;
    if (!peers || peers.length === 0) return true;
    return peers.some((entry) => {
      if (peer === FROM_OUTSIDE_PODS) return entry.ipBlock !== undefined;
      if (entry.ipBlock) return false;
      // A peer without a namespaceSelector is in the policy's own namespace.
      const namespaceOk = entry.namespaceSelector
        ? labelsMatch(
            entry.namespaceSelector,
            this.namespaceLabels.get(peer.namespace) ?? { [NAMESPACE_NAME_LABEL]: peer.namespace },
          )
        : peer.namespace === policyNamespace;
      return namespaceOk && (!entry.podSelector || labelsMatch(entry.podSelector, peer.labels));
    });
  }
}

function policyTypes(policy: Manifest): string[] {
  return policy.spec.policyTypes ?? ['Ingress', ...(policy.spec.egress ? ['Egress'] : [])];
}

/** A label selector (matchLabels and matchExpressions); an empty selector matches everything. */
export function labelsMatch(selector: any, labels: Readonly<Record<string, string>> = {}): boolean {
  if (!selector) return true;
  return (
    Object.entries((selector.matchLabels ?? {}) as Record<string, string>).every(([k, v]) => labels[k] === v) &&
    ((selector.matchExpressions ?? []) as any[]).every((e) => {
      const value = labels[e.key];
      if (e.operator === 'In') return value !== undefined && e.values.includes(value);
      if (e.operator === 'NotIn') return value === undefined || !e.values.includes(value);
      if (e.operator === 'Exists') return value !== undefined;
      if (e.operator === 'DoesNotExist') return value === undefined;
      return false;
    })
  );
}

/** The policies in the way, by name: all of a few, the count of many. */
function describe(policies: readonly Manifest[]): string {
  const names = policies.map((p) => p.metadata.name);
  return names.length <= 3 ? `policies ${names.join(', ')}` : `${names.length} policies (${names.slice(0, 2).join(', ')}, ...)`;
}
