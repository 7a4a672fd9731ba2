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
 * limits and the service's statistics are not modelled.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { CONTINUE, type DecodeResult, type EncodeResult, type HeaderMap, type HttpFilter, type LocalReply, type StreamContext } from './filter';
import { optionalListField, optionalObjectField } from './objects';
import type { CounterStore } from './rate-limit-store';
import { compileRe2, fullMatch } from './re2';
import { parseQuery } from './route-match';

// ---------------------------------------------------------------------------------------------------------------
// IR

export type RateLimitUnit = 'Second' | 'Minute' | 'Hour' | 'Day' | 'Week' | 'Month' | 'Year';

const UNIT_SECONDS: Record<RateLimitUnit, number> = {
  Second: 1,
  Minute: 60,
  Hour: 3600,
  Day: 86_400,
  Week: 604_800,
  Month: 2_592_000, // envoyproxy/ratelimit: 30 days
  Year: 31_536_000, // 365 days
};

/** Window length in seconds of a unit, as envoyproxy/ratelimit's `UnitToDivider`. */
export function unitSeconds(unit: RateLimitUnit): number {
  return UNIT_SECONDS[unit];
}

/** EG's IR string match. Exactly one of exact/prefix/safeRegex, or `distinct` (any value, one bucket per value). */
export interface RateLimitStringMatch {
  readonly name?: string;
  readonly exact?: string;
  readonly prefix?: string;
  /** RE2 syntax; Envoy matches the whole value. */
  readonly safeRegex?: string;
  readonly distinct?: boolean;
  readonly invert?: boolean;
}

export interface RateLimitCidrMatch {
  /** As written in the policy, e.g. `192.168.0.0/16`. */
  readonly cidr: string;
  readonly addressPrefix: string;
  readonly maskLen: number;
  readonly isIPv6: boolean;
  readonly distinct: boolean;
  readonly invert: boolean;
}

/** A hits addend: a fixed number, or a value read from dynamic metadata (`%DYNAMIC_METADATA(ns:key)%`). */
export type RateLimitCost = { readonly number: number } | { readonly metadataNamespace: string; readonly metadataKey: string };

/** One global rate-limit rule of EG's IR (`ir.RateLimitRule`). */
export interface RateLimitRule {
  /** `<policyNamespace>/<policyName>/rule/<index>`; the StrategicMerge key. */
  readonly name: string;
  readonly shared: boolean;
  readonly headerMatches: RateLimitStringMatch[];
  /** OR: the rule becomes one Envoy rate limit per method, all sharing one descriptor (bucket). */
  readonly methodMatches: RateLimitStringMatch[];
  readonly pathMatch?: RateLimitStringMatch;
  readonly cidrMatch?: RateLimitCidrMatch;
  readonly queryParamMatches: RateLimitStringMatch[];
  readonly limit: { readonly requests: number; readonly unit: RateLimitUnit };
  /** `limit.fromMetadata`: a struct `{requests_per_unit, unit}` in dynamic metadata overrides the limit. */
  readonly limitFromMetadata?: { readonly namespace: string; readonly key: string };
  readonly requestCost?: RateLimitCost;
  readonly responseCost?: RateLimitCost;
  readonly shadowMode?: boolean;
  /** Per-rule `xRateLimitHeaders`; undefined inherits the listener setting. */
  readonly xRateLimitHeaders?: 'Off' | 'DraftVersion03';
}

function isMatchSet(rule: RateLimitRule): boolean {
  return rule.headerMatches.length > 0 || rule.methodMatches.length > 0 || rule.pathMatch !== undefined || rule.cidrMatch !== undefined || rule.queryParamMatches.length > 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Policy -> IR (EG internal/gatewayapi/backendtrafficpolicy.go buildGlobalRateLimit / buildRateLimitRule)

interface PolicyLike {
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
  readonly [key: string]: unknown;
}

const UNITS = new Set<string>(Object.keys(UNIT_SECONDS));
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
const MAX_RULES = 256;

/** The global rate-limit rules of a BackendTrafficPolicy, named as EG names them. Throws on what EG rejects. */
export function rateLimitRulesFromPolicy(policy: PolicyLike): RateLimitRule[] {
  const namespace = policy.metadata?.namespace ?? 'default';
  const name = policy.metadata?.name;
  const where = `BackendTrafficPolicy ${namespace}/${name ?? '<unnamed>'}`;
  if (!name) throw new Error(`${where}: metadata.name is required`);
  const spec = optionalObjectField(policy.spec, `${where}: spec`) ?? {};
  const rateLimit = optionalObjectField(spec.rateLimit, `${where}: spec.rateLimit`);
  if (!rateLimit) return [];
  if (rateLimit.type !== undefined && rateLimit.type !== 'Global' && rateLimit.type !== 'Local') {
    throw new Error(`${where}: invalid rateLimit type ${JSON.stringify(rateLimit.type)}`);
  }
  if (rateLimit.local !== undefined) throw new Error(`${where}: local rate limits are not modelled by the local data plane`);
  const global = optionalObjectField(rateLimit.global, `${where}: spec.rateLimit.global`);
  if (!global) {
    if (rateLimit.type === 'Global') throw new Error(`${where}: global configuration empty for rateLimit`);
    return [];
  }
  const rules = global.rules;
  if (!Array.isArray(rules) || rules.length === 0) throw new Error(`${where}: spec.rateLimit.global.rules must be a non-empty list`);
  if (rules.length > MAX_RULES) throw new Error(`${where}: at most ${MAX_RULES} global rules are allowed`);
  return rules.map((rule, index) => buildRule(rule, `${namespace}/${name}/rule/${index}`, `${where}: spec.rateLimit.global.rules[${index}]`));
}

function buildRule(raw: unknown, name: string, where: string): RateLimitRule {
  const rule = optionalObjectField(raw, where);
  if (!rule) throw new Error(`${where}: must be an object`);
  const limit = optionalObjectField(rule.limit, `${where}.limit`);
  if (!limit) throw new Error(`${where}.limit is required`);
  const requests = limit.requests;
  if (typeof requests !== 'number' || !Number.isInteger(requests) || requests < 0 || requests > 4_294_967_295) {
    throw new Error(`${where}.limit.requests must be an integer between 0 and 4294967295`);
  }
  if (typeof limit.unit !== 'string' || !UNITS.has(limit.unit)) {
    throw new Error(`${where}.limit.unit must be one of ${[...UNITS].join(', ')}`);
  }
  const headerMatches: RateLimitStringMatch[] = [];
  const methodMatches: RateLimitStringMatch[] = [];
  const queryParamMatches: RateLimitStringMatch[] = [];
  let pathMatch: RateLimitStringMatch | undefined;
  let cidrMatch: RateLimitCidrMatch | undefined;
  const selectors = rule.clientSelectors ?? [];
  if (!Array.isArray(selectors)) throw new Error(`${where}.clientSelectors must be a list`);
  selectors.forEach((rawSelector, s) => {
    const at = `${where}.clientSelectors[${s}]`;
    const selector = optionalObjectField(rawSelector, at) ?? {};
    const headers = optionalListField(selector.headers, `${at}.headers`);
    const methods = optionalListField(selector.methods, `${at}.methods`);
    const queryParams = optionalListField(selector.queryParams, `${at}.queryParams`);
    if (headers.length === 0 && methods.length === 0 && selector.path === undefined && selector.sourceCIDR === undefined && queryParams.length === 0) {
      throw new Error(`${at}: at least one of headers, methods, path, sourceCIDR or queryParams must be specified`);
    }
    headers.forEach((h, i) => headerMatches.push(keyedMatch(h, `${at}.headers[${i}]`, 'header')));
    methods.forEach((m, i) => {
      const method = optionalObjectField(m, `${at}.methods[${i}]`) ?? {};
      if (typeof method.value !== 'string' || !METHODS.has(method.value)) throw new Error(`${at}.methods[${i}].value must be an HTTP method name`);
      methodMatches.push({ exact: method.value, ...invertOf(method) });
    });
    if (selector.path !== undefined) pathMatch = pathMatchOf(selector.path, `${at}.path`);
    if (selector.sourceCIDR !== undefined) cidrMatch = cidrMatchOf(selector.sourceCIDR, `${at}.sourceCIDR`);
    queryParams.forEach((q, i) => queryParamMatches.push(keyedMatch(q, `${at}.queryParams[${i}]`, 'query')));
  });
  const cost = optionalObjectField(rule.cost, `${where}.cost`);
  const fromMetadata = optionalObjectField(limit.fromMetadata, `${where}.limit.fromMetadata`);
  return {
    name,
    shared: rule.shared === true,
    headerMatches,
    methodMatches,
    ...(pathMatch ? { pathMatch } : {}),
    ...(cidrMatch ? { cidrMatch } : {}),
    queryParamMatches,
    limit: { requests, unit: limit.unit as RateLimitUnit },
    ...(fromMetadata ? { limitFromMetadata: { namespace: String(fromMetadata.namespace ?? ''), key: String(fromMetadata.key ?? '') } } : {}),
    ...(cost?.request !== undefined ? { requestCost: costOf(cost.request, `${where}.cost.request`) } : {}),
    ...(cost?.response !== undefined ? { responseCost: costOf(cost.response, `${where}.cost.response`) } : {}),
    ...(rule.shadowMode === true ? { shadowMode: true } : {}),
    ...(xRateLimitHeadersOf(rule.xRateLimitHeaders, `${where}.xRateLimitHeaders`) ?? {}),
  };
}

function xRateLimitHeadersOf(value: unknown, where: string): { xRateLimitHeaders: 'Off' | 'DraftVersion03' } | undefined {
  if (value === undefined) return undefined;
  if (value !== 'Off' && value !== 'DraftVersion03') throw new Error(`${where} must be Off or DraftVersion03`);
  return { xRateLimitHeaders: value };
}

function keyedMatch(raw: unknown, where: string, kind: 'header' | 'query'): RateLimitStringMatch {
  const match = optionalObjectField(raw, where) ?? {};
  if (typeof match.name !== 'string' || match.name.length === 0 || match.name.length > 256) throw new Error(`${where}.name must be a non-empty string`);
  const type = match.type ?? 'Exact';
  const value = match.value;
  if (value !== undefined && (typeof value !== 'string' || value.length > 1024)) throw new Error(`${where}.value must be a string of at most 1024 characters`);
  const name = match.name;
  switch (type) {
    case 'Exact':
      if (value === undefined || (kind === 'query' && value === '')) throw new Error(`${where}: value is required for an Exact ${kind} match`);
      return { name, exact: value, ...invertOf(match) };
    case 'RegularExpression':
      if (value === undefined || (kind === 'query' && value === '')) throw new Error(`${where}: value is required for a RegularExpression ${kind} match`);
      compileRe2(value, where);
      return { name, safeRegex: value, ...invertOf(match) };
    case 'Distinct':
      if (match.invert === true) throw new Error(`${where}: invert is not applicable to a Distinct ${kind} match`);
      if (value !== undefined) throw new Error(`${where}: a Distinct ${kind} match takes no value`);
      return { name, distinct: true };
    default:
      throw new Error(`${where}.type must be Exact, RegularExpression or Distinct`);
  }
}

function pathMatchOf(raw: unknown, where: string): RateLimitStringMatch {
  const path = optionalObjectField(raw, where) ?? {};
  const value = path.value ?? '/';
  if (typeof value !== 'string' || value.length > 1024) throw new Error(`${where}.value must be a string`);
  switch (path.type ?? 'PathPrefix') {
    case 'PathPrefix':
      // Envoy's rate-limit header matchers have no path_separated_prefix, so EG writes a segment-aware regex.
      return value === '/' ? { prefix: '/', ...invertOf(path) } : { safeRegex: pathSeparatedPrefixRegex(value), ...invertOf(path) };
    case 'Exact':
      return { exact: value, ...invertOf(path) };
    case 'RegularExpression':
      compileRe2(value, where);
      return { safeRegex: value, ...invertOf(path) };
    default:
      throw new Error(`${where}.type must be Exact, PathPrefix or RegularExpression`);
  }
}

/** EG's `regex.PathSeparatedPrefixRegex`: the prefix (trailing `/` trimmed, quoted), then `/`, `?`, `#`, `;` or the end. */
export function pathSeparatedPrefixRegex(prefix: string): string {
  const trimmed = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return `^${quoteMeta(trimmed)}(/.*|\\?.*|#.*|;.*|$)`;
}

// Go's regexp.QuoteMeta escapes exactly these characters.
function quoteMeta(value: string): string {
  return value.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

function cidrMatchOf(raw: unknown, where: string): RateLimitCidrMatch {
  const source = optionalObjectField(raw, where) ?? {};
  if (typeof source.value !== 'string') throw new Error(`${where}.value must be a CIDR`);
  const [address, bits, extra] = source.value.split('/');
  const v6 = isIPv6(address);
  const maskLen = Number(bits);
  if (extra !== undefined || (!v6 && !isIPv4(address)) || !Number.isInteger(maskLen) || maskLen < 0 || maskLen > (v6 ? 128 : 32)) {
    throw new Error(`${where}.value ${JSON.stringify(source.value)} is not a valid CIDR`);
  }
  const type = source.type ?? 'Exact';
  if (type !== 'Exact' && type !== 'Distinct') throw new Error(`${where}.type must be Exact or Distinct`);
  return { cidr: source.value, addressPrefix: address, maskLen, isIPv6: v6, distinct: type === 'Distinct', invert: source.invert === true };
}

function costOf(raw: unknown, where: string): RateLimitCost {
  const cost = optionalObjectField(raw, where) ?? {};
  if (cost.number !== undefined && cost.metadata !== undefined) throw new Error(`${where}: only one of number or metadata can be specified`);
  if (cost.from === 'Number' || (cost.from === undefined && cost.number !== undefined)) {
    const n = cost.number ?? 0;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new Error(`${where}.number must be a non-negative integer`);
    return { number: n };
  }
  if (cost.from === 'Metadata') {
    const metadata = optionalObjectField(cost.metadata, `${where}.metadata`);
    if (!metadata || typeof metadata.namespace !== 'string' || typeof metadata.key !== 'string') {
      throw new Error(`${where}.metadata needs a namespace and a key`);
    }
    return { metadataNamespace: metadata.namespace, metadataKey: metadata.key };
  }
  throw new Error(`${where}.from must be Number or Metadata`);
}

function invertOf(match: Record<string, unknown>): { invert?: true } {
  return match.invert === true ? { invert: true } : {};
}

// ---------------------------------------------------------------------------------------------------------------
// Gateway + route policy merge (EG translateBackendTrafficPolicyForRouteWithMerge)

/**
 * The rules a route gets when both a Gateway-targeted and a route-targeted BackendTrafficPolicy apply.
 * - no mergeType: the route policy replaces the gateway policy (when the route policy has no rate limit, the
 *   route gets none from the gateway either; pass `route` as given);
 * - StrategicMerge: IR rules merged by `name` (`patchMergeKey: name`). Names never collide across policies, so
 *   both budgets stack; apimachinery's order puts the route (patch) rules first, then the gateway-only ones;
 * - JSONMerge: a JSON merge patch replaces the `rules` list, so the route rules win when the route has any.
 * With a mergeType and no rate limit on the route policy, EG keeps the gateway rules.
 * `route === undefined` means the route policy has no `rateLimit` at all.
 */
export function mergeRateLimitRules(
  gateway: RateLimitRule[] | undefined,
  route: RateLimitRule[] | undefined,
  mergeType?: 'StrategicMerge' | 'JSONMerge',
): RateLimitRule[] {
  if (mergeType === undefined) return [...(route ?? [])];
  if (route === undefined || route.length === 0) return [...(gateway ?? [])];
  if (gateway === undefined || gateway.length === 0) return [...route];
  if (mergeType === 'JSONMerge') return [...route];
  return strategicMergeByName(gateway, route);
}

function strategicMergeByName(original: RateLimitRule[], patch: RateLimitRule[]): RateLimitRule[] {
  const merged = original.map((rule) => {
    const patched = patch.find((p) => p.name === rule.name);
    return patched ? { ...rule, ...patched } : rule;
  });
  const patchNames = new Set(patch.map((p) => p.name));
  const patchItems = patch.map((p) => merged.find((m) => m.name === p.name) ?? p);
  const serverOnly = merged.filter((m) => !patchNames.has(m.name));
  // apimachinery mergeSortedSlice: a server-only item goes before a patch item only if both appear in the
  // original list and it came first there; otherwise the patch item goes first.
  const serverIndex = (rule: RateLimitRule): number => original.findIndex((o) => o.name === rule.name);
  const out: RateLimitRule[] = [];
  let i = 0;
  let j = 0;
  while (i < serverOnly.length || j < patchItems.length) {
    if (j >= patchItems.length) out.push(serverOnly[i++]);
    else if (i >= serverOnly.length) out.push(patchItems[j++]);
    else {
      const li = serverIndex(serverOnly[i]);
      const ri = serverIndex(patchItems[j]);
      if (li >= 0 && ri >= 0 && li < ri) out.push(serverOnly[i++]);
      else out.push(patchItems[j++]);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// IR -> Envoy route rate limits (EG internal/xds/translator/ratelimit.go buildRouteRateLimits)

export interface StringMatcher {
  readonly exact?: string;
  readonly prefix?: string;
  readonly safeRegex?: string;
}

export type RateLimitAction =
  | { readonly type: 'genericKey'; readonly descriptorKey: string; readonly descriptorValue: string }
  | { readonly type: 'requestHeaders'; readonly headerName: string; readonly descriptorKey: string }
  | {
      readonly type: 'headerValueMatch';
      readonly descriptorKey: string;
      readonly descriptorValue: string;
      readonly expectMatch: boolean;
      readonly header: { readonly name: string; readonly match: StringMatcher };
    }
  | {
      readonly type: 'remoteAddressMatch';
      readonly descriptorKey: string;
      /** A literal value, or `%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%` (the client IP). */
      readonly descriptorValue: string;
      readonly addressPrefix: string;
      readonly prefixLen: number;
      readonly invert: boolean;
    }
  | { readonly type: 'queryParameters'; readonly queryParameterName: string; readonly descriptorKey: string }
  | {
      readonly type: 'queryParameterValueMatch';
      readonly descriptorKey: string;
      readonly descriptorValue: string;
      readonly expectMatch: boolean;
      readonly queryParameter: { readonly name: string; readonly match: StringMatcher };
    };

/** Envoy `config.route.v3.RateLimit`, as EG emits it. */
export interface RouteRateLimit {
  readonly actions: RateLimitAction[];
  readonly hitsAddend?: { readonly number: number } | { readonly format: string };
  readonly applyOnStreamDone: boolean;
  readonly limitOverride?: { readonly namespace: string; readonly key: string };
  /** Envoy's per-rate-limit `x_ratelimit_option`; undefined = the filter's setting. */
  readonly xRateLimitOption?: 'OFF' | 'DRAFT_VERSION_03';
}

const CLIENT_IP_FORMAT = '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%';

/** The domain of a rule: its policy (`<ns>/<policy>`) when shared, else the listener's name. */
export function ruleDomain(rule: RateLimitRule, listenerName: string): string {
  return rule.shared ? stripRuleIndexSuffix(rule.name) : listenerName;
}

function stripRuleIndexSuffix(name: string): string {
  const at = name.lastIndexOf('/rule/');
  return at >= 0 ? name.slice(0, at) : name.replace('/', '-');
}

// Both shared and non-shared rules count from 0 within their own domain.
function domainRuleIndex(rules: RateLimitRule[], index: number): number {
  let count = 0;
  for (let i = 0; i < index; i++) if (rules[i].shared === rules[index].shared) count++;
  return count;
}

const ruleMatchKey = (rule: number, match: number): string => `rule-${rule}-match-${match}`;

/** The route's `RateLimitPerRoute.rate_limits` per domain, in EG's order. */
export function buildRouteRateLimits(listenerName: string, routeName: string, rules: RateLimitRule[]): Map<string, RouteRateLimit[]> {
  const byDomain = new Map<string, RouteRateLimit[]>();
  rules.forEach((rule, index) => {
    const domain = ruleDomain(rule, listenerName);
    const k = domainRuleIndex(rules, index);
    const methods: (RateLimitStringMatch | undefined)[] = rule.methodMatches.length > 0 ? rule.methodMatches : [undefined];
    const list = byDomain.get(domain) ?? [];
    byDomain.set(domain, list);
    for (const method of methods) {
      const descriptorKey = rule.shared ? rule.name : routeName;
      const actions: RateLimitAction[] = [{ type: 'genericKey', descriptorKey, descriptorValue: descriptorKey }];
      rule.headerMatches.forEach((match, m) => {
        const key = ruleMatchKey(k, m);
        actions.push(
          match.distinct
            ? { type: 'requestHeaders', headerName: match.name ?? '', descriptorKey: key }
            : { type: 'headerValueMatch', descriptorKey: key, descriptorValue: key, expectMatch: match.invert !== true, header: { name: match.name ?? '', match: matcherOf(match) } },
        );
      });
      if (method) {
        const key = `rule-${k}-method`;
        actions.push({ type: 'headerValueMatch', descriptorKey: key, descriptorValue: key, expectMatch: method.invert !== true, header: { name: ':method', match: matcherOf(method) } });
      }
      if (rule.pathMatch) {
        const key = `rule-${k}-path`;
        actions.push({ type: 'headerValueMatch', descriptorKey: key, descriptorValue: key, expectMatch: rule.pathMatch.invert !== true, header: { name: ':path', match: matcherOf(rule.pathMatch) } });
      }
      if (rule.cidrMatch) {
        const c = rule.cidrMatch;
        const range = { addressPrefix: c.addressPrefix, prefixLen: c.maskLen, invert: c.invert };
        actions.push({ type: 'remoteAddressMatch', descriptorKey: 'masked_remote_address', descriptorValue: c.invert ? `invert:${c.cidr}` : c.cidr, ...range });
        if (c.distinct) actions.push({ type: 'remoteAddressMatch', descriptorKey: 'remote_address', descriptorValue: CLIENT_IP_FORMAT, ...range });
      }
      rule.queryParamMatches.forEach((match, m) => {
        // Query matches continue the header matches' index sequence.
        const key = ruleMatchKey(k, rule.headerMatches.length + m);
        actions.push(
          match.distinct
            ? { type: 'queryParameters', queryParameterName: match.name ?? '', descriptorKey: key }
            : { type: 'queryParameterValueMatch', descriptorKey: key, descriptorValue: key, expectMatch: match.invert !== true, queryParameter: { name: match.name ?? '', match: matcherOf(match) } },
        );
      });
      if (!isMatchSet(rule)) {
        const key = ruleMatchKey(k, -1);
        actions.push({ type: 'genericKey', descriptorKey: key, descriptorValue: key });
      }
      const shared = {
        ...(rule.limitFromMetadata ? { limitOverride: rule.limitFromMetadata } : {}),
        ...(rule.xRateLimitHeaders ? { xRateLimitOption: rule.xRateLimitHeaders === 'Off' ? ('OFF' as const) : ('DRAFT_VERSION_03' as const) } : {}),
      };
      list.push({ actions, applyOnStreamDone: false, ...hitsAddendOf(rule.requestCost), ...shared });
      if (rule.responseCost) list.push({ actions, applyOnStreamDone: true, ...hitsAddendOf(rule.responseCost), ...shared });
    }
  });
  return byDomain;
}

function matcherOf(match: RateLimitStringMatch): StringMatcher {
  if (match.exact !== undefined) return { exact: match.exact };
  if (match.prefix !== undefined) return { prefix: match.prefix };
  if (match.safeRegex !== undefined) return { safeRegex: match.safeRegex };
  throw new Error('a rate-limit string match needs exact, prefix or safeRegex');
}

function hitsAddendOf(cost: RateLimitCost | undefined): { hitsAddend?: RouteRateLimit['hitsAddend'] } {
  if (!cost) return {};
  if ('number' in cost) return { hitsAddend: { number: cost.number } };
  return { hitsAddend: { format: `%DYNAMIC_METADATA(${cost.metadataNamespace}:${cost.metadataKey})%` } };
}

/** Domains of the Envoy ratelimit filters EG puts on a listener, in chain order (sorted; the listener's included). */
export function listenerRateLimitDomains(listenerName: string, routes: readonly { readonly rateLimitRules: readonly RateLimitRule[] }[]): string[] {
  const domains = new Set<string>([listenerName]);
  for (const route of routes) for (const rule of route.rateLimitRules) if (rule.shared) domains.add(stripRuleIndexSuffix(rule.name));
  return [...domains].sort(compareGoStrings);
}

function compareGoStrings(a: string, b: string): number {
  // Go sorts strings bytewise; for the ASCII names EG builds this equals UTF-16 code unit order.
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------------------
// IR -> rate-limit service configuration (EG BuildRateLimitServiceConfig)

export interface ServiceLimit {
  readonly requestsPerUnit: number;
  readonly unit: RateLimitUnit;
}

export interface ServiceDescriptor {
  readonly key: string;
  /** Absent = any value (Distinct selectors, client IP). */
  readonly value?: string;
  readonly rateLimit?: ServiceLimit;
  readonly shadowMode: boolean;
  readonly descriptors: ServiceDescriptor[];
}

export interface RateLimitServiceConfig {
  readonly domain: string;
  readonly descriptors: ServiceDescriptor[];
}

/** The descriptor chain of one rule in the service configuration (its limit on the last entry). */
export function serviceDescriptorForRule(rules: RateLimitRule[], index: number): ServiceDescriptor {
  const rule = rules[index];
  const k = domainRuleIndex(rules, index);
  const shadowMode = rule.shadowMode === true;
  const chain: { key: string; value?: string }[] = [];
  rule.headerMatches.forEach((match, m) => chain.push(match.distinct ? { key: ruleMatchKey(k, m) } : { key: ruleMatchKey(k, m), value: ruleMatchKey(k, m) }));
  if (rule.methodMatches.length > 0) chain.push({ key: `rule-${k}-method`, value: `rule-${k}-method` });
  if (rule.pathMatch) chain.push({ key: `rule-${k}-path`, value: `rule-${k}-path` });
  if (rule.cidrMatch) {
    chain.push({ key: 'masked_remote_address', value: rule.cidrMatch.invert ? `invert:${rule.cidrMatch.cidr}` : rule.cidrMatch.cidr });
    if (rule.cidrMatch.distinct) chain.push({ key: 'remote_address' });
  }
  rule.queryParamMatches.forEach((match, m) => {
    const key = ruleMatchKey(k, rule.headerMatches.length + m);
    chain.push(match.distinct ? { key } : { key, value: key });
  });
  if (!isMatchSet(rule)) chain.push({ key: ruleMatchKey(k, -1), value: ruleMatchKey(k, -1) });
  let node: ServiceDescriptor | undefined;
  for (let i = chain.length - 1; i >= 0; i--) {
    node = {
      ...chain[i],
      ...(node === undefined ? { rateLimit: { requestsPerUnit: rule.limit.requests, unit: rule.limit.unit } } : {}),
      shadowMode,
      descriptors: node ? [node] : [],
    };
  }
  return node as ServiceDescriptor;
}

/** The service configuration for every domain of these listeners, as EG hands it to envoyproxy/ratelimit. */
export function buildRateLimitServiceConfig(
  listeners: readonly { readonly name: string; readonly routes: readonly { readonly name: string; readonly rateLimitRules: RateLimitRule[] }[] }[],
): RateLimitServiceConfig[] {
  const byDomain = new Map<string, ServiceDescriptor[]>();
  for (const listener of listeners) {
    for (const route of listener.routes) {
      const rules = route.rateLimitRules;
      rules.forEach((rule, index) => {
        const domain = ruleDomain(rule, listener.name);
        const topKey = rule.shared ? rule.name : route.name;
        const tops = byDomain.get(domain) ?? [];
        byDomain.set(domain, tops);
        let top = tops.find((d) => d.key === topKey);
        if (!top) {
          top = { key: topKey, value: topKey, shadowMode: false, descriptors: [] };
          tops.push(top);
        }
        const descriptor = serviceDescriptorForRule(rules, index);
        // EG skips a chain equal (keys and values) to one already there: the first rule's limit wins.
        if (!top.descriptors.some((existing) => sameChain(existing, descriptor))) top.descriptors.push(descriptor);
      });
    }
  }
  return [...byDomain].map(([domain, descriptors]) => ({ domain, descriptors }));
}

function sameChain(a: ServiceDescriptor, b: ServiceDescriptor): boolean {
  return a.key === b.key && a.value === b.value && a.descriptors.length === b.descriptors.length && a.descriptors.every((d, i) => sameChain(d, b.descriptors[i]));
}

/**
 * envoyproxy/ratelimit's limit lookup: walk the entries, at each level trying `key_value`, then `key` alone; the
 * limit applies only when the last entry lands on a node that has one.
 */
export function findServiceLimit(descriptors: readonly ServiceDescriptor[], entries: readonly DescriptorEntry[]): ServiceDescriptor | undefined {
  let level: readonly ServiceDescriptor[] = descriptors;
  let found: ServiceDescriptor | undefined;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    const next = level.find((d) => d.key === entry.key && d.value === entry.value) ?? level.find((d) => d.key === entry.key && d.value === undefined);
    if (!next) return undefined;
    if (i === entries.length - 1) found = next.rateLimit ? next : undefined;
    level = next.descriptors;
  }
  return found;
}

// ---------------------------------------------------------------------------------------------------------------
// Descriptors on a request (Envoy descriptor producers, filters/common/ratelimit_config)

export interface DescriptorEntry {
  readonly key: string;
  readonly value: string;
}

export interface RateLimitDescriptor {
  readonly entries: DescriptorEntry[];
  /** Per-descriptor hits; undefined = the request's hits addend (1). May be 0 (check only). */
  readonly hitsAddend?: number;
  /** Limit override from dynamic metadata (`limit.fromMetadata`). */
  readonly limit?: ServiceLimit;
  readonly xRateLimitOption?: 'OFF' | 'DRAFT_VERSION_03';
}

export interface DescriptorContext {
  readonly headers: HeaderMap;
  readonly downstreamAddress: string;
  readonly dynamicMetadata: ReadonlyMap<string, Record<string, unknown>>;
}

/** Envoy caps a hits addend read from a format at 1e9. */
const MAX_HITS_ADDEND = 1_000_000_000;

/**
 * The descriptor one `rate_limits` entry produces for a request, or undefined when any action declines (a header
 * match that does not match, a missing Distinct header or query parameter, an address outside the CIDR) or when
 * the hits addend format does not give a number in [0, 1e9] (missing metadata = no descriptor = no charge).
 */
export function populateDescriptor(rateLimit: RouteRateLimit, context: DescriptorContext): RateLimitDescriptor | undefined {
  const entries: DescriptorEntry[] = [];
  for (const action of rateLimit.actions) {
    const entry = evaluateAction(action, context);
    if (!entry) return undefined;
    entries.push(entry);
  }
  let hitsAddend: number | undefined;
  if (rateLimit.hitsAddend && 'format' in rateLimit.hitsAddend) {
    hitsAddend = hitsFromFormat(rateLimit.hitsAddend.format, context.dynamicMetadata);
    if (hitsAddend === undefined) return undefined;
  } else if (rateLimit.hitsAddend) {
    hitsAddend = rateLimit.hitsAddend.number;
  }
  const limit = rateLimit.limitOverride ? limitFromMetadata(rateLimit.limitOverride, context.dynamicMetadata) : undefined;
  return {
    entries,
    ...(hitsAddend !== undefined ? { hitsAddend } : {}),
    ...(limit ? { limit } : {}),
    ...(rateLimit.xRateLimitOption ? { xRateLimitOption: rateLimit.xRateLimitOption } : {}),
  };
}

function evaluateAction(action: RateLimitAction, context: DescriptorContext): DescriptorEntry | undefined {
  switch (action.type) {
    case 'genericKey':
      return { key: action.descriptorKey, value: action.descriptorValue };
    case 'requestHeaders': {
      // Only the first value is used; a missing header drops the whole descriptor (skip_if_absent false).
      const value = context.headers.get(action.headerName);
      return value === undefined ? undefined : { key: action.descriptorKey, value };
    }
    case 'headerValueMatch': {
      const value = context.headers.getJoined(action.header.name);
      const matched = value !== undefined && stringMatches(action.header.match, value);
      return matched === action.expectMatch ? { key: action.descriptorKey, value: action.descriptorValue } : undefined;
    }
    case 'remoteAddressMatch': {
      const ip = clientIp(context.downstreamAddress);
      if (ip === undefined) return undefined;
      const inRange = addressInRange(ip, action.addressPrefix, action.prefixLen);
      if (inRange === action.invert) return undefined;
      return { key: action.descriptorKey, value: action.descriptorValue === CLIENT_IP_FORMAT ? ip : action.descriptorValue };
    }
    case 'queryParameters': {
      const value = parseQuery(context.headers.get(':path') ?? '').get(action.queryParameterName);
      return value === undefined ? undefined : { key: action.descriptorKey, value };
    }
    case 'queryParameterValueMatch': {
      const value = parseQuery(context.headers.get(':path') ?? '').get(action.queryParameter.name);
      const matched = value !== undefined && stringMatches(action.queryParameter.match, value);
      return matched === action.expectMatch ? { key: action.descriptorKey, value: action.descriptorValue } : undefined;
    }
  }
}

function stringMatches(matcher: StringMatcher, value: string): boolean {
  if (matcher.exact !== undefined) return value === matcher.exact;
  if (matcher.prefix !== undefined) return value.startsWith(matcher.prefix);
  if (matcher.safeRegex !== undefined) return fullMatch(matcher.safeRegex, value);
  return false;
}

function clientIp(address: string): string | undefined {
  const ip = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
  return isIPv4(ip) || isIPv6(ip) ? ip : undefined;
}

function addressInRange(ip: string, prefix: string, prefixLen: number): boolean {
  const family = isIPv6(prefix) ? 'ipv6' : 'ipv4';
  if ((family === 'ipv6') !== isIPv6(ip)) return false;
  const list = new BlockList();
  list.addSubnet(prefix, prefixLen, family);
  return list.check(ip, family);
}

const METADATA_FORMAT = /^%DYNAMIC_METADATA\(([^:)]+)((?::[^:)]+)+)\)%$/;

/** `%DYNAMIC_METADATA(ns:key[:sub...])%` -> a hits addend, as Envoy reads it: numbers, or strings that parse as one. */
export function hitsFromFormat(format: string, metadata: ReadonlyMap<string, Record<string, unknown>>): number | undefined {
  const match = METADATA_FORMAT.exec(format);
  if (!match) throw new Error(`unsupported hits_addend format ${JSON.stringify(format)}`);
  let value: unknown = metadata.get(match[1]);
  for (const segment of match[2].slice(1).split(':')) {
    value = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)[segment] : undefined;
  }
  let hits: number;
  if (typeof value === 'number') hits = value;
  else if (typeof value === 'string' && /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(value)) hits = Number(value);
  else return undefined;
  if (!Number.isFinite(hits) || hits < 0 || hits > MAX_HITS_ADDEND) return undefined;
  return Math.trunc(hits);
}

const ENVOY_UNITS: Record<string, RateLimitUnit> = {
  SECOND: 'Second',
  MINUTE: 'Minute',
  HOUR: 'Hour',
  DAY: 'Day',
  WEEK: 'Week',
  MONTH: 'Month',
  YEAR: 'Year',
};

function limitFromMetadata(key: { namespace: string; key: string }, metadata: ReadonlyMap<string, Record<string, unknown>>): ServiceLimit | undefined {
  const value = metadata.get(key.namespace)?.[key.key];
  if (value === null || typeof value !== 'object') return undefined;
  const { requests_per_unit: requests, unit } = value as Record<string, unknown>;
  if (typeof requests !== 'number' || typeof unit !== 'string' || !(unit in ENVOY_UNITS)) return undefined;
  return { requestsPerUnit: Math.max(0, Math.min(4_294_967_295, Math.trunc(requests))), unit: ENVOY_UNITS[unit] };
}

// ---------------------------------------------------------------------------------------------------------------
// The rate-limit service (envoyproxy/ratelimit, Redis fixed window, no local cache: EG's deployment)

export type LimitCode = 'OK' | 'OVER_LIMIT';

export interface DescriptorStatus {
  readonly code: LimitCode;
  readonly currentLimit?: ServiceLimit;
  readonly limitRemaining: number;
  readonly durationUntilResetSeconds?: number;
  /** The counter key charged (empty when no limit applied). */
  readonly key: string;
}

export interface RateLimitResponse {
  readonly overallCode: LimitCode;
  readonly statuses: DescriptorStatus[];
}

/** Where the service looks up limits: a domain's descriptor trees (the service configuration). */
export type LimitLookup = (descriptor: RateLimitDescriptor) => { limit: ServiceLimit; shadowMode: boolean } | undefined;

/** A lookup in the descriptor trees of one domain (envoyproxy/ratelimit `GetLimit`). */
export function lookupIn(descriptors: readonly ServiceDescriptor[]): LimitLookup {
  return (descriptor) => {
    if (descriptor.limit) return { limit: descriptor.limit, shadowMode: false };
    const node = findServiceLimit(descriptors, descriptor.entries);
    return node?.rateLimit ? { limit: node.rateLimit, shadowMode: node.shadowMode } : undefined;
  };
}

export class RateLimitService {
  private readonly now: () => number;

  constructor(
    private readonly store: CounterStore,
    options: { now?: () => number } = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  /**
   * One `ShouldRateLimit` call. `hitsAddend` is the request-level addend (Envoy sends 0 unless a filter state
   * sets it, and the service then uses 1); a descriptor's own addend wins, 0 included. Over limit means the count
   * after the increment exceeds the limit: a check-only request (0 hits) at exactly the limit still passes.
   */
  async shouldRateLimit(domain: string, descriptors: readonly RateLimitDescriptor[], hitsAddend: number, limits: LimitLookup): Promise<RateLimitResponse> {
    const nowSeconds = Math.floor(this.now() / 1000);
    const statuses = await Promise.all(
      descriptors.map(async (descriptor): Promise<DescriptorStatus> => {
        const found = limits(descriptor);
        if (!found) return { code: 'OK', limitRemaining: 0, key: '' };
        const hits = descriptor.hitsAddend ?? Math.max(1, hitsAddend);
        const window = unitSeconds(found.limit.unit);
        const key = counterKey(domain, descriptor.entries, found.limit.unit, nowSeconds);
        const after = await this.store.incrementAndGet(key, hits, window);
        const over = after > found.limit.requestsPerUnit;
        return {
          code: over && !found.shadowMode ? 'OVER_LIMIT' : 'OK',
          currentLimit: found.limit,
          limitRemaining: over ? 0 : found.limit.requestsPerUnit - after,
          durationUntilResetSeconds: window - (nowSeconds % window),
          key,
        };
      }),
    );
    return { overallCode: statuses.some((s) => s.code === 'OVER_LIMIT') ? 'OVER_LIMIT' : 'OK', statuses };
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

/** envoyproxy/ratelimit's cache key: `<domain>_<key>_<value>_..._<window start in unix seconds>`. */
export function counterKey(domain: string, entries: readonly DescriptorEntry[], unit: RateLimitUnit, nowSeconds: number): string {
  const window = unitSeconds(unit);
  let key = `${domain}_`;
  for (const entry of entries) key += `${entry.key}_${entry.value}_`;
  return key + String(Math.floor(nowSeconds / window) * window);
}

// ---------------------------------------------------------------------------------------------------------------
// The HTTP filter (Envoy's ratelimit filter, one per domain, as EG chains them)

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
  /** ClientTrafficPolicy `headers.disableRateLimitHeaders`: EG otherwise enables the draft-03 `x-ratelimit-*` headers. */
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
export function createRateLimitFilter(service: RateLimitService, listenerName: string, options: RateLimitFilterOptions = {}): HttpFilter {
  const timeoutMs = options.timeoutMs ?? 1000;
  // Routes are immutable model data: their actions and limits are built once.
  const compiled = new WeakMap<RateLimitedRoute, { domains: string[]; perDomain: Map<string, RouteRateLimit[]>; lookups: Map<string, LimitLookup> }>();
  const compile = (route: RateLimitedRoute) => {
    let entry = compiled.get(route);
    if (!entry) {
      const listener = route.listenerName ?? listenerName;
      const perDomain = buildRouteRateLimits(listener, route.name, route.rateLimitRules);
      const configs = buildRateLimitServiceConfig([{ name: listener, routes: [route] }]);
      entry = { domains: [...perDomain.keys()].sort(compareGoStrings), perDomain, lookups: new Map(configs.map((c) => [c.domain, lookupIn(c.descriptors)])) };
      compiled.set(route, entry);
    }
    return entry;
  };
  // Per stream: the domains whose filter decoded the request, and the x-ratelimit headers to add.
  const streams = new WeakMap<StreamContext, { calls: DomainCall[]; responseHeaders: [string, string][]; calling: boolean }>();

  const callWithTimeout = (domain: string, descriptors: RateLimitDescriptor[], lookup: LimitLookup): Promise<RateLimitResponse> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`rate-limit service timed out after ${timeoutMs} ms`)), timeoutMs);
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
        const call: DomainCall = { domain, rateLimits: perDomain.get(domain) ?? [], lookup: lookups.get(domain) ?? lookupIn([]) };
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
  const context: DescriptorContext = { headers: stream.requestHeaders, downstreamAddress: stream.downstreamAddress, dynamicMetadata: stream.dynamicMetadata };
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
export function xRateLimitHeaders(statuses: readonly DescriptorStatus[], descriptors: readonly RateLimitDescriptor[], enabledByDefault: boolean): [string, string][] {
  const enabled = (i: number) => {
    const option = descriptors[i]?.xRateLimitOption;
    return option === undefined ? enabledByDefault : option === 'DRAFT_VERSION_03';
  };
  let tightest = -1;
  statuses.forEach((status, i) => {
    if (status.currentLimit && (tightest < 0 || status.limitRemaining < statuses[tightest].limitRemaining)) tightest = i;
  });
  if (tightest < 0 || !enabled(tightest)) return [];
  let policy = '';
  statuses.forEach((status, i) => {
    if (status.currentLimit && enabled(i)) policy += `, ${status.currentLimit.requestsPerUnit};w=${unitSeconds(status.currentLimit.unit)}`;
  });
  const top = statuses[tightest];
  return [
    ['x-ratelimit-limit', `${top.currentLimit?.requestsPerUnit}${policy}`],
    ['x-ratelimit-remaining', String(top.limitRemaining)],
    ['x-ratelimit-reset', String(top.durationUntilResetSeconds ?? 0)],
  ];
}
