/**
 * Finds the pod templates in an environment's objects: the built-in workload kinds, and the
 * templates inside the custom resources we write (RayCluster head and worker groups, the
 * RabbitmqCluster's image, resources, placement and StatefulSet override).
 */
import type { LintedObject, Workload } from './model';

/** Workload kinds whose pods run until stopped; their template is `spec.template`. */
const LONG_RUNNING: Readonly<Record<string, true>> = { Deployment: true, StatefulSet: true, DaemonSet: true, ReplicaSet: true };

export function workloadsOf(objects: readonly LintedObject[]): Workload[] {
  return objects.flatMap((object) => {
    const { kind, spec } = object.manifest;
    const namespace = object.manifest.metadata.namespace ?? 'default';
    if (!spec) return [];
    const of = (label: string, template: any, replicas: number, longRunning: boolean): Workload => ({
      object,
      label,
      namespace,
      replicas,
      longRunning,
      template: 'ours',
      podLabels: template?.metadata?.labels ?? {},
      pod: template?.spec ?? {},
    });
    if (LONG_RUNNING[kind]) return [of(kind, spec.template, kind === 'DaemonSet' ? 1 : spec.replicas ?? 1, true)];
    if (kind === 'Job') return [of(kind, spec.template, 1, false)];
    if (kind === 'CronJob') return [of(kind, spec.jobTemplate?.spec?.template, 1, false)];
    if (kind === 'RayCluster') return rayTemplates(object, of);
    if (kind === 'RabbitmqCluster') return [rabbitmqTemplate(object, namespace)];
    return [];
  });
}

type TemplateOf = (label: string, template: any, replicas: number, longRunning: boolean) => Workload;

/** The head and every worker group; a group counts at its autoscaling maximum. */
function rayTemplates(object: LintedObject, of: TemplateOf): Workload[] {
  const { headGroupSpec, workerGroupSpecs = [] } = object.manifest.spec;
  return [
    of('RayCluster head', headGroupSpec?.template, 1, true),
    ...(workerGroupSpecs as any[]).map((group) =>
      of(`RayCluster worker group ${group.groupName}`, group.template, Math.max(group.replicas ?? 1, group.maxReplicas ?? 1), true),
    ),
  ];
}

/**
 * The operator builds the StatefulSet (rabbitmq/cluster-operator internal/resource/statefulset.go):
 * the `rabbitmq` container from `spec.image` and `spec.resources`, pod labels
 * `app.kubernetes.io/name: <cluster>` and `app.kubernetes.io/component: rabbitmq`
 * (internal/metadata/label.go), and `spec.affinity`; `spec.override.statefulSet` is merged on top.
 */
function rabbitmqTemplate(object: LintedObject, namespace: string): Workload {
  const { spec, metadata } = object.manifest;
  const override = spec.override?.statefulSet?.spec?.template ?? {};
  const overridden = (override.spec?.containers ?? []) as any[];
  const broker = overridden.find((c) => c.name === 'rabbitmq') ?? {};
  const containers = [
    { ...broker, name: 'rabbitmq', image: broker.image ?? spec.image, resources: broker.resources ?? spec.resources },
    ...overridden.filter((c) => c.name !== 'rabbitmq'),
  ];
  return {
    object,
    label: 'RabbitmqCluster',
    namespace,
    replicas: spec.replicas ?? 1,
    longRunning: true,
    template: 'operator',
    podLabels: { ...override.metadata?.labels, 'app.kubernetes.io/name': metadata.name, 'app.kubernetes.io/component': 'rabbitmq' },
    pod: { ...override.spec, affinity: override.spec?.affinity ?? spec.affinity, containers },
  };
}


/** Whether every `matchLabels` entry of a selector is among the labels (an empty selector matches nothing). */
export function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector ?? {});
  return entries.length > 0 && entries.every(([key, value]) => labels[key] === value);
}
