import { App } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { helmValuesErrors } from '../lib/tools/validate/helm-values';

import { formatSummary } from '../lib/output/summary';
import { SynthesizedEnvironment, synthesizePlatform } from '../lib/output/synthesize';
import { ManifestValidator } from '../lib/tools/validate/manifest-validator';
import { answerAsApiServer, buildPlatform, platformObject, FAKE_SLEEP, Manifest, manifestsOf, parseText, runWithFakeCommands, synthesizePlatformFixture, toYamlText } from './support';

/** Needs declared on top of the example, as services will once they are migrated to needSecret. */
const TEST_NEEDS: Readonly<Record<string, { name: string; keys: string[]; neededToStart?: boolean }>> = {
  // Vault keeps its volumes on Longhorn: Longhorn cannot wait for External Secrets (nor need the Secret to start).
  longhorn: { name: 'test-backup-credentials', keys: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'], neededToStart: false },
  loki: { name: 'test-s3-credentials', keys: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] },
  'node-red': { name: 'test-node-red', keys: ['credential-secret'] },
};

/** Prod of the example (or a variant), with TEST_NEEDS declared before synth. */
function synthWithNeeds(mutate?: (config: Record<string, any>) => void, envName = 'prod'): SynthesizedEnvironment {
  const config = platformObject();
  mutate?.(config);
  const env = parseText(toYamlText(config), 'homelab.yaml').environments.get(envName)!;
  const app = new App();
  const platform = buildPlatform(app, envName, env);
  for (const [service, need] of Object.entries(TEST_NEEDS)) {
    // needSecret is protected: only the service's own construct declares its needs.
    (platform.services.find((s) => s.serviceName === service) as any)?.needSecret(need.name, need.keys, `test need of ${service}`, { neededToStart: need.neededToStart });
  }
  return synthesizePlatform(app, platform);
}

const prod = synthWithNeeds();
const docs = manifestsOf(prod);
const ofKind = (kind: string) => docs.filter(({ manifest }) => manifest.kind === kind);
const folderOf = (path: string) => path.split('/')[0];

/** The configurator's roles table and policies. */
function vaultConfiguration(env: SynthesizedEnvironment) {
  const data: Record<string, string> = manifestsOf(env).find(({ path }) => path === 'vault/configmap-vault-configurator.yaml')!.manifest.data!;
  const roles = data.roles
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' '))
    .map(([role, serviceAccount, namespace]) => ({ role, serviceAccount, namespace, policy: data[`${role}.hcl`] }));
  return { data, roles };
}

/** Paths a policy grants, with their capabilities. */
function policyRules(hcl: string): { path: string; capabilities: string[] }[] {
  return [...hcl.matchAll(/path "([^"]+)" \{\s*capabilities = \[([^\]]*)\]\s*\}/g)].map((m) => ({
    path: m[1],
    capabilities: m[2].split(',').map((c) => c.trim().replace(/"/g, '')),
  }));
}

const globMatches = (glob: string, path: string) => new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(path);

describe('External Secrets chart', () => {
  const application = docs.find(({ path }) => path === 'apps/application-external-secrets.yaml')!.manifest;

  it('installs the pinned chart with its CRDs, ignoring the webhook CA the cert-controller writes', () => {
    const chart = application.spec.sources.find((s: any) => s.chart);
    expect(chart).toMatchObject({ repoURL: 'https://charts.external-secrets.io', chart: 'external-secrets', targetRevision: '2.9.0' });
    expect(helmValuesErrors('external-secrets', chart.helm.valuesObject)).toEqual([]);
    expect(chart.helm.valuesObject.installCRDs).toBe(true);
    expect(application.spec.ignoreDifferences).toContainEqual({
      group: 'admissionregistration.k8s.io',
      kind: 'ValidatingWebhookConfiguration',
      jqPathExpressions: ['.webhooks[]?.clientConfig.caBundle'],
    });
  });

  it('syncs after Vault, which syncs after Longhorn', () => {
    const byName = new Map(prod.services.map((s) => [s.name, s]));
    expect(byName.get('external-secrets')!.dependsOn).toContain('vault');
    expect(byName.get('vault')!.dependsOn).toContain('longhorn');
    expect(byName.get('external-secrets')!.wave).toBeGreaterThan(byName.get('vault')!.wave);
    expect(byName.get('vault')!.wave).toBeGreaterThan(byName.get('longhorn')!.wave);
  });
});

describe('secret delivery', () => {
  const needs = prod.secrets;

  it('emits valid SecretStores and ExternalSecrets', () => {
    for (const { path, manifest } of [...ofKind('SecretStore'), ...ofKind('ExternalSecret')]) {
      expect(ManifestValidator.shared().validate(manifest), path).toEqual([]);
    }
  });

  it('gives every need exactly one ExternalSecret, owning a Secret of that name with one entry per key', () => {
    // The services' own declarations, the probe and the test needs.
    expect(needs.map((n) => `${n.namespace}/${n.name}`)).toEqual(
      expect.arrayContaining([
        'external-secrets/external-secrets-probe',
        'loki/test-s3-credentials',
        'longhorn-system/longhorn-backup-credentials',
        'longhorn-system/test-backup-credentials',
        'monitoring/grafana-admin',
        'n8n/n8n-encryption-key',
        'node-red/test-node-red',
      ]),
    );
    expect(ofKind('ExternalSecret')).toHaveLength(needs.length);
    for (const need of needs) {
      const matching = ofKind('ExternalSecret').filter(({ manifest }) => manifest.metadata.namespace === need.namespace && manifest.metadata.name === need.name);
      expect(matching, need.name).toHaveLength(1);
      const spec = matching[0].manifest.spec;
      if (need.template) {
        // Rendered from other values: each template variable is one key of the Secret it names.
        expect(spec.target).toEqual({ name: need.name, creationPolicy: 'Owner', template: { engineVersion: 'v2', data: need.template.data } });
        expect(spec.data).toEqual(need.template.inputs.map((i) => ({ secretKey: i.variable, remoteRef: { key: `${i.from.service}/${i.from.name}`, property: i.key } })));
        continue;
      }
      expect(spec.target).toEqual({ name: need.name, creationPolicy: 'Owner' });
      expect(spec.data).toEqual(need.keys.map((key) => ({ secretKey: key, remoteRef: { key: `${need.service}/${need.name}`, property: key } })));
      expect(need.source).toBe(`Vault homelab/${need.service}/${need.name}`);
    }
  });

  it('reads every ExternalSecret through a store bound to the Vault role whose policy covers only its own service', () => {
    const { roles } = vaultConfiguration(prod);
    const services = new Map(needs.map((n) => [`${n.namespace}/${n.name}`, n.service]));
    for (const { path, manifest } of ofKind('ExternalSecret')) {
      const namespace = manifest.metadata.namespace!;
      const service = services.get(`${namespace}/${manifest.metadata.name}`)!;
      const store = ofKind('SecretStore').find(
        ({ manifest: s }) => s.metadata.namespace === namespace && s.metadata.name === manifest.spec.secretStoreRef.name,
      )?.manifest as Manifest;
      expect(store, path).toBeDefined();
      expect(manifest.spec.secretStoreRef.kind).toBe('SecretStore');
      const vault = store.spec.provider.vault;
      expect(vault).toMatchObject({ server: 'http://vault-active.vault.svc:8200', path: 'homelab', version: 'v2' });
      const { role, serviceAccountRef } = vault.auth.kubernetes;
      // The Vault role is bound to exactly the store's ServiceAccount in the consumer's namespace.
      const grant = roles.find((r) => r.role === role);
      expect(grant, path).toEqual(expect.objectContaining({ serviceAccount: serviceAccountRef.name, namespace }));
      expect(ofKind('ServiceAccount').some(({ manifest: a }) => a.metadata.name === serviceAccountRef.name && a.metadata.namespace === namespace), path).toBe(true);
      // Its policy reads that service's subtree and the exact values its templates are rendered
      // from, nothing else, and covers every key read.
      const inputs = needs.filter((n) => n.service === service).flatMap((n) => n.template?.inputs ?? []).filter((i) => i.from.service !== service);
      const readable = [`homelab/data/${service}/*`, ...new Set(inputs.map((i) => `homelab/data/${i.from.service}/${i.from.name}`))].sort((a, b) => (a === `homelab/data/${service}/*` ? -1 : b === `homelab/data/${service}/*` ? 1 : a.localeCompare(b)));
      expect(policyRules(grant!.policy)).toEqual(readable.map((p) => ({ path: p, capabilities: ['read'] })));
      for (const entry of manifest.spec.data) expect(readable.some((p) => globMatches(p, `homelab/data/${entry.remoteRef.key}`)), path).toBe(true);
    }
  });

  it('gives each consuming service its own role, and no role to anything else', () => {
    const { roles } = vaultConfiguration(prod);
    const consumers = [...new Set(needs.map((n) => n.service))].sort();
    expect(roles.map((r) => r.role)).toEqual(consumers.map((s) => `homelab-${s}`));
    expect(new Set(roles.map((r) => r.serviceAccount)).size).toBe(roles.length);
  });

  it('renders the stores of services Vault depends on, or needing none of their Secrets to start, into the external-secrets folder, the others into their own', () => {
    const hosts = new Map(ofKind('ExternalSecret').map(({ path, manifest }) => [`${manifest.metadata.namespace}/${manifest.metadata.name}`, folderOf(path)]));
    // Longhorn's (Vault's volumes), cert-manager's (read when issuing) and the probe in the external-secrets folder; every other in its consumer's.
    const ownFolder = new Map(prod.services.map((s) => [s.namespace, s.name]));
    for (const [secret, folder] of hosts) {
      const namespace = secret.split('/')[0];
      expect(folder, secret).toBe(['longhorn-system', 'cert-manager', 'external-secrets'].includes(namespace) ? 'external-secrets' : ownFolder.get(namespace));
    }
    expect(hosts.get('longhorn-system/longhorn-backup-credentials')).toBe('external-secrets');
    expect(hosts.get('node-red/test-node-red')).toBe('node-red');
    // The SecretStore and the ServiceAccount it logs in to Vault as (not Longhorn's other accounts).
    const stores = ofKind('SecretStore').filter(({ manifest }) => manifest.metadata.namespace === 'longhorn-system');
    const storeAccounts = new Set(stores.map(({ manifest }) => manifest.spec.provider.vault.auth.kubernetes.serviceAccountRef.name));
    const inLonghornNamespace = [...stores, ...ofKind('ServiceAccount').filter(({ manifest }) => manifest.metadata.namespace === 'longhorn-system' && storeAccounts.has(manifest.metadata.name))];
    expect(inLonghornNamespace.map(({ path }) => path).sort()).toEqual([
      'external-secrets/secretstore-longhorn-system-longhorn-vault.yaml',
      'external-secrets/serviceaccount-longhorn-system-longhorn-secrets.yaml',
    ]);
    const byName = new Map(prod.services.map((s) => [s.name, s]));
    // No cycle: Longhorn still syncs first, the others wait for External Secrets through the CRD edge.
    expect(byName.get('longhorn')!.dependsOn).not.toContain('external-secrets');
    expect(byName.get('node-red')!.dependsOn).toContain('external-secrets');
    expect(byName.get('loki')!.dependsOn).toContain('external-secrets');
    expect(byName.get('node-red')!.wave).toBeGreaterThan(byName.get('external-secrets')!.wave);
  });

  it('in sequential waves, where the foundations come before the data mesh, hosts only the storage layer\'s needs in the external-secrets folder', () => {
    const sequential = synthWithNeeds((c) => (c.waves = 'sequential'));
    const hosts = Object.fromEntries(ofKindIn(sequential, 'ExternalSecret').map(({ path, manifest }) => [manifest.metadata.name, folderOf(path)]));
    // Loki (observability) and Node-RED (automation) sync after External Secrets; Longhorn (storage) before it.
    expect(hosts).toMatchObject({ 'test-s3-credentials': 'loki', 'test-node-red': 'node-red', 'test-backup-credentials': 'external-secrets' });
    expect(sequential.warnings).toEqual([]);
  });

  it('without External Secrets emits no delivery and lists every need as made by hand', () => {
    // The object store needs both: off with them.
    const noEso = synthWithNeeds((c) => {
      c.services.externalSecrets.enabled = false;
      c.services.seaweedfs.enabled = false;
    });
    expect(ofKindIn(noEso, 'ExternalSecret')).toEqual([]);
    expect(ofKindIn(noEso, 'SecretStore')).toEqual([]);
    expect(noEso.secrets.every((need) => need.source === undefined)).toBe(true);
    // Vault still gets its engine and auth method, and no role.
    expect(vaultConfiguration(noEso).roles).toEqual([]);
    const noVault = synthWithNeeds((c) => {
      c.services.externalSecrets.enabled = false;
      c.services.vault.enabled = false;
      c.services.seaweedfs.enabled = false;
    });
    expect(noVault.files.has('vault/configmap-vault-configurator.yaml')).toBe(false);
    expect(noVault.secrets.map((n) => n.name)).toEqual(expect.arrayContaining(['test-backup-credentials', 'test-node-red', 'test-s3-credentials']));
  });

  it('lists every need in the synth summary with its keys, source and purpose', () => {
    const summary = formatSummary([prod], 'k8s', 0);
    expect(summary).toContain('    longhorn-system/test-backup-credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; Vault homelab/longhorn/test-backup-credentials; test need of longhorn');
    const byHand = synthWithNeeds((c) => {
      c.services.externalSecrets.enabled = false;
      c.services.seaweedfs.enabled = false;
    });
    expect(formatSummary([byHand], 'k8s', 0)).toContain('    node-red/test-node-red: credential-secret; create by hand; test need of node-red');
  });
});

describe('External Secrets checkpoint', () => {
  const [dev] = synthesizePlatformFixture();
  const job = manifestsOf(dev).find(({ path }) => path === 'external-secrets/job-external-secrets-checkpoint.yaml')!.manifest;
  const curl = [
    'for url; do :; done',
    'case "$url" in',
    '  */apis/external-secrets.io/v1/namespaces/external-secrets/externalsecrets/external-secrets-probe) ;;',
    '  *) echo "unexpected $url" >&2; exit 22 ;;',
    'esac',
    answerAsApiServer(`printf '{"status":{"conditions":[{"lastTransitionTime":"x","message":"m","reason":"r","status":"%s","type":"Ready"}]}}' "$READY"`),
  ].join('\n');
  const run = (ready: string) =>
    runWithFakeCommands(job.spec.template.spec.containers[0], { curl, sleep: FAKE_SLEEP }, { env: { READY: ready, CONDITION_CHECKS: '2' } });

  it('passes once the probe ExternalSecret is Ready, and fails while it is not', () => {
    expect(run('True').status).toBe(0);
    const failed = run('False');
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toContain('externalsecrets/external-secrets-probe: condition Ready is not True');
  });

  it('reads only the probe', () => {
    const role = manifestsOf(dev).find(({ path }) => path === 'external-secrets/clusterrole-external-secrets-checkpoint.yaml')!.manifest;
    expect(role.rules).toEqual([{ apiGroups: ['external-secrets.io'], resources: ['externalsecrets'], verbs: ['get'], resourceNames: ['external-secrets-probe'] }]);
  });
});

function ofKindIn(env: SynthesizedEnvironment, kind: string) {
  return manifestsOf(env).filter(({ manifest }) => manifest.kind === kind);
}

