/** Envoy's ratelimit HTTP filter, one per domain, as EG chains them. */
import {
  CONTINUE,
  type DecodeResult,
  type EncodeResult,
  type HeaderMap,
  type HttpFilter,
  type LocalReply,
  type StreamContext,
} from '../filter';
import {
  buildRateLimitServiceConfig,
  buildRouteRateLimits,
  compareGoStrings,
  populateDescriptor,
  type DescriptorContext,
  type RateLimitDescriptor,
  type RouteRateLimit,
} from './descriptors';
import { unitSeconds, type RateLimitRule } from './rules';
import {
  lookupIn,
  type DescriptorStatus,
  type LimitLookup,
  type RateLimitResponse,
  type RateLimitService,
} from './service';

export interface RateLimitFilterOptions {
  /** EG's `rateLimit.failClosed` (default false: a service error lets the request through). */
  readonly failClosed?: boolean;
  /**
   * Service call timeout. Envoy's default is 20 ms; the local default is larger so a busy development machine does
   * not turn budgets off by failing open. A timeout is a service error (see `failClosed`).
   */
  readonly timeoutMs?: number;
  /** ClientTrafficPolicy `headers.enableEnvoyHeaders`: only then EG keeps `x-envoy-ratelimited: true` on 429s. */
  readonly enableEnvoyHeaders?: boolean;
  /**
   * ClientTrafficPolicy `headers.disableRateLimitHeaders`: EG otherwise enables the draft-03 `x-ratelimit-*` headers.
   */
  readonly disableRateLimitHeaders?: boolean;
  /** Called with stream-done charges' failures (they never affect the response). */
  readonly onError?: (error: unknown) => void;
}

interface RateLimitedRoute {
  readonly name: string;
  readonly rateLimitRules: RateLimitRule[];
  /**
   * The EG IR listener the route belongs to, when several Gateway listeners share one port (one HCM): Envoy then
   * uses each route's own listener name as the domain of its non-shared rules. Defaults to the filter's listener.
   */
  readonly listenerName?: string;
}

interface DomainCall {
  readonly domain: string;
  readonly rateLimits: RouteRateLimit[];
  readonly lookup: LimitLookup;
}

/**
 * The rate-limit filters of one listener, run as one HttpFilter: for each domain in EG's filter order, the
 * request-time descriptors go to the service in one call; the first domain over limit answers 429 and the later
 * domains' filters never see the request (nor charge anything at stream end). At stream end, each domain whose
 * filter saw the request charges its `apply_on_stream_done` descriptors, built on the route and per-route config
 * saved at decode time and the request headers and dynamic metadata as they are then.
 */
export function createRateLimitFilter(
  service: RateLimitService,
  listenerName: string,
  options: RateLimitFilterOptions = {},
): HttpFilter {
  const timeoutMs = options.timeoutMs ?? 1000;
  // Routes are immutable model data: their actions and limits are built once.
  const compiled = new WeakMap<
    RateLimitedRoute,
    { domains: string[]; perDomain: Map<string, RouteRateLimit[]>; lookups: Map<string, LimitLookup> }
  >();
  const compile = (route: RateLimitedRoute) => {
    let entry = compiled.get(route);
    if (!entry) {
      const listener = route.listenerName ?? listenerName;
      const perDomain = buildRouteRateLimits(listener, route.name, route.rateLimitRules);
      const configs = buildRateLimitServiceConfig([{ name: listener, routes: [route] }]);
      entry = {
        domains: [...perDomain.keys()].sort(compareGoStrings),
        perDomain,
        lookups: new Map(configs.map((c) => [c.domain, lookupIn(c.descriptors)])),
      };
      compiled.set(route, entry);
    }
    return entry;
  };
  // Per stream: the domains whose filter decoded the request, and the x-ratelimit headers to add.
  const streams = new WeakMap<
    StreamContext,
    { calls: DomainCall[]; responseHeaders: [string, string][]; calling: boolean }
  >();

  const callWithTimeout = (
    domain: string,
    descriptors: RateLimitDescriptor[],
    lookup: LimitLookup,
  ): Promise<RateLimitResponse> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`rate-limit service timed out after ${timeoutMs} ms`)),
        timeoutMs,
      );
      service.shouldRateLimit(domain, descriptors, 0, lookup).then(
        (response) => {
          clearTimeout(timer);
          resolve(response);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });

  return {
    name: 'envoy.filters.http.ratelimit',
    async decodeHeaders(stream: StreamContext): Promise<DecodeResult> {
      const route = stream.route() as RateLimitedRoute | undefined;
      const state = { calls: [] as DomainCall[], responseHeaders: [] as [string, string][], calling: false };
      streams.set(stream, state);
      if (!route || !Array.isArray(route.rateLimitRules) || route.rateLimitRules.length === 0) return CONTINUE;
      const { domains, perDomain, lookups } = compile(route);
      for (const domain of domains) {
        const call: DomainCall = {
          domain,
          rateLimits: perDomain.get(domain) ?? [],
          lookup: lookups.get(domain) ?? lookupIn([]),
        };
        state.calls.push(call);
        const descriptors = describe(call.rateLimits, false, stream);
        if (descriptors.length === 0) continue;
        let response: RateLimitResponse;
        state.calling = true;
        try {
          response = await callWithTimeout(domain, descriptors, call.lookup);
        } catch {
          state.calling = false;
          if (!options.failClosed) continue;
          stream.responseFlags.add('RLSE');
          return { action: 'localReply', reply: { status: 500, details: 'rate_limiter_error', flag: 'RLSE' } };
        }
        state.calling = false;
        const headers = xRateLimitHeaders(response.statuses, descriptors, !options.disableRateLimitHeaders);
        state.responseHeaders.push(...headers);
        if (response.overallCode === 'OVER_LIMIT') {
          stream.responseFlags.add('RL');
          const replyHeaders: [string, string][] = [...state.responseHeaders];
          if (options.enableEnvoyHeaders) replyHeaders.push(['x-envoy-ratelimited', 'true']);
          state.responseHeaders = [];
          const reply: LocalReply = { status: 429, headers: replyHeaders, details: 'request_rate_limited', flag: 'RL' };
          return { action: 'localReply', reply };
        }
      }
      return CONTINUE;
    },
    encodeHeaders(stream: StreamContext, headers: HeaderMap): EncodeResult {
      const state = streams.get(stream);
      if (state) {
        for (const [name, value] of state.responseHeaders) headers.add(name, value);
        state.responseHeaders = [];
      }
      return CONTINUE;
    },
    async onStreamComplete(stream: StreamContext): Promise<void> {
      const state = streams.get(stream);
      // Nothing to charge when the request never reached this filter (an earlier local reply). A stream destroyed
      // while its request-time call is in flight (the client went away) only cancels that call, as in Envoy.
      if (!state) return;
      streams.delete(stream);
      if (state.calling) return;
      await Promise.all(
        state.calls.map(async (call) => {
          const descriptors = describe(call.rateLimits, true, stream);
          if (descriptors.length === 0) return;
          try {
            await service.shouldRateLimit(call.domain, descriptors, 0, call.lookup);
          } catch (error) {
            options.onError?.(error);
          }
        }),
      );
    },
  };
}

function describe(rateLimits: RouteRateLimit[], onStreamDone: boolean, stream: StreamContext): RateLimitDescriptor[] {
  const context: DescriptorContext = {
    headers: stream.requestHeaders,
    downstreamAddress: stream.downstreamAddress,
    dynamicMetadata: stream.dynamicMetadata,
  };
  const out: RateLimitDescriptor[] = [];
  for (const rateLimit of rateLimits) {
    if (rateLimit.applyOnStreamDone !== onStreamDone) continue;
    const descriptor = populateDescriptor(rateLimit, context);
    if (descriptor) out.push(descriptor);
  }
  return out;
}

/**
 * Envoy's draft-03 headers from one service answer: the limit, remaining count and reset of the descriptor with the
 * least remaining, plus a `<limit>;w=<window>` quota policy per limited descriptor. A descriptor's own
 * `x_ratelimit_option` overrides the filter's setting (`enabledByDefault`); when the tightest descriptor has them
 * off, no header is added.
 */
export function xRateLimitHeaders(
  statuses: readonly DescriptorStatus[],
  descriptors: readonly RateLimitDescriptor[],
  enabledByDefault: boolean,
): [string, string][] {
  const enabled = (i: number) => {
    const option = descriptors[i]?.xRateLimitOption;
    return option === undefined ? enabledByDefault : option === 'DRAFT_VERSION_03';
  };
  let tightest = -1;
  statuses.forEach((status, i) => {
    if (status.currentLimit && (tightest < 0 || status.limitRemaining < statuses[tightest].limitRemaining))
      tightest = i;
  });
  if (tightest < 0 || !enabled(tightest)) return [];
  let policy = '';
  statuses.forEach((status, i) => {
    if (status.currentLimit && enabled(i))
      policy += `, ${status.currentLimit.requestsPerUnit};w=${unitSeconds(status.currentLimit.unit)}`;
  });
  const top = statuses[tightest];
  return [
    ['x-ratelimit-limit', `${top.currentLimit?.requestsPerUnit}${policy}`],
    ['x-ratelimit-remaining', String(top.limitRemaining)],
    ['x-ratelimit-reset', String(top.durationUntilResetSeconds ?? 0)],
  ];
}
