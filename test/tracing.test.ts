/**
 * Traces (docs/adr/0030): Tempo, Alloy's OTLP receiver, the trace emitters wired by the tracing
 * pass with their NetworkPolicies, Grafana's linked data sources, and the checkpoints that find
 * a span by its trace ID — run against fake answers.
 */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ALLOY_OTLP_PORTS } from '../charts/alloy';
import { TEMPO_HTTP_PORT, TEMPO_OTLP_GRPC_PORT } from '../charts/tempo';
import type { SynthesizedEnvironment } from '../lib/output/synthesize';
import { deadlineLoopsWorstCase, Manifest, manifestAt, manifestsOf, platformObject, runCheckpointRecordingCurl, toYamlText, synthesizeEnvironment } from './support';
import { CHECK_START_SECONDS } from '../lib/model/checkpoint';

/** The frozen example with Tempo switched on (with Alloy and Loki as it has them) or off. */
function prod(options: { tempo: boolean; alloy?: boolean }): SynthesizedEnvironment {
  const config = platformObject();
  config.services.tempo = { enabled: options.tempo };
  if (options.alloy === false) config.services.alloy = { enabled: false };
  return synthesizeEnvironment(toYamlText(config), 'prod').env;
}

function manifests(env: SynthesizedEnvironment): Map<string, Manifest> {
  return new Map(manifestsOf(env).map(({ path, manifest }) => [path, manifest]));
}

function find(env: SynthesizedEnvironment, path: string): Manifest {
  return manifestAt(env, path);
}

/** The values of an Application's Helm source. */
function helmValues(env: SynthesizedEnvironment, service: string): Record<string, any> {
  const app = find(env, `apps/application-${service}.yaml`);
  const sources = app.spec.sources ?? [app.spec.source];
  return sources.find((source: any) => source.helm).helm.valuesObject;
}

const withTempo = prod({ tempo: true });
const withoutTempo = prod({ tempo: false });

describe('the trace receiver and store', () => {
  it('runs Tempo on a Longhorn volume, non-root, with its OTLP receiver', () => {
    const values = helmValues(withTempo, 'tempo');
    expect(values.persistence).toMatchObject({ enabled: true, storageClassName: expect.any(String) });
    expect(values.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(values.tempo.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(values.tempo.reportingEnabled).toBe(false);
  });

  it('has Alloy receive OTLP over gRPC and HTTP and forward the traces to Tempo over gRPC', () => {
    const values = helmValues(withTempo, 'alloy');
    const config: string = values.alloy.configMap.content;
    expect(config).toContain(`endpoint = "0.0.0.0:${ALLOY_OTLP_PORTS.grpc}"`);
    expect(config).toContain(`endpoint = "0.0.0.0:${ALLOY_OTLP_PORTS.http}"`);
    expect(config).toContain('traces = [otelcol.processor.batch.default.input]');
    expect(config).toContain('traces = [otelcol.exporter.otlp.tempo.input]');
    expect(config).toContain(`endpoint = "tempo.tempo.svc:${TEMPO_OTLP_GRPC_PORT}"`);
    expect(values.alloy.extraPorts.map((p: any) => [p.port, p.targetPort])).toEqual([
      [ALLOY_OTLP_PORTS.grpc, ALLOY_OTLP_PORTS.grpc],
      [ALLOY_OTLP_PORTS.http, ALLOY_OTLP_PORTS.http],
    ]);
  });

  it('has no OTLP receiver, emitter configuration or trace policy without Tempo', () => {
    const values = helmValues(withoutTempo, 'alloy');
    expect(values.alloy.configMap.content).not.toContain('otelcol');
    expect(values.alloy.extraPorts).toBeUndefined();
    expect(helmValues(withoutTempo, 'traefik').tracing).toBeUndefined();
    expect(helmValues(withoutTempo, 'argocd').configs.params['otlp.address']).toBeUndefined();
    expect([...manifests(withoutTempo).keys()].filter((path) => /traces|tempo/.test(path))).toEqual([]);
  });

  it('configures no emitter when Tempo has no Alloy in front of it', () => {
    const env = prod({ tempo: true, alloy: false });
    expect(helmValues(env, 'traefik').tracing).toBeUndefined();
    expect(helmValues(env, 'argocd').configs.params['otlp.address']).toBeUndefined();
    expect([...manifests(env).keys()].filter((path) => path.includes('traces'))).toEqual([]);
  });
});

describe('trace emitters', () => {
  const grpc = `alloy.alloy.svc:${ALLOY_OTLP_PORTS.grpc}`;

  it("point Traefik's and Argo CD's OTLP exporters at Alloy, the bootstrap values of Argo CD too", () => {
    expect(helmValues(withTempo, 'traefik').tracing).toEqual({ otlp: { enabled: true, grpc: { enabled: true, endpoint: grpc, insecure: true } } });
    expect(helmValues(withTempo, 'argocd').configs.params['otlp.address']).toBe(grpc);
    const bootstrap = parse(withTempo.files.get('bootstrap/argo-cd.values.yaml')!);
    expect(bootstrap.configs.params['otlp.address']).toBe(grpc);
  });

  it("point n8n's OTLP/HTTP exporter and Triton's OpenTelemetry trace mode at Alloy's HTTP receiver", () => {
    const http = `http://alloy.alloy.svc:${ALLOY_OTLP_PORTS.http}`;
    const n8n = find(withTempo, 'n8n/deployment-n8n.yaml').spec.template.spec.containers[0];
    const env = Object.fromEntries(n8n.env.map((e: any) => [e.name, e.value]));
    expect(env).toMatchObject({ N8N_OTEL_ENABLED: 'true', N8N_OTEL_EXPORTER_OTLP_ENDPOINT: http });
    const triton: string[] = find(withTempo, 'triton/deployment-triton.yaml').spec.template.spec.containers[0].args;
    const traceConfig = triton.flatMap((arg, i) => (triton[i - 1] === '--trace-config' ? [arg] : []));
    expect(traceConfig).toEqual(expect.arrayContaining(['mode=opentelemetry', `opentelemetry,url=${http}/v1/traces`]));
    const without = find(withoutTempo, 'triton/deployment-triton.yaml').spec.template.spec.containers[0].args;
    expect(without).not.toContain('--trace-config');
    const plain = find(withoutTempo, 'n8n/deployment-n8n.yaml').spec.template.spec.containers[0].env.map((e: any) => e.name);
    expect(plain.filter((name: string) => name.startsWith('N8N_OTEL'))).toEqual([]);
  });

  it('get an egress rule to the receiving pods and a matching ingress rule in the receiver namespace, on the port of their protocol', () => {
    const all = manifests(withTempo);
    const egress = [...all].filter(([path]) => /\/networkpolicy-egress-traces-/.test(path));
    // Argo CD and Traefik speak OTLP/gRPC, n8n and Triton OTLP/HTTP.
    const protocolOf: Record<string, keyof typeof ALLOY_OTLP_PORTS> = { argocd: 'grpc', traefik: 'grpc', n8n: 'http', triton: 'http' };
    expect(egress.map(([path]) => path.split('/')[0]).sort()).toEqual(Object.keys(protocolOf).sort());
    for (const [path, policy] of egress) {
      const namespace = path.split('/')[0];
      const [rule] = policy.spec.egress;
      expect(rule.to).toEqual([
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'alloy' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'alloy', 'app.kubernetes.io/instance': 'alloy' } } },
      ]);
      expect(rule.ports).toEqual([{ port: ALLOY_OTLP_PORTS[protocolOf[namespace]], protocol: 'TCP' }]);
      // The receiving side admits exactly those pods on that port.
      const ingress = [...all].filter(([p, m]) => p.startsWith('alloy/networkpolicy-allow-traces-') && m.spec.ingress[0].from[0].namespaceSelector.matchLabels['kubernetes.io/metadata.name'] === namespace);
      expect(ingress).toHaveLength(1);
      const [, allow] = ingress[0];
      expect(allow.spec.ingress[0].from[0].podSelector ?? {}).toEqual(policy.spec.podSelector);
      expect(allow.spec.ingress[0].ports).toEqual(rule.ports);
      expect(allow.spec.podSelector).toEqual({ matchLabels: { 'app.kubernetes.io/name': 'alloy', 'app.kubernetes.io/instance': 'alloy' } });
    }
  });

  it('let Alloy reach Tempo on its OTLP and query ports', () => {
    const all = manifests(withTempo);
    for (const port of [TEMPO_OTLP_GRPC_PORT, TEMPO_HTTP_PORT]) {
      expect(all.get(`alloy/networkpolicy-egress-tempo-${port}.yaml`)).toBeDefined();
      expect(all.get(`tempo/networkpolicy-allow-alloy-${port}.yaml`)).toBeDefined();
    }
  });
});

describe("Grafana's data sources", () => {
  const grafana = () => helmValues(withTempo, 'monitoring').grafana;

  it('link traces to logs and metrics, logs to traces and exemplars to traces', () => {
    const sources: any[] = grafana().additionalDataSources;
    const tempo = sources.find((s) => s.type === 'tempo');
    const loki = sources.find((s) => s.type === 'loki');
    expect(tempo).toMatchObject({ uid: 'tempo', url: `http://tempo.tempo.svc:${TEMPO_HTTP_PORT}` });
    expect(tempo.jsonData.tracesToLogsV2).toMatchObject({ datasourceUid: loki.uid, customQuery: true });
    // Provisioning expands $VAR: Grafana's own variables are escaped.
    expect(tempo.jsonData.tracesToLogsV2.query).toContain('$${__trace.traceId}');
    expect(tempo.jsonData.tracesToMetrics.datasourceUid).toBe('prometheus');
    const [field] = loki.jsonData.derivedFields;
    expect(field).toMatchObject({ datasourceUid: tempo.uid, url: '$${__value.raw}' });
    const matcher = new RegExp(field.matcherRegex);
    for (const line of ['traceID=4bf92f3577b34da6a3ce929d0e0e4736', 'trace_id=4bf92f3577b34da6a3ce929d0e0e4736', '{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736"}']) {
      expect(matcher.exec(line)?.[1]).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    }
    expect(grafana().sidecar.datasources.exemplarTraceIdDestinations).toEqual({ datasourceUid: tempo.uid, traceIdLabelName: 'trace_id' });
  });

  it('are checked by the monitoring checkpoint', () => {
    const job = find(withTempo, 'monitoring/job-monitoring-checkpoint.yaml');
    const env = job.spec.template.spec.containers[0].env.find((e: any) => e.name === 'DATASOURCES');
    expect(env.value.split(' ')).toContain('Tempo');
  });
});

const runCheckpoint = (job: Manifest, fakeCurl: string) => runCheckpointRecordingCurl(job, fakeCurl, { HOSTNAME: 'checkpoint-x7k2p' });

/**
 * A fake Loki, OTLP receiver and Tempo: the receiver keeps the last body; Tempo answers a
 * lookup only for the trace ID that body carried (404, curl's exit 22, otherwise), with the
 * span's name; Loki returns the line its `|=` filter names.
 */
const FAKE_BACKENDS = String.raw`url=""; data=""; prev=""; query=""
for a in "$@"; do
  [ "$prev" = "--data" ] && data="$a"
  case "$a" in http*) url="$a";; query=*) query="${'$'}{a#query=}";; esac
  prev="$a"
done
case "$url" in
  */ready) echo ready;;
  */v1/traces) printf '%s' "$data" > "$FAKE_BIN/span"; echo '{"partialSuccess":{}}';;
  */api/traces/*)
    id="${'$'}{url##*/}"
    grep -q "\"traceId\":\"$id\"" "$FAKE_BIN/span" 2>/dev/null || exit 22
    name=$(sed -n 's/.*"name":"\(homelab-trace-checkpoint-[0-9a-f]*\)".*/\1/p' "$FAKE_BIN/span")
    printf '{"batches":[{"scopeSpans":[{"spans":[{"name":"%s"}]}]}]}' "$name";;
  */loki/api/v1/query_range)
    line=$(printf '%s' "$query" | sed -n 's/.*|= "\(.*\)"$/\1/p')
    printf '{"status":"success","data":{"result":[{"stream":{},"values":[["1700000000000000000","%s"]]}]}}' "$line";;
  *) exit 7;;
esac`;

/** The same backends, but Tempo never has the trace. */
const TEMPO_WITHOUT_TRACE = FAKE_BACKENDS.replace('grep -q "\\"traceId\\":\\"$id\\"" "$FAKE_BIN/span" 2>/dev/null || exit 22', 'exit 22');
/** The same backends, but the OTLP receiver refuses spans. */
const RECEIVER_REFUSING = `case "$*" in */v1/traces*) exit 22;; esac\n${FAKE_BACKENDS}`;

describe.each([
  { name: 'Tempo', path: 'tempo/job-tempo-checkpoint.yaml', receiver: 'http://tempo.tempo.svc:4318' },
  { name: 'Alloy', path: 'alloy/job-alloy-checkpoint.yaml', receiver: `http://alloy.alloy.svc:${ALLOY_OTLP_PORTS.http}` },
])('the $name checkpoint', ({ name, path, receiver }) => {
  const job = find(withTempo, path);

  it(`sends one span as OTLP/JSON to ${name} and finds it in Tempo by its random trace ID`, () => {
    expect(TEMPO_WITHOUT_TRACE).not.toBe(FAKE_BACKENDS);
    const run = runCheckpoint(job, FAKE_BACKENDS);
    expect(run.status, run.output).toBe(0);
    const send = run.calls.find((call) => call.includes(`${receiver}/v1/traces`))!;
    expect(send).toContain('Content-Type: application/json');
    const body = JSON.parse(send[send.indexOf('--data') + 1]);
    const [span] = body.resourceSpans[0].scopeSpans[0].spans;
    expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(span.name).toBe(`homelab-trace-checkpoint-${span.traceId}`);
    expect(BigInt(span.endTimeUnixNano)).toBeGreaterThan(BigInt(span.startTimeUnixNano));
    const lookup = run.calls.find((call) => call.some((arg) => arg.includes('/api/traces/')))!;
    expect(lookup).toContain(`http://tempo.tempo.svc:${TEMPO_HTTP_PORT}/api/traces/${span.traceId}`);
    expect(run.output).toContain(`Tempo returned trace ${span.traceId}, sent through ${name}`);
  });

  it('uses a new trace ID on every run', () => {
    const ids = [runCheckpoint(job, FAKE_BACKENDS), runCheckpoint(job, FAKE_BACKENDS)].map((run) => /Tempo returned trace ([0-9a-f]{32})/.exec(run.output)?.[1]);
    expect(ids[0]).toBeDefined();
    expect(ids[0]).not.toBe(ids[1]);
  });

  it('keeps asking, then fails, while Tempo does not have the trace', () => {
    const run = runCheckpoint(job, TEMPO_WITHOUT_TRACE);
    expect(run.status).not.toBe(0);
    expect(run.output).toMatch(new RegExp(`Tempo has no trace [0-9a-f]{32} 3 minutes after it was sent to ${name}`));
    expect(run.calls.filter((call) => call.some((arg) => arg.includes('/api/traces/'))).length).toBeGreaterThan(1);
  });

  it('fails without asking Tempo when the receiver refuses the span', () => {
    const run = runCheckpoint(job, RECEIVER_REFUSING);
    expect(run.status).not.toBe(0);
    expect(run.output).toContain(`${name} refused the span`);
    expect(run.calls.some((call) => call.some((arg) => arg.includes('/api/traces/')))).toBe(false);
  });
});

describe('the Tempo checkpoint', () => {
  it('fails when Tempo never becomes ready', () => {
    const run = runCheckpoint(find(withTempo, 'tempo/job-tempo-checkpoint.yaml'), 'exit 22');
    expect(run.status).not.toBe(0);
    expect(run.output).toContain('Tempo did not become ready within 5 minutes');
  });

  it("says what is wrong before the Job's deadline, every call at its limit, after the pod's start", () => {
    const job = find(withTempo, 'tempo/job-tempo-checkpoint.yaml');
    const worst = deadlineLoopsWorstCase(job.spec.template.spec.containers[0].command.at(-1));
    expect(worst).toMatchObject({ loops: 2, retried: 1 });
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(CHECK_START_SECONDS + worst.seconds);
  });
});
