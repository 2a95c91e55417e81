/**
 * Selectors that must find something: a Service's pods, a ServiceMonitor's Services and a
 * PodMonitor's pods — in the tree (with the pods operators make from the custom resources in
 * it, lib/tools/render/operators.ts), or for monitors of upstream charts' objects (rendered by
 * Argo CD, not in k8s/), the verified label set its catalog entry declares (`upstreamTargets`).
 */
import { operatorProducts } from '../../render/operators';
import type { Environment, Finding, LintedObject, Rule } from '../model';
import { selects } from '../workloads';

const namespaceOf = (object: LintedObject) => object.manifest.metadata.namespace ?? 'default';

interface Target {
  readonly namespace: string;
  readonly labels: Record<string, string>;
  readonly ports: readonly string[];
}

function serviceTargets(env: Environment): Target[] {
  return env.objects
    .filter((o) => o.manifest.kind === 'Service')
    .map((o) => ({ namespace: namespaceOf(o), labels: o.manifest.metadata.labels ?? {}, ports: ((o.manifest.spec?.ports ?? []) as any[]).map((p) => p.name) }));
}

function podTargets(env: Environment): Target[] {
  const ours = env.workloads.map((w) => ({ namespace: w.namespace, labels: w.podLabels, pod: w.pod }));
  // Operators run their pods as StatefulSets (CloudNativePG's instances of our Clusters among them).
  const made = operatorProducts(env.objects.map((o) => ({ application: o.service, source: o.file, manifest: o.manifest })))
    .filter(({ manifest }) => manifest.kind === 'StatefulSet')
    .map(({ manifest }) => ({ namespace: manifest.metadata.namespace ?? 'default', labels: manifest.spec.template.metadata.labels, pod: manifest.spec.template.spec }));
  return [...ours, ...made].map(({ namespace, labels, pod }) => ({
    namespace,
    labels,
    ports: ((pod.containers ?? []) as any[]).flatMap((c) => ((c.ports ?? []) as any[]).map((p) => p.name)),
  }));
}

/** A monitor's problem, or undefined when it selects a target with its port. */
function danglingMonitor(monitor: LintedObject, targets: readonly Target[], env: Environment): string | undefined {
  const { metadata, spec } = monitor.manifest;
  const selector = spec?.selector?.matchLabels;
  const ports = ((spec?.endpoints ?? spec?.podMetricsEndpoints ?? []) as any[]).map((e) => e.port);
  const upstream = env.upstreamTargets[metadata.name];
  if (upstream && equalLabels(upstream.selector, selector) && ports.every((p) => p === upstream.port)) return undefined;
  const namespaces: string[] = spec?.namespaceSelector?.matchNames ?? [namespaceOf(monitor)];
  const selected = targets.filter((t) => namespaces.includes(t.namespace) && selects(selector, t.labels));
  const what = monitor.manifest.kind === 'ServiceMonitor' ? 'Service' : 'pod';
  if (selected.length === 0) {
    return `selects no ${what} in ${namespaces.join(', ')} (${JSON.stringify(selector ?? {})}) and is not a verified upstream target of its service's catalog entry`;
  }
  const missing = ports.filter((port) => !selected.some((t) => t.ports.includes(port)));
  return missing.length > 0 ? `no selected ${what} has port ${missing.join(', ')}` : undefined;
}

function equalLabels(a: Readonly<Record<string, string>>, b: Record<string, string> | undefined): boolean {
  const keys = Object.keys(a);
  return b !== undefined && keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

function monitorRule(id: string, kind: 'ServiceMonitor' | 'PodMonitor', targetsOf: (env: Environment) => Target[]): Rule {
  return {
    id,
    source: kind === 'ServiceMonitor' ? 'kube-linter' : 'kube-linter dangling-servicemonitor, for PodMonitors',
    description: `every ${kind} selects one of our ${kind === 'ServiceMonitor' ? 'Services' : 'pods'} with its port, or a verified upstream target`,
    check: (env) => {
      const targets = targetsOf(env);
      return env.objects
        .filter((o) => o.manifest.kind === kind)
        .flatMap((monitor): Finding[] => {
          const problem = danglingMonitor(monitor, targets, env);
          return problem ? [{ object: monitor, message: problem }] : [];
        });
    },
  };
}

export const SELECTOR_RULES: readonly Rule[] = [
  {
    id: 'dangling-service',
    source: 'kube-linter',
    description: "every Service with a selector selects the pods of a workload in its namespace",
    check: (env) =>
      env.objects
        .filter((o) => o.manifest.kind === 'Service' && Object.keys(o.manifest.spec?.selector ?? {}).length > 0)
        .filter((service) => !env.workloads.some((w) => w.namespace === namespaceOf(service) && selects(service.manifest.spec.selector, w.podLabels)))
        .map((service) => ({ object: service, message: `selector ${JSON.stringify(service.manifest.spec.selector)} matches no pod template in namespace ${namespaceOf(service)}` })),
  },
  monitorRule('dangling-servicemonitor', 'ServiceMonitor', serviceTargets),
  monitorRule('dangling-podmonitor', 'PodMonitor', podTargets),
];
