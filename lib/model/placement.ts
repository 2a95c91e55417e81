/** Where a workload's pods go: spread over the nodes, so that losing one node loses one replica. */
import type { k8s } from 'cdk8s-plus-34';

/** Preferably one pod of `selector` per node (kubernetes.io/hostname): never Pending for want of nodes. */
export function spreadOverNodes(selector: Readonly<Record<string, string>>): k8s.Affinity {
  return {
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { ...selector } } } },
      ],
    },
  };
}
