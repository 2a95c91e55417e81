/**
 * The logging half of the observability layer in homelab.yaml: `services.loki` (one
 * monolithic Loki, chunks on a Longhorn volume or in S3) and `services.alloy` (Grafana
 * Alloy on every node, shipping every pod's logs to Loki). Checks that need the rest of the
 * environment (Longhorn, Loki for Alloy) are in `loggingServiceIssues`, for the
 * environment-level refinement in ../schema.ts.
 */
import { z } from 'zod';
import { durationSeconds } from '../../lib/util/quantity';
import { bool, resourcesSchema, volumeSize } from '../../lib/model/config/primitives';

const expected = (what: string) => ({ error: `expected ${what}` });

/** Loki (monolithic) per replica: GOMEMLIMIT is derived from the memory limit by the chart. */
export const DEFAULT_LOKI_RESOURCES = { requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '2', memory: '2Gi' } };
/** The Alloy container on each node (its config reloader sidecar is sized by the construct). */
export const DEFAULT_ALLOY_RESOURCES = { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '500m', memory: '512Mi' } };


/**
 * How long Loki keeps logs, as Loki parses it (Prometheus durations: `7d`, `4w`, `720h`).
 * The compactor deletes whole daily index tables, and Loki's minimum retention is 24h
 * (docs/sources/operations/storage/retention.md), so only whole days are accepted.
 */
const RETENTION = /^[1-9]\d*[hdw]$/;
const retentionPeriod = z
  .string(expected('a retention period such as "7d", "4w" or "720h"'))
  .regex(RETENTION, expected('a retention period such as "7d", "4w" or "720h"'))
  .refine(
    // Malformed periods are reported by the regex alone.
    (period) => !RETENTION.test(period) || durationSeconds(period) % 86400 === 0,
    expected('whole days (Loki deletes logs by daily index table), such as "7d" or "72h"'),
  );

/** An S3 endpoint URL with scheme, as Loki's S3 client takes it (`https://s3.example.net`, `http://minio.minio.svc:9000`). */
const s3Endpoint = z
  .string(expected('an S3 endpoint URL'))
  .regex(/^https?:\/\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:\d{1,5})?\/?$/, expected('an S3 endpoint URL such as "https://s3.example.net" or "http://minio.minio.svc:9000"'));

const region = z.string(expected('a region name such as "eu-central-1"')).regex(/^[a-z0-9-]+$/, expected('a region name such as "eu-central-1"'));

/** S3 bucket names (3-63 lowercase letters, digits, dots, hyphens). */
const bucketName = z
  .string(expected('an S3 bucket name'))
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, expected('an S3 bucket name (3-63 lowercase letters, digits, "." and "-")'));

/** Its credentials: the Secret `loki-s3-credentials` (charts/loki.ts). */
const s3Schema = z
  .strictObject({
    /** @default AWS, from the region */
    endpoint: s3Endpoint.optional(),
    /** MinIO and most S3-compatible servers accept any region; their default is us-east-1. */
    region: region.default('us-east-1'),
    buckets: z.strictObject({
      /** Log chunks and the TSDB index. */
      chunks: bucketName,
      /** Loki ruler state (rules stored through the API). */
      ruler: bucketName,
    }),
    /** Path-style URLs (`endpoint/bucket`), which MinIO and most self-hosted servers need. */
    forcePathStyle: bool.default(true),
  })
  .refine((s3) => s3.buckets.chunks !== s3.buckets.ruler, {
    error: 'expected two different buckets for chunks and ruler (Loki keeps ruler state apart from chunks)',
    path: ['buckets', 'ruler'],
  });

const storageSchema = z
  .strictObject({
    /** Chunks, index and WAL on a Longhorn volume (default storage class): the filesystem store. */
    volume: z.strictObject({ size: volumeSize }).optional(),
    /** Chunks and index in S3; the WAL stays on a Longhorn volume when Longhorn is enabled. */
    s3: s3Schema.optional(),
  })
  .refine((storage) => (storage.volume === undefined) !== (storage.s3 === undefined), {
    // Environments deep-merge onto the base, so switching stores needs `volume: null` or `s3: null`.
    error: 'expected exactly one of volume or s3 (set the other to null in an environment that switches)',
  });

export const lokiSchema = z.strictObject({
  enabled: bool.default(false),
  retention: retentionPeriod.default('7d'),
  storage: storageSchema.default({ volume: { size: '20Gi' } }),
  resources: resourcesSchema.default(DEFAULT_LOKI_RESOURCES),
});

export const alloySchema = z.strictObject({
  enabled: bool.default(false),
  /** Per node: Alloy runs on every node of the inventory. */
  resources: resourcesSchema.default(DEFAULT_ALLOY_RESOURCES),
});

export type LokiConfig = z.output<typeof lokiSchema>;
export type LokiS3Config = z.output<typeof s3Schema>;
export type AlloyConfig = z.output<typeof alloySchema>;

/** What the cross-service checks read from an environment. */
export interface LoggingEnvironment {
  readonly longhornEnabled: boolean;
  readonly loki: LokiConfig;
  readonly alloy: AlloyConfig;
}

export interface ConfigIssue {
  /** From the environment's root, e.g. ['services', 'alloy', 'enabled']. */
  readonly path: (string | number)[];
  readonly message: string;
}

/** Problems between the logging services and the rest of an environment; [] if none. */
export function loggingServiceIssues(env: LoggingEnvironment): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (env.loki.enabled && env.loki.storage.volume && !env.longhornEnabled) {
    issues.push({ path: ['services', 'loki', 'storage', 'volume'], message: 'expected services.longhorn.enabled: a volume needs Longhorn (or use storage.s3)' });
  }
  if (env.alloy.enabled && !env.loki.enabled) {
    issues.push({ path: ['services', 'alloy', 'enabled'], message: 'expected services.loki.enabled: Alloy ships the logs to Loki' });
  }
  return issues;
}
