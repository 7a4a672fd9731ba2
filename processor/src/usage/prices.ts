/**
 * Money from tokens: the `prices` catalog compiled once per config, and the exact price of one response in
 * pico-dollars. Every provider's usage reaches the processor in the same shape (translate/types.ts `TokenUsage`):
 * `input` includes the tokens read from and written to the prompt cache, `cachedInput` counts the reads among them
 * and `cacheWriteInput` the writes (of which `cacheWrite1hInput` had a one-hour lifetime; only Anthropic and Bedrock
 * report writes, and add them into `input`); `output` includes the reasoning tokens and `reasoning` counts them. Each
 * token is therefore priced once: at the cache-read, cache-write (five-minute or one-hour) or plain input rate, at the
 * reasoning rate or the output rate.
 */
import type { ModelPrice } from '@ai-gateway-constructs/processor-config';
import type { TokenUsage } from '../translate/types';

/** Prices by the model name sent upstream. */
export type PriceTable = ReadonlyMap<string, ModelPrice>;

export const NO_PRICES: PriceTable = new Map();

export function compilePrices(prices: readonly ModelPrice[] | undefined): PriceTable {
  if (prices === undefined || prices.length === 0) return NO_PRICES;
  return new Map(prices.map((price) => [price.model, price]));
}

/**
 * The price of `usage` in pico-dollars, exactly. Counts a provider reports inconsistently (more cached tokens than
 * input tokens, more cache writes than the input tokens left after the reads) are capped so that no token is charged
 * twice.
 */
export function picoUsdOf(usage: TokenUsage, price: ModelPrice): bigint {
  const cached = Math.min(usage.cachedInput, usage.input);
  const written = Math.min(usage.cacheWriteInput ?? 0, usage.input - cached);
  const writtenForAnHour = Math.min(usage.cacheWrite1hInput ?? 0, written);
  const reasoning = Math.min(usage.reasoning, usage.output);
  const cacheWrite = price.cacheWrite ?? price.input;
  return (
    BigInt(usage.input - cached - written) * BigInt(price.input) +
    BigInt(cached) * BigInt(price.cachedInput ?? price.input) +
    BigInt(written - writtenForAnHour) * BigInt(cacheWrite) +
    BigInt(writtenForAnHour) * BigInt(price.cacheWrite1h ?? cacheWrite) +
    BigInt(usage.output - reasoning) * BigInt(price.output) +
    BigInt(reasoning) * BigInt(price.reasoning ?? price.output)
  );
}

/** An amount of pico-dollars in a cost unit of `picoUsdPerUnit` pico-dollars, rounded up. */
export function toCostUnits(picoUsd: bigint, picoUsdPerUnit: number): number {
  if (picoUsd <= 0n) return 0;
  const unit = BigInt(picoUsdPerUnit);
  return Number((picoUsd + unit - 1n) / unit);
}

const PICO_PER_USD = 1_000_000_000_000n;

/** Pico-dollars as US dollars for metrics (a double: exact to about a nano-dollar for amounts below $9,000). */
export function usdOf(picoUsd: bigint): number {
  const whole = picoUsd / PICO_PER_USD;
  return Number(whole) + Number(picoUsd - whole * PICO_PER_USD) / 1e12;
}
