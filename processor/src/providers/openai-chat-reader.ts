/**
 * One reader of an OpenAI chat request's `messages` for the translators to Anthropic, Bedrock Converse and Gemini.
 * It checks the untrusted body once, in message order, with the errors (status, message, `param` path) the
 * translators answer, and gives a typed view: system messages apart, then the turns with typed content parts, cache
 * breakpoints, tool calls with parsed arguments and tool results. What a backend accepts (which part types where,
 * which image URLs) stays with its translator, which maps the view to its wire types.
 */
import type { TranslationError } from '../translate/types';
import {
  asArray,
  asObject,
  asString,
  cacheControlOf,
  type DataUrl,
  invalid,
  type JsonObject,
  parseArguments,
  parseDataUrl,
  unsupported,
  unsupportedContent,
} from './common';
import type {
  CacheControl,
  ChatNamedToolChoice,
  ChatRequestMessage,
  ChatRequestPart,
  ChatRequestTool,
  ChatToolCall,
} from './wire/openai-chat';
import type { Untrusted } from './wire/untrusted';

interface PartBase {
  /** The part's path for errors, e.g. `messages[2].content[0]`. */
  param: string;
  /** Its `cache_control` (only read when the reader is asked for cache markers). */
  cache?: CacheControl;
}

/** `{type: "text", text}` with a string text. */
export interface ChatTextPart extends PartBase {
  type: 'text';
  text: string;
}

/** `{type: "refusal", refusal}` (assistant history) with a string refusal. */
export interface ChatRefusalPart extends PartBase {
  type: 'refusal';
  text: string;
}

/** `{type: "image_url", image_url: {url}}`; `url` is undefined when it is not a string (see imageUrlOf). */
export interface ChatImagePart extends PartBase {
  type: 'image_url';
  url: string | undefined;
}

/** `{type: "file", file: {file_data}}`: the data URL, undefined when it is absent or not a base64 data URL. */
export interface ChatFilePart extends PartBase {
  type: 'file';
  data: DataUrl | undefined;
}

/** `{type: "input_audio", input_audio: {data, format}}`: `data` undefined when it is not a string. */
export interface ChatAudioPart extends PartBase {
  type: 'input_audio';
  data: string | undefined;
  format: string | undefined;
}

/** Any other part (or a text/refusal part without its string): no backend takes it. */
export interface ChatOtherPart extends PartBase {
  type: 'other';
  /** The part's `type` as the client sent it, for the error. */
  rawType: unknown;
}

export type ChatPart = ChatTextPart | ChatRefusalPart | ChatImagePart | ChatFilePart | ChatAudioPart | ChatOtherPart;

/** A message's content: the string as sent, or its parts. */
export type ChatContent = string | ChatPart[];

interface MessageBase {
  /** The message's position in `messages`. */
  index: number;
  /** `messages[i].content`, the path of its content for errors. */
  param: string;
  /** The message's own `cache_control`: a breakpoint after its last block. */
  cache?: CacheControl;
}

/** A `system` or `developer` message. */
export interface ChatSystemMessage extends MessageBase {
  role: 'system';
  content: ChatContent;
}

export interface ChatUserTurn extends MessageBase {
  role: 'user';
  content: ChatContent;
}

export interface ChatToolCallRead {
  /** The call's id when it is a string. */
  id: string | undefined;
  name: string;
  arguments: JsonObject;
}

export interface ChatAssistantTurn extends MessageBase {
  role: 'assistant';
  /** Undefined for absent, null or empty content. */
  content: ChatContent | undefined;
  /** `reasoning_content` and its `reasoning_signature` when both are strings (vendor fields clients send back). */
  reasoning: { text: string; signature: string } | undefined;
  toolCalls: ChatToolCallRead[];
}

/** A `tool` message: a tool result. */
export interface ChatToolTurn extends MessageBase {
  role: 'tool';
  /** `tool_call_id` when it is a string. */
  toolCallId: string | undefined;
  content: ChatContent;
}

export type ChatTurn = ChatUserTurn | ChatAssistantTurn | ChatToolTurn;

export interface ChatMessages {
  system: ChatSystemMessage[];
  turns: ChatTurn[];
}

export interface ChatReadOptions {
  /** Read and check `cache_control` on messages and parts (backends with a prompt cache). */
  cacheMarkers: boolean;
}

/** A message of any role. */
export type ChatMessage = ChatSystemMessage | ChatTurn;

/** Reads `messages` into the view; 400 for what no backend can read, naming the path. */
export function readChatMessages(value: unknown, options: ChatReadOptions): ChatMessages {
  const out: ChatMessages = { system: [], turns: [] };
  forEachChatMessage(value, options, (message) => {
    if (message.role === 'system') out.system.push(message);
    else out.turns.push(message);
  });
  return out;
}

/**
 * Reads `messages` one at a time, in order, handing each to `visit` before reading the next: a translator that
 * maps (and refuses) as it visits answers a request's first fault, as a single walker would.
 */
export function forEachChatMessage(
  value: unknown,
  options: ChatReadOptions,
  visit: (message: ChatMessage) => void,
): void {
  if (!Array.isArray(value)) throw invalid('messages must be an array', 'messages');
  for (let i = 0; i < value.length; i++) {
    const message: Untrusted<ChatRequestMessage> | undefined = asObject(value[i]);
    if (!message) throw invalid(`messages[${i}] must be an object`, `messages[${i}]`);
    const param = `messages[${i}].content`;
    const cache = options.cacheMarkers ? cacheControlOf(message, `messages[${i}]`) : undefined;
    switch (message.role) {
      case 'system':
      case 'developer':
        visit({ role: 'system', index: i, param, cache, content: readContent(message.content, param, options) });
        break;
      case 'user':
        visit({ role: 'user', index: i, param, cache, content: readContent(message.content, param, options) });
        break;
      case 'assistant': {
        const text = message.reasoning_content;
        const signature = message.reasoning_signature;
        const content =
          message.content !== null && message.content !== undefined && message.content !== ''
            ? readContent(message.content, param, options)
            : undefined;
        visit({
          role: 'assistant',
          index: i,
          param,
          cache,
          content,
          reasoning: typeof text === 'string' && typeof signature === 'string' ? { text, signature } : undefined,
          toolCalls: readToolCalls(message.tool_calls, i),
        });
        break;
      }
      case 'tool':
        visit({
          role: 'tool',
          index: i,
          param,
          cache,
          toolCallId: asString(message.tool_call_id),
          content: readContent(message.content, param, options),
        });
        break;
      default:
        throw invalid(`messages[${i}].role ${JSON.stringify(message.role)} is not supported`, `messages[${i}].role`);
    }
  }
}

function readToolCalls(value: unknown, i: number): ChatToolCallRead[] {
  return asArray(value).map((call, j) => {
    const c: Untrusted<ChatToolCall> | undefined = asObject(call);
    const fn: Untrusted<ChatToolCall['function']> | undefined = asObject(c?.function);
    if (!c || !fn || typeof fn.name !== 'string')
      throw invalid(`messages[${i}].tool_calls[${j}] must be a function call`, `messages[${i}].tool_calls`);
    return {
      id: asString(c.id),
      name: fn.name,
      arguments: parseArguments(fn.arguments, `messages[${i}].tool_calls[${j}].function.arguments`),
    };
  });
}

function readContent(content: unknown, param: string, options: ChatReadOptions): ChatContent {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw invalid(`${param} must be a string or an array of content parts`, param);
  return content.map((raw, j) => {
    const partParam = `${param}[${j}]`;
    const p: Untrusted<ChatRequestPart> | undefined = asObject(raw);
    const part = readPart(p, partParam);
    if (options.cacheMarkers) {
      const cache = cacheControlOf(p, partParam);
      if (cache) part.cache = cache;
    }
    return part;
  });
}

function readPart(p: Untrusted<ChatRequestPart> | undefined, param: string): ChatPart {
  switch (p?.type) {
    case 'text':
      if (typeof p.text === 'string') return { type: 'text', text: p.text, param };
      break;
    case 'refusal':
      if (typeof p.refusal === 'string') return { type: 'refusal', text: p.refusal, param };
      break;
    case 'image_url': {
      const image: Untrusted<ChatRequestPart['image_url']> | undefined = asObject(p.image_url);
      return { type: 'image_url', url: asString(image?.url), param };
    }
    case 'file': {
      const file: Untrusted<ChatRequestPart['file']> | undefined = asObject(p.file);
      const data = asString(file?.file_data);
      return { type: 'file', data: data ? parseDataUrl(data) : undefined, param };
    }
    case 'input_audio': {
      const audio: Untrusted<ChatRequestPart['input_audio']> | undefined = asObject(p.input_audio);
      return { type: 'input_audio', data: asString(audio?.data), format: asString(audio?.format), param };
    }
  }
  return { type: 'other', rawType: p?.type, param };
}

/** The image URL of an image part; 400 when it is not a string. */
export function imageUrlOf(part: ChatImagePart): string {
  const param = `${part.param}.image_url.url`;
  if (part.url === undefined) throw invalid(`${param} must be a string`, param);
  return part.url;
}

/** 422 for a part its backend does not take here. */
export function unsupportedPart(part: ChatPart): TranslationError {
  return unsupportedContent(part.param, part.type === 'other' ? part.rawType : part.type);
}

/** 400 for an assistant message that gives its backend nothing to send. */
export function emptyAssistant(turn: ChatAssistantTurn): TranslationError {
  return invalid(`messages[${turn.index}] (assistant) has neither content nor tool_calls`, turn.param);
}

/** The `tool_call_id` of a tool message; 400 when it is absent or empty. */
export function requiredToolCallId(turn: ChatToolTurn): string {
  if (!turn.toolCallId)
    throw invalid(
      `messages[${turn.index}].tool_call_id is required for tool messages`,
      `messages[${turn.index}].tool_call_id`,
    );
  return turn.toolCallId;
}

/** A function tool of `tools`. */
export interface ChatFunctionTool {
  name: string;
  description: string | undefined;
  /** `function.parameters` when it is an object. */
  parameters: JsonObject | undefined;
  /** `function.strict: true`. */
  strict: boolean;
  /** The tool's (or its `function`'s) `cache_control`, when the reader is asked for cache markers. */
  cache: CacheControl | undefined;
}

/** `tools` (undefined when absent or null): 400 when not an array, 422 for a tool that is not a function. */
export function readChatTools(
  value: unknown,
  backend: string,
  options: ChatReadOptions,
): ChatFunctionTool[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw invalid('tools must be an array', 'tools');
  return value.map((tool, i) => {
    const t: Untrusted<ChatRequestTool> | undefined = asObject(tool);
    const fn: Untrusted<ChatRequestTool['function']> | undefined = asObject(t?.function);
    if (t?.type !== 'function' || !fn || typeof fn.name !== 'string')
      throw unsupported(`tools[${i}]`, backend, 'only function tools');
    return {
      name: fn.name,
      description: asString(fn.description),
      parameters: asObject(fn.parameters),
      strict: fn.strict === true,
      cache: options.cacheMarkers
        ? (cacheControlOf(t, `tools[${i}]`) ?? cacheControlOf(fn, `tools[${i}].function`))
        : undefined,
    };
  });
}

/** `tool_choice`: a mode, or the one function to call; undefined when absent or null. */
export type ChatToolChoice = 'auto' | 'required' | 'none' | { name: string };

export function readToolChoice(choice: unknown): ChatToolChoice | undefined {
  if (choice === undefined || choice === null) return undefined;
  if (choice === 'auto' || choice === 'required' || choice === 'none') return choice;
  const named: Untrusted<ChatNamedToolChoice> | undefined = asObject(choice);
  const fn: Untrusted<ChatNamedToolChoice['function']> | undefined = asObject(named?.function);
  const name = asString(fn?.name);
  if (!name) throw invalid('tool_choice must be "auto", "required", "none" or a function', 'tool_choice');
  return { name };
}

/** `stop` as a list of stop sequences; undefined when absent, null or empty. */
export function readStop(stop: unknown): string[] | undefined {
  if (typeof stop === 'string') return [stop];
  if (Array.isArray(stop) && stop.every((s) => typeof s === 'string')) return stop.length > 0 ? stop : undefined;
  if (stop !== undefined && stop !== null) throw invalid('stop must be a string or an array of strings', 'stop');
  return undefined;
}
