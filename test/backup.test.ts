/**
 * The environment's one backup target (`backup`, docs/adr/0035): its config checks with their
 * paths, the one parser, and what Longhorn and Vault derive from it — each its own prefix, the
 * target's keys from one copy in Vault, the way out to the target's endpoint.
 */
import { describe, expect, it } from 'vitest';
import { BackupTarget } from '../lib/model/backup';
import { chartValues, configProblems, fixtureObject, manifestAt, manifestsOf, synthesizePlatforms, toYamlText } from './support';
import { assertValidPromql } from './support-promql';

/** The small fixture with Longhorn backing up nightly to a target, Vault in HA with snapshots, and any change. */
function configText(change: (config: Record<string, any>) => void = () => {}): string {
  const config = fixtureObject('small');
  config.nodes = Object.fromEntries(['node-1', 'node-2', 'node-3'].map((name, i) => [name, { role: i === 0 ? 'control-plane' : 'worker', cpu: 8, memory: '32Gi' }]));
  config.backup = { target: 's3://offsite-backups@eu-west-2/lab/', endpoint: 'https://s3.eu-west-2.example.net:9000' };
  config.services.longhorn = { ...config.services.longhorn, enabled: true, replicas: 1, recurringJobs: { nightly: { task: 'backup', cron: '0 3 * * *', retain: 7 } } };
  Object.assign(config.services, { vault: { enabled: true, replicas: 3, backup: {} }, externalSecrets: { enabled: true } });
  change(config);
  return toYamlText(config);
}

const problems = configProblems;

describe('backup (the config)', () => {
  it('is valid with a target and, optionally, an endpoint', () => {
    expect(problems(configText())).toBe('');
    expect(problems(configText((c) => delete c.backup.endpoint))).toBe('');
  });

  it.each([
    ['no region', 's3://offsite-backups/lab/'],
    ['another scheme', 'nfs://nas.lan/backups'],
    ['no slash after the region', 's3://offsite-backups@eu-west-2'],
    ['an upper-case bucket', 's3://Offsite@eu-west-2/'],
    ['an empty path segment', 's3://offsite-backups@eu-west-2/lab//x/'],
  ])('refuses a target with %s at its path', (_, target) => {
    expect(problems(configText((c) => (c.backup.target = target)))).toContain('backup.target: expected an S3 backup target "s3://<bucket>@<region>/<prefix>/"');
  });

  it('refuses an endpoint that is not a URL, and unknown keys, at their paths', () => {
    expect(problems(configText((c) => (c.backup.endpoint = 's3.example.net')))).toContain('backup.endpoint: expected an S3 endpoint URL');
    expect(problems(configText((c) => (c.backup.bucket = 'x')))).toContain('backup.bucket: unknown key; expected one of target, endpoint');
    expect(problems(configText((c) => (c.environments = { prod: { backup: { target: 7 } } })))).toContain('environments.prod.backup.target: expected an S3 backup target');
  });

  it('is what a Longhorn backup job and Vault snapshots need, said at their paths', () => {
    const missing = problems(configText((c) => delete c.backup));
    expect(missing).toContain('services.longhorn.recurringJobs.nightly.task: expected a backup target: a "backup" job needs backup.target');
    expect(missing).toContain("services.vault.backup: expected a backup target: Vault's snapshots go to backup.target");
    // Per environment: only the one without a target is refused.
    const perEnvironment = problems(
      configText((c) => {
        delete c.backup;
        c.environments = { dev: {}, prod: { backup: { target: 's3://offsite-backups@eu-west-2/prod/' } } };
      }),
    );
    expect(perEnvironment).toContain('services.longhorn.recurringJobs.nightly.task: expected a backup target: a "backup" job needs backup.target, the environment\'s backup target (in dev)');
    expect(perEnvironment).not.toContain('(in prod)');
  });
});

describe('BackupTarget (the one parser)', () => {
  it('gives each consumer its own prefix under the target, with the bucket URL of its endpoint', () => {
    const target = new BackupTarget({ target: 's3://offsite-backups@eu-west-2/lab/', endpoint: 'https://s3.example.net/' });
    expect(target).toMatchObject({ bucket: 'offsite-backups', region: 'eu-west-2', prefix: 'lab', endpoint: 'https://s3.example.net' });
    expect(target.location('postgres', 'n8n')).toEqual({
      bucket: 'offsite-backups',
      region: 'eu-west-2',
      prefix: 'lab/postgres/n8n',
      s3Url: 's3://offsite-backups/lab/postgres/n8n',
      longhornUrl: 's3://offsite-backups@eu-west-2/lab/postgres/n8n/',
      bucketUrl: 'https://s3.example.net/offsite-backups',
    });
    expect(target.destination).toEqual({ to: 'internet', ports: [{ port: 443, protocol: 'TCP' }] });
  });

  it('on AWS: virtual-hosted bucket URLs of the region, HTTPS; a target without a prefix', () => {
    const target = new BackupTarget({ target: 's3://offsite-backups@eu-west-2/' });
    expect(target.location('vault')).toMatchObject({ prefix: 'vault', bucketUrl: 'https://offsite-backups.s3.eu-west-2.amazonaws.com', s3Url: 's3://offsite-backups/vault' });
    expect(target.destination).toEqual({ to: 'internet', ports: [{ port: 443 }] });
  });
});

describe('what the consumers derive from it', () => {
  const [lab] = synthesizePlatforms(configText());
  const find = (path: string) => manifestAt(lab.env, path);

  it('Longhorn backs up under longhorn/ with the keys and the endpoint in its Secret', () => {
    const values = chartValues(lab.env, 'longhorn');
    expect(values.defaultBackupStore).toMatchObject({ backupTarget: 's3://offsite-backups@eu-west-2/lab/longhorn/', backupTargetCredentialSecret: 'longhorn-backup-credentials' });
    const secret = find('external-secrets/externalsecret-longhorn-system-longhorn-backup-credentials.yaml');
    expect(secret.spec.target.template.data.AWS_ENDPOINTS).toBe('https://s3.eu-west-2.example.net:9000');
    expect(secret.spec.data.map((d: any) => d.remoteRef.key)).toEqual(['backup/credentials', 'backup/credentials']);
    // In External Secrets' own Application: no wave before the chart that installs the ExternalSecret CRD.
    expect(secret.metadata.annotations?.['argocd.argoproj.io/sync-wave']).not.toBe('-1');
    const egress = find('longhorn/networkpolicy-egress-backup-target.yaml');
    expect(egress.spec.egress.map((rule: any) => rule.ports)).toEqual([[{ port: 9000, protocol: 'TCP' }]]);
  });

  it("Longhorn alerts when a backup job's last success is older than maxAgeHours, per job, and only on backup jobs (the canary's among them)", () => {
    const rules = (text: string) => synthesizePlatforms(text)[0].platform.services.find((s) => s.serviceName === 'longhorn')!.alertRules;
    const late = rules(
      configText((c) => {
        c.services.longhorn.backup = { maxAgeHours: 170 };
        c.services.longhorn.recurringJobs.weekly = { task: 'backup', cron: '0 4 * * 0', retain: 4 };
        c.services.longhorn.recurringJobs.trim = { task: 'filesystem-trim', cron: '0 5 * * 0', retain: 0 };
      }),
    ).find((rule) => rule.alert === 'LonghornBackupLate')!;
    expect(late.expr).toContain('kube_cronjob_status_last_successful_time{namespace="longhorn-system", cronjob=~"canary-backup|nightly|weekly"}) > 612000');
    expect(late.expr).toContain('kube_cronjob_created{namespace="longhorn-system", cronjob=~"canary-backup|nightly|weekly"}');
    assertValidPromql([{ label: late.alert, expr: late.expr }]);
    // Without a job of its own, the canary's backups still go to the target: the alert watches them alone.
    const noBackupJob = rules(configText((c) => (c.services.longhorn.recurringJobs = { trim: { task: 'filesystem-trim', cron: '0 5 * * 0', retain: 0 } })));
    expect(noBackupJob.find((rule) => rule.alert === 'LonghornBackupLate')!.expr).toContain('cronjob=~"canary-backup"');
    for (const hours of [0, 745]) expect(problems(configText((c) => (c.services.longhorn.backup = { maxAgeHours: hours }))), String(hours)).toContain('services.longhorn.backup.maxAgeHours: expected an integer between 1 and 744');
  });

  it('Vault snapshots go under vault/, the same bucket', () => {
    const upload = find('vault/cronjob-vault-snapshot.yaml').spec.jobTemplate.spec.template.spec.containers[0];
    expect(upload.env).toContainEqual({ name: 'S3_URL', value: 'https://s3.eu-west-2.example.net:9000/offsite-backups/lab/vault' });
  });

  it('lets Longhorn and Vault read the one copy of the keys, besides their own subtrees, and nobody else', () => {
    const data = find('vault/configmap-vault-configurator.yaml').data!;
    const readers = Object.entries(data)
      .filter(([key, policy]) => key.endsWith('.hcl') && policy.includes('homelab/data/backup/'))
      .map(([key]) => key);
    expect(readers.sort()).toEqual(['homelab-longhorn.hcl', 'homelab-vault.hcl']);
    expect(data['homelab-vault.hcl']).toContain('path "homelab/data/backup/credentials" {');
  });

  it('keeps the name of the keys\' owner from every app', () => {
    const taken = problems(configText((c) => (c.apps = { backup: { image: 'docker.io/traefik/whoami:v1.10.3', resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '32Mi' } } } })));
    expect(taken).toContain('apps.backup: expected another name: "backup" is taken by a built-in service, its namespace, an output folder or the backup target\'s keys');
  });

  it('declares no backup anywhere without a target', () => {
    const [none] = synthesizePlatforms(configText((c) => {
      delete c.backup;
      c.services.longhorn.recurringJobs = {};
      delete c.services.vault.backup;
    }));
    expect(manifestsOf(none.env).filter(({ manifest }) => JSON.stringify(manifest).includes('backup-credentials')).map((m) => m.path)).toEqual([]);
    expect(none.platform.services.flatMap((s) => s.recoveries)).toEqual([]);
  });
});
