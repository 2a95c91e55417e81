/**
 * The databases' backups through the Barman Cloud plugin: the config (retention, schedule,
 * cert-manager), the objects a backed-up database adds (parsed from the synthesized files of a
 * small fixture), the plugin's chart beside the operator, the waves, the runbook's recovery
 * Cluster, and the canary, restore and query scripts under `sh` against fake curl and psql.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { databaseBackupSettings } from '../charts/cloudnative-pg-backups';
import { lintObjects } from '../lib/tools/lint/lint';
import { objectsOf } from '../lib/tools/lint/tree';
import { operatorProducts } from '../lib/tools/render/operators';
import type { SynthesizedEnvironment } from '../lib/output/synthesize';
import type { Platform } from '../lib/model/platform';
import { assertValidPromql } from './support-promql';
import { CHECK_START_SECONDS } from '../lib/model/checkpoint';
import { answerAsApiServer, configProblems, FAKE_CLOCK, FAKE_SLEEP, fixtureObject, Manifest, manifestAt, manifestsOf, readFakeFile, retryTries, runWithFakeCommands, synthesizeEnvironment, tempDir, toYamlText } from './support';

const TARGET = 's3://homelab-backups@eu-central-1/lab/';
const ENDPOINT = 'https://s3.eu-central-1.example.net';

/** The small fixture with the operator, cert-manager and n8n on a database of its own, and any change. */
function configText(change: (config: Record<string, any>) => void = () => {}): string {
  const config = fixtureObject('small');
  config.backup = { target: TARGET, endpoint: ENDPOINT };
  Object.assign(config.services, {
    cloudnativePg: { enabled: true },
    certManager: { enabled: true, email: 'admin@example.net' },
    n8n: { enabled: true, database: { cloudnativePg: { instances: 2, size: '8Gi' } } },
  });
  change(config);
  return toYamlText(config);
}

/** The lab environment of a config text (shared and read-only: see synthesizeEnvironment). */
function synthesize(text: string): { env: SynthesizedEnvironment; platform: Platform; find: (path: string) => Manifest; paths: string[] } {
  const { env, platform } = synthesizeEnvironment(text, 'lab');
  const manifests = manifestsOf(env);
  const find = (path: string): Manifest => manifestAt(env, path);
  return { env, platform, find, paths: manifests.map((m) => m.path) };
}

describe('database backups in the config', () => {
  it('keep 1 to 3650 days, run on a five-field schedule, and default to daily with 30 days', () => {
    for (const retentionDays of [0, 3651, 1.5, '30d']) expect(databaseBackupSettings.safeParse({ retentionDays }).success, String(retentionDays)).toBe(false);
    expect(databaseBackupSettings.safeParse({ schedule: '0 0 3 * * *' }).success).toBe(false);
    expect(databaseBackupSettings.parse(undefined)).toMatchObject({ schedule: '0 3 * * *', retentionDays: 30, maxAgeHours: 26 });
    expect(configProblems(configText((c) => (c.services.cloudnativePg.backup = { retentionDays: 0 })))).toContain('services.cloudnativePg.backup.retentionDays');
  });

  it('need cert-manager where the environment has a backup target, naming the path', () => {
    const found = configProblems(configText((c) => (c.services.certManager.enabled = false)));
    expect(found).toContain('services.cloudnativePg.backup: expected services.certManager.enabled');
    // Without a target the operator needs no cert-manager: nothing is backed up.
    expect(configProblems(configText((c) => { c.services.certManager.enabled = false; delete c.backup; }))).toBe('');
  });
});

describe('a database without a backup target', () => {
  const { find, paths, platform } = synthesize(configText((c) => delete c.backup));

  it('has no backup alerts, and a single instance no replication alert', () => {
    const single = synthesize(configText((c) => { delete c.backup; c.services.n8n.database.cloudnativePg.instances = 1; }));
    const names = single.platform.services.find((s) => s.serviceName === 'n8n')!.alertRules.map((rule) => rule.alert);
    expect(names).toContain('N8nDbInstanceDown');
    expect(names.filter((name) => /Backup|Wal|Replication/.test(name))).toEqual([]);
  });

  it('is not archived: no plugin, no ObjectStore, no ScheduledBackup, no restore check, as before', () => {
    expect(find('n8n/cluster-n8n-db.yaml').spec.plugins).toBeUndefined();
    expect(paths.filter((p) => /objectstore-|scheduledbackup-|-canary|-restore/.test(p))).toEqual([]);
    expect(find('apps/application-cloudnative-pg.yaml').spec.sources.map((s: any) => s.chart).filter(Boolean)).toEqual(['cloudnative-pg']);
    expect(platform.services.flatMap((s) => s.recoveries)).toEqual([]);
  });
});

describe('a database with a backup target', () => {
  const { find, paths, platform, env } = synthesize(configText((c) => (c.services.cloudnativePg.backup = { schedule: '30 1 * * *', retentionDays: 14 })));
  const cluster = find('n8n/cluster-n8n-db.yaml');
  const store = find('n8n/objectstore-n8n-db-backup.yaml');

  it('archives its WAL through the plugin into an ObjectStore under the target, with the retention from the config', () => {
    expect(cluster.spec.plugins).toEqual([{ name: 'barman-cloud.cloudnative-pg.io', isWALArchiver: true, parameters: { barmanObjectName: 'n8n-db-backup' } }]);
    expect(store.metadata.namespace).toBe('n8n');
    expect(store.spec.configuration).toMatchObject({ destinationPath: 's3://homelab-backups/lab/postgres/n8n', endpointURL: ENDPOINT });
    expect(store.spec.retentionPolicy).toBe('14d');
    // The ObjectStore is in place before the Cluster that names it.
    expect(Number(store.metadata.annotations!['argocd.argoproj.io/sync-wave'])).toBeLessThan(Number(cluster.metadata.annotations!['argocd.argoproj.io/sync-wave']));
  });

  it("reads the target's keys and region from a Secret rendered from the one copy in Vault", () => {
    const keys = store.spec.configuration.s3Credentials;
    expect([keys.accessKeyId, keys.secretAccessKey, keys.region].map((k: any) => k.name)).toEqual(Array(3).fill('n8n-db-backup-credentials'));
    const need = platform.services.find((s) => s.serviceName === 'n8n')!.secretNeeds.find((n) => n.name === 'n8n-db-backup-credentials')!;
    expect(need).toMatchObject({ namespace: 'n8n', keys: ['AWS_ACCESS_KEY_ID', 'AWS_REGION', 'AWS_SECRET_ACCESS_KEY'], neededToStart: false });
    expect(need.template!.inputs.map((input) => `${input.from.service}/${input.from.name}`)).toEqual(['backup/credentials', 'backup/credentials']);
    expect(need.template!.data.AWS_REGION).toBe('eu-central-1');
    // Without Vault here: the operator creates it by hand, as the synth summary says.
    expect(env.secrets.find((s) => s.name === 'n8n-db-backup-credentials')).toBeDefined();
  });

  it('takes base backups through the plugin on the schedule (seconds first), the first at once', () => {
    const scheduled = find('n8n/scheduledbackup-n8n-db-backup.yaml');
    expect(scheduled.spec).toMatchObject({ cluster: { name: 'n8n-db' }, method: 'plugin', pluginConfiguration: { name: 'barman-cloud.cloudnative-pg.io' }, schedule: '0 30 1 * * *', immediate: true });
  });

  it('installs the plugin in the operator\'s namespace, as a second chart of its Application, with pinned images', () => {
    const app = find('apps/application-cloudnative-pg.yaml');
    const charts = app.spec.sources.filter((s: any) => s.chart);
    expect(charts.map((s: any) => s.chart)).toEqual(['cloudnative-pg', 'plugin-barman-cloud']);
    expect(app.spec.destination.namespace).toBe('cnpg-system');
    const values = charts[1].helm.valuesObject;
    expect(values.crds.create).toBe(true);
    for (const image of [values.image, values.sidecarImage]) expect(image.tag).toMatch(/^v\d+\.\d+\.\d+$/);
  });

  it('syncs the operator and plugin after cert-manager and before the consumer', () => {
    const wave = (name: string) => env.services.find((s) => s.name === name)!.wave;
    expect(wave('cloudnative-pg')).toBeGreaterThan(wave('cert-manager'));
    expect(wave('n8n')).toBeGreaterThan(wave('cloudnative-pg'));
  });

  it('lets the instances and the scratch cluster reach the target, and the restore check the API server', () => {
    const egress = (name: string) => find(`n8n/networkpolicy-egress-${name}.yaml`).spec;
    expect(egress('n8n-db-backup-target').podSelector.matchLabels).toEqual({ 'cnpg.io/cluster': 'n8n-db' });
    expect(egress('n8n-db-backup-target-1').podSelector.matchLabels).toEqual({ 'cnpg.io/cluster': 'n8n-db-restore-check' });
    expect(egress('n8n-db-backup-target').egress[0].ports).toEqual([{ port: 443, protocol: 'TCP' }]);
    const restorePods = find('verification/job-n8n-n8n-db-restore.yaml').spec.template.metadata.labels;
    const api = egress('api-server-n8n-db-restore').podSelector.matchLabels;
    expect(Object.entries(api).every(([key, value]) => restorePods[key] === value)).toBe(true);
  });

  it('declares its recovery: a Cluster of the same name from the moved backups, after Vault, in the databases stage', () => {
    const recovery = platform.services.find((s) => s.serviceName === 'n8n')!.recoveries.find((r) => r.stage === 'databases')!;
    expect(recovery.target).toBe('s3://homelab-backups/lab/postgres/n8n/n8n-db/');
    const lines = recovery.restore;
    const start = lines.indexOf("kubectl apply -f - <<'EOF'");
    const manifest = YAML.parse(lines.slice(start + 1, lines.indexOf('EOF', start)).join('\n'));
    expect(manifest).toMatchObject({ kind: 'Cluster', metadata: { name: 'n8n-db', namespace: 'n8n' }, spec: { instances: 2, bootstrap: { recovery: { source: 'origin', database: 'n8n', owner: 'n8n' } } } });
    expect(manifest.spec.externalClusters).toEqual([{ name: 'origin', plugin: { name: 'barman-cloud.cloudnative-pg.io', parameters: { barmanObjectName: 'n8n-db-backup', serverName: 'n8n-db-origin' } } }]);
    expect(manifest.spec.plugins[0]).toMatchObject({ isWALArchiver: true, parameters: { barmanObjectName: 'n8n-db-backup' } });
    // The backups are moved to the origin's name before the new cluster archives under the old one.
    const move = lines.findIndex((l) => l.includes('aws s3 mv --recursive s3://homelab-backups/lab/postgres/n8n/n8n-db/ s3://homelab-backups/lab/postgres/n8n/n8n-db-origin/'));
    expect(move).toBeGreaterThan(-1);
    expect(lines[move]).toContain(`--endpoint-url ${ENDPOINT}`);
    expect(move).toBeLessThan(start);
    // Argo CD (automated here) re-creates nothing meanwhile, and is resumed as configured after.
    expect(lines.indexOf('argocd app set n8n --sync-policy none')).toBeLessThan(start);
    expect(lines.slice(start)).toContain('argocd app set n8n --sync-policy automated --auto-prune --self-heal');
    const manual = synthesize(configText((c) => (c.sync = { mode: 'manual' }))).platform.services.find((s) => s.serviceName === 'n8n')!.recoveries[0].restore;
    expect(manual.filter((line) => line.startsWith('argocd app set'))).toEqual([]);
    expect(manual.at(-1)).toBe('argocd app sync n8n');
  });

  it('is scraped on its instances and alerted on: down, lagging, nearly full, and backups late, unknown, failed or WAL not archived', () => {
    const n8n = platform.services.find((s) => s.serviceName === 'n8n')!;
    expect(n8n.metricsEndpoints).toContainEqual({ name: 'n8n-db', kind: 'pod', selector: { 'cnpg.io/cluster': 'n8n-db', 'cnpg.io/podRole': 'instance' }, port: 'metrics' });
    const alerts = new Map(n8n.alertRules.map((rule) => [rule.alert, rule]));
    expect([...alerts.keys()].filter((name) => name.startsWith('N8nDb')).sort()).toEqual(
      ['N8nDbBackupFailed', 'N8nDbBackupLate', 'N8nDbBackupUnknown', 'N8nDbInstanceDown', 'N8nDbReplicationLag', 'N8nDbStorageNearlyFull', 'N8nDbWalArchivingFailing'],
    );
    assertValidPromql(n8n.alertRules.map((rule) => ({ label: rule.alert, expr: rule.expr })));
    // Late after the configured hours; on the series of this database's instances only.
    expect(alerts.get('N8nDbBackupLate')!.expr).toContain(`> ${26 * 3600}`);
    for (const name of ['N8nDbBackupLate', 'N8nDbBackupUnknown', 'N8nDbBackupFailed', 'N8nDbWalArchivingFailing', 'N8nDbInstanceDown']) {
      expect(alerts.get(name)!.expr).toContain('homelab_service="n8n", homelab_endpoint="n8n-db"');
    }
  });

  it('alerts without any backup series too: absent for longer than maxAgeHours, and failures before the first success', () => {
    const rules = (hours: number) => {
      const built = synthesize(configText((c) => (c.services.cloudnativePg.backup = { maxAgeHours: hours }))).platform;
      return new Map(built.services.find((s) => s.serviceName === 'n8n')!.alertRules.map((rule) => [rule.alert, rule]));
    };
    const alerts = rules(12);
    // The very series BackupLate compares, absent: nothing to compare when no backup ever succeeded or nothing is scraped.
    const late = /max\((barman_cloud_cloudnative_pg_io_last_available_backup_timestamp\{[^}]*\})\)/.exec(alerts.get('N8nDbBackupLate')!.expr)![1];
    expect(alerts.get('N8nDbBackupUnknown')).toMatchObject({ expr: `absent(${late})`, for: '12h', severity: 'critical' });
    expect(rules(40).get('N8nDbBackupUnknown')!.for).toBe('40h');
    // A missing success side compares as 0, so a failure before any success is one.
    expect(alerts.get('N8nDbBackupFailed')!.expr).toMatch(/> \(max\(barman_cloud_cloudnative_pg_io_last_available_backup_timestamp\{[^}]*\}\) or vector\(0\)\)$/);
    expect(alerts.get('N8nDbWalArchivingFailing')!.expr).toMatch(/> \(max\(cnpg_pg_stat_archiver_last_archived_time\{[^}]*\}\) or vector\(0\)\)$/);
  });

  it("monitors pods the operator makes: the lint finds the instances of the Cluster, and the render checks the restore check's scratch cluster", () => {
    const withMonitoring = synthesize(configText((c) => (c.services.monitoring = { enabled: true })));
    const podMonitor = 'n8n/podmonitor-n8n-n8n-db.yaml';
    expect(withMonitoring.find(podMonitor).spec.selector.matchLabels).toEqual({ 'cnpg.io/cluster': 'n8n-db', 'cnpg.io/podRole': 'instance' });
    const lint = (files: ReadonlyMap<string, string>) =>
      lintObjects(new Map([['lab', objectsOf('lab', files)]])).violations.filter((v) => v.rule === 'dangling-podmonitor').map((v) => v.location);
    expect(lint(withMonitoring.env.files)).toEqual([]);
    // A monitor of a cluster that is not declared selects nothing the operator makes.
    const files = new Map(withMonitoring.env.files);
    files.set(podMonitor, files.get(podMonitor)!.replace('cnpg.io/cluster: n8n-db', 'cnpg.io/cluster: n8n-dbx'));
    expect(lint(files)).toEqual([`lab/${podMonitor}`]);
    // The restore check's Job names the Cluster it creates; the render checks see its pods.
    const job = find('verification/job-n8n-n8n-db-restore.yaml');
    const pods = operatorProducts([{ application: 'verification', source: 'k8s', manifest: job as any }]).filter((o) => o.manifest.kind === 'StatefulSet');
    expect(pods.map((o) => [o.manifest.metadata.namespace, o.manifest.spec.template.metadata.labels])).toEqual([['n8n', { 'cnpg.io/cluster': 'n8n-db-restore-check', 'cnpg.io/podRole': 'instance' }]]);
  });

  it('writes a canary row after every sync of the consumer, with the owner\'s credentials', () => {
    const canary = find('n8n/job-n8n-db-canary.yaml');
    expect(canary.metadata.annotations!['argocd.argoproj.io/hook']).toBe('PostSync');
    expect(canary.spec.template.spec.containers[0].env).toContainEqual({ name: 'DATABASE_URI', valueFrom: { secretKeyRef: { name: 'n8n-db-app', key: 'uri' } } });
  });

  it('is restored by the verification with an account that may create Clusters but read and delete only the scratch one', () => {
    const job = find('verification/job-n8n-n8n-db-restore.yaml');
    expect(job.metadata.namespace).toBe('n8n');
    expect(job.spec.template.spec.serviceAccountName).toBe('n8n-db-restore');
    const pod = job.spec.template.spec;
    const [api, query] = pod.containers;
    // The API token only in the API container: no automount (it would reach every container), a projected token mounted there.
    expect(pod.automountServiceAccountToken).toBe(false);
    const volumeOf = (mount: any) => pod.volumes.find((v: any) => v.name === mount.name);
    const tokenMounts = (container: any) => (container.volumeMounts ?? []).filter((m: any) => volumeOf(m).projected?.sources.some((s: any) => s.serviceAccountToken));
    expect(tokenMounts(api).map((m: any) => m.mountPath)).toEqual(['/var/run/secrets/kubernetes.io/serviceaccount']);
    expect(tokenMounts(query)).toEqual([]);
    // The owner's password: no container's environment, a file of the query container only.
    for (const container of pod.containers) expect(container.env.filter((e: any) => e.valueFrom?.secretKeyRef?.key === 'password')).toEqual([]);
    const secretMounts = (container: any) => (container.volumeMounts ?? []).filter((m: any) => volumeOf(m).secret);
    expect(secretMounts(api)).toEqual([]);
    const [passwordMount] = secretMounts(query);
    expect(volumeOf(passwordMount).secret).toMatchObject({ secretName: 'n8n-db-app', items: [{ key: 'password', path: 'password' }] });
    expect(query.env).toContainEqual({ name: 'OWNER_SECRET_DIR', value: passwordMount.mountPath });
    const scratch = JSON.parse(api.env.find((e: any) => e.name === 'SCRATCH_MANIFEST').value);
    expect(scratch).toMatchObject({ metadata: { name: 'n8n-db-restore-check', namespace: 'n8n' }, spec: { instances: 1, bootstrap: { recovery: { source: 'origin' } } } });
    // It never archives (the origin's WAL stays the origin's), and keeps the recovered owner's password, which the query uses.
    expect(scratch.spec.plugins).toBeUndefined();
    expect(scratch.spec.bootstrap.recovery.owner).toBeUndefined();
    expect(scratch.spec.externalClusters[0].plugin.parameters).toEqual({ barmanObjectName: 'n8n-db-backup', serverName: 'n8n-db' });
    const role = find('verification/role-n8n-n8n-db-restore.yaml');
    expect(role.metadata.namespace).toBe('n8n');
    for (const rule of role.rules) {
      const writes = rule.verbs.filter((verb: string) => !['get', 'list', 'watch'].includes(verb));
      if (writes.length === 0) continue;
      // Only a Cluster is ever created, and only the scratch one deleted.
      expect(rule.resources).toEqual(['clusters']);
      if (writes.includes('delete')) expect(rule.resourceNames).toEqual(['n8n-db-restore-check']);
      else expect(writes).toEqual(['create']);
    }
    expect(paths).toContain('verification/rolebinding-n8n-n8n-db-restore.yaml');
    // Cluster-wide it reads PersistentVolumes (the scratch claims' volumes), nothing else.
    expect(find('verification/clusterrole-n8n-n8n-db-restore.yaml').rules).toEqual([{ apiGroups: [''], resources: ['persistentvolumes'], verbs: ['get'] }]);
    expect(find('verification/clusterrolebinding-n8n-n8n-db-restore.yaml').subjects).toEqual([{ kind: 'ServiceAccount', name: 'n8n-db-restore', namespace: 'n8n' }]);
  });

  it('restores onto a class whose volumes go with their claims: one replica, in no recurring job group, unlike the database', () => {
    const job = find('verification/job-n8n-n8n-db-restore.yaml');
    const scratch = JSON.parse(job.spec.template.spec.containers[0].env.find((e: any) => e.name === 'SCRATCH_MANIFEST').value);
    const classes = paths.map(find).filter((m) => m.kind === 'StorageClass');
    const classOf = (name: string) => classes.find((m) => m.metadata.name === name)!;
    expect(classOf(cluster.spec.storage.storageClass).reclaimPolicy).toBe('Retain');
    expect(classOf(scratch.spec.storage.storageClass)).toMatchObject({
      provisioner: 'driver.longhorn.io',
      reclaimPolicy: 'Delete',
      parameters: { numberOfReplicas: '1', recurringJobSelector: '[]' },
    });
  });

  it("gives the restore check's script one deadline inside the Job's, with time left for the pod to start", () => {
    const job = find('verification/job-n8n-n8n-db-restore.yaml');
    const [api, query] = job.spec.template.spec.containers;
    const value = (container: any, name: string) => Number(container.env.find((e: any) => e.name === name).value);
    const budget = value(api, 'DEADLINE_SECONDS');
    // After the pod's start and the budget, the cleanup's last pause and its listing and reads, at the calls' limit.
    const callSeconds = Number(/^kube\(\) \{ kube_get "\$@" --max-time (\d+); \}$/m.exec(api.command.at(-1))![1]);
    expect(CHECK_START_SECONDS + budget + 10 + 3 * callSeconds).toBeLessThanOrEqual(job.spec.activeDeadlineSeconds);
    expect(value(api, 'CLEANUP_SECONDS')).toBeLessThan(budget / 2);
    // The query side waits no longer than the API side works.
    expect(value(query, 'WAIT_SECONDS')).toBeLessThanOrEqual(budget - value(api, 'CLEANUP_SECONDS'));
  });
});

/** The restore check's pod: its API container (curl) and its query container (psql). */
const { find: findProd } = synthesize(configText());
const restoreJob = findProd('verification/job-n8n-n8n-db-restore.yaml');
const [apiContainer, queryContainer] = restoreJob.spec.template.spec.containers;
const FAKE_NOW = 1_780_000_000;
const iso = (epoch: number) => new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * `date`: the fake clock (a minute later on every call, from FAKE_NOW) for `date +%s`, the real
 * one to convert a given time (`-d`).
 */
const DATE = `${String.raw`case "$*" in *-d*) for d in /bin/date /usr/bin/date; do [ -x "$d" ] && exec "$d" "$@"; done ;; esac`}\n${FAKE_CLOCK}`;

/**
 * A fake API server for the checkpoint's curl: the ObjectStore (with BACKUP_TIME as its last
 * backup, if any), the scratch Cluster (created by a POST, or left by an earlier run with
 * LINGERS=yes, when a DELETE never removes it; Ready when READY=yes, when it also writes ANSWER
 * as the query container would), its claim (bound to volume pvc-1; PVCS_LEFT=yes: it never
 * goes; LIST_FAILS=yes: listing fails once the cluster was made) and that PersistentVolume (made with the claim; PV_LEFT=yes: it stays). Every call is
 * logged with the fake clock's time in `timeline`.
 */
const API = String.raw`method=GET; url=""; data=""; out=""; prev=""; write=""
for a in "$@"; do
  case "$prev" in -X) method="$a" ;; --data-binary) data="$a" ;; -o) out="$a" ;; -w) write="$a" ;; esac
  prev="$a"; url="$a"
done
path=${'$'}{url#https://kubernetes.default.svc}
echo "$method $path" >> "$FAKE_BIN/calls"
{ read -r now < "$FAKE_BIN/clock"; } 2>/dev/null || now=$((FAKE_NOW + 60))
echo "$((now - 60)) $method $path" >> "$FAKE_BIN/timeline"
[ "$LINGERS" = yes ] && [ ! -f "$FAKE_BIN/started" ] && touch "$FAKE_BIN/started" "$FAKE_BIN/exists"
case "$method $path" in
  "GET /apis/barmancloud.cnpg.io/"*)
    if [ -n "$BACKUP_TIME" ]; then store="{\"status\":{\"serverRecoveryWindow\":{\"n8n-db\":{\"lastSuccessfulBackupTime\":\"$BACKUP_TIME\"}}}}"; else store='{"status":{}}'; fi
    ${answerAsApiServer(`echo "$store"`)} ;;
  "POST "*) cp "${'$'}{data#@}" "$FAKE_BIN/created.json"; touch "$FAKE_BIN/exists" "$FAKE_BIN/volume" ;;
  "DELETE "*) [ "$LINGERS" = yes ] || rm -f "$FAKE_BIN/exists" ;;
  "GET /api/v1/persistentvolumes/pvc-1")
    if [ -f "$FAKE_BIN/volume" ] && { [ "$PV_LEFT" = yes ] || [ -f "$FAKE_BIN/exists" ]; }; then [ -n "$write" ] && printf 200; else [ -n "$write" ] && printf 404; exit 22; fi ;;
  "GET /api/v1/persistentvolumes/"*) [ -n "$write" ] && printf 404; exit 22 ;;
  "GET /api/v1/"*)
    [ "$LIST_FAILS" = yes ] && [ -f "$FAKE_BIN/volume" ] && exit 22
    if [ "$PVCS_LEFT" = yes ] || [ -f "$FAKE_BIN/exists" ]; then claims='{"kind":"PersistentVolumeClaimList","items":[{"metadata":{"name":"n8n-db-restore-check-1","uid":"u1"},"spec":{"volumeName":"pvc-1"}}]}'; else claims='{"kind":"PersistentVolumeClaimList","items":[]}'; fi
    ${answerAsApiServer(`echo "$claims"`)} ;;
  "GET /apis/postgresql.cnpg.io/"*)
    if [ ! -f "$FAKE_BIN/exists" ]; then [ -n "$write" ] && printf 404; exit 22; fi
    [ -n "$write" ] && printf 200 && exit 0
    status=False
    if [ "$READY" = yes ]; then
      printf '%s\n' "$ANSWER" > "$WORK_DIR/answer"
      status=True
    fi
    ${answerAsApiServer(`printf '{"status":{"conditions":[{"status":"%s","type":"Ready"}]}}\\n' "$status"`)} ;;
esac`;

interface RestoreRun {
  status: number | null;
  stdout: string;
  stderr: string;
  calls: string[];
  /** Every call with the fake clock's time: `<epoch> <method> <path>`. */
  timeline: string[];
  /** What the fake clock says at the end. */
  clock: number;
  created?: any;
  work: string[];
}

/**
 * The budget the script runs with here: its waits are the same whatever the numbers (the Job's
 * own are checked against its deadline above), and a shorter one is fewer turns of the fake clock.
 */
const SCRIPT_BUDGET = { DEADLINE_SECONDS: '600', CLEANUP_SECONDS: '240' };

function restore(scenario: { backupTime?: string; ready?: boolean; answer?: string; pvcsLeft?: boolean; pvLeft?: boolean; lingers?: boolean; listFails?: boolean }): RestoreRun {
  const dir = tempDir();
  try {
    const work = join(dir, 'work');
    mkdirSync(work);
    const result = runWithFakeCommands(apiContainer, { curl: API, date: DATE, sleep: FAKE_SLEEP }, {
      env: {
        ...SCRIPT_BUDGET,
        FAKE_NOW: String(FAKE_NOW),
        BACKUP_TIME: scenario.backupTime ?? '',
        READY: scenario.ready === false ? 'no' : 'yes',
        ANSWER: scenario.answer ?? 'canary|2026-05-28 20:00:00',
        PVCS_LEFT: scenario.pvcsLeft ? 'yes' : 'no',
        PV_LEFT: scenario.pvLeft ? 'yes' : 'no',
        LINGERS: scenario.lingers ? 'yes' : 'no',
        LIST_FAILS: scenario.listFails ? 'yes' : 'no',
        WORK_DIR: work,
      },
      collect: (bin) => {
        /** The lines the fakes appended to a file (each call writes one), none if they never wrote it. */
        const lines = (name: string) => {
          const text = readFakeFile(bin, name).trim();
          return text ? text.split('\n') : [];
        };
        const created = readFakeFile(bin, 'created.json');
        return { calls: lines('calls'), timeline: lines('timeline'), clock: Number(readFileSync(join(bin, 'clock'), 'utf8')), created: created ? JSON.parse(created) : undefined };
      },
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr, ...result.collected, work: readdirSync(work).sort() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const SCRATCH = '/apis/postgresql.cnpg.io/v1/namespaces/n8n/clusters/n8n-db-restore-check';

describe('the restore check (API side)', () => {
  it('recovers a scratch cluster from the latest base backup, finds the canary row, reports the backup\'s age, and removes the scratch cluster', () => {
    const run = restore({ backupTime: iso(FAKE_NOW - 3 * 3600) });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('PASS n8n-db: recovered from the latest base backup (3 h old) and WAL, the canary row written 2026-05-28 20:00:00 UTC is there');
    expect(run.created).toMatchObject({ kind: 'Cluster', metadata: { name: 'n8n-db-restore-check' } });
    expect(run.calls).toContain('POST /apis/postgresql.cnpg.io/v1/namespaces/n8n/clusters');
    // Deleted after the answer, and awaited until it and its volumes are gone.
    expect(run.calls.lastIndexOf(`DELETE ${SCRATCH}`)).toBeGreaterThan(run.calls.indexOf('POST /apis/postgresql.cnpg.io/v1/namespaces/n8n/clusters'));
    expect(run.stdout).toContain('cleaned up: no scratch cluster n8n-db-restore-check, no claim or volume of it');
    expect(run.work).toContain('ready');
    // The claim's volume was looked up after the claim went: a Delete class removes it.
    expect(run.calls.lastIndexOf('GET /api/v1/persistentvolumes/pvc-1')).toBeGreaterThan(run.calls.lastIndexOf(`DELETE ${SCRATCH}`));
  });

  it('fails without a base backup, and still leaves no scratch cluster', () => {
    const run = restore({});
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('FAIL n8n-db: no base backup in ObjectStore n8n-db-backup yet');
    expect(run.calls).not.toContain('POST /apis/postgresql.cnpg.io/v1/namespaces/n8n/clusters');
    expect(run.calls).toContain(`DELETE ${SCRATCH}`);
    // The query container is told to stop waiting.
    expect(run.work).toContain('abort');
  });

  it('fails with the age when the scratch cluster never becomes Ready, deleting it', () => {
    const run = restore({ backupTime: iso(FAKE_NOW - 30 * 3600), ready: false });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('FAIL n8n-db: the scratch cluster recovered from the backup (30 h old) is not Ready within');
    expect(run.calls.at(-2)).toBe(`GET ${SCRATCH}`);
    expect(run.calls.filter((c) => c === `DELETE ${SCRATCH}`).length).toBeGreaterThanOrEqual(2);
    expect(run.stdout).toContain('cleaned up');
    expect(run.work).toContain('abort');
  });

  it('fails when the recovered database has no canary row', () => {
    const run = restore({ backupTime: iso(FAKE_NOW - 3600), answer: 'error|the table homelab_canary holds no row' });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('FAIL n8n-db: the scratch cluster recovered from the backup (1 h old) has no canary row: the table homelab_canary holds no row');
    expect(run.stdout).toContain('cleaned up');
  });

  it("fails when the scratch cluster's claims do not go", () => {
    const run = restore({ backupTime: iso(FAKE_NOW - 3600), pvcsLeft: true });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('a claim of it is still there');
  });

  it("fails when the scratch claims' PersistentVolume stays after them, naming it", () => {
    const run = restore({ backupTime: iso(FAKE_NOW - 3600), pvLeft: true });
    expect(run.status).not.toBe(0);
    expect(run.stdout).toContain('PASS n8n-db');
    expect(run.stderr).toContain('the PersistentVolume pvc-1 of it is still there');
    expect(run.stdout).not.toContain('cleaned up');
  });

  it('counts a claim listing that fails as not gone', () => {
    const run = restore({ backupTime: iso(FAKE_NOW - 3600), listFails: true });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('an unlisted claim of it is still there');
  });

  /** The script's budget in these runs. */
  const budget = (name: keyof typeof SCRIPT_BUDGET) => Number(SCRIPT_BUDGET[name]);
  const timeOf = (line: string) => Number(line.split(' ')[0]);

  it('keeps every wait inside one deadline from its start, leaving the final cleanup its share, whatever hangs', () => {
    const end = FAKE_NOW + budget('DEADLINE_SECONDS');
    const workEnd = end - budget('CLEANUP_SECONDS');
    // Never Ready, and the volume never goes: the longest run there is.
    const run = restore({ backupTime: iso(FAKE_NOW - 3600), ready: false, pvLeft: true });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('is not Ready within');
    const created = run.timeline.findIndex((line) => line.endsWith('POST /apis/postgresql.cnpg.io/v1/namespaces/n8n/clusters'));
    const cleanup = run.timeline.findIndex((line, i) => i > created && line.endsWith(`DELETE ${SCRATCH}`));
    // The work stops by its end (one tick of the fake clock, a minute, of slack), and the cleanup then runs until the deadline.
    expect(timeOf(run.timeline[cleanup])).toBeLessThanOrEqual(workEnd + 60);
    expect(timeOf(run.timeline.at(-1)!)).toBeGreaterThanOrEqual(end - 60);
    expect(Math.max(...run.timeline.map(timeOf))).toBeLessThanOrEqual(end + 60);
    expect(run.stderr).toContain('the PersistentVolume pvc-1 of it is still there');
  });

  it("waits for an earlier run's scratch cluster only the cleanup's share, then fails and still stops by the deadline", () => {
    const run = restore({ backupTime: iso(FAKE_NOW - 3600), lingers: true });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('a scratch cluster n8n-db-restore-check of an earlier run cannot be removed');
    expect(run.stderr).toContain('the Cluster of it is still there');
    expect(run.calls).not.toContain('POST /apis/postgresql.cnpg.io/v1/namespaces/n8n/clusters');
    const deletes = run.timeline.filter((line) => line.endsWith(`DELETE ${SCRATCH}`)).map(timeOf);
    expect(deletes).toHaveLength(2);
    expect(deletes[1]).toBeLessThanOrEqual(FAKE_NOW + budget('CLEANUP_SECONDS') + 60);
    expect(run.clock).toBeLessThanOrEqual(FAKE_NOW + budget('DEADLINE_SECONDS') + 2 * 60);
  });
});

/** The owner's password in the fake Secret volume; the fake psql sees it as PGPASSWORD. */
const OWNER_PASSWORD = 'recovered-owner-password';

function query(scenario: { ready?: boolean; abort?: boolean; psql: string; sleep?: string; tries?: string }): {
  status: number | null;
  answer?: string;
  stderr: string;
  /** psql's calls, and the pauses between them (sleep's arguments). */
  asked: number;
  pauses: string[];
} {
  const dir = tempDir();
  try {
    const work = join(dir, 'work');
    mkdirSync(work);
    const owner = join(dir, 'owner');
    mkdirSync(owner);
    writeFileSync(join(owner, 'password'), OWNER_PASSWORD);
    if (scenario.ready) writeFileSync(join(work, 'ready'), '');
    if (scenario.abort) writeFileSync(join(work, 'abort'), '');
    const result = runWithFakeCommands(
      queryContainer,
      { psql: `echo >> "$FAKE_BIN/asked"\n${scenario.psql}`, date: FAKE_CLOCK, sleep: scenario.sleep ?? 'echo "$*" >> "$FAKE_BIN/pauses"' },
      {
        env: { WORK_DIR: work, OWNER_SECRET_DIR: owner, QUERY_CHECKS: scenario.tries ?? '2' },
        collect: (bin) => ({ asked: readFakeFile(bin, 'asked').length, pauses: readFakeFile(bin, 'pauses').split('\n').filter(Boolean) }),
      },
    );
    const answer = join(work, 'answer');
    return { status: result.status, answer: existsSync(answer) ? readFileSync(answer, 'utf8').trim() : undefined, stderr: result.stderr, ...result.collected };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the restore check (query side)', () => {
  it('answers with the canary row of the scratch cluster, as the recovered owner', () => {
    const psql = `[ "$PGPASSWORD" = ${OWNER_PASSWORD} ] || { echo "password authentication failed"; exit 2; }
case "$*" in *"-h n8n-db-restore-check-rw"*"-d n8n"*homelab_canary*) echo "2026-05-28 20:00:00" ;; *) exit 2 ;; esac`;
    const run = query({ ready: true, psql });
    expect(run).toMatchObject({ status: 0, answer: 'canary|2026-05-28 20:00:00', asked: 1 });
  });

  it('asks the database for five minutes, 10 s apart, in every restore check, and stops with a message where the tries are unset', () => {
    const jobs = retryTries([synthesize(configText()).env], 'QUERY_CHECKS');
    expect(jobs.length).toBeGreaterThan(0);
    for (const { path, tries } of jobs) expect(tries * 10, path).toBe(300);
    expect(query({ ready: true, psql: 'exit 2', tries: '3' })).toMatchObject({ asked: 3, pauses: ['10', '10'] });
    const unset = query({ ready: true, psql: 'exit 2', tries: '' });
    expect(unset.status).not.toBe(0);
    expect(unset.stderr).toContain('QUERY_CHECKS: unset (the Job sets it)');
    expect(unset.asked).toBe(1);
  });

  it('answers with an error when the row is missing or the database never answers, and waits for nothing after an abort', () => {
    expect(query({ ready: true, psql: 'exit 0' }).answer).toBe('error|the table homelab_canary holds no row');
    const refused = query({ ready: true, psql: 'echo "connection refused"; exit 2' });
    expect(refused.answer).toBe('error|connection refused');
    expect(refused.asked).toBe(2);
    expect(query({ abort: true, psql: 'exit 2' })).toMatchObject({ status: 0, answer: undefined });
    // An abort while it retries ends it too (the pod ends with the API side).
    expect(query({ ready: true, psql: 'exit 2', sleep: 'touch "$WORK_DIR/abort"' })).toMatchObject({ status: 0, answer: undefined });
  });
});

describe('the canary hook', () => {
  const canary = findProd('n8n/job-n8n-db-canary.yaml').spec.template.spec.containers[0];

  it('upserts the row as the owner and says when', () => {
    const run = runWithFakeCommands(canary, { psql: 'case "$*" in *"insert into homelab_canary"*"on conflict"*) echo "2026-05-28 20:00:00" ;; *) exit 2 ;; esac', date: FAKE_CLOCK, sleep: FAKE_SLEEP });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('canary row of n8n-db written at 2026-05-28 20:00:00 UTC');
  });

  it('fails when the database does not take it within five minutes', () => {
    const run = runWithFakeCommands(canary, { psql: 'echo "the database system is starting up"; exit 2', date: FAKE_CLOCK, sleep: FAKE_SLEEP });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('FAIL n8n-db: cannot write the canary row within 5 minutes');
  });
});
