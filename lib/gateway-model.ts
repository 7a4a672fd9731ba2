import type { IConstruct } from 'constructs';
import type { BackendConfig, CostConfig, RouteConfig } from '@ai-gateway-constructs/processor-config';
import type { GlobalRateLimitRule } from './crds';
import { ModelMatchIndex, type ModelMatch } from './model-match';
import { RoutePrecedenceIndex } from './route-precedence';

/**
 * What one AIRoute contributes to the processor that serves it: plain read-only data, complete when the route's
 * constructor returns. The processor builds its config and drain time from these at synth.
 */
export interface RouteFragment {
  /** The route construct: error messages name it, and its HTTPRoute (and retry policy) are emitted below it. */
  readonly scope: IConstruct;
  /** Name of the route's HTTPRoute. */
  readonly name: string;
  /** Namespace of the route's HTTPRoute. */
  readonly namespace: string;
  /** The route's entry in the processor config; `requiredHeaders` holds only the route's own. */
  readonly route: RouteConfig;
  /** The processor config entries of the route's backends. */
  readonly backends: readonly BackendConfig[];
  /** Per backend, the request headers its `headerMutation` sets or removes (budgets cannot key on them). */
  readonly mutatedHeaders: readonly { readonly backendName: string; readonly headers: readonly string[] }[];
  /** The model matches of the route's rules, in order (a budget for one model checks that a rule serves it). */
  readonly modelMatches: readonly ModelMatch[];
}

/** What one TokenRateLimit contributes: its rate-limit rule and what the processor must do for it. */
export interface BudgetFragment {
  /** Construct path of the budget, for messages. */
  readonly owner: string;
  /** The rule in the BackendTrafficPolicy that holds the budget. */
  readonly rule: GlobalRateLimitRule;
  /** The cost the processor computes and writes into the metadata the rule charges. */
  readonly cost: CostConfig;
  /** The header clients are counted by; every request in the budget's scope must carry it. */
  readonly clientHeader?: string;
  /** The processor-config name of the route the budget limits; absent for a budget over the whole gateway. */
  readonly route?: string;
}

/**
 * What a token budget reads of its target (an AIGateway or an AIRoute), and the model it contributes to.
 */
export interface BudgetScope {
  /** Construct path of the target, for messages. */
  readonly path: string;
  /** The model the budget contributes its fragment to (the target's processor's). */
  readonly model: GatewayModel;
  /** When the target is one AIRoute: its processor-config name (the value of the route header) and its fragment. */
  readonly route?: { readonly configName: string; readonly fragment: RouteFragment };
  /**
   * The AIGateway whose policy holds the budget, with the headers it sets from JWT claims; absent for a route on a
   * Gateway not managed by an AIGateway (its budgets go into its own policy).
   */
  readonly gateway?: { readonly path: string; readonly claimHeaders: readonly string[] };
}

/** Options of a GatewayModel. */
export interface GatewayModelOptions {
  /**
   * Emits the BackendTrafficPolicy the budgets go into, called once, with the first budget: cdk8s emits objects in
   * constructors only, and the policy exists only when there are budgets. The policy reads `budgets` at synth.
   * @default - budgets need no object of their own
   */
  readonly emitBudgetPolicy?: () => void;
}

/**
 * The model one processor is built from: the fragments its routes and budgets contribute, in the order they were
 * constructed, and the indexes routes check each other against. Contributors only add data; the processor
 * (config, drain time) and the budget policy read it when the chart is synthesized.
 */
export class GatewayModel {
  /** The model matches of the routes, for conflict checks between routes. */
  readonly modelMatches = new ModelMatchIndex();
  /** The path matches of the routes, for route precedence checks. */
  readonly precedence = new RoutePrecedenceIndex();
  private readonly routeFragments: RouteFragment[] = [];
  private readonly budgetFragments: BudgetFragment[] = [];
  private readonly costs = new Map<string, { cost: CostConfig; owner: string }>();
  private servedModels?: { readonly revision: number; readonly exact: Set<string>; readonly others: ModelMatch[] };

  constructor(private readonly options: GatewayModelOptions = {}) {}

  /** The routes, in construction order. */
  get routes(): readonly RouteFragment[] {
    return this.routeFragments;
  }

  /** The budgets, in construction order. */
  get budgets(): readonly BudgetFragment[] {
    return this.budgetFragments;
  }

  /** Grows with every contribution: values derived from the model are cached per revision. */
  get revision(): number {
    return this.routeFragments.length + this.budgetFragments.length;
  }

  addRoute(fragment: RouteFragment): void {
    this.routeFragments.push(Object.freeze({ ...fragment }));
  }

  /** Adds a budget; throws if its cost key is already used with another definition. */
  addBudget(fragment: BudgetFragment): void {
    const existing = this.costs.get(fragment.cost.metadataKey);
    if (
      existing &&
      (existing.cost.type !== fragment.cost.type || existing.cost.expression !== fragment.cost.expression)
    ) {
      throw new Error(
        `${fragment.owner}: cost key "${fragment.cost.metadataKey}" is already used by ` +
          `${existing.owner} with another definition`,
      );
    }
    if (!existing) this.costs.set(fragment.cost.metadataKey, { cost: fragment.cost, owner: fragment.owner });
    this.budgetFragments.push(Object.freeze({ ...fragment }));
    if (this.budgetFragments.length === 1) this.options.emitBudgetPolicy?.();
  }

  /** The costs of every budget, one per metadata key, sorted by key. */
  costConfigs(): CostConfig[] {
    return [...this.costs.values()]
      .map((entry) => entry.cost)
      .sort((a, b) => a.metadataKey.localeCompare(b.metadataKey));
  }

  /** The headers requests of `route` must carry: the route's own and those of the budgets over it. */
  requiredHeaders(route: RouteFragment): string[] {
    const headers = new Set(route.route.requiredHeaders);
    for (const budget of this.budgetFragments) {
      if (budget.clientHeader !== undefined && (budget.route === undefined || budget.route === route.route.name))
        headers.add(budget.clientHeader);
    }
    return [...headers].sort();
  }

  /**
   * Whether a rule of some route serves `model`. Every budget for one model asks when the app is validated (once per
   * chart and once more): exact names are looked up, the other matches tried in turn, from an index kept per revision.
   */
  servesModel(model: string): boolean {
    const revision = this.revision;
    if (this.servedModels?.revision !== revision) {
      const exact = new Set<string>();
      const others: ModelMatch[] = [];
      for (const route of this.routeFragments) {
        for (const match of route.modelMatches) {
          if (match.type === 'Exact') exact.add(match.value);
          else others.push(match);
        }
      }
      this.servedModels = { revision, exact, others };
    }
    return this.servedModels.exact.has(model) || this.servedModels.others.some((match) => match.matches(model));
  }

  /** The client headers of the budgets over the whole gateway, with the budget that counts by each. */
  gatewayClientHeaders(): { readonly header: string; readonly owner: string }[] {
    return this.budgetFragments
      .filter((b) => b.route === undefined && b.clientHeader !== undefined)
      .map((b) => ({ header: b.clientHeader!, owner: b.owner }));
  }
}
