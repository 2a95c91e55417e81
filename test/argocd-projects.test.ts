/**
 * The Argo CD projects (docs/adr/0022), on services built by hand: what each project admits is
 * derived from the objects the services emit and the footprints their upstream sources declare.
 */
import { App } from 'cdk8s';
import { k8s } from 'cdk8s-plus-34';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../lib/model/checkpoint';
import { Layer } from '../lib/model/layers';
import type { Platform } from '../lib/model/platform';
import { HomelabService, ServiceSettings } from '../lib/model/service';
import type { KustomizeSource } from '../lib/model/sources';
import { synthesizePlatform } from '../lib/output/synthesize';
import { groupKind, mergeScopes } from '../lib/passes/project-scope';
import { emptyPlatform, Manifest, manifestsOf, parseText, platformObject, platformText, toYamlText, synthesizeEnvironment } from './support';

const OPERATOR: KustomizeSource = {
  repoURL: 'https://github.com/example/operator',
  revision: 'v1.0.0',
  path: 'config/installation',
  footprint: { clusterScoped: ['CustomResourceDefinition.apiextensions.k8s.io', 'PriorityClass.scheduling.k8s.io'], namespaces: ['operator-system'] },
};

/** A service with a checkpoint, and whatever `emit` adds. */
class TestService extends HomelabService {
  constructor(scope: Platform, name: string, settings: Partial<ServiceSettings>, emit: (self: TestService) => void = () => {}) {
    super(scope, name, {}, { layer: Layer.AUTOMATION, namespace: name, ...settings });
    new Checkpoint(this, 'checkpoint', { description: 'test', image: 'docker.io/library/busybox:1.37.0', script: 'true' });
    emit(this);
  }
}

/** A cluster reader: a ClusterRole. */
function readsCluster(self: TestService): void {
  new k8s.KubeClusterRole(self, 'reader', { metadata: { name: `${self.serviceName}-reader` }, rules: [] });
}

/** A Role in another service's namespace, as a checkpoint that reads there. */
const roleIn = (namespace: string) => (self: TestService) => {
  new k8s.KubeRole(self, `role-${namespace}`, { metadata: { name: `${self.serviceName}-reader`, namespace }, rules: [] });
};

function synthesize(build: (platform: Platform) => void, mode: 'automated' | 'manual' = 'automated') {
  const config = parseText(platformText(), 'homelab.yaml').environments.get('dev')!;
  const app = new App();
  const platform = emptyPlatform(app, 'dev', { ...config, sync: { ...config.sync, mode } });
  build(platform);
  const env = synthesizePlatform(app, platform);
  const one = (path: string): Manifest => manifestsOf(env).find((d) => d.path === path)!.manifest;
  return { env, one };
}

const kindsOf = (project: Manifest) => (project.spec.clusterResourceWhitelist ?? []).map((e: any) => (e.group ? `${e.kind}.${e.group}` : e.kind));
const namespacesOf = (project: Manifest) => project.spec.destinations.map((d: any) => d.namespace);

describe('the platform project', () => {
  it("admits the cluster-scoped kinds and namespaces of the services' own objects and of their upstream footprints, nothing else", () => {
    const { one } = synthesize((platform) => {
      new TestService(platform, 'reader', {}, readsCluster);
      new TestService(platform, 'checker', {}, roleIn('reader'));
      new TestService(platform, 'operator', { kustomizations: [OPERATOR] });
    });
    const project = one('apps/appproject-platform-dev.yaml');
    expect(kindsOf(project)).toEqual([
      'ClusterRole.rbac.authorization.k8s.io',
      'CustomResourceDefinition.apiextensions.k8s.io',
      // Every service emits its own Namespace.
      'Namespace',
      'PriorityClass.scheduling.k8s.io',
    ]);
    expect(namespacesOf(project)).toEqual(['checker', 'operator', 'operator-system', 'reader']);
    expect(project.spec.sourceRepos).toEqual(['https://github.com/example/homelab.git', 'https://github.com/example/operator']);
    expect(project.spec.namespaceResourceBlacklist.map((e: any) => e.kind)).toEqual(['Application', 'AppProject', 'ApplicationSet']);
  });

  it('does not admit Argo CD itself without a service deploying there', () => {
    const { one } = synthesize((platform) => new TestService(platform, 'plain', {}));
    const project = one('apps/appproject-platform-dev.yaml');
    expect(namespacesOf(project)).toEqual(['plain']);
    expect(kindsOf(project)).toEqual(['Namespace']);
  });
});

describe("the operator's apps", () => {
  it('run in a project of their own that admits no cluster-scoped kind and only their namespaces; the platform creates their Namespaces first', () => {
    const { env, one } = synthesize((platform) => {
      new TestService(platform, 'platform-service', {}, readsCluster);
      new TestService(platform, 'web', { tenant: true, podSecurity: { level: 'baseline', reason: 'test' } });
      new TestService(platform, 'api', { tenant: true });
    });
    const apps = one('apps/appproject-apps-dev.yaml');
    expect(apps.spec.clusterResourceWhitelist).toEqual([]);
    expect(namespacesOf(apps)).toEqual(['api', 'web']);
    expect(one('apps/application-web.yaml').spec.project).toBe('apps-dev');
    expect(one('apps/application-platform-service.yaml').spec.project).toBe('platform-dev');
    // Their Namespaces: not in their folders, but in the platform's app-namespaces Application.
    expect([...env.files.keys()].filter((path) => path.endsWith('/namespace-web.yaml'))).toEqual(['app-namespaces/namespace-web.yaml']);
    const web = one('app-namespaces/namespace-web.yaml');
    expect(web.metadata.labels!['pod-security.kubernetes.io/enforce']).toBe('baseline');
    expect(web.metadata.annotations!['argocd.argoproj.io/sync-options']).toBe('Prune=false,Delete=false');
    const creator = one('apps/application-app-namespaces.yaml');
    expect(creator.spec.project).toBe('platform-dev');
    const wave = (m: Manifest) => Number(m.metadata.annotations!['argocd.argoproj.io/sync-wave']);
    expect(wave(creator)).toBeLessThan(wave(one('apps/application-web.yaml')));
    expect(wave(apps)).toBeLessThan(wave(creator));
    // The platform project admits creating them.
    expect(kindsOf(one('apps/appproject-platform-dev.yaml'))).toContain('Namespace');
  });

  it('without apps there is no apps project and no app-namespaces Application', () => {
    const { env } = synthesize((platform) => new TestService(platform, 'plain', {}));
    expect([...env.files.keys()].filter((path) => /apps-dev|app-namespaces/.test(path))).toEqual([]);
  });

  it('an app that emits a cluster-scoped object is a programming error, named', () => {
    expect(() => synthesize((platform) => new TestService(platform, 'web', { tenant: true }, readsCluster))).toThrow(
      "the operator's apps emit cluster-scoped kinds (ClusterRole.rbac.authorization.k8s.io), which their project does not admit",
    );
  });
});

describe('the root Application', () => {
  it.each(['automated', 'manual'] as const)('runs in its own project in bootstrap/ with a bounded retry (%s)', (mode) => {
    const { one } = synthesize((platform) => new TestService(platform, 'plain', {}), mode);
    const root = one('bootstrap/application-root-dev.yaml');
    expect(root.spec.project).toBe('root-dev');
    expect(root.spec.syncPolicy.retry.limit).toBeGreaterThan(0);
    expect(root.spec.syncPolicy.retry.backoff.maxDuration).toBeTruthy();
    expect(root.spec.syncPolicy.automated).toEqual(mode === 'automated' ? { prune: false, selfHeal: true } : undefined);
    const project = one('bootstrap/appproject-root-dev.yaml');
    expect(project.spec.clusterResourceWhitelist).toEqual([]);
    expect(project.spec.namespaceResourceWhitelist).toEqual([
      { group: 'argoproj.io', kind: 'AppProject' },
      { group: 'argoproj.io', kind: 'Application' },
    ]);
    expect(namespacesOf(project)).toEqual(['argocd']);
  });
});

describe('the shipped services', () => {
  it('a new app in the example gets its namespace admitted by the apps project only, and no cluster-scoped kind', () => {
    const config = platformObject();
    config.apps.whoami = { image: 'docker.io/traefik/whoami:v1.10.1', ports: { http: 80 }, probes: { readiness: { http: { port: 'http' } } }, resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '64Mi' } } };
    const dev = synthesizeEnvironment(toYamlText(config), 'dev').env;
    const project = (name: string) => manifestsOf(dev).find(({ path }) => path === `apps/appproject-${name}.yaml`)!.manifest;
    expect(namespacesOf(project('apps-dev'))).toContain('whoami');
    expect(project('apps-dev').spec.clusterResourceWhitelist).toEqual([]);
    expect(kindsOf(project('platform-dev'))).not.toContain('*');
  });
});

describe('scope helpers', () => {
  it('splits Kind.group, the core group being empty', () => {
    expect(groupKind('ClusterRole.rbac.authorization.k8s.io')).toEqual({ group: 'rbac.authorization.k8s.io', kind: 'ClusterRole' });
    expect(groupKind('Namespace')).toEqual({ group: '', kind: 'Namespace' });
  });

  it('merges scopes as sorted sets', () => {
    expect(mergeScopes({ clusterScoped: ['b', 'a'], namespaces: ['x'] }, { clusterScoped: ['a'], namespaces: ['w', 'x'] })).toEqual({
      clusterScoped: ['a', 'b'],
      namespaces: ['w', 'x'],
    });
  });
});
