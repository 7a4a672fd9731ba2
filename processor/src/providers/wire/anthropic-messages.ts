/**
 * Anthropic Messages wire shapes (`POST /v1/messages`, and the same body on Vertex `:rawPredict` and Bedrock
 * InvokeModel): the request the OpenAI chat translator writes and the message and usage it reads back.
 * Type aliases rather than interfaces, so a value stays assignable to a plain JSON object.
 */
import type { CacheControl } from './openai-chat';

export type AnthropicTextBlock = { text: string; type: 'text'; cache_control?: CacheControl };

export type AnthropicImageSource = { type: 'base64'; media_type: string; data: string } | { type: 'url'; url: string };

export type AnthropicImageBlock = { type: 'image'; source: AnthropicImageSource; cache_control?: CacheControl };

export type AnthropicDocumentBlock = {
  type: 'document';
  source: { type: 'base64'; media_type: string; data: string };
  cache_control?: CacheControl;
};

export type AnthropicThinkingBlock = {
  type: 'thinking';
  thinking: string;
  signature: string;
  cache_control?: CacheControl;
};

export type AnthropicToolUseBlock = {
  type: 'tool_use';
  id: string;
  name: string;
  input: Record<string, unknown>;
  cache_control?: CacheControl;
};

export type AnthropicToolResultBlock = {
  type: 'tool_result';
  tool_use_id: string;
  is_error: boolean;
  content: (AnthropicTextBlock | AnthropicImageBlock)[];
  cache_control?: CacheControl;
};

export type AnthropicContentBlock =
  | AnthropicTextBlock
  | AnthropicImageBlock
  | AnthropicDocumentBlock
  | AnthropicThinkingBlock
  | AnthropicToolUseBlock
  | AnthropicToolResultBlock;

export type AnthropicMessage = { role: 'user' | 'assistant'; content: AnthropicContentBlock[] };

export type AnthropicTool = {
  name: string;
  description?: string;
  input_schema: Record<string, unknown>;
  strict?: boolean;
  cache_control?: CacheControl;
};

export type AnthropicToolChoice = {
  type: 'auto' | 'any' | 'none' | 'tool';
  name?: string;
  disable_parallel_tool_use?: boolean;
};

/** Extended thinking: `{type: "enabled", budget_tokens}` (or the client's own object, passed through). */
export type AnthropicThinking = Record<string, unknown>;

/** The Messages request body without `model`, `stream` and the version fields (added per backend). */
export type AnthropicMessagesRequest = {
  max_tokens: number;
  messages: AnthropicMessage[];
  system?: AnthropicTextBlock[];
  temperature?: number;
  top_p?: number;
  stop_sequences?: string[];
  tools?: AnthropicTool[];
  tool_choice?: AnthropicToolChoice;
  metadata?: { user_id: string };
  thinking?: AnthropicThinking;
  service_tier?: 'auto' | 'standard_only';
  output_config?: { format: { type: 'json_schema'; schema: Record<string, unknown> } };
};

/**
 * Anthropic `usage` (a message's, message_start's or message_delta's): every field optional in what is read, the
 * fields present win over earlier ones.
 */
export type AnthropicUsage = {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_input_tokens?: number;
  cache_creation_input_tokens?: number;
  cache_creation?: { ephemeral_5m_input_tokens?: number; ephemeral_1h_input_tokens?: number };
};

/**
 * A content block of an answer, every kind's fields together (read through Untrusted, by `type`): `text`,
 * `thinking` (with `signature`), `redacted_thinking`, `tool_use` and `server_tool_use` (`id`, `name`, `input`).
 */
export type AnthropicResponseBlock = {
  type: string;
  text?: string;
  thinking?: string;
  signature?: string;
  id?: string;
  name?: string;
  input?: Record<string, unknown>;
};

/** A Messages answer (`type: "message"`). */
export type AnthropicResponse = {
  id: string;
  type: 'message';
  role: 'assistant';
  content: AnthropicResponseBlock[];
  model: string;
  stop_reason: string | null;
  stop_sequence?: string | null;
  usage: AnthropicUsage;
};

/** A stream delta (`content_block_delta.delta`), every kind's fields together, read by `type`. */
export type AnthropicStreamDelta = {
  type: 'text_delta' | 'thinking_delta' | 'signature_delta' | 'input_json_delta' | 'citations_delta';
  text?: string;
  thinking?: string;
  signature?: string;
  partial_json?: string;
};

/**
 * A Messages stream event, every kind's fields together, read by `type`: `message_start` (`message`),
 * `content_block_start` (`index`, `content_block`), `content_block_delta` (`index`, `delta`), `content_block_stop`,
 * `message_delta` (`delta.stop_reason`, `usage`), `message_stop`, `ping` and `error` (`error`).
 */
export type AnthropicStreamEvent = {
  type: string;
  message?: AnthropicResponse;
  index?: number;
  content_block?: AnthropicResponseBlock;
  delta?: AnthropicStreamDelta | { stop_reason?: string | null; stop_sequence?: string | null };
  usage?: AnthropicUsage;
  error?: { type: string; message: string };
};

/**
 * A `chunk` event of Bedrock's InvokeModelWithResponseStream (Anthropic on Bedrock): one Messages stream event as
 * base64 JSON.
 */
export type BedrockInvokeChunk = { bytes: string };

// ---------------------------------------------------------------------------------------------------
// The request, as Anthropic clients send it (read through Untrusted)

/** A content block of a request message, every kind's fields together (read by `type`). */
export type AnthropicRequestBlock = {
  type: string;
  text?: string;
  source?: { type: 'base64' | 'url'; media_type?: string; data?: string; url?: string };
  id?: string;
  name?: string;
  input?: Record<string, unknown>;
  tool_use_id?: string;
  content?: string | AnthropicRequestBlock[];
  is_error?: boolean;
  thinking?: string;
  signature?: string;
  cache_control?: CacheControl;
};

export type AnthropicRequestMessage = { role: 'user' | 'assistant'; content: string | AnthropicRequestBlock[] };

/** A custom tool (server tools have a `type` and no `input_schema`). */
export type AnthropicRequestTool = AnthropicTool & { type?: string };

/** `thinking` as Anthropic clients send it: enabled with a budget, or disabled. */
export type AnthropicThinkingConfig = { type: 'enabled' | 'disabled'; budget_tokens?: number };
