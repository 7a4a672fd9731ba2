/** The local data plane: Envoy Gateway v1.9 + Envoy, modelled for the resources the constructs synthesize. */
export { HeaderMap, FILTER_ORDER } from './filter';
export type {
  HttpFilter,
  StreamContext,
  LocalReply,
  DecodeResult,
  EncodeResult,
  EncodedBody,
  StreamedEncoding,
} from './filter';
export type * from './model';
export { loadManifests, parseManifests } from './manifests';
export { translate, type TranslateOptions } from './translate';
export { selectRoute } from './route-match';
export { startDataPlane, type DataPlaneOptions, type RunningDataPlane } from './server';
export type { RateLimitStats } from './rate-limit';
export type { ApiKeyAuthSettings, ApiKeySource, ApiKeyCredential } from './api-key-auth';
export type { AccessLogEntry } from './filter-manager';
export type { ResponseOverrideSettings, ResponseOverrideRule } from './custom-response';
export type { EchoResponseBody } from './echo';
