/**
 * One of the operator's own apps (Home Assistant, a media server ...) from homelab.yaml:
 * a Deployment, a Service and optionally a Longhorn volume, written with cdk8s-plus.
 */
import { ApiObject, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-34';
import { k8s } from 'cdk8s-plus-34';
import { z } from '../lib/model/config/zod';
import { ConfigIssue, defineService, EnvironmentView, Requirement } from '../lib/model/catalog';
import { Checkpoint } from '../lib/model/checkpoint';
import {
  absolutePath,
  bool,
  duration,
  envVarName,
  externalDestinations,
  intBetween,
  k8sName,
  oneOf,
  pinnedImage,
  resourcesSchema,
  volumeSize,
} from '../lib/model/config/primitives';
import { GPU_RESOURCE, GpuProvider } from '../lib/model/gpu';
import { Layer } from '../lib/model/layers';
import { spreadOverNodes } from '../lib/model/placement';
import type { ContainerException, PodSecurityException } from '../lib/model/pod-security';
import { Platform } from '../lib/model/platform';
import { size, toContainerResources } from '../lib/model/resources';
import { HomelabService } from '../lib/model/service';
import type { StorageProvider } from '../lib/model/storage';
import { IMAGES } from './versions';
import { findCycle } from '../lib/util/cycles';
import { longhornEntry, longhornStorageClassIssues } from './longhorn';
import { nvidiaDevicePluginEntry } from './nvidia-device-plugin';

/** The layers an app can sit in (`waves: sequential`). */
const APP_LAYERS = [Layer.STORAGE, Layer.DATA_MESH, Layer.AI, Layer.OBSERVABILITY, Layer.AUTOMATION, Layer.SECURITY, Layer.NETWORKING] as const;

const portName = z
  .string({ error: 'expected a port name' })
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, { error: 'expected a port name (lowercase letters, digits, "-")' })
  .max(15, { error: 'expected a port name of at most 15 characters' });

/** One of the operator's own apps: `apps.<name>`. */
export const appSettings = z.strictObject({
  enabled: bool.default(true),
  image: pinnedImage,
  replicas: intBetween(0, 20).default(1),
  ports: z.record(portName, intBetween(1, 65535)).default({}),
  env: z.record(envVarName, z.string({ error: 'expected a string (quote numbers and booleans)' })).default({}),
  /**
   * Environment variables whose values are secret: keys of the Secret `<app>-env` in the
   * app's namespace, each read into the variable of the same name (charts/custom-app.ts).
   */
  secretEnv: z.array(envVarName).default([]),
  volume: z
    .strictObject({
      size: volumeSize,
      mountPath: absolutePath,
      /** @default Longhorn's default storage class */
      storageClass: k8sName.optional(),
    })
    .optional(),
  resources: resourcesSchema,
  /** Some images only run as root; their namespace then gets the `baseline` Pod Security level. */
  runAsRoot: bool.default(false),
  /** Numeric user (and group) the container runs as when not root. */
  runAsUser: intBetween(1, 2147483647).default(1000),
  /** Names of services or apps that must be up first. */
  dependsOn: z.array(k8sName).default([]),
  /** A Prometheus metrics endpoint on one of the app's ports: scraped and alerted on when monitoring is enabled. */
  metrics: z
    .strictObject({
      port: portName,
      path: absolutePath.default('/metrics'),
      interval: duration.default('30s'),
    })
    .optional(),
  /** GPUs per replica (`nvidia.com/gpu`), on the GPU nodes; needs services.nvidiaDevicePlugin. */
  gpus: intBetween(0, 16).default(0),
  /**
   * Where the app may connect outside the cluster: each `{to: internet | [CIDR ...], ports: [443, "53/udp" ...]}`
   * (every port without `ports`). @default nothing: in-cluster services it names in dependsOn only
   */
  egress: externalDestinations.default([]),
  /** Where the app sits in `waves: sequential` mode. */
  layer: oneOf(APP_LAYERS).default(Layer.AUTOMATION),
});

/** `apps`: the operator's own apps by name (each its own namespace and Application). */
export const appsSettings = z.record(k8sName, appSettings).default({});

export type AppSettings = z.output<typeof appSettings>;

export type CustomAppMetrics = NonNullable<AppSettings['metrics']>;

export type CustomAppProps = Omit<AppSettings, 'enabled' | 'dependsOn'> & {
  /** Where volumes come from. Required with `volume`. @default none */
  readonly storage?: StorageProvider;
  /** Services that must be up first (the app's `dependsOn`, built). */
  readonly dependsOn: readonly HomelabService[];
  /** Makes the GPUs schedulable (the NVIDIA device plugin). Required with `gpus`. @default none */
  readonly gpuProvider?: GpuProvider;
};

/** An image that only runs as root gets the `baseline` level (`runAsRoot` in homelab.yaml). */
export const ROOT_APP_EXCEPTION: PodSecurityException = {
  level: 'baseline',
  reason: 'the image only runs as root (runAsRoot in homelab.yaml)',
};

/** Every app's container: we do not know what an image writes where. */
export const APP_CONTAINER_EXCEPTION: ContainerException = {
  relaxes: ['readOnlyRootFilesystem'],
  reason: 'apps write outside their volume (caches, /tmp) more often than not',
};

/** An app whose image only runs as root keeps root's default capabilities (its init system changes users and owners). */
export const ROOT_APP_CONTAINER_EXCEPTION: ContainerException = {
  relaxes: ['readOnlyRootFilesystem', 'runAsNonRoot', 'capabilities'],
  reason: `${ROOT_APP_EXCEPTION.reason}, with the capabilities its init system needs`,
};

const COMPONENT = 'app';

/** The Secret, in the app's namespace, an app's `secretEnv` variables come from. */
export function appEnvSecret(app: string): string {
  return `${app}-env`;
}

export class CustomApp extends HomelabService {
  readonly serviceHost: string;

  constructor(scope: Platform, name: string, props: CustomAppProps) {
    const runAsRoot = props.runAsRoot;
    super(scope, name, props, {
      layer: props.layer,
      namespace: name,
      podSecurity: runAsRoot ? ROOT_APP_EXCEPTION : undefined,
      containerException: runAsRoot ? ROOT_APP_CONTAINER_EXCEPTION : APP_CONTAINER_EXCEPTION,
      // The operator's own: in the apps project, without cluster-scoped kinds.
      tenant: true,
    });
    if (props.volume && !props.storage) throw new Error(`${name}: a volume needs a storage provider`);
    const gpus = props.gpus;
    if (gpus > 0 && !props.gpuProvider) throw new Error(`${name}: GPUs need a GPU provider`);
    const overlap = props.secretEnv.filter((variable) => variable in props.env);
    if (overlap.length > 0) throw new Error(`${name}: ${overlap.join(', ')} both in env and secretEnv`);
    if (props.metrics && !(props.metrics.port in props.ports)) {
      throw new Error(`${name}: the metrics port "${props.metrics.port}" is not one of its ports`);
    }

    const plainEnv = Object.fromEntries(Object.entries(props.env).map(([key, value]) => [key, kplus.EnvValue.fromValue(value)]));
    const selector = this.selectorFor(COMPONENT);
    const uid = props.runAsUser;
    const deployment = new kplus.Deployment(this, 'deployment', {
      metadata: { name, labels: this.labelsFor(COMPONENT) },
      replicas: props.replicas,
      select: false,
      podMetadata: { labels: selector },
      // A single RWO volume cannot be attached to two pods during a rolling update.
      strategy: props.volume ? kplus.DeploymentStrategy.recreate() : kplus.DeploymentStrategy.rollingUpdate(),
      automountServiceAccountToken: false,
      securityContext: runAsRoot
        ? { ensureNonRoot: false }
        : { ensureNonRoot: true, user: uid, group: uid, fsGroup: uid },
    });
    deployment.select(kplus.LabelSelector.of({ labels: selector }));
    const container = deployment.addContainer({
      name,
      image: props.image,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      resources: toContainerResources(props.resources),
      ports: Object.entries(props.ports).map(([portName, number]) => ({ name: portName, number })),
      envVariables: { ...plainEnv, ...this.secretEnv(name, props.secretEnv) },
      securityContext: runAsRoot
        ? { ensureNonRoot: false, readOnlyRootFilesystem: false, allowPrivilegeEscalation: false, seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT } }
        : {
            ensureNonRoot: true,
            user: uid,
            group: uid,
            // Apps write outside their volume (caches, /tmp) more often than not.
            readOnlyRootFilesystem: false,
            allowPrivilegeEscalation: false,
            capabilities: { drop: [kplus.Capability.ALL] },
            seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT },
          },
    });
    // cdk8s-plus adds a label derived from the construct path: keep pods independent of it.
    ApiObject.of(deployment).addJsonPatch(JsonPatch.remove('/spec/template/metadata/labels/cdk8s.io~1metadata.addr'));
    // More than one replica: spread over the nodes, and a node drain never takes all of them.
    const spread = props.replicas > 1 ? spreadOverNodes(selector) : undefined;
    if (gpus > 0 && props.gpuProvider) this.placeOnGpus(ApiObject.of(deployment), gpus, props.gpuProvider, spread);
    else if (spread) this.patchManifest(ApiObject.of(deployment), JsonPatch.add('/spec/template/spec/affinity', k8s.toJson_Affinity(spread)));
    if (spread) {
      new k8s.KubePodDisruptionBudget(this, 'disruption-budget', {
        metadata: { name, labels: this.labelsFor(COMPONENT) },
        spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: selector } },
      });
    }

    if (props.volume && props.storage) {
      const claim = new kplus.PersistentVolumeClaim(this, 'data', {
        metadata: { name: `${name}-data`, labels: this.labelsFor(COMPONENT) },
        accessModes: [kplus.PersistentVolumeAccessMode.READ_WRITE_ONCE],
        storage: size(props.volume.size),
        storageClassName: props.storage.storageClass(props.volume.storageClass),
      });
      container.mount(props.volume.mountPath, kplus.Volume.fromPersistentVolumeClaim(this, 'data-volume', claim, { name: 'data' }));
    }

    const ports = Object.entries(props.ports);
    this.serviceHost = `${name}.${name}.svc`;
    if (ports.length > 0) {
      const service = new kplus.Service(this, 'service', {
        metadata: { name, labels: this.labelsFor(COMPONENT) },
        ports: ports.map(([portName, number]) => ({ name: portName, port: number, targetPort: number })),
      });
      for (const [key, value] of Object.entries(selector)) service.selectLabel(key, value);
    }

    this.requestCapacity(COMPONENT, props.replicas, props.resources.requests, gpus);
    this.addCheckpoint(ports[0]);
    this.addMonitoring(props.metrics);
    // Every port, for the services that name this app in their dependsOn.
    this.serveClients(...ports.map(([, number]) => ({ port: number, podSelector: selector })));
    if (props.egress.length > 0) {
      this.allowEgress({ name: 'external', podSelector: selector, to: { kind: 'external', destinations: props.egress }, reason: `${name} connects outside the cluster (apps.${name}.egress)` });
    }
  }

  /** The `secretEnv` variables, from the keys of the app's declared Secret. */
  private secretEnv(name: string, variables: readonly string[]): Record<string, kplus.EnvValue> {
    if (variables.length === 0) return {};
    const env = this.needSecret(appEnvSecret(name), variables, `environment variables of the app ${name}: ${[...variables].sort().join(', ')}`);
    const secret = kplus.Secret.fromSecretName(this, 'env-secret', env.secretName);
    return Object.fromEntries(variables.map((variable) => [variable, kplus.EnvValue.fromSecretValue({ secret, key: env.keySelector(variable).key })]));
  }

  /**
   * The app's own metrics if it serves any (its Service carries the port). Either way, its
   * Deployment's availability from kube-state-metrics, which the monitoring stack scrapes:
   * an app without metrics still gets an alert when it is down.
   */
  private addMonitoring(metrics: CustomAppMetrics | undefined): void {
    if (metrics) {
      this.exposeMetrics({
        name: COMPONENT,
        kind: 'service',
        selector: this.selectorFor(COMPONENT),
        port: metrics.port,
        // The container port has the Service port's name.
        podPort: metrics.port,
        podSelector: this.selectorFor(COMPONENT),
        path: metrics.path,
        interval: metrics.interval,
      });
    }
    this.addAlerts({
      alert: 'AppReplicasUnavailable',
      expr: `kube_deployment_status_replicas_unavailable{namespace="${this.namespaceName}", deployment="${this.serviceName}"} > 0`,
      for: '15m',
      severity: 'warning',
      summary: `${this.serviceName}: {{ $value }} replica(s) unavailable for 15 minutes`,
      description: 'Pods are not ready: crash loop, failing readiness, unschedulable or an image that cannot be pulled.',
    });
  }

  /** cdk8s-plus has no GPU field: the limit, RuntimeClass and GPU-node placement are patched into the manifest. */
  private placeOnGpus(deployment: ApiObject, gpus: number, provider: GpuProvider, spread: k8s.Affinity | undefined): void {
    const pod = '/spec/template/spec';
    const { affinity, tolerations } = provider.gpuScheduling;
    this.patchManifest(
      deployment,
      JsonPatch.add(`${pod}/containers/0/resources/limits/${GPU_RESOURCE.replace('/', '~1')}`, String(gpus)),
      JsonPatch.add(`${pod}/runtimeClassName`, provider.runtimeClassName),
      JsonPatch.add(`${pod}/affinity`, k8s.toJson_Affinity({ ...affinity, ...spread })),
      ...(tolerations ? [JsonPatch.add(`${pod}/tolerations`, tolerations.map((t) => k8s.toJson_Toleration(t)))] : []),
    );
  }

  /** The app answers on its first port; without ports, its Deployment is available (Argo CD health). */
  private addCheckpoint(port: [string, number] | undefined): void {
    const url = port ? `http://${this.serviceHost}:${port[1]}/` : undefined;
    new Checkpoint(this, 'checkpoint', {
      description: url ? `${url} accepts connections` : 'the Deployment is available',
      image: IMAGES.curl,
      // Any HTTP status (even 401) proves the app listens; only connection errors fail.
      script: url
        ? `curl -sS -o /dev/null --retry 10 --retry-delay 6 --retry-connrefused --max-time 10 -w "%{http_code}\\n" "${url}"`
        : 'echo "no ports: Argo CD already waited for the Deployment to be available"',
    });
  }
}

/** An app's checks against the environment (what its config alone cannot tell). */
function appIssues(name: string, app: AppSettings, env: EnvironmentView, dependable: ReadonlySet<string>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (env.reservedNames.has(name)) {
    issues.push({ path: [name], message: `expected another name: "${name}" is taken by a built-in service, its namespace, an output folder or the backup target's keys` });
  }
  if (!app.enabled) return issues;
  app.dependsOn.forEach((dep, i) => {
    if (dep === name) {
      issues.push({ path: [name, 'dependsOn', i], message: 'expected another service: an app cannot depend on itself' });
    } else if (!dependable.has(dep)) {
      const known = [...dependable].sort().join(', ');
      issues.push({ path: [name, 'dependsOn', i], message: `expected an enabled service or app (${known}), received "${dep}"` });
    }
  });
  app.secretEnv.forEach((variable, i) => {
    if (variable in app.env) {
      issues.push({ path: [name, 'secretEnv', i], message: `expected a variable not in env: "${variable}" is set there already` });
    } else if (app.secretEnv.indexOf(variable) !== i) {
      issues.push({ path: [name, 'secretEnv', i], message: `expected each variable once: "${variable}" is listed twice` });
    }
  });
  if (app.metrics && !(app.metrics.port in app.ports)) {
    issues.push({
      path: [name, 'metrics', 'port'],
      message: `expected one of the app's ports (${Object.keys(app.ports).join(', ') || 'none'}), received "${app.metrics.port}"`,
    });
  }
  if (app.volume && app.replicas > 1) {
    issues.push({ path: [name, 'replicas'], message: `expected at most 1 with a volume (a ReadWriteOnce volume attaches to one pod), received ${app.replicas}` });
  }
  issues.push(...longhornStorageClassIssues(env, [name, 'volume', 'storageClass'], app.volume?.storageClass));
  return issues;
}

const enabledApps = (apps: Readonly<Record<string, AppSettings>>) => Object.entries(apps).filter(([, app]) => app.enabled);

export const appsEntry = defineService({
  name: 'apps',
  settings: { key: 'apps', topLevel: true, schema: appsSettings },
  // The entry's checks run whenever there are apps; each app is built when its own `enabled` says so.
  enabled: (apps) => Object.keys(apps).length > 0,
  names: [],
  serviceNames: (apps) => enabledApps(apps).map(([name]) => name),
  requires: (apps) =>
    enabledApps(apps).flatMap(([name, app]): Requirement[] => [
      ...(app.gpus > 0 ? [{ entry: nvidiaDevicePluginEntry, path: [name, 'gpus'], reason: 'GPUs are schedulable only through the device plugin' }] : []),
      ...(app.volume ? [{ entry: longhornEntry, path: [name, 'volume'], reason: 'a volume needs Longhorn' }] : []),
    ]),
  check: (apps, env) => {
    const enabled = enabledApps(apps);
    const names = new Set(enabled.map(([name]) => name));
    // The services created before the apps, and the other apps.
    const dependable = new Set([...env.servicesBefore, ...names]);
    const issues = Object.entries(apps).flatMap(([name, app]) => appIssues(name, app, env, dependable));
    const cycle = findCycle(enabled.map(([name, app]) => ({ name, dependsOn: app.dependsOn.filter((d) => names.has(d) && d !== name) })));
    if (cycle) issues.push({ path: [cycle[0], 'dependsOn'], message: `expected no dependency cycle, found ${cycle.join(' -> ')}` });
    return issues;
  },
  // Apps may depend on each other: each is created after what it depends on (the config check
  // has rejected unknown names and cycles).
  build: (platform, apps, context) => {
    const built = new Map(context.services.map((service) => [service.serviceName, service]));
    const pending = new Map(enabledApps(apps));
    while (pending.size > 0) {
      const ready = [...pending].filter(([, app]) => app.dependsOn.every((dep) => built.has(dep)));
      if (ready.length === 0) throw new Error(`apps: cannot create ${[...pending.keys()].join(', ')}: dependencies missing or cyclic`);
      for (const [name, app] of ready) {
        built.set(
          name,
          new CustomApp(platform, name, {
            ...app,
            dependsOn: app.dependsOn.map((dep) => built.get(dep)).filter((dep): dep is HomelabService => dep !== undefined),
            storage: app.volume ? context.required(longhornEntry) : undefined,
            gpuProvider: app.gpus > 0 ? context.required(nvidiaDevicePluginEntry) : undefined,
          }),
        );
        pending.delete(name);
      }
    }
  },
});
