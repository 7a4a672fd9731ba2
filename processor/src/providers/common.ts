/**
 * Helpers shared by the provider translators: JSON access without `any`, error envelopes in the client's
 * schema, OpenAI chunk framing, and the buffered-or-streamed response skeleton.
 */
import {
  TranslationError,
  ZERO_USAGE,
  type ClientApi,
  type ResponseHead,
  type ResponseTranslator,
  type TokenUsage,
  type TranslationContext,
  type ResponseHeaders,
} from '../translate/types';
import type { CacheControl, ChatResponseFormat, ChatUsage, ProviderErrorBody } from './wire/openai-chat';
import type { Untrusted } from './wire/untrusted';
import type { ConverseCachePoint } from './wire/bedrock-converse';

export type JsonObject = Record<string, unknown>;

export const EMPTY = Buffer.alloc(0);

/**
 * A model name as one segment of an upstream path (Bedrock `/model/{id}/...`, Vertex `.../models/{id}:...`).
 * Everything but unreserved characters, `:` and `@` (ARNs, versioned Vertex ids) is percent-encoded, so a
 * client-chosen name cannot add segments, a query or a fragment; `.` and `..` would be dot-segments.
 */
export function modelPathSegment(model: string): string {
  if (model === '.' || model === '..') {
    throw new TranslationError(
      400,
      `the model name "${model}" cannot be sent to this backend`,
      'invalid_request_error',
      'model',
    );
  }
  return encodeURIComponent(model).replace(/%3A/g, ':').replace(/%40/g, '@');
}

export function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function asObject(value: unknown): JsonObject | undefined {
  return isObject(value) ? value : undefined;
}

export function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function asNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** A non-negative integer count, 0 for anything else. */
export function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}

export function invalid(message: string, param?: string): TranslationError {
  return new TranslationError(400, message, 'invalid_request_error', param);
}

/** The backend cannot express this request: 422 naming the parameter. */
export function unsupported(param: string, backend: string, detail = ''): TranslationError {
  return new TranslationError(
    422,
    `parameter "${param}" is not supported by the ${backend} backend${detail ? `: ${detail}` : ''}`,
    'invalid_request_error',
    param,
  );
}

/** Rejects a parameter when present (and not null / false / its neutral value). */
export function rejectIfSet(
  body: JsonObject,
  param: string,
  backend: string,
  neutral: unknown[] = [null, undefined],
): void {
  const value = body[param];
  if (!neutral.includes(value)) throw unsupported(param, backend);
}

/** OpenAI chat parameters some providers cannot express, with the values that mean "not used". */
const NEUTRAL_VALUES = {
  logprobs: [undefined, null, false],
  top_logprobs: [undefined, null, 0],
  logit_bias: [undefined, null],
  presence_penalty: [undefined, null, 0],
  frequency_penalty: [undefined, null, 0],
  audio: [undefined, null],
  prediction: [undefined, null],
  web_search_options: [undefined, null],
  functions: [undefined, null],
  function_call: [undefined, null],
} satisfies Record<string, unknown[]>;

export type OpenAIOnlyParam = keyof typeof NEUTRAL_VALUES;

export const ALL_OPENAI_ONLY_PARAMS = Object.keys(NEUTRAL_VALUES) as readonly OpenAIOnlyParam[];

/** 422 for the first of `params` the request actually uses. */
export function rejectUnsupportedParams(body: JsonObject, backend: string, params: readonly OpenAIOnlyParam[]): void {
  for (const param of params) rejectIfSet(body, param, backend, NEUTRAL_VALUES[param]);
}

/** An OpenAI `response_format` of type `json_schema`: the schema and its optional name and description. */
export interface JsonSchemaFormat {
  schema: JsonObject;
  name?: string;
  description?: string;
}

/**
 * The JSON schema a Claude backend must constrain its answer to (`response_format` type `json_schema`); undefined
 * for none or `text`. Claude's JSON outputs always follow a schema whose objects forbid additional properties, so
 * `json_object` (any JSON object) has no Claude form: 422 naming the parameter and the backend.
 */
export function claudeJsonSchemaFormat(body: JsonObject, backend: string): JsonSchemaFormat | undefined {
  const value = body.response_format;
  if (value === undefined || value === null) return undefined;
  const format: Untrusted<ChatResponseFormat> | undefined = asObject(value);
  if (!format) throw invalid('response_format must be an object', 'response_format');
  if (format.type === 'text') return undefined;
  if (format.type === 'json_object') {
    throw unsupported(
      'response_format',
      backend,
      'type "json_object" has no Claude form (JSON outputs follow a schema); use type "json_schema"',
    );
  }
  if (format.type !== 'json_schema') throw unsupported('response_format', backend, `type "${String(format.type)}"`);
  const spec: Untrusted<ChatResponseFormat['json_schema']> | undefined = asObject(format.json_schema);
  const schema = asObject(spec?.schema);
  if (!schema) throw invalid('response_format.json_schema.schema must be a JSON schema object', 'response_format');
  const out: JsonSchemaFormat = { schema };
  const name = asString(spec?.name);
  if (name !== undefined) out.name = name;
  const description = asString(spec?.description);
  if (description !== undefined) out.description = description;
  return out;
}

/** An Anthropic client's JSON outputs (`output_config.format`, or the beta `output_format`) as a schema. */
export function anthropicOutputFormat(body: JsonObject): JsonSchemaFormat | undefined {
  const configured = asObject(body.output_config)?.format;
  const param = configured !== undefined && configured !== null ? 'output_config.format' : 'output_format';
  const value = configured ?? body.output_format;
  if (value === undefined || value === null) return undefined;
  const format = asObject(value);
  const schema = asObject(format?.schema);
  if (format?.type !== 'json_schema' || !schema)
    throw invalid(`${param} must be {"type":"json_schema","schema":{...}}`, param);
  return { schema };
}

/**
 * OpenAI `reasoning_effort` as a Claude extended-thinking budget (`thinking: {type: "enabled", budget_tokens}`).
 * Anthropic requires 1024 <= budget_tokens < max_tokens, and the thinking comes out of max_tokens, so the budget is
 * capped at max_tokens - 1 (`max` takes all of it). The scale follows the Gemini budgets (medium, high) above
 * Anthropic's 1024 floor.
 */
export const CLAUDE_THINKING_BUDGET: Readonly<Record<string, number>> = Object.freeze({
  minimal: 1024,
  low: 2048,
  medium: 8192,
  high: 24576,
  xhigh: 32768,
  max: Number.MAX_SAFE_INTEGER,
});

/** Anthropic's smallest thinking budget. */
export const CLAUDE_MIN_THINKING_BUDGET = 1024;

/** The client's `reasoning_effort`, validated against `levels` (plus `none`); undefined when absent or null. */
export function reasoningEffort(body: JsonObject, levels: readonly string[]): string | undefined {
  const effort = body.reasoning_effort;
  if (effort === undefined || effort === null) return undefined;
  if (typeof effort !== 'string' || (effort !== 'none' && !levels.includes(effort)))
    throw invalid(`reasoning_effort must be one of none, ${levels.join(', ')}`, 'reasoning_effort');
  return effort;
}

/**
 * The Claude `thinking` object for an OpenAI request: from `reasoning_effort` (see CLAUDE_THINKING_BUDGET; `none`
 * sends nothing, thinking being off by default), else the client's own vendor `thinking` object, else undefined.
 * Both at once is ambiguous: 400. Thinking needs an explicit max_completion_tokens (or max_tokens) above 1024,
 * since the budget is part of it: 400 naming it otherwise. Claude does not report thinking tokens apart from output
 * tokens, so reasoning tokens in usage stay 0 on these backends.
 */
export function claudeThinking(body: JsonObject): JsonObject | undefined {
  const effort = reasoningEffort(body, Object.keys(CLAUDE_THINKING_BUDGET));
  if (effort === undefined) return isObject(body.thinking) ? body.thinking : undefined;
  if (body.thinking !== undefined && body.thinking !== null)
    throw invalid('reasoning_effort and thinking cannot both be set', 'reasoning_effort');
  if (effort === 'none') return undefined;
  const maxTokens = maxOutputTokens(body, 0);
  const param = body.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
  if (maxTokens === undefined || maxTokens <= CLAUDE_MIN_THINKING_BUDGET) {
    throw invalid(
      `reasoning_effort on Claude needs ${param} above ${CLAUDE_MIN_THINKING_BUDGET}: ` +
        'the thinking budget (at least 1024 tokens) is part of it',
      param,
    );
  }
  return { type: 'enabled', budget_tokens: Math.min(CLAUDE_THINKING_BUDGET[effort], maxTokens - 1) };
}

/** `max_completion_tokens`, or the older `max_tokens`, when set; at least `min`. */
export function maxOutputTokens(body: JsonObject, min: 0 | 1): number | undefined {
  const value = body.max_completion_tokens ?? body.max_tokens;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    const param = body.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
    throw invalid(`${param} must be a ${min === 0 ? 'non-negative' : 'positive'} integer`, param);
  }
  return value;
}

export function checkRange(body: JsonObject, param: string, min: number, max: number): number | undefined {
  const value = body[param];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalid(`${param} must be a number between ${min} and ${max}, got ${JSON.stringify(value)}`, param);
  }
  return value;
}

/**
 * A prompt-cache breakpoint as Anthropic documents it (`cache_control` on content blocks, system blocks and tools):
 * `{"type": "ephemeral"}` with an optional `ttl` of `"5m"` (the default) or `"1h"`. OpenAI clients put it on
 * content parts, on a message (its last block) and on tools (or their `function`), as the reference gateway and
 * other OpenAI-compatible gateways read it.
 */
export type { CacheControl } from './wire/openai-chat';

/** The `cache_control` of `holder` (undefined when absent or null); 400 naming `param` when malformed. */
export function cacheControlOf(
  holder: { readonly cache_control?: unknown } | undefined,
  param: string,
): CacheControl | undefined {
  const value = holder?.cache_control;
  if (value === undefined || value === null) return undefined;
  const control = asObject(value);
  const ttl = control?.ttl;
  if (control?.type !== 'ephemeral' || (ttl !== undefined && ttl !== null && ttl !== '5m' && ttl !== '1h')) {
    throw invalid(
      `${param}.cache_control must be {"type":"ephemeral"} with an optional "ttl" of "5m" or "1h"`,
      `${param}.cache_control`,
    );
  }
  return ttl === '5m' || ttl === '1h' ? { type: 'ephemeral', ttl } : { type: 'ephemeral' };
}

/** A Bedrock Converse cache checkpoint (`CachePointBlock`: type `default`, optional ttl) for a breakpoint. */
export function converseCachePoint(control: CacheControl): ConverseCachePoint {
  return { cachePoint: control.ttl ? { type: 'default', ttl: control.ttl } : { type: 'default' } };
}

export function parseJsonBuffer(bytes: Buffer): unknown {
  if (bytes.length === 0) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Tool-call arguments: a JSON object string. */
export function parseArguments(text: unknown, param: string): JsonObject {
  if (text === undefined || text === null || text === '') return {};
  if (isObject(text)) return text;
  if (typeof text !== 'string') throw invalid(`${param} must be a JSON string`, param);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid(`${param} is not valid JSON`, param);
  }
  if (!isObject(parsed)) throw invalid(`${param} must encode a JSON object`, param);
  return parsed;
}

export interface DataUrl {
  mediaType: string;
  data: string;
}

/** `data:<media type>;base64,<data>` */
export function parseDataUrl(url: string): DataUrl | undefined {
  if (!url.startsWith('data:')) return undefined;
  const comma = url.indexOf(',');
  const semicolon = url.indexOf(';base64');
  if (comma === -1 || semicolon === -1 || semicolon > comma) return undefined;
  return { mediaType: url.slice(5, semicolon), data: url.slice(comma + 1) };
}

export function unsupportedContent(param: string, type: unknown): TranslationError {
  return new TranslationError(
    422,
    `${param}: content part type ${JSON.stringify(type)} is not supported here`,
    'invalid_request_error',
    param,
  );
}

/**
 * Provider error bodies (Anthropic, Vertex, Bedrock, OpenAI) -> type and message. `amznErrorType` is the
 * `x-amzn-errortype` response header (e.g. `ValidationException:http://...`).
 */
export function describeProviderError(
  status: number,
  body: Buffer,
  amznErrorType?: string,
): { type: string; message: string } {
  const parsed = parseJsonBuffer(body);
  const root: Untrusted<ProviderErrorBody> | undefined = asObject(parsed);
  const error: Untrusted<ProviderErrorBody['error']> | undefined = asObject(root?.error);
  const message =
    asString(error?.message) ??
    asString(root?.message) ??
    asString(root?.Message) ??
    (body.length > 0 && !root ? body.toString('utf8').trim() : undefined);
  const type =
    asString(error?.type) ??
    asString(error?.status) ??
    (amznErrorType ? amznErrorType.split(':')[0] : undefined) ??
    asString(root?.__type)?.split('#').pop() ??
    (status >= 500 ? 'server_error' : 'upstream_error');
  return { type, message: message || `upstream returned HTTP ${status}` };
}

/**
 * Error envelope for OpenAI clients: OpenAI's `error` object, plus `type: "error"` so Anthropic-style readers work too.
 */
export function openAIErrorBody(status: number, type: string, message: string): Buffer {
  return Buffer.from(JSON.stringify({ type: 'error', error: { type, code: String(status), message } }));
}

/** Error envelope for Anthropic Messages clients. */
export function anthropicErrorBody(type: string, message: string, requestId = ''): Buffer {
  return Buffer.from(JSON.stringify({ error: { message, type }, request_id: requestId, type: 'error' }));
}

export function errorBodyFor(api: ClientApi, status: number, type: string, message: string): Buffer {
  return api === 'Anthropic'
    ? anthropicErrorBody(anthropicErrorType(status, type), message)
    : openAIErrorBody(status, type, message);
}

/** Anthropic clients expect Anthropic's error type names. */
export function anthropicErrorType(status: number, type: string): string {
  if (/^[a-z_]+_error$/.test(type) || type === 'overloaded_error') return type;
  switch (status) {
    case 400:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 529:
      return 'overloaded_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

export function sseData(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

export function sseEvent(event: string, value: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(value)}\n\n`;
}

/**
 * Writes chat.completion.chunk SSE events for one choice without re-serializing the constant parts: the
 * text is byte-identical to JSON.stringify({id, choices: [{index: 0, delta, finish_reason?}], created,
 * model, object}).
 */
export class ChunkWriter {
  private prefix = '';
  private readonly suffix: string;

  constructor(
    private currentId: string,
    created: number,
    model: string,
  ) {
    this.suffix = `}],"created":${created},"model":${JSON.stringify(model)},"object":"chat.completion.chunk"}\n\n`;
    this.setId(currentId);
  }

  get id(): string {
    return this.currentId;
  }

  setId(id: string): void {
    this.currentId = id;
    this.prefix = `data: {"id":${JSON.stringify(id)},"choices":[{"index":0,"delta":`;
  }

  /** `deltaJson` is the serialized delta object. */
  write(deltaJson: string, finishReason?: string): string {
    return finishReason === undefined
      ? this.prefix + deltaJson + this.suffix
      : `${this.prefix}${deltaJson},"finish_reason":${JSON.stringify(finishReason)}${this.suffix}`;
  }
}

/**
 * Whether an OpenAI client asked for the usage chunk of a stream (`stream_options.include_usage: true`), as the
 * gateway read it or, when it could not read it unambiguously, as the parsed body says. A client that did not ask
 * gets no chunk with `choices: []`: naive clients read `choices[0]` of every chunk. The gateway reads usage anyway.
 */
export function streamUsageAsked(context: TranslationContext, body?: JsonObject): boolean {
  if (!context.stream) return false;
  if (context.streamUsageRequested === true) return true;
  return asObject(body?.stream_options)?.include_usage === true;
}

export interface OpenAIUsageShape {
  prompt: number;
  completion: number;
  cached: number;
  reasoning: number;
  /** Of `prompt`, tokens written to the prompt cache, and of those the one-hour ones (Anthropic, Bedrock). */
  cacheWrite?: number;
  cacheWrite1h?: number;
}

export function tokenUsage(u: OpenAIUsageShape): TokenUsage {
  const usage: TokenUsage = {
    input: u.prompt,
    output: u.completion,
    total: u.prompt + u.completion,
    cachedInput: u.cached,
    reasoning: u.reasoning,
  };
  if (u.cacheWrite) usage.cacheWriteInput = u.cacheWrite;
  if (u.cacheWrite1h) usage.cacheWrite1hInput = u.cacheWrite1h;
  return usage;
}

/** OpenAI `usage` with the details objects (always present, possibly empty). */
export function openAIUsageWithDetails(u: OpenAIUsageShape): ChatUsage {
  return {
    prompt_tokens: u.prompt,
    completion_tokens: u.completion,
    total_tokens: u.prompt + u.completion,
    completion_tokens_details: u.reasoning > 0 ? { reasoning_tokens: u.reasoning } : {},
    prompt_tokens_details: u.cached > 0 ? { cached_tokens: u.cached } : {},
  };
}

/** AWS's event-stream framing (Bedrock's streaming APIs). */
export const EVENTSTREAM_CONTENT_TYPE = 'application/vnd.amazon.eventstream';

/**
 * Skeleton for responses converted from a provider's format: JSON bodies are collected until the end,
 * successful streams are converted chunk by chunk, errors become the client's error schema.
 */
export abstract class ConvertingResponse implements ResponseTranslator {
  usage: TokenUsage = ZERO_USAGE;
  protected status = 200;
  protected headers: ResponseHeaders = {};
  protected streaming = false;
  replacedStatus: number | undefined;
  private collected: Buffer[] = [];

  constructor(
    protected readonly clientApi: ClientApi,
    private readonly streamRequested: boolean,
  ) {}

  /** The content type of the provider's event stream: the stream translator reads only that framing. */
  protected streamContentType = 'text/event-stream';
  /**
   * A 2xx event stream in another framing: answered as an error rather than passed on as bytes the client cannot read.
   */
  private unexpectedStream: string | undefined;

  head(status: number, headers: ResponseHeaders): ResponseHead {
    this.status = status;
    this.headers = headers;
    const contentType = headers['content-type'] ?? '';
    this.streaming = status >= 200 && status < 300 && this.streamRequested && !contentType.includes('json');
    if (this.streaming && !contentType.toLowerCase().startsWith(this.streamContentType)) {
      this.streaming = false;
      this.unexpectedStream = contentType || '(none)';
    }
    if (this.streaming)
      return { stream: true, setHeaders: { 'content-type': 'text/event-stream' }, removeHeaders: ['content-length'] };
    // Buffered: the pipeline corrects Content-Length once the translated body is complete.
    return {
      stream: false,
      setHeaders: contentType.startsWith('application/json') ? {} : { 'content-type': 'application/json' },
      removeHeaders: [],
    };
  }

  body(chunk: Buffer, endOfStream: boolean): Buffer {
    if (this.streaming) return this.streamChunk(chunk, endOfStream);
    this.collected.push(chunk);
    if (!endOfStream) return EMPTY;
    const whole = this.collected.length === 1 ? this.collected[0] : Buffer.concat(this.collected);
    this.collected = [];
    if (this.status >= 400 || this.status < 200) return this.errorBody(whole);
    if (this.unexpectedStream !== undefined)
      return this.unreadable(`event stream (content type ${this.unexpectedStream.slice(0, 64)})`);
    return this.convertBody(whole);
  }

  protected errorBody(whole: Buffer): Buffer {
    const { type, message } = describeProviderError(this.status, whole, this.headers['x-amzn-errortype']);
    return errorBodyFor(this.clientApi, this.status, type, message);
  }

  /** A 2xx body that cannot be read is answered as a gateway error rather than forwarded half-translated. */
  protected unreadable(what: string): Buffer {
    this.replacedStatus = 502;
    return errorBodyFor(this.clientApi, 502, 'upstream_error', `could not translate the ${what} response`);
  }

  protected abstract convertBody(whole: Buffer): Buffer;
  protected abstract streamChunk(chunk: Buffer, endOfStream: boolean): Buffer;
}

/** An OpenAI embeddings answer: the vectors, the client's model name and the input tokens it cost. */
export function openAIEmbeddingsAnswer(data: readonly unknown[], model: string, tokens: number): Buffer {
  return Buffer.from(
    JSON.stringify({ data, model, object: 'list', usage: { prompt_tokens: tokens, total_tokens: tokens } }),
  );
}
