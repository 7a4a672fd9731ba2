/**
 * Reasoning end to end: the official SDKs, unchanged, through the processor (driven like Envoy by the HTTP front)
 * against fake providers that check the exact upstream body. An `openai` client's `reasoning_effort` reaches the
 * Anthropic API, Vertex Anthropic and Bedrock InvokeModel as `thinking: {type: "enabled", budget_tokens}`, Bedrock
 * Converse as `additionalModelRequestFields.thinking` (Claude) or `reasoningConfig` (Nova 2), Gemini as
 * `thinkingConfig`; the thinking comes back as `reasoning_content` (with `reasoning_signature`) on the message and on
 * stream deltas, Gemini's thought tokens as `reasoning_tokens` and in the token metadata. An `@anthropic-ai/sdk`
 * client's `thinking` reaches Converse unchanged and gets thinking blocks back. Models without a reasoning control get
 * 422 naming the parameter and the backend.
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
import {
  anthropicBackend,
  bedrockBackend,
  bedrockInvokeBackend,
  GCP_TOKEN_AUTH,
  prefixRule,
  vertexBackend,
} from '../support/test-backends';

const QUESTION = 'What is 6 times 7?';
const THOUGHT = 'Six sevens are forty-two.';
const SIGNATURE = 'sig-EqQBCgIYAhIM';
const ANTHROPIC_USAGE = { input_tokens: 15, output_tokens: 40 };
const CONVERSE_USAGE = { inputTokens: 15, outputTokens: 40, totalTokens: 55 };

function frame(eventType: string, payload: unknown): Buffer {
  return encodeEventStreamMessage(
    { ':event-type': eventType, ':content-type': 'application/json', ':message-type': 'event' },
    Buffer.from(JSON.stringify(payload)),
  );
}

const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/** The Anthropic API, Vertex Anthropic (rawPredict) and Bedrock InvokeModel answer with the same message. */
function anthropicProvider(stream: boolean, res: http.ServerResponse): void {
  const message = { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-real', stop_sequence: null };
  if (!stream) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        ...message,
        content: [
          { type: 'thinking', thinking: THOUGHT, signature: SIGNATURE },
          { type: 'text', text: '42' },
        ],
        stop_reason: 'end_turn',
        usage: ANTHROPIC_USAGE,
      }),
    );
    return;
  }
  const delta = (index: number, d: unknown) =>
    sse('content_block_delta', { type: 'content_block_delta', index, delta: d });
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.end(
    sse('message_start', {
      type: 'message_start',
      message: { ...message, content: [], stop_reason: null, usage: { input_tokens: 15, output_tokens: 1 } },
    }) +
      sse('content_block_start', {
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'thinking', thinking: '', signature: '' },
      }) +
      delta(0, { type: 'thinking_delta', thinking: THOUGHT }) +
      delta(0, { type: 'signature_delta', signature: SIGNATURE }) +
      sse('content_block_stop', { type: 'content_block_stop', index: 0 }) +
      sse('content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } }) +
      delta(1, { type: 'text_delta', text: '42' }) +
      sse('content_block_stop', { type: 'content_block_stop', index: 1 }) +
      sse('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn' },
        usage: { output_tokens: 40 },
      }) +
      sse('message_stop', { type: 'message_stop' }),
  );
}

function converseProvider(request: RecordedRequest, res: http.ServerResponse): void {
  if (!request.path.endsWith('/converse-stream')) {
    res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': 'req-bedrock' }).end(
      JSON.stringify({
        output: {
          message: {
            role: 'assistant',
            content: [{ reasoningContent: { reasoningText: { text: THOUGHT, signature: SIGNATURE } } }, { text: '42' }],
          },
        },
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
      frame('contentBlockDelta', { contentBlockIndex: 0, delta: { reasoningContent: { text: THOUGHT } } }),
      frame('contentBlockDelta', { contentBlockIndex: 0, delta: { reasoningContent: { signature: SIGNATURE } } }),
      frame('contentBlockStop', { contentBlockIndex: 0 }),
      frame('contentBlockDelta', { contentBlockIndex: 1, delta: { text: '42' } }),
      frame('contentBlockStop', { contentBlockIndex: 1 }),
      frame('messageStop', { stopReason: 'end_turn' }),
      frame('metadata', { usage: CONVERSE_USAGE, metrics: { latencyMs: 10 } }),
    ]),
  );
}

function geminiProvider(res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(
    JSON.stringify({
      responseId: 'gem-1',
      modelVersion: 'gemini-2.5-pro',
      candidates: [
        {
          content: { role: 'model', parts: [{ text: THOUGHT, thought: true }, { text: '42' }] },
          finishReason: 'STOP',
        },
      ],
      usageMetadata: { promptTokenCount: 15, candidatesTokenCount: 2, thoughtsTokenCount: 38, totalTokenCount: 55 },
    }),
  );
}

describe('reasoning through the data plane with the official SDKs', () => {
  let provider: FakeProvider;
  let processor: TestProcessor;
  let front: HttpFront;
  let results: ExchangeResult[];
  let openai: OpenAI;
  let anthropic: Anthropic;

  beforeAll(async () => {
    provider = await startFakeProvider((request, res) => {
      const body = JSON.parse(request.body.toString()) as Record<string, unknown>;
      const path = request.path;
      if (path === '/v1/messages') return anthropicProvider(body.stream === true, res);
      if (path.includes('/publishers/anthropic/')) return anthropicProvider(path.endsWith(':streamRawPredict'), res);
      if (path.includes('/publishers/google/')) return geminiProvider(res);
      if (path.endsWith('/invoke')) return anthropicProvider(false, res);
      if (path.startsWith('/model/')) return converseProvider(request, res);
      res.writeHead(404).end();
    });
    const endpoint = { hostname: '127.0.0.1', port: provider.port, tls: false };
    const config: ProcessorConfig = {
      version: CONFIG_VERSION,
      maxRequestBodyBytes: 1024 * 1024,
      backends: [
        anthropicBackend(endpoint),
        {
          name: 'vertex-anthropic',
          schema: {
            name: 'GCPAnthropic',
            projectId: 'proj',
            region: 'us-east5',
            anthropicVersion: 'vertex-2023-10-16',
          },
          endpoint,
          auth: GCP_TOKEN_AUTH,
        },
        bedrockInvokeBackend(endpoint),
        bedrockBackend(endpoint),
        vertexBackend(endpoint),
      ],
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
            prefixRule('vertex-claude-', 'vertex-anthropic'),
            prefixRule('anthropic.claude-', 'bedrock-invoke'),
            prefixRule('us.', 'bedrock'),
            prefixRule('meta.', 'bedrock'),
            prefixRule('gemini-', 'vertex'),
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

  const lastRequest = () => provider.requests.at(-1)!;
  const upstreamBody = () => JSON.parse(lastRequest().body.toString()) as unknown;
  const metadata = () => results[0].metadata['io.envoy.ai_gateway'];
  const request = (model: string, effort: OpenAI.ReasoningEffort, maxTokens = 4096) =>
    ({
      model,
      max_completion_tokens: maxTokens,
      reasoning_effort: effort,
      messages: [{ role: 'user', content: QUESTION }],
    }) satisfies OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming;
  const anthropicMessages = [{ role: 'user', content: [{ type: 'text', text: QUESTION }] }];

  it.each([
    ['claude-sonnet-4-5', '/v1/messages', { model: 'claude-sonnet-4-5' }],
    [
      'vertex-claude-sonnet-4-5',
      '/v1/projects/proj/locations/us-east5/publishers/anthropic/models/vertex-claude-sonnet-4-5:rawPredict',
      { anthropic_version: 'vertex-2023-10-16' },
    ],
    [
      'anthropic.claude-sonnet-4-5-v1:0',
      '/model/anthropic.claude-sonnet-4-5-v1:0/invoke',
      { anthropic_version: 'bedrock-2023-05-31' },
    ],
  ])(
    'openai SDK -> %s: reasoning_effort becomes a thinking budget, the thinking comes back',
    async (model, path, extra) => {
      const completion = await openai.chat.completions.create(request(model, 'medium'));
      expect(lastRequest().path).toBe(path);
      expect(upstreamBody()).toEqual({
        ...extra,
        max_tokens: 4096,
        messages: [{ role: 'user', content: [{ type: 'text', text: QUESTION }] }],
        thinking: { type: 'enabled', budget_tokens: 4095 },
      });
      const message = completion.choices[0].message as OpenAI.Chat.ChatCompletionMessage & Record<string, unknown>;
      expect(message.content).toBe('42');
      expect(message.reasoning_content).toBe(THOUGHT);
      expect(message.reasoning_signature).toBe(SIGNATURE);
    },
  );

  it('openai SDK -> Anthropic API: the budget is the effort level when max_tokens leaves room for it', async () => {
    await openai.chat.completions.create(request('claude-sonnet-4-5', 'low', 16000));
    expect(upstreamBody()).toMatchObject({ max_tokens: 16000, thinking: { type: 'enabled', budget_tokens: 2048 } });
    await openai.chat.completions.create(request('claude-sonnet-4-5', 'high', 32000));
    expect(upstreamBody()).toMatchObject({ thinking: { type: 'enabled', budget_tokens: 24576 } });
    await openai.chat.completions.create(request('claude-sonnet-4-5', 'none', 16000));
    expect(upstreamBody()).not.toHaveProperty('thinking');
  });

  it('openai SDK streaming -> Anthropic API: reasoning_content and its signature arrive as deltas', async () => {
    const stream = await openai.chat.completions.create({ ...request('claude-opus-4-1', 'minimal'), stream: true });
    const deltas: Record<string, unknown>[] = [];
    for await (const chunk of stream) deltas.push(chunk.choices[0].delta as Record<string, unknown>);
    expect(upstreamBody()).toMatchObject({ stream: true, thinking: { type: 'enabled', budget_tokens: 1024 } });
    expect(deltas.map((d) => d.reasoning_content).join('')).toBe(THOUGHT);
    expect(deltas.map((d) => d.reasoning_signature).join('')).toBe(SIGNATURE);
    expect(deltas.map((d) => d.content ?? '').join('')).toBe('42');
  });

  it('openai SDK -> Bedrock Converse (Claude): additionalModelRequestFields.thinking, reasoning back', async () => {
    const completion = await openai.chat.completions.create(request('us.anthropic.claude-sonnet-4-5-v1:0', 'high'));
    expect(lastRequest().path).toBe('/model/us.anthropic.claude-sonnet-4-5-v1:0/converse');
    expect(upstreamBody()).toEqual({
      inferenceConfig: { maxTokens: 4096 },
      messages: [{ role: 'user', content: [{ text: QUESTION }] }],
      additionalModelRequestFields: { thinking: { type: 'enabled', budget_tokens: 4095 } },
    });
    const message = completion.choices[0].message as OpenAI.Chat.ChatCompletionMessage & Record<string, unknown>;
    expect(message).toMatchObject({ content: '42', reasoning_content: THOUGHT, reasoning_signature: SIGNATURE });
  });

  it('openai SDK streaming -> Bedrock ConverseStream: reasoning deltas', async () => {
    const stream = await openai.chat.completions.create({
      ...request('us.anthropic.claude-sonnet-4-5-v1:0', 'low', 8000),
      stream: true,
    });
    const deltas: Record<string, unknown>[] = [];
    for await (const chunk of stream) deltas.push(chunk.choices[0].delta as Record<string, unknown>);
    expect(upstreamBody()).toMatchObject({
      additionalModelRequestFields: { thinking: { type: 'enabled', budget_tokens: 2048 } },
    });
    expect(deltas.map((d) => d.reasoning_content ?? '').join('')).toBe(THOUGHT);
    expect(deltas.map((d) => d.reasoning_signature ?? '').join('')).toBe(SIGNATURE);
    expect(deltas.map((d) => d.content ?? '').join('')).toBe('42');
  });

  it('openai SDK -> Bedrock Converse (Nova 2): reasoningConfig with the effort level', async () => {
    await openai.chat.completions.create(request('us.amazon.nova-2-lite-v1:0', 'medium'));
    expect(upstreamBody()).toEqual({
      inferenceConfig: { maxTokens: 4096 },
      messages: [{ role: 'user', content: [{ text: QUESTION }] }],
      additionalModelRequestFields: { reasoningConfig: { type: 'enabled', maxReasoningEffort: 'medium' } },
    });
  });

  it('openai SDK -> Gemini: thinkingConfig, thoughts back as reasoning_content and reasoning tokens', async () => {
    const completion = await openai.chat.completions.create(request('gemini-2.5-pro', 'high'));
    expect(upstreamBody()).toMatchObject({
      generationConfig: { maxOutputTokens: 4096, thinkingConfig: { thinkingBudget: 24576, includeThoughts: true } },
    });
    const message = completion.choices[0].message as OpenAI.Chat.ChatCompletionMessage & Record<string, unknown>;
    expect(message).toMatchObject({ content: '42', reasoning_content: THOUGHT });
    expect(completion.usage).toMatchObject({
      completion_tokens: 40,
      completion_tokens_details: { reasoning_tokens: 38 },
    });
    expect(metadata()).toMatchObject({ llm_output_token: 40, llm_reasoning_token: 38 });
  });

  it.each([
    ['meta.llama3-70b-instruct-v1:0', 'medium', 4096, 422, 'reasoning_effort', 'AWSBedrock'],
    ['claude-sonnet-4-5', 'medium', 1024, 400, 'max_completion_tokens', 'above 1024'],
    ['us.anthropic.claude-sonnet-4-5-v1:0', 'high', 512, 400, 'max_completion_tokens', 'above 1024'],
  ] as const)('openai SDK -> %s with %s and max %i: %i naming %s', async (model, effort, max, status, param, text) => {
    const before = provider.requests.length;
    const error = await openai.chat.completions.create(request(model, effort, max)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
    expect((error as Error).message).toContain(param);
    expect((error as Error).message).toContain(text);
    expect(provider.requests.length).toBe(before);
  });

  it('anthropic SDK -> Converse: thinking as additionalModelRequestFields, thinking blocks back', async () => {
    const message = await anthropic.messages.create({
      model: 'us.anthropic.claude-sonnet-4-5-v1:0',
      max_tokens: 4096,
      thinking: { type: 'enabled', budget_tokens: 2048 },
      messages: [{ role: 'user', content: QUESTION }],
    });
    expect(upstreamBody()).toEqual({
      inferenceConfig: { maxTokens: 4096 },
      messages: [{ role: 'user', content: [{ text: QUESTION }] }],
      additionalModelRequestFields: { thinking: { type: 'enabled', budget_tokens: 2048 } },
    });
    expect(message.content).toEqual([
      { type: 'thinking', thinking: THOUGHT, signature: SIGNATURE },
      { type: 'text', text: '42' },
    ]);
  });

  it('anthropic SDK -> Anthropic API: thinking is passed through unchanged', async () => {
    const message = await anthropic.messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 4096,
      thinking: { type: 'enabled', budget_tokens: 2048 },
      messages: anthropicMessages as Anthropic.MessageParam[],
    });
    expect(upstreamBody()).toEqual({
      model: 'claude-sonnet-4-5',
      max_tokens: 4096,
      thinking: { type: 'enabled', budget_tokens: 2048 },
      messages: anthropicMessages,
    });
    expect(message.content[0]).toEqual({ type: 'thinking', thinking: THOUGHT, signature: SIGNATURE });
  });
});
