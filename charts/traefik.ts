/**
 * Traefik (networking layer): the platform's one way in. `web` redirects permanently to
 * `websecure`, where every exposure of every service (HomelabService.expose) becomes an
 * IngressRoute with security headers, the admin access control for admin UIs, and a
 * cert-manager Certificate for its host (docs/adr/0011-routing-exposures.md). The routes are
 * emitted here, in Traefik's tree and the exposing service's namespace, so they sync with
 * Traefik after everything they route to.
 */
import { z } from '../lib/model/config/zod';
import { Certificate, CertificateSpecPrivateKeyAlgorithm, CertificateSpecPrivateKeyRotationPolicy } from '../imports/cert-manager-cert-manager.io';
import type { TraefikValues } from '../imports/helm/traefik';
import { Middleware } from '../imports/traefik-middleware-traefik.io';
import {
  IngressRoute,
  IngressRouteSpecRoutesKind,
  IngressRouteSpecRoutesServices,
  IngressRouteSpecRoutesServicesKind,
  IngressRouteSpecRoutesServicesPort,
} from '../imports/traefik-traefik.io';
import { type ConfigIssue, defineService } from '../lib/model/catalog';
import { Checkpoint, conditionWaitSeconds, eachUntilOk, eachUntilOkSeconds } from '../lib/model/checkpoint';
import { bool, intBetween, oneOf, resourcesSchema, subdomain } from '../lib/model/config/primitives';
import type { Exposure, ExposureRouter, RoutedHost, ServiceExposure } from '../lib/model/exposure';
import { helmRelease } from './helm-release';
import { spreadOverNodes } from '../lib/model/placement';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { cidrsOverlap, urlEgressTarget } from '../lib/model/network';
import type { TraceEmission, TraceEmitter } from '../lib/model/tracing';
import { HomelabService } from '../lib/model/service';
import { isOidcLoginService, isSingleSignOnProvider, type SingleSignOnProvider } from '../lib/model/single-sign-on';
import { IMAGES } from './versions';
import { CertManager, certManagerEntry, CLUSTER_ISSUERS } from './cert-manager';

const cidr = z.cidrv4({ error: 'expected an IPv4 CIDR such as "192.168.1.0/24"' });
const nodePort = intBetween(30000, 32767);

/** k3s' default cluster-cidr: the source address of every pod-to-Traefik connection. */
export const K3S_POD_NETWORK = '10.42.0.0/16';

export const DEFAULT_TRAEFIK_RESOURCES = { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } };

/** `services.traefik`. */
export const traefikSettings = z
  .strictObject({
    enabled: bool.default(false),
    /** Traefik pods; with more than one, spread over the nodes with a PodDisruptionBudget. */
    replicas: intBetween(1, 5).default(1),
    /** `LoadBalancer` (k3s ServiceLB, MetalLB) or `NodePort` (a router forwarding to the nodes). */
    serviceType: oneOf(['LoadBalancer', 'NodePort']).default('LoadBalancer'),
    /** Address MetalLB assigns (annotation metallb.io/loadBalancerIPs); k3s ServiceLB advertises the node addresses instead. @default any */
    loadBalancerIP: z.ipv4({ error: 'expected an IPv4 address' }).optional(),
    /** Fixed node ports for `NodePort`. @default assigned by Kubernetes */
    nodePorts: z.strictObject({ web: nodePort.optional(), websecure: nodePort.optional() }).optional(),
    /** ClusterIssuer of every certificate: try `letsencrypt-staging` first, then switch. */
    issuer: oneOf(['letsencrypt-production', 'letsencrypt-staging']).default('letsencrypt-production'),
    /** Traefik's own dashboard, an admin route. */
    dashboard: z.strictObject({ subdomain: subdomain.default('traefik') }).prefault({}),
    /**
     * Who may reach admin UIs (Argo CD, Grafana, Longhorn ...): client addresses in
     * `allowList` and/or whoever the `forwardAuth` server (Authelia, oauth2-proxy ...) lets in.
     */
    adminAccess: z
      .strictObject({
        allowList: z.array(cidr).default([]),
        forwardAuth: z
          .strictObject({
            /** The auth server's verification URL, e.g. http://authelia.auth.svc/api/authz/forward-auth. */
            address: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
            /** Headers of the auth server's answer copied to the request (e.g. Remote-User). @default none */
            authResponseHeaders: z.array(z.string().min(1)).default([]),
          })
          .optional(),
      })
      .prefault({}),
    /** The cluster's pod network (k3s --cluster-cidr): never allow-listed, since in-cluster clients come from it. */
    podNetwork: cidr.default(K3S_POD_NETWORK),
    resources: resourcesSchema.default(DEFAULT_TRAEFIK_RESOURCES),
  })
  .superRefine((traefik, ctx) => {
    if (!traefik.enabled) return;
    const { allowList } = traefik.adminAccess;
    allowList.forEach((range, i) => {
      if (cidrsOverlap(range, traefik.podNetwork)) {
        ctx.addIssue({
          code: 'custom',
          path: ['adminAccess', 'allowList', i],
          message: `expected a network outside the pod network ${traefik.podNetwork}: every pod (and cloudflared's tunnel traffic) comes from there`,
        });
      }
    });
    if (traefik.serviceType === 'NodePort' && traefik.loadBalancerIP) {
      ctx.addIssue({ code: 'custom', path: ['loadBalancerIP'], message: 'expected no loadBalancerIP with serviceType NodePort' });
    }
    if (traefik.serviceType === 'LoadBalancer' && traefik.nodePorts) {
      ctx.addIssue({ code: 'custom', path: ['nodePorts'], message: 'expected nodePorts only with serviceType NodePort' });
    }
  })
  .prefault({});

export type TraefikSettings = z.output<typeof traefikSettings>;

export const TRAEFIK_NAMESPACE = 'traefik';

/**
 * The chart's Service and pod selector for release `traefik` in namespace `traefik`
 * (traefik-helm-chart v41.3.0 _helpers.tpl: the fullname is the release name when it contains
 * the chart name; `traefik.labelselector` is name + `<release>-<namespace>`).
 */
export const TRAEFIK_SERVICE = 'traefik';
export const TRAEFIK_POD_LABELS = { 'app.kubernetes.io/name': 'traefik', 'app.kubernetes.io/instance': 'traefik-traefik' } as const;

/** The chart's entry points (values `ports.*`): pod port and Service port. */
export const ENTRY_POINTS = {
  web: { port: 8000, exposedPort: 80 },
  websecure: { port: 8443, exposedPort: 443 },
  metrics: { port: 9100 },
} as const;

/** In-cluster address of `websecure`: where the tunnel and the checkpoint connect. */
export const WEBSECURE_ADDRESS = `${TRAEFIK_SERVICE}.${TRAEFIK_NAMESPACE}.svc:${ENTRY_POINTS.websecure.exposedPort}`;

export type ClusterIssuerName = keyof typeof CLUSTER_ISSUERS;

/** Who may reach admin UIs: client networks and/or a forward-auth server. */
export type AdminAccess = TraefikSettings['adminAccess'];

export type TraefikProps = Omit<TraefikSettings, 'enabled'> & {
  /** Issues the certificates (its ClusterIssuers). */
  readonly certManager: CertManager;
  /**
   * Signs users in for `sso` hosts and, in place of `adminAccess.forwardAuth`, for admin hosts:
   * its forward-auth endpoint goes in front of them. Required with an `sso` exposure. @default none
   */
  readonly singleSignOn?: SingleSignOnProvider;
};

/** How the admin hosts are protected: the allow-list, a forward-auth server, or both; never neither (admin UIs are never public). */
function adminAccessIssues(adminAccess: AdminAccess, singleSignOn: boolean): ConfigIssue[] {
  if (singleSignOn && adminAccess.forwardAuth) {
    return [{ path: ['adminAccess', 'forwardAuth'], message: 'expected no forwardAuth server: admin UIs sign in through the single sign-on service (Authentik)' }];
  }
  if (adminAccess.allowList.length === 0 && !adminAccess.forwardAuth && !singleSignOn) {
    return [
      {
        path: ['adminAccess'],
        message: 'expected an allowList of client networks (e.g. your LAN, 192.168.1.0/24) and/or a forwardAuth server, or a single sign-on service (Authentik): admin UIs are never public',
      },
    ];
  }
  return [];
}

/**
 * A single sign-on service needs publicly trusted certificates: its OIDC clients' servers (Argo
 * CD, Grafana, Vault, apps with an `oidc` login) verify the issuer's certificate when they fetch
 * its discovery document and exchange codes, and Let's Encrypt's staging root is in no trust store.
 */
function issuerIssues(issuer: string, singleSignOn: boolean): ConfigIssue[] {
  if (!singleSignOn || issuer === 'letsencrypt-production') return [];
  return [
    {
      path: ['issuer'],
      message: `expected letsencrypt-production with a single sign-on service (Authentik), received "${issuer}": staging certificates are untrusted and the OIDC clients (Argo CD, Grafana, Vault, apps with an oidc login) refuse them; try a new setup on staging without services.authentik`,
    },
  ];
}

/** "Traefik Official Kubernetes Dashboard" (Traefik Labs) on grafana.com: revision 9. */
const DASHBOARD = { name: 'traefik', gnetId: 17347, revision: 9 } as const;

/** The proxies' metrics entry point, on every pod. */
const PROXY_METRICS = {
  selector: TRAEFIK_POD_LABELS,
  port: 'metrics',
  source: 'traefik/traefik-helm-chart v41.3.0 traefik/templates/_helpers.tpl traefik.labelselector, _podtemplate.tpl ports',
} as const;

/**
 * Who may reach a route: anyone; the admin access control (with single sign-on: the allow-list,
 * then its forward-auth); the allow-list alone (`admin-own-login`: an admin UI whose own login is
 * an OIDC client of the single sign-on service — Argo CD, Grafana, Vault — signs users in
 * itself, a second login in front would only be in the way); or whoever the single sign-on
 * service signs in.
 */
type RouteAccess = 'public' | 'admin' | 'admin-own-login' | 'sso';

function routeAccess(admin: boolean, signIn: Exposure['signIn'], ownLogin: boolean): RouteAccess {
  if (admin) return ownLogin ? 'admin-own-login' : 'admin';
  return signIn === 'sso' ? 'sso' : 'public';
}

/** Above the default priority of any host rule (its length): the single sign-on service's own paths go first. */
const SIGN_IN_ROUTE_PRIORITY = 10000;

/** Where a route goes: a Service port, or one of Traefik's internal services. */
interface RouteBackend {
  readonly name: string;
  readonly port?: number;
  readonly kind: IngressRouteSpecRoutesServicesKind;
  readonly scheme?: 'http' | 'https';
}

/** Response headers every route adds: HSTS, no MIME sniffing, no framing, no referrer leaks. */
const SECURITY_HEADERS = {
  stsSeconds: 31536000,
  stsIncludeSubdomains: true,
  contentTypeNosniff: true,
  frameDeny: true,
  referrerPolicy: 'strict-origin-when-cross-origin',
  permissionsPolicy: 'camera=(), microphone=(), geolocation=()',
} as const;

/** Share of a service's requests answered 5xx that alerts, and the least traffic it needs (requests per second). */
const ERROR_RATIO = 0.05;
const ERROR_MIN_RATE = 0.1;

export class Traefik extends HomelabService implements ExposureRouter, TraceEmitter {
  /** Traefik traces every request it routes (values `tracing.otlp.grpc`, traefik 41.3.0; sample rate 1.0 by default). */
  readonly traceEmissions: readonly TraceEmission[] = [
    {
      name: 'traefik',
      podSelector: TRAEFIK_POD_LABELS,
      protocol: 'grpc',
      connect: (endpoint) => {
        (this.helm!.values as TraefikValues).tracing = { otlp: { enabled: true, grpc: { enabled: true, endpoint, insecure: true } } };
      },
    },
  ];
  /** Traefik's pods, by the chart's name label (traefik 41.3.0 `traefik.labelselector`): the backends let them in. */
  readonly routerName = 'Traefik';
  readonly routerPods = { namespace: TRAEFIK_NAMESPACE, podSelector: { 'app.kubernetes.io/name': 'traefik' } };
  readonly routerEntryPort = ENTRY_POINTS.websecure.port;
  private readonly issuer: ClusterIssuerName;
  private readonly adminAccess: AdminAccess;
  private readonly singleSignOn?: SingleSignOnProvider;
  private readonly dashboardSubdomain: string;
  private readonly routed: RoutedHost[] = [];
  /** How each routed host refuses a client that is neither allow-listed nor signed in. */
  private readonly refusals = new Map<string, RouteRefusal>();
  private readonly platform: Platform;

  constructor(scope: Platform, props: TraefikProps) {
    const replicas = props.replicas;
    super(scope, 'traefik', props, {
      layer: Layer.NETWORKING,
      namespace: TRAEFIK_NAMESPACE,
      // The chart's crds/ folder, applied by Argo CD with the chart (server-side apply); the
      // IngressRoutes and Middlewares below then skip the dry run and sync after it.
      installsCrdGroups: ['traefik.io', 'hub.traefik.io'],
      helm: helmRelease('traefik', traefikValues(props)),
    });
    this.platform = scope;
    this.issuer = props.issuer;
    this.adminAccess = props.adminAccess;
    this.singleSignOn = props.singleSignOn;
    this.dashboardSubdomain = props.dashboard.subdomain;
    const accessIssue = adminAccessIssues(this.adminAccess, Boolean(this.singleSignOn))[0];
    if (accessIssue) throw new Error(`traefik: ${accessIssue.message}`);
    this.requestCapacity('proxy', replicas, props.resources.requests);
    // The tunnel (cloudflared) depends on Traefik and connects to websecure.
    this.serveClients({ port: ENTRY_POINTS.websecure.port, podSelector: TRAEFIK_POD_LABELS });
    // The LoadBalancer/NodePort forwards the LAN's and the internet's clients to both entry points.
    this.servePublic(
      { port: ENTRY_POINTS.web.port, podSelector: TRAEFIK_POD_LABELS },
      { port: ENTRY_POINTS.websecure.port, podSelector: TRAEFIK_POD_LABELS },
    );
    this.addMonitoring();
    this.callApiServer(TRAEFIK_POD_LABELS, 'Traefik watches its IngressRoutes, Middlewares, Services and EndpointSlices');
    const auth = this.adminAccess.forwardAuth;
    if (auth) {
      this.allowEgress({
        name: 'forward-auth',
        podSelector: TRAEFIK_POD_LABELS,
        to: urlEgressTarget(auth.address),
        reason: 'Traefik asks the forward-auth server about every request to an admin UI',
      });
    }
  }

  /** Hosts routed so far (all of them once synth has called routeExposures). */
  get routedHosts(): readonly RoutedHost[] {
    return this.routed;
  }

  /** Routes the dashboard and every exposure, and adds the checkpoint (the ordering pass makes it depend on the exposing services). */
  routeExposures(exposures: readonly ServiceExposure[]): void {
    if (this.checkpoint) throw new Error('traefik: exposures are routed once');
    this.addRoute(this.dashboardSubdomain, this.namespaceName, 'admin', {
      name: 'api@internal',
      kind: IngressRouteSpecRoutesServicesKind.TRAEFIK_SERVICE,
    });
    for (const { service, exposure } of exposures) {
      const taken = this.routed.find((r) => r.host === this.platform.hostname(exposure.subdomain));
      if (taken) throw new Error(`${service.serviceName}: subdomain ${exposure.subdomain} is already routed (${taken.certificate})`);
      if (exposure.signIn === 'sso' && !this.singleSignOn) throw new Error(`${service.serviceName}: ${exposure.subdomain} is an sso host, but no single sign-on service is enabled`);
      this.addRoute(
        exposure.subdomain,
        service.namespaceName,
        routeAccess(exposure.admin, exposure.signIn, this.singleSignOn !== undefined && exposure.ownOidcLogin === true && isOidcLoginService(service)),
        { name: exposure.serviceName, port: exposure.servicePort, kind: IngressRouteSpecRoutesServicesKind.SERVICE, scheme: exposure.backendScheme },
        exposure.hiddenPaths,
      );
    }
    this.addCheckpoint();
  }

  /**
   * The IngressRoute, its middlewares and its Certificate, all in `namespace`: middlewares are
   * referenced without a namespace, so the provider's allowCrossNamespace stays false. An admin
   * host gets the allow-list (if any), then forward-auth to the single sign-on service or else
   * the configured server; an `sso` host gets the single sign-on service's forward-auth.
   */
  private addRoute(subdomain: string, namespace: string, access: RouteAccess, backend: RouteBackend, hiddenPaths: readonly string[] = []): void {
    const admin = access === 'admin' || access === 'admin-own-login';
    const host = this.platform.hostname(subdomain);
    const match = [`Host(\`${host}\`)`, ...hiddenPaths.map((path) => `!PathPrefix(\`${path}\`)`)].join(' && ');
    const labels = this.labelsFor('route');
    const middleware = (suffix: string, spec: ConstructorParameters<typeof Middleware>[2]['spec']) => {
      const name = `${subdomain}-${suffix}`;
      new Middleware(this, `${subdomain}-${suffix}`, { metadata: { name, namespace, labels }, spec });
      return { name };
    };
    const middlewares = [middleware('security-headers', { headers: { ...SECURITY_HEADERS } })];
    // Admin hosts sign in through the single sign-on service where there is one.
    const singleSignOn = access === 'sso' || (access === 'admin' && this.singleSignOn !== undefined);
    if (admin) {
      // No ipStrategy: the allow-list reads the connection's source address, which a client
      // cannot forge with X-Forwarded-For.
      if (this.adminAccess.allowList.length > 0) middlewares.push(middleware('allow-list', { ipAllowList: { sourceRange: [...this.adminAccess.allowList] } }));
      const auth = this.adminAccess.forwardAuth;
      if (auth && !this.singleSignOn) {
        middlewares.push(
          middleware('forward-auth', {
            forwardAuth: { address: auth.address, trustForwardHeader: false, authResponseHeaders: auth.authResponseHeaders?.length ? [...auth.authResponseHeaders] : undefined },
          }),
        );
      }
    }
    if (singleSignOn) middlewares.push(this.signInMiddleware(subdomain, host, admin, middleware));
    const secretName = `${subdomain}-tls`;
    new Certificate(this, `${subdomain}-certificate`, {
      metadata: { name: subdomain, namespace, labels },
      spec: {
        secretName,
        dnsNames: [host],
        issuerRef: { group: 'cert-manager.io', kind: 'ClusterIssuer', name: this.issuer },
        privateKey: { algorithm: CertificateSpecPrivateKeyAlgorithm.ECDSA, size: 256, rotationPolicy: CertificateSpecPrivateKeyRotationPolicy.ALWAYS },
      },
    });
    const service: IngressRouteSpecRoutesServices = {
      name: backend.name,
      kind: backend.kind,
      port: backend.port === undefined ? undefined : IngressRouteSpecRoutesServicesPort.fromNumber(backend.port),
      scheme: backend.scheme,
    };
    new IngressRoute(this, `${subdomain}-route`, {
      metadata: { name: subdomain, namespace, labels },
      spec: {
        entryPoints: ['websecure'],
        routes: [{ kind: IngressRouteSpecRoutesKind.RULE, match, middlewares, services: [service] }],
        tls: { secretName },
      },
    });
    this.routed.push({ host, admin, certificate: `${namespace}/${subdomain}`, ...(singleSignOn && { singleSignOn }) });
    this.refusals.set(host, this.expectedRefusal(access));
  }

  /**
   * Forward-auth to the single sign-on service, whose headers (who signed in) reach the backend.
   * Traefik sets X-Forwarded-Host and -Uri itself (trustForwardHeader false: a client cannot
   * forge them); the service tells the hosts apart by them. Its own paths on the host (the
   * login's callback) are routed to it, in its namespace, ahead of the host's route; on an admin
   * host behind the same allow-list as the host's route, a copy in that namespace (middlewares
   * are referenced within their namespace only: allowCrossNamespace stays false).
   */
  private signInMiddleware(
    subdomain: string,
    host: string,
    admin: boolean,
    middleware: (suffix: string, spec: ConstructorParameters<typeof Middleware>[2]['spec']) => { name: string },
  ): { name: string } {
    const { address, authResponseHeaders, ownPaths } = this.singleSignOn!.forwardAuth;
    const signIn = middleware('sign-in', { forwardAuth: { address, trustForwardHeader: false, authResponseHeaders: [...authResponseHeaders] } });
    const match = `Host(\`${host}\`) && PathPrefix(\`${ownPaths.pathPrefix}/\`)`;
    const labels = this.labelsFor('route');
    const allowList = admin && this.adminAccess.allowList.length > 0 ? `${subdomain}-sign-in-allow-list` : undefined;
    if (allowList) {
      new Middleware(this, allowList, {
        metadata: { name: allowList, namespace: ownPaths.namespace, labels },
        spec: { ipAllowList: { sourceRange: [...this.adminAccess.allowList] } },
      });
    }
    new IngressRoute(this, `${subdomain}-sign-in-route`, {
      metadata: { name: `${subdomain}-sign-in`, namespace: ownPaths.namespace, labels },
      spec: {
        entryPoints: ['websecure'],
        routes: [
          {
            kind: IngressRouteSpecRoutesKind.RULE,
            match,
            // Ahead of the host's own route, whatever the length of its rule (Traefik's default priority).
            priority: SIGN_IN_ROUTE_PRIORITY,
            middlewares: allowList ? [{ name: allowList }] : undefined,
            services: [{ name: ownPaths.serviceName, kind: IngressRouteSpecRoutesServicesKind.SERVICE, port: IngressRouteSpecRoutesServicesPort.fromNumber(ownPaths.servicePort) }],
          },
        ],
        // The host's certificate is in its own namespace; Traefik picks it by SNI from every route's.
        tls: {},
      },
    });
    return signIn;
  }

  /** Traefik's Prometheus entry point on every pod; 5xx answers per backend service. */
  private addMonitoring(): void {
    this.exposeMetrics({ name: 'proxy', kind: 'pod', selector: PROXY_METRICS.selector, port: PROXY_METRICS.port });
    const requests = (filter = '') => `sum by (service) (rate(traefik_service_requests_total{${SERVICE_LABEL}="${this.serviceName}"${filter}}[5m]))`;
    this.addAlerts({
      alert: 'TraefikServiceErrors',
      expr: `${requests(', code=~"5.."')} / ${requests()} > ${ERROR_RATIO}\nand ${requests()} > ${ERROR_MIN_RATE}`,
      for: '10m',
      severity: 'warning',
      summary: `{{ $labels.service }} answers more than ${ERROR_RATIO * 100}% of its requests through Traefik with 5xx`,
      description: '502/503/504 mean Traefik cannot reach the backend (pods down, no endpoints, NetworkPolicy); other 5xx come from the backend itself.',
    });
    this.addDashboard(DASHBOARD);
  }

  /**
   * Every Certificate Ready, then every host answers through Traefik's Service with its own
   * SNI and Host header. "Routed": an HTTP answer that is not Traefik's 404 (no router for the
   * host; the check asks for `/`, which every exposed UI serves or redirects) and not
   * 502/503/504 (a router, but no reachable backend). Protected hosts must refuse the
   * checkpoint, whose pod address is never allow-listed and which never signs in: 403 from the
   * allow-list; a redirect to the single sign-on service's login host from its forward-auth;
   * with another forward-auth server alone, any answer but 2xx.
   */
  private expectedRefusal(access: RouteAccess): RouteRefusal {
    if (access === 'public') return 'public';
    if (access !== 'sso' && this.adminAccess.allowList.length > 0) return 'forbidden';
    if (access === 'sso' || (access === 'admin' && this.singleSignOn)) return 'sign-in';
    // The allow-list is empty: a forward-auth server of the config, or the UI's own login.
    return access === 'admin' ? 'unauthenticated' : 'public';
  }

  private addCheckpoint(): void {
    const certificates = this.routed.map((r) => r.certificate);
    new Checkpoint(this, 'checkpoint', {
      description: 'every Certificate is Ready and every exposed host is routed through Traefik (admin hosts refuse unlisted clients)',
      image: IMAGES.curl,
      // The certificates' one wait (its tries shared by all of them), then the routes' rounds with
      // a last round of every host at curl's limit, after the pod started: the report comes first.
      scriptSeconds: conditionWaitSeconds(certificates.length) + eachUntilOkSeconds(ROUTE_CHECK_SECONDS, this.routed.length, ROUTE_CALL_MAX_SECONDS),
      readsCluster: [
        { apiGroups: ['cert-manager.io'], resources: ['certificates'], verbs: ['get'], resourceNames: [...new Set(certificates.map((c) => c.split('/')[1]))].sort() },
      ],
      env: {
        TRAEFIK: WEBSECURE_ADDRESS,
        CERTIFICATES: certificates.join(' '),
        ROUTES: this.routed.map((r) => `${r.host}=${this.refusals.get(r.host)}`).join(' '),
        // Where an unauthenticated client of a single sign-on host is sent.
        LOGIN_HOST: this.singleSignOn?.forwardAuth.loginHost ?? '',
        // Staging certificates are not publicly trusted: their hosts are checked without verification.
        CURL_TLS: this.issuer === 'letsencrypt-production' ? '' : '--insecure',
        ROUTE_CHECKS: String(ROUTE_CHECKS),
        ROUTE_CHECK_SECONDS: String(ROUTE_CHECK_SECONDS),
      },
      script: CHECKPOINT_SCRIPT,
    });
  }
}

/**
 * The routes are asked in rounds, 10 s apart, until each answers as its access expects
 * (eachUntilOk): at most this many rounds, and for at most ROUTE_CHECK_SECONDS (a round of hosts
 * that do not answer takes 10 s each). Asked host after host instead, two failing hosts would
 * outlast the Job's deadline before the summary.
 */
const ROUTE_CHECKS = 30;
const ROUTE_CHECK_SECONDS = 300;
/** curl's limit for one route's answer. */
const ROUTE_CALL_MAX_SECONDS = 10;

/**
 * How the checkpoint expects a route to answer a client that is neither allow-listed nor signed
 * in: `public` (the UI), `forbidden` (the allow-list's 403, which comes first), `sign-in` (the
 * single sign-on service's redirect to its login host), `unauthenticated` (a forward-auth
 * server's refusal: anything but 2xx).
 */
type RouteRefusal = 'public' | 'forbidden' | 'sign-in' | 'unauthenticated';

const CHECKPOINT_SCRIPT = `for certificate in $CERTIFICATES; do
  kube_condition "/apis/cert-manager.io/v1/namespaces/\${certificate%%/*}/certificates/\${certificate#*/}" Ready
  echo "Certificate $certificate is Ready"
done
# Prints "ok", or what is wrong with answer $1 (status and redirect target) for a route expecting $2.
verdict() {
  code=\${1%% *}
  location=\${1#* }
  case "$code" in
    000) echo "no answer from Traefik"; return ;;
    404) echo "no router for the host (Traefik's 404)"; return ;;
    502|503|504) echo "routed, but the backend does not answer ($code)"; return ;;
  esac
  case "$2:$code" in
    public:*|forbidden:403|unauthenticated:[!2]??) echo ok ;;
    sign-in:30[12378])
      case "$location" in
        "https://$LOGIN_HOST/"*) echo ok ;;
        *) echo "a single sign-on host redirected to $location, not to https://$LOGIN_HOST/" ;;
      esac ;;
    sign-in:*) echo "a single sign-on host answered $code to a client that has not signed in, not a redirect to https://$LOGIN_HOST/" ;;
    *) echo "a protected host ($2) answered $code to a client outside the allow-list" ;;
  esac
}
${eachUntilOk({
  items: 'ROUTES',
  split: 'host=${item%=*}; access=${item#*=}',
  ask: `answer=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' --max-time ${ROUTE_CALL_MAX_SECONDS} $CURL_TLS --connect-to "$host:443:$TRAEFIK" "https://$host/") || answer='000 '
    result=$(verdict "$answer" "$access")`,
  passed: 'echo "$host ($access) routed: $answer"',
  report: '$host ($access): $result',
  summary: '$failed host(s) not routed',
  rounds: 'ROUTE_CHECKS',
  seconds: 'ROUTE_CHECK_SECONDS',
})}`;

function traefikValues(props: TraefikProps): TraefikValues {
  const spread = props.replicas > 1;
  return {
    deployment: { replicas: props.replicas },
    // Pods on different nodes where possible, and a node drain never takes all of them.
    podDisruptionBudget: spread ? { enabled: true, maxUnavailable: 1 } : undefined,
    // Spread into a plain object: the chart's values type takes any mapping, not the k8s.Affinity interface.
    affinity: spread ? { ...spreadOverNodes(TRAEFIK_POD_LABELS) } : undefined,
    resources: props.resources,
    // IngressRoutes only: no Ingress provider, IngressClass or Gateway.
    providers: {
      kubernetesCRD: { enabled: true, allowCrossNamespace: false, allowExternalNameServices: false },
      kubernetesIngress: { enabled: false },
    },
    ingressClass: { enabled: false },
    gateway: { enabled: false },
    gatewayClass: { enabled: false },
    // The dashboard only through its IngressRoute on websecure (admin access); never api.insecure.
    api: { dashboard: true },
    ingressRoute: { dashboard: { enabled: false } },
    global: { checkNewVersion: false, sendAnonymousUsage: false },
    ports: {
      web: {
        nodePort: props.nodePorts?.web,
        http: { redirections: { entryPoint: { to: 'websecure', scheme: 'https', permanent: true } } },
      },
      websecure: { nodePort: props.nodePorts?.websecure, http: { tls: { enabled: true } } },
    },
    service: {
      // Local: kube-proxy delivers to a Traefik pod on the receiving node without SNAT, so the
      // allow-list sees the client's address (docs/adr/0011).
      spec: { type: props.serviceType, externalTrafficPolicy: 'Local' },
      annotations: props.loadBalancerIP ? { 'metallb.io/loadBalancerIPs': props.loadBalancerIP } : {},
    },
    metrics: { prometheus: { entryPoint: 'metrics', addEntryPointsLabels: true, addServicesLabels: true } },
    // Access logs (JSON, request headers dropped) go to Loki with every pod's logs.
    accessLog: { enabled: true, format: 'json' },
    // The chart's defaults keep: uid/gid 65532, non-root, read-only root filesystem, all
    // capabilities dropped, no privilege escalation, seccomp RuntimeDefault.
  };
}

export const traefikEntry = defineService({
  name: 'traefik',
  settings: { key: 'traefik', schema: traefikSettings },
  names: [TRAEFIK_NAMESPACE],
  subdomains: (settings) => [{ path: ['dashboard', 'subdomain'], subdomain: settings.dashboard.subdomain }],
  requires: () => [{ entry: certManagerEntry, path: ['enabled'], reason: 'every route is served with a publicly signed certificate' }],
  check: (settings, env) => [...adminAccessIssues(settings.adminAccess, env.singleSignOn), ...issuerIssues(settings.issuer, env.singleSignOn)],
  upstreamTargets: { 'traefik-proxy': PROXY_METRICS },
  build: (platform, settings, context) =>
    new Traefik(platform, {
      ...settings,
      certManager: context.required(certManagerEntry),
      // Created before Traefik where an environment has one (its catalog entry comes first).
      singleSignOn: context.services.find(isSingleSignOnProvider),
    }),
});
