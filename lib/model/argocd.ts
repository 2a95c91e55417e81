/** What the model knows of Argo CD, which syncs every service: its namespace, its annotations on resources. */
import { ApiObject } from 'cdk8s';
import type { HomelabService } from './service';

/** Namespace Argo CD runs in and keeps its Applications in. */
export const ARGOCD_NAMESPACE = 'argocd';

/** API group of Argo CD's own CRDs (Application, AppProject). */
export const ARGOCD_GROUP = 'argoproj.io';

/**
 * Argo CD's kinds that decide what gets deployed where: only the root creates them (its project
 * admits the first two); the children's projects deny all three (docs/adr/0022).
 */
export const ARGOCD_CONTROL_KINDS = ['Application', 'AppProject', 'ApplicationSet'] as const;

/** The AppProjects of an environment: the root's, the platform's services', the operator's own apps'. */
export function projectNames(environment: string): { readonly root: string; readonly platform: string; readonly apps: string } {
  return { root: `root-${environment}`, platform: `platform-${environment}`, apps: `apps-${environment}` };
}

/**
 * Argo CD itself, the service that installs its CRDs: its Application must not cascade a
 * deletion, and its values are also the ones of the one-time bootstrap install.
 */
export function isGitOpsEngine(service: HomelabService): boolean {
  return service.installsCrdGroups.includes(ARGOCD_GROUP);
}

const SYNC_OPTIONS = 'argocd.argoproj.io/sync-options';
const SYNC_WAVE = 'argocd.argoproj.io/sync-wave';
const HOOK = 'argocd.argoproj.io/hook';

/** Adds a sync option (e.g. `Delete=false`), keeping the ones already set. */
export function addSyncOption(object: ApiObject, option: string): void {
  const current = annotationsOf(object)[SYNC_OPTIONS];
  const options = current ? current.split(',') : [];
  if (!options.includes(option)) options.push(option);
  object.metadata.addAnnotation(SYNC_OPTIONS, options.join(','));
}

export function setSyncWave(object: ApiObject, wave: number): void {
  object.metadata.addAnnotation(SYNC_WAVE, String(wave));
}

export function hasSyncWave(object: ApiObject): boolean {
  return SYNC_WAVE in annotationsOf(object);
}

export function isHook(object: ApiObject): boolean {
  return HOOK in annotationsOf(object);
}

function annotationsOf(object: ApiObject): Record<string, string> {
  return object.metadata.toJson().annotations ?? {};
}
