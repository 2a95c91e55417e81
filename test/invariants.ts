/**
 * Properties every synthesized output must have, whatever the config: each invariant returns
 * its violations as readable lines (`<env>/<file>: <problem>`), empty when it holds. The
 * invariants test runs them over the operator's homelab.yaml, the property tests over
 * generated configs. None of them knows which services or how many objects to expect.
 */
import { isDeepStrictEqual } from 'node:util';
import { parse } from 'yaml';
import { CHARTS } from '../charts/versions';
import { GPU_RESOURCE, isGpuProvider } from '../lib/model/gpu';
import { EXCEPTION_ANNOTATION } from '../lib/model/pod-security';
import { CLUSTER_DNS, isNetworkPolicyProvider } from '../lib/model/network';
import type { HomelabService } from '../lib/model/service';
import { apiGroup } from '../lib/passes/graph';
import { ALLOW_SAME_NAMESPACE, DEFAULT_DENY, DEFAULT_DENY_EGRESS, EGRESS_DNS, EGRESS_PREFIX, NAMESPACE_NAME_LABEL } from '../lib/passes/network-policies';
import { isClusterScoped } from '../lib/output/cluster-scoped';
import { GENERATED_HEADER } from '../lib/output/synthesize';
import { formatViolation, lintObjects } from '../lib/tools/lint/lint';
import { lintedObjects } from '../lib/tools/lint/tree';
import { helmValuesErrors } from '../lib/tools/validate/helm-values';
import { ManifestValidator } from '../lib/tools/validate/manifest-validator';
import { KUBERNETES_VERSION } from '../lib/model/kubernetes';
import { Manifest, manifestsOf, Synthesized } from './support';

export interface Invariant {
  readonly name: string;
  /** The violations, one line each; none when it holds. */
  check(all: readonly Synthesized[]): string[];
}

const WAVE = 'argocd.argoproj.io/sync-wave';
const HOOK = 'argocd.argoproj.io/hook';
const SYNC_OPTIONS = 'argocd.argoproj.io/sync-options';
const ENFORCE = 'pod-security.kubernetes.io/enforce';
const RESOURCES_FINALIZER = 'resources-finalizer.argocd.argoproj.io';

/** Every document of every environment, with where it is. */
function documents(all: readonly Synthesized[]) {
  return all.flatMap((s) => manifestsOf(s.env).map(({ path, manifest }) => ({ ...s, path, manifest, where: `${s.env.environment}/${path}` })));
}

const applications = (s: Synthesized) =>
  manifestsOf(s.env)
    .filter(({ path, manifest }) => path.startsWith('apps/') && manifest.kind === 'Application')
    .map(({ manifest }) => manifest);

const sourcesOf = (app: Manifest): any[] => app.spec.sources ?? [app.spec.source];

const ownerOf = (s: Synthesized, path: string): HomelabService | undefined => s.platform.services.find((service) => service.serviceName === path.split('/')[0]);

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

/** The pod templates of a document: workloads, and the groups of RayClusters (with KubeRay's autoscaler sidecar). */
function podTemplates(manifest: Manifest): { part: string; pod: any }[] {
  if (manifest.kind === 'RayCluster') {
    const head = manifest.spec.headGroupSpec.template.spec;
    const autoscaler = { name: 'autoscaler', securityContext: manifest.spec.autoscalerOptions?.securityContext };
    return [
      { part: 'head', pod: head },
      ...manifest.spec.workerGroupSpecs.map((group: any) => ({ part: group.groupName, pod: group.template.spec })),
      { part: 'autoscaler', pod: { ...head, containers: [autoscaler] } },
    ];
  }
  const pod = podSpecOf(manifest);
  return pod ? [{ part: '', pod }] : [];
}

const containersOf = (pod: any): any[] => [...(pod.initContainers ?? []), ...pod.containers];

/** Whether a pod's nodeSelector and required node affinity admit a node (In and Exists only). */
function admits(pod: any, node: string, nodeLabels: Readonly<Record<string, string>>): boolean {
  const labels: Record<string, string> = { ...nodeLabels, 'kubernetes.io/hostname': node };
  const selectorOk = Object.entries(pod.nodeSelector ?? {}).every(([key, value]) => labels[key] === value);
  const terms = pod.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  const affinityOk =
    !terms ||
    terms.some((term: any) => (term.matchExpressions ?? []).every((e: any) => (e.operator === 'Exists' ? e.key in labels : e.values.includes(labels[e.key]))));
  return selectorOk && affinityOk;
}

const problems = (condition: boolean, problem: string): string[] => (condition ? [] : [problem]);

export const INVARIANTS: readonly Invariant[] = [
  {
    name: 'every document validates against the Kubernetes schema and the CRD schemas',
    check: (all) => {
      const validator = ManifestValidator.shared();
      return documents(all).flatMap(({ where, manifest }) => validator.validate(manifest).map((p) => `${where}: ${p}`));
    },
  },
  {
    name: 'every file is marked generated and holds one resource, named after it and its namespace',
    check: (all) =>
      all.flatMap((s) => [
        ...[...s.env.files].flatMap(([path, content]) => [
          ...problems(content.startsWith(GENERATED_HEADER), `${s.env.environment}/${path}: no generated header`),
          ...problems(!/^---$/m.test(content), `${s.env.environment}/${path}: more than one document`),
        ]),
        ...manifestsOf(s.env).flatMap(({ path, manifest }) => {
          const own = ownerOf(s, path)?.namespaceName ?? 'argocd';
          const namespace = manifest.metadata.namespace;
          const elsewhere = namespace !== undefined && namespace !== own ? `${namespace}-` : '';
          const expected = `${manifest.kind.toLowerCase()}-${elsewhere}${manifest.metadata.name}.yaml`;
          return problems(path.split('/').pop() === expected, `${s.env.environment}/${path}: expected the file name ${expected}`);
        }),
      ]),
  },
  {
    // Cluster-scoped objects naming one are schema errors (the first invariant); a namespaced one
    // without would land wherever its Application's destination points, not where we meant.
    name: 'every namespaced object names its namespace',
    check: (all) =>
      documents(all).flatMap(({ where, manifest }) =>
        problems(isClusterScoped(manifest.apiVersion, manifest.kind) || typeof manifest.metadata.namespace === 'string', `${where}: no metadata.namespace`),
      ),
  },
  {
    name: 'no Secret carries data',
    check: (all) => documents(all).flatMap(({ where, manifest }) => problems(!(manifest.kind === 'Secret' && (manifest.data || manifest.stringData)), `${where}: a Secret with data`)),
  },
  {
    name: 'every container has CPU and memory requests and limits and a pinned image tag',
    check: (all) =>
      documents(all).flatMap(({ where, manifest }) =>
        podTemplates(manifest).flatMap(({ part, pod }) =>
          containersOf(pod)
            .filter((c) => c.image !== undefined)
            .flatMap((container) => {
              const at = `${where}${part ? ` ${part}` : ''} ${container.name}`;
              return [
                ...['requests', 'limits'].flatMap((kind) =>
                  ['cpu', 'memory'].flatMap((resource) => problems(Boolean(container.resources?.[kind]?.[resource]), `${at}: no ${kind}.${resource}`)),
                ),
                ...problems(/:[\w][\w.-]*(@sha256:[a-f0-9]{64})?$/.test(container.image) && !/:latest(@|$)/.test(container.image), `${at}: image ${container.image} is not pinned`),
              ];
            }),
        ),
      ),
  },
  {
    name: 'every resource of a service carries explicit labels, none derived from a construct path',
    check: (all) =>
      documents(all).flatMap(({ where, path, manifest }) => {
        if (path.startsWith('bootstrap/') || path.startsWith('apps/appproject')) return [];
        const labels = manifest.metadata.labels ?? {};
        return [
          ...['name', 'instance', 'part-of', 'component', 'managed-by'].flatMap((key) => problems(Boolean(labels[`app.kubernetes.io/${key}`]), `${where}: no app.kubernetes.io/${key}`)),
          ...problems(!JSON.stringify(manifest).includes('cdk8s.io/metadata.addr'), `${where}: a label derived from the construct path`),
        ];
      }),
  },
  {
    name: 'every Deployment selects its pods by stable labels, and every Service selects pods of a workload in its namespace',
    check: (all) =>
      all.flatMap((s) => {
        const docs = manifestsOf(s.env);
        const templates = docs
          .filter(({ manifest }) => manifest.spec?.template?.metadata?.labels)
          .map(({ manifest }) => ({ namespace: manifest.metadata.namespace, labels: manifest.spec.template.metadata.labels as Record<string, string> }));
        return docs.flatMap(({ path, manifest }) => {
          const where = `${s.env.environment}/${path}`;
          if (manifest.kind === 'Deployment') {
            const selector = manifest.spec.selector.matchLabels;
            return [
              ...problems(
                JSON.stringify(Object.keys(selector).sort()) === JSON.stringify(['app.kubernetes.io/component', 'app.kubernetes.io/instance', 'app.kubernetes.io/name']),
                `${where}: selector ${JSON.stringify(selector)} is not the stable name, instance and component`,
              ),
              ...problems(Object.entries(selector).every(([k, v]) => manifest.spec.template.metadata.labels?.[k] === v), `${where}: the pod template lacks its selector's labels`),
            ];
          }
          if (manifest.kind === 'Service' && manifest.spec.selector) {
            const selects = templates.some((t) => t.namespace === manifest.metadata.namespace && Object.entries(manifest.spec.selector).every(([k, v]) => t.labels[k] === v));
            return problems(selects, `${where}: selects no pod template of ours in ${manifest.metadata.namespace}`);
          }
          return [];
        });
      }),
  },
  {
    name: "every service's namespace has its Pod Security level, restricted unless the service declares why not",
    check: (all) =>
      all.flatMap((s) => {
        const namespaces = new Map(manifestsOf(s.env).filter(({ manifest }) => manifest.kind === 'Namespace').map(({ path, manifest }) => [manifest.metadata.name, { path, manifest }]));
        return s.platform.services.flatMap((service) => {
          const found = namespaces.get(service.namespaceName);
          if (!found) return [`${s.env.environment}/${service.serviceName}: no Namespace ${service.namespaceName}`];
          const labels = found.manifest.metadata.labels ?? {};
          const expected = service.podSecurityException;
          const where = `${s.env.environment}/${found.path}`;
          return [
            ...problems(labels[ENFORCE] === (expected?.level ?? 'restricted'), `${where}: enforce ${labels[ENFORCE]}, declared ${expected?.level ?? 'restricted'}`),
            ...problems(found.manifest.metadata.annotations?.[EXCEPTION_ANNOTATION] === expected?.reason, `${where}: the exception annotation is not the declared reason`),
            ...['audit', 'warn'].flatMap((mode) => problems(labels[`pod-security.kubernetes.io/${mode}`] === labels[ENFORCE], `${where}: ${mode} differs from enforce`)),
            ...['enforce', 'audit', 'warn'].flatMap((mode) =>
              problems(labels[`pod-security.kubernetes.io/${mode}-version`] === KUBERNETES_VERSION, `${where}: ${mode}-version is not ${KUBERNETES_VERSION}`),
            ),
          ];
        });
      }),
  },
  {
    name: 'pods in restricted namespaces run with a restricted security context',
    check: (all) =>
      all.flatMap((s) => {
        const docs = manifestsOf(s.env);
        const restricted = new Set(docs.filter(({ manifest }) => manifest.kind === 'Namespace' && manifest.metadata.labels?.[ENFORCE] === 'restricted').map(({ manifest }) => manifest.metadata.name));
        return docs.flatMap(({ path, manifest }) => {
          const pod = podSpecOf(manifest);
          if (!pod || !restricted.has(manifest.metadata.namespace!)) return [];
          const where = `${s.env.environment}/${path}`;
          return [
            ...problems(pod.securityContext?.runAsNonRoot === true, `${where}: runAsNonRoot is not true`),
            ...pod.containers.flatMap((c: any) => [
              ...problems(c.securityContext?.allowPrivilegeEscalation === false, `${where} ${c.name}: privilege escalation allowed`),
              ...problems(c.securityContext?.capabilities?.drop?.includes('ALL') === true, `${where} ${c.name}: capabilities not dropped`),
              ...problems((c.securityContext?.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type) === 'RuntimeDefault', `${where} ${c.name}: seccomp is not RuntimeDefault`),
            ]),
          ];
        });
      }),
  },
  {
    name: 'every container we write runs restricted with a read-only root filesystem, except what its service declares, and each declared relaxation is needed',
    check: (all) =>
      all.flatMap((s) =>
        s.platform.services.flatMap((service) => {
          const relaxed = new Set<string>();
          const found = manifestsOf(s.env)
            .filter(({ path }) => path.startsWith(`${service.serviceName}/`))
            .flatMap(({ path, manifest }) =>
              podTemplates(manifest).flatMap(({ part, pod }) =>
                containersOf(pod).flatMap((container) => {
                  const sc = container.securityContext ?? {};
                  const failing = Object.entries({
                    runAsNonRoot: (sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot) === true,
                    allowPrivilegeEscalation: sc.allowPrivilegeEscalation === false,
                    capabilities: JSON.stringify(sc.capabilities?.drop) === '["ALL"]',
                    seccomp: (sc.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type) === 'RuntimeDefault',
                    readOnlyRootFilesystem: sc.readOnlyRootFilesystem === true,
                  })
                    .filter(([, ok]) => !ok)
                    .map(([key]) => key);
                  for (const key of failing) relaxed.add(key);
                  const allowed: readonly string[] = service.containerException?.relaxes ?? [];
                  return failing.filter((key) => !allowed.includes(key)).map((key) => `${s.env.environment}/${path}${part ? ` ${part}` : ''} ${container.name}: ${key}`);
                }),
              ),
            );
          const unneeded = (service.containerException?.relaxes ?? []).filter((key) => !relaxed.has(key));
          return [...found, ...unneeded.map((key) => `${s.env.environment}/${service.serviceName}: declares ${key} relaxed, but no container needs it`)];
        }),
      ),
  },
  {
    name: 'every service has one PostSync checkpoint Job, and every Job is a bounded hook',
    check: (all) =>
      all.flatMap((s) =>
        applications(s).flatMap((app) => {
          const service = app.metadata.name;
          const jobs = manifestsOf(s.env).filter(({ path, manifest }) => path.startsWith(`${service}/`) && manifest.kind === 'Job');
          const checkpoints = jobs.filter(({ manifest }) => manifest.metadata.name === `${service}-checkpoint`);
          const where = `${s.env.environment}/${service}`;
          return [
            ...problems(checkpoints.length === 1, `${where}: ${checkpoints.length} checkpoint Jobs`),
            ...checkpoints.flatMap(({ manifest }) =>
              problems(manifest.metadata.annotations?.['argocd.argoproj.io/hook-delete-policy']?.includes('BeforeHookCreation') === true, `${where}: the checkpoint is not replaced on the next sync`),
            ),
            ...jobs.flatMap(({ path, manifest }) => [
              ...problems((manifest.metadata.annotations?.[HOOK] ?? '').split(',').includes('PostSync'), `${s.env.environment}/${path}: not a PostSync hook`),
              ...problems(manifest.spec.activeDeadlineSeconds > 0, `${s.env.environment}/${path}: no deadline`),
              ...problems(manifest.spec.backoffLimit <= 3, `${s.env.environment}/${path}: more than 3 retries`),
            ]),
          ];
        }),
      ),
  },
  {
    name: 'every PersistentVolumeClaim that holds data is protected from deletion by Argo CD',
    check: (all) =>
      documents(all)
        .filter(({ manifest }) => manifest.kind === 'PersistentVolumeClaim')
        .flatMap(({ where, manifest }) => {
          const annotations = manifest.metadata.annotations ?? {};
          const protectedFromDeletion = (annotations[SYNC_OPTIONS] ?? '').split(',').includes('Delete=false');
          return problems(protectedFromDeletion === !(HOOK in annotations), `${where}: Delete=false ${protectedFromDeletion ? 'on a hook' : 'missing'}`);
        }),
  },
  {
    name: "custom resources whose CRD the service's own chart installs skip the dry run and sync after the chart",
    check: (all) =>
      all.flatMap((s) =>
        s.platform.services.flatMap((service) =>
          manifestsOf(s.env)
            .filter(({ path, manifest }) => path.startsWith(`${service.serviceName}/`) && service.installsCrdGroups.includes(apiGroup(manifest.apiVersion)))
            .flatMap(({ path, manifest }) => [
              ...problems((manifest.metadata.annotations?.[SYNC_OPTIONS] ?? '').includes('SkipDryRunOnMissingResource=true'), `${s.env.environment}/${path}: no SkipDryRunOnMissingResource`),
              ...problems(Number(manifest.metadata.annotations?.[WAVE]) > 0, `${s.env.environment}/${path}: not after the chart's resources`),
            ]),
        ),
      ),
  },
  {
    name: 'every pod requesting GPUs runs with the GPU RuntimeClass on GPU nodes only',
    check: (all) =>
      documents(all).flatMap(({ where, manifest, config, platform }) =>
        podTemplates(manifest)
          .filter(({ pod }) => pod.containers.some((c: any) => Number(c.resources?.limits?.[GPU_RESOURCE] ?? 0) > 0))
          .flatMap(({ part, pod }) => {
            const at = `${where}${part ? ` ${part}` : ''}`;
            const provider = platform.services.find(isGpuProvider);
            const nodes = Object.entries(config.nodes);
            const admitted = nodes.filter(([name, node]) => admits(pod, name, node.labels)).map(([name]) => name);
            return [
              ...problems(provider !== undefined && pod.runtimeClassName === provider.runtimeClassName, `${at}: runtimeClassName ${pod.runtimeClassName}`),
              ...problems(admitted.length > 0 && admitted.every((name) => config.nodes[name].gpus > 0), `${at}: schedulable on ${admitted.join(', ') || 'no node'}`),
            ];
          }),
      ),
  },
  {
    name: 'every Application syncs in a wave after each of its dependencies, and after the storage its claims use',
    check: (all) =>
      all.flatMap((s) => {
        const waveOf = new Map(applications(s).map((app) => [app.metadata.name, Number(app.metadata.annotations?.[WAVE])]));
        const where = s.env.environment;
        const classOwner = new Map(
          manifestsOf(s.env)
            .filter(({ manifest }) => manifest.kind === 'StorageClass')
            .map(({ path, manifest }) => [manifest.metadata.name, path.split('/')[0]]),
        );
        return [
          ...problems(waveOf.size === s.env.services.length, `${where}: ${waveOf.size} Applications for ${s.env.services.length} services`),
          ...s.env.services.flatMap((service) => [
            ...problems(Number.isInteger(waveOf.get(service.name)), `${where}/${service.name}: no integer wave`),
            ...service.dependsOn.flatMap((dep) => problems(waveOf.get(service.name)! > waveOf.get(dep)!, `${where}/${service.name}: wave ${waveOf.get(service.name)} is not after ${dep} (${waveOf.get(dep)})`)),
          ]),
          ...manifestsOf(s.env)
            .filter(({ manifest }) => manifest.kind === 'PersistentVolumeClaim' && !(HOOK in (manifest.metadata.annotations ?? {})))
            .flatMap(({ path, manifest }) => {
              const owner = classOwner.get(manifest.spec.storageClassName);
              const service = path.split('/')[0];
              if (!owner) return [`${where}/${path}: storage class ${manifest.spec.storageClassName} is nobody's`];
              return owner === service ? [] : problems(waveOf.get(service)! > waveOf.get(owner)!, `${where}/${path}: syncs before ${owner}, which provides its storage class`);
            }),
        ];
      }),
  },
  {
    name: 'the AppProject comes first and allows exactly the sources and namespaces the Applications use',
    check: (all) =>
      all.flatMap((s) => {
        const project = manifestsOf(s.env).find(({ manifest }) => manifest.kind === 'AppProject')?.manifest;
        const where = s.env.environment;
        if (!project) return [`${where}: no AppProject`];
        const apps = applications(s);
        const repos = [...new Set(apps.flatMap((app) => sourcesOf(app).map((source) => source.repoURL)))].sort();
        const namespaces = [...new Set(apps.map((app) => app.spec.destination.namespace))].sort();
        return [
          ...problems(Number(project.metadata.annotations?.[WAVE]) < Math.min(...apps.map((app) => Number(app.metadata.annotations?.[WAVE]))), `${where}: the AppProject is not before every Application`),
          ...problems(JSON.stringify(repos) === JSON.stringify([...project.spec.sourceRepos].sort()), `${where}: the AppProject's sources are not the Applications'`),
          ...problems(JSON.stringify(namespaces) === JSON.stringify(project.spec.destinations.map((d: any) => d.namespace).sort()), `${where}: the AppProject's destinations are not the Applications'`),
          ...apps.flatMap((app) => problems(app.spec.project === project.metadata.name, `${where}/${app.metadata.name}: another project`)),
        ];
      }),
  },
  {
    name: 'every child Application syncs safely, as the sync settings say, and only the one running Argo CD has no finalizer',
    check: (all) =>
      all.flatMap((s) =>
        applications(s).flatMap((app) => {
          const where = `${s.env.environment}/${app.metadata.name}`;
          const policy = app.spec.syncPolicy;
          const automated = s.config.sync.mode === 'automated';
          const engine = s.platform.services.find((service) => service.serviceName === app.metadata.name)?.installsCrdGroups.includes('argoproj.io') === true;
          return [
            ...['ServerSideApply=true', 'CreateNamespace=false'].flatMap((option) => problems(policy.syncOptions.includes(option), `${where}: no ${option}`)),
            ...problems(!app.spec.ignoreDifferences || policy.syncOptions.includes('RespectIgnoreDifferences=true'), `${where}: ignoreDifferences without RespectIgnoreDifferences`),
            ...problems(policy.retry.limit === s.config.sync.retry.limit && Boolean(policy.retry.backoff.maxDuration), `${where}: retry is not the configured one`),
            ...problems(
              automated ? JSON.stringify(policy.automated) === JSON.stringify({ prune: s.config.sync.prune, selfHeal: s.config.sync.selfHeal }) : policy.automated === undefined,
              `${where}: automated sync is not the configured one`,
            ),
            ...problems((app.metadata.finalizers ?? []).includes(RESOURCES_FINALIZER) === !engine, `${where}: the resources finalizer is ${engine ? 'on Argo CD itself' : 'missing'}`),
          ];
        }),
      ),
  },
  {
    name: "every Application takes its own folder, and each pinned chart with values its schema accepts",
    check: (all) =>
      all.flatMap((s) =>
        applications(s).flatMap((app) => {
          const where = `${s.env.environment}/${app.metadata.name}`;
          const sources = sourcesOf(app);
          const own = sources.find((source) => source.path?.startsWith('k8s/'));
          const chart = sources.find((source) => source.chart);
          const pinned = chart && Object.values(CHARTS).find((c) => c.chart === chart.chart);
          return [
            ...problems(own?.path === `k8s/${s.env.environment}/${app.metadata.name}`, `${where}: its own manifests are not at k8s/${s.env.environment}/${app.metadata.name}`),
            ...problems([...s.env.files.keys()].some((path) => path.startsWith(`${app.metadata.name}/`)), `${where}: its folder is empty`),
            ...(chart
              ? [
                  ...problems(pinned !== undefined && chart.repoURL === pinned.repoURL && chart.targetRevision === pinned.version, `${where}: chart ${chart.chart} is not the pinned one`),
                  ...helmValuesErrors(chart.chart, chart.helm.valuesObject).map((problem) => `${where}: ${chart.chart} values: ${problem}`),
                ]
              : []),
          ];
        }),
      ),
  },
  {
    name: 'the root Application of each environment syncs its apps/ folder in project default, without prune or finalizer',
    check: (all) =>
      all.flatMap((s) => {
        const roots = manifestsOf(s.env).filter(({ path, manifest }) => path.startsWith('bootstrap/') && manifest.kind === 'Application');
        if (roots.length !== 1) return [`${s.env.environment}: ${roots.length} root Applications`];
        const root = roots[0].manifest;
        return [
          ...problems(root.spec.project === 'default', `${s.env.environment}: the root is in project ${root.spec.project}`),
          ...problems(root.metadata.finalizers === undefined, `${s.env.environment}: the root has a finalizer`),
          ...problems(root.spec.source.path === `k8s/${s.env.environment}/apps`, `${s.env.environment}: the root syncs ${root.spec.source.path}`),
          ...problems((root.spec.syncPolicy.automated?.prune ?? false) === false, `${s.env.environment}: the root prunes`),
        ];
      }),
  },
  {
    name: 'Argo CD is installed at bootstrap with exactly the values it then manages itself with',
    check: (all) =>
      all.flatMap((s) => {
        const values = s.env.files.get('bootstrap/argo-cd.values.yaml');
        const argocd = applications(s).find((app) => sourcesOf(app).some((source) => source.chart === 'argo-cd'));
        if (!values || !argocd) return [`${s.env.environment}: no bootstrap values or no Argo CD Application`];
        return problems(isDeepStrictEqual(parse(values), sourcesOf(argocd).find((source) => source.chart).helm.valuesObject), `${s.env.environment}: bootstrap values differ`);
      }),
  },
  {
    name: 'where NetworkPolicies are on, every namespace of ours denies ingress and allows only named namespaces, its own pods, the API server on webhooks and entry points',
    check: (all) =>
      all.flatMap((s) => {
        if (!s.platform.services.some(isNetworkPolicyProvider)) return [];
        const policies = manifestsOf(s.env).filter(({ manifest }) => manifest.kind === 'NetworkPolicy');
        const owners = new Map(s.platform.services.map((service) => [service.namespaceName, service.serviceName]));
        const namespaces = new Set(owners.keys());
        return [
          ...[...namespaces].flatMap((namespace) => {
            const here = policies.filter(({ manifest }) => manifest.metadata.namespace === namespace).map(({ manifest }) => manifest);
            const where = `${s.env.environment}/${owners.get(namespace)}`;
            return [
              ...problems(here.filter((p) => p.metadata.name === DEFAULT_DENY && JSON.stringify(p.spec) === JSON.stringify({ podSelector: {}, policyTypes: ['Ingress'] })).length === 1, `${where}: no default deny`),
              ...problems(here.filter((p) => p.metadata.name === ALLOW_SAME_NAMESPACE).length === 1, `${where}: no same-namespace rule`),
            ];
          }),
          ...policies.flatMap(({ path, manifest }) => {
            const where = `${s.env.environment}/${path}`;
            const name = manifest.metadata.name;
            if (name === DEFAULT_DENY || name === ALLOW_SAME_NAMESPACE || !manifest.spec.policyTypes.includes('Ingress')) return [];
            const ingress = manifest.spec.ingress ?? [];
            return [
              ...problems(path.split('/')[0] === owners.get(manifest.metadata.namespace!), `${where}: not in the folder of its namespace's service`),
              ...problems(ingress.length === 1 && ingress[0].from?.length > 0 && ingress[0].ports?.length > 0, `${where}: not one rule with sources and ports`),
              ...(ingress[0]?.from ?? []).flatMap((peer: any) =>
                peer.ipBlock
                  ? problems(/^allow-(api-server|public)-/.test(name), `${where}: an address block outside the API server and entry point rules`)
                  : problems(
                      JSON.stringify(Object.keys(peer.namespaceSelector?.matchLabels ?? {})) === JSON.stringify([NAMESPACE_NAME_LABEL]) &&
                        namespaces.has(peer.namespaceSelector.matchLabels[NAMESPACE_NAME_LABEL]),
                      `${where}: a source that is not one of our namespaces by name`,
                    ),
              ),
            ];
          }),
        ];
      }),
  },
  {
    name: 'where egress is restricted, every namespace of ours denies egress and reaches DNS, every connection allowed in is allowed out, and only declared destinations open public addresses',
    check: (all) =>
      all.flatMap((s) => {
        const provider = s.platform.services.find(isNetworkPolicyProvider);
        if (!provider?.egressRestriction) return [];
        const policies = manifestsOf(s.env)
          .filter(({ manifest }) => manifest.kind === 'NetworkPolicy')
          .map(({ path, manifest }) => ({ where: `${s.env.environment}/${path}`, policy: manifest }));
        const egress = (namespace: string) => policies.filter(({ policy }) => policy.metadata.namespace === namespace && policy.spec.policyTypes.includes('Egress')).map(({ policy }) => policy);
        const owners = new Map(s.platform.services.map((service) => [service.namespaceName, service]));
        const dns = JSON.stringify({ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: CLUSTER_DNS.namespace } }, podSelector: { matchLabels: CLUSTER_DNS.podSelector } });
        const reachesDns = (p: Manifest) =>
          Object.keys(p.spec.podSelector).length === 0 &&
          p.spec.egress?.some((rule: any) => rule.to?.some((to: any) => JSON.stringify(to) === dns) && ['UDP', 'TCP'].every((protocol) => rule.ports?.some((port: any) => port.port === 53 && port.protocol === protocol)));
        return [
          ...[...owners].flatMap(([namespace, service]) => {
            const here = egress(namespace);
            const where = `${s.env.environment}/${service.serviceName}`;
            return [
              ...problems(here.filter((p) => p.metadata.name === DEFAULT_DENY_EGRESS && JSON.stringify(p.spec) === JSON.stringify({ podSelector: {}, policyTypes: ['Egress'] })).length === 1, `${where}: no default deny of egress`),
              ...problems(here.some((p) => p.metadata.name === EGRESS_DNS && reachesDns(p)), `${where}: its pods cannot reach the cluster DNS`),
            ];
          }),
          // The mirror of every ingress rule whose source is one of our namespaces.
          ...policies.flatMap(({ where, policy }) => {
            if (!policy.spec.policyTypes.includes('Ingress') || !policy.spec.ingress?.length) return [];
            return (policy.spec.ingress[0].from ?? []).flatMap((source: any) => {
              const from = source.namespaceSelector?.matchLabels?.[NAMESPACE_NAME_LABEL];
              if (!from || !owners.has(from)) return [];
              const destination = JSON.stringify({ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: policy.metadata.namespace } }, podSelector: policy.spec.podSelector });
              const ports = JSON.stringify(policy.spec.ingress[0].ports);
              const senders = JSON.stringify(source.podSelector ?? {});
              const mirrored = egress(from).some(
                (p) =>
                  (Object.keys(p.spec.podSelector).length === 0 || JSON.stringify(p.spec.podSelector) === senders) &&
                  p.spec.egress?.some((rule: any) => rule.to?.some((to: any) => JSON.stringify(to) === destination) && JSON.stringify(rule.ports) === ports),
              );
              return problems(mirrored, `${where}: ${from} is allowed in but no egress rule of ${from} lets it out`);
            });
          }),
          // 0.0.0.0/0 only where a service declared a destination outside the cluster, the API server or the nodes.
          ...policies.flatMap(({ where, policy }) => {
            const open = (policy.spec.egress ?? []).some((rule: any) => rule.to?.some((to: any) => to.ipBlock?.cidr === '0.0.0.0/0'));
            if (!open) return [];
            const owner = owners.get(policy.metadata.namespace!);
            const declared = owner?.egress.find((e) => `${EGRESS_PREFIX}${e.name}` === policy.metadata.name);
            const allowed =
              declared !== undefined &&
              (declared.to.kind === 'repositories' ||
                (declared.to.kind === 'external' && declared.to.destinations.some((d) => d.to === 'internet')) ||
                (declared.to.kind === 'api-server' && provider.apiServerSources.includes('0.0.0.0/0')) ||
                (declared.to.kind === 'nodes' && provider.egressRestriction!.nodeNetworks.includes('0.0.0.0/0')));
            return problems(allowed, `${where}: opens 0.0.0.0/0 without a declared internet destination`);
          }),
        ];
      }),
  },
];

/** Every invariant's violations, each line prefixed by the invariant it breaks. */
export function invariantViolations(all: readonly Synthesized[]): string[] {
  return INVARIANTS.flatMap((invariant) => invariant.check(all).map((problem) => `${invariant.name}: ${problem}`));
}

/** The policy lint's violations over the synthesized trees. */
export function lintViolations(all: readonly Synthesized[]): string[] {
  // The manifests are parsed once per environment for every invariant and the lint.
  const environments = new Map(all.map((s) => [s.env.environment, lintedObjects(s.env.environment, manifestsOf(s.env))]));
  return lintObjects(environments).violations.map(formatViolation);
}
