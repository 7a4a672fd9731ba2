/**
 * AWS Bedrock Converse / ConverseStream for OpenAI chat clients and Anthropic Messages clients.
 * Streams arrive as `application/vnd.amazon.eventstream`; OpenAI clients get chat.completion.chunk SSE with
 * the usage chunk last, Anthropic clients get Messages SSE events.
 */
import { EventStreamDecoder, EventStreamError } from '../eventstream';
import { type TranslationContext, type TranslatorFactory, type UpstreamRequest } from '../translate/types';
import {
  ALL_OPENAI_ONLY_PARAMS,
  asArray,
  asNumber,
  asObject,
  asString,
  type CacheControl,
  cacheControlOf,
  checkRange,
  ChunkWriter,
  anthropicOutputFormat,
  claudeJsonSchemaFormat,
  claudeThinking,
  ConvertingResponse,
  converseCachePoint,
  count,
  EMPTY,
  EVENTSTREAM_CONTENT_TYPE,
  invalid,
  isObject,
  JsonObject,
  type JsonSchemaFormat,
  maxOutputTokens,
  modelPathSegment,
  OpenAIUsageShape,
  parseDataUrl,
  parseJsonBuffer,
  reasoningEffort,
  rejectIfSet,
  rejectUnsupportedParams,
  sseData,
  sseEvent,
  streamUsageAsked,
  tokenUsage,
  unsupported,
  unsupportedContent,
} from './common';
import {
  type ChatContent,
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
  ConverseCachePoint,
  ConverseContentBlock,
  ConverseImageBlock,
  ConverseInferenceConfig,
  ConverseMessage,
  ConverseOutputConfig,
  ConverseRequest,
  ConverseResponse,
  ConverseResponseBlock,
  ConverseStreamEvent,
  ConverseSystemBlock,
  ConverseTextBlock,
  ConverseToolConfig,
  ConverseToolSpec,
  ConverseUsage,
} from './wire/bedrock-converse';
import type { Untrusted } from './wire/untrusted';
import type {
  AnthropicRequestBlock,
  AnthropicRequestMessage,
  AnthropicRequestTool,
  AnthropicToolChoice,
} from './wire/anthropic-messages';
import type { ChatChunk, ChatDelta, ChatStreamError, ChatUsage } from './wire/openai-chat';
import { chatCompletion, ChatMessageBuilder } from './openai-chat-answer';

const BACKEND = 'AWSBedrock';

function conversePath(model: string, stream: boolean): string {
  return `/model/${modelPathSegment(model)}/${stream ? 'converse-stream' : 'converse'}`;
}

const IMAGE_FORMATS: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpeg',
  'image/jpg': 'jpeg',
  'image/gif': 'gif',
  'image/webp': 'webp',
};

function imageBlock(url: string, param: string): ConverseImageBlock {
  const data = parseDataUrl(url);
  if (!data) throw unsupported(param, BACKEND, 'images must be base64 data URLs');
  const format = IMAGE_FORMATS[data.mediaType];
  if (!format) throw unsupported(param, BACKEND, `image type "${data.mediaType}"`);
  return { image: { format, source: { bytes: data.data } } };
}

// ---------------------------------------------------------------------------------------------------
// OpenAI chat -> Converse

/**
 * `openAIChatToConverse(body, model)`: `model` is the Bedrock model id sent upstream (the reasoning control depends
 * on the model family); by default the body's `model`.
 */
export function openAIChatToConverse(body: JsonObject, model = asString(body.model) ?? ''): ConverseRequest {
  rejectUnsupportedParams(body, BACKEND, ALL_OPENAI_ONLY_PARAMS);
  if (body.n !== undefined && body.n !== null && body.n !== 1) throw unsupported('n', BACKEND, 'only n=1 is possible');
  const jsonSchema = claudeJsonSchemaFormat(body, BACKEND);

  const inferenceConfig: ConverseInferenceConfig = {};
  const maxTokens = maxOutputTokens(body, 1);
  if (maxTokens !== undefined) inferenceConfig.maxTokens = maxTokens;
  const temperature = checkRange(body, 'temperature', 0, 1);
  if (temperature !== undefined) inferenceConfig.temperature = temperature;
  const topP = checkRange(body, 'top_p', 0, 1);
  if (topP !== undefined) inferenceConfig.topP = topP;
  const stop = readStop(body.stop);
  if (stop) inferenceConfig.stopSequences = stop;

  const { system, messages } = convertMessages(body.messages);
  const out: ConverseRequest = { inferenceConfig, messages };
  if (system.length > 0) out.system = system;
  const toolConfig = convertTools(body.tools, body.tool_choice);
  if (toolConfig) out.toolConfig = toolConfig;
  const additional = converseReasoning(body, model);
  if (additional) out.additionalModelRequestFields = additional;
  if (jsonSchema) out.outputConfig = converseOutputConfig(jsonSchema);
  return out;
}

/** Nova 2's `reasoningConfig.maxReasoningEffort` for each OpenAI effort. */
const NOVA_REASONING_EFFORT: Readonly<Record<string, string>> = Object.freeze({
  minimal: 'low',
  low: 'low',
  medium: 'medium',
  high: 'high',
  xhigh: 'high',
  max: 'high',
});

/**
 * Converse's `additionalModelRequestFields` for reasoning, by model family: Claude (`anthropic.claude` ids, also
 * behind a geo inference-profile prefix) takes Anthropic's `thinking` (see claudeThinking), Amazon Nova 2 takes
 * `reasoningConfig {type: "enabled", maxReasoningEffort: low|medium|high}`. Any other model (or an ARN that names no
 * family) has no known reasoning control: `reasoning_effort` is answered 422 (`thinking` still passes through).
 */
function converseReasoning(body: JsonObject, model: string): JsonObject | undefined {
  const id = model.toLowerCase();
  const effort = body.reasoning_effort;
  if (effort === undefined || effort === null || id.includes('claude')) {
    const thinking = claudeThinking(body);
    return thinking ? { thinking } : undefined;
  }
  if (id.includes('amazon.nova')) {
    const level = reasoningEffort(body, Object.keys(NOVA_REASONING_EFFORT));
    if (body.thinking !== undefined && body.thinking !== null)
      throw invalid('reasoning_effort and thinking cannot both be set', 'reasoning_effort');
    return level === 'none' || level === undefined
      ? undefined
      : { reasoningConfig: { type: 'enabled', maxReasoningEffort: NOVA_REASONING_EFFORT[level] } };
  }
  throw unsupported(
    'reasoning_effort',
    BACKEND,
    `model "${model.slice(0, 128)}" has no known reasoning control (Claude and Amazon Nova models do)`,
  );
}

/** Converse structured outputs: `outputConfig.textFormat`, the schema as a JSON string. */
function converseOutputConfig(format: JsonSchemaFormat): ConverseOutputConfig {
  const definition: ConverseOutputConfig['textFormat']['structure']['jsonSchema'] = {
    schema: JSON.stringify(format.schema),
  };
  if (format.name !== undefined) definition.name = format.name;
  if (format.description !== undefined) definition.description = format.description;
  return { textFormat: { type: 'json_schema', structure: { jsonSchema: definition } } };
}

function convertMessages(value: unknown): { system: ConverseSystemBlock[]; messages: ConverseMessage[] } {
  const system: ConverseSystemBlock[] = [];
  const messages: ConverseMessage[] = [];
  const append = (role: 'user' | 'assistant', blocks: ConverseContentBlock[]) => {
    const last = messages[messages.length - 1];
    // Converse requires alternating roles: consecutive messages of one role are merged.
    if (last?.role === role) last.content.push(...blocks);
    else messages.push({ content: blocks, role });
  };
  forEachChatMessage(value, { cacheMarkers: true }, (turn) => {
    switch (turn.role) {
      case 'system':
        system.push(...marked(textBlocks(turn.content), turn.cache));
        break;
      case 'user':
        append('user', marked(userBlocks(turn.content), turn.cache));
        break;
      case 'assistant': {
        const blocks: ConverseContentBlock[] = [];
        if (turn.reasoning) {
          blocks.push({
            reasoningContent: { reasoningText: { text: turn.reasoning.text, signature: turn.reasoning.signature } },
          });
        }
        if (turn.content !== undefined) blocks.push(...textBlocks(turn.content));
        for (const call of turn.toolCalls)
          blocks.push({ toolUse: { toolUseId: call.id ?? '', name: call.name, input: call.arguments } });
        if (blocks.length === 0) throw emptyAssistant(turn);
        append('assistant', marked(blocks, turn.cache));
        break;
      }
      case 'tool': {
        const id = requiredToolCallId(turn);
        const parts = userBlocks(turn.content);
        // A tool result holds no checkpoint: one marked part puts it after the result.
        const content = parts.filter((block) => !('cachePoint' in block)) as (ConverseTextBlock | ConverseImageBlock)[];
        const blocks: ConverseContentBlock[] = [{ toolResult: { toolUseId: id, content } }];
        const points = parts.filter((block) => 'cachePoint' in block);
        if (points.length > 0 && !turn.cache) blocks.push(points[points.length - 1]);
        append('user', marked(blocks, turn.cache));
        break;
      }
    }
  });
  return { system, messages };
}

/** A breakpoint on the message itself: a cache checkpoint after its blocks. */
function marked<T extends ConverseContentBlock>(
  blocks: T[],
  cache: CacheControl | undefined,
): (T | ConverseCachePoint)[] {
  if (cache && blocks.length > 0) return [...blocks, converseCachePoint(cache)];
  return blocks;
}

/** Content parts -> Converse blocks, with a cache checkpoint after each part that carries `cache_control`. */
function partBlocks<T extends ConverseContentBlock>(
  content: ChatContent,
  convert: (part: ChatPart) => T,
): (T | ConverseTextBlock | ConverseCachePoint)[] {
  if (typeof content === 'string') return [{ text: content }];
  const blocks: (T | ConverseCachePoint)[] = [];
  for (const part of content) {
    blocks.push(convert(part));
    if (part.cache) blocks.push(converseCachePoint(part.cache));
  }
  return blocks;
}

function textBlocks(content: ChatContent): (ConverseTextBlock | ConverseCachePoint)[] {
  return partBlocks<ConverseTextBlock>(content, (part) => {
    if (part.type === 'text' || part.type === 'refusal') return { text: part.text };
    throw unsupportedPart(part);
  });
}

function userBlocks(content: ChatContent): (ConverseTextBlock | ConverseImageBlock | ConverseCachePoint)[] {
  return partBlocks<ConverseTextBlock | ConverseImageBlock>(content, (part) => {
    if (part.type === 'text') return { text: part.text };
    if (part.type === 'image_url') return imageBlock(imageUrlOf(part), `${part.param}.image_url.url`);
    throw unsupportedPart(part);
  });
}

function convertTools(value: unknown, choiceValue: unknown): ConverseToolConfig | undefined {
  if (value === undefined || value === null || choiceValue === 'none') return undefined;
  const tools = readChatTools(value, BACKEND, { cacheMarkers: true }) ?? [];
  if (tools.length === 0) return undefined;
  const specs: ConverseToolConfig['tools'] = [];
  for (const tool of tools) {
    const inputSchema = { json: tool.parameters ?? { type: 'object', properties: {} } };
    const spec: ConverseToolSpec['toolSpec'] =
      tool.description === undefined
        ? { name: tool.name, inputSchema }
        : { name: tool.name, description: tool.description, inputSchema };
    if (tool.strict) spec.strict = true;
    specs.push({ toolSpec: spec });
    if (tool.cache) specs.push(converseCachePoint(tool.cache));
  }
  const config: ConverseToolConfig = { tools: specs };
  const choice = readToolChoice(choiceValue);
  if (choice === 'auto') config.toolChoice = { auto: {} };
  else if (choice === 'required') config.toolChoice = { any: {} };
  else if (typeof choice === 'object') config.toolChoice = { tool: { name: choice.name } };
  return config;
}

export function converseFinishReason(reason: unknown): string {
  switch (reason) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'content_filtered':
    case 'guardrail_intervened':
      return 'content_filter';
    default:
      return 'stop';
  }
}

/** Converse usage: inputTokens excludes cache reads and writes, as with Anthropic. */
export function converseUsage(usage: Untrusted<ConverseUsage> | undefined): OpenAIUsageShape {
  const cacheRead = count(usage?.cacheReadInputTokens);
  const cacheWrite = count(usage?.cacheWriteInputTokens);
  // `cacheDetails`: the writes per TTL ({inputTokens, ttl: "5m" | "1h"}).
  let cacheWrite1h = 0;
  for (const detail of asArray(usage?.cacheDetails)) {
    const d: Untrusted<NonNullable<ConverseUsage['cacheDetails']>[number]> | undefined = asObject(detail);
    if (d?.ttl === '1h') cacheWrite1h += count(d.inputTokens);
  }
  return {
    prompt: count(usage?.inputTokens) + cacheRead + cacheWrite,
    completion: count(usage?.outputTokens),
    cached: cacheRead,
    reasoning: 0,
    cacheWrite,
    cacheWrite1h: Math.min(cacheWrite1h, cacheWrite),
  };
}

function openAIUsage(u: OpenAIUsageShape): ChatUsage {
  const out: ChatUsage = {
    prompt_tokens: u.prompt,
    completion_tokens: u.completion,
    total_tokens: u.prompt + u.completion,
  };
  if (u.cached > 0) out.prompt_tokens_details = { cached_tokens: u.cached };
  return out;
}

/** The content blocks of a Converse answer (`output.message.content`), none when it has no such list. */
function converseBlocks(response: Untrusted<ConverseResponse>): unknown[] {
  const output: Untrusted<ConverseResponse['output']> | undefined = asObject(response.output);
  const message: Untrusted<ConverseResponse['output']['message']> | undefined = asObject(output?.message);
  return asArray(message?.content);
}

type ReasoningText = NonNullable<NonNullable<ConverseResponseBlock['reasoningContent']>['reasoningText']>;

/** A block's `reasoningContent.reasoningText`. */
function reasoningTextOf(block: Untrusted<ConverseResponseBlock>): Untrusted<ReasoningText> | undefined {
  const reasoning: Untrusted<ConverseResponseBlock['reasoningContent']> | undefined = asObject(block.reasoningContent);
  return asObject(reasoning?.reasoningText);
}

/** Converse response -> OpenAI chat.completion. */
class ConverseToOpenAIResponse extends ConvertingResponse {
  protected streamContentType = EVENTSTREAM_CONTENT_TYPE;
  private decoder?: EventStreamDecoder;
  private stream?: ConverseStreamToOpenAI;

  constructor(
    private readonly context: TranslationContext,
    private readonly includeUsage: boolean,
  ) {
    super('OpenAI', context.stream);
  }

  private requestId(): string {
    return this.headers['x-amzn-requestid'] ?? this.context.requestId;
  }

  protected convertBody(whole: Buffer): Buffer {
    const response: Untrusted<ConverseResponse> | undefined = asObject(parseJsonBuffer(whole));
    if (!response) return this.unreadable('Bedrock Converse');
    const answer = new ChatMessageBuilder();
    for (const raw of converseBlocks(response)) {
      const block: Untrusted<ConverseResponseBlock> | undefined = asObject(raw);
      if (!block) continue;
      // Converse may split the answer into several text blocks: all of it is the message content, as in a stream.
      if (typeof block.text === 'string') answer.text(block.text);
      const reasoning = reasoningTextOf(block);
      const reasoningText = asString(reasoning?.text);
      if (reasoningText !== undefined) answer.reasoningText(reasoningText);
      answer.reasoningSignature(asString(reasoning?.signature));
      const toolUse: Untrusted<ConverseResponseBlock['toolUse']> | undefined = asObject(block.toolUse);
      if (toolUse) answer.toolCall(asString(toolUse.toolUseId) ?? '', asString(toolUse.name) ?? '', toolUse.input);
    }
    const usage = converseUsage(asObject(response.usage));
    this.usage = tokenUsage(usage);
    const completion = chatCompletion(
      this.requestId(),
      this.context,
      answer.message(),
      converseFinishReason(response.stopReason),
      openAIUsage(usage),
    );
    return Buffer.from(JSON.stringify(completion));
  }

  protected streamChunk(chunk: Buffer, endOfStream: boolean): Buffer {
    this.decoder ??= new EventStreamDecoder();
    this.stream ??= new ConverseStreamToOpenAI(this.context, this.requestId(), this.includeUsage);
    let out = '';
    try {
      for (const message of this.decoder.push(chunk)) out += this.stream.message(message.headers, message.payload);
      if (endOfStream) this.decoder.end();
    } catch (error) {
      out += sseData({
        type: 'error',
        error: { type: 'upstream_error', code: '502', message: streamErrorMessage(error) },
      });
    }
    if (endOfStream) out += this.stream.finish();
    this.usage = tokenUsage(this.stream.usage);
    return out === '' ? EMPTY : Buffer.from(out);
  }
}

function streamErrorMessage(error: unknown): string {
  return error instanceof EventStreamError ? error.message : 'could not translate the Bedrock event stream';
}

type EventHeaders = Readonly<Record<string, unknown>>;

const EMPTY_ASSISTANT_DELTA = '{"content":"","role":"assistant"}';

type StreamDelta = NonNullable<ConverseStreamEvent['delta']>;

/** A `contentBlockStart` event's `start.toolUse`. */
function toolUseStartOf(
  event: Untrusted<ConverseStreamEvent>,
): Untrusted<NonNullable<ConverseStreamEvent['start']>['toolUse']> | undefined {
  const start: Untrusted<ConverseStreamEvent['start']> | undefined = asObject(event.start);
  return asObject(start?.toolUse);
}

/** A `metadata` event's `serviceTier.type`. */
function serviceTierOf(event: Untrusted<ConverseStreamEvent>): string | undefined {
  const tier: Untrusted<ConverseStreamEvent['serviceTier']> | undefined = asObject(event.serviceTier);
  return asString(tier?.type);
}

/** In-band exception frames (`:message-type: exception`) -> an error object. */
function exceptionOf(headers: EventHeaders, payload: Buffer): { type: string; message: string } | undefined {
  const messageType = headers[':message-type'];
  if (messageType !== 'exception' && messageType !== 'error') return undefined;
  const parsed = asObject(parseJsonBuffer(payload));
  return {
    type: String(headers[':exception-type'] ?? headers[':error-code'] ?? 'ModelStreamErrorException'),
    message: asString(parsed?.message) ?? asString(headers[':error-message']) ?? 'Bedrock stream error',
  };
}

/** ConverseStream events -> OpenAI chunks, exactly one `data:` per content event, usage last. */
export class ConverseStreamToOpenAI {
  private usageShape: OpenAIUsageShape = { prompt: 0, completion: 0, cached: 0, reasoning: 0 };
  private serviceTier: string | undefined;
  private sawMetadata = false;
  private toolIndexByBlock = new Map<number, number>();
  private nextToolIndex = 0;
  private finished = false;

  /** `includeUsage`: the client asked for the usage chunk (`stream_options.include_usage`). */
  constructor(
    private readonly context: TranslationContext,
    private readonly id: string,
    private readonly includeUsage: boolean,
  ) {
    this.writer = new ChunkWriter(id, context.nowSeconds, context.requestModel);
  }

  get usage(): OpenAIUsageShape {
    return this.usageShape;
  }

  private readonly writer: ChunkWriter;

  private chunk(delta: ChatDelta, finishReason?: string): string {
    return this.writer.write(JSON.stringify(delta), finishReason);
  }

  message(headers: EventHeaders, payload: Buffer): string {
    const exception = exceptionOf(headers, payload);
    if (exception) {
      const error: ChatStreamError = {
        type: 'error',
        error: { type: exception.type, code: '500', message: exception.message },
      };
      return sseData(error);
    }
    const eventType = headers[':event-type'];
    if (typeof eventType !== 'string') return '';
    const event: Untrusted<ConverseStreamEvent> | undefined = asObject(parseJsonBuffer(payload));
    if (!event) return '';
    switch (eventType) {
      case 'messageStart':
        return this.writer.write(EMPTY_ASSISTANT_DELTA);
      case 'contentBlockStart': {
        const toolUse = toolUseStartOf(event);
        if (!toolUse) return '';
        const toolIndex = this.nextToolIndex++;
        const blockIndex = asNumber(event.contentBlockIndex);
        if (blockIndex !== undefined) this.toolIndexByBlock.set(blockIndex, toolIndex);
        this.lastToolIndex = toolIndex;
        return this.chunk({
          role: 'assistant',
          tool_calls: [
            {
              index: toolIndex,
              id: asString(toolUse.toolUseId) ?? '',
              function: { arguments: '', name: asString(toolUse.name) ?? '' },
              type: 'function',
            },
          ],
        });
      }
      case 'contentBlockDelta': {
        const delta: Untrusted<StreamDelta> | undefined = asObject(event.delta);
        if (!delta) return '';
        if (typeof delta.text === 'string')
          return this.writer.write(`{"content":${JSON.stringify(delta.text)},"role":"assistant"}`);
        const toolUse: Untrusted<StreamDelta['toolUse']> | undefined = asObject(delta.toolUse);
        if (toolUse) {
          const blockIndex = asNumber(event.contentBlockIndex);
          const toolIndex =
            (blockIndex !== undefined ? this.toolIndexByBlock.get(blockIndex) : undefined) ?? this.lastToolIndex;
          return this.chunk({
            role: 'assistant',
            tool_calls: [
              {
                index: toolIndex,
                id: null,
                function: { arguments: asString(toolUse.input) ?? '', name: '' },
                type: 'function',
              },
            ],
          });
        }
        const reasoning: Untrusted<StreamDelta['reasoningContent']> | undefined = asObject(delta.reasoningContent);
        if (reasoning && typeof reasoning.text === 'string')
          return this.chunk({ reasoning_content: reasoning.text, role: 'assistant' });
        if (reasoning && typeof reasoning.signature === 'string' && reasoning.signature !== '')
          return this.chunk({ reasoning_signature: reasoning.signature, role: 'assistant' });
        return '';
      }
      case 'messageStop':
        return this.writer.write(EMPTY_ASSISTANT_DELTA, converseFinishReason(event.stopReason));
      case 'metadata':
        this.usageShape = converseUsage(asObject(event.usage));
        this.serviceTier = serviceTierOf(event) ?? this.serviceTier;
        this.sawMetadata = true;
        return '';
      default:
        return '';
    }
  }

  private lastToolIndex = 0;

  /** The usage chunk (when the client asked for it and Bedrock reported usage) and [DONE], once. */
  finish(): string {
    if (this.finished) return '';
    this.finished = true;
    let out = '';
    if (this.sawMetadata && this.includeUsage) {
      const chunk: ChatChunk = {
        id: this.id,
        choices: [],
        created: this.context.nowSeconds,
        model: this.context.requestModel,
        ...(this.serviceTier !== undefined && { service_tier: this.serviceTier }),
        object: 'chat.completion.chunk',
        usage: openAIUsage(this.usageShape),
      };
      out += sseData(chunk);
    }
    return `${out}data: [DONE]\n\n`;
  }
}

export const openAIChatToBedrock: TranslatorFactory = (context) => {
  let includeUsage = streamUsageAsked(context);
  return {
    request(body): UpstreamRequest {
      includeUsage = streamUsageAsked(context, body);
      return {
        path: conversePath(context.upstreamModel, context.stream),
        body: openAIChatToConverse(body, context.upstreamModel),
        setHeaders: {},
        removeHeaders: [],
      };
    },
    response: () => new ConverseToOpenAIResponse(context, includeUsage),
  };
};

// ---------------------------------------------------------------------------------------------------
// Anthropic Messages -> Converse

const ANTHROPIC_STOP: Record<string, string> = {
  end_turn: 'end_turn',
  tool_use: 'tool_use',
  max_tokens: 'max_tokens',
  stop_sequence: 'stop_sequence',
  content_filtered: 'refusal',
  guardrail_intervened: 'refusal',
  model_context_window_exceeded: 'model_context_window_exceeded',
};

export function anthropicMessagesToConverse(body: JsonObject): JsonObject {
  rejectIfSet(body, 'top_k', BACKEND);
  const inferenceConfig: JsonObject = {};
  if (body.max_tokens !== undefined) {
    if (typeof body.max_tokens !== 'number' || !Number.isInteger(body.max_tokens) || body.max_tokens < 1) {
      throw invalid('max_tokens must be a positive integer', 'max_tokens');
    }
    inferenceConfig.maxTokens = body.max_tokens;
  }
  const temperature = checkRange(body, 'temperature', 0, 1);
  if (temperature !== undefined) inferenceConfig.temperature = temperature;
  const topP = checkRange(body, 'top_p', 0, 1);
  if (topP !== undefined) inferenceConfig.topP = topP;
  if (Array.isArray(body.stop_sequences) && body.stop_sequences.length > 0)
    inferenceConfig.stopSequences = body.stop_sequences;

  const out: JsonObject = { inferenceConfig };
  if (typeof body.system === 'string') out.system = [{ text: body.system }];
  else if (Array.isArray(body.system)) {
    out.system = body.system.flatMap((b, i) => {
      const block: Untrusted<AnthropicRequestBlock> | undefined = asObject(b);
      const text = asString(block?.text);
      if (text === undefined) throw unsupportedContent(`system[${i}]`, block?.type);
      return withCachePoint({ text }, block, `system[${i}]`);
    });
  }
  if (!Array.isArray(body.messages)) throw invalid('messages must be an array', 'messages');
  out.messages = body.messages.map((raw, i) => {
    const message: Untrusted<AnthropicRequestMessage> | undefined = asObject(raw);
    if (!message || (message.role !== 'user' && message.role !== 'assistant'))
      throw invalid(`messages[${i}].role must be "user" or "assistant"`, `messages[${i}].role`);
    const content =
      typeof message.content === 'string'
        ? [{ text: message.content }]
        : asArray(message.content).flatMap((b, j) => {
            const param = `messages[${i}].content[${j}]`;
            return withCachePoint(anthropicBlockToConverse(b, param), asObject(b), param);
          });
    return { content, role: message.role };
  });
  if (Array.isArray(body.tools) && body.tools.length > 0) {
    const config: JsonObject = {
      tools: body.tools.flatMap((raw, i) => {
        const tool: Untrusted<AnthropicRequestTool> | undefined = asObject(raw);
        if (!tool || typeof tool.name !== 'string' || !isObject(tool.input_schema))
          throw unsupported(`tools[${i}]`, BACKEND, 'only custom tools with an input_schema');
        const spec: JsonObject = { name: tool.name };
        if (typeof tool.description === 'string') spec.description = tool.description;
        spec.inputSchema = { json: tool.input_schema };
        if (tool.strict === true) spec.strict = true;
        return withCachePoint({ toolSpec: spec }, tool, `tools[${i}]`);
      }),
    };
    const choice: Untrusted<AnthropicToolChoice> | undefined = asObject(body.tool_choice);
    if (choice?.type === 'auto') config.toolChoice = { auto: {} };
    else if (choice?.type === 'any') config.toolChoice = { any: {} };
    else if (choice?.type === 'tool' && typeof choice.name === 'string')
      config.toolChoice = { tool: { name: choice.name } };
    if (choice?.type !== 'none') out.toolConfig = config;
  }
  if (isObject(body.thinking)) out.additionalModelRequestFields = { thinking: body.thinking };
  const outputFormat = anthropicOutputFormat(body);
  if (outputFormat) out.outputConfig = converseOutputConfig(outputFormat);
  return out;
}

/**
 * A Converse block, followed by a cache checkpoint when its Anthropic source carries `cache_control` (or, for a tool
 * result, when a block inside it does: a tool result holds no checkpoint).
 */
function withCachePoint(
  block: JsonObject,
  source: Untrusted<AnthropicRequestBlock | AnthropicRequestTool> | undefined,
  param: string,
): JsonObject[] {
  let cache = cacheControlOf(source, param);
  if (!cache && source?.type === 'tool_result' && 'content' in source && Array.isArray(source.content)) {
    source.content.forEach((inner, k) => {
      cache = cacheControlOf(asObject(inner), `${param}.content[${k}]`) ?? cache;
    });
  }
  return cache ? [block, converseCachePoint(cache)] : [block];
}

/** An Anthropic client's block as Converse; the ids, names and inputs pass through as sent (Bedrock checks them). */
function anthropicBlockToConverse(raw: unknown, param: string): JsonObject {
  const block: Untrusted<AnthropicRequestBlock> | undefined = asObject(raw);
  switch (block?.type) {
    case 'text':
      return { text: asString(block.text) ?? '' };
    case 'image': {
      const source: Untrusted<AnthropicRequestBlock['source']> | undefined = asObject(block.source);
      const format = IMAGE_FORMATS[asString(source?.media_type) ?? ''];
      if (source?.type !== 'base64' || !format)
        throw unsupported(param, BACKEND, 'images must be base64 png, jpeg, gif or webp');
      return { image: { format, source: { bytes: source.data } } };
    }
    case 'tool_use':
      return { toolUse: { toolUseId: block.id, name: block.name, input: block.input ?? {} } };
    case 'tool_result': {
      const content =
        typeof block.content === 'string'
          ? [{ text: block.content }]
          : asArray(block.content).map((c, k) => anthropicBlockToConverse(c, `${param}.content[${k}]`));
      const result: JsonObject = { toolUseId: block.tool_use_id, content };
      if (block.is_error === true) result.status = 'error';
      return { toolResult: result };
    }
    case 'thinking':
      return { reasoningContent: { reasoningText: { text: block.thinking, signature: block.signature } } };
    default:
      throw unsupportedContent(param, block?.type);
  }
}

/** Anthropic's split of cache writes by TTL (`cache_creation`), when Bedrock reported writes. */
function withCacheCreation(usage: JsonObject, counts: OpenAIUsageShape): JsonObject {
  const writes = counts.cacheWrite ?? 0;
  if (writes === 0) return usage;
  const hour = counts.cacheWrite1h ?? 0;
  usage.cache_creation = { ephemeral_5m_input_tokens: writes - hour, ephemeral_1h_input_tokens: hour };
  return usage;
}

/** Converse response -> Anthropic message / Messages SSE. */
class ConverseToAnthropicResponse extends ConvertingResponse {
  protected streamContentType = EVENTSTREAM_CONTENT_TYPE;
  private decoder?: EventStreamDecoder;
  private stream?: ConverseStreamToAnthropic;

  constructor(private readonly context: TranslationContext) {
    super('Anthropic', context.stream);
  }

  private messageId(): string {
    return this.headers['x-amzn-requestid'] ?? this.context.requestId;
  }

  protected convertBody(whole: Buffer): Buffer {
    const response: Untrusted<ConverseResponse> | undefined = asObject(parseJsonBuffer(whole));
    if (!response) return this.unreadable('Bedrock Converse');
    // The blocks' values pass through as Bedrock sent them (the Anthropic client reads the same names).
    const content: JsonObject[] = [];
    for (const raw of converseBlocks(response)) {
      const block: Untrusted<ConverseResponseBlock> | undefined = asObject(raw);
      if (!block) continue;
      if (typeof block.text === 'string') content.push({ type: 'text', text: block.text });
      const reasoning = reasoningTextOf(block);
      if (reasoning)
        content.push({ type: 'thinking', thinking: reasoning.text ?? '', signature: reasoning.signature ?? '' });
      const toolUse: Untrusted<ConverseResponseBlock['toolUse']> | undefined = asObject(block.toolUse);
      if (toolUse)
        content.push({ type: 'tool_use', id: toolUse.toolUseId, name: toolUse.name, input: toolUse.input ?? {} });
    }
    const usage: Untrusted<ConverseUsage> | undefined = asObject(response.usage);
    const counts = converseUsage(usage);
    this.usage = tokenUsage(counts);
    return Buffer.from(
      JSON.stringify({
        id: this.messageId(),
        type: 'message',
        role: 'assistant',
        content,
        model: this.context.requestModel,
        stop_reason: ANTHROPIC_STOP[asString(response.stopReason) ?? ''] ?? 'end_turn',
        usage: withCacheCreation(
          {
            cache_creation_input_tokens: count(usage?.cacheWriteInputTokens),
            cache_read_input_tokens: count(usage?.cacheReadInputTokens),
            input_tokens: count(usage?.inputTokens),
            output_tokens: count(usage?.outputTokens),
          },
          counts,
        ),
      }),
    );
  }

  protected streamChunk(chunk: Buffer, endOfStream: boolean): Buffer {
    this.decoder ??= new EventStreamDecoder();
    this.stream ??= new ConverseStreamToAnthropic(this.context, this.messageId());
    let out = '';
    try {
      for (const message of this.decoder.push(chunk)) out += this.stream.message(message.headers, message.payload);
      if (endOfStream) this.decoder.end();
    } catch (error) {
      out += sseEvent('error', { type: 'error', error: { type: 'api_error', message: streamErrorMessage(error) } });
    }
    if (endOfStream) out += this.stream.finish();
    this.usage = tokenUsage(this.stream.usage);
    return out === '' ? EMPTY : Buffer.from(out);
  }
}

/** ConverseStream events -> Anthropic Messages SSE events. */
class ConverseStreamToAnthropic {
  private raw: Untrusted<ConverseUsage> | undefined;
  private stopReason: string | null = null;
  private started = false;
  private finished = false;
  private openBlocks = new Set<number>();

  constructor(
    private readonly context: TranslationContext,
    private readonly id: string,
  ) {}

  get usage(): OpenAIUsageShape {
    return converseUsage(this.raw);
  }

  private start(): string {
    if (this.started) return '';
    this.started = true;
    return sseEvent('message_start', {
      type: 'message_start',
      message: {
        id: this.id,
        type: 'message',
        role: 'assistant',
        content: [],
        model: this.context.requestModel,
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 0, output_tokens: 0 },
      },
    });
  }

  private openBlock(index: number, block: JsonObject): string {
    if (this.openBlocks.has(index)) return '';
    this.openBlocks.add(index);
    return sseEvent('content_block_start', { type: 'content_block_start', index, content_block: block });
  }

  message(headers: EventHeaders, payload: Buffer): string {
    const exception = exceptionOf(headers, payload);
    if (exception)
      return sseEvent('error', { type: 'error', error: { type: 'api_error', message: exception.message } });
    const eventType = headers[':event-type'];
    const event: Untrusted<ConverseStreamEvent> | undefined =
      typeof eventType === 'string' ? asObject(parseJsonBuffer(payload)) : undefined;
    if (!event) return '';
    const index = asNumber(event.contentBlockIndex) ?? 0;
    switch (eventType) {
      case 'messageStart':
        return this.start();
      case 'contentBlockStart': {
        const toolUse = toolUseStartOf(event);
        if (!toolUse) return this.start();
        return (
          this.start() +
          this.openBlock(index, { type: 'tool_use', id: toolUse.toolUseId, name: toolUse.name, input: {} })
        );
      }
      case 'contentBlockDelta': {
        const delta: Untrusted<StreamDelta> | undefined = asObject(event.delta);
        if (!delta) return '';
        if (typeof delta.text === 'string') {
          return (
            this.start() +
            this.openBlock(index, { type: 'text', text: '' }) +
            sseEvent('content_block_delta', {
              type: 'content_block_delta',
              index,
              delta: { type: 'text_delta', text: delta.text },
            })
          );
        }
        const toolUse: Untrusted<StreamDelta['toolUse']> | undefined = asObject(delta.toolUse);
        if (toolUse) {
          return sseEvent('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'input_json_delta', partial_json: asString(toolUse.input) ?? '' },
          });
        }
        const reasoning: Untrusted<StreamDelta['reasoningContent']> | undefined = asObject(delta.reasoningContent);
        if (reasoning) {
          let out = this.start() + this.openBlock(index, { type: 'thinking', thinking: '', signature: '' });
          if (typeof reasoning.text === 'string') {
            out += sseEvent('content_block_delta', {
              type: 'content_block_delta',
              index,
              delta: { type: 'thinking_delta', thinking: reasoning.text },
            });
          }
          if (typeof reasoning.signature === 'string') {
            out += sseEvent('content_block_delta', {
              type: 'content_block_delta',
              index,
              delta: { type: 'signature_delta', signature: reasoning.signature },
            });
          }
          return out;
        }
        return '';
      }
      case 'contentBlockStop':
        if (!this.openBlocks.delete(index)) return '';
        return sseEvent('content_block_stop', { type: 'content_block_stop', index });
      case 'messageStop':
        this.stopReason = ANTHROPIC_STOP[asString(event.stopReason) ?? ''] ?? 'end_turn';
        return '';
      case 'metadata':
        this.raw = asObject(event.usage);
        return '';
      default:
        return '';
    }
  }

  finish(): string {
    if (this.finished) return '';
    this.finished = true;
    let out = this.start();
    for (const index of this.openBlocks) out += sseEvent('content_block_stop', { type: 'content_block_stop', index });
    this.openBlocks.clear();
    out += sseEvent('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: this.stopReason ?? 'end_turn', stop_sequence: null },
      usage: withCacheCreation(
        {
          input_tokens: count(this.raw?.inputTokens),
          cache_creation_input_tokens: count(this.raw?.cacheWriteInputTokens),
          cache_read_input_tokens: count(this.raw?.cacheReadInputTokens),
          output_tokens: count(this.raw?.outputTokens),
        },
        converseUsage(this.raw),
      ),
    });
    return out + sseEvent('message_stop', { type: 'message_stop' });
  }
}

/** Anthropic Messages clients on Converse (their count_tokens goes to CountTokens: count-tokens.ts). */
export const anthropicMessagesToBedrock: TranslatorFactory = (context) => {
  return {
    request(body): UpstreamRequest {
      const stream = body.stream === true;
      return {
        path: conversePath(context.upstreamModel, stream),
        body: anthropicMessagesToConverse(body),
        setHeaders: {},
        removeHeaders: [],
      };
    },
    response: () => new ConverseToAnthropicResponse(context),
  };
};
