/**
 * The secret-delivery pass: every Secret a service declared (`needSecret`) is, where the
 * platform has a secret backend and a delivery service (Vault and External Secrets), delivered
 * into the consumer's namespace by objects the delivery service emits, and the backend grants
 * each consumer read access to its own values only (docs/adr/0010).
 *
 * Where the objects live: a consumer that must be up before the delivery service exists (in
 * the dependency closure of the backend or the delivery service, e.g. Longhorn whose volumes
 * Vault uses, or in a layer before theirs with `waves: sequential`) cannot wait for it; its
 * delivery objects are rendered into the delivery service's folder (they sync after it, into
 * the consumer's namespace). So are those of a consumer that needs none of its Secrets to start
 * (`needSecret(..., { neededToStart: false })`: cert-manager's DNS-01 token), which then need not
 * wait for the delivery service and Vault. Every other consumer carries them in its own folder,
 * and the CRD edge orders it after the delivery service.
 */
import { LAYER_ORDER } from '../model/layers';
import type { Platform } from '../model/platform';
import { isSecretBackend, isSecretDelivery, SecretNeed } from '../model/secrets';
import type { HomelabService } from '../model/service';
import { DependencyGraph, dependencyGraph } from './graph';
import { byCodeUnits } from '../util/text-order';

/** One declared Secret and where its value comes from, for the operator (synth summary). */
export interface SecretNeedSource extends SecretNeed {
  /** Where the operator puts its values (`Vault homelab/<service>/<secret>`); undefined: create the Secret by hand. */
  readonly source?: string;
  /** The service whose Argo CD Application carries the delivery objects. */
  readonly deliveredBy?: string;
}

/**
 * Emits the delivery of every declared Secret and grants the backend access; returns every
 * need with its source, by namespace and name. Runs before the final dependency graph: the
 * graph before delivery tells which consumers cannot wait for the delivery service.
 */
export function deliverSecrets(platform: Platform): SecretNeedSource[] {
  const delivery = platform.services.find(isSecretDelivery);
  const consumers = platform.services.filter((s) => s.secretNeeds.length > 0);
  let sources: SecretNeedSource[];
  if (!delivery) {
    // A backend alone still gets configured; the Secrets are made by hand.
    for (const backend of platform.services.filter(isSecretBackend)) backend.grantAccess([]);
    sources = consumers.flatMap((s) => s.secretNeeds.map((need) => ({ ...need })));
  } else {
    const early = cannotWaitFor(delivery, platform, dependencyGraph(platform, platform.config.waves));
    sources = [];
    for (const consumer of consumers) {
      // A service that needs none of its Secrets to start does not wait for the delivery (nor for Vault's unsealing).
      const host = early.has(consumer.serviceName) || !consumer.secretNeeds.some((need) => need.neededToStart) ? delivery : consumer;
      delivery.deliverTo(consumer, host);
      for (const need of consumer.secretNeeds) sources.push({ ...need, source: delivery.backend.locationOf(need), deliveredBy: host.serviceName });
    }
    delivery.backend.grantAccess(consumers, delivery.probe);
  }
  return sources.sort((a, b) => byCodeUnits(a.namespace, b.namespace) || byCodeUnits(a.name, b.name));
}

/**
 * Services that sync before the delivery service can deliver to them: the backend's and the
 * delivery service's own dependencies (transitively), and with `waves: sequential` every
 * service of an earlier layer (a later-layer CRD would leave their sync failing until the
 * wave never comes).
 */
function cannotWaitFor(delivery: HomelabService & { readonly backend: HomelabService }, platform: Platform, graph: DependencyGraph): Set<string> {
  const dependsOn = new Map(graph.nodes.map((n) => [n.name, n.dependsOn]));
  const early = new Set<string>();
  const visit = (name: string) => {
    for (const dep of dependsOn.get(name) ?? []) {
      if (!early.has(dep)) {
        early.add(dep);
        visit(dep);
      }
    }
  };
  visit(delivery.backend.serviceName);
  visit(delivery.serviceName);
  if (platform.config.waves === 'sequential') {
    const layer = LAYER_ORDER.indexOf(delivery.layer);
    for (const service of platform.services) if (LAYER_ORDER.indexOf(service.layer) < layer) early.add(service.serviceName);
  }
  return early;
}
