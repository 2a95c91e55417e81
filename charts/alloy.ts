/**
 * Grafana Alloy (the `alloy` chart), the log shipper: a DaemonSet whose pod on each node
 * tails the logs of that node's pods through the Kubernetes API and pushes them to Loki,
 * labelled with namespace, pod, container and app.
 *
 * API tailing (`loki.source.kubernetes`) rather than reading /var/log/pods from the host
 * (`loki.source.file` with `alloy.mounts.varlog`): a hostPath volume is forbidden even by
 * the `baseline` Pod Security level, so file tailing would make this namespace `privileged`
 * and run Alloy as root. API tailing needs neither; it costs the kubelets and the API server
 * one log stream per container, which a homelab's few hundred containers do not notice
 * (loki.source.kubernetes reference, Alloy v1.18).
 *
 * With Tempo, Alloy is also the platform's trace receiver: OTLP over gRPC (4317) and HTTP
 * (4318) on its Service, batched and forwarded to Tempo over OTLP/gRPC. Every service that
 * declares trace emissions is pointed here by the tracing pass (lib/model/tracing.ts).
 */
import type { AlloyValues } from '../imports/helm/alloy';
import { z } from '../lib/model/config/zod';
import { defineService } from '../lib/model/catalog';
import { Checkpoint, CHECKPOINT_COMPONENT, CHECKPOINT_CONTAINER, checkpointJobName, type DeadlineWait, untilDeadline, untilDeadlineSeconds } from '../lib/model/checkpoint';
import { bool, resourcesSchema } from '../lib/model/config/primitives';
import { helmRelease } from './helm-release';
import type { Toleration } from '../lib/model/inventory';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import type { NetworkPeer } from '../lib/model/network';
import { Platform } from '../lib/model/platform';
import { restrictedContainerContext, restrictedPodContext } from '../lib/model/pod-security';
import type { OtlpProtocol, TraceReceiver } from '../lib/model/tracing';
import { Resources, resources } from '../lib/model/resources';
import { HomelabService } from '../lib/model/service';
import { IMAGES } from './versions';
import { Loki, lokiEntry } from './loki';
import { Tempo, tempoEntry, TRACE_ROUND_TRIP_SECONDS, traceRoundTripScript } from './tempo';
import { byCodeUnits } from '../lib/util/text-order';

export const ALLOY_NAMESPACE = 'alloy';

/** The config reloader sidecar (the chart sets requests only). */
const CONFIG_RELOADER_RESOURCES = resources('10m', '50Mi', '100m', '64Mi');

/** The `alloy` user the grafana/alloy image creates (it runs as root unless told otherwise). */
const ALLOY_UID = 473;

/** Where Alloy keeps its state (the last-read time per container), on an emptyDir. */
const STORAGE_PATH = '/var/lib/alloy/data';

/** Labels the chart puts on the DaemonSet's pods (release name = service name). */
const ALLOY_POD_LABELS = { 'app.kubernetes.io/name': 'alloy', 'app.kubernetes.io/instance': 'alloy' } as const;

/** The OTLP receiver's ports (the OpenTelemetry defaults), on the pods and the chart's Service `alloy`. */
export const ALLOY_OTLP_PORTS: Readonly<Record<OtlpProtocol, number>> = { grpc: 4317, http: 4318 };

/** `services.alloy`. */
export const alloySettings = z
  .strictObject({
    enabled: bool.default(false),
    /** The Alloy container, per node (its config reloader sidecar is sized by the construct): Alloy runs on every node of the inventory. */
    resources: resourcesSchema.default({ requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '500m', memory: '512Mi' } }),
  })
  .prefault({});

export type AlloySettings = z.output<typeof alloySettings>;

export type AlloyProps = Omit<AlloySettings, 'enabled'> & {
  /** Where the logs go: Alloy pushes to its push API (and syncs after it). */
  readonly loki: Loki;
  /**
   * Where traces go: with it Alloy receives OTLP and forwards the traces to Tempo (and syncs
   * after it). @default none: no OTLP receiver
   */
  readonly tempo?: Tempo;
};

const AGENT_METRICS = {
  selector: ALLOY_POD_LABELS,
  port: 'http-metrics',
  source: 'grafana/alloy helm-chart/1.11.1 templates/containers/_agent.yaml, _helpers.tpl',
} as const;

export class Alloy extends HomelabService implements Partial<TraceReceiver> {
  /** The Alloy configuration the DaemonSet runs. */
  readonly config: string;
  /** With Tempo: where OTLP is received. @default none */
  readonly otlpEndpoints?: Readonly<Record<OtlpProtocol, string>>;
  readonly otlpPorts = ALLOY_OTLP_PORTS;
  readonly traceReceiverPods: NetworkPeer = { namespace: ALLOY_NAMESPACE, podSelector: ALLOY_POD_LABELS };

  constructor(scope: Platform, props: AlloyProps) {
    const alloyResources = props.resources;
    const config = alloyConfig(props.loki.pushUrl, props.tempo?.otlpGrpcEndpoint);
    const values = alloyValues(config, alloyResources, nodeTolerations(scope), props.tempo !== undefined);
    super(scope, 'alloy', props, { layer: Layer.OBSERVABILITY, namespace: ALLOY_NAMESPACE, helm: helmRelease('alloy', values) });
    this.config = config;

    // One pod on every node of the inventory (it tolerates their taints).
    const nodes = Object.keys(scope.config.nodes).length;
    this.requestCapacity('alloy', nodes, alloyResources.requests, { placement: 'every-node' });
    this.requestCapacity('config-reloader', nodes, CONFIG_RELOADER_RESOURCES.requests, { placement: 'every-node' });

    this.exposeMetrics({ name: 'agent', kind: 'pod', selector: AGENT_METRICS.selector, port: AGENT_METRICS.port });
    // loki.write's counters (Alloy v1.18 internal/component/common/loki/client/metrics.go).
    this.addAlerts({
      alert: 'AlloyDroppingLogs',
      expr: `sum by (pod, reason) (increase(loki_write_dropped_entries_total{${SERVICE_LABEL}="${this.serviceName}"}[10m])) > 0`,
      severity: 'warning',
      summary: 'Alloy on {{ $labels.pod }} drops log lines it could not push to Loki ({{ $labels.reason }})',
    });
    if (props.tempo) {
      const host = `alloy.${ALLOY_NAMESPACE}.svc`;
      this.otlpEndpoints = { grpc: `${host}:${ALLOY_OTLP_PORTS.grpc}`, http: `http://${host}:${ALLOY_OTLP_PORTS.http}` };
      // otelcol.exporter.otlp's counter (Alloy v1.18, OpenTelemetry Collector exporterhelper metrics, `otelcol_` prefix).
      this.addAlerts({
        alert: 'AlloyFailingToForwardTraces',
        expr: `sum by (pod) (increase(otelcol_exporter_send_failed_spans_total{${SERVICE_LABEL}="${this.serviceName}"}[10m])) > 0`,
        severity: 'warning',
        summary: 'Alloy on {{ $labels.pod }} could not forward spans to Tempo; those traces are lost',
      });
    }
    this.addCheckpoint(props.loki, props.tempo);
    this.callApiServer(ALLOY_POD_LABELS, 'Alloy discovers the pods (discovery.kubernetes) and tails their logs through the API (loki.source.kubernetes)');
  }

  /**
   * The end-to-end proof of log shipping, here rather than in Loki's checkpoint because Alloy
   * syncs after Loki: the checkpoint prints a unique line, then asks Loki for it by the labels
   * Alloy must have attached (its own namespace, pod, container and app) until it arrives.
   */
  private addCheckpoint(loki: Loki, tempo: Tempo | undefined): void {
    // Alloy's `app` label is the pod's app.kubernetes.io/name, which a checkpoint's pod has of its own.
    const app = this.jobPodLabelsFor(checkpointJobName(this), CHECKPOINT_COMPONENT)['app.kubernetes.io/name'];
    const selector = `{namespace=\\"${ALLOY_NAMESPACE}\\", pod=\\"$HOSTNAME\\", container=\\"${CHECKPOINT_CONTAINER}\\", app=\\"${app}\\"}`;
    const traces = tempo && this.otlpEndpoints && {
      description: "; a span sent to Alloy's OTLP/HTTP receiver is found in Tempo by its trace ID",
      env: { TEMPO_URL: tempo.queryUrl, OTLP_HTTP_URL: this.otlpEndpoints.http },
      script: traceRoundTripScript('Alloy'),
    };
    new Checkpoint(this, 'checkpoint', {
      description: `a line this pod prints reaches Loki through Alloy, labelled with the pod's namespace, pod, container and app${traces?.description ?? ''}`,
      image: IMAGES.curl,
      env: { LOKI_URL: loki.queryUrl, ...traces?.env },
      // The log wait (5 minutes), then the span's sending retries and Tempo's wait, every call at
      // its limit, after the pod's start.
      scriptSeconds: untilDeadlineSeconds(LOG_WAIT) + (traces ? TRACE_ROUND_TRIP_SECONDS : 0),
      script: [
        // The pod's name, set by the container runtime; the query needs it.
        ': "${HOSTNAME:?}"',
        'marker="alloy-checkpoint-$HOSTNAME-$(date +%s)"',
        'echo "$marker"',
        `query="${selector} |= \\"$marker\\""`,
        ...untilDeadline(LOG_WAIT, {
          // The line is a JSON string in the result's values: ["<timestamp>","<line>"].
          test: `curl -fsS --max-time ${LOG_WAIT.callMaxSeconds} -G "$LOKI_URL/loki/api/v1/query_range" --data-urlencode "query=$query" --data-urlencode since=15m | grep -qF "\\"$marker\\"]"`,
          waiting: "waiting for Alloy to ship this pod's line to Loki",
          failure: 'Loki has no line $marker from this pod after 5 minutes: Alloy does not ship its logs, or labels them differently',
        }),
        'echo "Loki returned this pod\'s line with its namespace, pod, container and app labels"',
        ...(traces ? [traces.script] : []),
      ].join('\n'),
    });
  }
}

/** The checkpoint waits five minutes for its own line in Loki, asking every 10 s, 10 s a call. */
const LOG_WAIT: DeadlineWait = { waitSeconds: 300, pauseSeconds: 10, callMaxSeconds: 10 };

/**
 * The Alloy pipeline: discover this node's pods, label their containers, tail their logs
 * through the API server, push to Loki. Component names and arguments: Alloy v1.18.1 reference
 * (discovery.kubernetes, discovery.relabel, loki.source.kubernetes, loki.write; all GA).
 */
export function alloyConfig(pushUrl: string, tempoOtlpGrpcEndpoint?: string): string {
  const logs = `// Generated by homelab-platform (charts/alloy.ts).

// Only the pods of this node: each Alloy of the DaemonSet tails its own node, so every
// container is tailed once. The chart sets HOSTNAME to the node name.
discovery.kubernetes "pods" {
  role = "pod"
  selectors {
    role  = "pod"
    field = "spec.nodeName=" + coalesce(sys.env("HOSTNAME"), constants.hostname)
  }
}

discovery.relabel "pods" {
  targets = discovery.kubernetes.pods.targets

  rule {
    source_labels = ["__meta_kubernetes_namespace"]
    target_label  = "namespace"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_name"]
    target_label  = "pod"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_container_name"]
    target_label  = "container"
  }
  // app: the pod's app.kubernetes.io/name label, else its app label.
  rule {
    source_labels = ["__meta_kubernetes_pod_label_app"]
    target_label  = "app"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_label_app_kubernetes_io_name"]
    regex         = "(.+)"
    target_label  = "app"
  }
  // job: <namespace>/<app>, else <namespace>/<container>, the convention log dashboards select by.
  rule {
    source_labels = ["namespace", "container"]
    separator     = "/"
    target_label  = "job"
  }
  rule {
    source_labels = ["namespace", "app"]
    separator     = "/"
    regex         = "(.+/.+)"
    target_label  = "job"
  }
}

loki.source.kubernetes "pods" {
  targets    = discovery.relabel.pods.output
  forward_to = [loki.write.loki.receiver]
}

loki.write "loki" {
  endpoint {
    url = "${pushUrl}"
  }
}
`;
  return tempoOtlpGrpcEndpoint ? `${logs}${tracesConfig(tempoOtlpGrpcEndpoint)}` : logs;
}

/**
 * Traces: OTLP in (gRPC and HTTP on every address of the pod), batched, OTLP/gRPC out to
 * Tempo in plain text inside the cluster. Components: Alloy v1.18.1 reference
 * (otelcol.receiver.otlp, otelcol.processor.batch, otelcol.exporter.otlp; all GA).
 */
function tracesConfig(tempoOtlpGrpcEndpoint: string): string {
  return `
otelcol.receiver.otlp "default" {
  grpc {
    endpoint = "0.0.0.0:${ALLOY_OTLP_PORTS.grpc}"
  }
  http {
    endpoint = "0.0.0.0:${ALLOY_OTLP_PORTS.http}"
  }
  output {
    traces = [otelcol.processor.batch.default.input]
  }
}

otelcol.processor.batch "default" {
  output {
    traces = [otelcol.exporter.otlp.tempo.input]
  }
}

otelcol.exporter.otlp "tempo" {
  client {
    endpoint = "${tempoOtlpGrpcEndpoint}"
    tls {
      insecure = true
    }
  }
}
`;
}

/** @param receivesTraces whether the pods and the Service open the OTLP ports */
function alloyValues(config: string, alloyResources: Resources, tolerations: readonly Toleration[], receivesTraces: boolean): AlloyValues {
  return {
    // The PodLogs CRD (monitoring.grafana.com) serves loki.source.podlogs, which we do not use.
    crds: { create: false },
    controller: {
      type: 'daemonset',
      tolerations: [...tolerations],
      volumes: { extra: [{ name: 'data', emptyDir: { sizeLimit: '1Gi' } }] },
    },
    alloy: {
      configMap: { create: true, content: config },
      storagePath: STORAGE_PATH,
      mounts: { varlog: false, dockercontainers: false, extra: [{ name: 'data', mountPath: STORAGE_PATH }] },
      // No usage reports to Grafana Labs from a homelab.
      enableReporting: false,
      resources: alloyResources,
      ...(receivesTraces && {
        extraPorts: [
          { name: 'otlp-grpc', port: ALLOY_OTLP_PORTS.grpc, targetPort: ALLOY_OTLP_PORTS.grpc, protocol: 'TCP' },
          { name: 'otlp-http', port: ALLOY_OTLP_PORTS.http, targetPort: ALLOY_OTLP_PORTS.http, protocol: 'TCP' },
        ],
      }),
      securityContext: restrictedContainerContext(),
    },
    global: {
      podSecurityContext: restrictedPodContext(ALLOY_UID, { fsGroup: true }),
    },
    configReloader: { resources: CONFIG_RELOADER_RESOURCES },
    // Exactly what discovery.kubernetes (pods) and loki.source.kubernetes (pods/log) read; the
    // chart's defaults would let Alloy read every Secret and ConfigMap of the cluster.
    // Namespaces are cluster-scoped, hence clusterRules (an empty list would break the template).
    rbac: {
      rules: [{ apiGroups: [''], resources: ['pods', 'pods/log'], verbs: ['get', 'list', 'watch'] }],
      clusterRules: [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] }],
    },
  };
}

/** Tolerations for every taint of the inventory: logs are shipped from every node. */
function nodeTolerations(scope: Platform): Toleration[] {
  const tolerations = new Map<string, Toleration>();
  for (const node of Object.values(scope.config.nodes)) {
    for (const taint of node.taints) {
      const toleration: Toleration = { key: taint.key, operator: 'Exists', effect: taint.effect };
      tolerations.set(JSON.stringify(toleration), toleration);
    }
  }
  return [...tolerations.values()].sort((a, b) => byCodeUnits(a.key, b.key) || byCodeUnits(a.effect, b.effect));
}

export const alloyEntry = defineService({
  name: 'alloy',
  settings: { key: 'alloy', schema: alloySettings },
  names: [ALLOY_NAMESPACE],
  requires: () => [{ entry: lokiEntry, path: ['enabled'], reason: 'Alloy ships the logs to Loki' }],
  upstreamTargets: { 'alloy-agent': AGENT_METRICS },
  build: (platform, settings, context) => new Alloy(platform, { ...settings, loki: context.required(lokiEntry), tempo: context.optional(tempoEntry) }),
});
