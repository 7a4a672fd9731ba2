/**
 * A realistic AI gateway: the platform team's gateway, providers and tenant budget in `ai-platform`, a product
 * team's routes in `team-chat`. `npm run synth` writes the manifests to dist/ and the Envoy Gateway Helm values
 * to dist/envoy-gateway-values.yaml.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApiObject, App, Chart, Duration, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import { stringify } from 'yaml';
import {
  AIGateway,
  AIRoute,
  AllowedRoutes,
  ClientIdentity,
  Credentials,
  ModelMatch,
  ModelScope,
  ProviderBackend,
  RateLimitRedis,
  RateLimitUnit,
  TokenCost,
  TokenRateLimit,
} from '../../lib';

/** The chart's Namespace object (cluster-scoped, so without a namespace of its own). */
function namespace(chart: Chart, name: string): void {
  ApiObject.of(new kplus.Namespace(chart, 'Namespace', { metadata: { name } })).addJsonPatch(
    JsonPatch.remove('/metadata/namespace'),
  );
}

export class PlatformChart extends Chart {
  readonly gateway: AIGateway;
  readonly openai: ProviderBackend;
  readonly anthropic: ProviderBackend;
  readonly bedrock: ProviderBackend;
  readonly redis: RateLimitRedis;

  constructor(scope: Construct, id: string) {
    super(scope, id, { namespace: 'ai-platform' });
    namespace(this, 'ai-platform');
    this.redis = RateLimitRedis.inCluster(this, 'Redis');
    this.gateway = new AIGateway(this, 'Gateway', {
      name: 'ai-gateway',
      allowedRoutes: AllowedRoutes.fromNamespaces('team-chat'),
      requestBufferLimit: Size.mebibytes(50),
      processor: {
        replicas: 2,
        // Bedrock through IRSA: the processor's ServiceAccount assumes this role.
        serviceAccountAnnotations: {
          'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/ai-gateway-bedrock',
        },
      },
    });
    this.openai = ProviderBackend.openAI(this, 'OpenAI', {
      name: 'openai',
      credentials: Credentials.apiKey({ secretName: 'openai-api-key', key: 'api-key' }),
    });
    this.anthropic = ProviderBackend.anthropic(this, 'Anthropic', {
      name: 'anthropic',
      credentials: Credentials.apiKey({ secretName: 'anthropic-api-key', key: 'api-key' }),
    });
    this.bedrock = ProviderBackend.awsBedrock(this, 'Bedrock', {
      name: 'bedrock-us-east-1',
      region: 'us-east-1',
      credentials: Credentials.awsDefaultChain(),
    });
    // Every tenant gets 100k tokens per hour across all routes of the gateway. The gateway authenticates nobody:
    // the callers are trusted internal services that send their tenant in `x-tenant-id` (any client could send
    // any value). With JWT authentication, map a claim to the header (`jwt.claimToHeaders`) and use
    // `ClientIdentity.header('x-tenant-id')` instead.
    new TokenRateLimit(this, 'TenantBudget', {
      target: this.gateway,
      limit: 100_000,
      per: RateLimitUnit.HOUR,
      cost: TokenCost.totalTokens(),
      client: ClientIdentity.unverifiedHeader('x-tenant-id'),
      shared: true,
    });
  }
}

export class ChatTeamChart extends Chart {
  readonly route: AIRoute;

  constructor(scope: Construct, id: string, platform: PlatformChart) {
    super(scope, id, { namespace: 'team-chat' });
    namespace(this, 'team-chat');
    this.route = new AIRoute(this, 'Chat', {
      name: 'chat',
      gateway: platform.gateway,
      anthropicPathPrefix: '/anthropic/v1',
      requestTimeout: Duration.seconds(120),
      retry: { attempts: 2 },
      rules: [
        {
          // 70/30 split of one model between Anthropic and Bedrock.
          models: [ModelMatch.exact('claude-sonnet-4')],
          backends: [
            { backend: platform.anthropic, weight: 70, modelNameOverride: 'claude-sonnet-4-20250514' },
            { backend: platform.bedrock, weight: 30, modelNameOverride: 'us.anthropic.claude-sonnet-4-20250514-v1:0' },
          ],
        },
        { models: [ModelMatch.prefix('gpt-')], backends: [{ backend: platform.openai }] },
        {
          models: [ModelMatch.exact('nova-pro')],
          backends: [{ backend: platform.bedrock, modelNameOverride: 'us.amazon.nova-pro-v1:0' }],
        },
      ],
    });
    // Per model and tenant, output tokens weigh four times as much as input tokens.
    new TokenRateLimit(this, 'ModelBudget', {
      target: this.route,
      limit: 500_000,
      per: RateLimitUnit.DAY,
      cost: TokenCost.expression('input_tokens + 4 * output_tokens'),
      client: ClientIdentity.unverifiedHeader('x-tenant-id'),
      models: ModelScope.eachModel(),
    });
  }
}

export function buildExample(app: App): { platform: PlatformChart; team: ChatTeamChart } {
  const platform = new PlatformChart(app, 'platform');
  const team = new ChatTeamChart(app, 'team-chat', platform);
  return { platform, team };
}

if (require.main === module) {
  const app = new App();
  const { platform } = buildExample(app);
  app.synth();
  const values = path.join(app.outdir, 'envoy-gateway-values.yaml');
  fs.writeFileSync(
    values,
    `# helm install eg oci://docker.io/envoyproxy/gateway-helm --version v1.9.3 -n envoy-gateway-system --create-namespace -f ${path.basename(values)}\n${stringify(platform.redis.helmValues)}`,
  );
}
