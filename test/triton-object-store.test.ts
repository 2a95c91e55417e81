/**
 * Triton's model repository in a bucket of the object store (`modelRepository.objectStore`), on
 * the small fixture with SeaweedFS and the services it needs: the config checks, the bucket and
 * identity the store makes for it, the server's arguments and keys, the way to the store, the
 * waves, and the smoke model that stays beside the bucket for the checkpoint.
 */
import { describe, expect, it } from 'vitest';
import { chartValues, configProblems, fixtureObject, Manifest, manifestAt, manifestsOf, synthesizeText, toYamlText } from './support';

/** The small fixture with the object store and Triton's models in it, and any change. */
function configText(change: (config: Record<string, any>) => void = () => {}): string {
  const config = fixtureObject('small');
  Object.assign(config.services, {
    vault: { enabled: true },
    externalSecrets: { enabled: true },
    seaweedfs: { enabled: true, storageSize: '20Gi' },
    triton: { enabled: true, modelRepository: { objectStore: {} }, resources: { requests: { cpu: '100m', memory: '1Gi' }, limits: { cpu: '1', memory: '4Gi' } }, shmSize: '256Mi' },
  });
  change(config);
  return toYamlText(config);
}

const [lab] = synthesizeText(configText());
const manifests = manifestsOf(lab);
function find(path: string): Manifest {
  return manifestAt(lab, path);
}
const waveOf = (service: string) => Number(find(`apps/application-${service}.yaml`).metadata.annotations!['argocd.argoproj.io/sync-wave']);
const server = find('triton/deployment-triton.yaml').spec.template.spec;
const container = server.containers[0];

describe('modelRepository.objectStore', () => {
  it('is valid with the object store, and then also with more than one replica', () => {
    expect(configProblems(configText())).toBe('');
    expect(configProblems(configText((c) => (c.services.triton.replicas = 2)))).toBe('');
  });

  it('is refused while the object store is disabled, at its path', () => {
    const found = configProblems(configText((c) => (c.services.seaweedfs.enabled = false)));
    expect(found).toContain('services.triton.modelRepository.objectStore');
  });

  it('is one of the three sources, with a bucket name S3 takes', () => {
    expect(configProblems(configText((c) => (c.services.triton.modelRepository.volume = { size: '10Gi' })))).toContain(
      'services.triton.modelRepository: expected exactly one of volume, s3 or objectStore',
    );
    expect(configProblems(configText((c) => (c.services.triton.modelRepository.objectStore = { bucket: 'Models' })))).toContain('services.triton.modelRepository.objectStore.bucket: expected an S3 bucket name');
  });

  it("refuses a bucket another consumer takes, at the path of the second one's setting", () => {
    const text = configText((c) => {
      c.services.loki = { enabled: true, storage: { objectStore: {} } };
      c.services.triton.modelRepository.objectStore = { bucket: 'loki-chunks' };
    });
    expect(configProblems(text)).toBe('');
    expect(() => synthesizeText(text)).toThrow(/services\.loki\.storage\.objectStore\.buckets\.chunks: bucket loki-chunks is taken by triton: expected a bucket of loki's own/);
  });
});

describe('the model repository in the store', () => {
  it('is the whole bucket, at the store\'s in-cluster endpoint in Triton\'s form, beside the smoke model', () => {
    const repositories = container.args.filter((arg: string) => arg.startsWith('--model-repository='));
    expect(repositories).toEqual(['--model-repository=s3://http://seaweedfs-all-in-one.seaweedfs.svc:8333/triton-models', '--model-repository=/smoke-models']);
    // No models volume: the smoke model's files are the only mounts of a repository.
    expect(manifests.map((m) => m.path)).not.toContain('triton/persistentvolumeclaim-triton-models.yaml');
    expect(container.volumeMounts.filter((m: { mountPath: string }) => m.mountPath.startsWith('/models'))).toEqual([]);
  });

  it("reads its keys from its own generated identity, and signs for the store's region", () => {
    const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value ?? e.valueFrom.secretKeyRef]));
    expect(env.AWS_ACCESS_KEY_ID).toEqual({ name: 'triton-bucket-credentials', key: 'AWS_ACCESS_KEY_ID' });
    expect(env.AWS_SECRET_ACCESS_KEY).toEqual({ name: 'triton-bucket-credentials', key: 'AWS_SECRET_ACCESS_KEY' });
    expect(env.AWS_DEFAULT_REGION).toBe('us-east-1');
    expect(find('vault/configmap-vault-configurator.yaml').data!.generated.split('\n')).toContain('triton/triton-bucket-credentials AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY');
  });

  it('gets its bucket made by the store, and an identity allowed on it alone', () => {
    const values = chartValues(lab, 'seaweedfs');
    expect(values.allInOne.s3.createBuckets.map((b: any) => b.name)).toContain('triton-models');
    const identities = find('seaweedfs/externalsecret-seaweedfs-s3-identities.yaml');
    const text = (identities.spec.target.template.data.seaweedfs_s3_config as string).replace(/\{\{ index \. "([^"]+)" \| toJson \}\}/g, (_, v) => JSON.stringify(v));
    const triton = (JSON.parse(text) as { identities: { name: string; actions: string[] }[] }).identities.find((i) => i.name === 'triton')!;
    expect(new Set(triton.actions.map((a) => a.split(':')[1]))).toEqual(new Set(['triton-models']));
  });

  it('may reach the store on its S3 port, and syncs after it', () => {
    const egress = find('triton/networkpolicy-egress-seaweedfs-8333.yaml');
    expect(egress.spec.egress[0].ports).toEqual([{ port: 8333, protocol: 'TCP' }]);
    expect(egress.spec.egress[0].to[0].namespaceSelector.matchLabels).toEqual({ 'kubernetes.io/metadata.name': 'seaweedfs' });
    expect(waveOf('triton')).toBeGreaterThan(waveOf('seaweedfs'));
  });

  it('is proven by the verification with Triton\'s own keys, and the checkpoint still runs the smoke model', () => {
    const check = find('verification/job-triton-triton-buckets.yaml');
    expect(check.metadata.namespace).toBe('triton');
    expect(JSON.stringify(check.spec.template.spec.containers[0].env)).toContain('triton-bucket-credentials');
    expect(find('triton/job-triton-checkpoint.yaml').spec.template.spec.containers[0].command[2]).toContain('/v2/models/homelab_smoke/infer');
  });
});
