/**
 * Pod Security admission levels. Every namespace the platform creates is `restricted`,
 * except the ones below — in this one place, each with its reason, which the namespace also
 * carries as an annotation.
 */
export type PodSecurityLevel = 'restricted' | 'baseline' | 'privileged';

export interface PodSecurityException {
  readonly level: Exclude<PodSecurityLevel, 'restricted'>;
  readonly reason: string;
}

/** Built-in services that cannot run restricted, by service name. */
export const POD_SECURITY_EXCEPTIONS: Readonly<Record<string, PodSecurityException>> = {
  longhorn: {
    level: 'privileged',
    reason: 'longhorn-manager and the CSI plugin run privileged and mount host paths (/dev, /var/lib/longhorn, kubelet)',
  },
  'nvidia-device-plugin': {
    level: 'privileged',
    reason: "the plugin mounts kubelet's device-plugin socket directory and other host paths",
  },
  monitoring: {
    level: 'privileged',
    reason: 'node-exporter reads the host: hostNetwork, hostPID and hostPath mounts of /, /proc and /sys (the other pods keep non-root contexts)',
  },
};

/** An operator's app whose image only runs as root (`runAsRoot` in homelab.yaml). */
export const ROOT_APP_EXCEPTION: PodSecurityException = {
  level: 'baseline',
  reason: 'the image only runs as root (runAsRoot in homelab.yaml)',
};

/**
 * What a container we write (not an upstream chart's) may leave out of the restricted context
 * (non-root, no privilege escalation, capabilities dropped, RuntimeDefault seccomp, read-only
 * root filesystem), and why. test/invariants.test.ts holds every container to it.
 */
export interface ContainerException {
  readonly relaxes: readonly ('readOnlyRootFilesystem' | 'runAsNonRoot' | 'capabilities')[];
  readonly reason: string;
}

/** Built-in services' containers, by service name. */
export const CONTAINER_EXCEPTIONS: Readonly<Record<string, ContainerException>> = {
  ray: {
    relaxes: ['readOnlyRootFilesystem'],
    reason: "Ray writes its session directory under /tmp/ray and caches under /home/ray, which also holds the image's Python: neither can be an emptyDir",
  },
};

/** Every app's container (charts/custom-app.ts): we do not know what an image writes where. */
export const APP_CONTAINER_EXCEPTION: ContainerException = {
  relaxes: ['readOnlyRootFilesystem'],
  reason: 'apps write outside their volume (caches, /tmp) more often than not',
};

/** An app whose image only runs as root keeps root's default capabilities (its init system changes users and owners). */
export const ROOT_APP_CONTAINER_EXCEPTION: ContainerException = {
  relaxes: ['readOnlyRootFilesystem', 'runAsNonRoot', 'capabilities'],
  reason: `${ROOT_APP_EXCEPTION.reason}, with the capabilities its init system needs`,
};

/** Annotation on the namespace naming why it is not restricted. */
export const EXCEPTION_ANNOTATION = 'homelab.dev/pod-security-exception';

export function podSecurityException(serviceName: string, runsAsRoot: boolean): PodSecurityException | undefined {
  return POD_SECURITY_EXCEPTIONS[serviceName] ?? (runsAsRoot ? ROOT_APP_EXCEPTION : undefined);
}
