/**
 * The homelab description (homelab.yaml) of one environment, as a zod schema composed from a
 * catalog: the platform's own settings (domain, Git, waves, sync, cluster, nodes) plus every
 * entry's settings at its key. An environment's config is the base document deep-merged with
 * that environment's overrides; the merged result must satisfy this schema. Every object is
 * strict: a typo is an error, not a no-op. The checks across services come from the entries
 * too (their requirements, checks and subdomains), run in catalog order.
 */
import { z } from './zod';
import {
  Catalog,
  ConfigIssue,
  EnvironmentView,
  RESERVED_NAMES,
  ServiceEntry,
  serviceNamesOf,
  settingsIn,
  settingsPath,
  SubdomainClaim,
} from '../catalog';
import { backupSettings } from '../backup';
import { bool, byteQuantity, clusterServerUrl, cpuQuantity, duration, expected, gitRepoUrl, hostname, intAtLeast, intBetween, k8sName, labelKey, labels, labelValue, oneOf } from './primitives';
import { parseQuantity } from '../../util/quantity';

const nonEmptyString = z.string({ error: 'expected a non-empty string' }).min(1, { error: 'expected a non-empty string' });

const taintSchema = z.strictObject({
  key: labelKey,
  /** @default none: tolerated with operator Exists */
  value: labelValue.optional(),
  effect: oneOf(['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
});

/**
 * Label prefixes Node Feature Discovery and GPU Feature Discovery own (lib/model/gpu.ts): they
 * label the nodes from their hardware, so an inventory that set them by hand would describe
 * nodes the cluster does not have (`gpus` is what tells the platform about a node's GPUs).
 * Other nvidia.com/ labels are the operator's to set (`nvidia.com/device-plugin.config`,
 * `nvidia.com/mig.config`: settings the plugin reads per node).
 */
const DISCOVERED_LABEL_PREFIXES = ['nvidia.com/gpu.', 'nvidia.com/cuda.', 'feature.node.kubernetes.io/'] as const;

/** A node as Kubernetes reports it allocatable (after system reservations). */
const nodeSchema = z.strictObject({
  role: oneOf(['control-plane', 'worker']),
  /** Cores as Kubernetes reports them allocatable: whole, fractional or millicores (`4`, `3.5`, `3800m`). */
  cpu: cpuQuantity.refine((cpu) => parseQuantity(cpu) > 0, expected('a CPU quantity above 0')),
  memory: byteQuantity,
  gpus: intAtLeast(0).default(0),
  labels: labels.default({}).superRefine((nodeLabels, ctx) => {
    for (const key of Object.keys(nodeLabels)) {
      const prefix = DISCOVERED_LABEL_PREFIXES.find((p) => key.startsWith(p));
      if (prefix) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `unexpected label: ${prefix}* labels are set by Node and GPU Feature Discovery from the hardware; remove it (gpus: tells the platform about a node's GPUs)`,
        });
      }
    }
  }),
  taints: z.array(taintSchema).default([]),
});

const syncSchema = z.strictObject({
  /** `manual`: Argo CD shows drift and waits for a sync from the UI. */
  mode: oneOf(['automated', 'manual']).default('automated'),
  prune: bool.default(true),
  selfHeal: bool.default(true),
  retry: z
    .strictObject({
      /** At least one: the root retries a failed sync so that the bootstrap goes on without a click (README, bootstrapping). */
      limit: intBetween(1, 20).default(5),
      backoffDuration: duration.default('10s'),
      backoffFactor: intBetween(1, 10).default(2),
      backoffMaxDuration: duration.default('5m'),
    })
    .prefault({}),
});

/** The platform's own settings, whatever services the catalog has. */
const platformShape = {
  domain: hostname,
  git: z.strictObject({
    repoURL: gitRepoUrl,
    /** Branch, tag or commit Argo CD pulls. */
    revision: nonEmptyString,
  }),
  /** `dependencies`: waves from the dependency graph; `sequential`: one layer per wave. */
  waves: oneOf(['dependencies', 'sequential']).default('dependencies'),
  cluster: z
    .strictObject({
      /** API server of the cluster the environment deploys to. */
      server: clusterServerUrl.default('https://kubernetes.default.svc'),
    })
    .prefault({}),
  sync: syncSchema.prefault({}),
  nodes: z.record(k8sName, nodeSchema).refine((nodes) => Object.keys(nodes).length > 0, {
    error: 'expected at least one node',
  }),
  /** The one off-site backup target every service that writes backups uses (docs/adr/0035). @default none */
  backup: backupSettings.optional(),
};

type PlatformSettings = z.output<z.ZodObject<typeof platformShape>>;

/** One environment's fully merged settings: the platform's, and each entry's at its key. */
export type EnvironmentConfig = PlatformSettings & {
  /** Settings of the entries under `services:`, by key (read them with `settingsIn`). */
  readonly services: Readonly<Record<string, unknown>>;
};

/** The schema an environment's merged config must satisfy, for the services of a catalog. */
export function environmentSchema(catalog: Catalog): z.ZodType<EnvironmentConfig> {
  const withSettings = catalog.entries.filter((entry) => entry.settings);
  const shape = (topLevel: boolean) =>
    Object.fromEntries(withSettings.filter((e) => (e.settings!.topLevel ?? false) === topLevel).map((e) => [e.settings!.key, e.settings!.schema]));
  return z
    .strictObject({ ...platformShape, services: z.strictObject(shape(false)).prefault({}), ...shape(true) })
    .superRefine((env, ctx) => {
      for (const issue of catalogIssues(catalog, env as EnvironmentConfig)) ctx.addIssue({ code: 'custom', path: [...issue.path], message: issue.message });
    }) as unknown as z.ZodType<EnvironmentConfig>;
}

/** Whether an environment gets an entry's services. */
export function isEntryEnabled(catalog: Catalog, config: EnvironmentConfig, entry: ServiceEntry<any, any>): boolean {
  const settings = entry.settings ? settingsIn(config, entry) : undefined;
  if (entry.enabled) return entry.enabled(settings, environmentView(catalog, config, entry));
  return (settings as { enabled?: boolean } | undefined)?.enabled === true;
}

/** What an entry's checks (and its `enabled`) see of the environment. */
function environmentView(catalog: Catalog, config: EnvironmentConfig, entry: ServiceEntry<any, any>): EnvironmentView {
  const index = catalog.entries.indexOf(entry);
  let servicesBefore: Set<string> | undefined;
  let reservedNames: Set<string> | undefined;
  return {
    nodes: config.nodes,
    backup: config.backup,
    settingsOf: (other) => settingsIn(config, other),
    isEnabled: (other) => isEntryEnabled(catalog, config, other),
    get servicesBefore() {
      servicesBefore ??= new Set(
        catalog.entries
          .slice(0, index)
          .filter((other) => isEntryEnabled(catalog, config, other))
          .flatMap((other) => serviceNamesOf(other, other.settings ? settingsIn(config, other) : undefined)),
      );
      return servicesBefore;
    },
    get reservedNames() {
      reservedNames ??= new Set([...RESERVED_NAMES, ...catalog.entries.filter((other) => other !== entry).flatMap((other) => other.names)]);
      return reservedNames;
    },
    get singleSignOn() {
      return catalog.entries.some((other) => other.providesSingleSignOn === true && isEntryEnabled(catalog, config, other));
    },
  };
}

/** Problems across services: unmet requirements, the entries' own checks, subdomains claimed twice. */
function catalogIssues(catalog: Catalog, config: EnvironmentConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const claims: { path: readonly (string | number)[]; subdomain: string }[] = [];
  for (const entry of catalog.entries) {
    if (!entry.settings || !isEntryEnabled(catalog, config, entry)) continue;
    const settings = settingsIn(config, entry);
    const at = (path: readonly (string | number)[]) => [...settingsPath(entry), ...path];
    for (const requirement of entry.requires?.(settings) ?? []) {
      if (isEntryEnabled(catalog, config, requirement.entry)) continue;
      issues.push({ path: at(requirement.path), message: `expected ${settingsPath(requirement.entry).join('.')}.enabled: ${requirement.reason}` });
    }
    for (const issue of entry.check?.(settings, environmentView(catalog, config, entry)) ?? []) issues.push({ ...issue, path: at(issue.path) });
    claims.push(...(entry.subdomains?.(settings) ?? []).map((claim: SubdomainClaim) => ({ path: at(claim.path), subdomain: claim.subdomain })));
  }
  const firstClaim = new Map<string, readonly (string | number)[]>();
  for (const claim of claims) {
    const first = firstClaim.get(claim.subdomain);
    if (first) issues.push({ path: claim.path, message: `expected another subdomain: "${claim.subdomain}" is already used by ${first.join('.')}` });
    else firstClaim.set(claim.subdomain, claim.path);
  }
  return issues;
}

export type NodeConfig = z.output<typeof nodeSchema>;

/** Names of environments (folders under k8s/). */
export const environmentName = k8sName;
