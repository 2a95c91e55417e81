/**
 * One of the operator's own apps (Home Assistant, a media server ...) from homelab.yaml:
 * a Deployment, a Service and optionally a Longhorn volume, written with cdk8s-plus-28.
 */
import { ApiObject, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Checkpoint } from '../lib/model/checkpoint';
import { GPU_RESOURCE, GpuProvider } from '../lib/model/gpu';
import { Layer } from '../lib/model/layers';
import { Platform } from '../lib/model/platform';
import { Resources, size, toContainerResources } from '../lib/model/resources';
import { HomelabService } from '../lib/model/service';
import type { StorageProvider } from '../lib/model/storage';
import { IMAGES } from './versions';

export interface CustomAppVolume {
  /** Whole Gi or Ti, e.g. `10Gi`. */
  readonly size: string;
  readonly mountPath: string;
  /** @default the storage provider's default class */
  readonly storageClass?: string;
}

/** Prometheus metrics an app serves itself. */
export interface CustomAppMetrics {
  /** Name of one of the app's `ports`. */
  readonly port: string;
  /** @default '/metrics' */
  readonly path?: string;
  /** @default '30s' */
  readonly interval?: string;
}

export interface CustomAppProps {
  /** Image with a pinned tag. */
  readonly image: string;
  readonly resources: Resources;
  /** @default 1 */
  readonly replicas?: number;
  /** Named container ports, also exposed on the Service. @default none */
  readonly ports?: Readonly<Record<string, number>>;
  /** @default none */
  readonly env?: Readonly<Record<string, string>>;
  /** Variables read from the keys of the same names of the Secret `<name>-env` (appEnvSecret). @default none */
  readonly secretEnv?: readonly string[];
  /** A persistent volume; needs `storage`. @default none */
  readonly volume?: CustomAppVolume;
  /** Where volumes come from. Required with `volume`. @default none */
  readonly storage?: StorageProvider;
  /** Services that must be up first. @default none */
  readonly dependsOn?: readonly HomelabService[];
  /** For images that only run as root: the namespace gets Pod Security `baseline`. @default false */
  readonly runAsRoot?: boolean;
  /** User and group the container runs as when not root. @default 1000 */
  readonly runAsUser?: number;
  /** @default Layer.AUTOMATION */
  readonly layer?: Layer;
  /** GPUs per replica (`nvidia.com/gpu`); needs `gpuProvider`. @default 0 */
  readonly gpus?: number;
  /** Makes the GPUs schedulable (the NVIDIA device plugin). Required with `gpus`. @default none */
  readonly gpuProvider?: GpuProvider;
  /** Metrics served on one of `ports`, scraped through the Service. @default not scraped */
  readonly metrics?: CustomAppMetrics;
}

const COMPONENT = 'app';

/** The Secret, in the app's namespace, an app's `secretEnv` variables come from. */
export function appEnvSecret(app: string): string {
  return `${app}-env`;
}

export class CustomApp extends HomelabService {
  readonly serviceHost: string;

  constructor(scope: Platform, name: string, props: CustomAppProps) {
    const runAsRoot = props.runAsRoot ?? false;
    super(scope, name, props, {
      layer: props.layer ?? Layer.AUTOMATION,
      namespace: name,
      runsAsRoot: runAsRoot,
    });
    if (props.volume && !props.storage) throw new Error(`${name}: a volume needs a storage provider`);
    const gpus = props.gpus ?? 0;
    if (gpus > 0 && !props.gpuProvider) throw new Error(`${name}: GPUs need a GPU provider`);
    const overlap = (props.secretEnv ?? []).filter((variable) => variable in (props.env ?? {}));
    if (overlap.length > 0) throw new Error(`${name}: ${overlap.join(', ')} both in env and secretEnv`);
    if (props.metrics && !(props.metrics.port in (props.ports ?? {}))) {
      throw new Error(`${name}: the metrics port "${props.metrics.port}" is not one of its ports`);
    }

    const plainEnv = Object.fromEntries(Object.entries(props.env ?? {}).map(([key, value]) => [key, kplus.EnvValue.fromValue(value)]));
    const selector = this.selectorFor(COMPONENT);
    const uid = props.runAsUser ?? 1000;
    const deployment = new kplus.Deployment(this, 'deployment', {
      metadata: { name, labels: this.labelsFor(COMPONENT) },
      replicas: props.replicas ?? 1,
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
      ports: Object.entries(props.ports ?? {}).map(([portName, number]) => ({ name: portName, number })),
      envVariables: { ...plainEnv, ...this.secretEnv(name, props.secretEnv ?? []) },
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
    if (gpus > 0) this.placeOnGpus(ApiObject.of(deployment), gpus, props.gpuProvider!);

    if (props.volume && props.storage) {
      const claim = new kplus.PersistentVolumeClaim(this, 'data', {
        metadata: { name: `${name}-data`, labels: this.labelsFor(COMPONENT) },
        accessModes: [kplus.PersistentVolumeAccessMode.READ_WRITE_ONCE],
        storage: size(props.volume.size),
        storageClassName: props.storage.storageClass(props.volume.storageClass),
      });
      container.mount(props.volume.mountPath, kplus.Volume.fromPersistentVolumeClaim(this, 'data-volume', claim, { name: 'data' }));
    }

    const ports = Object.entries(props.ports ?? {});
    this.serviceHost = `${name}.${name}.svc`;
    if (ports.length > 0) {
      const service = new kplus.Service(this, 'service', {
        metadata: { name, labels: this.labelsFor(COMPONENT) },
        ports: ports.map(([portName, number]) => ({ name: portName, port: number, targetPort: number })),
      });
      for (const [key, value] of Object.entries(selector)) service.selectLabel(key, value);
    }

    this.requestCapacity({
      workload: COMPONENT,
      replicas: props.replicas ?? 1,
      cpu: props.resources.requests.cpu,
      memory: props.resources.requests.memory,
      gpus,
    });
    this.addCheckpoint(ports[0]);
    this.addMonitoring(props.metrics);
    // Every port, for the services that name this app in their dependsOn.
    this.serveClients(...ports.map(([, number]) => ({ port: number, podSelector: selector })));
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
  private placeOnGpus(deployment: ApiObject, gpus: number, provider: GpuProvider): void {
    const pod = '/spec/template/spec';
    const { affinity, tolerations } = provider.gpuScheduling;
    this.patchManifest(
      deployment,
      JsonPatch.add(`${pod}/containers/0/resources/limits/${GPU_RESOURCE.replace('/', '~1')}`, String(gpus)),
      JsonPatch.add(`${pod}/runtimeClassName`, provider.runtimeClassName),
      JsonPatch.add(`${pod}/affinity`, k8s.toJson_Affinity(affinity)),
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
