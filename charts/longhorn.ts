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
import { absolutePath, bool, cron, duration, intBetween, k8sName, oneOf, subdomain } from '../lib/model/config/primitives';
import type { BackupLocation, BackupTarget } from '../lib/model/backup';
import { helmRelease } from './helm-release';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { durationSeconds } from '../lib/util/quantity';
import type { SecretRef } from '../lib/model/secrets';
import { HomelabService } from '../lib/model/service';
import type { StorageProvider, VolumeBackups } from '../lib/model/storage';
import { IMAGES } from './versions';
import { CANARY_BACKUP_JOB, CANARY_NAME, CANARY_RESOURCES, LonghornCanary, RESTORE_CHECK_JOB, SCRATCH_NAME } from './longhorn-canary';

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
  'longhorn-check-scratch': "the class of the checks' throwaway volumes (scratch restores)",
  [CANARY_NAME]: 'the class of the backup canary volume',
  [SCRATCH_NAME]: 'the class the canary restore check creates and deletes',
};

/** RecurringJob names the Longhorn service creates itself. */
const RESERVED_RECURRING_JOBS: Record<string, string> = {
  [CANARY_BACKUP_JOB]: "the job that backs up the canary volume (with a backup target)",
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
    /** Backups go to the environment's backup target (`backup.target`), under `longhorn/`. */
    backup: z
      .strictObject({
        /** How often Longhorn reads the target's list of backups. */
        pollInterval: duration.default('5m'),
        /**
         * Hours after which a backup job's last successful run is late (alert), 1 to 744 (a
         * monthly job). Keep above the interval of the jobs with `task: backup`.
         */
        maxAgeHours: intBetween(1, 744).default(26),
        /**
         * When the canary volume is backed up (with a backup target): the verification restores
         * its latest backup, which must be younger than `canaryMaxAgeHours`.
         */
        canarySchedule: cron.default('45 * * * *'),
        /** Hours after which the canary's latest backup is too old for the restore check, 1 to 744: keep above the interval of `canarySchedule` (hourly by default). */
        canaryMaxAgeHours: intBetween(1, 744).default(3),
      })
      .prefault({}),
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
    for (const [reserved, owner] of Object.entries(RESERVED_RECURRING_JOBS)) {
      if (reserved in longhorn.recurringJobs) {
        ctx.addIssue({ code: 'custom', path: ['recurringJobs', reserved], message: `expected another name: "${reserved}" is ${owner}` });
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
/** StorageProvider.scratchStorageClass: the databases' scratch restores. */
const SCRATCH_CLASS = 'longhorn-check-scratch';
/**
 * Parameters of a class for volumes that live for one check: one replica, no recurring job (a
 * class's volumes join the `default` group unless `recurringJobSelector` names others, and an
 * empty list names none). With reclaim policy Delete, this class's and the canary restore's.
 */
const SCRATCH_CLASS_PARAMETERS: Readonly<Record<string, string>> = { numberOfReplicas: '1', staleReplicaTimeout: '30', fsType: 'ext4', recurringJobSelector: '[]' };
/**
 * The Secret (in longhorn-system) Longhorn reads the backup target's credentials from: the
 * target's keys and AWS_ENDPOINTS, the S3 server's URL, empty for AWS itself (longhorn
 * backupstore s3: Longhorn reads the endpoint only from this Secret).
 */
export const BACKUP_CREDENTIALS_SECRET = 'longhorn-backup-credentials';
/** Longhorn's backups under the environment's target. */
export const BACKUP_PREFIX = 'longhorn';
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
  readonly scratchStorageClass = SCRATCH_CLASS;
  private readonly classNames: ReadonlySet<string>;
  /** Storage class -> how often its volumes are backed up off-site (the backup jobs of its groups); only classes that are. */
  private readonly classBackups = new Map<string, string>();
  private readonly backupLocation?: BackupLocation;

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
    const backup = scope.backupTarget && { location: scope.backupTarget.location(BACKUP_PREFIX), credentials: this.backupCredentials(scope.backupTarget) };
    this.installChart(helmRelease('longhorn', longhornValues(replicas, props, backup)));

    const classes = Object.entries(props.storageClasses);
    this.classNames = new Set(classes.map(([name]) => name));
    this.defaultStorageClass = classes.find(([, c]) => c.default)![0];
    for (const [name, storageClass] of classes) this.addStorageClass(name, storageClass, replicas);
    if (backup) {
      this.backupLocation = backup.location;
      const allBackupJobs = backupJobs(props);
      for (const [name, storageClass] of classes) {
        const jobs = allBackupJobs.filter(([, job]) => job.groups.some((group) => storageClass.recurringJobGroups.includes(group)));
        if (jobs.length > 0) this.classBackups.set(name, backupSchedule(jobs));
      }
    }

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
    this.addScratchClass();
    if (backup) this.addCanary(replicas, props);
    this.addMonitoring(backup !== undefined);
    if (backup) this.addBackupLateAlert(props);
    if (backup) this.declareBackupRecovery(props, backup.location);
    // Everything else (CSI plugin, instance managers, engine and replica traffic, the UI, the
    // checkpoint) stays inside longhorn-system: the same-namespace rule covers it.
    this.serveApiServer(...WEBHOOK_PORTS.map((port) => ({ port, podSelector: MANAGER_PODS })));
    this.callApiServer({}, 'longhorn-manager, the driver deployer and the CSI sidecars watch and change the cluster');
    if (backup) {
      this.allowEgress({
        name: 'backup-target',
        // Backups are written by the instance managers and longhorn-manager.
        podSelector: {},
        to: { kind: 'external', destinations: [scope.backupTarget!.destination] },
        reason: `Longhorn writes backups to ${backup.location.longhornUrl}`,
      });
    }
    this.expose({ subdomain: props.subdomain, ...LONGHORN_UI, admin: true });
  }

  /** The runbook's volumes step, where a backup target and backup recurring jobs exist. */
  private declareBackupRecovery(props: LonghornProps, location: BackupLocation): void {
    const jobs = backupJobs(props);
    if (jobs.length === 0) return;
    const ns = this.namespaceName;
    const canaryBackup = `${CANARY_BACKUP_JOB}-after-restore`;
    this.declareRecovery({
      stage: 'volumes',
      data: `Longhorn volumes of the storage classes in the job groups (${[...new Set(jobs.flatMap(([, job]) => job.groups))].sort().join(', ')})`,
      target: `${location.s3Url}/`,
      schedule: backupSchedule(jobs),
      restore: [
        '# Before the workloads write to new, empty volumes: scale each consumer to 0 (or suspend its Application)',
        `kubectl -n ${ns} get backupvolumes.longhorn.io   # every backed-up volume, with its last backup`,
        "# Skip Vault's and the PostgreSQL clusters' volumes where a step above restored them from their own, newer backups,",
        `# and the canary (${CANARY_NAME}): it starts afresh`,
        ...restoreClaimLines('the old namespace', 'PVC name', 'per volume'),
        '# Scale the consumers back up; their pods mount the restored volumes',
      ],
      // The UI restores through Longhorn, which reads the target's keys from the Secret Vault delivers.
      atHand: [],
      check: [
        'kubectl get pvc -A   # every claim Bound',
        `kubectl -n ${ns} get volumes.longhorn.io   # the restored volumes attached, ROBUSTNESS healthy`,
        `# A backup of the new canary now (the old canary's backups belong to a volume that is gone): the verification restores its latest`,
        `kubectl -n ${ns} create job --from=cronjob/${CANARY_BACKUP_JOB} ${canaryBackup}`,
        `kubectl -n ${ns} wait job/${canaryBackup} --for=condition=Complete --timeout=30m`,
      ],
      restoreCheck: { namespace: ns, job: RESTORE_CHECK_JOB },
    });
  }

  /**
   * The canary volume Longhorn backs up like any other, and the verification's check that
   * restores its latest backup (charts/longhorn-canary.ts).
   */
  private addCanary(replicas: number, props: LonghornProps): void {
    const defaultClass = props.storageClasses[this.defaultStorageClass];
    const canary = new LonghornCanary(this, 'canary', { replicas: defaultClass.replicas ?? replicas, schedule: props.backup.canarySchedule, maxAgeHours: props.backup.canaryMaxAgeHours, scratchParameters: SCRATCH_CLASS_PARAMETERS });
    this.requestCapacity(CANARY_NAME, 1, CANARY_RESOURCES.requests);
    this.addEndToEndCheck(RESTORE_CHECK_JOB, canary.restoreCheck, { account: canary.account, scratchAccess: canary.scratchAccess });
  }

  volumeBackups(storageClass: string): VolumeBackups | undefined {
    const schedule = this.classBackups.get(storageClass);
    if (schedule === undefined || this.backupLocation === undefined) return undefined;
    return {
      target: `${this.backupLocation.s3Url}/`,
      schedule,
      restoreCheck: { namespace: this.namespaceName, job: RESTORE_CHECK_JOB },
      restoreClaim: (namespace, claim) => restoreClaimLines(`namespace ${namespace}`, `PVC name ${claim}`, `the volume of PVC ${namespace}/${claim}`),
    };
  }

  storageClass(name?: string): string {
    if (name === undefined) return this.defaultStorageClass;
    if (!this.classNames.has(name)) throw new Error(`Longhorn has no storage class "${name}"`);
    return name;
  }

  /** The target's keys and endpoint; read when Longhorn backs up, not to start: its volumes (Vault's too) never wait for Vault. */
  private backupCredentials(target: BackupTarget): SecretRef {
    return this.needBackupCredentials(BACKUP_CREDENTIALS_SECRET, `keys of the backup target ${target.url} for Longhorn's backups`, { AWS_ENDPOINTS: target.endpoint ?? '' });
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
   * longhorn-manager runs each RecurringJob as a CronJob of the same name in longhorn-system
   * (longhorn-manager controller/recurring_job_controller.go, newCronJob), so kube-state-metrics'
   * CronJob series (docs/metrics/workload/cronjob-metrics.md) say when a backup job last
   * succeeded: late when that is longer ago than `maxAgeHours`, or, before a first success, when
   * the CronJob is that old.
   */
  private addBackupLateAlert(props: LonghornProps): void {
    // The canary's job too: it proves the target takes backups even where no user job exists.
    const jobs = [...backupJobs(props).map(([name]) => name), CANARY_BACKUP_JOB].sort();
    const cronjobs = `namespace="${this.namespaceName}", cronjob=~"${jobs.join('|')}"`;
    const maxAge = props.backup.maxAgeHours * 3600;
    this.addAlerts({
      alert: 'LonghornBackupLate',
      expr:
        `(time() - max by (cronjob) (kube_cronjob_status_last_successful_time{${cronjobs}}) > ${maxAge}) or ` +
        `(time() - max by (cronjob) (kube_cronjob_created{${cronjobs}}) > ${maxAge} unless on(cronjob) max by (cronjob) (kube_cronjob_status_last_successful_time{${cronjobs}}))`,
      for: '10m',
      severity: 'critical',
      summary: `Longhorn backup job {{ $labels.cronjob }} has not succeeded in ${props.backup.maxAgeHours} hours`,
      description: 'The volumes of its groups have no recent off-site copy: see the logs of its Jobs in longhorn-system and the backups in the Longhorn UI.',
    });
  }

  /**
   * The scratch class: with the default's `Retain`, every scratch restore would leave a released
   * volume (size × replicas) behind, and in the `default` group it would be backed up.
   */
  private addScratchClass(): void {
    new k8s.KubeStorageClass(this, 'storage-class-scratch', {
      metadata: { name: SCRATCH_CLASS, annotations: { 'storageclass.kubernetes.io/is-default-class': 'false' } },
      provisioner: CSI_PROVISIONER,
      reclaimPolicy: 'Delete',
      volumeBindingMode: 'Immediate',
      parameters: { ...SCRATCH_CLASS_PARAMETERS },
    });
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

function longhornValues(replicas: number, props: LonghornProps, backup: { readonly location: BackupLocation; readonly credentials: SecretRef } | undefined): LonghornValues {
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
    defaultBackupStore: backup
      ? {
          backupTarget: backup.location.longhornUrl,
          // Longhorn reads the whole Secret: every key it declares.
          backupTargetCredentialSecret: backup.credentials.secretName,
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
      ...Object.entries(settings.recurringJobs)
        .filter(([, job]) => job.task === 'backup' && env.backup === undefined)
        .map(([name]) => ({ path: ['recurringJobs', name, 'task'], message: 'expected a backup target: a "backup" job needs backup.target, the environment\'s backup target' })),
    ];
  },
  upstreamTargets: { 'longhorn-manager': MANAGER_METRICS },
  build: (platform, settings) => new Longhorn(platform, settings),
});

type RecurringJobEntry = [string, LonghornProps['recurringJobs'][string]];

/** The recurring jobs that back volumes up to the target. */
function backupJobs(props: LonghornProps): RecurringJobEntry[] {
  return Object.entries(props.recurringJobs).filter(([, job]) => job.task === 'backup');
}

/** The runbook's "how often" of backup jobs. */
function backupSchedule(jobs: readonly RecurringJobEntry[]): string {
  return jobs.map(([name, job]) => `cron "${job.cron}" (${name}, the last ${job.retain} kept)`).join('; ');
}

/** The runbook's restore of backed-up volumes into claims of the old names (Longhorn 1.12 UI, Backup page). */
function restoreClaimLines(namespace: string, claim: string, which: string): string[] {
  return [`# Longhorn UI, Backup: ${which}, Restore Latest Backup under the old volume name,`, `# then Create PV/PVC with ${namespace} and ${claim} (delete the empty PVC first)`];
}
