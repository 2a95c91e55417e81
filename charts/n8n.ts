/**
 * n8n, the automation layer's workflow engine: one pod (a Deployment with Recreate updates)
 * keeping its SQLite database on a Longhorn volume, or using an existing PostgreSQL. The UI
 * and the webhooks are exposed at `<subdomain>.<domain>`; n8n has its own login, and the
 * webhooks must be reachable by the services calling them, so the exposure is not admin-only.
 * The encryption key of stored credentials comes from a declared Secret; with a RabbitMQ user,
 * its operator-generated credentials prefill n8n's RabbitMQ credentials, and the checkpoint runs
 * a workflow publishing to RabbitMQ with them (charts/n8n-workflow-check.ts).
 */
import { ApiObject, Duration, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-34';
import { k8s } from 'cdk8s-plus-34';
import { Construct } from 'constructs';
import { setSyncWave } from '../lib/model/argocd';
import { z } from '../lib/model/config/zod';
import { ConfigIssue, defineService, EnvironmentView, ownSubdomain } from '../lib/model/catalog';
import { Checkpoint, curlRetryOptions, probeJob, STARTING_SERVER_CALL } from '../lib/model/checkpoint';
import { bool, exactlyOneOf, expected, externalDestinations, hostname, intBetween, k8sName, matching, resourcesSchema, subdomain, volumeSize } from '../lib/model/config/primitives';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { Resources, size, toContainerResources } from '../lib/model/resources';
import { urlEgressTarget } from '../lib/model/network';
import type { TraceEmission, TraceEmitter } from '../lib/model/tracing';
import { HomelabService } from '../lib/model/service';
import type { StorageProvider } from '../lib/model/storage';
import { IMAGES } from './versions';
import { cloudnativePgEntry, databaseClusterSchema } from './cloudnative-pg';
import { longhornEntry, longhornStorageClassIssues } from './longhorn';
import { Rabbitmq, RabbitmqConnection, rabbitmqEntry } from './rabbitmq';
import { AMQP_LIMIT_SECONDS, AMQP_PROGRAM_SECONDS, amqpLimit, N8N_PACKAGE_ROOT, WORKFLOW_CHECK_CONFIG_MAP, workflowCheck, workflowCheckFiles, workflowCheckQueue } from './n8n-workflow-check';
import type { DatabaseProvider, DatabaseRef } from '../lib/model/databases';


/** An IANA time zone name as n8n's GENERIC_TIMEZONE takes it (`Europe/Berlin`, `UTC`). */
const timezone = matching(/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/, 'a time zone such as "Europe/Berlin" or "UTC"');

/**
 * A database or user name on an existing PostgreSQL: an identifier of at most 63 bytes
 * (NAMEDATALEN - 1), with the underscores PostgreSQL names usually have (`n8n_app`); n8n hands
 * it to the server as given.
 */
const postgresName = matching(/^[A-Za-z_][A-Za-z0-9_$-]*$/, 'a PostgreSQL name such as "n8n" or "n8n_app"', 63);

/** A Service name (`postgres`), or its in-cluster DNS name (`postgres.db.svc`), or any host. */
const databaseHost = z.union([k8sName, hostname], expected('a host name such as "postgres.db.svc"'));

const databaseSchema = exactlyOneOf(
  {
    /** SQLite in a file on a Longhorn volume (one replica, Recreate updates). */
    sqlite: z
      .strictObject({
        volumeSize: volumeSize.default('5Gi'),
        /** @default Longhorn's default storage class */
        storageClass: k8sName.optional(),
      })
      .optional(),
    /** An existing PostgreSQL; the password comes from the Secret `n8n-postgres` (key `password`). */
    postgres: z
      .strictObject({
        host: databaseHost,
        port: intBetween(1, 65535).default(5432),
        database: postgresName.default('n8n'),
        user: postgresName.default('n8n'),
      })
      .optional(),
    /** A PostgreSQL cluster of its own, run by CloudNativePG; the operator generates the password. */
    cloudnativePg: databaseClusterSchema.optional(),
  },
  'sqlite',
  'postgres',
  'cloudnativePg',
);

/** `services.n8n`. */
export const n8nSettings = z
  .strictObject({
    enabled: bool.default(false),
    /** UI and webhooks at `<subdomain>.<domain>`. */
    subdomain: subdomain.default('n8n'),
    database: databaseSchema.default({ sqlite: { volumeSize: '5Gi' } }),
    /**
     * Connect as one of `services.rabbitmq.users`: its credentials prefill every RabbitMQ
     * credential created in n8n. @default no RabbitMQ
     */
    rabbitmq: z
      .strictObject({
        user: k8sName,
        /** @default the user's only vhost */
        vhost: k8sName.optional(),
      })
      .optional(),
    /** Schedule triggers' time zone (GENERIC_TIMEZONE, TZ). */
    timezone: timezone.default('UTC'),
    resources: resourcesSchema.default({ requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '2', memory: '2Gi' } }),
    /**
     * Where workflows may connect outside the cluster (HTTP Request nodes, credentials' APIs):
     * `internet` on every port unless narrowed, e.g. `[{to: internet, ports: [443]}]`; `[]` for none.
     */
    egress: externalDestinations.default([{ to: 'internet' }]),
  })
  .prefault({});

export type N8nSettings = z.output<typeof n8nSettings>;


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
/** The workflow check's Job in n8n's Application, after the checkpoint Job (hook wave 0). */
const WORKFLOW_CHECK_JOB = 'n8n-workflow-check';
const WORKFLOW_CHECK_HOOK_WAVE = 1;
/** The RabbitMQ credential type's name and fields (n8n-nodes-base credentials/RabbitMQ.credentials.ts). */
const RABBITMQ_CREDENTIAL_TYPE = 'rabbitmq';

export type N8nProps = Omit<N8nSettings, 'enabled'> & {
  /** Where the SQLite volume comes from. Required with `database.sqlite`. @default none */
  readonly storage?: StorageProvider;
  /** The broker n8n connects to as `rabbitmq.user` (and syncs after). Required with `rabbitmq`. @default none */
  readonly broker?: Rabbitmq;
  /** Runs the database of `database.cloudnativePg` (its volumes from `storage`). Required with it. @default none */
  readonly databases?: DatabaseProvider;
};

export class N8n extends HomelabService implements TraceEmitter {
  /**
   * Workflow and node executions as spans (n8n 2.19+, docs "OpenTelemetry environment
   * variables": N8N_OTEL_ENABLED, N8N_OTEL_EXPORTER_OTLP_ENDPOINT is the OTLP/HTTP base URL).
   */
  readonly traceEmissions: readonly TraceEmission[];
  /** The container's environment, in order; the tracing pass appends the OTLP settings. */
  private readonly containerEnvironment: k8s.EnvVar[] = [];
  /** In-cluster URL of the UI, API and webhooks. */
  readonly internalUrl: string;
  /** Public URL (`https://<subdomain>.<domain>/`): the UI's address and WEBHOOK_URL. */
  readonly publicUrl: string;
  /** How n8n connects to RabbitMQ, when it does. */
  readonly rabbitmqConnection?: RabbitmqConnection;
  /** Its own PostgreSQL cluster, with `database.cloudnativePg`. */
  readonly database?: DatabaseRef;

  constructor(scope: Platform, props: N8nProps) {
    super(scope, 'n8n', props, { layer: Layer.AUTOMATION, namespace: N8N_NAMESPACE });
    if (props.database.sqlite && !props.storage) throw new Error('n8n: the SQLite volume needs a storage provider');
    if (Boolean(props.rabbitmq) !== Boolean(props.broker)) throw new Error('n8n: a RabbitMQ user and the broker go together');
    const managed = props.database.cloudnativePg;
    if (managed && !(props.databases && props.storage)) throw new Error('n8n: database.cloudnativePg needs the database provider and storage');
    if (managed && props.databases && props.storage) {
      this.database = this.needDatabase(props.databases, { name: 'n8n', ...managed, storageClass: props.storage.storageClass(managed.storageClass), scratchStorageClass: props.storage.scratchStorageClass });
    }
    const host = scope.hostname(props.subdomain);
    this.publicUrl = `https://${host}/`;
    this.internalUrl = `http://${COMPONENT}.${N8N_NAMESPACE}.svc:${N8N_PORT}`;
    if (props.rabbitmq && props.broker) {
      this.rabbitmqConnection = props.broker.connectionFor(this, props.rabbitmq.user, props.rabbitmq.vhost);
      this.addWorkflowCheck(this.rabbitmqConnection);
    }
    const resources = props.resources;
    const selector = this.selectorFor(COMPONENT);
    this.traceEmissions = [
      {
        name: 'n8n',
        podSelector: selector,
        protocol: 'http',
        connect: (endpoint) => this.containerEnvironment.push({ name: 'N8N_OTEL_ENABLED', value: 'true' }, { name: 'N8N_OTEL_EXPORTER_OTLP_ENDPOINT', value: endpoint }),
      },
    ];

    this.addDeployment(props, host, resources, selector);
    this.declareEgress(props, selector);
    const service = new kplus.Service(this, 'service', {
      metadata: { name: COMPONENT, labels: this.labelsFor(COMPONENT) },
      ports: [{ name: PORT_NAME, port: N8N_PORT, targetPort: N8N_PORT }],
    });
    for (const [key, value] of Object.entries(selector)) service.selectLabel(key, value);
    this.requestCapacity(COMPONENT, 1, resources.requests);

    // Not admin-only: n8n has its own user management, and webhooks are called from outside.
    // Public (own login; webhooks must reach it), but its metrics on the same port are Prometheus'.
    this.expose({
      subdomain: props.subdomain,
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

  /**
   * The second step of the checkpoint, where the user's permissions admit a queue of the check's
   * own (charts/n8n-workflow-check.ts): n8n runs a workflow from a ConfigMap that publishes to
   * RabbitMQ, and the message is read back. A PostSync hook after the checkpoint Job (which
   * proves n8n ready and the credentials Secret generated), replayed by the verification.
   * Otherwise the verification only proves that n8n's user can publish.
   */
  private addWorkflowCheck(connection: RabbitmqConnection): void {
    const queue = workflowCheckQueue(connection);
    if (queue === undefined) {
      this.addPublishCheck(connection);
      return;
    }
    new k8s.KubeConfigMap(this, 'workflow-check-files', {
      metadata: { name: WORKFLOW_CHECK_CONFIG_MAP, labels: this.labelsFor(COMPONENT) },
      data: workflowCheckFiles(queue),
    });
    const check = workflowCheck(connection, queue);
    probeJob(new Construct(this, 'workflow-check'), WORKFLOW_CHECK_JOB, check, { owner: this, hookWave: WORKFLOW_CHECK_HOOK_WAVE });
    this.addEndToEndCheck('e2e-n8n-workflow', check);
  }

  /**
   * For the end-to-end verification, n8n reaches the data mesh: from n8n's namespace (its
   * NetworkPolicy path), with the credentials the topology operator generated for its user, and
   * with the AMQP client n8n's own RabbitMQ node uses (amqplib, from the n8n image), a message
   * published on its vhost is confirmed by the broker. It goes to the default exchange with a
   * routing key no queue has, so the broker drops it after confirming: no consumer ever sees it.
   */
  private addPublishCheck(connection: RabbitmqConnection): void {
    this.addEndToEndCheck('e2e-n8n-publish', {
      description: `n8n publishes to RabbitMQ vhost ${connection.vhost} as user ${connection.user}, confirmed by the broker`,
      image: IMAGES.n8n,
      env: {
        N8N_ROOT: N8N_PACKAGE_ROOT,
        RABBITMQ_HOST: connection.host,
        RABBITMQ_PORT: String(connection.port),
        RABBITMQ_VHOST: connection.vhost,
        AMQP_SECONDS: String(AMQP_LIMIT_SECONDS),
      },
      secretEnv: {
        RABBITMQ_USERNAME: { name: connection.credentialsSecret, key: 'username' },
        RABBITMQ_PASSWORD: { name: connection.credentialsSecret, key: 'password' },
      },
      script: `node -e '${PUBLISH_SCRIPT}'`,
      scriptSeconds: AMQP_PROGRAM_SECONDS,
    });
  }

  /** The workflows' destinations outside the cluster, and an existing PostgreSQL wherever it runs. */
  private declareEgress(props: N8nProps, selector: Readonly<Record<string, string>>): void {
    if (props.egress.length > 0) {
      this.allowEgress({ name: 'external', podSelector: selector, to: { kind: 'external', destinations: props.egress }, reason: 'n8n workflows call services outside the cluster (services.n8n.egress)' });
    }
    const postgres = props.database.postgres;
    // A bare Service name is in n8n's own namespace (the same-namespace rule); `<service>.<namespace>.svc`
    // is any pod of that namespace, on any port (the Service's target port is not known here).
    if (postgres && postgres.host.includes('.')) {
      this.allowEgress({
        name: 'postgres',
        podSelector: selector,
        to: urlEgressTarget(`postgres://${postgres.host}:${postgres.port}`),
        reason: `n8n keeps its data in PostgreSQL on ${postgres.host}:${postgres.port}`,
      });
    }
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
    this.containerEnvironment.push(...this.containerEnv(props, host));
    this.patchManifest(ApiObject.of(deployment), JsonPatch.add('/spec/template/spec/containers/0/env', this.containerEnvironment));
    if (this.rabbitmqConnection) setSyncWave(ApiObject.of(deployment), this.rabbitmqConnection.workloadSyncWave);
  }

  /** n8n's environment: its public address, database, metrics, and the Secrets it reads. */
  private containerEnv(props: N8nProps, host: string): k8s.EnvVar[] {
    const encryption = this.needSecret('n8n-encryption-key', ['encryption-key'], 'N8N_ENCRYPTION_KEY: encrypts the credentials n8n stores; without it they cannot be decrypted');
    const timezone = props.timezone;
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

  private databaseEnvironment(database: N8nSettings['database']): k8s.EnvVar[] {
    if (this.database) {
      const credentials = this.database.credentialsSecret;
      return [
        { name: 'DB_TYPE', value: 'postgresdb' },
        { name: 'DB_POSTGRESDB_HOST', value: this.database.host },
        { name: 'DB_POSTGRESDB_PORT', value: String(this.database.port) },
        { name: 'DB_POSTGRESDB_DATABASE', value: this.database.database },
        // Generated by the operator next to n8n (the Cluster's `<cluster>-app`).
        { name: 'DB_POSTGRESDB_USER', valueFrom: { secretKeyRef: { name: credentials, key: 'username' } } },
        { name: 'DB_POSTGRESDB_PASSWORD', valueFrom: { secretKeyRef: { name: credentials, key: 'password' } } },
      ];
    }
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
    const readiness = `curl -fsS ${curlRetryOptions(STARTING_SERVER_CALL)} "${this.internalUrl}/healthz/readiness"; echo`;
    const secretCheck = connection
      ? [
          `secret=/api/v1/namespaces/${connection.credentialsNamespace}/secrets/${connection.credentialsSecret}`,
          'metadata=$(kube_get "$secret" -H "Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1") || { echo "Secret ' +
            `${connection.credentialsSecret}` +
            ' is missing: is the RabbitMQ User synced?" >&2; exit 1; }',
          `case $metadata in *'"kind":"User","name":"${connection.user}"'*) ;; *)`,
          `  echo "Secret ${connection.credentialsSecret} is not the one the topology operator generates for User ${connection.user}" >&2`,
          '  exit 1 ;;',
          'esac',
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

/** The RabbitMQ user n8n connects as: declared, with permissions on the vhost it names (or on exactly one). */
function rabbitmqUserIssues(settings: N8nSettings, env: EnvironmentView): ConfigIssue[] {
  if (!settings.rabbitmq || !env.isEnabled(rabbitmqEntry)) return [];
  const { users } = env.settingsOf(rabbitmqEntry);
  const { user: userName, vhost } = settings.rabbitmq;
  const user = users[userName];
  if (!user) {
    const declared = Object.keys(users).sort().join(', ') || 'none yet, add it under services.rabbitmq.users';
    return [{ path: ['rabbitmq', 'user'], message: `expected a user declared in services.rabbitmq.users (${declared}), received "${userName}"` }];
  }
  const vhosts = Object.keys(user.permissions);
  if (vhost !== undefined && !vhosts.includes(vhost)) {
    return [{ path: ['rabbitmq', 'vhost'], message: `expected a vhost user "${userName}" has permissions on (${vhosts.join(', ') || 'none'}), received "${vhost}"` }];
  }
  if (vhost === undefined && vhosts.length !== 1) {
    return [
      vhosts.length === 0
        ? { path: ['rabbitmq', 'user'], message: `expected a user with permissions on a vhost: "${userName}" has none (services.rabbitmq.users.${userName}.permissions)` }
        : { path: ['rabbitmq', 'vhost'], message: `expected the vhost to connect to: user "${userName}" has permissions on several (${vhosts.join(', ')})` },
    ];
  }
  return [];
}

/** Node.js, no single quotes (it runs as `node -e '...'`); within AMQP_SECONDS. */
const PUBLISH_SCRIPT = [
  amqpLimit('"n8n cannot publish to RabbitMQ"'),
  'const path = require("path");',
  'const env = process.env;',
  'const nodes = path.dirname(require.resolve("n8n-nodes-base/package.json", { paths: [env.N8N_ROOT] }));',
  'const amqp = require(require.resolve("amqplib", { paths: [nodes] }));',
  'const url = "amqp://" + encodeURIComponent(env.RABBITMQ_USERNAME) + ":" + encodeURIComponent(env.RABBITMQ_PASSWORD) +',
  '  "@" + env.RABBITMQ_HOST + ":" + env.RABBITMQ_PORT + "/" + encodeURIComponent(env.RABBITMQ_VHOST);',
  '(async () => {',
  '  const connection = await amqp.connect(url);',
  '  const channel = await connection.createConfirmChannel();',
  '  channel.publish("", "homelab.e2e.unrouted", Buffer.from("end-to-end check"), { headers: { "x-homelab": "e2e" } });',
  '  await channel.waitForConfirms();',
  '  await connection.close();',
  '  clearTimeout(limit);',
  '  console.log("published to vhost " + env.RABBITMQ_VHOST + " as the n8n RabbitMQ user; the broker confirmed it");',
  '})().catch((error) => {',
  '  console.error("n8n cannot publish to RabbitMQ: " + error.message);',
  '  process.exit(1);',
  '});',
].join('\n');

export const n8nEntry = defineService({
  name: 'n8n',
  settings: { key: 'n8n', schema: n8nSettings },
  names: [N8N_NAMESPACE],
  subdomains: ownSubdomain,
  requires: (settings) => [
    ...(settings.database.sqlite
      ? [{ entry: longhornEntry, path: ['database', 'sqlite'], reason: 'the SQLite volume needs Longhorn (or use database.postgres)' }]
      : []),
    ...(settings.rabbitmq ? [{ entry: rabbitmqEntry, path: ['rabbitmq'], reason: 'n8n connects to its broker' }] : []),
    ...(settings.database.cloudnativePg
      ? [
          { entry: cloudnativePgEntry, path: ['database', 'cloudnativePg'], reason: "CloudNativePG runs n8n's database" },
          { entry: longhornEntry, path: ['database', 'cloudnativePg'], reason: 'the database volumes need Longhorn' },
        ]
      : []),
  ],
  check: (settings, env) => [
    ...longhornStorageClassIssues(env, ['database', 'sqlite', 'storageClass'], settings.database.sqlite?.storageClass),
    ...longhornStorageClassIssues(env, ['database', 'cloudnativePg', 'storageClass'], settings.database.cloudnativePg?.storageClass),
    ...rabbitmqUserIssues(settings, env),
  ],
  build: (platform, settings, context) =>
    new N8n(platform, {
      ...settings,
      storage: settings.database.sqlite || settings.database.cloudnativePg ? context.required(longhornEntry) : undefined,
      databases: settings.database.cloudnativePg ? context.required(cloudnativePgEntry) : undefined,
      broker: settings.rabbitmq ? context.required(rabbitmqEntry) : undefined,
    }),
});
