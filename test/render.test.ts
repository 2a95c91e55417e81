/**
 * Rendering an output tree as Argo CD would, on a small hand-made tree whose Applications take
 * only folders of this repository (charts and kustomize sources need helm and kubectl and the
 * upstream archives: CI renders the real example with them, `npm run render -- --check`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtInApi } from '../lib/tools/render/cluster-api';
import { imageOverride, renderEnvironment } from '../lib/tools/render/render';
import { RENDERED_MARKER, renderedFiles, renderedTreeRefusal } from '../lib/tools/render/rendered-tree';
import { tempDir, toYamlText } from './support';

const REPO = 'https://example.net/homelab.git';

function application(name: string, namespace: string, sources: object[]): object {
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Application',
    metadata: { name, namespace: 'argocd' },
    spec: { project: 'platform-lab', destination: { server: 'https://kubernetes.default.svc', namespace }, ...(sources.length === 1 ? { source: sources[0] } : { sources }) },
  };
}

/** `k8s/lab` with a root, one Application of two folders of ours, and the folders. */
function outputTree(): string {
  const out = join(tempDir(), 'k8s');
  const write = (path: string, ...documents: object[]) => {
    mkdirSync(join(out, 'lab', path, '..'), { recursive: true });
    writeFileSync(join(out, 'lab', path), documents.map((d) => toYamlText(d)).join('---\n'));
  };
  write('bootstrap/application-root-lab.yaml', { ...application('root-lab', 'argocd', [{ repoURL: REPO, path: 'k8s/lab/apps', targetRevision: 'main' }]), spec: { project: 'root-lab', source: { repoURL: REPO, path: 'k8s/lab/apps', targetRevision: 'main' }, destination: { server: 'https://kubernetes.default.svc', namespace: 'argocd' } } });
  write('apps/application-web.yaml', application('web', 'web', [{ repoURL: REPO, path: 'k8s/lab/web', targetRevision: 'main' }, { repoURL: REPO, path: 'k8s/lab/web-extra', targetRevision: 'main' }]));
  write('web/deployment-web.yaml', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: {} });
  write('web/clusterrole-web.yaml', { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'web' }, rules: [] });
  write('web/nested/ignored.yaml', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'nested' } });
  write('web/notes.txt', {});
  write('web-extra/configmaps.yaml', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'other' } }, { apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'b' } }] });
  return out;
}

describe('rendering an environment', () => {
  it("reads each folder of ours as Argo CD does: its files, not its subfolders; Lists unpacked; the destination namespace where none is named", async () => {
    const objects = await renderEnvironment({ outdir: outputTree(), environment: 'lab', ...builtInApi() });
    const summary = objects.map((o) => `${o.application} ${o.source}: ${o.manifest.kind}/${o.manifest.metadata.namespace ?? '-'}/${o.manifest.metadata.name}`);
    expect(summary).toEqual([
      'root-lab k8s/lab/apps: Application/argocd/web',
      'web k8s/lab/web: ClusterRole/-/web',
      'web k8s/lab/web: Deployment/web/web',
      'web k8s/lab/web-extra: ConfigMap/other/a',
      'web k8s/lab/web-extra: ConfigMap/web/b',
    ]);
  });

  it('writes one file per object, named by kind, namespace and name, with its source', async () => {
    const files = renderedFiles(await renderEnvironment({ outdir: outputTree(), environment: 'lab', ...builtInApi() }));
    expect([...files.keys()]).toEqual(['root-lab/application-argocd-web.yaml', 'web/clusterrole-web.yaml', 'web/configmap-other-a.yaml', 'web/configmap-web-b.yaml', 'web/deployment-web-web.yaml']);
    expect(files.get('web/configmap-web-b.yaml')).toMatch(/^# k8s\/lab\/web-extra\napiVersion: v1\nkind: ConfigMap\n/);
  });

  it('says what to do when there is nothing to render', async () => {
    await expect(renderEnvironment({ outdir: join(tempDir(), 'k8s'), environment: 'lab', ...builtInApi() })).rejects.toThrow(/k8s\/lab\/bootstrap: no root Application; run `npm run synth` first/);
  });
});

describe("an Application's kustomize images", () => {
  it.each([
    ['ghcr.io/rabbitmq/cluster-operator=ghcr.io/rabbitmq/cluster-operator:2.22.3', { name: 'ghcr.io/rabbitmq/cluster-operator', newName: 'ghcr.io/rabbitmq/cluster-operator', newTag: '2.22.3' }],
    ['registry:5000/app:1.2', { name: 'registry:5000/app', newName: 'registry:5000/app', newTag: '1.2' }],
    ['app=registry:5000/app', { name: 'app', newName: 'registry:5000/app' }],
    ['app=ghcr.io/app@sha256:abc', { name: 'app', newName: 'ghcr.io/app', digest: 'sha256:abc' }],
  ])('%s', (image, expected) => {
    expect(imageOverride(image)).toEqual(expected);
  });
});

describe('where the rendered tree may go', () => {
  it('replaces only a missing or empty folder or a rendered tree, never the output, the working directory or foreign files', () => {
    const dir = tempDir();
    const out = join(dir, '.rendered');
    const from = join(dir, 'k8s');
    expect(renderedTreeRefusal(out, from)).toBeUndefined();
    mkdirSync(out);
    expect(renderedTreeRefusal(out, from)).toBeUndefined();
    writeFileSync(join(out, 'notes.txt'), 'mine');
    expect(renderedTreeRefusal(out, from)).toMatch(/holds files that render did not write/);
    writeFileSync(join(out, RENDERED_MARKER), '');
    expect(renderedTreeRefusal(out, from)).toBeUndefined();
    expect(renderedTreeRefusal(from, from)).toMatch(/is, holds or is inside the synthesized output/);
    expect(renderedTreeRefusal(join(from, 'x'), from)).toMatch(/is, holds or is inside the synthesized output/);
    expect(renderedTreeRefusal('/', from)).toMatch(/holds the working directory/);
    expect(renderedTreeRefusal('.', from)).toMatch(/holds the working directory/);
  });
});
