import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CHECK_START_SECONDS, KUBE_USER_AGENT } from '../lib/model/checkpoint';
import { helmValuesErrors } from '../lib/tools/validate/helm-values';
import { ManifestValidator } from '../lib/tools/validate/manifest-validator';
import { settingsIn } from '../lib/model/catalog';
import { certManagerEntry } from '../charts/cert-manager';
import { answerAsApiServer, platformObject, platformText, FAKE_SLEEP, FAKE_SLEEP_LOGGED, kubeGetMaxSeconds, manifestsOf, parseText, runWithFakeCommands, synthesizePlatformFixture, synthesizePlatforms, toYamlText, synthesizeEnvironment, withFiles } from './support';
import { invariantNamed } from './invariants';

const [dev] = synthesizePlatformFixture();
const docs = manifestsOf(dev);
const application = docs.find(({ path }) => path === 'apps/application-cert-manager.yaml')!.manifest;

describe('cert-manager', () => {
  it('installs the pinned chart with its CRDs, leader election in its own namespace', () => {
    const chart = application.spec.sources.find((s: any) => s.chart);
    expect(chart).toMatchObject({ repoURL: 'https://charts.jetstack.io', chart: 'cert-manager', targetRevision: 'v1.21.1' });
    const values = chart.helm.valuesObject;
    expect(helmValuesErrors('cert-manager', values)).toEqual([]);
    expect(values.crds).toEqual({ enabled: true, keep: true });
    // Its own namespace: the chart's default (kube-system) comes from a value, which the project's derivation cannot see (docs/adr/0022).
    expect(values.global.leaderElection.namespace).toBe('cert-manager');
    expect(application.spec.ignoreDifferences.map((d: any) => d.kind)).toEqual(['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']);
  });

  it("issues from Let's Encrypt staging and production over DNS-01, the token from the Secret it declares", () => {
    const issuers = docs.filter(({ manifest }) => manifest.kind === 'ClusterIssuer').map(({ manifest }) => manifest);
    expect(issuers.map((i) => [i.metadata.name, i.spec.acme.server])).toEqual([
      ['letsencrypt-production', 'https://acme-v02.api.letsencrypt.org/directory'],
      ['letsencrypt-staging', 'https://acme-staging-v02.api.letsencrypt.org/directory'],
    ]);
    for (const issuer of issuers) {
      expect(ManifestValidator.shared().validate(issuer)).toEqual([]);
      expect(issuer.spec.acme.solvers).toEqual([{ dns01: { cloudflare: { apiTokenSecretRef: { name: 'cloudflare-api-token', key: 'api-token' } } } }]);
      // The CRD comes with the chart in the same sync.
      expect(issuer.metadata.annotations?.['argocd.argoproj.io/sync-options']).toContain('SkipDryRunOnMissingResource=true');
      expect(JSON.stringify(issuer)).not.toMatch(/selfSigned|"ca":/);
    }
  });

  it('orders the RabbitMQ operators, whose webhooks need certificates, after it', () => {
    const wave = new Map(dev.services.map((s) => [s.name, s.wave]));
    expect(dev.services.find((s) => s.name === 'rabbitmq-operators')!.dependsOn).toContain('cert-manager');
    expect(wave.get('rabbitmq-operators')!).toBeGreaterThan(wave.get('cert-manager')!);
    expect(dev.warnings).toEqual([]);
  });

  it('in sequential waves, as a foundation, comes before the data mesh that needs its certificates', () => {
    const config = platformObject();
    config.waves = 'sequential';
    const { env } = synthesizeEnvironment(toYamlText(config), 'dev');
    const wave = new Map(env.services.map((s) => [s.name, s.wave]));
    expect(env.services.find((s) => s.name === 'cert-manager')!.layer).toBe('foundation');
    expect(wave.get('rabbitmq-operators')!).toBeGreaterThan(wave.get('cert-manager')!);
    expect(env.warnings).toEqual([]);
  });

  it('does not wait for Vault: its DNS-01 token is read only when a certificate is issued, so the routes wait for it instead', () => {
    const byName = new Map(dev.services.map((s) => [s.name, s]));
    expect(byName.get('cert-manager')!.dependsOn).not.toContain('external-secrets');
    expect(byName.get('cert-manager')!.wave).toBeLessThanOrEqual(byName.get('vault')!.wave);
    expect(docs.find(({ path }) => path === 'external-secrets/externalsecret-cert-manager-cloudflare-api-token.yaml')).toBeDefined();
    expect(byName.get('traefik')!.dependsOn).toContain('external-secrets');
  });

  it('declares the token Secret in its own namespace, where cert-manager reads ClusterIssuer references', () => {
    const [{ platform }] = synthesizePlatforms(platformText());
    const certManager = platform.services.find((s) => s.serviceName === 'cert-manager')!;
    expect(certManager.secretNeeds).toEqual([
      expect.objectContaining({ service: 'cert-manager', namespace: 'cert-manager', name: 'cloudflare-api-token', keys: ['api-token'] }),
    ]);
  });

  it('requires the account e-mail when enabled and takes no Secret name, naming the paths', () => {
    const config = platformObject();
    config.services.certManager = { enabled: true };
    expect(() => parseText(toYamlText(config), 'homelab.yaml')).toThrow(/services\.certManager\.email: expected an e-mail address/);
    config.services.certManager = { enabled: true, email: 'a@example.net', cloudflareApiToken: { name: 'x', key: 'y' } };
    expect(() => parseText(toYamlText(config), 'homelab.yaml')).toThrow("services.certManager.cloudflareApiToken: unknown key; expected one of enabled, email");
    expect(settingsIn(parseText(platformText(), 'homelab.yaml').environments.get('prod')!, certManagerEntry).enabled).toBe(true);
  });
});

describe('checkpoints waiting for conditions (kube_condition)', () => {
  const job = (path: string) => manifestsOf(dev).find((m) => m.path === path)!.manifest;
  /** A fake API server: the first object is Ready/Established only when FIRST_OK is set; the others always are. */
  const curl = [
    'for url; do :; done',
    'case "$url" in',
    '  *letsencrypt-staging|*servicemonitors.monitoring.coreos.com)',
    '    if [ -n "$FIRST_OK" ]; then status=True; else status=False; fi ;;',
    '  *) status=True ;;',
    'esac',
    // Custom resources come back with sorted keys, CRDs with `type` first.
    'case "$url" in',
    '  *customresourcedefinitions*) answer=\'{"status":{"conditions":[{"type":"Established","status":"%s"}]}}\' ;;',
    '  *) answer=\'{"status":{"conditions":[{"lastTransitionTime":"x","status":"%s","type":"Ready"}]}}\' ;;',
    'esac',
    answerAsApiServer('printf "$answer" "$status"'),
  ].join('\n');
  // Twice, not the Job's thirty times (held below).
  const run = (path: string, firstOk: boolean) =>
    runWithFakeCommands(job(path).spec.template.spec.containers[0], { curl, sleep: FAKE_SLEEP }, { env: { CONDITION_CHECKS: '2', ...(firstOk ? { FIRST_OK: '1' } : {}) } });

  it.each(['cert-manager/job-cert-manager-checkpoint.yaml', 'prometheus-operator-crds/job-prometheus-operator-crds-checkpoint.yaml'])(
    '%s passes when all are ready and fails when the first is not',
    (path) => {
      expect(run(path, true).status).toBe(0);
      const failed = run(path, false);
      expect(failed.status).not.toBe(0);
      expect(failed.stderr).toMatch(/condition (Ready|Established) is not True/);
    },
  );

  it("names its user agent, so that the API server answers compact JSON: with curl's own, the pretty answer never matches", () => {
    const container = job('cert-manager/job-cert-manager-checkpoint.yaml').spec.template.spec.containers[0];
    const [shell, flags, script] = container.command;
    expect(script).toContain(`-A ${KUBE_USER_AGENT} `);
    const asCurl = { ...container, command: [shell, flags, script.replace(`-A ${KUBE_USER_AGENT} `, '')] };
    const result = runWithFakeCommands(asCurl, { curl, sleep: FAKE_SLEEP }, { env: { CONDITION_CHECKS: '2', FIRST_OK: '1' } });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/condition Ready is not True/);
  });

  it('is held by the invariant that no script of ours asks the API server for pretty-printed answers', () => {
    const invariant = invariantNamed('every script of our hook Jobs that reads the API server');
    const synthesized = synthesizeEnvironment(platformText(), 'dev');
    expect(invariant.check([synthesized])).toEqual([]);
    const path = 'cert-manager/job-cert-manager-checkpoint.yaml';
    const edited = (from: string, to: string) => withFiles(synthesized, (files) => files.set(path, files.get(path)!.replace(from, to)));
    const problem = (line: string) => `dev/${path} checkpoint: asks for a pretty-printed answer, which its matching does not read (kube_get names its user agent): ${line}`;
    const ownAgent = edited(`-A ${KUBE_USER_AGENT} "$@"`, `-A ${KUBE_USER_AGENT} "$@" -A curl/8.5.0`);
    expect(invariant.check([ownAgent])).toEqual([problem(`curl -fsS --connect-timeout 5 --max-time 10 --cacert "$sa/ca.crt" -H "Authorization: Bearer $kube_token" -A ${KUBE_USER_AGENT} "$@" -A curl/8.5.0 "https://kubernetes.default.svc$kube_path"`)]);
    const pretty = edited('"https://kubernetes.default.svc$kube_path"', '"https://kubernetes.default.svc$kube_path?pretty=true"');
    expect(invariant.check([pretty])).toEqual([problem(`curl -fsS --connect-timeout 5 --max-time 10 --cacert "$sa/ca.crt" -H "Authorization: Bearer $kube_token" -A ${KUBE_USER_AGENT} "$@" "https://kubernetes.default.svc$kube_path?pretty=true"`)]);
  });

  it('names what the API server answered where it did not answer the object, not its condition', () => {
    const unreachable = runWithFakeCommands(job('cert-manager/job-cert-manager-checkpoint.yaml').spec.template.spec.containers[0], {
      curl: 'echo "curl: (28) Connection timed out after 5001 milliseconds" >&2; exit 28',
      sleep: FAKE_SLEEP,
    }, { env: { CONDITION_CHECKS: '2' } });
    expect(unreachable.status).not.toBe(0);
    expect(unreachable.stderr).toMatch(/: cannot read it from the API server \(curl: \(28\) Connection timed out after 5001 milliseconds\)$/m);
    expect(unreachable.stderr).not.toContain('is not True');
  });

  it('asks for five minutes, 10 s apart, in every Job that waits for a condition; its tries are read from the env', () => {
    /** The script's definition of kube_condition (up to its closing brace) and the rest of it. */
    const parts = (script: string) => {
      const definition = /^kube_condition\(\) \{\n[\s\S]*?\n\}\n/m.exec(script);
      return definition ? { definition: definition[0], rest: script.replace(definition[0], '') } : undefined;
    };
    const waiting = synthesizePlatformFixture().flatMap((env) =>
      manifestsOf(env)
        .filter(({ manifest }) => manifest.kind === 'Job')
        .flatMap(({ manifest }) => manifest.spec.template.spec.containers)
        .filter((container: any) => parts(container.command[2])?.rest.includes('kube_condition')),
    );
    expect(waiting.length).toBeGreaterThan(0);
    for (const container of waiting) {
      const { definition, rest } = parts(container.command[2])!;
      const tries = Number(container.env.find((e: any) => e.name === 'CONDITION_CHECKS')?.value);
      const pause = Number(/\bsleep (\d+)/.exec(definition)?.[1]);
      expect(tries * pause, rest.split('\n').find((line) => line.trim().startsWith('kube_condition '))).toBe(300);
      // The script's tries, not each call's.
      expect(definition).toContain('kube_tries_left=${kube_tries_left-$CONDITION_CHECKS}');
    }
  });

  it("shares the tries among a script's calls: an object waited for after another gets what is left, at least one ask", () => {
    // cert-manager's Job waits for its ClusterIssuers one after another: the first is Ready at its third ask, the second never.
    const curl = [
      'for url; do :; done',
      'echo "$url" >> "$FAKE_BIN/calls"',
      'asks=$(grep -c "$url" "$FAKE_BIN/calls")',
      'status=False',
      'case "$url" in *letsencrypt-staging) [ "$asks" -lt 3 ] || status=True ;; esac',
      answerAsApiServer(`printf '{"status":{"conditions":[{"lastTransitionTime":"x","status":"%s","type":"Ready"}]}}' "$status"`),
    ].join('\n');
    const result = runWithFakeCommands(job('cert-manager/job-cert-manager-checkpoint.yaml').spec.template.spec.containers[0], { curl, sleep: FAKE_SLEEP_LOGGED }, {
      env: { CONDITION_CHECKS: '3' },
      collect: (bin) => readFileSync(`${bin}/calls`, 'utf8').trim().split('\n').map((call) => call.replace(/^.*clusterissuers\//, '')),
    });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/clusterissuers\/letsencrypt-production: condition Ready is not True$/m);
    // Three tries in all: two spent on the first issuer, the one left on the second.
    expect(result.collected).toEqual(['letsencrypt-staging', 'sleep 10', 'letsencrypt-staging', 'sleep 10', 'letsencrypt-staging', 'letsencrypt-production']);
  });

  it("has a deadline of the pod's start and one wait for all its objects, where a Job waits for nothing else", () => {
    for (const path of ['cert-manager/job-cert-manager-checkpoint.yaml', 'prometheus-operator-crds/job-prometheus-operator-crds-checkpoint.yaml']) {
      const container = job(path).spec.template.spec.containers[0];
      const script: string = container.command[2];
      const tries = Number(container.env.find((e: any) => e.name === 'CONDITION_CHECKS').value);
      const objects = script.split('\n').filter((line) => line.trim().startsWith('kube_condition /')).length;
      const call = kubeGetMaxSeconds(script);
      const pause = Number(/^kube_condition\(\) \{\n[\s\S]*?\bsleep (\d+)\n[\s\S]*?\n\}$/m.exec(script)![1]);
      // Every try failing at curl's limit with a pause after each but the last, and each object's passing ask.
      expect(job(path).spec.activeDeadlineSeconds, path).toBe(CHECK_START_SECONDS + tries * call + (tries - 1) * pause + objects * call);
      expect(objects, path).toBeGreaterThan(1);
    }
  });
});
