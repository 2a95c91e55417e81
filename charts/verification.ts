/**
 * The end-to-end verification (the design's "final system validation"): the last Application
 * of an environment, synced after every other service. Its PostSync hooks run the services'
 * final steps (configuration that needs every other service up, e.g. Vault's OIDC login, which
 * fetches the issuer's discovery document through the router, the tunnel and DNS) next to every
 * service's checkpoint again, in that service's namespace, plus checks across services:
 * Prometheus has up targets of every service that declares metrics, Loki has logs of every
 * namespace that runs pods, and the checks services declare across services (n8n running its workflow, publishing to
 * RabbitMQ). A report Job then prints one line per check (with the log
 * tail of failed ones); it also runs when a check fails (SyncFail), so the report is always
 * the Job log the operator reads, and a failure shows the Application red.
 */
import { k8s } from 'cdk8s-plus-34';
import { Construct } from 'constructs';
import { defineService } from '../lib/model/catalog';
import { Checkpoint, CHECKPOINT_COMPONENT, CHECKPOINT_CONTAINER, CheckpointProps, grantRole, KUBE_CALL_MAX_SECONDS, namespaceAccount, probeJob } from '../lib/model/checkpoint';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { EndToEndCheck, HomelabService } from '../lib/model/service';
import { IMAGES } from './versions';
import { alloyEntry } from './alloy';
import { MonitoringStack, monitoringEntry, PROMETHEUS_URL } from './kube-prometheus-stack';
import { Loki, lokiEntry } from './loki';

export interface VerificationProps {
  /** Every other service of the environment: the verification runs after all of them. */
  readonly services: readonly HomelabService[];
  /** Checks that every service with metrics has targets up. @default no metrics check */
  readonly monitoring?: MonitoringStack;
  /** With a log shipper: checks that every namespace running pods has logs in Loki. @default no log check */
  readonly logs?: Loki;
}

export const VERIFICATION_NAMESPACE = 'verification';

/** One check of the verification: a Job in some namespace. */
export interface VerificationCheck {
  readonly namespace: string;
  readonly job: string;
  readonly description: string;
  /** The container whose log the report shows when the Job fails. @default 'checkpoint' (every probe's) */
  readonly container?: string;
}

/** Kinds whose pods ship logs (upstream charts and kustomizations run pods too). */
const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'RabbitmqCluster', 'RayCluster']);

/**
 * The services' final steps, the replays and the cross-service checks in one wave (no check needs
 * a final step: a failed step must not keep the checks from running, or the report would read the
 * previous sync's Jobs); the report after them.
 */
const CHECKS_WAVE = 0;
const REPORT_WAVE = 1;
/**
 * How long the report waits for a check that is still running (it runs on a failed sync too): not
 * every check's deadline (Ray's and the monitoring checkpoint's are 45 minutes), which would keep
 * the failed sync's report that long; a check still running then is reported RUNNING, with the
 * tail of its log so far.
 */
const REPORT_WAIT_SECONDS = 600;
/** How often the report asks for the state of a check that is still running. */
const REPORT_POLL_SECONDS = 10;

export class Verification extends HomelabService {
  readonly checks: readonly VerificationCheck[];

  constructor(scope: Platform, props: VerificationProps) {
    // Ordered after every service, but not a client of any: its Jobs run in their namespaces
    // (no props references, so no NetworkPolicy allow rule from this namespace).
    super(scope, 'verification', {}, { layer: Layer.VERIFICATION, namespace: VERIFICATION_NAMESPACE });
    for (const service of props.services) this.dependOn(service);
    const checks: VerificationCheck[] = [];
    // A failed step fails the sync like a failed check: the report (SyncFail too) shows its log.
    for (const service of props.services) {
      for (const step of service.finalSteps) {
        step.emit(new Construct(this, `${service.serviceName}-${step.job}`), CHECKS_WAVE);
        checks.push({ namespace: service.namespaceName, job: step.job, description: step.description, container: step.container });
      }
    }
    for (const service of props.services) {
      const checkpoint = service.checkpoint;
      if (!checkpoint) throw new Error(`${service.serviceName} has no checkpoint to verify`);
      const job = `${service.serviceName}-e2e`;
      checkpoint.replay(this, job, { hookWave: CHECKS_WAVE });
      checks.push({ namespace: service.namespaceName, job, description: checkpoint.description });
    }
    const scraped = props.services.filter((s) => s.metricsEndpoints.length > 0).map((s) => s.serviceName);
    if (props.monitoring && scraped.length > 0) checks.push(this.targetsCheck(props.monitoring, scraped));
    const logging = props.services.filter(runsPods).map((s) => s.namespaceName);
    if (props.logs && logging.length > 0) checks.push(this.logsCheck(props.logs, [...new Set(logging)].sort()));
    for (const service of props.services) for (const check of service.endToEndChecks) checks.push(this.crossCheck(service, check.job, check.check, check));
    this.checks = checks;
    this.addReport(checks);
  }

  /** Every service that declares metrics has at least one target up (a monitor that selects nothing has none). */
  private targetsCheck(monitoring: MonitoringStack, services: readonly string[]): VerificationCheck {
    return this.crossCheck(monitoring, 'e2e-prometheus-targets', {
      description: `Prometheus has up targets of every service that declares metrics (${services.length})`,
      image: IMAGES.curl,
      env: { PROMETHEUS_URL, SERVICES: services.join(' ') },
      script: String.raw`up=$(curl -fsS --max-time 10 -G "$PROMETHEUS_URL/api/v1/query" --data-urlencode 'query=count by (${SERVICE_LABEL}) (up == 1)' | tr -d ' \n')
${everyLabelValueIn({
        answer: 'up',
        label: SERVICE_LABEL,
        each: 'service',
        list: 'SERVICES',
        found: 'ok: $service has targets up',
        missing: 'no target up for:$missing (check their ServiceMonitor/PodMonitor selectors and ports)',
      })}`,
    });
  }

  /** Logs of every namespace that runs pods reached Loki within the last hour. */
  private logsCheck(loki: Loki, namespaces: readonly string[]): VerificationCheck {
    return this.crossCheck(loki, 'e2e-loki-logs', {
      description: `Loki has log lines from every namespace that runs pods (${namespaces.length}) within the last hour`,
      image: IMAGES.curl,
      env: { LOKI_URL: loki.queryUrl, NAMESPACES: namespaces.join(' ') },
      script: String.raw`selector="{namespace=~\"$(echo $NAMESPACES | tr ' ' '|')\"}"
found=$(curl -fsS --max-time 30 -G "$LOKI_URL/loki/api/v1/query" --data-urlencode "query=sum by (namespace) (count_over_time($selector[1h]))" | tr -d ' \n')
${everyLabelValueIn({
        answer: 'found',
        label: 'namespace',
        each: 'namespace',
        list: 'NAMESPACES',
        found: 'ok: logs from $namespace',
        missing: 'no logs in the last hour from:$missing',
      })}`,
    });
  }

  /**
   * A check Job in another service's namespace (reaching what that service may reach): as that
   * service's `account` if it names one, or, for a check that makes scratch objects there
   * (`access`), as an account of its own in that namespace (with its `readsCluster`).
   * With `scratchAccess`, the account may make its scratch objects here instead, in this
   * restricted namespace (EndToEndCheck.scratchAccess).
   */
  private crossCheck(host: HomelabService, job: string, props: Omit<CheckpointProps, 'hookWave'>, { account, access, scratchAccess }: Pick<EndToEndCheck, 'account' | 'access' | 'scratchAccess'> = {}): VerificationCheck {
    const scope = new Construct(this, job);
    const runAs = account ?? (access && namespaceAccount(scope, job, host.namespaceName, this.labelsFor(CHECKPOINT_COMPONENT), access, props.readsCluster));
    const check = scratchAccess && runAs ? { ...props, env: { ...props.env, SCRATCH_NAMESPACE: this.grantScratchAccess(scope, host, runAs, scratchAccess) } } : props;
    probeJob(scope, job, check, { owner: this, namespace: host.namespaceName, hookWave: CHECKS_WAVE, keep: true, account: runAs });
    return { namespace: host.namespaceName, job, description: props.description };
  }

  /**
   * A Role in this namespace with `rules`, bound to `account` of `host`'s namespace (named after
   * both, as accounts of several namespaces may share a name); returns this namespace. The
   * verification's Application keeps it: Roles exist before the PostSync hooks that use them.
   */
  private grantScratchAccess(scope: Construct, host: HomelabService, account: string, rules: readonly k8s.PolicyRule[]): string {
    const metadata = { name: `${host.namespaceName}-${account}`, labels: this.labelsFor(CHECKPOINT_COMPONENT) };
    grantRole(scope, 'scratch', 'Role', metadata, rules, [{ kind: 'ServiceAccount', name: account, namespace: host.namespaceName }]);
    return this.namespaceName;
  }

  /** Waits for every check Job, prints one line per check and the log tail of failures. */
  private addReport(checks: readonly VerificationCheck[]): void {
    const byNamespace = new Map<string, string[]>();
    for (const check of checks) byNamespace.set(check.namespace, [...(byNamespace.get(check.namespace) ?? []), check.job]);
    new Checkpoint(this, 'checkpoint', {
      description: `report of the end-to-end verification: ${checks.length} checks`,
      image: IMAGES.curl,
      runsOnSyncFailure: true,
      hookWave: REPORT_WAVE,
      // The wait, a last state call and pause, then for every check its state, its pod and its log
      // at the API call's limit, after the pod started.
      scriptSeconds: REPORT_WAIT_SECONDS + KUBE_CALL_MAX_SECONDS + REPORT_POLL_SECONDS + checks.length * 3 * KUBE_CALL_MAX_SECONDS,
      env: {
        CHECKS: checks.map((c) => `${c.namespace}/${c.job}/${c.container ?? CHECKPOINT_CONTAINER}`).join(' '),
        WAIT_SECONDS: String(REPORT_WAIT_SECONDS),
      },
      readsNamespaces: Object.fromEntries(
        [...byNamespace].map(([namespace, jobs]) => [
          namespace,
          [
            { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get'], resourceNames: jobs },
            { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
            { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
          ],
        ]),
      ),
      script: REPORT_SCRIPT,
    });
  }
}

/** Services whose namespace runs pods (and so must have logs): upstream sources or workloads of their own. */
function runsPods(service: HomelabService): boolean {
  return service.helm !== undefined || service.kustomizations.length > 0 || service.apiObjects.some((o) => WORKLOAD_KINDS.has(o.kind));
}

/**
 * Shell: every value in `$<list>` must appear as `"<label>":"<value>"` in the (whitespace-free)
 * JSON answer `$<answer>` of a Prometheus or Loki instant query; the missing ones are listed.
 */
function everyLabelValueIn(o: { answer: string; label: string; each: string; list: string; found: string; missing: string }): string {
  return String.raw`missing=""
for ${o.each} in $${o.list}; do
  case "$${o.answer}" in
    *"\"${o.label}\":\"$${o.each}\""*) echo "${o.found}" ;;
    *) missing="$missing $${o.each}" ;;
  esac
done
if [ -n "$missing" ]; then echo "${o.missing}" >&2; exit 1; fi`;
}

/**
 * The report: `state` of each check (`<namespace>/<job>/<container>`) is pass, fail, running or
 * missing (a check not created: the sync failed before the verification's hooks); failed checks print the
 * last lines of their pod's log (of the check's own container: a probe may have a companion).
 * Exit 1 unless every check passed. A check's parts are split at its slashes by the shell (IFS).
 */
const REPORT_SCRIPT = String.raw`state() {
  status=$(kube_get "/apis/batch/v1/namespaces/$1/jobs/$2" 2>/dev/null)
  case "$status" in
    '') echo missing ;;
    *'"type":"Complete","status":"True"'*|*'"status":"True","type":"Complete"'*) echo pass ;;
    *'"type":"Failed","status":"True"'*|*'"status":"True","type":"Failed"'*) echo fail ;;
    *) echo running ;;
  esac
}
deadline=$(( $(date +%s) + WAIT_SECONDS ))
for check in $CHECKS; do
  IFS=/; set -- $check; unset IFS
  while [ "$(state "$1" "$2")" = running ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep ${REPORT_POLL_SECONDS}; done
done
failed=0
echo "end-to-end verification:"
for check in $CHECKS; do
  IFS=/; set -- $check; unset IFS
  namespace=$1; job=$2; container=$3
  result=$(state "$namespace" "$job")
  case "$result" in pass) shown=PASS ;; fail) shown=FAIL ;; running) shown=RUNNING ;; *) shown=MISSING ;; esac
  printf '  %-4s  %s\n' "$shown" "$namespace/$job"
  if [ "$result" != pass ]; then
    failed=$((failed + 1))
    pod=$(kube_get "/api/v1/namespaces/$namespace/pods?labelSelector=job-name%3D$job" | grep -o "\"name\":\"$job-[a-z0-9]*\"" | tail -n 1 | cut -d '"' -f 4)
    if [ -n "$pod" ]; then kube_get "/api/v1/namespaces/$namespace/pods/$pod/log?container=$container&tailLines=20" | sed 's/^/        /'; fi
  fi
done
if [ "$failed" -gt 0 ]; then echo "$failed check(s) did not pass" >&2; exit 1; fi
echo "all checks passed"`;

/**
 * The final validation of every environment: built once every other service exists and the
 * exposures are routed, so that it replays every checkpoint (the router's included).
 */
export const verificationEntry = defineService({
  name: 'verification',
  enabled: () => true,
  final: true,
  names: [VERIFICATION_NAMESPACE],
  serviceNames: () => [],
  build: (platform, _settings, context) =>
    new Verification(platform, {
      services: [...context.services],
      monitoring: context.optional(monitoringEntry),
      // Logs reach Loki only where Alloy ships them.
      logs: platform.isEnabled(alloyEntry) ? context.optional(lokiEntry) : undefined,
    }),
});
