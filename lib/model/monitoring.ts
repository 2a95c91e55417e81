/**
 * Monitoring as part of every service: a service declares its metrics endpoints and alert
 * rules once (HomelabService.exposeMetrics / addAlerts); when the platform has the
 * prometheus-operator CRDs, the monitoring pass (lib/passes/monitoring.ts) turns the declarations into a ServiceMonitor or
 * PodMonitor per endpoint and one PrometheusRule per service, with a "target down" alert
 * for every endpoint. The CRD edge then orders the service after the CRDs only — not after
 * the monitoring stack itself.
 */
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
export interface GrafanaComDashboard {
  /** Key in Grafana's dashboard provider (and file name), e.g. `longhorn`. */
  readonly name: string;
  /** grafana.com dashboard ID. */
  readonly gnetId: number;
  /** Pinned revision of that dashboard. */
  readonly revision: number;
  /** Data source the dashboard's `${DS_...}` input maps to. @default 'Prometheus' */
  readonly datasource?: 'Prometheus' | 'Loki';
}

/**
 * A dashboard the service writes itself, as Grafana's dashboard JSON model: where no
 * grafana.com dashboard shows what the platform knows (e.g. which GPUs are time-sliced).
 */
export interface OwnDashboard {
  /** Key in Grafana's dashboard provider (and file name). */
  readonly name: string;
  /** The dashboard JSON; its panels name their data source by uid. */
  readonly json: string;
  /** The data source its panels query. @default 'Prometheus' */
  readonly datasource?: 'Prometheus' | 'Loki';
}

export type Dashboard = GrafanaComDashboard | OwnDashboard;

export function isOwnDashboard(dashboard: Dashboard): dashboard is OwnDashboard {
  return 'json' in dashboard;
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

/** A dashboard with the service that declared it. */
export interface ServiceDashboard {
  readonly service: string;
  readonly dashboard: Dashboard;
}

/**
 * The service that provisions every declared dashboard (Grafana): the monitoring pass hands
 * it the dashboards of all services once they exist.
 */
export interface DashboardHost extends HomelabService {
  provisionDashboards(dashboards: readonly ServiceDashboard[]): void;
}

export function isDashboardHost(service: HomelabService): service is DashboardHost {
  return typeof (service as Partial<DashboardHost>).provisionDashboards === 'function';
}
