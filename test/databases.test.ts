/**
 * PostgreSQL through CloudNativePG: the config checks, the objects a declared database becomes (n8n's, in its own namespace, with
 * credentials the operator generates), the waves, and the checks run under `sh` against fake
 * psql and curl answers.
 */
import { App } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { databaseClusterSchema } from '../charts/cloudnative-pg';
import { synthesizePlatform, SynthesizedEnvironment } from '../lib/output/synthesize';
import { buildPlatform, configProblems, FAKE_CLOCK, FAKE_SLEEP, fixtureObject, Manifest, manifestAt, manifestsOf, parseText, runWithFakeCommands, toYamlText } from './support';

/** The small fixture with n8n on SQLite, and any change. */
function configText(change: (config: Record<string, any>) => void = () => {}): string {
  const config = fixtureObject('small');
  Object.assign(config.services, { n8n: { enabled: true, database: { sqlite: {} } } });
  change(config);
  return toYamlText(config);
}

const problems = configProblems;

/** The fixture's environment with CloudNativePG on and n8n on a database of its own with `instances`. */
function withDatabase(instances: number): SynthesizedEnvironment {
  const text = configText((c) => {
    c.services.cloudnativePg = { enabled: true };
    c.services.n8n.database = { cloudnativePg: { instances, size: '8Gi' } };
  });
  const app = new App();
  return synthesizePlatform(app, buildPlatform(app, 'lab', parseText(text).environments.get('lab')!));
}

describe('the CloudNativePG operator in the config', () => {
  // That the platform's Kubernetes satisfies the chart's kubeVersion: test/kubernetes-version.test.ts.
  it('is accepted on its own', () => {
    expect(problems(configText((c) => (c.services.cloudnativePg = { enabled: true })))).toBe('');
  });
});

describe('a database in the config', () => {
  it('needs CloudNativePG and Longhorn', () => {
    const found = problems(configText((c) => (c.services.n8n.database = { cloudnativePg: { instances: 1 } })));
    expect(found).toContain("services.n8n.database.cloudnativePg: expected services.cloudnativePg.enabled: CloudNativePG runs n8n's database");
  });

  it('is one of SQLite, an external PostgreSQL or a cluster of its own', () => {
    const found = problems(configText((c) => (c.services.n8n.database = { sqlite: {}, cloudnativePg: {} })));
    expect(found).toContain('services.n8n.database: expected exactly one of sqlite, postgres or cloudnativePg');
  });

  it('has 1 to 5 instances and a volume size', () => {
    for (const instances of [0, 6, 1.5]) expect(databaseClusterSchema.safeParse({ instances }).success, String(instances)).toBe(false);
    expect(databaseClusterSchema.safeParse({ size: 'big' }).success).toBe(false);
    expect(databaseClusterSchema.parse({})).toMatchObject({ instances: 1, size: '5Gi' });
  });
});

describe('n8n on a database of its own', () => {
  const env = withDatabase(2);
  const manifests = manifestsOf(env);
  const find = (path: string): Manifest => manifestAt(env, path);
  const cluster = find('n8n/cluster-n8n-db.yaml');

  it('gets a Cluster in its own namespace and Application, a wave before its workloads', () => {
    expect(cluster.metadata).toMatchObject({ name: 'n8n-db', namespace: 'n8n', annotations: { 'argocd.argoproj.io/sync-wave': '-1' } });
    expect(cluster.spec).toMatchObject({
      instances: 2,
      bootstrap: { initdb: { database: 'n8n', owner: 'n8n' } },
      enableSuperuserAccess: false,
      storage: { size: '8Gi' },
    });
    // Longhorn's default class, as the config leaves it out.
    const defaultClass = manifests.find((m) => m.manifest.kind === 'StorageClass' && m.manifest.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true');
    expect(cluster.spec.storage.storageClass).toBe(defaultClass!.manifest.metadata.name);
    expect(cluster.spec.imageName).toMatch(/^ghcr\.io\/cloudnative-pg\/postgresql:\d+\.\d+-/);
  });

  it('reads the credentials the operator generates, and stores no password in Git or Vault', () => {
    const container = find('n8n/deployment-n8n.yaml').spec.template.spec.containers[0];
    const variables = Object.fromEntries(container.env.map((e: any) => [e.name, e.value ?? e.valueFrom.secretKeyRef]));
    expect(variables).toMatchObject({
      DB_TYPE: 'postgresdb',
      DB_POSTGRESDB_HOST: 'n8n-db-rw',
      DB_POSTGRESDB_DATABASE: 'n8n',
      DB_POSTGRESDB_USER: { name: 'n8n-db-app', key: 'username' },
      DB_POSTGRESDB_PASSWORD: { name: 'n8n-db-app', key: 'password' },
    });
    expect(env.secrets.map((need) => need.name)).not.toContain('n8n-db-app');
    expect(manifests.filter((m) => m.manifest.kind === 'ExternalSecret').map((m) => m.manifest.metadata.name)).not.toContain('n8n-db-app');
  });

  it('syncs after the operator, which syncs before every consumer', () => {
    const byName = new Map(env.services.map((s) => [s.name, s]));
    expect(byName.get('n8n')!.dependsOn).toContain('cloudnative-pg');
    expect(byName.get('n8n')!.wave).toBeGreaterThan(byName.get('cloudnative-pg')!.wave);
  });

  it('lets the operator reach the instance managers and the instances reach the API server', () => {
    // Every instance in the namespace (the operator labels them all so): other databases' and scratch clusters' too.
    const allow = find('n8n/networkpolicy-allow-cloudnative-pg-8000.yaml');
    expect(allow.spec.podSelector.matchLabels).toEqual({ 'cnpg.io/podRole': 'instance' });
    expect(allow.spec.ingress[0].from[0].namespaceSelector.matchLabels).toEqual({ 'kubernetes.io/metadata.name': 'cnpg-system' });
    expect(find('n8n/networkpolicy-egress-api-server-n8n-db.yaml').spec.podSelector.matchLabels).toEqual({ 'cnpg.io/cluster': 'n8n-db' });
    expect(find('cloudnative-pg/networkpolicy-egress-n8n-8000.yaml').spec.egress[0].ports).toEqual([{ port: 8000, protocol: 'TCP' }]);
  });

  it('is proven by the verification in n8n\'s namespace, with the generated credentials', () => {
    const verificationJob = find('verification/job-n8n-n8n-db-connect.yaml');
    expect(verificationJob.metadata.namespace).toBe('n8n');
    const container = verificationJob.spec.template.spec.containers[0];
    expect(container.env).toContainEqual({ name: 'DATABASE_URI', valueFrom: { secretKeyRef: { name: 'n8n-db-app', key: 'uri' } } });
    expect(container.env).toContainEqual({ name: 'REPLICAS', value: '1' });
  });
});

/** A fake psql answering `$ANSWER` (or failing with `$FAIL` until the clock passes $UNTIL). */
const FAKE_PSQL = String.raw`echo "$*" >> "$FAKE_BIN/calls"
if [ -n "$FAIL" ]; then echo "$FAIL" >&2; exit 2; fi
echo "$ANSWER"`;

describe('the database connection check', () => {
  const job = manifestsOf(withDatabase(2)).find((m) => m.path === 'verification/job-n8n-n8n-db-connect.yaml')!.manifest;
  const run = (env: Record<string, string>) =>
    runWithFakeCommands(job.spec.template.spec.containers[0], { psql: FAKE_PSQL, sleep: FAKE_SLEEP, date: FAKE_CLOCK }, { env: { DATABASE_URI: 'postgresql://n8n:secret@n8n-db-rw.n8n:5432/n8n', ...env } });

  it('passes when the owner queries the primary and every replica streams', () => {
    const ok = run({ ANSWER: 'n8n|n8n|f|1' });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('PASS n8n-db: n8n runs queries on n8n; 1 replica(s) connected');
  });

  it('fails on a replica that is not connected, a primary in recovery, another user, or no answer', () => {
    expect(run({ ANSWER: 'n8n|n8n|f|0' }).stderr).toContain('FAIL n8n-db: 0 of 1 replicas are connected to the primary');
    expect(run({ ANSWER: 'n8n|n8n|t|1' }).stderr).toContain('leads to an instance in recovery');
    expect(run({ ANSWER: 'postgres|n8n|f|1' }).stderr).toContain('connected as postgres to n8n, expected n8n to n8n');
    const silent = run({ FAIL: 'connection refused' });
    expect(silent.status).not.toBe(0);
    expect(silent.stderr).toContain('FAIL n8n-db: no answer as n8n within 5 minutes: connection refused');
  });
});

describe('the operator checkpoint', () => {
  const job = manifestsOf(withDatabase(1)).find((m) => m.path === 'cloudnative-pg/job-cloudnative-pg-checkpoint.yaml')!.manifest;
  const run = (code: string) => runWithFakeCommands(job.spec.template.spec.containers[0], { curl: `printf '${code}'` });

  it('passes on any answer of the webhook below 500, verified with the operator\'s CA', () => {
    expect(run('400').status).toBe(0);
    expect(job.spec.template.spec.volumes).toContainEqual({ name: 'ca', secret: { secretName: 'cnpg-ca-secret', items: [{ key: 'ca.crt', path: 'ca.crt' }] } });
  });

  it('fails when the webhook does not answer or fails', () => {
    expect(run('000').status).not.toBe(0);
    expect(run('503').status).not.toBe(0);
  });
});
