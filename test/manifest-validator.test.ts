import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import Ajv from 'ajv';
import { cachedValidator, VALIDATOR_CACHE_DIR, validatorKey } from '../lib/tools/validate/compiled-validators';
import { ManifestValidator, SCHEMA_DIR } from '../lib/tools/validate/manifest-validator';
import { npmCommandArgs } from '../lib/util/npm-scripts';
import { main as validateMain, validateDirectory } from '../scripts/validate';
import { captureOutput, runNode } from './support';
import { tempDir } from './temp-dirs';

const validator = ManifestValidator.shared();

function deployment(spec: Record<string, unknown> = {}) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'apps', labels: { app: 'web' } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [
            {
              name: 'web',
              image: 'nginx:1.27',
              ports: [{ name: 'http', containerPort: 8080 }],
              resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: 1, memory: '2Gi' } },
            },
          ],
        },
      },
      ...spec,
    },
  };
}

function container(fields: Record<string, unknown>) {
  const doc = deployment();
  doc.spec.template.spec.containers = [fields as (typeof doc.spec.template.spec.containers)[number]];
  return doc;
}

function service(targetPort: unknown) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web' },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort }] },
  };
}

function application(spec: Record<string, unknown> = {}) {
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Application',
    metadata: { name: 'traefik', namespace: 'argocd', finalizers: ['resources-finalizer.argocd.argoproj.io'] },
    spec: {
      project: 'platform',
      destination: { server: 'https://kubernetes.default.svc', namespace: 'traefik' },
      source: {
        repoURL: 'https://traefik.github.io/charts',
        chart: 'traefik',
        targetRevision: '41.3.0',
        // x-kubernetes-preserve-unknown-fields: any Helm values are accepted.
        helm: { releaseName: 'traefik', valuesObject: { deployment: { replicas: 2 }, anything: ['goes'] } },
      },
      syncPolicy: { automated: { prune: true, selfHeal: true }, syncOptions: ['ServerSideApply=true'] },
      ...spec,
    },
  };
}

function recurringJob(task: string) {
  return {
    apiVersion: 'longhorn.io/v1beta2',
    kind: 'RecurringJob',
    metadata: { name: 'nightly-backup', namespace: 'longhorn-system' },
    spec: { name: 'nightly-backup', task, cron: '0 3 * * *', retain: 7, concurrency: 2, groups: ['default'] },
  };
}

describe('ManifestValidator: built-in Kubernetes kinds', () => {
  it('accepts a valid Deployment and ConfigMap', () => {
    expect(validator.validate(deployment())).toEqual([]);
    const configMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'settings' },
      data: { LOG_LEVEL: 'info' },
    };
    expect(validator.validate(configMap)).toEqual([]);
  });

  it('rejects a misspelled field, naming it', () => {
    expect(validator.validate(deployment({ replica: 3 }))).toEqual(['Deployment/web: spec.replica: unknown field']);
  });

  it('rejects unknown fields in metadata too', () => {
    const doc = { ...deployment(), metadata: { name: 'web', label: { app: 'web' } } };
    expect(validator.validate(doc)).toEqual(['Deployment/web: metadata.label: unknown field']);
  });

  it('rejects a wrong type with its path', () => {
    expect(validator.validate(deployment({ replicas: '3' }))).toEqual([
      'Deployment/web: spec.replicas: must be integer',
    ]);
    expect(validator.validate(container({ name: 'web', image: 5 }))).toEqual([
      'Deployment/web: spec.template.spec.containers.0.image: must be string',
    ]);
  });

  it('rejects a container without a name', () => {
    expect(validator.validate(container({ image: 'nginx' }))).toEqual([
      'Deployment/web: spec.template.spec.containers.0.name: required field is missing',
    ]);
  });

  it('reports every problem of a document', () => {
    expect(validator.validate(deployment({ replica: 3, replicas: '3' }))).toEqual([
      'Deployment/web: spec.replica: unknown field',
      'Deployment/web: spec.replicas: must be integer',
    ]);
  });

  it('accepts an IntOrString as integer or string, nothing else', () => {
    expect(validator.validate(service(8080))).toEqual([]);
    expect(validator.validate(service('http'))).toEqual([]);
    expect(validator.validate(service(true))).toEqual([
      'Service/web: spec.ports.0.targetPort: must be string or integer',
    ]);
  });

  it('accepts resource quantities as strings and numbers', () => {
    const doc = container({
      name: 'web',
      image: 'nginx',
      resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: 2 } },
    });
    expect(validator.validate(doc)).toEqual([]);
  });

  it('checks formats: Secret data must be base64', () => {
    const secret = (value: string) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 's' },
      data: { key: value },
    });
    expect(validator.validate(secret('aGVsbG8='))).toEqual([]);
    expect(validator.validate(secret('not base64!'))).toEqual(['Secret/s: data.key: must match format "byte"']);
  });
});

describe('ManifestValidator: custom resources', () => {
  it('accepts a valid Argo CD Application, rejects an unknown spec field', () => {
    expect(validator.validate(application())).toEqual([]);
    expect(validator.validate(application({ autoSync: true }))).toEqual([
      'Application/traefik: spec.autoSync: unknown field',
    ]);
  });

  it('validates custom resource metadata as ObjectMeta', () => {
    const doc = { ...application(), metadata: { name: 'traefik', labels: { a: 1 } } };
    expect(validator.validate(doc)).toEqual(['Application/traefik: metadata.labels.a: must be string']);
  });

  it('accepts a valid Longhorn RecurringJob, rejects a task outside the enum', () => {
    expect(validator.validate(recurringJob('backup'))).toEqual([]);
    const [error, ...rest] = validator.validate(recurringJob('backups'));
    expect(rest).toEqual([]);
    expect(error).toMatch(/^RecurringJob\/nightly-backup: spec\.task: must be one of "snapshot", .*"backup"/);
  });

  it('treats x-kubernetes-int-or-string as integer or string', () => {
    const route = (port: unknown) => ({
      apiVersion: 'traefik.io/v1alpha1',
      kind: 'IngressRoute',
      metadata: { name: 'web' },
      spec: {
        entryPoints: ['websecure'],
        routes: [{ match: 'Host(`web.lan`)', kind: 'Rule', services: [{ name: 'web', port }] }],
      },
    });
    expect(validator.validate(route(80))).toEqual([]);
    expect(validator.validate(route('http'))).toEqual([]);
    expect(validator.validate(route(['http']))).toEqual([
      'IngressRoute/web: spec.routes.0.services.0.port: must be integer or string',
    ]);
  });

  it('understands the Go regular expressions of CRD patterns', () => {
    const rule = (strategy: string) => ({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: { name: 'alerts' },
      spec: {
        groups: [{ name: 'a', partial_response_strategy: strategy, rules: [{ alert: 'Down', expr: 'up == 0' }] }],
      },
    });
    // The CRD's pattern is ^(?i)(abort|warn)?$
    expect(validator.validate(rule('WARN'))).toEqual([]);
    expect(validator.validate(rule('ignore'))).toHaveLength(1);
  });

  it('validates inside pod templates embedded in CRDs', () => {
    const ray = {
      apiVersion: 'ray.io/v1',
      kind: 'RayCluster',
      metadata: { name: 'ray' },
      spec: {
        headGroupSpec: {
          rayStartParams: {},
          template: { spec: { containers: [{ name: 'head', image: 'rayproject/ray:2.9.0', imagePullPolicy: 1 }] } },
        },
      },
    };
    expect(validator.validate(ray)).toEqual([
      'RayCluster/ray: spec.headGroupSpec.template.spec.containers.0.imagePullPolicy: must be string',
    ]);
  });

  it('applies CRD defaults before checking required fields, as the API server does', () => {
    // workerGroupSpecs[].minReplicas and maxReplicas are required but have defaults.
    const ray = {
      apiVersion: 'ray.io/v1',
      kind: 'RayCluster',
      metadata: { name: 'ray' },
      spec: {
        headGroupSpec: {
          rayStartParams: {},
          template: { spec: { containers: [{ name: 'head', image: 'rayproject/ray' }] } },
        },
        workerGroupSpecs: [
          {
            groupName: 'gpu',
            rayStartParams: {},
            template: { spec: { containers: [{ name: 'worker', image: 'rayproject/ray' }] } },
          },
        ],
      },
    };
    expect(validator.validate(ray)).toEqual([]);
    const { groupName: _, ...withoutGroupName } = ray.spec.workerGroupSpecs[0];
    expect(validator.validate({ ...ray, spec: { ...ray.spec, workerGroupSpecs: [withoutGroupName] } })).toEqual([
      'RayCluster/ray: spec.workerGroupSpecs.0.groupName: required field is missing',
    ]);
  });
});

describe('ManifestValidator: scope', () => {
  const clusterRole = (metadata: Record<string, unknown>) => ({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata, rules: [] });
  const clusterIssuer = (metadata: Record<string, unknown>) => ({
    apiVersion: 'cert-manager.io/v1',
    kind: 'ClusterIssuer',
    metadata,
    spec: { selfSigned: {} },
  });

  it('rejects a namespace on built-in and custom cluster-scoped kinds', () => {
    expect(validator.validate(clusterRole({ name: 'reader', namespace: 'apps' }))).toEqual([
      'ClusterRole/reader: metadata.namespace: ClusterRole is cluster-scoped and must not name a namespace',
    ]);
    expect(validator.validate(clusterIssuer({ name: 'ca', namespace: 'cert-manager' }))).toEqual([
      'ClusterIssuer/ca: metadata.namespace: ClusterIssuer is cluster-scoped and must not name a namespace',
    ]);
  });

  it('accepts cluster-scoped kinds without one, and namespaced kinds with one', () => {
    expect(validator.validate(clusterRole({ name: 'reader' }))).toEqual([]);
    expect(validator.validate(clusterIssuer({ name: 'ca' }))).toEqual([]);
    expect(validator.validate({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'apps' } })).toEqual([]);
    expect(validator.validate(deployment())).toEqual([]);
  });
});

describe('ManifestValidator: documents without a schema', () => {
  it('rejects a kind it has no schema for instead of skipping it', () => {
    const doc = { apiVersion: 'argoproj.io/v1alpha1', kind: 'ApplicationSet', metadata: { name: 'all' }, spec: {} };
    expect(validator.validate(doc)).toEqual(['ApplicationSet/all: no schema for argoproj.io/v1alpha1 ApplicationSet']);
  });

  it('rejects documents without apiVersion or kind, and non-objects', () => {
    expect(validator.validate({ kind: 'ConfigMap', metadata: { name: 'a' } })).toEqual([
      'ConfigMap/a: missing apiVersion',
    ]);
    expect(validator.validate({ apiVersion: 'v1', metadata: { name: 'a' } })).toEqual(['?/a: missing kind']);
    expect(validator.validate('text')).toEqual(['document: must be a YAML mapping']);
  });
});

describe('validateDirectory', () => {
  const dir = tempDir('validate-');

  it('validates every document of every YAML file, recursively', () => {
    mkdirSync(join(dir, 'apps'));
    writeFileSync(
      join(dir, 'namespace.yaml'),
      '# generated\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n',
    );
    writeFileSync(
      join(dir, 'apps', 'web.yaml'),
      [
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web',
        'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replica: 1',
      ].join('\n---\n'),
    );
    const report = validateDirectory(dir);
    expect(report.files).toBe(2);
    expect(report.documents).toBe(3);
    expect(report.errors).toEqual([
      `${join(dir, 'apps', 'web.yaml')} (document 2): Deployment/web: spec.selector: required field is missing`,
      `${join(dir, 'apps', 'web.yaml')} (document 2): Deployment/web: spec.template: required field is missing`,
      `${join(dir, 'apps', 'web.yaml')} (document 2): Deployment/web: spec.replica: unknown field`,
    ]);
  });

  it('reports a file that is not YAML, holds no document, or has aliases it cannot resolve, by its path and without a crash', () => {
    const files = tempDir('validate-');
    const bomb = ['a: &a [x, x]', ...['b', 'c', 'd', 'e'].map((key, i) => `${key}: &${key} [${Array(10).fill(`*${'abcd'[i]}`).join(', ')}]`)].join('\n');
    const written = {
      'broken.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\n',
      'comments.yaml': '# nothing here\n',
      'unresolved.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: *a}\n',
      'bomb.yaml': `${bomb}\n`,
    };
    for (const [name, text] of Object.entries(written)) writeFileSync(join(files, name), text);
    const report = validateDirectory(files);
    expect(report.files).toBe(4);
    const byFile = new Map(report.errors.map((error) => [error.slice(0, error.indexOf(': ')), error.slice(error.indexOf(': ') + 2)]));
    expect([...byFile.keys()].sort()).toEqual(Object.keys(written).map((name) => join(files, name)).sort());
    expect(byFile.get(join(files, 'broken.yaml'))).toMatch(/flow/i);
    expect(byFile.get(join(files, 'comments.yaml'))).toBe('no YAML document');
    expect(byFile.get(join(files, 'unresolved.yaml'))).toMatch(/^Unresolved alias/);
    expect(byFile.get(join(files, 'bomb.yaml'))).toMatch(/alias count/);
  });

  it('reports a missing directory; the command takes one for a usage error (exit 2)', () => {
    expect(validateDirectory(join(dir, 'missing')).errors).toEqual([`${join(dir, 'missing')}: no such directory`]);
    const file = join(tempDir('validate-'), 'a.yaml');
    writeFileSync(file, 'kind: ConfigMap\n');
    for (const [path, found] of [[join(dir, 'missing'), 'found nothing there'], [file, 'received a file']]) {
      const { status, stderr } = captureOutput(() => validateMain([path]));
      expect(stderr.split('\n')[0]).toBe(`error: ${path}: expected a directory of YAML files (<dir>), ${found}`);
      expect(status).toBe(2);
    }
  });
});

describe('compiled validators kept on disk', () => {
  const dir = tempDir('validators-');

  /** Broken and valid documents of built-in kinds and CRDs: closed objects, formats, Go patterns, refs to ObjectMeta. */
  const documents = [
    deployment({ replica: 1 }),
    container({ name: 'web', image: 'nginx:1.27', ports: [{ containerPort: '8080' }] }),
    service({ bad: true }),
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { key: 'not base64!' } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', labels: { a: 1 } }, data: { key: 'aGVsbG8=' } },
    application({ sourc: {} }),
    recurringJob('backup'),
    recurringJob('defrag-everything'),
    ...['WARN', 'ignore'].map((strategy) => ({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: { name: 'alerts', annotations: { a: 2 } },
      spec: { groups: [{ name: 'a', partial_response_strategy: strategy, rules: [{ alert: 'Down', expr: 'up == 0' }] }] },
    })),
  ];

  it('report exactly what the compiled ones report, one module per kind', () => {
    const compiling = new ManifestValidator(SCHEMA_DIR, dir);
    const compiled = documents.map((doc) => compiling.validate(doc));
    expect(compiled.flat()).toEqual(
      expect.arrayContaining(['Deployment/web: spec.replica: unknown field', 'Secret/s: data.key: must match format "byte"', 'Secret/s: metadata.labels.a: must be string']),
    );
    expect(readdirSync(dir).filter((file) => file.endsWith('.js'))).toHaveLength(new Set(documents.map((doc) => `${doc.apiVersion} ${doc.kind}`)).size);
    const fromCache = new ManifestValidator(SCHEMA_DIR, dir);
    expect(documents.map((doc) => fromCache.validate(doc))).toEqual(compiled);
    // The shared validator (the project's cache, cold or warm) agrees too.
    expect(documents.map((doc) => validator.validate(doc))).toEqual(compiled);
  });

  it('are compiled once per key; a module that does not load is compiled again and replaced', () => {
    const cacheDir = join(dir, 'unit');
    const schema = { type: 'object', properties: { port: { type: 'integer' } }, additionalProperties: false };
    const key = validatorKey([schema]);
    let compiles = 0;
    const compile = () => {
      compiles += 1;
      const ajv = new Ajv({ allErrors: true, code: { source: true } });
      return { ajv, validate: ajv.compile(schema) };
    };
    const first = cachedValidator(key, compile, cacheDir);
    const second = cachedValidator(key, compile, cacheDir);
    expect(compiles).toBe(1);
    for (const value of [{ port: 1 }, { port: 'a', extra: 1 }]) {
      expect(second(value)).toBe(first(value));
      expect(second.errors).toEqual(first.errors);
    }
    writeFileSync(join(cacheDir, `${key}.js`), 'module.exports = (');
    expect(cachedValidator(key, compile, cacheDir)({ port: 'a' })).toBe(false);
    expect(compiles).toBe(2);
    expect(readFileSync(join(cacheDir, `${key}.js`), 'utf8')).toContain('module.exports');
    expect(cachedValidator(key, compile, cacheDir)({ port: 2 })).toBe(true);
    expect(compiles).toBe(2);
    expect(readdirSync(cacheDir)).toEqual([`${key}.js`]);
  });

  it('are named alike by the commands and the tests, so the tests load what `npm run validate` compiled', () => {
    // A kind no synth writes, so no other test's validation puts its module back meanwhile.
    const limits = { apiVersion: 'v1', kind: 'LimitRange', metadata: { name: 'web', namespace: 'web' }, spec: { limits: [{ type: 'Container', default: { cpu: '100m' } }] } };
    const own = join(dir, 'names');
    expect(new ManifestValidator(SCHEMA_DIR, own).validate(limits)).toEqual([]);
    const [module] = readdirSync(own);
    // Gone from the project's cache (an earlier run may have left it): only the command can put it back.
    rmSync(join(VALIDATOR_CACHE_DIR, module), { force: true });
    const input = tempDir();
    writeFileSync(join(input, 'limitrange.yaml'), `${JSON.stringify(limits)}\n`);
    const run = runNode([...npmCommandArgs('validate'), input]);
    expect(run.status, run.stderr).toBe(0);
    expect(readdirSync(VALIDATOR_CACHE_DIR)).toContain(module);
  });

  it('are named by every part they are generated from', () => {
    const schema = { type: 'object', properties: { port: { type: 'integer' } } };
    expect(validatorKey([schema, 'a'])).toBe(validatorKey([structuredClone(schema), 'a']));
    expect(validatorKey([schema, 'a'])).not.toBe(validatorKey([schema, 'b']));
    expect(validatorKey([schema])).not.toBe(validatorKey([{ ...schema, additionalProperties: false }]));
  });
});
