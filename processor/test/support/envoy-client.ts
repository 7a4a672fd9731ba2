/**
 * Drives the processor over real gRPC the way Envoy's ext_proc filter does (request headers with
 * `raw_value`, the buffered request body, response headers, the response body buffered or, after a
 * `mode_override` to STREAMED, chunk by chunk until `end_of_stream`), applies the mutations the way Envoy
 * does (remove, then set; `host`, `:authority`, `:scheme`, `:method` and `x-envoy-*` ignored) and merges
 * the dynamic metadata. The upstream is a function: a fake provider in memory or a real HTTP server.
 */
import * as grpc from '@grpc/grpc-js';
import { extProcCodecs, PROCESS_METHOD_PATH, type ExtProcCodecs } from '../../src/grpc/codec';
import { loadProtoRoot } from '../../src/grpc/descriptor';
import type {
  HeaderMutation,
  HeaderValueOption,
  ProcessingRequest,
  ProtoStruct,
  ProtoValue,
} from '../../src/grpc/messages';

export interface ClientRequest {
  method?: string;
  /** `:path` including the query. */
  path: string;
  authority?: string;
  headers?: Record<string, string>;
  /** Omitted: the request ends with its headers (e.g. GET). */
  body?: Buffer | string;
}

/** What reached the upstream after the processor's mutations. */
export interface UpstreamRequest {
  method: string;
  path: string;
  /** Lower-case names; pseudo headers excluded. */
  headers: Record<string, string>;
  body: Buffer;
}

export interface UpstreamResponse {
  status: number;
  headers?: Record<string, string>;
  /** Body chunks in order (each is one Envoy body message when streamed). */
  body?: Buffer | string | Array<Buffer | string> | AsyncIterable<Buffer>;
  /** End the response without an end_of_stream body message (a stream cut mid-way). */
  cut?: boolean;
  /**
   * Envoy's `response.code_details`, sent as a response attribute with the response headers (as when the
   * EnvoyExtensionPolicy asks for it): `via_upstream` for a backend's answer, the local reply's details otherwise
   * (the `status`, `headers` and `body` are then Envoy's local reply). Omitted: no attributes are sent.
   */
  codeDetails?: string;
}

export type Upstream = (request: UpstreamRequest) => UpstreamResponse | Promise<UpstreamResponse>;

export interface ExchangeHooks {
  /** The client-visible response head, before any body chunk. */
  onHeaders?(status: number, headers: Record<string, string>, streamed: boolean): void;
  /** One client-visible body chunk (after body mutations). */
  onChunk?(chunk: Buffer): void;
  /** Cancel the ext_proc stream (client abort) after this many response body chunks were processed. */
  abortAfterChunks?: number;
}

export interface ExchangeResult {
  /** The processor answered itself (ImmediateResponse). */
  immediate: boolean;
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** Client-visible body chunks. */
  chunks: Buffer[];
  /** Whether the processor switched the response body to STREAMED. */
  streamed: boolean;
  /** What the upstream received; undefined when the request never left. */
  upstreamRequest?: UpstreamRequest;
  /** Merged dynamic metadata by namespace. */
  metadata: Record<string, Record<string, unknown>>;
  /** Every ProcessingResponse received, in order (decoded). */
  responses: DecodedResponse[];
  /** Whether each route-cache clearing request was seen. */
  clearedRouteCache: boolean;
}

export interface DecodedResponse {
  kind: string;
  message: Record<string, unknown>;
}

const IGNORED_BY_ENVOY = (name: string): boolean =>
  name === 'host' || name === ':authority' || name === ':scheme' || name === ':method' || name.startsWith('x-envoy-');

/** A raw ext_proc stream for protocol tests: send messages, await responses one by one. */
export class RawStream {
  private readonly queue: DecodedResponse[] = [];
  private readonly waiters: Array<{ resolve: (r: DecodedResponse) => void; reject: (e: Error) => void }> = [];
  private error: Error | undefined;
  ended = false;

  constructor(readonly call: grpc.ClientDuplexStream<ProcessingRequest, Record<string, unknown>>) {
    call.on('data', (message: Record<string, unknown>) => {
      const decoded = { kind: String(message.response), message };
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(decoded);
      else this.queue.push(decoded);
    });
    const fail = (error: Error): void => {
      this.error = error;
      for (const waiter of this.waiters.splice(0)) waiter.reject(error);
    };
    call.on('error', fail);
    call.on('end', () => {
      this.ended = true;
      fail(new Error('stream ended'));
    });
  }

  send(message: ProcessingRequest): void {
    this.call.write(message);
  }

  next(): Promise<DecodedResponse> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  end(): void {
    this.call.end();
  }

  cancel(): void {
    this.call.cancel();
  }
}

export class EnvoyClient {
  private readonly client: grpc.Client;
  private readonly codecs: ExtProcCodecs;
  private readonly metadata: Record<string, string> | undefined;

  /** `ownConnection`: not shared with other clients of the address (grpc-js pools connections per target). */
  /** `metadata`: sent with every stream (as Envoy sends its trace context when its tracing is on). */
  constructor(address: string, options: { ownConnection?: boolean; metadata?: Record<string, string> } = {}) {
    this.metadata = options.metadata;
    this.codecs = extProcCodecs(loadProtoRoot());
    this.client = new grpc.Client(
      address,
      grpc.credentials.createInsecure(),
      options.ownConnection ? { 'grpc.use_local_subchannel_pool': 1 } : {},
    );
  }

  close(): void {
    this.client.close();
  }

  openStream(): RawStream {
    const metadata = new grpc.Metadata();
    for (const [key, value] of Object.entries(this.metadata ?? {})) metadata.set(key, value);
    const call = this.client.makeBidiStreamRequest(
      PROCESS_METHOD_PATH,
      (value: ProcessingRequest) => this.codecs.request.serialize(value),
      (bytes: Buffer) => this.codecs.response.deserialize(bytes) as unknown as Record<string, unknown>,
      metadata,
    );
    return new RawStream(call);
  }

  async exchange(request: ClientRequest, upstream: Upstream, hooks: ExchangeHooks = {}): Promise<ExchangeResult> {
    const stream = this.openStream();
    try {
      return await this.drive(stream, request, upstream, hooks);
    } catch (error) {
      // A failed expectation in `upstream` or the hooks must not leave the stream open (the processor would wait on
      // it).
      stream.cancel();
      throw error;
    }
  }

  private async drive(
    stream: RawStream,
    request: ClientRequest,
    upstream: Upstream,
    hooks: ExchangeHooks,
  ): Promise<ExchangeResult> {
    const responses: DecodedResponse[] = [];
    const metadata: Record<string, Record<string, unknown>> = {};
    let clearedRouteCache = false;
    const receive = async (expected: string): Promise<DecodedResponse | ExchangeResult> => {
      const response = await stream.next();
      responses.push(response);
      mergeMetadata(metadata, response.message.dynamicMetadata as ProtoStruct | undefined);
      if (response.kind === 'immediateResponse') {
        stream.end();
        const immediate = response.message.immediateResponse as Record<string, unknown>;
        const headers: Record<string, string> = {};
        applyMutation(headers, immediate.headers as HeaderMutation | undefined, false);
        const body = toBuffer(immediate.body as Uint8Array | undefined);
        headers['content-length'] = String(body.length);
        const status = Number((immediate.status as { code?: number } | undefined)?.code ?? 200);
        hooks.onHeaders?.(status, headers, false);
        if (body.length) hooks.onChunk?.(body);
        return {
          immediate: true,
          status,
          headers,
          body,
          chunks: [body],
          streamed: false,
          metadata,
          responses,
          clearedRouteCache,
        };
      }
      if (response.kind !== expected) throw new Error(`expected a ${expected} response, got ${response.kind}`);
      const common = (response.message[expected] as { response?: Record<string, unknown> } | undefined)?.response;
      if (common?.clearRouteCache) clearedRouteCache = true;
      return response;
    };

    const method = request.method ?? (request.body === undefined ? 'GET' : 'POST');
    const requestBody = request.body === undefined ? undefined : Buffer.from(request.body);
    const requestHeaders: Record<string, string> = {
      ':method': method,
      ':path': request.path,
      ':authority': request.authority ?? 'gateway.example.com',
      ':scheme': 'http',
      'x-request-id': 'b6b1a2f0-9f5c-4a55-8b0b-3c8f8a2f6e01',
      ...(requestBody ? { 'content-type': 'application/json', 'content-length': String(requestBody.length) } : {}),
      ...lowerCaseKeys(request.headers ?? {}),
    };
    stream.send({ requestHeaders: { headers: headerMap(requestHeaders), endOfStream: requestBody === undefined } });
    let answer = await receive('requestHeaders');
    if (isResult(answer)) return answer;
    applyMutation(
      requestHeaders,
      commonOf(answer, 'requestHeaders')?.headerMutation as HeaderMutation | undefined,
      true,
    );

    let upstreamBody: Buffer = requestBody ?? Buffer.alloc(0);
    if (requestBody !== undefined) {
      stream.send({ requestBody: { body: requestBody, endOfStream: true } });
      answer = await receive('requestBody');
      if (isResult(answer)) return answer;
      const common = commonOf(answer, 'requestBody');
      applyMutation(requestHeaders, common?.headerMutation as HeaderMutation | undefined, true);
      const bodyMutation = common?.bodyMutation as
        { body?: Uint8Array; clearBody?: boolean; mutation?: string } | undefined;
      if (bodyMutation?.mutation === 'body') upstreamBody = toBuffer(bodyMutation.body);
      else if (bodyMutation?.mutation === 'clearBody') upstreamBody = Buffer.alloc(0);
    }

    const upstreamRequest: UpstreamRequest = {
      method: requestHeaders[':method'],
      path: requestHeaders[':path'],
      headers: Object.fromEntries(Object.entries(requestHeaders).filter(([name]) => !name.startsWith(':'))),
      body: upstreamBody,
    };
    const reply = await upstream(upstreamRequest);
    const incremental = isAsyncIterable(reply.body);
    const chunks = incremental ? [] : await collectChunks(reply.body);
    const responseHeaders: Record<string, string> = {
      ':status': String(reply.status),
      ...lowerCaseKeys(reply.headers ?? {}),
    };
    const noBody = !incremental && chunks.length === 0 && !reply.cut;
    stream.send({
      responseHeaders: { headers: headerMap(responseHeaders), endOfStream: noBody },
      ...(reply.codeDetails === undefined
        ? {}
        : { attributes: responseAttributes({ 'response.code_details': reply.codeDetails }) }),
    });
    answer = await receive('responseHeaders');
    if (isResult(answer)) return { ...answer, upstreamRequest };
    const headersCommon = commonOf(answer, 'responseHeaders');
    applyMutation(responseHeaders, headersCommon?.headerMutation as HeaderMutation | undefined, true);
    if (headersCommon?.status === 1 && headersCommon.bodyMutation !== undefined) {
      // CONTINUE_AND_REPLACE with a body: Envoy sends that body instead of any of its own (none goes to the
      // processor) and drops the Content-Length.
      stream.end();
      delete responseHeaders['content-length'];
      const replaced = bodyAfterMutation(Buffer.alloc(0), headersCommon);
      const status = Number(responseHeaders[':status']);
      const headers = Object.fromEntries(Object.entries(responseHeaders).filter(([name]) => !name.startsWith(':')));
      hooks.onHeaders?.(status, headers, false);
      if (replaced.length) hooks.onChunk?.(replaced);
      return {
        immediate: false,
        status,
        headers,
        body: replaced,
        chunks: [replaced],
        streamed: false,
        upstreamRequest,
        metadata,
        responses,
        clearedRouteCache,
      };
    }
    const modeOverride = answer.message.modeOverride as { responseBodyMode?: number } | undefined;
    const streamed = modeOverride?.responseBodyMode === 1;
    if (incremental && !streamed) chunks.push(...(await collectChunks(reply.body)));

    const clientChunks: Buffer[] = [];
    let status = Number(responseHeaders[':status']);
    const clientHeaders = (): Record<string, string> =>
      Object.fromEntries(Object.entries(responseHeaders).filter(([name]) => !name.startsWith(':')));
    if (streamed) {
      hooks.onHeaders?.(status, clientHeaders(), true);
      // Arrays: the last chunk carries end_of_stream. Live sources: each chunk as it comes, then an empty end.
      const source: AsyncIterable<Buffer> | Buffer[] = incremental ? (reply.body as AsyncIterable<Buffer>) : chunks;
      let index = 0;
      for await (const raw of source) {
        const chunk = Buffer.from(raw);
        if (hooks.abortAfterChunks !== undefined && index >= hooks.abortAfterChunks) {
          stream.cancel();
          return {
            immediate: false,
            status,
            headers: clientHeaders(),
            body: Buffer.concat(clientChunks),
            chunks: clientChunks,
            streamed,
            upstreamRequest,
            metadata,
            responses,
            clearedRouteCache,
          };
        }
        const end = !incremental && index === chunks.length - 1 && !reply.cut;
        index += 1;
        stream.send({ responseBody: { body: chunk, endOfStream: end } });
        const bodyAnswer = await receive('responseBody');
        if (isResult(bodyAnswer)) return { ...bodyAnswer, upstreamRequest };
        const out = bodyAfterMutation(chunk, commonOf(bodyAnswer, 'responseBody'));
        clientChunks.push(out);
        if (out.length) hooks.onChunk?.(out);
      }
      if ((incremental || chunks.length === 0) && !reply.cut) {
        stream.send({ responseBody: { body: Buffer.alloc(0), endOfStream: true } });
        const bodyAnswer = await receive('responseBody');
        if (isResult(bodyAnswer)) return { ...bodyAnswer, upstreamRequest };
        const out = bodyAfterMutation(Buffer.alloc(0), commonOf(bodyAnswer, 'responseBody'));
        if (out.length) {
          clientChunks.push(out);
          hooks.onChunk?.(out);
        }
      }
    } else if (!noBody) {
      if (hooks.abortAfterChunks !== undefined) {
        stream.cancel();
        return {
          immediate: false,
          status,
          headers: clientHeaders(),
          body: Buffer.alloc(0),
          chunks: [],
          streamed,
          upstreamRequest,
          metadata,
          responses,
          clearedRouteCache,
        };
      }
      const whole = Buffer.concat(chunks);
      stream.send({ responseBody: { body: whole, endOfStream: !reply.cut } });
      if (!reply.cut) {
        const bodyAnswer = await receive('responseBody');
        if (isResult(bodyAnswer)) return { ...bodyAnswer, upstreamRequest };
        const common = commonOf(bodyAnswer, 'responseBody');
        applyMutation(responseHeaders, common?.headerMutation as HeaderMutation | undefined, true);
        // Buffered: Envoy has not sent the headers yet, so a :status set here is what the client sees.
        status = Number(responseHeaders[':status']);
        const out = bodyAfterMutation(whole, common);
        clientChunks.push(out);
      }
      hooks.onHeaders?.(status, clientHeaders(), false);
      for (const chunk of clientChunks) if (chunk.length) hooks.onChunk?.(chunk);
    } else {
      hooks.onHeaders?.(status, clientHeaders(), false);
    }
    stream.end();
    return {
      immediate: false,
      status,
      headers: clientHeaders(),
      body: Buffer.concat(clientChunks),
      chunks: clientChunks,
      streamed,
      upstreamRequest,
      metadata,
      responses,
      clearedRouteCache,
    };
  }
}

function isAsyncIterable(body: UpstreamResponse['body']): body is AsyncIterable<Buffer> {
  return body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body) && !Array.isArray(body);
}

function isResult(value: DecodedResponse | ExchangeResult): value is ExchangeResult {
  return (value as ExchangeResult).immediate !== undefined;
}

function commonOf(response: DecodedResponse, kind: string): Record<string, unknown> | undefined {
  return (response.message[kind] as { response?: Record<string, unknown> } | undefined)?.response;
}

function bodyAfterMutation(original: Buffer, common: Record<string, unknown> | undefined): Buffer {
  const mutation = common?.bodyMutation as { body?: Uint8Array; mutation?: string } | undefined;
  if (mutation?.mutation === 'body') return toBuffer(mutation.body);
  if (mutation?.mutation === 'clearBody') return Buffer.alloc(0);
  return original;
}

async function collectChunks(body: UpstreamResponse['body']): Promise<Buffer[]> {
  if (body === undefined) return [];
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    const buffer = Buffer.from(body);
    return buffer.length ? [buffer] : [];
  }
  if (Array.isArray(body)) return body.map((chunk) => Buffer.from(chunk));
  const out: Buffer[] = [];
  for await (const chunk of body) out.push(Buffer.from(chunk));
  return out;
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

/** A HeaderMap as Envoy sends it (values as `raw_value` bytes). */
export function headerMap(headers: Record<string, string>) {
  return { headers: Object.entries(headers).map(([key, value]) => ({ key, rawValue: Buffer.from(value, 'latin1') })) };
}

/** `attributes["envoy.filters.http.ext_proc"]` as Envoy sends evaluated string attributes. */
export function responseAttributes(values: Record<string, string>): ProcessingRequest['attributes'] {
  const fields = Object.fromEntries(Object.entries(values).map(([name, value]) => [name, { stringValue: value }]));
  return { 'envoy.filters.http.ext_proc': { fields } };
}

function toBuffer(bytes: Uint8Array | undefined): Buffer {
  return bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : Buffer.alloc(0);
}

/** Envoy applies removals first, then sets; it ignores the headers its default mutation rules protect. */
export function applyMutation(
  headers: Record<string, string>,
  mutation: HeaderMutation | undefined,
  enforceRules: boolean,
): void {
  if (!mutation) return;
  for (const name of mutation.removeHeaders ?? []) {
    if (enforceRules && IGNORED_BY_ENVOY(name)) continue;
    delete headers[name];
  }
  // Decoded from the wire: options are always messages here, never pre-encoded bytes.
  for (const option of (mutation.setHeaders ?? []) as HeaderValueOption[]) {
    const header = option.header as { key: string; value?: string; rawValue?: Uint8Array };
    const name = header.key.toLowerCase();
    if (enforceRules && IGNORED_BY_ENVOY(name)) continue;
    const value =
      header.rawValue && header.rawValue.length ? toBuffer(header.rawValue).toString('utf8') : (header.value ?? '');
    const appendAction = option.appendAction ?? 0;
    if (appendAction === 0 && headers[name] !== undefined) headers[name] = `${headers[name]},${value}`;
    else if (appendAction === 1 && headers[name] !== undefined) continue;
    else if (appendAction === 3 && headers[name] === undefined) continue;
    else headers[name] = value;
  }
}

function protoValue(value: ProtoValue & { kind?: string; listValue?: { values?: ProtoValue[] } }): unknown {
  switch (value.kind) {
    case 'numberValue':
      return value.numberValue;
    case 'stringValue':
      return value.stringValue;
    case 'boolValue':
      return value.boolValue;
    case 'structValue':
      return structToObject(value.structValue);
    case 'listValue':
      return (value.listValue?.values ?? []).map((v) => protoValue(v));
    default:
      return null;
  }
}

export function structToObject(struct: ProtoStruct | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(struct?.fields ?? {})) out[key] = protoValue(value);
  return out;
}

function mergeMetadata(target: Record<string, Record<string, unknown>>, struct: ProtoStruct | undefined): void {
  if (!struct) return;
  for (const [namespace, value] of Object.entries(structToObject(struct))) {
    target[namespace] = { ...(target[namespace] ?? {}), ...(value as Record<string, unknown>) };
  }
}
