/** The response side: mode override, usage across chunk boundaries, compression, cuts and aborts. */
import * as zlib from 'node:zlib';
import { BODY_MODE_STREAMED } from '../../src/grpc/messages';
import { startTestProcessor, testConfig, type TestProcessor } from '../support/processor-harness';
import { headerMap, structToObject } from '../support/envoy-client';
import { splitEvery } from '../support/translation-cases';

/** A client that asks for the usage chunk: the stream reaches it byte for byte. */
const CHAT = {
  path: '/v1/chat/completions',
  body: '{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}',
};
/** A client that does not: the gateway asks for usage (a cost is configured) and keeps it from the client. */
const CHAT_WITHOUT_USAGE = { path: '/v1/chat/completions', body: '{"model":"gpt-4o","stream":true}' };

function sseStream(usage: { prompt: number; completion: number; cached?: number; reasoning?: number }): string {
  const chunk = (content: string) =>
    'data: ' +
    JSON.stringify({
      id: 'c1',
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta: { content } }],
      usage: null,
    }) +
    '\n\n';
  const usageChunk = `data: ${JSON.stringify({
    id: 'c1',
    object: 'chat.completion.chunk',
    choices: [],
    usage: {
      prompt_tokens: usage.prompt,
      completion_tokens: usage.completion,
      total_tokens: usage.prompt + usage.completion,
      prompt_tokens_details: { cached_tokens: usage.cached ?? 0 },
      completion_tokens_details: { reasoning_tokens: usage.reasoning ?? 0 },
    },
  })}\n\n`;
  return chunk('Hel') + chunk('lo ✓') + usageChunk + 'data: [DONE]\n\n';
}

describe('responses', () => {
  let processor: TestProcessor;
  beforeAll(async () => {
    processor = await startTestProcessor(testConfig({ costs: [{ metadataKey: 'out', type: 'OutputToken' }] }));
  });
  afterAll(() => processor.close());

  it('switches successful event streams to STREAMED and counts usage split at every byte', async () => {
    const body = Buffer.from(sseStream({ prompt: 9, completion: 7, cached: 4, reasoning: 2 }));
    const result = await processor.client.exchange(CHAT, () => ({
      status: 200,
      headers: { 'content-type': 'text/event-stream' },
      body: splitEvery(body, 1),
    }));
    expect(result.streamed).toBe(true);
    expect(result.body.equals(body)).toBe(true);
    expect(result.metadata['io.envoy.ai_gateway']).toEqual({
      llm_input_token: 9,
      llm_output_token: 7,
      llm_total_token: 16,
      llm_cached_input_token: 4,
      llm_reasoning_token: 2,
      out: 7,
    });
  });

  it('keeps error responses buffered even when they claim to be event streams', async () => {
    const result = await processor.client.exchange(CHAT, () => ({
      status: 500,
      headers: { 'content-type': 'text/event-stream' },
      body: 'data: oops\n\n',
    }));
    expect(result.streamed).toBe(false);
    expect(result.status).toBe(500);
    expect(JSON.parse(result.body.toString())).toEqual({
      error: { message: 'data: oops', type: 'upstream_error', param: null, code: '500' },
    });
    expect(result.headers['content-length']).toBe(String(result.body.length));
    expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({ llm_input_token: 0, out: 0 });
  });

  it('decodes gzip JSON for usage and forwards the compressed bytes untouched', async () => {
    const json = Buffer.from('{"id":"x","usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}}');
    const gz = zlib.gzipSync(json);
    const result = await processor.client.exchange(
      { path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' },
      () => ({
        status: 200,
        headers: {
          'content-type': 'application/json',
          'content-encoding': 'gzip',
          'content-length': String(gz.length),
        },
        body: gz,
      }),
    );
    expect(result.body.equals(gz)).toBe(true);
    expect(result.headers['content-encoding']).toBe('gzip');
    expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({
      llm_input_token: 5,
      llm_output_token: 6,
      llm_total_token: 11,
    });
  });

  it('decodes a brotli event stream cut at arbitrary boundaries', async () => {
    const body = zlib.brotliCompressSync(Buffer.from(sseStream({ prompt: 3, completion: 4 })));
    const result = await processor.client.exchange(CHAT, () => ({
      status: 200,
      headers: { 'content-type': 'text/event-stream', 'content-encoding': 'br' },
      body: splitEvery(body, 17),
    }));
    expect(result.body.equals(body)).toBe(true);
    expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({
      llm_input_token: 3,
      llm_output_token: 4,
      llm_total_token: 7,
    });
  });

  it('counts the usage it asked for but sends a client that did not ask none of it (brotli decoded)', async () => {
    const plain = sseStream({ prompt: 3, completion: 4 });
    const result = await processor.client.exchange(CHAT_WITHOUT_USAGE, (request) => {
      expect(JSON.parse(request.body.toString())).toMatchObject({ stream_options: { include_usage: true } });
      return {
        status: 200,
        headers: { 'content-type': 'text/event-stream', 'content-encoding': 'br' },
        body: splitEvery(zlib.brotliCompressSync(Buffer.from(plain)), 17),
      };
    });
    expect(result.streamed).toBe(true);
    expect(result.headers['content-encoding']).toBeUndefined();
    const events = result.body.toString().split('\n\n').filter(Boolean);
    expect(events).toEqual(
      plain
        .split('\n\n')
        .filter((event) => event !== '' && !event.includes('"choices":[]'))
        .map((event) => event.replace(',"usage":null}', '}')),
    );
    expect(result.body.toString()).not.toContain('usage');
    expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({
      llm_input_token: 3,
      llm_output_token: 4,
      llm_total_token: 7,
      out: 4,
    });
  });

  it(
    'a stream cut before its usage chunk still has numbers in the metadata (written with the ' + 'response headers)',
    async () => {
      const result = await processor.client.exchange(CHAT, () => ({
        status: 200,
        headers: { 'content-type': 'text/event-stream' },
        body: ['data: {"choices":[{"delta":{"content":"partial"}}]}\n\n'],
        cut: true,
      }));
      expect(result.metadata['io.envoy.ai_gateway']).toEqual({
        llm_input_token: 0,
        llm_output_token: 0,
        llm_total_token: 0,
        llm_cached_input_token: 0,
        llm_reasoning_token: 0,
        out: 0,
      });
    },
  );

  it('a response without a body gets its metadata with the response headers', async () => {
    const result = await processor.client.exchange(
      { path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' },
      () => ({ status: 204 }),
    );
    expect(result.status).toBe(204);
    expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({ llm_total_token: 0, out: 0 });
  });

  it('a client abort mid-stream closes the session', async () => {
    await processor.client.exchange(
      CHAT,
      () => ({
        status: 200,
        headers: { 'content-type': 'text/event-stream' },
        body: splitEvery(Buffer.from(sseStream({ prompt: 1, completion: 1 })), 20),
      }),
      { abortAfterChunks: 2 },
    );
    for (let i = 0; i < 50 && processor.app.processor.activeStreams !== 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(processor.app.processor.activeStreams).toBe(0);
  });

  it('a client abort after the usage chunk is charged what was counted (metadata written as usage grows)', async () => {
    const events = sseStream({ prompt: 11, completion: 5 }).split(/(?<=\n\n)/);
    expect(events).toHaveLength(4);
    const result = await processor.client.exchange(
      CHAT,
      () => ({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: events }),
      { abortAfterChunks: 3 },
    );
    expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({
      llm_input_token: 11,
      llm_output_token: 5,
      llm_total_token: 16,
      out: 5,
    });
    const withMetadata = result.responses.filter((r) => r.kind === 'responseBody' && r.message.dynamicMetadata);
    expect(withMetadata).toHaveLength(1);
  });

  /** The tokens in a message's dynamic metadata, if it carries any. */
  function tokensOf(message: Record<string, unknown>): Record<string, unknown> | undefined {
    const metadata = message.dynamicMetadata as Parameters<typeof structToObject>[0] | undefined;
    return metadata ? (structToObject(metadata)['io.envoy.ai_gateway'] as Record<string, unknown>) : undefined;
  }

  it(
    'a buffered request body followed by trailers (end_of_stream=false) is the whole body: ' +
      'routed, then the trailers answered',
    async () => {
      const stream = processor.client.openStream();
      stream.send({
        requestHeaders: {
          headers: headerMap({
            ':method': 'POST',
            ':path': '/v1/chat/completions',
            'content-type': 'application/json',
          }),
        },
      });
      expect((await stream.next()).kind).toBe('requestHeaders');
      // Envoy's BUFFERED mode: the body waits for its answer before the trailers are sent.
      stream.send({ requestBody: { body: Buffer.from('{"model":"gpt-4o","stream":true}'), endOfStream: false } });
      const body = await stream.next();
      expect(body.kind).toBe('requestBody');
      expect(JSON.stringify(body.message)).toContain('x-ai-eg-model');
      stream.send({ requestTrailers: { trailers: headerMap({ 'x-trailer': '1' }) } });
      expect((await stream.next()).kind).toBe('requestTrailers');
      stream.send({
        responseHeaders: { headers: headerMap({ ':status': '200', 'content-type': 'text/event-stream' }) },
      });
      const head = await stream.next();
      expect(head.kind).toBe('responseHeaders');
      expect((head.message.modeOverride as { responseBodyMode: number }).responseBodyMode).toBe(BODY_MODE_STREAMED);
      stream.send({
        responseBody: {
          body: Buffer.from('data: {"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}\n\n'),
          endOfStream: false,
        },
      });
      expect((await stream.next()).kind).toBe('responseBody');
      // A streamed body that ends with trailers: the trailers answer carries the final charge.
      stream.send({ responseTrailers: { trailers: headerMap({ 'grpc-status': '0' }) } });
      const trailers = await stream.next();
      expect(trailers.kind).toBe('responseTrailers');
      expect(tokensOf(trailers.message)).toMatchObject({ llm_input_token: 2, llm_output_token: 3, llm_total_token: 5 });
      stream.end();
    },
  );

  it('a buffered response body followed by trailers (end_of_stream=false) is answered and charged', async () => {
    const stream = processor.client.openStream();
    stream.send({
      requestHeaders: {
        headers: headerMap({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json' }),
      },
    });
    await stream.next();
    stream.send({ requestBody: { body: Buffer.from('{"model":"gpt-4o"}'), endOfStream: true } });
    await stream.next();
    stream.send({ responseHeaders: { headers: headerMap({ ':status': '200', 'content-type': 'application/json' }) } });
    expect((await stream.next()).kind).toBe('responseHeaders');
    stream.send({
      responseBody: {
        body: Buffer.from('{"id":"x","usage":{"prompt_tokens":4,"completion_tokens":6,"total_tokens":10}}'),
        endOfStream: false,
      },
    });
    const body = await stream.next();
    expect(body.kind).toBe('responseBody');
    expect(tokensOf(body.message)).toMatchObject({
      llm_input_token: 4,
      llm_output_token: 6,
      llm_total_token: 10,
      out: 6,
    });
    stream.send({ responseTrailers: { trailers: headerMap({ 'x-trailer': '1' }) } });
    expect((await stream.next()).kind).toBe('responseTrailers');
    stream.end();
  });
});
