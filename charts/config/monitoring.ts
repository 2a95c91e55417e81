/**
 * `services.monitoring` in homelab.yaml: the observability stack (kube-prometheus-stack:
 * Prometheus, Alertmanager, Grafana, the operator, kube-state-metrics, node-exporter).
 * Retention and volume size are per environment. No Secret is named here: the stack
 * declares `grafana-admin` and, for the receivers' URLs and passwords, `alertmanager-receivers`
 * (charts/kube-prometheus-stack.ts).
 */
import { z } from 'zod';
import { bool, k8sName, resourcesSchema, subdomain, volumeSize } from '../../lib/model/config/primitives';

/** Receiver Alertmanager drops alerts into; the chart's own routes use it too. */
export const NULL_RECEIVER = 'null';

/** Requests and limits per component; Prometheus' memory grows with the number of series. */
export const DEFAULT_MONITORING_RESOURCES = {
  prometheus: { requests: { cpu: '200m', memory: '1Gi' }, limits: { cpu: '1', memory: '2Gi' } },
  alertmanager: { requests: { cpu: '20m', memory: '64Mi' }, limits: { cpu: '200m', memory: '128Mi' } },
  grafana: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
  operator: { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '200m', memory: '256Mi' } },
  kubeStateMetrics: { requests: { cpu: '20m', memory: '64Mi' }, limits: { cpu: '200m', memory: '256Mi' } },
  nodeExporter: { requests: { cpu: '20m', memory: '32Mi' }, limits: { cpu: '200m', memory: '64Mi' } },
};

/** Prometheus keeps this much history: hours, days or weeks (`15d`, `2w`). */
const retention = z
  .string({ error: 'expected a retention such as "15d" (h, d or w)' })
  .regex(/^[1-9]\d*(h|d|w)$/, { error: 'expected a retention such as "15d" (h, d or w)' });

/** One address or a comma-separated list, as Alertmanager's `to` takes it. */
const emailAddresses = z
  .string({ error: 'expected an e-mail address' })
  .regex(/^[^@\s,]+@[^@\s,]+\.[^@\s,]+(\s*,\s*[^@\s,]+@[^@\s,]+\.[^@\s,]+)*$/, { error: 'expected an e-mail address (or a comma-separated list)' });

const smarthost = z
  .string({ error: 'expected an SMTP server as "host:port"' })
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?:\d{1,5}$/, { error: 'expected an SMTP server as "host:port", e.g. "smtp.example.net:587"' });

const emailSchema = z
  .strictObject({
    to: emailAddresses,
    from: emailAddresses,
    smarthost,
    /**
     * SMTP user; its password is the key `<receiver>-smtp-password` of `alertmanager-receivers`.
     * @default no SMTP authentication (a relay that trusts the cluster)
     */
    username: z.string({ error: 'expected a user name' }).min(1, { error: 'expected a user name' }).optional(),
    /** STARTTLS is required unless this is false. */
    requireTls: bool.default(true),
  });

/** Where one receiver sends its notifications: any combination of the integrations. */
const receiverSchema = z
  .strictObject({
    /**
     * Generic webhook (JSON POST); the URL often embeds a token, so it is the key
     * `<receiver>-webhook-url` of `alertmanager-receivers`.
     */
    webhook: z.strictObject({}).optional(),
    /** Discord channel webhook; its URL is the key `<receiver>-discord-webhook-url` of `alertmanager-receivers`. */
    discord: z.strictObject({}).optional(),
    email: emailSchema.optional(),
  })
  .superRefine((receiver, ctx) => {
    if (!receiver.webhook && !receiver.discord && !receiver.email) {
      ctx.addIssue({ code: 'custom', path: [], message: 'expected at least one of webhook, discord, email' });
    }
  });

const alertmanagerSchema = z
  .strictObject({
    receivers: z.record(k8sName, receiverSchema).default({}),
    route: z
      .strictObject({
        /** Gets every warning (and critical alert, unless `critical` is set). @default none: alerts show in the UIs only */
        receiver: k8sName.optional(),
        /** Gets `severity: critical` alerts, e.g. a pager. @default `receiver` */
        critical: k8sName.optional(),
      })
      .prefault({}),
  })
  .superRefine((alertmanager, ctx) => {
    const declared = Object.keys(alertmanager.receivers);
    if (declared.includes(NULL_RECEIVER)) {
      ctx.addIssue({ code: 'custom', path: ['receivers', NULL_RECEIVER], message: `expected another name: "${NULL_RECEIVER}" is the receiver that drops alerts` });
    }
    for (const level of ['receiver', 'critical'] as const) {
      const name = alertmanager.route[level];
      if (name !== undefined && !declared.includes(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['route', level],
          message: `expected a declared receiver (${declared.sort().join(', ') || 'none declared'}), received "${name}"`,
        });
      }
    }
    if (alertmanager.route.critical !== undefined && alertmanager.route.receiver === undefined) {
      ctx.addIssue({ code: 'custom', path: ['route', 'receiver'], message: 'expected a default receiver next to the critical one' });
    }
    const routed = new Set([alertmanager.route.receiver, alertmanager.route.critical]);
    for (const name of declared) {
      if (name !== NULL_RECEIVER && !routed.has(name)) {
        ctx.addIssue({ code: 'custom', path: ['receivers', name], message: 'expected the receiver in route.receiver or route.critical: nothing is sent to it' });
      }
    }
  });

export const monitoringSchema = z.strictObject({
  enabled: bool.default(false),
  /** How long Prometheus keeps samples; it also stops at 85% of the volume, whichever comes first. */
  retention: retention.default('15d'),
  /** Prometheus' volume (Alertmanager gets a small one of its own). */
  storageSize: volumeSize.default('20Gi'),
  /** Longhorn class of both volumes. @default Longhorn's default class */
  storageClass: k8sName.optional(),
  grafana: z
    .strictObject({
      /** Grafana's public hostname is `<subdomain>.<domain>`. */
      subdomain: subdomain.default('grafana'),
    })
    .prefault({}),
  alertmanager: alertmanagerSchema.prefault({}),
  resources: z
    .strictObject({
      prometheus: resourcesSchema.default(DEFAULT_MONITORING_RESOURCES.prometheus),
      alertmanager: resourcesSchema.default(DEFAULT_MONITORING_RESOURCES.alertmanager),
      grafana: resourcesSchema.default(DEFAULT_MONITORING_RESOURCES.grafana),
      operator: resourcesSchema.default(DEFAULT_MONITORING_RESOURCES.operator),
      kubeStateMetrics: resourcesSchema.default(DEFAULT_MONITORING_RESOURCES.kubeStateMetrics),
      /** Per node: node-exporter runs on every node. */
      nodeExporter: resourcesSchema.default(DEFAULT_MONITORING_RESOURCES.nodeExporter),
    })
    .prefault({}),
});

export type MonitoringConfig = z.output<typeof monitoringSchema>;
export type AlertmanagerConfig = MonitoringConfig['alertmanager'];
export type ReceiverConfig = AlertmanagerConfig['receivers'][string];
export type MonitoringResources = MonitoringConfig['resources'];
