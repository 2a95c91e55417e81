/**
 * NVIDIA device plugin: advertises the GPUs of the inventory's GPU nodes to Kubernetes as
 * `nvidia.com/gpu` (optionally time-sliced), and the RuntimeClass GPU pods run with. The same
 * chart runs GPU discovery (docs/adr/0029): Node Feature Discovery labels every node with an
 * NVIDIA GPU on its PCI bus `nvidia.com/gpu.present=true`, GPU Feature Discovery adds what
 * NVML reports (product, memory, count), so no node is labelled by hand. GPU consumers take
 * this construct as a prop: that is their dependency, and it tells them the RuntimeClass, how
 * to reach the GPU nodes and how many GPUs each node advertises.
 */
import { k8s } from 'cdk8s-plus-34';
import { z } from '../lib/model/config/zod';
import type { NvidiaDevicePluginValues } from '../imports/helm/nvidia-device-plugin';
import { setSyncWave } from '../lib/model/argocd';
import { defineService } from '../lib/model/catalog';
import { Checkpoint, KUBE_CALL_MAX_SECONDS, retrySeconds } from '../lib/model/checkpoint';
import { bool, intBetween, k8sName } from '../lib/model/config/primitives';
import { helmRelease } from './helm-release';
import { GpuPlacement, gpuPlacement, Inventory } from '../lib/model/inventory';
import { Layer } from '../lib/model/layers';
import type { AlertRule } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { resources } from '../lib/model/resources';
import { GPU_LABELS, GPU_RESOURCE, GpuProvider, GpuScheduling } from '../lib/model/gpu';
import { HomelabService } from '../lib/model/service';
import { IMAGES } from './versions';
import { emitYaml } from '../lib/util/yaml-emitter';

/** `services.nvidiaDevicePlugin`. */
export const nvidiaDevicePluginSettings = z
  .strictObject({
    enabled: bool.default(false),
    /** The RuntimeClass (handler `nvidia`) GPU pods run with. */
    runtimeClassName: k8sName.default('nvidia'),
    /** Share every GPU among several pods by CUDA time-slicing (no memory or fault isolation). @default off */
    timeSlicing: z
      .strictObject({
        /** Each physical GPU is advertised as this many `nvidia.com/gpu`. */
        replicasPerGpu: intBetween(2, 64),
      })
      .optional(),
  })
  .prefault({});

export type NvidiaDevicePluginSettings = z.output<typeof nvidiaDevicePluginSettings>;

export type NvidiaDevicePluginProps = Omit<NvidiaDevicePluginSettings, 'enabled'>;

/** Puts a pod on the GPU nodes of the inventory, and only there. */
export const NVIDIA_DEVICE_PLUGIN_NAMESPACE = 'nvidia-device-plugin';
/** The handler of the NVIDIA Container Toolkit runtime, as the plugin README's RuntimeClass names it. */
const RUNTIME_HANDLER = 'nvidia';
/** The chart's default tolerations (values.yaml), kept when the inventory's taints are added. */
const CHART_TOLERATIONS = [
  { key: 'CriticalAddonsOnly', operator: 'Exists' },
  { key: GPU_RESOURCE, operator: 'Exists', effect: 'NoSchedule' },
];
/** The plugin and GPU Feature Discovery (which the chart gives the same resources) are small Go daemons; the chart sets none by default. */
const PLUGIN_RESOURCES = resources('50m', '64Mi', '500m', '256Mi');
/**
 * Node Feature Discovery's requests, the chart's defaults (node-feature-discovery 0.19.0
 * values.yaml, inside nvidia-device-plugin-0.20.0.tgz): a worker on every node, one master, one
 * garbage collector.
 */
const NFD_REQUESTS = {
  worker: { cpu: '5m', memory: '64Mi' },
  master: { cpu: '100m', memory: '128Mi' },
  gc: { cpu: '10m', memory: '128Mi' },
} as const;
/**
 * The discovery rule for `nvidia.com/gpu.present`: an NVIDIA (PCI vendor 10de) VGA (0300) or
 * 3D controller (0302) on the node's PCI bus, a `custom` source rule of nfd-worker (NFD v0.19
 * worker configuration reference). The chart's master config admits the `nvidia.com` label
 * namespace (`nfd.master.config.extraLabelNs`).
 */
const GPU_PRESENT_RULE = {
  name: 'homelab-nvidia-gpu',
  labels: { [GPU_LABELS.present]: 'true' },
  matchFeatures: [{ feature: 'pci.device', matchExpressions: { vendor: { op: 'In', value: ['10de'] }, class: { op: 'In', value: ['0300', '0302'] } } }],
};
/** nfd-worker's tolerations in the chart's values (Helm replaces lists): kept next to the GPU nodes' taints. */
const NFD_WORKER_TOLERATIONS = [
  { key: 'node-role.kubernetes.io/master', operator: 'Equal', value: '', effect: 'NoSchedule' },
  { key: GPU_RESOURCE, operator: 'Equal', value: 'present', effect: 'NoSchedule' },
];
const SHARING_CONFIG = 'homelab';

export class NvidiaDevicePlugin extends HomelabService implements GpuProvider {
  readonly runtimeClassName: string;
  /** How many `nvidia.com/gpu` each physical GPU is advertised as: 1 without time-slicing. */
  readonly gpuReplicas: number;
  readonly gpuScheduling: GpuScheduling;

  constructor(scope: Platform, props: NvidiaDevicePluginProps) {
    const placement = gpuPlacement(scope.config.nodes);
    if (!placement) throw new Error('nvidia-device-plugin: the node inventory has no GPU nodes');
    const runtimeClassName = props.runtimeClassName;
    const gpuReplicas = props.timeSlicing?.replicasPerGpu ?? 1;
    super(scope, 'nvidia-device-plugin', props, {
      layer: Layer.AI,
      namespace: NVIDIA_DEVICE_PLUGIN_NAMESPACE,
      podSecurity: { level: 'privileged', reason: "the plugin mounts kubelet's device-plugin socket directory, GPU and Node Feature Discovery host paths" },
      helm: helmRelease('nvidiaDevicePlugin', devicePluginValues(runtimeClassName, placement, gpuReplicas)),
    });
    this.runtimeClassName = runtimeClassName;
    this.gpuReplicas = gpuReplicas;
    this.gpuScheduling = { affinity: { nodeAffinity: gpuNodeAffinity() }, tolerations: tolerationsOf(placement) };
    this.requestCapacity('device-plugin', placement.nodes.length, PLUGIN_RESOURCES.requests, { placement: 'gpu-nodes' });
    this.requestCapacity('gpu-feature-discovery', placement.nodes.length, PLUGIN_RESOURCES.requests, { placement: 'gpu-nodes' });
    this.requestCapacity('nfd-worker', Object.keys(scope.config.nodes).length, NFD_REQUESTS.worker, { placement: 'every-node' });
    this.requestCapacity('nfd-master', 1, NFD_REQUESTS.master);
    this.requestCapacity('nfd-gc', 1, NFD_REQUESTS.gc);
    this.addRuntimeClass(placement);
    this.addCheckpoint(placement, scope.config.nodes);
    // NFD's worker publishes NodeFeature objects, its master turns them into node labels, its
    // gc removes those of deleted nodes; with a config map the chart's config-manager sidecars
    // read their node's `nvidia.com/device-plugin.config` label (nvidia-device-plugin 0.20.0
    // templates/daemonset-device-plugin.yml, daemonset-gfd.yml).
    this.callApiServer({}, "Node Feature Discovery publishes node features and labels; the config managers read their node's labels");
    this.addAlertRules(placement, scope.config.nodes);
  }

  /** `nvidia.com/gpu` a node with `physicalGpus` GPUs advertises once the plugin runs. */
  advertisedGpus(physicalGpus: number): number {
    return physicalGpus * this.gpuReplicas;
  }

  /**
   * Pods of this class are admitted with the discovered GPU label as node selector and the GPU
   * nodes' tolerations added (RuntimeClass scheduling), so they cannot land on a node without a
   * GPU. The label comes from the PCI bus, not from NVML: GPU Feature Discovery, which runs with
   * this class, does not have to label its own node first.
   */
  private addRuntimeClass(placement: GpuPlacement): void {
    const runtimeClass = new k8s.KubeRuntimeClass(this, 'runtime-class', {
      metadata: { name: this.runtimeClassName, labels: this.labelsFor('runtime') },
      handler: RUNTIME_HANDLER,
      scheduling: { nodeSelector: { [GPU_LABELS.present]: 'true' }, tolerations: tolerationsOf(placement) },
    });
    // Before the chart's DaemonSet, whose pods use it: Argo CD orders unknown kinds such as
    // RuntimeClass after the built-in ones, and pods naming a missing class are rejected.
    setSyncWave(runtimeClass, -1);
  }

  /**
   * The plugin serves no metrics (GPU telemetry comes from the dcgm-exporter service): nothing
   * to scrape. What it is for, every GPU node advertising
   * its GPUs, and its DaemonSet's health are alerted on from kube-state-metrics' series
   * (kube_node_status_allocatable with the resource name sanitized to `nvidia_com_gpu`),
   * which the monitoring stack's Prometheus scrapes.
   */
  private addAlertRules(placement: GpuPlacement, inventory: Inventory): void {
    const resource = GPU_RESOURCE.replace(/[./]/g, '_');
    const missingGpus = placement.nodes.map((node): AlertRule => {
      const expected = this.advertisedGpus(inventory[node].gpus);
      return {
        alert: 'GpuNodeMissingGpus',
        expr: `kube_node_status_allocatable{node="${node}", resource="${resource}"} < ${expected}`,
        for: '10m',
        severity: 'warning',
        summary: `GPU node ${node} advertises {{ $value }} ${GPU_RESOURCE}, fewer than the ${expected} of the inventory`,
        description: 'GPU pods will stay Pending: check the device plugin pod on the node, the NVIDIA driver and the container runtime.',
      };
    });
    this.addAlerts(
      ...missingGpus,
      {
        alert: 'NvidiaDevicePluginUnavailable',
        expr: `kube_daemonset_status_number_unavailable{namespace="${this.namespaceName}"} > 0`,
        for: '15m',
        severity: 'warning',
        summary: 'The NVIDIA device plugin is not running on {{ $value }} GPU node(s)',
      },
    );
  }

  /**
   * Every GPU node advertises at least its inventory GPUs (times the time-slicing replicas)
   * as allocatable `nvidia.com/gpu`; when one does not, the check names the node and the first
   * missing link of the chain (node, hardware label, NVML labels, plugin). registry.k8s.io/kubectl
   * is built on the distroless go-runner image and has no shell for the checkpoint script, so
   * the check asks the API server directly with the pinned curl image, as a ServiceAccount that
   * may only read the GPU nodes.
   */
  private addCheckpoint(placement: GpuPlacement, inventory: Inventory): void {
    new Checkpoint(this, 'checkpoint', {
      description: `every GPU node (${placement.nodes.join(', ')}) is discovered and advertises its ${GPU_RESOURCE} as allocatable`,
      image: IMAGES.curl,
      readsCluster: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get'], resourceNames: [...placement.nodes] }],
      // The nodes one after another, each asked at the API call's limit every time.
      scriptSeconds: placement.nodes.length * retrySeconds(GPU_NODE_CHECKS, KUBE_CALL_MAX_SECONDS, GPU_NODE_PAUSE_SECONDS),
      env: { CHECKS: String(GPU_NODE_CHECKS) },
      script: [
        GPU_NODE_CHECK,
        ...placement.nodes.map((node) => `check_node ${node} ${this.advertisedGpus(inventory[node].gpus)} ${inventory[node].gpus}`),
      ].join('\n'),
    });
  }
}

/** How many times each GPU node is asked for, 10 s apart: five minutes for discovery and the plugin to advertise its GPUs. */
const GPU_NODE_CHECKS = 30;
const GPU_NODE_PAUSE_SECONDS = 10;

/**
 * `check_node <node> <advertised> <physical>`: asks `$CHECKS` times, 10 s apart (the tests ask
 * fewer times), for the node's allocatable nvidia.com/gpu to reach <advertised>, then names what
 * is missing, in the order the pieces depend on each other: the API server's answer (where it
 * did not give one, or refused), the node itself (inventory names are node names), NFD's hardware label,
 * GFD's NVML labels (driver, container toolkit, k3s's nvidia runtime), the plugin. kube_get's
 * answer is compact JSON (KUBE_USER_AGENT), so the flat `labels` and `allocatable` maps are cut
 * out of the Node as it comes (the last map of the name, as a greedy `sed` would take it) and
 * their values out of them, by the shell's own expansions: a process per value and try added up
 * to dozens per node.
 */
const GPU_NODE_CHECK = String.raw`map_of() {
  case $1 in *"\"$2\":{"*) map=${'$'}{1##*"\"$2\":{"}; printf '%s\n' "${'$'}{map%%"}"*}" ;; esac
}
value_of() {
  case $1 in *"\"$2\":\""*) value=${'$'}{1#*"\"$2\":\""}; printf '%s\n' "${'$'}{value%%\"*}" ;; esac
}
check_node() {
  try=0
  while [ "$try" -lt "${'$'}{CHECKS:?unset (the Job sets it)}" ]; do
    try=$((try + 1))
    api_error=
    if ! node=$(kube_get "/api/v1/nodes/$1" 2>&1); then
      case $node in *"error: 404"*) ;; *) api_error=${'$'}{node:-no answer} ;; esac
      node=
    fi
    labels=$(map_of "$node" labels)
    present=$(value_of "$labels" '${GPU_LABELS.present}')
    count=$(value_of "$labels" '${GPU_LABELS.count}')
    product=$(value_of "$labels" '${GPU_LABELS.product}')
    got=$(value_of "$(map_of "$node" allocatable)" '${GPU_RESOURCE}')
    if [ -n "$got" ] && [ "$got" -ge "$2" ]; then echo "$1: $count x $product, $got ${GPU_RESOURCE} allocatable"; return 0; fi
    sleep ${GPU_NODE_PAUSE_SECONDS}
  done
  if [ -n "$api_error" ]; then
    echo "$1: cannot read the node from the API server ($api_error)"
  elif [ -z "$node" ]; then
    echo "$1: no such node: the inventory's node names must be the Kubernetes node names (kubectl get nodes)"
  elif [ "$present" != true ]; then
    echo "$1: no NVIDIA GPU discovered on the PCI bus (no ${GPU_LABELS.present}=true from Node Feature Discovery): check that the host sees the GPU (lspci | grep -i nvidia) and the nfd-worker pod on $1"
  elif [ -z "$count" ]; then
    echo "$1: GPU Feature Discovery cannot read the GPU (no ${GPU_LABELS.count}): install the NVIDIA driver (nvidia-smi works on the host) and the NVIDIA Container Toolkit, then restart k3s so that its containerd has the nvidia runtime; see the gpu-feature-discovery pod on $1"
  elif [ "$count" -lt "$3" ]; then
    echo "$1: GPU Feature Discovery sees $count GPU(s) ($product), the inventory says $3"
  else
    echo "$1: '$got' ${GPU_RESOURCE} allocatable, expected at least $2 ($count x $product discovered): see the nvidia-device-plugin pod on $1"
  fi >&2
  return 1
}`;

function devicePluginValues(runtimeClassName: string, placement: GpuPlacement, gpuReplicas: number): NvidiaDevicePluginValues {
  return {
    // The chart's defaults, set explicitly: with a config map and these unset, the chart
    // cannot rule out MIG or volume-mount device lists and grants the plugin CAP_SYS_ADMIN
    // (templates/_helpers.tpl, requiresCapSysAdmin).
    migStrategy: 'none',
    deviceListStrategy: 'envvar',
    // The plugin needs the nvidia runtime too, whether or not it is the nodes' default.
    runtimeClassName,
    // Replaces the chart's three alternative terms (lists replace in Helm) by the one label
    // our discovery rule sets, the one every GPU workload is placed by.
    affinity: { nodeAffinity: gpuNodeAffinity() },
    // Helm replaces lists: keep the chart's tolerations next to those for the inventory's taints.
    tolerations: uniqueTolerations([...CHART_TOLERATIONS, ...(tolerationsOf(placement) ?? [])]),
    resources: PLUGIN_RESOURCES,
    config: gpuReplicas > 1 ? { map: { [SHARING_CONFIG]: timeSlicingConfig(gpuReplicas) }, default: SHARING_CONFIG } : undefined,
    // GPU Feature Discovery: product, memory, count and sharing labels from NVML, written for
    // nfd-worker's local source; on the same nodes, with the same class and resources as the plugin.
    gfd: { enabled: true },
    // Node Feature Discovery, the chart's subchart (both flags name its condition).
    nfd: {
      enabled: true,
      worker: {
        tolerations: uniqueTolerations([...NFD_WORKER_TOLERATIONS, ...(tolerationsOf(placement) ?? [])]),
        config: { sources: { pci: { deviceClassWhitelist: ['02', '03'], deviceLabelFields: ['vendor'] }, custom: [GPU_PRESENT_RULE] } },
      },
    },
  };
}

/**
 * The plugin's config file (api/config/v1 in NVIDIA/k8s-device-plugin v0.20.0). Resources
 * keep their name, so consumers request `nvidia.com/gpu` either way; a request for more than
 * one shared GPU fails, as the plugin's README recommends: two slices are not twice the GPU.
 */
function timeSlicingConfig(replicasPerGpu: number): string {
  return emitYaml({
    version: 'v1',
    flags: { migStrategy: 'none' },
    sharing: { timeSlicing: { failRequestsGreaterThanOne: true, resources: [{ name: GPU_RESOURCE, replicas: replicasPerGpu }] } },
  });
}

/** A required node affinity for the nodes discovery found a GPU on. */
function gpuNodeAffinity() {
  const matchExpressions = [{ key: GPU_LABELS.present, operator: 'In', values: ['true'] }];
  return { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions }] } };
}

function tolerationsOf(placement: GpuPlacement) {
  return placement.tolerations.length > 0 ? placement.tolerations.map((toleration) => ({ ...toleration })) : undefined;
}

function uniqueTolerations<T extends object>(tolerations: readonly T[]): T[] {
  return [...new Map(tolerations.map((toleration) => [JSON.stringify(toleration), toleration])).values()];
}

export const nvidiaDevicePluginEntry = defineService({
  name: 'nvidia-device-plugin',
  settings: { key: 'nvidiaDevicePlugin', schema: nvidiaDevicePluginSettings },
  names: [NVIDIA_DEVICE_PLUGIN_NAMESPACE],
  check: (_settings, env) =>
    Object.values(env.nodes).some((node) => node.gpus > 0)
      ? []
      : [{ path: ['enabled'], message: 'expected a node with gpus > 0 in nodes: the device plugin runs only on GPU nodes' }],
  build: (platform, settings) => new NvidiaDevicePlugin(platform, settings),
});
