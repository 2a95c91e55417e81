/** The operator's own apps: GPUs through the device plugin, placement, capacity; secret environment variables. */
import { describe, expect, it } from 'vitest';
import { discoveredGpuLabels } from './support';
import { platformObject, manifestsOf, parseText, synthesizeEnvironment, synthesizeText, toYamlText } from './support';

function withGpuApp(mutate: (config: Record<string, any>) => void = () => undefined) {
  const config = platformObject();
  config.apps.whisper = {
    image: 'ghcr.io/example/whisper:1.2.3',
    ports: { http: 9000 },
    probes: { readiness: { http: { port: 'http', path: '/health' } } },
    gpus: 1,
    resources: { requests: { cpu: '1', memory: '2Gi' }, limits: { cpu: '2', memory: '4Gi' } },
  };
  // Only prod has GPUs: the app runs there.
  config.apps.whisper.enabled = false;
  config.environments.prod.apps = { whisper: { enabled: true } };
  config.environments.prod.services.ray = { enabled: false };
  mutate(config);
  return toYamlText(config);
}

describe('an app with GPUs', () => {
  const prod = synthesizeEnvironment(withGpuApp(), 'prod').env;
  const deployment = manifestsOf(prod).find((m) => m.path === 'whisper/deployment-whisper.yaml')!.manifest;
  const pod = deployment.spec.template.spec;

  it('requests nvidia.com/gpu with the NVIDIA RuntimeClass, on the GPU nodes only', () => {
    expect(pod.containers[0].resources.limits).toEqual({ cpu: '2', memory: '4096Mi', 'nvidia.com/gpu': '1' });
    expect(pod.runtimeClassName).toBe('nvidia');
    const [term] = pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
    const nodes = parseText(withGpuApp(), 'homelab.yaml').environments.get('prod')!.nodes;
    const matches = (labels: Record<string, string>) =>
      term.matchExpressions.every((e: { key: string; values: string[] }) => e.values.includes(labels[e.key]));
    // As the cluster labels the nodes: GPU discovery adds its label to the GPU nodes.
    expect(Object.keys(nodes).filter((name) => matches({ ...nodes[name].labels, ...discoveredGpuLabels(nodes[name]) }))).toEqual(['gpu-1']);
  });

  it('syncs after the device plugin and counts in the capacity check', () => {
    const whisper = prod.services.find((s) => s.name === 'whisper')!;
    const plugin = prod.services.find((s) => s.name === 'nvidia-device-plugin')!;
    expect(whisper.dependsOn).toContain('nvidia-device-plugin');
    expect(whisper.wave).toBeGreaterThan(plugin.wave);
    // Triton 1 + whisper 1 on one GPU time-sliced two ways.
    expect(prod.capacity.requested.gpus).toBe(2);
  });

  it('fails the synth when the GPUs are taken, naming every consumer', () => {
    const text = withGpuApp((c) => (c.environments.prod.apps.whisper.replicas = 2));
    expect(() => synthesizeText(text)).toThrow('gpus: the services request 3, the nodes have 2 (1 GPUs time-sliced 2 ways) (whisper/app 2 x 1, triton/server 1 x 1)');
  });

  it('is a config error without the device plugin, naming the path', () => {
    const text = withGpuApp((c) => (c.environments.dev.apps = { whisper: { enabled: true } }));
    // The value comes from the base; the message names the environment it is wrong in.
    expect(() => parseText(text, 'homelab.yaml')).toThrow(
      'apps.whisper.gpus: expected services.nvidiaDevicePlugin.enabled: GPUs are schedulable only through the device plugin (in dev)',
    );
  });
});

describe('an app with secret environment variables', () => {
  const config = platformObject();
  config.apps['node-red'].secretEnv = ['NODE_RED_CREDENTIAL_SECRET', 'MQTT_PASSWORD'];
  const { platform, env } = synthesizeEnvironment(toYamlText(config), 'dev');
  const container = manifestsOf(env).find((m) => m.path === 'node-red/deployment-node-red.yaml')!.manifest.spec.template.spec.containers[0];

  it('reads each from the key of the same name of the Secret <app>-env, next to the plain ones', () => {
    expect(container.env).toEqual([
      { name: 'TZ', value: 'Europe/Berlin' },
      { name: 'SITE_NAME', value: 'Zürich × 2' },
      { name: 'NODE_RED_CREDENTIAL_SECRET', valueFrom: { secretKeyRef: { name: 'node-red-env', key: 'NODE_RED_CREDENTIAL_SECRET' } } },
      { name: 'MQTT_PASSWORD', valueFrom: { secretKeyRef: { name: 'node-red-env', key: 'MQTT_PASSWORD' } } },
    ]);
  });

  it('declares that Secret in its own namespace, and apps without secretEnv declare none', () => {
    const needs = (name: string) => platform.services.find((s) => s.serviceName === name)!.secretNeeds;
    expect(needs('node-red')).toEqual([
      expect.objectContaining({ service: 'node-red', namespace: 'node-red', name: 'node-red-env', keys: ['MQTT_PASSWORD', 'NODE_RED_CREDENTIAL_SECRET'] }),
    ]);
    expect(needs('home-assistant')).toEqual([]);
  });

  it('rejects invalid names, duplicates and variables also in env, naming the path', () => {
    const problems = (secretEnv: unknown) => {
      const variant = platformObject();
      variant.apps['node-red'].secretEnv = secretEnv;
      return () => parseText(toYamlText(variant), 'homelab.yaml');
    };
    expect(problems(['DB-PASSWORD'])).toThrow('apps.node-red.secretEnv.0: expected an environment variable name');
    expect(problems(['TOKEN', 'TOKEN'])).toThrow('apps.node-red.secretEnv.1: expected each variable once: "TOKEN" is listed twice');
    expect(problems(['TZ'])).toThrow('apps.node-red.secretEnv.0: expected a variable not in env: "TZ" is set there already');
  });
});
