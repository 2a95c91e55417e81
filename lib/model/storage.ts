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
}
