/**
 * Disaster recovery as a declaration of the service model: a service whose data Git cannot
 * rebuild states where its backups go, how often, the commands that restore them and the ones
 * that show the restore worked. The generated runbook (docs/disaster-recovery.md) lists them per
 * environment in the order a restore must follow: secrets first (everything else reads them),
 * then databases, then volumes.
 */

/** The order of a restore: what the later steps need comes first. */
export const RECOVERY_ORDER = ['secrets', 'databases', 'volumes'] as const;

type RecoveryStage = (typeof RECOVERY_ORDER)[number];

export interface Recovery {
  readonly stage: RecoveryStage;
  /** The data, e.g. "Vault: every secret, policy and role". */
  readonly data: string;
  /** Where the backups go, e.g. `s3://homelab-backups@us-east-1/vault/`. */
  readonly target: string;
  /** How often, e.g. `cron "15 2 * * *"`. */
  readonly schedule: string;
  /** The restore, one shell command or instruction per line, in order; it may use what earlier stages restored, never a later one. */
  readonly restore: readonly string[];
  /** What to have at hand before the restore starts (copies kept offline), e.g. Vault's unseal keys. */
  readonly atHand: readonly string[];
  /** How to see that the restore worked: commands and what they must show, in order. */
  readonly check: readonly string[];
  /** The end-to-end verification's restore test of these backups, which the runbook's last step reads. */
  readonly restoreCheck: RestoreCheckJob;
}

/** A Job of the end-to-end verification (charts/verification.ts), in the namespace it runs in. */
export interface RestoreCheckJob {
  readonly namespace: string;
  readonly job: string;
}

/** How Argo CD syncs the environment's Applications (the config's `sync`). */
export interface SyncPolicy {
  readonly mode: 'automated' | 'manual';
  readonly prune: boolean;
  readonly selfHeal: boolean;
}

/**
 * The runbook's lines around a restore that replaces what an Application manages: with automated
 * sync, `pause` keeps Argo CD from re-creating or scaling it back meanwhile and `resume` restores
 * the policy; with manual sync both are empty.
 */
export function pauseArgoCd(app: string, sync: SyncPolicy): { readonly pause: readonly string[]; readonly resume: readonly string[] } {
  if (sync.mode !== 'automated') return { pause: [], resume: [] };
  return {
    pause: ['# Stop Argo CD from re-creating an empty one meanwhile:', `argocd app set ${app} --sync-policy none`],
    resume: [`argocd app set ${app} --sync-policy automated${sync.prune ? ' --auto-prune' : ''}${sync.selfHeal ? ' --self-heal' : ''}`],
  };
}
