/**
 * The seam between the processor's protocol/pipeline layer and the per-provider translators.
 * A translator is pure: JSON in, JSON out, bytes in, bytes out; it never touches gRPC, files or clocks
 * (ids and timestamps come from the context so tests are deterministic).
 */
import type { BackendConfig } from '@ai-gateway-constructs/processor-config';

/** Token counts of one response. Always numbers: Envoy skips a charge whose value is missing. */
export interface TokenUsage {
  input: number;
  output: number;
  total: number;
  cachedInput: number;
  reasoning: number;
  /**
   * Of `input`, the tokens written to the provider's prompt cache (Anthropic `cache_creation_input_tokens`, Bedrock
   * `cacheWriteInputTokens`), billed above the input price; absent when the provider reported none.
   */
  cacheWriteInput?: number;
  /** Of `cacheWriteInput`, those written with a one-hour TTL (billed higher than five-minute writes). */
  cacheWrite1hInput?: number;
}

export const ZERO_USAGE: Readonly<TokenUsage> = Object.freeze({
  input: 0,
  output: 0,
  total: 0,
  cachedInput: 0,
  reasoning: 0,
});

/** The client-facing API family of the endpoint a request came in on. */
export type ClientApi = 'OpenAI' | 'Anthropic';

/**
 * What the client asked for. `responses` is OpenAI's Responses API (`POST /responses`): passed through to OpenAI-schema
 * backends, translated through the chat translators elsewhere (translate/responses.ts). `other` is any further path
 * under an OpenAI endpoint (images, audio, ...), passed through to OpenAI-schema backends only.
 */
export type Operation = 'chat' | 'completions' | 'embeddings' | 'responses' | 'messages' | 'count_tokens' | 'other';

export interface TranslationContext {
  api: ClientApi;
  operation: Operation;
  /** The request path after the endpoint's prefix, e.g. `/chat/completions` (no query). */
  subpath: string;
  /** The original query string including `?`, or ''. */
  query: string;
  /** The model the client named. */
  requestModel: string;
  /** The model to send upstream (the rule's model name override, else requestModel). */
  upstreamModel: string;
  backend: BackendConfig;
  /** The client asked for a streamed answer. */
  stream: boolean;
  /** A token cost is configured: ask the provider for usage on streams (e.g. OpenAI `stream_options.include_usage`). */
  forceStreamUsage: boolean;
  /**
   * The client's own top-level `stream_options.include_usage` is true, as the gateway read it (unambiguous: one key,
   * no escapes). Unset: the translator reads the parsed body.
   */
  streamUsageRequested?: boolean;
  /** For ids and `created` fields the translator has to invent. */
  requestId: string;
  nowSeconds: number;
}

export interface HeaderChanges {
  /** Lower-case names. */
  setHeaders: Record<string, string>;
  removeHeaders: readonly string[];
  /** The values repeat across requests (static credentials): their wire encoding is cached per config. */
  repeatable?: boolean;
}

export interface UpstreamRequest extends HeaderChanges {
  /** `:path` for the upstream, including any query string. */
  path: string;
  /** The JSON body to send. The pipeline applies body mutations, serializes it and fixes Content-Length. */
  body: unknown;
  /**
   * Optional: true when `body` is exactly the client's JSON (same object, not modified). Without body
   * mutations the pipeline then forwards the client's bytes instead of re-serializing.
   */
  bodyUnchanged?: boolean;
}

export interface ResponseHead extends HeaderChanges {
  /** Switch Envoy to STREAMED response body mode (successful event streams only). */
  stream: boolean;
}

/** The upstream response headers the pipeline and the translators read; no other value is decoded. */
export const RESPONSE_HEADERS_READ = [
  ':status',
  'content-type',
  'content-encoding',
  'x-amzn-errortype',
  'x-amzn-requestid',
  // Bedrock InvokeModel's token counts for bodies that carry none (Cohere embed).
  'x-amzn-bedrock-input-token-count',
  // Envoy's rate-limit filter marks its own 429 with it (a budget ran out), see extproc/response-pipeline.ts.
  'x-envoy-ratelimited',
] as const;
export type ResponseHeaders = Readonly<Partial<Record<(typeof RESPONSE_HEADERS_READ)[number], string>>>;

/** Converts one upstream response back into the client's API. One instance per request. */
export interface ResponseTranslator {
  /** `headers` are lower-case. Called once, before any body. */
  head(status: number, headers: ResponseHeaders): ResponseHead;
  /**
   * Bytes from the upstream, already stripped of any Content-Encoding; returns the bytes for the client
   * (possibly empty while a frame is incomplete). Buffered responses arrive as one call with endOfStream.
   */
  body(chunk: Buffer, endOfStream: boolean): Buffer;
  /** Latest known usage; what was counted so far if the stream was cut. */
  readonly usage: TokenUsage;
  /**
   * Set when a buffered 2xx answer could not be translated and its body was replaced by an error: the status
   * the client must see instead of the provider's.
   */
  readonly replacedStatus?: number;
  /**
   * Optional, read after head(): true when body() returns its input unchanged (pure observation). The
   * pipeline then lets Envoy forward the original bytes (even compressed ones) without a body mutation.
   */
  readonly passthroughBody?: boolean;
}

export interface Translator {
  /** Throws TranslationError for requests the backend cannot express. */
  request(body: Record<string, unknown>): UpstreamRequest;
  /**
   * Optional: the upstream request when the client's bytes go to the backend exactly as they are, decided from the
   * context alone (the top-level fields the gateway read), so the body is never parsed; its `body` is undefined and
   * `bodyUnchanged` true. Undefined when the body has to be rewritten: `request` is called with it parsed.
   */
  forwardUnchanged?(): UpstreamRequest | undefined;
  /**
   * Optional: the upstream request for a multipart/form-data body (audio, image edits), which is never parsed: its
   * `body` is undefined; the pipeline forwards the client's bytes, with the `model` field's value replaced when
   * `upstreamModel` differs. A translator without it cannot take a form (answered 400).
   */
  forwardForm?(): UpstreamRequest;
  response(): ResponseTranslator;
}

export type TranslatorFactory = (context: TranslationContext) => Translator;

/** A request or response that cannot be translated; rendered in the client's error schema. */
export class TranslationError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errorType: string = status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly param?: string,
  ) {
    super(message);
    this.name = 'TranslationError';
  }
}
