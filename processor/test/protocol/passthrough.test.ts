import { startTestProcessor, testConfig, type TestProcessor } from '../support/processor-harness';

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
});
