/**
 * Test support for the ext_proc filter: a scripted ext_proc gRPC server, a minimal StreamContext and a small
 * driver that calls the filter in the filter manager's order (not the real manager, which lives elsewhere).
 */
import * as grpc from '@grpc/grpc-js';
import * as net from 'node:net';
import { ExtProcClients } from '../../../lib/dataplane/ext-proc';
import { HeaderMap, type HttpFilter, type LocalReply, type StreamContext } from '../../../lib/dataplane/filter';
import { createExtProcCodec, PROCESS_METHOD_PATH, type ExtProcCodec } from '../../../lib/dataplane/ext-proc/protocol';
import type { ExtProcSettings } from '../../../lib/dataplane/ext-proc/settings';

let sharedCodec: ExtProcCodec | undefined;
/** Compiling the protos takes a moment: one codec for the whole test file. */
export function codec(): ExtProcCodec {
  return (sharedCodec ??= createExtProcCodec());
}

export type Message = Record<string, any>;

/** The server side of one `Process` stream, as a test script sees it. */
export class ServerStream {
  readonly received: Message[] = [];
  private readonly queue: Message[] = [];
  private readonly waiters: Array<(message: Message | undefined) => void> = [];
  ended = false;
  cancelled = false;
  readonly peer: string;
  private readonly closedPromise: Promise<'end' | 'cancelled'>;

  constructor(readonly call: grpc.ServerDuplexStream<Message, Buffer>) {
    this.peer = call.getPeer();
    call.on('data', (message: Message) => {
      this.received.push(message);
      const waiter = this.waiters.shift();
      if (waiter) waiter(message);
      else this.queue.push(message);
    });
    this.closedPromise = new Promise((resolve) => {
      call.on('end', () => {
        this.ended = true;
        for (const waiter of this.waiters.splice(0)) waiter(undefined);
        resolve('end');
      });
      call.on('cancelled', () => {
        this.cancelled = true;
        for (const waiter of this.waiters.splice(0)) waiter(undefined);
        resolve('cancelled');
      });
    });
    call.on('error', () => undefined);
  }

  /** The next message from the filter (undefined once the filter closed the stream). */
  next(): Promise<Message | undefined> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.ended || this.cancelled) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The next message, which must be of `kind` (e.g. `requestHeaders`). */
  async expect(kind: string): Promise<Message> {
    const message = await this.next();
    if (!message) throw new Error(`expected a ${kind} message, the stream closed`);
    if (message.request !== kind) throw new Error(`expected a ${kind} message, got ${String(message.request)}`);
    return message;
  }

  send(response: Message): void {
    this.call.write(codec().serializeResponse(response));
  }

  /** Ends the stream from the server with a gRPC status (0 = OK). */
  finish(code = grpc.status.OK, details = ''): void {
    if (code === grpc.status.OK) this.call.end();
    else this.call.emit('error', { code, details });
  }

  closed(): Promise<'end' | 'cancelled'> {
    return this.closedPromise;
  }
}

export interface FakeProcessor {
  readonly address: string;
  /** Streams in the order they were opened. */
  readonly streams: ServerStream[];
  close(): Promise<void>;
}

/** A gRPC ext_proc server that hands every `Process` stream to `script`. */
export async function startFakeProcessor(
  script: (stream: ServerStream) => void | Promise<void>,
  address = '127.0.0.1:0',
): Promise<FakeProcessor> {
  const server = new grpc.Server();
  const streams: ServerStream[] = [];
  server.addService(
    {
      Process: {
        path: PROCESS_METHOD_PATH,
        requestStream: true,
        responseStream: true,
        requestSerialize: () => Buffer.alloc(0),
        requestDeserialize: (bytes: Buffer) => codec().deserializeRequest(bytes),
        responseSerialize: (bytes: Buffer) => bytes,
        responseDeserialize: (bytes: Buffer) => bytes,
      },
    },
    {
      Process: (call: grpc.ServerDuplexStream<Message, Buffer>) => {
        const stream = new ServerStream(call);
        streams.push(stream);
        void Promise.resolve(script(stream)).catch((error: unknown) => {
          stream.finish(grpc.status.INTERNAL, error instanceof Error ? error.message : String(error));
        });
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  return {
    address: `127.0.0.1:${port}`,
    streams,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

/** A loopback port nothing listens on. */
export async function closedPort(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

// ---- the stream side ----

export interface FakeStream extends StreamContext {
  routeClears: number;
  abort(): void;
}

export function fakeStream(init: {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /**
   * What the filter manager would have set when the response reaches the encoders (`via_upstream`, a local reply's
   * details).
   */
  responseCodeDetails?: string;
}): FakeStream {
  const body = init.body === undefined ? Buffer.alloc(0) : Buffer.from(init.body);
  const headers = new HeaderMap([
    [':authority', 'gateway.example.com'],
    [':path', init.path ?? '/v1/chat/completions'],
    [':method', init.method ?? (body.length ? 'POST' : 'GET')],
    [':scheme', 'http'],
    ...Object.entries(init.headers ?? {}),
    ...(body.length ? ([['content-length', String(body.length)]] as [string, string][]) : []),
    ['x-request-id', '6f1c1a38-1c1b-4d7e-9d64-5d1d8c4b1a11'],
  ]);
  const controller = new AbortController();
  let requestBody: Buffer = body;
  const stream: FakeStream = {
    requestHeaders: headers,
    get requestBody() {
      return requestBody;
    },
    setRequestBody(next: Buffer) {
      requestBody = next;
    },
    route: () => ({ name: 'httproute/default/chat/rule/0/match/0/gateway_example_com' }),
    clearRouteCache() {
      stream.routeClears += 1;
    },
    dynamicMetadata: new Map(),
    responseFlags: new Set(),
    responseCodeDetails: init.responseCodeDetails,
    downstreamAddress: '127.0.0.1:50000',
    signal: controller.signal,
    routeClears: 0,
    abort: () => controller.abort(),
  };
  return stream;
}

export interface UpstreamResponse {
  status: number;
  headers?: Record<string, string>;
  /** Body chunks in order; the last one ends the stream. Empty: a headers-only response. */
  chunks?: Array<string | Buffer>;
}

export interface DriveResult {
  /** The request as it left the filter (undefined when answered locally before). */
  upstreamRequest?: { headers: HeaderMap; body: Buffer };
  /** A local reply the filter answered with (on the request path or instead of the response). */
  localReply?: LocalReply;
  status?: number;
  responseHeaders?: HeaderMap;
  /** What each encodeData call passed on, in order. */
  passed: Buffer[];
  body: Buffer;
}

/**
 * Calls the filter as the filter manager does: decodeHeaders, decodeData (whole body), then the upstream's
 * response (or `localResponse`, the router's own reply) through encodeHeaders and encodeData per chunk.
 */
export async function drive(
  filter: HttpFilter,
  stream: FakeStream,
  upstream:
    | UpstreamResponse
    | ((request: { headers: HeaderMap; body: Buffer }) => UpstreamResponse | Promise<UpstreamResponse>),
  options: { complete?: boolean } = {},
): Promise<DriveResult> {
  const result: DriveResult = { passed: [], body: Buffer.alloc(0) };
  try {
    const hasBody = stream.requestBody.length > 0;
    let decoded = await filter.decodeHeaders!(stream, !hasBody);
    if (decoded.action === 'continue' && hasBody) decoded = await filter.decodeData!(stream);
    if (decoded.action === 'localReply') {
      result.localReply = decoded.reply;
      // The local reply passes through the filter's encoder side too.
      const replyHeaders = new HeaderMap([[':status', String(decoded.reply.status)], ...(decoded.reply.headers ?? [])]);
      await filter.encodeHeaders!(stream, replyHeaders, !decoded.reply.body?.length);
      return result;
    }
    const upstreamRequest = { headers: stream.requestHeaders.clone(), body: stream.requestBody };
    result.upstreamRequest = upstreamRequest;
    const response = typeof upstream === 'function' ? await upstream(upstreamRequest) : upstream;
    const headers = new HeaderMap([[':status', String(response.status)], ...Object.entries(response.headers ?? {})]);
    const chunks = (response.chunks ?? []).map((chunk) => Buffer.from(chunk));
    const encoded = await filter.encodeHeaders!(stream, headers, chunks.length === 0);
    if (encoded.action === 'localReply') {
      result.localReply = encoded.reply;
      return result;
    }
    for (let i = 0; i < chunks.length; i++) {
      const out = await filter.encodeData!(stream, chunks[i], i === chunks.length - 1);
      if (!Buffer.isBuffer(out)) {
        result.localReply = out.reply;
        return result;
      }
      result.passed.push(out);
    }
    result.status = Number(headers.get(':status'));
    result.responseHeaders = headers;
    result.body = Buffer.concat(result.passed);
    return result;
  } finally {
    if (options.complete !== false) await filter.onStreamComplete?.(stream);
  }
}

export function settings(overrides: Partial<ExtProcSettings> = {}): ExtProcSettings {
  return {
    name: 'envoyextensionpolicy/ai-gateway/processor/extproc/0',
    service: { kind: 'Service', namespace: 'ai-gateway', name: 'processor', port: 9002 },
    authority: 'processor.ai-gateway:9002',
    processingMode: { request: { body: 'Buffered' }, response: { body: 'Buffered' } },
    messageTimeoutMs: 2000,
    failOpen: false,
    allowModeOverride: true,
    shadowMode: false,
    metadataOptions: { forwardingNamespaces: [], receivingNamespaces: ['io.envoy.ai_gateway'] },
    ...overrides,
  };
}

/** A `HeaderValueOption` with `raw_value`, as the processor writes them. */
export function setHeader(key: string, value: string, extra: Message = {}): Message {
  return { header: { key, rawValue: Buffer.from(value, 'latin1') }, ...extra };
}

/** Header entries of a received headers message, decoded from `raw_value`. */
export function wireHeaders(message: Message, kind: 'requestHeaders' | 'responseHeaders'): Array<[string, string]> {
  return (message[kind].headers.headers as Message[]).map((h) => [
    h.key,
    Buffer.from(h.rawValue ?? []).toString('latin1'),
  ]);
}

export function newClients(): ExtProcClients {
  return new ExtProcClients(codec());
}
