/**
 * The Longhorn canary: a small volume of known content that Longhorn backs up to the
 * environment's backup target like any other volume, and that the end-to-end verification
 * restores from its latest backup on every sync to prove that a backup can be read back
 * (docs/adr/0040). In Longhorn's Application:
 *
 * - the StorageClass `longhorn-canary` (the default class's settings, deleting its volumes, in
 *   the recurring-job group `canary` only) and the PVC `longhorn-canary` of it;
 * - the canary writer, a one-pod Deployment that writes the known text, the time and a checksum
 *   of both to the volume (one file, replaced atomically) and again every hour. It keeps the
 *   volume attached: Longhorn's recurring jobs skip detached volumes unless the global setting
 *   allow-recurring-job-while-volume-detached is on (longhorn-manager 1.12.1
 *   app/recurringjob/util.go filterVolumesForJob), which would attach every user's volume too;
 * - the RecurringJob `canary-backup` (task backup, group `canary`), run by longhorn-manager as a
 *   CronJob of that name, so LonghornBackupLate watches it with the others;
 * - the restore check's ServiceAccount and its rights outside the verification's namespace.
 *
 * The check (run by the verification as a Job in longhorn-system) takes the canary PVC's volume,
 * the newest Completed Backup of it (label `backup-volume`, the greatest `backupCreatedAt`, as
 * longhorn-manager's backup_volume_controller.go picks the last backup), and restores it the way
 * Longhorn 1.12 documents for Kubernetes: a StorageClass whose `fromBackup` parameter is the
 * backup's URL (docs references/storage-class-parameters.md), a PVC of it, and a pod that mounts
 * it read-only and compares the content. The PVC and the pod live in the verification's namespace,
 * which is Pod Security `restricted`: longhorn-system must be `privileged`, and an account that may
 * create pods there could create privileged ones. Longhorn provisions and attaches the volume of
 * a PVC of its class in any namespace. It reports PASS or FAIL with the backup's age and deletes
 * the scratch pod, PVC (and so its volume) and StorageClass however it ends.
 */
import { k8s } from 'cdk8s-plus-34';
import { Construct } from 'constructs';
import { RecurringJob, RecurringJobSpecTask } from '../imports/longhorn-longhorn.io';
import { restrictedContainerContext, restrictedPodContext } from '../lib/model/pod-security';
import { resources, toResourceRequirements } from '../lib/model/resources';
import { type CheckpointProps, KUBE_CALL_MAX_SECONDS, namespaceAccount } from '../lib/model/checkpoint';
import { HomelabService } from '../lib/model/service';
import { IMAGES } from './versions';

/** The canary's StorageClass and PVC (and the writer Deployment). */
export const CANARY_NAME = 'longhorn-canary';
/** The recurring-job group of the canary's StorageClass, and the job that backs it up. */
const CANARY_GROUP = 'canary';
export const CANARY_BACKUP_JOB = 'canary-backup';
/** The verification's restore check Job, and its ServiceAccount. */
export const RESTORE_CHECK_JOB = 'longhorn-canary-restore';
/** The StorageClass, PVC and pod the check creates and deletes on every run. */
export const SCRATCH_NAME = 'longhorn-restore-scratch';
/** Backups of the canary the recurring job keeps: the newest is the one restored. */
const CANARY_BACKUPS_KEPT = 3;
/** The canary volume: the smallest a filesystem with room to spare fits in. */
const CANARY_SIZE = '64Mi';
/** Where the writer and the restore pod mount the volume, and the canary file on it. */
const CANARY_DIR = '/canary';
const CANARY_FILE = 'canary';
/** What the canary file's first line always says. */
export const CANARY_TEXT = 'homelab longhorn canary: written before its backup, read back from it by the verification';
/** How often the writer rewrites the file (a fresh time and checksum). */
const REWRITE_SECONDS = 3600;
/** How long the restore check waits in all: for a killed run's leftovers, the restore and its read. */
const RESTORE_BUDGET_SECONDS = 780;
/**
 * What the restore check may still do once its budget is out, every API call at its limit: the
 * rest of a leftover's wait (a pause and a read), a read of each other leftover, the canary's
 * claim and its backups, the three creations, a phase read, the log, and the cleanup's three
 * deletes. The Job's deadline adds it and the pod's start to the budget.
 */
const AFTER_BUDGET_SECONDS = 5 + (1 + 2 + 2 + 3 + 1 + 1 + 3) * KUBE_CALL_MAX_SECONDS;
const CSI_PROVISIONER = 'driver.longhorn.io';
/** Unprivileged user of the writer and the restore pod (nobody). */
const NOBODY = 65534;
/** What the writer and the restore pod each request and may use: a shell, sha256sum and sleep. */
export const CANARY_RESOURCES = resources('5m', '8Mi', '50m', '32Mi');

/** Runs with `sh -ec` in busybox: write the canary file now and every REWRITE_SECONDS (`sleep` failing ends it). */
export const WRITER_SCRIPT = String.raw`write() {
  written=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  sum=$(printf '%s\n%s\n' "$CANARY_TEXT" "$written" | sha256sum | cut -d ' ' -f 1)
  printf '%s\n%s\n%s\n' "$CANARY_TEXT" "$written" "$sum" > "$CANARY_DIR/.$CANARY_FILE.new"
  chmod 644 "$CANARY_DIR/.$CANARY_FILE.new"
  mv "$CANARY_DIR/.$CANARY_FILE.new" "$CANARY_DIR/$CANARY_FILE"
  sync
  echo "canary written at $written"
}
write
while sleep "$REWRITE_SECONDS"; do write; done`;

/**
 * Runs with `sh -ec` in busybox, the restored volume at $CANARY_DIR: the canary file holds the
 * known text, a time and the checksum of both. Prints when it was written; exit 1 with the reason.
 */
export const COMPARE_SCRIPT = String.raw`file="$CANARY_DIR/$CANARY_FILE"
[ -f "$file" ] || { echo "the restored volume holds no $CANARY_FILE file"; exit 1; }
text=$(sed -n 1p "$file")
written=$(sed -n 2p "$file")
sum=$(sed -n 3p "$file")
[ "$text" = "$CANARY_TEXT" ] || { echo "the restored canary says \"$text\", expected \"$CANARY_TEXT\""; exit 1; }
[ "$(printf '%s\n%s\n' "$text" "$written" | sha256sum | cut -d ' ' -f 1)" = "$sum" ] || { echo "the restored canary (written at $written) does not match its checksum"; exit 1; }
echo "canary written at $written"`;

/**
 * The restore check, with `kube_get` (its ServiceAccount's rights: addRestoreCheckAccount and
 * scratchAccess). It reads the canary in $NAMESPACE and makes the scratch PVC and pod in
 * $SCRATCH_NAMESPACE (the verification's). The scratch objects come as JSON in the env; the
 * StorageClass's `fromBackup` is the placeholder BACKUP_URL. Every exit deletes them (trap), and a
 * run first deletes what a killed run left behind.
 */
export const RESTORE_CHECK_SCRIPT = String.raw`api="/api/v1/namespaces/$SCRATCH_NAMESPACE"
class_path="/apis/storage.k8s.io/v1/storageclasses/$SCRATCH_NAME"
remove() { kube_get "$1" -X DELETE -o /dev/null 2> /dev/null || true; }
cleanup() {
  remove "$api/pods/$SCRATCH_NAME?gracePeriodSeconds=0"
  remove "$api/persistentvolumeclaims/$SCRATCH_NAME"
  remove "$class_path"
}
trap cleanup EXIT
trap 'exit 1' TERM INT
fail() { echo "FAIL $*" >&2; exit 1; }
# One deadline for every wait, within the Job's: the cleanup's deletes still fit after it.
deadline=$(( $(date +%s) + BUDGET_SECONDS ))
in_time() { [ "$(date +%s)" -lt "$deadline" ]; }
post() { kube_get "$1" -X POST -H 'Content-Type: application/json' --data-binary "$2" -o /dev/null || fail "cannot create $1/$SCRATCH_NAME"; }
# Whether $1 is still there: only the API server's 404 says it is gone, not a call that got no answer.
still_there() {
  if answer=$(kube_get "$1" -o /dev/null 2>&1); then return 0; fi
  case "$answer" in *"error: 404"*) return 1 ;; *) return 0 ;; esac
}
# What a run that was killed left behind, gone before it is made again under the same names.
cleanup
for path in "$api/pods/$SCRATCH_NAME" "$api/persistentvolumeclaims/$SCRATCH_NAME" "$class_path"; do
  while still_there "$path"; do
    in_time || fail "$path of an earlier run is still there${'$'}{answer:+ (or the API server does not say it is gone: $answer)}"
    sleep 5
  done
done
volume=$(kube_get "/api/v1/namespaces/$NAMESPACE/persistentvolumeclaims/$CANARY_CLAIM" | sed -n 's/.*"volumeName":"\([^"]*\)".*/\1/p')
[ -n "$volume" ] || fail "the canary volume $NAMESPACE/$CANARY_CLAIM is not bound"
backups=$(kube_get "/apis/longhorn.io/v1beta2/namespaces/$NAMESPACE/backups?labelSelector=backup-volume%3D$volume") || fail "cannot list the backups of $volume"
# One Backup per line (each item's keys come sorted, apiVersion first; the same text inside a
# label's JSON value is escaped, \"apiVersion\"); in its status backupCreatedAt sorts before url.
# Labels may hold JSON text (longhorn-manager's KubernetesStatus), so nothing is matched across
# them. The URL stays JSON-escaped (& is \u0026).
latest=$(printf '%s' "$backups" | sed 's/{"apiVersion":/\n&/g' | grep '"state":"Completed"' | sed -n 's/.*"backupCreatedAt":"\([^"]*\)".*"url":"\([^"]*\)".*/\1 \2/p' | sort | tail -n 1)
[ -n "$latest" ] || fail "no completed backup of the canary volume $volume yet (recurring job $BACKUP_JOB, cron \"$BACKUP_CRON\")"
created=${'$'}{latest%% *}
url=${'$'}{latest#* }
name=$(printf '%s' "$url" | sed -n 's/.*backup=\([^\\&]*\).*/\1/p')
age_seconds=$(( $(date -u +%s) - $(date -u -d "$(printf '%s' "$created" | sed 's/T/ /; s/\..*//; s/Z$//')" +%s) ))
age=$(( age_seconds / 3600 ))
post /apis/storage.k8s.io/v1/storageclasses "$(printf '%s' "$RESTORE_CLASS" | sed "s|BACKUP_URL|$(printf '%s' "$url" | sed 's/[\\&|]/\\&/g')|")"
post "$api/persistentvolumeclaims" "$RESTORE_CLAIM"
post "$api/pods" "$RESTORE_POD"
phase=""
while :; do
  phase=$(kube_get "$api/pods/$SCRATCH_NAME" | sed -n 's/.*"phase":"\([A-Za-z]*\)".*/\1/p')
  case "$phase" in Succeeded|Failed) break ;; esac
  in_time || break
  sleep 10
done
said=$(kube_get "$api/pods/$SCRATCH_NAME/log" 2> /dev/null | tail -n 1)
case "$phase" in
  Succeeded) ;;
  Failed) fail "latest backup $name of the canary ($age h old) restored, but: $said" ;;
  *) fail "latest backup $name of the canary ($age h old) was not restored and read within the check's $BUDGET_SECONDS s (pod $SCRATCH_NAMESPACE/$SCRATCH_NAME: ${'$'}{phase:-not found})" ;;
esac
[ "$age_seconds" -le $((MAX_AGE_HOURS * 3600)) ] || fail "latest backup $name of the canary restored and matches, but it is $age h old, more than $MAX_AGE_HOURS h"
echo "PASS latest backup $name of the canary volume: $age h old, restored into a scratch volume, content matches ($said)"`;

export interface LonghornCanaryProps {
  /** Replicas of the canary volume (the default class's). */
  readonly replicas: number;
  /** Cron of the canary's backup job. */
  readonly schedule: string;
  /** Hours after which the latest backup is too old (the check fails). */
  readonly maxAgeHours: number;
  /** The parameters of Longhorn's classes for throwaway volumes (one replica, no recurring job); the scratch class adds `fromBackup`. */
  readonly scratchParameters: Readonly<Record<string, string>>;
}

export class LonghornCanary extends Construct {
  /** The end-to-end check that restores the latest backup, run as `account`. */
  readonly restoreCheck: Omit<CheckpointProps, 'hookWave'>;
  readonly account = RESTORE_CHECK_JOB;
  /**
   * What `account` may do in the verification's namespace, where the scratch PVC and pod live:
   * create PVCs and pods (RBAC cannot limit `create` to a name), and read, log and delete only
   * the scratch ones by name.
   */
  readonly scratchAccess: readonly k8s.PolicyRule[] = [
    { apiGroups: [''], resources: ['persistentvolumeclaims', 'pods'], verbs: ['create'] },
    { apiGroups: [''], resources: ['persistentvolumeclaims', 'pods'], verbs: ['get', 'delete'], resourceNames: [SCRATCH_NAME] },
    { apiGroups: [''], resources: ['pods/log'], verbs: ['get'], resourceNames: [SCRATCH_NAME] },
  ];

  constructor(scope: HomelabService, id: string, props: LonghornCanaryProps) {
    super(scope, id);
    const service = HomelabService.of(this);
    const namespace = service.namespaceName;
    const labels = service.labelsFor('canary');
    const volumeParameters = { numberOfReplicas: String(props.replicas), staleReplicaTimeout: '30', fsType: 'ext4' };
    new k8s.KubeStorageClass(this, 'storage-class', {
      metadata: { name: CANARY_NAME, labels, annotations: { 'storageclass.kubernetes.io/is-default-class': 'false' } },
      provisioner: CSI_PROVISIONER,
      // The canary's data is worth nothing but its backups, which outlive the volume.
      reclaimPolicy: 'Delete',
      volumeBindingMode: 'Immediate',
      parameters: { ...volumeParameters, recurringJobSelector: JSON.stringify([{ name: CANARY_GROUP, isGroup: true }]) },
    });
    const claim = (name: string, storageClassName: string, claimNamespace?: string): k8s.KubePersistentVolumeClaimProps => ({
      metadata: { name, namespace: claimNamespace, labels },
      spec: { accessModes: ['ReadWriteOnce'], storageClassName, resources: { requests: { storage: k8s.Quantity.fromString(CANARY_SIZE) } } },
    });
    new k8s.KubePersistentVolumeClaim(this, 'volume', claim(CANARY_NAME, CANARY_NAME, namespace));
    const volumeEnv = [
      { name: 'CANARY_DIR', value: CANARY_DIR },
      { name: 'CANARY_FILE', value: CANARY_FILE },
      { name: 'CANARY_TEXT', value: CANARY_TEXT },
    ];
    const probe = { exec: { command: ['test', '-s', `${CANARY_DIR}/${CANARY_FILE}`] }, periodSeconds: 60 };
    new k8s.KubeDeployment(this, 'writer', {
      metadata: { name: CANARY_NAME, labels },
      spec: {
        replicas: 1,
        // One pod holds the volume (ReadWriteOnce): the old one lets go before the new one mounts it.
        strategy: { type: 'Recreate' },
        selector: { matchLabels: service.selectorFor('canary') },
        template: {
          metadata: { labels },
          spec: {
            automountServiceAccountToken: false,
            securityContext: restrictedPodContext(NOBODY, { fsGroup: true }),
            containers: [
              {
                name: 'writer',
                image: IMAGES.busybox,
                command: ['sh', '-ec', WRITER_SCRIPT],
                env: [...volumeEnv, { name: 'REWRITE_SECONDS', value: String(REWRITE_SECONDS) }],
                readinessProbe: probe,
                livenessProbe: { ...probe, initialDelaySeconds: 60 },
                resources: toResourceRequirements(CANARY_RESOURCES),
                securityContext: restrictedContainerContext(),
                volumeMounts: [{ name: 'canary', mountPath: CANARY_DIR }],
              },
            ],
            volumes: [{ name: 'canary', persistentVolumeClaim: { claimName: CANARY_NAME } }],
          },
        },
      },
    });
    new RecurringJob(this, 'backup-job', {
      metadata: { name: CANARY_BACKUP_JOB, labels },
      spec: { name: CANARY_BACKUP_JOB, task: RecurringJobSpecTask.BACKUP, cron: props.schedule, retain: CANARY_BACKUPS_KEPT, concurrency: 1, groups: [CANARY_GROUP] },
    });
    this.addRestoreCheckAccount(namespace, labels);

    // The scratch objects, typed here and sent by the script as they are (the PVC and the pod to
    // the verification's namespace, which the URL names).
    const scratchClass: k8s.KubeStorageClassProps = {
      metadata: { name: SCRATCH_NAME, labels },
      provisioner: CSI_PROVISIONER,
      reclaimPolicy: 'Delete',
      volumeBindingMode: 'Immediate',
      // One replica: the scratch copy lives for a minute. No recurring job: nothing backs it up.
      parameters: { ...props.scratchParameters, fromBackup: 'BACKUP_URL' },
    };
    const scratchPod: k8s.KubePodProps = {
      metadata: { name: SCRATCH_NAME, labels: service.jobPodLabelsFor(SCRATCH_NAME, 'canary') },
      spec: {
        restartPolicy: 'Never',
        automountServiceAccountToken: false,
        securityContext: restrictedPodContext(NOBODY),
        containers: [
          {
            name: 'compare',
            image: IMAGES.busybox,
            command: ['sh', '-ec', COMPARE_SCRIPT],
            env: volumeEnv,
            resources: toResourceRequirements(CANARY_RESOURCES),
            securityContext: restrictedContainerContext(),
            volumeMounts: [{ name: 'canary', mountPath: CANARY_DIR, readOnly: true }],
          },
        ],
        volumes: [{ name: 'canary', persistentVolumeClaim: { claimName: SCRATCH_NAME, readOnly: true } }],
      },
    };
    this.restoreCheck = {
      description: `the latest backup of the Longhorn canary volume restores into a scratch volume with the canary's content, at most ${props.maxAgeHours} h old`,
      image: IMAGES.curl,
      env: {
        NAMESPACE: namespace,
        CANARY_CLAIM: CANARY_NAME,
        SCRATCH_NAME,
        BACKUP_JOB: CANARY_BACKUP_JOB,
        BACKUP_CRON: props.schedule,
        MAX_AGE_HOURS: String(props.maxAgeHours),
        BUDGET_SECONDS: String(RESTORE_BUDGET_SECONDS),
        RESTORE_CLASS: manifestJson('storage.k8s.io/v1', 'StorageClass', k8s.toJson_KubeStorageClassProps(scratchClass)),
        RESTORE_CLAIM: manifestJson('v1', 'PersistentVolumeClaim', k8s.toJson_KubePersistentVolumeClaimProps(claim(SCRATCH_NAME, SCRATCH_NAME))),
        RESTORE_POD: manifestJson('v1', 'Pod', k8s.toJson_KubePodProps(scratchPod)),
      },
      script: RESTORE_CHECK_SCRIPT,
      scriptSeconds: RESTORE_BUDGET_SECONDS + AFTER_BUDGET_SECONDS,
    };
  }

  /**
   * The check's ServiceAccount, allowed what its script does outside the verification's namespace
   * and no more: in longhorn-system read the canary PVC and list Longhorn's Backups, nothing else
   * (no pod, no PVC: admission takes privileged pods there); cluster-wide create the scratch
   * StorageClass (Kubernetes RBAC cannot limit `create` to a name), and read and delete only it.
   */
  private addRestoreCheckAccount(namespace: string, labels: Record<string, string>): void {
    namespaceAccount(
      this,
      RESTORE_CHECK_JOB,
      namespace,
      labels,
      [
        { apiGroups: ['longhorn.io'], resources: ['backups'], verbs: ['list'] },
        { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['get'], resourceNames: [CANARY_NAME] },
      ],
      [
        { apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['create'] },
        { apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['get', 'delete'], resourceNames: [SCRATCH_NAME] },
      ],
      RESTORE_CHECK_JOB,
    );
  }
}

/** An object (its props as cdk8s serialises them) as the JSON the API server takes. */
function manifestJson(apiVersion: string, kind: string, props: Record<string, unknown> | undefined): string {
  return JSON.stringify({ apiVersion, kind, ...props });
}
