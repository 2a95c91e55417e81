import { ApiObject, App, Chart } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { RecurringJob } from '../imports/longhorn-longhorn.io';
import { UserError } from '../lib/util/errors';
import { dependencyGraph } from '../lib/passes/graph';
import { Layer, LAYER_ORDER } from '../lib/model/layers';

import { Platform } from '../lib/model/platform';
import { HomelabService } from '../lib/model/service';
import { Checkpoint } from '../lib/model/checkpoint';
import { synthesizePlatform } from '../lib/output/synthesize';
import { computeWaves, GraphNode } from '../lib/passes/waves';
import { findCycle } from '../lib/util/cycles';
import { buildPlatform, emptyPlatform, platformObject, platformText, parseText, synthesizeText, toYamlText, synthesizeEnvironment } from './support';

const node = (name: string, layer: Layer, ...dependsOn: string[]): GraphNode => ({ name, layer, dependsOn });

describe('computeWaves (dependencies mode)', () => {
  it('puts every service one wave after its latest dependency', () => {
    const waves = computeWaves(
      [
        node('n8n', Layer.AUTOMATION, 'rabbitmq', 'longhorn'),
        node('rabbitmq', Layer.DATA_MESH, 'longhorn'),
        node('longhorn', Layer.STORAGE),
        node('traefik', Layer.NETWORKING),
      ],
      'dependencies',
    );
    expect(Object.fromEntries(waves)).toEqual({ longhorn: 0, rabbitmq: 1, n8n: 2, traefik: 0 });
  });

  it('lets independent services share a wave', () => {
    const waves = computeWaves([node('a', Layer.STORAGE), node('b', Layer.AI), node('c', Layer.AI, 'a', 'b')], 'dependencies');
    expect(waves.get('a')).toBe(waves.get('b'));
    expect(waves.get('c')).toBe(1);
  });

  it('fails on a cycle and names it', () => {
    const nodes = [node('a', Layer.STORAGE, 'c'), node('b', Layer.STORAGE, 'a'), node('c', Layer.STORAGE, 'b'), node('d', Layer.AI)];
    expect(() => computeWaves(nodes, 'dependencies')).toThrow(new UserError(['dependency cycle: a -> c -> b -> a']));
    expect(findCycle([node('x', Layer.AI, 'x')])).toEqual(['x', 'x']);
    expect(findCycle([node('x', Layer.AI), node('y', Layer.AI, 'x')])).toBeUndefined();
  });
});

describe('computeWaves (sequential mode)', () => {
  it('gives each layer its own wave in the documented order', () => {
    const waves = computeWaves(
      [
        node('traefik', Layer.NETWORKING),
        node('vault', Layer.SECURITY),
        node('n8n', Layer.AUTOMATION),
        node('prometheus', Layer.OBSERVABILITY),
        node('triton', Layer.AI),
        node('rabbitmq', Layer.DATA_MESH),
        node('longhorn', Layer.STORAGE),
        node('argocd', Layer.GITOPS),
      ],
      'sequential',
    );
    const order = [...waves].sort((a, b) => a[1] - b[1]).map(([name]) => name);
    expect(order).toEqual(['argocd', 'longhorn', 'rabbitmq', 'triton', 'prometheus', 'n8n', 'vault', 'traefik']);
    expect(new Set(waves.values()).size).toBe(8);
  });

  it('rejects a dependency on a later layer', () => {
    expect(() => computeWaves([node('longhorn', Layer.STORAGE, 'vault'), node('vault', Layer.SECURITY)], 'sequential')).toThrow(
      /longhorn \(layer storage\) depends on vault \(layer security\)/,
    );
  });
});

/** A service that emits a Longhorn custom resource without a construct reference to Longhorn. */
class SnapshotPolicy extends HomelabService {
  constructor(scope: Platform) {
    super(scope, 'snapshot-policy', {}, { layer: Layer.AUTOMATION, namespace: 'snapshot-policy' });
    new RecurringJob(this, 'job', { metadata: { name: 'hourly' }, spec: { cron: '0 * * * *', retain: 2 } });
    new Checkpoint(this, 'checkpoint', { description: 'test', image: 'busybox:1.37.0', script: 'true' });
  }
}

describe('dependency graph', () => {
  const devConfig = () => parseText(platformText(), 'homelab.yaml').environments.get('dev')!;

  it('counts only services as references: any other cdk8s Chart (which answers instanceof for every chart) is not one', () => {
    const platform = buildDev();
    expect(HomelabService.isHomelabService(new Chart(new App(), 'plain'))).toBe(false);
    expect(platform.services.every((s) => HomelabService.isHomelabService(s))).toBe(true);
  });

  it('derives dependencies from typed construct references', () => {
    const graph = dependencyGraph(buildDev()).nodes;
    const deps = Object.fromEntries(graph.map((n) => [n.name, n.dependsOn]));
    // Before synth emits the monitors (see below), only references and our own custom resources count.
    expect(deps).toEqual({
      argocd: [],
      longhorn: [],
      'prometheus-operator-crds': [],
      // The operators install rabbitmq.com: the cluster emits those resources (CRD edge).
      // Their webhooks take certificates from cert-manager (requiresCrdGroups).
      'rabbitmq-operators': ['cert-manager'],
      'cert-manager': [],
      rabbitmq: ['longhorn', 'rabbitmq-operators'],
      loki: ['longhorn'],
      tempo: ['longhorn'],
      // Logs to Loki, traces to Tempo.
      alloy: ['loki', 'tempo'],
      // The typed references (broker, SQLite volume) and the User resource it emits (CRD edge).
      n8n: ['longhorn', 'rabbitmq', 'rabbitmq-operators'],
      'home-assistant': ['longhorn'],
      'node-red': ['home-assistant', 'longhorn'],
      // Grafana's Loki and Tempo data sources; its ServiceMonitor for CoreDNS needs the CRDs.
      monitoring: ['loki', 'longhorn', 'prometheus-operator-crds', 'tempo'],
      // The router depends on every service that declares an exposure (its routes come at synth, test/exposures.test.ts).
      traefik: ['argocd', 'cert-manager', 'home-assistant', 'longhorn', 'monitoring', 'n8n', 'node-red', 'rabbitmq', 'vault'],
      // Its checkpoint probes Argo CD: ordered after it (platform wiring, not a reference).
      'network-policies': ['argocd'],
      // Vault keeps its storage on Longhorn; External Secrets reads from Vault.
      vault: ['longhorn'],
      'external-secrets': ['vault'],
      // Its data on Longhorn; External Secrets follows from its delivered Secrets, later.
      seaweedfs: ['longhorn'],
      // Its records are the router's hosts: ordered after it, without connecting to it.
      'external-dns': ['traefik'],
    });
  });

  it('adds an edge to the service that installs the CRD of an emitted custom resource', () => {
    const platform = buildDev();
    new SnapshotPolicy(platform);
    const graph = dependencyGraph(platform).nodes;
    expect(graph.find((n) => n.name === 'snapshot-policy')!.dependsOn).toEqual(['longhorn']);
    // Longhorn emits its own RecurringJobs: no self edge.
    expect(graph.find((n) => n.name === 'longhorn')!.dependsOn).toEqual([]);
  });

  it('fails when no enabled service installs the CRD', () => {
    const platform = emptyPlatform(new App(), 'dev', devConfig());
    new SnapshotPolicy(platform);
    expect(() => dependencyGraph(platform)).toThrow('snapshot-policy emits longhorn.io resources, but no enabled service installs that CRD group');
  });

  function buildDev(): Platform {
    return buildPlatform(new App(), 'dev', devConfig());
  }
});

describe('waves in the synthesized example', () => {
  it('sequential mode orders layers strictly, the foundations before the data mesh, and dependencies inside a layer', () => {
    const config = platformObject();
    config.waves = 'sequential';
    const dev = synthesizeEnvironment(toYamlText(config), 'dev').env;
    const rank = (layer: string) => LAYER_ORDER.indexOf(layer as Layer);
    const byName = new Map(dev.services.map((s) => [s.name, s]));
    for (const a of dev.services) {
      for (const b of dev.services) if (rank(a.layer) < rank(b.layer)) expect(a.wave, `${a.name} before ${b.name}`).toBeLessThan(b.wave);
      for (const dependency of a.dependsOn) expect(a.wave, `${a.name} after ${dependency}`).toBeGreaterThan(byName.get(dependency)!.wave);
    }
    // What every layer's certificates and secrets come from is in place before the data mesh.
    expect(['cert-manager', 'vault', 'external-secrets'].map((name) => byName.get(name)!.layer)).toEqual(['foundation', 'foundation', 'foundation']);
    expect(dev.warnings).toEqual([]);
  });

  it('sequential mode rejects a dependency on a later layer, naming the config path', () => {
    const config = platformObject();
    config.waves = 'sequential';
    config.apps['home-assistant'].layer = 'storage';
    config.apps['node-red'].layer = 'data-mesh';
    config.apps['home-assistant'].dependsOn = ['node-red'];
    delete config.apps['node-red'].dependsOn;
    expect(() => synthesizeText(toYamlText(config))).toThrow(
      /home-assistant \(layer storage\) depends on node-red \(layer data-mesh\), a later layer/,
    );
  });
});

/** Installs the CRDs of example.com in the networking layer (like cert-manager). */
class LateInstaller extends HomelabService {
  constructor(scope: Platform) {
    super(scope, 'late-installer', {}, { layer: Layer.NETWORKING, namespace: 'late-installer', installsCrdGroups: ['example.com'] });
    new Checkpoint(this, 'checkpoint', { description: 'test', image: 'busybox:1.37.0', script: 'true' });
  }
}

/** A storage-layer service that emits an example.com resource. */
class EarlyConsumer extends HomelabService {
  constructor(scope: Platform) {
    super(scope, 'early-consumer', {}, { layer: Layer.STORAGE, namespace: 'early-consumer' });
    new ApiObject(this, 'thing', { apiVersion: 'example.com/v1', kind: 'Thing', metadata: { name: 'thing' } });
    new Checkpoint(this, 'checkpoint', { description: 'test', image: 'busybox:1.37.0', script: 'true' });
  }
}

describe('CRD edges', () => {
  function synth(waves: 'dependencies' | 'sequential') {
    const app = new App();
    const config = parseText(platformText(), 'homelab.yaml').environments.get('dev')!;
    const platform = buildPlatform(app, 'dev', { ...config, waves });
    new LateInstaller(platform);
    new EarlyConsumer(platform);
    return synthesizePlatform(app, platform);
  }

  it('follows the CRD edge in dependencies mode', () => {
    const env = synth('dependencies');
    expect(env.services.find((s) => s.name === 'early-consumer')!.dependsOn).toEqual(['late-installer']);
    expect(env.files.get('early-consumer/thing-thing.yaml')).not.toContain('SkipDryRunOnMissingResource');
  });

  it('fails in sequential mode, where the CRD would come with a later layer, naming both and the CRDs', () => {
    expect(() => synth('sequential')).toThrow(
      /waves: early-consumer \(wave \d+\) emits example.com resources, needing the CRDs of example.com, which late-installer installs in wave \d+: waves: sequential syncs layer storage before layer networking/,
    );
  });
});

describe('a service awaiting the operator (Vault until it is unsealed)', () => {
  const gate = (name: string, layer: Layer, ...dependsOn: string[]): GraphNode => ({ name, layer, dependsOn, awaitsOperator: true });

  it('syncs in the last wave of the services that do not need it, and only what needs it comes after', () => {
    const waves = computeWaves(
      [
        node('longhorn', Layer.STORAGE),
        gate('vault', Layer.FOUNDATION, 'longhorn'),
        node('eso', Layer.FOUNDATION, 'vault'),
        node('rabbitmq', Layer.DATA_MESH, 'longhorn'),
        node('n8n', Layer.AUTOMATION, 'rabbitmq'),
        node('grafana', Layer.OBSERVABILITY, 'eso'),
      ],
      'dependencies',
    );
    expect(Object.fromEntries(waves)).toEqual({ longhorn: 0, rabbitmq: 1, n8n: 2, vault: 2, eso: 3, grafana: 4 });
  });

  it('is not held back when nothing else is later', () => {
    const waves = computeWaves([node('longhorn', Layer.STORAGE), gate('vault', Layer.FOUNDATION, 'longhorn')], 'dependencies');
    expect(Object.fromEntries(waves)).toEqual({ longhorn: 0, vault: 1 });
  });
});
