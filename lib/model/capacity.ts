/** Capacity as a declaration of the service model: what a service's workloads request. */

/**
 * How a service that can use GPUs runs in this environment: on the GPUs a GPU provider
 * advertises, or on CPUs only where the environment has none (docs/adr/0029).
 */
export interface ComputeMode {
  readonly service: string;
  readonly mode: 'gpu' | 'cpu';
  /** What that means for the service, e.g. `CPU instance group` or `without GPU worker group gpu`. */
  readonly detail: string;
}

/**
 * Which nodes a workload's pods may run on, as far as the nodes' taints decide it: `schedulable`
 * (no toleration: the nodes without a NoSchedule or NoExecute taint), `gpu-nodes` (the GPU
 * provider's affinity and tolerations: GPU workloads, the device plugin, GPU discovery and the
 * GPU exporter), `every-node` (a DaemonSet with a pod on each node, tainted ones included: counted
 * on every node, which over-counts one that does not tolerate a node's NoExecute taint).
 */
export type DemandPlacement = 'schedulable' | 'gpu-nodes' | 'every-node';

/** What one workload of a service requests in total: per replica times replicas. */
export interface ResourceDemand {
  readonly service: string;
  /** The workload, e.g. `triton` or `ray gpu workers`. */
  readonly workload: string;
  /** Replicas at most (autoscaled groups count at their maximum). */
  readonly replicas: number;
  /** Per replica. */
  readonly cpu: string;
  /** Per replica. */
  readonly memory: string;
  /** Per replica. @default 0 */
  readonly gpus?: number;
  /** @default `gpu-nodes` with GPUs, else `schedulable` */
  readonly placement?: DemandPlacement;
}

/** Where a demand's pods may run (its own placement, else by whether it requests GPUs). */
export function placementOf(demand: ResourceDemand): DemandPlacement {
  return demand.placement ?? ((demand.gpus ?? 0) > 0 ? 'gpu-nodes' : 'schedulable');
}
