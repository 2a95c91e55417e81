/**
 * Argo CD, Grafana and Vault as OIDC clients of the single sign-on service (docs/adr/0038), with
 * a fake provider that answers every registration with a fixed issuer: the requests each makes,
 * the configuration derived from the issuer (argocd-cm and argocd-rbac-cm, grafana.ini, Vault's
 * OIDC Job and its policies), the client Secrets, the NetworkPolicies to the issuer, the order
 * (nothing waits for the provider), the invariants with a provider, and Vault's OIDC script
 * against a fake Vault CLI. Without a provider nothing changes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { BUILTIN_CATALOG } from '../charts/catalog';
import { appsEntry } from '../charts/custom-app';
import { GRAFANA_SERVICE } from '../charts/kube-prometheus-stack';
import { GROUPS_KEY, VAULT_OIDC_LOGIN_JOB, VAULT_OIDC_LOGIN_SCRIPT } from '../charts/vault-oidc-login';
import { CONFIGURATOR_NAME, ROLES_KEY } from '../charts/vault-configurator';
import { defineService } from '../lib/model/catalog';
import { Checkpoint } from '../lib/model/checkpoint';
import { Layer } from '../lib/model/layers';
import type { Platform } from '../lib/model/platform';
import { HomelabService } from '../lib/model/service';
import { isOidcLoginService, isSingleSignOnProvider, OIDC_CLIENT_SECRET_KEY, OidcClientRequest, OidcIssuer, SingleSignOnProvider } from '../lib/model/single-sign-on';
import { isExposureRouter, isRouteFollower } from '../lib/model/exposure';
import { NON_PUBLIC_IPV4 } from '../lib/model/network';
import { EGRESS_PREFIX, NAMESPACE_NAME_LABEL } from '../lib/passes/network-policies';
import { INVARIANTS, lintViolations } from './invariants';
import { catalogWith, chartValues, Manifest, manifestsOf, maybeManifestAt, platformText, readFakeFile, runWithFakeCommands, Synthesized, synthesizePlatforms, tempDir } from './support';

const HOOK = 'argocd.argoproj.io/hook';

/** Group names unlike any default, so that a hard-coded `admins` shows. */
const ADMIN_GROUP = 'platform-admins';
const VIEWER_GROUP = 'platform-viewers';

function issuerFor(domain: string, clientId: string): OidcIssuer {
  const base = `https://login.${domain}`;
  return {
    issuerUrl: `${base}/o/${clientId}/`,
    scopes: ['openid', 'email', 'profile', 'memberships'],
    groupsClaim: 'member_of',
    adminGroup: ADMIN_GROUP,
    viewerGroup: VIEWER_GROUP,
    endpoints: { authorization: `${base}/authorize/`, token: `${base}/token/`, userinfo: `${base}/userinfo/` },
  };
}

/** A single sign-on service that records the clients it is asked for and answers each with a fixed issuer. */
class FakeSignOn extends HomelabService implements SingleSignOnProvider {
  readonly requests: { service: string; request: OidcClientRequest }[] = [];
  readonly forwardAuth = {
    address: 'http://sign-on.sign-on.svc/auth',
    authResponseHeaders: [],
    loginHost: 'login.example.net',
    ownPaths: { pathPrefix: '/sign-on', namespace: 'sign-on', serviceName: 'sign-on', servicePort: 80 },
  };
  private readonly domain: string;
  constructor(scope: Platform) {
    super(scope, 'sign-on', {}, { layer: Layer.SECURITY, namespace: 'sign-on' });
    this.domain = scope.config.domain;
    new Checkpoint(this, 'checkpoint', { description: 'test double', image: 'docker.io/library/busybox:1.37.0', script: 'true' });
    // As the real one: its secrets live in Vault, so it syncs after Vault.
    const vault = scope.services.find((s) => s.serviceName === 'vault');
    if (vault) this.dependOn(vault);
  }
  signInFor(): void {}
  registerOidcClient(service: HomelabService, request: OidcClientRequest): OidcIssuer {
    this.requests.push({ service: service.serviceName, request });
    return issuerFor(this.domain, request.clientId);
  }
}

const signOnEntry = defineService({ name: 'sign-on', names: ['sign-on'], providesSingleSignOn: true, enabled: () => true, build: (platform) => new FakeSignOn(platform) });
// After Argo CD, Grafana and Vault, before the apps: where the real provider's entry goes.
const catalog = catalogWith(signOnEntry, { before: appsEntry });

const withProvider = () => synthesizePlatforms(platformText(), catalog);
const withoutProvider = () => synthesizePlatforms(platformText(), BUILTIN_CATALOG);
const prod = () => withProvider().find((s) => s.env.environment === 'prod')!;

const provider = (s: Synthesized) => s.platform.services.find((x) => x.serviceName === 'sign-on') as FakeSignOn;
const service = (s: Synthesized, name: string) => s.platform.services.find((x) => x.serviceName === name)!;
const find = (s: Synthesized, path: string): Manifest | undefined => maybeManifestAt(s.env, path);
/** An object by kind, namespace and name, with the path of its file (its Application's folder). */
const object = (s: Synthesized, kind: string, namespace: string, name: string) =>
  manifestsOf(s.env).find(({ manifest }) => manifest.kind === kind && manifest.metadata.namespace === namespace && manifest.metadata.name === name);
const hostOf = (s: Synthesized, name: string) => s.platform.hostname(service(s, name).exposures[0].subdomain);

describe('the single-sign-on pass', () => {
  it('registers every service whose login can be an OIDC client, once, with its exact callbacks and a generated client Secret', () => {
    for (const s of withProvider()) {
      const clients = s.platform.services.filter(isOidcLoginService).map((x) => x.serviceName).sort();
      expect(clients).toEqual(expect.arrayContaining(['argocd', 'monitoring', 'vault']));
      const requests = provider(s).requests;
      expect(requests.map((r) => r.service).sort()).toEqual(clients);
      const byService = new Map(requests.map((r) => [r.service, r.request]));
      expect(byService.get('argocd')).toMatchObject({ clientId: 'argocd', redirectUris: [`https://${hostOf(s, 'argocd')}/auth/callback`] });
      expect(byService.get('monitoring')).toMatchObject({ clientId: 'grafana', redirectUris: [`https://${hostOf(s, 'monitoring')}/login/generic_oauth`] });
      expect(byService.get('vault')).toMatchObject({
        clientId: 'vault',
        redirectUris: [`https://${hostOf(s, 'vault')}/ui/vault/auth/oidc/oidc/callback`, 'http://localhost:8250/oidc/callback'],
      });
      expect(new Set(requests.map((r) => r.request.clientId)).size).toBe(requests.length);
      for (const { service: name, request } of requests) {
        // The client Secret is one the service itself declared: generated, never holding the service back.
        expect(service(s, name).secretNeeds).toContainEqual(request.clientSecret.need);
        expect(request.clientSecret.need).toMatchObject({ keys: [OIDC_CLIENT_SECRET_KEY], generated: true, neededToStart: false, namespace: service(s, name).namespaceName });
      }
    }
  });

  it('changes nothing without a provider: no client, no OIDC setting, no issuer egress', () => {
    for (const s of withoutProvider()) {
      for (const x of s.platform.services) {
        expect(x.secretNeeds.filter((need) => need.name.endsWith('-oidc-client'))).toEqual([]);
        expect(x.egress.filter((e) => e.to.kind === 'routed-host')).toEqual([]);
      }
      expect(chartValues(s.env, 'argocd').configs.cm).not.toHaveProperty(['oidc.config']);
      expect(chartValues(s.env, 'argocd').configs).not.toHaveProperty('rbac');
      expect(chartValues(s.env, 'monitoring').grafana['grafana.ini']).not.toHaveProperty(['auth.generic_oauth']);
      expect(manifestsOf(s.env).filter(({ manifest }) => manifest.metadata.name === VAULT_OIDC_LOGIN_JOB)).toEqual([]);
    }
  });

  it('the client Secrets are delivered from the generated values in Vault: no value in the output', () => {
    const s = prod();
    const needs = ['argocd', 'monitoring', 'vault'].flatMap((name) => service(s, name).secretNeeds.filter((need) => need.name.endsWith('-oidc-client')));
    expect(needs.map((need) => need.name).sort()).toEqual(['argocd-oidc-client', 'grafana-oidc-client', 'vault-oidc-client']);
    const generated = find(s, `vault/configmap-${CONFIGURATOR_NAME}.yaml`)!.data!.generated;
    const docs = manifestsOf(s.env);
    for (const need of needs) {
      expect(generated).toContain(`${need.service}/${need.name} ${OIDC_CLIENT_SECRET_KEY}\n`);
      const delivered = docs.filter(({ manifest }) => manifest.kind === 'ExternalSecret' && manifest.metadata.name === need.name && manifest.metadata.namespace === need.namespace);
      expect(delivered).toHaveLength(1);
      // In the Application the delivery pass chose; Argo CD's and Vault's from External Secrets' (they sync before it).
      const deliveredBy = s.env.secrets.find((source) => source.namespace === need.namespace && source.name === need.name)!.deliveredBy!;
      expect(delivered[0].path.startsWith(`${deliveredBy}/`), need.name).toBe(true);
      if (need.service !== 'monitoring') expect(deliveredBy, need.name).toBe('external-secrets');
      expect(delivered[0].manifest.spec.data).toEqual([{ secretKey: OIDC_CLIENT_SECRET_KEY, remoteRef: { key: `${need.service}/${need.name}`, property: OIDC_CLIENT_SECRET_KEY } }]);
    }
    expect(docs.filter(({ manifest }) => manifest.kind === 'Secret' && /oidc/.test(manifest.metadata.name))).toEqual([]);
  });
});

describe('Argo CD', () => {
  it('argocd-cm: its own OIDC client against the issuer, the secret as a reference to a Secret labelled for Argo CD', () => {
    const s = prod();
    const issuer = issuerFor(s.platform.config.domain, 'argocd');
    const values = chartValues(s.env, 'argocd');
    const oidc = parse(values.configs.cm['oidc.config']);
    expect(oidc).toEqual({
      name: 'sign-on',
      issuer: issuer.issuerUrl,
      clientID: 'argocd',
      clientSecret: `$argocd-oidc-client:${OIDC_CLIENT_SECRET_KEY}`,
      requestedScopes: issuer.scopes,
      requestedIDTokenClaims: { member_of: { essential: true } },
    });
    // The local admin stays, for before the provider is up.
    expect(values.configs.cm['admin.enabled']).toBe(true);
    const secret = object(s, 'ExternalSecret', 'argocd', 'argocd-oidc-client')!.manifest;
    expect(secret.spec.target.template).toEqual({ metadata: { labels: { 'app.kubernetes.io/part-of': 'argocd' } } });
    // The bootstrap install carries the same configuration.
    expect(parse(readBootstrapValues(s)).configs.cm['oidc.config']).toBe(values.configs.cm['oidc.config']);
  });

  it('argocd-rbac-cm: the admin group is role:admin, the viewer group role:readonly, the groups from the issuer\'s claim, nothing for anyone else', () => {
    const rbac = chartValues(prod().env, 'argocd').configs.rbac;
    expect(rbac['policy.csv'].trim().split('\n')).toEqual([`g, ${ADMIN_GROUP}, role:admin`, `g, ${VIEWER_GROUP}, role:readonly`]);
    expect(rbac.scopes).toBe('[member_of]');
    expect(rbac['policy.default'] ?? '').toBe('');
  });
});

function readBootstrapValues(s: Synthesized): string {
  return s.env.files.get('bootstrap/argo-cd.values.yaml')!;
}

describe('Grafana', () => {
  it('grafana.ini: generic OAuth at the issuer\'s endpoints, Admin and Viewer from the groups claim, strict, the login form kept', () => {
    const s = prod();
    const issuer = issuerFor(s.platform.config.domain, 'grafana');
    const grafana = chartValues(s.env, 'monitoring').grafana;
    const ini = grafana['grafana.ini'];
    expect(ini.server.root_url).toBe(`https://${hostOf(s, 'monitoring')}`);
    expect(ini.auth).toEqual({ disable_login_form: false });
    expect(ini['auth.generic_oauth']).toEqual({
      enabled: true,
      name: 'sign-on',
      client_id: 'grafana',
      scopes: 'openid email profile memberships',
      auth_url: issuer.endpoints.authorization,
      token_url: issuer.endpoints.token,
      api_url: issuer.endpoints.userinfo,
      use_pkce: true,
      allow_sign_up: true,
      auto_login: false,
      role_attribute_path: `contains("member_of"[*], '${ADMIN_GROUP}') && 'Admin' || contains("member_of"[*], '${VIEWER_GROUP}') && 'Viewer'`,
      role_attribute_strict: true,
    });
    // No secret in the values: Grafana reads it from the delivered Secret, and starts without it.
    expect(JSON.stringify(ini)).not.toMatch(/client_secret/);
    expect(grafana.envValueFrom).toEqual({ GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET: { secretKeyRef: { name: 'grafana-oidc-client', key: OIDC_CLIENT_SECRET_KEY, optional: true } } });
  });
});

describe('Vault', () => {
  const job = (s: Synthesized) => manifestsOf(s.env).find(({ manifest }) => manifest.kind === 'Job' && manifest.metadata.name === VAULT_OIDC_LOGIN_JOB)!;

  it("configures its OIDC login from a PostSync Job, in Vault's namespace, of an Application that syncs after everything on the issuer's path, in the wave of that Application's checks", () => {
    for (const s of withProvider().filter((x) => x.platform.services.some((y) => y.serviceName === 'vault'))) {
      const { path, manifest } = job(s);
      const holder = path.split('/')[0];
      const waveOf = (name: string) => s.env.services.find((n) => n.name === name)!.wave;
      // The provider, the router (route, certificate), the route followers (tunnel, DNS record): the issuer answers once all have synced.
      const onPath = s.platform.services.filter((x) => isSingleSignOnProvider(x) || isExposureRouter(x) || isRouteFollower(x)).map((x) => x.serviceName);
      expect(onPath).toContain('sign-on');
      for (const name of onPath) expect(waveOf(holder), `${s.env.environment}: ${holder} after ${name}`).toBeGreaterThan(waveOf(name));
      expect(manifest.metadata.namespace).toBe('vault');
      expect(manifest.metadata.annotations?.[HOOK]).toBe('PostSync');
      const hookWave = (m: Manifest) => Number(m.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0);
      const otherHooks = manifestsOf(s.env).filter(({ path: p, manifest: m }) => p.startsWith(`${holder}/`) && m.kind === 'Job' && m !== manifest && m.metadata.annotations?.[HOOK]?.includes('PostSync'));
      // Neither before the checks (a failed step would keep them from running and leave the previous sync's Jobs to report) nor after them.
      const checksWave = Math.min(...otherHooks.map((other) => hookWave(other.manifest)));
      expect(hookWave(manifest)).toBe(checksWave);
      expect(otherHooks.some((other) => hookWave(other.manifest) > checksWave)).toBe(true);
    }
    const s = prod();
    const { manifest } = job(s);
    expect(manifestsOf(s.env).filter(({ path: p, manifest: m }) => p.startsWith('vault/') && JSON.stringify(m).includes('oidc_discovery_url'))).toEqual([]);
    const env = Object.fromEntries(manifest.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
    const issuer = issuerFor(s.platform.config.domain, 'vault');
    expect(env).toMatchObject({
      ISSUER: issuer.issuerUrl,
      CLIENT_ID: 'vault',
      GROUPS_CLAIM: 'member_of',
      SCOPES: 'email,profile,memberships',
      REDIRECT_URIS: `https://${hostOf(s, 'vault')}/ui/vault/auth/oidc/oidc/callback,http://localhost:8250/oidc/callback`,
      ROLE: 'homelab-vault-oidc-login',
    });
    // The client secret is a file of the one container, never an environment variable.
    const pod = manifest.spec.template.spec;
    expect(JSON.stringify(pod.containers[0].env)).not.toContain('secretKeyRef');
    const mount = pod.containers[0].volumeMounts.find((m: any) => env.CLIENT_SECRET_FILE.startsWith(`${m.mountPath}/`));
    expect(mount).toMatchObject({ readOnly: true });
    expect(pod.volumes.find((v: any) => v.name === mount.name).secret).toEqual({
      secretName: 'vault-oidc-client',
      optional: true,
      items: [{ key: OIDC_CLIENT_SECRET_KEY, path: env.CLIENT_SECRET_FILE.slice(mount.mountPath.length + 1) }],
    });
  });

  it('maps the admin group to a policy over the KV values and the viewer group to one that reads no value', () => {
    const s = prod();
    const data = object(s, 'ConfigMap', 'vault', VAULT_OIDC_LOGIN_JOB)!.manifest.data!;
    expect(data[GROUPS_KEY]).toBe(`${ADMIN_GROUP} oidc-${ADMIN_GROUP}\n${VIEWER_GROUP} oidc-${VIEWER_GROUP}\n`);
    const admin = data[`oidc-${ADMIN_GROUP}.hcl`];
    const viewer = data[`oidc-${VIEWER_GROUP}.hcl`];
    expect(admin).toContain('path "homelab/data/*" {\n  capabilities = ["create", "read", "update", "patch", "delete"]\n}');
    expect(viewer).not.toMatch(/homelab\/data/);
    expect(viewer).toContain('path "homelab/metadata/*" {\n  capabilities = ["read", "list"]\n}');
    // Neither changes Vault's own configuration.
    for (const policy of [admin, viewer]) expect(policy).not.toMatch(/sudo|sys\/auth|auth\/|identity\//);
  });

  it("the Job's role, kept by the configurator, may do exactly its steps", () => {
    const s = prod();
    const configurator = find(s, `vault/configmap-${CONFIGURATOR_NAME}.yaml`)!.data!;
    expect(configurator[ROLES_KEY]).toContain(`homelab-vault-oidc-login ${VAULT_OIDC_LOGIN_JOB} vault\n`);
    const paths = [...configurator['homelab-vault-oidc-login.hcl'].matchAll(/path "([^"]+)"/g)].map((m) => m[1]);
    expect(paths).toEqual([
      'sys/auth/oidc',
      'auth/oidc/config',
      'auth/oidc/role/sso',
      `sys/policies/acl/oidc-${ADMIN_GROUP}`,
      `sys/policies/acl/oidc-${VIEWER_GROUP}`,
      `identity/group/name/${ADMIN_GROUP}`,
      `identity/group/name/${VIEWER_GROUP}`,
      'identity/group-alias',
      'identity/lookup/group',
    ]);
    expect(configurator['homelab-vault-oidc-login.hcl']).not.toMatch(/homelab\/data/);
    // Its ServiceAccount is in the Job's Application, its token mounted by no other pod.
    const account = object(s, 'ServiceAccount', 'vault', VAULT_OIDC_LOGIN_JOB)!;
    expect(account.path.split('/')[0]).toBe(job(s).path.split('/')[0]);
    expect(account.manifest.automountServiceAccountToken).toBe(false);
  });
});

describe('order and reach', () => {
  it('no sync of Argo CD or Vault waits for the provider, directly or through another service', () => {
    for (const s of withProvider()) {
      const graph = new Map(s.env.services.map((n) => [n.name, n.dependsOn]));
      const wave = (name: string) => s.env.services.find((n) => n.name === name)!.wave;
      const reaches = (from: string, to: string, seen = new Set<string>()): boolean =>
        (graph.get(from) ?? []).some((dep) => dep === to || (!seen.has(dep) && (seen.add(dep), reaches(dep, to, seen))));
      expect(reaches('argocd', 'sign-on')).toBe(false);
      expect(reaches('vault', 'sign-on')).toBe(false);
      expect(wave('vault')).toBeLessThan(wave('sign-on'));
    }
  });

  it('the servers reach the issuer by its public name: through Traefik\'s entry port, which lets them in, or a public address on HTTPS', () => {
    const s = prod();
    const docs = manifestsOf(s.env);
    const traefik = s.platform.services.find((x) => x.serviceName === 'traefik')!;
    for (const [name, pods] of [
      ['argocd', { 'app.kubernetes.io/name': 'argocd-server', 'app.kubernetes.io/instance': 'argocd' }],
      ['monitoring', GRAFANA_SERVICE.podSelector],
      ['vault', { 'app.kubernetes.io/name': 'vault', 'app.kubernetes.io/instance': 'vault', component: 'server' }],
    ] as const) {
      const namespace = service(s, name).namespaceName;
      const egress = docs.find(({ manifest }) => manifest.kind === 'NetworkPolicy' && manifest.metadata.namespace === namespace && manifest.metadata.name === `${EGRESS_PREFIX}oidc-issuer`)!.manifest;
      expect(egress.spec.podSelector).toEqual({ matchLabels: pods });
      const [viaTraefik, internet] = egress.spec.egress;
      expect(viaTraefik).toEqual({ to: [{ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: 'traefik' } }, podSelector: expect.anything() }], ports: [{ port: 8443, protocol: 'TCP' }] });
      expect(internet.ports).toEqual([{ port: 443, protocol: 'TCP' }]);
      expect(internet.to[0].ipBlock).toEqual({ cidr: '0.0.0.0/0', except: [...NON_PUBLIC_IPV4] });
      const ingress = docs.find(({ manifest }) => manifest.kind === 'NetworkPolicy' && manifest.metadata.namespace === traefik.namespaceName && manifest.metadata.name === `allow-${name}-oidc-issuer`)!.manifest;
      expect(ingress.spec.ingress).toEqual([{ from: [{ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: namespace } }, podSelector: { matchLabels: pods } }], ports: [{ port: 8443, protocol: 'TCP' }] }]);
    }
  });

  it('every invariant and the policy lint hold with a provider', () => {
    const all = withProvider();
    for (const invariant of INVARIANTS) expect(invariant.check(all), invariant.name).toEqual([]);
    expect(lintViolations(all)).toEqual([]);
  });
});

describe("Vault's OIDC script, against a fake Vault CLI", () => {
  /**
   * A `vault` that logs every call (arguments, and stdin where a value is read from it) and
   * answers from files in $FAKE_BIN: `oidc-enabled` (the mount exists), `aliases` (group names
   * with an alias), `discovery-fails` (the issuer does not answer).
   */
  const FAKE_VAULT = String.raw`echo "$*" >> "$FAKE_BIN/calls"
case "$*" in
  *"auth/kubernetes/login"*) echo job-token ;;
  "read sys/auth/oidc") [ -f "$FAKE_BIN/oidc-enabled" ] ;;
  "read -field=accessor sys/auth/oidc") echo auth_oidc_1a2b ;;
  "auth enable -path=oidc oidc") touch "$FAKE_BIN/oidc-enabled" ;;
  "write auth/oidc/config"*) cat > "$FAKE_BIN/stdin"; if [ -f "$FAKE_BIN/discovery-fails" ]; then echo "Error writing data to auth/oidc/config: error checking oidc discovery URL" >&2; exit 2; fi ;;
  "read -field=id identity/group/name/"*) echo "id-${'$'}{3##*/}" ;;
  "write -format=json identity/lookup/group"*) name=${'$'}{4#alias_name=}; grep -qx "$name" "$FAKE_BIN/aliases" 2> /dev/null && echo '{"data": {"id": "id-'"$name"'"}}' || true ;;
esac`;

  function run(options: { secret?: string; enabled?: boolean; aliases?: string[]; discoveryFails?: boolean } = {}) {
    const { manifest } = manifestsOf(prod().env).find(({ manifest: m }) => m.kind === 'Job' && m.metadata.name === VAULT_OIDC_LOGIN_JOB)!;
    const container = manifest.spec.template.spec.containers[0];
    expect(container.command).toEqual(['sh', '-ec', VAULT_OIDC_LOGIN_SCRIPT]);
    const config = tempDir();
    const data = object(prod(), 'ConfigMap', 'vault', VAULT_OIDC_LOGIN_JOB)!.manifest.data!;
    for (const [key, text] of Object.entries(data)) writeFileSync(join(config, key), text);
    const secretFile = join(config, 'client-secret');
    writeFileSync(secretFile, options.secret ?? 's3cr3t-value');
    return runWithFakeCommands(container, { vault: FAKE_VAULT }, {
      env: { CONFIG_DIR: config, TOKEN_FILE: join(config, 'token'), CLIENT_SECRET_FILE: secretFile },
      prepare: (bin) => {
        if (options.enabled) writeFileSync(join(bin, 'oidc-enabled'), '');
        if (options.aliases) writeFileSync(join(bin, 'aliases'), options.aliases.map((a) => `${a}\n`).join(''));
        if (options.discoveryFails) writeFileSync(join(bin, 'discovery-fails'), '');
      },
      collect: (bin) => ({ calls: readFakeFile(bin, 'calls').split('\n').filter(Boolean), stdin: readFakeFile(bin, 'stdin') }),
    });
  }

  it('on a fresh Vault: enables the method, writes the configuration with the secret on stdin only, the role, both groups and their aliases', () => {
    const result = run();
    expect(result.status, result.stderr).toBe(0);
    const { calls, stdin } = result.collected;
    expect(stdin).toBe('s3cr3t-value');
    expect(calls.join('\n')).not.toContain('s3cr3t-value');
    expect(calls).toContain('auth enable -path=oidc oidc');
    expect(calls.find((c) => c.startsWith('write auth/oidc/config'))).toMatch(/oidc_discovery_url=https:\/\/login\.home\.example\.net\/o\/vault\/ oidc_client_id=vault oidc_client_secret=- default_role=sso$/);
    expect(calls.find((c) => c.startsWith('write auth/oidc/role/sso'))).toContain('groups_claim=member_of');
    for (const group of [ADMIN_GROUP, VIEWER_GROUP]) {
      expect(calls.some((c) => c.startsWith(`policy write oidc-${group} `))).toBe(true);
      expect(calls).toContain(`write identity/group/name/${group} type=external policies=oidc-${group}`);
      expect(calls).toContain(`write identity/group-alias name=${group} mount_accessor=auth_oidc_1a2b canonical_id=id-${group}`);
    }
    expect(result.stdout).toContain('Vault logs users in through https://login.home.example.net/o/vault/');
  });

  it('again: the method and the aliases that exist are left as they are', () => {
    const result = run({ enabled: true, aliases: [ADMIN_GROUP, VIEWER_GROUP] });
    expect(result.status, result.stderr).toBe(0);
    const { calls } = result.collected;
    expect(calls.filter((c) => c.startsWith('auth enable') || c.startsWith('write identity/group-alias'))).toEqual([]);
    expect(calls.filter((c) => c.startsWith('write auth/oidc/config'))).toHaveLength(1);
    expect(result.stdout).toContain(`group ${ADMIN_GROUP}: policy oidc-${ADMIN_GROUP}, alias on oidc/ present`);
  });

  it('fails, saying why, without the client secret or when the issuer does not answer', () => {
    const missing = run({ secret: '' });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('no OIDC client secret: the Secret vault-oidc-client is not delivered yet');
    expect(missing.collected.calls).toEqual([]);
    const unreachable = run({ discoveryFails: true });
    expect(unreachable.status).not.toBe(0);
    expect(unreachable.stderr).toContain('error checking oidc discovery URL');
    expect(unreachable.collected.calls.some((c) => c.startsWith('write auth/oidc/role'))).toBe(false);
  });
});
