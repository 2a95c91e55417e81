/**
 * The Argo CD side of an environment: the root Application (bootstrap/, applied once with
 * kubectl), and in apps/ the environment's AppProject and one child Application per
 * service, ordered by sync wave.
 */
import { Chart } from 'cdk8s';
import { Construct } from 'constructs';
import {
  Application,
  ApplicationSpecIgnoreDifferences,
  ApplicationSpecSources,
  ApplicationSpecSyncPolicy,
} from '../../imports/argocd-application-argoproj.io';
import { AppProject } from '../../imports/argocd-appproject-argoproj.io';
import { MANAGED_BY, PART_OF } from '../model/labels';
import { Platform } from '../model/platform';
import { HomelabService } from '../model/service';
import { ARGOCD_NAMESPACE, isGitOpsEngine, setSyncWave } from '../model/argocd';

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
}

export class AppOfApps extends Construct {
  /** k8s/<env>/bootstrap: the root Application. */
  readonly bootstrap: Chart;
  /** k8s/<env>/apps: the AppProject and the child Applications. */
  readonly apps: Chart;
  readonly projectName: string;

  constructor(scope: Construct, id: string, props: AppOfAppsProps) {
    super(scope, id);
    const { platform, waves } = props;
    const env = platform.config;
    this.projectName = platform.environment;
    const labels = { 'app.kubernetes.io/part-of': PART_OF, 'app.kubernetes.io/managed-by': MANAGED_BY };
    this.bootstrap = new Chart(this, 'bootstrap', { namespace: ARGOCD_NAMESPACE, disableResourceNameHashes: true, labels });
    this.apps = new Chart(this, 'apps', { namespace: ARGOCD_NAMESPACE, disableResourceNameHashes: true, labels });

    new Application(this.bootstrap, 'root', {
      metadata: { name: `root-${platform.environment}` },
      spec: {
        // A custom project here would deadlock the bootstrap: it is defined inside apps/.
        project: 'default',
        source: { repoUrl: env.git.repoURL, targetRevision: env.git.revision, path: `k8s/${platform.environment}/apps` },
        destination: { server: env.cluster.server, namespace: ARGOCD_NAMESPACE },
        // No prune and no finalizer: deleting or emptying the root must never cascade.
        syncPolicy: env.sync.mode === 'automated' ? { automated: { prune: false, selfHeal: true } } : {},
      },
    });

    const services = [...platform.services];
    const firstWave = Math.min(...services.map((s) => waves.get(s.serviceName)!));
    const project = new AppProject(this.apps, 'project', {
      metadata: { name: this.projectName },
      spec: {
        description: `Homelab services of the ${platform.environment} environment`,
        sourceRepos: [
          ...new Set([env.git.repoURL, ...services.flatMap((s) => [...(s.helm ? [s.helm.chart.repoURL] : []), ...s.kustomizations.map((k) => k.repoURL), ...s.manifests.map((m) => m.repoURL)])]),
        ].sort(),
        destinations: [...new Set(services.map((s) => s.namespaceName))]
          .sort()
          .map((namespace) => ({ server: env.cluster.server, namespace })),
        // Charts install CRDs, cluster roles and webhooks; namespaces are what we restrict.
        clusterResourceWhitelist: [{ group: '*', kind: '*' }],
        orphanedResources: { warn: true },
      },
    });
    setSyncWave(project, firstWave - 1);

    for (const service of services) this.childApplication(platform, service, waves.get(service.serviceName)!);
  }

  private childApplication(platform: Platform, service: HomelabService, wave: number): void {
    const env = platform.config;
    const ownManifests = { repoUrl: env.git.repoURL, targetRevision: env.git.revision, path: `k8s/${platform.environment}/${service.serviceName}` };
    const chart: ApplicationSpecSources[] = service.helm
      ? [
          {
            repoUrl: service.helm.chart.repoURL,
            chart: service.helm.chart.chart,
            targetRevision: service.helm.chart.version,
            helm: { releaseName: service.helm.releaseName ?? service.serviceName, valuesObject: service.helm.values },
          },
        ]
      : [];
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
        project: this.projectName,
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
    retry: {
      limit: sync.retry.limit,
      backoff: { duration: sync.retry.backoffDuration, factor: sync.retry.backoffFactor, maxDuration: sync.retry.backoffMaxDuration },
    },
  };
}

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
