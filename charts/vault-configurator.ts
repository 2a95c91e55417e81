/**
 * Vault configuration as code: a PostSync Job of the vault Application, after its checkpoint,
 * that makes Vault match the declarations — the KV v2 engine at VAULT_KV_MOUNT, the Kubernetes
 * auth method, and for every service that reads secrets one read-only policy on its own path
 * and one role bound to its ServiceAccount; managed roles and policies no longer declared are
 * removed. Idempotent: it runs on every sync. What it writes comes from a ConfigMap generated
 * from the services' `needSecret` declarations. Its Vault token is in a Secret the operator
 * creates once (README runbook); nothing in Git can act on Vault.
 */
import { k8s } from 'cdk8s-plus-34';
import { Construct } from 'constructs';
import { CHECK_START_SECONDS, POST_SYNC_HOOK } from '../lib/model/checkpoint';
import { restrictedContainerContext, restrictedPodContext } from '../lib/model/pod-security';
import { resources, toResourceRequirements } from '../lib/model/resources';
import type { SecretNeed } from '../lib/model/secrets';
import { HomelabService } from '../lib/model/service';
import { IMAGES } from './versions';
import { byCodeUnits } from '../lib/util/text-order';

export const CONFIGURATOR_NAME = 'vault-configurator';
/** Secret (in the vault namespace) the operator creates with the configurator's token under this key. */
export const CONFIGURATOR_TOKEN_SECRET = { name: CONFIGURATOR_NAME, key: 'token' } as const;
/** ConfigMap keys: the roles table and the policy the operator gives the configurator's token. */
export const ROLES_KEY = 'roles';
/** ConfigMap key: one line per generated need, `<path under the mount> <key>...`. */
const GENERATED_KEY = 'generated';
export const CONFIGURATOR_POLICY_KEY = 'configurator-policy.hcl';
/** Vault's Kubernetes auth mount and the audience External Secrets requests tokens for. */
export const KUBERNETES_AUTH_MOUNT = 'kubernetes';
export const VAULT_AUDIENCE = 'vault';

/**
 * How a Job logs in to Vault as its own role (Kubernetes auth) with a short-lived token for
 * Vault's audience only, projected into its pod: the variables its script reads, the token's
 * volume and mount, and the script's first line (VAULT_LOGIN_SCRIPT). Used by the Jobs that
 * configure or read part of Vault (snapshots, the OIDC login).
 */
const LOGIN_TOKEN_DIR = '/var/run/secrets/vault';
export function vaultLoginEnv(address: string, role: string): k8s.EnvVar[] {
  return [
    { name: 'VAULT_ADDR', value: address },
    { name: 'AUTH_MOUNT', value: KUBERNETES_AUTH_MOUNT },
    { name: 'ROLE', value: role },
    { name: 'TOKEN_FILE', value: `${LOGIN_TOKEN_DIR}/token` },
  ];
}
export const VAULT_LOGIN_TOKEN_MOUNT: k8s.VolumeMount = { name: 'token', mountPath: LOGIN_TOKEN_DIR, readOnly: true };
export const VAULT_LOGIN_TOKEN_VOLUME: k8s.Volume = {
  name: 'token',
  projected: { sources: [{ serviceAccountToken: { audience: VAULT_AUDIENCE, expirationSeconds: 600, path: 'token' } }] },
};
/**
 * The Vault CLI's limit for one request (VAULT_CLIENT_TIMEOUT; its default is 60 s, retries
 * included) for the scripts that make many small ones, the configurator and the OIDC login step:
 * a Vault that accepts connections but does not answer fails the call, and the script says so,
 * instead of holding the Job until its deadline. Not for a raft snapshot, whose one request
 * streams the whole store.
 */
export const VAULT_CALL_MAX_SECONDS = 10;
export const VAULT_CLIENT_TIMEOUT: k8s.EnvVar = { name: 'VAULT_CLIENT_TIMEOUT', value: `${VAULT_CALL_MAX_SECONDS}s` };

/** Logs in with the projected token and exports VAULT_TOKEN for the rest of the script. */
export const VAULT_LOGIN_SCRIPT = String.raw`VAULT_TOKEN=$(vault write -field=token "auth/$AUTH_MOUNT/login" role="$ROLE" jwt=@"$TOKEN_FILE")
export VAULT_TOKEN`;

/** KV v2 secrets engine holding every service's secrets: `<mount>/<service>/<secret>`. */
export const VAULT_KV_MOUNT = 'homelab';

/**
 * Prefix of the Vault roles and policies the configurator Job manages (one of each per
 * consuming service): the Job removes those with this prefix that are no longer declared.
 */
export const MANAGED_VAULT_PREFIX = 'homelab-';

/** Path of a need's values in the KV engine (without the mount): `<service>/<secret>`. */
export function vaultPath(need: Pick<SecretNeed, 'service' | 'name'>): string {
  return `${need.service}/${need.name}`;
}

/** How one consuming service reads its own secrets: its Kubernetes identity and its Vault role and policy. */
export interface VaultAccess {
  readonly service: string;
  readonly namespace: string;
  /** ServiceAccount External Secrets logs in to Vault as (Kubernetes auth). */
  readonly serviceAccount: string;
  /** Vault role bound to that ServiceAccount, and policy (same name) granting read on `policyPaths`. */
  readonly role: string;
  /**
   * `<mount>/data/<service>/*`, the service's own subtree of the KV engine, then the exact paths
   * of other services' values its templated Secrets are rendered from (SecretNeed.template); read-only.
   */
  readonly policyPaths: readonly string[];
  /** Rules beyond reading `policyPaths` (a Job that configures part of Vault). @default none */
  readonly policyRules?: readonly VaultPolicyRule[];
}

/** One path of a Vault ACL policy and what it allows there. */
export interface VaultPolicyRule {
  readonly path: string;
  readonly capabilities: readonly string[];
}

/** @param service the consuming service: its name, namespace and the template inputs of its Secrets */
export function vaultAccess(service: Pick<HomelabService, 'serviceName' | 'namespaceName' | 'secretNeeds'>): VaultAccess {
  const name = service.serviceName;
  const inputs = service.secretNeeds
    .flatMap((need) => need.template?.inputs ?? [])
    .filter((input) => input.from.service !== name)
    .map((input) => kvDataPath(input.from));
  return {
    service: name,
    namespace: service.namespaceName,
    serviceAccount: `${name}-secrets`,
    role: `${MANAGED_VAULT_PREFIX}${name}`,
    policyPaths: [`${VAULT_KV_MOUNT}/data/${name}/*`, ...[...new Set(inputs)].sort()],
  };
}

/** The API path of a need's values in the KV v2 engine. */
function kvDataPath(need: Pick<SecretNeed, 'service' | 'name'>): string {
  return `${VAULT_KV_MOUNT}/data/${vaultPath(need)}`;
}

/** The image's `vault` user and group. */
export const VAULT_UID = 100;
export const VAULT_GID = 1000;
const CONFIG_DIR = '/config';

export interface VaultConfiguratorProps {
  /** Vault's in-cluster address. */
  readonly address: string;
  /** One entry per service that reads secrets. */
  readonly access: readonly VaultAccess[];
  /** A value the configurator writes so External Secrets can prove delivery (path under the mount). @default none */
  readonly probe?: { readonly path: string; readonly key: string };
  /** Needs whose random values the configurator writes where none are stored yet (SecretNeed.generated). @default none */
  readonly generated?: readonly SecretNeed[];
}

export class VaultConfigurator extends Construct {
  constructor(scope: HomelabService, id: string, props: VaultConfiguratorProps) {
    super(scope, id);
    const service = HomelabService.of(this);
    const labels = service.labelsFor('configurator');
    const access = [...props.access].sort((a, b) => byCodeUnits(a.role, b.role));
    const generated = [...(props.generated ?? [])].sort((a, b) => byCodeUnits(vaultPath(a), vaultPath(b)));
    // The ConfigMap's data: the roles table, what to generate, and one policy per role.
    const data = {
      [ROLES_KEY]: access.map((a) => `${a.role} ${a.serviceAccount} ${a.namespace}\n`).join(''),
      [GENERATED_KEY]: generated.map((need) => `${vaultPath(need)} ${need.keys.join(' ')}\n`).join(''),
      [CONFIGURATOR_POLICY_KEY]: configuratorPolicy(props.probe, generated),
      ...Object.fromEntries(access.map((a) => [`${a.role}.hcl`, [...a.policyPaths.map((path) => policyRule(path, ['read'])), ...(a.policyRules ?? []).map((rule) => policyRule(rule.path, rule.capabilities))].join('\n')])),
    };
    new k8s.KubeConfigMap(this, 'config', { metadata: { name: CONFIGURATOR_NAME, labels }, data });
    new k8s.KubeJob(this, 'job', {
      metadata: {
        name: CONFIGURATOR_NAME,
        labels,
        // After the checkpoint (wave 0 of the PostSync hooks) has seen Vault unsealed.
        annotations: { ...POST_SYNC_HOOK, 'argocd.argoproj.io/sync-wave': '1' },
      },
      spec: {
        backoffLimit: 2,
        // Every Vault request at its limit, after the pod's start: the script's nine fixed ones, a
        // policy and a role per access, as many deletions again (a config that replaced them
        // all; more stale ones than declared ones can outlast it), and for each `vault kv` command
        // two (the CLI first asks for the mount's version): a check and a write per generated
        // value, and for the probe.
        activeDeadlineSeconds: CHECK_START_SECONDS + (9 + 4 * access.length + 4 * generated.length + 4) * VAULT_CALL_MAX_SECONDS,
        template: {
          metadata: { labels: service.jobPodLabelsFor(CONFIGURATOR_NAME, 'configurator') },
          spec: {
            restartPolicy: 'Never',
            automountServiceAccountToken: false,
            securityContext: restrictedPodContext(VAULT_UID, { group: VAULT_GID }),
            containers: [
              {
                name: 'configurator',
                image: IMAGES.vault,
                command: ['sh', '-ec', CONFIGURATOR_SCRIPT],
                env: [
                  { name: 'VAULT_ADDR', value: props.address },
                  VAULT_CLIENT_TIMEOUT,
                  { name: 'KV_MOUNT', value: VAULT_KV_MOUNT },
                  { name: 'AUTH_MOUNT', value: KUBERNETES_AUTH_MOUNT },
                  { name: 'AUDIENCE', value: VAULT_AUDIENCE },
                  { name: 'MANAGED_PREFIX', value: MANAGED_VAULT_PREFIX },
                  { name: 'PROBE_PATH', value: props.probe?.path ?? '' },
                  { name: 'PROBE_KEY', value: props.probe?.key ?? '' },
                  { name: 'CONFIG_DIR', value: CONFIG_DIR },
                  { name: 'HOME', value: '/tmp' },
                  // Optional: a missing Secret is reported by the script, not as a pod stuck in CreateContainerConfigError.
                  { name: 'VAULT_TOKEN', valueFrom: { secretKeyRef: { ...CONFIGURATOR_TOKEN_SECRET, optional: true } } },
                ],
                resources: toResourceRequirements(resources('10m', '32Mi', '200m', '128Mi')),
                securityContext: restrictedContainerContext(),
                volumeMounts: [
                  { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
                  { name: 'tmp', mountPath: '/tmp' },
                ],
              },
            ],
            volumes: [
              { name: 'config', configMap: { name: CONFIGURATOR_NAME } },
              { name: 'tmp', emptyDir: {} },
            ],
          },
        },
      },
    });
  }
}

/** One HCL policy rule. */
export function policyRule(path: string, capabilities: readonly string[]): string {
  return `path "${path}" {\n  capabilities = [${capabilities.map((c) => `"${c}"`).join(', ')}]\n}\n`;
}

/**
 * What the configurator's token may do: exactly the steps of CONFIGURATOR_SCRIPT. Generated
 * values it may create and see the metadata of (whether they exist), never read.
 */
function configuratorPolicy(probe: { readonly path: string } | undefined, generated: readonly SecretNeed[]): string {
  return [
    '# Policy of the token in Secret vault/vault-configurator (README "Vault: one-time setup").',
    policyRule('sys/mounts', ['read']),
    policyRule(`sys/mounts/${VAULT_KV_MOUNT}`, ['create', 'read', 'update', 'sudo']),
    policyRule('sys/auth', ['read', 'sudo']),
    policyRule(`sys/auth/${KUBERNETES_AUTH_MOUNT}`, ['create', 'read', 'update', 'sudo']),
    policyRule(`auth/${KUBERNETES_AUTH_MOUNT}/config`, ['create', 'read', 'update']),
    policyRule(`auth/${KUBERNETES_AUTH_MOUNT}/role`, ['list']),
    policyRule(`auth/${KUBERNETES_AUTH_MOUNT}/role/${MANAGED_VAULT_PREFIX}*`, ['create', 'read', 'update', 'delete']),
    policyRule('sys/policy', ['read']),
    policyRule('sys/policies/acl', ['list']),
    policyRule(`sys/policies/acl/${MANAGED_VAULT_PREFIX}*`, ['create', 'read', 'update', 'delete']),
    ...(probe ? [policyRule(`${VAULT_KV_MOUNT}/data/${probe.path}`, ['create', 'read', 'update'])] : []),
    ...generated.flatMap((need) => [policyRule(kvDataPath(need), ['create']), policyRule(`${VAULT_KV_MOUNT}/metadata/${vaultPath(need)}`, ['read'])]),
  ].join('\n');
}

/** Runs with `sh -ec` in the vault image (busybox + the vault CLI); every step is idempotent. */
export const CONFIGURATOR_SCRIPT = String.raw`runbook='README "Vault: one-time setup"'
if [ -z "$VAULT_TOKEN" ]; then
  echo "no Vault token: create the Secret vault-configurator (key token) in namespace vault once, see $runbook" >&2
  exit 1
fi
if ! vault token lookup > /dev/null; then
  echo "the token in Secret vault-configurator is not valid (expired or revoked?): create a new one, see $runbook" >&2
  exit 1
fi
# A periodic token lives as long as it is renewed.
vault token renew > /dev/null 2>&1 || true

# A list that fails is said so, not taken for a missing engine (enabling it again would fail as "path already in use").
mounts=$(vault secrets list) || { echo "cannot list Vault's secrets engines" >&2; exit 1; }
if printf '%s\n' "$mounts" | grep -q "^$KV_MOUNT/ "; then
  echo "KV engine at $KV_MOUNT/: present"
else
  vault secrets enable -path="$KV_MOUNT" -version=2 kv
fi
methods=$(vault auth list) || { echo "cannot list Vault's auth methods" >&2; exit 1; }
if printf '%s\n' "$methods" | grep -q "^$AUTH_MOUNT/ "; then
  echo "Kubernetes auth at $AUTH_MOUNT/: present"
else
  vault auth enable -path="$AUTH_MOUNT" kubernetes
fi
# Vault runs in the cluster: it reviews tokens with its own ServiceAccount and CA.
vault write "auth/$AUTH_MOUNT/config" kubernetes_host=https://kubernetes.default.svc > /dev/null

declared=" "
while read -r role account namespace; do
  [ -n "$role" ] || continue
  vault policy write "$role" "$CONFIG_DIR/$role.hcl" < /dev/null > /dev/null
  vault write "auth/$AUTH_MOUNT/role/$role" bound_service_account_names="$account" bound_service_account_namespaces="$namespace" \
    token_policies="$role" audience="$AUDIENCE" token_ttl=20m token_max_ttl=1h < /dev/null > /dev/null
  echo "role and policy $role: $namespace/$account reads its own path"
  declared="$declared$role "
done < "$CONFIG_DIR/roles"

for role in $(vault list "auth/$AUTH_MOUNT/role" 2> /dev/null | sed '1,2d'); do
  case "$role" in "$MANAGED_PREFIX"*) ;; *) continue ;; esac
  case "$declared" in *" $role "*) continue ;; esac
  vault delete "auth/$AUTH_MOUNT/role/$role" > /dev/null
  echo "removed role $role: no longer declared"
done
for policy in $(vault policy list); do
  case "$policy" in "$MANAGED_PREFIX"*) ;; *) continue ;; esac
  case "$declared" in *" $policy "*) continue ;; esac
  vault policy delete "$policy" > /dev/null
  echo "removed policy $policy: no longer declared"
done

# Generated values (a consumer's bucket keys): written once, never read back or replaced.
while read -r path keys; do
  [ -n "$path" ] || continue
  if vault kv metadata get -mount="$KV_MOUNT" "$path" > /dev/null 2>&1; then
    echo "generated value $KV_MOUNT/$path: present"
    continue
  fi
  set --
  for key in $keys; do set -- "$@" "$key=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')"; done
  vault kv put -mount="$KV_MOUNT" "$path" "$@" < /dev/null > /dev/null
  echo "generated value $KV_MOUNT/$path: written ($keys)"
done < "$CONFIG_DIR/generated"

if [ -n "$PROBE_PATH" ]; then
  if vault kv get -mount="$KV_MOUNT" "$PROBE_PATH" > /dev/null 2>&1; then
    echo "probe value $KV_MOUNT/$PROBE_PATH: present"
  else
    vault kv put -mount="$KV_MOUNT" "$PROBE_PATH" "$PROBE_KEY=delivered-from-vault" > /dev/null
    echo "probe value $KV_MOUNT/$PROBE_PATH: written"
  fi
fi
echo "Vault matches the declarations"`;
