/**
 * Request routing, compiled once per config: path prefix + host to an endpoint, then the model to a rule.
 */
import { compileModelRegex, type ModelRegex } from '../config/regex';
import type { BackendRef, ModelMatch, ProcessorConfig, RouteConfig, RouteEndpoint } from '../config/schema';
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
}

export interface EndpointMatch {
  api: ClientApi;
  /** `/chat/completions`; '' when the path is the prefix itself. */
  subpath: string;
  query: string;
  /** Undefined for paths the API does not serve (answered 404) and for `/models`. */
  operation: Operation | 'models' | undefined;
  rules: readonly CompiledRule[];
  /** Rules of every route on this endpoint, for `/models` and the unknown-model error. */
  routes: readonly RouteConfig[];
}

export class Router {
  /** Longest prefix first. */
  private readonly endpoints: CompiledEndpoint[] = [];
  private readonly rulesByEndpoint = new Map<CompiledEndpoint, CompiledRule[]>();

  constructor(config: ProcessorConfig) {
    const byKey = new Map<string, CompiledEndpoint>();
    for (const route of config.routes) {
      for (const endpoint of route.endpoints) {
        const key = `${endpoint.api} ${endpoint.pathPrefix}`;
        let compiled = byKey.get(key);
        if (!compiled) {
          compiled = { endpoint, routes: [], anyHost: true };
          byKey.set(key, compiled);
          this.endpoints.push(compiled);
        }
        compiled.routes.push(route);
        if (route.hostnames.length > 0) compiled.anyHost = false;
      }
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

  /** Undefined when no endpoint serves the path on this host. */
  match(pathWithQuery: string, authority: string): EndpointMatch | undefined {
    const q = pathWithQuery.indexOf('?');
    const path = q === -1 ? pathWithQuery : pathWithQuery.slice(0, q);
    const query = q === -1 ? '' : pathWithQuery.slice(q);
    let host: string | undefined;
    for (const compiled of this.endpoints) {
      const prefix = compiled.endpoint.pathPrefix;
      let subpath: string;
      if (prefix === '/') subpath = path;
      else if (path === prefix) subpath = '';
      else if (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47 /* / */) subpath = path.slice(prefix.length);
      else continue;
      const allRules = this.rulesByEndpoint.get(compiled) ?? [];
      if (!compiled.anyHost) host ??= hostOf(authority);
      const rules = compiled.anyHost ? allRules : allRules.filter((rule) => hostMatches(rule.route.hostnames, host!));
      if (rules.length === 0) continue;
      const routes = compiled.anyHost ? compiled.routes : compiled.routes.filter((route) => hostMatches(route.hostnames, host!));
      return { api: compiled.endpoint.api, subpath, query, operation: operationOf(compiled.endpoint.api, subpath), rules, routes };
    }
    return undefined;
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
  for (const route of routes) for (const rule of route.rules) for (const m of rule.models) if (m.type === 'Exact') names.add(m.value);
  return [...names];
}

function operationOf(api: ClientApi, subpath: string): Operation | 'models' | undefined {
  if (api === 'Anthropic') {
    if (subpath === '/messages') return 'messages';
    if (subpath === '/messages/count_tokens') return 'count_tokens';
    return undefined;
  }
  switch (subpath) {
    case '/chat/completions':
      return 'chat';
    case '/completions':
      return 'completions';
    case '/embeddings':
      return 'embeddings';
    case '/models':
      return 'models';
    case '':
    case '/':
      return undefined;
    default:
      return 'other';
  }
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
