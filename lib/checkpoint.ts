/**
 * A service's validation step, run by Argo CD as a PostSync hook Job after every sync of
 * the service's Application. A failing Job fails the sync, the Application turns Degraded
 * (see the health check in charts/argocd.ts) and the next wave does not start.
 */
import { Duration } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { resources, toResourceRequirements } from './resources';
import { HomelabService } from './service';

export const CHECKPOINT_COMPONENT = 'checkpoint';

/** Annotations that make a resource part of the PostSync hook phase. */
export const POST_SYNC_HOOK = {
  'argocd.argoproj.io/hook': 'PostSync',
  // Keep a failed Job for `kubectl logs`; replace it on the next sync.
  'argocd.argoproj.io/hook-delete-policy': 'BeforeHookCreation,HookSucceeded',
} as const;

export interface CheckpointProps {
  /** What the checkpoint proves, shown on the Job as an annotation. */
  readonly description: string;
  /** Pinned image with the tools the script needs. */
  readonly image: string;
  /** Shell script (run with `sh -ec`): exit 0 = the service is up and works. */
  readonly script: string;
  /** @default 10 minutes */
  readonly timeout?: Duration;
  /** @default none */
  readonly env?: Readonly<Record<string, string>>;
  /** Environment variables read from Secrets in the service's namespace (credentials never inline). @default none */
  readonly secretEnv?: Readonly<Record<string, { readonly secret: string; readonly key: string }>>;
  /** @default none */
  readonly volumes?: readonly k8s.Volume[];
  /** @default none */
  readonly volumeMounts?: readonly k8s.VolumeMount[];
  /**
   * Read access to the cluster API the check needs (e.g. get nodes): the checkpoint then
   * runs as its own ServiceAccount bound to exactly these rules, and the script can call
   * `kube_get <api path>`. @default none: no API token is mounted
   */
  readonly readsCluster?: readonly k8s.PolicyRule[];
  /**
   * Like `readsCluster`, for objects in the service's own namespace only (a Role, not a
   * ClusterRole): e.g. one Secret by `resourceNames`. @default none
   */
  readonly readsOwnNamespace?: readonly k8s.PolicyRule[];
}

/**
 * Shell functions for the scripts of checkpoints with `readsCluster` or `readsOwnNamespace`:
 * `kube_get <api path> [curl options]` prints the object (e.g. `-H 'Accept: ...;as=PartialObjectMetadata...'`
 * for its metadata only); `kube_condition <api path> <type>` waits up to five
 * minutes for its status condition <type> to be True (built-in types list `type` first,
 * custom resources come back with sorted keys, so both orders match).
 */
const KUBE_GET = String.raw`sa=/var/run/secrets/kubernetes.io/serviceaccount
kube_get() {
  kube_path=$1
  shift
  curl -fsS --cacert "$sa/ca.crt" -H "Authorization: Bearer $(cat "$sa/token")" "$@" "https://kubernetes.default.svc$kube_path"
}
kube_condition() {
  for _ in $(seq 30); do
    if kube_get "$1" | tr -d ' \n' | grep -Eq "\"type\":\"$2\",\"status\":\"True\"|\"status\":\"True\",\"type\":\"$2\""; then return 0; fi
    sleep 10
  done
  echo "$1: condition $2 is not True" >&2
  return 1
}`;

/** Unprivileged user the checkpoint runs as (nobody). */
const NOBODY = 65534;

export class Checkpoint extends Construct {
  readonly jobName: string;

  constructor(scope: HomelabService, id: string, props: CheckpointProps) {
    super(scope, id);
    const service = HomelabService.of(this);
    this.jobName = `${service.serviceName}-checkpoint`;
    const account = props.readsCluster || props.readsOwnNamespace ? this.apiReader(service, props) : undefined;
    const script = account ? `${KUBE_GET}
${props.script}` : props.script;
    new k8s.KubeJob(this, 'job', {
      metadata: {
        name: this.jobName,
        labels: service.labelsFor(CHECKPOINT_COMPONENT),
        annotations: { ...POST_SYNC_HOOK, 'homelab.dev/checkpoint': props.description },
      },
      spec: {
        backoffLimit: 2,
        activeDeadlineSeconds: (props.timeout ?? Duration.minutes(10)).toSeconds(),
        template: {
          metadata: { labels: service.selectorFor(CHECKPOINT_COMPONENT) },
          spec: {
            restartPolicy: 'Never',
            serviceAccountName: account,
            automountServiceAccountToken: account !== undefined,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: NOBODY,
              runAsGroup: NOBODY,
              fsGroup: NOBODY,
              seccompProfile: { type: 'RuntimeDefault' },
            },
            containers: [
              {
                name: 'checkpoint',
                image: props.image,
                command: ['sh', '-ec', script],
                env: [
                  ...Object.entries(props.env ?? {}).map(([name, value]) => ({ name, value })),
                  ...Object.entries(props.secretEnv ?? {}).map(([name, { secret, key }]) => ({
                    name,
                    valueFrom: { secretKeyRef: { name: secret, key } },
                  })),
                ],
                resources: toResourceRequirements(resources('10m', '16Mi', '100m', '64Mi')),
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ['ALL'] },
                },
                volumeMounts: props.volumeMounts ? [...props.volumeMounts] : undefined,
              },
            ],
            volumes: props.volumes ? [...props.volumes] : undefined,
          },
        },
      },
    });
    service._registerCheckpoint(this);
  }

  /** A ServiceAccount bound to exactly the rules asked for (ClusterRole and/or Role); returns its name. */
  private apiReader(service: HomelabService, props: CheckpointProps): string {
    const metadata = { name: this.jobName, labels: service.labelsFor(CHECKPOINT_COMPONENT) };
    const subjects = [{ kind: 'ServiceAccount', name: this.jobName, namespace: service.namespaceName }];
    new k8s.KubeServiceAccount(this, 'account', { metadata, automountServiceAccountToken: false });
    if (props.readsCluster) {
      new k8s.KubeClusterRole(this, 'role', { metadata, rules: [...props.readsCluster] });
      new k8s.KubeClusterRoleBinding(this, 'binding', {
        metadata,
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: this.jobName },
        subjects,
      });
    }
    if (props.readsOwnNamespace) {
      new k8s.KubeRole(this, 'namespace-role', { metadata, rules: [...props.readsOwnNamespace] });
      new k8s.KubeRoleBinding(this, 'namespace-binding', {
        metadata,
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: this.jobName },
        subjects,
      });
    }
    return this.jobName;
  }
}
