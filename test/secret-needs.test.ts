/**
 * Every credential is one declaration: each Secret a service's output references (env
 * `secretKeyRef`s, Secret volumes, `*SecretRef`s of custom resources, Helm values naming a
 * Secret, files of mounted Secrets) is a `needSecret` of that very service, with the keys it
 * declared, and each declared need (and key) is referenced. The delivery (ExternalSecret +
 * Vault policy) is made from the declarations, so a reference outside them would be a Secret
 * nobody delivers, and a declaration nothing reads a secret stored for nothing.
 */
import { describe, expect, it } from 'vitest';
import type { N8n } from '../charts/n8n';
import type { Rabbitmq } from '../charts/rabbitmq';
import type { Platform } from '../lib/model/platform';
import type { SynthesizedEnvironment } from '../lib/output/synthesize';
import { platformObject, manifestsOf, synthesizePlatforms, toYamlText } from './support';

/** A reference to a Secret: by name alone (the consumer reads all of it), or to one key. */
interface SecretReference {
  readonly name: string;
  readonly key?: string;
  readonly where: string;
}

/** Where the prometheus-operator mounts the Secrets of `alertmanagerSpec.secrets`. */
const ALERTMANAGER_SECRET_FILE = /^\/etc\/alertmanager\/secrets\/([^/]+)\/([^/]+)$/;

/** Walks any manifest or Helm values, collecting every way our output names a Secret. */
function secretReferences(value: unknown, where: string, found: SecretReference[]): void {
  if (typeof value === 'string') {
    const file = ALERTMANAGER_SECRET_FILE.exec(value);
    if (file) found.push({ name: file[1], key: file[2], where });
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => secretReferences(item, `${where}[${i}]`, found));
    return;
  }
  if (!value || typeof value !== 'object') return;
  const object = value as Record<string, any>;
  for (const [field, item] of Object.entries(object)) {
    const at = `${where}.${field}`;
    // secretKeyRef (env), apiTokenSecretRef, privateKeySecretRef ... (custom resources), secretRef (envFrom).
    if (/secret(Key)?Ref$/i.test(field) && item && typeof item.name === 'string') found.push({ name: item.name, key: item.key, where: at });
    // A Secret volume: the keys it projects, or all of it.
    if (field === 'secret' && item && typeof item.secretName === 'string') {
      const items: { key: string }[] = item.items ?? [];
      if (items.length === 0) found.push({ name: item.secretName, where: at });
      for (const { key } of items) found.push({ name: item.secretName, key, where: at });
    }
    // Helm values naming a Secret: Grafana's admin (with its keys), Longhorn's backup target.
    if (field === 'existingSecret' && typeof item === 'string' && item !== '') {
      const keys = [object.userKey, object.passwordKey].filter((k): k is string => typeof k === 'string');
      if (keys.length === 0) found.push({ name: item, where: at });
      for (const key of keys) found.push({ name: item, key, where: at });
    }
    if (field === 'backupTargetCredentialSecret' && typeof item === 'string') found.push({ name: item, where: at });
    // SeaweedFS' S3 identities file (the chart mounts the whole Secret).
    if (field === 'existingConfigSecret' && typeof item === 'string' && item !== '') found.push({ name: item, where: at });
    // The Secrets the operator mounts into Alertmanager (their keys are read as files).
    if (field === 'alertmanagerSpec' && Array.isArray(item?.secrets)) for (const name of item.secrets) found.push({ name, where: `${at}.secrets` });
    secretReferences(item, at, found);
  }
}

/**
 * Secret references of each service: its own manifests and the Helm values of its Application.
 * A manifest one service places in another's namespace (e.g. the verification's replay of a
 * checkpoint) reads that namespace's Secrets: it counts for the service owning the namespace.
 */
function referencesByService(env: SynthesizedEnvironment): Map<string, SecretReference[]> {
  const byService = new Map<string, SecretReference[]>();
  const ownerOf = new Map(env.services.map((s) => [s.namespace, s.name]));
  const add = (service: string, value: unknown, where: string) => {
    const found = byService.get(service) ?? [];
    secretReferences(value, where, found);
    byService.set(service, found);
  };
  for (const { path, manifest } of manifestsOf(env)) {
    const [folder] = path.split('/');
    if (folder === 'apps' && manifest.kind === 'Application') {
      for (const source of manifest.spec.sources ?? [manifest.spec.source]) {
        if (source.helm) add(manifest.metadata.name, source.helm.valuesObject, `${path} helm values`);
      }
    } else if (folder !== 'apps' && folder !== 'bootstrap') {
      add(ownerOf.get(manifest.metadata.namespace ?? '') ?? folder, manifest, path);
    }
  }
  return byService;
}

/** Secrets operators generate in the cluster: referenced, never declared (there is nothing to deliver). */
function generatedSecrets(platform: Platform): Map<string, ReadonlySet<string>> {
  const rabbitmq = platform.services.find((s) => s.serviceName === 'rabbitmq') as Rabbitmq | undefined;
  const n8n = platform.services.find((s) => s.serviceName === 'n8n') as N8n | undefined;
  return new Map<string, ReadonlySet<string>>([
    // The configurator's token: the operator creates it once (README runbook); it cannot come from Vault itself.
    ['vault', new Set(['vault-configurator'])],
    // The credentials the topology operator generates for n8n's RabbitMQ user, next to n8n.
    ['n8n', new Set(n8n?.rabbitmqConnection ? [n8n.rabbitmqConnection.credentialsSecret] : [])],
    // The ACME account keys cert-manager creates when it registers with Let's Encrypt.
    ['cert-manager', new Set(['letsencrypt-staging-account-key', 'letsencrypt-production-account-key'])],
    // The administrator the RabbitMQ Cluster Operator generates.
    ['rabbitmq', new Set(rabbitmq ? [rabbitmq.defaultUserSecret] : [])],
    // The webhook certificates cert-manager issues for the RabbitMQ operators (their CA is checked).
    ['rabbitmq-operators', new Set(['cluster-operator-webhook-server-cert', 'webhook-server-cert'])],
  ]);
}

/** The example with every kind of credential switched on: S3 stores, backups, every receiver type, an app's secretEnv. */
function everyCredential(): string {
  const config = platformObject();
  config.apps['node-red'].secretEnv = ['NODE_RED_CREDENTIAL_SECRET'];
  config.services.monitoring.alertmanager.receivers['homelab-webhook'].discord = {};
  const prod = config.environments.prod.services;
  prod.loki.storage = { volume: null, s3: { endpoint: 'https://s3.example.net', buckets: { chunks: 'loki-chunks', ruler: 'loki-ruler' } } };
  prod.triton.modelRepository = { volume: null, s3: { url: 's3://models/triton' } };
  config.environments.staging.backup = { target: 's3://homelab-backups@eu-central-1/staging/', endpoint: 'https://s3.eu-central-1.example.net/' };
  return toYamlText(config);
}

const builds = synthesizePlatforms(everyCredential());

describe.each(builds.map(({ platform, env }) => [env.environment, platform, env] as const))('secret needs in %s', (_, platform, env) => {
  const references = referencesByService(env);
  const generated = generatedSecrets(platform);

  it.each(platform.services.map((s) => [s.serviceName, s] as const))('%s references exactly the Secrets it declares, with their keys', (name, service) => {
    const own = (references.get(name) ?? []).filter((r) => !generated.get(name)?.has(r.name));
    const declared = new Map(service.secretNeeds.map((need) => [need.name, need]));
    const undeclared = own.filter((r) => !declared.get(r.name) || (r.key !== undefined && !declared.get(r.name)!.keys.includes(r.key)));
    expect(undeclared.map((r) => `${r.where}: ${r.name}${r.key ? `/${r.key}` : ''}`)).toEqual([]);
    // The probe only proves delivery: its ExternalSecret's Ready condition is checked, no pod reads it.
    for (const need of service.secretNeeds.filter((n) => n.name !== 'external-secrets-probe')) {
      const uses = own.filter((r) => r.name === need.name);
      expect(uses.length, `${need.name} is declared but never referenced`).toBeGreaterThan(0);
      // Read key by key, every declared key must be read; read whole (Longhorn), all of them are.
      const keys = new Set(uses.flatMap((r) => (r.key === undefined ? [] : [r.key])));
      if (keys.size > 0) expect([...keys].sort(), need.name).toEqual(need.keys);
      expect(need.namespace).toBe(service.namespaceName);
    }
  });

  it('finds what it is meant to find', () => {
    // The object store's probe keys and its identities file (it has no consumer in the fixture).
    const OBJECT_STORE = ['seaweedfs/seaweedfs-probe-credentials', 'seaweedfs/seaweedfs-s3-identities'];
    const expected: Record<string, string[]> = {
      dev: ['cert-manager/cloudflare-api-token', 'external-dns/cloudflare-api-token', 'external-secrets/external-secrets-probe', 'monitoring/alertmanager-receivers', 'monitoring/grafana-admin', 'n8n/n8n-encryption-key', 'node-red/node-red-env', ...OBJECT_STORE],
      staging: [
        'cert-manager/cloudflare-api-token',
        'external-dns/cloudflare-api-token',
        'external-secrets/external-secrets-probe',
        'longhorn-system/longhorn-backup-credentials',
        'monitoring/alertmanager-receivers',
        'monitoring/grafana-admin',
        'n8n/n8n-encryption-key',
        'node-red/node-red-env',
        ...OBJECT_STORE,
      ],
      prod: [
        'cert-manager/cloudflare-api-token',
        'cloudflared/cloudflared-credentials',
        'external-dns/cloudflare-api-token',
        'external-secrets/external-secrets-probe',
        'loki/loki-s3-credentials',
        'longhorn-system/longhorn-backup-credentials',
        'monitoring/alertmanager-receivers',
        'monitoring/grafana-admin',
        'n8n/n8n-encryption-key',
        'node-red/node-red-env',
        ...OBJECT_STORE,
        'triton/triton-s3-credentials',
      ],
    };
    const needs = platform.services.flatMap((s) => s.secretNeeds.map((n) => `${n.namespace}/${n.name}`)).sort();
    expect(needs).toEqual(expected[env.environment]);
    // Every reference kind the walker knows occurs, so none of them silently stopped matching.
    const where = [...references.values()].flat().map((r) => r.where);
    for (const kind of [/secretKeyRef$/, /apiTokenSecretRef$/, /\.secret$/, /existingSecret$/, /existingConfigSecret$/, /alertmanagerSpec\.secrets$/, /_file$/]) {
      expect(where.some((w) => kind.test(w)), String(kind)).toBe(true);
    }
    expect(where.some((w) => w.endsWith('backupTargetCredentialSecret'))).toBe(env.environment !== 'dev');
  });
});

describe('Longhorn backup credentials', () => {
  const longhorn = (environment: string) => builds.find((b) => b.env.environment === environment)!.platform.services.find((s) => s.serviceName === 'longhorn')!;

  it("are rendered from the environment's one copy of the target's keys, with the target's endpoint (empty for AWS)", () => {
    for (const [environment, endpoint] of [['prod', ''], ['staging', 'https://s3.eu-central-1.example.net']] as const) {
      const [need] = longhorn(environment).secretNeeds;
      expect(need.keys).toEqual(['AWS_ACCESS_KEY_ID', 'AWS_ENDPOINTS', 'AWS_SECRET_ACCESS_KEY']);
      expect(need.neededToStart).toBe(false);
      expect(need.template!.inputs.map((input) => `${input.from.service}/${input.from.name}:${input.key}`)).toEqual([
        'backup/credentials:AWS_ACCESS_KEY_ID',
        'backup/credentials:AWS_SECRET_ACCESS_KEY',
      ]);
      expect(need.template!.data.AWS_ENDPOINTS).toBe(endpoint);
    }
  });

  it('are not declared without a backup target', () => {
    expect(longhorn('dev').secretNeeds).toEqual([]);
  });
});
