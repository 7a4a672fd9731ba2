/**
 * The OpenAI Responses API on the wire, as far as the gateway reads and writes it when it translates the API to a
 * backend that speaks another schema (responses.ts): the request fields it maps, the Response object and output items
 * it writes, and the streaming events (each with its `sequence_number`). Field names and shapes follow OpenAI's API
 * reference; the optional request members are `unknown` until read, since the client controls them.
 */

/** `POST /responses`: the members the translation reads (any other member is refused by name). */
export interface ResponsesRequest {
  model?: unknown;
  input?: unknown;
  instructions?: unknown;
  tools?: unknown;
  tool_choice?: unknown;
  parallel_tool_calls?: unknown;
  max_output_tokens?: unknown;
  temperature?: unknown;
  top_p?: unknown;
  text?: unknown;
  reasoning?: unknown;
  stream?: unknown;
  stream_options?: unknown;
  metadata?: unknown;
  user?: unknown;
  safety_identifier?: unknown;
  service_tier?: unknown;
  store?: unknown;
  include?: unknown;
  background?: unknown;
  previous_response_id?: unknown;
  conversation?: unknown;
  truncation?: unknown;
  prompt_cache_key?: unknown;
}

/** A function tool in the Responses form (flat: no `function` wrapper). */
export interface ResponsesFunctionTool {
  type: 'function';
  name: string;
  description?: string | null;
  parameters?: Record<string, unknown> | null;
  strict?: boolean | null;
}

export type ResponsesToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; name: string };

/** `text.format`. */
export type ResponsesTextFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | {
      type: 'json_schema';
      name: string;
      schema: Record<string, unknown>;
      description?: string;
      strict?: boolean | null;
    };

export interface ResponsesOutputText {
  type: 'output_text';
  text: string;
  annotations: unknown[];
  logprobs: unknown[];
}

export interface ResponsesRefusal {
  type: 'refusal';
  refusal: string;
}

export interface ResponsesReasoningText {
  type: 'reasoning_text';
  text: string;
}

export type ItemStatus = 'in_progress' | 'completed' | 'incomplete';

export interface ResponsesMessageItem {
  type: 'message';
  id: string;
  status: ItemStatus;
  role: 'assistant';
  content: (ResponsesOutputText | ResponsesRefusal)[];
}

export interface ResponsesFunctionCallItem {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: ItemStatus;
}

/**
 * The model's reasoning as it came (Claude's thinking, Gemini's thoughts): `content` of `reasoning_text`, no summary;
 * a Claude thinking signature travels as `encrypted_content` and is read back from the next request's input.
 */
export interface ResponsesReasoningItem {
  type: 'reasoning';
  id: string;
  summary: unknown[];
  content: ResponsesReasoningText[];
  encrypted_content: string | null;
  status: ItemStatus;
}

export type ResponsesOutputItem = ResponsesMessageItem | ResponsesFunctionCallItem | ResponsesReasoningItem;

export interface ResponsesUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number; cache_write_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export type ResponseStatus = 'completed' | 'failed' | 'in_progress' | 'incomplete';

export interface ResponsesError {
  code: string;
  message: string;
}

/** The Response object (`object: "response"`). */
export interface ResponsesResponse {
  id: string;
  object: 'response';
  created_at: number;
  status: ResponseStatus;
  background: false;
  error: ResponsesError | null;
  incomplete_details: { reason: 'max_output_tokens' | 'content_filter' } | null;
  instructions: string | null;
  max_output_tokens: number | null;
  model: string;
  output: ResponsesOutputItem[];
  parallel_tool_calls: boolean;
  previous_response_id: null;
  reasoning: { effort: string | null; summary: string | null };
  store: false;
  temperature: number | null;
  text: { format: ResponsesTextFormat };
  tool_choice: ResponsesToolChoice;
  tools: ResponsesFunctionTool[];
  top_p: number | null;
  truncation: 'disabled';
  usage: ResponsesUsage | null;
  metadata: Record<string, string>;
  user?: string;
  safety_identifier?: string;
}

type Sequenced<T> = T & { sequence_number: number };

/** The streaming events the translation writes, without their `sequence_number` (the writer numbers them). */
export type ResponsesStreamEventBody =
  | { type: 'response.created' | 'response.in_progress'; response: ResponsesResponse }
  | { type: 'response.completed' | 'response.incomplete' | 'response.failed'; response: ResponsesResponse }
  | {
      type: 'response.output_item.added' | 'response.output_item.done';
      output_index: number;
      item: ResponsesOutputItem;
    }
  | {
      type: 'response.content_part.added' | 'response.content_part.done';
      item_id: string;
      output_index: number;
      content_index: number;
      part: ResponsesOutputText | ResponsesRefusal | ResponsesReasoningText;
    }
  | {
      type: 'response.output_text.delta';
      item_id: string;
      output_index: number;
      content_index: number;
      delta: string;
      logprobs: unknown[];
    }
  | {
      type: 'response.output_text.done';
      item_id: string;
      output_index: number;
      content_index: number;
      text: string;
      logprobs: unknown[];
    }
  | {
      type: 'response.reasoning_text.delta';
      item_id: string;
      output_index: number;
      content_index: number;
      delta: string;
    }
  | {
      type: 'response.reasoning_text.done';
      item_id: string;
      output_index: number;
      content_index: number;
      text: string;
    }
  | {
      type: 'response.refusal.delta';
      item_id: string;
      output_index: number;
      content_index: number;
      delta: string;
    }
  | {
      type: 'response.refusal.done';
      item_id: string;
      output_index: number;
      content_index: number;
      refusal: string;
    }
  | { type: 'response.function_call_arguments.delta'; item_id: string; output_index: number; delta: string }
  | {
      type: 'response.function_call_arguments.done';
      item_id: string;
      output_index: number;
      name: string;
      arguments: string;
    }
  | { type: 'error'; code: string | null; message: string; param: string | null };

export type ResponsesStreamEvent = Sequenced<ResponsesStreamEventBody>;
