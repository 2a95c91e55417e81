/**
 * RabbitMQ, the data mesh: one RabbitmqCluster (run by the Cluster Operator) and its
 * topology from the config — vhosts, users, permissions, queues, exchanges (run by the
 * Messaging Topology Operator). Both operators come from charts/rabbitmq-operators.ts:
 * emitting rabbitmq.com resources makes this service depend on that one, and the typed
 * storage prop makes it depend on Longhorn. No credential is in Git: the operators generate
 * the administrator's and every user's in the cluster. A user a consumer connects as moves
 * into the consumer's namespace (connectionFor), so its generated Secret lands next to the
 * pods that read it (docs/adr/0012).
 */
import { k8s } from 'cdk8s-plus-34';
import { z } from '../lib/model/config/zod';
import {
  RabbitmqCluster,
  RabbitmqClusterSpecAffinity,
  RabbitmqClusterSpecPersistenceStorage,
  RabbitmqClusterSpecResourcesLimits,
  RabbitmqClusterSpecResourcesRequests,
} from '../imports/rabbitmq-cluster-rabbitmq.com';
import { Construct } from 'constructs';
import { Exchange, Permission, Queue, QueueSpecDeletionPolicy, User, UserSpecTags, Vhost, VhostSpecDeletionPolicy } from '../imports/rabbitmq-topology-rabbitmq.com';
import { setSyncWave } from '../lib/model/argocd';
import { defineService, ownSubdomain } from '../lib/model/catalog';
import { Checkpoint, curlRetryOptions, curlRetrySeconds, STARTING_SERVER_CALL } from '../lib/model/checkpoint';
import { bool, intBetween, k8sName, oneOf, resourcesSchema, subdomain, volumeSize } from '../lib/model/config/primitives';
import { Inventory, schedulableNodes } from '../lib/model/inventory';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { quantities, type Resources } from '../lib/model/resources';
import { HomelabService } from '../lib/model/service';
import type { StorageProvider } from '../lib/model/storage';
import { IMAGES } from './versions';
import { longhornEntry } from './longhorn';
import { CLUSTER_OPERATOR_METRICS_LABELS, RABBITMQ_OPERATORS_NAMESPACE, RabbitmqOperators } from './rabbitmq-operators';

/** Per broker node. Memory request = limit: RabbitMQ sizes its memory watermark from the limit. */
export const DEFAULT_RABBITMQ_RESOURCES = { requests: { cpu: '250m', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } };

/**
 * Quorum queues and the metadata store need a majority of nodes: 2 nodes survive no more
 * failures than 1, and 4 no more than 3.
 */
const replicas = intBetween(1, 7).refine((n) => n % 2 === 1, {
  error: 'expected an odd number of nodes (1, 3, 5 or 7): a majority of 2 or 4 nodes tolerates no more failures than one node less',
});

/** Queue and exchange names: also resource names, so lowercase; dots allowed (`home.events`). */
const topologyName = z
  .string({ error: 'expected a queue or exchange name' })
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, { error: 'expected a name of lowercase letters, digits, "-" and "." (e.g. "home.events")' })
  .max(253, { error: 'expected a name of at most 253 characters' });

/** RabbitMQ permissions are regular expressions over resource names; "" grants nothing. */
const permissionPattern = z.string({ error: 'expected a regular expression ("" for none, ".*" for all)' }).refine(isRegExp, {
  error: 'expected a valid regular expression ("" for none, ".*" for all)',
});

const permissionsSchema = z.strictObject({
  configure: permissionPattern,
  write: permissionPattern,
  read: permissionPattern,
});

const userSchema = z.strictObject({
  /** Management UI access; none means the user can only connect over AMQP. */
  tags: z.array(oneOf(['management', 'policymaker', 'monitoring', 'administrator'])).default([]),
  /** Vhost name -> what the user may configure, write and read there. */
  permissions: z.record(k8sName, permissionsSchema).default({}),
});

/** Type, durability and vhost of a queue cannot change once it exists (the operator's webhook refuses). */
const queueSchema = z.strictObject({
  vhost: k8sName,
  /**
   * Quorum queues are replicated across the cluster's nodes (on a single node they work,
   * unreplicated); streams are append-only logs.
   */
  type: oneOf(['quorum', 'classic', 'stream']).default('quorum'),
  durable: bool.default(true),
});

const exchangeSchema = z.strictObject({
  vhost: k8sName,
  type: oneOf(['direct', 'topic', 'fanout', 'headers']),
  durable: bool.default(true),
});

/** `services.rabbitmq`. */
export const rabbitmqSettings = z
  .strictObject({
    enabled: bool.default(false),
    /** The management UI's subdomain (an admin route through Traefik). */
    subdomain: subdomain.default('rabbitmq'),
    /** Broker nodes; with more than one, each runs on its own node where the inventory allows. */
    replicas: replicas.default(1),
    /** Volume per broker node, on Longhorn's default storage class. */
    storageSize: volumeSize.default('10Gi'),
    resources: resourcesSchema.default(DEFAULT_RABBITMQ_RESOURCES),
    /** Virtual hosts by name (the default vhost "/" is not managed here). */
    vhosts: z.record(k8sName, z.strictObject({})).default({}),
    users: z.record(k8sName, userSchema).default({}),
    queues: z.record(topologyName, queueSchema).default({}),
    exchanges: z.record(topologyName, exchangeSchema).default({}),
  })
  .superRefine((rabbitmq, ctx) => {
    const vhosts = new Set(Object.keys(rabbitmq.vhosts));
    const declared = [...vhosts].sort().join(', ') || 'none yet, add it under vhosts';
    const checkVhost = (vhost: string, path: string[]) => {
      if (vhosts.has(vhost)) return;
      ctx.addIssue({ code: 'custom', path, message: `expected a declared vhost (${declared}), received "${vhost}"` });
    };
    for (const [name, user] of Object.entries(rabbitmq.users)) {
      for (const vhost of Object.keys(user.permissions)) checkVhost(vhost, ['users', name, 'permissions', vhost]);
    }
    for (const [name, queue] of Object.entries(rabbitmq.queues)) {
      checkVhost(queue.vhost, ['queues', name, 'vhost']);
      if (queue.type !== 'classic' && !queue.durable) {
        ctx.addIssue({
          code: 'custom',
          path: ['queues', name, 'durable'],
          message: `expected true: ${queue.type} queues are always durable (only classic queues can be transient)`,
        });
      }
    }
    for (const [name, exchange] of Object.entries(rabbitmq.exchanges)) checkVhost(exchange.vhost, ['exchanges', name, 'vhost']);
  })
  .prefault({});

export type RabbitmqSettings = z.output<typeof rabbitmqSettings>;
export type RabbitmqUserSettings = z.output<typeof userSchema>;

function isRegExp(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}

export const RABBITMQ_NAMESPACE = 'rabbitmq';
/** The RabbitmqCluster's name: the operator names the client Service and its Secrets after it. */
const CLUSTER_NAME = 'rabbitmq';
export const AMQP_PORT = 5672;
const MANAGEMENT_PORT = 15672;
/**
 * The labels the Cluster Operator gives the cluster's Services and pods (internal/metadata
 * label.go in cluster-operator v2.22.3). The client Service `rabbitmq` names its
 * rabbitmq_prometheus port (15692) `prometheus` (internal/resource/service.go); the headless
 * `rabbitmq-nodes` Service carries the same labels but has no such port, so it adds no target.
 */
export const RABBITMQ_OPERATOR_LABELS = { 'app.kubernetes.io/name': CLUSTER_NAME, 'app.kubernetes.io/component': 'rabbitmq' } as const;
const PROMETHEUS_PORT_NAME = 'prometheus';
/** rabbitmq_prometheus' port on the brokers. */
const PROMETHEUS_PORT = 15692;
/** Unacknowledged messages in the whole cluster above which a still growing backlog is alerted on. */
const UNACKED_BACKLOG_THRESHOLD = 1000;

/**
 * Resource sync waves inside the Application. The broker comes first and is Healthy (all
 * replicas ready) before any topology is applied; queues, exchanges and permissions need
 * their vhost (and permissions their user) to exist, or the operator marks them failed.
 */
const TOPOLOGY_WAVE = { vhost: 1, user: 1, queue: 2, exchange: 2, permission: 2 } as const;
/** Annotation on the RabbitmqCluster listing the namespaces whose topology objects may reference it (topology operator v1.20.1, rabbitmqclient/cluster_reference.go). */
const ALLOWED_NAMESPACES_ANNOTATION = 'rabbitmq.com/topology-allowed-namespaces';

export type RabbitmqProps = Omit<RabbitmqSettings, 'enabled'> & {
  /** Where the brokers keep their data: a volume per broker on the default storage class. */
  readonly storage: StorageProvider;
  /** The operators running the cluster; the topology operator calls the management API. */
  readonly operators: RabbitmqOperators;
};

/** "RabbitMQ-Overview", the RabbitMQ team's dashboard for the rabbitmq_prometheus plugin on grafana.com: revision 15. */
const DASHBOARD = { name: 'rabbitmq-overview', gnetId: 10991, revision: 15 } as const;

/** What a consumer (n8n ...) needs to connect as one of the declared users. */
export interface RabbitmqConnection {
  /** In-cluster DNS name of the cluster's client Service. */
  readonly host: string;
  /** AMQP 0-9-1 port. */
  readonly port: number;
  readonly vhost: string;
  /** The user's name in the config: its User resource's name (not the generated username). */
  readonly user: string;
  /**
   * Secret the Messaging Topology Operator generates for the user, with keys `username`
   * and `password` (both random; the config name is only the resource name).
   */
  readonly credentialsSecret: string;
  /** Namespace of that Secret: the consumer's own, where its User resource lives. */
  readonly credentialsNamespace: string;
  /**
   * Sync wave, in the consumer's Application, from which the user and its permissions are
   * applied: workloads reading the credentials go in this wave (the operator generates the
   * Secret right after the User, which Argo CD has no health check for).
   */
  readonly workloadSyncWave: number;
  /** What the user may configure, write and read on `vhost` (RabbitMQ regular expressions). */
  readonly permissions: RabbitmqPermissions;
  /** The queues the config declares on `vhost`: the topology operator's, never a check's to delete. */
  readonly declaredQueues: readonly string[];
  /** The service itself: a consumer keeping it in its props depends on RabbitMQ. */
  readonly service: Rabbitmq;
}

export type RabbitmqPermissions = z.output<typeof permissionsSchema>;

/**
 * Whether a permission pattern admits a resource name, as the broker decides it: the pattern is
 * an unanchored regular expression, and "" is a synonym for "^$" (rabbitmq.com/docs/access-control,
 * "Authorisation: How Permissions Work"). JavaScript's dialect stands in for Erlang's PCRE, the
 * same for the patterns a permission uses (anchors, classes, alternation).
 */
export function permits(pattern: string, name: string): boolean {
  return pattern === '' ? name === '' : new RegExp(pattern).test(name);
}

/** The name the default exchange has in permission checks (rabbitmq.com/docs/access-control). */
export const DEFAULT_EXCHANGE_RESOURCE = 'amq.default';

export class Rabbitmq extends HomelabService {
  /** In-cluster DNS name of the client Service (AMQP, management API, Prometheus metrics). */
  readonly host: string;
  /** Secret the Cluster Operator generates with the administrator's `username` and `password`. */
  readonly defaultUserSecret: string;
  private readonly users: RabbitmqSettings['users'];
  private readonly queues: RabbitmqSettings['queues'];
  private readonly cluster: RabbitmqCluster;
  /** User name -> the consumer service it moved to. */
  private readonly claims = new Map<string, HomelabService>();

  constructor(scope: Platform, props: RabbitmqProps) {
    super(scope, 'rabbitmq', props, { layer: Layer.DATA_MESH, namespace: RABBITMQ_NAMESPACE });
    this.host = `${CLUSTER_NAME}.${RABBITMQ_NAMESPACE}.svc`;
    this.defaultUserSecret = `${CLUSTER_NAME}-default-user`;
    this.users = props.users;
    this.queues = props.queues;

    const { replicas, resources } = props;
    this.cluster = this.addCluster(props, replicas, resources, scope.config.nodes);
    this.requestCapacity('broker', replicas, resources.requests);
    this.addTopology(props);
    this.addCheckpoint(Object.keys(props.vhosts));
    this.addMonitoring();
    // Consumers speak AMQP; the management API is for the topology operator (and the
    // checkpoint and the UI, through the same-namespace and exposure rules).
    this.serveClients(
      { port: AMQP_PORT, podSelector: RABBITMQ_OPERATOR_LABELS },
      { port: MANAGEMENT_PORT, podSelector: RABBITMQ_OPERATOR_LABELS, clients: [props.operators] },
    );
    // The operator's client Service `<cluster>` carries the management port (internal/resource/service.go).
    this.expose({
      subdomain: props.subdomain,
      serviceName: CLUSTER_NAME,
      servicePort: MANAGEMENT_PORT,
      podPort: MANAGEMENT_PORT,
      podSelector: RABBITMQ_OPERATOR_LABELS,
      admin: true,
    });
  }

  /**
   * Host, port, vhost and credentials Secret for a declared user, connecting from `consumer`.
   * The user's User and Permission resources move into the consumer's namespace and
   * Application (they reference the cluster across namespaces, which the cluster allows by
   * annotation), so the Secret the operator generates lands where the consumer's pods can
   * read it, and is created after RabbitMQ is up. One consumer per user.
   * @param vhost @default the user's only vhost
   */
  connectionFor(consumer: HomelabService, userName: string, vhost?: string): RabbitmqConnection {
    const user = this.users[userName];
    if (!user) {
      const declared = Object.keys(this.users).sort().join(', ') || 'none';
      throw new Error(`RabbitMQ has no user "${userName}" (declared: ${declared})`);
    }
    const permitted = permittedVhost(userName, Object.keys(user.permissions), vhost);
    const owner = this.claims.get(userName);
    if (owner && owner !== consumer) throw new Error(`RabbitMQ user "${userName}" already connects ${owner.serviceName}; declare one user per consumer`);
    if (!owner) {
      this.claims.set(userName, consumer);
      this.node.tryRemoveChild(userConstructId(userName));
      new UserTopology(consumer, `rabbitmq-${userConstructId(userName)}`, {
        name: userName,
        user,
        labels: consumer.labelsFor('rabbitmq-user'),
        clusterReference: { name: CLUSTER_NAME, namespace: this.namespaceName },
      });
      const namespaces = [...new Set([...this.claims.values()].map((c) => c.namespaceName))].sort();
      this.cluster.metadata.addAnnotation(ALLOWED_NAMESPACES_ANNOTATION, namespaces.join(','));
    }
    return {
      host: this.host,
      port: AMQP_PORT,
      vhost: permitted,
      user: userName,
      credentialsSecret: userCredentialsSecret(userName),
      credentialsNamespace: consumer.namespaceName,
      workloadSyncWave: TOPOLOGY_WAVE.permission,
      permissions: user.permissions[permitted],
      declaredQueues: Object.entries(this.queues)
        .filter(([, queue]) => queue.vhost === permitted)
        .map(([name]) => name)
        .sort(),
      service: this,
    };
  }

  private addCluster(props: RabbitmqProps, replicas: number, resources: Resources, nodes: Inventory): RabbitmqCluster {
    const cluster = new RabbitmqCluster(this, 'cluster', {
      metadata: { name: CLUSTER_NAME, labels: this.labelsFor('broker') },
      spec: {
        image: IMAGES.rabbitmq,
        replicas,
        resources: {
          requests: quantities(RabbitmqClusterSpecResourcesRequests, resources.requests),
          limits: quantities(RabbitmqClusterSpecResourcesLimits, resources.limits),
        },
        persistence: {
          storageClassName: props.storage.storageClass(),
          storage: RabbitmqClusterSpecPersistenceStorage.fromString(props.storageSize),
        },
        // The operator enables it anyway (and dedupes); listed so the metrics endpoint
        // Prometheus will scrape (:15692) is visible in Git.
        rabbitmq: { additionalPlugins: ['rabbitmq_prometheus'] },
        affinity: podAntiAffinity(replicas, nodes),
      },
    });
    // A node drain evicts one broker at a time, so quorum queues keep their majority.
    if (replicas > 1) {
      new k8s.KubePodDisruptionBudget(this, 'disruption-budget', {
        metadata: { name: CLUSTER_NAME, labels: this.labelsFor('broker') },
        spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: { ...RABBITMQ_OPERATOR_LABELS } } },
      });
    }
    return cluster;
  }

  private addTopology(props: RabbitmqProps): void {
    const labels = this.labelsFor('topology');
    const rabbitmqClusterReference = { name: CLUSTER_NAME };
    // Removing a vhost or queue from the config deletes its resource, never its messages:
    // the broker keeps them until someone deletes them by hand.
    for (const name of Object.keys(props.vhosts)) {
      const vhost = new Vhost(this, `vhost-${name}`, {
        metadata: { name, labels },
        spec: { name, rabbitmqClusterReference, deletionPolicy: VhostSpecDeletionPolicy.RETAIN },
      });
      setSyncWave(vhost, TOPOLOGY_WAVE.vhost);
    }
    // Until a consumer claims it (connectionFor), a user lives next to the cluster.
    for (const [name, user] of Object.entries(props.users)) {
      new UserTopology(this, userConstructId(name), { name, user, labels, clusterReference: rabbitmqClusterReference });
    }
    for (const [name, queue] of Object.entries(props.queues)) {
      const resource = new Queue(this, `queue-${name}`, {
        metadata: { name, labels },
        spec: {
          name,
          vhost: queue.vhost,
          type: queue.type,
          // Always explicit: the operator's webhook would default it, and Argo CD would see a diff.
          durable: queue.durable,
          rabbitmqClusterReference,
          deletionPolicy: QueueSpecDeletionPolicy.RETAIN,
        },
      });
      setSyncWave(resource, TOPOLOGY_WAVE.queue);
    }
    for (const [name, exchange] of Object.entries(props.exchanges)) {
      const resource = new Exchange(this, `exchange-${name}`, {
        metadata: { name, labels },
        spec: { name, vhost: exchange.vhost, type: exchange.type, durable: exchange.durable, rabbitmqClusterReference },
      });
      setSyncWave(resource, TOPOLOGY_WAVE.exchange);
    }
  }

  /**
   * The rabbitmq_prometheus plugin's aggregated `/metrics` of every broker, through the
   * operator-made client Service. Metric names from rabbitmq-server v4.2.8
   * deps/rabbitmq_prometheus: rabbitmq_alarms_* (prometheus_rabbitmq_alarm_metrics_collector,
   * 1 while the alarm is in effect) and rabbitmq_queue_messages_unacked
   * (prometheus_rabbitmq_core_metrics_collector, summed over the node's queues).
   */
  private addMonitoring(): void {
    this.exposeMetrics({
      name: 'broker',
      kind: 'service',
      selector: RABBITMQ_OPERATOR_LABELS,
      port: PROMETHEUS_PORT_NAME,
      podPort: PROMETHEUS_PORT,
      podSelector: RABBITMQ_OPERATOR_LABELS,
    });
    const own = `${SERVICE_LABEL}="${this.serviceName}"`;
    const alarm = (metric: string) => `max by (namespace, pod) (${metric}{${own}}) > 0`;
    const unacked = `rabbitmq_queue_messages_unacked{${own}}`;
    this.addAlerts(
      {
        alert: 'RabbitmqMemoryAlarm',
        expr: alarm('rabbitmq_alarms_memory_used_watermark'),
        for: '1m',
        severity: 'critical',
        summary: 'RabbitMQ memory alarm on {{ $labels.pod }}: every publisher in the cluster is blocked',
        description: 'The broker reached vm_memory_high_watermark. Drain queues (consumers), or give the brokers more memory.',
      },
      {
        alert: 'RabbitmqDiskAlarm',
        expr: alarm('rabbitmq_alarms_free_disk_space_watermark'),
        for: '1m',
        severity: 'critical',
        summary: 'RabbitMQ disk alarm on {{ $labels.pod }}: every publisher in the cluster is blocked',
        description: 'Free disk space fell below disk_free_limit. Drain queues, or grow the broker volumes.',
      },
      {
        alert: 'RabbitmqUnackedMessagesGrowing',
        expr: [
          `sum by (namespace) (${unacked}) > ${UNACKED_BACKLOG_THRESHOLD}`,
          `and sum by (namespace) (deriv(${unacked}[15m])) > 0`,
        ].join('\n'),
        for: '15m',
        severity: 'warning',
        summary: 'RabbitMQ has {{ $value }} unacknowledged messages and the backlog keeps growing',
        description: 'Consumers take messages but do not acknowledge them: a hung consumer, or a prefetch too large for its pace.',
      },
    );
    this.addDashboard(DASHBOARD);
  }

  /**
   * The management API's health checks, as the operator-generated administrator. RabbitMQ 4
   * made /api/aliveness-test a no-op; the fine-grained /api/health/checks/* replace it.
   */
  private addCheckpoint(vhosts: readonly string[]): void {
    const checks = ['reached-target-cluster-size', 'local-alarms', `port-listener/${AMQP_PORT}`, 'virtual-hosts'];
    new Checkpoint(this, 'checkpoint', {
      description:
        'the management API answers its health checks (all nodes joined, no alarms, AMQP listener up, vhosts running) and every declared vhost exists',
      image: IMAGES.curl,
      // Every call with its retries at curl's limit, after the pod's start.
      scriptSeconds: (checks.length + vhosts.length) * curlRetrySeconds(API_CALL),
      secretEnv: {
        RABBITMQ_USERNAME: { name: this.defaultUserSecret, key: 'username' },
        RABBITMQ_PASSWORD: { name: this.defaultUserSecret, key: 'password' },
      },
      script: [
        `api="http://${this.host}:${MANAGEMENT_PORT}/api"`,
        `get() { curl -fsS ${curlRetryOptions(API_CALL)} -u "$RABBITMQ_USERNAME:$RABBITMQ_PASSWORD" "$api/$1"; echo; }`,
        // The first fails until every replica has joined (the operator sets the target size to replicas).
        ...checks.map((check) => `get health/checks/${check}`),
        ...vhosts.flatMap((vhost) => [`get vhosts/${vhost} > /dev/null`, `echo "vhost ${vhost} exists"`]),
      ].join('\n'),
    });
  }
}

/** The checkpoint's management API calls: retried for a minute (a node may still be joining), each attempt within curl's limit. */
const API_CALL = STARTING_SERVER_CALL;

interface UserTopologyProps {
  /** The user's name in the config: names the User resource and its generated Secret. */
  readonly name: string;
  readonly user: RabbitmqUserSettings;
  readonly labels: Record<string, string>;
  /** The cluster, with its namespace when the user lives elsewhere. */
  readonly clusterReference: { readonly name: string; readonly namespace?: string };
}

/** A User and its Permissions, in the namespace of the chart it is created in. */
class UserTopology extends Construct {
  constructor(scope: Construct, id: string, props: UserTopologyProps) {
    super(scope, id);
    const { name, user, labels, clusterReference: rabbitmqClusterReference } = props;
    // No importCredentialsSecret: the operator generates the credentials into <name>-user-credentials.
    const resource = new User(this, 'user', {
      metadata: { name, labels },
      spec: { rabbitmqClusterReference, tags: user.tags.map((tag) => tag as UserSpecTags) },
    });
    setSyncWave(resource, TOPOLOGY_WAVE.user);
    for (const [vhost, permissions] of Object.entries(user.permissions)) {
      // userReference (a User in the same namespace), not a username: the generated username is random.
      const permission = new Permission(this, `permission-${vhost}`, {
        metadata: { name: `${name}.${vhost}`, labels },
        spec: { vhost, userReference: { name }, permissions, rabbitmqClusterReference },
      });
      setSyncWave(permission, TOPOLOGY_WAVE.permission);
    }
  }
}

function userConstructId(userName: string): string {
  return `user-${userName}`;
}

/** Name of the Secret the Messaging Topology Operator generates for a User resource. */
export function userCredentialsSecret(userName: string): string {
  return `${userName}-user-credentials`;
}

function permittedVhost(userName: string, vhosts: readonly string[], requested: string | undefined): string {
  if (requested !== undefined) {
    if (vhosts.includes(requested)) return requested;
    throw new Error(`RabbitMQ user "${userName}" has no permissions on vhost "${requested}" (it has: ${vhosts.join(', ') || 'none'})`);
  }
  if (vhosts.length === 1) return vhosts[0];
  throw new Error(
    vhosts.length === 0
      ? `RabbitMQ user "${userName}" has no permissions on any vhost`
      : `RabbitMQ user "${userName}" has permissions on several vhosts (${vhosts.join(', ')}): name the one to connect to`,
  );
}

/**
 * One broker per node. Required when the inventory has a schedulable node for every
 * replica, so one node failure never takes a quorum majority with it; only preferred when
 * it has fewer, so the cluster still starts (two brokers sharing a node) instead of a
 * broker staying Pending forever.
 */
function podAntiAffinity(replicas: number, nodes: Inventory): RabbitmqClusterSpecAffinity | undefined {
  if (replicas === 1) return undefined;
  // The labels the Cluster Operator puts on the broker pods (not on our checkpoint pods).
  const term = {
    labelSelector: { matchLabels: { ...RABBITMQ_OPERATOR_LABELS } },
    topologyKey: 'kubernetes.io/hostname',
  };
  return schedulableNodes(nodes).length >= replicas
    ? { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term] } }
    : { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: term }] } };
}

export const rabbitmqEntry = defineService({
  name: 'rabbitmq',
  settings: { key: 'rabbitmq', schema: rabbitmqSettings },
  names: [RABBITMQ_NAMESPACE, 'rabbitmq-operators', RABBITMQ_OPERATORS_NAMESPACE],
  subdomains: ownSubdomain,
  requires: () => [{ entry: longhornEntry, path: ['enabled'], reason: 'RabbitMQ keeps its data on Longhorn' }],
  upstreamTargets: {
    'rabbitmq-operators-cluster-operator': {
      selector: CLUSTER_OPERATOR_METRICS_LABELS,
      port: 'http',
      source: 'rabbitmq/cluster-operator v2.22.3 config/installation/metrics_service.yaml',
    },
    // The RabbitmqCluster is ours, but the operator makes its Services from it.
    'rabbitmq-broker': { selector: RABBITMQ_OPERATOR_LABELS, port: PROMETHEUS_PORT_NAME, source: 'rabbitmq/cluster-operator v2.22.3 internal/metadata/label.go, internal/resource/service.go' },
  },
  // The operators install the rabbitmq.com CRDs; the cluster depends on them through that.
  build: (platform, settings, context) =>
    new Rabbitmq(platform, { ...settings, storage: context.required(longhornEntry), operators: new RabbitmqOperators(platform) }),
});
