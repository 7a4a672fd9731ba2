/**
 * The Responses API end to end: the official `openai` SDK's `client.responses.create` and `client.responses.stream`,
 * unchanged, through the processor (driven like Envoy by the HTTP front) against fake Anthropic, Bedrock Converse
 * and Vertex Gemini providers that check the exact upstream body. A function call round trip (the model calls a tool,
 * the client sends its output back statelessly), streamed and not; the usage the SDK reads is the usage in the
 * processor's token metadata; stateful requests are refused before any provider sees them; provider errors keep their
 * status.
 */
import OpenAI from 'openai';
import type * as http from 'node:http';
import { CONFIG_VERSION, TOKEN_METADATA_KEYS, type ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import { encodeEventStreamMessage } from '../../src/eventstream';
import type { ExchangeResult } from '../support/envoy-client';
import { startFakeProvider, type FakeProvider, type RecordedRequest } from '../support/fake-provider';
import { startHttpFront, type HttpFront } from '../support/http-front';
import { startTestProcessor, type TestProcessor } from '../support/processor-harness';
import { anthropicBackend, bedrockBackend, prefixRule, vertexBackend } from '../support/test-backends';

const QUESTION = 'What is the weather in Paris?';
const LEAD = 'Let me check.';
const FINAL = 'It is 18 degrees in Paris.';
const TOOL_OUTPUT = '{"temperature":18}';
const THOUGHT = 'Paris weather needs the tool.';
const SIGNATURE = 'sig-EqQBCgIYAhIM';

const isObject = (value: unknown): boolean => value !== null && typeof value === 'object';
const WEATHER_PARAMETERS = {
  type: 'object',
  properties: { city: { type: 'string' } },
  required: ['city'],
  additionalProperties: false,
};
const TOOLS: OpenAI.Responses.Tool[] = [
  {
    type: 'function',
    name: 'get_weather',
    description: 'Current weather',
    parameters: WEATHER_PARAMETERS,
    strict: true,
  },
];
/** The provider's usage: the first turn reads 20 input tokens (5 from the cache), the second 30. */
const FIRST = { input: 20, cached: 5, output: 10 };
const SECOND = { input: 30, cached: 0, output: 6 };

const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

function frame(eventType: string, payload: unknown): Buffer {
  return encodeEventStreamMessage(
    { ':event-type': eventType, ':content-type': 'application/json', ':message-type': 'event' },
    Buffer.from(JSON.stringify(payload)),
  );
}

/** Whether the upstream request already carries the tool's output (the second turn). */
function secondTurn(request: RecordedRequest): boolean {
  return request.body.toString().includes('temperature');
}

function anthropicProvider(request: RecordedRequest, res: http.ServerResponse): void {
  const body = JSON.parse(request.body.toString()) as { stream?: boolean; thinking?: unknown };
  const second = secondTurn(request);
  const counts = second ? SECOND : FIRST;
  const usage = { input_tokens: counts.input - counts.cached, cache_read_input_tokens: counts.cached };
  const thinking = isObject(body.thinking) && !second;
  const content = second
    ? [{ type: 'text', text: FINAL }]
    : [
        ...(thinking ? [{ type: 'thinking', thinking: THOUGHT, signature: SIGNATURE }] : []),
        { type: 'text', text: LEAD },
        { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Paris' } },
      ];
  const stopReason = second ? 'end_turn' : 'tool_use';
  const message = { id: 'msg_01', type: 'message', role: 'assistant', model: 'claude-real', stop_sequence: null };
  if (body.stream !== true) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        ...message,
        content,
        stop_reason: stopReason,
        usage: { ...usage, output_tokens: counts.output },
      }),
    );
    return;
  }
  let events = sse('message_start', {
    type: 'message_start',
    message: { ...message, content: [], stop_reason: null, usage: { ...usage, output_tokens: 1 } },
  });
  content.forEach((block, index) => {
    const start =
      block.type === 'text'
        ? { type: 'text', text: '' }
        : block.type === 'thinking'
          ? { type: 'thinking', thinking: '' }
          : { ...block, input: {} };
    events += sse('content_block_start', { type: 'content_block_start', index, content_block: start });
    const deltas =
      block.type === 'text'
        ? [block.text!.slice(0, 6), block.text!.slice(6)].map((text) => ({ type: 'text_delta', text }))
        : block.type === 'thinking'
          ? [
              { type: 'thinking_delta', thinking: THOUGHT },
              { type: 'signature_delta', signature: SIGNATURE },
            ]
          : ['{"city":', '"Paris"}'].map((partial_json) => ({ type: 'input_json_delta', partial_json }));
    for (const delta of deltas) events += sse('content_block_delta', { type: 'content_block_delta', index, delta });
    events += sse('content_block_stop', { type: 'content_block_stop', index });
  });
  events += sse('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: stopReason, stop_sequence: null },
    usage: { output_tokens: counts.output },
  });
  events += sse('message_stop', { type: 'message_stop' });
  res.writeHead(200, { 'content-type': 'text/event-stream' }).end(events);
}

function converseProvider(request: RecordedRequest, res: http.ServerResponse): void {
  const second = secondTurn(request);
  const counts = second ? SECOND : FIRST;
  const usage = {
    inputTokens: counts.input - counts.cached,
    outputTokens: counts.output,
    totalTokens: counts.input + counts.output,
    cacheReadInputTokens: counts.cached,
  };
  const stopReason = second ? 'end_turn' : 'tool_use';
  if (!request.path.endsWith('/converse-stream')) {
    const content = second
      ? [{ text: FINAL }]
      : [{ text: LEAD }, { toolUse: { toolUseId: 'tooluse_01', name: 'get_weather', input: { city: 'Paris' } } }];
    res
      .writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': 'req-bedrock' })
      .end(JSON.stringify({ output: { message: { role: 'assistant', content } }, stopReason, usage }));
    return;
  }
  const text = second ? FINAL : LEAD;
  const frames = [
    frame('messageStart', { role: 'assistant' }),
    frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: text.slice(0, 6) } }),
    frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: text.slice(6) } }),
    frame('contentBlockStop', { contentBlockIndex: 0 }),
  ];
  if (!second) {
    frames.push(
      frame('contentBlockStart', {
        contentBlockIndex: 1,
        start: { toolUse: { toolUseId: 'tooluse_01', name: 'get_weather' } },
      }),
      frame('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '{"city":' } } }),
      frame('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '"Paris"}' } } }),
      frame('contentBlockStop', { contentBlockIndex: 1 }),
    );
  }
  frames.push(frame('messageStop', { stopReason }), frame('metadata', { usage, metrics: { latencyMs: 10 } }));
  res
    .writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': 'req-stream' })
    .end(Buffer.concat(frames));
}

function geminiProvider(request: RecordedRequest, res: http.ServerResponse): void {
  const second = secondTurn(request);
  const counts = second ? SECOND : FIRST;
  const usageMetadata = {
    promptTokenCount: counts.input,
    cachedContentTokenCount: counts.cached,
    candidatesTokenCount: counts.output,
    totalTokenCount: counts.input + counts.output,
  };
  const parts = second
    ? [{ text: FINAL }]
    : [{ text: LEAD }, { functionCall: { name: 'get_weather', args: { city: 'Paris' } } }];
  if (!request.path.includes(':streamGenerateContent')) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        candidates: [{ content: { role: 'model', parts }, finishReason: 'STOP' }],
        usageMetadata,
        modelVersion: 'gemini-real',
      }),
    );
    return;
  }
  const data = (value: unknown) => `data: ${JSON.stringify(value)}\r\n\r\n`;
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.end(
    data({ candidates: [{ content: { role: 'model', parts: [{ text: parts[0].text!.slice(0, 6) }] } }] }) +
      data({ candidates: [{ content: { role: 'model', parts: [{ text: parts[0].text!.slice(6) }] } }] }) +
      data({
        candidates: [{ content: { role: 'model', parts: parts.slice(1) }, finishReason: 'STOP' }],
        usageMetadata,
      }),
  );
}

interface BackendCase {
  model: string;
  path: string;
  streamPath: string;
  /** The upstream body of the first turn (the question), streamed or not. */
  firstBody(stream: boolean): unknown;
  /** The upstream body of the second turn (question, the model's call, the tool's output), streamed or not. */
  secondBody(stream: boolean, callId: string): unknown;
}

const INSTRUCTIONS = 'Answer briefly.';
const VERTEX_MODEL = '/v1/projects/proj/locations/europe-west4/publishers/google/models/gemini-2.5-flash';

const CASES: BackendCase[] = [
  {
    model: 'claude-sonnet-4-5',
    path: '/v1/messages',
    streamPath: '/v1/messages',
    firstBody: (stream) => ({
      model: 'claude-sonnet-4-5',
      max_tokens: 256,
      system: [{ type: 'text', text: INSTRUCTIONS }],
      messages: [{ role: 'user', content: [{ type: 'text', text: QUESTION }] }],
      tools: [{ name: 'get_weather', description: 'Current weather', input_schema: WEATHER_PARAMETERS, strict: true }],
      ...(stream ? { stream: true } : {}),
    }),
    secondBody: (stream, callId) => ({
      model: 'claude-sonnet-4-5',
      max_tokens: 256,
      system: [{ type: 'text', text: INSTRUCTIONS }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: QUESTION }] },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: LEAD },
            { type: 'tool_use', id: callId, name: 'get_weather', input: { city: 'Paris' } },
          ],
        },
        {
          role: 'user',
          content: [
            {
              type: 'tool_result',
              tool_use_id: callId,
              is_error: false,
              content: [{ type: 'text', text: TOOL_OUTPUT }],
            },
          ],
        },
      ],
      tools: [{ name: 'get_weather', description: 'Current weather', input_schema: WEATHER_PARAMETERS, strict: true }],
      ...(stream ? { stream: true } : {}),
    }),
  },
  {
    model: 'us.amazon.nova-pro-v1:0',
    path: '/model/us.amazon.nova-pro-v1:0/converse',
    streamPath: '/model/us.amazon.nova-pro-v1:0/converse-stream',
    firstBody: () => ({
      inferenceConfig: { maxTokens: 256 },
      system: [{ text: INSTRUCTIONS }],
      messages: [{ role: 'user', content: [{ text: QUESTION }] }],
      toolConfig: {
        tools: [
          {
            toolSpec: {
              name: 'get_weather',
              description: 'Current weather',
              inputSchema: { json: WEATHER_PARAMETERS },
              strict: true,
            },
          },
        ],
      },
    }),
    secondBody: (_stream, callId) => ({
      inferenceConfig: { maxTokens: 256 },
      system: [{ text: INSTRUCTIONS }],
      messages: [
        { role: 'user', content: [{ text: QUESTION }] },
        {
          role: 'assistant',
          content: [{ text: LEAD }, { toolUse: { toolUseId: callId, name: 'get_weather', input: { city: 'Paris' } } }],
        },
        { role: 'user', content: [{ toolResult: { toolUseId: callId, content: [{ text: TOOL_OUTPUT }] } }] },
      ],
      toolConfig: {
        tools: [
          {
            toolSpec: {
              name: 'get_weather',
              description: 'Current weather',
              inputSchema: { json: WEATHER_PARAMETERS },
              strict: true,
            },
          },
        ],
      },
    }),
  },
  {
    model: 'gemini-2.5-flash',
    path: `${VERTEX_MODEL}:generateContent`,
    streamPath: `${VERTEX_MODEL}:streamGenerateContent?alt=sse`,
    firstBody: () => ({
      contents: [{ role: 'user', parts: [{ text: QUESTION }] }],
      systemInstruction: { parts: [{ text: INSTRUCTIONS }] },
      tools: [
        {
          functionDeclarations: [
            { name: 'get_weather', description: 'Current weather', parameters: WEATHER_PARAMETERS },
          ],
        },
      ],
      generationConfig: { maxOutputTokens: 256 },
    }),
    secondBody: () => ({
      contents: [
        { role: 'user', parts: [{ text: QUESTION }] },
        {
          role: 'model',
          parts: [{ text: LEAD }, { functionCall: { name: 'get_weather', args: { city: 'Paris' } } }],
        },
        { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temperature: 18 } } }] },
      ],
      systemInstruction: { parts: [{ text: INSTRUCTIONS }] },
      tools: [
        {
          functionDeclarations: [
            { name: 'get_weather', description: 'Current weather', parameters: WEATHER_PARAMETERS },
          ],
        },
      ],
      generationConfig: { maxOutputTokens: 256 },
    }),
  },
];

describe('the Responses API through the processor, with the openai SDK', () => {
  let provider: FakeProvider;
  let processor: TestProcessor;
  let front: HttpFront;
  let results: ExchangeResult[];
  let openai: OpenAI;

  beforeAll(async () => {
    provider = await startFakeProvider((request, res) => {
      if (request.body.toString().includes('rate-limit-me')) {
        res
          .writeHead(429, { 'content-type': 'application/json' })
          .end(JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: 'Slow down' } }));
        return;
      }
      if (request.path === '/v1/messages') return anthropicProvider(request, res);
      if (request.path.includes('/publishers/google/')) return geminiProvider(request, res);
      if (request.path.startsWith('/model/')) return converseProvider(request, res);
      res.writeHead(404).end();
    });
    const endpoint = { hostname: '127.0.0.1', port: provider.port, tls: false };
    const config: ProcessorConfig = {
      version: CONFIG_VERSION,
      maxRequestBodyBytes: 1024 * 1024,
      backends: [anthropicBackend(endpoint), bedrockBackend(endpoint), vertexBackend(endpoint)],
      routes: [
        {
          name: 'default/all',
          endpoints: [{ api: 'OpenAI', pathPrefix: '/v1' }],
          hostnames: [],
          rules: [prefixRule('claude-', 'anthropic'), prefixRule('us.', 'bedrock'), prefixRule('gemini-', 'vertex')],
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
  });
  beforeEach(() => {
    results = [];
    provider.requests.length = 0;
  });
  afterAll(async () => {
    await front.close();
    await processor.close();
    await provider.close();
  });

  const upstream = (i: number) => {
    const request = provider.requests[i];
    return { path: request.path, body: JSON.parse(request.body.toString()) as unknown };
  };
  const tokens = (i: number) => {
    const metadata = results[i].metadata['io.envoy.ai_gateway'];
    return {
      input: metadata[TOKEN_METADATA_KEYS.input],
      cached: metadata[TOKEN_METADATA_KEYS.cachedInput],
      output: metadata[TOKEN_METADATA_KEYS.output],
      total: metadata[TOKEN_METADATA_KEYS.total],
    };
  };
  const expectedUsage = (counts: typeof FIRST) => ({
    input_tokens: counts.input,
    input_tokens_details: { cached_tokens: counts.cached, cache_write_tokens: 0 },
    output_tokens: counts.output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: counts.input + counts.output,
  });
  const expectedTokens = (counts: typeof FIRST) => ({
    input: counts.input,
    cached: counts.cached,
    output: counts.output,
    total: counts.input + counts.output,
  });

  /** The second turn's input: the question, the model's output items as they came, and the tool's output. */
  const secondInput = (
    output: OpenAI.Responses.ResponseOutputItem[],
    callId: string,
  ): OpenAI.Responses.ResponseInput => [
    { role: 'user', content: QUESTION },
    ...(output as OpenAI.Responses.ResponseInputItem[]),
    { type: 'function_call_output', call_id: callId, output: TOOL_OUTPUT },
  ];

  describe.each(CASES.map((c) => [c.model, c] as const))('%s', (_model, testCase) => {
    it('responses.create: a function call round trip, usage in the answer and in the metadata', async () => {
      const first = await openai.responses.create({
        model: testCase.model,
        instructions: INSTRUCTIONS,
        input: QUESTION,
        tools: TOOLS,
        max_output_tokens: 256,
      });
      expect(upstream(0)).toEqual({ path: testCase.path, body: testCase.firstBody(false) });
      expect(first.status).toBe('completed');
      expect(first.output_text).toBe(LEAD);
      const call = first.output.find((item) => item.type === 'function_call');
      expect(call).toMatchObject({ type: 'function_call', name: 'get_weather', arguments: '{"city":"Paris"}' });
      const callId = (call as OpenAI.Responses.ResponseFunctionToolCall).call_id;
      expect(callId).not.toBe('');
      expect(first.usage).toEqual(expectedUsage(FIRST));
      expect(tokens(0)).toEqual(expectedTokens(FIRST));

      const second = await openai.responses.create({
        model: testCase.model,
        instructions: INSTRUCTIONS,
        input: secondInput(first.output, callId),
        tools: TOOLS,
        max_output_tokens: 256,
      });
      expect(upstream(1)).toEqual({ path: testCase.path, body: testCase.secondBody(false, callId) });
      expect(second.output_text).toBe(FINAL);
      expect(second.output.map((item) => item.type)).toEqual(['message']);
      expect(second.usage).toEqual(expectedUsage(SECOND));
      expect(tokens(1)).toEqual(expectedTokens(SECOND));
    });

    it('responses.stream: the round trip streamed, deltas, usage in the last event and the metadata', async () => {
      const stream = openai.responses.stream({
        model: testCase.model,
        instructions: INSTRUCTIONS,
        input: QUESTION,
        tools: TOOLS,
        max_output_tokens: 256,
      });
      const deltas: string[] = [];
      const argumentDeltas: string[] = [];
      stream.on('response.output_text.delta', (event) => deltas.push(event.delta));
      stream.on('response.function_call_arguments.delta', (event) => argumentDeltas.push(event.delta));
      const first = await stream.finalResponse();
      expect(upstream(0)).toEqual({ path: testCase.streamPath, body: testCase.firstBody(true) });
      expect(deltas.join('')).toBe(LEAD);
      expect(deltas.length).toBeGreaterThan(1);
      expect(argumentDeltas.join('')).toBe('{"city":"Paris"}');
      expect(first.status).toBe('completed');
      expect(first.usage).toEqual(expectedUsage(FIRST));
      expect(tokens(0)).toEqual(expectedTokens(FIRST));
      const call = first.output.find((item) => item.type === 'function_call') as
        OpenAI.Responses.ResponseFunctionToolCall | undefined;
      expect(call?.arguments).toBe('{"city":"Paris"}');

      const events: string[] = [];
      const second = await openai.responses.create({
        model: testCase.model,
        instructions: INSTRUCTIONS,
        input: secondInput(first.output, call!.call_id),
        tools: TOOLS,
        max_output_tokens: 256,
        stream: true,
      });
      let completed: OpenAI.Responses.Response | undefined;
      for await (const event of second) {
        events.push(event.type);
        if (event.type === 'response.completed') completed = event.response;
      }
      expect(upstream(1)).toEqual({ path: testCase.streamPath, body: testCase.secondBody(true, call!.call_id) });
      expect(events[0]).toBe('response.created');
      expect(events.at(-1)).toBe('response.completed');
      expect(completed?.output).toEqual([expect.objectContaining({ type: 'message', status: 'completed' })]);
      expect(completed?.usage).toEqual(expectedUsage(SECOND));
      expect(tokens(1)).toEqual(expectedTokens(SECOND));
    });

    it('refuses previous_response_id before the provider sees it', async () => {
      const error = await openai.responses
        .create({ model: testCase.model, input: 'more', previous_response_id: 'resp_123' })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.APIError);
      const apiError = error as InstanceType<typeof OpenAI.APIError>;
      expect(apiError.status).toBe(422);
      expect(apiError.param).toBe('previous_response_id');
      expect(apiError.message).toContain('previous_response_id');
      expect(provider.requests).toEqual([]);
    });
  });

  it.each([false, true])(
    'Claude thinking (stream %s): reasoning.effort, the reasoning item with its signature read back next turn',
    async (stream) => {
      const request = {
        model: 'claude-sonnet-4-5',
        input: QUESTION,
        tools: TOOLS,
        max_output_tokens: 4096,
        reasoning: { effort: 'low' as const },
      };
      const first = stream
        ? await openai.responses.stream(request).finalResponse()
        : await openai.responses.create(request);
      expect(upstream(0).body).toMatchObject({ thinking: { type: 'enabled', budget_tokens: 2048 }, max_tokens: 4096 });
      expect(first.output.map((item) => item.type)).toEqual(['reasoning', 'message', 'function_call']);
      expect(first.output[0]).toMatchObject({
        type: 'reasoning',
        content: [{ type: 'reasoning_text', text: THOUGHT }],
        encrypted_content: SIGNATURE,
      });
      const call = first.output[2] as OpenAI.Responses.ResponseFunctionToolCall;
      await openai.responses.create({ ...request, input: secondInput(first.output, call.call_id) });
      expect((upstream(1).body as { messages: unknown[] }).messages[1]).toEqual({
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: THOUGHT, signature: SIGNATURE },
          { type: 'text', text: LEAD },
          { type: 'tool_use', id: call.call_id, name: 'get_weather', input: { city: 'Paris' } },
        ],
      });
    },
  );

  it('a provider error keeps its status for the SDK (streamed request)', async () => {
    const error = await openai.responses
      .create({ model: 'claude-sonnet-4-5', input: 'rate-limit-me', max_output_tokens: 16, stream: true })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((error as InstanceType<typeof OpenAI.RateLimitError>).message).toContain('Slow down');
  });

  it('refuses built-in tools naming the tool and the backend', async () => {
    const error = await openai.responses
      .create({ model: 'gemini-2.5-flash', input: 'news?', tools: [{ type: 'web_search' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.UnprocessableEntityError);
    expect((error as InstanceType<typeof OpenAI.APIError>).message).toContain('GCPVertexAI backend');
    expect((error as InstanceType<typeof OpenAI.APIError>).param).toBe('tools[0]');
  });
});
