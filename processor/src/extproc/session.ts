/**
 * One ext_proc stream = one HTTP request through Envoy, as a pipeline of phases:
 *
 *   awaitingRequest ─ request headers ─▶ readingBody ─ request body: route, translate, authenticate ─▶
 *   awaitingResponse ─ response headers ─▶ readingResponse ─ body (decode, translate, count) ─▶ done
 *
 * Any phase may end in `done` with a local reply (an error in the client's API schema). Every message Envoy sends
 * gets exactly one answer: the phase's, or, for a message the phase does not expect, "go on unchanged". Messages are
 * answered strictly in order; an answer that has to wait (credentials, decompression) queues the following
 * messages, within a byte bound, and has a deadline after which the message is answered without it.
 */
import { isReportedCredentialProblem } from '../auth';
import type { RuntimeConfig } from '../config/runtime';
import { gatewayError, type GatewayError } from '../errors';
import { encodeProcessingResponse } from '../grpc/encode';
import {
  BODY_MODE_FULL_DUPLEX_STREAMED,
  type HttpBody,
  type HttpHeaders,
  type OutgoingResponse,
  type ProcessingRequest,
} from '../grpc/messages';
import { exactModels } from '../routing/router';
import type { ExtProcStream, StreamMetadata } from '../grpc/server';
import type { ClientApi } from '../translate/types';
import { CONTINUE, continueWith, errorReply, JSON_CONTENT_TYPE } from './answers';
import type { ProcessorContext } from './context';
import { localReplyMetadata, type Exchange } from './exchange';
import { decideOnBody, decideOnHeaders, tooLarge, type HeadersDecision } from './request-route';
import { ResponsePipeline } from './response-pipeline';
import { DuplexResponse, type FailoverPlan } from './duplex-response';
import { CredentialFailure, prepareUpstream, upstreamAnswer } from './upstream-request';
import { bodyBytes, toBuffer } from './message-bytes';
import type { RequestSpan, RequestTracer } from '../tracing';
import { HeaderList } from './headers';

export { MAX_MODEL_NAME_BYTES } from './request-route';

/**
 * How long one answer may wait (credential fetches have their own, shorter timeout; this is the net under every
 * asynchronous step). The message is then answered without it: a 504 for the request, "go on" for the response.
 */
export const ANSWER_DEADLINE_MS = 9_000;
/** Body bytes that may queue behind an answer that is still being computed. */
export const MAX_QUEUED_BYTES = 64 * 1024 * 1024;

type BodyRead = Extract<HeadersDecision, { kind: 'readBody' }>;

type Phase =
  | { readonly kind: 'awaitingRequest' }
  | { readonly kind: 'readingBody'; readonly read: BodyRead }
  | { readonly kind: 'awaitingResponse'; readonly exchange: Exchange }
  | { readonly kind: 'readingResponse'; readonly exchange: Exchange; readonly pipeline: ResponsePipeline }
  /** Envoy streams the response in FULL_DUPLEX_STREAMED mode: answered by its own machinery, not one per message. */
  | { readonly kind: 'duplexResponse'; readonly exchange: Exchange; readonly response: DuplexResponse }
  | { readonly kind: 'done' };

const AWAITING_REQUEST: Phase = { kind: 'awaitingRequest' };
const DROP_RESPONSE_CHUNK = encodeProcessingResponse({
  responseBody: { response: { bodyMutation: { body: Buffer.alloc(0) } } },
});
const DONE: Phase = { kind: 'done' };
const WRITABLE_NOW = (): Promise<void> => Promise.resolve();

export class ExchangeSession implements ExtProcStream {
  private phase: Phase = AWAITING_REQUEST;
  /** The config snapshot the request started with. */
  private runtime: RuntimeConfig;
  private api: ClientApi = 'OpenAI';
  /** An answer being computed; messages received meanwhile wait in `queue`. */
  private busy = false;
  private queue: ProcessingRequest[] = [];
  private queuedBytes = 0;
  private closed = false;
  /**
   * A translated response was ended early (deadline, failure): its remaining upstream bytes must not reach the client.
   */
  private dropResponseBody = false;
  private idleWaiters: Array<() => void> = [];
  /** The request's trace span; undefined while tracing is off. */
  private span: RequestSpan | undefined;
  /** Envoy streams the response in FULL_DUPLEX_STREAMED mode (its `protocol_config` said so in the first message). */
  private duplex = false;
  /** What failing over needs (duplex mode, a rule with `fallback` only). */
  private failover: FailoverPlan | undefined;

  constructor(
    private readonly context: ProcessorContext,
    private readonly send: (response: OutgoingResponse) => void,
    private readonly fail: (error: Error) => void = () => undefined,
    /** The stream's gRPC metadata: Envoy's trace context when its tracing is on. */
    private readonly metadata?: StreamMetadata,
    /** Resolves once Envoy reads what was written (see ExtProcHandler.open); default: at once. */
    private readonly writable: () => Promise<void> = WRITABLE_NOW,
  ) {
    this.runtime = context.runtime();
    context.streamOpened();
  }

  /** A duplex response is answered at its own pace, not once per message (see ExtProcStream). */
  get answersEachMessage(): boolean {
    return this.phase.kind !== 'duplexResponse';
  }

  message(request: ProcessingRequest): void {
    if (this.closed) return;
    if (this.busy) {
      this.queuedBytes += bodyBytes(request);
      if (this.queuedBytes > MAX_QUEUED_BYTES) {
        this.context.logger.error(
          { queuedBytes: this.queuedBytes },
          'ext_proc messages queued beyond the bound; closing the stream',
        );
        void this.close(true);
        this.fail(new Error('too many bytes queued behind a pending answer'));
        return;
      }
      this.queue.push(request);
      return;
    }
    this.process(request);
  }

  /**
   * The stream ended. Cancelled: whatever is pending is dropped and a routed request is accounted as cut.
   * Half-closed by Envoy: answers still being computed are sent first (the returned promise settles then).
   */
  close(cancelled: boolean): void | Promise<void> {
    if (this.closed) return;
    if (!cancelled && (this.busy || this.queue.length > 0)) {
      return new Promise<void>((resolve) => this.idleWaiters.push(resolve)).then(() => this.close(cancelled));
    }
    this.closed = true;
    this.queue = [];
    this.context.streamClosed();
    const phase = this.phase;
    // A duplex response still going when Envoy half-closes ends too: Envoy closes its side once it has the last
    // answer, or when the request is gone (its filter destroyed).
    if (phase.kind === 'duplexResponse') phase.response.close(cancelled);
    if (phase.kind === 'awaitingResponse' || phase.kind === 'readingResponse' || phase.kind === 'duplexResponse')
      phase.exchange.abandon(cancelled);
    this.phase = DONE;
    // A request that ended before it was answered (the client went away before its body, a stream cut mid-way).
    this.span?.end({ errorType: cancelled ? 'cancelled' : undefined });
  }

  private process(request: ProcessingRequest): void {
    if (this.duplex && this.duplexMessage(request)) return;
    let answer: OutgoingResponse | Promise<OutgoingResponse>;
    try {
      answer = this.answer(request);
    } catch (error) {
      answer = this.recover(request, error);
    }
    if (!(answer instanceof Promise)) {
      this.send(answer);
      return;
    }
    this.busy = true;
    let settled = false;
    const settle = (response: OutgoingResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!this.closed) this.send(response);
      this.busy = false;
      this.drain();
    };
    const timer = setTimeout(() => settle(this.recover(request, new DeadlineExceeded())), ANSWER_DEADLINE_MS);
    answer.then(settle, (error: unknown) => settle(this.recover(request, error)));
  }

  private drain(): void {
    while (!this.busy && this.queue.length > 0) {
      const next = this.queue.shift()!;
      this.queuedBytes -= bodyBytes(next);
      this.process(next);
    }
    if (!this.busy && this.queue.length === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  private answer(request: ProcessingRequest): OutgoingResponse | Promise<OutgoingResponse> {
    switch (request.request) {
      case 'requestHeaders':
        return this.onRequestHeaders(request.requestHeaders!, request);
      case 'requestBody':
        return this.onRequestBody(request.requestBody!);
      case 'responseHeaders':
        return this.onResponseHeaders(request.responseHeaders!, request);
      case 'responseBody':
        return this.onResponseBody(request.responseBody!);
      case 'responseTrailers':
        return this.phase.kind === 'readingResponse'
          ? this.settleResponse(this.phase.pipeline.trailers())
          : CONTINUE.responseTrailers;
      case 'requestTrailers':
        return CONTINUE.requestTrailers;
      default:
        // A message with nothing set: nothing to answer for it either.
        return CONTINUE.requestHeaders;
    }
  }

  // ---- request ----

  private onRequestHeaders(message: HttpHeaders, request: ProcessingRequest): OutgoingResponse {
    if (this.phase.kind !== 'awaitingRequest') return CONTINUE.requestHeaders;
    // Sent in the first message only (Envoy >= 1.34); protobufjs leaves an absent message field null.
    this.duplex = request.protocolConfig?.responseBodyMode === BODY_MODE_FULL_DUPLEX_STREAMED;
    const tracer = this.context.tracer;
    if (tracer !== undefined) this.span = startSpan(tracer, this.metadata, message);
    const decision = decideOnHeaders(this.runtime, message);
    this.api = decision.kind === 'reject' ? decision.api : decision.match.api;
    switch (decision.kind) {
      case 'reject':
        return this.reject(decision.error);
      case 'models':
        return this.answerModels(decision.match.routes);
      case 'readBody':
        this.phase = { kind: 'readingBody', read: decision };
        return CONTINUE.requestHeaders;
    }
  }

  private answerModels(routes: Parameters<typeof exactModels>[0]): OutgoingResponse {
    const created = this.runtime.loadedAtSeconds;
    const body = JSON.stringify({
      object: 'list',
      data: exactModels(routes).map((id) => ({ id, object: 'model', created, owned_by: 'ai-gateway' })),
    });
    this.phase = DONE;
    this.context.localReply(200);
    this.span?.end({ status: 200 });
    return {
      immediateResponse: { status: { code: 200 }, headers: JSON_CONTENT_TYPE, body: Buffer.from(body) },
      dynamicMetadata: localReplyMetadata(this.context, this.runtime),
    };
  }

  /**
   * The request body, whole: Envoy buffers it (BUFFERED mode) and sends it in one message, with
   * `end_of_stream=false` only when trailers follow.
   */
  private onRequestBody(message: HttpBody): OutgoingResponse | Promise<OutgoingResponse> {
    const phase = this.phase;
    if (phase.kind !== 'readingBody') return CONTINUE.requestBody;
    const runtime = this.runtime;
    const raw = toBuffer(message.body);
    if (raw.length > runtime.config.maxRequestBodyBytes) return this.reject(tooLarge(runtime));
    const decision = decideOnBody(runtime, phase.read, raw, this.context.breakers);
    if (decision.kind === 'reject') return this.reject(decision.error);
    const prepared = prepareUpstream(this.context, runtime, phase.read, decision);
    if (prepared.kind === 'reject') return this.reject(prepared.error);
    const exchange = prepared.exchange;
    this.phase = { kind: 'awaitingResponse', exchange };
    if (this.duplex) {
      const fallback = decision.rule.rule.fallback;
      if (fallback !== undefined) this.failover = { runtime, read: phase.read, decision, raw, fallback };
    }
    if (this.span) this.traceRouted(this.span, exchange, decision.stream, raw);
    const answer = upstreamAnswer(runtime, phase.read, prepared, raw);
    if (answer instanceof Promise) return answer.then((resolved) => this.forward(exchange, resolved));
    return this.forward(exchange, answer);
  }

  private forward(exchange: Exchange, answer: OutgoingResponse | CredentialFailure): OutgoingResponse {
    // Settled without this answer (the deadline passed, or the stream was cancelled): nothing more to account.
    if (this.phase.kind !== 'awaitingResponse' || this.phase.exchange !== exchange) return CONTINUE.requestBody;
    if (!(answer instanceof CredentialFailure)) return answer;
    // The backend's failure, for its breaker (so priority failover moves later requests on) and its metrics. The
    // client gets a 503 in its API's error shape that names the backend, never the credential.
    const backend = exchange.backendName;
    const fields = { backend, err: answer.cause instanceof Error ? answer.cause.message : 'auth failed' };
    // A credential problem found when the config loaded was logged once then, not again for every request.
    if (isReportedCredentialProblem(answer.cause)) this.context.logger.debug(fields, 'backend authentication failed');
    else this.context.logger.error(fields, 'backend authentication failed');
    exchange.failBackend('backend_auth_error');
    return this.reject(
      gatewayError(503, `the gateway could not authenticate to backend "${backend}"`, 'backend_auth_error'),
    );
  }

  private traceRouted(span: RequestSpan, exchange: Exchange, stream: boolean, body: Buffer): void {
    const route = exchange.route;
    span.routed({
      api: route.api,
      operation: route.operation,
      requestModel: route.model,
      upstreamModel: route.upstreamModel,
      modelRule: route.modelLabel,
      route: route.routeName,
      backend: exchange.backendName,
      backendSchema: route.backend.config.schema.name,
      consumer: route.consumer?.id,
      stream,
    });
    span.requestBody(body);
    exchange.span = span;
  }

  // ---- response ----

  /**
   * A response message in FULL_DUPLEX_STREAMED mode (false for any other message): a routed request's response is
   * handled by a DuplexResponse, which answers when and as often as the mode wants. Anything else passes unchanged:
   * the headers continue, each body chunk is sent back as it came (Envoy forwards only what the processor streams)
   * and the trailers continue.
   */
  private duplexMessage(request: ProcessingRequest): boolean {
    const kind = request.request;
    if (kind !== 'responseHeaders' && kind !== 'responseBody' && kind !== 'responseTrailers') return false;
    const phase = this.phase;
    if (phase.kind === 'duplexResponse') {
      phase.response.message(request);
      return true;
    }
    if (kind === 'responseHeaders' && phase.kind === 'awaitingResponse') {
      const response = new DuplexResponse(
        this.context,
        phase.exchange,
        this.send,
        this.fail,
        this.failover,
        this.writable,
      );
      this.phase = { kind: 'duplexResponse', exchange: phase.exchange, response };
      response.message(request);
      return true;
    }
    if (kind === 'responseBody') {
      const body = request.responseBody!;
      this.send({
        responseBody: {
          response: {
            bodyMutation: { streamedResponse: { body: toBuffer(body.body), endOfStream: body.endOfStream } },
          },
        },
      });
    } else {
      this.send(CONTINUE[kind]);
    }
    return true;
  }

  private onResponseHeaders(message: HttpHeaders, request: ProcessingRequest): OutgoingResponse {
    const phase = this.phase;
    if (phase.kind !== 'awaitingResponse') return CONTINUE.responseHeaders;
    const pipeline = new ResponsePipeline(this.context, phase.exchange);
    this.phase = { kind: 'readingResponse', exchange: phase.exchange, pipeline };
    return this.settleResponse(pipeline.headers(message, request));
  }

  private onResponseBody(message: HttpBody): OutgoingResponse | Promise<OutgoingResponse> {
    const phase = this.phase;
    if (phase.kind !== 'readingResponse') return this.dropResponseBody ? DROP_RESPONSE_CHUNK : CONTINUE.responseBody;
    const answer = phase.pipeline.body(message);
    return answer instanceof Promise
      ? answer.then((resolved) => this.settleResponse(resolved))
      : this.settleResponse(answer);
  }

  /** Once the exchange is accounted for, the rest of the stream passes unchanged. */
  private settleResponse(answer: OutgoingResponse): OutgoingResponse {
    const phase = this.phase;
    if ((phase.kind === 'readingResponse' || phase.kind === 'awaitingResponse') && phase.exchange.isSettled)
      this.phase = DONE;
    return answer;
  }

  // ---- local replies and failures ----

  /** Ends the request with a local reply: the backend, if one was chosen, never saw it. */
  private reject(error: GatewayError): OutgoingResponse {
    const phase = this.phase;
    this.span?.end({ status: error.status, errorType: error.code ?? error.type });
    if (phase.kind === 'awaitingResponse' || phase.kind === 'readingResponse') phase.exchange.withdraw();
    this.phase = DONE;
    this.context.localReply(error.status);
    return errorReply(this.api, error, localReplyMetadata(this.context, this.runtime));
  }

  /** The answer to a message whose handling threw or missed its deadline. */
  private recover(request: ProcessingRequest, error: unknown): OutgoingResponse {
    const deadline = error instanceof DeadlineExceeded;
    this.context.logger.error(
      { err: error instanceof Error ? error.message : String(error), phase: request.request },
      deadline ? 'answer deadline exceeded' : 'processing failed',
    );
    const kind = request.request;
    if (kind === 'requestHeaders' || kind === 'requestBody') {
      if (this.phase.kind === 'done') return CONTINUE[kind];
      return this.reject(
        deadline
          ? gatewayError(504, 'the gateway did not finish preparing the request in time', 'gateway_timeout')
          : gatewayError(500, 'the gateway failed to process the request', 'processing_error'),
      );
    }
    if (kind === undefined) return CONTINUE.requestHeaders;
    const phase = this.phase;
    if ((phase.kind === 'awaitingResponse' || phase.kind === 'readingResponse') && !phase.exchange.isSettled) {
      // The charge must not be skipped: what was counted so far, final when this was the last message.
      const end =
        kind === 'responseTrailers' ||
        (kind === 'responseHeaders' ? request.responseHeaders?.endOfStream : request.responseBody?.endOfStream) ===
          true ||
        deadline;
      const metadata = end
        ? phase.exchange.finish(deadline ? 'processing_timeout' : 'processing_error')
        : phase.exchange.current();
      if (end) this.phase = DONE;
      if (phase.kind === 'readingResponse' && phase.pipeline.rewritesBody) this.dropResponseBody = end;
      if (kind === 'responseBody' && phase.kind === 'readingResponse' && phase.pipeline.rewritesBody) {
        // The client must not get the upstream's bytes untranslated: this chunk produces nothing.
        return { responseBody: { response: { bodyMutation: { body: Buffer.alloc(0) } } }, dynamicMetadata: metadata };
      }
      return continueWith(kind, metadata);
    }
    return CONTINUE[kind];
  }
}

/**
 * The span of a request whose headers just arrived, continuing the W3C trace context Envoy gives: with its tracing on,
 * in the stream's gRPC metadata (the parent is Envoy's span for the ext_proc call, in the trace of the request);
 * otherwise the request's own `traceparent` header, when the client sent one.
 */
function startSpan(tracer: RequestTracer, metadata: StreamMetadata | undefined, message: HttpHeaders): RequestSpan {
  const fromEnvoy = metadata === undefined ? undefined : firstString(metadata.get('traceparent'));
  if (fromEnvoy !== undefined) return tracer.start(fromEnvoy, firstString(metadata!.get('tracestate')));
  const headers = new HeaderList(message.headers);
  return tracer.start(headers.get('traceparent'), headers.get('tracestate'));
}

function firstString(values: Array<string | Buffer>): string | undefined {
  const value = values[0];
  return typeof value === 'string' ? value : undefined;
}

class DeadlineExceeded extends Error {
  constructor() {
    super(`no answer within ${ANSWER_DEADLINE_MS} ms`);
  }
}
