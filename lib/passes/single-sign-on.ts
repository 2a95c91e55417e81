/**
 * The single-sign-on pass: where the platform has a single sign-on service, every service whose
 * own login can be an OIDC client of it (Argo CD, Grafana, Vault) is handed the provider, and
 * registers its client and configures its login (a capability getting its part, as the trace
 * receiver's endpoint goes to every emitter). Without a provider nothing changes: the local
 * logins stay the only ones. Nothing here orders a consumer after the provider: login through it
 * works once the provider is up (docs/adr/0038).
 */
import type { Platform } from '../model/platform';
import { isOidcLoginService, isSingleSignOnProvider } from '../model/single-sign-on';

export function connectOidcLogins(platform: Platform): void {
  const provider = platform.services.find(isSingleSignOnProvider);
  if (!provider) return;
  for (const service of platform.services.filter(isOidcLoginService)) service.logInThrough(provider);
}
