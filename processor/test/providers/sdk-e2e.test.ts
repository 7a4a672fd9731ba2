/**
 * The official SDKs, unchanged, through the processor (driven like Envoy by the HTTP front) against fake
 * providers speaking each provider's real wire format: `openai` (streaming and not, with tools) against
 * Anthropic, Bedrock and Gemini; `@anthropic-ai/sdk` against `/anthropic/v1/messages` with an Anthropic
 * and an OpenAI backend.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type * as http from 'node:http';
import { CONFIG_VERSION, type BackendConfig, type ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import { encodeEventStreamMessage } from '../../src/eventstream';
import type { ExchangeResult } from '../support/envoy-client';
import { startFakeProvider, type FakeProvider, type RecordedRequest } from '../support/fake-provider';
import { startHttpFront, type HttpFront } from '../support/http-front';
import { startTestProcessor, type TestProcessor } from '../support/processor-harness';
import { anthropicBackend, bedrockBackend, prefixRule, vertexBackend } from '../support/test-backends';

const WEATHER_TOOL = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

async function writeSlowly(
  res: http.ServerResponse,
  status: number,
  contentType: string,
  parts: (string | Buffer)[],
): Promise<void> {
  res.writeHead(status, { 'content-type': contentType });
  for (const part of parts) {
    res.write(part);
    await new Promise((resolve) => setImmediate(resolve));
  }
  res.end();
}

const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/** Anthropic Messages: a tool call (or text when no tools), as JSON or SSE. */
async function anthropicProvider(body: Record<string, unknown>, res: http.ServerResponse): Promise<void> {
  const tools = Array.isArray(body.tools) && body.tools.length > 0;
  const usage = { input_tokens: 11, cache_read_input_tokens: 5, cache_creation_input_tokens: 2, output_tokens: 9 };
  if (!body.stream) {
    const content = tools
      ? [
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
        ]
      : [{ type: 'text', text: 'Bonjour!' }];
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'claude-real',
        content,
        stop_reason: tools ? 'tool_use' : 'end_turn',
        stop_sequence: null,
        usage,
      }),
    );
    return;
  }
  const events = [
    sse('message_start', {
      type: 'message_start',
      message: {
        id: 'msg_2',
        type: 'message',
        role: 'assistant',
        model: 'claude-real',
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...usage, output_tokens: 1 },
      },
    }),
    sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
    sse('content_block_delta', {
      type: 'content_block_delta',
      index: 0,
      delta: { type: 'text_delta', text: tools ? 'Checking.' : 'Bon' },
    }),
    ...(tools
      ? []
      : [
          sse('content_block_delta', {
            type: 'content_block_delta',
            index: 0,
            delta: { type: 'text_delta', text: 'jour!' },
          }),
        ]),
    sse('content_block_stop', { type: 'content_block_stop', index: 0 }),
    ...(tools
      ? [
          sse('content_block_start', {
            type: 'content_block_start',
            index: 1,
            content_block: { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: {} },
          }),
          sse('content_block_delta', {
            type: 'content_block_delta',
            index: 1,
            delta: { type: 'input_json_delta', partial_json: '{"city": "Pa' },
          }),
          sse('content_block_delta', {
            type: 'content_block_delta',
            index: 1,
            delta: { type: 'input_json_delta', partial_json: 'ris"}' },
          }),
          sse('content_block_stop', { type: 'content_block_stop', index: 1 }),
        ]
      : []),
    sse('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: tools ? 'tool_use' : 'end_turn', stop_sequence: null },
      usage: { output_tokens: 9 },
    }),
    sse('message_stop', { type: 'message_stop' }),
  ];
  await writeSlowly(res, 200, 'text/event-stream', events);
}

function frame(eventType: string, payload: unknown): Buffer {
  return encodeEventStreamMessage(
    { ':event-type': eventType, ':content-type': 'application/json', ':message-type': 'event' },
    Buffer.from(JSON.stringify(payload)),
  );
}

async function bedrockProvider(request: RecordedRequest, res: http.ServerResponse): Promise<void> {
  if (
    request.body.includes('force-403') ||
    !String(request.headers.authorization).startsWith('AWS4-HMAC-SHA256 Credential=AKIAE2E/')
  ) {
    res
      .writeHead(403, { 'content-type': 'application/json', 'x-amzn-errortype': 'UnrecognizedClientException:' })
      .end('{"message":"bad signature"}');
    return;
  }
  const usage = { inputTokens: 21, outputTokens: 8, totalTokens: 29 };
  if (!request.path.endsWith('/converse-stream')) {
    res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': 'req-bedrock' }).end(
      JSON.stringify({
        output: {
          message: {
            role: 'assistant',
            content: [
              { text: 'Let me check.' },
              { toolUse: { toolUseId: 'tooluse_1', name: 'get_weather', input: { city: 'Paris' } } },
            ],
          },
        },
        stopReason: 'tool_use',
        usage,
      }),
    );
    return;
  }
  const frames = Buffer.concat([
    frame('messageStart', { role: 'assistant' }),
    frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Let me ' } }),
    frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'check.' } }),
    frame('contentBlockStop', { contentBlockIndex: 0 }),
    frame('contentBlockStart', {
      contentBlockIndex: 1,
      start: { toolUse: { toolUseId: 'tooluse_2', name: 'get_weather' } },
    }),
    frame('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '{"city":' } } }),
    frame('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '"Paris"}' } } }),
    frame('contentBlockStop', { contentBlockIndex: 1 }),
    frame('messageStop', { stopReason: 'tool_use' }),
    frame('metadata', { usage, metrics: { latencyMs: 10 } }),
  ]);
  // Cut the frames at awkward places, as TCP would.
  const parts: Buffer[] = [];
  for (let i = 0; i < frames.length; i += 37) parts.push(frames.subarray(i, i + 37));
  res.setHeader('x-amzn-requestid', 'req-bedrock-stream');
  await writeSlowly(res, 200, 'application/vnd.amazon.eventstream', parts);
}

async function geminiProvider(request: RecordedRequest, res: http.ServerResponse): Promise<void> {
  if (request.path.endsWith(':predict')) {
    const instances = (JSON.parse(request.body.toString()) as { instances: unknown[] }).instances;
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        predictions: instances.map((_, i) => ({
          embeddings: { values: [i + 0.25, -0.5, 1], statistics: { token_count: 3 } },
        })),
      }),
    );
    return;
  }
  const call = { functionCall: { name: 'get_weather', args: { city: 'Paris' } } };
  const usageMetadata = { promptTokenCount: 14, candidatesTokenCount: 6, thoughtsTokenCount: 3, totalTokenCount: 23 };
  if (request.path.includes(':generateContent')) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        responseId: 'gem-1',
        modelVersion: 'gemini-2.5-flash',
        candidates: [{ content: { role: 'model', parts: [{ text: 'Sure.' }, call] }, finishReason: 'STOP' }],
        usageMetadata,
      }),
    );
    return;
  }
  const data = (value: unknown) => `data: ${JSON.stringify(value)}\r\n\r\n`;
  await writeSlowly(res, 200, 'text/event-stream', [
    data({ responseId: 'gem-2', candidates: [{ content: { role: 'model', parts: [{ text: 'Sure' }] } }] }),
    data({
      responseId: 'gem-2',
      candidates: [{ content: { role: 'model', parts: [{ text: '.' }, call] }, finishReason: 'STOP' }],
      usageMetadata,
    }),
  ]);
}

async function openAIProvider(body: Record<string, unknown>, res: http.ServerResponse): Promise<void> {
  if (!body.stream) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        id: 'chatcmpl-1',
        object: 'chat.completion',
        created: 1,
        model: 'gpt-4o-2024',
        choices: [{ index: 0, message: { role: 'assistant', content: 'Hello from OpenAI' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 13, completion_tokens: 4, total_tokens: 17 },
      }),
    );
    return;
  }
  const chunk = (delta: unknown, finish: string | null = null) =>
    'data: ' +
    JSON.stringify({
      id: 'chatcmpl-2',
      object: 'chat.completion.chunk',
      created: 1,
      model: 'gpt-4o-2024',
      choices: [{ index: 0, delta, finish_reason: finish }],
    }) +
    '\n\n';
  await writeSlowly(res, 200, 'text/event-stream', [
    chunk({ role: 'assistant', content: '' }),
    chunk({ content: 'Hello ' }),
    chunk({ content: 'from OpenAI' }),
    chunk({}, 'stop'),
    'data: ' +
      JSON.stringify({
        id: 'chatcmpl-2',
        object: 'chat.completion.chunk',
        created: 1,
        model: 'gpt-4o-2024',
        choices: [],
        usage: { prompt_tokens: 13, completion_tokens: 4, total_tokens: 17 },
      }) +
      '\n\n',
    'data: [DONE]\n\n',
  ]);
}

describe('official SDKs against translated providers', () => {
  let provider: FakeProvider;
  let processor: TestProcessor;
  let front: HttpFront;
  let results: ExchangeResult[];
  let openai: OpenAI;
  let anthropic: Anthropic;

  beforeAll(async () => {
    provider = await startFakeProvider(async (request, res) => {
      const body = request.body.length > 0 ? (JSON.parse(request.body.toString()) as Record<string, unknown>) : {};
      if (request.path === '/v1/messages') return anthropicProvider(body, res);
      if (request.path.startsWith('/model/')) return bedrockProvider(request, res);
      if (request.path.startsWith('/v1/projects/')) return geminiProvider(request, res);
      if (request.path === '/v1/chat/completions') return openAIProvider(body, res);
      res.writeHead(404).end();
    });
    const endpoint = { hostname: '127.0.0.1', port: provider.port, tls: false };
    const backends: BackendConfig[] = [
      anthropicBackend(endpoint),
      bedrockBackend(endpoint),
      vertexBackend(endpoint),
      { name: 'openai', schema: { name: 'OpenAI', pathPrefix: '/v1' }, endpoint },
    ];
    const config: ProcessorConfig = {
      version: CONFIG_VERSION,
      maxRequestBodyBytes: 1024 * 1024,
      backends,
      routes: [
        {
          name: 'default/all',
          endpoints: [
            { api: 'OpenAI', pathPrefix: '/v1' },
            { api: 'Anthropic', pathPrefix: '/anthropic/v1' },
          ],
          hostnames: [],
          rules: [
            prefixRule('claude-', 'anthropic'),
            prefixRule('bedrock-', 'bedrock'),
            prefixRule('gemini-', 'vertex'),
            prefixRule('gpt-', 'openai'),
          ],
          requiredHeaders: [],
        },
      ],
      costs: [],
      circuitBreaker: { failureThreshold: 100, openDurationMs: 1000 },
    };
    processor = await startTestProcessor(config, {
      secrets: {
        anthropic: { key: 'sk-ant-provider' },
        aws: { credentials: '[default]\naws_access_key_id=AKIAE2E\naws_secret_access_key=e2e-secret\n' },
        gcp: { token: 'ya29.e2e' },
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

  const metadata = () => results[0].metadata['io.envoy.ai_gateway'];
  const ask = {
    messages: [{ role: 'user' as const, content: 'Weather in Paris?' }],
    tools: [WEATHER_TOOL],
    max_tokens: 100,
  };

  describe.each([
    ['Anthropic', 'claude-sonnet', { input: 18, output: 9, cachedInput: 5, reasoning: 0 }, 'Checking.'],
    ['Bedrock', 'bedrock-claude', { input: 21, output: 8, cachedInput: 0, reasoning: 0 }, 'Let me check.'],
    ['Gemini', 'gemini-flash', { input: 14, output: 9, cachedInput: 0, reasoning: 3 }, 'Sure.'],
  ])('openai SDK -> %s', (_name, model, usage, text) => {
    it('non-streaming with tools', async () => {
      const completion = await openai.chat.completions.create({ model, ...ask });
      const choice = completion.choices[0];
      expect(choice.finish_reason).toBe('tool_calls');
      expect(choice.message.content).toBe(text);
      expect(choice.message.tool_calls).toHaveLength(1);
      const call = choice.message.tool_calls![0] as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
      expect(call.function.name).toBe('get_weather');
      expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' });
      expect(completion.usage).toMatchObject({
        prompt_tokens: usage.input,
        completion_tokens: usage.output,
        total_tokens: usage.input + usage.output,
      });
      expect(metadata()).toMatchObject({
        llm_input_token: usage.input,
        llm_output_token: usage.output,
        llm_total_token: usage.input + usage.output,
        llm_cached_input_token: usage.cachedInput,
        llm_reasoning_token: usage.reasoning,
      });
    });

    it('streaming with tools, accumulated by the SDK', async () => {
      const stream = openai.chat.completions.stream({ model, ...ask, stream_options: { include_usage: true } });
      const completion = await stream.finalChatCompletion();
      const choice = completion.choices[0];
      expect(choice.finish_reason).toBe('tool_calls');
      expect(choice.message.content).toBe(text);
      const call = choice.message.tool_calls![0];
      expect(call.function.name).toBe('get_weather');
      expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' });
      expect(completion.usage).toMatchObject({ prompt_tokens: usage.input, completion_tokens: usage.output });
      expect(results[0].streamed).toBe(true);
      expect(metadata()).toMatchObject({
        llm_input_token: usage.input,
        llm_output_token: usage.output,
        llm_total_token: usage.input + usage.output,
      });
    });

    it('streaming without stream_options: no usage chunk reaches the SDK, the usage is still counted', async () => {
      const stream = await openai.chat.completions.create({ model, ...ask, stream: true });
      const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
      for await (const chunk of stream) chunks.push(chunk);
      expect(chunks.length).toBeGreaterThan(1);
      for (const chunk of chunks) {
        expect(chunk.choices[0]).toBeDefined();
        expect(chunk.usage).toBeUndefined();
      }
      expect(chunks.at(-1)!.choices[0].finish_reason).toBe('tool_calls');
      expect(metadata()).toMatchObject({
        llm_input_token: usage.input,
        llm_output_token: usage.output,
        llm_total_token: usage.input + usage.output,
        llm_cached_input_token: usage.cachedInput,
        llm_reasoning_token: usage.reasoning,
      });
    });
  });

  it('the provider saw its own wire format and credentials', async () => {
    await openai.chat.completions.create({ model: 'claude-sonnet', ...ask });
    const toAnthropic = provider.requests.at(-1)!;
    expect(toAnthropic.headers['x-api-key']).toBe('sk-ant-provider');
    expect(toAnthropic.headers['anthropic-version']).toBe('2023-06-01');
    expect(toAnthropic.headers.authorization).toBeUndefined();
    expect(JSON.parse(toAnthropic.body.toString())).toMatchObject({
      model: 'claude-sonnet',
      max_tokens: 100,
      tools: [{ name: 'get_weather' }],
    });
    await openai.chat.completions.create({ model: 'gemini-flash', ...ask });
    const toGemini = provider.requests.at(-1)!;
    expect(toGemini.path).toBe(
      '/v1/projects/proj/locations/europe-west4/publishers/google/models/gemini-flash:generateContent',
    );
    expect(toGemini.headers.authorization).toBe('Bearer ya29.e2e');
  });

  it(
    'a request the backend cannot express is answered 422 naming the parameter, before reaching ' + 'the provider',
    async () => {
      const before = provider.requests.length;
      const error = await openai.chat.completions
        .create({ model: 'bedrock-claude', ...ask, logit_bias: { '50256': -100 } })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(422);
      expect((error as Error).message).toContain('logit_bias');
      expect(provider.requests.length).toBe(before);
    },
  );

  it('a provider error reaches the openai SDK with the provider status and message', async () => {
    const error = await openai.chat.completions
      .create({ model: 'bedrock-claude', messages: [{ role: 'user', content: 'force-403' }] })
      .catch((e: unknown) => e);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(403);
    expect((error as Error).message).toContain('bad signature');
  });

  it('openai SDK embeddings (base64 by default) against Vertex AI', async () => {
    const result = await openai.embeddings.create({ model: 'gemini-embedding', input: ['a', 'b'] });
    expect(result.data.map((d) => d.embedding)).toEqual([
      [0.25, -0.5, 1],
      [1.25, -0.5, 1],
    ]);
    expect(result.usage).toEqual({ prompt_tokens: 6, total_tokens: 6 });
    expect(provider.requests.at(-1)!.path).toBe(
      '/v1/projects/proj/locations/europe-west4/publishers/google/models/gemini-embedding:predict',
    );
    expect(metadata()).toMatchObject({ llm_input_token: 6, llm_output_token: 0, llm_total_token: 6 });
  });

  it('openai SDK embeddings with one Vertex instance object as input (task type and title kept)', async () => {
    const instance = { content: 'Paris is in France.', task_type: 'RETRIEVAL_DOCUMENT', title: 'Geography' };
    const result = await openai.embeddings.create({
      model: 'gemini-embedding',
      // Vertex's own instance shape: not in the SDK's types, sent as JSON like any input.
      input: instance as unknown as string,
      encoding_format: 'float',
    });
    expect(result.data).toEqual([{ embedding: [0.25, -0.5, 1], index: 0, object: 'embedding' }]);
    expect(JSON.parse(provider.requests.at(-1)!.body.toString())).toEqual({ instances: [instance], parameters: {} });
    expect(metadata()).toMatchObject({ llm_input_token: 3, llm_total_token: 3 });
  });

  describe('@anthropic-ai/sdk -> /anthropic/v1/messages', () => {
    it('Anthropic backend, non-streaming (passthrough)', async () => {
      const message = await anthropic.messages.create({
        model: 'claude-sonnet',
        max_tokens: 50,
        messages: [{ role: 'user', content: 'Hi' }],
      });
      expect(message.content).toEqual([{ type: 'text', text: 'Bonjour!' }]);
      expect(message.usage.input_tokens).toBe(11);
      expect(metadata()).toMatchObject({
        llm_input_token: 18,
        llm_output_token: 9,
        llm_total_token: 27,
        llm_cached_input_token: 5,
      });
    });

    it('Anthropic backend, streaming (passthrough)', async () => {
      const message = await anthropic.messages
        .stream({ model: 'claude-sonnet', max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] })
        .finalMessage();
      expect(message.content).toEqual([{ type: 'text', text: 'Bonjour!' }]);
      expect(message.stop_reason).toBe('end_turn');
      expect(metadata()).toMatchObject({ llm_input_token: 18, llm_output_token: 9 });
    });

    it('OpenAI backend, non-streaming (translated)', async () => {
      const message = await anthropic.messages.create({
        model: 'gpt-4o',
        max_tokens: 50,
        system: 'Be nice.',
        messages: [{ role: 'user', content: 'Hi' }],
      });
      expect(message.content).toEqual([{ type: 'text', text: 'Hello from OpenAI' }]);
      expect(message.stop_reason).toBe('end_turn');
      expect(message.usage).toMatchObject({ input_tokens: 13, output_tokens: 4 });
      const sent = JSON.parse(provider.requests.at(-1)!.body.toString());
      expect(sent).toMatchObject({
        model: 'gpt-4o',
        max_completion_tokens: 50,
        messages: [
          { role: 'system', content: 'Be nice.' },
          { role: 'user', content: 'Hi' },
        ],
      });
      expect(metadata()).toMatchObject({ llm_input_token: 13, llm_output_token: 4, llm_total_token: 17 });
    });

    it('OpenAI backend: JSON outputs (output_config.format) become strict response_format json_schema', async () => {
      const schema = {
        type: 'object' as const,
        properties: { greeting: { type: 'string' } },
        required: ['greeting'],
        additionalProperties: false,
      };
      await anthropic.messages.create({
        model: 'gpt-4o',
        max_tokens: 50,
        messages: [{ role: 'user', content: 'Hi' }],
        output_config: { format: { type: 'json_schema', schema } },
        tools: [{ name: 'get_weather', input_schema: WEATHER_TOOL.function.parameters, strict: true }],
      } as Anthropic.MessageCreateParamsNonStreaming);
      expect(JSON.parse(provider.requests.at(-1)!.body.toString())).toMatchObject({
        response_format: { type: 'json_schema', json_schema: { name: 'output', schema, strict: true } },
        tools: [
          {
            type: 'function',
            function: { name: 'get_weather', parameters: WEATHER_TOOL.function.parameters, strict: true },
          },
        ],
      });
    });

    it('OpenAI backend, streaming (translated)', async () => {
      const stream = anthropic.messages.stream({
        model: 'gpt-4o',
        max_tokens: 50,
        messages: [{ role: 'user', content: 'Hi' }],
      });
      const texts: string[] = [];
      stream.on('text', (t) => texts.push(t));
      const message = await stream.finalMessage();
      expect(texts.join('')).toBe('Hello from OpenAI');
      expect(message.content).toEqual([{ type: 'text', text: 'Hello from OpenAI' }]);
      expect(message.usage).toMatchObject({ input_tokens: 13, output_tokens: 4 });
      expect(metadata()).toMatchObject({ llm_input_token: 13, llm_output_token: 4, llm_total_token: 17 });
    });
  });
});
