/**
 * Prompt caching carried across every translation with a cache concept, checked against the exact upstream bodies
 * the providers document: Anthropic `cache_control` (`{type: "ephemeral", ttl?: "5m" | "1h"}` on content, system
 * and tool blocks) for the Anthropic API, Vertex Anthropic and Bedrock InvokeModel; Bedrock Converse `cachePoint`
 * blocks (`{type: "default", ttl?}` after the content, system block or tool they close).
 */
import type { BackendConfig } from '@ai-gateway-constructs/processor-config';
import { anthropicMessagesPassthrough, openAIChatToAnthropicBackend } from '../../src/providers/anthropic';
import { anthropicMessagesToBedrock, openAIChatToBedrock } from '../../src/providers/bedrock';
import type { TranslationContext } from '../../src/translate/types';

const endpoint = { hostname: 'upstream.test', port: 443, tls: true };
const BACKENDS: Record<string, BackendConfig> = {
  anthropic: { name: 'anthropic', schema: { name: 'Anthropic', version: '2023-06-01' }, endpoint },
  vertex: {
    name: 'vertex',
    schema: { name: 'GCPAnthropic', projectId: 'p', region: 'r', anthropicVersion: 'vertex-2023-10-16' },
    endpoint,
  },
  invoke: {
    name: 'invoke',
    schema: { name: 'AWSAnthropic', anthropicVersion: 'bedrock-2023-05-31' },
    endpoint,
  },
  converse: { name: 'converse', schema: { name: 'AWSBedrock' }, endpoint },
};

function context(backend: BackendConfig, overrides: Partial<TranslationContext> = {}): TranslationContext {
  return {
    api: 'OpenAI',
    operation: 'chat',
    subpath: '/chat/completions',
    query: '',
    requestModel: 'claude',
    upstreamModel: 'claude-upstream',
    backend,
    stream: false,
    forceStreamUsage: false,
    requestId: 'req-1',
    nowSeconds: 1000,
    ...overrides,
  };
}

const EPHEMERAL = { type: 'ephemeral' };
const HOUR = { type: 'ephemeral', ttl: '1h' };
const PNG = 'data:image/png;base64,iVBORw0KGgo=';
const WEATHER = {
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } } },
};

/** An OpenAI chat request marking every place a breakpoint can go. */
function openAIRequest(): Record<string, unknown> {
  return {
    model: 'claude',
    max_tokens: 64,
    messages: [
      {
        role: 'system',
        content: [
          { type: 'text', text: 'You answer questions about the attached manual.' },
          { type: 'text', text: 'MANUAL ...', cache_control: HOUR },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: PNG }, cache_control: EPHEMERAL },
          { type: 'text', text: 'What is in the picture?' },
        ],
      },
      {
        role: 'assistant',
        content: [{ type: 'text', text: 'A cat.', cache_control: { type: 'ephemeral', ttl: '5m' } }],
      },
      { role: 'user', content: 'And the weather in Paris?', cache_control: EPHEMERAL },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'Sunny', cache_control: EPHEMERAL }] },
    ],
    tools: [
      { type: 'function', function: WEATHER },
      { type: 'function', function: { ...WEATHER, name: 'get_time' }, cache_control: HOUR },
      { type: 'function', function: { ...WEATHER, name: 'get_date', cache_control: EPHEMERAL } },
    ],
  };
}

/** What the Anthropic Messages API must receive for openAIRequest(). */
const ANTHROPIC_MESSAGES_BODY = {
  max_tokens: 64,
  system: [
    { type: 'text', text: 'You answer questions about the attached manual.' },
    { type: 'text', text: 'MANUAL ...', cache_control: HOUR },
  ],
  messages: [
    {
      role: 'user',
      content: [
        {
          type: 'image',
          source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' },
          cache_control: EPHEMERAL,
        },
        { type: 'text', text: 'What is in the picture?' },
      ],
    },
    { role: 'assistant', content: [{ type: 'text', text: 'A cat.', cache_control: { type: 'ephemeral', ttl: '5m' } }] },
    { role: 'user', content: [{ type: 'text', text: 'And the weather in Paris?', cache_control: EPHEMERAL }] },
    {
      role: 'assistant',
      content: [{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }],
    },
    {
      role: 'user',
      content: [
        {
          type: 'tool_result',
          tool_use_id: 'call_1',
          is_error: false,
          content: [{ type: 'text', text: 'Sunny', cache_control: EPHEMERAL }],
        },
      ],
    },
  ],
  tools: [
    { name: 'get_weather', description: 'Weather for a city', input_schema: WEATHER.parameters },
    { name: 'get_time', description: 'Weather for a city', input_schema: WEATHER.parameters, cache_control: HOUR },
    { name: 'get_date', description: 'Weather for a city', input_schema: WEATHER.parameters, cache_control: EPHEMERAL },
  ],
};

const DEFAULT_POINT = { cachePoint: { type: 'default' } };
const HOUR_POINT = { cachePoint: { type: 'default', ttl: '1h' } };

describe('prompt caching: OpenAI chat -> Claude', () => {
  it('Anthropic API: cache_control on system, image, text, message, tool-result parts and tools', () => {
    const upstream = openAIChatToAnthropicBackend(context(BACKENDS.anthropic)).request(openAIRequest());
    expect(upstream.path).toBe('/v1/messages');
    expect(upstream.body).toEqual({ ...ANTHROPIC_MESSAGES_BODY, model: 'claude-upstream' });
  });

  it('Vertex Anthropic (rawPredict) and Bedrock InvokeModel: the same blocks, with their own envelope', () => {
    const vertex = openAIChatToAnthropicBackend(context(BACKENDS.vertex)).request(openAIRequest());
    expect(vertex.path).toBe('/v1/projects/p/locations/r/publishers/anthropic/models/claude-upstream:rawPredict');
    expect(vertex.body).toEqual({ ...ANTHROPIC_MESSAGES_BODY, anthropic_version: 'vertex-2023-10-16' });
    const invoke = openAIChatToAnthropicBackend(context(BACKENDS.invoke)).request(openAIRequest());
    expect(invoke.path).toBe('/model/claude-upstream/invoke');
    expect(invoke.body).toEqual({ ...ANTHROPIC_MESSAGES_BODY, anthropic_version: 'bedrock-2023-05-31' });
  });

  it('Bedrock Converse: a cachePoint block after each marked block, system block and tool', () => {
    const upstream = openAIChatToBedrock(context(BACKENDS.converse)).request(openAIRequest());
    expect(upstream.path).toBe('/model/claude-upstream/converse');
    expect(upstream.body).toEqual({
      inferenceConfig: { maxTokens: 64 },
      system: [{ text: 'You answer questions about the attached manual.' }, { text: 'MANUAL ...' }, HOUR_POINT],
      messages: [
        {
          role: 'user',
          content: [
            { image: { format: 'png', source: { bytes: 'iVBORw0KGgo=' } } },
            DEFAULT_POINT,
            { text: 'What is in the picture?' },
          ],
        },
        { role: 'assistant', content: [{ text: 'A cat.' }, { cachePoint: { type: 'default', ttl: '5m' } }] },
        { role: 'user', content: [{ text: 'And the weather in Paris?' }, DEFAULT_POINT] },
        {
          role: 'assistant',
          content: [{ toolUse: { toolUseId: 'call_1', name: 'get_weather', input: { city: 'Paris' } } }],
        },
        // A tool result holds no checkpoint: it follows the result.
        {
          role: 'user',
          content: [{ toolResult: { toolUseId: 'call_1', content: [{ text: 'Sunny' }] } }, DEFAULT_POINT],
        },
      ],
      toolConfig: {
        tools: [
          {
            toolSpec: {
              name: 'get_weather',
              description: 'Weather for a city',
              inputSchema: { json: WEATHER.parameters },
            },
          },
          {
            toolSpec: {
              name: 'get_time',
              description: 'Weather for a city',
              inputSchema: { json: WEATHER.parameters },
            },
          },
          HOUR_POINT,
          {
            toolSpec: {
              name: 'get_date',
              description: 'Weather for a city',
              inputSchema: { json: WEATHER.parameters },
            },
          },
          DEFAULT_POINT,
        ],
      },
    });
  });

  it('a request without cache_control gets no breakpoint anywhere', () => {
    const plain = {
      model: 'claude',
      max_tokens: 8,
      messages: [
        { role: 'system', content: 'sys' },
        { role: 'user', content: [{ type: 'text', text: 'hi' }] },
      ],
      tools: [{ type: 'function', function: WEATHER }],
    };
    const anthropic = JSON.stringify(openAIChatToAnthropicBackend(context(BACKENDS.anthropic)).request(plain).body);
    expect(anthropic).not.toContain('cache_control');
    const converse = JSON.stringify(openAIChatToBedrock(context(BACKENDS.converse)).request(plain).body);
    expect(converse).not.toContain('cachePoint');
  });

  it.each([
    ['an unknown type', { type: 'persistent' }, 'messages[0].content[0].cache_control'],
    ['an unknown ttl', { type: 'ephemeral', ttl: '24h' }, 'messages[0].content[0].cache_control'],
    ['a string', 'ephemeral', 'messages[0].content[0].cache_control'],
  ])('answers 400 naming the parameter for %s', (_name, cacheControl, param) => {
    const body = {
      model: 'claude',
      max_tokens: 8,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', cache_control: cacheControl }] }],
    };
    for (const translator of [
      openAIChatToAnthropicBackend(context(BACKENDS.anthropic)),
      openAIChatToBedrock(context(BACKENDS.converse)),
    ]) {
      expect(() => translator.request(structuredClone(body))).toThrow(expect.objectContaining({ status: 400, param }));
    }
  });
});

describe('prompt caching: Anthropic Messages clients', () => {
  const anthropicContext = (backend: BackendConfig) =>
    context(backend, { api: 'Anthropic', operation: 'messages', subpath: '/messages' });

  /** An Anthropic Messages request with breakpoints on the system prompt, content blocks and tools. */
  function anthropicRequest(): Record<string, unknown> {
    return {
      model: 'claude',
      max_tokens: 64,
      system: [
        { type: 'text', text: 'Rules.' },
        { type: 'text', text: 'MANUAL ...', cache_control: HOUR },
      ],
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Long document ...', cache_control: EPHEMERAL },
            { type: 'text', text: 'Summarise it.' },
          ],
        },
        {
          role: 'assistant',
          content: [{ type: 'tool_use', id: 'tu_1', name: 'get_weather', input: { city: 'Paris' } }],
        },
        {
          role: 'user',
          content: [
            {
              type: 'tool_result',
              tool_use_id: 'tu_1',
              content: [{ type: 'text', text: 'Sunny', cache_control: EPHEMERAL }],
            },
          ],
        },
      ],
      tools: [
        { name: 'get_weather', input_schema: WEATHER.parameters, cache_control: { type: 'ephemeral', ttl: '1h' } },
      ],
    };
  }

  it('Bedrock Converse: cachePoint blocks where the client put cache_control', () => {
    const upstream = anthropicMessagesToBedrock(anthropicContext(BACKENDS.converse)).request(anthropicRequest());
    expect(upstream.path).toBe('/model/claude-upstream/converse');
    expect(upstream.body).toEqual({
      inferenceConfig: { maxTokens: 64 },
      system: [{ text: 'Rules.' }, { text: 'MANUAL ...' }, HOUR_POINT],
      messages: [
        { role: 'user', content: [{ text: 'Long document ...' }, DEFAULT_POINT, { text: 'Summarise it.' }] },
        {
          role: 'assistant',
          content: [{ toolUse: { toolUseId: 'tu_1', name: 'get_weather', input: { city: 'Paris' } } }],
        },
        { role: 'user', content: [{ toolResult: { toolUseId: 'tu_1', content: [{ text: 'Sunny' }] } }, DEFAULT_POINT] },
      ],
      toolConfig: {
        tools: [{ toolSpec: { name: 'get_weather', inputSchema: { json: WEATHER.parameters } } }, HOUR_POINT],
      },
    });
  });

  it('Anthropic API, Vertex Anthropic and Bedrock InvokeModel: cache_control passes through untouched', () => {
    for (const backend of [BACKENDS.anthropic, BACKENDS.vertex, BACKENDS.invoke]) {
      const request = anthropicRequest();
      const upstream = anthropicMessagesPassthrough(anthropicContext(backend)).request(request);
      const { model: _model, ...rest } = anthropicRequest();
      expect(upstream.body).toMatchObject(rest);
    }
  });

  it('answers 400 for a malformed cache_control instead of dropping it', () => {
    const request = anthropicRequest();
    (request.tools as Array<Record<string, unknown>>)[0].cache_control = { type: 'ephemeral', ttl: 3600 };
    expect(() => anthropicMessagesToBedrock(anthropicContext(BACKENDS.converse)).request(request)).toThrow(
      expect.objectContaining({ status: 400, param: 'tools[0].cache_control' }),
    );
  });
});

describe('prompt caching: cache reads and writes in the usage', () => {
  it('Anthropic: reads are cached input, writes (and the one-hour part of them) are counted apart', () => {
    const translator = openAIChatToAnthropicBackend(context(BACKENDS.anthropic));
    translator.request(openAIRequest());
    const response = translator.response();
    response.head(200, { 'content-type': 'application/json' });
    const out = JSON.parse(
      response
        .body(
          Buffer.from(
            JSON.stringify({
              id: 'msg_1',
              type: 'message',
              role: 'assistant',
              content: [{ type: 'text', text: 'Sunny.' }],
              stop_reason: 'end_turn',
              usage: {
                input_tokens: 12,
                cache_read_input_tokens: 2048,
                cache_creation_input_tokens: 1500,
                cache_creation: { ephemeral_5m_input_tokens: 500, ephemeral_1h_input_tokens: 1000 },
                output_tokens: 9,
              },
            }),
          ),
          true,
        )
        .toString(),
    );
    expect(out.usage).toMatchObject({
      prompt_tokens: 3560,
      completion_tokens: 9,
      total_tokens: 3569,
      prompt_tokens_details: { cached_tokens: 2048 },
    });
    expect(response.usage).toEqual({
      input: 3560,
      output: 9,
      total: 3569,
      cachedInput: 2048,
      reasoning: 0,
      cacheWriteInput: 1500,
      cacheWrite1hInput: 1000,
    });
  });

  it('Bedrock Converse: cacheReadInputTokens, cacheWriteInputTokens and the one-hour cacheDetails', () => {
    const translator = openAIChatToBedrock(context(BACKENDS.converse));
    translator.request(openAIRequest());
    const response = translator.response();
    response.head(200, { 'content-type': 'application/json' });
    response.body(
      Buffer.from(
        JSON.stringify({
          output: { message: { role: 'assistant', content: [{ text: 'Sunny.' }] } },
          stopReason: 'end_turn',
          usage: {
            inputTokens: 12,
            outputTokens: 9,
            totalTokens: 3569,
            cacheReadInputTokens: 2048,
            cacheWriteInputTokens: 1500,
            cacheDetails: [
              { ttl: '1h', inputTokens: 1000 },
              { ttl: '5m', inputTokens: 500 },
            ],
          },
        }),
      ),
      true,
    );
    expect(response.usage).toEqual({
      input: 3560,
      output: 9,
      total: 3569,
      cachedInput: 2048,
      reasoning: 0,
      cacheWriteInput: 1500,
      cacheWrite1hInput: 1000,
    });
  });
});
