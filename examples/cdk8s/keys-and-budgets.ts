import { App, Chart } from 'cdk8s';
import {
  AIGateway,
  AIRoute,
  ApiKey,
  ClientIdentity,
  Consumer,
  Credentials,
  ModelMatch,
  Money,
  PriceCatalog,
  ProviderBackend,
  RateLimitRedis,
  RateLimitUnit,
  SpendLimit,
} from '../../lib';

const app = new App();
const chart = new Chart(app, 'keys', { namespace: 'ai' });
RateLimitRedis.inCluster(chart, 'Redis');
const openai = ProviderBackend.openAI(chart, 'OpenAI', {
  name: 'openai',
  credentials: Credentials.apiKey({ secretName: 'openai', key: 'api-key' }),
});

// keys-and-budgets:start
// Prices in USD per million tokens: the dated defaults, plus what your contract says.
const gateway = new AIGateway(chart, 'Gateway', {
  name: 'ai-gateway',
  prices: PriceCatalog.defaults().with({ 'gpt-4o-mini': { input: 0.15, output: 0.6, cachedInput: 0.075 } }),
});
// Keys live in Secrets you create (External Secrets, Sealed Secrets, kubectl): data key = client id, value = key.
new Consumer(chart, 'Search', {
  target: gateway, keys: [ApiKey.fromSecret('search-keys', ['search-prod', 'search-ci'])],
  models: [ModelMatch.exact('gpt-4o-mini')], // anything else: 403
  budgets: [{ limit: Money.usd(500), per: RateLimitUnit.THIRTY_DAYS }],
});
new Consumer(chart, 'Research', {
  target: gateway, keys: [ApiKey.fromSecret('research-keys', ['alice'])],
  budgets: [{ limit: Money.usd(2_000), per: RateLimitUnit.THIRTY_DAYS }],
});
// Stacks with the consumers' own budgets: $100 a day for each key, whoever holds it.
new SpendLimit(chart, 'PerKeyDaily', {
  target: gateway, limit: Money.usd(100), per: RateLimitUnit.DAY, client: ClientIdentity.apiKey(), shared: true,
});
// keys-and-budgets:end

new AIRoute(chart, 'Chat', {
  name: 'chat',
  gateway,
  rules: [{ models: [ModelMatch.exact('gpt-4o'), ModelMatch.exact('gpt-4o-mini')], backends: [{ backend: openai }] }],
});

if (require.main === module) app.synth();

export { app };
