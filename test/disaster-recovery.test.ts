/**
 * docs/disaster-recovery.md: the runbook rendered from what the services declare (what to have
 * at hand, each restore with its check and the verification Job that tests its backups, the
 * verification last), the steps Vault, CloudNativePG and Longhorn declare on a small fixture with
 * a backup target, and the file itself: written with the output, guarded, checked like
 * docs/platform.md.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { Layer } from '../lib/model/layers';
import type { Recovery } from '../lib/model/recovery';
import { PLATFORM_DOC_HEADER, renderPlatformDoc } from '../lib/output/platform-doc';
import { RECOVERY_DOC_HEADER, recoveryRunbook, renderRecoveryDoc } from '../lib/output/recovery-doc';
import type { ServiceSummary } from '../lib/output/synthesize';
import { invariantNamed } from './invariants';
import { FIXTURES, fixtureObject, manifestsOf, readTree, runMain, synthesizePlatforms, tempDir, toYamlText } from './support';

const SMALL = join(FIXTURES, 'small.yaml');

/** The small fixture with a backup target, Longhorn's nightly backups, Vault in HA with snapshots, and n8n on a backed-up database. */
function labText(change: (config: Record<string, any>) => void = () => {}): string {
  const config = fixtureObject('small');
  config.nodes = Object.fromEntries(['node-1', 'node-2', 'node-3'].map((name, i) => [name, { role: i === 0 ? 'control-plane' : 'worker', cpu: 8, memory: '32Gi' }]));
  config.backup = { target: 's3://homelab-backups@eu-central-1/lab/', endpoint: 'https://s3.eu-central-1.example.net' };
  config.services.longhorn.recurringJobs = { 'nightly-backup': { task: 'backup', cron: '30 2 * * *', retain: 14, groups: ['default'] } };
  Object.assign(config.services, {
    vault: { enabled: true, replicas: 3, backup: {} },
    externalSecrets: { enabled: true },
    cloudnativePg: { enabled: true },
    certManager: { enabled: true, email: 'admin@example.net' },
    n8n: { enabled: true, database: { cloudnativePg: { instances: 2, size: '8Gi' } } },
  });
  change(config);
  return toYamlText(config);
}

const [lab] = synthesizePlatforms(labText());
const recoveryOf = (service: string, stage: Recovery['stage']) => lab.env.services.find((s) => s.name === service)!.recoveries.find((r) => r.stage === stage)!;

const summary = (name: string, recoveries: Recovery[], layer = 'apps') => ({ name, layer, recoveries }) as unknown as ServiceSummary;
const step = (stage: Recovery['stage'], data: string, atHand: string[] = []): Recovery => ({
  stage,
  data,
  target: `s3://b/${data}/`,
  schedule: 'cron "0 3 * * *"',
  restore: [`restore ${data}`],
  atHand,
  check: [`check ${data}`],
  restoreCheck: { namespace: `ns-${data}`, job: `${data}-restore` },
});

describe('the runbook of an environment', () => {
  const verification = summary('verification', [], Layer.VERIFICATION);
  const text = recoveryRunbook([
    summary('a-volumes', [step('volumes', 'disks')]),
    summary('b-db', [step('databases', 'rows', ['the target keys'])]),
    summary('z-vault', [step('secrets', 'keys', ['the unseal keys', 'the target keys'])]),
    verification,
  ]);

  it('opens with what to have at hand, each thing once, before anything is restored', () => {
    const preamble = text.slice(0, text.indexOf('1. '));
    expect(preamble).toMatch(/^\*\*Have at hand before you start\*\*/);
    for (const item of ['the unseal keys', 'the target keys']) expect(preamble.split('\n').filter((line) => line === `- ${item}`)).toHaveLength(1);
    expect(preamble).toContain('`kubectl`');
  });

  it('gives every step its restore, then its check, then the verification Job that tests its backups', () => {
    for (const data of ['keys', 'rows', 'disks']) {
      const at = (needle: string) => text.indexOf(needle);
      const [heading, restore, check, job] = [`**${data}**`, `   restore ${data}`, `   check ${data}`, `Job \`ns-${data}/${data}-restore\``].map(at);
      expect([heading, restore, check, job].every((position) => position > 0), data).toBe(true);
      expect(heading < restore && restore < check && check < job, data).toBe(true);
    }
  });

  it('ends with the verification: synced once everything is restored, each restore test read once', () => {
    const last = text.slice(text.lastIndexOf('\n4. '));
    expect(last).toContain('argocd app sync verification');
    for (const data of ['keys', 'rows', 'disks']) expect(last.split(`kubectl -n ns-${data} logs job/${data}-restore`)).toHaveLength(2);
    expect(text.indexOf('**disks**')).toBeLessThan(text.lastIndexOf('\n4. '));
  });

  it('has no verification step where there is no verification, and no preamble where nothing is backed up', () => {
    expect(recoveryRunbook([summary('a', [step('volumes', 'disks')])])).not.toContain('argocd app sync');
    const nothing = recoveryRunbook([summary('a', [])]);
    expect(nothing).toContain('Nothing is backed up off-site on a schedule here');
    expect(nothing).not.toContain('Have at hand');
  });
});

describe('docs/disaster-recovery.md', () => {
  it('is marked as generated, one section per distinct runbook, headed by its environments', () => {
    const other = { environment: 'other', services: lab.env.services };
    const doc = renderRecoveryDoc([lab.env, { ...lab.env, environment: 'twin' }, { environment: 'bare', services: [] }]);
    expect(doc.startsWith(RECOVERY_DOC_HEADER)).toBe(true);
    expect(doc.match(/^## .*$/gm)).toEqual(['## lab, twin', '## bare']);
    expect(renderRecoveryDoc([other, lab.env])).toBe(renderRecoveryDoc([{ ...other, services: [...other.services].reverse() }, lab.env]));
  });

  it('is what platform.md points to, instead of holding the runbook', () => {
    const platform = renderPlatformDoc([lab.env]);
    expect(platform).not.toMatch(/^#+ Disaster recovery/m);
    expect(platform).not.toContain('vault operator unseal');
    expect(platform).toContain('[disaster-recovery.md](disaster-recovery.md)');
    expect(renderPlatformDoc([lab.env], '../runbooks/dr.md')).toContain('[../runbooks/dr.md](../runbooks/dr.md)');
  });
});

describe('the steps the services declare', () => {
  it('restores Vault, then the database, then the volumes, each named restore test run by the verification', () => {
    const text = recoveryRunbook(lab.env.services);
    const order = ['Vault: every secret', 'PostgreSQL database n8n', 'Longhorn volumes'].map((data) => text.indexOf(`**${data}`));
    expect(order.every((at, i) => at > 0 && (i === 0 || at > order[i - 1])), String(order)).toBe(true);
    const invariant = invariantNamed('every restore in the runbook is tested');
    expect(invariant.check([lab])).toEqual([]);
  });

  it('the invariant fails on a restore test the verification does not run, or a CronJob that is not there', () => {
    const invariant = invariantNamed('every restore in the runbook is tested');
    const vault = lab.platform.services.find((s) => s.serviceName === 'vault')!;
    const [recovery] = vault.recoveries;
    const broken = { ...recovery, restoreCheck: { namespace: 'vault', job: 'no-such-check' }, check: [...recovery.check, 'kubectl -n vault create job --from=cronjob/gone x'] };
    const service = { serviceName: vault.serviceName, layer: vault.layer, recoveries: [broken] };
    const tampered = { ...lab, platform: { services: [...lab.platform.services.filter((s) => s !== vault), service] } } as unknown as typeof lab;
    const found = invariant.check([tampered]);
    expect(found.some((p) => p.includes('vault/no-such-check, which the verification does not run'))).toBe(true);
    expect(found.some((p) => p.includes('CronJob vault/gone, which is not there'))).toBe(true);
  });

  it("has Vault's unseal keys and the target's keys at hand, checks every pod unsealed and takes a snapshot with the restored Vault", () => {
    const vault = recoveryOf('vault', 'secrets');
    expect(vault.atHand.some((item) => item.includes('unseal keys'))).toBe(true);
    expect(vault.atHand.some((item) => item.includes('s3://homelab-backups@eu-central-1/lab/'))).toBe(true);
    expect(vault.check.filter((line) => /^kubectl -n vault exec vault-\d -- vault status/.test(line))).toHaveLength(3);
    expect(vault.check).toContain('kubectl -n vault create job --from=cronjob/vault-snapshot vault-snapshot-after-restore');
    expect(vault.restoreCheck).toEqual({ namespace: 'vault', job: 'vault-snapshot-restore' });
  });

  it('takes a base backup of the recovered database through the plugin its ScheduledBackup uses, which the restore test then recovers from', () => {
    const database = recoveryOf('n8n', 'databases');
    const start = database.check.indexOf("kubectl apply -f - <<'EOF'");
    const backup = parse(database.check.slice(start + 1, database.check.indexOf('EOF', start)).join('\n'));
    const scheduled = manifestsOf(lab.env).find(({ manifest }) => manifest.kind === 'ScheduledBackup')!.manifest;
    expect(backup).toEqual({
      apiVersion: scheduled.apiVersion,
      kind: 'Backup',
      metadata: { name: `${scheduled.spec.cluster.name}-after-restore`, namespace: scheduled.metadata.namespace },
      spec: { cluster: scheduled.spec.cluster, method: scheduled.spec.method, pluginConfiguration: scheduled.spec.pluginConfiguration },
    });
    expect(database.check.at(-1)).toContain(`wait backup/${backup.metadata.name} --for=jsonpath='{.status.phase}'=completed`);
    expect(database.restoreCheck).toEqual({ namespace: 'n8n', job: 'n8n-db-restore' });
  });

  it("restores the volumes last, skipping the canary, and backs up the new canary for Longhorn's restore test", () => {
    const volumes = recoveryOf('longhorn', 'volumes');
    expect(volumes.restore.join('\n')).toContain('the canary (longhorn-canary)');
    expect(volumes.check).toContain('kubectl -n longhorn-system create job --from=cronjob/canary-backup canary-backup-after-restore');
    expect(volumes.restoreCheck).toEqual({ namespace: 'longhorn-system', job: 'longhorn-canary-restore' });
  });
});

describe('a Vault without snapshots', () => {
  const standalone = (change: (config: Record<string, any>) => void = () => {}) =>
    synthesizePlatforms(labText((c) => { c.services.vault = { enabled: true, replicas: 1 }; change(c); }))[0];

  it("is restored first from Longhorn's backups of its volume, before the database that reads its secrets", () => {
    const env = standalone();
    const vault = env.env.services.find((s) => s.name === 'vault')!.recoveries;
    expect(vault).toHaveLength(1);
    const [recovery] = vault;
    expect(recovery).toMatchObject({ stage: 'secrets', target: 's3://homelab-backups/lab/longhorn/', restoreCheck: { namespace: 'longhorn-system', job: 'longhorn-canary-restore' } });
    expect(recovery.schedule).toBe('cron "30 2 * * *" (nightly-backup, the last 14 kept)');
    const restore = recovery.restore.join('\n');
    expect(restore).toContain('the volume of PVC vault/data-vault-0');
    // Scaled down while its volume is replaced (Argo CD paused: automated sync here), up again, then unsealed with the original keys.
    const at = (line: string) => recovery.restore.indexOf(line);
    expect(at('argocd app set vault --sync-policy none')).toBeLessThan(at('kubectl -n vault scale statefulset vault --replicas=0'));
    expect(at('kubectl -n vault scale statefulset vault --replicas=1')).toBeLessThan(at('kubectl -n vault exec -ti vault-0 -- vault operator unseal'));
    expect(recovery.atHand.some((item) => item.includes('unseal keys'))).toBe(true);
    const text = recoveryRunbook(env.env.services);
    expect(text.indexOf('**Vault: every secret')).toBeLessThan(text.indexOf('**PostgreSQL database n8n'));
    const invariant = invariantNamed('every restore in the runbook is tested');
    expect(invariant.check([env])).toEqual([]);
  });

  it('has no step where its storage class is in no backup job group', () => {
    const unbacked = standalone((c) => (c.services.longhorn.recurringJobs['nightly-backup'].groups = ['elsewhere']));
    expect(unbacked.env.services.find((s) => s.name === 'vault')!.recoveries).toEqual([]);
  });
});

describe('writing docs/disaster-recovery.md (--runbook)', () => {
  it('synth writes it beside --docs, or where --runbook says, and platform.md links to it; --env leaves it alone', () => {
    const dir = tempDir();
    expect(runMain(['--config', SMALL, '--out', join(dir, 'k8s'), '--quiet']).status).toBe(0);
    const written = readFileSync(join(dir, 'docs', 'disaster-recovery.md'), 'utf8');
    expect(written.startsWith(RECOVERY_DOC_HEADER)).toBe(true);
    expect(written).toMatch(/^## lab$/m);
    expect(readFileSync(join(dir, 'docs', 'platform.md'), 'utf8')).toContain('[disaster-recovery.md](disaster-recovery.md)');

    const elsewhere = join(dir, 'runbooks', 'dr.md');
    expect(runMain(['--config', SMALL, '--out', join(dir, 'k8s'), '--runbook', elsewhere, '--quiet']).status).toBe(0);
    expect(readFileSync(elsewhere, 'utf8')).toBe(written);
    expect(readFileSync(join(dir, 'docs', 'platform.md'), 'utf8')).toContain('[../runbooks/dr.md](../runbooks/dr.md)');

    const previous = `${RECOVERY_DOC_HEADER}previous\n`;
    writeFileSync(elsewhere, previous);
    expect(runMain(['--config', SMALL, '--out', join(dir, 'k8s'), '--runbook', elsewhere, '--env', 'lab', '--quiet']).status).toBe(0);
    expect(readFileSync(elsewhere, 'utf8')).toBe(previous);
  });

  it('is refused before anything is written where synth did not write it: a foreign file, a link, a directory, inside the output, the --docs file', () => {
    const dir = tempDir();
    const out = join(dir, 'k8s');
    writeFileSync(join(dir, 'notes.md'), 'mine');
    symlinkSync(join(dir, 'notes.md'), join(dir, 'link.md'));
    mkdirSync(join(dir, 'folder.md'));
    writeFileSync(join(dir, 'platform.md'), `${PLATFORM_DOC_HEADER}older diagrams\n`);
    const before = readTree(dir);
    const refused = (runbook: string, error: RegExp) => {
      const result = runMain(['--config', SMALL, '--out', out, '--docs', join(dir, 'platform.md'), '--runbook', runbook]);
      expect(result.status, result.stderr).toBe(2);
      expect(result.stderr).toMatch(error);
      expect(result.stderr).not.toMatch(/^\s+at /m);
    };
    refused(join(dir, 'notes.md'), /^error: .*\/notes\.md: was not written by synth .*choose another --runbook$/m);
    refused(join(dir, 'link.md'), /^error: .*\/link\.md: the document is a symbolic link; .*\(--runbook\)$/m);
    refused(join(dir, 'folder.md'), /^error: .*\/folder\.md: the document is a directory; --runbook names the file to write/m);
    refused(join(out, 'dr.md'), /^error: .*\/k8s\/dr\.md: the document is inside the output directory .*\(--runbook\)$/m);
    refused(join(dir, 'platform.md'), /^error: .*\/platform\.md: --runbook names the same file as --docs/m);
    // Nothing was written: no k8s/, the documents as they were.
    expect(readTree(dir)).toEqual(before);
  });

  it('synth --check lists it when it differs from a fresh synth', () => {
    const dir = tempDir();
    const args = ['--config', SMALL, '--out', join(dir, 'k8s'), '--quiet'];
    expect(runMain(args).status).toBe(0);
    expect(runMain([...args, '--check']).status).toBe(0);
    const runbook = join(dir, 'docs', 'disaster-recovery.md');
    writeFileSync(runbook, `${readFileSync(runbook, 'utf8')}edited\n`);
    const result = runMain([...args, '--check']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`changed  ${runbook}`);
  });
});
