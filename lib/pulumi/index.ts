/**
 * Pulumi front end (`ai-gateway-constructs/pulumi`): the AI gateway constructs as Pulumi ComponentResources,
 * rendered through the same cdk8s construct model the cdk8s users synthesize.
 */
export { AIGatewayApp } from './app';
export { AIGatewayComponent } from './model';
export type { ChildResource } from './model';
export {
  AIGateway,
  AIRoute,
  Consumer,
  ProviderBackend,
  RateLimitRedis,
  SpendLimit,
  TokenRateLimit,
} from './components';
export type {
  AIGatewayArgs,
  AllowedRouteNamespaces,
  AIRouteArgs,
  AIRouteRuleArgs,
  BackendArgs,
  BackendCredentials,
  ComponentExtras,
  ConsumerArgs,
  GeneratedApiKeys,
  ExternalRedisArgs,
  GatewayReferenceArgs,
  InClusterRedisArgs,
  RouteBackendArgs,
  SpendLimitArgs,
  TokenRateLimitArgs,
} from './components';
export { ManagedCredentials } from './credentials';
export type { ManagedSecretProps } from './credentials';
export { Cdk8sChart } from './chart';
export type { Cdk8sChartArgs } from './chart';
export type { KubeMetadata, KubeObject } from './objects';
export type { AwsCredentialsOptions, AwsSharedCredentialsOptions } from '../credentials';
export type { ObservabilityOptions } from '../observability';
export type { ProxyAutoscaling, ProxyOptions } from '../envoy-proxy';
