/**
 * SeaweedFS, the platform's object storage (a foundation, docs/adr/0027): the `seaweedfs` chart in its
 * all-in-one mode — master, volume server, filer and S3 gateway in one pod, its data on a
 * Longhorn volume. Why SeaweedFS and not MinIO or Garage: docs/adr/0027.
 *
 * Services declare their buckets (HomelabService.needBuckets); the object-storage pass hands
 * them all to `provision`, which has the chart's bucket hook create them (with their expiry and
 * versioning) and renders one S3 identity per consumer, allowed on its own buckets only, from
 * the keys the Vault configurator generated for it: no key is in Git, and none is typed by the
 * operator. The checkpoint proves every declared bucket exists and that an identity is refused
 * outside its buckets; the end-to-end verification proves each consumer's keys work on its own.
 */
import { createHash } from 'node:crypto';
import { z } from '../lib/model/config/zod';
import type { SeaweedfsValues } from '../imports/helm/seaweedfs';
import { defineService } from '../lib/model/catalog';
import { Checkpoint, CheckpointProps, curlRetryOptions, curlRetrySeconds, STARTING_SERVER_CALL } from '../lib/model/checkpoint';
import { bool, k8sName, matching, region, resourcesSchema, volumeSize } from '../lib/model/config/primitives';
import { helmRelease } from './helm-release';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import type { BucketNeed, ObjectStore } from '../lib/model/object-storage';
import { S3_CREDENTIAL_KEYS, SecretNeed, SecretRef } from '../lib/model/secrets';
import { HomelabService } from '../lib/model/service';
import type { StorageProvider } from '../lib/model/storage';
import { IMAGES } from './versions';
import { externalSecretsEntry } from './external-secrets';
import { longhornEntry, longhornStorageClassIssues } from './longhorn';
import { vaultEntry } from './vault';
import { byCodeUnits } from '../lib/util/text-order';

/** The all-in-one container (master, volume server, filer and S3 gateway). */
export const DEFAULT_SEAWEEDFS_RESOURCES = { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } };

/** `services.seaweedfs`. */
export const seaweedfsSettings = z
  .strictObject({
    enabled: bool.default(false),
    /** The one volume holding every object (and the filer's metadata). */
    storageSize: volumeSize.default('50Gi'),
    /** @default Longhorn's default storage class */
    storageClass: k8sName.optional(),
    /** The region S3 clients sign for; SeaweedFS accepts any. */
    region: region.default('us-east-1'),
    resources: resourcesSchema.default(DEFAULT_SEAWEEDFS_RESOURCES),
  })
  .prefault({});

export type SeaweedfsSettings = z.output<typeof seaweedfsSettings>;

/** S3 bucket names (3-63 lowercase letters, digits, dots, hyphens). */
export const bucketName = matching(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name (3-63 lowercase letters, digits, "." and "-")');

/**
 * Days after which the store deletes an object: the chart's bucket hook sets a filer TTL of
 * `<n>d`, and SeaweedFS TTLs count 1 to 255 of a unit (weed/storage/needle/volume_ttl.go).
 */
export const expiryDays = z.int({ error: 'expected a whole number of days' }).min(1, { error: 'expected at least 1 day' }).max(255, {
  error: 'expected at most 255 days (SeaweedFS expires objects by a TTL of 1 to 255 days)',
});

export const SEAWEEDFS_NAMESPACE = 'seaweedfs';
/** The chart's all-in-one Service (`<release>-all-in-one`, release = service name). */
const ALL_IN_ONE_SERVICE = 'seaweedfs-all-in-one';
/** The chart's ports (values.yaml: s3.port, filer.port, allInOne.metricsPort). */
const S3_PORT = 8333;
const FILER_PORT = 8888;
const METRICS_PORT = 9324;
/** Pod labels of the all-in-one Deployment (templates/all-in-one/all-in-one-deployment.yaml at 4.44). */
const ALL_IN_ONE_POD_LABELS = {
  'app.kubernetes.io/name': 'seaweedfs',
  'app.kubernetes.io/instance': 'seaweedfs',
  'app.kubernetes.io/component': 'seaweedfs-all-in-one',
} as const;
/** The Secret of S3 identities the gateway reads (`-s3.config`), under the key the chart mounts. */
const IDENTITIES_SECRET = 'seaweedfs-s3-identities';
const IDENTITIES_KEY = 'seaweedfs_s3_config';
/** Pod annotation: a digest of the identities template (names and buckets, no keys). */
const IDENTITIES_DIGEST_ANNOTATION = 'homelab.dev/s3-identities';
/** The store's own identity and bucket, which the checkpoint writes to and the consumers' checks must be refused on. */
const PROBE_BUCKET = 'seaweedfs-probe';
/** Where the filer lists a bucket (the chart's default WEED_FILER_BUCKETS_FOLDER). */
const BUCKETS_FOLDER = '/buckets';
/**
 * What an identity may do in its buckets: SeaweedFS' s3 actions (weed/s3api/s3_constants),
 * each limited to a bucket by `<action>:<bucket>`; Write covers deletes.
 */
const BUCKET_ACTIONS = ['Read', 'Write', 'List', 'Tagging'] as const;

export type SeaweedfsProps = Omit<SeaweedfsSettings, 'enabled'> & {
  /** Provides the data volume. */
  readonly storage: StorageProvider;
};

export class Seaweedfs extends HomelabService implements ObjectStore {
  readonly endpoint = `http://${ALL_IN_ONE_SERVICE}.${SEAWEEDFS_NAMESPACE}.svc:${S3_PORT}`;
  readonly reservedBuckets = [PROBE_BUCKET];
  readonly region: string;
  private readonly props: SeaweedfsProps;
  private readonly probeCredentials: SecretRef;
  private provisioned = false;

  constructor(scope: Platform, props: SeaweedfsProps) {
    super(scope, 'seaweedfs', props, {
      // Its keys come from Vault through External Secrets: a foundation, before every layer
      // that keeps objects (ADR 23; with sequential waves a storage-layer store would wait for a
      // later wave's Secrets).
      layer: Layer.FOUNDATION,
      namespace: SEAWEEDFS_NAMESPACE,
      podSecurity: {
        level: 'baseline',
        reason: "the chart's bucket hook Job sets no container security context (templates/shared/post-install-bucket-hook.yaml at 4.44); the server runs non-root",
      },
    });
    this.props = props;
    this.region = props.region;
    this.probeCredentials = this.needSecret(`${this.serviceName}-probe-credentials`, S3_CREDENTIAL_KEYS, "keys of the checkpoint's own identity; generated in Vault by its configurator, nothing to do", { generated: true });
    this.requestCapacity('all-in-one', 1, props.resources.requests);
    this.serveClients({ port: S3_PORT, podSelector: ALL_IN_ONE_POD_LABELS });
    this.exposeMetrics({ name: 'server', kind: 'pod', selector: ALL_IN_ONE_POD_LABELS, port: 'server-metrics' });
    this.addAlerts({
      alert: 'SeaweedfsS3Errors',
      // weed/stats/metrics.go: SeaweedFS_s3_request_total{type, code, bucket}.
      expr: `sum by (bucket) (rate(SeaweedFS_s3_request_total{${SERVICE_LABEL}="${this.serviceName}", code=~"5.."}[10m])) > 0`,
      for: '15m',
      severity: 'warning',
      summary: 'SeaweedFS answers S3 requests on bucket {{ $labels.bucket }} with server errors',
      description: 'Its consumers cannot store objects: check the seaweedfs pod\'s log and the free space of its volume.',
    });
  }

  /** Creates the declared buckets and one identity per consumer, limited to its buckets; adds the checkpoint. */
  provision(buckets: readonly BucketNeed[]): void {
    if (this.provisioned) throw new Error('seaweedfs: provisioned twice');
    this.provisioned = true;
    const sorted = [...buckets].sort((a, b) => byCodeUnits(a.name, b.name));
    const probe: BucketNeed = { name: PROBE_BUCKET, service: this.serviceName, namespace: this.namespaceName, purpose: 'checkpoint', credentials: this.probeCredentials.need };
    const identities = identitiesTemplate([probe, ...sorted]);
    this.needSecret(IDENTITIES_SECRET, [IDENTITIES_KEY], 'S3 identities: each consumer\'s generated keys, allowed on its own buckets', { template: identities });
    // The gateway reads the identities file at start: a changed set of identities (a new consumer
    // or bucket; never the keys, which are not known here) rolls the pod, after External Secrets
    // has rendered the new file (the templated ExternalSecret syncs a wave earlier).
    const identitiesDigest = createHash('sha256').update(JSON.stringify(identities.data)).digest('hex').slice(0, 16);
    this.installChart(helmRelease('seaweedfs', seaweedfsValues(this.props, [probe, ...sorted], identitiesDigest)));
    // Its own identity: the consumers' buckets are foreign to it.
    const check = bucketAccessCheck(this, [probe], this.probeCredentials, sorted.map((b) => b.name));
    const declared = [PROBE_BUCKET, ...sorted.map((b) => b.name)];
    new Checkpoint(this, 'checkpoint', {
      ...check,
      scriptSeconds: check.scriptSeconds! + declared.length * S3_CALL_SECONDS,
      description: "every declared bucket exists; the checkpoint's identity can put, get and delete in its bucket and is refused in every other",
      env: {
        ...check.env,
        FILER_URL: `http://${ALL_IN_ONE_SERVICE}.${SEAWEEDFS_NAMESPACE}.svc:${FILER_PORT}${BUCKETS_FOLDER}`,
        DECLARED_BUCKETS: declared.join(' '),
      },
    });
  }

  accessCheck(buckets: readonly BucketNeed[], credentials: SecretRef): Omit<CheckpointProps, 'hookWave'> {
    return bucketAccessCheck(this, buckets, credentials, [PROBE_BUCKET]);
  }
}

/**
 * Put, get and delete one object in each own bucket, and a put in each foreign bucket that must
 * be refused (HTTP 403), with curl's SigV4 signing and the identity's keys from its Secret.
 * Reports PASS or FAIL per bucket; fails when any failed.
 */
function bucketAccessCheck(store: Seaweedfs, own: readonly BucketNeed[], credentials: SecretRef, foreign: readonly string[]): Omit<CheckpointProps, 'hookWave'> {
  return {
    description: `the identity of ${own[0]?.service ?? 'a consumer'} can put, get and delete in its buckets and is refused in another identity's`,
    image: IMAGES.curl,
    // Three calls per own bucket, up to two per foreign one (the filer's one per declared bucket
    // is the store's), each with its retries at curl's limit; after the pod's start.
    scriptSeconds: (3 * own.length + 2 * foreign.length) * S3_CALL_SECONDS,
    env: { S3_ENDPOINT: store.endpoint, S3_REGION: store.region, OWN_BUCKETS: own.map((b) => b.name).join(' '), FOREIGN_BUCKETS: foreign.join(' ') },
    secretEnv: credentials.keySelectors(S3_CREDENTIAL_KEYS),
    script: BUCKET_ACCESS_SCRIPT,
  };
}

/**
 * Every call of the bucket check: retried while the store may still be starting (refused or
 * timed out), each attempt within curl's limit, so that a store that accepts connections but
 * never answers fails the check with its report instead of holding it until the Job's deadline.
 */
const S3_CALL = STARTING_SERVER_CALL;
const S3_CALL_LIMITS = curlRetryOptions(S3_CALL, 'connrefused');
const S3_CALL_SECONDS = curlRetrySeconds(S3_CALL);

/** Runs with `sh -ec` in the curl image. FILER_URL and DECLARED_BUCKETS (the store's checkpoint only) check existence first. */
export const BUCKET_ACCESS_SCRIPT = String.raw`fail=0
if [ -n "$FILER_URL" ]; then
  for bucket in $DECLARED_BUCKETS; do
    code=$(curl -sS -o /dev/null -w '%{http_code}' ${S3_CALL_LIMITS} -H 'Accept: application/json' "$FILER_URL/$bucket/" || :)
    if [ "$code" = 200 ]; then echo "PASS bucket $bucket exists"; else echo "FAIL bucket $bucket: the filer answered HTTP $code for $FILER_URL/$bucket/" >&2; fail=1; fi
  done
fi
# s3 <method> <bucket/key> [curl options]: prints the body, then the HTTP status on its own line.
s3() {
  method=$1
  path=$2
  shift 2
  curl -sS -w '\n%{http_code}' ${S3_CALL_LIMITS} --aws-sigv4 "aws:amz:$S3_REGION:s3" \
    --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -X "$method" "$@" "$S3_ENDPOINT/$path" || printf '\n000'
}
status() { printf '%s\n' "$1" | tail -n 1; }
object="checkpoint-$(date +%s)-$$"
for bucket in $OWN_BUCKETS; do
  code=$(status "$(s3 PUT "$bucket/$object" --data-binary "$object")")
  if [ "$code" != 200 ]; then echo "FAIL $bucket: put answered HTTP $code" >&2; fail=1; continue; fi
  answer=$(s3 GET "$bucket/$object")
  code=$(status "$answer")
  body=$(printf '%s\n' "$answer" | sed '$d')
  if [ "$code" != 200 ] || [ "$body" != "$object" ]; then echo "FAIL $bucket: get answered HTTP $code with other content than was put" >&2; fail=1; fi
  code=$(status "$(s3 DELETE "$bucket/$object")")
  if [ "$code" != 204 ]; then echo "FAIL $bucket: delete answered HTTP $code" >&2; fail=1; continue; fi
  echo "PASS $bucket: put, get and delete"
done
for bucket in $FOREIGN_BUCKETS; do
  code=$(status "$(s3 PUT "$bucket/$object" --data-binary "$object")")
  if [ "$code" = 403 ]; then
    echo "PASS $bucket: another identity's bucket refused (HTTP 403)"
  else
    echo "FAIL $bucket: another identity's bucket answered HTTP $code to a put, expected 403" >&2
    fail=1
    if [ "$code" = 200 ]; then s3 DELETE "$bucket/$object" > /dev/null; fi
  fi
done
exit "$fail"`;

/** Template variable of one key of a consumer's identity (ESO template v2: `index . "<variable>"`). */
function variable(bucket: BucketNeed, key: string): string {
  return `${bucket.service}.${key}`;
}

/** The S3 identities file (weed/s3api auth_credentials.go format): one identity per consumer, actions limited to its buckets. */
function identitiesTemplate(buckets: readonly BucketNeed[]): { inputs: { variable: string; from: SecretNeed; key: string }[]; data: Record<string, string> } {
  const byService = new Map<string, BucketNeed[]>();
  for (const bucket of buckets) byService.set(bucket.service, [...(byService.get(bucket.service) ?? []), bucket]);
  const consumers = [...byService.entries()].sort(([a], [b]) => byCodeUnits(a, b));
  const identities = consumers.map(([service, owned]) => {
    const [access, secret] = S3_CREDENTIAL_KEYS.map((key) => `{{ index . ${JSON.stringify(variable(owned[0], key))} | toJson }}`);
    const actions = owned.flatMap((bucket) => BUCKET_ACTIONS.map((action) => `"${action}:${bucket.name}"`));
    return `{"name":${JSON.stringify(service)},"credentials":[{"accessKey":${access},"secretKey":${secret}}],"actions":[${actions.join(',')}]}`;
  });
  return {
    inputs: consumers.flatMap(([, owned]) => S3_CREDENTIAL_KEYS.map((key) => ({ variable: variable(owned[0], key), from: owned[0].credentials, key }))),
    data: { [IDENTITIES_KEY]: `{"identities":[${identities.join(',')}]}\n` },
  };
}

function seaweedfsValues(props: SeaweedfsProps, buckets: readonly BucketNeed[], identitiesDigest: string): SeaweedfsValues {
  return {
    master: { enabled: false },
    volume: { enabled: false },
    filer: { enabled: false },
    allInOne: {
      enabled: true,
      resources: props.resources,
      metricsPort: METRICS_PORT,
      podAnnotations: { [IDENTITIES_DIGEST_ANNOTATION]: identitiesDigest },
      data: { type: 'persistentVolumeClaim', size: props.storageSize, storageClass: props.storage.storageClass(props.storageClass) },
      s3: {
        enabled: true,
        enableAuth: true,
        existingConfigSecret: IDENTITIES_SECRET,
        createBuckets: buckets.map((bucket) => ({
          name: bucket.name,
          ...(bucket.expireAfterDays !== undefined && { ttl: `${bucket.expireAfterDays}d` }),
          ...(bucket.versioning && { versioning: 'Enabled' }),
        })),
      },
    },
  };
}

export const seaweedfsEntry = defineService({
  name: 'seaweedfs',
  settings: { key: 'seaweedfs', schema: seaweedfsSettings },
  names: [SEAWEEDFS_NAMESPACE],
  requires: () => [
    { entry: longhornEntry, path: ['enabled'], reason: 'SeaweedFS keeps its objects on a Longhorn volume' },
    { entry: vaultEntry, path: ['enabled'], reason: 'Vault generates the keys of every bucket consumer' },
    { entry: externalSecretsEntry, path: ['enabled'], reason: 'External Secrets delivers the S3 identities from Vault' },
  ],
  check: (settings, env) => longhornStorageClassIssues(env, ['storageClass'], settings.storageClass),
  upstreamTargets: {
    'seaweedfs-server': {
      selector: ALL_IN_ONE_POD_LABELS,
      port: 'server-metrics',
      source: 'seaweedfs 4.44.0 templates/all-in-one/all-in-one-deployment.yaml (allInOne.metricsPort)',
    },
  },
  build: (platform, settings, context) => new Seaweedfs(platform, { ...settings, storage: context.required(longhornEntry) }),
});
