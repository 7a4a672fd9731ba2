import { Construct } from 'constructs';
import { MAX_RATE_LIMIT_VALUE } from '@ai-gateway-constructs/processor-config';
import { RateLimitUnit, TokenCost, budgetScopeOf, checkPriced, type IBudgetTarget } from './budget';
import { invalid } from './errors';
import type { BudgetScope, ConsumerBudgetFragment } from './gateway-model';
import { missingRateLimitRedisError } from './limits/budgets';
import { synthRegistry } from './limits/registry';
import { ModelMatch } from './model-match';
import { Money, moneyUnitFor } from './money';
import { MAX_SUBDOMAIN_LENGTH } from './names';

/** Consumer ids travel in a header and label metrics (processor-config's rule). */
const CONSUMER_ID = /^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$/;
/** A Secret data key. */
const CLIENT_ID = /^[-._a-zA-Z0-9]+$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Options of `ApiKey.fromSecret`. */
export interface ApiKeyOptions {
  /**
   * Namespace of the Secret. Envoy Gateway reads it from the namespace of the SecurityPolicy that authenticates
   * the consumer: the AIGateway's (consumers of a gateway) or the AIRoute's (consumers of a route).
   * @default - that namespace
   */
  readonly namespace?: string;
}

/**
 * API keys kept in an existing Secret (created by External Secrets, Sealed Secrets, `kubectl create secret`, ...):
 * each data key is a client id, its value the key clients send. The constructs reference the Secret; they never
 * hold key values. Envoy Gateway accepts every data key of a referenced Secret, so list them all.
 */
export class ApiKey {
  /**
   * The keys under `clientIds` (data keys) of the Secret `secretName`, e.g.
   * `ApiKey.fromSecret('team-a-keys', ['team-a-ci', 'team-a-laptop'])`.
   */
  static fromSecret(secretName: string, clientIds: readonly string[], options: ApiKeyOptions = {}): ApiKey {
    return new ApiKey(secretName, [...(clientIds ?? [])], options.namespace);
  }

  private constructor(
    readonly secretName: string,
    readonly clientIds: readonly string[],
    readonly namespace?: string,
  ) {}
}

/** One of a consumer's own budgets. */
export interface ConsumerBudget {
  /** Money (`Money.usd(500)`) or a positive number of tokens allowed per window. */
  readonly limit: Money | number;
  /** The window (aligned to the Unix epoch, see RateLimitUnit). */
  readonly per: RateLimitUnit;
  /**
   * Which tokens count, for a token limit.
   * @default TokenCost.totalTokens()
   */
  readonly cost?: TokenCost;
  /**
   * The budget's name in 429s, logs and metrics.
   * @default "<consumer path>/budgets[<index>]"
   */
  readonly name?: string;
  /**
   * Shadow mode is not available for a consumer's own budget: its limit reaches Envoy per request
   * (`limit.fromMetadata`), and Envoy's rate-limit service enforces every request that carries its own limit
   * whatever the rule's shadow mode. `true` is rejected; watch a consumer's spend without blocking with a
   * SpendLimit or TokenRateLimit with `client: ClientIdentity.consumer()` and `shadow: true`.
   * @default false
   */
  readonly shadow?: boolean;
}

export interface ConsumerProps {
  /** The AIGateway (the consumer may call all its routes) or AIRoute (only this route) the consumer calls. */
  readonly target: IBudgetTarget;
  /**
   * The consumer's id: the value of `x-ai-gateway-consumer` and of the `consumer` metric label; unique per gateway.
   * @default - the construct id, lower-cased
   */
  readonly consumerId?: string;
  /** The consumer's API keys. */
  readonly keys: readonly ApiKey[];
  /**
   * The client-facing models the consumer may use; requests for other models are answered 403 in the client's
   * error shape.
   * @default - every model the routes serve
   */
  readonly models?: readonly ModelMatch[];
  /**
   * The consumer's own budgets. Consumers' budgets of the same target, cost and window share one rate-limit rule
   * (its limit read per request from what the processor writes for the consumer), so a hundred consumers with
   * different budgets cost one rule.
   * @default - none
   */
  readonly budgets?: readonly ConsumerBudget[];
}

/**
 * A consumer of the gateway (a team, an application or a person) with API keys. The gateway (or the route)
 * authenticates the keys with Envoy Gateway's SecurityPolicy `apiKeyAuth`: clients send a key the way their SDK does
 * (`Authorization: Bearer <key>` for OpenAI SDKs, `x-api-key` for Anthropic SDKs), requests without a known key are
 * answered 401 (Envoy's reply, reshaped by the routes' `responseOverride` into a JSON `authentication_error` both SDKs
 * read), and the key never reaches the processor or the provider. The processor maps the key's client id to
 * the consumer, enforces its models and writes its own budget limits; budgets with `ClientIdentity.consumer()` or
 * `ClientIdentity.apiKey()` count per consumer or per key.
 *
 * Attached to an AIGateway, the consumer's keys work on every route of the gateway (and on every other HTTPRoute of
 * the Gateway, which then needs a key too). Attached to an AIRoute, its keys work on that route only.
 */
export class Consumer extends Construct {
  readonly consumerId: string;

  constructor(scope: Construct, id: string, props: ConsumerProps) {
    super(scope, id);
    const target = budgetScopeOf(this, props.target);
    this.consumerId = props.consumerId ?? id.toLowerCase();
    if (typeof this.consumerId !== 'string' || !CONSUMER_ID.test(this.consumerId)) {
      throw invalid(
        this,
        'consumerId',
        this.consumerId,
        'must be 1-63 lower-case letters, digits, "-", "_" or "." starting and ending with a letter or digit',
      );
    }
    const secrets = this.checkKeys(props.keys, target.authNamespace);
    const models = this.checkModels(props.models);
    const budgets = this.checkBudgets(props.budgets ?? []);
    if (budgets.length > 0) synthRegistry(this).register('TokenRateLimit', this);
    this.validateWithApp(target, budgets);
    target.model.addConsumer({
      scope: this,
      targetPath: target.path,
      id: this.consumerId,
      secrets,
      ...(models ? { models } : {}),
      budgets,
      ...(target.route ? { route: target.route.configName } : {}),
    });
  }

  private checkKeys(
    keys: readonly ApiKey[],
    namespace: string,
  ): { name: string; namespace: string; clientIds: string[] }[] {
    if (!isList(keys) || keys.length === 0) {
      throw invalid(this, 'keys', keys, 'a consumer needs at least one ApiKey.fromSecret(...)');
    }
    const seen = new Set<string>();
    const bySecret = new Map<string, { name: string; namespace: string; clientIds: string[] }>();
    keys.forEach((key, k) => {
      const prop = `keys[${k}]`;
      if (!(key instanceof ApiKey)) throw invalid(this, prop, key, 'must be created with ApiKey.fromSecret()');
      if (
        typeof key.secretName !== 'string' ||
        key.secretName.length > MAX_SUBDOMAIN_LENGTH ||
        !SUBDOMAIN.test(key.secretName)
      ) {
        throw invalid(this, `${prop}.secretName`, key.secretName, 'must be a Secret name (a DNS subdomain)');
      }
      const secretNamespace = key.namespace ?? namespace;
      if (typeof secretNamespace !== 'string' || !LABEL.test(secretNamespace) || secretNamespace.length > 63) {
        throw invalid(this, `${prop}.namespace`, secretNamespace, 'must be a namespace name');
      }
      if (secretNamespace !== namespace) {
        throw invalid(
          this,
          `${prop}.namespace`,
          secretNamespace,
          `the SecurityPolicy authenticating this consumer is in namespace "${namespace}", and Envoy Gateway reads ` +
            'key Secrets of other namespaces only with a ReferenceGrant; keep the Secret in that namespace',
        );
      }
      if (key.clientIds.length === 0) {
        throw invalid(this, `${prop}.clientIds`, key.clientIds, 'must list the data keys (client ids) of the Secret');
      }
      const entry = bySecret.get(key.secretName) ?? { name: key.secretName, namespace, clientIds: [] };
      key.clientIds.forEach((clientId, c) => {
        if (typeof clientId !== 'string' || clientId.length > 253 || !CLIENT_ID.test(clientId)) {
          throw invalid(
            this,
            `${prop}.clientIds[${c}]`,
            clientId,
            'must be a Secret data key (letters, digits, "-", "_", "."; at most 253 characters)',
          );
        }
        if (seen.has(clientId)) throw invalid(this, `${prop}.clientIds[${c}]`, clientId, 'is listed twice');
        seen.add(clientId);
        entry.clientIds.push(clientId);
      });
      bySecret.set(key.secretName, entry);
    });
    return [...bySecret.values()];
  }

  private checkModels(models: readonly ModelMatch[] | undefined): ModelMatch[] | undefined {
    if (models === undefined) return undefined;
    if (!isList(models) || models.length === 0) {
      throw invalid(this, 'models', models, 'must list at least one ModelMatch (leave it unset for every model)');
    }
    models.forEach((match, m) => {
      if (!(match instanceof ModelMatch))
        throw invalid(this, `models[${m}]`, match, 'must be created with ModelMatch.exact/prefix/regex');
    });
    return [...models];
  }

  private checkBudgets(budgets: readonly ConsumerBudget[]): ConsumerBudgetFragment[] {
    if (!isList(budgets)) throw invalid(this, 'budgets', budgets, 'must be a list');
    const groups = new Map<string, number>();
    return budgets.map((budget, b) => {
      const prop = `budgets[${b}]`;
      if (budget.shadow === true) {
        throw invalid(
          this,
          `${prop}.shadow`,
          true,
          "a consumer's own budget reaches Envoy as a per-request limit (limit.fromMetadata), and Envoy's " +
            'rate-limit service enforces every request carrying its own limit whatever the shadow mode: it would ' +
            'block; to watch per-consumer spend without blocking use a SpendLimit or TokenRateLimit with ' +
            'client: ClientIdentity.consumer() and shadow: true',
        );
      }
      if (!(budget.per instanceof RateLimitUnit)) {
        throw invalid(this, `${prop}.per`, budget.per, 'must be a RateLimitUnit');
      }
      const name = budget.name ?? `${this.node.path}/budgets[${b}]`;
      if (typeof name !== 'string' || name.length === 0) throw invalid(this, `${prop}.name`, name, 'must not be empty');
      let amount: ConsumerBudgetFragment['amount'];
      let kind: string;
      if (budget.limit instanceof Money) {
        if (budget.cost !== undefined) {
          throw invalid(this, `${prop}.cost`, budget.cost.metadataKey, 'only applies to token limits');
        }
        if (budget.limit._picoUsd <= 0n)
          throw invalid(this, `${prop}.limit`, budget.limit.toString(), 'must be more than $0');
        if (moneyUnitFor(budget.limit._picoUsd) === undefined) {
          throw invalid(
            this,
            `${prop}.limit`,
            budget.limit.toString(),
            'cannot be represented: counted in whole dollars it exceeds 1,000,000,000 units, the most Envoy ' +
              'charges one request (a budget must be able to charge a request that uses it up)',
          );
        }
        amount = { picoUsd: budget.limit._picoUsd };
        kind = 'money';
      } else {
        const tokens = budget.limit;
        if (!Number.isInteger(tokens) || tokens <= 0 || tokens > MAX_RATE_LIMIT_VALUE) {
          throw invalid(
            this,
            `${prop}.limit`,
            tokens,
            `must be Money.usd(...) or a positive integer number of tokens (at most ${MAX_RATE_LIMIT_VALUE})`,
          );
        }
        const cost = budget.cost ?? TokenCost.totalTokens();
        if (!(cost instanceof TokenCost)) throw invalid(this, `${prop}.cost`, cost, 'must be created with TokenCost');
        amount = { tokens, cost: cost._config };
        kind = cost.metadataKey;
      }
      const key = `${kind}|${budget.per.name}`;
      const first = groups.get(key);
      if (first !== undefined) {
        throw invalid(
          this,
          `${prop}.per`,
          budget.per.name,
          `budgets[${first}] already limits the same cost per ${budget.per.name}; a consumer has one limit per cost ` +
            'and window (keep the smaller)',
        );
      }
      groups.set(key, b);
      return { name, unit: budget.per.name, amount };
    });
  }

  /**
   * Checks, when the app is complete: a RateLimitRedis for the budgets, prices for money budgets, and that the keys
   * of the gateway's consumers, which a route's SecurityPolicy repeats, are in the route's namespace.
   */
  private validateWithApp(target: BudgetScope, budgets: readonly ConsumerBudgetFragment[]): void {
    const registry = synthRegistry(this);
    this.node.addValidation({
      validate: () => {
        if (budgets.length > 0) {
          const noRedis = missingRateLimitRedisError(this, 'budgets', target.path, registry);
          if (noRedis) throw noRedis;
        }
        if (registry.partial) return [];
        if (budgets.some((b) => 'picoUsd' in b.amount)) checkPriced(this, 'budgets', target.model);
        if (target.route) {
          for (const other of target.model.consumers) {
            const foreign =
              other.route === undefined && other.secrets.find((s) => s.namespace !== target.authNamespace);
            if (foreign) {
              throw invalid(
                this,
                'target',
                target.path,
                `the route's SecurityPolicy (namespace "${target.authNamespace}") replaces the gateway's for this ` +
                  `route, so it repeats the keys of the gateway's consumers, and Secret "${foreign.name}" of ` +
                  `consumer ${other.scope.node.path} is in namespace "${foreign.namespace}": Envoy Gateway reads it ` +
                  'only with a ReferenceGrant; put the route in the gateway namespace or attach this consumer to ' +
                  'the gateway',
              );
            }
          }
        }
        return [];
      },
    });
  }
}

/** `Array.isArray` without its type guard (which would widen a typed list that fails it to `any[]`). */
function isList(value: unknown): boolean {
  return Array.isArray(value);
}
