/**
 * The capacity check: what an environment's services request (CPU, memory, GPUs) must fit
 * its node inventory. Run at synth time, so an impossible plan fails before anything is
 * written rather than as Pending pods.
 */
import { UserError } from '../util/errors';
import { ComputeMode, placementOf, ResourceDemand } from '../model/capacity';
import { Capacity, capacityOf, Inventory, schedulableNodes } from '../model/inventory';
import { formatCores, formatGibibytes, parseQuantity, sumCores } from '../util/quantity';

/** Consumers named in a capacity error; the rest are counted. */
const MAX_LISTED = 8;

export interface CapacityReport {
  readonly requested: { readonly cpuCores: number; readonly memoryBytes: number; readonly gpus: number };
  readonly available: Capacity;
  /** How each service that can use GPUs runs here (GPU or CPU only), by service name. */
  readonly computeModes: readonly ComputeMode[];
}

/** `triton on CPU (CPU instance group)`, as the summary and capacity errors say it. */
export function describeComputeMode(mode: ComputeMode): string {
  return `${mode.service} on ${mode.mode.toUpperCase()} (${mode.detail})`;
}

/**
 * @param gpuReplicas time-slices per physical GPU (see GpuProvider).
 * @param computeModes how the services that can use GPUs run: named in a capacity error, since
 *   a CPU-only environment's plan differs from a GPU one's. @default none
 */
export function checkCapacity(demands: readonly ResourceDemand[], nodes: Inventory, gpuReplicas = 1, computeModes: readonly ComputeMode[] = []): CapacityReport {
  const available = capacityOf(nodes, gpuReplicas);
  const requested = requestedBy(demands);
  const problems: string[] = [];
  const over = (what: string, need: number, have: string, show: (n: number) => string, per: (d: ResourceDemand) => number) => {
    problems.push(`${what}: the services request ${show(need)}, the nodes have ${have} (${consumers(demands, per, show)})`);
  };
  if (requested.gpus > available.gpus) {
    const physical = available.gpus / gpuReplicas;
    const have = gpuReplicas > 1 ? `${available.gpus} (${physical} GPUs time-sliced ${gpuReplicas} ways)` : String(available.gpus);
    over('gpus', requested.gpus, have, String, (d) => d.gpus ?? 0);
  }
  if (requested.cpuCores > available.cpuCores) {
    const cores = (n: number) => `${formatCores(n)} cores`;
    over('cpu', requested.cpuCores, cores(available.cpuCores), cores, (d) => parseQuantity(d.cpu));
  }
  if (requested.memoryBytes > available.memoryBytes) {
    over('memory', requested.memoryBytes, formatGibibytes(available.memoryBytes), formatGibibytes, (d) => parseQuantity(d.memory));
  }
  problems.push(...taintedNodesProblems(demands, nodes));
  for (const d of demands) {
    if (gpuReplicas > 1 && (d.gpus ?? 0) > 1) {
      problems.push(`gpus: ${d.service}/${d.workload} requests ${d.gpus} GPUs per pod; time-sliced GPUs are handed out one per pod`);
    } else if ((d.gpus ?? 0) > available.maxGpusPerNode) {
      problems.push(`gpus: ${d.service}/${d.workload} needs ${d.gpus} GPUs in one pod, the largest node has ${available.maxGpusPerNode}`);
    }
  }
  if (problems.length > 0) {
    // Context, not a problem of its own: whether a service runs on GPUs or CPUs decides what it requests.
    const modes = computeModes.length > 0 ? [`nodes: the requests above are for ${computeModes.map(describeComputeMode).join(', ')}`] : [];
    throw new UserError([...problems.map((p) => `nodes: ${p}`), ...modes]);
  }
  return { requested, available, computeModes };
}

/**
 * Where nodes are tainted (NoSchedule, NoExecute), the pods that tolerate no taint must fit the
 * untainted nodes, and together with the GPU workloads (which keep to the GPU nodes) the
 * untainted and GPU nodes, each beside the share of the DaemonSets that run on every node. The
 * first pool takes the GPU workloads too where the GPU nodes are among its nodes.
 */
function taintedNodesProblems(demands: readonly ResourceDemand[], nodes: Inventory): string[] {
  const all = Object.keys(nodes);
  const untainted = schedulableNodes(nodes);
  if (untainted.length === all.length) return [];
  const gpuNodes = all.filter((name) => nodes[name].gpus > 0);
  const gpuNodesUntainted = gpuNodes.every((name) => untainted.includes(name));
  const withGpuNodes = [...new Set([...untainted, ...gpuNodes])];
  const pools = [
    { names: untainted, gpuWorkloads: gpuNodesUntainted, where: 'the nodes without a NoSchedule or NoExecute taint' },
    // Needed only where it differs from the first pool and from all nodes (the total check).
    ...(gpuNodesUntainted || withGpuNodes.length === all.length ? [] : [{ names: withGpuNodes, gpuWorkloads: true, where: 'the nodes without such a taint and the GPU nodes' }]),
  ];
  return pools.flatMap((pool) => poolProblems(demands, nodes, pool.names, pool.gpuWorkloads, `${pool.where} (${pool.names.join(', ') || 'none'})`));
}

/** Problems of the demands that may run only on `names` (with or without the GPU workloads) against those nodes. */
function poolProblems(demands: readonly ResourceDemand[], nodes: Inventory, names: readonly string[], gpuWorkloads: boolean, where: string): string[] {
  const capacity = capacityOf(Object.fromEntries(names.map((name) => [name, nodes[name]])));
  const onPool = demands.flatMap((d): ResourceDemand[] => {
    const placement = placementOf(d);
    if (placement === 'gpu-nodes' && !gpuWorkloads) return [];
    return [placement === 'every-node' ? { ...d, replicas: names.length } : d];
  });
  const requested = requestedBy(onPool);
  const over = (what: string, need: number, have: number, show: (n: number) => string, per: (d: ResourceDemand) => number) =>
    need > have ? [`${what}: the pods that can run only there request ${show(need)} on ${where}, which have ${show(have)} (${consumers(onPool, per, show)})`] : [];
  return [
    ...over('cpu', requested.cpuCores, capacity.cpuCores, (n) => `${formatCores(n)} cores`, (d) => parseQuantity(d.cpu)),
    ...over('memory', requested.memoryBytes, capacity.memoryBytes, formatGibibytes, (d) => parseQuantity(d.memory)),
  ];
}

/** What demands request in all: requests times replicas (CPU in whole millicores, as Kubernetes counts it). */
function requestedBy(demands: readonly ResourceDemand[]): CapacityReport['requested'] {
  const total = (per: (d: ResourceDemand) => number) => demands.reduce((sum, d) => sum + per(d) * d.replicas, 0);
  return {
    cpuCores: sumCores(demands.map((d) => ({ quantity: d.cpu, times: d.replicas }))),
    memoryBytes: total((d) => parseQuantity(d.memory)),
    gpus: total((d) => d.gpus ?? 0),
  };
}

/** The biggest consumers of one resource first, `service/workload replicas x each`; a long tail is counted. */
function consumers(demands: readonly ResourceDemand[], per: (d: ResourceDemand) => number, show: (n: number) => string): string {
  const sorted = demands.filter((d) => per(d) > 0).sort((a, b) => per(b) * b.replicas - per(a) * a.replicas);
  const listed = sorted.slice(0, MAX_LISTED).map((d) => `${d.service}/${d.workload} ${d.replicas} x ${show(per(d))}`);
  const rest = sorted.length - listed.length;
  return listed.join(', ') + (rest > 0 ? ` and ${rest} more` : '');
}
