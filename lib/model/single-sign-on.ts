/**
 * How an exposure is protected, and the capability that signs users in. `public` and `admin`
 * are the router's own (no access control; the admin allow-list and/or forward-auth server of
 * the router's settings). `sso` and `oidc` need a single sign-on service (an identity provider
 * such as Authentik): its catalog entry says `providesSingleSignOn`, so that the config check
 * accepts them, and the service implements `SingleSignOnProvider`, which the exposing service
 * hands each such exposure to.
 */
import type { Exposure } from './exposure';
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
  signInFor(service: HomelabService, exposure: Exposure, protection: SignInProtection): void;
}

export function isSingleSignOnProvider(service: HomelabService): service is SingleSignOnProvider {
  return typeof (service as Partial<SingleSignOnProvider>).signInFor === 'function';
}
