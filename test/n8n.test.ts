/**
 * n8n (automation): its environment from the domain and Secrets, probes and security
 * context, SQLite volume or PostgreSQL, the RabbitMQ user it brings into its namespace, its
 * waves, the config checks, and the checkpoint run against a fake API server.
 */
import { readFileSync } from 'node:fs';
import { App } from 'cdk8s';
import { describe, expect, it } from 'vitest';

import { IMAGES } from '../charts/versions';
import { answerAsApiServer, buildPlatform, platformObject, FAKE_API_TOKEN, FAKE_SLEEP, Manifest, manifestAt, manifestsOf, parseText, runWithFakeCommands, synthesizePlatformFixture, toYamlText, synthesizeEnvironment } from './support';

const envs = synthesizePlatformFixture();
const [dev, , prod] = envs;

const docsOf = (env = dev) => manifestsOf(env);

const deploymentOf = (env = dev) => manifestAt(env, 'n8n/deployment-n8n.yaml');
const containerOf = (env = dev) => deploymentOf(env).spec.template.spec.containers[0];
const envOf = (env = dev) => Object.fromEntries((containerOf(env).env as any[]).map((e) => [e.name, e.value ?? e.valueFrom]));

/** The example with `change` applied to its base `services.n8n`. */
function variant(change: (n8n: Record<string, any>, config: Record<string, any>) => void): Record<string, any> {
  const config = platformObject();
  change(config.services.n8n, config);
  return config;
}

describe('n8n', () => {
  it('takes its host, protocol and webhook URL from the environment\'s domain', () => {
    for (const env of envs) {
      const domain = env.environment === 'prod' ? 'home.example.net' : `${env.environment}.home.example.net`;
      expect(envOf(env)).toMatchObject({
        N8N_HOST: `n8n.${domain}`,
        N8N_PROTOCOL: 'https',
        N8N_PORT: '5678',
        WEBHOOK_URL: `https://n8n.${domain}/`,
        N8N_EDITOR_BASE_URL: `https://n8n.${domain}/`,
        GENERIC_TIMEZONE: 'Europe/Berlin',
        N8N_METRICS: 'true',
      });
    }
    const changed = synthesizeEnvironment(toYamlText(variant((n8n) => (n8n.subdomain = 'flows'))), 'dev').env;
    expect(envOf(changed)).toMatchObject({ N8N_HOST: 'flows.dev.home.example.net', WEBHOOK_URL: 'https://flows.dev.home.example.net/' });
  });

  it('reads the encryption key only from its declared Secret', () => {
    const container = containerOf();
    const entries = (container.env as any[]).filter((e) => e.name === 'N8N_ENCRYPTION_KEY');
    expect(entries).toEqual([{ name: 'N8N_ENCRYPTION_KEY', valueFrom: { secretKeyRef: { name: 'n8n-encryption-key', key: 'encryption-key' } } }]);
    expect(JSON.stringify(container)).not.toMatch(/ENCRYPTION_KEY_FILE|envFrom/);
  });

  it('declares its Secrets and an exposure that is not admin-only, and serves its port to clients', () => {
    const { platform } = buildPlatformOf();
    const n8n = platform.services.find((s) => s.serviceName === 'n8n')!;
    expect(n8n.secretNeeds.map((s) => `${s.namespace}/${s.name}: ${s.keys.join(',')}`)).toEqual(['n8n/n8n-encryption-key: encryption-key']);
    expect(n8n.exposures).toEqual([
      expect.objectContaining({ subdomain: 'n8n', serviceName: 'n8n', servicePort: 5678, podPort: 'http', admin: false }),
    ]);
    const selector = deploymentOf().spec.selector.matchLabels;
    expect(n8n.exposures[0].podSelector).toEqual(selector);
    expect(n8n.servedPorts).toEqual([{ port: 'http', podSelector: selector }]);
    expect(manifestAt(dev, 'n8n/service-n8n.yaml').spec.selector).toEqual(selector);
  });

  it('runs one pinned replica, Recreate, with liveness, readiness and startup probes on its health endpoints', () => {
    const deployment = deploymentOf();
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy).toEqual({ type: 'Recreate' });
    const container = containerOf();
    expect(container.image).toBe(IMAGES.n8n);
    expect(container.image).toMatch(/^docker\.io\/n8nio\/n8n:\d+\.\d+\.\d+$/);
    expect(container.livenessProbe.httpGet).toMatchObject({ path: '/healthz', port: 5678 });
    expect(container.readinessProbe.httpGet).toMatchObject({ path: '/healthz/readiness', port: 5678 });
    expect(container.startupProbe.httpGet).toMatchObject({ path: '/healthz', port: 5678 });
    // Ten minutes for a first start before liveness may restart it.
    expect(container.startupProbe.periodSeconds * container.startupProbe.failureThreshold).toBe(600);
    expect(container.resources).toEqual({ requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '2', memory: '2048Mi' } });
  });

  it('runs as the node user on a read-only root filesystem, writing only to its volumes', () => {
    const pod = deploymentOf().spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, fsGroupChangePolicy: 'OnRootMismatch' });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(containerOf().securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const mounts = Object.fromEntries((containerOf().volumeMounts as any[]).map((m) => [m.mountPath, m.name]));
    expect(mounts).toEqual({ '/tmp': 'tmp', '/home/node/.cache': 'cache', '/home/node/.n8n': 'data' });
    expect(manifestAt(dev, 'n8n/namespace-n8n.yaml').metadata.labels!['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it('keeps SQLite on a Longhorn volume that survives prunes', () => {
    const claim = manifestAt(dev, 'n8n/persistentvolumeclaim-n8n-data.yaml');
    expect(claim.spec).toMatchObject({ accessModes: ['ReadWriteOnce'], storageClassName: 'longhorn-replicated', resources: { requests: { storage: '5Gi' } } });
    expect(claim.metadata.annotations!['argocd.argoproj.io/sync-options']).toContain('Delete=false');
    expect(envOf()).toMatchObject({ DB_TYPE: 'sqlite' });
  });

  it('uses PostgreSQL instead, with its password from a declared Secret and no volume', () => {
    // PostgreSQL's names, underscores and capitals included, as the server has them.
    const config = variant((n8n) => (n8n.database = { postgres: { host: 'postgres.db.svc', database: 'Flows_2', user: 'n8n_app' } }));
    const { env } = synthesizeEnvironment(toYamlText(config), 'dev');
    const docs = manifestsOf(env);
    expect(docs.filter(({ manifest }) => manifest.kind === 'PersistentVolumeClaim' && manifest.metadata.namespace === 'n8n')).toEqual([]);
    expect(envOf(env)).toMatchObject({
      DB_TYPE: 'postgresdb',
      DB_POSTGRESDB_HOST: 'postgres.db.svc',
      DB_POSTGRESDB_PORT: '5432',
      DB_POSTGRESDB_DATABASE: 'Flows_2',
      DB_POSTGRESDB_USER: 'n8n_app',
      DB_POSTGRESDB_PASSWORD: { secretKeyRef: { name: 'n8n-postgres', key: 'password' } },
    });
    // The user folder still needs a writable place: an emptyDir.
    const volumes = deploymentOf(env).spec.template.spec.volumes as any[];
    expect(volumes.find((v) => v.name === 'user-folder')).toEqual({ name: 'user-folder', emptyDir: {} });
    expect(env.services.find((s) => s.name === 'n8n')!.dependsOn).not.toContain('longhorn');
  });

  it('feeds the RabbitMQ user\'s generated credentials to its rabbitmq credential type through $(VAR) expansion', () => {
    const entries = containerOf().env as any[];
    const names = entries.map((e) => e.name);
    const overwrite = entries.find((e) => e.name === 'CREDENTIALS_OVERWRITE_DATA');
    expect(JSON.parse(overwrite.value)).toEqual({
      rabbitmq: { hostname: 'rabbitmq.rabbitmq.svc', port: 5672, vhost: 'events', username: '$(RABBITMQ_USERNAME)', password: '$(RABBITMQ_PASSWORD)' },
    });
    // Kubernetes expands only variables defined earlier in the list.
    for (const variable of ['RABBITMQ_USERNAME', 'RABBITMQ_PASSWORD']) {
      expect(names.indexOf(variable)).toBeGreaterThanOrEqual(0);
      expect(names.indexOf(variable)).toBeLessThan(names.indexOf('CREDENTIALS_OVERWRITE_DATA'));
    }
    expect(envOf()).toMatchObject({
      RABBITMQ_HOST: 'rabbitmq.rabbitmq.svc',
      RABBITMQ_PORT: '5672',
      RABBITMQ_VHOST: 'events',
      RABBITMQ_USERNAME: { secretKeyRef: { name: 'n8n-user-credentials', key: 'username' } },
      RABBITMQ_PASSWORD: { secretKeyRef: { name: 'n8n-user-credentials', key: 'password' } },
    });
  });

  it('brings its RabbitMQ user into its namespace and syncs the Deployment after it, and after RabbitMQ and Longhorn', () => {
    for (const env of envs) {
      const docs = docsOf(env);
      const wave = (m: Manifest) => Number(m.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0);
      const user = manifestAt(env, 'n8n/user-n8n.yaml');
      const permission = manifestAt(env, 'n8n/permission-n8n.events.yaml');
      expect(user.spec.rabbitmqClusterReference).toEqual({ name: 'rabbitmq', namespace: 'rabbitmq' });
      expect(permission.spec).toMatchObject({ vhost: 'events', userReference: { name: 'n8n' } });
      expect(wave(deploymentOf(env))).toBeGreaterThanOrEqual(wave(permission));
      expect(wave(permission)).toBeGreaterThan(wave(user));
      expect(docs.some(({ path }) => path === 'rabbitmq/user-n8n.yaml')).toBe(false);
      expect(manifestAt(env, 'rabbitmq/rabbitmqcluster-rabbitmq.yaml').metadata.annotations).toEqual({ 'rabbitmq.com/topology-allowed-namespaces': 'n8n' });
      const summary = env.services.find((s) => s.name === 'n8n')!;
      expect(summary).toMatchObject({ layer: 'automation', namespace: 'n8n', dependsOn: ['external-secrets', 'longhorn', 'prometheus-operator-crds', 'rabbitmq', 'rabbitmq-operators', 'vault'] });
      const waveOf = (name: string) => env.services.find((s) => s.name === name)!.wave;
      for (const dependency of summary.dependsOn) expect(summary.wave).toBeGreaterThan(waveOf(dependency));
    }
  });

  it('scrapes /metrics on its port and alerts on failing executions, a blocked event loop and unavailability', () => {
    const monitor = manifestAt(prod, 'n8n/servicemonitor-n8n-n8n.yaml');
    expect(monitor.spec.endpoints[0]).toMatchObject({ port: 'http', path: '/metrics' });
    const rules = manifestAt(prod, 'n8n/prometheusrule-n8n-alerts.yaml').spec.groups[0].rules as any[];
    expect(rules.map((r) => r.alert)).toEqual(expect.arrayContaining(['N8nWorkflowExecutionsFailing', 'N8nEventLoopBlocked', 'N8nUnavailable']));
    expect(rules.some((r) => /TargetDown$/.test(r.alert) && r.expr.includes('n8n'))).toBe(true);
    expect(rules.find((r) => r.alert === 'N8nWorkflowExecutionsFailing').expr).toContain('increase(n8n_workflow_failed_total{');
    expect(envOf(prod)).toMatchObject({ N8N_METRICS_INCLUDE_MESSAGE_EVENT_BUS_METRICS: 'true' });
  });
});

describe('the n8n checkpoint', () => {
  const job = () => manifestAt(dev, 'n8n/job-n8n-checkpoint.yaml');
  /** A fake n8n and API server: readiness and the Secret's metadata answer unless told otherwise. */
  const curl = [
    'for url; do :; done',
    'echo "$*" >> "$FAKE_BIN/calls"',
    'case "$url" in',
    '  *healthz/readiness) [ -z "$NOT_READY" ] || { echo "curl: (22) 503" >&2; exit 22; }; echo \'{"status":"ok"}\' ;;',
    '  */secrets/n8n-user-credentials)',
    '    [ -z "$NO_SECRET" ] || { echo "curl: (22) 404" >&2; exit 22; }',
    `    ${answerAsApiServer(`printf '{"kind":"PartialObjectMetadata","metadata":{"name":"n8n-user-credentials","ownerReferences":[{"apiVersion":"rabbitmq.com/v1beta1","kind":"%s","name":"n8n"}]}}' "\${OWNER:-User}"`)} ;;`,
    '  *) exit 22 ;;',
    'esac',
  ].join('\n');
  const run = (env: Record<string, string> = {}) =>
    runWithFakeCommands(job().spec.template.spec.containers[0], { curl, sleep: FAKE_SLEEP }, {
      env,
      collect: (bin) => readFileSync(`${bin}/calls`, 'utf8'),
    });

  it('passes when n8n is ready and its RabbitMQ credentials Secret exists, asking for metadata only', () => {
    const result = run();
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Secret n8n-user-credentials exists, owned by User n8n');
    expect(result.collected).toContain('Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1 https://kubernetes.default.svc/api/v1/namespaces/n8n/secrets/n8n-user-credentials');
    expect(result.collected).toContain('http://n8n.n8n.svc:5678/healthz/readiness');
    // The pod's token reaches the API server (kube_get reads it from the mounted volume).
    expect(result.collected).toMatch(new RegExp(`--cacert [^\\n]+/serviceaccount/ca\\.crt -H Authorization: Bearer ${FAKE_API_TOKEN} -A homelab-checkpoint -H Accept`));
  });

  it('fails when n8n is not ready, the Secret is missing, or it is not the generated one', () => {
    expect(run({ NOT_READY: '1' }).status).not.toBe(0);
    const missing = run({ NO_SECRET: '1' });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('Secret n8n-user-credentials is missing');
    const foreign = run({ OWNER: 'ExternalSecret' });
    expect(foreign.status).not.toBe(0);
    expect(foreign.stderr).toContain('is not the one the topology operator generates for User n8n');
  });

  it('may read exactly that one Secret in its own namespace, nothing cluster-wide', () => {
    const docs = docsOf();
    const role = manifestAt(dev, 'n8n/role-n8n-checkpoint.yaml');
    expect(role.metadata.namespace).toBe('n8n');
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['secrets'], resourceNames: ['n8n-user-credentials'], verbs: ['get'] }]);
    expect(manifestAt(dev, 'n8n/rolebinding-n8n-checkpoint.yaml').subjects).toEqual([{ kind: 'ServiceAccount', name: 'n8n-checkpoint', namespace: 'n8n' }]);
    expect(docs.filter(({ path }) => path.startsWith('n8n/clusterrole'))).toEqual([]);
    expect(job().spec.template.spec.serviceAccountName).toBe('n8n-checkpoint');
  });

  it('without RabbitMQ checks readiness only, with no API access', () => {
    const { env } = synthesizeEnvironment(toYamlText(variant((n8n) => delete n8n.rabbitmq)), 'dev');
    const docs = manifestsOf(env);
    const spec = manifestAt(env, 'n8n/job-n8n-checkpoint.yaml').spec.template.spec;
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.containers[0].command[2]).not.toContain('kube_get');
    expect(docs.filter(({ path }) => /^n8n\/(role|user|permission)/.test(path))).toEqual([]);
    expect(env.services.find((s) => s.name === 'n8n')!.dependsOn).toEqual(['external-secrets', 'longhorn', 'prometheus-operator-crds', 'vault']);
  });
});

describe('services.n8n config', () => {
  const errorsOf = (config: Record<string, any>) => {
    try {
      parseText(toYamlText(config), 'homelab.yaml');
      return [];
    } catch (error) {
      return String((error as Error).message).split('\n');
    }
  };

  it('names the path of a RabbitMQ user that is not declared, a vhost it has no permissions on, or a disabled broker', () => {
    expect(errorsOf(variant((n8n) => (n8n.rabbitmq.user = 'flows')))).toContainEqual(
      expect.stringContaining('services.n8n.rabbitmq.user: expected a user declared in services.rabbitmq.users (home-assistant, n8n), received "flows"'),
    );
    expect(errorsOf(variant((n8n) => (n8n.rabbitmq.vhost = 'audit')))).toContainEqual(
      expect.stringContaining('services.n8n.rabbitmq.vhost: expected a vhost user "n8n" has permissions on (events), received "audit"'),
    );
    expect(errorsOf(variant((_n8n, config) => (config.services.rabbitmq.enabled = false)))).toContainEqual(
      expect.stringContaining('services.n8n.rabbitmq: expected services.rabbitmq.enabled'),
    );
  });

  it('names the path when SQLite has no Longhorn, an unknown storage class, or both databases', () => {
    expect(errorsOf(variant((_n8n, config) => (config.services.longhorn.enabled = false)))).toContainEqual(
      expect.stringContaining('services.n8n.database.sqlite: expected services.longhorn.enabled'),
    );
    expect(errorsOf(variant((n8n) => (n8n.database.sqlite.storageClass = 'fast')))).toContainEqual(
      expect.stringContaining('services.n8n.database.sqlite.storageClass: expected one of the Longhorn storage classes (longhorn-replicated, longhorn-scratch), received "fast"'),
    );
    expect(errorsOf(variant((n8n) => (n8n.database.postgres = { host: 'postgres.db.svc' })))).toContainEqual(
      expect.stringContaining('services.n8n.database: expected exactly one of sqlite, postgres or cloudnativePg'),
    );
    expect(errorsOf(variant((n8n) => (n8n.timezone = 'Berlin time')))).toContainEqual(expect.stringContaining('services.n8n.timezone: expected a time zone'));
  });

  it('reserves its name for apps', () => {
    expect(errorsOf(variant((_n8n, config) => (config.apps.n8n = { image: 'docker.io/n8nio/n8n:2.40.2', resources: config.services.n8n.resources })))).toContainEqual(
      expect.stringContaining('apps.n8n: expected another name: "n8n" is taken by a built-in service'),
    );
  });
});

function buildPlatformOf() {
  const config = parseText(toYamlText(platformObject()), 'homelab.yaml').environments.get('dev')!;
  return { platform: buildPlatform(new App(), 'dev', config) };
}
