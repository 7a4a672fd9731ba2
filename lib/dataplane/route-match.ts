/**
 * Envoy's route selection for one listener: the virtual host by `:authority` (exact domain, then the longest
 * `*.` suffix wildcard, then `*`; the port is ignored as EG sets `ignore_port_in_host_matching`), then the first
 * route of that virtual host, in EG's order, whose path, header and query matches all hold.
 */
import type { HeaderMap } from './filter';
import type { HeaderMatch, ListenerModel, PathMatch, QueryMatch, RouteModel } from './model';
import { fullMatch } from './re2';

export { fullMatch } from './re2';

/** The path part of `:path` (without the query string or fragment). */
export function pathOnly(fullPath: string): string {
  const end = fullPath.search(/[?#]/);
  return end < 0 ? fullPath : fullPath.slice(0, end);
}

export function pathMatches(match: PathMatch | undefined, path: string): boolean {
  if (!match) return true;
  switch (match.type) {
    case 'Exact':
      return path === match.value;
    case 'PathPrefix':
      // `/` is a plain `prefix: /`; any other prefix is Envoy's `path_separated_prefix` (whole segments only).
      if (match.value === '/') return path.startsWith('/');
      return path === match.value || path.startsWith(`${match.value}/`);
    case 'RegularExpression':
      return fullMatch(match.value, path);
  }
}

export function headerMatches(match: HeaderMatch, headers: HeaderMap): boolean {
  // Envoy matches repeated headers on their values joined with `,`.
  const value = headers.getJoined(match.name);
  if (value === undefined) return match.invert === true;
  const matched = match.type === 'Exact' ? value === match.value : fullMatch(match.value, value);
  return matched !== (match.invert === true);
}

/**
 * Query parameters, decoded (`+` is a space; a name or value with a malformed escape stays as written). The first
 * occurrence of a name wins, as in Envoy's route and rate-limit query matching.
 */
export function parseQuery(fullPath: string): Map<string, string> {
  const params = new Map<string, string>();
  const start = fullPath.indexOf('?');
  if (start < 0) return params;
  const end = fullPath.indexOf('#', start);
  for (const pair of fullPath.slice(start + 1, end < 0 ? undefined : end).split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = safeDecode(eq < 0 ? pair : pair.slice(0, eq));
    if (!params.has(name)) params.set(name, safeDecode(eq < 0 ? '' : pair.slice(eq + 1)));
  }
  return params;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

export function queryMatches(match: QueryMatch, query: Map<string, string>): boolean {
  const value = query.get(match.name);
  if (value === undefined) return false;
  return match.type === 'Exact' ? value === match.value : fullMatch(match.value, value);
}

export function routeMatches(route: RouteModel, headers: HeaderMap): boolean {
  const fullPath = headers.get(':path') ?? '/';
  if (!pathMatches(route.path, pathOnly(fullPath))) return false;
  if (!route.headers.every((h) => headerMatches(h, headers))) return false;
  if (route.queryParams.length === 0) return true;
  const query = parseQuery(fullPath);
  return route.queryParams.every((q) => queryMatches(q, query));
}

/** The host of an authority without its port (IPv6 literals keep their brackets), lower-cased. */
export function hostWithoutPort(authority: string): string {
  const host = authority.startsWith('[')
    ? authority.slice(0, authority.indexOf(']') + 1) || authority
    : authority.replace(/:\d*$/, '');
  return host.toLowerCase();
}

/** The virtual host's domain (a route hostname, `*.suffix` or `*`) that Envoy picks for an authority. */
export function selectVirtualHost(domains: Iterable<string>, authority: string): string | undefined {
  const host = hostWithoutPort(authority);
  let best: string | undefined;
  let bestSuffix = -1;
  let hasCatchAll = false;
  for (const domain of domains) {
    const lower = domain.toLowerCase();
    if (lower === host) return domain;
    if (lower === '*') hasCatchAll = true;
    else if (lower.startsWith('*')) {
      const suffix = lower.slice(1);
      if (host.length > suffix.length && host.endsWith(suffix) && suffix.length > bestSuffix) {
        best = domain;
        bestSuffix = suffix.length;
      }
    }
  }
  return best ?? (hasCatchAll ? '*' : undefined);
}

/**
 * Envoy's route match on a listener (or several listeners' routes sharing one port) for the current request headers.
 */
export function selectRoute(listener: Pick<ListenerModel, 'routes'>, headers: HeaderMap): RouteModel | undefined {
  const authority = headers.get(':authority') ?? headers.get('host') ?? '';
  const domain = selectVirtualHost(new Set(listener.routes.map((r) => r.hostname)), authority);
  if (domain === undefined) return undefined;
  return listener.routes.find((route) => route.hostname === domain && routeMatches(route, headers));
}
