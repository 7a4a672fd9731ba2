/**
 * The OpenAI Responses API (`POST /responses`) on backends that do not speak it, by composition: the Responses request
 * becomes an OpenAI Chat Completions request, the backend's own chat translator (Anthropic, Bedrock Converse, Gemini,
 * ...) carries it upstream and back, and its OpenAI chat answer (JSON, or chat.completion.chunk events) becomes a
 * Response object or the Responses event stream. Stateless only: what needs stored state (`previous_response_id`,
 * `conversation`, `store: true`, `background`, item references) is refused naming the parameter and the backend, as
 * are built-in tools. The metered usage is the chat translator's, the same tokens the client reads.
 */
import { SseParser } from '../sse';
import {
  asArray,
  asNumber,
  asObject,
  asString,
  EMPTY,
  invalid,
  isObject,
  unsupported,
  type JsonObject,
} from '../providers/common';
import type {
  ResponsesFunctionTool,
  ResponsesMessageItem,
  ResponsesOutputItem,
  ResponsesReasoningItem,
  ResponsesFunctionCallItem,
  ResponsesRequest,
  ResponsesResponse,
  ResponsesStreamEventBody,
  ResponsesTextFormat,
  ResponsesToolChoice,
  ResponsesUsage,
  ResponseStatus,
} from './responses-schema';
import type {
  ResponseHead,
  ResponseHeaders,
  ResponseTranslator,
  TokenUsage,
  TranslationContext,
  TranslatorFactory,
  UpstreamRequest,
} from './types';

/** What the Response object repeats from the request (OpenAI echoes the request's settings). */
export interface ResponseEcho {
  instructions: string | null;
  maxOutputTokens: number | null;
  parallelToolCalls: boolean;
  temperature: number | null;
  topP: number | null;
  text: { format: ResponsesTextFormat };
  toolChoice: ResponsesToolChoice;
  tools: ResponsesFunctionTool[];
  reasoning: { effort: string | null; summary: string | null };
  metadata: Record<string, string>;
  user?: string;
  safetyIdentifier?: string;
}

/** What a Response repeats for a request that set nothing. */
function defaultEcho(): ResponseEcho {
  return {
    instructions: null,
    maxOutputTokens: null,
    parallelToolCalls: true,
    temperature: null,
    topP: null,
    text: { format: { type: 'text' } },
    toolChoice: 'auto',
    tools: [],
    reasoning: { effort: null, summary: null },
    metadata: {},
  };
}

export interface ChatRequestFromResponses {
  /** The OpenAI Chat Completions body for the backend's chat translator. */
  chat: JsonObject;
  echo: ResponseEcho;
}

/** Request members read below; any other member is refused by name (the backend would not honour it). */
const KNOWN_MEMBERS: ReadonlySet<string> = new Set<keyof ResponsesRequest>([
  'model',
  'input',
  'instructions',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'max_output_tokens',
  'temperature',
  'top_p',
  'text',
  'reasoning',
  'stream',
  'stream_options',
  'metadata',
  'user',
  'safety_identifier',
  'service_tier',
  'store',
  'include',
  'background',
  'previous_response_id',
  'conversation',
  'truncation',
  'prompt_cache_key',
]);

/** `include` values the translation honours: the reasoning signature is always sent as `encrypted_content`. */
const HONOURED_INCLUDES: ReadonlySet<string> = new Set(['reasoning.encrypted_content']);

const STATELESS =
  'the gateway translates the Responses API to this backend statelessly; send the whole conversation in "input"';

function isSet(value: unknown): boolean {
  return value !== undefined && value !== null;
}

/**
 * A Responses request as an OpenAI Chat Completions request; `backend` (the schema name) appears in the errors. Throws
 * TranslationError (400 malformed, 422 not expressible on this backend) naming the parameter.
 */
export function responsesRequestToChat(body: JsonObject, backend: string): ChatRequestFromResponses {
  for (const key of Object.keys(body)) {
    if (!KNOWN_MEMBERS.has(key)) throw unsupported(key, backend, 'not translatable from the Responses API');
  }
  const request = body as ResponsesRequest;
  if (isSet(request.previous_response_id)) throw unsupported('previous_response_id', backend, STATELESS);
  if (isSet(request.conversation)) throw unsupported('conversation', backend, STATELESS);
  if (request.store === true) throw unsupported('store', backend, `${STATELESS} (omit store or set it false)`);
  if (request.background === true) throw unsupported('background', backend, 'no background responses');
  if (isSet(request.truncation) && request.truncation !== 'disabled')
    throw unsupported('truncation', backend, 'only "disabled"');
  for (const [i, value] of asArray(request.include).entries()) {
    if (typeof value !== 'string' || !HONOURED_INCLUDES.has(value))
      throw unsupported(`include[${i}]`, backend, `${JSON.stringify(value)} cannot be honoured`);
  }
  if (isSet(request.include) && !Array.isArray(request.include)) throw invalid('include must be an array', 'include');

  const chat: JsonObject = {};
  if (request.model !== undefined) chat.model = request.model;
  const instructions = request.instructions;
  if (isSet(instructions) && typeof instructions !== 'string')
    throw invalid('instructions must be a string', 'instructions');
  const messages: JsonObject[] = [];
  if (typeof instructions === 'string' && instructions !== '') messages.push({ role: 'system', content: instructions });
  messages.push(...inputMessages(request.input, backend));
  chat.messages = messages;

  const tools = functionTools(request.tools, backend);
  if (tools.length > 0) {
    chat.tools = tools.map((tool) => {
      const fn: JsonObject = { name: tool.name };
      if (isSet(tool.description)) fn.description = tool.description;
      if (isSet(tool.parameters)) fn.parameters = tool.parameters;
      if (tool.strict === true) fn.strict = true;
      return { type: 'function', function: fn };
    });
  }
  const toolChoice = readToolChoice(request.tool_choice, backend);
  if (isSet(request.tool_choice)) {
    chat.tool_choice =
      typeof toolChoice === 'string' ? toolChoice : { type: 'function', function: { name: toolChoice.name } };
  }
  if (isSet(request.parallel_tool_calls)) {
    if (typeof request.parallel_tool_calls !== 'boolean')
      throw invalid('parallel_tool_calls must be a boolean', 'parallel_tool_calls');
    chat.parallel_tool_calls = request.parallel_tool_calls;
  }
  const maxOutput = request.max_output_tokens;
  if (isSet(maxOutput)) {
    if (typeof maxOutput !== 'number' || !Number.isInteger(maxOutput) || maxOutput < 1)
      throw invalid('max_output_tokens must be a positive integer', 'max_output_tokens');
    chat.max_completion_tokens = maxOutput;
  }
  // Ranges are the chat translator's to check (they differ per backend).
  if (isSet(request.temperature)) chat.temperature = request.temperature;
  if (isSet(request.top_p)) chat.top_p = request.top_p;

  const format = textFormat(request.text, backend);
  if (format.type === 'json_object') chat.response_format = { type: 'json_object' };
  else if (format.type === 'json_schema') {
    const spec: JsonObject = { name: format.name, schema: format.schema };
    if (format.description !== undefined) spec.description = format.description;
    if (isSet(format.strict)) spec.strict = format.strict;
    chat.response_format = { type: 'json_schema', json_schema: spec };
  }
  const reasoning = readReasoning(request.reasoning, backend);
  if (reasoning.effort !== null) chat.reasoning_effort = reasoning.effort;

  if (request.stream === true) chat.stream = true;
  else if (isSet(request.stream) && request.stream !== false) throw invalid('stream must be a boolean', 'stream');
  if (chat.stream === true) chat.stream_options = { include_usage: true };

  const user = readOptionalString(request, 'user');
  if (user !== undefined) chat.user = user;
  const safetyIdentifier = readOptionalString(request, 'safety_identifier');
  if (safetyIdentifier !== undefined) chat.safety_identifier = safetyIdentifier;
  const tier = readOptionalString(request, 'service_tier');
  if (tier !== undefined) chat.service_tier = tier;
  // A caching hint for OpenAI's own cache: meaningless elsewhere, and harmless to leave out.
  readOptionalString(request, 'prompt_cache_key');

  const echo: ResponseEcho = {
    instructions: typeof instructions === 'string' ? instructions : null,
    maxOutputTokens: typeof maxOutput === 'number' ? maxOutput : null,
    parallelToolCalls: request.parallel_tool_calls !== false,
    temperature: asNumber(request.temperature) ?? null,
    topP: asNumber(request.top_p) ?? null,
    text: { format },
    toolChoice,
    tools,
    reasoning,
    metadata: readMetadata(request.metadata),
  };
  if (user !== undefined) echo.user = user;
  if (safetyIdentifier !== undefined) echo.safetyIdentifier = safetyIdentifier;
  return { chat, echo };
}

function readOptionalString(request: ResponsesRequest, key: keyof ResponsesRequest): string | undefined {
  const value = request[key];
  if (!isSet(value)) return undefined;
  if (typeof value !== 'string') throw invalid(`${key} must be a string`, key);
  return value;
}

/** `metadata`: up to 16 string values (OpenAI's limits), echoed in the Response; not sent to the backend. */
function readMetadata(value: unknown): Record<string, string> {
  if (!isSet(value)) return {};
  const metadata = asObject(value);
  if (!metadata) throw invalid('metadata must be an object of strings', 'metadata');
  const entries = Object.entries(metadata);
  if (entries.length > 16) throw invalid('metadata has more than 16 keys', 'metadata');
  const out: Record<string, string> = {};
  for (const [key, text] of entries) {
    if (typeof text !== 'string' || key.length > 64 || text.length > 512)
      throw invalid('metadata keys are strings up to 64 characters, values up to 512', 'metadata');
    out[key] = text;
  }
  return out;
}

function functionTools(value: unknown, backend: string): ResponsesFunctionTool[] {
  if (!isSet(value)) return [];
  if (!Array.isArray(value)) throw invalid('tools must be an array', 'tools');
  return value.map((raw, i): ResponsesFunctionTool => {
    const tool = asObject(raw);
    if (!tool) throw invalid(`tools[${i}] must be an object`, `tools[${i}]`);
    if (tool.type !== 'function')
      throw unsupported(`tools[${i}]`, backend, `built-in tool type ${JSON.stringify(tool.type)}; only function tools`);
    if (typeof tool.name !== 'string' || tool.name === '')
      throw invalid(`tools[${i}].name must be a non-empty string`, `tools[${i}].name`);
    if (isSet(tool.parameters) && !isObject(tool.parameters))
      throw invalid(`tools[${i}].parameters must be a JSON schema object`, `tools[${i}].parameters`);
    if (isSet(tool.description) && typeof tool.description !== 'string')
      throw invalid(`tools[${i}].description must be a string`, `tools[${i}].description`);
    return {
      type: 'function',
      name: tool.name,
      description: asString(tool.description) ?? null,
      parameters: asObject(tool.parameters) ?? null,
      strict: tool.strict === true,
    };
  });
}

function readToolChoice(value: unknown, backend: string): ResponsesToolChoice {
  if (!isSet(value)) return 'auto';
  if (value === 'auto' || value === 'none' || value === 'required') return value;
  const choice = asObject(value);
  if (choice?.type === 'function' && typeof choice.name === 'string') return { type: 'function', name: choice.name };
  if (choice && typeof choice.type === 'string')
    throw unsupported('tool_choice', backend, `type ${JSON.stringify(choice.type)}; only function tools`);
  throw invalid('tool_choice must be "auto", "none", "required" or {"type":"function","name":...}', 'tool_choice');
}

function textFormat(value: unknown, backend: string): ResponsesTextFormat {
  if (!isSet(value)) return { type: 'text' };
  const text = asObject(value);
  if (!text) throw invalid('text must be an object', 'text');
  if (isSet(text.verbosity) && text.verbosity !== 'medium')
    throw unsupported('text.verbosity', backend, 'only the default "medium"');
  const format = text.format;
  if (!isSet(format)) return { type: 'text' };
  const f = asObject(format);
  if (f?.type === 'text') return { type: 'text' };
  if (f?.type === 'json_object') return { type: 'json_object' };
  if (f?.type !== 'json_schema') throw invalid('text.format.type must be text, json_object or json_schema', 'text');
  if (typeof f.name !== 'string' || f.name === '')
    throw invalid('text.format.name must be a non-empty string', 'text.format.name');
  const schema = asObject(f.schema);
  if (!schema) throw invalid('text.format.schema must be a JSON schema object', 'text.format.schema');
  const out: ResponsesTextFormat = { type: 'json_schema', name: f.name, schema };
  const description = asString(f.description);
  if (description !== undefined) out.description = description;
  if (typeof f.strict === 'boolean') out.strict = f.strict;
  return out;
}

function readReasoning(value: unknown, backend: string): { effort: string | null; summary: string | null } {
  if (!isSet(value)) return { effort: null, summary: null };
  const reasoning = asObject(value);
  if (!reasoning) throw invalid('reasoning must be an object', 'reasoning');
  if (isSet(reasoning.generate_summary)) throw unsupported('reasoning.generate_summary', backend);
  const effort = reasoning.effort;
  if (isSet(effort) && typeof effort !== 'string')
    throw invalid('reasoning.effort must be a string', 'reasoning.effort');
  const summary = reasoning.summary;
  if (isSet(summary) && summary !== 'auto' && summary !== 'concise' && summary !== 'detailed')
    throw invalid('reasoning.summary must be auto, concise or detailed', 'reasoning.summary');
  // The backend's reasoning comes back as it is (reasoning_text content), not summarized.
  return { effort: typeof effort === 'string' ? effort : null, summary: typeof summary === 'string' ? summary : null };
}

/** A Responses `input` as chat messages; consecutive assistant messages, reasoning and function calls join one turn. */
function inputMessages(value: unknown, backend: string): JsonObject[] {
  if (typeof value === 'string') return [{ role: 'user', content: value }];
  if (!Array.isArray(value)) throw invalid('input must be a string or an array of input items', 'input');
  const messages: JsonObject[] = [];
  /** The assistant turn being built (text, reasoning and tool calls of one model answer). */
  let turn: JsonObject | undefined;
  const assistantTurn = (): JsonObject => {
    if (!turn) {
      turn = { role: 'assistant' };
      messages.push(turn);
    }
    return turn;
  };
  value.forEach((raw, i) => {
    const param = `input[${i}]`;
    const item = asObject(raw);
    if (!item) throw invalid(`${param} must be an object`, param);
    const type = item.type ?? (isSet(item.role) ? 'message' : undefined);
    switch (type) {
      case 'message': {
        const role = item.role;
        if (role === 'assistant') {
          const t = assistantTurn();
          if (isSet(t.content) || isSet(t.tool_calls)) {
            // A second assistant message after text or tool calls starts a new turn.
            turn = undefined;
            assistantMessage(assistantTurn(), item.content, `${param}.content`);
          } else assistantMessage(t, item.content, `${param}.content`);
          return;
        }
        turn = undefined;
        if (role !== 'user' && role !== 'system' && role !== 'developer')
          throw invalid(`${param}.role must be user, assistant, system or developer`, `${param}.role`);
        messages.push({ role, content: inputContent(item.content, `${param}.content`, backend) });
        return;
      }
      case 'reasoning': {
        const t = assistantTurn();
        if (isSet(t.content) || isSet(t.tool_calls)) {
          turn = undefined;
          addReasoning(assistantTurn(), item, param);
        } else addReasoning(t, item, param);
        return;
      }
      case 'function_call': {
        const callId = asString(item.call_id);
        const name = asString(item.name);
        if (!callId || !name) throw invalid(`${param} needs call_id and name`, param);
        if (typeof item.arguments !== 'string')
          throw invalid(`${param}.arguments must be a JSON string`, `${param}.arguments`);
        const t = assistantTurn();
        const calls = (t.tool_calls ??= []) as JsonObject[];
        calls.push({ id: callId, type: 'function', function: { name, arguments: item.arguments } });
        return;
      }
      case 'function_call_output': {
        turn = undefined;
        const callId = asString(item.call_id);
        if (!callId) throw invalid(`${param}.call_id must be a string`, `${param}.call_id`);
        messages.push({
          role: 'tool',
          tool_call_id: callId,
          content: toolOutput(item.output, `${param}.output`, backend),
        });
        return;
      }
      case 'item_reference':
        throw unsupported(param, backend, `item references need stored responses; ${STATELESS}`);
      default:
        throw unsupported(param, backend, `input item type ${JSON.stringify(type)}`);
    }
  });
  return messages;
}

function assistantMessage(turn: JsonObject, content: unknown, param: string): void {
  if (typeof content === 'string') {
    turn.content = content;
    return;
  }
  if (!Array.isArray(content)) throw invalid(`${param} must be a string or an array of content parts`, param);
  let text = '';
  let refusal: string | undefined;
  content.forEach((raw, j) => {
    const part = asObject(raw);
    if ((part?.type === 'output_text' || part?.type === 'input_text') && typeof part.text === 'string')
      text += part.text;
    else if (part?.type === 'refusal' && typeof part.refusal === 'string') refusal = (refusal ?? '') + part.refusal;
    else throw invalid(`${param}[${j}] must be an output_text or refusal part`, `${param}[${j}]`);
  });
  if (text !== '' || refusal === undefined) turn.content = text;
  else turn.content = [{ type: 'refusal', refusal }];
}

/** A reasoning item read back: its text and (Claude) signature go with the assistant turn's reasoning. */
function addReasoning(turn: JsonObject, item: JsonObject, param: string): void {
  const parts = [...asArray(item.content), ...asArray(item.summary)];
  let text = '';
  for (const [j, raw] of parts.entries()) {
    const part = asObject(raw);
    const partText = asString(part?.text);
    if (partText === undefined) throw invalid(`${param}: reasoning part ${j} has no text`, param);
    // The content is the reasoning itself; summaries stand in for it when that is all the client kept.
    if (part?.type === 'reasoning_text' || asArray(item.content).length === 0) text += partText;
  }
  turn.reasoning_content = text;
  const signature = asString(item.encrypted_content);
  if (signature) turn.reasoning_signature = signature;
}

function inputContent(content: unknown, param: string, backend: string): unknown {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw invalid(`${param} must be a string or an array of content parts`, param);
  return content.map((raw, j) => inputPart(asObject(raw), `${param}[${j}]`, backend));
}

function inputPart(part: JsonObject | undefined, param: string, backend: string): JsonObject {
  switch (part?.type) {
    case 'input_text':
    case 'output_text':
      if (typeof part.text !== 'string') throw invalid(`${param}.text must be a string`, `${param}.text`);
      return { type: 'text', text: part.text };
    case 'input_image': {
      if (isSet(part.file_id)) throw unsupported(`${param}.file_id`, backend, 'uploaded files are not available');
      const url = asString(part.image_url);
      if (!url) throw invalid(`${param}.image_url must be a URL or a data URL`, `${param}.image_url`);
      const image: JsonObject = { url };
      if (typeof part.detail === 'string') image.detail = part.detail;
      return { type: 'image_url', image_url: image };
    }
    case 'input_file': {
      const data = asString(part.file_data);
      if (!data) throw unsupported(param, backend, 'only input_file with file_data (a base64 data URL)');
      const file: JsonObject = { file_data: data };
      if (typeof part.filename === 'string') file.filename = part.filename;
      return { type: 'file', file };
    }
    default:
      throw unsupported(param, backend, `content part type ${JSON.stringify(part?.type)}`);
  }
}

function toolOutput(output: unknown, param: string, backend: string): unknown {
  if (typeof output === 'string') return output;
  if (!Array.isArray(output)) throw invalid(`${param} must be a string or an array of content parts`, param);
  return output.map((raw, j) => inputPart(asObject(raw), `${param}[${j}]`, backend));
}

// ---------------------------------------------------------------------------------------------------
// The answer

/** Letters and digits of the request id: the base of the response and item ids (deterministic per request). */
function idBase(requestId: string): string {
  return requestId.replace(/[^A-Za-z0-9]/g, '').slice(0, 48) || '0';
}

export function responsesUsage(usage: TokenUsage): ResponsesUsage {
  return {
    input_tokens: usage.input,
    input_tokens_details: { cached_tokens: usage.cachedInput, cache_write_tokens: usage.cacheWriteInput ?? 0 },
    output_tokens: usage.output,
    output_tokens_details: { reasoning_tokens: usage.reasoning },
    total_tokens: usage.total,
  };
}

/** Builds the Response object and its items; shared by the JSON answer and the event stream. */
class ResponseBuilder {
  readonly output: ResponsesOutputItem[] = [];
  private readonly base: string;

  constructor(
    private readonly context: TranslationContext,
    private readonly echo: ResponseEcho,
  ) {
    this.base = idBase(context.requestId);
  }

  itemId(prefix: 'msg' | 'fc' | 'rs'): string {
    return `${prefix}_${this.base}_${this.output.length}`;
  }

  response(status: ResponseStatus, usage: ResponsesUsage | null, finishReason?: string): ResponsesResponse {
    const echo = this.echo;
    const response: ResponsesResponse = {
      id: `resp_${this.base}`,
      object: 'response',
      created_at: this.context.nowSeconds,
      status,
      background: false,
      error: null,
      incomplete_details: null,
      instructions: echo.instructions,
      max_output_tokens: echo.maxOutputTokens,
      model: this.context.requestModel,
      output: status === 'in_progress' ? [] : this.output,
      parallel_tool_calls: echo.parallelToolCalls,
      previous_response_id: null,
      reasoning: echo.reasoning,
      store: false,
      temperature: echo.temperature,
      text: echo.text,
      tool_choice: echo.toolChoice,
      tools: echo.tools,
      top_p: echo.topP,
      truncation: 'disabled',
      usage,
      metadata: echo.metadata,
    };
    if (echo.user !== undefined) response.user = echo.user;
    if (echo.safetyIdentifier !== undefined) response.safety_identifier = echo.safetyIdentifier;
    if (status === 'incomplete')
      response.incomplete_details = {
        reason: finishReason === 'content_filter' ? 'content_filter' : 'max_output_tokens',
      };
    return response;
  }
}

/** The Response status for a chat finish reason: cut by the token limit or a content filter is incomplete. */
function statusFor(finishReason: string | undefined): ResponseStatus {
  return finishReason === 'length' || finishReason === 'content_filter' ? 'incomplete' : 'completed';
}

/** The OpenAI chat answer of the inner translator, as far as it is read. */
interface ChatToolCall {
  id?: unknown;
  index?: unknown;
  function?: { name?: unknown; arguments?: unknown };
}
interface ChatMessageLike {
  content?: unknown;
  refusal?: unknown;
  reasoning_content?: unknown;
  reasoning_signature?: unknown;
  tool_calls?: unknown;
}

/** A chat.completion -> the Response object. */
function completionToResponse(
  completion: JsonObject,
  builder: ResponseBuilder,
  usage: TokenUsage,
): ResponsesResponse | undefined {
  const choice = asObject(asArray(completion.choices)[0]);
  const message = asObject(choice?.message) as ChatMessageLike | undefined;
  if (!choice || !message) return undefined;
  const finishReason = asString(choice.finish_reason);
  const status = statusFor(finishReason);
  const itemStatus = status === 'incomplete' ? 'incomplete' : 'completed';
  const reasoning = asString(message.reasoning_content);
  if (reasoning !== undefined) {
    builder.output.push({
      type: 'reasoning',
      id: builder.itemId('rs'),
      summary: [],
      content: [{ type: 'reasoning_text', text: reasoning }],
      encrypted_content: asString(message.reasoning_signature) ?? null,
      status: itemStatus,
    });
  }
  const text = asString(message.content);
  const refusal = asString(message.refusal);
  if ((text !== undefined && text !== '') || refusal !== undefined) {
    const item: ResponsesMessageItem = {
      type: 'message',
      id: builder.itemId('msg'),
      status: itemStatus,
      role: 'assistant',
      content: [],
    };
    if (text !== undefined && text !== '')
      item.content.push({ type: 'output_text', text, annotations: [], logprobs: [] });
    if (refusal !== undefined) item.content.push({ type: 'refusal', refusal });
    builder.output.push(item);
  }
  for (const raw of asArray(message.tool_calls)) {
    const call = asObject(raw) as ChatToolCall | undefined;
    builder.output.push({
      type: 'function_call',
      id: builder.itemId('fc'),
      call_id: asString(call?.id) ?? '',
      name: asString(call?.function?.name) ?? '',
      arguments: asString(call?.function?.arguments) ?? '',
      status: 'completed',
    });
  }
  return builder.response(status, responsesUsage(usage), finishReason);
}

/**
 * The backend chat translator's answer -> the Responses answer. Error answers (the chat translator already wrote
 * OpenAI's error schema and the provider's status) pass through.
 */
export class ChatToResponsesAnswer implements ResponseTranslator {
  private streaming = false;
  private ok = false;
  private collected: Buffer[] = [];
  private events?: ChatChunksToResponsesEvents;
  private ownReplacedStatus: number | undefined;

  constructor(
    private readonly context: TranslationContext,
    private readonly inner: ResponseTranslator,
    private readonly echo: ResponseEcho,
  ) {}

  get usage(): TokenUsage {
    return this.inner.usage;
  }

  get replacedStatus(): number | undefined {
    return this.ownReplacedStatus ?? this.inner.replacedStatus;
  }

  head(status: number, headers: ResponseHeaders): ResponseHead {
    const head = this.inner.head(status, headers);
    this.ok = status >= 200 && status < 300;
    this.streaming = head.stream;
    if (this.streaming) this.events = new ChatChunksToResponsesEvents(new ResponseBuilder(this.context, this.echo));
    return head;
  }

  body(chunk: Buffer, endOfStream: boolean): Buffer {
    const translated = this.inner.body(chunk, endOfStream);
    if (this.events) return this.events.push(translated, endOfStream, () => this.inner.usage);
    if (translated.length > 0) this.collected.push(translated);
    if (!endOfStream) return EMPTY;
    const whole = this.collected.length === 1 ? this.collected[0] : Buffer.concat(this.collected);
    this.collected = [];
    if (!this.ok || this.inner.replacedStatus !== undefined) return whole;
    let completion: JsonObject | undefined;
    try {
      completion = asObject(JSON.parse(whole.toString('utf8')));
    } catch {
      completion = undefined;
    }
    const response =
      completion && completionToResponse(completion, new ResponseBuilder(this.context, this.echo), this.usage);
    if (!response) {
      this.ownReplacedStatus = 502;
      return Buffer.from(
        JSON.stringify({
          error: {
            message: 'could not translate the chat answer into a Response',
            type: 'upstream_error',
            param: null,
            code: '502',
          },
        }),
      );
    }
    return Buffer.from(JSON.stringify(response));
  }
}

type OpenMessage = { outputIndex: number; item: ResponsesMessageItem; part: 'output_text' | 'refusal' };
type OpenReasoning = { outputIndex: number; item: ResponsesReasoningItem };
type OpenCall = { outputIndex: number; item: ResponsesFunctionCallItem };

/**
 * chat.completion.chunk events -> the Responses event stream: `response.created` and `response.in_progress` first,
 * each output item added, its parts and deltas, done, and `response.completed` (or `.incomplete`, or `error` and
 * `response.failed`) with the usage last. The chat usage chunk is read, never passed on. The text of each open item is
 * kept for its `.done` events and the final Response, as the Responses protocol repeats it there.
 */
export class ChatChunksToResponsesEvents {
  private readonly sse = new SseParser();
  private sequence = 0;
  private started = false;
  private finished = false;
  private finishReason: string | undefined;
  private message?: OpenMessage;
  private reasoning?: OpenReasoning;
  private readonly calls = new Map<number, OpenCall>();

  constructor(private readonly builder: ResponseBuilder) {}

  push(chunk: Buffer, endOfStream: boolean, usage: () => TokenUsage): Buffer {
    let out = '';
    if (!this.started) {
      this.started = true;
      const response = this.builder.response('in_progress', null);
      out += this.write({ type: 'response.created', response });
      out += this.write({ type: 'response.in_progress', response });
    }
    const events = chunk.length > 0 ? this.sse.push(chunk) : [];
    if (endOfStream) events.push(...this.sse.end());
    for (const event of events) {
      if (this.finished) break;
      if (event.data === '[DONE]') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(event.data);
      } catch {
        continue;
      }
      out += this.chunk(asObject(parsed));
    }
    if (endOfStream && !this.finished) out += this.finish(usage());
    return out === '' ? EMPTY : Buffer.from(out);
  }

  private write(event: ResponsesStreamEventBody): string {
    const numbered = { ...event, sequence_number: this.sequence++ };
    return `event: ${event.type}\ndata: ${JSON.stringify(numbered)}\n\n`;
  }

  private chunk(chunk: JsonObject | undefined): string {
    if (!chunk) return '';
    const error = asObject(chunk.error);
    if (error) return this.fail(asString(error.code) ?? asString(error.type) ?? null, asString(error.message));
    const choice = asObject(asArray(chunk.choices)[0]);
    if (!choice) return '';
    let out = '';
    const delta = asObject(choice.delta) as ChatMessageLike | undefined;
    const reasoning = asString(delta?.reasoning_content);
    if (reasoning !== undefined && reasoning !== '') out += this.reasoningDelta(reasoning);
    const signature = asString(delta?.reasoning_signature);
    if (signature) {
      if (!this.reasoning) out += this.reasoningDelta('');
      this.reasoning!.item.encrypted_content = (this.reasoning!.item.encrypted_content ?? '') + signature;
    }
    const text = asString(delta?.content);
    if (text !== undefined && text !== '') out += this.textDelta('output_text', text);
    const refusal = asString(delta?.refusal);
    if (refusal !== undefined && refusal !== '') out += this.textDelta('refusal', refusal);
    for (const raw of asArray(delta?.tool_calls)) out += this.toolDelta(asObject(raw));
    const finish = asString(choice.finish_reason);
    if (finish !== undefined) this.finishReason = finish;
    return out;
  }

  private reasoningDelta(text: string): string {
    let out = '';
    if (!this.reasoning) {
      out += this.closeMessage();
      const item: ResponsesReasoningItem = {
        type: 'reasoning',
        id: this.builder.itemId('rs'),
        summary: [],
        content: [],
        encrypted_content: null,
        status: 'in_progress',
      };
      const outputIndex = this.builder.output.push(item) - 1;
      this.reasoning = { outputIndex, item };
      out += this.write({
        type: 'response.output_item.added',
        output_index: outputIndex,
        item: { ...item, content: [] },
      });
      item.content.push({ type: 'reasoning_text', text: '' });
      out += this.write({
        type: 'response.content_part.added',
        item_id: item.id,
        output_index: outputIndex,
        content_index: 0,
        part: { type: 'reasoning_text', text: '' },
      });
    }
    if (text === '') return out;
    const open = this.reasoning;
    open.item.content[0].text += text;
    return (
      out +
      this.write({
        type: 'response.reasoning_text.delta',
        item_id: open.item.id,
        output_index: open.outputIndex,
        content_index: 0,
        delta: text,
      })
    );
  }

  private closeReasoning(): string {
    const open = this.reasoning;
    if (!open) return '';
    this.reasoning = undefined;
    const part = open.item.content[0];
    const base = { item_id: open.item.id, output_index: open.outputIndex, content_index: 0 };
    open.item.status = 'completed';
    return (
      this.write({ type: 'response.reasoning_text.done', ...base, text: part.text }) +
      this.write({ type: 'response.content_part.done', ...base, part }) +
      this.write({ type: 'response.output_item.done', output_index: open.outputIndex, item: open.item })
    );
  }

  private textDelta(kind: 'output_text' | 'refusal', text: string): string {
    let out = this.closeReasoning();
    if (!this.message) {
      const item: ResponsesMessageItem = {
        type: 'message',
        id: this.builder.itemId('msg'),
        status: 'in_progress',
        role: 'assistant',
        content: [],
      };
      const outputIndex = this.builder.output.push(item) - 1;
      this.message = { outputIndex, item, part: kind };
      out += this.write({
        type: 'response.output_item.added',
        output_index: outputIndex,
        item: { ...item, content: [] },
      });
      out += this.openPart(kind);
    } else if (this.message.part !== kind) {
      out += this.closePart();
      this.message.part = kind;
      out += this.openPart(kind);
    }
    const open = this.message;
    const contentIndex = open.item.content.length - 1;
    const part = open.item.content[contentIndex];
    const base = { item_id: open.item.id, output_index: open.outputIndex, content_index: contentIndex };
    if (part.type === 'output_text') {
      part.text += text;
      return out + this.write({ type: 'response.output_text.delta', ...base, delta: text, logprobs: [] });
    }
    part.refusal += text;
    return out + this.write({ type: 'response.refusal.delta', ...base, delta: text });
  }

  private openPart(kind: 'output_text' | 'refusal'): string {
    const open = this.message!;
    const part =
      kind === 'output_text'
        ? { type: 'output_text' as const, text: '', annotations: [], logprobs: [] }
        : { type: 'refusal' as const, refusal: '' };
    open.item.content.push(part);
    return this.write({
      type: 'response.content_part.added',
      item_id: open.item.id,
      output_index: open.outputIndex,
      content_index: open.item.content.length - 1,
      part: { ...part },
    });
  }

  private closePart(): string {
    const open = this.message!;
    const contentIndex = open.item.content.length - 1;
    const part = open.item.content[contentIndex];
    const base = { item_id: open.item.id, output_index: open.outputIndex, content_index: contentIndex };
    const done =
      part.type === 'output_text'
        ? this.write({ type: 'response.output_text.done', ...base, text: part.text, logprobs: [] })
        : this.write({ type: 'response.refusal.done', ...base, refusal: part.refusal });
    return done + this.write({ type: 'response.content_part.done', ...base, part });
  }

  private closeMessage(status: 'completed' | 'incomplete' = 'completed'): string {
    const open = this.message;
    if (!open) return '';
    const out = this.closePart();
    this.message = undefined;
    open.item.status = status;
    return out + this.write({ type: 'response.output_item.done', output_index: open.outputIndex, item: open.item });
  }

  private toolDelta(raw: JsonObject | undefined): string {
    if (!raw) return '';
    const call = raw as ChatToolCall;
    const index = asNumber(call.index) ?? 0;
    let out = '';
    let open = this.calls.get(index);
    if (!open) {
      out += this.closeReasoning() + this.closeMessage();
      const item: ResponsesFunctionCallItem = {
        type: 'function_call',
        id: this.builder.itemId('fc'),
        call_id: asString(call.id) ?? '',
        name: asString(call.function?.name) ?? '',
        arguments: '',
        status: 'in_progress',
      };
      const outputIndex = this.builder.output.push(item) - 1;
      open = { outputIndex, item };
      this.calls.set(index, open);
      out += this.write({ type: 'response.output_item.added', output_index: outputIndex, item: { ...item } });
    }
    const args = asString(call.function?.arguments);
    if (args === undefined || args === '') return out;
    open.item.arguments += args;
    return (
      out +
      this.write({
        type: 'response.function_call_arguments.delta',
        item_id: open.item.id,
        output_index: open.outputIndex,
        delta: args,
      })
    );
  }

  private closeCalls(): string {
    let out = '';
    for (const open of [...this.calls.values()].sort((a, b) => a.outputIndex - b.outputIndex)) {
      open.item.status = 'completed';
      out += this.write({
        type: 'response.function_call_arguments.done',
        item_id: open.item.id,
        output_index: open.outputIndex,
        name: open.item.name,
        arguments: open.item.arguments,
      });
      out += this.write({ type: 'response.output_item.done', output_index: open.outputIndex, item: open.item });
    }
    this.calls.clear();
    return out;
  }

  /** The end of the chat stream: every open item done, then the Response with the usage. */
  private finish(usage: TokenUsage): string {
    this.finished = true;
    // Every chat translator ends a complete answer with a finish reason; [DONE] alone follows a cut stream too.
    if (this.finishReason === undefined)
      return this.failed('server_error', 'the backend stream ended before the answer was complete');
    const status = statusFor(this.finishReason);
    const out =
      this.closeReasoning() +
      this.closeMessage(status === 'incomplete' ? 'incomplete' : 'completed') +
      this.closeCalls();
    const response = this.builder.response(status, responsesUsage(usage), this.finishReason);
    return out + this.write({ type: status === 'incomplete' ? 'response.incomplete' : 'response.completed', response });
  }

  /** An in-band error from the chat translator (provider error event, cut or corrupt stream). */
  private fail(code: string | null, message: string | undefined): string {
    this.finished = true;
    const text = message ?? 'stream error';
    return this.write({ type: 'error', code, message: text, param: null }) + this.failed('server_error', text, true);
  }

  private failed(code: string, message: string, afterError = false): string {
    this.finished = true;
    const response = this.builder.response('failed', null);
    response.error = { code, message };
    const error = afterError ? '' : this.write({ type: 'error', code, message, param: null });
    return error + this.write({ type: 'response.failed', response });
  }
}

/**
 * The Responses API on a backend through its chat translator `chat`: the inner translator sees a chat request (with
 * stream usage always asked, so the client's `response.completed` carries it) and its answer is translated back.
 */
export function responsesViaChat(chat: TranslatorFactory): TranslatorFactory {
  return (context) => {
    const inner = chat({
      ...context,
      operation: 'chat',
      subpath: '/chat/completions',
      query: '',
      streamUsageRequested: context.stream,
    });
    let echo: ResponseEcho | undefined;
    return {
      request(body): UpstreamRequest {
        const mapped = responsesRequestToChat(body, context.backend.schema.name);
        echo = mapped.echo;
        return inner.request(mapped.chat);
      },
      // Before any request was read (nothing the pipeline does), the Response repeats the API's defaults.
      response: () => new ChatToResponsesAnswer(context, inner.response(), echo ?? defaultEcho()),
    };
  };
}
