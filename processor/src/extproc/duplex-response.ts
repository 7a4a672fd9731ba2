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
import { gatewayError, renderError } from '../errors';
import { ENVOY_RATE_LIMITED_HEADER } from '../governance/budgets';
import type { EncodedStruct, HeaderMutation, OutgoingResponse, ProcessingRequest } from '../grpc/messages';
import { CONTINUE } from './answers';
import type { ProcessorContext } from './context';
import { BodyTranslation, EnvoyBody, type BodyPart } from './duplex-body';
import { localReplyMetadata, type Exchange } from './exchange';
import { headerOption } from './header-options';
import { readHeaders, readResponseHeaders, type HeaderChangeSet } from './headers';
import { EMPTY, toBuffer } from './message-bytes';
import { classifyResponse, responseCodeDetails, type ResponseOrigin } from './local-replies';
import {
  BUDGET_HEADERS,
  RATE_LIMITED_DETAILS,
  settleBudgetRejection,
  settleEnvoyLocalReply,
} from './response-pipeline';

/** Body bytes from Envoy that may wait for the processor to read them (decoding is asynchronous). */
export const MAX_DUPLEX_QUEUED_BYTES = 64 * 1024 * 1024;

const JSON_TYPE = headerOption('content-type', 'application/json');

export class DuplexResponse {
  private readonly envoy = new EnvoyBody(MAX_DUPLEX_QUEUED_BYTES);
  private started = false;
  private headersAnswered = false;
  /** The client's response ended (or was replaced): nothing more is sent. */
  private over = false;
  private closed = false;
  private readonly overWaiters: Array<() => void> = [];

  constructor(
    private readonly context: ProcessorContext,
    private readonly exchange: Exchange,
    private readonly emit: (response: OutgoingResponse) => void,
    private readonly fail: (error: Error) => void,
  ) {}

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

  /** Settles when the response is over (every answer it needs was sent) or the stream closed. */
  idle(): Promise<void> {
    if (this.over || this.closed || !this.started) return Promise.resolve();
    return new Promise((resolve) => this.overWaiters.push(resolve));
  }

  /**
   * Envoy sends nothing more: a body it did not finish is cut (what waits for it ends without a last answer); an
   * answer being computed from other bytes still goes out.
   */
  halfClosed(): void {
    this.envoy.cut();
  }

  /** The stream ended: nothing more is sent, readers stop. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.envoy.stop();
    this.ended();
  }

  private ended(): void {
    this.over = true;
    for (const resolve of this.overWaiters.splice(0)) resolve();
  }

  private async run(request: ProcessingRequest): Promise<void> {
    const message = request.responseHeaders!;
    if (message.endOfStream) this.envoy.noBody();
    const exchange = this.exchange;
    const details = responseCodeDetails(request);
    const origin = classifyResponse(details);
    if (origin.kind !== 'upstream') {
      if (details === RATE_LIMITED_DETAILS) return this.budgetRejected(request);
      return this.envoyLocalReply(origin);
    }
    const headers = readResponseHeaders(message.headers);
    const status = Number(headers[':status'] ?? 0);
    if (status === 429 && details === undefined && headers[ENVOY_RATE_LIMITED_HEADER] !== undefined) {
      return this.budgetRejected(request);
    }
    exchange.backendResult(!(status >= 500 || status === 429 || status === 0));
    exchange.span?.responseStatus(status);
    const translation = new BodyTranslation(this.context, exchange, status, headers);
    if (this.envoy.headersOnly) {
      this.answerHeaders(translation.changes.toMutation(), exchange.finish());
      return;
    }
    return this.relay(exchange, translation, this.envoy, translation.changes);
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
    if (translation.streaming || translation.passthrough) {
      this.answerHeaders(changes.toMutation(), translation.streaming ? exchange.current() : undefined);
      for await (const part of source) {
        if (translation.streaming) exchange.firstChunk();
        const out = await translation.push(part.bytes, part.end);
        if (this.closed) return;
        if (part.end) {
          const metadata = exchange.finish(translation.failure ? 'upstream_decode_error' : undefined);
          return this.finish(out, metadata);
        }
        const metadata = translation.streaming ? exchange.progress() : undefined;
        if (out.length > 0 || metadata !== undefined) this.streamBody(out, false, metadata);
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
    if (translation.failure !== undefined) {
      // The client gets a gateway error instead of a body nobody could read.
      exchange.backendResult(false);
      exchange.span?.responseStatus(502);
      const error = gatewayError(502, `the backend's response ${translation.failureText}`, 'upstream_decode_error');
      out = renderError(exchange.route.api, error);
      changes.set(':status', '502');
      changes.set('content-type', 'application/json');
      changes.remove('content-encoding');
      metadata = exchange.finish('upstream_decode_error');
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
    if (this.closed || this.envoy.cutShort) return;
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
   * Processing failed: what was counted is charged; before the headers answer the client gets a 500 in its schema,
   * after it the stream fails (Envoy resets the response).
   */
  private broken(error: unknown): void {
    if (this.closed || this.over) return;
    const exchange = this.exchange;
    this.context.logger.error(
      { err: error instanceof Error ? error.message : String(error), backend: exchange.backendName },
      'processing the duplex response failed',
    );
    const metadata = exchange.isSettled ? undefined : exchange.finish('processing_error');
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
    this.ended();
  }
}
