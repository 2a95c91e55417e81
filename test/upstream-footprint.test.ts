/**
 * The footprints charts/versions.ts declares beside each pinned upstream source are what the
 * source itself says (re-derived from ../shared, so a version bump cannot leave them stale),
 * and the derivation reads templates and kustomizations as Helm and kustomize would.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CHARTS, KUSTOMIZATIONS, MANIFESTS } from '../charts/versions';
import { ARGOCD_CONTROL_KINDS } from '../lib/model/argocd';
import type { UpstreamFootprint } from '../lib/model/sources';
import { readClusterScopedKinds } from '../lib/output/cluster-scoped';
import { ROOT, tempDir } from './support';
import { argoCdObjects, chartArchive, chartObjects, footprintOf, gitSourceDir, kustomizationObjects, manifestObjects, SHARED } from './upstream-footprint';

/** The declaration to paste into charts/versions.ts when it is stale. */
const declaration = (footprint: UpstreamFootprint) =>
  `footprint: { clusterScoped: [${footprint.clusterScoped.map((k) => `'${k}'`).join(', ')}], namespaces: [${footprint.namespaces.map((n) => `'${n}'`).join(', ')}] }`;

const noShared = !existsSync(join(SHARED, 'chart-archives'));

describe.skipIf(noShared)('declared upstream footprints match the pinned sources in ../shared (skipped without ../shared: nothing to re-derive from)', () => {
  it.each(Object.entries(CHARTS))('chart %s', (_, chart) => {
    const objects = chartObjects(chartArchive(chart));
    const derived = footprintOf(objects);
    expect(chart.footprint, `${chart.chart} ${chart.version}: declare ${declaration(derived)}`).toEqual(derived);
    expect(argoCdObjects(objects, ARGOCD_CONTROL_KINDS)).toEqual([]);
  });

  it.each(Object.entries(KUSTOMIZATIONS))('kustomization %s', (_, source) => {
    const objects = kustomizationObjects(gitSourceDir(source));
    const derived = footprintOf(objects);
    expect(source.footprint, `${source.repoURL} ${source.path}@${source.revision}: declare ${declaration(derived)}`).toEqual(derived);
    expect(argoCdObjects(objects, ARGOCD_CONTROL_KINDS)).toEqual([]);
  });

  it.each(Object.entries(MANIFESTS))('manifests %s', (_, source) => {
    const objects = manifestObjects(gitSourceDir(source));
    const derived = footprintOf(objects);
    expect(source.footprint, `${source.repoURL} ${source.path}@${source.revision}: declare ${declaration(derived)}`).toEqual(derived);
    expect(argoCdObjects(objects, ARGOCD_CONTROL_KINDS)).toEqual([]);
  });
});

describe('deriving a footprint', () => {
  const dir = tempDir('homelab-footprint-');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (path: string, text: string) => {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  };

  it('names each cluster-scoped kind once, so a templated apiVersion resolves by the kind alone', () => {
    const names = [...readClusterScopedKinds(join(ROOT, 'imports', 'schemas'))].map((name) => name.split('.')[0]);
    expect(names.filter((name, i) => names.indexOf(name) !== i)).toEqual([]);
  });

  it("reads a chart's top-level kinds and literal namespaces, templated or not, in templates/, crds/ and subcharts, not a CRD's names.kind", () => {
    write('chart/mychart/Chart.yaml', 'name: mychart\nversion: 1.0.0\n');
    write(
      'chart/mychart/templates/rbac.yaml',
      '{{- if .Values.rbac }}\napiVersion: {{ include "rbac.apiVersion" . }}\nkind: ClusterRole\nmetadata:\n  name: x\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: kubelet\n  namespace: kube-system\n  labels:\n    namespace: not-this\n---\nkind: ConfigMap\nmetadata:\n  namespace: {{ .Release.Namespace }}\n{{- end }}\n',
    );
    write('chart/mychart/crds/crd.yaml', 'apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec:\n  names:\n    kind: Node\n');
    write('chart/mychart/charts/sub/templates/class.yaml', 'apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: high\n');
    write('chart/mychart/values.yaml', 'kind: ClusterRoleBinding\n');
    const archive = join(dir, 'mychart-1.0.0.tgz');
    expect(spawnSync('tar', ['-czf', archive, '-C', join(dir, 'chart'), 'mychart']).status).toBe(0);
    expect(footprintOf(chartObjects(archive))).toEqual({
      clusterScoped: ['ClusterRole.rbac.authorization.k8s.io', 'CustomResourceDefinition.apiextensions.k8s.io', 'PriorityClass.scheduling.k8s.io'],
      namespaces: ['kube-system'],
    });
  });

  it("follows a kustomization's resources and sets its namespace on the namespaced objects only", () => {
    write('kustomize/base/kustomization.yaml', 'namespace: inner\nresources:\n- rbac.yaml\n');
    write('kustomize/base/rbac.yaml', 'apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: b\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n');
    write('kustomize/overlay/kustomization.yaml', 'namespace: outer\nresources:\n- ../base\n- ns.yaml\n');
    write('kustomize/overlay/ns.yaml', 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: outer\n');
    write('kustomize/unused.yaml', 'apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: pv\n');
    expect(footprintOf(kustomizationObjects(join(dir, 'kustomize/overlay')))).toEqual({
      clusterScoped: ['ClusterRoleBinding.rbac.authorization.k8s.io', 'Namespace'],
      namespaces: ['outer'],
    });
    expect(footprintOf(manifestObjects(join(dir, 'kustomize/base/rbac.yaml')))).toEqual({ clusterScoped: ['ClusterRoleBinding.rbac.authorization.k8s.io'], namespaces: [] });
  });

  it("finds Argo CD's own kinds, whatever their apiVersion's version or template", () => {
    expect(argoCdObjects([{ apiVersion: 'argoproj.io/v1alpha1', kind: 'AppProject' }, { kind: 'Application' }, { apiVersion: 'v1', kind: 'Application' }], ARGOCD_CONTROL_KINDS)).toEqual([
      'AppProject',
      'Application',
    ]);
  });
});
