/**
 * ExternalDNS (networking layer, optional): the public DNS records of every host the router
 * serves, kept at Cloudflare. The records are derived here from the routed hosts — a CNAME to the
 * tunnel (`<tunnel-id>.cfargotunnel.com`, proxied) for the hosts cloudflared publishes, an A, AAAA
 * or CNAME to Traefik's address for the others — and written as DNSEndpoint objects into this
 * service's own folder, so every record is reviewable in k8s/; external-dns reads only those (the
 * `crd` source, in its own namespace) and owns what it writes with a TXT registry record per
 * host, under an owner id per environment (docs/adr/0034-dns-records-from-exposures.md).
 */
import { isIPv4 } from 'node:net';
import { Duration } from 'cdk8s';
import type { ExternalDnsValues } from '../imports/helm/external-dns';
import { DnsEndpoint } from '../imports/external-dns-externaldns.k8s.io';
import { z } from '../lib/model/config/zod';
import { defineService, settingsIn } from '../lib/model/catalog';
import { Checkpoint, CHECKPOINT_PODS, eachUntilOk, eachUntilOkSeconds } from '../lib/model/checkpoint';
import { bool, hostname, intBetween, matching, resourcesSchema } from '../lib/model/config/primitives';
import type { EdgePublisher, RoutedHost } from '../lib/model/exposure';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import type { SecretRef } from '../lib/model/secrets';
import { cidrsOverlap, INTERNET_HTTPS, isIPv6Address, NON_PUBLIC_IPV4 } from '../lib/model/network';
import { HomelabService } from '../lib/model/service';
import { helmRelease } from './helm-release';
import { IMAGES } from './versions';
import { Cloudflared, cloudflaredEntry } from './cloudflared';
import { Traefik, traefikEntry } from './traefik';
import { byCodeUnits } from '../lib/util/text-order';

export const EXTERNAL_DNS_NAMESPACE = 'external-dns';

/**
 * The controller's pods and metrics Service for release `external-dns` (chart external-dns
 * 1.21.1 _helpers.tpl `external-dns.selectorLabels`; templates/service.yaml names port 7979
 * `http`, where the binary serves /healthz and /metrics).
 */
const CONTROLLER_PODS = { 'app.kubernetes.io/name': 'external-dns', 'app.kubernetes.io/instance': 'external-dns' } as const;
const METRICS_SOURCE = 'kubernetes-sigs/external-dns charts/external-dns 1.21.1 templates/service.yaml, _helpers.tpl external-dns.selectorLabels';
const METRICS_PORT = 7979;

/** How often external-dns compares the records with Cloudflare (besides every DNSEndpoint change). */
const SYNC_INTERVAL_MINUTES = 1;

/** Cloudflare's API (api.cloudflare.com, v4): external-dns and the checkpoint read and write the zone's records there. */
export const CLOUDFLARE_API = 'https://api.cloudflare.com/client/v4';
/**
 * The per-record proxy switch of external-dns' Cloudflare provider (source/annotations
 * CloudflareProxiedKey, read from a DNSEndpoint's providerSpecific in provider/cloudflare
 * shouldBeProxied, external-dns v0.21.0).
 */
export const CLOUDFLARE_PROXIED = 'external-dns.alpha.kubernetes.io/cloudflare-proxied';
/** Cloudflare's public resolver: the end-to-end verification resolves every host through it, as the internet does. */
export const PUBLIC_RESOLVER = '1.1.1.1';

const TOKEN_SECRET = 'cloudflare-api-token';
const TOKEN_KEY = 'api-token';

export const DEFAULT_EXTERNAL_DNS_RESOURCES = { requests: { cpu: '10m', memory: '64Mi' }, limits: { cpu: '200m', memory: '128Mi' } };

/** IPv6 unique-local (fc00::/7), link-local (fe80::/10) and loopback addresses: Cloudflare's proxy cannot reach an origin there (nor in NON_PUBLIC_IPV4). */
const NON_PUBLIC_IPV6 = /^(f[cd][0-9a-f]{0,2}:|fe[89ab][0-9a-f]?:|::1$)/i;

/** Whether Cloudflare's proxy, on the internet, cannot reach an address. */
function isNonPublicAddress(address: string): boolean {
  if (isIPv4(address)) return NON_PUBLIC_IPV4.some((range) => cidrsOverlap(`${address}/32`, range));
  return isIPv6Address(address) && NON_PUBLIC_IPV6.test(address);
}

const TARGET = 'an IPv4 or IPv6 address or a DNS hostname (e.g. "192.168.1.240" or "home.example.org")';

/** `services.externalDns`. */
export const externalDnsSettings = z
  .strictObject({
    enabled: bool.default(false),
    cloudflare: z
      .strictObject({
        /**
         * The ID of the Cloudflare zone holding the environment's domain (the zone's Overview page
         * in the dashboard): external-dns touches no other zone, so the API token needs no other.
         */
        zoneId: matching(/^[0-9a-f]{32}$/, "the zone's ID: 32 hexadecimal digits, on the zone's Overview page in the Cloudflare dashboard").optional(),
      })
      .prefault({}),
    /**
     * Where the records of the hosts not served through the tunnel point: the address clients
     * reach Traefik at — an IPv4 address (A), an IPv6 address (AAAA) or a hostname (CNAME).
     * @default services.traefik.loadBalancerIP
     */
    target: z
      .string({ error: `expected ${TARGET}` })
      .refine((value) => isIPv4(value) || isIPv6Address(value) || hostname.safeParse(value).success, { error: `expected ${TARGET}` })
      // An IPv6 address in its canonical form (RFC 5952), as Cloudflare stores it and resolvers print it.
      .transform((value) => (isIPv6Address(value) ? new URL(`http://[${value}]`).hostname.slice(1, -1) : value))
      .optional(),
    /** TTL in seconds of the records that are not proxied (proxied ones get Cloudflare's automatic TTL). */
    ttl: intBetween(60, 86400).default(300),
    /**
     * Whether the records of public (non-admin) hosts not served through the tunnel go through
     * Cloudflare's proxy. Admin hosts never do: their allow-list reads the client's address, which
     * the proxy replaces; tunnel hosts always do (a tunnel's CNAME works only proxied).
     */
    proxied: bool.default(false),
    resources: resourcesSchema.default(DEFAULT_EXTERNAL_DNS_RESOURCES),
  })
  .superRefine((settings, ctx) => {
    if (!settings.enabled) return;
    if (!settings.cloudflare.zoneId) {
      ctx.addIssue({ code: 'custom', path: ['cloudflare', 'zoneId'], message: "expected the ID of the Cloudflare zone holding the domain (32 hexadecimal digits, on the zone's Overview page)" });
    }
  })
  .prefault({});

export type ExternalDnsSettings = z.output<typeof externalDnsSettings>;

export type ExternalDnsProps = Omit<ExternalDnsSettings, 'enabled' | 'target'> & {
  /** Where the records of the hosts not served through the tunnel point. */
  readonly target: string;
  /** The router: every host it routes gets a record. */
  readonly router: Traefik;
  /** The tunnel publishing the public hosts, whose CNAME they get. @default no tunnel: every record points at `target` */
  readonly tunnel?: Cloudflared;
};

/** One DNS record, as derived from a routed host. */
export interface DnsRecord {
  readonly host: string;
  readonly type: 'A' | 'AAAA' | 'CNAME';
  readonly target: string;
  readonly proxied: boolean;
  /** Seconds; proxied records have Cloudflare's automatic TTL. */
  readonly ttl?: number;
}

/** What the records of a set of hosts are derived from. */
export interface RecordPolicy {
  /** Where records of hosts outside the tunnel point (address or hostname). */
  readonly target: string;
  readonly ttl: number;
  /** Whether public hosts outside the tunnel are proxied. */
  readonly proxied: boolean;
  /** The tunnel: which hosts it serves and the CNAME target they get. @default none */
  readonly tunnel?: { readonly target: string; serves(host: RoutedHost): boolean };
}

/** The record type a target needs: A for an IPv4 address, AAAA for IPv6, CNAME for a hostname. */
export function recordType(target: string): DnsRecord['type'] {
  return isIPv4(target) ? 'A' : isIPv6Address(target) ? 'AAAA' : 'CNAME';
}

/**
 * One record per routed host, sorted by host: the tunnel's CNAME (proxied) for the hosts the
 * tunnel serves; else the target, proxied only for public hosts when asked.
 */
export function dnsRecords(hosts: readonly RoutedHost[], policy: RecordPolicy): DnsRecord[] {
  return [...hosts]
    .sort((a, b) => byCodeUnits(a.host, b.host))
    .map((host) => {
      if (policy.tunnel?.serves(host)) return { host: host.host, type: 'CNAME', target: policy.tunnel.target, proxied: true };
      const proxied = policy.proxied && !host.admin;
      return { host: host.host, type: recordType(policy.target), target: policy.target, proxied, ...(proxied ? {} : { ttl: policy.ttl }) };
    });
}

export class ExternalDns extends HomelabService implements EdgePublisher {
  /** The TXT registry's owner: records of another environment (or anyone else) are never touched. */
  readonly ownerId: string;
  private readonly token: SecretRef;
  private readonly zoneId: string;
  private readonly domain: string;

  constructor(scope: Platform, private readonly props: ExternalDnsProps) {
    const zoneId = props.cloudflare.zoneId;
    if (zoneId === undefined) throw new Error('external-dns: needs the Cloudflare zone ID');
    // Ordered after the router and the tunnel (their hosts are its records) but a client of
    // neither: no props reference, so no NetworkPolicy allow rule towards them.
    super(scope, 'external-dns', {}, {
      layer: Layer.NETWORKING,
      namespace: EXTERNAL_DNS_NAMESPACE,
      // The chart's crds/ folder (DNSEndpoint), applied with the chart; our DNSEndpoints then skip
      // the dry run and sync after it.
      installsCrdGroups: ['externaldns.k8s.io'],
    });
    this.dependOn(props.router);
    if (props.tunnel) this.dependOn(props.tunnel);
    this.zoneId = zoneId;
    this.domain = scope.config.domain;
    this.ownerId = `homelab-${this.environment}`;
    this.token = this.needSecret(
      TOKEN_SECRET,
      [TOKEN_KEY],
      `Cloudflare API token with Zone:Zone:Read and Zone:DNS:Edit on zone ${zoneId} only, for external-dns and its checkpoint`,
    );
    this.installChart(helmRelease('externalDns', this.values()));
    this.requestCapacity('controller', 1, props.resources.requests);
    this.exposeMetrics({ name: 'controller', kind: 'service', selector: CONTROLLER_PODS, port: 'http', podPort: METRICS_PORT, podSelector: CONTROLLER_PODS });
    this.addAlerts(
      {
        alert: 'ExternalDnsSyncFailing',
        expr: `time() - max(external_dns_controller_last_sync_timestamp_seconds{${SERVICE_LABEL}="${this.serviceName}"}) > ${10 * 60 * SYNC_INTERVAL_MINUTES}`,
        for: '5m',
        severity: 'warning',
        summary: 'external-dns has not synced the DNS records with Cloudflare for 10 minutes: new or changed hosts do not resolve',
        description: 'Check the logs in namespace external-dns: the API token (Zone:Zone:Read, Zone:DNS:Edit on the zone), the zone ID, or outbound HTTPS to api.cloudflare.com.',
      },
      {
        alert: 'ExternalDnsErrors',
        expr: `sum(increase({__name__=~"external_dns_(registry|source)_errors_total", ${SERVICE_LABEL}="${this.serviceName}"}[15m])) > 0`,
        for: '15m',
        severity: 'warning',
        summary: 'external-dns keeps failing to read its DNSEndpoints or the records at Cloudflare',
      },
      {
        // external-dns v0.21.0 plan/metrics.go: set when a record to create is held by another owner.
        alert: 'ExternalDnsRecordNotOwned',
        expr: `max by (domain, record_type, foreign_owner) (external_dns_registry_skipped_records_owner_mismatch_per_sync{${SERVICE_LABEL}="${this.serviceName}"}) > 0`,
        for: '15m',
        severity: 'warning',
        summary: '{{ $labels.domain }} ({{ $labels.record_type }}) is held by a record this environment does not own (owner "{{ $labels.foreign_owner }}"): its derived record is not written',
        description: 'An empty owner is a record made by hand (or by `cloudflared tunnel route dns`): delete it in Cloudflare and external-dns writes its own. Another owner is another environment or cluster publishing the same host.',
      },
    );
    this.callApiServer(CONTROLLER_PODS, 'external-dns watches the DNSEndpoints in its namespace and writes their status');
    this.allowEgress(
      {
        name: 'cloudflare-api',
        podSelector: CONTROLLER_PODS,
        to: { kind: 'external', destinations: [INTERNET_HTTPS] },
        reason: `external-dns reads and writes the records of zone ${zoneId} through Cloudflare's API (api.cloudflare.com)`,
      },
      {
        name: 'checkpoint-cloudflare-api',
        podSelector: CHECKPOINT_PODS,
        to: { kind: 'external', destinations: [INTERNET_HTTPS] },
        reason: "the checkpoint reads the zone's records through Cloudflare's API",
      },
      {
        name: 'checkpoint-public-resolver',
        podSelector: CHECKPOINT_PODS,
        to: { kind: 'external', destinations: [{ to: [`${PUBLIC_RESOLVER}/32`], ports: [{ port: 53, protocol: 'UDP' }, { port: 53 }] }] },
        reason: `the end-to-end verification resolves every host through the public resolver ${PUBLIC_RESOLVER}`,
      },
    );
  }

  /** A proxied record resolves to Cloudflare's edge, not to the target. */
  publishesAtEdge(host: RoutedHost): boolean {
    return dnsRecords([host], this.recordPolicy)[0].proxied;
  }

  private get recordPolicy(): RecordPolicy {
    const tunnel = this.props.tunnel;
    return {
      target: this.props.target,
      ttl: this.props.ttl,
      proxied: this.props.proxied,
      tunnel: tunnel && { target: tunnel.dnsTarget, serves: (host) => tunnel.serves(host) },
    };
  }

  /**
   * One DNSEndpoint per routed host (named after its subdomain), the checkpoint that finds each
   * record at Cloudflare and the verification that resolves each host: called by the routing
   * pass with every host the router routes.
   */
  followRoutes(hosts: readonly RoutedHost[]): void {
    const records = dnsRecords(hosts, this.recordPolicy);
    for (const record of records) {
      const name = this.subdomainOf(record.host);
      new DnsEndpoint(this, `record-${name}`, {
        metadata: { name, labels: this.labelsFor('record') },
        spec: {
          endpoints: [
            {
              dnsName: record.host,
              recordType: record.type,
              targets: [record.target],
              recordTtl: record.ttl,
              providerSpecific: [{ name: CLOUDFLARE_PROXIED, value: String(record.proxied) }],
            },
          ],
        },
      });
    }
    const list = records.map((r) => `${r.host},${r.type},${r.target},${r.proxied}`).join(' ');
    new Checkpoint(this, 'checkpoint', {
      // No environment's name or count here: identical environments draw one diagram (docs/platform.md).
      description: "every routed host's record is at Cloudflare with its target, owned by this environment (TXT registry)",
      image: IMAGES.curl,
      // The rounds, with a last one asking every record and its TXT record at curl's limit, after
      // the pod started: the report comes first.
      scriptSeconds: eachUntilOkSeconds(RECORD_CHECK_SECONDS, records.length, 2 * CLOUDFLARE_CALL_MAX_SECONDS),
      env: { CLOUDFLARE_API, ZONE_ID: this.zoneId, OWNER: this.ownerId, RECORDS: list, CHECKS: String(RECORD_CHECKS), CHECK_SECONDS: String(RECORD_CHECK_SECONDS) },
      secretEnv: { CF_API_TOKEN: this.token.keySelector(TOKEN_KEY) },
      script: PROVIDER_CHECK,
    });
    this.addEndToEndCheck('e2e-hosts-resolve', {
      description: `every routed host resolves through the public resolver ${PUBLIC_RESOLVER}`,
      image: IMAGES.busybox,
      timeout: Duration.minutes(10),
      env: { RESOLVER: PUBLIC_RESOLVER, RECORDS: list, CHECKS: String(RECORD_CHECKS), CHECK_SECONDS: String(RECORD_CHECK_SECONDS) },
      script: RESOLVE_CHECK,
    });
  }

  /** `argocd` of `argocd.<domain>`: every routed host is a subdomain of the environment's domain. */
  private subdomainOf(host: string): string {
    const suffix = `.${this.domain}`;
    if (!host.endsWith(suffix)) throw new Error(`external-dns: ${host} is not in the domain ${this.domain}`);
    return host.slice(0, -suffix.length);
  }

  private values(): ExternalDnsValues {
    return {
      provider: { name: 'cloudflare' },
      env: [this.token.envVar('CF_API_TOKEN', TOKEN_KEY)],
      // Only our DNSEndpoints, only in this namespace: a Role instead of a ClusterRole, and no
      // annotation on any upstream Service or Ingress makes a record.
      sources: ['crd'],
      namespaced: true,
      // Records of removed hosts are deleted too — only those the TXT registry says are ours.
      policy: 'sync',
      registry: 'txt',
      txtOwnerId: this.ownerId,
      // Records only under the environment's domain, in the one zone the token may edit.
      domainFilters: [this.domain],
      extraArgs: { 'zone-id-filter': this.zoneId },
      interval: `${SYNC_INTERVAL_MINUTES}m`,
      // A new or changed DNSEndpoint is synced at once, not at the next interval.
      triggerLoopOnEvent: true,
      resources: this.props.resources,
      // Our own ServiceMonitor scrapes the chart's Service (lib/passes/monitoring.ts).
      serviceMonitor: { enabled: false },
      // The chart's defaults keep: non-root (uid 65532), read-only root filesystem, all
      // capabilities dropped, no privilege escalation, seccomp RuntimeDefault.
    };
  }
}

/** curl's limit for one answer of Cloudflare's API. */
const CLOUDFLARE_CALL_MAX_SECONDS = 10;

/**
 * The checkpoint: every record of `$RECORDS` (`host,type,target,proxied` each) is at Cloudflare
 * with its target and proxy setting, and its TXT registry record (`<type>-<host>`, the type —
 * A, AAAA or CNAME, dnsRecords' — in lower case; external-dns v0.21.0 registry/txt) names this
 * environment's owner. Each is retried for 5 minutes: external-dns syncs a new DNSEndpoint
 * within seconds, a missed event at the next interval.
 */
export const PROVIDER_CHECK = String.raw`# The zone's records matching query $1, without whitespace; fails only when the API
# cannot be reached (an error answer, such as a refused token, says so in its JSON).
cf_get() {
  body=$(curl -sS --max-time ${CLOUDFLARE_CALL_MAX_SECONDS} -H "Authorization: Bearer $CF_API_TOKEN" "$CLOUDFLARE_API/zones/$ZONE_ID/dns_records?$1") || return 1
  printf '%s' "$body" | tr -d ' \n'
}
# Prints "ok", or what is missing of record $1 ($2 to $3, proxied $4).
record_state() {
  if ! answer=$(cf_get "type=$2&name=$1"); then echo "no answer from the Cloudflare API (egress to api.cloudflare.com)"; return; fi
  case "$answer" in *'"success":true'*) ;; *) echo "the Cloudflare API refused: $answer"; return ;; esac
  case "$answer" in *"\"content\":\"$3\""*) ;; *) echo "no $2 record $1 -> $3"; return ;; esac
  case "$answer" in *"\"proxied\":$4"*) ;; *) echo "the $2 record $1 is not proxied=$4"; return ;; esac
  case $2 in A) txt=a-$1 ;; AAAA) txt=aaaa-$1 ;; *) txt=cname-$1 ;; esac
  if ! owner=$(cf_get "type=TXT&name=$txt"); then echo "no answer from the Cloudflare API for the TXT record $txt"; return; fi
  case "$owner" in
    *"external-dns/owner=$OWNER,"*|*"external-dns/owner=$OWNER\\\""*) echo ok ;;
    *) echo "the TXT record $txt does not name the owner $OWNER: external-dns does not own $1 (a record made by hand? delete it, external-dns then creates its own)" ;;
  esac
}
${eachRecordUntilOk({
  check: 'record_state',
  passed: 'echo "$host: $type $target (proxied=$proxied), owned by $OWNER"',
  report: '$host: $result',
  summary: '$failed record(s) not at Cloudflare',
})}`;

/**
 * The end-to-end check: every host of `$RECORDS` resolves through `$RESOLVER` (busybox
 * nslookup) — to its target where the record is not proxied (the address, or the CNAME's
 * canonical name), to any address where it is (Cloudflare answers with its proxy's addresses).
 */
export const RESOLVE_CHECK = String.raw`nl='
'
# Prints "ok", or how host $1 resolved when it should reach $3 ($2, proxied $4).
resolution() {
  answer=$(nslookup "$1" "$RESOLVER" 2>&1 | tr -s ' \t' '  ' | sed -n '/^Name:/,$p; /canonical name/p')
  # Its lines between newlines: a pattern can match a line's start, or a whole line.
  lines=$nl$answer$nl
  if [ "$4" = true ]; then
    case $lines in *"${'$'}{nl}Address: "*) echo ok ;; *) echo "no address through Cloudflare's proxy" ;; esac
  elif [ "$2" = CNAME ]; then
    case $answer in *"canonical name = $3"*) echo ok ;; *) echo "no CNAME to $3" ;; esac
  else
    case $lines in *"${'$'}{nl}Address: $3$nl"*) echo ok ;; *) echo "not the address $3" ;; esac
  fi
}
${eachRecordUntilOk({
  check: 'resolution',
  passed: 'echo "$host resolves through $RESOLVER"',
  report: '$host: $result (resolver $RESOLVER)',
  summary: '$failed host(s) do not resolve',
})}`;

/** How many rounds each record is asked for, 10 s apart, and for how long at most: five minutes for external-dns to write it, or for it to propagate (the provider check's Job outlasts its last round; the resolve check's keeps ten minutes: busybox's nslookup gives a server 5 s by default, so it fits up to 34 records). */
const RECORD_CHECKS = 30;
const RECORD_CHECK_SECONDS = 300;

/**
 * Shell: asks the function `check` about every `host,type,target,proxied` of `$RECORDS` in rounds
 * until each prints `ok` (eachUntilOk, `$CHECKS` rounds and `$CHECK_SECONDS`). A record is split
 * at its commas by the shell itself (IFS), not by a process per record and round.
 */
function eachRecordUntilOk(o: { readonly check: string; readonly passed: string; readonly report: string; readonly summary: string }): string {
  return eachUntilOk({
    items: 'RECORDS',
    split: 'IFS=,; set -- $item; unset IFS\n    host=$1; type=$2; target=$3; proxied=$4',
    ask: `result=$(${o.check} "$host" "$type" "$target" "$proxied")`,
    passed: o.passed,
    report: o.report,
    summary: o.summary,
    rounds: 'CHECKS',
    seconds: 'CHECK_SECONDS',
  });
}

export const externalDnsEntry = defineService({
  name: 'external-dns',
  settings: { key: 'externalDns', schema: externalDnsSettings },
  names: [EXTERNAL_DNS_NAMESPACE],
  requires: () => [{ entry: traefikEntry, path: ['enabled'], reason: 'the records are those of the hosts Traefik routes' }],
  check: (settings, env) => {
    const target = settings.target ?? env.settingsOf(traefikEntry).loadBalancerIP;
    if (target === undefined) return [{ path: ['target'], message: `expected ${TARGET} where clients reach Traefik (or services.traefik.loadBalancerIP)` }];
    return settings.proxied && isNonPublicAddress(target)
      ? [{ path: ['proxied'], message: `expected false with the private target ${target}: Cloudflare's proxy connects to the target from the internet and cannot reach a private address` }]
      : [];
  },
  upstreamTargets: { 'external-dns-controller': { selector: CONTROLLER_PODS, port: 'http', source: METRICS_SOURCE } },
  build: (platform, settings, context) => {
    const target = settings.target ?? settingsIn(platform.config, traefikEntry).loadBalancerIP;
    if (target === undefined) throw new Error('external-dns: its check requires a target');
    return new ExternalDns(platform, { ...settings, target, router: context.required(traefikEntry), tunnel: context.optional(cloudflaredEntry) });
  },
});
