/**
 * HashiCorp Vault (security layer): the `vault` chart, standalone (file storage) with one
 * replica or HA with integrated raft storage, its volumes on Longhorn. Only the server and its
 * UI: no agent injector and no CSI provider — External Secrets (charts/external-secrets.ts)
 * delivers secrets as plain Kubernetes Secrets. The listener is plain HTTP inside the cluster
 * (NetworkPolicies limit who reaches it); Prometheus scrapes `/v1/sys/metrics` without a
 * token. Initialising and unsealing is the operator's one-time job (README runbook); the
 * configurator Job (charts/vault-configurator.ts) then keeps the KV engine, the Kubernetes
 * auth method and every consuming service's role and policy as declared.
 */
import { z } from '../lib/model/config/zod';
import type { VaultValues } from '../imports/helm/vault';
import { ConfigIssue, defineService, ownSubdomain } from '../lib/model/catalog';
import { Checkpoint } from '../lib/model/checkpoint';
import { bool, intBetween, k8sName, resourcesSchema, subdomain, volumeSize } from '../lib/model/config/primitives';
import { schedulableNodes } from '../lib/model/inventory';
import { helmRelease } from './helm-release';
import { Layer } from '../lib/model/layers';
import { SERVICE_LABEL } from '../lib/model/monitoring';
import { Platform } from '../lib/model/platform';
import { restrictedContainerContext, restrictedPodContext } from '../lib/model/pod-security';
import type { BackupTarget } from '../lib/model/backup';
import { pauseArgoCd, SyncPolicy } from '../lib/model/recovery';
import { S3_CREDENTIAL_KEYS, SecretBackend, SecretNeed } from '../lib/model/secrets';
import { HomelabService } from '../lib/model/service';
import { OidcLoginService, SingleSignOnProvider } from '../lib/model/single-sign-on';
import type { StorageProvider } from '../lib/model/storage';
import { IMAGES } from './versions';
import { longhornEntry, longhornStorageClassIssues } from './longhorn';
import { MANAGED_VAULT_PREFIX, VAULT_GID, VAULT_KV_MOUNT, VAULT_UID, VaultAccess, vaultAccess, VaultConfigurator, vaultPath } from './vault-configurator';
import { OIDC_AUTH_MOUNT, VAULT_OIDC_LOGIN_CONTAINER, VAULT_OIDC_LOGIN_JOB, VaultOidcLogin, vaultOidcLoginAccess } from './vault-oidc-login';
import { BACKUP_CREDENTIALS_SECRET, BACKUP_PREFIX, RESTORE_CHECK_JOB, RESTORE_CHECK_SECONDS, RESTORE_CHECK_SCRIPT, SNAPSHOT_DEADLINE_SECONDS, SNAPSHOT_JOB, VaultBackupSettings, vaultBackupSettings, VaultSnapshots } from './vault-snapshots';

/** The Vault server container (per replica). */
export const DEFAULT_VAULT_RESOURCES = { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } };

/** Vault's pod counts: standalone, or a raft quorum. */
const VAULT_REPLICAS = [1, 3, 5] as const;

/** `services.vault`. */
export const vaultSettings = z
  .strictObject({
    enabled: bool.default(false),
    /** 1: standalone (file storage); 3 or 5: HA with integrated raft storage, one pod per node. */
    replicas: intBetween(1, 5)
      .refine((n) => (VAULT_REPLICAS as readonly number[]).includes(n), { error: 'expected 1 (standalone) or an odd number for a raft quorum (3 or 5)' })
      .default(1),
    /** Volume of each Vault pod (raft or file storage). */
    storageSize: volumeSize.default('10Gi'),
    /** @default Longhorn's default storage class */
    storageClass: k8sName.optional(),
    resources: resourcesSchema.default(DEFAULT_VAULT_RESOURCES),
    /** The UI at `<subdomain>.<domain>` (an admin exposure). */
    subdomain: subdomain.default('vault'),
    /** Scheduled raft snapshots to an S3 backup target (HA only). @default none */
    backup: vaultBackupSettings.optional(),
  })
  .prefault({});

export type VaultSettings = z.output<typeof vaultSettings>;


export const VAULT_NAMESPACE = 'vault';
/** API and UI port of every Vault pod and Service. */
export const VAULT_PORT = 8200;
/** Headless Service of the StatefulSet (the chart's `<release>-internal`): one DNS name per pod. */
const HEADLESS_SERVICE = 'vault-internal';
/** README section the checkpoint and the configurator point the operator to. */
export const VAULT_RUNBOOK = 'README "Vault: one-time setup"';

/** Labels the chart puts on the server pods (release name = service name). */
export const VAULT_SERVER_POD_LABELS = {
  'app.kubernetes.io/name': 'vault',
  'app.kubernetes.io/instance': 'vault',
  component: 'server',
} as const;

/** What a restored Vault is sealed with: the runbook's preamble asks for them first. */
const ORIGINAL_UNSEAL_KEYS = "Vault's original unseal keys (the `vault operator init` output of its first install): the restored Vault is sealed with them";
/** `vault operator unseal` takes one key share per run. */
const UNSEAL_THRESHOLD_NOTE =
  "# each `vault operator unseal` takes one key: run it on each pod as many times as the threshold (3 of 5 with the README's init), until `vault status` says Sealed false";
/**
 * The configurator's token (a Secret made by hand, README "Vault: one-time setup") went with the
 * lost cluster, or survived holding a token the restored data makes stale, and the restored
 * Vault's root token was revoked: a root token from the original
 * keys (`vault operator generate-root`, one key per run up to the threshold), then the
 * configurator's token exactly as at the first install, then the root token revoked again.
 */
function configuratorTokenSteps(replicas: number): string[] {
  return [
    "# The configurator's token Secret went with the old cluster: a root token from the ORIGINAL keys, then its token as at the first install",
    `kubectl -n vault port-forward svc/${replicas > 1 ? 'vault-active' : 'vault'} 8200 &`,
    'export VAULT_ADDR=http://127.0.0.1:8200',
    'vault operator generate-root -init   # prints the Nonce and the OTP',
    'vault operator generate-root -nonce=<nonce>   # once per ORIGINAL key, up to the threshold: the last prints the Encoded Token',
    'export VAULT_TOKEN=$(vault operator generate-root -decode=<encoded token> -otp=<otp>)',
    "kubectl -n vault get configmap vault-configurator -o jsonpath='{.data.configurator-policy\\.hcl}' | vault policy write vault-configurator -",
    '# The restored data still holds the old configurator token (periodic, up to 720 h): revoke it, and replace the Secret if it survived',
    'vault list -format=json auth/token/accessors   # then vault token lookup -accessor <each>: revoke the old one with the vault-configurator policy, vault token revoke -accessor <it>',
    'kubectl -n vault delete secret vault-configurator --ignore-not-found',
    'vault token create -policy=vault-configurator -orphan -period=720h -field=token | kubectl -n vault create secret generic vault-configurator --from-file=token=/dev/stdin',
    'vault token revoke -self; unset VAULT_TOKEN',
    'argocd app sync vault   # the configurator runs with its new token',
  ];
}

/** The vault image's user and group (the chart's defaults). */

export type VaultProps = Omit<VaultSettings, 'enabled'> & {
  /** Provides the volume of every Vault pod. */
  readonly storage: StorageProvider;
};

/** "HashiCorp Vault" on grafana.com: revision 2. */
const DASHBOARD = { name: 'vault', gnetId: 12904, revision: 2 } as const;

/** The Secret of Vault's OIDC client secret, and the client id. */
const OIDC_CLIENT_SECRET = 'vault-oidc-client';
const OIDC_CLIENT_ID = 'vault';
/** The CLI's listener for `vault login -method=oidc` (Vault docs, "JWT/OIDC auth method": port 8250, path /oidc/callback). */
const CLI_REDIRECT_URI = 'http://localhost:8250/oidc/callback';

export class Vault extends HomelabService implements SecretBackend, OidcLoginService {
  readonly replicas: number;
  /** The UI's public host. */
  readonly hostname: string;
  /** Where clients (External Secrets, the configurator) reach the active Vault inside the cluster. */
  readonly address: string;
  private configurator?: VaultConfigurator;
  private readonly snapshots?: VaultSnapshots;
  /** The identity of the Job that configures the OIDC login, for the configurator (logInThrough). */
  private oidcLoginAccess?: VaultAccess;

  constructor(scope: Platform, props: VaultProps) {
    const replicas = props.replicas;
    const ha = replicas > 1;
    super(scope, 'vault', props, {
      // Services of every layer read the secrets it keeps: ADR 23.
      layer: Layer.FOUNDATION,
      namespace: VAULT_NAMESPACE,
      helm: helmRelease('vault', vaultValues(props, replicas)),
      // A sealed pod is not Ready (the chart's readiness probe runs `vault status`), so the
      // Application stays Progressing until the runbook is done.
      awaitsOperator: 'initialise and unseal Vault and give its configurator a token (README "Vault: one-time setup")',
    });
    this.replicas = replicas;
    this.hostname = scope.hostname(props.subdomain);
    // In HA the chart's `vault-active` Service selects the pod that service registration labels active.
    this.address = `http://${ha ? 'vault-active' : 'vault'}.${VAULT_NAMESPACE}.svc:${VAULT_PORT}`;
    this.requestCapacity('vault', replicas, props.resources.requests);
    this.serveClients({ port: VAULT_PORT, podSelector: VAULT_SERVER_POD_LABELS });
    this.expose({
      subdomain: props.subdomain,
      serviceName: 'vault-ui',
      servicePort: VAULT_PORT,
      podPort: VAULT_PORT,
      podSelector: VAULT_SERVER_POD_LABELS,
      admin: true,
      ownOidcLogin: true,
    });
    // Without a backup target the config is refused (vaultEntry's check).
    if (props.backup && scope.backupTarget) this.snapshots = this.addSnapshots(props.backup, scope.backupTarget);
    else if (scope.backupTarget) this.declareVolumeRecovery(props, scope.backupTarget, scope.config.sync);
    this.addMonitoring();
    this.addCheckpoint();
    // The Kubernetes auth method reviews every client's token (TokenReview); in HA, service
    // registration labels the active pod.
    this.callApiServer(VAULT_SERVER_POD_LABELS, "Vault's Kubernetes auth method reviews the clients' tokens, and service registration labels the active pod");
  }

  locationOf(need: SecretNeed): string {
    if (need.template) {
      const inputs = [...new Set(need.template.inputs.map((input) => `${VAULT_KV_MOUNT}/${vaultPath(input.from)}`))];
      return `Vault, rendered from ${inputs.join(', ')}`;
    }
    return `Vault ${VAULT_KV_MOUNT}/${vaultPath(need)}`;
  }

  /**
   * Called once by the secret-delivery pass with every service that reads secrets from Vault:
   * emits the configurator Job and its generated ConfigMap (a role and a policy each).
   */
  grantAccess(consumers: readonly HomelabService[], probe?: SecretNeed): void {
    if (this.configurator) throw new Error('vault: configured twice');
    this.configurator = new VaultConfigurator(this, 'configurator', {
      address: this.address,
      access: [...consumers.map(vaultAccess), ...(this.snapshots ? [this.snapshots.access] : []), ...(this.oidcLoginAccess ? [this.oidcLoginAccess] : [])],
      probe: probe && { path: vaultPath(probe), key: probe.keys[0] },
      generated: consumers.flatMap((consumer) => consumer.secretNeeds.filter((need) => need.generated)),
    });
  }

  /**
   * Users log in to the UI and the CLI through the provider (the `oidc` auth method), the root
   * token and the operator's tokens stay. Vault writes the OIDC configuration only once the
   * issuer answers by its public name, which needs the provider, the router, the tunnel and DNS:
   * the Job that writes it is Vault's final step, run by the final Application (the
   * verification), the role it logs in as kept by the configurator at Vault's wave
   * (charts/vault-oidc-login.ts). No Application waits for the provider because of it.
   */
  logInThrough(provider: SingleSignOnProvider): void {
    if (this.configurator) throw new Error('vault: the single sign-on pass runs before the delivery pass configures Vault');
    // The UI's callback names the mount (`/ui/vault/auth/<mount>/oidc/callback`), the CLI listens on localhost (Vault docs, "JWT/OIDC auth method", redirect URIs).
    const redirectUris = [`https://${this.hostname}/ui/vault/auth/${OIDC_AUTH_MOUNT}/oidc/callback`, CLI_REDIRECT_URI];
    // Vault fetches the discovery document when the Job writes the configuration, and exchanges codes at every login.
    const { issuer, clientSecret } = this.registerOidcLogin(provider, {
      secretName: OIDC_CLIENT_SECRET,
      clientId: OIDC_CLIENT_ID,
      displayName: 'Vault',
      redirectUris,
      pods: VAULT_SERVER_POD_LABELS,
    });
    const access = vaultOidcLoginAccess(this.namespaceName, issuer);
    this.oidcLoginAccess = access;
    this.addFinalStep({
      job: VAULT_OIDC_LOGIN_JOB,
      description: `Vault logs users in through ${issuer.issuerUrl}`,
      container: VAULT_OIDC_LOGIN_CONTAINER,
      emit: (scope, hookWave) =>
        new VaultOidcLogin(scope, 'vault-oidc-login', { address: this.address, namespace: this.namespaceName, issuer, clientId: OIDC_CLIENT_ID, clientSecret, redirectUris, access, hookWave }),
    });
  }

  /**
   * Without snapshots, Vault's data (its file or raft storage) is only on its volumes: where the
   * storage provider backs them up, the runbook restores them first, as the secrets step, since
   * every later step reads Vault.
   */
  private declareVolumeRecovery(props: VaultProps, target: BackupTarget, sync: SyncPolicy): void {
    const backups = props.storage.volumeBackups(props.storage.storageClass(props.storageClass));
    if (backups === undefined) return;
    const argocd = pauseArgoCd(this.serviceName, sync);
    // The chart's volumeClaimTemplates entry `data` (vault 0.34.1 templates/_helpers.tpl): one claim per pod.
    const claims = this.podNames().map((pod) => `data-${pod}`);
    this.declareRecovery({
      stage: 'secrets',
      data: `Vault: every secret, policy and role (its volumes ${claims.join(', ')}, no snapshots)`,
      target: backups.target,
      schedule: backups.schedule,
      restore: [
        ...argocd.pause,
        `kubectl -n ${VAULT_NAMESPACE} scale statefulset vault --replicas=0`,
        ...claims.flatMap((claim) => backups.restoreClaim(VAULT_NAMESPACE, claim)),
        `kubectl -n ${VAULT_NAMESPACE} scale statefulset vault --replicas=${this.replicas}`,
        ...argocd.resume,
        `argocd app sync ${this.serviceName}`,
        ...this.unsealRestoredSteps(),
      ],
      atHand: [ORIGINAL_UNSEAL_KEYS, target.keysAtHand],
      check: this.restoredVaultChecks(),
      restoreCheck: backups.restoreCheck,
    });
  }

  /** The last steps of either restore: the restored Vault is sealed with its original keys. */
  private unsealRestoredSteps(): string[] {
    return [
      '# Vault is now the backed-up one, sealed with its ORIGINAL keys: unseal every pod with them',
      UNSEAL_THRESHOLD_NOTE,
      ...this.podNames().map((pod) => `kubectl -n ${VAULT_NAMESPACE} exec -ti ${pod} -- vault operator unseal`),
      ...configuratorTokenSteps(this.replicas),
    ];
  }

  private podNames(): string[] {
    return Array.from({ length: this.replicas }, (_, i) => `vault-${i}`);
  }

  /** That a restored Vault is unsealed and External Secrets reads it again. */
  private restoredVaultChecks(): string[] {
    return [
      ...this.podNames().map((pod) => `kubectl -n ${VAULT_NAMESPACE} exec ${pod} -- vault status   # Initialized true, Sealed false`),
      '# External Secrets reads the restored Vault: refresh every ExternalSecret now rather than at its interval',
      'kubectl annotate externalsecrets.external-secrets.io -A --all force-sync="$(date +%s)" --overwrite',
      'kubectl get externalsecrets.external-secrets.io -A   # every one SecretSynced, READY True',
    ];
  }

  /** The snapshot CronJob, its keys (read only when it runs), its way out, and alerts when it is late or failing. */
  private addSnapshots(backup: VaultBackupSettings, target: BackupTarget): VaultSnapshots {
    const location = target.location(BACKUP_PREFIX);
    const credentials = this.needBackupCredentials(BACKUP_CREDENTIALS_SECRET, `keys of the backup target ${target.url} for Vault's raft snapshots`);
    const snapshots = new VaultSnapshots(this, 'snapshots', { settings: backup, location, address: this.address, credentials });
    this.allowEgress({
      name: 'backup-target',
      podSelector: this.jobPodLabelsFor(SNAPSHOT_JOB, 'backup'),
      to: { kind: 'external', destinations: [target.destination] },
      reason: `Vault's raft snapshots go to ${location.s3Url}/`,
    });
    const bucketPath = `${location.s3Url}/`;
    this.declareRecovery({
      stage: 'secrets',
      data: "Vault: every secret, policy and role (raft snapshot)",
      target: `${location.s3Url}/`,
      schedule: `cron "${backup.schedule}"`,
      restore: [
        "# With the target's keys from their offline copy (Vault, which stores them, is what is restored),",
        '# the newest snapshot (names sort by their UTC time); any S3 client does:',
        `${target.awsS3(`ls ${bucketPath}`)} | sort | tail -n 1`,
        target.awsS3(`cp ${bucketPath}<that vault-<time>.snap> vault.snap`),
        '# Argo CD has re-created Vault, empty: initialise it, unseal it with the NEW keys (the threshold of them), keep the new root token',
        'kubectl -n vault exec -ti vault-0 -- vault operator init',
        'kubectl -n vault exec -ti vault-0 -- vault operator unseal',
        'kubectl -n vault cp vault.snap vault-0:/tmp/vault.snap',
        "kubectl -n vault exec -ti vault-0 -- sh -c 'VAULT_TOKEN=<new root token> vault operator raft snapshot restore -force /tmp/vault.snap'",
        ...this.unsealRestoredSteps(),
      ],
      atHand: [ORIGINAL_UNSEAL_KEYS, target.keysAtHand],
      check: [
        ...this.restoredVaultChecks(),
        "# A snapshot now, with the restored Vault's own role and the keys it delivers: the next ones run on schedule",
        `kubectl -n vault create job --from=cronjob/${SNAPSHOT_JOB} ${SNAPSHOT_JOB}-after-restore`,
        `kubectl -n vault wait job/${SNAPSHOT_JOB}-after-restore --for=condition=Complete --timeout=${SNAPSHOT_DEADLINE_SECONDS / 60}m`,
      ],
      restoreCheck: { namespace: this.namespaceName, job: RESTORE_CHECK_JOB },
    });
    // The restore test of the verification: the newest snapshot is there, young enough, and a sound raft archive.
    this.addEndToEndCheck(RESTORE_CHECK_JOB, {
      description: `the latest Vault snapshot in ${location.s3Url}/ is at most ${backup.maxAgeHours} h old and a raft snapshot archive whose checksums match`,
      image: IMAGES.curl,
      scriptSeconds: RESTORE_CHECK_SECONDS,
      env: { BUCKET_URL: location.bucketUrl, PREFIX: location.prefix, S3_REGION: location.region, MAX_AGE_HOURS: String(backup.maxAgeHours), WORK_DIR: '/work' },
      secretEnv: credentials.keySelectors(S3_CREDENTIAL_KEYS),
      script: RESTORE_CHECK_SCRIPT,
      volumes: [{ name: 'work', emptyDir: {} }],
      volumeMounts: [{ name: 'work', mountPath: '/work' }],
    });
    this.allowEgress({
      name: 'restore-check-backup-target',
      podSelector: this.endToEndCheckPods(RESTORE_CHECK_JOB),
      to: { kind: 'external', destinations: [target.destination] },
      reason: `the verification fetches the latest Vault snapshot from ${location.s3Url}/`,
    });
    // kube-state-metrics' CronJob and Job series (kube-state-metrics 2.x docs/metrics/workload/cronjob-metrics.md, job-metrics.md).
    const cronjob = `namespace="${this.namespaceName}", cronjob="${SNAPSHOT_JOB}"`;
    const maxAge = backup.maxAgeHours * 3600;
    this.addAlerts(
      {
        alert: 'VaultBackupLate',
        expr:
          `(time() - max(kube_cronjob_status_last_successful_time{${cronjob}}) > ${maxAge}) or ` +
          `(time() - max(kube_cronjob_created{${cronjob}}) > ${maxAge} unless on() max(kube_cronjob_status_last_successful_time{${cronjob}}))`,
        for: '10m',
        severity: 'critical',
        summary: `No Vault snapshot reached ${location.s3Url}/ in ${backup.maxAgeHours} hours`,
        description: `Vault's data is not in Git: until a snapshot succeeds, a lost cluster loses its secrets. See the logs of the ${SNAPSHOT_JOB} Jobs in namespace vault.`,
      },
      {
        alert: 'VaultBackupFailed',
        // The last scheduled run has not succeeded by its deadline (the Job's activeDeadlineSeconds):
        // a failed pod that a retry recovered, or a failed Job kept in the history, is not an alert.
        expr: `max(kube_cronjob_status_last_schedule_time{${cronjob}}) - max(kube_cronjob_status_last_successful_time{${cronjob}}) > ${SNAPSHOT_DEADLINE_SECONDS}`,
        for: '5m',
        severity: 'warning',
        summary: 'The last Vault snapshot run failed',
        description: `kubectl -n vault logs job/<the failed ${SNAPSHOT_JOB} Job> --all-containers: the login (role ${MANAGED_VAULT_PREFIX}${SNAPSHOT_JOB}), the snapshot or the upload.`,
      },
    );
    return snapshots;
  }

  private addMonitoring(): void {
    // The pods, not a Service: every replica reports its own seal state, standbys included
    // (unauthenticated metrics are served locally, also while sealed).
    this.exposeMetrics({
      name: 'server',
      kind: 'pod',
      selector: VAULT_SERVER_POD_LABELS,
      port: 'http',
      path: '/v1/sys/metrics',
      params: { format: ['prometheus'] },
    });
    this.addAlerts({
      alert: 'VaultSealed',
      expr: `vault_core_unsealed{${SERVICE_LABEL}="${this.serviceName}"} == 0`,
      for: '1m',
      severity: 'critical',
      summary: 'Vault on {{ $labels.pod }} is sealed: no secret is delivered or renewed from it until it is unsealed',
      description: `Unseal it with the unseal keys (${VAULT_RUNBOOK}), or check the auto-unseal key provider.`,
    });
    this.addDashboard(DASHBOARD);
  }

  /**
   * Every pod answers `/v1/sys/health` as initialised and unsealed (200 active, 429 standby,
   * 473 performance standby). 501 (not initialised) and 503 (sealed) need the operator: the
   * checkpoint says so and fails at once.
   */
  private addCheckpoint(): void {
    const pods = this.podNames();
    new Checkpoint(this, 'checkpoint', {
      description: 'every Vault pod is initialised and unsealed',
      image: IMAGES.curl,
      env: { VAULT_PODS: pods.join(' '), VAULT_HOSTS: `${HEADLESS_SERVICE}.${VAULT_NAMESPACE}.svc`, RUNBOOK: VAULT_RUNBOOK },
      // One wait for all pods (they start together): a pod answering on its last ask, after the
      // pause, is followed by one ask of each other pod; after the pod's start.
      scriptSeconds: HEALTH_WAIT_SECONDS + HEALTH_PAUSE_SECONDS + pods.length * HEALTH_CALL_MAX_SECONDS,
      script: String.raw`deadline=$(( $(date +%s) + ${HEALTH_WAIT_SECONDS} ))
for pod in $VAULT_PODS; do
  url="http://$pod.$VAULT_HOSTS:${VAULT_PORT}/v1/sys/health"
  while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time ${HEALTH_CALL_MAX_SECONDS} "$url" || true)
    case "$code" in
      200) echo "$pod: initialised, unsealed, active"; break ;;
      429|473) echo "$pod: initialised, unsealed, standby"; break ;;
      501) echo "$pod: Vault is not initialised. Initialise it once (vault operator init), then unseal every pod: see $RUNBOOK" >&2; exit 1 ;;
      503) echo "$pod: Vault is sealed. Unseal it with the unseal keys (vault operator unseal): see $RUNBOOK" >&2; exit 1 ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then echo "$pod: no health answer from $url within 5 minutes (last HTTP status: $code)" >&2; exit 1; fi
    echo "waiting for $pod to answer (HTTP $code)"
    sleep ${HEALTH_PAUSE_SECONDS}
  done
done
echo "Vault is initialised and unsealed"`,
    });
  }
}

/** The checkpoint asks every pod's health for five minutes in all (the pods start together), 10 s apart, each call at most 5 s. */
const HEALTH_WAIT_SECONDS = 300;
const HEALTH_PAUSE_SECONDS = 10;
const HEALTH_CALL_MAX_SECONDS = 5;

function vaultValues(props: VaultProps, replicas: number): VaultValues {
  const ha = replicas > 1;
  return {
    // Secrets reach pods through External Secrets, not the agent injector or the CSI driver.
    injector: { enabled: false },
    csi: { enabled: false },
    ui: { enabled: true, activeVaultPodOnly: ha },
    server: {
      resources: props.resources,
      dataStorage: { enabled: true, size: props.storageSize, storageClass: props.storage.storageClass(props.storageClass) },
      // The chart's default affinity stays: one pod per node (the config check caps replicas at
      // the schedulable nodes, so none stays Pending).
      standalone: ha ? { enabled: false } : { enabled: true, config: vaultConfig(FILE_STORAGE) },
      ha: ha
        ? { enabled: true, replicas, raft: { enabled: true, setNodeId: true, config: vaultConfig(raftStorage(replicas)) } }
        : { enabled: false },
      // Restricted Pod Security: the chart sets only the user and allowPrivilegeEscalation.
      statefulSet: {
        securityContext: {
          pod: restrictedPodContext(VAULT_UID, { group: VAULT_GID, fsGroup: true }),
          container: restrictedContainerContext(),
        },
      },
      // The start script renders the config into /tmp; the root filesystem stays read-only.
      volumes: [{ name: 'tmp', emptyDir: {} }],
      volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
    },
  };
}

const FILE_STORAGE = `storage "file" {
  path = "/vault/data"
}`;

/** Raft storage; every pod retries joining the others, so any of them can be initialised first. */
function raftStorage(replicas: number): string {
  const joins = Array.from(
    { length: replicas },
    (_, i) => `  retry_join {\n    leader_api_addr = "http://vault-${i}.${HEADLESS_SERVICE}:${VAULT_PORT}"\n  }`,
  );
  return `storage "raft" {\n  path = "/vault/data"\n${joins.join('\n')}\n}\n\nservice_registration "kubernetes" {}`;
}

/**
 * The server configuration. No mlock: the container drops every capability (IPC_LOCK
 * included), and HashiCorp recommends disable_mlock with integrated storage.
 */
function vaultConfig(storage: string): string {
  return `ui = true
disable_mlock = true

listener "tcp" {
  address = "[::]:${VAULT_PORT}"
  cluster_address = "[::]:8201"
  tls_disable = 1
  telemetry {
    unauthenticated_metrics_access = true
  }
}

${storage}

telemetry {
  prometheus_retention_time = "30s"
  disable_hostname = true
}
`;
}

/**
 * More Vault pods than schedulable nodes: the counts that fit (raft's only, with snapshots), so
 * that the first answer is one the next check does not refuse.
 */
function tooManyReplicas(settings: VaultSettings, schedulable: readonly string[]): ConfigIssue {
  const fitting = VAULT_REPLICAS.filter((n) => n <= schedulable.length && (settings.backup === undefined || n > 1));
  const counts = fitting.length > 0 ? fitting.join(' or ') : settings.backup ? 'at least 3 schedulable nodes (raft snapshots need 3 or 5 replicas), or no backup' : 'a schedulable node';
  return {
    path: ['replicas'],
    message:
      `expected ${counts} (at most one Vault pod per schedulable node: ${schedulable.join(', ') || 'none'}; ` +
      `the chart's required pod anti-affinity leaves the others Pending), received ${settings.replicas}`,
  };
}

export const vaultEntry = defineService({
  name: 'vault',
  settings: { key: 'vault', schema: vaultSettings },
  names: [VAULT_NAMESPACE],
  subdomains: ownSubdomain,
  requires: () => [{ entry: longhornEntry, path: ['enabled'], reason: 'Vault keeps its storage on Longhorn' }],
  check: (settings, env) => {
    const schedulable = schedulableNodes(env.nodes);
    return [
      ...(settings.backup && env.backup === undefined
        ? [{ path: ['backup'], message: "expected a backup target: Vault's snapshots go to backup.target, the environment's backup target" }]
        : []),
      ...(settings.backup && settings.replicas === 1
        ? [
            {
              path: ['backup'],
              message:
                'expected replicas 3 or 5 for raft snapshots: a standalone Vault keeps its data in a file on its Longhorn volume, which ' +
                "Longhorn's recurring backups copy (services.longhorn.recurringJobs)",
            },
          ]
        : []),
      ...longhornStorageClassIssues(env, ['storageClass'], settings.storageClass),
      ...(settings.replicas > schedulable.length ? [tooManyReplicas(settings, schedulable)] : []),
    ];
  },
  upstreamTargets: {
    'vault-server': {
      selector: VAULT_SERVER_POD_LABELS,
      port: 'http',
      source: 'vault-helm v0.34.1 templates/server-statefulset.yaml (port named after vault.scheme, http with tlsDisable)',
    },
  },
  build: (platform, settings, context) => new Vault(platform, { ...settings, storage: context.required(longhornEntry) }),
});
