/**
 * Authentik's configuration as code: the blueprints (authentik's own declarative format, applied by
 * its worker from the mounted files) the Authentik service generates from the platform — groups
 * and MFA, one proxy provider per host the router protects with forward-auth, one OAuth2/OpenID
 * provider per OIDC client. Models, fields and the default objects they refer to are authentik
 * 2026.2's (goauthentik/authentik blueprints/default/*.yaml and blueprints/system/*.yaml at
 * version/2026.2.3; the blueprint file format in its docs "Blueprints > File structure").
 */
import type { RoutedHost } from '../lib/model/exposure';
import type { OidcClientRequest } from '../lib/model/single-sign-on';
import { emitYaml, TaggedValue } from '../lib/util/yaml-emitter';
import { byCodeUnits } from '../lib/util/text-order';

/** The scopes an OIDC client asks for, each a provider's scope mapping; authentik's `profile` mapping carries the `groups` claim (blueprints/system/providers-oauth2.yaml). */
export const OIDC_SCOPES = ['openid', 'email', 'profile'] as const;

/** The groups every environment has: members of `admins` administer authentik and the platform's UIs; `viewers` may sign in to look. */
export const AUTHENTIK_GROUPS = { admins: 'admins', viewers: 'viewers' } as const;

/** The YAML tags of authentik's blueprint language: `!Find [model, [field, value]]`, `!KeyOf id`, `!Env VARIABLE`. */
const find = (model: string, field: string, value: string) => new TaggedValue('!Find', [model, [field, value]]);
const keyOf = (id: string) => new TaggedValue('!KeyOf', id);
const env = (variable: string) => new TaggedValue('!Env', variable);

export interface BlueprintEntry {
  readonly model: string;
  readonly id?: string;
  /** `present` (default: created or updated to `attrs`), `created` (created once, never updated), `absent` (deleted if there). */
  readonly state?: 'present' | 'created' | 'absent';
  readonly identifiers?: Readonly<Record<string, unknown>>;
  readonly attrs?: Readonly<Record<string, unknown>>;
}

export interface Blueprint {
  readonly version: 1;
  readonly metadata: { readonly name: string; readonly labels: Readonly<Record<string, string>> };
  readonly entries: readonly BlueprintEntry[];
}

/** Blueprint names start with this: the checkpoint asks for them by name. */
const NAME_PREFIX = 'homelab';

function blueprint(name: string, description: string, entries: readonly BlueprintEntry[]): Blueprint {
  return { version: 1, metadata: { name: `${NAME_PREFIX} - ${name}`, labels: { 'blueprints.goauthentik.io/description': description } }, entries };
}

/** Applies one of authentik's default blueprints first (the flows and stages found below are theirs). */
const requireDefault = (name: string): BlueprintEntry => ({ model: 'authentik_blueprints.metaapplyblueprint', attrs: { identifiers: { name }, required: true } });

const GROUP_MODEL = 'authentik_core.group';
const group = (name: string) => find(GROUP_MODEL, 'name', name);
/** The flows of authentik's default blueprints that providers use to authorize a user and to log out. */
const AUTHORIZATION_FLOW = find('authentik_flows.flow', 'slug', 'default-provider-authorization-implicit-consent');
const INVALIDATION_FLOW = find('authentik_flows.flow', 'slug', 'default-provider-invalidation-flow');
const DEFAULT_FLOWS = ['Default - Provider authorization flow (implicit consent)', 'Default - Provider invalidation flow'];

/** The service account the checkpoint reads the blueprints' status as; its group, its role and its token share the name. */
export const CHECKPOINT_ACCOUNT = 'homelab-checkpoint';
/** The only permission the checkpoint's account has (authentik/blueprints/api.py: BlueprintInstanceViewSet lists `authentik_blueprints.blueprintinstance`). */
const VIEW_BLUEPRINTS = 'authentik_blueprints.view_blueprintinstance';

/**
 * The checkpoint's account: a service account (no password, no login) in a group of its own
 * whose role may only view blueprint instances (authentik binds roles to groups:
 * blueprints/default/rbac-role-read-only.yaml), and its API token, never expiring, whose key is
 * the worker's `tokenVariable` (a generated value the checkpoint reads too). The bootstrap token
 * of akadmin, which the checkpoint used before, is removed where an earlier version made one
 * (authentik's blueprints/system/bootstrap.yaml creates it as `authentik-bootstrap-token`).
 */
function checkpointAccount(tokenVariable: string): BlueprintEntry[] {
  return [
    { model: 'authentik_rbac.role', id: 'checkpoint-role', identifiers: { name: CHECKPOINT_ACCOUNT }, attrs: { permissions: [VIEW_BLUEPRINTS] } },
    {
      model: 'authentik_core.user',
      id: 'checkpoint-user',
      identifiers: { username: CHECKPOINT_ACCOUNT },
      attrs: { name: 'homelab checkpoint (reads the blueprints\' status)', type: 'service_account', is_active: true },
    },
    { model: GROUP_MODEL, identifiers: { name: CHECKPOINT_ACCOUNT }, attrs: { is_superuser: false, roles: [keyOf('checkpoint-role')], users: [keyOf('checkpoint-user')] } },
    {
      model: 'authentik_core.token',
      identifiers: { identifier: CHECKPOINT_ACCOUNT },
      attrs: { user: keyOf('checkpoint-user'), intent: 'api', expiring: false, key: env(tokenVariable), description: "The platform checkpoint's: views blueprint instances only" },
    },
    { model: 'authentik_core.token', state: 'absent', identifiers: { identifier: 'authentik-bootstrap-token' } },
  ];
}

/**
 * The groups and MFA. `admins` is created once with akadmin as its member and superuser rights
 * (state `created`: members added later in the UI stay); `viewers` has none. The default
 * authentication flow's MFA stage (`default-authentication-mfa-validation`, which the default
 * skips for users without a device) makes every user without a TOTP or WebAuthn device enrol
 * one at their next login: MFA for everyone, administrators included. And the checkpoint's
 * account, whose token key is the worker's `checkpointTokenVariable`.
 */
export function platformBlueprint(checkpointTokenVariable: string): Blueprint {
  const totp = find('authentik_stages_authenticator_totp.authenticatortotpstage', 'name', 'default-authenticator-totp-setup');
  const webauthn = find('authentik_stages_authenticator_webauthn.authenticatewebauthnstage', 'name', 'default-authenticator-webauthn-setup');
  return blueprint('platform', "The groups admins and viewers; MFA (TOTP or WebAuthn) enforced at every login, enrolled at the first; the checkpoint's read-only account", [
    requireDefault('Default - Authentication flow'),
    requireDefault('Default - TOTP MFA setup flow'),
    requireDefault('Default - WebAuthn MFA setup flow'),
    {
      model: GROUP_MODEL,
      state: 'created',
      identifiers: { name: AUTHENTIK_GROUPS.admins },
      attrs: { is_superuser: true, users: [find('authentik_core.user', 'username', 'akadmin')] },
    },
    { model: GROUP_MODEL, state: 'created', identifiers: { name: AUTHENTIK_GROUPS.viewers }, attrs: { is_superuser: false } },
    {
      model: 'authentik_stages_authenticator_validate.authenticatorvalidatestage',
      identifiers: { name: 'default-authentication-mfa-validation' },
      attrs: {
        // Recovery codes (static) still let an administrator in who lost the device.
        device_classes: ['totp', 'webauthn', 'static'],
        not_configured_action: 'configure',
        configuration_stages: [totp, webauthn],
      },
    },
    ...checkpointAccount(checkpointTokenVariable),
  ]);
}

/** A slug of a host (`longhorn.home.example.net` → `longhorn-home-example-net`). */
function hostSlug(host: string): string {
  return host.replace(/\./g, '-');
}

/** Who may pass an application: `admins`, and for hosts that are not admin-only `viewers` too. */
function groupBindings(application: string, admin: boolean): BlueprintEntry[] {
  const groups = admin ? [AUTHENTIK_GROUPS.admins] : [AUTHENTIK_GROUPS.admins, AUTHENTIK_GROUPS.viewers];
  return groups.map((name, order) => ({
    model: 'authentik_policies.policybinding',
    identifiers: { target: keyOf(application), group: group(name) },
    attrs: { order, enabled: true, negate: false, timeout: 30 },
  }));
}

/**
 * One proxy provider in forward-auth single-application mode per protected host (the embedded
 * outpost tells them apart by the forwarded host), an application each, bound to the groups that
 * may pass, and the embedded outpost serving them all, sending users to the login host.
 */
export function forwardAuthBlueprint(hosts: readonly RoutedHost[], loginHost: string): Blueprint {
  const sorted = [...hosts].sort((a, b) => byCodeUnits(a.host, b.host));
  const entries: BlueprintEntry[] = [...DEFAULT_FLOWS.map(requireDefault), requireDefault('homelab - platform')];
  for (const { host, admin } of sorted) {
    const slug = hostSlug(host);
    entries.push(
      {
        model: 'authentik_providers_proxy.proxyprovider',
        id: `provider-${slug}`,
        identifiers: { name: host },
        attrs: {
          mode: 'forward_single',
          external_host: `https://${host}`,
          authorization_flow: AUTHORIZATION_FLOW,
          invalidation_flow: INVALIDATION_FLOW,
        },
      },
      {
        model: 'authentik_core.application',
        id: `application-${slug}`,
        identifiers: { slug },
        attrs: { name: host, provider: keyOf(`provider-${slug}`), meta_launch_url: `https://${host}/`, policy_engine_mode: 'any' },
      },
      ...groupBindings(`application-${slug}`, admin),
    );
  }
  entries.push({
    model: 'authentik_outposts.outpost',
    identifiers: { managed: 'goauthentik.io/outposts/embedded' },
    attrs: {
      providers: sorted.map(({ host }) => keyOf(`provider-${hostSlug(host)}`)),
      // Where the outpost sends users to sign in, and the API it reaches in-process.
      config: { authentik_host: `https://${loginHost}/` },
    },
  });
  return blueprint('forward auth', 'A proxy provider per host Traefik protects with forward-auth, on the embedded outpost', entries);
}

/**
 * An OAuth2/OpenID provider for a client: confidential, its secret read from the worker's
 * environment, redirect URIs matched strictly, signed with authentik's self-signed key (RS256,
 * verified through the JWKS), with the openid, email and profile scopes (profile carries the
 * groups claim); an application of the same slug for `admins` and `viewers`.
 */
export function oidcClientBlueprint(request: OidcClientRequest, secretVariable: string): Blueprint {
  const scope = (name: string) => find('authentik_providers_oauth2.scopemapping', 'managed', `goauthentik.io/providers/oauth2/scope-${name}`);
  const application = `application-${request.clientId}`;
  return blueprint(`oidc ${request.clientId}`, `The OIDC client of ${request.displayName}`, [
    ...DEFAULT_FLOWS.map(requireDefault),
    requireDefault('homelab - platform'),
    {
      model: 'authentik_providers_oauth2.oauth2provider',
      id: 'provider',
      identifiers: { name: request.displayName },
      attrs: {
        client_type: 'confidential',
        client_id: request.clientId,
        client_secret: env(secretVariable),
        redirect_uris: request.redirectUris.map((url) => ({ matching_mode: 'strict', url })),
        authorization_flow: AUTHORIZATION_FLOW,
        invalidation_flow: INVALIDATION_FLOW,
        signing_key: find('authentik_crypto.certificatekeypair', 'name', 'authentik Self-signed Certificate'),
        property_mappings: OIDC_SCOPES.map(scope),
        sub_mode: 'hashed_user_id',
        include_claims_in_id_token: true,
      },
    },
    {
      model: 'authentik_core.application',
      id: application,
      identifiers: { slug: request.clientId },
      attrs: { name: request.displayName, provider: keyOf('provider'), policy_engine_mode: 'any' },
    },
    ...groupBindings(application, false),
  ]);
}

/** The blueprint as YAML, authentik's tags included. */
export function blueprintText(value: Blueprint): string {
  return emitYaml(value);
}
