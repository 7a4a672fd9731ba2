/**
 * The default price catalog (`PriceCatalog.defaults()`): list prices in US dollars per million tokens, standard
 * (non-batch) tier, keyed by the model name sent to the provider.
 *
 * Compiled on 2026-12-06 from these pages as stored by our reference search (only prices two sources agreed on, or
 * that the provider's own page showed, are listed; the rest were left out rather than guessed):
 * - Anthropic: docs.anthropic.com/en/docs/about-claude/pricing (base input, 5-minute and 1-hour cache writes, cache
 *   hits, output), for Claude Opus 4.1, Opus 4, Sonnet 4, Sonnet 3.7, Haiku 3.5 and Haiku 3; Sonnet 4.5 and Haiku 4.5
 *   as quoted from that page by several guides (cache reads at a tenth of input, 5-minute writes at 1.25 times and
 *   1-hour writes at twice the input price, as the Anthropic page states for every model).
 * - OpenAI: platform.openai.com/docs/pricing as quoted (2025-06-03 and later) by several client libraries and guides,
 *   which agree on gpt-4.1, gpt-4.1-mini, gpt-4.1-nano, gpt-4o, gpt-4o-mini and the text-embedding-3 models. Azure
 *   OpenAI's global deployments of these models list the same prices; a deployment is priced by the model name the
 *   route sends (`modelNameOverride`). Reasoning tokens are billed as output tokens.
 * - AWS Bedrock: aws.amazon.com/bedrock/pricing as quoted for on-demand Claude Opus 4, Claude 3.7 Sonnet and Claude
 *   3.5 Haiku in their regional model ids (the same list prices as Anthropic's, cache writes included). Bedrock offers
 *   these three models only the 5-minute cache, so no 1-hour write price is listed for them. Cross-region inference
 *   profiles (`us.`, `eu.`, `global.` prefixes) are not listed: add them with `with()` at your contract's rates.
 * - Google: ai.google.dev/gemini-api/docs/pricing as quoted by several guides for Gemini 2.5 Pro (prompts up to 200K
 *   tokens; longer prompts cost more and are under-charged here), 2.5 Flash and 2.5 Flash-Lite; Vertex AI lists the
 *   same prices for the same model names. Thinking tokens are billed as output tokens. Context-cache read prices were
 *   not verified, so cached input is charged at the input price (never under-charged).
 *
 * Prices change: check them against the providers' pages and your contract, and override with
 * `PriceCatalog.defaults().with({ ... })`.
 */
import type { ModelPricing } from '../money';

export const DEFAULT_PRICES_DATE = '2026-12-06';

// Anthropic's prices, with 5-minute cache writes (Anthropic API and Bedrock).
const OPUS_4 = { input: 15, cachedInput: 1.5, cacheWrite: 18.75, output: 75 };
const SONNET = { input: 3, cachedInput: 0.3, cacheWrite: 3.75, output: 15 };
const HAIKU_3_5 = { input: 0.8, cachedInput: 0.08, cacheWrite: 1, output: 4 };
// The Anthropic API also writes 1-hour cache entries, at twice the input price.
const OPUS_4_API = { ...OPUS_4, cacheWrite1h: 30 };
const SONNET_API = { ...SONNET, cacheWrite1h: 6 };
const HAIKU_3_5_API = { ...HAIKU_3_5, cacheWrite1h: 1.6 };
const HAIKU_4_5_API = { input: 1, cachedInput: 0.1, cacheWrite: 1.25, cacheWrite1h: 2, output: 5 };

export const DEFAULT_PRICES: Readonly<Record<string, ModelPricing>> = {
  // OpenAI (and Azure OpenAI deployments of these models)
  'gpt-4.1': { input: 2, cachedInput: 0.5, output: 8 },
  'gpt-4.1-mini': { input: 0.4, cachedInput: 0.1, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, cachedInput: 0.025, output: 0.4 },
  'gpt-4o': { input: 2.5, cachedInput: 1.25, output: 10 },
  'gpt-4o-mini': { input: 0.15, cachedInput: 0.075, output: 0.6 },
  'text-embedding-3-small': { input: 0.02, output: 0 },
  'text-embedding-3-large': { input: 0.13, output: 0 },
  // Anthropic
  'claude-opus-4-1-20250805': OPUS_4_API,
  'claude-opus-4-20250514': OPUS_4_API,
  'claude-sonnet-4-5-20250929': SONNET_API,
  'claude-sonnet-4-5': SONNET_API,
  'claude-sonnet-4-20250514': SONNET_API,
  'claude-3-7-sonnet-20250219': SONNET_API,
  'claude-haiku-4-5-20251001': HAIKU_4_5_API,
  'claude-haiku-4-5': HAIKU_4_5_API,
  'claude-3-5-haiku-20241022': HAIKU_3_5_API,
  'claude-3-haiku-20240307': { input: 0.25, cachedInput: 0.03, cacheWrite: 0.3, cacheWrite1h: 0.5, output: 1.25 },
  // AWS Bedrock (regional model ids)
  'anthropic.claude-opus-4-20250514-v1:0': OPUS_4,
  'anthropic.claude-3-7-sonnet-20250219-v1:0': SONNET,
  'anthropic.claude-3-5-haiku-20241022-v1:0': HAIKU_3_5,
  // Google Gemini API and Vertex AI
  'gemini-2.5-pro': { input: 1.25, output: 10 },
  'gemini-2.5-flash': { input: 0.3, output: 2.5 },
  'gemini-2.5-flash-lite': { input: 0.1, output: 0.4 },
};
