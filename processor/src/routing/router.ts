/**
 * Request routing, compiled once per config: path prefix + host to an endpoint, then the model to a rule.
 */
import {
  compileModelRegex,
  isPassthroughSubpath,
  SERVED_ENDPOINTS,
  type BackendRef,
  type ModelMatch,
  type ModelRegex,
  type PassthroughEndpoint,
  type ProcessorConfig,
  type RouteConfig,
  type RouteEndpoint,
} from '@ai-gateway-constructs/processor-config';
import type { ClientApi, Operation } from '../translate/types';

export interface CompiledRule {
  route: RouteConfig;
  /**
   * The configured value that accepts `model`, or undefined: the model itself for an Exact match, `<prefix>*` for
   * a Prefix match, the pattern's text for a RegularExpression. Metrics label requests with it, so their series
   * come from the configuration, never from what clients invent under a prefix or regex.
   */
  match: (model: string) => string | undefined;
  backends: readonly BackendRef[];
}

/** The rule that serves a model, and the configured model match that accepted it (see `CompiledRule.match`). */
export interface RuleMatch {
  rule: CompiledRule;
  modelLabel: string;
}

interface CompiledEndpoint {
  endpoint: RouteEndpoint;
  routes: RouteConfig[];
  /** No route on this endpoint restricts hostnames: rules and routes need no per-request filtering. */
  anyHost: boolean;
  /** Some route on this (OpenAI) endpoint lists passthrough endpoints. */
  anyPassthrough: boolean;
}

export interface EndpointMatch {
  api: ClientApi;
  /** `/chat/completions`; '' when the path is the prefix itself. */
  subpath: string;
  query: string;
  /**
   * What the request asks for: a served endpoint (SERVED_ENDPOINTS) with its method, or `other` for a passthrough
   * endpoint a route opted into for this method. Undefined for anything else: a path the endpoint does not serve
   * (answered 404), or a served path with a method it does not allow (see `allowedMethods`).
   */
  operation: Operation | 'models' | undefined;
  /**
   * Only when the path is served but not with the request's method (`operation` is then undefined): the methods
   * it allows, sorted, for a 405 with an `Allow` header. A request without a method gets this too.
   */
  allowedMethods?: readonly string[];
  /**
   * The rules to choose from, in order. For `other`, only the rules of routes that opted into this method and path.
   */
  rules: readonly CompiledRule[];
  /** The routes behind `rules`, for `/models` and the unknown-model error. */
  routes: readonly RouteConfig[];
}

interface ServedEndpoint {
  method: string;
  operation: Operation | 'models';
  /** `[method]`, the `allowedMethods` of a request with another method. */
  allowed: readonly string[];
}

/** SERVED_ENDPOINTS by API and subpath. */
const SERVED: Record<ClientApi, ReadonlyMap<string, ServedEndpoint>> = {
  OpenAI: new Map(
    SERVED_ENDPOINTS.OpenAI.map(({ path, method, operation }) => [path, { method, operation, allowed: [method] }]),
  ),
  Anthropic: new Map(
    SERVED_ENDPOINTS.Anthropic.map(({ path, method, operation }) => [path, { method, operation, allowed: [method] }]),
  ),
};

/** A route's `passthroughEndpoints`: exact subpaths, and prefixes ending in `/` (`/` alone: every subpath). */
class PassthroughEndpoints {
  private readonly exact = new Map<string, readonly string[]>();
  private readonly prefixes: Array<{ prefix: string; methods: readonly string[] }> = [];

  constructor(endpoints: readonly PassthroughEndpoint[]) {
    for (const { path, methods } of endpoints) {
      if (path.endsWith('/')) this.prefixes.push({ prefix: path, methods });
      else this.exact.set(path, methods);
    }
  }

  /** The methods this route allows on `subpath` (already checked with isPassthroughSubpath), possibly none. */
  methodsFor(subpath: string, into: Set<string>): void {
    const exact = this.exact.get(subpath);
    if (exact) for (const method of exact) into.add(method);
    for (const { prefix, methods } of this.prefixes) {
      if (subpath.startsWith(prefix)) for (const method of methods) into.add(method);
    }
  }

  allows(subpath: string, method: string): boolean {
    if (this.exact.get(subpath)?.includes(method)) return true;
    for (const { prefix, methods } of this.prefixes)
      if (subpath.startsWith(prefix) && methods.includes(method)) return true;
    return false;
  }
}

export class Router {
  /** Longest prefix first. */
  private readonly endpoints: CompiledEndpoint[] = [];
  private readonly rulesByEndpoint = new Map<CompiledEndpoint, CompiledRule[]>();
  /** Routes that list passthrough endpoints; others serve SERVED_ENDPOINTS only. */
  private readonly passthrough = new Map<RouteConfig, PassthroughEndpoints>();

  constructor(config: ProcessorConfig) {
    const byKey = new Map<string, CompiledEndpoint>();
    for (const route of config.routes) {
      for (const endpoint of route.endpoints) {
        const key = `${endpoint.api} ${endpoint.pathPrefix}`;
        let compiled = byKey.get(key);
        if (!compiled) {
          compiled = { endpoint, routes: [], anyHost: true, anyPassthrough: false };
          byKey.set(key, compiled);
          this.endpoints.push(compiled);
        }
        compiled.routes.push(route);
        if (route.hostnames.length > 0) compiled.anyHost = false;
        if (endpoint.api === 'OpenAI' && (route.passthroughEndpoints?.length ?? 0) > 0) compiled.anyPassthrough = true;
      }
      if ((route.passthroughEndpoints?.length ?? 0) > 0)
        this.passthrough.set(route, new PassthroughEndpoints(route.passthroughEndpoints!));
    }
    this.endpoints.sort((a, b) => b.endpoint.pathPrefix.length - a.endpoint.pathPrefix.length);
    for (const endpoint of this.endpoints) {
      this.rulesByEndpoint.set(
        endpoint,
        endpoint.routes.flatMap((route) =>
          route.rules.map((rule) => ({ route, match: compileModelMatchers(rule.models), backends: rule.backends })),
        ),
      );
    }
  }

  /**
   * Undefined when no endpoint serves the path on this host. `method` is the request's `:method`; without it no
   * endpoint's method matches (the answer then has `allowedMethods` or no operation).
   */
  match(pathWithQuery: string, authority: string, method?: string): EndpointMatch | undefined {
    const q = pathWithQuery.indexOf('?');
    const path = q === -1 ? pathWithQuery : pathWithQuery.slice(0, q);
    const query = q === -1 ? '' : pathWithQuery.slice(q);
    let host: string | undefined;
    for (const compiled of this.endpoints) {
      const prefix = compiled.endpoint.pathPrefix;
      let subpath: string;
      if (prefix === '/') subpath = path;
      else if (path === prefix) subpath = '';
      else if (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47 /* / */)
        subpath = path.slice(prefix.length);
      else continue;
      const allRules = this.rulesByEndpoint.get(compiled) ?? [];
      if (!compiled.anyHost) host ??= hostOf(authority);
      const rules = compiled.anyHost ? allRules : allRules.filter((rule) => hostMatches(rule.route.hostnames, host!));
      if (rules.length === 0) continue;
      const routes = compiled.anyHost
        ? compiled.routes
        : compiled.routes.filter((route) => hostMatches(route.hostnames, host!));
      const api = compiled.endpoint.api;
      const served = SERVED[api].get(subpath);
      if (served !== undefined) {
        if (served.method === method) return { api, subpath, query, operation: served.operation, rules, routes };
        return { api, subpath, query, operation: undefined, allowedMethods: served.allowed, rules, routes };
      }
      if (compiled.anyPassthrough && isPassthroughSubpath(subpath))
        return this.passthroughMatch(api, subpath, query, method, rules, routes);
      return { api, subpath, query, operation: undefined, rules, routes };
    }
    return undefined;
  }

  /** A subpath outside SERVED_ENDPOINTS on an endpoint where some route lists passthrough endpoints. */
  private passthroughMatch(
    api: ClientApi,
    subpath: string,
    query: string,
    method: string | undefined,
    rules: readonly CompiledRule[],
    routes: readonly RouteConfig[],
  ): EndpointMatch {
    const optedIn =
      method === undefined
        ? []
        : routes.filter((route) => this.passthrough.get(route)?.allows(subpath, method) === true);
    if (optedIn.length > 0) {
      // Only the opted-in routes' rules, in their order: another route's models never reach this path.
      const offered = optedIn.length === routes.length ? rules : rules.filter((rule) => optedIn.includes(rule.route));
      return { api, subpath, query, operation: 'other', rules: offered, routes: optedIn };
    }
    const methods = new Set<string>();
    for (const route of routes) this.passthrough.get(route)?.methodsFor(subpath, methods);
    if (methods.size === 0) return { api, subpath, query, operation: undefined, rules, routes };
    return { api, subpath, query, operation: undefined, allowedMethods: [...methods].sort(), rules, routes };
  }
}

export function findRule(rules: readonly CompiledRule[], model: string): RuleMatch | undefined {
  for (const rule of rules) {
    const modelLabel = rule.match(model);
    if (modelLabel !== undefined) return { rule, modelLabel };
  }
  return undefined;
}

/** Exact model names the routes serve (what `/models` lists and the unknown-model error names). */
export function exactModels(routes: readonly RouteConfig[]): string[] {
  const names = new Set<string>();
  for (const route of routes)
    for (const rule of route.rules) for (const m of rule.models) if (m.type === 'Exact') names.add(m.value);
  return [...names];
}

function compileModelMatchers(models: readonly ModelMatch[]): (model: string) => string | undefined {
  /** Value to itself: the label is the configured string, not the request's copy of it. */
  const exact = new Map<string, string>();
  const prefixes: Array<{ prefix: string; label: string }> = [];
  // RE2 (linear time, whole-value match), compiled once per config snapshot; the schema refused what RE2 cannot run.
  const patterns: Array<{ regex: ModelRegex; label: string }> = [];
  for (const m of models) {
    if (m.type === 'Exact') exact.set(m.value, m.value);
    else if (m.type === 'Prefix') prefixes.push({ prefix: m.value, label: `${m.value}*` });
    else patterns.push({ regex: compileModelRegex(m.value), label: m.value });
  }
  return (model) => {
    const configured = exact.get(model);
    if (configured !== undefined) return configured;
    for (const p of prefixes) if (model.startsWith(p.prefix)) return p.label;
    for (const p of patterns) if (p.regex.test(model)) return p.label;
    return undefined;
  };
}

function hostOf(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return authority.slice(0, end + 1).toLowerCase();
  }
  const colon = authority.indexOf(':');
  return (colon === -1 ? authority : authority.slice(0, colon)).toLowerCase();
}

function hostMatches(hostnames: readonly string[], host: string): boolean {
  if (hostnames.length === 0) return true;
  // Configured hostnames are lower-case (checked at config load); the request's host is lower-cased once.
  for (const pattern of hostnames) {
    if (pattern.startsWith('*.')) {
      if (host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1) return true;
    } else if (pattern === host) return true;
  }
  return false;
}
