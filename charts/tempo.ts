/**
 * Grafana Tempo, the trace store of the observability layer: the single-binary `tempo` chart
 * (grafana-community/helm-charts 2.2.4, Tempo 2.10.8), one replica, blocks and WAL on a
 * Longhorn volume. Alloy (charts/alloy.ts) receives OTLP from the services and forwards the
 * traces here over OTLP/gRPC; Grafana queries the HTTP API (`queryUrl`).
 */
import type { TempoValues } from '../imports/helm/tempo';
import { defineService } from '../lib/model/catalog';
import { Checkpoint, curlRetryOptions, curlRetrySeconds, type DeadlineWait, READINESS_WAIT_SECONDS, readinessWait, STARTING_SERVER_CALL, untilDeadline, untilDeadlineSeconds } from '../lib/model/checkpoint';
import { bool, expected, resourcesSchema, volumeSize } from '../lib/model/config/primitives';
import { z } from '../lib/model/config/zod';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { restrictedContainerContext, restrictedPodContext } from '../lib/model/pod-security';
import { HomelabService } from '../lib/model/service';
import type { StorageProvider } from '../lib/model/storage';
import { helmRelease } from './helm-release';
import { longhornEntry } from './longhorn';
import { IMAGES } from './versions';

export const TEMPO_NAMESPACE = 'tempo';
/** Tempo's HTTP port: query API (`/api/traces/<id>`), `/ready`, `/metrics` (chart values `tempo.server.http_listen_port`). */
export const TEMPO_HTTP_PORT = 3200;
/** The chart's OTLP receiver ports (values `tempo.receivers.otlp.protocols`). */
export const TEMPO_OTLP_GRPC_PORT = 4317;
export const TEMPO_OTLP_HTTP_PORT = 4318;

/** Labels the chart puts on the StatefulSet's pods (release name = service name): tempo 2.2.4 templates/_helpers.tpl `tempo.selectorLabels`. */
const TEMPO_POD_LABELS = { 'app.kubernetes.io/name': 'tempo', 'app.kubernetes.io/instance': 'tempo' } as const;

/** The user the chart runs Tempo as (values `securityContext`). */
const TEMPO_UID = 10001;

/** How long Tempo keeps traces, as Tempo parses it (a Go duration in whole hours: `72h`, `336h`). */
const retention = z.string(expected('a retention period in hours such as "72h"')).regex(/^[1-9]\d*h$/, expected('a retention period in hours such as "72h"'));

/** `services.tempo`. */
export const tempoSettings = z
  .strictObject({
    enabled: bool.default(false),
    retention: retention.default('72h'),
    /** Blocks and WAL, on Longhorn's default class. */
    volumeSize: volumeSize.default('10Gi'),
    resources: resourcesSchema.default({ requests: { cpu: '100m', memory: '512Mi' }, limits: { cpu: '1', memory: '2Gi' } }),
  })
  .prefault({});

export type TempoSettings = z.output<typeof tempoSettings>;

export type TempoProps = Omit<TempoSettings, 'enabled'> & {
  /** Provides Tempo's volume. */
  readonly volumes: StorageProvider;
};

const SERVER_METRICS = {
  selector: TEMPO_POD_LABELS,
  port: 'prom-metrics',
  source: 'grafana-community/helm-charts tempo-2.2.4 templates/statefulset.yaml, _helpers.tpl',
} as const;

export class Tempo extends HomelabService {
  /** Tempo's HTTP API inside the cluster: Grafana's data source and trace lookups. */
  readonly queryUrl: string;
  /** Where trace forwarders send OTLP/gRPC (`host:port`). */
  readonly otlpGrpcEndpoint: string;

  constructor(scope: Platform, props: TempoProps) {
    super(scope, 'tempo', props, { layer: Layer.OBSERVABILITY, namespace: TEMPO_NAMESPACE, helm: helmRelease('tempo', tempoValues(props)) });
    const host = `tempo.${TEMPO_NAMESPACE}.svc`;
    this.queryUrl = `http://${host}:${TEMPO_HTTP_PORT}`;
    this.otlpGrpcEndpoint = `${host}:${TEMPO_OTLP_GRPC_PORT}`;

    this.requestCapacity('tempo', 1, props.resources.requests);
    // OTLP/gRPC from the forwarder (Alloy), queries from Grafana and the trace checkpoints.
    this.serveClients({ port: TEMPO_OTLP_GRPC_PORT, podSelector: TEMPO_POD_LABELS }, { port: TEMPO_HTTP_PORT, podSelector: TEMPO_POD_LABELS });

    this.exposeMetrics({ name: 'server', kind: 'pod', selector: SERVER_METRICS.selector, port: SERVER_METRICS.port });
    // Tempo docs, "Troubleshoot: max trace limit reached" / "Find and fix discarded spans".
    this.addAlerts({
      alert: 'TempoDiscardingSpans',
      expr: `sum by (reason) (increase(tempo_discarded_spans_total{${SERVICE_LABEL}="${this.serviceName}"}[10m])) > 0`,
      severity: 'warning',
      summary: 'Tempo discards spans ({{ $labels.reason }}); those traces are incomplete',
      description: 'The reason names the limit (rate_limited, trace_too_large, live_traces_exceeded ...): the overrides of the Tempo configuration.',
    });

    new Checkpoint(this, 'checkpoint', {
      description: 'Tempo is ready, takes a span on its own OTLP/HTTP receiver and returns it by its trace ID',
      image: IMAGES.curl,
      env: { TEMPO_URL: this.queryUrl, OTLP_HTTP_URL: `http://${host}:${TEMPO_OTLP_HTTP_PORT}` },
      // Readiness (5 minutes), the span's sending retries and the lookup (3), every call at its
      // limit, after the pod's start.
      scriptSeconds: READINESS_WAIT_SECONDS + TRACE_ROUND_TRIP_SECONDS,
      script: [
        readinessWait('Tempo', 'TEMPO_URL'),
        traceRoundTripScript('Tempo'),
      ].join('\n'),
    });
  }
}

/** The span's send: curl's limit per attempt, its retries and the delay between them; then three minutes for Tempo to return it, asked every 5 s. */
const SPAN_SEND = STARTING_SERVER_CALL;
const TRACE_WAIT: DeadlineWait = { waitSeconds: 180, pauseSeconds: 5, callMaxSeconds: 10 };

/** The longest traceRoundTripScript runs: the send's retries and the lookup, every call at its limit. */
export const TRACE_ROUND_TRIP_SECONDS = curlRetrySeconds(SPAN_SEND) + untilDeadlineSeconds(TRACE_WAIT);

/**
 * Sends one span with a fresh random trace ID as OTLP/JSON to `$OTLP_HTTP_URL/v1/traces`
 * (OTLP specification, "OTLP/HTTP": JSON IDs are hex), then asks Tempo's `$TEMPO_URL/api/traces/<id>`
 * (Tempo HTTP API, "Query": 404 until the trace is found) until the span's unique name is in
 * the answer. @param via who receives the span, for the messages
 */
export function traceRoundTripScript(via: string): string {
  return [
    // 16 and 8 random bytes as lowercase hex: a valid (non-zero, with overwhelming likelihood) trace and span ID.
    "trace_id=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n')",
    "span_id=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \\n')",
    'if ! printf %s "$trace_id" | grep -qE "^[0-9a-f]{32}$" || ! printf %s "$span_id" | grep -qE "^[0-9a-f]{16}$"; then echo "could not make a random trace ID" >&2; exit 1; fi',
    'span="homelab-trace-checkpoint-$trace_id"',
    'now=$(date +%s)',
    'body="{\\"resourceSpans\\":[{\\"resource\\":{\\"attributes\\":[{\\"key\\":\\"service.name\\",\\"value\\":{\\"stringValue\\":\\"homelab-checkpoint\\"}}]},\\"scopeSpans\\":[{\\"scope\\":{\\"name\\":\\"homelab-checkpoint\\"},\\"spans\\":[{\\"traceId\\":\\"$trace_id\\",\\"spanId\\":\\"$span_id\\",\\"name\\":\\"$span\\",\\"kind\\":1,\\"startTimeUnixNano\\":\\"${now}000000000\\",\\"endTimeUnixNano\\":\\"${now}500000000\\"}]}]}]}"',
    // Right after start the receiver may not listen yet: retry the send.
    `if ! curl -fsS ${curlRetryOptions(SPAN_SEND)} -H "Content-Type: application/json" --data "$body" "$OTLP_HTTP_URL/v1/traces"; then echo "${via} refused the span (OTLP/HTTP $OTLP_HTTP_URL/v1/traces)" >&2; exit 1; fi`,
    `echo "sent span $span (trace $trace_id) to ${via} at $OTLP_HTTP_URL"`,
    ...untilDeadline(TRACE_WAIT, {
      test: `curl -fsS --max-time ${TRACE_WAIT.callMaxSeconds} -H "Accept: application/json" "$TEMPO_URL/api/traces/$trace_id" | grep -qF "\\"$span\\""`,
      waiting: 'waiting for Tempo to return trace $trace_id',
      failure: `Tempo has no trace $trace_id 3 minutes after it was sent to ${via}`,
    }),
    `echo "Tempo returned trace $trace_id, sent through ${via}"`,
  ].join('\n');
}

function tempoValues(props: TempoProps): TempoValues {
  return {
    replicas: 1,
    tempo: {
      retention: props.retention,
      resources: props.resources,
      // No usage reports to Grafana Labs from a homelab.
      reportingEnabled: false,
      securityContext: restrictedContainerContext(),
    },
    securityContext: restrictedPodContext(TEMPO_UID, { fsGroup: true }),
    // /var/tempo holds the WAL and the blocks (values tempo.storage.trace: local backend).
    persistence: { enabled: true, size: props.volumeSize, storageClassName: props.volumes.storageClass(), enableStatefulSetAutoDeletePVC: false },
  };
}

export const tempoEntry = defineService({
  name: 'tempo',
  settings: { key: 'tempo', schema: tempoSettings },
  names: [TEMPO_NAMESPACE],
  requires: () => [{ entry: longhornEntry, path: ['enabled'], reason: 'Tempo keeps its traces on a Longhorn volume' }],
  upstreamTargets: { 'tempo-server': SERVER_METRICS },
  build: (platform, settings, context) => new Tempo(platform, { ...settings, volumes: context.required(longhornEntry) }),
});
