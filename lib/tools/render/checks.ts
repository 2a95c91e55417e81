/**
 * Whole-cluster checks over a rendered environment (lib/tools/render/render.ts): what only the
 * upstream charts' objects and ours together can show — a ServiceMonitor naming a port the
 * pinned chart renamed, a Service selecting a Job's pods, a reference to a Secret nothing makes.
 * Each problem reads `<env>/<Application>: <Kind>/<namespace>/<name>: <what is wrong>`.
 *
 * What the set itself cannot show (an operator makes the Secret, the cluster ships the
 * StorageClass) is stated in lib/tools/render/exceptions.ts with its reason; an exception that
 * excuses nothing is a problem too, so the list stays true.
 */
import { ManifestValidator } from '../validate/manifest-validator';
import { promqlErrors } from '../validate/promql';
import type { LintedObject, Workload } from '../lint/model';
import { containersOf } from '../../model/workloads';
import { selects, workloadsOf } from '../lint/workloads';
import { RENDER_EXCEPTIONS, RenderException } from './exceptions';
import { operatorProducts } from './operators';
import { FROM_OUTSIDE_PODS, labelsMatch, namespaceLabels, PodEndpoint, podEndpoint, PolicySet } from './connectivity';
import { CLUSTER_DNS } from '../../model/network';
import { ROOT_CA_CONFIG_MAP } from '../../model/kubernetes';
import { apiGroup } from '../../model/needs';
import { BASELINE_CAPABILITIES, RESTRICTED_CAPABILITIES } from '../../model/pod-security';
import { scopedKindName } from '../../output/cluster-scoped';
import type { Manifest, RenderedObject } from './render';

/** The kinds of whole-cluster check, as problems and exceptions name them. */
export type CheckName = 'schema' | 'duplicate' | 'monitor-target' | 'route-backend' | 'reference' | 'network-policy' | 'connectivity' | 'project' | 'promql' | 'pod-security' | 'job-selected';

export interface Problem {
  readonly check: CheckName;
  readonly environment: string;
  readonly application: string;
  readonly manifest: Manifest;
  readonly message: string;
}

function formatProblem(problem: Problem): string {
  const { kind, metadata } = problem.manifest;
  return `${problem.environment}/${problem.application}: ${kind}/${metadata.namespace ?? '-'}/${metadata.name}: ${problem.message}`;
}

/** Every problem of every environment, formatted, exceptions applied; unused exceptions are problems too. */
export function checkRendered(environments: ReadonlyMap<string, readonly RenderedObject[]>, exceptions: readonly RenderException[] = RENDER_EXCEPTIONS): string[] {
  const used = new Set<RenderException>();
  const lines: string[] = [];
  for (const [environment, objects] of environments) {
    for (const problem of environmentProblems(environment, objects)) {
      const excuse = exceptions.find((e) => excuses(e, problem));
      if (excuse) used.add(excuse);
      else lines.push(formatProblem(problem));
    }
  }
  // An exception about an Application that no environment here renders (one checked alone) is not unused.
  const rendered = new Set([...environments.values()].flatMap((objects) => objects.map((o) => o.application)));
  for (const exception of exceptions) {
    if (!used.has(exception) && rendered.has(exception.object.split('/')[0]))
      lines.push(`exceptions: ${exception.check} ${exception.object} excuses nothing in ${[...environments.keys()].join(', ')}; remove it (${exception.reason})`);
  }
  return lines;
}

function excuses(exception: RenderException, problem: Problem): boolean {
  const { kind, metadata } = problem.manifest;
  return exception.check === problem.check && exception.object === `${problem.application}/${kind}/${metadata.name}` && problem.message.includes(exception.about);
}

/** The problems of one environment, unexcused. */
export function environmentProblems(environment: string, objects: readonly RenderedObject[]): Problem[] {
  const set = new RenderedSet(environment, objects);
  return [
    ...schemaProblems(set),
    ...duplicates(set),
    ...monitorTargets(set),
    ...routeBackends(set),
    ...references(set),
    ...networkPolicies(set),
    ...connectivity(set),
    ...projectAdmission(set),
    ...promqlProblems(set),
    ...podSecurity(set),
    ...jobsSelected(set),
  ];
}

/** An environment's rendered objects, indexed for the checks. */
class RenderedSet {
  readonly workloads: Workload[];
  private readonly byKind = new Map<string, RenderedObject[]>();

  readonly objects: readonly RenderedObject[];

  constructor(
    readonly environment: string,
    applied: readonly RenderedObject[],
  ) {
    this.objects = [...applied, ...operatorProducts(applied)];
    for (const object of this.objects) this.byKind.set(object.manifest.kind, [...(this.byKind.get(object.manifest.kind) ?? []), object]);
    this.workloads = workloadsOf(this.objects.map((object) => linted(environment, object)));
  }

  /** What Argo CD applies: the set without the operators' products. */
  applied(): readonly RenderedObject[] {
    return this.objects.filter((object) => !object.madeByOperator);
  }

  /** The object a workload was found in. */
  objectOf(workload: Workload): RenderedObject {
    return this.objects.find((o) => o.manifest === workload.object.manifest)!;
  }

  kind(kind: string): readonly RenderedObject[] {
    return this.byKind.get(kind) ?? [];
  }

  /** The Service `name` in `namespace`, if the set has it. */
  service(namespace: string | undefined, name: string): Manifest | undefined {
    return this.kind('Service').find((o) => o.manifest.metadata.name === name && o.manifest.metadata.namespace === namespace)?.manifest;
  }

  /** The Services a ServiceMonitor selects, in the namespaces its namespaceSelector covers (its own unless `any` or `matchNames`). */
  monitoredServices(monitor: Manifest): Manifest[] {
    const inScope = monitoredNamespaces(monitor);
    return this.kind('Service')
      .map((o) => o.manifest)
      .filter((s) => inScope(s.metadata.namespace) && labelsMatch(monitor.spec.selector, s.metadata.labels));
  }

  /** The long-running pods a PodMonitor selects, likewise. */
  monitoredWorkloads(monitor: Manifest): Workload[] {
    const inScope = monitoredNamespaces(monitor);
    return this.workloads.filter((w) => w.longRunning && inScope(w.namespace) && labelsMatch(monitor.spec.selector, w.podLabels));
  }

  /** Whether an object of `kind` named `name` is in `namespace` (any namespace for cluster-scoped kinds). */
  has(kind: string, name: string, namespace?: string): boolean {
    return this.kind(kind).some((o) => o.manifest.metadata.name === name && (namespace === undefined || o.manifest.metadata.namespace === namespace));
  }

  problem(check: CheckName, object: RenderedObject, message: string): Problem {
    return {
      check,
      environment: this.environment,
      application: object.application,
      manifest: object.manifest,
      message,
    };
  }
}

function monitoredNamespaces(monitor: Manifest): (namespace: string | undefined) => boolean {
  const selector = monitor.spec?.namespaceSelector;
  if (selector?.any) return () => true;
  const names: string[] = selector?.matchNames ?? [monitor.metadata.namespace!];
  return (namespace) => namespace !== undefined && names.includes(namespace);
}

function linted(environment: string, object: RenderedObject): LintedObject {
  return {
    env: environment,
    service: object.application,
    file: `${environment}/${object.application}`,
    manifest: object.manifest,
  } as LintedObject;
}

function schemaProblems(set: RenderedSet): Problem[] {
  // One validator for the process: compiling the schemas is what costs. A CRD only adds kinds
  // the imported schemas lack, so sets checked one after the other do not disturb each other.
  const validator = ManifestValidator.shared();
  for (const crd of set.kind('CustomResourceDefinition')) validator.addCustomResourceDefinition(crd.manifest as any);
  return set.applied().flatMap((object) => validator.validate(withoutNulls(object.manifest)).map((message) => set.problem('schema', object, message.replace(/^[^:]*: /, ''))));
}

/** The API server takes a null field as an absent one (charts often render `annotations:` with nothing under it). */
function withoutNulls(value: any): any {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, withoutNulls(v)]),
  );
}

function duplicates(set: RenderedSet): Problem[] {
  const seen = new Map<string, RenderedObject>();
  return set.applied().flatMap((object) => {
    const { apiVersion, kind, metadata } = object.manifest;
    const key = `${apiVersion.split('/').slice(0, -1).join('/')}/${kind}/${metadata.namespace ?? ''}/${metadata.name}`;
    const first = seen.get(key);
    if (!first) {
      seen.set(key, object);
      return [];
    }
    return [set.problem('duplicate', object, `emitted twice: also by ${first.application} (${first.source})`)];
  });
}

function monitorTargets(set: RenderedSet): Problem[] {
  const serviceMonitors = set.kind('ServiceMonitor').flatMap((object) => {
    const selected = set.monitoredServices(object.manifest);
    if (selected.length === 0) return [set.problem('monitor-target', object, `selects no Service (${JSON.stringify(object.manifest.spec.selector)})`)];
    return ((object.manifest.spec.endpoints ?? []) as any[])
      .filter((endpoint) => endpoint.port !== undefined && !selected.some((s) => (s.spec.ports ?? []).some((p: any) => p.name === endpoint.port)))
      .map((endpoint) =>
        set.problem(
          'monitor-target',
          object,
          `no Service it selects has a port named ${endpoint.port} (${selected.map((s) => `${s.metadata.name}: ${(s.spec.ports ?? []).map((p: any) => p.name ?? p.port).join(', ')}`).join('; ')})`,
        ),
      );
  });
  const podMonitors = set.kind('PodMonitor').flatMap((object) => {
    const selected = set.monitoredWorkloads(object.manifest);
    if (selected.length === 0) return [set.problem('monitor-target', object, `selects no pods (${JSON.stringify(object.manifest.spec.selector)})`)];
    return ((object.manifest.spec.podMetricsEndpoints ?? []) as any[])
      .filter((endpoint) => endpoint.port !== undefined && !selected.some((w) => containersOf(w.pod).some((c) => (c.ports ?? []).some((p: any) => p.name === endpoint.port))))
      .map((endpoint) => set.problem('monitor-target', object, `no pod it selects has a container port named ${endpoint.port}`));
  });
  return [...serviceMonitors, ...podMonitors];
}

/** Whether the Service `name` in `namespace` exists and has the port (a number or a name). */
function servicePortProblem(set: RenderedSet, namespace: string, name: string, port: unknown): string | undefined {
  const service = set.service(namespace, name);
  if (!service) return `routes to Service ${namespace}/${name}, which is not in the rendered set`;
  if (port === undefined) return undefined;
  const ports: any[] = service.spec.ports ?? [];
  return ports.some((p) => p.port === port || p.name === port)
    ? undefined
    : `routes to port ${port} of Service ${namespace}/${name}, which has ${ports.map((p) => p.name ?? p.port).join(', ')}`;
}

function routeBackends(set: RenderedSet): Problem[] {
  const ingressRoutes = ['IngressRoute', 'IngressRouteTCP'].flatMap((kind) =>
    set.kind(kind).flatMap((object) =>
      ((object.manifest.spec.routes ?? []) as any[]).flatMap((route) =>
        ((route.services ?? []) as any[])
          .filter((s) => (s.kind ?? 'Service') === 'Service')
          .flatMap((s) => {
            const problem = servicePortProblem(set, s.namespace ?? object.manifest.metadata.namespace, s.name, s.port);
            return problem ? [set.problem('route-backend', object, problem)] : [];
          }),
      ),
    ),
  );
  const ingresses = set.kind('Ingress').flatMap((object) =>
    ((object.manifest.spec.rules ?? []) as any[]).flatMap((rule) =>
      ((rule.http?.paths ?? []) as any[]).flatMap((path) => {
        const service = path.backend?.service;
        if (!service) return [];
        const problem = servicePortProblem(set, object.manifest.metadata.namespace!, service.name, service.port?.number ?? service.port?.name);
        return problem ? [set.problem('route-backend', object, problem)] : [];
      }),
    ),
  );
  return [...ingressRoutes, ...ingresses];
}

/** PriorityClasses every cluster has (kube-apiserver creates them). */
const BUILT_IN_PRIORITY_CLASSES = ['system-cluster-critical', 'system-node-critical'];

/** The Secrets the set makes other than as Secret objects: ExternalSecret targets, Certificates' secrets. */
function producedSecrets(set: RenderedSet): Set<string> {
  return new Set([
    ...set.kind('ExternalSecret').map((o) => `${o.manifest.metadata.namespace}/${o.manifest.spec?.target?.name ?? o.manifest.metadata.name}`),
    ...set.kind('Certificate').map((o) => `${o.manifest.metadata.namespace}/${o.manifest.spec?.secretName}`),
  ]);
}

function references(set: RenderedSet): Problem[] {
  const secrets = producedSecrets(set);
  const hasSecret = (namespace: string, name: string) => set.has('Secret', name, namespace) || secrets.has(`${namespace}/${name}`);
  const claimTemplates = new Set(
    set
      .kind('StatefulSet')
      .flatMap((o) => ((o.manifest.spec.volumeClaimTemplates ?? []) as any[]).map((t) => `${o.manifest.metadata.namespace}/${t.metadata.name}-${o.manifest.metadata.name}`)),
  );
  const fromWorkloads = set.workloads
    .filter((w) => w.template === 'ours')
    .flatMap((w) => {
      const object = set.objectOf(w);
      const ns = w.namespace;
      const missing: string[] = [];
      const secret = (name: string | undefined, optional?: boolean) => name && !optional && !hasSecret(ns, name) && missing.push(`Secret ${ns}/${name}`);
      // The cluster publishes its CA's ConfigMap in every namespace.
      const configMap = (name: string | undefined, optional?: boolean) =>
        name && !optional && name !== ROOT_CA_CONFIG_MAP && !set.has('ConfigMap', name, ns) && missing.push(`ConfigMap ${ns}/${name}`);
      const account = w.pod.serviceAccountName;
      if (account && account !== 'default' && !set.has('ServiceAccount', account, ns)) missing.push(`ServiceAccount ${ns}/${account}`);
      for (const pull of w.pod.imagePullSecrets ?? []) secret(pull.name);
      for (const volume of w.pod.volumes ?? []) {
        secret(volume.secret?.secretName, volume.secret?.optional);
        configMap(volume.configMap?.name, volume.configMap?.optional);
        for (const source of volume.projected?.sources ?? []) {
          secret(source.secret?.name, source.secret?.optional);
          configMap(source.configMap?.name, source.configMap?.optional);
        }
        const claim = volume.persistentVolumeClaim?.claimName;
        if (claim && !set.has('PersistentVolumeClaim', claim, ns) && ![...claimTemplates].some((t) => `${ns}/${claim}`.startsWith(`${t}-`)))
          missing.push(`PersistentVolumeClaim ${ns}/${claim}`);
      }
      for (const container of containersOf(w.pod)) {
        for (const env of container.env ?? []) {
          secret(env.valueFrom?.secretKeyRef?.name, env.valueFrom?.secretKeyRef?.optional);
          configMap(env.valueFrom?.configMapKeyRef?.name, env.valueFrom?.configMapKeyRef?.optional);
        }
        for (const from of container.envFrom ?? []) {
          secret(from.secretRef?.name, from.secretRef?.optional);
          configMap(from.configMapRef?.name, from.configMapRef?.optional);
        }
      }
      const priority = w.pod.priorityClassName;
      if (priority && !BUILT_IN_PRIORITY_CLASSES.includes(priority) && !set.has('PriorityClass', priority)) missing.push(`PriorityClass ${priority}`);
      const runtime = w.pod.runtimeClassName;
      if (runtime && !set.has('RuntimeClass', runtime)) missing.push(`RuntimeClass ${runtime}`);
      return [...new Set(missing)].map((m) => set.problem('reference', object, `${w.label} refers to ${m}, which nothing in the rendered set makes`));
    });
  const claims = [
    ...set.kind('PersistentVolumeClaim').map((o) => ({
      object: o,
      storageClass: o.manifest.spec?.storageClassName,
    })),
    ...set.kind('StatefulSet').flatMap((o) =>
      ((o.manifest.spec.volumeClaimTemplates ?? []) as any[]).map((t) => ({
        object: o,
        storageClass: t.spec?.storageClassName,
      })),
    ),
  ];
  const storage = claims
    .filter(({ storageClass }) => storageClass && !set.has('StorageClass', storageClass))
    .map(({ object, storageClass }) => set.problem('reference', object, `claims StorageClass ${storageClass}, which nothing in the rendered set makes`));
  return [...fromWorkloads, ...storage];
}

function networkPolicies(set: RenderedSet): Problem[] {
  const namespaces = namespaceLabels(set.kind('Namespace').map((o) => o.manifest));
  const podsIn = (namespace: string) => set.workloads.filter((w) => w.namespace === namespace);
  return set.kind('NetworkPolicy').flatMap((object) => {
    const policy = object.manifest;
    const ns = policy.metadata.namespace!;
    const problems: string[] = [];
    if (!matchesSelectorOrEmpty(policy.spec.podSelector) && !podsIn(ns).some((w) => labelsMatch(policy.spec.podSelector, w.podLabels))) {
      problems.push(`its podSelector ${JSON.stringify(policy.spec.podSelector)} selects no pod in ${ns}`);
    }
    const peers: any[] = [...(policy.spec.ingress ?? []).flatMap((r: any) => r.from ?? []), ...(policy.spec.egress ?? []).flatMap((r: any) => r.to ?? [])];
    for (const peer of peers) {
      if (peer.ipBlock) continue;
      const peerNamespaces = peer.namespaceSelector ? [...namespaces].filter(([, labels]) => labelsMatch(peer.namespaceSelector, labels)).map(([name]) => name) : [ns];
      // Namespaces that are not ours (kube-system) are not in the set: only a selector of ours can be checked.
      if (peer.namespaceSelector && peerNamespaces.length === 0) {
        const named = peer.namespaceSelector.matchLabels?.['kubernetes.io/metadata.name'];
        if (!named || namespaces.size === 0 || named !== CLUSTER_DNS.namespace)
          problems.push(`a peer's namespaceSelector ${JSON.stringify(peer.namespaceSelector)} selects no namespace of the set`);
        continue;
      }
      if (peer.podSelector && !matchesSelectorOrEmpty(peer.podSelector) && !peerNamespaces.some((n) => podsIn(n).some((w) => labelsMatch(peer.podSelector, w.podLabels)))) {
        problems.push(`a peer's podSelector ${JSON.stringify(peer.podSelector)} selects no pod in ${peerNamespaces.join(', ')}`);
      }
    }
    return problems.map((message) => set.problem('network-policy', object, message));
  });
}

function matchesSelectorOrEmpty(selector: any): boolean {
  return !selector || (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0);
}

function promqlProblems(set: RenderedSet): Problem[] {
  return set
    .kind('PrometheusRule')
    .flatMap((object) =>
      ((object.manifest.spec?.groups ?? []) as any[]).flatMap((group) =>
        ((group.rules ?? []) as any[]).flatMap((rule) =>
          promqlErrors(String(rule.expr ?? '')).map((error) => set.problem('promql', object, `${group.name}/${rule.alert ?? rule.record}: ${error}`)),
        ),
      ),
    );
}

const BASELINE_CAPABILITY_SET: ReadonlySet<string> = new Set(BASELINE_CAPABILITIES);
/** Volume types the restricted level allows. */
const RESTRICTED_VOLUMES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];

/** What the Pod Security admission would refuse of a pod at its namespace's enforced level. */
export function podSecurityViolations(pod: any, level: string): string[] {
  if (level === 'privileged') return [];
  const containers = containersOf(pod);
  const found: string[] = [];
  if (pod.hostNetwork || pod.hostPID || pod.hostIPC) found.push('uses host namespaces');
  if ((pod.volumes ?? []).some((v: any) => v.hostPath)) found.push('mounts a hostPath volume');
  for (const c of containers) {
    const sc = c.securityContext ?? {};
    if (sc.privileged) found.push(`${c.name}: privileged`);
    if ((c.ports ?? []).some((p: any) => p.hostPort)) found.push(`${c.name}: uses a hostPort`);
    const added: string[] = sc.capabilities?.add ?? [];
    const beyond = added.filter((cap) => !BASELINE_CAPABILITY_SET.has(cap));
    if (beyond.length > 0) found.push(`${c.name}: adds capabilities ${beyond.join(', ')}`);
  }
  if (level !== 'restricted') return found;
  const podContext = pod.securityContext ?? {};
  for (const volume of pod.volumes ?? []) {
    const type = Object.keys(volume).find((key) => key !== 'name');
    if (type && !RESTRICTED_VOLUMES.includes(type)) found.push(`volume ${volume.name}: type ${type} is not allowed`);
  }
  for (const c of containers) {
    const sc = c.securityContext ?? {};
    if (sc.allowPrivilegeEscalation !== false) found.push(`${c.name}: allowPrivilegeEscalation is not false`);
    if ((sc.runAsNonRoot ?? podContext.runAsNonRoot) !== true) found.push(`${c.name}: runAsNonRoot is not true`);
    if ((sc.runAsUser ?? podContext.runAsUser) === 0) found.push(`${c.name}: runs as user 0`);
    const seccomp = (sc.seccompProfile ?? podContext.seccompProfile)?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') found.push(`${c.name}: no RuntimeDefault or Localhost seccomp profile`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) found.push(`${c.name}: does not drop ALL capabilities`);
    const extra = (sc.capabilities?.add ?? []).filter((cap: string) => !RESTRICTED_CAPABILITIES.has(cap));
    if (extra.length > 0) found.push(`${c.name}: adds ${extra.join(', ')} (restricted allows NET_BIND_SERVICE only)`);
  }
  return found;
}

function podSecurity(set: RenderedSet): Problem[] {
  const levels = new Map(set.kind('Namespace').map((o) => [o.manifest.metadata.name, o.manifest.metadata.labels?.['pod-security.kubernetes.io/enforce'] ?? 'privileged']));
  return set.workloads
    .filter((w) => w.template === 'ours' && levels.has(w.namespace) && !set.objectOf(w).madeByOperator)
    .flatMap((w) => {
      const level = levels.get(w.namespace)!;
      const object = set.objectOf(w);
      return podSecurityViolations(w.pod, level).map((v) => set.problem('pod-security', object, `${w.label} violates Pod Security ${level} of ${w.namespace}: ${v}`));
    });
}

function jobsSelected(set: RenderedSet): Problem[] {
  const jobs = set.workloads.filter((w) => !w.longRunning);
  return set.kind('Service').flatMap((object) => {
    const selector = object.manifest.spec?.selector;
    if (!selector) return [];
    return jobs
      .filter((job) => job.namespace === object.manifest.metadata.namespace && selects(selector, job.podLabels))
      .map((job) => set.problem('job-selected', object, `selects the pods of ${job.object.manifest.kind} ${job.object.manifest.metadata.name}`));
  });
}

/** An in-cluster Service address: `<service>.<namespace>.svc[.cluster.local][:port]`. */
const SERVICE_ADDRESS = /\b([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)\.([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)\.svc(?:\.cluster\.local)?(?::(\d+))?/g;

/**
 * The connections the platform relies on, through every NetworkPolicy of the set (both
 * directions): Prometheus to each monitor's targets, the router (Traefik) to each route's
 * backends, each pod to the Services it names, the API server to each admission webhook.
 */
function connectivity(set: RenderedSet): Problem[] {
  const policies = new PolicySet(
    set.kind('NetworkPolicy').map((o) => o.manifest),
    set.kind('Namespace').map((o) => o.manifest),
  );
  const endpoint = (w: Workload): PodEndpoint => podEndpoint(w.namespace, w.podLabels, w.pod);
  const podsOf = (labels: Record<string, string>) => set.workloads.filter((w) => w.longRunning && selects(labels, w.podLabels));
  // prometheus-operator labels its pods app.kubernetes.io/name: prometheus (lib/tools/render/operators.ts); the Traefik chart its pods app.kubernetes.io/name: traefik.
  const prometheus = podsOf({ 'app.kubernetes.io/name': 'prometheus' }).map(endpoint);
  const routers = podsOf({ 'app.kubernetes.io/name': 'traefik' }).map(endpoint);
  /** The pods behind a Service's port (name or number) with the container port each listens on. */
  const backends = (service: Manifest, servicePort: unknown): { pod: PodEndpoint; port: number; name: string }[] => {
    const port = ((service.spec?.ports ?? []) as any[]).find((p) => p.name === servicePort || p.port === servicePort);
    if (!port || !service.spec.selector) return [];
    return set.workloads
      .filter((w) => w.longRunning && w.namespace === service.metadata.namespace && selects(service.spec.selector, w.podLabels))
      .flatMap((w) => {
        const pod = endpoint(w);
        const target = port.targetPort ?? port.port;
        const number = typeof target === 'number' ? target : pod.namedPorts.get(target);
        return number === undefined
          ? []
          : [
              {
                pod,
                port: number,
                name: `${w.object.manifest.kind} ${w.object.manifest.metadata.name}`,
              },
            ];
      });
  };
  const problems: Problem[] = [];
  const check = (object: RenderedObject, who: string, from: PodEndpoint[] | typeof FROM_OUTSIDE_PODS, to: { pod: PodEndpoint; port: number; name: string }[]) => {
    for (const target of to) {
      for (const source of from === FROM_OUTSIDE_PODS ? [FROM_OUTSIDE_PODS] : from) {
        const refusal = policies.refusal(source, target.pod, target.port);
        if (refusal) {
          problems.push(set.problem('connectivity', object, `${who} cannot reach ${target.name} in ${target.pod.namespace} on port ${target.port}: ${refusal}`));
          return;
        }
      }
    }
  };
  for (const object of set.kind('ServiceMonitor')) {
    for (const service of set.monitoredServices(object.manifest)) {
      for (const endpointSpec of (object.manifest.spec.endpoints ?? []) as any[]) check(object, 'Prometheus', prometheus, backends(service, endpointSpec.port));
    }
  }
  for (const object of set.kind('PodMonitor')) {
    for (const w of set.monitoredWorkloads(object.manifest)) {
      const pod = endpoint(w);
      for (const endpointSpec of (object.manifest.spec.podMetricsEndpoints ?? []) as any[]) {
        const port = pod.namedPorts.get(endpointSpec.port);
        if (port !== undefined)
          check(object, 'Prometheus', prometheus, [
            {
              pod,
              port,
              name: `${w.object.manifest.kind} ${w.object.manifest.metadata.name}`,
            },
          ]);
      }
    }
  }
  for (const object of set.kind('IngressRoute')) {
    for (const route of (object.manifest.spec.routes ?? []) as any[]) {
      for (const backend of ((route.services ?? []) as any[]).filter((b) => (b.kind ?? 'Service') === 'Service')) {
        const service = set.service(backend.namespace ?? object.manifest.metadata.namespace, backend.name);
        if (service) check(object, 'Traefik', routers, backends(service, backend.port));
      }
    }
  }
  // Each pod to the in-cluster Services it names (`<service>.<namespace>.svc[.cluster.local][:port]`
  // in its command, arguments or environment; a name without a port means the Service's only port).
  for (const w of set.workloads) {
    const text = JSON.stringify(containersOf(w.pod).map((c) => [c.command, c.args, c.env]));
    for (const match of text.matchAll(SERVICE_ADDRESS)) {
      const [, name, namespace, port] = match;
      const service = set.service(namespace, name);
      const ports: any[] = service?.spec?.ports ?? [];
      const servicePort = port !== undefined ? Number(port) : ports.length === 1 ? ports[0].port : undefined;
      if (!service || servicePort === undefined) continue;
      check(set.objectOf(w), `${w.label} ${w.object.manifest.metadata.name}`, [endpoint(w)], backends(service, servicePort));
    }
  }
  for (const object of [...set.kind('ValidatingWebhookConfiguration'), ...set.kind('MutatingWebhookConfiguration')]) {
    for (const webhook of (object.manifest.webhooks ?? []) as any[]) {
      const ref = webhook.clientConfig?.service;
      const service = ref && set.service(ref.namespace, ref.name);
      if (service) check(object, `the API server (webhook ${webhook.name})`, FROM_OUTSIDE_PODS, backends(service, ref.port ?? 443));
    }
  }
  return problems;
}

/**
 * What Argo CD's project check does at sync: every object of a child Application must be of a
 * cluster-scoped kind its AppProject whitelists, or land in one of its destination namespaces,
 * and not be of a namespaced kind the project blacklists. Catches an upstream footprint
 * (charts/versions.ts) that a chart bump left stale.
 */
function projectAdmission(set: RenderedSet): Problem[] {
  const applications = new Map(set.kind('Application').map((o) => [o.manifest.metadata.name, o.manifest]));
  const projects = new Map(set.kind('AppProject').map((o) => [o.manifest.metadata.name, o.manifest]));
  const matches = (pattern: string | undefined, value: string) => pattern === undefined || pattern === '*' || pattern === value;
  const listed = (entries: any[] | undefined, group: string, kind: string) => (entries ?? []).some((e) => matches(e.group, group) && matches(e.kind, kind));
  return set.applied().flatMap((object) => {
    const application = applications.get(object.application);
    const project = application && projects.get(application.spec.project);
    if (!application || !project) return [];
    const { apiVersion, kind, metadata } = object.manifest;
    const group = apiGroup(apiVersion);
    const spec = project.spec;
    if (metadata.namespace === undefined) {
      return listed(spec.clusterResourceWhitelist, group, kind) && !listed(spec.clusterResourceBlacklist, group, kind)
        ? []
        : [set.problem('project', object, `project ${project.metadata.name} does not admit the cluster-scoped kind ${scopedKindName(apiVersion, kind)}`)];
    }
    const problems: string[] = [];
    if (!(spec.destinations ?? []).some((d: any) => matches(d.namespace, metadata.namespace!))) problems.push(`project ${project.metadata.name} has no destination namespace ${metadata.namespace}`);
    if (listed(spec.namespaceResourceBlacklist, group, kind) || (spec.namespaceResourceWhitelist && !listed(spec.namespaceResourceWhitelist, group, kind))) {
      problems.push(`project ${project.metadata.name} does not admit the kind ${scopedKindName(apiVersion, kind)}`);
    }
    return problems.map((message) => set.problem('project', object, message));
  });
}
