/**
 * What a service exposes outside the cluster: a subdomain of the environment's domain routed
 * to one of its Services. Where the platform runs Traefik and cert-manager, synth turns each
 * declaration into an IngressRoute on `websecure` with security headers (admin UIs also get
 * the configured access control) and a publicly signed certificate for the host.
 */
import type { NetworkPeer } from './network';
import type { HomelabService } from './service';
import type { SignInProtection } from './single-sign-on';

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
   * Protected by the single sign-on service (lib/model/single-sign-on.ts): `sso`, the router asks
   * it about every request (forward-auth); `oidc`, the app logs users in itself through it, so
   * the router puts nothing in front. @default neither
   */
  readonly signIn?: SignInProtection;
  /**
   * The UI's own login is the service's OIDC login (an OidcLoginService: Argo CD, Grafana, Vault):
   * where a single sign-on service runs, an admin route gets no forward-auth in front (users
   * would sign in twice). Per exposure: a service's other UIs (Prometheus beside Grafana) have no
   * login of their own. @default false
   */
  readonly ownOidcLogin?: boolean;
  /**
   * Path prefixes the public host does not serve (e.g. metrics on the UI's port, for
   * Prometheus only): the route excludes them, so Traefik answers 404. @default none
   */
  readonly hiddenPaths?: readonly string[];
  /** Protocol the backend speaks. @default 'http' */
  readonly backendScheme?: 'http' | 'https';
  /**
   * Pods of the exposing service's namespace that ask for the host through the router, as a
   * client outside the cluster does (an end-to-end check of the UI): the NetworkPolicies let
   * them reach the router's entry port. @default none
   */
  readonly checkedFrom?: Readonly<Record<string, string>>;
}

/** An exposure with the service that declared it. */
export interface ServiceExposure {
  readonly service: HomelabService;
  readonly exposure: Exposure;
}

/** A host the router routes, as its checkpoint and the services following its routes see it. */
export interface RoutedHost {
  readonly host: string;
  readonly admin: boolean;
  /** The router asks the single sign-on service about every request to the host (an `sso` host, or an admin one where that service signs users in). @default false */
  readonly singleSignOn?: boolean;
  /** `<namespace>/<name>` of its Certificate. */
  readonly certificate: string;
}

/**
 * The service that turns exposures into routes (Traefik). The routing pass hands it every
 * exposure once all services exist; it emits every route in its own construct tree, and the
 * ordering pass makes it depend on the exposing services: the routes sync with the networking
 * layer, after everything they route to.
 */
export interface ExposureRouter extends HomelabService {
  /** What routes, in NetworkPolicy names (lowercased) and reasons, e.g. `Traefik`. */
  readonly routerName: string;
  /** The pods that connect to the exposed backends (their NetworkPolicies let them in). */
  readonly routerPods: NetworkPeer;
  /** The port those pods serve the routed hosts on (HTTPS), for clients inside the cluster (`Exposure.checkedFrom`). */
  readonly routerEntryPort: number;
  routeExposures(exposures: readonly ServiceExposure[]): void;
  /** Every host routed (once `routeExposures` has run). */
  readonly routedHosts: readonly RoutedHost[];
}

export function isExposureRouter(service: HomelabService): service is ExposureRouter {
  return typeof (service as Partial<ExposureRouter>).routeExposures === 'function';
}

/** A service built from the router's routes (a tunnel forwarding the public hosts). */
export interface RouteFollower extends HomelabService {
  followRoutes(hosts: readonly RoutedHost[]): void;
}

export function isRouteFollower(service: HomelabService): service is RouteFollower {
  return typeof (service as Partial<RouteFollower>).followRoutes === 'function';
}

/**
 * A route follower that can publish a host at an edge outside the cluster (a tunnel forwarding
 * it, a proxied DNS record): the host's public name then resolves to that edge, not to the
 * router's address.
 */
export interface EdgePublisher extends RouteFollower {
  publishesAtEdge(host: RoutedHost): boolean;
}

export function isEdgePublisher(service: HomelabService): service is EdgePublisher {
  return isRouteFollower(service) && typeof (service as Partial<EdgePublisher>).publishesAtEdge === 'function';
}
