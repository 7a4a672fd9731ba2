import type { BackendConfig } from '@ai-gateway-constructs/processor-config';
import { accumulateResponse } from 'openai/lib/responses/ResponseAccumulator';
import type { Response as SdkResponse, ResponseStreamEvent } from 'openai/resources/responses/responses';
import { encodeEventStreamMessage } from '../../src/eventstream';
import { genAiOperationName } from '../../src/tracing';
import { TRANSLATORS, findTranslator } from '../../src/translate/registry';
import { responsesRequestToChat } from '../../src/translate/responses';
import { TranslationError, type TranslationContext, type Translator } from '../../src/translate/types';
import { seededChunks } from '../providers/fixture-cases';

const endpoint = { hostname: 'upstream', port: 443, tls: true };
const anthropic: BackendConfig = { name: 'anthropic', schema: { name: 'Anthropic', version: '2023-06-01' }, endpoint };
const awsAnthropic: BackendConfig = {
  name: 'aws-anthropic',
  schema: { name: 'AWSAnthropic', anthropicVersion: 'bedrock-2023-05-31' },
  endpoint,
};
const bedrock: BackendConfig = { name: 'bedrock', schema: { name: 'AWSBedrock' }, endpoint };
const gemini: BackendConfig = {
  name: 'gemini',
  schema: { name: 'GCPVertexAI', projectId: 'p', region: 'r' },
  endpoint,
};
const openai: BackendConfig = { name: 'openai', schema: { name: 'OpenAI', pathPrefix: '/v1' }, endpoint };
const azure: BackendConfig = { name: 'azure', schema: { name: 'AzureOpenAI', apiVersion: '2025-04-01' }, endpoint };

function context(backend: BackendConfig, stream: boolean): TranslationContext {
  return {
    api: 'OpenAI',
    operation: 'responses',
    subpath: '/responses',
    query: '',
    requestModel: 'm',
    upstreamModel: 'up-m',
    backend,
    stream,
    forceStreamUsage: false,
    requestId: 'req-1',
    nowSeconds: 1000,
  };
}

function translator(backend: BackendConfig, stream = false): Translator {
  const factory = findTranslator('OpenAI', 'responses', backend.schema.name, TRANSLATORS);
  if (!factory) throw new Error(`no responses translator for ${backend.schema.name}`);
  return factory(context(backend, stream));
}

const WEATHER_TOOL = {
  type: 'function',
  name: 'get_weather',
  description: 'the weather',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  strict: true,
};

/** A second turn: the question, the model's call and its output. */
const ROUND_TRIP = {
  model: 'm',
  instructions: 'be brief',
  max_output_tokens: 2000,
  temperature: 0.5,
  input: [
    { role: 'user', content: [{ type: 'input_text', text: 'weather in Paris?' }] },
    { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
    { type: 'function_call_output', call_id: 'call_1', output: '{"temp":18}' },
  ],
  tools: [WEATHER_TOOL],
  tool_choice: 'auto',
};

describe('Responses request -> the backend (through its chat translator)', () => {
  it('Anthropic: messages, system, tools, tool_choice, max_tokens and the function call round trip', () => {
    const upstream = translator(anthropic).request(structuredClone(ROUND_TRIP));
    expect(upstream.path).toBe('/v1/messages');
    expect(upstream.setHeaders).toEqual({ 'anthropic-version': '2023-06-01' });
    expect(upstream.body).toEqual({
      model: 'up-m',
      max_tokens: 2000,
      system: [{ type: 'text', text: 'be brief' }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'weather in Paris?' }] },
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
              content: [{ type: 'text', text: '{"temp":18}' }],
            },
          ],
        },
      ],
      temperature: 0.5,
      tools: [
        {
          name: 'get_weather',
          description: 'the weather',
          input_schema: WEATHER_TOOL.parameters,
          strict: true,
        },
      ],
      tool_choice: { type: 'auto' },
    });
  });

  it('Bedrock Converse: the same conversation as Converse blocks', () => {
    const upstream = translator(bedrock, true).request({ ...structuredClone(ROUND_TRIP), stream: true });
    expect(upstream.path).toBe('/model/up-m/converse-stream');
    expect(upstream.body).toEqual({
      inferenceConfig: { maxTokens: 2000, temperature: 0.5 },
      system: [{ text: 'be brief' }],
      messages: [
        { role: 'user', content: [{ text: 'weather in Paris?' }] },
        {
          role: 'assistant',
          content: [{ toolUse: { toolUseId: 'call_1', name: 'get_weather', input: { city: 'Paris' } } }],
        },
        { role: 'user', content: [{ toolResult: { toolUseId: 'call_1', content: [{ text: '{"temp":18}' }] } }] },
      ],
      toolConfig: {
        tools: [
          {
            toolSpec: {
              name: 'get_weather',
              description: 'the weather',
              inputSchema: { json: WEATHER_TOOL.parameters },
              strict: true,
            },
          },
        ],
        toolChoice: { auto: {} },
      },
    });
  });

  it('Gemini: contents, systemInstruction, functionDeclarations and generationConfig', () => {
    const upstream = translator(gemini, true).request({ ...structuredClone(ROUND_TRIP), stream: true });
    expect(upstream.path).toBe(
      '/v1/projects/p/locations/r/publishers/google/models/up-m:streamGenerateContent?alt=sse',
    );
    expect(upstream.body).toEqual({
      contents: [
        { role: 'user', parts: [{ text: 'weather in Paris?' }] },
        { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }] },
        { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temp: 18 } } }] },
      ],
      systemInstruction: { parts: [{ text: 'be brief' }] },
      tools: [
        {
          functionDeclarations: [
            { name: 'get_weather', description: 'the weather', parameters: WEATHER_TOOL.parameters },
          ],
        },
      ],
      toolConfig: { functionCallingConfig: { mode: 'AUTO' } },
      generationConfig: { maxOutputTokens: 2000, temperature: 0.5 },
    });
  });

  it('AWSAnthropic (InvokeModel): a string input, json_schema text format, reasoning effort', () => {
    const upstream = translator(awsAnthropic).request({
      model: 'm',
      input: 'hi',
      max_output_tokens: 4096,
      text: { format: { type: 'json_schema', name: 'answer', schema: { type: 'object' }, strict: true } },
      reasoning: { effort: 'low' },
    });
    expect(upstream.path).toBe('/model/up-m/invoke');
    expect(upstream.body).toEqual({
      anthropic_version: 'bedrock-2023-05-31',
      max_tokens: 4096,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
      thinking: { type: 'enabled', budget_tokens: 2048 },
      output_config: { format: { type: 'json_schema', schema: { type: 'object' } } },
    });
  });

  it('maps the rest to the chat request the backend translator reads', () => {
    const { chat, echo } = responsesRequestToChat(
      {
        model: 'm',
        input: [
          { type: 'message', role: 'developer', content: 'dev' },
          {
            role: 'user',
            content: [
              { type: 'input_text', text: 'look' },
              { type: 'input_image', image_url: 'https://example.com/a.png', detail: 'low' },
              { type: 'input_file', file_data: 'data:application/pdf;base64,JVBE', filename: 'a.pdf' },
            ],
          },
          {
            type: 'reasoning',
            id: 'rs_1',
            summary: [],
            content: [{ type: 'reasoning_text', text: 'think' }],
            encrypted_content: 'sig',
          },
          { role: 'assistant', content: [{ type: 'output_text', text: 'calling' }] },
          { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
          { type: 'function_call', call_id: 'c2', name: 'g', arguments: '{"a":1}' },
          {
            type: 'function_call_output',
            call_id: 'c1',
            output: [{ type: 'input_text', text: 'one' }],
          },
          { type: 'function_call_output', call_id: 'c2', output: 'two' },
          { role: 'assistant', content: 'done' },
        ],
        tool_choice: { type: 'function', name: 'f' },
        tools: [{ type: 'function', name: 'f', parameters: null }],
        parallel_tool_calls: false,
        top_p: 0.9,
        text: { format: { type: 'json_object' } },
        stream: true,
        store: false,
        include: ['reasoning.encrypted_content'],
        metadata: { trace: 't1' },
        user: 'u1',
        safety_identifier: 's1',
      },
      'Anthropic',
    );
    expect(chat).toEqual({
      model: 'm',
      messages: [
        { role: 'developer', content: 'dev' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'look' },
            { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'low' } },
            { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBE', filename: 'a.pdf' } },
          ],
        },
        {
          role: 'assistant',
          reasoning_content: 'think',
          reasoning_signature: 'sig',
          content: 'calling',
          tool_calls: [
            { id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } },
            { id: 'c2', type: 'function', function: { name: 'g', arguments: '{"a":1}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'c1', content: [{ type: 'text', text: 'one' }] },
        { role: 'tool', tool_call_id: 'c2', content: 'two' },
        { role: 'assistant', content: 'done' },
      ],
      tools: [{ type: 'function', function: { name: 'f' } }],
      tool_choice: { type: 'function', function: { name: 'f' } },
      parallel_tool_calls: false,
      top_p: 0.9,
      response_format: { type: 'json_object' },
      stream: true,
      stream_options: { include_usage: true },
      user: 'u1',
      safety_identifier: 's1',
    });
    expect(echo.metadata).toEqual({ trace: 't1' });
    expect(echo.parallelToolCalls).toBe(false);
    expect(echo.toolChoice).toEqual({ type: 'function', name: 'f' });
  });

  it.each([
    [{ previous_response_id: 'resp_1' }, 'previous_response_id'],
    [{ conversation: 'conv_1' }, 'conversation'],
    [{ store: true }, 'store'],
    [{ background: true }, 'background'],
    [{ tools: [{ type: 'web_search' }] }, 'tools[0]'],
    [{ tools: [{ type: 'file_search', vector_store_ids: ['v'] }] }, 'tools[0]'],
    [{ include: ['file_search_call.results'] }, 'include[0]'],
    [{ input: [{ type: 'item_reference', id: 'msg_1' }] }, 'input[0]'],
    [
      { input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file_1' }] }] },
      'input[0].content[0].file_id',
    ],
    [{ prompt: { id: 'pmpt_1' } }, 'prompt'],
    [{ tool_choice: { type: 'web_search_preview' } }, 'tool_choice'],
    [{ truncation: 'auto' }, 'truncation'],
  ])('refuses %j with 422 naming %s and the backend', (extra, param) => {
    let error: unknown;
    try {
      translator(bedrock).request({ model: 'm', input: 'hi', ...extra });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TranslationError);
    const failure = error as TranslationError;
    expect(failure.status).toBe(422);
    expect(failure.param).toBe(param);
    expect(failure.message).toContain(`"${param}"`);
    expect(failure.message).toContain('AWSBedrock backend');
  });

  it.each([
    [{ input: 42 }, 'input'],
    [{ input: [{ type: 'function_call', name: 'f', arguments: '{}' }] }, 'input[0]'],
    [{ max_output_tokens: 0 }, 'max_output_tokens'],
    [{ text: { format: { type: 'json_schema', schema: {} } } }, 'text.format.name'],
    [{ metadata: { key: 1 } }, 'metadata'],
  ])('answers the malformed %j with 400 naming %s', (extra, param) => {
    expect(() => translator(anthropic).request({ model: 'm', input: 'hi', ...extra })).toThrow(
      expect.objectContaining({ status: 400, param }),
    );
  });

  it('meters the OpenAI passthrough from the Response and from response.completed', () => {
    const usage = {
      input_tokens: 9,
      input_tokens_details: { cached_tokens: 4 },
      output_tokens: 5,
      output_tokens_details: { reasoning_tokens: 2 },
      total_tokens: 14,
    };
    const json = translator(openai);
    json.request({ model: 'm', input: 'hi' });
    const body = Buffer.from(
      JSON.stringify({ id: 'resp_1', object: 'response', output: [], usage, user: null, metadata: { usage: 'x' } }),
    );
    const whole = answer(json, 200, 'application/json', body, 10);
    expect(whole.text).toBe(body.toString());
    expect(whole.response.usage).toEqual({ input: 9, output: 5, total: 14, cachedInput: 4, reasoning: 2 });
    const streamed = translator(openai, true);
    streamed.request({ model: 'm', input: 'hi', stream: true });
    const events = sse([
      { type: 'response.created', sequence_number: 0, response: { id: 'resp_1', usage: null } },
      { type: 'response.completed', sequence_number: 1, response: { id: 'resp_1', usage } },
    ]);
    const stream = answer(streamed, 200, 'text/event-stream', events, 9);
    expect(stream.head.stream).toBe(true);
    expect(stream.text).toBe(events.toString());
    expect(stream.response.usage).toEqual({ input: 9, output: 5, total: 14, cachedInput: 4, reasoning: 2 });
  });

  it('leaves OpenAI and Azure OpenAI on the passthrough', () => {
    const body = { model: 'm', input: 'hi', previous_response_id: 'resp_1', store: true };
    const open = translator(openai).request(body);
    expect(open.path).toBe('/v1/responses');
    expect(open.body).toBe(body);
    const az = translator(azure).request({ ...body });
    expect(az.path).toBe('/openai/responses?api-version=2025-04-01');
    const native = translator({ ...openai, schema: { name: 'OpenAI', pathPrefix: '/v1', responsesApi: 'native' } });
    expect(native.request({ ...body }).path).toBe('/v1/responses');
  });

  it('translates to Chat Completions for an OpenAI-compatible server that speaks only those', () => {
    const chatOnly: BackendConfig = {
      ...openai,
      schema: { name: 'OpenAI', pathPrefix: '/openai/v1', responsesApi: 'chatCompletions' },
    };
    const upstream = translator(chatOnly, true).request({
      model: 'm',
      instructions: 'be brief',
      input: 'hi',
      max_output_tokens: 64,
      stream: true,
    });
    expect(upstream.path).toBe('/openai/v1/chat/completions');
    expect(upstream.body).toEqual({
      model: 'up-m',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hi' },
      ],
      max_completion_tokens: 64,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(() => translator(chatOnly).request({ model: 'm', input: 'hi', previous_response_id: 'resp_1' })).toThrow(
      /previous_response_id/,
    );
  });
});

function answer(
  t: Translator,
  status: number,
  contentType: string,
  bytes: Buffer,
  maxChunk = bytes.length,
  headers: Record<string, string> = {},
): {
  head: ReturnType<ReturnType<Translator['response']>['head']>;
  text: string;
  response: ReturnType<Translator['response']>;
} {
  const response = t.response();
  const head = response.head(status, { 'content-type': contentType, ...headers });
  const chunks = seededChunks(bytes, 7, Math.max(1, maxChunk));
  const text = chunks.map((c, i) => response.body(c, i === chunks.length - 1).toString()).join('');
  return { head, text, response };
}

function events(text: string): ResponseStreamEvent[] {
  const out: ResponseStreamEvent[] = [];
  for (const block of text.split('\n\n')) {
    if (block.trim() === '') continue;
    const lines = block.split('\n');
    const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
    const data = JSON.parse(lines.find((l) => l.startsWith('data: '))!.slice(6)) as ResponseStreamEvent;
    expect(event).toBe(data.type);
    out.push(data);
  }
  return out;
}

/** The event stream as the openai SDK's accumulator reads it: it throws on an event out of place. */
function accumulate(list: ResponseStreamEvent[]): SdkResponse {
  let snapshot: SdkResponse | undefined;
  list.forEach((event, i) => {
    expect(event.sequence_number).toBe(i);
    snapshot = accumulateResponse(event, snapshot);
  });
  return snapshot!;
}

function sse(list: object[]): Buffer {
  return Buffer.from(
    list.map((e) => `event: ${(e as { type: string }).type}\ndata: ${JSON.stringify(e)}\n\n`).join(''),
  );
}

const ANTHROPIC_MESSAGE = {
  id: 'msg_a',
  type: 'message',
  role: 'assistant',
  model: 'claude',
  content: [
    { type: 'thinking', thinking: 'Paris, so call the tool.', signature: 'sig-1' },
    { type: 'text', text: 'Let me check.' },
    { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
  ],
  stop_reason: 'tool_use',
  usage: { input_tokens: 10, cache_read_input_tokens: 4, cache_creation_input_tokens: 2, output_tokens: 7 },
};

const ANTHROPIC_STREAM = [
  {
    type: 'message_start',
    message: {
      id: 'msg_a',
      type: 'message',
      role: 'assistant',
      content: [],
      usage: { input_tokens: 10, output_tokens: 1 },
    },
  },
  { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } },
  { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Paris, ' } },
  { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'so call the tool.' } },
  { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'sig-1' } },
  { type: 'content_block_stop', index: 0 },
  { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } },
  { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'Let me ' } },
  { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'check.' } },
  { type: 'content_block_stop', index: 1 },
  {
    type: 'content_block_start',
    index: 2,
    content_block: { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} },
  },
  { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{"city":' } },
  { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '"Paris"}' } },
  { type: 'content_block_stop', index: 2 },
  { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 7 } },
  { type: 'message_stop' },
];

describe('the backend answer -> Responses', () => {
  it('Anthropic JSON: reasoning, message and function_call items, usage as metered', () => {
    const t = translator(anthropic);
    t.request({ model: 'm', input: 'weather?', tools: [WEATHER_TOOL], metadata: { k: 'v' } });
    const { head, text, response } = answer(t, 200, 'application/json', Buffer.from(JSON.stringify(ANTHROPIC_MESSAGE)));
    expect(head.stream).toBe(false);
    const body = JSON.parse(text) as SdkResponse;
    expect(body).toEqual({
      id: 'resp_req1',
      object: 'response',
      created_at: 1000,
      status: 'completed',
      background: false,
      error: null,
      incomplete_details: null,
      instructions: null,
      max_output_tokens: null,
      model: 'm',
      output: [
        {
          type: 'reasoning',
          id: 'rs_req1_0',
          summary: [],
          content: [{ type: 'reasoning_text', text: 'Paris, so call the tool.' }],
          encrypted_content: 'sig-1',
          status: 'completed',
        },
        {
          type: 'message',
          id: 'msg_req1_1',
          status: 'completed',
          role: 'assistant',
          content: [{ type: 'output_text', text: 'Let me check.', annotations: [], logprobs: [] }],
        },
        {
          type: 'function_call',
          id: 'fc_req1_2',
          call_id: 'toolu_1',
          name: 'get_weather',
          arguments: '{"city":"Paris"}',
          status: 'completed',
        },
      ],
      parallel_tool_calls: true,
      previous_response_id: null,
      reasoning: { effort: null, summary: null },
      store: false,
      temperature: null,
      text: { format: { type: 'text' } },
      tool_choice: 'auto',
      tools: [{ ...WEATHER_TOOL }],
      top_p: null,
      truncation: 'disabled',
      usage: {
        input_tokens: 16,
        input_tokens_details: { cached_tokens: 4, cache_write_tokens: 2 },
        output_tokens: 7,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 23,
      },
      metadata: { k: 'v' },
    });
    expect(response.usage).toMatchObject({ input: 16, output: 7, total: 23, cachedInput: 4, cacheWriteInput: 2 });
  });

  it('a refusal (Anthropic stop_reason refusal) is an incomplete response for the content filter', () => {
    const t = translator(anthropic);
    t.request({ model: 'm', input: 'bad' });
    const message = {
      ...ANTHROPIC_MESSAGE,
      content: [{ type: 'text', text: 'I cannot help.' }],
      stop_reason: 'refusal',
    };
    const body = JSON.parse(
      answer(t, 200, 'application/json', Buffer.from(JSON.stringify(message))).text,
    ) as SdkResponse;
    expect(body.status).toBe('incomplete');
    expect(body.incomplete_details).toEqual({ reason: 'content_filter' });
    expect(body.output).toEqual([
      {
        type: 'message',
        id: 'msg_req1_0',
        status: 'incomplete',
        role: 'assistant',
        content: [{ type: 'output_text', text: 'I cannot help.', annotations: [], logprobs: [] }],
      },
    ]);
  });

  it('the token limit is an incomplete response for max_output_tokens', () => {
    const t = translator(anthropic);
    t.request({ model: 'm', input: 'long', max_output_tokens: 5 });
    const message = { ...ANTHROPIC_MESSAGE, content: [{ type: 'text', text: 'Once upon' }], stop_reason: 'max_tokens' };
    const body = JSON.parse(
      answer(t, 200, 'application/json', Buffer.from(JSON.stringify(message))).text,
    ) as SdkResponse;
    expect(body.status).toBe('incomplete');
    expect(body.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(body.max_output_tokens).toBe(5);
  });

  it('Anthropic SSE, fed in small pieces: the Responses event vocabulary the SDK accumulates, usage last', () => {
    const t = translator(anthropic, true);
    t.request({ model: 'm', input: 'weather?', stream: true, tools: [WEATHER_TOOL] });
    const { head, text, response } = answer(t, 200, 'text/event-stream', sse(ANTHROPIC_STREAM), 11);
    expect(head.stream).toBe(true);
    expect(text).not.toContain('chat.completion');
    expect(text).not.toContain('[DONE]');
    const list = events(text);
    expect(list.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.reasoning_text.delta',
      'response.reasoning_text.delta',
      'response.reasoning_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const final = accumulate(list);
    expect(final.status).toBe('completed');
    expect(final.output_text).toBe('Let me check.');
    expect(final.output).toEqual([
      {
        type: 'reasoning',
        id: 'rs_req1_0',
        summary: [],
        content: [{ type: 'reasoning_text', text: 'Paris, so call the tool.' }],
        encrypted_content: 'sig-1',
        status: 'completed',
      },
      {
        type: 'message',
        id: 'msg_req1_1',
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', text: 'Let me check.', annotations: [], logprobs: [] }],
      },
      {
        type: 'function_call',
        id: 'fc_req1_2',
        call_id: 'toolu_1',
        name: 'get_weather',
        arguments: '{"city":"Paris"}',
        status: 'completed',
      },
    ]);
    expect(final.usage).toEqual({
      input_tokens: 10,
      input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
      output_tokens: 7,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 17,
    });
    expect(response.usage).toMatchObject({ input: 10, output: 7, total: 17 });
  });

  it('Bedrock ConverseStream: text and a tool call, usage from the metadata event', () => {
    const t = translator(bedrock, true);
    t.request({ model: 'm', input: 'weather?', stream: true, tools: [WEATHER_TOOL] });
    const frame = (type: string, payload: unknown) =>
      encodeEventStreamMessage(
        { ':event-type': type, ':content-type': 'application/json', ':message-type': 'event' },
        Buffer.from(JSON.stringify(payload)),
      );
    const bytes = Buffer.concat([
      frame('messageStart', { role: 'assistant' }),
      frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Checking.' } }),
      frame('contentBlockStop', { contentBlockIndex: 0 }),
      frame('contentBlockStart', {
        contentBlockIndex: 1,
        start: { toolUse: { toolUseId: 'tooluse_1', name: 'get_weather' } },
      }),
      frame('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '{"city":"Paris"}' } } }),
      frame('contentBlockStop', { contentBlockIndex: 1 }),
      frame('messageStop', { stopReason: 'tool_use' }),
      frame('metadata', {
        usage: { inputTokens: 20, outputTokens: 9, totalTokens: 29, cacheReadInputTokens: 5 },
        metrics: { latencyMs: 1 },
      }),
    ]);
    const { text, response } = answer(t, 200, 'application/vnd.amazon.eventstream', bytes, 13);
    const final = accumulate(events(text));
    expect(final.output.map((item) => item.type)).toEqual(['message', 'function_call']);
    expect(final.output_text).toBe('Checking.');
    expect(final.output[1]).toMatchObject({ call_id: 'tooluse_1', name: 'get_weather', arguments: '{"city":"Paris"}' });
    expect(final.usage).toEqual({
      input_tokens: 25,
      input_tokens_details: { cached_tokens: 5, cache_write_tokens: 0 },
      output_tokens: 9,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 34,
    });
    expect(response.usage).toMatchObject({ input: 25, output: 9, total: 34, cachedInput: 5 });
  });

  it('Gemini SSE: thoughts as reasoning, text, usage with the thought tokens', () => {
    const t = translator(gemini, true);
    t.request({ model: 'm', input: 'hi', stream: true });
    const data = (value: unknown) => `data: ${JSON.stringify(value)}\r\n\r\n`;
    const bytes = Buffer.from(
      data({ candidates: [{ content: { role: 'model', parts: [{ text: 'pondering', thought: true }] } }] }) +
        data({ candidates: [{ content: { role: 'model', parts: [{ text: 'Hel' }] } }] }) +
        data({
          candidates: [{ content: { role: 'model', parts: [{ text: 'lo' }] }, finishReason: 'STOP' }],
          usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 2, thoughtsTokenCount: 4, totalTokenCount: 9 },
        }),
    );
    const { text, response } = answer(t, 200, 'text/event-stream', bytes, 5);
    const final = accumulate(events(text));
    expect(final.output_text).toBe('Hello');
    expect(final.output[0]).toMatchObject({
      type: 'reasoning',
      content: [{ type: 'reasoning_text', text: 'pondering' }],
    });
    expect(final.usage).toMatchObject({
      input_tokens: 3,
      output_tokens: 6,
      output_tokens_details: { reasoning_tokens: 4 },
    });
    expect(response.usage).toMatchObject({ input: 3, output: 6, reasoning: 4, total: 9 });
  });

  it('the length finish of a stream ends with response.incomplete', () => {
    const t = translator(anthropic, true);
    t.request({ model: 'm', input: 'x', stream: true, max_output_tokens: 3 });
    const list = events(
      answer(
        t,
        200,
        'text/event-stream',
        sse([
          ANTHROPIC_STREAM[0],
          { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
          { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Once' } },
          { type: 'message_delta', delta: { stop_reason: 'max_tokens' }, usage: { output_tokens: 3 } },
          { type: 'message_stop' },
        ]),
      ).text,
    );
    const last = list[list.length - 1];
    expect(last.type).toBe('response.incomplete');
    const final = accumulate(list);
    expect(final.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(final.output[0]).toMatchObject({ type: 'message', status: 'incomplete' });
  });

  it('a cut stream ends with an error event and response.failed, the usage counted so far metered', () => {
    const t = translator(anthropic, true);
    t.request({ model: 'm', input: 'x', stream: true });
    const { text, response } = answer(t, 200, 'text/event-stream', sse(ANTHROPIC_STREAM.slice(0, 8)));
    const list = events(text);
    expect(list.slice(-2).map((e) => e.type)).toEqual(['error', 'response.failed']);
    const final = accumulate(list);
    expect(final.status).toBe('failed');
    expect(final.error).toMatchObject({ code: 'server_error' });
    expect(response.usage).toMatchObject({ input: 10, output: 1 });
  });

  it('an in-band provider error becomes the Responses error event', () => {
    const t = translator(anthropic, true);
    t.request({ model: 'm', input: 'x', stream: true });
    const list = events(
      answer(
        t,
        200,
        'text/event-stream',
        sse([ANTHROPIC_STREAM[0], { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }]),
      ).text,
    );
    expect(list.slice(-2)).toEqual([
      { type: 'error', code: '500', message: 'Overloaded', param: null, sequence_number: 2 },
      expect.objectContaining({ type: 'response.failed', sequence_number: 3 }),
    ]);
  });

  it('provider errors keep their status and OpenAI error body (streamed request too)', () => {
    const t = translator(bedrock, true);
    t.request({ model: 'm', input: 'x', stream: true });
    const { head, text, response } = answer(
      t,
      429,
      'application/json',
      Buffer.from(JSON.stringify({ message: 'Too many requests' })),
      undefined,
      { 'x-amzn-errortype': 'ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/' },
    );
    expect(head.stream).toBe(false);
    expect(response.replacedStatus).toBeUndefined();
    expect(JSON.parse(text)).toEqual({
      type: 'error',
      error: { type: 'ThrottlingException', code: '429', message: 'Too many requests' },
    });
  });

  it('an unreadable 2xx answer is a 502 in the OpenAI error schema', () => {
    const t = translator(anthropic);
    t.request({ model: 'm', input: 'x' });
    const { text, response } = answer(t, 200, 'application/json', Buffer.from('{"choices":'));
    expect(response.replacedStatus).toBe(502);
    expect(JSON.parse(text)).toMatchObject({ error: { code: '502' } });
  });
});

describe('the operation name in spans and metrics', () => {
  it('is chat for the Responses API, as for chat completions and Messages (the GenAI well-known value)', () => {
    expect(genAiOperationName('responses')).toBe('chat');
    expect(genAiOperationName('messages')).toBe('chat');
    expect(genAiOperationName('other')).toBe('other');
  });
});
