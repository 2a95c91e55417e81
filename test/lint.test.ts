/**
 * The policy linter (`npm run lint:k8s`): the platform fixture passes with every exception
 * used; a seeded violation of each rule makes exactly that rule fire; workloads of every kind
 * are found; an unused exception fails; the CLI prints `<env>/<file>: <rule>: <message>`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { LINT_EXCEPTIONS } from '../lib/tools/lint/exceptions';
import { lintObjects, lintTree, LintOptions } from '../lib/tools/lint/lint';
import type { LintedObject } from '../lib/tools/lint/model';
import { RULES } from '../lib/tools/lint/rules';
import { objectsOf, OutputTree } from '../lib/tools/lint/tree';
import { main } from '../scripts/lint';
import { captureOutput, ROOT, synthesizePlatformFixture, tempDir } from './support';

const example: OutputTree = new Map(synthesizePlatformFixture().map((env) => [env.environment, env.files]));
/** Prod alone, which has every service: the seeded trees are changes of it. */
const prodOnly: OutputTree = new Map([['prod', example.get('prod')!]]);

type Edit = (tree: Map<string, Map<string, string>>) => void;

/** A copy of prod with edits to its files. */
function seeded(...edits: Edit[]): OutputTree {
  const tree = new Map([...prodOnly].map(([env, files]) => [env, new Map(files)]));
  for (const edit of edits) edit(tree);
  return tree;
}

/** Changes one manifest of prod in place (the file holds one document). */
function edit(path: string, change: (manifest: any) => void): Edit {
  return (tree) => {
    const files = tree.get('prod')!;
    const manifest = parse(files.get(path)!);
    expect(manifest, path).toBeTruthy();
    change(manifest);
    files.set(path, stringify(manifest));
  };
}

const add = (path: string, manifest: unknown): Edit => (tree) => void tree.get('prod')!.set(path, stringify(manifest));
const remove = (path: string): Edit => (tree) => {
  expect(tree.get('prod')!.delete(path), path).toBe(true);
};

const TRITON = 'triton/deployment-triton.yaml';
const tritonPod = (change: (pod: any) => void) => edit(TRITON, (d) => change(d.spec.template.spec));
const tritonContainer = (change: (container: any) => void) => tritonPod((pod) => change(pod.containers[0]));

/** One seeded violation per rule: the edit, and the file it must be reported on. */
const SEEDS: Readonly<Record<string, { edit: Edit; file: string }>> = {
  'unset-cpu-requirements': { edit: tritonContainer((c) => delete c.resources.requests.cpu), file: TRITON },
  'unset-memory-requirements': { edit: tritonContainer((c) => delete c.resources.limits.memory), file: TRITON },
  'latest-tag': { edit: tritonContainer((c) => (c.image = 'nvcr.io/nvidia/tritonserver:latest')), file: TRITON },
  tagNotSpecified: { edit: tritonContainer((c) => (c.image = 'nvcr.io/nvidia/tritonserver')), file: TRITON },
  'run-as-non-root': { edit: tritonPod((pod) => (pod.securityContext.runAsNonRoot = false)), file: TRITON },
  'privilege-escalation-container': { edit: tritonContainer((c) => (c.securityContext.allowPrivilegeEscalation = true)), file: TRITON },
  'privileged-container': { edit: tritonContainer((c) => (c.securityContext.privileged = true)), file: TRITON },
  insecureCapabilities: { edit: tritonContainer((c) => (c.securityContext.capabilities = { drop: ['ALL'], add: ['SYS_ADMIN'] })), file: TRITON },
  'container-seccomp-profile': { edit: tritonPod((pod) => (pod.securityContext.seccompProfile = { type: 'Unconfined' })), file: TRITON },
  'no-read-only-root-fs': { edit: tritonContainer((c) => (c.securityContext.readOnlyRootFilesystem = false)), file: TRITON },
  'no-liveness-probe': { edit: tritonContainer((c) => delete c.livenessProbe), file: TRITON },
  'no-readiness-probe': { edit: tritonContainer((c) => delete c.readinessProbe), file: TRITON },
  'host-network': { edit: tritonPod((pod) => (pod.hostNetwork = true)), file: TRITON },
  'host-pid': { edit: tritonPod((pod) => (pod.hostPID = true)), file: TRITON },
  'host-ipc': { edit: tritonPod((pod) => (pod.hostIPC = true)), file: TRITON },
  hostPathSet: { edit: tritonPod((pod) => pod.volumes.push({ name: 'host', hostPath: { path: '/var/run' } })), file: TRITON },
  hostPortSet: { edit: tritonContainer((c) => (c.ports[0].hostPort = 8000)), file: TRITON },
  missingPodDisruptionBudget: { edit: remove('rabbitmq/poddisruptionbudget-rabbitmq.yaml'), file: 'rabbitmq/rabbitmqcluster-rabbitmq.yaml' },
  'no-anti-affinity': { edit: edit('rabbitmq/rabbitmqcluster-rabbitmq.yaml', (c) => delete c.spec.affinity), file: 'rabbitmq/rabbitmqcluster-rabbitmq.yaml' },
  'dangling-service': {
    edit: edit('triton/service-triton.yaml', (s) => (s.spec.selector['app.kubernetes.io/component'] = 'serer')),
    file: 'triton/service-triton.yaml',
  },
  'dangling-servicemonitor': {
    edit: edit('triton/servicemonitor-triton-server.yaml', (m) => (m.spec.endpoints[0].port = 'metric')),
    file: 'triton/servicemonitor-triton-server.yaml',
  },
  'dangling-podmonitor': {
    edit: edit('loki/podmonitor-loki-server.yaml', (m) => (m.spec.selector.matchLabels['app.kubernetes.io/component'] = 'read')),
    file: 'loki/podmonitor-loki-server.yaml',
  },
};

/** Each file read once per content: a seeded tree differs from prod in a file or two. */
const readFiles = new Map<string, LintedObject[]>();
function lintSeeded(tree: OutputTree, options: LintOptions = {}) {
  const objects = new Map(
    [...tree].map(([env, files]) => [
      env,
      [...files].flatMap(([path, content]) => {
        const key = `${env}\0${path}\0${content}`;
        let read = readFiles.get(key);
        if (!read) {
          read = objectsOf(env, new Map([[path, content]]));
          readFiles.set(key, read);
        }
        return read;
      }),
    ]),
  );
  return lintObjects(objects, options);
}

const lines = (tree: OutputTree) => lintSeeded(tree).violations.map((v) => `${v.location}: ${v.rule}`);

describe('npm run lint:k8s', () => {
  it('passes the platform fixture, using every exception', () => {
    const report = lintTree(example);
    expect(report.violations).toEqual([]);
    expect(report.environments).toBe(3);
    expect(report.workloads).toBeGreaterThan(40);
    expect(report.excused).toBeGreaterThanOrEqual(LINT_EXCEPTIONS.length);
  });

  it('gives every exception a reason and every rule a distinct id', () => {
    for (const exception of LINT_EXCEPTIONS) expect(exception.reason.length, `${exception.rule} ${exception.resource}`).toBeGreaterThan(20);
    expect(new Set(RULES.map((r) => r.id)).size).toBe(RULES.length);
  });

  it('has a seeded violation for every rule it claims', () => {
    expect(Object.keys(SEEDS).sort()).toEqual(RULES.map((r) => r.id).sort());
  });

  for (const [rule, seed] of Object.entries(SEEDS)) {
    it(`reports a seeded ${rule} violation, and only that`, () => {
      expect(lines(seeded(seed.edit))).toEqual([`prod/${seed.file}: ${rule}`]);
    });
  }

  it('allows host access and root only in the namespaces whose services declare it', () => {
    // Longhorn's namespace is privileged, Home Assistant's (runAsRoot) baseline.
    const longhornJob = edit('longhorn/job-longhorn-checkpoint.yaml', (job) => {
      job.spec.template.spec.hostNetwork = true;
      job.spec.template.spec.volumes.push({ name: 'host', hostPath: { path: '/var/lib/longhorn' } });
    });
    const homeAssistant = edit('home-assistant/deployment-home-assistant.yaml', (d) => (d.spec.template.spec.hostPID = true));
    expect(lines(seeded(longhornJob, homeAssistant))).toEqual(['prod/home-assistant/deployment-home-assistant.yaml: host-pid']);
  });

  it('lints StatefulSets, DaemonSets, Jobs and CronJobs, probing only the long-running ones', () => {
    const deployment = parse(example.get('prod')!.get(TRITON)!);
    const template = deployment.spec.template;
    const metadata = (kind: string) => ({ name: `seed-${kind.toLowerCase()}`, namespace: 'triton' });
    const unprobed = structuredClone(template);
    delete unprobed.spec.containers[0].livenessProbe;
    delete unprobed.spec.containers[0].readinessProbe;
    unprobed.spec.containers[0].image = 'nvcr.io/nvidia/tritonserver:latest';
    const tree = seeded(
      add('seed/statefulset.yaml', { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: metadata('StatefulSet'), spec: { ...deployment.spec, template: unprobed } }),
      add('seed/daemonset.yaml', { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: metadata('DaemonSet'), spec: { selector: deployment.spec.selector, template } }),
      add('seed/job.yaml', { apiVersion: 'batch/v1', kind: 'Job', metadata: metadata('Job'), spec: { template: unprobed } }),
      add('seed/cronjob.yaml', { apiVersion: 'batch/v1', kind: 'CronJob', metadata: metadata('CronJob'), spec: { schedule: '@daily', jobTemplate: { spec: { template: unprobed } } } }),
    );
    expect(lines(tree)).toEqual([
      'prod/seed/cronjob.yaml: latest-tag',
      'prod/seed/job.yaml: latest-tag',
      'prod/seed/statefulset.yaml: latest-tag',
      'prod/seed/statefulset.yaml: no-liveness-probe',
      'prod/seed/statefulset.yaml: no-readiness-probe',
    ]);
  });

  it('lints the pod templates inside RayCluster and RabbitmqCluster', () => {
    const ray = edit('ray/raycluster-ray.yaml', (c) => {
      c.spec.headGroupSpec.template.spec.containers[0].securityContext.allowPrivilegeEscalation = true;
      c.spec.workerGroupSpecs[1].template.spec.containers[0].image = 'docker.io/rayproject/ray:latest';
    });
    const rabbitmq = edit('rabbitmq/rabbitmqcluster-rabbitmq.yaml', (c) => {
      delete c.spec.resources.limits.cpu;
      c.spec.override = { statefulSet: { spec: { template: { spec: { containers: [{ name: 'sidecar', image: 'docker.io/library/busybox' }] } } } } };
    });
    const violations = lintSeeded(seeded(ray, rabbitmq)).violations.map((v) => `${v.rule}: ${v.message}`);
    expect(violations).toEqual([
      'tagNotSpecified: RabbitmqCluster container sidecar: image docker.io/library/busybox has no tag',
      'unset-cpu-requirements: RabbitmqCluster container rabbitmq: no cpu limits',
      'unset-cpu-requirements: RabbitmqCluster container sidecar: no cpu requests or limits',
      'unset-memory-requirements: RabbitmqCluster container sidecar: no memory requests or limits',
      'latest-tag: RayCluster worker group gpu container ray-worker: image docker.io/rayproject/ray:latest uses the latest tag',
      'privilege-escalation-container: RayCluster head container ray-head: allowPrivilegeEscalation is not false',
    ]);
  });

  it('excuses a finding an exception names, and fails on an exception that excuses nothing', () => {
    const tree = seeded(SEEDS['latest-tag'].edit);
    const exception = { rule: 'latest-tag', resource: 'triton/Deployment/triton', reason: 'a seeded exception for this test' };
    expect(lintSeeded(tree, { exceptions: [...LINT_EXCEPTIONS, exception] }).violations).toEqual([]);
    expect(lintSeeded(prodOnly, { exceptions: [...LINT_EXCEPTIONS, exception] }).violations).toEqual([
      { location: 'lib/tools/lint/exceptions.ts', rule: 'unused-exception', message: 'latest-tag triton/Deployment/triton excuses no finding: remove it' },
    ]);
    // An exception for a service the config does not have (dev runs no Triton) applies to nothing: not stale.
    const dev = new Map([['dev', example.get('dev')!]]);
    expect(lintSeeded(dev, { exceptions: [...LINT_EXCEPTIONS, exception] }).violations).toEqual([]);
    const unknown = { rule: 'latest-tags', resource: 'triton/Deployment/triton', reason: 'a misspelt rule' };
    expect(lintSeeded(prodOnly, { exceptions: [...LINT_EXCEPTIONS, unknown] }).violations.map((v) => v.message)).toEqual([
      'latest-tags triton/Deployment/triton names no rule',
    ]);
  });
});

describe('the lint:k8s command', () => {
  function run(args: string[]): { status: number; stdout: string } {
    let stdout = '';
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => ((stdout += chunk), true)) as typeof process.stdout.write;
    try {
      return { status: main(args), stdout };
    } finally {
      process.stdout.write = write;
    }
  }

  it('passes the committed k8s/', () => {
    const { status, stdout } = run(['--dir', join(ROOT, 'k8s')]);
    expect(stdout).toMatch(/^linted \d+ workloads in \d+ objects of \d+ environments? with \d+ rules: 0 violations, \d+ findings excused/);
    expect(status).toBe(0);
  });

  it('prints one line per violation and a summary, and exits 1', () => {
    const dir = tempDir('homelab-lint-');
    for (const [env, files] of seeded(SEEDS['latest-tag'].edit, SEEDS['host-pid'].edit)) {
      for (const [path, content] of files) {
        mkdirSync(dirname(join(dir, env, path)), { recursive: true });
        writeFileSync(join(dir, env, path), content);
      }
    }
    const { status, stdout } = run(['--dir', dir]);
    expect(stdout.split('\n').slice(0, 2)).toEqual([
      'prod/triton/deployment-triton.yaml: host-pid: Deployment: hostPID is true',
      'prod/triton/deployment-triton.yaml: latest-tag: Deployment container triton: image nvcr.io/nvidia/tritonserver:latest uses the latest tag',
    ]);
    expect(stdout).toMatch(/\n.*: 2 violations, /);
    expect(status).toBe(1);
  });

  it('stops at a file that is not YAML, naming it, with exit 2 and no stack trace', () => {
    const dir = tempDir('homelab-lint-');
    mkdirSync(join(dir, 'prod', 'web'), { recursive: true });
    writeFileSync(join(dir, 'prod', 'web', 'deployment-web.yaml'), 'kind: Deployment\nmetadata: {name: web\n');
    const { status, stderr } = captureOutput(() => main(['--dir', dir]));
    expect(stderr).toMatch(/^error: prod\/web\/deployment-web\.yaml: invalid YAML: /m);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(status).toBe(2);
  });

  it('refuses a tree that is not an output tree, and options it does not know, as every command does', () => {
    const dir = tempDir('homelab-lint-');
    mkdirSync(join(dir, 'k8s', 'prod', 'web'), { recursive: true });
    writeFileSync(join(dir, 'k8s', 'prod', 'web', 'deployment-web.yaml'), 'kind: Deployment\nmetadata: {name: web}\n');
    // Its parent (a checkout, say) is not one: k8s would be linted as an environment.
    const parent = captureOutput(() => main(['--dir', dir]));
    expect(parent.stderr).toBe(`error: ${dir}: expected an output tree, <env>/<service>/<file>.yaml, found k8s/prod/web/deployment-web.yaml (--dir)\n`);
    expect(parent.status).toBe(2);
    for (const args of [['--bogus'], ['--dir'], ['k8s']]) {
      const { status, stderr } = captureOutput(() => main(args));
      expect(stderr).toMatch(/^error: .*\nusage: npm run lint:k8s -- \[--dir <tree>\] \(--help for the options\)\n$/);
      expect(status).toBe(2);
    }
  });

  it('explains itself with --help and lists every rule', () => {
    const { status, stdout } = run(['--help']);
    expect(status).toBe(0);
    for (const rule of RULES) expect(stdout).toContain(rule.id);
  });
});
