/**
 * The AI layer's settings in homelab.yaml: `services.nvidiaDevicePlugin` (GPUs advertised
 * to Kubernetes, optionally time-sliced) and `services.triton` (Triton Inference Server).
 * Checks that need other parts of the environment (nodes, Longhorn) are in
 * `aiServiceIssues`, for the environment-level refinement in ../schema.ts.
 */
import { z } from 'zod';
import { parseQuantity } from '../../lib/util/quantity';
import { bool, intBetween, k8sName, memoryQuantity, oneOf, resourcesSchema, volumeSize } from '../../lib/model/config/primitives';

const expected = (what: string) => ({ error: `expected ${what}` });

export const nvidiaDevicePluginSchema = z.strictObject({
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
});

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

const region = z.string(expected('a region name such as "eu-central-1"')).regex(/^[a-z0-9-]+$/, expected('a region name such as "eu-central-1"'));

const modelRepositorySchema = z
  .strictObject({
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
  })
  .refine((repository) => (repository.volume === undefined) !== (repository.s3 === undefined), {
    // Environments deep-merge onto the base, so switching sources needs `volume: null` or `s3: null`.
    error: 'expected exactly one of volume or s3 (set the other to null in an environment that switches)',
  });

export const tritonSchema = z
  .strictObject({
    enabled: bool.default(false),
    replicas: intBetween(1, 16).default(1),
    /** `nvidia.com/gpu` each replica requests (time-sliced GPUs when the device plugin shares them). */
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
        message: `expected 1 with modelRepository.volume (a ReadWriteOnce volume attaches to one pod; use modelRepository.s3 for more), received ${triton.replicas}`,
      });
    }
  });

/** Bytes of a memory quantity; undefined when it is malformed (reported by its own field). */
function memoryBytes(quantity: string): number | undefined {
  return memoryQuantity.safeParse(quantity).success ? parseQuantity(quantity) : undefined;
}

export type NvidiaDevicePluginConfig = z.output<typeof nvidiaDevicePluginSchema>;
export type TritonConfig = z.output<typeof tritonSchema>;

/** What the cross-service checks read from an environment. */
export interface AiEnvironment {
  readonly nodes: Readonly<Record<string, { readonly gpus: number }>>;
  readonly longhornEnabled: boolean;
  readonly nvidiaDevicePlugin: NvidiaDevicePluginConfig;
  readonly triton: TritonConfig;
}

export interface ConfigIssue {
  /** From the environment's root, e.g. ['services', 'triton', 'enabled']. */
  readonly path: (string | number)[];
  readonly message: string;
}

/** Problems between the AI services and the rest of an environment; [] if none. */
export function aiServiceIssues(env: AiEnvironment): ConfigIssue[] {
  const { nvidiaDevicePlugin: plugin, triton } = env;
  const issues: ConfigIssue[] = [];
  const hasGpuNodes = Object.values(env.nodes).some((node) => node.gpus > 0);
  if (plugin.enabled && !hasGpuNodes) {
    issues.push({ path: ['services', 'nvidiaDevicePlugin', 'enabled'], message: 'expected a node with gpus > 0 in nodes: the device plugin runs only on GPU nodes' });
  }
  if (!triton.enabled) return issues;
  if (!plugin.enabled) {
    issues.push({ path: ['services', 'triton', 'enabled'], message: 'expected services.nvidiaDevicePlugin.enabled: Triton needs the GPUs it advertises' });
  }
  if (triton.modelRepository.volume && !env.longhornEnabled) {
    issues.push({ path: ['services', 'triton', 'modelRepository', 'volume'], message: 'expected services.longhorn.enabled: a volume needs Longhorn' });
  }
  if (plugin.enabled && plugin.timeSlicing && triton.gpusPerReplica > 1) {
    issues.push({
      path: ['services', 'triton', 'gpusPerReplica'],
      message: `expected 1 with services.nvidiaDevicePlugin.timeSlicing (the plugin refuses requests for more than one shared GPU), received ${triton.gpusPerReplica}`,
    });
  }
  return issues;
}
