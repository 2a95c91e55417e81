/**
 * Loki and Alloy, synthesized into the example's prod environment (Loki on Longhorn, 30 days
 * of logs) next to everything else prod runs. The checks are on what the cluster will do with
 * the output: the chart values against the charts' schemas and the facts of their templates,
 * the Alloy pipeline run against sample pods, the wave order, and the checkpoint scripts run
 * under `sh` against canned Loki answers.
 */
import { App } from 'cdk8s';
import type { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { Alloy, alloyConfig, alloySettings as alloySchema } from '../charts/alloy';
import { Loki, LOKI_CACHE_MB, LOKI_SCHEMA_START, LokiS3Storage, lokiSettings as lokiSchema } from '../charts/loki';
import { PrometheusOperatorCrds } from '../charts/prometheus-operator-crds';
import type { EnvironmentConfig } from '../lib/model/config/environment';
import { helmValuesErrors } from '../lib/tools/validate/helm-values';

import { MONITORING_GROUP } from '../lib/model/monitoring';
import { parseQuantity } from '../lib/util/quantity';
import type { StorageProvider } from '../lib/model/storage';
import { SynthesizedEnvironment, synthesizePlatform } from '../lib/output/synthesize';
import { ManifestValidator } from '../lib/tools/validate/manifest-validator';
import { buildPlatform, chartValues, deadlineLoopsWorstCase, environmentIssues, Manifest, manifestAt, manifestsOf, parseText, platformObject, runCheckpointRecordingCurl, toYamlText } from './support';
import { CHECK_START_SECONDS } from '../lib/model/checkpoint';
import { assertValidPromql } from './support-promql';

/** Chart facts (loki 18.11.0 templates): the single-binary Service is named after the release. */
const LOKI_SERVICE_URL = 'http://loki.loki.svc:3100';

const S3: Omit<LokiS3Storage, 'forcePathStyle'> = {
  endpoint: 'https://s3.example.net',
  region: 'eu-central-1',
  buckets: { chunks: 'homelab-loki-chunks', ruler: 'homelab-loki-ruler' },
};

interface Variant {
  /** Mutates the example config (a plain object) before parsing. */
  readonly config?: (config: Record<string, any>) => void;
  /** Loki's settings (`services.loki`, parsed), and whether Longhorn gives it a volume (by default it does). */
  readonly loki?: { readonly settings?: Record<string, unknown>; readonly onLonghorn?: boolean };
}

/** The prod config with any logging services the catalog may build turned off: this test adds its own. */
function prodConfig(variant: Variant): EnvironmentConfig {
  const config = platformObject();
  variant.config?.(config);
  const prod = parseText(toYamlText(config), 'homelab.yaml').environments.get('prod')!;
  const services: Record<string, any> = { ...prod.services };
  for (const key of ['loki', 'alloy']) if (services[key]) services[key] = { ...services[key], enabled: false };
  return { ...prod, services } as EnvironmentConfig;
}

function build(variant: Variant = {}) {
  const app = new App();
  const config = prodConfig(variant);
  const platform = buildPlatform(app, 'prod', config);
  // Monitors and rules are emitted (and validated) only where their CRDs are installed.
  if (!platform.services.some((s) => s.installsCrdGroups.includes(MONITORING_GROUP))) new PrometheusOperatorCrds(platform);
  const longhorn = platform.services.find((s) => s.serviceName === 'longhorn') as unknown as StorageProvider;
  const { onLonghorn = true, settings = {} } = variant.loki ?? {};
  const loki = new Loki(platform, { ...lokiSchema.parse({ retention: '30d', ...settings }), volumes: onLonghorn ? longhorn : undefined });
  const alloy = new Alloy(platform, { ...alloySchema.parse({}), loki });
  return { app, platform, config, longhorn, loki, alloy, env: synthesizePlatform(app, platform) };
}

function find(env: SynthesizedEnvironment, path: string): Manifest {
  return manifestAt(env, path);
}

const chartSource = (env: SynthesizedEnvironment, service: string) => find(env, `apps/application-${service}.yaml`).spec.sources.find((s: any) => s.chart);
const lokiValues = (env: SynthesizedEnvironment) => chartValues(env, 'loki');
const alloyValues = (env: SynthesizedEnvironment) => chartValues(env, 'alloy');
const wave = (env: SynthesizedEnvironment, service: string) =>
  Number(find(env, `apps/application-${service}.yaml`).metadata.annotations!['argocd.argoproj.io/sync-wave']);

const prod = build();

describe('the synthesized logging services', () => {
  it('validate against the Kubernetes and CRD schemas, monitors and rules included', () => {
    const validator = ManifestValidator.shared();
    const documents = manifestsOf(prod.env).filter(({ path }) => /^(loki|alloy)\/|application-(loki|alloy)\.yaml$/.test(path));
    expect(documents.map((d) => d.path)).toEqual(
      expect.arrayContaining(['loki/podmonitor-loki-server.yaml', 'loki/prometheusrule-loki-alerts.yaml', 'alloy/podmonitor-alloy-agent.yaml']),
    );
    expect(manifestsOf(prod.env).flatMap(({ path, manifest }) => validator.validate(manifest).map((p) => `${path}: ${p}`))).toEqual([]);
  });

  it('install the pinned charts with values their schemas accept', () => {
    expect(chartSource(prod.env, 'loki')).toMatchObject({ repoURL: 'https://grafana-community.github.io/helm-charts', chart: 'loki', targetRevision: '18.11.0' });
    expect(chartSource(prod.env, 'alloy')).toMatchObject({ repoURL: 'https://grafana.github.io/helm-charts', chart: 'alloy', targetRevision: '1.11.1' });
    expect(helmValuesErrors('loki', lokiValues(prod.env))).toEqual([]);
    expect(helmValuesErrors('alloy', alloyValues(prod.env))).toEqual([]);
    const s3 = build({ loki: { settings: { storage: { s3: S3 } } } });
    expect(helmValuesErrors('loki', lokiValues(s3.env))).toEqual([]);
    // The schemas do reject what the charts do not know.
    expect(helmValuesErrors('alloy', { ...alloyValues(prod.env), controler: {} })).toEqual(['controler: unknown key']);
  });

  it('sync Loki after Longhorn (its volume) and Alloy after Loki (its push target)', () => {
    expect(wave(prod.env, 'loki')).toBeGreaterThan(wave(prod.env, 'longhorn'));
    expect(wave(prod.env, 'alloy')).toBeGreaterThan(wave(prod.env, 'loki'));
    const dependsOn = (name: string) => prod.env.services.find((s) => s.name === name)!.dependsOn;
    expect(dependsOn('loki')).toContain('longhorn');
    expect(dependsOn('alloy')).toContain('loki');
    // Chunks in S3 without a WAL volume: nothing to wait for but the CRDs.
    const s3 = build({ loki: { settings: { storage: { s3: S3 } }, onLonghorn: false } });
    expect(s3.env.services.find((s) => s.name === 'loki')!.dependsOn).not.toContain('longhorn');
  });

  it('run in restricted namespaces: no hostPath, non-root, no privilege escalation, RuntimeDefault seccomp', () => {
    for (const service of ['loki', 'alloy']) {
      expect(find(prod.env, `${service}/namespace-${service}.yaml`).metadata.labels!['pod-security.kubernetes.io/enforce']).toBe('restricted');
    }
    const alloy = alloyValues(prod.env);
    expect(alloy.alloy.mounts).toMatchObject({ varlog: false, dockercontainers: false });
    expect(JSON.stringify(alloy)).not.toContain('hostPath');
    expect(alloy.global.podSecurityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 473, seccompProfile: { type: 'RuntimeDefault' } });
    expect(alloy.alloy.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    // The state directory is writable although the root filesystem is not.
    const mount = alloy.alloy.mounts.extra.find((m: any) => m.mountPath === alloy.alloy.storagePath);
    expect(alloy.controller.volumes.extra.find((v: any) => v.name === mount.name).emptyDir).toBeDefined();
    expect(alloy.alloy.securityContext.readOnlyRootFilesystem).toBe(true);
    // The Loki chart's pods are restricted by its defaults; nothing here loosens them.
    const loki = lokiValues(prod.env);
    for (const key of ['podSecurityContext', 'containerSecurityContext']) expect(loki.loki[key]).toBeUndefined();
    expect(loki.singleBinary.podSecurityContext).toBeUndefined();
  });

  it('give Alloy exactly the API access log tailing needs: no Secrets, no ConfigMaps', () => {
    const { rbac } = alloyValues(prod.env);
    const resources = [...rbac.rules, ...rbac.clusterRules].flatMap((r: any) => r.resources).sort();
    expect(resources).toEqual(['namespaces', 'pods', 'pods/log']);
    for (const rule of [...rbac.rules, ...rbac.clusterRules]) expect(rule.verbs).toEqual(['get', 'list', 'watch']);
    // The chart concatenates both lists into its ClusterRole: an empty one would render `[]` inside it.
    expect(rbac.clusterRules.length).toBeGreaterThan(0);
    expect(alloyValues(prod.env).crds.create).toBe(false);
  });
});

describe('Loki', () => {
  const values = lokiValues(prod.env);

  it('runs monolithic: one single-binary replica, no scalable targets, replication factor 1', () => {
    expect(values.deploymentMode).toBe('Monolithic');
    expect(values.singleBinary.replicas).toBe(1);
    for (const target of ['read', 'write', 'backend']) expect(values[target].replicas).toBe(0);
    expect(values.loki.commonConfig.replication_factor).toBe(1);
  });

  it('is single tenant, reached directly on its Service: no gateway, no canary, no Helm test', () => {
    expect(values.loki.auth_enabled).toBe(false);
    expect(values.gateway.enabled).toBe(false);
    expect(values.lokiCanary.enabled).toBe(false);
    // The chart fails to render with the test on and the canary off.
    expect(values.test.enabled).toBe(false);
    expect(prod.loki.queryUrl).toBe(LOKI_SERVICE_URL);
    expect(prod.loki.pushUrl).toBe(`${LOKI_SERVICE_URL}/loki/api/v1/push`);
  });

  it('has a fixed TSDB v13 schema, so every synth renders the same config', () => {
    expect(values.loki.schemaConfig).toEqual({
      configs: [{ from: LOKI_SCHEMA_START, store: 'tsdb', object_store: 'filesystem', schema: 'v13', index: { prefix: 'loki_index_', period: '24h' } }],
    });
    expect(LOKI_SCHEMA_START).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(Date.parse(LOKI_SCHEMA_START)).toBeLessThan(Date.now());
    const again = build();
    for (const path of [...prod.env.files.keys()].filter((p) => /^(loki|alloy)\/|application-(loki|alloy)/.test(p))) {
      expect(again.env.files.get(path), path).toBe(prod.env.files.get(path));
    }
  });

  it('keeps logs for the configured retention and lets the compactor delete older ones', () => {
    expect(values.loki.limits_config.retention_period).toBe('30d');
    expect(values.loki.compactor).toEqual({ retention_enabled: true, delete_request_store: 'filesystem' });
    expect(lokiValues(build({ loki: { settings: { retention: undefined } } }).env).loki.limits_config.retention_period).toBe('7d');
  });

  it('sizes its memcached caches for a homelab, well under 1 GiB together', () => {
    const caches = [values.chunksCache, values.resultsCache];
    expect(caches.map((c) => c.allocatedMemory)).toEqual([LOKI_CACHE_MB.chunks, LOKI_CACHE_MB.results]);
    const memory = caches.reduce((sum, c) => sum + parseQuantity(c.resources.limits.memory), 0);
    expect(memory).toBeLessThan(2 ** 30);
    for (const cache of caches) {
      // memcached must fit its item memory (-m, in MB) in its limit.
      expect(parseQuantity(cache.resources.limits.memory)).toBeGreaterThan(cache.allocatedMemory * 2 ** 20);
      // Loki's own write-back buffer per cache (500MB by default) stays small.
      expect(cache.writebackSizeLimit).toMatch(/^\d+MB$/);
      expect(parseInt(cache.writebackSizeLimit, 10)).toBeLessThanOrEqual(10);
    }
  });

  it('keeps chunks on a volume of the Longhorn default class that outlives the StatefulSet', () => {
    expect(values.loki.storage).toEqual({ type: 'filesystem' });
    expect(values.singleBinary.persistence).toEqual({
      enabled: true,
      size: '20Gi',
      storageClass: prod.longhorn.defaultStorageClass,
      enableStatefulSetAutoDeletePVC: false,
    });
    expect(values.singleBinary.extraEnv).toBeUndefined();
  });

  it('keeps chunks in S3 with credentials from the Secret it declares, never in the values', () => {
    const built = build({ loki: { settings: { storage: { s3: S3 } } } });
    const s3 = lokiValues(built.env);
    expect(built.loki.secretNeeds).toEqual([
      expect.objectContaining({ service: 'loki', namespace: 'loki', name: 'loki-s3-credentials', keys: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] }),
    ]);
    expect(build().loki.secretNeeds).toEqual([]);
    expect(s3.loki.storage).toEqual({
      type: 's3',
      bucketNames: { chunks: 'homelab-loki-chunks', ruler: 'homelab-loki-ruler' },
      s3: { endpoint: 'https://s3.example.net', region: 'eu-central-1', s3ForcePathStyle: true },
    });
    expect(s3.loki.schemaConfig.configs[0].object_store).toBe('s3');
    expect(s3.loki.compactor.delete_request_store).toBe('s3');
    expect(s3.singleBinary.extraEnv).toEqual(
      ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'].map((key) => ({ name: key, valueFrom: { secretKeyRef: { name: 'loki-s3-credentials', key } } })),
    );
    const keys = new Set<string>();
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(walk);
      else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) (keys.add(k), walk(v));
    };
    walk(s3);
    for (const key of ['accessKeyId', 'secretAccessKey', 'access_key_id', 'secret_access_key']) expect(keys.has(key), key).toBe(false);
    // The WAL stays on Longhorn when it is there; without it, on an emptyDir.
    expect(s3.singleBinary.persistence).toMatchObject({ enabled: true, size: '10Gi' });
    expect(lokiValues(build({ loki: { settings: { storage: { s3: S3 } }, onLonghorn: false } }).env).singleBinary.persistence).toEqual({ enabled: false });
    expect(() => build({ loki: { onLonghorn: false } })).toThrow('loki: needs a volume (storage), S3 or the object store for its chunks');
  });

  it('declares its capacity: Loki and both caches', () => {
    const demands = prod.loki.demands.map((d) => [d.workload, d.replicas, d.cpu, d.memory]);
    expect(demands).toEqual([
      ['loki', 1, '250m', '512Mi'],
      ['chunks-cache', 1, '60m', '339Mi'],
      ['results-cache', 1, '60m', '186Mi'],
    ]);
  });

  it('is scraped on its pods (not twice through its headless Service) and alerts on ingestion trouble', () => {
    const monitor = find(prod.env, 'loki/podmonitor-loki-server.yaml');
    expect(monitor.spec.selector.matchLabels).toEqual({
      'app.kubernetes.io/name': 'loki',
      'app.kubernetes.io/instance': 'loki',
      'app.kubernetes.io/component': 'single-binary',
    });
    expect(monitor.spec.podMetricsEndpoints[0]).toMatchObject({ port: 'http-metrics', path: '/metrics' });
    const rules = find(prod.env, 'loki/prometheusrule-loki-alerts.yaml').spec.groups[0].rules;
    expect(rules.map((r: any) => r.alert)).toEqual([
      'LokiServerTargetDown',
      'LokiRequestErrors',
      'LokiDiscardingLogs',
      'LokiChunkFlushFailing',
      'LokiCompactorNotRunning',
    ]);
    assertValidPromql([...rules, ...find(prod.env, 'alloy/prometheusrule-alloy-alerts.yaml').spec.groups[0].rules].map((r: any) => ({ label: r.alert, expr: r.expr })));
    for (const rule of rules) expect(rule.expr).toContain('homelab_service="loki"');
    expect(prod.loki.dashboards).toEqual([{ name: 'loki-logs', gnetId: 13639, revision: 2, datasource: 'Loki' }]);
  });
});

/**
 * Prometheus relabelling as discovery.relabel applies it (action replace, the only one the
 * config uses): the regex is anchored; no match leaves the target alone; an empty result
 * removes the label.
 */
function relabel(config: string, target: Record<string, string>): Record<string, string> {
  const block = /discovery\.relabel "pods" \{([\s\S]*?)\n\}/.exec(config)![1];
  const labels = { ...target };
  for (const [, body] of block.matchAll(/rule \{([\s\S]*?)\n {2}\}/g)) {
    const field = (name: string) => /^\s*(\S+)\s*=\s*(.+)$/m.exec(body.split('\n').find((l) => l.trim().startsWith(`${name} `)) ?? '')?.[2];
    const sources: string[] = JSON.parse(field('source_labels')!);
    const separator = field('separator') ? JSON.parse(field('separator')!) : ';';
    const regex = new RegExp(`^(?:${field('regex') ? JSON.parse(field('regex')!) : '(.*)'})$`);
    const target = JSON.parse(field('target_label')!);
    expect(field('action') ?? '"replace"').toBe('"replace"');
    const match = regex.exec(sources.map((s) => labels[s] ?? '').join(separator));
    if (!match) continue;
    const value = match[1] ?? '';
    if (value === '') delete labels[target];
    else labels[target] = value;
  }
  // loki.source.kubernetes ships the labels without the reserved `__` prefix (kubetail/target.go).
  return Object.fromEntries(Object.entries(labels).filter(([name]) => !name.startsWith('__')));
}

/** The discovery labels of a pod's container as discovery.kubernetes (role pod) exposes them. */
function podTarget(namespace: string, pod: string, container: string, podLabels: Record<string, string>): Record<string, string> {
  const target: Record<string, string> = {
    __address__: '10.42.0.7',
    __meta_kubernetes_namespace: namespace,
    __meta_kubernetes_pod_name: pod,
    __meta_kubernetes_pod_container_name: container,
    __meta_kubernetes_pod_uid: 'uid-1',
    __meta_kubernetes_pod_node_name: 'worker-1',
  };
  for (const [key, value] of Object.entries(podLabels)) {
    const name = key.replace(/[^a-zA-Z0-9_]/g, '_');
    target[`__meta_kubernetes_pod_label_${name}`] = value;
    target[`__meta_kubernetes_pod_labelpresent_${name}`] = 'true';
  }
  return target;
}

describe('Alloy', () => {
  const values = alloyValues(prod.env);
  const config: string = values.alloy.configMap.content;

  it('runs as a DaemonSet with the pipeline in the chart-generated ConfigMap', () => {
    expect(values.controller.type).toBe('daemonset');
    expect(values.alloy.configMap).toEqual({ create: true, content: prod.alloy.config });
    // The chart passes the content through `tpl`: no template delimiters may appear in it.
    expect(config).not.toContain('{{');
  });

  it('discovers only its node\'s pods, tails them through the API and pushes to the Loki construct', () => {
    const components = [...config.matchAll(/^([a-z_.]+) "([a-z_]+)" \{/gm)].map(([, component, label]) => `${component}.${label}`);
    expect(components).toEqual(['discovery.kubernetes.pods', 'discovery.relabel.pods', 'loki.source.kubernetes.pods', 'loki.write.loki']);
    expect(config).toContain('targets = discovery.kubernetes.pods.targets');
    expect(config).toContain('targets    = discovery.relabel.pods.output');
    expect(config).toContain('forward_to = [loki.write.loki.receiver]');
    expect(config).toContain('field = "spec.nodeName=" + coalesce(sys.env("HOSTNAME"), constants.hostname)');
    expect(config).toContain(`url = "${prod.loki.pushUrl}"`);
    expect(alloyConfig('http://elsewhere:3100/loki/api/v1/push')).toContain('url = "http://elsewhere:3100/loki/api/v1/push"');
  });

  it('labels every container\'s lines with namespace, pod, container and app (app.kubernetes.io/name, else app)', () => {
    const cases: [Record<string, string>, Record<string, string>][] = [
      [{ 'app.kubernetes.io/name': 'rabbitmq', app: 'legacy' }, { app: 'rabbitmq', job: 'data/rabbitmq' }],
      [{ app: 'node-red' }, { app: 'node-red', job: 'data/node-red' }],
      [{ 'pod-template-hash': 'abc' }, { job: 'data/server' }],
    ];
    for (const [podLabels, expected] of cases) {
      expect(relabel(config, podTarget('data', 'server-0', 'server', podLabels))).toEqual({ namespace: 'data', pod: 'server-0', container: 'server', ...expected });
    }
  });

  it('runs on every node of the inventory, tolerating their taints, and is counted per node', () => {
    expect(values.controller.tolerations).toEqual([]);
    const nodes = Object.keys(prod.config.nodes).length;
    expect(prod.alloy.demands.map((d) => [d.workload, d.replicas])).toEqual([
      ['alloy', nodes],
      ['config-reloader', nodes],
    ]);
    const tainted = build({
      config: (c) => {
        c.nodes['gpu-1'].taints = [{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }, { key: 'dedicated', value: 'ai', effect: 'NoExecute' }];
        // Two untainted nodes are left: too few for Vault's three HA pods (one per node).
        c.environments.prod.services.vault.replicas = 1;
      },
    });
    expect(alloyValues(tainted.env).controller.tolerations).toEqual([
      { key: 'dedicated', operator: 'Exists', effect: 'NoExecute' },
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
    ]);
  });

  it('gives every container requests and limits, the reloader sidecar included', () => {
    for (const resources of [values.alloy.resources, values.configReloader.resources]) {
      expect(Object.keys(resources.requests).sort()).toEqual(['cpu', 'memory']);
      expect(Object.keys(resources.limits).sort()).toEqual(['cpu', 'memory']);
    }
  });
});

const runCheckpoint = runCheckpointRecordingCurl;

/** The value of a `--data-urlencode name=value` argument of a curl call. */
const urlencoded = (call: string[], name: string) =>
  call.flatMap((arg, i) => (call[i - 1] === '--data-urlencode' && arg.startsWith(`${name}=`) ? [arg.slice(name.length + 1)] : []))[0];

/** The LogQL stream selector of a query as label -> value (only `=` matchers are used). */
function selectorOf(query: string): Record<string, string> {
  const selector = /^\{([^}]*)\}/.exec(query)![1];
  return Object.fromEntries([...selector.matchAll(/(\w+)="([^"]*)"/g)].map(([, name, value]) => [name, value]));
}

/** A fake Loki: /ready answers, pushes are accepted, and a query returns the line its `|=` filter names. */
const FAKE_LOKI = String.raw`url=""; for a in "$@"; do case "$a" in http*) url="$a";; query=*) query="\${a#query=}";; esac; done
case "$url" in
  */ready) echo ready;;
  */loki/api/v1/push) ;;
  */loki/api/v1/query_range)
    line=$(printf '%s' "$query" | sed -n 's/.*|= "\(.*\)"$/\1/p')
    printf '{"status":"success","data":{"resultType":"streams","result":[{"stream":{},"values":[["1700000000000000000","%s"]]}]}}' "$line";;
  *) exit 7;;
esac`.replace('\\${', '${');

/** The same Loki, but its queries find nothing. */
const EMPTY_LOKI = FAKE_LOKI.replace(/line=.*\n.*printf '.*' "\$line";;/, `printf '%s' '{"status":"success","data":{"resultType":"streams","result":[]}}';;`);

describe('the Loki checkpoint', () => {
  const job = find(prod.env, 'loki/job-loki-checkpoint.yaml');

  it('waits for /ready, pushes a unique line in the push API\'s JSON and finds it with LogQL', () => {
    const run = runCheckpoint(job, FAKE_LOKI, { HOSTNAME: 'loki-checkpoint-x7k2p' });
    expect(run.status, run.output).toBe(0);
    const [ready, push, query] = run.calls;
    expect(ready).toContain(`${LOKI_SERVICE_URL}/ready`);
    expect(push).toContain(`${LOKI_SERVICE_URL}/loki/api/v1/push`);
    const body = JSON.parse(push[push.indexOf('--data') + 1]);
    const [[timestamp, line]] = body.streams[0].values;
    expect(body.streams[0].stream).toEqual({ namespace: 'loki', app: 'loki-checkpoint' });
    expect(timestamp).toMatch(/^\d{19}$/);
    expect(line).toMatch(/^loki-checkpoint-loki-checkpoint-x7k2p-\d+$/);
    expect(query).toContain(`${LOKI_SERVICE_URL}/loki/api/v1/query_range`);
    expect(urlencoded(query, 'query')).toBe(`{app="loki-checkpoint"} |= "${line}"`);
    expect(run.output).toContain('the pushed line came back from a LogQL query');
  });

  it('fails when the line never comes back, Loki is never ready, or the push is refused', () => {
    const lost = runCheckpoint(job, EMPTY_LOKI);
    expect(lost.status).not.toBe(0);
    expect(lost.output).toMatch(/the pushed line loki-checkpoint-job-\d+ did not come back from a LogQL query within 2 minutes/);
    const notReady = runCheckpoint(job, 'exit 22');
    expect(notReady.status).not.toBe(0);
    expect(notReady.output).toContain('Loki did not become ready within 5 minutes');
    const refused = runCheckpoint(job, `case "$*" in *push*) exit 22;; esac\n${FAKE_LOKI}`);
    expect(refused.status).not.toBe(0);
    expect(refused.calls.some((call) => call.some((a) => a.endsWith('/query_range')))).toBe(false);
  });

  it("says what is wrong before the Job's deadline, every call at its limit, after the pod's start", () => {
    const worst = deadlineLoopsWorstCase(job.spec.template.spec.containers[0].command.at(-1));
    expect(worst).toMatchObject({ loops: 2, retried: 1 });
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(CHECK_START_SECONDS + worst.seconds);
  });
});

describe('the Alloy checkpoint', () => {
  const job = find(prod.env, 'alloy/job-alloy-checkpoint.yaml');
  const podName = 'alloy-checkpoint-9xq4z';

  it('prints a unique line, then asks Loki for it by exactly the labels Alloy gives its own pod', () => {
    const run = runCheckpoint(job, FAKE_LOKI, { HOSTNAME: podName });
    expect(run.status, run.output).toBe(0);
    const printed = run.output.split('\n')[0];
    expect(printed).toMatch(new RegExp(`^alloy-checkpoint-${podName}-\\d+$`));
    const query = urlencoded(run.calls[0], 'query');
    expect(query.endsWith(` |= "${printed}"`)).toBe(true);
    // What Alloy's pipeline makes of this very pod, from the Job's own pod template.
    const template = job.spec.template;
    const shipped = relabel(
      prod.alloy.config,
      podTarget(job.metadata.namespace!, podName, template.spec.containers[0].name, template.metadata.labels),
    );
    expect(selectorOf(query)).toEqual({ namespace: shipped.namespace, pod: shipped.pod, container: shipped.container, app: shipped.app });
    expect(run.calls[0]).toContain(`${LOKI_SERVICE_URL}/loki/api/v1/query_range`);
  });

  it('keeps asking, then fails, while Loki does not have the line or does not answer', () => {
    for (const fake of [EMPTY_LOKI, 'exit 7']) {
      const run = runCheckpoint(job, fake, { HOSTNAME: podName });
      expect(run.status).not.toBe(0);
      expect(run.output).toContain('after 5 minutes: Alloy does not ship its logs, or labels them differently');
      expect(run.calls.length).toBeGreaterThan(1);
    }
    expect(runCheckpoint(job, FAKE_LOKI).status).not.toBe(0);
  });

  it("says what is wrong before the Job's deadline, every call at its limit, after the pod's start", () => {
    const script: string = job.spec.template.spec.containers[0].command.at(-1);
    const traces = script.includes('$OTLP_HTTP_URL');
    const worst = deadlineLoopsWorstCase(script);
    expect(worst).toMatchObject({ loops: traces ? 2 : 1, retried: traces ? 1 : 0 });
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(CHECK_START_SECONDS + worst.seconds);
  });
});

describe('services.loki and services.alloy config', () => {
  const issues = (schema: typeof lokiSchema | typeof alloySchema, value: unknown) =>
    (schema.safeParse(value).error?.issues ?? []).map((i: z.core.$ZodIssue) => `${i.path.join('.')}: ${i.message}`);

  it('fills in the defaults: disabled, 7 days on a 20Gi volume', () => {
    expect(lokiSchema.parse({})).toEqual({
      enabled: false,
      retention: '7d',
      storage: { volume: { size: '20Gi' } },
      resources: { requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '2', memory: '2Gi' } },
    });
    expect(alloySchema.parse({}).enabled).toBe(false);
  });

  it('accepts the example settings: Longhorn in dev with 7 days, S3 in prod with 30', () => {
    const dev = lokiSchema.parse({ enabled: true, retention: '7d', storage: { volume: { size: '10Gi' } } });
    expect(dev.storage.volume).toEqual({ size: '10Gi' });
    const prodLoki = lokiSchema.parse({ enabled: true, retention: '30d', storage: { s3: { ...S3, endpoint: 'http://minio.minio.svc:9000' } } });
    expect(prodLoki.storage.s3).toMatchObject({ region: 'eu-central-1', forcePathStyle: true });
  });

  it('accepts only whole days of retention, at least one', () => {
    for (const ok of ['1d', '7d', '4w', '72h']) expect(issues(lokiSchema, { retention: ok }), ok).toEqual([]);
    expect(issues(lokiSchema, { retention: '36h' })).toEqual(['retention: expected whole days (Loki deletes logs by daily index table), such as "7d" or "72h"']);
    expect(issues(lokiSchema, { retention: '0d' })).toEqual(['retention: expected a retention period such as "7d", "4w" or "720h"']);
    expect(issues(lokiSchema, { retention: '1y' })).toEqual(['retention: expected a retention period such as "7d", "4w" or "720h"']);
  });

  it('wants exactly one store, two distinct buckets, and neither keys nor a Secret name (the service names its Secret)', () => {
    expect(issues(lokiSchema, { storage: { volume: { size: '10Gi' }, s3: S3 } })).toEqual([
      'storage: expected exactly one of volume, s3 or objectStore (set the others to null in an environment that switches)',
    ]);
    expect(issues(lokiSchema, { storage: { s3: { ...S3, buckets: { chunks: 'logs', ruler: 'logs' } } } })).toEqual([
      'storage.s3.buckets.ruler: expected two different buckets for chunks and ruler (Loki keeps ruler state apart from chunks)',
    ]);
    expect(issues(lokiSchema, { storage: { s3: { ...S3, secretAccessKey: 'x' } } })).toEqual([expect.stringMatching(/^storage\.s3: .*secretAccessKey/)]);
    expect(issues(lokiSchema, { storage: { s3: { ...S3, credentialsSecret: 'x' } } })).toEqual([expect.stringMatching(/^storage\.s3: .*credentialsSecret/)]);
    expect(issues(lokiSchema, { storage: { s3: { ...S3, endpoint: 's3.example.net' } } })).toEqual([
      'storage.s3.endpoint: expected an S3 endpoint URL such as "https://s3.example.net" or "http://minio.minio.svc:9000"',
    ]);
  });

  it('reports what the other services must provide', () => {
    const nodes = { a: { role: 'control-plane', cpu: 8, memory: '32Gi' } };
    const longhorn = { replicas: 1 };
    expect(environmentIssues({ nodes, services: { longhorn, loki: { enabled: true }, alloy: { enabled: true } } })).toEqual([]);
    expect(environmentIssues({ nodes, services: { longhorn: { enabled: false }, loki: { enabled: true } } })).toEqual([
      { path: 'services.loki.storage.volume', message: 'expected services.longhorn.enabled: a volume needs Longhorn (or use storage.s3)' },
    ]);
    expect(environmentIssues({ nodes, services: { longhorn, alloy: { enabled: true } } })).toEqual([
      { path: 'services.alloy.enabled', message: 'expected services.loki.enabled: Alloy ships the logs to Loki' },
    ]);
  });
});

describe('snapshots for review', () => {
  it.each(['loki', 'alloy'])('%s', (service) => {
    const files = [...prod.env.files].filter(([path]) => path.startsWith(`${service}/`) || path === `apps/application-${service}.yaml`);
    expect(files.map(([path, text]) => `=== ${path}\n${text}`).join('\n')).toMatchSnapshot();
  });
});
