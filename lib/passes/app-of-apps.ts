/**
 * The Argo CD side of an environment: in bootstrap/ (applied once with kubectl) the root
 * Application and its own project; in apps/ (synced by the root) the projects of the
 * platform's services and of the operator's apps, each admitting exactly what its
 * Applications deploy, the Application creating the apps' Namespaces, and one child
 * Application per service, ordered by sync wave (docs/adr/0002, 0022).
 */
import { Chart } from 'cdk8s';
import { k8s } from 'cdk8s-plus-34';
import { Construct } from 'constructs';
import {
  Application,
  ApplicationSpecIgnoreDifferences,
  ApplicationSpecSources,
  ApplicationSpecSyncPolicy,
  ApplicationSpecSyncPolicyRetry,
} from '../../imports/argocd-application-argoproj.io';
import { AppProject } from '../../imports/argocd-appproject-argoproj.io';
import { APP_NAMESPACES } from '../model/catalog';
import { MANAGED_BY, PART_OF, serviceLabels } from '../model/labels';
import { Platform } from '../model/platform';
import { HomelabService } from '../model/service';
import { addSyncOption, ARGOCD_CONTROL_KINDS, ARGOCD_GROUP, ARGOCD_NAMESPACE, isGitOpsEngine, projectNames, setSyncWave } from '../model/argocd';
import { ClusterScopedName, groupKind, mergeScopes, ProjectScope, projectScope } from './project-scope';

const RESOURCES_FINALIZER = 'resources-finalizer.argocd.argoproj.io';

/** Sync options of every child Application. */
export const CHILD_SYNC_OPTIONS = [
  // Large CRDs exceed the 256 KiB last-applied annotation of client-side apply.
  'ServerSideApply=true',
  // Each service emits its own Namespace with Pod Security labels.
  'CreateNamespace=false',
  'PruneLast=true',
] as const;

export interface AppOfAppsProps {
  readonly platform: Platform;
  /** Sync wave per service name. */
  readonly waves: ReadonlyMap<string, number>;
  /** The `Kind.group` of cluster-scoped kinds (from the imported schemas), undefined for namespaced ones. */
  readonly clusterScopedName: ClusterScopedName;
}

export class AppOfApps extends Construct {
  /** k8s/<env>/bootstrap: the root Application and its project. */
  readonly bootstrap: Chart;
  /** k8s/<env>/apps: the children's projects and Applications. */
  readonly apps: Chart;
  /** k8s/<env>/app-namespaces: the Namespaces of the operator's apps (none without apps). */
  readonly appNamespaces: Chart;
  private readonly projects: ReturnType<typeof projectNames>;

  constructor(scope: Construct, id: string, props: AppOfAppsProps) {
    super(scope, id);
    const { platform, waves, clusterScopedName } = props;
    const env = platform.config;
    this.projects = projectNames(platform.environment);
    const labels = { 'app.kubernetes.io/part-of': PART_OF, 'app.kubernetes.io/managed-by': MANAGED_BY };
    this.bootstrap = new Chart(this, 'bootstrap', { namespace: ARGOCD_NAMESPACE, disableResourceNameHashes: true, labels });
    this.apps = new Chart(this, 'apps', { namespace: ARGOCD_NAMESPACE, disableResourceNameHashes: true, labels });
    this.appNamespaces = new Chart(this, 'app-namespaces', { disableResourceNameHashes: true });

    // Applied with the root at bootstrap: a project the root had to create itself would deadlock it.
    new AppProject(this.bootstrap, 'root-project', {
      metadata: { name: this.projects.root },
      spec: {
        description: `The root Application of the ${platform.environment} environment: the children's projects and Applications`,
        sourceRepos: [env.git.repoURL],
        destinations: [{ server: env.cluster.server, namespace: ARGOCD_NAMESPACE }],
        clusterResourceWhitelist: [],
        namespaceResourceWhitelist: ['AppProject', 'Application'].map((kind) => ({ group: ARGOCD_GROUP, kind })),
      },
    });
    new Application(this.bootstrap, 'root', {
      metadata: { name: `root-${platform.environment}` },
      spec: {
        project: this.projects.root,
        source: { repoUrl: env.git.repoURL, targetRevision: env.git.revision, path: `k8s/${platform.environment}/apps` },
        destination: { server: env.cluster.server, namespace: ARGOCD_NAMESPACE },
        // No prune and no finalizer: deleting or emptying the root must never cascade. A failed
        // sync (a child's project not there yet, the API server busy) retries instead of waiting for a click.
        syncPolicy: { automated: env.sync.mode === 'automated' ? { prune: false, selfHeal: true } : undefined, retry: retryPolicy(platform) },
      },
    });

    const services = [...platform.services];
    const tenants = services.filter((s) => s.tenant);
    const platformServices = services.filter((s) => !s.tenant);
    const firstWave = Math.min(...services.map((s) => waves.get(s.serviceName)!));
    // The apps' Namespaces are the platform's: its project admits them, the apps' does not.
    const appNamespaces = tenants.length > 0 ? this.appNamespacesApplication(platform, tenants, firstWave - 1) : undefined;
    const appNamespacesScope = appNamespaces ? [{ clusterScoped: [clusterScopedName('v1', 'Namespace')!], namespaces: [appNamespaces] }] : [];
    const platformScope = mergeScopes(projectScope(platformServices, clusterScopedName), ...appNamespacesScope);
    this.project(platform, this.projects.platform, `The platform's services of the ${platform.environment} environment`, platformServices, platformScope, firstWave - 2);
    if (tenants.length > 0) {
      const appsScope = projectScope(tenants, clusterScopedName);
      if (appsScope.clusterScoped.length > 0) {
        throw new Error(`the operator's apps emit cluster-scoped kinds (${appsScope.clusterScoped.join(', ')}), which their project does not admit`);
      }
      const description = `The operator's own apps of the ${platform.environment} environment: no cluster-scoped kind, only their namespaces`;
      this.project(platform, this.projects.apps, description, tenants, appsScope, firstWave - 2);
    }

    for (const service of services) this.childApplication(platform, service, waves.get(service.serviceName)!);
  }

  /**
   * A child project: the repositories its Applications take sources from, the namespaces and
   * cluster-scoped kinds they deploy, and none of Argo CD's own kinds (only the root makes those).
   */
  private project(platform: Platform, name: string, description: string, services: readonly HomelabService[], scope: ProjectScope, wave: number): void {
    const env = platform.config;
    const emitted = new Set(services.flatMap((s) => s.apiObjects.filter((o) => o.apiVersion.startsWith(`${ARGOCD_GROUP}/`)).map((o) => o.kind)));
    const project = new AppProject(this.apps, `project-${name}`, {
      metadata: { name },
      spec: {
        description,
        sourceRepos: [...new Set([env.git.repoURL, ...services.flatMap((s) => s.upstreamSources.map((source) => source.repoURL))])].sort(),
        destinations: scope.namespaces.map((namespace) => ({ server: env.cluster.server, namespace })),
        clusterResourceWhitelist: scope.clusterScoped.map(groupKind),
        namespaceResourceBlacklist: ARGOCD_CONTROL_KINDS.filter((kind) => !emitted.has(kind)).map((kind) => ({ group: ARGOCD_GROUP, kind })),
        orphanedResources: { warn: true },
      },
    });
    setSyncWave(project, wave);
  }

  /**
   * The Application that creates the apps' Namespaces with their Pod Security labels, before any
   * child; returns its destination namespace. The Namespaces hold the apps' data: neither a prune
   * (an app removed from homelab.yaml) nor deleting the Application deletes them.
   */
  private appNamespacesApplication(platform: Platform, tenants: readonly HomelabService[], wave: number): string {
    const env = platform.config;
    for (const tenant of tenants) {
      const namespace = new k8s.KubeNamespace(this.appNamespaces, tenant.serviceName, { metadata: { ...tenant.namespaceMetadata } });
      addSyncOption(namespace, 'Prune=false');
      addSyncOption(namespace, 'Delete=false');
    }
    // Only cluster-scoped objects, but Argo CD still wants a destination its project admits.
    const destination = tenants.map((tenant) => tenant.namespaceName).sort()[0];
    const app = new Application(this.apps, APP_NAMESPACES, {
      metadata: { name: APP_NAMESPACES, labels: serviceLabels({ name: APP_NAMESPACES, environment: platform.environment }, 'argocd-application') },
      spec: {
        project: this.projects.platform,
        source: { repoUrl: env.git.repoURL, targetRevision: env.git.revision, path: `k8s/${platform.environment}/${APP_NAMESPACES}` },
        destination: { server: env.cluster.server, namespace: destination },
        syncPolicy: {
          automated: env.sync.mode === 'automated' ? { prune: env.sync.prune, selfHeal: env.sync.selfHeal } : undefined,
          syncOptions: [...CHILD_SYNC_OPTIONS],
          retry: retryPolicy(platform),
        },
        revisionHistoryLimit: 10,
      },
    });
    setSyncWave(app, wave);
    return destination;
  }

  private childApplication(platform: Platform, service: HomelabService, wave: number): void {
    const env = platform.config;
    const ownManifests = { repoUrl: env.git.repoURL, targetRevision: env.git.revision, path: `k8s/${platform.environment}/${service.serviceName}` };
    const chart: ApplicationSpecSources[] = service.charts.map((release) => ({
      repoUrl: release.chart.repoURL,
      chart: release.chart.chart,
      targetRevision: release.chart.version,
      helm: { releaseName: release.releaseName ?? service.serviceName, valuesObject: release.values },
    }));
    const kustomizations: ApplicationSpecSources[] = service.kustomizations.map((k) => ({
      repoUrl: k.repoURL,
      targetRevision: k.revision,
      path: k.path,
      kustomize: {
        images: k.images ? [...k.images] : undefined,
        // The service emits its Namespace itself (with Pod Security labels): drop upstream copies,
        // which would otherwise compete with it. A patch whose target matches nothing is a no-op.
        patches: [{ target: { kind: 'Namespace', name: service.namespaceName }, patch: deleteNamespacePatch(service.namespaceName) }],
      },
    }));
    const manifests: ApplicationSpecSources[] = service.manifests.map((m) => ({ repoUrl: m.repoURL, targetRevision: m.revision, path: m.path }));
    const sources = [...chart, ...kustomizations, ...manifests, ownManifests];
    const app = new Application(this.apps, `app-${service.serviceName}`, {
      metadata: {
        name: service.serviceName,
        labels: service.labelsFor('argocd-application'),
        // Deleting the Application that runs Argo CD must not delete Argo CD.
        finalizers: isGitOpsEngine(service) ? undefined : [RESOURCES_FINALIZER],
      },
      spec: {
        project: service.tenant ? this.projects.apps : this.projects.platform,
        ...(sources.length === 1 ? { source: sources[0] } : { sources }),
        destination: { server: env.cluster.server, namespace: service.namespaceName },
        syncPolicy: syncPolicy(platform, service),
        ignoreDifferences: service.ignoreDifferences.length > 0 ? service.ignoreDifferences.map(ignoreDifference) : undefined,
        revisionHistoryLimit: 10,
      },
    });
    setSyncWave(app, wave);
  }
}

function syncPolicy(platform: Platform, service: HomelabService): ApplicationSpecSyncPolicy {
  const { sync } = platform.config;
  // Without it, a sync would still write back the fields that ignoreDifferences hides.
  const respectIgnored = service.ignoreDifferences.length > 0 ? ['RespectIgnoreDifferences=true'] : [];
  return {
    automated: sync.mode === 'automated' ? { prune: sync.prune, selfHeal: sync.selfHeal } : undefined,
    syncOptions: [...CHILD_SYNC_OPTIONS, ...respectIgnored],
    retry: retryPolicy(platform),
  };
}

/** The configured bounded retry with backoff. */
function retryPolicy(platform: Platform): ApplicationSpecSyncPolicyRetry {
  const { retry } = platform.config.sync;
  return { limit: retry.limit, backoff: { duration: retry.backoffDuration, factor: retry.backoffFactor, maxDuration: retry.backoffMaxDuration } };
}

/** The repositories of a service's sources besides ours: its chart's, its kustomizations', its manifests'. */

function deleteNamespacePatch(namespace: string): string {
  return `$patch: delete\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${namespace}\n`;
}

function ignoreDifference(d: HomelabService['ignoreDifferences'][number]): ApplicationSpecIgnoreDifferences {
  return {
    group: d.group,
    kind: d.kind,
    name: d.name,
    jsonPointers: d.jsonPointers ? [...d.jsonPointers] : undefined,
    jqPathExpressions: d.jqPathExpressions ? [...d.jqPathExpressions] : undefined,
  };
}
