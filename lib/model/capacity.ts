/** Capacity as a declaration of the service model: what a service's workloads request. */

/** What one workload of a service requests in total: per replica times replicas. */
export interface ResourceDemand {
  readonly service: string;
  /** The workload, e.g. `triton` or `ray gpu workers`. */
  readonly workload: string;
  /** Replicas at most (autoscaled groups count at their maximum). */
  readonly replicas: number;
  /** Per replica. */
  readonly cpu: string;
  /** Per replica. */
  readonly memory: string;
  /** Per replica. @default 0 */
  readonly gpus?: number;
}
