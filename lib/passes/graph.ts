/**
 * The dependency graph of one environment: construct references between services (and the
 * dependencies derived from the declarations), plus an edge to the provider of everything a
 * service needs before its Application can become Healthy (lib/passes/needs.ts): the CRDs and
 * webhooks of the custom resources it emits, the Secrets, claims, storage classes and issuers
 * it reads, the secret backend of its ExternalSecrets.
 */
import { isExposureRouter } from '../model/exposure';
import { LAYER_ORDER } from '../model/layers';
import { Platform } from '../model/platform';
import { HomelabService } from '../model/service';
import { analyseNeeds, NeedAnalysis } from './needs';
import type { GraphNode, WaveMode } from './waves';

/** A service in the graph, with the dependencies that come only from its needs told apart. */
export interface ServiceNode extends GraphNode {
  /** The part of `dependsOn` that no construct reference explains: providers of what the service needs (CRDs, Secrets ...). */
  readonly needDependsOn: readonly string[];
}

export interface DependencyGraph {
  /** One node per service, in platform order. */
  readonly nodes: ServiceNode[];
  /** Requirements no enabled service meets yet (see ServiceSettings.requiresCrdGroups). */
  readonly warnings: string[];
  /** What every service needs and who provides it, which the waves must honour. */
  readonly needs: NeedAnalysis;
}

/**
 * With `waves: sequential`, a need whose provider sits in a later layer gets no edge (it would
 * point backwards): `checkNeeds` reports it once the waves exist, naming the need.
 */
export function dependencyGraph(platform: Platform, mode: WaveMode = 'dependencies'): DependencyGraph {
  const installers = crdInstallers(platform);
  const needs = analyseNeeds(platform);
  const byName = new Map(platform.services.map((s) => [s.serviceName, s]));
  const comesLater = (provider: HomelabService, service: HomelabService) =>
    mode === 'sequential' && LAYER_ORDER.indexOf(provider.layer) > LAYER_ORDER.indexOf(service.layer);
  const warnings: string[] = [];
  const nodes = platform.services.map((service) => {
    for (const group of needs.customResourceGroups.get(service.serviceName)!) {
      if (!installers.has(group)) throw new Error(`${service.serviceName} emits ${group} resources, but no enabled service installs that CRD group`);
    }
    for (const group of service.requiresCrdGroups) {
      if (!installers.has(group)) warnings.push(`${service.serviceName} needs ${group} resources, which no enabled service installs yet`);
    }
    const references = new Set([...service.dependencies, ...derivedDependencies(platform, service)].map((d) => d.serviceName));
    const dependsOn = new Set(references);
    for (const need of needs.needs.get(service.serviceName)!) {
      const provider = byName.get(needs.provider(need)?.service ?? '');
      if (provider && provider !== service && !comesLater(provider, service)) dependsOn.add(provider.serviceName);
    }
    const sorted = [...dependsOn].sort();
    return {
      name: service.serviceName,
      layer: service.layer,
      dependsOn: sorted,
      needDependsOn: sorted.filter((d) => !references.has(d)),
      ...(service.awaitsOperator !== undefined && { awaitsOperator: true }),
    };
  });
  return { nodes, warnings, needs };
}

/**
 * Dependencies that follow from what the others declare: the router syncs after every service
 * whose exposures it routes (its routes point at their Services). Like `dependOn`, they order
 * without implying traffic from the dependent.
 */
function derivedDependencies(platform: Platform, service: HomelabService): HomelabService[] {
  if (!isExposureRouter(service)) return [];
  return platform.services.filter((other) => other !== service && other.exposures.length > 0);
}

function crdInstallers(platform: Platform): Map<string, HomelabService> {
  const installers = new Map<string, HomelabService>();
  for (const service of platform.services) {
    for (const group of service.installsCrdGroups) {
      const other = installers.get(group);
      if (other) throw new Error(`both ${other.serviceName} and ${service.serviceName} install CRD group ${group}`);
      installers.set(group, service);
    }
  }
  return installers;
}
