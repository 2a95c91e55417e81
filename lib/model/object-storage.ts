/**
 * Object storage as a capability of the service model: a service declares the buckets it keeps
 * objects in (HomelabService.needBuckets) the way it declares Secrets, and gets an S3 endpoint
 * and an identity of its own whose keys Vault generates. The object-storage pass
 * (lib/passes/object-storage.ts) hands the store every declaration: it creates the buckets and
 * gives each identity access to its own buckets and no other (docs/adr/0027).
 */
import type { CheckpointProps } from './checkpoint';
import type { SecretNeed, SecretRef } from './secrets';
import type { HomelabService } from './service';

/** One bucket as a consumer declares it. */
export interface BucketSettings {
  /** S3 bucket name, unique in the store. */
  readonly name: string;
  /** Objects older than this many days are deleted by the store. @default kept until deleted */
  readonly expireAfterDays?: number;
  /** Keep every version of an object (deleted and overwritten ones too). @default false */
  readonly versioning?: boolean;
  /** Where the operator chose the name in homelab.yaml (`services.loki.storage...`), for errors. @default the name is the service's own */
  readonly configPath?: string;
}

/** A declared bucket and its owner. */
export interface BucketNeed extends BucketSettings {
  /** The consuming service. */
  readonly service: string;
  /** Its namespace, where the credentials Secret is delivered. */
  readonly namespace: string;
  /** What the bucket is for. */
  readonly purpose: string;
  /** The consumer's identity: S3_CREDENTIAL_KEYS, generated in the secret backend. */
  readonly credentials: SecretNeed;
}

/** What a consumer needs to use one of its buckets. */
export interface BucketRef {
  readonly bucket: string;
  /** The store's S3 endpoint inside the cluster, with scheme and port. */
  readonly endpoint: string;
  /** Region S3 clients sign requests for. */
  readonly region: string;
  /** The consumer's identity (S3_CREDENTIAL_KEYS), valid on its own buckets only. */
  readonly credentials: SecretRef;
}

/** A service that stores objects over the S3 API (SeaweedFS). */
export interface ObjectStore extends HomelabService {
  readonly endpoint: string;
  readonly region: string;
  /**
   * The check the verification runs in a consumer's namespace with the consumer's credentials:
   * put, get and delete in each of its buckets, refused in a bucket of another identity.
   */
  accessCheck(buckets: readonly BucketNeed[], credentials: SecretRef): Omit<CheckpointProps, 'hookWave'>;
  /** Bucket names the store keeps for itself (its checkpoint's): no consumer may declare them. */
  readonly reservedBuckets: readonly string[];
  /** Called once by the object-storage pass with every declared bucket (none: only the store's own). */
  provision(buckets: readonly BucketNeed[]): void;
}

export function isObjectStore(service: HomelabService): service is ObjectStore {
  return typeof (service as Partial<ObjectStore>).provision === 'function';
}
