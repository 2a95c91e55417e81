/**
 * The homelab description (homelab.yaml), as zod schemas. An environment's config is the
 * base document deep-merged with that environment's overrides; `environmentConfig` is what
 * the merged result must satisfy. Every object is strict: a typo is an error, not a no-op.
 */
import { z } from 'zod';
import { findCycle } from '../../passes/waves';
import { rabbitmqSchema } from '../../../charts/config/rabbitmq';
import { raySchema } from '../../../charts/config/ray';
import { aiServiceIssues, nvidiaDevicePluginSchema, tritonSchema } from '../../../charts/config/ai';
import { alloySchema, loggingServiceIssues, lokiSchema } from '../../../charts/config/logging';
import { monitoringSchema } from '../../../charts/config/monitoring';
import { certManagerSchema, cloudflaredSchema, networkingIssues, SubdomainClaim, traefikSchema } from '../../../charts/config/networking';
import { networkPoliciesSchema } from '../../../charts/config/network-policies';
import { automationServiceIssues, n8nSchema } from '../../../charts/config/automation';
import { externalSecretsSchema, securityServiceIssues, vaultSchema } from '../../../charts/config/security';
import { Layer } from '../layers';
import {
  absolutePath,
  backupTargetUrl,
  bool,
  byteQuantity,
  clusterServerUrl,
  cron,
  duration,
  envVarName,
  gitRepoUrl,
  hostname,
  intAtLeast,
  intBetween,
  k8sName,
  labelKey,
  labels,
  labelValue,
  oneOf,
  pinnedImage,
  resourcesSchema,
  subdomain,
  volumeSize,
} from './primitives';

const nonEmptyString = z.string({ error: 'expected a non-empty string' }).min(1, { error: 'expected a non-empty string' });

export { resourcesSchema } from './primitives';

const taintSchema = z.strictObject({
  key: labelKey,
  /** @default none: tolerated with operator Exists */
  value: labelValue.optional(),
  effect: oneOf(['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
});

/** A node as Kubernetes reports it allocatable (after system reservations). */
const nodeSchema = z.strictObject({
  role: oneOf(['control-plane', 'worker']),
  cpu: intAtLeast(1),
  memory: byteQuantity,
  gpus: intAtLeast(0).default(0),
  labels: labels.default({}),
  taints: z.array(taintSchema).default([]),
});

const syncSchema = z.strictObject({
  /** `manual`: Argo CD shows drift and waits for a sync from the UI. */
  mode: oneOf(['automated', 'manual']).default('automated'),
  prune: bool.default(true),
  selfHeal: bool.default(true),
  retry: z
    .strictObject({
      limit: intBetween(0, 20).default(5),
      backoffDuration: duration.default('10s'),
      backoffFactor: intBetween(1, 10).default(2),
      backoffMaxDuration: duration.default('5m'),
    })
    .prefault({}),
});

const argocdSchema = z.strictObject({
  subdomain: subdomain.default('argocd'),
  /** Replicas of the API server and the repo server. */
  replicas: intBetween(1, 5).default(1),
});

const storageClassSchema = z.strictObject({
  default: bool.default(false),
  /** @default the Longhorn `replicas` setting */
  replicas: intBetween(1, 10).optional(),
  reclaimPolicy: oneOf(['Delete', 'Retain']).default('Retain'),
  dataLocality: oneOf(['disabled', 'best-effort', 'strict-local']).default('disabled'),
  /** RecurringJob groups whose jobs apply to volumes of this class. */
  recurringJobGroups: z.array(k8sName).default(['default']),
});

const recurringJobSchema = z.strictObject({
  task: oneOf(['snapshot', 'backup', 'snapshot-cleanup', 'snapshot-delete', 'filesystem-trim']),
  cron,
  retain: intBetween(0, 250),
  concurrency: intBetween(1, 20).default(1),
  groups: z.array(k8sName).default(['default']),
});

/** StorageClass names the Longhorn service creates itself. */
const RESERVED_STORAGE_CLASSES: Record<string, string> = {
  longhorn: 'the class the Longhorn chart manages',
  'longhorn-checkpoint': 'the class of the Longhorn checkpoint volume',
};

const longhornSchema = z
  .strictObject({
    enabled: bool.default(true),
    /** Default number of replicas per volume; at most the number of nodes. */
    replicas: intBetween(1, 10).default(3),
    dataPath: absolutePath.default('/var/lib/longhorn/'),
    storageClasses: z
      .record(k8sName, storageClassSchema)
      .default({ 'longhorn-replicated': { default: true, reclaimPolicy: 'Retain', dataLocality: 'disabled', recurringJobGroups: ['default'] } }),
    backup: z
      .strictObject({
        /** Its credentials: the Secret `longhorn-backup-credentials` (charts/longhorn.ts). */
        target: backupTargetUrl,
        pollInterval: duration.default('5m'),
      })
      .optional(),
    recurringJobs: z.record(k8sName, recurringJobSchema).default({}),
    /** The Longhorn UI's subdomain (an admin route through Traefik). */
    subdomain: subdomain.default('longhorn'),
  })
  .superRefine((longhorn, ctx) => {
    const defaults = Object.entries(longhorn.storageClasses).filter(([, c]) => c.default);
    if (defaults.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['storageClasses'],
        message: `expected exactly one storage class with default: true, received ${defaults.length}`,
      });
    }
    for (const [reserved, owner] of Object.entries(RESERVED_STORAGE_CLASSES)) {
      if (reserved in longhorn.storageClasses) {
        ctx.addIssue({ code: 'custom', path: ['storageClasses', reserved], message: `expected another name: "${reserved}" is ${owner}` });
      }
    }
    for (const [name, job] of Object.entries(longhorn.recurringJobs)) {
      if (job.task === 'backup' && !longhorn.backup) {
        ctx.addIssue({
          code: 'custom',
          path: ['recurringJobs', name, 'task'],
          message: 'expected a backup target: a "backup" job needs services.longhorn.backup',
        });
      }
    }
  });

const portName = z
  .string({ error: 'expected a port name' })
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, { error: 'expected a port name (lowercase letters, digits, "-")' })
  .max(15, { error: 'expected a port name of at most 15 characters' });

const appSchema = z.strictObject({
  enabled: bool.default(true),
  image: pinnedImage,
  replicas: intBetween(0, 20).default(1),
  ports: z.record(portName, intBetween(1, 65535)).default({}),
  env: z.record(envVarName, z.string({ error: 'expected a string (quote numbers and booleans)' })).default({}),
  /**
   * Environment variables whose values are secret: keys of the Secret `<app>-env` in the
   * app's namespace, each read into the variable of the same name (charts/custom-app.ts).
   */
  secretEnv: z.array(envVarName).default([]),
  volume: z
    .strictObject({
      size: volumeSize,
      mountPath: absolutePath,
      /** @default Longhorn's default storage class */
      storageClass: k8sName.optional(),
    })
    .optional(),
  resources: resourcesSchema,
  /** Some images only run as root; their namespace then gets the `baseline` Pod Security level. */
  runAsRoot: bool.default(false),
  /** Numeric user (and group) the container runs as when not root. */
  runAsUser: intBetween(1, 2147483647).default(1000),
  /** Names of services or apps that must be up first. */
  dependsOn: z.array(k8sName).default([]),
  /** A Prometheus metrics endpoint on one of the app's ports: scraped and alerted on when monitoring is enabled. */
  metrics: z
    .strictObject({
      port: portName,
      path: absolutePath.default('/metrics'),
      interval: duration.default('30s'),
    })
    .optional(),
  /** GPUs per replica (`nvidia.com/gpu`), on the GPU nodes; needs services.nvidiaDevicePlugin. */
  gpus: intBetween(0, 16).default(0),
  /** Where the app sits in `waves: sequential` mode. */
  layer: oneOf(['storage', 'data-mesh', 'ai', 'observability', 'automation', 'security', 'networking']).default('automation'),
});

/** Built-in services: their key under `services:` -> the service name apps depend on. */
const SERVICE_KEYS = {
  argocd: 'argocd',
  longhorn: 'longhorn',
  rabbitmq: 'rabbitmq',
  nvidiaDevicePlugin: 'nvidia-device-plugin',
  triton: 'triton',
  ray: 'ray',
  loki: 'loki',
  alloy: 'alloy',
  certManager: 'cert-manager',
  networkPolicies: 'network-policies',
  n8n: 'n8n',
  traefik: 'traefik',
  cloudflared: 'cloudflared',
  vault: 'vault',
  externalSecrets: 'external-secrets',
} as const;
/**
 * Names an app cannot take: an app's name is its folder in k8s/<env>/ and its namespace, so
 * it must not collide with the output folders, the built-in services, the services they
 * bring along, or their namespaces.
 */
const RESERVED_APP_NAMES: readonly string[] = [
  'apps',
  'bootstrap',
  ...Object.values(SERVICE_KEYS),
  'longhorn-system',
  'rabbitmq-operators',
  'rabbitmq-system',
  'kuberay-operator',
  'kuberay-system',
  'monitoring',
  'prometheus-operator-crds',
  'netpol-check',
];

const servicesSchema = z.strictObject({
  argocd: argocdSchema.prefault({}),
  longhorn: longhornSchema.prefault({}),
  rabbitmq: rabbitmqSchema.prefault({}),
  nvidiaDevicePlugin: nvidiaDevicePluginSchema.prefault({}),
  triton: tritonSchema.prefault({}),
  ray: raySchema.prefault({}),
  loki: lokiSchema.prefault({}),
  alloy: alloySchema.prefault({}),
  monitoring: monitoringSchema.prefault({}),
  certManager: certManagerSchema.prefault({}),
  networkPolicies: networkPoliciesSchema.prefault({}),
  n8n: n8nSchema.prefault({}),
  traefik: traefikSchema.prefault({}),
  cloudflared: cloudflaredSchema.prefault({}),
  vault: vaultSchema.prefault({}),
  externalSecrets: externalSecretsSchema.prefault({}),
});

/** One environment's fully merged settings. */
export const environmentConfig = z
  .strictObject({
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
    services: servicesSchema.prefault({}),
    apps: z.record(k8sName, appSchema).default({}),
  })
  .superRefine((env, ctx) => {
    const nodeCount = Object.keys(env.nodes).length;
    const longhorn = env.services.longhorn;
    if (longhorn.enabled && longhorn.replicas > nodeCount) {
      ctx.addIssue({
        code: 'custom',
        path: ['services', 'longhorn', 'replicas'],
        message: `expected at most ${nodeCount} (one replica per node), received ${longhorn.replicas}`,
      });
    }
    for (const [name, storageClass] of Object.entries(longhorn.storageClasses)) {
      if (longhorn.enabled && storageClass.replicas !== undefined && storageClass.replicas > nodeCount) {
        ctx.addIssue({
          code: 'custom',
          path: ['services', 'longhorn', 'storageClasses', name, 'replicas'],
          message: `expected at most ${nodeCount} (one replica per node), received ${storageClass.replicas}`,
        });
      }
    }
    if (env.services.rabbitmq.enabled && !longhorn.enabled) {
      ctx.addIssue({
        code: 'custom',
        path: ['services', 'rabbitmq', 'enabled'],
        message: 'expected services.longhorn.enabled: RabbitMQ keeps its data on Longhorn',
      });
    }
    for (const issue of aiServiceIssues({
      nodes: env.nodes,
      longhornEnabled: longhorn.enabled,
      nvidiaDevicePlugin: env.services.nvidiaDevicePlugin,
      triton: env.services.triton,
    })) {
      ctx.addIssue({ code: 'custom', ...issue });
    }
    for (const issue of loggingServiceIssues({ longhornEnabled: longhorn.enabled, loki: env.services.loki, alloy: env.services.alloy })) {
      ctx.addIssue({ code: 'custom', ...issue });
    }
    for (const issue of automationServiceIssues({ longhorn, rabbitmq: env.services.rabbitmq, n8n: env.services.n8n })) {
      ctx.addIssue({ code: 'custom', ...issue });
    }
    for (const issue of securityServiceIssues({
      nodes: env.nodes,
      longhorn,
      vault: env.services.vault,
      externalSecrets: env.services.externalSecrets,
    })) {
      ctx.addIssue({ code: 'custom', ...issue });
    }
    const monitoring = env.services.monitoring;
    if (monitoring.enabled && !longhorn.enabled) {
      ctx.addIssue({
        code: 'custom',
        path: ['services', 'monitoring', 'enabled'],
        message: 'expected services.longhorn.enabled: Prometheus and Alertmanager keep their data on Longhorn',
      });
    } else if (monitoring.enabled && monitoring.storageClass && !(monitoring.storageClass in longhorn.storageClasses)) {
      ctx.addIssue({
        code: 'custom',
        path: ['services', 'monitoring', 'storageClass'],
        message: `expected one of the Longhorn storage classes (${Object.keys(longhorn.storageClasses).sort().join(', ')}), received "${monitoring.storageClass}"`,
      });
    }
    if (env.services.ray.enabled && !env.services.nvidiaDevicePlugin.enabled) {
      for (const [group, config] of Object.entries(env.services.ray.workerGroups)) {
        if (config.gpusPerWorker > 0) {
          ctx.addIssue({
            code: 'custom',
            path: ['services', 'ray', 'workerGroups', group, 'gpusPerWorker'],
            message: 'expected services.nvidiaDevicePlugin.enabled: GPU workers need the GPUs it advertises',
          });
        }
      }
    }
    for (const issue of networkingIssues({
      certManagerEnabled: env.services.certManager.enabled,
      traefik: env.services.traefik,
      cloudflared: env.services.cloudflared,
      subdomains: subdomainClaims(env.services),
    })) {
      ctx.addIssue({ code: 'custom', ...issue });
    }
    const enabled = new Set<string>([
      ...Object.entries(SERVICE_KEYS)
        .filter(([key]) => key === 'argocd' || env.services[key as Exclude<keyof typeof SERVICE_KEYS, 'argocd'>].enabled)
        .map(([, name]) => name),
      ...Object.entries(env.apps).filter(([, app]) => app.enabled).map(([name]) => name),
    ]);
    for (const [name, app] of Object.entries(env.apps)) {
      if (RESERVED_APP_NAMES.includes(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['apps', name],
          message: `expected another name: "${name}" is taken by a built-in service, its namespace or an output folder`,
        });
      }
      if (!app.enabled) continue;
      app.dependsOn.forEach((dep, i) => {
        if (dep === name) {
          ctx.addIssue({ code: 'custom', path: ['apps', name, 'dependsOn', i], message: 'expected another service: an app cannot depend on itself' });
        } else if (!enabled.has(dep)) {
          const known = [...enabled].sort().join(', ');
          ctx.addIssue({
            code: 'custom',
            path: ['apps', name, 'dependsOn', i],
            message: `expected an enabled service or app (${known}), received "${dep}"`,
          });
        }
      });
      app.secretEnv.forEach((variable, i) => {
        if (variable in app.env) {
          ctx.addIssue({ code: 'custom', path: ['apps', name, 'secretEnv', i], message: `expected a variable not in env: "${variable}" is set there already` });
        } else if (app.secretEnv.indexOf(variable) !== i) {
          ctx.addIssue({ code: 'custom', path: ['apps', name, 'secretEnv', i], message: `expected each variable once: "${variable}" is listed twice` });
        }
      });
      if (app.metrics && !(app.metrics.port in app.ports)) {
        ctx.addIssue({
          code: 'custom',
          path: ['apps', name, 'metrics', 'port'],
          message: `expected one of the app's ports (${Object.keys(app.ports).join(', ') || 'none'}), received "${app.metrics.port}"`,
        });
      }
      if (app.gpus > 0 && !env.services.nvidiaDevicePlugin.enabled) {
        ctx.addIssue({
          code: 'custom',
          path: ['apps', name, 'gpus'],
          message: 'expected services.nvidiaDevicePlugin.enabled: GPUs are schedulable only through the device plugin',
        });
      }
      if (app.volume && app.replicas > 1) {
        ctx.addIssue({
          code: 'custom',
          path: ['apps', name, 'replicas'],
          message: `expected at most 1 with a volume (a ReadWriteOnce volume attaches to one pod), received ${app.replicas}`,
        });
      }
      if (app.volume) {
        if (!longhorn.enabled) {
          ctx.addIssue({ code: 'custom', path: ['apps', name, 'volume'], message: 'expected services.longhorn.enabled: a volume needs Longhorn' });
        } else if (app.volume.storageClass && !(app.volume.storageClass in longhorn.storageClasses)) {
          const known = Object.keys(longhorn.storageClasses).sort().join(', ');
          ctx.addIssue({
            code: 'custom',
            path: ['apps', name, 'volume', 'storageClass'],
            message: `expected one of the Longhorn storage classes (${known}), received "${app.volume.storageClass}"`,
          });
        }
      }
    }
    const enabledApps = Object.entries(env.apps).filter(([, app]) => app.enabled);
    const appNames = new Set(enabledApps.map(([name]) => name));
    const cycle = findCycle(
      enabledApps.map(([name, app]) => ({ name, layer: Layer.AUTOMATION, dependsOn: app.dependsOn.filter((d) => appNames.has(d) && d !== name) })),
    );
    if (cycle) {
      ctx.addIssue({ code: 'custom', path: ['apps', cycle[0], 'dependsOn'], message: `expected no dependency cycle, found ${cycle.join(' -> ')}` });
    }
  });

/** The subdomains the enabled services' configs route through Traefik, with their paths. */
function subdomainClaims(services: z.output<typeof servicesSchema>): SubdomainClaim[] {
  const claim = (enabled: boolean, path: string[], subdomain: string): SubdomainClaim[] =>
    enabled ? [{ path: ['services', ...path], subdomain }] : [];
  return [
    ...claim(true, ['argocd', 'subdomain'], services.argocd.subdomain),
    ...claim(services.longhorn.enabled, ['longhorn', 'subdomain'], services.longhorn.subdomain),
    ...claim(services.rabbitmq.enabled, ['rabbitmq', 'subdomain'], services.rabbitmq.subdomain),
    ...claim(services.ray.enabled, ['ray', 'subdomain'], services.ray.subdomain),
    ...claim(services.monitoring.enabled, ['monitoring', 'grafana', 'subdomain'], services.monitoring.grafana.subdomain),
    ...claim(services.traefik.enabled, ['traefik', 'dashboard', 'subdomain'], services.traefik.dashboard.subdomain),
    ...claim(services.n8n.enabled, ['n8n', 'subdomain'], services.n8n.subdomain),
    ...claim(services.vault.enabled, ['vault', 'subdomain'], services.vault.subdomain),
  ];
}

export type EnvironmentConfig = z.output<typeof environmentConfig>;
export type NodeConfig = z.output<typeof nodeSchema>;
export type AppConfig = z.output<typeof appSchema>;
export type LonghornConfig = z.output<typeof longhornSchema>;
export type ArgoCdConfig = z.output<typeof argocdSchema>;
export type Resources = z.output<typeof resourcesSchema>;
export type SyncConfig = z.output<typeof syncSchema>;

/** Names of environments (folders under k8s/). */
export const environmentName = k8sName;
