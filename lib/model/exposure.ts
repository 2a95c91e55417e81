/**
 * What a service exposes outside the cluster: a subdomain of the environment's domain routed
 * to one of its Services. Where the platform runs Traefik and cert-manager, synth turns each
 * declaration into an IngressRoute on `websecure` with security headers (admin UIs also get
 * the configured access control) and a publicly signed certificate for the host.
 */
import type { NetworkPeer } from './network';
import type { Platform } from './platform';
import type { HomelabService } from './service';

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
  /**
   * Path prefixes the public host does not serve (e.g. metrics on the UI's port, for
   * Prometheus only): the route excludes them, so Traefik answers 404. @default none
   */
  readonly hiddenPaths?: readonly string[];
  /** Protocol the backend speaks. @default 'http' */
  readonly backendScheme?: 'http' | 'https';
}

/** An exposure with the service that declared it. */
export interface ServiceExposure {
  readonly service: HomelabService;
  readonly exposure: Exposure;
}

/**
 * The service that turns exposures into routes (Traefik). It emits every route in its own
 * construct tree and depends on the exposing services: the routes sync with the networking
 * layer, after everything they route to.
 */
export interface ExposureRouter extends HomelabService {
  /** The pods that connect to the exposed backends (their NetworkPolicies let them in). */
  readonly routerPods: NetworkPeer;
  routeExposures(exposures: readonly ServiceExposure[]): void;
}

export function isExposureRouter(service: HomelabService): service is ExposureRouter {
  return typeof (service as Partial<ExposureRouter>).routeExposures === 'function';
}

/** Hands every service's exposures to the platform's router, if it has one (called by synth before the graph). */
export function routeExposures(platform: Platform): void {
  const router = platform.services.find(isExposureRouter);
  if (!router) return;
  router.routeExposures(platform.services.flatMap((service) => service.exposures.map((exposure) => ({ service, exposure }))));
}
