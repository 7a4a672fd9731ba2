/** Prometheus metrics with OpenTelemetry GenAI names (dots become underscores, seconds suffixed). */
import type { FailoverReason } from './fallback';
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { LabeledHistogram, type HistogramChild } from './histogram';
import type { ModelPrice } from '@ai-gateway-constructs/processor-config';
import type { TokenUsage } from './translate/types';
import type { BudgetUse } from './governance/budgets';
import { picoUsdOf, usdOf } from './usage/prices';

const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304];
const DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
const TOKEN_TIME_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

export interface RequestLabels {
  operation: string;
  /**
   * `gen_ai_request_model`: the configured model match that accepted the request (the model name for an Exact match,
   * `<prefix>*` for a Prefix match, the pattern for a RegularExpression), never a name a client made up: the series
   * are bounded by the configuration.
   */
  model: string;
  backend: string;
}

interface RequestSeries {
  input: HistogramChild;
  output: HistogramChild;
  cachedInput: HistogramChild;
  reasoning: HistogramChild;
  duration: Map<string, HistogramChild>;
  firstToken: HistogramChild;
  perOutputToken: HistogramChild;
}

/** Bound on cached label children (label values come from the configuration; a guard across reloads). */
const MAX_CACHED_SERIES = 2000;

/** The `consumer` label of requests without a known consumer (never a consumer id: those start alphanumeric). */
export const NO_CONSUMER = '(none)';
/** The `budget` label of a rejection no configured budget explains. */
export const UNKNOWN_BUDGET = '(unknown)';

export interface SpendLabels {
  /** A configured consumer id; undefined: NO_CONSUMER. */
  consumer: string | undefined;
  /** A priced model (from `prices`) or the configured match that accepted the request. */
  model: string;
  backend: string;
}

interface SpendSeries {
  input: Counter.Internal;
  output: Counter.Internal;
  cachedInput: Counter.Internal;
  reasoning: Counter.Internal;
  usd: Counter.Internal;
}

export class Metrics {
  /** Label children per (operation, model, backend): label hashing once, not per observation. */
  private readonly series = new Map<string, RequestSeries>();
  readonly registry = new Registry();
  private readonly tokenUsage: LabeledHistogram;
  private readonly requestDuration: LabeledHistogram;
  private readonly timeToFirstToken: LabeledHistogram;
  private readonly timePerOutputToken: LabeledHistogram;
  readonly configReloads: Counter<'result'>;
  readonly localReplies: Counter<'status'>;
  readonly costErrors: Counter<'metadata_key'>;
  readonly consumerTokens: Counter<'consumer' | 'gen_ai_request_model' | 'gen_ai_provider_name' | 'gen_ai_token_type'>;
  readonly consumerSpend: Counter<'consumer' | 'gen_ai_request_model' | 'gen_ai_provider_name'>;
  readonly budgetRejections: Counter<'budget' | 'consumer'>;
  readonly budgetUsed: Gauge<'budget' | 'consumer'>;
  /** The last used share seen per (budget, consumer) in its current window; dropped when the window ends. */
  private readonly budgetUse = new Map<string, { budget: string; consumer: string; ratio: number; endsAt: number }>();
  readonly fallbacks: Counter<'route' | 'from_backend' | 'to_backend' | 'reason'>;
  private readonly spendSeries = new Map<string, SpendSeries>();

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const requestLabels = ['gen_ai_operation_name', 'gen_ai_request_model', 'gen_ai_provider_name'];
    this.tokenUsage = new LabeledHistogram(
      'gen_ai_client_token_usage',
      'Tokens used per request, by token type (input, output, cached_input, reasoning), model and backend.',
      ['gen_ai_token_type', ...requestLabels],
      TOKEN_BUCKETS,
    );
    this.requestDuration = new LabeledHistogram(
      'gen_ai_server_request_duration_seconds',
      'Time from the request body reaching the processor to the end of the response.',
      [...requestLabels, 'error_type'],
      DURATION_BUCKETS,
    );
    this.timeToFirstToken = new LabeledHistogram(
      'gen_ai_server_time_to_first_token_seconds',
      'Time from the request to the first streamed response chunk.',
      requestLabels,
      TOKEN_TIME_BUCKETS,
    );
    this.timePerOutputToken = new LabeledHistogram(
      'gen_ai_server_time_per_output_token_seconds',
      'Time per output token after the first chunk of a streamed response.',
      requestLabels,
      TOKEN_TIME_BUCKETS,
    );
    for (const histogram of [this.tokenUsage, this.requestDuration, this.timeToFirstToken, this.timePerOutputToken]) {
      this.registry.registerMetric(histogram as unknown as Metric);
    }
    this.configReloads = new Counter({
      name: 'ai_gateway_config_reloads_total',
      help: 'Config and secret reloads by result (success, rejected, incomplete: a config set still missing parts).',
      labelNames: ['result'],
      registers,
    });
    this.localReplies = new Counter({
      name: 'ai_gateway_local_replies_total',
      help: 'Requests the processor answered itself, by HTTP status.',
      labelNames: ['status'],
      registers,
    });
    this.costErrors = new Counter({
      name: 'ai_gateway_cost_evaluation_errors_total',
      help: 'CEL cost expressions that failed for a response (0 was written).',
      labelNames: ['metadata_key'],
      registers,
    });
    this.consumerTokens = new Counter({
      name: 'ai_gateway_consumer_tokens_total',
      help: 'Tokens by consumer, model (a priced model or the configured match) and backend, by token type.',
      labelNames: ['consumer', 'gen_ai_request_model', 'gen_ai_provider_name', 'gen_ai_token_type'],
      registers,
    });
    this.consumerSpend = new Counter({
      name: 'ai_gateway_consumer_spend_usd_total',
      help: 'Money spent in US dollars by consumer, priced model and backend (unpriced models add 0).',
      labelNames: ['consumer', 'gen_ai_request_model', 'gen_ai_provider_name'],
      registers,
    });
    this.budgetRejections = new Counter({
      name: 'ai_gateway_budget_rejections_total',
      help: 'Requests Envoy rejected because a budget ran out, by budget and consumer.',
      labelNames: ['budget', 'consumer'],
      registers,
    });
    const budgetUse = this.budgetUse;
    this.budgetUsed = new Gauge({
      name: 'ai_gateway_budget_used_ratio',
      help:
        "Used share (0 to 1) of a budget in its current window, by budget and consumer, as Envoy's rate-limit " +
        'service last reported it to this pod (for the budget closest to running out on each request).',
      labelNames: ['budget', 'consumer'],
      registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const [key, use] of budgetUse) {
          if (use.endsAt <= now) budgetUse.delete(key);
          else this.set({ budget: use.budget, consumer: use.consumer }, use.ratio);
        }
      },
    });
    this.fallbacks = new Counter({
      name: 'ai_gateway_fallbacks_total',
      help:
        'Requests moved on within the request to a backend of a higher priority (an attempt the processor sends), ' +
        'by route, the backend that failed, the backend tried next and why (status, connection_failure, timeout).',
      labelNames: ['route', 'from_backend', 'to_backend', 'reason'],
      registers,
    });
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  recordResponse(
    labels: RequestLabels,
    usage: TokenUsage,
    seconds: { total: number; firstChunk?: number },
    errorType: string | undefined,
  ): void {
    const series = this.seriesFor(labels);
    series.input.observe(usage.input);
    series.output.observe(usage.output);
    if (usage.cachedInput > 0) series.cachedInput.observe(usage.cachedInput);
    if (usage.reasoning > 0) series.reasoning.observe(usage.reasoning);
    const error = errorType ?? '';
    let duration = series.duration.get(error);
    if (!duration) {
      duration = this.requestDuration.child(labels.operation, labels.model, labels.backend, error);
      series.duration.set(error, duration);
    }
    duration.observe(seconds.total);
    if (seconds.firstChunk !== undefined) {
      series.firstToken.observe(seconds.firstChunk);
      if (usage.output > 1) series.perOutputToken.observe((seconds.total - seconds.firstChunk) / (usage.output - 1));
    }
  }

  /** Tokens and money of one response, for the consumer. Only configs with consumers or prices call this. */
  recordSpend(labels: SpendLabels, usage: TokenUsage, price: ModelPrice | undefined): void {
    const series = this.spendSeriesFor(labels);
    if (usage.input > 0) series.input.inc(usage.input);
    if (usage.output > 0) series.output.inc(usage.output);
    if (usage.cachedInput > 0) series.cachedInput.inc(usage.cachedInput);
    if (usage.reasoning > 0) series.reasoning.inc(usage.reasoning);
    if (price !== undefined) {
      const usd = usdOf(picoUsdOf(usage, price));
      if (usd > 0) series.usd.inc(usd);
    }
  }

  recordBudgetRejection(budget: string | undefined, consumer: string | undefined): void {
    this.budgetRejections.inc({ budget: budget ?? UNKNOWN_BUDGET, consumer: consumer ?? NO_CONSUMER });
  }

  /**
   * A budget's used share as a response's rate-limit headers showed it. Within a window the share only grows, so the
   * largest seen stands (answers of concurrent requests arrive in any order); a new window starts over.
   */
  recordBudgetUse(use: BudgetUse, consumer: string | undefined): void {
    const consumerLabel = consumer ?? NO_CONSUMER;
    const key = `${use.name}\u0000${consumerLabel}`;
    const known = this.budgetUse.get(key);
    if (known !== undefined && known.endsAt >= use.windowEndsAt) {
      // A late answer from a window that already ended says nothing about the current one.
      if (known.endsAt === use.windowEndsAt && use.usedRatio > known.ratio) known.ratio = use.usedRatio;
      return;
    }
    if (known === undefined && this.budgetUse.size >= MAX_CACHED_SERIES) this.evictBudgetUse();
    this.budgetUse.set(key, {
      budget: use.name,
      consumer: consumerLabel,
      ratio: use.usedRatio,
      endsAt: use.windowEndsAt,
    });
  }

  /** Makes room: windows that have ended go first, else the entry whose window ends soonest. */
  private evictBudgetUse(): void {
    const now = Date.now();
    let soonest: string | undefined;
    let soonestEnd = Infinity;
    for (const [key, use] of this.budgetUse) {
      if (use.endsAt <= now) this.budgetUse.delete(key);
      else if (use.endsAt < soonestEnd) [soonest, soonestEnd] = [key, use.endsAt];
    }
    if (this.budgetUse.size >= MAX_CACHED_SERIES && soonest !== undefined) this.budgetUse.delete(soonest);
  }

  /**
   * With tracing on: `ai_gateway_trace_spans_lost_total{reason}`, the sampled spans the tracer lost (`dropped`: its
   * queue was full or a span could not be encoded; `export_failed`: the collector refused them or did not answer),
   * read from the tracer at each scrape. Without tracing the series does not exist.
   */
  reportLostSpans(lost: () => { dropped: number; failed: number }): void {
    new Counter({
      name: 'ai_gateway_trace_spans_lost_total',
      help: 'Sampled trace spans the processor did not deliver to the collector, by reason (dropped, export_failed).',
      labelNames: ['reason'],
      registers: [this.registry],
      collect() {
        const { dropped, failed } = lost();
        this.reset();
        this.inc({ reason: 'dropped' }, dropped);
        this.inc({ reason: 'export_failed' }, failed);
      },
    });
  }

  /** A request moved on from one backend to the next (every label comes from the configuration). */
  recordFallback(route: string, from: string, to: string, reason: FailoverReason): void {
    this.fallbacks.inc({ route, from_backend: from, to_backend: to, reason });
  }

  private spendSeriesFor(labels: SpendLabels): SpendSeries {
    const consumer = labels.consumer ?? NO_CONSUMER;
    const key = `${consumer}\u0000${labels.model}\u0000${labels.backend}`;
    let series = this.spendSeries.get(key);
    if (series) return series;
    if (this.spendSeries.size >= MAX_CACHED_SERIES) this.spendSeries.clear();
    const tokens = (type: string) =>
      this.consumerTokens.labels({
        consumer,
        gen_ai_request_model: labels.model,
        gen_ai_provider_name: labels.backend,
        gen_ai_token_type: type,
      });
    series = {
      input: tokens('input'),
      output: tokens('output'),
      cachedInput: tokens('cached_input'),
      reasoning: tokens('reasoning'),
      usd: this.consumerSpend.labels({
        consumer,
        gen_ai_request_model: labels.model,
        gen_ai_provider_name: labels.backend,
      }),
    };
    this.spendSeries.set(key, series);
    return series;
  }

  private seriesFor(labels: RequestLabels): RequestSeries {
    const key = `${labels.operation}\u0000${labels.model}\u0000${labels.backend}`;
    let series = this.series.get(key);
    if (series) return series;
    if (this.series.size >= MAX_CACHED_SERIES) this.series.clear();
    const { operation, model, backend } = labels;
    series = {
      input: this.tokenUsage.child('input', operation, model, backend),
      output: this.tokenUsage.child('output', operation, model, backend),
      cachedInput: this.tokenUsage.child('cached_input', operation, model, backend),
      reasoning: this.tokenUsage.child('reasoning', operation, model, backend),
      duration: new Map(),
      firstToken: this.timeToFirstToken.child(operation, model, backend),
      perOutputToken: this.timePerOutputToken.child(operation, model, backend),
    };
    this.series.set(key, series);
    return series;
  }
}
