/**
 * The gateway of `examples/cdk8s/main.ts`, deployed with `pulumi up`: the platform team's gateway, providers,
 * Redis and tenant budget in `ai-platform`, a product team's routes in `team-chat`. Pulumi manages the two
 * namespaces and the provider API keys (config secrets), which the cdk8s example expects to exist. The AI gateway
 * components live in one `AIGatewayApp`: once its function has returned, the app builds them together (the
 * gateway's processor config holds the route and both budgets).
 *
 *   pulumi config set --secret openaiApiKey sk-...
 *   pulumi config set --secret anthropicApiKey sk-ant-...
 *   pulumi up
 */
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { Duration, Size } from 'cdk8s';
import { ClientIdentity, Credentials, ModelMatch, ModelScope, RateLimitUnit, TokenCost } from '../../lib';
import {
  AIGateway,
  AIGatewayApp,
  AIRoute,
  ManagedCredentials,
  ProviderBackend,
  RateLimitRedis,
  TokenRateLimit,
} from '../../lib/pulumi';

const config = new pulumi.Config();

// One Output per namespace, reused everywhere: while the namespaces are still unknown (first preview), the
// model can only tell that two namespaces are equal when they are the same input.
const platformNamespace = new k8s.core.v1.Namespace('ai-platform', { metadata: { name: 'ai-platform' }, spec: {} })
  .metadata.name;
const teamNamespace = new k8s.core.v1.Namespace('team-chat', { metadata: { name: 'team-chat' }, spec: {} }).metadata
  .name;

// The AI gateway components. Gateways, backends and Redis name the app as their parent; routes and budgets join the
// app of the components they refer to.
const app = new AIGatewayApp('ai-gateway-example', (app) => {
  // The construct paths of examples/cdk8s/main.ts, so the Deployments' pod selectors match the cdk8s output.
  const redis = RateLimitRedis.inCluster(
    'redis',
    { namespace: platformNamespace, constructPath: 'platform/Redis' },
    { parent: app },
  );

  const gateway = new AIGateway(
    'ai-gateway',
    {
      constructPath: 'platform/Gateway',
      namespace: platformNamespace,
      // The route's namespace Output itself, so a preview that does not know it yet still sees the route admitted.
      allowedRoutes: { namespaces: [teamNamespace] },
      requestBufferLimit: Size.mebibytes(50),
      processor: {
        replicas: 2,
        // Bedrock through IRSA: the processor's ServiceAccount assumes this role.
        serviceAccountAnnotations: {
          'eks.amazonaws.com/role-arn':
            config.get('bedrockRoleArn') ?? 'arn:aws:iam::123456789012:role/ai-gateway-bedrock',
        },
      },
    },
    { parent: app },
  );

  const openai = ProviderBackend.openAI(
    'openai',
    {
      namespace: platformNamespace,
      credentials: ManagedCredentials.apiKey({
        value: config.requireSecret('openaiApiKey'),
        secretName: 'openai-api-key',
        key: 'api-key',
      }),
    },
    { parent: app },
  );
  const anthropic = ProviderBackend.anthropic(
    'anthropic',
    {
      namespace: platformNamespace,
      credentials: ManagedCredentials.apiKey({
        value: config.requireSecret('anthropicApiKey'),
        secretName: 'anthropic-api-key',
        key: 'api-key',
      }),
    },
    { parent: app },
  );
  const bedrock = ProviderBackend.awsBedrock(
    'bedrock',
    {
      name: 'bedrock-us-east-1',
      namespace: platformNamespace,
      region: 'us-east-1',
      credentials: Credentials.awsDefaultChain(),
    },
    { parent: app },
  );

  // Every tenant gets 100k tokens per hour across all routes of the gateway. The gateway authenticates nobody:
  // the callers are trusted internal services that send their tenant in `x-tenant-id` (any client could send any
  // value). With JWT authentication, map a claim to the header (`jwt.claimToHeaders`) and use
  // `ClientIdentity.header('x-tenant-id')` instead.
  new TokenRateLimit('tenant-budget', {
    target: gateway,
    limit: 100_000,
    per: RateLimitUnit.HOUR,
    cost: TokenCost.totalTokens(),
    client: ClientIdentity.unverifiedHeader('x-tenant-id'),
    shared: true,
    // Budgets are named by their construct path in 429s and metrics: the same path as in the cdk8s example.
    constructPath: 'platform/TenantBudget',
  });

  const chat = new AIRoute('chat', {
    gateway,
    namespace: teamNamespace,
    anthropicPathPrefix: '/anthropic/v1',
    requestTimeout: Duration.seconds(120),
    retry: { attempts: 2 },
    rules: [
      {
        // 70/30 split of one model between Anthropic and Bedrock.
        models: [ModelMatch.exact('claude-sonnet-4')],
        backends: [
          { backend: anthropic, weight: 70, modelNameOverride: 'claude-sonnet-4-20250514' },
          { backend: bedrock, weight: 30, modelNameOverride: 'us.anthropic.claude-sonnet-4-20250514-v1:0' },
        ],
      },
      { models: [ModelMatch.prefix('gpt-')], backends: [{ backend: openai }] },
      {
        models: [ModelMatch.exact('nova-pro')],
        backends: [{ backend: bedrock, modelNameOverride: 'us.amazon.nova-pro-v1:0' }],
      },
    ],
  });

  // Per model and tenant, output tokens weigh four times as much as input tokens.
  new TokenRateLimit('model-budget', {
    target: chat,
    limit: 500_000,
    per: RateLimitUnit.DAY,
    cost: TokenCost.expression('input_tokens + 4 * output_tokens'),
    client: ClientIdentity.unverifiedHeader('x-tenant-id'),
    models: ModelScope.eachModel(),
    constructPath: 'team-chat/ModelBudget',
  });

  return {
    gatewayName: gateway.gatewayName,
    gatewayNamespace: gateway.gatewayNamespace,
    processorService: gateway.processorServiceName,
    processorConfigMap: gateway.configMapName,
    chatRoute: chat.routeName,
    envoyGatewayHelmValues: redis.helmValues,
  };
});

export const gatewayName = app.result.gatewayName;
export const gatewayNamespace = app.result.gatewayNamespace;
export const processorService = app.result.processorService;
export const processorConfigMap = app.result.processorConfigMap;
export const chatRoute = app.result.chatRoute;
/** Values for the Envoy Gateway Helm install (`helm ... -f values.json`, JSON is valid YAML). */
export const envoyGatewayHelmValues = app.result.envoyGatewayHelmValues;
