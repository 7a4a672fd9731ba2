/**
 * The OpenTelemetry side of request tracing (loaded only when tracing is on; see ./index.ts): a parent-based ratio
 * sampler and a bounded batch span processor exporting OTLP/HTTP in protobuf (the binary encoding: half the bytes of
 * OTLP JSON; encoded by ./otlp-encode.ts, sent by the maintained transport, see ./otlp-exporter.ts), and the span of
 * one request with the GenAI semantic conventions.
 *
 * A span is created when the request is routed (its name, `{operation} {model}`, is known then) or when it ends
 * without being routed, with the start time of the request headers. An unsampled request gets no span and skips all
 * attribute work. A sampled span gets its attributes once, when it ends.
 *
 * The span is our own record (`EndedRequestSpan`, the SDK's `ReadableSpan` shape, made once at the end), not the
 * SDK's tracer and span: those cost several µs per request (attribute validation per key, span limits, the tracer's
 * self-metrics, three time conversions, a span processor fan-out) for features a request span does not use (events,
 * links, span limits, active context). The maintained packages still decide everything that has rules: the W3C
 * trace context (`@opentelemetry/core`'s propagator), sampling (the SDK's parent-based and ratio samplers, asked as
 * the SDK's tracer asks them), the resource, the OTLP transport; ids are random bytes, drawn as ./ids.ts says. What
 * the record holds is what the SDK's span would hold for the same request: test/tracing/request-span.test.ts
 * compares the bytes both export, and bench/tracing-span.bench.ts measures both (BENCH_RECORD_ONLY=1).
 */
import {
  defaultTextMapGetter,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type HrTime,
  type Link,
  type SpanContext,
  type SpanStatus,
} from '@opentelemetry/api';
import { millisToHrTime, W3CTraceContextPropagator, type InstrumentationScope } from '@opentelemetry/core';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import {
  AlwaysOnSampler,
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type IdGenerator,
  type ReadableSpan,
  type Sampler,
  type TimedEvent,
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
  SPAN_BATCH_MAX_BYTES,
  SPAN_BATCH_SIZE,
  SPAN_EXPORT_DELAY_MS,
  SPAN_EXPORT_TIMEOUT_MS,
  SPAN_QUEUE_MAX_BYTES,
  SPAN_QUEUE_SIZE,
  type RequestSpan,
  type RequestTracer,
  type SpanOutcome,
  type SpanRoute,
  type TracingOptions,
} from './index';
import { PooledIdGenerator } from './ids';
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
/** What a span without start attributes, links or events has (shared, never written). */
const NO_ATTRIBUTES: Attributes = Object.freeze({});
const NO_LINKS: Link[] = Object.freeze([]) as unknown as Link[];
const NO_EVENTS: TimedEvent[] = Object.freeze([]) as unknown as TimedEvent[];
const UNSET: SpanStatus = Object.freeze({ code: SpanStatusCode.UNSET });

export function createOtelTracer(options: TracingOptions): RequestTracer {
  const exporter = new OtlpSpanExporter({ url: options.endpoint, timeoutMillis: SPAN_EXPORT_TIMEOUT_MS });
  const batches = new EncodingBatchSpanProcessor(exporter, {
    maxQueueSize: SPAN_QUEUE_SIZE,
    maxExportBatchSize: SPAN_BATCH_SIZE,
    maxExportBatchBytes: SPAN_BATCH_MAX_BYTES,
    maxQueueBytes: SPAN_QUEUE_MAX_BYTES,
    scheduledDelayMillis: SPAN_EXPORT_DELAY_MS,
    exportTimeoutMillis: SPAN_EXPORT_TIMEOUT_MS,
  });
  const spans = new RequestSpans({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }),
    // A ratio of 1 samples every new trace: the always-on sampler says so without hashing the trace id.
    sampler: new ParentBasedSampler({
      root: options.samplingRatio >= 1 ? new AlwaysOnSampler() : new TraceIdRatioBasedSampler(options.samplingRatio),
    }),
    idGenerator: new PooledIdGenerator(),
    ended: (span) => batches.onEnd(span),
  });
  let stopped: Promise<void> | undefined;
  return {
    start: (traceparent, tracestate) =>
      new OtelRequestSpan(spans, parentContext(traceparent, tracestate), options.contentMaxBytes),
    lostSpans: () => ({ dropped: batches.dropped, failed: batches.failed }),
    shutdown(timeoutMs) {
      stopped ??= batches.shutdown();
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

/** Epoch milliseconds with sub-millisecond precision (a span's start and end times). */
function now(): number {
  return performance.timeOrigin + performance.now();
}

export interface RequestSpansOptions {
  readonly resource: Resource;
  readonly sampler: Sampler;
  readonly idGenerator: IdGenerator;
  /** Takes each sampled span as it ends (the batch span processor). */
  readonly ended: (span: ReadableSpan) => void;
}

/** A sampled span while its request runs: its ids and parent, decided when it started. */
export interface StartedSpan {
  readonly name: string;
  readonly context: SpanContext;
  readonly parent: SpanContext | undefined;
  readonly startTime: number;
  readonly samplerAttributes: Attributes | undefined;
}

/**
 * Starts and ends the spans of requests as the SDK's tracer would for one `CLIENT` span without links or start
 * attributes: the parent's trace or a new one, the sampler's decision, trace state and attributes, a sampled span
 * handed to `ended` when it ends, nothing at all for an unsampled one.
 */
export class RequestSpans {
  readonly scope: InstrumentationScope = { name: INSTRUMENTATION_NAME, version: undefined, schemaUrl: undefined };

  constructor(private readonly options: RequestSpansOptions) {}

  /** The span `name` under `parent` starting at `startTime` (epoch ms), if sampled; undefined otherwise. */
  start(name: string, parent: Context, startTime: number): StartedSpan | undefined {
    const parentSpanContext = trace.getSpanContext(parent);
    const { idGenerator, sampler } = this.options;
    const spanId = idGenerator.generateSpanId();
    const valid = parentSpanContext !== undefined && trace.isSpanContextValid(parentSpanContext);
    const traceId = valid ? parentSpanContext.traceId : idGenerator.generateTraceId();
    const result = sampler.shouldSample(parent, traceId, name, SpanKind.CLIENT, NO_ATTRIBUTES, NO_LINKS);
    if (result.decision !== SamplingDecision.RECORD_AND_SAMPLED) return undefined;
    const traceState = result.traceState ?? (valid ? parentSpanContext.traceState : undefined);
    return {
      name,
      context: { traceId, spanId, traceFlags: TraceFlags.SAMPLED, traceState },
      parent: valid ? parentSpanContext : undefined,
      startTime,
      samplerAttributes: result.attributes,
    };
  }

  /** Ends `span` at `endTime` (epoch ms) with `attributes` and `status`. */
  end(span: StartedSpan, endTime: number, attributes: Attributes, status: SpanStatus): void {
    const all = span.samplerAttributes ? { ...span.samplerAttributes, ...attributes } : attributes;
    this.options.ended(new EndedRequestSpan(span, this.options.resource, this.scope, endTime, all, status));
  }
}

/** A request span that ended, as the span processor and the encoder read it. */
export class EndedRequestSpan implements ReadableSpan {
  readonly name: string;
  readonly parentSpanContext: SpanContext | undefined;
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  private readonly context: SpanContext;

  constructor(
    span: StartedSpan,
    readonly resource: Resource,
    readonly instrumentationScope: InstrumentationScope,
    endTime: number,
    readonly attributes: Attributes,
    readonly status: SpanStatus,
  ) {
    this.name = span.name;
    this.context = span.context;
    this.parentSpanContext = span.parent;
    this.startTime = millisToHrTime(span.startTime);
    // The clock is monotonic: a span never ends before it started (the SDK clamps such a span to no duration).
    this.endTime = millisToHrTime(Math.max(endTime, span.startTime));
  }

  get kind(): SpanKind {
    return SpanKind.CLIENT;
  }
  spanContext(): SpanContext {
    return this.context;
  }
  get links(): Link[] {
    return NO_LINKS;
  }
  get events(): TimedEvent[] {
    return NO_EVENTS;
  }
  get duration(): HrTime {
    const nanos = this.endTime[1] - this.startTime[1];
    const seconds = this.endTime[0] - this.startTime[0];
    return nanos < 0 ? [seconds - 1, nanos + 1e9] : [seconds, nanos];
  }
  get ended(): boolean {
    return true;
  }
  get droppedAttributesCount(): number {
    return 0;
  }
  get droppedEventsCount(): number {
    return 0;
  }
  get droppedLinksCount(): number {
    return 0;
  }
}

class OtelRequestSpan implements RequestSpan {
  private readonly startTime = now();
  /** Whether the span was started (routed, or ending); `span` is set if it was sampled. */
  private opened = false;
  private span: StartedSpan | undefined;
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
    private readonly spans: RequestSpans,
    private readonly parent: Context,
    private readonly contentMaxBytes: number,
  ) {}

  routed(route: SpanRoute): void {
    if (this.ended || this.opened) return;
    if (!this.open(`${genAiOperationName(route.operation)} ${route.requestModel}`)) return;
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
    const span = this.opened ? this.span : this.open('ai_gateway.request');
    if (span) {
      const status = outcome.status ?? this.status;
      // An answer of 400 or more is a failure of the call as the client sees it (HTTP client spans).
      const errorType = outcome.errorType ?? (status !== undefined && status >= 400 ? String(status) : undefined);
      this.spans.end(
        span,
        now(),
        this.attributes(status, outcome.usage, errorType),
        errorType !== undefined ? { code: SpanStatusCode.ERROR, message: errorType } : UNSET,
      );
    }
    this.span = undefined;
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

  /** Starts the span (sampled or not); the sampled one. */
  private open(name: string): StartedSpan | undefined {
    this.opened = true;
    this.span = this.spans.start(name, this.parent, this.startTime);
    return this.span;
  }
}
