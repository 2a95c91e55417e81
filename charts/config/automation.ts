/**
 * The automation layer's settings in homelab.yaml: `services.n8n`. Checks that need other
 * parts of the environment (Longhorn, the RabbitMQ users) are in `automationServiceIssues`,
 * for the environment-level refinement in ../schema.ts.
 */
import { z } from 'zod';
import type { ConfigIssue } from './ai';
import { bool, hostname, intBetween, k8sName, resourcesSchema, subdomain, volumeSize } from '../../lib/model/config/primitives';
import type { RabbitmqConfig } from './rabbitmq';

const expected = (what: string) => ({ error: `expected ${what}` });

/** An IANA time zone name as n8n's GENERIC_TIMEZONE takes it (`Europe/Berlin`, `UTC`). */
const timezone = z
  .string(expected('a time zone such as "Europe/Berlin" or "UTC"'))
  .regex(/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/, expected('a time zone such as "Europe/Berlin" or "UTC"'));

/** A Service name (`postgres`), or its in-cluster DNS name (`postgres.db.svc`), or any host. */
const databaseHost = z.union([k8sName, hostname], expected('a host name such as "postgres.db.svc"'));

const databaseSchema = z
  .strictObject({
    /** SQLite in a file on a Longhorn volume (one replica, Recreate updates). */
    sqlite: z
      .strictObject({
        volumeSize: volumeSize.default('5Gi'),
        /** @default Longhorn's default storage class */
        storageClass: k8sName.optional(),
      })
      .optional(),
    /** An existing PostgreSQL; the password comes from the Secret `n8n-postgres` (key `password`). */
    postgres: z
      .strictObject({
        host: databaseHost,
        port: intBetween(1, 65535).default(5432),
        database: k8sName.default('n8n'),
        user: k8sName.default('n8n'),
      })
      .optional(),
  })
  .refine((database) => (database.sqlite === undefined) !== (database.postgres === undefined), {
    // Environments deep-merge onto the base, so switching needs `sqlite: null` or `postgres: null`.
    error: 'expected exactly one of sqlite or postgres (set the other to null in an environment that switches)',
  });

export const DEFAULT_N8N_RESOURCES = { requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '2', memory: '2Gi' } };

export const n8nSchema = z.strictObject({
  enabled: bool.default(false),
  /** UI and webhooks at `<subdomain>.<domain>`. */
  subdomain: subdomain.default('n8n'),
  database: databaseSchema.default({ sqlite: { volumeSize: '5Gi' } }),
  /**
   * Connect as one of `services.rabbitmq.users`: its credentials prefill every RabbitMQ
   * credential created in n8n. @default no RabbitMQ
   */
  rabbitmq: z
    .strictObject({
      user: k8sName,
      /** @default the user's only vhost */
      vhost: k8sName.optional(),
    })
    .optional(),
  /** Schedule triggers' time zone (GENERIC_TIMEZONE, TZ). */
  timezone: timezone.default('UTC'),
  resources: resourcesSchema.default(DEFAULT_N8N_RESOURCES),
});

export type N8nConfig = z.output<typeof n8nSchema>;

/** What the cross-service checks read from an environment. */
export interface AutomationEnvironment {
  readonly longhorn: { readonly enabled: boolean; readonly storageClasses: Readonly<Record<string, unknown>> };
  readonly rabbitmq: Pick<RabbitmqConfig, 'enabled' | 'users'>;
  readonly n8n: N8nConfig;
}

/** Problems between n8n and the rest of an environment; [] if none. */
export function automationServiceIssues(env: AutomationEnvironment): ConfigIssue[] {
  const { n8n, longhorn, rabbitmq } = env;
  if (!n8n.enabled) return [];
  const issues: ConfigIssue[] = [];
  const path = (...rest: string[]) => ['services', 'n8n', ...rest];
  const sqlite = n8n.database.sqlite;
  if (sqlite && !longhorn.enabled) {
    issues.push({ path: path('database', 'sqlite'), message: 'expected services.longhorn.enabled: the SQLite volume needs Longhorn (or use database.postgres)' });
  } else if (sqlite?.storageClass && !(sqlite.storageClass in longhorn.storageClasses)) {
    const known = Object.keys(longhorn.storageClasses).sort().join(', ');
    issues.push({ path: path('database', 'sqlite', 'storageClass'), message: `expected one of the Longhorn storage classes (${known}), received "${sqlite.storageClass}"` });
  }
  if (!n8n.rabbitmq) return issues;
  if (!rabbitmq.enabled) {
    issues.push({ path: path('rabbitmq'), message: 'expected services.rabbitmq.enabled: n8n connects to its broker' });
    return issues;
  }
  const { user: userName, vhost } = n8n.rabbitmq;
  const user = rabbitmq.users[userName];
  if (!user) {
    const declared = Object.keys(rabbitmq.users).sort().join(', ') || 'none yet, add it under services.rabbitmq.users';
    issues.push({ path: path('rabbitmq', 'user'), message: `expected a user declared in services.rabbitmq.users (${declared}), received "${userName}"` });
    return issues;
  }
  const vhosts = Object.keys(user.permissions);
  if (vhost !== undefined && !vhosts.includes(vhost)) {
    issues.push({
      path: path('rabbitmq', 'vhost'),
      message: `expected a vhost user "${userName}" has permissions on (${vhosts.join(', ') || 'none'}), received "${vhost}"`,
    });
  } else if (vhost === undefined && vhosts.length !== 1) {
    issues.push(
      vhosts.length === 0
        ? { path: path('rabbitmq', 'user'), message: `expected a user with permissions on a vhost: "${userName}" has none (services.rabbitmq.users.${userName}.permissions)` }
        : { path: path('rabbitmq', 'vhost'), message: `expected the vhost to connect to: user "${userName}" has permissions on several (${vhosts.join(', ')})` },
    );
  }
  return issues;
}
