/**
 * The routes (and their rules, in config order) of one endpoint that a request may use: all of them, those whose
 * hostnames match the request's host, or those that opted into a passthrough path. Each distinct selection is built
 * once and kept (bounded), so its rule list keeps its index (rule-index.ts) across requests.
 */
import type { RouteConfig } from '@ai-gateway-constructs/processor-config';

export interface RouteSelection<Rule> {
  readonly routes: readonly RouteConfig[];
  /** The rules of `routes`, in order. */
  readonly rules: readonly Rule[];
  /** The rules of `routes[i]`. */
  readonly rulesOfRoute: readonly (readonly Rule[])[];
  /** Positions in `routes` of the routes that list passthrough endpoints. */
  readonly passthroughPositions: readonly number[];
  /** Subsets of `routes` already asked for, by their positions in `routes` (see `subsetOf`). */
  readonly subsets: Map<string, RouteSelection<Rule>>;
}

/** Distinct passthrough subsets kept per selection; more start the cache over. */
const MAX_SUBSETS = 64;
/** Distinct host selections kept per endpoint, and the rule slots they may hold together beyond the endpoint's. */
const MAX_HOST_SELECTIONS = 4096;
const EXTRA_RULE_SLOTS = 1 << 18;

export function selectionOf<Rule>(
  routes: readonly RouteConfig[],
  rulesOfRoute: readonly (readonly Rule[])[],
): RouteSelection<Rule> {
  const passthroughPositions: number[] = [];
  routes.forEach((route, position) => {
    if ((route.passthroughEndpoints?.length ?? 0) > 0) passthroughPositions.push(position);
  });
  return { routes, rules: rulesOfRoute.flat(), rulesOfRoute, passthroughPositions, subsets: new Map() };
}

/** The routes of `selection` at `positions` (ascending) with their rules, the same object for the same positions. */
export function subsetOf<Rule>(selection: RouteSelection<Rule>, positions: readonly number[]): RouteSelection<Rule> {
  if (positions.length === selection.routes.length) return selection;
  const key = positions.join(',');
  let subset = selection.subsets.get(key);
  if (subset === undefined) {
    subset = selectionOf(
      positions.map((p) => selection.routes[p]),
      positions.map((p) => selection.rulesOfRoute[p]),
    );
    if (selection.subsets.size >= MAX_SUBSETS) selection.subsets.clear();
    selection.subsets.set(key, subset);
  }
  return subset;
}

/**
 * Selects an endpoint's routes by request host without testing every route: the routes are indexed by their exact
 * hostnames and by the suffixes of their `*.` wildcards, so a host costs one lookup plus one per distinct wildcard
 * length. A route without hostnames serves every host.
 */
export class HostSelector<Rule> {
  private readonly anyHost: number[] = [];
  /** Exact hostname -> positions of the routes listing it. */
  private readonly exact = new Map<string, number[]>();
  /** `.example.com` (of `*.example.com`) -> positions of the routes listing that wildcard. */
  private readonly wildcards = new Map<string, number[]>();
  private readonly wildcardLengths: number[];
  private readonly cache = new Map<string, RouteSelection<Rule>>();
  private cachedRules = 0;
  private readonly maxCachedRules: number;

  constructor(
    private readonly routes: readonly RouteConfig[],
    private readonly rulesOfRoute: readonly (readonly Rule[])[],
  ) {
    const lengths = new Set<number>();
    routes.forEach((route, position) => {
      if (route.hostnames.length === 0) this.anyHost.push(position);
      for (const pattern of new Set(route.hostnames)) {
        if (pattern.startsWith('*.')) {
          const suffix = pattern.slice(1);
          push(this.wildcards, suffix, position);
          lengths.add(suffix.length);
        } else push(this.exact, pattern, position);
      }
    });
    this.wildcardLengths = [...lengths].sort((a, b) => a - b);
    this.maxCachedRules = 4 * rulesOfRoute.reduce((sum, rules) => sum + rules.length, 0) + EXTRA_RULE_SLOTS;
  }

  /** The routes serving `host` (lower-case, without port), as the linear filter would list them. */
  select(host: string): RouteSelection<Rule> {
    const matched: number[][] = [];
    let key = '';
    const exact = this.exact.get(host);
    if (exact) {
      matched.push(exact);
      key = host;
    }
    for (const length of this.wildcardLengths) {
      // `*.example.com` needs at least one character before `.example.com`.
      if (length >= host.length) break;
      const suffix = host.slice(host.length - length);
      const positions = this.wildcards.get(suffix);
      if (positions) {
        matched.push(positions);
        key += `\n${suffix}`;
      }
    }
    let selection = this.cache.get(key);
    if (selection === undefined) {
      const positions = mergePositions(this.anyHost, matched);
      selection = selectionOf(
        positions.map((p) => this.routes[p]),
        positions.map((p) => this.rulesOfRoute[p]),
      );
      if (this.cache.size >= MAX_HOST_SELECTIONS || this.cachedRules + selection.rules.length > this.maxCachedRules) {
        this.cache.clear();
        this.cachedRules = 0;
      }
      this.cache.set(key, selection);
      this.cachedRules += selection.rules.length;
    }
    return selection;
  }
}

function push(map: Map<string, number[]>, key: string, position: number): void {
  const list = map.get(key);
  if (list) list.push(position);
  else map.set(key, [position]);
}

/** The ascending union of ascending position lists. */
function mergePositions(first: readonly number[], others: readonly (readonly number[])[]): number[] {
  if (others.length === 0) return [...first];
  const all = first.concat(...others).sort((a, b) => a - b);
  return all.filter((p, i) => i === 0 || p !== all[i - 1]);
}
