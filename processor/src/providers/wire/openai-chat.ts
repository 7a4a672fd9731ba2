/**
 * OpenAI Chat Completions wire shapes (`POST /v1/chat/completions`): what the translators write to OpenAI chat
 * clients (completions, chunks, usage) and the request parts the chat reader (../openai-chat-reader.ts) reads.
 * Type aliases rather than interfaces, so a value stays assignable to a plain JSON object.
 */

/** A prompt-cache breakpoint as Anthropic documents it, which OpenAI-compatible gateways read on chat parts too. */
export type CacheControl = {
  type: 'ephemeral';
  ttl?: '5m' | '1h';
};

/** A function tool call as an assistant message (request) or a completion (response) carries it. */
export type ChatToolCall = {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
};

/** `usage.prompt_tokens_details` / `completion_tokens_details`. */
export type ChatUsage = {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  completion_tokens_details?: { reasoning_tokens?: number };
  prompt_tokens_details?: { cached_tokens?: number };
};

/** The assistant message of a `chat.completion` choice, with the vendor reasoning fields some gateways add. */
export type ChatResponseMessage = {
  role: 'assistant';
  content?: string;
  reasoning_content?: string;
  /** Sent back with the reasoning on the next turn (Claude checks it). */
  reasoning_signature?: string;
  tool_calls?: ChatToolCall[];
};

export type ChatChoice = {
  index: number;
  message: ChatResponseMessage;
  finish_reason: string;
};

/** A `chat.completion` object. Gemini answers may lack `id` and `created`. */
export type ChatCompletion = {
  id?: string;
  object: 'chat.completion';
  created?: number;
  model: string;
  choices: ChatChoice[];
  usage: ChatUsage;
};

/** A streamed tool call: the first chunk names it, later ones carry `arguments` pieces with `id: null`. */
export type ChatToolCallDelta = {
  index: number;
  id?: string | null;
  type?: 'function';
  function: { name: string; arguments: string };
};

export type ChatDelta = {
  role?: 'assistant';
  content?: string;
  reasoning_content?: string;
  reasoning_signature?: string;
  tool_calls?: ChatToolCallDelta[] | ChatToolCall[];
};

export type ChatChunkChoice = {
  index: number;
  delta: ChatDelta;
  finish_reason?: string;
};

/** A `chat.completion.chunk` event; the usage chunk has `choices: []`. */
export type ChatChunk = {
  id: string;
  choices: ChatChunkChoice[];
  created: number;
  model: string;
  service_tier?: string;
  object: 'chat.completion.chunk';
  usage?: ChatUsage;
};

/** An error sent in-band in a stream (and the OpenAI error envelope). */
export type ChatStreamError = {
  type: 'error';
  error: { type: string; code: string; message: string };
};

// ---------------------------------------------------------------------------------------------------
// The request, as clients send it (read through Untrusted: every field is checked before use)

/** A content part of a message: `text`, `refusal`, `image_url`, `file` or `input_audio` (by `type`). */
export type ChatRequestPart = {
  type: string;
  text?: string;
  refusal?: string;
  image_url?: { url: string; detail?: string };
  file?: { file_data?: string; file_id?: string; filename?: string };
  input_audio?: { data: string; format: string };
  cache_control?: CacheControl;
};

/** A request message, every role's fields together (read by `role`). */
export type ChatRequestMessage = {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  content?: string | ChatRequestPart[] | null;
  name?: string;
  tool_calls?: ChatToolCall[];
  tool_call_id?: string;
  /** Vendor fields: an earlier answer's reasoning and its signature, sent back. */
  reasoning_content?: string;
  reasoning_signature?: string;
  cache_control?: CacheControl;
};

/** A function tool of `tools`. */
export type ChatRequestTool = {
  type: 'function';
  function: {
    name: string;
    description?: string;
    parameters?: Record<string, unknown>;
    strict?: boolean;
    cache_control?: CacheControl;
  };
  cache_control?: CacheControl;
};

/** `tool_choice` naming one function. */
export type ChatNamedToolChoice = { type: 'function'; function: { name: string } };

/** `response_format`: free text, any JSON object, or JSON following a schema. */
export type ChatResponseFormat = {
  type: 'text' | 'json_object' | 'json_schema';
  json_schema?: { name?: string; description?: string; schema?: Record<string, unknown>; strict?: boolean };
};

/**
 * An error body as providers send it, every provider's fields together: OpenAI and Anthropic (`error.type`,
 * `error.message`), Vertex (`error.status`, `error.message`), Bedrock (`message` or `Message`, `__type`).
 */
export type ProviderErrorBody = {
  error?: { type?: string; status?: string; message?: string };
  message?: string;
  Message?: string;
  __type?: string;
};
