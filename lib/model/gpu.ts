import { k8s } from 'cdk8s-plus-28';
import { HomelabService } from './service';

/** The extended resource a pod requests GPUs with. */
export const GPU_RESOURCE = 'nvidia.com/gpu';

/** Where GPU pods must run: affinity to the GPU nodes and tolerations for their taints. */
export interface GpuScheduling {
  readonly affinity: k8s.Affinity;
  /** For the GPU nodes' taints; undefined when they have none. */
  readonly tolerations?: k8s.Toleration[];
}

/**
 * A service that makes the nodes' GPUs schedulable (the NVIDIA device plugin). GPU consumers
 * take it as a typed prop: that orders them after it and gives them its RuntimeClass and
 * the placement on the GPU nodes.
 */
export interface GpuProvider extends HomelabService {
  /** RuntimeClass of the NVIDIA container runtime. */
  readonly runtimeClassName: string;
  /** Pods that share one physical GPU (time-slicing); 1 without sharing. */
  readonly gpuReplicas: number;
  readonly gpuScheduling: GpuScheduling;
}

export function isGpuProvider(service: HomelabService): service is GpuProvider {
  return 'gpuReplicas' in service && 'runtimeClassName' in service && 'gpuScheduling' in service;
}
