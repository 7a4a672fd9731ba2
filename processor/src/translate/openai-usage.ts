import type { TokenUsage } from './types';

/**
 * Reads an OpenAI-style `usage` object: chat/completions/embeddings (`prompt_tokens`, `completion_tokens`,
 * `prompt_tokens_details.cached_tokens`, `completion_tokens_details.reasoning_tokens`) and the Responses API
 * (`input_tokens`, `output_tokens`, `input_tokens_details`, `output_tokens_details`). Undefined when absent.
 */
export function usageFromOpenAI(usage: unknown): TokenUsage | undefined {
  if (usage === null || typeof usage !== 'object') return undefined;
  const u = usage as Record<string, unknown>;
  const input = count(u.prompt_tokens ?? u.input_tokens);
  const output = count(u.completion_tokens ?? u.output_tokens);
  const totalField = u.total_tokens;
  const inputDetails = (u.prompt_tokens_details ?? u.input_tokens_details) as Record<string, unknown> | null | undefined;
  const outputDetails = (u.completion_tokens_details ?? u.output_tokens_details) as Record<string, unknown> | null | undefined;
  return {
    input,
    output,
    total: typeof totalField === 'number' ? count(totalField) : input + output,
    cachedInput: count(inputDetails?.cached_tokens),
    reasoning: count(outputDetails?.reasoning_tokens),
  };
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}
