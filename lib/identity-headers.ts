/**
 * Request headers a token budget must not key on. Envoy builds a budget's rate-limit descriptors after the
 * processor has run (ext_proc comes before the rate-limit filter), and again at stream end, after the router
 * applied the route's filters, to charge the tokens. A header the processor, a filter or a backend sets or
 * removes by then no longer says who the client is: one bucket for everyone (the provider's key), a new bucket
 * per request (SigV4 signatures and dates), or no descriptor at all, which Envoy treats as "no limit".
 */
import { BACKEND_HEADER, MODEL_HEADER, ROUTE_HEADER } from '@ai-gateway-constructs/processor-config';

const CREDENTIAL =
  'is a client credential header: the processor removes it and sets the provider credential ' +
  'before the budget is counted';

/** Exact names, with the reason they cannot identify a client. */
export const UNSTABLE_REQUEST_HEADERS: Readonly<Record<string, string>> = {
  authorization: CREDENTIAL,
  'x-api-key': CREDENTIAL,
  'api-key': CREDENTIAL,
  [BACKEND_HEADER]: 'is set by the processor to the chosen backend and removed before the provider',
  [MODEL_HEADER]:
    'is set by the processor to the requested model; use `models: ModelScope.eachModel()` for per-model budgets',
  [ROUTE_HEADER]:
    'is set by the processor to the matched AIRoute; target the route, or a gateway budget with ' +
    '`shared: false`, for per-route budgets',
  'anthropic-version': 'is set by the processor for Anthropic backends',
  'content-length': 'is rewritten by the processor when it translates the body',
  'content-type': 'describes the body, which the processor rewrites',
  'content-encoding': 'describes the body, which the processor rewrites',
  host: 'is rewritten to the provider host by the route before the tokens are charged',
  // Envoy Gateway's listeners use the remote address and do not preserve the client's request id.
  'x-request-id': 'is replaced by Envoy with a new id for every request',
  'x-forwarded-proto': 'is set by Envoy from the connection',
  'x-forwarded-for': "is appended to by Envoy with the client's address (use a client identity the gateway verifies)",
  'x-forwarded-client-cert': 'is removed by Envoy from client requests (Envoy Gateway sanitizes it by default)',
};

/** Name prefixes, with the reason. */
export const UNSTABLE_REQUEST_HEADER_PREFIXES: Readonly<Record<string, string>> = {
  'x-amz-': 'belongs to AWS SigV4 signing, which the processor redoes on every request to an AWS backend',
  'x-aigw-': 'carries per-request credentials the processor removes',
  'x-envoy-': 'is an Envoy-internal header that Envoy sets or strips',
};

/** Why `header` cannot identify a client, or undefined when it can. */
export function unstableHeaderReason(header: string): string | undefined {
  const exact = UNSTABLE_REQUEST_HEADERS[header];
  if (exact !== undefined) return exact;
  for (const [prefix, reason] of Object.entries(UNSTABLE_REQUEST_HEADER_PREFIXES)) {
    if (header.startsWith(prefix)) return reason;
  }
  return undefined;
}
