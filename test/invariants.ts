/**
 * Properties every synthesized output must have, whatever the config: each invariant returns
 * its violations as readable lines (`<env>/<file>: <problem>`), empty when it holds. The
 * invariants test runs them over the operator's homelab.yaml, the property tests over
 * generated configs. None of them knows which services or how many objects to expect.
 */
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { parse } from 'yaml';
import { APP_LINT_LABELS, appFilesConfigMap, appsEntry, FILES_HASH_ANNOTATION } from '../charts/custom-app';
import { CLOUDFLARE_PROXIED } from '../charts/external-dns';
import { traefikEntry } from '../charts/traefik';
import { CHARTS, KUSTOMIZATIONS, MANIFESTS } from '../charts/versions';
import { ARGOCD_CONTROL_KINDS, projectNames } from '../lib/model/argocd';
import { APP_NAMESPACES, settingsIn } from '../lib/model/catalog';
import { BACKUP_CREDENTIALS } from '../lib/model/backup';
import { vaultPath } from '../charts/vault-configurator';
import type { UpstreamFootprint } from '../lib/model/sources';
import { GPU_RESOURCE, isGpuProvider } from '../lib/model/gpu';
import { discoveredGpuLabels } from './support';
import { EXCEPTION_ANNOTATION } from '../lib/model/pod-security';
import { CLUSTER_DNS, isNetworkPolicyProvider } from '../lib/model/network';
import { KUBE_USER_AGENT } from '../lib/model/checkpoint';
import type { HomelabService } from '../lib/model/service';
import { Layer } from '../lib/model/layers';
import { isTraceEmitter, isTraceReceiver } from '../lib/model/tracing';
import { isExposureRouter, isRouteFollower } from '../lib/model/exposure';
import { isOidcLoginService, isSingleSignOnProvider } from '../lib/model/single-sign-on';
import { apiGroup } from '../lib/model/needs';
import { EGRESS_PREFIX, NAMESPACE_BASELINE, NAMESPACE_NAME_LABEL } from '../lib/passes/network-policies';
import { isClusterScoped, scopedKindName } from '../lib/output/cluster-scoped';
import { GENERATED_HEADER } from '../lib/output/output-guard';
import { formatViolation, lintObjects } from '../lib/tools/lint/lint';
import { lintedObjects } from '../lib/tools/lint/tree';
import { selects } from '../lib/tools/lint/workloads';
import { helmValuesErrors } from '../lib/tools/validate/helm-values';
import { ManifestValidator } from '../lib/tools/validate/manifest-validator';
import { KUBERNETES_VERSION } from '../lib/model/kubernetes';
import { containersOf, podSpecOf } from '../lib/model/workloads';
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

/** Every Application the root syncs: one per service, plus the one creating the apps' Namespaces. */
const allChildren = (s: Synthesized) =>
  manifestsOf(s.env)
    .filter(({ path, manifest }) => path.startsWith('apps/') && manifest.kind === 'Application')
    .map(({ manifest }) => manifest);

/** The services' Applications. */
const applications = (s: Synthesized) => allChildren(s).filter((app) => app.metadata.name !== APP_NAMESPACES);

/** The footprint a child Application's upstream source declares (charts/versions.ts), undefined for our own manifests. */
function footprintOfSource(source: any): UpstreamFootprint | undefined {
  if (source.chart) return Object.values(CHARTS).find((c) => c.chart === source.chart && c.version === source.targetRevision)?.footprint ?? NO_FOOTPRINT;
  if (source.path?.startsWith('k8s/')) return undefined;
  const git = [...Object.values(KUSTOMIZATIONS), ...Object.values(MANIFESTS)].find((g) => g.repoURL === source.repoURL && g.path === source.path && g.revision === source.targetRevision);
  return git?.footprint ?? NO_FOOTPRINT;
}

/** Stands for an unknown source: admits nothing, so the invariant reports what it deploys. */
const NO_FOOTPRINT: UpstreamFootprint = { clusterScoped: [], namespaces: [] };

/** What a child Application deploys: its destination, every object in its folder, its sources' footprints. */
function deployedBy(s: Synthesized, app: Manifest): { clusterScoped: string[]; namespaces: string[] } {
  const sources = sourcesOf(app);
  const folder = sources.find((source) => source.path?.startsWith('k8s/'))?.path.split('/').slice(2).join('/');
  const objects = manifestsOf(s.env).filter(({ path }) => path.startsWith(`${folder}/`)).map(({ manifest }) => manifest);
  const footprints = sources.map(footprintOfSource).filter((f): f is UpstreamFootprint => f !== undefined);
  const clusterScoped = new Set(footprints.flatMap((f) => f.clusterScoped));
  const namespaces = new Set([app.spec.destination.namespace, ...footprints.flatMap((f) => f.namespaces)]);
  for (const o of objects) {
    if (isClusterScoped(o.apiVersion, o.kind)) clusterScoped.add(scopedKindName(o.apiVersion, o.kind));
    else namespaces.add(o.metadata.namespace ?? app.spec.destination.namespace);
  }
  return { clusterScoped: [...clusterScoped].sort(), namespaces: [...namespaces].sort() };
}

const groupKindName = (entry: { group: string; kind: string }) => (entry.group ? `${entry.kind}.${entry.group}` : entry.kind);

const sourcesOf = (app: Manifest): any[] => app.spec.sources ?? [app.spec.source];

const ownerOf = (s: Synthesized, path: string): HomelabService | undefined => s.platform.services.find((service) => service.serviceName === path.split('/')[0]);


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
    // ADR 31: a synth renders each object once and reuses the manifest while the metadata stays;
    // a pass that changed an object's body afterwards would leave a stale manifest in k8s/.
    name: 'every manifest a synth reused is what a fresh render of its object gives',
    check: (all) =>
      all.flatMap((s) =>
        s.platform.services.flatMap((service) =>
          service.apiObjects.flatMap((object) =>
            problems(
              JSON.stringify(service.render(object)) === JSON.stringify(service.render(object, { fresh: true })),
              `${s.env.environment}/${service.serviceName}: ${object.kind} ${object.name} changed after it was rendered`,
            ),
          ),
        ),
      ),
  },
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
    name: 'no check may create pods, or workloads that make them, in a namespace whose Pod Security level is privileged or baseline',
    check: (all) => all.flatMap(checkPodCreationViolations),
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
                    // Pod Security restricted: drop ALL, add back NET_BIND_SERVICE at most.
                    capabilities: JSON.stringify(sc.capabilities?.drop) === '["ALL"]' && (sc.capabilities?.add ?? []).every((c: string) => c === 'NET_BIND_SERVICE'),
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
    name: 'every shell script of a container with a read-only root filesystem writes (redirects, tee) only into its writable volumes',
    check: (all) =>
      documents(all).flatMap(({ manifest, where }) =>
        podTemplates(manifest).flatMap(({ part, pod }) =>
          containersOf(pod).flatMap((container) => scriptWriteViolations(container).map((problem) => `${where}${part ? ` ${part}` : ''} ${container.name}: ${problem}`)),
        ),
      ),
  },
  {
    name: 'every script of our hook Jobs requires each number from its env that it compares with, and reads only what its env or itself sets',
    check: (all) => hookJobContainerProblems(all, envCountViolations),
  },
  {
    name: 'every call the scripts of our hook Jobs make over the network has a time limit: curl a --max-time, psql a connect timeout, the Vault CLI a client timeout, n8n\'s CLI within',
    check: (all) => hookJobContainerProblems(all, unboundedCalls),
  },
  {
    name: 'every script of our hook Jobs that reads the API server gets its compact JSON: no call names its own user agent or asks for pretty output',
    check: (all) => hookJobContainerProblems(all, prettyApiAnswers),
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
    name: 'every checkpoint-style Job mounts an API token only into its probe container, never through the automount that reaches every container',
    check: (all) =>
      documents(all)
        .filter(({ manifest }) => manifest.kind === 'Job' && manifest.metadata.labels?.['app.kubernetes.io/component'] === 'checkpoint')
        .flatMap(({ manifest, where }) => {
          const pod = manifest.spec.template.spec;
          const tokenVolumes = new Set((pod.volumes ?? []).filter((v: any) => v.projected?.sources?.some((source: any) => source.serviceAccountToken)).map((v: any) => v.name));
          return [
            ...problems(pod.automountServiceAccountToken === false, `${where}: its pod automounts the account's token`),
            ...pod.containers.flatMap((c: any) =>
              problems(c.name === 'checkpoint' || !(c.volumeMounts ?? []).some((m: any) => tokenVolumes.has(m.name)), `${where}: container ${c.name} mounts the API token`),
            ),
            ...problems(tokenVolumes.size === 0 || pod.serviceAccountName !== undefined, `${where}: a token volume without an account of its own`),
          ];
        }),
  },
  {
    name: "no Job's pods can be taken for a service's: no Service or affinity rule selects them, and they carry no service's name",
    check: (all) =>
      all.flatMap((s) => {
        const docs = manifestsOf(s.env);
        const affinitySelectors = (pod: any): Record<string, string>[] =>
          ['podAffinity', 'podAntiAffinity'].flatMap((kind) => [
            ...(pod.affinity?.[kind]?.requiredDuringSchedulingIgnoredDuringExecution ?? []).map((term: any) => term.labelSelector?.matchLabels),
            ...(pod.affinity?.[kind]?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((term: any) => term.podAffinityTerm?.labelSelector?.matchLabels),
          ]);
        const selectors = docs.flatMap(({ path, manifest }) => [
          ...(manifest.kind === 'Service' ? [{ path, namespace: manifest.metadata.namespace, selector: manifest.spec.selector }] : []),
          ...podTemplates(manifest).flatMap(({ pod }) => affinitySelectors(pod).map((selector) => ({ path, namespace: manifest.metadata.namespace, selector }))),
        ]);
        const serviceNames = new Set(s.platform.services.map((service) => service.serviceName));
        return docs
          .filter(({ manifest }) => manifest.kind === 'Job')
          .flatMap(({ path, manifest }) => {
            const labels: Record<string, string> = manifest.spec.template.metadata?.labels ?? {};
            const where = `${s.env.environment}/${path}`;
            return [
              ...selectors
                .filter((candidate) => candidate.namespace === manifest.metadata.namespace && selects(candidate.selector, labels))
                .map((candidate) => `${where}: its pods are selected by ${s.env.environment}/${candidate.path}`),
              ...problems(!serviceNames.has(labels['app.kubernetes.io/name']), `${where}: its pods are named ${labels['app.kubernetes.io/name']}, as a service is`),
            ];
          });
      }),
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
            // The nodes as the cluster labels them: the inventory's labels and what GPU discovery adds.
            const admitted = nodes.filter(([name, node]) => admits(pod, name, { ...node.labels, ...discoveredGpuLabels(node) })).map(([name]) => name);
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
    name: 'everything an Application needs to become Healthy comes from itself or an Application of an earlier wave',
    // Re-derived from the manifests as written (a synth's kept manifests are what its files read back as: test/yaml-emitter.test.ts) and, for what synth does not render, the services' declarations, independently of lib/passes/needs.ts.
    check: (all) => all.flatMap((s) => needViolations(s)),
  },
  {
    name: 'with waves: dependencies, only the services that need one awaiting the operator (Vault) sync after it',
    check: (all) =>
      all
        .filter((s) => s.config.waves === 'dependencies')
        .flatMap((s) => {
          const byName = new Map(s.env.services.map((service) => [service.name, service]));
          const needs = (name: string, gate: string): boolean => byName.get(name)!.dependsOn.some((d) => d === gate || needs(d, gate));
          return s.platform.services
            .filter((gate) => gate.awaitsOperator !== undefined)
            .flatMap((gate) =>
              s.env.services
                .filter((service) => service.wave > byName.get(gate.serviceName)!.wave && !needs(service.name, gate.serviceName))
                .map((service) => `${s.env.environment}/${service.name}: wave ${service.wave} waits for ${gate.serviceName} (wave ${byName.get(gate.serviceName)!.wave}) without needing it`),
            );
        }),
  },
  {
    name: "each child's project comes first and admits exactly what its Applications deploy (folders and declared upstream footprints), never `*` nor Argo CD's own kinds; the apps' project no cluster-scoped kind",
    check: (all) =>
      all.flatMap((s) => {
        const where = s.env.environment;
        const names = projectNames(where);
        const projects = new Map(
          manifestsOf(s.env)
            .filter(({ path, manifest }) => path.startsWith('apps/') && manifest.kind === 'AppProject')
            .map(({ manifest }) => [manifest.metadata.name, manifest]),
        );
        const children = allChildren(s);
        const tenants = new Set(s.platform.services.filter((service) => service.tenant).map((service) => service.serviceName));
        const expectedProject = (app: Manifest) => (tenants.has(app.metadata.name) ? names.apps : names.platform);
        const firstWave = Math.min(...children.map((app) => Number(app.metadata.annotations?.[WAVE])));
        return [
          ...problems(
            isDeepStrictEqual([...projects.keys()].sort(), [names.platform, ...(tenants.size > 0 ? [names.apps] : [])].sort()),
            `${where}: projects ${[...projects.keys()].join(', ')}`,
          ),
          ...children.flatMap((app) => problems(app.spec.project === expectedProject(app), `${where}/${app.metadata.name}: in project ${app.spec.project}, expected ${expectedProject(app)}`)),
          ...[...projects].flatMap(([name, project]) => {
            const members = children.filter((app) => app.spec.project === name);
            const deployed = members.map((app) => deployedBy(s, app));
            const namespaces = [...new Set(deployed.flatMap((d) => d.namespaces))].sort();
            const kinds = [...new Set(deployed.flatMap((d) => d.clusterScoped))].sort();
            const repos = [...new Set(members.flatMap((app) => sourcesOf(app).map((source) => source.repoURL)))].sort();
            const whitelist = (project.spec.clusterResourceWhitelist ?? []).map(groupKindName).sort();
            const blacklist = (project.spec.namespaceResourceBlacklist ?? []).filter((e: any) => e.group === 'argoproj.io').map((e: any) => e.kind);
            const entries = [...(project.spec.clusterResourceWhitelist ?? []), ...(project.spec.namespaceResourceWhitelist ?? []), ...project.spec.destinations];
            const at = `${where}/${name}`;
            return [
              ...problems(Number(project.metadata.annotations?.[WAVE]) < firstWave, `${at}: not before every Application`),
              ...problems(isDeepStrictEqual(repos, [...project.spec.sourceRepos].sort()), `${at}: sources ${project.spec.sourceRepos.join(', ')}, its Applications use ${repos.join(', ')}`),
              ...problems(isDeepStrictEqual(namespaces, project.spec.destinations.map((d: any) => d.namespace).sort()), `${at}: destinations are not the namespaces its Applications deploy to (${namespaces.join(', ')})`),
              ...problems(isDeepStrictEqual(kinds, whitelist), `${at}: whitelists ${whitelist.join(', ') || 'nothing'}, its Applications deploy ${kinds.join(', ') || 'nothing'} cluster-scoped`),
              ...problems(!entries.some((e: any) => [e.group, e.kind, e.namespace, e.server].includes('*')), `${at}: admits "*"`),
              ...problems(project.spec.namespaceResourceWhitelist === undefined, `${at}: a namespaced whitelist`),
              ...ARGOCD_CONTROL_KINDS.flatMap((kind) => problems(blacklist.includes(kind), `${at}: does not deny ${kind}`)),
              ...problems(name !== names.apps || whitelist.length === 0, `${at}: the apps' project whitelists cluster-scoped kinds`),
            ];
          }),
        ];
      }),
  },
  {
    name: "the operator's apps get their Namespaces (kept on prune and deletion) from a platform Application that syncs before them, and emit none themselves",
    check: (all) =>
      all.flatMap((s) => {
        const where = s.env.environment;
        const tenants = s.platform.services.filter((service) => service.tenant);
        const creator = allChildren(s).find((app) => app.metadata.name === APP_NAMESPACES);
        const created = manifestsOf(s.env).filter(({ path }) => path.startsWith(`${APP_NAMESPACES}/`));
        if (tenants.length === 0) return [...problems(!creator && created.length === 0, `${where}: ${APP_NAMESPACES} without apps`)];
        if (!creator) return [`${where}: no ${APP_NAMESPACES} Application`];
        const wave = Number(creator.metadata.annotations?.[WAVE]);
        return [
          ...problems(
            isDeepStrictEqual(created.map(({ manifest }) => `${manifest.kind}/${manifest.metadata.name}`).sort(), tenants.map((t) => `Namespace/${t.namespaceName}`).sort()),
            `${where}/${APP_NAMESPACES}: holds ${created.map(({ path }) => path).join(', ')}`,
          ),
          ...created.flatMap(({ path, manifest }) =>
            ['Prune=false', 'Delete=false'].flatMap((option) => problems((manifest.metadata.annotations?.[SYNC_OPTIONS] ?? '').split(',').includes(option), `${where}/${path}: no ${option}`)),
          ),
          ...problems(creator.metadata.finalizers === undefined, `${where}/${APP_NAMESPACES}: a finalizer would delete the apps' namespaces with it`),
          ...tenants.flatMap((tenant) => {
            const app = applications(s).find((a) => a.metadata.name === tenant.serviceName);
            return [
              ...problems(app !== undefined && Number(app.metadata.annotations?.[WAVE]) > wave, `${where}/${tenant.serviceName}: syncs before its Namespace`),
              ...problems(
                !manifestsOf(s.env).some(({ path, manifest }) => path.startsWith(`${tenant.serviceName}/`) && manifest.kind === 'Namespace'),
                `${where}/${tenant.serviceName}: emits a Namespace`,
              ),
            ];
          }),
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
    name: "the root Application of each environment syncs its apps/ folder without prune or finalizer, with a bounded retry, in its own project (in bootstrap/) that admits only Applications and AppProjects in Argo CD's namespace",
    check: (all) =>
      all.flatMap((s) => {
        const where = s.env.environment;
        const bootstrap = manifestsOf(s.env).filter(({ path }) => path.startsWith('bootstrap/'));
        const roots = bootstrap.filter(({ manifest }) => manifest.kind === 'Application');
        if (roots.length !== 1) return [`${where}: ${roots.length} root Applications`];
        const root = roots[0].manifest;
        const project = bootstrap.find(({ manifest }) => manifest.kind === 'AppProject' && manifest.metadata.name === root.spec.project)?.manifest;
        if (!project) return [`${where}: the root's project ${root.spec.project} is not in bootstrap/`];
        const retry = root.spec.syncPolicy.retry;
        const admitted = (o: Manifest) => o.apiVersion.startsWith('argoproj.io/') && ['Application', 'AppProject'].includes(o.kind) && o.metadata.namespace === 'argocd';
        return [
          ...problems(root.spec.project === projectNames(where).root, `${where}: the root is in project ${root.spec.project}`),
          ...problems(root.metadata.finalizers === undefined, `${where}: the root has a finalizer`),
          ...problems(root.spec.source.path === `k8s/${where}/apps`, `${where}: the root syncs ${root.spec.source.path}`),
          ...problems((root.spec.syncPolicy.automated?.prune ?? false) === false, `${where}: the root prunes`),
          ...problems((root.spec.syncPolicy.automated !== undefined) === (s.config.sync.mode === 'automated'), `${where}: the root's automation is not the configured one`),
          ...problems(retry?.limit === s.config.sync.retry.limit && retry.limit > 0 && Boolean(retry.backoff?.maxDuration), `${where}: the root has no bounded retry`),
          ...problems(isDeepStrictEqual(project.spec.sourceRepos, [root.spec.source.repoURL]), `${where}: the root's project admits sources ${project.spec.sourceRepos.join(', ')}`),
          ...problems(isDeepStrictEqual(project.spec.destinations, [{ namespace: 'argocd', server: root.spec.destination.server }]), `${where}: the root's project admits other destinations`),
          ...problems((project.spec.clusterResourceWhitelist ?? []).length === 0, `${where}: the root's project admits cluster-scoped kinds`),
          ...problems(
            isDeepStrictEqual((project.spec.namespaceResourceWhitelist ?? []).map(groupKindName).sort(), ['AppProject.argoproj.io', 'Application.argoproj.io']),
            `${where}: the root's project admits more than Applications and AppProjects`,
          ),
          ...manifestsOf(s.env)
            .filter(({ path }) => path.startsWith('apps/'))
            .flatMap(({ path, manifest }) => problems(admitted(manifest), `${where}/${path}: the root's project does not admit it`)),
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
              ...problems(
                here.filter(
                  (p) =>
                    p.metadata.name === NAMESPACE_BASELINE &&
                    JSON.stringify(p.spec.podSelector) === '{}' &&
                    p.spec.policyTypes.includes('Ingress') &&
                    JSON.stringify(p.spec.ingress) === JSON.stringify([{ from: [{ podSelector: {} }] }]),
                ).length === 1,
                `${where}: no baseline policy denying ingress except from its own pods`,
              ),
            ];
          }),
          ...policies.flatMap(({ path, manifest }) => {
            const where = `${s.env.environment}/${path}`;
            const name = manifest.metadata.name;
            if (name === NAMESPACE_BASELINE || !manifest.spec.policyTypes.includes('Ingress')) return [];
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
              ...problems(
                here.filter((p) => p.metadata.name === NAMESPACE_BASELINE && JSON.stringify(p.spec.podSelector) === '{}' && JSON.stringify(p.spec.egress?.[0]) === JSON.stringify({ to: [{ podSelector: {} }] }))
                  .length === 1,
                `${where}: no baseline policy denying egress except to its own pods`,
              ),
              ...problems(here.some((p) => p.metadata.name === NAMESPACE_BASELINE && reachesDns(p)), `${where}: its pods cannot reach the cluster DNS`),
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
                declared.to.kind === 'routed-host' ||
                (declared.to.kind === 'external' && declared.to.destinations.some((d) => d.to === 'internet')) ||
                (declared.to.kind === 'api-server' && provider.apiServerSources.includes('0.0.0.0/0')) ||
                (declared.to.kind === 'nodes' && provider.egressRestriction!.nodeNetworks.includes('0.0.0.0/0')));
            return problems(allowed, `${where}: opens 0.0.0.0/0 without a declared internet destination`);
          }),
        ];
      }),
  },
  {
    name: "where there is a trace receiver, every declared trace emission names its endpoint in the emitter's files, and NetworkPolicies let exactly those pods in on its OTLP port",
    check: (all) =>
      all.flatMap((s) => {
        const receiver = s.platform.services.find(isTraceReceiver);
        if (!receiver) return [];
        const files = [...s.env.files];
        const policies = manifestsOf(s.env).filter(({ manifest }) => manifest.kind === 'NetworkPolicy' && manifest.metadata.namespace === receiver.namespaceName);
        const policed = s.platform.services.some(isNetworkPolicyProvider);
        return s.platform.services.filter(isTraceEmitter).flatMap((emitter) =>
          emitter.traceEmissions.flatMap((emission) => {
            const where = `${s.env.environment}/${emitter.serviceName} (${emission.name})`;
            const endpoint = receiver.otlpEndpoints[emission.protocol];
            // Its own folder, its Application's values, or (Argo CD) the bootstrap values.
            const named = files.some(([path, text]) => (path.startsWith(`${emitter.serviceName}/`) || path === `apps/application-${emitter.serviceName}.yaml` || path.startsWith('bootstrap/')) && text.includes(endpoint));
            const admitted =
              !policed ||
              emitter.namespaceName === receiver.namespaceName ||
              policies.some(({ manifest }) =>
                (manifest.spec.ingress ?? []).some(
                  (rule: any) =>
                    rule.ports?.some((port: any) => port.port === receiver.otlpPorts[emission.protocol]) &&
                    rule.from?.some((from: any) => from.namespaceSelector?.matchLabels?.[NAMESPACE_NAME_LABEL] === emitter.namespaceName && isDeepStrictEqual({ ...(from.podSelector?.matchLabels ?? {}) }, { ...emission.podSelector })),
                ),
              );
            return [...problems(named, `${where}: its files do not name the trace receiver's ${emission.protocol} endpoint ${endpoint}`), ...problems(admitted, `${where}: no NetworkPolicy of ${receiver.serviceName} lets its pods in`)];
          }),
        );
      }),
  },
  {
    name: 'where a single sign-on service runs, exactly the sso hosts and the admin hosts it protects get its forward-auth and a route of its own paths, and its blueprint declares a proxy provider for each',
    check: (all) => all.flatMap((s) => singleSignOnViolations(s)),
  },
  {
    name: 'where an allow-list is configured, every route of every admin host carries it, the single sign-on service\'s own paths on the host included',
    check: (all) => all.flatMap((s) => adminAllowListViolations(s)),
  },
  {
    name: "every Job that asks for the single sign-on issuer by its public name runs in an Application that syncs after everything on the issuer's path: the provider, the router and every route follower",
    check: (all) => all.flatMap((s) => issuerPathViolations(s)),
  },
  {
    name: 'where DNS records are derived, every routed host has exactly one, to the tunnel (a proxied CNAME) if the tunnel forwards it, never proxied behind an admin access control, and external-dns syncs after the router and the tunnel',
    check: (all) => all.flatMap((s) => dnsRecordViolations(s)),
  },
  {
    name: "every own app's Deployment has a readiness probe on one of its container ports, or is labelled as saying why it has none",
    check: (all) =>
      all.flatMap((s) =>
        manifestsOf(s.env)
          .filter(({ manifest }) => manifest.kind === 'Deployment' && manifest.metadata.labels?.['app.kubernetes.io/component'] === 'app' && manifest.metadata.labels?.['app.kubernetes.io/managed-by'] === 'homelab-platform')
          .flatMap(({ path, manifest }) => {
            const where = `${s.env.environment}/${path}`;
            const [container] = manifest.spec.template.spec.containers;
            if (manifest.metadata.labels?.[APP_LINT_LABELS.probes] === 'none') return problems(!container.readinessProbe && !container.livenessProbe, `${where}: labelled without probes, but has one`);
            const ports = new Set((container.ports ?? []).map((p: any) => p.containerPort));
            const probes = ['readinessProbe', 'livenessProbe', 'startupProbe'].filter((kind) => container[kind]);
            return [
              ...problems(container.readinessProbe !== undefined, `${where}: no readiness probe`),
              ...problems((manifest.metadata.labels?.[APP_LINT_LABELS.liveness] === 'none') === !container.livenessProbe, `${where}: the liveness label does not match its liveness probe`),
              ...probes.flatMap((kind) => {
                const port = container[kind].httpGet?.port ?? container[kind].tcpSocket?.port;
                return problems(port === undefined || ports.has(port), `${where}: ${kind} on port ${port}, not a container port`);
              }),
            ];
          }),
      ),
  },
  {
    name: "an own app's files come from its ConfigMap, and its pods carry the hash of exactly that ConfigMap's data",
    check: (all) =>
      all.flatMap((s) => {
        const docs = manifestsOf(s.env);
        return docs
          .filter(({ manifest }) => manifest.kind === 'Deployment' && manifest.spec.template.metadata.annotations?.[FILES_HASH_ANNOTATION])
          .flatMap(({ path, manifest }) => {
            const where = `${s.env.environment}/${path}`;
            const name = appFilesConfigMap(manifest.metadata.name);
            const data: Record<string, string> | undefined = docs.find(({ manifest: m }) => m.kind === 'ConfigMap' && m.metadata.namespace === manifest.metadata.namespace && m.metadata.name === name)?.manifest.data;
            if (!data) return [`${where}: no ConfigMap ${name} with data`];
            const hash = createHash('sha256');
            for (const key of Object.keys(data).sort()) hash.update(`${key}\0${data[key]}\0`);
            const volume = manifest.spec.template.spec.volumes.find((v: any) => v.configMap?.name === name);
            const mounted = manifest.spec.template.spec.containers[0].volumeMounts.filter((m: any) => m.name === volume?.name).map((m: any) => m.subPath).sort();
            return [
              ...problems(manifest.spec.template.metadata.annotations[FILES_HASH_ANNOTATION] === hash.digest('hex'), `${where}: the files hash is not that of ${name}'s data`),
              ...problems(isDeepStrictEqual(mounted, Object.keys(data).sort()), `${where}: mounts ${mounted.join(', ')} of ${name}, which holds ${Object.keys(data).join(', ')}`),
            ];
          });
      }),
  },
  {
    name: 'every exposed own app is checked end to end through Traefik, as its protection says (one scaled to zero is routed, and not checked)',
    check: (all) =>
      all.flatMap((s) =>
        s.platform.services.flatMap((service) => {
          const apps = settingsIn(s.config, appsEntry);
          const app = apps[service.serviceName]?.enabled ? apps[service.serviceName] : undefined;
          const expose = app?.expose;
          if (!expose) return [];
          const check = service.endToEndChecks.find((c) => c.job === `${service.serviceName}-ui`);
          const where = `${s.env.environment}/${service.serviceName}`;
          if (app.replicas === 0) {
            return [
              ...problems(check === undefined, `${where}: scaled to zero, yet its UI is checked`),
              ...problems(service.exposures.some((e) => e.admin === (expose.protection === 'admin')), `${where}: not exposed as ${expose.protection}`),
            ];
          }
          return [
            ...problems(check?.check.env?.PROTECTION === expose.protection, `${where}: no end-to-end check of its ${expose.protection} UI`),
            ...problems(s.env.files.has(`verification/job-${service.serviceName}-${service.serviceName}-ui.yaml`), `${where}: the verification does not run its UI check`),
            ...problems(service.exposures.some((e) => e.admin === (expose.protection === 'admin')), `${where}: not exposed as ${expose.protection}`),
          ];
        }),
      ),
  },
  {
    name: "the backup target's keys reach exactly the namespaces of the services that declare backups there, and every declared backup lies under the environment's one target",
    check: (all) =>
      all.flatMap((s) => {
        const env = s.env.environment;
        const target = s.platform.backupTarget;
        const root = target && `s3://${target.bucket}/${target.prefix ? `${target.prefix}/` : ''}`;
        const readers = manifestsOf(s.env)
          .filter(({ manifest }) => manifest.kind === 'ExternalSecret' && (manifest.spec.data ?? []).some((d: any) => d.remoteRef?.key === vaultPath(BACKUP_CREDENTIALS)))
          .map(({ path, manifest }) => ({ path, namespace: manifest.metadata.namespace as string }));
        const writers = new Set(s.platform.services.filter((service) => service.recoveries.length > 0).map((service) => service.namespaceName));
        return [
          ...readers.filter((reader) => !writers.has(reader.namespace)).map((reader) => `${env}/${reader.path}: delivers the backup target's keys into ${reader.namespace}, where no service declares a backup`),
          ...s.platform.services.flatMap((service) =>
            service.recoveries.flatMap((recovery) =>
              problems(root !== undefined && recovery.target.startsWith(root), `${env}/${service.serviceName}: its backups go to ${recovery.target}, not under the backup target ${target?.url ?? '(none)'}`),
            ),
          ),
          ...s.platform.services.flatMap((service) =>
            service.secretNeeds
              .filter((need) => need.template?.inputs.some((input) => input.from === BACKUP_CREDENTIALS))
              .flatMap((need) => problems(!need.neededToStart, `${env}/${need.namespace}/${need.name}: the backup target's keys hold ${service.serviceName} back until Vault delivers them`)),
          ),
        ];
      }),
  },
  {
    name: "every restore in the runbook is tested: its restore check is a Job of the end-to-end verification in the namespace it names, and every Job its check starts from a CronJob has that CronJob there (ours, or the one longhorn-manager runs for a RecurringJob)",
    check: (all) =>
      all.flatMap((s) => {
        const env = s.env.environment;
        const objects = manifestsOf(s.env);
        const verification = s.platform.services.find((service) => service.layer === Layer.VERIFICATION);
        const key = (manifest: Manifest) => `${manifest.metadata.namespace}/${manifest.metadata.name}`;
        const verificationJobs = new Set(
          objects.filter(({ path, manifest }) => verification !== undefined && path.startsWith(`${verification.serviceName}/`) && manifest.kind === 'Job').map(({ manifest }) => key(manifest)),
        );
        const cronJobs = new Set(
          objects.filter(({ manifest }) => manifest.kind === 'CronJob' || (manifest.kind === 'RecurringJob' && manifest.apiVersion.startsWith('longhorn.io/'))).map(({ manifest }) => key(manifest)),
        );
        return s.platform.services.flatMap((service) =>
          service.recoveries.flatMap((recovery) => {
            const { namespace, job } = recovery.restoreCheck;
            const started = recovery.check.flatMap((line) => [...line.matchAll(/kubectl -n (\S+) create job --from=cronjob\/(\S+)/g)].map((m) => `${m[1]}/${m[2]}`));
            return [
              ...problems(verificationJobs.has(`${namespace}/${job}`), `${env}/${service.serviceName}: "${recovery.data}" names the restore check ${namespace}/${job}, which the verification does not run`),
              ...problems(recovery.check.length > 0, `${env}/${service.serviceName}: "${recovery.data}" has no check in the runbook`),
              ...started.flatMap((cronJob) => problems(cronJobs.has(cronJob), `${env}/${service.serviceName}: the runbook's check starts a Job from CronJob ${cronJob}, which is not there`)),
            ];
          }),
        );
      }),
  },
  {
    name: 'a database is archived exactly where the environment has a backup target: every Cluster with a WAL archiver names an ObjectStore of its namespace under the target, has a ScheduledBackup through that plugin, a recovery in the runbook and a restore check onto a class whose volumes go with it and are never backed up; without a target none has',
    check: (all) =>
      all.flatMap((s) => {
        const env = s.env.environment;
        const target = s.platform.backupTarget;
        const manifests = manifestsOf(s.env).filter(({ path }) => !path.startsWith('apps/') && !path.startsWith('bootstrap/'));
        const ofKind = (kind: string) => manifests.filter(({ manifest }) => manifest.kind === kind);
        const clusters = ofKind('Cluster').filter(({ manifest }) => manifest.apiVersion.startsWith('postgresql.cnpg.io/'));
        return clusters.flatMap(({ path, manifest: cluster }) => {
          const where = `${env}/${path}`;
          const namespace = cluster.metadata.namespace;
          const archivers = (cluster.spec.plugins ?? []).filter((plugin: any) => plugin.isWALArchiver);
          if (!target) return problems(archivers.length === 0 && ofKind('ObjectStore').length === 0 && ofKind('ScheduledBackup').length === 0, `${where}: archived, but the environment has no backup target`);
          const store = ofKind('ObjectStore').find(({ manifest }) => manifest.metadata.namespace === namespace && manifest.metadata.name === archivers[0]?.parameters?.barmanObjectName)?.manifest;
          const scheduled = ofKind('ScheduledBackup').filter(
            ({ manifest }) => manifest.metadata.namespace === namespace && manifest.spec.cluster.name === cluster.metadata.name && manifest.spec.method === 'plugin' && manifest.spec.pluginConfiguration?.name === archivers[0]?.name,
          );
          const owner = s.platform.services.find((service) => service.namespaceName === namespace && service.recoveries.some((r) => r.stage === 'databases' && r.data.includes(`${namespace}/${cluster.metadata.name}`)));
          return [
            ...problems(archivers.length === 1, `${where}: ${archivers.length} WAL archivers where the environment has a backup target (expected exactly one)`),
            ...problems(store !== undefined, `${where}: its archiver names no ObjectStore of namespace ${namespace}`),
            ...problems(store === undefined || store.spec.configuration.destinationPath.startsWith(`s3://${target.bucket}/${target.prefix ? `${target.prefix}/` : ''}`), `${where}: archived outside the backup target ${target.url}`),
            ...problems(store === undefined || store.spec.configuration.endpointURL === target.endpoint, `${where}: its ObjectStore's endpoint is not the backup target's`),
            ...problems(scheduled.length === 1, `${where}: ${scheduled.length} ScheduledBackups through its archiver (expected one)`),
            ...problems(owner !== undefined, `${where}: no recovery of it in the runbook`),
            ...problems(owner === undefined || s.env.files.has(`verification/job-${owner.serviceName}-${cluster.metadata.name}-restore.yaml`), `${where}: the verification does not restore it`),
            ...(owner === undefined ? [] : scratchClassViolations(where, manifests.find(({ path: p }) => p === `verification/job-${owner.serviceName}-${cluster.metadata.name}-restore.yaml`)?.manifest, ofKind('StorageClass'))),
          ];
        });
      }),
  },
];

/** The resources whose `create` makes pods: pods and every workload of the built-in API groups. */
const POD_MAKERS: readonly (readonly [group: string, resource: string])[] = [
  ['', 'pods'],
  ['', 'replicationcontrollers'],
  ['apps', 'deployments'],
  ['apps', 'replicasets'],
  ['apps', 'statefulsets'],
  ['apps', 'daemonsets'],
  ['batch', 'jobs'],
  ['batch', 'cronjobs'],
];

/**
 * Where the ServiceAccount of a check (a checkpoint-style Job) may create pods although admission
 * would take one that is not restricted: a Role (or ClusterRole) bound in a namespace whose
 * `enforce` label is not `restricted` (none is `privileged`, Pod Security's default), or a
 * ClusterRole bound cluster-wide, which reaches every namespace. A token that may send a
 * privileged pod to any node is close to root on it.
 */
function checkPodCreationViolations(s: Synthesized): string[] {
  const docs = manifestsOf(s.env);
  const objects = docs.map(({ manifest }) => manifest);
  const levels = new Map(objects.filter((o) => o.kind === 'Namespace').map((o) => [o.metadata.name, o.metadata.labels?.[ENFORCE] ?? 'privileged']));
  const accounts = new Set(
    objects
      .filter((o) => o.kind === 'Job' && o.metadata.labels?.['app.kubernetes.io/component'] === 'checkpoint' && o.spec.template.spec.serviceAccountName)
      .map((o) => `${o.metadata.namespace}/${o.spec.template.spec.serviceAccountName}`),
  );
  const matches = (list: string[] | undefined, value: string) => (list ?? []).includes(value) || (list ?? []).includes('*');
  const makesPods = (rule: any) => matches(rule.verbs, 'create') && POD_MAKERS.some(([group, resource]) => matches(rule.apiGroups, group) && matches(rule.resources, resource));
  return docs
    .filter(({ manifest }) => manifest.kind === 'RoleBinding' || manifest.kind === 'ClusterRoleBinding')
    .flatMap(({ path, manifest: binding }) => {
      const checks = (binding.subjects ?? []).filter((subject: any) => subject.kind === 'ServiceAccount' && accounts.has(`${subject.namespace}/${subject.name}`));
      if (checks.length === 0) return [];
      const { kind, name } = binding.roleRef;
      const role = objects.find((o) => o.kind === kind && o.metadata.name === name && (kind === 'ClusterRole' || o.metadata.namespace === binding.metadata.namespace));
      if (!(role?.rules ?? []).some(makesPods)) return [];
      const where = `${s.env.environment}/${path}`;
      const who = checks.map((subject: any) => `${subject.namespace}/${subject.name}`).join(', ');
      if (binding.kind === 'ClusterRoleBinding') return [`${where}: check account ${who} may create pods in every namespace`];
      const level = levels.get(binding.metadata.namespace ?? '') ?? 'privileged';
      return problems(level === 'restricted', `${where}: check account ${who} may create pods in ${binding.metadata.namespace}, whose Pod Security level is ${level}`);
    });
}

/**
 * The restore check's scratch Cluster (its SCRATCH_MANIFEST) on a StorageClass of the environment
 * that deletes its volumes with their claims and puts them in no recurring job's group.
 */
function scratchClassViolations(where: string, job: Manifest | undefined, classes: readonly { manifest: Manifest }[]): string[] {
  const manifest = job?.spec.template.spec.containers[0].env?.find((e: any) => e.name === 'SCRATCH_MANIFEST')?.value;
  if (!manifest) return [`${where}: its restore check names no scratch Cluster`];
  const name = JSON.parse(manifest).spec.storage.storageClass;
  const storageClass = classes.find((c) => c.manifest.metadata.name === name)?.manifest;
  if (!storageClass) return [`${where}: its restore check's scratch class ${name} is no StorageClass of the environment`];
  return [
    ...problems(storageClass.reclaimPolicy === 'Delete', `${where}: its restore check's scratch class ${name} keeps released volumes (reclaimPolicy ${storageClass.reclaimPolicy})`),
    ...problems(storageClass.parameters?.recurringJobSelector === '[]', `${where}: its restore check's scratch class ${name} puts its volumes in recurring job groups`),
  ];
}

/** authentik's blueprint tags, each parsed as `{ '<tag>': value }`. */
export const BLUEPRINT_TAGS = [['!Find', 'seq'], ['!KeyOf'], ['!Env']].map(([tag, collection]) => ({
  tag,
  ...(collection && { collection: collection as 'seq' }),
  resolve: (value: any) => ({ [tag]: typeof value === 'string' ? value : value.toJSON() }),
}));

/** Paths a script may always write to: the discard device and its own streams. */
const STREAMS = /^\/dev\/(null|stdout|stderr|fd\/\d+)$/;

/**
 * Where a container's shell script (`sh -c`, `-ec` ...) writes outside its writable volumes,
 * when its root filesystem is read-only: the targets of `>`, `>>` and `tee` that are absolute
 * or start with a variable, the variable resolved from the container's env or a plain
 * assignment in the script (one it cannot resolve is reported: the check cannot tell where it
 * points). Relative targets (the working directory, the read-only root) are not recognised:
 * they cannot be told apart from a `>` in a message.
 */
function scriptWriteViolations(container: any): string[] {
  if (container.securityContext?.readOnlyRootFilesystem !== true) return [];
  const script = shellScript(container);
  if (script === undefined) return [];
  const writable = ((container.volumeMounts ?? []) as any[]).filter((m) => m.readOnly !== true).map((m) => String(m.mountPath).replace(/\/$/, ''));
  const values = new Map<string, string>(((container.env ?? []) as any[]).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
  for (const [, name, double, single, bare] of script.matchAll(/(?:^|[\s;])([A-Za-z_]\w*)=(?:"([^"]*)"|'([^']*)'|([^\s;'"]*))/g)) values.set(name, double ?? single ?? bare);
  const resolve = (target: string, depth = 0): string | undefined => {
    const variable = /^\$(?:\{(\w+)\}|(\w+))/.exec(target);
    if (!variable) return target;
    const value = values.get(variable[1] ?? variable[2]);
    return value === undefined || depth > 5 ? undefined : resolve(value + target.slice(variable[0].length), depth + 1);
  };
  const targets = [
    ...[...script.matchAll(/(?:^|[\s;|&(])\d?>>?[ \t]*"?([/$][^\s;|&)"'<>]*)/g)].map((m) => m[1]),
    ...[...script.matchAll(/\btee\s+(?:-a\s+)?"?([/$][^\s;|&)"'<>]*)/g)].map((m) => m[1]),
  ];
  return [...new Set(targets)].flatMap((target) => {
    const path = resolve(target);
    if (path === undefined) return [`writes to ${target}, a variable neither its env nor the script sets plainly`];
    const inside = STREAMS.test(path) || writable.some((mount) => path === mount || path.startsWith(`${mount}/`));
    return problems(inside, `writes to ${target}${path === target ? '' : ` (${path})`}, outside its writable volumes (${writable.join(', ') || 'none'}), on a read-only root filesystem`);
  });
}

/** What `check` finds in each container of our hook Jobs (their scripts are ours; an operator's own app commands are not checked), named by file and container. */
function hookJobContainerProblems(all: readonly Synthesized[], check: (container: any) => string[]): string[] {
  return documents(all)
    .filter(({ manifest }) => manifest.kind === 'Job' && manifest.metadata.annotations?.[HOOK] !== undefined)
    .flatMap(({ manifest, where }) => containersOf(manifest.spec.template.spec).flatMap((container) => check(container).map((problem) => `${where} ${container.name}: ${problem}`)));
}

/**
 * Where a script with `kube_get` would get pretty-printed answers back (ADR 42): a user agent of
 * its own (`-A`, `--user-agent`, a `User-Agent` header: a later one wins over kube_get's) or the
 * `pretty` query parameter, which wins over any user agent. Its matching reads compact JSON
 * only. Anywhere in such a script, other servers' calls included: none names one.
 */
function prettyApiAnswers(container: any): string[] {
  const script = shellScript(container);
  if (script === undefined || !/^kube_get\(\) \{$/m.test(script)) return [];
  return script
    .split('\n')
    .filter((line) => /(^|\s)(-A|--user-agent)(\s|=)|User-Agent:|[?&]pretty=/i.test(line.replace(`-A ${KUBE_USER_AGENT} `, '')))
    .map((line) => `asks for a pretty-printed answer, which its matching does not read (kube_get names its user agent): ${line.trim()}`);
}

/** The script a container runs with `sh -c` (`-ec` ...; bash, dash or ash alike), if it runs one. */
function shellScript(container: any): string | undefined {
  const command: string[] = [...(container.command ?? []), ...(container.args ?? [])];
  const shell = command.findIndex((arg, i) => /(^|\/)(ba|d|a)?sh$/.test(arg) && /^-[a-z]*c[a-z]*$/.test(command[i + 1] ?? ''));
  return shell < 0 ? undefined : command[shell + 2];
}

/** What every container's environment has without its env saying so (the runtime sets HOSTNAME to the pod's name). */
const RUNTIME_VARIABLES = ['HOSTNAME', 'HOME', 'PATH'];

/** An operand of a numeric `[ … ]` test: a double-quoted word (`"${X:?…}"`, `"$(date +%s)"` …) or any other word. */
const OPERAND = String.raw`("[^"]*"|\S+)`;
const NUMERIC_TEST = new RegExp(String.raw`\[ +${OPERAND} +-(?:eq|ne|lt|le|gt|ge) +${OPERAND} +\]`, 'g');
/** An arithmetic expansion, one level of parentheses inside it allowed (`$(( $(date +%s) + X ))`). */
const ARITHMETIC = /\$\(\(((?:[^()]|\([^()]*\))*)\)\)/g;

/**
 * Where a script of ours compares with a number its env should give without making sure it
 * does. Unset or empty, the variable makes `[` fail, which `if`, `while` and `until` take as
 * false: a retry loop then never gives up, or never tries. So each variable a numeric test reads
 * from the env must be required (`${X:?…}`) in the test itself or before it, and each variable
 * a script requires must be one its container's env sets or the script assigns. A variable a
 * test or an arithmetic expansion reads that neither sets (a misspelled name; unset, arithmetic
 * reads 0) is reported too. Containers taking variables from a Secret or ConfigMap whole
 * (`envFrom`) are skipped. Assignments are found by their shape (`X=`, `for X`, `read X`), so
 * prose that looks like one can only hide a problem, never invent one.
 */
function envCountViolations(container: any): string[] {
  const script = shellScript(container);
  if (script === undefined || container.envFrom !== undefined) return [];
  const env = new Set<string>([...RUNTIME_VARIABLES, ...((container.env ?? []) as any[]).map((e) => e.name)]);
  const assigned = new Set<string>([
    ...[...script.matchAll(/(?:^|[\s;("])([A-Za-z_]\w*)=/g)].map((m) => m[1]),
    ...[...script.matchAll(/\b(?:for|read(?: -r)?)((?: +[A-Za-z_]\w*)+)/g)].flatMap((m) => m[1].trim().split(/ +/)),
  ]);
  const set = (name: string) => env.has(name) || assigned.has(name);
  /** Where each variable is first required. */
  const required = new Map<string, number>();
  for (const m of script.matchAll(/\$\{([A-Za-z_]\w*):\?/g)) if (!required.has(m[1])) required.set(m[1], m.index);
  /** Each variable a test compares with, and where that test ends. */
  const compared = new Map<string, number>();
  for (const m of script.matchAll(NUMERIC_TEST)) {
    for (const operand of [m[1], m[2]]) {
      const name = /^"?\$\{?([A-Za-z_]\w*)\}?"?$/.exec(operand)?.[1];
      if (name !== undefined && !compared.has(name)) compared.set(name, m.index + m[0].length);
    }
  }
  const computed = new Set(
    [...script.matchAll(ARITHMETIC)].flatMap((m) => [...m[1].replace(/\$\{([A-Za-z_]\w*)[^}]*\}/g, ' $1 ').replace(/\$\([^()]*\)/g, ' ').matchAll(/[A-Za-z_]\w*/g)].map((word) => word[0])),
  );
  return [
    ...[...compared].flatMap(([name, end]) =>
      assigned.has(name)
        ? []
        : env.has(name)
          ? problems((required.get(name) ?? Infinity) < end, `compares with $${name} from its env, which it does not require ("\${${name}:?…}") before or in the test: unset, the test fails and its loop never ends or never runs`)
          : [`compares with $${name}, which neither its env nor the script sets`],
    ),
    ...[...computed].flatMap((name) => problems(set(name), `computes with $${name}, which neither its env nor the script sets`)),
    ...[...required.keys()].flatMap((name) => problems(set(name), `requires $${name}, which neither its env nor the script sets`)),
  ];
}

/** Where a command starts: a line's start, after a separator, a substitution's opening or a keyword that takes a command (not after a bare parenthesis, which in our scripts is prose in a message more often than a subshell). */
const COMMAND_START = String.raw`(?:^|[;&|\x60!]|\$\(|\b(?:then|do|else|if|while|until)\s)\s*`;
/** A curl command, up to where it ends (a pipe, a list separator, a closing parenthesis or backtick). */
const CURL_COMMAND = new RegExp(`${COMMAND_START}(curl(?:\\s[^|;&)\x60]*)?)(?=[|;&)\x60]|$)`, 'g');
const PSQL_COMMAND = new RegExp(`${COMMAND_START}psql(?:\\s|$)`);
/**
 * Where a program starts whose limit comes from its env or a wrapper: a command's start or a
 * group's `{`, then any `exec`/`command`/`env` and `NAME=value` before it, and its path.
 */
const PROGRAM_START = String.raw`(?:${COMMAND_START}|(?<!\$)\{\s+)(?:(?:exec|command|env)\s+)*(?:[A-Za-z_]\w*=\S*\s+)*(?:\S*/)?`;
const VAULT_COMMAND = new RegExp(`${PROGRAM_START}vault(?:\\s|$)`);
/** n8n's CLI called directly, not through `within` (whose call names it after the limit, not at a command's start). */
const N8N_COMMAND = new RegExp(`${PROGRAM_START}(n8n(?:\\s[^|;&)\x60]*)?)(?=[|;&)\x60]|$)`, 'g');

/**
 * The network calls of a container's script that could wait without end, which the Job's
 * deadline would then cut off before the script's report: a curl command (continuation lines
 * joined; each command of a line on its own) without `--max-time`, a psql without
 * PGCONNECT_TIMEOUT in its env (the generated connection URIs set no connect_timeout), the Vault
 * CLI without VAULT_CLIENT_TIMEOUT (60 s a request by default), n8n's CLI outside `within` (it has
 * no limit). Prose that names curl (`curl exit 7`) is not at a command's start, so it is not read
 * as one.
 */
function unboundedCalls(container: any): string[] {
  const script = shellScript(container);
  if (script === undefined) return [];
  const lines = script.replace(/\\\n\s*/g, ' ').split('\n');
  const env = new Set<string>(((container.env ?? []) as any[]).map((e) => e.name));
  const envValue = (name: string): string | undefined => ((container.env ?? []) as any[]).find((e) => e.name === name)?.value;
  return [
    ...lines.flatMap((line) => [...line.matchAll(CURL_COMMAND)].map((m) => m[1]).filter((command) => !/\s--max-time\s/.test(command)).map((command) => `curl without --max-time: ${command.trim()}`)),
    ...(lines.some((line) => PSQL_COMMAND.test(line)) && !env.has('PGCONNECT_TIMEOUT') ? ['psql without PGCONNECT_TIMEOUT in its env'] : []),
    ...(lines.some((line) => VAULT_COMMAND.test(line)) && !/^[1-9]\d*s$/.test(envValue('VAULT_CLIENT_TIMEOUT') ?? '') ? ['the vault CLI without a VAULT_CLIENT_TIMEOUT of whole seconds (e.g. 10s) in its env'] : []),
    ...lines.flatMap((line) => [...line.matchAll(N8N_COMMAND)].map((m) => `n8n's CLI outside within: ${m[1].trim()}`)),
  ];
}

/** Every rule of every IngressRoute matching an admin host lacks none of the configured allow-list's ranges (traefik's `adminAccess.allowList`). */
function adminAllowListViolations(s: Synthesized): string[] {
  const router = s.platform.services.find(isExposureRouter);
  const allowList: readonly string[] = settingsIn(s.config, traefikEntry).adminAccess.allowList;
  if (!router || allowList.length === 0) return [];
  const docs = manifestsOf(s.env);
  const middlewares = docs.filter(({ manifest }) => manifest.kind === 'Middleware').map(({ manifest }) => manifest);
  const adminHosts = new Set(router.routedHosts.filter((h) => h.admin).map((h) => h.host));
  return docs
    .filter(({ manifest }) => manifest.kind === 'IngressRoute')
    .flatMap(({ path, manifest: route }) =>
      (route.spec.routes as any[]).flatMap((rule) => {
        const host = /Host\(`([^`]+)`\)/.exec(rule.match)?.[1];
        if (!host || !adminHosts.has(host)) return [];
        const ranges = (rule.middlewares ?? []).flatMap(
          (m: any) => middlewares.find((mw) => mw.metadata.name === m.name && mw.metadata.namespace === (m.namespace ?? route.metadata.namespace))?.spec.ipAllowList?.sourceRange ?? [],
        );
        return problems(isDeepStrictEqual([...ranges].sort(), [...allowList].sort()), `${s.env.environment}/${path}: the admin host ${host}'s rule ${rule.match} is not behind the allow-list ${allowList.join(', ')}`);
      }),
    );
}

/**
 * The routes of one environment against its single sign-on service: a host has its forward-auth
 * exactly when the router says it protects the host with it; every `sso` exposure is such a host;
 * each has a route of the service's own paths in the service's namespace; and Authentik's
 * forward-auth blueprint has a proxy provider for exactly those hosts.
 */
function singleSignOnViolations(s: Synthesized): string[] {
  const provider = s.platform.services.find(isSingleSignOnProvider);
  const router = s.platform.services.find(isExposureRouter);
  if (!provider || !router) return [];
  const where = s.env.environment;
  const docs = manifestsOf(s.env);
  const { address, ownPaths } = provider.forwardAuth;
  const middlewares = docs.filter(({ manifest }) => manifest.kind === 'Middleware').map(({ manifest }) => manifest);
  const routes = docs.filter(({ manifest }) => manifest.kind === 'IngressRoute').map(({ manifest }) => manifest);
  const hostOf = (route: Manifest) => /Host\(`([^`]+)`\)/.exec(route.spec.routes[0].match)?.[1];
  const protectedHosts = router.routedHosts.filter((h) => h.singleSignOn).map((h) => h.host);
  const ssoHosts = s.platform.services.flatMap((service) => service.exposures.filter((e) => e.signIn === 'sso').map((e) => s.platform.hostname(e.subdomain)));
  // An admin UI signs in through the service unless it is its service's own OIDC login.
  const adminHosts = s.platform.services.flatMap((service) =>
    service.exposures.filter((e) => e.admin).map((e) => ({ host: s.platform.hostname(e.subdomain), ownLogin: e.ownOidcLogin === true && isOidcLoginService(service) })),
  );
  const violations = [
    ...ssoHosts.flatMap((host) => problems(protectedHosts.includes(host), `${where}: ${host} is an sso host the router does not protect with the single sign-on service`)),
    ...adminHosts.flatMap(({ host, ownLogin }) =>
      problems(protectedHosts.includes(host) !== ownLogin, `${where}: the admin host ${host} ${ownLogin ? 'is its service\'s own OIDC login, yet gets' : 'has no login of its own, yet lacks'} the single sign-on forward-auth`),
    ),
    ...routes
      .filter((route) => !route.spec.routes[0].match.includes(`PathPrefix(\`${ownPaths.pathPrefix}/\`)`))
      .flatMap((route) => {
        const host = hostOf(route)!;
        const signsIn = (route.spec.routes[0].middlewares ?? []).some(
          (m: any) => middlewares.find((mw) => mw.metadata.name === m.name && mw.metadata.namespace === route.metadata.namespace)?.spec.forwardAuth?.address === address,
        );
        const ownRoute = routes.find(
          (r) => r.metadata.namespace === ownPaths.namespace && r.spec.routes[0].match === `Host(\`${host}\`) && PathPrefix(\`${ownPaths.pathPrefix}/\`)` && r.spec.routes[0].services[0].name === ownPaths.serviceName,
        );
        return [
          ...problems(signsIn === protectedHosts.includes(host), `${where}: ${host} ${signsIn ? 'has' : 'lacks'} the single sign-on forward-auth, but the router ${signsIn ? 'does not protect' : 'protects'} it with it`),
          ...problems(!signsIn || ownRoute !== undefined, `${where}: ${host} signs in, but no route sends ${ownPaths.pathPrefix}/ to ${ownPaths.namespace}/${ownPaths.serviceName}`),
        ];
      }),
  ];
  const blueprint = docs.find(({ manifest }) => manifest.kind === 'ConfigMap' && manifest.metadata.name === 'authentik-blueprint-forward-auth')?.manifest.data?.['blueprint.yaml'];
  if (blueprint) {
    const providers = (parse(blueprint, { customTags: BLUEPRINT_TAGS }).entries as any[]).filter((e) => e.model === 'authentik_providers_proxy.proxyprovider').map((e) => e.identifiers.name);
    violations.push(...problems(isDeepStrictEqual([...providers].sort(), [...protectedHosts].sort()), `${where}: the forward-auth blueprint's providers (${providers.join(', ')}) are not the protected hosts (${protectedHosts.join(', ')})`));
  }
  return violations;
}

/**
 * Jobs whose containers name a URL of the issuer's host (the provider's login host, or a host the
 * OIDC clients' servers reach as `routed-host`) against the waves of the Applications that make
 * that name answer: the provider, the router (route, certificate) and the route followers
 * (tunnel, DNS record). A Job of an earlier Application fails its sync on a first install.
 */
function issuerPathViolations(s: Synthesized): string[] {
  const provider = s.platform.services.find(isSingleSignOnProvider);
  if (!provider) return [];
  const hosts = [provider.forwardAuth.loginHost, ...s.platform.services.flatMap((service) => service.egress.flatMap((e) => (e.to.kind === 'routed-host' ? [e.to.host] : [])))];
  const onPath = s.platform.services.filter((service) => service === provider || isExposureRouter(service) || isRouteFollower(service)).map((service) => service.serviceName);
  const waveOf = new Map(applications(s).map((app) => [app.metadata.name, Number(app.metadata.annotations?.[WAVE])]));
  return manifestsOf(s.env)
    .filter(({ manifest }) => manifest.kind === 'Job')
    .flatMap(({ path, manifest }) => {
      const values: string[] = containersOf(podSpecOf(manifest)).flatMap((c) => (c.env ?? []).map((e: any) => e.value ?? ''));
      if (!values.some((value) => hosts.some((host) => value.includes(`https://${host}/`)))) return [];
      const app = path.split('/')[0];
      return onPath.flatMap((name) =>
        problems(waveOf.get(app)! > waveOf.get(name)!, `${s.env.environment}/${path}: asks for the issuer by its public name in wave ${waveOf.get(app)}, not after ${name} (wave ${waveOf.get(name)})`),
      );
    });
}

/**
 * The DNS records (DNSEndpoints) of one environment against what its written files route: the
 * hosts of the IngressRoutes, the tunnel's ingress rules, the admin middlewares, the waves.
 */
function dnsRecordViolations(s: Synthesized): string[] {
  const docs = manifestsOf(s.env);
  const endpoints = docs.filter(({ manifest }) => manifest.kind === 'DNSEndpoint').flatMap(({ path, manifest }) => (manifest.spec.endpoints as any[]).map((e) => ({ path, ...e })));
  if (endpoints.length === 0) return [];
  const where = s.env.environment;
  const middlewares = docs.filter(({ manifest }) => manifest.kind === 'Middleware').map(({ manifest }) => manifest);
  const signInAddress = s.platform.services.find(isSingleSignOnProvider)?.forwardAuth.address;
  const admin = new Map<string, boolean>();
  for (const { manifest: route } of docs.filter(({ manifest }) => manifest.kind === 'IngressRoute')) {
    for (const rule of route.spec.routes as any[]) {
      const host = /Host\(`([^`]+)`\)/.exec(rule.match)?.[1];
      if (!host) continue;
      const controls = (rule.middlewares ?? []).map((m: any) => middlewares.find((mw) => mw.metadata.name === m.name && mw.metadata.namespace === route.metadata.namespace));
      // A host may have several routes (the single sign-on service's own paths): access-controlled
      // if any is. The single sign-on service's forward-auth reads a session, not the client's
      // address: a proxied sso host keeps working.
      const readsAddress = (mw: any) => mw?.spec.ipAllowList || (mw?.spec.forwardAuth && mw.spec.forwardAuth.address !== signInAddress);
      admin.set(host, (admin.get(host) ?? false) || controls.some(readsAddress));
    }
  }
  const tunnelConfig = docs.find(({ manifest }) => manifest.kind === 'ConfigMap' && manifest.metadata.name === 'cloudflared-config')?.manifest.data?.['config.yaml'];
  const tunnel = tunnelConfig ? (parse(tunnelConfig) as { tunnel: string; ingress: { hostname?: string }[] }) : undefined;
  const tunnelled = new Set(tunnel?.ingress.flatMap((rule) => (rule.hostname ? [rule.hostname] : [])) ?? []);
  const proxiedOf = (e: any) => e.providerSpecific?.find((p: any) => p.name === CLOUDFLARE_PROXIED)?.value === 'true';
  const waveOf = new Map(applications(s).map((app) => [app.metadata.name, Number(app.metadata.annotations?.[WAVE])]));
  const dnsApp = [...new Set(endpoints.map((e) => e.path.split('/')[0]))];
  return [
    ...[...admin.keys()].flatMap((host) => problems(endpoints.filter((e) => e.dnsName === host).length === 1, `${where}: routed host ${host} has ${endpoints.filter((e) => e.dnsName === host).length} DNS records, expected 1`)),
    ...endpoints.flatMap((e) => {
      const at = `${where}/${e.path}: ${e.dnsName}`;
      if (!admin.has(e.dnsName)) return [`${at}: a record of a host no IngressRoute routes`];
      if (tunnelled.has(e.dnsName)) {
        return problems(e.recordType === 'CNAME' && isDeepStrictEqual(e.targets, [`${tunnel!.tunnel}.cfargotunnel.com`]) && proxiedOf(e), `${at}: the tunnel forwards it, but its record is not a proxied CNAME to ${tunnel!.tunnel}.cfargotunnel.com`);
      }
      return [
        ...problems(!(admin.get(e.dnsName) && proxiedOf(e)), `${at}: proxied, but its route's access control reads the client's address, which the proxy replaces`),
        ...problems(!(e.recordType === 'CNAME' && String(e.targets[0]).endsWith('.cfargotunnel.com')), `${at}: points at a tunnel that does not forward it`),
      ];
    }),
    ...dnsApp.flatMap((app) =>
      ['traefik', 'cloudflared']
        .filter((router) => waveOf.has(router))
        .flatMap((router) => problems(waveOf.get(app)! > waveOf.get(router)!, `${where}/${app} (wave ${waveOf.get(app)}): syncs records of hosts ${router} (wave ${waveOf.get(router)}) has not routed yet`)),
    ),
  ];
}

/**
 * Every need of every Application, re-derived from the written files, whose provider is neither
 * the Application itself nor one of an earlier wave. Needs and providers are keyed
 * `kind:identity` (`secret:n8n/n8n-encryption-key`); a provider of undefined is the operator.
 */
function needViolations(s: Synthesized): string[] {
  const where = s.env.environment;
  const docs = manifestsOf(s.env).filter(({ path }) => !path.startsWith('apps/') && !path.startsWith('bootstrap/'));
  const folderOf = (path: string) => path.split('/')[0];
  const waveOf = new Map(applications(s).map((app) => [app.metadata.name, Number(app.metadata.annotations?.[WAVE])]));
  const providers = new Map<string, string | undefined>();
  const provide = (key: string, folder: string | undefined) => {
    if (!providers.has(key)) providers.set(key, folder);
  };
  // What the written objects provide.
  for (const { path, manifest: m } of docs) {
    const ns = m.metadata.namespace;
    if (m.kind === 'Secret') provide(`secret:${ns}/${m.metadata.name}`, folderOf(path));
    if (m.kind === 'ExternalSecret') provide(`secret:${ns}/${m.spec.target?.name ?? m.metadata.name}`, folderOf(path));
    if (m.kind === 'Certificate') provide(`secret:${ns}/${m.spec.secretName}`, folderOf(path));
    if (m.kind === 'StorageClass') provide(`class:${m.metadata.name}`, folderOf(path));
    if (m.kind === 'PersistentVolumeClaim') provide(`pvc:${ns}/${m.metadata.name}`, folderOf(path));
    if (m.kind === 'ClusterIssuer') provide(`issuer:${m.metadata.name}`, folderOf(path));
    for (const service of s.platform.services) {
      for (const rule of service.generatesSecrets.filter((r) => r.kind === m.kind && r.group === apiGroup(m.apiVersion))) {
        for (const name of rule.secretNames(m.metadata.name)) provide(`secret:${ns}/${name}`, folderOf(path));
      }
    }
  }
  // What the upstream sources provide, as the services declare it; declared Secrets nothing delivers are made by hand.
  for (const service of s.platform.services) {
    for (const group of service.installsCrdGroups) provide(`crd:${group}`, service.serviceName);
    for (const group of service.admissionWebhookGroups) provide(`webhook:${group}`, service.serviceName);
    for (const name of service.upstreamSecrets) provide(`secret:${service.namespaceName}/${name}`, service.serviceName);
    provide(`backend:${service.namespaceName}`, service.serviceName);
  }
  for (const need of s.platform.services.flatMap((service) => service.secretNeeds)) provide(`secret:${need.namespace}/${need.name}`, undefined);

  // What each folder's objects need.
  const needs: { folder: string; key: string; why: string }[] = [];
  const issuerSecrets = new Map<string, string[]>();
  for (const { path, manifest: m } of docs) {
    if (m.kind !== 'ClusterIssuer') continue;
    const refs = JSON.stringify(m.spec.acme?.solvers ?? []).matchAll(/"\w+SecretRef":\{[^}]*"name":"([^"]+)"/g);
    const namespace = s.platform.services.find((service) => service.serviceName === folderOf(path))!.namespaceName;
    issuerSecrets.set(m.metadata.name, [...refs].map((r) => `secret:${namespace}/${r[1]}`));
  }
  const stores = new Map(docs.filter(({ manifest: m }) => m.kind === 'SecretStore').map(({ manifest: m }) => [`${m.metadata.namespace}/${m.metadata.name}`, m]));
  for (const { path, manifest: m } of docs) {
    const folder = folderOf(path);
    const need = (key: string) => needs.push({ folder, key, why: path });
    const group = apiGroup(m.apiVersion);
    if (group.includes('.') && !group.endsWith('.k8s.io')) {
      need(`crd:${group}`);
      if (s.platform.services.some((service) => service.admissionWebhookGroups.includes(group))) need(`webhook:${group}`);
    }
    for (const [, name] of JSON.stringify(m).matchAll(/"storageClassName":"([^"]+)"/g)) need(`class:${name}`);
    for (const { pod } of podTemplates(m).filter(({ part }) => part === '')) {
      const ns = m.metadata.namespace;
      for (const c of containersOf(pod)) {
        for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef && !e.valueFrom.secretKeyRef.optional) need(`secret:${ns}/${e.valueFrom.secretKeyRef.name}`);
        for (const e of c.envFrom ?? []) if (e.secretRef && !e.secretRef.optional) need(`secret:${ns}/${e.secretRef.name}`);
      }
      for (const ref of pod.imagePullSecrets ?? []) need(`secret:${ns}/${ref.name}`);
      for (const v of pod.volumes ?? []) {
        if (v.secret && !v.secret.optional) need(`secret:${ns}/${v.secret.secretName}`);
        for (const source of v.projected?.sources ?? []) if (source.secret && !source.secret.optional) need(`secret:${ns}/${source.secret.name}`);
        if (v.persistentVolumeClaim) need(`pvc:${ns}/${v.persistentVolumeClaim.claimName}`);
      }
    }
    if (m.kind === 'Certificate' && m.spec.issuerRef.kind === 'ClusterIssuer') {
      need(`issuer:${m.spec.issuerRef.name}`);
      for (const key of issuerSecrets.get(m.spec.issuerRef.name) ?? []) need(key);
    }
    if (m.kind === 'ExternalSecret') {
      const server: string = Object.values(stores.get(`${m.metadata.namespace}/${m.spec.secretStoreRef.name}`)?.spec.provider ?? {}).map((p: any) => p.server)[0] ?? '';
      const namespace = /^\w+:\/\/[^.]+\.([^.:/]+)\.svc/.exec(server)?.[1];
      if (namespace) need(`backend:${namespace}`);
    }
  }
  // What the Applications' charts read, from their values and the services' declarations.
  for (const app of applications(s)) {
    for (const source of sourcesOf(app).filter((src) => src.helm)) {
      for (const [, name] of JSON.stringify(source.helm.valuesObject ?? {}).matchAll(/"storageClass(?:Name)?":"([^"-][^"]*)"/g)) needs.push({ folder: app.metadata.name, key: `class:${name}`, why: 'its Helm values' });
    }
  }
  for (const service of s.platform.services) {
    for (const secret of service.secretNeeds.filter((n) => n.neededToStart)) needs.push({ folder: service.serviceName, key: `secret:${secret.namespace}/${secret.name}`, why: 'its declaration' });
    // A group no enabled service installs is a warning of synth: nothing to order after.
    for (const group of service.requiresCrdGroups.filter((g) => providers.has(`crd:${g}`))) needs.push({ folder: service.serviceName, key: `crd:${group}`, why: 'its upstream sources' });
  }
  return needs.flatMap(({ folder, key, why }) => {
    if (!providers.has(key)) return [`${where}/${folder}: needs ${key} (${why}), which nothing provides`];
    const provider = providers.get(key);
    if (provider === undefined || provider === folder) return [];
    return problems(waveOf.get(folder)! > waveOf.get(provider)!, `${where}/${folder} (wave ${waveOf.get(folder)}): needs ${key} (${why}) from ${provider} (wave ${waveOf.get(provider)})`);
  });
}

/** The one invariant whose name starts with `start` (a test that checks it on a broken output); fails naming `start` where none or several do. */
export function invariantNamed(start: string): Invariant {
  const found = INVARIANTS.filter((invariant) => invariant.name.startsWith(start));
  if (found.length !== 1) throw new Error(`${found.length} invariants named "${start}…"`);
  return found[0];
}

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
