import * as path from 'node:path';
import { ApiObject, App, Chart, JsonPatch, Yaml } from 'cdk8s';
import {
  AIGateway, AIRoute, ClientIdentity, Credentials, ModelMatch,
  ProviderBackend, RateLimitRedis, RateLimitUnit, TokenRateLimit,
} from '../../lib';

const app = new App();
const chart = new Chart(app, 'ai', { namespace: 'ai' });

// The namespace itself comes first in the output. It is cluster-scoped, so it drops the chart's namespace.
new ApiObject(chart, 'Namespace', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ai' } })
  .addJsonPatch(JsonPatch.remove('/metadata/namespace'));

// Token counters live in Redis. It requires a password from Secret redis-auth (see docs/install.md).
const redis = RateLimitRedis.inCluster(chart, 'Redis');
const gateway = new AIGateway(chart, 'Gateway', { name: 'ai-gateway' });

// Every `name` becomes the object's name in the cluster; without one, names come from the construct path.
const openai = ProviderBackend.openAI(chart, 'OpenAI', {
  name: 'openai',
  credentials: Credentials.apiKey({ secretName: 'openai', key: 'api-key' }),
});
const bedrock = ProviderBackend.awsBedrock(chart, 'Bedrock', {
  name: 'bedrock',
  region: 'us-east-1',
  credentials: Credentials.awsDefaultChain(),
});

const route = new AIRoute(chart, 'Chat', {
  name: 'chat',
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

// dist/ai.k8s.yaml, and the values Envoy Gateway must be installed with: dist/envoy-gateway-values.yaml.
if (require.main === module) {
  app.synth();
  Yaml.save(path.join(app.outdir, 'envoy-gateway-values.yaml'), [redis.helmValues]);
}

export { app, redis };
