/**
 * The governance part of a config snapshot: consumers, prices and budgets, compiled once per load and swapped with
 * the rest of the snapshot on reload.
 */
import type { BudgetConfig, ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import { compilePrices, type PriceTable } from '../usage/prices';
import { ConsumerDirectory } from './consumers';
import { ExhaustionLog } from './budgets';

export { ConsumerDirectory, type ConsumerRuntime } from './consumers';

export interface Governance {
  /** Undefined when the config has no consumers: requests carry no consumer and nothing is looked up. */
  readonly consumers: ConsumerDirectory | undefined;
  /** By upstream model; empty without `prices`. */
  readonly prices: PriceTable;
  readonly budgets: readonly BudgetConfig[];
  /** Consumers or prices configured: spend and tokens are counted per consumer. */
  readonly counted: boolean;
  /** Which (consumer, budget, window) exhaustion was already logged. */
  readonly exhaustions: ExhaustionLog;
}

/** Compiles the governance config (the schema has checked it, cross-references included). */
export function compileGovernance(config: ProcessorConfig): Governance {
  const prices = compilePrices(config.prices);
  const consumers = config.consumers === undefined ? undefined : new ConsumerDirectory(config.consumers);
  return {
    consumers,
    prices,
    budgets: config.budgets ?? [],
    counted: consumers !== undefined || prices.size > 0,
    exhaustions: new ExhaustionLog(),
  };
}
