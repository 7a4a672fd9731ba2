/**
 * Request routing, compiled once per config: path prefix + host to an endpoint, then the model to a rule.
 */
import {
  compileModelRegex,
  isPassthroughSubpath,
  SERVED_ENDPOINTS,
  type BackendRef,
  type FallbackConfig,
  type ModelMatch,
  type ModelRegex,
  type PassthroughEndpoint,
  type ProcessorConfig,
  type RouteConfig,
  type RouteEndpoint,
} from '@ai-gateway-constructs/processor-config';
import type { ClientApi, Operation } from '../translate/types';
import { HostSelector, selectionOf, subsetOf, type RouteSelection } from './route-selection';
import { ModelMemo, RuleIndex } from './rule-index';

export interface CompiledRule {
  route: RouteConfig;
  /** The rule's configured model matches, in order (what the rule index reads). */
  models: readonly ModelMatch[];
  /**
   * The configured value that accepts `model`, or undefined: the model itself for an Exact match, `<prefix>*` for
   * a Prefix match, the pattern's text for a RegularExpression. Metrics label requests with it, so their series
   * come from the configuration, never from what clients invent under a prefix or regex.
   */
  match: (model: string) => string | undefined;
  backends: readonly BackendRef[];
  /** Failing over within one request to a higher priority; undefined: the first answer stands. */
  fallback: FallbackConfig | undefined;
}

/** The rule that serves a model, and the configured model match that accepted it (see `CompiledRule.match`). */
export interface RuleMatch {
  rule: CompiledRule;
  modelLabel: string;
}

interface CompiledEndpoint {
  endpoint: RouteEndpoint;
  routes: RouteConfig[];
  /** The routes and rules for any host; only these when no route on this endpoint restricts hostnames. */
  all: RouteSelection<CompiledRule>;
  /** Set when some route on this endpoint restricts hostnames: selects the routes per request host. */
  hosts?: HostSelector<CompiledRule>;
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
  /** Routes that list passthrough endpoints; others serve SERVED_ENDPOINTS only. */
  private readonly passthrough = new Map<RouteConfig, PassthroughEndpoints>();
  /** The answers of this snapshot's rule indexes (rule-index.ts). */
  private readonly memo = new ModelMemo<CompiledRule>();

  constructor(config: ProcessorConfig) {
    const byKey = new Map<string, { endpoint: RouteEndpoint; routes: RouteConfig[]; anyPassthrough: boolean }>();
    const rulesOfRoute = new Map<RouteConfig, CompiledRule[]>();
    for (const route of config.routes) {
      rulesOfRoute.set(
        route,
        route.rules.map((rule) => ({
          route,
          models: rule.models,
          match: compileModelMatchers(rule.models),
          backends: rule.backends,
          fallback: rule.fallback,
        })),
      );
      for (const endpoint of route.endpoints) {
        const key = `${endpoint.api} ${endpoint.pathPrefix}`;
        let compiled = byKey.get(key);
        if (!compiled) byKey.set(key, (compiled = { endpoint, routes: [], anyPassthrough: false }));
        compiled.routes.push(route);
        if (endpoint.api === 'OpenAI' && (route.passthroughEndpoints?.length ?? 0) > 0) compiled.anyPassthrough = true;
      }
      if ((route.passthroughEndpoints?.length ?? 0) > 0)
        this.passthrough.set(route, new PassthroughEndpoints(route.passthroughEndpoints!));
    }
    for (const { endpoint, routes, anyPassthrough } of byKey.values()) {
      const rules = routes.map((route) => rulesOfRoute.get(route)!);
      this.endpoints.push({
        endpoint,
        routes,
        all: selectionOf(routes, rules),
        hosts: routes.some((route) => route.hostnames.length > 0) ? new HostSelector(routes, rules) : undefined,
        anyPassthrough,
      });
    }
    this.endpoints.sort((a, b) => b.endpoint.pathPrefix.length - a.endpoint.pathPrefix.length);
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
      let selection = compiled.all;
      if (compiled.hosts) selection = compiled.hosts.select((host ??= hostOf(authority)));
      const { rules, routes } = selection;
      if (rules.length === 0) continue;
      this.indexed(rules);
      const api = compiled.endpoint.api;
      const served = SERVED[api].get(subpath);
      if (served !== undefined) {
        if (served.method === method) return { api, subpath, query, operation: served.operation, rules, routes };
        return { api, subpath, query, operation: undefined, allowedMethods: served.allowed, rules, routes };
      }
      if (compiled.anyPassthrough && isPassthroughSubpath(subpath))
        return this.passthroughMatch(api, subpath, query, method, selection);
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
    selection: RouteSelection<CompiledRule>,
  ): EndpointMatch {
    const { rules, routes } = selection;
    const optedIn =
      method === undefined
        ? []
        : selection.passthroughPositions.filter((p) => this.passthrough.get(routes[p])!.allows(subpath, method));
    if (optedIn.length > 0) {
      // Only the opted-in routes' rules, in their order: another route's models never reach this path.
      const offered = subsetOf(selection, optedIn);
      this.indexed(offered.rules);
      return { api, subpath, query, operation: 'other', rules: offered.rules, routes: offered.routes };
    }
    const methods = new Set<string>();
    for (const p of selection.passthroughPositions) this.passthrough.get(routes[p])!.methodsFor(subpath, methods);
    if (methods.size === 0) return { api, subpath, query, operation: undefined, rules, routes };
    return { api, subpath, query, operation: undefined, allowedMethods: [...methods].sort(), rules, routes };
  }

  /** Gives a rule list of this snapshot its index, sharing the snapshot's memo. */
  private indexed(rules: readonly CompiledRule[]): void {
    if (!RULE_INDEXES.has(rules)) RULE_INDEXES.set(rules, new RuleIndex(rules, this.memo));
  }
}

/** The index of each rule list a Router hands out (built on its first lookup for lists made elsewhere). */
const RULE_INDEXES = new WeakMap<readonly CompiledRule[], RuleIndex<CompiledRule>>();

/**
 * The first rule of `rules` that accepts `model` (config order), with the label of the match that accepted it:
 * through the list's index (rule-index.ts), which answers as trying every rule in order would.
 */
export function findRule(rules: readonly CompiledRule[], model: string): RuleMatch | undefined {
  let index = RULE_INDEXES.get(rules);
  if (index === undefined) RULE_INDEXES.set(rules, (index = new RuleIndex(rules)));
  return index.find(model);
}

/** Names the unknown-model error lists at most; `/models` lists them all. */
export const MAX_LISTED_MODELS = 50;
const AVAILABLE_MODELS = new WeakMap<readonly RouteConfig[], string>();

/**
 * The exact models of `routes` for the unknown-model error, built once per route list and bounded: with 10,000
 * routes every unknown name would otherwise cost a 100 KB answer.
 */
export function availableModels(routes: readonly RouteConfig[]): string {
  let text = AVAILABLE_MODELS.get(routes);
  if (text === undefined) {
    const models = exactModels(routes);
    if (models.length === 0) text = '(none)';
    else if (models.length <= MAX_LISTED_MODELS) text = models.join(', ');
    else
      text =
        `${models.slice(0, MAX_LISTED_MODELS).join(', ')} and ${models.length - MAX_LISTED_MODELS} more ` +
        '(the /models endpoint lists them all)';
    AVAILABLE_MODELS.set(routes, text);
  }
  return text;
}

const EXACT_MODELS = new WeakMap<readonly RouteConfig[], readonly string[]>();

/**
 * Exact model names the routes serve (what `/models` lists and the unknown-model error names), collected once per
 * route list (the Router hands out the same lists for the same endpoint and host).
 */
export function exactModels(routes: readonly RouteConfig[]): readonly string[] {
  let models = EXACT_MODELS.get(routes);
  if (models === undefined) {
    const names = new Set<string>();
    for (const route of routes)
      for (const rule of route.rules) for (const m of rule.models) if (m.type === 'Exact') names.add(m.value);
    EXACT_MODELS.set(routes, (models = [...names]));
  }
  return models;
}

/** The configured value that accepts a model (see `CompiledRule.match`), or undefined. */
export function compileModelMatchers(models: readonly ModelMatch[]): (model: string) => string | undefined {
  /** Value to itself: the label is the configured string, not the request's copy of it. */
  const exact = new Map<string, string>();
  const prefixes: Array<{ prefix: string; label: string }> = [];
  // RE2 (linear time, whole-value match), compiled on first use per config snapshot (the schema already refused
  // what RE2 cannot run): the rule index rarely runs a pattern, and 10,000 of them take a second to compile.
  const patterns: Array<{ pattern: string; regex?: ModelRegex; label: string }> = [];
  for (const m of models) {
    if (m.type === 'Exact') exact.set(m.value, m.value);
    else if (m.type === 'Prefix') prefixes.push({ prefix: m.value, label: `${m.value}*` });
    else patterns.push({ pattern: m.value, label: m.value });
  }
  return (model) => {
    const configured = exact.get(model);
    if (configured !== undefined) return configured;
    for (const p of prefixes) if (model.startsWith(p.prefix)) return p.label;
    for (const p of patterns) if ((p.regex ??= compileModelRegex(p.pattern)).test(model)) return p.label;
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
