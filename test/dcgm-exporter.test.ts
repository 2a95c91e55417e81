/**
 * GPU telemetry: the DCGM exporter on the platform fixture (prod has one GPU node, time-sliced
 * two ways; dev and staging have none) and variants of it — where it runs, how it is scraped,
 * its alerts, its dashboard and its checkpoint against fake answers.
 */
import { describe, expect, it } from 'vitest';
import { gpuDashboard } from '../charts/dcgm-exporter';
import type { NodeConfig } from '../lib/model/config/environment';
import { isGpuProvider } from '../lib/model/gpu';
import { discoveredGpuLabels, synthesizeEnvironment } from './support';
import { assertValidPromql } from './support-promql';
import { invariantNamed } from './invariants';
import { CHECK_START_SECONDS } from '../lib/model/checkpoint';
import { chartValues, environmentIssues, FAKE_SLEEP, manifestAt, platformObject, platformText, runWithFakeCommands, synthesizePlatforms, toYamlText, withFiles } from './support';

const envs = synthesizePlatforms(platformText());
const env = (name: string) => envs.find((s) => s.env.environment === name)!;
const prod = env('prod');
const file = (s: ReturnType<typeof env>, path: string) => manifestAt(s.env, path);
const values = (s: ReturnType<typeof env>) => chartValues(s.env, 'dcgm-exporter');
const exporter = (s: ReturnType<typeof env>) => s.platform.services.find((service) => service.serviceName === 'dcgm-exporter')!;

/** Nodes a required node affinity admits, with the labels GPU discovery sets in the cluster. */
function admitted(affinity: any, nodes: Record<string, NodeConfig>): string[] {
  const terms: any[] = affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
  return Object.entries(nodes)
    .filter(([, node]) => terms.some((term) => term.matchExpressions.every((e: any) => e.values.includes({ ...node.labels, ...discoveredGpuLabels(node) }[e.key]))))
    .map(([name]) => name);
}

describe('where the DCGM exporter runs', () => {
  it('comes with the device plugin, and only there', () => {
    for (const { env: synthesized, platform } of envs) {
      expect(synthesized.services.some((s) => s.name === 'dcgm-exporter'), synthesized.environment).toBe(platform.services.some(isGpuProvider));
    }
    expect(envs.filter((s) => s.platform.services.some(isGpuProvider)).length).toBeGreaterThan(0);
    expect(prod.env.services.find((s) => s.name === 'dcgm-exporter')!.dependsOn).toContain('nvidia-device-plugin');
  });

  it('runs on exactly the GPU nodes, with the NVIDIA RuntimeClass, tolerating their taints', () => {
    const config = platformObject();
    config.nodes['gpu-1'].taints = [{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }];
    config.environments.prod.services.vault = { replicas: 1 };
    const tainted = synthesizeEnvironment(toYamlText(config), 'prod', undefined, { fresh: true });
    const v = values(tainted);
    expect(v.runtimeClassName).toBe('nvidia');
    expect(admitted(v.affinity, tainted.config.nodes)).toEqual(['gpu-1']);
    expect(v.tolerations).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
  });

  it('is switched off by enabled: false, and refused without the device plugin', () => {
    expect(environmentIssues({ nodes: { a: { role: 'control-plane', cpu: 8, memory: '32Gi' } }, services: { longhorn: { replicas: 1 }, dcgmExporter: { enabled: true } } })).toEqual([
      { path: 'services.dcgmExporter.enabled', message: 'expected services.nvidiaDevicePlugin.enabled: the exporter watches the GPUs it advertises' },
    ]);
    const config = platformObject();
    config.environments.prod.services.dcgmExporter = { enabled: false };
    const off = synthesizeEnvironment(toYamlText(config), 'prod', undefined, { fresh: true });
    expect(off.env.services.some((s) => s.name === 'dcgm-exporter')).toBe(false);
  });
});

describe('scraping, alerts and the dashboard', () => {
  it('is scraped through the chart\'s Service, with the chart\'s own ServiceMonitor off', () => {
    expect(values(prod).serviceMonitor).toEqual({ enabled: false });
    const monitor = file(prod, 'dcgm-exporter/servicemonitor-dcgm-exporter-exporter.yaml');
    expect(monitor.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'dcgm-exporter', 'app.kubernetes.io/instance': 'dcgm-exporter', 'app.kubernetes.io/component': 'dcgm-exporter' });
    expect(monitor.spec.endpoints.map((e: any) => e.port)).toEqual(['metrics']);
  });

  it('alerts on XID errors, temperature, memory near full and every GPU node that stops reporting its GPUs', () => {
    const rules = exporter(prod).alertRules;
    expect(rules.map((r) => r.alert)).toEqual(['GpuXidError', 'GpuTemperatureHigh', 'GpuMemoryNearlyFull', 'GpuUnavailable']);
    assertValidPromql(rules.map((r) => ({ label: r.alert, expr: r.expr })));
    expect(rules.find((r) => r.alert === 'GpuTemperatureHigh')!.expr).toMatch(/> 85$/);
    expect(rules.find((r) => r.alert === 'GpuMemoryNearlyFull')!.expr).toMatch(/> 95$/);
    const unavailable = rules.find((r) => r.alert === 'GpuUnavailable')!;
    expect(unavailable.expr).toContain('Hostname="gpu-1"');
    expect(unavailable.expr).toMatch(/< 1$/);
    for (const rule of rules) expect(rule.expr, rule.alert).toContain('homelab_service="dcgm-exporter"');
  });

  it('takes the thresholds from the config', () => {
    const config = platformObject();
    config.environments.prod.services.dcgmExporter = { temperatureCelsius: 80, memoryUsedPercent: 90 };
    const tuned = synthesizeEnvironment(toYamlText(config), 'prod', undefined, { fresh: true });
    const rules = exporter(tuned).alertRules;
    expect(rules.find((r) => r.alert === 'GpuTemperatureHigh')!.expr).toMatch(/> 80$/);
    expect(rules.find((r) => r.alert === 'GpuMemoryNearlyFull')!.expr).toMatch(/> 90$/);
  });

  it('provisions its own GPU dashboard that labels time-sliced GPUs as such', () => {
    const [declared] = exporter(prod).dashboards;
    expect(declared.name).toBe('nvidia-gpus');
    const monitoring = chartValues(prod.env, 'monitoring');
    expect(monitoring.grafana.dashboards.homelab['nvidia-gpus']).toEqual({ json: (declared as { json: string }).json });

    const sliced = JSON.parse(gpuDashboard('homelab_service="dcgm-exporter"', 2));
    expect(sliced.title).toBe('NVIDIA GPUs (time-sliced x2)');
    expect(sliced.panels[0].options.content).toContain('up to 2 pods share each one');
    const queries = sliced.panels.flatMap((p: any) => p.targets ?? []);
    expect(queries.length).toBeGreaterThanOrEqual(5);
    for (const target of queries) {
      expect(target.legendFormat).toContain('(time-sliced x2)');
      expect(target.datasource.uid).toBe('prometheus');
    }
    assertValidPromql(queries.map((t: any) => ({ label: t.legendFormat, expr: t.expr })));

    const exclusive = JSON.parse(gpuDashboard('homelab_service="dcgm-exporter"', 1));
    expect(exclusive.title).toBe('NVIDIA GPUs (exclusive)');
    expect(JSON.stringify(exclusive)).not.toContain('time-sliced');
  });
});

describe('the DCGM exporter checkpoint', () => {
  const container = file(prod, 'dcgm-exporter/job-dcgm-exporter-checkpoint.yaml').spec.template.spec.containers[0];
  /** Two tries instead of the Job's. */
  const run = (curl: string, checks = '2') => {
    const result = runWithFakeCommands(container, { curl, sleep: FAKE_SLEEP }, { env: { CHECKS: checks } });
    return { status: result.status, output: result.stdout + result.stderr };
  };

  it('asks the exporter\'s Service for five minutes, 10 s apart', () => {
    expect(container.env).toContainEqual({ name: 'METRICS_URL', value: 'http://dcgm-exporter.dcgm-exporter.svc:9400/metrics' });
    const tries = Number(container.env.find((e: any) => e.name === 'CHECKS')?.value);
    const pauseSeconds = Number(/\bsleep (\d+)/.exec(container.command[2])?.[1]);
    expect(tries * pauseSeconds).toBe(300);
    // Every ask at curl's limit, after the pod's start: the message comes before the deadline.
    const callSeconds = Number(/--max-time (\d+)/.exec(container.command[2])![1]);
    expect(file(prod, 'dcgm-exporter/job-dcgm-exporter-checkpoint.yaml').spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(CHECK_START_SECONDS + tries * (callSeconds + pauseSeconds));
  });

  it('passes when the exporter reports a GPU temperature, counting the GPUs', () => {
    const metrics = [
      '# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).',
      '# TYPE DCGM_FI_DEV_GPU_TEMP gauge',
      'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-1",modelName="NVIDIA GeForce RTX 3090",Hostname="gpu-1"} 41',
    ].join('\n');
    const result = run(`printf '%s\\n' '${metrics}'`);
    expect(result.status).toBe(0);
    expect(result.output).toContain('the exporter reports 1 GPU(s)');
  });

  it('fails, naming the pieces to check, when no GPU series comes or the Service does not answer', () => {
    const empty = run(`printf '%s\\n' '# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).'`);
    expect(empty.status).not.toBe(0);
    expect(empty.output).toContain('no DCGM_FI_DEV_GPU_TEMP series at http://dcgm-exporter.dcgm-exporter.svc:9400/metrics after 5 minutes');
    expect(run('exit 7').status).not.toBe(0);
  });

  it('stops with a message where the Job leaves its tries unset, instead of asking no time and blaming the exporter', () => {
    const unset = run('exit 7', '');
    expect(unset.status).not.toBe(0);
    expect(unset.output).toContain('CHECKS: unset (the Job sets it)');
    expect(unset.output).not.toContain('after 5 minutes');
  });

  it('is held by the invariant that every call of our hook Jobs has a time limit', () => {
    const invariant = invariantNamed('every call the scripts of our hook Jobs make');
    expect(invariant.check([prod])).toEqual([]);
    const path = 'dcgm-exporter/job-dcgm-exporter-checkpoint.yaml';
    const unbounded = withFiles(prod, (files) => files.set(path, files.get(path)!.replace('curl -fsS --max-time 10 ', 'curl -fsS ')));
    expect(invariant.check([unbounded])).toEqual([expect.stringMatching(new RegExp(`^prod/${path} checkpoint: curl without --max-time: curl -fsS "\\$METRICS_URL"$`))]);
  });

  it('is held by the invariant over our hook Jobs: a number compared from the env is required before or in the test, and only what the env or the script sets is read', () => {
    const invariant = invariantNamed('every script of our hook Jobs requires each number');
    expect(invariant.check([prod])).toEqual([]);
    const path = 'dcgm-exporter/job-dcgm-exporter-checkpoint.yaml';
    const edited = (from: string, to: string) => withFiles(prod, (files) => files.set(path, files.get(path)!.replace(from, to)));
    expect(invariant.check([edited('"${CHECKS:?unset (the Job sets it)}"', '"$CHECKS"')])).toEqual([
      `prod/${path} checkpoint: compares with $CHECKS from its env, which it does not require ("\${CHECKS:?…}") before or in the test: unset, the test fails and its loop never ends or never runs`,
    ]);
    // Required only after the test: the loop has already run without it.
    expect(invariant.check([edited('"${CHECKS:?unset (the Job sets it)}" ]; do', '"$CHECKS" ]; do : "${CHECKS:?}";')])).toHaveLength(1);
    expect(invariant.check([edited('try=$((try + 1))', 'try=$((tyr + 1))')])).toEqual([`prod/${path} checkpoint: computes with $tyr, which neither its env nor the script sets`]);
    expect(invariant.check([edited('"${CHECKS:?unset (the Job sets it)}"', '"$CHEKCS"')])).toEqual([`prod/${path} checkpoint: compares with $CHEKCS, which neither its env nor the script sets`]);
    expect(invariant.check([edited('${CHECKS:?', '${CHEKCS:?')])).toEqual([`prod/${path} checkpoint: requires $CHEKCS, which neither its env nor the script sets`]);
  });
});
