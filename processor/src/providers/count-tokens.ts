/**
 * Anthropic clients' `/v1/messages/count_tokens` on backends with their own token-counting API, answered in
 * Anthropic's shape (`{"input_tokens": N}`):
 * - Bedrock (Converse schema): `POST /model/{id}/count-tokens` with `{"input": {"converse": {messages, system,
 *   toolConfig, additionalModelRequestFields}}}` (the fields Converse would get), answered `{"inputTokens": N}`.
 *   Bedrock counts for foundation-model ids only; its own 400 for other ids reaches the client in Anthropic's shape.
 * - Vertex AI Gemini: `:countTokens` with `{contents, systemInstruction, tools}` (the fields generateContent would
 *   get), answered `{"totalTokens": N, ...}`.
 * Counting is free: no tokens are charged (usage stays zero).
 */
import type { TranslationContext, TranslatorFactory, UpstreamRequest } from '../translate/types';
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
