/**
 * A test-only model of how Envoy Gateway v1.9 orders and matches the HTTPRoute rules of one listener, applied to
 * the emitted YAML: one route entry per (rule, match, hostname); entries sorted by EG's precedence
 * (internal/gatewayapi/sort.go: path match type Exact > RegularExpression > PathPrefix, then path length with
 * `PathPrefix /` counting 0, then number of header matches, then number of Exact header matches; ties keep the
 * input order); the virtual host chosen by the request's host (exact, then the longest `*.` suffix, then `*`);
 * the first entry whose path and headers match wins. Enough for the matches our constructs emit plus ordinary
 * routes with prefix, exact and regex paths.
 */
import type { Manifest } from './manifests';

export interface RouteEntry {
  /** `<namespace>/<name>` of the HTTPRoute. */
  readonly route: string;
  readonly rule: number;
  readonly match: number;
  readonly host: string;
  readonly path: { readonly type: 'Exact' | 'PathPrefix' | 'RegularExpression'; readonly value: string };
  readonly headers: readonly {
    readonly type: 'Exact' | 'RegularExpression';
    readonly name: string;
    readonly value: string;
  }[];
}

const PATH_TYPE_RANK = { Exact: 3, RegularExpression: 2, PathPrefix: 1 } as const;

function pathLength(entry: RouteEntry): number {
  return entry.path.type === 'PathPrefix' && entry.path.value === '/' ? 0 : entry.path.value.length;
}

/** Positive when `a` ranks above `b`. */
function compare(a: RouteEntry, b: RouteEntry): number {
  return (
    PATH_TYPE_RANK[a.path.type] - PATH_TYPE_RANK[b.path.type] ||
    pathLength(a) - pathLength(b) ||
    a.headers.length - b.headers.length ||
    a.headers.filter((h) => h.type === 'Exact').length - b.headers.filter((h) => h.type === 'Exact').length
  );
}

/** The route entries of every HTTPRoute among `manifests` attached to the gateway, in EG order. */
export function orderedEntries(
  manifests: readonly Manifest[],
  gateway: { namespace: string; name: string },
): RouteEntry[] {
  const entries: RouteEntry[] = [];
  for (const object of manifests) {
    if (object.kind !== 'HTTPRoute') continue;
    const spec = (object as any).spec;
    const namespace = object.metadata.namespace ?? 'default';
    const attached = (spec.parentRefs ?? []).some(
      (p: any) => p.name === gateway.name && (p.namespace ?? namespace) === gateway.namespace,
    );
    if (!attached) continue;
    const hosts: string[] = spec.hostnames?.length ? spec.hostnames : ['*'];
    spec.rules.forEach((rule: any, r: number) => {
      const matches = rule.matches?.length ? rule.matches : [{}];
      matches.forEach((match: any, m: number) => {
        for (const host of hosts) {
          entries.push({
            route: `${namespace}/${object.metadata.name}`,
            rule: r,
            match: m,
            host,
            path: match.path ?? { type: 'PathPrefix', value: '/' },
            headers: (match.headers ?? []).map((h: any) => ({
              type: h.type ?? 'Exact',
              name: h.name.toLowerCase(),
              value: h.value,
            })),
          });
        }
      });
    });
  }
  // sort.Stable(sort.Reverse(...)): highest precedence first, ties in input order.
  return entries
    .map((entry, index) => ({ entry, index }))
    .sort((a, b) => compare(b.entry, a.entry) || a.index - b.index)
    .map((x) => x.entry);
}

function pathMatches(entry: RouteEntry, rawPath: string): boolean {
  const path = rawPath.split('?')[0];
  const { type, value } = entry.path;
  if (type === 'Exact') return path === value;
  if (type === 'RegularExpression') return new RegExp(`^(?:${value})$`).test(path);
  const prefix = value.length > 1 ? value.replace(/\/+$/, '') : value;
  return prefix === '/' || path === prefix || path.startsWith(`${prefix}/`);
}

function virtualHostOf(entries: readonly RouteEntry[], host: string): string | undefined {
  const hosts = new Set(entries.map((e) => e.host));
  if (hosts.has(host)) return host;
  const wildcard = [...hosts]
    .filter((h) => h.startsWith('*.') && host.endsWith(h.slice(1)))
    .sort((a, b) => b.length - a.length)[0];
  if (wildcard !== undefined) return wildcard;
  return hosts.has('*') ? '*' : undefined;
}

/** The entry Envoy picks for a request, or undefined (Envoy's own 404, `NR`). */
export function selectEntry(
  entries: readonly RouteEntry[],
  request: { host: string; path: string; headers?: Record<string, string> },
): RouteEntry | undefined {
  const vhost = virtualHostOf(entries, request.host);
  if (vhost === undefined) return undefined;
  const headers = request.headers ?? {};
  return entries.find(
    (entry) =>
      entry.host === vhost &&
      pathMatches(entry, request.path) &&
      entry.headers.every((h) => {
        const value = headers[h.name];
        if (value === undefined) return false;
        return h.type === 'Exact' ? value === h.value : new RegExp(`^(?:${h.value})$`).test(value);
      }),
  );
}
