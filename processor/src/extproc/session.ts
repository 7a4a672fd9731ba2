/**
 * One ext_proc stream = one HTTP request through Envoy: request headers, the buffered request body
 * (routing, translation, auth), response headers (mode override for event streams), response body chunks
 * (usage), and the token metadata at the end. Messages are handled strictly in order; a step that has to
 * wait (auth, decompression) queues the following messages.
 */
import { randomUUID } from 'node:crypto';
import { BACKEND_HEADER, MODEL_HEADER, ROUTE_HEADER } from '../config/schema';
import type { BackendRuntime, RuntimeConfig } from '../config/runtime';
import { CLIENT_CREDENTIAL_HEADERS, type AuthRequest } from '../auth';
import { createDecoder, isSupportedEncoding, type BodyDecoder } from '../encoding';
import { gatewayError, renderError, type GatewayError } from '../errors';
import {
  BODY_MODE_STREAMED,
  type CommonResponse,
  type HttpBody,
  type HeaderMutation,
  type HttpHeaders,
  type ProcessingRequest,
  type ProcessingResponse,
  type EncodedStruct,
  type OutgoingResponse,
} from '../grpc/messages';
import { encodeProcessingResponse } from '../grpc/encode';
import type { ExtProcStream } from '../grpc/server';
import { exactModels, findRule, type EndpointMatch } from '../routing/router';
import { selectBackend } from '../routing/select';
import { findTranslator } from '../translate/registry';
import {
  TranslationError,
  ZERO_USAGE,
  type ClientApi,
  type HeaderChanges,
  type Operation,
  type ResponseTranslator,
  type TokenUsage,
  type UpstreamRequest,
} from '../translate/types';
import { HeaderChangeSet, HeaderList, readResponseHeaders } from './headers';
import type { ProcessorContext } from './context';
import { headerOption } from './header-options';
import { classifyResponse, responseCodeDetails, type ResponseOrigin } from './local-replies';

const EMPTY_HEADERS = new HeaderList(undefined);
const JSON_CONTENT_TYPE: HeaderMutation = { setHeaders: [headerOption('content-type', 'application/json')], removeHeaders: [] };
const CONTINUE_REQUEST_HEADERS = encodeProcessingResponse({ requestHeaders: { response: {} } });
const CONTINUE_REQUEST_BODY = encodeProcessingResponse({ requestBody: { response: {} } });
const CONTINUE_RESPONSE_HEADERS = encodeProcessingResponse({ responseHeaders: { response: {} } });
const CONTINUE_RESPONSE_BODY = encodeProcessingResponse({ responseBody: { response: {} } });
const CONTINUE_REQUEST_TRAILERS = encodeProcessingResponse({ requestTrailers: {} });
const CONTINUE_RESPONSE_TRAILERS = encodeProcessingResponse({ responseTrailers: {} });

/**
 * The longest model name a client may send, in UTF-8 bytes. Real provider ids are far shorter (Bedrock ARNs of
 * inference profiles or provisioned models are about 100 characters, Azure deployment names at most 64); the
 * model travels in a header, into caches and logs, so a longer one is answered 400 before any routing.
 */
export const MAX_MODEL_NAME_BYTES = 256;

interface RoutedRequest {
  runtime: RuntimeConfig;
  api: ClientApi;
  operation: Operation;
  model: string;
  /** The configured model match that accepted `model` (the model itself only for an Exact match): the metric label. */
  modelLabel: string;
  backend: BackendRuntime;
  response: ResponseTranslator;
  startedAt: number;
}

export class ExchangeSession implements ExtProcStream {
  private pending: Promise<void> | undefined;
  private headers: HeaderList = EMPTY_HEADERS;
  /** `:path` as the client sent it (read once: header values are decoded on every lookup). */
  private requestPath: string | undefined;
  private match: EndpointMatch | undefined;
  private runtime: RuntimeConfig | undefined;
  /** Request body chunks before the last one (Envoy normally sends the buffered body in one message). */
  private bodyChunks: Buffer[] | undefined;
  private bodyLength = 0;
  private routed: RoutedRequest | undefined;
  private decoder: BodyDecoder | undefined;
  private passthroughBody = true;
  private streaming = false;
  private firstChunkAt: number | undefined;
  private responseBuffer: Buffer[] | undefined;
  private finished = false;
  private closed = false;
  /** The total last written into the metadata of a streamed response; a client abort is charged that much. */
  private writtenTotal = 0;
  private writtenInput = 0;

  constructor(
    private readonly context: ProcessorContext,
    private readonly send: (response: OutgoingResponse) => void,
  ) {
    context.streamOpened();
  }

  message(request: ProcessingRequest): void {
    if (this.pending) {
      this.pending = this.pending.then(() => this.handleSafely(request));
      return;
    }
    const result = this.handleSafely(request);
    if (result) {
      const tracked: Promise<void> = result.then(() => {
        if (this.pending === tracked) this.pending = undefined;
      });
      this.pending = tracked;
    }
  }

  close(cancelled: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.context.streamClosed();
    if (this.routed && !this.finished) {
      // Client abort or a stream cut before the end: count what we have; the probe slot is released.
      this.context.breakers.release(this.routed.backend.config.name);
      this.recordMetrics(this.routed.response.usage, cancelled ? 'cancelled' : 'incomplete');
      this.finished = true;
    }
  }

  private handleSafely(request: ProcessingRequest): void | Promise<void> {
    try {
      const result = this.handle(request);
      return result ? result.catch((error: unknown) => this.onUnexpected(request, error)) : undefined;
    } catch (error) {
      this.onUnexpected(request, error);
      return undefined;
    }
  }

  private onUnexpected(request: ProcessingRequest, error: unknown): void {
    this.context.logger.error({ err: error instanceof Error ? error.message : String(error), phase: request.request }, 'processing failed');
    if (request.request === 'requestHeaders' || request.request === 'requestBody') {
      this.immediate(gatewayError(500, 'the gateway failed to process the request', 'processing_error'));
    } else if (request.request === 'responseHeaders' || request.request === 'responseBody') {
      const response: ProcessingResponse =
        request.request === 'responseHeaders' ? { responseHeaders: { response: {} } } : { responseBody: { response: {} } };
      const routed = this.routed;
      if (routed && !this.finished) {
        // The charge must not be skipped: what was counted so far, final if this was the last message.
        const end = request.request === 'responseHeaders' ? request.responseHeaders?.endOfStream : request.responseBody?.endOfStream;
        response.dynamicMetadata = end ? this.finish(routed) : this.metadata(routed.response.usage, routed.model, routed.backend.config.name);
      }
      this.send(response);
    }
  }

  private handle(request: ProcessingRequest): void | Promise<void> {
    switch (request.request) {
      case 'requestHeaders':
        return this.onRequestHeaders(request.requestHeaders!);
      case 'requestBody':
        return this.onRequestBody(request.requestBody!);
      case 'responseHeaders':
        return this.onResponseHeaders(request.responseHeaders!, request);
      case 'responseBody':
        return this.onResponseBody(request.responseBody!);
      case 'requestTrailers':
        return this.send(CONTINUE_REQUEST_TRAILERS);
      case 'responseTrailers':
        return this.send(CONTINUE_RESPONSE_TRAILERS);
      default:
        return undefined;
    }
  }

  // ---- request ----

  private onRequestHeaders(message: HttpHeaders): void {
    const runtime = this.context.runtime();
    this.runtime = runtime;
    const headers = new HeaderList(message.headers);
    this.headers = headers;
    this.requestPath = headers.get(':path');
    const path = this.requestPath ?? '/';
    const match = runtime.router.match(path, headers.get(':authority') ?? headers.get('host') ?? '');
    const api: ClientApi = match?.api ?? 'OpenAI';
    if (!match || match.operation === undefined) {
      return this.immediate(gatewayError(404, `unsupported path: ${stripQuery(path)}`, 'unsupported_path'), api);
    }
    if (escapesPrefix(match.subpath)) {
      // The rest of the path is appended to the backend's prefix: it must not climb out of it.
      return this.immediate(gatewayError(400, 'the request path must not contain dot segments or encoded slashes', 'invalid_path'), api);
    }
    this.match = match;
    if (match.operation === 'models') {
      const method = headers.get(':method');
      if (method !== 'GET') {
        return this.immediate(gatewayError(405, `method ${method} is not allowed on ${stripQuery(path)}`, 'method_not_allowed'));
      }
      return this.answerModels(runtime, match);
    }
    const declaredLength = headers.get('content-length');
    if (declaredLength !== undefined && Number(declaredLength) > runtime.config.maxRequestBodyBytes) {
      return this.immediate(this.tooLarge(runtime), api);
    }
    if (message.endOfStream) {
      return this.immediate(gatewayError(400, `a JSON request body with a "model" is required for ${stripQuery(path)}`, 'missing_body'), api);
    }
    this.send(CONTINUE_REQUEST_HEADERS);
  }

  private tooLarge(runtime: RuntimeConfig): GatewayError {
    return gatewayError(413, `request body exceeds the limit of ${runtime.config.maxRequestBodyBytes} bytes`, 'request_too_large');
  }

  private answerModels(runtime: RuntimeConfig, match: EndpointMatch): void {
    const created = runtime.loadedAtSeconds;
    const body = JSON.stringify({
      object: 'list',
      data: exactModels(match.routes).map((id) => ({ id, object: 'model', created, owned_by: 'ai-gateway' })),
    });
    this.context.localReply(200);
    this.send({
      immediateResponse: {
        status: { code: 200 },
        headers: JSON_CONTENT_TYPE,
        body: Buffer.from(body),
      },
      dynamicMetadata: this.metadata(ZERO_USAGE, '', ''),
    });
  }

  private onRequestBody(message: HttpBody): void | Promise<void> {
    const runtime = this.runtime;
    const match = this.match;
    if (!runtime || !match || match.operation === 'models' || match.operation === undefined) {
      this.send(CONTINUE_REQUEST_BODY);
      return undefined;
    }
    const chunk = toBuffer(message.body);
    this.bodyLength += chunk.length;
    if (this.bodyLength > runtime.config.maxRequestBodyBytes) return this.immediate(this.tooLarge(runtime), match.api);
    if (!message.endOfStream) {
      (this.bodyChunks ??= []).push(chunk);
      return undefined;
    }
    const raw = this.bodyChunks === undefined ? chunk : Buffer.concat([...this.bodyChunks, chunk]);
    this.bodyChunks = undefined;
    return this.routeRequest(runtime, match, match.operation, raw);
  }

  private routeRequest(runtime: RuntimeConfig, match: EndpointMatch, operation: Operation, raw: Buffer): void | Promise<void> {
    const api = match.api;
    const path = this.requestPath ?? '';
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (error) {
      return this.immediate(
        gatewayError(400, `malformed request: failed to parse JSON for ${stripQuery(path)}: ${(error as Error).message}`, 'invalid_json'),
        api,
      );
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return this.immediate(gatewayError(400, `malformed request: the body of ${stripQuery(path)} must be a JSON object`, 'invalid_json'), api);
    }
    const request = body as Record<string, unknown>;
    const model = request.model;
    const stream = request.stream === true;
    if (typeof model !== 'string' || model.length === 0) {
      return this.immediate(gatewayError(400, 'you must provide a model parameter', 'missing_model', 'model'), api);
    }
    if (model.length > MAX_MODEL_NAME_BYTES || (model.length > MAX_MODEL_NAME_BYTES / 3 && Buffer.byteLength(model) > MAX_MODEL_NAME_BYTES)) {
      // Checked first and in O(1) for long names (a UTF-16 unit is at most 3 UTF-8 bytes).
      return this.immediate(
        gatewayError(400, `the model name must be at most ${MAX_MODEL_NAME_BYTES} bytes long`, 'invalid_model', 'model'),
        api,
      );
    }
    if (hasControlCharacter(model)) {
      // The model travels upstream in a header (x-ai-eg-model): CR, LF or NUL there would be header injection.
      return this.immediate(gatewayError(400, 'the model name must not contain control characters', 'invalid_model', 'model'), api);
    }
    const found = findRule(match.rules, model);
    if (!found) {
      const available = exactModels(match.routes);
      return this.immediate(
        gatewayError(
          404,
          `the model \`${model}\` does not exist or is not served here; available models: ${available.length ? available.join(', ') : '(none)'}`,
          'model_not_found',
          'model',
        ),
        api,
      );
    }
    const rule = found.rule;
    for (const name of rule.route.requiredHeaders) {
      if (!this.headers.get(name)) {
        return this.immediate(gatewayError(400, `missing required header: ${name}`, 'missing_required_header'), api);
      }
    }
    const settings = runtime.config.circuitBreaker;
    const ref = selectBackend(rule.backends, this.context.breakers, settings);
    const backend = runtime.backends.get(ref.backend)!;
    const factory = findTranslator(api, operation, backend.config.schema.name, runtime.translators);
    if (!factory) {
      return this.immediate(
        gatewayError(
          400,
          `backend "${backend.config.name}" (schema ${backend.config.schema.name}) cannot serve ${stripQuery(path)}`,
          'unsupported_operation',
        ),
        api,
      );
    }
    const translator = factory({
      api,
      operation,
      subpath: match.subpath,
      query: match.query,
      requestModel: model,
      upstreamModel: ref.modelNameOverride ?? model,
      backend: backend.config,
      stream,
      forceStreamUsage: runtime.forceStreamUsage,
      requestId: this.headers.get('x-request-id') ?? randomUUID(),
      nowSeconds: Math.floor(Date.now() / 1000),
    });
    let upstream: UpstreamRequest;
    try {
      upstream = translator.request(request);
    } catch (error) {
      if (error instanceof TranslationError) {
        return this.immediate({ status: error.status, message: error.message, type: error.errorType, code: null, param: error.param ?? null }, api);
      }
      throw error;
    }

    let upstreamBody: Buffer | undefined;
    if (!upstream.bodyUnchanged || backend.hasBodyMutation) {
      upstreamBody = Buffer.from(JSON.stringify(applyBodyMutation(upstream.body, backend)));
    }
    this.routed = {
      runtime,
      api,
      operation,
      model,
      modelLabel: found.modelLabel,
      backend,
      response: translator.response(),
      startedAt: performance.now(),
    };
    this.context.breakers.acquire(backend.config.name, settings);

    const auth = backend.auth;
    let fixedCredentials: HeaderChanges | undefined;
    try {
      fixedCredentials = auth?.fixed?.();
    } catch (error) {
      return this.authFailed(backend, error);
    }
    if (!upstreamBody && upstream.removeHeaders.length === 0 && isEmpty(upstream.setHeaders) && (!auth || fixedCredentials)) {
      // Forwarded as it came: the answer depends only on backend, model, path and static credentials.
      const answer = runtime.requestAnswers.get(rule.route.name, backend.config.name, model, upstream.path, upstream.path !== path, fixedCredentials, () =>
        encodeProcessingResponse(this.requestAnswer(this.requestChanges(backend, rule.route.name, model, upstream, path, undefined, fixedCredentials), undefined)),
      );
      this.headers = EMPTY_HEADERS;
      this.send(answer);
      return undefined;
    }

    const changes = this.requestChanges(backend, rule.route.name, model, upstream, path, upstreamBody, fixedCredentials);
    if (!auth || fixedCredentials) return this.continueRequest(changes, upstreamBody);
    const authRequest = new UpstreamAuthRequest(
      this.headers.get(':method') ?? 'POST',
      backend.config.endpoint.hostname,
      upstream.path,
      upstreamBody ?? raw,
      changes,
      this.headers,
    );
    let authChanges: HeaderChanges | Promise<HeaderChanges>;
    try {
      authChanges = auth.apply(authRequest);
    } catch (error) {
      return this.authFailed(backend, error);
    }
    if (authChanges instanceof Promise) {
      return authChanges.then(
        (resolved) => {
          changes.apply(resolved);
          this.continueRequest(changes, upstreamBody);
        },
        (error: unknown) => this.authFailed(backend, error),
      );
    }
    changes.apply(authChanges);
    return this.continueRequest(changes, upstreamBody);
  }

  /** The upstream request's header changes, before signing auth (fixed credentials included when given). */
  private requestChanges(
    backend: BackendRuntime,
    routeName: string,
    model: string,
    upstream: UpstreamRequest,
    clientPath: string,
    upstreamBody: Buffer | undefined,
    fixedCredentials: HeaderChanges | undefined,
  ): HeaderChangeSet {
    const changes = new HeaderChangeSet();
    changes.apply(upstream);
    for (const name of backend.removeHeaders) changes.remove(name);
    for (const [name, value] of backend.setHeaders) changes.set(name, value, true);
    if (backend.auth) for (const name of CLIENT_CREDENTIAL_HEADERS) changes.remove(name);
    changes.set(MODEL_HEADER, model, true);
    changes.set(BACKEND_HEADER, backend.config.name, true);
    changes.set(ROUTE_HEADER, routeName, true);
    if (upstream.path !== clientPath) changes.set(':path', upstream.path, true);
    if (upstreamBody) changes.set('content-length', String(upstreamBody.length));
    if (fixedCredentials) changes.apply(fixedCredentials);
    return changes;
  }

  /**
   * The backend's credential could not be had (an error, or no answer within the credential timeout): the
   * backend's failure, for its circuit breaker (so priority failover moves later requests on) and its metrics.
   * The client gets a 503 in its API's error shape that names the backend, never the credential.
   */
  private authFailed(backend: BackendRuntime, error: unknown): void {
    this.context.logger.error({ backend: backend.config.name, err: error instanceof Error ? error.message : 'auth failed' }, 'backend authentication failed');
    const routed = this.routed;
    if (routed && !this.finished) {
      this.context.breakers.record(backend.config.name, false, routed.runtime.config.circuitBreaker);
      this.recordMetrics(ZERO_USAGE, 'backend_auth_error');
      this.routed = undefined; // counted: immediate() must not free the probe slot as if nothing happened
    }
    this.immediate(gatewayError(503, `the gateway could not authenticate to backend "${backend.config.name}"`, 'backend_auth_error'), this.match?.api);
  }

  private continueRequest(changes: HeaderChangeSet, body: Buffer | undefined): void {
    this.headers = EMPTY_HEADERS; // not needed any more: keep open streams small
    this.send(this.requestAnswer(changes, body));
  }

  private requestAnswer(changes: HeaderChangeSet, body: Buffer | undefined): ProcessingResponse {
    const response: CommonResponse = { headerMutation: changes.toMutation(this.runtime?.headerOptions), clearRouteCache: true };
    if (body) response.bodyMutation = { body };
    return { requestBody: { response } };
  }

  // ---- response ----

  private onResponseHeaders(message: HttpHeaders, request: ProcessingRequest): void {
    const routed = this.routed;
    if (!routed) {
      this.send(CONTINUE_RESPONSE_HEADERS);
      return;
    }
    const origin = classifyResponse(responseCodeDetails(request));
    if (origin.kind !== 'upstream') return this.onEnvoyLocalReply(routed, origin);
    const headers = readResponseHeaders(message.headers);
    const status = Number(headers[':status'] ?? 0);
    const settings = routed.runtime.config.circuitBreaker;
    this.context.breakers.record(routed.backend.config.name, !(status >= 500 || status === 429 || status === 0), settings);

    const head = routed.response.head(status, headers);
    this.passthroughBody = routed.response.passthroughBody === true;
    this.streaming = head.stream;
    const changes = new HeaderChangeSet();
    changes.apply(head);
    const encoding = headers['content-encoding'];
    if (encoding !== undefined && isSupportedEncoding(encoding.trim().toLowerCase())) {
      this.decoder = createDecoder(encoding.trim().toLowerCase());
      if (!this.passthroughBody) changes.remove('content-encoding');
    }
    if (!this.passthroughBody && head.stream) changes.remove('content-length');
    const headerMutation = changes.toMutation();
    if (!headerMutation && !head.stream && !message.endOfStream) {
      this.send(CONTINUE_RESPONSE_HEADERS);
      return;
    }
    const response: ProcessingResponse = { responseHeaders: { response: { headerMutation } } };
    if (head.stream) response.modeOverride = { responseBodyMode: BODY_MODE_STREAMED };
    if (message.endOfStream) {
      response.dynamicMetadata = this.finish(routed);
    } else if (head.stream) {
      // Numbers are in place even if the event stream is cut before its end.
      response.dynamicMetadata = this.metadata(routed.response.usage, routed.model, routed.backend.config.name);
    }
    this.send(response);
  }

  /**
   * Envoy answered instead of the backend: the reply goes to the client as Envoy made it (its body is not the
   * provider's, so it is not translated) and no tokens are charged. An upstream connect failure or timeout is the
   * backend's failure (breaker and metrics); anything else (no route after the re-match, a rate limit, a direct
   * response) says nothing about the backend: its breaker probe slot is freed and its metrics are untouched.
   * The response body, if any, then passes unchanged (`finished`).
   */
  private onEnvoyLocalReply(routed: RoutedRequest, origin: Exclude<ResponseOrigin, { kind: 'upstream' }>): void {
    const backend = routed.backend.config.name;
    this.finished = true;
    let metadata: EncodedStruct;
    if (origin.kind === 'backendFailure') {
      this.context.breakers.record(backend, false, routed.runtime.config.circuitBreaker);
      this.recordMetrics(ZERO_USAGE, origin.errorType);
      metadata = this.metadata(ZERO_USAGE, routed.model, backend);
    } else {
      this.context.breakers.release(backend);
      metadata = this.metadata(ZERO_USAGE, '', '');
      if (origin.details === 'route_not_found') {
        // The processor rewrote the request for this backend and the re-match found no route: a routing bug.
        this.context.logger.warn({ backend, model: routed.model, details: origin.details }, 'Envoy found no route for the request rewritten for the backend');
      } else {
        this.context.logger.debug({ backend, model: routed.model, details: origin.details }, 'Envoy answered the request locally');
      }
    }
    this.send({ responseHeaders: { response: {} }, dynamicMetadata: metadata });
  }

  private onResponseBody(message: HttpBody): void | Promise<void> {
    const routed = this.routed;
    if (!routed || this.finished) {
      this.send(CONTINUE_RESPONSE_BODY);
      return undefined;
    }
    if (this.firstChunkAt === undefined && this.streaming) this.firstChunkAt = performance.now();
    const chunk = toBuffer(message.body);
    const end = message.endOfStream === true;
    if (this.decoder) {
      return this.decoder.push(chunk, end).then((decoded) => this.translateChunk(routed, decoded, end));
    }
    this.translateChunk(routed, chunk, end);
    return undefined;
  }

  private translateChunk(routed: RoutedRequest, chunk: Buffer, end: boolean): void {
    const out = routed.response.body(chunk, end);
    let common: CommonResponse | undefined;
    if (!this.passthroughBody) {
      if (this.streaming) {
        common = { bodyMutation: { body: out } };
      } else {
        // Buffered: Envoy still holds the headers, so Content-Length can be corrected here.
        if (out.length > 0) (this.responseBuffer ??= []).push(out);
        if (end) {
          const parts = this.responseBuffer ?? [];
          const whole = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
          this.responseBuffer = undefined;
          const setHeaders = [headerOption('content-length', String(whole.length))];
          const replacedStatus = routed.response.replacedStatus;
          if (replacedStatus !== undefined) {
            // The provider said 2xx but its answer could not be translated: the client gets the error's status.
            setHeaders.push(headerOption(':status', String(replacedStatus)));
            this.context.breakers.record(routed.backend.config.name, false, routed.runtime.config.circuitBreaker);
          }
          common = { bodyMutation: { body: whole }, headerMutation: { setHeaders, removeHeaders: [] } };
        } else {
          common = { bodyMutation: { body: Buffer.alloc(0) } };
        }
      }
    }
    let metadata: EncodedStruct | undefined;
    if (end) {
      metadata = this.finish(routed);
    } else if (this.streaming && this.usageGrew(routed.response.usage)) {
      // Envoy keeps the last metadata written; if the client goes away now, it charges what was counted so far.
      metadata = this.metadata(routed.response.usage, routed.model, routed.backend.config.name);
    }
    if (!common && !metadata) this.send(CONTINUE_RESPONSE_BODY);
    else this.send({ responseBody: { response: common ?? {} }, dynamicMetadata: metadata });
  }

  private usageGrew(usage: TokenUsage): boolean {
    if (usage.total === this.writtenTotal && usage.input === this.writtenInput) return false;
    this.writtenTotal = usage.total;
    this.writtenInput = usage.input;
    return true;
  }

  private finish(routed: RoutedRequest) {
    this.finished = true;
    const usage = routed.response.usage;
    this.recordMetrics(usage, undefined);
    return this.metadata(usage, routed.model, routed.backend.config.name);
  }

  private recordMetrics(usage: TokenUsage, errorType: string | undefined): void {
    const routed = this.routed!;
    const now = performance.now();
    this.context.metrics.recordResponse(
      { operation: routed.operation, model: routed.modelLabel, backend: routed.backend.config.name },
      usage,
      {
        total: (now - routed.startedAt) / 1000,
        firstChunk: this.firstChunkAt === undefined ? undefined : (this.firstChunkAt - routed.startedAt) / 1000,
      },
      errorType,
    );
  }

  private metadata(usage: TokenUsage, model: string, backend: string): EncodedStruct {
    const runtime = this.runtime ?? this.context.runtime();
    return runtime.usageMetadata.encode({ usage, model, backend }, this.context.costFailed);
  }

  private immediate(error: GatewayError, api: ClientApi = this.match?.api ?? 'OpenAI'): void {
    if (this.routed && !this.finished) {
      // Answered locally after a backend was chosen: the request never reached it.
      this.context.breakers.release(this.routed.backend.config.name);
      this.routed = undefined;
    }
    this.finished = true;
    this.context.localReply(error.status);
    this.send({
      immediateResponse: {
        status: { code: error.status },
        headers: JSON_CONTENT_TYPE,
        body: renderError(api, error),
        details: error.code ?? undefined,
      },
      dynamicMetadata: this.metadata(ZERO_USAGE, '', ''),
    });
  }
}

/**
 * The upstream request as auth sees it; the full header set is built only when read (signing auth). A
 * class rather than an object literal with a getter: V8 gives every such literal its own hidden class,
 * and the class transitions keep each request's body and headers alive until a full GC.
 */
class UpstreamAuthRequest implements AuthRequest {
  constructor(
    readonly method: string,
    readonly hostname: string,
    readonly path: string,
    readonly body: Buffer,
    private readonly changes: HeaderChangeSet,
    private readonly clientHeaders: HeaderList,
  ) {}

  get headers(): Record<string, string> {
    return this.changes.appliedTo(this.clientHeaders.toRecord());
  }
}


function toBuffer(bytes: Uint8Array | undefined): Buffer {
  if (!bytes || bytes.length === 0) return Buffer.alloc(0);
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function isEmpty(record: Readonly<Record<string, string>>): boolean {
  for (const _ in record) return false;
  return true;
}

/** `.` or `..` segments (also percent-encoded) or encoded slashes and backslashes, which upstreams may decode. */
function escapesPrefix(path: string): boolean {
  if (path.includes('%')) {
    if (/%2f|%5c/i.test(path)) return true;
    path = path.replace(/%2e/gi, '.');
  }
  return path.includes('/./') || path.includes('/../') || path.endsWith('/.') || path.endsWith('/..');
}

function stripQuery(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

/** Route-level body mutations: set or remove top-level keys of a JSON object body. */
function applyBodyMutation(body: unknown, backend: BackendRuntime): unknown {
  if (!backend.hasBodyMutation || body === null || typeof body !== 'object' || Array.isArray(body)) return body;
  const object = body as Record<string, unknown>;
  for (const key of backend.bodyRemove) delete object[key];
  for (const [key, value] of backend.bodySet) object[key] = value;
  return object;
}
