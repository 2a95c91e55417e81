/**
 * The security layer's proof that NetworkPolicies are enforced (the policies themselves are
 * derived for every service by lib/passes/network-policies.ts). Its namespace is one no allow rule
 * names; its checkpoint tries to reach Argo CD's API server, which always runs, and must be
 * refused (ingress). Where egress is restricted it then connects to the cluster DNS's metrics
 * port, which no policy guards on the receiving side and this namespace's egress rules leave
 * out, and must be refused too (egress). A cluster without a policy controller (k3s started
 * with --disable-network-policy, or a CNI that ignores policies) lets the connections through,
 * and the checkpoint fails.
 */
import { z } from '../lib/model/config/zod';
import { ARGOCD_NAMESPACE } from '../lib/model/argocd';
import { defineService } from '../lib/model/catalog';
import { Checkpoint, KUBE_CALL_MAX_SECONDS, retrySeconds } from '../lib/model/checkpoint';
import { bool, intBetween, ipv4Cidr } from '../lib/model/config/primitives';
import { CLUSTER_DNS, EgressSettings, NetworkPolicyProvider } from '../lib/model/network';
import { Layer } from '../lib/model/layers';
import { Platform } from '../lib/model/platform';
import { HomelabService } from '../lib/model/service';
import { IMAGES } from './versions';
import { ARGOCD_SERVER, ArgoCd, argoCdEntry } from './argocd';

/**
 * `services.networkPolicies`: NetworkPolicies derived from the service graph (lib/passes/
 * network-policies.ts) and the service whose checkpoint proves them enforced.
 */
export const networkPoliciesSettings = z
  .strictObject({
    enabled: bool.default(true),
    /**
     * Where the API server's calls to admission and conversion webhooks come from. k3s runs the
     * API server in its own process on the server nodes' host network, so the calls come from
     * those nodes' addresses, which the config does not know: narrow this to them (`/32` each).
     */
    apiServerSources: z.array(ipv4Cidr).min(1, { error: 'expected at least one CIDR block' }).default(['0.0.0.0/0']),
    /** Egress restrictions (docs/adr/0024): every namespace denies all egress but what is derived. */
    egress: z
      .strictObject({
        enabled: bool.default(true),
        /**
         * The port the API server listens on at the `apiServerSources`: pods connect to the
         * Service kubernetes.default:443, which is DNATed to it (k3s `--https-listen-port`, default 6443).
         */
        apiServerPort: intBetween(1, 65535).default(6443),
        /**
         * The nodes' addresses, where Prometheus scrapes the kubelets and node-exporter (host
         * network). The config does not know them: narrow this to the nodes' subnet.
         */
        nodeNetworks: z.array(ipv4Cidr).min(1, { error: 'expected at least one CIDR block' }).default(['0.0.0.0/0']),
        /** Private ranges that count as part of `internet` for every service allowed it (a NAS, S3 or SMTP server on the LAN). */
        privateNetworks: z.array(ipv4Cidr).default([]),
      })
      .prefault({}),
  })
  .prefault({});

export type NetworkPoliciesSettings = z.output<typeof networkPoliciesSettings>;

export type NetworkPoliciesProps = Omit<NetworkPoliciesSettings, 'enabled'>;

/**
 * The egress probe's target: CoreDNS's metrics port, on the kube-dns Service (k3s-io/k3s
 * manifests/coredns.yaml: port `metrics` 9153). kube-system gets no policy from us, so only the
 * probe's own egress rules (DNS on 53) can refuse it; the name resolving proves DNS is allowed.
 */
const EGRESS_TARGET = { serviceName: 'kube-dns', port: 9153 } as const;

export const NETWORK_POLICY_CHECK_NAMESPACE = 'netpol-check';

/** Connection attempts (ten seconds apart) while a just-synced policy may still be being programmed. */
const ATTEMPTS = 12;
const ATTEMPT_PAUSE_SECONDS = 10;
const CONNECT_TIMEOUT_SECONDS = 5;

/**
 * With this service the platform derives NetworkPolicies for every namespace (it is their
 * NetworkPolicyProvider); its own namespace is one no allow rule names, from which its
 * checkpoint proves them enforced.
 */
export class NetworkPolicyCheck extends HomelabService implements NetworkPolicyProvider {
  readonly apiServerSources: readonly string[];
  readonly egressRestriction?: EgressSettings;

  /**
   * @param argocd the protected service: ordered after it, but not a prop, since a reference
   *   would be a declared connection and earn the probe an allow rule.
   */
  constructor(scope: Platform, props: NetworkPoliciesProps, argocd: ArgoCd) {
    super(scope, 'network-policies', props, { layer: Layer.SECURITY, namespace: NETWORK_POLICY_CHECK_NAMESPACE });
    this.apiServerSources = props.apiServerSources;
    const { enabled: egressEnabled, ...egress } = props.egress;
    this.egressRestriction = egressEnabled ? egress : undefined;
    this.dependOn(argocd);
    const host = `${ARGOCD_SERVER.serviceName}.${ARGOCD_NAMESPACE}.svc`;
    const egressHost = `${EGRESS_TARGET.serviceName}.${CLUSTER_DNS.namespace}.svc`;
    if (egressEnabled) {
      // The probe's own way to Argo CD's server is open, so only Argo CD's ingress policy refuses it.
      this.allowEgress({
        name: 'probe-argocd-server',
        podSelector: {},
        to: { kind: 'pods', peer: { namespace: ARGOCD_NAMESPACE, podSelector: ARGOCD_SERVER.podSelector }, ports: [{ port: ARGOCD_SERVER.podPort }] },
        reason: `the probe's connection to ${host} is refused by Argo CD's ingress policy, not by its own egress`,
      });
    }
    const targets = egressEnabled ? [ARGOCD_SERVER.serviceName, EGRESS_TARGET.serviceName] : [ARGOCD_SERVER.serviceName];
    new Checkpoint(this, 'checkpoint', {
      description: egressEnabled
        ? `a pod no allow rule names cannot connect to ${host}, and cannot leave its namespace for ${egressHost}:${EGRESS_TARGET.port}, both up: NetworkPolicies are enforced both ways`
        : `a pod no allow rule names cannot connect to ${host}, which is up: NetworkPolicies are enforced`,
      image: IMAGES.curl,
      // Per direction: the endpoints' read, then every attempt at curl's limit (twice the connect
      // timeout) and the pause; after the pod's start.
      scriptSeconds: targets.length * (KUBE_CALL_MAX_SECONDS + retrySeconds(ATTEMPTS, 2 * CONNECT_TIMEOUT_SECONDS, ATTEMPT_PAUSE_SECONDS)),
      readsCluster: [{ apiGroups: [''], resources: ['endpoints'], verbs: ['get'], resourceNames: targets }],
      env: {
        ENDPOINTS_PATH: `/api/v1/namespaces/${ARGOCD_NAMESPACE}/endpoints/${ARGOCD_SERVER.serviceName}`,
        TARGET_URL: `http://${host}:${ARGOCD_SERVER.servicePort}/healthz`,
        ...(egressEnabled && {
          EGRESS_ENDPOINTS_PATH: `/api/v1/namespaces/${CLUSTER_DNS.namespace}/endpoints/${EGRESS_TARGET.serviceName}`,
          EGRESS_TARGET_URL: `http://${egressHost}:${EGRESS_TARGET.port}/metrics`,
        }),
        ATTEMPTS: String(ATTEMPTS),
        CONNECT_TIMEOUT_SECONDS: String(CONNECT_TIMEOUT_SECONDS),
      },
      script: PROBE_SCRIPT,
    });
  }
}

/**
 * A refusal only means something when the target is up and its name resolves: the ready
 * endpoints come from the API server (which this pod reaches, so its own network works), and
 * curl's exit code tells a name that did not resolve (6) from a connection refused (7) or
 * dropped until the timeout (28). Any other outcome (0, an HTTP answer; 52 or 56, a TCP
 * connection that was then closed) means the connection got through. The ingress target is
 * checked first; the egress one (where set) after it, from the same pod.
 */
const PROBE_SCRIPT = String.raw`must_be_refused() {
  direction=$1 endpoints_path=$2 url=$3
  endpoints=$(kube_get "$endpoints_path")
  case "$endpoints" in
    *'"addresses":[{'*) echo "$direction: the target has ready endpoints" ;;
    *) echo "$direction: the target has no ready endpoint: a refused connection would prove nothing" >&2; return 1 ;;
  esac
  attempt=1
  while :; do
    code=0
    curl -sS -o /dev/null --connect-timeout "$CONNECT_TIMEOUT_SECONDS" --max-time $((CONNECT_TIMEOUT_SECONDS * 2)) "$url" || code=$?
    case "$code" in
      7|28) echo "$direction: $url refused this pod (curl exit $code): NetworkPolicies are enforced"; return 0 ;;
      6) problem="$direction: the target's name did not resolve (curl exit 6): the check is inconclusive" ;;
      *) problem="$direction: the connection to $url got through (curl exit $code): NetworkPolicies are not enforced (k3s --disable-network-policy, or a CNI without policy support?)" ;;
    esac
    if [ "$attempt" -ge "${'$'}{ATTEMPTS:?unset (the Job sets it)}" ]; then echo "$problem" >&2; return 1; fi
    echo "$problem; trying again"
    attempt=$((attempt + 1))
    sleep ${ATTEMPT_PAUSE_SECONDS}
  done
}
must_be_refused ingress "$ENDPOINTS_PATH" "$TARGET_URL"
if [ -n "$EGRESS_TARGET_URL" ]; then must_be_refused egress "$EGRESS_ENDPOINTS_PATH" "$EGRESS_TARGET_URL"; fi`;

export const networkPoliciesEntry = defineService({
  name: 'network-policies',
  settings: { key: 'networkPolicies', schema: networkPoliciesSettings },
  names: ['network-policies', NETWORK_POLICY_CHECK_NAMESPACE],
  build: (platform, settings, context) => new NetworkPolicyCheck(platform, settings, context.required(argoCdEntry)),
});
