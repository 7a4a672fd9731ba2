/**
 * IR rules -> what Envoy and the rate-limit service are configured with (EG's xDS translator and
 * `BuildRateLimitServiceConfig`), and the descriptors one request produces from a route's actions (Envoy's
 * descriptor producers).
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { HeaderMap } from '../filter';
import { fullMatch } from '../re2';
import { parseQuery } from '../route-match';
import {
  isMatchSet,
  type RateLimitCost,
  type RateLimitRule,
  type RateLimitStringMatch,
  type RateLimitUnit,
} from './rules';

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
export function buildRouteRateLimits(
  listenerName: string,
  routeName: string,
  rules: RateLimitRule[],
): Map<string, RouteRateLimit[]> {
  const byDomain = new Map<string, RouteRateLimit[]>();
  rules.forEach((rule, index) => {
    const domain = ruleDomain(rule, listenerName);
    const k = domainRuleIndex(rules, index);
    const methods: (RateLimitStringMatch | undefined)[] =
      rule.methodMatches.length > 0 ? rule.methodMatches : [undefined];
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
            : {
                type: 'headerValueMatch',
                descriptorKey: key,
                descriptorValue: key,
                expectMatch: match.invert !== true,
                header: { name: match.name ?? '', match: matcherOf(match) },
              },
        );
      });
      if (method) {
        const key = `rule-${k}-method`;
        actions.push({
          type: 'headerValueMatch',
          descriptorKey: key,
          descriptorValue: key,
          expectMatch: method.invert !== true,
          header: { name: ':method', match: matcherOf(method) },
        });
      }
      if (rule.pathMatch) {
        const key = `rule-${k}-path`;
        actions.push({
          type: 'headerValueMatch',
          descriptorKey: key,
          descriptorValue: key,
          expectMatch: rule.pathMatch.invert !== true,
          header: { name: ':path', match: matcherOf(rule.pathMatch) },
        });
      }
      if (rule.cidrMatch) {
        const c = rule.cidrMatch;
        const range = { addressPrefix: c.addressPrefix, prefixLen: c.maskLen, invert: c.invert };
        actions.push({
          type: 'remoteAddressMatch',
          descriptorKey: 'masked_remote_address',
          descriptorValue: c.invert ? `invert:${c.cidr}` : c.cidr,
          ...range,
        });
        if (c.distinct)
          actions.push({
            type: 'remoteAddressMatch',
            descriptorKey: 'remote_address',
            descriptorValue: CLIENT_IP_FORMAT,
            ...range,
          });
      }
      rule.queryParamMatches.forEach((match, m) => {
        // Query matches continue the header matches' index sequence.
        const key = ruleMatchKey(k, rule.headerMatches.length + m);
        actions.push(
          match.distinct
            ? { type: 'queryParameters', queryParameterName: match.name ?? '', descriptorKey: key }
            : {
                type: 'queryParameterValueMatch',
                descriptorKey: key,
                descriptorValue: key,
                expectMatch: match.invert !== true,
                queryParameter: { name: match.name ?? '', match: matcherOf(match) },
              },
        );
      });
      if (!isMatchSet(rule)) {
        const key = ruleMatchKey(k, -1);
        actions.push({ type: 'genericKey', descriptorKey: key, descriptorValue: key });
      }
      const shared = {
        ...(rule.limitFromMetadata ? { limitOverride: rule.limitFromMetadata } : {}),
        ...(rule.xRateLimitHeaders
          ? { xRateLimitOption: rule.xRateLimitHeaders === 'Off' ? ('OFF' as const) : ('DRAFT_VERSION_03' as const) }
          : {}),
      };
      list.push({ actions, applyOnStreamDone: false, ...hitsAddendOf(rule.requestCost), ...shared });
      if (rule.responseCost)
        list.push({ actions, applyOnStreamDone: true, ...hitsAddendOf(rule.responseCost), ...shared });
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
export function listenerRateLimitDomains(
  listenerName: string,
  routes: readonly { readonly rateLimitRules: readonly RateLimitRule[] }[],
): string[] {
  const domains = new Set<string>([listenerName]);
  for (const route of routes)
    for (const rule of route.rateLimitRules) if (rule.shared) domains.add(stripRuleIndexSuffix(rule.name));
  return [...domains].sort(compareGoStrings);
}

export function compareGoStrings(a: string, b: string): number {
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
  rule.headerMatches.forEach((match, m) =>
    chain.push(match.distinct ? { key: ruleMatchKey(k, m) } : { key: ruleMatchKey(k, m), value: ruleMatchKey(k, m) }),
  );
  if (rule.methodMatches.length > 0) chain.push({ key: `rule-${k}-method`, value: `rule-${k}-method` });
  if (rule.pathMatch) chain.push({ key: `rule-${k}-path`, value: `rule-${k}-path` });
  if (rule.cidrMatch) {
    chain.push({
      key: 'masked_remote_address',
      value: rule.cidrMatch.invert ? `invert:${rule.cidrMatch.cidr}` : rule.cidrMatch.cidr,
    });
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
  listeners: readonly {
    readonly name: string;
    readonly routes: readonly { readonly name: string; readonly rateLimitRules: RateLimitRule[] }[];
  }[],
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
  return (
    a.key === b.key &&
    a.value === b.value &&
    a.descriptors.length === b.descriptors.length &&
    a.descriptors.every((d, i) => sameChain(d, b.descriptors[i]))
  );
}

/**
 * envoyproxy/ratelimit's limit lookup: walk the entries, at each level trying `key_value`, then `key` alone; the
 * limit applies only when the last entry lands on a node that has one.
 */
export function findServiceLimit(
  descriptors: readonly ServiceDescriptor[],
  entries: readonly DescriptorEntry[],
): ServiceDescriptor | undefined {
  let level: readonly ServiceDescriptor[] = descriptors;
  let found: ServiceDescriptor | undefined;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    const next =
      level.find((d) => d.key === entry.key && d.value === entry.value) ??
      level.find((d) => d.key === entry.key && d.value === undefined);
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
  /**
   * The metadata named the unit `UNKNOWN`: Envoy sends that override, and the rate-limit service fails the call on it.
   */
  readonly invalidLimitUnit?: true;
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
export function populateDescriptor(
  rateLimit: RouteRateLimit,
  context: DescriptorContext,
): RateLimitDescriptor | undefined {
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
  const limit = rateLimit.limitOverride
    ? limitFromMetadata(rateLimit.limitOverride, context.dynamicMetadata)
    : undefined;
  return {
    entries,
    ...(hitsAddend !== undefined ? { hitsAddend } : {}),
    ...(limit === 'UNKNOWN' ? { invalidLimitUnit: true } : limit ? { limit } : {}),
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
      return {
        key: action.descriptorKey,
        value: action.descriptorValue === CLIENT_IP_FORMAT ? ip : action.descriptorValue,
      };
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
export function hitsFromFormat(
  format: string,
  metadata: ReadonlyMap<string, Record<string, unknown>>,
): number | undefined {
  const match = METADATA_FORMAT.exec(format);
  if (!match) throw new Error(`unsupported hits_addend format ${JSON.stringify(format)}`);
  let value: unknown = metadata.get(match[1]);
  for (const segment of match[2].slice(1).split(':')) {
    value =
      value !== null && typeof value === 'object' && !Array.isArray(value)
        ? (value as Record<string, unknown>)[segment]
        : undefined;
  }
  let hits: number;
  if (typeof value === 'number') hits = value;
  else if (typeof value === 'string' && /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(value))
    hits = Number(value);
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

/**
 * Envoy's `DynamicMetadataRateLimitOverride::populateOverride` (`source/common/router/router_ratelimit.cc`): the value
 * at `<namespace>` / `<key>` must be a struct with a number `requests_per_unit` and a string `unit` that
 * `RateLimitUnit_Parse` accepts, i.e. exactly an upper-case enum name (`SECOND` ... `YEAR`, `WEEK`; `UNKNOWN` parses
 * too). Anything else (`"Month"`, a string number, a missing field) gives no override: the configured limit applies.
 * The number is cast to uint32 (clamped here).
 */
function limitFromMetadata(
  key: { namespace: string; key: string },
  metadata: ReadonlyMap<string, Record<string, unknown>>,
): ServiceLimit | 'UNKNOWN' | undefined {
  const value = metadata.get(key.namespace)?.[key.key];
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const { requests_per_unit: requests, unit } = value as Record<string, unknown>;
  if (typeof requests !== 'number' || !Number.isFinite(requests) || typeof unit !== 'string') return undefined;
  if (unit === 'UNKNOWN') return 'UNKNOWN';
  if (!Object.prototype.hasOwnProperty.call(ENVOY_UNITS, unit)) return undefined;
  return { requestsPerUnit: Math.max(0, Math.min(4_294_967_295, Math.trunc(requests))), unit: ENVOY_UNITS[unit] };
}
