/**
 * No plaintext secret in k8s/: no Secret carries data, and no env var, ConfigMap, Helm value
 * or script holds something that looks like a credential. A scanner over the whole output of
 * every environment, so a new service cannot slip one in.
 */
import { basename } from 'node:path';
import { CORE_SCHEMA, load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { HELM_VALUES_FILE } from '../lib/output/synthesize';
import { manifestsOf, synthesizePlatformFixture } from './support';

/**
 * Keys whose value would be a credential itself, in any naming style (`adminPassword`,
 * `API_TOKEN`, `client_secret`). Keys naming a Secret (`existingSecret`, `passwordSecret`)
 * or a file (`auth_password_file`) hold references and do not match.
 */
const CREDENTIAL_KEY = /(^secret|password|passwd|token|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key|client[_-]?secret|encryption[_-]?key)$/i;
/** Values that are credentials whatever their key. */
const CREDENTIAL_VALUE = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
  /\bAKIA[0-9A-Z]{16}\b/, // AWS access key id
  /\bgh[pousr]_[A-Za-z0-9]{36}\b/, // GitHub token
  /\bxox[baprs]-[A-Za-z0-9-]{10,}/, // Slack token
  /:\/\/[^/\s:@]+:[^/\s@]+@/, // URL with user:password
  /\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}/, // bcrypt hash (Argo CD admin password)
];

interface Finding {
  readonly where: string;
  readonly why: string;
}

/** Walks any JSON value, reporting string leaves under credential keys and credential-looking strings. */
function scan(value: unknown, where: string, findings: Finding[]): void {
  if (typeof value === 'string') {
    for (const pattern of CREDENTIAL_VALUE) if (pattern.test(value)) findings.push({ where, why: `matches ${pattern}` });
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => scan(item, `${where}[${i}]`, findings));
    return;
  }
  if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      // An ExternalSecret's `data[].secretKey` names a key of the Secret it writes, not a value.
      if (key === 'secretKey' && /\.spec\.data\[\d+\]$/.test(where)) continue;
      // An ExternalSecret's template that only refers to values fetched from the backend holds none itself.
      const fetchedOnly = /\.spec\.target\.template\.data$/.test(where) && typeof item === 'string' && /^(\{\{ index \. "\w+" \}\})+$/.test(item);
      if (fetchedOnly) continue;
      if (CREDENTIAL_KEY.test(key) && typeof item === 'string' && item.length > 0) {
        findings.push({ where: `${where}.${key}`, why: 'a credential key with a literal value' });
      }
      scan(item, `${where}.${key}`, findings);
    }
  }
}

/** Env vars named like credentials must come from a Secret (valueFrom), never `value`. */
function literalCredentialEnv(value: unknown, where: string, findings: Finding[]): void {
  if (Array.isArray(value)) value.forEach((item, i) => literalCredentialEnv(item, `${where}[${i}]`, findings));
  else if (value && typeof value === 'object') {
    const entry = value as Record<string, unknown>;
    if (typeof entry.name === 'string' && 'value' in entry && CREDENTIAL_KEY.test(entry.name)) {
      findings.push({ where: `${where} env ${entry.name}`, why: 'a credential env var with an inline value' });
    }
    for (const [key, item] of Object.entries(entry)) literalCredentialEnv(item, `${where}.${key}`, findings);
  }
}

const envs = synthesizePlatformFixture();

describe('no plaintext secret in the output', () => {
  it('has no Secret with data or stringData', () => {
    const secrets = envs.flatMap((env) => manifestsOf(env).filter(({ manifest }) => manifest.kind === 'Secret'));
    expect(secrets.filter(({ manifest }) => manifest.data || manifest.stringData).map((s) => s.path)).toEqual([]);
  });

  it('has no credential in env vars, ConfigMaps, Helm values or any other field', () => {
    const findings: Finding[] = [];
    for (const env of envs) {
      // The manifests as every test reads them (parsed once per worker), and the Helm values files beside them.
      const values = [...env.files].filter(([path]) => HELM_VALUES_FILE.test(basename(path))).map(([path, content]) => ({ path, manifest: load(content, { schema: CORE_SCHEMA }) }));
      const documents = [...manifestsOf(env), ...values];
      expect(new Set(documents.map((d) => d.path))).toEqual(new Set(env.files.keys()));
      for (const { path, manifest } of documents) {
        scan(manifest, `${env.environment}/${path}`, findings);
        literalCredentialEnv(manifest, `${env.environment}/${path}`, findings);
      }
    }
    expect(findings).toEqual([]);
  });

  it('catches what it is meant to catch', () => {
    const findings: Finding[] = [];
    scan(
      { config: { adminPassword: 'hunter2', existingSecret: 'grafana-admin', url: 'https://user:pa55@example.net/hook' }, key: '-----BEGIN RSA PRIVATE KEY-----' },
      'x',
      findings,
    );
    literalCredentialEnv({ env: [{ name: 'API_TOKEN', value: 'abc' }, { name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'pw' } } }] }, 'y', findings);
    expect(findings.map((f) => f.where)).toEqual(['x.config.adminPassword', 'x.config.url', 'x.key', 'y.env[0] env API_TOKEN']);
  });
});
