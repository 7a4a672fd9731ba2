import { celEnv, celUint, isCelUint, parse, plan } from '@bufbuild/cel';
import { Construct, type IConstruct } from 'constructs';
import {
  CEL_COST_VARIABLES,
  METADATA_NAMESPACE,
  MODEL_HEADER,
  ROUTE_HEADER,
  TOKEN_METADATA_KEYS,
  type CostConfig,
} from '@ai-gateway-constructs/processor-config';
import type { GlobalRateLimitRule, RateLimitHeaderSelector } from './crds';
import { invalid } from './errors';
import { missingRateLimitRedisError, unservedModelError } from './limits/budgets';
import { checkCrdString } from './limits/crd-field';
import { CRD_LIMITS } from './limits/crd-limits.generated';
import { synthRegistry } from './limits/registry';
import type { BudgetScope } from './gateway-model';
import { unstableHeaderReason } from './identity-headers';
import { shortHash } from './names';

/** The window of a token budget. */
export class RateLimitUnit {
  static readonly SECOND = new RateLimitUnit('Second');
  static readonly MINUTE = new RateLimitUnit('Minute');
  static readonly HOUR = new RateLimitUnit('Hour');
  static readonly DAY = new RateLimitUnit('Day');

  private constructor(readonly name: 'Second' | 'Minute' | 'Hour' | 'Day') {}
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

/**
 * Whose usage a budget counts separately: one bucket per distinct value of a request header. Requests without
 * the header are rejected with 400 by the processor, because Envoy does not limit requests lacking it.
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
   * the bucket.
   */
  static header(header: string): ClientIdentity {
    return new ClientIdentity(header, true);
  }

  /**
   * A header as the client sends it, verified by nothing: any client can send any value, e.g. spread its usage
   * over fresh buckets or spend another tenant's. An explicit choice for trusted callers, for a header that
   * something in front of the gateway sets, or for a Gateway not managed by an AIGateway whose owner
   * authenticates it.
   */
  static unverifiedHeader(header: string): ClientIdentity {
    return new ClientIdentity(header, false);
  }

  private constructor(
    readonly header: string,
    /** Whether the gateway sets the header from an authenticated identity. */
    readonly verified: boolean,
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
 * What a TokenRateLimit can limit: an AIGateway (a budget over all its routes) or an AIRoute. The target exposes
 * read-only data and the model the budget adds its fragment to; the budget never calls back into it.
 */
export interface IBudgetTarget extends IConstruct {
  /** @internal what a budget reads of the target, and the model it contributes to. */
  readonly _budgetScope: BudgetScope;
}

export interface TokenRateLimitProps {
  /** An AIGateway (budget over all its routes) or an AIRoute. */
  readonly target: IBudgetTarget;
  /** Tokens allowed per window; a positive integer. */
  readonly limit: number;
  /** The window. */
  readonly per: RateLimitUnit;
  /**
   * What counts against the budget.
   * @default TokenCost.totalTokens()
   */
  readonly cost?: TokenCost;
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
}

const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
/** Envoy Gateway's limit on the rules of one BackendTrafficPolicy (CRD `rateLimit.global.rules` maxItems). */
const MAX_RULES_PER_POLICY = CRD_LIMITS.budgetRules.maxItems;
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
    const cost = this.validate(props);
    this.metadataKey = cost.metadataKey;
    const target = this.resolveTarget(props);
    this.checkCapacity(target);
    this.validateWithApp(props, target);
    if (props.client) this.checkClientHeader(target, props.client);
    this._rule = this.rule(props, target, cost);
    target.model.addBudget({
      owner: this.node.path,
      rule: this._rule,
      cost: cost._config,
      ...(props.client ? { clientHeader: props.client.header } : {}),
      ...(target.route ? { route: target.route.configName } : {}),
    });
  }

  /** Checks the props that need no target; returns the cost. */
  private validate(props: TokenRateLimitProps): TokenCost {
    if (!Number.isInteger(props.limit) || props.limit <= 0 || props.limit > MAX_LIMIT) {
      throw invalid(this, 'limit', props.limit, `must be a positive integer number of tokens (at most ${MAX_LIMIT})`);
    }
    if (!(props.per instanceof RateLimitUnit))
      throw invalid(this, 'per', props.per, 'must be RateLimitUnit.SECOND/MINUTE/HOUR/DAY');
    const cost = props.cost ?? TokenCost.totalTokens();
    if (!(cost instanceof TokenCost)) throw invalid(this, 'cost', cost, 'must be created with TokenCost');
    if (cost._config.type === 'CEL') this.checkExpression(cost._config.expression!);
    return cost;
  }

  /** What the budget reads of its target. */
  private resolveTarget(props: TokenRateLimitProps): BudgetScope {
    const target = (props.target as Partial<IBudgetTarget> | undefined)?._budgetScope;
    if (target === undefined) {
      const given: unknown = props.target;
      throw invalid(
        this,
        'target',
        Construct.isConstruct(given) ? given.node.path : given,
        'must be an AIGateway or an AIRoute',
      );
    }
    if (target.route && props.shared === false) {
      throw invalid(
        this,
        'shared',
        false,
        'a route budget always counts one bucket for the whole AIRoute; remove the prop (it only ' +
          'chooses the scope of gateway budgets)',
      );
    }
    return target;
  }

  /** Throws if the policy holding the budget is full. */
  private checkCapacity(target: BudgetScope): void {
    if (target.model.budgets.length < MAX_RULES_PER_POLICY) return;
    if (!target.gateway) {
      throw invalid(
        this,
        'target',
        target.path,
        `the route already holds ${MAX_RULES_PER_POLICY} budgets, the most Envoy Gateway's ` +
          `BackendTrafficPolicy takes (rateLimit.global.rules)`,
      );
    }
    throw invalid(
      this,
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
  private rule(props: TokenRateLimitProps, target: BudgetScope, cost: TokenCost): GlobalRateLimitRule {
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
      else if (model.length === 0) throw invalid(this, 'models', model, 'must name a model');
      else {
        checkCrdString(this, 'models', model, CRD_LIMITS.budgetSelectorHeaderValue);
        headers.push({ name: MODEL_HEADER, type: 'Exact', value: model });
      }
    }
    return {
      ...(headers.length > 0 ? { clientSelectors: [{ headers }] } : {}),
      limit: { requests: props.limit, unit: props.per.name },
      cost: {
        request: { from: 'Number', number: 0 },
        response: { from: 'Metadata', metadata: { namespace: METADATA_NAMESPACE, key: cost.metadataKey } },
      },
      shared: true,
    };
  }

  /**
   * Checks what only the complete app tells, when it is synthesized: that it has a RateLimitRedis (without one
   * Envoy Gateway never enforces the budget), and that a rule the budget covers serves the one model it counts
   * (routes may attach to a gateway after its budgets). Skipped in a partial build (the Pulumi front end's early
   * builds).
   */
  private validateWithApp(props: TokenRateLimitProps, target: BudgetScope): void {
    const registry = synthRegistry(this);
    registry.register('TokenRateLimit', this);
    this.node.addValidation({
      validate: () => {
        const noRedis = missingRateLimitRedisError(this, 'target', target.path, registry);
        if (noRedis) throw noRedis;
        const model = props.models?.model;
        if (model !== undefined && !registry.partial) {
          const served = target.route
            ? target.route.fragment.modelMatches.some((match) => match.matches(model))
            : target.model.servesModel(model);
          if (!served) {
            const routes = target.route ? [target.route.fragment] : target.model.routes;
            const listed = routes.map((route) => ({ route: route.scope.node.path, matches: route.modelMatches }));
            const unserved = unservedModelError(this, 'models', model, listed);
            if (unserved) throw unserved;
          }
        }
        return [];
      },
    });
  }

  /** Throws unless the header still names the client when Envoy evaluates and charges the budget. */
  private checkClientHeader(target: BudgetScope, client: ClientIdentity): void {
    if (!(client instanceof ClientIdentity))
      throw invalid(this, 'client', client, 'must be created with ClientIdentity.header/unverifiedHeader');
    const header = client.header;
    if (typeof header !== 'string' || !HEADER_NAME.test(header))
      throw invalid(this, 'client', header, 'must be a lower-case HTTP header name');
    const reason = unstableHeaderReason(header);
    if (reason !== undefined) {
      throw invalid(
        this,
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
          this,
          'client',
          header,
          `cannot identify clients: the headerMutation of backend "${backend.backendName}" (route ` +
            `${route.scope.node.path}) changes it before budgets read it`,
        );
      }
    }
    if (!client.verified) return;
    const gateway = target.gateway;
    if (!gateway) {
      throw invalid(
        this,
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
        this,
        'client',
        header,
        `ClientIdentity.header() needs a header the gateway sets from a verified JWT claim ` +
          `(AIGateway jwt.claimToHeaders; ${claims}); ` +
          `clients can send any value in other headers: map a claim to it, or choose ` +
          `ClientIdentity.unverifiedHeader('${header}') explicitly`,
      );
    }
  }

  /**
   * Parses the expression and evaluates it on sample usage bound as CEL int, uint or double (as the processor
   * does).
   */
  private checkExpression(expression: string): void {
    let program: ReturnType<typeof plan>;
    try {
      program = plan(celEnv({}), parse(expression));
    } catch (error) {
      throw invalid(this, 'cost', expression, `is not a valid CEL expression: ${(error as Error).message}`);
    }
    let problem = '';
    for (const bind of NUMBER_BINDINGS) {
      const sample: Record<string, ReturnType<typeof bind> | string> = { model: 'gpt-4o', backend: 'openai' };
      for (const variable of CEL_COST_VARIABLES) if (!(variable in sample)) sample[variable] = bind(7);
      const result: unknown = program(sample);
      if (typeof result === 'bigint' || typeof result === 'number' || isCelUint(result)) return;
      problem = `must produce a number, got ${describe(result)}`;
    }
    throw invalid(this, 'cost', expression, `${problem}; variables are ${CEL_COST_VARIABLES.join(', ')}`);
  }
}

const NUMBER_BINDINGS = [(n: number) => BigInt(n), (n: number) => celUint(BigInt(n)), (n: number) => n] as const;

function describe(value: unknown): string {
  if (value instanceof Error) return value.message;
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}
