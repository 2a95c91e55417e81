/** High availability of workloads that run more than one pod: a disruption budget and spreading. */
import type { Rule, Workload } from '../model';
import { selects } from '../workloads';

const replicated = (w: Workload) => w.replicas > 1;

export const AVAILABILITY_RULES: readonly Rule[] = [
  {
    id: 'missingPodDisruptionBudget',
    source: 'Polaris; kube-score deployment-has-poddisruptionbudget',
    description: 'a workload with more than one replica has a PodDisruptionBudget selecting its pods',
    check: (env) => {
      const budgets = env.objects.filter((o) => o.manifest.kind === 'PodDisruptionBudget');
      return env.workloads.filter(replicated).flatMap((w) => {
        const covered = budgets.some(
          (b) => (b.manifest.metadata.namespace ?? 'default') === w.namespace && selects(b.manifest.spec?.selector?.matchLabels, w.podLabels),
        );
        return covered ? [] : [{ object: w.object, message: `${w.label} runs ${w.replicas} replicas without a PodDisruptionBudget selecting its pods` }];
      });
    },
  },
  {
    id: 'no-anti-affinity',
    source: 'kube-linter; kube-score deployment-has-host-podantiaffinity',
    description: 'a workload with more than one replica spreads its pods over nodes (pod anti-affinity on its own labels)',
    check: (env) =>
      env.workloads.filter(replicated).flatMap((w) => {
        const anti = w.pod.affinity?.podAntiAffinity ?? {};
        const terms = [
          ...(anti.requiredDuringSchedulingIgnoredDuringExecution ?? []),
          ...(anti.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((p: any) => p.podAffinityTerm),
        ];
        const spread = terms.some((term: any) => selects(term?.labelSelector?.matchLabels, w.podLabels));
        return spread ? [] : [{ object: w.object, message: `${w.label} runs ${w.replicas} replicas without a pod anti-affinity on its own labels` }];
      }),
  },
];
