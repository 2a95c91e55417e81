/**
 * The AI layer: the NVIDIA device plugin and Triton, built on the example's prod inventory
 * (gpu-1 with one GPU, labelled by GPU discovery in the cluster) and variants of it, and checked
 * for what the cluster would do with the output: where pods can schedule, which taints they
 * tolerate, what the checkpoints accept, and what the smoke model answers.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'cdk8s';
import { parse } from 'yaml';
import type { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { Longhorn, longhornEntry } from '../charts/longhorn';
import { NvidiaDevicePlugin, nvidiaDevicePluginSettings as nvidiaDevicePluginSchema } from '../charts/nvidia-device-plugin';
import { SMOKE_MODEL, Triton, tritonSettings as tritonSchema } from '../charts/triton';
import type { EnvironmentConfig, NodeConfig } from '../lib/model/config/environment';
import { answerAsApiServer, discoveredGpuLabels, kubeGetMaxSeconds } from './support';
import { helmValuesErrors } from '../lib/tools/validate/helm-values';
import { SynthesizedEnvironment, synthesizePlatform } from '../lib/output/synthesize';
import { ManifestValidator } from '../lib/tools/validate/manifest-validator';
import { chartValues, emptyPlatform, environmentIssues, PolicyProvider, platformObject, FAKE_SLEEP, Manifest, manifestAt, manifestsOf, parseText, runWithFakeCommands, shellQuoted, tempDir, toYamlText } from './support';

type ConfigMutation = (config: Record<string, any>) => void;

interface Variant {
  /** Changes to the example config before prod is parsed. */
  readonly config?: ConfigMutation;
  /** services.nvidiaDevicePlugin settings (enabled is implied); null: no device plugin, Triton on CPU. */
  readonly devicePlugin?: Record<string, unknown> | null;
  /** services.triton settings (enabled is implied). */
  readonly triton?: Record<string, unknown>;
}

interface Built {
  readonly config: EnvironmentConfig;
  readonly env: SynthesizedEnvironment;
  readonly devicePlugin?: NvidiaDevicePlugin;
  readonly triton: Triton;
  readonly manifests: { path: string; manifest: Manifest }[];
}

/** Prod with Longhorn, the device plugin and Triton, from settings parsed by the config schemas. */
function build(variant: Variant = {}): Built {
  const raw = platformObject();
  variant.config?.(raw);
  const config = parseText(toYamlText(raw), 'test.yaml').environments.get('prod')!;
  const app = new App({ outdir: '/dev/null' });
  const platform = emptyPlatform(app, 'prod', config);
  new PolicyProvider(platform);
  const longhorn = new Longhorn(platform, settingsIn(config, longhornEntry));
  const devicePlugin = variant.devicePlugin === null ? undefined : new NvidiaDevicePlugin(platform, nvidiaDevicePluginSchema.parse({ enabled: true, ...variant.devicePlugin }));
  const tritonConfig = tritonSchema.parse({ enabled: true, ...variant.triton });
  // As its catalog entry wires it: storage only for a volume, so S3 does not wait for Longhorn.
  const triton = new Triton(platform, { ...tritonConfig, devicePlugin, storage: tritonConfig.modelRepository.volume ? longhorn : undefined });
  const env = synthesizePlatform(app, platform);
  return { config, env, devicePlugin, triton, manifests: manifestsOf(env) };
}

const find = (built: Built, path: string): Manifest => manifestAt(built.env, path);
const deployment = (built: Built) => find(built, 'triton/deployment-triton.yaml');
const podSpec = (built: Built) => deployment(built).spec.template.spec;
const tritonContainer = (built: Built) => podSpec(built).containers[0];
const application = (built: Built, name: string) => find(built, `apps/application-${name}.yaml`);
const pluginValues = (built: Built) => chartValues(built.env, 'nvidia-device-plugin');
const checkpointScript = (built: Built, service: string): string =>
  find(built, `${service}/job-${service}-checkpoint.yaml`).spec.template.spec.containers[0].command[2];

const S3 = { s3: { url: 's3://https://minio.example.net:9000/models/triton', region: 'us-east-1' } };
const TAINTED: ConfigMutation = (c) => {
  c.nodes['gpu-1'].taints = [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }];
  // Two untainted nodes are left: too few for Vault's three HA pods (one per node).
  c.environments.prod.services.vault.replicas = 1;
};
const TWO_GPU_NODES: ConfigMutation = (c) => {
  TAINTED(c);
  c.nodes['gpu-2'] = { role: 'worker', cpu: 16, memory: '64Gi', gpus: 2, labels: { 'homelab.dev/zone': 'rack-b' }, taints: [{ key: 'gpu-vendor', effect: 'NoExecute' }] };
};
/** The GPU node shares every inventory label with a CPU node: discovery alone tells them apart. */
const UNLABELLED_GPU_NODE: ConfigMutation = (c) => {
  c.nodes['gpu-1'].labels = { 'homelab.dev/zone': 'rack-a' };
};

// --- Kubernetes scheduling semantics, to evaluate the output against the inventory ---

/** A node's labels in the cluster: the inventory's, its host name, and what GPU discovery sets on a GPU node. */
function nodeLabels(name: string, node: NodeConfig): Record<string, string> {
  return { ...node.labels, ...discoveredGpuLabels(node), 'kubernetes.io/hostname': name };
}

/** Nodes a required node affinity admits (only the `In` operator is used by the output). */
function admittedByAffinity(affinity: any, nodes: Record<string, NodeConfig>): string[] {
  const terms: any[] = affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
  return Object.entries(nodes)
    .filter(([name, node]) =>
      terms.some((term) =>
        term.matchExpressions.every((e: any) => {
          if (e.operator !== 'In') throw new Error(`unexpected operator ${e.operator}`);
          return e.values.includes(nodeLabels(name, node)[e.key]);
        }),
      ),
    )
    .map(([name]) => name)
    .sort();
}

function admittedBySelector(selector: Record<string, string>, nodes: Record<string, NodeConfig>): string[] {
  return Object.entries(nodes)
    .filter(([name, node]) => Object.entries(selector).every(([key, value]) => nodeLabels(name, node)[key] === value))
    .map(([name]) => name)
    .sort();
}

/** Whether the tolerations let a pod onto a node with this taint (Kubernetes' rules). */
function tolerated(tolerations: any[] | undefined, taint: { key: string; value?: string; effect: string }): boolean {
  return (tolerations ?? []).some(
    (t) =>
      (!t.effect || t.effect === taint.effect) &&
      (t.operator === 'Exists' ? !t.key || t.key === taint.key : t.key === taint.key && (t.value ?? '') === (taint.value ?? '')),
  );
}

function gpuNodes(config: EnvironmentConfig): string[] {
  return Object.entries(config.nodes)
    .filter(([, node]) => node.gpus > 0)
    .map(([name]) => name)
    .sort();
}

/** Runs a checkpoint script with `curl` replaced by a shell script of the test's choosing. */
function runCheckpoint(script: string, fakeCurl: string, env: Record<string, string> = {}): { status: number | null; output: string } {
  const result = runWithFakeCommands({ command: ['sh', '-ec', script] }, { curl: fakeCurl, sleep: FAKE_SLEEP }, { env });
  return { status: result.status, output: result.stdout + result.stderr };
}

const base = build();

describe('the AI services on the prod inventory', () => {
  const variants: [string, Variant][] = [
    ['volume repository', {}],
    ['S3 repository, two GPU nodes with taints, time-slicing', { config: TWO_GPU_NODES, devicePlugin: { timeSlicing: { replicasPerGpu: 4 } }, triton: { modelRepository: S3, replicas: 2 } }],
    ['GPU node with the labels of a CPU node', { config: UNLABELLED_GPU_NODE, triton: { modelControlMode: 'explicit' } }],
  ];

  it.each(variants)('validates every document against the Kubernetes and CRD schemas (%s)', (_, variant) => {
    const built = build(variant);
    const validator = ManifestValidator.shared();
    const problems = built.manifests.flatMap(({ path, manifest }) => validator.validate(manifest).map((p) => `${path}: ${p}`));
    expect(problems).toEqual([]);
    expect(helmValuesErrors('nvidia-device-plugin', pluginValues(built))).toEqual([]);
  });

  it('orders Triton after the device plugin and, for its volume, after Longhorn', () => {
    const wave = (built: Built, name: string) => built.env.services.find((s) => s.name === name)!.wave;
    expect(wave(base, 'triton')).toBeGreaterThan(wave(base, 'nvidia-device-plugin'));
    expect(wave(base, 'triton')).toBeGreaterThan(wave(base, 'longhorn'));
    const s3 = build({ triton: { modelRepository: S3 } });
    expect(s3.env.services.find((s) => s.name === 'triton')!.dependsOn).toEqual(['nvidia-device-plugin']);
  });

  it('runs the device plugin in its own privileged namespace, never in default, and Triton restricted', () => {
    const level = (ns: string) => find(base, `${ns}/namespace-${ns}.yaml`).metadata.labels!['pod-security.kubernetes.io/enforce'];
    expect(application(base, 'nvidia-device-plugin').spec.destination.namespace).toBe('nvidia-device-plugin');
    expect(pluginValues(base).allowDefaultNamespace).toBeUndefined();
    expect(level('nvidia-device-plugin')).toBe('privileged');
    expect(level('triton')).toBe('restricted');
  });
});

describe('GPU scheduling', () => {
  const cases: [string, Variant][] = [
    ['labelled GPU node', {}],
    ['tainted GPU node', { config: TAINTED }],
    ['two GPU nodes with different taints', { config: TWO_GPU_NODES }],
    ['GPU node with the labels of a CPU node', { config: UNLABELLED_GPU_NODE }],
  ];

  it.each(cases)('puts Triton and the device plugin on exactly the GPU nodes and tolerates their taints (%s)', (_, variant) => {
    const built = build(variant);
    const { nodes } = built.config;
    const taints = gpuNodes(built.config).flatMap((name) => nodes[name].taints);
    for (const [what, affinity, tolerations] of [
      ['triton', podSpec(built).affinity, podSpec(built).tolerations],
      ['device plugin', pluginValues(built).affinity, pluginValues(built).tolerations],
    ] as const) {
      expect(admittedByAffinity(affinity, nodes), what).toEqual(gpuNodes(built.config));
      for (const taint of taints) expect(tolerated(tolerations, taint), `${what} tolerates ${taint.key}`).toBe(true);
    }
  });

  it.each(cases)('gives the RuntimeClass scheduling that admits only GPU nodes (%s)', (_, variant) => {
    const built = build(variant);
    const runtimeClass = find(built, 'nvidia-device-plugin/runtimeclass-nvidia.yaml');
    const gpus = gpuNodes(built.config);
    expect(admittedBySelector(runtimeClass.scheduling.nodeSelector, built.config.nodes)).toEqual(gpus);
    for (const name of gpus) {
      for (const taint of built.config.nodes[name].taints) expect(tolerated(runtimeClass.scheduling.tolerations, taint)).toBe(true);
    }
  });

  it('runs Triton with the RuntimeClass the device plugin emits, whose handler is nvidia', () => {
    const built = build({ devicePlugin: { runtimeClassName: 'nvidia-gpu' } });
    const runtimeClass = find(built, 'nvidia-device-plugin/runtimeclass-nvidia-gpu.yaml');
    expect(runtimeClass.handler).toBe('nvidia');
    expect(podSpec(built).runtimeClassName).toBe('nvidia-gpu');
    expect(pluginValues(built).runtimeClassName).toBe('nvidia-gpu');
    // Before the chart's DaemonSet, whose pods use it.
    expect(runtimeClass.metadata.annotations!['argocd.argoproj.io/sync-wave']).toBe('-1');
  });

  it('keeps the plugin free of CAP_SYS_ADMIN with a config map by stating the MIG and device-list strategies', () => {
    const values = pluginValues(build({ devicePlugin: { timeSlicing: { replicasPerGpu: 2 } } }));
    expect(values).toMatchObject({ migStrategy: 'none', deviceListStrategy: 'envvar' });
    expect(values.securityContext).toBeUndefined();
  });
});

describe('time-slicing', () => {
  const sliced = build({ config: TWO_GPU_NODES, devicePlugin: { timeSlicing: { replicasPerGpu: 4 } }, triton: { modelRepository: S3 } });

  it('configures the plugin to advertise every GPU as several nvidia.com/gpu', () => {
    const { config } = pluginValues(sliced);
    const file = parse(config.map[config.default]);
    expect(file).toEqual({
      version: 'v1',
      flags: { migStrategy: 'none' },
      sharing: { timeSlicing: { failRequestsGreaterThanOne: true, resources: [{ name: 'nvidia.com/gpu', replicas: 4 }] } },
    });
    expect(sliced.devicePlugin!.advertisedGpus(2)).toBe(8);
    expect(pluginValues(base).config).toBeUndefined();
  });

  it('makes the checkpoint expect the advertised GPUs of every GPU node', () => {
    const script = checkpointScript(sliced, 'nvidia-device-plugin');
    expect(script.match(/^check_node .*$/gm)).toEqual(['check_node gpu-1 4 1', 'check_node gpu-2 8 2']);
  });
});

describe('Triton', () => {
  it('limits every replica to the configured GPUs', () => {
    const built = build({ config: (c) => (c.nodes['gpu-1'].gpus = 2), triton: { gpusPerReplica: 2 } });
    expect(tritonContainer(built).resources.limits['nvidia.com/gpu']).toBe(2);
    expect(tritonContainer(base).resources.limits['nvidia.com/gpu']).toBe(1);
    expect(tritonContainer(base).resources.requests).toEqual({ cpu: '1', memory: '4Gi' });
  });

  it('mounts a memory-backed /dev/shm of the configured size', () => {
    const built = build({ triton: { shmSize: '2Gi' } });
    const mount = tritonContainer(built).volumeMounts.find((m: any) => m.mountPath === '/dev/shm');
    const volume = podSpec(built).volumes.find((v: any) => v.name === mount.name);
    expect(volume.emptyDir).toEqual({ medium: 'Memory', sizeLimit: '2Gi' });
  });

  it('serves the Longhorn volume as a repository, from a subdirectory without lost+found', () => {
    const claim = find(base, 'triton/persistentvolumeclaim-triton-models.yaml');
    expect(claim.spec).toMatchObject({ storageClassName: 'longhorn-replicated', resources: { requests: { storage: '20Gi' } } });
    expect(tritonContainer(base).args).toContain('--model-repository=/models');
    expect(tritonContainer(base).volumeMounts).toContainEqual({ name: 'models', mountPath: '/models', subPath: 'models' });
  });

  it('reads an S3 repository with credentials from the Secret it declares, and has no volume', () => {
    const built = build({ triton: { modelRepository: S3 } });
    const container = tritonContainer(built);
    expect(container.args).toContain(`--model-repository=${S3.s3.url}`);
    expect(podSpec(built).volumes.some((v: any) => v.persistentVolumeClaim)).toBe(false);
    expect(built.manifests.some(({ manifest }) => manifest.kind === 'PersistentVolumeClaim' && manifest.metadata.namespace === 'triton')).toBe(false);
    for (const key of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
      expect(container.env).toContainEqual({ name: key, valueFrom: { secretKeyRef: { name: 'triton-s3-credentials', key } } });
    }
    expect(container.env).toContainEqual({ name: 'AWS_DEFAULT_REGION', value: 'us-east-1' });
    expect(built.triton.secretNeeds).toEqual([
      expect.objectContaining({ service: 'triton', namespace: 'triton', name: 'triton-s3-credentials', keys: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] }),
    ]);
    // A volume repository needs no credentials.
    expect(base.triton.secretNeeds).toEqual([]);
  });

  it('takes the model control mode from the config, loading the smoke model explicitly in explicit mode', () => {
    const args = (mode: string) => tritonContainer(build({ triton: { modelControlMode: mode } })).args;
    expect(args('poll')).toContain('--model-control-mode=poll');
    expect(args('poll').some((a: string) => a.startsWith('--load-model'))).toBe(false);
    expect(args('explicit')).toEqual(expect.arrayContaining(['--model-control-mode=explicit', `--load-model=${SMOKE_MODEL.name}`]));
  });

  it('exposes http, grpc and metrics on named ports, with health probes and a startup budget for model loading', () => {
    const built = build({ triton: { startupTimeoutSeconds: 1200 } });
    const service = find(built, 'triton/service-triton.yaml');
    expect(service.spec.ports.map((p: any) => [p.name, p.port])).toEqual([['http', 8000], ['grpc', 8001], ['metrics', 8002]]);
    const container = tritonContainer(built);
    expect(container.ports.map((p: any) => [p.name, p.containerPort])).toEqual([['http', 8000], ['grpc', 8001], ['metrics', 8002]]);
    expect(container.livenessProbe.httpGet.path).toBe('/v2/health/live');
    expect(container.readinessProbe.httpGet.path).toBe('/v2/health/ready');
    expect(container.startupProbe.periodSeconds * container.startupProbe.failureThreshold).toBeGreaterThanOrEqual(1200);
    expect(deployment(built).spec.progressDeadlineSeconds).toBeGreaterThan(1200);
  });

  it('runs as the image user 1000 with a restricted security context and a read-only root', () => {
    const spec = podSpec(base);
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } });
    expect(tritonContainer(base).securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(spec.automountServiceAccountToken).toBe(false);
  });

  it('replaces pods old-first and has a disruption budget only with several replicas', () => {
    const budget = (built: Built) => built.manifests.find(({ manifest }) => manifest.kind === 'PodDisruptionBudget');
    expect(budget(base)).toBeUndefined();
    const two = build({ config: (c) => (c.nodes['gpu-1'].gpus = 2), triton: { modelRepository: S3, replicas: 2 } });
    expect(budget(two)?.manifest.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: deployment(two).spec.selector.matchLabels } });
    expect(deployment(two).spec.strategy.rollingUpdate).toEqual({ maxSurge: 0, maxUnavailable: 1 });
  });

  it('fails the synth when the replicas need more GPUs than the inventory has, naming Triton', () => {
    expect(() => build({ triton: { modelRepository: S3, replicas: 2 } })).toThrow(/nodes: gpus: the services request 2, the nodes have 1 \(triton\/server 2 x 1\)/);
  });
});

describe('the smoke model and the Triton checkpoint', () => {
  const configMap = find(base, 'triton/configmap-triton-smoke-model.yaml');
  const script = checkpointScript(base, 'triton');
  const request = JSON.parse(/-d '(\{.*?\})'/.exec(script)![1]);
  const expectedAnswer = /\[ "\$got" = "([^"]*)" \]/.exec(script)![1];
  const tensors = (section: string) =>
    [...new RegExp(`${section} \\[([\\s\\S]*?)\\n\\]`).exec(configMap.data!['config.pbtxt'])![1].matchAll(/name: "(\w+)"\s+data_type: TYPE_(\w+)\s+dims: \[ ([\d, ]+) \]/g)].map(
      ([, name, type, dims]) => ({ name, datatype: type, shape: dims.split(',').map(Number) }),
    );

  it('is mounted as a model directory of its own repository, named as in its config', () => {
    const name = /^name: "(\w+)"/.exec(configMap.data!['config.pbtxt'])![1];
    const mounts = tritonContainer(base).volumeMounts.filter((m: any) => m.name === 'smoke-model');
    expect(mounts.map((m: any) => [m.mountPath, m.subPath])).toEqual([
      [`/smoke-models/${name}/config.pbtxt`, 'config.pbtxt'],
      [`/smoke-models/${name}/1/model.py`, 'model.py'],
    ]);
    expect(tritonContainer(base).args).toContain('--model-repository=/smoke-models');
    expect(script).toContain(`/v2/models/${name}/infer`);
    // The pods roll when the model changes: subPath mounts never see ConfigMap updates.
    expect(deployment(base).spec.template.metadata.annotations['homelab.dev/smoke-model-checksum']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('sends the inputs the model config declares, and expects the elementwise sum', () => {
    expect(request.inputs.map(({ name, datatype, shape }: any) => ({ name, datatype, shape }))).toEqual(tensors('input'));
    expect(request.outputs.map((o: any) => o.name)).toEqual(tensors('output').map((o) => o.name));
    const [a, b]: number[][] = request.inputs.map((i: any) => i.data);
    expect(expectedAnswer).toBe(a.map((x, i) => x + b[i]).join(','));
  });

  it('computes that answer when model.py runs (python3 with numpy, Triton utils stubbed; skipped without them)', (context) => {
    const dir = tempDir('homelab-smoke-');
    writeFileSync(join(dir, 'model.py'), configMap.data!['model.py']);
    writeFileSync(join(dir, 'triton_python_backend_utils.py'), PB_UTILS_STUB);
    writeFileSync(join(dir, 'run.py'), RUN_MODEL);
    const result = spawnSync('python3', [join(dir, 'run.py'), JSON.stringify(request)], { encoding: 'utf8' });
    rmSync(dir, { recursive: true, force: true });
    // The run itself tells whether python3 and numpy are here: a probe first would start Python twice.
    if (result.error || /^ModuleNotFoundError: No module named 'numpy'$/m.test(result.stderr)) context.skip();
    expect(result.stderr).toBe('');
    const outputs = JSON.parse(result.stdout);
    expect(outputs[SMOKE_MODEL.output].join(',')).toBe(expectedAnswer);
  });

  it('accepts the right answer and fails on a wrong or missing one', () => {
    const respond = (data: number[]) =>
      `case "$*" in *infer*) printf '%s' '{"model_name":"homelab_smoke","model_version":"1","outputs":[{"name":"SUM","datatype":"INT32","shape":[4],"data":[${data.join(',')}]}]}';; esac`;
    const right = expectedAnswer.split(',').map(Number);
    expect(runCheckpoint(script, respond(right)).status).toBe(0);
    const wrong = runCheckpoint(script, respond([...right.slice(0, 3), right[3] + 1]));
    expect(wrong.status).not.toBe(0);
    expect(wrong.output).toContain(`expected SUM = [${expectedAnswer}]`);
    expect(runCheckpoint(script, 'case "$*" in *infer*) exit 22;; esac').status).not.toBe(0);
  });
});

describe('the device plugin checkpoint', () => {
  const discovered = { 'nvidia.com/gpu.present': 'true', 'nvidia.com/gpu.count': '1', 'nvidia.com/gpu.product': 'NVIDIA-GeForce-RTX-3090', 'nvidia.com/gpu.memory': '24576' };
  const node = (labels: Record<string, string>, allocatable: string) =>
    JSON.stringify({
      kind: 'Node',
      metadata: { name: 'gpu-1', labels: { 'kubernetes.io/hostname': 'gpu-1', ...labels }, annotations: { 'nfd.node.kubernetes.io/feature-labels': 'pci-10de.present' } },
      status: { capacity: { 'nvidia.com/gpu': allocatable }, allocatable: { cpu: '16', 'nvidia.com/gpu': allocatable, pods: '110' } },
    });
  const script = checkpointScript(base, 'nvidia-device-plugin');
  const job = find(base, 'nvidia-device-plugin/job-nvidia-device-plugin-checkpoint.yaml');
  /** Two tries instead of the Job's: each try runs a dozen commands. */
  const FEW_CHECKS = { CHECKS: '2' };
  const serve = (json: string) => `case "$*" in *api/v1/nodes/gpu-1*) ${answerAsApiServer(`printf '%s' ${shellQuoted(json)}`)};; *) exit 22;; esac`;

  it('reads the GPU nodes through a ServiceAccount that may only get those nodes', () => {
    const role = find(base, 'nvidia-device-plugin/clusterrole-nvidia-device-plugin-checkpoint.yaml');
    const binding = find(base, 'nvidia-device-plugin/clusterrolebinding-nvidia-device-plugin-checkpoint.yaml');
    expect(job.spec.template.spec.serviceAccountName).toBe('nvidia-device-plugin-checkpoint');
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['nodes'], verbs: ['get'], resourceNames: ['gpu-1'] }]);
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'nvidia-device-plugin-checkpoint', namespace: 'nvidia-device-plugin' }]);
  });

  it('passes when the discovered node advertises its GPU, naming what was found', () => {
    const pass = runCheckpoint(script, serve(node(discovered, '1')), FEW_CHECKS);
    expect(pass.status).toBe(0);
    expect(pass.output).toContain('gpu-1: 1 x NVIDIA-GeForce-RTX-3090, 1 nvidia.com/gpu allocatable');
  });

  it('asks each GPU node for five minutes, 10 s apart, before it fails', () => {
    const checks = Number(job.spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === 'CHECKS').value);
    const pauseSeconds = Number(/\bsleep (\d+)/.exec(script)![1]);
    expect(checks * pauseSeconds).toBe(300);
    // Node after node, every ask at the API call's limit, after the pod's start: the message comes before the deadline.
    const nodes = script.match(/^check_node \S+/gm)!.length;
    const callSeconds = kubeGetMaxSeconds(script);
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(CHECK_START_SECONDS + nodes * checks * (callSeconds + pauseSeconds));
    const asked = runWithFakeCommands({ command: ['sh', '-ec', script] }, { curl: 'echo "$@" >> "$FAKE_BIN/asked"; exit 22', sleep: FAKE_SLEEP }, {
      env: FEW_CHECKS,
      collect: (bin) => readFileSync(join(bin, 'asked'), 'utf8').trim().split('\n'),
    });
    // The first node that fails ends the script (sh -e): it was asked $CHECKS times.
    const first = /^check_node (\S+)/m.exec(script)![1];
    expect(asked.status).not.toBe(0);
    expect(asked.collected).toEqual([expect.stringContaining(`/api/v1/nodes/${first}`), expect.stringContaining(`/api/v1/nodes/${first}`)]);
    // Unset, the tries stop the script with a message, not after asking no time and naming no node.
    const unset = runCheckpoint(script, 'exit 22', { CHECKS: '' });
    expect(unset.status).not.toBe(0);
    expect(unset.output).toContain('CHECKS: unset (the Job sets it)');
    expect(unset.output).not.toContain(`${first}: no such node`);
  });

  const { 'nvidia.com/gpu.present': _present, ...withoutPresent } = discovered;
  const { 'nvidia.com/gpu.count': _count, 'nvidia.com/gpu.product': _product, 'nvidia.com/gpu.memory': _memory, ...hardwareOnly } = discovered;
  it.each([
    // As curl -f reports a 404.
    ['no node of that name', 'echo "curl: (22) The requested URL returned error: 404" >&2; exit 22', 'gpu-1: no such node'],
    ['an API server that does not answer', 'echo "curl: (28) Connection timed out after 5002 milliseconds" >&2; exit 28', 'gpu-1: cannot read the node from the API server (curl: (28) Connection timed out after 5002 milliseconds)'],
    ['an API server that refuses the token', 'echo "curl: (22) The requested URL returned error: 403" >&2; exit 22', 'gpu-1: cannot read the node from the API server (curl: (22) The requested URL returned error: 403)'],
    ['no NVIDIA device on the PCI bus', serve(node({}, '0')), 'gpu-1: no NVIDIA GPU discovered on the PCI bus'],
    ['the label of the hardware rule missing', serve(node(withoutPresent, '0')), 'no nvidia.com/gpu.present=true from Node Feature Discovery'],
    ['a GPU NVML cannot read', serve(node(hardwareOnly, '0')), 'install the NVIDIA driver (nvidia-smi works on the host) and the NVIDIA Container Toolkit, then restart k3s'],
    ['fewer GPUs than the inventory', serve(node({ ...discovered, 'nvidia.com/gpu.count': '0' }, '0')), 'GPU Feature Discovery sees 0 GPU(s) (NVIDIA-GeForce-RTX-3090), the inventory says 1'],
    ['a discovered GPU the plugin does not advertise', serve(node(discovered, '0')), "gpu-1: '0' nvidia.com/gpu allocatable, expected at least 1 (1 x NVIDIA-GeForce-RTX-3090 discovered): see the nvidia-device-plugin pod on gpu-1"],
  ])('fails naming the node and the missing piece: %s', (_, curl, message) => {
    const result = runCheckpoint(script, curl, FEW_CHECKS);
    expect(result.status).not.toBe(0);
    expect(result.output).toContain(message);
  });
});

describe('GPU discovery', () => {
  const values = pluginValues(base);

  it('runs Node Feature Discovery with a rule that labels NVIDIA display and 3D controllers, and GPU Feature Discovery', () => {
    expect(values.gfd.enabled).toBe(true);
    expect(values.nfd.enabled).toBe(true);
    const rules = values.nfd.worker.config.sources.custom;
    expect(rules).toEqual([
      expect.objectContaining({
        labels: { 'nvidia.com/gpu.present': 'true' },
        matchFeatures: [{ feature: 'pci.device', matchExpressions: { vendor: { op: 'In', value: ['10de'] }, class: { op: 'In', value: ['0300', '0302'] } } }],
      }),
    ]);
    // The chart's PCI source settings stay (Helm merges maps, but we state what the rule relies on).
    expect(values.nfd.worker.config.sources.pci.deviceClassWhitelist).toContain('03');
  });

  it('runs nfd-worker on the tainted GPU nodes too, and every discovery pod may call the API server', () => {
    const built = build({ config: TWO_GPU_NODES });
    const { nodes } = built.config;
    for (const name of gpuNodes(built.config)) {
      for (const taint of nodes[name].taints) expect(tolerated(pluginValues(built).nfd.worker.tolerations, taint), `${name} ${taint.key}`).toBe(true);
    }
    // Declared for every pod of the namespace: NFD's master, worker and gc and the config managers.
    expect(built.devicePlugin!.egress.filter((e) => e.to.kind === 'api-server').map((e) => e.podSelector)).toContainEqual({});
  });

  it('refuses inventory labels that discovery owns, naming the node and the label', () => {
    const raw = platformObject();
    raw.nodes['gpu-1'].labels['nvidia.com/gpu.present'] = 'true';
    raw.nodes['worker-1'].labels['feature.node.kubernetes.io/pci-10de.present'] = 'true';
    const issues = environmentIssues({ nodes: raw.nodes }).map((i) => `${i.path}: ${i.message}`);
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^nodes\.gpu-1\.labels\.nvidia\.com\/gpu\.present: unexpected label: nvidia\.com\/gpu\.\* labels are set by Node and GPU Feature Discovery/),
        expect.stringMatching(/^nodes\.worker-1\.labels\.feature\.node\.kubernetes\.io\/pci-10de\.present: unexpected label/),
      ]),
    );
  });

  it("accepts the nvidia.com labels that are the operator's settings, such as the device plugin's config per node", () => {
    const raw = platformObject();
    raw.nodes['gpu-1'].labels['nvidia.com/device-plugin.config'] = 'time-sliced';
    expect(environmentIssues({ nodes: raw.nodes })).toEqual([]);
  });
});

describe('Triton on CPU, where no device plugin advertises GPUs', () => {
  const cpu = build({ devicePlugin: null });
  const alerts = (built: Built) => built.triton.alertRules.map((rule) => rule.alert);

  it('requests no GPU and runs on any node, without the NVIDIA RuntimeClass', () => {
    expect(Object.keys(tritonContainer(cpu).resources.limits)).not.toContain('nvidia.com/gpu');
    expect(podSpec(cpu)).not.toHaveProperty('runtimeClassName');
    expect(podSpec(cpu)).not.toHaveProperty('affinity');
    expect(cpu.env.capacity.requested.gpus).toBe(0);
  });

  it('serves the same smoke model with a CPU instance group, and the checkpoint runs the identical inference', () => {
    const smoke = (built: Built) => find(built, 'triton/configmap-triton-smoke-model.yaml').data!;
    expect(smoke(cpu)['config.pbtxt']).toMatch(/kind: KIND_CPU/);
    expect(smoke(base)['config.pbtxt']).toMatch(/kind: KIND_GPU/);
    expect(smoke(cpu)['config.pbtxt'].replace('KIND_CPU', 'KIND_GPU')).toBe(smoke(base)['config.pbtxt']);
    expect(smoke(cpu)['model.py']).toBe(smoke(base)['model.py']);
    expect(checkpointScript(cpu, 'triton')).toBe(checkpointScript(base, 'triton'));
  });

  it('says which mode it runs in, and alerts on GPU memory only with GPUs', () => {
    expect(cpu.env.capacity.computeModes).toEqual([{ service: 'triton', mode: 'cpu', detail: 'no GPU provider: the models run in CPU instance groups' }]);
    expect(base.env.capacity.computeModes).toEqual([{ service: 'triton', mode: 'gpu', detail: '1 nvidia.com/gpu per replica' }]);
    expect(alerts(base)).toContain('TritonGpuMemoryNearlyFull');
    expect(alerts(cpu)).not.toContain('TritonGpuMemoryNearlyFull');
    expect(alerts(cpu)).toContain('TritonInferenceFailures');
  });

  it('names the compute modes when the plan does not fit the nodes', () => {
    const error = (() => {
      try {
        build({ devicePlugin: null, triton: { resources: { requests: { cpu: '64', memory: '4Gi' }, limits: { cpu: '64', memory: '16Gi' } } } });
      } catch (e) {
        return String((e as Error).message);
      }
      return '';
    })();
    expect(error).toContain('cpu: the services request');
    expect(error).toContain('nodes: the requests above are for triton on CPU (no GPU provider: the models run in CPU instance groups)');
  });
});

describe('the AI config schemas', () => {
  const issues = (schema: typeof tritonSchema | typeof nvidiaDevicePluginSchema, input: unknown) => {
    const result = schema.safeParse(input);
    return result.success ? [] : result.error.issues.map((i: z.core.$ZodIssue) => `${i.path.join('.')}: ${i.message}`);
  };

  it('fills defaults: both services off, Triton on a 20Gi volume with one GPU', () => {
    expect(nvidiaDevicePluginSchema.parse({})).toEqual({ enabled: false, runtimeClassName: 'nvidia' });
    expect(tritonSchema.parse({})).toEqual({
      enabled: false,
      replicas: 1,
      gpusPerReplica: 1,
      modelRepository: { volume: { size: '20Gi' } },
      modelControlMode: 'none',
      shmSize: '1Gi',
      startupTimeoutSeconds: 600,
      resources: { requests: { cpu: '1', memory: '4Gi' }, limits: { cpu: '4', memory: '16Gi' } },
    });
  });

  it('rejects what Triton or Kubernetes would reject later, naming the field', () => {
    expect(issues(tritonSchema, { shmSize: '16Gi' })).toEqual([
      'shmSize: expected less than resources.limits.memory (16Gi): /dev/shm is memory and counts against that limit',
    ]);
    expect(issues(tritonSchema, { shmSize: '1GB' })).toEqual(['shmSize: expected a memory quantity in Mi, Gi or Ti, such as "512Mi" or "4Gi"']);
    expect(issues(tritonSchema, { replicas: 2 })[0]).toMatch(/^replicas: expected 1 with modelRepository.volume/);
    expect(issues(tritonSchema, { modelRepository: { volume: { size: '10Gi' }, ...S3 } })).toEqual([
      'modelRepository: expected exactly one of volume, s3 or objectStore (set the others to null in an environment that switches)',
    ]);
    expect(issues(tritonSchema, { modelRepository: { s3: { ...S3.s3, url: 'https://minio/models' } } })[0]).toMatch(/^modelRepository.s3.url: expected an S3 URL/);
    expect(issues(tritonSchema, { modelControlMode: 'auto' })).toEqual(['modelControlMode: expected one of "none", "poll", "explicit"']);
    expect(issues(nvidiaDevicePluginSchema, { timeSlicing: { replicasPerGpu: 1 } })).toEqual(['timeSlicing.replicasPerGpu: expected an integer between 2 and 64']);
  });

  it('accepts the S3 URL forms Triton parses', () => {
    for (const url of ['s3://bucket/models', 's3://minio.lan:9000/bucket/models', 's3://https://minio.example.net:9000/bucket', 's3://http://10.0.0.5:9000/bucket/a/b/']) {
      expect(issues(tritonSchema, { modelRepository: { s3: { url } } }), url).toEqual([]);
    }
  });

  it('checks the AI services against the rest of the environment', () => {
    const node = (gpus: number) => ({ a: { role: 'control-plane', cpu: 8, memory: '32Gi', gpus } });
    const plugin = { enabled: true, timeSlicing: { replicasPerGpu: 2 } };
    const triton = { enabled: true, gpusPerReplica: 2 };
    expect(environmentIssues({ nodes: node(0), services: { longhorn: { enabled: false }, nvidiaDevicePlugin: plugin, triton } }).map((i) => i.path)).toEqual([
      'services.nvidiaDevicePlugin.enabled',
      'services.triton.modelRepository.volume',
      'services.triton.gpusPerReplica',
    ]);
    // Without the device plugin Triton runs on CPU: nothing to refuse.
    expect(environmentIssues({ nodes: node(1), services: { longhorn: { replicas: 1 }, triton } })).toEqual([]);
    expect(environmentIssues({ nodes: node(1), services: { longhorn: { replicas: 1 }, nvidiaDevicePlugin: plugin, triton: { enabled: true } } })).toEqual([]);
  });
});

describe('snapshots for review', () => {
  it.each(['nvidia-device-plugin', 'triton', 'apps/application-nvidia-device-plugin', 'apps/application-triton'])('%s', (prefix) => {
    const content = [...base.env.files].filter(([path]) => path.startsWith(prefix)).map(([path, text]) => `=== ${path}\n${text}`);
    expect(content.join('\n')).toMatchSnapshot();
  });
});

/** Just enough of triton_python_backend_utils for model.py's execute(). */
const PB_UTILS_STUB = `class Tensor:
    def __init__(self, name, array):
        self.name, self.array = name, array

    def as_numpy(self):
        return self.array


class InferenceResponse:
    def __init__(self, output_tensors):
        self.output_tensors = output_tensors


class InferenceRequest:
    def __init__(self, inputs):
        self.inputs = inputs


def get_input_tensor_by_name(request, name):
    return request.inputs[name]
`;

/** Runs model.py's execute() on a KServe v2 JSON request (argv[1]); prints outputs by name. */
const RUN_MODEL = `import json, sys
import numpy as np
import triton_python_backend_utils as pb_utils
from model import TritonPythonModel

DTYPES = {"INT32": np.int32}
request = json.loads(sys.argv[1])
inputs = {i["name"]: pb_utils.Tensor(i["name"], np.array(i["data"], dtype=DTYPES[i["datatype"]]).reshape(i["shape"])) for i in request["inputs"]}
[response] = TritonPythonModel().execute([pb_utils.InferenceRequest(inputs)])
print(json.dumps({t.name: t.array.tolist() for t in response.output_tensors}))
`;
import { settingsIn } from '../lib/model/catalog';
import { CHECK_START_SECONDS } from '../lib/model/checkpoint';
