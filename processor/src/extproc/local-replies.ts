/**
 * Envoy runs ext_proc's response phase for its own local replies too: the router's 404 after the re-match found
 * no route, the rate-limit filter's 429, an upstream connect failure or timeout, a direct response. Envoy's
 * `response.code_details` attribute tells them apart from a backend's answer: the router sets `via_upstream`
 * right before it encodes an upstream response's headers; a local reply carries the details it was sent with
 * (Envoy's `ResponseCodeDetailValues`, e.g. `route_not_found`, `request_rate_limited`,
 * `upstream_reset_before_response_started{remote_connection_failure}`). The EnvoyExtensionPolicy asks for the
 * attribute in the response phase; Envoy sends it under `attributes["envoy.filters.http.ext_proc"]` with the
 * first message of that phase, i.e. the response headers.
 */
import type { ProcessingRequest, ProtoStruct } from '../grpc/messages';

/** The key Envoy's ext_proc filter sends its evaluated attributes under. */
export const EXT_PROC_ATTRIBUTES_KEY = 'envoy.filters.http.ext_proc';
export const CODE_DETAILS_ATTRIBUTE = 'response.code_details';
export const VIA_UPSTREAM = 'via_upstream';

/** What produced the response the processor is looking at. */
export type ResponseOrigin =
  /** The chosen backend answered (or the attribute was not sent: configs from before it existed). */
  | { readonly kind: 'upstream' }
  /**
   * Envoy answered because the chosen backend could not be reached or did not answer in time (503 `UF`/`UH`,
   * 504 `UT`): the backend's failure, for its circuit breaker and its metrics. `errorType` is the details
   * without their bracketed reason, from a fixed set.
   */
  | { readonly kind: 'backendFailure'; readonly details: string; readonly errorType: string }
  /** Envoy answered for a reason that says nothing about the backend (no route, rate limit, ...). */
  | { readonly kind: 'gateway'; readonly details: string };

export const FROM_UPSTREAM: ResponseOrigin = { kind: 'upstream' };

/** Local replies that mean the chosen backend failed: Envoy's details for upstream connect failures and timeouts. */
const BACKEND_FAILURE_DETAILS = new Set([
  'upstream_reset_before_response_started',
  'upstream_reset_after_response_started',
  'response_timeout',
  'upstream_per_try_timeout',
  'upstream_per_try_idle_timeout',
  'upstream_max_stream_duration_reached',
  'no_healthy_upstream',
]);

/**
 * Reset reasons that are Envoy's own load shedding, not the backend's failure (Envoy's router does not hold
 * them against the host either: `overflow` is its per-cluster circuit breaker, `overload_manager` its overload
 * manager).
 */
const LOCAL_RESET_REASONS = new Set(['overflow', 'overload_manager']);

/** The `response.code_details` attribute of a response-headers message, if Envoy sent it. */
export function responseCodeDetails(request: ProcessingRequest): string | undefined {
  // protobufjs gives every message an (empty) attributes map: no attributes = one lookup in an empty object.
  const attributes: ProtoStruct | undefined = request.attributes?.[EXT_PROC_ATTRIBUTES_KEY];
  if (attributes === undefined) return undefined;
  const value = attributes.fields?.[CODE_DETAILS_ATTRIBUTE];
  return typeof value?.stringValue === 'string' && value.stringValue.length > 0 ? value.stringValue : undefined;
}

export function classifyResponse(details: string | undefined): ResponseOrigin {
  if (details === undefined || details === VIA_UPSTREAM) return FROM_UPSTREAM;
  const brace = details.indexOf('{');
  const base = brace === -1 ? details : details.slice(0, brace);
  if (!BACKEND_FAILURE_DETAILS.has(base)) return { kind: 'gateway', details };
  if (brace !== -1) {
    // `upstream_reset_before_response_started{<reason>[,<transport failure reason>]}`
    const end = details.indexOf(',', brace);
    const reason = details.slice(brace + 1, end === -1 ? details.length - 1 : end);
    if (LOCAL_RESET_REASONS.has(reason)) return { kind: 'gateway', details };
  }
  return { kind: 'backendFailure', details, errorType: base };
}
