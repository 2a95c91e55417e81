/**
 * CloudNativePG (storage layer): the `cloudnative-pg` chart — the operator with its CRDs and
 * admission webhooks, watching every namespace. It runs no database itself: services declare
 * theirs (HomelabService.needDatabase) and `emitDatabase` writes a `Cluster` into the
 * consumer's own Application and namespace, one sync wave before the consumer's workloads. The
 * operator bootstraps each with a database and its owner and generates the owner's password in
 * the Secret `<cluster>-app` next to the pods that read it: nothing in Git or Vault
 * (docs/adr/0028). Where the environment has a backup target, the Barman Cloud plugin's chart
 * runs beside the operator and every database is archived there (cloudnative-pg-backups.ts,
 * docs/adr/0039).
 */
import { z } from '../lib/model/config/zod';
import type { CloudnativePgValues } from '../imports/helm/cloudnative-pg';
import { Cluster, ClusterSpecResourcesLimits, ClusterSpecResourcesRequests } from '../imports/cnpg-cluster-postgresql.cnpg.io';
import { defineService } from '../lib/model/catalog';
import { Checkpoint, CheckpointProps, curlRetryOptions, STARTING_SERVER_CALL } from '../lib/model/checkpoint';
import { bool, intBetween, k8sName, resourcesSchema, volumeSize } from '../lib/model/config/primitives';
import type { BackupTarget } from '../lib/model/backup';
import type { BackupCredentialsNeed, DatabaseNeed, DatabaseProvider, DatabaseRef } from '../lib/model/databases';
import type { SecretRef } from '../lib/model/secrets';
import { quantities } from '../lib/model/resources';
import { BARMAN_CLOUD_GROUP, CLUSTER_LABEL, credentialsFor, PSQL_LIMITS, databaseBackupSettings, DatabaseBackups, DatabaseBackupSettings, ownSeries, pascalCase, PLUGIN_POD_LABELS, pluginRelease } from './cloudnative-pg-backups';
import { certManagerEntry } from './cert-manager';
import { Layer } from '../lib/model/layers';
import { AlertRule, SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { HomelabService } from '../lib/model/service';
import { helmRelease } from './helm-release';
import { IMAGES } from './versions';

/** The operator's container. */
export const DEFAULT_OPERATOR_RESOURCES = { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } };
/** Per PostgreSQL instance of a declared database. */
export const DEFAULT_DATABASE_RESOURCES = { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } };

/** `services.cloudnativePg`. */
export const cloudnativePgSettings = z
  .strictObject({
    enabled: bool.default(false),
    resources: resourcesSchema.default(DEFAULT_OPERATOR_RESOURCES),
    /** The databases' backups, where the environment has a backup target (`backup.target`). */
    backup: databaseBackupSettings,
  })
  .prefault({});

export type CloudnativePgSettings = z.output<typeof cloudnativePgSettings>;

/**
 * A consumer's database in its settings (`database.cloudnativePg` of n8n): the instances, the
 * size and class of their volumes, their resources. Per environment, like every setting.
 */
export const databaseClusterSchema = z.strictObject({
  /** One primary and `instances - 1` streaming replicas; each on its own node where possible. */
  instances: intBetween(1, 5).default(1),
  size: volumeSize.default('5Gi'),
  /** @default Longhorn's default storage class */
  storageClass: k8sName.optional(),
  resources: resourcesSchema.default(DEFAULT_DATABASE_RESOURCES),
});


export const CNPG_NAMESPACE = 'cnpg-system';
/** API group of Cluster (and the operator's other kinds). */
const CNPG_GROUP = 'postgresql.cnpg.io';
/** The webhook server's port (chart `webhook.port`) and its Service (chart `service.name`, port 443). */
const WEBHOOK_PORT = 9443;
const WEBHOOK_SERVICE = 'cnpg-webhook-service';
/** The operator's self-signed CA (CaSecretName in internal/cmd/manager/controller of CloudNativePG 1.30). */
const CA_SECRET = 'cnpg-ca-secret';
/** The instance manager's status port, which the operator polls (pkg/management/url: StatusPort). */
const INSTANCE_MANAGER_PORT = 8000;
/** The operator's pods (chart `cloudnative-pg.selectorLabels`, release = service name) and metrics port (templates/deployment.yaml). */
const OPERATOR_POD_LABELS = { 'app.kubernetes.io/name': 'cloudnative-pg', 'app.kubernetes.io/instance': 'cloudnative-pg' } as const;
/** The instance manager's exporter (pkg/specs/pods.go: container port 9187 named `metrics`). */
const METRICS_PORT = 'metrics';
/** Seconds a replica may replay behind the primary before it is an alert. */
const REPLICATION_LAG_SECONDS = 300;
/** The share of a volume left free below which it is nearly full. */
const VOLUME_FREE_RATIO = 0.1;
/** A Cluster in the wave before its consumer's workloads: Argo CD's built-in health check of Cluster holds them until it is healthy. */
const DATABASE_SYNC_WAVE = '-1';

export type CloudnativePgProps = Omit<CloudnativePgSettings, 'enabled'> & {
  /** Where the databases are archived, with the plugin running beside the operator. @default no backups */
  readonly backupTarget?: BackupTarget;
};

export class CloudnativePg extends HomelabService implements DatabaseProvider {
  readonly instanceManagerPort = INSTANCE_MANAGER_PORT;
  /** CloudNativePG's role label on every instance pod (pkg/utils labels: PodRoleLabelName, PodRoleInstance). */
  readonly instancePods = { 'cnpg.io/podRole': 'instance' } as const;
  private readonly backups?: { readonly target: BackupTarget; readonly settings: DatabaseBackupSettings };
  /** The environment's sync policy, for the runbook's restore steps. */
  private readonly sync: Platform['config']['sync'];

  constructor(scope: Platform, props: CloudnativePgProps) {
    const target = props.backupTarget;
    super(scope, 'cloudnative-pg', props, {
      // With the plugin it needs cert-manager, which the foundation layer brings (waves: sequential
      // syncs layer by layer); still before every consumer, which all come after that layer.
      layer: target ? Layer.FOUNDATION : Layer.STORAGE,
      namespace: CNPG_NAMESPACE,
      installsCrdGroups: [CNPG_GROUP, ...(target ? [BARMAN_CLOUD_GROUP] : [])],
      helm: helmRelease('cloudnativePg', operatorValues(props)),
      // The plugin must run in the operator's namespace: the operator discovers plugins by the
      // `cnpg.io/pluginName` label of Services there (the plugin chart's templates/service.yaml).
      companionCharts: target ? [pluginRelease(props.backup)] : [],
      // Its chart issues the certificates of its mTLS with the operator from a cert-manager Issuer of its own.
      requiresCrdGroups: target ? ['cert-manager.io'] : [],
      // Its webhooks default and validate every postgresql.cnpg.io object (failurePolicy Fail, templates/*webhookconfiguration.yaml).
      admissionWebhookGroups: [CNPG_GROUP],
      // The operator makes its CA and the webhook's certificate at start; the checkpoint reads the CA.
      upstreamSecrets: [CA_SECRET],
      generatesSecrets: [{ group: CNPG_GROUP, kind: 'Cluster', secretNames: (cluster) => [`${cluster}-app`] }],
      ignoreDifferences: ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'].map((kind) => ({
        // The operator writes its CA into its webhook configurations after every start.
        group: 'admissionregistration.k8s.io',
        kind,
        jqPathExpressions: ['.webhooks[]?.clientConfig.caBundle'],
      })),
    });
    this.sync = scope.config.sync;
    this.requestCapacity('operator', 1, props.resources.requests);
    if (target) {
      this.backups = { target, settings: props.backup };
      this.requestCapacity('barman-cloud-plugin', 1, props.backup.resources.requests);
      // It reconciles ObjectStores and the Roles that let each cluster's sidecar read its own.
      this.callApiServer(PLUGIN_POD_LABELS, 'the Barman Cloud plugin reconciles ObjectStores and the Roles of the instances that use them', 'api-server-barman-cloud');
    }
    this.serveApiServer({ port: WEBHOOK_PORT, podSelector: OPERATOR_POD_LABELS });
    this.callApiServer(OPERATOR_POD_LABELS, 'the operator reconciles Clusters and their pods, Services, Secrets and volumes');
    this.exposeMetrics({ name: 'operator', kind: 'pod', selector: OPERATOR_POD_LABELS, port: 'metrics' });
    this.addAlerts({
      alert: 'CloudnativePgReconcileErrors',
      // controller-runtime's counter, as for the other operators.
      expr: `sum by (controller) (rate(controller_runtime_reconcile_errors_total{${SERVICE_LABEL}="${this.serviceName}"}[15m])) > 0`,
      for: '30m',
      severity: 'warning',
      summary: 'CloudNativePG keeps failing to reconcile {{ $labels.controller }} resources',
      description: 'Changes to database clusters are not applied: see the operator log in cnpg-system.',
    });
    this.addCheckpoint();
  }

  backupCredentials(need: DatabaseNeed): BackupCredentialsNeed | undefined {
    return this.backups && credentialsFor(this.backups.target, clusterName(need));
  }

  emitDatabase(consumer: HomelabService, need: DatabaseNeed, backupCredentials?: SecretRef): DatabaseRef {
    const cluster = clusterName(need);
    const podSelector = { [CLUSTER_LABEL]: cluster };
    const backups =
      this.backups && backupCredentials
        ? new DatabaseBackups(consumer, `database-${need.name}-backups`, {
            ...this.backups,
            need,
            cluster,
            ownerSecret: `${cluster}-app`,
            credentials: backupCredentials,
            sync: this.sync,
          })
        : undefined;
    new Cluster(consumer, `database-${need.name}`, {
      metadata: {
        name: cluster,
        namespace: consumer.namespaceName,
        labels: consumer.labelsFor('database'),
        annotations: { 'argocd.argoproj.io/sync-wave': DATABASE_SYNC_WAVE },
      },
      spec: {
        instances: need.instances,
        imageName: IMAGES.postgres,
        // The owner's password is generated by the operator into `<cluster>-app`; no superuser access.
        bootstrap: { initdb: { database: need.name, owner: need.name } },
        enableSuperuserAccess: false,
        storage: { size: need.size, storageClass: need.storageClass },
        resources: {
          requests: quantities(ClusterSpecResourcesRequests, need.resources.requests),
          limits: quantities(ClusterSpecResourcesLimits, need.resources.limits),
        },
        // Replicas on other nodes where the inventory allows, never Pending for want of one.
        affinity: { enablePodAntiAffinity: true, podAntiAffinityType: 'preferred' },
        // The plugin archives the WAL and takes the base backups (its sidecar in every instance).
        plugins: backups?.plugins,
      },
    });
    return {
      cluster,
      host: `${cluster}-rw`,
      port: 5432,
      database: need.name,
      credentialsSecret: `${cluster}-app`,
      podSelector,
      instances: need.instances,
      metrics: { name: cluster, kind: 'pod', selector: { ...podSelector, ...this.instancePods }, port: METRICS_PORT },
      alerts: databaseAlerts(consumer, need, cluster),
      backup: backups?.backup,
    };
  }

  connectionCheck(need: DatabaseNeed, ref: DatabaseRef): Omit<CheckpointProps, 'hookWave'> {
    return {
      description: `database ${ref.cluster}: the owner's generated credentials connect to the primary and run a query; ${need.instances - 1} replica(s) stream from it`,
      image: IMAGES.postgres,
      env: { DATABASE: need.name, OWNER: need.name, REPLICAS: String(need.instances - 1), CLUSTER: ref.cluster, ...PSQL_LIMITS },
      secretEnv: { DATABASE_URI: { name: ref.credentialsSecret, key: 'uri' } },
      script: CONNECTION_CHECK_SCRIPT,
    };
  }

  /**
   * The admission webhook answers over TLS with the certificate the operator made, verified
   * with its CA: until it does, no Cluster can be created (failurePolicy Fail).
   */
  private addCheckpoint(): void {
    new Checkpoint(this, 'checkpoint', {
      description: "the operator's admission webhook answers over TLS with the certificate of its own CA",
      image: IMAGES.curl,
      env: { WEBHOOK_URL: `https://${WEBHOOK_SERVICE}.${CNPG_NAMESPACE}.svc/validate-postgresql-cnpg-io-v1-cluster` },
      // Within curl's limit: (10 + 1) × 10 + 10 × 6 s at most, well inside the default deadline.
      script: String.raw`code=$(curl -sS ${curlRetryOptions(STARTING_SERVER_CALL)} --cacert /ca/ca.crt -o /dev/null -w '%{http_code}' "$WEBHOOK_URL" || :)
echo "webhook: HTTP $code"
[ "$code" -ge 200 ] && [ "$code" -lt 500 ]`,
      // Only the CA certificate: never the CA's key.
      volumes: [{ name: 'ca', secret: { secretName: CA_SECRET, items: [{ key: 'ca.crt', path: 'ca.crt' }] } }],
      volumeMounts: [{ name: 'ca', mountPath: '/ca', readOnly: true }],
    });
  }
}

/**
 * Runs with `sh -ec` in the PostgreSQL image: retries for five minutes until the primary answers
 * as the owner, then checks the answer: user, database, not in recovery, replicas connected.
 * The owner is a plain role: pg_stat_replication shows it every row but no column besides the
 * process id (the rest needs pg_read_all_stats, which the application's role must not have), so
 * the rows are counted, not their state.
 */
const CONNECTION_CHECK_SCRIPT = String.raw`query="select current_user, current_database(), pg_is_in_recovery(), (select count(*) from pg_stat_replication)"
deadline=$(( $(date +%s) + 300 ))
until answer=$(psql "$DATABASE_URI" -XAtq -c "$query" 2>&1); do
  if [ "$(date +%s)" -ge "$deadline" ]; then echo "FAIL $CLUSTER: no answer as $OWNER within 5 minutes: $answer" >&2; exit 1; fi
  echo "waiting for $CLUSTER: $answer"
  sleep 10
done
old_ifs=$IFS
IFS='|'
set -- $answer
IFS=$old_ifs
if [ "$1" != "$OWNER" ] || [ "$2" != "$DATABASE" ]; then echo "FAIL $CLUSTER: connected as $1 to $2, expected $OWNER to $DATABASE" >&2; exit 1; fi
if [ "$3" != f ]; then echo "FAIL $CLUSTER: the read-write Service leads to an instance in recovery, not the primary" >&2; exit 1; fi
if [ "$4" != "$REPLICAS" ]; then echo "FAIL $CLUSTER: $4 of $REPLICAS replicas are connected to the primary" >&2; exit 1; fi
echo "PASS $CLUSTER: $OWNER runs queries on $DATABASE; $REPLICAS replica(s) connected"`;

/**
 * Alerts on one database, beside the monitoring pass's own when its exporter is down. The metric
 * names: the operator's default monitoring queries (`cnpg_<query>_<column>`, cloudnative-pg chart
 * 0.29.0 values.yaml monitoringQueriesConfigMap: pg_replication.lag), the instance manager's
 * collector (`cnpg_collector_up`, pkg/management/postgres/webserver/metricserver), and the
 * kubelet's volume statistics, which the monitoring stack scrapes (PVCs `<cluster>-<n>`).
 */
function databaseAlerts(consumer: HomelabService, need: DatabaseNeed, cluster: string): AlertRule[] {
  const own = ownSeries(consumer, cluster);
  const name = pascalCase(cluster);
  const where = `kubectl -n ${consumer.namespaceName} get cluster ${cluster}; the instances' logs: kubectl -n ${consumer.namespaceName} logs -l cnpg.io/cluster=${cluster}`;
  return [
    {
      alert: `${name}InstanceDown`,
      expr: `min by (pod) (cnpg_collector_up{${own}}) == 0`,
      for: '5m',
      severity: 'critical',
      summary: `PostgreSQL of database ${need.name} on {{ $labels.pod }} does not answer its instance manager`,
      description: where,
    },
    ...(need.instances > 1
      ? [
          {
            alert: `${name}ReplicationLag`,
            expr: `max by (pod) (cnpg_pg_replication_lag{${own}}) > ${REPLICATION_LAG_SECONDS}`,
            for: '10m',
            severity: 'warning' as const,
            summary: `The replica {{ $labels.pod }} of database ${need.name} replays {{ $value | humanizeDuration }} behind its primary`,
            description: `A failover now would lose those transactions. ${where}`,
          },
        ]
      : []),
    {
      alert: `${name}StorageNearlyFull`,
      expr:
        `max by (persistentvolumeclaim) (kubelet_volume_stats_available_bytes{namespace="${consumer.namespaceName}", persistentvolumeclaim=~"${cluster}-[0-9]+"} ` +
        `/ kubelet_volume_stats_capacity_bytes{namespace="${consumer.namespaceName}", persistentvolumeclaim=~"${cluster}-[0-9]+"}) < ${VOLUME_FREE_RATIO}`,
      for: '15m',
      severity: 'warning',
      summary: `The volume {{ $labels.persistentvolumeclaim }} of database ${need.name} is more than ${100 - VOLUME_FREE_RATIO * 100}% full`,
      description: `PostgreSQL stops when its volume is full: raise the database's size in the config (Longhorn's classes allow expanding a volume). ${where}`,
    },
  ];
}

/** The database cluster of a need. */
function clusterName(need: DatabaseNeed): string {
  return `${need.name}-db`;
}

function operatorValues(props: CloudnativePgProps): CloudnativePgValues {
  return {
    crds: { create: true },
    resources: props.resources,
    config: { clusterWide: true },
    monitoring: { podMonitorEnabled: false },
  };
}

export const cloudnativePgEntry = defineService({
  name: 'cloudnative-pg',
  settings: { key: 'cloudnativePg', schema: cloudnativePgSettings },
  names: ['cloudnative-pg', CNPG_NAMESPACE],
  upstreamTargets: {
    'cloudnative-pg-operator': {
      selector: OPERATOR_POD_LABELS,
      port: 'metrics',
      source: 'cloudnative-pg 0.29.0 templates/deployment.yaml (container port 8080 named metrics), _helpers.tpl selectorLabels',
    },
  },
  // The plugin's chart makes its certificates with cert-manager (templates/certificate-issuer.yaml, *-certificate.yaml).
  check: (_settings, env) =>
    env.backup && !env.isEnabled(certManagerEntry)
      ? [{ path: ['backup'], message: `expected services.certManager.enabled: with a backup target (${env.backup.target}) the databases are backed up by the Barman Cloud plugin, whose chart gets its certificates from cert-manager` }]
      : [],
  build: (platform, settings) => new CloudnativePg(platform, { ...settings, backupTarget: platform.backupTarget }),
});
