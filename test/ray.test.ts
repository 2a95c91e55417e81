/**
 * Ray: the KubeRay operator and the RayCluster, synthesized into the example's prod
 * environment (one GPU node, `gpu-1`). The checks are on what the cluster will do with the
 * output: schemas, GPU requests against what Ray is told, placement on the inventory's GPU
 * nodes, wave order, capacity, and the checkpoint scripts run against canned answers.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'cdk8s';
import type { z } from 'zod';
import { describe, expect, it } from 'vitest';
import type { NvidiaDevicePlugin } from '../charts/nvidia-device-plugin';
import { KuberayOperator, Ray, rayCheckpointJob } from '../charts/ray';
import { isGpuProvider } from '../lib/model/gpu';
import { discoveredGpuLabels } from './support';
import { IMAGES, RAY_VERSION } from '../charts/versions';
import type { EnvironmentConfig } from '../lib/model/config/environment';
import { raySettings as raySchema, rayEntry } from '../charts/ray';
import { settingsIn } from '../lib/model/catalog';
import { UserError } from '../lib/util/errors';
import { dependencyGraph } from '../lib/passes/graph';
import { helmValuesErrors } from '../lib/tools/validate/helm-values';

import { parseQuantity } from '../lib/util/quantity';
import { SynthesizedEnvironment, synthesizePlatform } from '../lib/output/synthesize';
import { ManifestValidator } from '../lib/tools/validate/manifest-validator';
import { buildPlatform, environmentIssues, platformObject, platformText, synthesizeEnvironment, FAKE_CLOCK, FAKE_SLEEP, fakeCallCount, Manifest, manifestAt, manifestsOf, parseText, runWithFakeCommands, shellQuoted, tempDir, toYamlText } from './support';

/** services.ray as homelab.yaml would carry it: a CPU group 1..3 and a GPU group 0..1. */
const RAY_SETTINGS = {
  enabled: true,
  workerGroups: {
    cpu: {
      minReplicas: 1,
      maxReplicas: 3,
      resources: { requests: { cpu: '1', memory: '2Gi' }, limits: { cpu: '2', memory: '4Gi' } },
    },
    gpu: {
      minReplicas: 0,
      maxReplicas: 1,
      gpusPerWorker: 1,
      shmSize: '4Gi',
      resources: { requests: { cpu: '2', memory: '8Gi' }, limits: { cpu: '4', memory: '16Gi' } },
    },
  },
};

type Mutation = (config: Record<string, any>) => void;

function prodConfig(mutate?: Mutation): EnvironmentConfig {
  const config = platformObject();
  mutate?.(config);
  return parseText(toYamlText(config), 'homelab.yaml').environments.get('prod')!;
}

interface Variant {
  readonly config?: EnvironmentConfig;
  readonly ray?: unknown;
  readonly environment?: string;
  readonly operator?: boolean;
}

function buildRay(variant: Variant = {}) {
  const app = new App();
  const environment = variant.environment ?? 'prod';
  const config = variant.config ?? parseText(platformText(), 'homelab.yaml').environments.get(environment)!;
  // The example's own Ray is replaced by the variant under test.
  const platform = buildPlatform(app, environment, { ...config, services: { ...config.services, ray: { ...settingsIn(config, rayEntry), enabled: false } } });
  if (variant.operator ?? true) new KuberayOperator(platform);
  new Ray(platform, { ...raySchema.parse(variant.ray ?? RAY_SETTINGS), devicePlugin: platform.services.find(isGpuProvider) as NvidiaDevicePlugin | undefined });
  return { app, platform };
}

function synthRay(variant: Variant = {}): SynthesizedEnvironment {
  const { app, platform } = buildRay(variant);
  return synthesizePlatform(app, platform);
}

const prod = synthRay();
const documents = manifestsOf(prod);

function find(env: SynthesizedEnvironment, path: string): Manifest {
  return manifestAt(env, path);
}

const clusterOf = (env: SynthesizedEnvironment) => find(env, 'ray/raycluster-ray.yaml');
const workerGroupsOf = (env: SynthesizedEnvironment): any[] => clusterOf(env).spec.workerGroupSpecs;
const isGpuGroup = (group: any) => 'nvidia.com/gpu' in (group.template.spec.containers[0].resources.limits ?? {});

/** The inventory nodes a pod spec can be scheduled on, from its nodeSelector and node affinity. */
function schedulableNodes(spec: any, config: EnvironmentConfig): string[] {
  const terms = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  return Object.entries(config.nodes)
    .filter(([name, node]) => {
      // As the cluster labels the node: GPU discovery adds its label to GPU nodes.
      const labels: Record<string, string> = { ...node.labels, ...discoveredGpuLabels(node), 'kubernetes.io/hostname': name };
      const selected = Object.entries(spec.nodeSelector ?? {}).every(([key, value]) => labels[key] === value);
      const affine =
        terms.length === 0 ||
        terms.some((term: any) => term.matchExpressions.every((e: any) => e.operator === 'In' && e.values.includes(labels[e.key])));
      const tolerated = node.taints.every((taint) =>
        (spec.tolerations ?? []).some(
          (t: any) => t.key === taint.key && t.effect === taint.effect && (t.operator === 'Exists' || t.value === taint.value),
        ),
      );
      return selected && affine && tolerated;
    })
    .map(([name]) => name);
}

describe('the synthesized Ray services', () => {
  it('validate against the Kubernetes and CRD schemas, the RayCluster included', () => {
    const validator = ManifestValidator.shared();
    expect(documents.flatMap(({ path, manifest }) => validator.validate(manifest).map((p) => `${path}: ${p}`))).toEqual([]);
    const cluster = clusterOf(prod);
    expect(cluster.apiVersion).toBe('ray.io/v1');
    // The RayCluster is checked against the CRD's schema, not waved through.
    expect(validator.validate({ ...cluster, spec: { ...cluster.spec, headGroupSpec: { rayStartParams: {} } } })).not.toEqual([]);
  });

  it('install the pinned operator chart with its CRDs and values the chart accepts', () => {
    const app = find(prod, 'apps/application-kuberay-operator.yaml');
    const chart = app.spec.sources.find((s: any) => s.chart);
    expect(chart).toMatchObject({ chart: 'kuberay-operator', repoURL: 'https://ray-project.github.io/kuberay-helm/', targetRevision: '1.7.0' });
    // The CRDs come with the chart: Argo CD must not skip them.
    expect(chart.helm.skipCrds).toBeUndefined();
    expect(app.spec.syncPolicy.syncOptions).toContain('ServerSideApply=true');
    expect(helmValuesErrors('kuberay-operator', chart.helm.valuesObject)).toEqual([]);
    for (const kind of ['requests', 'limits']) {
      expect(chart.helm.valuesObject.resources[kind].cpu).toBeTruthy();
      expect(chart.helm.valuesObject.resources[kind].memory).toBeTruthy();
    }
  });

  it('order the RayCluster after the operator that installs its CRD', () => {
    const wave = (name: string) => Number(find(prod, `apps/application-${name}.yaml`).metadata.annotations!['argocd.argoproj.io/sync-wave']);
    expect(wave('ray')).toBeGreaterThan(wave('kuberay-operator'));
    // GPU workers also need the device plugin (its RuntimeClass, its advertised GPUs).
    // And on the monitoring CRDs, for its PodMonitor and alert rules.
    expect(prod.services.find((s) => s.name === 'ray')!.dependsOn).toEqual(['kuberay-operator', 'nvidia-device-plugin', 'prometheus-operator-crds']);
    // The CRD is in place by then: no dry-run skipping, no resource wave.
    expect(clusterOf(prod).metadata.annotations).toBeUndefined();
    expect(() => dependencyGraph(buildRay({ operator: false }).platform)).toThrow(
      'ray emits ray.io resources, but no enabled service installs that CRD group',
    );
  });

  it('run restricted: namespaces, every Ray pod template and the autoscaler sidecar', () => {
    for (const path of ['ray/namespace-ray.yaml', 'kuberay-operator/namespace-kuberay-system.yaml']) {
      expect(find(prod, path).metadata.labels!['pod-security.kubernetes.io/enforce'], path).toBe('restricted');
    }
    const cluster = clusterOf(prod);
    const templates = [cluster.spec.headGroupSpec.template, ...cluster.spec.workerGroupSpecs.map((g: any) => g.template)];
    for (const template of templates) {
      expect(template.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, runAsGroup: 100, seccompProfile: { type: 'RuntimeDefault' } });
      for (const container of template.spec.containers) {
        expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
      }
    }
    expect(cluster.spec.autoscalerOptions.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
  });
});

describe('the RayCluster', () => {
  const cluster = clusterOf(prod);

  it('runs the pinned Ray release its rayVersion names', () => {
    expect(cluster.spec.rayVersion).toBe(RAY_VERSION);
    expect(IMAGES.ray).toBe(`docker.io/rayproject/ray:${RAY_VERSION}`);
    expect(IMAGES.rayGpu).toBe(`docker.io/rayproject/ray:${RAY_VERSION}-gpu`);
    expect(cluster.spec.headGroupSpec.template.spec.containers[0].image).toBe(IMAGES.ray);
  });

  it('has a head with the named ports, a dashboard reachable in the cluster, and no tasks', () => {
    const head = cluster.spec.headGroupSpec;
    expect(head.template.spec.containers[0].ports).toEqual([
      { name: 'dashboard', containerPort: 8265 },
      { name: 'gcs-server', containerPort: 6379 },
      { name: 'client', containerPort: 10001 },
      { name: 'metrics', containerPort: 8080 },
    ]);
    expect(head.rayStartParams).toMatchObject({ 'dashboard-host': '0.0.0.0', 'num-cpus': '0', 'metrics-export-port': '8080' });
    expect(head.template.spec.containers[0].resources).toEqual({
      requests: { cpu: '500m', memory: '2Gi' },
      limits: { cpu: '2', memory: '4Gi' },
    });
  });

  it('autoscales every worker group between its minReplicas and maxReplicas', () => {
    expect(cluster.spec.enableInTreeAutoscaling).toBe(true);
    expect(cluster.spec.autoscalerOptions.resources.requests).toBeDefined();
    expect(cluster.spec.autoscalerOptions.resources.limits).toBeDefined();
    expect(workerGroupsOf(prod).map((g) => [g.groupName, g.minReplicas, g.replicas, g.maxReplicas])).toEqual([
      ['cpu', 1, 1, 3],
      ['gpu', 0, 0, 1],
    ]);
  });

  it('tells Ray exactly the GPUs each GPU worker requests, on the -gpu image and NVIDIA runtime', () => {
    const gpuGroups = workerGroupsOf(prod).filter(isGpuGroup);
    expect(gpuGroups.map((g) => g.groupName)).toEqual(['gpu']);
    for (const group of gpuGroups) {
      const { resources, image } = group.template.spec.containers[0];
      expect(resources.limits['nvidia.com/gpu']).toBe(group.rayStartParams['num-gpus']);
      expect(resources.requests['nvidia.com/gpu']).toBe(resources.limits['nvidia.com/gpu']);
      expect(Number(group.rayStartParams['num-gpus'])).toBe(RAY_SETTINGS.workerGroups.gpu.gpusPerWorker);
      expect(image).toBe(IMAGES.rayGpu);
      expect(group.template.spec.runtimeClassName).toBe('nvidia');
    }
  });

  it('keeps CPU groups off GPUs: no GPU resources, no num-gpus, no GPU placement, GPUs hidden', () => {
    const cpuGroups = workerGroupsOf(prod).filter((g) => !isGpuGroup(g));
    expect(cpuGroups.map((g) => g.groupName)).toEqual(['cpu']);
    for (const group of cpuGroups) {
      const container = group.template.spec.containers[0];
      expect(container.resources.requests['nvidia.com/gpu']).toBeUndefined();
      expect(group.rayStartParams['num-gpus']).toBeUndefined();
      expect(container.image).toBe(IMAGES.ray);
      expect(group.template.spec.runtimeClassName).toBeUndefined();
      expect(group.template.spec.nodeSelector).toBeUndefined();
      expect(container.env).toEqual([{ name: 'NVIDIA_VISIBLE_DEVICES', value: 'void' }]);
    }
  });

  it('gives each worker a memory-backed /dev/shm that holds its whole object store', () => {
    for (const group of workerGroupsOf(prod)) {
      const settings = RAY_SETTINGS.workerGroups[group.groupName as 'cpu' | 'gpu'] as { shmSize?: string };
      const shm = settings.shmSize ?? '1Gi';
      const mount = group.template.spec.containers[0].volumeMounts.find((m: any) => m.mountPath === '/dev/shm');
      const volume = group.template.spec.volumes.find((v: any) => v.name === mount.name);
      expect(volume.emptyDir).toEqual({ medium: 'Memory', sizeLimit: shm });
      const store = Number(group.rayStartParams['object-store-memory']);
      // Ray only uses /dev/shm when it is strictly larger than the store.
      expect(store).toBeLessThan(parseQuantity(shm));
      expect(store).toBeGreaterThan(0.8 * parseQuantity(shm));
    }
  });
});

describe('GPU placement from the node inventory', () => {
  it('targets exactly the GPU nodes of prod', () => {
    const config = parseText(platformText(), 'homelab.yaml').environments.get('prod')!;
    const gpu = workerGroupsOf(prod).find(isGpuGroup);
    expect(schedulableNodes(gpu.template.spec, config)).toEqual(['gpu-1']);
  });

  it('tolerates the taints of the GPU nodes', () => {
    const config = prodConfig((c) => {
      c.nodes['gpu-1'].taints = [
        { key: 'nvidia.com/gpu', effect: 'NoSchedule' },
        { key: 'homelab.dev/dedicated', value: 'ai', effect: 'NoExecute' },
      ];
      // Two untainted nodes are left: too few for Vault's three HA pods (one per node).
      c.environments.prod.services.vault.replicas = 1;
    });
    const gpu = workerGroupsOf(synthRay({ config })).find(isGpuGroup);
    expect(gpu.template.spec.tolerations).toEqual([
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
      { key: 'homelab.dev/dedicated', operator: 'Equal', value: 'ai', effect: 'NoExecute' },
    ]);
    expect(schedulableNodes(gpu.template.spec, config)).toEqual(['gpu-1']);
  });

  it('finds the GPU node by the discovered label when its inventory labels are those of a CPU node', () => {
    const config = prodConfig((c) => (c.nodes['gpu-1'].labels = { 'homelab.dev/zone': 'rack-a' }));
    const gpu = workerGroupsOf(synthRay({ config })).find(isGpuGroup);
    expect(schedulableNodes(gpu.template.spec, config)).toEqual(['gpu-1']);
  });

  it('leaves the GPU group out where no device plugin advertises GPUs, and says so', () => {
    const config = platformObject();
    // Small enough for dev's one node.
    const small = { requests: { cpu: '100m', memory: '512Mi' }, limits: { cpu: '1', memory: '2Gi' } };
    config.environments.dev.services.ray = { enabled: true, head: { resources: small }, workerGroups: { cpu: { maxReplicas: 1, resources: small } } };
    const dev = synthesizeEnvironment(toYamlText(config), 'dev').env;
    const cluster = manifestsOf(dev).find(({ manifest }) => manifest.kind === 'RayCluster')!.manifest;
    expect(cluster.spec.workerGroupSpecs.map((g: any) => g.groupName)).toEqual(['cpu']);
    expect(dev.capacity.requested.gpus).toBe(0);
    expect(dev.capacity.computeModes).toContainEqual({ service: 'ray', mode: 'cpu', detail: 'no GPU provider: without GPU worker group gpu' });
    expect(prod.capacity.computeModes).toContainEqual({ service: 'ray', mode: 'gpu', detail: 'GPU worker group gpu' });
  });

  it('refuses a cluster of GPU groups only where no device plugin advertises GPUs, naming the setting', () => {
    const gpuOnly = { enabled: true, workerGroups: { gpu: RAY_SETTINGS.workerGroups.gpu } };
    expect(environmentIssues({ nodes: { a: { role: 'control-plane', cpu: 16, memory: '64Gi' } }, services: { longhorn: { replicas: 1 }, ray: gpuOnly } })).toEqual([
      { path: 'services.ray.workerGroups', message: 'expected a CPU worker group (gpusPerWorker: 0): without services.nvidiaDevicePlugin the GPU groups are left out' },
    ]);
  });
});

describe('capacity', () => {
  it('counts autoscaled groups at maxReplicas: 3 one-GPU workers and Triton do not fit one GPU time-sliced twice', () => {
    const ray = structuredClone(RAY_SETTINGS);
    ray.workerGroups.gpu.maxReplicas = 3;
    expect(() => synthRay({ ray })).toThrow(UserError);
    expect(() => synthRay({ ray })).toThrow(
      'nodes: gpus: the services request 4, the nodes have 2 (1 GPUs time-sliced 2 ways) (ray/gpu workers 3 x 1, triton/server 1 x 1)',
    );
  });

  it('reports what the Ray services request: one GPU worker, beside Triton\'s one', () => {
    expect(prod.capacity.requested.gpus).toBe(2);
  });
});

describe('services.ray config', () => {
  const issues = (value: unknown) =>
    (raySchema.safeParse(value).error?.issues ?? []).map((i: z.core.$ZodIssue) => `services.ray.${i.path.join('.')}: ${i.message}`);

  it('accepts the example groups and fills in the defaults', () => {
    const ray = raySchema.parse(RAY_SETTINGS);
    expect(ray.head.resources.requests).toEqual({ cpu: '500m', memory: '2Gi' });
    expect(ray.workerGroups.cpu).toMatchObject({ gpusPerWorker: 0, shmSize: '1Gi' });
    expect(raySchema.parse({})).toEqual({ enabled: false, subdomain: 'ray', head: { resources: ray.head.resources }, workerGroups: {} });
  });

  it('rejects minReplicas above maxReplicas, naming the path', () => {
    const ray = structuredClone(RAY_SETTINGS);
    ray.workerGroups.gpu.minReplicas = 2;
    expect(issues(ray)).toEqual(['services.ray.workerGroups.gpu.minReplicas: expected at most maxReplicas (1), received 2']);
  });

  it('rejects an enabled cluster without worker groups', () => {
    expect(issues({ enabled: true })).toEqual(['services.ray.workerGroups: expected at least one worker group']);
  });

  it('rejects a /dev/shm that would not fit the memory limit or the object store', () => {
    const ray = structuredClone(RAY_SETTINGS);
    ray.workerGroups.gpu.shmSize = '16Gi';
    expect(issues(ray)).toEqual([
      'services.ray.workerGroups.gpu.shmSize: expected less than the memory limit (16Gi): /dev/shm is memory of the worker, received "16Gi"',
    ]);
    ray.workerGroups.gpu.shmSize = '64Mi';
    expect(issues(ray)).toEqual([`services.ray.workerGroups.gpu.shmSize: expected at least 100Mi (Ray's object store needs 75Mi), received "64Mi"`]);
  });

  it('rejects typos and out-of-range values at their path, in the shared wording', () => {
    const ray = structuredClone(RAY_SETTINGS) as any;
    ray.workerGroups.cpu.maxReplica = 3;
    ray.workerGroups.gpu.gpusPerWorker = -1;
    const result = raySchema.safeParse(ray);
    expect(result.error!.issues.map((i: z.core.$ZodIssue) => [i.code, i.path.join('.')])).toEqual([
      ['unrecognized_keys', 'workerGroups.cpu'],
      ['too_small', 'workerGroups.gpu.gpusPerWorker'],
    ]);
    expect(issues(ray)).toContain('services.ray.workerGroups.gpu.gpusPerWorker: expected an integer between 0 and 16');
  });
});

/**
 * Runs a checkpoint Job's script with fake `curl` (prints `curlOutput`, or fails like a refused
 * connection), `sleep`, and a clock that jumps a minute per read, so retries end quickly.
 */
function runCheckpoint(job: Manifest, curlOutput: string | undefined): { status: number | null; stdout: string; stderr: string; urls: string[] } {
  const curl = 'echo "$@" >> "$FAKE_BIN/curl.args"\n[ -n "${FAKE_CURL_OUTPUT+set}" ] || exit 7\nprintf "%s" "$FAKE_CURL_OUTPUT"';
  const result = runWithFakeCommands(job.spec.template.spec.containers[0], { curl, sleep: FAKE_SLEEP, date: FAKE_CLOCK }, {
    // Five minutes a tick: the 20-minute wait ends after four tries instead of twenty.
    env: { FAKE_CLOCK_STEP: '300', ...(curlOutput === undefined ? {} : { FAKE_CURL_OUTPUT: curlOutput }) },
    collect: (bin) => readFileSync(join(bin, 'curl.args'), 'utf8').trim().split('\n').map((args) => args.split(' ').pop()!),
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, urls: result.collected };
}

/** A node as Ray's state API (`GET /api/v0/nodes`) lists it: json.dumps of NodeState. */
const stateNode = (id: string, head: boolean) =>
  `{"node_id": "${id}", "node_ip": "10.42.0.${id.length}", "is_head_node": ${head}, "state": "ALIVE", "state_message": null, ` +
  `"node_name": "10.42.0.${id.length}", "resources_total": {"CPU": ${head ? 0 : 2}.0, "memory": 4294967296.0}, "labels": {"ray.io/node-id": "${id}"}}`;
const nodesResponse = (...nodes: string[]) =>
  `{"result": true, "msg": "", "data": {"result": {"total": ${nodes.length}, "num_after_truncation": ${nodes.length}, "num_filtered": ${nodes.length}, ` +
  `"result": [${nodes.join(', ')}], "partial_failure_warning": "", "warnings": null}}}`;
const ALIVE = nodesResponse(stateNode('head1', true), stateNode('worker1', false));

/** The Ray dashboard's job API as the checkpoint sees it: a job's details, and its logs (JSON strings, newlines escaped). */
interface FakeJobApi {
  /** The state API answers the head alone before this call (1-based), `nodes` from it on. @default 1 */
  readonly nodesFromCall?: number;
  readonly submit?: 'accepted' | 'refused';
  readonly status?: string;
  readonly logLine?: string;
}

/**
 * Runs the checkpoint against a fake dashboard: the state API answers `nodes`, the job API
 * answers as `api` says; every curl call is recorded with its method.
 */
function runJobCheckpoint(job: Manifest, nodes: string, api: FakeJobApi, env: Record<string, string> = {}) {
  const jobDetails = JSON.stringify({ type: 'SUBMISSION', job_id: 'raysubmit_x', submission_id: 'id', status: api.status ?? 'SUCCEEDED', entrypoint: 'python -c ...' }, null, 4);
  const logs = JSON.stringify({ logs: `2026-12-05 INFO worker.py: Connecting to existing Ray cluster\n${api.logLine ?? ''}\n` });
  const curl = [
    // curl posts with -d, or uses the method of -X.
    'method=GET; for arg; do [ "$arg" = -d ] && method=POST; [ "$prev" = -X ] && method=$arg; prev=$arg; done',
    'for last; do :; done',
    'echo "$method $last" >> "$FAKE_BIN/curl.calls"',
    'case "$method $last" in',
    `  "GET "*/api/v0/nodes*) ${fakeCallCount('n', '$FAKE_BIN/nodes.count')}; if [ "$n" -lt ${api.nodesFromCall ?? 1} ]; then printf '%s' ${shellQuoted(nodesResponse(stateNode('head1', true)))}; else printf '%s' ${shellQuoted(nodes)}; fi ;;`,
    `  "POST "*/api/jobs/) ${api.submit === 'refused' ? 'exit 22' : `printf '%s' '{"job_id": "raysubmit_x", "submission_id": "id"}'`} ;;`,
    `  "GET "*/api/jobs/*/logs) printf '%s' ${shellQuoted(logs)} ;;`,
    `  "GET "*/api/jobs/*) printf '%s' ${shellQuoted(jobDetails)} ;;`,
    '  "POST "*/stop|"DELETE "*) echo true ;;',
    '  *) exit 22 ;;',
    'esac',
  ].join('\n');
  const result = runWithFakeCommands(job.spec.template.spec.containers[0], { curl, sleep: FAKE_SLEEP, date: FAKE_CLOCK }, {
    env,
    // No file where the script stopped before its first call.
    collect: (bin) => (existsSync(join(bin, 'curl.calls')) ? readFileSync(join(bin, 'curl.calls'), 'utf8').trim().split('\n') : []),
  });
  return { status: result.status, output: result.stdout + result.stderr, calls: result.collected };
}

describe('the Ray checkpoint', () => {
  const job = find(prod, 'ray/job-ray-checkpoint.yaml');
  const env = Object.fromEntries(job.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
  const right = 'HOMELAB_RAY_RESULT cpu_sum=14 gpu_ids=0 end';

  it('asks the head Service KubeRay creates for the ALIVE nodes, expecting the head plus every minReplicas', () => {
    expect(env.NODES_URL).toBe('http://ray-head-svc.ray.svc:8265/api/v0/nodes?filter_keys=state&filter_predicates=%3D&filter_values=ALIVE');
    expect(env.EXPECTED_NODES).toBe('2');
    expect(env.JOBS_URL).toBe('http://ray-head-svc.ray.svc:8265/api/jobs');
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(40 * 60);
    // Unset, the count stops the script before it asks anything, not after 20 minutes of waiting
    // for a head that never comes with no number to compare with.
    const unset = runJobCheckpoint(job, nodesResponse(stateNode('worker1', false)), { logLine: right }, { EXPECTED_NODES: '' });
    expect(unset.status).not.toBe(0);
    expect(unset.output).toContain('EXPECTED_NODES: unset (the Job sets it)');
    expect(unset.calls).toEqual([]);
  });

  it('waits for the nodes, submits a job, checks its result line and deletes the job', () => {
    const run = runJobCheckpoint(job, ALIVE, { logLine: right });
    expect(run.status, run.output).toBe(0);
    expect(run.output).toContain('ALIVE nodes: 2 (head: 1)');
    expect(run.output).toContain("the Ray job's tasks ran on the workers and returned the expected results");
    expect(run.calls).toContain('POST http://ray-head-svc.ray.svc:8265/api/jobs/');
    expect(run.calls.at(-1)).toMatch(/^DELETE http:\/\/ray-head-svc\.ray\.svc:8265\/api\/jobs\/homelab-checkpoint-\d+-\d+$/);
  });

  it('goes by what the last ask of the nodes saw, also when that ask ends past the deadline', () => {
    // The fake clock moves five minutes per read: the third ask starts at 900 s and ends at 1 200 s, the deadline.
    const late = runJobCheckpoint(job, ALIVE, { logLine: right, nodesFromCall: 3 }, { FAKE_CLOCK_STEP: '300' });
    expect(late.status, late.output).toBe(0);
    expect(late.calls.filter((c) => c.includes('/api/v0/nodes'))).toHaveLength(3);
  });

  it.each([
    ['the job failed', { status: 'FAILED', logLine: 'ray.exceptions.RayTaskError: boom' }, 'the Ray job did not succeed within 20 minutes (status FAILED)'],
    ['the job never finishes', { status: 'RUNNING' }, 'the Ray job did not succeed within 20 minutes (status RUNNING)'],
    ['a wrong sum', { logLine: 'HOMELAB_RAY_RESULT cpu_sum=13 gpu_ids=0 end' }, "the Ray job's result is wrong: expected cpu_sum=14 gpu_ids=[0-9][0-9,]*, got 'HOMELAB_RAY_RESULT cpu_sum=13 gpu_ids=0 end'"],
    ['the GPU task saw no GPU', { logLine: 'HOMELAB_RAY_RESULT cpu_sum=14 gpu_ids=none end' }, "the Ray job's result is wrong"],
    ['no result line', { logLine: 'Traceback (most recent call last):' }, "got 'nothing'"],
    ['the submission refused', { submit: 'refused' as const }, 'the Ray dashboard refused the job submission'],
  ])('fails when %s, and still stops and deletes the job', (_, api, message) => {
    const run = runJobCheckpoint(job, ALIVE, api);
    expect(run.status).not.toBe(0);
    expect(run.output).toContain(message);
    expect(run.calls.slice(-2).map((c) => c.split(' ')[0])).toEqual(['POST', 'DELETE']);
  });

  it('keeps retrying, then fails, while workers are missing, the head is not ALIVE or the dashboard is down', () => {
    for (const body of [nodesResponse(stateNode('head1', true)), nodesResponse(stateNode('w1', false), stateNode('w2', false)), undefined]) {
      const run = runCheckpoint(job, body);
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('did not reach 2 ALIVE nodes with its head');
      expect(run.urls.every((url) => url === env.NODES_URL)).toBe(true);
    }
  });

  it('asks for a GPU task only where the cluster has a GPU group: on CPU the result says so', () => {
    expect(JSON.parse(env.JOB_REQUEST).entrypoint).toContain('num_gpus=1');
    const cpuOnly = rayCheckpointJob(false);
    expect(cpuOnly.request.entrypoint).not.toContain('num_gpus');
    expect(cpuOnly.expected).toBe('cpu_sum=14 gpu_ids=-');
  });

  it.for([true, false])('prints the result line the checkpoint expects when its driver runs (GPU task: %s; python, ray stubbed; skipped without python)', (withGpu, context) => {
    const { request, expected } = rayCheckpointJob(withGpu);
    const dir = tempDir('homelab-ray-job-');
    // Runs tasks in-process; the one GPU Ray would assign is GPU 0.
    writeFileSync(
      join(dir, 'ray.py'),
      ['def init(): pass', 'def get(x): return [r for r in x] if isinstance(x, list) else x', 'def get_gpu_ids(): return [0]',
        'class _Remote:', '    def __init__(self, f): self.f = f', '    def remote(self, *a): return self.f(*a)',
        'def remote(**options): return _Remote'].join('\n'),
    );
    // The entrypoint is a shell command, as Ray's job manager runs it.
    const result = spawnSync('sh', ['-c', request.entrypoint], { cwd: dir, encoding: 'utf8', env: { ...process.env, PYTHONPATH: dir } });
    rmSync(dir, { recursive: true, force: true });
    // The run itself tells whether Python is here (the shell's 127): a probe first would start it once more.
    if (result.status === 127 && /\bpython\b/.test(result.stderr)) context.skip();
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toMatch(new RegExp(`^HOMELAB_RAY_RESULT ${expected.replace('[0-9][0-9,]*', '[0-9][0-9,]*')} end$`));
  });
});

describe('the operator checkpoint', () => {
  const job = find(prod, 'kuberay-operator/job-kuberay-operator-checkpoint.yaml');

  it('passes when the RayCluster controller publishes its counters', () => {
    const metrics = '# TYPE controller_runtime_reconcile_total counter\ncontroller_runtime_reconcile_total{controller="raycluster",result="success"} 0\n';
    const run = runCheckpoint(job, metrics);
    expect(run.status, run.stderr).toBe(0);
    expect(run.urls).toEqual(['http://kuberay-operator.kuberay-system.svc:8080/metrics']);
  });

  it('fails when only other controllers run, or nothing answers', () => {
    expect(runCheckpoint(job, 'controller_runtime_reconcile_total{controller="rayjob",result="success"} 0\n').status).toBe(1);
    expect(runCheckpoint(job, undefined).status).toBe(1);
  });
});

describe('snapshots for review', () => {
  const folders = ['kuberay-operator', 'ray'];
  it.each(folders)('%s', (service) => {
    const files = [...prod.files].filter(([path]) => path.startsWith(`${service}/`) || path === `apps/application-${service}.yaml`);
    expect(files.map(([path, text]) => `=== ${path}\n${text}`).join('\n')).toMatchSnapshot();
  });
});
