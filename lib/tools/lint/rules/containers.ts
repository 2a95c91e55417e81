/**
 * Container rules: resources, image tags and the security context Pod Security `restricted`
 * requires. Ids are the upstream checks' names (kube-linter, Polaris, kube-score).
 */
import type { Rule } from '../model';
import { checkContainers, effective } from './support';

function resourceRule(id: string, resource: 'cpu' | 'memory'): Rule {
  return {
    id,
    source: 'kube-linter',
    description: `every container requests and limits ${resource}`,
    check: (env) =>
      checkContainers(env, {
        problem: (c) => {
          const missing = (['requests', 'limits'] as const).filter((kind) => c.resources?.[kind]?.[resource] === undefined);
          return missing.length > 0 ? `no ${resource} ${missing.join(' or ')}` : undefined;
        },
      }),
  };
}

/** `registry/repo:tag@digest` -> its tag (undefined when there is none) and digest. */
export function imageReference(image: string): { tag?: string; digest?: string } {
  const [name, digest] = image.split('@');
  const lastPart = name.slice(name.lastIndexOf('/') + 1);
  const colon = lastPart.indexOf(':');
  return { tag: colon >= 0 ? lastPart.slice(colon + 1) : undefined, digest };
}

const CAPABILITIES_RESTRICTED_MAY_ADD = ['NET_BIND_SERVICE'];

export const CONTAINER_RULES: readonly Rule[] = [
  resourceRule('unset-cpu-requirements', 'cpu'),
  resourceRule('unset-memory-requirements', 'memory'),
  {
    id: 'latest-tag',
    source: 'kube-linter',
    description: 'no image runs the floating `latest` tag',
    check: (env) => checkContainers(env, { problem: (c) => (imageReference(c.image ?? '').tag === 'latest' ? `image ${c.image} uses the latest tag` : undefined) }),
  },
  {
    id: 'tagNotSpecified',
    source: 'Polaris',
    description: 'every image names a tag or a digest',
    check: (env) =>
      checkContainers(env, {
        problem: (c) => {
          if (!c.image) return 'no image';
          const { tag, digest } = imageReference(c.image);
          return tag || digest ? undefined : `image ${c.image} has no tag`;
        },
      }),
  },
  {
    id: 'run-as-non-root',
    source: 'kube-linter; Pod Security restricted "Running as Non-root"',
    description: 'containers run with runAsNonRoot and never as uid 0',
    check: (env) =>
      checkContainers(env, {
        oursOnly: true,
        level: 'restricted',
        problem: (c, pod) => {
          if (effective(c, pod, 'runAsUser') === 0) return 'runs as uid 0';
          return effective(c, pod, 'runAsNonRoot') === true ? undefined : 'runAsNonRoot is not true';
        },
      }),
  },
  {
    id: 'privilege-escalation-container',
    source: 'kube-linter; Pod Security restricted "Privilege Escalation"',
    description: 'allowPrivilegeEscalation is false',
    check: (env) =>
      checkContainers(env, {
        oursOnly: true,
        level: 'restricted',
        problem: (c) => (c.securityContext?.allowPrivilegeEscalation === false ? undefined : 'allowPrivilegeEscalation is not false'),
      }),
  },
  {
    id: 'privileged-container',
    source: 'kube-linter; Pod Security baseline "Privileged Containers"',
    description: 'no container is privileged',
    check: (env) =>
      checkContainers(env, {
        level: 'baseline',
        problem: (c) => (c.securityContext?.privileged === true ? 'runs privileged' : undefined),
      }),
  },
  {
    id: 'insecureCapabilities',
    source: 'Polaris; Pod Security restricted "Capabilities"',
    description: `capabilities drop ALL and add nothing but ${CAPABILITIES_RESTRICTED_MAY_ADD.join(', ')}`,
    check: (env) =>
      checkContainers(env, {
        oursOnly: true,
        level: 'restricted',
        problem: (c) => {
          const added = ((c.securityContext?.capabilities?.add ?? []) as string[]).filter((cap) => !CAPABILITIES_RESTRICTED_MAY_ADD.includes(cap));
          if (added.length > 0) return `adds capabilities ${added.join(', ')}`;
          return (c.securityContext?.capabilities?.drop ?? []).includes('ALL') ? undefined : 'does not drop ALL capabilities';
        },
      }),
  },
  {
    id: 'container-seccomp-profile',
    source: 'kube-score; Pod Security restricted "Seccomp"',
    description: 'the seccomp profile is RuntimeDefault (or Localhost)',
    check: (env) =>
      checkContainers(env, {
        oursOnly: true,
        level: 'restricted',
        problem: (c, pod) => {
          const type = effective(c, pod, 'seccompProfile')?.type;
          return type === 'RuntimeDefault' || type === 'Localhost' ? undefined : `seccomp profile is ${type ?? 'unset'}, not RuntimeDefault`;
        },
      }),
  },
  {
    id: 'no-read-only-root-fs',
    source: 'kube-linter',
    description: 'the root filesystem is read-only (writable paths are volumes)',
    check: (env) =>
      checkContainers(env, {
        oursOnly: true,
        problem: (c) => (c.securityContext?.readOnlyRootFilesystem === true ? undefined : 'readOnlyRootFilesystem is not true'),
      }),
  },
];
