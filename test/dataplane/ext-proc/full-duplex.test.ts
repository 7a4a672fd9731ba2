/**
 * ext_proc with the response body in FULL_DUPLEX_STREAMED, through the real filter manager and a scripted gRPC
 * processor: headers held until their answer without a message timer, body chunks handed over as they arrive,
 * streamed responses forwarded at once, trailers, header mutations, spurious answers, immediate responses, gRPC
 * failures, the client leaving; and `protocol_config` in the first message of every mode.
 */
import * as grpc from '@grpc/grpc-js';
import { createExtProcFilter, type ExtProcClients } from '../../../lib/dataplane/ext-proc';
import { HeaderMap, type StreamContext } from '../../../lib/dataplane/filter';
import { runStream, type ResponseSink, type StreamConfig } from '../../../lib/dataplane/filter-manager';
import {
  drive,
  fakeStream,
  newClients,
  setHeader,
  settings,
  startFakeProcessor,
  wireHeaders,
  type FakeProcessor,
  type Message,
  type ServerStream,
} from './support';

const DUPLEX = settings({
  processingMode: { request: { body: 'Buffered' }, response: { body: 'FullDuplexStreamed' } },
  allowModeOverride: false,
  // Generous for the request side's answers on a busy machine; the timer tests set their own.
  messageTimeoutMs: 2000,
});

/** An upstream body the test feeds chunk by chunk. */
class UpstreamBody implements AsyncIterable<Buffer> {
  private readonly chunks: Buffer[] = [];
  private ended = false;
  private wake: (() => void) | undefined;
  push(text: string): void {
    this.chunks.push(Buffer.from(text));
    this.notify();
  }
  end(): void {
    this.ended = true;
    this.notify();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk) yield chunk;
      else if (this.ended) return;
      else await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

interface Upstream {
  status?: number;
  headers?: Array<[string, string]>;
  body: UpstreamBody | 'headers-only';
  trailers?: Array<[string, string]>;
}

/** What reached the client, in order. */
function recordingSink() {
  const events: string[] = [];
  const out = { status: 0, headers: new HeaderMap(), body: '', ended: false, aborted: false, events };
  const sink: ResponseSink = {
    writeHead(status, headers) {
      out.status = status;
      out.headers = new HeaderMap(headers);
      events.push(`head ${status}`);
    },
    write(chunk) {
      out.body += chunk.toString();
      events.push(`data ${chunk.toString()}`);
    },
    end() {
      out.ended = true;
      events.push('end');
    },
    abort() {
      out.aborted = true;
      events.push('abort');
    },
  };
  return { out, sink };
}

async function until(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const continueHeaders = (mutation?: Message): Message => ({
  responseHeaders: { response: mutation ? { headerMutation: mutation } : {} },
});
const streamed = (body: string, endOfStream = false): Message => ({
  responseBody: { response: { bodyMutation: { streamedResponse: { body: Buffer.from(body), endOfStream } } } },
});

/** Answers the request phase (headers, buffered body) with CONTINUE. */
async function continueRequest(stream: ServerStream): Promise<void> {
  await stream.expect('requestHeaders');
  stream.send({ requestHeaders: { response: {} } });
  await stream.expect('requestBody');
  stream.send({ requestBody: { response: {} } });
}

describe('ext_proc FULL_DUPLEX_STREAMED response', () => {
  let clients: ExtProcClients;
  const servers: FakeProcessor[] = [];
  const start = async (script: (stream: ServerStream) => void | Promise<void>): Promise<FakeProcessor> => {
    const server = await startFakeProcessor(script);
    servers.push(server);
    return server;
  };
  beforeEach(() => {
    clients = newClients();
  });
  afterEach(async () => {
    clients.close();
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });

  /** Runs one POST through the manager with the ext_proc filter in front of a router answering `upstream`. */
  function run(server: FakeProcessor, upstream: Upstream, options: { settings?: typeof DUPLEX } = {}) {
    const filter = createExtProcFilter(options.settings ?? DUPLEX, server.address, clients);
    const controller = new AbortController();
    const config: StreamConfig<string> = {
      earlyRemoveHeaders: [],
      matchRoute: () => 'route',
      createFilters: () => [filter],
      router: {
        name: 'router',
        serve: async (stream: StreamContext) => {
          void stream;
          const headers = new HeaderMap([[':status', String(upstream.status ?? 200)], ...(upstream.headers ?? [])]);
          if (upstream.body === 'headers-only') {
            return { kind: 'response', headers, body: (async function* () {})(), headersOnly: true };
          }
          return {
            kind: 'response',
            headers,
            body: upstream.body,
            trailers: () => (upstream.trailers ? new HeaderMap(upstream.trailers) : undefined),
          };
        },
      },
      requestBodyLimit: () => undefined,
      maxRequestBodyBytes: 1024 * 1024,
    };
    const { out, sink } = recordingSink();
    const done = runStream(
      config,
      {
        headers: new HeaderMap([
          [':method', 'POST'],
          [':path', '/v1/chat/completions'],
          [':authority', 'gateway.example.com'],
          [':scheme', 'http'],
        ]),
        body: (async function* () {
          yield Buffer.from('{"model":"m"}');
        })(),
        downstreamAddress: '127.0.0.1:5000',
        signal: controller.signal,
      },
      sink,
    );
    return { out, done, abort: () => controller.abort() };
  }

  it('hands chunks over as they arrive, before the headers answer; forwards streamed responses at once', async () => {
    const body = new UpstreamBody();
    let stream!: ServerStream;
    const server = await start(async (s) => {
      stream = s;
      await continueRequest(s);
    });
    const { out, done } = run(server, {
      headers: [
        ['content-type', 'application/json'],
        ['content-length', '6'],
      ],
      body,
    });
    await until(() => stream?.received.length === 3, 'the response headers message');
    const headersMessage = await stream.expect('responseHeaders');
    expect(headersMessage.responseHeaders.endOfStream).toBe(false);
    expect(wireHeaders(headersMessage, 'responseHeaders')).toContainEqual(['content-length', '6']);
    // The chunk goes to the processor while its headers answer is outstanding.
    body.push('abc');
    const first = await stream.expect('responseBody');
    expect(Buffer.from(first.responseBody.body).toString()).toBe('abc');
    expect(first.responseBody.endOfStream).toBe(false);
    expect(out.events).toEqual([]);

    stream.send(continueHeaders({ setHeaders: [setHeader('x-fallback', 'no')] }));
    // The head goes to the client with the headers answer, without its length.
    await until(() => out.events.length === 1, 'the response head');
    expect(out.status).toBe(200);
    expect(out.headers.get('x-fallback')).toBe('no');
    expect(out.headers.get('content-length')).toBeUndefined();
    stream.send(streamed('X'));
    await until(() => out.events.length === 2, 'the first streamed response');
    expect(out.events).toEqual(['head 200', 'data X']);

    body.push('def');
    const second = await stream.expect('responseBody');
    expect(Buffer.from(second.responseBody.body).toString()).toBe('def');
    body.end();
    const last = await stream.expect('responseBody');
    expect(last.responseBody.endOfStream).toBe(true);
    expect(Buffer.from(last.responseBody.body ?? []).length).toBe(0);
    // The upstream is done; the response is not, until the processor says so.
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(out.ended).toBe(false);
    stream.send(streamed('Y'));
    stream.send(streamed('Z', true));
    await done;
    expect(out.events).toEqual(['head 200', 'data X', 'data Y', 'data Z', 'end']);
    // No trailers message without upstream trailers; the filter closed the gRPC stream after the last answer.
    expect(stream.received.map((m) => m.request)).toEqual([
      'requestHeaders',
      'requestBody',
      'responseHeaders',
      'responseBody',
      'responseBody',
      'responseBody',
    ]);
    expect(await stream.closed()).toBeDefined();
  });

  it('sends protocol_config with both configured body modes in the first message only', async () => {
    let stream!: ServerStream;
    const server = await start(async (s) => {
      stream = s;
      await continueRequest(s);
      await s.expect('responseHeaders');
      s.send(continueHeaders());
      await s.expect('responseBody');
      s.send(streamed('ok', true));
    });
    const body = new UpstreamBody();
    body.push('x');
    body.end();
    const { done } = run(server, { body });
    await done;
    expect(stream.received[0].protocolConfig).toEqual({
      requestBodyMode: 2,
      responseBodyMode: 4,
      sendBodyWithoutWaitingForHeaderResponse: false,
    });
    expect(stream.received.slice(1).some((m) => m.protocolConfig !== undefined)).toBe(false);
  });

  it('sends protocol_config in the other modes too (BUFFERED both ways; response NONE)', async () => {
    const received: Message[][] = [];
    const server = await start(async (s) => {
      received.push(s.received);
      for (;;) {
        const message = await s.next();
        if (!message) return;
        s.send({ [message.request]: { response: {} } });
      }
    });
    const buffered = createExtProcFilter(settings(), server.address, clients);
    await drive(buffered, fakeStream({ body: '{}' }), { status: 200, chunks: ['{}'] });
    const requestOnly = createExtProcFilter(
      settings({ processingMode: { request: { body: 'Buffered' } } }),
      server.address,
      clients,
    );
    await drive(requestOnly, fakeStream({ body: '{}' }), { status: 200, chunks: ['{}'] });
    expect(received[0][0].protocolConfig).toEqual({
      requestBodyMode: 2,
      responseBodyMode: 2,
      sendBodyWithoutWaitingForHeaderResponse: false,
    });
    expect(received[0].slice(1).some((m) => m.protocolConfig !== undefined)).toBe(false);
    expect(received[1][0].protocolConfig).toEqual({
      requestBodyMode: 2,
      responseBodyMode: 0,
      sendBodyWithoutWaitingForHeaderResponse: false,
    });
  });

  it('arms no message timer on the response side: a headers answer later than message_timeout is used', async () => {
    const server = await start(async (s) => {
      await continueRequest(s);
      await s.expect('responseHeaders');
      await s.expect('responseBody');
      await s.expect('responseBody');
      // Three times the message timeout.
      await new Promise((resolve) => setTimeout(resolve, 600));
      s.send(continueHeaders({ setHeaders: [setHeader(':status', '201')] }));
      s.send(streamed('late', true));
    });
    const body = new UpstreamBody();
    body.push('x');
    body.end();
    const { out, done } = run(server, { body }, { settings: { ...DUPLEX, messageTimeoutMs: 200 } });
    await done;
    expect(out.events).toEqual(['head 201', 'data late', 'end']);
  });

  it('still times out the request side (BUFFERED) after message_timeout', async () => {
    const server = await start(async (s) => {
      await s.expect('requestHeaders');
      await new Promise((resolve) => setTimeout(resolve, 500));
    });
    const { out, done } = run(server, { body: new UpstreamBody() }, { settings: { ...DUPLEX, messageTimeoutMs: 50 } });
    await done;
    expect(out.status).toBe(504);
  });

  it.each([
    ['a valid :status', '503', 503],
    ['a :status below 200 (ignored)', '100', 200],
    ['a :status that is not a number (ignored)', 'abc', 200],
  ])('applies %s from the headers answer', async (_case, status, expected) => {
    const server = await start(async (s) => {
      await continueRequest(s);
      await s.expect('responseHeaders');
      s.send(continueHeaders({ setHeaders: [setHeader(':status', status), setHeader('content-type', 'text/x')] }));
      await s.expect('responseBody');
      s.send(streamed('b', true));
    });
    const body = new UpstreamBody();
    body.push('a');
    const { out, done } = run(server, { headers: [['content-type', 'application/json']], body });
    await done;
    expect(out.status).toBe(expected);
    expect(out.headers.get('content-type')).toBe('text/x');
    expect(out.body).toBe('b');
  });

  it('removes content-length and ignores one the processor sets', async () => {
    const server = await start(async (s) => {
      await continueRequest(s);
      await s.expect('responseHeaders');
      s.send(continueHeaders({ setHeaders: [setHeader('content-length', '2'), setHeader('x-a', '1')] }));
      await s.expect('responseBody');
      s.send(streamed('hello', true));
    });
    const body = new UpstreamBody();
    body.push('hi');
    const { out, done } = run(server, { headers: [['content-length', '2']], body });
    await done;
    expect(out.headers.get('content-length')).toBeUndefined();
    expect(out.headers.get('x-a')).toBe('1');
    expect(out.body).toBe('hello');
  });

  it('ignores mode_override for the whole filter when a body mode is FULL_DUPLEX_STREAMED', async () => {
    let stream!: ServerStream;
    const server = await start(async (s) => {
      stream = s;
      await s.expect('requestHeaders');
      // Would turn both bodies off (and the response headers) if it were honoured.
      s.send({ requestHeaders: { response: {} }, modeOverride: { responseHeaderMode: 2 } });
      await s.expect('requestBody');
      s.send({ requestBody: { response: {} } });
      await s.expect('responseHeaders');
      s.send({ ...continueHeaders(), modeOverride: { responseBodyMode: 2 } });
      await s.expect('responseBody');
      s.send(streamed('duplex', true));
    });
    const body = new UpstreamBody();
    body.push('x');
    const { out, done } = run(server, { body }, { settings: { ...DUPLEX, allowModeOverride: true } });
    await done;
    expect(stream.received.map((m) => m.request)).toEqual([
      'requestHeaders',
      'requestBody',
      'responseHeaders',
      'responseBody',
    ]);
    expect(out.body).toBe('duplex');
  });

  it('answers 500 to a streamed response before the headers answer (spurious)', async () => {
    const server = await start(async (s) => {
      await continueRequest(s);
      await s.expect('responseHeaders');
      await s.expect('responseBody');
      s.send(streamed('too early'));
    });
    const body = new UpstreamBody();
    body.push('x');
    const { out, done } = run(server, { body });
    await done;
    expect(out.status).toBe(500);
    expect(out.events).toEqual(['head 500', 'end']);
  });

  it('resets the stream on a spurious answer once the head went out (a buffered body mutation)', async () => {
    const server = await start(async (s) => {
      await continueRequest(s);
      await s.expect('responseHeaders');
      await s.expect('responseBody');
      s.send(continueHeaders());
      s.send({ responseBody: { response: { bodyMutation: { body: Buffer.from('whole') } } } });
    });
    const body = new UpstreamBody();
    body.push('x');
    const { out, done } = run(server, { body });
    await done;
    expect(out.events).toEqual(['head 200', 'abort']);
  });

  it('treats a streamed response before Envoy sent any body chunk as spurious', async () => {
    const server = await start(async (s) => {
      await continueRequest(s);
      await s.expect('responseHeaders');
      s.send(continueHeaders());
      s.send(streamed('nothing was sent yet'));
    });
    const { out, done } = run(server, { body: new UpstreamBody() });
    await done;
    expect(out.events).toEqual(['head 200', 'abort']);
  });

  it('replaces the held response with an immediate response before the headers answer (< 200 → 200)', async () => {
    const server = await start(async (s) => {
      await continueRequest(s);
      await s.expect('responseHeaders');
      await s.expect('responseBody');
      s.send({
        immediateResponse: {
          status: { code: 100 },
          headers: { setHeaders: [setHeader('content-type', 'application/json')] },
          body: Buffer.from('{"error":"all backends failed"}'),
        },
        dynamicMetadata: { fields: { 'io.envoy.ai_gateway': { structValue: { fields: {} } } } },
      });
    });
    const body = new UpstreamBody();
    body.push('upstream error');
    const { out, done } = run(server, { status: 503, body });
    await done;
    expect(out.status).toBe(200);
    expect(out.headers.get('content-type')).toBe('application/json');
    expect(out.body).toBe('{"error":"all backends failed"}');
    expect(out.ended).toBe(true);
  });

  it('resets the stream on an immediate response after the headers answer', async () => {
    const server = await start(async (s) => {
      await continueRequest(s);
      await s.expect('responseHeaders');
      await s.expect('responseBody');
      s.send(continueHeaders());
      s.send(streamed('part'));
      s.send({ immediateResponse: { status: { code: 500 } } });
    });
    const body = new UpstreamBody();
    body.push('x');
    const { out, done } = run(server, { body });
    await done;
    expect(out.events).toEqual(['head 200', 'data part', 'abort']);
  });

  it('sends the trailers when the upstream had some, and ends the response with the trailers answer', async () => {
    let stream!: ServerStream;
    const server = await start(async (s) => {
      stream = s;
      await continueRequest(s);
      await s.expect('responseHeaders');
      s.send(continueHeaders());
      const chunk = await s.expect('responseBody');
      expect(chunk.responseBody.endOfStream).toBe(false);
      s.send(streamed('one'));
      const trailers = await s.expect('responseTrailers');
      expect(
        wireHeaders({ responseHeaders: { headers: trailers.responseTrailers.trailers } }, 'responseHeaders'),
      ).toEqual([['grpc-status', '0']]);
      s.send(streamed('two'));
      s.send({ responseTrailers: {} });
    });
    const body = new UpstreamBody();
    body.push('x');
    body.end();
    const { out, done } = run(server, { body, trailers: [['grpc-status', '0']] });
    await done;
    expect(out.events).toEqual(['head 200', 'data one', 'data two', 'end']);
    expect(stream.received.map((m) => m.request).slice(2)).toEqual([
      'responseHeaders',
      'responseBody',
      'responseTrailers',
    ]);
  });

  it('holds the head when the whole body reached the processor before the headers answer', async () => {
    const server = await start(async (s) => {
      await continueRequest(s);
      await s.expect('responseHeaders');
      await s.expect('responseBody');
      await s.expect('responseBody');
      s.send(continueHeaders());
      // Spurious while the head is still held: a 500 replaces the response.
      s.send({ responseBody: { response: {} } });
    });
    const body = new UpstreamBody();
    body.push('x');
    body.end();
    const { out, done } = run(server, { body });
    await done;
    expect(out.events).toEqual(['head 500', 'end']);
  });

  it('sends no body message for a headers-only response; the headers answer ends it', async () => {
    let stream!: ServerStream;
    const server = await start(async (s) => {
      stream = s;
      await continueRequest(s);
      const headers = await s.expect('responseHeaders');
      expect(headers.responseHeaders.endOfStream).toBe(true);
      s.send(continueHeaders({ setHeaders: [setHeader(':status', '202')] }));
    });
    const { out, done } = run(server, { status: 204, body: 'headers-only' });
    await done;
    expect(out.events).toEqual(['head 202', 'end']);
    expect(stream.received).toHaveLength(3);
  });

  it('writes dynamic metadata from streamed body answers', async () => {
    const server = await start(async (s) => {
      await continueRequest(s);
      await s.expect('responseHeaders');
      s.send(continueHeaders());
      await s.expect('responseBody');
      s.send({
        ...streamed('done', true),
        dynamicMetadata: {
          fields: {
            'io.envoy.ai_gateway': { structValue: { fields: { tokens: { numberValue: 7 } } } },
          },
        },
      });
    });
    const body = new UpstreamBody();
    body.push('x');
    const filter = createExtProcFilter(DUPLEX, server.address, clients);
    const stream = fakeStream({ body: '{}' });
    await filter.decodeHeaders!(stream, false);
    await filter.decodeData!(stream);
    const streaming = filter.encodeStream!(stream, new HeaderMap([[':status', '200']]), {
      chunks: body,
      headersOnly: false,
      trailers: () => undefined,
    })!;
    expect(await streaming.headers).toEqual({ action: 'continue', endOfStream: false, writeHead: true });
    const parts: string[] = [];
    for await (const part of streaming.body) parts.push(part.toString());
    expect(parts).toEqual(['done']);
    expect(stream.dynamicMetadata.get('io.envoy.ai_gateway')).toEqual({ tokens: 7 });
    await filter.onStreamComplete!(stream);
  });

  it.each([
    ['a gRPC error before the headers answer: status_on_error', 'before', ['head 500', 'end']],
    ['a gRPC error after the headers answer: reset', 'after', ['head 200', 'abort']],
  ])('%s', async (_case, when, events) => {
    const server = await start(async (s) => {
      await continueRequest(s);
      await s.expect('responseHeaders');
      await s.expect('responseBody');
      if (when === 'after') s.send(continueHeaders());
      await new Promise((resolve) => setTimeout(resolve, 20));
      s.finish(grpc.status.INTERNAL, 'boom');
    });
    const body = new UpstreamBody();
    body.push('x');
    const { out, done } = run(server, { body });
    await done;
    expect(out.events).toEqual(events);
  });

  it('cancels the gRPC stream when the client goes away mid-response', async () => {
    let stream!: ServerStream;
    const server = await start(async (s) => {
      stream = s;
      await continueRequest(s);
      await s.expect('responseHeaders');
      s.send(continueHeaders());
      await s.expect('responseBody');
      s.send(streamed('partial'));
    });
    const body = new UpstreamBody();
    body.push('x');
    const { out, done, abort } = run(server, { body });
    await until(() => out.events.length === 2, 'the first streamed response');
    abort();
    // Closed with the upstream body still open and no end of stream from the processor.
    await until(() => stream.ended || stream.cancelled, 'the gRPC stream to close');
    body.end();
    await done;
    expect(out.ended).toBe(false);
  });

  it('refuses the request side in FULL_DUPLEX_STREAMED as not modelled', () => {
    expect(() =>
      createExtProcFilter(
        settings({ processingMode: { request: { body: 'FullDuplexStreamed' }, response: {} } }),
        '127.0.0.1:1',
        clients,
      ),
    ).toThrow(/request body mode FullDuplexStreamed is not modelled by the local data plane \(the response side is\)/);
  });
});
