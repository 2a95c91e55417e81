/**
 * A service's validation step, run by Argo CD as a PostSync hook Job after every sync of
 * the service's Application. A failing Job fails the sync, the Application turns Degraded
 * (see the health check in charts/argocd.ts) and the next wave does not start.
 */
import { Duration } from 'cdk8s';
import { k8s } from 'cdk8s-plus-34';
import { Construct } from 'constructs';
import { ROOT_CA_CONFIG_MAP } from './kubernetes';
import { restrictedContainerContext, restrictedPodContext } from './pod-security';
import { Resources, resources, toResourceRequirements } from './resources';
import { HomelabService } from './service';
import { byCodeUnits } from '../util/text-order';

export const CHECKPOINT_COMPONENT = 'checkpoint';
/** On a probe Job: the custom resource it creates at run time (CheckpointProps.creates). */
export const CREATES_ANNOTATION = 'homelab.dev/creates';
/** Selects the pods of every checkpoint-style Job in a namespace, whichever service runs it. */
export const CHECKPOINT_PODS = { 'app.kubernetes.io/component': CHECKPOINT_COMPONENT } as const;

/** The name of a service's checkpoint Job. */
export function checkpointJobName(service: HomelabService): string {
  return `${service.serviceName}-checkpoint`;
}

/** The probe's container in every checkpoint and check Job (the verification's report reads its log). */
export const CHECKPOINT_CONTAINER = 'checkpoint';

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
  /**
   * The longest the script runs, every call at its limit and every pause taken: the Job's
   * deadline is this after the pod's start (CHECK_START_SECONDS), so the script's message comes
   * before it. @default see checkDeadlineSeconds
   */
  readonly scriptSeconds?: number;
  /** A fixed deadline for the Job instead, pod start included, for a script whose worst case is not counted. @default see checkDeadlineSeconds */
  readonly timeout?: Duration;
  /** @default none */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Environment variables read from keys of Secrets in the service's namespace (credentials
   * never inline): a declared Secret's `SecretRef.keySelector(key)`, or a Secret an operator
   * generates in the cluster. @default none
   */
  readonly secretEnv?: Readonly<Record<string, { readonly name: string; readonly key: string }>>;
  /** @default none */
  readonly volumes?: readonly k8s.Volume[];
  /** @default none */
  readonly volumeMounts?: readonly k8s.VolumeMount[];
  /**
   * A fresh volume of this StorageClass, mounted at `mountPath`: created with the Job (bound
   * before it starts) and deleted after a successful run. @default none
   */
  readonly scratchVolume?: { readonly storageClass: string; readonly size: string; readonly mountPath: string };
  /**
   * Read access to the cluster API the check needs (e.g. get nodes): the checkpoint then
   * runs as its own ServiceAccount bound to exactly these rules, and the script can call
   * `kube_get <api path>`. @default none: no API token is mounted
   */
  readonly readsCluster?: readonly k8s.PolicyRule[];
  /** Like `readsCluster`, but per namespace (Roles instead of a ClusterRole). @default none */
  readonly readsNamespaces?: Readonly<Record<string, readonly k8s.PolicyRule[]>>;
  /**
   * A second container in the probe's pod, started with it and sharing its volumes: the tools
   * of another image (psql beside curl). The API token stays the probe's own. @default none
   */
  readonly companion?: CompanionContainer;
  /**
   * A custom resource the probe creates at run time (and deletes), as `<group>/<Kind> <name>` in
   * its namespace: the Job's CREATES_ANNOTATION, so that the render checks see what its operator
   * makes from it. @default none
   */
  readonly creates?: string;
  /** Also run when the sync fails (a `SyncFail` hook), e.g. to report what failed. @default false */
  readonly runsOnSyncFailure?: boolean;
  /** Order among the Application's PostSync hooks (`sync-wave`). @default 0 */
  readonly hookWave?: number;
  /**
   * What the probe's container requests and may use: a probe that starts an application (n8n's
   * CLI loads every node package) needs more than a shell and curl. @default PROBE_RESOURCES
   */
  readonly resources?: Resources;
}

/** A probe's second container (CheckpointProps.companion). */
export interface CompanionContainer {
  readonly name: string;
  readonly image: string;
  /** Shell script, run with `sh -ec`. */
  readonly script: string;
  /** @default none */
  readonly env?: Readonly<Record<string, string>>;
  /** @default none */
  readonly secretEnv?: Readonly<Record<string, { readonly name: string; readonly key: string }>>;
  /**
   * Keys of a Secret as files `<mountPath>/<key>`, mounted in this container only: a password the
   * script reads when it connects, not an environment variable of the container. @default none
   */
  readonly secretFiles?: { readonly secretName: string; readonly keys: readonly string[]; readonly mountPath: string };
}

/** Enough for a shell script calling curl, wget or a small Node.js program. */
const PROBE_RESOURCES: Resources = resources('10m', '16Mi', '100m', '64Mi');

/** Where a pod's API token, the cluster's CA and the namespace are found (the path kubelet mounts them at, which clients expect). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * The API token of a probe with an account, as a volume mounted into the probe's container only
 * (never into a companion): the pod's own automount is off, as it would mount the token into
 * every container. What Kubernetes' ServiceAccount admission plugin mounts otherwise
 * (plugin/pkg/admission/serviceaccount/admission.go, TokenVolumeSource): a bound token of an
 * hour (3607 s), the cluster's CA from the `kube-root-ca.crt` ConfigMap, the namespace.
 */
const API_TOKEN_VOLUME: k8s.Volume = {
  name: 'api-token',
  projected: {
    defaultMode: 0o644,
    sources: [
      { serviceAccountToken: { path: 'token', expirationSeconds: 3607 } },
      { configMap: { name: ROOT_CA_CONFIG_MAP, items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      { downwardApi: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
    ],
  },
};

/** How often `kube_condition` asks, and how long it waits in between: five minutes. */
const CONDITION_CHECKS = 30;
const CONDITION_CHECK_SECONDS = 10;
/** curl's limit for connecting (kube_get's, a CurlRetry's): a server out of reach fails the call, not the Job's deadline. */
export const CONNECT_MAX_SECONDS = 5;
export const KUBE_CALL_MAX_SECONDS = 10;
/**
 * The user agent of kube_get's calls. The API server pretty-prints JSON (spaces after colons, a
 * line per field) for a user agent starting with `curl`, `Wget` or `Mozilla/5.0`, and writes it
 * compact for any other (k8s.io/apiserver, endpoints/handlers/negotiation: isPrettyPrint). So
 * named, every JSON answer is one compact line that the scripts match as it is, with no `tr`
 * process per call to strip it (a pod's log stays text); and the API server's audit log tells
 * the checkpoints' calls apart.
 */
export const KUBE_USER_AGENT = 'homelab-checkpoint';
/**
 * The longest a script's `kube_condition` calls wait for `objects` objects, one after another:
 * their tries are the script's, so at most CONDITION_CHECKS asks fail, each but the last followed
 * by the pause, and each object's passing ask comes on top; every ask at curl's limit. Five
 * minutes of tries for all of them, not for each: objects that come about one after another
 * cannot outlast the Job's deadline before its report.
 */
export function conditionWaitSeconds(objects: number): number {
  return CONDITION_CHECKS * KUBE_CALL_MAX_SECONDS + (CONDITION_CHECKS - 1) * CONDITION_CHECK_SECONDS + objects * KUBE_CALL_MAX_SECONDS;
}

/** What a checkpoint's Job allows for its pod to start (its image pulled) before its script runs. */
export const CHECK_START_SECONDS = 120;

/** A check Job's deadline where its props name none. */
const DEFAULT_DEADLINE_SECONDS = 600;

/**
 * The longest a retry loop runs: every try at its call's limit, each followed by the pause.
 * A Job's deadline must outlast it (and the pod's start), or the message never comes.
 */
export function retrySeconds(tries: number, callMaxSeconds: number, pauseSeconds: number): number {
  return tries * (callMaxSeconds + pauseSeconds);
}

/**
 * A loop that calls until a test passes and gives up once a clock deadline `waitSeconds` away
 * has passed: `pauseSeconds` between two calls, each of them within `callMaxSeconds`.
 */
export interface DeadlineWait {
  readonly waitSeconds: number;
  readonly pauseSeconds: number;
  readonly callMaxSeconds: number;
}

/**
 * The longest a DeadlineWait runs: its last check comes just before the deadline, then the pause
 * and one more call at its limit.
 */
export function untilDeadlineSeconds(wait: DeadlineWait): number {
  return wait.waitSeconds + wait.pauseSeconds + wait.callMaxSeconds;
}

/**
 * Shell lines of a DeadlineWait: until `test` (whose call keeps to the wait's `callMaxSeconds`)
 * passes, `waiting` and the pause; past the deadline, `failure` on stderr and exit 1. At most
 * untilDeadlineSeconds(wait).
 */
export function untilDeadline(wait: DeadlineWait, o: { readonly test: string; readonly waiting: string; readonly failure: string }): string[] {
  return [
    `deadline=$(( $(date +%s) + ${wait.waitSeconds} ))`,
    `until ${o.test}; do`,
    `  if [ "$(date +%s)" -ge "$deadline" ]; then echo "${o.failure}" >&2; exit 1; fi`,
    `  echo "${o.waiting}"`,
    `  sleep ${wait.pauseSeconds}`,
    'done',
  ];
}

/** A readiness wait: five minutes, asked every 10 s, each call at most 5 s. */
const READY_WAIT: DeadlineWait = { waitSeconds: 300, pauseSeconds: 10, callMaxSeconds: 5 };
/** The longest readinessWait runs. */
export const READINESS_WAIT_SECONDS = untilDeadlineSeconds(READY_WAIT);

/**
 * Shell lines that wait up to five minutes for `$<urlVariable>/ready` to answer 2xx (Loki's and
 * Tempo's readiness endpoint), then say `<name> is ready`; or fail saying it did not become
 * ready. At most READINESS_WAIT_SECONDS.
 */
export function readinessWait(name: string, urlVariable: string): string {
  return [
    ...untilDeadline(READY_WAIT, {
      test: `curl -fsS --max-time ${READY_WAIT.callMaxSeconds} "$${urlVariable}/ready" > /dev/null`,
      waiting: `waiting for ${name} to be ready`,
      failure: `${name} did not become ready within 5 minutes`,
    }),
    `echo "${name} is ready"`,
  ].join('\n');
}

/** A curl call that curl itself retries (`--retry`, `--retry-delay`), each attempt within `--max-time`. */
export interface CurlRetry {
  readonly retries: number;
  readonly delaySeconds: number;
  readonly maxSeconds: number;
}

/**
 * A call of a server that may still be starting (a webhook, an API, a receiver right after its
 * pod's start): retried for about a minute, each attempt within 10 s.
 */
export const STARTING_SERVER_CALL: CurlRetry = { retries: 10, delaySeconds: 6, maxSeconds: 10 };

/** The longest a CurlRetry runs: every attempt at its limit, a delay between two. */
export function curlRetrySeconds(call: CurlRetry): number {
  return (call.retries + 1) * call.maxSeconds + call.retries * call.delaySeconds;
}

/** curl's options for a CurlRetry of a server that may still be starting: retried on any error (or only on refused connections and timeouts), connecting within 5 s. */
export function curlRetryOptions(call: CurlRetry, retryOn: 'all-errors' | 'connrefused' = 'all-errors'): string {
  return `--retry ${call.retries} --retry-delay ${call.delaySeconds} --retry-${retryOn} --connect-timeout ${CONNECT_MAX_SECONDS} --max-time ${call.maxSeconds}`;
}

/**
 * A shell function for a checkpoint script that runs a program with no time limit of its own (a
 * CLI that may hang on a server that never answers): `within <seconds> <command> [args]` runs it
 * in the background, beside a watchdog that looks every second whether it still runs; past
 * `<seconds>` the watchdog kills it (SIGKILL: the check's pod is throwaway, and a program waiting
 * on a socket may not end on SIGTERM) and `within` says it gave up, with status 124 (as coreutils'
 * `timeout`, which images do not all have). Otherwise it returns the command's status once the
 * watchdog has seen it end. The watchdog is never signalled: a signal that reaches a shell's child
 * between its fork and its exec is lost, so a `sleep` killed from outside can outlive the script.
 * It fails closed: a limit that is not a whole number, or a watchdog that cannot read the clock,
 * is an error (status 2), never a run without a limit. The command's process is the one killed: a
 * program, or the subshell of a shell function. The call's input and output are the command's (a
 * command in the background of a script would read /dev/null: its input goes through fd 9). At
 * most WITHIN_SLACK_SECONDS more than `<seconds>`.
 */
export const WITHIN = String.raw`within() {
  case $1 in
    '' | *[!0-9]*)
      echo "within: not a whole number of seconds: '$1'" >&2
      return 2
      ;;
  esac
  within_limit=$1
  shift
  { "$@" <&9 9<&- & } 9<&0
  within_command=$!
  (
    within_now=$(date +%s) || exit 2
    within_deadline=$((within_now + within_limit))
    while kill -0 "$within_command" 2>/dev/null; do
      within_now=$(date +%s) || exit 2
      if [ "$within_now" -ge "$within_deadline" ]; then
        kill -KILL "$within_command" 2>/dev/null && exit 124
        exit 0
      fi
      sleep 1
    done
  ) < /dev/null > /dev/null 2>&1 &
  within_watchdog=$!
  within_status=0
  wait "$within_command" || within_status=$?
  within_fired=0
  wait "$within_watchdog" || within_fired=$?
  case $within_fired in
    0) return "$within_status" ;;
    124)
      echo "gave up on '$*' after $within_limit s" >&2
      return 124
      ;;
    *)
      echo "the watchdog of '$*' failed (status $within_fired): it ran without its limit" >&2
      return 2
      ;;
  esac
}`;
/** What `within` may take beyond its limit: the watchdog's last pause, and the clock's whole seconds. */
export const WITHIN_SLACK_SECONDS = 2;

/** Whether a script waits for objects' conditions (and so gets kube_condition and its tries). */
function waitsForConditions(script: string): boolean {
  return /\bkube_condition\b/.test(script);
}

/**
 * How many objects a script waits for: its `kube_condition` calls. A call in a loop waits for as
 * many objects as the loop has items, which the script's text does not tell: such a script gives
 * its own `scriptSeconds` (Traefik's), and is refused here.
 */
function conditionCalls(script: string): number {
  let loops = 0;
  let calls = 0;
  for (const line of script.split('\n')) {
    if (/^\s*done\b/.test(line)) loops -= 1;
    if (/\bkube_condition /.test(line)) {
      if (loops > 0) throw new Error(`a checkpoint script calls kube_condition in a loop (${line.trim()}): give its scriptSeconds, counting each item`);
      calls += 1;
    }
    if (/(?:^|[;\s])do\s*$/.test(line)) loops += 1;
  }
  return calls;
}

/**
 * A check Job's `activeDeadlineSeconds`: the pod's start and its script's worst case
 * (`scriptSeconds`), or its props' fixed timeout; else, where its script waits for conditions,
 * the pod's start and the one wait of its calls, whose tries they share
 * (`conditionWaitSeconds`); else ten minutes.
 */
export function checkDeadlineSeconds(props: Pick<CheckpointProps, 'scriptSeconds' | 'timeout' | 'script'>): number {
  if (props.scriptSeconds !== undefined) return CHECK_START_SECONDS + props.scriptSeconds;
  if (props.timeout !== undefined) return props.timeout.toSeconds();
  return waitsForConditions(props.script) ? CHECK_START_SECONDS + conditionWaitSeconds(conditionCalls(props.script)) : DEFAULT_DEADLINE_SECONDS;
}

/**
 * Shell functions for the scripts of checkpoints with `readsCluster` or `readsNamespaces`:
 * `kube_get <api path> [curl options]` prints the object, JSON as one compact line (its user
 * agent, KUBE_USER_AGENT, asks for it; a caller's own user agent or a `pretty` parameter would
 * undo that, and an invariant refuses both), e.g. with `-H 'Accept: ...;as=PartialObjectMetadata...'`
 * its metadata only; `kube_condition <api path> <type>` waits for its status condition
 * <type> to be True, asking every 10 s (built-in types list `type` first, custom resources come
 * back with sorted keys, so both orders match; matched, and the tries counted, by the shell
 * itself, not by a `tr`, a `grep` or a `seq` process per call). The tries are the script's, five
 * minutes of them for all its calls (conditionWaitSeconds): a call asks at least once, and gives
 * up when the script's tries are spent (a call in a subshell or `$(…)` would spend a copy of
 * them: none is). It and its tries come with a script that calls it (probeJob): the tries from
 * the Job's env, so the tests fail it in two.
 * `kube_get` reads the token at each call, as kubelet renews it, with the shell's own `read`
 * rather than a `cat` process per call (a token has no final newline, so `read` sets it and
 * then reports the end of the file: `|| :`); a token it cannot read is empty, as `$(cat)`'s
 * was, never the one of an earlier call. Its calls are bounded (a caller's own `--max-time`
 * comes later and wins), and kube_condition gives up naming its last answer: the condition
 * not True yet, or curl's error where the API server did not answer (a NetworkPolicy that
 * drops the way to it, a refused token), which "not True" would hide.
 */
const KUBE_GET = String.raw`sa=${SERVICE_ACCOUNT_DIR}
kube_get() {
  kube_path=$1
  shift
  kube_token=
  read -r kube_token < "$sa/token" || :
  curl -fsS --connect-timeout ${CONNECT_MAX_SECONDS} --max-time ${KUBE_CALL_MAX_SECONDS} --cacert "$sa/ca.crt" -H "Authorization: Bearer $kube_token" -A ${KUBE_USER_AGENT} "$@" "https://kubernetes.default.svc$kube_path"
}`;
const KUBE_CONDITION = String.raw`kube_condition() {
  : "${'$'}{CONDITION_CHECKS:?unset (the Job that calls kube_condition sets it)}"
  kube_tries_left=${'$'}{kube_tries_left-$CONDITION_CHECKS}
  while :; do
    if kube_answer=$(kube_get "$1" 2>&1); then
      case $kube_answer in
        *"\"type\":\"$2\",\"status\":\"True\""* | *"\"status\":\"True\",\"type\":\"$2\""*) return 0 ;;
      esac
      kube_state="condition $2 is not True"
    else
      kube_state="cannot read it from the API server ($kube_answer)"
    fi
    kube_tries_left=$((kube_tries_left - 1))
    if [ "$kube_tries_left" -le 0 ]; then
      echo "$1: $kube_state" >&2
      return 1
    fi
    sleep ${CONDITION_CHECK_SECONDS}
  done
}`;

/** The pause between two rounds of eachUntilOk. */
const ROUND_PAUSE_SECONDS = 10;

/**
 * The longest eachUntilOk runs: until its `seconds` are out, the pause, then a last round that
 * asks every item at the limit of its calls (`itemSeconds`). A Job's deadline must outlast it,
 * or the report of what is still failing never comes.
 */
export function eachUntilOkSeconds(seconds: number, items: number, itemSeconds: number): number {
  return seconds + ROUND_PAUSE_SECONDS + items * itemSeconds;
}

/**
 * Shell for a checkpoint that checks many items: asks about each item of `$<items>`
 * (whitespace-separated, or with `lines` one a line, so that an item may hold spaces, globbing
 * off during the rounds; `split` sets the variables the rest uses from `$item`) in rounds, 10 s
 * apart, asking again only those whose `ask` (lines that set `$result`) did not give `ok`;
 * `passed` runs for each that did. At most `$<rounds>` rounds and `$<seconds>`, both from the
 * Job's env (the tests ask twice; unset, the script stops with a message), so that every item
 * still failing is reported well inside the Job's deadline: a `report` line each, with its last
 * `$result`, then `summary` (`$failed` is their count), on stderr, and exit 1.
 */
export function eachUntilOk(o: {
  readonly items: string;
  readonly split: string;
  readonly ask: string;
  readonly passed: string;
  readonly report: string;
  readonly summary: string;
  readonly rounds: string;
  readonly seconds: string;
  readonly lines?: boolean;
}): string {
  // One item a line: the list is split at newlines only, and the rest of the loop runs with the usual IFS.
  const [start, each, separator, end] = o.lines
    ? ['set -f\n', "IFS='\n'\n  for item in $pending; do\n    unset IFS", '\n', '\nunset IFS\nset +f']
    : ['', 'for item in $pending; do', ' ', ''];
  return String.raw`${start}deadline=$(( $(date +%s) + ${'$'}{${o.seconds}:?unset (the Job sets it)} ))
pending=$${o.items}
round=1
while :; do
  missing=
  failed=0
  report=
  ${each}
    ${o.split}
    ${o.ask}
    if [ "$result" = ok ]; then
      ${o.passed}
    else
      missing="${'$'}{missing}${separator}$item"
      failed=$((failed + 1))
      report="${'$'}{report}${o.report}
"
    fi
  done
  pending=$missing
  if [ -z "$pending" ]; then break; fi
  if [ "$round" -ge "${'$'}{${o.rounds}:?unset (the Job sets it)}" ] || [ "$(date +%s)" -ge "$deadline" ]; then
    printf '%s' "$report" >&2
    echo "${o.summary}" >&2
    exit 1
  fi
  round=$((round + 1))
  sleep ${ROUND_PAUSE_SECONDS}
done${end}`;
}

/** Unprivileged user the checkpoint runs as (nobody). */
const NOBODY = 65534;

export class Checkpoint extends Construct {
  readonly jobName: string;
  /** What the checkpoint proves (also the Job's `homelab.dev/checkpoint` annotation). */
  readonly description: string;
  /** The service whose namespace (Secrets, ServiceAccount, ConfigMaps) the probe runs in. */
  readonly service: HomelabService;
  private readonly props: CheckpointProps;
  private readonly account?: string;

  constructor(scope: HomelabService, id: string, props: CheckpointProps) {
    super(scope, id);
    this.service = HomelabService.of(this);
    this.props = props;
    this.description = props.description;
    this.jobName = checkpointJobName(this.service);
    if (props.readsCluster || props.readsNamespaces) {
      this.account = this.reader(props);
      // Every checkpoint pod of the namespace: the verification's replays of this one carry
      // the verification's name, but the same component.
      this.service._allowEgress({
        name: 'checkpoint-api-server',
        podSelector: CHECKPOINT_PODS,
        to: { kind: 'api-server' },
        reason: `the checkpoint of ${this.service.serviceName} reads the cluster`,
      });
    }
    probeJob(this, this.jobName, props, { owner: this.service, account: this.account });
    this.service._registerCheckpoint(this);
  }

  /**
   * The same probe as another Job `jobName` in the service's namespace, created in `scope`
   * (the end-to-end verification runs every checkpoint again). Reuses the checkpoint's
   * ServiceAccount, which the service's own Application keeps.
   */
  replay(scope: Construct, jobName: string, options: { readonly hookWave?: number } = {}): void {
    probeJob(new Construct(scope, jobName), jobName, this.props, {
      owner: HomelabService.of(scope),
      namespace: this.service.namespaceName,
      account: this.account,
      hookWave: options.hookWave,
      keep: true,
    });
  }

  /** A ServiceAccount bound to exactly the rules asked for (cluster-wide and per namespace); returns its name. */
  private reader(props: CheckpointProps): string {
    const service = this.service;
    const metadata = { name: this.jobName, labels: service.labelsFor(CHECKPOINT_COMPONENT) };
    const subjects = [{ kind: 'ServiceAccount', name: this.jobName, namespace: service.namespaceName }];
    new k8s.KubeServiceAccount(this, 'account', { metadata, automountServiceAccountToken: false });
    if (props.readsCluster) grantRole(this, 'cluster', 'ClusterRole', metadata, props.readsCluster, subjects);
    for (const [namespace, rules] of Object.entries(props.readsNamespaces ?? {}).sort(([a], [b]) => byCodeUnits(a, b))) {
      grantRole(this, `namespace-${namespace}`, 'Role', { ...metadata, namespace }, rules, subjects);
    }
    return this.jobName;
  }
}

export interface ProbeJobOptions {
  /** The service the Job belongs to (its labels). */
  readonly owner: HomelabService;
  /** @default the owner's namespace */
  readonly namespace?: string;
  /** ServiceAccount with the API access the script needs. @default none, no token mounted */
  readonly account?: string;
  /** @default the props' hookWave */
  readonly hookWave?: number;
  /** Keep the Job after success (its log is part of a report) until the next sync. @default false */
  readonly keep?: boolean;
}

/** A checkpoint-style PostSync Job (and its scratch volume) running `props.script`. */
export function probeJob(scope: Construct, name: string, props: CheckpointProps, options: ProbeJobOptions): void {
  const service = options.owner;
  const account = options.account;
  const conditionWaits = Boolean(account) && waitsForConditions(props.script);
  const hookWave = options.hookWave ?? props.hookWave;
  const annotations: Record<string, string> = {
    ...POST_SYNC_HOOK,
    ...(props.runsOnSyncFailure ? { 'argocd.argoproj.io/hook': 'PostSync,SyncFail' } : {}),
    // A replay's log is part of the verification report: kept until the next sync.
    ...(options.keep ? { 'argocd.argoproj.io/hook-delete-policy': 'BeforeHookCreation' } : {}),
    ...(hookWave !== undefined ? { 'argocd.argoproj.io/sync-wave': String(hookWave) } : {}),
    'homelab.dev/checkpoint': props.description,
    ...(props.creates !== undefined && { [CREATES_ANNOTATION]: props.creates }),
  };
  const metadata = { name, namespace: options.namespace, labels: service.labelsFor(CHECKPOINT_COMPONENT) };
  const volumes = [...(props.volumes ?? [])];
  const volumeMounts = [...(props.volumeMounts ?? [])];
  if (props.scratchVolume) {
    new k8s.KubePersistentVolumeClaim(scope, 'volume', {
      metadata: {
        ...metadata,
        // Bound (healthy) before the Job of the same hook phase starts; gone after a success.
        annotations: { ...POST_SYNC_HOOK, 'argocd.argoproj.io/sync-wave': String((hookWave ?? 0) - 1) },
      },
      spec: {
        accessModes: ['ReadWriteOnce'],
        storageClassName: props.scratchVolume.storageClass,
        resources: { requests: { storage: k8s.Quantity.fromString(props.scratchVolume.size) } },
      },
    });
    volumes.push({ name: 'scratch', persistentVolumeClaim: { claimName: name } });
    volumeMounts.push({ name: 'scratch', mountPath: props.scratchVolume.mountPath });
  }
  const probeMounts = account ? [...volumeMounts, { name: API_TOKEN_VOLUME.name, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true }] : volumeMounts;
  const companionSecret = props.companion?.secretFiles;
  const podVolumes = [
    ...volumes,
    ...(account ? [API_TOKEN_VOLUME] : []),
    // Readable by the group the pod runs as (fsGroup), no one else.
    ...(companionSecret ? [{ name: COMPANION_SECRET_VOLUME, secret: { secretName: companionSecret.secretName, items: companionSecret.keys.map((key) => ({ key, path: key })), defaultMode: 0o440 } }] : []),
  ];
  new k8s.KubeJob(scope, 'job', {
    metadata: { ...metadata, annotations },
    spec: {
      backoffLimit: 2,
      activeDeadlineSeconds: checkDeadlineSeconds(props),
      template: {
        metadata: { labels: service.jobPodLabelsFor(name, CHECKPOINT_COMPONENT) },
        spec: {
          restartPolicy: 'Never',
          serviceAccountName: account,
          // Mounted into the probe's container only (API_TOKEN_VOLUME).
          automountServiceAccountToken: false,
          securityContext: restrictedPodContext(NOBODY, { fsGroup: true }),
          containers: [
            {
              name: CHECKPOINT_CONTAINER,
              image: props.image,
              command: ['sh', '-ec', [...(account ? [KUBE_GET] : []), ...(conditionWaits ? [KUBE_CONDITION] : []), props.script].join('\n')],
              env: envVars(conditionWaits ? { ...props.env, CONDITION_CHECKS: String(CONDITION_CHECKS) } : props.env, props.secretEnv),
              resources: toResourceRequirements(props.resources ?? PROBE_RESOURCES),
              securityContext: restrictedContainerContext(),
              volumeMounts: probeMounts.length > 0 ? probeMounts : undefined,
            },
            ...(props.companion ? [companionContainer(props.companion, props, volumeMounts)] : []),
          ],
          volumes: podVolumes.length > 0 ? podVolumes : undefined,
        },
      },
    },
  });
}

/** The volume of CompanionContainer.secretFiles. */
const COMPANION_SECRET_VOLUME = 'companion-secret';

/** The companion container: the probe's resources, security context and shared volumes, its own Secret files; no API token. */
function companionContainer(companion: CompanionContainer, props: CheckpointProps, shared: readonly k8s.VolumeMount[]): k8s.Container {
  const volumeMounts = [...shared, ...(companion.secretFiles ? [{ name: COMPANION_SECRET_VOLUME, mountPath: companion.secretFiles.mountPath, readOnly: true }] : [])];
  return {
    name: companion.name,
    image: companion.image,
    command: ['sh', '-ec', companion.script],
    env: envVars(companion.env, companion.secretEnv),
    resources: toResourceRequirements(props.resources ?? PROBE_RESOURCES),
    securityContext: restrictedContainerContext(),
    volumeMounts: volumeMounts.length > 0 ? volumeMounts : undefined,
  };
}

function envVars(env: CheckpointProps['env'], secretEnv: CheckpointProps['secretEnv']): k8s.EnvVar[] {
  return [
    ...Object.entries(env ?? {}).map(([name, value]) => ({ name, value })),
    ...Object.entries(secretEnv ?? {}).map(([name, secret]) => ({ name, valueFrom: { secretKeyRef: { name: secret.name, key: secret.key } } })),
  ];
}

/**
 * A ServiceAccount `name` in `namespace` bound to `rules` there (a Role), for a probe that the
 * end-to-end verification runs in another service's namespace (EndToEndCheck.access),
 * and to `clusterRules` (a ClusterRole `<namespace>-<name>`, as names are cluster-wide; CheckpointProps.readsCluster); returns its name.
 */
export function namespaceAccount(
  scope: Construct,
  name: string,
  namespace: string,
  labels: Record<string, string>,
  rules: readonly k8s.PolicyRule[],
  clusterRules: readonly k8s.PolicyRule[] = [],
  /** @default `<namespace>-<name>`, as cluster-scoped names are cluster-wide */
  clusterRoleName = `${namespace}-${name}`,
): string {
  const metadata = { name, namespace, labels };
  const subjects = [{ kind: 'ServiceAccount', name, namespace }];
  new k8s.KubeServiceAccount(scope, 'account', { metadata, automountServiceAccountToken: false });
  grantRole(scope, 'namespace', 'Role', metadata, rules, subjects);
  if (clusterRules.length > 0) grantRole(scope, 'cluster', 'ClusterRole', { name: clusterRoleName, labels }, clusterRules, subjects);
  return name;
}

/** A Role or ClusterRole `metadata.name` with `rules` (its construct `<id>-role`) and its binding to `subjects` (`<id>-binding`), with the same metadata. */
export function grantRole(
  scope: Construct,
  id: string,
  kind: 'Role' | 'ClusterRole',
  metadata: k8s.ObjectMeta & { readonly name: string },
  rules: readonly k8s.PolicyRule[],
  subjects: readonly k8s.Subject[],
): void {
  const roleRef = { apiGroup: 'rbac.authorization.k8s.io', kind, name: metadata.name };
  if (kind === 'Role') {
    new k8s.KubeRole(scope, `${id}-role`, { metadata, rules: [...rules] });
    new k8s.KubeRoleBinding(scope, `${id}-binding`, { metadata, roleRef, subjects: [...subjects] });
  } else {
    new k8s.KubeClusterRole(scope, `${id}-role`, { metadata, rules: [...rules] });
    new k8s.KubeClusterRoleBinding(scope, `${id}-binding`, { metadata, roleRef, subjects: [...subjects] });
  }
}
