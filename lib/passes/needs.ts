/**
 * What each Application needs before it can become Healthy, and who provides it (the needs
 * model: lib/model/needs.ts, ADR 23). Needs come from the objects each service emits, rendered
 * as they are written — the CRDs and admission webhooks of its custom resources, the Secrets and
 * claims its pods read (env, envFrom, secret and projected volumes, imagePullSecrets), storage
 * classes, the issuer and the issuer's Secrets of its Certificates, the secret backend of its
 * ExternalSecrets — and, for its upstream chart, which synth does not render, from its
 * declarations: the Secrets it needs to start (`needSecret`), the CRD groups its sources use,
 * every `storageClass`/`storageClassName` in its Helm values. The graph turns each need into an
 * edge; `checkNeeds` proves the waves honour every one.
 */
import type { ApiObject } from 'cdk8s';
import { UserError } from '../util/errors';
import { LAYER_ORDER } from '../model/layers';
import { apiGroup, describeNeed, isBuiltInGroup, Need, needKey } from '../model/needs';
import type { Platform } from '../model/platform';
import type { HomelabService } from '../model/service';
import { containersOf, podSpecOf } from '../model/workloads';
import type { WaveMode } from './waves';

/** Who provides a need: a service's Application, or the operator by hand before the first sync. */
export interface Provision {
  /** undefined: the operator creates it by hand (no secret delivery in the environment). */
  readonly service?: string;
  /** What the provider does, for messages: `delivers`, `installs` ... */
  readonly how: string;
}

export interface NeedAnalysis {
  /** Per service name, what its Application needs, without duplicates, in a stable order. */
  readonly needs: ReadonlyMap<string, readonly Need[]>;
  /** Who provides a need; undefined when nothing does. */
  provider(need: Need): Provision | undefined;
  /** Per service name, the API groups of the custom resources it emits. */
  readonly customResourceGroups: ReadonlyMap<string, ReadonlySet<string>>;
}

type Manifest = Record<string, any>;

/**
 * Kinds whose needs and provisions are their apiVersion, kind and name alone: no pod, claim,
 * Secret reference or storage class in them. They are most of the objects (NetworkPolicies above
 * all), and rendering them twice per environment was a fifth of a synth.
 */
const IDENTITY_ONLY: ReadonlySet<string> = new Set([
  'v1/ConfigMap',
  'v1/Namespace',
  'v1/Service',
  'v1/ServiceAccount',
  'networking.k8s.io/v1/NetworkPolicy',
  'policy/v1/PodDisruptionBudget',
  'rbac.authorization.k8s.io/v1/ClusterRole',
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding',
  'rbac.authorization.k8s.io/v1/Role',
  'rbac.authorization.k8s.io/v1/RoleBinding',
  'monitoring.coreos.com/v1/PodMonitor',
  'monitoring.coreos.com/v1/PrometheusRule',
  'monitoring.coreos.com/v1/ServiceMonitor',
]);

/** What the analysis reads of an object: the whole manifest, or only its identity where that is all there is to read. */
function needsView(service: HomelabService, object: ApiObject): Manifest {
  if (!IDENTITY_ONLY.has(`${object.apiVersion}/${object.kind}`)) return service.render(object) as Manifest;
  return { apiVersion: object.apiVersion, kind: object.kind, metadata: { name: object.name, namespace: object.metadata.namespace } };
}

export function analyseNeeds(platform: Platform): NeedAnalysis {
  const rendered = new Map(platform.services.map((service) => [service, service.apiObjects.map((object) => needsView(service, object))]));
  const providers = providerIndex(platform, rendered);
  const lookup = lookups(platform, rendered);
  const needs = new Map(
    platform.services.map((service) => {
      const all = [...declaredNeeds(service), ...rendered.get(service)!.flatMap((manifest) => objectNeeds(manifest, service, lookup))];
      return [service.serviceName, [...new Map(all.map((need) => [needKey(need), need])).values()]];
    }),
  );
  const customResourceGroups = new Map(
    platform.services.map((service) => [
      service.serviceName,
      new Set(rendered.get(service)!.map((manifest) => apiGroup(manifest.apiVersion)).filter((group) => !isBuiltInGroup(group))),
    ]),
  );
  return { needs, provider: (need) => providers.get(needKey(need)), customResourceGroups };
}

/**
 * Fails, naming both Applications and the need, where a need is provided neither by the
 * Application itself (ordered inside its own sync) nor by one in an earlier wave.
 */
export function checkNeeds(platform: Platform, analysis: NeedAnalysis, waves: ReadonlyMap<string, number>, mode: WaveMode): void {
  const layerOf = new Map(platform.services.map((s) => [s.serviceName, s.layer]));
  const problems: string[] = [];
  for (const [consumer, needs] of analysis.needs) {
    const wave = waves.get(consumer)!;
    for (const need of needs) {
      const provision = analysis.provider(need);
      // A CRD group nobody installs: the graph has failed for an emitted one and warns for a declared one.
      if (!provision && need.kind === 'crd') continue;
      if (!provision) {
        const hint = need.kind === 'secret' ? 'declare it (needSecret, or the upstream or generated Secrets of the service that makes it)' : 'enable the service that provides it';
        problems.push(`waves: ${consumer} ${needPhrase(need)}, which no Application provides; ${hint}`);
        continue;
      }
      if (provision.service === undefined || provision.service === consumer || waves.get(provision.service)! < wave) continue;
      const provider = provision.service;
      const at = `${consumer} (wave ${wave}) ${needPhrase(need)}, which ${provider} ${provision.how} in wave ${waves.get(provider)}`;
      const [consumerLayer, providerLayer] = [layerOf.get(consumer)!, layerOf.get(provider)!];
      problems.push(
        mode === 'sequential' && LAYER_ORDER.indexOf(providerLayer) > LAYER_ORDER.indexOf(consumerLayer)
          ? `waves: ${at}: waves: sequential syncs layer ${consumerLayer} before layer ${providerLayer}; use waves: dependencies, or move ${consumer} to a layer after ${providerLayer}`
          : `waves: ${at}`,
      );
    }
  }
  if (problems.length > 0) throw new UserError(problems);
}

/** The consumer's side of a need in a message: `reads Secret n8n/n8n-encryption-key`. */
function needPhrase(need: Need): string {
  switch (need.kind) {
    case 'crd':
    case 'webhook':
      return `emits ${need.group} resources, needing ${describeNeed(need)}`;
    case 'secret':
      return `reads ${describeNeed(need)}`;
    case 'storage-class':
      return `claims volumes of ${describeNeed(need)}`;
    case 'pvc':
      return `mounts ${describeNeed(need)}`;
    case 'issuer':
      return `requests certificates from ${describeNeed(need)}`;
    case 'secret-backend':
      return `reads secrets from ${describeNeed(need)}`;
  }
}

/** What a service declares for its upstream sources. */
function declaredNeeds(service: HomelabService): Need[] {
  return [
    ...service.requiresCrdGroups.map((group): Need => ({ kind: 'crd', group })),
    ...service.secretNeeds.filter((s) => s.neededToStart).map((s): Need => ({ kind: 'secret', namespace: s.namespace, name: s.name })),
    ...service.charts.flatMap((release) => valueStorageClasses(release.values)).map((name): Need => ({ kind: 'storage-class', name })),
  ];
}

/** Storage classes named in Helm values: the charts' convention is a `storageClass` or `storageClassName` key. */
function valueStorageClasses(values: unknown): string[] {
  // Charts spell it either way; `-` (or empty) means the cluster's default class.
  return collect(values, (key, value) => ((key === 'storageClass' || key === 'storageClassName') && typeof value === 'string' ? (value && value !== '-' ? [value] : []) : undefined));
}

/**
 * What `pick` takes from every key of a nested value (mappings and lists): where it returns a
 * list, that is the key's contribution; where it returns undefined, the value is searched in turn.
 */
function collect(value: unknown, pick: (key: string, value: any) => string[] | undefined): string[] {
  const found: string[] = [];
  // Keys, not entries: a pair per key of every value of every chart was most of this pass's garbage.
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) visit(node[i]);
    } else if (typeof node === 'object' && node !== null) {
      const keys = Object.keys(node);
      for (let i = 0; i < keys.length; i++) {
        const child = (node as Record<string, unknown>)[keys[i]];
        const picked = pick(keys[i], child);
        if (picked) found.push(...picked);
        else visit(child);
      }
    }
  };
  visit(value);
  return found;
}

interface Lookups {
  /** Services whose admission webhooks validate a group. */
  readonly webhooks: ReadonlyMap<string, HomelabService>;
  /** SecretStores by `namespace/name`. */
  readonly stores: ReadonlyMap<string, Manifest>;
  /** ClusterIssuers by name, with the namespace of the service that emits them (cert-manager's). */
  readonly issuers: ReadonlyMap<string, { readonly manifest: Manifest; readonly namespace: string }>;
}

function lookups(platform: Platform, rendered: ReadonlyMap<HomelabService, Manifest[]>): Lookups {
  const webhooks = new Map<string, HomelabService>();
  const stores = new Map<string, Manifest>();
  const issuers = new Map<string, { manifest: Manifest; namespace: string }>();
  for (const service of platform.services) {
    for (const group of service.admissionWebhookGroups) webhooks.set(group, service);
    for (const manifest of rendered.get(service)!) {
      if (manifest.kind === 'SecretStore') stores.set(`${namespaceOf(manifest, service)}/${manifest.metadata.name}`, manifest);
      if (manifest.kind === 'ClusterIssuer') issuers.set(manifest.metadata.name, { manifest, namespace: service.namespaceName });
    }
  }
  return { webhooks, stores, issuers };
}

/**
 * What an object's pods and claims need, by its manifest: the analysis before secret delivery
 * and the one after see the same manifest object for every object that did not change in
 * between (HomelabService.render), and these needs depend on nothing else.
 */
const podAndClaimNeedsOf = new WeakMap<Manifest, readonly Need[]>();

function podAndClaimNeeds(manifest: Manifest, namespace: string): readonly Need[] {
  let needs = podAndClaimNeedsOf.get(manifest);
  if (!needs) {
    const pod = podSpecOf(manifest);
    needs = [...(pod ? podNeeds(pod, namespace) : []), ...storageClassNames(manifest).map((name): Need => ({ kind: 'storage-class', name }))];
    podAndClaimNeedsOf.set(manifest, needs);
  }
  return needs;
}

function objectNeeds(manifest: Manifest, service: HomelabService, lookup: Lookups): Need[] {
  const namespace = namespaceOf(manifest, service);
  const group = apiGroup(manifest.apiVersion);
  const needs: Need[] = [];
  if (!isBuiltInGroup(group)) {
    needs.push({ kind: 'crd', group });
    if (lookup.webhooks.has(group)) needs.push({ kind: 'webhook', group });
  }
  needs.push(...podAndClaimNeeds(manifest, namespace));
  if (manifest.kind === 'Certificate' && group === 'cert-manager.io' && manifest.spec.issuerRef?.kind === 'ClusterIssuer') {
    const name: string = manifest.spec.issuerRef.name;
    needs.push({ kind: 'issuer', name });
    // Issuing solves a challenge with the issuer's Secrets (a DNS-01 token), in cert-manager's namespace.
    const issuer = lookup.issuers.get(name);
    if (issuer) for (const secret of solverSecrets(issuer.manifest.spec)) needs.push({ kind: 'secret', namespace: issuer.namespace, name: secret });
  }
  if (manifest.kind === 'ExternalSecret' && group === 'external-secrets.io') {
    const store = lookup.stores.get(`${namespace}/${manifest.spec.secretStoreRef.name}`);
    const backend = store && serviceNamespace(storeServer(store));
    if (backend) needs.push({ kind: 'secret-backend', namespace: backend });
  }
  return needs;
}

/** The Secrets and claims a pod needs to start: optional references are not needs. */
function podNeeds(pod: Manifest, namespace: string): Need[] {
  const secret = (name: string): Need => ({ kind: 'secret', namespace, name });
  const containers: Manifest[] = containersOf(pod);
  return [
    ...containers.flatMap((c) => (c.env ?? []).map((e: Manifest) => e.valueFrom?.secretKeyRef).filter((ref: Manifest | undefined) => ref && !ref.optional).map((ref: Manifest) => secret(ref.name))),
    ...containers.flatMap((c) => (c.envFrom ?? []).map((e: Manifest) => e.secretRef).filter((ref: Manifest | undefined) => ref && !ref.optional).map((ref: Manifest) => secret(ref.name))),
    ...(pod.imagePullSecrets ?? []).map((ref: Manifest) => secret(ref.name)),
    ...(pod.volumes ?? []).flatMap((volume: Manifest): Need[] => [
      ...(volume.secret && !volume.secret.optional ? [secret(volume.secret.secretName)] : []),
      ...(volume.projected?.sources ?? []).filter((s: Manifest) => s.secret && !s.secret.optional).map((s: Manifest) => secret(s.secret.name)),
      ...(volume.persistentVolumeClaim ? [{ kind: 'pvc', namespace, name: volume.persistentVolumeClaim.claimName } as Need] : []),
    ]),
  ];
}

/** Who provides what: the objects every service emits, then the declarations for what synth does not render. */
function providerIndex(platform: Platform, rendered: ReadonlyMap<HomelabService, Manifest[]>): Map<string, Provision> {
  const providers = new Map<string, Provision>();
  const provide = (need: Need, provision: Provision) => {
    if (!providers.has(needKey(need))) providers.set(needKey(need), provision);
  };
  const generated = platform.services.flatMap((s) => s.generatesSecrets);
  for (const service of platform.services) {
    const by = (how: string): Provision => ({ service: service.serviceName, how });
    for (const group of service.installsCrdGroups) provide({ kind: 'crd', group }, by('installs'));
    for (const group of service.admissionWebhookGroups) provide({ kind: 'webhook', group }, by('serves'));
    provide({ kind: 'secret-backend', namespace: service.namespaceName }, by('serves'));
    for (const name of service.upstreamSecrets) provide({ kind: 'secret', namespace: service.namespaceName, name }, by('creates (upstream sources)'));
    for (const manifest of rendered.get(service)!) {
      const namespace = namespaceOf(manifest, service);
      const secret = (name: string, how: string) => provide({ kind: 'secret', namespace, name }, by(how));
      const group = apiGroup(manifest.apiVersion);
      if (manifest.kind === 'Secret' && group === '') secret(manifest.metadata.name, 'creates');
      if (manifest.kind === 'ExternalSecret' && group === 'external-secrets.io') secret(manifest.spec.target?.name ?? manifest.metadata.name, 'delivers');
      if (manifest.kind === 'Certificate' && group === 'cert-manager.io') secret(manifest.spec.secretName, 'issues');
      if (manifest.kind === 'ClusterIssuer') provide({ kind: 'issuer', name: manifest.metadata.name }, by('creates'));
      if (manifest.kind === 'StorageClass') provide({ kind: 'storage-class', name: manifest.metadata.name }, by('creates'));
      if (manifest.kind === 'PersistentVolumeClaim') provide({ kind: 'pvc', namespace, name: manifest.metadata.name }, by('creates'));
      for (const rule of generated.filter((g) => g.group === group && g.kind === manifest.kind)) {
        for (const name of rule.secretNames(manifest.metadata.name)) secret(name, `has generated (from ${manifest.kind} ${manifest.metadata.name})`);
      }
    }
  }
  // Declared Secrets that nothing delivers: the operator creates them before the first sync.
  for (const need of platform.services.flatMap((s) => s.secretNeeds)) provide({ kind: 'secret', namespace: need.namespace, name: need.name }, { how: 'by hand' });
  return providers;
}

function namespaceOf(manifest: Manifest, service: HomelabService): string {
  return manifest.metadata?.namespace ?? service.namespaceName;
}


/** Every `storageClassName` in an object: claims, claim templates, operators' persistence settings. */
function storageClassNames(value: unknown): string[] {
  return collect(value, (key, v) => (key === 'storageClassName' && typeof v === 'string' && v ? [v] : undefined));
}

/** The Secrets an issuer's solvers reference (`apiTokenSecretRef` ...); its account key it generates itself. */
function solverSecrets(spec: Manifest): string[] {
  return collect(spec.acme?.solvers ?? [], (key, v) => (key.endsWith('SecretRef') && typeof v?.name === 'string' ? [v.name] : undefined));
}

/** The server URL of a SecretStore's provider (`provider.vault.server`). */
function storeServer(store: Manifest): string | undefined {
  return Object.values(store.spec?.provider ?? {}).map((p) => (p as Manifest).server).find((s) => typeof s === 'string');
}

/** The namespace of an in-cluster address, `http://<service>.<namespace>.svc:port`. */
function serviceNamespace(url: string | undefined): string | undefined {
  return url?.match(/^[a-z]+:\/\/[^./:]+\.([^./:]+)\.svc\b/)?.[1];
}
