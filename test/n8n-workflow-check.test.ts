/**
 * n8n's workflow check (charts/n8n-workflow-check.ts): the workflow is one the pinned n8n can run,
 * the queue follows the user's permissions, the derived objects, the helper program against a fake
 * AMQP client, and the script against fake `node` and `n8n` commands, on pass and fail paths.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { CHECK_MESSAGE, N8N_WORKFLOW_FACTS, NODE_START_SECONDS, workflowCheckQueue } from '../charts/n8n-workflow-check';
import { permits, RabbitmqConnection } from '../charts/rabbitmq';
import { IMAGES } from '../charts/versions';
import { CHECK_START_SECONDS, WITHIN_SLACK_SECONDS } from '../lib/model/checkpoint';
import { invariantNamed } from './invariants';
import { FAKE_CLOCK, FAKE_SLEEP, Manifest, manifestAt, manifestsOf, platformObject, platformText, runWithFakeCommands, synthesizePlatformFixture, tempDir, toYamlText, synthesizeEnvironment, withFiles } from './support';

const envs = synthesizePlatformFixture();

const filesOf = (env = envs[0]) => manifestAt(env, 'n8n/configmap-n8n-workflow-check.yaml').data as Record<string, string>;
const workflowOf = (env = envs[0]) => JSON.parse(filesOf(env)['workflow.json']);
const jobOf = (env = envs[0]) => manifestAt(env, 'n8n/job-n8n-workflow-check.yaml');
const containerOf = (env = envs[0]) => jobOf(env).spec.template.spec.containers[0];
const podEnvOf = (env = envs[0]) => Object.fromEntries((containerOf(env).env as any[]).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));

/** The fixture with `change` applied to its base config. */
function variant(change: (config: Record<string, any>) => void) {
  const config = platformObject();
  change(config);
  return synthesizeEnvironment(toYamlText(config), 'dev').env;
}

function connection(permissions: RabbitmqConnection['permissions'], declaredQueues: string[] = []): RabbitmqConnection {
  return {
    host: 'rabbitmq.rabbitmq.svc',
    port: 5672,
    vhost: 'events',
    user: 'flows',
    credentialsSecret: 'flows-user-credentials',
    credentialsNamespace: 'n8n',
    workloadSyncWave: 2,
    permissions,
    declaredQueues,
    service: undefined as never,
  };
}

describe('the workflow n8n runs', () => {
  it('is one the pinned n8n imports and executes: known node types, versions, parameters and a manual trigger to start from', () => {
    expect(IMAGES.n8n).toMatch(/:2\.40\.\d+$/);
    const facts = N8N_WORKFLOW_FACTS;
    for (const env of envs) {
      const workflow = workflowOf(env);
      expect(workflow.id.length).toBeGreaterThan(0);
      expect(workflow.id.length).toBeLessThanOrEqual(facts.maxWorkflowIdLength);
      expect(workflow.active).toBe(false);
      const names = (workflow.nodes as any[]).map((n) => n.name);
      expect(new Set(names).size).toBe(names.length);
      const trigger = (workflow.nodes as any[]).filter((n) => n.type === facts.manualTrigger.type);
      expect(trigger).toHaveLength(1);
      expect(facts.manualTrigger.versions).toContain(trigger[0].typeVersion);
      for (const name of Object.keys(trigger[0].parameters)) expect(facts.manualTrigger.parameters).toContain(name);
      const publishers = (workflow.nodes as any[]).filter((n) => n.type === facts.rabbitmq.type);
      expect(publishers).toHaveLength(1);
      const [publish] = publishers;
      expect(facts.rabbitmq.versions).toContain(publish.typeVersion);
      for (const name of Object.keys(publish.parameters)) expect(facts.rabbitmq.parameters).toContain(name);
      for (const name of Object.keys(publish.parameters.options)) expect(facts.rabbitmq.options).toContain(name);
      expect(publish.parameters).toMatchObject({ operation: 'sendMessage', mode: 'queue', sendInputData: false, message: CHECK_MESSAGE });
      expect(Object.keys(publish.credentials)).toEqual([facts.rabbitmq.credential]);
      // The trigger feeds the publisher; every connection names nodes of the workflow.
      expect(workflow.connections[trigger[0].name].main[0]).toEqual([{ node: publish.name, type: 'main', index: 0 }]);
      for (const [from, outputs] of Object.entries(workflow.connections as Record<string, any>)) {
        expect(names).toContain(from);
        for (const target of outputs.main.flat()) expect(names).toContain(target.node);
      }
      // What the script executes and checks is what the workflow holds.
      const pod = podEnvOf(env);
      expect(pod).toMatchObject({ WORKFLOW_ID: workflow.id, CHECK_QUEUE: publish.parameters.queue, CHECK_MESSAGE, CREDENTIAL_ID: publish.credentials.rabbitmq.id, CREDENTIAL_NAME: publish.credentials.rabbitmq.name });
    }
  });

  it('uses a credential the helper writes from the generated Secret, of the type and with the fields n8n knows', () => {
    const fake = fakeN8nRoot();
    const run = runProgram(fake, 'credentials', { RABBITMQ_USERNAME: 'generated-user', RABBITMQ_PASSWORD: 'generated-password' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const credentials = JSON.parse(run.stdout);
    const reference = workflowOf().nodes.find((n: any) => n.type === N8N_WORKFLOW_FACTS.rabbitmq.type).credentials.rabbitmq;
    expect(credentials).toEqual([
      {
        id: reference.id,
        name: reference.name,
        type: N8N_WORKFLOW_FACTS.rabbitmq.credential,
        data: { hostname: 'rabbitmq.rabbitmq.svc', port: 5672, vhost: 'events', username: 'generated-user', password: 'generated-password' },
      },
    ]);
    for (const field of Object.keys(credentials[0].data)) expect(N8N_WORKFLOW_FACTS.rabbitmqCredential).toContain(field);
    // Nothing secret in Git: the ConfigMap and the Job name the Secret, never a value.
    expect(JSON.stringify(filesOf())).not.toContain('generated-password');
    expect(containerOf().env.find((e: any) => e.name === 'RABBITMQ_PASSWORD')).toEqual({
      name: 'RABBITMQ_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'n8n-user-credentials', key: 'password' } },
    });
  });
});

describe('the check queue', () => {
  it('is one the user may declare, delete and read, with publishing through the default exchange allowed, and never a declared queue', () => {
    expect(workflowCheckQueue(connection({ configure: '^flows\\.', write: '.*', read: '.*' }))).toBe('flows.checkpoint');
    expect(workflowCheckQueue(connection({ configure: '.*', write: '.*', read: '.*' }, ['flows.checkpoint']))).toBe('homelab.checkpoint');
    expect(workflowCheckQueue(connection({ configure: '^homelab\\.', write: '^amq\\.default$', read: '^homelab\\.' }))).toBe('homelab.checkpoint');
    // No configure, no read, or no publishing to the default exchange: no queue.
    expect(workflowCheckQueue(connection({ configure: '', write: '.*', read: '.*' }))).toBeUndefined();
    expect(workflowCheckQueue(connection({ configure: '.*', write: '.*', read: '' }))).toBeUndefined();
    expect(workflowCheckQueue(connection({ configure: '.*', write: '^flows\\.', read: '.*' }))).toBeUndefined();
  });

  it('reads permissions as the broker does: unanchored patterns, and "" for nothing', () => {
    expect(permits('n8n', 'x.n8n.y')).toBe(true);
    expect(permits('^n8n\\.', 'x.n8n.y')).toBe(false);
    expect(permits('', 'anything')).toBe(false);
    expect(permits('.*', 'amq.default')).toBe(true);
  });
});

describe('the objects of the workflow check', () => {
  it('runs after the checkpoint as a PostSync hook in the n8n image, with the ConfigMap and throwaway folders, and no API access', () => {
    for (const env of envs) {
      const docs = manifestsOf(env);
      const job = jobOf(env);
      const checkpoint = manifestAt(env, 'n8n/job-n8n-checkpoint.yaml');
      const wave = (m: Manifest) => Number(m.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0);
      expect(job.metadata.annotations!['argocd.argoproj.io/hook']).toBe('PostSync');
      expect(wave(job)).toBeGreaterThan(wave(checkpoint));
      const pod = job.spec.template.spec;
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(containerOf(env).image).toBe(IMAGES.n8n);
      expect(containerOf(env).resources.limits.memory).toMatch(/Gi$/);
      const volumes = Object.fromEntries((pod.volumes as any[]).map((v) => [v.name, v]));
      const mounts = Object.fromEntries((containerOf(env).volumeMounts as any[]).map((m) => [m.mountPath, volumes[m.name]]));
      expect(mounts['/check']).toEqual({ name: 'workflow', configMap: { name: 'n8n-workflow-check' } });
      // n8n's user folder (settings, key, SQLite) is an emptyDir: n8n's own data is never touched.
      const userFolder = podEnvOf(env).N8N_USER_FOLDER;
      expect(mounts[userFolder]?.emptyDir).toEqual({});
      expect(podEnvOf(env).DB_TYPE).toBe('sqlite');
      expect(JSON.stringify(pod)).not.toMatch(/n8n-data|DB_POSTGRESDB/);
      // The verification replays it, instead of the plain publish check.
      const e2e = manifestAt(env, 'verification/job-n8n-e2e-n8n-workflow.yaml');
      expect(e2e.metadata.namespace).toBe('n8n');
      expect(e2e.spec.template.spec.containers[0].command).toEqual(containerOf(env).command);
      expect(docs.some(({ path }) => path === 'verification/job-n8n-e2e-n8n-publish.yaml')).toBe(false);
    }
  });

  it('reaches RabbitMQ through the derived egress of n8n\'s namespace', () => {
    const policy = manifestAt(envs[0], 'n8n/networkpolicy-egress-rabbitmq-5672.yaml');
    expect(policy.spec.podSelector).toEqual({});
    expect(policy.spec.egress[0].ports).toEqual([{ port: 5672, protocol: 'TCP' }]);
  });

  it('falls back to the publish check where the user may not declare a queue of its own', () => {
    const env = variant((config) => (config.services.rabbitmq.users.n8n.permissions.events.configure = ''));
    const docs = manifestsOf(env);
    expect(docs.filter(({ path }) => /workflow-check|e2e-n8n-workflow/.test(path))).toEqual([]);
    expect(manifestAt(env, 'verification/job-n8n-e2e-n8n-publish.yaml').metadata.namespace).toBe('n8n');
  });

  it('never takes a queue the config declares', () => {
    const declare = (config: Record<string, any>) => (config.services.rabbitmq.queues['n8n.checkpoint'] = { vhost: 'events' });
    // With `configure: ^n8n\.` no other candidate is admitted: no workflow check.
    expect(manifestsOf(variant(declare)).some(({ path }) => path === 'n8n/job-n8n-workflow-check.yaml')).toBe(false);
    const wider = variant((config) => {
      declare(config);
      config.services.rabbitmq.users.n8n.permissions.events.configure = '.*';
    });
    expect(podEnvOf(wider).CHECK_QUEUE).toBe('homelab.checkpoint');
  });
});

/** A directory standing in for the image's n8n package: n8n-nodes-base and a fake amqplib recording calls. */
function fakeN8nRoot(): string {
  const root = tempDir('homelab-n8n-root-');
  const nodes = join(root, 'node_modules', 'n8n-nodes-base');
  const amqplib = join(root, 'node_modules', 'amqplib');
  mkdirSync(nodes, { recursive: true });
  mkdirSync(amqplib, { recursive: true });
  writeFileSync(join(nodes, 'package.json'), '{"name":"n8n-nodes-base"}');
  writeFileSync(
    join(amqplib, 'index.js'),
    String.raw`const fs = require("fs");
const log = (line) => fs.appendFileSync(process.env.FAKE_LOG, line + "\n");
exports.connect = async (url) => {
  log("connect " + url);
  if (process.env.FAKE_REFUSED) throw new Error("connect ECONNREFUSED");
  if (process.env.FAKE_SILENT) return new Promise(() => {});
  return {
    createChannel: async () => ({
      deleteQueue: async (q) => log("deleteQueue " + q),
      assertQueue: async (q, options) => log("assertQueue " + q + " " + JSON.stringify(options)),
      get: async (q, options) => {
        log("get " + q + " " + JSON.stringify(options));
        return process.env.FAKE_BODY === undefined ? false : { content: Buffer.from(process.env.FAKE_BODY) };
      },
      ack: () => log("ack"),
    }),
    close: async () => log("close"),
  };
};
`,
  );
  return root;
}

/** Runs the ConfigMap's check.js with the Job's environment against the fake AMQP client. */
function runProgram(root: string, command: string, env: Record<string, string> = {}) {
  const program = join(root, 'check.js');
  writeFileSync(program, filesOf()['check.js']);
  const log = join(root, 'amqp.log');
  writeFileSync(log, '');
  const result = spawnSync(process.execPath, [program, command], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, ...podEnvOf(), RABBITMQ_USERNAME: 'user', RABBITMQ_PASSWORD: 'p@ss', N8N_ROOT: root, FAKE_LOG: log, ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, calls: readFileSync(log, 'utf8').trim().split('\n') };
}

describe('the helper program against a fake AMQP client', () => {
  it('declares a fresh queue that expires by itself, on the vhost, with the URL-encoded generated credentials', () => {
    const run = runProgram(fakeN8nRoot(), 'declare');
    expect(run.status).toBe(0);
    expect(run.calls).toEqual([
      'connect amqp://user:p%40ss@rabbitmq.rabbitmq.svc:5672/events',
      'deleteQueue n8n.checkpoint',
      expect.stringMatching(/^assertQueue n8n\.checkpoint \{"durable":true,"arguments":\{"x-expires":\d+\}\}$/),
      'close',
    ]);
  });

  it('passes when the queue holds the workflow\'s message, taking it', () => {
    const run = runProgram(fakeN8nRoot(), 'receive', { FAKE_BODY: CHECK_MESSAGE });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.calls).toEqual(expect.arrayContaining(['get n8n.checkpoint {"noAck":false}', 'ack']));
    expect(run.stdout).toContain("read the workflow's message back from queue n8n.checkpoint");
  });

  it('fails on an empty queue, another message, or a refused connection, naming the step', () => {
    const empty = runProgram(fakeN8nRoot(), 'receive');
    expect(empty.status).toBe(1);
    expect(empty.stderr).toContain('n8n workflow check: receive: queue n8n.checkpoint is empty: the workflow published nothing');
    const other = runProgram(fakeN8nRoot(), 'receive', { FAKE_BODY: 'something else' });
    expect(other.status).toBe(1);
    expect(other.stderr).toContain('held "something else", not the workflow\'s message');
    const refused = runProgram(fakeN8nRoot(), 'declare', { FAKE_REFUSED: '1' });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('n8n workflow check: declare: connect ECONNREFUSED');
  });

  it('gives up on a broker that never answers after AMQP_SECONDS, naming the step and the broker; unset, it stops', () => {
    // A call that never settles leaves nothing for Node.js to wait on but the limit: without it the program would end as if it succeeded.
    const silent = runProgram(fakeN8nRoot(), 'receive', { FAKE_SILENT: '1', AMQP_SECONDS: '0.05' });
    expect(silent.status).toBe(1);
    expect(silent.stderr).toContain('n8n workflow check: receive: RabbitMQ at rabbitmq.rabbitmq.svc:5672 did not answer within 0.05 s');
    const unset = runProgram(fakeN8nRoot(), 'declare', { AMQP_SECONDS: '' });
    expect(unset.status).toBe(2);
    expect(unset.stderr).toContain('AMQP_SECONDS unset (the Job sets it)');
    expect(unset.calls).toEqual(['']);
  });
});

describe('the check script against fake commands', () => {
  /**
   * `node check.js <command>` and `n8n <command>` record their arguments and fail when told to;
   * `n8n execute` hangs (until killed) where HANG_EXECUTE is set. `within`'s watchdog pauses at
   * once and reads the real clock (a fake one, a minute later at every look, would end a fake
   * n8n that took four looks).
   */
  const fakes = {
    node: ['echo "node $*" >> "$FAKE_BIN/calls"', 'case "$2" in', '  credentials) echo "[]" ;;', '  receive) [ -z "$FAIL_RECEIVE" ] || { echo "queue is empty" >&2; exit 1; } ;;', 'esac'].join('\n'),
    n8n: [
      'echo "n8n $*" >> "$FAKE_BIN/calls"',
      'case "$1" in',
      '  execute)',
      '    [ -z "$HANG_EXECUTE" ] || { : > "$FAKE_BIN/executing"; exec /bin/sleep 30; }',
      '    [ -z "$FAIL_EXECUTE" ] || { echo "Execution was NOT successful"; exit 1; } ;;',
      'esac',
    ].join('\n'),
    sleep: FAKE_SLEEP,
  };
  const run = (env: Record<string, string> = {}, more: Record<string, string> = {}) => {
    return runWithFakeCommands(containerOf(), { ...fakes, ...more }, {
      env: { N8N_USER_FOLDER: tempDir('homelab-n8n-user-'), ...env },
      // As the image's n8n is: a process `within` can end.
      programs: ['n8n'],
      collect: (bin) => (existsSync(`${bin}/calls`) ? readFileSync(`${bin}/calls`, 'utf8').trim().split('\n') : []),
    });
  };

  it('declares the queue, imports credential and workflow, executes it, reads the message back and deletes the queue', () => {
    const result = run();
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.collected).toEqual([
      'node /check/check.js declare',
      'node /check/check.js credentials',
      expect.stringMatching(/^n8n import:credentials --input=.*\/credentials\.json$/),
      'n8n import:workflow --input=/check/workflow.json',
      'n8n execute --id=homelabCheckpoint --rawOutput',
      'node /check/check.js receive',
      'node /check/check.js delete',
    ]);
  });

  /** A run whose execution did not succeed: it fails saying so, reads nothing back, and still deletes the queue. */
  const expectExecutionFailed = (result: ReturnType<typeof run>, reason: string) => {
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(reason);
    expect(result.stderr).toContain('n8n could not run workflow homelabCheckpoint (publish to queue n8n.checkpoint on vhost events as user n8n)');
    expect(result.collected).not.toContain('node /check/check.js receive');
    expect(result.collected.at(-1)).toBe('node /check/check.js delete');
  };

  it('fails when the execution fails, with its log and what it tried, and still deletes the queue', () => {
    expectExecutionFailed(run({ FAIL_EXECUTE: '1' }), 'Execution was NOT successful');
  });

  it('fails when the message is not in the queue, and still deletes the queue', () => {
    const result = run({ FAIL_RECEIVE: '1' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('queue is empty');
    expect(result.collected.at(-1)).toBe('node /check/check.js delete');
  });

  it('ends an execution that outlasts N8N_CLI_SECONDS, saying so, and still deletes the queue', () => {
    // n8n's CLI has no limit: a workflow stuck on the broker held the Job to its deadline, with no report.
    // The fake clock moves a minute a look only once the execution hangs: the imports before it, however slow, are not ended.
    const result = run({ HANG_EXECUTE: '1' }, { date: `[ -e "$FAKE_BIN/executing" ] || { echo 1700000000; exit 0; }\n${FAKE_CLOCK}` });
    expectExecutionFailed(result, `gave up on 'n8n execute --id=homelabCheckpoint --rawOutput' after ${podEnvOf().N8N_CLI_SECONDS} s`);
  });

  it('stops with a message where the Job leaves N8N_CLI_SECONDS unset, before it touches the queue', () => {
    const result = run({ N8N_CLI_SECONDS: '' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('N8N_CLI_SECONDS: unset (the Job sets it)');
    expect(result.collected).toEqual([]);
  });

  it("is held by the invariant that every call of our hook Jobs has a time limit: n8n's CLI runs within one", () => {
    const invariant = invariantNamed('every call the scripts of our hook Jobs make');
    const dev = synthesizeEnvironment(platformText(), 'dev');
    expect(invariant.check([dev])).toEqual([]);
    const path = 'n8n/job-n8n-workflow-check.yaml';
    for (const call of ['n8n execute', 'N8N_LOG_LEVEL=debug n8n execute', 'exec /usr/local/bin/n8n execute']) {
      const direct = withFiles(dev, (files) => files.set(path, files.get(path)!.replace('within "$N8N_CLI_SECONDS" n8n execute', call)));
      expect(invariant.check([direct]), call).toEqual([expect.stringMatching(new RegExp(`^dev/${path} checkpoint: n8n's CLI outside within: n8n execute --id=`))]);
    }
  });

  it("has a deadline of the pod's start and every step at its limit, and a queue that outlasts them", () => {
    // The steps a passing run takes: the helper program's (Node.js's start, then AMQP_SECONDS each) and n8n's CLI (within N8N_CLI_SECONDS each).
    const steps = run().collected;
    const program = steps.filter((step) => step.startsWith('node ')).length;
    const cli = steps.filter((step) => step.startsWith('n8n ')).length;
    expect(program).toBeGreaterThan(0);
    expect(cli).toBeGreaterThan(0);
    const env = podEnvOf();
    const worstCase = program * (NODE_START_SECONDS + Number(env.AMQP_SECONDS)) + cli * (Number(env.N8N_CLI_SECONDS) + WITHIN_SLACK_SECONDS);
    for (const job of [jobOf(), manifestAt(envs[0], 'verification/job-n8n-e2e-n8n-workflow.yaml')]) {
      expect(job.spec.activeDeadlineSeconds).toBe(CHECK_START_SECONDS + worstCase);
    }
    // Publishing does not count as a use of the queue: unused from its declaration on, it must still be there for the read.
    expect(Number(env.QUEUE_EXPIRES_MS)).toBeGreaterThanOrEqual(worstCase * 1000);
  });
});
