/**
 * Conversions between our rate-limit types and the shapes Envoy Gateway's golden files print (EG IR YAML, Envoy
 * route JSON in camelCase, the Go struct dump of `rateLimitsByDomain`, the ratelimit service YAML), so tests compare
 * like with like. Test-only.
 */
import type {
  RateLimitAction,
  RateLimitRule,
  RateLimitStringMatch,
  RateLimitUnit,
  RouteRateLimit,
  ServiceDescriptor,
  StringMatcher,
} from '../../../lib/dataplane/rate-limit';

type Json = Record<string, any>;

const capitalize = (unit: string): RateLimitUnit =>
  (unit.charAt(0).toUpperCase() + unit.slice(1).toLowerCase()) as RateLimitUnit;

function irMatch(m: Json): RateLimitStringMatch {
  return {
    ...(m.name ? { name: m.name } : {}),
    ...(m.exact !== undefined ? { exact: m.exact } : {}),
    ...(m.prefix !== undefined ? { prefix: m.prefix } : {}),
    ...(m.safeRegex !== undefined ? { safeRegex: m.safeRegex } : {}),
    ...(m.distinct ? { distinct: true } : {}),
    ...(m.invert ? { invert: true } : {}),
  };
}

/** An EG IR rule (as in `xds-translator/in/**` or `xdsIR` of a gatewayapi golden) -> our RateLimitRule. */
export function ruleFromIr(ir: Json): RateLimitRule {
  const cost = (c: Json | undefined) => {
    if (!c) return undefined;
    if (c.number !== undefined) return { number: Number(c.number) };
    const m = /^%DYNAMIC_METADATA\(([^:]+):([^)]+)\)%$/.exec(c.format);
    if (!m) throw new Error(`unexpected cost ${JSON.stringify(c)}`);
    return { metadataNamespace: m[1], metadataKey: m[2] };
  };
  const requestCost = cost(ir.requestCost);
  const responseCost = cost(ir.responseCost);
  const cidr = ir.cidrMatch;
  return {
    name: ir.name,
    shared: ir.shared === true,
    headerMatches: (ir.headerMatches ?? []).map(irMatch),
    methodMatches: (ir.methodMatches ?? []).map(irMatch),
    ...(ir.pathMatch ? { pathMatch: irMatch(ir.pathMatch) } : {}),
    ...(cidr
      ? {
          cidrMatch: {
            cidr: cidr.cidr,
            addressPrefix: cidr.cidr.split('/')[0],
            maskLen: cidr.maskLen,
            isIPv6: cidr.isIPv6 === true,
            distinct: cidr.distinct === true,
            invert: cidr.invert === true,
          },
        }
      : {}),
    queryParamMatches: (ir.queryParamMatches ?? []).map(irMatch),
    limit: { requests: ir.limit.requests, unit: capitalize(ir.limit.unit) },
    ...(ir.limit.fromMetadata
      ? { limitFromMetadata: { namespace: ir.limit.fromMetadata.namespace, key: ir.limit.fromMetadata.key } }
      : {}),
    ...(requestCost ? { requestCost } : {}),
    ...(responseCost ? { responseCost } : {}),
    ...(ir.shadowMode ? { shadowMode: true } : {}),
  };
}

/** Our RateLimitRule -> EG IR JSON as the gatewayapi goldens print it (defaults and false flags dropped). */
export function ruleToIr(rule: RateLimitRule): Json {
  const match = (m: RateLimitStringMatch): Json => ({
    ...(m.name ? { name: m.name } : {}),
    ...(m.exact !== undefined ? { exact: m.exact } : {}),
    ...(m.prefix !== undefined ? { prefix: m.prefix } : {}),
    ...(m.safeRegex !== undefined ? { safeRegex: m.safeRegex } : {}),
    ...(m.distinct ? { distinct: true } : {}),
    ...(m.invert ? { invert: true } : {}),
  });
  const cost = (c: RateLimitRule['requestCost']) =>
    c === undefined
      ? undefined
      : 'number' in c
        ? { number: c.number }
        : { format: `%DYNAMIC_METADATA(${c.metadataNamespace}:${c.metadataKey})%` };
  return stripEmpty({
    name: rule.name,
    shared: rule.shared || undefined,
    headerMatches: rule.headerMatches.map(match),
    methodMatches: rule.methodMatches.length > 0 ? rule.methodMatches.map(match) : undefined,
    pathMatch: rule.pathMatch ? match(rule.pathMatch) : undefined,
    cidrMatch: rule.cidrMatch
      ? {
          cidr: rule.cidrMatch.cidr,
          distinct: rule.cidrMatch.distinct,
          invert: rule.cidrMatch.invert,
          isIPv6: rule.cidrMatch.isIPv6,
          maskLen: rule.cidrMatch.maskLen,
        }
      : undefined,
    limit: {
      requests: rule.limit.requests,
      unit: rule.limit.unit,
      ...(rule.limitFromMetadata ? { fromMetadata: { ...rule.limitFromMetadata } } : {}),
    },
    requestCost: cost(rule.requestCost),
    responseCost: cost(rule.responseCost),
    shadowMode: rule.shadowMode || undefined,
  });
}

/** Drops `distinct: false`, `name: ""` and undefined fields the way EG's YAML printing omits them. */
export function normalizeIr(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalizeIr);
  if (value && typeof value === 'object') {
    const out: Json = {};
    for (const [k, v] of Object.entries(value)) {
      if (
        v === undefined ||
        (k === 'distinct' && v === false) ||
        (k === 'name' && v === '') ||
        (k === 'invert' && v === false && !('cidr' in value))
      )
        continue;
      out[k] = normalizeIr(v);
    }
    return out;
  }
  return value;
}

function stripEmpty(value: Json): Json {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}

// ---- Envoy route rate limits ----

function matcherJson(m: StringMatcher): Json {
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  return { safeRegex: { regex: m.safeRegex } };
}

function actionJson(action: RateLimitAction): Json {
  switch (action.type) {
    case 'genericKey':
      return { genericKey: { descriptorKey: action.descriptorKey, descriptorValue: action.descriptorValue } };
    case 'requestHeaders':
      return { requestHeaders: { descriptorKey: action.descriptorKey, headerName: action.headerName } };
    case 'headerValueMatch':
      return {
        headerValueMatch: {
          descriptorKey: action.descriptorKey,
          descriptorValue: action.descriptorValue,
          expectMatch: action.expectMatch,
          headers: [{ name: action.header.name, stringMatch: matcherJson(action.header.match) }],
        },
      };
    case 'remoteAddressMatch':
      return {
        remoteAddressMatch: {
          descriptorKey: action.descriptorKey,
          descriptorValue: action.descriptorValue,
          addressMatcher: {
            ranges: [{ addressPrefix: action.addressPrefix, prefixLen: action.prefixLen }],
            ...(action.invert ? { invertMatch: true } : {}),
          },
        },
      };
    case 'queryParameters':
      return {
        queryParameters: { descriptorKey: action.descriptorKey, queryParameterName: action.queryParameterName },
      };
    case 'queryParameterValueMatch':
      return {
        queryParameterValueMatch: {
          descriptorKey: action.descriptorKey,
          descriptorValue: action.descriptorValue,
          expectMatch: action.expectMatch,
          queryParameters: [
            { name: action.queryParameter.name, stringMatch: matcherJson(action.queryParameter.match) },
          ],
        },
      };
  }
}

/** Our RouteRateLimit -> Envoy's `RateLimit` JSON as the xds-ir goldens print it. */
export function routeRateLimitJson(rl: RouteRateLimit): Json {
  return stripEmpty({
    actions: rl.actions.map(actionJson),
    applyOnStreamDone: rl.applyOnStreamDone || undefined,
    hitsAddend:
      rl.hitsAddend === undefined
        ? undefined
        : 'number' in rl.hitsAddend
          ? { number: String(rl.hitsAddend.number) }
          : { format: rl.hitsAddend.format },
  });
}

/** The Go struct dump of `rateLimitsByDomain` (ratelimit-config `*.routes.yaml`) -> the camelCase JSON above. */
export function goDumpRateLimitJson(entry: Json): Json {
  const matcher = (sm: Json): Json => {
    const pattern = sm.MatchPattern;
    if (pattern.Exact !== undefined) return { exact: pattern.Exact };
    if (pattern.Prefix !== undefined) return { prefix: pattern.Prefix };
    return { safeRegex: { regex: pattern.SafeRegex.regex } };
  };
  const actions = entry.actions.map((a: Json) => {
    const spec = a.ActionSpecifier;
    if (spec.GenericKey)
      return {
        genericKey: {
          descriptorKey: spec.GenericKey.descriptor_key,
          descriptorValue: spec.GenericKey.descriptor_value,
        },
      };
    if (spec.RequestHeaders)
      return {
        requestHeaders: {
          descriptorKey: spec.RequestHeaders.descriptor_key,
          headerName: spec.RequestHeaders.header_name,
        },
      };
    if (spec.HeaderValueMatch) {
      const h = spec.HeaderValueMatch;
      return {
        headerValueMatch: {
          descriptorKey: h.descriptor_key,
          descriptorValue: h.descriptor_value,
          expectMatch: h.expect_match?.value ?? true,
          headers: h.headers.map((hm: Json) => ({
            name: hm.name,
            stringMatch: matcher(hm.HeaderMatchSpecifier.StringMatch),
          })),
        },
      };
    }
    throw new Error(`unexpected action ${JSON.stringify(a)}`);
  });
  return stripEmpty({
    actions,
    applyOnStreamDone: entry.apply_on_stream_done || undefined,
    hitsAddend: entry.hits_addend
      ? entry.hits_addend.number !== undefined
        ? { number: String(entry.hits_addend.number.value ?? entry.hits_addend.number) }
        : { format: entry.hits_addend.format }
      : undefined,
  });
}

/** The golden routes' `expectMatch: true` defaults are printed; ours too. Nothing to normalise beyond that. */
export function normalizeRouteJson(value: Json): Json {
  return JSON.parse(JSON.stringify(value));
}

// ---- rate-limit service configuration ----

export function serviceDescriptorYaml(d: ServiceDescriptor): Json {
  return {
    key: d.key,
    value: d.value ?? '',
    rate_limit: d.rateLimit
      ? { requests_per_unit: d.rateLimit.requestsPerUnit, unit: d.rateLimit.unit.toUpperCase() }
      : null,
    descriptors: d.descriptors.map(serviceDescriptorYaml),
    shadow_mode: d.shadowMode,
  };
}

/** The ratelimit service YAML golden -> the fields we model (limits, keys, values, nesting, shadow mode). */
export function goldenServiceDescriptor(d: Json): Json {
  return {
    key: d.key,
    value: d.value ?? '',
    rate_limit: d.rate_limit ? { requests_per_unit: d.rate_limit.requests_per_unit, unit: d.rate_limit.unit } : null,
    descriptors: (d.descriptors ?? []).map(goldenServiceDescriptor),
    shadow_mode: d.shadow_mode === true,
  };
}
