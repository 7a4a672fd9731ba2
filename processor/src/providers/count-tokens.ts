/**
 * Anthropic clients' `/v1/messages/count_tokens` on backends with their own token-counting API, answered in
 * Anthropic's shape (`{"input_tokens": N}`):
 * - Bedrock (Converse schema): `POST /model/{id}/count-tokens` with `{"input": {"converse": {messages, system,
 *   toolConfig, additionalModelRequestFields}}}` (the fields Converse would get), answered `{"inputTokens": N}`.
 *   Bedrock counts for foundation-model ids only; its own 400 for other ids reaches the client in Anthropic's shape.
 * - Bedrock InvokeModel Claude (AWSAnthropic schema): the same API with `{"input": {"invokeModel": {"body": B}}}`,
 *   where B is the InvokeModel body (the client's fields without `model`, with the backend's `anthropic_version`)
 *   serialized to JSON and base64-encoded (the field is a blob, which the JSON protocol carries base64). An
 *   InvokeModel body needs `max_tokens`, which count_tokens requests do not carry: 1 is sent when absent (it does
 *   not change the input count).
 * - Vertex AI Gemini: `:countTokens` with `{contents, systemInstruction, tools}` (the fields generateContent would
 *   get), answered `{"totalTokens": N, ...}`.
 * Counting is free: no tokens are charged (usage stays zero).
 */
import {
  TranslationError,
  type TranslationContext,
  type TranslatorFactory,
  type UpstreamRequest,
} from '../translate/types';
import { anthropicToOpenAIChat } from './anthropic-to-openai';
import { anthropicMessagesToConverse } from './bedrock';
import {
  asObject,
  ConvertingResponse,
  count,
  EMPTY,
  type JsonObject,
  modelPathSegment,
  parseJsonBuffer,
} from './common';
import { modelPath, openAIChatToGemini } from './gemini';

/** The Converse fields CountTokens reads (`ConverseTokensRequest`). */
const CONVERSE_TOKENS_FIELDS = ['messages', 'system', 'toolConfig', 'additionalModelRequestFields'] as const;

/** The generateContent fields Vertex's countTokens reads. */
const GEMINI_TOKENS_FIELDS = ['contents', 'systemInstruction', 'tools'] as const;

function pick(source: JsonObject, fields: readonly string[]): JsonObject {
  const out: JsonObject = {};
  for (const field of fields) if (source[field] !== undefined) out[field] = source[field];
  return out;
}

/** The Bedrock CountTokens body for an Anthropic count_tokens request. */
export function anthropicCountTokensToBedrock(body: JsonObject): JsonObject {
  return { input: { converse: pick(anthropicMessagesToConverse(body), CONVERSE_TOKENS_FIELDS) } };
}

/**
 * The Bedrock CountTokens body for an Anthropic count_tokens request on an InvokeModel (AWSAnthropic) backend.
 * `body` is the client's parsed body, changed in place.
 */
export function anthropicCountTokensToInvokeModel(body: JsonObject, anthropicVersion: string): JsonObject {
  delete body.model;
  delete body.stream;
  body.anthropic_version = anthropicVersion;
  body.max_tokens ??= 1;
  return { input: { invokeModel: { body: Buffer.from(JSON.stringify(body)).toString('base64') } } };
}

/** The Vertex countTokens body for an Anthropic count_tokens request (through the OpenAI chat form). */
export function anthropicCountTokensToGemini(body: JsonObject, context: TranslationContext): JsonObject {
  return pick(openAIChatToGemini(anthropicToOpenAIChat(body, context)), GEMINI_TOKENS_FIELDS);
}

/** A provider's token count -> `{"input_tokens": N}`; errors in Anthropic's error shape. */
class CountTokensResponse extends ConvertingResponse {
  constructor(
    private readonly field: 'inputTokens' | 'totalTokens',
    private readonly provider: string,
  ) {
    super('Anthropic', false);
  }

  protected convertBody(whole: Buffer): Buffer {
    const response = asObject(parseJsonBuffer(whole));
    const value = response?.[this.field];
    if (typeof value !== 'number') return this.unreadable(`${this.provider} token count`);
    return Buffer.from(JSON.stringify({ input_tokens: count(value) }));
  }

  protected streamChunk(): Buffer {
    return EMPTY;
  }
}

export const anthropicCountTokensToBedrockBackend: TranslatorFactory = (context) => ({
  request(body): UpstreamRequest {
    return {
      path: `/model/${modelPathSegment(context.upstreamModel)}/count-tokens`,
      body: anthropicCountTokensToBedrock(body),
      setHeaders: {},
      removeHeaders: [],
    };
  },
  response: () => new CountTokensResponse('inputTokens', 'Bedrock'),
});

export const anthropicCountTokensToInvokeModelBackend: TranslatorFactory = (context) => ({
  request(body): UpstreamRequest {
    const schema = context.backend.schema;
    if (schema.name !== 'AWSAnthropic')
      throw new TranslationError(500, `backend ${context.backend.name} is not an AWSAnthropic backend`, 'server_error');
    return {
      path: `/model/${modelPathSegment(context.upstreamModel)}/count-tokens`,
      body: anthropicCountTokensToInvokeModel(body, schema.anthropicVersion),
      setHeaders: {},
      removeHeaders: [],
    };
  },
  response: () => new CountTokensResponse('inputTokens', 'Bedrock'),
});

export const anthropicCountTokensToGeminiBackend: TranslatorFactory = (context) => ({
  request(body): UpstreamRequest {
    return {
      path: modelPath(context, 'countTokens'),
      body: anthropicCountTokensToGemini(body, context),
      setHeaders: {},
      removeHeaders: [],
    };
  },
  response: () => new CountTokensResponse('totalTokens', 'Vertex AI'),
});
