/**
 * What the node inventory in the config tells the services: where the GPUs are, how to
 * schedule onto those nodes, and how much CPU, memory and GPU the environment has.
 */
import type { NodeConfig } from './config/environment';
import { parseQuantity, sumCores } from '../util/quantity';

export interface Toleration {
  readonly key: string;
  readonly operator: 'Equal' | 'Exists';
  readonly value?: string;
  readonly effect: string;
}

/**
 * The GPU nodes of the inventory: which they are and the taints to tolerate there. Pods find
 * them by the label GPU discovery puts on them in the cluster (lib/model/gpu.ts), never by a
 * label the operator has to apply.
 */
export interface GpuPlacement {
  /** Names of the nodes with GPUs. */
  readonly nodes: readonly string[];
  /** Tolerations for the taints of the GPU nodes. */
  readonly tolerations: readonly Toleration[];
}

export interface Capacity {
  readonly cpuCores: number;
  readonly memoryBytes: number;
  readonly gpus: number;
  /** Most GPUs on a single node: a pod cannot use GPUs of two nodes. */
  readonly maxGpusPerNode: number;
}

export type Inventory = Readonly<Record<string, NodeConfig>>;

/**
 * @param gpuReplicas how many pods share one physical GPU (time-slicing): the device plugin
 *   advertises that many `nvidia.com/gpu` per GPU.
 */
/**
 * Nodes a pod without tolerations can run on: those without a NoSchedule or NoExecute taint.
 * (A required one-pod-per-node anti-affinity needs at least as many as replicas.)
 */
export function schedulableNodes(nodes: Inventory): string[] {
  return Object.entries(nodes)
    .filter(([, node]) => !node.taints.some((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute'))
    .map(([name]) => name);
}

export function capacityOf(nodes: Inventory, gpuReplicas = 1): Capacity {
  const all = Object.values(nodes);
  return {
    cpuCores: sumCores(all.map((n) => ({ quantity: n.cpu }))),
    memoryBytes: all.reduce((sum, n) => sum + parseQuantity(n.memory), 0),
    gpus: all.reduce((sum, n) => sum + n.gpus, 0) * gpuReplicas,
    maxGpusPerNode: Math.max(0, ...all.map((n) => n.gpus)) * gpuReplicas,
  };
}

/** Placement on the GPU nodes, or undefined when the inventory has none. */
export function gpuPlacement(nodes: Inventory): GpuPlacement | undefined {
  const entries = Object.entries(nodes);
  const gpuNodes = entries.filter(([, n]) => n.gpus > 0);
  if (gpuNodes.length === 0) return undefined;
  const names = gpuNodes.map(([name]) => name);
  const taints = new Map<string, Toleration>();
  for (const [, node] of gpuNodes) {
    for (const taint of node.taints) {
      const toleration: Toleration = taint.value === undefined
        ? { key: taint.key, operator: 'Exists', effect: taint.effect }
        : { key: taint.key, operator: 'Equal', value: taint.value, effect: taint.effect };
      taints.set(JSON.stringify(toleration), toleration);
    }
  }
  return { nodes: names, tolerations: [...taints.values()] };
}
