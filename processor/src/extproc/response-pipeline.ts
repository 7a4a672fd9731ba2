/**
 * The response phase of a routed request: who answered (the backend or Envoy itself), then the body decoded,
 * translated back into the client's API and counted. Usage reaches Envoy as metadata through the Exchange.
 *
 * Body modes: Envoy buffers the response (one body message, `end_of_stream=false` only when trailers follow)
 * unless the response headers answer switched it to STREAMED for an event stream.
 */
import { type BodyDecoder, type DecodeResult } from '../encoding';
import { renderError, gatewayError } from '../errors';
import {
  budgetError,
  budgetUse,
  ENVOY_RATE_LIMITED_HEADER,
  exhaustedBudget,
  RATE_LIMIT_LIMIT_HEADER,
  RATE_LIMIT_REMAINING_HEADER,
  RATE_LIMIT_RESET_HEADER,
} from '../governance/budgets';
import {
  BODY_MODE_STREAMED,
  CONTINUE_AND_REPLACE,
  type CommonResponse,
  type EncodedStruct,
  type HttpBody,
  type HttpHeaders,
  type OutgoingResponse,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../grpc/messages';
import { CONTINUE, continueWith } from './answers';
import type { ProcessorContext } from './context';
import { localReplyMetadata, type Exchange } from './exchange';
import { headerOption } from './header-options';
import { HeaderChangeSet, readHeaders, readLastValues, readResponseHeaders } from './headers';
import { EMPTY, toBuffer } from './message-bytes';
import { classifyResponse, responseCodeDetails, type ResponseOrigin } from './local-replies';
import { bodyCoding, decodeFailureText, inflateLimit } from './body-coding';

/** What a rate-limit 429 is read for, and only then. */
export const BUDGET_HEADERS = [RATE_LIMIT_LIMIT_HEADER, RATE_LIMIT_RESET_HEADER];
/** What any routed response is read for when budgets cover the gateway: how much of the tightest one is used. */
const BUDGET_USE_HEADERS = [RATE_LIMIT_LIMIT_HEADER, RATE_LIMIT_REMAINING_HEADER];
/** Envoy's `response.code_details` of its rate-limit filter's rejection (`RcDetails::RateLimited`). */
export const RATE_LIMITED_DETAILS = 'request_rate_limited';

export class ResponsePipeline {
  private decoder: BodyDecoder | undefined;
  private passthroughBody = true;
  private streaming = false;
  /** Translated bytes of a buffered response, sent at its end with a corrected Content-Length. */
  private buffered: Buffer[] | undefined;
  /** Bytes inflated so far. */
  private inflated = 0;
  /** The content-encoding of a response the processor cannot decode. */
  private undecodable: string | undefined;
  /** A decoding failure was logged (once per response, not per chunk). */
  private decodeFailureLogged = false;

  constructor(
    private readonly context: ProcessorContext,
    private readonly exchange: Exchange,
  ) {}

  get isStreaming(): boolean {
    return this.streaming;
  }

  /** The client gets bytes this pipeline produces, not the upstream's as they came. */
  get rewritesBody(): boolean {
    return !this.passthroughBody;
  }

  headers(message: HttpHeaders, request: ProcessingRequest): OutgoingResponse {
    const exchange = this.exchange;
    const details = responseCodeDetails(request);
    const origin = classifyResponse(details);
    if (origin.kind !== 'upstream') {
      // Envoy's rate-limit filter sends its 429 with these details; `x-envoy-ratelimited` only where Envoy Gateway
      // keeps Envoy's headers (ClientTrafficPolicy `enableEnvoyHeaders`).
      if (details === RATE_LIMITED_DETAILS) return this.budgetRejected(readHeaders(message.headers, BUDGET_HEADERS));
      return this.envoyLocalReply(origin);
    }
    const headers = readResponseHeaders(message.headers);
    const status = Number(headers[':status'] ?? 0);
    if (status === 429 && details === undefined && headers[ENVOY_RATE_LIMITED_HEADER] !== undefined) {
      // A policy that does not send `response.code_details`: Envoy's rate-limit header, when kept, tells its 429 apart.
      return this.budgetRejected(readHeaders(message.headers, BUDGET_HEADERS));
    }
    observeBudgetUse(this.context, exchange, message.headers);
    exchange.backendResult(!(status >= 500 || status === 429 || status === 0));
    exchange.span?.responseStatus(status);

    const translator = exchange.route.response;
    const head = translator.head(status, headers);
    this.passthroughBody = translator.passthroughBody === true;
    this.streaming = head.stream;
    const changes = new HeaderChangeSet();
    changes.apply(head);
    const coding = bodyCoding(headers['content-encoding'], this.passthroughBody, head.stream, changes);
    this.decoder = coding.decoder;
    this.undecodable = coding.undecodable;
    if (!this.passthroughBody && head.stream) changes.remove('content-length');
    const headerMutation = changes.toMutation();
    if (!headerMutation && !head.stream && !message.endOfStream) return CONTINUE.responseHeaders;
    const response: ProcessingResponse = { responseHeaders: { response: { headerMutation } } };
    if (head.stream) response.modeOverride = { responseBodyMode: BODY_MODE_STREAMED };
    // Numbers are in place even if the event stream is cut before its first chunk.
    if (message.endOfStream) response.dynamicMetadata = exchange.finish();
    else if (head.stream) response.dynamicMetadata = exchange.current();
    return response;
  }

  private envoyLocalReply(origin: Exclude<ResponseOrigin, { kind: 'upstream' }>): ProcessingResponse {
    return {
      responseHeaders: { response: {} },
      dynamicMetadata: settleEnvoyLocalReply(this.context, this.exchange, origin),
    };
  }

  /**
   * The budget's 429 (see `settleBudgetRejection`) with the client's error in place of Envoy's empty body
   * (CONTINUE_AND_REPLACE with a body mutation: Envoy drops any body of its own and the Content-Length with it).
   * Status and `x-ratelimit-*` headers stay as Envoy set them.
   */
  private budgetRejected(headers: Readonly<Record<string, string>>): ProcessingResponse {
    const body = settleBudgetRejection(this.context, this.exchange, headers);
    return {
      responseHeaders: {
        response: {
          status: CONTINUE_AND_REPLACE,
          headerMutation: { setHeaders: [headerOption('content-type', 'application/json')], removeHeaders: [] },
          bodyMutation: { body },
        },
      },
      dynamicMetadata: localReplyMetadata(this.context, this.exchange.route.runtime),
    };
  }

  /**
   * One body message. In buffered mode the message is the whole body even without `end_of_stream` (trailers follow).
   */
  body(message: HttpBody): OutgoingResponse | Promise<OutgoingResponse> {
    const end = message.endOfStream === true || !this.streaming;
    if (this.streaming) this.exchange.firstChunk();
    const chunk = toBuffer(message.body);
    if (this.undecodable !== undefined) return this.decodedBody({ ok: false, reason: 'unsupported' }, end);
    if (!this.decoder) return this.translate(chunk, end);
    const limit = inflateLimit(this.streaming, this.inflated);
    return this.decoder.push(chunk, end, limit).then((decoded) => this.decodedBody(decoded, end));
  }

  /**
   * Trailers after a streamed body: the stream is over without a last body message. What was counted is final;
   * a translator's last bytes cannot travel in a trailers answer, so nothing more is produced.
   */
  trailers(): OutgoingResponse {
    if (this.exchange.isSettled) return CONTINUE.responseTrailers;
    this.exchange.route.response.body(EMPTY, true);
    return continueWith('responseTrailers', this.exchange.finish());
  }

  private decodedBody(decoded: DecodeResult, end: boolean): OutgoingResponse {
    if (decoded.ok) {
      this.inflated += decoded.bytes.length;
      return this.translate(decoded.bytes, end);
    }
    const what = decodeFailureText(decoded.reason, this.streaming, this.undecodable);
    if (!this.decodeFailureLogged) {
      this.decodeFailureLogged = true;
      this.context.logger.warn(
        { backend: this.exchange.backendName, reason: decoded.reason },
        'upstream response body could not be decoded',
      );
    }
    if (this.streaming) {
      // The client already has the headers: a translated stream ends here (a passthrough one still reaches the
      // client, which can decode it), charged what was counted.
      return {
        responseBody: { response: this.passthroughBody ? {} : { bodyMutation: { body: EMPTY } } },
        dynamicMetadata: end ? this.exchange.finish('upstream_decode_error') : this.exchange.current(),
      };
    }
    // Buffered: Envoy still holds the headers; the client gets a gateway error instead of a body nobody read.
    this.exchange.backendResult(false);
    this.exchange.span?.responseStatus(502);
    const error = gatewayError(502, `the backend's response ${what}`, 'upstream_decode_error');
    const body = renderError(this.exchange.route.api, error);
    const response: CommonResponse = {
      bodyMutation: { body },
      headerMutation: {
        setHeaders: [
          headerOption(':status', '502'),
          headerOption('content-length', String(body.length)),
          headerOption('content-type', 'application/json'),
        ],
        removeHeaders: ['content-encoding'],
      },
    };
    return { responseBody: { response }, dynamicMetadata: this.exchange.finish('upstream_decode_error') };
  }

  private translate(chunk: Buffer, end: boolean): OutgoingResponse {
    const exchange = this.exchange;
    const translator = exchange.route.response;
    const out = translator.body(chunk, end);
    exchange.span?.responseBytes(this.passthroughBody ? chunk : out);
    let common: CommonResponse | undefined;
    if (!this.passthroughBody) {
      if (this.streaming) {
        common = { bodyMutation: { body: out } };
      } else if (!end) {
        if (out.length > 0) (this.buffered ??= []).push(out);
        common = { bodyMutation: { body: EMPTY } };
      } else {
        // Buffered: Envoy still holds the headers, so Content-Length can be corrected here.
        const parts = this.buffered ?? [];
        if (out.length > 0) parts.push(out);
        this.buffered = undefined;
        const whole = parts.length === 1 ? parts[0] : Buffer.concat(parts);
        const setHeaders = [headerOption('content-length', String(whole.length))];
        const replacedStatus = translator.replacedStatus;
        if (replacedStatus !== undefined) {
          // The provider said 2xx but its answer could not be translated: the client gets the error's status.
          setHeaders.push(headerOption(':status', String(replacedStatus)));
          exchange.backendResult(false);
          exchange.span?.responseStatus(replacedStatus);
        }
        common = { bodyMutation: { body: whole }, headerMutation: { setHeaders, removeHeaders: [] } };
      }
    }
    // Envoy keeps the last metadata written; if the client goes away now, it charges what was counted so far.
    const metadata = end ? exchange.finish() : this.streaming ? exchange.progress() : undefined;
    if (!common) return continueWith('responseBody', metadata);
    return { responseBody: { response: common }, dynamicMetadata: metadata };
  }
}

/**
 * Envoy answered instead of the backend: the reply goes to the client as Envoy made it (its body is not the
 * provider's, so it is not translated) and no tokens are charged. An upstream connect failure or timeout is the
 * backend's failure (breaker and metrics); anything else (no route after the re-match, a rate limit, a direct
 * response) says nothing about the backend: its breaker probe slot is freed and its metrics are untouched.
 */
export function settleEnvoyLocalReply(
  context: ProcessorContext,
  exchange: Exchange,
  origin: Exclude<ResponseOrigin, { kind: 'upstream' }>,
): EncodedStruct {
  const runtime = exchange.route.runtime;
  if (origin.kind === 'backendFailure') return exchange.failBackend(origin.errorType);
  // Envoy's reply, not the backend's: its details (without a bracketed reason) say why.
  exchange.span?.end({ errorType: origin.details.split('{', 1)[0].slice(0, 64) });
  exchange.withdraw();
  const log = { backend: exchange.backendName, model: exchange.route.model, details: origin.details };
  // The processor rewrote the request for this backend and the re-match found no route: a routing bug.
  if (origin.details === 'route_not_found')
    context.logger.warn(log, 'Envoy found no route for the request rewritten for the backend');
  else context.logger.debug(log, 'Envoy answered the request locally');
  return localReplyMetadata(context, runtime);
}

/**
 * Budget use for the dashboard and the nearly-exhausted alert: the draft-03 headers Envoy's rate-limit filter adds to
 * the response (it follows ext_proc in the filter chain, so it adds them before ext_proc sees the response) say how
 * much of the budget closest to running out is used. Read only when the gateway has budgets.
 */
export function observeBudgetUse(context: ProcessorContext, exchange: Exchange, headers: HttpHeaders['headers']): void {
  const route = exchange.route;
  const budgets = route.runtime.governance.budgets;
  if (budgets.length === 0) return;
  // The window is that of the check (when the request was routed), not of the answer, which may come in the next.
  const use = budgetUse(
    budgets,
    route.routeName,
    route.consumer,
    readLastValues(headers, BUDGET_USE_HEADERS),
    exchange.routedAtMs,
  );
  if (use !== undefined) context.metrics.recordBudgetUse(use, route.consumer?.id);
}

/**
 * Envoy's rate-limit filter answered 429 (`request_rate_limited`) because a budget ran out: accounted (metric, the
 * first rejection per window logged) and the client's error naming the budget and when its window ends, in its own
 * API's schema, returned. No tokens are charged and the backend never saw the request.
 */
export function settleBudgetRejection(
  context: ProcessorContext,
  exchange: Exchange,
  headers: Readonly<Record<string, string>>,
): Buffer {
  const route = exchange.route;
  const runtime = route.runtime;
  exchange.span?.end({ status: 429, errorType: 'budget_exhausted' });
  exchange.withdraw();
  const now = Date.now();
  const governance = runtime.governance;
  const exhausted = exhaustedBudget(governance.budgets, route.routeName, route.consumer, headers, now);
  const consumer = route.consumer?.id;
  context.metrics.recordBudgetRejection(exhausted.name, consumer);
  if (exhausted.name !== undefined && exhausted.windowKey !== undefined)
    context.metrics.recordBudgetUse(
      { name: exhausted.name, usedRatio: 1, windowEndsAt: exhausted.windowKey },
      consumer,
    );
  if (governance.exhaustions.firstInWindow(consumer ?? '', exhausted.name ?? '', exhausted.windowKey, now)) {
    context.logger.warn(
      {
        consumer,
        budget: exhausted.name,
        route: route.routeName,
        windowEndsAt: exhausted.windowEndsAt === undefined ? undefined : new Date(exhausted.windowEndsAt).toISOString(),
      },
      'budget used up: Envoy rejects the requests it covers until its window ends ' +
        '(logged once per consumer, budget and window)',
    );
  }
  return renderError(route.api, budgetError(exhausted));
}
