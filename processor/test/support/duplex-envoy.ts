/**
 * Drives the processor over real gRPC the way Envoy's ext_proc filter does with `response_body_mode:
 * FULL_DUPLEX_STREAMED` (request body BUFFERED): `protocol_config` in the first message, the buffered request body,
 * then the response headers and every response body chunk without waiting for answers, and trailers when the
 * upstream has them. The answers are checked against what Envoy accepts in this mode, and a violation fails the
 * exchange: a second headers answer, CONTINUE_AND_REPLACE, a mode override, a body answer before the headers answer
 * or before Envoy sent a chunk, a body answer that is not a `streamed_response`, an end before Envoy's last chunk, an
 * immediate response after the headers answer, a trailers answer Envoy did not ask for, and answers after the end.
 * Envoy removes Content-Length from the response in this mode; so does this client.
 */
import type { HeaderMutation, ProtoStruct } from '../../src/grpc/messages';
import {
  applyMutation,
  headerMap,
  responseAttributes,
  structToObject,
  type ClientRequest,
  type DecodedResponse,
  type EnvoyClient,
  type UpstreamRequest,
} from './envoy-client';

export interface DuplexUpstream {
  status: number;
  headers?: Record<string, string>;
  /** Body chunks, each one message; none: the headers carry end_of_stream (unless `trailers`). */
  chunks?: Array<Buffer | string>;
  /** Trailers after the body (its last chunk then has end_of_stream=false). */
  trailers?: boolean;
  /** Envoy's `response.code_details` (see envoy-client.ts). */
  codeDetails?: string;
  /** Pause before each chunk (default 0: all sent at once, without waiting for answers). */
  chunkDelayMs?: number;
}

export interface DuplexOptions {
  /** Cancel the stream (the client went away) after this many response body chunks were sent. */
  cancelAfterChunks?: number;
  /** Cancel the stream this long after the response headers were sent. */
  cancelAfterMs?: number;
  /** Most time for the whole response phase (default 3000 ms). */
  deadlineMs?: number;
  /** Send no `protocol_config` (an Envoy before 1.34), or another response body mode. */
  responseBodyMode?: number | 'none';
  /**
   * The processor is expected to make Envoy reset the client's response (an immediate response after the headers
   * answer): recorded in `reset` instead of failing.
   */
  expectReset?: boolean;
}

export interface DuplexResult {
  /** Answered with an immediate response (in the response phase, it replaced the response). */
  immediate: boolean;
  /** The stream was cancelled before the response ended. */
  cancelled: boolean;
  /** Envoy reset the client's response: an immediate response came after the headers answer (see expectReset). */
  reset: boolean;
  status: number;
  /** Client-visible headers (no pseudo headers). */
  headers: Record<string, string>;
  body: Buffer;
  /** Each streamed body answer's bytes, in order. */
  chunks: Buffer[];
  metadata: Record<string, Record<string, unknown>>;
  /** The metadata of each answer that carried some, in order. */
  metadataWrites: Array<Record<string, Record<string, unknown>>>;
  answers: DecodedResponse[];
  upstreamRequest?: UpstreamRequest;
}

const FULL_DUPLEX_STREAMED = 4;
const BUFFERED = 2;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

export async function duplexExchange(
  client: EnvoyClient,
  request: ClientRequest,
  upstream: (request: UpstreamRequest) => DuplexUpstream,
  options: DuplexOptions = {},
): Promise<DuplexResult> {
  const stream = client.openStream();
  const result: DuplexResult = {
    immediate: false,
    cancelled: false,
    reset: false,
    status: 0,
    headers: {},
    body: Buffer.alloc(0),
    chunks: [],
    metadata: {},
    metadataWrites: [],
    answers: [],
  };
  const receive = async (): Promise<DecodedResponse> => {
    const answer = await stream.next();
    result.answers.push(answer);
    const struct = answer.message.dynamicMetadata as ProtoStruct | undefined;
    if (struct) {
      const written = structToObject(struct) as Record<string, Record<string, unknown>>;
      result.metadataWrites.push(written);
      for (const [namespace, value] of Object.entries(written))
        result.metadata[namespace] = { ...(result.metadata[namespace] ?? {}), ...value };
    }
    return answer;
  };
  try {
    const body = request.body === undefined ? undefined : Buffer.from(request.body);
    const requestHeaders: Record<string, string> = {
      ':method': request.method ?? (body ? 'POST' : 'GET'),
      ':path': request.path,
      ':authority': request.authority ?? 'gateway.example.com',
      ':scheme': 'http',
      'x-request-id': 'b6b1a2f0-9f5c-4a55-8b0b-3c8f8a2f6e01',
      ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}),
      ...request.headers,
    };
    const mode = options.responseBodyMode ?? FULL_DUPLEX_STREAMED;
    stream.send({
      requestHeaders: { headers: headerMap(requestHeaders), endOfStream: body === undefined },
      ...(mode === 'none' ? {} : { protocolConfig: { requestBodyMode: BUFFERED, responseBodyMode: mode } }),
    });
    let answer = await receive();
    if (answer.kind === 'immediateResponse') return immediate(result, answer);
    expectKind(answer, 'requestHeaders');
    applyMutation(requestHeaders, commonOf(answer)?.headerMutation as HeaderMutation | undefined, true);
    let upstreamBody: Buffer = body ?? Buffer.alloc(0);
    if (body) {
      stream.send({ requestBody: { body, endOfStream: true } });
      answer = await receive();
      if (answer.kind === 'immediateResponse') return immediate(result, answer);
      expectKind(answer, 'requestBody');
      const common = commonOf(answer);
      applyMutation(requestHeaders, common?.headerMutation as HeaderMutation | undefined, true);
      const mutation = common?.bodyMutation as { mutation?: string; body?: Uint8Array } | undefined;
      if (mutation?.mutation === 'body') upstreamBody = toBuffer(mutation.body);
    }
    result.upstreamRequest = {
      method: requestHeaders[':method'],
      path: requestHeaders[':path'],
      headers: Object.fromEntries(Object.entries(requestHeaders).filter(([name]) => !name.startsWith(':'))),
      body: upstreamBody,
    };

    const reply = upstream(result.upstreamRequest);
    const chunks = (reply.chunks ?? []).map((chunk) => Buffer.from(chunk));
    const headersOnly = chunks.length === 0 && !reply.trailers;
    const responseHeaders: Record<string, string> = { ':status': String(reply.status), ...reply.headers };
    stream.send({
      responseHeaders: { headers: headerMap(responseHeaders), endOfStream: headersOnly },
      ...(reply.codeDetails === undefined
        ? {}
        : { attributes: responseAttributes({ 'response.code_details': reply.codeDetails }) }),
    });
    // Envoy: the body goes to the processor as it arrives, whatever the processor has answered.
    let chunksSent = 0;
    let envoyDone = headersOnly;
    let cancelled = false;
    const cancel = (): void => {
      if (cancelled) return;
      cancelled = true;
      result.cancelled = true;
      stream.cancel();
    };
    const sending = (async () => {
      for (let i = 0; i < chunks.length && !cancelled; i++) {
        if (reply.chunkDelayMs) await delay(reply.chunkDelayMs);
        if (cancelled) return;
        const last = i === chunks.length - 1 && !reply.trailers;
        stream.send({ responseBody: { body: chunks[i], endOfStream: last } });
        chunksSent += 1;
        if (last) envoyDone = true;
        // A moment later: grpc-js reports a reset read together with a message as a clean end.
        if (options.cancelAfterChunks !== undefined && chunksSent >= options.cancelAfterChunks) {
          await delay(10);
          cancel();
        }
      }
      if (reply.trailers && !cancelled) {
        stream.send({ responseTrailers: { trailers: headerMap({ 'x-upstream-trailer': '1' }) } });
        envoyDone = true;
      }
    })();
    const cancelTimer =
      options.cancelAfterMs === undefined ? undefined : setTimeout(cancel, options.cancelAfterMs).unref();
    const deadline = Date.now() + (options.deadlineMs ?? 3000);

    let headersAnswered = false;
    const clientChunks: Buffer[] = [];
    for (;;) {
      if (cancelled) break;
      const next = await Promise.race([
        receive().catch((error: Error) => error),
        delay(Math.max(1, deadline - Date.now())).then(() => 'deadline' as const),
      ]);
      if (next === 'deadline') throw new Error(`no end of the response within the deadline (${result.answers.length})`);
      if (next instanceof Error) {
        if (cancelled) break;
        throw next;
      }
      answer = next;
      if (answer.kind === 'immediateResponse') {
        if (headersAnswered && options.expectReset === true) {
          result.reset = true;
          break;
        }
        if (headersAnswered) throw new Error('an immediate response after the headers answer (Envoy resets)');
        return immediate(result, answer);
      }
      if (answer.kind === 'responseHeaders') {
        if (headersAnswered) throw new Error('a second response headers answer');
        if (answer.message.modeOverride) throw new Error('a mode override (ignored in FULL_DUPLEX_STREAMED mode)');
        const common = commonOf(answer);
        if (common?.status === 1) throw new Error('CONTINUE_AND_REPLACE (not modelled in FULL_DUPLEX_STREAMED mode)');
        if (common?.bodyMutation) throw new Error('a body mutation in the headers answer');
        headersAnswered = true;
        applyMutation(responseHeaders, common?.headerMutation as HeaderMutation | undefined, true);
        delete responseHeaders['content-length'];
        if (headersOnly) break;
        continue;
      }
      if (answer.kind === 'responseBody') {
        if (!headersAnswered) throw new Error('a body answer before the headers answer (spurious)');
        if (chunksSent === 0) throw new Error('a body answer before Envoy sent a body chunk (spurious)');
        const mutation = commonOf(answer)?.bodyMutation as
          { mutation?: string; streamedResponse?: { body?: Uint8Array; endOfStream?: boolean } } | undefined;
        if (mutation?.mutation !== 'streamedResponse')
          throw new Error(`a body answer without streamed_response (${mutation?.mutation ?? 'none'}): spurious`);
        const bytes = toBuffer(mutation.streamedResponse?.body);
        clientChunks.push(bytes);
        if (mutation.streamedResponse?.endOfStream) {
          if (!envoyDone) throw new Error("end_of_stream before Envoy's last chunk");
          if (reply.trailers) throw new Error('end_of_stream while the upstream trailers are pending');
          break;
        }
        continue;
      }
      if (answer.kind === 'responseTrailers') {
        if (!reply.trailers) throw new Error('a trailers answer without trailers');
        if (!headersAnswered) throw new Error('a trailers answer before the headers answer');
        break;
      }
      throw new Error(`unexpected ${answer.kind} answer in the response phase`);
    }
    if (cancelTimer) clearTimeout(cancelTimer);
    await sending;
    result.status = Number(responseHeaders[':status']);
    result.headers = Object.fromEntries(Object.entries(responseHeaders).filter(([name]) => !name.startsWith(':')));
    result.chunks = clientChunks.filter((chunk) => chunk.length > 0);
    result.body = Buffer.concat(clientChunks);
    if (!cancelled) {
      stream.end();
      const extra = await Promise.race([
        stream.next().then(
          (late) => late,
          () => undefined,
        ),
        delay(30).then(() => undefined),
      ]);
      if (extra) throw new Error(`an answer after the end of the response: ${extra.kind}`);
    }
    return result;
  } catch (error) {
    stream.cancel();
    throw error;
  }
}

function immediate(result: DuplexResult, answer: DecodedResponse): DuplexResult {
  const message = answer.message.immediateResponse as {
    status?: { code?: number };
    headers?: HeaderMutation;
    body?: Uint8Array;
  };
  const headers: Record<string, string> = {};
  applyMutation(headers, message.headers, false);
  result.immediate = true;
  result.status = Number(message.status?.code ?? 200);
  result.headers = headers;
  result.body = toBuffer(message.body);
  result.chunks = [result.body];
  return result;
}

function expectKind(answer: DecodedResponse, kind: string): void {
  if (answer.kind !== kind) throw new Error(`expected a ${kind} answer, got ${answer.kind}`);
}

function commonOf(answer: DecodedResponse): Record<string, unknown> | undefined {
  return (answer.message[answer.kind] as { response?: Record<string, unknown> } | undefined)?.response;
}

function toBuffer(bytes: Uint8Array | undefined): Buffer {
  return bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : Buffer.alloc(0);
}
