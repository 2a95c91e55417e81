/** Pod rules: health probes, and the host access Pod Security `baseline` forbids. */
import type { Environment, Rule } from '../model';
import { checkContainers, checkPods } from './support';

function probeRule(id: string, field: 'livenessProbe' | 'readinessProbe'): Rule {
  return {
    id,
    source: 'kube-linter',
    description: `every container of a long-running workload (not a Job) has a ${field}`,
    check: (env) =>
      env.workloads
        .filter((w) => w.longRunning && w.template === 'ours')
        // Init containers run to completion: probes apply to the main containers only.
        .flatMap((w) => ((w.pod.containers ?? []) as any[]).filter((c) => !c[field]).map((c) => ({ object: w.object, message: `${w.label} container ${c.name}: no ${field}` }))),
  };
}

function hostNamespaceRule(id: string, field: 'hostNetwork' | 'hostPID' | 'hostIPC'): Rule {
  return {
    id,
    source: 'kube-linter; Pod Security baseline "Host Namespaces"',
    description: `no ${field} outside namespaces whose service declares them privileged`,
    check: (env: Environment) => checkPods(env, { level: 'baseline', problem: (pod) => (pod[field] === true ? `${field} is true` : undefined) }),
  };
}

export const POD_RULES: readonly Rule[] = [
  probeRule('no-liveness-probe', 'livenessProbe'),
  probeRule('no-readiness-probe', 'readinessProbe'),
  hostNamespaceRule('host-network', 'hostNetwork'),
  hostNamespaceRule('host-pid', 'hostPID'),
  hostNamespaceRule('host-ipc', 'hostIPC'),
  {
    id: 'hostPathSet',
    source: 'Polaris; Pod Security baseline "HostPath Volumes"',
    description: 'no hostPath volume outside namespaces whose service declares them privileged',
    check: (env) =>
      checkPods(env, {
        level: 'baseline',
        problem: (pod) => {
          const paths = ((pod.volumes ?? []) as any[]).filter((v) => v.hostPath).map((v) => `${v.name} (${v.hostPath.path})`);
          return paths.length > 0 ? `hostPath volumes ${paths.join(', ')}` : undefined;
        },
      }),
  },
  {
    id: 'hostPortSet',
    source: 'Polaris; Pod Security baseline "Host Ports"',
    description: 'no hostPort outside namespaces whose service declares them privileged',
    check: (env) =>
      checkContainers(env, {
        level: 'baseline',
        problem: (c) => {
          const ports = ((c.ports ?? []) as any[]).filter((p) => p.hostPort).map((p) => p.hostPort);
          return ports.length > 0 ? `hostPort ${ports.join(', ')}` : undefined;
        },
      }),
  },
];
