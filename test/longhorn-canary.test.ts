/**
 * The Longhorn canary and the verification's restore check (charts/longhorn-canary.ts): what a
 * backup target adds to Longhorn's Application, the least-privilege account of the check, the
 * writer and the comparison run under `sh` on a real directory, and the check's script against a
 * fake Kubernetes API answering with Backups as Longhorn 1.12 writes them (checked against the
 * vendored CRD): pass, content that differs, no backup, a backup too old, a restore that never
 * finishes — and the scratch objects deleted every time.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ManifestValidator } from '../lib/tools/validate/manifest-validator';
import { CANARY_TEXT, COMPARE_SCRIPT, WRITER_SCRIPT } from '../charts/longhorn-canary';
import { CHECK_START_SECONDS } from '../lib/model/checkpoint';
import { invariantNamed } from './invariants';
import { answerAsApiServer, configProblems, FAKE_CLOCK, fakeCallCount, FAKE_SLEEP, fixtureObject, Manifest, manifestAt, manifestsOf, readFakeFile, ROOT, runWithFakeCommands, Synthesized, synthesizePlatforms, tempDir, toYamlText, withFiles, kubeGetMaxSeconds } from './support';

/** The small fixture with a backup target and any change. */
function configText(change: (config: Record<string, any>) => void = () => {}): string {
  const config = fixtureObject('small');
  config.backup = { target: 's3://homelab-backups@eu-central-1/lab/', endpoint: 'https://s3.eu-central-1.example.net' };
  change(config);
  return toYamlText(config);
}

const [lab] = synthesizePlatforms(configText());
const manifests = manifestsOf(lab.env);
const find = (path: string): Manifest => manifestAt(lab.env, path);
const checkJob = find('verification/job-longhorn-system-longhorn-canary-restore.yaml');
const checkContainer = checkJob.spec.template.spec.containers[0];
const envOf = (name: string): string => checkContainer.env.find((e: { name: string }) => e.name === name).value;

describe('services.longhorn.backup.canarySchedule and the names the canary takes', () => {
  it('is a cron schedule', () => {
    expect(configProblems(configText((c) => (c.services.longhorn = { ...c.services.longhorn, backup: { canarySchedule: '5 * * * *' } })))).toBe('');
    expect(configProblems(configText((c) => (c.services.longhorn = { ...c.services.longhorn, backup: { canarySchedule: 'hourly' } })))).toContain('services.longhorn.backup.canarySchedule: expected a five-field cron expression');
  });

  it("refuses a storage class or recurring job under the canary's and the scratch class's names, at their paths", () => {
    const taken = configProblems(
      configText((c) => {
        c.services.longhorn = {
          storageClasses: { 'longhorn-replicated': { default: true }, 'longhorn-canary': {}, 'longhorn-restore-scratch': {}, 'longhorn-check-scratch': {} },
          recurringJobs: { 'canary-backup': { task: 'backup', cron: '0 1 * * *', retain: 2 } },
        };
      }),
    );
    expect(taken).toContain('services.longhorn.storageClasses.longhorn-canary: expected another name: "longhorn-canary" is the class of the backup canary volume');
    expect(taken).toContain('services.longhorn.storageClasses.longhorn-restore-scratch: expected another name');
    expect(taken).toContain("services.longhorn.storageClasses.longhorn-check-scratch: expected another name: \"longhorn-check-scratch\" is the class of the checks' throwaway volumes");
    expect(taken).toContain('services.longhorn.recurringJobs.canary-backup: expected another name: "canary-backup" is the job that backs up the canary volume');
  });
});

describe('the canary in Longhorn\'s Application', () => {
  it('is a volume of its own class, in the recurring-job group of its own backup job only', () => {
    const storageClass = find('longhorn/storageclass-longhorn-canary.yaml');
    expect(JSON.parse(storageClass.parameters.recurringJobSelector)).toEqual([{ name: 'canary', isGroup: true }]);
    expect(storageClass.reclaimPolicy).toBe('Delete');
    expect(find('longhorn/persistentvolumeclaim-longhorn-canary.yaml').spec.storageClassName).toBe('longhorn-canary');
    const job = find('longhorn/recurringjob-canary-backup.yaml');
    expect(job.spec).toMatchObject({ name: 'canary-backup', task: 'backup', groups: ['canary'], cron: '45 * * * *' });
  });

  it('keeps the volume attached with its writer, so that the recurring job backs it up', () => {
    const writer = find('longhorn/deployment-longhorn-canary.yaml');
    expect(writer.spec.replicas).toBe(1);
    expect(writer.spec.strategy.type).toBe('Recreate');
    expect(writer.spec.template.spec.volumes).toEqual([{ name: 'canary', persistentVolumeClaim: { claimName: 'longhorn-canary' } }]);
    expect(writer.spec.template.spec.containers[0].command).toEqual(['sh', '-ec', WRITER_SCRIPT]);
  });

  it('is not there without a backup target, and neither is the check', () => {
    const [none] = synthesizePlatforms(configText((c) => delete c.backup));
    const paths = manifestsOf(none.env).map((m) => m.path);
    expect(paths.filter((path) => path.includes('canary') || path.includes('restore-scratch'))).toEqual([]);
  });
});

describe('the restore check\'s account', () => {
  it('runs in longhorn-system as its own ServiceAccount, kept by Longhorn\'s Application', () => {
    expect(checkJob.metadata.namespace).toBe('longhorn-system');
    expect(checkJob.spec.template.spec.serviceAccountName).toBe('longhorn-canary-restore');
    expect(find('longhorn/serviceaccount-longhorn-canary-restore.yaml').automountServiceAccountToken).toBe(false);
  });

  /** Every Role and ClusterRole bound to the check's account, with the namespace its rules hold in (undefined: every namespace). */
  function grantsOfCheckAccount(): { namespace?: string; rules: any[] }[] {
    const isAccount = (subject: any) => subject.kind === 'ServiceAccount' && subject.name === 'longhorn-canary-restore' && subject.namespace === 'longhorn-system';
    const roles = manifests.map((m) => m.manifest).filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole');
    return manifests
      .map((m) => m.manifest)
      .filter((o) => (o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding') && o.subjects.some(isAccount))
      .map((binding) => {
        const role = roles.find((r) => r.kind === binding.roleRef.kind && r.metadata.name === binding.roleRef.name && (r.kind === 'ClusterRole' || r.metadata.namespace === binding.metadata.namespace));
        if (!role) throw new Error(`${binding.kind} ${binding.metadata.name}: no ${binding.roleRef.kind} ${binding.roleRef.name}`);
        return { namespace: binding.kind === 'RoleBinding' ? binding.metadata.namespace : undefined, rules: role.rules };
      });
  }

  it("may only read in longhorn-system: list Backups and get the canary PVC, never create or delete there", () => {
    const inLonghorn = grantsOfCheckAccount().filter((grant) => grant.namespace === 'longhorn-system');
    expect(inLonghorn.flatMap((grant) => grant.rules)).toEqual([
      { apiGroups: ['longhorn.io'], resources: ['backups'], verbs: ['list'] },
      { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['get'], resourceNames: ['longhorn-canary'] },
    ]);
  });

  it("may create PVCs and pods only in the verification's namespace, which is Pod Security restricted, and get, log and delete only the scratch ones there", () => {
    const grants = grantsOfCheckAccount();
    const creating = grants.filter((grant) => grant.rules.some((rule) => rule.verbs.includes('create') && rule.resources.some((r: string) => r === 'pods' || r === 'persistentvolumeclaims')));
    expect(creating.map((grant) => grant.namespace)).toEqual(['verification']);
    const namespace = find('verification/namespace-verification.yaml');
    for (const mode of ['enforce', 'audit', 'warn']) expect(namespace.metadata.labels?.[`pod-security.kubernetes.io/${mode}`]).toBe('restricted');
    const [scratch] = creating;
    for (const rule of scratch.rules.filter((rule) => !rule.verbs.every((verb: string) => verb === 'create'))) expect(rule.resourceNames, JSON.stringify(rule)).toEqual(['longhorn-restore-scratch']);
    expect(scratch.rules.flatMap((rule) => rule.verbs).sort()).toEqual(['create', 'delete', 'get', 'get']);
    // The script creates them there, and the verification's Application keeps the Role.
    expect(envOf('SCRATCH_NAMESPACE')).toBe('verification');
    expect(find('verification/role-longhorn-system-longhorn-canary-restore.yaml').metadata.namespace).toBe('verification');
  });

  it('reaches the API server from longhorn-system, whose egress to it every pod there has', () => {
    const podLabels = checkJob.spec.template.metadata.labels;
    const toApiServer = manifests
      .map((m) => m.manifest)
      .filter((o) => o.kind === 'NetworkPolicy' && o.metadata.namespace === 'longhorn-system')
      .filter((policy) => Object.entries(policy.spec.podSelector.matchLabels ?? {}).every(([key, value]) => podLabels[key] === value))
      .filter((policy) => (policy.spec.egress ?? []).some((rule: any) => (rule.ports ?? []).some((port: any) => port.port === 6443)));
    expect(toApiServer.map((policy) => policy.metadata.name)).not.toEqual([]);
  });

  it('creates the scratch StorageClass cluster-wide (create cannot be limited to a name) and reads and deletes only it', () => {
    const clusterRole = find('longhorn/clusterrole-longhorn-canary-restore.yaml');
    expect(clusterRole.rules).toEqual([
      { apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['create'] },
      { apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['get', 'delete'], resourceNames: ['longhorn-restore-scratch'] },
    ]);
    expect(find('longhorn/clusterrolebinding-longhorn-canary-restore.yaml').subjects).toEqual([{ kind: 'ServiceAccount', name: 'longhorn-canary-restore', namespace: 'longhorn-system' }]);
    expect(grantsOfCheckAccount().filter((grant) => grant.namespace === undefined).map((grant) => grant.rules)).toEqual([clusterRole.rules]);
  });

  it('sends scratch objects that are valid Kubernetes objects: a class restoring from the backup, its PVC, a restricted pod', () => {
    const storageClass = JSON.parse(envOf('RESTORE_CLASS').replace('BACKUP_URL', 's3://b@r/p/?backup=backup-1&volume=pvc-1'));
    const claim = JSON.parse(envOf('RESTORE_CLAIM'));
    const pod = JSON.parse(envOf('RESTORE_POD'));
    for (const object of [storageClass, claim, pod]) expect(ManifestValidator.shared().validate(object), object.kind).toEqual([]);
    // The PVC and the pod go where the script's URL sends them: the scratch namespace.
    expect([claim.metadata.namespace, pod.metadata.namespace]).toEqual([undefined, undefined]);
    expect(storageClass.parameters).toMatchObject({ fromBackup: 's3://b@r/p/?backup=backup-1&volume=pvc-1', recurringJobSelector: '[]' });
    expect(claim.spec.storageClassName).toBe(storageClass.metadata.name);
    expect(claim.spec.resources).toEqual(find('longhorn/persistentvolumeclaim-longhorn-canary.yaml').spec.resources);
    expect(pod.spec.volumes).toEqual([{ name: 'canary', persistentVolumeClaim: { claimName: claim.metadata.name, readOnly: true } }]);
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.spec.containers[0].securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(pod.spec.containers[0].command).toEqual(['sh', '-ec', COMPARE_SCRIPT]);
  });
});

describe('the invariant: no check may create pods where admission takes privileged ones', () => {
  const invariant = invariantNamed('no check may create pods');
  /** lab with one written file's text appended to. */
  const appended = (path: string, text: string): Synthesized =>
    withFiles(lab, (files) => {
      if (!files.has(path)) throw new Error(`no ${path}`);
      files.set(path, files.get(path)! + text);
    });
  const rule = (group: string, resource: string) => `  - apiGroups: ["${group}"]\n    resources: [${resource}]\n    verbs: [create]\n`;

  it('holds on the canary check, which creates its pod in the restricted verification namespace', () => {
    expect(invariant.check([lab])).toEqual([]);
  });

  it("fails for the check's Role in longhorn-system (privileged) granting pods or a workload, and for a cluster-wide grant", () => {
    const role = 'longhorn/role-longhorn-canary-restore.yaml';
    expect(invariant.check([appended(role, rule('', 'pods'))])).toEqual([
      'lab/longhorn/rolebinding-longhorn-canary-restore.yaml: check account longhorn-system/longhorn-canary-restore may create pods in longhorn-system, whose Pod Security level is privileged',
    ]);
    expect(invariant.check([appended(role, rule('batch', 'jobs'))])).toHaveLength(1);
    expect(invariant.check([appended('longhorn/clusterrole-longhorn-canary-restore.yaml', rule('apps', '"*"'))])).toEqual([
      'lab/longhorn/clusterrolebinding-longhorn-canary-restore.yaml: check account longhorn-system/longhorn-canary-restore may create pods in every namespace',
    ]);
  });
});

describe('the canary file: written, then compared after a restore', () => {
  /** Runs a script of the writer or the restore pod on `dir` as its volume; `sleep` fails, ending the writer's loop. */
  const run = (script: string, dir: string) =>
    runWithFakeCommands({ command: ['sh', '-ec', script], env: [{ name: 'CANARY_DIR', value: dir }, { name: 'CANARY_FILE', value: 'canary' }, { name: 'CANARY_TEXT', value: CANARY_TEXT }, { name: 'REWRITE_SECONDS', value: '3600' }] }, { sleep: 'exit 1' });

  function roundTrip(tamper: (file: string) => void = () => {}) {
    const dir = tempDir();
    try {
      const written = run(WRITER_SCRIPT, dir);
      expect(written.status, written.stderr).not.toBeNull();
      expect(written.stdout).toMatch(/^canary written at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m);
      tamper(join(dir, 'canary'));
      return run(COMPARE_SCRIPT, dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('reads back what the writer wrote, saying when', () => {
    const compared = roundTrip();
    expect(compared.status, compared.stdout).toBe(0);
    expect(compared.stdout).toMatch(/^canary written at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/);
  });

  it('fails, saying why, on other text, a time that does not match its checksum, or no file', () => {
    const edit = (from: RegExp, to: string) => (file: string) => writeFileSync(file, readFileSync(file, 'utf8').replace(from, to));
    const otherText = roundTrip(edit(/^homelab/, 'lab'));
    expect(otherText.status).toBe(1);
    expect(otherText.stdout).toContain('the restored canary says "lab longhorn canary');
    const otherTime = roundTrip(edit(/T\d\d:/, 'T99:'));
    expect(otherTime.status).toBe(1);
    expect(otherTime.stdout).toMatch(/the restored canary \(written at .*T99:.*\) does not match its checksum/);
    const gone = roundTrip((file) => rmSync(file));
    expect(gone.status).toBe(1);
    expect(gone.stdout).toContain('the restored volume holds no canary file');
  });
});

describe('the restore check against a fake Kubernetes API', () => {
  /**
   * longhorn-manager's KubernetesStatus label of a backup of a volume a pod mounts: the volume's
   * Kubernetes status as JSON text (braces and a list inside a label value).
   */
  const KUBERNETES_STATUS = JSON.stringify({
    lastPVCRefAt: '',
    lastPodRefAt: '',
    namespace: 'longhorn-system',
    pvName: 'pvc-4711',
    pvStatus: 'Bound',
    pvcName: 'longhorn-canary',
    workloadsStatus: [{ podName: 'longhorn-canary-writer-7d9f-abcde', podStatus: 'Running', workloadName: 'longhorn-canary-writer-7d9f', workloadType: 'ReplicaSet' }],
  });
  /** A Backup as longhorn-manager 1.12 keeps it: labelled with its volume, status keys as the API server sorts them. */
  function backup(name: string, hoursAgo: number, state: string): Record<string, unknown> {
    const created = new Date(Date.now() - hoursAgo * 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    return {
      apiVersion: 'longhorn.io/v1beta2',
      kind: 'Backup',
      metadata: { name, namespace: 'longhorn-system', labels: { 'backup-target': 'default', 'backup-volume': 'pvc-4711' } },
      spec: { backupMode: 'incremental', labels: { RecurringJob: 'canary-backup' }, snapshotName: `canary-b-${name}` },
      status: {
        backupCreatedAt: created,
        backupTargetName: 'default',
        compressionMethod: 'lz4',
        labels: { KubernetesStatus: KUBERNETES_STATUS, RecurringJob: 'canary-backup', 'longhorn.io/volume-access-mode': 'rwo' },
        lastSyncedAt: created,
        ...(state === 'Error' && { error: 'failed to upload', messages: { error: 'failed to upload' } }),
        progress: state === 'Completed' ? 100 : 30,
        size: '2097152',
        snapshotCreatedAt: created,
        snapshotName: `canary-b-${name}`,
        state,
        url: `s3://homelab-backups@eu-central-1/lab/longhorn/?backup=${name}&volume=pvc-4711`,
        volumeName: 'pvc-4711',
        volumeSize: '67108864',
      },
    };
  }

  /** The API server's JSON as kube_get gets it (compact): keys sorted (custom resources are maps), `&` escaped as Go's encoder does. */
  function apiJson(value: unknown): string {
    const sorted = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(sorted) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, sorted(x)])) : v;
    return JSON.stringify(sorted(value)).replace(/&/g, '\\u0026');
  }

  /** curl as kube_get calls it: every call recorded, answers by method and path (the canary's in longhorn-system, the scratch ones in verification); `-o` writes there; what is not there is a 404, as curl -f reports it. */
  const curl = String.raw`missing() { echo "curl: (22) The requested URL returned error: 404" >&2; exit 22; }
method=GET; body=""; out=""; prev=""; url=""
for a in "$@"; do
  case "$prev" in -X) method=$a ;; --data-binary) body=$a ;; -o) out=$a ;; esac
  prev=$a; url=$a
done
path=${'$'}{url#https://kubernetes.default.svc}
printf '%s %s\n' "$method" "$path" >> "$FAKE_BIN/calls"
[ -z "$body" ] || printf '%s\n' "$body" >> "$FAKE_BIN/bodies"
[ -z "$out" ] || exec > "$out"
case "$method $path" in
  "DELETE "*) exit 0 ;;
  "POST /api/v1/namespaces/verification/pods") touch "$FAKE_BIN/pod"; exit 0 ;;
  "POST /apis/storage.k8s.io/v1/storageclasses"|"POST /api/v1/namespaces/verification/persistentvolumeclaims") exit 0 ;;
  "GET /api/v1/namespaces/longhorn-system/persistentvolumeclaims/longhorn-canary") ${answerAsApiServer(`printf '%s' "$CANARY_PVC"`)} ;;
  "GET /apis/longhorn.io/v1beta2/namespaces/longhorn-system/backups?"*) ${answerAsApiServer(`printf '%s' "$BACKUPS"`)} ;;
  "GET /api/v1/namespaces/verification/pods/longhorn-restore-scratch/log") printf '%s\n' "$POD_LOG" ;;
  "GET /api/v1/namespaces/verification/pods/longhorn-restore-scratch")
    [ -f "$FAKE_BIN/pod" ] || missing
    ${fakeCallCount('polls', '$FAKE_BIN/polls')}
    phase=$(echo "$POD_PHASES" | tr ' ' '\n' | sed -n "${'$'}{polls}p")
    phase=${'$'}{phase:-$(echo "$POD_PHASES" | tr ' ' '\n' | tail -n 1)}
    ${answerAsApiServer(`printf '{"kind":"Pod","status":{"phase":"%s"}}' "$phase"`)} ;;
  *) missing ;;
esac`;

  const BOUND = apiJson({ kind: 'PersistentVolumeClaim', metadata: { name: 'longhorn-canary' }, spec: { storageClassName: 'longhorn-canary', volumeName: 'pvc-4711' }, status: { phase: 'Bound' } });

  /** `clock`: a fake `date`, a minute later at every call, so that the deadline comes after a few waits. */
  function check(answers: { backups?: Record<string, unknown>[]; phases?: string; log?: string; pvc?: string; env?: Record<string, string>; curlPrefix?: string; clock?: boolean }) {
    const result = runWithFakeCommands(checkContainer, { curl: `${answers.curlPrefix ?? ''}\n${curl}`, sleep: FAKE_SLEEP, ...(answers.clock && { date: FAKE_CLOCK }) }, {
      env: {
        CANARY_PVC: answers.pvc ?? BOUND,
        BACKUPS: apiJson({ apiVersion: 'longhorn.io/v1beta2', kind: 'BackupList', items: answers.backups ?? [] }),
        POD_PHASES: answers.phases ?? 'Pending Running Succeeded',
        POD_LOG: answers.log ?? 'canary written at 2026-12-05T10:45:01Z',
        ...answers.env,
      },
      collect: (bin) => {
        const read = (file: string) => readFakeFile(bin, file).split('\n').filter(Boolean);
        return { calls: read('calls'), bodies: read('bodies').map((body) => JSON.parse(body)) };
      },
    });
    return { ...result, output: result.stdout + result.stderr, calls: result.collected.calls, bodies: result.collected.bodies };
  }

  const SCRATCH = ['DELETE /api/v1/namespaces/verification/pods/longhorn-restore-scratch?gracePeriodSeconds=0', 'DELETE /api/v1/namespaces/verification/persistentvolumeclaims/longhorn-restore-scratch', 'DELETE /apis/storage.k8s.io/v1/storageclasses/longhorn-restore-scratch'];
  /** The scratch objects are deleted at the end, after anything was created. */
  const cleanedUp = (calls: readonly string[]) => {
    expect(calls.slice(-3)).toEqual(SCRATCH);
    expect(calls.slice(0, 3)).toEqual(SCRATCH);
  };

  it('uses only fields the vendored Backup CRD has, in the order the script reads them', () => {
    const crd = parseAllDocuments(readFileSync(join(ROOT, 'vendor/crds/longhorn.yaml'), 'utf8'))
      .map((doc) => doc.toJS())
      .find((doc) => doc.metadata.name === 'backups.longhorn.io');
    const version = crd.spec.versions.find((v: any) => v.name === 'v1beta2');
    const status = Object.keys(version.schema.openAPIV3Schema.properties.status.properties).sort();
    // The script reads backupCreatedAt, then url, of one item's line: the API server sorts a status's keys, and these sort so.
    expect(status).toEqual(expect.arrayContaining(['backupCreatedAt', 'state', 'url']));
    for (const object of [backup('backup-a', 1, 'Completed'), backup('backup-b', 1, 'Error')]) expect(ManifestValidator.shared().validate(object)).toEqual([]);
  });

  it('restores the newest completed backup of the canary volume, compares it, reports PASS with its age, and cleans up', () => {
    const run = check({ backups: [backup('backup-old', 27, 'Completed'), backup('backup-new', 2, 'Completed'), backup('backup-failed', 1, 'Error'), backup('backup-running', 0, 'InProgress')] });
    expect(run.status, run.output).toBe(0);
    expect(run.stdout).toContain('PASS latest backup backup-new of the canary volume: 2 h old, restored into a scratch volume, content matches (canary written at 2026-12-05T10:45:01Z)');
    expect(run.calls).toContain('GET /api/v1/namespaces/longhorn-system/persistentvolumeclaims/longhorn-canary');
    expect(run.calls).toContain('GET /apis/longhorn.io/v1beta2/namespaces/longhorn-system/backups?labelSelector=backup-volume%3Dpvc-4711');
    // Nothing is made in longhorn-system: the PVC and the pod in the restricted scratch namespace, the class cluster-wide.
    expect(run.calls.filter((call) => call.startsWith('POST'))).toEqual(['POST /apis/storage.k8s.io/v1/storageclasses', 'POST /api/v1/namespaces/verification/persistentvolumeclaims', 'POST /api/v1/namespaces/verification/pods']);
    expect(run.calls.filter((call) => call.includes('/namespaces/longhorn-system/')).every((call) => call.startsWith('GET'))).toBe(true);
    const [storageClass, claim, pod] = run.bodies;
    // The JSON-escaped URL goes into the body as it came: the API server reads the & back.
    expect(storageClass.parameters.fromBackup).toBe('s3://homelab-backups@eu-central-1/lab/longhorn/?backup=backup-new&volume=pvc-4711');
    expect([storageClass.kind, claim.kind, pod.kind]).toEqual(['StorageClass', 'PersistentVolumeClaim', 'Pod']);
    cleanedUp(run.calls);
    expect(run.calls.indexOf('POST /api/v1/namespaces/verification/pods')).toBeLessThan(run.calls.length - 3);
  });

  it('fails with the reason when the restored content differs, and cleans up', () => {
    const run = check({ backups: [backup('backup-new', 2, 'Completed')], phases: 'Pending Failed', log: 'the restored canary says "garbage", expected "..."' });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('FAIL latest backup backup-new of the canary (2 h old) restored, but: the restored canary says "garbage"');
    cleanedUp(run.calls);
  });

  it('fails when there is no completed backup, or the canary is not bound, creating nothing', () => {
    const none = check({ backups: [backup('backup-failed', 1, 'Error')] });
    expect(none.status).toBe(1);
    expect(none.stderr).toContain('FAIL no completed backup of the canary volume pvc-4711 yet (recurring job canary-backup, cron "45 * * * *")');
    expect(none.calls.filter((call) => call.startsWith('POST'))).toEqual([]);
    cleanedUp(none.calls);
    const unbound = check({ pvc: apiJson({ kind: 'PersistentVolumeClaim', spec: { storageClassName: 'longhorn-canary' }, status: { phase: 'Pending' } }) });
    expect(unbound.stderr).toContain('FAIL the canary volume longhorn-system/longhorn-canary is not bound');
    cleanedUp(unbound.calls);
  });

  it('fails on a backup older than canaryMaxAgeHours, after proving it restores', () => {
    expect(envOf('MAX_AGE_HOURS')).toBe('3');
    const run = check({ backups: [backup('backup-stale', 4, 'Completed')] });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('FAIL latest backup backup-stale of the canary restored and matches, but it is 4 h old, more than 3 h');
    cleanedUp(run.calls);
  });

  it('fails when the restore does not finish in time, saying where it stopped, and cleans up', () => {
    const run = check({ backups: [backup('backup-new', 1, 'Completed')], phases: 'Pending', env: { BUDGET_SECONDS: '0' } });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("FAIL latest backup backup-new of the canary (1 h old) was not restored and read within the check's 0 s (pod verification/longhorn-restore-scratch: Pending)");
    cleanedUp(run.calls);
  });

  it('waits for everything within one budget that leaves the Job time to clean up', () => {
    const budget = Number(envOf('BUDGET_SECONDS'));
    expect(budget).toBeGreaterThan(0);
    // After the pod's start and the budget, at least the cleanup's three deletes at the API call's limit.
    const script: string = checkJob.spec.template.spec.containers[0].command.at(-1);
    const apiCallSeconds = kubeGetMaxSeconds(script);
    expect(checkJob.spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(CHECK_START_SECONDS + budget + 3 * apiCallSeconds);
  });

  it("gives up on a killed run's leftover that stays, at the deadline, naming it, and cleans up", () => {
    const stays = String.raw`case "$*" in *-X\ DELETE*) ;; *persistentvolumeclaims/longhorn-restore-scratch*) exit 0 ;; esac`;
    const run = check({ backups: [backup('backup-new', 1, 'Completed')], curlPrefix: stays, clock: true });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('FAIL /api/v1/namespaces/verification/persistentvolumeclaims/longhorn-restore-scratch of an earlier run is still there');
    expect(run.calls.filter((call) => call.startsWith('POST'))).toEqual([]);
    expect(run.calls.slice(-3)).toEqual(SCRATCH);
  });

  it("takes a leftover for gone only on the API server's 404, not when a read gets no answer", () => {
    const unanswered = String.raw`case "$*" in *-X\ DELETE*) ;; *persistentvolumeclaims/longhorn-restore-scratch*) echo "curl: (28) Operation timed out after 10001 milliseconds" >&2; exit 28 ;; esac`;
    const run = check({ backups: [backup('backup-new', 1, 'Completed')], curlPrefix: unanswered, clock: true });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      'FAIL /api/v1/namespaces/verification/persistentvolumeclaims/longhorn-restore-scratch of an earlier run is still there (or the API server does not say it is gone: curl: (28) Operation timed out after 10001 milliseconds)',
    );
    expect(run.calls.filter((call) => call.startsWith('POST'))).toEqual([]);
  });

  it('waits for the scratch objects of a killed run to be gone before making them again', () => {
    // The PVC of an earlier run is still there for two more reads, then gone.
    const leftover = String.raw`case "$*" in *-X\ DELETE*) ;; *persistentvolumeclaims/longhorn-restore-scratch*)
  ${fakeCallCount('n', '$FAKE_BIN/left')}; [ "$n" -gt 2 ] || exit 0 ;; esac`;
    const run = check({ backups: [backup('backup-new', 1, 'Completed')], curlPrefix: leftover });
    expect(run.status, run.output).toBe(0);
    const reads = run.calls.filter((call) => call === 'GET /api/v1/namespaces/verification/persistentvolumeclaims/longhorn-restore-scratch');
    expect(reads.length).toBe(1);
    expect(run.calls.indexOf('POST /api/v1/namespaces/verification/persistentvolumeclaims')).toBeGreaterThan(run.calls.lastIndexOf('GET /api/v1/namespaces/verification/persistentvolumeclaims/longhorn-restore-scratch'));
    cleanedUp(run.calls);
  });
});
