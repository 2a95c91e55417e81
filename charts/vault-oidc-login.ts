/**
 * Vault's login through the single sign-on service: the `oidc` auth method with one role whose
 * groups claim maps the provider's admin and viewer groups to Vault external groups, each with
 * its policy. Vault fetches the issuer's discovery document, by the issuer's public name, when
 * the configuration is written: that needs the provider, the router's route and certificate, and
 * where the host goes through them the tunnel and the DNS record — services of later waves than
 * Vault's and the provider's. So this is not the configurator's work at Vault's wave but Vault's
 * final step (HomelabService.addFinalStep): a PostSync Job the final Application (the
 * verification) runs, in Vault's namespace, once every other service has synced. No earlier
 * Application waits for it (docs/adr/0038).
 *
 * The Job logs in through the Kubernetes auth method as a role the configurator keeps for it
 * (`vaultOidcLoginAccess`), whose policy allows exactly these steps. Idempotent: every sync of the
 * final Application makes Vault match again.
 */
import { k8s } from 'cdk8s-plus-34';
import { Construct } from 'constructs';
import { POST_SYNC_HOOK } from '../lib/model/checkpoint';
import { restrictedContainerContext, restrictedPodContext } from '../lib/model/pod-security';
import { resources, toResourceRequirements } from '../lib/model/resources';
import type { SecretRef } from '../lib/model/secrets';
import { HomelabService } from '../lib/model/service';
import { OIDC_CLIENT_SECRET_KEY, OidcIssuer } from '../lib/model/single-sign-on';
import { IMAGES } from './versions';
import { MANAGED_VAULT_PREFIX, policyRule, VAULT_GID, VAULT_KV_MOUNT, VAULT_LOGIN_SCRIPT, VAULT_LOGIN_TOKEN_MOUNT, VAULT_LOGIN_TOKEN_VOLUME, VAULT_CLIENT_TIMEOUT, VAULT_UID, VaultAccess, vaultLoginEnv, VaultPolicyRule } from './vault-configurator';

export const VAULT_OIDC_LOGIN_JOB = 'vault-oidc-login';
/** The Job's container, whose log the verification's report shows when it fails. */
export const VAULT_OIDC_LOGIN_CONTAINER = 'configure';
/** Vault's OIDC auth mount: the UI's callback path names it (`/ui/vault/auth/<mount>/oidc/callback`). */
export const OIDC_AUTH_MOUNT = 'oidc';
/** The mount's one role, its default: users log in without naming a role. */
const OIDC_ROLE = 'sso';
/** ConfigMap key: one line per group, `<group> <policy>`; each policy's text under `<policy>.hcl`. */
export const GROUPS_KEY = 'groups';
const CONFIG_DIR = '/config';
/** Where the client secret's Secret is mounted. */
const CLIENT_SECRET_DIR = '/var/run/secrets/oidc-client';

/**
 * The policies of the external groups. Outside the configurator's managed prefix (`homelab-`,
 * which it deletes when undeclared): this Job writes them, once the provider exists.
 */
function groupPolicyName(group: string): string {
  return `oidc-${group}`;
}

/**
 * What the provider's admin group may do in Vault: every value of the platform's KV engine (put
 * the values the synth summary lists, rotate, delete, undelete), and read which policies exist.
 * Not Vault's own configuration (auth methods, policies, roles, seal, raft): that stays with the
 * configurator's token and the root token the operator keeps offline.
 */
const ADMIN_RULES: readonly VaultPolicyRule[] = [
  { path: `${VAULT_KV_MOUNT}/data/*`, capabilities: ['create', 'read', 'update', 'patch', 'delete'] },
  { path: `${VAULT_KV_MOUNT}/metadata/*`, capabilities: ['read', 'list', 'delete'] },
  { path: `${VAULT_KV_MOUNT}/delete/*`, capabilities: ['update'] },
  { path: `${VAULT_KV_MOUNT}/undelete/*`, capabilities: ['update'] },
  { path: 'sys/policies/acl', capabilities: ['list'] },
  { path: 'sys/policies/acl/*', capabilities: ['read'] },
];

/**
 * What the viewer group may do: see which secrets exist, their versions and when they changed
 * (the KV metadata), and the policies — never a value.
 */
const VIEWER_RULES: readonly VaultPolicyRule[] = [
  { path: `${VAULT_KV_MOUNT}/metadata/*`, capabilities: ['read', 'list'] },
  { path: 'sys/policies/acl', capabilities: ['list'] },
  { path: 'sys/policies/acl/*', capabilities: ['read'] },
];

/**
 * The Job's identity in Vault, which the configurator keeps: exactly the steps of
 * VAULT_OIDC_LOGIN_SCRIPT on the OIDC mount, its role, the two groups, their aliases and policies.
 * It can change what the two groups may do, so it is as strong as the admin policy: bound to one
 * ServiceAccount whose token no pod but this Job's mounts.
 */
export function vaultOidcLoginAccess(namespace: string, issuer: Pick<OidcIssuer, 'adminGroup' | 'viewerGroup'>): VaultAccess {
  const groups = [issuer.adminGroup, issuer.viewerGroup];
  return {
    service: VAULT_OIDC_LOGIN_JOB,
    namespace,
    serviceAccount: VAULT_OIDC_LOGIN_JOB,
    role: `${MANAGED_VAULT_PREFIX}${VAULT_OIDC_LOGIN_JOB}`,
    policyPaths: [],
    policyRules: [
      // Enabling an auth method and reading its accessor need sudo.
      { path: `sys/auth/${OIDC_AUTH_MOUNT}`, capabilities: ['create', 'read', 'update', 'sudo'] },
      { path: `auth/${OIDC_AUTH_MOUNT}/config`, capabilities: ['create', 'read', 'update'] },
      { path: `auth/${OIDC_AUTH_MOUNT}/role/${OIDC_ROLE}`, capabilities: ['create', 'read', 'update'] },
      ...groups.map((group) => ({ path: `sys/policies/acl/${groupPolicyName(group)}`, capabilities: ['create', 'read', 'update'] })),
      ...groups.map((group) => ({ path: `identity/group/name/${group}`, capabilities: ['create', 'read', 'update'] })),
      { path: 'identity/group-alias', capabilities: ['create', 'update'] },
      { path: 'identity/lookup/group', capabilities: ['update'] },
    ],
  };
}

export interface VaultOidcLoginProps {
  /** Vault's in-cluster address. */
  readonly address: string;
  /** Vault's namespace, where the Job runs and reads the client Secret. */
  readonly namespace: string;
  readonly issuer: OidcIssuer;
  readonly clientId: string;
  /** The client secret's Secret, declared by Vault (key OIDC_CLIENT_SECRET_KEY). */
  readonly clientSecret: SecretRef;
  /** The URIs the provider sends users back to: the UI's callback and the CLI's. */
  readonly redirectUris: readonly string[];
  /** The Job's identity in Vault (vaultOidcLoginAccess). */
  readonly access: VaultAccess;
  /** The Job's PostSync hook wave in the Application that runs it. */
  readonly hookWave: number;
}

/** The ServiceAccount, the ConfigMap and the PostSync Job, in the tree of the service that runs it (the final Application). */
export class VaultOidcLogin extends Construct {
  constructor(scope: Construct, id: string, props: VaultOidcLoginProps) {
    super(scope, id);
    const host = HomelabService.of(this);
    const { issuer, namespace } = props;
    const labels = host.labelsFor(VAULT_OIDC_LOGIN_JOB);
    const groups: readonly [string, readonly VaultPolicyRule[]][] = [
      [issuer.adminGroup, ADMIN_RULES],
      [issuer.viewerGroup, VIEWER_RULES],
    ];
    // The ConfigMap's data: the groups table and one policy per group.
    const data = {
      [GROUPS_KEY]: groups.map(([group]) => `${group} ${groupPolicyName(group)}\n`).join(''),
      ...Object.fromEntries(groups.map(([group, rules]) => [`${groupPolicyName(group)}.hcl`, rules.map((rule) => policyRule(rule.path, rule.capabilities)).join('\n')])),
    };
    new k8s.KubeServiceAccount(this, 'account', { metadata: { name: props.access.serviceAccount, namespace, labels }, automountServiceAccountToken: false });
    new k8s.KubeConfigMap(this, 'config', { metadata: { name: VAULT_OIDC_LOGIN_JOB, namespace, labels }, data });
    new k8s.KubeJob(this, 'job', {
      metadata: {
        name: VAULT_OIDC_LOGIN_JOB,
        namespace,
        labels,
        // Kept until the next sync, failed or not: the verification's report reads its state and log.
        annotations: { ...POST_SYNC_HOOK, 'argocd.argoproj.io/hook-delete-policy': 'BeforeHookCreation', 'argocd.argoproj.io/sync-wave': String(props.hookWave) },
      },
      spec: {
        backoffLimit: 2,
        activeDeadlineSeconds: 600,
        template: {
          metadata: { labels: host.jobPodLabelsFor(VAULT_OIDC_LOGIN_JOB, 'configurator') },
          spec: {
            restartPolicy: 'Never',
            serviceAccountName: props.access.serviceAccount,
            automountServiceAccountToken: false,
            securityContext: restrictedPodContext(VAULT_UID, { group: VAULT_GID }),
            containers: [
              {
                name: VAULT_OIDC_LOGIN_CONTAINER,
                image: IMAGES.vault,
                command: ['sh', '-ec', VAULT_OIDC_LOGIN_SCRIPT],
                env: [
                  ...vaultLoginEnv(props.address, props.access.role),
                  VAULT_CLIENT_TIMEOUT,
                  { name: 'OIDC_MOUNT', value: OIDC_AUTH_MOUNT },
                  { name: 'OIDC_ROLE', value: OIDC_ROLE },
                  { name: 'ISSUER', value: issuer.issuerUrl },
                  { name: 'CLIENT_ID', value: props.clientId },
                  { name: 'REDIRECT_URIS', value: props.redirectUris.join(',') },
                  { name: 'GROUPS_CLAIM', value: issuer.groupsClaim },
                  // Vault always requests `openid`.
                  { name: 'SCOPES', value: issuer.scopes.filter((scope) => scope !== 'openid').join(',') },
                  { name: 'CONFIG_DIR', value: CONFIG_DIR },
                  { name: 'SECRET_NAME', value: props.clientSecret.secretName },
                  { name: 'HOME', value: '/tmp' },
                  { name: 'CLIENT_SECRET_FILE', value: `${CLIENT_SECRET_DIR}/${OIDC_CLIENT_SECRET_KEY}` },
                ],
                resources: toResourceRequirements(resources('10m', '32Mi', '200m', '128Mi')),
                securityContext: restrictedContainerContext(),
                volumeMounts: [
                  { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
                  VAULT_LOGIN_TOKEN_MOUNT,
                  { name: 'client-secret', mountPath: CLIENT_SECRET_DIR, readOnly: true },
                  { name: 'tmp', mountPath: '/tmp' },
                ],
              },
            ],
            volumes: [
              { name: 'config', configMap: { name: VAULT_OIDC_LOGIN_JOB } },
              { name: 'tmp', emptyDir: {} },
              // A file, not an environment variable (nothing else in the pod sees it); optional: an
              // undelivered Secret is reported by the script, not as a pod stuck in ContainerCreating.
              {
                name: 'client-secret',
                secret: { secretName: props.clientSecret.secretName, optional: true, items: [{ key: props.clientSecret.keySelector(OIDC_CLIENT_SECRET_KEY).key, path: OIDC_CLIENT_SECRET_KEY }] },
              },
              VAULT_LOGIN_TOKEN_VOLUME,
            ],
          },
        },
      },
    });
  }
}

/**
 * Runs with `sh -ec` in the Vault image (busybox + the vault CLI). The client secret goes from
 * its file to Vault on stdin, never on a command line or in the environment. A group's alias on the OIDC mount is created once
 * (Vault refuses a second alias of the same name on a mount).
 */
export const VAULT_OIDC_LOGIN_SCRIPT = String.raw`if [ ! -s "$CLIENT_SECRET_FILE" ]; then
  echo "no OIDC client secret: the Secret $SECRET_NAME is not delivered yet (Vault's configurator generates the value, External Secrets delivers it)" >&2
  exit 1
fi
${VAULT_LOGIN_SCRIPT}
if vault read "sys/auth/$OIDC_MOUNT" > /dev/null 2>&1; then
  echo "OIDC auth at $OIDC_MOUNT/: present"
else
  vault auth enable -path="$OIDC_MOUNT" oidc
fi
# Vault reads the issuer's discovery document now, by its public name: the provider, the route, the certificate and the record must be in place.
vault write "auth/$OIDC_MOUNT/config" oidc_discovery_url="$ISSUER" oidc_client_id="$CLIENT_ID" oidc_client_secret=- default_role="$OIDC_ROLE" < "$CLIENT_SECRET_FILE" > /dev/null
echo "OIDC auth at $OIDC_MOUNT/: issuer $ISSUER, client $CLIENT_ID"
vault write "auth/$OIDC_MOUNT/role/$OIDC_ROLE" role_type=oidc bound_audiences="$CLIENT_ID" allowed_redirect_uris="$REDIRECT_URIS" \
  user_claim=sub groups_claim="$GROUPS_CLAIM" oidc_scopes="$SCOPES" token_policies=default token_ttl=1h token_max_ttl=8h < /dev/null > /dev/null
echo "role $OIDC_ROLE: groups from the claim $GROUPS_CLAIM, redirects $REDIRECT_URIS"
accessor=$(vault read -field=accessor "sys/auth/$OIDC_MOUNT" < /dev/null)
while read -r group policy; do
  [ -n "$group" ] || continue
  vault policy write "$policy" "$CONFIG_DIR/$policy.hcl" < /dev/null > /dev/null
  vault write "identity/group/name/$group" type=external policies="$policy" < /dev/null > /dev/null
  id=$(vault read -field=id "identity/group/name/$group" < /dev/null)
  if vault write -format=json identity/lookup/group alias_name="$group" alias_mount_accessor="$accessor" < /dev/null | grep -q '"id"'; then
    echo "group $group: policy $policy, alias on $OIDC_MOUNT/ present"
  else
    vault write identity/group-alias name="$group" mount_accessor="$accessor" canonical_id="$id" < /dev/null > /dev/null
    echo "group $group: policy $policy, alias on $OIDC_MOUNT/ created"
  fi
done < "$CONFIG_DIR/groups"
echo "Vault logs users in through $ISSUER"`;
