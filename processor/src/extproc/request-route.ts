/**
 * The request phase's decisions, pure over the config snapshot: which endpoint the request headers address,
 * then which rule and backend serve the body's model. Each step answers either "go on" or the client error.
 */
import { isUtf8 } from 'node:buffer';
import type { BackendRuntime, RuntimeConfig } from '../config/runtime';
import { gatewayError, type GatewayError } from '../errors';
import type { HttpHeaders } from '../grpc/messages';
import type { CircuitBreakers } from '../routing/breaker';
import { availableModels, findRule, type EndpointMatch, type RuleMatch } from '../routing/router';
import { selectBackend } from '../routing/select';
import type { BackendRef, ModelPrice } from '@ai-gateway-constructs/processor-config';
import type { ConsumerRuntime } from '../governance';
import type { ClientApi, Operation } from '../translate/types';
import { formBoundary, isFormContentType, scanFormBody, type FormSpan } from './form-body';
import { HeaderList } from './headers';
import {
  MAX_JSON_DEPTH,
  parseSpan,
  scanJsonBody,
  spanHasEscape,
  spanKind,
  type JsonScanResult,
  type ValueSpan,
} from './json-body';

/**
 * The longest model name a client may send, in UTF-8 bytes. Real provider ids are far shorter (Bedrock ARNs of
 * inference profiles or provisioned models are about 100 characters, Azure deployment names at most 64); the
 * model travels in a header, into caches and logs, so a longer one is answered 400 before any routing.
 */
export const MAX_MODEL_NAME_BYTES = 256;

/**
 * The most header bytes (names and values) a request may bring. Envoy's own default limit is 60 KiB
 * (`max_request_headers_kb`); a listener configured higher still cannot make the processor hold more.
 */
export const MAX_REQUEST_HEADER_BYTES = 96 * 1024;

export type Rejection = { kind: 'reject'; error: GatewayError; api: ClientApi };

/** What the request headers lead to. */
export type HeadersDecision =
  | Rejection
  | { kind: 'models'; match: EndpointMatch }
  | {
      kind: 'readBody';
      match: EndpointMatch & { operation: Exclude<EndpointMatch['operation'], 'models' | undefined> };
      headers: HeaderList;
      path: string;
    };

export function decideOnHeaders(runtime: RuntimeConfig, message: HttpHeaders): HeadersDecision {
  const list = message.headers?.headers ?? [];
  const headers = new HeaderList(message.headers);
  const path = headers.get(':path') ?? '/';
  const method = headers.get(':method');
  const match = runtime.router.match(path, headers.get(':authority') ?? headers.get('host') ?? '', method);
  const api: ClientApi = match?.api ?? 'OpenAI';
  if (headerBytes(list) > MAX_REQUEST_HEADER_BYTES) {
    return reject(
      gatewayError(431, `request headers exceed ${MAX_REQUEST_HEADER_BYTES} bytes`, 'request_headers_too_large'),
      api,
    );
  }
  if (match && escapesPrefix(match.subpath)) {
    // The rest of the path is appended to the backend's prefix: it must not climb out of it.
    return reject(
      gatewayError(400, 'the request path must not contain dot segments or encoded slashes', 'invalid_path'),
      api,
    );
  }
  if (match?.allowedMethods) {
    const allow = match.allowedMethods.join(', ');
    const error = gatewayError(
      405,
      `method ${method} is not allowed on ${stripQuery(path)}; allowed: ${allow}`,
      'method_not_allowed',
    );
    return reject({ ...error, headers: { allow } }, api);
  }
  if (!match || match.operation === undefined) {
    return reject(gatewayError(404, `unsupported path: ${stripQuery(path)}`, 'unsupported_path'), api);
  }
  if (match.operation === 'models') return { kind: 'models', match };
  const declaredLength = headers.get('content-length');
  if (declaredLength !== undefined && Number(declaredLength) > runtime.config.maxRequestBodyBytes) {
    return reject(tooLarge(runtime), api);
  }
  if (message.endOfStream) {
    return reject(
      gatewayError(400, `a JSON request body with a "model" is required for ${stripQuery(path)}`, 'missing_body'),
      api,
    );
  }
  return { kind: 'readBody', match: match as Extract<HeadersDecision, { kind: 'readBody' }>['match'], headers, path };
}

export function tooLarge(runtime: RuntimeConfig): GatewayError {
  return gatewayError(
    413,
    `request body exceeds the limit of ${runtime.config.maxRequestBodyBytes} bytes`,
    'request_too_large',
  );
}

/** The rule and backend that serve a request body. */
export interface RoutingDecision {
  kind: 'routed';
  /** The client's API (errors answer in its schema). */
  api: ClientApi;
  /** The client's bytes: forwarded as they are, or parsed whole when the request must be rewritten. */
  raw: Buffer;
  model: string;
  stream: boolean;
  /** The client's own top-level `stream_options` asks for usage (`include_usage: true`, spelled once, no escapes). */
  streamUsageRequested: boolean;
  rule: RuleMatch;
  ref: BackendRef;
  backend: BackendRuntime;
  /** The model sent to the backend: the rule's `modelNameOverride`, else `model`. */
  upstreamModel: string;
  /** The consumer the client id belongs to; undefined without consumers or without a known client id. */
  consumer: ConsumerRuntime | undefined;
  /** The price of `upstreamModel`; undefined when it has none. */
  price: ModelPrice | undefined;
  /**
   * Set for a multipart/form-data body (audio, image edits): the bytes of its `model` field, which a model name
   * override replaces; the rest of the body is forwarded as it came. Undefined for a JSON body.
   */
  formModel?: FormSpan;
}

/** The top-level fields the router reads, from a JSON or a multipart/form-data body. */
interface BodyFields {
  model: string;
  stream: boolean;
  streamUsageRequested: boolean;
  formModel?: FormSpan;
}

export function decideOnBody(
  runtime: RuntimeConfig,
  read: Extract<HeadersDecision, { kind: 'readBody' }>,
  raw: Buffer,
  breakers: CircuitBreakers,
): RoutingDecision | Rejection {
  const api = read.match.api;
  const path = stripQuery(read.path);
  const contentType = read.headers.get('content-type');
  const fields = isFormContentType(contentType)
    ? formFields(read.match.operation, raw, contentType!, path)
    : jsonFields(raw, path);
  if ('error' in fields) return reject(fields.error, api);
  const { model, stream, streamUsageRequested, formModel } = fields;
  const rule = findRule(read.match.rules, model);
  if (!rule) {
    return reject(
      gatewayError(
        404,
        `the model \`${model}\` does not exist or is not served here; available models: ` +
          availableModels(read.match.routes),
        'model_not_found',
        'model',
      ),
      api,
    );
  }
  const route = rule.rule.route;
  for (const name of route.requiredHeaders) {
    if (!read.headers.get(name))
      return reject(gatewayError(400, `missing required header: ${name}`, 'missing_required_header'), api);
  }
  const directory = runtime.governance.consumers;
  let consumer: ConsumerRuntime | undefined;
  if (directory !== undefined) {
    const clientId = read.headers.get(directory.clientIdHeader);
    consumer = clientId ? directory.byClientIdValue(clientId) : undefined;
    const refused = consumerRefusal(route.consumerRequired === true, clientId, consumer, model);
    if (refused) return reject(refused, api);
  }
  const ref = selectBackend(rule.rule.backends, breakers, runtime.config.circuitBreaker);
  const backend = runtime.backends.get(ref.backend)!;
  const upstreamModel = ref.modelNameOverride ?? model;
  const prices = runtime.governance.prices;
  const price = prices.size === 0 ? undefined : prices.get(upstreamModel);
  if (price === undefined && route.priceRequired === true) {
    return reject(
      gatewayError(
        400,
        `the model \`${model}\` has no price, and this route serves only priced models`,
        'model_not_priced',
        'model',
      ),
      api,
    );
  }
  return {
    kind: 'routed',
    api,
    raw,
    model,
    stream,
    streamUsageRequested,
    rule,
    ref,
    backend,
    upstreamModel,
    consumer,
    price,
    ...(formModel && { formModel }),
  };
}

function jsonFields(raw: Buffer, path: string): BodyFields | { error: GatewayError } {
  const scanned = scanJsonBody(raw);
  if (!scanned.ok) return { error: scanError(scanned, path) };
  const { fields } = scanned;
  const model = modelOf(raw, fields.model);
  if (typeof model !== 'string') return { error: model.error(path) };
  const stream = fields.stream && spanKind(raw, fields.stream);
  if (stream !== undefined && stream !== TRUE && stream !== FALSE && stream !== NULL) {
    // A provider that took "true" or 1 for true would stream while the gateway did not ask it for usage.
    return { error: gatewayError(400, '"stream" must be a boolean', 'invalid_type', 'stream') };
  }
  return {
    model,
    stream: stream === TRUE,
    streamUsageRequested: stream === TRUE && streamUsageRequested(raw, fields.stream_options),
  };
}

/**
 * The `model` and `stream` fields of a multipart/form-data body (audio transcriptions and translations, image
 * edits). Only the passthrough operation takes a form: the translated and metered JSON endpoints refuse one.
 */
function formFields(
  operation: Operation,
  raw: Buffer,
  contentType: string,
  path: string,
): BodyFields | { error: GatewayError } {
  if (operation !== 'other')
    return { error: gatewayError(400, `the body of ${path} must be JSON, not multipart/form-data`, 'invalid_body') };
  const boundary = formBoundary(contentType);
  if ('message' in boundary) return { error: gatewayError(400, boundary.message, 'invalid_multipart') };
  const scanned = scanFormBody(raw, boundary.boundary);
  if (!scanned.ok) return { error: gatewayError(400, scanned.message, 'invalid_multipart') };
  const { model: modelSpan, stream: streamSpan } = scanned.fields;
  if (modelSpan === undefined || modelSpan.end === modelSpan.start) {
    return { error: gatewayError(400, 'you must provide a model parameter', 'missing_model', 'model') };
  }
  if (modelSpan.end - modelSpan.start > MAX_MODEL_NAME_BYTES) {
    return {
      error: gatewayError(
        400,
        `the model name must be at most ${MAX_MODEL_NAME_BYTES} bytes long`,
        'invalid_model',
        'model',
      ),
    };
  }
  const modelBytes = raw.subarray(modelSpan.start, modelSpan.end);
  if (!isUtf8(modelBytes)) {
    return { error: gatewayError(400, 'the model name must be valid UTF-8', 'invalid_model', 'model') };
  }
  const model = modelBytes.toString('utf8');
  const problem = modelNameProblem(model);
  if (problem) return { error: problem };
  let stream = false;
  if (streamSpan !== undefined) {
    // Only the two spellings: a provider that also took "1" or "yes" could stream while the gateway did not know.
    const value = raw.toString('latin1', streamSpan.start, Math.min(streamSpan.end, streamSpan.start + 6));
    if (streamSpan.end - streamSpan.start > 5 || (value !== 'true' && value !== 'false'))
      return { error: gatewayError(400, '"stream" must be "true" or "false"', 'invalid_type', 'stream') };
    stream = value === 'true';
  }
  return { model, stream, streamUsageRequested: false, formModel: modelSpan };
}

/**
 * Who may call: a route that requires a consumer refuses requests without a client id (401) or with one no consumer
 * owns (403); a consumer with a model list refuses other models (403). The client id is not echoed.
 */
function consumerRefusal(
  required: boolean,
  clientId: string | undefined,
  consumer: ConsumerRuntime | undefined,
  model: string,
): GatewayError | undefined {
  if (consumer === undefined) {
    if (!required) return undefined;
    return !clientId
      ? {
          status: 401,
          message: 'this route requires the API key of a registered consumer',
          type: 'authentication_error',
          code: 'missing_api_key',
          param: null,
        }
      : {
          status: 403,
          message: 'the API key does not belong to a consumer of this route',
          type: 'permission_error',
          code: 'unknown_consumer',
          param: null,
        };
  }
  if (consumer.allows(model)) return undefined;
  return {
    status: 403,
    message: `consumer "${consumer.id}" may not use the model \`${model}\``,
    type: 'permission_error',
    code: 'model_not_allowed',
    param: 'model',
  };
}

const TRUE = 0x74; // t
const FALSE = 0x66; // f
const NULL = 0x6e; // n
const QUOTE = 0x22;
/** The longest `stream_options` read in place; a longer one is treated as not asking for usage (it gets asked). */
const MAX_STREAM_OPTIONS_BYTES = 1024;
const INCLUDE_USAGE_KEY = Buffer.from('"include_usage"');

type BodyError = (path: string) => GatewayError;

function scanError(scanned: Exclude<JsonScanResult, { ok: true }>, path: string): GatewayError {
  switch (scanned.reason) {
    case 'syntax':
      return gatewayError(
        400,
        `malformed request: failed to parse JSON for ${path}: ${scanned.message}`,
        'invalid_json',
      );
    case 'not_utf8':
      return gatewayError(400, `malformed request: the body of ${path} is not valid UTF-8`, 'invalid_json');
    case 'not_object':
      return gatewayError(400, `malformed request: the body of ${path} must be a JSON object`, 'invalid_json');
    case 'too_deep':
      return gatewayError(
        400,
        `malformed request: the body of ${path} nests deeper than ${MAX_JSON_DEPTH} levels`,
        'invalid_json',
      );
    case 'duplicate_key':
      // JSON.parse keeps the last of duplicate keys while a passthrough forwards both: the gateway and the provider
      // could read different values.
      return scanned.key === 'model'
        ? gatewayError(400, 'the request body names "model" more than once', 'duplicate_model', 'model')
        : gatewayError(400, `the request body names "${scanned.key}" more than once`, 'duplicate_key', scanned.key);
  }
}

/**
 * The top-level model, decoded from its bytes alone (escapes as any JSON parser reads them), or the error. Long
 * values are refused before decoding: an escape takes at most 6 bytes for one UTF-8 byte.
 */
function modelOf(raw: Buffer, span: ValueSpan | undefined): string | { error: BodyError } {
  const missing = { error: () => gatewayError(400, 'you must provide a model parameter', 'missing_model', 'model') };
  if (!span || spanKind(raw, span) !== QUOTE || span.end - span.start === 2) return missing;
  const tooLong = {
    error: () =>
      gatewayError(400, `the model name must be at most ${MAX_MODEL_NAME_BYTES} bytes long`, 'invalid_model', 'model'),
  };
  const escaped = spanHasEscape(raw, span);
  const contentBytes = span.end - span.start - 2;
  if (contentBytes > (escaped ? 6 : 1) * MAX_MODEL_NAME_BYTES) return tooLong;
  let model: string;
  try {
    model = parseSpan(raw, span) as string;
  } catch (error) {
    const message = (error as Error).message;
    return {
      error: (path) =>
        gatewayError(400, `malformed request: failed to parse JSON for ${path}: ${message}`, 'invalid_json'),
    };
  }
  if (escaped && Buffer.byteLength(model) > MAX_MODEL_NAME_BYTES) return tooLong;
  const problem = modelNameProblem(model);
  return problem ? { error: () => problem } : model;
}

/** What makes a decoded model name unusable (control characters, lone surrogates), or undefined. */
function modelNameProblem(model: string): GatewayError | undefined {
  // The model travels upstream in a header (x-ai-eg-model): CR, LF or NUL there would be header injection.
  if (hasControlCharacter(model))
    return gatewayError(400, 'the model name must not contain control characters', 'invalid_model', 'model');
  // Written into the header as U+FFFD: the gateway would route and label a name the provider never reads.
  if (LONE_SURROGATE.test(model))
    return gatewayError(400, 'the model name must be valid Unicode', 'invalid_model', 'model');
  return undefined;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Whether the client's `stream_options` already asks for usage, read only when it is unambiguous: an object of at
 * most MAX_STREAM_OPTIONS_BYTES, `"include_usage"` spelled once and without escapes (a provider that kept the first
 * of two `include_usage` keys could stream without usage while the gateway thought it asked). Otherwise the
 * request is rewritten with usage asked for.
 */
function streamUsageRequested(raw: Buffer, span: ValueSpan | undefined): boolean {
  if (!span || spanKind(raw, span) !== 0x7b /* { */ || span.end - span.start > MAX_STREAM_OPTIONS_BYTES) return false;
  const bytes = raw.subarray(span.start, span.end);
  const first = bytes.indexOf(INCLUDE_USAGE_KEY);
  if (first === -1 || bytes.indexOf(INCLUDE_USAGE_KEY, first + 1) !== -1 || spanHasEscape(raw, span)) return false;
  try {
    return (parseSpan(raw, span) as { include_usage?: unknown }).include_usage === true;
  } catch {
    // Not JSON the scan vouched for (a raw control character in a string): the rewrite parses the whole body and
    // answers it 400.
    return false;
  }
}

function reject(error: GatewayError, api: ClientApi): Rejection {
  return { kind: 'reject', error, api };
}

function headerBytes(list: ReadonlyArray<{ key: string; value?: string; rawValue?: Uint8Array }>): number {
  let bytes = 0;
  for (const header of list) bytes += header.key.length + (header.rawValue?.length || header.value?.length || 0);
  return bytes;
}

function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** `.` or `..` segments (also percent-encoded) or encoded slashes and backslashes, which upstreams may decode. */
function escapesPrefix(path: string): boolean {
  if (path.includes('%')) {
    if (/%2f|%5c/i.test(path)) return true;
    path = path.replace(/%2e/gi, '.');
  }
  return path.includes('/./') || path.includes('/../') || path.endsWith('/.') || path.endsWith('/..');
}

export function stripQuery(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}
