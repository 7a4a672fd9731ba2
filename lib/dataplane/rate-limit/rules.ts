/**
 * BackendTrafficPolicy `rateLimit.global` -> Envoy Gateway v1.9's IR rules (`<ns>/<policy>/rule/<i>`), and EG's
 * gateway/route policy merge.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { optionalListField, optionalObjectField, policySpec, type PolicyObject } from '../objects';
import { compileRe2 } from '../re2';

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
export type RateLimitCost =
  { readonly number: number } | { readonly metadataNamespace: string; readonly metadataKey: string };

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

export function isMatchSet(rule: RateLimitRule): boolean {
  return (
    rule.headerMatches.length > 0 ||
    rule.methodMatches.length > 0 ||
    rule.pathMatch !== undefined ||
    rule.cidrMatch !== undefined ||
    rule.queryParamMatches.length > 0
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Policy -> IR (EG internal/gatewayapi/backendtrafficpolicy.go buildGlobalRateLimit / buildRateLimitRule)

const UNITS = new Set<string>(Object.keys(UNIT_SECONDS));
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
const MAX_RULES = 256;

/** The global rate-limit rules of a BackendTrafficPolicy, named as EG names them. Throws on what EG rejects. */
export function rateLimitRulesFromPolicy(policy: PolicyObject): RateLimitRule[] {
  const { namespace, name, where, spec } = policySpec(policy, 'BackendTrafficPolicy');
  const rateLimit = optionalObjectField(spec.rateLimit, `${where}: spec.rateLimit`);
  if (!rateLimit) return [];
  if (rateLimit.type !== undefined && rateLimit.type !== 'Global' && rateLimit.type !== 'Local') {
    throw new Error(`${where}: invalid rateLimit type ${JSON.stringify(rateLimit.type)}`);
  }
  if (rateLimit.local !== undefined)
    throw new Error(`${where}: local rate limits are not modelled by the local data plane`);
  const global = optionalObjectField(rateLimit.global, `${where}: spec.rateLimit.global`);
  if (!global) {
    if (rateLimit.type === 'Global') throw new Error(`${where}: global configuration empty for rateLimit`);
    return [];
  }
  const rules = global.rules;
  if (!Array.isArray(rules) || rules.length === 0)
    throw new Error(`${where}: spec.rateLimit.global.rules must be a non-empty list`);
  if (rules.length > MAX_RULES) throw new Error(`${where}: at most ${MAX_RULES} global rules are allowed`);
  return rules.map((rule, index) =>
    buildRule(rule, `${namespace}/${name}/rule/${index}`, `${where}: spec.rateLimit.global.rules[${index}]`),
  );
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
    if (
      headers.length === 0 &&
      methods.length === 0 &&
      selector.path === undefined &&
      selector.sourceCIDR === undefined &&
      queryParams.length === 0
    ) {
      throw new Error(`${at}: at least one of headers, methods, path, sourceCIDR or queryParams must be specified`);
    }
    headers.forEach((h, i) => headerMatches.push(keyedMatch(h, `${at}.headers[${i}]`, 'header')));
    methods.forEach((m, i) => {
      const method = optionalObjectField(m, `${at}.methods[${i}]`) ?? {};
      if (typeof method.value !== 'string' || !METHODS.has(method.value))
        throw new Error(`${at}.methods[${i}].value must be an HTTP method name`);
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
    ...(fromMetadata
      ? { limitFromMetadata: { namespace: String(fromMetadata.namespace ?? ''), key: String(fromMetadata.key ?? '') } }
      : {}),
    ...(cost?.request !== undefined ? { requestCost: costOf(cost.request, `${where}.cost.request`) } : {}),
    ...(cost?.response !== undefined ? { responseCost: costOf(cost.response, `${where}.cost.response`) } : {}),
    ...(rule.shadowMode === true ? { shadowMode: true } : {}),
    ...(xRateLimitHeadersOf(rule.xRateLimitHeaders, `${where}.xRateLimitHeaders`) ?? {}),
  };
}

function xRateLimitHeadersOf(
  value: unknown,
  where: string,
): { xRateLimitHeaders: 'Off' | 'DraftVersion03' } | undefined {
  if (value === undefined) return undefined;
  if (value !== 'Off' && value !== 'DraftVersion03') throw new Error(`${where} must be Off or DraftVersion03`);
  return { xRateLimitHeaders: value };
}

function keyedMatch(raw: unknown, where: string, kind: 'header' | 'query'): RateLimitStringMatch {
  const match = optionalObjectField(raw, where) ?? {};
  if (typeof match.name !== 'string' || match.name.length === 0 || match.name.length > 256)
    throw new Error(`${where}.name must be a non-empty string`);
  const type = match.type ?? 'Exact';
  const value = match.value;
  if (value !== undefined && (typeof value !== 'string' || value.length > 1024))
    throw new Error(`${where}.value must be a string of at most 1024 characters`);
  const name = match.name;
  switch (type) {
    case 'Exact':
      if (value === undefined || (kind === 'query' && value === ''))
        throw new Error(`${where}: value is required for an Exact ${kind} match`);
      return { name, exact: value, ...invertOf(match) };
    case 'RegularExpression':
      if (value === undefined || (kind === 'query' && value === ''))
        throw new Error(`${where}: value is required for a RegularExpression ${kind} match`);
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
      return value === '/'
        ? { prefix: '/', ...invertOf(path) }
        : { safeRegex: pathSeparatedPrefixRegex(value), ...invertOf(path) };
    case 'Exact':
      return { exact: value, ...invertOf(path) };
    case 'RegularExpression':
      compileRe2(value, where);
      return { safeRegex: value, ...invertOf(path) };
    default:
      throw new Error(`${where}.type must be Exact, PathPrefix or RegularExpression`);
  }
}

/**
 * EG's `regex.PathSeparatedPrefixRegex`: the prefix (trailing `/` trimmed, quoted), then `/`, `?`, `#`, `;` or the end.
 */
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
  if (
    extra !== undefined ||
    (!v6 && !isIPv4(address)) ||
    !Number.isInteger(maskLen) ||
    maskLen < 0 ||
    maskLen > (v6 ? 128 : 32)
  ) {
    throw new Error(`${where}.value ${JSON.stringify(source.value)} is not a valid CIDR`);
  }
  const type = source.type ?? 'Exact';
  if (type !== 'Exact' && type !== 'Distinct') throw new Error(`${where}.type must be Exact or Distinct`);
  return {
    cidr: source.value,
    addressPrefix: address,
    maskLen,
    isIPv6: v6,
    distinct: type === 'Distinct',
    invert: source.invert === true,
  };
}

function costOf(raw: unknown, where: string): RateLimitCost {
  const cost = optionalObjectField(raw, where) ?? {};
  if (cost.number !== undefined && cost.metadata !== undefined)
    throw new Error(`${where}: only one of number or metadata can be specified`);
  if (cost.from === 'Number' || (cost.from === undefined && cost.number !== undefined)) {
    const n = cost.number ?? 0;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
      throw new Error(`${where}.number must be a non-negative integer`);
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
