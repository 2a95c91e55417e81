/**
 * Network declarations of the service model, from which NetworkPolicies are derived:
 * the ports a service serves to the services that depend on it, and the ports the
 * Kubernetes API server calls (admission webhooks, aggregated APIs).
 */

export interface ServedPort {
  /** Port the pods listen on: number or container port name. */
  readonly port: number | string;
  /** @default 'TCP' */
  readonly protocol?: 'TCP' | 'UDP';
  /** Labels of the pods serving it. */
  readonly podSelector: Readonly<Record<string, string>>;
}
