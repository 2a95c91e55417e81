/**
 * What operators make at run time from the custom resources in a rendered set: Services,
 * Secrets and pods that no chart or manifest holds, but that ServiceMonitors, routes,
 * NetworkPolicies and pods refer to. The whole-cluster checks see them as objects of the
 * Application that holds the custom resource, marked as made by the operator (not validated
 * against schemas nor held to Pod Security: the operator writes them).
 *
 * Each product is the upstream operator's documented behaviour at the versions pinned in
 * charts/versions.ts; the source file is named next to it.
 */
import { CREATES_ANNOTATION } from '../../model/checkpoint';
import type { Manifest, RenderedObject } from './render';

/** The operator products of every custom resource in the set that an operator here acts on. */
export function operatorProducts(objects: readonly RenderedObject[]): RenderedObject[] {
  return objects.flatMap((object) => {
    const make = PRODUCTS[`${object.manifest.apiVersion.split('/')[0]}/${object.manifest.kind}`];
    return make
      ? make(object.manifest).map((manifest) => ({
          application: object.application,
          source: `made by its operator from ${object.manifest.kind} ${object.manifest.metadata.name}`,
          manifest,
          madeByOperator: true,
        }))
      : [];
  });
}

type Products = (resource: Manifest) => Manifest[];

function object(apiVersion: string, kind: string, name: string, namespace: string | undefined, rest: Record<string, unknown> = {}, labels: Record<string, string> = {}): Manifest {
  return {
    apiVersion,
    kind,
    metadata: { name, ...(namespace && { namespace }), labels },
    ...rest,
  };
}

/** A pod of a workload an operator runs: a template of labels, containers and ports, as a StatefulSet. */
function pods(name: string, namespace: string | undefined, labels: Record<string, string>, template: any = {}): Manifest {
  return object('apps/v1', 'StatefulSet', name, namespace, {
    spec: {
      selector: { matchLabels: labels },
      template: {
        metadata: { labels: { ...template.metadata?.labels, ...labels } },
        spec: template.spec ?? { containers: [] },
      },
    },
  });
}

const PRODUCTS: Readonly<Record<string, Products>> = {
  /**
   * rabbitmq/cluster-operator v2.22: internal/resource/client_service.go (Service `<name>`,
   * ports amqp 5672, management 15672, prometheus 15692), headless_service.go (`<name>-nodes`),
   * default_user_secret.go (`<name>-default-user`), erlang_cookie.go (`<name>-erlang-cookie`);
   * labels internal/metadata/label.go. The pods are the workload lint already models.
   */
  'rabbitmq.com/RabbitmqCluster': (cluster) => {
    const { name, namespace } = cluster.metadata;
    const labels = {
      'app.kubernetes.io/name': name,
      'app.kubernetes.io/component': 'rabbitmq',
      'app.kubernetes.io/part-of': 'rabbitmq',
    };
    const ports = [
      { name: 'amqp', port: 5672 },
      { name: 'management', port: 15672 },
      { name: 'prometheus', port: 15692 },
    ];
    return [
      object('v1', 'Service', name, namespace, { spec: { selector: { 'app.kubernetes.io/name': name }, ports } }, labels),
      object(
        'v1',
        'Service',
        `${name}-nodes`,
        namespace,
        {
          spec: {
            clusterIP: 'None',
            selector: { 'app.kubernetes.io/name': name },
            ports: [
              { name: 'epmd', port: 4369 },
              { name: 'cluster-rpc', port: 25672 },
            ],
          },
        },
        labels,
      ),
      object('v1', 'Secret', `${name}-default-user`, namespace, {}, labels),
      object('v1', 'Secret', `${name}-erlang-cookie`, namespace, {}, labels),
    ];
  },
  /**
   * rabbitmq/messaging-topology-operator v1.20: controllers/user_controller.go generates the
   * credentials Secret `<name>-user-credentials` unless `spec.importCredentialsSecret` names one.
   */
  'rabbitmq.com/User': (user) => (user.spec?.importCredentialsSecret ? [] : [object('v1', 'Secret', `${user.metadata.name}-user-credentials`, user.metadata.namespace)]),
  /**
   * ray-project/kuberay v1.7: ray-operator/controllers/ray/common/service.go (head Service
   * `<name>-head-svc`, the head container's ports), pod.go (labels `ray.io/cluster`,
   * `ray.io/node-type`, `ray.io/group` on every pod).
   */
  'ray.io/RayCluster': (cluster) => {
    const { name, namespace } = cluster.metadata;
    const head = cluster.spec?.headGroupSpec?.template ?? {};
    const headLabels = {
      'ray.io/cluster': name,
      'ray.io/node-type': 'head',
      'ray.io/group': 'headgroup',
    };
    const headPorts = (head.spec?.containers ?? []).flatMap((c: any) => c.ports ?? []).map((p: any) => ({ name: p.name, port: p.containerPort }));
    return [
      object('v1', 'Service', `${name}-head-svc`, namespace, { spec: { selector: headLabels, ports: headPorts } }, { 'ray.io/cluster': name }),
      pods(`${name}-head`, namespace, headLabels, head),
      ...((cluster.spec?.workerGroupSpecs ?? []) as any[]).map((group) =>
        pods(
          `${name}-worker-${group.groupName}`,
          namespace,
          {
            'ray.io/cluster': name,
            'ray.io/node-type': 'worker',
            'ray.io/group': group.groupName,
          },
          group.template,
        ),
      ),
    ];
  },
  /**
   * prometheus-operator v0.93: pkg/prometheus/statefulset.go and pkg/alertmanager/statefulset.go
   * label the pods `app.kubernetes.io/name: prometheus|alertmanager`, `app.kubernetes.io/instance`
   * and `operator.prometheus.io/name: <name>`, and the operator keeps the governing Services
   * `prometheus-operated` and `alertmanager-operated`.
   */
  /**
   * longhorn/longhorn-manager v1.12 (the chart's `longhorn-manager` DaemonSet): the manager labels
   * its own pods as the admission webhook and recovery backend the chart's Services select
   * (webhook/, recovery_backend/), and runs the data-plane pods labelled
   * `longhorn.io/component` (types/types.go: instance-manager, backing-image-manager,
   * backing-image-data-source, share-manager), the CSI plugin (`app: longhorn-csi-plugin`,
   * csi/deployment.go) and recurring-job and job-task pods.
   */
  'apps/DaemonSet': (daemonSet) => {
    if (daemonSet.metadata.name !== 'longhorn-manager') return [];
    const namespace = daemonSet.metadata.namespace;
    return [
      pods('longhorn-manager-roles', namespace, {
        'longhorn.io/admission-webhook': 'longhorn-admission-webhook',
        'longhorn.io/recovery-backend': 'longhorn-recovery-backend',
      }),
      ...['instance-manager', 'backing-image-manager', 'backing-image-data-source', 'share-manager'].map((component) =>
        pods(`longhorn-${component}`, namespace, {
          'longhorn.io/component': component,
        }),
      ),
      pods('longhorn-csi-plugin', namespace, { app: 'longhorn-csi-plugin' }),
      pods('longhorn-recurring-job', namespace, {
        'longhorn.io/managed-by': 'longhorn-manager',
        'recurring-job.longhorn.io': 'backup',
      }),
      pods('longhorn-job-task', namespace, { 'longhorn.io/job-task': 'task' }),
    ];
  },
  /**
   * cloudnative-pg/cloudnative-pg v1.30 (chart cloudnative-pg 0.29.0): the operator makes its CA
   * `cnpg-ca-secret` and the webhook's certificate `cnpg-webhook-cert` in its own namespace at
   * start (internal/cmd/manager/controller: CaSecretName, WebhookSecretName).
   */
  'apps/Deployment': (deployment) =>
    deployment.metadata.name === 'cloudnative-pg'
      ? ['cnpg-ca-secret', 'cnpg-webhook-cert'].map((name) => object('v1', 'Secret', name, deployment.metadata.namespace))
      : [],
  /**
   * cloudnative-pg/cloudnative-pg v1.30: for a Cluster `<name>` the Services `<name>-rw`, `-ro` and
   * `-r` on port 5432 (pkg/specs/services.go), the owner's Secret `<name>-app` of an initdb
   * bootstrap (pkg/specs/secrets.go), and instance pods labelled `cnpg.io/cluster: <name>` and
   * `cnpg.io/podRole: instance` with the ports postgresql 5432, metrics 9187 and status 8000
   * (pkg/specs/pods.go).
   */
  'postgresql.cnpg.io/Cluster': (cluster) => {
    const { name, namespace } = cluster.metadata;
    const labels = { 'cnpg.io/cluster': name };
    return [
      ...['rw', 'ro', 'r'].map((kind) => object('v1', 'Service', `${name}-${kind}`, namespace, { spec: { selector: labels, ports: [{ name: 'postgres', port: 5432 }] } }, labels)),
      object('v1', 'Secret', `${name}-app`, namespace, {}, labels),
      pods(name, namespace, { ...labels, 'cnpg.io/podRole': 'instance' }, {
        spec: {
          containers: [
            {
              name: 'postgres',
              ports: [
                { name: 'postgresql', containerPort: 5432 },
                { name: 'metrics', containerPort: 9187 },
                { name: 'status', containerPort: 8000 },
              ],
            },
          ],
        },
      }),
    ];
  },
  /**
   * A probe Job that creates a custom resource at run time (its CREATES_ANNOTATION, e.g. the
   * restore check's scratch Cluster): what that resource's operator makes from it.
   */
  'batch/Job': (job) => {
    const created = /^(\S+)\/(\S+) (\S+)$/.exec(job.metadata.annotations?.[CREATES_ANNOTATION] ?? '');
    const make = created && PRODUCTS[`${created[1]}/${created[2]}`];
    return make ? make({ apiVersion: `${created[1]}/v1`, kind: created[2], metadata: { name: created[3], namespace: job.metadata.namespace } }) : [];
  },
  'monitoring.coreos.com/Prometheus': (prometheus) => operatedBy('prometheus', prometheus, 9090),
  'monitoring.coreos.com/Alertmanager': (alertmanager) => operatedBy('alertmanager', alertmanager, 9093),
};

function operatedBy(app: 'prometheus' | 'alertmanager', resource: Manifest, port: number): Manifest[] {
  const { name, namespace } = resource.metadata;
  const labels = {
    'app.kubernetes.io/name': app,
    'app.kubernetes.io/instance': name,
    'app.kubernetes.io/managed-by': 'prometheus-operator',
    'operator.prometheus.io/name': name,
    [app]: name,
  };
  return [
    pods(`${app}-${name}`, namespace, labels, {
      spec: {
        containers: [{ name: app, ports: [{ name: 'web', containerPort: port }] }],
      },
    }),
    object(
      'v1',
      'Service',
      `${app}-operated`,
      namespace,
      {
        spec: {
          clusterIP: 'None',
          selector: { 'app.kubernetes.io/name': app },
          ports: [{ name: 'web', port }],
        },
      },
      { 'operated-prometheus': 'true' },
    ),
  ];
}
