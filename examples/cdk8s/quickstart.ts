import { App, Chart } from 'cdk8s';
import {
  AIGateway, AIRoute, ClientIdentity, Credentials, ModelMatch,
  ProviderBackend, RateLimitRedis, RateLimitUnit, TokenRateLimit,
} from '../../lib';

const app = new App();
const chart = new Chart(app, 'ai', { namespace: 'ai' });

RateLimitRedis.inCluster(chart, 'Redis');
const gateway = new AIGateway(chart, 'Gateway', { name: 'ai-gateway' });

const openai = ProviderBackend.openAI(chart, 'OpenAI', {
  credentials: Credentials.apiKey({ secretName: 'openai', key: 'api-key' }),
});
const bedrock = ProviderBackend.awsBedrock(chart, 'Bedrock', {
  region: 'us-east-1',
  credentials: Credentials.awsDefaultChain(),
});

const route = new AIRoute(chart, 'Chat', {
  gateway,
  rules: [
    { models: [ModelMatch.prefix('gpt-')], backends: [{ backend: openai }] },
    {
      models: [ModelMatch.exact('claude-sonnet-4')],
      backends: [{ backend: bedrock, modelNameOverride: 'us.anthropic.claude-sonnet-4-20250514-v1:0' }],
    },
  ],
});

// 100k tokens per hour per tenant. Nothing authenticates `x-tenant-id` here, so this trusts the callers;
// with AIGateway `jwt.claimToHeaders`, use ClientIdentity.header() on the claim's header instead.
new TokenRateLimit(chart, 'TenantBudget', {
  target: route, limit: 100_000, per: RateLimitUnit.HOUR, client: ClientIdentity.unverifiedHeader('x-tenant-id'),
});

if (require.main === module) app.synth();

export { app };
