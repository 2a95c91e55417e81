/**
 * The operator's own apps as services (docs/adr/0033): each new setting's config errors at its
 * path, the objects derived from it, configuration files inline and from disk (traversal and
 * oversize refused), the single sign-on seam, and the checkpoint scripts against fake answers.
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { AddressInfo, createServer, Server } from 'node:net';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appsEntry, UI_CHECK_SCRIPT } from '../charts/custom-app';
import { CONFIG_FILE_BYTES } from '../lib/model/config/config-files';
import { defineService, settingsIn } from '../lib/model/catalog';
import { CHECK_START_SECONDS, checkDeadlineSeconds, Checkpoint } from '../lib/model/checkpoint';
import type { Exposure } from '../lib/model/exposure';
import { Layer } from '../lib/model/layers';
import type { Platform } from '../lib/model/platform';
import { HomelabService } from '../lib/model/service';
import type { OidcIssuer, SignInProtection, SingleSignOnProvider } from '../lib/model/single-sign-on';
import { catalogWith, FAKE_SLEEP, FAKE_SLEEP_LOGGED, FakeCommandRun, fixtureObject, manifestAt, manifestsOf, maybeManifestAt, parseText, platformText, readFakeFile, readTree, retryTries, runMain, runWithFakeCommands, startWithFakeCommands, synthesizePlatformFixture, synthesizePlatforms, tempDir, toYamlText } from './support';

const RESOURCES = { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '64Mi' } };

/** The small fixture with Traefik and cert-manager, and one app `web` changed by `mutate`. */
function withApp(mutate: (app: Record<string, any>, config: Record<string, any>) => void = () => undefined): Record<string, any> {
  const config = fixtureObject('small');
  config.services.certManager = { enabled: true, email: 'admin@example.net' };
  config.services.traefik = { enabled: true, adminAccess: { allowList: ['192.168.1.0/24'] } };
  config.apps = {
    web: {
      image: 'ghcr.io/example/web:1.0.0',
      ports: { http: 8080, metrics: 9100 },
      probes: { readiness: { http: { port: 'http', path: '/healthz' } } },
      resources: RESOURCES,
    },
  };
  mutate(config.apps.web, config);
  return config;
}

/** The config errors of a variant (empty when it is valid). */
function problems(mutate: (app: Record<string, any>, config: Record<string, any>) => void, file = 'homelab.yaml'): string[] {
  try {
    parseText(toYamlText(withApp(mutate)), file);
    return [];
  } catch (error) {
    return (error as Error).message.split('\n');
  }
}

function synthesized(mutate: (app: Record<string, any>, config: Record<string, any>) => void = () => undefined) {
  const [{ platform, env }] = synthesizePlatforms(toYamlText(withApp(mutate)));
  const docs = manifestsOf(env);
  const find = (path: string) => maybeManifestAt(env, path);
  return { platform, env, docs, find, deployment: find('web/deployment-web.yaml')!, container: find('web/deployment-web.yaml')!.spec.template.spec.containers[0] };
}

describe('an app config is refused at the path of what is wrong', () => {
  it.each<[string, (app: Record<string, any>) => void, string]>([
    ['no probes', (app) => delete app.probes, 'homelab.yaml: apps.web.probes: expected a readiness probe (http, tcp or exec)'],
    ['probes without readiness', (app) => (app.probes = { liveness: { tcp: { port: 'http' } } }), 'homelab.yaml: apps.web.probes.readiness: expected a readiness probe'],
    ['a reason for no probe next to probes', (app) => (app.probes.none = 'nothing to probe'), 'homelab.yaml: apps.web.probes.none: expected no reason for having no probe next to the probes (readiness)'],
    ['an empty reason for no probe', (app) => (app.probes = { none: '  ' }), 'homelab.yaml: apps.web.probes.none: expected a reason (why the app needs it)'],
    ['a probe on a port the app does not declare', (app) => (app.probes.readiness.http.port = 'admin'), `homelab.yaml: apps.web.probes.readiness.http.port: expected one of the app's ports (http, metrics), received "admin"`],
    ['a liveness probe on an undeclared port', (app) => (app.probes.liveness = { tcp: { port: 'grpc' } }), `homelab.yaml: apps.web.probes.liveness.tcp.port: expected one of the app's ports (http, metrics), received "grpc"`],
    ['a probe of two kinds', (app) => (app.probes.readiness.tcp = { port: 'http' }), 'homelab.yaml: apps.web.probes.readiness: expected exactly one of http, tcp or exec'],
    ['a file path that is a folder', (app) => (app.files = [{ path: '/config/', content: 'x' }]), 'homelab.yaml: apps.web.files.0.path: expected an absolute path of a file'],
    ['a file path with a ".." segment', (app) => (app.files = [{ path: '/config/../etc/passwd', content: 'x' }]), 'homelab.yaml: apps.web.files.0.path: expected an absolute path of a file'],
    ['a file path whose ConfigMap key would start with ".."', (app) => (app.files = [{ path: '/..data', content: 'x' }]), 'homelab.yaml: apps.web.files.0.path: expected an absolute path of a file'],
    ['a hidden path Traefik and the check would read otherwise', (app) => (app.expose = { subdomain: 'web', protection: 'admin', hiddenPaths: ['/metrics`) || Path(`/'] }), 'homelab.yaml: apps.web.expose.hiddenPaths.0: expected a path such as "/metrics"'],
    ['a hidden path that hides the whole host', (app) => (app.expose = { subdomain: 'web', protection: 'public', hiddenPaths: ['/metrics', '/'] }), 'homelab.yaml: apps.web.expose.hiddenPaths.1: expected a path below "/": "/" hides the whole host'],
    ['an exposure with an unknown protection', (app) => (app.expose = { subdomain: 'web', protection: 'password' }), 'homelab.yaml: apps.web.expose.protection: expected one of "public", "sso", "oidc", "admin", received "password"'],
    ['an exposure without protection', (app) => (app.expose = { subdomain: 'web' }), 'homelab.yaml: apps.web.expose.protection: expected one of "public", "sso", "oidc", "admin"'],
    ['sso without a single sign-on service', (app) => (app.expose = { subdomain: 'web', protection: 'sso' }), 'homelab.yaml: apps.web.expose.protection: expected public or admin: "sso" needs a single sign-on service; none is enabled yet'],
    ['oidc without a single sign-on service', (app) => (app.expose = { subdomain: 'web', protection: 'oidc' }), 'homelab.yaml: apps.web.expose.protection: expected public or admin: "oidc" needs a single sign-on service; none is enabled yet'],
    ['an exposed port the app does not declare', (app) => (app.expose = { subdomain: 'web', protection: 'public', port: 'ui' }), `homelab.yaml: apps.web.expose.port: expected one of the app's ports (http, metrics), received "ui"`],
    ['an exposure of an app without ports', (app) => ((app.ports = {}), (app.probes = { none: 'a worker' }), (app.expose = { subdomain: 'web', protection: 'public' })), "homelab.yaml: apps.web.expose: expected ports: an exposure routes to one of the app's ports, and it has none"],
    ['a subdomain another service routes', (app) => (app.expose = { subdomain: 'argocd', protection: 'admin' }), 'homelab.yaml: apps.web.expose.subdomain: expected another subdomain: "argocd" is already used by services.argocd.subdomain'],
    ['a file with both content and from', (app) => (app.files = [{ path: '/etc/web.conf', content: 'a', from: 'web.conf' }]), 'homelab.yaml: apps.web.files.0: expected exactly one of content or from'],
    ['a file path that is not absolute', (app) => (app.files = [{ path: 'etc/web.conf', content: 'a' }]), 'homelab.yaml: apps.web.files.0.path: expected an absolute path'],
    ['a file from above the config folder', (app) => (app.files = [{ path: '/etc/web.conf', from: '../secrets.yaml' }]), `homelab.yaml: apps.web.files.0.from: expected a path relative to the config file's folder, without ".."`],
    ['a file from an absolute path', (app) => (app.files = [{ path: '/etc/web.conf', from: '/etc/passwd' }]), `homelab.yaml: apps.web.files.0.from: expected a path relative to the config file's folder`],
    ['a file mounted where a volume is', (app) => ((app.volume = { size: '1Gi', mountPath: '/data' }), (app.files = [{ path: '/data/', content: 'a' }])), 'homelab.yaml: apps.web.files.0.path: expected another path: "/data/" is already mounted by apps.web.volume.mountPath'],
    ['two files with the same ConfigMap key', (app) => (app.files = [{ path: '/etc/a:b', content: '1' }, { path: '/etc/a_b', content: '2' }]), 'homelab.yaml: apps.web.files.1.path: expected a path that differs from files.0.path in more than punctuation'],
    ['a volume named data next to volume', (app) => ((app.volume = { size: '1Gi', mountPath: '/data' }), (app.volumes = { data: { size: '1Gi', mountPath: '/more' } })), 'homelab.yaml: apps.web.volumes.data: expected another name: "data" is reserved (the claim `volume` makes)'],
    ['a volume named data without volume', (app) => (app.volumes = { data: { size: '1Gi', mountPath: '/more' } }), 'homelab.yaml: apps.web.volumes.data: expected another name: "data" is reserved (the claim `volume` makes)'],
    ['replicas with an extra volume', (app) => ((app.replicas = 2), (app.volumes = { media: { size: '1Gi', mountPath: '/media' } })), 'homelab.yaml: apps.web.replicas: expected at most 1 with a volume'],
    ['RollingUpdate with a volume', (app) => ((app.strategy = 'RollingUpdate'), (app.volume = { size: '1Gi', mountPath: '/data' })), 'homelab.yaml: apps.web.strategy: expected Recreate with a volume'],
    ['an unknown strategy', (app) => (app.strategy = 'BlueGreen'), 'homelab.yaml: apps.web.strategy: expected one of "RollingUpdate", "Recreate", received "BlueGreen"'],
    ['the host network without a reason', (app) => (app.hostNetwork = {}), 'homelab.yaml: apps.web.hostNetwork.reason: expected a reason (why the app needs it), but it is missing'],
    ['the host network as a plain switch', (app) => (app.hostNetwork = true), 'homelab.yaml: apps.web.hostNetwork: expected a mapping, received true'],
    ['a device without a reason', (app) => (app.devices = [{ path: '/dev/ttyUSB0' }]), 'homelab.yaml: apps.web.devices.0.reason: expected a reason (why the app needs it), but it is missing'],
    ['a device outside /dev', (app) => (app.devices = [{ path: '/etc/shadow', reason: 'no' }]), 'homelab.yaml: apps.web.devices.0.path: expected a path under /dev/'],
    ['a capability beyond baseline', (app) => (app.capabilities = ['SYS_ADMIN']), 'homelab.yaml: apps.web.capabilities.0: expected one of "AUDIT_WRITE"'],
    ['a writable path that is not absolute', (app) => (app.writablePaths = ['tmp']), 'homelab.yaml: apps.web.writablePaths.0: expected an absolute path'],
    ['a writable path mounted twice', (app) => (app.writablePaths = ['/tmp', '/tmp/']), 'homelab.yaml: apps.web.writablePaths.1: expected another path: "/tmp/" is already mounted by apps.web.writablePaths.0'],
    ['an empty command', (app) => (app.command = []), 'homelab.yaml: apps.web.command: expected a command'],
    ['capabilities for a user that is not root', (app) => (app.capabilities = ['CHOWN']), 'homelab.yaml: apps.web.capabilities: expected runAsRoot: a process that is not root gets no added capability'],
    ['a group for root', (app) => ((app.runAsRoot = true), (app.runAsGroup = 100)), 'homelab.yaml: apps.web.runAsGroup: expected none with runAsRoot: the image runs as root'],
    ['inline content over the limit', (app) => (app.files = [{ path: '/etc/web.conf', content: 'x'.repeat(CONFIG_FILE_BYTES + 1) }]), `homelab.yaml: apps.web.files.0.content: expected at most ${CONFIG_FILE_BYTES / 1024} KiB of text`],
    ['more files than a ConfigMap holds', (app) => (app.files = Array.from({ length: 13 }, (_, i) => ({ path: `/etc/${i}.conf`, content: 'a' }))), 'homelab.yaml: apps.web.files: expected at most 12 files'],
  ])('%s', (_, mutate, message) => {
    expect(problems(mutate)).toEqual(expect.arrayContaining([expect.stringContaining(message)]));
  });

  it('an exposure needs Traefik', () => {
    expect(problems((app, config) => ((app.expose = { subdomain: 'web', protection: 'public' }), (config.services.traefik.enabled = false)))).toContain(
      'homelab.yaml: apps.web.expose: expected services.traefik.enabled: an exposure is routed by Traefik',
    );
  });

  it('accepts the valid variants the errors above start from', () => {
    expect(problems(() => undefined)).toEqual([]);
    expect(problems((app) => (app.probes = { none: 'a queue worker that serves nothing' }))).toEqual([]);
    expect(problems((app) => (app.expose = { subdomain: 'web', protection: 'admin', hiddenPaths: ['/metrics'] }))).toEqual([]);
  });
});

describe('the objects derived from an app', () => {
  const { container, deployment, find, docs } = synthesized((app) => {
    app.command = ['/bin/web'];
    app.args = ['--listen', ':8080'];
    app.probes = {
      readiness: { http: { port: 'http', path: '/healthz' }, periodSeconds: 5 },
      liveness: { tcp: { port: 'http' }, failureThreshold: 6 },
      startup: { exec: { command: ['cat', '/tmp/started'] }, failureThreshold: 30, initialDelaySeconds: 2 },
    };
    app.runAsUser = 1500;
    app.runAsGroup = 2500;
    app.writablePaths = ['/tmp', '/var/cache/web'];
    app.volumes = { media: { size: '5Gi', mountPath: '/media' } };
  });
  const pod = deployment.spec.template.spec;

  it('runs the command with its arguments', () => {
    expect(container.command).toEqual(['/bin/web']);
    expect(container.args).toEqual(['--listen', ':8080']);
  });

  it('probes as configured, on the numbers of the named ports', () => {
    expect(container.readinessProbe).toEqual({ httpGet: { path: '/healthz', port: 8080, scheme: 'HTTP' }, initialDelaySeconds: 0, periodSeconds: 5, timeoutSeconds: 5, failureThreshold: 3 });
    expect(container.livenessProbe).toEqual({ tcpSocket: { port: 8080 }, initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 6 });
    expect(container.startupProbe).toEqual({ exec: { command: ['cat', '/tmp/started'] }, initialDelaySeconds: 2, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 30 });
    // Every probe there is: the lint needs no exception for it.
    expect(Object.keys(deployment.metadata.labels ?? {}).filter((key) => key.startsWith('homelab.dev/'))).toEqual([]);
  });

  it('runs as the user and group, with no capability, a read-only root and emptyDirs where it writes', () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1500, runAsGroup: 2500, fsGroup: 2500 });
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(container.securityContext.capabilities.add).toBeUndefined();
    const mounts = Object.fromEntries(container.volumeMounts.map((m: any) => [m.mountPath, m.name]));
    const volumes = Object.fromEntries(pod.volumes.map((v: any) => [v.name, v]));
    expect(volumes[mounts['/tmp']].emptyDir).toBeDefined();
    expect(volumes[mounts['/var/cache/web']].emptyDir).toBeDefined();
    expect(docs.find((d) => d.manifest.kind === 'Namespace' && d.manifest.metadata.name === 'web')!.manifest).toMatchObject({
      metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
    });
  });

  it('claims each extra volume as <app>-<name> and recreates the pod on updates', () => {
    expect(find('web/persistentvolumeclaim-web-media.yaml')!.spec).toMatchObject({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5Gi' } } });
    const media = pod.volumes.find((v: any) => v.persistentVolumeClaim?.claimName === 'web-media');
    expect(container.volumeMounts).toContainEqual(expect.objectContaining({ mountPath: '/media', name: media.name }));
    expect(deployment.spec.strategy).toEqual({ type: 'Recreate' });
  });

  it('rolls without a volume unless told to recreate', () => {
    expect(synthesized().deployment.spec.strategy.type).toBe('RollingUpdate');
    expect(synthesized((app) => (app.strategy = 'Recreate')).deployment.spec.strategy).toEqual({ type: 'Recreate' });
  });

  it('marks what the lint excuses: a writable root, and an app without a liveness probe or without any', () => {
    const plain = synthesized().deployment.metadata.labels;
    expect(plain).toMatchObject({ 'homelab.dev/root-filesystem': 'writable', 'homelab.dev/liveness-probe': 'none' });
    const none = synthesized((app) => (app.probes = { none: 'a worker' })).deployment;
    expect(none.metadata.labels).toMatchObject({ 'homelab.dev/probes': 'none' });
    expect(none.spec.template.spec.containers[0].readinessProbe).toBeUndefined();
  });

  it('lets root keep only the capabilities listed, all others dropped, in a namespace at baseline with the reason', () => {
    const { docs: capable, container: rootContainer } = synthesized((app) => ((app.runAsRoot = true), (app.capabilities = ['CHOWN'])));
    expect(rootContainer.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['CHOWN'] });
    const namespace: any = capable.find((d) => d.manifest.kind === 'Namespace' && d.manifest.metadata.name === 'web')!.manifest;
    expect(namespace.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('baseline');
    expect(namespace.metadata.annotations['homelab.dev/pod-security-exception']).toContain('CHOWN');
  });

  it('uses the host network and devices only as the config says, privileged, with its reasons', () => {
    const { deployment: host, docs: hostDocs } = synthesized((app) => {
      app.hostNetwork = { reason: 'mDNS discovery of the TVs' };
      app.devices = [{ path: '/dev/ttyUSB0', reason: 'the Zigbee dongle' }];
    });
    const spec = host.spec.template.spec;
    expect(spec).toMatchObject({ hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet' });
    const dongle = spec.volumes.find((v: any) => v.hostPath);
    expect(dongle.hostPath).toEqual({ path: '/dev/ttyUSB0', type: 'CharDevice' });
    expect(spec.containers[0].volumeMounts).toContainEqual(expect.objectContaining({ mountPath: '/dev/ttyUSB0', name: dongle.name }));
    expect(spec.containers[0].securityContext).toMatchObject({ privileged: true, allowPrivilegeEscalation: true });
    const namespace: any = hostDocs.find((d) => d.manifest.kind === 'Namespace' && d.manifest.metadata.name === 'web')!.manifest;
    expect(namespace.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('privileged');
    expect(namespace.metadata.annotations['homelab.dev/pod-security-exception']).toContain('mDNS discovery of the TVs');
    expect(namespace.metadata.annotations['homelab.dev/pod-security-exception']).toContain('the Zigbee dongle');
    // Without the opt-in: neither.
    expect(synthesized().deployment.spec.template.spec.hostNetwork).toBe(false);
  });
});

describe('an exposed app', () => {
  const routed = (protection: string) =>
    synthesized((app) => {
      app.expose = { subdomain: 'web', protection, hiddenPaths: ['/metrics'] };
    });

  it('is routed by Traefik at its subdomain to the named port, its metrics path hidden, and Traefik may reach the pods', () => {
    const { find, docs } = routed('public');
    const route = find('traefik/ingressroute-web-web.yaml')!;
    expect(route.spec.routes[0].match).toBe('Host(`web.lab.example.net`) && !PathPrefix(`/metrics`)');
    expect(route.spec.routes[0].services).toEqual([{ kind: 'Service', name: 'web', port: 8080 }]);
    expect(route.spec.routes[0].middlewares.map((m: any) => m.name)).toEqual(['web-security-headers']);
    const allow = docs.find((d) => d.path === 'web/networkpolicy-allow-traefik-web.yaml')!.manifest;
    expect(allow.spec.ingress[0].ports).toEqual([{ port: 'http', protocol: 'TCP' }]);
  });

  it('admin: behind the allow-list', () => {
    const route = routed('admin').find('traefik/ingressroute-web-web.yaml')!;
    expect(route.spec.routes[0].middlewares.map((m: any) => m.name)).toEqual(['web-security-headers', 'web-allow-list']);
  });

  it('is checked end to end through Traefik, from its namespace, as its protection says', () => {
    const { platform } = routed('admin');
    const web = platform.services.find((s) => s.serviceName === 'web')!;
    expect(web.endToEndChecks.map((c) => c.job)).toEqual(['web-ui']);
    expect(web.endToEndChecks[0].check.env).toMatchObject({ HOST: 'web.lab.example.net', TRAEFIK: 'traefik.traefik.svc:443', PROTECTION: 'admin', HIDDEN_PATHS: '/metrics', CURL_TLS: '' });
    expect(web.exposures[0].checkedFrom).toEqual({ 'app.kubernetes.io/component': 'checkpoint' });
    // Every ask of / failing at curl's limit, each pause, and the hidden path at the limit end before the Job's deadline.
    const { check } = web.endToEndChecks[0];
    const callSeconds = Number(/--max-time (\d+)/.exec(check.script)![1]);
    const pauseSeconds = Number(/\bsleep (\d+)/.exec(check.script)![1]);
    expect(checkDeadlineSeconds(check)).toBeGreaterThanOrEqual(CHECK_START_SECONDS + Number(check.env!.UI_CHECKS) * (callSeconds + pauseSeconds) + callSeconds);
  });

  it("lets its checks, and only them, reach Traefik's websecure port, both ways", () => {
    // The example's Node-RED, where NetworkPolicies restrict egress too.
    const [{ env }] = synthesizePlatforms(platformText());
    const policy = (path: string) => manifestAt(env, path).spec;
    const checks = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'node-red' } }, podSelector: { matchLabels: { 'app.kubernetes.io/component': 'checkpoint' } } };
    expect(policy('traefik/networkpolicy-allow-node-red-check-node-red.yaml').ingress).toEqual([{ from: [checks], ports: [{ port: 8443, protocol: 'TCP' }] }]);
    expect(policy('node-red/networkpolicy-egress-check-node-red.yaml')).toMatchObject({
      podSelector: { matchLabels: { 'app.kubernetes.io/component': 'checkpoint' } },
      egress: [{ to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'traefik' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'traefik' } } }], ports: [{ port: 8443, protocol: 'TCP' }] }],
    });
  });

  it('is not verified against a staging certificate', () => {
    const { platform } = synthesized((app, config) => {
      app.expose = { subdomain: 'web', protection: 'public' };
      config.services.traefik.issuer = 'letsencrypt-staging';
    });
    expect(platform.services.find((s) => s.serviceName === 'web')!.endToEndChecks[0].check.env).toMatchObject({ CURL_TLS: '--insecure' });
  });
});

/** A single sign-on service that records what it is handed through the seam (Authentik implements it: test/authentik.test.ts). */
class RecordingSignOn extends HomelabService implements SingleSignOnProvider {
  readonly handed: { service: string; subdomain: string; protection: SignInProtection }[] = [];
  readonly forwardAuth = {
    address: 'http://sign-on.sign-on.svc/auth',
    authResponseHeaders: [],
    loginHost: 'login.example.net',
    ownPaths: { pathPrefix: '/sign-on', namespace: 'sign-on', serviceName: 'sign-on', servicePort: 80 },
  };
  constructor(scope: Platform) {
    super(scope, 'sign-on', {}, { layer: Layer.SECURITY, namespace: 'sign-on' });
    new Checkpoint(this, 'checkpoint', { description: 'test double', image: 'docker.io/library/busybox:1.37.0', script: 'true' });
  }
  signInFor(service: HomelabService, exposure: Exposure, protection: SignInProtection): void {
    this.handed.push({ service: service.serviceName, subdomain: exposure.subdomain, protection });
  }
  /** Argo CD, always there, logs in through it too (test/single-sign-on.test.ts tests that side). */
  registerOidcClient(): OidcIssuer {
    const base = 'https://sign-on.example.net';
    return {
      issuerUrl: `${base}/`,
      scopes: ['openid', 'groups'],
      groupsClaim: 'groups',
      adminGroup: 'admins',
      viewerGroup: 'viewers',
      endpoints: { authorization: `${base}/authorize`, token: `${base}/token`, userinfo: `${base}/userinfo` },
    };
  }
}

describe('the single sign-on seam', () => {
  const signOnEntry = defineService({ name: 'sign-on', names: ['sign-on'], providesSingleSignOn: true, enabled: () => true, build: (platform) => new RecordingSignOn(platform) });
  // The provider comes before the apps, as its entry will.
  const catalog = catalogWith(signOnEntry, { before: appsEntry });

  it('accepts sso once an entry provides single sign-on, and hands the provider each such exposure', () => {
    const config = withApp((app) => (app.expose = { subdomain: 'web', protection: 'sso' }));
    const [{ platform }] = synthesizePlatforms(toYamlText(config), catalog);
    // By name: HomelabService's instanceof recognises any service.
    const provider = platform.services.find((s) => s.serviceName === 'sign-on') as RecordingSignOn;
    expect(provider.handed).toEqual([{ service: 'web', subdomain: 'web', protection: 'sso' }]);
  });

  it('refuses oidc for an app that does not say how it is a client, and oidc settings on another protection', () => {
    const withoutClient = withApp((app) => (app.expose = { subdomain: 'web', protection: 'oidc' }));
    expect(() => synthesizePlatforms(toYamlText(withoutClient), catalog)).toThrow(/apps\.web\.expose\.oidc: expected the redirectPaths the app sends users back to/);
    const stray = withApp((app) => (app.expose = { subdomain: 'web', protection: 'sso', oidc: { redirectPaths: ['/cb'] } }));
    expect(() => synthesizePlatforms(toYamlText(stray), catalog)).toThrow(/apps\.web\.expose\.oidc: expected no oidc: only an oidc exposure is a client/);
  });

  it('refuses a hidden path that hides an oidc redirect path (Traefik matches prefixes as strings)', () => {
    const hidden = withApp((app) => (app.expose = { subdomain: 'web', protection: 'oidc', hiddenPaths: ['/metrics', '/auth'], oidc: { redirectPaths: ['/authorize/callback'] } }));
    expect(() => synthesizePlatforms(toYamlText(hidden), catalog)).toThrow(
      'apps.web.expose.hiddenPaths.1: expected a path that does not hide the redirect path "/authorize/callback" (Traefik matches the prefix "/auth")',
    );
    const apart = withApp((app) => (app.expose = { subdomain: 'web', protection: 'oidc', hiddenPaths: ['/metrics'], oidc: { redirectPaths: ['/auth/callback'] } }));
    expect(() => synthesizePlatforms(toYamlText(apart), catalog)).not.toThrow();
  });
});

describe('configuration files', () => {
  const CONTENT = 'default_config:\nhttp:\n  trusted_proxies: [10.42.0.0/16]\n';

  it('inline: one ConfigMap, each file mounted read-only at its path, the pods rolled by a hash of the content', () => {
    const { find, deployment, container } = synthesized((app) => (app.files = [{ path: '/config/configuration.yaml', content: CONTENT }, { path: '/etc/web/extra.ini', content: 'a=1\n' }]));
    const configMap = find('web/configmap-web-files.yaml')!;
    expect(configMap.data).toEqual({ 'config_configuration.yaml': CONTENT, 'etc_web_extra.ini': 'a=1\n' });
    expect(container.volumeMounts.filter((m: any) => m.readOnly)).toEqual([
      { mountPath: '/config/configuration.yaml', name: 'files', readOnly: true, subPath: 'config_configuration.yaml' },
      { mountPath: '/etc/web/extra.ini', name: 'files', readOnly: true, subPath: 'etc_web_extra.ini' },
    ]);
    const hash = deployment.spec.template.metadata.annotations['homelab.dev/files-sha256'];
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    const changed = synthesized((app) => (app.files = [{ path: '/config/configuration.yaml', content: `${CONTENT}# changed\n` }, { path: '/etc/web/extra.ini', content: 'a=1\n' }]));
    expect(changed.deployment.spec.template.metadata.annotations['homelab.dev/files-sha256']).not.toBe(hash);
  });

  /** The text the loader read for the web app's first file. */
  const fileContent = (config: string) => settingsIn(parseText(readFileSync(config, 'utf8'), config).environments.get('lab')!, appsEntry).web.files[0].content;

  /** A config folder with homelab.yaml (the web app reading `from`) and the files `files` names. */
  function folder(from: string, files: Record<string, string | Buffer> = {}): { dir: string; config: string } {
    const dir = tempDir();
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), content);
    }
    const config = join(dir, 'homelab.yaml');
    writeFileSync(config, toYamlText(withApp((app) => (app.files = [{ path: '/config/configuration.yaml', from }]))));
    return { dir, config };
  }

  it('from a file next to homelab.yaml: its text, and the output follows the file', () => {
    const { dir, config } = folder('web/configuration.yaml', { 'web/configuration.yaml': CONTENT });
    const out = join(dir, 'k8s');
    const docs = join(dir, 'platform.md');
    expect(runMain(['--config', config, '--out', out, '--docs', docs, '--quiet']).status).toBe(0);
    const first = readTree(out);
    expect(first.get('lab/web/configmap-web-files.yaml')).toContain('trusted_proxies: [10.42.0.0/16]');
    // The same file: the same bytes.
    expect(runMain(['--config', config, '--out', out, '--docs', docs, '--quiet']).status).toBe(0);
    expect(readTree(out)).toEqual(first);
    writeFileSync(join(dir, 'web/configuration.yaml'), `${CONTENT}logger: {default: info}\n`);
    expect(runMain(['--config', config, '--out', out, '--docs', docs, '--quiet']).status).toBe(0);
    const second = readTree(out);
    expect(second.get('lab/web/configmap-web-files.yaml')).toContain('logger: {default: info}');
    const hash = (tree: Map<string, string>) => /homelab.dev\/files-sha256: (\w+)/.exec(tree.get('lab/web/deployment-web.yaml')!)![1];
    expect(hash(second)).not.toBe(hash(first));
    expect(hash(second)).toBe(createHash('sha256').update(`config_configuration.yaml\0${CONTENT}logger: {default: info}\n\0`).digest('hex'));
  });

  it.each<[string, () => { config: string }, string]>([
    ['a missing file', () => folder('web/missing.yaml'), 'apps.web.files.0.from: cannot read "web/missing.yaml" next to the config file (no such file)'],
    ['a directory', () => folder('web', { 'web/other.yaml': 'x' }), 'apps.web.files.0.from: expected a regular file, received "web"'],
    ['the config folder itself', () => folder('.', {}), 'apps.web.files.0.from: expected a regular file, received "."'],
    [
      'a symbolic link out of the folder',
      () => {
        const outside = tempDir();
        writeFileSync(join(outside, 'secret.txt'), 'token');
        const made = folder('web/link.yaml', { 'web/placeholder': '' });
        symlinkSync(join(outside, 'secret.txt'), join(made.dir, 'web/link.yaml'));
        return made;
      },
      `apps.web.files.0.from: expected a file inside the config file's folder, received "web/link.yaml", which leads outside it`,
    ],
    ['a file over the limit', () => folder('big.txt', { 'big.txt': 'x'.repeat(CONFIG_FILE_BYTES + 1) }), `apps.web.files.0.from: expected a file of at most ${CONFIG_FILE_BYTES / 1024} KiB, received "big.txt"`],
    ['a binary file', () => folder('blob.bin', { 'blob.bin': Buffer.from([0xff, 0xfe, 0x00]) }), 'apps.web.files.0.from: expected a UTF-8 text file, received "blob.bin"'],
    ['a hidden file (credentials live there)', () => folder('.env', { '.env': 'TOKEN=secret\n' }), 'apps.web.files.0.from: expected a file that is not hidden (no name starting with "."), received ".env"'],
    ['a file in a hidden folder', () => folder('.git/config', { '.git/config': '[remote]\n' }), 'apps.web.files.0.from: expected a file that is not hidden (no name starting with "."), received ".git/config"'],
    [
      'a link to a hidden file',
      () => {
        const made = folder('web/env', { '.env': 'TOKEN=secret\n', 'web/placeholder': '' });
        symlinkSync(join(made.dir, '.env'), join(made.dir, 'web/env'));
        return made;
      },
      'apps.web.files.0.from: expected a file that is not hidden (no name starting with "."), received "web/env"',
    ],
    [
      'a FIFO (it would block a read)',
      () => {
        const made = folder('web/pipe', { 'web/placeholder': '' });
        execFileSync('mkfifo', [join(made.dir, 'web/pipe')]);
        return made;
      },
      'apps.web.files.0.from: expected a regular file, received "web/pipe"',
    ],
  ])('refuses %s: an error line naming the config path, exit 2, the output untouched', (_, make, message) => {
    const { config } = make();
    const out = join(tempDir(), 'k8s');
    mkdirSync(out);
    writeFileSync(join(out, 'keep.yaml'), 'keep');
    const run = runMain(['--config', config, '--out', out, '--quiet']);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`error: ${config}: ${message}`);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(readTree(out)).toEqual(new Map([['keep.yaml', 'keep']]));
  });


  it('accepts a file exactly at the limit', () => {
    const { config } = folder('big.txt', { 'big.txt': 'x'.repeat(CONFIG_FILE_BYTES) });
    expect(fileContent(config)).toHaveLength(CONFIG_FILE_BYTES);
  });
});

const containerOf = (manifest: any) => manifest.spec.template.spec.containers[0];

/** The checkpoint of an app probed over TCP, run against `address` with curl's time limit `seconds` (6 in the Job). */
const tcpProbeAt = (job: any, address: string, seconds: string) =>
  JSON.parse(JSON.stringify(containerOf(job)).replaceAll('web.web.svc:9100', address).replaceAll('--max-time 6', `--max-time ${seconds}`));

/**
 * The TCP probe's passing run waits out curl's time limit against a server that keeps the
 * connection open (most TCP servers do: curl then ends by its time limit, not with exit 0). It
 * starts before the file's first test, so that they run meanwhile; its test awaits it.
 */
let tcpProbe: { job: any; server: Server; port: number; passed: Promise<FakeCommandRun<undefined>> };
beforeAll(async () => {
  const job = synthesized((app) => (app.probes = { readiness: { tcp: { port: 'metrics' } } })).find('web/job-web-checkpoint.yaml')!;
  const server = createServer(() => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  tcpProbe = { job, server, port, passed: startWithFakeCommands(tcpProbeAt(job, `127.0.0.1:${port}`, '0.5'), { sleep: FAKE_SLEEP }) };
});
afterAll(async () => {
  tcpProbe?.server.close();
  // Also when the test that awaits it did not run (a filter, a failure before it).
  await tcpProbe?.passed;
});

describe('checkpoint scripts against fake answers', () => {
  /** A fake curl exiting with $CURL_EXIT (0 by default), logging its arguments. */
  const exitingCurl = 'echo "$*" >> "$FAKE_BIN/calls"\nexit "${CURL_EXIT:-0}"';
  const run = (manifest: any, curlExit: number) =>
    runWithFakeCommands(containerOf(manifest), { curl: exitingCurl, sleep: FAKE_SLEEP }, { env: { CURL_EXIT: String(curlExit) }, collect: (bin) => readFileSync(`${bin}/calls`, 'utf8') });

  it("the app's checkpoint asks its readiness probe's path, and fails on a 4xx/5xx (curl --fail)", () => {
    const job = synthesized().find('web/job-web-checkpoint.yaml')!;
    const passed = run(job, 0);
    expect(passed.status).toBe(0);
    expect(passed.collected).toContain('--fail http://web.web.svc:8080/healthz');
    // curl --fail exits 22 on an HTTP error.
    expect(run(job, 22).status).not.toBe(0);
  });

  it('an app scaled to zero: its checkpoint asks nothing and passes, and its host is not checked end to end', () => {
    const { find, platform, deployment } = synthesized((app) => {
      app.replicas = 0;
      app.expose = { subdomain: 'web', protection: 'public' };
    });
    expect(deployment.spec.replicas).toBe(0);
    // A curl that would fail every call: none is made.
    const passed = runWithFakeCommands(containerOf(find('web/job-web-checkpoint.yaml')), { curl: exitingCurl }, { env: { CURL_EXIT: '22' }, collect: (bin) => existsSync(`${bin}/calls`) });
    expect(passed.status).toBe(0);
    expect(passed.collected).toBe(false);
    // Still routed: scaling it up again needs no other change.
    expect(find('traefik/ingressroute-web-web.yaml')).toBeDefined();
    expect(platform.services.find((s) => s.serviceName === 'web')!.endToEndChecks).toEqual([]);
  });

  it("an HTTPS probe: the checkpoint asks over HTTPS, without verifying the app's own certificate (neither does the kubelet)", () => {
    const job = synthesized((app) => (app.probes.readiness.http.scheme = 'HTTPS')).find('web/job-web-checkpoint.yaml')!;
    expect(run(job, 0).collected).toContain('--fail --insecure https://web.web.svc:8080/healthz');
  });

  it('a TCP readiness probe, with the real curl: passes on a server that holds the connection open, fails where nothing listens', async () => {
    const { job, server, port } = tcpProbe;
    expect(JSON.stringify(containerOf(job))).toContain('telnet://web.web.svc:9100');
    try {
      // The same script against the server tcpProbe started, with a shorter time limit (the passing run waits all of it).
      const passed = await tcpProbe.passed;
      expect(passed.stdout).toContain(`127.0.0.1:${port} accepts connections`);
      expect(passed.status).toBe(0);
    } finally {
      server.close();
    }
    const failed = runWithFakeCommands(tcpProbeAt(job, `127.0.0.1:${port}`, '1'), { sleep: FAKE_SLEEP });
    expect(failed.stderr).toContain(`127.0.0.1:${port} accepts no connection`);
    expect(failed.status).not.toBe(0);
  });

  /**
   * The UI check with a fake curl answering $CODES (`path=code`, `/` by default 200) the way
   * curl -w '%{http_code}' does; 000 with curl's exit 7.
   */
  const uiCurl = String.raw`for url; do :; done
path=/${'$'}{url#https://*/}
echo "$path" >> "$FAKE_BIN/calls"
code=200
for pair in $CODES; do if [ "${'$'}{pair%=*}" = "$path" ]; then code=${'$'}{pair#*=}; fi; done
printf '%s' "$code"
if [ "$code" = 000 ]; then exit 7; fi`;
  const ui = (protection: string, codes: string, hidden = '/metrics', tries = '2') =>
    runWithFakeCommands(
      { command: ['sh', '-ec', UI_CHECK_SCRIPT] },
      { curl: uiCurl, sleep: FAKE_SLEEP_LOGGED },
      {
        env: { HOST: 'web.lab.example.net', TRAEFIK: 'traefik.traefik.svc:443', PROTECTION: protection, HIDDEN_PATHS: hidden, CURL_TLS: '', UI_CHECKS: tries, CODES: codes },
        collect: (bin) => readFakeFile(bin, 'calls').split('\n').filter(Boolean),
      },
    );

  it('asks / five minutes, 10 s apart, in every Job that checks a UI, and stops with a message where the tries are unset', () => {
    const jobs = retryTries(synthesizePlatformFixture(), 'UI_CHECKS');
    expect(jobs.length).toBeGreaterThan(0);
    for (const { path, tries } of jobs) expect(tries * 10, path).toBe(300);
    expect(ui('public', '/=404').collected).toEqual(['/', 'sleep 10', '/']);
    const unset = ui('public', '/=404', '/metrics', '');
    expect(unset.status).not.toBe(0);
    expect(unset.stderr).toContain('UI_CHECKS: unset (the Job sets it)');
    expect(unset.collected).toEqual(['/']);
  });

  it.each<[string, string, string]>([
    ['public', '/=200 /metrics=404', 'https://web.lab.example.net/ (public) answered 200 through Traefik'],
    ['public', '/=302 /metrics=404', 'answered 302'],
    ['admin', '/=403 /metrics=404', 'https://web.lab.example.net/ (admin) answered 403 through Traefik'],
    // The app logs users in itself: its login page answers.
    ['oidc', '/=200 /metrics=404', 'https://web.lab.example.net/ (oidc) answered 200 through Traefik'],
    ['sso', '/=302 /metrics=404', 'https://web.lab.example.net/ (sso) answered 302 through Traefik'],
  ])('passes: %s host answering %s', (protection, codes, line) => {
    const result = ui(protection, codes);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(line);
  });

  it.each<[string, string, string]>([
    ['public', '/=404', "https://web.lab.example.net/ (public): no router for the host (Traefik's 404)"],
    ['public', '/=502', 'routed, but the app does not answer (502)'],
    ['public', '/=000', 'no answer from Traefik'],
    ['public', '/=401', 'the UI answered 401'],
    ['admin', '/=200', 'the admin host answered 200 to a client that is not allowed in'],
    ['sso', '/=200', 'the sso host answered 200 to a client that is not allowed in'],
    ['oidc', '/=401', 'the UI answered 401'],
    ['public', '/=200 /metrics=200', 'https://web.lab.example.net/metrics is hidden, but answered 200'],
  ])('fails: %s host answering %s', (protection, codes, message) => {
    const result = ui(protection, codes);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(message);
  });
});
