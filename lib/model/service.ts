/**
 * The base every homelab service extends. It gives all of them one vocabulary: the layer
 * they belong to, the services they depend on (derived from the construct references in
 * their props), optional upstream sources (a Helm chart with typed values, kustomizations
 * at pinned tags), the CRD groups they install or need, the capacity they request, their
 * namespace with its Pod Security level, and their checkpoint.
 */
import { ApiObject, Chart, JsonPatch } from 'cdk8s';
import { k8s } from 'cdk8s-plus-34';
import { Construct } from 'constructs';
import { CHECKPOINT_COMPONENT, CHECKPOINT_PODS, type Checkpoint, type CheckpointProps } from './checkpoint';
import { ContainerException, EXCEPTION_ANNOTATION, PodSecurityException, PodSecurityLevel } from './pod-security';
import { Layer } from './layers';
import { jobPodLabels, selectorLabels, serviceLabels } from './labels';
import type { Platform } from './platform';
import type { ComputeMode, ResourceDemand } from './capacity';
import type { GitManifests, HelmChartVersion, HelmRelease, KustomizeSource } from './sources';
import type { AlertRule, Dashboard, MetricsEndpoint } from './monitoring';
import type { Exposure } from './exposure';
import type { Egress, ServedPort } from './network';
import { S3_CREDENTIAL_KEYS, SecretNeed, SecretRef, SecretTemplate } from './secrets';
import type { BucketNeed, BucketRef, BucketSettings, ObjectStore } from './object-storage';
import { databaseRestoreCheckJob, type DatabaseBackup, type DatabaseNeed, type DatabaseProvider, type DatabaseRef, type DatabaseSettings } from './databases';
import type { Recovery } from './recovery';
import type { GeneratedSecrets } from './needs';
import { KUBERNETES_VERSION } from './kubernetes';
import { RenderedManifests } from './rendered-manifests';
import { BACKUP_CREDENTIALS } from './backup';
import { issuerEgress, OIDC_CLIENT_SECRET_KEY, oidcClientSecretPurpose, type OidcIssuer, type SingleSignOnProvider } from './single-sign-on';

/** A service's Namespace: its name, its labels (Pod Security among them) and the reason of a Pod Security exception. */
export interface NamespaceMetadata {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** A field Argo CD must not diff, for drift that upstream charts cause by design. */
export interface IgnoreDifference {
  readonly group?: string;
  readonly kind: string;
  readonly name?: string;
  readonly jsonPointers?: readonly string[];
  readonly jqPathExpressions?: readonly string[];
}

export interface ServiceSettings {
  readonly layer: Layer;
  readonly namespace: string;
  /**
   * The namespace's Pod Security level when the service cannot run `restricted`, with the
   * reason (also an annotation on the namespace). @default restricted
   */
  readonly podSecurity?: PodSecurityException;
  /**
   * What the containers we write for the service may leave out of the restricted context, and
   * why (test/invariants.test.ts holds every container to it). @default nothing
   */
  readonly containerException?: ContainerException;
  /** API groups whose CRDs this service installs (a service emitting them depends on it). @default none */
  readonly installsCrdGroups?: readonly string[];
  /**
   * Upstream chart and values, made with `helmRelease()`. Values that reference the
   * service's own declarations (a `needSecret` handle) go through `installChart()` after
   * `super()` instead. @default no chart
   */
  readonly helm?: HelmRelease;
  /**
   * Further upstream charts in the same Application and namespace, after `helm`: a component
   * that must run beside the main chart's (an operator's plugin, found by labels in the
   * operator's namespace). @default none
   */
  readonly companionCharts?: readonly HelmRelease[];
  /** Upstream kustomizations from Git at pinned tags (KUSTOMIZATIONS in charts/versions.ts). @default none */
  readonly kustomizations?: readonly KustomizeSource[];
  /** Upstream directories of plain manifests from Git at pinned tags (MANIFESTS in charts/versions.ts). @default none */
  readonly manifests?: readonly GitManifests[];
  /**
   * CRD groups the upstream sources create resources of (e.g. cert-manager Issuers in an
   * operator's manifests): the service depends on the service installing them, and synth
   * warns while no enabled service does. @default none
   */
  readonly requiresCrdGroups?: readonly string[];
  /** @default none */
  readonly ignoreDifferences?: readonly IgnoreDifference[];
  /**
   * One of the operator's own apps rather than a part of the platform: its Application runs in
   * the environment's apps project, which admits no cluster-scoped kind and only the apps'
   * namespaces, so its Namespace is not in its own manifests but created by the platform
   * (lib/passes/app-of-apps.ts, docs/adr/0022). @default false
   */
  readonly tenant?: boolean;
  /**
   * API groups whose resources its admission webhooks validate with `failurePolicy: Fail`: a
   * service emitting them needs this one up first. @default none
   */
  readonly admissionWebhookGroups?: readonly string[];
  /** Secrets its operator generates from the custom resources it reconciles. @default none */
  readonly generatesSecrets?: readonly GeneratedSecrets[];
  /** Secrets its upstream sources create in its namespace (not rendered at synth) that pods read. @default none */
  readonly upstreamSecrets?: readonly string[];
  /**
   * A one-time step of the operator without which the Application never becomes Healthy (Vault:
   * initialise and unseal), shown in docs/platform.md. Only the services that need this one sync
   * after it; every other syncs in its wave or before (ADR 23). @default none
   */
  readonly awaitsOperator?: string;
}

const SERVICE_BRAND = Symbol.for('homelab.HomelabService');

export abstract class HomelabService extends Chart {
  /**
   * Not `instanceof`: cdk8s' Chart defines Symbol.hasInstance to answer true for every chart
   * (the app of apps' charts included), so services carry a brand of their own.
   */
  static isHomelabService(x: unknown): x is HomelabService {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[SERVICE_BRAND] === true;
  }

  readonly serviceName: string;
  readonly environment: string;
  readonly layer: Layer;
  readonly namespaceName: string;
  readonly podSecurityException?: PodSecurityException;
  readonly containerException?: ContainerException;
  readonly installsCrdGroups: readonly string[];
  readonly kustomizations: readonly KustomizeSource[];
  readonly manifests: readonly GitManifests[];
  readonly requiresCrdGroups: readonly string[];
  readonly ignoreDifferences: readonly IgnoreDifference[];
  readonly tenant: boolean;
  /** The service's Namespace: in its own manifests, or (a tenant's) created by the platform. */
  readonly namespaceMetadata: NamespaceMetadata;
  readonly admissionWebhookGroups: readonly string[];
  readonly generatesSecrets: readonly GeneratedSecrets[];
  readonly upstreamSecrets: readonly string[];
  readonly awaitsOperator?: string;
  private readonly dependencySet: Set<HomelabService>;
  private upstreamChart?: HelmRelease;
  private readonly companionChartList: readonly HelmRelease[];
  private readonly referenceSet: ReadonlySet<HomelabService>;
  private checkpointConstruct?: Checkpoint;
  private readonly demandList: ResourceDemand[] = [];
  private computeModeDeclared?: ComputeMode;
  private readonly renderPatches = new Map<ApiObject, JsonPatch[]>();
  private readonly renderedManifests = new RenderedManifests();
  private readonly metricsList: MetricsEndpoint[] = [];
  private readonly alertList: AlertRule[] = [];
  private readonly dashboardList: Dashboard[] = [];
  private readonly endToEndList: EndToEndCheck[] = [];
  private readonly finalStepList: FinalStep[] = [];
  private readonly secretList: SecretNeed[] = [];
  private readonly bucketList: BucketNeed[] = [];
  private readonly recoveryList: Recovery[] = [];
  private readonly exposureList: Exposure[] = [];
  private readonly servedPortList: ServedPort[] = [];
  private readonly apiServerPortList: ServedPort[] = [];
  private readonly publicPortList: ServedPort[] = [];
  private readonly egressList: Egress[] = [];

  /**
   * @param props the subclass's own props: every HomelabService in them (directly or in
   *   an array) becomes a dependency, so wiring a reference is declaring the dependency.
   */
  protected constructor(scope: Platform, name: string, props: object, settings: ServiceSettings) {
    super(scope, name, {
      namespace: settings.namespace,
      disableResourceNameHashes: true,
      labels: serviceLabels({ name, environment: scope.environment }, settings.layer),
    });
    Object.defineProperty(this, SERVICE_BRAND, { value: true });
    this.serviceName = name;
    this.environment = scope.environment;
    this.layer = settings.layer;
    this.namespaceName = settings.namespace;
    const exception = settings.podSecurity;
    this.podSecurityException = exception;
    this.containerException = settings.containerException;
    this.installsCrdGroups = settings.installsCrdGroups ?? [];
    this.upstreamChart = settings.helm;
    this.companionChartList = settings.companionCharts ?? [];
    this.kustomizations = settings.kustomizations ?? [];
    this.manifests = settings.manifests ?? [];
    this.requiresCrdGroups = settings.requiresCrdGroups ?? [];
    this.ignoreDifferences = settings.ignoreDifferences ?? [];
    this.tenant = settings.tenant ?? false;
    this.admissionWebhookGroups = settings.admissionWebhookGroups ?? [];
    this.generatesSecrets = settings.generatesSecrets ?? [];
    this.upstreamSecrets = settings.upstreamSecrets ?? [];
    this.awaitsOperator = settings.awaitsOperator;
    this.referenceSet = new Set(serviceReferences(props));
    this.dependencySet = new Set(this.referenceSet);
    this.namespaceMetadata = {
      name: settings.namespace,
      // The chart's labels, which cdk8s adds to the Namespace only where the service emits it itself.
      labels: { ...this.labels, ...podSecurityLabels(exception?.level ?? 'restricted') },
      annotations: exception ? { [EXCEPTION_ANNOTATION]: exception.reason } : undefined,
    };
    if (!this.tenant) new k8s.KubeNamespace(this, 'namespace', { metadata: this.namespaceMetadata });
    scope.register(this);
  }

  /** The upstream chart Argo CD installs with the service's own manifests. */
  get helm(): HelmRelease | undefined {
    return this.upstreamChart;
  }

  /** Every upstream chart of the service, in its Application's order: the chart, then its companions. */
  get charts(): readonly HelmRelease[] {
    return [...(this.upstreamChart ? [this.upstreamChart] : []), ...this.companionChartList];
  }

  /** Every pinned upstream source of the service, in its Application's order: the charts, the kustomizations, the plain manifests. */
  get upstreamSources(): readonly (HelmChartVersion | KustomizeSource | GitManifests)[] {
    return [...this.charts.map((release) => release.chart), ...this.kustomizations, ...this.manifests];
  }

  /**
   * Sets the upstream chart once the service exists: for values made from its own
   * declarations, such as the Secret a `needSecret` handle names.
   */
  protected installChart(release: HelmRelease): void {
    if (this.upstreamChart) throw new Error(`${this.serviceName} already installs the chart ${this.upstreamChart.chart.chart}`);
    this.upstreamChart = release;
  }

  /** Labels for a component's resources (overrides the chart's component label). */
  labelsFor(component: string): Record<string, string> {
    return serviceLabels({ name: this.serviceName, environment: this.environment }, component);
  }

  /** Labels for the pods of the service's Job `job` (see jobPodLabels: no Service of the service selects them). */
  jobPodLabelsFor(job: string, component: string): Record<string, string> {
    return jobPodLabels({ name: this.serviceName, environment: this.environment }, job, component);
  }

  /**
   * Selects the pods of this service's end-to-end check `job` alone (the verification runs it;
   * its instance label is the Job's), not every checkpoint here.
   */
  protected endToEndCheckPods(job: string): Record<string, string> {
    return { ...CHECKPOINT_PODS, 'app.kubernetes.io/instance': this.jobPodLabelsFor(job, CHECKPOINT_COMPONENT)['app.kubernetes.io/instance'] };
  }

  /** Pod selector labels for a component: explicit, stable across construct renames. */
  selectorFor(component: string): Record<string, string> {
    return selectorLabels({ name: this.serviceName, environment: this.environment }, component);
  }

  /**
   * Declares what `replicas` pods of `workload` request (CPU, memory, and `gpus` each), for the
   * capacity check, and which nodes they may run on (`placement`, @default by whether they request
   * GPUs, placementOf).
   */
  protected requestCapacity(
    workload: string,
    replicas: number,
    requests: { readonly cpu: string; readonly memory: string },
    options: Pick<ResourceDemand, 'gpus' | 'placement'> = {},
  ): void {
    const { gpus, placement } = options;
    this.demandList.push({
      service: this.serviceName,
      workload,
      replicas,
      cpu: requests.cpu,
      memory: requests.memory,
      ...(gpus !== undefined && { gpus }),
      ...(placement !== undefined && { placement }),
    });
  }

  /**
   * JSON patches applied to an object's final manifest, after cdk8s' own serialisation, for
   * fields cdk8s-plus cannot express (extended resources such as `nvidia.com/gpu`): patches
   * added with `ApiObject.addJsonPatch` go through the typed serialisation, which drops them.
   */
  protected patchManifest(object: ApiObject, ...patches: JsonPatch[]): void {
    this.renderPatches.set(object, [...(this.renderPatches.get(object) ?? []), ...patches]);
  }

  /**
   * The manifest of one of this service's objects, as written to k8s/: rendered once and reused
   * while the object's metadata and patches stay as they were (lib/model/rendered-manifests.ts),
   * so treat it as read-only; `fresh` renders it again regardless.
   */
  render(object: ApiObject, { fresh = false }: { readonly fresh?: boolean } = {}): any {
    return this.renderedManifests.manifestOf(object, this.renderPatches.get(object) ?? [], fresh);
  }

  /** Declares a metrics endpoint: scraped, and alerted on when down, wherever monitoring is enabled. */
  protected exposeMetrics(endpoint: MetricsEndpoint): void {
    this.metricsList.push(endpoint);
  }

  /** Declares alert rules for this service (PromQL parsed by the tests). */
  protected addAlerts(...rules: AlertRule[]): void {
    this.alertList.push(...rules);
  }

  /**
   * Declares a check across services that only the end-to-end verification runs, as a Job in
   * this service's namespace (reaching what this service may reach): beyond the checkpoint,
   * which proves the service itself.
   */
  protected addEndToEndCheck(job: string, check: Omit<CheckpointProps, 'hookWave'>, options: Pick<EndToEndCheck, 'account' | 'access' | 'scratchAccess'> = {}): void {
    if (options.scratchAccess && options.account === undefined) throw new Error(`${this.serviceName}: the end-to-end check ${job} has scratchAccess but no account to grant it to`);
    if (options.access && options.account !== undefined) throw new Error(`${this.serviceName}: the end-to-end check ${job} runs as ${options.account}: access would go to an account of its own`);
    this.endToEndList.push({
      job,
      check,
      ...(options.account !== undefined && { account: options.account }),
      ...(options.access !== undefined && { access: options.access }),
      ...(options.scratchAccess !== undefined && { scratchAccess: options.scratchAccess }),
    });
  }

  get endToEndChecks(): readonly EndToEndCheck[] {
    return this.endToEndList;
  }

  /**
   * Declares a step the final Application (the verification) runs with its checks, once every
   * other service has synced: configuration that needs services of later waves than this
   * service's (and that this service's own sync must not wait for).
   */
  protected addFinalStep(step: FinalStep): void {
    this.finalStepList.push(step);
  }

  get finalSteps(): readonly FinalStep[] {
    return this.finalStepList;
  }

  /** Declares a Grafana dashboard for this service, provisioned wherever Grafana runs. */
  protected addDashboard(dashboard: Dashboard): void {
    this.dashboardList.push(dashboard);
  }

  get dashboards(): readonly Dashboard[] {
    return this.dashboardList;
  }

  get metricsEndpoints(): readonly MetricsEndpoint[] {
    return this.metricsList;
  }

  get alertRules(): readonly AlertRule[] {
    return this.alertList;
  }

  /**
   * Declares a Secret this service needs (name and key names): delivered from Vault by an
   * ExternalSecret where the platform has them, else created by the operator. Consumers
   * reference its keys through the returned handle.
   * @param options whether it is needed to start (false for a Secret read only when a feature
   *   is used — a DNS-01 token when issuing, backup credentials when backing up — which then never
   *   holds the service back until Vault is unsealed), generated or rendered: SecretOptions
   */
  protected needSecret(name: string, keys: readonly string[], purpose: string, options: SecretOptions = {}): SecretRef {
    if (keys.length === 0) throw new Error(`${this.serviceName}: secret ${name} declares no keys`);
    if (options.template && (options.generated || Object.keys(options.template.data).sort().join() !== [...new Set(keys)].sort().join())) {
      throw new Error(`${this.serviceName}: secret ${name}: a template renders exactly the declared keys and is never generated`);
    }
    if (this.secretList.some((s) => s.name === name)) throw new Error(`${this.serviceName}: secret ${name} declared twice`);
    const need: SecretNeed = {
      service: this.serviceName,
      namespace: this.namespaceName,
      name,
      keys: [...new Set(keys)].sort(),
      purpose,
      neededToStart: options.neededToStart ?? true,
      ...(options.generated && { generated: true }),
      ...(options.template && { template: options.template }),
      ...(options.labels && { labels: { ...options.labels } }),
    };
    this.secretList.push(need);
    return new SecretRef(need);
  }

  /**
   * Declares the Secret `name` in this namespace with the keys of the environment's backup target
   * (S3_CREDENTIAL_KEYS), rendered from the one copy in the secret backend
   * (BACKUP_CREDENTIALS), plus `fixed` keys of known, non-secret text (Longhorn's endpoint). Read
   * only when a backup runs: it never holds the service back.
   */
  protected needBackupCredentials(name: string, purpose: string, fixed: Readonly<Record<string, string>> = {}): SecretRef {
    const data: Record<string, string> = { ...fixed };
    for (const key of S3_CREDENTIAL_KEYS) data[key] = `{{ index . "${key}" }}`;
    const inputs = S3_CREDENTIAL_KEYS.map((key) => ({ variable: key, from: BACKUP_CREDENTIALS, key }));
    return this.needSecret(name, Object.keys(data), purpose, { neededToStart: false, template: { inputs, data } });
  }

  /**
   * Declares the buckets this service keeps objects in, in the platform's object store (which
   * the service must also hold in its props: the reference is the dependency). The service gets
   * one identity for all of them, with keys generated in Vault and delivered as the Secret
   * `<service>-bucket-credentials` (S3_CREDENTIAL_KEYS); the identity may use these buckets and
   * no other. The end-to-end verification proves both in the service's namespace. Call once.
   */
  protected needBuckets(store: ObjectStore, buckets: readonly BucketSettings[], purpose: string): BucketRef[] {
    if (this.bucketList.length > 0) throw new Error(`${this.serviceName}: buckets declared twice`);
    if (buckets.length === 0) throw new Error(`${this.serviceName}: no bucket declared`);
    const credentials = this.needSecret(`${this.serviceName}-bucket-credentials`, S3_CREDENTIAL_KEYS, `keys of its identity in the object store (${purpose}); generated in Vault by its configurator, nothing to do`, {
      generated: true,
    });
    for (const bucket of buckets) this.bucketList.push({ ...bucket, service: this.serviceName, namespace: this.namespaceName, purpose, credentials: credentials.need });
    const check = store.accessCheck(this.bucketList, credentials);
    this.addEndToEndCheck(`${this.serviceName}-buckets`, check);
    return buckets.map((bucket) => ({ bucket: bucket.name, endpoint: store.endpoint, region: store.region, credentials }));
  }

  /**
   * Logs this service's own users in as an OIDC client of the single sign-on service (from its
   * OidcLoginService.logInThrough, or a custom app's `oidc` exposure): declares the client Secret (key OIDC_CLIENT_SECRET_KEY,
   * generated in the secret backend; not needed to start unless `client.neededToStart` says so:
   * a platform UI's local login works before),
   * registers the client, and lets `client.pods` reach the issuer. The service then configures
   * its login with what this returns.
   */
  protected registerOidcLogin(provider: SingleSignOnProvider, client: OidcLoginClient): { readonly issuer: OidcIssuer; readonly clientSecret: SecretRef } {
    const clientSecret = this.needSecret(client.secretName, [OIDC_CLIENT_SECRET_KEY], oidcClientSecretPurpose(client.displayName), {
      generated: true,
      neededToStart: client.neededToStart ?? false,
      ...(client.secretLabels && { labels: client.secretLabels }),
    });
    const issuer = provider.registerOidcClient(this, { clientId: client.clientId, displayName: client.displayName, redirectUris: client.redirectUris, clientSecret });
    this.allowEgress(issuerEgress(client.pods, issuer, client.podsName ?? client.displayName));
    return { issuer, clientSecret };
  }

  /**
   * Declares a PostgreSQL database of this service (the provider must also be in its props:
   * the reference is the dependency). The provider emits its cluster into this service's
   * Application, a sync wave before its workloads, and its operator generates the owner's
   * credentials in this namespace (`DatabaseRef.credentialsSecret`). The end-to-end
   * verification proves they connect and run a query.
   */
  protected needDatabase(provider: DatabaseProvider, settings: DatabaseSettings): DatabaseRef {
    const need: DatabaseNeed = { ...settings, service: this.serviceName, namespace: this.namespaceName };
    const credentials = provider.backupCredentials(need);
    const ref = provider.emitDatabase(this, need, credentials && this.needBackupCredentials(credentials.name, credentials.purpose, credentials.fixed));
    this.requestCapacity(`${ref.cluster}-postgres`, settings.instances, settings.resources.requests);
    // The operator asks each instance manager for its status (every instance here: the restore
    // check's scratch clusters' too, and other databases'); the instances watch their Cluster.
    if (!this.servedPortList.some((served) => served.port === provider.instanceManagerPort && served.clients?.includes(provider))) {
      this.serveClients({ port: provider.instanceManagerPort, podSelector: provider.instancePods, clients: [provider] });
    }
    this.callApiServer(ref.podSelector, `the instance managers of database ${ref.cluster} read their Cluster and report its status`, `api-server-${ref.cluster}`);
    this.addEndToEndCheck(`${ref.cluster}-connect`, provider.connectionCheck(need, ref));
    this.exposeMetrics(ref.metrics);
    this.addAlerts(...ref.alerts);
    if (ref.backup) this.backUpDatabase(ref, ref.backup);
    return ref;
  }

  /**
   * What a database archived to the backup target adds here: the sidecar in each instance, the
   * way out to the target, the runbook's step, the alerts, and the restore check with its scratch
   * cluster (which the operator manages like the database).
   */
  private backUpDatabase(ref: DatabaseRef, backup: DatabaseBackup): void {
    const { cluster } = ref;
    this.requestCapacity(`${cluster}-backup-sidecar`, ref.instances, backup.sidecarRequests);
    this.requestCapacity(`${backup.scratchCluster}-postgres`, 1, backup.scratchRequests);
    const toTarget = (name: string, podSelector: Readonly<Record<string, string>>) =>
      this.allowEgress({
        name,
        podSelector,
        to: { kind: 'external', destinations: [backup.destination] },
        reason: `database ${cluster}: WAL and base backups to ${backup.location}, and recoveries from there`,
      });
    // The database's pods (the instances and their jobs) and the restore check's scratch cluster.
    toTarget(`${cluster}-backup-target`, ref.podSelector);
    toTarget(`${cluster}-backup-target-1`, backup.scratchPodSelector);
    this.callApiServer(backup.scratchPodSelector, `the restore check's scratch cluster of database ${cluster} reads its Cluster`, `api-server-${backup.scratchCluster}`);
    const job = databaseRestoreCheckJob(cluster);
    this.callApiServer(this.endToEndCheckPods(job), `the restore check of database ${cluster} creates and deletes its scratch cluster`, `api-server-${job}`);
    this.addEndToEndCheck(job, backup.restoreCheck, { access: backup.restoreAccess });
    this.declareRecovery(backup.recovery);
    this.addAlerts(...backup.alerts);
  }

  /** Declares data of this service that Git cannot rebuild: where its backups go and how to restore them (the disaster-recovery runbook). */
  protected declareRecovery(recovery: Recovery): void {
    this.recoveryList.push(recovery);
  }

  get recoveries(): readonly Recovery[] {
    return this.recoveryList;
  }

  /** The buckets the service declared (needBuckets). */
  get bucketNeeds(): readonly BucketNeed[] {
    return this.bucketList;
  }

  /** Declares a Service port reachable from outside as `<subdomain>.<domain>` (through Traefik). */
  protected expose(exposure: Exposure): void {
    if (this.exposureList.some((e) => e.subdomain === exposure.subdomain)) {
      throw new Error(`${this.serviceName}: subdomain ${exposure.subdomain} exposed twice`);
    }
    this.exposureList.push(exposure);
  }

  /** Declares ports the services depending on this one connect to (their NetworkPolicy allow rules). */
  protected serveClients(...ports: ServedPort[]): void {
    this.servedPortList.push(...ports);
  }

  /** Declares ports the Kubernetes API server calls: admission webhooks, conversion, aggregated APIs. */
  protected serveApiServer(...ports: ServedPort[]): void {
    this.apiServerPortList.push(...ports);
  }

  /** Declares ports any client may reach, from outside the cluster too: the platform's entry points (Traefik's web/websecure). */
  protected servePublic(...ports: ServedPort[]): void {
    this.publicPortList.push(...ports);
  }

  /**
   * Declares where pods of this service connect beyond what the graph implies (the API server,
   * the nodes, the internet): their egress allow rules where egress is restricted. References,
   * scraping, routing and DNS need no declaration.
   */
  protected allowEgress(...egress: Egress[]): void {
    this._allowEgress(...egress);
  }

  /**
   * Declares pods that call the Kubernetes API server (operators, controllers, watchers): the
   * egress rule `egress-<name>`. @param name @default 'api-server'
   */
  protected callApiServer(podSelector: Readonly<Record<string, string>>, reason: string, name = 'api-server'): void {
    this.allowEgress({ name, podSelector, to: { kind: 'api-server' }, reason });
  }

  /** @internal for the model's own constructs (a checkpoint reading the cluster). */
  _allowEgress(...egress: Egress[]): void {
    for (const e of egress) {
      if (this.egressList.some((declared) => declared.name === e.name)) throw new Error(`${this.serviceName}: egress ${e.name} declared twice`);
      this.egressList.push(e);
    }
  }

  get egress(): readonly Egress[] {
    return this.egressList;
  }

  get publicPorts(): readonly ServedPort[] {
    return this.publicPortList;
  }

  /** Services this one needs first: every HomelabService found in its props, plus those it orders itself after (`dependOn`). */
  get dependencies(): ReadonlySet<HomelabService> {
    return this.dependencySet;
  }

  /**
   * The services in this one's props: the ones it connects to, so each of their served ports
   * gets an allow rule from this service's namespace (lib/passes/network-policies.ts). `dependOn`
   * orders services but implies no traffic.
   */
  get references(): ReadonlySet<HomelabService> {
    return this.referenceSet;
  }

  /** Syncs after `service` without connecting to it (no NetworkPolicy allow rule follows). */
  protected dependOn(service: HomelabService): void {
    if (service === this) throw new Error(`${this.serviceName} cannot depend on itself`);
    this.dependencySet.add(service);
  }

  get secretNeeds(): readonly SecretNeed[] {
    return this.secretList;
  }

  get exposures(): readonly Exposure[] {
    return this.exposureList;
  }

  get servedPorts(): readonly ServedPort[] {
    return this.servedPortList;
  }

  /** Declares whether the service runs on GPUs or on CPUs only here, for the capacity check and the summary. */
  protected declareComputeMode(mode: ComputeMode['mode'], detail: string): void {
    this.computeModeDeclared = { service: this.serviceName, mode, detail };
  }

  /** How a service that can use GPUs runs in this environment; undefined for the others. */
  get computeMode(): ComputeMode | undefined {
    return this.computeModeDeclared;
  }

  get apiServerPorts(): readonly ServedPort[] {
    return this.apiServerPortList;
  }

  /** What the service's long-running workloads request (checkpoint Jobs are not counted). */
  get demands(): readonly ResourceDemand[] {
    return this.demandList;
  }

  /** The validation step Argo CD runs after every sync (a PostSync hook). */
  get checkpoint(): Checkpoint | undefined {
    return this.checkpointConstruct;
  }

  /** @internal called by the Checkpoint construct. */
  _registerCheckpoint(checkpoint: Checkpoint): void {
    if (this.checkpointConstruct) throw new Error(`${this.serviceName} already has a checkpoint`);
    this.checkpointConstruct = checkpoint;
  }

  /** All Kubernetes objects this service writes itself (its folder under k8s/<env>/). */
  get apiObjects(): ApiObject[] {
    return apiObjectsOf(this);
  }

  /** The service a construct belongs to. */
  static of(construct: Construct): HomelabService {
    const chart = Chart.of(construct);
    if (!HomelabService.isHomelabService(chart)) throw new Error(`${construct.node.path} is not inside a HomelabService`);
    return chart;
  }
}

function podSecurityLabels(level: PodSecurityLevel): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const mode of ['enforce', 'audit', 'warn']) {
    labels[`pod-security.kubernetes.io/${mode}`] = level;
    labels[`pod-security.kubernetes.io/${mode}-version`] = KUBERNETES_VERSION;
  }
  return labels;
}

/** HomelabService instances among the values of `props` (one level, arrays included). */
function serviceReferences(props: object): HomelabService[] {
  return Object.values(props).flatMap((value) =>
    (Array.isArray(value) ? value : [value]).filter(HomelabService.isHomelabService),
  );
}

/** The objects of a chart itself, not of charts nested in it. */
export function apiObjectsOf(chart: Chart): ApiObject[] {
  return chart.node.findAll().filter((c): c is ApiObject => c instanceof ApiObject && Chart.of(c) === chart);
}

/** A service's own login as an OIDC client (HomelabService.registerOidcLogin). */
export interface OidcLoginClient {
  /** The client Secret's name, in the service's namespace. */
  readonly secretName: string;
  readonly clientId: string;
  /** The name users see, e.g. `Argo CD`. */
  readonly displayName: string;
  readonly redirectUris: readonly string[];
  /** The pods that call the issuer (discovery, code exchange). */
  readonly pods: Readonly<Record<string, string>>;
  /** What those pods are, in the egress rule's reason. @default displayName */
  readonly podsName?: string;
  /** Labels the client Secret must carry. @default none */
  readonly secretLabels?: Readonly<Record<string, string>>;
  /** Whether the pods read the Secret at start (SecretOptions.neededToStart). @default false: read only when someone signs in */
  readonly neededToStart?: boolean;
}

/** How a declared Secret's values come about (HomelabService.needSecret). */
export interface SecretOptions {
  /**
   * Whether the service's Application needs the Secret to become Healthy (a pod or the chart
   * reads it at start) @default true; false for a Secret read only when a feature is used
   */
  readonly neededToStart?: boolean;
  /** Random values the secret backend writes once (SecretNeed.generated). @default false */
  readonly generated?: boolean;
  /** Values rendered from other services' Secrets (SecretNeed.template). @default none */
  readonly template?: SecretTemplate;
  /** Labels the Secret must carry (SecretNeed.labels). @default none */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * A Job the final Application runs, in the declaring service's namespace, with the end-to-end
 * checks (HomelabService.addFinalStep): its objects join that Application's tree.
 */
export interface FinalStep {
  /** The Job's name: the verification's report lists it with the checks. */
  readonly job: string;
  readonly description: string;
  /** The Job's container whose log the report shows when the Job fails. */
  readonly container: string;
  /**
   * Emits the Job, a PostSync hook of `hookWave` kept until the next sync (the report reads
   * it), and the objects it needs, into `scope` (in the final Application's tree).
   */
  emit(scope: Construct, hookWave: number): void;
}

/** A check the end-to-end verification runs in the declaring service's namespace. */
export interface EndToEndCheck {
  /** The Job's name. */
  readonly job: string;
  readonly check: Omit<CheckpointProps, 'hookWave'>;
  /**
   * A ServiceAccount of this service, in its namespace, that the Job runs as (the script then has
   * `kube_get`): the service keeps its RBAC in its own Application. @default none: no API token
   */
  readonly account?: string;
  /**
   * Rules beyond reading in this service's namespace, for a check that makes scratch objects
   * there: the verification runs it as an account of its own in that namespace, bound to these
   * (and to the check's `readsCluster`; `kube_get` takes curl's `-X`). @default none
   */
  readonly access?: readonly k8s.PolicyRule[];
  /**
   * Rules the verification grants `account` in the verification's own namespace (Pod Security
   * restricted), for a check whose scratch pods must not run in this service's namespace (one at
   * `privileged` or `baseline` would admit pods that are not restricted). The script finds that
   * namespace in `$SCRATCH_NAMESPACE`. @default none: the account has only its service's rights
   */
  readonly scratchAccess?: readonly k8s.PolicyRule[];
}
