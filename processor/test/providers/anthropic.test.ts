import { encodeEventStreamMessage } from '../../src/eventstream';
import { anthropicMessagesPassthrough, openAIChatToAnthropicBackend } from '../../src/providers/anthropic';
import { anthropicMessagesToOpenAI } from '../../src/providers/anthropic-to-openai';
import { openAIChatToAnthropic } from '../../src/providers/openai-to-anthropic';
import type { BackendConfig } from '@ai-gateway-constructs/processor-config';
import { TranslationError, type TranslationContext } from '../../src/translate/types';
import { seededChunks } from './fixture-cases';

const anthropicBackend: BackendConfig = {
  name: 'anthropic',
  schema: { name: 'Anthropic', version: '2023-06-01' },
  endpoint: { hostname: 'api.anthropic.com', port: 443, tls: true },
};
const awsAnthropic: BackendConfig = {
  name: 'aws',
  schema: { name: 'AWSAnthropic', anthropicVersion: 'bedrock-2023-05-31' },
  endpoint: { hostname: 'bedrock-runtime.us-east-1.amazonaws.com', port: 443, tls: true },
};
const openaiBackend: BackendConfig = {
  name: 'openai',
  schema: { name: 'OpenAI', pathPrefix: '/v1' },
  endpoint: { hostname: 'api.openai.com', port: 443, tls: true },
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

function feed(
  response: ReturnType<ReturnType<typeof openAIChatToAnthropicBackend>['response']>,
  bytes: Buffer,
  maxChunk: number,
): string {
  const chunks = seededChunks(bytes, 9, maxChunk);
  return chunks.map((c, i) => response.body(c, i === chunks.length - 1).toString()).join('');
}

describe('OpenAI chat -> Anthropic Messages request', () => {
  it('maps system, images, tools, tool_choice, stop, sampling and merges tool results', () => {
    const body = openAIChatToAnthropic({
      model: 'm',
      max_tokens: 100,
      messages: [
        { role: 'system', content: 'sys one' },
        { role: 'developer', content: [{ type: 'text', text: 'sys two' }] },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'look' },
            { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,/9j/' } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
          ],
        },
        {
          role: 'assistant',
          tool_calls: [
            { id: 'a', type: 'function', function: { name: 'f', arguments: '{"x":1}' } },
            { id: 'b', type: 'function', function: { name: 'g', arguments: '' } },
          ],
        },
        { role: 'tool', tool_call_id: 'a', content: 'ra' },
        { role: 'tool', tool_call_id: 'b', content: [{ type: 'text', text: 'rb' }] },
      ],
      temperature: 0.5,
      top_p: 0.8,
      stop: 'STOP',
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
      tool_choice: 'required',
      parallel_tool_calls: false,
      user: 'u-1',
    });
    expect(body).toEqual({
      max_tokens: 100,
      system: [
        { type: 'text', text: 'sys one' },
        { type: 'text', text: 'sys two' },
      ],
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'look' },
            { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/' } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/cat.png' } },
          ],
        },
        {
          role: 'assistant',
          content: [
            { type: 'tool_use', id: 'a', name: 'f', input: { x: 1 } },
            { type: 'tool_use', id: 'b', name: 'g', input: {} },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'a', is_error: false, content: [{ type: 'text', text: 'ra' }] },
            { type: 'tool_result', tool_use_id: 'b', is_error: false, content: [{ type: 'text', text: 'rb' }] },
          ],
        },
      ],
      temperature: 0.5,
      top_p: 0.8,
      stop_sequences: ['STOP'],
      tools: [{ name: 'f', input_schema: { type: 'object' } }],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
      metadata: { user_id: 'u-1' },
    });
  });

  it('prefers max_completion_tokens and maps tool_choice variants', () => {
    const base = { messages: [{ role: 'user', content: 'hi' }] };
    expect(openAIChatToAnthropic({ ...base, max_tokens: 5, max_completion_tokens: 9 }).max_tokens).toBe(9);
    expect(openAIChatToAnthropic({ ...base, tool_choice: 'none' }).tool_choice).toEqual({ type: 'none' });
    expect(
      openAIChatToAnthropic({ ...base, tool_choice: { type: 'function', function: { name: 'f' } } }).tool_choice,
    ).toEqual({ type: 'tool', name: 'f' });
  });

  it.each([
    ['temperature', { temperature: 1.2 }, 400],
    ['top_p', { top_p: 2 }, 400],
    ['max_tokens', { max_tokens: -1 }, 400],
    ['n', { n: 3 }, 422],
    ['logit_bias', { logit_bias: { 1: 2 } }, 422],
    ['frequency_penalty', { frequency_penalty: 0.5 }, 422],
    ['response_format', { response_format: { type: 'json_object' } }, 422],
    ['response_format', { response_format: { type: 'json_schema', json_schema: {} } }, 400],
    ['response_format', { response_format: { type: 'regex' } }, 422],
    [
      'messages[0].content[0]',
      { messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] },
      422,
    ],
  ])('rejects %s', (param, extra, status) => {
    let error: TranslationError | undefined;
    try {
      openAIChatToAnthropic({ messages: [{ role: 'user', content: 'hi' }], ...extra });
    } catch (e) {
      error = e as TranslationError;
    }
    expect(error).toBeInstanceOf(TranslationError);
    expect(error?.status).toBe(status);
    expect(error?.param).toBe(param);
  });

  it('sets the Anthropic API path, model, stream flag and version header', () => {
    const request = openAIChatToAnthropicBackend(context(anthropicBackend, { stream: true })).request({
      model: 'claude',
      max_tokens: 5,
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(request.path).toBe('/v1/messages');
    expect(request.setHeaders).toEqual({ 'anthropic-version': '2023-06-01' });
    expect(request.body).toMatchObject({ model: 'claude-upstream', stream: true });
  });
});

describe('Anthropic -> OpenAI responses', () => {
  it('keeps text, thinking, tool calls and normalizes cached usage in JSON', () => {
    const response = openAIChatToAnthropicBackend(context(anthropicBackend)).response();
    response.head(200, { 'content-type': 'application/json' });
    const out = JSON.parse(
      feed(
        response,
        Buffer.from(
          JSON.stringify({
            id: 'msg_1',
            content: [
              { type: 'thinking', thinking: 'ponder', signature: 's' },
              { type: 'text', text: 'a' },
              { type: 'text', text: 'b' },
              { type: 'tool_use', id: 'tu', name: 'f', input: { q: 'x' } },
            ],
            stop_reason: 'tool_use',
            usage: {
              input_tokens: 10,
              output_tokens: 4,
              cache_read_input_tokens: 100,
              cache_creation_input_tokens: 50,
            },
          }),
        ),
        16,
      ),
    );
    expect(out.choices[0].message).toEqual({
      role: 'assistant',
      content: 'ab',
      reasoning_content: 'ponder',
      reasoning_signature: 's',
      tool_calls: [{ id: 'tu', type: 'function', function: { name: 'f', arguments: '{"q":"x"}' } }],
    });
    expect(out.choices[0].finish_reason).toBe('tool_calls');
    expect(out.usage).toEqual({
      prompt_tokens: 160,
      completion_tokens: 4,
      total_tokens: 164,
      completion_tokens_details: {},
      prompt_tokens_details: { cached_tokens: 100 },
    });
    expect(response.usage).toEqual({
      input: 160,
      output: 4,
      total: 164,
      cachedInput: 100,
      reasoning: 0,
      cacheWriteInput: 50,
    });
  });

  const textStream = [
    'event: message_start\ndata: ' +
      '{"type":"message_start","message":{"id":"msg_s","usage":' +
      '{"input_tokens":7,"cache_read_input_tokens":3,"output_tokens":1}}}\n\n',
    'event: ping\ndata: {"type":"ping"}\n\n',
    'event: content_block_start\ndata: ' +
      '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n',
    'event: content_block_delta\ndata: ' +
      '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hé"}}\n\n',
    'event: content_block_delta\ndata: ' +
      '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"llo 👋"}}\n\n',
    'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
    'event: message_delta\ndata: ' +
      '{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":12}}\n\n',
    'event: message_stop\ndata: {"type":"message_stop"}\n\n',
  ].join('');

  it('streams text as chunks with the role first, finish reason, then the usage chunk and [DONE]', () => {
    for (const size of [1, 7, 1000]) {
      const translator = openAIChatToAnthropicBackend(context(anthropicBackend, { stream: true }));
      translator.request({
        max_tokens: 5,
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: 'user', content: 'hi' }],
      });
      const response = translator.response();
      expect(response.head(200, { 'content-type': 'text/event-stream' }).stream).toBe(true);
      const lines = feed(response, Buffer.from(textStream), size).trim().split('\n\n');
      expect(lines.map((l) => (l === 'data: [DONE]' ? l : JSON.parse(l.slice(6))))).toEqual([
        {
          id: 'msg_s',
          choices: [{ index: 0, delta: { role: 'assistant', content: 'Hé' } }],
          created: 1000,
          model: 'claude',
          object: 'chat.completion.chunk',
        },
        {
          id: 'msg_s',
          choices: [{ index: 0, delta: { content: 'llo 👋' } }],
          created: 1000,
          model: 'claude',
          object: 'chat.completion.chunk',
        },
        {
          id: 'msg_s',
          choices: [{ index: 0, delta: {}, finish_reason: 'length' }],
          created: 1000,
          model: 'claude',
          object: 'chat.completion.chunk',
        },
        {
          id: 'msg_s',
          choices: [],
          created: 1000,
          model: 'claude',
          object: 'chat.completion.chunk',
          usage: {
            prompt_tokens: 10,
            completion_tokens: 12,
            total_tokens: 22,
            completion_tokens_details: {},
            prompt_tokens_details: { cached_tokens: 3 },
          },
        },
        'data: [DONE]',
      ]);
      expect(response.usage).toEqual({ input: 10, output: 12, total: 22, cachedInput: 3, reasoning: 0 });
    }
  });

  it('sends no usage chunk to a client that did not ask for one, and still counts the usage', () => {
    for (const streamOptions of [undefined, { include_usage: false }]) {
      const translator = openAIChatToAnthropicBackend(context(anthropicBackend, { stream: true }));
      translator.request({
        max_tokens: 5,
        stream: true,
        stream_options: streamOptions,
        messages: [{ role: 'user', content: 'hi' }],
      });
      const response = translator.response();
      response.head(200, { 'content-type': 'text/event-stream' });
      const events = feed(response, Buffer.from(textStream), 7).trim().split('\n\n');
      expect(events).toHaveLength(4);
      expect(events.at(-1)).toBe('data: [DONE]');
      for (const event of events.slice(0, -1)) {
        const chunk = JSON.parse(event.slice(6)) as { choices: unknown[]; usage?: unknown };
        expect(chunk.choices).toHaveLength(1);
        expect(chunk.usage).toBeUndefined();
      }
      expect(response.usage).toEqual({ input: 10, output: 12, total: 22, cachedInput: 3, reasoning: 0 });
    }
  });

  it('reads Bedrock InvokeModelWithResponseStream (base64 bytes in eventstream chunks)', () => {
    const events = textStream
      .trim()
      .split('\n\n')
      .map((block) => block.split('\n')[1].slice(6));
    const bytes = Buffer.concat(
      events.map((json) =>
        encodeEventStreamMessage(
          { ':event-type': 'chunk', ':content-type': 'application/json', ':message-type': 'event' },
          Buffer.from(JSON.stringify({ bytes: Buffer.from(json).toString('base64') })),
        ),
      ),
    );
    const ctx = context(awsAnthropic, { stream: true });
    const translator = openAIChatToAnthropicBackend(ctx);
    expect(
      translator.request({ model: 'claude', max_tokens: 5, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    ).toMatchObject({
      path: '/model/claude-upstream/invoke-with-response-stream',
      body: { anthropic_version: 'bedrock-2023-05-31', max_tokens: 5 },
    });
    const response = translator.response();
    response.head(200, { 'content-type': 'application/vnd.amazon.eventstream' });
    const out = feed(response, bytes, 13);
    expect(out).toContain('"delta":{"role":"assistant","content":"Hé"}');
    expect(out.trim().endsWith('data: [DONE]')).toBe(true);
    expect(response.usage).toEqual({ input: 10, output: 12, total: 22, cachedInput: 3, reasoning: 0 });

    const passthrough = anthropicMessagesPassthrough(
      context(awsAnthropic, { api: 'Anthropic', operation: 'messages', stream: true }),
    ).response();
    passthrough.head(200, { 'content-type': 'application/vnd.amazon.eventstream' });
    expect(passthrough.passthroughBody).toBe(false);
    const sse = feed(passthrough, bytes, 29);
    expect(
      sse
        .split('\n\n')
        .filter(Boolean)
        .map((b) => b.split('\n')[0]),
    ).toEqual([
      'event: message_start',
      'event: ping',
      'event: content_block_start',
      'event: content_block_delta',
      'event: content_block_delta',
      'event: content_block_stop',
      'event: message_delta',
      'event: message_stop',
    ]);
    expect(passthrough.usage).toEqual({ input: 10, output: 12, total: 22, cachedInput: 3, reasoning: 0 });
  });
});

describe('Anthropic Messages clients on an OpenAI backend', () => {
  const ctx = context(openaiBackend, {
    api: 'Anthropic',
    operation: 'messages',
    subpath: '/messages',
    stream: true,
    upstreamModel: 'gpt-4o',
  });

  it('translates the request with content blocks, tool results and tool choice', () => {
    const request = anthropicMessagesToOpenAI(ctx).request({
      model: 'claude',
      max_tokens: 64,
      stream: true,
      system: [{ type: 'text', text: 'sys' }],
      stop_sequences: ['x'],
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'q' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AA' } },
          ],
        },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'calling' },
            { type: 'tool_use', id: 't', name: 'f', input: { a: 1 } },
          ],
        },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: 'r' }] },
      ],
      tools: [{ name: 'f', input_schema: { type: 'object' } }],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
    });
    expect(request.path).toBe('/v1/chat/completions');
    expect(request.body).toEqual({
      model: 'gpt-4o',
      max_completion_tokens: 64,
      stop: ['x'],
      stream: true,
      stream_options: { include_usage: true },
      messages: [
        { role: 'system', content: 'sys' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'q' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AA' } },
          ],
        },
        {
          role: 'assistant',
          content: 'calling',
          tool_calls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }],
        },
        { role: 'tool', tool_call_id: 't', content: 'r' },
      ],
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
      tool_choice: 'required',
      parallel_tool_calls: false,
    });
  });

  it('streams OpenAI chunks back as Anthropic events, usage in message_delta', () => {
    const response = anthropicMessagesToOpenAI(ctx).response();
    response.head(200, { 'content-type': 'text/event-stream' });
    const chunk = (delta: object, finish: string | null = null) =>
      'data: ' +
      JSON.stringify({
        id: 'c1',
        model: 'gpt-4o',
        object: 'chat.completion.chunk',
        choices: [{ index: 0, delta, finish_reason: finish }],
      }) +
      '\n\n';
    const upstream = [
      chunk({ role: 'assistant', content: '' }),
      chunk({ content: 'Hi' }),
      chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"a"' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: ':1}' } }] }),
      chunk({}, 'tool_calls'),
      'data: ' +
        JSON.stringify({
          id: 'c1',
          choices: [],
          usage: {
            prompt_tokens: 20,
            completion_tokens: 5,
            total_tokens: 25,
            prompt_tokens_details: { cached_tokens: 4 },
          },
        }) +
        '\n\n',
      'data: [DONE]\n\n',
    ].join('');
    const events = feed(response, Buffer.from(upstream), 11)
      .trim()
      .split('\n\n')
      .map((b) => JSON.parse(b.split('\n')[1].slice(6)));
    expect(events.map((e) => e.type)).toEqual([
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_stop',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    expect(events[4]).toEqual({
      type: 'content_block_start',
      index: 1,
      content_block: { type: 'tool_use', id: 'call_1', name: 'f', input: {} },
    });
    expect(events[8]).toEqual({
      type: 'message_delta',
      delta: { stop_reason: 'tool_use', stop_sequence: null },
      usage: { cache_creation_input_tokens: 0, cache_read_input_tokens: 4, input_tokens: 16, output_tokens: 5 },
    });
    expect(response.usage).toMatchObject({ input: 20, output: 5, total: 25, cachedInput: 4 });
  });

  it('rejects parameters OpenAI cannot express', () => {
    expect(() => anthropicMessagesToOpenAI(ctx).request({ model: 'c', max_tokens: 1, top_k: 5, messages: [] })).toThrow(
      /parameter "top_k" is not supported/,
    );
  });
});

describe('OpenAI reasoning_effort -> Claude thinking', () => {
  const base = { model: 'c', messages: [{ role: 'user', content: 'hi' }] };
  const thinkingOf = (extra: Record<string, unknown>) => openAIChatToAnthropic({ ...base, ...extra }).thinking;
  const errorOf = (extra: Record<string, unknown>): TranslationError => {
    try {
      openAIChatToAnthropic({ ...base, ...extra });
    } catch (e) {
      return e as TranslationError;
    }
    throw new Error('no error');
  };

  it.each([
    ['minimal', 1024],
    ['low', 2048],
    ['medium', 8192],
    ['high', 24576],
    ['xhigh', 32768],
    ['max', 63999],
  ])('%s is a budget of %i tokens (below max_tokens)', (effort, budget) => {
    expect(thinkingOf({ reasoning_effort: effort, max_completion_tokens: 64000 })).toEqual({
      type: 'enabled',
      budget_tokens: budget,
    });
  });

  it('caps the budget below max_tokens, leaves thinking off for none, passes a vendor thinking object', () => {
    expect(thinkingOf({ reasoning_effort: 'high', max_tokens: 2000 })).toEqual({
      type: 'enabled',
      budget_tokens: 1999,
    });
    expect(thinkingOf({ reasoning_effort: 'none', max_tokens: 100 })).toBeUndefined();
    expect(thinkingOf({ reasoning_effort: null, max_tokens: 100 })).toBeUndefined();
    const vendor = { type: 'adaptive' };
    expect(thinkingOf({ thinking: vendor, max_tokens: 100 })).toBe(vendor);
  });

  it.each([
    [{ reasoning_effort: 'medium' }, 'max_tokens'],
    [{ reasoning_effort: 'medium', max_completion_tokens: 1024 }, 'max_completion_tokens'],
    [{ reasoning_effort: 'extreme', max_tokens: 4096 }, 'reasoning_effort'],
    [{ reasoning_effort: 3, max_tokens: 4096 }, 'reasoning_effort'],
    [
      { reasoning_effort: 'low', thinking: { type: 'enabled', budget_tokens: 2000 }, max_tokens: 4096 },
      'reasoning_effort',
    ],
  ])('%j is a 400 naming %s', (extra, param) => {
    const error = errorOf(extra);
    expect(error).toBeInstanceOf(TranslationError);
    expect(error.status).toBe(400);
    expect(error.param).toBe(param);
    expect(error.message).toContain(param);
  });
});
