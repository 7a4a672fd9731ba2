/**
 * `request_attributes` / `response_attributes`: Envoy evaluates each configured attribute name as a CEL
 * expression and sends the values that evaluate under `attributes["envoy.filters.http.ext_proc"]` with the first
 * message of a direction; an attribute that fails to evaluate is left out. We evaluate the plain attribute paths of
 * Envoy's attribute vocabulary that the local data plane knows; any other name is left out, as a failing one is.
 */
import type { HeaderMap, StreamContext } from '../filter';

export function evaluateAttributes(
  names: readonly string[],
  stream: StreamContext,
  responseHeaders: HeaderMap | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of names) {
    const value = attribute(name, stream, responseHeaders);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

function attribute(name: string, stream: StreamContext, responseHeaders: HeaderMap | undefined): unknown {
  const request = stream.requestHeaders;
  const path = request.get(':path');
  switch (name) {
    case 'request.path':
      return path;
    case 'request.url_path':
      return path === undefined ? undefined : path.split('?')[0];
    case 'request.query':
      return path === undefined ? undefined : path.includes('?') ? path.slice(path.indexOf('?') + 1) : '';
    case 'request.host':
      return request.get(':authority') ?? request.get('host');
    case 'request.scheme':
      return request.get(':scheme');
    case 'request.method':
      return request.get(':method');
    case 'request.headers':
      return headerRecord(request);
    case 'request.referer':
      return request.get('referer');
    case 'request.useragent':
      return request.get('user-agent');
    case 'request.id':
      return request.get('x-request-id');
    case 'response.code': {
      const status = responseHeaders?.get(':status');
      return status === undefined ? undefined : Number(status);
    }
    case 'response.headers':
      return responseHeaders ? headerRecord(responseHeaders) : undefined;
    case 'response.code_details':
      return stream.responseCodeDetails;
    case 'source.address':
      return stream.downstreamAddress;
    case 'xds.route_name': {
      const route = stream.route() as { name?: unknown } | undefined;
      return typeof route?.name === 'string' ? route.name : undefined;
    }
    default:
      return undefined;
  }
}

function headerRecord(headers: HeaderMap): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name] of headers.list()) {
    if (!name.startsWith(':') && !(name in out)) out[name] = headers.getJoined(name)!;
  }
  return out;
}
