/** Writing k8s/: atomic, stale files removed, deterministic in any timezone or locale. */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeOutput } from '../lib/writer';
import { validateDirectory } from '../scripts/validate';
import { EXAMPLE_CONFIG, readTree, runCli, runMain, synthesizeExample, synthesizeText, exampleText, tempDir } from './support';

describe('writer', () => {
  it('replaces the output directory, dropping stale files', () => {
    const outdir = join(tempDir(), 'k8s');
    mkdirSync(join(outdir, 'dev', 'removed-service'), { recursive: true });
    writeFileSync(join(outdir, 'dev', 'removed-service', 'deployment-old.yaml'), 'old');
    mkdirSync(join(outdir, 'old-env'));

    writeOutput(synthesizeExample(), { outdir });

    const tree = readTree(outdir);
    expect([...tree.keys()].some((p) => p.includes('removed-service') || p.startsWith('old-env'))).toBe(false);
    expect(tree.size).toBe(synthesizeExample().reduce((n, env) => n + env.files.size, 0));
  });

  it('reuses unchanged files and rewrites changed ones', () => {
    const outdir = join(tempDir(), 'k8s');
    const first = [{ environment: 'dev', files: new Map([['a/same.yaml', 'same\n'], ['a/changed.yaml', 'old\n']]) }];
    const second = [{ environment: 'dev', files: new Map([['a/same.yaml', 'same\n'], ['a/changed.yaml', 'new\n']]) }];
    writeOutput(first, { outdir });
    const sameInode = statSync(join(outdir, 'dev/a/same.yaml')).ino;

    writeOutput(second, { outdir });

    expect(readTree(outdir)).toEqual(new Map([['dev/a/changed.yaml', 'new\n'], ['dev/a/same.yaml', 'same\n']]));
    expect(statSync(join(outdir, 'dev/a/same.yaml')).ino).toBe(sameInode);
    expect(statSync(join(outdir, 'dev/a/same.yaml')).nlink).toBe(1);
  });

  it('with --env replaces only that environment', () => {
    const dir = tempDir();
    const outdir = join(dir, 'k8s');
    mkdirSync(join(outdir, 'dev'), { recursive: true });
    writeFileSync(join(outdir, 'dev', 'marker.yaml'), 'kept');
    mkdirSync(join(outdir, 'prod'), { recursive: true });
    writeFileSync(join(outdir, 'prod', 'stale.yaml'), 'stale');

    const result = runMain(['--config', EXAMPLE_CONFIG, '--out', outdir, '--env', 'prod']);

    expect(result.status).toBe(0);
    const tree = readTree(outdir);
    expect(tree.get('dev/marker.yaml')).toBe('kept');
    expect(tree.has('prod/stale.yaml')).toBe(false);
    expect(tree.has('prod/apps/application-longhorn.yaml')).toBe(true);
    expect([...tree.keys()].some((p) => p.startsWith('staging/'))).toBe(false);
    expect(result.stdout).toMatch(/^prod: 17 services/m);
    expect(result.stdout).not.toMatch(/^dev:/m);
  });

  it('leaves the output untouched and no staging directory behind when writing fails', () => {
    const dir = tempDir();
    const outdir = join(dir, 'k8s');
    mkdirSync(outdir);
    writeFileSync(join(outdir, 'keep.yaml'), 'keep');
    const broken = [{ environment: 'dev', files: new Map([['a/b.yaml', 'x'], ['a/b.yaml/c.yaml', 'conflict']]) }];

    expect(() => writeOutput(broken, { outdir })).toThrow();

    expect(readTree(dir)).toEqual(new Map([['k8s/keep.yaml', 'keep']]));
  });
});

describe('synth', () => {
  it('produces byte-identical output twice in a row', () => {
    const first = synthesizeText(exampleText());
    const second = synthesizeText(exampleText());
    expect(second.map((e) => [...e.files])).toEqual(first.map((e) => [...e.files]));
  });

  it('produces byte-identical output in any timezone and locale (real CLI)', () => {
    const a = join(tempDir(), 'k8s');
    const b = join(tempDir(), 'k8s');
    expect(runCli(['--out', a], { TZ: 'UTC', LANG: 'C', LC_ALL: 'C' }).status).toBe(0);
    const run = runCli(['--out', b], { TZ: 'Pacific/Chatham', LANG: 'tr_TR.UTF-8', LC_ALL: 'tr_TR.UTF-8' });
    expect(run.status).toBe(0);
    expect(readTree(b)).toEqual(readTree(a));
  });

  it('prints a summary per environment: wave, service, namespace, resource count, upstream, capacity', () => {
    const result = runMain(['--config', EXAMPLE_CONFIG, '--out', join(tempDir(), 'k8s')]);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^dev: 13 services, \d+ files in .*\/dev\/$/m);
    expect(result.stdout).toMatch(/^\s+0\s+prometheus-operator-crds\s+gitops\s+prometheus-operator-crds\s+\d+\s+prometheus-operator\/prometheus-operator\/example\/prometheus-operator-crd@v0\.93\.0$/m);
    expect(result.stdout).toMatch(/^\s+1\s+argocd\s+gitops\s+argocd\s+\d+\s+argo-cd@10\.1\.1$/m);
    expect(result.stdout).toMatch(/^\s+1\s+longhorn\s+storage\s+longhorn-system\s+\d+\s+longhorn@1\.12\.1$/m);
    expect(result.stdout).toMatch(/^\s+2\s+rabbitmq-operators\s+data-mesh\s+rabbitmq-system\s+\d+\s+rabbitmq\/cluster-operator\/config\/installation@v2\.22\.3, /m);
    expect(result.stdout).toMatch(/^\s+3\s+monitoring\s+observability\s+monitoring\s+\d+\s+kube-prometheus-stack@88\.5\.3$/m);
    expect(result.stdout).toMatch(/^\s+3\s+node-red\s+automation\s+node-red\s+\d+\s+-$/m);
    expect(result.stdout).not.toMatch(/warning:/);
    // dev: Argo CD, RabbitMQ and its operators, Loki, Alloy, the monitoring stack, Vault, External Secrets and the two apps.
    expect(result.stdout).toMatch(/^  requested\/available: cpu 2\.685\/4 cores, memory 6\.9Gi\/16\.0Gi, gpu 0\/0$/m);
    // prod: one GPU time-sliced two ways, used by Triton and the Ray GPU worker.
    expect(result.stdout).toMatch(/^  requested\/available: cpu 10\.845\/28 cores, memory 31\.6Gi\/112\.0Gi, gpu 2\/2$/m);
    expect(result.stdout).toMatch(/^synthesized 3 environments in \d+\.\d\d s$/m);
  });

  it('synthesizes another config file with --config', () => {
    const dir = tempDir();
    const file = join(dir, 'other.yaml');
    writeFileSync(file, exampleText().replace('home-assistant:\n    image', 'home-assistant:\n    enabled: false\n    image').replace(/\s+# Node-RED flows automate Home Assistant.\n\s+dependsOn: \[home-assistant\]/, ''));
    const result = runMain(['--config', file, '--out', join(dir, 'k8s'), '--env', 'dev']);
    expect(result.stderr).toBe('');
    expect([...readTree(join(dir, 'k8s')).keys()].some((p) => p.startsWith('dev/home-assistant/'))).toBe(false);
  });
});

describe('npm run validate', () => {
  it('accepts the synthesized example and reports a broken manifest and a bad Helm value by file', () => {
    const outdir = join(tempDir(), 'k8s');
    writeOutput(synthesizeExample(), { outdir });
    const clean = validateDirectory(outdir);
    expect(clean.errors).toEqual([]);
    expect(clean.files).toBe(readTree(outdir).size);

    writeFileSync(join(outdir, 'dev', 'longhorn', 'storageclass-longhorn-replicated.yaml'), 'apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: x}\nprovisoner: typo\n');
    writeFileSync(join(outdir, 'dev', 'bootstrap', 'argo-cd.values.yaml'), 'server:\n  insecure: "true"\n  replicas: two\n');
    const broken = validateDirectory(outdir);
    expect(broken.errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/dev\/longhorn\/storageclass-longhorn-replicated\.yaml: StorageClass\/x: .*provisoner/),
        expect.stringMatching(/dev\/bootstrap\/argo-cd\.values\.yaml: server\.insecure: unknown key/),
      ]),
    );
  });
});
