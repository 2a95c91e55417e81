/**
 * Off-site raft snapshots of Vault: the config checks, the CronJob and the least-privilege role
 * the configurator keeps for it, the alerts when a snapshot is late or failed, and both steps of
 * the Job run under `sh` against a fake Vault CLI and a fake S3 upload.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configProblems, fixtureObject, Manifest, manifestAt, manifestsOf, readFakeFile, runWithFakeCommands, synthesizePlatforms, tempDir, toYamlText } from './support';
import { assertValidPromql } from './support-promql';
import type { Recovery } from '../lib/model/recovery';
import { recoveryRunbook } from '../lib/output/recovery-doc';
import type { ServiceSummary } from '../lib/output/synthesize';

/** The small fixture with Vault in HA (three nodes), External Secrets and a backup, and any change. */
function configText(change: (config: Record<string, any>) => void = () => {}): string {
  const config = fixtureObject('small');
  config.nodes = Object.fromEntries(['node-1', 'node-2', 'node-3'].map((name, i) => [name, { role: i === 0 ? 'control-plane' : 'worker', cpu: 8, memory: '32Gi' }]));
  config.backup = { target: 's3://homelab-backups@eu-central-1/', endpoint: 'https://s3.eu-central-1.example.net' };
  Object.assign(config.services, {
    vault: { enabled: true, replicas: 3, backup: {} },
    externalSecrets: { enabled: true },
  });
  change(config);
  return toYamlText(config);
}

const problems = configProblems;

const [lab] = synthesizePlatforms(configText());
const manifests = manifestsOf(lab.env);
const find = (path: string): Manifest => manifestAt(lab.env, path);
const cronJob = find('vault/cronjob-vault-snapshot.yaml');
const pod = cronJob.spec.jobTemplate.spec.template.spec;

describe('services.vault.backup', () => {
  it('is valid on an HA Vault', () => {
    expect(problems(configText())).toBe('');
  });

  it('is refused on a standalone Vault, pointing to Longhorn\'s backups of its volume', () => {
    expect(problems(configText((c) => (c.services.vault.replicas = 1)))).toContain("services.vault.backup: expected replicas 3 or 5 for raft snapshots: a standalone Vault keeps its data in a file on its Longhorn volume, which Longhorn's recurring backups copy");
  });

  it("is refused without the environment's backup target, and names none of its own", () => {
    expect(problems(configText((c) => delete c.backup))).toContain("services.vault.backup: expected a backup target: Vault's snapshots go to backup.target, the environment's backup target");
    expect(problems(configText((c) => (c.services.vault.backup.target = 's3://other@eu-central-1/vault/')))).toContain('services.vault.backup.target: unknown key; expected one of schedule, maxAgeHours');
  });

  it('wants a cron schedule and a maximum age of 1 to 168 hours', () => {
    expect(problems(configText((c) => (c.services.vault.backup.schedule = 'nightly')))).toContain('services.vault.backup.schedule: expected a five-field cron expression');
    for (const hours of [0, 169]) expect(problems(configText((c) => (c.services.vault.backup.maxAgeHours = hours))), String(hours)).toContain('services.vault.backup.maxAgeHours');
  });
});

describe('the snapshot CronJob', () => {
  it('saves a raft snapshot as its own Vault role, then uploads it to the target', () => {
    expect(cronJob.spec).toMatchObject({ schedule: '15 2 * * *', concurrencyPolicy: 'Forbid' });
    expect(pod.initContainers.map((c: any) => c.name)).toEqual(['snapshot']);
    expect(pod.containers.map((c: any) => c.name)).toEqual(['upload']);
    const upload = Object.fromEntries(pod.containers[0].env.map((e: any) => [e.name, e.value ?? e.valueFrom.secretKeyRef]));
    expect(upload.S3_URL).toBe('https://s3.eu-central-1.example.net/homelab-backups/vault');
    expect(upload.AWS_ACCESS_KEY_ID).toEqual({ name: 'vault-backup-credentials', key: 'AWS_ACCESS_KEY_ID', optional: true });
    // Its identity: a token for Vault's audience only, no API token mounted.
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.volumes).toContainEqual({ name: 'token', projected: { sources: [{ serviceAccountToken: { audience: 'vault', expirationSeconds: 600, path: 'token' } }] } });
  });

  it('logs in as a role the configurator keeps, whose policy reads the snapshot endpoint and nothing else', () => {
    const data = find('vault/configmap-vault-configurator.yaml').data!;
    expect(data.roles.split('\n')).toContain('homelab-vault-snapshot vault-snapshot vault');
    expect(data['homelab-vault-snapshot.hcl']).toBe('path "sys/storage/raft/snapshot" {\n  capabilities = ["read"]\n}\n');
  });

  it("reads the environment's one copy of the target's keys from Vault without holding Vault back, and may reach only the target", () => {
    const need = lab.platform.services.find((s) => s.serviceName === 'vault')!.secretNeeds.find((n) => n.name === 'vault-backup-credentials')!;
    expect(need).toMatchObject({ keys: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'], neededToStart: false });
    expect(new Set(need.template!.inputs.map((input) => `${input.from.service}/${input.from.name}`))).toEqual(new Set(['backup/credentials']));
    expect(manifests.find((m) => m.manifest.kind === 'ExternalSecret' && m.manifest.metadata.name === 'vault-backup-credentials')!.path).toMatch(/^external-secrets\//);
    const egress = find('vault/networkpolicy-egress-backup-target.yaml');
    expect(egress.spec.podSelector.matchLabels).toEqual(cronJob.spec.jobTemplate.spec.template.metadata.labels);
    // A host name: public addresses on the endpoint's port only (a NetworkPolicy cannot name a host).
    expect(egress.spec.egress.map((rule: any) => rule.ports)).toEqual([[{ port: 443, protocol: 'TCP' }]]);
    // The verification's restore check reaches the target too: its pods, not every checkpoint in the namespace.
    const restore = find('vault/networkpolicy-egress-restore-check-backup-target.yaml');
    const restorePods = find('verification/job-vault-vault-snapshot-restore.yaml').spec.template.metadata.labels;
    expect(Object.entries(restore.spec.podSelector.matchLabels).every(([key, value]) => restorePods[key] === value)).toBe(true);
    expect(restore.spec.podSelector.matchLabels['app.kubernetes.io/instance']).toBe(restorePods['app.kubernetes.io/instance']);
    const ownCheckpoint = find('vault/job-vault-checkpoint.yaml').spec.template.metadata.labels;
    expect(Object.entries(restore.spec.podSelector.matchLabels).every(([key, value]) => ownCheckpoint[key] === value)).toBe(false);
  });

  it('alerts when the latest snapshot is late or a run failed', () => {
    // Declared by Vault; emitted as a PrometheusRule wherever monitoring runs.
    const rules: any[] = [...lab.platform.services.find((s) => s.serviceName === 'vault')!.alertRules];
    const late = rules.find((r: any) => r.alert === 'VaultBackupLate');
    const failed = rules.find((r: any) => r.alert === 'VaultBackupFailed');
    expect(late.expr).toContain('kube_cronjob_status_last_successful_time{namespace="vault", cronjob="vault-snapshot"}) > 93600');
    // The last scheduled run still without success past its deadline: not a pod a retry recovered, not an old failed Job.
    expect(failed.expr).toBe(
      'max(kube_cronjob_status_last_schedule_time{namespace="vault", cronjob="vault-snapshot"}) - max(kube_cronjob_status_last_successful_time{namespace="vault", cronjob="vault-snapshot"}) > 1800',
    );
    assertValidPromql([late, failed].map((rule) => ({ label: rule.alert, expr: rule.expr })));
  });
});

describe('the snapshot and upload steps', () => {
  /** A fake `vault`: the login answers a token (or fails), the snapshot writes $SNAPSHOT_BYTES to the file named last. */
  const vault = String.raw`echo "$*" >> "$FAKE_BIN/calls"
case "$1 $2" in
  "write -field=token") [ "$LOGIN" = ok ] || { echo "permission denied" >&2; exit 2; }; echo s.token ;;
  "operator raft") [ "$VAULT_TOKEN" = s.token ] || exit 2; printf '%s' "$SNAPSHOT_BYTES" > "$5" ;;
esac`;
  /** The step's container with local files where the pod has its volumes. */
  function run(container: any, fakes: Record<string, string>, env: Record<string, string>) {
    const dir = tempDir();
    try {
      writeFileSync(join(dir, 'token'), 'jwt');
      writeFileSync(join(dir, 'vault.snap'), 'raft-data');
      const result = runWithFakeCommands(container, fakes, {
        env: { TOKEN_FILE: join(dir, 'token'), SNAPSHOT_FILE: join(dir, 'vault.snap'), ...env },
        collect: (bin) => readFakeFile(bin, 'calls'),
      });
      return { ...result, dir };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('logs in as its role with its projected token, and saves a non-empty snapshot', () => {
    const ok = run(pod.initContainers[0], { vault }, { LOGIN: 'ok', SNAPSHOT_BYTES: 'raft-data' });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.collected).toContain(`write -field=token auth/kubernetes/login role=homelab-vault-snapshot jwt=@${ok.dir}/token`);
    expect(ok.collected).toContain(`operator raft snapshot save ${ok.dir}/vault.snap`);
    expect(ok.stdout).toContain('raft snapshot saved: 9 bytes');
  });

  it('fails when the login is refused or the snapshot is empty', () => {
    expect(run(pod.initContainers[0], { vault }, { LOGIN: 'denied', SNAPSHOT_BYTES: 'x' }).status).not.toBe(0);
    const empty = run(pod.initContainers[0], { vault }, { LOGIN: 'ok', SNAPSHOT_BYTES: '' });
    expect(empty.status).not.toBe(0);
    expect(empty.stderr).toContain('the snapshot is empty');
  });

  it('uploads the snapshot under a timestamped name, signed for the target\'s region', () => {
    const curl = String.raw`printf '%s\n' "$@" > "$FAKE_BIN/calls"`;
    const ok = run(pod.containers[0], { curl }, { AWS_ACCESS_KEY_ID: 'key', AWS_SECRET_ACCESS_KEY: 'secret' });
    expect(ok.status, ok.stderr).toBe(0);
    const args = ok.collected.split('\n');
    expect(args).toContain('aws:amz:eu-central-1:s3');
    expect(args).toContain(`${ok.dir}/vault.snap`);
    expect(args.find((a) => a.startsWith('https://'))).toMatch(/^https:\/\/s3\.eu-central-1\.example\.net\/homelab-backups\/vault\/vault-\d{8}T\d{6}Z\.snap$/);
  });

  it('fails, naming the Secret, without keys, and when the upload fails', () => {
    const noKeys = run(pod.containers[0], { curl: 'exit 0' }, { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' });
    expect(noKeys.status).not.toBe(0);
    expect(noKeys.stderr).toContain('the Secret vault-backup-credentials (External Secrets delivers it from Vault) is missing');
    expect(run(pod.containers[0], { curl: 'exit 22' }, { AWS_ACCESS_KEY_ID: 'key', AWS_SECRET_ACCESS_KEY: 'secret' }).status).not.toBe(0);
  });
});

describe('the restore check of the verification', () => {
  const job = find('verification/job-vault-vault-snapshot-restore.yaml');
  const container = job.spec.template.spec.containers[0];

  /** `vault-<UTC time>.snap` of `hoursAgo` hours ago. */
  const keyOf = (hoursAgo: number) => `vault/vault-${new Date(Date.now() - hoursAgo * 3600_000).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')}.snap`;

  /** A raft snapshot archive as hashicorp/raft-snapshot writes it (or a broken one), in `dir`. */
  function archive(dir: string, kind: 'sound' | 'tampered' | 'not-raft'): string {
    const files = join(dir, 'files');
    mkdirSync(files);
    const meta = '{"Version":1,"ID":"2-4711-1700000000000","Index":4711,"Term":2}\n';
    const state = 'raft state';
    writeFileSync(join(files, 'meta.json'), meta);
    writeFileSync(join(files, 'state.bin'), kind === 'tampered' ? 'changed state' : state);
    const sums = [`${createHash('sha256').update(meta).digest('hex')}  meta.json`, `${createHash('sha256').update(state).digest('hex')}  state.bin`];
    if (kind !== 'not-raft') writeFileSync(join(files, 'SHA256SUMS'), `${sums.join('\n')}\n`);
    const path = join(dir, 'snapshot.tgz');
    expect(spawnSync('tar', ['-czf', path, '-C', files, '.']).status).toBe(0);
    return path;
  }

  /** A fake S3 for curl: a listing of $KEYS, and the archive for any download (`-o`). */
  const curl = String.raw`out=""; prev=""; for a in "$@"; do [ "$prev" = -o ] && out="$a"; prev="$a"; done
echo "$*" >> "$FAKE_BIN/calls"
if [ -n "$out" ]; then cp "$ARCHIVE" "$out"; exit 0; fi
printf '<ListBucketResult>'; for key in $KEYS; do printf '<Contents><Key>%s</Key></Contents>' "$key"; done; printf '</ListBucketResult>'`;

  function check(keys: string[], kind: 'sound' | 'tampered' | 'not-raft' = 'sound') {
    const dir = tempDir();
    try {
      const work = join(dir, 'work');
      mkdirSync(work);
      const result = runWithFakeCommands(container, { curl }, {
        env: { KEYS: keys.join(' '), ARCHIVE: archive(dir, kind), WORK_DIR: work, AWS_ACCESS_KEY_ID: 'key', AWS_SECRET_ACCESS_KEY: 'secret' },
        collect: (bin) => readFileSync(join(bin, 'calls'), 'utf8'),
      });
      return { ...result, leftover: readdirSync(work) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('passes on the newest snapshot when it is young and sound, reporting its age, and cleans up', () => {
    const newest = keyOf(3);
    const run = check([keyOf(50), newest, keyOf(27), 'vault/notes.txt']);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain(`PASS latest Vault snapshot ${newest}: 3 h old, raft index 4711, checksums match`);
    expect(run.collected).toContain(`https://s3.eu-central-1.example.net/homelab-backups/${newest}`);
    expect(run.collected).toContain('https://s3.eu-central-1.example.net/homelab-backups/?list-type=2&prefix=vault');
    // Only the snapshots of the last maxAgeHours are listed: S3 answers at most 1000 keys, oldest first.
    expect(run.collected).toMatch(/&start-after=vault\/vault-\d{8}T\d{6}Z\.snap/);
    expect(run.leftover).toEqual([]);
  });

  it('fails, with the age, when the newest snapshot is too old, tampered with or no raft archive, or there is none', () => {
    expect(check([keyOf(30)]).stderr).toContain('is 30 h old, more than 26 h');
    expect(check([keyOf(1)], 'tampered').stderr).toContain('1 h old): its checksums do not match');
    expect(check([keyOf(1)], 'not-raft').stderr).toContain('holds no SHA256SUMS: not a raft snapshot');
    const none = check(['vault/notes.txt']);
    expect(none.status).not.toBe(0);
    expect(none.stderr).toContain('FAIL no Vault snapshot under https://s3.eu-central-1.example.net/homelab-backups/vault');
    expect(none.leftover).toEqual([]);
  });

  it('runs in the vault namespace with the target\'s keys and scratch space', () => {
    expect(job.metadata.namespace).toBe('vault');
    expect(container.env).toContainEqual({ name: 'AWS_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: 'vault-backup-credentials', key: 'AWS_ACCESS_KEY_ID' } } });
    expect(job.spec.template.spec.volumes).toContainEqual({ name: 'work', emptyDir: {} });
  });
});

describe('the disaster-recovery runbook', () => {
  const summary = (name: string, recoveries: Recovery[]) => ({ name, recoveries }) as unknown as ServiceSummary;
  const step = (stage: Recovery['stage'], data: string): Recovery => ({
    stage,
    data,
    target: `s3://b@r/${data}/`,
    schedule: 'cron "0 3 * * *"',
    restore: [`restore ${data}`],
    atHand: [],
    check: [`check ${data}`],
    restoreCheck: { namespace: data, job: `${data}-restore` },
  });

  it('lists what Git restores, then the restores in order: secrets, databases, volumes', () => {
    const text = recoveryRunbook([summary('a-volumes', [step('volumes', 'disks')]), summary('b-db', [step('databases', 'rows')]), summary('z-vault', [step('secrets', 'keys')])]);
    expect(text.split('\n')).toContain('Restored by Git (Argo CD): `a-volumes`, `b-db`, `z-vault`.');
    const order = ['keys', 'rows', 'disks'].map((data) => text.indexOf(`**${data}**`));
    expect(order.every((at, i) => at > 0 && (i === 0 || at > order[i - 1]))).toBe(true);
    expect(text).toContain('1. **keys** (`z-vault`, secrets): backed up to `s3://b@r/keys/`, cron "0 3 * * *".');
    expect(text).toContain('   restore disks');
  });

  it('says so where nothing is backed up', () => {
    expect(recoveryRunbook([summary('a', [])])).toContain('Nothing is backed up off-site on a schedule here');
  });

  it('restores Vault from its newest snapshot and unseals every pod with the original keys', () => {
    const vault = lab.env.services.find((s) => s.name === 'vault')!;
    const [recovery] = vault.recoveries;
    expect(recovery).toMatchObject({ stage: 'secrets', target: 's3://homelab-backups/vault/', schedule: 'cron "15 2 * * *"' });
    expect(recovery.restore).toContain('aws s3 ls s3://homelab-backups/vault/ --endpoint-url https://s3.eu-central-1.example.net | sort | tail -n 1');
    expect(recovery.restore.filter((line) => line.includes('raft snapshot restore -force'))).toHaveLength(1);
    expect(recovery.restore.filter((line) => /vault-\d -- vault operator unseal$/.test(line))).toHaveLength(3 + 1);
  });

  it('has the configurator its token again after the restore: a root token from the original keys, the token as at the first install, the root token revoked', () => {
    const [recovery] = lab.env.services.find((s) => s.name === 'vault')!.recoveries;
    const at = (pattern: RegExp) => recovery.restore.findIndex((line) => pattern.test(line));
    const lastUnseal = recovery.restore.map((line, i) => (/vault operator unseal$/.test(line) ? i : -1)).reduce((a, b) => Math.max(a, b));
    // The threshold is said once, before the unseals with the original keys.
    expect(at(/as many times as the threshold/)).toBeGreaterThan(at(/raft snapshot restore/));
    expect(at(/as many times as the threshold/)).toBeLessThan(lastUnseal);
    const order = [/generate-root -init/, /generate-root -nonce=/, /generate-root -decode=/, /vault policy write vault-configurator/, /create secret generic vault-configurator/, /vault token revoke -self/, /^argocd app sync vault/];
    const positions = order.map(at);
    expect(positions.every((p) => p > lastUnseal)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    // HA: the active pod answers writes.
    expect(recovery.restore).toContain('kubectl -n vault port-forward svc/vault-active 8200 &');
  });
});
