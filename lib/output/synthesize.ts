/**
 * One environment from config to files: build the services the catalog's entries make of the
 * config, run the passes (lib/passes: routing, monitoring, secret delivery, waves, capacity,
 * Argo CD, network policies ...), and render every resource into its own file. Rendering goes
 * object by object, so the cost stays linear in the number of services (a cdk8s Chart.toJson
 * re-resolves the whole App each time).
 */
import { ApiObject, App } from 'cdk8s';
import { isGitOpsEngine } from '../model/argocd';
import { APP_NAMESPACES, buildServices, Catalog } from '../model/catalog';
import type { EnvironmentConfig } from '../model/config/environment';
import type { Recovery } from '../model/recovery';
import { Platform } from '../model/platform';
import { apiObjectsOf, HomelabService } from '../model/service';
import type { CapacityReport } from '../passes/capacity';
import { runPasses, Synthesis } from '../passes';
import type { SecretNeedSource } from '../passes/secret-delivery';
import { emitYaml } from '../util/yaml-emitter';
import { clusterScopedName, isClusterScoped } from './cluster-scoped';
import { installFastResolve } from './fast-resolve';
import { checkNameLimits } from './name-limits';
import { GENERATED_HEADER } from './output-guard';
import { sortedTree } from './output-tree';
import { byCodeUnits } from '../util/text-order';

installFastResolve();

/** Helm values files in the output are named after their chart: `argo-cd.values.yaml`. */
export const HELM_VALUES_FILE = /^([a-z0-9-]+)\.values\.yaml$/;

export interface ServiceSummary {
  readonly name: string;
  readonly wave: number;
  readonly layer: string;
  readonly namespace: string;
  /** Upstream sources: `chart@version`, `repository/path@tag`; empty for only our own manifests. */
  readonly upstream: readonly string[];
  readonly resources: number;
  readonly dependsOn: readonly string[];
  /** The part of `dependsOn` that comes only from what it needs (see lib/passes/graph.ts). */
  readonly needDependsOn: readonly string[];
  /** What the service's checkpoint proves. */
  readonly checkpoint: string;
  /** Hostnames it exposes (`<subdomain>.<domain>`), sorted. */
  readonly hosts: readonly string[];
  /** The operator's one-time step its Application waits for (ServiceSettings.awaitsOperator). */
  readonly awaitsOperator?: string;
  /** Its data that only backups restore (HomelabService.declareRecovery). */
  readonly recoveries: readonly Recovery[];
}

export interface SynthesizedEnvironment {
  readonly environment: string;
  /** Path relative to k8s/<env>/ -> file content. */
  readonly files: ReadonlyMap<string, string>;
  /** Services by wave, then name. */
  readonly services: readonly ServiceSummary[];
  /** Requested against available CPU, memory and GPUs. */
  readonly capacity: CapacityReport;
  /** Every declared Secret with its source (a Vault path, or made by hand), by namespace and name. */
  readonly secrets: readonly SecretNeedSource[];
  readonly warnings: readonly string[];
  /**
   * Path -> the manifest its file holds (every file but a Helm values file), as data: what its
   * YAML reads back as, for a caller in this thread that reads the output without parsing it
   * again (the tests, test/yaml-emitter.test.ts holding the two equal). Shared with the
   * services' render memo: read-only.
   */
  readonly manifests: ReadonlyMap<string, unknown>;
}

/**
 * An environment as any thread gives it back (lib/output/environment-workers.ts): without the
 * manifests as data, which a worker would have to copy over at a cost greater than the files'.
 */
export type EnvironmentOutput = Omit<SynthesizedEnvironment, 'manifests'>;

export function synthesizeEnvironment(environment: string, config: EnvironmentConfig, catalog: Catalog): SynthesizedEnvironment {
  const app = new App({ outdir: '/dev/null' });
  return synthesizePlatform(app, buildPlatform(app, environment, config, catalog));
}

/** A platform with the services the catalog's entries make of the config (no passes run yet). */
export function buildPlatform(scope: App, environment: string, config: EnvironmentConfig, catalog: Catalog): Platform {
  const platform = new Platform(scope, environment, config, catalog);
  buildServices(platform, 'services');
  return platform;
}

/** The passes and the files of an already built platform. */
export function synthesizePlatform(app: App, platform: Platform): SynthesizedEnvironment {
  const synthesis = new Synthesis(app, platform, clusterScopedName);
  runPasses(synthesis);
  const graph = synthesis.get('graph');
  const waves = synthesis.get('waves');
  const appOfApps = synthesis.get('appOfApps');
  const files = new Map<string, string>();
  const manifests = new Map<string, unknown>();
  const objects = new Map(platform.services.map((service) => [service, service.apiObjects]));
  for (const service of platform.services) {
    renderChart(files, manifests, service.serviceName, service.namespaceName, objects.get(service)!, (object) => service.render(object));
  }
  for (const [folder, chart] of [['apps', appOfApps.apps], ['bootstrap', appOfApps.bootstrap], [APP_NAMESPACES, appOfApps.appNamespaces]] as const) {
    renderChart(files, manifests, folder, chart.namespace, apiObjectsOf(chart));
  }
  checkNameLimits(
    manifests.values(),
    platform.services.filter((service) => service.tenant).map((service) => service.serviceName),
    platform.environment,
  );
  const engine = platform.services.find(isGitOpsEngine);
  if (engine?.helm) {
    // The one-time `helm install` must use exactly the values Argo CD later applies to itself.
    files.set(`bootstrap/${engine.helm.chart.chart}.values.yaml`, GENERATED_HEADER + emitYaml(engine.helm.values));
  }

  // dependencyGraph lists the services in platform order.
  const services = platform.services
    .map((service, i) => ({
      name: service.serviceName,
      wave: waves.get(service.serviceName)!,
      layer: service.layer,
      namespace: service.namespaceName,
      upstream: upstreamOf(service),
      resources: objects.get(service)!.length,
      dependsOn: graph.nodes[i].dependsOn,
      needDependsOn: graph.nodes[i].needDependsOn,
      checkpoint: service.checkpoint!.description,
      hosts: service.exposures.map((e) => platform.hostname(e.subdomain)).sort(),
      ...(service.awaitsOperator !== undefined && { awaitsOperator: service.awaitsOperator }),
      recoveries: service.recoveries,
    }))
    .sort((a, b) => a.wave - b.wave || byCodeUnits(a.name, b.name));
  return {
    environment: platform.environment,
    files: sortedTree(files),
    manifests,
    services,
    capacity: synthesis.get('capacity'),
    secrets: synthesis.get('secrets'),
    warnings: graph.warnings,
  };
}

function upstreamOf(service: HomelabService): string[] {
  const chart = service.charts.map((release) => `${release.chart.chart}@${release.chart.version}`);
  const git = [...service.kustomizations, ...service.manifests].map((k) => `${k.repoURL.replace(/^https:\/\/github.com\//, '')}/${k.path}@${k.revision}`);
  return [...chart, ...git];
}

/** Every object of a chart into its own file of `folder`; `namespace` is the chart's. */
function renderChart(
  files: Map<string, string>,
  manifests: Map<string, unknown>,
  folder: string,
  chartNamespace: string | undefined,
  objects: readonly ApiObject[],
  render: (object: ApiObject) => any = (object) => object.toJson(),
): void {
  for (const object of objects) {
    const rendered = render(object);
    // Rendered manifests are frozen (HomelabService.render reuses them): a cluster-scoped one loses its namespace in a copy.
    const manifest = isClusterScoped(rendered.apiVersion, rendered.kind) ? withoutNamespace(rendered) : rendered;
    // Objects a service places in another service's namespace (e.g. verification Jobs) name it.
    const namespace = manifest.metadata.namespace;
    const elsewhere = namespace !== undefined && namespace !== chartNamespace ? `${namespace}-` : '';
    const path = `${folder}/${object.kind.toLowerCase()}-${elsewhere}${manifest.metadata.name}.yaml`;
    if (files.has(path)) throw new Error(`two resources render to ${path}`);
    files.set(path, GENERATED_HEADER + emitYaml(manifest));
    manifests.set(path, manifest);
  }
}


function withoutNamespace(manifest: any): any {
  const { namespace: _, ...metadata } = manifest.metadata;
  return { ...manifest, metadata };
}
