/**
 * Single sign-on with Authentik, on the platform fixture with CloudNativePG and Authentik turned
 * on (and Home Assistant behind `sso`): the config checks, the forward-auth middlewares and
 * routes Traefik derives, the blueprints (parsed, authentik's tags included, and compared with
 * the routed hosts), an OIDC client registered by a small fake consumer, and the checkpoint
 * scripts against fake answers.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { AUTHENTIK_RESPONSE_HEADERS, authentikEntry, CHECKPOINT_TOKEN_SECRET, clientSecretVariable } from '../charts/authentik';
import { CLOUDFLARE_PROXIED } from '../charts/external-dns';
import { CHECK_START_SECONDS, Checkpoint } from '../lib/model/checkpoint';
import { defineService } from '../lib/model/catalog';
import { isExposureRouter } from '../lib/model/exposure';
import { Layer } from '../lib/model/layers';
import type { Platform } from '../lib/model/platform';
import { HomelabService } from '../lib/model/service';
import { isSingleSignOnProvider, OIDC_CLIENT_SECRET_KEY, type OidcIssuer, type OidcLoginService, type SingleSignOnProvider } from '../lib/model/single-sign-on';
import { BLUEPRINT_TAGS, invariantNamed } from './invariants';
import {
  answerAsApiServer,
  catalogWith,
  chartValues,
  configProblems,
  type Manifest,
  manifestAt,
  manifestsOf,
  platformObject,
  retriedCurlCalls,
  runCheckpointRecordingCurl,
  type Synthesized,
  synthesizeEnvironment,
  synthesizePlatforms,
  tempDir,
  toYamlText,
  withFiles,
} from './support';

/** The fixture with CloudNativePG and Authentik on in every environment, Home Assistant behind sso; `change` edits it. */
function withAuthentik(change: (config: Record<string, any>) => void = () => {}): Record<string, any> {
  const config = platformObject();
  config.services.cloudnativePg = { enabled: true };
  config.services.authentik = { enabled: true };
  config.apps['home-assistant'].expose.protection = 'sso';
  change(config);
  return config;
}

/** A service whose own login is an OIDC client of the provider, with an admin UI, as Argo CD's will be. */
class FakeConsole extends HomelabService implements OidcLoginService {
  readonly issuer: OidcIssuer;
  readonly secretNeedName: string;
  constructor(scope: Platform, provider: SingleSignOnProvider) {
    super(scope, 'console', { provider }, { layer: Layer.AUTOMATION, namespace: 'console' });
    const secret = this.needSecret('console-oidc', [OIDC_CLIENT_SECRET_KEY], 'the console client secret', { generated: true });
    this.secretNeedName = secret.secretName;
    this.issuer = provider.registerOidcClient(this, {
      clientId: 'console',
      displayName: 'Console',
      redirectUris: ['https://console.example.net/auth/callback', 'http://localhost:8085/auth/callback'],
      clientSecret: secret,
    });
    this.expose({ subdomain: 'console', serviceName: 'console', servicePort: 80, podPort: 8080, podSelector: { app: 'console' }, admin: true, ownOidcLogin: true });
    new Checkpoint(this, 'checkpoint', { description: 'test double', image: 'docker.io/library/busybox:1.37.0', script: 'true' });
  }
  /** Registered in the constructor already. */
  logInThrough(): void {}
}

const consoleEntry = defineService({
  name: 'console',
  names: ['console'],
  enabled: () => true,
  build: (platform, _settings, context) => new FakeConsole(platform, context.required(authentikEntry)),
});
const CATALOG_WITH_CONSOLE = catalogWith(consoleEntry, { after: authentikEntry });

const envs = synthesizePlatforms(toYamlText(withAuthentik()), CATALOG_WITH_CONSOLE);
const prod = envs.find((s) => s.env.environment === 'prod')!;
const file = (s: Synthesized, path: string): Manifest => manifestAt(s.env, path);
const domain = (s: Synthesized) => s.config.domain;
const routedHosts = (s: Synthesized) => s.platform.services.find(isExposureRouter)!.routedHosts;
const authentikValues = (s: Synthesized) => chartValues(s.env, 'authentik');

const blueprintOf = (s: Synthesized, name: string) => parse(file(s, `authentik/configmap-authentik-blueprint-${name}.yaml`).data!['blueprint.yaml'], { customTags: BLUEPRINT_TAGS });
const entriesOf = (blueprint: any, model: string) => (blueprint.entries as any[]).filter((e) => e.model === model);

describe('config', () => {
  it('refuses Authentik without CloudNativePG, naming the path', () => {
    const problems = configProblems(toYamlText(withAuthentik((c) => delete c.services.cloudnativePg)));
    expect(problems).toContain("services.authentik.enabled: expected services.cloudnativePg.enabled: CloudNativePG runs authentik's PostgreSQL database");
  });

  it('refuses sso without a single sign-on service, naming the path', () => {
    const problems = configProblems(toYamlText(withAuthentik((c) => delete c.services.authentik)));
    expect(problems).toMatch(/apps\.home-assistant\.expose\.protection: expected public or admin: "sso" needs a single sign-on service/);
  });

  it('refuses a second forward-auth server next to it, and needs no allow-list with it', () => {
    const forwardAuth = { address: 'http://authelia.auth.svc/api/authz/forward-auth' };
    expect(configProblems(toYamlText(withAuthentik((c) => (c.services.traefik.adminAccess = { forwardAuth }))))).toMatch(
      /services\.traefik\.adminAccess\.forwardAuth: expected no forwardAuth server: admin UIs sign in through the single sign-on service/,
    );
    expect(configProblems(toYamlText(withAuthentik((c) => (c.services.traefik.adminAccess = {}))))).toBe('');
    // Without it, admin UIs still need an allow-list or a forward-auth server.
    expect(configProblems(toYamlText(withAuthentik((c) => {
      delete c.services.authentik;
      c.apps['home-assistant'].expose.protection = 'public';
      c.services.traefik.adminAccess = {};
    })))).toMatch(/services\.traefik\.adminAccess: expected an allowList of client networks/);
  });

  it("refuses Let's Encrypt's staging issuer next to it, naming the path: the OIDC clients refuse untrusted certificates", () => {
    const staging = (c: Record<string, any>) => (c.services.traefik.issuer = 'letsencrypt-staging');
    expect(configProblems(toYamlText(withAuthentik(staging)))).toMatch(/services\.traefik\.issuer: expected letsencrypt-production with a single sign-on service \(Authentik\), received "letsencrypt-staging": staging certificates are untrusted/);
    // Without a single sign-on service, staging stays the way to try a new setup.
    expect(configProblems(toYamlText(withAuthentik((c) => {
      staging(c);
      delete c.services.authentik;
      c.apps['home-assistant'].expose.protection = 'public';
      // The tunnel refuses staging certificates on its own.
      delete c.environments.prod.services.cloudflared;
    })))).toBe('');
  });
});

describe("the OIDC clients' way to the issuer", () => {
  /** The login host's name resolves outside the cluster: the tunnel forwards it, or its record is proxied (read back from the written files). */
  const atEdge = (s: Synthesized, host: string) => {
    const docs = manifestsOf(s.env);
    const tunnel = docs.find((m) => m.manifest.kind === 'ConfigMap' && m.manifest.metadata.name === 'cloudflared-config')?.manifest.data?.['config.yaml'];
    const tunnelled = tunnel !== undefined && (parse(tunnel).ingress as { hostname?: string }[]).some((rule) => rule.hostname === host);
    const proxied = docs.some(
      (m) =>
        m.manifest.kind === 'DNSEndpoint' &&
        (m.manifest.spec.endpoints as any[]).some((e) => e.dnsName === host && e.providerSpecific?.some((p: any) => p.name === CLOUDFLARE_PROXIED && p.value === 'true')),
    );
    return tunnelled || proxied;
  };
  const opensInternet = (policy: Manifest) => (policy.spec.egress as any[]).some((rule) => (rule.to ?? []).some((peer: any) => peer.ipBlock?.cidr === '0.0.0.0/0'));
  const reachesTraefik = (policy: Manifest) =>
    (policy.spec.egress as any[]).some((rule) => (rule.to ?? []).some((peer: any) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'traefik'));
  /** Proxied records to a public address, in every environment (prod's own target dropped). */
  const proxiedEverywhere = synthesizePlatforms(
    toYamlText(
      withAuthentik((c) => {
        c.services.externalDns = { ...c.services.externalDns, proxied: true, target: '203.0.113.10' };
        delete c.environments.prod.services.externalDns;
      }),
    ),
    CATALOG_WITH_CONSOLE,
  );

  it('opens public addresses on 443 to the servers of Argo CD, Grafana and Vault only where the login host is published at an edge; Traefik always', () => {
    const seen = new Set<boolean>();
    for (const s of [...envs, ...proxiedEverywhere]) {
      const loginHost = s.platform.services.find(isSingleSignOnProvider)!.forwardAuth.loginHost;
      const edge = atEdge(s, loginHost);
      seen.add(edge);
      for (const folder of ['argocd', 'monitoring', 'vault']) {
        const policy = file(s, `${folder}/networkpolicy-egress-oidc-issuer.yaml`);
        expect(opensInternet(policy), `${s.env.environment}/${folder}`).toBe(edge);
        expect(reachesTraefik(policy), `${s.env.environment}/${folder}`).toBe(true);
      }
    }
    // The fixture has both: the tunnel in prod and proxied records in the variant, neither in the others.
    expect([...seen].sort()).toEqual([false, true]);
  });
});

describe('forward-auth in front of sso hosts and admin UIs', () => {
  it('puts the outpost forward-auth, after the allow-list, on every admin and sso route, and on no public one', () => {
    for (const s of envs) {
      const routes = manifestsOf(s.env).filter((m) => m.manifest.kind === 'IngressRoute' && !m.manifest.metadata.name.endsWith('-sign-in'));
      expect(routes.length).toBeGreaterThan(0);
      for (const { path, manifest } of routes) {
        const host = routedHosts(s).find((h) => manifest.spec.routes[0].match.startsWith(`Host(\`${h.host}\`)`))!;
        const names = (manifest.spec.routes[0].middlewares as { name: string }[]).map((m) => m.name);
        const subdomain = host.host.slice(0, -`.${domain(s)}`.length);
        expect(names.includes(`${subdomain}-sign-in`), path).toBe(host.singleSignOn === true);
        if (host.admin) expect(names.indexOf(`${subdomain}-allow-list`), path).toBe(1);
        if (host.singleSignOn) {
          expect(names.at(-1), path).toBe(`${subdomain}-sign-in`);
          const middleware = manifestsOf(s.env).find(
            (m) => m.manifest.kind === 'Middleware' && m.manifest.metadata.namespace === manifest.metadata.namespace && m.manifest.metadata.name === `${subdomain}-sign-in`,
          )!.manifest;
          expect(middleware.spec.forwardAuth).toEqual({
            address: 'http://authentik-server.authentik.svc/outpost.goauthentik.io/auth/traefik',
            trustForwardHeader: false,
            authResponseHeaders: [...AUTHENTIK_RESPONSE_HEADERS],
          });
        }
      }
    }
  });

  it('protects the admin UIs and the sso app, and leaves the login page public', () => {
    const hosts = new Map(routedHosts(prod).map((h) => [h.host.split('.')[0], h]));
    for (const admin of ['longhorn', 'traefik', 'rabbitmq', 'ray', 'node-red']) expect(hosts.get(admin), admin).toMatchObject({ admin: true, singleSignOn: true });
    expect(hosts.get('home')).toMatchObject({ admin: false, singleSignOn: true });
    expect(hosts.get('auth')?.singleSignOn).toBeUndefined();
    expect(hosts.get('n8n')?.singleSignOn).toBeUndefined();
  });

  it("routes the outpost's paths of each protected host to Authentik's server, in its namespace, ahead of the host's route", () => {
    for (const host of routedHosts(prod).filter((h) => h.singleSignOn)) {
      const subdomain = host.host.split('.')[0];
      const route = file(prod, `traefik/ingressroute-authentik-${subdomain}-sign-in.yaml`);
      expect(route.metadata.namespace).toBe('authentik');
      expect(route.spec.routes).toEqual([
        {
          kind: 'Rule',
          match: `Host(\`${host.host}\`) && PathPrefix(\`/outpost.goauthentik.io/\`)`,
          priority: expect.any(Number),
          // Admin hosts: the allow-list, a copy in Authentik's namespace (checked below).
          ...(host.admin && { middlewares: [{ name: `${subdomain}-sign-in-allow-list` }] }),
          services: [{ kind: 'Service', name: 'authentik-server', port: 80 }],
        },
      ]);
      const own = manifestsOf(prod.env).find((m) => m.manifest.kind === 'IngressRoute' && m.manifest.spec.routes[0].match.startsWith(`Host(\`${host.host}\`)`) && !m.path.includes('-sign-in'))!;
      expect(route.spec.routes[0].priority).toBeGreaterThan(own.manifest.spec.routes[0].match.length);
    }
  });

  it('puts every route of an admin host, its outpost paths included, behind the allow-list, and the sso host\'s behind none', () => {
    for (const s of envs) {
      const docs = manifestsOf(s.env).map((m) => m.manifest);
      const rulesOf = (host: string) =>
        docs.filter((m) => m.kind === 'IngressRoute').flatMap((route) => (route.spec.routes as any[]).filter((r) => r.match.startsWith(`Host(\`${host}\`)`)).map((rule) => ({ route, rule })));
      const ranges = ({ route, rule }: { route: Manifest; rule: any }) =>
        (rule.middlewares ?? []).flatMap(
          (m: any) => docs.find((d) => d.kind === 'Middleware' && d.metadata.namespace === route.metadata.namespace && d.metadata.name === m.name)?.spec.ipAllowList?.sourceRange ?? [],
        );
      for (const host of routedHosts(s).filter((h) => h.singleSignOn)) {
        const rules = rulesOf(host.host);
        expect(rules.length, host.host).toBe(2);
        for (const rule of rules) expect(ranges(rule), `${s.env.environment} ${rule.rule.match}`).toEqual(host.admin ? ['192.168.1.0/24'] : []);
      }
    }
  });

  it('keeps only the allow-list in front of an admin UI whose own login is an OIDC client of Authentik', () => {
    const host = routedHosts(prod).find((h) => h.host === `console.${domain(prod)}`)!;
    expect(host).toMatchObject({ admin: true });
    expect(host.singleSignOn).toBeUndefined();
    const route = manifestsOf(prod.env).find((m) => m.manifest.kind === 'IngressRoute' && m.manifest.metadata.namespace === 'console')!.manifest;
    expect(route.spec.routes[0].middlewares.map((m: any) => m.name)).toEqual(['console-security-headers', 'console-allow-list']);
  });

  it('lets Traefik reach the outpost', () => {
    const egress = file(prod, 'traefik/networkpolicy-egress-authentik-http.yaml').spec.egress;
    expect(egress[0].to[0].namespaceSelector.matchLabels).toEqual({ 'kubernetes.io/metadata.name': 'authentik' });
  });
});

describe('without Authentik', () => {
  const external = { address: 'http://authelia.auth.svc/api/authz/forward-auth', authResponseHeaders: ['Remote-User'] };
  const withoutSso = synthesizeEnvironment(
    toYamlText(
      withAuthentik((c) => {
        delete c.services.authentik;
        c.apps['home-assistant'].expose.protection = 'public';
        c.services.traefik.adminAccess = { forwardAuth: external };
      }),
    ),
    'dev',
  );

  it("keeps the configured forward-auth server on the admin routes, and adds no route of Authentik's", () => {
    const docs = manifestsOf(withoutSso.env);
    const forwardAuths = docs.filter((m) => m.manifest.kind === 'Middleware' && m.manifest.spec.forwardAuth).map((m) => m.manifest);
    expect(forwardAuths.length).toBe(routedHosts(withoutSso).filter((h) => h.admin).length);
    for (const middleware of forwardAuths) {
      expect(middleware.metadata.name).toMatch(/-forward-auth$/);
      expect(middleware.spec.forwardAuth).toEqual({ address: external.address, trustForwardHeader: false, authResponseHeaders: ['Remote-User'] });
    }
    expect(docs.filter((m) => m.manifest.kind === 'IngressRoute' && m.manifest.metadata.name.endsWith('-sign-in'))).toEqual([]);
    expect(routedHosts(withoutSso).some((h) => h.singleSignOn)).toBe(false);
  });
});

describe('the chart', () => {
  const values = authentikValues(prod);

  it('reads its keys from the generated Secret and its database credentials from the operator-generated one', () => {
    expect(values.authentik).toEqual({ existingSecret: { secretName: 'authentik-keys' } });
    const need = prod.platform.services.find((s) => s.serviceName === 'authentik')!.secretNeeds.find((n) => n.name === 'authentik-keys')!;
    // No bootstrap token: nothing needs a superuser's API token.
    expect(need).toMatchObject({ generated: true, keys: ['AUTHENTIK_BOOTSTRAP_PASSWORD', 'AUTHENTIK_SECRET_KEY'] });
    const env = Object.fromEntries((values.global.env as any[]).map((e) => [e.name, e.value ?? e.valueFrom.secretKeyRef]));
    expect(env).toMatchObject({
      AUTHENTIK_POSTGRESQL__HOST: 'authentik-db-rw',
      AUTHENTIK_POSTGRESQL__USER: { name: 'authentik-db-app', key: 'username' },
      AUTHENTIK_POSTGRESQL__PASSWORD: { name: 'authentik-db-app', key: 'password' },
      AUTHENTIK_OUTPOSTS__DISCOVER: 'false',
      AUTHENTIK_DISABLE_UPDATE_CHECK: 'true',
    });
    expect(file(prod, 'authentik/cluster-authentik-db.yaml').spec.bootstrap.initdb).toMatchObject({ database: 'authentik', owner: 'authentik' });
  });

  it("creates no ClusterRole and no PostgreSQL of the chart's own, and runs without privileges", () => {
    expect(values.serviceAccount).toEqual({ create: false });
    expect(values.postgresql).toEqual({ enabled: false });
    for (const part of [values.server, values.worker]) {
      expect(part.containerSecurityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    }
  });
});

describe('blueprints', () => {
  it('declares a proxy provider and application per protected host, admins only on admin hosts, all on the embedded outpost', () => {
    for (const s of envs) {
      const blueprint = blueprintOf(s, 'forward-auth');
      const protectedHosts = routedHosts(s).filter((h) => h.singleSignOn);
      const providers = entriesOf(blueprint, 'authentik_providers_proxy.proxyprovider');
      expect(providers.map((p) => p.identifiers.name).sort()).toEqual(protectedHosts.map((h) => h.host).sort());
      for (const provider of providers) {
        expect(provider.attrs).toMatchObject({ mode: 'forward_single', external_host: `https://${provider.identifiers.name}` });
        const application = entriesOf(blueprint, 'authentik_core.application').find((a) => a.attrs.provider['!KeyOf'] === provider.id);
        expect(application, provider.identifiers.name).toBeDefined();
        const groups = entriesOf(blueprint, 'authentik_policies.policybinding')
          .filter((b) => b.identifiers.target['!KeyOf'] === application.id)
          .map((b) => b.identifiers.group['!Find'][1][1]);
        const admin = protectedHosts.find((h) => h.host === provider.identifiers.name)!.admin;
        expect(groups, provider.identifiers.name).toEqual(admin ? ['admins'] : ['admins', 'viewers']);
      }
      const [outpost] = entriesOf(blueprint, 'authentik_outposts.outpost');
      expect(outpost.identifiers).toEqual({ managed: 'goauthentik.io/outposts/embedded' });
      expect(outpost.attrs.providers.map((p: any) => p['!KeyOf']).sort()).toEqual(providers.map((p) => p.id).sort());
      expect(outpost.attrs.config.authentik_host).toBe(`https://auth.${domain(s)}/`);
    }
  });

  it('declares the groups and enforces MFA (TOTP or WebAuthn, enrolled when missing) in the authentication flow', () => {
    const blueprint = blueprintOf(prod, 'platform');
    expect(entriesOf(blueprint, 'authentik_core.group').map((g) => [g.identifiers.name, g.attrs.is_superuser, g.state])).toEqual([
      ['admins', true, 'created'],
      ['viewers', false, 'created'],
      // The checkpoint's account's group (tested below), kept as declared.
      ['homelab-checkpoint', false, undefined],
    ]);
    const [mfa] = entriesOf(blueprint, 'authentik_stages_authenticator_validate.authenticatorvalidatestage');
    expect(mfa.identifiers).toEqual({ name: 'default-authentication-mfa-validation' });
    expect(mfa.attrs.not_configured_action).toBe('configure');
    expect(mfa.attrs.device_classes).toEqual(expect.arrayContaining(['totp', 'webauthn']));
    expect(mfa.attrs.configuration_stages.map((stage: any) => stage['!Find'][1][1])).toEqual(['default-authenticator-totp-setup', 'default-authenticator-webauthn-setup']);
  });

  it("declares the checkpoint's service account, allowed to view blueprint instances only, with a token whose key is the worker's generated value", () => {
    const blueprint = blueprintOf(prod, 'platform');
    const [role] = entriesOf(blueprint, 'authentik_rbac.role');
    expect(role.attrs.permissions).toEqual(['authentik_blueprints.view_blueprintinstance']);
    const [user] = entriesOf(blueprint, 'authentik_core.user');
    expect(user.attrs.type).toBe('service_account');
    const group = entriesOf(blueprint, 'authentik_core.group').find((g) => g.identifiers.name === 'homelab-checkpoint')!;
    expect(group.attrs).toMatchObject({ is_superuser: false, roles: [{ '!KeyOf': role.id }], users: [{ '!KeyOf': user.id }] });
    const tokens = entriesOf(blueprint, 'authentik_core.token');
    const token = tokens.find((t) => t.state !== 'absent')!;
    expect(token.attrs).toMatchObject({ user: { '!KeyOf': user.id }, intent: 'api' });
    // The key is the worker's variable, read from the generated Secret the checkpoint mounts.
    const variable = token.attrs.key['!Env'];
    expect(authentikValues(prod).worker.env).toContainEqual({ name: variable, valueFrom: { secretKeyRef: { name: CHECKPOINT_TOKEN_SECRET, key: 'token' } } });
    const need = prod.platform.services.find((s) => s.serviceName === 'authentik')!.secretNeeds.find((n) => n.name === CHECKPOINT_TOKEN_SECRET)!;
    expect(need).toMatchObject({ generated: true, keys: ['token'] });
    // akadmin's bootstrap token, where an earlier version made one, is removed.
    expect(tokens.filter((t) => t.state === 'absent').map((t) => t.identifiers)).toEqual([{ identifier: 'authentik-bootstrap-token' }]);
  });

  it('mounts every blueprint ConfigMap into the worker through the chart', () => {
    const configMaps = manifestsOf(prod.env).filter((m) => m.path.startsWith('authentik/configmap-authentik-blueprint-')).map((m) => m.manifest.metadata.name);
    expect([...authentikValues(prod).blueprints.configMaps].sort()).toEqual(configMaps.sort());
  });
});

describe('an OIDC client', () => {
  const consoleService = prod.platform.services.find((s) => s.serviceName === 'console') as FakeConsole;

  it('gets an issuer on the login host, the groups claim and the two groups', () => {
    expect(consoleService.issuer).toEqual({
      issuerUrl: `https://auth.${domain(prod)}/application/o/console/`,
      scopes: ['openid', 'email', 'profile'],
      groupsClaim: 'groups',
      adminGroup: 'admins',
      viewerGroup: 'viewers',
      endpoints: {
        authorization: `https://auth.${domain(prod)}/application/o/authorize/`,
        token: `https://auth.${domain(prod)}/application/o/token/`,
        userinfo: `https://auth.${domain(prod)}/application/o/userinfo/`,
      },
    });
  });

  it('is a confidential OAuth2 provider with strict redirect URIs and the secret from the worker environment', () => {
    const blueprint = blueprintOf(prod, 'oidc-console');
    const [provider] = entriesOf(blueprint, 'authentik_providers_oauth2.oauth2provider');
    expect(provider.attrs).toMatchObject({
      client_type: 'confidential',
      client_id: 'console',
      client_secret: { '!Env': clientSecretVariable('console') },
      redirect_uris: [
        { matching_mode: 'strict', url: 'https://console.example.net/auth/callback' },
        { matching_mode: 'strict', url: 'http://localhost:8085/auth/callback' },
      ],
    });
    expect(provider.attrs.property_mappings.map((m: any) => m['!Find'][1][1])).toEqual(['openid', 'email', 'profile'].map((s) => `goauthentik.io/providers/oauth2/scope-${s}`));
    const [application] = entriesOf(blueprint, 'authentik_core.application');
    expect(application.identifiers).toEqual({ slug: 'console' });
  });

  it("reads the consumer's own generated value, never one of its own", () => {
    const need = prod.platform.services.find((s) => s.serviceName === 'authentik')!.secretNeeds.find((n) => n.name === 'authentik-oidc-console')!;
    expect(need.generated).toBeUndefined();
    expect(need.template!.inputs).toEqual([{ variable: 'secret', from: expect.objectContaining({ service: 'console', name: consoleService.secretNeedName }), key: OIDC_CLIENT_SECRET_KEY }]);
    expect(authentikValues(prod).worker.env).toContainEqual({
      name: clientSecretVariable('console'),
      valueFrom: { secretKeyRef: { name: 'authentik-oidc-console', key: OIDC_CLIENT_SECRET_KEY } },
    });
    // Delivered by an ExternalSecret rendering the consumer's value.
    const external = file(prod, 'authentik/externalsecret-authentik-oidc-console.yaml');
    expect(external.spec.data).toEqual([{ secretKey: 'secret', remoteRef: { key: 'console/console-oidc', property: OIDC_CLIENT_SECRET_KEY } }]);
  });

  it('refuses a client registered twice or without redirect URIs', () => {
    const provider = prod.platform.services.find((s) => s.serviceName === 'authentik') as unknown as SingleSignOnProvider;
    const secret = { keys: [OIDC_CLIENT_SECRET_KEY], secretName: 'x', need: {} } as any;
    expect(() => provider.registerOidcClient(consoleService, { clientId: 'console', displayName: 'Again', redirectUris: ['https://x/'], clientSecret: secret })).toThrow('registered twice');
    expect(() => provider.registerOidcClient(consoleService, { clientId: 'other', displayName: 'Other', redirectUris: [], clientSecret: secret })).toThrow('no redirect URI');
  });
});

describe("an app's own OIDC login", () => {
  const app = synthesizeEnvironment(
    toYamlText(
      withAuthentik((c) => {
        c.apps['node-red'].expose = { subdomain: 'node-red', protection: 'oidc', oidc: { redirectPaths: ['/auth/strategy/callback'], variables: { clientSecret: 'NODE_RED_OIDC_SECRET' } } };
      }),
    ),
    'prod',
  );

  it('registers a client for its redirect URIs and hands it the issuer, client id and generated secret', () => {
    const blueprint = blueprintOf(app, 'oidc-node-red');
    const [provider] = entriesOf(blueprint, 'authentik_providers_oauth2.oauth2provider');
    expect(provider.attrs.redirect_uris).toEqual([{ matching_mode: 'strict', url: `https://node-red.${domain(app)}/auth/strategy/callback` }]);
    const container = file(app, 'node-red/deployment-node-red.yaml').spec.template.spec.containers[0];
    const env = Object.fromEntries((container.env as any[]).map((e) => [e.name, e.value ?? e.valueFrom.secretKeyRef]));
    expect(env).toMatchObject({
      OIDC_ISSUER_URL: `https://auth.${domain(app)}/application/o/node-red/`,
      OIDC_CLIENT_ID: 'node-red',
      NODE_RED_OIDC_SECRET: { name: 'node-red-oidc', key: OIDC_CLIENT_SECRET_KEY },
    });
    const need = app.platform.services.find((s) => s.serviceName === 'node-red')!.secretNeeds.find((n) => n.name === 'node-red-oidc')!;
    expect(need.generated).toBe(true);
    // Nothing in front of it: the app logs users in itself.
    expect(routedHosts(app).find((h) => h.host === `node-red.${domain(app)}`)?.singleSignOn).toBeUndefined();
  });

  it("lets its pods reach the issuer, as the platform's own OIDC logins do, and needs its Secret to start", () => {
    const pods = file(app, 'node-red/deployment-node-red.yaml').spec.template.metadata.labels;
    const policy = file(app, 'node-red/networkpolicy-egress-oidc-issuer.yaml');
    expect(Object.entries(policy.spec.podSelector.matchLabels).every(([key, value]) => pods[key] === value)).toBe(true);
    const toTraefik = (policy.spec.egress as any[]).some((rule) => (rule.to ?? []).some((peer: any) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'traefik'));
    expect(toTraefik).toBe(true);
    const need = app.platform.services.find((s) => s.serviceName === 'node-red')!.secretNeeds.find((n) => n.name === 'node-red-oidc')!;
    expect(need.neededToStart).toBe(true);
  });

  it('refuses variables the app sets otherwise', () => {
    const problems = configProblems(
      toYamlText(
        withAuthentik((c) => {
          c.apps['node-red'].env = { ...c.apps['node-red'].env, OIDC_CLIENT_ID: 'x' };
          c.apps['node-red'].expose = { subdomain: 'node-red', protection: 'oidc', oidc: { redirectPaths: ['/cb'] } };
        }),
      ),
    );
    expect(problems).toContain('apps.node-red.expose.oidc.variables.clientId: expected a variable env and secretEnv do not set: "OIDC_CLIENT_ID" is set there');
  });
});

describe('checkpoints', () => {
  const checkpoint = file(prod, 'authentik/job-authentik-checkpoint.yaml');
  const discovery = file(prod, 'verification/job-authentik-authentik-oidc-console.yaml');
  /** Three tries instead of the Job's thirty: the failing runs end sooner, the same way. */
  const FEW_CHECKS = { CHECKS: '3' };
  /** Every mounted blueprint: its name, and the SHA-512 of the file the worker reads (the ConfigMap's value). */
  const mounted = manifestsOf(prod.env)
    .filter((m) => m.path.startsWith('authentik/configmap-authentik-blueprint-'))
    .map((m) => {
      const text = m.manifest.data!['blueprint.yaml'];
      return { name: parse(text, { customTags: BLUEPRINT_TAGS }).metadata.name as string, hash: createHash('sha512').update(text).digest('hex') };
    });
  /** What authentik knows: one `name|status|last applied hash` a line. */
  const instances = (change: (i: { name: string; status: string; hash: string }) => { name: string; status: string; hash: string } | undefined = (i) => i) =>
    mounted
      .map((m) => change({ ...m, status: 'successful' }))
      .filter((i) => i !== undefined)
      .map((i) => `${i.name}|${i.status}|${i.hash}`)
      .join('\n');
  /** Health answers; the blueprint list answers for the asked name only, from $INSTANCES (none if it is not there). */
  const fakeAuthentik = String.raw`for url; do :; done
case "$url" in
  */-/health/ready/) exit 0 ;;
  */api/v3/managed/blueprints/*)
    name=$(printf '%s' "\${url#*name=}" | sed 's/%20/ /g')
    printf '%s\n' "$INSTANCES" | awk -F'|' -v name="$name" '$1 == name { printf "{\"pagination\": {\"count\": 1}, \"results\": [{\"name\": \"%s\", \"status\": \"%s\", \"last_applied_hash\": \"%s\", \"content\": \"\"}]}", $1, $2, $3; found = 1 }
      END { if (!found) printf "{\"pagination\": {\"count\": 0}, \"results\": []}" }' ;;
esac`.replace(/\\\$/g, '$');
  /** The token the Secret volume holds, in a file of the test's own. */
  const tokenDirectory = tempDir('homelab-authentik-token-');
  const tokenFile = join(tokenDirectory, 'token');
  writeFileSync(tokenFile, 'token-from-the-secret');
  const run = (answers: string) => runCheckpointRecordingCurl(checkpoint, fakeAuthentik, { TOKEN_FILE: tokenFile, INSTANCES: answers, ...FEW_CHECKS });
  const asked = (calls: string[][], name: string) => calls.filter((c) => c.at(-1)?.endsWith(`/api/v3/managed/blueprints/?name=${name.replace(/ /g, '%20')}`));

  it('passes when the server is ready and each blueprint is applied at its current version, asking for each by name with the mounted token', () => {
    expect(mounted.map((m) => m.name)).toEqual(expect.arrayContaining(['homelab - forward auth', 'homelab - oidc console', 'homelab - platform']));
    const ok = run(instances());
    expect(ok.output).toContain('blueprint homelab - forward auth: applied');
    expect(ok.status).toBe(0);
    const calls = ok.calls.filter((c) => c.some((a) => a.includes('/api/v3/managed/blueprints/')));
    expect(calls.map((c) => c.at(-1)).sort()).toEqual(mounted.map((m) => `http://authentik-server.authentik.svc/api/v3/managed/blueprints/?name=${m.name.replace(/ /g, '%20')}`).sort());
    expect(calls.every((c) => c.includes('Authorization: Bearer token-from-the-secret'))).toBe(true);
  });

  it('asks for five minutes, 10 s apart, and its tries are read from the env', () => {
    for (const [job, counter] of [
      [checkpoint, '$round'],
      [discovery, '$tries'],
    ] as const) {
      const script = job.spec.template.spec.containers[0].command.at(-1) as string;
      expect(script).toContain(`"${counter}" -ge "\${CHECKS:?unset (the Job sets it)}"`);
      expect(script).toContain('sleep 10');
      expect(Number(job.spec.template.spec.containers[0].env.find((e: any) => e.name === 'CHECKS').value) * 10).toBe(300);
    }
    const unset = runCheckpointRecordingCurl(discovery, 'exit 22', { CHECKS: '' });
    expect(unset.status).not.toBe(0);
    expect(unset.output).toContain('CHECKS: unset (the Job sets it)');
  });

  it('reads the token from a mounted Secret, not from its environment', () => {
    const container = checkpoint.spec.template.spec.containers[0];
    expect((container.env as any[]).filter((e) => e.valueFrom)).toEqual([]);
    const tokenFileInPod = container.env.find((e: any) => e.name === 'TOKEN_FILE').value as string;
    const mount = (container.volumeMounts as any[]).find((m) => tokenFileInPod.startsWith(`${m.mountPath}/`))!;
    expect(mount.readOnly).toBe(true);
    const volume = (checkpoint.spec.template.spec.volumes as any[]).find((v) => v.name === mount.name);
    expect(volume.secret).toEqual({ secretName: CHECKPOINT_TOKEN_SECRET, items: [{ key: 'token', path: tokenFileInPod.slice(mount.mountPath.length + 1) }] });
  });

  it('retries, then fails naming a blueprint whose last applied version is not the mounted one', () => {
    const stale = run(instances((i) => (i.name === 'homelab - oidc console' ? { ...i, hash: 'f'.repeat(128) } : i)));
    expect(stale.status).not.toBe(0);
    expect(stale.output).toContain(`blueprint homelab - oidc console: not applied (status: successful; last applied version ${'f'.repeat(128)}`);
    expect(stale.output).toContain('blueprint homelab - platform: applied');
    expect(asked(stale.calls, 'homelab - oidc console').length).toBe(Number(FEW_CHECKS.CHECKS));
    expect(asked(stale.calls, 'homelab - platform').length).toBe(1);
  });

  it('asks the blueprints not applied yet in rounds, reporting every one of them before the Job\'s deadline', () => {
    const broken = new Set(['homelab - oidc console', 'homelab - platform']);
    const two = run(instances((i) => (broken.has(i.name) ? { ...i, status: 'error' } : i)));
    expect(two.status).not.toBe(0);
    for (const name of broken) {
      expect(two.output).toContain(`blueprint ${name}: not applied (status: error`);
      expect(asked(two.calls, name).length).toBe(Number(FEW_CHECKS.CHECKS));
    }
    expect(asked(two.calls, 'homelab - forward auth').length).toBe(1);
    expect(two.output).toMatch(/^2 blueprint\(s\) not applied$/m);
    // Readiness retried at curl's limit, the rounds' seconds, the pause and a last round of every blueprint at the limit, after the pod's start.
    const container = checkpoint.spec.template.spec.containers[0];
    const script = container.command.at(-1) as string;
    const value = (name: string) => Number(container.env.find((e: any) => e.name === name).value);
    const { retries, delaySeconds: delay, maxSeconds: healthCall } = retriedCurlCalls(script)[0];
    const blueprintCall = Number(/curl -sS --max-time (\d+) -H "Authorization/.exec(script)![1]);
    const worst = CHECK_START_SECONDS + (retries + 1) * healthCall + retries * delay + value('BLUEPRINT_CHECK_SECONDS') + 10 + mounted.length * blueprintCall;
    expect(checkpoint.spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(worst);
  });

  it('fails naming a blueprint that is missing or failed, and its status', () => {
    const missing = run(instances((i) => (i.name === 'homelab - forward auth' ? undefined : i)));
    expect(missing.status).not.toBe(0);
    expect(missing.output).toContain('blueprint homelab - forward auth: not applied (status: not found');
    const failed = run(instances((i) => (i.name === 'homelab - platform' ? { ...i, status: 'error' } : i)));
    expect(failed.status).not.toBe(0);
    expect(failed.output).toContain('blueprint homelab - platform: not applied (status: error');
    expect(failed.output).toMatch(/^1 blueprint\(s\) not applied$/m);
  });

  const issuer = `https://auth.${domain(prod)}/application/o/console/`;

  it("passes when the client's discovery document answers through Traefik with its issuer", () => {
    const run = runCheckpointRecordingCurl(discovery, `printf '{"issuer": "${issuer}", "jwks_uri": "x"}'`);
    expect(run.status).toBe(0);
    expect(run.calls[0]).toContain(`https://auth.${domain(prod)}/application/o/console/.well-known/openid-configuration`);
    expect(run.calls[0]).toContain(`auth.${domain(prod)}:443:traefik.traefik.svc:443`);
  });

  it('fails when the document is missing or names another issuer', () => {
    expect(runCheckpointRecordingCurl(discovery, 'exit 22', FEW_CHECKS).status).not.toBe(0);
    const other = runCheckpointRecordingCurl(discovery, `printf '{"issuer": "https://elsewhere/"}'`, FEW_CHECKS);
    expect(other.status).not.toBe(0);
    expect(other.output).toContain(`no discovery document with issuer ${issuer}`);
  });

  const traefik = file(prod, 'traefik/job-traefik-checkpoint.yaml');
  /** Certificates Ready; admin hosts refuse with 403 (the allow-list); other hosts answer $ANSWER ("<code> <location>"). */
  const fakeTraefik = String.raw`for url; do :; done
case "$url" in
  https://kubernetes.default.svc*) ${answerAsApiServer(`printf '{"status":{"conditions":[{"lastTransitionTime":"x","status":"True","type":"Ready"}]}}'`)} ;;
  *) host=\${url#https://}; host=\${host%/}
     case " $ADMIN " in *" $host "*) printf '403 ' ;; *) printf '%s' "$ANSWER" ;; esac ;;
esac`.replace(/\\\$/g, '$');
  const admins = routedHosts(prod).filter((h) => h.admin).map((h) => h.host).join(' ');
  const home = `home.${domain(prod)}`;

  it("expects the sso host to send a client that has not signed in to the login host", () => {
    const ok = runCheckpointRecordingCurl(traefik, fakeTraefik, { ADMIN: admins, ANSWER: `302 https://auth.${domain(prod)}/application/o/authorize/?client_id=x` });
    expect(ok.output).toContain(`${home} (sign-in) routed: 302`);
    expect(ok.status).toBe(0);
  });

  it('fails when the sso host lets the client in, or sends it elsewhere', () => {
    const open = runCheckpointRecordingCurl(traefik, fakeTraefik, { ADMIN: admins, ANSWER: '200 ', ROUTE_CHECKS: '2' });
    expect(open.status).not.toBe(0);
    expect(open.output).toContain(`${home} (sign-in): a single sign-on host answered 200 to a client that has not signed in`);
    const elsewhere = runCheckpointRecordingCurl(traefik, fakeTraefik, { ADMIN: admins, ANSWER: '302 https://evil.example.org/login', ROUTE_CHECKS: '2' });
    expect(elsewhere.status).not.toBe(0);
    expect(elsewhere.output).toContain(`${home} (sign-in): a single sign-on host redirected to https://evil.example.org/login, not to https://auth.${domain(prod)}/`);
  });
});

describe('the invariant on single sign-on', () => {
  const invariant = invariantNamed('where a single sign-on service runs');
  const longhorn = `longhorn.${domain(prod)}`;

  it('holds on the derived routes and blueprint', () => {
    expect(invariant.check(envs)).toEqual([]);
  });

  it("fails for a protected host whose forward-auth or own-paths route is missing, or that the blueprint leaves out", () => {
    const route = 'traefik/ingressroute-longhorn-system-longhorn.yaml';
    const withoutSignIn = withFiles(prod, (files) => files.set(route, files.get(route)!.replace(/\n\s+- name: longhorn-sign-in/, '')));
    expect(invariant.check([withoutSignIn])).toEqual([`prod: ${longhorn} lacks the single sign-on forward-auth, but the router protects it with it`]);
    const withoutOwnPaths = withFiles(prod, (files) => files.delete('traefik/ingressroute-authentik-longhorn-sign-in.yaml'));
    expect(invariant.check([withoutOwnPaths])).toEqual([`prod: ${longhorn} signs in, but no route sends /outpost.goauthentik.io/ to authentik/authentik-server`]);
    const blueprint = 'authentik/configmap-authentik-blueprint-forward-auth.yaml';
    const renamed = withFiles(prod, (files) => files.set(blueprint, files.get(blueprint)!.replace(`name: ${longhorn}`, 'name: elsewhere.example.net')));
    expect(invariant.check([renamed])[0]).toMatch(/the forward-auth blueprint's providers .* are not the protected hosts/);
  });

  it("fails for an admin host whose outpost paths skip the allow-list", () => {
    const allowList = invariantNamed('where an allow-list is configured');
    expect(allowList.check(envs)).toEqual([]);
    const route = 'traefik/ingressroute-authentik-longhorn-sign-in.yaml';
    const open = withFiles(prod, (files) => files.set(route, files.get(route)!.replace(/\n\s+middlewares:\n\s+- name: longhorn-sign-in-allow-list/, '')));
    expect(allowList.check([open])).toEqual([
      `prod/${route}: the admin host ${longhorn}'s rule Host(\`${longhorn}\`) && PathPrefix(\`/outpost.goauthentik.io/\`) is not behind the allow-list 192.168.1.0/24`,
    ]);
  });

  it('fails for a checkpoint script writing outside its volumes on its read-only root filesystem', () => {
    const writes = invariantNamed('every shell script of a container with a read-only root filesystem');
    expect(writes.check(envs)).toEqual([]);
    const job = 'authentik/job-authentik-checkpoint.yaml';
    const scratch = withFiles(prod, (files) => files.set(job, files.get(job)!.replace('failed=0', 'failed=0\n              printf x > /tmp/blueprints\n              echo x >> "$TOKEN_FILE"')));
    expect(writes.check([scratch])).toEqual([
      `prod/${job} checkpoint: writes to /tmp/blueprints, outside its writable volumes (none), on a read-only root filesystem`,
      `prod/${job} checkpoint: writes to $TOKEN_FILE (/var/run/secrets/authentik/token), outside its writable volumes (none), on a read-only root filesystem`,
    ]);
  });
});
