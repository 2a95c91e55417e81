/**
 * Ray, the AI layer's distributed compute, as two services (docs/adr/0006-kuberay.md):
 * `kuberay-operator` installs the KubeRay chart with its ray.io CRDs, and `ray` runs one
 * autoscaled RayCluster. Nothing wires them together by hand: the RayCluster is a ray.io
 * resource, so `ray` depends on the service that installs that CRD group.
 */
import { k8s } from 'cdk8s-plus-34';
import { z } from '../lib/model/config/zod';
import {
  RayCluster,
  RayClusterSpecAutoscalerOptions,
  RayClusterSpecAutoscalerOptionsResourcesLimits,
  RayClusterSpecAutoscalerOptionsResourcesRequests,
  RayClusterSpecAutoscalerOptionsUpscalingMode,
  RayClusterSpecHeadGroupSpec,
  RayClusterSpecHeadGroupSpecTemplateSpecContainersResourcesLimits,
  RayClusterSpecHeadGroupSpecTemplateSpecContainersResourcesRequests,
  RayClusterSpecWorkerGroupSpecs,
  RayClusterSpecWorkerGroupSpecsTemplateSpecContainersResourcesLimits,
  RayClusterSpecWorkerGroupSpecsTemplateSpecContainersResourcesRequests,
  RayClusterSpecWorkerGroupSpecsTemplateSpecVolumesEmptyDirSizeLimit,
} from '../imports/kuberay-raycluster-ray.io';
import type { KuberayOperatorValues } from '../imports/helm/kuberay-operator';
import { defineService, ownSubdomain } from '../lib/model/catalog';
import { Checkpoint, type CurlRetry, curlRetryOptions, curlRetrySeconds, type DeadlineWait, untilDeadlineSeconds } from '../lib/model/checkpoint';
import { bool, intBetween, k8sName, memoryQuantity, resourcesSchema, subdomain } from '../lib/model/config/primitives';
import { helmRelease } from './helm-release';
import { GPU_RESOURCE, GpuProvider } from '../lib/model/gpu';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { restrictedPodContext } from '../lib/model/pod-security';
import { parseQuantity } from '../lib/util/quantity';
import { quantities, Resources, resources } from '../lib/model/resources';
import { HomelabService } from '../lib/model/service';
import { IMAGES, RAY_VERSION } from './versions';
import { nvidiaDevicePluginEntry } from './nvidia-device-plugin';

/** Ray refuses an object store under 75 MiB; the store gets 90% of /dev/shm. */
const MIN_SHM_BYTES = 100 * 2 ** 20;

const workerGroupSchema = z.strictObject({
  /** Workers kept up even when idle; the checkpoint waits for them. */
  minReplicas: intBetween(0, 100).default(0),
  /** Most workers the autoscaler may start; the capacity check counts the group at this size. */
  maxReplicas: intBetween(1, 100),
  /** `nvidia.com/gpu` per worker, advertised to Ray as `num-gpus`; 0 makes a CPU group. */
  gpusPerWorker: intBetween(0, 16).default(0),
  resources: resourcesSchema,
  /**
   * Size of the worker's memory-backed /dev/shm, where Ray keeps its object store (90% of
   * it). It counts against the container's memory limit, so it must stay below it.
   */
  shmSize: memoryQuantity.default('1Gi'),
});

/** `services.ray`. */
export const raySettings = z
  .strictObject({
    enabled: bool.default(false),
    /** The Ray dashboard's subdomain (an admin route through Traefik). */
    subdomain: subdomain.default('ray'),
    head: z
      .strictObject({
        resources: resourcesSchema.default({ requests: { cpu: '500m', memory: '2Gi' }, limits: { cpu: '2', memory: '4Gi' } }),
      })
      .prefault({}),
    workerGroups: z.record(k8sName, workerGroupSchema).default({}),
  })
  .superRefine((ray, ctx) => {
    if (ray.enabled && Object.keys(ray.workerGroups).length === 0) {
      ctx.addIssue({ code: 'custom', path: ['workerGroups'], message: 'expected at least one worker group' });
    }
    for (const [name, group] of Object.entries(ray.workerGroups)) {
      if (group.minReplicas > group.maxReplicas) {
        ctx.addIssue({
          code: 'custom',
          path: ['workerGroups', name, 'minReplicas'],
          message: `expected at most maxReplicas (${group.maxReplicas}), received ${group.minReplicas}`,
        });
      }
      const shm = parseQuantity(group.shmSize);
      if (shm < MIN_SHM_BYTES) {
        ctx.addIssue({
          code: 'custom',
          path: ['workerGroups', name, 'shmSize'],
          message: `expected at least 100Mi (Ray's object store needs 75Mi), received "${group.shmSize}"`,
        });
      }
      if (shm >= parseQuantity(group.resources.limits.memory)) {
        ctx.addIssue({
          code: 'custom',
          path: ['workerGroups', name, 'shmSize'],
          message: `expected less than the memory limit (${group.resources.limits.memory}): /dev/shm is memory of the worker, received "${group.shmSize}"`,
        });
      }
    }
  })
  .prefault({});

export type RaySettings = z.output<typeof raySettings>;
export type RayWorkerGroupSettings = z.output<typeof workerGroupSchema>;

export const KUBERAY_NAMESPACE = 'kuberay-system';
export const RAY_NAMESPACE = 'ray';

/** Long-running operator Deployment: one replica (it uses leader election anyway). */
const OPERATOR_RESOURCES = resources('100m', '128Mi', '500m', '512Mi');

/**
 * The chart's Service (helm-chart/kuberay-operator/templates/service.yaml at v1.7.0): named
 * and labelled by fullnameOverride/nameOverride `kuberay-operator` and the release (the
 * service name), port `http` (8080), which serves /metrics.
 */
export const KUBERAY_OPERATOR_SERVICE_LABELS = {
  'app.kubernetes.io/name': 'kuberay-operator',
  'app.kubernetes.io/instance': 'kuberay-operator',
} as const;

/**
 * The KubeRay operator, from its chart with the CRDs in the chart's crds/ folder. Those CRDs
 * are too big for client-side apply; every child Application syncs with server-side apply.
 */
export class KuberayOperator extends HomelabService {
  constructor(scope: Platform) {
    super(scope, 'kuberay-operator', {}, {
      layer: Layer.AI,
      namespace: KUBERAY_NAMESPACE,
      installsCrdGroups: ['ray.io'],
      helm: helmRelease('kuberayOperator', kuberayOperatorValues()),
    });
    this.requestCapacity('operator', 1, OPERATOR_RESOURCES.requests);
    this.addCheckpoint();
    this.addMonitoring();
    this.callApiServer({}, 'the operator reconciles RayClusters, RayJobs and RayServices');
  }

  private addMonitoring(): void {
    // The Service selects the operator's pods by the same labels; `http` is container port 8080.
    this.exposeMetrics({
      name: 'operator',
      kind: 'service',
      selector: KUBERAY_OPERATOR_SERVICE_LABELS,
      port: 'http',
      podPort: 8080,
      podSelector: KUBERAY_OPERATOR_SERVICE_LABELS,
    });
    this.addAlerts({
      alert: 'KuberayOperatorReconcileErrors',
      // controller-runtime's counter: errors in every 15-minute window for 30 minutes is no transient conflict.
      expr: `sum by (controller) (rate(controller_runtime_reconcile_errors_total{${SERVICE_LABEL}="${this.serviceName}"}[15m])) > 0`,
      for: '30m',
      severity: 'warning',
      summary: 'The KubeRay operator keeps failing to reconcile {{ $labels.controller }} resources',
      description: 'RayCluster changes (and the autoscaler\'s scaling requests) are not applied: see the operator logs in kuberay-system.',
    });
  }

  /**
   * controller-runtime publishes a controller's reconcile counters when the controller starts,
   * which happens only after the operator has won leader election: the RayCluster
   * controller's counter proves the operator is up and reconciling, not just serving.
   */
  private addCheckpoint(): void {
    new Checkpoint(this, 'checkpoint', {
      description: 'the operator serves metrics and its RayCluster controller has started',
      image: IMAGES.curl,
      env: { METRICS_URL: `http://kuberay-operator.${KUBERAY_NAMESPACE}.svc:8080/metrics` },
      script: [
        'deadline=$(( $(date +%s) + 300 ))',
        'until curl -fsS --max-time 10 "$METRICS_URL" | grep -q \'controller_runtime_reconcile_total{controller="raycluster"\'; do',
        '  if [ "$(date +%s)" -ge "$deadline" ]; then echo "the RayCluster controller did not start within 5 minutes" >&2; exit 1; fi',
        '  echo "the RayCluster controller has not started yet"',
        '  sleep 10',
        'done',
        'echo "the RayCluster controller is running"',
      ].join('\n'),
    });
  }
}

function kuberayOperatorValues(): KuberayOperatorValues {
  // The chart's defaults keep: control-plane metrics on (the probes read /metrics either way),
  // the chart's ServiceMonitor off (ours comes from addMonitoring, where the CRD exists), the
  // default feature gates, a restricted container security context, and the image pinned by
  // the chart.
  return { resources: OPERATOR_RESOURCES };
}

export type RayProps = Omit<RaySettings, 'enabled'> & {
  /**
   * Advertises the GPUs, the NVIDIA RuntimeClass and the GPU placement. @default none: the
   * cluster runs on CPU, without its GPU worker groups
   */
  readonly devicePlugin?: GpuProvider;
};

/** Name of the RayCluster; KubeRay names the head Service `<cluster>-head-svc`. */
const CLUSTER_NAME = 'ray';

/**
 * KubeRay labels every head and worker pod with its cluster's name, a label the pod template
 * cannot override (labelPod in ray-operator/controllers/ray/common/pod.go, key
 * utils.RayClusterLabelKey, at v1.7.0).
 */
export const RAY_POD_LABELS = { 'ray.io/cluster': CLUSTER_NAME } as const;
/** The head pod: KubeRay adds `ray.io/node-type: head` the same way (utils.RayNodeTypeLabelKey). */
export const RAY_HEAD_LABELS = { ...RAY_POD_LABELS, 'ray.io/node-type': 'head' } as const;

/** Ray's ports, by the names KubeRay itself gives them: all on the head, metrics on workers too. */
const RAY_PORTS = { dashboard: 8265, 'gcs-server': 6379, client: 10001, metrics: 8080 } as const;

/** The autoscaler sidecar KubeRay adds to the head (`enableInTreeAutoscaling`). */
const AUTOSCALER_RESOURCES = resources('200m', '256Mi', '500m', '512Mi');

/** The rayproject/ray images run as `ray` (uid 1000, gid 100 `users`). */
const RAY_UID = 1000;
const RAY_GID = 100;

/**
 * Restricted, except the root filesystem: Ray writes its session directory under /tmp/ray and
 * caches under /home/ray, which also holds the image's Python, so neither can be an emptyDir.
 * KubeRay copies this context to the `wait-gcs-ready` init container it injects into workers.
 */
const CONTAINER_SECURITY = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: false,
  capabilities: { drop: ['ALL'] },
};

/**
 * Containers without `nvidia.com/gpu` would otherwise see every GPU of their node through the
 * NVIDIA runtime (Ray's KubeRay GPU guide, "GPU multi-tenancy").
 */
const NO_GPUS = [{ name: 'NVIDIA_VISIBLE_DEVICES', value: 'void' }];

/** KubeRay's name for the object store volume: with it mounted, KubeRay injects none of its own. */
const SHM_VOLUME = 'shared-mem';

/** One autoscaled RayCluster: a head that runs no tasks, and the worker groups of the config. */
export class Ray extends HomelabService {
  /** The Ray dashboard and its REST API (jobs, state), inside the cluster. */
  readonly dashboardUrl: string;

  constructor(scope: Platform, props: RayProps) {
    super(scope, 'ray', props, {
      layer: Layer.AI,
      namespace: RAY_NAMESPACE,
      containerException: {
        relaxes: ['readOnlyRootFilesystem'],
        reason: "Ray writes its session directory under /tmp/ray and caches under /home/ray, which also holds the image's Python: neither can be an emptyDir",
      },
    });
    this.dashboardUrl = `http://${CLUSTER_NAME}-head-svc.${RAY_NAMESPACE}.svc:${RAY_PORTS.dashboard}`;
    const { devicePlugin } = props;
    // Without a GPU provider (an environment without GPU nodes) the GPU groups are left out.
    const configured = Object.entries(props.workerGroups);
    const groups = devicePlugin ? configured : configured.filter(([, group]) => group.gpusPerWorker === 0);
    if (groups.length === 0) throw new Error('ray: at least one worker group is required (a CPU group where there are no GPUs)');
    const gpuGroups = configured.filter(([, group]) => group.gpusPerWorker > 0).map(([name]) => name);
    if (gpuGroups.length > 0) {
      if (devicePlugin) this.declareComputeMode('gpu', `GPU worker group${gpuGroups.length > 1 ? 's' : ''} ${gpuGroups.join(', ')}`);
      else this.declareComputeMode('cpu', `no GPU provider: without GPU worker group${gpuGroups.length > 1 ? 's' : ''} ${gpuGroups.join(', ')}`);
    }

    new RayCluster(this, 'cluster', {
      metadata: { name: CLUSTER_NAME },
      spec: {
        rayVersion: RAY_VERSION,
        enableInTreeAutoscaling: true,
        autoscalerOptions: autoscalerOptions(),
        headGroupSpec: this.headGroup(props.head.resources),
        workerGroupSpecs: groups.map(([name, group]) =>
          this.workerGroup(name, group, group.gpusPerWorker > 0 ? devicePlugin : undefined),
        ),
      },
    });

    this.requestCapacity('head', 1, props.head.resources.requests);
    this.requestCapacity('autoscaler', 1, AUTOSCALER_RESOURCES.requests);
    for (const [name, group] of groups) {
      this.requestCapacity(`${name} workers`, group.maxReplicas, group.resources.requests, { gpus: group.gpusPerWorker });
    }
    this.addCheckpoint(1 + groups.reduce((sum, [, group]) => sum + group.minReplicas, 0), devicePlugin !== undefined && gpuGroups.length > 0);
    this.addMonitoring();
    // The in-tree autoscaler runs as a sidecar of the head and scales the worker groups by patching the RayCluster.
    this.callApiServer(RAY_HEAD_LABELS, 'the autoscaler (a sidecar of the head) scales the worker groups through the API');
    // Clients connect with Ray Client or submit jobs through the dashboard's REST API; GCS
    // (6379) is for the cluster's own workers only (same namespace).
    this.serveClients({ port: RAY_PORTS.client, podSelector: RAY_HEAD_LABELS }, { port: RAY_PORTS.dashboard, podSelector: RAY_HEAD_LABELS });
    this.expose({
      subdomain: props.subdomain,
      serviceName: `${CLUSTER_NAME}-head-svc`,
      servicePort: RAY_PORTS.dashboard,
      podPort: RAY_PORTS.dashboard,
      podSelector: RAY_HEAD_LABELS,
      admin: true,
    });
  }

  /**
   * Every Ray node's metrics agent on `metrics` (8080), head and workers alike, as a
   * PodMonitor: workers come and go with the autoscaler, behind no Service. The head's agent
   * also reports the autoscaler's view of the cluster as ray_cluster_{active,pending,failed}_nodes
   * by node type (ray python/ray/dashboard/modules/reporter/reporter_agent.py); a node the
   * autoscaler did not remove itself, but lost, counts as failed. No grafana.com dashboard:
   * Ray generates its own into the head's session directory, which grafana.com does not carry.
   */
  private addMonitoring(): void {
    this.exposeMetrics({ name: 'nodes', kind: 'pod', selector: RAY_POD_LABELS, port: 'metrics' });
    const failed = (offset = '') => `sum by (node_type) (ray_cluster_failed_nodes{${SERVICE_LABEL}="${this.serviceName}"}${offset})`;
    this.addAlerts({
      alert: 'RayNodeLost',
      // The gauge keeps its last value and a node type's series starts with its first failure:
      // alert when the count rose in the last 10 minutes, a new series counting as risen from 0.
      expr: `${failed()}\n> (${failed(' offset 10m')} or 0 * ${failed()})`,
      for: '1m',
      severity: 'warning',
      summary: 'The Ray cluster lost a {{ $labels.node_type }} node',
      description: 'A Ray node died without the autoscaler removing it (node failure, OOM kill, eviction): tasks and actors on it failed or were retried.',
    });
  }

  /** `num-cpus: 0`: the head runs GCS, the dashboard and the autoscaler, never tasks, so a busy job cannot starve them. */
  private headGroup(r: Resources): RayClusterSpecHeadGroupSpec {
    return {
      rayStartParams: {
        'dashboard-host': '0.0.0.0',
        'num-cpus': '0',
        'metrics-export-port': String(RAY_PORTS.metrics),
      },
      template: {
        metadata: { labels: this.labelsFor('head') },
        spec: {
          securityContext: restrictedPodContext(RAY_UID, { group: RAY_GID, fsGroup: true }),
          containers: [
            {
              name: 'ray-head',
              image: IMAGES.ray,
              ports: Object.entries(RAY_PORTS).map(([name, containerPort]) => ({ name, containerPort })),
              resources: {
                requests: quantities(RayClusterSpecHeadGroupSpecTemplateSpecContainersResourcesRequests, r.requests),
                limits: quantities(RayClusterSpecHeadGroupSpecTemplateSpecContainersResourcesLimits, r.limits),
              },
              env: NO_GPUS,
              securityContext: CONTAINER_SECURITY,
            },
          ],
        },
      },
    };
  }

  /**
   * A group starts at minReplicas and the autoscaler moves it up to maxReplicas. Its object
   * store lives in a memory-backed /dev/shm of `shmSize` and takes 90% of it: Ray only uses
   * /dev/shm when it has more room than the store, and otherwise falls back to /tmp on disk.
   */
  private workerGroup(name: string, group: RayWorkerGroupSettings, gpu?: GpuProvider): RayClusterSpecWorkerGroupSpecs {
    const r = group.resources;
    const gpuResources: Record<string, string> = gpu ? { [GPU_RESOURCE]: String(group.gpusPerWorker) } : {};
    return {
      groupName: name,
      replicas: group.minReplicas,
      minReplicas: group.minReplicas,
      maxReplicas: group.maxReplicas,
      rayStartParams: {
        'object-store-memory': String(Math.floor(parseQuantity(group.shmSize) * 0.9)),
        'metrics-export-port': String(RAY_PORTS.metrics),
        // KubeRay would derive it from the limit as well; explicit, it is reviewable next to the limit.
        ...(gpu ? { 'num-gpus': String(group.gpusPerWorker) } : {}),
      },
      template: {
        metadata: { labels: this.labelsFor('worker') },
        spec: {
          // Workers never call the Kubernetes API (the autoscaler runs on the head).
          automountServiceAccountToken: false,
          securityContext: restrictedPodContext(RAY_UID, { group: RAY_GID, fsGroup: true }),
          runtimeClassName: gpu?.runtimeClassName,
          // The CRD types mirror the core ones field for field: the provider's placement as JSON.
          affinity: gpu ? k8s.toJson_Affinity(gpu.gpuScheduling.affinity) : undefined,
          tolerations: gpu?.gpuScheduling.tolerations?.map((t) => ({ ...t })),
          containers: [
            {
              name: 'ray-worker',
              image: gpu ? IMAGES.rayGpu : IMAGES.ray,
              ports: [{ name: 'metrics', containerPort: RAY_PORTS.metrics }],
              resources: {
                // Extended resources such as GPUs must request exactly their limit.
                requests: quantities(RayClusterSpecWorkerGroupSpecsTemplateSpecContainersResourcesRequests, { ...r.requests, ...gpuResources }),
                limits: quantities(RayClusterSpecWorkerGroupSpecsTemplateSpecContainersResourcesLimits, { ...r.limits, ...gpuResources }),
              },
              env: gpu ? undefined : NO_GPUS,
              securityContext: CONTAINER_SECURITY,
              volumeMounts: [{ name: SHM_VOLUME, mountPath: '/dev/shm' }],
            },
          ],
          volumes: [
            {
              name: SHM_VOLUME,
              emptyDir: { medium: 'Memory', sizeLimit: RayClusterSpecWorkerGroupSpecsTemplateSpecVolumesEmptyDirSizeLimit.fromString(group.shmSize) },
            },
          ],
        },
      },
    };
  }

  /**
   * Ray's state API (what `ray list nodes` calls) lists the ALIVE nodes, filtered server-side;
   * the head must be among them, with at least every group's minReplicas of workers. Argo CD
   * has no health check for RayClusters, so this runs while the workers are still starting
   * (and pulling multi-GB images): it retries for 20 minutes. Then the cluster does work: a Ray
   * job submitted through the dashboard's job-submission REST API (`POST /api/jobs/`, Ray
   * python/ray/dashboard/modules/job/job_head.py) runs CPU tasks, which only the workers can
   * take (the head has no CPUs for tasks), and with GPUs one task that requests a GPU, which
   * makes the autoscaler start a GPU worker from zero. Its result line is checked, and the job
   * is stopped if still running and deleted, pass or fail.
   */
  private addCheckpoint(expectedNodes: number, withGpu: boolean): void {
    const alive = `${this.dashboardUrl}/api/v0/nodes?filter_keys=state&filter_predicates=%3D&filter_values=ALIVE`;
    const job = rayCheckpointJob(withGpu);
    new Checkpoint(this, 'checkpoint', {
      description: `the Ray dashboard reports the head and at least ${expectedNodes - 1} worker node(s) ALIVE, and a Ray job runs ${job.cpuTasks} CPU task(s)${withGpu ? ' and a GPU task' : ''} with the right results`,
      image: IMAGES.curl,
      // 20 minutes for the nodes, 20 for the job (a GPU worker pulls a multi-GB image first), each
      // ending after a last ask and pause; the submission's retries, the log and the cleanup's two
      // calls at curl's limit; after the pod's start.
      scriptSeconds: 2 * untilDeadlineSeconds(RAY_WAIT) + curlRetrySeconds(SUBMIT) + 3 * RAY_WAIT.callMaxSeconds,
      env: {
        NODES_URL: alive,
        EXPECTED_NODES: String(expectedNodes),
        JOBS_URL: `${this.dashboardUrl}/api/jobs`,
        JOB_REQUEST: JSON.stringify(job.request),
        EXPECTED_RESULT: job.expected,
      },
      script: [
        // Required before the wait: the test that reads it runs only once the head is ALIVE.
        ': "${EXPECTED_NODES:?unset (the Job sets it)}"',
        `deadline=$(( $(date +%s) + ${RAY_WAIT.waitSeconds} ))`,
        // Ready is what the last answer said, not the clock after it (a last ask may end past the deadline).
        'ready=',
        'until [ "$(date +%s)" -ge "$deadline" ]; do',
        `  if body=$(curl -fsS --max-time ${RAY_WAIT.callMaxSeconds} "$NODES_URL"); then`,
        '    nodes=$(printf "%s" "$body" | grep -o \'"node_id"\' | wc -l)',
        '    heads=$(printf "%s" "$body" | grep -o \'"is_head_node": *true\' | wc -l)',
        '    echo "ALIVE nodes: $nodes (head: $heads), expecting $EXPECTED_NODES with the head"',
        '    if [ "$heads" -ge 1 ] && [ "$nodes" -ge "$EXPECTED_NODES" ]; then ready=1; break; fi',
        '  else',
        '    echo "the dashboard does not answer yet"',
        '  fi',
        `  sleep ${RAY_WAIT.pauseSeconds}`,
        'done',
        'if [ -z "$ready" ]; then',
        '  echo "the Ray cluster did not reach $EXPECTED_NODES ALIVE nodes with its head within 20 minutes" >&2',
        '  exit 1',
        'fi',
        RAY_JOB_RUN,
      ].join('\n'),
    });
  }
}

/** What the checkpoint's Ray job prints on its result line, and where it stops. */
const RESULT_MARK = 'HOMELAB_RAY_RESULT';
const CPU_TASKS = 4;

/**
 * The job's driver, run by the job's entrypoint on the head: `square` tasks need a CPU, so
 * Ray schedules them on the workers; `gpu_probe` needs a GPU, so Ray asks the autoscaler for a
 * GPU worker, and reports the GPU ids Ray assigned it. Double quotes only: the code travels
 * single-quoted in the entrypoint's shell command.
 */
export function rayCheckpointJob(withGpu: boolean): { request: { entrypoint: string; submission_id: string; metadata: Record<string, string> }; cpuTasks: number; expected: string } {
  const code = [
    'import ray',
    'ray.init()',
    '@ray.remote(num_cpus=1)',
    'def square(i):',
    '    return i * i',
    `total = sum(ray.get([square.remote(i) for i in range(${CPU_TASKS})]))`,
    ...(withGpu
      ? [
          '@ray.remote(num_gpus=1)',
          'def gpu_probe():',
          '    return ",".join(str(g) for g in ray.get_gpu_ids()) or "none"',
          'gpus = ray.get(gpu_probe.remote())',
        ]
      : ['gpus = "-"']),
    `print("${RESULT_MARK} cpu_sum=%d gpu_ids=%s end" % (total, gpus))`,
  ].join('\n');
  const cpuSum = Array.from({ length: CPU_TASKS }, (_, i) => i * i).reduce((a, b) => a + b, 0);
  return {
    // SUBMISSION_ID is replaced by a fresh id per run: a second run must not collide with the first.
    request: { entrypoint: `python -c '${code}'`, submission_id: 'SUBMISSION_ID', metadata: { 'homelab.dev/checkpoint': 'ray' } },
    cpuTasks: CPU_TASKS,
    // With a GPU, any id Ray assigned (digits); without, the marker the driver prints instead.
    expected: `cpu_sum=${cpuSum} gpu_ids=${withGpu ? '[0-9][0-9,]*' : '-'}`,
  };
}

/** The checkpoint waits 20 minutes for the nodes, then 20 for the job, asking every 10 s, each call at most 10 s (the submission 30 s, retried). */
const RAY_WAIT: DeadlineWait = { waitSeconds: 1200, pauseSeconds: 10, callMaxSeconds: 10 };
const SUBMIT: CurlRetry = { retries: 5, delaySeconds: 10, maxSeconds: 30 };

/**
 * Submits $JOB_REQUEST, waits up to 20 minutes for a terminal status, reads the job's logs and
 * matches its result line against $EXPECTED_RESULT (a basic regular expression); stops a job
 * still running and deletes it on every way out.
 */
const RAY_JOB_RUN = String.raw`id="homelab-checkpoint-$(date +%s)-$$"
cleanup() {
  curl -fsS -X POST --max-time ${RAY_WAIT.callMaxSeconds} "$JOBS_URL/$id/stop" >/dev/null 2>&1 || true
  curl -fsS -X DELETE --max-time ${RAY_WAIT.callMaxSeconds} "$JOBS_URL/$id" >/dev/null 2>&1 || true
}
trap cleanup EXIT
request=$(printf '%s' "$JOB_REQUEST" | sed "s/SUBMISSION_ID/$id/")
if ! curl -fsS ${curlRetryOptions(SUBMIT)} -H 'Content-Type: application/json' -d "$request" "$JOBS_URL/" >/dev/null; then
  echo "the Ray dashboard refused the job submission" >&2
  exit 1
fi
echo "submitted Ray job $id"
deadline=$(( $(date +%s) + ${RAY_WAIT.waitSeconds} ))
status=PENDING
until [ "$(date +%s)" -ge "$deadline" ]; do
  # The job's own status is the first one (JobDetails), cut out by the shell: this runs at every poll.
  answer=$(curl -fsS --max-time ${RAY_WAIT.callMaxSeconds} "$JOBS_URL/$id" | tr -d ' 
' || true)
  case $answer in *'"status":"'*) status=${'$'}{answer#*'"status":"'}; status=${'$'}{status%%'"'*} ;; *) status= ;; esac
  case "$status" in
    SUCCEEDED|FAILED|STOPPED) break ;;
  esac
  echo "Ray job $id: ${'$'}{status:-no answer}"
  sleep ${RAY_WAIT.pauseSeconds}
done
logs=$(curl -fsS --max-time ${RAY_WAIT.callMaxSeconds} "$JOBS_URL/$id/logs" || true)
result=$(printf '%s' "$logs" | grep -o "${RESULT_MARK} [^\]*end" | tail -n 1)
echo "Ray job $id: $status; ${'$'}{result:-no result line}"
if [ "$status" != SUCCEEDED ]; then
  echo "the Ray job did not succeed within 20 minutes (status ${'$'}{status:-unknown}); the tail of its log:" >&2
  printf '%s' "$logs" | tail -c 2000 >&2
  exit 1
fi
if ! printf '%s' "$result" | grep -q "^${RESULT_MARK} $EXPECTED_RESULT end$"; then
  echo "the Ray job's result is wrong: expected $EXPECTED_RESULT, got '${'$'}{result:-nothing}'" >&2
  exit 1
fi
echo "the Ray job's tasks ran on the workers and returned the expected results"`;

function autoscalerOptions(): RayClusterSpecAutoscalerOptions {
  return {
    upscalingMode: RayClusterSpecAutoscalerOptionsUpscalingMode.DEFAULT,
    idleTimeoutSeconds: 60,
    resources: {
      requests: quantities(RayClusterSpecAutoscalerOptionsResourcesRequests, AUTOSCALER_RESOURCES.requests),
      limits: quantities(RayClusterSpecAutoscalerOptionsResourcesLimits, AUTOSCALER_RESOURCES.limits),
    },
    securityContext: CONTAINER_SECURITY,
  };
}

export const rayEntry = defineService({
  name: 'ray',
  settings: { key: 'ray', schema: raySettings },
  names: [RAY_NAMESPACE, 'kuberay-operator', KUBERAY_NAMESPACE],
  subdomains: ownSubdomain,
  // GPU groups run where the device plugin advertises GPUs; elsewhere they are left out.
  check: (settings, env) =>
    env.isEnabled(nvidiaDevicePluginEntry) || Object.values(settings.workerGroups).some((group) => group.gpusPerWorker === 0)
      ? []
      : [{ path: ['workerGroups'], message: 'expected a CPU worker group (gpusPerWorker: 0): without services.nvidiaDevicePlugin the GPU groups are left out' }],
  upstreamTargets: {
    'kuberay-operator-operator': {
      selector: KUBERAY_OPERATOR_SERVICE_LABELS,
      port: 'http',
      source: 'ray-project/kuberay v1.7.0 helm-chart/kuberay-operator/templates/service.yaml, _helpers.tpl',
    },
    // The pod templates are ours (in the RayCluster), but KubeRay makes the pods and adds the label.
    'ray-nodes': { selector: RAY_POD_LABELS, port: 'metrics', source: 'ray-project/kuberay v1.7.0 ray-operator/controllers/ray/common/pod.go labelPod' },
  },
  build: (platform, settings, context) => {
    new KuberayOperator(platform);
    return new Ray(platform, { ...settings, devicePlugin: context.optional(nvidiaDevicePluginEntry) });
  },
});
