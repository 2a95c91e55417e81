/**
 * Loki, the log store of the observability layer: the OSS `loki` chart (now published from
 * grafana-community/helm-charts) in monolithic mode, one replica, single tenant. Chunks and
 * index live on a Longhorn volume (the filesystem store) or in S3; the compactor enforces the
 * retention. Alloy (charts/alloy.ts) ships every pod's logs here; Grafana reads `queryUrl`.
 */
import { z } from '../lib/model/config/zod';
import type { LokiValues } from '../imports/helm/loki';
import { defineService } from '../lib/model/catalog';
import { Checkpoint, curlRetryOptions, curlRetrySeconds, type DeadlineWait, READINESS_WAIT_SECONDS, readinessWait, STARTING_SERVER_CALL, untilDeadline, untilDeadlineSeconds } from '../lib/model/checkpoint';
import { bool, exactlyOneOf, expected, region, resourcesSchema, s3Endpoint, volumeSize } from '../lib/model/config/primitives';
import { durationSeconds } from '../lib/util/quantity';
import { helmRelease } from './helm-release';
import { longhornEntry } from './longhorn';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { Resources, resources, sumOfContainers } from '../lib/model/resources';
import { S3_CREDENTIAL_KEYS, SecretRef } from '../lib/model/secrets';
import { s3Destination } from '../lib/model/network';
import { HomelabService } from '../lib/model/service';
import type { StorageProvider } from '../lib/model/storage';
import type { ObjectStore } from '../lib/model/object-storage';
import { bucketName, seaweedfsEntry } from './seaweedfs';
import { IMAGES } from './versions';


/** Loki (monolithic) per replica: GOMEMLIMIT is derived from the memory limit by the chart. */
export const DEFAULT_LOKI_RESOURCES = { requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '2', memory: '2Gi' } };


/**
 * How long Loki keeps logs, as Loki parses it (Prometheus durations: `7d`, `4w`, `720h`).
 * The compactor deletes whole daily index tables, and Loki's minimum retention is 24h
 * (docs/sources/operations/storage/retention.md), so only whole days are accepted.
 */
const RETENTION = /^[1-9]\d*[hdw]$/;
const retentionPeriod = z
  .string(expected('a retention period such as "7d", "4w" or "720h"'))
  .regex(RETENTION, expected('a retention period such as "7d", "4w" or "720h"'))
  .refine(
    // Malformed periods are reported by the regex alone.
    (period) => !RETENTION.test(period) || durationSeconds(period) % 86400 === 0,
    expected('whole days (Loki deletes logs by daily index table), such as "7d" or "72h"'),
  );




/** Its credentials: the Secret `loki-s3-credentials` (charts/loki.ts). */
const s3Schema = z
  .strictObject({
    /** @default AWS, from the region */
    endpoint: s3Endpoint.optional(),
    /** MinIO and most S3-compatible servers accept any region; their default is us-east-1. */
    region: region.default('us-east-1'),
    buckets: z.strictObject({
      /** Log chunks and the TSDB index. */
      chunks: bucketName,
      /** Loki ruler state (rules stored through the API). */
      ruler: bucketName,
    }),
    /** Path-style URLs (`endpoint/bucket`), which MinIO and most self-hosted servers need. */
    forcePathStyle: bool.default(true),
  })
  .refine((s3) => s3.buckets.chunks !== s3.buckets.ruler, {
    error: 'expected two different buckets for chunks and ruler (Loki keeps ruler state apart from chunks)',
    path: ['buckets', 'ruler'],
  });

const storageSchema = exactlyOneOf(
  {
    /** Chunks, index and WAL on a Longhorn volume (default storage class): the filesystem store. */
    volume: z.strictObject({ size: volumeSize }).optional(),
    /** Chunks and index in S3; the WAL stays on a Longhorn volume when Longhorn is enabled. */
    s3: s3Schema.optional(),
    /**
     * Chunks and index in buckets of the platform's object store (SeaweedFS), with keys of
     * Loki's own generated in Vault; the WAL stays on a Longhorn volume when Longhorn is enabled.
     */
    objectStore: z
      .strictObject({
        buckets: z
          .strictObject({ chunks: bucketName.default('loki-chunks'), ruler: bucketName.default('loki-ruler') })
          .refine((buckets) => buckets.chunks !== buckets.ruler, { error: 'expected two different buckets for chunks and ruler', path: ['ruler'] })
          .prefault({}),
      })
      .optional(),
  },
  'volume',
  's3',
  'objectStore',
);

/** `services.loki`. */
export const lokiSettings = z
  .strictObject({
    enabled: bool.default(false),
    retention: retentionPeriod.default('7d'),
    storage: storageSchema.default({ volume: { size: '20Gi' } }),
    resources: resourcesSchema.default(DEFAULT_LOKI_RESOURCES),
  })
  .prefault({});

export type LokiSettings = z.output<typeof lokiSettings>;

export const LOKI_NAMESPACE = 'loki';
/** With the S3 store: the Secret (in the loki namespace) with Loki's S3 credentials, S3_CREDENTIAL_KEYS. */
export const S3_CREDENTIALS_SECRET = 'loki-s3-credentials';
/** Loki's HTTP port (push, query, /ready, /metrics), on the single-binary Service `loki`. */
export const LOKI_HTTP_PORT = 3100;

/**
 * Start of the one schema period. Fixed, so every synth renders the same config; never change
 * it on a running Loki (data written under a period is read with that period's schema): a
 * new schema is a second entry with a later `from`.
 */
export const LOKI_SCHEMA_START = '2024-04-01';

/** With S3 only the WAL, the TSDB head and the compactor's scratch space are on the volume. */
const S3_WAL_VOLUME_SIZE = '10Gi';

/**
 * memcached sizes in MB (the chart's `allocatedMemory`). The chart's defaults (8192 MB of
 * chunks cache, 1024 MB of results cache) are sized for clusters ingesting terabytes; a
 * homelab's recent chunks and query results fit in a fraction of that.
 */
export const LOKI_CACHE_MB = { chunks: 256, results: 128 } as const;
/** Loki buffers cache writes in its own memory up to this much per cache (chart default 500MB). */
const CACHE_WRITEBACK_LIMIT = '10MB';
const MEMCACHED_EXPORTER_RESOURCES = resources('10m', '32Mi', '100m', '64Mi');

/** Labels the chart puts on the single-binary pods (release name = service name). */
const SINGLE_BINARY_POD_LABELS = {
  'app.kubernetes.io/name': 'loki',
  'app.kubernetes.io/instance': 'loki',
  'app.kubernetes.io/component': 'single-binary',
} as const;

export type LokiS3Storage = NonNullable<LokiSettings['storage']['s3']>;

/** Where Loki's S3 client goes, whichever store: an external S3 or the platform's object store. */
interface LokiS3Target {
  readonly endpoint?: string;
  readonly region: string;
  readonly buckets: { readonly chunks: string; readonly ruler: string };
  readonly forcePathStyle: boolean;
  readonly credentials: SecretRef;
}

export type LokiProps = Omit<LokiSettings, 'enabled'> & {
  /**
   * Provides Loki's volume. Without `storage.s3` it holds everything (the filesystem store);
   * with it only the WAL and the index head. @default none: `storage.s3` is then required and
   * the WAL is on an emptyDir (unflushed logs are lost with the pod)
   */
  readonly volumes?: StorageProvider;
  /** The object store holding the buckets of `storage.objectStore`. @default none: required with `storage.objectStore` */
  readonly objectStore?: ObjectStore;
};

/** "Logs / App", a Loki log browser on grafana.com: revision 2. */
const DASHBOARD = { name: 'loki-logs', gnetId: 13639, revision: 2, datasource: 'Loki' } as const;

/** Loki's pods as the chart labels them, and their metrics port. */
const SERVER_METRICS = {
  selector: SINGLE_BINARY_POD_LABELS,
  port: 'http-metrics',
  source: 'grafana-community/helm-charts loki-18.11.0 templates/single-binary/statefulset-single-binary.yaml, _helpers.tpl',
} as const;

export class Loki extends HomelabService {
  /** Base URL for LogQL queries (Grafana's data source), inside the cluster. */
  readonly queryUrl: string;
  /** Where log shippers push: Loki's push API. */
  readonly pushUrl: string;

  constructor(scope: Platform, props: LokiProps) {
    const { s3, objectStore } = props.storage;
    if (!props.volumes && !s3 && !objectStore) throw new Error('loki: needs a volume (storage), S3 or the object store for its chunks');
    if (objectStore && !props.objectStore) throw new Error('loki: storage.objectStore needs the object store');
    const lokiResources = props.resources;
    super(scope, 'loki', props, { layer: Layer.OBSERVABILITY, namespace: LOKI_NAMESPACE });
    let target: LokiS3Target | undefined;
    if (s3) {
      const credentials = this.needSecret(S3_CREDENTIALS_SECRET, S3_CREDENTIAL_KEYS, `S3 credentials of Loki's buckets ${s3.buckets.chunks} and ${s3.buckets.ruler}`);
      target = { ...s3, credentials };
    } else if (objectStore && props.objectStore) {
      const at = 'services.loki.storage.objectStore.buckets';
      const [chunks, ruler] = this.needBuckets(
        props.objectStore,
        [
          { name: objectStore.buckets.chunks, configPath: `${at}.chunks` },
          { name: objectStore.buckets.ruler, configPath: `${at}.ruler` },
        ],
        'log chunks, index and ruler state',
      );
      target = { endpoint: chunks.endpoint, region: chunks.region, buckets: { chunks: chunks.bucket, ruler: ruler.bucket }, forcePathStyle: true, credentials: chunks.credentials };
    }
    this.installChart(helmRelease('loki', lokiValues(props, lokiResources, target)));
    // No gateway: in monolithic mode without auth, the single-binary Service serves push,
    // query and /ready itself; the chart's nginx gateway would only add a hop and a pod.
    this.queryUrl = `http://loki.${LOKI_NAMESPACE}.svc:${LOKI_HTTP_PORT}`;
    this.pushUrl = `${this.queryUrl}/loki/api/v1/push`;

    this.requestCapacity('loki', 1, lokiResources.requests);
    for (const [cache, mb] of Object.entries(LOKI_CACHE_MB)) {
      this.requestCapacity(`${cache}-cache`, 1, sumOfContainers(memcachedResources(mb), MEMCACHED_EXPORTER_RESOURCES).requests);
    }

    this.addMonitoring();
    this.addCheckpoint();
    // Push (Alloy) and queries (Grafana) on the single binary's HTTP port.
    this.serveClients({ port: LOKI_HTTP_PORT, podSelector: SINGLE_BINARY_POD_LABELS });
    if (s3) {
      this.allowEgress({
        name: 's3',
        podSelector: SINGLE_BINARY_POD_LABELS,
        // Without an endpoint Loki's client goes to AWS S3, over HTTPS.
        to: { kind: 'external', destinations: [s3Destination(s3.endpoint)] },
        reason: `Loki keeps its chunks in S3 (${s3.buckets.chunks}, ${s3.buckets.ruler})`,
      });
    }
  }

  private addMonitoring(): void {
    // The pods, not the Service: the chart's headless Service carries the same labels, so a
    // ServiceMonitor would scrape Loki twice.
    this.exposeMetrics({ name: 'server', kind: 'pod', selector: SERVER_METRICS.selector, port: SERVER_METRICS.port });
    const loki = `${SERVICE_LABEL}="${this.serviceName}"`;
    // Metric names from Loki v3.7.6: dskit's loki_request_duration_seconds (server/metrics.go),
    // pkg/validation/validate.go, pkg/ingester/metrics.go, pkg/compactor/metrics.go. The first
    // and last follow the upstream mixin (production/loki-mixin/alerts.libsonnet).
    this.addAlerts(
      {
        alert: 'LokiRequestErrors',
        expr:
          `100 * sum by (route) (rate(loki_request_duration_seconds_count{${loki}, status_code=~"5.."}[5m]))` +
          ` / sum by (route) (rate(loki_request_duration_seconds_count{${loki}}[5m])) > 10`,
        for: '15m',
        severity: 'critical',
        summary: 'Loki answers {{ printf "%.1f" $value }}% of {{ $labels.route }} requests with a server error',
        description: 'On loki_api_v1_push this means log lines are lost once the shippers give up retrying.',
      },
      {
        alert: 'LokiDiscardingLogs',
        expr: `sum by (reason) (rate(loki_discarded_samples_total{${loki}}[5m])) > 0`,
        for: '15m',
        severity: 'warning',
        summary: 'Loki rejects incoming log lines ({{ $labels.reason }}); they are lost',
        description: 'The reason names the limit (limits_config), e.g. rate_limited, line_too_long or greater_than_max_sample_age.',
      },
      {
        alert: 'LokiChunkFlushFailing',
        expr: `increase(loki_ingester_chunks_flush_failures_total{${loki}}[15m]) > 0`,
        severity: 'critical',
        summary: 'Loki cannot write chunks to its store (volume full or S3 unreachable); logs pile up in memory and the WAL',
      },
      {
        alert: 'LokiCompactorNotRunning',
        expr: `time() - max(loki_boltdb_shipper_compact_tables_operation_last_successful_run_timestamp_seconds{${loki}} > 0) > 3 * 3600`,
        for: '1h',
        severity: 'warning',
        summary: 'Loki has not compacted for 3 hours: retention is not applied and its storage keeps growing',
      },
    );
    // A log browser over Loki that selects streams by `job`, which Alloy sets to
    // <namespace>/<app>. Loki's own operational dashboards (its mixin's) are not published on
    // grafana.com under an ID we could pin and verify.
    this.addDashboard(DASHBOARD);
  }

  /**
   * Loki is ready and a line pushed through the push API comes back from a LogQL query.
   * Shipping real pod logs is Alloy's checkpoint: Alloy depends on Loki, so on a first
   * bootstrap it does not exist yet when this one runs.
   */
  private addCheckpoint(): void {
    new Checkpoint(this, 'checkpoint', {
      description: 'Loki is ready, accepts a line on its push API and returns it from a LogQL query',
      image: IMAGES.curl,
      env: { LOKI_URL: this.queryUrl },
      // Readiness, the push's retries and the query's wait, every call at its limit, after the pod's start.
      scriptSeconds: READINESS_WAIT_SECONDS + curlRetrySeconds(PUSH) + untilDeadlineSeconds(QUERY_WAIT),
      script: [
        readinessWait('Loki', 'LOKI_URL'),
        'now=$(date +%s)',
        'marker="loki-checkpoint-${HOSTNAME:-job}-$now"',
        // Streams are labelled apart from pod logs, so a query for them never matches Alloy's.
        'body="{\\"streams\\":[{\\"stream\\":{\\"namespace\\":\\"loki\\",\\"app\\":\\"loki-checkpoint\\"},\\"values\\":[[\\"${now}000000000\\",\\"$marker\\"]]}]}"',
        // Right after /ready the ingester may still be joining its ring: retry the push.
        `curl -fsS ${curlRetryOptions(PUSH)} -H "Content-Type: application/json" --data "$body" "$LOKI_URL/loki/api/v1/push"`,
        'echo "pushed $marker"',
        'query="{app=\\"loki-checkpoint\\"} |= \\"$marker\\""',
        ...untilDeadline(QUERY_WAIT, {
          // The line is a JSON string in the result's values: ["<timestamp>","<line>"].
          test: `curl -fsS --max-time ${QUERY_WAIT.callMaxSeconds} -G "$LOKI_URL/loki/api/v1/query_range" --data-urlencode "query=$query" --data-urlencode since=15m | grep -qF "\\"$marker\\"]"`,
          waiting: 'waiting for the pushed line to be queryable',
          failure: 'the pushed line $marker did not come back from a LogQL query within 2 minutes',
        }),
        'echo "the pushed line came back from a LogQL query"',
      ].join('\n'),
    });
  }
}

/** The checkpoint, once Loki is ready: the push's retries, two minutes for the line to come back (every 5 s); 10 s a call. */
const PUSH = STARTING_SERVER_CALL;
const QUERY_WAIT: DeadlineWait = { waitSeconds: 120, pauseSeconds: 5, callMaxSeconds: 10 };

function lokiValues(props: LokiProps, lokiResources: Resources, s3: LokiS3Target | undefined): LokiValues {
  const store = s3 ? 's3' : 'filesystem';
  return {
    deploymentMode: 'Monolithic',
    loki: {
      // One tenant: clients send no X-Scope-OrgID (Loki files everything under "fake").
      auth_enabled: false,
      commonConfig: { replication_factor: 1 },
      schemaConfig: {
        configs: [{ from: LOKI_SCHEMA_START, store: 'tsdb', object_store: store, schema: 'v13', index: { prefix: 'loki_index_', period: '24h' } }],
      },
      storage: s3 ? s3Storage(s3) : { type: 'filesystem' },
      limits_config: { retention_period: props.retention },
      // Retention is the compactor's job; without a delete-request store Loki refuses to start with it.
      compactor: { retention_enabled: true, delete_request_store: store },
      // No usage reports to Grafana Labs from a homelab.
      analytics: { reporting_enabled: false },
    },
    singleBinary: {
      replicas: 1,
      resources: lokiResources,
      persistence: props.volumes
        ? {
            enabled: true,
            size: props.storage.volume?.size ?? S3_WAL_VOLUME_SIZE,
            storageClass: props.volumes.storageClass(),
            // The claim outlives the StatefulSet: deleting the app must not delete the logs.
            enableStatefulSetAutoDeletePVC: false,
          }
        : { enabled: false },
      // With S3, Loki's client falls back to the AWS SDK's default credential chain, which
      // reads these (pkg/storage/chunk/client/aws/s3_storage_client.go): no key is in the config.
      ...(s3 ? { extraEnv: S3_CREDENTIAL_KEYS.map((key) => s3.credentials.envVar(key)) } : {}),
    },
    // Monolithic: the scalable targets run inside the single binary.
    read: { replicas: 0 },
    write: { replicas: 0 },
    backend: { replicas: 0 },
    gateway: { enabled: false },
    // The canary is a DaemonSet pushing and querying forever, and the Helm test needs it
    // (and runs grafana/loki-helm-test:latest, an unpinned image). The checkpoint does the
    // same round trip once per sync.
    lokiCanary: { enabled: false },
    test: { enabled: false },
    // No rules are loaded from ConfigMaps: no rules sidecar, and no ClusterRole for it.
    sidecar: { rules: { enabled: false } },
    chunksCache: cacheValues(LOKI_CACHE_MB.chunks),
    resultsCache: cacheValues(LOKI_CACHE_MB.results),
    memcachedExporter: { resources: MEMCACHED_EXPORTER_RESOURCES },
  };
}

/** The S3 store; credentials come from the environment (the declared Secret's keys). */
function s3Storage(s3: LokiS3Target): NonNullable<LokiValues['loki']>['storage'] {
  return {
    type: 's3',
    bucketNames: { chunks: s3.buckets.chunks, ruler: s3.buckets.ruler },
    s3: {
      ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
      region: s3.region,
      s3ForcePathStyle: s3.forcePathStyle,
    },
  };
}

function cacheValues(allocatedMemory: number) {
  return { allocatedMemory, writebackSizeLimit: CACHE_WRITEBACK_LIMIT, resources: memcachedResources(allocatedMemory) };
}

/**
 * What the chart would request itself (memory = round(1.2 x allocatedMemory), Guaranteed
 * memory), plus the CPU limit it leaves out.
 */
export function memcachedResources(allocatedMemory: number): Resources {
  const memory = `${Math.floor((allocatedMemory * 12 + 5) / 10)}Mi`;
  return resources('50m', memory, '500m', memory);
}

export const lokiEntry = defineService({
  name: 'loki',
  settings: { key: 'loki', schema: lokiSettings },
  names: [LOKI_NAMESPACE],
  requires: (settings) => [
    ...(settings.storage.volume ? [{ entry: longhornEntry, path: ['storage', 'volume'], reason: 'a volume needs Longhorn (or use storage.s3)' }] : []),
    ...(settings.storage.objectStore ? [{ entry: seaweedfsEntry, path: ['storage', 'objectStore'], reason: "Loki's buckets are in the object store" }] : []),
  ],
  upstreamTargets: { 'loki-server': SERVER_METRICS },
  // With S3, Longhorn (where enabled) keeps the WAL.
  build: (platform, settings, context) =>
    new Loki(platform, { ...settings, volumes: context.optional(longhornEntry), objectStore: settings.storage.objectStore ? context.required(seaweedfsEntry) : undefined }),
});
