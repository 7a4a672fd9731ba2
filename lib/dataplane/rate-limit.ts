/**
 * Global rate limiting as Envoy Gateway v1.9 configures it and Envoy + envoyproxy/ratelimit run it:
 *
 * 1. `rateLimitRulesFromPolicy` turns a BackendTrafficPolicy into EG's IR rules (`<ns>/<policy>/rule/<i>`);
 *    `mergeRateLimitRules` applies EG's gateway/route policy merge.
 * 2. `buildRouteRateLimits` produces, per rate-limit domain, the route's `rate_limits` actions exactly as EG's
 *    xDS translator does (domain = listener name for non-shared rules, `<ns>/<policy>` for shared ones; one
 *    Envoy ratelimit filter per domain, in sorted domain order). `buildRateLimitServiceConfig` produces the
 *    rate-limit service's descriptor trees (limits).
 * 3. `populateDescriptor` evaluates one action list on a request like Envoy's descriptor producers.
 * 4. `RateLimitService` answers like envoyproxy/ratelimit (fixed windows, `<domain>_<key>_<value>_..._<window>`).
 * 5. `createRateLimitFilter` is the HTTP filter: request-time check in `decodeHeaders` on the route cached at
 *    that moment (after ext_proc re-routed), stream-done charges (`apply_on_stream_done`) in `onStreamComplete`.
 *
 * Deliberate differences, none visible in what is counted: the service-call timeout defaults to 1 s, not Envoy
 * Gateway's 20 ms (a busy development machine would otherwise fail open and silently skip budgets; pass
 * `timeoutMs: 20` for the real value); counter keys expire after exactly one window (envoyproxy/ratelimit adds up
 * to 300 s of jitter; the key names its window, so counts are the same); regular expressions run on JavaScript's
 * engine with Envoy's whole-value anchoring (RE2-only syntax such as `(?P<name>...)` is rejected); local rate
 * limits and the service's near-limit statistics are not modelled (its per-limit hit counters are:
 * `RateLimitService.stats()`).
 *
 * The modules: `rate-limit/rules.ts` (1), `rate-limit/descriptors.ts` (2, 3), `rate-limit/service.ts` (4),
 * `rate-limit/filter.ts` (5) and `rate-limit/store.ts` (the service's counters, in memory or Redis).
 */
export {
  unitSeconds,
  rateLimitRulesFromPolicy,
  pathSeparatedPrefixRegex,
  mergeRateLimitRules,
  type RateLimitUnit,
  type RateLimitStringMatch,
  type RateLimitCidrMatch,
  type RateLimitCost,
  type RateLimitRule,
} from './rate-limit/rules';
export {
  ruleDomain,
  buildRouteRateLimits,
  listenerRateLimitDomains,
  serviceDescriptorForRule,
  buildRateLimitServiceConfig,
  findServiceLimit,
  populateDescriptor,
  hitsFromFormat,
  type StringMatcher,
  type RateLimitAction,
  type RouteRateLimit,
  type ServiceLimit,
  type ServiceDescriptor,
  type RateLimitServiceConfig,
  type DescriptorEntry,
  type RateLimitDescriptor,
  type DescriptorContext,
} from './rate-limit/descriptors';
export {
  lookupIn,
  RateLimitService,
  counterKey,
  type LimitCode,
  type DescriptorStatus,
  type RateLimitResponse,
  type LimitLookup,
  type RateLimitStats,
} from './rate-limit/service';
export { createRateLimitFilter, xRateLimitHeaders, type RateLimitFilterOptions } from './rate-limit/filter';
