/**
 * What an Application needs before it becomes Healthy must come from itself or an earlier wave
 * (lib/passes/needs.ts, ADR 23): one small fixture per kind of need, each a consumer in the
 * storage layer and its provider in the networking layer. With `waves: sequential` the layers
 * put the provider last and synth fails naming both Applications and the need; with
 * `waves: dependencies` the need is an edge and the consumer syncs after its provider.
 */
import { ApiObject, App } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../lib/model/checkpoint';
import { Layer } from '../lib/model/layers';
import type { Platform } from '../lib/model/platform';
import { HomelabService, ServiceSettings } from '../lib/model/service';
import { synthesizePlatform } from '../lib/output/synthesize';
import { analyseNeeds } from '../lib/passes/needs';
import { UserError } from '../lib/util/errors';
import { buildPlatform, emptyPlatform, fixtureText, parseText, platformObject, platformText, synthesizeText, toYamlText, synthesizeEnvironment } from './support';

/** A service made of the objects a test gives it. */
class TestService extends HomelabService {
  constructor(scope: Platform, name: string, layer: Layer, settings: Partial<ServiceSettings>, objects: readonly Record<string, any>[], secretNeeds: readonly string[] = []) {
    super(scope, name, {}, { layer, namespace: name, ...settings });
    objects.forEach((manifest, i) => new ApiObject(this, `object-${i}`, manifest as any));
    for (const secret of secretNeeds) this.needSecret(secret, ['key'], 'test');
    new Checkpoint(this, 'checkpoint', { description: 'test', image: 'docker.io/library/busybox:1.37.0', script: 'true' });
  }
}

/** A Deployment in the consumer's namespace whose pod has `pod` merged into its spec. */
const deployment = (pod: Record<string, any>, name = 'consumer') => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace: 'consumer' },
  spec: {
    selector: { matchLabels: { app: 'consumer' } },
    template: { metadata: { labels: { app: 'consumer' } }, spec: { containers: [{ name: 'main', image: 'docker.io/library/busybox:1.37.0' }], ...pod } },
  },
});
const mountsSecret = (secretName: string) => deployment({ volumes: [{ name: 'secret', secret: { secretName } }] });
const certificate = (issuer: string) => ({
  apiVersion: 'cert-manager.io/v1',
  kind: 'Certificate',
  metadata: { name: 'consumer-tls', namespace: 'consumer' },
  spec: { secretName: 'consumer-tls', dnsNames: ['consumer.example.net'], issuerRef: { kind: 'ClusterIssuer', name: issuer } },
});
const clusterIssuer = (name: string) => ({ apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name }, spec: { selfSigned: {} } });

interface Fixture {
  readonly consumer: { readonly settings?: Partial<ServiceSettings>; readonly objects: readonly Record<string, any>[] };
  readonly provider: { readonly settings?: Partial<ServiceSettings>; readonly objects?: readonly Record<string, any>[] };
  /** CRD groups a third service installs first, in the gitops layer. @default none */
  readonly crds?: readonly string[];
  /** The error in sequential mode, where the consumer syncs before the provider. */
  readonly error: string;
}

const FIXTURES: Readonly<Record<string, Fixture>> = {
  'the CRD of an emitted kind': {
    consumer: { objects: [{ apiVersion: 'example.com/v1', kind: 'Thing', metadata: { name: 'thing', namespace: 'consumer' } }] },
    provider: { settings: { installsCrdGroups: ['example.com'] } },
    error: 'consumer (wave 0) emits example.com resources, needing the CRDs of example.com, which provider installs in wave 1',
  },
  'the admission webhook that validates an emitted kind': {
    consumer: { settings: { installsCrdGroups: ['example.com'] }, objects: [{ apiVersion: 'example.com/v1', kind: 'Thing', metadata: { name: 'thing', namespace: 'consumer' } }] },
    provider: { settings: { admissionWebhookGroups: ['example.com'] } },
    error: 'consumer (wave 0) emits example.com resources, needing the admission webhook for example.com, which provider serves in wave 1',
  },
  'the Secret a Certificate produces': {
    consumer: { objects: [mountsSecret('consumer-tls')] },
    provider: { settings: { installsCrdGroups: ['cert-manager.io'] }, objects: [clusterIssuer('test-issuer'), certificate('test-issuer')] },
    error: 'consumer (wave 0) reads Secret consumer/consumer-tls, which provider issues in wave 1',
  },
  'the ClusterIssuer of its Certificates': {
    crds: ['cert-manager.io'],
    consumer: { objects: [certificate('late-issuer')] },
    provider: { objects: [clusterIssuer('late-issuer')] },
    error: 'consumer (wave 1) requests certificates from ClusterIssuer late-issuer, which provider creates in wave 2',
  },
  'the StorageClass of its claims': {
    consumer: {
      objects: [{ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'data', namespace: 'consumer' }, spec: { storageClassName: 'fast', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
    },
    provider: { objects: [{ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'fast' }, provisioner: 'example.com/fast' }] },
    error: 'consumer (wave 0) claims volumes of StorageClass fast, which provider creates in wave 1',
  },
  'a PersistentVolumeClaim its pods mount': {
    consumer: { objects: [deployment({ volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'shared' } }] })] },
    provider: { objects: [{ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'shared', namespace: 'consumer' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }] },
    error: 'consumer (wave 0) mounts PersistentVolumeClaim consumer/shared, which provider creates in wave 1',
  },
  'the secret backend its ExternalSecrets read through': {
    consumer: {
      settings: { installsCrdGroups: ['external-secrets.io'] },
      objects: [
        { apiVersion: 'external-secrets.io/v1', kind: 'SecretStore', metadata: { name: 'store', namespace: 'consumer' }, spec: { provider: { vault: { server: 'http://vault.provider.svc:8200', path: 'kv' } } } },
        { apiVersion: 'external-secrets.io/v1', kind: 'ExternalSecret', metadata: { name: 'token', namespace: 'consumer' }, spec: { secretStoreRef: { kind: 'SecretStore', name: 'store' }, target: { name: 'token' } } },
      ],
    },
    provider: {},
    error: 'consumer (wave 0) reads secrets from the secret backend in namespace provider, which provider serves in wave 1',
  },
};

function synth(fixture: Fixture, waves: 'dependencies' | 'sequential') {
  const app = new App();
  const config = parseText(fixtureText('small')).environments.get('lab')!;
  const platform = emptyPlatform(app, 'lab', { ...config, waves });
  if (fixture.crds) new TestService(platform, 'crds', Layer.GITOPS, { installsCrdGroups: fixture.crds }, []);
  new TestService(platform, 'consumer', Layer.STORAGE, fixture.consumer.settings ?? {}, fixture.consumer.objects);
  new TestService(platform, 'provider', Layer.NETWORKING, fixture.provider.settings ?? {}, fixture.provider.objects ?? []);
  return synthesizePlatform(app, platform);
}

describe.each(Object.entries(FIXTURES))('a need of %s', (_kind, fixture) => {
  it('provided only by a later wave is an error naming both Applications and the need (waves: sequential)', () => {
    expect(() => synth(fixture, 'sequential')).toThrow(
      new UserError([
        `waves: ${fixture.error}: waves: sequential syncs layer storage before layer networking; use waves: dependencies, or move consumer to a layer after networking`,
      ]),
    );
  });

  it('is an edge: the consumer syncs after its provider (waves: dependencies)', () => {
    const env = synth(fixture, 'dependencies');
    const wave = new Map(env.services.map((s) => [s.name, s.wave]));
    expect(wave.get('consumer')).toBeGreaterThan(wave.get('provider')!);
    expect(env.services.find((s) => s.name === 'consumer')!.needDependsOn).toContain('provider');
  });
});

describe('Secrets delivered by External Secrets', () => {
  it('fail the sequential layer order when an earlier layer reads one, naming both Applications and the Secret', () => {
    const config = platformObject();
    config.waves = 'sequential';
    config.apps['home-assistant'].layer = 'storage';
    config.apps['home-assistant'].secretEnv = ['HA_TOKEN'];
    expect(() => synthesizeText(toYamlText(config))).toThrow(
      /waves: home-assistant \(wave \d+\) reads Secret home-assistant\/home-assistant-env, which external-secrets delivers in wave \d+: waves: sequential syncs layer storage before layer foundation/,
    );
  });

  it('fail as a dependency cycle where the reader is one Vault needs (waves: dependencies)', () => {
    const app = new App();
    const platform = buildPlatform(app, 'dev', parseText(platformText()).environments.get('dev')!);
    // needSecret is protected: only the service's own construct declares its needs.
    (platform.services.find((s) => s.serviceName === 'longhorn') as any).needSecret('started-with', ['key'], 'test: read to start');
    expect(() => synthesizePlatform(app, platform)).toThrow(/dependency cycle: .*longhorn -> external-secrets -> vault -> longhorn/);
  });

  it('make the reader wait for External Secrets, which waits for Vault (waves: dependencies)', () => {
    const config = platformObject();
    config.apps['home-assistant'].secretEnv = ['HA_TOKEN'];
    const dev = synthesizeEnvironment(toYamlText(config), 'dev').env;
    const wave = new Map(dev.services.map((s) => [s.name, s.wave]));
    expect(wave.get('home-assistant')).toBeGreaterThan(wave.get('external-secrets')!);
    expect(wave.get('external-secrets')).toBeGreaterThan(wave.get('vault')!);
  });
});

describe('the needs of a service', () => {
  function needsOf(objects: readonly Record<string, any>[], settings: Partial<ServiceSettings> = {}, secretNeeds: readonly string[] = []) {
    const platform = emptyPlatform(new App(), 'lab', parseText(fixtureText('small')).environments.get('lab')!);
    new TestService(platform, 'consumer', Layer.STORAGE, settings, objects, secretNeeds);
    return analyseNeeds(platform).needs.get('consumer')!;
  }

  it('are every Secret and claim a pod reads to start, optional references left out', () => {
    const pod = deployment({
      imagePullSecrets: [{ name: 'pull' }],
      initContainers: [{ name: 'init', image: 'x:1', envFrom: [{ secretRef: { name: 'env-from' } }, { secretRef: { name: 'maybe-env', optional: true } }] }],
      containers: [{ name: 'main', image: 'x:1', env: [{ name: 'A', valueFrom: { secretKeyRef: { name: 'env', key: 'a' } } }, { name: 'B', valueFrom: { secretKeyRef: { name: 'maybe', key: 'b', optional: true } } }] }],
      volumes: [
        { name: 'v', secret: { secretName: 'volume' } },
        { name: 'o', secret: { secretName: 'maybe-volume', optional: true } },
        { name: 'p', projected: { sources: [{ secret: { name: 'projected' } }, { configMap: { name: 'c' } }] } },
        { name: 'd', persistentVolumeClaim: { claimName: 'data' } },
      ],
    });
    const cronJob = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'c', namespace: 'consumer' },
      spec: { schedule: '@daily', jobTemplate: { spec: { template: { spec: { containers: [{ name: 'c', image: 'x:1', envFrom: [{ secretRef: { name: 'cron' } }] }] } } } } },
    };
    const secrets = (names: string[]) => names.map((name) => ({ kind: 'secret', namespace: 'consumer', name }));
    expect(needsOf([pod, cronJob])).toEqual(expect.arrayContaining([...secrets(['env-from', 'env', 'pull', 'volume', 'projected', 'cron']), { kind: 'pvc', namespace: 'consumer', name: 'data' }]));
    expect(JSON.stringify(needsOf([pod]))).not.toMatch(/maybe/);
  });

  it('include the storage classes of claim templates and operators, the Secrets declared to start and the issuer Secrets of its Certificates', () => {
    const statefulSet = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 's', namespace: 'consumer' },
      spec: { selector: {}, template: { spec: { containers: [] } }, volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { storageClassName: 'templated' } }] },
    };
    const issuer = { ...clusterIssuer('acme'), spec: { acme: { privateKeySecretRef: { name: 'account-key' }, solvers: [{ dns01: { cloudflare: { apiTokenSecretRef: { name: 'dns-token', key: 'k' } } } }] } } };
    const needs = needsOf([statefulSet, issuer, certificate('acme')], { installsCrdGroups: ['cert-manager.io'] }, ['declared']);
    expect(needs).toEqual(
      expect.arrayContaining([
        { kind: 'storage-class', name: 'templated' },
        { kind: 'secret', namespace: 'consumer', name: 'declared' },
        { kind: 'issuer', name: 'acme' },
        // In the namespace of the service emitting the issuer; the account key is the issuer's own.
        { kind: 'secret', namespace: 'consumer', name: 'dns-token' },
      ]),
    );
    expect(needs).not.toContainEqual(expect.objectContaining({ name: 'account-key' }));
  });

  it('a Secret nothing provides is an error, a declared one nothing delivers is the operator\'s, made by hand before the first sync', () => {
    const app = new App();
    const platform = emptyPlatform(app, 'lab', parseText(fixtureText('small')).environments.get('lab')!);
    new TestService(platform, 'consumer', Layer.STORAGE, {}, [mountsSecret('nowhere'), deployment({ containers: [{ name: 'm', image: 'x:1', envFrom: [{ secretRef: { name: 'by-hand' } }] }] }, 'by-hand')], ['by-hand']);
    expect(() => synthesizePlatform(app, platform)).toThrow(
      new UserError(['waves: consumer reads Secret consumer/nowhere, which no Application provides; declare it (needSecret, or the upstream or generated Secrets of the service that makes it)']),
    );
  });
});
