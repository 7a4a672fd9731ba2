/** Gateway API hostname intersection as Envoy Gateway computes it (`computeHosts`, internal/gatewayapi/helpers.go). */

/**
 * Whether `wildcard` (`*.example.com`) covers `hostname` (a name or a narrower wildcard); a wildcard covers one or more
 * labels.
 */
export function wildcardCovers(wildcard: string, hostname: string): boolean {
  const suffix = wildcard.slice(1);
  const subject = hostname.startsWith('*') ? hostname.slice(1) : hostname;
  return subject.endsWith(suffix) && subject.length > suffix.length;
}

/**
 * The hostnames a route gets on a listener: the intersection of the route's hostnames and the listener's,
 * minus hostnames that another listener on the same port claims exactly (that listener isolates them). An
 * empty result means the route does not attach to this listener. `*` stands for "any host".
 */
export function intersectHostnames(
  routeHostnames: readonly string[],
  listenerHostname: string | undefined,
  otherListenerHostnamesOnPort: readonly string[],
): string[] {
  if (routeHostnames.length === 0) return [listenerHostname ?? '*'];
  const hosts = new Set<string>();
  for (const host of routeHostnames) {
    if (!listenerHostname || listenerHostname === host) hosts.add(host);
    else if (listenerHostname.startsWith('*') && host.startsWith('*')) {
      if (wildcardCovers(host, listenerHostname)) hosts.add(listenerHostname);
      if (wildcardCovers(listenerHostname, host)) hosts.add(host);
    } else if (listenerHostname.startsWith('*')) {
      if (wildcardCovers(listenerHostname, host)) hosts.add(host);
    } else if (host.startsWith('*')) {
      if (wildcardCovers(host, listenerHostname)) hosts.add(listenerHostname);
    }
  }
  for (const other of otherListenerHostnamesOnPort) hosts.delete(other);
  // EG returns the set sorted (Go's sets.List), which fixes the input order of the per-host routes.
  return [...hosts].sort();
}
