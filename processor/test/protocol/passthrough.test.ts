import { openAIBackend, route, startTestProcessor, testConfig, type TestProcessor } from '../support/processor-harness';

describe('OpenAI passthrough over ext_proc', () => {
  let processor: TestProcessor;
  beforeAll(async () => {
    processor = await startTestProcessor(testConfig());
  });
  afterAll(() => processor.close());

  it('routes by model and passes the body through', async () => {
    const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    const result = await processor.client.exchange({ path: '/v1/chat/completions', body }, (req) => {
      expect(req.path).toBe('/v1/chat/completions');
      expect(req.headers['x-ai-eg-model']).toBe('gpt-4o');
      expect(req.headers['x-ai-gateway-backend']).toBe('openai');
      expect(req.headers['x-ai-gateway-route']).toBe('default/chat');
      expect(req.body.toString()).toBe(body);
      return {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'x', usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } }),
      };
    });
    expect(result.status).toBe(200);
    expect(result.metadata['io.envoy.ai_gateway']).toEqual({
      llm_input_token: 3,
      llm_output_token: 4,
      llm_total_token: 7,
      llm_cached_input_token: 0,
      llm_reasoning_token: 0,
    });
  });

  it.each([
    [
      'nested model keys',
      '{"messages":[{"role":"user","content":"{\\"model\\":\\"gpt-3\\"}",' +
        '"model":"gpt-3"}],"meta":{"model":"gpt-3"},"model":"gpt-4o"}',
    ],
    ['an escaped top-level key', '{"mod\\u0065l":"gpt-4o","stream":false}'],
    ['an escaped model value', '{"model":"gpt\\u002d4o"}'],
    [
      'a large body (parsed, not scanned)',
      JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(64 * 1024), model: 'gpt-3' }], model: 'gpt-4o' }),
    ],
    [
      'non-ASCII content and whitespace',
      ' {\n "messages": [{"content": "h\u00e9llo \u2028 \ud83d\ude00"}],\t"model" : "gpt-4o" }\r\n',
    ],
  ])('routes by the top-level model and forwards the bytes untouched: %s', async (_name, body) => {
    const result = await processor.client.exchange({ path: '/v1/chat/completions', body }, (req) => {
      expect(req.headers['x-ai-eg-model']).toBe('gpt-4o');
      expect(req.body.toString()).toBe(body);
      expect(req.headers['content-length']).toBe(String(Buffer.byteLength(body)));
      return { status: 200, headers: { 'content-type': 'application/json' }, body: '{}' };
    });
    expect(result.status).toBe(200);
  });
  it.each([
    ['twice', '{"model":"gpt-3","model":"gpt-4o"}'],
    ['once escaped', '{"model":"gpt-4o","messages":[],"mod\\u0065l":"gpt-3"}'],
    ['twice, the same name', '{"model":"gpt-4o","model":"gpt-4o"}'],
  ])(
    'a body naming the top-level model %s is refused 400: the gateway and the provider could read different models',
    async (_name, body) => {
      const result = await processor.client.exchange({ path: '/v1/chat/completions', body }, () => {
        throw new Error('must not reach the backend');
      });
      expect(result.status).toBe(400);
      expect(JSON.parse(result.body.toString()).error).toMatchObject({ code: 'duplicate_model', param: 'model' });
    },
  );

  it('nested or escaped model keys below the top level do not count as duplicates', async () => {
    const body = '{"model":"gpt-4o","metadata":{"model":"x","mod\\u0065l":"y"},"messages":[{"model":"z"}]}';
    const result = await processor.client.exchange({ path: '/v1/chat/completions', body }, () => ({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: '{}',
    }));
    expect(result.status).toBe(200);
  });
});

describe('answers reused across requests', () => {
  it('gives every backend, model and path its own headers, interleaved', async () => {
    const processor = await startTestProcessor(
      testConfig({
        backends: [
          openAIBackend('plain'),
          openAIBackend('keyed', {
            schema: { name: 'OpenAI', pathPrefix: '/openai/v1' },
            auth: { type: 'APIKey', secret: { secretName: 'keyed', key: 'apiKey' } },
          }),
        ],
        routes: [
          // Same backend and model as default/chat on one host: the reused answers must still name the route budgets
          // key on.
          route(['model-a'], [{ backend: 'plain', weight: 1, priority: 0 }], {
            name: 'other/second',
            hostnames: ['second.example'],
          }),
          route(['model-a', 'model-b'], [{ backend: 'plain', weight: 1, priority: 0 }]),
          route(['model-c'], [{ backend: 'keyed', weight: 1, priority: 0 }], { name: 'default/keyed' }),
        ],
      }),
      { secrets: { keyed: { apiKey: 'sk-keyed' } } },
    );
    try {
      const cases = [
        {
          model: 'model-a',
          path: '/v1/chat/completions',
          upstream: '/v1/chat/completions',
          backend: 'plain',
          authorization: 'Bearer client',
        },
        {
          model: 'model-c',
          path: '/v1/chat/completions',
          upstream: '/openai/v1/chat/completions',
          backend: 'keyed',
          authorization: 'Bearer sk-keyed',
        },
        {
          model: 'model-b',
          path: '/v1/chat/completions',
          upstream: '/v1/chat/completions',
          backend: 'plain',
          authorization: 'Bearer client',
        },
        {
          model: 'model-c',
          path: '/v1/embeddings',
          upstream: '/openai/v1/embeddings',
          backend: 'keyed',
          authorization: 'Bearer sk-keyed',
        },
        {
          model: 'model-c',
          path: '/v1/chat/completions?x=1',
          upstream: '/openai/v1/chat/completions?x=1',
          backend: 'keyed',
          authorization: 'Bearer sk-keyed',
        },
        {
          model: 'model-a',
          path: '/v1/chat/completions',
          upstream: '/v1/chat/completions',
          backend: 'plain',
          authorization: 'Bearer client',
          authority: 'second.example',
        },
      ].map((c) => ({
        ...c,
        route: c.model === 'model-c' ? 'default/keyed' : c.authority ? 'other/second' : 'default/chat',
      }));
      for (let round = 0; round < 3; round++) {
        for (const c of cases) {
          const result = await processor.client.exchange(
            {
              path: c.path,
              authority: c.authority ?? 'any.example',
              body: JSON.stringify({ model: c.model, input: 'x' }),
              headers: { authorization: 'Bearer client' },
            },
            (req) => {
              expect({
                path: req.path,
                model: req.headers['x-ai-eg-model'],
                backend: req.headers['x-ai-gateway-backend'],
                route: req.headers['x-ai-gateway-route'],
                authorization: req.headers.authorization,
              }).toEqual({
                path: c.upstream,
                model: c.model,
                backend: c.backend,
                route: c.route,
                authorization: c.authorization,
              });
              return { status: 200, headers: { 'content-type': 'application/json' }, body: '{}' };
            },
          );
          expect(result.status).toBe(200);
        }
      }
    } finally {
      await processor.close();
    }
  });
});
