/**
 * Reusable zod validators for the values a homelab config is made of. Each carries the
 * "expected ..." wording that config errors print, so every message reads the same way.
 */
import { z } from './zod';

/** The error of a validator: `expected <what>`, the wording every config error uses. */
export const expected = (what: string) => ({ error: `expected ${what}` });

export function intAtLeast(min: number) {
  const what = `an integer >= ${min}`;
  return z.int(expected(what)).min(min, expected(what));
}

export function intBetween(min: number, max: number) {
  const what = `an integer between ${min} and ${max}`;
  return z.int(expected(what)).min(min, expected(what)).max(max, expected(what));
}

export const bool = z.boolean(expected('true or false'));

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, expected(`one of ${values.map((v) => `"${v}"`).join(', ')}`));
}

/**
 * A mapping with two alternative settings of which exactly one is set (a volume or S3, SQLite or
 * PostgreSQL). Environments deep-merge onto the base, so switching needs the other set to `null`.
 */
export function exactlyOneOf<Shape extends z.ZodRawShape>(shape: Shape, ...keys: [keyof Shape & string, keyof Shape & string, ...(keyof Shape & string)[]]) {
  const names = `${keys.slice(0, -1).join(', ')} or ${keys.at(-1)}`;
  return z.strictObject(shape).refine((value: Record<string, unknown>) => keys.filter((key) => value[key] !== undefined).length === 1, {
    error: `expected exactly one of ${names} (set ${keys.length === 2 ? 'the other' : 'the others'} to null in an environment that switches)`,
  });
}

/** A string matching `pattern`; `what` names it in the error ("expected <what>"). */
export function matching(pattern: RegExp, what: string, maxLength = Infinity) {
  return z
    .string(expected(what))
    .regex(pattern, expected(what))
    .max(maxLength, expected(`${what} of at most ${maxLength} characters`));
}

/** RFC 1123 label: the name of a namespace, Service, Deployment, node ... */
export const k8sName = matching(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a Kubernetes name (lowercase letters, digits and "-", starting and ending alphanumeric)', 63);

/** RFC 1123 DNS name: a fully qualified hostname such as `home.example.net`. */
export const hostname = matching(
  /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/,
  'a lowercase DNS hostname with at least two labels (e.g. "home.example.net")',
);

/** A single DNS label used as a subdomain of the environment's domain. */
export const subdomain = matching(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a single DNS label (e.g. "argocd")', 63);

/** YAML reads `cpu: 2` as a number; a quantity is a string in Kubernetes manifests. */
const numberAsString = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? String(value) : value);

/** CPU quantity: whole or fractional cores, or millicores (`2`, `0.5`, `500m`). */
export const cpuQuantity = z.preprocess(
  numberAsString,
  matching(/^(\d+(\.\d+)?|\d+m)$/, 'a CPU quantity such as "500m" or "2"'),
);

/** Memory/storage quantity with a binary or decimal suffix (`512Mi`, `4Gi`, `1G`). */
export const byteQuantity = matching(
  /^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)$/,
  'a byte quantity with a unit, such as "512Mi" or "4Gi"',
);

/** Container memory in whole binary units (`512Mi`, `4Gi`), the form cdk8s-plus renders exactly. */
export const memoryQuantity = matching(/^[1-9]\d*(Mi|Gi|Ti)$/, 'a memory quantity in Mi, Gi or Ti, such as "512Mi" or "4Gi"');

/** Volume size in whole gibibytes or tebibytes (`10Gi`, `1Ti`). */
export const volumeSize = matching(/^[1-9]\d*(Gi|Ti)$/, 'a volume size in Gi or Ti, such as "10Gi"');

/** Container image with an explicit tag other than `latest` (a digest may follow). */
export const pinnedImage = z
  .string(expected('a container image reference'))
  .regex(/^[a-z0-9]+([._\-/:][a-z0-9]+)*:[\w][\w.-]{0,127}(@sha256:[a-f0-9]{64})?$/i, expected('an image with a pinned tag, e.g. "ghcr.io/org/app:1.2.3"'))
  .refine((image) => !/:latest(@|$)/.test(image), expected('a pinned tag, not "latest"'));

/**
 * The fields of a cron expression as robfig/cron's standard parser reads them, which the
 * Kubernetes CronJob controller, Longhorn's RecurringJobs and CloudNativePG (with a seconds field
 * put first, charts/cloudnative-pg-backups.ts) all use: a list of `*` (or `?`), `n` or `n-m`,
 * each with an optional `/step`, months and weekdays also by name. Descriptors such as `@daily` are left out:
 * CloudNativePG's six-field form has no place for one.
 */
const CRON_FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] },
  { name: 'day of week', min: 0, max: 6, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
] as const;

/** What is wrong with a cron field, or undefined. */
function cronFieldProblem(text: string, field: (typeof CRON_FIELDS)[number]): string | undefined {
  const value = (part: string) => {
    const named = 'names' in field ? field.names.indexOf(part.toLowerCase() as never) : -1;
    if (named >= 0) return named + field.min;
    return /^\d+$/.test(part) ? Number(part) : undefined;
  };
  for (const item of text.split(',')) {
    const [range, step, extra] = item.split('/');
    if (extra !== undefined || (step !== undefined && !(/^\d+$/.test(step) && Number(step) >= 1))) return `"${item}" has no step of 1 or more`;
    // robfig/cron's getRange reads `?` as `*`.
    if (range === '*' || range === '?') continue;
    const [from, to, beyond] = range.split('-').map(value);
    const bounds = `${field.min}-${field.max}`;
    if (beyond !== undefined || from === undefined || (range.includes('-') && to === undefined)) return `"${item}" is not *, a number in ${bounds} or a range of them`;
    if (from < field.min || from > field.max || (to !== undefined && (to < field.min || to > field.max))) return `"${item}" is outside ${bounds}`;
    if (to !== undefined && to < from) return `"${item}" is a range that ends before it starts`;
  }
  return undefined;
}

/** Five-field cron expression (minute hour day-of-month month day-of-week), each field in its range. */
export const cron = z.string(expected('a five-field cron expression such as "0 3 * * *"')).superRefine((text, ctx) => {
  const fields = text.trim().split(/\s+/);
  if (fields.length !== CRON_FIELDS.length) {
    ctx.addIssue({ code: 'custom', message: `expected a five-field cron expression such as "0 3 * * *" (minute hour day-of-month month day-of-week), received "${text}"` });
    return;
  }
  fields.forEach((field, i) => {
    const problem = cronFieldProblem(field, CRON_FIELDS[i]);
    if (problem) ctx.addIssue({ code: 'custom', message: `expected a five-field cron expression such as "0 3 * * *": its ${CRON_FIELDS[i].name} ${problem}` });
  });
});

/** Go duration as Argo CD and Longhorn take it (`10s`, `3m`, `1h30m`). */
export const duration = matching(/^(\d+(ms|s|m|h))+$/, 'a duration such as "30s", "5m" or "1h"');

/** Git repository URL Argo CD can pull: https or ssh. */
export const gitRepoUrl = matching(
  /^(https:\/\/[^\s/]+\/\S+|ssh:\/\/\S+|git@[^\s:]+:\S+)$/,
  'a Git URL ("https://host/org/repo.git" or "git@host:org/repo.git")',
).refine((url) => url.startsWith('git@') || URL.canParse(url), expected('a Git URL with a valid host and port'));

/** Kubernetes API server URL of a destination cluster. */
export const clusterServerUrl = matching(/^https:\/\/\S+$/, 'an https:// Kubernetes API server URL').refine((url) => URL.canParse(url), expected('an https:// URL with a valid host and port'));

/** Label key (optionally prefixed by a DNS subdomain) and value, as Kubernetes checks them. */
export const labelKey = matching(
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/,
  'a label key such as "example.com/role"',
);
export const labelValue = matching(/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/, 'a label value (alphanumeric, "-", "_", ".")', 63);
export const labels = z.record(labelKey, labelValue, expected('a map of labels'));

/** Environment variable name as POSIX shells accept it. */
export const envVarName = matching(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');

/** An S3 or cloud region (AWS_DEFAULT_REGION). */
export const region = matching(/^[a-z0-9-]+$/, 'a region name such as "eu-central-1"');

/** An S3 endpoint URL with scheme, as S3 clients take it (`https://s3.example.net`, `http://minio.minio.svc:9000`). */
export const s3Endpoint = z
  .string(expected('an S3 endpoint URL'))
  .regex(/^https?:\/\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:\d{1,5})?\/?$/, expected('an S3 endpoint URL such as "https://s3.example.net" or "http://minio.minio.svc:9000"'));

/** Absolute path inside a container. */
export const absolutePath = matching(/^\/\S*$/, 'an absolute path such as "/data"');

/** CPU/memory requests and limits of a container: all four are required. */
export const resourcesSchema = z.strictObject({
  requests: z.strictObject({ cpu: cpuQuantity, memory: memoryQuantity }),
  limits: z.strictObject({ cpu: cpuQuantity, memory: memoryQuantity }),
});

/** An IPv4 CIDR block, e.g. "192.168.1.10/32". */
export const ipv4Cidr = matching(
  /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\/(3[0-2]|[12]?\d)$/,
  'an IPv4 CIDR block such as "192.168.1.10/32"',
);

export type Resources = z.output<typeof resourcesSchema>;

/** A port connected to: `443` (TCP), `"7844/udp"` or `"7844/tcp"`. */
const egressPort = z.union(
  [
    intBetween(1, 65535).transform((port) => ({ port, protocol: 'TCP' as const })),
    matching(/^\d{1,5}\/(tcp|udp)$/, 'a port such as 443 or "7844/udp"').transform((text, context) => {
      const [number, protocol] = text.split('/');
      const port = Number(number);
      if (port < 1 || port > 65535) {
        context.addIssue({ code: 'custom', message: 'expected a port between 1 and 65535' });
        return z.NEVER;
      }
      return { port, protocol: protocol.toUpperCase() as 'TCP' | 'UDP' };
    }),
  ],
  expected('a port such as 443 or "7844/udp"'),
);

/**
 * Where a service may connect outside the cluster (its egress NetworkPolicy): each entry
 * `to: internet` (every public address) or a list of IPv4 CIDR blocks, on `ports` (every port
 * when left out).
 */
export const externalDestinations = z.array(
  z.strictObject({
    to: z.union([z.literal('internet'), z.array(ipv4Cidr).min(1, expected('at least one CIDR block'))], expected('"internet" or a list of CIDR blocks')),
    ports: z.array(egressPort).min(1, expected('at least one port (leave ports out for every port)')).optional(),
  }),
  expected('a list of destinations ({to: internet | [CIDR ...], ports: [...]})'),
);
