/**
 * Authentik (a foundation, like the secrets it builds on): the platform's single sign-on (docs/adr/0037). The `authentik`
 * chart — its server (UI, API, flows, the embedded outpost that answers Traefik's forward-auth)
 * and its worker (background tasks, blueprints) — on a PostgreSQL cluster of its own run by
 * CloudNativePG, its secret key generated in Vault. It is reached at `<subdomain>.<domain>`, the
 * login page, public.
 *
 * Its configuration is code: blueprints generated here (ConfigMaps the chart mounts into the
 * worker, which applies them) declare the `admins` and `viewers` groups, MFA in the
 * authentication flow, one proxy provider and application per host Traefik protects with it
 * (`sso` hosts, and admin hosts), bound to the embedded outpost, and one OAuth2/OpenID provider
 * and application per registered OIDC client (Argo CD, Grafana, Vault ...), whose client secret
 * is the consumer's own generated value.
 */
import { createHash } from 'node:crypto';
import { k8s } from 'cdk8s-plus-34';
import type { AuthentikValues } from '../imports/helm/authentik';
import { defineService, ownSubdomain } from '../lib/model/catalog';
import { Checkpoint, CHECKPOINT_PODS, type CurlRetry, curlRetryOptions, curlRetrySeconds, eachUntilOk, eachUntilOkSeconds, retrySeconds } from '../lib/model/checkpoint';
import { bool, resourcesSchema, subdomain } from '../lib/model/config/primitives';
import { z } from '../lib/model/config/zod';
import type { DatabaseProvider, DatabaseRef } from '../lib/model/databases';
import type { Exposure, RoutedHost, RouteFollower } from '../lib/model/exposure';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import type { SecretRef } from '../lib/model/secrets';
import { HomelabService } from '../lib/model/service';
import {
  type ForwardAuthEndpoint,
  OIDC_CLIENT_SECRET_KEY,
  type OidcClientRequest,
  type OidcIssuer,
  type SignInProtection,
  type SingleSignOnProvider,
} from '../lib/model/single-sign-on';
import type { StorageProvider } from '../lib/model/storage';
import { AUTHENTIK_GROUPS, type Blueprint, blueprintText, CHECKPOINT_ACCOUNT, forwardAuthBlueprint, OIDC_SCOPES, oidcClientBlueprint, platformBlueprint } from './authentik-blueprints';
import { cloudnativePgEntry, databaseClusterSchema } from './cloudnative-pg';
import { externalSecretsEntry } from './external-secrets';
import { helmRelease } from './helm-release';
import { longhornEntry, longhornStorageClassIssues } from './longhorn';
import { traefikEntry, WEBSECURE_ADDRESS } from './traefik';
import { IMAGES } from './versions';
import { vaultEntry } from './vault';

export const DEFAULT_AUTHENTIK_SERVER_RESOURCES = { requests: { cpu: '100m', memory: '512Mi' }, limits: { cpu: '1', memory: '1Gi' } };
export const DEFAULT_AUTHENTIK_WORKER_RESOURCES = { requests: { cpu: '100m', memory: '384Mi' }, limits: { cpu: '1', memory: '1Gi' } };

/** `services.authentik`. */
export const authentikSettings = z
  .strictObject({
    enabled: bool.default(false),
    /** The login page and the API at `<subdomain>.<domain>` (public: it is where everyone signs in). */
    subdomain: subdomain.default('auth'),
    /** Its PostgreSQL cluster (CloudNativePG): users, groups, sessions, every provider and flow. */
    database: databaseClusterSchema.prefault({}),
    resources: z
      .strictObject({
        server: resourcesSchema.default(DEFAULT_AUTHENTIK_SERVER_RESOURCES),
        worker: resourcesSchema.default(DEFAULT_AUTHENTIK_WORKER_RESOURCES),
      })
      .prefault({}),
  })
  .prefault({});

export type AuthentikSettings = z.output<typeof authentikSettings>;

export const AUTHENTIK_NAMESPACE = 'authentik';
/**
 * The chart's objects for release `authentik` (authentik 2026.2.3 templates/_common.tpl: the
 * fullname is the release name, which contains the chart name; selector labels name, instance
 * and component `server`/`worker`; server/service.yaml: port 80 → container port `http` 9000).
 */
const SERVER_SERVICE = 'authentik-server';
const SERVER_SERVICE_PORT = 80;
const HTTP_PORT = 'http';
const podLabels = (component: 'server' | 'worker') =>
  ({ 'app.kubernetes.io/name': 'authentik', 'app.kubernetes.io/instance': 'authentik', 'app.kubernetes.io/component': component }) as const;
const SERVER_POD_LABELS = podLabels('server');
const WORKER_POD_LABELS = podLabels('worker');
const CHART_SOURCE = 'authentik 2026.2.3 templates/_common.tpl authentik.selectorLabels, templates/{server,worker}/deployment.yaml ports';
/** In-cluster base URL of the server (UI, API, embedded outpost). */
const SERVER_URL = `http://${SERVER_SERVICE}.${AUTHENTIK_NAMESPACE}.svc`;

/**
 * The embedded outpost's paths, served by the server on every host (authentik docs "Forward auth
 * with Traefik": the forward-auth endpoint `/outpost.goauthentik.io/auth/traefik`, and the
 * `/outpost.goauthentik.io/` prefix routed to the outpost on each protected host).
 */
const OUTPOST_PATH_PREFIX = '/outpost.goauthentik.io';
/** The headers of the outpost's answer Traefik copies to the request (authentik docs "Forward auth with Traefik"). */
export const AUTHENTIK_RESPONSE_HEADERS = [
  'X-authentik-username',
  'X-authentik-groups',
  'X-authentik-entitlements',
  'X-authentik-email',
  'X-authentik-name',
  'X-authentik-uid',
  'X-authentik-jwt',
  'X-authentik-meta-jwks',
  'X-authentik-meta-outpost',
  'X-authentik-meta-provider',
  'X-authentik-meta-app',
  'X-authentik-meta-version',
] as const;

/** The generated Secret the chart reads its environment from (`authentik.existingSecret`): every key is an authentik setting. */
const AUTHENTIK_KEYS_SECRET = 'authentik-keys';
const SECRET_KEY = 'AUTHENTIK_SECRET_KEY';
const BOOTSTRAP_PASSWORD = 'AUTHENTIK_BOOTSTRAP_PASSWORD';
/** The generated key of the checkpoint account's API token: the worker's blueprint reads it with `!Env`, the checkpoint from a mounted file. */
export const CHECKPOINT_TOKEN_SECRET = 'authentik-checkpoint-token';
const CHECKPOINT_TOKEN_KEY = 'token';
/** The worker's variable holding it (not AUTHENTIK_*: those are authentik's settings). */
const CHECKPOINT_TOKEN_VARIABLE = 'HOMELAB_CHECKPOINT_TOKEN';
/** Where the checkpoint finds it: a Secret volume, so that the key is in no environment the probe's tools could print. */
const CHECKPOINT_TOKEN_DIRECTORY = '/var/run/secrets/authentik';
/** How often the checks ask (10 s apart: five minutes), from their Job's env so that a test can ask less. */
const CHECKS = 30;
const PAUSE_SECONDS = 10;
/** curl's limit for one answer. */
const CALL_MAX_SECONDS = 10;
/** The checkpoint's wait for the server's readiness: five minutes of tries, each within curl's limit. */
const READY_CALL: CurlRetry = { retries: CHECKS, delaySeconds: PAUSE_SECONDS, maxSeconds: CALL_MAX_SECONDS };
/** How long the checkpoint asks, in rounds, for the blueprints not applied yet. */
const BLUEPRINT_CHECK_SECONDS = 300;

const GROUPS_CLAIM = 'groups';

/** The blueprint ConfigMaps (the chart mounts each into the worker at /blueprints/mounted/cm-<name>/). */
const blueprintConfigMap = (name: string) => `authentik-blueprint-${name}`;
/** The file of a blueprint in its ConfigMap: only keys ending in `.yaml` are discovered (values.yaml `blueprints.configMaps`). */
const BLUEPRINT_KEY = 'blueprint.yaml';

/** The worker's environment variable holding a client's secret, read by its blueprint with `!Env` (not AUTHENTIK_*: those are authentik's settings). */
export function clientSecretVariable(clientId: string): string {
  return `HOMELAB_OIDC_${clientId.toUpperCase().replace(/-/g, '_')}_CLIENT_SECRET`;
}

export type AuthentikProps = Omit<AuthentikSettings, 'enabled'> & {
  /** Runs its database. */
  readonly databases: DatabaseProvider;
  /** The database volumes. */
  readonly storage: StorageProvider;
};

export class Authentik extends HomelabService implements SingleSignOnProvider, RouteFollower {
  readonly forwardAuth: ForwardAuthEndpoint;
  readonly loginHost: string;
  readonly database: DatabaseRef;
  private readonly values: AuthentikValues & { blueprints: { configMaps: string[] }; worker: { env: k8s.EnvVar[] } };
  /** Each mounted blueprint's name and the hash authentik records once it has applied that file's content. */
  private readonly blueprints: { readonly name: string; readonly hash: string }[] = [];
  /** The registered OIDC clients' ids: each is registered once. */
  private readonly clientIds = new Set<string>();
  private readonly checkpointToken: SecretRef;

  constructor(scope: Platform, props: AuthentikProps) {
    super(scope, 'authentik', props, {
      // A foundation, like the secrets it builds on: the apps it signs users in for (automation
      // and later layers) hand it their exposures, and with sequential waves may not wait for a
      // later layer (ADR 23).
      layer: Layer.FOUNDATION,
      namespace: AUTHENTIK_NAMESPACE,
    });
    this.loginHost = scope.hostname(props.subdomain);
    this.forwardAuth = {
      address: `${SERVER_URL}${OUTPOST_PATH_PREFIX}/auth/traefik`,
      authResponseHeaders: AUTHENTIK_RESPONSE_HEADERS,
      loginHost: this.loginHost,
      ownPaths: { pathPrefix: OUTPOST_PATH_PREFIX, namespace: AUTHENTIK_NAMESPACE, serviceName: SERVER_SERVICE, servicePort: SERVER_SERVICE_PORT },
    };
    this.database = this.needDatabase(props.databases, { name: 'authentik', ...props.database, storageClass: props.storage.storageClass(props.database.storageClass), scratchStorageClass: props.storage.scratchStorageClass });
    this.needSecret(
      AUTHENTIK_KEYS_SECRET,
      [SECRET_KEY, BOOTSTRAP_PASSWORD],
      `${SECRET_KEY} signs sessions and cookies; ${BOOTSTRAP_PASSWORD} is the first password of the administrator akadmin (read it from Vault for the first login); generated in Vault by its configurator`,
      { generated: true },
    );
    this.checkpointToken = this.needSecret(
      CHECKPOINT_TOKEN_SECRET,
      [CHECKPOINT_TOKEN_KEY],
      `the API token of authentik's service account ${CHECKPOINT_ACCOUNT}, which may only view blueprint instances: the checkpoint reads the blueprints' status with it; generated in Vault by its configurator, nothing to do`,
      { generated: true },
    );
    this.values = authentikValues(props, this.database);
    this.values.worker.env.push(this.checkpointToken.envVar(CHECKPOINT_TOKEN_VARIABLE, CHECKPOINT_TOKEN_KEY));
    this.installChart(helmRelease('authentik', this.values));
    this.requestCapacity('server', 1, props.resources.server.requests);
    this.requestCapacity('worker', 1, props.resources.worker.requests);
    // Traefik (forward-auth, the login page) and the OIDC clients connect to the server.
    this.serveClients({ port: HTTP_PORT, podSelector: SERVER_POD_LABELS });
    this.expose({
      subdomain: props.subdomain,
      serviceName: SERVER_SERVICE,
      servicePort: SERVER_SERVICE_PORT,
      podPort: HTTP_PORT,
      podSelector: SERVER_POD_LABELS,
      admin: false,
      // The metrics are on their own port; the OIDC discovery checks ask for the host through Traefik.
      checkedFrom: CHECKPOINT_PODS,
    });
    this.addBlueprint('platform', platformBlueprint(CHECKPOINT_TOKEN_VARIABLE));
    this.addMonitoring();
  }

  /**
   * `sso` hosts are protected by the router's forward-auth to the embedded outpost: their proxy
   * providers follow from the routed hosts (`followRoutes`). An `oidc` exposure's app logs users
   * in itself: it registers its client with `registerOidcClient`, as the platform's own UIs do.
   */
  signInFor(service: HomelabService, exposure: Exposure, protection: SignInProtection): void {
    if (exposure.signIn !== protection) {
      throw new Error(`${service.serviceName}: the exposure ${exposure.subdomain} must say signIn: ${protection}, so that the router protects it`);
    }
  }

  /**
   * An OAuth2/OpenID provider and application for the client, in a blueprint of its own. The
   * client secret is the consumer's own generated value: a Secret here rendered from it (the
   * secret backend lets Authentik read exactly that value), read by the worker into an
   * environment variable and by the blueprint with `!Env`. Redirect URIs match strictly.
   */
  registerOidcClient(service: HomelabService, request: OidcClientRequest): OidcIssuer {
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(request.clientId)) throw new Error(`${service.serviceName}: OIDC client id "${request.clientId}" is not a DNS label`);
    if (this.clientIds.has(request.clientId)) throw new Error(`${service.serviceName}: OIDC client ${request.clientId} is registered twice`);
    if (request.redirectUris.length === 0) throw new Error(`${service.serviceName}: OIDC client ${request.clientId} has no redirect URI`);
    if (!request.clientSecret.keys.includes(OIDC_CLIENT_SECRET_KEY)) {
      throw new Error(`${service.serviceName}: the Secret ${request.clientSecret.secretName} of OIDC client ${request.clientId} has no key ${OIDC_CLIENT_SECRET_KEY}`);
    }
    this.clientIds.add(request.clientId);
    const secret = this.needSecret(`authentik-oidc-${request.clientId}`, [OIDC_CLIENT_SECRET_KEY], `the client secret of ${request.displayName}'s OIDC client, rendered from ${service.serviceName}'s generated value; nothing to do`, {
      template: {
        inputs: [{ variable: 'secret', from: request.clientSecret.need, key: OIDC_CLIENT_SECRET_KEY }],
        data: { [OIDC_CLIENT_SECRET_KEY]: '{{ index . "secret" }}' },
      },
    });
    const variable = clientSecretVariable(request.clientId);
    this.values.worker.env.push(secret.envVar(variable, OIDC_CLIENT_SECRET_KEY));
    this.addBlueprint(`oidc-${request.clientId}`, oidcClientBlueprint(request, variable));
    const issuer: OidcIssuer = {
      issuerUrl: `https://${this.loginHost}/application/o/${request.clientId}/`,
      scopes: OIDC_SCOPES,
      groupsClaim: GROUPS_CLAIM,
      adminGroup: AUTHENTIK_GROUPS.admins,
      viewerGroup: AUTHENTIK_GROUPS.viewers,
      // One set for every provider, unlike the issuer (authentik/providers/oauth2/urls.py: the
      // `authorize/`, `token/` and `userinfo/` routes under /application/o/; the provider's
      // "setup URLs" in its API show the same).
      endpoints: {
        authorization: `https://${this.loginHost}/application/o/authorize/`,
        token: `https://${this.loginHost}/application/o/token/`,
        userinfo: `https://${this.loginHost}/application/o/userinfo/`,
      },
    };
    this.addEndToEndCheck(`authentik-oidc-${request.clientId}`, {
      description: `the discovery document of OIDC client ${request.clientId} answers through Traefik with issuer ${issuer.issuerUrl}`,
      image: IMAGES.curl,
      scriptSeconds: retrySeconds(CHECKS, CALL_MAX_SECONDS, PAUSE_SECONDS),
      env: { HOST: this.loginHost, TRAEFIK: WEBSECURE_ADDRESS, ISSUER: issuer.issuerUrl, CHECKS: String(CHECKS) },
      script: DISCOVERY_CHECK_SCRIPT,
    });
    return issuer;
  }

  /**
   * The proxy providers of the hosts the router protects with the embedded outpost, one
   * application each (admin hosts for the `admins` group, `sso` hosts for both groups), bound to
   * the outpost; then the checkpoint, which knows every blueprint.
   */
  followRoutes(hosts: readonly RoutedHost[]): void {
    if (this.checkpoint) throw new Error('authentik: routes are followed once');
    this.addBlueprint('forward-auth', forwardAuthBlueprint(hosts.filter((h) => h.singleSignOn), this.loginHost));
    this.addCheckpoint();
  }

  private addBlueprint(name: string, blueprint: Blueprint): void {
    const configMap = blueprintConfigMap(name);
    const text = blueprintText(blueprint);
    new k8s.KubeConfigMap(this, `blueprint-${name}`, {
      metadata: { name: configMap, labels: this.labelsFor('blueprint') },
      data: { [BLUEPRINT_KEY]: text },
    });
    this.values.blueprints.configMaps.push(configMap);
    this.blueprints.push({ name: blueprint.metadata.name, hash: blueprintHash(text) });
  }

  /** Server and worker metrics (authentik's /metrics on port `metrics`, 9300). */
  private addMonitoring(): void {
    this.exposeMetrics({ name: 'server', kind: 'pod', selector: SERVER_POD_LABELS, port: 'metrics' });
    this.exposeMetrics({ name: 'worker', kind: 'pod', selector: WORKER_POD_LABELS, port: 'metrics' });
    this.addAlerts({
      alert: 'AuthentikUnavailable',
      expr: `kube_deployment_status_replicas_available{${SERVICE_LABEL}!="", namespace="${this.namespaceName}", deployment="${SERVER_SERVICE}"} < 1`,
      for: '5m',
      severity: 'critical',
      summary: 'authentik has no ready server: nobody can sign in, sso and admin hosts answer 5xx',
      description: 'Check the authentik-server pod in the authentik namespace: its database (authentik-db), the Secret authentik-keys, or a failing readiness probe.',
    });
  }

  /**
   * The server reports itself ready (database connected, migrations done), and the worker has
   * applied the current version of each of the platform's blueprints (their status and last
   * applied hash through the API, as the checkpoint's service account): groups, MFA, the
   * forward-auth providers and the OIDC clients are as synthesized.
   */
  private addCheckpoint(): void {
    const names = this.blueprints.map((b) => b.name);
    new Checkpoint(this, 'checkpoint', {
      description: `${SERVER_URL}/-/health/ready/ answers and the current versions of the blueprints ${names.join(', ')} are applied`,
      image: IMAGES.curl,
      // The readiness retries at curl's limit, then the blueprints' rounds with a last round of
      // every blueprint at the limit, after the pod started: the report comes first.
      scriptSeconds: curlRetrySeconds(READY_CALL) + eachUntilOkSeconds(BLUEPRINT_CHECK_SECONDS, this.blueprints.length, CALL_MAX_SECONDS),
      env: {
        SERVER: SERVER_URL,
        // One `<hash> <name>` a line: the hash has no space, the name may.
        BLUEPRINTS: this.blueprints.map((b) => `${b.hash} ${b.name}`).join('\n'),
        TOKEN_FILE: `${CHECKPOINT_TOKEN_DIRECTORY}/${CHECKPOINT_TOKEN_KEY}`,
        CHECKS: String(CHECKS),
        BLUEPRINT_CHECK_SECONDS: String(BLUEPRINT_CHECK_SECONDS),
      },
      volumes: [{ name: 'token', secret: { secretName: this.checkpointToken.secretName, items: [{ key: CHECKPOINT_TOKEN_KEY, path: CHECKPOINT_TOKEN_KEY }] } }],
      volumeMounts: [{ name: 'token', mountPath: CHECKPOINT_TOKEN_DIRECTORY, readOnly: true }],
      script: CHECKPOINT_SCRIPT,
    });
  }
}

/**
 * The hash authentik records as a blueprint instance's `last_applied_hash` once it has applied a
 * file: the SHA-512 of its content (goauthentik/authentik authentik/blueprints/v1/tasks.py
 * `apply_blueprint`, `sha512(blueprint_content.encode()).hexdigest()`; the file is the
 * ConfigMap's value byte for byte, and has no `!File` tags, whose files authentik would hash too).
 */
function blueprintHash(text: string): string {
  return createHash('sha512').update(text, 'utf8').digest('hex');
}

/**
 * Readiness, then the blueprints in rounds (eachUntilOk; asked one after another, two blueprints
 * that never applied outlasted the Job before their report), each by name (GET
 * /api/v3/managed/blueprints/?name=..., authentik's BlueprintInstance API, filtered by exact
 * name): it passes once its status is `successful` and its `last_applied_hash` is the mounted file's. An instance that is `successful` with another
 * hash is the last version applied: the worker applies a changed file within minutes (on the
 * file's change, or at its hourly discovery), so the check waits for it. The names are read
 * from the environment (no file: the root filesystem is read-only and nothing else is mounted
 * writable); the token from its mounted Secret.
 */
export const CHECKPOINT_SCRIPT = String.raw`curl -fsS -o /dev/null ${curlRetryOptions(READY_CALL)} "$SERVER/-/health/ready/"
echo "authentik server ready"
token=$(cat "$TOKEN_FILE")
# Sets result to "ok" where $answer shows the mounted version ($hash) applied, else to what it shows.
blueprint_state() {
  case "$answer" in
    *'"status":"successful"'*) case "$answer" in *"\"last_applied_hash\":\"$hash\""*) result=ok; return ;; esac ;;
  esac
  status='not found'
  applied=none
  case "$answer" in *'"status":"'*) status=${'$'}{answer#*'"status":"'}; status=${'$'}{status%%'"'*} ;; esac
  case "$answer" in *'"last_applied_hash":"'*) applied=${'$'}{answer#*'"last_applied_hash":"'}; applied=${'$'}{applied%%'"'*} ;; esac
  result="not applied (status: $status; last applied version $applied, mounted $hash; see System, Blueprints in authentik)"
}
${eachUntilOk({
  items: 'BLUEPRINTS',
  lines: true,
  split: 'hash=${item%% *}; name=${item#* }',
  ask: String.raw`query=$(printf '%s' "$name" | sed 's/ /%20/g')
    answer=$(curl -sS --max-time ${CALL_MAX_SECONDS} -H "Authorization: Bearer $token" "$SERVER/api/v3/managed/blueprints/?name=$query" | tr -d ' \n') || answer=''
    blueprint_state`,
  passed: 'echo "blueprint $name: applied"',
  report: 'blueprint $name: $result',
  summary: '$failed blueprint(s) not applied',
  rounds: 'CHECKS',
  seconds: 'BLUEPRINT_CHECK_SECONDS',
})}`;

/**
 * The discovery document through Traefik, as a client outside the cluster asks: 200 and the
 * expected issuer, over verified TLS as the OIDC clients' servers fetch it (a staging issuer is
 * refused next to the single sign-on service, so the certificate is publicly trusted).
 */
export const DISCOVERY_CHECK_SCRIPT = `path=\${ISSUER#https://$HOST}
tries=0
while :; do
  document=$(curl -fsS --max-time ${CALL_MAX_SECONDS} --connect-to "$HOST:443:$TRAEFIK" "https://$HOST\${path}.well-known/openid-configuration" | tr -d ' \\n') || document=''
  case "$document" in
    *"\\"issuer\\":\\"$ISSUER\\""*) echo "discovery document of $ISSUER answers"; exit 0 ;;
  esac
  tries=$((tries + 1))
  if [ "$tries" -ge "\${CHECKS:?unset (the Job sets it)}" ]; then echo "no discovery document with issuer $ISSUER at https://$HOST\${path}.well-known/openid-configuration" >&2; exit 1; fi
  sleep ${PAUSE_SECONDS}
done`;

function authentikValues(props: AuthentikProps, database: DatabaseRef): AuthentikValues & { blueprints: { configMaps: string[] }; worker: { env: k8s.EnvVar[] } } {
  const credentials = (key: string) => ({ valueFrom: { secretKeyRef: { name: database.credentialsSecret, key } } });
  // Restricted Pod Security: the image's user authentik (uid 1000) without extra privileges.
  const containerSecurityContext = {
    runAsNonRoot: true,
    runAsUser: 1000,
    runAsGroup: 1000,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
  return {
    authentik: {
      // The keys from the generated Secret. With an existing Secret the chart renders none of its
      // own (templates/secret.yaml), so the `authentik.*` settings would be lost: every other
      // setting is an environment variable below (authentik docs "Configuration").
      existingSecret: { secretName: AUTHENTIK_KEYS_SECRET },
    },
    global: {
      env: [
        { name: 'AUTHENTIK_ERROR_REPORTING__ENABLED', value: 'false' },
        { name: 'AUTHENTIK_DISABLE_UPDATE_CHECK', value: 'true' },
        { name: 'AUTHENTIK_DISABLE_STARTUP_ANALYTICS', value: 'true' },
        // No outpost integration with the cluster: the embedded outpost does forward-auth, and
        // everything authentik has is declared here (no Deployment it would create itself).
        { name: 'AUTHENTIK_OUTPOSTS__DISCOVER', value: 'false' },
        { name: 'AUTHENTIK_POSTGRESQL__HOST', value: database.host },
        { name: 'AUTHENTIK_POSTGRESQL__PORT', value: String(database.port) },
        { name: 'AUTHENTIK_POSTGRESQL__NAME', value: database.database },
        // Generated by CloudNativePG next to the pods (the Cluster's `<cluster>-app`).
        { name: 'AUTHENTIK_POSTGRESQL__USER', ...credentials('username') },
        { name: 'AUTHENTIK_POSTGRESQL__PASSWORD', ...credentials('password') },
      ],
    },
    blueprints: { configMaps: [] },
    server: {
      resources: props.resources.server,
      containerSecurityContext,
      // Pods are told apart by component: Prometheus scrapes each on `metrics` (no chart ServiceMonitor).
      metrics: { enabled: false },
    },
    worker: {
      resources: props.resources.worker,
      containerSecurityContext,
      env: [],
    },
    // Its subchart would create a ServiceAccount with a ClusterRole for outposts authentik deploys itself.
    serviceAccount: { create: false },
    postgresql: { enabled: false },
  };
}

export const authentikEntry = defineService({
  name: 'authentik',
  settings: { key: 'authentik', schema: authentikSettings },
  names: [AUTHENTIK_NAMESPACE],
  providesSingleSignOn: true,
  subdomains: ownSubdomain,
  requires: () => [
    { entry: cloudnativePgEntry, path: ['enabled'], reason: "CloudNativePG runs authentik's PostgreSQL database" },
    { entry: longhornEntry, path: ['enabled'], reason: 'the database volumes need Longhorn' },
    { entry: vaultEntry, path: ['enabled'], reason: 'Vault generates its secret key and the administrator\'s first password' },
    { entry: externalSecretsEntry, path: ['enabled'], reason: 'External Secrets delivers its keys and the OIDC clients\' secrets from Vault' },
    { entry: traefikEntry, path: ['enabled'], reason: 'Traefik routes its login page and asks it about every sso and admin request' },
  ],
  check: (settings, env) => longhornStorageClassIssues(env, ['database', 'storageClass'], settings.database.storageClass),
  upstreamTargets: {
    'authentik-server': { selector: SERVER_POD_LABELS, port: 'metrics', source: CHART_SOURCE },
    'authentik-worker': { selector: WORKER_POD_LABELS, port: 'metrics', source: CHART_SOURCE },
  },
  build: (platform, settings, context) =>
    new Authentik(platform, { ...settings, databases: context.required(cloudnativePgEntry), storage: context.required(longhornEntry) }),
});
