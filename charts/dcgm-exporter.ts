/**
 * GPU telemetry: NVIDIA's DCGM exporter on every GPU node (its chart), scraped by the
 * monitoring stack, with a GPU dashboard and alerts for XID errors, temperature, memory near
 * full and a GPU that stopped reporting (docs/adr/0029). It reads the GPUs through the NVIDIA
 * runtime, so it takes the device plugin as a prop: that is its dependency, and it gives the
 * RuntimeClass, the GPU nodes and whether their GPUs are time-sliced.
 */
import { z } from '../lib/model/config/zod';
import type { DcgmExporterValues } from '../imports/helm/dcgm-exporter';
import { defineService } from '../lib/model/catalog';
import { Checkpoint, retrySeconds } from '../lib/model/checkpoint';
import { bool, intBetween } from '../lib/model/config/primitives';
import { GpuProvider } from '../lib/model/gpu';
import { gpuPlacement, Inventory } from '../lib/model/inventory';
import { Layer } from '../lib/model/layers';
import { type AlertRule, SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { resources } from '../lib/model/resources';
import { HomelabService } from '../lib/model/service';
import { helmRelease } from './helm-release';
import { nvidiaDevicePluginEntry } from './nvidia-device-plugin';
import { IMAGES } from './versions';

/** `services.dcgmExporter`. */
export const dcgmExporterSettings = z
  .strictObject({
    /** @default on wherever services.nvidiaDevicePlugin is */
    enabled: bool.optional(),
    /** GPU temperature (degrees Celsius) that alerts after 10 minutes. */
    temperatureCelsius: intBetween(50, 110).default(85),
    /** Share of a GPU's memory in use (percent) that alerts after 15 minutes. */
    memoryUsedPercent: intBetween(50, 100).default(95),
  })
  .prefault({});

export type DcgmExporterSettings = z.output<typeof dcgmExporterSettings>;

export type DcgmExporterProps = Omit<DcgmExporterSettings, 'enabled'> & {
  /** The GPUs to watch: RuntimeClass, GPU nodes, time-slicing. */
  readonly devicePlugin: GpuProvider;
};

export const DCGM_EXPORTER_NAMESPACE = 'dcgm-exporter';
/**
 * The chart's selector labels for release `dcgm-exporter` (dcgm-exporter 4.8.2
 * templates/_helpers.tpl `dcgm-exporter.selectorLabels`), on its Service and pods.
 */
export const DCGM_EXPORTER_LABELS = {
  'app.kubernetes.io/name': 'dcgm-exporter',
  'app.kubernetes.io/instance': 'dcgm-exporter',
  'app.kubernetes.io/component': 'dcgm-exporter',
} as const;
/** The chart's Service port `metrics` (values.yaml service.port), which is also the container's. */
const METRICS_PORT = 9400;
/** The chart's defaults (values.yaml), stated for the capacity check. */
const EXPORTER_RESOURCES = resources('100m', '128Mi', '200m', '512Mi');
/** The chart's toleration (values.yaml): Helm replaces lists, so it is kept next to the GPU nodes' taints. */
const CHART_TOLERATIONS = [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }];
/** The Prometheus data source of the monitoring stack (kube-prometheus-stack 88.5.3 values.yaml grafana.sidecar.datasources.uid). */
const PROMETHEUS_DATASOURCE = { type: 'prometheus', uid: 'prometheus' } as const;

/**
 * The series this service's alerts and dashboard read, from the chart's default counters
 * (dcgm-exporter 4.8.2 templates/metrics-configmap.yaml): per GPU, labelled `gpu` (index),
 * `UUID`, `modelName` and `Hostname` (the node: the chart sets NODE_NAME).
 */
const DCGM = {
  utilization: 'DCGM_FI_DEV_GPU_UTIL',
  temperature: 'DCGM_FI_DEV_GPU_TEMP',
  power: 'DCGM_FI_DEV_POWER_USAGE',
  memoryUsed: 'DCGM_FI_DEV_FB_USED',
  memoryFree: 'DCGM_FI_DEV_FB_FREE',
  /** The last XID error of the GPU (a gauge: it keeps its value until the driver resets the GPU). */
  xid: 'DCGM_FI_DEV_XID_ERRORS',
} as const;

/** How many times the checkpoint asks the exporter, 10 s apart: five minutes for its first scrape of the GPUs. */
const EXPORTER_CHECKS = 30;
const EXPORTER_PAUSE_SECONDS = 10;
/** curl's limit for one scrape of the exporter. */
const EXPORTER_CALL_MAX_SECONDS = 10;

export class DcgmExporter extends HomelabService {
  constructor(scope: Platform, props: DcgmExporterProps) {
    const placement = gpuPlacement(scope.config.nodes);
    if (!placement) throw new Error('dcgm-exporter: the node inventory has no GPU nodes');
    const { devicePlugin } = props;
    super(scope, 'dcgm-exporter', props, {
      layer: Layer.AI,
      namespace: DCGM_EXPORTER_NAMESPACE,
      podSecurity: { level: 'privileged', reason: 'the exporter runs as root with CAP_SYS_ADMIN for the profiling metrics (the chart\'s securityContext)' },
      helm: helmRelease('dcgmExporter', exporterValues(devicePlugin)),
    });
    this.requestCapacity('exporter', placement.nodes.length, EXPORTER_RESOURCES.requests, { placement: 'gpu-nodes' });
    this.exposeMetrics({
      name: 'exporter',
      kind: 'service',
      selector: DCGM_EXPORTER_LABELS,
      port: 'metrics',
      podPort: METRICS_PORT,
      podSelector: DCGM_EXPORTER_LABELS,
    });
    this.addAlerts(...gpuAlerts(`${SERVICE_LABEL}="${this.serviceName}"`, props, placement.nodes, scope.config.nodes));
    this.addDashboard({ name: 'nvidia-gpus', json: gpuDashboard(`${SERVICE_LABEL}="${this.serviceName}"`, devicePlugin.gpuReplicas) });
    this.addCheckpoint();
  }

  /** The exporter's Service answers with per-GPU series: DCGM reached a GPU through the runtime. */
  private addCheckpoint(): void {
    const url = `http://dcgm-exporter.${DCGM_EXPORTER_NAMESPACE}.svc:${METRICS_PORT}/metrics`;
    new Checkpoint(this, 'checkpoint', {
      description: 'the DCGM exporter reports the temperature of a GPU',
      image: IMAGES.curl,
      scriptSeconds: retrySeconds(EXPORTER_CHECKS, EXPORTER_CALL_MAX_SECONDS, EXPORTER_PAUSE_SECONDS),
      // Five minutes, 10 s apart; the tests ask fewer times.
      env: { METRICS_URL: url, CHECKS: String(EXPORTER_CHECKS) },
      script: [
        'try=0',
        'while [ "$try" -lt "${CHECKS:?unset (the Job sets it)}" ]; do',
        '  try=$((try + 1))',
        `  if gpus=$(curl -fsS --max-time ${EXPORTER_CALL_MAX_SECONDS} "$METRICS_URL" | grep -c '^${DCGM.temperature}{'); then`,
        '    echo "the exporter reports $gpus GPU(s)"',
        '    exit 0',
        '  fi',
        `  sleep ${EXPORTER_PAUSE_SECONDS}`,
        'done',
        `echo "no ${DCGM.temperature} series at $METRICS_URL after 5 minutes: see the dcgm-exporter pods (the nvidia runtime, the driver)" >&2`,
        'exit 1',
      ].join('\n'),
    });
  }
}

function exporterValues(devicePlugin: GpuProvider): DcgmExporterValues {
  const { affinity, tolerations } = devicePlugin.gpuScheduling;
  return {
    // NVML through the NVIDIA runtime, on the GPU nodes only.
    runtimeClassName: devicePlugin.runtimeClassName,
    affinity: { ...affinity },
    tolerations: [...CHART_TOLERATIONS, ...(tolerations ?? []).map((t) => ({ ...t }))],
    resources: EXPORTER_RESOURCES,
    // Ours comes from exposeMetrics (with the service label the alerts select by).
    serviceMonitor: { enabled: false },
  };
}

/**
 * The alerts NVIDIA's guides name for GPU health: XID errors, temperature, memory near full,
 * and a GPU node whose GPUs stopped reporting (the exporter's own target-down alert is the
 * monitoring pass's).
 */
function gpuAlerts(own: string, props: DcgmExporterProps, nodes: readonly string[], inventory: Inventory): AlertRule[] {
  const used = `${DCGM.memoryUsed}{${own}}`;
  return [
    {
      alert: 'GpuXidError',
      // The exporter keeps a GPU's last XID until the GPU is reset: alert on a new one (for 15
      // minutes), with its number as the value, not for as long as the last one is remembered.
      expr:
        `(max by (Hostname, gpu, modelName) (${DCGM.xid}{${own}}) > 0) and on (Hostname, gpu, modelName) ` +
        `(max by (Hostname, gpu, modelName) (changes(${DCGM.xid}{${own}}[15m])) > 0)`,
      for: '0m',
      severity: 'warning',
      summary: 'GPU {{ $labels.gpu }} ({{ $labels.modelName }}) on {{ $labels.Hostname }} reported XID error {{ $value }}',
      description:
        'XID 13, 31 and 43 are usually faults of the application on the GPU; 48, 63, 64, 74, 79, 94 and 95 are memory, NVLink or bus errors that need a GPU reset or a reboot (NVIDIA XID catalogue).',
    },
    {
      alert: 'GpuTemperatureHigh',
      expr: `max by (Hostname, gpu, modelName) (${DCGM.temperature}{${own}}) > ${props.temperatureCelsius}`,
      for: '10m',
      severity: 'warning',
      summary: 'GPU {{ $labels.gpu }} on {{ $labels.Hostname }} is at {{ $value }} degrees Celsius',
      description: 'The GPU throttles and may shut down: check the fans, the airflow and the load.',
    },
    {
      alert: 'GpuMemoryNearlyFull',
      expr: `max by (Hostname, gpu, modelName) (${used} / (${used} + ${DCGM.memoryFree}{${own}})) * 100 > ${props.memoryUsedPercent}`,
      for: '15m',
      severity: 'warning',
      summary: 'GPU {{ $labels.gpu }} on {{ $labels.Hostname }} has {{ $value | humanize }}% of its memory in use',
      description: 'Loading another model or a larger batch will fail with out-of-memory errors (time-sliced GPUs share their memory).',
    },
    ...nodes.map(
      (node): AlertRule => ({
        alert: 'GpuUnavailable',
        expr: `(count(${DCGM.temperature}{${own}, Hostname="${node}"}) or vector(0)) < ${inventory[node].gpus}`,
        for: '10m',
        severity: 'critical',
        summary: `GPU node ${node} reports {{ $value }} of its ${inventory[node].gpus} GPU(s)`,
        description: 'A GPU fell off the bus or the driver lost it (see the XID alerts and `nvidia-smi` on the node), or the exporter is not running there.',
      }),
    ),
  ];
}

/**
 * One row per measure, one series per GPU, each named with its node, index and model — and, where
 * the device plugin time-slices the GPUs, as time-sliced, with how many pods share each: DCGM
 * sees the physical GPU, so its load and memory are those of every pod on it together.
 */
export function gpuDashboard(own: string, gpuReplicas: number): string {
  const sharing = gpuReplicas > 1 ? `time-sliced x${gpuReplicas}` : 'exclusive';
  const legend = `{{Hostname}} GPU {{gpu}} {{modelName}} (${sharing})`;
  const note =
    gpuReplicas > 1
      ? `**Time-sliced GPUs**: the device plugin advertises every GPU as ${gpuReplicas} \`nvidia.com/gpu\`, so up to ${gpuReplicas} pods share each one, without memory or fault isolation. The series below are the physical GPUs: their load and memory are those of all sharing pods together.`
      : '**Exclusive GPUs**: each GPU belongs to one pod at a time.';
  const panel = (id: number, title: string, expr: string, unit: string, y: number) => ({
    id,
    type: 'timeseries',
    title,
    datasource: PROMETHEUS_DATASOURCE,
    gridPos: { x: 0, y, w: 24, h: 8 },
    fieldConfig: { defaults: { unit }, overrides: [] },
    options: { legend: { displayMode: 'table', placement: 'right', showLegend: true }, tooltip: { mode: 'multi', sort: 'none' } },
    targets: [{ refId: 'A', datasource: PROMETHEUS_DATASOURCE, expr, legendFormat: legend }],
  });
  const used = `${DCGM.memoryUsed}{${own}}`;
  return JSON.stringify({
    uid: 'homelab-nvidia-gpus',
    title: `NVIDIA GPUs (${sharing})`,
    tags: ['homelab', 'gpu', 'dcgm'],
    timezone: 'browser',
    schemaVersion: 39,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    panels: [
      { id: 1, type: 'text', title: 'GPU sharing', gridPos: { x: 0, y: 0, w: 24, h: 3 }, options: { mode: 'markdown', content: note } },
      panel(2, 'Utilization', `${DCGM.utilization}{${own}}`, 'percent', 3),
      panel(3, 'Memory in use', `${used} / (${used} + ${DCGM.memoryFree}{${own}}) * 100`, 'percent', 11),
      panel(4, 'Temperature', `${DCGM.temperature}{${own}}`, 'celsius', 19),
      panel(5, 'Power draw', `${DCGM.power}{${own}}`, 'watt', 27),
      panel(6, 'Last XID error (0: none)', `${DCGM.xid}{${own}}`, 'none', 35),
    ],
  });
}

export const dcgmExporterEntry = defineService({
  name: 'dcgm-exporter',
  settings: { key: 'dcgmExporter', schema: dcgmExporterSettings },
  names: [DCGM_EXPORTER_NAMESPACE],
  enabled: (settings, env) => settings.enabled ?? env.isEnabled(nvidiaDevicePluginEntry),
  requires: (settings) =>
    settings.enabled ? [{ entry: nvidiaDevicePluginEntry, path: ['enabled'], reason: 'the exporter watches the GPUs it advertises' }] : [],
  upstreamTargets: {
    'dcgm-exporter-exporter': {
      selector: DCGM_EXPORTER_LABELS,
      port: 'metrics',
      source: 'NVIDIA/dcgm-exporter 4.8.2 deployment/templates/service.yaml, _helpers.tpl',
    },
  },
  build: (platform, settings, context) => new DcgmExporter(platform, { ...settings, devicePlugin: context.required(nvidiaDevicePluginEntry) }),
});
