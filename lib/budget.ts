/**
 * What token budgets (TokenRateLimit) and money budgets (SpendLimit) share: their windows, client identities, model
 * scopes and targets, and the builder that turns a budget's props into its rate-limit rule and its fragment of the
 * target's model.
 */
import { celEnv, celUint, isCelUint, parse, plan } from '@bufbuild/cel';
import { Construct, type IConstruct } from 'constructs';
import {
  CEL_COST_VARIABLES,
  CLIENT_ID_HEADER,
  CONSUMER_HEADER,
  METADATA_NAMESPACE,
  MODEL_HEADER,
  ROUTE_HEADER,
  TOKEN_METADATA_KEYS,
  type CostConfig,
  type RateLimitUnitName,
} from '@ai-gateway-constructs/processor-config';
import type { GlobalRateLimitRule, RateLimitHeaderSelector, RateLimitUnitSpec } from './crds';
import { invalid } from './errors';
import { missingRateLimitRedisError, unservedModelError } from './limits/budgets';
import { checkCrdString } from './limits/crd-field';
import { CRD_LIMITS } from './limits/crd-limits.generated';
import { synthRegistry } from './limits/registry';
import { budgetName, type BudgetScope, type GatewayModel } from './gateway-model';
import { unstableHeaderReason } from './identity-headers';
import { shortHash } from './names';

/**
 * The window of a budget. Envoy's rate-limit service counts fixed windows aligned to the Unix epoch (1970-01-01,
 * a Thursday), not to the calendar: a budget resets when its window ends, whatever was spent before.
 */
export class RateLimitUnit {
  static readonly SECOND = new RateLimitUnit('Second', 1);
  static readonly MINUTE = new RateLimitUnit('Minute', 60);
  static readonly HOUR = new RateLimitUnit('Hour', 3_600);
  /** 24 hours, from 00:00 UTC. */
  static readonly DAY = new RateLimitUnit('Day', 86_400);
  /** 7 days, from Thursday 00:00 UTC (Envoy Gateway's `Week`). */
  static readonly WEEK = new RateLimitUnit('Week', 604_800);
  /**
   * 30 days, counted from the Unix epoch: not a calendar month, it does not reset on the 1st (Envoy Gateway's
   * `Month`).
   */
  static readonly THIRTY_DAYS = new RateLimitUnit('Month', 2_592_000);
  /** 365 days, counted from the Unix epoch: not a calendar year, it does not reset on January 1st (`Year`). */
  static readonly DAYS_365 = new RateLimitUnit('Year', 31_536_000);

  private constructor(
    /** Envoy Gateway's name of the unit (`limit.unit`). */
    readonly name: RateLimitUnitSpec,
    /** The length of one window in seconds. */
    readonly seconds: number,
  ) {}

  /** @internal Envoy's enum name, the only spelling `limit.fromMetadata` accepts (`MONTH`). */
  get _envoyName(): RateLimitUnitName {
    return this.name.toUpperCase() as RateLimitUnitName;
  }
}

/** Which tokens a budget counts. */
export class TokenCost {
  static inputTokens(): TokenCost {
    return new TokenCost({ metadataKey: TOKEN_METADATA_KEYS.input, type: 'InputToken' });
  }

  static outputTokens(): TokenCost {
    return new TokenCost({ metadataKey: TOKEN_METADATA_KEYS.output, type: 'OutputToken' });
  }

  static totalTokens(): TokenCost {
    return new TokenCost({ metadataKey: TOKEN_METADATA_KEYS.total, type: 'TotalToken' });
  }

  static cachedInputTokens(): TokenCost {
    return new TokenCost({ metadataKey: TOKEN_METADATA_KEYS.cachedInput, type: 'CachedInputToken' });
  }

  /**
   * A CEL expression over `model`, `backend` (strings) and `input_tokens`, `output_tokens`, `total_tokens`,
   * `cached_input_tokens`, `reasoning_tokens` (integers), e.g. `input_tokens + 4 * output_tokens`.
   * Parsed and trial-evaluated at synth time.
   */
  static expression(cel: string): TokenCost {
    return new TokenCost({ metadataKey: `llm_cel_${shortHash(cel, 12)}`, type: 'CEL', expression: cel });
  }

  private constructor(
    /** @internal */
    readonly _config: CostConfig,
  ) {}

  /** The metadata key the processor writes this cost under. */
  get metadataKey(): string {
    return this._config.metadataKey;
  }
}

/** How a client identity is established. */
type IdentityKind = 'header' | 'unverified' | 'claim' | 'consumer' | 'apiKey';

/**
 * Whose usage a budget counts separately: one bucket per distinct value of a request header. Requests without
 * the header are rejected by the processor, because Envoy does not limit requests lacking it.
 *
 * The header must reach the rate-limit filter as the client's identity: Envoy evaluates budgets after the
 * processor ran and charges tokens at stream end, so headers the processor, the route or a backend rewrites or
 * removes (credentials such as `authorization`/`x-api-key`/`api-key`, `x-ai-gateway-backend`, `x-ai-eg-model`,
 * SigV4 `x-amz-*`, `anthropic-version`, `content-*`, `host`, `x-envoy-*`, a backend's `headerMutation`) are
 * rejected at synth.
 */
export class ClientIdentity {
  /**
   * A header the target's AIGateway sets from a verified JWT claim (`jwt.claimToHeaders`, e.g.
   * `{ tenant: 'x-tenant-id' }`). The gateway strips the header from client requests, so only the token decides
   * the bucket. `jwtClaim('tenant')` does the same without naming a header.
   */
  static header(header: string): ClientIdentity {
    return new ClientIdentity(header, true, 'header');
  }

  /**
   * One bucket per value of a claim of the verified JWT: the AIGateway (which needs `jwt`) copies the claim into
   * the header `x-ai-gateway-claim-<claim>` itself and strips that header from client requests, so no header name
   * can be mistyped. Nested claims use dots (`org.team`).
   */
  static jwtClaim(claim: string): ClientIdentity {
    if (typeof claim !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/.test(claim)) {
      throw new Error(
        `ClientIdentity.jwtClaim(${JSON.stringify(claim)}): must be a claim name of letters, digits, "_", "-" and ` +
          '"." (nested claims), at most 100 characters',
      );
    }
    const header = `x-ai-gateway-claim-${claim.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`;
    return new ClientIdentity(header, true, 'claim', claim);
  }

  /**
   * One bucket per consumer (`Consumer`), as the processor identifies it from the API key the gateway verified:
   * all keys of a consumer count together. Needs consumers authenticated where the budget applies.
   */
  static consumer(): ClientIdentity {
    return new ClientIdentity(CONSUMER_HEADER, true, 'consumer');
  }

  /**
   * One bucket per API key (its client id, the key's data key in its Secret), as the gateway's key authentication
   * forwards it. Needs consumers authenticated where the budget applies.
   */
  static apiKey(): ClientIdentity {
    return new ClientIdentity(CLIENT_ID_HEADER, true, 'apiKey');
  }

  /**
   * A header as the client sends it, verified by nothing: any client can send any value, e.g. spread its usage
   * over fresh buckets or spend another tenant's. An explicit choice for trusted callers, for a header that
   * something in front of the gateway sets, or for a Gateway not managed by an AIGateway whose owner
   * authenticates it.
   */
  static unverifiedHeader(header: string): ClientIdentity {
    return new ClientIdentity(header, false, 'unverified');
  }

  private constructor(
    readonly header: string,
    /** Whether the gateway sets the header from an authenticated identity. */
    readonly verified: boolean,
    /** @internal */
    readonly _kind: IdentityKind,
    /** @internal the JWT claim, for `jwtClaim`. */
    readonly _claim?: string,
  ) {}
}

/** Which models a budget counts. */
export class ModelScope {
  /** One budget per model name (the client's model, header `x-ai-eg-model`). */
  static eachModel(): ModelScope {
    return new ModelScope(undefined);
  }

  /** Only requests for exactly this model. */
  static only(model: string): ModelScope {
    return new ModelScope(model);
  }

  private constructor(readonly model: string | undefined) {}
}

/**
 * What a budget or a consumer can be attached to: an AIGateway (all its routes) or an AIRoute. The target exposes
 * read-only data and the model the budget adds its fragment to; the budget never calls back into it.
 */
export interface IBudgetTarget extends IConstruct {
  /** @internal what a budget reads of the target, and the model it contributes to. */
  readonly _budgetScope: BudgetScope;
}

/** The props every budget takes, whatever it counts. */
export interface BudgetOptions {
  /** An AIGateway (budget over all its routes) or an AIRoute. */
  readonly target: IBudgetTarget;
  /** The window (see RateLimitUnit: windows are aligned to the Unix epoch, not the calendar). */
  readonly per: RateLimitUnit;
  /**
   * Separate budgets per client.
   * @default - one budget for all clients
   */
  readonly client?: ClientIdentity;
  /**
   * Separate budgets per model, or a budget for one model.
   * @default - all models count together
   */
  readonly models?: ModelScope;
  /**
   * For a gateway target: `true` counts one bucket across all AIRoutes of the gateway (ordinary HTTPRoutes on
   * the Gateway are not counted nor limited); `false` counts one bucket per AIRoute. Either way the budget counts
   * each request once, whatever the number of backends, matches and hostnames; per-client and per-model budgets
   * keep one bucket per client and model within that scope. A route budget is always one bucket for the whole
   * AIRoute: `false` is rejected there. Needs Envoy Gateway 1.8.2 or later (shared rules with a response cost).
   * @default false
   */
  readonly shared?: boolean;
  /**
   * Shadow mode: the budget is counted (Envoy's rate-limit service logs and counts what it would have rejected,
   * and the processor's metrics show the spend) but never enforced.
   * @default false
   */
  readonly shadow?: boolean;
  /**
   * Whether answers carry `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` for this budget
   * (Envoy's draft 03 headers). The processor reads them from Envoy's 429 to tell the client which budget ran out
   * and when its window ends; without them it computes the window end itself.
   * @default true
   */
  readonly rateLimitHeaders?: boolean;
}

const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
/** Envoy Gateway's limit on the rules of one BackendTrafficPolicy (CRD `rateLimit.global.rules` maxItems). */
const MAX_RULES_PER_POLICY = CRD_LIMITS.budgetRules.maxItems;

/** What a budget construct passes to `addBudget`: what it counts, in which unit, and how much. @internal */
export interface BudgetCharge {
  readonly cost: CostConfig;
  /** The limit in the cost's unit. */
  readonly limit: number;
  /** Whether the cost is money (the routes need prices). */
  readonly money: boolean;
}

/**
 * Checks a budget's shared props against its target, builds its rule and adds its fragment to the target's model;
 * returns the rule. `scope` is the budget construct (messages name it).
 * @internal
 */
export function addBudget(scope: Construct, props: BudgetOptions, charge: BudgetCharge): GlobalRateLimitRule {
  if (!(props.per instanceof RateLimitUnit)) {
    throw invalid(scope, 'per', props.per, 'must be a RateLimitUnit (SECOND ... DAY, WEEK, THIRTY_DAYS, DAYS_365)');
  }
  if (props.shadow !== undefined && typeof props.shadow !== 'boolean')
    throw invalid(scope, 'shadow', props.shadow, 'must be true or false');
  if (props.rateLimitHeaders !== undefined && typeof props.rateLimitHeaders !== 'boolean')
    throw invalid(scope, 'rateLimitHeaders', props.rateLimitHeaders, 'must be true or false');
  if (charge.cost.type === 'CEL') checkExpression(scope, charge.cost.expression!);
  const target = resolveTarget(scope, props);
  checkCapacity(scope, target);
  if (props.client) checkClientIdentity(scope, target, props.client);
  const rule = budgetRule(scope, props, target, charge);
  validateWithApp(scope, props, target, charge);
  const client = props.client;
  const consumerKeyed = client?._kind === 'consumer' || client?._kind === 'apiKey';
  target.model.addBudget({
    owner: scope.node.path,
    rule,
    cost: charge.cost,
    ...(client ? { clientHeader: client.header } : {}),
    ...(target.route ? { route: target.route.configName } : {}),
    config: {
      name: budgetName(scope.node.path),
      costKey: charge.cost.metadataKey,
      limit: charge.limit,
      unit: props.per._envoyName,
      ...(target.route ? { route: target.route.configName } : {}),
      shadow: props.shadow === true,
    },
    ...(charge.money ? { money: true } : {}),
    ...(consumerKeyed ? { consumerKeyed: true } : {}),
    ...(client?._kind === 'claim' ? { claim: { claim: client._claim!, header: client.header } } : {}),
  });
  return rule;
}

/** What `scope` (a budget or a consumer) reads of its `target` prop; throws unless it is an AIGateway or AIRoute. */
export function budgetScopeOf(scope: Construct, target: IBudgetTarget): BudgetScope {
  const budgetScope = (target as Partial<IBudgetTarget> | undefined)?._budgetScope;
  if (budgetScope === undefined) {
    const given: unknown = target;
    throw invalid(
      scope,
      'target',
      Construct.isConstruct(given) ? given.node.path : given,
      'must be an AIGateway or an AIRoute',
    );
  }
  return budgetScope;
}

/** What the budget reads of its target. */
function resolveTarget(scope: Construct, props: BudgetOptions): BudgetScope {
  const target = budgetScopeOf(scope, props.target);
  if (target.route && props.shared === false) {
    throw invalid(
      scope,
      'shared',
      false,
      'a route budget always counts one bucket for the whole AIRoute; remove the prop (it only ' +
        'chooses the scope of gateway budgets)',
    );
  }
  return target;
}

/** Throws if the policy holding the budget is full. */
function checkCapacity(scope: Construct, target: BudgetScope): void {
  if (target.model.budgets.length < MAX_RULES_PER_POLICY) return;
  if (!target.gateway) {
    throw invalid(
      scope,
      'target',
      target.path,
      `the route already holds ${MAX_RULES_PER_POLICY} budgets, the most Envoy Gateway's ` +
        `BackendTrafficPolicy takes (rateLimit.global.rules)`,
    );
  }
  throw invalid(
    scope,
    'target',
    target.path,
    `the AIGateway ${target.gateway.path} already holds ${MAX_RULES_PER_POLICY} budgets of its ` +
      `own and its routes, the most Envoy Gateway's ` +
      `BackendTrafficPolicy takes (rateLimit.global.rules); for the same budget on every route ` +
      `use one gateway budget with shared: false, ` +
      `and for one bucket per team or client one budget with a client identity`,
  );
}

/** The rate-limit rule: its selectors (route scope, client, model), the limit, and the cost read from metadata. */
function budgetRule(
  scope: Construct,
  props: BudgetOptions,
  target: BudgetScope,
  charge: BudgetCharge,
): GlobalRateLimitRule {
  const headers: RateLimitHeaderSelector[] = [];
  if (target.gateway) {
    // Every budget of an AIGateway sits in the gateway's policy, which applies to every route of the Gateway: the
    // route header (set by the processor only, removed from client requests) scopes it to AI traffic, to each
    // AIRoute separately, or to one AIRoute.
    if (target.route) headers.push({ name: ROUTE_HEADER, type: 'Exact', value: target.route.configName });
    else if (props.shared === true) headers.push({ name: ROUTE_HEADER, type: 'RegularExpression', value: '.+' });
    else headers.push({ name: ROUTE_HEADER, type: 'Distinct' });
  }
  if (props.client) headers.push({ name: props.client.header, type: 'Distinct' });
  if (props.models) {
    const model = props.models.model;
    if (model === undefined) headers.push({ name: MODEL_HEADER, type: 'Distinct' });
    else if (model.length === 0) throw invalid(scope, 'models', model, 'must name a model');
    else {
      checkCrdString(scope, 'models', model, CRD_LIMITS.budgetSelectorHeaderValue);
      headers.push({ name: MODEL_HEADER, type: 'Exact', value: model });
    }
  }
  return {
    ...(headers.length > 0 ? { clientSelectors: [{ headers }] } : {}),
    limit: { requests: charge.limit, unit: props.per.name },
    cost: {
      request: { from: 'Number', number: 0 },
      response: { from: 'Metadata', metadata: { namespace: METADATA_NAMESPACE, key: charge.cost.metadataKey } },
    },
    shared: true,
    ...(props.shadow === true ? { shadowMode: true } : {}),
    xRateLimitHeaders: props.rateLimitHeaders === false ? 'Off' : 'DraftVersion03',
  };
}

/**
 * Checks what only the complete app tells, when it is synthesized: that it has a RateLimitRedis (without one
 * Envoy Gateway never enforces the budget), that a rule the budget covers serves the one model it counts (routes
 * may attach to a gateway after its budgets), that consumers authenticate where a consumer budget applies, and that
 * every model a money budget covers has a price. Skipped in a partial build (the Pulumi front end's early builds).
 */
function validateWithApp(scope: Construct, props: BudgetOptions, target: BudgetScope, charge: BudgetCharge): void {
  const registry = synthRegistry(scope);
  registry.register('TokenRateLimit', scope);
  scope.node.addValidation({
    validate: () => {
      const noRedis = missingRateLimitRedisError(scope, 'target', target.path, registry);
      if (noRedis) throw noRedis;
      if (registry.partial) return [];
      const model = props.models?.model;
      if (model !== undefined) {
        const served = target.route
          ? target.route.fragment.modelMatches.some((match) => match.matches(model))
          : target.model.servesModel(model);
        if (!served) {
          const routes = target.route ? [target.route.fragment] : target.model.routes;
          const listed = routes.map((route) => ({ route: route.scope.node.path, matches: route.modelMatches }));
          const unserved = unservedModelError(scope, 'models', model, listed);
          if (unserved) throw unserved;
        }
      }
      const kind = props.client?._kind;
      if (kind === 'consumer' || kind === 'apiKey') checkConsumersAuthenticate(scope, target, kind);
      if (charge.money) checkPriced(scope, 'limit', target.model);
      return [];
    },
  });
}

/** Throws unless consumers authenticate every request the consumer-keyed budget covers. */
function checkConsumersAuthenticate(scope: IConstruct, target: BudgetScope, kind: 'consumer' | 'apiKey'): void {
  const model = target.model;
  const consumers = target.route
    ? model.consumersOf(target.route.configName)
    : model.consumers.filter((c) => c.route === undefined);
  if (consumers.length > 0) return;
  const where = target.route ? `the route ${target.path} and its gateway` : `the gateway ${target.path}`;
  throw invalid(
    scope,
    'client',
    `ClientIdentity.${kind}()`,
    `counts per ${kind === 'consumer' ? 'consumer' : 'API key'}, but ${where} authenticate${target.route ? '' : 's'} ` +
      `nobody: attach a Consumer with keys to ${target.route ? 'either' : 'it'}, or count by a header clients ` +
      `choose with ClientIdentity.unverifiedHeader(...) explicitly`,
  );
}

/**
 * Throws when a model the money budgets of `model` cover has no price: names each unpriced model once, with a route
 * that sends it upstream.
 * @internal
 */
export function checkPriced(scope: IConstruct, prop: string, model: GatewayModel): void {
  const { prices, unpriced } = model.chargedModels();
  if (unpriced.length === 0) {
    if (prices.length > 0) return;
    throw invalid(
      scope,
      prop,
      'no priced model',
      'a money budget covers no route with a model the price catalog prices, so nothing could be charged and ' +
        "every request would be refused; add prices with PriceCatalog.defaults().with({ ... }) in the gateway's prices",
    );
  }
  const listed = unpriced.map((u) => `"${u.model}" (route ${u.route})`).join(', ');
  throw invalid(
    scope,
    prop,
    unpriced.map((u) => u.model),
    `a money budget covers ${listed}, which the price catalog does not price, so its spend could not be ` +
      `charged; add ${unpriced.length === 1 ? 'it' : 'them'} with PriceCatalog.defaults().with({ ... }) in the ` +
      `gateway's prices`,
  );
}

/** Throws unless the identity still names the client when Envoy evaluates and charges the budget. */
function checkClientIdentity(scope: Construct, target: BudgetScope, client: ClientIdentity): void {
  if (!(client instanceof ClientIdentity)) {
    throw invalid(
      scope,
      'client',
      client,
      'must be created with ClientIdentity.jwtClaim/consumer/apiKey/header/unverifiedHeader',
    );
  }
  const header = client.header;
  if (client._kind === 'consumer' || client._kind === 'apiKey') {
    // Gateway-owned headers: checked against the consumers when the app is complete.
    if (!target.gateway && target.route === undefined) {
      throw invalid(scope, 'client', `ClientIdentity.${client._kind}()`, 'needs an AIGateway or AIRoute target');
    }
    return;
  }
  if (typeof header !== 'string' || !HEADER_NAME.test(header))
    throw invalid(scope, 'client', header, 'must be a lower-case HTTP header name');
  const reason = unstableHeaderReason(header);
  if (reason !== undefined) {
    throw invalid(
      scope,
      'client',
      header,
      `cannot identify clients: it ${reason}, and Envoy evaluates budgets after that`,
    );
  }
  const routes = target.route ? [target.route.fragment] : target.model.routes;
  for (const route of routes) {
    const backend = route.mutatedHeaders.find((b) => b.headers.includes(header));
    if (backend) {
      throw invalid(
        scope,
        'client',
        header,
        `cannot identify clients: the headerMutation of backend "${backend.backendName}" (route ` +
          `${route.scope.node.path}) changes it before budgets read it`,
      );
    }
  }
  if (!client.verified) return;
  const gateway = target.gateway;
  if (client._kind === 'claim') {
    if (!gateway?.jwt) {
      throw invalid(
        scope,
        'client',
        `ClientIdentity.jwtClaim('${client._claim!}')`,
        gateway
          ? `the AIGateway ${gateway.path} verifies no JWT (set its jwt prop), so there is no claim to count by`
          : "the route's gateway is not an AIGateway of this app, so nothing here verifies a JWT; use " +
              `ClientIdentity.unverifiedHeader(...) for a header the gateway's owner sets`,
      );
    }
    return;
  }
  if (!gateway) {
    throw invalid(
      scope,
      'client',
      header,
      `ClientIdentity.header() needs a header the AIGateway sets from a JWT claim, but the ` +
        `route's gateway is not an AIGateway of this app; ` +
        `if the gateway's owner sets it from an authenticated identity (or clients may choose it), ` +
        `use ClientIdentity.unverifiedHeader('${header}')`,
    );
  }
  if (!gateway.claimHeaders.includes(header)) {
    const claims =
      gateway.claimHeaders.length > 0
        ? `it sets ${gateway.claimHeaders.map((h) => `"${h}"`).join(', ')}`
        : 'it authenticates nobody';
    throw invalid(
      scope,
      'client',
      header,
      `ClientIdentity.header() needs a header the gateway sets from a verified JWT claim ` +
        `(AIGateway jwt.claimToHeaders; ${claims}); ` +
        `clients can send any value in other headers: map a claim to it, use ClientIdentity.jwtClaim(), or choose ` +
        `ClientIdentity.unverifiedHeader('${header}') explicitly`,
    );
  }
}

/**
 * Parses the expression and evaluates it on sample usage bound as CEL int, uint or double (as the processor
 * does).
 */
function checkExpression(scope: Construct, expression: string): void {
  let program: ReturnType<typeof plan>;
  try {
    program = plan(celEnv({}), parse(expression));
  } catch (error) {
    throw invalid(scope, 'cost', expression, `is not a valid CEL expression: ${(error as Error).message}`);
  }
  let problem = '';
  for (const bind of NUMBER_BINDINGS) {
    const sample: Record<string, ReturnType<typeof bind> | string> = { model: 'gpt-4o', backend: 'openai' };
    for (const variable of CEL_COST_VARIABLES) if (!(variable in sample)) sample[variable] = bind(7);
    const result: unknown = program(sample);
    if (typeof result === 'bigint' || typeof result === 'number' || isCelUint(result)) return;
    problem = `must produce a number, got ${describe(result)}`;
  }
  throw invalid(scope, 'cost', expression, `${problem}; variables are ${CEL_COST_VARIABLES.join(', ')}`);
}

const NUMBER_BINDINGS = [(n: number) => BigInt(n), (n: number) => celUint(BigInt(n)), (n: number) => n] as const;

function describe(value: unknown): string {
  if (value instanceof Error) return value.message;
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}
