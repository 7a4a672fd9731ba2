/**
 * Prompt caching and structured outputs end to end: the official SDKs, unchanged, through the processor (driven
 * like Envoy by the HTTP front) against fake providers that check the exact upstream body. `openai` with
 * `cache_control` on content parts and tools reaches the Anthropic API as `cache_control` and Bedrock Converse as
 * `cachePoint` blocks; `@anthropic-ai/sdk` reaches Bedrock Converse with `cachePoint` blocks. Cache reads and writes
 * come back in the client's usage, in the token metadata and in the costs budgets count (money at the cache-write
 * prices). `response_format` `json_schema` reaches them as `output_config.format` and `outputConfig.textFormat`, and
 * the SDK gets the JSON.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type * as http from 'node:http';
import { CONFIG_VERSION, type ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import { encodeEventStreamMessage } from '../../src/eventstream';
import type { ExchangeResult } from '../support/envoy-client';
import { startFakeProvider, type FakeProvider, type RecordedRequest } from '../support/fake-provider';
import { startHttpFront, type HttpFront } from '../support/http-front';
import { startTestProcessor, type TestProcessor } from '../support/processor-harness';
import { anthropicBackend, bedrockBackend, prefixRule } from '../support/test-backends';

const MANUAL = 'MANUAL: '.repeat(50);
const PARAMETERS = { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] };

/** Anthropic's usage for a request that read 2048 cached tokens and wrote 1500 (1000 of them for an hour). */
const ANTHROPIC_USAGE = {
  input_tokens: 12,
  cache_read_input_tokens: 2048,
  cache_creation_input_tokens: 1500,
  cache_creation: { ephemeral_5m_input_tokens: 500, ephemeral_1h_input_tokens: 1000 },
  output_tokens: 9,
};
const CONVERSE_USAGE = {
  inputTokens: 12,
  outputTokens: 9,
  totalTokens: 3569,
  cacheReadInputTokens: 2048,
  cacheWriteInputTokens: 1500,
  cacheDetails: [
    { ttl: '1h', inputTokens: 1000 },
    { ttl: '5m', inputTokens: 500 },
  ],
};
/** Claude Sonnet 4's prices in pico-dollars per token: $3 input, $0.30 reads, $3.75 / $6 writes, $15 output. */
const SONNET_PRICE = {
  input: 3_000_000,
  cachedInput: 300_000,
  cacheWrite: 3_750_000,
  cacheWrite1h: 6_000_000,
  output: 15_000_000,
};
/** Both: input 12 + 2048 + 1500, output 9. */
const EXPECTED_METADATA = {
  llm_input_token: 3560,
  llm_output_token: 9,
  llm_total_token: 3569,
  llm_cached_input_token: 2048,
  cached_budget: 2048,
  input_budget: 3560,
  // 12 * $3 + 2,048 * $0.30 + 500 * $3.75 + 1,000 * $6 + 9 * $15 per million tokens (8,660,400,000 pico-dollars), in
  // nano-dollars: a cost is written as at most 1e9 units, the most Envoy charges one request.
  spend_nano: 8_660_400,
};

function frame(eventType: string, payload: unknown): Buffer {
  return encodeEventStreamMessage(
    { ':event-type': eventType, ':content-type': 'application/json', ':message-type': 'event' },
    Buffer.from(JSON.stringify(payload)),
  );
}

const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/** What the providers answer when asked for JSON output. */
const FORECAST = { city: 'Paris', celsius: 21 };

function anthropicProvider(body: Record<string, unknown>, res: http.ServerResponse): void {
  const message = { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-real', stop_sequence: null };
  const text = body.output_config ? JSON.stringify(FORECAST) : 'Sunny.';
  if (!body.stream) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        ...message,
        content: [{ type: 'text', text }],
        stop_reason: 'end_turn',
        usage: ANTHROPIC_USAGE,
      }),
    );
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.end(
    sse('message_start', {
      type: 'message_start',
      message: { ...message, content: [], stop_reason: null, usage: { ...ANTHROPIC_USAGE, output_tokens: 1 } },
    }) +
      sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }) +
      sse('content_block_delta', {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'text_delta', text: 'Sunny.' },
      }) +
      sse('content_block_stop', { type: 'content_block_stop', index: 0 }) +
      sse('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 9 } }) +
      sse('message_stop', { type: 'message_stop' }),
  );
}

function bedrockProvider(request: RecordedRequest, res: http.ServerResponse): void {
  const text = request.body.includes('"outputConfig"') ? JSON.stringify(FORECAST) : 'Sunny.';
  if (!request.path.endsWith('/converse-stream')) {
    res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': 'req-bedrock' }).end(
      JSON.stringify({
        output: { message: { role: 'assistant', content: [{ text }] } },
        stopReason: 'end_turn',
        usage: CONVERSE_USAGE,
      }),
    );
    return;
  }
  res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': 'req-stream' });
  res.end(
    Buffer.concat([
      frame('messageStart', { role: 'assistant' }),
      frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text } }),
      frame('contentBlockStop', { contentBlockIndex: 0 }),
      frame('messageStop', { stopReason: 'end_turn' }),
      frame('metadata', { usage: CONVERSE_USAGE, metrics: { latencyMs: 10 } }),
    ]),
  );
}

describe('Claude prompt caching and structured outputs through the data plane with the official SDKs', () => {
  let provider: FakeProvider;
  let processor: TestProcessor;
  let front: HttpFront;
  let results: ExchangeResult[];
  let openai: OpenAI;
  let anthropic: Anthropic;

  beforeAll(async () => {
    provider = await startFakeProvider((request, res) => {
      const body = JSON.parse(request.body.toString()) as Record<string, unknown>;
      if (request.path === '/v1/messages') return anthropicProvider(body, res);
      if (request.path.startsWith('/model/')) return bedrockProvider(request, res);
      res.writeHead(404).end();
    });
    const endpoint = { hostname: '127.0.0.1', port: provider.port, tls: false };
    const config: ProcessorConfig = {
      version: CONFIG_VERSION,
      maxRequestBodyBytes: 1024 * 1024,
      backends: [anthropicBackend(endpoint), bedrockBackend(endpoint)],
      routes: [
        {
          name: 'default/all',
          endpoints: [
            { api: 'OpenAI', pathPrefix: '/v1' },
            { api: 'Anthropic', pathPrefix: '/anthropic/v1' },
          ],
          hostnames: [],
          rules: [prefixRule('claude-', 'anthropic'), prefixRule('bedrock-', 'bedrock')],
          requiredHeaders: [],
        },
      ],
      // What token budgets count: cached reads on their own, and all input; and what money budgets count.
      costs: [
        { metadataKey: 'cached_budget', type: 'CachedInputToken' },
        { metadataKey: 'input_budget', type: 'InputToken' },
        { metadataKey: 'spend_nano', type: 'Price', picoUsdPerUnit: 1_000 },
      ],
      prices: [
        { model: 'claude-sonnet', ...SONNET_PRICE },
        { model: 'bedrock-claude', ...SONNET_PRICE },
      ],
      circuitBreaker: { failureThreshold: 100, openDurationMs: 1000 },
    };
    processor = await startTestProcessor(config, {
      secrets: {
        anthropic: { key: 'sk-ant-provider' },
        aws: { credentials: '[default]\naws_access_key_id=AKIAE2E\naws_secret_access_key=e2e-secret\n' },
      },
    });
    front = await startHttpFront({ client: processor.client, config, onResult: (result) => results.push(result) });
    openai = new OpenAI({ baseURL: `${front.url}/v1`, apiKey: 'client-key', maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: `${front.url}/anthropic`, apiKey: 'client-key', maxRetries: 0 });
  });
  beforeEach(() => {
    results = [];
  });
  afterAll(async () => {
    await front.close();
    await processor.close();
    await provider.close();
  });

  const upstreamBody = () => JSON.parse(provider.requests.at(-1)!.body.toString()) as unknown;
  const metadata = () => results[0].metadata['io.envoy.ai_gateway'];

  /** `cache_control` is not in the openai SDK's types: the request is sent as JSON like any other field. */
  function openAIRequest(model: string): OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming {
    return {
      model,
      max_tokens: 64,
      messages: [
        { role: 'system', content: [{ type: 'text', text: MANUAL, cache_control: { type: 'ephemeral', ttl: '1h' } }] },
        { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?', cache_control: { type: 'ephemeral' } }] },
      ],
      tools: [
        {
          type: 'function',
          function: { name: 'get_weather', parameters: PARAMETERS },
          cache_control: { type: 'ephemeral' },
        },
      ],
    } as unknown as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming;
  }

  it('openai SDK -> Anthropic API: cache_control reaches the provider, cache usage comes back', async () => {
    const completion = await openai.chat.completions.create(openAIRequest('claude-sonnet'));
    expect(upstreamBody()).toEqual({
      model: 'claude-sonnet',
      max_tokens: 64,
      system: [{ type: 'text', text: MANUAL, cache_control: { type: 'ephemeral', ttl: '1h' } }],
      messages: [
        {
          role: 'user',
          content: [{ type: 'text', text: 'Weather in Paris?', cache_control: { type: 'ephemeral' } }],
        },
      ],
      tools: [{ name: 'get_weather', input_schema: PARAMETERS, cache_control: { type: 'ephemeral' } }],
    });
    expect(completion.usage).toMatchObject({
      prompt_tokens: 3560,
      completion_tokens: 9,
      prompt_tokens_details: { cached_tokens: 2048 },
    });
    expect(metadata()).toMatchObject(EXPECTED_METADATA);
  });

  it('openai SDK streaming -> Anthropic API: the cache counts reach the metadata and the budgets', async () => {
    const stream = await openai.chat.completions.create({
      ...openAIRequest('claude-sonnet'),
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: OpenAI.Completions.CompletionUsage | undefined | null;
    for await (const chunk of stream) usage = chunk.usage ?? usage;
    expect(usage).toMatchObject({ prompt_tokens: 3560, prompt_tokens_details: { cached_tokens: 2048 } });
    expect(metadata()).toMatchObject(EXPECTED_METADATA);
  });

  it('openai SDK -> Bedrock Converse: cachePoint blocks after the marked system block, part and tool', async () => {
    const completion = await openai.chat.completions.create(openAIRequest('bedrock-claude'));
    expect(provider.requests.at(-1)!.path).toBe('/model/bedrock-claude/converse');
    expect(upstreamBody()).toEqual({
      inferenceConfig: { maxTokens: 64 },
      system: [{ text: MANUAL }, { cachePoint: { type: 'default', ttl: '1h' } }],
      messages: [{ role: 'user', content: [{ text: 'Weather in Paris?' }, { cachePoint: { type: 'default' } }] }],
      toolConfig: {
        tools: [
          { toolSpec: { name: 'get_weather', inputSchema: { json: PARAMETERS } } },
          { cachePoint: { type: 'default' } },
        ],
      },
    });
    expect(completion.usage).toMatchObject({ prompt_tokens: 3560, prompt_tokens_details: { cached_tokens: 2048 } });
    expect(metadata()).toMatchObject(EXPECTED_METADATA);
  });

  it('@anthropic-ai/sdk -> Bedrock Converse: cache_control becomes cachePoint, cache usage comes back', async () => {
    const stream = anthropic.messages.stream({
      model: 'bedrock-claude',
      max_tokens: 64,
      system: [{ type: 'text', text: MANUAL, cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] }],
      tools: [{ name: 'get_weather', input_schema: PARAMETERS, cache_control: { type: 'ephemeral', ttl: '1h' } }],
    });
    const events: Array<{ type: string; usage?: unknown }> = [];
    stream.on('streamEvent', (event) => events.push(event));
    const message = await stream.finalMessage();
    expect(provider.requests.at(-1)!.path).toBe('/model/bedrock-claude/converse-stream');
    expect(upstreamBody()).toEqual({
      inferenceConfig: { maxTokens: 64 },
      system: [{ text: MANUAL }, { cachePoint: { type: 'default' } }],
      messages: [{ role: 'user', content: [{ text: 'Weather in Paris?' }] }],
      toolConfig: {
        tools: [
          { toolSpec: { name: 'get_weather', inputSchema: { json: PARAMETERS } } },
          { cachePoint: { type: 'default', ttl: '1h' } },
        ],
      },
    });
    expect(message.content[0]).toMatchObject({ type: 'text', text: 'Sunny.' });
    expect(message.usage).toMatchObject({
      input_tokens: 12,
      cache_read_input_tokens: 2048,
      cache_creation_input_tokens: 1500,
      output_tokens: 9,
    });
    // The split of the writes by TTL arrives with the final counts, in message_delta.
    const delta = events.find((event) => event.type === 'message_delta');
    expect(delta?.usage).toMatchObject({
      cache_creation: { ephemeral_5m_input_tokens: 500, ephemeral_1h_input_tokens: 1000 },
    });
    expect(metadata()).toMatchObject(EXPECTED_METADATA);
  });
  const SCHEMA = {
    type: 'object',
    properties: { city: { type: 'string' }, celsius: { type: 'number' } },
    required: ['city', 'celsius'],
    additionalProperties: false,
  };
  const structured: OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming = {
    model: 'claude-sonnet',
    max_tokens: 64,
    messages: [{ role: 'user', content: 'Weather in Paris?' }],
    response_format: { type: 'json_schema', json_schema: { name: 'forecast', schema: SCHEMA, strict: true } },
  };

  it('openai SDK json_schema -> Anthropic API: output_config.format, the JSON answer parsed by the SDK', async () => {
    const completion = await openai.chat.completions.parse(structured);
    expect(upstreamBody()).toEqual({
      model: 'claude-sonnet',
      max_tokens: 64,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] }],
      output_config: { format: { type: 'json_schema', schema: SCHEMA } },
    });
    expect(completion.choices[0].message.parsed).toEqual(FORECAST);
  });

  it('openai SDK json_schema -> Bedrock Converse (streamed): outputConfig.textFormat, the JSON answer', async () => {
    const { messages, max_tokens, response_format } = structured;
    const stream = openai.chat.completions.stream({ model: 'bedrock-claude', messages, max_tokens, response_format });
    const completion = await stream.finalChatCompletion();
    expect(provider.requests.at(-1)!.path).toBe('/model/bedrock-claude/converse-stream');
    expect(upstreamBody()).toEqual({
      inferenceConfig: { maxTokens: 64 },
      messages: [{ role: 'user', content: [{ text: 'Weather in Paris?' }] }],
      outputConfig: {
        textFormat: {
          type: 'json_schema',
          structure: { jsonSchema: { schema: JSON.stringify(SCHEMA), name: 'forecast' } },
        },
      },
    });
    expect(JSON.parse(completion.choices[0].message.content!)).toEqual(FORECAST);
  });

  it('openai SDK json_object -> a Claude backend: 422 naming the parameter, before reaching the provider', async () => {
    const before = provider.requests.length;
    const error = await openai.chat.completions
      .create({ ...structured, response_format: { type: 'json_object' } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(422);
    expect((error as Error).message).toContain('response_format');
    expect(provider.requests.length).toBe(before);
  });
});
