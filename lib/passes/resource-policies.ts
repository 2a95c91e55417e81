/** Argo CD behaviour that follows from what a resource is, the same for every service. */
import { addSyncOption, hasSyncWave, isHook, setSyncWave } from '../model/argocd';
import { apiGroup } from '../model/needs';
import type { Platform } from '../model/platform';
import type { HomelabService } from '../model/service';

export function applyResourcePolicies(platform: Platform): void {
  for (const service of platform.services) applyTo(service);
}

function applyTo(service: HomelabService): void {
  for (const object of service.apiObjects) {
    const group = apiGroup(object.apiVersion);
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
