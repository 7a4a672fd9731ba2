/**
 * Envoy's ext_proc HTTP filter as Envoy Gateway v1.9 configures it from an EnvoyExtensionPolicy, talking real gRPC
 * (`envoy.service.ext_proc.v3.ExternalProcessor/Process`) to the processor. The settings live in the data plane
 * model (`RouteModel.extProcs`); the core creates the filter for a stream when the route matched FIRST enables it,
 * and the filter then stays for the whole stream, whatever the route is after a route-cache clear (the router's
 * local replies pass through its response phase too).
 *
 * A response body mode of FULL_DUPLEX_STREAMED streams the response through the filter (`encodeStream`, see
 * ext-proc/session.ts); it is the only mode that sends trailers (the response's, when the upstream had some).
 * Not modelled (none of it is in what we synthesize): request trailers, a FULL_DUPLEX_STREAMED request body or
 * one with shadowMode (refused at creation), CONTINUE_AND_REPLACE in FULL_DUPLEX_STREAMED (answered 500),
 * per-route ext_proc overrides (EG emits an empty per-route config), `override_message_timeout` (EG sets no
 * `max_message_timeout`, so Envoy ignores it too), CEL attributes beyond plain request/response/source/xds paths
 * (others are left out, as Envoy leaves out those that fail to evaluate), and the transport's own wording in
 * gRPC error details (`ext_proc_error_gRPC_error_14{...}` carries grpc-js's message, not Envoy's).
 */
import { FILTER_ORDER, type HttpFilter, type StreamContext } from './filter';
import { ExtProcClients } from './ext-proc/client';
import { ExtProcSession, initialDirectionState, type ExtProcSessionOptions } from './ext-proc/session';
import type { ExtProcSettings } from './ext-proc/settings';

export { ExtProcClients } from './ext-proc/client';
export { EG_DEFAULT_BUFFER_LIMIT_BYTES, type ExtProcSessionOptions as ExtProcFilterOptions } from './ext-proc/session';
export {
  DEFAULT_MESSAGE_TIMEOUT_MS,
  envoyProcessingMode,
  extProcSettingsFromPolicy,
  type EnvoyProcessingMode,
  type ExtProcBodyMode,
  type ExtProcPhaseSettings,
  type ExtProcSettings,
} from './ext-proc/settings';

/** Envoy's HTTP filter name for one ext_proc entry, as EG names it in the HCM. */
export function extProcFilterName(settings: ExtProcSettings): string {
  return `envoy.filters.http.ext_proc/${settings.name}`;
}

/** ext_proc's place in EG's filter chain: 100 + the entry's index within its policy. */
export function extProcFilterOrder(settings: ExtProcSettings): number {
  const index = Number(settings.name.slice(settings.name.lastIndexOf('/') + 1));
  return FILTER_ORDER.extProc + (Number.isInteger(index) ? index : 0);
}

/**
 * The filter for one ext_proc entry. `target` is where the processor listens (`host:port`); `clients` holds
 * the gRPC channels (one per target) and outlives the streams. The returned filter may serve any number of
 * streams: it keeps each stream's state apart and drops it in `onStreamComplete`. `options.bufferLimitBytes`:
 * the listener's buffer limit (ClientTrafficPolicy `connection.bufferLimit`, else EG's 32 KiB).
 */
export function createExtProcFilter(
  settings: ExtProcSettings,
  target: string,
  clients: ExtProcClients,
  options: ExtProcSessionOptions = {},
): HttpFilter {
  // Fail at creation, not on the first request, for what the model cannot run.
  initialDirectionState(settings, 'request');
  initialDirectionState(settings, 'response');
  const sessions = new WeakMap<StreamContext, ExtProcSession>();
  const sessionOf = (stream: StreamContext): ExtProcSession => {
    let session = sessions.get(stream);
    if (!session) {
      session = new ExtProcSession(settings, target, clients, stream, options);
      sessions.set(stream, session);
    }
    return session;
  };
  return {
    name: extProcFilterName(settings),
    decodeHeaders: (stream, endOfStream) => sessionOf(stream).decodeHeaders(endOfStream),
    decodeData: (stream) => sessionOf(stream).decodeData(),
    encodeHeaders: (stream, headers, endOfStream) => sessionOf(stream).encodeHeaders(headers, endOfStream),
    encodeData: (stream, chunk, endOfStream) => sessionOf(stream).encodeData(chunk, endOfStream),
    encodeStream: (stream, headers, body) => sessionOf(stream).encodeStream(headers, body),
    onStreamComplete: (stream) => {
      sessions.get(stream)?.finish();
      sessions.delete(stream);
    },
  };
}
