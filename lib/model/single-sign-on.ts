/**
 * How an exposure is protected, and the capability that signs users in. `public` and `admin`
 * are the router's own (no access control; the admin allow-list and/or forward-auth server of
 * the router's settings). `sso` and `oidc` need a single sign-on service (an identity provider
 * such as Authentik): its catalog entry says `providesSingleSignOn`, so that the config check
 * accepts them, and the service implements `SingleSignOnProvider`, which the exposing service
 * hands each such exposure to.
 */
import type { Exposure } from './exposure';
import type { Egress } from './network';
import type { SecretRef } from './secrets';
import type { HomelabService } from './service';

/**
 * - `public`: no access control (webhooks, apps with their own login);
 * - `sso`: the router asks the single sign-on service about every request (forward-auth);
 * - `oidc`: the app logs users in itself, as a client of the single sign-on service;
 * - `admin`: the router's admin access control (the allow-list of client networks).
 */
export const PROTECTIONS = ['public', 'sso', 'oidc', 'admin'] as const;
export type Protection = (typeof PROTECTIONS)[number];

/** The protections only a single sign-on service can provide. */
export type SignInProtection = Extract<Protection, 'sso' | 'oidc'>;

export function needsSingleSignOn(protection: Protection): protection is SignInProtection {
  return protection === 'sso' || protection === 'oidc';
}

/**
 * A service that signs users in for other services' exposures. It is created before the
 * services that use it (its catalog entry comes first), which hand it their `sso` and `oidc`
 * exposures; it declares what follows (a forward-auth middleware on the route, an OIDC client
 * and its credentials in the exposing service's namespace).
 */
export interface SingleSignOnProvider extends HomelabService {
  /** Where the router asks about each request to an `sso` host (and an admin one). */
  readonly forwardAuth: ForwardAuthEndpoint;
  signInFor(service: HomelabService, exposure: Exposure, protection: SignInProtection): void;
  /**
   * Registers a service whose own login is an OIDC client of the provider (Argo CD, Grafana,
   * Vault): the provider declares the client (its provider/application objects, the client secret
   * read from the same generated value as the consumer's) and returns what the client logs in
   * against.
   */
  registerOidcClient(service: HomelabService, request: OidcClientRequest): OidcIssuer;
}

/** The single sign-on service's forward-auth endpoint, as the router calls it. */
export interface ForwardAuthEndpoint {
  /** The URL the router sends each request's method, host and URI to (2xx: let it through; otherwise its answer goes to the client). */
  readonly address: string;
  /** Headers of its answer the router copies to the request (who signed in). */
  readonly authResponseHeaders: readonly string[];
  /** The host users are sent to when they have not signed in (a redirect's target). */
  readonly loginHost: string;
  /**
   * A path prefix on every protected host that the single sign-on service answers itself (the
   * callback after a login), and the Service in its namespace that serves it: the router routes
   * it there, in that namespace, without forward-auth.
   */
  readonly ownPaths: { readonly pathPrefix: string; readonly namespace: string; readonly serviceName: string; readonly servicePort: number };
}

/** The key of the client secret in an OIDC client's Secret (OidcClientRequest.clientSecret). */
export const OIDC_CLIENT_SECRET_KEY = 'client-secret';

/** What a service whose own login is an OIDC client asks the single sign-on service for. */
export interface OidcClientRequest {
  /** The client id, also the provider's slug for it: unique on the platform, a DNS label (e.g. `argocd`). */
  readonly clientId: string;
  /** The name users see on the provider's list of applications, e.g. `Argo CD`. */
  readonly displayName: string;
  /** The exact URIs the service sends users back to after they log in. */
  readonly redirectUris: readonly string[];
  /**
   * The consumer's own Secret holding the client secret (key OIDC_CLIENT_SECRET_KEY), generated
   * in the secret backend: the provider reads the same value, nobody types it.
   */
  readonly clientSecret: SecretRef;
}

/** What an OIDC client logs in against. */
export interface OidcIssuer {
  /** The issuer URL; the discovery document is at `<issuerUrl>.well-known/openid-configuration` (it ends with `/`). */
  readonly issuerUrl: string;
  /** The scopes to request: the groups claim comes with one of them. */
  readonly scopes: readonly string[];
  /** The ID token claim listing the user's group names. */
  readonly groupsClaim: string;
  /** The group whose members administer the service, and the group whose members may only look. */
  readonly adminGroup: string;
  readonly viewerGroup: string;
  /**
   * The discovery document's endpoints, for a client that does not read it (Grafana's generic
   * OAuth takes each URL from its configuration).
   */
  readonly endpoints: OidcEndpoints;
}

/** An issuer's `authorization_endpoint`, `token_endpoint` and `userinfo_endpoint` (OpenID Connect Discovery 1.0). */
export interface OidcEndpoints {
  readonly authorization: string;
  readonly token: string;
  readonly userinfo: string;
}

/**
 * A service whose own login can be an OIDC client of the single sign-on service. Once every
 * service exists, the single-sign-on pass hands it the provider (when the platform has one); it
 * registers its client and configures its login. Its syncs never wait for the provider: login
 * through it works once the provider is up, the local admin login stays for before.
 */
export interface OidcLoginService extends HomelabService {
  logInThrough(provider: SingleSignOnProvider): void;
}

export function isOidcLoginService(service: HomelabService): service is OidcLoginService {
  return typeof (service as Partial<OidcLoginService>).logInThrough === 'function';
}

export function isSingleSignOnProvider(service: HomelabService): service is SingleSignOnProvider {
  return typeof (service as Partial<SingleSignOnProvider>).signInFor === 'function';
}

/**
 * What an OIDC client's server pods reach: its issuer, by the issuer URL's public name (the
 * `iss` of every token is that URL, so the servers use the name browsers use), for the discovery
 * document and the code exchange (NetworkPolicies: `routed-host`, docs/adr/0038).
 * @param client who connects, for the policy's reason (e.g. `Argo CD's API server`)
 */
export function issuerEgress(podSelector: Readonly<Record<string, string>>, issuer: OidcIssuer, client: string): Egress {
  return {
    name: 'oidc-issuer',
    podSelector,
    to: { kind: 'routed-host', host: new URL(issuer.issuerUrl).hostname },
    reason: `${client} reads the discovery document of ${issuer.issuerUrl} and exchanges login codes there`,
  };
}

/** A client Secret's purpose, as the synth summary shows it to the operator. */
export function oidcClientSecretPurpose(displayName: string): string {
  return `client secret of ${displayName}'s OIDC login; generated in the secret backend, the single sign-on service reads the same value: nothing to do`;
}
