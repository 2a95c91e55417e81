/**
 * Bad input: every mistake names its config path and what was expected, the CLI exits 2
 * without a stack trace, and the output directory stays byte-for-byte as it was.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { platformObject, platformText, parseText, readTree, runCli, runMain, tempDir, toYamlText } from './support';
import { settingsIn } from '../lib/model/catalog';
import { longhornEntry } from '../charts/longhorn';
import { cron } from '../lib/model/config/primitives';

type Mutation = (config: Record<string, any>) => void;

/** Each case: a change to the example config (or a raw text), and what the error must say. */
const BAD_CONFIGS: { name: string; mutate?: Mutation; text?: string; expected: (string | RegExp)[] }[] = [
  {
    name: 'wrong type in an environment override',
    mutate: (c) => (c.environments.prod.services.longhorn.replicas = 'three'),
    expected: ['environments.prod.services.longhorn.replicas: expected an integer between 1 and 10, received "three"'],
  },
  {
    name: 'unknown key (a typo)',
    mutate: (c) => (c.services.longhorn.replica = 2),
    expected: ['services.longhorn.replica: unknown key; expected one of enabled, replicas'],
  },
  {
    name: 'unknown key in an environment',
    mutate: (c) => (c.environments.dev.sync = { mode: 'automated', selfheal: true }),
    expected: ['environments.dev.sync.selfheal: unknown key; expected one of mode, prune, selfHeal, retry'],
  },
  {
    name: 'bad memory quantity',
    mutate: (c) => (c.apps['node-red'].resources.limits.memory = '4GB'),
    expected: ['apps.node-red.resources.limits.memory: expected a memory quantity in Mi, Gi or Ti, such as "512Mi" or "4Gi", received "4GB"'],
  },
  {
    name: 'bad CPU quantity',
    mutate: (c) => (c.apps['node-red'].resources.requests.cpu = 'lots'),
    expected: ['apps.node-red.resources.requests.cpu: expected a CPU quantity such as "500m" or "2", received "lots"'],
  },
  {
    name: 'bad hostname',
    mutate: (c) => (c.environments.staging.domain = 'Staging_Lab'),
    expected: ['environments.staging.domain: expected a lowercase DNS hostname'],
  },
  {
    name: 'missing required field',
    mutate: (c) => delete c.git.repoURL,
    expected: ['git.repoURL: expected a Git URL', 'but it is missing'],
  },
  {
    name: 'bad Kubernetes name for a node',
    mutate: (c) => (c.nodes.Worker_2 = { role: 'worker', cpu: 4, memory: '8Gi' }),
    expected: ['nodes.Worker_2: expected a Kubernetes name'],
  },
  {
    name: 'enum value out of range',
    mutate: (c) => (c.environments.prod.sync.mode = 'sometimes'),
    expected: ['environments.prod.sync.mode: expected one of "automated", "manual", received "sometimes"'],
  },
  {
    name: 'image without a pinned tag',
    mutate: (c) => (c.apps['node-red'].image = 'docker.io/nodered/node-red:latest'),
    expected: ['apps.node-red.image: expected a pinned tag, not "latest"'],
  },
  {
    name: 'dependency on an unknown service',
    mutate: (c) => (c.apps['node-red'].dependsOn = ['home-assistant', 'grafana']),
    expected: ['apps.node-red.dependsOn.1: expected an enabled service or app', 'received "grafana"'],
  },
  {
    name: 'dependency on a disabled service',
    mutate: (c) => {
      c.apps['home-assistant'].enabled = false;
    },
    expected: ['apps.node-red.dependsOn.0: expected an enabled service or app', 'received "home-assistant"'],
  },
  {
    name: 'dependency cycle between apps',
    mutate: (c) => (c.apps['home-assistant'].dependsOn = ['node-red']),
    expected: ['apps.home-assistant.dependsOn: expected no dependency cycle, found home-assistant -> node-red -> home-assistant'],
  },
  {
    name: 'more Longhorn replicas than nodes',
    mutate: (c) => (c.environments.dev.services.longhorn.replicas = 3),
    expected: ['environments.dev.services.longhorn.replicas: expected at most 1 (one replica per node), received 3'],
  },
  {
    name: 'backup job without a backup target',
    mutate: (c) => (c.services.longhorn.recurringJobs.hourly = { task: 'backup', cron: '0 * * * *', retain: 3 }),
    expected: ['services.longhorn.recurringJobs.hourly.task: expected a backup target'],
  },
  {
    name: 'a Secret name where the platform names the Secret (longhorn-backup-credentials)',
    mutate: (c) => (c.environments.prod.services.longhorn.backup.credentialsSecret = 'my-backup-secret'),
    expected: ['environments.prod.services.longhorn.backup.credentialsSecret: unknown key; expected one of pollInterval'],
  },
  {
    name: 'a secret app variable also set in env',
    mutate: (c) => (c.apps['node-red'].secretEnv = ['TZ']),
    expected: ['apps.node-red.secretEnv.0: expected a variable not in env: "TZ" is set there already'],
  },
  {
    name: 'volume without Longhorn',
    mutate: (c) => (c.environments.dev.services.longhorn.enabled = false),
    expected: ['apps.home-assistant.volume: expected services.longhorn.enabled: a volume needs Longhorn'],
  },
  {
    name: 'reserved storage class name',
    mutate: (c) => (c.services.longhorn.storageClasses['longhorn-checkpoint'] = { reclaimPolicy: 'Delete' }),
    expected: ['services.longhorn.storageClasses.longhorn-checkpoint: expected another name: "longhorn-checkpoint" is the class of the Longhorn checkpoint volume'],
  },
  {
    name: 'two default storage classes',
    mutate: (c) => (c.services.longhorn.storageClasses['longhorn-scratch'].default = true),
    expected: ['services.longhorn.storageClasses: expected exactly one storage class with default: true, received 2'],
  },
  {
    name: 'app named like an output folder',
    mutate: (c) => (c.apps.apps = c.apps['node-red']),
    expected: ['apps.apps: expected another name: "apps" is taken by a built-in service, its namespace, an output folder or the backup target\'s keys'],
  },
  {
    name: 'app named like a built-in service whose namespace has another name',
    mutate: (c) => (c.apps['cloudnative-pg'] = c.apps['node-red']),
    expected: ['apps.cloudnative-pg: expected another name: "cloudnative-pg" is taken by a built-in service, its namespace, an output folder or the backup target\'s keys'],
  },
  {
    name: "app named like Kubernetes' own namespaces",
    mutate: (c) => {
      c.apps['kube-system'] = c.apps['node-red'];
      c.apps.default = c.apps['node-red'];
    },
    expected: [
      'apps.kube-system: expected another name: "kube-system" is a namespace of Kubernetes itself (default, kube-*), which the app would take over',
      'apps.default: expected another name: "default" is a namespace of Kubernetes itself (default, kube-*), which the app would take over',
    ],
  },
  {
    name: 'a PostgreSQL user name with a space',
    mutate: (c) => (c.services.n8n.database = { postgres: { host: 'postgres.db.svc', user: 'n8n app' } }),
    expected: ['services.n8n.database.postgres.user: expected a PostgreSQL name such as "n8n" or "n8n_app"'],
  },
  {
    name: 'a node without CPU',
    mutate: (c) => (c.nodes['worker-1'].cpu = '0m'),
    expected: ['nodes.worker-1.cpu: expected a CPU quantity above 0'],
  },
  {
    name: 'a cron field out of its range',
    mutate: (c) => (c.services.longhorn.recurringJobs['daily-snapshot'].cron = '61 2 * * *'),
    expected: ['services.longhorn.recurringJobs.daily-snapshot.cron: expected a five-field cron expression such as "0 3 * * *": its minute "61" is outside 0-59'],
  },
  {
    name: 'several replicas sharing one ReadWriteOnce volume',
    mutate: (c) => (c.environments.prod.apps = { 'node-red': { replicas: 2 } }),
    expected: ['environments.prod.apps.node-red.replicas: expected at most 1 with a volume (a ReadWriteOnce volume attaches to one pod), received 2'],
  },
  {
    name: 'metrics on a port the app does not have',
    mutate: (c) => (c.apps['node-red'].metrics = { port: 'metrics' }),
    expected: ['apps.node-red.metrics.port: expected one of the app\'s ports (http), received "metrics"'],
  },
  { name: 'empty file', text: '', expected: ['the config file is empty'] },
  { name: 'comments only', text: '# nothing here\n', expected: ['the config file is empty'] },
  { name: 'invalid YAML', text: 'domain: home.example.net\nnodes: [a, b\n', expected: [/invalid YAML at line \d+, column \d+/] },
  { name: 'not a mapping', text: '- just\n- a list\n', expected: ['expected a mapping at the top level, received a list'] },
  { name: 'two YAML documents', text: 'domain: a.example.net\n---\ndomain: b.example.net\n', expected: ['invalid YAML at line 2, column 1: a second document; a config is one document'] },
  {
    name: 'a YAML 1.1 merge key of a scalar',
    text: '%YAML 1.1\n---\ndomain: &d home.example.net\nnodes: {<<: *d}\n',
    expected: ['invalid YAML: Merge sources must be maps or map aliases'],
  },
  {
    name: 'a key twice in one mapping',
    text: 'domain: home.example.net\napps:\n  web: {image: "a:1"}\n  db: {image: "b:1"}\n  web: {image: "c:1"}\n',
    expected: ['invalid YAML at line 5, column 3: Map keys must be unique'],
  },
  {
    name: 'no environments',
    mutate: (c) => delete c.environments,
    expected: ['environments: expected a mapping of at least one environment'],
  },
];

function configText(testCase: (typeof BAD_CONFIGS)[number]): string {
  if (testCase.text !== undefined) return testCase.text;
  const config = platformObject();
  testCase.mutate!(config);
  return toYamlText(config);
}

describe('config validation', () => {
  let dir: string;
  let outdir: string;

  beforeEach(() => {
    dir = tempDir();
    outdir = join(dir, 'k8s');
    // Existing output that a failed synth must leave exactly as it is.
    mkdirSync(join(outdir, 'dev', 'apps'), { recursive: true });
    writeFileSync(join(outdir, 'dev', 'apps', 'application-keep.yaml'), 'kind: Application # previous synth\n');
    writeFileSync(join(outdir, 'stale-but-untouched.txt'), 'x');
  });

  it.each(BAD_CONFIGS)('$name: names the path, exits 2, leaves the output alone', (testCase) => {
    const file = join(dir, 'homelab.yaml');
    writeFileSync(file, configText(testCase));
    const before = readTree(outdir);

    const result = runMain(['--config', file, '--out', outdir]);

    expect(result.status).toBe(2);
    for (const expected of testCase.expected) {
      if (typeof expected === 'string') expect(result.stderr).toContain(expected);
      else expect(result.stderr).toMatch(expected);
    }
    expect(result.stderr).toContain(file);
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(result.stdout).toBe('');
    expect(readTree(outdir)).toEqual(before);
  });

  it('reports all problems at once', () => {
    const config = platformObject();
    config.services.longhorn.replica = 2;
    config.environments.staging.domain = 'Bad_Domain';
    config.apps['node-red'].image = 'nodered:latest';
    expect(() => parseText(toYamlText(config), 'homelab.yaml')).toThrow(
      expect.objectContaining({
        problems: expect.arrayContaining([
          expect.stringContaining('services.longhorn.replica: unknown key'),
          expect.stringContaining('environments.staging.domain:'),
          expect.stringContaining('apps.node-red.image:'),
        ]),
      }),
    );
  });

  it('an unreadable file is a user error too', () => {
    const before = readTree(outdir);
    const result = runMain(['--config', join(dir, 'missing.yaml'), '--out', outdir]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('missing.yaml: cannot read the config file (no such file)');
    expect(readTree(outdir)).toEqual(before);
  });

  it('an unknown --env or option is a user error', () => {
    const file = join(dir, 'homelab.yaml');
    writeFileSync(file, platformText());
    expect(runMain(['--config', file, '--out', outdir, '--env', 'qa']).stderr).toContain(
      '--env: expected one of the environments in',
    );
    expect(runMain(['--config', file, '--out', outdir, '--envs', 'prod']).status).toBe(2);
  });

  it('the real CLI exits 2 with no stack trace and writes nothing', () => {
    const file = join(dir, 'homelab.yaml');
    const config = platformObject();
    config.environments.prod.services.longhorn.replicas = 'three';
    writeFileSync(file, toYamlText(config));
    const before = readTree(outdir);

    const result = runCli(['--config', file, '--out', outdir]);

    expect(result.status).toBe(2);
    expect(result.stderr).toContain('environments.prod.services.longhorn.replicas: expected an integer between 1 and 10, received "three"');
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(readTree(outdir)).toEqual(before);
  });
});

describe('environment merge', () => {
  it('overrides the base by deep merge and removes keys set to null', () => {
    const config = parseText(platformText(), 'homelab.yaml');
    const dev = config.environments.get('dev')!;
    const prod = config.environments.get('prod')!;
    expect(Object.keys(dev.nodes)).toEqual(['cp-1']);
    expect(Object.keys(prod.nodes)).toEqual(['cp-1', 'worker-1', 'gpu-1']);
    expect(settingsIn(dev, longhornEntry).replicas).toBe(1);
    expect(settingsIn(prod, longhornEntry).replicas).toBe(3);
    // Untouched siblings of an overridden key survive the merge.
    expect(settingsIn(dev, longhornEntry).storageClasses).toEqual(settingsIn(prod, longhornEntry).storageClasses);
    expect(Object.keys(settingsIn(dev, longhornEntry).recurringJobs)).toEqual(['daily-snapshot']);
    expect(Object.keys(settingsIn(prod, longhornEntry).recurringJobs).sort()).toEqual(['daily-snapshot', 'nightly-backup', 'weekly-trim']);
    expect(prod.sync.mode).toBe('manual');
    expect(dev.sync.mode).toBe('automated');
    expect(prod.sync.retry.limit).toBe(5);
  });

  it('fills defaults for what the config leaves out', () => {
    const config = platformObject();
    delete config.waves;
    delete config.sync;
    delete config.services.argocd;
    const dev = parseText(toYamlText(config), 'homelab.yaml').environments.get('dev')!;
    expect(dev.waves).toBe('dependencies');
    expect(dev.sync).toMatchObject({ mode: 'automated', prune: true, selfHeal: true, retry: { limit: 5 } });
    expect(dev.services.argocd).toEqual({ subdomain: 'argocd', replicas: 1 });
  });
});

describe('a cron expression', () => {
  const problems = (text: string) => {
    const result = cron.safeParse(text);
    return result.success ? [] : result.error.issues.map((issue) => issue.message);
  };

  it('takes what the CronJob controller, Longhorn and CloudNativePG take: lists, ranges, steps, month and weekday names', () => {
    for (const text of ['0 3 * * *', '*/15 * * * *', '0 0-23/2 1,15 * mon-fri', '30 2 1 jan,jul SUN', '5/20 * * * *', ' 0 3 * * 6 ', '0 3 ? * *', '*/05 * * * *']) {
      expect(problems(text), text).toEqual([]);
    }
  });

  it('refuses every field out of its range, malformed items and other field counts, saying which', () => {
    expect(problems('61 2 * * *')).toEqual(['expected a five-field cron expression such as "0 3 * * *": its minute "61" is outside 0-59']);
    expect(problems('0 24 0 13 7')).toEqual([
      'expected a five-field cron expression such as "0 3 * * *": its hour "24" is outside 0-23',
      'expected a five-field cron expression such as "0 3 * * *": its day of month "0" is outside 1-31',
      'expected a five-field cron expression such as "0 3 * * *": its month "13" is outside 1-12',
      'expected a five-field cron expression such as "0 3 * * *": its day of week "7" is outside 0-6',
    ]);
    expect(problems('a b c d e')[0]).toBe('expected a five-field cron expression such as "0 3 * * *": its minute "a" is not *, a number in 0-59 or a range of them');
    expect(problems('*/0 * * * *')).toEqual(['expected a five-field cron expression such as "0 3 * * *": its minute "*/0" has no step of 1 or more']);
    expect(problems('0 5-2 * * *')).toEqual(['expected a five-field cron expression such as "0 3 * * *": its hour "5-2" is a range that ends before it starts']);
    // A descriptor has no six-field form for CloudNativePG; six fields are Quartz's, not these parsers'.
    expect(problems('@daily')[0]).toMatch(/^expected a five-field cron expression such as "0 3 \* \* \*" \(minute hour/);
    expect(problems('0 0 3 * * *')).toHaveLength(1);
  });
});
