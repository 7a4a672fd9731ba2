/**
 * When a request moves on to another backend of its rule, and to which: pure decisions over the rule's config, the
 * answer just seen and the circuit breakers.
 */
import type { BackendRef, FallbackConfig } from '@ai-gateway-constructs/processor-config';
import type { RuntimeConfig } from '../config/runtime';
import { gatewayError } from '../errors';
import type { ResponseOrigin } from '../extproc/local-replies';
import type { Rejection, RoutingDecision } from '../extproc/request-route';
import type { BreakerSettings, CircuitBreakers } from '../routing/breaker';
import { pickWeighted } from '../routing/select';

/** Why an answer moves the request on (`credential`: a fallback backend whose credential could not be had). */
export type FailoverReason = 'status' | 'connection_failure' | 'timeout' | 'credential';

/** Envoy's local replies for a backend it could not reach (`ResponseCodeDetailValues`, without the bracketed part). */
const CONNECTION_FAILURE_DETAILS = new Set(['upstream_reset_before_response_started', 'no_healthy_upstream']);
/** Envoy's local replies for a backend that did not answer in time. */
const TIMEOUT_DETAILS = new Set([
  'response_timeout',
  'upstream_per_try_timeout',
  'upstream_per_try_idle_timeout',
  'upstream_max_stream_duration_reached',
]);

/**
 * Whether the answer moves the request on to the next priority. Only the backend's own answer or Envoy's reply for
 * the backend's failure can: Envoy's other local replies (a budget's 429, no route) say nothing about the backend.
 */
export function failoverReason(
  fallback: FallbackConfig,
  origin: ResponseOrigin,
  status: number,
): FailoverReason | undefined {
  switch (origin.kind) {
    case 'upstream':
      return fallback.statuses.includes(status) ? 'status' : undefined;
    case 'gateway':
      return undefined;
    case 'backendFailure':
      if (CONNECTION_FAILURE_DETAILS.has(origin.errorType))
        return fallback.connectionFailures ? 'connection_failure' : undefined;
      if (TIMEOUT_DETAILS.has(origin.errorType)) return fallback.timeouts ? 'timeout' : undefined;
      return undefined;
  }
}

/**
 * The backend to try next: weighted, not tried yet, at the lowest priority above `abovePriority` that has one, and
 * within it one whose breaker lets requests through if there is any (weighted random among those). Undefined when no
 * priority above is left.
 */
export function nextFallback(
  refs: readonly BackendRef[],
  tried: ReadonlySet<string>,
  abovePriority: number,
  breakers: CircuitBreakers,
  settings: BreakerSettings,
  random: () => number = Math.random,
): BackendRef | undefined {
  let priority = Infinity;
  for (const ref of refs) {
    if (ref.weight > 0 && ref.priority > abovePriority && ref.priority < priority && !tried.has(ref.backend))
      priority = ref.priority;
  }
  if (priority === Infinity) return undefined;
  const level = refs.filter((ref) => ref.weight > 0 && ref.priority === priority && !tried.has(ref.backend));
  const closed = level.filter((ref) => breakers.available(ref.backend, settings));
  return pickWeighted(closed.length > 0 ? closed : level, random);
}

/**
 * The routing of the same request to a fallback backend: same rule, model and consumer; that ref's backend, upstream
 * model and price. A route that serves only priced models refuses a fallback whose upstream model has no price, as it
 * refuses such a first attempt.
 */
export function fallbackRouting(
  runtime: RuntimeConfig,
  decision: RoutingDecision,
  ref: BackendRef,
): RoutingDecision | Rejection {
  const backend = runtime.backends.get(ref.backend)!;
  const upstreamModel = ref.modelNameOverride ?? decision.model;
  const prices = runtime.governance.prices;
  const price = prices.size === 0 ? undefined : prices.get(upstreamModel);
  if (price === undefined && decision.rule.rule.route.priceRequired === true) {
    return {
      kind: 'reject',
      error: gatewayError(
        400,
        `the fallback backend "${ref.backend}" serves \`${upstreamModel}\`, which has no price, and this route ` +
          'serves only priced models',
        'model_not_priced',
        'model',
      ),
      api: decision.api,
    };
  }
  return { ...decision, ref, backend, upstreamModel, price };
}
