/**
 * Pod Security admission levels. Every namespace the platform creates is `restricted`
 * unless its service declares an exception (ServiceSettings.podSecurity) with its reason,
 * which the namespace also carries as an annotation.
 */
export type PodSecurityLevel = 'restricted' | 'baseline' | 'privileged';

export interface PodSecurityException {
  readonly level: Exclude<PodSecurityLevel, 'restricted'>;
  readonly reason: string;
}

/**
 * What a container we write (not an upstream chart's) may leave out of the restricted context
 * (non-root, no privilege escalation, capabilities dropped, RuntimeDefault seccomp, read-only
 * root filesystem), and why (ServiceSettings.containerException). A privileged container
 * (host devices) cannot forbid privilege escalation: the API server refuses both together.
 */
export interface ContainerException {
  readonly relaxes: readonly ('readOnlyRootFilesystem' | 'runAsNonRoot' | 'capabilities' | 'allowPrivilegeEscalation')[];
  readonly reason: string;
}

/** Annotation on the namespace naming why it is not restricted. */
export const EXCEPTION_ANNOTATION = 'homelab.dev/pod-security-exception';

/**
 * The capabilities Pod Security `baseline` lets a container add; `restricted` allows only
 * NET_BIND_SERVICE (kubernetes.io/docs/concepts/security/pod-security-standards, "Capabilities").
 */
export const BASELINE_CAPABILITIES = [
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
] as const;
export const RESTRICTED_CAPABILITIES: ReadonlySet<string> = new Set(['NET_BIND_SERVICE']);

/**
 * The container security context Pod Security `restricted` requires of a container we write
 * (no privilege escalation, every capability dropped), plus our own rule that its root
 * filesystem is read-only (writable paths are volumes). Non-root and the seccomp profile come
 * from the pod (restrictedPodContext). A fresh object each call: callers may change theirs.
 */
export function restrictedContainerContext(): { allowPrivilegeEscalation: boolean; readOnlyRootFilesystem: boolean; capabilities: { drop: string[] } } {
  return { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };
}

/**
 * The pod security context Pod Security `restricted` requires (non-root, RuntimeDefault seccomp),
 * running as `user` and `group` (the user's id unless given), with that group owning the pod's
 * volumes when `fsGroup` is asked for. A fresh object each call: callers may change theirs.
 */
export function restrictedPodContext(
  user: number,
  options: { group?: number; fsGroup?: boolean } = {},
): { runAsNonRoot: boolean; runAsUser: number; runAsGroup: number; fsGroup?: number; seccompProfile: { type: string } } {
  const group = options.group ?? user;
  return { runAsNonRoot: true, runAsUser: user, runAsGroup: group, ...(options.fsGroup ? { fsGroup: group } : {}), seccompProfile: { type: 'RuntimeDefault' } };
}
