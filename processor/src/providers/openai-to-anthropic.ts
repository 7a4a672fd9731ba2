/**
 * OpenAI chat completions <-> Anthropic Messages, shared by the Anthropic API, Anthropic on Vertex AI and
 * Anthropic on Bedrock (InvokeModel). Usage: input = input + cache read + cache creation,
 * cached = cache read, total = input + output.
 */
import { EventStreamDecoder } from '../eventstream';
import { SseParser } from '../sse';
import type { ClientApi, TranslationContext } from '../translate/types';
import {
  ALL_OPENAI_ONLY_PARAMS,
  asArray,
  asNumber,
  asObject,
  asString,
  checkRange,
  ChunkWriter,
  claudeJsonSchemaFormat,
  claudeThinking,
  ConvertingResponse,
  count,
  EMPTY,
  EVENTSTREAM_CONTENT_TYPE,
  invalid,
  isObject,
  JsonObject,
  maxOutputTokens,
  OpenAIUsageShape,
  openAIUsageWithDetails,
  parseDataUrl,
  parseJsonBuffer,
  rejectUnsupportedParams,
  sseData,
  type CacheControl,
  tokenUsage,
  unsupported,
  unsupportedContent,
} from './common';
import {
  type ChatContent,
  type ChatImagePart,
  type ChatPart,
  emptyAssistant,
  imageUrlOf,
  forEachChatMessage,
  readChatTools,
  readStop,
  readToolChoice,
  requiredToolCallId,
  unsupportedPart,
} from './openai-chat-reader';
import type {
  AnthropicContentBlock,
  BedrockInvokeChunk,
  AnthropicDocumentBlock,
  AnthropicImageBlock,
  AnthropicMessage,
  AnthropicMessagesRequest,
  AnthropicResponse,
  AnthropicResponseBlock,
  AnthropicStreamDelta,
  AnthropicStreamEvent,
  AnthropicTextBlock,
  AnthropicTool,
  AnthropicToolChoice,
  AnthropicToolResultBlock,
  AnthropicUsage,
} from './wire/anthropic-messages';
import type { Untrusted } from './wire/untrusted';
import type { ChatChunk, ChatCompletion, ChatDelta, ChatStreamError } from './wire/openai-chat';
import { chatCompletion, ChatMessageBuilder } from './openai-chat-answer';

const BACKEND = 'Anthropic';

/** The Anthropic Messages body for an OpenAI chat request (no `model`, `stream` or version fields). */
export function openAIChatToAnthropic(body: JsonObject): AnthropicMessagesRequest {
  rejectUnsupportedParams(body, BACKEND, ALL_OPENAI_ONLY_PARAMS);
  if (body.n !== undefined && body.n !== null && body.n !== 1) throw unsupported('n', BACKEND, 'only n=1 is possible');
  const modalities = body.modalities;
  if (Array.isArray(modalities) && modalities.some((m) => m !== 'text'))
    throw unsupported('modalities', BACKEND, 'only text output');
  const jsonSchema = claudeJsonSchemaFormat(body, BACKEND);

  // Anthropic requires max_tokens; without one the provider answers with its own clear 400.
  const maxTokens = maxOutputTokens(body, 0) ?? 0;
  const { system, messages } = convertMessages(body.messages);
  const out: AnthropicMessagesRequest = { max_tokens: maxTokens, messages };
  if (system.length > 0) out.system = system;

  const temperature = checkRange(body, 'temperature', 0, 1);
  if (temperature !== undefined) out.temperature = temperature;
  const topP = checkRange(body, 'top_p', 0, 1);
  if (topP !== undefined) out.top_p = topP;
  const stop = readStop(body.stop);
  if (stop) out.stop_sequences = stop;

  const tools = convertTools(body.tools);
  if (tools) out.tools = tools;
  const toolChoice = convertToolChoice(body.tool_choice, body.parallel_tool_calls);
  if (toolChoice) out.tool_choice = toolChoice;
  const user = asString(body.user) ?? asString(body.safety_identifier);
  if (user) out.metadata = { user_id: user };
  const thinking = claudeThinking(body);
  if (thinking) out.thinking = thinking;
  const tier = asString(body.service_tier);
  if (tier === 'auto' || tier === 'standard_only') out.service_tier = tier;
  // JSON outputs (the Anthropic API, Vertex and Bedrock InvokeModel read the same field).
  if (jsonSchema) out.output_config = { format: { type: 'json_schema', schema: jsonSchema.schema } };
  return out;
}

function convertMessages(value: unknown): { system: AnthropicTextBlock[]; messages: AnthropicMessage[] } {
  const system: AnthropicTextBlock[] = [];
  const messages: AnthropicMessage[] = [];
  const push = (role: 'user' | 'assistant', blocks: AnthropicContentBlock[], mergeToolResults: boolean) => {
    const last = messages[messages.length - 1];
    if (mergeToolResults && last?.role === 'user' && last.content.every((b): boolean => b.type === 'tool_result')) {
      last.content.push(...blocks);
      return;
    }
    messages.push({ role, content: blocks });
  };
  forEachChatMessage(value, { cacheMarkers: true }, (turn) => {
    switch (turn.role) {
      case 'system':
        system.push(...marked(textBlocks(turn.content), turn.cache));
        break;
      case 'user':
        push('user', marked(userBlocks(turn.content), turn.cache), false);
        break;
      case 'assistant': {
        const blocks: AnthropicContentBlock[] = [];
        if (turn.reasoning && turn.reasoning.text !== '')
          blocks.push({ type: 'thinking', thinking: turn.reasoning.text, signature: turn.reasoning.signature });
        if (turn.content !== undefined) blocks.push(...textBlocks(turn.content));
        for (const call of turn.toolCalls)
          blocks.push({ type: 'tool_use', id: call.id ?? '', name: call.name, input: call.arguments });
        if (blocks.length === 0) throw emptyAssistant(turn);
        push('assistant', marked(blocks, turn.cache), false);
        break;
      }
      case 'tool': {
        const id = requiredToolCallId(turn);
        const result: AnthropicToolResultBlock = {
          type: 'tool_result',
          tool_use_id: id,
          is_error: false,
          content: toolResultContent(turn.content),
        };
        push('user', marked([result], turn.cache), true);
        break;
      }
    }
  });
  return { system, messages };
}

/** A breakpoint on the message itself marks its last block (string content has no part to carry one). */
function marked<T extends { cache_control?: CacheControl }>(blocks: T[], cache: CacheControl | undefined): T[] {
  if (cache && blocks.length > 0) blocks[blocks.length - 1].cache_control = cache;
  return blocks;
}

/** Content parts -> Anthropic blocks, each part's `cache_control` carried onto its block. */
function partBlocks<T extends { cache_control?: CacheControl }>(
  content: ChatContent,
  convert: (part: ChatPart) => T | AnthropicTextBlock,
): (T | AnthropicTextBlock)[] {
  if (typeof content === 'string') return [{ text: content, type: 'text' }];
  return content.map((part) => {
    const block = convert(part);
    if (part.cache) block.cache_control = part.cache;
    return block;
  });
}

function textBlocks(content: ChatContent): AnthropicTextBlock[] {
  return partBlocks<AnthropicTextBlock>(content, (part) => {
    if (part.type === 'text' || part.type === 'refusal') return { text: part.text, type: 'text' };
    throw unsupportedPart(part);
  });
}

function userBlocks(content: ChatContent): AnthropicContentBlock[] {
  return partBlocks<AnthropicImageBlock | AnthropicDocumentBlock>(content, (part) => {
    if (part.type === 'text') return { text: part.text, type: 'text' };
    if (part.type === 'image_url') return imageBlock(part);
    if (part.type === 'file') {
      if (part.data?.mediaType === 'application/pdf') {
        return { type: 'document', source: { type: 'base64', media_type: part.data.mediaType, data: part.data.data } };
      }
      throw unsupportedContent(part.param, 'file (only base64 PDF data URLs)');
    }
    throw unsupportedPart(part);
  });
}

function imageBlock(part: ChatImagePart): AnthropicImageBlock {
  const url = imageUrlOf(part);
  const data = parseDataUrl(url);
  if (data) return { type: 'image', source: { type: 'base64', media_type: data.mediaType, data: data.data } };
  if (url.startsWith('https://') || url.startsWith('http://')) return { type: 'image', source: { type: 'url', url } };
  const param = `${part.param}.image_url.url`;
  throw invalid(`${param} must be an http(s) URL or a base64 data URL`, param);
}

function toolResultContent(content: ChatContent): (AnthropicTextBlock | AnthropicImageBlock)[] {
  return partBlocks<AnthropicImageBlock>(content, (part) => {
    if (part.type === 'text') return { text: part.text, type: 'text' };
    if (part.type === 'image_url') return imageBlock(part);
    throw unsupportedPart(part);
  });
}

function convertTools(value: unknown): AnthropicTool[] | undefined {
  return readChatTools(value, BACKEND, { cacheMarkers: true })?.map((tool) => {
    const inputSchema = tool.parameters ?? { type: 'object', properties: {} };
    const out: AnthropicTool =
      tool.description === undefined
        ? { name: tool.name, input_schema: inputSchema }
        : { name: tool.name, description: tool.description, input_schema: inputSchema };
    if (tool.strict) out.strict = true;
    if (tool.cache) out.cache_control = tool.cache;
    return out;
  });
}

function convertToolChoice(value: unknown, parallel: unknown): AnthropicToolChoice | undefined {
  const choice = readToolChoice(value);
  let out: AnthropicToolChoice | undefined;
  if (choice === undefined) out = parallel === false ? { type: 'auto' } : undefined;
  else if (choice === 'auto') out = { type: 'auto' };
  else if (choice === 'required') out = { type: 'any' };
  else if (choice === 'none') out = { type: 'none' };
  else out = { type: 'tool', name: choice.name };
  if (out && parallel === false && out.type !== 'none') out.disable_parallel_tool_use = true;
  return out;
}

export function anthropicFinishReason(reason: unknown): string {
  switch (reason) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return 'stop';
  }
}

/** Anthropic token counts as reported (message_delta repeats or updates what message_start said). */
export interface AnthropicCounts {
  input: number;
  output: number;
  cacheRead: number;
  cacheCreation: number;
  /** Of `cacheCreation`, written with a one-hour TTL (`cache_creation.ephemeral_1h_input_tokens`). */
  cacheCreation1h: number;
}

export const NO_COUNTS: Readonly<AnthropicCounts> = Object.freeze({
  input: 0,
  output: 0,
  cacheRead: 0,
  cacheCreation: 0,
  cacheCreation1h: 0,
});

/** Merges an Anthropic `usage` object into earlier counts: fields present win. */
export function mergeAnthropicUsage(
  previous: Readonly<AnthropicCounts>,
  usage: Untrusted<AnthropicUsage> | undefined,
): AnthropicCounts {
  if (!usage) return { ...previous };
  const creation: Untrusted<AnthropicUsage['cache_creation']> | undefined = asObject(usage.cache_creation);
  const pick = (key: keyof AnthropicUsage, old: number) => (typeof usage[key] === 'number' ? count(usage[key]) : old);
  return {
    input: pick('input_tokens', previous.input),
    output: pick('output_tokens', previous.output),
    cacheRead: pick('cache_read_input_tokens', previous.cacheRead),
    cacheCreation: pick('cache_creation_input_tokens', previous.cacheCreation),
    cacheCreation1h: creation ? count(creation.ephemeral_1h_input_tokens) : previous.cacheCreation1h,
  };
}

/** Anthropic counts -> OpenAI shape: prompt includes cache reads and writes. */
export function anthropicUsage(c: Readonly<AnthropicCounts>): OpenAIUsageShape {
  return {
    prompt: c.input + c.cacheRead + c.cacheCreation,
    completion: c.output,
    cached: c.cacheRead,
    reasoning: 0,
    cacheWrite: c.cacheCreation,
    cacheWrite1h: Math.min(c.cacheCreation1h, c.cacheCreation),
  };
}

/** An Anthropic message (JSON) -> OpenAI chat.completion. */
export function anthropicMessageToOpenAI(
  message: Untrusted<AnthropicResponse>,
  context: TranslationContext,
): { body: ChatCompletion; usage: OpenAIUsageShape } {
  const answer = new ChatMessageBuilder();
  for (const raw of asArray(message.content)) {
    const block: Untrusted<AnthropicResponseBlock> | undefined = asObject(raw);
    if (!block) continue;
    if (block.type === 'text') answer.text(asString(block.text) ?? '');
    else if (block.type === 'thinking') {
      answer.reasoningText(asString(block.thinking) ?? '');
      answer.reasoningSignature(asString(block.signature));
    } else if (block.type === 'tool_use' || block.type === 'server_tool_use')
      answer.toolCall(asString(block.id) ?? '', asString(block.name) ?? '', block.input);
  }
  const usage = anthropicUsage(mergeAnthropicUsage(NO_COUNTS, asObject(message.usage)));
  const id = asString(message.id) ?? context.requestId;
  return {
    body: chatCompletion(
      id,
      context,
      answer.message(),
      anthropicFinishReason(message.stop_reason),
      openAIUsageWithDetails(usage),
    ),
    usage,
  };
}

/** Converts Anthropic stream events into OpenAI chat.completion.chunk SSE text. */
export class AnthropicEventsToOpenAIChunks {
  private readonly writer: ChunkWriter;
  private counts: AnthropicCounts = { ...NO_COUNTS };
  private roleSent = false;
  private toolIndexByBlock = new Map<number, number>();
  private nextToolIndex = 0;
  private finished = false;

  /** `includeUsage`: the client asked for the usage chunk (`stream_options.include_usage`). */
  constructor(
    private readonly context: TranslationContext,
    private readonly includeUsage: boolean,
  ) {
    this.writer = new ChunkWriter(context.requestId, context.nowSeconds, context.requestModel);
  }

  get usage(): OpenAIUsageShape {
    return anthropicUsage(this.counts);
  }

  private chunk(delta: ChatDelta, finishReason?: string): string {
    if (!this.roleSent) {
      delta = { role: 'assistant', ...delta };
      this.roleSent = true;
    }
    return this.writer.write(JSON.stringify(delta), finishReason);
  }

  /** The hot path: a text delta after the first chunk. */
  private text(text: string): string {
    if (!this.roleSent) return this.chunk({ content: text });
    return this.writer.write(`{"content":${JSON.stringify(text)}}`);
  }

  /** One parsed Anthropic event -> SSE text (possibly empty). */
  event(event: Untrusted<AnthropicStreamEvent>): string {
    switch (event.type) {
      case 'message_start': {
        const message: Untrusted<AnthropicResponse> | undefined = asObject(event.message);
        const id = asString(message?.id);
        if (id !== undefined) this.writer.setId(id);
        this.counts = mergeAnthropicUsage(this.counts, asObject(message?.usage));
        return '';
      }
      case 'content_block_start': {
        const block: Untrusted<AnthropicResponseBlock> | undefined = asObject(event.content_block);
        const index = asNumber(event.index) ?? 0;
        if (block?.type === 'tool_use' || block?.type === 'server_tool_use') {
          const toolIndex = this.nextToolIndex++;
          this.toolIndexByBlock.set(index, toolIndex);
          return this.chunk({
            tool_calls: [
              {
                index: toolIndex,
                id: asString(block.id) ?? '',
                function: { arguments: '', name: asString(block.name) ?? '' },
                type: 'function',
              },
            ],
          });
        }
        if (block?.type === 'text' && typeof block.text === 'string' && block.text !== '')
          return this.chunk({ content: block.text });
        return '';
      }
      case 'content_block_delta': {
        const delta: Untrusted<AnthropicStreamDelta> | undefined = asObject(event.delta);
        const index = asNumber(event.index) ?? 0;
        switch (delta?.type) {
          case 'text_delta':
            return this.text(asString(delta.text) ?? '');
          case 'thinking_delta':
            return this.chunk({ reasoning_content: asString(delta.thinking) ?? '' });
          case 'signature_delta': {
            const signature = asString(delta.signature);
            return signature ? this.chunk({ reasoning_signature: signature }) : '';
          }
          case 'input_json_delta': {
            const toolIndex = this.toolIndexByBlock.get(index) ?? Math.max(0, this.nextToolIndex - 1);
            return this.chunk({
              tool_calls: [
                { index: toolIndex, id: null, function: { arguments: asString(delta.partial_json) ?? '', name: '' } },
              ],
            });
          }
          default:
            // citations have no OpenAI equivalent.
            return '';
        }
      }
      case 'message_delta': {
        this.counts = mergeAnthropicUsage(this.counts, asObject(event.usage));
        const reason = asObject(event.delta)?.stop_reason;
        return reason === undefined || reason === null ? '' : this.chunk({}, anthropicFinishReason(reason));
      }
      case 'message_stop':
        return this.finish();
      case 'error': {
        const error: Untrusted<AnthropicStreamEvent['error']> | undefined = asObject(event.error);
        const out: ChatStreamError = {
          type: 'error',
          error: {
            type: asString(error?.type) ?? 'api_error',
            code: '500',
            message: asString(error?.message) ?? 'stream error',
          },
        };
        return sseData(out);
      }
      default:
        return '';
    }
  }

  /** The usage chunk (when the client asked for it) and [DONE], once. */
  finish(): string {
    if (this.finished) return '';
    this.finished = true;
    if (!this.includeUsage) return 'data: [DONE]\n\n';
    const usage: ChatChunk = {
      id: this.writer.id,
      choices: [],
      created: this.context.nowSeconds,
      model: this.context.requestModel,
      object: 'chat.completion.chunk',
      usage: openAIUsageWithDetails(this.usage),
    };
    return sseData(usage) + 'data: [DONE]\n\n';
  }
}

/** How the Anthropic stream is framed on the wire. */
export type AnthropicStreamFraming = 'sse' | 'bedrock-eventstream';

/** Reads Anthropic stream events from SSE or from Bedrock's eventstream (`chunk` events with base64 `bytes`). */
export class AnthropicStreamReader {
  private readonly sse?: SseParser;
  private readonly eventstream?: EventStreamDecoder;

  constructor(framing: AnthropicStreamFraming) {
    if (framing === 'sse') this.sse = new SseParser();
    else this.eventstream = new EventStreamDecoder();
  }

  /** Returns parsed events; `errors` collects exceptions reported in-band by Bedrock. */
  push(chunk: Buffer, endOfStream: boolean): JsonObject[] {
    const events: JsonObject[] = [];
    if (this.sse) {
      const parsed = this.sse.push(chunk);
      if (endOfStream) parsed.push(...this.sse.end());
      for (const e of parsed) {
        if (e.data === '' || e.data === '[DONE]') continue;
        const value = safeParse(e.data);
        if (value) events.push(value);
      }
      return events;
    }
    const decoder = this.eventstream as EventStreamDecoder;
    const messages = decoder.push(chunk);
    for (const m of messages) {
      const messageType = m.headers[':message-type'];
      const payload = parseJsonBuffer(m.payload);
      if (messageType === 'exception' || messageType === 'error') {
        const p = asObject(payload);
        events.push({
          type: 'error',
          error: {
            type: String(m.headers[':exception-type'] ?? m.headers[':error-code'] ?? 'api_error'),
            message: asString(p?.message) ?? asString(m.headers[':error-message']) ?? 'stream error',
          },
        });
        continue;
      }
      const chunkEvent: Untrusted<BedrockInvokeChunk> | undefined = asObject(payload);
      const bytes = asString(chunkEvent?.bytes);
      if (bytes === undefined) continue;
      const event = safeParse(Buffer.from(bytes, 'base64').toString('utf8'));
      if (event) events.push(event);
    }
    if (endOfStream) decoder.end();
    return events;
  }
}

function safeParse(text: string): JsonObject | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Response translator: Anthropic (JSON or stream) -> OpenAI chat completion. */
export class AnthropicToOpenAIResponse extends ConvertingResponse {
  private reader?: AnthropicStreamReader;
  private converter: AnthropicEventsToOpenAIChunks;

  constructor(
    private readonly context: TranslationContext,
    private readonly framing: AnthropicStreamFraming,
    includeUsage: boolean,
  ) {
    super('OpenAI' satisfies ClientApi, context.stream);
    this.converter = new AnthropicEventsToOpenAIChunks(context, includeUsage);
    if (framing === 'bedrock-eventstream') this.streamContentType = EVENTSTREAM_CONTENT_TYPE;
  }

  protected convertBody(whole: Buffer): Buffer {
    const message = asObject(parseJsonBuffer(whole));
    if (!message) return this.unreadable('Anthropic');
    const { body, usage } = anthropicMessageToOpenAI(message, this.context);
    this.usage = tokenUsage(usage);
    return Buffer.from(JSON.stringify(body));
  }

  protected streamChunk(chunk: Buffer, endOfStream: boolean): Buffer {
    this.reader ??= new AnthropicStreamReader(this.framing);
    let out = '';
    try {
      for (const event of this.reader.push(chunk, endOfStream)) out += this.converter.event(event);
    } catch (error) {
      out += sseData({
        type: 'error',
        error: { type: 'upstream_error', code: '502', message: (error as Error).message },
      });
    }
    this.usage = tokenUsage(this.converter.usage);
    if (endOfStream) out += this.converter.finish();
    return out === '' ? EMPTY : Buffer.from(out);
  }
}
