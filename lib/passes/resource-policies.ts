/** Argo CD behaviour that follows from what a resource is, the same for every service. */
import { addSyncOption, hasSyncWave, isHook, setSyncWave } from '../model/argocd';
import type { Platform } from '../model/platform';
import type { HomelabService } from '../model/service';
import { apiGroup, DependencyGraph } from './graph';

export function applyResourcePolicies(platform: Platform, graph: DependencyGraph): void {
  for (const service of platform.services) applyTo(service, graph.lateCrdGroups.get(service.serviceName));
}

function applyTo(service: HomelabService, lateCrdGroups: ReadonlySet<string> = new Set()): void {
  for (const object of service.apiObjects) {
    const group = apiGroup(object.apiVersion);
    // Sequential waves: the CRD comes with a later layer; apply without dry run, retry until it exists.
    if (lateCrdGroups.has(group)) addSyncOption(object, 'SkipDryRunOnMissingResource=true');
    // A PVC holds data: never let a prune or an app deletion remove it.
    if (object.kind === 'PersistentVolumeClaim' && !isHook(object)) addSyncOption(object, 'Delete=false');
    // The CRDs of these come from the service's own chart in the same sync: they cannot be
    // dry-run before the CRD exists, and they go after the chart's resources.
    if (service.installsCrdGroups.includes(group)) {
      addSyncOption(object, 'SkipDryRunOnMissingResource=true');
      if (!hasSyncWave(object)) setSyncWave(object, 1);
    }
  }
}
