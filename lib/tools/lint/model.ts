/**
 * What the policy linter works on: the manifests of one output tree (`k8s/<env>/<service>/`),
 * read as plain objects, and the pod templates (workloads) found in them.
 */
import type { UpstreamTarget } from '../../model/catalog';
import type { PodSecurityLevel } from '../../model/pod-security';

/** A Kubernetes object as written to k8s/, untyped beyond what every object has. */
export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  readonly spec?: any;
  readonly [field: string]: any;
}

/** One manifest of the tree with where it came from. */
export interface LintedObject {
  /** Environment folder, e.g. `prod`. */
  readonly env: string;
  /** Service folder (the Argo CD Application), e.g. `triton`. */
  readonly service: string;
  /** Path relative to the tree, e.g. `prod/triton/deployment-triton.yaml`. */
  readonly file: string;
  readonly manifest: Manifest;
}

/** `<service>/<Kind>/<name>`: how violations and exceptions name a resource (environment-independent). */
export function resourceKey(object: LintedObject): string {
  return `${object.service}/${object.manifest.kind}/${object.manifest.metadata.name}`;
}


/**
 * A pod template in one of our objects. `operator` templates are completed by an operator
 * (RabbitmqCluster: the StatefulSet is the operator's, we set image, resources and
 * placement): only the rules about what we set apply to them.
 */
export interface Workload {
  readonly object: LintedObject;
  /** `Deployment`, or `RayCluster worker group cpu` for templates inside custom resources. */
  readonly label: string;
  readonly namespace: string;
  /** How many pods it can run at once (autoscaled groups at their maximum). */
  readonly replicas: number;
  /** Runs until stopped (probes make sense), unlike a Job. */
  readonly longRunning: boolean;
  readonly template: 'ours' | 'operator';
  /** Labels of the pods it creates. */
  readonly podLabels: Record<string, string>;
  /** The pod spec (for `operator` templates, the parts we set). */
  readonly pod: any;
}

/** The context every rule sees: one environment's objects and workloads. */
export interface Environment {
  readonly name: string;
  readonly objects: readonly LintedObject[];
  readonly workloads: readonly Workload[];
  /** Pod Security level of a namespace, from its Namespace object (restricted if not in the tree). */
  podSecurityLevel(namespace: string): PodSecurityLevel;
  /** Scrape targets of upstream charts (not in the tree), by monitor name: the catalog's. */
  readonly upstreamTargets: Readonly<Record<string, UpstreamTarget>>;
}

/** A rule's finding about one object. */
export interface Finding {
  readonly object: LintedObject;
  readonly message: string;
}

export interface Rule {
  /** The upstream check's name, e.g. kube-linter `run-as-non-root`, Polaris `hostPIDSet`. */
  readonly id: string;
  /** Which linter or standard the rule mirrors. */
  readonly source: string;
  readonly description: string;
  check(env: Environment): Finding[];
}

/** A finding that no exception covers, or an exception that covers nothing. */
export interface Violation {
  /** `<env>/<file>` for findings; the exception file for unused exceptions. */
  readonly location: string;
  readonly rule: string;
  readonly message: string;
}
