/**
 * AWS Bedrock Converse wire shapes (`POST /model/{modelId}/converse` and `/converse-stream`): the request the
 * translators write and the usage they read. Type aliases rather than interfaces, so a value stays assignable to a
 * plain JSON object.
 */

/** `CachePointBlock`: a cache checkpoint after the blocks before it (system, messages, tools). */
export type ConverseCachePoint = { cachePoint: { type: 'default'; ttl?: '5m' | '1h' } };

export type ConverseTextBlock = { text: string };

export type ConverseImageBlock = { image: { format: string; source: { bytes: string } } };

export type ConverseReasoningBlock = { reasoningContent: { reasoningText: { text: string; signature: string } } };

export type ConverseToolUseBlock = {
  toolUse: { toolUseId: string; name: string; input: Record<string, unknown> };
};

export type ConverseToolResultBlock = {
  toolResult: { toolUseId: string; content: (ConverseTextBlock | ConverseImageBlock)[]; status?: 'error' };
};

export type ConverseContentBlock =
  | ConverseTextBlock
  | ConverseImageBlock
  | ConverseReasoningBlock
  | ConverseToolUseBlock
  | ConverseToolResultBlock
  | ConverseCachePoint;

export type ConverseMessage = { content: ConverseContentBlock[]; role: 'user' | 'assistant' };

export type ConverseSystemBlock = ConverseTextBlock | ConverseCachePoint;

export type ConverseToolSpec = {
  toolSpec: { name: string; description?: string; inputSchema: { json: Record<string, unknown> }; strict?: boolean };
};

export type ConverseToolChoice =
  { auto: Record<string, never> } | { any: Record<string, never> } | { tool: { name: string } };

export type ConverseToolConfig = {
  tools: (ConverseToolSpec | ConverseCachePoint)[];
  toolChoice?: ConverseToolChoice;
};

export type ConverseInferenceConfig = {
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  stopSequences?: string[];
};

/** Structured outputs: `outputConfig.textFormat`, the schema as a JSON string. */
export type ConverseOutputConfig = {
  textFormat: {
    type: 'json_schema';
    structure: { jsonSchema: { schema: string; name?: string; description?: string } };
  };
};

/** The Converse request body (the model is in the path). */
export type ConverseRequest = {
  inferenceConfig: ConverseInferenceConfig;
  messages: ConverseMessage[];
  system?: ConverseSystemBlock[];
  toolConfig?: ConverseToolConfig;
  /** Model-specific fields: Claude's `thinking`, Nova 2's `reasoningConfig`. */
  additionalModelRequestFields?: Record<string, unknown>;
  outputConfig?: ConverseOutputConfig;
};

/** Converse `usage` (response and the stream's `metadata` event): inputTokens excludes cache reads and writes. */
export type ConverseUsage = {
  inputTokens?: number;
  outputTokens?: number;
  totalTokens?: number;
  cacheReadInputTokens?: number;
  cacheWriteInputTokens?: number;
  /** The writes per TTL. */
  cacheDetails?: { inputTokens?: number; ttl?: '5m' | '1h' }[];
};

/** A content block of an answer, every kind's fields together (one of them is set). */
export type ConverseResponseBlock = {
  text?: string;
  reasoningContent?: { reasoningText?: { text: string; signature?: string } };
  toolUse?: { toolUseId: string; name: string; input: Record<string, unknown> };
};

/** The Converse answer. */
export type ConverseResponse = {
  output: { message: { role: 'assistant'; content: ConverseResponseBlock[] } };
  stopReason: string;
  usage: ConverseUsage;
};

/**
 * A ConverseStream event payload, every kind's fields together; the kind is the frame's `:event-type` header:
 * `messageStart`, `contentBlockStart` (`start.toolUse`), `contentBlockDelta` (`delta`), `contentBlockStop`,
 * `messageStop` (`stopReason`) and `metadata` (`usage`, `serviceTier`).
 */
export type ConverseStreamEvent = {
  contentBlockIndex?: number;
  start?: { toolUse?: { toolUseId: string; name: string } };
  delta?: {
    text?: string;
    /** A piece of the tool input's JSON text. */
    toolUse?: { input: string };
    reasoningContent?: { text?: string; signature?: string };
  };
  stopReason?: string;
  usage?: ConverseUsage;
  serviceTier?: { type: string };
};
