/**
 * The one list of policy exceptions: findings of `npm run lint:k8s` that our services or the
 * upstream software they run must break, each with its reason. An exception that applies to an
 * object of the tree and excuses nothing is itself an error, so remove entries when their
 * reason goes away (one for a service the config does not enable applies to nothing).
 */

import { APP_LINT_LABELS } from '../../../charts/custom-app';

export interface LintException {
  /** Rule id, e.g. `no-read-only-root-fs`. */
  readonly rule: string;
  /** `<service>/<Kind>/<name>`; `*` matches any characters within a segment. */
  readonly resource: string;
  /** Only objects carrying these labels. @default any */
  readonly labels?: Readonly<Record<string, string>>;
  readonly reason: string;
}

export const EXCEPTIONS_FILE = 'lib/tools/lint/exceptions.ts';

/** Our own apps (`apps:` in homelab.yaml), built by charts/custom-app.ts. */
const OWN_APP = { 'app.kubernetes.io/component': 'app', 'app.kubernetes.io/managed-by': 'homelab-platform' } as const;

const KUBERAY_PROBES =
  'KubeRay adds liveness and readiness probes (the raylet, and on the head the GCS, health endpoints) to the Ray container of every pod it creates from a template without its own (ray-operator/controllers/ray/common/pod.go initLivenessAndReadinessProbe)';

export const LINT_EXCEPTIONS: readonly LintException[] = [
  {
    rule: 'no-liveness-probe',
    resource: '*/Deployment/*',
    labels: { ...OWN_APP, [APP_LINT_LABELS.probes]: 'none' },
    reason: 'the app has nothing to probe, and its config says why (apps.<name>.probes.none); its checkpoint checks that it accepts connections on its first port',
  },
  {
    rule: 'no-readiness-probe',
    resource: '*/Deployment/*',
    labels: { ...OWN_APP, [APP_LINT_LABELS.probes]: 'none' },
    reason: 'the app has nothing to probe, and its config says why (apps.<name>.probes.none); its checkpoint checks that it accepts connections on its first port',
  },
  {
    rule: 'no-liveness-probe',
    resource: '*/Deployment/*',
    labels: { ...OWN_APP, [APP_LINT_LABELS.liveness]: 'none' },
    reason: 'the app declares a readiness probe but no liveness probe (apps.<name>.probes): a restart would not cure what makes it unready, and the readiness probe keeps it out of its Service meanwhile',
  },
  {
    rule: 'no-read-only-root-fs',
    resource: '*/Deployment/*',
    labels: { ...OWN_APP, [APP_LINT_LABELS.rootFilesystem]: 'writable' },
    reason: 'the app lists no writablePaths: an arbitrary image writes outside its volume (caches, /tmp) more often than not (charts/custom-app.ts)',
  },
  { rule: 'no-liveness-probe', resource: 'ray/RayCluster/ray', reason: KUBERAY_PROBES },
  { rule: 'no-readiness-probe', resource: 'ray/RayCluster/ray', reason: KUBERAY_PROBES },
  {
    rule: 'no-read-only-root-fs',
    resource: 'ray/RayCluster/ray',
    reason: 'Ray writes its session directory under /tmp/ray and caches under /home/ray, which also holds the image\'s Python, so neither can be an emptyDir (charts/ray.ts)',
  },
  {
    rule: 'missingPodDisruptionBudget',
    resource: 'ray/RayCluster/ray',
    reason: 'Ray workers keep no state of their own: Ray retries the tasks of a lost worker and the autoscaler replaces it, so an eviction costs retries, not data',
  },
  {
    rule: 'no-anti-affinity',
    resource: 'ray/RayCluster/ray',
    reason: 'the autoscaler sizes a worker group to the pending tasks; workers pack onto the nodes with room, and losing one costs only retried tasks',
  },
];
