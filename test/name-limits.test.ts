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

  it("blame the app whose name begins the value, the longest such, with its worst excess and a count of the rest", () => {
    const web = 'web';
    const long = `web-${'x'.repeat(50)}`;
    const problems = problemsOf([job(`${long}-checkpoint`, long, `${long}-checkpoint-lab`), job(`${long}-e2e`, long, `${long}-e2e-lab`), job('web-checkpoint', web, 'web-checkpoint-lab')], [web, long]);
    expect(problems).toEqual([
      `apps.${long}: expected a name 6 characters shorter (or a shorter environment name than "lab"): its pods' label app.kubernetes.io/instance of Job ${long}/${long}-checkpoint would be "${long}-checkpoint-lab", 69 characters; Kubernetes takes at most 63 (1 more over their limits)`,
    ]);
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
