/**
 * RabbitMQ (data mesh): the operators from pinned upstream kustomizations, the cluster and
 * its topology from the config, the consumer handle, and the config schema. Platforms are
 * built from the example config's environments with Longhorn and the two RabbitMQ services.
 */
import { App } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { CertManager, certManagerSettings } from '../charts/cert-manager';
import type { z } from 'zod';
import { Longhorn, longhornEntry } from '../charts/longhorn';
import { Rabbitmq } from '../charts/rabbitmq';
import { RabbitmqOperators } from '../charts/rabbitmq-operators';
import type { EnvironmentConfig } from '../lib/model/config/environment';
import { RabbitmqSettings as RabbitmqConfig, rabbitmqSettings as rabbitmqSchema } from '../charts/rabbitmq';
import { Layer } from '../lib/model/layers';
import { Platform } from '../lib/model/platform';
import { HomelabService } from '../lib/model/service';
import { Checkpoint } from '../lib/model/checkpoint';
import { dependencyGraph } from '../lib/passes/graph';
import { SynthesizedEnvironment, synthesizePlatform } from '../lib/output/synthesize';
import { ManifestValidator } from '../lib/tools/validate/manifest-validator';
import { IMAGES } from '../charts/versions';
import { emptyPlatform, platformText, Manifest, manifestsOf, parseText, PolicyProvider } from './support';
import { settingsIn } from '../lib/model/catalog';

const WAVE = 'argocd.argoproj.io/sync-wave';

/** The topology an automation layer would ask for: n8n and Home Assistant on one vhost. */
const SAMPLE = {
  enabled: true,
  vhosts: { events: {}, audit: {} },
  users: {
    n8n: { tags: ['management'], permissions: { events: { configure: '^n8n\\.', write: '.*', read: '.*' } } },
    'home-assistant': { permissions: { events: { configure: '', write: '^home$', read: '' } } },
    auditor: { tags: ['monitoring'], permissions: { events: { configure: '', write: '', read: '.*' }, audit: { configure: '', write: '', read: '.*' } } },
  },
  queues: { 'n8n.events': { vhost: 'events', type: 'quorum' } },
  exchanges: { home: { vhost: 'events', type: 'topic' } },
};

const examples = parseText(platformText(), 'homelab.yaml').environments;

interface Built {
  readonly platform: Platform;
  readonly longhorn: Longhorn;
  readonly operators: RabbitmqOperators;
  readonly rabbitmq: Rabbitmq;
}

function build(env: string, settings: Partial<RabbitmqConfig> = {}, config: EnvironmentConfig = examples.get(env)!): Built & { app: App } {
  const app = new App();
  const platform = emptyPlatform(app, env, config);
  new PolicyProvider(platform);
  const longhorn = new Longhorn(platform, settingsIn(config, longhornEntry));
  const operators = new RabbitmqOperators(platform);
  const replicas = env === 'prod' ? 3 : 1;
  const rabbitmq = new Rabbitmq(platform, { storage: longhorn, operators, ...rabbitmqSchema.parse({ ...SAMPLE, replicas, ...settings }) });
  return { app, platform, longhorn, operators, rabbitmq };
}

function synth(env: string): Built & { out: SynthesizedEnvironment; docs: { path: string; manifest: Manifest }[] } {
  const built = build(env);
  const out = synthesizePlatform(built.app, built.platform);
  return { ...built, out, docs: manifestsOf(out) };
}

const dev = synth('dev');
const prod = synth('prod');
const envs = [dev, prod];

const inFolder = (docs: { path: string; manifest: Manifest }[], folder: string) =>
  docs.filter(({ path }) => path.startsWith(`${folder}/`)).map(({ manifest }) => manifest);
const one = (docs: { path: string; manifest: Manifest }[], kind: string, name?: string) =>
  docs.find(({ manifest }) => manifest.kind === kind && (name === undefined || manifest.metadata.name === name))!.manifest;
const clusterOf = (built: typeof dev) => one(built.docs, 'RabbitmqCluster');
const waveOf = (manifest: Manifest) => Number(manifest.metadata.annotations?.[WAVE] ?? 0);

describe('the RabbitMQ services', () => {
  it('validate against the Kubernetes and CRD schemas, every document', () => {
    const validator = ManifestValidator.shared();
    for (const { out, docs } of envs) {
      const problems = docs.flatMap(({ path, manifest }) => validator.validate(manifest).map((p) => `${out.environment}/${path}: ${p}`));
      expect(problems).toEqual([]);
    }
  });

  it('runs one broker in dev and three in prod, each on its own node in prod', () => {
    expect(clusterOf(dev).spec.replicas).toBe(1);
    expect(clusterOf(dev).spec.affinity).toBeUndefined();
    expect(clusterOf(prod).spec.replicas).toBe(3);
    expect(clusterOf(prod).spec.affinity).toEqual({
      podAntiAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          {
            labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'rabbitmq', 'app.kubernetes.io/component': 'rabbitmq' } },
            topologyKey: 'kubernetes.io/hostname',
          },
        ],
      },
    });
  });

  it('only prefers one broker per node when fewer nodes can take a broker than there are replicas', () => {
    const preferred = (config: EnvironmentConfig) => {
      const { app, platform } = build('prod', { replicas: 3 }, config);
      const docs = manifestsOf(synthesizePlatform(app, platform));
      return one(docs, 'RabbitmqCluster').spec.affinity.podAntiAffinity;
    };
    // staging has two nodes.
    expect(preferred(examples.get('staging')!)).toEqual({
      preferredDuringSchedulingIgnoredDuringExecution: [expect.objectContaining({ weight: 100 })],
    });
    // A tainted GPU node takes no broker.
    const prodConfig = examples.get('prod')!;
    const tainted = {
      ...prodConfig,
      nodes: { ...prodConfig.nodes, 'gpu-1': { ...prodConfig.nodes['gpu-1'], taints: [{ key: 'nvidia.com/gpu', effect: 'NoSchedule' as const }] } },
    };
    expect(Object.keys(preferred(tainted))).toEqual(['preferredDuringSchedulingIgnoredDuringExecution']);
  });

  it('keeps broker data on the Longhorn default storage class, with the Prometheus plugin on and a pinned image', () => {
    for (const built of envs) {
      const cluster = clusterOf(built);
      expect(cluster.spec.persistence).toEqual({ storageClassName: built.longhorn.defaultStorageClass, storage: '10Gi' });
      expect(built.longhorn.defaultStorageClass).toBe('longhorn-replicated');
      expect(cluster.spec.rabbitmq.additionalPlugins).toContain('rabbitmq_prometheus');
      expect(cluster.spec.image).toBe(IMAGES.rabbitmq);
      expect(cluster.spec.image).toMatch(/^docker\.io\/library\/rabbitmq:\d+\.\d+\.\d+-management$/);
      expect(cluster.spec.resources).toEqual({ requests: { cpu: '250m', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } });
    }
  });

  it('declares the topology against the cluster, each object on a declared vhost', () => {
    const topology = inFolder(prod.docs, 'rabbitmq').filter((m) => m.apiVersion.startsWith('rabbitmq.com/') && m.kind !== 'RabbitmqCluster');
    expect(topology.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual([
      'Exchange/home',
      'Permission/auditor.audit',
      'Permission/auditor.events',
      'Permission/home-assistant.events',
      'Permission/n8n.events',
      'Queue/n8n.events',
      'User/auditor',
      'User/home-assistant',
      'User/n8n',
      'Vhost/audit',
      'Vhost/events',
    ]);
    const vhosts = topology.filter((m) => m.kind === 'Vhost').map((m) => m.spec.name);
    const users = topology.filter((m) => m.kind === 'User').map((m) => m.metadata.name);
    for (const object of topology) {
      expect(object.metadata.namespace).toBe('rabbitmq');
      expect(object.spec.rabbitmqClusterReference, object.metadata.name).toEqual({ name: clusterOf(prod).metadata.name });
      if (object.kind !== 'Vhost' && object.kind !== 'User') expect(vhosts).toContain(object.spec.vhost);
      // After the broker, and after the vhosts and users they need.
      expect(waveOf(object)).toBeGreaterThan(waveOf(clusterOf(prod)));
      if (['Queue', 'Exchange', 'Permission'].includes(object.kind)) expect(waveOf(object)).toBeGreaterThan(waveOf(one(prod.docs, 'Vhost')));
    }
    const permission = one(prod.docs, 'Permission', 'n8n.events');
    expect(permission.spec).toMatchObject({ vhost: 'events', userReference: { name: 'n8n' }, permissions: { configure: '^n8n\\.', write: '.*', read: '.*' } });
    expect(users).toContain(permission.spec.userReference.name);
    expect(one(prod.docs, 'User', 'n8n').spec).toEqual({ rabbitmqClusterReference: { name: 'rabbitmq' }, tags: ['management'] });
    expect(one(prod.docs, 'Queue').spec).toMatchObject({ name: 'n8n.events', type: 'quorum', durable: true, deletionPolicy: 'retain' });
    expect(one(prod.docs, 'Exchange').spec).toMatchObject({ name: 'home', type: 'topic', durable: true, vhost: 'events' });
  });

  it('writes no Secret and no credential: the operators generate them in the cluster', () => {
    for (const { docs } of envs) {
      expect(docs.filter(({ manifest }) => manifest.kind === 'Secret').map(({ path }) => path)).toEqual([]);
      for (const user of docs.filter(({ manifest }) => manifest.kind === 'User')) {
        expect(user.manifest.spec.importCredentialsSecret).toBeUndefined();
      }
    }
  });

  it('installs the operators from kustomizations pinned to release tags, with images pinned over "latest"', () => {
    for (const { docs } of envs) {
      const application = one(docs, 'Application', 'rabbitmq-operators');
      const kustomizations = application.spec.sources.filter((s: any) => s.kustomize);
      expect(kustomizations).toEqual([
        {
          repoURL: 'https://github.com/rabbitmq/cluster-operator',
          targetRevision: 'v2.22.3',
          path: 'config/installation',
          kustomize: expect.objectContaining({ images: ['ghcr.io/rabbitmq/cluster-operator=ghcr.io/rabbitmq/cluster-operator:2.22.3'] }),
        },
        {
          repoURL: 'https://github.com/rabbitmq/messaging-topology-operator',
          targetRevision: 'v1.20.1',
          path: 'config/installation',
          kustomize: expect.objectContaining({ images: ['rabbitmqoperator/messaging-topology-operator=ghcr.io/rabbitmq/messaging-topology-operator:1.20.1'] }),
        },
      ]);
      for (const source of kustomizations) {
        // Our folder's Namespace (with Pod Security labels) is the only one: upstream copies are deleted.
        expect(source.kustomize.patches).toEqual([
          { target: { kind: 'Namespace', name: 'rabbitmq-system' }, patch: expect.stringMatching(/^\$patch: delete\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: rabbitmq-system\n$/) },
        ]);
        expect(source.targetRevision).toMatch(/^v\d+\.\d+\.\d+$/);
        for (const image of source.kustomize.images) expect(image).toMatch(/=[^:=]+:\d+\.\d+\.\d+$/);
      }
      expect(JSON.stringify(application)).not.toContain('latest');
      // The operators' webhooks get their CA injected by cert-manager after each sync.
      expect(application.spec.ignoreDifferences.map((d: any) => d.kind)).toEqual(['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']);
      expect(application.spec.syncPolicy.syncOptions).toContain('ServerSideApply=true');
      const project = one(docs, 'AppProject').spec;
      expect(project.sourceRepos).toEqual(expect.arrayContaining(['https://github.com/rabbitmq/cluster-operator', 'https://github.com/rabbitmq/messaging-topology-operator']));
      expect(project.destinations.map((d: any) => d.namespace)).toEqual(expect.arrayContaining(['rabbitmq-system', 'rabbitmq']));
    }
  });

  it('syncs RabbitMQ after Longhorn and after the operators that install its CRDs', () => {
    for (const { out, docs } of envs) {
      const appWave = (name: string) => waveOf(one(docs, 'Application', name));
      expect(appWave('rabbitmq')).toBeGreaterThan(appWave('longhorn'));
      expect(appWave('rabbitmq')).toBeGreaterThan(appWave('rabbitmq-operators'));
      expect(out.services.find((s) => s.name === 'rabbitmq')!.dependsOn).toEqual(['longhorn', 'rabbitmq-operators']);
      expect(out.warnings).toEqual(['rabbitmq-operators needs cert-manager.io resources, which no enabled service installs yet']);
    }
  });

  it('syncs the operators after cert-manager once a service installs it', () => {
    const { app, platform } = build('dev');
    new CertManager(platform, certManagerSettings.parse({ enabled: true, email: 'admin@example.net' }));
    const out = synthesizePlatform(app, platform);
    const wave = (name: string) => out.services.find((s) => s.name === name)!.wave;
    expect(out.warnings).toEqual([]);
    expect(wave('rabbitmq-operators')).toBeGreaterThan(wave('cert-manager'));
    expect(wave('rabbitmq')).toBeGreaterThan(wave('rabbitmq-operators'));
  });

  it('requests capacity for the brokers and the operators', () => {
    expect(prod.rabbitmq.demands).toEqual([{ service: 'rabbitmq', workload: 'broker', replicas: 3, cpu: '250m', memory: '1Gi' }]);
    expect(prod.operators.demands.map((d) => `${d.workload} ${d.replicas} x ${d.cpu}/${d.memory}`)).toEqual([
      'cluster-operator 1 x 200m/500Mi',
      'messaging-topology-operator 1 x 300m/128Mi',
    ]);
  });

  it('checks the broker through the management API health checks with the operator-generated admin', () => {
    const job = one(prod.docs, 'Job', 'rabbitmq-checkpoint');
    const container = job.spec.template.spec.containers[0];
    const script: string = container.command[2];
    expect(container.env).toEqual([
      { name: 'RABBITMQ_USERNAME', valueFrom: { secretKeyRef: { name: 'rabbitmq-default-user', key: 'username' } } },
      { name: 'RABBITMQ_PASSWORD', valueFrom: { secretKeyRef: { name: 'rabbitmq-default-user', key: 'password' } } },
    ]);
    expect(script).toContain('http://rabbitmq.rabbitmq.svc:15672/api');
    for (const check of ['reached-target-cluster-size', 'local-alarms', 'port-listener/5672', 'virtual-hosts']) {
      expect(script).toContain(`get health/checks/${check}\n`);
    }
    expect(script).not.toContain('aliveness-test');
    expect(script).toContain('get vhosts/events > /dev/null\n');
  });

  it('checks the operators\' webhooks over TLS, seeing only their CA certificates', () => {
    const job = one(prod.docs, 'Job', 'rabbitmq-operators-checkpoint');
    const spec = job.spec.template.spec;
    expect(spec.volumes.map((v: any) => [v.secret.secretName, v.secret.items])).toEqual([
      ['cluster-operator-webhook-server-cert', [{ key: 'ca.crt', path: 'ca.crt' }]],
      ['webhook-server-cert', [{ key: 'ca.crt', path: 'ca.crt' }]],
    ]);
    expect(spec.containers[0].command[2]).toContain('check cluster-operator-webhook-service /validate-rabbitmq-com-v1beta1-rabbitmqcluster');
    expect(spec.containers[0].command[2]).toContain('check messaging-topology-webhook-service /validate-rabbitmq-com-v1beta1-queue');
  });
});

describe('the consumer handle', () => {
  class Consumer extends HomelabService {
    constructor(scope: Platform, name: string, props: { readonly rabbitmq: Rabbitmq }) {
      super(scope, name, props, { layer: Layer.AUTOMATION, namespace: name });
      new Checkpoint(this, 'checkpoint', { description: 'stub', image: IMAGES.busybox, script: 'true' });
    }
  }
  const withConsumer = () => {
    const built = build('prod');
    const consumer = new Consumer(built.platform, 'consumer', { rabbitmq: built.rabbitmq });
    return { ...built, consumer };
  };

  it('gives host, port, vhost and the credentials Secret, generated in the consumer\'s namespace', () => {
    const { rabbitmq, consumer } = withConsumer();
    expect(rabbitmq.connectionFor(consumer, 'n8n')).toEqual({
      host: 'rabbitmq.rabbitmq.svc',
      port: 5672,
      vhost: 'events',
      user: 'n8n',
      credentialsSecret: 'n8n-user-credentials',
      credentialsNamespace: 'consumer',
      workloadSyncWave: 2,
      // The user's permissions on that vhost, and the queues the config declares there.
      permissions: { configure: '^n8n\\.', write: '.*', read: '.*' },
      declaredQueues: ['n8n.events'],
      service: rabbitmq,
    });
    expect(rabbitmq.connectionFor(consumer, 'auditor', 'audit').vhost).toBe('audit');
  });

  it('moves the user and its permissions into the consumer\'s folder, referencing the cluster across namespaces it allows', () => {
    const { app, platform, rabbitmq, consumer } = withConsumer();
    rabbitmq.connectionFor(consumer, 'n8n');
    const docs = manifestsOf(synthesizePlatform(app, platform));
    const topologyOf = (folder: string) =>
      inFolder(docs, folder)
        .filter((m) => m.kind === 'User' || m.kind === 'Permission')
        .map((m) => `${m.kind}/${m.metadata.namespace}/${m.metadata.name}`)
        .sort();
    expect(topologyOf('consumer')).toEqual(['Permission/consumer/n8n.events', 'User/consumer/n8n']);
    expect(topologyOf('rabbitmq')).toEqual([
      'Permission/rabbitmq/auditor.audit',
      'Permission/rabbitmq/auditor.events',
      'Permission/rabbitmq/home-assistant.events',
      'User/rabbitmq/auditor',
      'User/rabbitmq/home-assistant',
    ]);
    const user = one(docs, 'User', 'n8n');
    const permission = one(docs, 'Permission', 'n8n.events');
    for (const object of [user, permission]) {
      expect(object.spec.rabbitmqClusterReference).toEqual({ name: 'rabbitmq', namespace: 'rabbitmq' });
      expect(ManifestValidator.shared().validate(object)).toEqual([]);
    }
    // The Permission finds its User by name in its own namespace, after it.
    expect(permission.spec.userReference).toEqual({ name: 'n8n' });
    expect(waveOf(permission)).toBeGreaterThan(waveOf(user));
    // The topology operator accepts a cross-namespace reference only from listed namespaces.
    expect(one(docs, 'RabbitmqCluster').metadata.annotations).toEqual({ 'rabbitmq.com/topology-allowed-namespaces': 'consumer' });
    // The consumer emits rabbitmq.com resources: it also syncs after the operators.
    expect(dependencyGraph(platform).nodes.find((n) => n.name === 'consumer')!.dependsOn).toEqual(['rabbitmq', 'rabbitmq-operators']);
  });

  it('lists every consumer namespace on the cluster, and gives a user to one consumer only', () => {
    const { platform, rabbitmq, consumer } = withConsumer();
    const other = new Consumer(platform, 'other', { rabbitmq });
    rabbitmq.connectionFor(other, 'home-assistant');
    rabbitmq.connectionFor(consumer, 'n8n');
    // Asking again is the same connection, not a second user.
    expect(rabbitmq.connectionFor(consumer, 'n8n').credentialsNamespace).toBe('consumer');
    const cluster = rabbitmq.apiObjects.find((o) => o.kind === 'RabbitmqCluster')!;
    expect(cluster.toJson().metadata.annotations).toEqual({ 'rabbitmq.com/topology-allowed-namespaces': 'consumer,other' });
    expect(() => rabbitmq.connectionFor(other, 'n8n')).toThrow('RabbitMQ user "n8n" already connects consumer; declare one user per consumer');
  });

  it('throws for an unknown user, a vhost without permissions, and an ambiguous vhost', () => {
    const { rabbitmq, consumer } = withConsumer();
    expect(() => rabbitmq.connectionFor(consumer, 'grafana')).toThrow('RabbitMQ has no user "grafana" (declared: auditor, home-assistant, n8n)');
    expect(() => rabbitmq.connectionFor(consumer, 'n8n', 'audit')).toThrow('RabbitMQ user "n8n" has no permissions on vhost "audit" (it has: events)');
    expect(() => rabbitmq.connectionFor(consumer, 'auditor')).toThrow('has permissions on several vhosts (events, audit): name the one to connect to');
    // A refused request moves nothing.
    expect(rabbitmq.apiObjects.filter((o) => o.kind === 'User').map((o) => o.name).sort()).toEqual(['auditor', 'home-assistant', 'n8n']);
  });

  it('makes a consumer holding the service depend on RabbitMQ', () => {
    const { rabbitmq, consumer } = withConsumer();
    expect([...consumer.dependencies]).toEqual([rabbitmq]);
  });
});

describe('services.rabbitmq config', () => {
  const issues = (input: unknown) => {
    const result = rabbitmqSchema.safeParse(input);
    // A bad map key is reported by its own check, nested (lib/model/config/load.ts prints it the same way).
    const message = (i: z.core.$ZodIssue) => (i.code === 'invalid_key' ? i.issues[0].message : i.message);
    return result.success ? [] : result.error.issues.map((i: z.core.$ZodIssue) => `${i.path.join('.')}: ${message(i)}`);
  };

  it('fills defaults: disabled, one broker, 10Gi, no topology', () => {
    expect(rabbitmqSchema.parse({})).toEqual({
      enabled: false,
      subdomain: 'rabbitmq',
      replicas: 1,
      storageSize: '10Gi',
      resources: { requests: { cpu: '250m', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } },
      vhosts: {},
      users: {},
      queues: {},
      exchanges: {},
    });
    expect(rabbitmqSchema.parse({ vhosts: { v: {} }, queues: { q: { vhost: 'v' } } }).queues.q).toEqual({ vhost: 'v', type: 'quorum', durable: true });
  });

  it('names the path of a queue, exchange or permission on an undeclared vhost', () => {
    expect(
      issues({
        vhosts: { events: {} },
        users: { n8n: { permissions: { nope: { configure: '', write: '', read: '' } } } },
        queues: { 'home.events': { vhost: 'evnets' } },
        exchanges: { home: { vhost: 'other', type: 'topic' } },
      }),
    ).toEqual([
      'users.n8n.permissions.nope: expected a declared vhost (events), received "nope"',
      'queues.home.events.vhost: expected a declared vhost (events), received "evnets"',
      'exchanges.home.vhost: expected a declared vhost (events), received "other"',
    ]);
    expect(issues({ queues: { q: { vhost: 'events' } } })).toEqual(['queues.q.vhost: expected a declared vhost (none yet, add it under vhosts), received "events"']);
  });

  it('rejects an even broker count, transient quorum queues, bad patterns, typos and names', () => {
    expect(issues({ replicas: 2 })).toEqual([
      'replicas: expected an odd number of nodes (1, 3, 5 or 7): a majority of 2 or 4 nodes tolerates no more failures than one node less',
    ]);
    expect(issues({ vhosts: { v: {} }, queues: { q: { vhost: 'v', type: 'stream', durable: false } } })).toEqual([
      'queues.q.durable: expected true: stream queues are always durable (only classic queues can be transient)',
    ]);
    expect(issues({ vhosts: { v: {} }, queues: { q: { vhost: 'v', type: 'classic', durable: false } } })).toEqual([]);
    expect(issues({ vhosts: { v: {} }, users: { u: { permissions: { v: { configure: '(', write: '', read: '' } } } } })).toEqual([
      'users.u.permissions.v.configure: expected a valid regular expression ("" for none, ".*" for all)',
    ]);
    expect(issues({ vhosts: { v: {} }, exchanges: { e: { vhost: 'v' } } })[0]).toMatch(/^exchanges\.e\.type: expected one of "direct", "topic", "fanout", "headers"/);
    expect(issues({ replica: 3 })[0]).toMatch(/Unrecognized key/i);
    expect(issues({ users: { n8n: { tags: ['admin'] } } })[0]).toMatch(/^users\.n8n\.tags\.0: expected one of "management"/);
    expect(issues({ queues: { 'Home Events': {} } })[0]).toMatch(/^queues\.Home Events: expected a name of lowercase letters/);
  });
});

describe('snapshots', () => {
  it.each(envs.map((built) => [built.out.environment, built.out.files] as const))('%s', (_env, files) => {
    const reviewed = [...files].filter(([path]) => /^(rabbitmq|rabbitmq-operators)\/|^apps\/application-rabbitmq/.test(path));
    expect(reviewed.map(([path, text]) => `=== ${path}\n${text}`).join('\n')).toMatchSnapshot();
  });
});
