import type { IConstruct } from 'constructs';
import {
  MAX_RATE_LIMIT_VALUE,
  METADATA_NAMESPACE,
  ROUTE_HEADER,
  type BackendConfig,
  type BudgetConfig,
  type ConsumerConfig,
  type ConsumerLimit,
  type CostConfig,
  type ModelPrice,
  type RateLimitUnitName,
  type RouteConfig,
} from '@ai-gateway-constructs/processor-config';
import type { GlobalRateLimitRule, RateLimitHeaderSelector, RateLimitUnitSpec } from './crds';
import { AIGatewayValidationError } from './errors';
import { CRD_LIMITS } from './limits/crd-limits.generated';
import { ModelMatch, ModelMatchIndex } from './model-match';
import { PriceCatalog, moneyUnitFor } from './money';
import { shortHash } from './names';
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
  /** The budget as the processor config describes it (to name it in 429s and count rejections). */
  readonly config: BudgetConfig;
  /** Whether the budget charges money: the routes it covers need a price for every model they send upstream. */
  readonly money?: boolean;
  /** Whether the budget counts per consumer or API key: the routes it covers require a consumer. */
  readonly consumerKeyed?: boolean;
  /** A JWT claim the gateway must copy into a header for the budget (`ClientIdentity.jwtClaim`). */
  readonly claim?: { readonly claim: string; readonly header: string };
}

/** A consumer's own budget limit, counted by the one rule of its target, cost and window (`limit.fromMetadata`). */
export interface ConsumerBudgetFragment {
  /** The budget's name in 429s, logs and metrics. */
  readonly name: string;
  readonly unit: RateLimitUnitSpec;
  /** Money in pico-dollars, or tokens of a cost. */
  readonly amount: { readonly picoUsd: bigint } | { readonly tokens: number; readonly cost: CostConfig };
}

/** What one Consumer contributes: who it is, its keys, its models and its own budgets. */
export interface ConsumerFragment {
  /** The Consumer construct, for messages. */
  readonly scope: IConstruct;
  /** Construct path of the target (the AIGateway or AIRoute), for messages and budget names. */
  readonly targetPath: string;
  readonly id: string;
  /** The Secrets holding the consumer's keys, with the client ids (data keys) used. */
  readonly secrets: readonly {
    readonly name: string;
    readonly namespace: string;
    readonly clientIds: readonly string[];
  }[];
  /** The client-facing models the consumer may use; absent: all. */
  readonly models?: readonly ModelMatch[];
  readonly budgets: readonly ConsumerBudgetFragment[];
  /** The processor-config name of the route the consumer is attached to; absent: the whole gateway. */
  readonly route?: string;
}

/** One rule counting the own budgets of consumers of one scope, cost and window. */
export interface ConsumerRuleGroup {
  /** The key the processor writes each consumer's limit under (`limit.fromMetadata.key`). */
  readonly metadataKey: string;
  readonly rule: GlobalRateLimitRule;
  readonly cost: CostConfig;
  readonly budget: BudgetConfig;
  readonly route?: string;
  readonly money: boolean;
  /** Per consumer id, its limit in this rule. */
  readonly limits: ReadonlyMap<string, ConsumerLimit>;
}

/**
 * What a token budget reads of its target (an AIGateway or an AIRoute), and the model it contributes to.
 */
export interface BudgetScope {
  /** Construct path of the target, for messages. */
  readonly path: string;
  /** The namespace of the SecurityPolicy that authenticates the consumers attached to the target. */
  readonly authNamespace: string;
  /** The model the budget contributes its fragment to (the target's processor's). */
  readonly model: GatewayModel;
  /** When the target is one AIRoute: its processor-config name (the value of the route header) and its fragment. */
  readonly route?: { readonly configName: string; readonly fragment: RouteFragment };
  /**
   * The AIGateway whose policy holds the budget, with the headers it sets from JWT claims; absent for a route on a
   * Gateway not managed by an AIGateway (its budgets go into its own policy).
   */
  readonly gateway?: {
    readonly path: string;
    readonly claimHeaders: readonly string[];
    /** Whether the gateway authenticates JWTs (`ClientIdentity.jwtClaim` needs it). */
    readonly jwt: boolean;
  };
}

/** Options of a GatewayModel. */
export interface GatewayModelOptions {
  /**
   * Emits the BackendTrafficPolicy the budgets go into, called once, with the first budget: cdk8s emits objects in
   * constructors only, and the policy exists only when there are budgets. The policy reads `budgets` at synth.
   * @default - budgets need no object of their own
   */
  readonly emitBudgetPolicy?: () => void;
  /**
   * Emits the SecurityPolicy authenticating the consumers of the whole gateway, called once, with the first such
   * consumer; the policy reads `consumers` at synth.
   * @default - consumers need no object of their own
   */
  readonly emitAuthPolicy?: () => void;
  /**
   * Whether the budgets' rules sit in one policy over every route of a Gateway, scoped by the route header the
   * processor sets (an AIGateway's model), rather than in one route's own policy.
   * @default false
   */
  readonly scopedByRouteHeader?: boolean;
  /**
   * What money budgets charge.
   * @default PriceCatalog.defaults()
   */
  readonly prices?: PriceCatalog;
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
  private readonly consumerFragments: ConsumerFragment[] = [];
  private readonly routeAuthHooks = new Map<string, () => void>();
  private budgetPolicyEmitted = false;
  private servedModels?: { readonly revision: number; readonly exact: Set<string>; readonly others: ModelMatch[] };
  private budgetHeaders?: {
    readonly revision: number;
    readonly gateway: readonly string[];
    readonly byRoute: Map<string, string[]>;
  };

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
    return this.routeFragments.length + this.budgetFragments.length + this.consumerFragments.length;
  }

  /** The consumers, in construction order. */
  get consumers(): readonly ConsumerFragment[] {
    return this.consumerFragments;
  }

  /** What money budgets charge. */
  get prices(): PriceCatalog {
    return this.options.prices ?? PriceCatalog.defaults();
  }

  /** Whether rules are scoped by the route header (an AIGateway's model). */
  get scopedByRouteHeader(): boolean {
    return this.options.scopedByRouteHeader === true;
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
    this.ensureBudgetPolicy();
  }

  /**
   * Adds a consumer; throws if its id or one of its client ids is already used by a consumer of the same processor
   * (Envoy Gateway would authenticate a duplicated client id as the first Secret's only).
   */
  addConsumer(fragment: ConsumerFragment): void {
    const sameId = this.consumerFragments.find((c) => c.id === fragment.id);
    if (sameId) {
      throw new AIGatewayValidationError(
        fragment.scope.node.path,
        'consumerId',
        fragment.id,
        `is already the id of consumer ${sameId.scope.node.path}; consumer ids are unique per gateway`,
      );
    }
    for (const secret of fragment.secrets) {
      for (const clientId of secret.clientIds) {
        const owner = this.consumerFragments.find((c) => c.secrets.some((s) => s.clientIds.includes(clientId)));
        if (owner) {
          throw new AIGatewayValidationError(
            fragment.scope.node.path,
            'keys',
            clientId,
            `client id "${clientId}" is already a key of consumer ${owner.scope.node.path}; Envoy Gateway would ` +
              `authenticate it as the first Secret's only: use another data key`,
          );
        }
      }
    }
    this.consumerFragments.push(Object.freeze({ ...fragment }));
    if (fragment.route === undefined) {
      if (this.consumerFragments.filter((c) => c.route === undefined).length === 1) this.options.emitAuthPolicy?.();
    } else {
      this.routeAuthHooks.get(fragment.route)?.();
    }
    if (fragment.budgets.length > 0) this.ensureBudgetPolicy();
  }

  /** Registers what emits the SecurityPolicy of the route `route` when its first consumer attaches. */
  onRouteConsumer(route: string, emit: () => void): void {
    let emitted = false;
    this.routeAuthHooks.set(route, () => {
      if (emitted) return;
      emitted = true;
      emit();
    });
  }

  /** The consumers authenticated on `route`: the gateway's and the route's own. */
  consumersOf(route: string | undefined): ConsumerFragment[] {
    return this.consumerFragments.filter((c) => c.route === undefined || c.route === route);
  }

  private ensureBudgetPolicy(): void {
    if (this.budgetPolicyEmitted) return;
    this.budgetPolicyEmitted = true;
    this.options.emitBudgetPolicy?.();
  }

  /** The costs of every budget, one per metadata key, sorted by key. */
  costConfigs(): CostConfig[] {
    const costs = new Map([...this.costs.entries()].map(([key, entry]) => [key, entry.cost]));
    for (const group of this.consumerRuleGroups()) costs.set(group.cost.metadataKey, group.cost);
    return [...costs.values()].sort((a, b) => a.metadataKey.localeCompare(b.metadataKey));
  }

  /** Every rule of the budget policy: the budgets', then one per group of consumer budgets. */
  rules(): GlobalRateLimitRule[] {
    const rules = [...this.budgetFragments.map((b) => b.rule), ...this.consumerRuleGroups().map((g) => g.rule)];
    const max = CRD_LIMITS.budgetRules.maxItems;
    if (rules.length > max) {
      throw new Error(
        `the budgets hold ${rules.length} rules (${this.budgetFragments.length} budgets and ` +
          `${rules.length - this.budgetFragments.length} groups of consumer budgets), more than the ${max} one ` +
          `BackendTrafficPolicy takes (rateLimit.global.rules)`,
      );
    }
    return rules;
  }

  /** The budgets as the processor config describes them. */
  budgetConfigs(): BudgetConfig[] {
    return [...this.budgetFragments.map((b) => b.config), ...this.consumerRuleGroups().map((g) => g.budget)];
  }

  /**
   * The consumers as the processor config describes them, with their own limits; undefined without consumers.
   * @param clientIdHeader the header apiKeyAuth forwards client ids in
   */
  consumerConfigs(clientIdHeader: string): { clientIdHeader: string; entries: ConsumerConfig[] } | undefined {
    if (this.consumerFragments.length === 0) return undefined;
    const groups = this.consumerRuleGroups();
    return {
      clientIdHeader,
      entries: this.consumerFragments.map((c) => ({
        id: c.id,
        clientIds: c.secrets.flatMap((s) => s.clientIds),
        ...(c.models ? { models: c.models.map((m) => m._toConfig()) } : {}),
        limits: groups.flatMap((g) => {
          const limit = g.limits.get(c.id);
          return limit ? [limit] : [];
        }),
      })),
    };
  }

  /**
   * The rules of the consumers' own budgets: one per (scope, cost, window), whatever the number of consumers; for
   * money the cost includes the unit of each limit (see moneyUnitFor), so consumers of one unit share a rule and no
   * consumer's limit changes another's unit. Each rule reads the consumer's limit from the metadata the processor
   * writes, and keys its buckets on a header of its own that the processor sets to the consumer's id only for
   * consumers with a budget in it (`limitHeader`): the others are not counted by the rule, rather than held to its
   * static limit, which in a fine unit would be a real cap.
   */
  consumerRuleGroups(): ConsumerRuleGroup[] {
    const revision = this.revision;
    if (this.groups?.revision === revision) return this.groups.groups;
    const members = new Map<
      string,
      {
        route?: string;
        unit: RateLimitUnitSpec;
        cost?: CostConfig;
        entries: [ConsumerFragment, ConsumerBudgetFragment][];
      }
    >();
    for (const consumer of this.consumerFragments) {
      for (const budget of consumer.budgets) {
        // A money budget's rule counts in the unit of its own limit: a rule shared with larger budgets would count it
        // in theirs, so raising someone else's budget would rescale its counter mid-window.
        const kind =
          'picoUsd' in budget.amount
            ? `usd_${moneyUnitFor(budget.amount.picoUsd)!.costKey.replace(/^llm_cost_picousd_/, '')}`
            : budget.amount.cost.metadataKey;
        const key = `${consumer.route ?? ''}|${kind}|${budget.unit}`;
        let group = members.get(key);
        if (!group) {
          group = {
            ...(consumer.route !== undefined ? { route: consumer.route } : {}),
            unit: budget.unit,
            ...('cost' in budget.amount ? { cost: budget.amount.cost } : {}),
            entries: [],
          };
          members.set(key, group);
        }
        group.entries.push([consumer, budget]);
      }
    }
    const groups = [...members.values()].map((group) => this.consumerRuleGroup(group));
    this.groups = { revision, groups };
    return groups;
  }

  private groups?: { readonly revision: number; readonly groups: ConsumerRuleGroup[] };

  private consumerRuleGroup(group: {
    route?: string;
    unit: RateLimitUnitSpec;
    cost?: CostConfig;
    entries: [ConsumerFragment, ConsumerBudgetFragment][];
  }): ConsumerRuleGroup {
    const unitName = group.unit.toUpperCase() as RateLimitUnitName;
    let cost: CostConfig;
    const amounts = new Map<string, { units: number; budget: ConsumerBudgetFragment }>();
    if (group.cost) {
      cost = group.cost;
      for (const [consumer, budget] of group.entries) {
        amounts.set(consumer.id, { units: (budget.amount as { tokens: number }).tokens, budget });
      }
    } else {
      // Every member's limit has this unit (the group key says so).
      const first = moneyUnitFor((group.entries[0][1].amount as { picoUsd: bigint }).picoUsd)!;
      cost = { metadataKey: first.costKey, type: 'Price', picoUsdPerUnit: first.picoUsdPerUnit };
      for (const [consumer, budget] of group.entries) {
        amounts.set(consumer.id, {
          units: moneyUnitFor((budget.amount as { picoUsd: bigint }).picoUsd)!.units,
          budget,
        });
      }
    }
    const scopeKey = group.route === undefined ? '' : `_r${shortHash(group.route, 8)}`;
    const kind = group.cost ? group.cost.metadataKey : `usd_${cost.metadataKey.replace(/^llm_cost_picousd_/, '')}`;
    const metadataKey = `consumer_${kind}_${group.unit.toLowerCase()}${scopeKey}`;
    const headers: RateLimitHeaderSelector[] = [];
    if (this.scopedByRouteHeader) {
      headers.push(
        group.route === undefined
          ? { name: ROUTE_HEADER, type: 'RegularExpression', value: '.+' }
          : { name: ROUTE_HEADER, type: 'Exact', value: group.route },
      );
    }
    const header = limitHeader(metadataKey);
    headers.push({ name: header, type: 'Distinct' });
    const target = group.entries[0][0].targetPath;
    return {
      metadataKey,
      route: group.route,
      money: group.cost === undefined,
      cost,
      rule: {
        clientSelectors: [{ headers }],
        limit: {
          requests: MAX_RATE_LIMIT_VALUE,
          unit: group.unit,
          fromMetadata: { namespace: METADATA_NAMESPACE, key: metadataKey },
        },
        cost: {
          request: { from: 'Number', number: 0 },
          response: { from: 'Metadata', metadata: { namespace: METADATA_NAMESPACE, key: cost.metadataKey } },
        },
        shared: true,
        xRateLimitHeaders: 'DraftVersion03',
      },
      budget: {
        name: budgetName(`${target}/consumer budgets (${kind} per ${group.unit.toLowerCase()})`),
        costKey: cost.metadataKey,
        limit: MAX_RATE_LIMIT_VALUE,
        unit: unitName,
        ...(group.route !== undefined ? { route: group.route } : {}),
        limitMetadataKey: metadataKey,
        shadow: false,
      },
      limits: new Map(
        [...amounts.entries()].map(([id, { units, budget }]) => [
          id,
          { budget: budgetName(budget.name), metadataKey, header, requestsPerUnit: units, unit: unitName },
        ]),
      ),
    };
  }

  /** The processor-config names of the routes a money budget covers (all routes when one covers the gateway). */
  pricedRoutes(): Set<string> {
    const scopes = [
      ...this.budgetFragments.filter((b) => b.money).map((b) => b.route),
      ...this.consumerRuleGroups()
        .filter((g) => g.money)
        .map((g) => g.route),
    ];
    const all = this.routeFragments.map((r) => r.route.name);
    if (scopes.some((route) => route === undefined)) return new Set(all);
    return new Set(scopes.filter((route): route is string => route !== undefined && all.includes(route)));
  }

  /** The names of the routes requests must come from a consumer on: those consumers authenticate. */
  consumerRoutes(): Set<string> {
    const names = new Set<string>();
    for (const route of this.routeFragments) {
      if (this.consumersOf(route.route.name).length > 0) names.add(route.route.name);
    }
    return names;
  }

  /**
   * What the routes money budgets cover can send upstream, priced: every exact model name (a backend's
   * `modelNameOverride`, else an exact match), and the catalog's models a prefix or regex match admits. `unpriced`
   * lists each exact name the catalog lacks once, with the first route sending it.
   */
  chargedModels(): { prices: ModelPrice[]; unpriced: { model: string; route: string }[] } {
    const routes = this.pricedRoutes();
    const catalog = this.prices;
    const prices = new Map<string, ModelPrice>();
    const unpriced = new Map<string, string>();
    const exact = (model: string, route: string) => {
      const price = catalog._price(model);
      if (price) prices.set(model, price);
      else if (!unpriced.has(model)) unpriced.set(model, route);
    };
    for (const fragment of this.routeFragments) {
      const route = fragment.route.name;
      if (!routes.has(route)) continue;
      for (const rule of fragment.route.rules) {
        for (const backend of rule.backends) {
          if (backend.modelNameOverride !== undefined) {
            exact(backend.modelNameOverride, route);
            continue;
          }
          for (const match of rule.models) {
            if (match.type === 'Exact') exact(match.value, route);
            else {
              const modelMatch =
                match.type === 'Prefix' ? ModelMatch.prefix(match.value) : ModelMatch.regex(match.value);
              for (const model of catalog.models) {
                if (modelMatch.matches(model)) prices.set(model, catalog._price(model)!);
              }
            }
          }
        }
      }
    }
    return {
      prices: [...prices.values()].sort((a, b) => a.model.localeCompare(b.model)),
      unpriced: [...unpriced.entries()].map(([model, route]) => ({ model, route })),
    };
  }

  /** The JWT claims budgets ask the gateway to copy into headers, each once. */
  budgetClaims(): { readonly claim: string; readonly header: string }[] {
    const claims = new Map<string, string>();
    for (const budget of this.budgetFragments) if (budget.claim) claims.set(budget.claim.claim, budget.claim.header);
    return [...claims.entries()].map(([claim, header]) => ({ claim, header }));
  }

  /** The headers requests of `route` must carry: the route's own and those of the budgets over it. */
  requiredHeaders(route: RouteFragment): string[] {
    const index = this.budgetHeaderIndex();
    const headers = new Set(route.route.requiredHeaders);
    for (const header of index.gateway) headers.add(header);
    for (const header of index.byRoute.get(route.route.name) ?? []) headers.add(header);
    return [...headers].sort();
  }

  /**
   * The client headers of the budgets that are not keyed by consumer (the processor requires a consumer for those,
   * `consumerRequired`): of the budgets over the whole gateway, and of each route's own. Indexed per revision, as
   * every route of the config asks.
   */
  private budgetHeaderIndex(): { readonly gateway: readonly string[]; readonly byRoute: Map<string, string[]> } {
    const revision = this.revision;
    if (this.budgetHeaders?.revision === revision) return this.budgetHeaders;
    const gateway: string[] = [];
    const byRoute = new Map<string, string[]>();
    for (const budget of this.budgetFragments) {
      if (budget.consumerKeyed || budget.clientHeader === undefined) continue;
      if (budget.route === undefined) gateway.push(budget.clientHeader);
      else {
        let headers = byRoute.get(budget.route);
        if (headers === undefined) byRoute.set(budget.route, (headers = []));
        headers.push(budget.clientHeader);
      }
    }
    this.budgetHeaders = { revision, gateway, byRoute };
    return this.budgetHeaders;
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

/** A budget name within the config's 253 characters: a long construct path keeps its end. */
export function budgetName(name: string): string {
  return name.length <= 253 ? name : `...${name.slice(name.length - 250)}`;
}

/**
 * The header a consumer-budget rule keys on, e.g. `x-ai-gateway-limit-consumer-usd-1e6-month`: set by the processor to
 * the consumer's id on requests of consumers with a budget in the rule, removed from all others.
 */
export function limitHeader(metadataKey: string): string {
  return `x-ai-gateway-limit-${metadataKey.toLowerCase().replace(/_/g, '-')}`;
}
