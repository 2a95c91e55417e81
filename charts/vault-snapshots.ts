/**
 * Off-site backups of Vault, whose data is not in Git: a CronJob that takes a raft snapshot
 * (`vault operator raft snapshot save`) and writes it to the environment's backup target (`vault/`),
 * with alerts when the last good snapshot is late or a run failed. The Job logs in to Vault
 * with its own ServiceAccount through the Kubernetes auth method, as the role the configurator
 * keeps for it, whose policy can read the snapshot endpoint and nothing else. Its S3 keys come
 * from Vault through External Secrets, needed only when it runs.
 */
import { k8s } from 'cdk8s-plus-34';
import { Construct } from 'constructs';
import { z } from '../lib/model/config/zod';
import type { BackupLocation } from '../lib/model/backup';
import { CONNECT_MAX_SECONDS, type CurlRetry, curlRetrySeconds } from '../lib/model/checkpoint';
import { cron, intBetween } from '../lib/model/config/primitives';
import { restrictedContainerContext, restrictedPodContext } from '../lib/model/pod-security';
import { resources, toResourceRequirements } from '../lib/model/resources';
import type { SecretRef } from '../lib/model/secrets';
import { S3_CREDENTIAL_KEYS } from '../lib/model/secrets';
import { HomelabService } from '../lib/model/service';
import { IMAGES } from './versions';
import { MANAGED_VAULT_PREFIX, VAULT_GID, VAULT_LOGIN_SCRIPT, VAULT_LOGIN_TOKEN_MOUNT, VAULT_LOGIN_TOKEN_VOLUME, VAULT_UID, VaultAccess, vaultLoginEnv } from './vault-configurator';

/** `services.vault.backup`: how often; the snapshots go to the environment's backup target (`backup.target`), under `vault/`. */
export const vaultBackupSettings = z.strictObject({
  schedule: cron.default('15 2 * * *'),
  /**
   * Hours after which the latest good snapshot is late (alert), 1 to 168: a week without a
   * snapshot is a week of secrets lost. Keep above the schedule's interval.
   */
  maxAgeHours: intBetween(1, 168).default(26),
});

export type VaultBackupSettings = z.output<typeof vaultBackupSettings>;

export const SNAPSHOT_JOB = 'vault-snapshot';
/** Vault's snapshots under the environment's backup target. */
export const BACKUP_PREFIX = 'vault';
/** The verification's Job that checks the latest snapshot. */
export const RESTORE_CHECK_JOB = 'vault-snapshot-restore';
/** How long a snapshot run may take (its Job's activeDeadlineSeconds). */
export const SNAPSHOT_DEADLINE_SECONDS = 1800;
/** The Secret (namespace vault) with the backup target's keys, S3_CREDENTIAL_KEYS. */
export const BACKUP_CREDENTIALS_SECRET = 'vault-backup-credentials';
/** Vault's API path of a raft snapshot: the only thing the job's policy reads. */
const SNAPSHOT_PATH = 'sys/storage/raft/snapshot';
const SNAPSHOT_DIR = '/snapshot';
const SNAPSHOT_FILE = `${SNAPSHOT_DIR}/vault.snap`;

export interface VaultSnapshotsProps {
  readonly settings: VaultBackupSettings;
  /** Vault's place under the environment's backup target. */
  readonly location: BackupLocation;
  /** Vault's in-cluster address (the active node). */
  readonly address: string;
  /** The target's keys (S3_CREDENTIAL_KEYS), declared by Vault. */
  readonly credentials: SecretRef;
}

export class VaultSnapshots extends Construct {
  /** The job's identity in Vault, for the configurator. */
  readonly access: VaultAccess;
  /** Where the snapshots go: `<S3 URL of the bucket>/<prefix>`. */
  readonly url: string;

  constructor(scope: HomelabService, id: string, props: VaultSnapshotsProps) {
    super(scope, id);
    const service = HomelabService.of(this);
    const { bucketUrl, prefix, region } = props.location;
    this.url = `${bucketUrl}/${prefix}`;
    this.access = {
      service: SNAPSHOT_JOB,
      namespace: service.namespaceName,
      serviceAccount: SNAPSHOT_JOB,
      role: `${MANAGED_VAULT_PREFIX}${SNAPSHOT_JOB}`,
      policyPaths: [SNAPSHOT_PATH],
    };
    const labels = service.labelsFor('backup');
    new k8s.KubeServiceAccount(this, 'account', { metadata: { name: SNAPSHOT_JOB, labels }, automountServiceAccountToken: false });
    const small = toResourceRequirements(resources('10m', '32Mi', '500m', '256Mi'));
    new k8s.KubeCronJob(this, 'cronjob', {
      metadata: { name: SNAPSHOT_JOB, labels },
      spec: {
        schedule: props.settings.schedule,
        concurrencyPolicy: 'Forbid',
        successfulJobsHistoryLimit: 1,
        failedJobsHistoryLimit: 3,
        jobTemplate: {
          spec: {
            backoffLimit: 2,
            activeDeadlineSeconds: SNAPSHOT_DEADLINE_SECONDS,
            template: {
              metadata: { labels: service.jobPodLabelsFor(SNAPSHOT_JOB, 'backup') },
              spec: {
                restartPolicy: 'Never',
                serviceAccountName: SNAPSHOT_JOB,
                automountServiceAccountToken: false,
                securityContext: restrictedPodContext(VAULT_UID, { group: VAULT_GID, fsGroup: true }),
                // The snapshot first, with the Vault CLI; then the upload, with curl's SigV4 signing.
                initContainers: [
                  {
                    name: 'snapshot',
                    image: IMAGES.vault,
                    command: ['sh', '-ec', SNAPSHOT_SCRIPT],
                    env: [
                      ...vaultLoginEnv(props.address, this.access.role),
                      { name: 'SNAPSHOT_FILE', value: SNAPSHOT_FILE },
                      { name: 'HOME', value: '/tmp' },
                    ],
                    resources: small,
                    securityContext: restrictedContainerContext(),
                    volumeMounts: [
                      { name: 'snapshot', mountPath: SNAPSHOT_DIR },
                      VAULT_LOGIN_TOKEN_MOUNT,
                      { name: 'tmp', mountPath: '/tmp' },
                    ],
                  },
                ],
                containers: [
                  {
                    name: 'upload',
                    image: IMAGES.curl,
                    command: ['sh', '-ec', UPLOAD_SCRIPT],
                    env: [
                      { name: 'S3_URL', value: this.url },
                      { name: 'SNAPSHOT_FILE', value: SNAPSHOT_FILE },
                      { name: 'S3_REGION', value: region },
                      // Optional: a CronJob's Secret is not needed for Vault to sync (External Secrets, which delivers it,
                      // syncs after Vault); a run before it exists fails in the script, saying so.
                      { name: 'CREDENTIALS_SECRET', value: props.credentials.secretName },
                      ...S3_CREDENTIAL_KEYS.map((key) => ({ name: key, valueFrom: { secretKeyRef: { ...props.credentials.keySelector(key), optional: true } } })),
                    ],
                    resources: small,
                    securityContext: restrictedContainerContext(),
                    volumeMounts: [{ name: 'snapshot', mountPath: SNAPSHOT_DIR, readOnly: true }],
                  },
                ],
                volumes: [
                  { name: 'snapshot', emptyDir: {} },
                  { name: 'tmp', emptyDir: {} },
                  VAULT_LOGIN_TOKEN_VOLUME,
                ],
              },
            },
          },
        },
      },
    });
  }
}

/** Runs with `sh -ec` in the Vault image: log in as the job's role, save a raft snapshot. */
const SNAPSHOT_SCRIPT = String.raw`${VAULT_LOGIN_SCRIPT}
vault operator raft snapshot save "$SNAPSHOT_FILE"
size=$(wc -c < "$SNAPSHOT_FILE")
if [ "$size" -eq 0 ]; then echo "the snapshot is empty" >&2; exit 1; fi
echo "raft snapshot saved: $size bytes"`;

/** Runs with `sh -ec` in the curl image: upload the snapshot under a timestamped name. */
const UPLOAD_SCRIPT = String.raw`if [ -z "$AWS_ACCESS_KEY_ID" ] || [ -z "$AWS_SECRET_ACCESS_KEY" ]; then
  echo "no keys of the backup target: the Secret $CREDENTIALS_SECRET (External Secrets delivers it from Vault) is missing" >&2
  exit 1
fi
name="vault-$(date -u +%Y%m%dT%H%M%SZ).snap"
curl -fsS --retry 5 --retry-delay 10 --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -T "$SNAPSHOT_FILE" "$S3_URL/$name"
echo "uploaded $S3_URL/$name"`;

/**
 * The restore check's two calls to the backup target, each retried three times 5 s apart: the
 * listing within 30 s, the snapshot's fetch within two minutes (a homelab's Vault snapshot is
 * megabytes). Its Job's deadline is every attempt at its limit after the pod's start.
 */
const S3_RETRIES = 3;
const S3_RETRY_DELAY_SECONDS = 5;
const LIST_CALL: CurlRetry = { retries: S3_RETRIES, delaySeconds: S3_RETRY_DELAY_SECONDS, maxSeconds: 30 };
const FETCH_CALL: CurlRetry = { retries: S3_RETRIES, delaySeconds: S3_RETRY_DELAY_SECONDS, maxSeconds: 120 };
export const RESTORE_CHECK_SECONDS = curlRetrySeconds(LIST_CALL) + curlRetrySeconds(FETCH_CALL);

/**
 * The restore check of the end-to-end verification, in the curl image: find the newest snapshot
 * under the prefix (its name is its UTC time), fetch it into scratch space, check it is a raft
 * snapshot archive (gzip tar of meta.json, state.bin and SHA256SUMS, hashicorp/raft-snapshot
 * archive.go) whose checksums match, and that it is younger than the maximum age. Reports PASS or
 * FAIL with the age; removes what it fetched. The listing starts after the name a snapshot of the
 * maximum age would have: S3 lists at most 1000 keys in name order, oldest first, and nothing
 * deletes old snapshots.
 */
export const RESTORE_CHECK_SCRIPT = String.raw`fail() { echo "FAIL $*" >&2; rm -rf "$WORK_DIR"/*; exit 1; }
# s3 <curl's limit in seconds> <curl arguments>
s3() { max=$1; shift; curl -fsS --retry ${S3_RETRIES} --retry-delay ${S3_RETRY_DELAY_SECONDS} --connect-timeout ${CONNECT_MAX_SECONDS} --max-time "$max" --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$@"; }
now=$(date -u +%s)
oldest_stamp=$(date -u -d "@$((now - MAX_AGE_HOURS * 3600))" +%Y%m%dT%H%M%SZ)
oldest="${'$'}{PREFIX:+${'$'}PREFIX/}vault-$oldest_stamp.snap"
list=$(s3 ${LIST_CALL.maxSeconds} "$BUCKET_URL/?list-type=2&prefix=$PREFIX&start-after=$oldest") || fail "cannot list $BUCKET_URL/$PREFIX"
latest=$(printf '%s' "$list" | grep -o '<Key>[^<]*</Key>' | sed 's|<Key>\(.*\)</Key>|\1|' | grep 'vault-[0-9]\{8\}T[0-9]\{6\}Z\.snap$' | sort | tail -n 1)
[ -n "$latest" ] || fail "no Vault snapshot under $BUCKET_URL/$PREFIX in the last $MAX_AGE_HOURS h"
stamp=$(printf '%s' "$latest" | sed 's|.*vault-\([0-9]\{4\}\)\([0-9]\{2\}\)\([0-9]\{2\}\)T\([0-9]\{2\}\)\([0-9]\{2\}\)\([0-9]\{2\}\)Z\.snap$|\1-\2-\3 \4:\5:\6|')
age_seconds=$(( now - $(date -u -d "$stamp" +%s) ))
age=$(( age_seconds / 3600 ))
s3 ${FETCH_CALL.maxSeconds} -o "$WORK_DIR/latest.snap" "$BUCKET_URL/$latest" || fail "cannot fetch $latest"
mkdir -p "$WORK_DIR/archive"
tar -xzf "$WORK_DIR/latest.snap" -C "$WORK_DIR/archive" 2> /dev/null || fail "$latest ($age h old) is not a gzip tar archive"
for file in meta.json state.bin SHA256SUMS; do [ -f "$WORK_DIR/archive/$file" ] || fail "$latest ($age h old) holds no $file: not a raft snapshot"; done
(cd "$WORK_DIR/archive" && sha256sum -c SHA256SUMS > /dev/null) || fail "$latest ($age h old): its checksums do not match"
index=$(sed -n 's/.*"Index":\([0-9]*\).*/\1/p' "$WORK_DIR/archive/meta.json")
[ "$age_seconds" -le $((MAX_AGE_HOURS * 3600)) ] || fail "latest Vault snapshot $latest is $age h old, more than $MAX_AGE_HOURS h"
rm -rf "$WORK_DIR"/*
echo "PASS latest Vault snapshot $latest: $age h old, raft index $index, checksums match"`;
