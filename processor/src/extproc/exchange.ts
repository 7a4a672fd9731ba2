/**
 * A request the processor routed to a backend, and the one place that accounts for it: the token metadata
 * Envoy's budgets charge, the request metrics, and the backend's circuit breaker. Every outcome of a routed
 * request (answered, cut, failed before or after the backend) ends here exactly once.
 */
import type { ModelPrice } from '@ai-gateway-constructs/processor-config';
import type { BackendRuntime, RuntimeConfig } from '../config/runtime';
import type { ConsumerRuntime } from '../governance';
import type { EncodedStruct } from '../grpc/messages';
import {
  ZERO_USAGE,
  type ClientApi,
  type Operation,
  type ResponseTranslator,
  type TokenUsage,
} from '../translate/types';
import { genAiOperationName, type RequestSpan } from '../tracing';
import type { ProcessorContext } from './context';

export interface ExchangeRoute {
  runtime: RuntimeConfig;
  api: ClientApi;
  operation: Operation;
  model: string;
  /** The configured model match that accepted `model` (the model itself only for an Exact match): the metric label. */
  modelLabel: string;
  /** The model sent to the backend (a rule's `modelNameOverride`, else `model`): money costs price it. */
  upstreamModel: string;
  /** The price of `upstreamModel`, if it has one. */
  price: ModelPrice | undefined;
  /** The AIRoute config name whose rule matched. */
  routeName: string;
  /** The consumer the request came from, if known. */
  consumer: ConsumerRuntime | undefined;
  backend: BackendRuntime;
  response: ResponseTranslator;
}

/** The metadata of a request that reached no backend (local replies): zero tokens, no model, no backend. */
export function localReplyMetadata(context: ProcessorContext, runtime: RuntimeConfig): EncodedStruct {
  return runtime.usageMetadata.encode({ usage: ZERO_USAGE, model: '', backend: '' }, context.costFailed);
}

export class Exchange {
  private readonly startedAt = performance.now();
  /**
   * Wall-clock time the request was routed: Envoy checks its budgets right after (the rate-limit filter runs once
   * the processor answered the request), so the window a budget's headers speak of is the one containing this time.
   */
  readonly routedAtMs = Date.now();
  private firstChunkAt: number | undefined;
  private settled = false;
  /** The usage last written into metadata; a stream cut after it is charged that much. */
  private writtenTotal = 0;
  private writtenInput = 0;
  /** The request's trace span (tracing on), ended when the exchange settles. */
  span: RequestSpan | undefined;

  constructor(
    private readonly context: ProcessorContext,
    readonly route: ExchangeRoute,
  ) {
    context.breakers.acquire(route.backend.config.name, route.runtime.config.circuitBreaker);
  }

  get backendName(): string {
    return this.route.backend.config.name;
  }

  get isSettled(): boolean {
    return this.settled;
  }

  firstChunk(): void {
    this.firstChunkAt ??= performance.now();
  }

  /** The backend's answer (or Envoy's on its behalf) says whether the backend is healthy. */
  backendResult(healthy: boolean): void {
    this.context.breakers.record(this.backendName, healthy, this.route.runtime.config.circuitBreaker);
  }

  /** The usage so far, when it grew since last written (Envoy keeps the last metadata written). */
  progress(): EncodedStruct | undefined {
    const usage = this.route.response.usage;
    if (usage.total === this.writtenTotal && usage.input === this.writtenInput) return undefined;
    return this.metadata(usage);
  }

  /** The usage so far, written whether or not it grew (a stream's headers: numbers in place before any chunk). */
  current(): EncodedStruct {
    return this.metadata(this.route.response.usage);
  }

  /** The exchange is over: final usage into metadata and metrics. `errorType` for answers that are failures. */
  finish(errorType?: string): EncodedStruct {
    const usage = this.route.response.usage;
    this.settle(usage, errorType);
    return this.metadata(usage);
  }

  /**
   * Failed before anything reached the client from the backend (no credential, a backend Envoy could not reach):
   * zero tokens, the backend's failure for its breaker and metrics.
   */
  failBackend(errorType: string): EncodedStruct {
    this.backendResult(false);
    this.settle(ZERO_USAGE, errorType);
    return this.metadata(ZERO_USAGE);
  }

  /** Answered without the backend for reasons that say nothing about it: its probe slot is freed, no metrics. */
  withdraw(): void {
    if (this.settled) return;
    this.settled = true;
    this.context.breakers.release(this.backendName);
  }

  /** The stream ended before the exchange did: what was counted is recorded; the probe slot is freed. */
  abandon(cancelled: boolean): void {
    if (this.settled) return;
    this.context.breakers.release(this.backendName);
    this.settle(this.route.response.usage, cancelled ? 'cancelled' : 'incomplete');
  }

  private settle(usage: TokenUsage, errorType: string | undefined): void {
    if (this.settled) return;
    this.settled = true;
    this.span?.end({ usage, errorType });
    const now = performance.now();
    const route = this.route;
    this.context.metrics.recordResponse(
      // The spans' `gen_ai.operation.name`: chat for chat completions, Messages and the Responses API alike.
      { operation: genAiOperationName(route.operation), model: route.modelLabel, backend: this.backendName },
      usage,
      {
        total: (now - this.startedAt) / 1000,
        firstChunk: this.firstChunkAt === undefined ? undefined : (this.firstChunkAt - this.startedAt) / 1000,
      },
      errorType,
    );
    if (route.runtime.governance.counted) {
      this.context.metrics.recordSpend(
        {
          consumer: route.consumer?.id,
          // A priced model is a name from the config; otherwise the configured match, as for the other series.
          model: route.price?.model ?? route.modelLabel,
          backend: this.backendName,
        },
        usage,
        route.price,
      );
    }
  }

  private metadata(usage: TokenUsage): EncodedStruct {
    this.writtenTotal = usage.total;
    this.writtenInput = usage.input;
    return this.route.runtime.usageMetadata.encode(
      { usage, model: this.route.model, upstreamModel: this.route.upstreamModel, backend: this.backendName },
      this.context.costFailed,
    );
  }
}
