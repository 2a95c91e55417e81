import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NODE_START_SECONDS } from '../charts/n8n-workflow-check';
import { CHECK_START_SECONDS } from '../lib/model/checkpoint';
import { answerAsApiServer, FAKE_CLOCK, FAKE_SLEEP, Manifest, manifestsOf, platformObject, runWithFakeCommands, synthesizePlatformFixture, tempDir, toYamlText, synthesizeEnvironment } from './support';

const environments = synthesizePlatformFixture();
const prod = environments.find((e) => e.environment === 'prod')!;
const docs = manifestsOf(prod);
const jobs = docs.filter(({ manifest }) => manifest.kind === 'Job').map(({ path, manifest }) => ({ path, manifest }));
const verificationJobs = jobs.filter(({ path }) => path.startsWith('verification/'));
const report = verificationJobs.find(({ manifest }) => manifest.metadata.name === 'verification-checkpoint')!.manifest;
const envOf = (job: Manifest) => Object.fromEntries(job.spec.template.spec.containers[0].env.filter((e: any) => 'value' in e).map((e: any) => [e.name, e.value]));

describe('end-to-end verification', () => {
  it('is the last wave of every environment', () => {
    for (const env of environments) {
      const verification = env.services.find((s) => s.name === 'verification')!;
      const others = env.services.filter((s) => s !== verification);
      expect(verification.wave).toBeGreaterThan(Math.max(...others.map((s) => s.wave)));
      expect(verification.dependsOn).toEqual(others.map((s) => s.name).sort());
    }
  });

  it("runs every other service's checkpoint again, unchanged, in that service's namespace", () => {
    const checkpoints = jobs.filter(({ path, manifest }) => !path.startsWith('verification/') && manifest.metadata.name.endsWith('-checkpoint'));
    expect(checkpoints.length).toBe(prod.services.length - 1);
    for (const { path, manifest: original } of checkpoints) {
      const service = path.split('/')[0];
      const replay = verificationJobs.find(({ manifest }) => manifest.metadata.name === `${service}-e2e`)?.manifest;
      expect(replay, service).toBeDefined();
      const namespace = prod.services.find((s) => s.name === service)!.namespace;
      expect(replay!.metadata.namespace).toBe(namespace);
      // Same probe: container, volumes and account; only the name and hook handling differ.
      expect(replay!.spec.template.spec.containers).toEqual(original.spec.template.spec.containers);
      expect(replay!.spec.template.spec.serviceAccountName).toBe(original.spec.template.spec.serviceAccountName);
      expect(replay!.spec.template.spec.volumes).toEqual(original.spec.template.spec.volumes?.map((v: any) =>
        v.persistentVolumeClaim ? { ...v, persistentVolumeClaim: { claimName: `${service}-e2e` } } : v,
      ));
      expect(replay!.metadata.annotations).toMatchObject({
        'argocd.argoproj.io/hook': 'PostSync',
        'argocd.argoproj.io/hook-delete-policy': 'BeforeHookCreation',
        'argocd.argoproj.io/sync-wave': '0',
        'homelab.dev/checkpoint': original.metadata.annotations!['homelab.dev/checkpoint'],
      });
    }
  });

  it('gives a replayed checkpoint its own scratch volume', () => {
    const claim = docs.find(({ path }) => path === 'verification/persistentvolumeclaim-longhorn-system-longhorn-e2e.yaml')!.manifest;
    expect(claim.metadata).toMatchObject({ name: 'longhorn-e2e', namespace: 'longhorn-system' });
    expect(claim.metadata.annotations).toMatchObject({ 'argocd.argoproj.io/hook': 'PostSync', 'argocd.argoproj.io/sync-wave': '-1' });
  });

  it('checks that every service declaring metrics has targets up', () => {
    const job = verificationJobs.find(({ manifest }) => manifest.metadata.name === 'e2e-prometheus-targets')!.manifest;
    expect(job.metadata.namespace).toBe('monitoring');
    // Exactly the services that ship a ServiceMonitor or PodMonitor.
    const monitored = new Set(docs.filter(({ manifest }) => ['ServiceMonitor', 'PodMonitor'].includes(manifest.kind)).map(({ path }) => path.split('/')[0]));
    expect(monitored.size).toBeGreaterThan(5);
    expect(envOf(job).SERVICES.split(' ').sort()).toEqual([...monitored].sort());
  });

  it('checks logs of every namespace that runs pods, not of CRD-only or hook-only ones', () => {
    const job = verificationJobs.find(({ manifest }) => manifest.metadata.name === 'e2e-loki-logs')!.manifest;
    const namespaces: string[] = envOf(job).NAMESPACES.split(' ');
    expect(namespaces).toContain('longhorn-system');
    expect(namespaces).toContain('rabbitmq');
    expect(namespaces).toContain('ray');
    expect(namespaces).not.toContain('prometheus-operator-crds');
    expect(namespaces).not.toContain('verification');
  });

  it('reports after the checks, also when a check failed, with read access to exactly those Jobs', () => {
    expect(report.metadata.annotations).toMatchObject({ 'argocd.argoproj.io/hook': 'PostSync,SyncFail', 'argocd.argoproj.io/sync-wave': '1' });
    // `<namespace>/<job>/<container>`: every other Job of the verification, with one of its containers (whose log the report shows).
    const listed: string[] = envOf(report).CHECKS.split(' ');
    const others = verificationJobs.filter(({ manifest }) => manifest !== report).map(({ manifest }) => manifest);
    for (const check of listed) {
      const [namespace, name, container] = check.split('/');
      const job = others.find((m) => m.metadata.namespace === namespace && m.metadata.name === name);
      expect(job, check).toBeDefined();
      expect(job!.spec.template.spec.containers.map((c: any) => c.name), check).toContain(container);
    }
    const checks = listed.map((check) => check.split('/').slice(0, 2).join('/'));
    expect(checks.sort()).toEqual(others.map((m) => `${m.metadata.namespace}/${m.metadata.name}`).sort());
    const roles = docs.filter(({ manifest }) => manifest.kind === 'Role' && manifest.metadata.name === 'verification-checkpoint').map(({ manifest }) => manifest);
    for (const role of roles) {
      const jobRule = role.rules.find((r: any) => r.resources.includes('jobs'));
      expect(jobRule.verbs).toEqual(['get']);
      expect([...jobRule.resourceNames].sort()).toEqual(checks.filter((c) => c.startsWith(`${role.metadata.namespace}/`)).map((c) => c.split('/')[1]).sort());
    }
    expect(new Set(roles.map((r) => r.metadata.namespace))).toEqual(new Set(checks.map((c) => c.split('/')[0])));
    expect(docs.some(({ path, manifest }) => path.startsWith('verification/') && manifest.kind === 'ClusterRole')).toBe(false);
  });

  describe('report script', () => {
    const container = report.spec.template.spec.containers[0];
    const [first, second] = envOf(report).CHECKS.split(' ');
    /** How the report names a check: `<namespace>/<job>`. */
    const named = (check: string) => check.split('/').slice(0, 2).join('/');
    const complete = '{"status":{"conditions":[{"type":"Complete","status":"True"}],"succeeded":1}}';
    const failed = '{"status":{"conditions":[{"type":"Failed","status":"True"}],"failed":3}}';
    const run = (secondJob: string, secondCheck = second) => {
      // kube_get is curl against the API server: answer per path.
      const curl = [
        'for last; do :; done',
        'case "$last" in',
        `  */jobs/${first.split('/')[1]}) ${answerAsApiServer(`echo '${complete}'`)} ;;`,
        `  */jobs/${secondCheck.split('/')[1]}) ${answerAsApiServer(`echo '${secondJob}'`)} ;;`,
        `  */jobs/*) ${answerAsApiServer(`echo '${complete}'`)} ;;`,
        `  */pods\\?labelSelector=*) ${answerAsApiServer(`echo '{"items":[{"metadata":{"name":"${secondCheck.split('/')[1]}-x7k2p"}}]}'`)} ;;`,
        `  */log\\?container=${secondCheck.split('/')[2]}\\&tailLines=20) echo "probe said: connection refused" ;;`,
        '  *) exit 22 ;;',
        'esac',
      ].join('\n');
      // Two of the checks are enough for the script's logic (the list itself is checked above), and cheaper to fake.
      return runWithFakeCommands(container, { curl, sleep: FAKE_SLEEP, date: FAKE_CLOCK }, { env: { WAIT_SECONDS: '120', CHECKS: `${first} ${secondCheck}` } });
    };

    it('passes and lists every check when all Jobs completed', () => {
      const result = run(complete);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain(`PASS  ${named(first)}\n`);
      expect(result.stdout).toContain('all checks passed');
    });

    it("fails, naming the failed check with its log's tail", () => {
      const result = run(failed);
      expect(result.status).not.toBe(0);
      expect(result.stdout).toContain(`FAIL  ${named(second)}\n`);
      expect(result.stdout).toContain('        probe said: connection refused');
      expect(result.stderr).toContain('1 check(s) did not pass');
    });

    it("shows the log of the container the check names (a final step's own)", () => {
      const result = run(failed, `${named(second)}/configure`);
      expect(result.stdout).toContain(`FAIL  ${named(second)}\n`);
      expect(result.stdout).toContain('        probe said: connection refused');
    });

    it('reports a check the sync never created as missing', () => {
      const result = run('');
      expect(result.status).not.toBe(0);
      expect(result.stdout).toContain(`MISSING  ${named(second)}\n`);
    });

    it('stops waiting for a check still running and reports it', () => {
      const result = run('{"status":{"active":1}}');
      expect(result.status).not.toBe(0);
      expect(result.stdout).toContain(`RUNNING  ${named(second)}`);
    });
  });

  describe('cross-service checks', () => {
    const targets = verificationJobs.find(({ manifest }) => manifest.metadata.name === 'e2e-prometheus-targets')!.manifest;
    const services: string[] = envOf(targets).SERVICES.split(' ');
    const answer = (up: string[]) =>
      `echo '{"status":"success","data":{"resultType":"vector","result":[${up.map((s) => `{"metric":{"homelab_service":"${s}"},"value":[1,"1"]}`).join(',')}]}}'`;

    it('passes when every service has a target up and names the ones without', () => {
      expect(runWithFakeCommands(targets.spec.template.spec.containers[0], { curl: answer(services) }).status).toBe(0);
      const result = runWithFakeCommands(targets.spec.template.spec.containers[0], { curl: answer(services.filter((s) => s !== 'loki')) });
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain('no target up for: loki');
    });

    const logs = verificationJobs.find(({ manifest }) => manifest.metadata.name === 'e2e-loki-logs')!.manifest;
    const namespaces: string[] = envOf(logs).NAMESPACES.split(' ');
    const streams = (present: string[]) =>
      `echo '{"status":"success","data":{"resultType":"vector","result":[${present.map((n) => `{"metric":{"namespace":"${n}"},"value":[1,"42"]}`).join(',')}]}}'`;

    it('passes when every namespace has logs and names the silent ones', () => {
      expect(runWithFakeCommands(logs.spec.template.spec.containers[0], { curl: streams(namespaces) }).status).toBe(0);
      const result = runWithFakeCommands(logs.spec.template.spec.containers[0], { curl: streams(namespaces.slice(1)) });
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain(`no logs in the last hour from: ${namespaces[0]}`);
    });
  });
});

describe('n8n publishes to RabbitMQ (end-to-end), where its user may not declare a queue for the workflow check', () => {
  const config = platformObject();
  config.services.rabbitmq.users.n8n.permissions.events.configure = '';
  const withoutWorkflowCheck = synthesizeEnvironment(toYamlText(config), 'dev').env;
  const publish = manifestsOf(withoutWorkflowCheck).find(({ manifest }) => manifest.kind === 'Job' && manifest.metadata.name === 'e2e-n8n-publish')!.manifest;
  const container = publish.spec.template.spec.containers[0];

  /** A fake n8n install: n8n-nodes-base and an amqplib recording what the check does in `log`; a broker that never confirms where `confirms` is false. */
  const fakeInstall = (failWith?: string, confirms = true): { root: string; log: string } => {
    const root = tempDir('homelab-fake-n8n-');
    const log = join(root, 'amqp.log');
    const modules = join(root, 'node_modules');
    mkdirSync(join(modules, 'n8n-nodes-base'), { recursive: true });
    writeFileSync(join(modules, 'n8n-nodes-base', 'package.json'), '{"name":"n8n-nodes-base"}');
    mkdirSync(join(modules, 'amqplib'));
    writeFileSync(
      join(modules, 'amqplib', 'index.js'),
      [
        'const fs = require("fs");',
        `const log = (line) => fs.appendFileSync(${JSON.stringify(log)}, line + "\\n");`,
        'exports.connect = async (url) => {',
        '  log("connect " + url);',
        failWith ? `  throw new Error(${JSON.stringify(failWith)});` : '',
        '  return {',
        '    createConfirmChannel: async () => ({',
        '      publish: (exchange, key, content) => log("publish [" + exchange + "] " + key + " " + content),',
        confirms ? '      waitForConfirms: async () => log("confirmed"),' : '      waitForConfirms: () => new Promise(() => {}),',
        '    }),',
        '    close: async () => log("close"),',
        '  };',
        '};',
      ].join('\n'),
    );
    return { root, log };
  };
  const run = (failWith?: string, options: { confirms?: boolean; env?: Record<string, string> } = {}) => {
    const { root, log } = fakeInstall(failWith, options.confirms);
    // The real node, with the Job's env; N8N_ROOT (the image's install) points at the fake one.
    const result = runWithFakeCommands(container, {}, { env: { N8N_ROOT: root, RABBITMQ_USERNAME: 'gen/user', RABBITMQ_PASSWORD: 'p@ss:word', ...options.env } });
    return { ...result, calls: existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [] };
  };

  it("runs in n8n's namespace with its generated RabbitMQ credentials and the n8n image", () => {
    expect(publish.metadata.namespace).toBe('n8n');
    expect(container.image).toMatch(/^docker\.io\/n8nio\/n8n:\d+\.\d+\.\d+$/);
    const secretEnv = container.env.filter((e: any) => e.valueFrom).map((e: any) => [e.name, e.valueFrom.secretKeyRef]);
    expect(secretEnv).toEqual([
      ['RABBITMQ_USERNAME', { name: 'n8n-user-credentials', key: 'username' }],
      ['RABBITMQ_PASSWORD', { name: 'n8n-user-credentials', key: 'password' }],
    ]);
    expect(envOf(publish)).toMatchObject({ RABBITMQ_HOST: 'rabbitmq.rabbitmq.svc', RABBITMQ_PORT: '5672', RABBITMQ_VHOST: 'events' });
  });

  it('publishes an unroutable message on the vhost and waits for the broker to confirm it', () => {
    const result = run();
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.calls).toEqual([
      'connect amqp://gen%2Fuser:p%40ss%3Aword@rabbitmq.rabbitmq.svc:5672/events',
      'publish [] homelab.e2e.unrouted end-to-end check',
      'confirmed',
      'close',
    ]);
    expect(result.stdout).toContain('the broker confirmed it');
  });

  it('fails, saying why, when the broker refuses', () => {
    const result = run('ACCESS_REFUSED - Login was refused');
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('n8n cannot publish to RabbitMQ: ACCESS_REFUSED');
  });

  it("gives up, naming the broker, when it never confirms; the Job lasts the pod's start, Node.js's and that limit", () => {
    // amqplib has no limit of its own: a broker that keeps the connection and never answers held the Job to its deadline.
    const result = run(undefined, { confirms: false, env: { AMQP_SECONDS: '0.05' } });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('n8n cannot publish to RabbitMQ: RabbitMQ at rabbitmq.rabbitmq.svc:5672 did not answer within 0.05 s');
    expect(publish.spec.activeDeadlineSeconds).toBe(CHECK_START_SECONDS + NODE_START_SECONDS + Number(envOf(publish).AMQP_SECONDS));
    const unset = run(undefined, { env: { AMQP_SECONDS: '' } });
    expect(unset.status).toBe(2);
    expect(unset.stderr).toContain('AMQP_SECONDS unset (the Job sets it)');
    expect(unset.calls).toEqual([]);
  });
});
