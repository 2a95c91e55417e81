/**
 * Backups of the CloudNativePG databases to the environment's backup target, through the Barman
 * Cloud plugin (CNPG-I): the plugin's chart as a second chart of the CloudNativePG Application
 * (the operator finds plugins by their Service's labels in its own namespace), and per declared
 * database, in the consumer's namespace, an ObjectStore under `<target>/postgres/<namespace>/`,
 * the plugin as the Cluster's WAL archiver, a ScheduledBackup, a canary row, the restore steps
 * of the runbook and the restore test of the end-to-end verification (docs/adr/0039).
 */
import { k8s } from 'cdk8s-plus-34';
import { Construct } from 'constructs';
import { z } from '../lib/model/config/zod';
import {
  ObjectStore,
  ObjectStoreSpecConfigurationDataCompression,
  ObjectStoreSpecConfigurationWalCompression,
  ObjectStoreSpecInstanceSidecarConfigurationResourcesLimits,
  ObjectStoreSpecInstanceSidecarConfigurationResourcesRequests,
} from '../imports/barman-cloud-objectstore-barmancloud.cnpg.io';
import type { ClusterSpecPlugins } from '../imports/cnpg-cluster-postgresql.cnpg.io';
import { ScheduledBackup, ScheduledBackupSpecBackupOwnerReference, ScheduledBackupSpecMethod } from '../imports/cnpg-scheduledbackup-postgresql.cnpg.io';
import type { BackupTarget } from '../lib/model/backup';
import { CheckpointProps, probeJob } from '../lib/model/checkpoint';
import { cron, intBetween, resourcesSchema } from '../lib/model/config/primitives';
import { BackupCredentialsNeed, DatabaseBackup, DatabaseNeed, databaseRestoreCheckJob } from '../lib/model/databases';
import { pauseArgoCd, SyncPolicy } from '../lib/model/recovery';
import { quantities, resources, Resources } from '../lib/model/resources';
import { AlertRule, ENDPOINT_LABEL, SERVICE_LABEL } from '../lib/model/monitoring';
import type { SecretRef } from '../lib/model/secrets';
import { HomelabService } from '../lib/model/service';
import type { HelmRelease } from '../lib/model/sources';
import { emitYaml } from '../lib/util/yaml-emitter';
import { helmRelease } from './helm-release';
import { IMAGES } from './versions';

/** API group of ObjectStore, which the plugin's chart installs. */
export const BARMAN_CLOUD_GROUP = 'barmancloud.cnpg.io';
/**
 * The plugin's name as Clusters and Backups name it: the `cnpg.io/pluginName` label of the
 * chart's Service (plugin-barman-cloud 0.7.0 templates/service.yaml), by which the operator
 * discovers it among the Services of its own namespace.
 */
const BARMAN_CLOUD_PLUGIN = 'barman-cloud.cloudnative-pg.io';
/** The release: the chart's fullname is then `plugin-barman-cloud` (_helpers.tpl: a release name containing the chart name is the fullname). */
const PLUGIN_RELEASE = 'plugin-barman-cloud';
/** The plugin's pods (chart _helpers.tpl selectorLabels). */
export const PLUGIN_POD_LABELS = { 'app.kubernetes.io/name': 'plugin-barman-cloud', 'app.kubernetes.io/instance': PLUGIN_RELEASE } as const;
/** Where the databases' backups go under the environment's backup target: `<prefix>/postgres/<namespace>/<cluster>/`. */
export const BACKUP_PREFIX = 'postgres';
/** The plugin's operator. */
const DEFAULT_PLUGIN_RESOURCES = resources('10m', '64Mi', '500m', '256Mi');
/** The sidecar the plugin injects into every instance (barman-cloud-wal-archive, -backup, -restore). */
const SIDECAR_RESOURCES = resources('50m', '128Mi', '1', '512Mi');
/** The restore check's scratch instance: one, small, for minutes. */
const SCRATCH_RESOURCES = resources('100m', '256Mi', '1', '1Gi');
/** The canary table every backed-up database holds, one row, rewritten on every sync. */
const CANARY_TABLE = 'homelab_canary';
/**
 * The one deadline of the restore check's script, counted from its start: every wait respects
 * it (a recovery copies a base backup and replays the WAL after it).
 */
const RESTORE_BUDGET_SECONDS = 1680;
/** curl's limit for the restore check's API calls (`kube`). */
const RESTORE_CALL_MAX_SECONDS = 15;
/** The claims of the scratch Cluster's one instance at most: its data and its WAL. */
const SCRATCH_VOLUMES = 2;
/**
 * The longest the restore check's script runs (its Job's deadline adds the pod's start, image
 * pulls counted): the budget, then what it may still do once that is out — the cleanup's last
 * pause and its check of the scratch Cluster (the claims' listing, the Cluster, each volume) at
 * the calls' limit. A pod the Job kills gets ~30 s of grace, too little for a cleanup.
 */
const RESTORE_SCRIPT_SECONDS = RESTORE_BUDGET_SECONDS + 10 + (2 + SCRATCH_VOLUMES) * RESTORE_CALL_MAX_SECONDS;
/** The share of the budget the final cleanup keeps (the scratch Cluster, its claims and volumes gone); also the limit for an earlier run's leftovers. */
const RESTORE_CLEANUP_SECONDS = 480;
/** The query side asks the recovered database this often, 10 s apart, once it is Ready. From the Job's env, so that the tests fail it in two tries; unset, the script stops with a message. */
const QUERY_CHECKS = 30;
const WORK_DIR = '/work';
/** Where the query container finds the owner's password. */
const OWNER_SECRET_DIR = '/owner';

/** `services.cloudnativePg.backup`: used where the environment has a backup target (`backup.target`), inert otherwise. */
export const databaseBackupSettings = z
  .strictObject({
    /** When the base backups run (five fields; the ScheduledBackup's six-field form, seconds first, is derived). WAL is archived continuously. */
    schedule: cron.default('0 3 * * *'),
    /** Days of base backups and WAL the plugin keeps (Barman's recovery window, `<n>d`), 1 to 3650: older ones are deleted. */
    retentionDays: intBetween(1, 3650).default(30),
    /** Hours after which the latest base backup is late (alert), 1 to 168. Keep above the schedule's interval. */
    maxAgeHours: intBetween(1, 168).default(26),
    /** The plugin's operator. */
    resources: resourcesSchema.default(DEFAULT_PLUGIN_RESOURCES),
  })
  .prefault({});

export type DatabaseBackupSettings = z.output<typeof databaseBackupSettings>;

/** The plugin's chart: its CRD, its operator and the cert-manager Issuer and Certificates of its mTLS with the operator. */
export function pluginRelease(settings: DatabaseBackupSettings): HelmRelease {
  return helmRelease(
    'barmanCloud',
    {
      crds: { create: true },
      image: imageParts(IMAGES.barmanCloudPlugin),
      sidecarImage: imageParts(IMAGES.barmanCloudSidecar),
      resources: settings.resources,
    },
    PLUGIN_RELEASE,
  );
}

/** `<registry>/<repository>:<tag>` as the chart's image values. */
function imageParts(image: string): { registry: string; repository: string; tag: string } {
  const match = /^([^/]+)\/(.+):([^:/]+)$/.exec(image);
  if (!match) throw new Error(`not a pinned image: ${image}`);
  return { registry: match[1], repository: match[2], tag: match[3] };
}

/** What the backups of one database are made of. */
export interface DatabaseBackupProps {
  readonly target: BackupTarget;
  readonly settings: DatabaseBackupSettings;
  readonly need: DatabaseNeed;
  /** The database cluster. */
  readonly cluster: string;
  /** The owner's generated credentials (`<cluster>-app`): the canary and the restore check use them. */
  readonly ownerSecret: string;
  /** The consumer's Secret with the target's keys (credentialsFor). */
  readonly credentials: SecretRef;
  /** The environment's sync policy (`sync`): the runbook pauses an automated one while it restores. */
  readonly sync: SyncPolicy;
}

/** The consumer's Secret with the target's keys and its region (the ObjectStore reads the region from a Secret too). */
export function credentialsFor(target: BackupTarget, cluster: string): BackupCredentialsNeed {
  return {
    name: `${cluster}-backup-credentials`,
    purpose: `keys of the backup target ${target.url} for the WAL and base backups of database ${cluster}`,
    fixed: { AWS_REGION: target.region },
  };
}

/**
 * One database's backups, emitted into its consumer's tree: the ObjectStore (a wave before the
 * Cluster, which names it), the ScheduledBackup (after it, with a first backup at once) and the
 * canary hook. `plugins` goes into the Cluster's spec.
 */
export class DatabaseBackups extends Construct {
  readonly objectStore: string;
  /** The Cluster's `spec.plugins`. */
  readonly plugins: ClusterSpecPlugins[];
  readonly backup: DatabaseBackup;

  constructor(scope: HomelabService, id: string, props: DatabaseBackupProps) {
    super(scope, id);
    const consumer = HomelabService.of(this);
    const { target, settings, cluster, credentials } = props;
    const location = target.location(BACKUP_PREFIX, consumer.namespaceName);
    this.objectStore = `${cluster}-backup`;
    const labels = consumer.labelsFor('database');
    new ObjectStore(this, 'object-store', {
      metadata: { name: this.objectStore, labels, annotations: { 'argocd.argoproj.io/sync-wave': '-2' } },
      spec: {
        configuration: {
          // Barman adds the server name, the Cluster's by default: <prefix>/postgres/<namespace>/<cluster>/.
          destinationPath: location.s3Url,
          endpointUrl: target.endpoint,
          s3Credentials: {
            accessKeyId: credentials.keySelector('AWS_ACCESS_KEY_ID'),
            secretAccessKey: credentials.keySelector('AWS_SECRET_ACCESS_KEY'),
            region: credentials.keySelector('AWS_REGION'),
          },
          wal: { compression: ObjectStoreSpecConfigurationWalCompression.GZIP },
          data: { compression: ObjectStoreSpecConfigurationDataCompression.GZIP },
        },
        retentionPolicy: `${settings.retentionDays}d`,
        instanceSidecarConfiguration: {
          resources: {
            requests: quantities(ObjectStoreSpecInstanceSidecarConfigurationResourcesRequests, SIDECAR_RESOURCES.requests),
            limits: quantities(ObjectStoreSpecInstanceSidecarConfigurationResourcesLimits, SIDECAR_RESOURCES.limits),
          },
        },
      },
    });
    this.plugins = [{ name: BARMAN_CLOUD_PLUGIN, isWalArchiver: true, parameters: { barmanObjectName: this.objectStore } }];
    new ScheduledBackup(this, 'scheduled-backup', {
      metadata: { name: `${cluster}-backup`, labels },
      spec: {
        cluster: { name: cluster },
        // CloudNativePG's schedule has six fields, seconds first (robfig/cron).
        schedule: `0 ${settings.schedule}`,
        method: ScheduledBackupSpecMethod.PLUGIN,
        pluginConfiguration: { name: BARMAN_CLOUD_PLUGIN },
        // The first base backup at once: a restore needs one, and the next run may be a day away.
        immediate: true,
        backupOwnerReference: ScheduledBackupSpecBackupOwnerReference.SELF,
      },
    });
    this.addCanary(consumer, props);
    const where = `${location.s3Url}/${cluster}/`;
    const scratchCluster = `${cluster}-restore-check`;
    this.backup = {
      location: where,
      destination: target.destination,
      scratchCluster,
      scratchPodSelector: { [CLUSTER_LABEL]: scratchCluster },
      sidecarRequests: SIDECAR_RESOURCES.requests,
      scratchRequests: SCRATCH_RESOURCES.requests,
      recovery: this.recovery(consumer, props, where),
      alerts: backupAlerts(consumer, props, where),
      restoreCheck: this.restoreCheck(consumer, props, scratchCluster, where),
      restoreAccess: restoreAccess(scratchCluster, this.objectStore),
    };
  }

  /** The canary row: after every sync of the consumer, the database's one row of CANARY_TABLE gets the time; the restore check finds it. */
  private addCanary(consumer: HomelabService, props: DatabaseBackupProps): void {
    probeJob(new Construct(this, 'canary'), `${props.cluster}-canary`, canaryJob(props), { owner: consumer });
  }

  /** The runbook's step: a Cluster of the same name recovered from the latest base backup and all WAL after it. */
  private recovery(consumer: HomelabService, props: DatabaseBackupProps, where: string): DatabaseBackup['recovery'] {
    const { target, need, cluster, settings } = props;
    const namespace = consumer.namespaceName;
    const origin = `${cluster}-origin`;
    const base = where.replace(/[^/]+\/$/, '');
    const app = consumer.serviceName;
    const argocd = pauseArgoCd(app, props.sync);
    return {
      stage: 'databases',
      data: `PostgreSQL database ${need.name} of ${consumer.serviceName} (Cluster ${namespace}/${cluster}): base backups and WAL`,
      target: where,
      schedule: `WAL continuously, base backups cron "${settings.schedule}", kept ${settings.retentionDays} days`,
      restore: [
        `# After Vault: External Secrets delivers ${namespace}/${props.credentials.secretName}.`,
        ...argocd.pause,
        `kubectl -n ${namespace} delete cluster ${cluster} --ignore-not-found   # an empty or broken one; its volumes go with it`,
        '# Move the backups aside: the recovered cluster archives anew under the old name, and Barman refuses a non-empty place',
        target.awsS3(`mv --recursive ${where} ${base}${origin}/`),
        `kubectl apply -f - <<'EOF'`,
        ...recoveryClusterYaml({ namespace, cluster, origin, objectStore: this.objectStore, need, archive: true }),
        'EOF',
        `kubectl -n ${namespace} wait cluster/${cluster} --for=condition=Ready --timeout=60m`,
        "# Argo CD then applies the declared Cluster over it: its bootstrap is read only when a cluster is created",
        ...argocd.resume,
        `argocd app sync ${app}`,
      ],
      atHand: [target.keysAtHand],
      check: [
        `kubectl -n ${namespace} get cluster ${cluster}   # STATUS Cluster in healthy state, every instance READY`,
        '# A base backup now, into the fresh archive (the next scheduled one may be a day away): the restore test recovers from it',
        `kubectl apply -f - <<'EOF'`,
        ...emitYaml(afterRestoreBackup(namespace, cluster)).trimEnd().split('\n'),
        'EOF',
        `kubectl -n ${namespace} wait backup/${cluster}-after-restore --for=jsonpath='{.status.phase}'=completed --timeout=60m`,
      ],
      restoreCheck: { namespace, job: databaseRestoreCheckJob(cluster) },
    };
  }

  /**
   * The verification's restore test, in the consumer's namespace: a scratch Cluster recovered from
   * the latest base backup and WAL (never archiving) answers with the canary row, then goes with
   * its volumes whatever the outcome. Two containers: curl for the API, psql for the query.
   */
  private restoreCheck(consumer: HomelabService, props: DatabaseBackupProps, scratch: string, where: string): Omit<CheckpointProps, 'hookWave'> {
    const { need, cluster } = props;
    const namespace = consumer.namespaceName;
    const manifest = recoveryClusterManifest({ namespace, cluster: scratch, origin: cluster, objectStore: this.objectStore, need, archive: false });
    return {
      description: `database ${cluster}: a scratch cluster recovered from the latest base backup in ${where} and its WAL answers with the canary row`,
      image: IMAGES.curl,
      scriptSeconds: RESTORE_SCRIPT_SECONDS,
      env: {
        NAMESPACE: namespace,
        CLUSTER: cluster,
        SCRATCH: scratch,
        OBJECT_STORE: this.objectStore,
        SCRATCH_MANIFEST: JSON.stringify(manifest),
        DEADLINE_SECONDS: String(RESTORE_BUDGET_SECONDS),
        CLEANUP_SECONDS: String(RESTORE_CLEANUP_SECONDS),
        WORK_DIR,
      },
      script: RESTORE_CHECK_SCRIPT,
      creates: `postgresql.cnpg.io/Cluster ${scratch}`,
      volumes: [{ name: 'work', emptyDir: {} }],
      volumeMounts: [{ name: 'work', mountPath: WORK_DIR }],
      // The scratch claims' PersistentVolumes, named by their claims at run time (so not by name here).
      readsCluster: [{ apiGroups: [''], resources: ['persistentvolumes'], verbs: ['get'] }],
      companion: {
        name: 'query',
        image: IMAGES.postgres,
        // It waits for the scratch cluster as long as the API side does; an abort ends it sooner.
        env: { SCRATCH: scratch, DATABASE: need.name, WAIT_SECONDS: String(RESTORE_BUDGET_SECONDS - RESTORE_CLEANUP_SECONDS), WORK_DIR, OWNER_SECRET_DIR, PGCONNECT_TIMEOUT: '10', QUERY_CHECKS: String(QUERY_CHECKS) },
        secretEnv: { PGUSER: { name: props.ownerSecret, key: 'username' } },
        // The password as a file of this container only, read when psql connects.
        secretFiles: { secretName: props.ownerSecret, keys: ['password'], mountPath: OWNER_SECRET_DIR },
        script: RESTORE_QUERY_SCRIPT,
      },
    };
  }
}

/** The label CloudNativePG puts on every pod of a cluster (pkg/utils labels: ClusterLabelName). */
export const CLUSTER_LABEL = 'cnpg.io/cluster';

/** The selector of a database's own series: its consumer's monitor of that cluster. */
export function ownSeries(consumer: HomelabService, cluster: string): string {
  return `${SERVICE_LABEL}="${consumer.serviceName}", ${ENDPOINT_LABEL}="${cluster}"`;
}

/** `n8n-db` -> `N8nDb`: a cluster's name in its alerts' names. */
export function pascalCase(name: string): string {
  return name.replace(/(^|-)([a-z0-9])/g, (_, _dash, c: string) => c.toUpperCase());
}

/**
 * Alerts when a database's backups are late or failing, on the metrics its instances export:
 * the plugin's (plugin-barman-cloud docs/observability.md: `barman_cloud_cloudnative_pg_io_last_
 * available_backup_timestamp`, `..._last_failed_backup_timestamp`, through the instance
 * manager's exporter) and the operator's default pg_stat_archiver query (cloudnative-pg chart
 * 0.29.0 values.yaml: `cnpg_pg_stat_archiver_last_archived_time`, `..._last_failed_time`).
 */
function backupAlerts(consumer: HomelabService, props: DatabaseBackupProps, where: string): AlertRule[] {
  const { cluster, settings } = props;
  const own = ownSeries(consumer, cluster);
  const name = pascalCase(cluster);
  const lastBackupSeries = `barman_cloud_cloudnative_pg_io_last_available_backup_timestamp{${own}}`;
  const lastBackup = `max(${lastBackupSeries})`;
  const logs = `kubectl -n ${consumer.namespaceName} get backups -l cnpg.io/cluster=${cluster}; the plugin's sidecar: kubectl -n ${consumer.namespaceName} logs -l cnpg.io/cluster=${cluster} -c plugin-barman-cloud`;
  return [
    {
      alert: `${name}BackupLate`,
      expr: `time() - ${lastBackup} > ${settings.maxAgeHours * 3600}`,
      for: '10m',
      severity: 'critical',
      summary: `No base backup of database ${cluster} reached ${where} in ${settings.maxAgeHours} hours`,
      description: `A restore would replay every WAL segment since the last one, or find none. ${logs}`,
    },
    {
      // The comparison above is empty without the series: no backup ever succeeded, or its metrics are not scraped.
      alert: `${name}BackupUnknown`,
      expr: `absent(${lastBackupSeries})`,
      for: `${settings.maxAgeHours}h`,
      severity: 'critical',
      summary: `No base backup of database ${cluster} is known to have reached ${where} for ${settings.maxAgeHours} hours`,
      description: `Its instances report no last backup: none has succeeded, or the plugin's metrics are not scraped (its PodMonitor, the instances' exporter). ${logs}`,
    },
    {
      alert: `${name}BackupFailed`,
      // A failure before any success counts too.
      expr: `max(barman_cloud_cloudnative_pg_io_last_failed_backup_timestamp{${own}}) > (${lastBackup} or vector(0))`,
      for: '5m',
      severity: 'warning',
      summary: `The last base backup of database ${cluster} failed`,
      description: logs,
    },
    {
      alert: `${name}WalArchivingFailing`,
      expr: `max(cnpg_pg_stat_archiver_last_failed_time{${own}}) > (max(cnpg_pg_stat_archiver_last_archived_time{${own}}) or vector(0))`,
      for: '10m',
      severity: 'critical',
      summary: `Database ${cluster} cannot archive its WAL to ${where}`,
      description: `Every transaction since is only on the cluster's volumes, and the WAL piles up there. ${logs}`,
    },
  ];
}

interface RecoveryClusterProps {
  readonly namespace: string;
  /** The Cluster to create. */
  readonly cluster: string;
  /** The server name the backups are under. */
  readonly origin: string;
  readonly objectStore: string;
  readonly need: DatabaseNeed;
  /** Whether it archives again (the runbook's) or never (the restore check's scratch cluster). */
  readonly archive: boolean;
}

/**
 * A Cluster bootstrapped from the ObjectStore: the latest base backup, then every WAL segment
 * after it (plugin-barman-cloud docs/usage.md, "Restoring a Cluster"), recovered from the
 * external cluster `origin`, whose `serverName` says under which name the backups are.
 */
function recoveryClusterManifest(props: RecoveryClusterProps): Record<string, unknown> {
  const { need } = props;
  const instanceResources: Resources = props.archive ? need.resources : SCRATCH_RESOURCES;
  return {
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: { name: props.cluster, namespace: props.namespace },
    spec: {
      instances: props.archive ? need.instances : 1,
      imageName: IMAGES.postgres,
      enableSuperuserAccess: false,
      // The scratch cluster's volumes go with it: the consumer's class may retain (and back up) them.
      storage: { size: need.size, storageClass: props.archive ? need.storageClass : need.scratchStorageClass },
      resources: { requests: { ...instanceResources.requests }, limits: { ...instanceResources.limits } },
      // The runbook's cluster gets a new `<cluster>-app` (the owner's password set anew); the scratch one keeps the recovered password, which the check logs in with.
      bootstrap: { recovery: { source: 'origin', ...(props.archive && { database: need.name, owner: need.name }) } },
      externalClusters: [{ name: 'origin', plugin: { name: BARMAN_CLOUD_PLUGIN, parameters: { barmanObjectName: props.objectStore, serverName: props.origin } } }],
      ...(props.archive && { plugins: [{ name: BARMAN_CLOUD_PLUGIN, isWALArchiver: true, parameters: { barmanObjectName: props.objectStore } }] }),
    },
  };
}

/** An on-demand base backup through the plugin, for the runbook's check (the Backup CRD of the cloudnative-pg chart 0.29.0: `spec.method` plugin, `spec.pluginConfiguration.name`). */
function afterRestoreBackup(namespace: string, cluster: string): Record<string, unknown> {
  return {
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Backup',
    metadata: { name: `${cluster}-after-restore`, namespace },
    spec: { cluster: { name: cluster }, method: 'plugin', pluginConfiguration: { name: BARMAN_CLOUD_PLUGIN } },
  };
}

/** The recovery Cluster as YAML lines for the runbook. */
function recoveryClusterYaml(props: RecoveryClusterProps): string[] {
  return emitYaml(recoveryClusterManifest(props)).trimEnd().split('\n');
}

/**
 * libpq's limits for a check's psql (the generated `uri` sets none): a connection attempt and a
 * statement each give up after 10 s, so a primary that accepts connections but never answers
 * fails the try instead of holding the Job until its deadline.
 */
export const PSQL_LIMITS = { PGCONNECT_TIMEOUT: '10', PGOPTIONS: '-c statement_timeout=10s' };

/** The canary hook Job of the consumer's Application: as the owner, upsert the one row with the time. */
function canaryJob(props: DatabaseBackupProps): CheckpointProps {
  return {
    description: `database ${props.cluster}: the canary row of ${CANARY_TABLE} holds the time of this sync (the restore check looks for it)`,
    image: IMAGES.postgres,
    env: { CLUSTER: props.cluster, TABLE: CANARY_TABLE, ...PSQL_LIMITS },
    secretEnv: { DATABASE_URI: { name: props.ownerSecret, key: 'uri' } },
    script: CANARY_SCRIPT,
  };
}

/** Runs with `sh -ec` in the PostgreSQL image: the owner upserts the canary row, retrying while the primary starts. */
const CANARY_SCRIPT = String.raw`sql="create table if not exists $TABLE (id integer primary key, written_at timestamptz not null);
insert into $TABLE values (1, now()) on conflict (id) do update set written_at = excluded.written_at
returning to_char(written_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
deadline=$(( $(date +%s) + 300 ))
until written=$(psql "$DATABASE_URI" -XAtq -v ON_ERROR_STOP=1 -c "$sql" 2>&1); do
  if [ "$(date +%s)" -ge "$deadline" ]; then echo "FAIL $CLUSTER: cannot write the canary row within 5 minutes: $written" >&2; exit 1; fi
  echo "waiting for $CLUSTER: $written"
  sleep 10
done
echo "canary row of $CLUSTER written at $written UTC"`;

/**
 * The restore check's API side, in the curl image (kube_get from the checkpoint's helpers): the
 * latest base backup's time from the ObjectStore's status; a scratch Cluster recovered from it
 * and the WAL after it; once Ready, the query container reads the canary row; PASS or FAIL with
 * the backup's age. The scratch Cluster is deleted, and its claims and volumes awaited, whatever
 * happens (trap), and also before starting (a run the deadline killed). Every wait ends by one
 * deadline, DEADLINE_SECONDS after the start, the work CLEANUP_SECONDS before it.
 */
export const RESTORE_CHECK_SCRIPT = String.raw`api=/apis/postgresql.cnpg.io/v1/namespaces/$NAMESPACE/clusters
start=$(date +%s)
end=$(( start + DEADLINE_SECONDS ))
work_end=$(( end - CLEANUP_SECONDS ))
# No call may hang past the deadline.
kube() { kube_get "$@" --max-time ${RESTORE_CALL_MAX_SECONDS}; }
# The scratch cluster's PersistentVolumes seen in its claims so far, and what is left of it.
volumes_seen=""
left=""
# Lists the scratch cluster's claims into $claims, noting their volumes; fails when the listing does.
list_claims() {
  claims=$(kube "/api/v1/namespaces/$NAMESPACE/persistentvolumeclaims?labelSelector=cnpg.io%2Fcluster%3D$SCRATCH") || { left="an unlisted claim"; return 1; }
  # Each "volumeName" value, cut out by the shell itself: this runs at every poll.
  rest=$claims
  while :; do
    case $rest in *'"volumeName":"'*) rest=${'$'}{rest#*'"volumeName":"'} ;; *) break ;; esac
    volume=${'$'}{rest%%'"'*}
    [ -z "$volume" ] || case " $volumes_seen " in *" $volume "*) ;; *) volumes_seen="$volumes_seen $volume" ;; esac
  done
}
# Gone: the Cluster answers 404, no claim of it is listed and every volume seen answers 404 (a
# failed listing is not "gone"). Its volumes' class deletes them after their claims.
scratch_gone() {
  list_claims || return 1
  code=$(kube "$api/$SCRATCH" -o /dev/null -w '%{http_code}' 2> /dev/null || true)
  [ "$code" = 404 ] || { left="the Cluster"; return 1; }
  case "$claims" in *'"uid":'*) left="a claim"; return 1 ;; esac
  for volume in $volumes_seen; do
    code=$(kube "/api/v1/persistentvolumes/$volume" -o /dev/null -w '%{http_code}' 2> /dev/null || true)
    [ "$code" = 404 ] || { left="the PersistentVolume $volume"; return 1; }
  done
}
# Deletes the scratch Cluster (its volumes noted first: the claims may go at once) and waits until it is gone, at most until the time $1.
delete_scratch() {
  list_claims || true
  kube "$api/$SCRATCH" -X DELETE -o /dev/null 2> /dev/null || true
  until scratch_gone; do
    if [ "$(date +%s)" -ge "$1" ]; then
      echo "the scratch cluster $SCRATCH is not gone $(( $(date +%s) - start )) s into the check: $left of it is still there" >&2
      return 1
    fi
    sleep 10
  done
}
finish() {
  status=$?
  trap - EXIT
  [ -f "$WORK_DIR/answer" ] || : > "$WORK_DIR/abort"
  if delete_scratch "$end"; then echo "cleaned up: no scratch cluster $SCRATCH, no claim or volume of it"; else status=1; fi
  exit $status
}
fail() { echo "FAIL $CLUSTER: $*" >&2; exit 1; }
trap finish EXIT
trap 'exit 143' TERM INT
store=$(kube "/apis/barmancloud.cnpg.io/v1/namespaces/$NAMESPACE/objectstores/$OBJECT_STORE") || fail "cannot read ObjectStore $OBJECT_STORE"
last=$(printf '%s' "$store" | grep -o '"lastSuccessfulBackupTime":"[^"]*"' | head -n 1 | cut -d '"' -f 4)
[ -n "$last" ] || fail "no base backup in ObjectStore $OBJECT_STORE yet (status.serverRecoveryWindow): nothing to restore"
age=$(( ($(date -u +%s) - $(date -u -d "$(printf '%s' "$last" | sed 's/T/ /; s/Z$//')" +%s)) / 3600 ))
echo "latest base backup of $CLUSTER: $last ($age h old)"
delete_scratch $(( start + CLEANUP_SECONDS )) || fail "a scratch cluster $SCRATCH of an earlier run cannot be removed"
printf '%s' "$SCRATCH_MANIFEST" > "$WORK_DIR/cluster.json"
kube "$api" -X POST -H 'Content-Type: application/json' --data-binary "@$WORK_DIR/cluster.json" -o /dev/null || fail "cannot create the scratch cluster $SCRATCH"
echo "scratch cluster $SCRATCH created: recovering the latest base backup and the WAL after it"
# Whether the scratch Cluster's condition Ready is True (either key order), asked at every poll.
scratch_ready() {
  case $(kube "$api/$SCRATCH") in *'"type":"Ready","status":"True"'* | *'"status":"True","type":"Ready"'*) return 0 ;; esac
  return 1
}
until scratch_ready; do
  [ "$(date +%s)" -lt "$work_end" ] || fail "the scratch cluster recovered from the backup ($age h old) is not Ready within $(( work_end - start )) s of the check's start (the rest is the cleanup's)"
  sleep 10
done
: > "$WORK_DIR/ready"
until [ -f "$WORK_DIR/answer" ]; do
  [ "$(date +%s)" -lt "$work_end" ] || fail "no answer from the scratch cluster within $(( work_end - start )) s of the check's start"
  sleep 5
done
answer=$(cat "$WORK_DIR/answer")
case "$answer" in
  canary\|*) echo "PASS $CLUSTER: recovered from the latest base backup ($age h old) and WAL, the canary row written ${'$'}{answer#canary|} UTC is there" ;;
  *) fail "the scratch cluster recovered from the backup ($age h old) has no canary row: ${'$'}{answer#error|}" ;;
esac`;

/**
 * The restore check's query side, in the PostgreSQL image: once the scratch cluster is Ready, the
 * database's own owner (the recovered data holds its role and password) reads the canary row;
 * the answer goes to the API side through the shared work folder.
 */
const RESTORE_QUERY_SCRIPT = String.raw`deadline=$(( $(date +%s) + WAIT_SECONDS ))
until [ -f "$WORK_DIR/ready" ]; do
  if [ -f "$WORK_DIR/abort" ]; then exit 0; fi
  if [ "$(date +%s)" -ge "$deadline" ]; then echo "the scratch cluster $SCRATCH was not Ready in time" >&2; exit 0; fi
  sleep 5
done
query="select to_char(written_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') from ${CANARY_TABLE} where id = 1"
tries=0
until written=$(PGPASSWORD=$(cat "$OWNER_SECRET_DIR/password") psql -h "$SCRATCH-rw" -d "$DATABASE" -XAtq -c "$query" 2>&1); do
  if [ -f "$WORK_DIR/abort" ]; then exit 0; fi
  tries=$((tries + 1))
  if [ "$tries" -ge "${'$'}{QUERY_CHECKS:?unset (the Job sets it)}" ]; then printf 'error|%s\n' "$written" > "$WORK_DIR/answer.tmp"; mv "$WORK_DIR/answer.tmp" "$WORK_DIR/answer"; exit 0; fi
  sleep 10
done
if [ -n "$written" ]; then printf 'canary|%s\n' "$written"; else printf 'error|%s\n' "the table ${CANARY_TABLE} holds no row"; fi > "$WORK_DIR/answer.tmp"
mv "$WORK_DIR/answer.tmp" "$WORK_DIR/answer"`;

/** The restore check's rights in the consumer's namespace beyond reading (EndToEndCheck.access). */
function restoreAccess(scratch: string, objectStore: string): k8s.PolicyRule[] {
  return [
    // RBAC cannot name what is created: create any Cluster here; read and delete only the scratch one.
    { apiGroups: ['postgresql.cnpg.io'], resources: ['clusters'], verbs: ['create'] },
    { apiGroups: ['postgresql.cnpg.io'], resources: ['clusters'], verbs: ['get', 'delete'], resourceNames: [scratch] },
    { apiGroups: [BARMAN_CLOUD_GROUP], resources: ['objectstores'], verbs: ['get'], resourceNames: [objectStore] },
    // Read only: the scratch volumes go with their Cluster (the operator owns them); the check waits for that.
    { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['list'] },
  ];
}
