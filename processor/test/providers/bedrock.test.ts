import * as fs from 'node:fs';
import { encodeEventStreamMessage } from '../../src/eventstream';
import { anthropicMessagesToBedrock, openAIChatToBedrock, openAIChatToConverse } from '../../src/providers/bedrock';
import type { BackendConfig } from '@ai-gateway-constructs/processor-config';
import { TranslationError, type TranslationContext } from '../../src/translate/types';
import { seededChunks } from './fixture-cases';
import * as path from 'node:path';
import { describeWithShared } from '../support/shared';

const backend: BackendConfig = {
  name: 'bedrock',
  schema: { name: 'AWSBedrock' },
  endpoint: { hostname: 'bedrock-runtime.us-east-1.amazonaws.com', port: 443, tls: true },
};

function context(overrides: Partial<TranslationContext> = {}): TranslationContext {
  return {
    api: 'OpenAI',
    operation: 'chat',
    subpath: '/chat/completions',
    query: '',
    requestModel: 'claude-sonnet-4',
    upstreamModel: 'anthropic.claude-sonnet-4-v1:0',
    backend,
    stream: true,
    forceStreamUsage: false,
    requestId: 'req-1',
    nowSeconds: 1731679200,
    ...overrides,
  };
}

function frame(eventType: string, payload: unknown): Buffer {
  return encodeEventStreamMessage(
    { ':event-type': eventType, ':content-type': 'application/json', ':message-type': 'event' },
    Buffer.from(JSON.stringify(payload)),
  );
}

function streamThrough(ctx: TranslationContext, chunks: Buffer[], headers: Record<string, string> = {}): string {
  const response = openAIChatToBedrock(ctx).response();
  const head = response.head(200, { 'content-type': 'application/vnd.amazon.eventstream', ...headers });
  expect(head.stream).toBe(true);
  const out: Buffer[] = [];
  chunks.forEach((c, i) => out.push(response.body(c, i === chunks.length - 1)));
  return Buffer.concat(out).toString('utf8');
}

describeWithShared('fixtures/bedrock', 'Bedrock ConverseStream: the real capture', (dir) => {
  const bytes = () => fs.readFileSync(path.join(dir, 'converse-stream-real-claude.eventstream'));
  const expected = () =>
    fs.readFileSync(path.join(dir, 'converse-stream-real-claude.expected-openai-chunks.sse'), 'utf8');
  // The client asked for the usage chunk (stream_options.include_usage).
  const ctx = () => context({ requestId: 'unused', streamUsageRequested: true });
  const normalize = (text: string) => text.replace(/"id":"[^"]*","choices"/g, '"id":"123","choices"').trim();

  it('translates to the expected chunks fed one byte at a time', () => {
    expect(normalize(streamThrough(ctx(), seededChunks(bytes(), 1, 1), { 'x-amzn-requestid': '123' }))).toBe(
      expected().trim(),
    );
  });

  it('translates to the expected chunks in random chunk sizes', () => {
    for (let seed = 1; seed <= 10; seed++) {
      expect(normalize(streamThrough(ctx(), seededChunks(bytes(), seed, 500), { 'x-amzn-requestid': '123' }))).toBe(
        expected().trim(),
      );
    }
  });

  it('without stream_options.include_usage: the same chunks but the usage chunk, and the usage still counted', () => {
    const translator = openAIChatToBedrock(context({ requestId: 'unused' }));
    translator.request({ messages: [{ role: 'user', content: 'x' }], stream: true });
    const response = translator.response();
    response.head(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': '123' });
    const out = normalize(response.body(bytes(), true).toString('utf8'));
    const withoutUsageChunk = expected()
      .trim()
      .split('\n\n')
      .filter((event) => !event.includes('"choices":[]'))
      .join('\n\n');
    expect(out).toBe(withoutUsageChunk);
    expect(out).not.toContain('"usage"');
    expect(response.usage).toEqual({ input: 386, output: 75, total: 461, cachedInput: 0, reasoning: 0 });
  });

  it('reports usage 386 / 75 / 461', () => {
    const response = openAIChatToBedrock(ctx()).response();
    response.head(200, { 'content-type': 'application/vnd.amazon.eventstream' });
    response.body(bytes(), true);
    expect(response.usage).toEqual({ input: 386, output: 75, total: 461, cachedInput: 0, reasoning: 0 });
  });

  it('ends a truncated stream with an error event and [DONE]', () => {
    const out = streamThrough(ctx(), [bytes().subarray(0, bytes().length - 10)]);
    expect(out).toContain('"type":"error"');
    expect(out).toContain('truncated event stream');
    expect(out.trim().endsWith('data: [DONE]')).toBe(true);
  });

  it('reports a corrupt CRC as an error event', () => {
    const corrupt = Buffer.from(bytes());
    corrupt[200] ^= 0xff;
    const out = streamThrough(ctx(), [corrupt]);
    expect(out).toMatch(/CRC mismatch/);
  });
});

describe('OpenAI chat -> Converse request', () => {
  it('maps system, multi-turn, images, tools, tool results and inference settings', () => {
    const body = openAIChatToConverse({
      model: 'm',
      messages: [
        { role: 'system', content: 'be brief' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBOR' } },
          ],
        },
        {
          role: 'assistant',
          content: 'checking',
          tool_calls: [{ id: 't1', type: 'function', function: { name: 'look', arguments: '{"q":1}' } }],
        },
        { role: 'tool', tool_call_id: 't1', content: 'a cat' },
        { role: 'user', content: 'thanks' },
      ],
      max_completion_tokens: 50,
      temperature: 0.2,
      top_p: 0.9,
      stop: ['END'],
      tools: [
        {
          type: 'function',
          function: {
            name: 'look',
            description: 'look it up',
            parameters: { type: 'object', properties: { q: { type: 'number' } } },
          },
        },
      ],
      tool_choice: { type: 'function', function: { name: 'look' } },
    });
    expect(body).toEqual({
      inferenceConfig: { maxTokens: 50, temperature: 0.2, topP: 0.9, stopSequences: ['END'] },
      system: [{ text: 'be brief' }],
      messages: [
        {
          role: 'user',
          content: [{ text: 'what is this?' }, { image: { format: 'png', source: { bytes: 'iVBOR' } } }],
        },
        {
          role: 'assistant',
          content: [{ text: 'checking' }, { toolUse: { toolUseId: 't1', name: 'look', input: { q: 1 } } }],
        },
        {
          role: 'user',
          content: [{ toolResult: { toolUseId: 't1', content: [{ text: 'a cat' }] } }, { text: 'thanks' }],
        },
      ],
      toolConfig: {
        tools: [
          {
            toolSpec: {
              name: 'look',
              description: 'look it up',
              inputSchema: { json: { type: 'object', properties: { q: { type: 'number' } } } },
            },
          },
        ],
        toolChoice: { tool: { name: 'look' } },
      },
    });
  });

  it.each([
    [{ logprobs: true }, 422, 'logprobs'],
    [{ n: 2 }, 422, 'n'],
    [{ temperature: 1.5 }, 400, 'temperature'],
    [{ top_p: -0.1 }, 400, 'top_p'],
    [
      { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] }] },
      422,
      'messages[0].content[0].image_url.url',
    ],
    [
      { messages: [{ role: 'assistant', tool_calls: [{ id: 'a', function: { name: 'f', arguments: '{bad' } }] }] },
      400,
      'messages[0].tool_calls[0].function.arguments',
    ],
  ])('rejects %j with %i naming the parameter', (extra, status, param) => {
    let error: unknown;
    try {
      openAIChatToConverse({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...extra });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TranslationError);
    expect((error as TranslationError).status).toBe(status);
    expect((error as TranslationError).param).toBe(param);
    expect((error as TranslationError).message).toContain(param);
  });

  it('puts the model in the path (ARN slashes escaped) and picks converse-stream for streams', () => {
    const request = openAIChatToBedrock(
      context({ upstreamModel: 'arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.claude' }),
    ).request({ messages: [] });
    expect(request.path).toBe(
      '/model/arn:aws:bedrock:us-east-1:1:inference-profile%2Fus.anthropic.claude/converse-stream',
    );
  });
});

describe('Converse -> OpenAI', () => {
  it('keeps reasoning, tool calls and cache usage in JSON answers', () => {
    const response = openAIChatToBedrock(context({ stream: false })).response();
    response.head(200, { 'content-type': 'application/json', 'x-amzn-requestid': 'rid' });
    const out = JSON.parse(
      response
        .body(
          Buffer.from(
            JSON.stringify({
              output: {
                message: {
                  role: 'assistant',
                  content: [
                    { reasoningContent: { reasoningText: { text: 'think', signature: 'sig' } } },
                    { text: 'answer' },
                    { toolUse: { toolUseId: 'tu1', name: 'f', input: { a: 1 } } },
                  ],
                },
              },
              stopReason: 'tool_use',
              usage: {
                inputTokens: 5,
                outputTokens: 7,
                totalTokens: 12,
                cacheReadInputTokens: 100,
                cacheWriteInputTokens: 20,
              },
            }),
          ),
          true,
        )
        .toString(),
    );
    expect(out.id).toBe('rid');
    expect(out.choices[0]).toEqual({
      index: 0,
      finish_reason: 'tool_calls',
      message: {
        role: 'assistant',
        content: 'answer',
        reasoning_content: 'think',
        reasoning_signature: 'sig',
        tool_calls: [{ id: 'tu1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }],
      },
    });
    expect(out.usage).toEqual({
      prompt_tokens: 125,
      completion_tokens: 7,
      total_tokens: 132,
      prompt_tokens_details: { cached_tokens: 100 },
    });
    expect(response.usage).toEqual({
      input: 125,
      output: 7,
      total: 132,
      cachedInput: 100,
      reasoning: 0,
      cacheWriteInput: 20,
    });
  });

  it('streams reasoning deltas and reports in-band exceptions', () => {
    const out = streamThrough(context(), [
      Buffer.concat([
        frame('messageStart', { role: 'assistant' }),
        frame('contentBlockDelta', { contentBlockIndex: 0, delta: { reasoningContent: { text: 'hmm' } } }),
        encodeEventStreamMessage(
          { ':message-type': 'exception', ':exception-type': 'throttlingException' },
          Buffer.from('{"message":"slow down"}'),
        ),
      ]),
    ]);
    expect(out).toContain('"delta":{"reasoning_content":"hmm","role":"assistant"}');
    expect(out).toContain('{"type":"error","error":{"type":"throttlingException","code":"500","message":"slow down"}}');
  });

  it('translates provider errors into the client schema with the provider status', () => {
    const response = openAIChatToBedrock(context({ stream: false })).response();
    response.head(400, {
      'content-type': 'application/json',
      'x-amzn-errortype': 'ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/',
    });
    const out = JSON.parse(response.body(Buffer.from('{"message":"Malformed input request"}'), true).toString());
    expect(out).toEqual({
      type: 'error',
      error: { type: 'ValidationException', code: '400', message: 'Malformed input request' },
    });
  });
});

describe('Anthropic Messages -> Converse stream', () => {
  it('emits Anthropic events with usage', () => {
    const ctx = context({ api: 'Anthropic', operation: 'messages', subpath: '/messages' });
    const translator = anthropicMessagesToBedrock(ctx);
    expect(
      translator.request({ model: 'x', max_tokens: 10, stream: true, messages: [{ role: 'user', content: 'hi' }] })
        .path,
    ).toBe('/model/anthropic.claude-sonnet-4-v1:0/converse-stream');
    const response = translator.response();
    response.head(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': 'rid' });
    const bytes = Buffer.concat([
      frame('messageStart', { role: 'assistant' }),
      frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Hel' } }),
      frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'lo' } }),
      frame('contentBlockStop', { contentBlockIndex: 0 }),
      frame('contentBlockStart', { contentBlockIndex: 1, start: { toolUse: { toolUseId: 'tu', name: 'f' } } }),
      frame('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '{"a":' } } }),
      frame('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '1}' } } }),
      frame('contentBlockStop', { contentBlockIndex: 1 }),
      frame('messageStop', { stopReason: 'tool_use' }),
      frame('metadata', { usage: { inputTokens: 3, outputTokens: 4, totalTokens: 7 } }),
    ]);
    const chunks = seededChunks(bytes, 5, 30);
    const text = chunks.map((c, i) => response.body(c, i === chunks.length - 1).toString()).join('');
    const events = text
      .trim()
      .split('\n\n')
      .map((block) => JSON.parse(block.split('\n')[1].slice(6)));
    expect(events.map((e) => e.type)).toEqual([
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    expect(events[5].content_block).toEqual({ type: 'tool_use', id: 'tu', name: 'f', input: {} });
    expect(events[9]).toEqual({
      type: 'message_delta',
      delta: { stop_reason: 'tool_use', stop_sequence: null },
      usage: { input_tokens: 3, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 4 },
    });
    expect(response.usage).toEqual({ input: 3, output: 4, total: 7, cachedInput: 0, reasoning: 0 });
  });
});
