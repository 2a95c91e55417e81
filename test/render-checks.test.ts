/**
 * The whole-cluster checks on small hand-made rendered sets: a clean set passes, and one seeded
 * violation of each kind is reported, once, in the `<env>/<Application>: <Kind>/<ns>/<name>:`
 * form; exceptions excuse only what they name, and an exception that excuses nothing is reported.
 */
import { describe, expect, it } from 'vitest';
import { checkRendered, environmentProblems, podSecurityViolations } from '../lib/tools/render/checks';
import type { RenderException } from '../lib/tools/render/exceptions';
import type { Manifest, RenderedObject } from '../lib/tools/render/render';

const restrictedContainer = {
  name: 'app',
  image: 'docker.io/traefik/whoami:v1.10.3',
  ports: [{ name: 'http', containerPort: 8080 }],
  resources: {
    requests: { cpu: '10m', memory: '16Mi' },
    limits: { cpu: '100m', memory: '64Mi' },
  },
  securityContext: {
    allowPrivilegeEscalation: false,
    runAsNonRoot: true,
    runAsUser: 65534,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  },
};

function deployment(name: string, labels: Record<string, string>, pod: Record<string, unknown> = {}): Manifest {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'web' },
    spec: {
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [restrictedContainer], ...pod },
      },
    },
  };
}

function service(name: string, selector: Record<string, string>, labels: Record<string, string> = {}): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'web', labels },
    spec: { selector, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
  };
}

/** Traefik's route to the whoami Service. */
const WHOAMI_ROUTE: Manifest = {
  apiVersion: 'traefik.io/v1alpha1',
  kind: 'IngressRoute',
  metadata: { name: 'whoami', namespace: 'web' },
  spec: {
    entryPoints: ['websecure'],
    routes: [{ kind: 'Rule', match: 'Host(`whoami.example.net`)', services: [{ name: 'whoami', port: 80 }] }],
  },
};

/** A small, correct rendered set: a namespace, a Deployment, its Service, a monitor, a route, a policy and a rule. */
function cleanSet(): Manifest[] {
  const app = { 'app.kubernetes.io/name': 'whoami' };
  return [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 'web',
        labels: { 'pod-security.kubernetes.io/enforce': 'restricted' },
      },
    },
    deployment('whoami', app, {
      serviceAccountName: 'whoami',
      volumes: [{ name: 'config', configMap: { name: 'whoami' } }],
    }),
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'whoami', namespace: 'web' },
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'whoami', namespace: 'web' },
      data: {},
    },
    service('whoami', app, app),
    {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: { name: 'whoami', namespace: 'web' },
      spec: { selector: { matchLabels: app }, endpoints: [{ port: 'http' }] },
    },
    WHOAMI_ROUTE,
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'allow-whoami', namespace: 'web' },
      spec: {
        podSelector: { matchLabels: app },
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [
              {
                namespaceSelector: {
                  matchLabels: { 'kubernetes.io/metadata.name': 'web' },
                },
              },
            ],
          },
        ],
      },
    },
    {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: { name: 'whoami', namespace: 'web' },
      spec: {
        groups: [
          {
            name: 'whoami',
            rules: [{ alert: 'WhoamiDown', expr: 'up{job="whoami"} == 0', for: '5m' }],
          },
        ],
      },
    },
  ];
}

function rendered(manifests: readonly Manifest[], application = 'whoami'): RenderedObject[] {
  return manifests.map((manifest) => ({
    application,
    source: 'k8s/test/whoami',
    manifest,
  }));
}

/** The formatted problems of a set, with no exceptions. */
function problemsOf(manifests: readonly Manifest[]): string[] {
  return checkRendered(new Map([['test', rendered(manifests)]]), []);
}

/** The clean set with the object named `name` of `kind` replaced. */
function replacing(kind: string, name: string, replacement: (m: Manifest) => Manifest | Manifest[]): Manifest[] {
  return cleanSet().flatMap((m) => (m.kind === kind && m.metadata.name === name ? replacement(structuredClone(m)) : [m]));
}

describe('the whole-cluster checks', () => {
  it('pass a correct set', () => {
    expect(problemsOf(cleanSet())).toEqual([]);
  });

  it("pass a pod reading the cluster's CA from the ConfigMap Kubernetes publishes in every namespace, but not another ConfigMap", () => {
    const mounting = (configMap: string) =>
      replacing('Deployment', 'whoami', (m) => {
        m.spec.template.spec.volumes = [{ name: 'ca', projected: { sources: [{ configMap: { name: configMap, items: [{ key: 'ca.crt', path: 'ca.crt' }] } }] } }];
        return m;
      });
    expect(problemsOf(mounting('kube-root-ca.crt'))).toEqual([]);
    expect(problemsOf(mounting('root-ca'))).toEqual(['test/whoami: Deployment/web/whoami: Deployment refers to ConfigMap web/root-ca, which nothing in the rendered set makes']);
  });

  it.each<[string, Manifest[], string]>([
    [
      'a field the schema does not know',
      replacing('Deployment', 'whoami', (m) => ({
        ...m,
        spec: { ...m.spec, replica: 2 },
      })),
      'test/whoami: Deployment/web/whoami: spec.replica: unknown field',
    ],
    ['an object emitted twice', [...cleanSet(), service('whoami', { 'app.kubernetes.io/name': 'whoami' })], 'test/whoami: Service/web/whoami: emitted twice'],
    [
      'a monitor naming a port the Service lacks',
      replacing('ServiceMonitor', 'whoami', (m) => ({
        ...m,
        spec: {
          ...m.spec,
          endpoints: [{ port: 'tcp-prometheus-servicemonitor' }],
        },
      })),
      'test/whoami: ServiceMonitor/web/whoami: no Service it selects has a port named tcp-prometheus-servicemonitor',
    ],
    [
      'a route to a missing port',
      replacing('IngressRoute', 'whoami', (m) => ({
        ...m,
        spec: {
          ...m.spec,
          routes: [{ ...m.spec.routes[0], services: [{ name: 'whoami', port: 8443 }] }],
        },
      })),
      'test/whoami: IngressRoute/web/whoami: routes to port 8443 of Service web/whoami',
    ],
    [
      'a pod reading a Secret nothing makes',
      replacing('Deployment', 'whoami', (m) => {
        m.spec.template.spec.containers[0].env = [
          {
            name: 'TOKEN',
            valueFrom: { secretKeyRef: { name: 'whoami-token', key: 'token' } },
          },
        ];
        return m;
      }),
      'test/whoami: Deployment/web/whoami: Deployment refers to Secret web/whoami-token, which nothing in the rendered set makes',
    ],
    [
      'a NetworkPolicy selecting no pod',
      replacing('NetworkPolicy', 'allow-whoami', (m) => ({
        ...m,
        spec: {
          ...m.spec,
          podSelector: { matchLabels: { 'app.kubernetes.io/name': 'whoamі' } },
        },
      })),
      'test/whoami: NetworkPolicy/web/allow-whoami: its podSelector',
    ],
    [
      'an alert rule that does not parse',
      replacing('PrometheusRule', 'whoami', (m) => ({
        ...m,
        spec: {
          groups: [
            {
              name: 'whoami',
              rules: [{ alert: 'WhoamiDown', expr: 'rate(up{job="whoami"})' }],
            },
          ],
        },
      })),
      'test/whoami: PrometheusRule/web/whoami: whoami/WhoamiDown:',
    ],
    [
      'a privileged container in a restricted namespace',
      replacing('Deployment', 'whoami', (m) => {
        m.spec.template.spec.containers[0].securityContext = {
          ...restrictedContainer.securityContext,
          privileged: true,
        };
        return m;
      }),
      'test/whoami: Deployment/web/whoami: Deployment violates Pod Security restricted of web: app: privileged',
    ],
    [
      "a Service selecting a Job's pods",
      [
        ...cleanSet(),
        {
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: { name: 'whoami-checkpoint', namespace: 'web' },
          spec: {
            template: {
              metadata: {
                labels: {
                  'app.kubernetes.io/name': 'whoami',
                  'app.kubernetes.io/component': 'checkpoint',
                },
              },
              spec: {
                restartPolicy: 'Never',
                containers: [restrictedContainer],
              },
            },
          },
        },
      ],
      'test/whoami: Service/web/whoami: selects the pods of Job whoami-checkpoint',
    ],
  ])('report %s', (_, manifests, expected) => {
    const problems = problemsOf(manifests);
    expect(problems.filter((p) => p.startsWith(expected))).toHaveLength(1);
    expect(problems).toHaveLength(1);
  });

  it("find a StatefulSet's claims by its claim templates, and only those", () => {
    const statefulSet = (claim: string): Manifest => ({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'db', namespace: 'web' },
      spec: {
        serviceName: 'db',
        selector: { matchLabels: { 'app.kubernetes.io/name': 'db' } },
        volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
        template: {
          metadata: { labels: { 'app.kubernetes.io/name': 'db' } },
          spec: { containers: [restrictedContainer], volumes: [{ name: 'restore', persistentVolumeClaim: { claimName: claim } }] },
        },
      },
    });
    const references = (claim: string) => environmentProblems('test', rendered([...cleanSet(), statefulSet(claim)])).filter((p) => p.check === 'reference').map((p) => p.message);
    expect(references('data-db-0')).toEqual([]);
    expect(references('data')).toEqual(['StatefulSet refers to PersistentVolumeClaim web/data, which nothing in the rendered set makes']);
  });

  it("see what operators make: the RabbitMQ operator's Service selects a checkpoint pod named after the cluster", () => {
    const namespace = 'rabbitmq';
    const cluster: Manifest = {
      apiVersion: 'rabbitmq.com/v1beta1',
      kind: 'RabbitmqCluster',
      metadata: { name: 'rabbitmq', namespace },
      spec: { replicas: 1 },
    };
    const job = (labels: Record<string, string>): Manifest => ({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'rabbitmq-checkpoint', namespace },
      spec: {
        template: {
          metadata: { labels },
          spec: {
            restartPolicy: 'Never',
            containers: [
              {
                ...restrictedContainer,
                env: [
                  {
                    name: 'PASSWORD',
                    valueFrom: {
                      secretKeyRef: {
                        name: 'rabbitmq-default-user',
                        key: 'password',
                      },
                    },
                  },
                ],
              },
            ],
          },
        },
      },
    });
    const checks = (labels: Record<string, string>) =>
      environmentProblems('test', rendered([cluster, job(labels)], 'rabbitmq')).filter((p) => p.check === 'job-selected' || p.check === 'reference');
    expect(checks({ 'app.kubernetes.io/name': 'rabbitmq' }).map((p) => `${p.manifest.metadata.name}: ${p.message}`)).toEqual([
      'rabbitmq: selects the pods of Job rabbitmq-checkpoint',
      'rabbitmq-nodes: selects the pods of Job rabbitmq-checkpoint',
    ]);
    expect(checks({ 'app.kubernetes.io/name': 'homelab-checkpoint' })).toEqual([]);
  });

  it('apply exceptions only to what they name, and report one that excuses nothing', () => {
    const set = new Map([
      [
        'test',
        rendered(
          replacing('ServiceMonitor', 'whoami', (m) => ({
            ...m,
            spec: { ...m.spec, endpoints: [{ port: 'metrics' }] },
          })),
        ),
      ],
    ]);
    const exception: RenderException = {
      check: 'monitor-target',
      object: 'whoami/ServiceMonitor/whoami',
      about: 'port named metrics',
      reason: 'test',
    };
    const unused: RenderException = {
      check: 'reference',
      object: 'whoami/Deployment/whoami',
      about: 'Secret',
      reason: 'nothing needs it',
    };
    expect(checkRendered(set, [exception])).toEqual([]);
    expect(checkRendered(set, [exception, unused])).toEqual(['exceptions: reference whoami/Deployment/whoami excuses nothing in test; remove it (nothing needs it)']);
    expect(checkRendered(set, [{ ...exception, object: 'whoami/ServiceMonitor/other' }])).toHaveLength(2);
  });
});

describe('Pod Security levels', () => {
  const pod = { containers: [restrictedContainer] };
  it('allow a restricted pod everywhere and flag each restricted rule', () => {
    expect(podSecurityViolations(pod, 'restricted')).toEqual([]);
    const loose = { containers: [{ name: 'app', securityContext: {} }] };
    expect(podSecurityViolations(loose, 'baseline')).toEqual([]);
    expect(podSecurityViolations(loose, 'restricted')).toEqual([
      'app: allowPrivilegeEscalation is not false',
      'app: runAsNonRoot is not true',
      'app: no RuntimeDefault or Localhost seccomp profile',
      'app: does not drop ALL capabilities',
    ]);
  });

  it('keep baseline for host access and privileges, and allow anything when privileged', () => {
    const host = {
      hostNetwork: true,
      volumes: [{ name: 'root', hostPath: { path: '/' } }],
      containers: [
        {
          name: 'agent',
          securityContext: {
            privileged: true,
            capabilities: { add: ['SYS_ADMIN'] },
          },
        },
      ],
    };
    expect(podSecurityViolations(host, 'baseline')).toEqual(['uses host namespaces', 'mounts a hostPath volume', 'agent: privileged', 'agent: adds capabilities SYS_ADMIN']);
    expect(podSecurityViolations(host, 'privileged')).toEqual([]);
  });
});

describe('connectivity through NetworkPolicies', () => {
  const pods = (labels: Record<string, string>) => ({
    metadata: { labels },
    spec: { containers: [{ ...restrictedContainer }] },
  });
  const namespace = (name: string): Manifest => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name,
      labels: { 'pod-security.kubernetes.io/enforce': 'restricted' },
    },
  });
  const policy = (ns: string, name: string, spec: Record<string, unknown>): Manifest => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: ns },
    spec,
  });
  const denyAll = (ns: string) =>
    policy(ns, 'default-deny', {
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
    });
  /** Traefik in `edge` routing to whoami in `web`, every namespace denying by default, plus `allow`. */
  const routed = (allow: Manifest[]): Manifest[] => [
    namespace('edge'),
    namespace('web'),
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'traefik', namespace: 'edge' },
      spec: {
        selector: { matchLabels: { 'app.kubernetes.io/name': 'traefik' } },
        template: pods({ 'app.kubernetes.io/name': 'traefik' }),
      },
    },
    deployment('whoami', { 'app.kubernetes.io/name': 'whoami' }),
    service('whoami', { 'app.kubernetes.io/name': 'whoami' }),
    WHOAMI_ROUTE,
    denyAll('edge'),
    denyAll('web'),
    ...allow,
  ];
  const connectivityOf = (manifests: Manifest[]) =>
    environmentProblems('test', rendered(manifests))
      .filter((p) => p.check === 'connectivity')
      .map((p) => p.message);
  /** The pods named `name` in `namespace`, as a policy peer. */
  const podsNamed = (namespace: string, name: string) => ({
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
    podSelector: { matchLabels: { 'app.kubernetes.io/name': name } },
  });
  const ingress = policy('web', 'allow-traefik', {
    podSelector: { matchLabels: { 'app.kubernetes.io/name': 'whoami' } },
    policyTypes: ['Ingress'],
    ingress: [{ from: [podsNamed('edge', 'traefik')], ports: [{ port: 'http' }] }],
  });
  const egress = policy('edge', 'egress-whoami', {
    podSelector: { matchLabels: { 'app.kubernetes.io/name': 'traefik' } },
    policyTypes: ['Egress'],
    egress: [{ to: [podsNamed('web', 'whoami')], ports: [{ port: 8080 }] }],
  });

  it('allow a route when both directions admit it, a named port resolving to the container port', () => {
    expect(connectivityOf(routed([ingress, egress]))).toEqual([]);
  });

  it('refuse it, naming the direction, when either side lacks its rule', () => {
    expect(connectivityOf(routed([ingress]))).toEqual([
      'Traefik cannot reach Deployment whoami in web on port 8080: egress from edge: no rule of the policies default-deny selecting the pod admits it',
    ]);
    expect(connectivityOf(routed([egress]))).toEqual([
      'Traefik cannot reach Deployment whoami in web on port 8080: ingress to web: no rule of the policies default-deny selecting the pod admits it',
    ]);
  });

  it("read a peer without a namespaceSelector as a pod of the policy's own namespace", () => {
    const sameNamespaceOnly = policy('edge', 'egress-whoami', {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [
        {
          to: [
            {
              podSelector: {
                matchLabels: { 'app.kubernetes.io/name': 'whoami' },
              },
            },
          ],
        },
      ],
    });
    expect(connectivityOf(routed([ingress, sameNamespaceOnly]))).toHaveLength(1);
  });

  it('follow a pod to the Services it names in its environment, command or arguments', () => {
    const client: Manifest = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'client', namespace: 'edge' },
      spec: {
        selector: { matchLabels: { 'app.kubernetes.io/name': 'client' } },
        template: { metadata: { labels: { 'app.kubernetes.io/name': 'client' } }, spec: { containers: [{ ...restrictedContainer, env: [{ name: 'URL', value: 'http://whoami.web.svc.cluster.local:80/' }] }] } },
      },
    };
    expect(connectivityOf([...routed([ingress, egress]), client])).toEqual([
      'Deployment client cannot reach Deployment whoami in web on port 8080: egress from edge: no rule of the policies default-deny selecting the pod admits it',
    ]);
  });

  it('let the API server reach a webhook only through an ipBlock rule', () => {
    const webhook: Manifest = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name: 'whoami' },
      webhooks: [
        {
          name: 'validate.whoami.example.net',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          clientConfig: {
            service: { namespace: 'web', name: 'whoami', port: 80 },
          },
        },
      ],
    };
    const fromApiServer = policy('web', 'allow-api-server', {
      podSelector: {},
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [{ ipBlock: { cidr: '10.0.0.0/8' } }],
          ports: [{ port: 8080 }],
        },
      ],
    });
    expect(connectivityOf([...routed([ingress, egress]), webhook])).toEqual([
      'the API server (webhook validate.whoami.example.net) cannot reach Deployment whoami in web on port 8080: ingress to web: no rule of the policies default-deny, allow-traefik selecting the pod admits it',
    ]);
    expect(connectivityOf([...routed([ingress, egress, fromApiServer]), webhook])).toEqual([]);
  });
});

describe("the Application's project", () => {
  const project = (spec: Record<string, unknown>): Manifest => ({
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'AppProject',
    metadata: { name: 'apps-test', namespace: 'argocd' },
    spec,
  });
  const application: Manifest = {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Application',
    metadata: { name: 'whoami', namespace: 'argocd' },
    spec: {
      project: 'apps-test',
      destination: { server: 'https://kubernetes.default.svc', namespace: 'web' },
      source: { repoURL: 'https://example.net/homelab.git', path: 'k8s/test/whoami', targetRevision: 'main' },
    },
  };
  const clusterRole: Manifest = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'whoami' }, rules: [] };
  const projectProblems = (spec: Record<string, unknown>, extra: Manifest[] = []) =>
    environmentProblems('test', [...rendered([application, project(spec)], 'root-test'), ...rendered([...cleanSet(), ...extra])])
      .filter((p) => p.check === 'project')
      .map((p) => `${p.manifest.kind}/${p.manifest.metadata.name}: ${p.message}`);
  const destinations = [{ server: 'https://kubernetes.default.svc', namespace: 'web' }];

  it('admits what its destinations and whitelist allow', () => {
    expect(
      projectProblems(
        {
          destinations,
          clusterResourceWhitelist: [
            { group: '', kind: 'Namespace' },
            { group: 'rbac.authorization.k8s.io', kind: 'ClusterRole' },
          ],
        },
        [clusterRole],
      ),
    ).toEqual([]);
  });

  it('refuses a cluster-scoped kind it does not whitelist and a namespace it has no destination for', () => {
    const elsewhere = { ...service('whoami', {}), metadata: { name: 'whoami', namespace: 'kube-system' } };
    expect(projectProblems({ destinations, clusterResourceWhitelist: [{ group: '', kind: 'Namespace' }] }, [clusterRole, elsewhere])).toEqual([
      'ClusterRole/whoami: project apps-test does not admit the cluster-scoped kind ClusterRole.rbac.authorization.k8s.io',
      'Service/whoami: project apps-test has no destination namespace kube-system',
    ]);
  });
});
