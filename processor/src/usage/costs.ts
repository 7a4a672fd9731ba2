/**
 * Token costs written into the `io.envoy.ai_gateway` metadata: plain token counts, CEL expressions or money (`Price`),
 * compiled once at config load and evaluated per response.
 */
import type { CelInput } from '@bufbuild/cel';
import type { CostConfig } from '@ai-gateway-constructs/processor-config';
import type { TokenUsage } from '../translate/types';
import { compileArithmeticCost } from './cel-arithmetic';
import { NO_PRICES, picoUsdOf, toCostUnits, type PriceTable } from './prices';

export interface CostInputs {
  /** The model the client named. */
  model: string;
  /** The model sent to the provider (a rule's `modelNameOverride`); absent: `model`. Money costs price it. */
  upstreamModel?: string;
  backend: string;
  usage: TokenUsage;
}

export type CostFunction = (inputs: CostInputs) => number;

export interface CompiledCost {
  metadataKey: string;
  evaluate: CostFunction;
}

export class CostCompileError extends Error {}

/** Token counts are bound as CEL int; expressions written for uint (`uint(3) * input_tokens`) or double also work. */
type NumberFlavor = 'int' | 'uint' | 'double';
const FLAVORS: readonly NumberFlavor[] = ['int', 'uint', 'double'];

type CelModule = typeof import('@bufbuild/cel');

/** The CEL runtime is large; it is loaded only when a config has a CEL cost. */
function loadCel(): CelModule {
  return require('@bufbuild/cel') as CelModule;
}

const COUNTS: ReadonlyArray<readonly [string, (usage: TokenUsage) => number]> = [
  ['input_tokens', (u) => u.input],
  ['output_tokens', (u) => u.output],
  ['total_tokens', (u) => u.total],
  ['cached_input_tokens', (u) => u.cachedInput],
  ['reasoning_tokens', (u) => u.reasoning],
];

type Bind = (inputs: CostInputs) => Record<string, CelInput>;

/**
 * Binds only the variables the expression mentions (a name inside a string literal just binds one more):
 * each count becomes a BigInt per response, and most expressions read two or three of them.
 */
function binder(cel: CelModule, expression: string, flavor: NumberFlavor): Bind {
  const mentions = (name: string) => new RegExp(`\\b${name}\\b`).test(expression);
  const counts = COUNTS.filter(([name]) => mentions(name));
  const model = mentions('model');
  const backend = mentions('backend');
  const bind = (value: number): CelInput =>
    flavor === 'int' ? BigInt(value) : flavor === 'uint' ? cel.celUint(BigInt(value)) : value;
  return (inputs) => {
    const bindings: Record<string, CelInput> = {};
    if (model) bindings.model = inputs.model;
    if (backend) bindings.backend = inputs.backend;
    for (const [name, read] of counts) bindings[name] = bind(read(inputs.usage));
    return bindings;
  };
}

function toCost(cel: CelModule, value: unknown): number | undefined {
  let n: number;
  if (typeof value === 'bigint') n = Number(value);
  else if (typeof value === 'number') n = value;
  else if (cel.isCelUint(value)) n = Number(value.value);
  else return undefined;
  return Number.isFinite(n) ? Math.max(0, n) : undefined;
}

const SAMPLE: CostInputs = {
  model: 'sample-model',
  backend: 'sample-backend',
  usage: { input: 3, output: 5, total: 8, cachedInput: 1, reasoning: 2 },
};

export function compileCelCost(expression: string): CostFunction {
  const cel = loadCel();
  const { isCelError } = cel;
  let program: ReturnType<CelModule['plan']>;
  try {
    program = cel.plan(cel.celEnv(), cel.parse(expression));
  } catch (error) {
    throw new CostCompileError(`CEL expression "${expression}" does not compile: ${(error as Error).message}`);
  }
  let lastProblem = '';
  for (const flavor of FLAVORS) {
    const bindings = binder(cel, expression, flavor);
    const result = program(bindings(SAMPLE));
    if (isCelError(result)) {
      lastProblem = result.message;
      continue;
    }
    if (toCost(cel, result) === undefined) {
      throw new CostCompileError(`CEL expression "${expression}" must evaluate to a number, not ${typeof result}`);
    }
    const arithmetic = flavor === 'int' ? compileArithmeticCost(expression) : undefined;
    return (inputs) => {
      const quick = arithmetic?.(inputs.usage);
      if (quick !== undefined) return Math.max(0, quick);
      const value = program(bindings(inputs));
      const cost = isCelError(value) ? undefined : toCost(cel, value);
      if (cost === undefined)
        throw new Error(`CEL expression "${expression}" failed: ${isCelError(value) ? value.message : 'not a number'}`);
      return cost;
    };
  }
  throw new CostCompileError(`CEL expression "${expression}" cannot be evaluated: ${lastProblem}`);
}

/**
 * A money cost: the response's tokens priced for the upstream model, in units of `picoUsdPerUnit` pico-dollars,
 * rounded up (a budget never undercharges). A model without a price costs 0 (routes that must not serve one
 * answer it 400 before the provider, see `priceRequired`).
 */
export function compilePriceCost(prices: PriceTable, picoUsdPerUnit: number): CostFunction {
  return ({ usage, model, upstreamModel }) => {
    const price = prices.get(upstreamModel ?? model);
    return price === undefined ? 0 : toCostUnits(picoUsdOf(usage, price), picoUsdPerUnit);
  };
}

export function compileCost(cost: CostConfig, prices: PriceTable = NO_PRICES): CompiledCost {
  let evaluate: CostFunction;
  switch (cost.type) {
    case 'InputToken':
      evaluate = ({ usage }) => usage.input;
      break;
    case 'OutputToken':
      evaluate = ({ usage }) => usage.output;
      break;
    case 'TotalToken':
      evaluate = ({ usage }) => usage.total;
      break;
    case 'CachedInputToken':
      evaluate = ({ usage }) => usage.cachedInput;
      break;
    case 'ReasoningToken':
      evaluate = ({ usage }) => usage.reasoning;
      break;
    case 'CEL':
      evaluate = compileCelCost(cost.expression ?? '');
      break;
    case 'Price':
      if (cost.picoUsdPerUnit === undefined)
        throw new CostCompileError(`cost "${cost.metadataKey}": a "Price" cost needs picoUsdPerUnit`);
      if (prices.size === 0) throw new CostCompileError(`cost "${cost.metadataKey}": a "Price" cost needs prices`);
      evaluate = compilePriceCost(prices, cost.picoUsdPerUnit);
      break;
  }
  return { metadataKey: cost.metadataKey, evaluate };
}
