/**
 * One of the operator's own apps (Home Assistant, Node-RED, a media server ...) from
 * homelab.yaml, a service like the built-in ones (docs/adr/0033-own-apps-as-services.md): a
 * Deployment with its probes, command, configuration files (a ConfigMap), volumes and security
 * settings, a Service, an exposure through the router with its protection, a checkpoint that
 * asks what its readiness probe asks, and an end-to-end check of its UI through Traefik.
 * Written with cdk8s-plus; the schema is charts/custom-app-settings.ts.
 */
import { createHash } from 'node:crypto';
import { ApiObject, Duration, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-34';
import { k8s } from 'cdk8s-plus-34';
import { ConfigIssue, defineService, EnvironmentView, Requirement, settingsIn } from '../lib/model/catalog';
import { Checkpoint, CHECKPOINT_PODS, CONNECT_MAX_SECONDS, curlRetryOptions, retrySeconds, STARTING_SERVER_CALL } from '../lib/model/checkpoint';
import type { Exposure } from '../lib/model/exposure';
import { GPU_RESOURCE, GpuProvider } from '../lib/model/gpu';
import { isKubernetesNamespace } from '../lib/model/kubernetes';
import { spreadOverNodes } from '../lib/model/placement';
import { ContainerException, PodSecurityException, RESTRICTED_CAPABILITIES } from '../lib/model/pod-security';
import { Platform } from '../lib/model/platform';
import { size, toContainerResources } from '../lib/model/resources';
import { HomelabService } from '../lib/model/service';
import { isSingleSignOnProvider, needsSingleSignOn, OIDC_CLIENT_SECRET_KEY, SingleSignOnProvider } from '../lib/model/single-sign-on';
import type { StorageProvider } from '../lib/model/storage';
import { IMAGES } from './versions';
import { findCycle } from '../lib/util/cycles';
import { AppExposure, AppFile, AppProbes, appsSettings, AppSettings, ProbeSettings } from './custom-app-settings';
import { longhornEntry, longhornStorageClassIssues } from './longhorn';
import { nvidiaDevicePluginEntry } from './nvidia-device-plugin';
import { traefikEntry, WEBSECURE_ADDRESS } from './traefik';

export { appSettings, appsSettings, type AppSettings } from './custom-app-settings';

type CustomAppMetrics = NonNullable<AppSettings['metrics']>;

export type CustomAppProps = Omit<AppSettings, 'enabled' | 'dependsOn'> & {
  /** Where volumes come from. Required with `volume` or `volumes`. @default none */
  readonly storage?: StorageProvider;
  /** Services that must be up first (the app's `dependsOn`, built). */
  readonly dependsOn: readonly HomelabService[];
  /** Makes the GPUs schedulable (the NVIDIA device plugin). Required with `gpus`. @default none */
  readonly gpuProvider?: GpuProvider;
  /** Signs users in for an `sso` or `oidc` exposure. Required with one. @default none */
  readonly singleSignOn?: SingleSignOnProvider;
  /**
   * How the end-to-end check reaches the exposure: `--insecure` for certificates of an issuer
   * that is not publicly trusted (Let's Encrypt staging). @default true: verified
   */
  readonly trustedCertificates?: boolean;
};

/** Labels on the Deployment that scope the lint's exceptions (lib/tools/lint/exceptions.ts) to the apps that need them. */
export const APP_LINT_LABELS = {
  /** `none`: the app says why it has no probe (`probes.none`). */
  probes: 'homelab.dev/probes',
  /** `none`: the app has a readiness probe but no liveness probe. */
  liveness: 'homelab.dev/liveness-probe',
  /** `writable`: the app lists no `writablePaths`. */
  rootFilesystem: 'homelab.dev/root-filesystem',
} as const;

const COMPONENT = 'app';

/** The ConfigMap holding an app's `files`. */
export function appFilesConfigMap(app: string): string {
  return `${app}-files`;
}

/** The key of a file in that ConfigMap: its path with every character a key cannot hold replaced. */
export function fileKey(path: string): string {
  return path.slice(1).replace(/[^-._a-zA-Z0-9]/g, '_');
}

/** The Secret, in the app's namespace, an app's `secretEnv` variables come from. */
export function appEnvSecret(app: string): string {
  return `${app}-env`;
}

/** The pod template annotation that changes with the files' content, so that a change rolls the pods (a subPath mount never sees updates). */
export const FILES_HASH_ANNOTATION = 'homelab.dev/files-sha256';

/** The Pod Security level an app's settings need, and why (undefined: restricted). */
export function appPodSecurity(app: Pick<AppSettings, 'runAsRoot' | 'capabilities' | 'hostNetwork' | 'devices'>): PodSecurityException | undefined {
  const privileged = [
    ...(app.hostNetwork ? [`the host network: ${app.hostNetwork.reason}`] : []),
    ...app.devices.map((device) => `the device ${device.path}: ${device.reason}`),
  ];
  if (privileged.length > 0) return { level: 'privileged', reason: `the app uses ${privileged.join('; ')} (hostNetwork, devices in homelab.yaml)` };
  const added = app.capabilities.filter((capability) => !RESTRICTED_CAPABILITIES.has(capability));
  const baseline = [
    ...(app.runAsRoot ? ['the image only runs as root (runAsRoot in homelab.yaml)'] : []),
    ...(added.length > 0 ? [`the app adds the capabilities ${added.join(', ')} (capabilities in homelab.yaml)`] : []),
  ];
  return baseline.length > 0 ? { level: 'baseline', reason: baseline.join('; ') } : undefined;
}

/** What the app's container leaves out of the restricted context, exactly: each relaxation is needed. */
export function appContainerException(app: Pick<AppSettings, 'runAsRoot' | 'writablePaths' | 'devices' | 'capabilities'>): ContainerException | undefined {
  const reasons: string[] = [];
  const relaxes: ContainerException['relaxes'][number][] = [];
  if (app.writablePaths === undefined) {
    relaxes.push('readOnlyRootFilesystem');
    reasons.push('the app lists no writablePaths: its image may write anywhere (caches, /tmp)');
  }
  if (app.runAsRoot) {
    // Root's default capabilities (its init system changes users and owners), or those listed beyond what restricted allows.
    const keepsMore = app.capabilities.length === 0 || app.capabilities.some((capability) => !RESTRICTED_CAPABILITIES.has(capability));
    relaxes.push('runAsNonRoot', ...(keepsMore ? (['capabilities'] as const) : []));
    reasons.push(
      app.capabilities.length === 0
        ? 'the image only runs as root (runAsRoot), with the capabilities its init system needs'
        : `the image only runs as root (runAsRoot), keeping the capabilities ${app.capabilities.join(', ')}`,
    );
  }
  if (app.devices.length > 0) {
    // A privileged container cannot forbid privilege escalation (the API server refuses both).
    relaxes.push('allowPrivilegeEscalation');
    reasons.push('host devices need a privileged container (devices)');
  }
  return relaxes.length > 0 ? { relaxes, reason: reasons.join('; ') } : undefined;
}

export class CustomApp extends HomelabService {
  readonly serviceHost: string;
  private readonly ports: ReadonlyMap<string, number>;

  constructor(scope: Platform, name: string, props: CustomAppProps) {
    const runAsRoot = props.runAsRoot;
    super(scope, name, props, {
      layer: props.layer,
      namespace: name,
      podSecurity: appPodSecurity(props),
      containerException: appContainerException(props),
      // The operator's own: in the apps project, without cluster-scoped kinds.
      tenant: true,
    });
    const volumes = [...(props.volume ? [['data', props.volume] as const] : []), ...Object.entries(props.volumes)];
    if (volumes.length > 0 && !props.storage) throw new Error(`${name}: a volume needs a storage provider`);
    const gpus = props.gpus;
    if (gpus > 0 && !props.gpuProvider) throw new Error(`${name}: GPUs need a GPU provider`);
    const overlap = props.secretEnv.filter((variable) => variable in props.env);
    if (overlap.length > 0) throw new Error(`${name}: ${overlap.join(', ')} both in env and secretEnv`);
    this.ports = new Map(Object.entries(props.ports));
    if (props.metrics && !this.ports.has(props.metrics.port)) {
      throw new Error(`${name}: the metrics port "${props.metrics.port}" is not one of its ports`);
    }
    const probes = props.probes;
    if (!probes?.readiness && !probes?.none) throw new Error(`${name}: an app needs a readiness probe, or a reason why it has none`);
    if (props.strategy === 'RollingUpdate' && volumes.length > 0) throw new Error(`${name}: a ReadWriteOnce volume needs the Recreate strategy`);

    const plainEnv = Object.fromEntries(Object.entries(props.env).map(([key, value]) => [key, kplus.EnvValue.fromValue(value)]));
    const selector = this.selectorFor(COMPONENT);
    const uid = props.runAsUser;
    const gid = props.runAsGroup ?? uid;
    const privileged = props.devices.length > 0;
    const deployment = new kplus.Deployment(this, 'deployment', {
      metadata: {
        name,
        labels: {
          ...this.labelsFor(COMPONENT),
          ...(probes.none ? { [APP_LINT_LABELS.probes]: 'none' } : !probes.liveness ? { [APP_LINT_LABELS.liveness]: 'none' } : {}),
          ...(props.writablePaths === undefined ? { [APP_LINT_LABELS.rootFilesystem]: 'writable' } : {}),
        },
      },
      replicas: props.replicas,
      select: false,
      podMetadata: { labels: selector },
      // A ReadWriteOnce volume cannot be attached to two pods during a rolling update.
      strategy: (props.strategy ?? (volumes.length > 0 ? 'Recreate' : 'RollingUpdate')) === 'Recreate' ? kplus.DeploymentStrategy.recreate() : kplus.DeploymentStrategy.rollingUpdate(),
      automountServiceAccountToken: false,
      hostNetwork: props.hostNetwork ? true : undefined,
      // On the host network, cluster names still resolve through the cluster DNS.
      dns: props.hostNetwork ? { policy: kplus.DnsPolicy.CLUSTER_FIRST_WITH_HOST_NET } : undefined,
      securityContext: runAsRoot ? { ensureNonRoot: false } : { ensureNonRoot: true, user: uid, group: gid, fsGroup: gid },
    });
    deployment.select(kplus.LabelSelector.of({ labels: selector }));
    const container = deployment.addContainer({
      name,
      image: props.image,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      command: props.command,
      args: props.args,
      resources: toContainerResources(props.resources),
      ports: [...this.ports].map(([portName, number]) => ({ name: portName, number })),
      envVariables: { ...plainEnv, ...this.secretEnv(name, props.secretEnv) },
      readiness: probes.readiness && this.probe(probes.readiness),
      liveness: probes.liveness && this.probe(probes.liveness),
      startup: probes.startup && this.probe(probes.startup),
      securityContext: {
        ensureNonRoot: !runAsRoot,
        user: runAsRoot ? undefined : uid,
        group: runAsRoot ? undefined : gid,
        readOnlyRootFilesystem: props.writablePaths !== undefined,
        // Privileged (host devices) and no privilege escalation contradict each other.
        privileged: privileged || undefined,
        allowPrivilegeEscalation: privileged,
        // Root keeps the runtime's default capabilities (its init system needs them), or exactly
        // the ones listed; any other user gets none (an added one would never be effective: no
        // ambient capabilities in Kubernetes, and no privilege escalation for file capabilities).
        capabilities: !runAsRoot
          ? { drop: [kplus.Capability.ALL] }
          : props.capabilities.length > 0
            ? { drop: [kplus.Capability.ALL], add: props.capabilities.map((c) => c as kplus.Capability) }
            : undefined,
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

    for (const [volumeName, volume] of volumes) {
      const claim = new kplus.PersistentVolumeClaim(this, `volume-${volumeName}`, {
        metadata: { name: `${name}-${volumeName}`, labels: this.labelsFor(COMPONENT) },
        accessModes: [kplus.PersistentVolumeAccessMode.READ_WRITE_ONCE],
        storage: size(volume.size),
        storageClassName: props.storage!.storageClass(volume.storageClass),
      });
      container.mount(volume.mountPath, kplus.Volume.fromPersistentVolumeClaim(this, `${volumeName}-volume`, claim, { name: volumeName }));
    }
    for (const [i, path] of (props.writablePaths ?? []).entries()) {
      container.mount(path, kplus.Volume.fromEmptyDir(this, `writable-${i}`, `writable-${i}`));
    }
    for (const [i, device] of props.devices.entries()) {
      container.mount(device.path, kplus.Volume.fromHostPath(this, `device-${i}`, `device-${i}`, { path: device.path, type: kplus.HostPathVolumeType.CHAR_DEVICE }));
    }
    this.mountFiles(deployment, container, props.files);

    const ports = [...this.ports];
    this.serviceHost = `${name}.${name}.svc`;
    if (ports.length > 0) {
      const service = new kplus.Service(this, 'service', {
        metadata: { name, labels: this.labelsFor(COMPONENT) },
        ports: ports.map(([portName, number]) => ({ name: portName, port: number, targetPort: number })),
      });
      for (const [key, value] of Object.entries(selector)) service.selectLabel(key, value);
    }

    this.requestCapacity(COMPONENT, props.replicas, props.resources.requests, { gpus });
    this.addCheckpoint(props.replicas, probes.readiness, ports[0]);
    this.addMonitoring(props.metrics);
    // Every port, for the services that name this app in their dependsOn.
    this.serveClients(...ports.map(([, number]) => ({ port: number, podSelector: selector })));
    if (props.egress.length > 0) {
      this.allowEgress({ name: 'external', podSelector: selector, to: { kind: 'external', destinations: props.egress }, reason: `${name} connects outside the cluster (apps.${name}.egress)` });
    }
    if (props.expose) {
      this.exposeApp(props.expose, scope.hostname(props.expose.subdomain), selector, props.singleSignOn, props.trustedCertificates ?? true, container, props.replicas > 0);
    }
  }

  /** A probe of the settings, on the number of the port it names. */
  private probe(settings: ProbeSettings): kplus.Probe {
    const options = {
      initialDelaySeconds: Duration.seconds(settings.initialDelaySeconds),
      periodSeconds: Duration.seconds(settings.periodSeconds),
      timeoutSeconds: Duration.seconds(settings.timeoutSeconds),
      failureThreshold: settings.failureThreshold,
    };
    const port = (portName: string) => {
      const number = this.ports.get(portName);
      if (number === undefined) throw new Error(`${this.serviceName}: the probe's port "${portName}" is not one of its ports`);
      return number;
    };
    if (settings.http) {
      return kplus.Probe.fromHttpGet(settings.http.path, { ...options, port: port(settings.http.port), scheme: settings.http.scheme === 'HTTPS' ? kplus.ConnectionScheme.HTTPS : kplus.ConnectionScheme.HTTP });
    }
    if (settings.tcp) return kplus.Probe.fromTcpSocket({ ...options, port: port(settings.tcp.port) });
    return kplus.Probe.fromCommand([...settings.exec!.command], options);
  }

  /**
   * The files, one ConfigMap mounted file by file (subPath: next to what the image or a volume
   * holds in the same folder), read-only. A subPath mount never sees the ConfigMap change, so
   * the pod template carries a hash of the content: a changed file rolls the pods.
   */
  private mountFiles(deployment: kplus.Deployment, container: kplus.Container, files: readonly AppFile[]): void {
    if (files.length === 0) return;
    const data = Object.fromEntries(files.map((file) => [fileKey(file.path), file.content]));
    const configMap = new kplus.ConfigMap(this, 'files', { metadata: { name: appFilesConfigMap(this.serviceName), labels: this.labelsFor(COMPONENT) }, data });
    const volume = kplus.Volume.fromConfigMap(this, 'files-volume', configMap, { name: 'files' });
    for (const file of files) container.mount(file.path, volume, { subPath: fileKey(file.path), readOnly: true });
    const hash = createHash('sha256');
    for (const key of Object.keys(data).sort()) hash.update(`${key}\0${data[key]}\0`);
    deployment.podMetadata.addAnnotation(FILES_HASH_ANNOTATION, hash.digest('hex'));
  }

  /**
   * The exposure, routed by the router through the derived NetworkPolicies; an `sso` or `oidc`
   * one also goes to the single sign-on service. The end-to-end verification then asks for the
   * UI through Traefik: the route syncs with Traefik, after the app (docs/adr/0011), so the
   * app's own checkpoint cannot.
   */
  private exposeApp(
    settings: AppExposure,
    host: string,
    podSelector: Record<string, string>,
    singleSignOn: SingleSignOnProvider | undefined,
    trustedCertificates: boolean,
    container: kplus.Container,
    answers: boolean,
  ): void {
    const portName = settings.port ?? [...this.ports.keys()][0];
    const port = this.ports.get(portName);
    if (port === undefined) throw new Error(`${this.serviceName}: the exposed port "${portName}" is not one of its ports`);
    const exposure: Exposure = {
      subdomain: settings.subdomain,
      serviceName: this.serviceName,
      servicePort: port,
      podPort: portName,
      podSelector,
      admin: settings.protection === 'admin',
      ...(needsSingleSignOn(settings.protection) && { signIn: settings.protection }),
      hiddenPaths: settings.hiddenPaths,
      // The end-to-end check below: the NetworkPolicies let it reach the router.
      checkedFrom: CHECKPOINT_PODS,
    };
    if (needsSingleSignOn(settings.protection)) {
      if (!singleSignOn) throw new Error(`${this.serviceName}: the protection ${settings.protection} needs a single sign-on service`);
      singleSignOn.signInFor(this, exposure, settings.protection);
      if (settings.oidc) this.becomeOidcClient(singleSignOn, host, settings.oidc, podSelector, container);
    }
    this.expose(exposure);
    // Scaled to zero, nothing behind the host answers: the check would only find Traefik's 503.
    if (!answers) return;
    this.addEndToEndCheck(`${this.serviceName}-ui`, {
      description: `https://${host}/ answers through Traefik as a ${settings.protection} host${settings.hiddenPaths.length > 0 ? ', its hidden paths 404' : ''}`,
      image: IMAGES.curl,
      // Every ask of / failing at curl's limit, then the pause, and every hidden path at the
      // limit, after the pod started: the message comes before the deadline.
      scriptSeconds: retrySeconds(UI_CHECKS, UI_CALL_MAX_SECONDS, UI_PAUSE_SECONDS) + settings.hiddenPaths.length * UI_CALL_MAX_SECONDS,
      env: {
        HOST: host,
        TRAEFIK: WEBSECURE_ADDRESS,
        PROTECTION: settings.protection,
        HIDDEN_PATHS: settings.hiddenPaths.join(' '),
        CURL_TLS: trustedCertificates ? '' : '--insecure',
        UI_CHECKS: String(UI_CHECKS),
      },
      script: UI_CHECK_SCRIPT,
    });
  }

  /**
   * The app's own OIDC client, as the platform's own logins are (registerOidcLogin): its secret
   * generated in the secret backend (`<app>-oidc`), its redirect URIs on its host, registered
   * with the single sign-on service, which reads the same value, and the way from its pods to
   * the issuer; the issuer URL, client id (the app's name) and secret reach the app as the
   * variables it names (read at start: the Secret must be there).
   */
  private becomeOidcClient(provider: SingleSignOnProvider, host: string, oidc: NonNullable<AppExposure['oidc']>, pods: Record<string, string>, container: kplus.Container): void {
    const name = this.serviceName;
    const { issuer, clientSecret: secret } = this.registerOidcLogin(provider, {
      secretName: `${name}-oidc`,
      clientId: name,
      displayName: name,
      redirectUris: oidc.redirectPaths.map((path) => `https://${host}${path}`),
      pods,
      neededToStart: true,
    });
    container.env.addVariable(oidc.variables.issuerUrl, kplus.EnvValue.fromValue(issuer.issuerUrl));
    container.env.addVariable(oidc.variables.clientId, kplus.EnvValue.fromValue(name));
    const secretObject = kplus.Secret.fromSecretName(this, 'oidc-secret', secret.secretName);
    container.env.addVariable(oidc.variables.clientSecret, kplus.EnvValue.fromSecretValue({ secret: secretObject, key: OIDC_CLIENT_SECRET_KEY }));
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

  /**
   * The app answers what its readiness probe asks, through its Service: an HTTP probe's path
   * with a status the kubelet counts as healthy (200-399), a TCP probe's port accepting
   * connections. Without either (a command probe, `probes.none`), its first port accepts
   * connections (any HTTP status), or without ports Argo CD's wait for the Deployment suffices,
   * as it does for an app scaled to zero (`replicas: 0`), which has no pod to ask.
   */
  private addCheckpoint(replicas: number, readiness: ProbeSettings | undefined, firstPort: [string, number] | undefined): void {
    if (replicas === 0) {
      new Checkpoint(this, 'checkpoint', {
        description: 'the Deployment is scaled to zero (replicas: 0): no pod to ask',
        image: IMAGES.curl,
        script: 'echo "scaled to zero (replicas: 0): no pod to ask; Argo CD already waited for the Deployment"',
      });
      return;
    }
    const curl = `curl -sS -o /dev/null ${curlRetryOptions(STARTING_SERVER_CALL, 'connrefused')} -w "%{http_code}\\n"`;
    if (readiness?.http) {
      const https = readiness.http.scheme === 'HTTPS';
      const url = `${https ? 'https' : 'http'}://${this.serviceHost}:${this.ports.get(readiness.http.port)}${readiness.http.path}`;
      new Checkpoint(this, 'checkpoint', {
        description: `${url} answers 2xx or 3xx (the readiness probe's request)`,
        image: IMAGES.curl,
        // --fail: a 4xx/5xx answer fails, as it fails the probe; --insecure: the app's own certificate, which the kubelet does not verify either.
        script: `${curl} --fail${https ? ' --insecure' : ''} "${url}"`,
      });
      return;
    }
    if (readiness?.tcp) {
      const address = `${this.serviceHost}:${this.ports.get(readiness.tcp.port)}`;
      new Checkpoint(this, 'checkpoint', {
        description: `${address} accepts TCP connections (the readiness probe's check)`,
        image: IMAGES.curl,
        // curl's telnet:// holds a connection open until the server closes it or the time is up
        // (lib/telnet.c), so its exit status cannot tell: %{time_connect} is 0 unless the TCP
        // connection was made, whatever the protocol and however curl then ends; the time is up a
        // second after the connect limit.
        script: [
          'for attempt in $(seq 10); do',
          `  connected=$(curl -s -o /dev/null -w '%{time_connect}' --connect-timeout ${CONNECT_MAX_SECONDS} --max-time ${CONNECT_MAX_SECONDS + 1} "telnet://${address}" </dev/null || true)`,
          `  if awk -v t="$connected" 'BEGIN { exit !(t > 0) }'; then echo "${address} accepts connections"; exit 0; fi`,
          `  echo "${address}: no connection yet"`,
          '  sleep 6',
          'done',
          `echo "${address} accepts no connection" >&2`,
          'exit 1',
        ].join('\n'),
      });
      return;
    }
    const url = firstPort ? `http://${this.serviceHost}:${firstPort[1]}/` : undefined;
    new Checkpoint(this, 'checkpoint', {
      description: url ? `${url} accepts connections` : 'the Deployment is available',
      image: IMAGES.curl,
      // Any HTTP status (even 401) proves the app listens; only connection errors fail.
      script: url ? `${curl} "${url}"` : 'echo "no ports: Argo CD already waited for the Deployment to be available"',
    });
  }
}

/** The UI check asks `/` for five minutes, 10 s apart. From the Job's env, so that the tests fail it in two tries; unset, the script stops with a message. */
const UI_CHECKS = 30;
const UI_PAUSE_SECONDS = 10;
/** curl's limit for one answer. */
const UI_CALL_MAX_SECONDS = 10;

/**
 * The end-to-end check of an exposed app: its host through Traefik's websecure Service (with
 * the host's SNI and Host header, as a client outside the cluster asks). A `public` host, and an
 * `oidc` one (the app logs users in itself: nothing in front of it), must answer `/` with 2xx or
 * 3xx (the UI, or its redirect to a login); an `admin` or `sso` host must refuse
 * the check, whose pod address is never allow-listed (any answer but 2xx: 403 from the
 * allow-list, 401 or a redirect from forward-auth); every hidden path must get Traefik's 404.
 * No answer, Traefik's 404 for the host and 502-504 (no reachable backend) fail.
 */
export const UI_CHECK_SCRIPT = `answer() {
  curl -sS -o /dev/null -w '%{http_code}' --max-time ${UI_CALL_MAX_SECONDS} $CURL_TLS --connect-to "$HOST:443:$TRAEFIK" "https://$HOST$1" || true
}
# Prints "ok", or what is wrong with answer $1 for / of a host with protection $PROTECTION.
verdict() {
  case "$1" in
    000|"") echo "no answer from Traefik"; return ;;
    404) echo "no router for the host (Traefik's 404)"; return ;;
    502|503|504) echo "routed, but the app does not answer ($1)"; return ;;
  esac
  case "$PROTECTION:$1" in
    public:[23]??|oidc:[23]??) echo ok ;;
    public:*|oidc:*) echo "the UI answered $1" ;;
    *:2??) echo "the $PROTECTION host answered $1 to a client that is not allowed in" ;;
    *) echo ok ;;
  esac
}
tries=0
while :; do
  code=$(answer /)
  result=$(verdict "$code")
  if [ "$result" = ok ]; then echo "https://$HOST/ ($PROTECTION) answered $code through Traefik"; break; fi
  tries=$((tries + 1))
  if [ "$tries" -ge "\${UI_CHECKS:?unset (the Job sets it)}" ]; then echo "https://$HOST/ ($PROTECTION): $result" >&2; exit 1; fi
  sleep ${UI_PAUSE_SECONDS}
done
for path in $HIDDEN_PATHS; do
  code=$(answer "$path")
  if [ "$code" != 404 ]; then echo "https://$HOST$path is hidden, but answered $code" >&2; exit 1; fi
  echo "https://$HOST$path: 404 (hidden)"
done`;

/** The probes' and the exposure's port names that are not the app's. */
function portIssues(name: string, app: AppSettings): ConfigIssue[] {
  const known = `one of the app's ports (${Object.keys(app.ports).join(', ') || 'none'})`;
  const issues: ConfigIssue[] = [];
  const check = (path: readonly (string | number)[], port: string | undefined) => {
    if (port !== undefined && !(port in app.ports)) issues.push({ path: [name, ...path], message: `expected ${known}, received "${port}"` });
  };
  for (const kind of ['readiness', 'liveness', 'startup'] as const) {
    const probe = app.probes?.[kind];
    check(['probes', kind, probe?.http ? 'http' : 'tcp', 'port'], probe?.http?.port ?? probe?.tcp?.port);
  }
  if (app.metrics) check(['metrics', 'port'], app.metrics.port);
  if (app.expose) {
    if (Object.keys(app.ports).length === 0) issues.push({ path: [name, 'expose'], message: 'expected ports: an exposure routes to one of the app\'s ports, and it has none' });
    else check(['expose', 'port'], app.expose.port);
  }
  return issues;
}

/** A readiness probe, or why none; `none` alone. */
function probeIssues(name: string, probes: AppProbes | undefined): ConfigIssue[] {
  if (probes?.none !== undefined) {
    const set = (['readiness', 'liveness', 'startup'] as const).filter((kind) => probes[kind]);
    return set.length > 0 ? [{ path: [name, 'probes', 'none'], message: `expected no reason for having no probe next to the probes (${set.join(', ')})` }] : [];
  }
  if (probes?.readiness) return [];
  return [
    {
      path: [name, 'probes', ...(probes ? ['readiness'] : [])],
      message: 'expected a readiness probe (http, tcp or exec): the Service sends traffic only to ready pods; an app with nothing to probe says why in probes.none',
    },
  ];
}

/** Volumes, files, writable paths and devices: distinct mount paths and ConfigMap keys, strategy and replicas a ReadWriteOnce volume allows. */
function mountIssues(name: string, app: AppSettings): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const mounts: [readonly (string | number)[], string][] = [
    ...(app.volume ? [[['volume', 'mountPath'], app.volume.mountPath] as [readonly (string | number)[], string]] : []),
    ...Object.entries(app.volumes).map(([volume, v]): [readonly (string | number)[], string] => [['volumes', volume, 'mountPath'], v.mountPath]),
    ...(app.writablePaths ?? []).map((path, i): [readonly (string | number)[], string] => [['writablePaths', i], path]),
    ...app.devices.map((device, i): [readonly (string | number)[], string] => [['devices', i, 'path'], device.path]),
    ...app.files.map((file, i): [readonly (string | number)[], string] => [['files', i, 'path'], file.path]),
  ];
  const seen = new Map<string, readonly (string | number)[]>();
  for (const [path, mountPath] of mounts) {
    const normal = mountPath.replace(/\/+$/, '') || '/';
    const first = seen.get(normal);
    if (first) issues.push({ path: [name, ...path], message: `expected another path: "${mountPath}" is already mounted by apps.${name}.${first.join('.')}` });
    else seen.set(normal, path);
  }
  if ('data' in app.volumes) issues.push({ path: [name, 'volumes', 'data'], message: 'expected another name: "data" is reserved (the claim `volume` makes)' });
  const keys = new Map<string, number>();
  app.files.forEach((file, i) => {
    const first = keys.get(fileKey(file.path));
    if (first !== undefined && app.files[first].path !== file.path) {
      issues.push({ path: [name, 'files', i, 'path'], message: `expected a path that differs from files.${first}.path in more than punctuation (both are the ConfigMap key "${fileKey(file.path)}")` });
    } else keys.set(fileKey(file.path), i);
  });
  const withVolume = app.volume !== undefined || Object.keys(app.volumes).length > 0;
  if (withVolume && app.replicas > 1) {
    issues.push({ path: [name, 'replicas'], message: `expected at most 1 with a volume (a ReadWriteOnce volume attaches to one pod), received ${app.replicas}` });
  }
  if (withVolume && app.strategy === 'RollingUpdate') {
    issues.push({ path: [name, 'strategy'], message: 'expected Recreate with a volume: a ReadWriteOnce volume cannot attach to the new pod while the old one runs' });
  }
  return issues;
}

/** Settings that root would silently ignore. */
function rootIssues(name: string, app: AppSettings): ConfigIssue[] {
  if (!app.runAsRoot) {
    // kubernetes/kubernetes#56374: a capability added to a container reaches a non-root process's bounding set only.
    return app.capabilities.length > 0
      ? [{ path: [name, 'capabilities'], message: 'expected runAsRoot: a process that is not root gets no added capability (Kubernetes sets no ambient capabilities); it already has none' }]
      : [];
  }
  return app.runAsGroup !== undefined ? [{ path: [name, 'runAsGroup'], message: 'expected none with runAsRoot: the image runs as root' }] : [];
}

/** An app's checks against the environment (what its config alone cannot tell). */
function appIssues(name: string, app: AppSettings, env: EnvironmentView, dependable: ReadonlySet<string>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (env.reservedNames.has(name)) {
    issues.push({ path: [name], message: `expected another name: "${name}" is taken by a built-in service, its namespace, an output folder or the backup target's keys` });
  } else if (isKubernetesNamespace(name)) {
    // The app's name is its namespace, which the platform labels for Pod Security and closes with NetworkPolicies.
    issues.push({ path: [name], message: `expected another name: "${name}" is a namespace of Kubernetes itself (default, kube-*), which the app would take over` });
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
  issues.push(...portIssues(name, app), ...probeIssues(name, app.probes), ...mountIssues(name, app), ...rootIssues(name, app));
  if (app.expose && needsSingleSignOn(app.expose.protection) && !env.singleSignOn) {
    issues.push({
      path: [name, 'expose', 'protection'],
      message: `expected public or admin: "${app.expose.protection}" needs a single sign-on service; none is enabled yet`,
    });
  }
  issues.push(...oidcIssues(name, app), ...hiddenPathIssues(name, app));
  issues.push(...longhornStorageClassIssues(env, [name, 'volume', 'storageClass'], app.volume?.storageClass));
  for (const [volume, settings] of Object.entries(app.volumes)) issues.push(...longhornStorageClassIssues(env, [name, 'volumes', volume, 'storageClass'], settings.storageClass));
  return issues;
}

/**
 * An `oidc` exposure says how the app is an OIDC client (its redirect paths, the variables it
 * reads): an app that cannot log users in through OIDC itself needs `sso` instead. Its variables
 * are its own, not ones `env` or `secretEnv` set.
 */
function oidcIssues(name: string, app: AppSettings): ConfigIssue[] {
  const expose = app.expose;
  if (!expose) return [];
  const at = [name, 'expose', 'oidc'];
  if (expose.protection !== 'oidc') return expose.oidc ? [{ path: at, message: `expected no oidc: only an oidc exposure is a client of the single sign-on service (this one is ${expose.protection})` }] : [];
  if (!expose.oidc) {
    return [{ path: at, message: 'expected the redirectPaths the app sends users back to (and the variables it reads the issuer, client id and secret from): an app without an OIDC login of its own needs sso' }];
  }
  return Object.entries(expose.oidc.variables).flatMap(([key, variable]) =>
    variable in app.env || app.secretEnv.includes(variable) ? [{ path: [...at, 'variables', key], message: `expected a variable env and secretEnv do not set: "${variable}" is set there` }] : [],
  );
}

/**
 * Hidden paths are prefixes Traefik matches as strings (`!PathPrefix`, `strings.HasPrefix` in
 * traefik v3's pkg/muxer/http): `/` would hide the whole host (and the `/` its end-to-end check
 * asks), and one that begins an OIDC redirect path would hide the app's login callback.
 */
function hiddenPathIssues(name: string, app: AppSettings): ConfigIssue[] {
  const expose = app.expose;
  if (!expose) return [];
  return expose.hiddenPaths.flatMap((hidden, i): ConfigIssue[] => {
    const at = [name, 'expose', 'hiddenPaths', i];
    if (hidden === '/') return [{ path: at, message: 'expected a path below "/": "/" hides the whole host' }];
    const callback = expose.oidc?.redirectPaths.find((path) => path.startsWith(hidden));
    return callback ? [{ path: at, message: `expected a path that does not hide the redirect path "${callback}" (Traefik matches the prefix "${hidden}")` }] : [];
  });
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
      ...Object.keys(app.volumes).map((volume) => ({ entry: longhornEntry, path: [name, 'volumes', volume], reason: 'a volume needs Longhorn' })),
      ...(app.expose ? [{ entry: traefikEntry, path: [name, 'expose'], reason: 'an exposure is routed by Traefik' }] : []),
    ]),
  subdomains: (apps) => enabledApps(apps).flatMap(([name, app]) => (app.expose ? [{ path: [name, 'expose', 'subdomain'], subdomain: app.expose.subdomain }] : [])),
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
    // Created before the apps where an environment has one (its catalog entry comes first).
    const singleSignOn = context.services.find(isSingleSignOnProvider);
    const trustedCertificates = settingsIn(platform.config, traefikEntry).issuer === 'letsencrypt-production';
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
            storage: app.volume || Object.keys(app.volumes).length > 0 ? context.required(longhornEntry) : undefined,
            gpuProvider: app.gpus > 0 ? context.required(nvidiaDevicePluginEntry) : undefined,
            // Only the apps it signs users in for reference it (and may connect to it).
            singleSignOn: app.expose && needsSingleSignOn(app.expose.protection) ? singleSignOn : undefined,
            trustedCertificates,
          }),
        );
        pending.delete(name);
      }
    }
  },
});
