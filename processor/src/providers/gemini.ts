/**
 * Vertex AI Gemini: OpenAI chat completions -> generateContent / streamGenerateContent?alt=sse, and
 * OpenAI embeddings -> predict. Usage: completion = candidates + thoughts, reasoning = thoughts,
 * cached = cachedContentTokenCount.
 */
import { SseParser } from '../sse';
import {
  TranslationError,
  type TranslationContext,
  type TranslatorFactory,
  type UpstreamRequest,
} from '../translate/types';
import {
  asArray,
  asNumber,
  asObject,
  asString,
  checkRange,
  ConvertingResponse,
  count,
  EMPTY,
  invalid,
  isObject,
  JsonObject,
  maxOutputTokens,
  type OpenAIOnlyParam,
  OpenAIUsageShape,
  openAIUsageWithDetails,
  parseDataUrl,
  parseJsonBuffer,
  rejectUnsupportedParams,
  sseData,
  streamUsageAsked,
  tokenUsage,
  unsupported,
  openAIEmbeddingsAnswer,
} from './common';
import { vertexModelPath } from './anthropic';
import {
  type ChatContent,
  emptyAssistant,
  imageUrlOf,
  forEachChatMessage,
  readChatTools,
  readStop,
  readToolChoice,
  unsupportedPart,
} from './openai-chat-reader';
import type {
  GeminiCandidate,
  GeminiContent,
  GeminiGenerationConfig,
  GeminiPart,
  GeminiRequest,
  GeminiResponse,
  GeminiResponsePart,
  GeminiTool,
  GeminiToolConfig,
  GeminiUsageMetadata,
  VertexEmbeddingPrediction,
  VertexPredictResponse,
} from './wire/gemini';
import type { Untrusted } from './wire/untrusted';
import type {
  ChatChoice,
  ChatChunk,
  ChatChunkChoice,
  ChatCompletion,
  ChatDelta,
  ChatResponseFormat,
  ChatResponseMessage,
  ChatStreamError,
  ChatToolCall,
  ChatUsage,
} from './wire/openai-chat';
import * as crypto from 'node:crypto';

const BACKEND = 'GCPVertexAI';

const UNSUPPORTED_PARAMS: readonly OpenAIOnlyParam[] = [
  'logprobs',
  'top_logprobs',
  'logit_bias',
  'audio',
  'prediction',
  'web_search_options',
  'functions',
  'function_call',
];

const THINKING_BUDGET: Record<string, number> = { none: 0, minimal: 512, low: 1024, medium: 8192, high: 24576 };

export function modelPath(context: TranslationContext, method: string): string {
  const schema = context.backend.schema;
  if (schema.name !== 'GCPVertexAI')
    throw new TranslationError(500, `backend ${context.backend.name} is not a Vertex AI backend`, 'server_error');
  return `${vertexModelPath(schema.projectId, schema.region, 'google', context.upstreamModel)}:${method}`;
}

const MIME_BY_EXTENSION: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  pdf: 'application/pdf',
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  mp4: 'video/mp4',
};

function mediaPart(url: string, param: string): GeminiPart {
  const data = parseDataUrl(url);
  if (data) return { inlineData: { mimeType: data.mediaType, data: data.data } };
  const extension = /\.([a-z0-9]+)(?:[?#].*)?$/i.exec(url)?.[1]?.toLowerCase();
  const mimeType = extension ? MIME_BY_EXTENSION[extension] : undefined;
  if (!mimeType)
    throw unsupported(param, BACKEND, 'URLs must end in a known file extension (or use a base64 data URL)');
  return { fileData: { mimeType, fileUri: url } };
}

export function openAIChatToGemini(body: JsonObject): GeminiRequest {
  rejectUnsupportedParams(body, BACKEND, UNSUPPORTED_PARAMS);
  const generationConfig: GeminiGenerationConfig = {};
  const maxTokens = maxOutputTokens(body, 1);
  if (maxTokens !== undefined) generationConfig.maxOutputTokens = maxTokens;
  const temperature = checkRange(body, 'temperature', 0, 2);
  if (temperature !== undefined) generationConfig.temperature = temperature;
  const topP = checkRange(body, 'top_p', 0, 1);
  if (topP !== undefined) generationConfig.topP = topP;
  const presence = checkRange(body, 'presence_penalty', -2, 2);
  if (presence !== undefined && presence !== 0) generationConfig.presencePenalty = presence;
  const frequency = checkRange(body, 'frequency_penalty', -2, 2);
  if (frequency !== undefined && frequency !== 0) generationConfig.frequencyPenalty = frequency;
  if (typeof body.seed === 'number') generationConfig.seed = body.seed;
  if (body.n !== undefined && body.n !== null) {
    if (typeof body.n !== 'number' || !Number.isInteger(body.n) || body.n < 1)
      throw invalid('n must be a positive integer', 'n');
    if (body.n !== 1) generationConfig.candidateCount = body.n;
  }
  const stop = readStop(body.stop);
  if (stop) generationConfig.stopSequences = stop;
  const format: Untrusted<ChatResponseFormat> | undefined = asObject(body.response_format);
  if (format?.type === 'json_object') generationConfig.responseMimeType = 'application/json';
  else if (format?.type === 'json_schema') {
    const spec: Untrusted<ChatResponseFormat['json_schema']> | undefined = asObject(format.json_schema);
    const schema = asObject(spec?.schema);
    if (!schema) throw invalid('response_format.json_schema.schema must be an object', 'response_format');
    generationConfig.responseMimeType = 'application/json';
    generationConfig.responseJsonSchema = schema;
  } else if (format && format.type !== 'text')
    throw unsupported('response_format', BACKEND, `type "${String(format.type)}"`);
  const effort = body.reasoning_effort;
  if (effort !== undefined && effort !== null) {
    const budget = typeof effort === 'string' ? THINKING_BUDGET[effort] : undefined;
    if (budget === undefined)
      throw invalid(`reasoning_effort must be one of ${Object.keys(THINKING_BUDGET).join(', ')}`, 'reasoning_effort');
    generationConfig.thinkingConfig = { thinkingBudget: budget, includeThoughts: budget > 0 };
  }

  const { system, contents } = convertMessages(body.messages);
  const tools = convertTools(body.tools);
  const toolConfig = convertToolChoice(body.tool_choice);
  const out: GeminiRequest = {};
  if (contents.length > 0) out.contents = contents;
  if (tools) out.tools = tools;
  if (toolConfig) out.toolConfig = toolConfig;
  out.generationConfig = generationConfig;
  if (system.length > 0) out.systemInstruction = { parts: system };
  return out;
}

function convertMessages(value: unknown): { system: GeminiPart[]; contents: GeminiContent[] } {
  const system: GeminiPart[] = [];
  const contents: GeminiContent[] = [];
  const toolNames = new Map<string, string>();
  forEachChatMessage(value, { cacheMarkers: false }, (turn) => {
    switch (turn.role) {
      case 'system':
        system.push(...textParts(turn.content));
        break;
      case 'user':
        contents.push({ parts: userParts(turn.content), role: 'user' });
        break;
      case 'assistant': {
        const modelParts: GeminiPart[] = turn.content === undefined ? [] : textParts(turn.content);
        for (const call of turn.toolCalls) {
          if (call.id !== undefined) toolNames.set(call.id, call.name);
          modelParts.push({ functionCall: { name: call.name, args: call.arguments } });
        }
        if (modelParts.length === 0) throw emptyAssistant(turn);
        contents.push({ parts: modelParts, role: 'model' });
        break;
      }
      case 'tool': {
        const name = turn.toolCallId === undefined ? undefined : toolNames.get(turn.toolCallId);
        if (!name)
          throw invalid(
            `messages[${turn.index}].tool_call_id does not match a tool call of an earlier assistant message`,
            `messages[${turn.index}].tool_call_id`,
          );
        const text =
          typeof turn.content === 'string'
            ? turn.content
            : textParts(turn.content)
                .map((p) => p.text)
                .join('');
        const part: GeminiPart = { functionResponse: { name, response: functionResponse(text) } };
        const last = contents[contents.length - 1];
        // All responses to one model turn go into one user turn.
        if (last?.role === 'user' && last.parts.every((p) => 'functionResponse' in p)) last.parts.push(part);
        else contents.push({ parts: [part], role: 'user' });
        break;
      }
    }
  });
  return { system, contents };
}

function functionResponse(text: string): JsonObject {
  try {
    const parsed: unknown = JSON.parse(text);
    if (isObject(parsed)) return parsed;
  } catch {
    // plain text result
  }
  return { content: text };
}

/** Text and refusal parts (system, assistant and tool messages). */
function textParts(content: ChatContent): { text: string }[] {
  if (typeof content === 'string') return [{ text: content }];
  return content.map((part) => {
    if (part.type === 'text' || part.type === 'refusal') return { text: part.text };
    throw unsupportedPart(part);
  });
}

/** User content: text, images and other media (URLs by extension or base64 data URLs), audio and files. */
function userParts(content: ChatContent): GeminiPart[] {
  if (typeof content === 'string') return [{ text: content }];
  return content.map((part): GeminiPart => {
    switch (part.type) {
      case 'text':
      case 'refusal':
        return { text: part.text };
      case 'image_url':
        return mediaPart(imageUrlOf(part), `${part.param}.image_url.url`);
      case 'input_audio':
        if (part.data === undefined) throw invalid(`${part.param}.input_audio.data must be base64`, part.param);
        return { inlineData: { mimeType: `audio/${part.format ?? 'wav'}`, data: part.data } };
      case 'file':
        if (part.data) return { inlineData: { mimeType: part.data.mediaType, data: part.data.data } };
        break;
    }
    throw unsupportedPart(part);
  });
}

function convertTools(value: unknown): GeminiTool[] | undefined {
  const tools = readChatTools(value, BACKEND, { cacheMarkers: false });
  if (!tools || tools.length === 0) return undefined;
  const declarations = tools.map((tool) => {
    const out: GeminiTool['functionDeclarations'][number] = { name: tool.name };
    if (tool.description !== undefined) out.description = tool.description;
    if (tool.parameters) out.parameters = tool.parameters;
    return out;
  });
  return [{ functionDeclarations: declarations }];
}

function convertToolChoice(value: unknown): GeminiToolConfig | undefined {
  const choice = readToolChoice(value);
  if (choice === undefined) return undefined;
  if (choice === 'auto') return { functionCallingConfig: { mode: 'AUTO' } };
  if (choice === 'required') return { functionCallingConfig: { mode: 'ANY' } };
  if (choice === 'none') return { functionCallingConfig: { mode: 'NONE' } };
  return { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: [choice.name] } };
}

export function geminiFinishReason(reason: unknown, hasToolCalls: boolean): string {
  if (hasToolCalls) return 'tool_calls';
  switch (reason) {
    case 'MAX_TOKENS':
      return 'length';
    case 'SAFETY':
    case 'RECITATION':
    case 'BLOCKLIST':
    case 'PROHIBITED_CONTENT':
    case 'SPII':
    case 'IMAGE_SAFETY':
      return 'content_filter';
    default:
      return 'stop';
  }
}

export function geminiUsage(metadata: Untrusted<GeminiUsageMetadata> | undefined): OpenAIUsageShape {
  const thoughts = count(metadata?.thoughtsTokenCount);
  return {
    prompt: count(metadata?.promptTokenCount) + count(metadata?.toolUsePromptTokenCount),
    completion: count(metadata?.candidatesTokenCount) + thoughts,
    cached: count(metadata?.cachedContentTokenCount),
    reasoning: thoughts,
  };
}

/** A deterministic v4-shaped UUID for tool calls Gemini returns without an id. */
export function toolCallId(requestId: string, index: number): string {
  const h = crypto.createHash('sha256').update(`${requestId}/${index}`).digest('hex');
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function createdOf(response: Untrusted<GeminiResponse>): number | undefined {
  const createTime = asString(response.createTime);
  if (!createTime) return undefined;
  const ms = Date.parse(createTime);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/** A tool call as both the answer and the stream write it (`index` in the stream). */
type GeminiToolCall = ChatToolCall & { index?: number };

interface CandidateParts {
  text?: string;
  reasoning?: string;
  toolCalls: GeminiToolCall[];
}

class GeminiToOpenAIResponse extends ConvertingResponse {
  private sse?: SseParser;
  private toolCount = 0;
  private metadata: Untrusted<GeminiUsageMetadata> | undefined;
  private id: string | undefined;
  private created: number | undefined;
  private model: string | undefined;
  private finished = false;

  /** `includeUsage`: the client asked for the usage chunk (`stream_options.include_usage`). */
  constructor(
    private readonly context: TranslationContext,
    private readonly includeUsage: boolean,
  ) {
    super('OpenAI', context.stream);
  }

  private candidateParts(candidate: Untrusted<GeminiCandidate>, streaming: boolean): CandidateParts {
    const out: CandidateParts = { toolCalls: [] };
    const content: Untrusted<GeminiCandidate['content']> | undefined = asObject(candidate.content);
    for (const raw of asArray(content?.parts)) {
      const part: Untrusted<GeminiResponsePart> | undefined = asObject(raw);
      if (!part) continue;
      if (typeof part.text === 'string') {
        if (part.thought === true) out.reasoning = (out.reasoning ?? '') + part.text;
        else out.text = (out.text ?? '') + part.text;
      }
      const call: Untrusted<GeminiResponsePart['functionCall']> | undefined = asObject(part.functionCall);
      if (call) {
        const index = this.toolCount++;
        const base = streaming ? { index } : {};
        out.toolCalls.push({
          ...base,
          id: asString(call.id) ?? toolCallId(this.context.requestId, index),
          function: { arguments: JSON.stringify(call.args ?? {}), name: asString(call.name) ?? '' },
          type: 'function',
        });
      }
    }
    return out;
  }

  protected convertBody(whole: Buffer): Buffer {
    const response: Untrusted<GeminiResponse> | undefined = asObject(parseJsonBuffer(whole));
    if (!response) return this.unreadable('Gemini');
    const choices = asArray(response.candidates).map((raw, i): ChatChoice => {
      const candidate: Untrusted<GeminiCandidate> = asObject(raw) ?? {};
      const { text, reasoning, toolCalls } = this.candidateParts(candidate, false);
      const message: ChatResponseMessage = { role: 'assistant' };
      if (text !== undefined) message.content = text;
      if (reasoning !== undefined) message.reasoning_content = reasoning;
      if (toolCalls.length > 0) message.tool_calls = toolCalls;
      return {
        finish_reason: geminiFinishReason(candidate.finishReason, toolCalls.length > 0),
        index: asNumber(candidate.index) ?? i,
        message,
      };
    });
    const usage = geminiUsage(asObject(response.usageMetadata));
    this.usage = tokenUsage(usage);
    const id = asString(response.responseId);
    const created = createdOf(response);
    const out: ChatCompletion = {
      choices,
      ...(id !== undefined && { id }),
      ...(created !== undefined && { created }),
      model: asString(response.modelVersion) ?? this.context.requestModel,
      object: 'chat.completion',
      usage: openAIUsageWithDetails(usage),
    };
    return Buffer.from(JSON.stringify(out));
  }

  protected streamChunk(chunk: Buffer, endOfStream: boolean): Buffer {
    this.sse ??= new SseParser();
    const events = this.sse.push(chunk);
    if (endOfStream) events.push(...this.sse.end());
    let out = '';
    for (const event of events) {
      if (event.data === '' || event.data === '[DONE]') continue;
      const response: Untrusted<GeminiResponse> | undefined = asObject(parseJsonBuffer(Buffer.from(event.data)));
      if (!response) continue;
      out += this.streamEvent(response);
    }
    if (endOfStream) out += this.finish();
    return out === '' ? EMPTY : Buffer.from(out);
  }

  private streamEvent(response: Untrusted<GeminiResponse>): string {
    const error: Untrusted<GeminiResponse['error']> | undefined = asObject(response.error);
    if (error) {
      const out: ChatStreamError = {
        type: 'error',
        error: {
          type: asString(error.status) ?? 'upstream_error',
          code: String(error.code ?? 500),
          message: asString(error.message) ?? 'stream error',
        },
      };
      return sseData(out);
    }
    this.id ??= asString(response.responseId);
    this.created ??= createdOf(response);
    this.model ??= asString(response.modelVersion);
    const metadata = asObject(response.usageMetadata);
    if (metadata) {
      this.metadata = metadata;
      this.usage = tokenUsage(geminiUsage(this.metadata));
    }
    let out = '';
    asArray(response.candidates).forEach((raw, i) => {
      const candidate: Untrusted<GeminiCandidate> = asObject(raw) ?? {};
      const { text, reasoning, toolCalls } = this.candidateParts(candidate, true);
      const delta: ChatDelta = {};
      if (text !== undefined) delta.content = text;
      if (reasoning !== undefined) delta.reasoning_content = reasoning;
      delta.role = 'assistant';
      if (toolCalls.length > 0) delta.tool_calls = toolCalls;
      const choice: ChatChunkChoice = { index: asNumber(candidate.index) ?? i, delta };
      if (candidate.finishReason !== undefined && candidate.finishReason !== null) {
        choice.finish_reason = geminiFinishReason(candidate.finishReason, this.toolCount > 0);
      }
      out += sseData(this.chunk([choice]));
    });
    return out;
  }

  /** A chunk with Gemini's response id, time and model version once it gave them. */
  private chunk(choices: ChatChunkChoice[], usage?: ChatUsage): ChatChunk {
    const chunk: ChatChunk = {
      id: this.id ?? this.context.requestId,
      choices,
      created: this.created ?? this.context.nowSeconds,
      model: this.model ?? this.context.requestModel,
      object: 'chat.completion.chunk',
    };
    if (usage) chunk.usage = usage;
    return chunk;
  }

  private finish(): string {
    if (this.finished) return '';
    this.finished = true;
    let out = '';
    if (this.metadata && this.includeUsage) {
      out += sseData(this.chunk([], openAIUsageWithDetails(geminiUsage(this.metadata))));
    }
    return `${out}data: [DONE]\n\n`;
  }
}

export const openAIChatToGeminiBackend: TranslatorFactory = (context) => {
  let includeUsage = streamUsageAsked(context);
  return {
    request(body): UpstreamRequest {
      includeUsage = streamUsageAsked(context, body);
      return {
        path: context.stream
          ? `${modelPath(context, 'streamGenerateContent')}?alt=sse`
          : modelPath(context, 'generateContent'),
        body: openAIChatToGemini(body),
        setHeaders: {},
        removeHeaders: [],
      };
    },
    response: () => new GeminiToOpenAIResponse(context, includeUsage),
  };
};

// ---------------------------------------------------------------------------------------------------
// Embeddings

/**
 * OpenAI `input` -> Vertex text-embedding `instances` (`:predict`): a string, an instance object
 * (`{content, task_type?, title?}`, as Vertex documents it), or a non-empty array of either. Token arrays have no
 * Vertex form.
 */
export function openAIEmbeddingsToVertex(body: JsonObject): { body: JsonObject; base64: boolean } {
  const input = body.input;
  let instances: JsonObject[];
  if (typeof input === 'string') instances = [{ content: input }];
  else if (isObject(input)) instances = [vertexInstance(input, 'input')];
  else if (Array.isArray(input) && input.length > 0) {
    instances = input.map((item, i) =>
      typeof item === 'string' ? { content: item } : vertexInstance(item, `input[${i}]`),
    );
  } else throw invalid('input must be a string, an instance object or a non-empty array', 'input');
  const parameters: JsonObject = {};
  if (body.dimensions !== undefined && body.dimensions !== null) {
    if (typeof body.dimensions !== 'number' || !Number.isInteger(body.dimensions) || body.dimensions < 1)
      throw invalid('dimensions must be a positive integer', 'dimensions');
    parameters.outputDimensionality = body.dimensions;
  }
  const encoding = body.encoding_format;
  if (encoding !== undefined && encoding !== null && encoding !== 'float' && encoding !== 'base64') {
    throw invalid('encoding_format must be "float" or "base64"', 'encoding_format');
  }
  return { body: { instances, parameters }, base64: encoding === 'base64' };
}

const INSTANCE_STRING_FIELDS = ['task_type', 'title'] as const;

/** One Vertex text-embedding instance: `content` (required), `task_type` and `title`, strings when present. */
function vertexInstance(item: unknown, param: string): JsonObject {
  if (!isObject(item)) {
    throw unsupported(
      param,
      BACKEND,
      'inputs must be strings or {content, task_type, title} objects (token arrays are not supported)',
    );
  }
  if (typeof item.content !== 'string') throw invalid(`${param}.content must be a string`, param);
  for (const field of INSTANCE_STRING_FIELDS) {
    const value = item[field];
    if (value !== undefined && value !== null && typeof value !== 'string')
      throw invalid(`${param}.${field} must be a string`, param);
  }
  return item;
}

/** Floats as OpenAI's base64 encoding: little-endian float32. */
export function floatsToBase64(values: number[]): string {
  const buffer = Buffer.allocUnsafe(values.length * 4);
  for (let i = 0; i < values.length; i++) buffer.writeFloatLE(values[i], i * 4);
  return buffer.toString('base64');
}

class VertexEmbeddingsResponse extends ConvertingResponse {
  constructor(
    private readonly context: TranslationContext,
    private readonly base64: boolean,
  ) {
    super('OpenAI', false);
  }

  protected convertBody(whole: Buffer): Buffer {
    const response: Untrusted<VertexPredictResponse> | undefined = asObject(parseJsonBuffer(whole));
    if (!response) return this.unreadable('Vertex AI embeddings');
    let tokens = 0;
    const data = asArray(response.predictions).map((raw, index) => {
      const prediction: Untrusted<VertexEmbeddingPrediction> | undefined = asObject(raw);
      const embeddings: Untrusted<VertexEmbeddingPrediction['embeddings']> | undefined = asObject(
        prediction?.embeddings,
      );
      const statistics: Untrusted<VertexEmbeddingPrediction['embeddings']['statistics']> | undefined = asObject(
        embeddings?.statistics,
      );
      tokens += count(statistics?.token_count);
      const values = asArray(embeddings?.values).map((v) => (typeof v === 'number' ? v : 0));
      return { embedding: this.base64 ? floatsToBase64(values) : values, index, object: 'embedding' };
    });
    this.usage = tokenUsage({ prompt: tokens, completion: 0, cached: 0, reasoning: 0 });
    return openAIEmbeddingsAnswer(data, this.context.requestModel, tokens);
  }

  protected streamChunk(): Buffer {
    return EMPTY;
  }
}

export const openAIEmbeddingsToVertexBackend: TranslatorFactory = (context) => {
  let base64 = false;
  return {
    request(body): UpstreamRequest {
      const converted = openAIEmbeddingsToVertex(body);
      base64 = converted.base64;
      return { path: modelPath(context, 'predict'), body: converted.body, setHeaders: {}, removeHeaders: [] };
    },
    response: () => new VertexEmbeddingsResponse(context, base64),
  };
};
