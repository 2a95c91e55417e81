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

/**
 * The labels of a Job's pods (a checkpoint, a configurator). They share no selector label with
 * the service the Job works for: upstream Services and anti-affinity rules select by the
 * service's own `app.kubernetes.io/name` (the RabbitMQ operator's Services select
 * `app.kubernetes.io/name: <cluster>`), and a Job's pod carrying it would receive the service's
 * traffic or be counted as one of its replicas.
 */
export function jobPodLabels(service: ServiceIdentity, job: string, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': `homelab-${component}`,
    'app.kubernetes.io/instance': `${job}-${service.environment}`,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': PART_OF,
    'homelab.dev/service': service.name,
  };
}
