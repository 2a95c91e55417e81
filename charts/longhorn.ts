/**
 * Longhorn: replicated block storage, the storage layer every stateful service uses.
 * The chart installs Longhorn; we add the StorageClasses and RecurringJobs from the config.
 */
import { k8s } from 'cdk8s-plus-34';
import { z } from '../lib/model/config/zod';
import type { LonghornValues } from '../imports/helm/longhorn';
import { RecurringJob, RecurringJobSpecTask } from '../imports/longhorn-longhorn.io';
import { ConfigIssue, defineService, EnvironmentView, ownSubdomain } from '../lib/model/catalog';
import { Checkpoint } from '../lib/model/checkpoint';
import { absolutePath, bool, cron, duration, intBetween, k8sName, matching, oneOf, subdomain } from '../lib/model/config/primitives';
import { helmRelease } from './helm-release';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { ExternalDestination, urlDestination } from '../lib/model/network';
import { Platform } from '../lib/model/platform';
import { durationSeconds } from '../lib/util/quantity';
import type { SecretRef } from '../lib/model/secrets';
import { HomelabService } from '../lib/model/service';
import type { StorageProvider } from '../lib/model/storage';
import { IMAGES } from './versions';

/** Longhorn backup target: `s3://bucket@region/path` (or nfs://, cifs://, azblob://). */
const backupTargetUrl = matching(
  /^(s3:\/\/[^@\s]+@[^/\s]+\/\S*|nfs:\/\/\S+|cifs:\/\/\S+|azblob:\/\/\S+)$/,
  'a Longhorn backup target such as "s3://bucket@us-east-1/"',
);

/**
 * Where backups go, by the target's scheme (longhorn backupstore drivers): NFS (v4, which
 * Longhorn requires: 2049) and CIFS (445) to the URL's host; S3 and Azure Blob over HTTPS to an
 * endpoint the credentials Secret names (AWS_ENDPOINTS), unknown here: `internet` on 443.
 */
function backupDestination(target: string): ExternalDestination {
  const scheme = target.split(':')[0];
  const host = /^\w+:\/\/([^/:@]+)/.exec(target)?.[1] ?? '';
  if (scheme === 'nfs') return { to: urlDestination(`https://${host}`).to, ports: [{ port: 2049 }] };
  if (scheme === 'cifs') return { to: urlDestination(`https://${host}`).to, ports: [{ port: 445 }] };
  return { to: 'internet', ports: [{ port: 443 }] };
}

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

/** `services.longhorn`. */
export const longhornSettings = z
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
  }).prefault({});

export type LonghornSettings = z.output<typeof longhornSettings>;
export type LonghornProps = LonghornSettings;

export const LONGHORN_NAMESPACE = 'longhorn-system';
/** The longhorn-manager DaemonSet's pods (chart templates/daemonset-sa.yaml) and their API port. */
const MANAGER_PODS = { app: 'longhorn-manager' } as const;
const MANAGER_PORT = 9500;
/**
 * Since 1.5 longhorn-manager serves the CRD conversion webhook (9501) and the admission
 * webhook (9502) itself: the chart's longhorn-conversion-webhook and longhorn-admission-webhook
 * Services (chart templates/services.yaml and network-policies/webhook-network-policy.yaml in 1.12).
 */
const WEBHOOK_PORTS = [9501, 9502] as const;
const CSI_PROVISIONER = 'driver.longhorn.io';
/**
 * The UI: the chart's `longhorn-frontend` Service, port 80 to the `longhorn-ui` pods' port
 * `http` (8000) (longhorn 1.12.1 chart/templates/deployment-ui.yaml). It has no login of its own.
 */
export const LONGHORN_UI = { serviceName: 'longhorn-frontend', servicePort: 80, podPort: 'http', podSelector: { app: 'longhorn-ui' } } as const;
export const CHECKPOINT_CLASS = 'longhorn-checkpoint';
/** The Secret (in longhorn-system) Longhorn reads the backup target's credentials from. */
export const BACKUP_CREDENTIALS_SECRET = 'longhorn-backup-credentials';
/**
 * The keys Longhorn's backup store reads from that Secret, by target scheme (longhorn
 * backupstore: s3, cifs, azblob); an NFS target needs none. An empty AWS_ENDPOINTS means AWS
 * itself; MinIO and other S3 servers need their URL there (Longhorn reads it only from the Secret).
 */
const BACKUP_CREDENTIAL_KEYS: Readonly<Record<string, readonly string[]>> = {
  s3: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_ENDPOINTS'],
  cifs: ['CIFS_USERNAME', 'CIFS_PASSWORD'],
  azblob: ['AZBLOB_ACCOUNT_NAME', 'AZBLOB_ACCOUNT_KEY'],
  nfs: [],
};
/**
 * Longhorn stops scheduling replicas to a disk with less than 25% of it available (setting
 * storage-minimal-available-percentage, default 25): warn while there is still room.
 */
const NODE_STORAGE_WARNING_RATIO = 0.7;

type StorageClassConfig = LonghornSettings['storageClasses'][string];

/**
 * "Longhorn Example v1.1.0" on grafana.com: revision 6. Its robustness panels read the numeric
 * longhorn_volume_robustness of Longhorn < 1.8; 1.12 exports one series per `state` label.
 */
const DASHBOARD = { name: 'longhorn', gnetId: 13032, revision: 6 } as const;

/** The manager's metrics as the chart's own ServiceMonitor scrapes them. */
const MANAGER_METRICS = {
  selector: MANAGER_PODS,
  port: 'manager',
  source: 'longhorn 1.12.1 chart/templates/daemonset-sa.yaml (Service longhorn-backend), servicemonitor.yaml',
} as const;

export class Longhorn extends HomelabService implements StorageProvider {
  readonly defaultStorageClass: string;
  private readonly classNames: ReadonlySet<string>;

  constructor(scope: Platform, props: LonghornProps) {
    const replicas = props.replicas;
    super(scope, 'longhorn', props, {
      layer: Layer.STORAGE,
      namespace: LONGHORN_NAMESPACE,
      podSecurity: {
        level: 'privileged',
        reason: 'longhorn-manager and the CSI plugin run privileged and mount host paths (/dev, /var/lib/longhorn, kubelet)',
      },
      installsCrdGroups: ['longhorn.io'],
      ignoreDifferences: [
        // longhorn-manager injects its conversion webhook's CA into its CRDs at runtime.
        {
          group: 'apiextensions.k8s.io',
          kind: 'CustomResourceDefinition',
          jqPathExpressions: ['.spec.conversion.webhook.clientConfig.caBundle'],
        },
      ],
    });
    this.installChart(helmRelease('longhorn', longhornValues(replicas, props, props.backup && this.backupCredentials(props.backup.target))));

    const classes = Object.entries(props.storageClasses);
    this.classNames = new Set(classes.map(([name]) => name));
    this.defaultStorageClass = classes.find(([, c]) => c.default)![0];
    for (const [name, storageClass] of classes) this.addStorageClass(name, storageClass, replicas);

    for (const [name, job] of Object.entries(props.recurringJobs)) {
      new RecurringJob(this, `recurring-job-${name}`, {
        metadata: { name },
        spec: {
          name,
          task: job.task as RecurringJobSpecTask,
          cron: job.cron,
          retain: job.retain,
          concurrency: job.concurrency,
          groups: job.groups,
        },
      });
    }

    this.addCheckpoint(replicas, props.storageClasses[this.defaultStorageClass]);
    this.addMonitoring(props.backup !== undefined);
    this.declareBackupRecovery(props);
    // Everything else (CSI plugin, instance managers, engine and replica traffic, the UI, the
    // checkpoint) stays inside longhorn-system: the same-namespace rule covers it.
    this.serveApiServer(...WEBHOOK_PORTS.map((port) => ({ port, podSelector: MANAGER_PODS })));
    this.callApiServer({}, 'longhorn-manager, the driver deployer and the CSI sidecars watch and change the cluster');
    if (props.backup) {
      this.allowEgress({
        name: 'backup-target',
        // Backups are written by the instance managers and longhorn-manager.
        podSelector: {},
        to: { kind: 'external', destinations: [backupDestination(props.backup.target)] },
        reason: `Longhorn writes backups to its ${props.backup.target.split(':')[0]} backup target`,
      });
    }
    this.expose({ subdomain: props.subdomain, ...LONGHORN_UI, admin: true });
  }

  /** The runbook's volumes step, where a backup target and backup recurring jobs exist. */
  private declareBackupRecovery(props: LonghornProps): void {
    const jobs = Object.entries(props.recurringJobs).filter(([, job]) => job.task === 'backup');
    if (!props.backup || jobs.length === 0) return;
    this.declareRecovery({
      stage: 'volumes',
      data: `Longhorn volumes of the storage classes in the job groups (${[...new Set(jobs.flatMap(([, job]) => job.groups))].sort().join(', ')})`,
      target: props.backup.target,
      schedule: jobs.map(([name, job]) => `cron "${job.cron}" (${name}, the last ${job.retain} kept)`).join('; '),
      restore: [
        '# Before the workloads write to new, empty volumes: scale each consumer to 0 (or suspend its Application)',
        'kubectl -n longhorn-system get backupvolumes.longhorn.io   # every backed-up volume, with its last backup',
        '# Longhorn UI, Backup: per volume, Restore Latest Backup under the old volume name,',
        '# then Create PV/PVC with the old namespace and PVC name (delete the empty PVC first)',
        '# Scale the consumers back up; their pods mount the restored volumes',
      ],
    });
  }

  storageClass(name?: string): string {
    if (name === undefined) return this.defaultStorageClass;
    if (!this.classNames.has(name)) throw new Error(`Longhorn has no storage class "${name}"`);
    return name;
  }

  /** The backup target's credentials, where its scheme needs any. */
  private backupCredentials(target: string): SecretRef | undefined {
    const scheme = target.slice(0, target.indexOf('://'));
    const keys = BACKUP_CREDENTIAL_KEYS[scheme];
    if (keys === undefined) throw new Error(`longhorn: unknown backup target scheme "${scheme}"`);
    if (keys.length === 0) return undefined;
    // Longhorn reads them when it backs up, not to start: its volumes (Vault's too) never wait for Vault.
    return this.needSecret(BACKUP_CREDENTIALS_SECRET, keys, `credentials of the Longhorn backup target ${target}`, { neededToStart: false });
  }

  private addStorageClass(name: string, storageClass: StorageClassConfig, defaultReplicas: number): void {
    new k8s.KubeStorageClass(this, `storage-class-${name}`, {
      metadata: {
        name,
        annotations: { 'storageclass.kubernetes.io/is-default-class': String(storageClass.default) },
      },
      provisioner: CSI_PROVISIONER,
      allowVolumeExpansion: true,
      reclaimPolicy: storageClass.reclaimPolicy,
      volumeBindingMode: 'Immediate',
      parameters: {
        numberOfReplicas: String(storageClass.replicas ?? defaultReplicas),
        staleReplicaTimeout: '30',
        fsType: 'ext4',
        dataLocality: storageClass.dataLocality,
        recurringJobSelector: JSON.stringify(storageClass.recurringJobGroups.map((group) => ({ name: group, isGroup: true }))),
      },
    });
  }

  /**
   * Every longhorn-manager serves the metrics of its node and of the volumes it owns on the
   * chart's `longhorn-backend` Service, port `manager` (9500), selected by `app:
   * longhorn-manager` as the chart's own ServiceMonitor does (chart/templates/daemonset-sa.yaml
   * and servicemonitor.yaml in longhorn 1.12.1). Since 1.8, longhorn_volume_robustness has a
   * series per `state` (unknown, healthy, degraded, faulted), 1 for the current one
   * (longhorn-manager metrics_collector/volume_collector.go).
   */
  private addMonitoring(backups: boolean): void {
    this.exposeMetrics({ name: 'manager', kind: 'service', selector: MANAGER_METRICS.selector, port: MANAGER_METRICS.port, podPort: MANAGER_PORT, podSelector: MANAGER_PODS });
    const own = `${SERVICE_LABEL}="${this.serviceName}"`;
    const robustness = (state: string) =>
      `max by (volume, pvc, pvc_namespace) (longhorn_volume_robustness{${own}, state="${state}"}) == 1`;
    this.addAlerts(
      {
        alert: 'LonghornVolumeDegraded',
        expr: robustness('degraded'),
        // Rebuilding a replica after a node restart is Degraded too: only a lasting state is news.
        for: '15m',
        severity: 'warning',
        summary: 'Longhorn volume {{ $labels.volume }} (PVC {{ $labels.pvc_namespace }}/{{ $labels.pvc }}) is degraded',
        description: 'Fewer healthy replicas than configured: one more failure and the data may be lost. Check the volume in the Longhorn UI.',
      },
      {
        alert: 'LonghornVolumeFaulted',
        expr: robustness('faulted'),
        for: '2m',
        severity: 'critical',
        summary: 'Longhorn volume {{ $labels.volume }} (PVC {{ $labels.pvc_namespace }}/{{ $labels.pvc }}) is faulted',
        description: 'No healthy replica is left: the volume is unusable until a replica is salvaged or it is restored from a backup.',
      },
      {
        alert: 'LonghornNodeStorageNearlyFull',
        expr: `longhorn_node_storage_usage_bytes{${own}} / longhorn_node_storage_capacity_bytes{${own}} > ${NODE_STORAGE_WARNING_RATIO}`,
        for: '15m',
        severity: 'warning',
        summary: 'Longhorn storage on node {{ $labels.node }} is {{ $value | humanizePercentage }} used',
        description: 'Above 75% Longhorn schedules no new replicas on its disks: free space, add a disk, or move replicas.',
      },
    );
    if (backups) {
      this.addAlerts({
        alert: 'LonghornBackupFailed',
        // One series per Backup, 4 = Error (longhorn-manager metrics_collector/backup_collector.go getBackupStateValue).
        expr: `max by (volume, backup, recurring_job) (longhorn_backup_state{${own}}) == 4`,
        for: '5m',
        severity: 'critical',
        summary: 'Longhorn backup {{ $labels.backup }} of volume {{ $labels.volume }} failed',
        description: "The volume has no new off-site copy: check the backup target's reachability and credentials in the Longhorn UI, then delete the failed backup.",
      });
    }
    this.addDashboard(DASHBOARD);
  }

  /**
   * A fresh volume binds and a pod writes a file to it and reads it back. The volume uses a
   * copy of the default class that deletes its volumes: with `Retain`, every sync would
   * leave a released volume behind.
   */
  private addCheckpoint(defaultReplicas: number, defaultClass: StorageClassConfig): void {
    this.addStorageClass(CHECKPOINT_CLASS, { ...defaultClass, default: false, reclaimPolicy: 'Delete', recurringJobGroups: [] }, defaultReplicas);
    new Checkpoint(this, 'checkpoint', {
      description: `a PersistentVolumeClaim like those on ${this.defaultStorageClass} binds and a pod writes and reads a file on it`,
      image: IMAGES.busybox,
      script: [
        'probe="/data/checkpoint-$(date +%s)"',
        'echo "longhorn checkpoint" > "$probe"',
        'sync',
        'grep -qx "longhorn checkpoint" "$probe"',
        'rm "$probe"',
        'echo "volume writable and readable"',
      ].join('\n'),
      scratchVolume: { storageClass: CHECKPOINT_CLASS, size: '64Mi', mountPath: '/data' },
    });
  }
}

function longhornValues(replicas: number, props: LonghornProps, backupCredentials: SecretRef | undefined): LonghornValues {
  return {
    // Its pre-upgrade hook Job never completes on a first install under Argo CD.
    preUpgradeChecker: { jobEnabled: false },
    persistence: {
      // The chart's own "longhorn" class stays, but ours (from the config) are the default.
      defaultClass: false,
      defaultClassReplicaCount: replicas,
      reclaimPolicy: 'Retain',
    },
    defaultSettings: {
      defaultDataPath: props.dataPath,
      // Longhorn >= 1.8 takes a per-data-engine JSON map here.
      defaultReplicaCount: JSON.stringify({ v1: String(replicas), v2: String(replicas) }),
    },
    defaultBackupStore: props.backup
      ? {
          backupTarget: props.backup.target,
          // Longhorn reads the whole Secret: every key it declares.
          backupTargetCredentialSecret: backupCredentials?.secretName,
          pollInterval: String(Math.round(durationSeconds(props.backup.pollInterval))),
        }
      : {},
    longhornUI: { replicas: Math.min(2, replicas) },
  };
}

/** The check of a storage class another service's settings name (`path` inside its settings). */
export function longhornStorageClassIssues(env: EnvironmentView, path: readonly (string | number)[], storageClass: string | undefined): ConfigIssue[] {
  if (storageClass === undefined || !env.isEnabled(longhornEntry)) return [];
  const classes = Object.keys(env.settingsOf(longhornEntry).storageClasses);
  if (classes.includes(storageClass)) return [];
  return [{ path, message: `expected one of the Longhorn storage classes (${classes.sort().join(', ')}), received "${storageClass}"` }];
}

export const longhornEntry = defineService({
  name: 'longhorn',
  settings: { key: 'longhorn', schema: longhornSettings },
  names: ['longhorn', LONGHORN_NAMESPACE],
  subdomains: ownSubdomain,
  check: (settings, env) => {
    const nodeCount = Object.keys(env.nodes).length;
    const atMostNodes = (path: readonly (string | number)[], replicas: number | undefined): ConfigIssue[] =>
      replicas !== undefined && replicas > nodeCount ? [{ path, message: `expected at most ${nodeCount} (one replica per node), received ${replicas}` }] : [];
    return [
      ...atMostNodes(['replicas'], settings.replicas),
      ...Object.entries(settings.storageClasses).flatMap(([name, storageClass]) => atMostNodes(['storageClasses', name, 'replicas'], storageClass.replicas)),
    ];
  },
  upstreamTargets: { 'longhorn-manager': MANAGER_METRICS },
  build: (platform, settings) => new Longhorn(platform, settings),
});
