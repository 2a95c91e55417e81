/** `npm run diff`: a fresh synth against the committed k8s/, per environment, Application and field. */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { colours } from '../lib/util/colours';
import { diffTrees, diffValues, EnvironmentDiff } from '../lib/output/diff';
import { formatField, formatMarkdown, formatText, formatValue, inlineChange } from '../lib/output/diff-format';
import { refusedUpdate } from '../lib/output/refused-updates';
import { GitTreeOptions, OutputTree, readGitTreeWhile, treeOf } from '../lib/output/output-tree';
import { UserError } from '../lib/util/errors';
import { npmCommandArgs } from '../lib/util/npm-scripts';
import { SynthesizedEnvironment, synthesizeEnvironment } from '../lib/output/synthesize';
import { writeOutput } from '../lib/output/writer';
import { main as diffMain } from '../scripts/diff';
import { BUILTIN_CATALOG } from '../charts/catalog';
import { captureOutputAsync, platformObject, parseText, ROOT, tempDir, toYamlText } from './support';

const NEW_APP = {
  image: 'docker.io/traefik/whoami:v1.10.1',
  ports: { http: 8080 },
  probes: { readiness: { http: { port: 'http' } } },
  resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
};

/** The example with three changes in dev: RabbitMQ 1 -> 3 replicas, a new app, Node-RED removed. */
function changedConfig(): Record<string, any> {
  const config = platformObject();
  config.environments.dev.services.rabbitmq = { ...config.environments.dev.services.rabbitmq, replicas: 3 };
  config.apps.whoami = NEW_APP;
  delete config.apps['node-red'];
  return config;
}

const devEnvironments = new Map<string, SynthesizedEnvironment>();

/** The dev environment of a config, synthesized once per config (shared: read-only). */
function devEnvironment(config: Record<string, any>): SynthesizedEnvironment {
  const text = toYamlText(config);
  let env = devEnvironments.get(text);
  if (!env) {
    env = synthesizeEnvironment('dev', parseText(text, 'homelab.yaml').environments.get('dev')!, BUILTIN_CATALOG);
    devEnvironments.set(text, env);
  }
  return env;
}

const PLAIN = colours({ isTTY: false });
const CONTEXT = { base: 'HEAD (abc1234)', outdir: 'k8s' };

describe('diffTrees on a known change', () => {
  let diff: EnvironmentDiff[];
  beforeAll(() => {
    diff = diffTrees(treeOf([devEnvironment(platformObject())]), treeOf([devEnvironment(changedConfig())]));
  });
  const application = (name: string) => diff[0].applications.find((a) => a.application === name);

  it('reports exactly the Applications that change, with how', () => {
    expect(diff.map((env) => [env.environment, env.kind])).toEqual([['dev', 'changed']]);
    expect(diff[0].applications.map((a) => [a.application, a.kind])).toEqual([
      // The apps' Namespaces come from the platform (docs/adr/0022): one added, one removed.
      ['app-namespaces', 'changed'],
      ['apps', 'changed'],
      // node-red's UI was exposed: its DNS record goes.
      ['external-dns', 'changed'],
      // node-red depended on it: the NetworkPolicy letting node-red in goes.
      ['home-assistant', 'changed'],
      ['node-red', 'removed'],
      ['rabbitmq', 'changed'],
      // node-red's route, its middlewares and its Certificate go with it.
      ['traefik', 'changed'],
      // The end-to-end verification replays the new app's checkpoint instead of the removed one's.
      ['verification', 'changed'],
      ['whoami', 'added'],
    ]);
  });

  it('a replica change is the changed field with both values (and, above one, a disruption budget)', () => {
    const rabbitmq = application('rabbitmq')!;
    expect(rabbitmq.resources.map((r) => [r.resource, r.kind])).toEqual([
      ['PodDisruptionBudget/rabbitmq/rabbitmq', 'added'],
      ['RabbitmqCluster/rabbitmq/rabbitmq', 'changed'],
    ]);
    expect(rabbitmq.resources[1].fields).toContainEqual({ path: 'spec.replicas', kind: 'changed', before: 1, after: 3 });
  });

  it('a new service adds its Application and all its resources; a removed one removes them', () => {
    const added = application('whoami')!;
    expect(added.resources.length).toBeGreaterThan(0);
    expect(added.resources.every((r) => r.kind === 'added')).toBe(true);
    expect(added.resources.map((r) => r.resource)).toEqual(expect.arrayContaining(['Deployment/whoami/whoami', 'Service/whoami/whoami']));
    const removed = application('node-red')!;
    expect(removed.resources.every((r) => r.kind === 'removed')).toBe(true);
    expect(removed.resources.map((r) => r.resource)).toEqual(expect.arrayContaining(['Deployment/node-red/node-red']));
    expect(application('app-namespaces')!.resources.map((r) => [r.resource, r.kind])).toEqual([
      ['Namespace/node-red', 'removed'],
      ['Namespace/whoami', 'added'],
    ]);
  });

  it('the app of apps gains and loses the child Applications; a sorted list changes by one item each', () => {
    const apps = application('apps')!;
    expect(apps.resources.filter((r) => r.kind !== 'changed').map((r) => [r.resource, r.kind])).toEqual([
      ['Application/argocd/node-red', 'removed'],
      ['Application/argocd/whoami', 'added'],
    ]);
    const project = apps.resources.find((r) => r.resource === 'AppProject/argocd/platform-dev')!;
    expect(project.fields.map((f) => [f.kind, f.path.replace(/\[\d+\]/, '[i]')])).toEqual([
      ['removed', 'spec.destinations[i]'],
      ['added', 'spec.destinations[i]'],
    ]);
    expect(project.fields.map((f) => (f.before ?? f.after) as { namespace: string }).map((d) => d.namespace)).toEqual(['node-red', 'whoami']);
  });

  it('text: per environment and Application, resources marked + - ~, changed fields under them', () => {
    const text = formatText(diff, CONTEXT, PLAIN);
    expect(text).toMatch(/^dev: \d+ resources added, \d+ removed, \d+ changed$/m);
    expect(text).toMatch(/^ {2}- node-red \(Application removed, \d+ resources\)$/m);
    expect(text).toMatch(/^ {2}\+ whoami \(new Application, \d+ resources\)$/m);
    expect(text).toMatch(/^ {2}~ rabbitmq\n(?: {6}.*\n)*? {6}~ RabbitmqCluster\/rabbitmq\/rabbitmq\n(?: {10}.*\n)* {10}spec\.replicas: 1 -> 3$/m);
    expect(text).toMatch(/^Against HEAD \(abc1234\): .* in 9 Applications of 1 environment$/m);
    expect(text).not.toMatch(/\x1b\[/);
  });

  it('markdown: an overview table, a heading per environment, a table per Application, fields in <details>', () => {
    const markdown = formatMarkdown(diff, CONTEXT);
    expect(markdown).toMatch(/^\| Application \| dev \|$/m);
    expect(markdown).toMatch(/^\| `whoami` \| new \(\d+\) \|$/m);
    expect(markdown).toMatch(/^\| `node-red` \| removed \(\d+\) \|$/m);
    expect(markdown).toMatch(/^\| `rabbitmq` \| \+1 ~1 \|$/m);
    expect(markdown).toMatch(/^#### dev$/m);
    expect(markdown).toMatch(/^\*\*`rabbitmq`\*\*\n\n\| \| resource \| change \|\n\|---\|---\|---\|\n(?:\|.*\n)*?\| ~ \| `RabbitmqCluster\/rabbitmq\/rabbitmq` \| .*`spec\.replicas`/m);
    expect(markdown).toContain('- `spec.replicas`: `1` → `3`');
    expect(markdown.match(/<details>/g)?.length).toBe(markdown.match(/<\/details>/g)?.length);
    expect(markdown).toMatch(/<details><summary>field changes<\/summary>/);
  });

  it("markdown fits a limit (GitHub's comment limit by default): it leaves out details in steps, saying so at its top", () => {
    const full = formatMarkdown(diff, CONTEXT, { maxChars: Infinity });
    expect(formatMarkdown(diff, CONTEXT)).toBe(full);
    expect(full).not.toContain('_Left out');
    const short = formatMarkdown(diff, CONTEXT, { maxChars: full.length - 1 });
    expect(short.length).toBeLessThan(full.length);
    expect(short).toMatch(new RegExp(`^_Left out to fit ${full.length - 1 >= 1000 ? '\\d+,' : ''}\\d+ characters: the field changes`, 'm'));
  });

  it('markdown: at every limit the most detailed report that fits, the field changes of the first Applications kept longest', () => {
    /** A changed ConfigMap per Application, with `fields[i]` changed fields; `tags` adds an added Application. */
    const synthetic = (fields: number[]): EnvironmentDiff[] => [
      {
        environment: 'dev',
        kind: 'changed',
        applications: [
          ...fields.map((count, i) => ({
            application: `app-${String(i).padStart(2, '0')}`,
            kind: 'changed' as const,
            resources: [{ file: 'c.yaml', resource: `ConfigMap/app-${i}/settings`, kind: 'changed' as const, fields: Array.from({ length: count }, (_, f) => ({ path: `data.key${f}`, kind: 'changed' as const, before: 'a', after: 'b' })) }],
          })),
          { application: 'zz-new', kind: 'added' as const, resources: [{ file: 'd.yaml', resource: 'Deployment/zz/zz', kind: 'added' as const, fields: [] }] },
        ],
      },
    ];
    const leftOut = (text: string) => /^_Left out to fit [\d,]+ characters: (.*)\. The same command with `--format text` shows all of it\._$/m.exec(text)?.[1];
    const LEVELS = ['the field changes', 'the resources and their field changes', 'the sections per environment', 'all but the totals'];
    /** How much a report leaves out: 0 nothing, then the field changes of more and more Applications, then each level. */
    const detail = (text: string) => {
      const left = leftOut(text);
      if (left === undefined) return 0;
      const last = /^the field changes of the last (?:Application|(\d+) Applications) of the \d+ with field changes$/.exec(left);
      if (last) return Number(last[1] ?? 1);
      return 1000 + LEVELS.indexOf(left);
    };
    const blocks = (text: string) => [...text.matchAll(/\*\*`(app-\d+)`\*\*[^*]*?<details><summary>field changes/g)].map((m) => m[1]);
    for (const fields of [[], [1], [1, 1, 1], Array.from({ length: 8 }, () => 1), [6, 2, 9, 3, 4]]) {
      const report = synthetic(fields);
      const full = formatMarkdown(report, CONTEXT, { maxChars: Infinity });
      const totals = formatMarkdown(report, CONTEXT, { maxChars: 1 });
      expect(detail(totals), String(fields)).toBe(1003);
      const seen = new Set<number>();
      let previous = full;
      // Checked at every limit, the problems collected (an expect per check and limit is most of the time).
      const problems: string[] = [];
      const check = (ok: boolean, what: string) => ok || problems.push(what);
      const fullBlocks = blocks(full).join(' ');
      // Down to the totals' length: below it every limit gives the totals.
      for (let maxChars = full.length; maxChars >= totals.length - 1; maxChars -= 1) {
        const text = formatMarkdown(report, CONTEXT, { maxChars });
        const at = `${fields} at ${maxChars}`;
        // Within the limit, down to the totals, which always come whole.
        check(text.length <= maxChars || detail(text) === 1003, `${at}: ${text.length} characters`);
        // Less detail only as the limit shrinks, never more.
        check(detail(text) >= detail(previous), `${at}: more detail than at the limit above`);
        // The most detailed that fits: a report that fitted the limit above and fits this one is kept.
        check(!(previous.length <= maxChars && String(maxChars).length === String(maxChars + 1).length) || detail(text) === detail(previous), `${at}: less detail than fits`);
        check(text.split('<details>').length === text.split('</details>').length, `${at}: unbalanced <details>`);
        check(text.includes('Against HEAD (abc1234): '), `${at}: no totals`);
        // The field changes kept are the first Applications'.
        const kept = blocks(text).join(' ');
        check(fullBlocks.startsWith(kept), `${at}: kept the field changes of ${kept}`);
        seen.add(detail(text));
        previous = text;
      }
      expect(problems).toEqual([]);
      expect(detail(previous), String(fields)).toBe(1003);
      // Where each Application's field changes are longer than the note, every one of them goes on its own step, then all.
      if (fields.length > 1 && fields.every((count) => count >= 2)) {
        expect([...seen].filter((d) => d > 0 && d <= 1000), String(fields)).toEqual([...fields.slice(1).map((_, i) => i + 1), 1000]);
      }
    }
  });

  it('an environment only one tree holds is added or removed, with its Applications; unchanged ones are left out', () => {
    const base = new Map([
      ['dev/a/x.yaml', 'kind: A\n'],
      ['dev/b/y.yaml', 'kind: B\n'],
      ['old/a/x.yaml', 'kind: A\n'],
    ]);
    const head = new Map([
      ['dev/a/x.yaml', 'kind: A\n'],
      ['dev/b/y.yaml', 'kind: C\n'],
      ['new/c/z.yaml', 'kind: C\n'],
    ]);
    expect(diffTrees(base, head).map((env) => [env.environment, env.kind, env.applications.map((a) => [a.application, a.kind, a.resources.map((r) => r.kind)])])).toEqual([
      ['dev', 'changed', [['b', 'changed', ['changed']]]],
      ['new', 'added', [['c', 'added', ['added']]]],
      ['old', 'removed', [['a', 'removed', ['removed']]]],
    ]);
  });

  it('nothing to report for identical trees', () => {
    const tree = treeOf([devEnvironment(platformObject())]);
    expect(diffTrees(tree, new Map(tree))).toEqual([]);
    expect(formatMarkdown([], CONTEXT)).toBe('### `k8s/` changes\n\nNo changes to k8s/ against HEAD (abc1234).\n');
  });
});

describe('field-level differences', () => {
  it('matches list items by name, quotes keys that are not identifiers, reports added and removed keys', () => {
    const before = {
      metadata: { labels: { 'app.kubernetes.io/name': 'a' } },
      spec: { containers: [{ name: 'app', image: 'x:1' }, { name: 'sidecar', image: 's:1' }] },
    };
    const after = {
      metadata: { labels: { 'app.kubernetes.io/name': 'b', extra: 'y' } },
      spec: { containers: [{ name: 'sidecar', image: 's:1' }, { name: 'app', image: 'x:2' }], paused: true },
    };
    expect(diffValues(before, after, [])).toEqual([
      { path: 'metadata.labels["app.kubernetes.io/name"]', kind: 'changed', before: 'a', after: 'b' },
      { path: 'metadata.labels.extra', kind: 'added', after: 'y' },
      { path: 'spec.containers[name=app].image', kind: 'changed', before: 'x:1', after: 'x:2' },
      { path: 'spec.paused', kind: 'added', after: true },
    ]);
    expect(diffValues({ a: { b: 1 } }, {}, [])).toEqual([{ path: 'a', kind: 'removed', before: { b: 1 } }]);
  });

  it('lists without names by index: an edited item is a change, an inserted one an addition', () => {
    expect(diffValues({ args: ['--a', '--b=1', '--c'] }, { args: ['--a', '--b=2', '--c'] }, [])).toEqual([
      { path: 'args[1]', kind: 'changed', before: '--b=1', after: '--b=2' },
    ]);
    expect(diffValues({ ports: [80, 443] }, { ports: [80, 8080, 443] }, [])).toEqual([{ path: 'ports[1]', kind: 'added', after: 8080 }]);
  });

  it('formats short values whole and cuts long ones', () => {
    expect(formatField({ path: 'spec.replicas', kind: 'changed', before: 1, after: 3 })).toBe('spec.replicas: 1 -> 3');
    expect(formatField({ path: 'data.x', kind: 'added', after: { a: 1 } })).toBe('+ data.x: {"a":1}');
    const long = formatValue('y'.repeat(500));
    expect(long.length).toBe(60);
    expect(long.endsWith('…')).toBe(true);
  });

  it('shows a change inside a long one-line value in place, with context around it', () => {
    const image = (tag: string) => `registry.example.net/platform/very/long/repository/path/service:${tag}`;
    expect(formatField({ path: 'image', kind: 'changed', before: image('1.2.3'), after: image('1.2.4') })).toBe(
      'image: …ry/path/service:1.2.[-3-]{+4+}"',
    );
    expect(inlineChange('abc', 'abXc')).toBe('ab{+X+}c');
    expect(inlineChange('abXc', 'abc')).toBe('ab[-X-]c');
    // A long changed part is cut in its middle, so both ends stay visible.
    const changed = inlineChange(`a${'x'.repeat(200)}b`, 'ab');
    expect(changed).toMatch(/^a\[-x{40}…x{40}-\]b$/);
  });

  it('lists the changed lines of a multi-line value (a script, a config file)', () => {
    const script = (middle: string) => `set -eu\necho start\n${middle}\necho done\n`;
    expect(formatField({ path: 'command[2]', kind: 'changed', before: script('check a'), after: script('check b\ncheck c') })).toBe(
      ['command[2]: from line 3: 1 line -> 2', '  ~ check [-a-]{+b+}', '  + check c'].join('\n'),
    );
    const many = (prefix: string) => Array.from({ length: 20 }, (_, i) => `${prefix}${i}`).join('\n');
    const lines = formatField({ path: 'data.conf', kind: 'changed', before: many('old '), after: many('new ') }).split('\n');
    expect(lines[0]).toBe('data.conf: from line 1: 20 lines -> 20');
    expect(lines.at(-1)).toBe('  … and 12 more lines');
    expect(lines).toHaveLength(1 + 8 + 1);
  });
});

describe('changes Kubernetes refuses in place', () => {
  const resource = (apiVersion: string, kind: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): any => ({
    apiVersion,
    kind,
    metadata: { name: 'x', namespace: 'ns', ...metadata },
    ...spec,
  });
  const refused = (before: any, after: any) => refusedUpdate(before, after, diffValues(before, after, []));
  const storageClass = (replicas: string, expansion = true) =>
    resource('storage.k8s.io/v1', 'StorageClass', { provisioner: 'driver.longhorn.io', allowVolumeExpansion: expansion, parameters: { numberOfReplicas: replicas } }, { namespace: undefined });
  const claim = (size: string, storageClassName = 'longhorn') =>
    resource('v1', 'PersistentVolumeClaim', { spec: { accessModes: ['ReadWriteOnce'], storageClassName, resources: { requests: { storage: size } } } });
  const statefulSet = (replicas: number, size: string) =>
    resource('apps/v1', 'StatefulSet', { spec: { replicas, template: { metadata: { labels: { a: 'b' } } }, volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { resources: { requests: { storage: size } } } }] } });
  const deployment = (selector: string, image: string, metadata: Record<string, unknown> = {}) =>
    resource('apps/v1', 'Deployment', { spec: { selector: { matchLabels: { app: selector } }, template: { spec: { containers: [{ name: 'c', image }] } } } }, metadata);

  it("a StorageClass's parameters: delete it first; what may change passes", () => {
    expect(refused(storageClass('1'), storageClass('2'))).toBe(
      'Kubernetes refuses to change parameters.numberOfReplicas in place: delete it before the sync (`kubectl delete storageclass x`), and Argo CD creates it anew; the volumes it provisioned keep their settings, volumes provisioned after get the new ones',
    );
    expect(refused(storageClass('1'), storageClass('1', false))).toBeUndefined();
  });

  it("a claim's storage may grow, not shrink, and nothing else of its spec may change", () => {
    expect(refused(claim('1Gi'), claim('1536Mi'))).toBeUndefined();
    expect(refused(claim('2Gi'), claim('1Gi'))).toMatch(/^Kubernetes refuses to change spec\.resources\.requests\.storage in place: a claim's storage can only grow.*`kubectl delete pvc x -n ns`/);
    expect(refused(claim('1Gi'), claim('1Gi', 'longhorn-scratch'))).toMatch(/^Kubernetes refuses to change spec\.storageClassName in place/);
  });

  it('a StatefulSet: replicas and its pod template change; its claim templates need it deleted without its pods', () => {
    expect(refused(statefulSet(1, '1Gi'), statefulSet(3, '1Gi'))).toBeUndefined();
    expect(refused(statefulSet(1, '1Gi'), statefulSet(1, '2Gi'))).toMatch(/^Kubernetes refuses to change spec\.volumeClaimTemplates.*\(`kubectl delete statefulset x -n ns --cascade=orphan`\)/);
  });

  it('compare a claim\'s sizes across units, and take the fields Kubernetes lets change', () => {
    expect(refused(claim('1Gi'), claim('1024Mi'))).toBeUndefined();
    expect(refused(claim('1Gi'), claim('1G'))).toMatch(/^Kubernetes refuses to change spec\.resources\.requests\.storage/);
    const withClass = (name: string) => ({ ...claim('1Gi'), spec: { ...claim('1Gi').spec, volumeAttributesClassName: name } });
    expect(refused(withClass('fast'), withClass('slow'))).toBeUndefined();
    const ordinals = (start: number) => ({ ...statefulSet(1, '1Gi'), spec: { ...statefulSet(1, '1Gi').spec, ordinals: { start }, revisionHistoryLimit: start } });
    expect(refused(ordinals(0), ordinals(1))).toBeUndefined();
    // A parameter whose key is not an identifier: its path is parameters["..."].
    const fsType = (type: string) => ({ ...storageClass('1'), parameters: { 'csi.storage.k8s.io/fstype': type } });
    expect(refused(fsType('ext4'), fsType('xfs'))).toMatch(/^Kubernetes refuses to change parameters\["csi\.storage\.k8s\.io\/fstype"\] in place/);
  });

  it("a DaemonSet's selector and a binding's role", () => {
    const daemonSet = (app: string) => resource('apps/v1', 'DaemonSet', { spec: { selector: { matchLabels: { app } } } });
    expect(refused(daemonSet('a'), daemonSet('b'))).toMatch(/`kubectl delete daemonset x -n ns`/);
    const binding = (role: string, subject: string) =>
      resource('rbac.authorization.k8s.io/v1', 'RoleBinding', { roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role }, subjects: [{ kind: 'ServiceAccount', name: subject }] });
    expect(refused(binding('reader', 'a'), binding('reader', 'b'))).toBeUndefined();
    expect(refused(binding('reader', 'a'), binding('writer', 'a'))).toBe(
      'Kubernetes refuses to change roleRef.name in place: delete it before the sync (`kubectl delete rolebinding x -n ns`), and Argo CD creates it anew',
    );
  });

  it("a Deployment's selector, and not its pods; a hook, created anew at each sync, never", () => {
    expect(refused(deployment('a', 'img:1'), deployment('a', 'img:2'))).toBeUndefined();
    expect(refused(deployment('a', 'img:1'), deployment('b', 'img:1'))).toMatch(/^Kubernetes refuses to change spec\.selector\.matchLabels\.app in place/);
    for (const annotations of [{ 'argocd.argoproj.io/hook': 'PostSync' }, { 'helm.sh/hook': 'pre-install' }]) {
      expect(refused(deployment('a', 'img:1', { annotations }), deployment('b', 'img:1', { annotations }))).toBeUndefined();
    }
    // Another kind or version is a new object, not an update.
    expect(refused(claim('2Gi'), { ...claim('1Gi'), apiVersion: 'v2' })).toBeUndefined();
  });

  it('are marked in the diff, in text and Markdown, and counted in its summary', () => {
    const config = platformObject();
    config.services.longhorn.storageClasses['longhorn-scratch'].reclaimPolicy = 'Retain';
    const changed = diffTrees(treeOf([devEnvironment(platformObject())]), treeOf([devEnvironment(config)]));
    const resources = changed.flatMap((env) => env.applications.flatMap((app) => app.resources));
    expect(resources.filter((r) => r.refused).map((r) => r.resource)).toEqual(['StorageClass/longhorn-scratch']);
    const text = formatText(changed, CONTEXT, PLAIN);
    expect(text).toMatch(/^ {6}~ StorageClass\/longhorn-scratch\n {10}! Kubernetes refuses to change reclaimPolicy in place: delete it before the sync/m);
    expect(text).toMatch(/; Kubernetes refuses 1 of the changes in place \(marked !, with what to do\)\n$/);
    const markdown = formatMarkdown(changed, CONTEXT);
    expect(markdown).toContain('| ~ | `StorageClass/longhorn-scratch` | **!** `reclaimPolicy` |');
    const beforeTheSync = '**! Before the sync:**\n\n- `dev` `StorageClass/longhorn-scratch`: Kubernetes refuses to change reclaimPolicy in place: delete it before the sync';
    expect(markdown).toContain(beforeTheSync);
    // Never left out to fit: with room for little more than the totals, it is still there.
    const tight = formatMarkdown(changed, CONTEXT, { maxChars: 600 });
    expect(tight).toContain('_Left out to fit');
    expect(tight).toContain(beforeTheSync);
  });
});

/** git in `dir`, committing as a test user. */
const gitIn = (dir: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.net', ...args], { cwd: dir, stdio: 'pipe' });

describe('npm run diff against git', () => {
  let repo: string;
  let changedFile: string;
  let exampleFile: string;
  const git = (...args: string[]) => gitIn(repo, ...args);
  const run = (...args: string[]) => captureOutputAsync(() => diffMain(['--env', 'dev', ...args], { cwd: repo }));

  beforeAll(() => {
    // A repository whose first commit holds the example's k8s/dev and whose second holds the changed one.
    repo = tempDir('homelab-diff-');
    exampleFile = join(repo, 'example.yaml');
    changedFile = join(repo, 'changed.yaml');
    writeFileSync(exampleFile, toYamlText(platformObject()));
    writeFileSync(changedFile, toYamlText(changedConfig()));
    git('init', '-q');
    writeOutput([devEnvironment(platformObject())], { outdir: join(repo, 'k8s') });
    git('add', '-A');
    git('commit', '-qm', 'example');
    writeOutput([devEnvironment(changedConfig())], { outdir: join(repo, 'k8s') });
    git('commit', '-qam', 'changed');
    git('add', '-A');
    git('commit', '-qm', 'new files');
  });

  /** readGitTreeWhile with work that returns `expected`. */
  const readGitTree = (revision: string, options: GitTreeOptions & { expected?: OutputTree } = {}) =>
    readGitTreeWhile(revision, 'k8s', { cwd: repo, ...options }, () => options.expected ?? new Map<string, string>());

  it('reads the committed tree of a revision, from git only where the contents work gave differ', async () => {
    const committed = treeOf([devEnvironment(platformObject())]);
    const commit = git('rev-parse', 'HEAD~2').toString('utf8').trim();
    expect(await readGitTree('HEAD~2')).toEqual({ commit, tree: committed, result: new Map() });
    expect(await readGitTree('HEAD~2', { expected: committed })).toEqual({ commit, tree: committed, result: committed });
    // Expected contents that differ, are missing, or are extra: the commit's own are read.
    const [first, second] = [...committed.keys()];
    const expected = new Map([...committed, [first, 'kind: Changed\n'], ['dev/extra/file.yaml', 'kind: Extra\n']]);
    expected.delete(second);
    expect((await readGitTree('HEAD~2', { expected })).tree).toEqual(committed);
    expect((await readGitTree('HEAD~2', { environments: ['dev'], expected })).tree).toEqual(committed);
    expect((await readGitTree('HEAD~2', { environments: ['prod'] })).tree).toEqual(new Map());
  });

  it('reads the whole repository as the output directory where --out is its root', async () => {
    const whole = await readGitTreeWhile('HEAD', '.', { cwd: repo }, () => new Map<string, string>());
    expect([...whole.tree.keys()]).toEqual(expect.arrayContaining(['example.yaml', 'changed.yaml', ...[...treeOf([devEnvironment(changedConfig())]).keys()].map((path) => `k8s/${path}`)]));
    expect((await readGitTreeWhile('HEAD', '.', { cwd: repo, environments: ['k8s'] }, () => new Map<string, string>())).tree.size).toBeGreaterThan(0);
  });

  it("names what failed, work's own error first, and leaves no file behind", async () => {
    const temporary = () => readdirSync(tmpdir()).filter((name) => name.startsWith(`homelab-git-${process.pid}-`));
    await expect(readGitTree('no-such-branch')).rejects.toThrow(/^--base no-such-branch: not a commit in this git repository \(git: .+\)$/);
    await expect(readGitTree(git('rev-parse', 'HEAD:k8s').toString('utf8').trim())).rejects.toThrow(/: not a commit in this git repository \(git: .+\)$/);
    const failing = () => {
      throw new UserError(['the config is wrong']);
    };
    await expect(readGitTreeWhile('no-such-branch', 'k8s', { cwd: repo }, failing)).rejects.toThrow(/^the config is wrong$/);
    // Where it cannot start: reported as it comes, thrown (a file) or as an event (missing).
    const file = join(repo, 'example.yaml');
    await expect(readGitTreeWhile('HEAD', 'k8s', { cwd: file }, () => new Map())).rejects.toThrow(new RegExp(`^cannot start git in ${file} \\(spawn ENOTDIR\\)$`));
    await expect(readGitTreeWhile('HEAD', 'k8s', { cwd: join(repo, 'missing') }, () => new Map())).rejects.toThrow(/^cannot start git in .*missing \(spawn sh ENOENT\)$/);
    // A name that is both a branch and a tag resolves with a warning, which is not the listing's error.
    git('branch', 'both', 'HEAD~1');
    git('tag', 'both', 'HEAD~2');
    expect((await readGitTree('both')).commit).toBe(git('rev-parse', 'refs/tags/both').toString('utf8').trim());
    await expect(readGitTreeWhile('both', '../elsewhere', { cwd: repo }, () => new Map())).rejects.toThrow(/^cannot list \.\.\/elsewhere\/ in both \(git: .*outside repository/);
    expect(temporary()).toEqual([]);
  });

  // What a test stubs (vi.stubEnv) is restored after it, also where it fails.
  afterEach(() => vi.unstubAllEnvs());

  it('reads through pipes where the temporary folder takes no file, and closes every file it opened', async () => {
    const openFiles = () => readdirSync('/dev/fd').length;
    const committed = treeOf([devEnvironment(platformObject())]);
    const before = openFiles();
    vi.stubEnv('TMPDIR', join(repo, 'no-such-folder'));
    expect((await readGitTree('HEAD~2')).tree).toEqual(committed);
    await expect(readGitTree('no-such-branch')).rejects.toThrow(/not a commit/);
    vi.unstubAllEnvs();
    expect((await readGitTree('HEAD~2', { expected: committed })).tree).toEqual(committed);
    await expect(readGitTree('no-such-branch')).rejects.toThrow(/not a commit/);
    await expect(readGitTreeWhile('HEAD', 'k8s', { cwd: join(repo, 'example.yaml') }, () => new Map())).rejects.toThrow(/ENOTDIR/);
    expect(openFiles()).toBe(before);
  });

  it('says so where git is missing or was killed', async () => {
    const bin = tempDir('homelab-diff-bin-');
    symlinkSync(execFileSync('sh', ['-c', 'command -v sh']).toString('utf8').trim(), join(bin, 'sh'));
    vi.stubEnv('PATH', bin);
    await expect(readGitTree('HEAD')).rejects.toThrow(/^cannot run git: .*git.*not found/);
    vi.unstubAllEnvs();
    // A git that ends by a signal when it lists.
    const realGit = execFileSync('sh', ['-c', 'command -v git']).toString('utf8').trim();
    writeFileSync(join(bin, 'git'), `#!/bin/sh\ncase " $* " in *" ls-tree "*) kill -9 $$ ;; esac\nexec ${realGit} "$@"\n`, { mode: 0o755 });
    vi.stubEnv('PATH', `${bin}:${process.env.PATH}`);
    await expect(readGitTree('HEAD')).rejects.toThrow(/^cannot list k8s\/ in HEAD \(git ended by SIGKILL\)$/);
  });

  it.each(['sha1', 'sha256'])('reads no blob whose object is that of the expected content (a repository of %s objects)', async (format) => {
    const dir = tempDir('homelab-diff-objects-');
    const inRepo = (...args: string[]) => gitIn(dir, ...args);
    inRepo('init', '-q', `--object-format=${format}`);
    const tree = new Map([
      ['dev/a/x.yaml', 'kind: A # é\n'],
      ['dev/b/a\tfile name.yaml', 'kind: B\n'],
    ]);
    writeOutput([{ environment: 'dev', files: new Map([...tree].map(([path, content]) => [path.slice('dev/'.length), content])) }], { outdir: join(dir, 'k8s') });
    inRepo('add', '-A');
    inRepo('commit', '-qm', format);
    const read = (expected: OutputTree = new Map()) => readGitTreeWhile('HEAD', 'k8s', { cwd: dir }, () => expected);
    expect((await read()).tree).toEqual(tree);
    // The blobs gone from the repository (loose objects; the trees stay): only a read of one fails.
    for (const line of inRepo('ls-tree', '-r', 'HEAD').toString('utf8').trim().split('\n')) {
      const object = line.split(/\s/)[2];
      rmSync(join(dir, '.git', 'objects', object.slice(0, 2), object.slice(2)));
    }
    expect((await read(tree)).tree).toEqual(tree);
    await expect(read(new Map([...tree, ['dev/a/x.yaml', 'kind: A # e\n']]))).rejects.toThrow(/^cannot read k8s\/ in HEAD \(git: [0-9a-f]+, k8s\/dev\/a\/x\.yaml, is missing\)$/);
  });

  it('exits 0 with no change, 1 with changes (printed), and compares with --base', async () => {
    const same = await run('--config', changedFile);
    expect(same.status).toBe(0);
    expect(same.stdout).toMatch(/^No changes to k8s\/ against HEAD \([0-9a-f]{7}\)$/m);

    const changed = await run('--config', changedFile, '--base', 'HEAD~2');
    expect(changed.status).toBe(1);
    expect(changed.stdout).toMatch(/^ {10}spec\.replicas: 1 -> 3$/m);
    expect(changed.stderr).toBe('');

    const markdown = await run('--config', exampleFile, '--format', 'markdown');
    expect(markdown.status).toBe(1);
    expect(markdown.stdout).toContain('- `spec.replicas`: `3` → `1`');
    const short = await run('--config', exampleFile, '--format', 'markdown', '--max-chars', '400');
    expect(short.status).toBe(1);
    expect(short.stdout.length).toBeLessThanOrEqual(400);
    expect(short.stdout).toMatch(/^_Left out to fit 400 characters: /m);
    expect(short.stderr).toBe('');
    // Shorter than the totals: they come, and a warning says so.
    const tiny = await run('--config', exampleFile, '--format', 'markdown', '--max-chars', '10');
    expect(tiny.status).toBe(1);
    expect(tiny.stderr).toMatch(/^warning: the totals alone are \d+ characters, more than --max-chars 10$/m);
  });

  it('exits 2 on a usage, config or git error, naming it', async () => {
    expect(await run('--format', 'html')).toMatchObject({ status: 2, stderr: expect.stringContaining('--format: expected one of text, markdown, received "html"') });
    expect(await run('--max-chars', '400')).toMatchObject({ status: 2, stderr: expect.stringContaining('--max-chars: only with --format markdown') });
    expect(await run('--chart-cache', repo)).toMatchObject({ status: 2, stderr: expect.stringContaining('--chart-cache: only with --rendered') });
    expect(await run('--format', 'markdown', '--max-chars', '4e2')).toMatchObject({ status: 2, stderr: expect.stringContaining('--max-chars: expected a whole number of characters above 0, received "4e2"') });
    expect(await run('--format', 'markdown', '--max-chars', '0')).toMatchObject({ status: 2, stderr: expect.stringContaining('--max-chars: expected a whole number of characters above 0, received "0"') });
    expect(await run('--config', exampleFile, '--base', 'no-such-branch')).toMatchObject({ status: 2, stderr: expect.stringContaining('--base no-such-branch: not a commit') });
    expect(await run('--config', join(repo, 'missing.yaml'))).toMatchObject({ status: 2, stderr: expect.stringContaining('cannot read the config file') });
    expect(await run('--help')).toMatchObject({ status: 0, stdout: expect.stringMatching(/^usage: npm run diff[\s\S]*exit status:\n {2}0 {2}no change\n {2}1 {2}changes/) });
  });
});

describe('the scripts that only run as processes', () => {
  /** Runs a command as `npm run <command>` does, concurrently with the others. */
  const spawnScript = (command: string, args: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [...npmCommandArgs(command), ...args], { cwd: ROOT });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });

  it('bench and import answer --help with exit 0 and a usage error with exit 2, no stack trace, no colour off a terminal', async () => {
    const [benchHelp, importHelp, benchMistake, importMistake] = await Promise.all([
      spawnScript('bench', ['--help']),
      spawnScript('import', ['--help']),
      spawnScript('bench', ['--runs', '3']),
      spawnScript('import', ['extra']),
    ]);
    expect(benchHelp).toMatchObject({ status: 0, stdout: expect.stringMatching(/^usage: npm run bench -- \[--no-tests\]\n/), stderr: '' });
    expect(importHelp).toMatchObject({ status: 0, stdout: expect.stringMatching(/^usage: npm run import \[-- --check\]\n/), stderr: '' });
    expect(benchMistake).toMatchObject({ status: 2, stdout: '', stderr: "error: Unknown option '--runs'\nusage: npm run bench -- [--no-tests] (--help for the options)\n" });
    expect(importMistake).toMatchObject({ status: 2, stdout: '', stderr: expect.stringMatching(/^error: Unexpected argument 'extra'.*\nusage: npm run import /) });
  });
});
