/**
 * fast-check arbitraries of valid homelab configs: random subsets of the built-in services
 * (with what each requires), node inventories with and without GPUs and taints, the operator's
 * own apps with random dependencies, volumes, metrics, secrets, GPUs, probes, exposures, files and security settings, and environments that
 * override the base. Every generated config is valid by construction; the property tests check
 * that the platform synthesizes it and that every invariant holds, and that breaking it is
 * reported at its path.
 */
import fc from 'fast-check';
import { stringify } from 'yaml';

/** A generated config, printed as the YAML it is when fast-check reports a counterexample. */
export interface GeneratedConfig {
  readonly config: Record<string, any>;
  readonly text: string;
}

const RESOURCES = { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '200m', memory: '128Mi' } };
const APP_NAMES = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'] as const;
const ENVIRONMENTS = ['dev', 'staging', 'prod'] as const;
/** Built-in services an app may depend on (created before the apps), by the setting that enables them. */
const DEPENDABLE: Readonly<Record<string, string>> = { longhorn: 'longhorn', rabbitmq: 'rabbitmq', cloudnativePg: 'cloudnative-pg', vault: 'vault', loki: 'loki', n8n: 'n8n' };

const node = (gpus: number, tainted: boolean) => ({
  role: 'worker',
  cpu: 16,
  memory: '64Gi',
  ...(gpus > 0 ? { gpus } : {}),
  ...(tainted ? { taints: [{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }] } : {}),
});

/** A probe on the app's http port, of a generated kind. */
const probeOf = (kind: 'http' | 'tcp' | 'exec', failureThreshold: number) =>
  kind === 'http'
    ? { http: { port: 'http', path: '/healthz' }, failureThreshold }
    : kind === 'tcp'
      ? { tcp: { port: 'http' }, failureThreshold }
      : { exec: { command: ['cat', '/tmp/healthy'] }, failureThreshold };

const appArbitrary = (name: string, earlier: readonly string[], services: readonly string[], options: { gpus: boolean; longhorn: boolean; routing: boolean; singleSignOn: boolean }) =>
  fc
    .record({
      replicas: fc.integer({ min: 0, max: 3 }),
      metrics: fc.boolean(),
      volume: options.longhorn ? fc.boolean() : fc.constant(false),
      extraVolume: options.longhorn ? fc.boolean() : fc.constant(false),
      gpus: options.gpus ? fc.integer({ min: 0, max: 1 }) : fc.constant(0),
      secretEnv: fc.boolean(),
      runAsRoot: fc.boolean(),
      egress: fc.constantFrom('none', 'internet', 'lan'),
      dependsOn: fc.subarray([...earlier, ...services], { maxLength: Math.min(2, earlier.length + services.length) }),
      layer: fc.constantFrom('automation', 'data-mesh', 'observability'),
      readiness: fc.constantFrom('http', 'tcp', 'exec', 'none'),
      liveness: fc.boolean(),
      startup: fc.boolean(),
      expose: options.routing ? fc.constantFrom('none', 'public', 'admin', ...(options.singleSignOn ? ['sso', 'oidc'] : [])) : fc.constant('none'),
      command: fc.boolean(),
      files: fc.integer({ min: 0, max: 2 }),
      writablePaths: fc.boolean(),
      capabilities: fc.constantFrom('none', 'NET_BIND_SERVICE', 'CHOWN'),
      hostNetwork: fc.boolean(),
      devices: fc.boolean(),
      runAsGroup: fc.boolean(),
    })
    .map((a) => ({
      image: `ghcr.io/example/${name}:1.${a.replicas}.0`,
      // A volume attaches to one pod; GPU apps stay at one replica so that the GPUs suffice.
      replicas: a.volume || a.extraVolume || a.gpus > 0 ? 1 : a.replicas,
      ports: a.metrics ? { http: 8080, metrics: 9100 } : { http: 8080 },
      env: { APP_NAME: name },
      ...(a.command ? { command: ['/bin/app'], args: ['--listen', ':8080'] } : {}),
      ...(a.secretEnv ? { secretEnv: ['API_TOKEN'] } : {}),
      ...(a.volume ? { volume: { size: '1Gi', mountPath: '/data' } } : {}),
      ...(a.extraVolume ? { volumes: { media: { size: '2Gi', mountPath: '/media' } } } : {}),
      ...(a.files > 0 ? { files: Array.from({ length: a.files }, (_, i) => ({ path: `/etc/${name}/config-${i}.yaml`, content: `name: ${name}\nindex: ${i}\n` })) } : {}),
      probes:
        a.readiness === 'none'
          ? { none: 'a worker that serves nothing to probe' }
          : {
              readiness: probeOf(a.readiness, 3),
              ...(a.liveness ? { liveness: probeOf(a.readiness, 6) } : {}),
              ...(a.startup ? { startup: probeOf(a.readiness, 30) } : {}),
            },
      ...(a.expose !== 'none'
        ? {
            expose: {
              subdomain: `${name}-ui`,
              protection: a.expose,
              ...(a.metrics ? { port: 'http', hiddenPaths: ['/metrics'] } : {}),
              // An OIDC client says where it sends users back to.
              ...(a.expose === 'oidc' ? { oidc: { redirectPaths: ['/auth/callback'] } } : {}),
            },
          }
        : {}),
      ...(a.metrics ? { metrics: { port: 'metrics' } } : {}),
      ...(a.gpus > 0 ? { gpus: a.gpus } : {}),
      ...(a.runAsRoot ? { runAsRoot: true } : {}),
      ...(a.runAsGroup && !a.runAsRoot ? { runAsGroup: 2000 } : {}),
      ...(a.writablePaths ? { writablePaths: ['/tmp', '/var/cache/app'] } : {}),
      // Only root keeps capabilities (a process that is not root gets none).
      ...(a.capabilities !== 'none' && a.runAsRoot ? { capabilities: [a.capabilities] } : {}),
      ...(a.hostNetwork ? { hostNetwork: { reason: 'discovers devices on the LAN by mDNS' } } : {}),
      ...(a.devices ? { devices: [{ path: '/dev/ttyUSB0', reason: 'a Zigbee dongle' }] } : {}),
      ...(a.egress === 'internet' ? { egress: [{ to: 'internet', ports: [443] }] } : {}),
      ...(a.egress === 'lan' ? { egress: [{ to: ['192.168.1.0/24'], ports: [1883, '5353/udp'] }] } : {}),
      resources: RESOURCES,
      dependsOn: a.dependsOn,
      layer: a.layer,
    }));

export const validConfig: fc.Arbitrary<GeneratedConfig> = fc
  .record({
    nodes: fc.integer({ min: 1, max: 4 }),
    gpuNode: fc.boolean(),
    taintGpuNode: fc.boolean(),
    timeSlicing: fc.boolean(),
    waves: fc.constantFrom('dependencies', 'dependencies', 'sequential'),
    longhorn: fc.boolean(),
    longhornReplicas: fc.integer({ min: 1, max: 3 }),
    backup: fc.boolean(),
    rabbitmq: fc.boolean(),
    triton: fc.boolean(),
    tritonS3: fc.boolean(),
    /** With the object store: Triton's model repository in a bucket of it. */
    tritonBucket: fc.boolean(),
    ray: fc.boolean(),
    rayGpus: fc.boolean(),
    monitoring: fc.boolean(),
    loki: fc.boolean(),
    lokiS3: fc.boolean(),
    alloy: fc.boolean(),
    tempo: fc.boolean(),
    networking: fc.boolean(),
    tunnel: fc.boolean(),
    dns: fc.boolean(),
    /** Where the records point: an address, a hostname, or Traefik's loadBalancerIP. */
    dnsTarget: fc.constantFrom('192.168.1.240', 'fd00::240', 'edge.example.org', '203.0.113.10', 'loadBalancerIP'),
    dnsProxied: fc.boolean(),
    vault: fc.boolean(),
    externalSecrets: fc.boolean(),
    objectStore: fc.boolean(),
    database: fc.boolean(),
    /** Authentik, where its database (CloudNativePG) and Traefik are on. */
    singleSignOn: fc.boolean(),
    n8n: fc.boolean(),
    n8nBroker: fc.boolean(),
    networkPolicies: fc.boolean(),
    egress: fc.boolean(),
    apps: fc.integer({ min: 0, max: APP_NAMES.length }),
    environments: fc.integer({ min: 1, max: 3 }),
    manualProd: fc.boolean(),
  })
  .chain((c) => {
    const longhorn = c.longhorn || c.rabbitmq || c.monitoring || c.vault || c.externalSecrets || c.tempo || c.objectStore || c.database;
    const gpus = c.gpuNode;
    const services: Record<string, any> = {
      longhorn: longhorn
        ? {
            enabled: true,
            replicas: Math.min(c.longhornReplicas, c.nodes + (gpus ? 1 : 0)),
            ...(c.backup ? { recurringJobs: { nightly: { task: 'backup', cron: '0 3 * * *', retain: 7 } } } : {}),
          }
        : { enabled: false },
      networkPolicies: { enabled: c.networkPolicies, egress: { enabled: c.egress } },
    };
    if (c.rabbitmq) {
      services.rabbitmq = { enabled: true, vhosts: { home: {} }, users: { automation: { permissions: { home: { configure: '.*', write: '.*', read: '.*' } } } } };
    }
    if (gpus) services.nvidiaDevicePlugin = { enabled: true, ...(c.timeSlicing ? { timeSlicing: { replicasPerGpu: 2 } } : {}) };
    // Triton and Ray run everywhere: on the GPUs where the device plugin advertises them, else on CPU.
    if (c.triton) {
      services.triton = {
        enabled: true,
        modelRepository: c.objectStore && c.tritonBucket ? { objectStore: {} } : c.tritonS3 || !longhorn ? { s3: { url: 's3://models/triton' } } : { volume: { size: '10Gi' } },
      };
    }
    if (c.ray) {
      services.ray = {
        enabled: true,
        workerGroups: {
          cpu: { maxReplicas: 2, resources: { requests: { cpu: '500m', memory: '2Gi' }, limits: { cpu: '1', memory: '4Gi' } } },
          // Without GPU nodes the gpu group is left out; with them it needs the device plugin above.
          ...(c.rayGpus ? { gpu: { maxReplicas: 1, gpusPerWorker: 1, resources: { requests: { cpu: '500m', memory: '2Gi' }, limits: { cpu: '1', memory: '4Gi' } } } } : {}),
        },
      };
    }
    if (c.monitoring) services.monitoring = { enabled: true };
    if (c.loki || c.alloy) {
      services.loki = {
        enabled: true,
        storage: c.objectStore ? { objectStore: {} } : c.lokiS3 || !longhorn ? { s3: { endpoint: 'http://minio.minio.svc:9000', buckets: { chunks: 'loki-chunks', ruler: 'loki-ruler' } } } : { volume: { size: '10Gi' } },
      };
    }
    if (c.alloy) services.alloy = { enabled: true };
    // Tempo on Longhorn; with Alloy it receives the services' traces.
    if (c.tempo) services.tempo = { enabled: true };
    if (c.networking || c.tunnel) {
      services.certManager = { enabled: true, email: 'admin@example.net' };
      services.traefik = { enabled: true, adminAccess: { allowList: ['192.168.1.0/24'] } };
    }
    if (c.tunnel) services.cloudflared = { enabled: true, tunnelId: '6ff42ae2-765d-4adf-8112-31c55c1551ef' };
    // DNS records of the routed hosts (with the tunnel: its CNAME for the public ones).
    if ((c.networking || c.tunnel) && c.dns) {
      const lan = c.dnsTarget === 'loadBalancerIP' || c.dnsTarget.startsWith('192.168.') || c.dnsTarget.startsWith('fd00:');
      if (c.dnsTarget === 'loadBalancerIP') services.traefik.loadBalancerIP = '192.168.1.240';
      services.externalDns = {
        enabled: true,
        cloudflare: { zoneId: '023e105f4ecef8ad9ca31a8372d0c353' },
        ...(c.dnsTarget === 'loadBalancerIP' ? {} : { target: c.dnsTarget }),
        // Cloudflare's proxy cannot reach a LAN address.
        proxied: c.dnsProxied && !lan,
      };
    }
    // The object store needs Vault and External Secrets: its keys are generated and delivered.
    if (c.vault || c.externalSecrets || c.objectStore) services.vault = { enabled: true };
    if (c.externalSecrets || c.objectStore) services.externalSecrets = { enabled: true };
    if (c.objectStore) services.seaweedfs = { enabled: true, storageSize: '10Gi' };
    // Single sign-on: its database on CloudNativePG, its keys from Vault, its login page through Traefik.
    const singleSignOn = c.singleSignOn && c.database && (c.networking || c.tunnel);
    if (singleSignOn) {
      services.vault = { enabled: true };
      services.externalSecrets = { enabled: true };
      services.authentik = { enabled: true, database: { instances: Math.min(2, c.nodes) } };
    }
    // The PostgreSQL operator (its clusters on Longhorn); n8n then keeps its data in a cluster of its own.
    if (c.database) services.cloudnativePg = { enabled: true };
    // With a backup target the databases are archived by the Barman Cloud plugin, whose certificates come from cert-manager.
    if (c.database && c.backup) services.certManager ??= { enabled: true, email: 'admin@example.net' };
    if (c.n8n) {
      services.n8n = {
        enabled: true,
        ...(c.database
          ? { database: { cloudnativePg: { instances: Math.min(2, c.nodes) } } }
          : longhorn
            ? {}
            : { database: { postgres: { host: 'postgres.db.svc' } } }),
        ...(c.n8nBroker && c.rabbitmq ? { rabbitmq: { user: 'automation' } } : {}),
      };
    }
    const nodes: Record<string, any> = {};
    for (let i = 1; i <= c.nodes; i++) nodes[`node-${i}`] = { ...node(0, false), role: i === 1 ? 'control-plane' : 'worker' };
    if (gpus) nodes['gpu-1'] = node(4, c.taintGpuNode);
    // Sequential waves: an app may only use what an earlier or its own layer brings.
    const sequential = c.waves === 'sequential';
    const dependable = Object.entries(DEPENDABLE)
      .filter(([key]) => services[key]?.enabled)
      .map(([, name]) => name)
      .filter((name) => !sequential || ['longhorn', 'rabbitmq'].includes(name));
    const names = APP_NAMES.slice(0, c.apps);
    const apps = names.map((name, i) =>
      // Triton and a Ray GPU worker take two of the GPU node's four: two apps may have one each.
      appArbitrary(name, names.slice(0, i), dependable, { gpus: gpus && i < 2, longhorn, routing: c.networking || c.tunnel, singleSignOn: Boolean(services.authentik) }).map((app) => (sequential ? { ...app, layer: 'automation' } : app)),
    );
    return fc.tuple(fc.constant({ c, services, nodes }), fc.tuple(...apps), fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 3, maxLength: 3 }));
  })
  .map(([{ c, services, nodes }, apps, replicas]) => {
    const names = APP_NAMES.slice(0, apps.length);
    const environments: Record<string, any> = {};
    ENVIRONMENTS.slice(0, c.environments).forEach((name, i) => {
      const overrides: Record<string, any> = { domain: `${name}.home.example.net` };
      // Each environment changes something: the replicas of an app without a volume, the sync mode.
      const scalable = names.filter((_, j) => !('volume' in apps[j]) && !('volumes' in apps[j]) && !('gpus' in apps[j]));
      if (scalable.length > 0) overrides.apps = { [scalable[i % scalable.length]]: { replicas: replicas[i] } };
      if (name === 'prod' && c.manualProd) overrides.sync = { mode: 'manual' };
      environments[name] = overrides;
    });
    const config = {
      domain: 'home.example.net',
      git: { repoURL: 'https://git.example.net/homelab.git', revision: 'main' },
      waves: c.waves,
      ...(c.backup ? { backup: { target: 's3://homelab-backups@us-east-1/homelab/', endpoint: 'https://s3.backup.example.net' } } : {}),
      nodes,
      services,
      apps: Object.fromEntries(names.map((name, i) => [name, apps[i]])),
      environments,
    };
    const text = stringify(config);
    return { config, text, [fc.toStringMethod]: () => `\n${text}` } as GeneratedConfig;
  });

/** A way to break a valid config, and the path its error must name. */
export interface Breakage {
  readonly path: string;
  readonly apply: (config: Record<string, any>) => void;
}

/** Breakages every generated config admits (they touch settings every config has). */
export const breakage: fc.Arbitrary<Breakage> = fc.constantFrom<Breakage>(
  { path: 'services.longhorn.replicas', apply: (c) => (c.services.longhorn.replicas = 'three') },
  { path: 'services.longhorn.replika', apply: (c) => (c.services.longhorn.replika = 2) },
  { path: 'nodes.node-1.cpu', apply: (c) => (c.nodes['node-1'].cpu = -1) },
  { path: 'git.revision', apply: (c) => (c.git.revision = '') },
  { path: 'sync.retry.limit', apply: (c) => (c.sync = { retry: { limit: 999 } }) },
  { path: 'sync.retry.limit', apply: (c) => (c.sync = { retry: { limit: 0 } }) },
  { path: 'services.longhorn.recurringJobs.nightly.cron', apply: (c) => (c.services.longhorn.recurringJobs = { nightly: { task: 'snapshot', cron: '0 24 * * *', retain: 3, groups: ['default'] } }) },
  { path: 'apps.kube-system', apply: (c) => (c.apps['kube-system'] = { image: 'ghcr.io/example/omega:1.0.0', resources: RESOURCES, probes: { none: 'a worker' } }) },
  { path: 'services.networkPolicies.apiServerSources', apply: (c) => (c.services.networkPolicies.apiServerSources = []) },
  { path: 'waves', apply: (c) => (c.waves = 'parallel') },
  { path: 'services.networkPolicies.egress.apiServerPort', apply: (c) => (c.services.networkPolicies.egress = { apiServerPort: 0 }) },
  { path: 'apps.omega.egress.0.to', apply: (c) => (c.apps.omega = { image: 'ghcr.io/example/omega:1.0.0', resources: RESOURCES, probes: { none: 'a worker' }, egress: [{ to: 'anywhere' }] }) },
  { path: 'services.externalDns.ttl', apply: (c) => (c.services.externalDns = { ...c.services.externalDns, ttl: 5 }) },
  { path: 'apps.Bad_Name', apply: (c) => (c.apps.Bad_Name = { image: 'ghcr.io/example/bad:1.0.0', resources: RESOURCES, probes: { none: 'a worker' } }) },
  { path: 'apps.omega.image', apply: (c) => (c.apps.omega = { image: 'ghcr.io/example/omega:latest', resources: RESOURCES, probes: { none: 'a worker' } }) },
  { path: 'apps.omega.dependsOn.0', apply: (c) => (c.apps.omega = { image: 'ghcr.io/example/omega:1.0.0', resources: RESOURCES, probes: { none: 'a worker' }, dependsOn: ['no-such-service'] }) },
  { path: 'apps.omega.probes', apply: (c) => (c.apps.omega = { image: 'ghcr.io/example/omega:1.0.0', resources: RESOURCES }) },
  {
    path: 'apps.omega.expose.protection',
    apply: (c) => (c.apps.omega = { image: 'ghcr.io/example/omega:1.0.0', resources: RESOURCES, ports: { http: 80 }, probes: { none: 'a worker' }, expose: { subdomain: 'omega', protection: 'kerberos' } }),
  },
  {
    path: 'apps.omega.files.0.from',
    apply: (c) => (c.apps.omega = { image: 'ghcr.io/example/omega:1.0.0', resources: RESOURCES, probes: { none: 'a worker' }, files: [{ path: '/etc/omega.conf', from: 'no-such-file.conf' }] }),
  },
);
