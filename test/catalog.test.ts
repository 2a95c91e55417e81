/**
 * The catalog: a service defined only in a test fixture (test/fixtures/whoami.ts), added to a
 * catalog with one line, is configured, checked, built, ordered into a wave and checkpointed
 * like a built-in one — without any other file knowing it.
 */
import { describe, expect, it } from 'vitest';
import { BUILTIN_CATALOG } from '../charts/catalog';
import { defineCatalog, settingsIn } from '../lib/model/catalog';
import { whoamiEntry } from './fixtures/whoami';
import { fixtureObject, fixtureText, manifestsOf, parseText, synthesizeText, toYamlText } from './support';

const CATALOG = defineCatalog([...BUILTIN_CATALOG.entries, whoamiEntry]);
const SMALL = fixtureText('small');

/** The small fixture with changes to its plain object. */
function small(change: (config: Record<string, any>) => void): string {
  const config = fixtureObject('small');
  change(config);
  return toYamlText(config);
}

const wave = (manifest: { metadata: { annotations?: Record<string, string> } }) => Number(manifest.metadata.annotations!['argocd.argoproj.io/sync-wave']);

describe('a service added to the catalog in one line', () => {
  it('is configured at its key, every default filled in by its schema', () => {
    const env = parseText(small((c) => (c.services.whoami = { enabled: true })), 'small.yaml', CATALOG).environments.get('lab')!;
    expect(settingsIn(env, whoamiEntry)).toEqual({ enabled: true, replicas: 1, subdomain: 'whoami' });
    // Disabled by its own default where the config does not mention it.
    expect(settingsIn(parseText(SMALL, 'small.yaml', CATALOG).environments.get('lab')!, whoamiEntry).enabled).toBe(false);
  });

  it('is a known key for typos, and an unknown one for a catalog without it', () => {
    const typo = small((c) => (c.services.whoamii = { enabled: true }));
    expect(() => parseText(typo, 'small.yaml', CATALOG)).toThrow(/services\.whoamii: unknown key; expected one of .*\bwhoami\b/);
    const known = small((c) => (c.services.whoami = { enabled: true }));
    expect(() => parseText(known, 'small.yaml', BUILTIN_CATALOG)).toThrow('small.yaml: services.whoami: unknown key');
  });

  it('reports what it requires, its subdomain and its name at their paths', () => {
    const text = small((c) => {
      c.services.longhorn = { enabled: false };
      c.services.whoami = { enabled: true, volume: { size: '1Gi' }, subdomain: 'argocd' };
      c.apps = { whoami: { image: 'docker.io/traefik/whoami:v1.10.3', probes: { none: 'a test app' }, resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '32Mi' } } } };
    });
    let message = '';
    try {
      parseText(text, 'small.yaml', CATALOG);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message.split('\n').sort()).toEqual(
      [
        'small.yaml: services.whoami.volume: expected services.longhorn.enabled: its volume is a Longhorn volume',
        'small.yaml: services.whoami.subdomain: expected another subdomain: "argocd" is already used by services.argocd.subdomain',
        'small.yaml: apps.whoami: expected another name: "whoami" is taken by a built-in service, its namespace, an output folder or the backup target\'s keys',
      ].sort(),
    );
  });

  it('is built, ordered after what it requires, and checkpointed like any service', () => {
    const [lab] = synthesizeText(small((c) => (c.services.whoami = { enabled: true, volume: { size: '1Gi' } })), CATALOG);
    const manifests = manifestsOf(lab);
    const find = (path: string) => manifests.find((m) => m.path === path)!.manifest;
    expect(find('whoami/deployment-whoami.yaml').spec.template.spec.containers[0].image).toBe('docker.io/traefik/whoami:v1.10.3');
    const application = find('apps/application-whoami.yaml');
    expect(application.spec.source.path).toBe('k8s/lab/whoami');
    expect(wave(application)).toBeGreaterThan(wave(find('apps/application-longhorn.yaml')));
    expect(lab.services.find((s) => s.name === 'whoami')).toMatchObject({ layer: 'automation', namespace: 'whoami', dependsOn: ['longhorn'] });
    // Its checkpoint after every sync, and again in the final verification.
    const checkpoint = find('whoami/job-whoami-checkpoint.yaml');
    expect(checkpoint.metadata.annotations!['argocd.argoproj.io/hook']).toBe('PostSync');
    expect(find('verification/job-whoami-whoami-e2e.yaml').spec.template.spec.containers[0].command).toEqual(checkpoint.spec.template.spec.containers[0].command);
    // The core derives its NetworkPolicies and its capacity like anyone's.
    expect(manifests.filter((m) => m.path.startsWith('whoami/networkpolicy-')).length).toBeGreaterThan(0);
    expect(lab.capacity.requested.cpuCores).toBeGreaterThan(0);
  });

  it('is absent where disabled, and nothing else changes', () => {
    const [withCatalog] = synthesizeText(SMALL, CATALOG);
    const [builtin] = synthesizeText(SMALL, BUILTIN_CATALOG);
    expect([...withCatalog.files.keys()].filter((path) => path.includes('whoami'))).toEqual([]);
    expect(withCatalog.files).toEqual(builtin.files);
  });
});

describe('a catalog', () => {
  it('refuses two entries on one key or one name', () => {
    expect(() => defineCatalog([whoamiEntry, { ...whoamiEntry, name: 'other', names: ['other'] }])).toThrow('catalog: other and whoami both read services.whoami');
    expect(() => defineCatalog([whoamiEntry, { ...whoamiEntry, name: 'other', settings: undefined }])).toThrow(
      'catalog: other takes the name "whoami", which whoami takes',
    );
    expect(() => defineCatalog([{ ...whoamiEntry, names: ['apps'] }])).toThrow('catalog: whoami takes the name "apps", which an output folder takes');
  });

  it('holds an entry to the names of the services it builds', () => {
    const text = small((c) => (c.services.whoami = { enabled: true }));
    // A service whose name the entry does not take: an app could take its folder.
    const untaken = defineCatalog([...BUILTIN_CATALOG.entries, { ...whoamiEntry, names: ['whoami-system'] }]);
    expect(() => synthesizeText(text, untaken)).toThrow('catalog: whoami built whoami, which its names do not take');
    // A name offered to depend on that no service has.
    const unbuilt = defineCatalog([...BUILTIN_CATALOG.entries, { ...whoamiEntry, serviceNames: () => ['whoami', 'whoami-operator'] }]);
    expect(() => synthesizeText(text, unbuilt)).toThrow('catalog: whoami offers whoami-operator to depend on, which it did not build');
  });

  it('builds an entry only from entries listed before it', () => {
    const [argocd, longhorn, ...rest] = BUILTIN_CATALOG.entries;
    expect([argocd.name, longhorn.name]).toEqual(['argocd', 'longhorn']);
    // whoami, which uses Longhorn for its volume, listed before it.
    const reordered = defineCatalog([argocd, whoamiEntry, longhorn, ...rest]);
    const text = small((c) => (c.services.whoami = { enabled: true, volume: { size: '1Gi' } }));
    expect(() => synthesizeText(text, reordered)).toThrow('catalog order: longhorn must come before whoami, which uses it');
  });
});
