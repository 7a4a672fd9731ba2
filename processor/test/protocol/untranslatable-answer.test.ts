/** A provider that answers 2xx with a body that cannot be translated: the client gets a 502, not a 200. */
import { startTestProcessor, route, testConfig, type TestProcessor } from '../support/processor-harness';

describe('an untranslatable 2xx answer', () => {
  let processor: TestProcessor;
  beforeAll(async () => {
    processor = await startTestProcessor(
      testConfig({
        backends: [
          {
            name: 'anthropic',
            schema: { name: 'Anthropic', version: '2023-06-01' },
            endpoint: { hostname: 'api.anthropic.com', port: 443, tls: true },
          },
        ],
        routes: [route(['claude'], [{ backend: 'anthropic', weight: 1, priority: 0 }])],
      }),
    );
  });
  afterAll(() => processor.close());

  it('is answered with the error status and an OpenAI error, and still charged (zero) tokens', async () => {
    const result = await processor.client.exchange(
      {
        path: '/v1/chat/completions',
        body: JSON.stringify({ model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
      },
      () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: 'not json at all' }),
    );
    expect(result.status).toBe(502);
    const body = JSON.parse(result.body.toString());
    expect(JSON.stringify(body)).toContain('could not translate the');
    expect(result.headers['content-length']).toBe(String(result.body.length));
    expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({
      llm_input_token: 0,
      llm_output_token: 0,
      llm_total_token: 0,
    });
  });
});
