/** Envoy half-closes the ext_proc stream while an answer is still being computed: the answer must still arrive. */
import { AUTH_FACTORIES } from '../../src/auth';
import { openAIBackend, route, startTestProcessor, testConfig, type TestProcessor } from '../support/processor-harness';
import { headerMap } from '../support/envoy-client';

const AUTH_DELAY_MS = 300;

describe('half-close with an answer pending', () => {
  let processor: TestProcessor;
  beforeAll(async () => {
    processor = await startTestProcessor(
      testConfig({
        backends: [
          openAIBackend('openai', { auth: { type: 'APIKey', secret: { secretName: 'openai', key: 'apiKey' } } }),
        ],
        routes: [route(['gpt-4o'], [{ backend: 'openai', weight: 1, priority: 0 }])],
      }),
      {
        secrets: { openai: { apiKey: 'sk-test' } },
        compile: {
          authFactories: {
            ...AUTH_FACTORIES,
            // A credential that takes a while (as a token fetch does): the answer to the body waits for it.
            APIKey: () => ({
              apply: () =>
                new Promise((resolve) =>
                  setTimeout(
                    () => resolve({ setHeaders: { authorization: 'Bearer slow-token' }, removeHeaders: [] }),
                    AUTH_DELAY_MS,
                  ),
                ),
            }),
          },
        },
      },
    );
  });
  afterAll(() => processor.close());

  it('answers the request body after Envoy half-closed, then ends the stream', async () => {
    const stream = processor.client.openStream();
    stream.send({ requestHeaders: { headers: headerMap({ ':method': 'POST', ':path': '/v1/chat/completions' }) } });
    expect((await stream.next()).kind).toBe('requestHeaders');
    stream.send({ requestBody: { body: Buffer.from('{"model":"gpt-4o"}'), endOfStream: true } });
    stream.end(); // half-close while the credential is still being fetched
    const answer = await stream.next();
    expect(answer.kind).toBe('requestBody');
    expect(JSON.stringify(answer.message)).toContain('authorization');
    await expect(stream.next()).rejects.toThrow('stream ended');
    expect(processor.app.processor.activeStreams).toBe(0);
  });
});
