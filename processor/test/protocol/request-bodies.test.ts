/**
 * Request bodies through real gRPC: bodies forwarded unchanged are read from their top-level fields without a
 * parse (multi-megabyte images pass byte for byte), rewritten ones are parsed; what the gateway reads is what the
 * provider reads (duplicate or ambiguous top-level fields are refused or rewritten, never guessed).
 */
import { openAIBackend, route, startTestProcessor, testConfig, type TestProcessor } from '../support/processor-harness';
import type { Upstream } from '../support/envoy-client';

const USAGE_JSON = '{"id":"x","usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}}';
const SSE =
  'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}\n\ndata: [DONE]\n\n';

const neverUpstream: Upstream = () => {
  throw new Error('must not reach the backend');
};

function imageBody(imageBytes: number, extra: Record<string, unknown> = {}): string {
  const image = Buffer.alloc(Math.ceil((imageBytes * 3) / 4), 0x5a).toString('base64');
  return JSON.stringify({
    model: 'gpt-4o',
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in this image?' },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${image}` } },
        ],
      },
    ],
    max_tokens: 64,
    ...extra,
  });
}

describe('request bodies', () => {
  let processor: TestProcessor;
  beforeAll(async () => {
    processor = await startTestProcessor(
      testConfig({
        maxRequestBodyBytes: 32 * 1024 * 1024,
        backends: [
          openAIBackend('openai'),
          {
            name: 'anthropic',
            schema: { name: 'Anthropic', version: '2023-06-01' },
            endpoint: { hostname: 'api.anthropic.com', port: 443, tls: true },
          },
        ],
        routes: [
          route(['gpt-4o'], [{ backend: 'openai', weight: 1, priority: 0 }]),
          route(['claude'], [{ backend: 'anthropic', weight: 1, priority: 0 }], { name: 'default/claude' }),
        ],
        // A cost: streamed OpenAI requests must ask for usage.
        costs: [{ metadataKey: 'total', type: 'TotalToken' }],
      }),
    );
  });
  afterAll(() => processor.close());

  it('a 20 MB image body is routed and forwarded byte for byte', async () => {
    const body = imageBody(20 * 1024 * 1024);
    const result = await processor.client.exchange({ path: '/v1/chat/completions', body }, (req) => {
      expect(req.headers['x-ai-eg-model']).toBe('gpt-4o');
      expect(req.body.equals(Buffer.from(body))).toBe(true);
      return { status: 200, headers: { 'content-type': 'application/json' }, body: USAGE_JSON };
    });
    expect(result.status).toBe(200);
    expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({ total: 11 });
  }, 30_000);

  it('a 2 MB image body to a translating backend is parsed and translated', async () => {
    const body = imageBody(2 * 1024 * 1024, { model: 'claude' });
    const result = await processor.client.exchange({ path: '/v1/chat/completions', body }, (req) => {
      expect(req.path).toBe('/v1/messages');
      const sent = JSON.parse(req.body.toString()) as { model: string; messages: Array<{ content: unknown[] }> };
      expect(sent.model).toBe('claude');
      expect(sent.messages[0].content).toContainEqual(
        expect.objectContaining({ type: 'image', source: expect.objectContaining({ type: 'base64' }) }),
      );
      return {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          id: 'msg_1',
          type: 'message',
          role: 'assistant',
          model: 'claude',
          content: [{ type: 'text', text: 'a cat' }],
          stop_reason: 'end_turn',
          usage: { input_tokens: 7, output_tokens: 2 },
        }),
      };
    });
    expect(result.status).toBe(200);
  }, 30_000);

  it('a stream that already asks for usage, spelled once, is forwarded unchanged', async () => {
    const body = imageBody(64 * 1024, { stream: true, stream_options: { include_usage: true } });
    const result = await processor.client.exchange({ path: '/v1/chat/completions', body }, (req) => {
      expect(req.body.toString()).toBe(body);
      return { status: 200, headers: { 'content-type': 'text/event-stream' }, body: SSE };
    });
    expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({ total: 3 });
  });

  it.each([
    ['absent', '{"model":"gpt-4o","stream":true}', { include_usage: true }],
    ['false', '{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":false}}', { include_usage: true }],
    [
      'twice (a provider may keep the first)',
      '{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":false,"include_usage":true}}',
      { include_usage: true },
    ],
    [
      'escaped',
      '{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":false,"include\\u005fusage":true}}',
      { include_usage: true },
    ],
    [
      'nested only',
      '{"model":"gpt-4o","stream":true,"stream_options":{"x":{"include_usage":true}}}',
      { x: { include_usage: true }, include_usage: true },
    ],
  ])('a stream whose include_usage is %s is rewritten to ask for usage', async (_name, body, expected) => {
    const result = await processor.client.exchange({ path: '/v1/chat/completions', body }, (req) => {
      const sent = req.body.toString();
      // Re-serialized: every key once, so no provider can read another include_usage.
      expect((JSON.parse(sent) as { stream_options: unknown }).stream_options).toEqual(expected);
      expect(sent).toBe(JSON.stringify(JSON.parse(sent)));
      return { status: 200, headers: { 'content-type': 'text/event-stream' }, body: SSE };
    });
    expect(result.status).toBe(200);
  });

  it.each([
    ['stream', '{"model":"gpt-4o","stream":false,"stream":true}'],
    ['stream_options', '{"model":"gpt-4o","stream_options":{},"stream_options":{"include_usage":true}}'],
  ])('a body naming the top-level %s twice is refused 400', async (key, body) => {
    const result = await processor.client.exchange({ path: '/v1/chat/completions', body }, neverUpstream);
    expect(result.status).toBe(400);
    expect(JSON.parse(result.body.toString()).error).toMatchObject({ code: 'duplicate_key', param: key });
  });

  it.each([['"true"'], ['1'], ['{}']])('a stream of %s is refused 400 (a boolean is required)', async (value) => {
    const result = await processor.client.exchange(
      { path: '/v1/chat/completions', body: `{"model":"gpt-4o","stream":${value}}` },
      neverUpstream,
    );
    expect(result.status).toBe(400);
    expect(JSON.parse(result.body.toString()).error).toMatchObject({ code: 'invalid_type', param: 'stream' });
  });

  it('a null stream is a request without streaming', async () => {
    const body = '{"model":"gpt-4o","stream":null}';
    const result = await processor.client.exchange({ path: '/v1/chat/completions', body }, (req) => {
      expect(req.body.toString()).toBe(body);
      return { status: 200, headers: { 'content-type': 'application/json' }, body: USAGE_JSON };
    });
    expect(result.status).toBe(200);
  });

  it('a body that is not UTF-8 is refused 400', async () => {
    const body = Buffer.concat([
      Buffer.from('{"model":"gpt-4o","messages":[{"content":"a'),
      Buffer.from([0xc3]),
      Buffer.from('"}]}'),
    ]);
    const result = await processor.client.exchange({ path: '/v1/chat/completions', body }, neverUpstream);
    expect(result.status).toBe(400);
    expect(JSON.parse(result.body.toString()).error).toMatchObject({ code: 'invalid_json' });
    expect(result.body.toString()).toContain('not valid UTF-8');
  });

  it.each([['"gpt\\ud800"'], ['"\\udc00gpt"']])('a model with a lone surrogate (%s) is refused 400', async (model) => {
    const result = await processor.client.exchange(
      { path: '/v1/chat/completions', body: `{"model":${model}}` },
      neverUpstream,
    );
    expect(result.status).toBe(400);
    expect(JSON.parse(result.body.toString()).error).toMatchObject({ code: 'invalid_model', param: 'model' });
  });

  it('a model with a raw control character is refused 400 (the model is always parsed)', async () => {
    const result = await processor.client.exchange(
      { path: '/v1/chat/completions', body: '{"model":"gpt-4o\u0001"}' },
      neverUpstream,
    );
    expect(result.status).toBe(400);
    expect(JSON.parse(result.body.toString()).error).toMatchObject({ code: 'invalid_json' });
  });

  it('a raw control character in a forwarded string is left to the provider; a rewritten body refuses it', async () => {
    const content = '"messages":[{"role":"user","content":"line\nbreak"}],"max_tokens":8';
    const forwarded = `{"model":"gpt-4o",${content}}`;
    const passed = await processor.client.exchange({ path: '/v1/chat/completions', body: forwarded }, (req) => {
      expect(req.body.toString()).toBe(forwarded);
      return {
        status: 400,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          error: { message: 'We could not parse the JSON body of your request.', type: 'invalid_request_error' },
        }),
      };
    });
    expect(passed.status).toBe(400);
    const translated = await processor.client.exchange(
      { path: '/v1/chat/completions', body: `{"model":"claude",${content}}` },
      neverUpstream,
    );
    expect(translated.status).toBe(400);
    expect(JSON.parse(translated.body.toString()).error).toMatchObject({ code: 'invalid_json' });
  });

  it('a raw control character inside stream_options is a 400 in the client schema, never a 500', async () => {
    const body = '{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true,"x":"a\u0001b"}}';
    const result = await processor.client.exchange({ path: '/v1/chat/completions', body }, neverUpstream);
    expect(result.status).toBe(400);
    expect(JSON.parse(result.body.toString()).error).toMatchObject({ code: 'invalid_json' });
  });
});
