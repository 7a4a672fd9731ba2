import { MAX_REQUEST_COST, PICO_USD_PER_USD, type ModelPrice } from '@ai-gateway-constructs/processor-config';
import { DEFAULT_PRICES, DEFAULT_PRICES_DATE } from './prices/defaults';

const PICO_PER_MICRO = 1_000_000n;

/** An amount of money, for spend limits: `Money.usd(500)`. Exact to the micro-dollar. */
export class Money {
  /** `amount` US dollars, at most six decimals (micro-dollars), e.g. `Money.usd(12.5)`. */
  static usd(amount: number): Money {
    const micro = Math.round(amount * 1_000_000);
    if (
      typeof amount !== 'number' ||
      !Number.isFinite(amount) ||
      amount < 0 ||
      !Number.isSafeInteger(micro) ||
      Math.abs(amount * 1_000_000 - micro) > 1e-3
    ) {
      throw new Error(
        `Money.usd(${String(amount)}): must be a non-negative number of US dollars with at most six decimals ` +
          `(below ${Math.floor(Number.MAX_SAFE_INTEGER / 1_000_000)})`,
      );
    }
    return new Money(BigInt(micro) * PICO_PER_MICRO);
  }

  private constructor(
    /** @internal the amount in pico-dollars (1e-12 USD). */
    readonly _picoUsd: bigint,
  ) {}

  /** The amount in US dollars (rounded to the micro-dollar). */
  get usd(): number {
    return Number(this._picoUsd / PICO_PER_MICRO) / 1_000_000;
  }

  toString(): string {
    return `$${this.usd}`;
  }
}

/**
 * The money unit a limit is counted in: a power of ten of pico-dollars, the finest in which the limit is at most
 * MAX_REQUEST_COST units (micro-dollars for limits up to $1,000, 10 micro-dollars up to $10,000, ...). Envoy charges
 * one request at most MAX_REQUEST_COST units (it drops a larger charge), so a request that costs the whole budget or
 * more is still charged in full.
 * @internal
 */
export interface MoneyUnit {
  /** The unit in pico-dollars: 1, 10, ..., 1e12 (one dollar). */
  readonly picoUsdPerUnit: number;
  /** The limit in that unit, rounded down (by less than one part in 400 million, or not at all). */
  readonly units: number;
  /** The metadata key of the `Price` cost charged in this unit. */
  readonly costKey: string;
}

/**
 * The finest money unit in which `picoUsd` is at most MAX_REQUEST_COST units, or undefined when it fits no unit up to
 * a dollar. @internal
 */
export function moneyUnitFor(picoUsd: bigint): MoneyUnit | undefined {
  for (let exponent = 0; exponent <= 12; exponent++) {
    const unit = 10n ** BigInt(exponent);
    const units = picoUsd / unit;
    if (units <= BigInt(MAX_REQUEST_COST)) {
      return { picoUsdPerUnit: Number(unit), units: Number(units), costKey: moneyCostKey(exponent) };
    }
  }
  return undefined;
}

/** The cost key of money counted in units of 10^exponent pico-dollars, e.g. `llm_cost_picousd_1e6` (micro-dollars). */
function moneyCostKey(exponent: number): string {
  return `llm_cost_picousd_1e${exponent}`;
}

/** One model's prices in US dollars per million tokens (at most six decimals). */
export interface ModelPricing {
  /** Per million input tokens neither read from nor written to the provider's prompt cache. */
  readonly input: number;
  /** Per million output tokens (reasoning tokens included unless `reasoning` is given). */
  readonly output: number;
  /**
   * Per million input tokens read from the prompt cache.
   * @default - the `input` price
   */
  readonly cachedInput?: number;
  /**
   * Per million input tokens written to the prompt cache with the provider's default five-minute lifetime (Anthropic
   * and Claude on Bedrock or Vertex AI bill them at 1.25 times the input price).
   * @default - the `input` price
   */
  readonly cacheWrite?: number;
  /**
   * Per million input tokens written to the prompt cache with a one-hour lifetime (Anthropic bills them at twice the
   * input price).
   * @default - the `cacheWrite` price, else the `input` price
   */
  readonly cacheWrite1h?: number;
  /**
   * Per million reasoning ("thinking") tokens.
   * @default - the `output` price
   */
  readonly reasoning?: number;
}

/**
 * What money budgets charge per model: US dollars per million input, output, cached-input, cache-write and reasoning
 * tokens, by the model name sent to the provider (a route's `modelNameOverride`, else the client's model). Start from
 * the dated `PriceCatalog.defaults()` and override or extend it with `with()`, or build your own with
 * `PriceCatalog.of()`.
 * Prices are what the catalog says, not what a provider bills: check them against your contract (discounts, regional
 * endpoints, long-context tiers, batch rates).
 */
export class PriceCatalog {
  /** The date the default prices were taken from the providers' pricing pages (see lib/prices/defaults.ts). */
  static readonly DEFAULTS_DATE = DEFAULT_PRICES_DATE;

  /**
   * List prices of common models of OpenAI (also Azure OpenAI deployments of the same model names), Anthropic, AWS
   * Bedrock (Anthropic models by their Bedrock model ids) and Google Gemini (Gemini API and Vertex AI), as published
   * on `PriceCatalog.DEFAULTS_DATE`.
   */
  static defaults(): PriceCatalog {
    return new PriceCatalog(new Map(Object.entries(DEFAULT_PRICES).map(([model, p]) => [model, toPico(model, p)])));
  }

  /** A catalog of exactly these prices (model name → prices). */
  static of(prices: Record<string, ModelPricing>): PriceCatalog {
    return new PriceCatalog(new Map()).with(prices);
  }

  private constructor(private readonly prices: ReadonlyMap<string, ModelPrice>) {}

  /** A copy with these prices added, replacing those of the same models. */
  with(prices: Record<string, ModelPricing>): PriceCatalog {
    const next = new Map(this.prices);
    for (const [model, pricing] of Object.entries(prices)) next.set(model, toPico(model, pricing));
    return new PriceCatalog(next);
  }

  /** A copy without these models. */
  without(...models: string[]): PriceCatalog {
    const next = new Map(this.prices);
    for (const model of models) next.delete(model);
    return new PriceCatalog(next);
  }

  /** The priced model names, sorted. */
  get models(): string[] {
    return [...this.prices.keys()].sort();
  }

  /** @internal the price of `model` in pico-dollars per token, as the processor config carries it. */
  _price(model: string): ModelPrice | undefined {
    return this.prices.get(model);
  }
}

/** USD per million tokens → pico-dollars per token (exact for prices with at most six decimals). */
function toPico(model: string, pricing: ModelPricing): ModelPrice {
  if (typeof model !== 'string' || model.length === 0) throw new Error('PriceCatalog: a model name must not be empty');
  const convert = (field: keyof ModelPricing, value: number | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const pico = Math.round(value * (PICO_USD_PER_USD / 1_000_000));
    if (
      typeof value !== 'number' ||
      !Number.isFinite(value) ||
      value < 0 ||
      !Number.isSafeInteger(pico) ||
      Math.abs(value * 1_000_000 - pico) > 1e-3
    ) {
      throw new Error(
        `PriceCatalog: the ${field} price of "${model}" (${String(value)}) must be a non-negative number of ` +
          'US dollars per million tokens with at most six decimals',
      );
    }
    return pico;
  };
  if (pricing === null || typeof pricing !== 'object') {
    throw new Error(`PriceCatalog: "${model}" needs { input, output } prices in US dollars per million tokens`);
  }
  const cachedInput = convert('cachedInput', pricing.cachedInput);
  const cacheWrite = convert('cacheWrite', pricing.cacheWrite);
  const cacheWrite1h = convert('cacheWrite1h', pricing.cacheWrite1h);
  const reasoning = convert('reasoning', pricing.reasoning);
  return {
    model,
    input: convert('input', pricing.input) ?? missing(model, 'input'),
    output: convert('output', pricing.output) ?? missing(model, 'output'),
    ...(cachedInput !== undefined ? { cachedInput } : {}),
    ...(cacheWrite !== undefined ? { cacheWrite } : {}),
    ...(cacheWrite1h !== undefined ? { cacheWrite1h } : {}),
    ...(reasoning !== undefined ? { reasoning } : {}),
  };
}

function missing(model: string, field: string): never {
  throw new Error(`PriceCatalog: "${model}" needs an ${field} price in US dollars per million tokens`);
}
