/**
 * Properties of the whole synthesized example that must hold for any config: checked over
 * every document of every environment rather than over hand-picked expectations.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { helmValuesErrors } from '../lib/tools/validate/helm-values';
import type { Platform } from '../lib/model/platform';
import { ContainerException, EXCEPTION_ANNOTATION } from '../lib/model/pod-security';
import type { HomelabService } from '../lib/model/service';
import { GENERATED_HEADER, SynthesizedEnvironment } from '../lib/output/synthesize';
import { ManifestValidator } from '../lib/tools/validate/manifest-validator';
import { CHARTS } from '../charts/versions';
import { exampleText, Manifest, manifestsOf, parseText, ROOT, synthesizeExample, synthesizePlatforms } from './support';

const envs = synthesizeExample();
const platforms = synthesizePlatforms(exampleText());

/** The service whose folder a file is in. */
function serviceOf(platform: Platform, path: string): HomelabService {
  const service = platform.services.find((s) => s.serviceName === path.split('/')[0]);
  if (!service) throw new Error(`no service for ${path}`);
  return service;
}
const all = envs.flatMap((env) => manifestsOf(env).map((m) => ({ env, ...m })));
const WAVE = 'argocd.argoproj.io/sync-wave';
const SYNC_OPTIONS = 'argocd.argoproj.io/sync-options';

function applications(env: SynthesizedEnvironment): Manifest[] {
  return manifestsOf(env)
    .filter(({ path, manifest }) => path.startsWith('apps/') && manifest.kind === 'Application')
    .map(({ manifest }) => manifest);
}

function sourcesOf(app: Manifest): any[] {
  return app.spec.sources ?? [app.spec.source];
}

function podSpecOf(manifest: Manifest): any | undefined {
  switch (manifest.kind) {
    case 'Pod':
      return manifest.spec;
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'Job':
      return manifest.spec.template.spec;
    case 'CronJob':
      return manifest.spec.jobTemplate.spec.template.spec;
    default:
      return undefined;
  }
}

/** The containers of the pod templates in our own manifests (Deployments, Jobs, RayCluster groups ...). */
function ownContainers(path: string, manifest: Manifest): { where: string; pod: any; container: any }[] {
  const pods: { where: string; pod: any }[] = [];
  if (manifest.kind === 'RayCluster') {
    pods.push({ where: `${path} head`, pod: manifest.spec.headGroupSpec.template.spec });
    for (const group of manifest.spec.workerGroupSpecs) pods.push({ where: `${path} ${group.groupName}`, pod: group.template.spec });
    // KubeRay runs the autoscaler as a sidecar of the head with this context.
    const autoscaler = { name: 'autoscaler', securityContext: manifest.spec.autoscalerOptions?.securityContext };
    pods.push({ where: `${path} autoscaler`, pod: { ...manifest.spec.headGroupSpec.template.spec, containers: [autoscaler] } });
  } else {
    const pod = podSpecOf(manifest);
    if (pod) pods.push({ where: path, pod });
  }
  return pods.flatMap(({ where, pod }) =>
    [...(pod.initContainers ?? []), ...pod.containers].map((container: any) => ({ where: `${where} ${container.name}`, pod, container })),
  );
}

describe('the synthesized example', () => {
  it('has all three environments and a bootstrap, apps and service folders each; the AI layer only where GPUs are', () => {
    expect(envs.map((e) => e.environment)).toEqual(['dev', 'staging', 'prod']);
    const common = [
      'alloy',
      'apps',
      'argocd',
      'bootstrap',
      'cert-manager',
      'external-secrets',
      'home-assistant',
      'loki',
      'longhorn',
      'monitoring',
      'n8n',
      'network-policies',
      'node-red',
      'prometheus-operator-crds',
      'rabbitmq',
      'rabbitmq-operators',
      'traefik',
      'vault',
      'verification',
    ];
    const ai = ['kuberay-operator', 'nvidia-device-plugin', 'ray', 'triton'];
    for (const env of envs) {
      const folders = new Set([...env.files.keys()].map((p) => p.split('/')[0]));
      expect([...folders].sort()).toEqual([...common, ...(env.environment === 'prod' ? [...ai, 'cloudflared'] : [])].sort());
    }
  });

  it('validates every document against the Kubernetes 1.28 schema and the CRD schemas', () => {
    const validator = ManifestValidator.shared();
    const problems = all.flatMap(({ env, path, manifest }) => validator.validate(manifest).map((p) => `${env.environment}/${path}: ${p}`));
    expect(problems).toEqual([]);
    expect(all.length).toBeGreaterThan(60);
  });

  it('marks every file as generated, one resource per file', () => {
    for (const env of envs) {
      for (const [path, content] of env.files) {
        expect(content.startsWith(GENERATED_HEADER), path).toBe(true);
        expect(content.match(/^---$/m), path).toBeNull();
      }
    }
  });

  it("names files after their resource, and its namespace when it is not the service's own", () => {
    for (const { env, path, manifest } of all) {
      const own = env.services.find((s) => s.name === path.split('/')[0])?.namespace ?? 'argocd';
      const namespace = manifest.metadata.namespace;
      const elsewhere = namespace !== undefined && namespace !== own ? `${namespace}-` : '';
      expect(path.split('/').pop()).toBe(`${manifest.kind.toLowerCase()}-${elsewhere}${manifest.metadata.name}.yaml`);
    }
  });

  it('contains no Secret with data', () => {
    const secrets = all.filter(({ manifest }) => manifest.kind === 'Secret' && (manifest.data || manifest.stringData));
    expect(secrets.map((s) => s.path)).toEqual([]);
  });

  it('gives every container CPU/memory requests and limits and a pinned image tag', () => {
    let containers = 0;
    for (const { env, path, manifest } of all) {
      const spec = podSpecOf(manifest);
      if (!spec) continue;
      for (const container of [...(spec.initContainers ?? []), ...spec.containers]) {
        containers++;
        const where = `${env.environment}/${path} ${container.name}`;
        for (const kind of ['requests', 'limits']) {
          expect(container.resources?.[kind]?.cpu, `${where} ${kind}.cpu`).toBeTruthy();
          expect(container.resources?.[kind]?.memory, `${where} ${kind}.memory`).toBeTruthy();
        }
        expect(container.image, where).toMatch(/:[\w][\w.-]*$/);
        expect(container.image, where).not.toMatch(/:latest$/);
      }
    }
    expect(containers).toBeGreaterThanOrEqual(envs.length * 4);
  });

  it('labels every resource of a service explicitly, never by construct path', () => {
    for (const { path, manifest } of all) {
      if (path.startsWith('bootstrap/') || path.startsWith('apps/appproject')) continue;
      const labels = manifest.metadata.labels ?? {};
      for (const key of ['name', 'instance', 'part-of', 'component', 'managed-by']) {
        expect(labels[`app.kubernetes.io/${key}`], `${path} ${key}`).toBeTruthy();
      }
      const text = JSON.stringify(manifest);
      expect(text, path).not.toContain('cdk8s.io/metadata.addr');
    }
  });

  it('selects pods by the stable labels the pod template carries', () => {
    for (const { path, manifest } of all.filter(({ manifest }) => manifest.kind === 'Deployment')) {
      const selector = manifest.spec.selector.matchLabels;
      expect(Object.keys(selector).sort(), path).toEqual(['app.kubernetes.io/component', 'app.kubernetes.io/instance', 'app.kubernetes.io/name']);
      expect(manifest.spec.template.metadata.labels, path).toMatchObject(selector);
    }
    for (const { env, path, manifest } of all.filter(({ manifest }) => manifest.kind === 'Service')) {
      const deployment = manifestsOf(env).find(
        (m) => m.manifest.kind === 'Deployment' && m.manifest.metadata.namespace === manifest.metadata.namespace,
      );
      expect(deployment?.manifest.spec.template.metadata.labels, path).toMatchObject(manifest.spec.selector);
    }
  });

  it('emits every service namespace with Pod Security labels', () => {
    for (const env of envs) {
      const namespaces = manifestsOf(env).filter(({ manifest }) => manifest.kind === 'Namespace');
      for (const app of applications(env)) {
        const ns = namespaces.find(({ manifest }) => manifest.metadata.name === app.spec.destination.namespace);
        expect(ns, `${env.environment} ${app.metadata.name}`).toBeDefined();
        expect(['restricted', 'baseline', 'privileged']).toContain(ns!.manifest.metadata.labels!['pod-security.kubernetes.io/enforce']);
      }
    }
    const level = (env: SynthesizedEnvironment, ns: string) =>
      manifestsOf(env).find(({ manifest }) => manifest.kind === 'Namespace' && manifest.metadata.name === ns)!.manifest.metadata.labels![
        'pod-security.kubernetes.io/enforce'
      ];
    expect(level(envs[0], 'longhorn-system')).toBe('privileged');
    expect(level(envs[0], 'node-red')).toBe('restricted');
    expect(level(envs[0], 'home-assistant')).toBe('baseline');
  });

  it('keeps every namespace restricted except the exceptions services declare, each naming its reason', () => {
    for (const { platform, env } of platforms) {
      for (const { path, manifest } of manifestsOf(env).filter(({ manifest }) => manifest.kind === 'Namespace')) {
        const level = manifest.metadata.labels!['pod-security.kubernetes.io/enforce'];
        const reason = manifest.metadata.annotations?.[EXCEPTION_ANNOTATION];
        const expected = serviceOf(platform, path).podSecurityException;
        expect({ level, reason }, path).toEqual(expected ? { level: expected.level, reason: expected.reason } : { level: 'restricted', reason: undefined });
      }
    }
    // The example's exceptions: Longhorn, the monitoring stack, the device plugin (prod), Home Assistant (root image).
    const prod = envs.find((e) => e.environment === 'prod')!;
    const exceptions = manifestsOf(prod)
      .filter(({ manifest }) => manifest.kind === 'Namespace' && manifest.metadata.annotations?.[EXCEPTION_ANNOTATION])
      .map(({ manifest }) => manifest.metadata.name)
      .sort();
    expect(exceptions).toEqual(['home-assistant', 'longhorn-system', 'monitoring', 'nvidia-device-plugin']);
  });

  it('labels every namespace with its Pod Security level for enforce, audit and warn', () => {
    for (const { path, manifest } of all.filter(({ manifest }) => manifest.kind === 'Namespace')) {
      const labels = manifest.metadata.labels!;
      const level = labels['pod-security.kubernetes.io/enforce'];
      expect(['restricted', 'baseline', 'privileged'], path).toContain(level);
      for (const mode of ['audit', 'warn']) expect(labels[`pod-security.kubernetes.io/${mode}`], `${path} ${mode}`).toBe(level);
      for (const mode of ['enforce', 'audit', 'warn']) expect(labels[`pod-security.kubernetes.io/${mode}-version`], `${path} ${mode}`).toBe('v1.28');
    }
  });

  it('runs every container we write restricted, read-only root filesystem included, except the exceptions services declare', () => {
    const used = new Map<ContainerException, Set<string>>();
    const declared = new Set<ContainerException>();
    let containers = 0;
    for (const { platform, env } of platforms) {
      for (const service of platform.services) if (service.containerException) declared.add(service.containerException);
      for (const { path, manifest } of manifestsOf(env)) {
        if (!path.includes('/') || path.startsWith('apps/') || path.startsWith('bootstrap/')) continue;
        const exception = serviceOf(platform, path).containerException;
        for (const { where, pod, container } of ownContainers(path, manifest)) {
          containers++;
          const sc = container.securityContext ?? {};
          const actual = {
            runAsNonRoot: (sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot) === true,
            allowPrivilegeEscalation: sc.allowPrivilegeEscalation === false,
            capabilities: JSON.stringify(sc.capabilities?.drop) === '["ALL"]',
            seccomp: (sc.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type) === 'RuntimeDefault',
            readOnlyRootFilesystem: sc.readOnlyRootFilesystem === true,
          };
          const relaxed = Object.entries(actual).filter(([, ok]) => !ok).map(([key]) => key);
          const label = `${env.environment}/${where}`;
          expect(relaxed.filter((key) => !(exception?.relaxes as readonly string[] | undefined)?.includes(key)), label).toEqual([]);
          if (exception) for (const key of relaxed) used.set(exception, new Set([...(used.get(exception) ?? []), key]));
        }
      }
    }
    expect(containers).toBeGreaterThan(30);
    // No stale exception: each relaxation listed is needed by some container of the example.
    for (const exception of declared) {
      expect([...(used.get(exception) ?? [])].sort(), exception.reason).toEqual([...exception.relaxes].sort());
    }
  });

  it('runs pods in restricted namespaces with a restricted security context', () => {
    for (const env of envs) {
      const restricted = new Set(
        manifestsOf(env)
          .filter(({ manifest }) => manifest.kind === 'Namespace' && manifest.metadata.labels?.['pod-security.kubernetes.io/enforce'] === 'restricted')
          .map(({ manifest }) => manifest.metadata.name),
      );
      for (const { path, manifest } of manifestsOf(env)) {
        const spec = podSpecOf(manifest);
        if (!spec || !restricted.has(manifest.metadata.namespace!)) continue;
        expect(spec.securityContext?.runAsNonRoot, path).toBe(true);
        for (const container of spec.containers) {
          const sc = container.securityContext ?? {};
          expect(sc.allowPrivilegeEscalation, path).toBe(false);
          expect(sc.capabilities?.drop, path).toContain('ALL');
          expect(sc.seccompProfile?.type ?? spec.securityContext?.seccompProfile?.type, path).toBe('RuntimeDefault');
        }
      }
    }
  });

  it('gives every service a PostSync checkpoint Job that cleans up after itself', () => {
    for (const env of envs) {
      for (const app of applications(env)) {
        const service = app.metadata.name;
        const jobs = manifestsOf(env).filter(
          ({ path, manifest }) => path.startsWith(`${service}/`) && manifest.kind === 'Job' && manifest.metadata.name === `${service}-checkpoint`,
        );
        expect(jobs, `${env.environment} ${service}`).toHaveLength(1);
        const job = jobs[0].manifest;
        expect(job.metadata.annotations!['argocd.argoproj.io/hook'].split(',')).toContain('PostSync');
        expect(job.metadata.annotations!['argocd.argoproj.io/hook-delete-policy']).toBe('BeforeHookCreation,HookSucceeded');
        expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(0);
        expect(job.spec.backoffLimit).toBeLessThanOrEqual(3);
        // Every other Job (the Vault configurator, the verification's checks) is a hook too: nothing runs outside a sync.
        for (const { manifest: other } of manifestsOf(env).filter(({ path, manifest }) => path.startsWith(`${service}/`) && manifest.kind === 'Job')) {
          expect(other.metadata.annotations!['argocd.argoproj.io/hook'].split(','), other.metadata.name).toContain('PostSync');
          expect(other.spec.activeDeadlineSeconds).toBeGreaterThan(0);
          expect(other.spec.backoffLimit).toBeLessThanOrEqual(3);
        }
      }
    }
  });

  it('protects every PersistentVolumeClaim that holds data from deletion by Argo CD', () => {
    const claims = all.filter(({ manifest }) => manifest.kind === 'PersistentVolumeClaim');
    expect(claims.length).toBeGreaterThan(0);
    for (const { path, manifest } of claims) {
      const annotations = manifest.metadata.annotations ?? {};
      const hook = 'argocd.argoproj.io/hook' in annotations;
      expect((annotations[SYNC_OPTIONS] ?? '').split(',').includes('Delete=false'), path).toBe(!hook);
    }
  });

  it('syncs custom resources after the CRD their own chart installs', () => {
    for (const { path, manifest } of all.filter(({ manifest }) => manifest.kind === 'RecurringJob')) {
      expect(manifest.metadata.annotations?.[SYNC_OPTIONS], path).toContain('SkipDryRunOnMissingResource=true');
      expect(Number(manifest.metadata.annotations?.[WAVE]), path).toBeGreaterThan(0);
    }
  });
});

describe('GPU workloads in the synthesized example', () => {
  const prod = envs.find((e) => e.environment === 'prod')!;
  const gpuNodes = new Set(['gpu-1']);

  /** Pod specs of Deployments and RayCluster groups, with where they come from. */
  function podSpecs(env: SynthesizedEnvironment): { where: string; spec: any }[] {
    return manifestsOf(env).flatMap(({ path, manifest }) => {
      if (manifest.kind === 'RayCluster') {
        return [
          { where: `${path} head`, spec: manifest.spec.headGroupSpec.template.spec },
          ...manifest.spec.workerGroupSpecs.map((g: any) => ({ where: `${path} ${g.groupName}`, spec: g.template.spec, rayStartParams: g.rayStartParams })),
        ];
      }
      const spec = podSpecOf(manifest);
      return spec ? [{ where: path, spec }] : [];
    });
  }

  const gpusOf = (spec: any) => spec.containers.reduce((n: number, c: any) => n + Number(c.resources?.limits?.['nvidia.com/gpu'] ?? 0), 0);

  it('run every pod that requests nvidia.com/gpu with the NVIDIA RuntimeClass, on the GPU nodes only', () => {
    const gpuPods = envs.flatMap(podSpecs).filter(({ spec }) => gpusOf(spec) > 0);
    expect(gpuPods.map((p) => p.where).sort()).toEqual(['ray/raycluster-ray.yaml gpu', 'triton/deployment-triton.yaml']);
    for (const { where, spec } of gpuPods) {
      expect(spec.runtimeClassName, where).toBe('nvidia');
      const nodes = parseConfigNodes();
      expect(new Set(Object.keys(nodes).filter((name) => schedulableOn(spec, name, nodes[name].labels))), where).toEqual(gpuNodes);
    }
  });

  it('give each Ray GPU worker group as many GPUs as its num-gpus, and CPU groups none', () => {
    const cluster = manifestsOf(prod).find(({ manifest }) => manifest.kind === 'RayCluster')!.manifest;
    for (const group of cluster.spec.workerGroupSpecs) {
      expect(String(gpusOf(group.template.spec)), group.groupName).toBe(group.rayStartParams['num-gpus'] ?? '0');
    }
  });

  it('order RabbitMQ after Longhorn, and Triton and Ray after the device plugin and what they store on', () => {
    const wave = new Map(prod.services.map((s) => [s.name, s.wave]));
    expect(wave.get('rabbitmq')!).toBeGreaterThan(wave.get('longhorn')!);
    expect(wave.get('rabbitmq')!).toBeGreaterThan(wave.get('rabbitmq-operators')!);
    expect(wave.get('triton')!).toBeGreaterThan(wave.get('nvidia-device-plugin')!);
    expect(wave.get('triton')!).toBeGreaterThan(wave.get('longhorn')!);
    expect(wave.get('ray')!).toBeGreaterThan(wave.get('nvidia-device-plugin')!);
    expect(wave.get('ray')!).toBeGreaterThan(wave.get('kuberay-operator')!);
  });

  it('keep RabbitMQ data on the Longhorn default class', () => {
    for (const env of envs) {
      const cluster = manifestsOf(env).find(({ manifest }) => manifest.kind === 'RabbitmqCluster')!.manifest;
      expect(cluster.spec.persistence.storageClassName).toBe('longhorn-replicated');
      expect(cluster.spec.replicas).toBe(env.environment === 'prod' ? 3 : 1);
    }
  });
});

/** Whether a pod spec's nodeSelector and required node affinity admit a node (In/Exists only). */
function schedulableOn(spec: any, name: string, nodeLabels: Record<string, string>): boolean {
  const labels: Record<string, string> = { ...nodeLabels, 'kubernetes.io/hostname': name };
  const selectorOk = Object.entries(spec.nodeSelector ?? {}).every(([key, value]) => labels[key] === value);
  const terms = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  const affinityOk =
    !terms ||
    terms.some((term: any) =>
      (term.matchExpressions ?? []).every((e: any) => (e.operator === 'Exists' ? e.key in labels : e.values.includes(labels[e.key]))),
    );
  return selectorOk && affinityOk && (spec.nodeSelector !== undefined || terms !== undefined);
}

function parseConfigNodes(): Record<string, { labels: Record<string, string> }> {
  return parseText(exampleText(), 'homelab.yaml').environments.get('prod')!.nodes;
}

describe('the Argo CD app-of-apps', () => {
  it('gives every child Application a wave above each of its dependencies', () => {
    for (const env of envs) {
      const waveOf = new Map(applications(env).map((app) => [app.metadata.name, Number(app.metadata.annotations![WAVE])]));
      expect(waveOf.size).toBe(env.services.length);
      for (const service of env.services) {
        expect(Number.isInteger(waveOf.get(service.name))).toBe(true);
        for (const dep of service.dependsOn) {
          expect(waveOf.get(service.name)!, `${env.environment}: ${service.name} after ${dep}`).toBeGreaterThan(waveOf.get(dep)!);
        }
      }
    }
  });

  it('orders consumers after what their manifests use: storage classes and CRDs', () => {
    for (const env of envs) {
      const waveOf = new Map(applications(env).map((app) => [app.metadata.name, Number(app.metadata.annotations![WAVE])]));
      const serviceOf = (path: string) => path.split('/')[0];
      const providerOfClass = new Map(
        manifestsOf(env)
          .filter(({ manifest }) => manifest.kind === 'StorageClass')
          .map(({ path, manifest }) => [manifest.metadata.name, serviceOf(path)]),
      );
      for (const { path, manifest } of manifestsOf(env)) {
        if (manifest.kind !== 'PersistentVolumeClaim' || path.startsWith('longhorn/')) continue;
        const provider = providerOfClass.get(manifest.spec.storageClassName)!;
        expect(provider, path).toBe('longhorn');
        expect(waveOf.get(serviceOf(path))!, path).toBeGreaterThan(waveOf.get(provider)!);
      }
    }
  });

  it('puts the AppProject before every child Application', () => {
    for (const env of envs) {
      const project = manifestsOf(env).find(({ manifest }) => manifest.kind === 'AppProject')!.manifest;
      const firstChild = Math.min(...applications(env).map((app) => Number(app.metadata.annotations![WAVE])));
      expect(Number(project.metadata.annotations![WAVE])).toBeLessThan(firstChild);
    }
  });

  it('restricts the AppProject to the sources and namespaces the Applications use', () => {
    for (const env of envs) {
      const project = manifestsOf(env).find(({ manifest }) => manifest.kind === 'AppProject')!.manifest;
      const apps = applications(env);
      const repos = new Set(apps.flatMap((app) => sourcesOf(app).map((s) => s.repoURL)));
      const namespaces = new Set(apps.map((app) => app.spec.destination.namespace));
      expect([...repos].sort()).toEqual([...project.spec.sourceRepos].sort());
      expect([...namespaces].sort()).toEqual(project.spec.destinations.map((d: any) => d.namespace).sort());
      for (const app of apps) expect(app.spec.project).toBe(project.metadata.name);
    }
  });

  it('configures child Applications for safe syncs', () => {
    for (const env of envs) {
      const manual = env.environment === 'prod';
      for (const app of applications(env)) {
        const where = `${env.environment}/${app.metadata.name}`;
        expect(app.spec.syncPolicy.syncOptions, where).toEqual(expect.arrayContaining(['ServerSideApply=true', 'CreateNamespace=false']));
        expect(app.spec.syncPolicy.retry.limit, where).toBeGreaterThan(0);
        if (app.spec.ignoreDifferences) expect(app.spec.syncPolicy.syncOptions, where).toContain('RespectIgnoreDifferences=true');
        expect(app.spec.syncPolicy.retry.backoff.maxDuration, where).toBeTruthy();
        if (manual) expect(app.spec.syncPolicy.automated, where).toBeUndefined();
        else expect(app.spec.syncPolicy.automated, where).toEqual({ prune: true, selfHeal: true });
        // The Application that runs Argo CD must survive its own deletion.
        const finalizers = app.metadata.finalizers ?? [];
        expect(finalizers.includes('resources-finalizer.argocd.argoproj.io'), where).toBe(app.metadata.name !== 'argocd');
      }
    }
  });

  it('combines an upstream chart with our own manifests in one multi-source Application', () => {
    for (const env of envs) {
      for (const app of applications(env)) {
        const sources = sourcesOf(app);
        const own = sources.find((s) => s.path?.startsWith('k8s/'));
        expect(own.path).toBe(`k8s/${env.environment}/${app.metadata.name}`);
        expect([...env.files.keys()].some((p) => p.startsWith(`${app.metadata.name}/`))).toBe(true);
        const chart = sources.find((s) => s.chart);
        if (!chart) continue;
        const pinned = Object.values(CHARTS).find((c) => c.chart === chart.chart)!;
        expect(chart).toMatchObject({ repoURL: pinned.repoURL, targetRevision: pinned.version });
        expect(helmValuesErrors(chart.chart, chart.helm.valuesObject), `${env.environment}/${app.metadata.name}`).toEqual([]);
      }
    }
  });

  it('bootstraps each environment through a root Application in project default, without prune or finalizer', () => {
    for (const env of envs) {
      const root = manifestsOf(env).find(({ path }) => path.startsWith('bootstrap/'))!.manifest;
      expect(root.kind).toBe('Application');
      expect(root.spec.project).toBe('default');
      expect(root.metadata.finalizers).toBeUndefined();
      expect(root.spec.source.path).toBe(`k8s/${env.environment}/apps`);
      expect(root.spec.syncPolicy.automated?.prune ?? false).toBe(false);
    }
  });

  it('installs Argo CD at bootstrap with exactly the values it later manages itself with', () => {
    for (const env of envs) {
      const values = parse(env.files.get('bootstrap/argo-cd.values.yaml')!);
      const argocd = applications(env).find((app) => app.metadata.name === 'argocd')!;
      expect(values).toEqual(sourcesOf(argocd).find((s) => s.chart).helm.valuesObject);
      expect(values.configs.cm['resource.customizations.health.argoproj.io_Application']).toContain('operationState');
      expect(values.configs.cm['application.resourceTrackingMethod']).toBe('annotation');
      expect(values.configs.params['server.insecure']).toBe(true);
      expect(values.global.domain).toBe(`argocd.${env.environment === 'prod' ? '' : `${env.environment}.`}home.example.net`);
    }
  });

  it('keeps the chart versions in step with the values types they were generated from', () => {
    for (const chart of Object.values(CHARTS)) {
      const generated = readFileSync(join(ROOT, 'imports', 'helm', `${chart.chart}.ts`), 'utf8');
      expect(generated, chart.chart).toContain(`CHART_VERSION = '${chart.version}'`);
    }
  });
});
