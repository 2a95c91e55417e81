/**
 * One Kubernetes version for the whole platform (lib/model/kubernetes.ts, ADR 32): the cdk8s-plus
 * line that types the manifests, the vendored definitions they are validated against, and every
 * pinned chart's `kubeVersion`, which helm checks against the version `npm run render` (and Argo
 * CD, on a cluster of it) renders for.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import buildPlugins from '../bin/build-plugins.cjs';
import { CHARTS } from '../charts/versions';
import { KUBERNETES_VERSION } from '../lib/model/kubernetes';
import { KUBERNETES_SCHEMA_FILE, SCHEMA_DIR } from '../lib/tools/validate/manifest-validator';
import { readLock } from '../scripts/upstream-inputs';
import { ROOT } from './support';

const MINOR = Number(/^v1\.(\d+)$/.exec(KUBERNETES_VERSION)?.[1]);

/** `[major, minor, patch]` and whether it is a pre-release (`1.29.0-0`), which sorts before its release. */
type Version = readonly [number, number, number, boolean];

function version(text: string): Version {
  const match = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(-[0-9A-Za-z.-]+)?$/.exec(text);
  if (!match) throw new Error(`not a version: ${text}`);
  return [Number(match[1]), Number(match[2] ?? 0), Number(match[3] ?? 0), match[4] !== undefined];
}

function compare(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return Number(b[3]) - Number(a[3]);
}

/**
 * Whether `target` satisfies a Helm `kubeVersion` constraint (Masterminds semver, as helm reads it):
 * `||` between alternatives, comma or space between the comparisons of one. Only the comparison
 * operators pinned charts use; another shape fails the test, naming the constraint.
 */
function satisfies(target: string, constraint: string): boolean {
  const at = version(target);
  return constraint.split('||').some((alternative) =>
    [...alternative.matchAll(/(>=|<=|>|<)?\s*([^\s,<>=]+)/g)].every(([comparison, operator, bound]) => {
      if (!operator) throw new Error(`kubeVersion ${constraint}: "${comparison}" has no comparison operator this test knows`);
      const order = compare(at, version(bound));
      return { '>=': order >= 0, '<=': order <= 0, '>': order > 0, '<': order < 0 }[operator];
    }),
  );
}

describe('the targeted Kubernetes version', () => {
  it('is v1.<minor>', () => {
    expect(MINOR).toBeGreaterThan(0);
  });

  it('is the version of the one cdk8s-plus line the code is written with', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    const lines = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies }).filter((name) => /^cdk8s-plus-\d+$/.test(name));
    expect(lines).toEqual([`cdk8s-plus-${MINOR}`]);
    expect(buildPlugins.CDK8S_PLUS).toBe(`cdk8s-plus-${MINOR}`);
    const imported = new Set<string>();
    for (const folder of ['charts', 'lib', 'scripts', 'test']) {
      for (const file of readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.ts'))) {
        for (const [, line] of readFileSync(join(ROOT, folder, file), 'utf8').matchAll(/from '(cdk8s-plus-\d+)'/g)) imported.add(line);
      }
    }
    expect([...imported]).toEqual([`cdk8s-plus-${MINOR}`]);
  });

  it("is the version of the vendored definitions k8s/ is validated against", () => {
    expect(readLock()!.kubernetes.url).toMatch(new RegExp(`/kubernetes-schemas/${KUBERNETES_VERSION.replace('.', '\\.')}\\.0/_definitions\\.json$`));
    expect(readdirSync(SCHEMA_DIR).filter((file) => file.startsWith('kubernetes-'))).toEqual([KUBERNETES_SCHEMA_FILE]);
    expect(KUBERNETES_SCHEMA_FILE).toBe(`kubernetes-1.${MINOR}.json`);
  });

  it("satisfies every pinned chart's kubeVersion (helm refuses to render a chart for a version outside it)", () => {
    for (const { chart, version: pinned } of Object.values(CHARTS)) {
      const { kubeVersion } = parse(readFileSync(join(ROOT, 'vendor', 'charts', chart, 'Chart.yaml'), 'utf8')) as { kubeVersion?: string };
      if (kubeVersion !== undefined) expect(satisfies(KUBERNETES_VERSION, kubeVersion), `${chart} ${pinned}: kubeVersion ${kubeVersion}`).toBe(true);
    }
  });

  it('is compared with a constraint as helm does', () => {
    expect(satisfies('v1.29', '>=1.29.0-0')).toBe(true);
    expect(satisfies('v1.28', '>=1.29.0-0')).toBe(false);
    expect(satisfies('v1.34', '>= 1.22.0-0')).toBe(true);
    expect(satisfies('v1.34', '>=1.25.0-0, <1.34.0-0')).toBe(false);
    expect(satisfies('v1.34', '>=1.25.0-0 <1.35.0-0')).toBe(true);
    expect(satisfies('v1.34', '<1.20 || >=1.30')).toBe(true);
    expect(() => satisfies('v1.34', '~1.34')).toThrow('has no comparison operator');
  });
});
