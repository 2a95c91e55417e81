/**
 * DNS records derived from the exposures (external-dns with Cloudflare): on the platform fixture
 * (prod publishes its public hosts through the tunnel and has a MetalLB address, dev and staging
 * have neither) and variants of it — the DNSEndpoints of tunnel and non-tunnel
 * hosts, the chart's values, config errors naming their paths, the waves, NetworkPolicies,
 * metrics and alerts, the invariant, and the checkpoint scripts against fake answers.
 */
import { describe, expect, it } from 'vitest';
import { CLOUDFLARE_PROXIED, dnsRecords, PUBLIC_RESOLVER, recordType } from '../charts/external-dns';
import { isExposureRouter, type RoutedHost } from '../lib/model/exposure';
import { CHECK_START_SECONDS } from '../lib/model/checkpoint';
import { helmValuesErrors } from '../lib/tools/validate/helm-values';
import { invariantNamed } from './invariants';
import { assertValidPromql } from './support-promql';
import { chartValues, environmentIssues, FAKE_SLEEP, manifestAt, manifestsOf, platformObject, platformText, runWithFakeCommands, shellQuoted, Synthesized, synthesizeEnvironment, synthesizePlatforms, toYamlText, withFiles } from './support';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ZONE_ID = '023e105f4ecef8ad9ca31a8372d0c353';
/** The fixture's dev environment (which points at a node) with external-dns' settings changed (prod's own, a private target, dropped). */
function withExternalDns(settings: Record<string, unknown>): Synthesized {
  const config = platformObject();
  config.services.externalDns = { ...config.services.externalDns, ...settings };
  config.environments.prod.services.externalDns = {};
  return synthesizeEnvironment(toYamlText(config), 'dev', undefined, { fresh: true });
}

const envs = synthesizePlatforms(platformText());
const env = (name: string) => envs.find((s) => s.env.environment === name)!;
const [dev, prod] = [env('dev'), env('prod')];
const file = (s: Synthesized, path: string) => manifestAt(s.env, path);
const values = (s: Synthesized) => chartValues(s.env, 'external-dns');
const routedHosts = (s: Synthesized) => s.platform.services.find(isExposureRouter)!.routedHosts;
const endpointOf = (s: Synthesized, host: RoutedHost) => {
  const subdomain = host.host.slice(0, -`.${s.config.domain}`.length);
  return file(s, `external-dns/dnsendpoint-${subdomain}.yaml`).spec.endpoints;
};
const proxiedOf = (endpoint: any) => endpoint.providerSpecific.find((p: any) => p.name === CLOUDFLARE_PROXIED)?.value;
const TUNNEL_ID = platformObject().environments.prod.services.cloudflared.tunnelId as string;

describe('records derived from the exposures', () => {
  it('gives every host the router routes one DNSEndpoint, and nothing else one', () => {
    for (const s of envs) {
      const hosts = routedHosts(s).map((h) => h.host).sort();
      const endpoints = manifestsOf(s.env).filter((m) => m.manifest.kind === 'DNSEndpoint');
      expect(endpoints.flatMap((m) => m.manifest.spec.endpoints.map((e: any) => e.dnsName)).sort(), s.env.environment).toEqual(hosts);
      expect(endpoints.every((m) => m.path.startsWith('external-dns/') && m.manifest.metadata.namespace === 'external-dns')).toBe(true);
    }
  });

  it("publishes the tunnel's hosts as proxied CNAMEs to the tunnel, the admin hosts as A records to Traefik's loadBalancerIP", () => {
    const hosts = routedHosts(prod);
    expect(hosts.some((h) => h.admin) && hosts.some((h) => !h.admin)).toBe(true);
    for (const host of hosts) {
      const [endpoint] = endpointOf(prod, host);
      if (host.admin) {
        expect(endpoint, host.host).toMatchObject({ dnsName: host.host, recordType: 'A', targets: ['192.168.1.240'], recordTTL: 300 });
        expect(proxiedOf(endpoint)).toBe('false');
      } else {
        expect(endpoint, host.host).toMatchObject({ dnsName: host.host, recordType: 'CNAME', targets: [`${TUNNEL_ID}.cfargotunnel.com`] });
        expect(endpoint.recordTTL).toBeUndefined();
        expect(proxiedOf(endpoint)).toBe('true');
      }
    }
  });

  it('points every host at the target where no tunnel runs, DNS only with the configured TTL', () => {
    for (const host of routedHosts(dev)) {
      const [endpoint] = endpointOf(dev, host);
      expect(endpoint).toMatchObject({ recordType: 'A', targets: ['192.168.1.10'], recordTTL: 300 });
      expect(proxiedOf(endpoint)).toBe('false');
    }
  });

  it('takes the record type from the target and proxies only public hosts when asked', () => {
    expect([recordType('192.168.1.10'), recordType('fd00::10'), recordType('edge.example.org')]).toEqual(['A', 'AAAA', 'CNAME']);
    const hosts: RoutedHost[] = [
      { host: 'n8n.example.net', admin: false, certificate: 'n8n/n8n' },
      { host: 'argocd.example.net', admin: true, certificate: 'argocd/argocd' },
    ];
    expect(dnsRecords(hosts, { target: '203.0.113.10', ttl: 120, proxied: true })).toEqual([
      { host: 'argocd.example.net', type: 'A', target: '203.0.113.10', proxied: false, ttl: 120 },
      { host: 'n8n.example.net', type: 'A', target: '203.0.113.10', proxied: true },
    ]);
    const tunnel = { target: 'abc.cfargotunnel.com', serves: (h: RoutedHost) => !h.admin };
    expect(dnsRecords(hosts, { target: 'edge.example.org', ttl: 120, proxied: false, tunnel })).toEqual([
      { host: 'argocd.example.net', type: 'CNAME', target: 'edge.example.org', proxied: false, ttl: 120 },
      { host: 'n8n.example.net', type: 'CNAME', target: 'abc.cfargotunnel.com', proxied: true },
    ]);
  });

  it('takes TTL, proxy and an IPv6 target from the config', () => {
    // Written as the operator likes; recorded as Cloudflare stores it and resolvers print it.
    const tuned = withExternalDns({ target: '2001:DB8:0:0::10', ttl: 600, proxied: true });
    for (const host of routedHosts(tuned)) {
      const [endpoint] = endpointOf(tuned, host);
      expect(endpoint).toMatchObject({ recordType: 'AAAA', targets: ['2001:db8::10'] });
      expect(proxiedOf(endpoint)).toBe(String(!host.admin));
      expect(endpoint.recordTTL).toBe(host.admin ? 600 : undefined);
    }
  });
});

describe('the external-dns chart', () => {
  it('installs the pinned chart with values its schema accepts', () => {
    const source = file(prod, 'apps/application-external-dns.yaml').spec.sources.find((s: any) => s.chart);
    expect(source).toMatchObject({ repoURL: 'https://kubernetes-sigs.github.io/external-dns/', chart: 'external-dns', targetRevision: '1.21.1' });
    for (const s of envs) expect(helmValuesErrors('external-dns', values(s))).toEqual([]);
  });

  it('reads only its own DNSEndpoints, owns records per environment and touches only the zone and the domain', () => {
    const owners = new Set<string>();
    for (const s of envs) {
      const v = values(s);
      expect(v).toMatchObject({ provider: { name: 'cloudflare' }, sources: ['crd'], namespaced: true, registry: 'txt', policy: 'sync', domainFilters: [s.config.domain] });
      expect(v.extraArgs).toEqual({ 'zone-id-filter': ZONE_ID });
      owners.add(v.txtOwnerId);
    }
    expect(owners.size).toBe(envs.length);
  });

  it('reads the API token from the declared Secret, delivered from Vault', () => {
    expect(values(prod).env).toEqual([{ name: 'CF_API_TOKEN', valueFrom: { secretKeyRef: { name: 'cloudflare-api-token', key: 'api-token' } } }]);
    const need = prod.env.secrets.find((n) => n.namespace === 'external-dns')!;
    expect(need).toMatchObject({ name: 'cloudflare-api-token', keys: ['api-token'], source: 'Vault homelab/external-dns/cloudflare-api-token' });
    expect(need.purpose).toContain(`Zone:Zone:Read and Zone:DNS:Edit on zone ${ZONE_ID} only`);
    expect(file(prod, 'external-dns/externalsecret-cloudflare-api-token.yaml').spec.target.name).toBe('cloudflare-api-token');
  });

  it('syncs after the router, the tunnel and the delivery of its token', () => {
    for (const s of envs) {
      const wave = (name: string) => s.env.services.find((service) => service.name === name)?.wave;
      const mine = wave('external-dns')!;
      for (const before of ['traefik', 'cloudflared', 'external-secrets', 'vault']) if (wave(before) !== undefined) expect(mine, `${s.env.environment}: ${before}`).toBeGreaterThan(wave(before)!);
      expect(wave('verification')).toBeGreaterThan(mine);
    }
    expect(prod.env.services.find((s) => s.name === 'external-dns')!.dependsOn).toEqual(expect.arrayContaining(['traefik', 'cloudflared']));
  });

  it("reaches Cloudflare's API and the API server, and neither Traefik nor the tunnel", () => {
    const policies = manifestsOf(prod.env).filter((m) => m.path.startsWith('external-dns/networkpolicy-egress-')).map((m) => m.manifest.metadata.name);
    expect(policies).toEqual(expect.arrayContaining(['egress-cloudflare-api', 'egress-api-server', 'egress-checkpoint-cloudflare-api', 'egress-checkpoint-public-resolver']));
    expect(policies.filter((name) => /traefik|cloudflared/.test(name))).toEqual([]);
    const api = file(prod, 'external-dns/networkpolicy-egress-cloudflare-api.yaml').spec;
    expect(api.podSelector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'external-dns', 'app.kubernetes.io/instance': 'external-dns' });
    expect(api.egress[0].ports).toEqual([{ port: 443, protocol: 'TCP' }]);
    const resolver = file(prod, 'external-dns/networkpolicy-egress-checkpoint-public-resolver.yaml').spec.egress[0];
    expect(resolver.to).toEqual([{ ipBlock: { cidr: `${PUBLIC_RESOLVER}/32` } }]);
  });

  it("is scraped through the chart's Service and alerts when syncs with Cloudflare fail or a record is held by another owner", () => {
    const monitor = file(prod, 'external-dns/servicemonitor-external-dns-controller.yaml');
    expect(monitor.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'external-dns', 'app.kubernetes.io/instance': 'external-dns' });
    expect(monitor.spec.endpoints.map((e: any) => e.port)).toEqual(['http']);
    const rules = prod.platform.services.find((s) => s.serviceName === 'external-dns')!.alertRules;
    expect(rules.map((r) => r.alert)).toEqual(['ExternalDnsSyncFailing', 'ExternalDnsErrors', 'ExternalDnsRecordNotOwned']);
    assertValidPromql(rules.map((r) => ({ label: r.alert, expr: r.expr })));
    expect(rules[0].expr).toContain('external_dns_controller_last_sync_timestamp_seconds{homelab_service="external-dns"}');
    for (const rule of rules) expect(rule.expr, rule.alert).toContain('homelab_service="external-dns"');
  });
});

describe('the config', () => {
  const networking = {
    nodes: { a: { role: 'control-plane', cpu: 8, memory: '32Gi' } },
    services: { longhorn: { replicas: 1 }, certManager: { enabled: true, email: 'admin@example.net' }, traefik: { enabled: true, adminAccess: { allowList: ['192.168.1.0/24'] } } },
  };
  const issues = (externalDns: Record<string, unknown>, traefik: Record<string, unknown> = {}) =>
    environmentIssues({ ...networking, services: { ...networking.services, traefik: { ...networking.services.traefik, ...traefik }, externalDns } });

  it('accepts a zone and a target, or Traefik\'s loadBalancerIP as the target', () => {
    expect(issues({ enabled: true, cloudflare: { zoneId: ZONE_ID }, target: 'edge.example.org' })).toEqual([]);
    expect(issues({ enabled: true, cloudflare: { zoneId: ZONE_ID } }, { loadBalancerIP: '192.168.1.240' })).toEqual([]);
  });

  it('names the path of a missing or malformed zone ID, target or TTL', () => {
    expect(issues({ enabled: true, target: '192.168.1.10' })).toEqual([
      { path: 'services.externalDns.cloudflare.zoneId', message: "expected the ID of the Cloudflare zone holding the domain (32 hexadecimal digits, on the zone's Overview page)" },
    ]);
    expect(issues({ enabled: true, cloudflare: { zoneId: 'example.net' }, target: '192.168.1.10' }).map((i) => i.path)).toEqual(['services.externalDns.cloudflare.zoneId']);
    expect(issues({ enabled: true, cloudflare: { zoneId: ZONE_ID } })).toEqual([
      {
        path: 'services.externalDns.target',
        message: 'expected an IPv4 or IPv6 address or a DNS hostname (e.g. "192.168.1.240" or "home.example.org") where clients reach Traefik (or services.traefik.loadBalancerIP)',
      },
    ]);
    expect(issues({ enabled: true, cloudflare: { zoneId: ZONE_ID }, target: 'not a host!' }).map((i) => i.path)).toEqual(['services.externalDns.target']);
    expect(issues({ enabled: true, cloudflare: { zoneId: ZONE_ID }, target: '192.168.1.10', ttl: 5 }).map((i) => `${i.path}: ${i.message}`)).toEqual([
      'services.externalDns.ttl: expected an integer between 60 and 86400',
    ]);
  });

  it("refuses the proxy in front of a private address, the target's or the loadBalancerIP", () => {
    const message = (target: string) => `expected false with the private target ${target}: Cloudflare's proxy connects to the target from the internet and cannot reach a private address`;
    expect(issues({ enabled: true, cloudflare: { zoneId: ZONE_ID }, target: '10.0.0.5', proxied: true })).toEqual([{ path: 'services.externalDns.proxied', message: message('10.0.0.5') }]);
    expect(issues({ enabled: true, cloudflare: { zoneId: ZONE_ID }, target: 'fd00::5', proxied: true }).map((i) => i.path)).toEqual(['services.externalDns.proxied']);
    expect(issues({ enabled: true, cloudflare: { zoneId: ZONE_ID }, proxied: true }, { loadBalancerIP: '192.168.1.240' })).toEqual([
      { path: 'services.externalDns.proxied', message: message('192.168.1.240') },
    ]);
    expect(issues({ enabled: true, cloudflare: { zoneId: ZONE_ID }, target: '203.0.113.10', proxied: true })).toEqual([]);
  });

  it('requires Traefik, whose hosts the records are', () => {
    expect(environmentIssues({ nodes: networking.nodes, services: { longhorn: { replicas: 1 }, externalDns: { enabled: true, cloudflare: { zoneId: ZONE_ID }, target: '192.168.1.10' } } })).toEqual([
      { path: 'services.externalDns.enabled', message: 'expected services.traefik.enabled: the records are those of the hosts Traefik routes' },
    ]);
  });
});

describe('the invariant on derived records', () => {
  const invariant = invariantNamed('where DNS records are derived');
  const admin = routedHosts(prod).find((h) => h.admin)!;
  const adminFile = `external-dns/dnsendpoint-${admin.host.split('.')[0]}.yaml`;

  it('holds on the derived records', () => {
    expect(invariant.check(envs)).toEqual([]);
  });

  it('fails for a routed host without a record, and for an admin host behind the proxy', () => {
    expect(invariant.check([withFiles(prod, (files) => files.delete(adminFile))])).toEqual([`prod: routed host ${admin.host} has 0 DNS records, expected 1`]);
    const proxied = withFiles(prod, (files) => files.set(adminFile, files.get(adminFile)!.replace('value: "false"', 'value: "true"')));
    expect(invariant.check([proxied])).toEqual([`prod/${adminFile}: ${admin.host}: proxied, but its route's access control reads the client's address, which the proxy replaces`]);
  });
});

/** A Cloudflare API answer (list DNS records), pretty-printed as the API does. */
const answer = (records: readonly object[], success = true) => JSON.stringify({ result: records, success, errors: [], messages: [] }, null, 2);
const owned = (owner: string) => `"heritage=external-dns,external-dns/owner=${owner},external-dns/resource=crd/external-dns/argocd"`;

/** A check Job's container, its env values, and its `$RECORDS` (`host,type,target,proxied` each). */
function checkJob(s: Synthesized, path: string) {
  const container = file(s, path).spec.template.spec.containers[0];
  const env = (name: string) => container.env.find((e: any) => e.name === name)?.value as string;
  const records = env('RECORDS')
    .split(' ')
    .map((r) => r.split(','));
  return { container, env, records };
}

/** An environment's provider check against answers by query string: every record present and owned, with `change` applied. */
function runProviderCheck(s: Synthesized, change: (answers: Map<string, string>) => void = () => {}, curlFails = false) {
  const { container, env, records } = checkJob(s, 'external-dns/job-external-dns-checkpoint.yaml');
  const answers = new Map<string, string>();
  for (const [host, type, target, proxied] of records) {
    answers.set(`type=${type}&name=${host}`, answer([{ name: host, type, content: target, proxied: proxied === 'true', ttl: proxied === 'true' ? 1 : 300 }]));
    answers.set(`type=TXT&name=${type.toLowerCase()}-${host}`, answer([{ name: `${type.toLowerCase()}-${host}`, type: 'TXT', content: owned(env('OWNER')) }]));
  }
  change(answers);
  const curl = [
    'echo "$@" >> "$FAKE_BIN/calls"',
    // curl's status when it cannot connect.
    curlFails ? 'exit 7' : '',
    'for arg; do url=$arg; done',
    // The answers in the fake itself: a call starts no process.
    'case ${url#*dns_records?} in',
    ...[...answers].map(([query, body]) => `  ${shellQuoted(query)}) printf '%s' ${shellQuoted(body)} ;;`),
    `  *) echo '{"result":[],"success":true}' ;;`,
    'esac',
  ].join('\n');
  const result = runWithFakeCommands(container, { curl, sleep: FAKE_SLEEP }, { env: { CF_API_TOKEN: 'token-from-vault', CHECKS: '2' }, collect: (bin) => readFileSync(join(bin, 'calls'), 'utf8') });
  return { status: result.status, output: result.stdout + result.stderr, calls: result.collected };
}

describe('the checkpoint: every record at Cloudflare, owned by the environment', () => {
  const { container, env, records } = checkJob(prod, 'external-dns/job-external-dns-checkpoint.yaml');
  const run = (change?: (answers: Map<string, string>) => void, curlFails = false) => runProviderCheck(prod, change, curlFails);

  it('asks the zone at Cloudflare for every derived record', () => {
    expect(env('ZONE_ID')).toBe(ZONE_ID);
    expect(env('OWNER')).toBe('homelab-prod');
    expect(records.map(([host]) => host).sort()).toEqual(routedHosts(prod).map((h) => h.host).sort());
    expect(container.env).toContainEqual({ name: 'CF_API_TOKEN', valueFrom: { secretKeyRef: { name: 'cloudflare-api-token', key: 'api-token' } } });
  });

  it("outlasts its rounds, with a last round asking every record and its TXT record at curl's limit, so the report comes before the Job's deadline", () => {
    const callSeconds = Number(/--max-time (\d+)/.exec(container.command[2])![1]);
    const worst = CHECK_START_SECONDS + Number(env('CHECK_SECONDS')) + 10 + records.length * 2 * callSeconds;
    expect(file(prod, 'external-dns/job-external-dns-checkpoint.yaml').spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(worst);
  });

  it('passes when every record is there with its target, proxy setting and owner', () => {
    const result = run();
    expect(result.status, result.output).toBe(0);
    for (const [host, type, target] of records) expect(result.output).toContain(`${host}: ${type} ${target}`);
    expect(result.calls).toContain(`Authorization: Bearer token-from-vault https://api.cloudflare.com/client/v4/zones/${ZONE_ID}/dns_records?type=`);
  });

  it('fails naming the record that is missing, points elsewhere, is proxied otherwise or has another owner', () => {
    // Each record is checked on its own: one run breaks four of them, each another way.
    expect(records.length).toBeGreaterThanOrEqual(4);
    const [missing, elsewhere, proxy, foreign] = records;
    const result = run((a) => {
      a.delete(`type=${missing[1]}&name=${missing[0]}`);
      a.set(`type=${elsewhere[1]}&name=${elsewhere[0]}`, answer([{ name: elsewhere[0], type: elsewhere[1], content: '198.51.100.1', proxied: false }]));
      a.set(`type=${proxy[1]}&name=${proxy[0]}`, answer([{ name: proxy[0], type: proxy[1], content: proxy[2], proxied: proxy[3] !== 'true' }]));
      a.set(`type=TXT&name=${foreign[1].toLowerCase()}-${foreign[0]}`, answer([{ type: 'TXT', content: owned('homelab-prod-old') }]));
    });
    expect(result.status).not.toBe(0);
    expect(result.output).toContain(`${missing[0]}: no ${missing[1]} record ${missing[0]} -> ${missing[2]}`);
    expect(result.output).toContain(`${elsewhere[0]}: no ${elsewhere[1]} record ${elsewhere[0]} -> ${elsewhere[2]}`);
    expect(result.output).toContain(`${proxy[0]}: the ${proxy[1]} record ${proxy[0]} is not proxied=${proxy[3]}`);
    expect(result.output).toContain(`${foreign[0]}: the TXT record ${foreign[1].toLowerCase()}-${foreign[0]} does not name the owner homelab-prod: external-dns does not own ${foreign[0]}`);
    for (const [host, type, target] of records.slice(4)) expect(result.output).toContain(`${host}: ${type} ${target}`);
    expect(result.output).toContain('4 record(s) not at Cloudflare');
  });

  it('fails when the API refuses the token or does not answer', () => {
    const refusal = JSON.stringify({ success: false, errors: [{ code: 10000, message: 'Authentication error' }], messages: [], result: null });
    const refused = run((a) => a.forEach((_, query) => a.set(query, refusal)));
    expect(refused.status).not.toBe(0);
    expect(refused.output).toContain('the Cloudflare API refused: {"success":false,"errors":[{"code":10000,"message":"Authenticationerror"}]');
    const down = run(undefined, true);
    expect(down.status).not.toBe(0);
    expect(down.output).toContain('no answer from the Cloudflare API (egress to api.cloudflare.com)');
  });

  it('asks for the registry record of an AAAA record as aaaa-<host>', () => {
    const ipv6 = withExternalDns({ target: '2001:db8::10' });
    const aaaa = checkJob(ipv6, 'external-dns/job-external-dns-checkpoint.yaml').records.filter(([, type]) => type === 'AAAA');
    expect(aaaa.length).toBeGreaterThan(0);
    const result = runProviderCheck(ipv6);
    expect(result.status, result.output).toBe(0);
    for (const [host] of aaaa) expect(result.calls).toContain(`dns_records?type=TXT&name=aaaa-${host}`);
  });
});

describe('the verification: every host resolves through a public resolver', () => {
  const RESOLVE_JOB = 'verification/job-external-dns-e2e-hosts-resolve.yaml';
  const job = file(prod, RESOLVE_JOB);
  const { container, records } = checkJob(prod, RESOLVE_JOB);
  /**
   * busybox nslookup's answer for each host of `of`: its target (A), its canonical name and that
   * name's address (unproxied CNAME), or Cloudflare's proxy addresses (proxied); `wrong` resolves
   * elsewhere, `unknown` not at all.
   */
  const nslookup = (wrong?: string, unknown?: string, of: readonly string[][] = records) =>
    [
      `echo "Server:		$2"`,
      `echo "Address:	$2:53"`,
      'echo',
      'case "$1" in',
      ...of
        .filter(([host]) => host !== unknown)
        .map(([host, type, target, proxied]) => {
          const elsewhere = host === wrong;
          if (type === 'CNAME' && proxied === 'false') {
            return `  ${host}) echo "Non-authoritative answer:"; echo "${host}	canonical name = ${elsewhere ? 'elsewhere.example.org' : target}"; echo "Name:	${target}"; echo "Address: 203.0.113.5" ;;`;
          }
          const address = elsewhere ? '198.51.100.7' : proxied === 'true' ? '104.21.3.4' : target;
          return `  ${host}) echo "Non-authoritative answer:"; echo "Name:	${host}"; echo "Address: ${address}" ;;`;
        }),
      `  *) echo "** server can't find $1: NXDOMAIN"; exit 1 ;;`,
      'esac',
    ].join('\n');

  it('runs in the namespace whose egress reaches the public resolver', () => {
    expect(job.metadata.namespace).toBe('external-dns');
    expect(container.env).toContainEqual({ name: 'RESOLVER', value: PUBLIC_RESOLVER });
    expect(records.map(([host]) => host).sort()).toEqual(routedHosts(prod).map((h) => h.host).sort());
    expect(records.some(([, , , proxied]) => proxied === 'true') && records.some(([, , , proxied]) => proxied === 'false')).toBe(true);
  });

  it('passes when every host resolves to its target, or through the proxy', () => {
    const result = runWithFakeCommands(container, { nslookup: nslookup(), sleep: FAKE_SLEEP }, { env: { CHECKS: '2' } });
    expect(result.status, result.stdout + result.stderr).toBe(0);
    for (const [host] of records) expect(result.stdout).toContain(`${host} resolves through ${PUBLIC_RESOLVER}`);
  });

  it('fails naming a host that resolves elsewhere or not at all', () => {
    // Each host is asked on its own: in one run, an unproxied host resolves elsewhere and a proxied one not at all.
    const [host, , target] = records.find(([, , , proxied]) => proxied === 'false')!;
    const [unknown] = records.find(([, , , proxied]) => proxied === 'true')!;
    const result = runWithFakeCommands(container, { nslookup: nslookup(host, unknown), sleep: FAKE_SLEEP }, { env: { CHECKS: '2' } });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(`${host}: not the address ${target} (resolver ${PUBLIC_RESOLVER})`);
    expect(result.stderr).toContain(`${unknown}: no address through Cloudflare's proxy (resolver ${PUBLIC_RESOLVER})`);
    expect(result.stderr).toContain('2 host(s) do not resolve');
  });

  it('follows an unproxied CNAME to its target, and names one that points elsewhere', () => {
    const named = withExternalDns({ target: 'lb.example.net' });
    const { container: resolve, records: all } = checkJob(named, RESOLVE_JOB);
    const [host] = all.find(([, type, , proxied]) => type === 'CNAME' && proxied === 'false')!;
    const passed = runWithFakeCommands(resolve, { nslookup: nslookup(undefined, undefined, all), sleep: FAKE_SLEEP }, { env: { CHECKS: '2' } });
    expect(passed.status, passed.stdout + passed.stderr).toBe(0);
    expect(passed.stdout).toContain(`${host} resolves through ${PUBLIC_RESOLVER}`);
    const elsewhere = runWithFakeCommands(resolve, { nslookup: nslookup(host, undefined, all), sleep: FAKE_SLEEP }, { env: { CHECKS: '2' } });
    expect(elsewhere.status).not.toBe(0);
    expect(elsewhere.stderr).toContain(`${host}: no CNAME to lb.example.net (resolver ${PUBLIC_RESOLVER})`);
  });
});
