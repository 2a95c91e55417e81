/**
 * What the whole-cluster checks (lib/tools/render/checks.ts) cannot see in the rendered set,
 * each with why it is right: objects an operator or the cluster makes at run time.
 */
import type { CheckName } from './checks';

export interface RenderException {
  readonly check: CheckName;
  /** `<Application>/<Kind>/<name>` of the object the problem is about. */
  readonly object: string;
  /** A part of the problem's message it excuses, e.g. the referenced object. */
  readonly about: string;
  readonly reason: string;
}

export const RENDER_EXCEPTIONS: readonly RenderException[] = [
  {
    check: 'monitor-target',
    object: 'monitoring/ServiceMonitor/monitoring-apiserver',
    about: 'selects no Service',
    reason: "the API server's Service default/kubernetes is made by the cluster",
  },
  {
    check: 'monitor-target',
    object: 'monitoring/ServiceMonitor/monitoring-coredns',
    about: 'selects no Service',
    reason: 'the DNS Service kube-system/kube-dns is made by the cluster (k3s ships CoreDNS)',
  },
  {
    check: 'monitor-target',
    object: 'monitoring/ServiceMonitor/monitoring-kubelet',
    about: 'selects no Service',
    reason: 'prometheus-operator keeps the kubelet Service in kube-system itself (its --kubelet-service flag, set by kube-prometheus-stack)',
  },
  ...['argocd-application-controller', 'argocd-redis', 'argocd-repo-server', 'argocd-server'].map((workload): RenderException => ({
    check: 'reference',
    object: `argocd/${workload === 'argocd-application-controller' ? 'StatefulSet' : 'Deployment'}/${workload}`,
    about: 'Secret argocd/argocd-redis',
    reason: "the chart's redis-secret-init hook Job creates the Secret before the workloads (argo-helm templates/redis-secret-init)",
  })),
  {
    check: 'reference',
    object: 'monitoring/Deployment/monitoring-operator',
    about: 'Secret monitoring/monitoring-admission',
    reason: "the chart's admission-create hook Job (kube-webhook-certgen) creates the webhook's certificate Secret before the operator",
  },
];
