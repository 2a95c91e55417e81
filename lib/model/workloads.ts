/** The pod template inside a workload manifest, as written to k8s/ (plain objects). */

/** The pod spec of a Pod, a built-in workload or a CronJob; undefined for any other kind. */
export function podSpecOf(manifest: { readonly [field: string]: any }): any | undefined {
  switch (manifest.kind) {
    case 'Pod':
      return manifest.spec;
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'Job':
      return manifest.spec?.template?.spec;
    case 'CronJob':
      return manifest.spec?.jobTemplate?.spec?.template?.spec;
    default:
      return undefined;
  }
}

/** Every container of a pod spec, init containers included. */
export function containersOf(pod: any): any[] {
  return [...(pod.initContainers ?? []), ...(pod.containers ?? [])];
}
