/**
 * Pulumi front end (`ai-gateway-constructs/pulumi`): the AI gateway constructs as Pulumi ComponentResources,
 * rendered through the same cdk8s construct model the cdk8s users synthesize.
 */
export {
  AIGateway,
  AIGatewayArgs,
  AIRoute,
  AIRouteArgs,
  AIRouteRuleArgs,
  BackendArgs,
  BackendCredentials,
  ComponentExtras,
  ExternalRedisArgs,
  GatewayReferenceArgs,
  InClusterRedisArgs,
  ProviderBackend,
  RateLimitRedis,
  RouteBackendArgs,
  TokenRateLimit,
  TokenRateLimitArgs,
} from './components';
export { ManagedCredentials, ManagedSecretProps } from './credentials';
export { Cdk8sChart, Cdk8sChartArgs } from './chart';
export { KubeObject } from './objects';
