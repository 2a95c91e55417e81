/**
 * NVIDIA device plugin: advertises the GPUs of the inventory's GPU nodes to Kubernetes as
 * `nvidia.com/gpu` (optionally time-sliced), and the RuntimeClass GPU pods run with. GPU
 * consumers take this construct as a prop: that is their dependency, and it tells them
 * the RuntimeClass, how to reach the GPU nodes and how many GPUs each node advertises.
 */
import { k8s } from 'cdk8s-plus-28';
import { z } from '../lib/model/config/zod';
import type { NvidiaDevicePluginValues } from '../imports/helm/nvidia-device-plugin';
import { setSyncWave } from '../lib/model/argocd';
import { defineService } from '../lib/model/catalog';
import { Checkpoint } from '../lib/model/checkpoint';
import { bool, intBetween, k8sName } from '../lib/model/config/primitives';
import { helmRelease } from './helm-release';
import { GpuPlacement, gpuPlacement, Inventory } from '../lib/model/inventory';
import { Layer } from '../lib/model/layers';
import type { AlertRule } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { resources } from '../lib/model/resources';
import { GPU_RESOURCE, GpuProvider, GpuScheduling } from '../lib/model/gpu';
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
/** The plugin is a small Go daemon; the chart sets no resources by default. */
const PLUGIN_RESOURCES = resources('50m', '64Mi', '500m', '256Mi');
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
      podSecurity: { level: 'privileged', reason: "the plugin mounts kubelet's device-plugin socket directory and other host paths" },
      helm: helmRelease('nvidiaDevicePlugin', devicePluginValues(runtimeClassName, placement, gpuReplicas)),
    });
    this.runtimeClassName = runtimeClassName;
    this.gpuReplicas = gpuReplicas;
    this.gpuScheduling = { affinity: { nodeAffinity: gpuNodeAffinity(placement) }, tolerations: tolerationsOf(placement) };
    this.requestCapacity('device-plugin', placement.nodes.length, PLUGIN_RESOURCES.requests);
    this.addRuntimeClass(placement);
    this.addCheckpoint(placement, scope.config.nodes);
    // The chart adds its config-manager sidecar with a config map: it reads its node's
    // `nvidia.com/device-plugin.config` label through the API (nvidia-device-plugin 0.20.0 templates/daemonset-device-plugin.yaml).
    if (gpuReplicas > 1) this.callApiServer({}, "the plugin's config manager reads its node's labels to pick the time-slicing config");
    this.addAlertRules(placement, scope.config.nodes);
  }

  /** `nvidia.com/gpu` a node with `physicalGpus` GPUs advertises once the plugin runs. */
  advertisedGpus(physicalGpus: number): number {
    return physicalGpus * this.gpuReplicas;
  }

  /**
   * Pods of this class are admitted with the GPU nodes' selector and tolerations added
   * (RuntimeClass scheduling), so they cannot land on a node without the nvidia runtime.
   */
  private addRuntimeClass(placement: GpuPlacement): void {
    const runtimeClass = new k8s.KubeRuntimeClass(this, 'runtime-class', {
      metadata: { name: this.runtimeClassName, labels: this.labelsFor('runtime') },
      handler: RUNTIME_HANDLER,
      scheduling: { nodeSelector: runtimeClassNodeSelector(placement), tolerations: tolerationsOf(placement) },
    });
    // Before the chart's DaemonSet, whose pods use it: Argo CD orders unknown kinds such as
    // RuntimeClass after the built-in ones, and pods naming a missing class are rejected.
    setSyncWave(runtimeClass, -1);
  }

  /**
   * The plugin serves no metrics (GPU telemetry would come from NVIDIA's dcgm-exporter, which
   * the platform does not run): nothing to scrape. What it is for, every GPU node advertising
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
   * as allocatable `nvidia.com/gpu`. registry.k8s.io/kubectl is built on the distroless
   * go-runner image and has no shell for the checkpoint script, so the check asks the API
   * server directly with the pinned curl image, as a ServiceAccount that may only read the
   * GPU nodes.
   */
  private addCheckpoint(placement: GpuPlacement, inventory: Inventory): void {
    new Checkpoint(this, 'checkpoint', {
      description: `every GPU node (${placement.nodes.join(', ')}) advertises its ${GPU_RESOURCE} as allocatable`,
      image: IMAGES.curl,
      readsCluster: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get'], resourceNames: [...placement.nodes] }],
      script: [ALLOCATABLE_CHECK, ...placement.nodes.map((node) => `check_node ${node} ${this.advertisedGpus(inventory[node].gpus)}`)].join('\n'),
    });
  }
}

/**
 * `check_node <node> <expected>`: waits up to 5 minutes for the node's allocatable
 * nvidia.com/gpu to reach the expected count. The API server pretty-prints for curl, so
 * whitespace is removed before the flat `allocatable` map is cut out of the Node.
 */
const ALLOCATABLE_CHECK = String.raw`allocatable() {
  kube_get "/api/v1/nodes/$1" \
    | tr -d ' \n' | sed -n 's/.*"allocatable":{\([^}]*\)}.*/\1/p' | grep -o '"nvidia.com/gpu":"[0-9]*"' | cut -d'"' -f4
}
check_node() {
  for _ in $(seq 30); do
    got=$(allocatable "$1" || true)
    if [ -n "$got" ] && [ "$got" -ge "$2" ]; then echo "$1: $got nvidia.com/gpu allocatable"; return 0; fi
    sleep 10
  done
  echo "$1: '$got' nvidia.com/gpu allocatable, expected at least $2" >&2
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
    // Replaces the chart's affinity for node-feature-discovery labels (we run no NFD):
    // the required terms select the inventory's GPU nodes, and lists replace in Helm.
    affinity: { nodeAffinity: gpuNodeAffinity(placement) },
    // Helm replaces lists: keep the chart's tolerations next to those for the inventory's taints.
    tolerations: uniqueTolerations([...CHART_TOLERATIONS, ...(tolerationsOf(placement) ?? [])]),
    resources: PLUGIN_RESOURCES,
    config: gpuReplicas > 1 ? { map: { [SHARING_CONFIG]: timeSlicingConfig(gpuReplicas) }, default: SHARING_CONFIG } : undefined,
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

/** A required node affinity matching exactly the GPU nodes: by their labels, else by host name. */
function gpuNodeAffinity(placement: GpuPlacement) {
  const matchExpressions = placement.hostnames
    ? [{ key: 'kubernetes.io/hostname', operator: 'In', values: [...placement.hostnames] }]
    : Object.entries(placement.nodeSelector).map(([key, value]) => ({ key, operator: 'In', values: [value] }));
  return { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions }] } };
}

function tolerationsOf(placement: GpuPlacement) {
  return placement.tolerations.length > 0 ? placement.tolerations.map((toleration) => ({ ...toleration })) : undefined;
}

function uniqueTolerations<T extends object>(tolerations: readonly T[]): T[] {
  return [...new Map(tolerations.map((toleration) => [JSON.stringify(toleration), toleration])).values()];
}

/** RuntimeClass scheduling takes a plain node selector: the GPU labels, or the only GPU node's name. */
function runtimeClassNodeSelector(placement: GpuPlacement): Record<string, string> | undefined {
  if (!placement.hostnames) return { ...placement.nodeSelector };
  return placement.hostnames.length === 1 ? { 'kubernetes.io/hostname': placement.hostnames[0] } : undefined;
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
