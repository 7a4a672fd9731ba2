import type { IConstruct } from 'constructs';
import { invalid, type AIGatewayValidationError } from '../errors';
import type { ISynthRegistry } from './registry';

/**
 * The error for a token budget in an app without a RateLimitRedis, or undefined. Envoy Gateway enforces budgets
 * with its rate-limit service, which runs only with a Redis configured (`helmValues` of a RateLimitRedis): without
 * one the policy is accepted and never enforced. Check it when the app is complete (a validation), since the
 * RateLimitRedis may be created after the budgets. Undefined in a partial build (see `ISynthRegistry.partial`).
 */
export function missingRateLimitRedisError(
  budget: IConstruct,
  prop: string,
  value: unknown,
  registry: ISynthRegistry,
): AIGatewayValidationError | undefined {
  if (registry.partial || registry.registered('RateLimitRedis').length > 0) return undefined;
  return invalid(
    budget,
    prop,
    value,
    'is a token budget, but the app has no RateLimitRedis: Envoy Gateway enforces budgets with its rate-limit ' +
      'service, ' +
      'which runs only with a Redis, so this budget would never be enforced; add RateLimitRedis.inCluster() (or ' +
      'RateLimitRedis.external() for a Redis Envoy Gateway already uses) and install Envoy Gateway with its helmValues',
  );
}

/** A model match of a route rule, as the routes report them (ModelMatch fits). */
export interface ServedModelMatch {
  matches(model: string): boolean;
  toString(): string;
}

/** The model matches of one route that a budget covers. */
export interface ServedModels {
  /** Construct path of the route. */
  readonly route: string;
  readonly matches: readonly ServedModelMatch[];
}

/** How many matches the message lists before it stops. */
const LISTED_MATCHES = 8;

/**
 * The error for `ModelScope.only(model)` when no rule of the routes the budget covers serves `model` (the budget
 * would never count a request), or undefined. Check it when the app is complete: routes may attach to a gateway
 * after its budgets.
 */
export function unservedModelError(
  budget: IConstruct,
  prop: string,
  model: string,
  routes: readonly ServedModels[],
): AIGatewayValidationError | undefined {
  if (routes.some((route) => route.matches.some((match) => match.matches(model)))) return undefined;
  const listed = routes.flatMap((route) => route.matches.map((match) => `${match.toString()} of ${route.route}`));
  const more = listed.length > LISTED_MATCHES ? `, and ${listed.length - LISTED_MATCHES} more` : '';
  const served =
    listed.length === 0
      ? 'the budget covers no AIRoute'
      : `the rules match ${listed.slice(0, LISTED_MATCHES).join(', ')}${more}`;
  return invalid(
    budget,
    prop,
    model,
    `no rule the budget covers serves this model (${served}), so it would never count a request; ` +
      'name a model a rule serves, or use ModelScope.eachModel()',
  );
}
