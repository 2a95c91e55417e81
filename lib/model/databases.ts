/**
 * PostgreSQL databases as a capability of the service model: a service declares the database it
 * keeps its data in (HomelabService.needDatabase) with its size and instances, and the database
 * provider (CloudNativePG) emits the database cluster into the consumer's own Application and
 * namespace, where the operator generates the credentials: no password passes through Git or
 * Vault (docs/adr/0028).
 */
import type { CheckpointProps } from './checkpoint';
import type { Resources } from './resources';
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
}

/** A service that runs PostgreSQL clusters for others (the CloudNativePG operator). */
export interface DatabaseProvider extends HomelabService {
  /** Port on the instances the operator calls (the instance manager's status API). */
  readonly instanceManagerPort: number;
  /** Emits the database cluster of `need` in the consumer's tree (its Application and namespace). */
  emitDatabase(consumer: HomelabService, need: DatabaseNeed): DatabaseRef;
  /**
   * The check the verification runs in the consumer's namespace with the generated credentials:
   * the primary answers a query as the owner, and every replica streams from it.
   */
  connectionCheck(need: DatabaseNeed, ref: DatabaseRef): Omit<CheckpointProps, 'hookWave'>;
}
