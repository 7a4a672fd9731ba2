/**
 * One HTTP stream through Envoy's ext_proc filter (`ext_proc.cc` `Filter`, `processor_state.cc`
 * `ProcessorState`): which messages go to the processor and when, what each answer does to the stream, and what
 * happens on an immediate response, a gRPC error, a message timeout, a spurious message or a client that leaves.
 * The behaviour is the current Envoy's (EG v1.9 ships 1.39) with the runtime defaults, where it changed since 1.33:
 * spurious answers fail closed, `status_on_error`, effective mode overrides, early stream close.
 *
 * Our filter manager hands the whole request body to `decodeData` right after `decodeHeaders`, which is the order
 * Envoy produces when the body arrived before the headers answer: one request body message with
 * `end_of_stream: true`, in every body mode.
 *
 * A response body mode of FULL_DUPLEX_STREAMED runs the response through `encodeStream` (see `DuplexResponse`
 * below); the request side of that mode is not modelled.
 */
import {
  CONTINUE,
  HeaderMap,
  LocalReplyError,
  StreamResetError,
  type DecodeResult,
  type EncodedBody,
  type StreamedEncoding,
  type EncodeResult,
  type LocalReply,
  type LocalReplyAction,
  type StreamContext,
} from '../filter';
import { evaluateAttributes } from './attributes';
import type { ExtProcClients, ExtProcStream } from './client';
import {
  applyBodyMutation,
  applyHeaderMutation,
  detailsOf,
  headersToWire,
  mutatedBodyLength,
  MutationError,
} from './mutations';
import {
  BodySendMode,
  HeaderSendMode,
  type BodySendModeValue,
  type DecodedCommonResponse,
  type DecodedImmediateResponse,
  type DecodedProcessingMode,
  type DecodedResponse,
  type OutgoingRequest,
  type RequestKind,
  type WireProtocolConfig,
} from './protocol';
import { envoyProcessingMode, type EnvoyBodySendMode, type ExtProcSettings } from './settings';
import { EG_DEFAULT_CIRCUIT_BREAKER_LIMIT } from '../model';

/** EG's listener `per_connection_buffer_limit_bytes` when no ClientTrafficPolicy sets `connection.bufferLimit`. */
export const EG_DEFAULT_BUFFER_LIMIT_BYTES = 32 * 1024;

export interface ExtProcSessionOptions {
  /**
   * The stream's buffer limit (the listener's per-connection buffer limit): a BUFFERED response body beyond it is
   * answered 500 `response_payload_too_large`; BUFFERED_PARTIAL sends what it holds once past it.
   */
  readonly bufferLimitBytes?: number;
}

const BODY_MODE_OF: Record<EnvoyBodySendMode, BodySendModeValue> = {
  NONE: BodySendMode.NONE,
  BUFFERED: BodySendMode.BUFFERED,
  STREAMED: BodySendMode.STREAMED,
  BUFFERED_PARTIAL: BodySendMode.BUFFERED_PARTIAL,
  FULL_DUPLEX_STREAMED: BodySendMode.FULL_DUPLEX_STREAMED,
};

type Direction = 'request' | 'response';

interface DirectionState {
  sendHeaders: boolean;
  bodyMode: number;
  attributesSent: boolean;
  /** Envoy's `headers_`: the headers are still held, so a buffered body answer may mutate them. */
  headersHeld: boolean;
  /** CONTINUE_AND_REPLACE with a body: the original body is dropped. */
  bodyReplaced: boolean;
}

/** What became of one message sent to the processor. */
type Outcome =
  | { readonly kind: 'answer'; readonly response: DecodedResponse }
  /** Immediate response, or an error while failing closed: the stream is answered locally. */
  | { readonly kind: 'reply'; readonly reply: LocalReply }
  /**
   * Processing is over (fail open, spurious message, stream closed by the processor, client gone): go on unprocessed.
   */
  | { readonly kind: 'skip' };

interface PendingCall {
  readonly expected: RequestKind;
  readonly resolve: (outcome: Outcome) => void;
  readonly timer: NodeJS.Timeout;
}

const EMPTY = Buffer.alloc(0);

export function initialDirectionState(settings: ExtProcSettings, direction: Direction): DirectionState {
  const mode = envoyProcessingMode(settings);
  const headerMode = direction === 'request' ? mode.requestHeaderMode : mode.responseHeaderMode;
  const bodyMode = direction === 'request' ? mode.requestBodyMode : mode.responseBodyMode;
  if (bodyMode === 'FULL_DUPLEX_STREAMED') {
    const unmodelled = (what: string, why = '') =>
      new Error(`ext_proc ${settings.name}: ${what} is not modelled by the local data plane${why}`);
    if (direction === 'request') throw unmodelled('request body mode FullDuplexStreamed', ' (the response side is)');
    if (settings.shadowMode) throw unmodelled('response body mode FullDuplexStreamed with shadowMode');
    if (headerMode !== 'SEND') throw unmodelled('response body mode FullDuplexStreamed without the response headers');
    // Envoy refuses the config (`verifyProcessingModeConfig`), Envoy Gateway the policy (a CEL rule).
    if (settings.failOpen) throw new Error(`ext_proc ${settings.name}: FullDuplexStreamed requires failOpen false`);
  }
  return {
    sendHeaders: headerMode === 'SEND',
    bodyMode: BODY_MODE_OF[bodyMode],
    attributesSent: false,
    headersHeld: false,
    bodyReplaced: false,
  };
}

export class ExtProcSession {
  private grpcStream: ExtProcStream | undefined;
  /** Envoy's `processing_complete_`: nothing more goes to (or comes from) the processor. */
  private complete = false;
  private pending: PendingCall | undefined;
  /** A local reply decided while no callback was waiting (e.g. the processor failed while the upstream answered). */
  private deferredReply: LocalReply | undefined;
  private readonly request: DirectionState;
  private readonly response: DirectionState;
  private requestEnded = false;
  private responseHeaders: HeaderMap | undefined;
  private responseReplacement: Buffer | undefined;
  private responseHeld: Buffer[] = [];
  private partialSent = false;
  /** Envoy encodes `protocol_config` into the first message of the stream only. */
  private protocolConfigSent = false;
  /** The response while it runs in FULL_DUPLEX_STREAMED. */
  private duplex: DuplexResponse | undefined;
  private readonly onAbort = (): void => this.finish();

  constructor(
    private readonly settings: ExtProcSettings,
    private readonly target: string,
    private readonly clients: ExtProcClients,
    private readonly stream: StreamContext,
    private readonly options: ExtProcSessionOptions = {},
  ) {
    this.request = initialDirectionState(settings, 'request');
    this.response = initialDirectionState(settings, 'response');
    if (stream.signal.aborted) this.complete = true;
    else stream.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  // ---- request path ----

  async decodeHeaders(endOfStream: boolean): Promise<DecodeResult> {
    this.requestEnded = endOfStream;
    const headers = this.stream.requestHeaders;
    if (this.settings.shadowMode && this.request.sendHeaders) {
      this.observe('request', { requestHeaders: { headers: { headers: headersToWire(headers) }, endOfStream } });
      return CONTINUE;
    }
    if (this.complete || !this.request.sendHeaders) {
      this.removeContentLengthIfNeeded(this.request, headers);
      return CONTINUE;
    }
    this.request.headersHeld = true;
    const answer = this.exchange('request', 'requestHeaders', {
      requestHeaders: { headers: { headers: headersToWire(headers) }, endOfStream },
    });
    // Envoy drops the length as soon as the message is on its way, before the answer.
    this.removeContentLengthIfNeeded(this.request, headers);
    const outcome = await answer;
    if (outcome.kind === 'reply') return { action: 'localReply', reply: outcome.reply };
    if (outcome.kind === 'skip') {
      this.request.headersHeld = false;
      return CONTINUE;
    }
    const common = outcome.response.requestHeaders?.response ?? {};
    const failed = this.applyHeaders(common, this.request, headers);
    if (failed) return { action: 'localReply', reply: failed };
    this.clearRouteCache(common);
    if (common.status === 1) {
      if (common.bodyMutation) {
        headers.remove('content-length');
        this.request.bodyReplaced = true;
        this.stream.setRequestBody(applyBodyMutation(common.bodyMutation, EMPTY));
      }
      this.request.bodyMode = BodySendMode.NONE;
      this.request.headersHeld = false;
    } else if (endOfStream || this.request.bodyMode === BodySendMode.NONE) {
      this.request.headersHeld = false;
    }
    if ((endOfStream || this.request.bodyMode === BodySendMode.NONE) && noExternalProcess(this.response))
      this.closeAfterLastAnswer();
    return CONTINUE;
  }

  async decodeData(): Promise<DecodeResult> {
    const deferred = this.takeDeferredReply();
    if (deferred) return { action: 'localReply', reply: deferred };
    if (this.requestEnded || this.request.bodyReplaced) return CONTINUE;
    const body = this.stream.requestBody;
    if (this.settings.shadowMode) {
      // Observability mode sends bodies only in STREAMED mode.
      if (this.request.bodyMode === BodySendMode.STREAMED)
        this.observe('request', { requestBody: { body, endOfStream: true } });
      return CONTINUE;
    }
    const mode = this.request.bodyMode;
    if (this.complete || mode === BodySendMode.NONE) return CONTINUE;
    const outcome = await this.exchange('request', 'requestBody', { requestBody: { body, endOfStream: true } });
    if (outcome.kind === 'reply') return { action: 'localReply', reply: outcome.reply };
    if (outcome.kind === 'skip') {
      this.request.headersHeld = false;
      return CONTINUE;
    }
    const common = outcome.response.requestBody?.response ?? {};
    if (mode === BodySendMode.STREAMED) {
      // A streamed chunk's answer may only change the chunk; its header mutation is not applied.
      if (common.bodyMutation) this.stream.setRequestBody(applyBodyMutation(common.bodyMutation, body));
    } else {
      const failed = this.applyBufferedBodyAnswer(common, this.request, this.stream.requestHeaders, mode);
      if (failed) return { action: 'localReply', reply: failed };
      if (common.bodyMutation) this.stream.setRequestBody(applyBodyMutation(common.bodyMutation, body));
    }
    this.clearRouteCache(common);
    this.request.headersHeld = false;
    if (mode === BodySendMode.STREAMED && noExternalProcess(this.response)) this.closeAfterLastAnswer();
    return CONTINUE;
  }

  // ---- response path ----

  async encodeHeaders(headers: HeaderMap, endOfStream: boolean): Promise<EncodeResult> {
    if (this.response.bodyMode === BodySendMode.FULL_DUPLEX_STREAMED && !this.complete) {
      throw new Error(`ext_proc ${this.settings.name}: a FULL_DUPLEX_STREAMED response runs through encodeStream`);
    }
    const deferred = this.takeDeferredReply();
    if (deferred) return { action: 'localReply', reply: deferred };
    this.responseHeaders = headers;
    if (this.settings.shadowMode && this.response.sendHeaders) {
      this.observe('response', { responseHeaders: { headers: { headers: headersToWire(headers) }, endOfStream } });
      return CONTINUE;
    }
    if (this.complete || !this.response.sendHeaders) {
      this.removeContentLengthIfNeeded(this.response, headers);
      if (noExternalProcess(this.response)) this.closeAfterLastAnswer();
      return CONTINUE;
    }
    this.response.headersHeld = true;
    const answer = this.exchange('response', 'responseHeaders', {
      responseHeaders: { headers: { headers: headersToWire(headers) }, endOfStream },
    });
    this.removeContentLengthIfNeeded(this.response, headers);
    const outcome = await answer;
    if (outcome.kind === 'reply') return { action: 'localReply', reply: outcome.reply };
    if (outcome.kind === 'skip') {
      this.response.headersHeld = false;
      return CONTINUE;
    }
    const common = outcome.response.responseHeaders?.response ?? {};
    const failed = this.applyHeaders(common, this.response, headers);
    if (failed) return { action: 'localReply', reply: failed };
    if (common.status === 1) {
      let addedBody: Buffer | undefined;
      if (common.bodyMutation) {
        // Envoy (processor_state.cc, handleHeadersResponse): the content-length is removed, as the processor is not
        // expected to set it for the new body. On a response without a body (end of stream on the headers, e.g. a
        // local reply such as the rate-limit 429), the new body is added to the stream (`addEncodedData`).
        headers.remove('content-length');
        this.response.bodyReplaced = true;
        const replacement = applyBodyMutation(common.bodyMutation, EMPTY);
        if (endOfStream) addedBody = replacement;
        else this.responseReplacement = replacement;
      }
      this.response.bodyMode = BodySendMode.NONE;
      this.response.headersHeld = false;
      this.closeAfterLastAnswer();
      return addedBody && addedBody.length > 0 ? { action: 'continue', addedBody } : CONTINUE;
    } else if (endOfStream || this.response.bodyMode === BodySendMode.NONE) {
      this.response.headersHeld = false;
    }
    if (endOfStream || this.response.bodyMode === BodySendMode.NONE) this.closeAfterLastAnswer();
    return CONTINUE;
  }

  /**
   * The response in FULL_DUPLEX_STREAMED (undefined in the other modes, or when processing is over: the response then
   * passes through `encodeHeaders`/`encodeData` untouched). The headers are held until the processor's headers
   * answer, with no message timer in this direction (`onStartProcessorCall` arms none); each body chunk goes to the
   * processor as it arrives, without waiting for answers; the response trailers, if any, follow.
   */
  encodeStream(headers: HeaderMap, body: EncodedBody): StreamedEncoding | undefined {
    if (this.response.bodyMode !== BodySendMode.FULL_DUPLEX_STREAMED) return undefined;
    const deferred = this.takeDeferredReply();
    if (deferred) {
      return { headers: Promise.resolve({ action: 'localReply', reply: deferred }), body: new InjectedBody() };
    }
    if (this.complete) return undefined;
    this.responseHeaders = headers;
    this.response.headersHeld = true;
    const duplex = new DuplexResponse(headers, body.headersOnly);
    this.duplex = duplex;
    this.send('response', {
      responseHeaders: { headers: { headers: headersToWire(headers) }, endOfStream: body.headersOnly },
    });
    // shouldRemoveContentLength(): Envoy drops the length once the headers message is on its way.
    headers.remove('content-length');
    if (this.complete) {
      // The stream could not be opened: its error is the answer.
      const reply = this.takeDeferredReply();
      if (reply) duplex.fail(reply);
    } else if (!body.headersOnly) {
      void this.pumpDuplex(duplex, body);
    }
    return { headers: duplex.headersDecided, body: duplex.out };
  }

  async encodeData(chunk: Buffer, endOfStream: boolean): Promise<Buffer | LocalReplyAction> {
    const deferred = this.takeDeferredReply();
    if (deferred) return { action: 'localReply', reply: deferred };
    if (this.response.bodyReplaced) {
      const replacement = this.responseReplacement ?? EMPTY;
      this.responseReplacement = undefined;
      return replacement;
    }
    if (this.settings.shadowMode) {
      if (this.response.bodyMode === BodySendMode.STREAMED)
        this.observe('response', { responseBody: { body: chunk, endOfStream } });
      return chunk;
    }
    const mode = this.response.bodyMode;
    if (this.complete || mode === BodySendMode.NONE) return this.releaseHeld(chunk);
    if (mode === BodySendMode.STREAMED) {
      const outcome = await this.exchange('response', 'responseBody', { responseBody: { body: chunk, endOfStream } });
      if (outcome.kind === 'reply') return { action: 'localReply', reply: outcome.reply };
      if (outcome.kind === 'skip') return chunk;
      if (endOfStream) this.closeAfterLastAnswer();
      return applyBodyMutation(outcome.response.responseBody?.response?.bodyMutation, chunk);
    }
    if (mode === BodySendMode.BUFFERED_PARTIAL && this.partialSent) return chunk;
    this.responseHeld.push(chunk);
    const heldBytes = this.responseHeld.reduce((sum, part) => sum + part.length, 0);
    const limit = this.options.bufferLimitBytes ?? EG_DEFAULT_BUFFER_LIMIT_BYTES;
    if (mode === BodySendMode.BUFFERED && heldBytes > limit) {
      // The filter manager refuses to buffer more than the limit and answers itself (headers not sent yet).
      this.responseHeld = [];
      this.complete = true;
      this.closeStream();
      return {
        action: 'localReply',
        reply: { status: 500, body: 'Internal Server Error', details: 'response_payload_too_large' },
      };
    }
    const sendNow = endOfStream || (mode === BodySendMode.BUFFERED_PARTIAL && heldBytes > limit);
    if (!sendNow) return EMPTY;
    const body = this.releaseHeld(EMPTY);
    const outcome = await this.exchange('response', 'responseBody', { responseBody: { body, endOfStream } });
    if (outcome.kind === 'reply') return { action: 'localReply', reply: outcome.reply };
    this.partialSent = true;
    if (outcome.kind === 'skip') return body;
    const common = outcome.response.responseBody?.response ?? {};
    const failed = this.applyBufferedBodyAnswer(common, this.response, this.responseHeaders, mode);
    if (failed) return { action: 'localReply', reply: failed };
    this.response.headersHeld = false;
    return applyBodyMutation(common.bodyMutation, body);
  }

  /** The HTTP stream is over (done or the client went away): close the gRPC stream, stop the timer. */
  finish(): void {
    this.stream.signal.removeEventListener('abort', this.onAbort);
    this.complete = true;
    this.duplex?.cancel();
    if (this.settings.shadowMode) {
      // Nothing was awaited: Envoy defers the reset (deferred_close_timeout) so the processor still gets it all.
      const grpcStream = this.grpcStream;
      this.grpcStream = undefined;
      grpcStream?.close(DEFERRED_CLOSE_TIMEOUT_MS);
    } else {
      this.closeStream();
    }
    this.settle({ kind: 'skip' });
  }

  // ---- answers ----

  /** Applies a headers answer's header mutation; a refused mutation ends processing with a `status_on_error` reply. */
  private applyHeaders(
    common: DecodedCommonResponse,
    state: DirectionState,
    headers: HeaderMap,
  ): LocalReply | undefined {
    if (!common.headerMutation) return undefined;
    try {
      applyHeaderMutation(common.headerMutation, headers, {
        replacingMessage: common.status === 1,
        skipContentLength: shouldRemoveContentLength(state),
      });
      return undefined;
    } catch (error) {
      return this.failOnAnswer(error);
    }
  }

  /**
   * A BUFFERED or BUFFERED_PARTIAL body answer: header mutation if the headers are still held, then the length check.
   */
  private applyBufferedBodyAnswer(
    common: DecodedCommonResponse,
    state: DirectionState,
    headers: HeaderMap | undefined,
    mode: number,
  ): LocalReply | undefined {
    try {
      if (common.headerMutation && state.headersHeld && headers) {
        applyHeaderMutation(common.headerMutation, headers, {
          replacingMessage: common.status === 1,
          skipContentLength: shouldRemoveContentLength(state),
        });
      }
      if (mode === BodySendMode.BUFFERED && common.bodyMutation && state.headersHeld && headers) {
        const declared = headers.get('content-length');
        if (
          declared !== undefined &&
          /^\d+$/.test(declared) &&
          Number(declared) !== mutatedBodyLength(common.bodyMutation)
        ) {
          throw new MutationError('mismatch between content length and the length of the mutated body');
        }
      }
      return undefined;
    } catch (error) {
      return this.failOnAnswer(error);
    }
  }

  private failOnAnswer(error: unknown): LocalReply {
    if (!(error instanceof MutationError)) throw error;
    return this.errorReply(error.message);
  }

  /** Envoy's `handleErrorResponse`: processing ends with a `status_on_error` reply whose details are the error. */
  private errorReply(message: string): LocalReply {
    this.complete = true;
    this.closeStream();
    return { status: this.statusOnError(), details: detailsOf(message) };
  }

  private statusOnError(): number {
    return this.settings.statusOnError ?? 500;
  }

  /** Only a decoding answer that carries a header mutation may clear the route cache (Envoy's DEFAULT action). */
  private clearRouteCache(common: DecodedCommonResponse): void {
    if (common.headerMutation && common.clearRouteCache === true) this.stream.clearRouteCache();
  }

  private removeContentLengthIfNeeded(state: DirectionState, headers: HeaderMap): void {
    if (!this.complete && shouldRemoveContentLength(state)) headers.remove('content-length');
  }

  /**
   * Envoy (>= 1.37, `ext_proc_stream_close_optimization`) closes the gRPC stream as soon as no more answers are
   * expected, outside the buffered modes (those close with the HTTP stream).
   */
  private closeAfterLastAnswer(): void {
    this.complete = true;
    this.closeStream();
  }

  private releaseHeld(chunk: Buffer): Buffer {
    if (this.responseHeld.length === 0) return chunk;
    const out = Buffer.concat([...this.responseHeld, chunk]);
    this.responseHeld = [];
    return out;
  }

  private takeDeferredReply(): LocalReply | undefined {
    const reply = this.deferredReply;
    this.deferredReply = undefined;
    return reply;
  }

  // ---- the gRPC stream ----

  private exchange(direction: Direction, kind: RequestKind, message: OutgoingRequest): Promise<Outcome> {
    if (!this.send(direction, message)) {
      const reply = this.takeDeferredReply();
      return Promise.resolve(reply ? { kind: 'reply', reply } : { kind: 'skip' });
    }
    return new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => this.onMessageTimeout(), this.settings.messageTimeoutMs);
      this.pending = { expected: kind, resolve, timer };
    });
  }

  /** Observability mode: sent and not awaited. */
  private observe(direction: Direction, message: OutgoingRequest): void {
    this.send(direction, { ...message, observabilityMode: true });
  }

  /** Sends one message (opening the stream first); false when processing is over or the stream cannot open. */
  private send(direction: Direction, message: OutgoingRequest): boolean {
    if (this.complete) return false;
    const grpcStream = this.openStream();
    if (!grpcStream || this.complete) return false;
    const out = this.withContext(direction, message);
    if (!this.protocolConfigSent) {
      this.protocolConfigSent = true;
      out.protocolConfig = protocolConfigOf(this.settings);
    }
    grpcStream.send(out);
    return true;
  }

  // ---- FULL_DUPLEX_STREAMED response ----

  /** Hands the response body to the processor chunk by chunk as it arrives, then the end of stream or the trailers. */
  private async pumpDuplex(duplex: DuplexResponse, body: EncodedBody): Promise<void> {
    try {
      for await (const chunk of body.chunks) {
        if (duplex.finished) return;
        if (duplex.passThrough) duplex.out.push(chunk);
        else if (this.send('response', { responseBody: { body: chunk, endOfStream: false } })) duplex.chunksSent += 1;
        else return;
      }
      if (duplex.finished) return;
      if (duplex.passThrough) {
        duplex.out.end();
        return;
      }
      const trailers = body.trailers();
      duplex.upstreamEnded = true;
      if (trailers) {
        duplex.trailers = trailers;
        duplex.trailersSent = this.send('response', {
          responseTrailers: { trailers: { headers: headersToWire(trailers) } },
        });
      } else if (this.send('response', { responseBody: { body: EMPTY, endOfStream: true } })) {
        duplex.chunksSent += 1;
      }
    } catch (error) {
      // The upstream failed (or an earlier encoder answered locally): the response ends with that error.
      if (duplex.finished) return;
      this.complete = true;
      this.closeStream();
      duplex.fail(error);
    }
  }

  private onDuplexMessage(duplex: DuplexResponse, response: DecodedResponse): void {
    const kind = response.response;
    if (kind !== undefined) this.writeMetadata(response);
    if (kind === 'immediateResponse') {
      // While the head is not sent, Envoy's sendLocalReply replaces the held response; once it is, the stream is reset.
      this.complete = true;
      this.closeStream();
      duplex.fail(immediateReply(response.immediateResponse ?? {}));
      return;
    }
    if (kind === 'responseHeaders' && !duplex.headersAnswered) {
      this.onDuplexHeaders(duplex, response.responseHeaders?.response ?? {});
      return;
    }
    if (kind === 'responseBody') {
      const mutation = response.responseBody?.response?.bodyMutation;
      // Only a streamed response, after the headers answer and once Envoy sent body (`isValidBodyCallbackState`);
      // still after the trailers went out (`sendTrailers` keeps the body callback state).
      if (mutation?.mutation === 'streamedResponse' && duplex.headersAnswered && duplex.chunksSent > 0) {
        const streamed = mutation.streamedResponse ?? {};
        const bytes = streamed.body ?? new Uint8Array();
        if (bytes.byteLength > 0) duplex.out.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        if (streamed.endOfStream === true) {
          duplex.out.end();
          this.closeAfterLastAnswer();
        }
        return;
      }
    }
    if (kind === 'responseTrailers' && duplex.trailersSent && !duplex.trailersAnswered) {
      duplex.trailersAnswered = true;
      const mutation = response.responseTrailers?.headerMutation;
      try {
        // The data plane does not forward trailers to the client; the answer is applied for its checks only.
        if (mutation && duplex.trailers) applyHeaderMutation(mutation, duplex.trailers);
      } catch (error) {
        duplex.fail(this.failOnAnswer(error));
        return;
      }
      duplex.out.end();
      this.closeAfterLastAnswer();
      return;
    }
    // Fail closed (FULL_DUPLEX_STREAMED requires it): a 500 while the head is held, else a reset.
    duplex.fail(this.errorReply(kind === undefined ? 'unhandled message' : 'spurious message'));
  }

  private onDuplexHeaders(duplex: DuplexResponse, common: DecodedCommonResponse): void {
    if (common.status === 1) {
      duplex.fail(
        this.errorReply('CONTINUE_AND_REPLACE in FULL_DUPLEX_STREAMED is not modelled by the local data plane'),
      );
      return;
    }
    if (common.headerMutation) {
      try {
        applyHeaderMutation(common.headerMutation, duplex.headers, { skipContentLength: true });
      } catch (error) {
        duplex.fail(this.failOnAnswer(error));
        return;
      }
    }
    this.response.headersHeld = false;
    duplex.headersAnswered = true;
    if (duplex.headersOnly) {
      duplex.continueHeaders(true);
      duplex.out.end();
      this.closeAfterLastAnswer();
      return;
    }
    // The whole body already went to the processor: Envoy lets the headers go with the first injected data.
    duplex.continueHeaders(false, !duplex.upstreamEnded);
  }

  /** The processor ended the stream while the duplex response runs. */
  private onDuplexClose(duplex: DuplexResponse, code: number, message: string): void {
    if (code !== GRPC_OK) {
      duplex.fail({
        status: this.statusOnError(),
        details: detailsOf(`ext_proc_error_gRPC_error_${code}{${message}}`),
      });
    } else if (duplex.headersAnswered) {
      duplex.fail(new StreamResetError('ext_proc stream closed while the response streams'));
    } else {
      // Processing is over: the headers go on as they are and the rest of the body passes through unprocessed.
      duplex.passThrough = true;
      duplex.continueHeaders(duplex.headersOnly);
      if (duplex.headersOnly || duplex.upstreamEnded) duplex.out.end();
    }
  }

  private withContext(direction: Direction, message: OutgoingRequest): OutgoingRequest {
    const out: OutgoingRequest = { ...message };
    const forwarding = this.settings.metadataOptions.forwardingNamespaces;
    if (forwarding.length > 0) {
      const context: Record<string, Record<string, unknown>> = {};
      for (const namespace of forwarding) {
        const value = this.stream.dynamicMetadata.get(namespace);
        if (value) context[namespace] = value;
      }
      out.metadataContext = context;
    }
    const state = direction === 'request' ? this.request : this.response;
    const names = this.settings.processingMode[direction]?.attributes ?? [];
    if (names.length > 0 && !state.attributesSent) {
      state.attributesSent = true;
      out.attributes = evaluateAttributes(
        names,
        this.stream,
        direction === 'response' ? this.responseHeaders : undefined,
      );
    }
    return out;
  }

  private openStream(): ExtProcStream | undefined {
    if (this.grpcStream || this.complete) return this.grpcStream;
    try {
      this.grpcStream = this.clients.open(
        this.target,
        this.settings.authority,
        {
          onMessage: (response) => this.onMessage(response),
          onClose: (code, details) => this.onClose(code, details),
        },
        {
          cluster: this.settings.name,
          maxParallelRequests: this.settings.maxParallelRequests ?? EG_DEFAULT_CIRCUIT_BREAKER_LIMIT,
        },
      );
    } catch (error) {
      // Envoy (1.39) reports a client it cannot create as INTERNAL and applies failure_mode_allow.
      this.onClose(GRPC_INTERNAL, error instanceof Error ? error.message : String(error));
    }
    return this.grpcStream;
  }

  private closeStream(): void {
    const grpcStream = this.grpcStream;
    this.grpcStream = undefined;
    grpcStream?.close();
  }

  /** Resolves the waiting callback, or keeps a local reply for the next one. */
  private settle(outcome: Outcome): void {
    const pending = this.pending;
    if (pending) {
      this.pending = undefined;
      clearTimeout(pending.timer);
      pending.resolve(outcome);
    } else if (outcome.kind === 'reply') {
      this.deferredReply = outcome.reply;
    }
  }

  private onMessage(response: DecodedResponse): void {
    if (this.settings.shadowMode || this.complete) return;
    // A new timeout is only honoured up to `max_message_timeout`, which EG leaves at 0: the message is ignored.
    if (response.overrideMessageTimeout) return;
    if (this.duplex) {
      this.onDuplexMessage(this.duplex, response);
      return;
    }
    const pending = this.pending;
    const waitingForHeaders = pending?.expected === 'requestHeaders' || pending?.expected === 'responseHeaders';
    // Envoy's guard in Filter::onReceiveMessage: no override at all when either configured body mode is duplex.
    if (
      this.settings.allowModeOverride &&
      !configuresDuplex(this.settings) &&
      waitingForHeaders &&
      response.modeOverride
    )
      this.overrideModes(response.modeOverride);
    const kind = response.response;
    if (kind !== undefined) this.writeMetadata(response);
    if (kind === 'immediateResponse') {
      this.complete = true;
      this.closeStream();
      this.settle({ kind: 'reply', reply: immediateReply(response.immediateResponse ?? {}) });
      return;
    }
    if (pending && kind === pending.expected) {
      this.pending = undefined;
      clearTimeout(pending.timer);
      pending.resolve({ kind: 'answer', response });
      return;
    }
    // Out of order or unknown: failing open, the processor is ignored for the rest of the stream; failing
    // closed, the stream is answered with an error (Envoy >= 1.35, `ext_proc_fail_close_spurious_resp`).
    if (this.settings.failOpen) {
      this.complete = true;
      this.closeStream();
      this.settle({ kind: 'skip' });
    } else {
      this.settle({
        kind: 'reply',
        reply: this.errorReply(kind === undefined ? 'unhandled message' : 'spurious message'),
      });
    }
  }

  private onClose(code: number, message: string): void {
    this.grpcStream = undefined;
    if (this.complete) return;
    this.complete = true;
    if (this.duplex) {
      this.onDuplexClose(this.duplex, code, message);
      return;
    }
    if (code === GRPC_OK || this.settings.failOpen) {
      this.settle({ kind: 'skip' });
      return;
    }
    this.settle({
      kind: 'reply',
      reply: { status: this.statusOnError(), details: detailsOf(`ext_proc_error_gRPC_error_${code}{${message}}`) },
    });
  }

  private onMessageTimeout(): void {
    if (this.complete) return;
    this.complete = true;
    this.closeStream();
    if (this.settings.failOpen) this.settle({ kind: 'skip' });
    else this.settle({ kind: 'reply', reply: { status: 504, details: 'ext_proc_error_per-message_timeout_exceeded' } });
  }

  /**
   * `mode_override` sets both directions' body modes (unset = NONE); a header mode left at DEFAULT keeps the
   * filter's configured one (Envoy >= 1.34, `effectiveModeOverride`).
   */
  private overrideModes(mode: DecodedProcessingMode): void {
    const configured = envoyProcessingMode(this.settings);
    const sendHeaders = (override: number | undefined, fallback: 'SEND' | 'SKIP') =>
      (override ?? HeaderSendMode.DEFAULT) === HeaderSendMode.DEFAULT
        ? fallback === 'SEND'
        : override !== HeaderSendMode.SKIP;
    this.request.sendHeaders = sendHeaders(mode.requestHeaderMode, configured.requestHeaderMode);
    this.request.bodyMode = mode.requestBodyMode ?? BodySendMode.NONE;
    this.response.sendHeaders = sendHeaders(mode.responseHeaderMode, configured.responseHeaderMode);
    this.response.bodyMode = mode.responseBodyMode ?? BodySendMode.NONE;
  }

  /** Each top-level key is a namespace; only writable ones are taken, merged key by key into what is there. */
  private writeMetadata(response: DecodedResponse): void {
    const receiving = this.settings.metadataOptions.receivingNamespaces;
    if (!response.dynamicMetadata || receiving.length === 0) return;
    for (const [namespace, value] of Object.entries(response.dynamicMetadata)) {
      if (!receiving.includes(namespace)) continue;
      const fields = typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {};
      this.stream.dynamicMetadata.set(namespace, { ...(this.stream.dynamicMetadata.get(namespace) ?? {}), ...fields });
    }
  }
}

/** Either configured body mode is FULL_DUPLEX_STREAMED (which turns off mode overrides for the whole filter). */
function configuresDuplex(settings: ExtProcSettings): boolean {
  const mode = envoyProcessingMode(settings);
  return mode.requestBodyMode === 'FULL_DUPLEX_STREAMED' || mode.responseBodyMode === 'FULL_DUPLEX_STREAMED';
}

/** Envoy's `encodeProtocolConfig`: the configured body modes (EG never sets send_body_without_waiting...). */
function protocolConfigOf(settings: ExtProcSettings): WireProtocolConfig {
  const mode = envoyProcessingMode(settings);
  return {
    requestBodyMode: BODY_MODE_OF[mode.requestBodyMode],
    responseBodyMode: BODY_MODE_OF[mode.responseBodyMode],
    sendBodyWithoutWaitingForHeaderResponse: false,
  };
}

type DuplexHeadersResult = Awaited<StreamedEncoding['headers']>;

/** One FULL_DUPLEX_STREAMED response: what Envoy sent the processor so far and what goes downstream. */
class DuplexResponse {
  /** What goes downstream after the headers: the processor's streamed responses, in order. */
  readonly out = new InjectedBody();
  readonly headersDecided: Promise<DuplexHeadersResult>;
  headersAnswered = false;
  /** Body messages sent (the last one may be the empty end of stream). */
  chunksSent = 0;
  /** Envoy saw the end of the upstream body (sent it with end_of_stream, or the trailers). */
  upstreamEnded: boolean;
  trailers: HeaderMap | undefined;
  trailersSent = false;
  trailersAnswered = false;
  /** The processor closed the stream before the headers answer: the rest passes through unprocessed. */
  passThrough = false;
  private decide: ((result: DuplexHeadersResult) => void) | undefined;

  constructor(
    readonly headers: HeaderMap,
    readonly headersOnly: boolean,
  ) {
    this.upstreamEnded = headersOnly;
    this.headersDecided = new Promise((resolve) => (this.decide = resolve));
  }

  get finished(): boolean {
    return this.out.done;
  }

  continueHeaders(endOfStream: boolean, writeHead = true): void {
    this.decide?.({ action: 'continue', endOfStream, writeHead });
    this.decide = undefined;
  }

  /**
   * Ends the response with a `LocalReply` (replacing the held response, as Envoy's sendLocalReply while the headers
   * are not sent; a reset once they are) or an error (a reset, or the upstream's failure).
   */
  fail(outcome: unknown): void {
    if (this.finished) return;
    const reply = isLocalReply(outcome) ? outcome : undefined;
    if (this.decide && reply) {
      this.decide({ action: 'localReply', reply });
      this.decide = undefined;
      this.out.end();
      return;
    }
    this.continueHeaders(false, false);
    this.out.fail(reply ? new LocalReplyError(reply) : outcome);
  }

  /** The client went away: nothing more goes downstream. */
  cancel(): void {
    this.continueHeaders(false, false);
    this.out.end();
  }
}

function isLocalReply(value: unknown): value is LocalReply {
  return typeof value === 'object' && value !== null && !(value instanceof Error) && 'status' in value;
}

/** An async queue of the bytes a filter injects downstream; iterated once, by the filter manager. */
class InjectedBody implements AsyncIterable<Buffer> {
  private readonly chunks: Buffer[] = [];
  private ended = false;
  private failure: { readonly error: unknown } | undefined;
  private wake: (() => void) | undefined;

  get done(): boolean {
    return this.ended || this.failure !== undefined;
  }

  push(chunk: Buffer): void {
    if (this.done) return;
    this.chunks.push(chunk);
    this.notify();
  }

  end(): void {
    if (this.done) return;
    this.ended = true;
    this.notify();
  }

  fail(error: unknown): void {
    if (this.done) return;
    this.failure = { error };
    this.notify();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk) {
        yield chunk;
        continue;
      }
      if (this.failure) throw this.failure.error;
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/** Envoy's `deferred_close_timeout` default, which EG does not set. */
const DEFERRED_CLOSE_TIMEOUT_MS = 5000;
const GRPC_OK = 0;
const GRPC_INTERNAL = 13;

function noExternalProcess(state: DirectionState): boolean {
  return !state.sendHeaders && state.bodyMode === BodySendMode.NONE;
}

/** Envoy removes the length in the modes where it cannot keep it right once the processor changes the body. */
function shouldRemoveContentLength(state: DirectionState): boolean {
  return (
    state.bodyMode === BodySendMode.STREAMED ||
    state.bodyMode === BodySendMode.BUFFERED_PARTIAL ||
    (state.bodyMode === BodySendMode.BUFFERED && !state.sendHeaders)
  );
}

/** An ImmediateResponse as Envoy sends it: status (200 when absent or below 200), mutated headers, body, details. */
export function immediateReply(immediate: DecodedImmediateResponse): LocalReply {
  const requested = immediate.status?.code;
  const status = requested !== undefined && requested >= 200 ? requested : 200;
  const headers = new HeaderMap([[':status', String(status)]]);
  if (immediate.headers) {
    try {
      applyHeaderMutation(immediate.headers, headers);
    } catch (error) {
      // Envoy logs a refused mutation here and sends the reply with what was applied before it.
      if (!(error instanceof MutationError)) throw error;
    }
  }
  const finalStatus = Number(headers.get(':status') ?? status);
  const body = immediate.body
    ? Buffer.from(immediate.body.buffer, immediate.body.byteOffset, immediate.body.byteLength)
    : EMPTY;
  return {
    status: finalStatus,
    headers: headers.list().filter(([name]) => !name.startsWith(':')),
    body,
    details: detailsOf(immediate.details ?? ''),
  };
}
