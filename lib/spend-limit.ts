import { Construct } from 'constructs';
import type { GlobalRateLimitRule } from './crds';
import { invalid } from './errors';
import { Money, moneyUnitFor } from './money';
import { addBudget, type BudgetOptions } from './budget';

export interface SpendLimitProps extends BudgetOptions {
  /** The money allowed per window, e.g. `Money.usd(500)`. */
  readonly limit: Money;
}

/**
 * A money budget: `limit: Money.usd(500), per: RateLimitUnit.THIRTY_DAYS`. The processor prices each response's
 * tokens with the gateway's price catalog (by the model sent upstream) and Envoy counts the amount against the
 * limit, as for a TokenRateLimit. Envoy charges one request at most 1,000,000,000 units (a larger charge is dropped),
 * so the limit is counted in the finest power-of-ten unit of money in which it is at most that many units
 * (micro-dollars up to $1,000, tens of micro-dollars up to $10,000, ...), rounded down to a whole unit, and a request
 * that costs the whole budget or more is still charged in full; a limit above $1,000,000,000 is an error. Every
 * model the budget covers must have a price: an exact model name without one is an error at synth, and requests for
 * other unpriced models (matched by a prefix or regex) are answered 400 before they reach the provider.
 */
export class SpendLimit extends Construct {
  /** The metadata key of the money cost the budget charges, e.g. `llm_cost_picousd_1e6` (micro-dollars). */
  readonly metadataKey: string;
  /** The unit the limit is counted in, in pico-dollars (1e6: micro-dollars). */
  readonly picoUsdPerUnit: number;
  /** @internal */
  readonly _rule: GlobalRateLimitRule;

  constructor(scope: Construct, id: string, props: SpendLimitProps) {
    super(scope, id);
    if (!(props.limit instanceof Money)) throw invalid(this, 'limit', props.limit, 'must be created with Money.usd()');
    if (props.limit._picoUsd <= 0n) throw invalid(this, 'limit', props.limit.toString(), 'must be more than $0');
    const unit = moneyUnitFor(props.limit._picoUsd);
    if (unit === undefined) {
      throw invalid(
        this,
        'limit',
        props.limit.toString(),
        'cannot be represented: counted in whole dollars it exceeds 1,000,000,000 units, the most Envoy charges ' +
          'one request (a budget must be able to charge a request that uses it up)',
      );
    }
    this.metadataKey = unit.costKey;
    this.picoUsdPerUnit = unit.picoUsdPerUnit;
    this._rule = addBudget(this, props, {
      cost: { metadataKey: unit.costKey, type: 'Price', picoUsdPerUnit: unit.picoUsdPerUnit },
      limit: unit.units,
      money: true,
    });
  }
}
