/** Helpers the rules share: walking containers with the Pod Security level that applies. */
import type { PodSecurityLevel } from '../../../model/pod-security';
import type { Environment, Finding, Workload } from '../model';
import { containersOf } from '../../../model/workloads';

const STRICTNESS: Readonly<Record<PodSecurityLevel, number>> = { privileged: 0, baseline: 1, restricted: 2 };

/**
 * Whether a check that Pod Security `level` requires applies in the workload's namespace: a
 * namespace whose service declares `baseline` or `privileged` (ServiceSettings.podSecurity) (its reason is on the
 * Namespace) is exempt from the stricter checks.
 */
export function required(env: Environment, workload: Workload, level: PodSecurityLevel): boolean {
  return STRICTNESS[env.podSecurityLevel(workload.namespace)] >= STRICTNESS[level];
}

export interface ContainerCheck {
  /** Only pod templates we write in full (not those an operator completes). @default false */
  readonly oursOnly?: boolean;
  /** The Pod Security level that requires the check. @default always applies */
  readonly level?: PodSecurityLevel;
  /** A problem with the container, or undefined. */
  readonly problem: (container: any, pod: any, workload: Workload) => string | undefined;
}

/** Runs a per-container check over every workload it applies to. */
export function checkContainers(env: Environment, check: ContainerCheck): Finding[] {
  return env.workloads
    .filter((w) => !(check.oursOnly && w.template === 'operator'))
    .filter((w) => !check.level || required(env, w, check.level))
    .flatMap((workload) =>
      containersOf(workload.pod).flatMap((container) => {
        const problem = check.problem(container, workload.pod, workload);
        return problem ? [{ object: workload.object, message: `${workload.label} container ${container.name}: ${problem}` }] : [];
      }),
    );
}

/** A pod-level check over every workload it applies to. */
export function checkPods(env: Environment, check: Omit<ContainerCheck, 'problem'> & { readonly problem: (pod: any, workload: Workload) => string | undefined }): Finding[] {
  return env.workloads
    .filter((w) => !(check.oursOnly && w.template === 'operator'))
    .filter((w) => !check.level || required(env, w, check.level))
    .flatMap((workload) => {
      const problem = check.problem(workload.pod, workload);
      return problem ? [{ object: workload.object, message: `${workload.label}: ${problem}` }] : [];
    });
}

/** A container's security setting, falling back to the pod's (runAsNonRoot, runAsUser, seccompProfile). */
export function effective(container: any, pod: any, field: string): any {
  return container.securityContext?.[field] ?? pod.securityContext?.[field];
}
