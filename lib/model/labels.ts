/** Recommended Kubernetes labels, set explicitly so nothing depends on construct paths. */

export const PART_OF = 'homelab';
export const MANAGED_BY = 'homelab-platform';

export interface ServiceIdentity {
  /** Service name, e.g. `longhorn`; also its Argo CD Application name. */
  readonly name: string;
  /** Environment name, e.g. `prod`. */
  readonly environment: string;
}

/** Labels every resource of a service carries. */
export function serviceLabels(service: ServiceIdentity, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': service.name,
    'app.kubernetes.io/instance': `${service.name}-${service.environment}`,
    'app.kubernetes.io/part-of': PART_OF,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/managed-by': MANAGED_BY,
  };
}

/** The labels a workload's pods are selected by: stable, and never derived from a path. */
export function selectorLabels(service: ServiceIdentity, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': service.name,
    'app.kubernetes.io/instance': `${service.name}-${service.environment}`,
    'app.kubernetes.io/component': component,
  };
}
