/**
 * The official `openai` SDK against an HTTP front that drives the processor like Envoy, with a local fake
 * provider replaying api.openai.com recordings: the client sees exactly what OpenAI sent.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import OpenAI from 'openai';
import { CONFIG_VERSION, type ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import type { ExchangeResult } from '../support/envoy-client';
import { startFakeProvider, writeSseEvents, type FakeProvider } from '../support/fake-provider';
import { startHttpFront, type HttpFront } from '../support/http-front';
import { startTestProcessor, type TestProcessor } from '../support/processor-harness';
import { describeWithShared } from '../support/shared';

describeWithShared('fixtures/openai-cassettes/extracted', 'openai SDK end to end', (dir) => {
  const cassette = (name: string, file: string): string => fs.readFileSync(path.join(dir, name, file), 'utf8');
  let provider: FakeProvider;
  let processor: TestProcessor;
  let front: HttpFront;
  let results: ExchangeResult[];
  let sdk: OpenAI;

  beforeAll(async () => {
    provider = await startFakeProvider(async (request, res) => {
      const body = JSON.parse(request.body.toString()) as { model: string; stream?: boolean };
      if (body.model !== 'gpt-5-nano') {
        res.writeHead(404, { 'content-type': 'application/json' }).end(cassette('chat-unknown-model', 'response.json'));
      } else if (body.stream) {
        await writeSseEvents(res, cassette('chat-streaming-detailed-usage', 'response.sse'));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end(cassette('chat-basic', 'response.json'));
      }
    });
    const config: ProcessorConfig = {
      version: CONFIG_VERSION,
      maxRequestBodyBytes: 1024 * 1024,
      backends: [
        {
          name: 'openai',
          schema: { name: 'OpenAI', pathPrefix: '/v1' },
          endpoint: { hostname: '127.0.0.1', port: provider.port, tls: false },
          auth: { type: 'APIKey', secret: { secretName: 'openai', key: 'apiKey' } },
        },
      ],
      routes: [
        {
          name: 'default/chat',
          endpoints: [{ api: 'OpenAI', pathPrefix: '/v1' }],
          hostnames: [],
          rules: [
            { models: [{ type: 'Prefix', value: 'gpt-' }], backends: [{ backend: 'openai', weight: 1, priority: 0 }] },
          ],
          requiredHeaders: [],
        },
      ],
      costs: [{ metadataKey: 'weighted', type: 'CEL', expression: 'input_tokens + 4 * output_tokens' }],
      circuitBreaker: { failureThreshold: 5, openDurationMs: 1000 },
    };
    processor = await startTestProcessor(config, { secrets: { openai: { apiKey: 'sk-provider\n' } } });
    front = await startHttpFront({ client: processor.client, config, onResult: (result) => results.push(result) });
    sdk = new OpenAI({ baseURL: `${front.url}/v1`, apiKey: 'client-key', maxRetries: 0 });
  });
  beforeEach(() => {
    results = [];
  });
  afterAll(async () => {
    await front.close();
    await processor.close();
    await provider.close();
  });

  it('non-streaming: the SDK gets the recorded completion, the provider gets the backend key', async () => {
    const completion = await sdk.chat.completions.create({
      model: 'gpt-5-nano',
      messages: [{ role: 'user', content: 'Hello!' }],
    });
    expect(completion).toEqual(JSON.parse(cassette('chat-basic', 'response.json')));
    const request = provider.requests.at(-1)!;
    expect(request.path).toBe('/v1/chat/completions');
    expect(request.headers.authorization).toBe('Bearer sk-provider');
    expect(request.headers['x-ai-eg-model']).toBe('gpt-5-nano');
    const usage = completion.usage!;
    expect(results[0].metadata['io.envoy.ai_gateway']).toMatchObject({
      llm_input_token: usage.prompt_tokens,
      llm_output_token: usage.completion_tokens,
      llm_total_token: usage.total_tokens,
      weighted: usage.prompt_tokens + 4 * usage.completion_tokens,
    });
  });

  const recordedChunks = () =>
    cassette('chat-streaming-detailed-usage', 'response.sse')
      .split('\n')
      .filter((line) => line.startsWith('data: {'))
      .map((line) => JSON.parse(line.slice(6)) as { choices: unknown[]; usage?: unknown });
  const streamMetadata = { llm_input_token: 12, llm_output_token: 100, llm_total_token: 112, llm_reasoning_token: 100 };

  it('streaming: a client that did not ask for usage gets no usage chunk or usage fields, yet is charged', async () => {
    const stream = await sdk.chat.completions.create({
      model: 'gpt-5-nano',
      messages: [{ role: 'developer', content: "Hello, I'm a developer!" }],
      stream: true,
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    // A cost is configured, so the processor asked the provider for usage.
    const sent = JSON.parse(provider.requests.at(-1)!.body.toString()) as {
      stream_options?: { include_usage?: boolean };
    };
    expect(sent.stream_options?.include_usage).toBe(true);
    const expected = recordedChunks()
      .filter((chunk) => chunk.choices.length > 0)
      .map(({ usage: _usage, ...chunk }) => chunk);
    expect(chunks).toEqual(expected);
    // What a naive client does with every chunk works.
    for (const chunk of chunks) expect(chunk.choices[0]).toBeDefined();
    expect(results[0].streamed).toBe(true);
    expect(results[0].metadata['io.envoy.ai_gateway']).toMatchObject({ ...streamMetadata, weighted: 412 });
  });

  it('streaming: a client that asked for usage gets every recorded chunk, the usage chunk included', async () => {
    const stream = await sdk.chat.completions.create({
      model: 'gpt-5-nano',
      messages: [{ role: 'developer', content: "Hello, I'm a developer!" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: unknown[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks).toEqual(recordedChunks());
    expect(results[0].metadata['io.envoy.ai_gateway']).toMatchObject({ ...streamMetadata, weighted: 412 });
  });

  it('a provider error reaches the SDK unchanged', async () => {
    await expect(
      sdk.chat.completions.create({ model: 'gpt-unknown', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toMatchObject({
      status: 404,
      error: (JSON.parse(cassette('chat-unknown-model', 'response.json')) as { error: unknown }).error,
    });
  });

  it('a gateway error (unknown model) is an OpenAI-style error for the SDK', async () => {
    await expect(
      sdk.chat.completions.create({ model: 'claude-x', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toMatchObject({
      status: 404,
      code: 'model_not_found',
    });
  });
});
