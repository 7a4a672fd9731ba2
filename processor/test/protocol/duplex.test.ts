/**
 * The response phase in Envoy's FULL_DUPLEX_STREAMED mode (Envoy says so in `protocol_config`): a headers answer,
 * then streamed bodies, ended after Envoy's last chunk (or by the trailers answer); bodies read whole hold the
 * headers answer until their end; Envoy's budget 429 gets its body without CONTINUE_AND_REPLACE.
 */
import * as zlib from 'node:zlib';
import { duplexExchange, type DuplexUpstream } from '../support/duplex-envoy';
import { headerMap } from '../support/envoy-client';
import { openAIBackend, route, startTestProcessor, testConfig, type TestProcessor } from '../support/processor-harness';

const ENDPOINTS = [
  { api: 'OpenAI' as const, pathPrefix: '/v1' },
  { api: 'Anthropic' as const, pathPrefix: '/anthropic/v1' },
];

function openAIStream(prompt: number, completion: number): string[] {
  const chunk = (content: string) =>
    `data: ${JSON.stringify({
      id: 'c1',
      object: 'chat.completion.chunk',
      model: 'gpt-4o',
      choices: [{ index: 0, delta: { content }, finish_reason: null }],
    })}\n\n`;
  const last = `data: ${JSON.stringify({
    id: 'c1',
    object: 'chat.completion.chunk',
    model: 'gpt-4o',
    choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  })}\n\n`;
  return [chunk('Hel'), chunk('lo'), last, 'data: [DONE]\n\n'];
}

const anthropicMessage = JSON.stringify({
  id: 'msg_1',
  type: 'message',
  role: 'assistant',
  model: 'claude-x',
  content: [{ type: 'text', text: 'hello there' }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 11, output_tokens: 4 },
});

const openAIChat = (model: string, extra: Record<string, unknown> = {}) => ({
  path: '/v1/chat/completions',
  body: JSON.stringify({ model, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }], ...extra }),
});
const anthropicChat = (model: string, extra: Record<string, unknown> = {}) => ({
  path: '/anthropic/v1/messages',
  body: JSON.stringify({ model, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }], ...extra }),
});

function split(text: string | Buffer, parts: number): Buffer[] {
  const bytes = Buffer.from(text);
  const size = Math.ceil(bytes.length / parts);
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

const TOKENS = 'io.envoy.ai_gateway';

describe('FULL_DUPLEX_STREAMED responses', () => {
  let processor: TestProcessor;
  beforeAll(async () => {
    processor = await startTestProcessor(
      testConfig({
        backends: [
          openAIBackend('openai'),
          {
            name: 'anthropic',
            schema: { name: 'Anthropic', version: '2023-06-01' },
            endpoint: { hostname: 'api.anthropic.com', port: 443, tls: true },
          },
          openAIBackend('cancelled'),
        ],
        routes: [
          route(['gpt-4o'], [{ backend: 'openai', weight: 1, priority: 0 }], { endpoints: ENDPOINTS }),
          route(['claude'], [{ backend: 'anthropic', weight: 1, priority: 0 }], {
            name: 'default/claude',
            endpoints: ENDPOINTS,
          }),
          route(['slow'], [{ backend: 'cancelled', weight: 1, priority: 0 }], {
            name: 'default/slow',
            endpoints: ENDPOINTS,
          }),
        ],
      }),
    );
  });
  afterAll(() => processor.close());

  const exchange = (
    request: { path: string; body: string },
    reply: DuplexUpstream,
    options?: Parameters<typeof duplexExchange>[3],
  ) => duplexExchange(processor.client, request, () => reply, options);

  it('translates an event stream chunk by chunk after a headers answer at once, usage final at the end', async () => {
    const result = await exchange(anthropicChat('gpt-4o', { stream: true }), {
      status: 200,
      headers: { 'content-type': 'text/event-stream' },
      chunks: openAIStream(7, 5),
      chunkDelayMs: 5,
    });
    expect(result.status).toBe(200);
    expect(result.headers['content-type']).toBe('text/event-stream');
    const kinds = result.answers.map((answer) => answer.kind);
    expect(kinds.slice(0, 3)).toEqual(['requestHeaders', 'requestBody', 'responseHeaders']);
    // One answer per chunk that produced bytes, the last with end_of_stream.
    expect(kinds.slice(3).every((kind) => kind === 'responseBody')).toBe(true);
    expect(kinds.length).toBeGreaterThan(4);
    const events = result.body.toString();
    expect(events).toContain('event: message_start');
    expect(events).toContain('"text":"Hel"');
    expect(events).toContain('event: message_stop');
    expect(result.metadata[TOKENS]).toMatchObject({ llm_input_token: 7, llm_output_token: 5, llm_total_token: 12 });
  });

  it('keeps the order of many compressed chunks sent at once while decoding runs', async () => {
    const plain = openAIStream(4, 6).join('');
    const result = await exchange(anthropicChat('gpt-4o', { stream: true }), {
      status: 200,
      headers: { 'content-type': 'text/event-stream', 'content-encoding': 'br' },
      chunks: split(zlib.brotliCompressSync(Buffer.from(plain)), 40),
    });
    expect(result.headers['content-encoding']).toBeUndefined();
    const events = result.body.toString();
    expect(events.indexOf('"text":"Hel"')).toBeGreaterThan(0);
    expect(events.indexOf('"text":"lo"')).toBeGreaterThan(events.indexOf('"text":"Hel"'));
    expect(events.trimEnd().endsWith('{"type":"message_stop"}')).toBe(true);
    expect(result.metadata[TOKENS]).toMatchObject({ llm_input_token: 4, llm_output_token: 6 });
  });

  it('holds the headers of a translated JSON answer until its last chunk, then sends it whole', async () => {
    const result = await exchange(openAIChat('claude'), {
      status: 200,
      headers: { 'content-type': 'application/json', 'content-length': String(anthropicMessage.length) },
      chunks: split(anthropicMessage, 4),
    });
    expect(result.status).toBe(200);
    expect(result.headers['content-length']).toBeUndefined();
    const kinds = result.answers.map((answer) => answer.kind);
    expect(kinds).toEqual(['requestHeaders', 'requestBody', 'responseHeaders', 'responseBody']);
    const body = JSON.parse(result.body.toString());
    expect(body).toMatchObject({ object: 'chat.completion', choices: [{ message: { content: 'hello there' } }] });
    expect(result.metadata[TOKENS]).toMatchObject({ llm_input_token: 11, llm_output_token: 4, llm_total_token: 15 });
  });

  it('decodes a gzip answer before translating it and drops its content-encoding', async () => {
    const result = await exchange(openAIChat('claude'), {
      status: 200,
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      chunks: split(zlib.gzipSync(anthropicMessage), 3),
    });
    expect(result.status).toBe(200);
    expect(result.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(result.body.toString()).choices[0].message.content).toBe('hello there');
  });

  it('answers a 2xx that cannot be translated with its error status, and a corrupt encoding with a 502', async () => {
    const untranslatable = await exchange(openAIChat('claude'), {
      status: 200,
      headers: { 'content-type': 'application/json' },
      chunks: ['not json', ' at all'],
    });
    expect(untranslatable.status).toBe(502);
    expect(JSON.stringify(JSON.parse(untranslatable.body.toString()))).toContain('could not translate the');
    const corrupt = await exchange(openAIChat('claude'), {
      status: 200,
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      chunks: ['definitely not gzip'],
    });
    expect(corrupt.status).toBe(502);
    expect(corrupt.headers['content-type']).toBe('application/json');
    expect(corrupt.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(corrupt.body.toString()).error).toMatchObject({ code: 'upstream_decode_error' });
  });

  it('forwards a passthrough JSON answer chunk by chunk and counts it at the end', async () => {
    const completion = JSON.stringify({
      id: 'c1',
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    });
    const chunks = split(completion, 3);
    const result = await exchange(openAIChat('gpt-4o'), {
      status: 200,
      headers: { 'content-type': 'application/json' },
      chunks,
    });
    expect(result.body.toString()).toBe(completion);
    expect(result.chunks.map((chunk) => chunk.toString())).toEqual(chunks.map((chunk) => chunk.toString()));
    expect(result.metadata[TOKENS]).toMatchObject({ llm_input_token: 3, llm_output_token: 2, llm_total_token: 5 });
  });

  it('answers a passthrough JSON body in a coding it cannot read with a 502, as in BUFFERED mode', async () => {
    const result = await exchange(openAIChat('gpt-4o'), {
      status: 200,
      headers: { 'content-type': 'application/json', 'content-encoding': 'zstd' },
      chunks: ['(zstd bytes)', '(more)'],
    });
    expect(result.status).toBe(502);
    expect(result.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(result.body.toString()).error).toMatchObject({
      code: 'upstream_decode_error',
      message: expect.stringContaining('zstd'),
    });
  });

  it('ends a translated JSON answer with upstream trailers by the trailers answer after its body', async () => {
    const result = await exchange(openAIChat('claude'), {
      status: 200,
      headers: { 'content-type': 'application/json' },
      chunks: split(anthropicMessage, 2),
      trailers: true,
    });
    const kinds = result.answers.map((answer) => answer.kind);
    expect(kinds.slice(2)).toEqual(['responseHeaders', 'responseBody', 'responseTrailers']);
    expect(JSON.parse(result.body.toString()).choices[0].message.content).toBe('hello there');
    expect(result.metadataWrites.at(-1)?.[TOKENS]).toMatchObject({ llm_total_token: 15 });
  });

  it('ends a stream with upstream trailers by the trailers answer, usage on it', async () => {
    const result = await exchange(anthropicChat('gpt-4o', { stream: true }), {
      status: 200,
      headers: { 'content-type': 'text/event-stream' },
      chunks: openAIStream(2, 3),
      trailers: true,
    });
    const last = result.answers.at(-1)!;
    expect(last.kind).toBe('responseTrailers');
    expect(result.metadataWrites.at(-1)?.[TOKENS]).toMatchObject({ llm_total_token: 5 });
    expect(result.body.toString()).toContain('event: message_stop');
  });

  it("replaces a budget 429's body: streamed after its headers, or an immediate response if it has none", async () => {
    const withBody = await exchange(openAIChat('gpt-4o'), {
      status: 429,
      headers: { 'x-ratelimit-limit': '10, 10;w=60', 'x-ratelimit-remaining': '0', 'content-type': 'text/plain' },
      chunks: ['rate limited'],
      codeDetails: 'request_rate_limited',
    });
    expect(withBody.immediate).toBe(false);
    expect(withBody.status).toBe(429);
    expect(withBody.headers['content-type']).toBe('application/json');
    expect(withBody.headers['x-ratelimit-remaining']).toBe('0');
    expect(JSON.parse(withBody.body.toString()).error).toMatchObject({ code: 'budget_exceeded' });
    expect(withBody.metadata[TOKENS]).toMatchObject({ llm_total_token: 0 });

    const headersOnly = await exchange(anthropicChat('gpt-4o'), {
      status: 429,
      headers: { 'x-ratelimit-limit': '10, 10;w=60', 'x-ratelimit-remaining': '0' },
      codeDetails: 'request_rate_limited',
    });
    expect(headersOnly.immediate).toBe(true);
    expect(headersOnly.status).toBe(429);
    expect(headersOnly.headers['x-ratelimit-remaining']).toBe('0');
    expect(JSON.parse(headersOnly.body.toString())).toMatchObject({
      type: 'error',
      error: { type: 'rate_limit_error' },
    });
  });

  it("passes Envoy's other local replies on as they are, body included", async () => {
    const result = await exchange(openAIChat('gpt-4o'), {
      status: 503,
      headers: { 'content-type': 'text/plain' },
      chunks: ['upstream connect error'],
      codeDetails: 'upstream_reset_before_response_started{remote_connection_failure}',
    });
    expect(result.status).toBe(503);
    expect(result.body.toString()).toBe('upstream connect error');
    expect(result.metadata[TOKENS]).toMatchObject({ llm_total_token: 0 });
  });

  it('answers a headers-only response with its headers answer alone', async () => {
    const result = await exchange(openAIChat('gpt-4o'), { status: 204 });
    expect(result.status).toBe(204);
    expect(result.answers.at(-1)?.kind).toBe('responseHeaders');
  });

  it('stops when the client goes away mid-stream, charged what was counted and recorded as cut', async () => {
    const result = await exchange(
      anthropicChat('slow', { stream: true }),
      {
        status: 200,
        headers: { 'content-type': 'text/event-stream' },
        chunks: openAIStream(1, 1),
        chunkDelayMs: 20,
      },
      { cancelAfterChunks: 1 },
    );
    expect(result.cancelled).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const text = await processor.app.metrics.registry.metrics();
    const line = text
      .split('\n')
      .find(
        (l) =>
          l.startsWith('gen_ai_server_request_duration_seconds_count{') &&
          l.includes('gen_ai_provider_name="cancelled"'),
      );
    // grpc-js reports some client resets as a clean end of the stream: a cut response either way.
    expect(line).toMatch(/error_type="(cancelled|incomplete)"/);
    expect(result.metadata[TOKENS]).toMatchObject({ llm_total_token: 0 });
  });

  it('keeps the STREAMED mode override when Envoy says its response mode is not FULL_DUPLEX_STREAMED', async () => {
    const stream = processor.client.openStream();
    const body = Buffer.from(anthropicChat('gpt-4o', { stream: true }).body);
    stream.send({
      requestHeaders: {
        headers: headerMap({
          ':method': 'POST',
          ':path': '/anthropic/v1/messages',
          ':authority': 'gateway.example.com',
          'content-type': 'application/json',
        }),
      },
      protocolConfig: { requestBodyMode: 2, responseBodyMode: 2 },
    });
    expect((await stream.next()).kind).toBe('requestHeaders');
    stream.send({ requestBody: { body, endOfStream: true } });
    expect((await stream.next()).kind).toBe('requestBody');
    stream.send({ responseHeaders: { headers: headerMap({ ':status': '200', 'content-type': 'text/event-stream' }) } });
    const headers = await stream.next();
    expect(headers.message.modeOverride).toEqual({ responseBodyMode: 1 });
    stream.cancel();
  });
});
