/**
 * n8n, the automation layer's workflow engine: one pod (a Deployment with Recreate updates)
 * keeping its SQLite database on a Longhorn volume, or using an existing PostgreSQL. The UI
 * and the webhooks are exposed at `<subdomain>.<domain>`; n8n has its own login, and the
 * webhooks must be reachable by the services calling them, so the exposure is not admin-only.
 * The encryption key of stored credentials comes from a declared Secret; with a RabbitMQ user,
 * its operator-generated credentials prefill n8n's RabbitMQ credentials.
 */
import { ApiObject, Duration, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { setSyncWave } from '../lib/model/argocd';
import { Checkpoint } from '../lib/model/checkpoint';
import { DEFAULT_N8N_RESOURCES, N8nConfig } from './config/automation';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { Resources, size, toContainerResources } from '../lib/model/resources';
import { HomelabService } from '../lib/model/service';
import type { StorageProvider } from '../lib/model/storage';
import { IMAGES } from './versions';
import type { Rabbitmq, RabbitmqConnection } from './rabbitmq';

export const N8N_NAMESPACE = 'n8n';
export const N8N_PORT = 5678;
const COMPONENT = 'n8n';
const PORT_NAME = 'http';
/** Where n8n serves its Prometheus metrics (the default of N8N_METRICS), on the main port. */
const METRICS_PATH = '/metrics';
/** The image's user `node`. */
const NODE_USER = 1000;
/** Where n8n keeps its settings file, SQLite database, binary data and community nodes. */
const USER_FOLDER = '/home/node/.n8n';
/** Failed executions within half an hour above which someone should look. */
const FAILED_EXECUTIONS_THRESHOLD = 3;
/** The RabbitMQ credential type's name and fields (n8n-nodes-base credentials/RabbitMQ.credentials.ts). */
const RABBITMQ_CREDENTIAL_TYPE = 'rabbitmq';

/** The user n8n connects to RabbitMQ as: one of `services.rabbitmq.users`. */
export interface N8nRabbitmqUser {
  readonly name: string;
  /** @default the user's only vhost */
  readonly vhost?: string;
}

export interface N8nProps {
  /** SQLite on a volume (needs `storage`), or an existing PostgreSQL. */
  readonly database: N8nConfig['database'];
  /** Where the SQLite volume comes from. Required with `database.sqlite`. @default none */
  readonly storage?: StorageProvider;
  /** The broker; with `rabbitmqUser`, n8n connects to it (and syncs after it). @default none */
  readonly rabbitmq?: Rabbitmq;
  /** Required with `rabbitmq`. @default none */
  readonly rabbitmqUser?: N8nRabbitmqUser;
  /** @default 'n8n' */
  readonly subdomain?: string;
  /** GENERIC_TIMEZONE and TZ (schedule triggers). @default 'UTC' */
  readonly timezone?: string;
  /** @default DEFAULT_N8N_RESOURCES */
  readonly resources?: Resources;
}

export class N8n extends HomelabService {
  /** In-cluster URL of the UI, API and webhooks. */
  readonly internalUrl: string;
  /** Public URL (`https://<subdomain>.<domain>/`): the UI's address and WEBHOOK_URL. */
  readonly publicUrl: string;
  /** How n8n connects to RabbitMQ, when it does. */
  readonly rabbitmqConnection?: RabbitmqConnection;

  constructor(scope: Platform, props: N8nProps) {
    super(scope, 'n8n', props, { layer: Layer.AUTOMATION, namespace: N8N_NAMESPACE });
    if (props.database.sqlite && !props.storage) throw new Error('n8n: the SQLite volume needs a storage provider');
    if (Boolean(props.rabbitmq) !== Boolean(props.rabbitmqUser)) throw new Error('n8n: rabbitmq and rabbitmqUser go together');
    const host = scope.hostname(props.subdomain ?? 'n8n');
    this.publicUrl = `https://${host}/`;
    this.internalUrl = `http://${COMPONENT}.${N8N_NAMESPACE}.svc:${N8N_PORT}`;
    if (props.rabbitmq && props.rabbitmqUser) {
      this.rabbitmqConnection = props.rabbitmq.connectionFor(this, props.rabbitmqUser.name, props.rabbitmqUser.vhost);
    }
    const resources = props.resources ?? DEFAULT_N8N_RESOURCES;
    const selector = this.selectorFor(COMPONENT);

    this.addDeployment(props, host, resources, selector);
    const service = new kplus.Service(this, 'service', {
      metadata: { name: COMPONENT, labels: this.labelsFor(COMPONENT) },
      ports: [{ name: PORT_NAME, port: N8N_PORT, targetPort: N8N_PORT }],
    });
    for (const [key, value] of Object.entries(selector)) service.selectLabel(key, value);
    this.requestCapacity({ workload: COMPONENT, replicas: 1, cpu: resources.requests.cpu, memory: resources.requests.memory });

    // Not admin-only: n8n has its own user management, and webhooks are called from outside.
    // Public (own login; webhooks must reach it), but its metrics on the same port are Prometheus'.
    this.expose({
      subdomain: props.subdomain ?? 'n8n',
      serviceName: COMPONENT,
      servicePort: N8N_PORT,
      podPort: PORT_NAME,
      podSelector: selector,
      admin: false,
      hiddenPaths: [METRICS_PATH],
    });
    this.serveClients({ port: PORT_NAME, podSelector: selector });
    this.addMonitoring();
    this.addCheckpoint();
  }

  private addDeployment(props: N8nProps, host: string, resources: Resources, selector: Record<string, string>): void {
    const deployment = new kplus.Deployment(this, 'deployment', {
      metadata: { name: COMPONENT, labels: this.labelsFor(COMPONENT) },
      replicas: 1,
      select: false,
      podMetadata: { labels: selector },
      // One writer: SQLite (and the ReadWriteOnce volume) allow no second pod during an update.
      strategy: kplus.DeploymentStrategy.recreate(),
      automountServiceAccountToken: false,
      securityContext: {
        ensureNonRoot: true,
        user: NODE_USER,
        group: NODE_USER,
        fsGroup: NODE_USER,
        // Only the first mount of a volume needs its ownership fixed, not every start.
        fsGroupChangePolicy: kplus.FsGroupChangePolicy.ON_ROOT_MISMATCH,
      },
    });
    deployment.select(kplus.LabelSelector.of({ labels: selector }));
    const container = deployment.addContainer({
      name: COMPONENT,
      image: IMAGES.n8n,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      ports: [{ name: PORT_NAME, number: N8N_PORT }],
      resources: toContainerResources(resources),
      securityContext: {
        ensureNonRoot: true,
        user: NODE_USER,
        group: NODE_USER,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: [kplus.Capability.ALL] },
        seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT },
      },
      // Process up (the HTTP server starts before the database migrations).
      liveness: kplus.Probe.fromHttpGet('/healthz', { port: N8N_PORT, periodSeconds: Duration.seconds(20), failureThreshold: 3 }),
      // Database connected and migrated.
      readiness: kplus.Probe.fromHttpGet('/healthz/readiness', { port: N8N_PORT, periodSeconds: Duration.seconds(10), failureThreshold: 3 }),
      // A first start loads every node package: up to ten minutes before liveness counts.
      startup: kplus.Probe.fromHttpGet('/healthz', { port: N8N_PORT, periodSeconds: Duration.seconds(10), failureThreshold: 60 }),
    });
    // cdk8s-plus adds a label derived from the construct path: keep pods independent of it.
    ApiObject.of(deployment).addJsonPatch(JsonPatch.remove('/spec/template/metadata/labels/cdk8s.io~1metadata.addr'));

    // The root filesystem is read-only: n8n and its task runner write temporary files and caches here.
    container.mount('/tmp', kplus.Volume.fromEmptyDir(this, 'tmp', 'tmp'));
    container.mount('/home/node/.cache', kplus.Volume.fromEmptyDir(this, 'cache', 'cache'));
    const sqlite = props.database.sqlite;
    if (sqlite && props.storage) {
      const claim = new kplus.PersistentVolumeClaim(this, 'data', {
        metadata: { name: `${COMPONENT}-data`, labels: this.labelsFor(COMPONENT) },
        accessModes: [kplus.PersistentVolumeAccessMode.READ_WRITE_ONCE],
        storage: size(sqlite.volumeSize),
        storageClassName: props.storage.storageClass(sqlite.storageClass),
      });
      container.mount(USER_FOLDER, kplus.Volume.fromPersistentVolumeClaim(this, 'data-volume', claim, { name: 'data' }));
    } else {
      // The database is PostgreSQL; the settings file is rewritten from the environment on every start.
      container.mount(USER_FOLDER, kplus.Volume.fromEmptyDir(this, 'user-folder', 'user-folder'));
    }

    // An ordered list, set as a whole: `$(VAR)` in CREDENTIALS_OVERWRITE_DATA expands only
    // variables defined before it, and the Secret references come from their SecretRefs.
    this.patchManifest(ApiObject.of(deployment), JsonPatch.add('/spec/template/spec/containers/0/env', this.containerEnv(props, host)));
    if (this.rabbitmqConnection) setSyncWave(ApiObject.of(deployment), this.rabbitmqConnection.workloadSyncWave);
  }

  /** n8n's environment: its public address, database, metrics, and the Secrets it reads. */
  private containerEnv(props: N8nProps, host: string): k8s.EnvVar[] {
    const encryption = this.needSecret('n8n-encryption-key', ['encryption-key'], 'N8N_ENCRYPTION_KEY: encrypts the credentials n8n stores; without it they cannot be decrypted');
    const timezone = props.timezone ?? 'UTC';
    const plain = (values: Record<string, string>): k8s.EnvVar[] => Object.entries(values).map(([name, value]) => ({ name, value }));
    return [
      ...plain({
        N8N_HOST: host,
        N8N_PORT: String(N8N_PORT),
        N8N_PROTOCOL: 'https',
        N8N_EDITOR_BASE_URL: this.publicUrl,
        WEBHOOK_URL: this.publicUrl,
        // Traefik is the one proxy in front: trust its X-Forwarded-For.
        N8N_PROXY_HOPS: '1',
        GENERIC_TIMEZONE: timezone,
        TZ: timezone,
        N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS: 'true',
        N8N_DIAGNOSTICS_ENABLED: 'false',
        // /metrics on the main port; failed/successful executions as counters from the event bus.
        N8N_METRICS: 'true',
        N8N_METRICS_INCLUDE_MESSAGE_EVENT_BUS_METRICS: 'true',
      }),
      encryption.envVar('N8N_ENCRYPTION_KEY', 'encryption-key'),
      ...this.databaseEnvironment(props.database),
      ...this.rabbitmqEnvironment(),
    ];
  }

  private databaseEnvironment(database: N8nConfig['database']): k8s.EnvVar[] {
    if (!database.postgres) return [{ name: 'DB_TYPE', value: 'sqlite' }];
    const { host, port, database: name, user } = database.postgres;
    const password = this.needSecret('n8n-postgres', ['password'], `password of PostgreSQL user "${user}" on ${host}:${port}/${name}`);
    return [
      { name: 'DB_TYPE', value: 'postgresdb' },
      { name: 'DB_POSTGRESDB_HOST', value: host },
      { name: 'DB_POSTGRESDB_PORT', value: String(port) },
      { name: 'DB_POSTGRESDB_DATABASE', value: name },
      { name: 'DB_POSTGRESDB_USER', value: user },
      password.envVar('DB_POSTGRESDB_PASSWORD', 'password'),
    ];
  }

  /**
   * The broker's address and the operator-generated user as environment, and as overwrites
   * of n8n's `rabbitmq` credential type: every RabbitMQ credential created in n8n gets these
   * fields filled in (and hidden from the editor). Kubernetes expands the `$(VAR)`s.
   */
  private rabbitmqEnvironment(): k8s.EnvVar[] {
    const connection = this.rabbitmqConnection;
    if (!connection) return [];
    const secretKey = (name: string, key: string): k8s.EnvVar => ({ name, valueFrom: { secretKeyRef: { name: connection.credentialsSecret, key } } });
    const overwrite = {
      [RABBITMQ_CREDENTIAL_TYPE]: {
        hostname: connection.host,
        port: connection.port,
        vhost: connection.vhost,
        // Generated by the topology operator as URL-safe base64: nothing to escape in JSON.
        username: '$(RABBITMQ_USERNAME)',
        password: '$(RABBITMQ_PASSWORD)',
      },
    };
    return [
      { name: 'RABBITMQ_HOST', value: connection.host },
      { name: 'RABBITMQ_PORT', value: String(connection.port) },
      { name: 'RABBITMQ_VHOST', value: connection.vhost },
      secretKey('RABBITMQ_USERNAME', 'username'),
      secretKey('RABBITMQ_PASSWORD', 'password'),
      { name: 'CREDENTIALS_OVERWRITE_DATA', value: JSON.stringify(overwrite) },
    ];
  }

  /**
   * n8n's /metrics (n8n_ prefix, n8n 2.x @n8n/config PrometheusMetricsConfig): Node.js
   * process metrics, and with the event-bus metrics `n8n_workflow_failed_total` (one per
   * `n8n.workflow.failed` event, created at the first one).
   */
  private addMonitoring(): void {
    this.exposeMetrics({
      name: COMPONENT,
      kind: 'service',
      selector: this.selectorFor(COMPONENT),
      port: PORT_NAME,
      path: METRICS_PATH,
      podPort: PORT_NAME,
      podSelector: this.selectorFor(COMPONENT),
    });
    const own = `${SERVICE_LABEL}="${this.serviceName}"`;
    this.addAlerts(
      {
        alert: 'N8nWorkflowExecutionsFailing',
        expr: `sum by (namespace) (increase(n8n_workflow_failed_total{${own}}[30m])) >= ${FAILED_EXECUTIONS_THRESHOLD}`,
        for: '0m',
        severity: 'warning',
        summary: 'n8n: {{ $value }} workflow executions failed in the last 30 minutes',
        description: 'See Executions in the n8n UI (filter on Error): a changed upstream API, expired credentials, or RabbitMQ/database trouble.',
      },
      {
        alert: 'N8nEventLoopBlocked',
        expr: `max by (namespace, pod) (n8n_nodejs_eventloop_lag_p99_seconds{${own}}) > 1`,
        for: '10m',
        severity: 'warning',
        summary: 'n8n on {{ $labels.pod }}: event loop lag p99 {{ $value }}s, webhooks and the UI answer late',
        description: 'A heavy Code node or too many concurrent executions block the main process; give n8n more CPU or move the work to a task runner.',
      },
      {
        alert: 'N8nUnavailable',
        expr: `kube_deployment_status_replicas_unavailable{namespace="${this.namespaceName}", deployment="${COMPONENT}"} > 0`,
        for: '10m',
        severity: 'critical',
        summary: 'n8n has been unavailable for 10 minutes: no workflow triggers, webhooks answer 502',
        description: 'Check the pod: failing readiness (database), a missing Secret (encryption key, RabbitMQ credentials) or an unbound volume.',
      },
    );
  }

  /**
   * n8n reports itself ready (database connected and migrated) through its Service, and the
   * RabbitMQ credentials Secret it reads exists, generated for its User. The Secret is read
   * as metadata only (PartialObjectMetadata): its data never reaches the Job's log.
   */
  private addCheckpoint(): void {
    const connection = this.rabbitmqConnection;
    const readiness = `curl -fsS --retry 10 --retry-delay 6 --retry-all-errors --max-time 10 "${this.internalUrl}/healthz/readiness"; echo`;
    const secretCheck = connection
      ? [
          `secret=/api/v1/namespaces/${connection.credentialsNamespace}/secrets/${connection.credentialsSecret}`,
          'metadata=$(kube_get "$secret" -H "Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1") || { echo "Secret ' +
            `${connection.credentialsSecret}` +
            ' is missing: is the RabbitMQ User synced?" >&2; exit 1; }',
          `if ! echo "$metadata" | tr -d ' \\n' | grep -q '"kind":"User","name":"${connection.user}"'; then`,
          `  echo "Secret ${connection.credentialsSecret} is not the one the topology operator generates for User ${connection.user}" >&2`,
          '  exit 1',
          'fi',
          `echo "Secret ${connection.credentialsSecret} exists, owned by User ${connection.user}"`,
        ]
      : [];
    new Checkpoint(this, 'checkpoint', {
      description: connection
        ? `${this.internalUrl}/healthz/readiness answers and the RabbitMQ credentials Secret ${connection.credentialsSecret} exists`
        : `${this.internalUrl}/healthz/readiness answers`,
      image: IMAGES.curl,
      script: [readiness, ...secretCheck].join('\n'),
      readsNamespaces: connection
        ? { [this.namespaceName]: [{ apiGroups: [''], resources: ['secrets'], resourceNames: [connection.credentialsSecret], verbs: ['get'] }] }
        : undefined,
    });
  }
}
