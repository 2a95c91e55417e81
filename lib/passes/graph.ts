/**
 * The dependency graph of one environment: construct references between services (and the
 * dependencies derived from the declarations), plus
 * an edge to the service that installs the CRD of every custom resource a service emits.
 */
import { Platform } from '../model/platform';
import { HomelabService } from '../model/service';
import { isExposureRouter } from '../model/exposure';
import { LAYER_ORDER } from '../model/layers';
import type { GraphNode, WaveMode } from './waves';

/** API group of an apiVersion (`apps/v1` -> `apps`, `v1` -> ``). */
export function apiGroup(apiVersion: string): string {
  return apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
}

/** Groups served by Kubernetes itself, never by a CRD of ours. */
export function isBuiltInGroup(group: string): boolean {
  return !group.includes('.') || group.endsWith('.k8s.io');
}

/** A service in the graph, with the dependencies that come only from CRD edges told apart. */
export interface ServiceNode extends GraphNode {
  /** The part of `dependsOn` that no construct reference explains: the service installs CRDs this one uses. */
  readonly crdDependsOn: readonly string[];
}

export interface DependencyGraph {
  /** One node per service, in platform order. */
  readonly nodes: ServiceNode[];
  /** Requirements no enabled service meets yet (see ServiceSettings.requiresCrdGroups). */
  readonly warnings: string[];
  /**
   * `waves: sequential` only: per service, the CRD groups of custom resources it emits whose
   * installer sits in a later layer. No edge (it would point backwards); the resources skip
   * the dry run and are retried until their CRD arrives.
   */
  readonly lateCrdGroups: ReadonlyMap<string, ReadonlySet<string>>;
}

export function dependencyGraph(platform: Platform, mode: WaveMode = 'dependencies'): DependencyGraph {
  const installers = crdInstallers(platform);
  const warnings: string[] = [];
  const lateCrdGroups = new Map<string, Set<string>>();
  const comesLater = (installer: HomelabService, service: HomelabService) =>
    mode === 'sequential' && LAYER_ORDER.indexOf(installer.layer) > LAYER_ORDER.indexOf(service.layer);
  const nodes = platform.services.map((service) => {
    const references = new Set([...service.dependencies, ...derivedDependencies(platform, service)].map((d) => d.serviceName));
    const dependsOn = new Set(references);
    for (const group of customResourceGroups(service)) {
      const installer = installers.get(group);
      if (!installer) {
        throw new Error(`${service.serviceName} emits ${group} resources, but no enabled service installs that CRD group`);
      }
      if (installer === service) continue;
      if (comesLater(installer, service)) {
        lateCrdGroups.set(service.serviceName, new Set([...(lateCrdGroups.get(service.serviceName) ?? []), group]));
      } else {
        dependsOn.add(installer.serviceName);
      }
    }
    for (const group of service.requiresCrdGroups) {
      const installer = installers.get(group);
      if (!installer) {
        warnings.push(`${service.serviceName} needs ${group} resources, which no enabled service installs yet`);
      } else if (comesLater(installer, service)) {
        // Upstream manifests cannot be annotated: their sync fails until the later layer is up.
        warnings.push(`${service.serviceName} needs ${group} resources, which ${installer.serviceName} installs in a later layer (waves: sequential)`);
      } else {
        dependsOn.add(installer.serviceName);
      }
    }
    const sorted = [...dependsOn].sort();
    return { name: service.serviceName, layer: service.layer, dependsOn: sorted, crdDependsOn: sorted.filter((d) => !references.has(d)) };
  });
  return { nodes, warnings, lateCrdGroups };
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

function customResourceGroups(service: HomelabService): Set<string> {
  return new Set(service.apiObjects.map((o) => apiGroup(o.apiVersion)).filter((g) => !isBuiltInGroup(g)));
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
