/** Writing k8s/: atomic, stale files removed, deterministic in any timezone or locale. */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { SYNTH_COMMAND } from '../main';
import { formatCores, formatGibibytes } from '../lib/util/quantity';
import { describe, expect, it } from 'vitest';
import { colours } from '../lib/util/colours';
import { installFastResolve, uninstallFastResolve } from '../lib/output/fast-resolve';
import { treeOf } from '../lib/output/output-tree';
import { writeOutput } from '../lib/output/writer';
import { main as validateMain, validateDirectory } from '../scripts/validate';
import { GENERATED_HEADER } from '../lib/output/output-guard';
import { captureOutput, FIXTURES, fixtureObject, PLATFORM_FIXTURE, platformText, readTree, ROOT, runCli, runMain, synthesizeEnvironment, synthesizePlatformFixture, synthesizePlatforms, tempDir, toYamlText } from './support';

/** A file as synth writes it: the generated header, then the text. */
const generated = (text: string) => `${GENERATED_HEADER}${text}\n`;

describe('writer', () => {
  it('replaces the output directory, dropping stale files', () => {
    const outdir = join(tempDir(), 'k8s');
    mkdirSync(join(outdir, 'dev', 'removed-service'), { recursive: true });
    writeFileSync(join(outdir, 'dev', 'removed-service', 'deployment-old.yaml'), generated('old'));
    mkdirSync(join(outdir, 'old-env'));

    writeOutput(synthesizePlatformFixture(), { outdir });

    const tree = readTree(outdir);
    expect([...tree.keys()].some((p) => p.includes('removed-service') || p.startsWith('old-env'))).toBe(false);
    expect(tree.size).toBe(synthesizePlatformFixture().reduce((n, env) => n + env.files.size, 0));
  });

  it('reuses unchanged files and rewrites changed ones', () => {
    const outdir = join(tempDir(), 'k8s');
    const first = [{ environment: 'dev', files: new Map([['a/same.yaml', generated('same')], ['a/changed.yaml', generated('old')]]) }];
    const second = [{ environment: 'dev', files: new Map([['a/same.yaml', generated('same')], ['a/changed.yaml', generated('new')]]) }];
    writeOutput(first, { outdir });
    const sameInode = statSync(join(outdir, 'dev/a/same.yaml')).ino;

    writeOutput(second, { outdir });

    expect(readTree(outdir)).toEqual(new Map([['dev/a/changed.yaml', generated('new')], ['dev/a/same.yaml', generated('same')]]));
    expect(statSync(join(outdir, 'dev/a/same.yaml')).ino).toBe(sameInode);
    expect(statSync(join(outdir, 'dev/a/same.yaml')).nlink).toBe(1);
  });

  it('rewrites a file that holds the new content and more, or only the start of it, and compares files of any size', () => {
    const outdir = join(tempDir(), 'k8s');
    const large = generated('x'.repeat(200_000));
    const files = (longer: string, shorter: string, big: string) => [
      { environment: 'dev', files: new Map([['a/longer.yaml', longer], ['a/shorter.yaml', shorter], ['a/big.yaml', big]]) },
    ];
    writeOutput(files(generated('same\nand more'), generated('sa'), large), { outdir });
    const bigInode = statSync(join(outdir, 'dev/a/big.yaml')).ino;
    writeOutput(files(generated('same'), generated('same'), large), { outdir });
    expect(readTree(outdir)).toEqual(new Map([['dev/a/big.yaml', large], ['dev/a/longer.yaml', generated('same')], ['dev/a/shorter.yaml', generated('same')]]));
    expect(statSync(join(outdir, 'dev/a/big.yaml')).ino).toBe(bigInode);
    writeOutput(files(generated('same'), generated('same'), `${large.slice(0, -2)}y\n`), { outdir });
    expect(readTree(outdir).get('dev/a/big.yaml')).toBe(`${large.slice(0, -2)}y\n`);
  });

  it('with --env replaces only that environment', () => {
    const dir = tempDir();
    const outdir = join(dir, 'k8s');
    mkdirSync(join(outdir, 'dev', 'kept'), { recursive: true });
    writeFileSync(join(outdir, 'dev', 'kept', 'marker.yaml'), generated('kept'));
    mkdirSync(join(outdir, 'prod', 'gone'), { recursive: true });
    writeFileSync(join(outdir, 'prod', 'gone', 'stale.yaml'), generated('stale'));

    const result = runMain(['--config', PLATFORM_FIXTURE, '--out', outdir, '--env', 'prod']);

    expect(result.status).toBe(0);
    const tree = readTree(outdir);
    expect(tree.get('dev/kept/marker.yaml')).toBe(generated('kept'));
    expect(tree.has('prod/gone/stale.yaml')).toBe(false);
    expect(tree.has('prod/apps/application-longhorn.yaml')).toBe(true);
    expect([...tree.keys()].some((p) => p.startsWith('staging/'))).toBe(false);
    expect(result.stdout).toMatch(/^prod: \d+ services in \d+ waves/m);
    expect(result.stdout).not.toMatch(/^dev:/m);
  });

  it('leaves the output untouched and no staging directory behind when writing fails', () => {
    const dir = tempDir();
    const outdir = join(dir, 'k8s');
    mkdirSync(join(outdir, 'old', 'a'), { recursive: true });
    writeFileSync(join(outdir, 'old', 'a', 'keep.yaml'), generated('keep'));
    const broken = [{ environment: 'dev', files: new Map([['a/b.yaml', 'x'], ['a/b.yaml/c.yaml', 'conflict']]) }];

    expect(() => writeOutput(broken, { outdir })).toThrow(/^.*k8s: cannot write the output: EEXIST: .*mkdir/);

    expect(readTree(dir)).toEqual(new Map([['k8s/old/a/keep.yaml', generated('keep')]]));
  });
});

describe('synth as `npx cdk8s synth` runs it', () => {
  // cdk8s-cli removes cdk8s.yaml's output before it starts the app: it must never be k8s/.
  it("has cdk8s.yaml's output apart from the output directory, and links it there once written", () => {
    const output = (parse(readFileSync(join(ROOT, 'cdk8s.yaml'), 'utf8')) as { output: string }).output;
    expect(resolve(ROOT, output)).not.toBe(resolve(ROOT, SYNTH_COMMAND.options.out.default as string));
    const dir = tempDir();
    const config = join(FIXTURES, 'small.yaml');
    const withCdk8sOutdir = (args: string[]) => {
      process.env.CDK8S_OUTDIR = join(dir, output);
      try {
        return runMain(['--config', config, '--out', join(dir, 'k8s'), '--quiet', ...args]);
      } finally {
        delete process.env.CDK8S_OUTDIR;
      }
    };
    expect(withCdk8sOutdir([]).status).toBe(0);
    expect(readlinkSync(join(dir, output))).toBe('k8s');
    expect(readdirSync(join(dir, output))).toEqual(['lab']);
    // A config error: cdk8s-cli has removed its output, and the app leaves it so (k8s/ as it was).
    rmSync(join(dir, output));
    expect(withCdk8sOutdir(['--env', 'nope']).status).toBe(2);
    expect(existsSync(join(dir, output))).toBe(false);
    expect(readdirSync(join(dir, 'k8s'))).toEqual(['lab']);
    // Something already there is not the app's to replace.
    mkdirSync(join(dir, output));
    expect(withCdk8sOutdir([]).status).toBe(0);
    expect(lstatSync(join(dir, output)).isDirectory()).toBe(true);
  });
});

describe('synth', () => {
  it('produces byte-identical output in any timezone and locale (real CLI)', () => {
    const out = join(tempDir(), 'k8s');
    const run = runCli(['--config', PLATFORM_FIXTURE, '--env', 'prod', '--out', out], { TZ: 'Pacific/Chatham', LANG: 'tr_TR.UTF-8', LC_ALL: 'tr_TR.UTF-8' });
    expect(run.status).toBe(0);
    // The same as this process, which runs in the test runner's timezone and locale.
    expect(process.env.TZ ?? '').not.toBe('Pacific/Chatham');
    expect(readTree(out)).toEqual(treeOf(synthesizePlatformFixture().filter((env) => env.environment === 'prod')));
    // Not a terminal: no colour codes, on either stream.
    expect(run.stdout).toMatch(/^synthesized 1 environment /m);
    expect(run.stdout + run.stderr).not.toMatch(/\x1b\[/);
  });

  /** One synth of the platform fixture with the default output (progress on stderr, the summary on stdout), for the tests that read either. */
  let fullRun: ReturnType<typeof runMain> | undefined;
  const fullSynth = () => (fullRun ??= runMain(['--config', PLATFORM_FIXTURE, '--out', join(tempDir(), 'k8s')]));

  it('reports progress per environment on stderr; --quiet prints nothing on success', () => {
    const run = fullSynth();
    expect(run.stderr).toMatch(/^\[1\/3\] dev: \d+ services, \d+ files \(\d+\.\d\d s\)\n\[2\/3\] staging: .*\n\[3\/3\] prod: .*\n$/);
    const outdir = join(tempDir(), 'k8s');
    expect(runMain(['--config', PLATFORM_FIXTURE, '--out', outdir, '--env', 'dev', '--quiet'])).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(readTree(outdir).size).toBeGreaterThan(0);
  });

  it('colours only for a terminal without NO_COLOR', () => {
    expect(colours({ isTTY: true }, {}).red('x')).toBe('\x1b[31mx\x1b[39m');
    expect(colours({ isTTY: true }, { NO_COLOR: '1' }).red('x')).toBe('x');
    expect(colours({ isTTY: false }, {}).red('x')).toBe('x');
  });

  it('--help prints the options and exit statuses, writes nothing, exits 0', () => {
    const outdir = join(tempDir(), 'k8s');
    const run = runMain(['--help', '--out', outdir]);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^usage: npm run synth -- .*\n[\s\S]*--check[\s\S]*--quiet[\s\S]*exit status:\n {2}0 .*\n {2}1 .*\n {2}2 /);
    expect(readTree(outdir).size).toBe(0);
  });

  it('prints a summary per environment: wave, service, namespace, resource count, upstream, capacity', () => {
    const result = fullSynth();
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^dev: \d+ services in \d+ waves, \d+ resources, \d+ files in .*\/dev\/$/m);
    expect(result.stdout).toMatch(/^\s+0\s+prometheus-operator-crds\s+gitops\s+prometheus-operator-crds\s+\d+\s+prometheus-operator\/prometheus-operator\/example\/prometheus-operator-crd@v0\.93\.0$/m);
    expect(result.stdout).toMatch(/^\s+1\s+argocd\s+gitops\s+argocd\s+\d+\s+argo-cd@10\.1\.1$/m);
    expect(result.stdout).toMatch(/^\s+1\s+longhorn\s+storage\s+longhorn-system\s+\d+\s+longhorn@1\.12\.1$/m);
    expect(result.stdout).toMatch(/^\s+\d+\s+rabbitmq-operators\s+data-mesh\s+rabbitmq-system\s+\d+\s+rabbitmq\/cluster-operator\/config\/installation@v2\.22\.3, /m);
    expect(result.stdout).toMatch(/^\s+\d+\s+monitoring\s+observability\s+monitoring\s+\d+\s+kube-prometheus-stack@88\.5\.3$/m);
    expect(result.stdout).toMatch(/^\s+\d+\s+node-red\s+automation\s+node-red\s+\d+\s+-$/m);
    expect(result.stdout).not.toMatch(/warning:/);
    // Each environment's capacity line carries exactly what the capacity check computed.
    for (const env of synthesizePlatformFixture()) {
      const { requested, available } = env.capacity;
      const line = `  requested/available: cpu ${formatCores(requested.cpuCores)}/${formatCores(available.cpuCores)} cores, memory ${formatGibibytes(requested.memoryBytes)}/${formatGibibytes(available.memoryBytes)}, gpu ${requested.gpus}/${available.gpus}`;
      expect(result.stdout.split('\n')).toContain(line);
    }
    // prod: one GPU time-sliced two ways, used by Triton and the Ray GPU worker.
    expect(result.stdout).toMatch(/^  requested\/available: cpu [\d.]+\/28 cores, memory [\d.]+Gi\/112\.0Gi, gpu 2\/2$/m);
    expect(result.stdout).toMatch(/^\s+\d+\s+traefik\s+networking\s+traefik\s+\d+\s+traefik@41\.3\.0$/m);
    expect(result.stdout).toMatch(/^synthesized 3 environments in \d+\.\d\d s$/m);
  });

  it('synthesizes another config file with --config', () => {
    const dir = tempDir();
    const file = join(dir, 'other.yaml');
    writeFileSync(file, platformText().replace('home-assistant:\n    image', 'home-assistant:\n    enabled: false\n    image').replace(/\s+# Node-RED flows automate Home Assistant.\n\s+dependsOn: \[home-assistant\]/, ''));
    const result = runMain(['--config', file, '--out', join(dir, 'k8s'), '--env', 'dev']);
    expect(result.status).toBe(0);
    expect(result.stderr).not.toContain('error:');
    expect([...readTree(join(dir, 'k8s')).keys()].some((p) => p.startsWith('dev/home-assistant/'))).toBe(false);
  });
});

describe('synth --check', () => {
  const check = (outdir: string, ...args: string[]) => runMain(['--config', PLATFORM_FIXTURE, '--out', outdir, '--env', 'dev', '--check', ...args]);

  it('exits 0 when the output is what a synth writes, 1 listing the differing files otherwise; never writes', () => {
    const outdir = join(tempDir(), 'k8s');
    expect(runMain(['--config', PLATFORM_FIXTURE, '--out', outdir, '--env', 'dev', '--quiet']).status).toBe(0);
    const written = readTree(outdir);

    const upToDate = check(outdir);
    expect(upToDate.status).toBe(0);
    expect(upToDate.stdout).toMatch(/is up to date: \d+ files match a fresh synth/);
    expect(check(outdir, '--quiet')).toEqual({ status: 0, stdout: '', stderr: '' });

    const changed = [...written.keys()].find((p) => p.startsWith('dev/longhorn/'))!;
    const removed = [...written.keys()].find((p) => p.startsWith('dev/apps/'))!;
    writeFileSync(join(outdir, changed), 'edited by hand\n');
    rmSync(join(outdir, removed));
    writeFileSync(join(outdir, 'dev', 'stale.yaml'), 'left over\n');
    const edited = readTree(outdir);

    const outdated = check(outdir, '--quiet');
    expect(outdated.status).toBe(1);
    expect(outdated.stderr).toContain('differs from a fresh synth; 3 files would change:');
    expect(outdated.stderr).toContain(`  changed  ${outdir}/${changed}\n`);
    expect(outdated.stderr).toContain(`  added    ${outdir}/${removed}\n`);
    expect(outdated.stderr).toContain(`  removed  ${outdir}/dev/stale.yaml\n`);
    expect(readTree(outdir)).toEqual(edited);
  });

  it('a missing output directory would change and is not created; a config error exits 2', () => {
    const dir = tempDir();
    expect(check(join(dir, 'k8s')).status).toBe(1);
    expect(readTree(dir).size).toBe(0);
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'environments: {}\n');
    expect(runMain(['--config', broken, '--out', join(dir, 'k8s'), '--check'])).toMatchObject({ status: 2, stderr: expect.stringContaining('environments: expected a mapping') });
    expect(readTree(dir)).toEqual(new Map([['broken.yaml', 'environments: {}\n']]));
  });
});

describe('npm run validate', () => {
  it('--help exits 0; a second directory is a usage error (exit 2)', () => {
    expect(captureOutput(() => validateMain(['--help']))).toMatchObject({ status: 0, stdout: expect.stringMatching(/^usage: npm run validate -- \[<dir>\]\n/) });
    expect(captureOutput(() => validateMain(['a', 'b']))).toEqual({
      status: 2,
      stdout: '',
      stderr: 'error: unexpected argument "b"\nusage: npm run validate -- [<dir>] (--help for the options)\n',
    });
  });

  it('accepts the synthesized platform fixture (dev) and reports a broken manifest and a bad Helm value by file', () => {
    const outdir = join(tempDir(), 'k8s');
    writeOutput(synthesizePlatformFixture().filter((env) => env.environment === 'dev'), { outdir });
    const clean = validateDirectory(outdir);
    expect(clean.errors).toEqual([]);
    expect(clean.files).toBe(readTree(outdir).size);

    writeFileSync(join(outdir, 'dev', 'longhorn', 'storageclass-longhorn-replicated.yaml'), 'apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: x}\nprovisoner: typo\n');
    writeFileSync(join(outdir, 'dev', 'bootstrap', 'argo-cd.values.yaml'), 'server:\n  insecure: "true"\n  replicas: two\n');
    // Only the two folders again: the whole environment passed above.
    const broken = [join(outdir, 'dev', 'longhorn'), join(outdir, 'dev', 'bootstrap')].flatMap((dir) => validateDirectory(dir).errors);
    expect(broken).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/dev\/longhorn\/storageclass-longhorn-replicated\.yaml: StorageClass\/x: .*provisoner/),
        expect.stringMatching(/dev\/bootstrap\/argo-cd\.values\.yaml: server\.insecure: unknown key/),
      ]),
    );
  });
});

describe('synth in worker threads (the real CLI, --jobs)', () => {
  /** The small fixture with an app, in three environments. */
  const threeEnvironments = (change: (config: Record<string, any>) => void = () => {}) => {
    const config = fixtureObject('small');
    config.apps = { web: { image: 'docker.io/traefik/whoami:v1.10.1', ports: { http: 80 }, probes: { readiness: { http: { port: 'http' } } }, resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '32Mi' } } } };
    config.environments = { dev: {}, staging: {}, prod: {} };
    change(config);
    const file = join(tempDir(), 'homelab.yaml');
    writeFileSync(file, toYamlText(config));
    return file;
  };

  it('writes the same bytes as one thread, reports every environment, and rewrites exactly what changed', () => {
    const config = threeEnvironments();
    const single = join(tempDir(), 'k8s');
    const threaded = join(tempDir(), 'k8s');
    // One thread: main() from the sources, in this process (the timezone test holds the CLI's bundle to the sources).
    expect(runMain(['--config', config, '--out', single, '--quiet']).status).toBe(0);

    // Two threads for three environments: the worker synthesizes two, one after the other.
    const run = runCli(['--config', config, '--out', threaded, '--jobs', '2']);

    expect(run.status, run.stderr).toBe(0);
    expect(readTree(threaded)).toEqual(readTree(single));
    const reported = run.stderr.trim().split('\n').map((line) => /^\[(\d)\/3\] (\w+): /.exec(line)?.slice(1));
    expect(reported.map((r) => r?.[0])).toEqual(['1', '2', '3']);
    expect(reported.map((r) => r?.[1]).sort()).toEqual(['dev', 'prod', 'staging']);
    // Each thread compares the folder it made with the output: an edit by hand in a worker's
    // environment is found and put back, and nothing else is rewritten.
    const kept = join(threaded, 'dev', 'web', 'deployment-web.yaml');
    const inode = statSync(kept).ino;
    writeFileSync(join(threaded, 'prod', 'web', 'deployment-web.yaml'), generated('edited by hand'));
    // More threads than environments: as many as there is work for.
    expect(runCli(['--config', config, '--out', threaded, '--jobs', '64', '--quiet']).status).toBe(0);
    expect(readTree(threaded)).toEqual(readTree(single));
    expect(statSync(kept).ino).toBe(inode);
  });

  it("reports a problem of a worker's environment like any other: an error line, exit 2, the output untouched", () => {
    const dir = tempDir();
    const outdir = join(dir, 'k8s');
    mkdirSync(outdir);
    writeFileSync(join(outdir, 'keep.yaml'), 'keep');
    // Only prod (the last environment, so a worker's) asks for more CPU than its node has.
    const cpu = { requests: { cpu: '64', memory: '1Gi' }, limits: { cpu: '64', memory: '1Gi' } };
    const config = threeEnvironments((c) => (c.environments.prod = { apps: { web: { resources: cpu } } }));

    // The worker synthesizes staging, then prod, which fails.
    const run = runCli(['--config', config, '--out', outdir, '--jobs', '2', '--quiet']);

    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`^error: ${config}: environments\\.prod: nodes: cpu: the services request .* \\(web/app 1 x 64 cores`, 'm'));
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(readTree(outdir)).toEqual(new Map([['keep.yaml', 'keep']]));
  });

  it('takes --jobs as a number of threads, 1 or more', () => {
    const run = runMain(['--jobs', 'many']);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/^error: --jobs: expected a whole number of threads above 0, received "many"$/m);
  });
});

describe("the faster walk over cdk8s' values", () => {
  it('renders every object of the platform fixture exactly as cdk8s own toJson does, key order included', () => {
    const objects = synthesizePlatforms(platformText()).flatMap(({ platform }) =>
      platform.services.flatMap((service) => service.apiObjects.map((object) => ({ service, object }))),
    );
    const fast = objects.map(({ service, object }) => service.render(object, { fresh: true }));
    uninstallFastResolve();
    try {
      const original = objects.map(({ service, object }) => service.render(object, { fresh: true }));
      // JSON text: the order of keys and any undefined value count too.
      expect(fast.map((json) => JSON.stringify(json))).toEqual(original.map((json) => JSON.stringify(json)));
      expect(fast).toStrictEqual(original);
      expect(objects.length).toBeGreaterThan(0);
    } finally {
      installFastResolve();
    }
  });
});

describe('manifests rendered once and reused', () => {
  // That they equal fresh renders after a whole synth is an invariant (test/invariants.ts), over any config.

  it('are rendered again when the metadata changes, and frozen against callers that would change them', () => {
    const { platform } = synthesizeEnvironment(platformText(), 'dev', undefined, { fresh: true });
    const service = platform.services.find((s) => s.apiObjects.some((object) => object.kind === 'Deployment'))!;
    const object = service.apiObjects.find((o) => o.kind === 'Deployment')!;
    const before = service.render(object);
    expect(Object.isFrozen(before.metadata)).toBe(true);
    expect(() => (before.metadata.name = 'other')).toThrow(TypeError);
    object.metadata.addAnnotation('example.com/changed', 'yes');
    expect(service.render(object).metadata.annotations['example.com/changed']).toBe('yes');
    expect(before.metadata.annotations?.['example.com/changed']).toBeUndefined();
  });
});
