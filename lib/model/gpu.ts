import { k8s } from 'cdk8s-plus-34';
import { HomelabService } from './service';

/** The extended resource a pod requests GPUs with. */
export const GPU_RESOURCE = 'nvidia.com/gpu';

/**
 * Node labels GPU discovery sets in the cluster, so that no operator labels a node by hand.
 * `nvidia.com/gpu.present=true`: Node Feature Discovery's rule for an NVIDIA display or 3D
 * controller on the node's PCI bus (the device plugin's, charts/nvidia-device-plugin.ts) — the
 * hardware, before any driver. The others: GPU Feature Discovery, from NVML once the driver
 * and the container toolkit work (NVIDIA/k8s-device-plugin v0.20.0 internal/lm/resource.go:
 * `<resource>.product`, `.count`, `.memory` in MiB, `.replicas`; the ones the platform reads here).
 */
export const GPU_LABELS = {
  present: 'nvidia.com/gpu.present',
  product: 'nvidia.com/gpu.product',
  count: 'nvidia.com/gpu.count',
} as const;

/** Where GPU pods must run: affinity to the discovered GPU nodes and tolerations for their taints. */
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
