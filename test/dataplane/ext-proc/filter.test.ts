/**
 * The ext_proc filter against a scripted gRPC processor: message order per processing mode, mode override,
 * mutations, route-cache clearing, immediate responses, dynamic metadata, timeouts, gRPC failures and aborts.
 */
import * as grpc from '@grpc/grpc-js';
import { createExtProcFilter, type ExtProcClients } from '../../../lib/dataplane/ext-proc';
import { HeaderMap } from '../../../lib/dataplane/filter';
import {
  closedPort,
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

const CHAT_BODY = '{"model":"gpt-4o","messages":[]}';
const CONTINUE_REQUEST_HEADERS = { requestHeaders: { response: {} } };
const CONTINUE_REQUEST_BODY = { requestBody: { response: {} } };
const CONTINUE_RESPONSE_HEADERS = { responseHeaders: { response: {} } };
const CONTINUE_RESPONSE_BODY = { responseBody: { response: {} } };

/** Answers every message with an empty CONTINUE of the matching kind, and records them. */
async function passThrough(stream: ServerStream): Promise<void> {
  for (;;) {
    const message = await stream.next();
    if (!message) return;
    stream.send({ [message.request]: { response: {} } });
  }
}

describe('ext_proc filter (scripted processor)', () => {
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

  describe('message order and processing modes', () => {
    it('BUFFERED both ways: request headers, whole request body, response headers, whole response body', async () => {
      const server = await start(passThrough);
      const filter = createExtProcFilter(settings({ allowModeOverride: false }), server.address, clients);
      const stream = fakeStream({ body: CHAT_BODY });
      const result = await drive(filter, stream, {
        status: 200,
        headers: { 'content-type': 'application/json', 'content-length': '11' },
        chunks: ['{"id":', '"x"}', '\n\n\n\n\n'],
      });
      const received = server.streams[0].received;
      expect(received.map((m) => m.request)).toEqual([
        'requestHeaders',
        'requestBody',
        'responseHeaders',
        'responseBody',
      ]);
      expect(received[0].requestHeaders.endOfStream).toBe(false);
      expect(wireHeaders(received[0], 'requestHeaders')).toEqual([
        [':authority', 'gateway.example.com'],
        [':path', '/v1/chat/completions'],
        [':method', 'POST'],
        [':scheme', 'http'],
        ['content-length', String(CHAT_BODY.length)],
        ['x-request-id', '6f1c1a38-1c1b-4d7e-9d64-5d1d8c4b1a11'],
      ]);
      expect(received[0].requestHeaders.headers.headers[0].value ?? '').toBe('');
      expect(Buffer.from(received[1].requestBody.body).toString()).toBe(CHAT_BODY);
      expect(received[1].requestBody.endOfStream).toBe(true);
      expect(wireHeaders(received[2], 'responseHeaders')).toContainEqual([':status', '200']);
      expect(received[2].responseHeaders.endOfStream).toBe(false);
      expect(Buffer.from(received[3].responseBody.body).toString()).toBe('{"id":"x"}\n\n\n\n\n');
      expect(received[3].responseBody.endOfStream).toBe(true);
      // The body is held until the body answer, then released whole; the length stays (BUFFERED + SEND headers).
      expect(result.passed.map((b) => b.length)).toEqual([0, 0, 15]);
      expect(result.responseHeaders!.get('content-length')).toBe('11');
      expect(result.upstreamRequest!.headers.get('content-length')).toBe(String(CHAT_BODY.length));
    });

    it(
      'skips the request phase when only the response is configured, and sends no body message ' +
        'for a headers-only response',
      async () => {
        const server = await start(passThrough);
        const filter = createExtProcFilter(
          settings({ processingMode: { response: { body: 'Buffered' } } }),
          server.address,
          clients,
        );
        await drive(filter, fakeStream({ body: CHAT_BODY }), { status: 204 });
        const received = server.streams[0].received;
        expect(received.map((m) => m.request)).toEqual(['responseHeaders']);
        expect(received[0].responseHeaders.endOfStream).toBe(true);
      },
    );

    it('sends headers only when no body mode is set, and a GET request header message ends the stream', async () => {
      const server = await start(passThrough);
      const filter = createExtProcFilter(
        settings({ processingMode: { request: {}, response: {} } }),
        server.address,
        clients,
      );
      await drive(filter, fakeStream({ method: 'GET', path: '/v1/models' }), { status: 200, chunks: ['{"data":[]}'] });
      const received = server.streams[0].received;
      expect(received.map((m) => m.request)).toEqual(['requestHeaders', 'responseHeaders']);
      expect(received[0].requestHeaders.endOfStream).toBe(true);
    });

    it(
      'STREAMED response: every chunk is its own message, mutated chunk by chunk, and ' + 'content-length is dropped',
      async () => {
        const server = await start(async (stream) => {
          await stream.expect('requestHeaders');
          stream.send(CONTINUE_REQUEST_HEADERS);
          await stream.expect('requestBody');
          stream.send(CONTINUE_REQUEST_BODY);
          await stream.expect('responseHeaders');
          stream.send(CONTINUE_RESPONSE_HEADERS);
          for (let message = await stream.next(); message; message = await stream.next()) {
            const text = Buffer.from(message.responseBody.body).toString();
            stream.send({ responseBody: { response: { bodyMutation: { body: Buffer.from(text.toUpperCase()) } } } });
          }
        });
        const filter = createExtProcFilter(
          settings({ processingMode: { request: { body: 'Buffered' }, response: { body: 'Streamed' } } }),
          server.address,
          clients,
        );
        const result = await drive(filter, fakeStream({ body: CHAT_BODY }), {
          status: 200,
          headers: { 'content-type': 'text/event-stream', 'content-length': '9' },
          chunks: ['abc', 'def', 'ghi'],
        });
        const bodies = server.streams[0].received.filter((m) => m.request === 'responseBody');
        expect(
          bodies.map((m) => [Buffer.from(m.responseBody.body).toString(), m.responseBody.endOfStream === true]),
        ).toEqual([
          ['abc', false],
          ['def', false],
          ['ghi', true],
        ]);
        expect(result.passed.map(String)).toEqual(['ABC', 'DEF', 'GHI']);
        expect(result.responseHeaders!.has('content-length')).toBe(false);
      },
    );

    it(
      'STREAMED request body: one message with the whole body, content-length removed before the ' +
        'processor answers',
      async () => {
        let seenLength: string | undefined;
        const server = await start(async (stream) => {
          const headers = await stream.expect('requestHeaders');
          seenLength = wireHeaders(headers, 'requestHeaders').find(([k]) => k === 'content-length')?.[1];
          stream.send(CONTINUE_REQUEST_HEADERS);
          const body = await stream.expect('requestBody');
          expect(body.requestBody.endOfStream).toBe(true);
          // A streamed chunk's header mutation is not applied; its clear_route_cache still counts.
          stream.send({
            requestBody: {
              response: {
                bodyMutation: { body: Buffer.from('{}') },
                headerMutation: { setHeaders: [setHeader('x-late', '1')] },
                clearRouteCache: true,
              },
            },
          });
          await passThrough(stream);
        });
        const filter = createExtProcFilter(
          settings({ processingMode: { request: { body: 'Streamed' } } }),
          server.address,
          clients,
        );
        const stream = fakeStream({ body: CHAT_BODY });
        const result = await drive(filter, stream, { status: 200, chunks: ['ok'] });
        expect(seenLength).toBe(String(CHAT_BODY.length));
        expect(result.upstreamRequest!.headers.has('content-length')).toBe(false);
        expect(result.upstreamRequest!.headers.has('x-late')).toBe(false);
        expect(result.upstreamRequest!.body.toString()).toBe('{}');
        expect(stream.routeClears).toBe(1);
      },
    );

    it('honours mode_override on the response headers answer only when allowModeOverride is set', async () => {
      const script = async (stream: ServerStream) => {
        await stream.expect('requestHeaders');
        stream.send(CONTINUE_REQUEST_HEADERS);
        await stream.expect('requestBody');
        stream.send(CONTINUE_REQUEST_BODY);
        await stream.expect('responseHeaders');
        stream.send({ ...CONTINUE_RESPONSE_HEADERS, modeOverride: { responseBodyMode: 1 } });
        await passThrough(stream);
      };
      const response = { status: 200, headers: { 'content-type': 'text/event-stream' }, chunks: ['a', 'b'] };

      const allowed = await start(script);
      await drive(
        createExtProcFilter(settings({ allowModeOverride: true }), allowed.address, clients),
        fakeStream({ body: CHAT_BODY }),
        response,
      );
      expect(
        allowed.streams[0].received
          .filter((m) => m.request === 'responseBody')
          .map((m) => Buffer.from(m.responseBody.body).toString()),
      ).toEqual(['a', 'b']);

      const ignored = await start(script);
      await drive(
        createExtProcFilter(settings({ allowModeOverride: false }), ignored.address, clients),
        fakeStream({ body: CHAT_BODY }),
        response,
      );
      expect(
        ignored.streams[0].received
          .filter((m) => m.request === 'responseBody')
          .map((m) => Buffer.from(m.responseBody.body).toString()),
      ).toEqual(['ab']);
    });

    it(
      'a mode_override header mode left at DEFAULT keeps the configured one; body modes are ' + 'always taken',
      async () => {
        const server = await start(async (stream) => {
          await stream.expect('requestHeaders');
          // Only the response body mode is given: response headers stay SEND (configured), request body becomes NONE.
          stream.send({ ...CONTINUE_REQUEST_HEADERS, modeOverride: { responseBodyMode: 1 } });
          await passThrough(stream);
        });
        const result = await drive(
          createExtProcFilter(settings(), server.address, clients),
          fakeStream({ body: CHAT_BODY }),
          { status: 200, chunks: ['a', 'b'] },
        );
        expect(server.streams[0].received.map((m) => m.request)).toEqual([
          'requestHeaders',
          'responseHeaders',
          'responseBody',
          'responseBody',
        ]);
        expect(result.upstreamRequest!.body.toString()).toBe(CHAT_BODY);
      },
    );

    it(
      'closes the gRPC stream right after the last expected answer (STREAMED end), not at the end ' +
        'of the HTTP stream',
      async () => {
        const server = await start(passThrough);
        const filter = createExtProcFilter(
          settings({ processingMode: { request: {}, response: { body: 'Streamed' } } }),
          server.address,
          clients,
        );
        const stream = fakeStream({ method: 'GET' });
        await drive(filter, stream, { status: 200, chunks: ['a', 'b'] }, { complete: false });
        expect(await server.streams[0].closed()).toBeDefined();
        expect(server.streams[0].received.map((m) => m.request)).toEqual([
          'requestHeaders',
          'responseHeaders',
          'responseBody',
          'responseBody',
        ]);
        await filter.onStreamComplete!(stream);
      },
    );

    it('a mode_override on a body answer is ignored (only headers answers may override)', async () => {
      const server = await start(async (stream) => {
        await stream.expect('requestHeaders');
        stream.send(CONTINUE_REQUEST_HEADERS);
        await stream.expect('requestBody');
        stream.send({ ...CONTINUE_REQUEST_BODY, modeOverride: { responseHeaderMode: 2 } });
        await passThrough(stream);
      });
      await drive(createExtProcFilter(settings(), server.address, clients), fakeStream({ body: CHAT_BODY }), {
        status: 200,
        chunks: ['x'],
      });
      expect(server.streams[0].received.map((m) => m.request)).toEqual([
        'requestHeaders',
        'requestBody',
        'responseHeaders',
        'responseBody',
      ]);
    });
  });

  describe('header and body mutations', () => {
    async function mutateRequestHeaders(mutation: Message, headers: Record<string, string> = {}) {
      const server = await start(async (stream) => {
        await stream.expect('requestHeaders');
        stream.send({ requestHeaders: { response: { headerMutation: mutation } } });
        await passThrough(stream);
      });
      const filter = createExtProcFilter(settings({ processingMode: { request: {} } }), server.address, clients);
      return drive(filter, fakeStream({ method: 'GET', headers }), { status: 200 });
    }

    it('removes, then sets; append only with the `append` flag; append_action is not read', async () => {
      const result = await mutateRequestHeaders(
        {
          removeHeaders: ['X-Remove', 'x-set'],
          setHeaders: [
            setHeader('x-set', 'new'),
            setHeader('X-Upper', 'v'),
            setHeader('x-multi', 'second', { append: { value: true } }),
            // appendAction 0 is APPEND_IF_EXISTS_OR_ADD, ignored by Envoy's ext_proc.
            setHeader('x-action', 'replaced', { appendAction: 0 }),
            setHeader(':path', '/model/x/converse'),
          ],
        },
        { 'x-remove': 'gone', 'x-set': 'old', 'x-multi': 'first', 'x-action': 'original' },
      );
      const headers = result.upstreamRequest!.headers;
      expect(headers.has('x-remove')).toBe(false);
      expect(headers.getAll('x-set')).toEqual(['new']);
      expect(headers.get('x-upper')).toBe('v');
      expect(headers.getAll('x-multi')).toEqual(['first', 'second']);
      expect(headers.getAll('x-action')).toEqual(['replaced']);
      expect(headers.get(':path')).toBe('/model/x/converse');
    });

    it('ignores what the default mutation rules protect, without failing the request', async () => {
      const result = await mutateRequestHeaders(
        {
          removeHeaders: [':path', 'host', ':authority', 'x-envoy-original-path'],
          setHeaders: [
            setHeader(':authority', 'evil.example.com'),
            setHeader('host', 'evil.example.com'),
            setHeader(':method', 'DELETE'),
            setHeader(':scheme', 'https'),
            setHeader('x-envoy-upstream-rq-timeout-ms', '1'),
            setHeader(':path', '/appended', { append: { value: true } }),
            setHeader('x-ok', 'yes'),
          ],
        },
        { 'x-envoy-original-path': '/v1' },
      );
      const headers = result.upstreamRequest!.headers;
      expect(result.localReply).toBeUndefined();
      expect(headers.get(':path')).toBe('/v1/chat/completions');
      expect(headers.get(':authority')).toBe('gateway.example.com');
      expect(headers.get(':method')).toBe('GET');
      expect(headers.get(':scheme')).toBe('http');
      expect(headers.has('x-envoy-upstream-rq-timeout-ms')).toBe(false);
      expect(headers.get('x-envoy-original-path')).toBe('/v1');
      expect(headers.get('x-ok')).toBe('yes');
    });

    it('reads only raw_value: a header given with `value` is set empty', async () => {
      const result = await mutateRequestHeaders({
        setHeaders: [{ header: { key: 'x-value-only', value: 'ignored' } }],
      });
      expect(result.upstreamRequest!.headers.getAll('x-value-only')).toEqual(['']);
    });

    it.each([
      [
        'an invalid header name',
        { setHeaders: [setHeader('bad header', 'v')] },
        'Invalid_character_in_set_headers_mutation.',
      ],
      [
        'a value with a line break',
        { setHeaders: [setHeader('x-bad', 'a\r\nb')] },
        'Invalid_character_in_set_headers_mutation.',
      ],
      [
        'both value and raw_value',
        { setHeaders: [{ header: { key: 'x-both', value: 'a', rawValue: Buffer.from('b') } }] },
        'Only_one_of_value_or_raw_value_in_the_HeaderValue_message_should_be_set.',
      ],
      ['an invalid removal', { removeHeaders: ['bad\nname'] }, 'Invalid_character_in_remove_headers_mutation.'],
    ])('answers 500 for %s, with Envoy details, and processes nothing more', async (_case, mutation, details) => {
      const result = await mutateRequestHeaders(mutation);
      expect(result.localReply).toEqual({ status: 500, details });
      expect(result.upstreamRequest).toBeUndefined();
    });

    it('answers status_on_error for a refused mutation when the policy sets one', async () => {
      const server = await start(async (stream) => {
        await stream.expect('requestHeaders');
        stream.send({
          requestHeaders: { response: { headerMutation: { setHeaders: [setHeader('bad header', 'v')] } } },
        });
        await passThrough(stream);
      });
      const filter = createExtProcFilter(
        settings({ statusOnError: 422, processingMode: { request: {} } }),
        server.address,
        clients,
      );
      const result = await drive(filter, fakeStream({ method: 'GET' }), { status: 200 });
      expect(result.localReply).toEqual({ status: 422, details: 'Invalid_character_in_set_headers_mutation.' });
    });

    it('refuses a mutation that leaves more than 100 headers', async () => {
      const many = Array.from({ length: 100 }, (_, i) => setHeader(`x-h${i}`, 'v'));
      const result = await mutateRequestHeaders({ setHeaders: many });
      expect(result.localReply?.status).toBe(500);
      expect(result.localReply?.details).toMatch(
        /^Header_mutation_causes_end_result_header_count_105_or_header_size_\d+_bytes/,
      );
    });

    it(
      'buffered request body: header mutation then body mutation; a content-length that does not ' + 'match is a 500',
      async () => {
        const answer = (length: string) => async (stream: ServerStream) => {
          await stream.expect('requestHeaders');
          stream.send(CONTINUE_REQUEST_HEADERS);
          await stream.expect('requestBody');
          stream.send({
            requestBody: {
              response: {
                headerMutation: { setHeaders: [setHeader('content-length', length)] },
                bodyMutation: { body: Buffer.from('{"new":true}') },
              },
            },
          });
          await passThrough(stream);
        };
        const good = await start(answer('12'));
        const ok = await drive(
          createExtProcFilter(settings(), good.address, clients),
          fakeStream({ body: CHAT_BODY }),
          {
            status: 200,
          },
        );
        expect(ok.upstreamRequest!.body.toString()).toBe('{"new":true}');
        expect(ok.upstreamRequest!.headers.get('content-length')).toBe('12');

        const bad = await start(answer('99'));
        const failed = await drive(
          createExtProcFilter(settings(), bad.address, clients),
          fakeStream({ body: CHAT_BODY }),
          { status: 200 },
        );
        expect(failed.localReply).toEqual({
          status: 500,
          details: 'mismatch_between_content_length_and_the_length_of_the_mutated_body',
        });
      },
    );

    it(
      'buffered response body answer changes the held response headers (:status, content-length) ' + 'and the body',
      async () => {
        const server = await start(async (stream) => {
          await passThroughUntil(stream, 'responseBody');
          stream.send({
            responseBody: {
              response: {
                headerMutation: { setHeaders: [setHeader(':status', '502'), setHeader('content-length', '7')] },
                bodyMutation: { body: Buffer.from('{"e":1}') },
              },
            },
          });
          await passThrough(stream);
        });
        const result = await drive(
          createExtProcFilter(settings(), server.address, clients),
          fakeStream({ body: CHAT_BODY }),
          {
            status: 200,
            headers: { 'content-length': '2' },
            chunks: ['ok'],
          },
        );
        expect(result.status).toBe(502);
        expect(result.responseHeaders!.get('content-length')).toBe('7');
        expect(result.body.toString()).toBe('{"e":1}');
      },
    );

    it(
      'a BUFFERED response beyond the buffer limit is answered 500 response_payload_too_large (EG ' + 'default 32 KiB)',
      async () => {
        const big = Buffer.alloc(20 * 1024, 'x');
        const defaults = await start(passThrough);
        const tooLarge = await drive(
          createExtProcFilter(settings(), defaults.address, clients),
          fakeStream({ body: CHAT_BODY }),
          {
            status: 200,
            chunks: [big, big],
          },
        );
        expect(tooLarge.localReply).toEqual({
          status: 500,
          body: 'Internal Server Error',
          details: 'response_payload_too_large',
        });
        expect(defaults.streams[0].received.map((m) => m.request)).toEqual([
          'requestHeaders',
          'requestBody',
          'responseHeaders',
        ]);

        const larger = await start(passThrough);
        const fits = await drive(
          createExtProcFilter(settings(), larger.address, clients, { bufferLimitBytes: 50 * 1024 * 1024 }),
          fakeStream({ body: CHAT_BODY }),
          {
            status: 200,
            chunks: [big, big],
          },
        );
        expect(fits.localReply).toBeUndefined();
        expect(fits.body.length).toBe(2 * big.length);
      },
    );

    it('clear_body empties the body', async () => {
      const server = await start(async (stream) => {
        await passThroughUntil(stream, 'requestBody');
        stream.send({
          requestBody: {
            response: { headerMutation: { removeHeaders: ['content-length'] }, bodyMutation: { clearBody: true } },
          },
        });
        await passThrough(stream);
      });
      const result = await drive(
        createExtProcFilter(settings(), server.address, clients),
        fakeStream({ body: CHAT_BODY }),
        { status: 200 },
      );
      expect(result.upstreamRequest!.body.length).toBe(0);
    });

    it('CONTINUE_AND_REPLACE on the request headers answer replaces the body and sends no body message', async () => {
      const server = await start(async (stream) => {
        await stream.expect('requestHeaders');
        stream.send({ requestHeaders: { response: { status: 1, bodyMutation: { body: Buffer.from('replaced') } } } });
        await passThrough(stream);
      });
      const result = await drive(
        createExtProcFilter(settings(), server.address, clients),
        fakeStream({ body: CHAT_BODY }),
        { status: 200, chunks: ['x'] },
      );
      expect(result.upstreamRequest!.body.toString()).toBe('replaced');
      expect(result.upstreamRequest!.headers.has('content-length')).toBe(false);
      expect(server.streams[0].received.map((m) => m.request)).toEqual([
        'requestHeaders',
        'responseHeaders',
        'responseBody',
      ]);
    });
  });

  describe('clear_route_cache', () => {
    it.each([
      [
        'with a header mutation',
        { headerMutation: { setHeaders: [setHeader('x-ai-gateway-backend', 'b')] }, clearRouteCache: true },
        1,
      ],
      ['with an empty header mutation', { headerMutation: {}, clearRouteCache: true }, 1],
      ['without a header mutation', { bodyMutation: { body: Buffer.from(CHAT_BODY) }, clearRouteCache: true }, 0],
      ['not asked for', { headerMutation: { setHeaders: [setHeader('x-a', 'b')] } }, 0],
    ])('request body answer %s clears the route cache %i time(s)', async (_case, common, clears) => {
      const server = await start(async (stream) => {
        await passThroughUntil(stream, 'requestBody');
        stream.send({ requestBody: { response: common } });
        await passThrough(stream);
      });
      const stream = fakeStream({ body: CHAT_BODY });
      await drive(createExtProcFilter(settings(), server.address, clients), stream, { status: 200 });
      expect(stream.routeClears).toBe(clears);
    });

    it('a response-phase answer never clears the route cache', async () => {
      const server = await start(async (stream) => {
        await passThroughUntil(stream, 'responseHeaders');
        stream.send({
          responseHeaders: {
            response: { headerMutation: { setHeaders: [setHeader('x-a', 'b')] }, clearRouteCache: true },
          },
        });
        await passThrough(stream);
      });
      const stream = fakeStream({ body: CHAT_BODY });
      await drive(createExtProcFilter(settings(), server.address, clients), stream, { status: 200 });
      expect(stream.routeClears).toBe(0);
    });
  });

  describe('immediate responses and dynamic metadata', () => {
    it(
      'an immediate response becomes the local reply (status, allowed headers, body, details) and ' + 'ends processing',
      async () => {
        const server = await start(async (stream) => {
          await stream.expect('requestHeaders');
          stream.send({
            immediateResponse: {
              status: { code: 404 },
              headers: {
                setHeaders: [setHeader('content-type', 'application/json'), setHeader('x-envoy-hidden', '1')],
              },
              body: Buffer.from('{"error":"nope"}'),
              details: 'unsupported path',
            },
            dynamicMetadata: {
              fields: { 'io.envoy.ai_gateway': { structValue: { fields: { llm_total_token: { numberValue: 0 } } } } },
            },
          });
          await passThrough(stream);
        });
        const stream = fakeStream({ body: CHAT_BODY });
        const result = await drive(createExtProcFilter(settings(), server.address, clients), stream, { status: 200 });
        expect(result.localReply).toEqual({
          status: 404,
          headers: [['content-type', 'application/json']],
          body: Buffer.from('{"error":"nope"}'),
          details: 'unsupported_path',
        });
        expect(stream.dynamicMetadata.get('io.envoy.ai_gateway')).toEqual({ llm_total_token: 0 });
        // The local reply passed through the encoder side: nothing more was sent, and the stream was closed.
        expect(server.streams[0].received.map((m) => m.request)).toEqual(['requestHeaders']);
        expect(await server.streams[0].closed()).toBeDefined();
      },
    );

    it('an immediate response without a valid status answers 200', async () => {
      const server = await start(async (stream) => {
        await stream.expect('requestHeaders');
        stream.send({ immediateResponse: { status: { code: 100 } } });
      });
      const result = await drive(
        createExtProcFilter(settings(), server.address, clients),
        fakeStream({ body: CHAT_BODY }),
        { status: 200 },
      );
      expect(result.localReply).toMatchObject({ status: 200, details: '' });
    });

    it('merges metadata key by key into writable namespaces only', async () => {
      const struct = (fields: Record<string, number>) => ({
        structValue: { fields: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, { numberValue: v }])) },
      });
      const server = await start(async (stream) => {
        await passThroughUntil(stream, 'responseHeaders');
        stream.send({
          ...CONTINUE_RESPONSE_HEADERS,
          dynamicMetadata: { fields: { 'io.envoy.ai_gateway': struct({ a: 1, b: 1 }), other: struct({ x: 1 }) } },
        });
        await stream.expect('responseBody');
        stream.send({
          ...CONTINUE_RESPONSE_BODY,
          dynamicMetadata: { fields: { 'io.envoy.ai_gateway': struct({ b: 2, c: 3 }) } },
        });
        await passThrough(stream);
      });
      const stream = fakeStream({ body: CHAT_BODY });
      stream.dynamicMetadata.set('io.envoy.ai_gateway', { kept: 'yes' });
      await drive(createExtProcFilter(settings(), server.address, clients), stream, { status: 200, chunks: ['{}'] });
      expect(stream.dynamicMetadata.get('io.envoy.ai_gateway')).toEqual({ kept: 'yes', a: 1, b: 2, c: 3 });
      expect(stream.dynamicMetadata.has('other')).toBe(false);
    });

    it('forwards accessible namespaces and sends the configured attributes once per direction', async () => {
      const server = await start(passThrough);
      const filter = createExtProcFilter(
        settings({
          processingMode: {
            request: {
              body: 'Buffered',
              attributes: ['request.path', 'request.method', 'xds.route_name', 'connection.id'],
            },
            response: { attributes: ['response.code'] },
          },
          metadataOptions: { forwardingNamespaces: ['envoy.filters.http.jwt_authn'], receivingNamespaces: [] },
        }),
        server.address,
        clients,
      );
      const stream = fakeStream({ body: CHAT_BODY });
      stream.dynamicMetadata.set('envoy.filters.http.jwt_authn', { sub: 'tenant-a' });
      await drive(filter, stream, { status: 201 });
      const [headers, body, responseHeaders] = server.streams[0].received;
      expect(headers.metadataContext.filterMetadata['envoy.filters.http.jwt_authn'].fields.sub.stringValue).toBe(
        'tenant-a',
      );
      const attributes = headers.attributes['envoy.filters.http.ext_proc'].fields;
      expect(Object.keys(attributes).sort()).toEqual(['request.method', 'request.path', 'xds.route_name']);
      expect(attributes['request.path'].stringValue).toBe('/v1/chat/completions');
      expect(attributes['xds.route_name'].stringValue).toBe(
        'httproute/default/chat/rule/0/match/0/gateway_example_com',
      );
      expect(body.attributes ?? {}).toEqual({});
      expect(responseHeaders.attributes['envoy.filters.http.ext_proc'].fields['response.code'].numberValue).toBe(201);
    });

    it("sends response.code_details with the response headers: via_upstream, or a local reply's details", async () => {
      const server = await start(passThrough);
      const filter = createExtProcFilter(
        settings({
          processingMode: {
            request: { body: 'Buffered' },
            response: { body: 'Buffered', attributes: ['response.code_details'] },
          },
        }),
        server.address,
        clients,
      );
      await drive(filter, fakeStream({ body: CHAT_BODY, responseCodeDetails: 'via_upstream' }), {
        status: 200,
        chunks: ['{}'],
      });
      await drive(filter, fakeStream({ body: CHAT_BODY, responseCodeDetails: 'route_not_found' }), { status: 404 });
      const sent = server.streams.map((s) => s.received.find((m) => m.request === 'responseHeaders')!);
      expect(
        sent.map((m) => m.attributes['envoy.filters.http.ext_proc'].fields['response.code_details'].stringValue),
      ).toEqual(['via_upstream', 'route_not_found']);
      // Only the first message of the direction carries attributes.
      const body = server.streams[0].received.find((m) => m.request === 'responseBody')!;
      expect(body.attributes ?? {}).toEqual({});
    });
  });

  describe('failures', () => {
    it('message timeout, failing closed: 504 ext_proc_error_per-message_timeout_exceeded, stream closed', async () => {
      const server = await start(async (stream) => {
        await stream.expect('requestHeaders'); // never answered
      });
      const started = Date.now();
      const result = await drive(
        createExtProcFilter(settings({ messageTimeoutMs: 150 }), server.address, clients),
        fakeStream({ body: CHAT_BODY }),
        { status: 200 },
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      expect(result.localReply).toEqual({ status: 504, details: 'ext_proc_error_per-message_timeout_exceeded' });
      expect(await server.streams[0].closed()).toBeDefined();
    });

    it('message timeout, failing open: the request goes on unprocessed and no later phase is sent', async () => {
      const server = await start(async (stream) => {
        await stream.expect('requestHeaders');
        await stream.next();
      });
      const result = await drive(
        createExtProcFilter(settings({ messageTimeoutMs: 100, failOpen: true }), server.address, clients),
        fakeStream({ body: CHAT_BODY }),
        {
          status: 200,
          chunks: ['ok'],
        },
      );
      expect(result.localReply).toBeUndefined();
      expect(result.upstreamRequest!.body.toString()).toBe(CHAT_BODY);
      expect(result.body.toString()).toBe('ok');
      expect(server.streams[0].received.map((m) => m.request)).toEqual(['requestHeaders']);
    });

    it('a timeout on the response body answer replaces the held response with the 504', async () => {
      const server = await start(async (stream) => {
        await passThroughUntil(stream, 'responseBody');
      });
      const result = await drive(
        createExtProcFilter(settings({ messageTimeoutMs: 150 }), server.address, clients),
        fakeStream({ body: CHAT_BODY }),
        {
          status: 200,
          chunks: ['a', 'b'],
        },
      );
      expect(result.passed.map(String)).toEqual(['']);
      expect(result.localReply).toEqual({ status: 504, details: 'ext_proc_error_per-message_timeout_exceeded' });
    });

    it('an unreachable processor, failing closed: 500 ext_proc_error_gRPC_error_14 (or statusOnError)', async () => {
      const target = await closedPort();
      const result = await drive(createExtProcFilter(settings(), target, clients), fakeStream({ body: CHAT_BODY }), {
        status: 200,
      });
      // The gRPC message follows in braces, whitespace turned into '_' (the transport's own words, not Envoy's).
      expect(result.localReply?.status).toBe(500);
      expect(result.localReply?.details).toMatch(/^ext_proc_error_gRPC_error_14\{\S*ECONNREFUSED\S*\}$/);
      const custom = await drive(
        createExtProcFilter(settings({ statusOnError: 503 }), target, clients),
        fakeStream({ body: CHAT_BODY }),
        { status: 200 },
      );
      expect(custom.localReply?.status).toBe(503);
    });

    it('uses a processor that comes up after a failed request at the first reconnect of the channel', async () => {
      // grpc-js retries a refused connection after its initial backoff, 1 s ±20%; the bound leaves room for a loaded
      // CI machine and still fails a filter that keeps a broken channel (or waits out longer backoffs: 1.6 s, 2.56
      // s...).
      const reconnectBoundMs = 3000;
      const target = await closedPort();
      const filter = createExtProcFilter(settings(), target, clients);
      const first = await drive(filter, fakeStream({ body: CHAT_BODY }), { status: 200 });
      expect(first.localReply?.details).toMatch(/^ext_proc_error_gRPC_error_14/);
      servers.push(await startFakeProcessor(passThrough, target));
      const started = Date.now();
      let result = await drive(filter, fakeStream({ body: CHAT_BODY }), { status: 200, chunks: ['ok'] });
      while (result.localReply && Date.now() - started < reconnectBoundMs) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        result = await drive(filter, fakeStream({ body: CHAT_BODY }), { status: 200, chunks: ['ok'] });
      }
      expect(result.localReply).toBeUndefined();
      expect(result.body.toString()).toBe('ok');
    });

    it("a stream over the policy cluster's maxParallelRequests: Envoy's UNAVAILABLE, answered 500", async () => {
      const server = await start(passThrough);
      const limited = settings({ maxParallelRequests: 1 });
      const filter = createExtProcFilter(limited, server.address, clients);
      let releaseUpstream!: () => void;
      const upstreamHeld = new Promise<void>((resolve) => (releaseUpstream = resolve));
      let reachedUpstream!: () => void;
      const inUpstream = new Promise<void>((resolve) => (reachedUpstream = resolve));
      const first = drive(filter, fakeStream({ body: CHAT_BODY }), async () => {
        reachedUpstream();
        await upstreamHeld;
        return { status: 200, chunks: ['ok'] };
      });
      await inUpstream;
      const over = await drive(filter, fakeStream({ body: CHAT_BODY }), { status: 200 });
      expect(over.localReply).toEqual({
        status: 500,
        details:
          'ext_proc_error_gRPC_error_14{upstream_connect_error_or_disconnect/reset_before_headers.' +
          '_reset_reason:_overflow}',
      });
      // Another policy is another cluster, with streams of its own.
      const other = createExtProcFilter(
        settings({ name: 'envoyextensionpolicy/team/other/extproc/0', maxParallelRequests: 1 }),
        server.address,
        clients,
      );
      expect((await drive(other, fakeStream({ body: CHAT_BODY }), { status: 200, chunks: ['ok'] })).localReply).toBe(
        undefined,
      );
      releaseUpstream();
      expect((await first).body.toString()).toBe('ok');
      // The finished stream gave its slot back.
      const after = await drive(filter, fakeStream({ body: CHAT_BODY }), { status: 200, chunks: ['ok'] });
      expect(after.localReply).toBeUndefined();
      expect(server.streams).toHaveLength(3);
    });

    it('a stream that could not be opened gives its slot of the cluster back', async () => {
      const server = await start(passThrough);
      const limited = settings({ maxParallelRequests: 1 });
      // gRPC cannot parse the empty target: no stream opens, Envoy's INTERNAL for a client it cannot create.
      for (let i = 0; i < 3; i++) {
        const broken = await drive(createExtProcFilter(limited, '', clients), fakeStream({ body: CHAT_BODY }), {
          status: 200,
        });
        expect(broken.localReply?.details).toMatch(/^ext_proc_error_gRPC_error_13\{/);
      }
      // The same cluster still has its one slot: not refused with UNAVAILABLE (overflow).
      const filter = createExtProcFilter(limited, server.address, clients);
      const after = await drive(filter, fakeStream({ body: CHAT_BODY }), { status: 200, chunks: ['ok'] });
      expect(after.localReply).toBeUndefined();
      expect(after.body.toString()).toBe('ok');
    });

    it('an unreachable processor, failing open: the request passes unprocessed', async () => {
      const target = await closedPort();
      const result = await drive(
        createExtProcFilter(settings({ failOpen: true }), target, clients),
        fakeStream({ body: CHAT_BODY }),
        { status: 200, chunks: ['ok'] },
      );
      expect(result.localReply).toBeUndefined();
      expect(result.body.toString()).toBe('ok');
    });

    it('a gRPC error status from the processor: 500 with its code in the details', async () => {
      const server = await start(async (stream) => {
        await stream.expect('requestHeaders');
        stream.finish(grpc.status.INTERNAL, 'boom');
      });
      const result = await drive(
        createExtProcFilter(settings(), server.address, clients),
        fakeStream({ body: CHAT_BODY }),
        { status: 200 },
      );
      expect(result.localReply).toEqual({ status: 500, details: 'ext_proc_error_gRPC_error_13{boom}' });
    });

    it('a processor that ends the stream with OK: processing is over, the request passes', async () => {
      const server = await start(async (stream) => {
        await stream.expect('requestHeaders');
        stream.finish();
      });
      const result = await drive(
        createExtProcFilter(settings(), server.address, clients),
        fakeStream({ body: CHAT_BODY }),
        { status: 200, chunks: ['ok'] },
      );
      expect(result.localReply).toBeUndefined();
      expect(result.upstreamRequest!.body.toString()).toBe(CHAT_BODY);
      expect(result.body.toString()).toBe('ok');
    });

    it('a spurious (out of order) answer, failing closed: status_on_error with details spurious_message', async () => {
      const server = await start(async (stream) => {
        await stream.expect('requestHeaders');
        stream.send(CONTINUE_RESPONSE_BODY);
        await stream.next();
      });
      const result = await drive(
        createExtProcFilter(settings({ statusOnError: 502 }), server.address, clients),
        fakeStream({ body: CHAT_BODY }),
        { status: 200 },
      );
      expect(result.localReply).toEqual({ status: 502, details: 'spurious_message' });
      expect(await server.streams[0].closed()).toBeDefined();
    });

    it('a spurious (out of order) answer, failing open: processing ends, the request passes', async () => {
      const server = await start(async (stream) => {
        await stream.expect('requestHeaders');
        stream.send(CONTINUE_RESPONSE_BODY);
        await stream.next();
      });
      const result = await drive(
        createExtProcFilter(settings({ failOpen: true }), server.address, clients),
        fakeStream({ body: CHAT_BODY }),
        { status: 200, chunks: ['ok'] },
      );
      expect(result.localReply).toBeUndefined();
      expect(result.body.toString()).toBe('ok');
      expect(server.streams[0].received.map((m) => m.request)).toEqual(['requestHeaders']);
      expect(await server.streams[0].closed()).toBeDefined();
    });

    it('a gRPC failure while no answer is awaited is answered at the next phase', async () => {
      let failNow: () => void = () => undefined;
      const server = await start(async (stream) => {
        await passThroughUntil(stream, 'requestBody');
        stream.send(CONTINUE_REQUEST_BODY);
        failNow = () => stream.finish(grpc.status.UNAVAILABLE, 'gone');
      });
      const result = await drive(
        createExtProcFilter(settings(), server.address, clients),
        fakeStream({ body: CHAT_BODY }),
        async () => {
          failNow();
          await new Promise((resolve) => setTimeout(resolve, 100));
          return { status: 200, chunks: ['late'] };
        },
      );
      expect(result.localReply).toEqual({ status: 500, details: 'ext_proc_error_gRPC_error_14{gone}' });
    });

    it('rejects FullDuplexStreamed at creation', () => {
      expect(() =>
        createExtProcFilter(
          settings({ processingMode: { request: { body: 'FullDuplexStreamed' } } }),
          '127.0.0.1:1',
          clients,
        ),
      ).toThrow(/FullDuplexStreamed is not modelled/);
    });
  });

  describe('stream lifecycle', () => {
    it('cancels the gRPC stream when the client goes away while an answer is awaited', async () => {
      const server = await start(async (stream) => {
        await stream.expect('requestHeaders');
      });
      const filter = createExtProcFilter(settings({ messageTimeoutMs: 5000 }), server.address, clients);
      const stream = fakeStream({ body: CHAT_BODY });
      const decoding = filter.decodeHeaders!(stream, false);
      await waitFor(() => server.streams[0]?.received.length === 1);
      stream.abort();
      await expect(decoding).resolves.toEqual({ action: 'continue' });
      // Envoy half-closes, then resets the stream; the processor sees its end either way.
      expect(['end', 'cancelled']).toContain(await server.streams[0].closed());
      await filter.onStreamComplete!(stream);
    });

    it('closes the gRPC stream at the end of the HTTP stream', async () => {
      const server = await start(passThrough);
      await drive(createExtProcFilter(settings(), server.address, clients), fakeStream({ body: CHAT_BODY }), {
        status: 200,
        chunks: ['x'],
      });
      expect(await server.streams[0].closed()).toBeDefined();
    });

    it('passes the router local reply (404 NR after the re-match) through the response phase', async () => {
      const server = await start(passThrough);
      const filter = createExtProcFilter(settings(), server.address, clients);
      const stream = fakeStream({ body: CHAT_BODY });
      expect(await filter.decodeHeaders!(stream, false)).toEqual({ action: 'continue' });
      expect(await filter.decodeData!(stream)).toEqual({ action: 'continue' });
      // The router found no route and answers itself; the manager runs that reply through the encoder filters.
      const reply = new HeaderMap([[':status', '404']]);
      expect(await filter.encodeHeaders!(stream, reply, true)).toEqual({ action: 'continue' });
      await filter.onStreamComplete!(stream);
      const received = server.streams[0].received;
      expect(received.map((m) => m.request)).toEqual(['requestHeaders', 'requestBody', 'responseHeaders']);
      expect(wireHeaders(received[2], 'responseHeaders')).toEqual([[':status', '404']]);
    });

    it.each([
      ['a headers-only local reply (the rate-limit 429): the body is added to the stream', true],
      ['a local reply with a body (api_key_auth 401): the body is replaced', false],
    ])('CONTINUE_AND_REPLACE with a body on the response headers answer of %s', async (_what, headersOnly) => {
      const server = await start(async (stream) => {
        await stream.expect('responseHeaders');
        stream.send({
          responseHeaders: {
            response: {
              status: 1,
              headerMutation: {
                setHeaders: [setHeader('content-type', 'application/json'), setHeader('content-length', '99')],
              },
              bodyMutation: { body: Buffer.from('{"error":{"type":"rate_limit_exceeded"}}') },
            },
          },
        });
      });
      const filter = createExtProcFilter(settings(), server.address, clients);
      const stream = fakeStream({ body: CHAT_BODY });
      const reply = new HeaderMap([
        [':status', headersOnly ? '429' : '401'],
        ['content-length', headersOnly ? '0' : '29'],
        ...(headersOnly ? [] : ([['content-type', 'text/plain']] as [string, string][])),
      ]);
      const result = await filter.encodeHeaders!(stream, reply, headersOnly);
      // Envoy applies the header mutation, then removes content-length (the new body's length is not known to it).
      expect(reply.get('content-type')).toBe('application/json');
      expect(reply.has('content-length')).toBe(false);
      if (headersOnly) {
        expect(result).toEqual({
          action: 'continue',
          addedBody: Buffer.from('{"error":{"type":"rate_limit_exceeded"}}'),
        });
      } else {
        expect(result).toEqual({ action: 'continue' });
        expect(await filter.encodeData!(stream, Buffer.from('Client authentication failed.'), true)).toEqual(
          Buffer.from('{"error":{"type":"rate_limit_exceeded"}}'),
        );
      }
      await filter.onStreamComplete!(stream);
      expect(server.streams[0].received.map((m) => m.request)).toEqual(['responseHeaders']);
    });

    it('a local reply of an earlier filter (e.g. jwt_authn 401) still goes through the response phase', async () => {
      const server = await start(passThrough);
      const filter = createExtProcFilter(settings(), server.address, clients);
      const stream = fakeStream({ body: CHAT_BODY });
      const reply = new HeaderMap([
        [':status', '401'],
        ['www-authenticate', 'Bearer'],
      ]);
      expect(await filter.encodeHeaders!(stream, reply, false)).toEqual({ action: 'continue' });
      expect(await filter.encodeData!(stream, Buffer.from('Jwt is missing'), true)).toEqual(
        Buffer.from('Jwt is missing'),
      );
      await filter.onStreamComplete!(stream);
      expect(server.streams[0].received.map((m) => m.request)).toEqual(['responseHeaders', 'responseBody']);
    });

    it('shadow mode (observability): messages are sent and flagged, answers never awaited or applied', async () => {
      const server = await start(async (stream) => {
        for (let message = await stream.next(); message; message = await stream.next()) {
          stream.send({ immediateResponse: { status: { code: 403 } } });
        }
        // The filter half-closed: end the call as a processor does (else the server's shutdown waits for the filter's
        // deferred reset, 5 s, as long as the hook that closes it).
        stream.finish();
      });
      const filter = createExtProcFilter(
        settings({
          shadowMode: true,
          messageTimeoutMs: 10_000,
          processingMode: { request: { body: 'Buffered' }, response: { body: 'Streamed' } },
        }),
        server.address,
        clients,
      );
      const result = await drive(filter, fakeStream({ body: CHAT_BODY }), { status: 200, chunks: ['a', 'b'] });
      expect(result.localReply).toBeUndefined();
      expect(result.body.toString()).toBe('ab');
      await waitFor(() => server.streams[0]?.received.length === 4);
      // Observability mode sends bodies only in STREAMED mode: no request body here.
      expect(server.streams[0].received.map((m) => [m.request, m.observabilityMode])).toEqual([
        ['requestHeaders', true],
        ['responseHeaders', true],
        ['responseBody', true],
        ['responseBody', true],
      ]);
    });

    it(
      'BUFFERED_PARTIAL response: sends once the held bytes pass the buffer limit, then lets the ' + 'rest through',
      async () => {
        const server = await start(async (stream) => {
          await passThroughUntil(stream, 'responseBody');
          stream.send({ responseBody: { response: { bodyMutation: { body: Buffer.from('head') } } } });
          await passThrough(stream);
        });
        const filter = createExtProcFilter(
          settings({ processingMode: { response: { body: 'BufferedPartial' } } }),
          server.address,
          clients,
        );
        const big = Buffer.alloc(20 * 1024, 'x');
        const result = await drive(filter, fakeStream({ body: CHAT_BODY }), {
          status: 200,
          headers: { 'content-length': String(3 * big.length) },
          chunks: [big, big, big],
        });
        const bodies = server.streams[0].received.filter((m) => m.request === 'responseBody');
        expect(
          bodies.map((m) => [Buffer.from(m.responseBody.body).length, m.responseBody.endOfStream === true]),
        ).toEqual([[40 * 1024, false]]);
        expect(result.passed.map((b) => b.length)).toEqual([0, 4, big.length]);
        expect(result.responseHeaders!.has('content-length')).toBe(false);
      },
    );

    it('keeps one channel per processor for all streams', async () => {
      const server = await start(passThrough);
      const filter = createExtProcFilter(settings(), server.address, clients);
      await Promise.all(
        [1, 2, 3].map(() => drive(filter, fakeStream({ body: CHAT_BODY }), { status: 200, chunks: ['x'] })),
      );
      expect(server.streams).toHaveLength(3);
      expect(new Set(server.streams.map((s) => s.peer)).size).toBe(1);
    });

    it('keeps the state of concurrent streams on one filter apart', async () => {
      const server = await start(async (stream) => {
        const headers = await stream.expect('requestHeaders');
        const id = wireHeaders(headers, 'requestHeaders').find(([k]) => k === 'x-id')![1];
        stream.send({ requestHeaders: { response: { headerMutation: { setHeaders: [setHeader('x-seen', id)] } } } });
        await passThrough(stream);
      });
      const filter = createExtProcFilter(settings(), server.address, clients);
      const results = await Promise.all(
        ['a', 'b', 'c'].map((id) =>
          drive(filter, fakeStream({ body: CHAT_BODY, headers: { 'x-id': id } }), { status: 200 }),
        ),
      );
      expect(results.map((r) => r.upstreamRequest!.headers.get('x-seen'))).toEqual(['a', 'b', 'c']);
    });
  });
});

/** Answers CONTINUE until a message of `kind` arrives (which is left unanswered). */
async function passThroughUntil(stream: ServerStream, kind: string): Promise<Message> {
  for (;;) {
    const message = await stream.next();
    if (!message) throw new Error(`the stream closed before a ${kind} message`);
    if (message.request === kind) return message;
    stream.send({ [message.request]: { response: {} } });
  }
}

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
