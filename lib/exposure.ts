/**
 * What a service exposes outside the cluster: a subdomain of the environment's domain routed
 * to one of its Services. Where the platform runs Traefik and cert-manager, synth turns each
 * declaration into an IngressRoute on `websecure` with security headers (admin UIs also get
 * the configured access control) and a publicly signed certificate for the host.
 */

export interface Exposure {
  /** Subdomain of the environment's domain, e.g. `grafana` -> grafana.<domain>. */
  readonly subdomain: string;
  /** The Kubernetes Service to route to, in the exposing service's namespace. */
  readonly serviceName: string;
  /** Port of that Service. */
  readonly servicePort: number;
  /** Port the pods behind it listen on (number or container port name): the NetworkPolicy allows Traefik to it. */
  readonly podPort: number | string;
  /** Labels of the pods behind the Service (the NetworkPolicy's pod selector). */
  readonly podSelector: Readonly<Record<string, string>>;
  /** An admin UI: reachable only through the configured allow-list or forward-auth. */
  readonly admin: boolean;
  /** Protocol the backend speaks. @default 'http' */
  readonly backendScheme?: 'http' | 'https';
}
