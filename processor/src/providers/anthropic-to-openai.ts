/**
 * Anthropic Messages clients (`/anthropic/v1/messages`) on OpenAI-schema backends (OpenAI, Azure OpenAI):
 * the request becomes a chat completion, the answer (JSON or SSE) becomes an Anthropic message / event stream.
 */
import { SseParser } from '../sse';
import { usageFromOpenAI } from '../translate/openai-usage';
import {
  TranslationError,
  type TranslationContext,
  type TranslatorFactory,
  type UpstreamRequest,
} from '../translate/types';
import {
  anthropicErrorBody,
  anthropicErrorType,
  asArray,
  anthropicOutputFormat,
  asObject,
  asString,
  ConvertingResponse,
  count,
  describeProviderError,
  EMPTY,
  invalid,
  isObject,
  JsonObject,
  parseJsonBuffer,
  rejectIfSet,
  sseEvent,
  unsupportedContent,
} from './common';
import { azurePath } from './azure';
import type {
  AnthropicMessagesRequest,
  AnthropicRequestBlock,
  AnthropicRequestMessage,
  AnthropicRequestTool,
  AnthropicThinkingConfig,
  AnthropicToolChoice,
} from './wire/anthropic-messages';
import type {
  ChatChoice,
  ChatChunk,
  ChatChunkChoice,
  ChatCompletion,
  ChatDelta,
  ChatResponseMessage,
  ChatStreamError,
  ChatToolCall,
  ChatToolCallDelta,
} from './wire/openai-chat';
import type { Untrusted } from './wire/untrusted';

const BACKEND = 'OpenAI';

export function anthropicToOpenAIChat(body: JsonObject, context: TranslationContext): JsonObject {
  rejectIfSet(body, 'top_k', BACKEND);
  const out: JsonObject = {};
  const messages: JsonObject[] = [];
  if (typeof body.system === 'string') messages.push({ content: body.system, role: 'system' });
  else if (Array.isArray(body.system)) {
    const text = body.system
      .map((b, i) => {
        const block: Untrusted<AnthropicRequestBlock> | undefined = asObject(b);
        const t = asString(block?.text);
        if (t === undefined) throw unsupportedContent(`system[${i}]`, block?.type);
        return t;
      })
      .join('\n');
    messages.push({ content: text, role: 'system' });
  }
  if (!Array.isArray(body.messages)) throw invalid('messages must be an array', 'messages');
  body.messages.forEach((raw, i) => convertMessage(raw, i, messages));
  out.messages = messages;
  out.model = context.upstreamModel;
  if (body.max_tokens !== undefined) out.max_completion_tokens = body.max_tokens;
  if (body.temperature !== undefined) out.temperature = body.temperature;
  if (body.top_p !== undefined) out.top_p = body.top_p;
  if (Array.isArray(body.stop_sequences) && body.stop_sequences.length > 0) out.stop = body.stop_sequences;
  if (body.stream === true) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  // JSON outputs: OpenAI structured outputs (strict, as Claude's schema-constrained decoding is).
  const outputFormat = anthropicOutputFormat(body);
  if (outputFormat) {
    out.response_format = {
      type: 'json_schema',
      json_schema: { name: 'output', schema: outputFormat.schema, strict: true },
    };
  }
  if (Array.isArray(body.tools) && body.tools.length > 0) {
    out.tools = body.tools.map((raw, i) => {
      const tool: Untrusted<AnthropicRequestTool> | undefined = asObject(raw);
      if (!tool || typeof tool.name !== 'string') throw invalid(`tools[${i}] must have a name`, `tools[${i}]`);
      if (tool.type !== undefined && tool.type !== 'custom') throw unsupportedContent(`tools[${i}]`, tool.type);
      const fn: JsonObject = { name: tool.name };
      if (typeof tool.description === 'string') fn.description = tool.description;
      fn.parameters = isObject(tool.input_schema) ? tool.input_schema : { type: 'object', properties: {} };
      if (tool.strict === true) fn.strict = true;
      return { type: 'function', function: fn };
    });
  }
  const choice: Untrusted<AnthropicToolChoice> | undefined = asObject(body.tool_choice);
  if (choice) {
    if (choice.type === 'auto') out.tool_choice = 'auto';
    else if (choice.type === 'any') out.tool_choice = 'required';
    else if (choice.type === 'none') out.tool_choice = 'none';
    else if (choice.type === 'tool' && typeof choice.name === 'string')
      out.tool_choice = { type: 'function', function: { name: choice.name } };
    else throw invalid('tool_choice must be auto, any, none or tool', 'tool_choice');
    if (choice.disable_parallel_tool_use === true) out.parallel_tool_calls = false;
  }
  const metadata: Untrusted<AnthropicMessagesRequest['metadata']> | undefined = asObject(body.metadata);
  const user = asString(metadata?.user_id);
  if (user) out.user = user;
  const thinking: Untrusted<AnthropicThinkingConfig> | undefined = asObject(body.thinking);
  if (body.thinking !== undefined && thinking?.type !== 'disabled') {
    const budget = count(thinking?.budget_tokens);
    out.reasoning_effort = budget >= 16384 ? 'high' : budget >= 4096 ? 'medium' : 'low';
  }
  return out;
}

function convertMessage(raw: unknown, i: number, messages: JsonObject[]): void {
  const message: Untrusted<AnthropicRequestMessage> | undefined = asObject(raw);
  if (!message || (message.role !== 'user' && message.role !== 'assistant'))
    throw invalid(`messages[${i}].role must be "user" or "assistant"`, `messages[${i}].role`);
  if (typeof message.content === 'string') {
    messages.push({ content: message.content, role: message.role });
    return;
  }
  const parts: JsonObject[] = [];
  const toolCalls: JsonObject[] = [];
  let reasoning = '';
  asArray(message.content).forEach((b, j) => {
    const block: Untrusted<AnthropicRequestBlock> | undefined = asObject(b);
    const param = `messages[${i}].content[${j}]`;
    switch (block?.type) {
      case 'text':
        parts.push({ type: 'text', text: asString(block.text) ?? '' });
        break;
      case 'image': {
        const source: Untrusted<AnthropicRequestBlock['source']> | undefined = asObject(block.source);
        if (source?.type === 'base64')
          parts.push({
            type: 'image_url',
            image_url: { url: `data:${String(source.media_type)};base64,${String(source.data)}` },
          });
        else if (source?.type === 'url') parts.push({ type: 'image_url', image_url: { url: String(source.url) } });
        else throw unsupportedContent(param, 'image source');
        break;
      }
      case 'tool_use':
        toolCalls.push({
          id: asString(block.id) ?? '',
          type: 'function',
          function: { name: asString(block.name) ?? '', arguments: JSON.stringify(block.input ?? {}) },
        });
        break;
      case 'tool_result': {
        const content =
          typeof block.content === 'string'
            ? block.content
            : asArray(block.content)
                .map((c) => {
                  const inner: Untrusted<AnthropicRequestBlock> | undefined = asObject(c);
                  return asString(inner?.text) ?? '';
                })
                .join('');
        messages.push({ content, role: 'tool', tool_call_id: asString(block.tool_use_id) ?? '' });
        break;
      }
      case 'thinking':
        reasoning += asString(block.thinking) ?? '';
        break;
      case 'redacted_thinking':
        break;
      default:
        throw unsupportedContent(param, block?.type);
    }
  });
  if (parts.length === 0 && toolCalls.length === 0 && reasoning === '') return;
  const out: JsonObject = { role: message.role };
  const onlyText = parts.every((p) => p.type === 'text');
  if (message.role === 'assistant') {
    out.content = parts.length === 0 ? null : parts.map((p) => p.text).join('');
    if (reasoning) out.reasoning_content = reasoning;
    if (toolCalls.length > 0) out.tool_calls = toolCalls;
  } else {
    if (parts.length === 0) return;
    out.content = onlyText && parts.length === 1 ? parts[0].text : parts;
  }
  messages.push(out);
}

const STOP_REASONS: Record<string, string> = {
  stop: 'end_turn',
  length: 'max_tokens',
  tool_calls: 'tool_use',
  function_call: 'tool_use',
  content_filter: 'refusal',
};

function anthropicUsageOf(usage: unknown): JsonObject {
  const u = usageFromOpenAI(usage);
  const cached = u?.cachedInput ?? 0;
  return {
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached,
    input_tokens: Math.max(0, (u?.input ?? 0) - cached),
    output_tokens: u?.output ?? 0,
  };
}

class OpenAIToAnthropicResponse extends ConvertingResponse {
  private sse?: SseParser;
  private stream?: OpenAIChunksToAnthropicEvents;

  constructor(private readonly context: TranslationContext) {
    super('Anthropic', context.stream);
  }

  protected errorBody(whole: Buffer): Buffer {
    const { type, message } = describeProviderError(this.status, whole);
    return anthropicErrorBody(anthropicErrorType(this.status, type), message);
  }

  protected convertBody(whole: Buffer): Buffer {
    const response: Untrusted<ChatCompletion> | undefined = asObject(parseJsonBuffer(whole));
    if (!response) return this.unreadable('OpenAI');
    const choice: Untrusted<ChatChoice> | undefined = asObject(asArray(response.choices)[0]);
    const message: Untrusted<ChatResponseMessage> | undefined = asObject(choice?.message);
    const content: JsonObject[] = [];
    const reasoning = asString(message?.reasoning_content);
    if (reasoning) content.push({ type: 'thinking', thinking: reasoning, signature: '' });
    const text = asString(message?.content);
    if (text) content.push({ type: 'text', text });
    for (const raw of asArray(message?.tool_calls)) {
      const call: Untrusted<ChatToolCall> | undefined = asObject(raw);
      const fn: Untrusted<ChatToolCall['function']> | undefined = asObject(call?.function);
      let input: unknown;
      try {
        input = JSON.parse(asString(fn?.arguments) || '{}');
      } catch {
        input = { arguments: fn?.arguments };
      }
      content.push({ type: 'tool_use', id: asString(call?.id) ?? '', name: asString(fn?.name) ?? '', input });
    }
    const usage = usageFromOpenAI(response.usage);
    if (usage) this.usage = usage;
    return Buffer.from(
      JSON.stringify({
        id: asString(response.id) ?? '',
        type: 'message',
        role: 'assistant',
        content,
        model: asString(response.model) ?? this.context.requestModel,
        stop_reason: STOP_REASONS[asString(choice?.finish_reason) ?? 'stop'] ?? 'end_turn',
        usage: anthropicUsageOf(response.usage),
      }),
    );
  }

  protected streamChunk(chunk: Buffer, endOfStream: boolean): Buffer {
    this.sse ??= new SseParser();
    this.stream ??= new OpenAIChunksToAnthropicEvents(this.context);
    const events = this.sse.push(chunk);
    if (endOfStream) events.push(...this.sse.end());
    let out = '';
    for (const event of events) {
      if (event.data === '[DONE]') {
        out += this.stream.finish();
        continue;
      }
      const parsed: Untrusted<StreamChunk> | undefined = asObject(parseJsonBuffer(Buffer.from(event.data)));
      if (parsed) out += this.stream.chunk(parsed);
    }
    if (endOfStream) out += this.stream.finish();
    const usage = this.stream.usage;
    if (usage) this.usage = usage;
    return out === '' ? EMPTY : Buffer.from(out);
  }
}

/** A chunk, or an error sent in-band in the stream. */
type StreamChunk = ChatChunk & { error?: ChatStreamError['error'] };

/** OpenAI chat.completion.chunk objects -> Anthropic Messages stream events. */
class OpenAIChunksToAnthropicEvents {
  private started = false;
  private finished = false;
  private blockIndex = -1;
  private openBlock: 'text' | 'thinking' | 'tool' | undefined;
  private toolBlocks = new Map<number, number>();
  private stopReason: string | undefined;
  private rawUsage: unknown;

  constructor(private readonly context: TranslationContext) {}

  get usage() {
    return usageFromOpenAI(this.rawUsage);
  }

  private start(chunk: Untrusted<StreamChunk>): string {
    if (this.started) return '';
    this.started = true;
    return sseEvent('message_start', {
      type: 'message_start',
      message: {
        id: asString(chunk.id) ?? '',
        type: 'message',
        role: 'assistant',
        content: [],
        model: asString(chunk.model) ?? this.context.requestModel,
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 0, output_tokens: 0 },
      },
    });
  }

  private closeBlock(): string {
    if (this.openBlock === undefined) return '';
    this.openBlock = undefined;
    return sseEvent('content_block_stop', { type: 'content_block_stop', index: this.blockIndex });
  }

  private open(kind: 'text' | 'thinking', block: JsonObject): string {
    if (this.openBlock === kind) return '';
    const out = this.closeBlock();
    this.blockIndex++;
    this.openBlock = kind;
    return (
      out +
      sseEvent('content_block_start', { type: 'content_block_start', index: this.blockIndex, content_block: block })
    );
  }

  chunk(chunk: Untrusted<StreamChunk>): string {
    const error: Untrusted<StreamChunk['error']> | undefined = asObject(chunk.error);
    if (error) {
      return sseEvent('error', {
        type: 'error',
        error: {
          type: anthropicErrorType(500, asString(error.type) ?? ''),
          message: asString(error.message) ?? 'stream error',
        },
      });
    }
    let out = this.start(chunk);
    if (chunk.usage !== undefined && chunk.usage !== null) this.rawUsage = chunk.usage;
    const choice: Untrusted<ChatChunkChoice> | undefined = asObject(asArray(chunk.choices)[0]);
    const delta: Untrusted<ChatDelta> | undefined = asObject(choice?.delta);
    const reasoning = asString(delta?.reasoning_content);
    if (reasoning) {
      out += this.open('thinking', { type: 'thinking', thinking: '', signature: '' });
      out += sseEvent('content_block_delta', {
        type: 'content_block_delta',
        index: this.blockIndex,
        delta: { type: 'thinking_delta', thinking: reasoning },
      });
    }
    const text = asString(delta?.content);
    if (text) {
      out += this.open('text', { type: 'text', text: '' });
      out += sseEvent('content_block_delta', {
        type: 'content_block_delta',
        index: this.blockIndex,
        delta: { type: 'text_delta', text },
      });
    }
    for (const raw of asArray(delta?.tool_calls)) {
      const call: Untrusted<ChatToolCallDelta> | undefined = asObject(raw);
      if (!call) continue;
      const toolIndex = typeof call.index === 'number' ? call.index : 0;
      const fn: Untrusted<ChatToolCallDelta['function']> | undefined = asObject(call.function);
      let index = this.toolBlocks.get(toolIndex);
      if (index === undefined) {
        out += this.closeBlock();
        this.blockIndex++;
        index = this.blockIndex;
        this.toolBlocks.set(toolIndex, index);
        this.openBlock = 'tool';
        out += sseEvent('content_block_start', {
          type: 'content_block_start',
          index,
          content_block: { type: 'tool_use', id: asString(call.id) ?? '', name: asString(fn?.name) ?? '', input: {} },
        });
      }
      const args = asString(fn?.arguments);
      if (args)
        out += sseEvent('content_block_delta', {
          type: 'content_block_delta',
          index,
          delta: { type: 'input_json_delta', partial_json: args },
        });
    }
    const finish = asString(choice?.finish_reason);
    if (finish) this.stopReason = STOP_REASONS[finish] ?? 'end_turn';
    return out;
  }

  finish(): string {
    if (this.finished) return '';
    this.finished = true;
    let out = this.started ? '' : this.start({});
    out += this.closeBlock();
    const usage = anthropicUsageOf(this.rawUsage);
    out += sseEvent('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: this.stopReason ?? 'end_turn', stop_sequence: null },
      usage,
    });
    return out + sseEvent('message_stop', { type: 'message_stop' });
  }
}

export const anthropicMessagesToOpenAI: TranslatorFactory = (context) => ({
  request(body): UpstreamRequest {
    if (context.operation === 'count_tokens') {
      throw new TranslationError(
        422,
        `count_tokens is not supported by the ${context.backend.schema.name} backend`,
        'invalid_request_error',
      );
    }
    const schema = context.backend.schema;
    const path =
      schema.name === 'OpenAI'
        ? `${schema.pathPrefix === '/' ? '' : schema.pathPrefix}/chat/completions`
        : azurePath({ ...context, query: '' }, context.upstreamModel, '/chat/completions');
    return { path, body: anthropicToOpenAIChat(body, context), setHeaders: {}, removeHeaders: [] };
  },
  response: () => new OpenAIToAnthropicResponse(context),
});
