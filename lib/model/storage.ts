import type { RestoreCheckJob } from './recovery';
import type { HomelabService } from './service';

/**
 * A service that provides persistent volumes. Consumers take it as a typed prop, which
 * both makes them depend on it and gives them the storage class name.
 */
export interface StorageProvider extends HomelabService {
  /** Name of the default StorageClass. */
  readonly defaultStorageClass: string;
  /**
   * The class of throwaway volumes a check makes and removes again (a scratch restore): deleted
   * with their claims (reclaim policy Delete), one replica, never in a backup job's group.
   */
  readonly scratchStorageClass: string;
  /** The named class, checked to exist. @param name @default the default class */
  storageClass(name?: string): string;
  /** Where and how often the class's volumes are backed up off-site; undefined where they are not. */
  volumeBackups(storageClass: string): VolumeBackups | undefined;
}

/** Off-site backups of a storage class's volumes, for the runbook of a service whose data is on them. */
export interface VolumeBackups {
  /** Where they go, e.g. `s3://homelab-backups/prod/longhorn/`. */
  readonly target: string;
  /** How often: the provider's backup jobs that apply to the class. */
  readonly schedule: string;
  /** The verification's test that the provider's backups restore. */
  readonly restoreCheck: RestoreCheckJob;
  /** How to restore one volume under its old claim, as runbook lines (the claim's namespace and name filled in). */
  restoreClaim(namespace: string, claim: string): readonly string[];
}
