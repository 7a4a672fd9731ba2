import { Construct } from 'constructs';
import type { GlobalRateLimitRule } from './crds';
import { invalid } from './errors';
import { CRD_LIMITS } from './limits/crd-limits.generated';
import { TokenCost, addBudget, type BudgetOptions } from './budget';

export { ClientIdentity, ModelScope, RateLimitUnit, TokenCost } from './budget';
export type { BudgetOptions, IBudgetTarget } from './budget';

export interface TokenRateLimitProps extends BudgetOptions {
  /** Tokens allowed per window; a positive integer. */
  readonly limit: number;
  /**
   * What counts against the budget.
   * @default TokenCost.totalTokens()
   */
  readonly cost?: TokenCost;
}

/** The largest token limit (CRD `rateLimit.global.rules[].limit.requests` maximum). */
const MAX_LIMIT = CRD_LIMITS.budgetLimitRequests.maximum;

/**
 * A token budget: a global rate limit whose request cost is 0 (checked only) and whose response cost is the
 * token count the processor writes into `io.envoy.ai_gateway` metadata. Every emitted rule is `shared`: Envoy
 * Gateway keys a rule that is not shared on the Envoy route entry, i.e. one bucket per backend rule, match and
 * hostname. On an AIGateway every budget, the gateway's and its routes', goes into the gateway's single
 * BackendTrafficPolicy, scoped by the route header the processor sets (`x-ai-gateway-route`), so gateway and
 * route budgets stack and each keeps one bucket on every Envoy route. A route on a Gateway not managed by an
 * AIGateway keeps its budgets in its own BackendTrafficPolicy, merged into whatever the Gateway carries.
 *
 * The budget adds one fragment (its rule, its cost, its client header) to the model of its target's processor;
 * the processor config and the policy holding the rule read it at synth.
 */
export class TokenRateLimit extends Construct {
  readonly metadataKey: string;
  /** @internal */
  readonly _rule: GlobalRateLimitRule;

  constructor(scope: Construct, id: string, props: TokenRateLimitProps) {
    super(scope, id);
    if (!Number.isInteger(props.limit) || props.limit <= 0 || props.limit > MAX_LIMIT) {
      throw invalid(this, 'limit', props.limit, `must be a positive integer number of tokens (at most ${MAX_LIMIT})`);
    }
    const cost = props.cost ?? TokenCost.totalTokens();
    if (!(cost instanceof TokenCost)) throw invalid(this, 'cost', cost, 'must be created with TokenCost');
    this.metadataKey = cost.metadataKey;
    this._rule = addBudget(this, props, { cost: cost._config, limit: props.limit, money: false });
  }
}
