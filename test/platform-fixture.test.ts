/**
 * The platform fixture (three environments, every built-in service, two apps; its invariants are
 * checked in invariants.test.ts): what this particular platform must come out as — which
 * services each environment gets, which namespaces are not restricted, where its GPU pods run,
 * the order of its AI services, Argo CD's bootstrap values.
 */
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { EXCEPTION_ANNOTATION } from '../lib/model/pod-security';
import type { SynthesizedEnvironment } from '../lib/output/synthesize';
import { Manifest, manifestsOf, platformText, synthesizePlatforms } from './support';

const all = synthesizePlatforms(platformText());
const envs = all.map((s) => s.env);
const prod = envs.find((e) => e.environment === 'prod')!;

const enforce = (env: SynthesizedEnvironment, namespace: string) =>
  manifestsOf(env).find(({ manifest }) => manifest.kind === 'Namespace' && manifest.metadata.name === namespace)!.manifest.metadata.labels![
    'pod-security.kubernetes.io/enforce'
  ];

describe('the platform fixture', () => {
  it('has a bootstrap, apps and service folders in each environment; the AI layer and the tunnel only in prod', () => {
    expect(envs.map((e) => e.environment)).toEqual(['dev', 'staging', 'prod']);
    const common = [
      'alloy',
      'app-namespaces',
      'apps',
      'argocd',
      'bootstrap',
      'cert-manager',
      'external-dns',
      'external-secrets',
      'home-assistant',
      'loki',
      'longhorn',
      'monitoring',
      'n8n',
      'network-policies',
      'node-red',
      'prometheus-operator-crds',
      'rabbitmq',
      'rabbitmq-operators',
      'seaweedfs',
      'tempo',
      'traefik',
      'vault',
      'verification',
    ];
    const prodOnly = ['cloudflared', 'dcgm-exporter', 'kuberay-operator', 'nvidia-device-plugin', 'ray', 'triton'];
    for (const env of envs) {
      const folders = new Set([...env.files.keys()].map((p) => p.split('/')[0]));
      expect([...folders].sort()).toEqual([...common, ...(env.environment === 'prod' ? prodOnly : [])].sort());
    }
  });

  it('relaxes Pod Security only for Longhorn, the monitoring stack, the device plugin, the DCGM exporter, the object store\'s bucket hook and the root-only Home Assistant', () => {
    const exceptions = manifestsOf(prod)
      .filter(({ manifest }) => manifest.kind === 'Namespace' && manifest.metadata.annotations?.[EXCEPTION_ANNOTATION])
      .map(({ manifest }) => manifest.metadata.name)
      .sort();
    expect(exceptions).toEqual(['dcgm-exporter', 'home-assistant', 'longhorn-system', 'monitoring', 'nvidia-device-plugin', 'seaweedfs']);
    expect(enforce(prod, 'longhorn-system')).toBe('privileged');
    expect(enforce(prod, 'seaweedfs')).toBe('baseline');
    expect(enforce(prod, 'home-assistant')).toBe('baseline');
    expect(enforce(prod, 'node-red')).toBe('restricted');
  });

  it('runs exactly Triton and the Ray GPU group on GPUs, and gives each Ray group as many GPUs as its num-gpus', () => {
    const gpus = (pod: any) => pod.containers.reduce((n: number, c: any) => n + Number(c.resources?.limits?.['nvidia.com/gpu'] ?? 0), 0);
    const cluster = manifestsOf(prod).find(({ manifest }) => manifest.kind === 'RayCluster')!.manifest;
    const triton = manifestsOf(prod).find(({ path }) => path === 'triton/deployment-triton.yaml')!.manifest;
    expect(gpus(triton.spec.template.spec)).toBe(1);
    for (const group of cluster.spec.workerGroupSpecs) {
      expect(String(gpus(group.template.spec)), group.groupName).toBe(group.rayStartParams['num-gpus'] ?? '0');
    }
    expect(cluster.spec.workerGroupSpecs.filter((g: any) => gpus(g.template.spec) > 0).map((g: any) => g.groupName)).toEqual(['gpu']);
  });

  it('orders RabbitMQ after Longhorn, and Triton and Ray after the device plugin and what they store on', () => {
    const wave = new Map(prod.services.map((s) => [s.name, s.wave]));
    expect(wave.get('rabbitmq')!).toBeGreaterThan(wave.get('longhorn')!);
    expect(wave.get('rabbitmq')!).toBeGreaterThan(wave.get('rabbitmq-operators')!);
    expect(wave.get('triton')!).toBeGreaterThan(wave.get('nvidia-device-plugin')!);
    expect(wave.get('triton')!).toBeGreaterThan(wave.get('longhorn')!);
    expect(wave.get('ray')!).toBeGreaterThan(wave.get('nvidia-device-plugin')!);
    expect(wave.get('ray')!).toBeGreaterThan(wave.get('kuberay-operator')!);
  });

  it('keeps RabbitMQ data on the Longhorn default class, three brokers in prod', () => {
    for (const env of envs) {
      const cluster = manifestsOf(env).find(({ manifest }) => manifest.kind === 'RabbitmqCluster')!.manifest;
      expect(cluster.spec.persistence.storageClassName).toBe('longhorn-replicated');
      expect(cluster.spec.replicas).toBe(env.environment === 'prod' ? 3 : 1);
    }
  });

  it("installs Argo CD at bootstrap for each environment's domain, with the Application health check", () => {
    for (const env of envs) {
      const values = parse(env.files.get('bootstrap/argo-cd.values.yaml')!);
      expect(values.configs.cm['resource.customizations.health.argoproj.io_Application']).toContain('operationState');
      expect(values.configs.cm['application.resourceTrackingMethod']).toBe('annotation');
      expect(values.configs.params['server.insecure']).toBe(true);
      expect(values.global.domain).toBe(`argocd.${env.environment === 'prod' ? '' : `${env.environment}.`}home.example.net`);
    }
  });

  it('syncs prod only by hand, the other environments automatically', () => {
    for (const env of envs) {
      const apps = manifestsOf(env).filter(({ path, manifest }) => path.startsWith('apps/') && manifest.kind === 'Application');
      for (const { manifest } of apps as { manifest: Manifest }[]) {
        expect(manifest.spec.syncPolicy.automated === undefined, `${env.environment}/${manifest.metadata.name}`).toBe(env.environment === 'prod');
      }
    }
  });
});
