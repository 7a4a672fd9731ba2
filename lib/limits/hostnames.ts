import type { IConstruct } from 'constructs';
import { invalid } from '../errors';

/** A listener a route can attach to: its name and, when it has one, its hostname (`*.` wildcards allowed). */
export interface ListenerHostname {
  readonly name: string;
  readonly hostname?: string;
}

/**
 * Whether a route hostname and a listener hostname have a host in common, by the Gateway API rules: a listener
 * without hostname takes every host; `*.example.com` stands for every host below `example.com` (any number of
 * labels), never for `example.com` itself; two wildcards meet when one suffix ends the other.
 */
export function hostnamesIntersect(listenerHostname: string | undefined, routeHostname: string): boolean {
  if (listenerHostname === undefined || listenerHostname === routeHostname) return true;
  const below = (host: string, wildcard: string): boolean =>
    wildcard.startsWith('*.') && host.endsWith(wildcard.slice(1));
  return below(routeHostname, listenerHostname) || below(listenerHostname, routeHostname);
}

/**
 * Throws naming the construct, `prop` and the hostname when a route hostname meets no listener hostname of its
 * gateway: Envoy Gateway drops such a hostname without a word, and refuses the route when none is left.
 */
export function checkRouteHostnames(
  scope: IConstruct,
  prop: string,
  routeHostnames: readonly string[],
  gateway: string,
  listeners: readonly ListenerHostname[],
): void {
  for (const hostname of routeHostnames) {
    if (listeners.some((listener) => hostnamesIntersect(listener.hostname, hostname))) continue;
    const hosts = listeners.map((listener) => `${listener.name} "${listener.hostname ?? '*'}"`).join(', ');
    throw invalid(
      scope,
      prop,
      hostname,
      `is outside the hostname of every listener of gateway ${gateway} (${hosts}); Envoy Gateway ignores a route ` +
        'hostname no listener accepts, and refuses the route when it has no other; use a hostname the listeners ' +
        'accept ' +
        'or widen a listener hostname',
    );
  }
}
