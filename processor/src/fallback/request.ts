/**
 * The HTTP request of a fallback attempt, which the processor sends itself: what Envoy would send the backend after
 * the processor's changes and the backend's HTTPRoute rule, credentials included.
 */
import { BACKEND_HEADER, MODEL_HEADER, ROUTE_HEADER } from '@ai-gateway-constructs/processor-config';
import type { RuntimeConfig } from '../config/runtime';
import { CredentialFailure, upstreamHeaders, type BodyRead, type PreparedRequest } from '../extproc/upstream-request';

export interface AttemptRequest {
  /** The processor-config name of the backend. */
  readonly backend: string;
  readonly method: string;
  /** Path and query, as the backend expects them. */
  readonly path: string;
  /** Lower-case names; `host` is the backend's host name, as Envoy's URL rewrite sets it. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/**
 * Headers that belong to one connection (RFC 9110 section 7.6.1), Envoy's own, or the gateway's routing: none of them
 * reaches a backend from Envoy either (the route rule removes the backend header; the model and route headers are
 * for budgets Envoy charges, which a request sent by the processor never passes).
 */
const NOT_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
  'content-length',
  'expect',
  BACKEND_HEADER,
  MODEL_HEADER,
  ROUTE_HEADER,
]);

export async function attemptRequest(
  runtime: RuntimeConfig,
  read: BodyRead,
  prepared: PreparedRequest,
  raw: Buffer,
): Promise<AttemptRequest | CredentialFailure> {
  const all = await upstreamHeaders(runtime, read, prepared, raw);
  if (all instanceof CredentialFailure) return all;
  const backend = prepared.exchange.route.backend.config;
  const headers: Record<string, string> = { host: backend.endpoint.hostname };
  for (const name in all) {
    if (name.startsWith(':') || name.startsWith('x-envoy-') || NOT_FORWARDED.has(name)) continue;
    headers[name] = all[name]!;
  }
  return {
    backend: backend.name,
    method: read.headers.get(':method') ?? 'POST',
    path: prepared.upstream.path,
    headers,
    body: prepared.upstreamBody ?? raw,
  };
}
