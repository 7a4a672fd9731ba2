/** Prometheus metrics with OpenTelemetry GenAI names (dots become underscores, seconds suffixed). */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TokenUsage } from './translate/types';

const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304];
const DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
const TOKEN_TIME_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

export interface RequestLabels {
  operation: string;
  model: string;
  backend: string;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly tokenUsage: Histogram<'gen_ai_token_type' | 'gen_ai_operation_name' | 'gen_ai_request_model' | 'gen_ai_provider_name'>;
  private readonly requestDuration: Histogram<'gen_ai_operation_name' | 'gen_ai_request_model' | 'gen_ai_provider_name' | 'error_type'>;
  private readonly timeToFirstToken: Histogram<'gen_ai_operation_name' | 'gen_ai_request_model' | 'gen_ai_provider_name'>;
  private readonly timePerOutputToken: Histogram<'gen_ai_operation_name' | 'gen_ai_request_model' | 'gen_ai_provider_name'>;
  readonly configReloads: Counter<'result'>;
  readonly localReplies: Counter<'status'>;
  readonly costErrors: Counter<'metadata_key'>;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.tokenUsage = new Histogram({
      name: 'gen_ai_client_token_usage',
      help: 'Tokens used per request, by token type (input, output, cached_input, reasoning), model and backend.',
      labelNames: ['gen_ai_token_type', 'gen_ai_operation_name', 'gen_ai_request_model', 'gen_ai_provider_name'],
      buckets: TOKEN_BUCKETS,
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'gen_ai_server_request_duration_seconds',
      help: 'Time from the request body reaching the processor to the end of the response.',
      labelNames: ['gen_ai_operation_name', 'gen_ai_request_model', 'gen_ai_provider_name', 'error_type'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.timeToFirstToken = new Histogram({
      name: 'gen_ai_server_time_to_first_token_seconds',
      help: 'Time from the request to the first streamed response chunk.',
      labelNames: ['gen_ai_operation_name', 'gen_ai_request_model', 'gen_ai_provider_name'],
      buckets: TOKEN_TIME_BUCKETS,
      registers,
    });
    this.timePerOutputToken = new Histogram({
      name: 'gen_ai_server_time_per_output_token_seconds',
      help: 'Time per output token after the first chunk of a streamed response.',
      labelNames: ['gen_ai_operation_name', 'gen_ai_request_model', 'gen_ai_provider_name'],
      buckets: TOKEN_TIME_BUCKETS,
      registers,
    });
    this.configReloads = new Counter({
      name: 'ai_gateway_config_reloads_total',
      help: 'Config and secret reloads by result (success, rejected).',
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
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  recordResponse(
    labels: RequestLabels,
    usage: TokenUsage,
    seconds: { total: number; firstChunk?: number },
    errorType: string | undefined,
  ): void {
    const base = { gen_ai_operation_name: labels.operation, gen_ai_request_model: labels.model, gen_ai_provider_name: labels.backend };
    this.tokenUsage.observe({ ...base, gen_ai_token_type: 'input' }, usage.input);
    this.tokenUsage.observe({ ...base, gen_ai_token_type: 'output' }, usage.output);
    if (usage.cachedInput > 0) this.tokenUsage.observe({ ...base, gen_ai_token_type: 'cached_input' }, usage.cachedInput);
    if (usage.reasoning > 0) this.tokenUsage.observe({ ...base, gen_ai_token_type: 'reasoning' }, usage.reasoning);
    this.requestDuration.observe({ ...base, error_type: errorType ?? '' }, seconds.total);
    if (seconds.firstChunk !== undefined) {
      this.timeToFirstToken.observe(base, seconds.firstChunk);
      if (usage.output > 1) this.timePerOutputToken.observe(base, (seconds.total - seconds.firstChunk) / (usage.output - 1));
    }
  }
}
