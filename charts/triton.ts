/**
 * Triton Inference Server on the GPU nodes, or on CPUs in an environment without GPUs (the
 * same server, smoke model and checkpoint, docs/adr/0029): a Deployment written with the
 * low-level k8s.KubeDeployment (cdk8s-plus containers have no field for `nvidia.com/gpu`), its
 * Service, and a weightless smoke-test model served next to the user's models so the
 * checkpoint can run a real inference.
 */
import { createHash } from 'node:crypto';
import { k8s } from 'cdk8s-plus-34';
import { z } from '../lib/model/config/zod';
import { defineService } from '../lib/model/catalog';
import { Checkpoint, type CurlRetry, curlRetryOptions, curlRetrySeconds, STARTING_SERVER_CALL } from '../lib/model/checkpoint';
import { bool, exactlyOneOf, expected, intBetween, memoryQuantity, oneOf, region, resourcesSchema, volumeSize } from '../lib/model/config/primitives';
import { parseQuantity } from '../lib/util/quantity';
import { GPU_RESOURCE, GpuProvider } from '../lib/model/gpu';
import { Layer } from '../lib/model/layers';
import { type AlertRule, SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { restrictedContainerContext, restrictedPodContext } from '../lib/model/pod-security';
import { toResourceRequirements } from '../lib/model/resources';
import { S3_CREDENTIAL_KEYS } from '../lib/model/secrets';
import { s3Destination } from '../lib/model/network';
import type { TraceEmission, TraceEmitter } from '../lib/model/tracing';
import { HomelabService } from '../lib/model/service';
import type { StorageProvider } from '../lib/model/storage';
import { IMAGES } from './versions';
import { longhornEntry } from './longhorn';
import type { ObjectStore } from '../lib/model/object-storage';
import { bucketName, seaweedfsEntry } from './seaweedfs';
import { nvidiaDevicePluginEntry } from './nvidia-device-plugin';


/**
 * An S3 model repository as Triton's S3 filesystem parses it (core
 * src/filesystem/implementations/s3.h): `s3://bucket/path` on AWS, or
 * `s3://[http://|https://]host:port/bucket/path` for MinIO and other S3 servers.
 */
const s3RepositoryUrl = z
  .string(expected('an S3 URL'))
  .regex(
    /^s3:\/\/((https?:\/\/)?[0-9a-zA-Z.-]+:\d+\/)?[0-9a-z.-]+(\/[0-9a-zA-Z._-]+)*\/?$/,
    expected('an S3 URL such as "s3://bucket/models" or "s3://https://minio.example.net:9000/bucket/models"'),
  );


const modelRepositorySchema = exactlyOneOf(
  {
    /** A Longhorn volume (default storage class) you copy models into. */
    volume: z.strictObject({ size: volumeSize }).optional(),
    /** Its credentials: the Secret `triton-s3-credentials` (charts/triton.ts). */
    s3: z
      .strictObject({
        url: s3RepositoryUrl,
        /** AWS region (AWS_DEFAULT_REGION); S3-compatible servers usually need none. @default none */
        region: region.optional(),
      })
      .optional(),
    /**
     * A bucket of the platform's object store (SeaweedFS) you put models into, with keys of
     * Triton's own generated in Vault (Secret `triton-bucket-credentials`).
     */
    objectStore: z.strictObject({ bucket: bucketName.default('triton-models') }).optional(),
  },
  'volume',
  's3',
  'objectStore',
);

/** `services.triton`. */
export const tritonSettings = z
  .strictObject({
    enabled: bool.default(false),
    replicas: intBetween(1, 16).default(1),
    /** `nvidia.com/gpu` each replica requests (time-sliced GPUs when the device plugin shares them); none where the environment runs Triton on CPU. */
    gpusPerReplica: intBetween(1, 8).default(1),
    modelRepository: modelRepositorySchema.default({ volume: { size: '20Gi' } }),
    /** Triton's --model-control-mode: none (load at startup), poll (follow the repository), explicit (load API). */
    modelControlMode: oneOf(['none', 'poll', 'explicit']).default('none'),
    /** Memory-backed /dev/shm (Python backend and large tensors); counts against the memory limit. */
    shmSize: memoryQuantity.default('1Gi'),
    /** How long Triton may take to load its models before Kubernetes restarts it. */
    startupTimeoutSeconds: intBetween(30, 7200).default(600),
    resources: resourcesSchema.default({ requests: { cpu: '1', memory: '4Gi' }, limits: { cpu: '4', memory: '16Gi' } }),
  })
  .superRefine((triton, ctx) => {
    const shm = memoryBytes(triton.shmSize);
    const limit = memoryBytes(triton.resources.limits.memory);
    if (shm !== undefined && limit !== undefined && shm >= limit) {
      ctx.addIssue({
        code: 'custom',
        path: ['shmSize'],
        message: `expected less than resources.limits.memory (${triton.resources.limits.memory}): /dev/shm is memory and counts against that limit`,
      });
    }
    if (triton.modelRepository.volume && triton.replicas > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['replicas'],
        message: `expected 1 with modelRepository.volume (a ReadWriteOnce volume attaches to one pod; use modelRepository.s3 or objectStore for more), received ${triton.replicas}`,
      });
    }
  })
  .prefault({});

export type TritonSettings = z.output<typeof tritonSettings>;

/** Bytes of a memory quantity; undefined when it is malformed (reported by its own field). */
function memoryBytes(quantity: string): number | undefined {
  return memoryQuantity.safeParse(quantity).success ? parseQuantity(quantity) : undefined;
}


export type TritonModelRepository = TritonSettings['modelRepository'];
export type TritonS3Repository = NonNullable<TritonModelRepository['s3']>;
export type TritonObjectStoreRepository = NonNullable<TritonModelRepository['objectStore']>;
export type ModelControlMode = TritonSettings['modelControlMode'];

export type TritonProps = Omit<TritonSettings, 'enabled'> & {
  /**
   * Provides the GPUs: the RuntimeClass and the GPU nodes. @default none: Triton runs on CPU,
   * its smoke model with a CPU instance group and no GPU requested
   */
  readonly devicePlugin?: GpuProvider;
  /** Required with `modelRepository.volume`. @default none */
  readonly storage?: StorageProvider;
  /** Holds the bucket of `modelRepository.objectStore` (required with it). @default none */
  readonly objectStore?: ObjectStore;
};

/** "Triton Inference Server" on grafana.com (nv_inference_* and nv_gpu_* metrics): first revision. */
const DASHBOARD = { name: 'triton-inference-server', gnetId: 12832, revision: 1 } as const;

export const TRITON_NAMESPACE = 'triton';
/** With an S3 model repository: the Secret (in the triton namespace) with its credentials, S3_CREDENTIAL_KEYS. */
export const S3_CREDENTIALS_SECRET = 'triton-s3-credentials';
const COMPONENT = 'server';
const PORTS = { http: 8000, grpc: 8001, metrics: 8002 } as const;
/** The image's `triton-server` user (build.py asserts uid and gid 1000). */
const TRITON_UID = 1000;
const MODELS_CLAIM = 'triton-models';
const SMOKE_CONFIG_MAP = 'triton-smoke-model';
const SMOKE_REPOSITORY = '/smoke-models';
/** Allowance for pulling the image (several GB) before the startup probe starts counting. */
const IMAGE_PULL_SECONDS = 1800;
/** Alert thresholds: share of failed requests, mean queueing time per request, GPU memory used. */
const ALERT_THRESHOLDS = { failureRatio: 0.05, queueSeconds: 0.1, gpuMemoryRatio: 0.9 } as const;

/** Where Triton runs the smoke model's instance: `KIND_GPU` with a GPU provider, else `KIND_CPU`. */
export type InstanceKind = 'KIND_GPU' | 'KIND_CPU';

/**
 * A Python-backend model that adds two INT32 vectors: no weights, so the checkpoint can
 * run a real inference on any cluster. With GPUs its instance is a GPU instance (KIND_GPU),
 * which Triton refuses to load when CUDA sees no GPU (core src/model_config_utils.cc): once it
 * answers, the GPU reached the container. Without GPUs it is a CPU instance, and the same
 * request gets the same answer. The arithmetic itself runs in numpy.
 */
export const SMOKE_MODEL = {
  name: 'homelab_smoke',
  inputs: { A: [1, 2, 3, 4], B: [10, 20, 30, 40] },
  output: 'SUM',
  config: (kind: InstanceKind) => `name: "homelab_smoke"
backend: "python"
max_batch_size: 0
input [
  {
    name: "A"
    data_type: TYPE_INT32
    dims: [ 4 ]
  },
  {
    name: "B"
    data_type: TYPE_INT32
    dims: [ 4 ]
  }
]
output [
  {
    name: "SUM"
    data_type: TYPE_INT32
    dims: [ 4 ]
  }
]
instance_group [
  {
    kind: ${kind}
    count: 1
  }
]
`,
  code: `import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """SUM = A + B, for the homelab checkpoint's inference round trip."""

    def execute(self, requests):
        responses = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "A").as_numpy()
            b = pb_utils.get_input_tensor_by_name(request, "B").as_numpy()
            total = pb_utils.Tensor("SUM", (a + b).astype(np.int32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[total]))
        return responses
`,
} as const;

export class Triton extends HomelabService implements TraceEmitter {
  /** In-cluster base URL of the HTTP/REST endpoint (KServe v2 protocol). */
  readonly httpUrl: string;
  readonly grpcAddress: string;
  readonly traceEmissions: readonly TraceEmission[];
  /** tritonserver's arguments: the trace receiver's endpoint is added by the tracing pass. */
  private readonly serverArgs: string[];

  constructor(scope: Platform, props: TritonProps) {
    super(scope, 'triton', props, { layer: Layer.AI, namespace: TRITON_NAMESPACE });
    const replicas = props.replicas;
    const { devicePlugin } = props;
    // Without a GPU provider the configured GPUs are not requested: Triton runs on CPU.
    const gpus = devicePlugin ? props.gpusPerReplica : 0;
    const source = repositorySource(props, replicas);
    if (devicePlugin && devicePlugin.gpuReplicas > 1 && gpus > 1) throw new Error('triton: time-sliced GPUs are requested one per pod');
    if (devicePlugin) this.declareComputeMode('gpu', `${gpus} ${GPU_RESOURCE} per replica`);
    else this.declareComputeMode('cpu', 'no GPU provider: the models run in CPU instance groups');
    this.httpUrl = `http://triton.${TRITON_NAMESPACE}.svc:${PORTS.http}`;
    this.grpcAddress = `triton.${TRITON_NAMESPACE}.svc:${PORTS.grpc}`;

    const smokeFiles = { 'config.pbtxt': SMOKE_MODEL.config(devicePlugin ? 'KIND_GPU' : 'KIND_CPU'), 'model.py': SMOKE_MODEL.code };
    new k8s.KubeConfigMap(this, 'smoke-model', { metadata: { name: SMOKE_CONFIG_MAP, labels: this.labelsFor(COMPONENT) }, data: smokeFiles });
    const repository =
      's3' in source ? this.s3Repository(source.s3) : 'store' in source ? this.objectStoreRepository(source.bucket, source.store) : this.volumeRepository(source.volume.size, source.storage);
    this.serverArgs = tritonArgs(repository.path, props.modelControlMode);
    this.traceEmissions = [
      { name: 'triton', podSelector: this.selectorFor(COMPONENT), protocol: 'http', connect: (endpoint) => this.serverArgs.push(...traceArgs(endpoint)) },
    ];
    this.addDeployment(props, replicas, gpus, repository, checksum(smokeFiles));
    this.addService();
    if (replicas > 1) this.addDisruptionBudget();
    this.requestCapacity(COMPONENT, replicas, props.resources.requests, { gpus });
    this.addCheckpoint();
    this.addMonitoring();
    // Inference for the services that reference Triton: HTTP/REST and gRPC.
    this.serveClients(
      { port: PORTS.http, podSelector: this.selectorFor(COMPONENT) },
      { port: PORTS.grpc, podSelector: this.selectorFor(COMPONENT) },
    );
  }

  /** An S3 bucket, with the credentials from the declared Secret (never inline). */
  private s3Repository(s3: TritonS3Repository): RepositoryMount {
    // `s3://[scheme://]host:port/bucket/...` names its server; `s3://bucket/...` is AWS, over HTTPS.
    const server = /^s3:\/\/((https?:\/\/)?[0-9a-zA-Z.-]+:\d+)\//.exec(s3.url)?.[1];
    this.allowEgress({
      name: 'model-repository',
      podSelector: this.selectorFor(COMPONENT),
      to: { kind: 'external', destinations: [s3Destination(server && (server.includes('://') ? server : `http://${server}`))] },
      reason: 'Triton loads its models from the S3 model repository',
    });
    const credentials = this.needSecret(S3_CREDENTIALS_SECRET, S3_CREDENTIAL_KEYS, `S3 credentials of Triton's model repository ${s3.url}`);
    return {
      path: s3.url,
      env: [...S3_CREDENTIAL_KEYS.map((key) => credentials.envVar(key)), ...(s3.region ? [{ name: 'AWS_DEFAULT_REGION', value: s3.region }] : [])],
      volumes: [],
      mounts: [],
    };
  }

  /**
   * A bucket of the object store, the whole bucket the repository: Triton's S3 filesystem takes a
   * bucket root as a directory once the bucket exists (HeadBucket), while a prefix with no object
   * under it is no directory and fails the start (core src/filesystem/implementations/s3.h
   * IsDirectory). The store's reference in the props allows the way there.
   */
  private objectStoreRepository(bucket: TritonObjectStoreRepository, store: ObjectStore): RepositoryMount {
    const [models] = this.needBuckets(store, [{ name: bucket.bucket, configPath: 'services.triton.modelRepository.objectStore.bucket' }], 'the model repository');
    return {
      // `s3://<scheme>://host:port/bucket`: Triton's form for a server other than AWS (path-style requests).
      path: `s3://${models.endpoint}/${models.bucket}`,
      env: [...S3_CREDENTIAL_KEYS.map((key) => models.credentials.envVar(key)), { name: 'AWS_DEFAULT_REGION', value: models.region }],
      volumes: [],
      mounts: [],
    };
  }

  /** A volume mounted at /models. */
  private volumeRepository(size: string, storage: StorageProvider): RepositoryMount {
    new k8s.KubePersistentVolumeClaim(this, 'models', {
      metadata: { name: MODELS_CLAIM, labels: this.labelsFor(COMPONENT) },
      spec: {
        accessModes: ['ReadWriteOnce'],
        storageClassName: storage.storageClass(),
        resources: { requests: { storage: k8s.Quantity.fromString(size) } },
      },
    });
    return {
      path: '/models',
      env: [],
      volumes: [{ name: 'models', persistentVolumeClaim: { claimName: MODELS_CLAIM } }],
      // A subdirectory: in modes none and poll Triton loads every directory of a repository
      // as a model, and the root of an ext4 volume holds lost+found. Writable, so models can
      // be copied in with `kubectl cp`.
      mounts: [{ name: 'models', mountPath: '/models', subPath: 'models' }],
    };
  }

  private addDeployment(props: TritonProps, replicas: number, gpus: number, repository: RepositoryMount, smokeChecksum: string): void {
    const { devicePlugin } = props;
    new k8s.KubeDeployment(this, 'deployment', {
      metadata: { name: 'triton', labels: this.labelsFor(COMPONENT) },
      spec: {
        replicas,
        selector: { matchLabels: this.selectorFor(COMPONENT) },
        // A new pod would wait for the GPU (and the volume) the old one holds: replace old first.
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: k8s.IntOrString.fromNumber(0), maxUnavailable: k8s.IntOrString.fromNumber(1) } },
        // Argo CD marks a Deployment past this deadline Degraded, which fails the sync.
        progressDeadlineSeconds: IMAGE_PULL_SECONDS + props.startupTimeoutSeconds,
        template: {
          metadata: {
            labels: this.selectorFor(COMPONENT),
            // The smoke model is mounted by subPath, which never sees ConfigMap updates: roll instead.
            annotations: { 'homelab.dev/smoke-model-checksum': smokeChecksum },
          },
          spec: {
            runtimeClassName: devicePlugin?.runtimeClassName,
            affinity: devicePlugin?.gpuScheduling.affinity,
            tolerations: devicePlugin?.gpuScheduling.tolerations,
            automountServiceAccountToken: false,
            securityContext: {
              ...restrictedPodContext(TRITON_UID, { fsGroup: true }),
              // A models volume can hold many files: re-own them only when the root is not ours yet.
              fsGroupChangePolicy: 'OnRootMismatch',
            },
            containers: [tritonContainer(props, gpus, repository, this.serverArgs)],
            volumes: [
              ...repository.volumes,
              { name: 'smoke-model', configMap: { name: SMOKE_CONFIG_MAP } },
              // Python backend stubs and large tensors go through shared memory.
              { name: 'shm', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString(props.shmSize) } },
              { name: 'tmp', emptyDir: {} },
            ],
          },
        },
      },
    });
  }

  private addService(): void {
    new k8s.KubeService(this, 'service', {
      metadata: { name: 'triton', labels: this.labelsFor(COMPONENT) },
      spec: {
        selector: this.selectorFor(COMPONENT),
        ports: Object.entries(PORTS).map(([name, port]) => ({ name, port, targetPort: k8s.IntOrString.fromString(name) })),
      },
    });
  }

  private addDisruptionBudget(): void {
    new k8s.KubePodDisruptionBudget(this, 'disruption-budget', {
      metadata: { name: 'triton', labels: this.labelsFor(COMPONENT) },
      spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: this.selectorFor(COMPONENT) } },
    });
  }

  /**
   * Triton's metrics port on our Service. Metric names from triton-inference-server/core
   * src/metrics.cc: per model and version, the counters nv_inference_request_success,
   * nv_inference_request_failure (with a `reason` label) and nv_inference_queue_duration_us
   * (cumulative microseconds); per GPU (gpu_uuid), nv_gpu_memory_used_bytes and _total_bytes,
   * which count the whole device, so memory taken by other time-sliced pods shows too.
   */
  private addMonitoring(): void {
    this.exposeMetrics({
      name: 'server',
      kind: 'service',
      selector: this.selectorFor(COMPONENT),
      port: 'metrics',
      podPort: PORTS.metrics,
      podSelector: this.selectorFor(COMPONENT),
    });
    const own = `${SERVICE_LABEL}="${this.serviceName}"`;
    const perModel = (metric: string) => `sum by (model) (rate(${metric}{${own}}[5m]))`;
    this.addAlerts(
      {
        alert: 'TritonInferenceFailures',
        expr: [
          perModel('nv_inference_request_failure'),
          `/ (${perModel('nv_inference_request_success')} + ${perModel('nv_inference_request_failure')})`,
          `> ${ALERT_THRESHOLDS.failureRatio}`,
        ].join('\n'),
        for: '10m',
        severity: 'warning',
        summary: 'Triton model {{ $labels.model }} fails {{ $value | humanizePercentage }} of its inference requests',
      },
      {
        alert: 'TritonQueueLatencyHigh',
        // Microseconds of queueing per successful request, in seconds.
        expr: [
          perModel('nv_inference_queue_duration_us'),
          `/ ${perModel('nv_inference_request_success')}`,
          `/ 1000000 > ${ALERT_THRESHOLDS.queueSeconds}`,
        ].join('\n'),
        for: '10m',
        severity: 'warning',
        summary: 'Requests to Triton model {{ $labels.model }} wait {{ $value | humanizeDuration }} in the queue on average',
        description: 'The model cannot keep up: add instances or replicas, enable dynamic batching, or move load elsewhere.',
      },
      ...this.gpuAlerts(own),
    );
    this.addDashboard(DASHBOARD);
  }

  /** With GPUs: Triton's own view of their memory (nv_gpu_* series exist only then). */
  private gpuAlerts(own: string): AlertRule[] {
    if (this.computeMode?.mode !== 'gpu') return [];
    return [
      {
        alert: 'TritonGpuMemoryNearlyFull',
        expr: `max by (gpu_uuid) (nv_gpu_memory_used_bytes{${own}} / nv_gpu_memory_total_bytes{${own}}) > ${ALERT_THRESHOLDS.gpuMemoryRatio}`,
        for: '15m',
        severity: 'warning',
        summary: 'GPU {{ $labels.gpu_uuid }} memory is {{ $value | humanizePercentage }} used',
        description: 'Loading another model, or a larger batch, will fail with out-of-memory errors.',
      },
    ];
  }

  /** Triton is ready, serves the smoke model, and the model's answer to a fixed request is right. */
  private addCheckpoint(): void {
    const model = `${this.httpUrl}/v2/models/${SMOKE_MODEL.name}`;
    new Checkpoint(this, 'checkpoint', {
      description: `Triton is ready and ${SMOKE_MODEL.name} answers an inference request correctly`,
      image: IMAGES.curl,
      // Each call with its retries at curl's limit, after the pod's start.
      scriptSeconds: Object.values(CHECKPOINT_CALLS).reduce((sum, call) => sum + curlRetrySeconds(call), 0),
      script: [
        `curl -fsS -o /dev/null ${curlRetryOptions(CHECKPOINT_CALLS.serverReady)} "${this.httpUrl}/v2/health/ready"`,
        `curl -fsS -o /dev/null ${curlRetryOptions(CHECKPOINT_CALLS.modelReady)} "${model}/ready"`,
        `answer=$(curl -fsS ${curlRetryOptions(CHECKPOINT_CALLS.inference)} -H "Content-Type: application/json" -d '${JSON.stringify(smokeRequest())}' "${model}/infer" | tr -d ' \\n')`,
        'echo "$answer"',
        // The values of the output named SUM, e.g. `11,22,33,44`.
        `got=$(echo "$answer" | sed -n 's/.*"name":"${SMOKE_MODEL.output}"[^}]*"data":\\[\\([-0-9,]*\\)\\].*/\\1/p')`,
        `[ "$got" = "${smokeAnswer().join(',')}" ] || { echo "expected ${SMOKE_MODEL.output} = [${smokeAnswer().join(',')}], got [$got]" >&2; exit 1; }`,
      ].join('\n'),
    });
  }
}

/**
 * The checkpoint's three calls: the server's readiness (five minutes: a GPU node may still pull
 * the image), the model's (it loads after the server), the inference; each attempt within curl's
 * limit, so that a server that accepts connections but never answers fails the check.
 */
const CHECKPOINT_CALLS: Readonly<Record<'serverReady' | 'modelReady' | 'inference', CurlRetry>> = {
  serverReady: { retries: 30, delaySeconds: 10, maxSeconds: 10 },
  modelReady: STARTING_SERVER_CALL,
  inference: { retries: 3, delaySeconds: 5, maxSeconds: 30 },
};

interface RepositoryMount {
  /** Value of --model-repository. */
  readonly path: string;
  readonly env: k8s.EnvVar[];
  readonly volumes: k8s.Volume[];
  readonly mounts: k8s.VolumeMount[];
}

/** The user's repository, checked: exactly one source, a volume only with storage and one replica, a bucket only with the store. */
function repositorySource(
  props: TritonProps,
  replicas: number,
): { s3: TritonS3Repository } | { bucket: TritonObjectStoreRepository; store: ObjectStore } | { volume: { size: string }; storage: StorageProvider } {
  const { volume, s3, objectStore } = props.modelRepository;
  if ([volume, s3, objectStore].filter((source) => source !== undefined).length !== 1) throw new Error('triton: the model repository needs exactly one of volume, s3 or objectStore');
  if (s3) return { s3 };
  if (objectStore) {
    if (!props.objectStore) throw new Error('triton: modelRepository.objectStore needs the object store');
    return { bucket: objectStore, store: props.objectStore };
  }
  if (!volume) throw new Error('triton: the model repository needs exactly one of volume, s3 or objectStore');
  if (!props.storage) throw new Error('triton: a volume model repository needs a storage provider');
  if (replicas > 1) throw new Error('triton: a ReadWriteOnce model volume allows one replica; use S3 or the object store for more');
  return { volume, storage: props.storage };
}

function tritonContainer(props: TritonProps, gpus: number, repository: RepositoryMount, args: string[]): k8s.Container {
  const compute = toResourceRequirements(props.resources);
  return {
    name: 'triton',
    image: IMAGES.triton,
    imagePullPolicy: 'IfNotPresent',
    // Through the image's entrypoint, as NVIDIA's own Kubernetes examples run it.
    args,
    env: [
      // build.py creates the user with a plain `useradd`, which makes no home directory:
      // backends caching under $HOME (PyTorch, OpenAI Triton) use /tmp instead.
      { name: 'HOME', value: '/tmp' },
      ...repository.env,
    ],
    ports: Object.entries(PORTS).map(([name, containerPort]) => ({ name, containerPort })),
    resources: { requests: compute.requests, limits: gpus > 0 ? { ...compute.limits, [GPU_RESOURCE]: k8s.Quantity.fromNumber(gpus) } : compute.limits },
    ...probes(props.startupTimeoutSeconds),
    // Restricted, with a read-only root: as uid 1000 Triton can write only to world-writable
    // paths anyway, and those are volumes here. What it cannot get in a pod: the raised
    // memlock and stack ulimits of NVIDIA's `docker run` examples (Kubernetes sets no
    // ulimits; the runtime's defaults apply), and host IPC, so clients in other pods cannot
    // use Triton's system shared memory protocol (HTTP, gRPC and CUDA shared memory work).
    securityContext: restrictedContainerContext(),
    volumeMounts: [
      ...repository.mounts,
      // File by file (subPath): a ConfigMap volume's root holds ..data symlinks, which Triton
      // does not skip (core GetDirectorySubdirs) and would try to load as models.
      { name: 'smoke-model', mountPath: `${SMOKE_REPOSITORY}/${SMOKE_MODEL.name}/config.pbtxt`, subPath: 'config.pbtxt', readOnly: true },
      { name: 'smoke-model', mountPath: `${SMOKE_REPOSITORY}/${SMOKE_MODEL.name}/1/model.py`, subPath: 'model.py', readOnly: true },
      { name: 'shm', mountPath: '/dev/shm' },
      // S3 repositories are copied here (Triton's default mount directory).
      { name: 'tmp', mountPath: '/tmp' },
    ],
  };
}

/** HTTP comes up only after the startup loads (src/main.cc): the startup probe covers loading. */
function probes(startupSeconds: number): Pick<k8s.Container, 'startupProbe' | 'livenessProbe' | 'readinessProbe'> {
  const get = (path: string) => ({ httpGet: { path, port: k8s.IntOrString.fromString('http') } });
  return {
    startupProbe: { ...get('/v2/health/live'), periodSeconds: 10, failureThreshold: Math.ceil(startupSeconds / 10) },
    livenessProbe: { ...get('/v2/health/live'), periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
    readinessProbe: { ...get('/v2/health/ready'), periodSeconds: 5, timeoutSeconds: 5, failureThreshold: 3 },
  };
}

function tritonArgs(repository: string, mode: ModelControlMode): string[] {
  return [
    'tritonserver',
    // Triton takes several repositories; model names must be unique across them.
    `--model-repository=${repository}`,
    `--model-repository=${SMOKE_REPOSITORY}`,
    `--model-control-mode=${mode}`,
    // In explicit mode only models named here load at startup; the rest through the API.
    ...(mode === 'explicit' ? [`--load-model=${SMOKE_MODEL.name}`] : []),
  ];
}

/**
 * OpenTelemetry tracing of inference requests (Triton docs, user_guide/trace.md "OpenTelemetry
 * trace support"): OTLP/HTTP to `<endpoint>/v1/traces`, spans named by the request's stages,
 * one request in 100 sampled (tracing every request costs latency).
 */
function traceArgs(endpoint: string): string[] {
  return [
    '--trace-config', 'mode=opentelemetry',
    '--trace-config', `opentelemetry,url=${endpoint}/v1/traces`,
    '--trace-config', 'opentelemetry,resource=service.name=triton',
    '--trace-config', 'rate=100',
    '--trace-config', 'level=TIMESTAMPS',
  ];
}

/** The checkpoint's request, in the KServe v2 JSON protocol. */
function smokeRequest() {
  return {
    inputs: Object.entries(SMOKE_MODEL.inputs).map(([name, data]) => ({ name, datatype: 'INT32', shape: [data.length], data })),
    outputs: [{ name: SMOKE_MODEL.output }],
  };
}

function smokeAnswer(): number[] {
  const { A, B } = SMOKE_MODEL.inputs;
  return A.map((a, i) => a + B[i]);
}

function checksum(files: Record<string, string>): string {
  return createHash('sha256').update(JSON.stringify(files)).digest('hex');
}

export const tritonEntry = defineService({
  name: 'triton',
  settings: { key: 'triton', schema: tritonSettings },
  names: [TRITON_NAMESPACE],
  // GPUs where the device plugin advertises them (an environment with GPU nodes), else CPU.
  requires: (settings) => [
    ...(settings.modelRepository.volume ? [{ entry: longhornEntry, path: ['modelRepository', 'volume'], reason: 'a volume needs Longhorn' }] : []),
    ...(settings.modelRepository.objectStore ? [{ entry: seaweedfsEntry, path: ['modelRepository', 'objectStore'], reason: "the model repository's bucket is in the object store" }] : []),
  ],
  check: (settings, env) =>
    env.isEnabled(nvidiaDevicePluginEntry) && env.settingsOf(nvidiaDevicePluginEntry).timeSlicing && settings.gpusPerReplica > 1
      ? [
          {
            path: ['gpusPerReplica'],
            message: `expected 1 with services.nvidiaDevicePlugin.timeSlicing (the plugin refuses requests for more than one shared GPU), received ${settings.gpusPerReplica}`,
          },
        ]
      : [],
  build: (platform, settings, context) =>
    new Triton(platform, {
      ...settings,
      devicePlugin: context.optional(nvidiaDevicePluginEntry),
      // Only a volume repository needs Longhorn: an S3 one must not wait for it.
      storage: settings.modelRepository.volume ? context.required(longhornEntry) : undefined,
      objectStore: settings.modelRepository.objectStore ? context.required(seaweedfsEntry) : undefined,
    }),
});
