import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { helmValuesErrors } from '../lib/tools/validate/helm-values';
import { App } from 'cdk8s';

import { Vault } from '../charts/vault';
import { invariantNamed } from './invariants';
import { buildPlatform, chartValues, platformObject, platformText, FAKE_CLOCK, FAKE_SLEEP, manifestsOf, parseText, runWithFakeCommands, synthesizePlatformFixture, synthesizeEnvironment, toYamlText, withFiles } from './support';
import { settingsIn } from '../lib/model/catalog';
import { vaultEntry } from '../charts/vault';
import { CHECK_START_SECONDS } from '../lib/model/checkpoint';

const envs = synthesizePlatformFixture();
const env = (name: string) => envs.find((e) => e.environment === name)!;
const manifest = (envName: string, path: string) => manifestsOf(env(envName)).find((m) => m.path === path)!.manifest;
const vaultValues = (envName: string) => chartValues(env(envName), 'vault');
const container = (envName: string, path: string) => manifest(envName, path).spec.template.spec.containers[0];

function parseWith(mutate: (config: Record<string, any>) => void): () => unknown {
  const config = platformObject();
  mutate(config);
  return () => parseText(toYamlText(config), 'homelab.yaml');
}

describe('Vault config', () => {
  it('is standalone in dev and staging, HA raft with three replicas in prod', () => {
    const config = parseText(platformText(), 'homelab.yaml');
    expect([...config.environments].map(([name, e]) => [name, settingsIn(e, vaultEntry).enabled, settingsIn(e, vaultEntry).replicas])).toEqual([
      ['dev', true, 1],
      ['staging', true, 1],
      ['prod', true, 3],
    ]);
  });

  it('rejects more replicas than schedulable nodes, naming the path', () => {
    // Prod has three nodes; tainting one leaves two for the one-pod-per-node anti-affinity.
    expect(parseWith((c) => (c.nodes['gpu-1'].taints = [{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }]))).toThrow(
      // Two nodes: 1, as 2 is no raft quorum.
      /environments\.prod\.services\.vault\.replicas: expected 1 \(at most one Vault pod per schedulable node: cp-1, worker-1;/,
    );
    expect(parseWith((c) => (c.environments.prod.services.vault.replicas = 5))).toThrow(/environments\.prod\.services\.vault\.replicas: expected 1 or 3 \(at most one Vault pod per schedulable node/);
    // With raft snapshots, only raft's counts: with two nodes, none fits.
    expect(
      parseWith((c) => {
        c.nodes['gpu-1'].taints = [{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }];
        c.environments.prod.services.vault.backup = {};
      }),
    ).toThrow(/vault\.replicas: expected at least 3 schedulable nodes \(raft snapshots need 3 or 5 replicas\), or no backup \(at most one Vault pod/);
    // A PreferNoSchedule taint does not keep a pod off the node.
    expect(parseWith((c) => (c.nodes['gpu-1'].taints = [{ key: 'nvidia.com/gpu', effect: 'PreferNoSchedule' }]))).not.toThrow();
  });

  it('rejects an even replica count (no raft quorum gain), naming the path', () => {
    expect(parseWith((c) => (c.environments.prod.services.vault.replicas = 2))).toThrow(
      /environments\.prod\.services\.vault\.replicas: expected 1 \(standalone\) or an odd number/,
    );
  });

  it('needs Longhorn and a known storage class; External Secrets needs Vault', () => {
    expect(parseWith((c) => (c.services.longhorn.enabled = false))).toThrow(/services\.vault\.enabled: expected services\.longhorn\.enabled/);
    expect(parseWith((c) => (c.services.vault.storageClass = 'fast'))).toThrow(
      /services\.vault\.storageClass: expected one of the Longhorn storage classes \(longhorn-replicated, longhorn-scratch\), received "fast"/,
    );
    expect(parseWith((c) => (c.services.vault.enabled = false))).toThrow(/services\.externalSecrets\.enabled: expected services\.vault\.enabled/);
    expect(parseWith((c) => (c.services.vault.unseal = 'auto'))).toThrow(/services\.vault\.unseal: unknown key/);
  });
});

describe('Vault chart values', () => {
  it('match the chart schema in every environment', () => {
    for (const e of envs) expect(helmValuesErrors('vault', vaultValues(e.environment)), e.environment).toEqual([]);
  });

  it('run standalone with file storage in dev', () => {
    const values = vaultValues('dev');
    expect(values.server.ha).toEqual({ enabled: false });
    expect(values.server.standalone.enabled).toBe(true);
    expect(values.server.standalone.config).toContain('storage "file"');
    expect(values.ui).toEqual({ enabled: true, activeVaultPodOnly: false });
  });

  it('run HA with raft in prod, every pod joining the others', () => {
    const values = vaultValues('prod');
    expect(values.server.standalone).toEqual({ enabled: false });
    expect(values.server.ha).toMatchObject({ enabled: true, replicas: 3, raft: { enabled: true, setNodeId: true } });
    const config: string = values.server.ha.raft.config;
    expect(config).toContain('storage "raft"');
    expect(config).toContain('service_registration "kubernetes"');
    expect(config.match(/leader_api_addr = "http:\/\/vault-\d\.vault-internal:8200"/g)).toHaveLength(3);
    expect(values.ui.activeVaultPodOnly).toBe(true);
  });

  it('keep the chart default one-pod-per-node anti-affinity (the config check sizes replicas to it)', () => {
    for (const e of envs) expect(vaultValues(e.environment).server.affinity, e.environment).toBeUndefined();
  });

  it('turn the injector and CSI off, put data on Longhorn and open metrics without a token', () => {
    for (const e of envs) {
      const values = vaultValues(e.environment);
      expect(values.injector).toEqual({ enabled: false });
      expect(values.csi).toEqual({ enabled: false });
      expect(values.server.dataStorage).toEqual({ enabled: true, size: '10Gi', storageClass: 'longhorn-replicated' });
      const config: string = values.server.ha.raft?.config ?? values.server.standalone.config;
      expect(config).toMatch(/listener "tcp" \{[^]*telemetry \{\s*unauthenticated_metrics_access = true\s*\}/);
      expect(config).toContain('disable_mlock = true');
      // Placeholders the chart's start script replaces must not appear by accident.
      expect(config).not.toMatch(/HOST_IP|POD_IP|HOSTNAME|API_ADDR|RAFT_ADDR/);
      expect(values.server.statefulSet.securityContext.container).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      expect(values.server.statefulSet.securityContext.pod.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    }
  });
});

describe('Vault service declarations', () => {
  const prodVault = () => {
    const config = parseText(platformText(), 'homelab.yaml').environments.get('prod')!;
    return buildPlatform(new App(), 'prod', config).services.find((s) => s.serviceName === 'vault') as Vault;
  };

  it('exposes the UI as an admin exposure, serves clients on 8200 and depends on Longhorn', () => {
    const vault = prodVault();
    expect(vault.exposures).toEqual([
      expect.objectContaining({ subdomain: 'vault', serviceName: 'vault-ui', servicePort: 8200, admin: true }),
    ]);
    expect(vault.servedPorts).toEqual([{ port: 8200, podSelector: { 'app.kubernetes.io/name': 'vault', 'app.kubernetes.io/instance': 'vault', component: 'server' } }]);
    expect([...vault.dependencies].map((d) => d.serviceName)).toEqual(['longhorn']);
    expect(vault.address).toBe('http://vault-active.vault.svc:8200');
  });

  it('is scraped on /v1/sys/metrics?format=prometheus and alerts when sealed', () => {
    const monitor = manifest('prod', 'vault/podmonitor-vault-server.yaml');
    expect(monitor.spec.podMetricsEndpoints[0]).toMatchObject({ port: 'http', path: '/v1/sys/metrics', params: { format: ['prometheus'] } });
    const rules = manifest('prod', 'vault/prometheusrule-vault-alerts.yaml').spec.groups[0].rules;
    expect(rules.find((r: any) => r.alert === 'VaultSealed')).toMatchObject({ expr: 'vault_core_unsealed{homelab_service="vault"} == 0', labels: { severity: 'critical' } });
  });
});

describe('Vault checkpoint', () => {
  /** A fake curl printing the HTTP status the pod in the URL answers, from CODES ("vault-0=200 ..."). */
  const curl = [
    'for url; do :; done',
    'pod=${url#http://}; pod=${pod%%.*}',
    'for entry in $CODES; do case "$entry" in "$pod="*) printf "%s" "${entry#*=}"; exit 0 ;; esac; done',
    'printf 000; exit 7',
  ].join('\n');
  const run = (envName: string, codes: string) =>
    runWithFakeCommands(container(envName, 'vault/job-vault-checkpoint.yaml'), { curl, sleep: FAKE_SLEEP, date: FAKE_CLOCK }, { env: { CODES: codes } });

  it('passes when every pod is unsealed: active or standby', () => {
    expect(run('dev', 'vault-0=200').status).toBe(0);
    const prod = run('prod', 'vault-0=429 vault-1=200 vault-2=429');
    expect(prod.status).toBe(0);
    expect(prod.stdout).toContain('vault-1: initialised, unsealed, active');
  });

  it('fails at once on a sealed pod, pointing at the runbook', () => {
    const sealed = run('prod', 'vault-0=200 vault-1=503 vault-2=429');
    expect(sealed.status).not.toBe(0);
    expect(sealed.stderr).toContain('vault-1: Vault is sealed. Unseal it with the unseal keys (vault operator unseal): see README "Vault: one-time setup"');
  });

  it('fails at once when Vault is not initialised, pointing at the runbook', () => {
    const uninitialised = run('dev', 'vault-0=501');
    expect(uninitialised.status).not.toBe(0);
    expect(uninitialised.stderr).toMatch(/vault-0: Vault is not initialised\. .*vault operator init.*README "Vault: one-time setup"/);
  });

  it('gives all pods one wait, which its Job outlasts with a last ask and pause after the pod\'s start', () => {
    const job = manifest('prod', 'vault/job-vault-checkpoint.yaml');
    const script: string = job.spec.template.spec.containers[0].command.at(-1);
    const [, waitSeconds] = /^deadline=\$\(\( \$\(date \+%s\) \+ (\d+) \)\)\nfor pod in \$VAULT_PODS; do/m.exec(script)!;
    const callSeconds = Number(/--max-time (\d+)/.exec(script)![1]);
    const pauseSeconds = Number(/\bsleep (\d+)/.exec(script)![1]);
    const pods = (job.spec.template.spec.containers[0].env as { name: string; value: string }[]).find((e) => e.name === 'VAULT_PODS')!.value.split(' ').length;
    expect(pods).toBeGreaterThan(1);
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(CHECK_START_SECONDS + Number(waitSeconds) + pauseSeconds + pods * callSeconds);
  });

  it('waits for a pod that does not answer yet, then gives up', () => {
    const silent = run('dev', '');
    expect(silent.status).not.toBe(0);
    expect(silent.stdout).toContain('waiting for vault-0 to answer (HTTP 000)');
    expect(silent.stderr).toContain('vault-0: no health answer');
  });
});

describe('Vault configurator', () => {
  const job = manifest('prod', 'vault/job-vault-configurator.yaml');
  const configMap = manifest('prod', 'vault/configmap-vault-configurator.yaml');

  it('runs after the checkpoint, as a PostSync hook with the pinned Vault CLI, its token from a Secret', () => {
    expect(job.metadata.annotations).toMatchObject({ 'argocd.argoproj.io/hook': 'PostSync', 'argocd.argoproj.io/sync-wave': '1' });
    expect(manifest('prod', 'vault/job-vault-checkpoint.yaml').metadata.annotations?.['argocd.argoproj.io/sync-wave']).toBeUndefined();
    const spec = job.spec.template.spec;
    expect(spec.containers[0].image).toBe('docker.io/hashicorp/vault:2.0.4');
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.containers[0].env.find((e: any) => e.name === 'VAULT_TOKEN')).toEqual({
      name: 'VAULT_TOKEN',
      valueFrom: { secretKeyRef: { name: 'vault-configurator', key: 'token', optional: true } },
    });
    expect(spec.volumes).toContainEqual({ name: 'config', configMap: { name: 'vault-configurator' } });
  });

  it('limits every Vault request, and outlasts a policy and a role per access, their deletions and four requests per generated value at that limit', () => {
    const env = job.spec.template.spec.containers[0].env as { name: string; value?: string }[];
    const limitSeconds = Number(/^(\d+)s$/.exec(env.find((e) => e.name === 'VAULT_CLIENT_TIMEOUT')!.value!)![1]);
    const lines = (key: string) => (configMap.data![key] as string).split('\n').filter(Boolean).length;
    expect(lines('roles')).toBeGreaterThan(0);
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(CHECK_START_SECONDS + (4 * lines('roles') + 4 * lines('generated')) * limitSeconds);
    // Held by the invariant over our hook Jobs: without the limit in its env, the Vault CLI's calls are named.
    const invariant = invariantNamed('every call the scripts of our hook Jobs make');
    const dev = synthesizeEnvironment(platformText(), 'dev');
    expect(invariant.check([dev])).toEqual([]);
    const path = 'vault/job-vault-configurator.yaml';
    const edited = (from: RegExp, to: string) => withFiles(dev, (files) => files.set(path, files.get(path)!.replace(from, to)));
    const problem = `dev/${path} configurator: the vault CLI without a VAULT_CLIENT_TIMEOUT of whole seconds (e.g. 10s) in its env`;
    expect(invariant.check([edited(/name: VAULT_CLIENT_TIMEOUT\b/, 'name: VAULT_CLIENT_TIMEOUT_UNUSED')])).toEqual([problem]);
    // Empty, the CLI takes its default of 60 s a request.
    expect(invariant.check([edited(/(name: VAULT_CLIENT_TIMEOUT\n\s+value: )\S+/, '$1""')])).toEqual([problem]);
  });

  /**
   * A fake `vault` CLI with state in files: mounts, auth methods, policies and roles; every call
   * is logged. Tokens other than "valid" are rejected.
   */
  const vault = String.raw`echo "$*" >> "$FAKE_BIN/log"
state="$FAKE_BIN/state"
case "$1 $2" in
  "token lookup") [ "$VAULT_TOKEN" = valid ] || { echo "permission denied" >&2; exit 2; } ;;
  "token renew") ;;
  "secrets list") printf 'Path Type\n---- ----\ncubbyhole/    cubbyhole\n'; cat "$state/mounts" 2> /dev/null || : ;;
  "secrets enable") echo "homelab/    kv" >> "$state/mounts" ;;
  "auth list") printf 'Path Type\n---- ----\ntoken/    token\n'; cat "$state/auths" 2> /dev/null || : ;;
  "auth enable") echo "kubernetes/    kubernetes" >> "$state/auths" ;;
  "policy list") printf 'default\nroot\n'; cat "$state/policies" ;;
  "policy write") grep -qx "$3" "$state/policies" || echo "$3" >> "$state/policies"; cp "$4" "$state/policy-$3" ;;
  "policy delete") grep -vx "$3" "$state/policies" > "$state/p"; mv "$state/p" "$state/policies" ;;
  "list auth/kubernetes/role") printf 'Keys\n----\n'; cat "$state/roles" ;;
  "kv get") [ -f "$state/probe" ] || exit 2 ;;
  "kv put") touch "$state/probe" ;;
  *)
    case "$1 $2" in
      "write auth/kubernetes/role/"*) role=$(basename "$2"); grep -qx "$role" "$state/roles" || echo "$role" >> "$state/roles" ;;
      "delete auth/kubernetes/role/"*) grep -vx "$(basename "$2")" "$state/roles" > "$state/r"; mv "$state/r" "$state/roles" ;;
    esac ;;
esac`;

  it('refuses to run without a valid token, pointing at the runbook', () => {
    const run = runWithFakeCommands(job.spec.template.spec.containers[0], { vault }, { env: { VAULT_TOKEN: '' } });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('no Vault token: create the Secret vault-configurator (key token) in namespace vault once, see README "Vault: one-time setup"');
  });

  it('says so when Vault does not list its engines, instead of enabling one again', () => {
    const run = runWithFakeCommands(job.spec.template.spec.containers[0], { vault: `case "$1 $2" in "secrets list") echo "context deadline exceeded" >&2; exit 2 ;; esac\n${vault}` }, {
      env: { VAULT_TOKEN: 'valid' },
      collect: (bin) => readFileSync(join(bin, 'log'), 'utf8'),
    });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("cannot list Vault's secrets engines");
    expect(run.collected).not.toContain('secrets enable');
  });

  /** The configurator run twice over one state (configureIn), once for the tests that read it. */
  let configuredRuns: ReturnType<typeof configureIn> | undefined;
  const configured = () => (configuredRuns ??= configureIn());

  it('enables the KV engine and Kubernetes auth, writes the declared roles and policies, removes only stale managed ones', () => {
    const first = configured();
    expect(first.status, first.stderr).toBe(0);
    const { log, policies, roles } = first.collected;
    expect(log).toContain('secrets enable -path=homelab -version=2 kv');
    expect(log).toContain('auth enable -path=kubernetes kubernetes');
    expect(log).toContain('write auth/kubernetes/config kubernetes_host=https://kubernetes.default.svc');
    expect(log).toContain(
      'write auth/kubernetes/role/homelab-external-secrets bound_service_account_names=external-secrets-secrets bound_service_account_namespaces=external-secrets ' +
        'token_policies=homelab-external-secrets audience=vault token_ttl=20m token_max_ttl=1h',
    );
    expect(log).toContain('kv put -mount=homelab external-secrets/external-secrets-probe probe=delivered-from-vault');
    // One role and policy per consuming service; the stale managed ones are gone; the operator's own stay.
    const consumers = [...new Set(env('prod').secrets.map((need) => `homelab-${need.service}`))];
    expect(consumers).toContain('homelab-external-secrets');
    expect(policies).toEqual([...consumers, 'ops-admin'].sort());
    expect(roles).toEqual([...consumers, 'ops-admin'].sort());
  });

  /** The job's container with the ConfigMap's files where the pod mounts them: here, in the fakes' directory. */
  const configurator = () => {
    const c = job.spec.template.spec.containers[0];
    return { ...c, command: ['sh', '-ec', `CONFIG_DIR="$FAKE_BIN/config"\n${c.command[2]}`] };
  };

  function configureIn() {
    return runWithFakeCommands(
      configurator(),
      { vault },
      {
        env: { VAULT_TOKEN: 'valid' },
        prepare: (bin) => {
          mkdirSync(join(bin, 'state'));
          mkdirSync(join(bin, 'config'));
          for (const [key, text] of Object.entries(configMap.data as Record<string, string>)) writeFileSync(join(bin, 'config', key), text);
          // One left over from an earlier declaration, and one the operator made by hand.
          writeFileSync(join(bin, 'state', 'policies'), 'homelab-retired\nops-admin\n');
          writeFileSync(join(bin, 'state', 'roles'), 'homelab-retired\nops-admin\n');
        },
        collect: (bin) => {
          const read = (file: string) => readFileSync(join(bin, file), 'utf8').split('\n').filter(Boolean);
          const first = { log: read('log'), policies: read('state/policies').sort(), roles: read('state/roles').sort() };
          // A second run over the state the first one left.
          writeFileSync(join(bin, 'log'), '');
          const second = runWithFakeCommands(configurator(), {}, { env: { VAULT_TOKEN: 'valid', PATH: `${bin}:${process.env.PATH}`, FAKE_BIN: bin } });
          return { ...first, second, secondLog: read('log') };
        },
      },
    );
  }

  it('is idempotent: a second run enables nothing and writes no new probe value', () => {
    const { collected } = configured();
    expect(collected.second.status, collected.second.stderr).toBe(0);
    expect(collected.secondLog).toContain('write auth/kubernetes/role/homelab-external-secrets bound_service_account_names=external-secrets-secrets bound_service_account_namespaces=external-secrets token_policies=homelab-external-secrets audience=vault token_ttl=20m token_max_ttl=1h');
    expect(collected.secondLog.filter((line) => /^(secrets enable|auth enable|kv put|policy delete|delete )/.test(line))).toEqual([]);
  });
});
