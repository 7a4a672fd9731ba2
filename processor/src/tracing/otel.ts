/**
 * The OpenTelemetry side of request tracing (loaded only when tracing is on; see ./index.ts): a tracer provider with
 * a parent-based ratio sampler and a bounded batch span processor exporting OTLP/HTTP in protobuf (the binary
 * encoding: half the bytes of OTLP JSON; encoded by ./otlp-encode.ts, sent by the maintained transport, see
 * ./otlp-exporter.ts), and the span of one request with the GenAI semantic conventions.
 *
 * A span is created when the request is routed (its name, `{operation} {model}`, is known then) or when it ends
 * without being routed, with the start time of the request headers. An unsampled request gets a non-recording span
 * and skips all attribute work. A recorded span gets its attributes once, when it ends: every `setAttribute` on an
 * SDK span validates the value and counts the attributes, so one call with everything costs less than one per fact.
 */
import {
  defaultTextMapGetter,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import {
  ATTR_SERVICE_NAME,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
} from '@opentelemetry/semantic-conventions';
import {
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_REQUEST_STREAM,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
} from '@opentelemetry/semantic-conventions/incubating';
import {
  genAiOperationName,
  genAiProviderName,
  SPAN_BATCH_SIZE,
  SPAN_EXPORT_DELAY_MS,
  SPAN_EXPORT_TIMEOUT_MS,
  SPAN_QUEUE_SIZE,
  type RequestSpan,
  type RequestTracer,
  type SpanOutcome,
  type SpanRoute,
  type TracingOptions,
} from './index';
import { OtlpSpanExporter } from './otlp-exporter';
import { EncodingBatchSpanProcessor } from './span-batches';
import { ResponseFacts } from './response-facts';

/** The gateway's own attributes (names from the config, never from the client). */
export const ATTR_ROUTE = 'ai_gateway.route';
export const ATTR_BACKEND = 'ai_gateway.backend';
export const ATTR_MODEL_RULE = 'ai_gateway.model_rule';
export const ATTR_CONSUMER = 'ai_gateway.consumer';
export const ATTR_UPSTREAM_MODEL = 'ai_gateway.upstream_model';
/** Failing over within the request: the backend of the last attempt, and how many attempts were made in all. */
export const ATTR_FALLBACK_BACKEND = 'ai_gateway.fallback.backend';
export const ATTR_FALLBACK_ATTEMPTS = 'ai_gateway.fallback.attempts';
/** Content capture (off unless `contentMaxBytes` > 0): the client's request body and the answer it got, cut. */
export const ATTR_REQUEST_BODY = 'ai_gateway.request.body';
export const ATTR_RESPONSE_BODY = 'ai_gateway.response.body';
export const ATTR_REQUEST_BODY_TRUNCATED = 'ai_gateway.request.body_truncated';
export const ATTR_RESPONSE_BODY_TRUNCATED = 'ai_gateway.response.body_truncated';

const INSTRUMENTATION_NAME = 'ai-gateway-processor';
const propagator = new W3CTraceContextPropagator();

export function createOtelTracer(options: TracingOptions): RequestTracer {
  const exporter = new OtlpSpanExporter({ url: options.endpoint, timeoutMillis: SPAN_EXPORT_TIMEOUT_MS });
  const batches = new EncodingBatchSpanProcessor(exporter, {
    maxQueueSize: SPAN_QUEUE_SIZE,
    maxExportBatchSize: SPAN_BATCH_SIZE,
    scheduledDelayMillis: SPAN_EXPORT_DELAY_MS,
    exportTimeoutMillis: SPAN_EXPORT_TIMEOUT_MS,
  });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }),
    // A ratio of 1 samples every new trace: the always-on sampler says so without hashing the trace id.
    sampler: new ParentBasedSampler({
      root: options.samplingRatio >= 1 ? new AlwaysOnSampler() : new TraceIdRatioBasedSampler(options.samplingRatio),
    }),
    spanProcessors: [batches],
  });
  const tracer = provider.getTracer(INSTRUMENTATION_NAME);
  let stopped: Promise<void> | undefined;
  return {
    start: (traceparent, tracestate) =>
      new OtelRequestSpan(tracer, parentContext(traceparent, tracestate), options.contentMaxBytes),
    lostSpans: () => ({ dropped: batches.dropped, failed: batches.failed }),
    shutdown(timeoutMs) {
      stopped ??= provider.shutdown();
      return Promise.race([stopped, new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref())]);
    },
  };
}

/** The context a request's span continues: Envoy's `traceparent` (and `tracestate`), else a new trace. */
function parentContext(traceparent: string | undefined, tracestate: string | undefined): Context {
  if (traceparent === undefined) return ROOT_CONTEXT;
  const carrier: Record<string, string> = { traceparent };
  if (tracestate !== undefined) carrier.tracestate = tracestate;
  return propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
}

/** Epoch milliseconds with sub-millisecond precision (a span's start time). */
function now(): number {
  return performance.timeOrigin + performance.now();
}

class OtelRequestSpan implements RequestSpan {
  private readonly startTime = now();
  private span: Span | undefined;
  private route: SpanRoute | undefined;
  private ended = false;
  private status: number | undefined;
  private facts: ResponseFacts | undefined;
  private requestContent: string | undefined;
  private requestContentTruncated = false;
  private fallback: { backend: string; attempt: number } | undefined;
  private responseContent: Buffer[] | undefined;
  private responseContentBytes = 0;
  private responseContentTruncated = false;

  constructor(
    private readonly tracer: Tracer,
    private readonly parent: Context,
    private readonly contentMaxBytes: number,
  ) {}

  routed(route: SpanRoute): void {
    if (this.ended || this.span) return;
    const span = this.open(`${genAiOperationName(route.operation)} ${route.requestModel}`);
    if (!span.isRecording()) return;
    this.route = route;
    this.facts = new ResponseFacts();
  }

  requestBody(body: Buffer): void {
    if (this.contentMaxBytes === 0 || this.ended || !this.route) return;
    this.requestContent = body.toString('utf8', 0, Math.min(body.length, this.contentMaxBytes));
    this.requestContentTruncated = body.length > this.contentMaxBytes;
  }

  responseStatus(status: number): void {
    this.status = status;
  }

  responseBytes(chunk: Buffer): void {
    if (this.ended || chunk.length === 0 || !this.facts) return;
    this.facts.push(chunk);
    if (this.contentMaxBytes === 0) return;
    const room = this.contentMaxBytes - this.responseContentBytes;
    if (room <= 0) {
      this.responseContentTruncated = true;
      return;
    }
    // A copy: the chunk's memory belongs to the message it came in.
    const part = Buffer.from(chunk.subarray(0, room));
    (this.responseContent ??= []).push(part);
    this.responseContentBytes += part.length;
    if (chunk.length > room) this.responseContentTruncated = true;
  }

  fellBack(backend: string, attempt: number): void {
    if (this.ended || !this.route) return;
    this.fallback = { backend, attempt };
  }

  end(outcome: SpanOutcome): void {
    if (this.ended) return;
    this.ended = true;
    const span = this.span ?? this.open('ai_gateway.request');
    if (span.isRecording()) {
      const status = outcome.status ?? this.status;
      // An answer of 400 or more is a failure of the call as the client sees it (HTTP client spans).
      const errorType = outcome.errorType ?? (status !== undefined && status >= 400 ? String(status) : undefined);
      span.setAttributes(this.attributes(status, outcome.usage, errorType));
      if (errorType !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: errorType });
    }
    span.end();
    this.facts = undefined;
    this.responseContent = undefined;
    this.requestContent = undefined;
  }

  /** Everything the span says, in one object (values from the config, validated routing, or the answer's facts). */
  private attributes(status: number | undefined, usage: SpanOutcome['usage'], errorType: string | undefined) {
    const attributes: Attributes = {};
    const route = this.route;
    if (route) {
      attributes[ATTR_GEN_AI_OPERATION_NAME] = genAiOperationName(route.operation);
      attributes[ATTR_GEN_AI_PROVIDER_NAME] = genAiProviderName(route.backendSchema);
      attributes[ATTR_GEN_AI_REQUEST_MODEL] = route.requestModel;
      attributes[ATTR_ROUTE] = route.route;
      attributes[ATTR_BACKEND] = route.backend;
      // Every attribute costs CPU per request (kept, serialized, exported): those repeating another are left out.
      if (route.stream) attributes[ATTR_GEN_AI_REQUEST_STREAM] = true;
      if (route.modelRule !== route.requestModel) attributes[ATTR_MODEL_RULE] = route.modelRule;
      if (route.upstreamModel !== route.requestModel) attributes[ATTR_UPSTREAM_MODEL] = route.upstreamModel;
      if (route.consumer !== undefined) attributes[ATTR_CONSUMER] = route.consumer;
      if (this.requestContent !== undefined) {
        attributes[ATTR_REQUEST_BODY] = this.requestContent;
        if (this.requestContentTruncated) attributes[ATTR_REQUEST_BODY_TRUNCATED] = true;
      }
      if (this.fallback) {
        attributes[ATTR_FALLBACK_BACKEND] = this.fallback.backend;
        attributes[ATTR_FALLBACK_ATTEMPTS] = this.fallback.attempt;
      }
    }
    if (status !== undefined && status !== 0) attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = status;
    if (usage && route) {
      attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS] = usage.input;
      attributes[ATTR_GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output;
      if (usage.cachedInput > 0) attributes[ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cachedInput;
      if (usage.cacheWriteInput) attributes[ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cacheWriteInput;
      if (usage.reasoning > 0) attributes[ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning;
    }
    const facts = this.facts;
    if (facts?.model !== undefined) attributes[ATTR_GEN_AI_RESPONSE_MODEL] = facts.model;
    if (facts && facts.finishReasons.length > 0) attributes[ATTR_GEN_AI_RESPONSE_FINISH_REASONS] = facts.finishReasons;
    if (this.responseContent) {
      attributes[ATTR_RESPONSE_BODY] = Buffer.concat(this.responseContent).toString('utf8');
      if (this.responseContentTruncated) attributes[ATTR_RESPONSE_BODY_TRUNCATED] = true;
    }
    if (errorType !== undefined) attributes[ATTR_ERROR_TYPE] = errorType;
    return attributes;
  }

  private open(name: string): Span {
    const span = this.tracer.startSpan(name, { kind: SpanKind.CLIENT, startTime: this.startTime }, this.parent);
    this.span = span;
    return span;
  }
}
