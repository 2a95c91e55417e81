/**
 * `services.rabbitmq` in homelab.yaml: the data mesh. One RabbitMQ cluster (run by the
 * RabbitMQ Cluster Operator) and its topology as code (run by the Messaging Topology
 * Operator): vhosts, users with their permissions, queues and exchanges. Users get
 * credentials generated in the cluster, so none of this holds a secret.
 */
import { z } from 'zod';
import { bool, intBetween, k8sName, oneOf, resourcesSchema, subdomain, volumeSize } from '../../lib/model/config/primitives';

/** Per broker node. Memory request = limit: RabbitMQ sizes its memory watermark from the limit. */
export const DEFAULT_RABBITMQ_RESOURCES = { requests: { cpu: '250m', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } };

/**
 * Quorum queues and the metadata store need a majority of nodes: 2 nodes survive no more
 * failures than 1, and 4 no more than 3.
 */
const replicas = intBetween(1, 7).refine((n) => n % 2 === 1, {
  error: 'expected an odd number of nodes (1, 3, 5 or 7): a majority of 2 or 4 nodes tolerates no more failures than one node less',
});

/** Queue and exchange names: also resource names, so lowercase; dots allowed (`home.events`). */
const topologyName = z
  .string({ error: 'expected a queue or exchange name' })
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, { error: 'expected a name of lowercase letters, digits, "-" and "." (e.g. "home.events")' })
  .max(253, { error: 'expected a name of at most 253 characters' });

/** RabbitMQ permissions are regular expressions over resource names; "" grants nothing. */
const permissionPattern = z.string({ error: 'expected a regular expression ("" for none, ".*" for all)' }).refine(isRegExp, {
  error: 'expected a valid regular expression ("" for none, ".*" for all)',
});

const permissionsSchema = z.strictObject({
  configure: permissionPattern,
  write: permissionPattern,
  read: permissionPattern,
});

const userSchema = z.strictObject({
  /** Management UI access; none means the user can only connect over AMQP. */
  tags: z.array(oneOf(['management', 'policymaker', 'monitoring', 'administrator'])).default([]),
  /** Vhost name -> what the user may configure, write and read there. */
  permissions: z.record(k8sName, permissionsSchema).default({}),
});

/** Type, durability and vhost of a queue cannot change once it exists (the operator's webhook refuses). */
const queueSchema = z.strictObject({
  vhost: k8sName,
  /**
   * Quorum queues are replicated across the cluster's nodes (on a single node they work,
   * unreplicated); streams are append-only logs.
   */
  type: oneOf(['quorum', 'classic', 'stream']).default('quorum'),
  durable: bool.default(true),
});

const exchangeSchema = z.strictObject({
  vhost: k8sName,
  type: oneOf(['direct', 'topic', 'fanout', 'headers']),
  durable: bool.default(true),
});

export const rabbitmqSchema = z
  .strictObject({
    enabled: bool.default(false),
    /** The management UI's subdomain (an admin route through Traefik). */
    subdomain: subdomain.default('rabbitmq'),
    /** Broker nodes; with more than one, each runs on its own node where the inventory allows. */
    replicas: replicas.default(1),
    /** Volume per broker node, on Longhorn's default storage class. */
    storageSize: volumeSize.default('10Gi'),
    resources: resourcesSchema.default(DEFAULT_RABBITMQ_RESOURCES),
    /** Virtual hosts by name (the default vhost "/" is not managed here). */
    vhosts: z.record(k8sName, z.strictObject({})).default({}),
    users: z.record(k8sName, userSchema).default({}),
    queues: z.record(topologyName, queueSchema).default({}),
    exchanges: z.record(topologyName, exchangeSchema).default({}),
  })
  .superRefine((rabbitmq, ctx) => {
    const vhosts = new Set(Object.keys(rabbitmq.vhosts));
    const declared = [...vhosts].sort().join(', ') || 'none yet, add it under vhosts';
    const checkVhost = (vhost: string, path: string[]) => {
      if (vhosts.has(vhost)) return;
      ctx.addIssue({ code: 'custom', path, message: `expected a declared vhost (${declared}), received "${vhost}"` });
    };
    for (const [name, user] of Object.entries(rabbitmq.users)) {
      for (const vhost of Object.keys(user.permissions)) checkVhost(vhost, ['users', name, 'permissions', vhost]);
    }
    for (const [name, queue] of Object.entries(rabbitmq.queues)) {
      checkVhost(queue.vhost, ['queues', name, 'vhost']);
      if (queue.type !== 'classic' && !queue.durable) {
        ctx.addIssue({
          code: 'custom',
          path: ['queues', name, 'durable'],
          message: `expected true: ${queue.type} queues are always durable (only classic queues can be transient)`,
        });
      }
    }
    for (const [name, exchange] of Object.entries(rabbitmq.exchanges)) checkVhost(exchange.vhost, ['exchanges', name, 'vhost']);
  });

export type RabbitmqConfig = z.output<typeof rabbitmqSchema>;
export type RabbitmqUserConfig = z.output<typeof userSchema>;

function isRegExp(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}
