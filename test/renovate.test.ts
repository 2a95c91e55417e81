/**
 * renovate.json proposes every bump of the versions table: applied as Renovate applies them
 * (each matchString as a global regex over charts/versions.ts), its custom managers match each
 * entry exactly once, with the right package, version and datasource, and match nothing else.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHARTS, CRD_RELEASES, IMAGES, KUSTOMIZATIONS, MANIFESTS, RAY_VERSION } from '../charts/versions';
import { ROOT } from './support';

interface CustomManager {
  customType: string;
  managerFilePatterns: string[];
  matchStrings: string[];
  datasourceTemplate?: string;
  depNameTemplate?: string;
  packageNameTemplate?: string;
}

/** What a manager extracts from one match. */
interface Dependency {
  manager: number;
  datasource: string;
  depName: string;
  packageName: string;
  currentValue: string;
  registryUrl?: string;
}

const VERSIONS_FILE = 'charts/versions.ts';
const RENOVATE = JSON.parse(readFileSync(join(ROOT, 'renovate.json'), 'utf8')) as {
  customManagers: CustomManager[];
  packageRules: { matchPackageNames?: string[]; groupName?: string; allowedVersions?: string }[];
};
const managers = RENOVATE.customManagers;

/** A pattern in Renovate's `/regex/` form. */
function renovateRegex(pattern: string): RegExp {
  return new RegExp(/^\/(.*)\/$/.exec(pattern)![1]);
}

/** Renovate's `/regex/` file patterns. */
function matchesFile(manager: CustomManager, file: string): boolean {
  return manager.managerFilePatterns.some((pattern) => renovateRegex(pattern).test(file));
}

/** `{{{group}}}` templates filled from a match's named groups. */
function fill(template: string | undefined, groups: Record<string, string>): string | undefined {
  return template?.replace(/\{\{\{(\w+)\}\}\}/g, (_, name: string) => groups[name] ?? '');
}

function extract(text: string, file = VERSIONS_FILE): Dependency[] {
  return managers.flatMap((manager, index) =>
    !matchesFile(manager, file)
      ? []
      : manager.matchStrings.flatMap((source) =>
          [...text.matchAll(new RegExp(source, 'g'))].map(({ groups = {} }) => {
            const depName = fill(manager.depNameTemplate, groups) ?? groups.depName;
            return {
              manager: index,
              datasource: fill(manager.datasourceTemplate, groups) ?? groups.datasource,
              depName,
              packageName: fill(manager.packageNameTemplate, groups) ?? groups.packageName ?? depName,
              currentValue: groups.currentValue,
              ...(groups.registryUrl && { registryUrl: groups.registryUrl }),
            };
          }),
        ),
  );
}

/** The entries of the versions table, as the dependency Renovate should see for each. */
function expectedDependencies(): Omit<Dependency, 'manager'>[] {
  const rayImage = 'docker.io/rayproject/ray';
  const ray = { datasource: 'docker', depName: rayImage, packageName: rayImage, currentValue: RAY_VERSION };
  const charts = Object.values(CHARTS).map((chart) => ({
    datasource: 'helm',
    depName: chart.chart,
    packageName: chart.chart,
    currentValue: chart.version,
    registryUrl: chart.repoURL,
  }));
  const gitSources = [...Object.values(KUSTOMIZATIONS), ...Object.values(MANIFESTS), ...Object.values(CRD_RELEASES)].map((source) => {
    const repo = source.repoURL.replace('https://github.com/', '');
    return { datasource: 'github-releases', depName: repo, packageName: repo, currentValue: source.revision };
  });
  // The images of RAY_VERSION are proposed through it (one bump for head, workers and GPU workers).
  const images = Object.values(IMAGES)
    .filter((image) => !image.startsWith(`${rayImage}:${RAY_VERSION}`))
    .map((image) => {
      const [, depName, currentValue] = /^(.+):([^:]+)$/.exec(image)!;
      return { datasource: 'docker', depName, packageName: depName, currentValue };
    });
  return [...charts, ...gitSources, ...images, ray];
}

const key = (dependency: Pick<Dependency, 'depName' | 'currentValue'>) => `${dependency.depName}@${dependency.currentValue}`;

describe('renovate.json', () => {
  const found = extract(readFileSync(join(ROOT, VERSIONS_FILE), 'utf8'));

  it('matches every entry of the versions table with exactly one manager, as the right package and version', () => {
    for (const expected of expectedDependencies()) {
      const matches = found.filter((dependency) => key(dependency) === key(expected));
      expect(matches.length, key(expected)).toBe(1);
      const { manager: _, ...dependency } = matches[0];
      expect(dependency, key(expected)).toEqual(expected);
    }
  });

  it('matches nothing else', () => {
    const expected = new Set(expectedDependencies().map(key));
    expect(found.map(key).filter((k) => !expected.has(k))).toEqual([]);
  });

  it('looks an OCI chart (repoURL without scheme, as Argo CD takes it) up as an OCI artifact, and only that way', () => {
    const oci = extract("  n8n: { repoURL: 'ghcr.io/n8n-io/n8n-helm-chart', chart: 'n8n', version: '1.11.0' },\n");
    expect(oci.map(({ manager: _, ...dependency }) => dependency)).toEqual([
      { datasource: 'docker', depName: 'n8n', packageName: 'ghcr.io/n8n-io/n8n-helm-chart/n8n', currentValue: '1.11.0' },
    ]);
  });

  it('uses no regex feature RE2 (Renovate) lacks: lookarounds, backreferences', () => {
    for (const source of managers.flatMap((manager) => manager.matchStrings)) expect(source).not.toMatch(/\(\?[=!]|\(\?<[=!]|\\[1-9]/);
  });
});

describe('the pinned Node.js runtime (ADR 41)', () => {
  const RUNTIME = /^node-(linux|darwin|win)-/;
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { optionalDependencies?: Record<string, string> };
  const runtimes = Object.entries(manifest.optionalDependencies ?? {}).filter(([name]) => RUNTIME.test(name));
  const runtimeRules = RENOVATE.packageRules.filter((rule) => rule.matchPackageNames?.some((name) => RUNTIME.test(name)));
  const installed = runtimes.find(([name]) => name === `node-${process.platform}-${process.arch}`);

  it('is one exact release for every platform, which Renovate bumps in one pull request within the versions it allows', () => {
    expect(runtimes.length).toBeGreaterThan(0);
    expect(new Set(runtimes.map(([, version]) => version))).toEqual(new Set([runtimes[0][1]]));
    expect(runtimes[0][1]).toMatch(/^\d+\.\d+\.\d+$/);
    // Every rule about the runtime names all of its packages, so none is bumped alone.
    for (const rule of runtimeRules) expect([...(rule.matchPackageNames ?? [])].sort()).toEqual(runtimes.map(([name]) => name).sort());
    expect(runtimeRules.filter((rule) => rule.groupName !== undefined)).toHaveLength(1);
    // The pinned release is one the rules would propose.
    for (const { allowedVersions } of runtimeRules) if (allowedVersions) expect(runtimes[0][1]).toMatch(renovateRegex(allowedVersions));
  });

  it.skipIf(installed === undefined || !existsSync(join(ROOT, 'node_modules', installed[0])))(
    'is node_modules/.bin/node (what npm scripts find first), where npm installed one for the platform',
    () => {
      const run = spawnSync(join(ROOT, 'node_modules', '.bin', 'node'), ['--version'], { encoding: 'utf8' });
      expect(run.stdout.trim()).toBe(`v${installed![1]}`);
    },
  );
});
