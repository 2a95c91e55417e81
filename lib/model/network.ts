/**
 * Network declarations of the service model, from which NetworkPolicies are derived
 * (lib/passes/network-policies.ts): the ports a service serves to the services that reference it,
 * and the ports the Kubernetes API server calls (admission webhooks, aggregated APIs).
 */
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
}

export function isNetworkPolicyProvider(service: HomelabService): service is NetworkPolicyProvider {
  return 'apiServerSources' in service;
}
