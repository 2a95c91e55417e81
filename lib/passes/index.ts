/**
 * Synthesis after the services are built: an explicit, ordered list of passes. Each reads
 * what the services declared and adds the objects that follow from it (into the service
 * whose folder and Application they belong to, or its own charts), or derives a result that
 * later passes and the output read. A pass hands a capability its part (the router its
 * exposures, the dashboard host the dashboards, the secret backend its consumers) but never
 * changes what a service declared about itself. The order is this array's, and why each pass
 * comes where it does is said next to it.
 */
import type { App } from 'cdk8s';
import { buildServices } from '../model/catalog';
import { isGpuProvider } from '../model/gpu';
import type { Platform } from '../model/platform';
import { AppOfApps } from './app-of-apps';
import type { ClusterScopedName } from './project-scope';
import { CapacityReport, checkCapacity } from './capacity';
import { DependencyGraph, dependencyGraph } from './graph';
import { emitMonitoring, provisionDashboards } from './monitoring';
import { checkNeeds } from './needs';
import { emitNetworkPolicies } from './network-policies';
import { applyResourcePolicies } from './resource-policies';
import { provisionBuckets } from './object-storage';
import { routeExposures } from './routing';
import { deliverSecrets, SecretNeedSource } from './secret-delivery';
import { connectOidcLogins } from './single-sign-on';
import { connectTraceEmitters } from './tracing';
import { computeWaves } from './waves';

/** What the passes derive, for the later passes and the output. */
export interface Derived {
  /** Every declared Secret with its source, by namespace and name. */
  readonly secrets: readonly SecretNeedSource[];
  readonly graph: DependencyGraph;
  /** Sync wave per service name. */
  readonly waves: ReadonlyMap<string, number>;
  /** Requested against available CPU, memory and GPUs. */
  readonly capacity: CapacityReport;
  /** The Argo CD side: root Application and projects, one Application per service. */
  readonly appOfApps: AppOfApps;
}

/** One environment being synthesized: its platform and what the passes derived so far. */
export class Synthesis {
  private readonly derived = new Map<keyof Derived, unknown>();

  /**
   * @param clusterScopedName the `Kind.group` of cluster-scoped kinds, from the imported schemas
   *   (which the output reads)
   */
  constructor(
    readonly app: App,
    readonly platform: Platform,
    readonly clusterScopedName: ClusterScopedName,
  ) {}

  get<K extends keyof Derived>(key: K): Derived[K] {
    if (!this.derived.has(key)) throw new Error(`${key} is derived by a pass that has not run yet (see PASSES)`);
    return this.derived.get(key) as Derived[K];
  }

  set<K extends keyof Derived>(key: K, value: Derived[K]): void {
    if (this.derived.has(key)) throw new Error(`${key} is derived twice`);
    this.derived.set(key, value);
  }
}

export interface Pass {
  readonly name: string;
  run(synthesis: Synthesis): void;
}

export const PASSES: readonly Pass[] = [
  // The store's buckets, identities and checkpoint follow from every declared bucket; its
  // identities are a Secret the delivery pass delivers.
  { name: 'object storage', run: ({ platform }) => provisionBuckets(platform) },
  // OIDC logins: before the routes are followed (the provider's checkpoint knows every client's
  // blueprint then), before the dashboards pass installs Grafana's chart with its values, and
  // before the delivery pass reads the client Secrets the consumers declare.
  { name: 'single sign-on', run: ({ platform }) => connectOidcLogins(platform) },
  // Routes (and the router's checkpoint, which checks them) exist once every service has declared its exposures.
  { name: 'routing', run: ({ platform }) => routeExposures(platform) },
  // Emitters' values and environments name the trace receiver before anything reads them.
  { name: 'traces', run: ({ platform }) => connectTraceEmitters(platform) },
  // The dashboard host's values and checkpoint count every service's dashboards.
  { name: 'dashboards', run: ({ platform }) => provisionDashboards(platform) },
  // The final validation replays every checkpoint, the router's included.
  { name: 'final services', run: ({ platform }) => buildServices(platform, 'final') },
  {
    name: 'checkpoints',
    run: ({ platform }) => {
      for (const service of platform.services) if (!service.checkpoint) throw new Error(`${service.serviceName} has no checkpoint`);
    },
  },
  // Monitors and rules add CRD edges to the CRDs' installer: before the graph.
  { name: 'monitors', run: ({ platform }) => emitMonitoring(platform) },
  // Delivery objects add CRD edges too; the graph before them tells who cannot wait for the delivery service.
  { name: 'secret delivery', run: (s) => s.set('secrets', deliverSecrets(s.platform)) },
  // Every object that needs something exists: the later passes add only Argo CD's objects,
  // NetworkPolicies and annotations, which need nothing another Application provides.
  {
    name: 'ordering',
    run: (s) => {
      const mode = s.platform.config.waves;
      const graph = dependencyGraph(s.platform, mode);
      const waves = computeWaves(graph.nodes, mode);
      // The proof that no wave waits for a later one (ADR 23); by construction in `dependencies` mode.
      checkNeeds(s.platform, graph.needs, waves, mode);
      s.set('graph', graph);
      s.set('waves', waves);
    },
  },
  {
    name: 'capacity',
    run: (s) => {
      const { platform } = s;
      const gpuReplicas = platform.services.find(isGpuProvider)?.gpuReplicas ?? 1;
      const computeModes = platform.services.flatMap((service) => (service.computeMode ? [service.computeMode] : []));
      s.set('capacity', checkCapacity(platform.services.flatMap((service) => service.demands), platform.config.nodes, gpuReplicas, computeModes));
    },
  },
  // Last emission: the policies cover every port the services declared and everything they expose.
  { name: 'network policies', run: ({ platform }) => emitNetworkPolicies(platform) },
  // The projects admit what every service emits: after the last object is added.
  {
    name: 'argo cd',
    run: (s) => s.set('appOfApps', new AppOfApps(s.app, 'argocd', { platform: s.platform, waves: s.get('waves'), clusterScopedName: s.clusterScopedName })),
  },
  // Over every object, the derived ones included.
  { name: 'resource policies', run: (s) => applyResourcePolicies(s.platform) },
];

export function runPasses(synthesis: Synthesis): void {
  for (const pass of PASSES) pass.run(synthesis);
}
