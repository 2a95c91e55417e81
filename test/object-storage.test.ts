/**
 * Object storage (SeaweedFS) and the buckets services declare, on a small fixture with Vault,
 * External Secrets and Loki keeping its chunks in the store: the config checks, the derived
 * objects (buckets, identities limited to their buckets, generated keys and who may read them),
 * the waves, and the bucket checks run under `sh` against a fake S3 server.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { App } from 'cdk8s';
import { expiryDays, Seaweedfs } from '../charts/seaweedfs';
import { Checkpoint } from '../lib/model/checkpoint';
import { Layer } from '../lib/model/layers';
import type { ObjectStore } from '../lib/model/object-storage';
import type { Platform } from '../lib/model/platform';
import { HomelabService } from '../lib/model/service';
import { synthesizePlatform } from '../lib/output/synthesize';
import { buildPlatform, configProblems, chartValues, fixtureObject, Manifest, manifestAt, manifestsOf, parseText, readFakeFile, runMain, runWithFakeCommands, synthesizeText, tempDir, toYamlText } from './support';

/** The small fixture with the services the store needs, Loki on the store, and any change. */
function configText(change: (config: Record<string, any>) => void = () => {}): string {
  const config = fixtureObject('small');
  Object.assign(config.services, {
    vault: { enabled: true },
    externalSecrets: { enabled: true },
    seaweedfs: { enabled: true, storageSize: '20Gi' },
    loki: { enabled: true, storage: { objectStore: {} } },
  });
  change(config);
  return toYamlText(config);
}

const [lab] = synthesizeText(configText());
function find(path: string): Manifest {
  return manifestAt(lab, path);
}
const valuesOf = (service: string) => chartValues(lab, service);
const waveOf = (service: string) => Number(find(`apps/application-${service}.yaml`).metadata.annotations!['argocd.argoproj.io/sync-wave']);

/** Config problems as `path: message` lines, or [] when the config is valid. */
function problems(text: string): string[] {
  const found = configProblems(text);
  return found === '' ? [] : found.split('\n');
}

describe('object storage config', () => {
  it('is valid with Longhorn, Vault and External Secrets', () => {
    expect(problems(configText())).toEqual([]);
  });

  it('refuses a consumer of the store while the store is disabled', () => {
    const found = problems(configText((c) => (c.services.seaweedfs.enabled = false))).join('\n');
    expect(found).toContain('services.loki.storage.objectStore');
    expect(found).toContain('services.seaweedfs.enabled');
  });

  it('refuses the store without Vault or External Secrets, which generate and deliver every key', () => {
    expect(problems(configText((c) => (c.services.externalSecrets.enabled = false))).join('\n')).toContain('External Secrets delivers the S3 identities');
    expect(problems(configText((c) => { c.services.vault.enabled = false; c.services.externalSecrets.enabled = false; })).join('\n')).toContain('Vault generates the keys');
  });

  it('refuses one bucket for both of Loki\'s uses, and names that are no S3 bucket names', () => {
    const same = problems(configText((c) => (c.services.loki.storage.objectStore = { buckets: { chunks: 'logs', ruler: 'logs' } }))).join('\n');
    expect(same).toContain('services.loki.storage.objectStore.buckets.ruler');
    const bad = problems(configText((c) => (c.services.loki.storage.objectStore = { buckets: { chunks: 'Logs_Chunks' } }))).join('\n');
    expect(bad).toContain('expected an S3 bucket name');
  });

  it("refuses the store's own bucket at the path that names it, with an error line and exit 2, the output untouched", () => {
    const dir = tempDir();
    const file = join(dir, 'homelab.yaml');
    writeFileSync(file, configText((c) => (c.services.loki.storage.objectStore = { buckets: { chunks: 'seaweedfs-probe' } })));
    const run = runMain(['--config', file, '--out', join(dir, 'k8s'), '--docs', join(dir, 'platform.md')]);
    expect(run.stderr).toMatch(/^error: .*services\.loki\.storage\.objectStore\.buckets\.chunks: bucket seaweedfs-probe is taken by seaweedfs \(its checkpoint's\)/m);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(run.status).toBe(2);
    expect(existsSync(join(dir, 'k8s'))).toBe(false);
  });

  it('accepts expiry between 1 and 255 days only (SeaweedFS TTLs)', () => {
    expect(expiryDays.safeParse(1).success).toBe(true);
    expect(expiryDays.safeParse(255).success).toBe(true);
    for (const days of [0, 256, 1.5]) expect(expiryDays.safeParse(days).success, String(days)).toBe(false);
  });
});

describe('the derived objects', () => {
  const identities = find('seaweedfs/externalsecret-seaweedfs-s3-identities.yaml');

  it('creates every declared bucket and the probe bucket with the chart\'s bucket hook', () => {
    const values = valuesOf('seaweedfs');
    expect(values.allInOne.s3).toMatchObject({ enabled: true, enableAuth: true, existingConfigSecret: identities.spec.target.name });
    expect(values.allInOne.s3.createBuckets.map((b: any) => b.name).sort()).toEqual(['loki-chunks', 'loki-ruler', 'seaweedfs-probe']);
    expect(values.allInOne.data).toMatchObject({ type: 'persistentVolumeClaim', size: '20Gi' });
  });

  it('renders one identity per consumer, allowed on its own buckets only, from the keys in Vault', () => {
    const data = identities.spec.data as { secretKey: string; remoteRef: { key: string; property: string } }[];
    // What External Secrets' template engine makes of it, with each variable's own value.
    const text = (identities.spec.target.template.data.seaweedfs_s3_config as string).replace(/\{\{ index \. "([^"]+)" \| toJson \}\}/g, (_, v) => JSON.stringify(`value-of-${v}`));
    const config = JSON.parse(text) as { identities: { name: string; credentials: { accessKey: string; secretKey: string }[]; actions: string[] }[] };
    const loki = config.identities.find((i) => i.name === 'loki')!;
    expect(loki.credentials).toEqual([{ accessKey: 'value-of-loki.AWS_ACCESS_KEY_ID', secretKey: 'value-of-loki.AWS_SECRET_ACCESS_KEY' }]);
    expect(new Set(loki.actions.map((a) => a.split(':')[1]))).toEqual(new Set(['loki-chunks', 'loki-ruler']));
    const probe = config.identities.find((i) => i.name === 'seaweedfs')!;
    expect(new Set(probe.actions.map((a) => a.split(':')[1]))).toEqual(new Set(['seaweedfs-probe']));
    // Every variable comes from the Vault path of the consumer it belongs to.
    for (const entry of data) expect(entry.remoteRef.key.split('/')[0]).toBe(entry.secretKey.split('.')[0]);
  });

  it('rolls the store when its identities change, after they are rendered', () => {
    const digest = (env: typeof lab) => {
      return chartValues(env, 'seaweedfs').allInOne.podAnnotations['homelab.dev/s3-identities'];
    };
    const [withoutLoki] = synthesizeText(configText((c) => (c.services.loki.storage = { volume: { size: '10Gi' } })));
    const [renamed] = synthesizeText(configText((c) => (c.services.loki.storage.objectStore = { buckets: { chunks: 'logs', ruler: 'rules' } })));
    expect(new Set([digest(lab), digest(withoutLoki), digest(renamed)]).size).toBe(3);
    expect(digest(lab)).toMatch(/^[0-9a-f]{16}$/);
    // Argo CD waits for the ExternalSecret (its built-in health check) before the chart's Deployment rolls.
    expect(identities.metadata.annotations!['argocd.argoproj.io/sync-wave']).toBe('-1');
  });

  it('has the configurator generate the keys, which it may create but never read; the store reads exactly those', () => {
    const configMap = find('vault/configmap-vault-configurator.yaml').data!;
    expect(configMap.generated.split('\n')).toContain('loki/loki-bucket-credentials AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY');
    const policy = configMap['configurator-policy.hcl'];
    expect(policy).toContain('path "homelab/data/loki/loki-bucket-credentials" {\n  capabilities = ["create"]\n}');
    expect(policy).toContain('path "homelab/metadata/loki/loki-bucket-credentials" {\n  capabilities = ["read"]\n}');
    expect(configMap['homelab-seaweedfs.hcl']).toContain('path "homelab/data/loki/loki-bucket-credentials" {\n  capabilities = ["read"]\n}');
    expect(configMap['homelab-loki.hcl']).not.toContain('seaweedfs');
  });

  it('gives Loki the store\'s endpoint and its own keys', () => {
    const values = valuesOf('loki');
    expect(values.loki.storage).toMatchObject({ type: 's3', bucketNames: { chunks: 'loki-chunks', ruler: 'loki-ruler' }, s3: { endpoint: 'http://seaweedfs-all-in-one.seaweedfs.svc:8333', s3ForcePathStyle: true } });
    expect(values.singleBinary.extraEnv.map((e: any) => e.valueFrom.secretKeyRef.name)).toEqual(['loki-bucket-credentials', 'loki-bucket-credentials']);
  });

  it('syncs the store after External Secrets and before its consumers', () => {
    expect(waveOf('seaweedfs')).toBeGreaterThan(waveOf('external-secrets'));
    expect(waveOf('loki')).toBeGreaterThan(waveOf('seaweedfs'));
  });
});

/**
 * A fake S3 server and filer behind `curl`: every identity may use the buckets in $ALLOWED
 * (others answer 403), a put object is kept in a file, and the filer knows $EXISTING buckets.
 */
const FAKE_S3 = String.raw`url=""; method=GET; data=""; prev=""
for a in "$@"; do
  case "$prev" in -X) method="$a";; --data-binary) data="$a";; esac
  case "$a" in http*) url="$a";; esac
  prev="$a"
done
echo "$method $url" >> "$FAKE_BIN/calls"
case "$url" in
  *:8888/buckets/*) bucket=$(echo "$url" | sed 's|.*/buckets/\([^/]*\)/$|\1|'); case " $EXISTING " in *" $bucket "*) printf 200;; *) printf 404;; esac; exit 0;;
esac
bucket=$(echo "$url" | sed 's|http://[^/]*/\([^/]*\)/.*|\1|')
case " $ALLOWED " in *" $bucket "*) ;; *) printf '<Error>AccessDenied</Error>\n403'; exit 0;; esac
case "$method" in
  PUT) printf '%s' "$data" > "$FAKE_BIN/object"; printf '\n200';;
  GET) cat "$FAKE_BIN/object"; printf '\n200';;
  DELETE) rm -f "$FAKE_BIN/object"; printf '\n204';;
esac`;

function runCheck(job: Manifest, env: Record<string, string>) {
  const container = job.spec.template.spec.containers[0];
  return runWithFakeCommands(container, { curl: FAKE_S3 }, {
    env: { AWS_ACCESS_KEY_ID: 'key', AWS_SECRET_ACCESS_KEY: 'secret', ...env },
    collect: (bin) => readFakeFile(bin, 'calls'),
  });
}

describe('the store\'s checkpoint', () => {
  const job = find('seaweedfs/job-seaweedfs-checkpoint.yaml');
  const all = 'seaweedfs-probe loki-chunks loki-ruler';

  it('passes when every bucket exists, its identity works in its bucket and is refused in the others', () => {
    const run = runCheck(job, { EXISTING: all, ALLOWED: 'seaweedfs-probe' });
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('PASS bucket loki-chunks exists');
    expect(run.stdout).toContain('PASS seaweedfs-probe: put, get and delete');
    expect(run.stdout).toContain("PASS loki-ruler: another identity's bucket refused (HTTP 403)");
  });

  it('fails when a declared bucket is missing', () => {
    const run = runCheck(job, { EXISTING: 'seaweedfs-probe loki-chunks', ALLOWED: 'seaweedfs-probe' });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('FAIL bucket loki-ruler: the filer answered HTTP 404');
  });

  it('fails, and removes what it wrote, when its identity may write to another consumer\'s bucket', () => {
    const run = runCheck(job, { EXISTING: all, ALLOWED: 'seaweedfs-probe loki-chunks' });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("FAIL loki-chunks: another identity's bucket answered HTTP 200 to a put, expected 403");
    expect(run.collected).toMatch(/DELETE http:\/\/seaweedfs-all-in-one\.seaweedfs\.svc:8333\/loki-chunks\/checkpoint-/);
  });
});

describe('a consumer\'s bucket check in the verification', () => {
  const job = find('verification/job-loki-loki-buckets.yaml');

  it('runs in the consumer\'s namespace with its own keys', () => {
    expect(job.metadata.namespace).toBe('loki');
    const env = job.spec.template.spec.containers[0].env as { name: string; value?: string; valueFrom?: any }[];
    expect(env.find((e) => e.name === 'AWS_ACCESS_KEY_ID')!.valueFrom.secretKeyRef).toEqual({ name: 'loki-bucket-credentials', key: 'AWS_ACCESS_KEY_ID' });
    expect(env.find((e) => e.name === 'FOREIGN_BUCKETS')!.value).toBe('seaweedfs-probe');
  });

  it('passes with put, get and delete in its buckets and a refusal in the probe bucket', () => {
    const run = runCheck(job, { ALLOWED: 'loki-chunks loki-ruler' });
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('PASS loki-chunks: put, get and delete');
    expect(run.stdout).toContain('PASS loki-ruler: put, get and delete');
  });

  it('fails when its keys do not open its own bucket', () => {
    const run = runCheck(job, { ALLOWED: 'loki-chunks' });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('FAIL loki-ruler: put answered HTTP 403');
  });
});

describe('the Vault configurator\'s generated keys', () => {
  const job = find('vault/job-vault-configurator.yaml');
  const configMap = find('vault/configmap-vault-configurator.yaml').data!;
  /** A fake `vault`: every call succeeds and is logged; KV values exist once put (per path). */
  const vault = String.raw`echo "$*" >> "$FAKE_BIN/log"
stored() { [ -f "$FAKE_BIN/stored-$(echo "$1" | tr / _)" ]; }
case "$1 $2 $3" in
  "kv metadata get") stored "$5" || exit 2 ;;
  "kv put "*) touch "$FAKE_BIN/stored-$(echo "$4" | tr / _)" ;;
esac
case "$1 $2" in
  "secrets list") echo "homelab/    kv" ;;
  "auth list") echo "kubernetes/    kubernetes" ;;
esac`;

  /** Two runs of the configurator over the same fake Vault; the log of each. */
  function twice(): string[][] {
    const container = job.spec.template.spec.containers[0];
    const configured = { ...container, command: ['sh', '-ec', `CONFIG_DIR="$FAKE_BIN/config"\n${container.command[2]}`] };
    const run = () => runWithFakeCommands(configured, { vault }, {
      env: { VAULT_TOKEN: 'valid' },
      prepare: (bin) => {
        mkdirSync(join(bin, 'config'));
        for (const [key, text] of Object.entries(configMap)) writeFileSync(join(bin, 'config', key), text);
      },
      collect: (bin) => {
        const first = readFileSync(join(bin, 'log'), 'utf8').split('\n').filter(Boolean);
        writeFileSync(join(bin, 'log'), '');
        const again = runWithFakeCommands(configured, {}, { env: { VAULT_TOKEN: 'valid', PATH: `${bin}:${process.env.PATH}`, FAKE_BIN: bin } });
        expect(again.status, again.stderr).toBe(0);
        return [first, readFileSync(join(bin, 'log'), 'utf8').split('\n').filter(Boolean)];
      },
    });
    const result = run();
    expect(result.status, result.stderr).toBe(0);
    return result.collected;
  }

  it('writes random keys once for each consumer and for the store, and never replaces them', () => {
    const [first, second] = twice();
    const puts = first.filter((line) => line.startsWith('kv put -mount=homelab ') && !line.includes('external-secrets-probe'));
    expect(puts.map((line) => line.split(' ')[3]).sort()).toEqual(['loki/loki-bucket-credentials', 'seaweedfs/seaweedfs-probe-credentials']);
    for (const put of puts) {
      const values = put.split(' ').slice(4);
      expect(values.map((v) => v.split('=')[0])).toEqual(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']);
      for (const value of values) expect(value.split('=')[1]).toMatch(/^[0-9a-f]{40}$/);
      expect(values[0].split('=')[1]).not.toBe(values[1].split('=')[1]);
    }
    expect(second.filter((line) => line.startsWith('kv put') && !line.includes('external-secrets-probe'))).toEqual([]);
  });
});

/** A consumer of its own: an archive bucket that expires and keeps versions. */
class Archiver extends HomelabService {
  constructor(scope: Platform, props: { readonly store: ObjectStore }) {
    super(scope, 'archiver', props, { layer: Layer.AUTOMATION, namespace: 'archiver' });
    this.needBuckets(props.store, [{ name: 'archive', expireAfterDays: 30, versioning: true }, { name: 'scratch' }], 'test archive');
    new Checkpoint(this, 'checkpoint', { description: 'test double', image: 'docker.io/library/busybox:1.37.0', script: 'true' });
  }
}

describe('bucket settings', () => {
  it('become the chart\'s bucket hook: a TTL of the expiry in days, versioning enabled', () => {
    const app = new App();
    const platform = buildPlatform(app, 'lab', parseText(configText()).environments.get('lab')!);
    new Archiver(platform, { store: platform.services.find((s): s is Seaweedfs => s.serviceName === 'seaweedfs')! });
    const env = synthesizePlatform(app, platform);
    const buckets = chartValues(env, 'seaweedfs').allInOne.s3.createBuckets;
    expect(buckets).toContainEqual({ name: 'archive', ttl: '30d', versioning: 'Enabled' });
    expect(buckets).toContainEqual({ name: 'scratch' });
    // Its own identity, on both of its buckets only.
    const identities = manifestsOf(env).find((m) => m.path === 'seaweedfs/externalsecret-seaweedfs-s3-identities.yaml')!.manifest;
    const config = identities.spec.target.template.data.seaweedfs_s3_config as string;
    expect(config).toContain('"name":"archiver"');
    expect(config).toContain('"Write:archive"');
    expect(config).toContain('"Write:scratch"');
  });
});
