/**
 * The processor config contract, shared by the construct library (which writes `config.json` and validates it with
 * `parseProcessorConfig` at synth) and the processor (which validates it again at load). Both sides import it from
 * here only; it may depend on nothing but zod and re2js, so it runs wherever the constructs synthesize.
 */
export {
  CONFIG_VERSION,
  METADATA_NAMESPACE,
  MODEL_HEADER,
  BACKEND_HEADER,
  ROUTE_HEADER,
  TOKEN_METADATA_KEYS,
  CEL_COST_VARIABLES,
  SERVED_ENDPOINTS,
  PASSTHROUGH_METHODS,
  PASSTHROUGH_SCHEMAS,
  MAX_PASSTHROUGH_PATH_LENGTH,
  isPassthroughSubpath,
  passthroughPathProblem,
  secretKeyRefSchema,
  backendSchemaSchema,
  backendAuthSchema,
  headerMutationSchema,
  bodyMutationSchema,
  backendConfigSchema,
  modelMatchSchema,
  backendRefSchema,
  fallbackSchema,
  MAX_FALLBACK_ATTEMPTS,
  routeRuleSchema,
  passthroughEndpointSchema,
  routeEndpointSchema,
  routeConfigSchema,
  costSchema,
  processorConfigSchema,
  ProcessorConfigError,
  parseProcessorConfig,
} from './schema';
export type {
  PassthroughMethod,
  ProcessorConfig,
  BackendConfig,
  BackendSchema,
  BackendAuth,
  SecretKeyRef,
  HeaderMutation,
  BodyMutation,
  RouteConfig,
  RouteRule,
  RouteEndpoint,
  ModelMatch,
  BackendRef,
  FallbackConfig,
  PassthroughEndpoint,
  CostConfig,
} from './schema';
export { compileModelRegex, re2Problem } from './regex';
export type { ModelRegex } from './regex';
export {
  PLAIN_CONFIG_KEY,
  MANIFEST_KEY,
  BUNDLE_FORMAT,
  MAX_DECODED_CONFIG_BYTES,
  MAX_BUNDLE_PARTS,
  IncompleteConfigBundleError,
  bundlePartKey,
  configBundleManifestSchema,
  decodeConfigBundle,
  encodeConfigBundle,
  isConfigBundleManifest,
  parseConfigBundleManifest,
} from './bundle';
export type { ConfigBundle, ConfigBundleCodec, ConfigBundleManifest, ConfigBundlePart } from './bundle';
export { literalPrefix } from './regex-literal';
export {
  CONSUMER_HEADER,
  CLIENT_ID_HEADER,
  RATE_LIMIT_UNIT_NAMES,
  RATE_LIMIT_UNIT_SECONDS,
  MAX_RATE_LIMIT_VALUE,
  MAX_REQUEST_COST,
  PICO_USD_PER_USD,
  modelPriceSchema,
  consumerLimitSchema,
  consumerSchema,
  consumersSchema,
  budgetSchema,
} from './governance';
export type {
  RateLimitUnitName,
  ModelPrice,
  ConsumerLimit,
  ConsumerConfig,
  ConsumersConfig,
  BudgetConfig,
} from './governance';
export { PROCESSOR_NODE_OPTIONS } from './runtime';
