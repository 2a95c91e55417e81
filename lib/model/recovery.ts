/**
 * Disaster recovery as a declaration of the service model: a service whose data Git cannot
 * rebuild states where its backups go, how often, and the commands that restore them. The
 * generated document (docs/platform.md, "Disaster recovery") lists them per environment in the
 * order a restore must follow: secrets first (everything else reads them), then databases, then
 * volumes.
 */

/** The order of a restore: what the later steps need comes first. */
export const RECOVERY_ORDER = ['secrets', 'databases', 'volumes'] as const;

export type RecoveryStage = (typeof RECOVERY_ORDER)[number];

export interface Recovery {
  readonly stage: RecoveryStage;
  /** The data, e.g. "Vault: every secret, policy and role". */
  readonly data: string;
  /** Where the backups go, e.g. `s3://homelab-backups@us-east-1/vault/`. */
  readonly target: string;
  /** How often, e.g. `cron "15 2 * * *"`. */
  readonly schedule: string;
  /** The restore, one shell command or instruction per line, in order. */
  readonly restore: readonly string[];
}
