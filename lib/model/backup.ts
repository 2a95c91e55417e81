/**
 * The environment's one off-site backup target (`backup` in homelab.yaml, docs/adr/0035): an
 * S3-compatible bucket (AWS S3, Backblaze B2, another site's object store) that every service
 * writing backups uses, each under a prefix of its own. Its keys are stored once, in Vault, and
 * delivered into each namespace that writes backups; here is the one parser of the target.
 */
import { z } from './config/zod';
import { expected, s3Endpoint } from './config/primitives';
import { ExternalDestination, s3Destination } from './network';
import { S3_CREDENTIAL_KEYS, SecretNeed } from './secrets';

/**
 * `s3://<bucket>@<region>/<prefix>`, the way Longhorn names S3 backup targets: a bucket name as
 * S3 allows it (3 to 63 lowercase letters, digits, dots and hyphens), a region, and an optional
 * key prefix of path segments.
 */
const TARGET = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])@([a-z0-9-]+)\/((?:[A-Za-z0-9._-]+\/)*(?:[A-Za-z0-9._-]+)?)$/;

const TARGET_EXAMPLE = 'an S3 backup target "s3://<bucket>@<region>/<prefix>/", such as "s3://homelab-backups@us-east-1/prod/"';

/** `backup` (top level). */
export const backupSettings = z.strictObject({
  /** Bucket, region and key prefix under which every consumer gets its own prefix. */
  target: z.string(expected(TARGET_EXAMPLE)).regex(TARGET, expected(TARGET_EXAMPLE)),
  /** An S3-compatible server (Backblaze B2, another site's MinIO or Garage). @default AWS S3 of the region */
  endpoint: s3Endpoint.optional(),
});

export type BackupSettings = z.output<typeof backupSettings>;

/**
 * The target's keys, stored once in the secret backend (Vault `homelab/backup/credentials`) under
 * a name no service can take (RESERVED_NAMES) and delivered nowhere as they are: each consumer's
 * Secret is rendered from them (HomelabService.needBackupCredentials), and its Vault role may read
 * exactly this path besides its own subtree (SecretNeed.template).
 */
export const BACKUP_CREDENTIALS: SecretNeed = {
  service: 'backup',
  namespace: 'backup',
  name: 'credentials',
  keys: S3_CREDENTIAL_KEYS,
  purpose: "keys of the environment's backup target",
  neededToStart: false,
};

/** One consumer's place under the target. */
export interface BackupLocation {
  readonly bucket: string;
  readonly region: string;
  /** Key prefix without slashes at either end, e.g. `prod/vault`. */
  readonly prefix: string;
  /** `s3://<bucket>/<prefix>` (Barman Cloud's destinationPath, the AWS CLI). */
  readonly s3Url: string;
  /** `s3://<bucket>@<region>/<prefix>/` (Longhorn's backup target). */
  readonly longhornUrl: string;
  /** HTTPS URL of the bucket: path style at a configured endpoint, virtual-hosted on AWS. */
  readonly bucketUrl: string;
}

/** The environment's backup target, parsed once. */
export class BackupTarget {
  readonly bucket: string;
  readonly region: string;
  /** The target's own prefix, without slashes at either end (may be empty). */
  readonly prefix: string;
  /** The S3-compatible server without a trailing slash; undefined: AWS S3. */
  readonly endpoint?: string;

  constructor(readonly settings: BackupSettings) {
    const match = TARGET.exec(settings.target);
    if (!match) throw new Error(`backup: not an S3 backup target: ${settings.target}`);
    this.bucket = match[1];
    this.region = match[2];
    this.prefix = match[3].replace(/\/$/, '');
    this.endpoint = settings.endpoint?.replace(/\/$/, '');
  }

  /** The target as configured. */
  get url(): string {
    return this.settings.target;
  }

  /** The runbook's reminder of the target's keys: in the cluster they come from Vault, which a restore starts without. */
  get keysAtHand(): string {
    return `the keys of the backup target \`${this.url}\`${this.endpoint ? ` (${this.endpoint})` : ''}, from their offline copy: in the cluster Vault delivers them, and Vault is what the restore begins with`;
  }

  /** Where the backups go on the network: the endpoint's host and port, or AWS on 443. */
  get destination(): ExternalDestination {
    return s3Destination(this.endpoint);
  }

  /** An AWS CLI `aws s3 <command>` line for the runbook, at the target's endpoint if it has one. */
  awsS3(command: string): string {
    return `aws s3 ${command}${this.endpoint ? ` --endpoint-url ${this.endpoint}` : ''}`;
  }

  /** A consumer's own place: `<target prefix>/<path>`. */
  location(...path: readonly string[]): BackupLocation {
    const prefix = [this.prefix, ...path].filter((part) => part !== '').join('/');
    return {
      bucket: this.bucket,
      region: this.region,
      prefix,
      s3Url: `s3://${this.bucket}/${prefix}`,
      longhornUrl: `s3://${this.bucket}@${this.region}/${prefix}/`,
      bucketUrl: this.endpoint ? `${this.endpoint}/${this.bucket}` : `https://${this.bucket}.s3.${this.region}.amazonaws.com`,
    };
  }
}
