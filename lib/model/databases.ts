/**
 * PostgreSQL databases as a capability of the service model: a service declares the database it
 * keeps its data in (HomelabService.needDatabase) with its size and instances, and the database
 * provider (CloudNativePG) emits the database cluster into the consumer's own Application and
 * namespace, where the operator generates the credentials: no password passes through Git or
 * Vault (docs/adr/0028).
 */
import type { k8s } from 'cdk8s-plus-34';
import type { CheckpointProps } from './checkpoint';
import type { AlertRule, MetricsEndpoint } from './monitoring';
import type { ExternalDestination } from './network';
import type { Recovery } from './recovery';
import type { Resources } from './resources';
import type { SecretRef } from './secrets';
import type { HomelabService } from './service';

/** A database as its consumer declares it. */
export interface DatabaseSettings {
  /** Database name, also its owner's user name. */
  readonly name: string;
  /** PostgreSQL instances: one primary and `instances - 1` streaming replicas. */
  readonly instances: number;
  /** Volume of each instance. */
  readonly size: string;
  /** The StorageClass of the volumes. */
  readonly storageClass: string;
  /** The StorageClass of the restore check's scratch cluster: its volumes must go with it (StorageProvider.scratchStorageClass). */
  readonly scratchStorageClass: string;
  /** Per instance. */
  readonly resources: Resources;
}

/** A declared database and its owner. */
export interface DatabaseNeed extends DatabaseSettings {
  readonly service: string;
  readonly namespace: string;
}

/** How the consumer connects. */
export interface DatabaseRef {
  /** The database cluster's name (its Services are `<cluster>-rw`, `-ro`, `-r`). */
  readonly cluster: string;
  /** The read-write Service (the primary), in the consumer's namespace. */
  readonly host: string;
  readonly port: number;
  readonly database: string;
  /**
   * Secret the operator generates in the consumer's namespace with the owner's credentials:
   * keys `username`, `password`, `host`, `port`, `dbname`, `uri`.
   */
  readonly credentialsSecret: string;
  /** Labels of the cluster's pods (instances and their jobs). */
  readonly podSelector: Readonly<Record<string, string>>;
  /** PostgreSQL instances. */
  readonly instances: number;
  /** The instances' exporter, scraped where monitoring runs, and the alerts on it (down, lagging, full). */
  readonly metrics: MetricsEndpoint;
  readonly alerts: readonly AlertRule[];
  /** Its continuous backup, where the environment has a backup target. @default none */
  readonly backup?: DatabaseBackup;
}

/** The consumer's Secret with the backup target's keys (HomelabService.needBackupCredentials). */
export interface BackupCredentialsNeed {
  readonly name: string;
  readonly purpose: string;
  /** Non-secret keys beside the target's keys (the region). */
  readonly fixed: Readonly<Record<string, string>>;
}

/**
 * A database archived to the environment's backup target: WAL continuously, base backups on a
 * schedule, and a restore the end-to-end verification proves.
 */
export interface DatabaseBackup {
  /** Where its base backups and WAL go: `s3://<bucket>/<prefix>/`. */
  readonly location: string;
  /** The target on the network. */
  readonly destination: ExternalDestination;
  /** The scratch cluster the restore check recovers (its pods talk to the operator and the API server, and reach the target, like the database's). */
  readonly scratchCluster: string;
  readonly scratchPodSelector: Readonly<Record<string, string>>;
  /** What the sidecar next to each instance requests (the plugin injects it), and the scratch cluster's instance. */
  readonly sidecarRequests: Resources['requests'];
  readonly scratchRequests: Resources['requests'];
  readonly recovery: Recovery;
  readonly alerts: readonly AlertRule[];
  /** The verification's restore test: a scratch cluster from the latest base backup and WAL answers with the canary row. */
  readonly restoreCheck: Omit<CheckpointProps, 'hookWave'>;
  /** What the restore check may do in the consumer's namespace beyond reading (EndToEndCheck.access). */
  readonly restoreAccess: readonly k8s.PolicyRule[];
}

/** The verification's restore check Job of a database archived to the backup target, in its consumer's namespace. */
export function databaseRestoreCheckJob(cluster: string): string {
  return `${cluster}-restore`;
}

/** A service that runs PostgreSQL clusters for others (the CloudNativePG operator). */
export interface DatabaseProvider extends HomelabService {
  /** Port on the instances the operator calls (the instance manager's status API). */
  readonly instanceManagerPort: number;
  /** Labels of every database instance's pod, whichever cluster it belongs to. */
  readonly instancePods: Readonly<Record<string, string>>;
  /**
   * The Secret the consumer delivers for the database's backups, where the provider archives
   * them (the environment has a backup target); undefined otherwise.
   */
  backupCredentials(need: DatabaseNeed): BackupCredentialsNeed | undefined;
  /**
   * Emits the database cluster of `need` in the consumer's tree (its Application and namespace),
   * archived with `backupCredentials` when given (the Secret backupCredentials asked for).
   */
  emitDatabase(consumer: HomelabService, need: DatabaseNeed, backupCredentials?: SecretRef): DatabaseRef;
  /**
   * The check the verification runs in the consumer's namespace with the generated credentials:
   * the primary answers a query as the owner, and every replica streams from it.
   */
  connectionCheck(need: DatabaseNeed, ref: DatabaseRef): Omit<CheckpointProps, 'hookWave'>;
}
