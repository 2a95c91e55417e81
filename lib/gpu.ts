import { HomelabService } from './service';

/**
 * A service that makes the nodes' GPUs schedulable (the NVIDIA device plugin). GPU consumers
 * take it as a typed prop: that orders them after it and gives them its RuntimeClass.
 */
export interface GpuProvider extends HomelabService {
  /** RuntimeClass of the NVIDIA container runtime. */
  readonly runtimeClassName: string;
  /** Pods that share one physical GPU (time-slicing); 1 without sharing. */
  readonly gpuReplicas: number;
}

export function isGpuProvider(service: HomelabService): service is GpuProvider {
  return 'gpuReplicas' in service && 'runtimeClassName' in service;
}
