/**
 * The security layer's proof that NetworkPolicies are enforced (the policies themselves are
 * derived for every service by lib/passes/network-policies.ts). Its namespace is one no allow rule
 * names; its checkpoint tries to reach Argo CD's API server, which always runs, and must be
 * refused. A cluster without a policy controller (k3s started with --disable-network-policy,
 * or a CNI that ignores policies) lets the connection through, and the checkpoint fails.
 */
import { Duration } from 'cdk8s';
import { z } from '../lib/model/config/zod';
import { ARGOCD_NAMESPACE } from '../lib/model/argocd';
import { defineService } from '../lib/model/catalog';
import { Checkpoint } from '../lib/model/checkpoint';
import { bool, ipv4Cidr } from '../lib/model/config/primitives';
import type { NetworkPolicyProvider } from '../lib/model/network';
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
  })
  .prefault({});

export type NetworkPoliciesSettings = z.output<typeof networkPoliciesSettings>;

export type NetworkPoliciesProps = Omit<NetworkPoliciesSettings, 'enabled'>;

export const NETWORK_POLICY_CHECK_NAMESPACE = 'netpol-check';

/** Connection attempts (ten seconds apart) while a just-synced policy may still be being programmed. */
const ATTEMPTS = 12;
const CONNECT_TIMEOUT_SECONDS = 5;

/**
 * With this service the platform derives NetworkPolicies for every namespace (it is their
 * NetworkPolicyProvider); its own namespace is one no allow rule names, from which its
 * checkpoint proves them enforced.
 */
export class NetworkPolicyCheck extends HomelabService implements NetworkPolicyProvider {
  readonly apiServerSources: readonly string[];

  /**
   * @param argocd the protected service: ordered after it, but not a prop, since a reference
   *   would be a declared connection and earn the probe an allow rule.
   */
  constructor(scope: Platform, props: NetworkPoliciesProps, argocd: ArgoCd) {
    super(scope, 'network-policies', props, { layer: Layer.SECURITY, namespace: NETWORK_POLICY_CHECK_NAMESPACE });
    this.apiServerSources = props.apiServerSources;
    this.dependOn(argocd);
    const host = `${ARGOCD_SERVER.serviceName}.${ARGOCD_NAMESPACE}.svc`;
    new Checkpoint(this, 'checkpoint', {
      description: `a pod no allow rule names cannot connect to ${host}, which is up: NetworkPolicies are enforced`,
      image: IMAGES.curl,
      timeout: Duration.minutes(5),
      readsCluster: [{ apiGroups: [''], resources: ['endpoints'], verbs: ['get'], resourceNames: [ARGOCD_SERVER.serviceName] }],
      env: {
        ENDPOINTS_PATH: `/api/v1/namespaces/${ARGOCD_NAMESPACE}/endpoints/${ARGOCD_SERVER.serviceName}`,
        TARGET_URL: `http://${host}:${ARGOCD_SERVER.servicePort}/healthz`,
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
 * connection that was then closed) means the connection got through.
 */
const PROBE_SCRIPT = String.raw`endpoints=$(kube_get "$ENDPOINTS_PATH" | tr -d ' \n')
case "$endpoints" in
  *'"addresses":[{'*) echo "the target has ready endpoints" ;;
  *) echo "the target has no ready endpoint: a refused connection would prove nothing" >&2; exit 1 ;;
esac
attempt=1
while :; do
  code=0
  curl -sS -o /dev/null --connect-timeout "$CONNECT_TIMEOUT_SECONDS" --max-time $((CONNECT_TIMEOUT_SECONDS * 2)) "$TARGET_URL" || code=$?
  case "$code" in
    7|28) echo "$TARGET_URL refused this pod (curl exit $code): NetworkPolicies are enforced"; exit 0 ;;
    6) problem="the target's name did not resolve (curl exit 6): the check is inconclusive" ;;
    *) problem="the connection to $TARGET_URL got through (curl exit $code): NetworkPolicies are not enforced (k3s --disable-network-policy, or a CNI without policy support?)" ;;
  esac
  if [ "$attempt" -ge "$ATTEMPTS" ]; then echo "$problem" >&2; exit 1; fi
  echo "$problem; trying again"
  attempt=$((attempt + 1))
  sleep 10
done`;

export const networkPoliciesEntry = defineService({
  name: 'network-policies',
  settings: { key: 'networkPolicies', schema: networkPoliciesSettings },
  names: ['network-policies', NETWORK_POLICY_CHECK_NAMESPACE],
  build: (platform, settings, context) => new NetworkPolicyCheck(platform, settings, context.required(argoCdEntry)),
});
