/**
 * The routing contract between AIRoute HTTPRoutes and the processor, checked at synth time.
 *
 * The processor rewrites `:path` to the provider's path, sets `x-ai-gateway-backend` and clears Envoy's route
 * cache, so Envoy matches the routes of the listener's virtual host a second time. Envoy Gateway orders those
 * routes by path match type (Exact > RegularExpression > PathPrefix), then by path length (`PathPrefix /`
 * counts 0), then by number of header matches. Every backend rule therefore matches the backend header with
 * the route's endpoint prefixes, the backend's own upstream prefix and `/`: on any path the processor
 * produces, the backend rule has a path match at least as long as every header-less rule of the same route,
 * and wins the tie with its header. What can still out-rank it is a header-less rule of ANOTHER route on the
 * same listener and host whose prefix is longer than the backend's matches for that path. This module finds
 * those among the AIRoutes of one gateway (it cannot see HTTPRoutes made outside this app).
 */
import type { IConstruct } from 'constructs';

/** Gateway API PathPrefix semantics (Envoy `path_separated_prefix`): `/v1` matches `/v1` and `/v1/...`, not `/v1beta`. */
export function prefixCovers(prefix: string, path: string): boolean {
  if (prefix === '/') return path.startsWith('/');
  return path === prefix || path.startsWith(`${prefix}/`);
}

/** Envoy Gateway's path-length rank of a PathPrefix match: its length, except `/`, which counts 0. */
export function prefixRank(prefix: string): number {
  return prefix === '/' ? 0 : prefix.length;
}

/** A backend rule of an AIRoute: the PathPrefix values it matches together with its backend header. */
export interface IndexedBackendRule {
  /** The prop naming the backend in error messages, e.g. `rules[0].backends[1].backend`. */
  readonly prop: string;
  /** The backend's name for messages. */
  readonly name: string;
  /** Every path the processor sends to this backend is this prefix or below it. */
  readonly upstreamPrefix: string;
  /** The PathPrefix values of the rule's matches (all carry the backend header). */
  readonly matchPrefixes: readonly string[];
  /**
   * The processor forwards the client's path unchanged (an OpenAI-schema backend whose prefix is the route's
   * OpenAI endpoint prefix); only translated requests get another path: `<prefix>/chat/completions`.
   */
  readonly forwardsClientPath?: boolean;
}

/** What one AIRoute contributes to the routes of a gateway. */
export interface IndexedRoute {
  /** Construct path, for messages. */
  readonly owner: string;
  /** Virtual hosts the route's rules land in: `<listener>|<host>` (host `*` when the route names none). */
  readonly virtualHosts: readonly string[];
  /** Header-less PathPrefix matches (the catch-all rule answering 404): endpoint prefix -> the prop that set it. */
  readonly catchAll: ReadonlyMap<string, string>;
  readonly backends: readonly IndexedBackendRule[];
  /** The processor the route's EnvoyExtensionPolicy enables (`<namespace>/<service>`). */
  readonly processor: string;
}

/** A header-less rule that out-ranks a backend rule for some path the processor sends to that backend. */
export interface PrecedenceConflict {
  /** The route whose backend loses. */
  readonly loser: IndexedRoute;
  readonly backend: IndexedBackendRule;
  /** The route whose catch-all prefix wins. */
  readonly winner: IndexedRoute;
  readonly prefix: string;
  /** A virtual host both routes share. */
  readonly virtualHost: string;
  /** The upstream paths (this prefix and below) that would land on the winner's rule. */
  readonly paths: string;
}

/**
 * Whether the header-less `PathPrefix prefix` out-ranks the backend rule for some path below the backend's
 * upstream prefix; returns the root of the affected paths.
 */
export function outrankedPaths(prefix: string, backend: IndexedBackendRule): string | undefined {
  let root: string;
  if (prefixCovers(prefix, backend.upstreamPrefix)) root = backend.upstreamPrefix;
  else if (prefixCovers(backend.upstreamPrefix, prefix)) root = prefix;
  else return undefined;
  if (backend.forwardsClientPath && root === prefix && root !== backend.upstreamPrefix) {
    // Client paths below the longer prefix land on that route's catch-all already at the first match, so this
    // backend only receives paths below it from translation.
    const translated = `${backend.upstreamPrefix === '/' ? '' : backend.upstreamPrefix}/chat/completions`;
    if (!prefixCovers(prefix, translated)) return undefined;
    root = translated;
  }
  // The backend rule's best match for paths below `root` is its longest prefix covering all of them.
  const best = Math.max(...backend.matchPrefixes.filter((p) => prefixCovers(p, root)).map(prefixRank));
  // Equal length: the backend rule carries one more header match, so it wins.
  return prefixRank(prefix) > best ? root : undefined;
}

/**
 * Two routes with different processors and the same catch-all prefix on one virtual host: Envoy Gateway ranks
 * the two catch-alls equal, so the older HTTPRoute takes every request of both at the first match, and its
 * processor knows only its own models.
 */
export interface ProcessorTie {
  readonly other: IndexedRoute;
  readonly prefix: string;
  readonly virtualHost: string;
}

/** The AIRoutes of one gateway, for checking a new route against the others before it is added. */
export class RoutePrecedenceIndex {
  private readonly routes: IndexedRoute[] = [];

  /** The first conflict between `entry` and a route already added, in either direction. */
  findConflict(entry: IndexedRoute): PrecedenceConflict | undefined {
    for (const other of this.routes) {
      if (other.owner === entry.owner) continue;
      const shared = entry.virtualHosts.find((host) => other.virtualHosts.includes(host));
      if (shared === undefined) continue;
      const conflict = conflictBetween(entry, other, shared) ?? conflictBetween(other, entry, shared);
      if (conflict) return conflict;
    }
    return undefined;
  }

  /** The first route with another processor whose catch-all ties with one of `entry`'s on a shared virtual host. */
  findProcessorTie(entry: IndexedRoute): ProcessorTie | undefined {
    for (const other of this.routes) {
      if (other.owner === entry.owner || other.processor === entry.processor) continue;
      const virtualHost = entry.virtualHosts.find((host) => other.virtualHosts.includes(host));
      if (virtualHost === undefined) continue;
      const prefix = [...entry.catchAll.keys()].find((p) => other.catchAll.has(p));
      if (prefix !== undefined) return { other, prefix, virtualHost };
    }
    return undefined;
  }

  add(entry: IndexedRoute): void {
    this.routes.push(entry);
  }
}

function conflictBetween(loser: IndexedRoute, winner: IndexedRoute, virtualHost: string): PrecedenceConflict | undefined {
  for (const backend of loser.backends) {
    for (const prefix of winner.catchAll.keys()) {
      const paths = outrankedPaths(prefix, backend);
      if (paths !== undefined) return { loser, backend, winner, prefix, virtualHost, paths };
    }
  }
  return undefined;
}

/**
 * The virtual hosts a route lands in on each listener, as Envoy Gateway builds them: a route without hostnames
 * takes the listener's hostname (or `*`); a route hostname must intersect the listener's, and the more specific
 * of the two names the virtual host.
 */
export function virtualHostsOf(listeners: readonly { name: string; hostname?: string }[], routeHostnames: readonly string[]): string[] {
  const hosts: string[] = [];
  for (const listener of listeners) {
    if (routeHostnames.length === 0) {
      hosts.push(`${listener.name}|${listener.hostname ?? '*'}`);
      continue;
    }
    for (const hostname of routeHostnames) {
      const host = intersectHostnames(listener.hostname, hostname);
      if (host !== undefined) hosts.push(`${listener.name}|${host}`);
    }
  }
  return [...new Set(hosts)];
}

function intersectHostnames(listener: string | undefined, route: string): string | undefined {
  if (listener === undefined || listener === route) return route;
  if (listener.startsWith('*.') && route.endsWith(listener.slice(1))) return route;
  if (route.startsWith('*.') && listener.endsWith(route.slice(1))) return listener;
  return undefined;
}

const FOREIGN_INDEXES = new WeakMap<IConstruct, Map<string, RoutePrecedenceIndex>>();

/** The index of a Gateway not managed by an AIGateway, shared by every AIRoute of the app attached to it. */
export function foreignGatewayIndex(scope: IConstruct, gatewayNamespace: string, gatewayName: string): RoutePrecedenceIndex {
  const root = scope.node.root;
  let indexes = FOREIGN_INDEXES.get(root);
  if (!indexes) FOREIGN_INDEXES.set(root, (indexes = new Map()));
  const key = `${gatewayNamespace}/${gatewayName}`;
  let index = indexes.get(key);
  if (!index) indexes.set(key, (index = new RoutePrecedenceIndex()));
  return index;
}
