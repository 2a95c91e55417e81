/**
 * Monitoring as part of every service: a service declares its metrics endpoints and alert
 * rules once (HomelabService.exposeMetrics / addAlerts); when the platform has the
 * prometheus-operator CRDs, synth turns the declarations into a ServiceMonitor or
 * PodMonitor per endpoint and one PrometheusRule per service, with a "target down" alert
 * for every endpoint. The CRD edge then orders the service after the CRDs only — not after
 * the monitoring stack itself.
 */
import { Construct } from 'constructs';
import { PodMonitor, PodMonitorSpecPodMetricsEndpointsRelabelingsAction } from '../../imports/prometheus-podmonitor-monitoring.coreos.com';
import { PrometheusRule, PrometheusRuleSpecGroupsRulesExpr } from '../../imports/prometheus-prometheusrule-monitoring.coreos.com';
import { ServiceMonitor, ServiceMonitorSpecEndpointsRelabelingsAction } from '../../imports/prometheus-servicemonitor-monitoring.coreos.com';
import type { HomelabService } from './service';

/** API group of ServiceMonitor, PodMonitor and PrometheusRule. */
export const MONITORING_GROUP = 'monitoring.coreos.com';
/** Labels every scraped series of a declared endpoint carries, so alerts can name it. */
export const SERVICE_LABEL = 'homelab_service';
export const ENDPOINT_LABEL = 'homelab_endpoint';

interface MetricsEndpointBase {
  /** Names the monitor `<service>-<name>` and the endpoint label. */
  readonly name: string;
  /** Labels of the Services (or pods) to scrape. */
  readonly selector: Readonly<Record<string, string>>;
  /** Name of the port on the Service (or container). */
  readonly port: string;
  /** @default '/metrics' */
  readonly path?: string;
  /** URL query parameters of the scrape (a path cannot carry a query string). @default none */
  readonly params?: Readonly<Record<string, readonly string[]>>;
  /** @default '30s' */
  readonly interval?: string;
  /** Where the targets run. @default the service's namespace */
  readonly namespace?: string;
}

/** The endpoints of the Services matching `selector`. */
export interface ServiceMetricsEndpoint extends MetricsEndpointBase {
  readonly kind: 'service';
  /** Port the pods behind the Service listen on (number or container port name): Prometheus is allowed to it. */
  readonly podPort: number | string;
  /** Labels of the pods behind the Service (the NetworkPolicy's pod selector). */
  readonly podSelector: Readonly<Record<string, string>>;
}

/** The pods matching `selector` (no Service needed); `port` is their container port name. */
export interface PodMetricsEndpoint extends MetricsEndpointBase {
  readonly kind: 'pod';
}

export type MetricsEndpoint = ServiceMetricsEndpoint | PodMetricsEndpoint;

/** The pods and the port Prometheus connects to for an endpoint. */
export function scrapedPods(endpoint: MetricsEndpoint): { port: number | string; podSelector: Readonly<Record<string, string>> } {
  return endpoint.kind === 'service'
    ? { port: endpoint.podPort, podSelector: endpoint.podSelector }
    : { port: endpoint.port, podSelector: endpoint.selector };
}

export type Severity = 'critical' | 'warning' | 'info';

/** A Grafana dashboard from grafana.com, pinned to a revision. */
export interface Dashboard {
  /** Key in Grafana's dashboard provider (and file name), e.g. `longhorn`. */
  readonly name: string;
  /** grafana.com dashboard ID. */
  readonly gnetId: number;
  /** Pinned revision of that dashboard. */
  readonly revision: number;
  /** Data source the dashboard's `${DS_...}` input maps to. @default 'Prometheus' */
  readonly datasource?: 'Prometheus' | 'Loki';
}

export interface AlertRule {
  /** CamelCase alert name. */
  readonly alert: string;
  /** PromQL; the build parses it. */
  readonly expr: string;
  /** How long the condition must hold. @default '5m' */
  readonly for?: string;
  readonly severity: Severity;
  readonly summary: string;
  /** @default none */
  readonly description?: string;
}

/** Emits the monitors and rules a service declared; called by synth when the CRDs are installed. */
export class ServiceMonitoring extends Construct {
  constructor(service: HomelabService) {
    super(service, 'monitoring');
    const endpoints = service.metricsEndpoints;
    const rules = service.alertRules;
    for (const endpoint of endpoints) this.monitor(service, endpoint);
    const alerts = [...endpoints.map((endpoint) => targetDown(service, endpoint)), ...rules];
    if (alerts.length === 0) return;
    new PrometheusRule(this, 'rules', {
      metadata: { name: `${service.serviceName}-alerts`, labels: service.labelsFor('monitoring') },
      spec: {
        groups: [
          {
            name: service.serviceName,
            rules: alerts.map((rule) => ({
              alert: rule.alert,
              expr: PrometheusRuleSpecGroupsRulesExpr.fromString(rule.expr),
              for: rule.for ?? '5m',
              labels: { severity: rule.severity, [SERVICE_LABEL]: service.serviceName },
              annotations: { summary: rule.summary, ...(rule.description ? { description: rule.description } : {}) },
            })),
          },
        ],
      },
    });
  }

  private monitor(service: HomelabService, endpoint: MetricsEndpoint): void {
    const name = `${service.serviceName}-${endpoint.name}`;
    const metadata = { name, labels: service.labelsFor('monitoring') };
    const namespaceSelector = endpoint.namespace ? { matchNames: [endpoint.namespace] } : undefined;
    const params = endpoint.params ? Object.fromEntries(Object.entries(endpoint.params).map(([k, v]) => [k, [...v]])) : undefined;
    const common = { path: endpoint.path ?? '/metrics', interval: endpoint.interval ?? '30s', params };
    if (endpoint.kind === 'service') {
      new ServiceMonitor(this, name, {
        metadata,
        spec: {
          selector: { matchLabels: { ...endpoint.selector } },
          namespaceSelector,
          endpoints: [
            {
              ...common,
              port: endpoint.port,
              relabelings: identify(service, endpoint).map((r) => ({ ...r, action: ServiceMonitorSpecEndpointsRelabelingsAction.REPLACE })),
            },
          ],
        },
      });
    } else {
      new PodMonitor(this, name, {
        metadata,
        spec: {
          selector: { matchLabels: { ...endpoint.selector } },
          namespaceSelector,
          podMetricsEndpoints: [
            {
              ...common,
              port: endpoint.port,
              relabelings: identify(service, endpoint).map((r) => ({ ...r, action: PodMonitorSpecPodMetricsEndpointsRelabelingsAction.REPLACE })),
            },
          ],
        },
      });
    }
  }
}

function identify(service: HomelabService, endpoint: MetricsEndpoint): { targetLabel: string; replacement: string }[] {
  return [
    { targetLabel: SERVICE_LABEL, replacement: service.serviceName },
    { targetLabel: ENDPOINT_LABEL, replacement: endpoint.name },
  ];
}

/** Every scraped endpoint gets the same baseline alert: Prometheus cannot scrape it. */
function targetDown(service: HomelabService, endpoint: MetricsEndpoint): AlertRule {
  return {
    alert: `${pascal(service.serviceName)}${pascal(endpoint.name)}TargetDown`,
    expr: `up{${SERVICE_LABEL}="${service.serviceName}", ${ENDPOINT_LABEL}="${endpoint.name}"} == 0`,
    for: '5m',
    severity: 'warning',
    summary: `${service.serviceName}: the ${endpoint.name} metrics endpoint of {{ $labels.namespace }}/{{ $labels.pod }} is down`,
  };
}

function pascal(name: string): string {
  return name
    .split(/[^a-zA-Z0-9]+/)
    .filter(Boolean)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}
