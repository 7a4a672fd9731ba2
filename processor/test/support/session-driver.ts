/**
 * Drives one processor session in-process (no gRPC) the way Envoy's ext_proc filter would, with a deadline on
 * every answer, for the fuzz suites that need thousands of exchanges per second. Every answer goes through the
 * real wire encoder and is decoded again (as Envoy would read it), so an answer that cannot be encoded fails here
 * as it would fail on the wire.
 *
 * The low level (`SessionProbe`) sends any message in any order and waits for answers one by one; the high level
 * (`driveExchange`) plays a whole request like Envoy: request headers, the request body (whole, as Envoy's BUFFERED
 * mode sends it, or in any number of chunks, each answered or not), optional trailers, the upstream's response
 * headers, the response body (each chunk when the processor switched to STREAMED, otherwise buffered into one
 * message), optional trailers, and the end of the stream.
 */
import { extProcCodecs } from '../../src/grpc/codec';
import { loadProtoRoot } from '../../src/grpc/descriptor';
import type { OutgoingResponse, ProcessingRequest, ProcessingResponse, ProtoStruct } from '../../src/grpc/messages';
import type { ExtProcHandler, ExtProcStream } from '../../src/grpc/server';
import { structToObject, headerMap } from './envoy-client';
import { DeadlineError, within } from './fuzz';

const codecs = extProcCodecs(loadProtoRoot());

export const ANSWER_KINDS = [
  'requestHeaders',
  'responseHeaders',
  'requestBody',
  'responseBody',
  'requestTrailers',
  'responseTrailers',
  'immediateResponse',
] as const;

export interface DecodedMutation {
  set: Array<{ name: string; value: string }>;
  remove: string[];
}

export interface Answer {
  /** Which ProcessingResponse member is set (`requestHeaders`, ..., `immediateResponse`). */
  kind: string;
  headerMutation?: DecodedMutation;
  /** Body replacement: the new body; `clear` for clear_body; undefined: unchanged. */
  body?: Buffer | 'clear';
  clearRouteCache: boolean;
  immediate?: { status: number; headers: Record<string, string>; body: Buffer; details: string };
  /** The dynamic metadata written with this answer, by namespace. */
  metadata?: Record<string, Record<string, unknown>>;
  /** The processor switched the response body to STREAMED. */
  streamed: boolean;
}

function bytes(value: Uint8Array | undefined): Buffer {
  return value ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : Buffer.alloc(0);
}

function decodeMutation(raw: unknown): DecodedMutation | undefined {
  if (!raw) return undefined;
  const mutation = raw as {
    setHeaders?: Array<{ header?: { key: string; value?: string; rawValue?: Uint8Array } }>;
    removeHeaders?: string[];
  };
  return {
    set: (mutation.setHeaders ?? []).map((option) => {
      const header = option.header ?? { key: '' };
      const value =
        header.rawValue && header.rawValue.length ? bytes(header.rawValue).toString('utf8') : (header.value ?? '');
      return { name: header.key.toLowerCase(), value };
    }),
    remove: [...(mutation.removeHeaders ?? [])],
  };
}

/** Encodes an answer as the gRPC server would and decodes it as Envoy would. */
export function decodeAnswer(outgoing: OutgoingResponse): Answer {
  const wire = codecs.response.serialize(outgoing);
  const message = codecs.response.deserialize(wire) as ProcessingResponse & { response?: string };
  const kind = String(message.response);
  const answer: Answer = { kind, clearRouteCache: false, streamed: false };
  if (message.dynamicMetadata) {
    const merged = structToObject(message.dynamicMetadata as unknown as ProtoStruct);
    answer.metadata = merged as Record<string, Record<string, unknown>>;
  }
  if (message.modeOverride?.responseBodyMode === 1) answer.streamed = true;
  if (kind === 'immediateResponse') {
    const immediate = message.immediateResponse as unknown as {
      status?: { code?: number };
      headers?: unknown;
      body?: Uint8Array;
      details?: string;
    };
    const headers: Record<string, string> = {};
    for (const { name, value } of decodeMutation(immediate.headers)?.set ?? []) headers[name] = value;
    answer.immediate = {
      status: Number(immediate.status?.code ?? 0),
      headers,
      body: bytes(immediate.body),
      details: immediate.details ?? '',
    };
    return answer;
  }
  const member = (
    message as unknown as Record<string, { response?: Record<string, unknown>; headerMutation?: unknown } | undefined>
  )[kind];
  const common = member?.response;
  answer.headerMutation = decodeMutation(common?.headerMutation ?? member?.headerMutation);
  answer.clearRouteCache = common?.clearRouteCache === true;
  const bodyMutation = common?.bodyMutation as { mutation?: string; body?: Uint8Array } | undefined;
  if (bodyMutation?.mutation === 'body') answer.body = bytes(bodyMutation.body);
  else if (bodyMutation?.mutation === 'clearBody') answer.body = 'clear';
  return answer;
}

/** Request and response header messages as Envoy sends them. */
export const messages = {
  requestHeaders: (headers: Record<string, string>, endOfStream = false): ProcessingRequest => ({
    request: 'requestHeaders',
    requestHeaders: { headers: headerMap(headers), endOfStream },
  }),
  requestBody: (body: Buffer | string, endOfStream = true): ProcessingRequest => ({
    request: 'requestBody',
    requestBody: { body: Buffer.from(body), endOfStream },
  }),
  requestTrailers: (): ProcessingRequest => ({
    request: 'requestTrailers',
    requestTrailers: { trailers: headerMap({ 'x-trailer': '1' }) },
  }),
  responseHeaders: (headers: Record<string, string>, endOfStream = false): ProcessingRequest => ({
    request: 'responseHeaders',
    responseHeaders: { headers: headerMap(headers), endOfStream },
  }),
  responseBody: (body: Buffer | string, endOfStream = true): ProcessingRequest => ({
    request: 'responseBody',
    responseBody: { body: Buffer.from(body), endOfStream },
  }),
  responseTrailers: (): ProcessingRequest => ({
    request: 'responseTrailers',
    responseTrailers: { trailers: headerMap({ 'grpc-status': '0' }) },
  }),
};

/** One session, driven message by message. */
export class SessionProbe {
  readonly answers: Answer[] = [];
  private read = 0;
  private waiter: (() => void) | undefined;
  /** The session gave up the stream (the `fail` callback) or threw from `message`. */
  failure: Error | undefined;
  readonly stream: ExtProcStream;
  private closed = false;
  /** Answers sent after `close` (the gRPC server drops them; counted to catch sessions that keep working). */
  answersAfterClose = 0;

  constructor(handler: ExtProcHandler) {
    this.stream = handler.open(
      (outgoing) => {
        if (this.closed) this.answersAfterClose += 1;
        this.answers.push(decodeAnswer(outgoing));
        this.waiter?.();
      },
      (error) => {
        this.failure = error;
        this.waiter?.();
      },
    );
  }

  send(message: ProcessingRequest): void {
    try {
      this.stream.message(message);
    } catch (error) {
      // On the real server this would be an exception in a gRPC 'data' handler.
      this.failure = new Error(`the session threw on ${message.request}: ${(error as Error).message}`);
    }
  }

  /** Answers received but not yet taken with `next`. */
  get unread(): number {
    return this.answers.length - this.read;
  }

  /** The next answer, within `ms`; `what` names what we wait for in the failure message. */
  async next(what: string, ms: number): Promise<Answer> {
    if (this.unread === 0) {
      await within(
        new Promise<void>((resolve) => {
          this.waiter = resolve;
        }),
        ms,
        what,
      ).finally(() => {
        this.waiter = undefined;
      });
    }
    if (this.failure) throw this.failure;
    if (this.unread === 0) throw new DeadlineError(`${what}: no answer`);
    return this.answers[this.read++];
  }

  /** Lets pending work (auth, decompression) run: a few macrotask turns. */
  async settle(turns = 3): Promise<void> {
    for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
  }

  close(cancelled: boolean): void {
    if (this.closed) return;
    this.closed = true;
    void this.stream.close(cancelled);
  }
}

export interface ExchangeSpec {
  method?: string;
  path: string;
  authority?: string;
  headers?: Record<string, string>;
  /** The request body in the chunks Envoy sends it in (a string or Buffer: one chunk). Omitted: no body. */
  body?: Buffer | string | Buffer[];
  /** Trailers after the request body (the body's last chunk then has end_of_stream=false). */
  requestTrailers?: boolean;
  /** The upstream's answer, from what reached it. Omitted: the exchange ends after the request. */
  upstream?: (request: UpstreamSeen) => UpstreamReply;
  /** Deadline for each answer (default 2000 ms). */
  deadlineMs?: number;
}

export interface UpstreamReply {
  status: number;
  headers?: Record<string, string>;
  /** The body in the chunks the upstream sends (each is one message when the processor streams). */
  chunks?: Buffer[];
  /** The upstream cuts the response before its end (no end_of_stream): the stream is then cancelled. */
  cut?: boolean;
  /** Trailers after the response body (the body then ends with end_of_stream=false). */
  trailers?: boolean;
}

export interface UpstreamSeen {
  headers: Record<string, string>;
  /** The body as forwarded (the processor's replacement, or what the client sent). */
  body: Buffer;
  /** Whether the processor replaced the body. */
  bodyReplaced: boolean;
  clearRouteCache: boolean;
}

export interface ExchangeOutcome {
  /** The processor answered the request itself. */
  immediate?: { status: number; headers: Record<string, string>; body: Buffer; details: string };
  upstream?: UpstreamSeen;
  /** Response headers after the processor's mutation (`:status` included). */
  responseHeaders?: Record<string, string>;
  streamed: boolean;
  /** What the client receives, chunk by chunk. */
  clientChunks: Buffer[];
  clientBody: Buffer;
  /** Merged dynamic metadata (Envoy keeps the last value of each key). */
  metadata: Record<string, Record<string, unknown>>;
  /** Every answer, in order. */
  answers: Answer[];
  /** Answers that arrived after the exchange was complete (there must be none). */
  extraAnswers: number;
}

const REQUEST_ID = 'b6b1a2f0-9f5c-4a55-8b0b-3c8f8a2f6e01';

function applyMutation(headers: Record<string, string>, mutation: DecodedMutation | undefined): void {
  if (!mutation) return;
  for (const name of mutation.remove) delete headers[name];
  for (const { name, value } of mutation.set) headers[name] = value;
}

function mergeMetadata(target: Record<string, Record<string, unknown>>, answer: Answer): void {
  for (const [namespace, value] of Object.entries(answer.metadata ?? {}))
    target[namespace] = { ...(target[namespace] ?? {}), ...value };
}

function expectKind(answer: Answer, kind: string, what: string): void {
  if (answer.kind !== kind) throw new Error(`${what}: expected a ${kind} answer, got ${answer.kind}`);
}

/** Plays one request through a session as Envoy would; every answer has a deadline. */
export async function driveExchange(handler: ExtProcHandler, spec: ExchangeSpec): Promise<ExchangeOutcome> {
  const ms = spec.deadlineMs ?? 2000;
  const probe = new SessionProbe(handler);
  const outcome: ExchangeOutcome = {
    streamed: false,
    clientChunks: [],
    clientBody: Buffer.alloc(0),
    metadata: {},
    answers: probe.answers,
    extraAnswers: 0,
  };
  const take = async (what: string): Promise<Answer> => {
    const answer = await probe.next(what, ms);
    mergeMetadata(outcome.metadata, answer);
    if (answer.kind === 'immediateResponse') outcome.immediate = answer.immediate;
    return answer;
  };
  let cancelled = false;
  try {
    const chunks =
      spec.body === undefined ? undefined : Array.isArray(spec.body) ? spec.body : [Buffer.from(spec.body)];
    const total = chunks ? chunks.reduce((n, c) => n + c.length, 0) : 0;
    const requestHeaders: Record<string, string> = {
      ':method': spec.method ?? (chunks ? 'POST' : 'GET'),
      ':path': spec.path,
      ':authority': spec.authority ?? 'gateway.example.com',
      ':scheme': 'http',
      'x-request-id': REQUEST_ID,
      ...(chunks ? { 'content-type': 'application/json', 'content-length': String(total) } : {}),
      ...spec.headers,
    };
    probe.send(messages.requestHeaders(requestHeaders, chunks === undefined));
    let answer = await take('the request headers');
    if (answer.kind === 'immediateResponse') return outcome;
    expectKind(answer, 'requestHeaders', 'the request headers');
    applyMutation(requestHeaders, answer.headerMutation);
    let bodyReplaced = false;
    let clearRouteCache = answer.clearRouteCache;
    /** What goes upstream: chunks answered so far (after their mutation), and chunks not answered yet. */
    const forwarded: Buffer[] = [];
    let unanswered: Buffer[] = [];
    /** An answer covers the chunks sent since the previous answer (Envoy buffers them; a mutation replaces them). */
    const covered = (bodyAnswer: Answer): void => {
      applyMutation(requestHeaders, bodyAnswer.headerMutation);
      clearRouteCache ||= bodyAnswer.clearRouteCache;
      if (bodyAnswer.body === undefined) forwarded.push(...unanswered);
      else {
        bodyReplaced = true;
        if (bodyAnswer.body !== 'clear') forwarded.push(bodyAnswer.body);
      }
      unanswered = [];
    };
    if (chunks) {
      for (let i = 0; i < chunks.length; i++) {
        const last = i === chunks.length - 1;
        probe.send(messages.requestBody(chunks[i], last && !spec.requestTrailers));
        unanswered.push(chunks[i]);
        if (!last) {
          // In BUFFERED mode Envoy sends the body whole; a processor may keep chunks before the last unanswered
          // (accumulating them) or answer each one. An immediate response ends the request either way.
          await probe.settle(1);
          if (probe.unread > 0) {
            answer = await take(`request body chunk ${i + 1} of ${chunks.length}`);
            if (answer.kind === 'immediateResponse') return outcome;
            expectKind(answer, 'requestBody', `request body chunk ${i + 1} of ${chunks.length}`);
            covered(answer);
          }
        }
      }
      if (spec.requestTrailers) probe.send(messages.requestTrailers());
      answer = await take(
        `the request body (${chunks.length} chunk(s), ${total} bytes${spec.requestTrailers ? ', then trailers' : ''})`,
      );
      if (answer.kind === 'immediateResponse') return outcome;
      expectKind(answer, 'requestBody', 'the request body');
      covered(answer);
      if (spec.requestTrailers)
        expectKind(await take('the request trailers'), 'requestTrailers', 'the request trailers');
    }
    const forwardedBody = Buffer.concat(forwarded);
    outcome.upstream = { headers: requestHeaders, body: forwardedBody, bodyReplaced, clearRouteCache };
    if (!spec.upstream) return outcome;

    const reply = spec.upstream(outcome.upstream);
    const replyChunks = reply.chunks ?? [];
    const responseHeaders: Record<string, string> = { ':status': String(reply.status), ...reply.headers };
    const noBody = replyChunks.length === 0 && !reply.cut && !reply.trailers;
    probe.send(messages.responseHeaders(responseHeaders, noBody));
    answer = await take('the response headers');
    if (answer.kind === 'immediateResponse') return outcome;
    expectKind(answer, 'responseHeaders', 'the response headers');
    applyMutation(responseHeaders, answer.headerMutation);
    outcome.responseHeaders = responseHeaders;
    outcome.streamed = answer.streamed;
    if (noBody) return outcome;

    const deliver = (original: Buffer, bodyAnswer: Answer): void => {
      const out = bodyAnswer.body === 'clear' ? Buffer.alloc(0) : (bodyAnswer.body ?? original);
      outcome.clientChunks.push(out);
    };
    if (outcome.streamed) {
      for (let i = 0; i < replyChunks.length; i++) {
        const end = i === replyChunks.length - 1 && !reply.cut && !reply.trailers;
        probe.send(messages.responseBody(replyChunks[i], end));
        const bodyAnswer = await take(
          `response body chunk ${i + 1} of ${replyChunks.length} (${replyChunks[i].length} bytes)`,
        );
        if (bodyAnswer.kind === 'immediateResponse') return outcome;
        expectKind(bodyAnswer, 'responseBody', `response body chunk ${i + 1}`);
        deliver(replyChunks[i], bodyAnswer);
      }
      if (replyChunks.length === 0 && !reply.cut && !reply.trailers) {
        probe.send(messages.responseBody(Buffer.alloc(0), true));
        deliver(Buffer.alloc(0), await take('the empty end of the response body'));
      }
    } else if (!reply.cut) {
      // Buffered: Envoy sends the whole body in one message (end_of_stream=false when trailers follow).
      const whole = Buffer.concat(replyChunks);
      probe.send(messages.responseBody(whole, !reply.trailers));
      const bodyAnswer = await take(
        `the buffered response body (${whole.length} bytes${reply.trailers ? ', then trailers' : ''})`,
      );
      if (bodyAnswer.kind === 'immediateResponse') return outcome;
      expectKind(bodyAnswer, 'responseBody', 'the buffered response body');
      applyMutation(responseHeaders, bodyAnswer.headerMutation);
      deliver(whole, bodyAnswer);
    }
    if (reply.trailers && !reply.cut) {
      probe.send(messages.responseTrailers());
      expectKind(await take('the response trailers'), 'responseTrailers', 'the response trailers');
    }
    cancelled = reply.cut === true;
    return outcome;
  } finally {
    probe.close(cancelled);
    await probe.settle(2);
    outcome.extraAnswers = probe.unread;
    outcome.clientBody = Buffer.concat(outcome.clientChunks);
  }
}
