/**
 * Traefik and the Cloudflare Tunnel: chart values, config errors naming their paths, and the
 * checkpoints run against fake commands.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { tunnelConfig } from '../charts/cloudflared';
import { helmValuesErrors } from '../lib/tools/validate/helm-values';
import { EXCEPTION_ANNOTATION } from '../lib/model/pod-security';
import { cidrsOverlap } from '../lib/model/network';
import { CHECK_START_SECONDS } from '../lib/model/checkpoint';
import { answerAsApiServer, platformObject, FAKE_CLOCK, FAKE_SLEEP, FAKE_SLEEP_LOGGED, manifestsOf, parseText, retryTries, runWithFakeCommands, synthesizePlatformFixture, toYamlText, kubeGetMaxSeconds } from './support';

const [dev, , prod] = synthesizePlatformFixture();
const file = (env: typeof dev, path: string) => manifestsOf(env).find((m) => m.path === path)!.manifest;
const chartOf = (env: typeof dev) => file(env, 'apps/application-traefik.yaml').spec.sources.find((s: any) => s.chart);

describe('traefik chart', () => {
  const chart = chartOf(dev);
  const values = chart.helm.valuesObject;

  it('installs the pinned chart with values its schema accepts', () => {
    expect(chart).toMatchObject({ repoURL: 'https://traefik.github.io/charts', chart: 'traefik', targetRevision: '41.3.0' });
    expect(helmValuesErrors('traefik', values)).toEqual([]);
    expect(helmValuesErrors('traefik', chartOf(prod).helm.valuesObject)).toEqual([]);
  });

  it('redirects web permanently to websecure, which terminates TLS', () => {
    expect(values.ports.web.http.redirections.entryPoint).toEqual({ to: 'websecure', scheme: 'https', permanent: true });
    expect(values.ports.websecure.http.tls.enabled).toBe(true);
  });

  it('keeps client addresses (externalTrafficPolicy Local) and takes the service type from the config', () => {
    expect(values.service.spec).toEqual({ type: 'LoadBalancer', externalTrafficPolicy: 'Local' });
    expect(values.service.annotations).toEqual({});
    expect(chartOf(prod).helm.valuesObject.service.annotations).toEqual({ 'metallb.io/loadBalancerIPs': '192.168.1.240' });
  });

  it('serves the dashboard only through its admin route, never on the insecure traefik entry point', () => {
    expect(values.api).toEqual({ dashboard: true });
    expect(values.ingressRoute.dashboard.enabled).toBe(false);
    const route = file(dev, 'traefik/ingressroute-traefik.yaml');
    expect(route.spec.entryPoints).toEqual(['websecure']);
    expect(route.spec.routes[0].services).toEqual([{ kind: 'TraefikService', name: 'api@internal' }]);
    expect(route.spec.routes[0].middlewares.map((m: any) => m.name)).toEqual(['traefik-security-headers', 'traefik-allow-list']);
  });

  it('reads only IngressRoutes, without cross-namespace references or ExternalName services', () => {
    expect(values.providers).toEqual({
      kubernetesCRD: { enabled: true, allowCrossNamespace: false, allowExternalNameServices: false },
      kubernetesIngress: { enabled: false },
    });
  });

  it('scrapes the Prometheus entry point and alerts on the 5xx ratio per service', () => {
    expect(values.metrics.prometheus.entryPoint).toBe('metrics');
    const monitor = file(dev, 'traefik/podmonitor-traefik-proxy.yaml');
    expect(monitor.spec.podMetricsEndpoints[0].port).toBe('metrics');
    const rules = file(dev, 'traefik/prometheusrule-traefik-alerts.yaml').spec.groups[0].rules;
    const errors = rules.find((r: any) => r.alert === 'TraefikServiceErrors');
    expect(errors.expr).toContain('traefik_service_requests_total{homelab_service="traefik", code=~"5.."}');
    expect(errors.expr).toContain('sum by (service)');
  });

  it('spreads two replicas over the nodes with a disruption budget in prod', () => {
    const prodValues = chartOf(prod).helm.valuesObject;
    expect(prodValues.deployment.replicas).toBe(2);
    expect(prodValues.podDisruptionBudget).toEqual({ enabled: true, maxUnavailable: 1 });
    expect(prodValues.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey).toBe('kubernetes.io/hostname');
    expect(values.podDisruptionBudget).toBeUndefined();
  });

  it('runs restricted: the chart defaults (non-root 65532, read-only root) are not overridden, with resources set', () => {
    expect(file(dev, 'traefik/namespace-traefik.yaml').metadata.annotations?.[EXCEPTION_ANNOTATION]).toBeUndefined();
    expect(file(dev, 'traefik/namespace-traefik.yaml').metadata.labels!['pod-security.kubernetes.io/enforce']).toBe('restricted');
    expect(values.securityContext).toBeUndefined();
    expect(values.podSecurityContext).toBeUndefined();
    expect(values.resources).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } });
  });
});

describe('networking config', () => {
  const errorsOf = (mutate: (config: Record<string, any>) => void) => {
    const config = platformObject();
    mutate(config);
    try {
      parseText(toYamlText(config), 'homelab.yaml');
      return '';
    } catch (error) {
      return String(error);
    }
  };

  it('requires cert-manager with Traefik', () => {
    expect(errorsOf((c) => (c.services.certManager = { enabled: false }))).toMatch(
      /services\.traefik\.enabled: expected services\.certManager\.enabled: every route is served with a publicly signed certificate/,
    );
  });

  it('rejects a subdomain used twice, naming both paths', () => {
    expect(errorsOf((c) => (c.services.longhorn.subdomain = 'argocd'))).toMatch(
      /services\.longhorn\.subdomain: expected another subdomain: "argocd" is already used by services\.argocd\.subdomain/,
    );
    expect(errorsOf((c) => (c.services.traefik.dashboard = { subdomain: 'grafana' }))).toMatch(
      /services\.traefik\.dashboard\.subdomain: expected another subdomain: "grafana" is already used by services\.monitoring\.grafana\.subdomain/,
    );
  });

  it('requires admin access, and never the pod network in the allow-list', () => {
    expect(errorsOf((c) => (c.services.traefik.adminAccess = {}))).toMatch(/services\.traefik\.adminAccess: expected an allowList of client networks/);
    expect(errorsOf((c) => (c.services.traefik.adminAccess = { allowList: ['192.168.1.0/24', '10.0.0.0/8'] }))).toMatch(
      /services\.traefik\.adminAccess\.allowList\.1: expected a network outside the pod network 10\.42\.0\.0\/16/,
    );
    expect(errorsOf((c) => (c.services.traefik.adminAccess = { allowList: ['10.42.3.0/24'] }))).toMatch(/allowList\.0: expected a network outside/);
    expect(errorsOf((c) => (c.services.traefik.adminAccess = { allowList: ['192.168.1.0/33'] }))).toMatch(/allowList\.0: expected an IPv4 CIDR/);
    // Forward-auth alone is enough.
    expect(errorsOf((c) => (c.services.traefik.adminAccess = { forwardAuth: { address: 'http://authelia.auth.svc/api/authz/forward-auth' } }))).toBe('');
  });

  it('checks the service type settings', () => {
    expect(errorsOf((c) => Object.assign(c.services.traefik, { serviceType: 'NodePort', loadBalancerIP: '192.168.1.240' }))).toMatch(
      /services\.traefik\.loadBalancerIP: expected no loadBalancerIP with serviceType NodePort/,
    );
    expect(errorsOf((c) => (c.services.traefik.serviceType = 'ClusterIP'))).toMatch(/services\.traefik\.serviceType: expected one of "LoadBalancer", "NodePort"/);
  });

  it('needs Traefik, production certificates and a tunnel ID for the tunnel', () => {
    expect(errorsOf((c) => (c.services.traefik.enabled = false))).toMatch(/environments\.prod\.services\.cloudflared\.enabled: expected services\.traefik\.enabled/);
    expect(errorsOf((c) => (c.services.traefik.issuer = 'letsencrypt-staging'))).toMatch(
      /environments\.prod\.services\.cloudflared\.enabled: expected services\.traefik\.issuer letsencrypt-production/,
    );
    expect(errorsOf((c) => (c.services.cloudflared = { enabled: true }))).toMatch(/services\.cloudflared\.tunnelId: expected the tunnel UUID/);
  });

  it('tells overlapping networks apart', () => {
    expect(cidrsOverlap('10.0.0.0/8', '10.42.0.0/16')).toBe(true);
    expect(cidrsOverlap('10.42.7.0/24', '10.42.0.0/16')).toBe(true);
    expect(cidrsOverlap('0.0.0.0/0', '10.42.0.0/16')).toBe(true);
    expect(cidrsOverlap('192.168.1.0/24', '10.42.0.0/16')).toBe(false);
    expect(cidrsOverlap('10.43.0.0/16', '10.42.0.0/16')).toBe(false);
  });
});

describe('traefik checkpoint', () => {
  const container = file(dev, 'traefik/job-traefik-checkpoint.yaml').spec.template.spec.containers[0];
  const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
  /**
   * A fake curl: the API server reports every Certificate Ready except $NOT_READY; Traefik
   * answers 403 (the allow-list) for every host, or the code $CODES gives it (`host=code`).
   * Every call is logged to $FAKE_BIN/calls.
   */
  const curl = String.raw`echo "$*" >> "$FAKE_BIN/calls"
for url; do :; done
case "$url" in
  https://kubernetes.default.svc*)
    status=True
    if [ -n "$NOT_READY" ] && [ "\${url##*/}" = "$NOT_READY" ]; then status=False; fi
    ${answerAsApiServer(`printf '{"status":{"conditions":[{"lastTransitionTime":"x","status":"%s","type":"Ready"}]}}' "$status"`)} ;;
  *)
    host=\${url#https://}; host=\${host%/}
    code=403
    for pair in $CODES; do if [ "\${pair%=*}" = "$host" ]; then code=\${pair#*=}; fi; done
    printf '%s' "$code"
    if [ "$code" = 000 ]; then exit 7; fi ;;
esac`.replace(/\\\$/g, '$');
  const run = (options: { codes?: string; notReady?: string; routeChecks?: string } = {}) =>
    runWithFakeCommands(container, { curl, sleep: FAKE_SLEEP_LOGGED, date: FAKE_CLOCK }, {
      // A certificate that is not Ready, or a host that answers otherwise, is asked for twice, not thirty times
      // (cert-manager.test.ts holds the Job's tries for certificates, a test below for hosts).
      env: { CODES: options.codes ?? '', NOT_READY: options.notReady ?? '', CONDITION_CHECKS: '2', ROUTE_CHECKS: options.routeChecks ?? '2' },
      collect: (bin) => readFileSync(`${bin}/calls`, 'utf8'),
    });
  /** How often a run asked for a host's `/`. */
  const asked = (calls: string, host: string) => calls.split('\n').filter((call) => call.endsWith(`https://${host}/`)).length;

  it('lists every routed host and certificate', () => {
    expect(env.ROUTES.split(' ').sort()).toEqual(
      [
        // Admin hosts refuse with the allow-list's 403.
        ...['alertmanager', 'argocd', 'grafana'].map((s) => `${s}.dev.home.example.net=forbidden`),
        // The own apps' exposures, as their config protects them.
        'home.dev.home.example.net=public',
        'longhorn.dev.home.example.net=forbidden',
        'n8n.dev.home.example.net=public',
        ...['node-red', 'prometheus', 'rabbitmq', 'traefik', 'vault'].map((s) => `${s}.dev.home.example.net=forbidden`),
      ],
    );
    expect(env.CERTIFICATES.split(' ').sort()).toEqual([
      'argocd/argocd',
      'home-assistant/home',
      'longhorn-system/longhorn',
      'monitoring/alertmanager',
      'monitoring/grafana',
      'monitoring/prometheus',
      'n8n/n8n',
      'node-red/node-red',
      'rabbitmq/rabbitmq',
      'traefik/traefik',
      'vault/vault',
    ]);
    // No single sign-on in the fixture: no login host to be sent to.
    expect(env).toMatchObject({ TRAEFIK: 'traefik.traefik.svc:443', LOGIN_HOST: '', CURL_TLS: '' });
  });

  it('passes when the certificates are Ready and every admin host refuses the checkpoint with 403, asked with its own SNI and Host', () => {
    const result = run();
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.collected).toContain('--connect-to argocd.dev.home.example.net:443:traefik.traefik.svc:443 https://argocd.dev.home.example.net/');
    expect(result.stdout).toContain('Certificate monitoring/grafana is Ready');
  });

  it('fails on a host without a router, naming it', () => {
    const result = run({ codes: 'grafana.dev.home.example.net=404' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("grafana.dev.home.example.net (forbidden): no router for the host (Traefik's 404)");
    // Asked as often as the Job's env says, 10 s apart; the others once.
    expect(asked(result.collected, 'grafana.dev.home.example.net')).toBe(2);
    expect(asked(result.collected, 'argocd.dev.home.example.net')).toBe(1);
    expect(result.collected.split('\n').filter((call) => call.startsWith('sleep '))).toEqual(['sleep 10']);
  });

  it('reports every host still failing after the rounds, each with its last answer, asking only those again', () => {
    const result = run({ codes: 'grafana.dev.home.example.net=404 longhorn.dev.home.example.net=503' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("grafana.dev.home.example.net (forbidden): no router for the host (Traefik's 404)");
    expect(result.stderr).toContain('longhorn.dev.home.example.net (forbidden): routed, but the backend does not answer (503)');
    expect(result.stderr).toMatch(/^2 host\(s\) not routed$/m);
    expect([asked(result.collected, 'grafana.dev.home.example.net'), asked(result.collected, 'longhorn.dev.home.example.net'), asked(result.collected, 'argocd.dev.home.example.net')]).toEqual([2, 2, 1]);
  });

  it('stops asking after its seconds, whatever rounds are left', () => {
    // The fake clock moves a minute per read: the check reads it once to start and once per round.
    const result = run({ codes: 'grafana.dev.home.example.net=404', routeChecks: '30' });
    expect(result.status).not.toBe(0);
    expect(asked(result.collected, 'grafana.dev.home.example.net')).toBe(Number(env.ROUTE_CHECK_SECONDS) / 60);
  });

  it('asks for five minutes in every Job that checks routes, and stops with a message where its tries or seconds are unset', () => {
    const jobs = retryTries(synthesizePlatformFixture(), 'ROUTE_CHECKS');
    expect(jobs.length).toBeGreaterThan(0);
    for (const { path, tries } of jobs) expect(tries * 10, path).toBe(300);
    expect(Number(env.ROUTE_CHECK_SECONDS)).toBe(300);
    const unset = run({ codes: 'grafana.dev.home.example.net=404', routeChecks: '' });
    expect(unset.status).not.toBe(0);
    expect(unset.stderr).toContain('ROUTE_CHECKS: unset (the Job sets it)');
    expect(asked(unset.collected, 'grafana.dev.home.example.net')).toBe(1);
    const noSeconds = runWithFakeCommands(container, { curl, sleep: FAKE_SLEEP }, { env: { ROUTE_CHECK_SECONDS: '', CONDITION_CHECKS: '2' } });
    expect(noSeconds.status).not.toBe(0);
    expect(noSeconds.stderr).toContain('ROUTE_CHECK_SECONDS: unset (the Job sets it)');
  });

  it("outlasts the certificates' one wait and the routes' rounds, with a last round of every host at curl's limit, in every Job that checks routes", () => {
    const jobs = synthesizePlatformFixture().flatMap((output) => manifestsOf(output).filter(({ manifest }) => manifest.kind === 'Job'));
    const checking = jobs.filter(({ manifest }) => manifest.spec.template.spec.containers[0].env?.some((e: any) => e.name === 'ROUTE_CHECKS'));
    expect(checking.length).toBeGreaterThan(0);
    for (const { path, manifest } of checking) {
      const container = manifest.spec.template.spec.containers[0];
      const value = (name: string) => container.env.find((e: any) => e.name === name).value;
      const script: string = container.command[2];
      const apiCallSeconds = kubeGetMaxSeconds(script);
      const routeCallSeconds = Number(/redirect_url\}' --max-time (\d+)/.exec(script)![1]);
      // The tries are the script's: every one failing, a pause after each but the last, and each certificate's passing ask.
      const tries = Number(value('CONDITION_CHECKS'));
      const certificateSeconds = tries * apiCallSeconds + (tries - 1) * 10 + value('CERTIFICATES').split(' ').length * apiCallSeconds;
      const worst = CHECK_START_SECONDS + certificateSeconds + Number(value('ROUTE_CHECK_SECONDS')) + 10 + value('ROUTES').split(' ').length * routeCallSeconds;
      expect(manifest.spec.activeDeadlineSeconds, path).toBeGreaterThanOrEqual(worst);
    }
  });

  it('fails on a backend Traefik cannot reach, and on no answer at all', () => {
    expect(run({ codes: 'longhorn.dev.home.example.net=503' }).stderr).toContain('routed, but the backend does not answer (503)');
    expect(run({ codes: 'argocd.dev.home.example.net=000' }).stderr).toContain('no answer from Traefik');
  });

  it('fails when an admin host answers a client outside the allow-list', () => {
    const result = run({ codes: 'argocd.dev.home.example.net=200' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('argocd.dev.home.example.net (forbidden): a protected host (forbidden) answered 200 to a client outside the allow-list');
  });

  it('fails when a certificate is not Ready', () => {
    const result = run({ notReady: 'rabbitmq' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('/certificates/rabbitmq: condition Ready is not True');
  });

  it('grants reading exactly those certificates', () => {
    const role = file(dev, 'traefik/clusterrole-traefik-checkpoint.yaml');
    expect(role.rules).toEqual([
      { apiGroups: ['cert-manager.io'], resources: ['certificates'], verbs: ['get'], resourceNames: ['alertmanager', 'argocd', 'grafana', 'home', 'longhorn', 'n8n', 'node-red', 'prometheus', 'rabbitmq', 'traefik', 'vault'] },
    ]);
  });
});

describe('cloudflare tunnel', () => {
  const deployment = file(prod, 'cloudflared/deployment-cloudflared.yaml');
  const pod = deployment.spec.template.spec;

  it('forwards only public hosts to websecure, with the host as SNI and Host header, and 404s the rest', () => {
    const hosts = [
      { host: 'www.home.example.net', admin: false, certificate: 'website/www' },
      { host: 'argocd.home.example.net', admin: true, certificate: 'argocd/argocd' },
    ];
    expect(tunnelConfig('6ff42ae2-765d-4adf-8112-31c55c1551ef', hosts.filter((h) => !h.admin))).toEqual({
      tunnel: '6ff42ae2-765d-4adf-8112-31c55c1551ef',
      'credentials-file': '/etc/cloudflared/credentials/credentials.json',
      ingress: [
        {
          hostname: 'www.home.example.net',
          service: 'https://traefik.traefik.svc:443',
          originRequest: { originServerName: 'www.home.example.net', httpHostHeader: 'www.home.example.net' },
        },
        { service: 'http_status:404' },
      ],
    });
    // The example's prod: only the public hosts (Home Assistant and n8n, each with its own login) go through the tunnel, no admin UI.
    const prodTunnel = file(prod, 'cloudflared/configmap-cloudflared-config.yaml').data!['config.yaml'];
    expect(prodTunnel.match(/hostname: .*/g)).toEqual(['hostname: home.home.example.net', 'hostname: n8n.home.example.net']);
  });

  it('runs two restricted, read-only connectors on different nodes, with metrics and /ready', () => {
    expect(deployment.spec.replicas).toBe(2);
    expect(pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey).toBe('kubernetes.io/hostname');
    expect(file(prod, 'cloudflared/poddisruptionbudget-cloudflared.yaml').spec.maxUnavailable).toBe(1);
    const [container] = pod.containers;
    expect(container.image).toBe('docker.io/cloudflare/cloudflared:2026.8.2');
    expect(container.args).toEqual(['tunnel', '--config', '/etc/cloudflared/config/config.yaml', '--metrics', '0.0.0.0:2000', 'run']);
    expect(container.readinessProbe.httpGet.path).toBe('/ready');
    expect(container.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.volumes.find((v: any) => v.name === 'credentials').secret.secretName).toBe('cloudflared-credentials');
  });

  it('syncs after Traefik', () => {
    const cloudflared = prod.services.find((s) => s.name === 'cloudflared')!;
    expect(cloudflared.dependsOn).toContain('traefik');
    expect(cloudflared.wave).toBeGreaterThan(prod.services.find((s) => s.name === 'traefik')!.wave);
  });

  it('checkpoint: passes once /ready reports edge connections, fails without', () => {
    const container = file(prod, 'cloudflared/job-cloudflared-checkpoint.yaml').spec.template.spec.containers[0];
    const curl = 'printf \'{"status":%s,"readyConnections":%s,"connectorId":"x"}\' "$STATUS" "$CONNECTIONS"; [ "$STATUS" = 200 ] || exit 22';
    const ready = runWithFakeCommands(container, { curl, sleep: FAKE_SLEEP }, { env: { STATUS: '200', CONNECTIONS: '4' } });
    expect(ready.status).toBe(0);
    expect(ready.stdout).toContain('"readyConnections":4');
    const down = runWithFakeCommands(container, { curl, sleep: FAKE_SLEEP }, { env: { STATUS: '503', CONNECTIONS: '0' } });
    expect(down.status).not.toBe(0);
    expect(down.stderr).toContain('did not connect to the Cloudflare edge');
    // Every try at curl's limit and the pause, after the pod's start, before the Job's deadline.
    const script: string = container.command.at(-1);
    const [tries, call, pause] = [/\$\(seq (\d+)\)/, /--max-time (\d+)/, /\bsleep (\d+)/].map((pattern) => Number(pattern.exec(script)![1]));
    expect(file(prod, 'cloudflared/job-cloudflared-checkpoint.yaml').spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(CHECK_START_SECONDS + tries * (call + pause));
  });
});
