/**
 * The monitoring passes. Where a service of the platform installs the prometheus-operator
 * CRDs, every service's declared metrics endpoints become a ServiceMonitor or PodMonitor each
 * and its alert rules one PrometheusRule (with a "target down" alert per endpoint), in the
 * service's own folder: the CRD edge then orders the service after the CRDs only, not after
 * the monitoring stack. Every declared dashboard goes to the dashboard host (Grafana).
 */
import { Construct } from 'constructs';
import { PodMonitor, PodMonitorSpecPodMetricsEndpointsRelabelingsAction } from '../../imports/prometheus-podmonitor-monitoring.coreos.com';
import { PrometheusRule, PrometheusRuleSpecGroupsRulesExpr } from '../../imports/prometheus-prometheusrule-monitoring.coreos.com';
import { ServiceMonitor, ServiceMonitorSpecEndpointsRelabelingsAction } from '../../imports/prometheus-servicemonitor-monitoring.coreos.com';
import { AlertRule, ENDPOINT_LABEL, isDashboardHost, MetricsEndpoint, MONITORING_GROUP, SERVICE_LABEL } from '../model/monitoring';
import type { Platform } from '../model/platform';
import type { HomelabService } from '../model/service';

/** Hands every declared dashboard to the platform's dashboard host, if it has one. */
export function provisionDashboards(platform: Platform): void {
  const dashboards = platform.services.flatMap((service) => service.dashboards.map((dashboard) => ({ service: service.serviceName, dashboard })));
  for (const host of platform.services.filter(isDashboardHost)) host.provisionDashboards(dashboards);
}

/** Monitors and alert rules of every service, where the platform installs their CRDs. */
export function emitMonitoring(platform: Platform): void {
  if (!platform.services.some((s) => s.installsCrdGroups.includes(MONITORING_GROUP))) return;
  for (const service of platform.services) new ServiceMonitoring(service);
}

/** The monitors and rules one service declared, in its own tree. */
class ServiceMonitoring extends Construct {
  constructor(service: HomelabService) {
    super(service, 'monitors');
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
    const spec = { selector: { matchLabels: { ...endpoint.selector } }, namespaceSelector };
    const scrape = { path: endpoint.path ?? '/metrics', interval: endpoint.interval ?? '30s', params, port: endpoint.port };
    const relabelings = identify(service, endpoint);
    if (endpoint.kind === 'service') {
      const action = ServiceMonitorSpecEndpointsRelabelingsAction.REPLACE;
      new ServiceMonitor(this, name, { metadata, spec: { ...spec, endpoints: [{ ...scrape, relabelings: relabelings.map((r) => ({ ...r, action })) }] } });
    } else {
      const action = PodMonitorSpecPodMetricsEndpointsRelabelingsAction.REPLACE;
      new PodMonitor(this, name, { metadata, spec: { ...spec, podMetricsEndpoints: [{ ...scrape, relabelings: relabelings.map((r) => ({ ...r, action })) }] } });
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
