import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct, type IConstruct } from 'constructs';
import { customResource, gatewayDuration } from './crds';
import { invalid } from './errors';
import { checkLabels } from './limits/metadata';
import { checkLabelName, derivedName, shortHash } from './names';
import {
  GATEWAY_LABEL,
  METRICS,
  PANELS,
  alertingRules,
  panelQueries,
  recordingRules,
  type AlertingRule,
  type PanelDefinition,
  type RecordingRule,
} from './observability-queries';

/** Prometheus Operator's API version (PodMonitor, PrometheusRule). */
export const PROMETHEUS_OPERATOR_API_VERSION = 'monitoring.coreos.com/v1';
/** The label kube-prometheus-stack's Grafana sidecar loads dashboards from, and its value. */
export const GRAFANA_DASHBOARD_LABEL = 'grafana_dashboard';
const GRAFANA_DASHBOARD_LABEL_VALUE = '1';
/** Envoy Gateway's name of the proxy container port serving `/stats/prometheus` (19001). */
const ENVOY_METRICS_PORT_NAME = 'metrics';
const ENVOY_METRICS_PATH = '/stats/prometheus';
/** The processor's container port serving `/metrics`. */
const PROCESSOR_ADMIN_PORT_NAME = 'admin';

/** Observability of an AIGateway: Prometheus Operator objects and a Grafana dashboard. */
export interface ObservabilityOptions {
  /**
   * Emit PodMonitors for the processor (admin port, `/metrics`) and the gateway's Envoy proxies (port `metrics`,
   * `/stats/prometheus`), and a PrometheusRule with recording rules and alerts. Needs the Prometheus Operator CRDs,
   * and `processor.metricsNamespace` set to the namespace Prometheus runs in: the processor's NetworkPolicy admits
   * only that namespace to its admin port.
   * @default false
   */
  readonly prometheus?: boolean;
  /**
   * Emit a Grafana dashboard in a ConfigMap labelled `grafana_dashboard: "1"`, which kube-prometheus-stack's Grafana
   * sidecar loads. Its queries use the `ai_gateway` label the PodMonitors add, so it needs `prometheus`.
   * @default false
   */
  readonly grafanaDashboard?: boolean;
  /**
   * Labels on the PodMonitors and the PrometheusRule, for the Prometheus' selectors (kube-prometheus-stack selects
   * `release: <helm release>` unless its `...SelectorNilUsesHelmValues` values are false).
   * @default - none
   */
  readonly monitorLabels?: Record<string, string>;
  /**
   * Namespace of the dashboard ConfigMap. The Grafana sidecar must search it (kube-prometheus-stack:
   * `grafana.sidecar.dashboards.searchNamespace`, `ALL` or this namespace).
   * @default - the gateway's namespace
   */
  readonly dashboardNamespace?: string;
  /**
   * The failed share of a backend's requests over 5 minutes above which `AIGatewayBackendErrorRatioHigh` fires.
   * @default 0.05
   */
  readonly backendErrorRatio?: number;
  /**
   * The used share of a budget's window above which `AIGatewayBudgetNearlyExhausted` fires (the processor reads a
   * budget's use from the rate-limit headers Envoy adds to every response it checked).
   * @default 0.8
   */
  readonly budgetWarningRatio?: number;
  /**
   * How often Prometheus scrapes the processor and the proxies.
   * @default Duration.seconds(30)
   */
  readonly scrapeInterval?: Duration;
  /**
   * An OpenTelemetry collector's OTLP/HTTP endpoint (`http(s)://host:port`, or a full URL with its path) the processor
   * sends one span per request to, with the GenAI semantic conventions, continuing Envoy's trace context. Prompts and
   * completions are never recorded. The URL lands in the Deployment's arguments: no credentials in it (the processor
   * reads the standard `OTEL_EXPORTER_OTLP_HEADERS` variable for collector authentication).
   * @default - no tracing (and no tracing cost)
   */
  readonly otlpEndpoint?: string;
  /**
   * The share of new traces the processor samples (a request whose Envoy trace context says sampled or not follows
   * it). Every sampled request costs CPU (see docs/benchmarks.md).
   * @default 1
   */
  readonly traceSamplingRatio?: number;
}

/** The processor's tracing flags for `options`, or none without `otlpEndpoint`; throws naming the prop. */
export function processorTracingArgs(scope: IConstruct, options: ObservabilityOptions): string[] {
  const endpoint = options.otlpEndpoint;
  const ratio = options.traceSamplingRatio;
  if (endpoint === undefined) {
    if (ratio !== undefined) {
      throw invalid(scope, 'observability.traceSamplingRatio', ratio, 'needs observability.otlpEndpoint');
    }
    return [];
  }
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || endpoint.length > 2048) {
    throw invalid(scope, 'observability.otlpEndpoint', endpoint, 'must be an http or https URL of a collector');
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw invalid(
      scope,
      'observability.otlpEndpoint',
      `${url.protocol}//***@${url.host}${url.pathname}`,
      'must not carry credentials or a query (they would be readable in the Deployment): set ' +
        'OTEL_EXPORTER_OTLP_HEADERS from a Secret instead',
    );
  }
  if (ratio !== undefined && !(typeof ratio === 'number' && ratio >= 0 && ratio <= 1)) {
    throw invalid(scope, 'observability.traceSamplingRatio', ratio, 'must be a number from 0 to 1');
  }
  return ['--otlp-endpoint', endpoint, ...(ratio !== undefined ? ['--trace-sampling-ratio', String(ratio)] : [])];
}

/** @internal What the Observability construct reads of its gateway. */
export interface ObservabilityProps extends ObservabilityOptions {
  readonly gatewayName: string;
  readonly gatewayNamespace: string;
  /** The processor's Deployment, and the labels of its pods. */
  readonly processorDeployment: string;
  readonly processorPodLabels: Record<string, string>;
  /** The namespace admitted to the processor's admin port (`processor.metricsNamespace`). */
  readonly metricsNamespace?: string;
  /** Where the gateway's own proxies run and their labels; undefined for merged proxies (shared by a class). */
  readonly proxies?: { readonly namespace: string; readonly labels: Record<string, string> };
}

/**
 * The PodMonitors, PrometheusRule and Grafana dashboard of one AIGateway (`AIGatewayProps.observability`). Every
 * series scraped gets the label `ai_gateway="<namespace>/<name>"`, which the rules and the dashboard select on.
 * @internal constructed by AIGateway
 */
export class Observability extends Construct {
  /** `<namespace>/<name>` of the gateway: the `ai_gateway` label of its series. */
  readonly gatewayLabel: string;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    this.gatewayLabel = `${props.gatewayNamespace}/${props.gatewayName}`;
    const prometheus = props.prometheus === true;
    if (props.grafanaDashboard === true && !prometheus) {
      throw invalid(
        this,
        'observability.grafanaDashboard',
        true,
        'the dashboard queries the ai_gateway label the PodMonitors add; set observability.prometheus too',
      );
    }
    if (!prometheus) return;
    if (props.metricsNamespace === undefined) {
      throw invalid(
        this,
        'observability.prometheus',
        true,
        "Prometheus scrapes the processor's admin port, which its NetworkPolicy admits only from " +
          'processor.metricsNamespace; set that to the namespace Prometheus runs in',
      );
    }
    checkLabels(this, 'observability.monitorLabels', props.monitorLabels);
    const ratio = props.backendErrorRatio ?? 0.05;
    if (!(ratio > 0 && ratio < 1))
      throw invalid(this, 'observability.backendErrorRatio', ratio, 'must be a number between 0 and 1 (exclusive)');
    const budgetRatio = props.budgetWarningRatio ?? 0.8;
    if (!(budgetRatio > 0 && budgetRatio < 1)) {
      throw invalid(
        this,
        'observability.budgetWarningRatio',
        budgetRatio,
        'must be a number between 0 and 1 (exclusive)',
      );
    }
    const interval = gatewayDuration(
      this,
      'observability.scrapeInterval',
      props.scrapeInterval ?? Duration.seconds(30),
    );
    const labels = { ...props.monitorLabels };

    const processorMonitor = derivedName([props.gatewayName, 'processor']);
    this.podMonitor('ProcessorMonitor', processorMonitor, props, labels, {
      namespace: props.gatewayNamespace,
      podLabels: props.processorPodLabels,
      port: PROCESSOR_ADMIN_PORT_NAME,
      path: '/metrics',
      interval,
    });
    if (props.proxies) {
      this.podMonitor('EnvoyMonitor', derivedName([props.gatewayName, 'envoy']), props, labels, {
        namespace: props.proxies.namespace,
        podLabels: props.proxies.labels,
        port: ENVOY_METRICS_PORT_NAME,
        path: ENVOY_METRICS_PATH,
        interval,
      });
    }
    const context = {
      gateway: this.gatewayLabel,
      namespace: props.gatewayNamespace,
      processorDeployment: props.processorDeployment,
      processorJob: `${props.gatewayNamespace}/${processorMonitor}`,
      errorRatio: ratio,
      budgetWarningRatio: budgetRatio,
    };
    this.prometheusRule(props, labels, recordingRules(context), alertingRules(context));
    if (props.grafanaDashboard === true) this.dashboard(props);
  }

  private podMonitor(
    id: string,
    name: string,
    props: ObservabilityProps,
    labels: Record<string, string>,
    target: { namespace: string; podLabels: Record<string, string>; port: string; path: string; interval: string },
  ): void {
    customResource(
      this,
      id,
      PROMETHEUS_OPERATOR_API_VERSION,
      'PodMonitor',
      { name, namespace: props.gatewayNamespace, ...(Object.keys(labels).length > 0 ? { labels } : {}) },
      {
        selector: { matchLabels: { ...target.podLabels } },
        namespaceSelector: { matchNames: [target.namespace] },
        podMetricsEndpoints: [
          {
            port: target.port,
            path: target.path,
            interval: target.interval,
            relabelings: [{ action: 'replace', targetLabel: GATEWAY_LABEL, replacement: this.gatewayLabel }],
          },
        ],
      },
    );
  }

  private prometheusRule(
    props: ObservabilityProps,
    labels: Record<string, string>,
    records: readonly RecordingRule[],
    alerts: readonly AlertingRule[],
  ): void {
    const group = `ai-gateway.${props.gatewayNamespace}.${props.gatewayName}`;
    customResource(
      this,
      'Rules',
      PROMETHEUS_OPERATOR_API_VERSION,
      'PrometheusRule',
      {
        name: derivedName([props.gatewayName, 'ai-gateway']),
        namespace: props.gatewayNamespace,
        ...(Object.keys(labels).length > 0 ? { labels } : {}),
      },
      {
        groups: [
          { name: `${group}.records`, rules: records.map((r) => ({ record: r.record, expr: r.expr })) },
          {
            name: `${group}.alerts`,
            rules: alerts.map((a) => ({
              alert: a.alert,
              expr: a.expr,
              for: a.for,
              labels: { severity: a.severity, [GATEWAY_LABEL]: this.gatewayLabel },
              annotations: { summary: a.summary, description: a.description },
            })),
          },
        ],
      },
    );
  }

  private dashboard(props: ObservabilityProps): void {
    const namespace =
      props.dashboardNamespace === undefined
        ? props.gatewayNamespace
        : checkLabelName(this, 'observability.dashboardNamespace', props.dashboardNamespace);
    const name = derivedName([props.gatewayName, 'dashboard']);
    new kplus.ConfigMap(this, 'Dashboard', {
      metadata: {
        name,
        namespace,
        labels: { [GRAFANA_DASHBOARD_LABEL]: GRAFANA_DASHBOARD_LABEL_VALUE },
      },
      data: { [`${name}.json`]: JSON.stringify(grafanaDashboard(this.gatewayLabel)) },
    });
  }
}

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
const PANEL_WIDTH = 8;
const PANEL_HEIGHT = 8;

/**
 * The Grafana dashboard of the gateway `<namespace>/<name>`: a row per PanelDefinition row, a time-series panel per
 * definition, and the variables gateway (defaulting to this one), route and consumer.
 * @internal
 */
export function grafanaDashboard(gateway: string): Record<string, unknown> {
  const panels: Record<string, unknown>[] = [];
  let y = 0;
  let id = 1;
  const rows = [...new Set(PANELS.map((p) => p.row))];
  for (const row of rows) {
    panels.push({ id: id++, type: 'row', title: row, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
    y += 1;
    PANELS.filter((p) => p.row === row).forEach((panel, i) => {
      const x = (i % (24 / PANEL_WIDTH)) * PANEL_WIDTH;
      if (i > 0 && x === 0) y += PANEL_HEIGHT;
      panels.push(timeSeriesPanel(panel, id++, { h: PANEL_HEIGHT, w: PANEL_WIDTH, x, y }));
    });
    y += PANEL_HEIGHT;
  }
  const queryVariable = (name: string, label: string, query: string, extra: Record<string, unknown> = {}) => ({
    name,
    label,
    type: 'query',
    datasource: DATASOURCE,
    query: { query, refId: `${name}-values` },
    refresh: 2,
    sort: 1,
    multi: true,
    includeAll: true,
    allValue: '.*',
    ...extra,
  });
  return {
    uid: `ai-gateway-${shortHash(gateway, 16)}`,
    title: `AI gateway ${gateway}`,
    description: 'Traffic, tokens, spend, errors, latency, budgets and health of an AI gateway.',
    tags: ['ai-gateway'],
    editable: true,
    schemaVersion: 39,
    time: { from: 'now-6h', to: 'now' },
    refresh: '30s',
    templating: {
      list: [
        { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus' },
        queryVariable('gateway', 'Gateway', `label_values(${METRICS.activeStreams.name}, ${GATEWAY_LABEL})`, {
          current: { text: gateway, value: gateway },
          includeAll: false,
          multi: false,
        }),
        queryVariable(
          'route',
          'Route',
          `label_values(${METRICS.envoyUpstreamTotal.name}{${GATEWAY_LABEL}=~"$gateway"}, envoy_cluster_name)`,
          { regex: '/^httproute\\/([^/]+\\/[^/]+)\\/rule\\/.*/' },
        ),
        queryVariable(
          'consumer',
          'Consumer',
          `label_values(${METRICS.consumerTokens.name}{${GATEWAY_LABEL}=~"$gateway"}, consumer)`,
        ),
      ],
    },
    panels,
  };
}

function timeSeriesPanel(
  panel: PanelDefinition,
  id: number,
  gridPos: { h: number; w: number; x: number; y: number },
): Record<string, unknown> {
  return {
    id,
    type: 'timeseries',
    title: panel.title,
    description: panel.description,
    datasource: DATASOURCE,
    gridPos,
    fieldConfig: { defaults: { unit: panel.unit }, overrides: [] },
    options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
    targets: panelQueries(panel).map((query, i) => ({
      refId: String.fromCharCode(65 + i),
      datasource: DATASOURCE,
      expr: query.expr,
      legendFormat: query.legend,
    })),
  };
}
