/**
 * The public API of `ai-gateway-constructs`, the package root (the Pulumi components are its `./pulumi` entry point).
 *
 * Every name is exported deliberately: the constructs, their props and option types, the closed-choice and unit
 * classes their props take, the `IXxx` interfaces of referenced resources, the validation error, and the few header
 * and metadata names users match in their own Envoy policies and logs. Anything else in lib/ is an implementation
 * detail and may change in any release. api/ai-gateway-constructs.api.md records this surface: `npm test` fails when
 * it changes without the report (`npm run api:update`, see docs/releasing.md).
 */

// The gateway and what it refers to.
export { AIGateway, AllowedRoutes, GatewayClass, GatewayReference } from './ai-gateway';
export type {
  AIGatewayProps,
  HttpListenerOptions,
  HttpsListenerOptions,
  IGatewayReference,
  JwtAuthenticationOptions,
} from './ai-gateway';

// The processor each gateway runs: reachable as `AIGateway.processor`, configured through `AIGatewayProps.processor`,
// never constructed by users (so it is exported as a type).
export { ProxyDeployMode } from './processor';
export type { Processor, ProcessorOptions, ProcessorProps, ProcessorShutdown } from './processor';
export { ProcessorImage } from './processor-image';

// The gateway's proxy pods: the EnvoyProxy an AIGateway emits (`AIGatewayProps.proxy`) or references (`envoyProxy`).
export { EnvoyProxyReference, ProxyMergeType } from './envoy-proxy';
export type { ProxyAutoscaling, ProxyOptions } from './envoy-proxy';

// Observability: PodMonitors, a PrometheusRule and a Grafana dashboard per gateway (`AIGatewayProps.observability`).
export type { ObservabilityOptions } from './observability';

// Routes.
export { AIRoute } from './ai-route';
export type { AIRouteProps, AIRouteRule, PassthroughEndpoint, RouteBackend, RouteRetry } from './ai-route';
export { ModelMatch } from './model-match';
export { Fallback } from './fallback';
export type { FallbackOptions } from './fallback';

// Provider backends and their credentials.
export { ProviderBackend } from './provider-backend';
export type {
  AnthropicBackendProps,
  AwsAnthropicBackendProps,
  AwsBedrockBackendProps,
  AzureOpenAIBackendProps,
  BodyMutationOptions,
  GcpAnthropicBackendProps,
  GcpVertexAIBackendProps,
  HeaderMutationOptions,
  KubernetesServiceBackendProps,
  OpenAIBackendProps,
  OpenAICompatibleBackendProps,
  ProviderBackendOptions,
} from './provider-backend';
export { Credentials } from './credentials';
export type {
  AwsCredentialsOptions,
  AwsSharedCredentialsOptions,
  AzureEntraOptions,
  CredentialKind,
  SecretKeyReference,
} from './credentials';

// Budgets (tokens and money), consumers with API keys, prices, and the Redis budgets are counted in.
export { ClientIdentity, ModelScope, RateLimitUnit, TokenCost, TokenRateLimit } from './token-rate-limit';
export type { BudgetOptions, IBudgetTarget, TokenRateLimitProps } from './token-rate-limit';
export { SpendLimit } from './spend-limit';
export type { SpendLimitProps } from './spend-limit';
export { Money, PriceCatalog } from './money';
export type { ModelPricing } from './money';
export { ApiKey, Consumer } from './consumer';
export type { ApiKeyOptions, ConsumerBudget, ConsumerProps } from './consumer';
export { RateLimitRedis, REDIS_DEFAULT_IMAGE } from './rate-limit-redis';
export type {
  EnvoyGatewayHelmValues,
  ExternalRedisProps,
  InClusterRedisProps,
  RedisPasswordSecret,
  SecretEnvVar,
} from './rate-limit-redis';

// GitOps: Argo CD sync waves for the synthesized objects.
export { ArgoCd } from './argo-cd';
export type { ArgoCdAnnotations } from './argo-cd';

// Synth-time validation failures: the construct path, the prop and the value.
export { AIGatewayValidationError } from './errors';

// What the processor exposes to the rest of Envoy: the headers it sets (for policies and routes matching the model or
// the backend) and the dynamic metadata it writes token counts into (for access logs). The config.json it reads is a
// contract between this library and the processor image of the same version only, so its types are not exported.
export {
  BACKEND_HEADER,
  CLIENT_ID_HEADER,
  CONSUMER_HEADER,
  METADATA_NAMESPACE,
  MODEL_HEADER,
  TOKEN_METADATA_KEYS,
} from '@ai-gateway-constructs/processor-config';
