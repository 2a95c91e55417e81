/** Argo CD annotations on individual resources. */
import { ApiObject } from 'cdk8s';

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
