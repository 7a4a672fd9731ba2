/** Money from tokens: exact pico-dollar prices, each token priced once, rounded up into the cost's unit. */
import type { ModelPrice } from '@ai-gateway-constructs/processor-config';
import { compileCost, CostCompileError } from '../../src/usage/costs';
import { UsageMetadata } from '../../src/usage/metadata';
import { compilePrices, picoUsdOf, toCostUnits, usdOf } from '../../src/usage/prices';
import { loadProtoRoot } from '../../src/grpc/descriptor';
import { converseUsage } from '../../src/providers/bedrock';
import { tokenUsage } from '../../src/providers/common';
import { anthropicUsage, mergeAnthropicUsage, NO_COUNTS } from '../../src/providers/openai-to-anthropic';

const struct = loadProtoRoot().lookupType('google.protobuf.Struct');

/** $2.50 / $10 per million tokens, cached reads at $1.25, reasoning at $12. */
const GPT: ModelPrice = { model: 'gpt-4o-2024', input: 2_500_000, output: 10_000_000, cachedInput: 1_250_000 };
const REASONER: ModelPrice = { model: 'o-reasoner', input: 1_000_000, output: 4_000_000, reasoning: 12_000_000 };

describe('picoUsdOf', () => {
  it('prices cached reads (part of input) and reasoning (part of output) once, at their own rates', () => {
    // 1,000 input of which 400 cached; 300 output of which 100 reasoning.
    const usage = { input: 1000, output: 300, total: 1300, cachedInput: 400, reasoning: 100 };
    expect(picoUsdOf(usage, GPT)).toBe(600n * 2_500_000n + 400n * 1_250_000n + 300n * 10_000_000n);
    expect(picoUsdOf(usage, REASONER)).toBe(1000n * 1_000_000n + 200n * 4_000_000n + 100n * 12_000_000n);
  });

  it('defaults the cached rate to input and the reasoning rate to output', () => {
    const usage = { input: 10, output: 5, total: 15, cachedInput: 4, reasoning: 2 };
    expect(picoUsdOf(usage, { model: 'm', input: 7, output: 11 })).toBe(10n * 7n + 5n * 11n);
  });

  /** Claude Sonnet 4: $3 input, $0.30 cache reads, $3.75 five-minute and $6 one-hour cache writes, $15 output. */
  const SONNET: ModelPrice = {
    model: 'claude-sonnet-4-20250514',
    input: 3_000_000,
    output: 15_000_000,
    cachedInput: 300_000,
    cacheWrite: 3_750_000,
    cacheWrite1h: 6_000_000,
  };

  it('prices cache writes (part of input) once, five-minute and one-hour writes at their own rates', () => {
    // Anthropic reported input_tokens 100, cache_read 2,000, cache_creation 1,500 (of which 1h: 500), output 50:
    // the translators put all of it into `input` (3,600) and count reads and writes apart.
    const usage = {
      input: 3600,
      output: 50,
      total: 3650,
      cachedInput: 2000,
      reasoning: 0,
      cacheWriteInput: 1500,
      cacheWrite1hInput: 500,
    };
    // 100 * 3,000,000 + 2,000 * 300,000 + 1,000 * 3,750,000 + 500 * 6,000,000 + 50 * 15,000,000
    expect(picoUsdOf(usage, SONNET)).toBe(8_400_000_000n);
    // Without the one-hour split every write is a five-minute write.
    const { cacheWrite1hInput: _, ...fiveMinutes } = usage;
    expect(picoUsdOf(fiveMinutes, SONNET)).toBe(100n * 3_000_000n + 600_000_000n + 1500n * 3_750_000n + 750_000_000n);
  });

  it('defaults the one-hour write rate to the five-minute one, and that to the input rate', () => {
    const usage = {
      input: 10,
      output: 0,
      total: 10,
      cachedInput: 2,
      reasoning: 0,
      cacheWriteInput: 5,
      cacheWrite1hInput: 3,
    };
    const base = { model: 'm', input: 7, output: 11, cachedInput: 1 };
    // 3 plain + 2 read + 2 five-minute + 3 one-hour
    expect(picoUsdOf(usage, { ...base, cacheWrite: 13 })).toBe(3n * 7n + 2n * 1n + 5n * 13n);
    expect(picoUsdOf(usage, { ...base, cacheWrite: 13, cacheWrite1h: 17 })).toBe(3n * 7n + 2n + 2n * 13n + 3n * 17n);
    expect(picoUsdOf(usage, { ...base, cacheWrite1h: 17 })).toBe(3n * 7n + 2n + 2n * 7n + 3n * 17n);
    expect(picoUsdOf(usage, base)).toBe(8n * 7n + 2n);
  });

  it('prices the usage of Anthropic and Bedrock Converse, whose input counts exclude cache reads and writes', () => {
    // 100 * $3 + 2,000 * $0.30 + 1,000 * $3.75 + 500 * $6 + 50 * $15 per million tokens, as above.
    const anthropic = tokenUsage(
      anthropicUsage(
        mergeAnthropicUsage(NO_COUNTS, {
          input_tokens: 100,
          cache_read_input_tokens: 2000,
          cache_creation_input_tokens: 1500,
          cache_creation: { ephemeral_5m_input_tokens: 1000, ephemeral_1h_input_tokens: 500 },
          output_tokens: 50,
        }),
      ),
    );
    expect(picoUsdOf(anthropic, SONNET)).toBe(8_400_000_000n);
    const converse = tokenUsage(
      converseUsage({
        inputTokens: 100,
        cacheReadInputTokens: 2000,
        cacheWriteInputTokens: 1500,
        cacheDetails: [
          { ttl: '5m', inputTokens: 1000 },
          { ttl: '1h', inputTokens: 500 },
        ],
        outputTokens: 50,
      }),
    );
    expect(picoUsdOf(converse, SONNET)).toBe(8_400_000_000n);
  });

  it('caps cache writes at the input left after the reads, and one-hour writes at the writes', () => {
    const usage = {
      input: 10,
      output: 0,
      total: 10,
      cachedInput: 6,
      reasoning: 0,
      cacheWriteInput: 9,
      cacheWrite1hInput: 20,
    };
    // 6 read, 4 written (all one-hour), none plain.
    expect(picoUsdOf(usage, SONNET)).toBe(6n * 300_000n + 4n * 6_000_000n);
  });

  it('caps inconsistent detail counts so that no token is charged twice', () => {
    const usage = { input: 3, output: 2, total: 5, cachedInput: 9, reasoning: 8 };
    expect(picoUsdOf(usage, GPT)).toBe(3n * 1_250_000n + 2n * 10_000_000n);
  });

  it('stays exact beyond 2^53 pico-dollars', () => {
    const price = { model: 'm', input: Number.MAX_SAFE_INTEGER, output: 1 };
    const usage = { input: 4_000_000, output: 0, total: 4_000_000, cachedInput: 0, reasoning: 0 };
    expect(picoUsdOf(usage, price)).toBe(4_000_000n * BigInt(Number.MAX_SAFE_INTEGER));
  });
});

describe('toCostUnits and usdOf', () => {
  it('rounds up into the unit (a budget never undercharges)', () => {
    expect(toCostUnits(0n, 1_000_000)).toBe(0);
    expect(toCostUnits(1n, 1_000_000)).toBe(1);
    expect(toCostUnits(1_000_000n, 1_000_000)).toBe(1);
    expect(toCostUnits(1_000_001n, 1_000_000)).toBe(2);
    expect(toCostUnits(5_000_000_000_000n, 10_000_000)).toBe(500_000);
  });

  it('converts to dollars for metrics', () => {
    expect(usdOf(2_500_000_000_000n)).toBe(2.5);
    expect(usdOf(4_500_000n)).toBeCloseTo(0.0000045, 15);
  });
});

describe('Price costs', () => {
  const prices = compilePrices([GPT, REASONER]);
  const cost = compileCost({ metadataKey: 'usd_micro', type: 'Price', picoUsdPerUnit: 1_000_000 }, prices);
  const usage = { input: 1000, output: 300, total: 1300, cachedInput: 400, reasoning: 100 };

  it('prices the model sent upstream, not the one the client named', () => {
    // 600 * $2.50 + 400 * $1.25 + 300 * $10 per million tokens = 5,000,000,000 pico-dollars = 5,000 micro-dollars.
    expect(cost.evaluate({ model: 'gpt-4o', upstreamModel: 'gpt-4o-2024', backend: 'b', usage })).toBe(5000);
    expect(cost.evaluate({ model: 'gpt-4o-2024', backend: 'b', usage })).toBe(5000);
    expect(cost.evaluate({ model: 'gpt-4o-2024', upstreamModel: 'unpriced', backend: 'b', usage })).toBe(0);
  });

  it('needs prices and a unit', () => {
    expect(() => compileCost({ metadataKey: 'm', type: 'Price', picoUsdPerUnit: 1 })).toThrow(CostCompileError);
    expect(() => compileCost({ metadataKey: 'm', type: 'Price' }, prices)).toThrow(/picoUsdPerUnit/);
  });

  it('is written into the usage metadata next to the token counts', () => {
    const metadata = new UsageMetadata([cost]);
    const bytes = metadata.encode({ model: 'gpt-4o', upstreamModel: 'gpt-4o-2024', backend: 'b', usage });
    const decoded = struct.toObject(struct.decode(bytes)) as {
      fields: Record<string, { structValue: { fields: Record<string, { numberValue: number }> } }>;
    };
    expect(decoded.fields['io.envoy.ai_gateway'].structValue.fields.usd_micro.numberValue).toBe(5000);
  });

  it('is written as at most 1e9 units, the most Envoy charges one request (it drops a larger charge)', () => {
    // A unit of one pico-dollar: 1,000 input tokens of gpt-4o-2024 cost 2.5e9 units.
    const fine = compileCost({ metadataKey: 'usd_pico', type: 'Price', picoUsdPerUnit: 1 }, prices);
    const expensive = { ...usage, input: 1000, cachedInput: 0, output: 0, reasoning: 0, total: 1000 };
    expect(fine.evaluate({ model: 'gpt-4o', upstreamModel: 'gpt-4o-2024', backend: 'b', usage: expensive })).toBe(
      2_500_000_000,
    );
    const bytes = new UsageMetadata([fine]).encode({
      model: 'gpt-4o',
      upstreamModel: 'gpt-4o-2024',
      backend: 'b',
      usage: expensive,
    });
    const decoded = struct.toObject(struct.decode(bytes)) as {
      fields: Record<string, { structValue: { fields: Record<string, { numberValue: number }> } }>;
    };
    const fields = decoded.fields['io.envoy.ai_gateway'].structValue.fields;
    expect(fields.usd_pico.numberValue).toBe(1_000_000_000);
    expect(fields.llm_input_token.numberValue).toBe(1000);
  });
});
