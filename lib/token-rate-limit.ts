import { celEnv, celUint, isCelUint, parse, plan } from '@bufbuild/cel';
import { Construct } from 'constructs';
import { CEL_COST_VARIABLES, METADATA_NAMESPACE, MODEL_HEADER, TOKEN_METADATA_KEYS, type CostConfig } from '../processor/src/config/schema';
import { AIGateway } from './ai-gateway';
import { AIRoute } from './ai-route';
import type { GlobalRateLimitRule, RateLimitHeaderSelector } from './crds';
import { invalid } from './errors';
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

/** Whose usage a budget counts separately. */
export class ClientIdentity {
  /**
   * One budget per distinct value of `header` (e.g. `x-tenant-id`). Requests without the header are rejected
   * with 400 by the processor, because Envoy does not limit requests lacking a Distinct header. To key on a JWT
   * claim, let the gateway copy it into the header (`AIGateway` prop `jwt.claimToHeaders`); clients then cannot
   * send that header themselves.
   */
  static header(header: string): ClientIdentity {
    return new ClientIdentity(header);
  }

  private constructor(readonly header: string) {}
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

export interface TokenRateLimitProps {
  /** An AIGateway (budget over all its routes) or an AIRoute. */
  readonly target: AIGateway | AIRoute;
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
   * For a gateway target: one bucket across all routes (true) or one per route (false). Needs Envoy Gateway
   * 1.8.2 or later together with a response cost.
   * @default false
   */
  readonly shared?: boolean;
}

const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

/**
 * A token budget: a global rate limit whose request cost is 0 (checked only) and whose response cost is the
 * token count the processor writes into `io.envoy.ai_gateway` metadata. Merged with every other rule for the
 * same target into that target's single BackendTrafficPolicy.
 */
export class TokenRateLimit extends Construct {
  readonly metadataKey: string;
  /** @internal */
  readonly _rule: GlobalRateLimitRule;

  constructor(scope: Construct, id: string, props: TokenRateLimitProps) {
    super(scope, id);
    if (!Number.isInteger(props.limit) || props.limit <= 0 || props.limit > 4294967295) {
      throw invalid(this, 'limit', props.limit, 'must be a positive integer number of tokens (at most 4294967295)');
    }
    if (!(props.per instanceof RateLimitUnit)) throw invalid(this, 'per', props.per, 'must be RateLimitUnit.SECOND/MINUTE/HOUR/DAY');
    const cost = props.cost ?? TokenCost.totalTokens();
    if (!(cost instanceof TokenCost)) throw invalid(this, 'cost', cost, 'must be created with TokenCost');
    if (cost._config.type === 'CEL') this.checkExpression(cost._config.expression!);
    this.metadataKey = cost.metadataKey;

    const headers: RateLimitHeaderSelector[] = [];
    if (props.client) {
      if (!HEADER_NAME.test(props.client.header)) throw invalid(this, 'client', props.client.header, 'must be a lower-case HTTP header name');
      headers.push({ name: props.client.header, type: 'Distinct' });
    }
    if (props.models) {
      const model = props.models.model;
      if (model === undefined) headers.push({ name: MODEL_HEADER, type: 'Distinct' });
      else if (model.length === 0) throw invalid(this, 'models', model, 'must name a model');
      else headers.push({ name: MODEL_HEADER, type: 'Exact', value: model });
    }
    this._rule = {
      ...(headers.length > 0 ? { clientSelectors: [{ headers }] } : {}),
      limit: { requests: props.limit, unit: props.per.name },
      cost: {
        request: { from: 'Number', number: 0 },
        response: { from: 'Metadata', metadata: { namespace: METADATA_NAMESPACE, key: cost.metadataKey } },
      },
      ...(props.shared !== undefined ? { shared: props.shared } : {}),
    };

    const target = props.target;
    if (!(target instanceof AIGateway || target instanceof AIRoute)) throw invalid(this, 'target', target, 'must be an AIGateway or an AIRoute');
    target.processor.addCost(cost._config);
    if (props.client) target._requireHeader(props.client.header);
    target._addBudget(this._rule);
  }

  /** Parses the expression and evaluates it on sample usage bound as CEL int, uint or double (as the processor does). */
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
