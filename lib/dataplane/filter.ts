/**
 * The HTTP filter contract of the local data plane: a small model of Envoy's HTTP connection manager and
 * filter chain, for exactly the filters Envoy Gateway configures for what we synthesize (api_key_auth,
 * jwt_authn, ext_proc, ratelimit, router). Each filter lives in its own module and implements `HttpFilter`; the filter
 * manager (`filter-manager.ts`) drives them in Envoy Gateway's order and owns the route cache.
 *
 * Simplifications, all invisible to what we emit: the request body is read whole before the chain runs
 * (bounded by the listener's buffer limit, 413 beyond it), and trailers are not modelled, except that a filter
 * streaming the response itself (`encodeStream`) is told the upstream's response trailers; they are not forwarded
 * to the client.
 */

/** One request or response header map. Names are lower-case; pseudo headers (`:method`, `:path`,
 * `:authority`, `:scheme`, `:status`) are stored like other headers. Repeated headers keep their order. */
export class HeaderMap {
  private readonly entries: [string, string][] = [];

  constructor(init?: Iterable<readonly [string, string]>) {
    if (init) for (const [name, value] of init) this.add(name, value);
  }

  /** The first value of `name`, or undefined. */
  get(name: string): string | undefined {
    const key = name.toLowerCase();
    for (const [n, v] of this.entries) if (n === key) return v;
    return undefined;
  }

  /** Every value of `name`, in order. */
  getAll(name: string): string[] {
    const key = name.toLowerCase();
    return this.entries.filter(([n]) => n === key).map(([, v]) => v);
  }

  /** Values of `name` joined with `,` as Envoy does for matching (undefined when absent). */
  getJoined(name: string): string | undefined {
    const values = this.getAll(name);
    return values.length === 0 ? undefined : values.join(',');
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** Replaces every value of `name` with one value. */
  set(name: string, value: string): void {
    const key = name.toLowerCase();
    const at = this.entries.findIndex(([n]) => n === key);
    this.remove(key);
    // Removing every value leaves the entries before the first one in place, so `at` is still its position.
    if (at < 0) this.entries.push([key, value]);
    else this.entries.splice(at, 0, [key, value]);
  }

  /** Appends one more value of `name`. */
  add(name: string, value: string): void {
    this.entries.push([name.toLowerCase(), value]);
  }

  remove(name: string): void {
    const key = name.toLowerCase();
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i][0] === key) this.entries.splice(i, 1);
  }

  /** All entries in order, pseudo headers included. */
  list(): ReadonlyArray<readonly [string, string]> {
    return this.entries;
  }

  /** Regular headers only, repeated values joined with `,` (for writing to Node's http API). */
  toRecord(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [n, v] of this.entries) {
      if (n.startsWith(':')) continue;
      out[n] = n in out ? `${out[n]},${v}` : v;
    }
    return out;
  }

  clone(): HeaderMap {
    return new HeaderMap(this.entries);
  }
}

/** A reply the data plane generates itself instead of forwarding (Envoy's `sendLocalReply`). */
export interface LocalReply {
  readonly status: number;
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  readonly body?: string | Buffer;
  /** Envoy's response code details, e.g. `route_not_found`, `direct_response`, `ext_proc_error_gRPC_error_14`. */
  readonly details: string;
  /** Envoy's response flag, e.g. `NR` (no route), `RL` (rate limited), `UF`, `UT`. */
  readonly flag?: string;
}

/** What a decoding step tells the filter manager. */
export type DecodeResult =
  | { readonly action: 'continue' }
  /**
   * Stop the chain and answer locally; the reply still passes through the encoder side of the filters created so far.
   */
  | { readonly action: 'localReply'; readonly reply: LocalReply };

export const CONTINUE: DecodeResult = { action: 'continue' };

/**
 * Per-stream state the filters share: Envoy's `StreamInfo` plus the route cache. The route is matched on the
 * CURRENT request headers whenever the cache is empty (`route()` after `clearRouteCache()` re-matches with a
 * rewritten `:path` or new headers), exactly as Envoy's `ActiveStream::refreshCachedRoute`.
 */
export interface StreamContext<Route = unknown> {
  readonly requestHeaders: HeaderMap;
  /** The whole request body (possibly replaced by a filter via `setRequestBody`). */
  readonly requestBody: Buffer;
  setRequestBody(body: Buffer): void;
  /** The cached route, re-matched on demand; undefined = no route (the router answers 404 NR). */
  route(): Route | undefined;
  clearRouteCache(): void;
  /** Dynamic metadata by namespace (Envoy's `StreamInfo::dynamicMetadata`), written by ext_proc, read by ratelimit. */
  readonly dynamicMetadata: Map<string, Record<string, unknown>>;
  /** Response flags set so far (`NR`, `RL`, `UF`, ...). */
  readonly responseFlags: Set<string>;
  /**
   * Envoy's response code details (the `response.code_details` attribute) once the response is known, before the
   * encoder filters see it: `via_upstream` when the router forwards the upstream's answer, the local reply's
   * `details` otherwise; undefined while the request is decoded. Optional so that stand-in streams of filter tests
   * need not set it.
   */
  readonly responseCodeDetails?: string;
  /** The downstream peer address (for `sourceCIDR` selectors and logs). */
  readonly downstreamAddress: string;
  /** Aborted when the downstream client goes away; filters stop their own work (gRPC streams, timers). */
  readonly signal: AbortSignal;
}

/**
 * One HTTP filter. Every method is optional; absent methods continue. The manager calls, for each filter in
 * chain order, `decodeHeaders` and then `decodeData` (the whole body) before the next filter's
 * `decodeHeaders`, which is the order Envoy produces when a filter buffers the body (ext_proc in BUFFERED
 * mode stops header iteration until its body answer arrives). On the way back it calls `encodeHeaders` and
 * `encodeData` per chunk in reverse chain order; a filter may hold chunks back (return an empty buffer) and
 * release them later, e.g. to buffer the whole response. `onStreamComplete` runs once per stream after the
 * last byte went to the client or the client went away (Envoy's `onDestroy` / `apply_on_stream_done`).
 */
export interface HttpFilter {
  /** Envoy's filter name, e.g. `envoy.filters.http.ext_proc/envoyextensionpolicy/ns/name/extproc/0`. */
  readonly name: string;
  decodeHeaders?(stream: StreamContext, endOfStream: boolean): Promise<DecodeResult> | DecodeResult;
  decodeData?(stream: StreamContext): Promise<DecodeResult> | DecodeResult;
  /**
   * May change status and headers in place; may answer with a replacement local reply (e.g. ext_proc's immediate
   * response on the response path), which the manager sends directly, bypassing the encoder filters, and instead of
   * the response's own body (Envoy's `sendDirectLocalReply`: the response head exists but was not written yet).
   */
  encodeHeaders?(stream: StreamContext, headers: HeaderMap, endOfStream: boolean): Promise<EncodeResult> | EncodeResult;
  /**
   * Returns the bytes to pass on (possibly empty to hold them back, possibly more than received to release held bytes).
   * The response head is written to the client only when the first non-empty chunk has left the whole encoder chain,
   * or at the end of the stream: until then a filter that holds the body may still change the `headers` it got in
   * `encodeHeaders` (Envoy: ext_proc in BUFFERED mode keeps the headers until its body answer, whose header mutation,
   * e.g. `content-length` or `:status`, applies to them).
   * A filter may instead answer with a local reply (ext_proc's immediate response, message timeout or gRPC error
   * during the response body): while the head is not written, the reply replaces the response and is sent directly,
   * bypassing the encoder filters (Envoy's `sendDirectLocalReply`); once it is written, the manager can only abort
   * the downstream response (Envoy resets the stream).
   */
  encodeData?(
    stream: StreamContext,
    chunk: Buffer,
    endOfStream: boolean,
  ): Promise<Buffer | LocalReplyAction> | Buffer | LocalReplyAction;
  /**
   * Lets the filter run the response itself from here on instead of `encodeHeaders`/`encodeData` (Envoy: a filter
   * that stops iteration, drains each data frame and injects its own with `injectEncodedDataToFilterChain`, as
   * ext_proc in FULL_DUPLEX_STREAMED). Undefined: the filter is driven per chunk as usual. Called where
   * `encodeHeaders` would be, synchronously, with the response body as it leaves the earlier encoders, so that the
   * filter reads it while it still holds the headers.
   */
  encodeStream?(stream: StreamContext, headers: HeaderMap, body: EncodedBody): StreamedEncoding | undefined;
  onStreamComplete?(stream: StreamContext): Promise<void> | void;
}

/** The response body as an encoder reads it when it streams the response itself. */
export interface EncodedBody {
  /** The body frames; an error is the upstream's failure (or a `LocalReplyError` of an earlier encoder). */
  readonly chunks: AsyncIterable<Buffer>;
  /** End of stream on the headers: no body frame will come. */
  readonly headersOnly: boolean;
  /** The response trailers, once `chunks` ended (undefined: the response had none). */
  trailers(): HeaderMap | undefined;
}

/** What a filter streaming the response (`encodeStream`) hands on. */
export interface StreamedEncoding {
  /**
   * Settles when the filter lets the headers (as it changed them) go on, or answers with a local reply instead of
   * the response (sent directly, as the head was not written). `writeHead`: the head goes to the client now (Envoy
   * continues the headers); false holds it until the first bytes of `body` or its end.
   */
  readonly headers: Promise<
    { readonly action: 'continue'; readonly endOfStream: boolean; readonly writeHead: boolean } | LocalReplyAction
  >;
  /**
   * The body the filter passes on after the headers, each piece as soon as it has it; its end ends the response. A
   * `StreamResetError` resets the downstream stream; a `LocalReplyError` too once the head is written, else its
   * reply is sent instead; any other error is the upstream's failure, as for a body the filter does not stream.
   */
  readonly body: AsyncIterable<Buffer>;
}

/** A filter ends the response it streams by resetting the downstream stream, whether or not the head was written. */
export class StreamResetError extends Error {}

/** A local reply decided while a body is read (Envoy's sendLocalReply): sent if the head is not written yet. */
export class LocalReplyError extends Error {
  constructor(readonly reply: LocalReply) {
    super(`local reply ${reply.status} ${reply.details}`);
  }
}

export interface LocalReplyAction {
  readonly action: 'localReply';
  readonly reply: LocalReply;
}

/**
 * `addedBody`: the filter adds a body to a response that had none (`endOfStream` on the headers), as Envoy's
 * `addEncodedData` from `encodeHeaders` does (ext_proc's CONTINUE_AND_REPLACE with a body mutation on a headers-only
 * response such as the rate-limit 429). The later encoders then see the headers without end of stream, and the body
 * as one data frame that ends the stream; the adding filter's own `encodeData` is not called for it.
 */
export type EncodeResult = { readonly action: 'continue'; readonly addedBody?: Buffer } | LocalReplyAction;

/** Envoy Gateway's HTTP filter order (`internal/xds/translator/httpfilters.go`, v1.9.0): lower runs first on decode. */
export const FILTER_ORDER = {
  customResponse: 0,
  apiKeyAuth: 7,
  jwtAuthn: 10,
  extProc: 100,
  rateLimit: 303,
  router: 310,
} as const;
