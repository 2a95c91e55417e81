/**
 * `services.ray` in homelab.yaml: the Ray cluster of the AI layer (KubeRay operator plus one
 * RayCluster). The head is sized once; worker groups are named, autoscaled between
 * minReplicas and maxReplicas, and get GPUs when `gpusPerWorker` is above 0.
 */
import { z } from 'zod';
import { parseQuantity } from '../../lib/util/quantity';
import { bool, intBetween, k8sName, memoryQuantity, resourcesSchema, subdomain } from '../../lib/model/config/primitives';

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

export const raySchema = z
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
  });

export type RayConfig = z.output<typeof raySchema>;
export type RayWorkerGroupConfig = z.output<typeof workerGroupSchema>;
