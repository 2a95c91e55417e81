/** Argo CD behaviour that follows from what a resource is, the same for every service. */
import { addSyncOption, hasSyncWave, isHook, setSyncWave } from '../model/argocd';
import type { Platform } from '../model/platform';
import type { HomelabService } from '../model/service';
import { apiGroup, DependencyGraph, ownCustomResources } from './graph';

export function applyResourcePolicies(platform: Platform, graph: DependencyGraph): void {
  for (const service of platform.services) applyTo(service, graph.lateCrdGroups.get(service.serviceName));
}

function applyTo(service: HomelabService, lateCrdGroups: ReadonlySet<string> = new Set()): void {
  // Sequential waves: the CRD comes with a later layer; apply without dry run, retry until it exists.
  for (const object of service.apiObjects.filter((o) => lateCrdGroups.has(apiGroup(o.apiVersion)))) {
    addSyncOption(object, 'SkipDryRunOnMissingResource=true');
  }
  for (const object of service.apiObjects) {
    // A PVC holds data: never let a prune or an app deletion remove it.
    if (object.kind === 'PersistentVolumeClaim' && !isHook(object)) addSyncOption(object, 'Delete=false');
  }
  // The CRDs of these come from the service's own chart in the same sync: they cannot be
  // dry-run before the CRD exists, and they go after the chart's resources.
  for (const object of ownCustomResources(service)) {
    addSyncOption(object, 'SkipDryRunOnMissingResource=true');
    if (!hasSyncWave(object)) setSyncWave(object, 1);
  }
}
