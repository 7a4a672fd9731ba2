/**
 * What the gateway's dashboard and alerts query, as data: the metrics (the processor's, Envoy's, kube-state-metrics'
 * and Prometheus' own), the dashboard panels built from them, and the recording and alerting rules. The Observability
 * construct renders these into a Grafana dashboard and a PrometheusRule; tests parse every expression and check each
 * metric name against the processor's scrape and Envoy's documented statistics. Not exported from the package's entry
 * points.
 */

/** The label the PodMonitors add to every series they scrape: `<namespace>/<name>` of the gateway. */
export const GATEWAY_LABEL = 'ai_gateway';

/** Who exports a metric. */
export type MetricSource = 'processor' | 'envoy' | 'kube-state-metrics' | 'prometheus';

export interface MetricDefinition {
  /** The series name as scraped (histograms: without `_bucket`, `_sum`, `_count`). */
  readonly name: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly source: MetricSource;
  /** Labels of the series (besides the target labels Prometheus adds). */
  readonly labels: readonly string[];
  /**
   * True for processor series that only appear once their event happened (a rejected reload, a failed cost
   * expression): the processor declares them from the start, their samples come with the first event.
   */
  readonly onEvent?: boolean;
}

const REQUEST_LABELS = ['gen_ai_operation_name', 'gen_ai_request_model', 'gen_ai_provider_name'] as const;

/**
 * Every metric the dashboard and the rules use. Processor names are those of processor/src/metrics.ts and app.ts;
 * Envoy's are its cluster statistics in Prometheus form (`cluster.<name>.<stat>` becomes `envoy_cluster_<stat>` with
 * the cluster in `envoy_cluster_name`).
 */
export const METRICS = {
  requestDuration: {
    name: 'gen_ai_server_request_duration_seconds',
    type: 'histogram',
    source: 'processor',
    labels: [...REQUEST_LABELS, 'error_type'],
  },
  tokenUsage: {
    name: 'gen_ai_client_token_usage',
    type: 'histogram',
    source: 'processor',
    labels: ['gen_ai_token_type', ...REQUEST_LABELS],
  },
  timeToFirstToken: {
    name: 'gen_ai_server_time_to_first_token_seconds',
    type: 'histogram',
    source: 'processor',
    labels: REQUEST_LABELS,
  },
  timePerOutputToken: {
    name: 'gen_ai_server_time_per_output_token_seconds',
    type: 'histogram',
    source: 'processor',
    labels: REQUEST_LABELS,
  },
  consumerTokens: {
    name: 'ai_gateway_consumer_tokens_total',
    type: 'counter',
    source: 'processor',
    labels: ['consumer', 'gen_ai_request_model', 'gen_ai_provider_name', 'gen_ai_token_type'],
  },
  consumerSpend: {
    name: 'ai_gateway_consumer_spend_usd_total',
    type: 'counter',
    source: 'processor',
    labels: ['consumer', 'gen_ai_request_model', 'gen_ai_provider_name'],
  },
  budgetRejections: {
    name: 'ai_gateway_budget_rejections_total',
    type: 'counter',
    source: 'processor',
    labels: ['budget', 'consumer'],
  },
  budgetUsed: {
    name: 'ai_gateway_budget_used_ratio',
    type: 'gauge',
    source: 'processor',
    labels: ['budget', 'consumer'],
    onEvent: true,
  },
  localReplies: { name: 'ai_gateway_local_replies_total', type: 'counter', source: 'processor', labels: ['status'] },
  activeStreams: { name: 'ai_gateway_active_streams', type: 'gauge', source: 'processor', labels: [] },
  fallbacks: {
    name: 'ai_gateway_fallbacks_total',
    type: 'counter',
    source: 'processor',
    labels: ['route', 'from_backend', 'to_backend', 'reason'],
    onEvent: true,
  },
  processorBreakerOpen: {
    name: 'ai_gateway_backend_circuit_open',
    type: 'gauge',
    source: 'processor',
    labels: ['gen_ai_provider_name'],
  },
  configReloads: {
    name: 'ai_gateway_config_reloads_total',
    type: 'counter',
    source: 'processor',
    labels: ['result'],
    onEvent: true,
  },
  costErrors: {
    name: 'ai_gateway_cost_evaluation_errors_total',
    type: 'counter',
    source: 'processor',
    labels: ['metadata_key'],
    onEvent: true,
  },
  streamsExpired: {
    name: 'ai_gateway_streams_expired_total',
    type: 'counter',
    source: 'processor',
    labels: [],
  },
  unhandledRejections: {
    name: 'ai_gateway_unhandled_rejections_total',
    type: 'counter',
    source: 'processor',
    labels: [],
  },
  envoyUpstreamRequests: {
    name: 'envoy_cluster_upstream_rq_xx',
    type: 'counter',
    source: 'envoy',
    labels: ['envoy_cluster_name', 'envoy_response_code_class'],
  },
  envoyUpstreamTotal: {
    name: 'envoy_cluster_upstream_rq_total',
    type: 'counter',
    source: 'envoy',
    labels: ['envoy_cluster_name'],
  },
  envoyBreakerRequestsOpen: {
    name: 'envoy_cluster_circuit_breakers_default_rq_open',
    type: 'gauge',
    source: 'envoy',
    labels: ['envoy_cluster_name'],
  },
  envoyBreakerPendingOpen: {
    name: 'envoy_cluster_circuit_breakers_default_rq_pending_open',
    type: 'gauge',
    source: 'envoy',
    labels: ['envoy_cluster_name'],
  },
  envoyRateLimitOk: {
    name: 'envoy_cluster_ratelimit_ok',
    type: 'counter',
    source: 'envoy',
    labels: ['envoy_cluster_name'],
  },
  envoyRateLimitOverLimit: {
    name: 'envoy_cluster_ratelimit_over_limit',
    type: 'counter',
    source: 'envoy',
    labels: ['envoy_cluster_name'],
  },
  envoyRateLimitError: {
    name: 'envoy_cluster_ratelimit_error',
    type: 'counter',
    source: 'envoy',
    labels: ['envoy_cluster_name'],
  },
  envoyRateLimitFailureModeAllowed: {
    name: 'envoy_cluster_ratelimit_failure_mode_allowed',
    type: 'counter',
    source: 'envoy',
    labels: ['envoy_cluster_name'],
  },
  deploymentUnavailable: {
    name: 'kube_deployment_status_replicas_unavailable',
    type: 'gauge',
    source: 'kube-state-metrics',
    labels: ['namespace', 'deployment'],
  },
  up: { name: 'up', type: 'gauge', source: 'prometheus', labels: ['job'] },
} as const satisfies Record<string, MetricDefinition>;

export type MetricKey = keyof typeof METRICS;

/** How a panel shows its metric. */
export type PanelView =
  /** Per-second rate of a counter (a histogram's `_count`, or `_sum` with `sumOf`), summed by the `by` labels. */
  | 'rate'
  /** p50, p95 and p99 of a histogram, by the `by` labels. */
  | 'quantiles'
  /** The value of a gauge, summed (or `max`ed with `max`) by the `by` labels. */
  | 'value';

export interface PanelDefinition {
  readonly title: string;
  /** What the panel shows, as its Grafana description (and docs/observability.md). */
  readonly description: string;
  readonly row: string;
  readonly metric: MetricKey;
  readonly view: PanelView;
  readonly by: readonly string[];
  /** Grafana unit. */
  readonly unit: string;
  /** Extra label matchers, e.g. `error_type!=""`. */
  readonly matchers?: readonly string[];
  /** A histogram's `_sum` instead of `_count` (rate views). */
  readonly sumOf?: boolean;
  /** Multiplies the value (e.g. 3600: per hour). */
  readonly scale?: number;
  /** `max` instead of `sum` (value views). */
  readonly max?: boolean;
}

/** The dashboard's panels, in order. Processor panels filter by `$consumer` where the metric has that label. */
export const PANELS: readonly PanelDefinition[] = [
  {
    row: 'Traffic',
    title: 'Requests by backend',
    description: 'Requests the processor sent to each backend, per second (answered or failed).',
    metric: 'requestDuration',
    view: 'rate',
    by: ['gen_ai_provider_name'],
    unit: 'reqps',
  },
  {
    row: 'Traffic',
    title: 'Requests by model',
    description: 'Requests per second by the configured model match that accepted them.',
    metric: 'requestDuration',
    view: 'rate',
    by: ['gen_ai_request_model'],
    unit: 'reqps',
  },
  {
    row: 'Traffic',
    title: 'Route responses by status class',
    description: "Envoy's responses from each route's backends, per second, by status class (2xx, 4xx, 5xx).",
    metric: 'envoyUpstreamRequests',
    view: 'rate',
    by: ['envoy_cluster_name', 'envoy_response_code_class'],
    unit: 'reqps',
  },
  {
    row: 'Tokens and cost',
    title: 'Tokens by consumer',
    description: 'Tokens per second by consumer and token type (input, output, cached_input, reasoning).',
    metric: 'consumerTokens',
    view: 'rate',
    by: ['consumer', 'gen_ai_token_type'],
    unit: 'short',
  },
  {
    row: 'Tokens and cost',
    title: 'Tokens by model',
    description: 'Tokens per second by model and token type.',
    metric: 'tokenUsage',
    view: 'rate',
    sumOf: true,
    by: ['gen_ai_request_model', 'gen_ai_token_type'],
    unit: 'short',
  },
  {
    row: 'Tokens and cost',
    title: 'Tokens by backend',
    description: 'Tokens per second by backend and token type.',
    metric: 'tokenUsage',
    view: 'rate',
    sumOf: true,
    by: ['gen_ai_provider_name', 'gen_ai_token_type'],
    unit: 'short',
  },
  {
    row: 'Tokens and cost',
    title: 'Spend by consumer',
    description: 'US dollars per hour by consumer, at the prices of the gateway (unpriced models add nothing).',
    metric: 'consumerSpend',
    view: 'rate',
    by: ['consumer'],
    scale: 3600,
    unit: 'currencyUSD',
  },
  {
    row: 'Tokens and cost',
    title: 'Spend by model',
    description: 'US dollars per hour by priced model.',
    metric: 'consumerSpend',
    view: 'rate',
    by: ['gen_ai_request_model'],
    scale: 3600,
    unit: 'currencyUSD',
  },
  {
    row: 'Tokens and cost',
    title: 'Spend by backend',
    description: 'US dollars per hour by backend.',
    metric: 'consumerSpend',
    view: 'rate',
    by: ['gen_ai_provider_name'],
    scale: 3600,
    unit: 'currencyUSD',
  },
  {
    row: 'Tokens and cost',
    title: 'Budget use',
    description:
      "Used share of each budget's current window, by budget and consumer, as Envoy's rate-limit service reported it " +
      'on the latest requests (for the budget closest to running out on each request; 100% once one refuses).',
    metric: 'budgetUsed',
    view: 'value',
    max: true,
    by: ['budget', 'consumer'],
    unit: 'percentunit',
  },
  {
    row: 'Errors',
    title: 'Backend errors by type',
    description: 'Failed requests per second by backend and error type (the answer the processor classified).',
    metric: 'requestDuration',
    view: 'rate',
    matchers: ['error_type!=""'],
    by: ['gen_ai_provider_name', 'error_type'],
    unit: 'reqps',
  },
  {
    row: 'Errors',
    title: 'Processor replies by status',
    description: 'Requests the processor answered itself (no route, refused consumer, budget 429, ...) by status.',
    metric: 'localReplies',
    view: 'rate',
    by: ['status'],
    unit: 'reqps',
  },
  {
    row: 'Errors',
    title: 'Budget rejections',
    description: 'Requests refused because a budget ran out, per second, by budget and consumer.',
    metric: 'budgetRejections',
    view: 'rate',
    by: ['budget', 'consumer'],
    unit: 'reqps',
  },
  {
    row: 'Latency',
    title: 'Time to first token',
    description: 'p50, p95 and p99 of the time to the first streamed chunk, by model.',
    metric: 'timeToFirstToken',
    view: 'quantiles',
    by: ['gen_ai_request_model'],
    unit: 's',
  },
  {
    row: 'Latency',
    title: 'Time per output token',
    description: 'p50, p95 and p99 of the time per output token after the first chunk, by model.',
    metric: 'timePerOutputToken',
    view: 'quantiles',
    by: ['gen_ai_request_model'],
    unit: 's',
  },
  {
    row: 'Latency',
    title: 'Request duration',
    description: 'p50, p95 and p99 of the whole exchange as the processor sees it, by backend.',
    metric: 'requestDuration',
    view: 'quantiles',
    by: ['gen_ai_provider_name'],
    unit: 's',
  },
  {
    row: 'Resilience',
    title: 'Envoy circuit breakers open',
    description:
      "1 while an Envoy circuit breaker refuses requests: a backend's parallel-request cap, or the cap on " +
      'requests to the processor (replicas × streamsPerReplica).',
    metric: 'envoyBreakerRequestsOpen',
    view: 'value',
    max: true,
    by: ['envoy_cluster_name'],
    unit: 'short',
  },
  {
    row: 'Resilience',
    title: 'Processor circuit breakers open',
    description:
      "1 while the processor's breaker for a backend is open: its priority's traffic goes to the rule's next " +
      'priority (or, with none, still to it) until a probe request succeeds.',
    metric: 'processorBreakerOpen',
    view: 'value',
    max: true,
    by: ['gen_ai_provider_name'],
    unit: 'short',
  },
  {
    row: 'Resilience',
    title: 'Fallbacks',
    description:
      'Requests per second a rule with fallback moved from one backend to the next priority within the request, by ' +
      'backends and reason (status, connection failure, timeout).',
    metric: 'fallbacks',
    view: 'rate',
    by: ['from_backend', 'to_backend', 'reason'],
    unit: 'reqps',
  },
  {
    row: 'Resilience',
    title: 'Rate-limit service errors',
    description: 'Budget checks that failed to reach the rate-limit service, per second (Envoy lets them through).',
    metric: 'envoyRateLimitError',
    view: 'rate',
    by: ['envoy_cluster_name'],
    unit: 'reqps',
  },
  {
    row: 'Resilience',
    title: 'Rate-limit over limit',
    description: 'Requests the rate-limit service answered over limit (budget 429s), per second.',
    metric: 'envoyRateLimitOverLimit',
    view: 'rate',
    by: ['envoy_cluster_name'],
    unit: 'reqps',
  },
  {
    row: 'Processor health',
    title: 'Open streams',
    description: 'ext_proc streams open on each processor pod (one per request in flight).',
    metric: 'activeStreams',
    view: 'value',
    by: ['pod'],
    unit: 'short',
  },
  {
    row: 'Processor health',
    title: 'Config reloads',
    description: 'Config reloads per second by result (success, rejected, incomplete).',
    metric: 'configReloads',
    view: 'rate',
    by: ['result'],
    unit: 'short',
  },
  {
    row: 'Processor health',
    title: 'Streams expired',
    description: "Streams the processor's watchdog closed, per second.",
    metric: 'streamsExpired',
    view: 'rate',
    by: ['pod'],
    unit: 'short',
  },
  {
    row: 'Processor health',
    title: 'Unhandled rejections',
    description: 'Promise rejections no code handled, per second (each is logged; the processor keeps serving).',
    metric: 'unhandledRejections',
    view: 'rate',
    by: ['pod'],
    unit: 'short',
  },
  {
    row: 'Processor health',
    title: 'Cost expression failures',
    description: 'CEL cost expressions that failed (0 was charged), per second, by metadata key.',
    metric: 'costErrors',
    view: 'rate',
    by: ['metadata_key'],
    unit: 'short',
  },
];

/** Dashboard variables, as PromQL label matchers: each panel filters by those its metric has. */
const VARIABLE_MATCHERS: Record<MetricSource, readonly { label: string; matcher: string }[]> = {
  processor: [
    { label: GATEWAY_LABEL, matcher: `${GATEWAY_LABEL}=~"$gateway"` },
    { label: 'consumer', matcher: 'consumer=~"$consumer"' },
  ],
  envoy: [
    { label: GATEWAY_LABEL, matcher: `${GATEWAY_LABEL}=~"$gateway"` },
    { label: 'envoy_cluster_name', matcher: 'envoy_cluster_name=~"httproute/$route/.*"' },
  ],
  'kube-state-metrics': [],
  prometheus: [],
};

/** Labels a panel may group by beyond the metric's own: Prometheus' target labels. */
const TARGET_LABELS = ['pod', 'namespace', 'job', 'instance', GATEWAY_LABEL];

export interface PanelQuery {
  readonly expr: string;
  readonly legend: string;
}

/** The PromQL of a panel (Grafana's `$__rate_interval` as the range). */
export function panelQueries(panel: PanelDefinition): PanelQuery[] {
  const metric: MetricDefinition = METRICS[panel.metric];
  for (const label of panel.by) {
    if (!metric.labels.includes(label) && !TARGET_LABELS.includes(label))
      throw new Error(`panel "${panel.title}": ${metric.name} has no label ${label}`);
  }
  const variables = VARIABLE_MATCHERS[metric.source].filter(
    (v) => v.label === GATEWAY_LABEL || metric.labels.includes(v.label),
  );
  // Envoy's route filter applies to route clusters only: breakers and rate limits of other clusters stay visible.
  const routeScoped = panel.metric === 'envoyUpstreamRequests';
  const matchers = [
    ...variables.filter((v) => routeScoped || v.label !== 'envoy_cluster_name').map((v) => v.matcher),
    ...(panel.matchers ?? []),
  ];
  const selector = `{${matchers.join(', ')}}`;
  const by = panel.by.join(', ');
  const legend = panel.by.map((label) => `{{${label}}}`).join(' ');
  const scaled = (expr: string) => (panel.scale !== undefined ? `${expr} * ${panel.scale}` : expr);
  switch (panel.view) {
    case 'rate': {
      const series = metric.type === 'histogram' ? `${metric.name}_${panel.sumOf ? 'sum' : 'count'}` : metric.name;
      return [{ expr: scaled(`sum by (${by}) (rate(${series}${selector}[$__rate_interval]))`), legend }];
    }
    case 'quantiles':
      if (metric.type !== 'histogram') throw new Error(`panel "${panel.title}": ${metric.name} is no histogram`);
      return [0.5, 0.95, 0.99].map((q) => ({
        expr: `histogram_quantile(${q}, sum by (le, ${by}) (rate(${metric.name}_bucket${selector}[$__rate_interval])))`,
        legend: `p${q * 100} ${legend}`,
      }));
    case 'value':
      return [{ expr: scaled(`${panel.max ? 'max' : 'sum'} by (${by}) (${metric.name}${selector})`), legend }];
  }
}

/** What the rules need to know of the gateway. */
export interface RuleContext {
  /** `<namespace>/<name>` of the gateway: the value of GATEWAY_LABEL on its series. */
  readonly gateway: string;
  readonly namespace: string;
  /** The processor's Deployment. */
  readonly processorDeployment: string;
  /** The `job` of the processor's targets: `<namespace>/<podmonitor>` (Prometheus Operator's default). */
  readonly processorJob: string;
  /** Failed share of a backend's requests that alerts. */
  readonly errorRatio: number;
  /** Used share of a budget's window that alerts. */
  readonly budgetWarningRatio: number;
}

export interface RecordingRule {
  readonly record: string;
  readonly expr: string;
}

export interface AlertingRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly severity: 'critical' | 'warning' | 'info';
  readonly summary: string;
  readonly description: string;
}

/** Names of the recording rules (the alerts build on them). */
export const RECORDS = {
  backendRequests: 'ai_gateway:backend_requests:rate5m',
  backendErrors: 'ai_gateway:backend_errors:rate5m',
  backendErrorRatio: 'ai_gateway:backend_error_ratio:rate5m',
  consumerSpend: 'ai_gateway:consumer_spend_usd:rate1h',
  rateLimitErrors: 'ai_gateway:ratelimit_errors:rate5m',
} as const;

export function recordingRules(context: RuleContext): RecordingRule[] {
  const g = `${GATEWAY_LABEL}="${context.gateway}"`;
  const perBackend = `${GATEWAY_LABEL}, gen_ai_provider_name`;
  const requests = `${METRICS.requestDuration.name}_count`;
  return [
    { record: RECORDS.backendRequests, expr: `sum by (${perBackend}) (rate(${requests}{${g}}[5m]))` },
    {
      record: RECORDS.backendErrors,
      expr: `sum by (${perBackend}) (rate(${requests}{${g}, error_type!=""}[5m]))`,
    },
    {
      record: RECORDS.backendErrorRatio,
      expr: `${RECORDS.backendErrors}{${g}} / ${RECORDS.backendRequests}{${g}}`,
    },
    {
      record: RECORDS.consumerSpend,
      expr: `sum by (${GATEWAY_LABEL}, consumer) (rate(${METRICS.consumerSpend.name}{${g}}[1h])) * 3600`,
    },
    {
      record: RECORDS.rateLimitErrors,
      expr: `sum by (${GATEWAY_LABEL}) (rate(${METRICS.envoyRateLimitError.name}{${g}}[5m]))`,
    },
  ];
}

/** A ratio as a percentage for alert texts, without float noise (0.57 is "57%", not "56.99999999999999%"). */
function percent(ratio: number): string {
  return `${Number((ratio * 100).toFixed(4))}%`;
}

export function alertingRules(context: RuleContext): AlertingRule[] {
  const g = `${GATEWAY_LABEL}="${context.gateway}"`;
  const deployment = `namespace="${context.namespace}", deployment="${context.processorDeployment}"`;
  const up = `${METRICS.up.name}{job="${context.processorJob}"}`;
  return [
    {
      alert: 'AIGatewayBackendErrorRatioHigh',
      expr:
        `${RECORDS.backendErrorRatio}{${g}} > ${context.errorRatio} ` + `and ${RECORDS.backendRequests}{${g}} > 0.01`,
      for: '10m',
      severity: 'warning',
      summary: 'A backend of gateway {{ $labels.ai_gateway }} fails too many requests.',
      description:
        `Backend {{ $labels.gen_ai_provider_name }} failed {{ $value | humanizePercentage }} of its requests ` +
        `over 5 minutes (threshold ${percent(context.errorRatio)}).`,
    },
    {
      alert: 'AIGatewayCircuitBreakerOpen',
      expr:
        `max by (${GATEWAY_LABEL}, envoy_cluster_name) (${METRICS.envoyBreakerRequestsOpen.name}{${g}}) > 0 ` +
        `or max by (${GATEWAY_LABEL}, envoy_cluster_name) (${METRICS.envoyBreakerPendingOpen.name}{${g}}) > 0`,
      for: '2m',
      severity: 'warning',
      summary: 'An Envoy circuit breaker of gateway {{ $labels.ai_gateway }} is open.',
      description:
        'Envoy refuses requests to cluster {{ $labels.envoy_cluster_name }} with 503s: its parallel-request cap ' +
        'is reached (a backend, or the processor: raise processor.replicas or streamsPerReplica).',
    },
    {
      alert: 'AIGatewayBackendCircuitOpen',
      expr: `max by (${GATEWAY_LABEL}, gen_ai_provider_name) (${METRICS.processorBreakerOpen.name}{${g}}) > 0`,
      for: '5m',
      severity: 'warning',
      summary: "The processor's circuit breaker for a backend of gateway {{ $labels.ai_gateway }} is open.",
      description:
        'Backend {{ $labels.gen_ai_provider_name }} failed often enough that the processor sends its traffic to the ' +
        "rule's next priority (a rule without one keeps using it); the breaker closes after a probe succeeds.",
    },
    {
      alert: 'AIGatewayBudgetNearlyExhausted',
      expr:
        `max by (${GATEWAY_LABEL}, budget, consumer) (${METRICS.budgetUsed.name}{${g}}) ` +
        `> ${context.budgetWarningRatio}`,
      for: '0m',
      severity: 'warning',
      summary: 'A budget of gateway {{ $labels.ai_gateway }} is nearly used up.',
      description:
        'Budget {{ $labels.budget }} of consumer {{ $labels.consumer }} has used {{ $value | humanizePercentage }} ' +
        `of its current window (threshold ${percent(context.budgetWarningRatio)}); once used up, Envoy refuses the ` +
        'requests it covers until the window ends.',
    },
    {
      alert: 'AIGatewayBudgetExhausted',
      expr:
        `sum by (${GATEWAY_LABEL}, budget, consumer) ` + `(increase(${METRICS.budgetRejections.name}{${g}}[15m])) > 0`,
      for: '0m',
      severity: 'info',
      summary: 'A budget of gateway {{ $labels.ai_gateway }} ran out.',
      description:
        'Budget {{ $labels.budget }} refused {{ $value }} requests of consumer {{ $labels.consumer }} in the ' +
        'last 15 minutes; it refills at the start of its next window.',
    },
    {
      alert: 'AIGatewayProcessorNotReady',
      expr: `${METRICS.deploymentUnavailable.name}{${deployment}} > 0`,
      for: '5m',
      severity: 'warning',
      summary: `Processor pods of gateway ${context.gateway} are not ready.`,
      description:
        `{{ $value }} pods of Deployment ${context.processorDeployment} are unavailable for 5 minutes ` +
        '(failing /readyz: no config, draining, or no usable backend credential).',
    },
    {
      alert: 'AIGatewayProcessorDown',
      expr: `${up} == 0 or absent(${up})`,
      for: '5m',
      severity: 'critical',
      summary: `The processor of gateway ${context.gateway} cannot be scraped.`,
      description:
        'Prometheus has no processor pod to scrape, or a pod does not answer /metrics: requests on the ' +
        "gateway's AIRoutes fail while no processor serves.",
    },
    {
      alert: 'AIGatewayRateLimitServiceErrors',
      expr: `${RECORDS.rateLimitErrors}{${g}} > 0`,
      for: '5m',
      severity: 'critical',
      summary: 'Envoy cannot reach the rate-limit service of gateway {{ $labels.ai_gateway }}.',
      description:
        'Budget checks fail ({{ $value }} per second): Envoy lets such requests through, so budgets are not ' +
        'enforced. Check the rate-limit service and its Redis.',
    },
    {
      alert: 'AIGatewayConfigRejected',
      expr: `increase(${METRICS.configReloads.name}{${g}, result="rejected"}[15m]) > 0`,
      for: '0m',
      severity: 'warning',
      summary: 'A processor of gateway {{ $labels.ai_gateway }} rejected a new config.',
      description: 'The processor keeps serving its last good config; its log names the problem.',
    },
  ];
}
