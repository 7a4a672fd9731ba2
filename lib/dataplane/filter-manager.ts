/**
 * A model of Envoy's HTTP connection manager for one stream: early header mutation, the route cache, the filter
 * chain created once from the FIRST matched route, decoding through the filters, the terminal router, and the
 * response (or a local reply) back through the encoder side of the chain.
 */
import {
  HeaderMap,
  LocalReplyError,
  StreamResetError,
  type HttpFilter,
  type LocalReply,
  type StreamContext,
} from './filter';
import { normalizeRequestPath } from './path-normalize';

/** What the router (the terminal filter) produces: an upstream response to stream back, or a local reply. */
export type TerminalResult =
  /** `headersOnly`: the response has no body at all (Envoy's end_stream on the headers), so encoders see no data. */
  | {
      readonly kind: 'response';
      readonly headers: HeaderMap;
      readonly body: AsyncIterable<Buffer>;
      readonly headersOnly?: boolean;
      /** The response trailers once `body` ended (only filters that stream the response see them). */
      readonly trailers?: () => HeaderMap | undefined;
    }
  | { readonly kind: 'localReply'; readonly reply: LocalReply };

export interface TerminalFilter extends HttpFilter {
  serve(stream: StreamContext): Promise<TerminalResult>;
}

/** Where the manager writes the downstream response. */
export interface ResponseSink {
  writeHead(status: number, headers: ReadonlyArray<readonly [string, string]>): void;
  write(chunk: Buffer): Promise<void> | void;
  end(): void;
  /** Resets the downstream stream (the response cannot be completed). */
  abort(): void;
}

export interface StreamConfig<Route> {
  /** ClientTrafficPolicy `earlyRequestHeaders.remove`: applied before the first route match and before any filter. */
  readonly earlyRemoveHeaders: readonly string[];
  readonly matchRoute: (headers: HeaderMap) => Route | undefined;
  /** The decoder filters (router excluded) for the first matched route, in chain order. Called once per stream. */
  readonly createFilters: (route: Route | undefined) => HttpFilter[];
  readonly router: TerminalFilter;
  /**
   * The largest request body the created chain accepts (Envoy's buffer limit when a filter buffers it); beyond it, 413.
   */
  readonly requestBodyLimit: (route: Route | undefined, filters: readonly HttpFilter[]) => number | undefined;
  /** A hard cap for reading any request body whole (the contract reads bodies before the chain runs). */
  readonly maxRequestBodyBytes: number;
  /** Receives one entry per stream once it is complete (Envoy's access log). */
  readonly accessLog?: (entry: AccessLogEntry<Route>) => void;
}

/** What Envoy's access log would say of one stream. */
export interface AccessLogEntry<Route> {
  readonly startTime: Date;
  readonly durationMs: number;
  readonly method: string;
  /** The path as the client sent it (after normalisation, before any filter changed it). */
  readonly path: string;
  readonly authority: string | undefined;
  /** The status sent downstream; undefined when the stream was reset before a response head. */
  readonly status: number | undefined;
  /** Envoy's response flags (`NR`, `RL`, `UF`, ...), sorted. */
  readonly responseFlags: readonly string[];
  readonly responseCodeDetails: string | undefined;
  /** The route the stream ended on (after re-matches). */
  readonly route: Route | undefined;
  readonly dynamicMetadata: ReadonlyMap<string, Record<string, unknown>>;
}

export interface StreamRequest {
  /** Request headers with `:method`, `:path`, `:authority` and `:scheme`. */
  readonly headers: HeaderMap;
  readonly body: AsyncIterable<Buffer>;
  readonly downstreamAddress: string;
  readonly signal: AbortSignal;
}

/**
 * Envoy's local reply: the body as given, `content-type: text/plain` when there is a body and no type, content-length.
 */
export function localReplyHead(reply: LocalReply): HeaderMap {
  const headers = new HeaderMap([[':status', String(reply.status)]]);
  for (const [name, value] of reply.headers ?? []) headers.add(name, value);
  const body = reply.body === undefined ? Buffer.alloc(0) : Buffer.from(reply.body);
  if (body.length > 0 && !headers.has('content-type')) headers.set('content-type', 'text/plain');
  headers.set('content-length', String(body.length));
  return headers;
}

/** Envoy's response code details of a response the upstream sent (`StreamInfo::ResponseCodeDetails::ViaUpstream`). */
export const VIA_UPSTREAM = 'via_upstream';

/** The stream as the manager holds it: only the manager sets the response code details. */
type ManagedStream<Route = unknown> = StreamContext<Route> & { setResponseCodeDetails(details: string): void };

class BodyTooLarge extends Error {}

async function readBody(body: AsyncIterable<Buffer>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw new BodyTooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function* once(body: Buffer): AsyncIterable<Buffer> {
  if (body.length > 0) yield body;
}

/** Runs one stream to completion. Never throws for request or upstream problems: they become local replies. */
export async function runStream<Route>(
  config: StreamConfig<Route>,
  request: StreamRequest,
  sink: ResponseSink,
): Promise<void> {
  if (!config.accessLog) return serveStream(config, request, sink);
  const startTime = new Date();
  const started = performance.now();
  let status: number | undefined;
  let ended: StreamContext<Route> | undefined;
  let path: string | undefined;
  let lastRoute: (() => Route | undefined) | undefined;
  const logged: ResponseSink = {
    writeHead(code, headers) {
      status = code;
      sink.writeHead(code, headers);
    },
    write: (chunk) => sink.write(chunk),
    end: () => sink.end(),
    abort: () => sink.abort(),
  };
  try {
    await serveStream(config, request, logged, (stream, normalizedPath, last) => {
      ended = stream;
      path = normalizedPath;
      lastRoute = last;
    });
  } finally {
    config.accessLog({
      startTime,
      durationMs: performance.now() - started,
      method: request.headers.get(':method') ?? 'GET',
      path: path ?? request.headers.get(':path') ?? '/',
      authority: request.headers.get(':authority'),
      status,
      responseFlags: ended ? [...ended.responseFlags].sort() : [],
      responseCodeDetails: ended?.responseCodeDetails,
      route: lastRoute?.(),
      dynamicMetadata: ended?.dynamicMetadata ?? new Map(),
    });
  }
}

async function serveStream<Route>(
  config: StreamConfig<Route>,
  request: StreamRequest,
  sink: ResponseSink,
  /**
   * Told the stream once it exists, with the normalised path it started with (filters may rewrite `:path`) and the
   * route it matched last (without matching again).
   */
  onStream?: (stream: StreamContext<Route>, path: string, lastRoute: () => Route | undefined) => void,
): Promise<void> {
  const headers = request.headers;
  // Envoy normalises the path before any route match or filter (EG's HCM defaults, see path-normalize.ts).
  const normalized = normalizeRequestPath(headers.get(':path') ?? '/');
  if (normalized.kind === 'redirect') {
    const reply = {
      status: 307,
      headers: [['location', normalized.location]] as const,
      details: 'path_normalization_redirect',
    };
    writeHeadFrom(localReplyHead(reply), sink);
    sink.end();
    return;
  }
  headers.set(':path', normalized.path);
  for (const name of config.earlyRemoveHeaders) headers.remove(name);
  // The connection manager's own edits before any route match or filter, as Envoy Gateway configures it (the edge:
  // `use_remote_address`, the client's request id not preserved).
  headers.set('x-forwarded-proto', headers.get(':scheme') ?? 'http');
  if (request.downstreamAddress) headers.add('x-forwarded-for', request.downstreamAddress);
  headers.set('x-request-id', globalThis.crypto.randomUUID());

  let cached: { route: Route | undefined } | undefined;
  let lastMatched: Route | undefined;
  let requestBody: Buffer = Buffer.alloc(0);
  let responseCodeDetails: string | undefined;
  const stream: ManagedStream<Route> = {
    requestHeaders: headers,
    get requestBody() {
      return requestBody;
    },
    setRequestBody(body: Buffer) {
      requestBody = body;
    },
    route() {
      cached ??= { route: config.matchRoute(headers) };
      lastMatched = cached.route;
      return cached.route;
    },
    clearRouteCache() {
      cached = undefined;
    },
    dynamicMetadata: new Map(),
    responseFlags: new Set(),
    get responseCodeDetails() {
      return responseCodeDetails;
    },
    setResponseCodeDetails(details: string) {
      responseCodeDetails = details;
    },
    downstreamAddress: request.downstreamAddress,
    signal: request.signal,
  };
  onStream?.(stream, normalized.path, () => lastMatched);

  // Envoy creates the filter chain once, from the route cached when the request headers arrive.
  const firstRoute = stream.route();
  const filters = config.createFilters(firstRoute);
  const chain: HttpFilter[] = [...filters, config.router];
  const encoders = [...chain].reverse();

  // The router's response body, once there is one: closed on every way out, so that what the router holds until the
  // stream is done with it (the cluster's circuit-breaker slot, timers, the upstream request) is given back even when
  // no chunk was ever read (an encoder's local reply on the headers, the client gone, an error).
  let responseBody: AsyncIterator<Buffer> | undefined;
  try {
    const limit = config.requestBodyLimit(firstRoute, filters);
    let reply: LocalReply | undefined;
    try {
      requestBody = await readBody(request.body, Math.min(limit ?? Infinity, config.maxRequestBodyBytes));
    } catch (error) {
      if (!(error instanceof BodyTooLarge)) throw error;
      reply = { status: 413, body: 'Payload Too Large', details: 'request_payload_too_large' };
    }
    if (request.signal.aborted) return;

    if (!reply) {
      for (const filter of filters) {
        const onHeaders = await filter.decodeHeaders?.(stream, requestBody.length === 0);
        if (onHeaders?.action === 'localReply') {
          reply = onHeaders.reply;
          break;
        }
        if (requestBody.length > 0) {
          const onData = await filter.decodeData?.(stream);
          if (onData?.action === 'localReply') {
            reply = onData.reply;
            break;
          }
        }
        if (request.signal.aborted) return;
      }
    }

    let result: TerminalResult;
    if (reply) result = { kind: 'localReply', reply };
    else result = await config.router.serve(stream);
    if (result.kind === 'response') responseBody = result.body[Symbol.asyncIterator]();
    if (request.signal.aborted) return;

    // Envoy's router sets `via_upstream` before it encodes an upstream's headers; sendLocalReply sets the reply's
    // details.
    stream.setResponseCodeDetails(result.kind === 'localReply' ? result.reply.details : VIA_UPSTREAM);
    if (result.kind === 'localReply') {
      if (result.reply.flag) stream.responseFlags.add(result.reply.flag);
      const body = result.reply.body === undefined ? Buffer.alloc(0) : Buffer.from(result.reply.body);
      await encode(stream, encoders, localReplyHead(result.reply), once(body), body.length === 0, sink);
    } else if (responseBody) {
      const body = responseBody;
      const iterable = { [Symbol.asyncIterator]: () => body };
      await encode(stream, encoders, result.headers, iterable, result.headersOnly === true, sink, result.trailers);
    }
  } finally {
    closeBody(responseBody);
    for (const filter of chain) {
      try {
        await filter.onStreamComplete?.(stream);
      } catch {
        // A filter's completion work (e.g. charging a rate-limit bucket) must not break the others'.
      }
    }
  }
}

/**
 * Stops reading a response body (a no-op once it ended); how the abandoned body ends does not matter. Not awaited: a
 * filter that streams the response may still wait on the body's next chunk, behind which an async generator queues
 * `return()`; the router's body gives back what it holds (slot, timers, the upstream request) within the call.
 */
function closeBody(body: AsyncIterator<Buffer> | undefined): void {
  try {
    const closing = body?.return?.();
    void closing?.catch(() => undefined);
  } catch {
    // Nothing is sent downstream from here on.
  }
}

function writeHeadFrom(headers: HeaderMap, sink: ResponseSink): void {
  const status = Number(headers.get(':status') ?? '200');
  sink.writeHead(
    status,
    headers.list().filter(([name]) => !name.startsWith(':')),
  );
}

/** Sends a reply directly, bypassing the encoder filters (Envoy's `sendDirectLocalReply`). */
function sendDirect(reply: LocalReply, stream: ManagedStream, sink: ResponseSink): void {
  stream.setResponseCodeDetails(reply.details);
  if (reply.flag) stream.responseFlags.add(reply.flag);
  writeHeadFrom(localReplyHead(reply), sink);
  if (reply.body !== undefined && Buffer.from(reply.body).length > 0) void sink.write(Buffer.from(reply.body));
  sink.end();
}

const NO_TRAILERS = (): undefined => undefined;

async function encode(
  stream: ManagedStream,
  encoders: readonly HttpFilter[],
  headers: HeaderMap,
  body: AsyncIterable<Buffer>,
  headersOnly: boolean,
  sink: ResponseSink,
  trailers: () => HeaderMap | undefined = NO_TRAILERS,
  /** The head goes to the client as soon as the encoders let the headers through (a streaming filter continued). */
  eagerHead = false,
): Promise<void> {
  // Envoy's FilterManager::encodeHeaders: a filter that adds data while encoding a headers-only response turns the
  // end of stream into a data frame that starts at the next filter (`addEncodedData` from `encodeHeaders`).
  let added: { readonly from: number; readonly body: Buffer } | undefined;
  for (let i = 0; i < encoders.length; i++) {
    const source =
      added !== undefined
        ? throughEncoders(stream, encoders.slice(added.from, i), once(added.body))
        : headersOnly
          ? once(Buffer.alloc(0))
          : throughEncoders(stream, encoders.slice(0, i), body);
    const streamed = encoders[i].encodeStream?.(stream, headers, {
      chunks: source,
      headersOnly: headersOnly && added === undefined,
      trailers,
    });
    if (streamed) {
      const next = await streamed.headers;
      if (next.action === 'localReply') return sendDirect(next.reply, stream, sink);
      if (stream.signal.aborted) return;
      const rest = encoders.slice(i + 1);
      return encode(stream, rest, headers, streamed.body, next.endOfStream, sink, NO_TRAILERS, next.writeHead);
    }
    const result = await encoders[i].encodeHeaders?.(stream, headers, headersOnly && added === undefined);
    if (result?.action === 'localReply') return sendDirect(result.reply, stream, sink);
    if (result?.addedBody && headersOnly && added === undefined) added = { from: i + 1, body: result.addedBody };
  }
  let headWritten = false;
  const writeHead = () => {
    if (!headWritten) writeHeadFrom(headers, sink);
    headWritten = true;
  };
  if (eagerHead) writeHead();
  /** Passes one chunk through the encoders from `from` on; false when the stream ended with a reply or an abort. */
  const pass = async (chunk: Buffer, endOfStream: boolean, from = 0): Promise<boolean> => {
    let data = chunk;
    for (const filter of encoders.slice(from)) {
      if (!filter.encodeData) continue;
      const out = await filter.encodeData(stream, data, endOfStream);
      if (!Buffer.isBuffer(out)) {
        if (headWritten) sink.abort();
        else sendDirect(out.reply, stream, sink);
        return false;
      }
      data = out;
    }
    if (data.length > 0 || endOfStream) writeHead();
    if (data.length > 0) await sink.write(data);
    return true;
  };
  if (headersOnly) {
    if (added === undefined) writeHead();
    else if (!(await pass(added.body, true, added.from))) return;
    sink.end();
    return;
  }
  try {
    for await (const chunk of body) {
      if (stream.signal.aborted) return;
      if (!(await pass(chunk, false))) return;
    }
  } catch (error) {
    if (headWritten || error instanceof StreamResetError) sink.abort();
    // A filter's local reply while the head is held (e.g. an ext_proc error while it streams the response).
    else if (error instanceof LocalReplyError) sendDirect(error.reply, stream, sink);
    // The upstream failed after the response started (reset, or the route timeout fired): Envoy resets the stream.
    else
      sendDirect(
        {
          status: 503,
          body: 'upstream connect error or disconnect/reset before headers',
          details: 'upstream_reset_before_response_started',
          flag: 'UR',
        },
        stream,
        sink,
      );
    return;
  }
  if (stream.signal.aborted) return;
  if (await pass(Buffer.alloc(0), true)) sink.end();
}

/**
 * `body` as it leaves `filters` (encodeData per chunk, then the end of stream), for a filter later in the chain that
 * reads the body itself; a filter's local reply ends it with a `LocalReplyError`. Lazy: nothing runs until read.
 */
async function* throughEncoders(
  stream: StreamContext,
  filters: readonly HttpFilter[],
  body: AsyncIterable<Buffer>,
): AsyncIterable<Buffer> {
  const pass = async (chunk: Buffer, endOfStream: boolean): Promise<Buffer> => {
    let data = chunk;
    for (const filter of filters) {
      if (!filter.encodeData) continue;
      const out = await filter.encodeData(stream, data, endOfStream);
      if (!Buffer.isBuffer(out)) throw new LocalReplyError(out.reply);
      data = out;
    }
    return data;
  };
  for await (const chunk of body) {
    const out = await pass(chunk, false);
    if (out.length > 0) yield out;
  }
  const last = await pass(Buffer.alloc(0), true);
  if (last.length > 0) yield last;
}
