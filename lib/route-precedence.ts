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

/**
 * Gateway API PathPrefix semantics (Envoy `path_separated_prefix`): `/v1` matches `/v1` and `/v1/...`, not `/v1beta`.
 */
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
  /** The processor enabled on the route (`<namespace>/<service>`) by its policy in the route's namespace. */
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

/**
 * The AIRoutes of one gateway, for checking a new route against the others before it is added. Indexed per
 * virtual host by catch-all prefix, by backend upstream prefix and shape (what `outrankedPaths` reads), and by the
 * paths above and below each, so a check visits only the prefixes on the path of its own (the ones that can
 * out-rank or be out-ranked), not every route or every prefix of the host.
 */
export class RoutePrecedenceIndex {
  private readonly order = new Map<IndexedRoute, number>();
  private readonly hosts = new Map<string, VirtualHostRoutes>();
  /** Catch-all prefixes and backend shapes compared with a new route, for tests of the index's cost. */
  comparisons = 0;

  /**
   * The conflict between `entry` and the earliest added route it conflicts with, in either direction (when both
   * directions conflict with that route, the one where `entry`'s backend loses).
   */
  findConflict(entry: IndexedRoute): PrecedenceConflict | undefined {
    let found: { conflict: PrecedenceConflict; rank: number } | undefined;
    const consider = (conflict: PrecedenceConflict, other: IndexedRoute, direction: number) => {
      const rank = this.order.get(other)! * 2 + direction;
      if (!found || rank < found.rank) found = { conflict, rank };
    };
    for (const virtualHost of entry.virtualHosts) {
      const host = this.hosts.get(virtualHost);
      if (!host) continue;
      // Another route's catch-all out-ranks one of this route's backends...
      for (const prefix of host.catchAllsOnPathOf(entry.backends.map((backend) => backend.upstreamPrefix))) {
        const routes = host.catchAlls.get(prefix)!;
        for (const backend of entry.backends) {
          this.comparisons += 1;
          const paths = outrankedPaths(prefix, backend);
          const winner = paths === undefined ? undefined : routes.find((route) => route.owner !== entry.owner);
          if (winner) consider({ loser: entry, backend, winner, prefix, virtualHost, paths: paths! }, winner, 0);
        }
      }
      // ...or this route's catch-all out-ranks another route's backend.
      for (const prefix of entry.catchAll.keys()) {
        for (const { backend, routes } of host.backendsOnPathOf(prefix)) {
          this.comparisons += 1;
          const paths = outrankedPaths(prefix, backend);
          const loser = paths === undefined ? undefined : routes.find((route) => route.owner !== entry.owner);
          if (loser)
            consider(
              {
                loser,
                backend: loser.backends.find((b) => shapeOf(b) === shapeOf(backend))!,
                winner: entry,
                prefix,
                virtualHost,
                paths: paths!,
              },
              loser,
              1,
            );
        }
      }
    }
    return found?.conflict;
  }

  /** The first route with another processor whose catch-all ties with one of `entry`'s on a shared virtual host. */
  findProcessorTie(entry: IndexedRoute): ProcessorTie | undefined {
    for (const virtualHost of entry.virtualHosts) {
      const byProcessor = this.hosts.get(virtualHost)?.catchAllsByProcessor;
      for (const prefix of entry.catchAll.keys()) {
        // The earliest route of another processor (routes of one processor, usually all, are not visited).
        let other: IndexedRoute | undefined;
        for (const [processor, routes] of byProcessor?.get(prefix) ?? []) {
          if (processor === entry.processor) continue;
          this.comparisons += 1;
          const first = routes.find((route) => route.owner !== entry.owner);
          if (first && (!other || this.order.get(first)! < this.order.get(other)!)) other = first;
        }
        if (other) return { other, prefix, virtualHost };
      }
    }
    return undefined;
  }

  add(entry: IndexedRoute): void {
    this.order.set(entry, this.order.size);
    for (const virtualHost of entry.virtualHosts)
      getOrCreate(this.hosts, virtualHost, () => new VirtualHostRoutes()).add(entry);
  }
}

/** The routes of one virtual host, as RoutePrecedenceIndex reads them. */
class VirtualHostRoutes {
  /** Catch-all prefix -> the routes with it, in the order added (prefixes in the order first added). */
  readonly catchAlls = new Map<string, IndexedRoute[]>();
  private readonly catchAllOrder = new Map<string, number>();
  readonly catchAllsByProcessor = new Map<string, Map<string, IndexedRoute[]>>();
  /** Path -> the catch-all prefixes it covers (itself included). */
  private readonly catchAllsBelow = new Map<string, Set<string>>();
  /** Backend shape -> a backend of that shape and the routes with one (shapes in the order first added). */
  private readonly backends = new Map<string, BackendShape>();
  /** Upstream prefix -> its backend shapes. */
  private readonly shapesByUpstream = new Map<string, BackendShape[]>();
  /** Path -> the upstream prefixes it covers (itself included). */
  private readonly upstreamsBelow = new Map<string, Set<string>>();

  add(entry: IndexedRoute): void {
    for (const prefix of entry.catchAll.keys()) {
      if (!this.catchAlls.has(prefix)) {
        this.catchAllOrder.set(prefix, this.catchAllOrder.size);
        for (const path of pathsCovering(prefix)) addTo(this.catchAllsBelow, path, prefix);
      }
      getOrCreate(this.catchAlls, prefix, () => []).push(entry);
      const byProcessor = getOrCreate(this.catchAllsByProcessor, prefix, () => new Map<string, IndexedRoute[]>());
      getOrCreate(byProcessor, entry.processor, () => []).push(entry);
    }
    for (const backend of entry.backends) {
      const shape = shapeOf(backend);
      let known = this.backends.get(shape);
      if (!known) {
        const upstream = backend.upstreamPrefix;
        this.backends.set(shape, (known = { backend, routes: [], order: this.backends.size }));
        if (!this.shapesByUpstream.has(upstream))
          for (const path of pathsCovering(upstream)) addTo(this.upstreamsBelow, path, upstream);
        getOrCreate(this.shapesByUpstream, upstream, () => []).push(known);
      }
      known.routes.push(entry);
    }
  }

  /**
   * The catch-all prefixes that cover one of `paths` or that one of them covers (the only ones `outrankedPaths` can
   * answer for), in the order they were first added.
   */
  catchAllsOnPathOf(paths: readonly string[]): string[] {
    const prefixes = new Set<string>();
    for (const path of paths) {
      for (const below of this.catchAllsBelow.get(path) ?? []) prefixes.add(below);
      for (const above of pathsCovering(path)) if (this.catchAlls.has(above)) prefixes.add(above);
    }
    return [...prefixes].sort((a, b) => this.catchAllOrder.get(a)! - this.catchAllOrder.get(b)!);
  }

  /** The backend shapes whose upstream prefix covers `prefix` or is covered by it, in the order first added. */
  backendsOnPathOf(prefix: string): BackendShape[] {
    const upstreams = new Set(this.upstreamsBelow.get(prefix));
    for (const above of pathsCovering(prefix)) if (this.shapesByUpstream.has(above)) upstreams.add(above);
    return [...upstreams].flatMap((upstream) => this.shapesByUpstream.get(upstream)!).sort((a, b) => a.order - b.order);
  }
}

interface BackendShape {
  readonly backend: IndexedBackendRule;
  readonly routes: IndexedRoute[];
  readonly order: number;
}

/** The PathPrefix values that cover `path` (`prefixCovers`): `/`, `/a`, `/a/b` for `/a/b`. */
function pathsCovering(path: string): string[] {
  const paths = ['/'];
  for (let i = path.indexOf('/', 1); i !== -1; i = path.indexOf('/', i + 1)) paths.push(path.slice(0, i));
  if (path !== '/') paths.push(path);
  return paths;
}

function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
  getOrCreate(map, key, () => new Set<string>()).add(value);
}

/** What `outrankedPaths` reads of a backend rule: rules of one shape win or lose against the same prefixes. */
function shapeOf(backend: IndexedBackendRule): string {
  return `${backend.upstreamPrefix} ${backend.forwardsClientPath === true} ${backend.matchPrefixes.join(' ')}`;
}

function getOrCreate<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}

/**
 * The virtual hosts a route lands in on each listener, as Envoy Gateway builds them: a route without hostnames
 * takes the listener's hostname (or `*`); a route hostname must intersect the listener's, and the more specific
 * of the two names the virtual host.
 */
export function virtualHostsOf(
  listeners: readonly { name: string; hostname?: string }[],
  routeHostnames: readonly string[],
): string[] {
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
export function foreignGatewayIndex(
  scope: IConstruct,
  gatewayNamespace: string,
  gatewayName: string,
): RoutePrecedenceIndex {
  const root = scope.node.root;
  let indexes = FOREIGN_INDEXES.get(root);
  if (!indexes) FOREIGN_INDEXES.set(root, (indexes = new Map<string, RoutePrecedenceIndex>()));
  const key = `${gatewayNamespace}/${gatewayName}`;
  let index = indexes.get(key);
  if (!index) indexes.set(key, (index = new RoutePrecedenceIndex()));
  return index;
}
