/**
 * What homelab.yaml may say about one of the operator's own apps (`apps.<name>`): the schema,
 * every default stated once. charts/custom-app.ts builds an app from it and checks what the
 * schema alone cannot (ports named by probes and exposures, volumes against replicas, single
 * sign-on) against the environment.
 */
import { z } from '../lib/model/config/zod';
import { CONFIG_FILE_BYTES, CONFIG_FILES_PER_CONFIGMAP, relativeFile, unreadFile } from '../lib/model/config/config-files';
import {
  absolutePath,
  bool,
  duration,
  envVarName,
  exactlyOneOf,
  expected,
  externalDestinations,
  intBetween,
  k8sName,
  matching,
  oneOf,
  pinnedImage,
  resourcesSchema,
  subdomain,
  volumeSize,
} from '../lib/model/config/primitives';
import { Layer } from '../lib/model/layers';
import { BASELINE_CAPABILITIES } from '../lib/model/pod-security';
import { PROTECTIONS } from '../lib/model/single-sign-on';

/** The layers an app can sit in (`waves: sequential`). */
const APP_LAYERS = [Layer.STORAGE, Layer.DATA_MESH, Layer.AI, Layer.OBSERVABILITY, Layer.AUTOMATION, Layer.SECURITY, Layer.NETWORKING] as const;

export const portName = z
  .string({ error: 'expected a port name' })
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, { error: 'expected a port name (lowercase letters, digits, "-")' })
  .max(15, { error: 'expected a port name of at most 15 characters' });

/** Why an app needs something the platform does not give by default: required, never empty. */
const reason = z.string(expected('a reason (why the app needs it)')).trim().min(1, expected('a reason (why the app needs it)'));

/**
 * One probe: exactly one of an HTTP GET on a port (2xx/3xx is healthy), a TCP connection to a
 * port, or a command in the container (exit 0). Timing as the kubelet takes it.
 */
const probeSchema = exactlyOneOf(
  {
    http: z
      .strictObject({
        /** One of the app's port names. */
        port: portName,
        path: absolutePath.default('/'),
        scheme: oneOf(['HTTP', 'HTTPS']).default('HTTP'),
      })
      .optional(),
    tcp: z.strictObject({ port: portName }).optional(),
    exec: z.strictObject({ command: z.array(z.string(expected('a string'))).min(1, expected('a command and its arguments')) }).optional(),
    initialDelaySeconds: intBetween(0, 3600).default(0),
    periodSeconds: intBetween(1, 3600).default(10),
    timeoutSeconds: intBetween(1, 600).default(5),
    failureThreshold: intBetween(1, 1000).default(3),
  },
  'http',
  'tcp',
  'exec',
);

export type ProbeSettings = z.output<typeof probeSchema>;

/**
 * The app's probes. A readiness probe is required (the Service sends traffic only to ready
 * pods, and a rollout waits for them), unless `none` says why the app has nothing to probe;
 * liveness (restart when it fails) and startup (the others wait for it: slow first starts)
 * are optional.
 */
const probesSchema = z.strictObject({
  readiness: probeSchema.optional(),
  liveness: probeSchema.optional(),
  startup: probeSchema.optional(),
  /** No probe at all, and why (e.g. a worker that serves nothing). */
  none: reason.optional(),
});

/**
 * Where a configuration file goes: an absolute path of named segments (no `.`/`..`, no trailing
 * slash), short enough that its ConfigMap key (the path with `/` replaced, charts/custom-app.ts
 * fileKey) stays within Kubernetes' 253 characters.
 */
const filePath = matching(/^(\/(?!\.\.)(?!\.(\/|$))[^/\s]+)+$/, 'an absolute path of a file such as "/config/configuration.yaml" (no "." segment or one starting with "..", no trailing slash)', 254);
/** A path prefix Traefik hides: the characters a PathPrefix rule and the check's shell take as they are. */
const hiddenPath = matching(/^\/[A-Za-z0-9._~/-]*$/, 'a path such as "/metrics" (letters, digits and . _ ~ / - only)', 1024);

/** A configuration file, mounted read-only from the app's ConfigMap at `path`. */
const fileSchema = exactlyOneOf(
  {
    /** Absolute path of the file in the container. */
    path: filePath,
    /** The file's text, inline. */
    content: z
      .string(expected('the file\'s text'))
      .refine((text) => Buffer.byteLength(text, 'utf8') <= CONFIG_FILE_BYTES, expected(`at most ${CONFIG_FILE_BYTES / 1024} KiB of text (a file next to homelab.yaml has the same limit)`))
      .optional(),
    /** A file next to homelab.yaml (a path relative to its folder), read when the config is loaded. */
    from: relativeFile.optional(),
  },
  'content',
  'from',
).transform(({ path, content, from }) => ({ path, ...(from !== undefined ? unreadFile(from) : { content: content! }) }));

export type AppFile = z.output<typeof fileSchema>;

const volumeSchema = z.strictObject({
  size: volumeSize,
  mountPath: absolutePath,
  /** @default Longhorn's default storage class */
  storageClass: k8sName.optional(),
});

/** One of the operator's own apps: `apps.<name>`. */
export const appSettings = z.strictObject({
  enabled: bool.default(true),
  image: pinnedImage,
  replicas: intBetween(0, 20).default(1),
  ports: z.record(portName, intBetween(1, 65535)).default({}),
  /** Replaces the image's entrypoint. @default the image's */
  command: z.array(z.string(expected('a string'))).min(1, expected('a command')).optional(),
  /** Arguments of the command. @default the image's */
  args: z.array(z.string(expected('a string'))).optional(),
  env: z.record(envVarName, z.string({ error: 'expected a string (quote numbers and booleans)' })).default({}),
  /**
   * Environment variables whose values are secret: keys of the Secret `<app>-env` in the
   * app's namespace, each read into the variable of the same name (charts/custom-app.ts).
   */
  secretEnv: z.array(envVarName).default([]),
  /** The app's data: a Longhorn volume (ReadWriteOnce: one replica, Recreate updates). */
  volume: volumeSchema.optional(),
  /** More Longhorn volumes by name (each the claim `<app>-<name>`), like `volume`. @default none */
  volumes: z.record(k8sName, volumeSchema).default({}),
  /** Configuration files mounted read-only (one ConfigMap); a change rolls the pods. @default none */
  files: z.array(fileSchema).max(CONFIG_FILES_PER_CONFIGMAP, expected(`at most ${CONFIG_FILES_PER_CONFIGMAP} files (one ConfigMap holds them all)`)).default([]),
  /** Routed at `<subdomain>.<domain>` through the router (Traefik). @default not exposed */
  expose: z
    .strictObject({
      subdomain,
      /** One of the app's port names. @default its first port */
      port: portName.optional(),
      /** How the host is protected (lib/model/single-sign-on.ts): `public`, `sso`, `oidc` or `admin`. */
      protection: oneOf(PROTECTIONS),
      /** Path prefixes the host does not serve (Traefik answers 404), e.g. the metrics path. @default none */
      hiddenPaths: z.array(hiddenPath).default([]),
      /**
       * With `oidc`, how the app is a client of the single sign-on service: the paths on its host
       * it sends users back to after they log in (its redirect URIs, matched exactly), and the
       * environment variables it reads the issuer URL, client id and client secret from (the
       * secret generated in Vault). Required with `oidc`, refused otherwise. @default none
       */
      oidc: z
        .strictObject({
          redirectPaths: z.array(hiddenPath).min(1, expected('at least one path the app sends users back to, e.g. "/auth/callback"')),
          variables: z
            .strictObject({
              issuerUrl: envVarName.default('OIDC_ISSUER_URL'),
              clientId: envVarName.default('OIDC_CLIENT_ID'),
              clientSecret: envVarName.default('OIDC_CLIENT_SECRET'),
            })
            .prefault({}),
        })
        .optional(),
    })
    .optional(),
  probes: probesSchema.optional(),
  resources: resourcesSchema,
  /** Some images only run as root; their namespace then gets the `baseline` Pod Security level. */
  runAsRoot: bool.default(false),
  /** Numeric user the container runs as when not root. */
  runAsUser: intBetween(1, 2147483647).default(1000),
  /** Numeric group the container runs as (and owns its volumes) when not root. @default runAsUser */
  runAsGroup: intBetween(1, 2147483647).optional(),
  /**
   * With runAsRoot, the only capabilities root keeps (all others dropped; without the list, the
   * runtime's defaults). A process that is not root never gets any. @default none
   */
  capabilities: z.array(oneOf(BASELINE_CAPABILITIES)).default([]),
  /**
   * Directories the app writes outside its volumes (each an emptyDir): with this list the root
   * filesystem is read-only. @default not set: a writable root filesystem
   */
  writablePaths: z.array(absolutePath).optional(),
  /** The node's network namespace (mDNS/SSDP discovery), with why: the namespace becomes `privileged`. @default off */
  hostNetwork: z.strictObject({ reason }).optional(),
  /** Host devices (a Zigbee or Z-Wave dongle), each with why: the container runs privileged. @default none */
  devices: z.array(z.strictObject({ path: absolutePath.refine((p) => p.startsWith('/dev/'), expected('a path under /dev/')), reason })).default([]),
  /** How a new version replaces the pods. @default Recreate with a volume (ReadWriteOnce), RollingUpdate otherwise */
  strategy: oneOf(['RollingUpdate', 'Recreate']).optional(),
  /** Names of services or apps that must be up first. */
  dependsOn: z.array(k8sName).default([]),
  /** A Prometheus metrics endpoint on one of the app's ports: scraped and alerted on when monitoring is enabled. */
  metrics: z
    .strictObject({
      port: portName,
      path: absolutePath.default('/metrics'),
      interval: duration.default('30s'),
    })
    .optional(),
  /** GPUs per replica (`nvidia.com/gpu`), on the GPU nodes; needs services.nvidiaDevicePlugin. */
  gpus: intBetween(0, 16).default(0),
  /**
   * Where the app may connect outside the cluster: each `{to: internet | [CIDR ...], ports: [443, "53/udp" ...]}`
   * (every port without `ports`). @default nothing: in-cluster services it names in dependsOn only
   */
  egress: externalDestinations.default([]),
  /** Where the app sits in `waves: sequential` mode. */
  layer: oneOf(APP_LAYERS).default(Layer.AUTOMATION),
});

/** `apps`: the operator's own apps by name (each its own namespace and Application). */
export const appsSettings = z.record(k8sName, appSettings).default({});

export type AppSettings = z.output<typeof appSettings>;
export type AppProbes = NonNullable<AppSettings['probes']>;
export type AppExposure = NonNullable<AppSettings['expose']>;
