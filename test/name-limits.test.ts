/**
 * Kubernetes' length limits on the names synth makes from an app's and an environment's name:
 * an output over them is refused at the name to shorten, before anything is written.
 */
import { describe, expect, it } from 'vitest';
import { checkNameLimits } from '../lib/output/name-limits';
import { fixtureObject, synthesizeText, toYamlText } from './support';

const job = (name: string, namespace: string, podInstance: string) => ({
  kind: 'Job',
  metadata: { name, namespace, labels: { 'app.kubernetes.io/name': namespace } },
  spec: { template: { metadata: { labels: { 'app.kubernetes.io/instance': podInstance } } } },
});

const problemsOf = (manifests: unknown[], apps: string[], environment = 'lab'): string[] => {
  try {
    checkNameLimits(manifests, apps, environment);
    return [];
  } catch (error) {
    return [...(error as { problems: string[] }).problems];
  }
};

describe('the names and label values synth makes', () => {
  it('pass at the limits and are refused one character over', () => {
    const at63 = 'a'.repeat(59) + '-lab';
    expect(problemsOf([job('a-checkpoint', 'a', at63)], [])).toEqual([]);
    expect(problemsOf([job('a-checkpoint', 'a', `b${at63}`)], [])).toEqual([
      `expected an environment name 1 character shorter than "lab": its pods' label app.kubernetes.io/instance of Job a/a-checkpoint would be "b${at63}", 64 characters; Kubernetes takes at most 63`,
    ]);
    const cronJob = (name: string) => ({ kind: 'CronJob', metadata: { name } });
    expect(problemsOf([cronJob('c'.repeat(52))], [])).toEqual([]);
    expect(problemsOf([cronJob('c'.repeat(53))], [])).toEqual([expect.stringContaining('the name of CronJob ccc')]);
    expect(problemsOf([{ kind: 'ConfigMap', metadata: { name: 'm'.repeat(253) } }], [])).toEqual([]);
    expect(problemsOf([{ kind: 'Service', metadata: { name: 's'.repeat(64) } }], [])).toEqual([expect.stringContaining('Kubernetes takes at most 63')]);
  });

  it("blame the app whose objects they are, with its worst excess and a count of the rest, and the environment for any other's", () => {
    const long = `web-${'x'.repeat(50)}`;
    const application = { kind: 'Application', metadata: { name: long, namespace: 'argocd', labels: { 'app.kubernetes.io/instance': `${long}-lab` } } };
    // A built-in service whose name begins like the app's: the environment's name is what to shorten there.
    const builtIn = job('web-operator-checkpoint', 'web-operator', `web-operator-checkpoint-${'e'.repeat(40)}`);
    const problems = problemsOf([job(`${long}-checkpoint`, long, `${long}-checkpoint-lab`), application, builtIn], ['web', long]);
    expect(problems).toEqual([
      `apps.${long}: expected a name 6 characters shorter (or a shorter environment name than "lab"): its pods' label app.kubernetes.io/instance of Job ${long}/${long}-checkpoint would be "${long}-checkpoint-lab", 69 characters; Kubernetes takes at most 63 (1 more over their limits)`,
      `expected an environment name 1 character shorter than "lab": its pods' label app.kubernetes.io/instance of Job web-operator/web-operator-checkpoint would be "web-operator-checkpoint-${'e'.repeat(40)}", 64 characters; Kubernetes takes at most 63`,
    ]);
  });

  it('check the selector, a CronJob\'s pods and a Namespace\'s name too', () => {
    const long = 'l'.repeat(64);
    expect(problemsOf([{ kind: 'Deployment', metadata: { name: 'd', namespace: 'n' }, spec: { selector: { matchLabels: { app: long } } } }], [])).toEqual([
      expect.stringContaining(`its selector's label app of Deployment n/d would be "${long}"`),
    ]);
    expect(problemsOf([{ kind: 'CronJob', metadata: { name: 'c', namespace: 'n' }, spec: { jobTemplate: { spec: { template: { metadata: { labels: { app: long } } } } } } }], [])).toEqual([
      expect.stringContaining(`its pods' label app of CronJob n/c`),
    ]);
    expect(problemsOf([{ kind: 'Namespace', metadata: { name: long } }], [])).toEqual([expect.stringContaining(`the name of Namespace ${long}`)]);
  });

  it('are checked in a synth: a long app name is refused at its path, and the longest that fits passes', () => {
    const withApp = (name: string) => {
      const config = fixtureObject('small');
      config.apps = {
        [name]: {
          image: 'docker.io/traefik/whoami:v1.10.3',
          ports: { http: 80 },
          probes: { readiness: { http: { port: 'http' } } },
          resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '32Mi' } },
        },
      };
      return toYamlText(config);
    };
    // `<app>-checkpoint-lab`, its checkpoint pods' instance label, is the longest name made from it.
    const fits = 'a'.repeat(63 - '-checkpoint-lab'.length);
    expect(() => synthesizeText(withApp(fits))).not.toThrow();
    expect(() => synthesizeText(withApp(`${fits}b`))).toThrow(`apps.${fits}b: expected a name 1 character shorter`);
  });
});
