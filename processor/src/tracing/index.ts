/**
 * Request tracing: one OpenTelemetry span per ext_proc stream (one HTTP request through Envoy), with the GenAI
 * semantic conventions, continued from the W3C `traceparent`/`tracestate` Envoy forwards and exported over
 * OTLP/HTTP.
 *
 * Off by default. When off, the processor holds no tracer at all (`undefined`): a session allocates nothing for
 * tracing, and the OpenTelemetry SDK is never loaded (the bundle keeps it in a lazily required chunk).
 */
import type { BackendSchema } from '@ai-gateway-constructs/processor-config';
import type { ClientApi, Operation, TokenUsage } from '../translate/types';

export interface TracingOptions {
  /** OTLP/HTTP traces URL of the collector (e.g. `http://otel-collector:4318/v1/traces`). */
  readonly endpoint: string;
  /** `service.name` of the resource. */
  readonly serviceName: string;
  /** Share of new traces sampled (0..1); a sampled or unsampled parent from `traceparent` decides for its own. */
  readonly samplingRatio: number;
  /**
   * Prompt and completion bytes recorded per span (each; 0: never). Off unless an operator asks: they hold whatever
   * users send and receive.
   */
  readonly contentMaxBytes: number;
}

/** The batch span processor's bounds: spans beyond the queue are dropped, never held. */
export const SPAN_QUEUE_SIZE = 2048;
export const SPAN_BATCH_SIZE = 512;
/**
 * Bytes of one export at most (a batch is sent once it reaches them) and of every encoded span held at once (waiting
 * or being exported; spans beyond are dropped): with recorded content of up to 64 KiB twice per span, 512 spans
 * would be a 64 MiB request, far above what a collector takes (20 MiB by default) and a real share of the pod's memory.
 */
export const SPAN_BATCH_MAX_BYTES = 4 * 1024 * 1024;
export const SPAN_QUEUE_MAX_BYTES = 16 * 1024 * 1024;
export const SPAN_EXPORT_DELAY_MS = 2000;
export const SPAN_EXPORT_TIMEOUT_MS = 10_000;

/** What the route decision tells a span; every value comes from the config or was validated by routing. */
export interface SpanRoute {
  readonly api: ClientApi;
  readonly operation: Operation;
  /** The model the client named (validated: at most 256 bytes, no control characters). */
  readonly requestModel: string;
  /** The model sent upstream. */
  readonly upstreamModel: string;
  /** The configured model match that accepted it. */
  readonly modelRule: string;
  readonly route: string;
  readonly backend: string;
  readonly backendSchema: BackendSchema['name'];
  readonly consumer: string | undefined;
  readonly stream: boolean;
}

/** How a request ended. */
export interface SpanOutcome {
  readonly usage?: Readonly<TokenUsage>;
  /** Set for failures: the span's status is ERROR and `error.type` says which. */
  readonly errorType?: string;
  /** The HTTP status the client got, when known here (local replies). */
  readonly status?: number;
}

/** The span of one request. Every method is cheap and safe to call after `end` (it does nothing then). */
export interface RequestSpan {
  /** The request was routed to a backend. */
  routed(route: SpanRoute): void;
  /** The client's request body (recorded only with content capture on, bounded). */
  requestBody(body: Buffer): void;
  /** The response status the backend (or Envoy for it) answered. */
  responseStatus(status: number): void;
  /** Bytes the client gets: read for the response model and finish reasons (and content, when on). */
  responseBytes(chunk: Buffer): void;
  /**
   * The request moved on to `backend` (a fallback attempt the processor sends itself, the `attempt`th in all, the
   * first being Envoy's); the last call names the backend that answered or failed last.
   */
  fellBack(backend: string, attempt: number): void;
  /** Ends the span once; later calls do nothing. */
  end(outcome: SpanOutcome): void;
}

export interface RequestTracer {
  /** A span for a request whose headers just arrived (`traceparent`/`tracestate` as Envoy forwarded them). */
  start(traceparent: string | undefined, tracestate: string | undefined): RequestSpan;
  /** Exports what is queued, then stops; bounded by `timeoutMs`. */
  shutdown(timeoutMs: number): Promise<void>;
  /** Sampled spans lost so far: dropped (queue full, not encodable) and in exports that failed. */
  lostSpans(): { dropped: number; failed: number };
}

/**
 * The tracer for `options`. Loads the OpenTelemetry SDK on this call only (a separate chunk in the bundle), so a
 * processor without tracing never parses it.
 */
export function createTracer(options: TracingOptions): RequestTracer {
  const otel = require('./otel') as typeof import('./otel');
  return otel.createOtelTracer(options);
}

/** `gen_ai.operation.name` for a client operation (well-known values where one fits). */
export function genAiOperationName(operation: Operation): string {
  switch (operation) {
    // The Responses API is a chat inference (OpenAI's own instrumentations name it so); `chat` is the well-known value.
    case 'chat':
    case 'responses':
    case 'messages':
      return 'chat';
    case 'completions':
      return 'text_completion';
    case 'embeddings':
      return 'embeddings';
    case 'count_tokens':
      return 'count_tokens';
    case 'other':
      return 'other';
  }
}

/** `gen_ai.provider.name` for a backend schema (the semantic conventions' well-known values). */
export function genAiProviderName(schema: BackendSchema['name']): string {
  switch (schema) {
    case 'OpenAI':
      return 'openai';
    case 'AzureOpenAI':
      return 'azure.ai.openai';
    case 'Anthropic':
      return 'anthropic';
    case 'AWSBedrock':
    case 'AWSAnthropic':
      return 'aws.bedrock';
    case 'GCPVertexAI':
    case 'GCPAnthropic':
      return 'gcp.vertex_ai';
  }
}
