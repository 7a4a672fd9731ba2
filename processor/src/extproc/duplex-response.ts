/**
 * The response phase in Envoy's FULL_DUPLEX_STREAMED mode (routes with a fallback rule are served by an
 * EnvoyExtensionPolicy in that mode). Envoy holds the response headers until their answer, but sends every body
 * chunk without waiting for answers and forwards to the client only what the processor sends back as
 * `streamed_response` bodies. The rules the answers keep (Envoy's ext_proc filter fails the stream otherwise):
 *
 * - the headers answer comes first (mode overrides are ignored in this mode; Envoy removes Content-Length itself);
 * - a body answer only after the headers answer and after Envoy sent at least one body chunk;
 * - the client's response ends with a body answer carrying `end_of_stream`, sent after Envoy's last chunk, or, when
 *   the upstream sent trailers, with the trailers answer;
 * - before the headers answer, an immediate response replaces the whole response (the only way to give a body to a
 *   response that had none).
 *
 * No message timeout applies: the headers answer of a body read whole waits for the body's end.
 */
import type { BackendRef, FallbackConfig } from '@ai-gateway-constructs/processor-config';
import type { RuntimeConfig } from '../config/runtime';
import { MAX_INFLATED_BYTES } from '../encoding';
import { gatewayError, renderError, type GatewayError } from '../errors';
import {
  AttemptFailure,
  attemptRequest,
  failoverReason,
  fallbackRouting,
  nextFallback,
  type AttemptResponse,
  type FailoverReason,
} from '../fallback';
import { ENVOY_RATE_LIMITED_HEADER } from '../governance/budgets';
import type {
  EncodedStruct,
  HeaderMutation,
  HeaderValueOption,
  OutgoingResponse,
  ProcessingRequest,
} from '../grpc/messages';
import { RESPONSE_HEADERS_READ, type ResponseHeaders } from '../translate/types';
import { CONTINUE } from './answers';
import type { ProcessorContext } from './context';
import { BodyTranslation, EnvoyBody, type BodyPart } from './duplex-body';
import { localReplyMetadata, type Exchange } from './exchange';
import { headerOption } from './header-options';
import { HeaderChangeSet, readHeaders, readResponseHeaders } from './headers';
import { EMPTY, toBuffer } from './message-bytes';
import { classifyResponse, FROM_UPSTREAM, responseCodeDetails, type ResponseOrigin } from './local-replies';
import type { RoutingDecision } from './request-route';
import { CredentialFailure, prepareUpstream, type BodyRead, type PreparedRequest } from './upstream-request';
import {
  BUDGET_HEADERS,
  RATE_LIMITED_DETAILS,
  observeBudgetUse,
  settleBudgetRejection,
  settleEnvoyLocalReply,
} from './response-pipeline';

/** Body bytes from Envoy that may wait for the processor to read them (decoding is asynchronous). */
export const MAX_DUPLEX_QUEUED_BYTES = 64 * 1024 * 1024;

const JSON_TYPE = headerOption('content-type', 'application/json');

/** What failing over needs, kept from the request phase (duplex mode and a rule with `fallback` only). */
export interface FailoverPlan {
  readonly runtime: RuntimeConfig;
  readonly read: BodyRead;
  /** The routing of the request as Envoy sent it (the first attempt). */
  readonly decision: RoutingDecision;
  /** The client's request body. */
  readonly raw: Buffer;
  readonly fallback: FallbackConfig;
}

/** A fallback backend, routed and translated for (its exchange holds the backend's breaker slot). */
interface Candidate {
  readonly ref: BackendRef;
  readonly prepared: PreparedRequest;
}

/**
 * Where the response phase is: relaying an answer to the client (Envoy's, or the processor's last attempt), or failing
 * over (attempts the processor sends itself while Envoy holds the primary's headers).
 */
type ResponseState =
  | { readonly kind: 'relaying' }
  | {
      readonly kind: 'failingOver';
      /** Backends tried so far, the first attempt's included. */
      readonly tried: Set<string>;
      /** Attempts made, the first (Envoy's) included. */
      attempts: number;
      /** The backend whose answer moved the request on, and why. */
      from: string;
      reason: FailoverReason;
    };

export class DuplexResponse {
  private readonly envoy = new EnvoyBody(MAX_DUPLEX_QUEUED_BYTES);
  private started = false;
  private headersAnswered = false;
  /** The client's response ended (or was replaced): nothing more is sent. */
  private over = false;
  private closed = false;
  private state: ResponseState = { kind: 'relaying' };
  /** The exchange being answered or attempted: the primary, then each attempt. */
  private current: Exchange;
  /** Aborts the attempt in flight when the stream goes away. */
  private readonly abort = new AbortController();

  constructor(
    private readonly context: ProcessorContext,
    private readonly exchange: Exchange,
    private readonly emit: (response: OutgoingResponse) => void,
    private readonly fail: (error: Error) => void,
    private readonly plan: FailoverPlan | undefined = undefined,
    /** Resolves once Envoy reads what was written: an attempt's answer is read no faster than the client takes it. */
    private readonly writable: () => Promise<void> = () => Promise.resolve(),
  ) {
    this.current = exchange;
  }

  /** Envoy's response headers, body chunks and trailers. */
  message(request: ProcessingRequest): void {
    if (this.closed) return;
    switch (request.request) {
      case 'responseHeaders':
        if (this.started) return;
        this.started = true;
        this.run(request).then(
          () => this.ended(),
          (error: unknown) => this.broken(error),
        );
        return;
      case 'responseBody': {
        const body = request.responseBody!;
        if (!this.envoy.push(toBuffer(body.body), body.endOfStream === true)) {
          this.broken(new Error(`more than ${MAX_DUPLEX_QUEUED_BYTES} response body bytes waiting to be read`));
        }
        return;
      }
      case 'responseTrailers':
        this.envoy.trailers();
        return;
      default:
        return;
    }
  }

  /**
   * The stream ended: nothing more is sent, readers stop, an attempt in flight is aborted and accounted as cut (the
   * primary exchange is the session's).
   */
  close(cancelled: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.envoy.stop();
    this.abort.abort(new Error('the ext_proc stream ended'));
    if (this.current !== this.exchange) this.current.abandon(cancelled);
    this.ended();
  }

  private ended(): void {
    this.over = true;
  }

  private async run(request: ProcessingRequest): Promise<void> {
    const message = request.responseHeaders!;
    if (message.endOfStream) this.envoy.noBody();
    const exchange = this.exchange;
    const details = responseCodeDetails(request);
    const origin = classifyResponse(details);
    if (origin.kind !== 'upstream') {
      if (details === RATE_LIMITED_DETAILS) return this.budgetRejected(request);
      if (this.plan !== undefined && (await this.failedOver(request, origin))) return;
      return this.envoyLocalReply(origin);
    }
    const headers = readResponseHeaders(message.headers);
    const status = Number(headers[':status'] ?? 0);
    if (status === 429 && details === undefined && headers[ENVOY_RATE_LIMITED_HEADER] !== undefined) {
      return this.budgetRejected(request);
    }
    observeBudgetUse(this.context, exchange, message.headers);
    if (this.plan !== undefined && (await this.failedOver(request, origin))) return;
    exchange.backendResult(!(status >= 500 || status === 429 || status === 0));
    exchange.span?.responseStatus(status);
    const translation = new BodyTranslation(this.context, exchange, status, headers);
    if (this.envoy.headersOnly) {
      this.answerHeaders(translation.changes.toMutation(), exchange.finish());
      return;
    }
    return this.relay(exchange, translation, this.envoy, translation.changes);
  }

  // ---- failing over ----

  /**
   * Fails over when the rule says this answer moves the request on and a fallback backend can be tried: false (and
   * nothing done) otherwise. Envoy holds the primary's headers meanwhile (no timer runs in this mode); its body
   * chunks get no answers. Each attempt's backend gets its breaker result and metrics; the failed ones charge
   * nothing; the client gets the last answer (translated as usual) or, when the last attempt got none, a gateway
   * error naming its backend.
   */
  private async failedOver(request: ProcessingRequest, origin: ResponseOrigin): Promise<boolean> {
    const plan = this.plan!;
    const message = request.responseHeaders!;
    const primaryHeaders = readHeaders(message.headers);
    const reason = failoverReason(plan.fallback, origin, Number(primaryHeaders[':status'] ?? 0));
    if (reason === undefined || plan.fallback.maxAttempts < 2) return false;
    const primary = this.exchange;
    const tried = new Set([primary.backendName]);
    const first = this.nextCandidate(tried, plan.decision.ref.priority);
    if (first === undefined) return false;
    const state: Extract<ResponseState, { kind: 'failingOver' }> = {
      kind: 'failingOver',
      tried,
      attempts: 1,
      from: primary.backendName,
      reason,
    };
    this.state = state;
    this.envoy.discard();
    // The request's span ends with the answering attempt, not with the primary's failure.
    const span = primary.span;
    primary.span = undefined;
    primary.failBackend('failed_over');
    const primaryNames = Object.keys(primaryHeaders).filter((name) => !name.startsWith(':'));
    const routeName = plan.decision.rule.rule.route.name;
    let candidate: Candidate | undefined = first;
    while (candidate !== undefined) {
      const ref: BackendRef = candidate.ref;
      const prepared: PreparedRequest = candidate.prepared;
      const exchange = prepared.exchange;
      this.current = exchange;
      state.attempts += 1;
      this.context.metrics.recordFallback(routeName, state.from, ref.backend, state.reason);
      span?.fellBack(ref.backend, state.attempts);
      this.context.logger.debug(
        { route: routeName, from: state.from, to: ref.backend, reason: state.reason, attempt: state.attempts },
        'failing over to the next priority',
      );
      const outcome = await this.attempt(prepared);
      if (this.closed) {
        if (!(outcome instanceof AttemptFailure || outcome instanceof CredentialFailure)) void discardBody(outcome);
        return true;
      }
      // The next backend is routed (and its breaker probe taken) only when this attempt's answer calls for it.
      const more = state.attempts < plan.fallback.maxAttempts;
      if (outcome instanceof CredentialFailure || outcome instanceof AttemptFailure) {
        // A fallback backend whose credential cannot be had says nothing about the request: the next one may serve.
        const again: FailoverReason | undefined =
          outcome instanceof CredentialFailure
            ? 'credential'
            : outcome.kind === 'timeout'
              ? plan.fallback.timeouts
                ? 'timeout'
                : undefined
              : plan.fallback.connectionFailures
                ? 'connection_failure'
                : undefined;
        const errorType = outcome instanceof CredentialFailure ? 'backend_auth_error' : outcome.kind;
        const metadata = exchange.failBackend(errorType);
        const next = again !== undefined && more ? this.nextCandidate(tried, ref.priority) : undefined;
        if (again !== undefined && next !== undefined) {
          state.from = ref.backend;
          state.reason = again;
          candidate = next;
          continue;
        }
        await this.attemptFailed(exchange, outcome, metadata, primaryNames, span);
        return true;
      }
      const again = failoverReason(plan.fallback, FROM_UPSTREAM, outcome.status);
      const next = again !== undefined && more ? this.nextCandidate(tried, ref.priority) : undefined;
      if (again !== undefined && next !== undefined) {
        void discardBody(outcome);
        exchange.failBackend('failed_over');
        state.from = ref.backend;
        state.reason = again;
        candidate = next;
        continue;
      }
      exchange.span = span;
      this.state = { kind: 'relaying' };
      await this.relayAttempt(exchange, outcome, primaryNames);
      return true;
    }
    return true;
  }

  /**
   * The next fallback backend that can serve the request, routed and translated for it; one that cannot (no
   * translator for the operation, an unpriced model where prices are required, an untranslatable request) is skipped.
   */
  private nextCandidate(tried: Set<string>, abovePriority: number): Candidate | undefined {
    const plan = this.plan!;
    const settings = plan.runtime.config.circuitBreaker;
    for (;;) {
      const ref = nextFallback(plan.decision.rule.rule.backends, tried, abovePriority, this.context.breakers, settings);
      if (ref === undefined) return undefined;
      tried.add(ref.backend);
      const routing = fallbackRouting(plan.runtime, plan.decision, ref);
      const prepared =
        routing.kind === 'reject' ? routing : prepareUpstream(this.context, plan.runtime, plan.read, routing);
      if (prepared.kind === 'prepared') return { ref, prepared };
      this.context.logger.debug(
        { backend: ref.backend, err: prepared.error.message },
        'fallback backend skipped: it cannot serve this request',
      );
    }
  }

  /** One attempt: the request signed for its backend, sent with the rule's deadline; aborted with the stream. */
  private async attempt(prepared: PreparedRequest): Promise<AttemptResponse | AttemptFailure | CredentialFailure> {
    const plan = this.plan!;
    const request = await attemptRequest(plan.runtime, plan.read, prepared, plan.raw);
    if (request instanceof CredentialFailure) return request;
    const endpoint = prepared.exchange.route.backend.config.endpoint;
    try {
      return await this.context.egress.send(request, endpoint, plan.fallback.attemptTimeoutMs, this.abort.signal);
    } catch (error) {
      if (error instanceof AttemptFailure && !this.closed) return error;
      throw error;
    }
  }

  /**
   * The answering attempt to the client, in place of the primary: every header the primary had removed, the attempt's
   * set with its `:status`, then its translated head; its body translated as streamed bodies. A primary Envoy sent no
   * body chunk of can only be replaced by an immediate response: the answer is read whole for it.
   */
  private async relayAttempt(exchange: Exchange, response: AttemptResponse, primaryNames: string[]): Promise<void> {
    const status = response.status;
    exchange.backendResult(!(status >= 500 || status === 429 || status === 0));
    exchange.span?.responseStatus(status);
    const changes = new HeaderChangeSet();
    for (const name of primaryNames) changes.remove(name);
    for (const name in response.headers) if (name !== 'content-length') changes.set(name, response.headers[name]);
    changes.set(':status', String(status));
    const translation = new BodyTranslation(this.context, exchange, status, readAttemptHeaders(response), changes);
    const source = new AttemptBody(response.body);
    await this.envoy.whenStarted;
    if (this.closed) {
      void discardBody(response);
      return;
    }
    if (!this.envoy.sawChunk) return this.replaceWhole(exchange, translation, source, status);
    return this.relay(exchange, translation, source, translation.changes);
  }

  /** The attempt's answer read whole (bounded) and sent as an immediate response. */
  private async replaceWhole(
    exchange: Exchange,
    translation: BodyTranslation,
    source: AttemptBody,
    status: number,
  ): Promise<void> {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const part of source) {
      const out = await translation.push(part.bytes, part.end);
      if (this.closed) return;
      size += out.length;
      if (size > MAX_INFLATED_BYTES) {
        translation.failure = 'too_large';
        break;
      }
      if (out.length > 0) parts.push(out);
      if (part.end) break;
    }
    if (this.closed) return;
    const unreadable = unreadableAnswer(exchange, translation, source.failure);
    if (unreadable !== undefined) {
      const { error, metadata } = unreadable;
      this.sendImmediate(error.status, [JSON_TYPE], renderError(exchange.route.api, error), metadata);
      return;
    }
    const replacedStatus = exchange.route.response.replacedStatus;
    if (replacedStatus !== undefined) {
      exchange.backendResult(false);
      exchange.span?.responseStatus(replacedStatus);
    }
    const headers = translation.changes.appliedTo({});
    const setHeaders: HeaderValueOption[] = [];
    for (const name in headers) {
      if (name.startsWith(':') || name === 'content-length') continue;
      setHeaders.push(headerOption(name, headers[name]));
    }
    const body = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    this.sendImmediate(replacedStatus ?? status, setHeaders, body, exchange.finish());
  }

  /**
   * The last attempt got no answer (or no credential): the client gets a gateway error naming its backend in its
   * API's schema, in place of the primary's answer.
   */
  private async attemptFailed(
    exchange: Exchange,
    failure: AttemptFailure | CredentialFailure,
    metadata: EncodedStruct,
    primaryNames: string[],
    span: Exchange['span'],
  ): Promise<void> {
    const backend = exchange.backendName;
    const error =
      failure instanceof CredentialFailure
        ? gatewayError(503, `the gateway could not authenticate to backend "${backend}"`, 'backend_auth_error')
        : attemptError(backend, failure);
    span?.end({ status: error.status, errorType: error.code ?? error.type });
    this.context.logger.warn(
      { backend, status: error.status, err: failure instanceof AttemptFailure ? failure.message : 'auth failed' },
      'the last fallback attempt got no answer',
    );
    const body = renderError(exchange.route.api, error);
    await this.envoy.whenStarted;
    if (this.closed) return;
    if (!this.envoy.sawChunk) {
      this.sendImmediate(error.status, [JSON_TYPE], body, metadata);
      return;
    }
    const changes = new HeaderChangeSet();
    for (const name of primaryNames) changes.remove(name);
    changes.set(':status', String(error.status));
    changes.set('content-type', 'application/json');
    this.answerHeaders(changes.toMutation(), undefined);
    return this.finish(body, metadata);
  }

  private sendImmediate(
    status: number,
    setHeaders: HeaderValueOption[],
    body: Buffer,
    metadata: EncodedStruct | undefined,
  ): void {
    this.headersAnswered = true;
    this.send({
      immediateResponse: { status: { code: status }, headers: { setHeaders, removeHeaders: [] }, body },
      dynamicMetadata: metadata,
    });
  }

  // ---- relaying a body ----

  /**
   * The body of `source` to the client through `translation`: an event stream or a passthrough body as it comes
   * (headers answered first), any other body whole, its headers answered at its end (`:status` replaced when the
   * answer could not be translated or decoded).
   */
  private async relay(
    exchange: Exchange,
    translation: BodyTranslation,
    source: AsyncIterable<BodyPart>,
    changes: HeaderChangeSet,
  ): Promise<void> {
    if (translation.forwardsAsItComes) {
      this.answerHeaders(changes.toMutation(), translation.streaming ? exchange.current() : undefined);
      for await (const part of source) {
        if (translation.streaming) exchange.firstChunk();
        const out = await translation.push(part.bytes, part.end);
        if (this.closed) return;
        if (part.end) {
          const cut = source instanceof AttemptBody ? source.failure : undefined;
          if (cut !== undefined) return this.cutShort(exchange, out, cut);
          const metadata = exchange.finish(translation.failure ? 'upstream_decode_error' : undefined);
          return this.finish(out, metadata);
        }
        const metadata = translation.streaming ? exchange.progress() : undefined;
        if (out.length > 0 || metadata !== undefined) this.streamBody(out, false, metadata);
        // Envoy's own chunks stop coming while it does not read (the server pauses); an attempt's must wait here.
        if (source instanceof AttemptBody) await this.writable();
      }
      return;
    }
    let out: Buffer = EMPTY;
    for await (const part of source) {
      out = await translation.push(part.bytes, part.end);
      if (this.closed || part.end) break;
    }
    if (this.closed) return;
    let metadata: EncodedStruct;
    const unreadable = unreadableAnswer(
      exchange,
      translation,
      source instanceof AttemptBody ? source.failure : undefined,
    );
    if (unreadable !== undefined) {
      out = renderError(exchange.route.api, unreadable.error);
      changes.set(':status', String(unreadable.error.status));
      changes.set('content-type', 'application/json');
      changes.remove('content-encoding');
      metadata = unreadable.metadata;
    } else {
      const replacedStatus = exchange.route.response.replacedStatus;
      if (replacedStatus !== undefined) {
        // The provider said 2xx but its answer could not be translated: the client gets the error's status.
        changes.set(':status', String(replacedStatus));
        exchange.backendResult(false);
        exchange.span?.responseStatus(replacedStatus);
      }
      metadata = exchange.finish();
    }
    this.answerHeaders(changes.toMutation(), undefined);
    return this.finish(out, metadata);
  }

  // ---- Envoy's own replies ----

  /** Envoy answered instead of the backend: its reply goes to the client as it is (see ResponsePipeline). */
  private async envoyLocalReply(origin: Exclude<ResponseOrigin, { kind: 'upstream' }>): Promise<void> {
    this.answerHeaders(undefined, settleEnvoyLocalReply(this.context, this.exchange, origin));
    if (this.envoy.headersOnly) return;
    return this.echo();
  }

  /**
   * A budget's 429: the client's error in place of Envoy's body. With a body, headers answered then the error as the
   * streamed body (Envoy's own chunks dropped); without one, only an immediate response can carry a body, so it
   * replaces the reply, with Envoy's headers (`x-ratelimit-*`) copied.
   */
  private async budgetRejected(request: ProcessingRequest): Promise<void> {
    const message = request.responseHeaders!;
    const body = settleBudgetRejection(this.context, this.exchange, readHeaders(message.headers, BUDGET_HEADERS));
    const metadata = localReplyMetadata(this.context, this.exchange.route.runtime);
    if (this.envoy.headersOnly) {
      const setHeaders = [JSON_TYPE];
      const headers = readHeaders(message.headers);
      for (const name in headers) {
        if (name.startsWith(':') || name === 'content-type' || name === 'content-length') continue;
        setHeaders.push(headerOption(name, headers[name]));
      }
      this.send({
        immediateResponse: { status: { code: 429 }, headers: { setHeaders, removeHeaders: [] }, body },
        dynamicMetadata: metadata,
      });
      return;
    }
    this.answerHeaders({ setHeaders: [JSON_TYPE], removeHeaders: [] }, metadata);
    this.envoy.discard();
    return this.finish(body, undefined);
  }

  /** Envoy's body as it is. */
  private async echo(): Promise<void> {
    for await (const part of this.envoy) {
      if (part.end && this.envoy.sawTrailers) this.send(CONTINUE.responseTrailers);
      else this.streamBody(part.bytes, part.end, undefined);
    }
  }

  // ---- answers ----

  private send(response: OutgoingResponse): void {
    if (!this.closed) this.emit(response);
  }

  private answerHeaders(mutation: HeaderMutation | undefined, metadata: EncodedStruct | undefined): void {
    this.headersAnswered = true;
    if (mutation === undefined && metadata === undefined) this.send(CONTINUE.responseHeaders);
    else this.send({ responseHeaders: { response: { headerMutation: mutation } }, dynamicMetadata: metadata });
  }

  private streamBody(body: Buffer, end: boolean, metadata: EncodedStruct | undefined): void {
    this.send({
      responseBody: { response: { bodyMutation: { streamedResponse: { body, endOfStream: end } } } },
      dynamicMetadata: metadata,
    });
  }

  /**
   * The last bytes and metadata, once Envoy sent all of its response: with `end_of_stream`, or, after Envoy's
   * trailers, followed by the trailers answer that ends the response. A response Envoy sent no chunk of cannot
   * carry body bytes (they would be spurious).
   */
  private async finish(last: Buffer, metadata: EncodedStruct | undefined): Promise<void> {
    await this.envoy.whenEnded;
    if (this.closed) return;
    if (this.envoy.sawTrailers) {
      if (last.length > 0 && this.envoy.sawChunk) this.streamBody(last, false, undefined);
      this.send(
        metadata === undefined ? CONTINUE.responseTrailers : { responseTrailers: {}, dynamicMetadata: metadata },
      );
    } else if (this.envoy.sawChunk) {
      this.streamBody(last, true, metadata);
    }
  }

  /**
   * An attempt's answer that was already streaming to the client broke off or ran past its deadline: what was
   * translated and counted goes out (the usage rides on a body that does not end the response), then Envoy is made to
   * reset the client's response, as it does when its own upstream breaks off mid-answer. A clean end here would pass
   * half an answer off as a whole one.
   */
  private cutShort(exchange: Exchange, out: Buffer, failure: AttemptFailure): void {
    exchange.backendResult(false);
    const metadata = exchange.finish(failure.kind);
    this.streamBody(out, false, metadata);
    this.context.logger.warn(
      { backend: exchange.backendName, reason: failure.kind },
      "a fallback attempt's answer broke off after it began; the client's response is reset",
    );
    // An immediate response once the response has started makes Envoy reset the client's stream; sent on the same
    // gRPC stream, it cannot overtake the usage above (a gRPC error could).
    const error = attemptError(exchange.backendName, failure);
    this.sendImmediate(error.status, [JSON_TYPE], renderError(exchange.route.api, error), undefined);
    this.closed = true;
    this.envoy.stop();
    this.abort.abort(new Error('the answer broke off'));
    this.ended();
  }

  /**
   * Processing failed: what was counted is charged; before the headers answer the client gets a 500 in its schema,
   * after it the stream fails (Envoy resets the response).
   */
  private broken(error: unknown): void {
    if (this.closed || this.over) return;
    const exchange = this.current;
    this.context.logger.error(
      {
        err: error instanceof Error ? error.message : String(error),
        backend: exchange.backendName,
        state: this.state.kind,
      },
      'processing the duplex response failed',
    );
    let metadata: EncodedStruct | undefined;
    if (!exchange.isSettled) {
      // The gateway's failure, not the backend's: its half-open probe slot (if this request held it) is freed.
      this.context.breakers.release(exchange.backendName);
      metadata = exchange.finish('processing_error');
    }
    if (!this.headersAnswered) {
      const failure = gatewayError(500, 'the gateway failed to process the response', 'processing_error');
      this.send({
        immediateResponse: {
          status: { code: 500 },
          headers: { setHeaders: [JSON_TYPE], removeHeaders: [] },
          body: renderError(exchange.route.api, failure),
        },
        dynamicMetadata: metadata,
      });
    } else {
      this.fail(error instanceof Error ? error : new Error(String(error)));
    }
    this.closed = true;
    this.envoy.stop();
    this.abort.abort(new Error('processing the response failed'));
    this.ended();
  }
}

/**
 * An answer the client cannot be given: the attempt's broke off or ran past its deadline (`cut`), or it could not be
 * decoded. Accounted as the backend's failure; the gateway error that replaces it, and the final metadata.
 */
function unreadableAnswer(
  exchange: Exchange,
  translation: BodyTranslation,
  cut: AttemptFailure | undefined,
): { error: GatewayError; metadata: EncodedStruct } | undefined {
  if (cut === undefined && translation.failure === undefined) return undefined;
  const error =
    cut !== undefined
      ? attemptError(exchange.backendName, cut)
      : gatewayError(502, `the backend's response ${translation.failureText}`, 'upstream_decode_error');
  exchange.backendResult(false);
  exchange.span?.responseStatus(error.status);
  return { error, metadata: exchange.finish(cut?.kind ?? 'upstream_decode_error') };
}

/** The gateway error for an attempt that got no (whole) answer: 504 past its deadline, 502 otherwise. */
function attemptError(backend: string, failure: AttemptFailure): GatewayError {
  return failure.kind === 'timeout'
    ? gatewayError(504, `backend "${backend}" did not answer in time`, 'upstream_timeout')
    : gatewayError(502, `the gateway could not get an answer from backend "${backend}"`, 'upstream_connect_error');
}

/** The response headers translators read, from an attempt's answer. */
function readAttemptHeaders(response: AttemptResponse): ResponseHeaders {
  const headers: Record<string, string> = { ':status': String(response.status) };
  for (const name of RESPONSE_HEADERS_READ) {
    const value = response.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  return headers;
}

/** An answer that is not wanted: its connection is released. */
async function discardBody(response: AttemptResponse): Promise<void> {
  try {
    await response.body[Symbol.asyncIterator]().return?.();
  } catch {
    // Nothing more is wanted from it.
  }
}

/**
 * An attempt's body as parts, the last one empty with `end`. A body cut short or past the attempt's deadline ends
 * early, with `failure` set.
 */
class AttemptBody implements AsyncIterable<BodyPart> {
  failure: AttemptFailure | undefined;

  constructor(private readonly body: AsyncIterable<Buffer>) {}

  async *[Symbol.asyncIterator](): AsyncIterator<BodyPart> {
    try {
      for await (const chunk of this.body) yield { bytes: chunk, end: false };
    } catch (error) {
      if (!(error instanceof AttemptFailure)) throw error;
      this.failure = error;
    }
    yield { bytes: EMPTY, end: true };
  }
}
