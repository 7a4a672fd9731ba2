import { App, Chart, Testing } from 'cdk8s';
import { AIGateway, AllowedRoutes, Credentials, ProviderBackend } from '../../lib';

export interface GatewayFixture {
  app: App;
  platform: Chart;
  team: Chart;
  gateway: AIGateway;
  openai: ProviderBackend;
  anthropic: ProviderBackend;
}

/** A gateway in `platform` admitting routes from `team`, with an OpenAI and an Anthropic backend beside it. */
export function gatewayFixture(): GatewayFixture {
  const app = Testing.app();
  const platform = new Chart(app, 'platform', { namespace: 'platform' });
  const team = new Chart(app, 'team', { namespace: 'team' });
  const gateway = new AIGateway(platform, 'Gateway', {
    name: 'gw',
    allowedRoutes: AllowedRoutes.fromNamespaces('platform', 'team'),
  });
  const openai = ProviderBackend.openAI(platform, 'OpenAI', {
    name: 'openai',
    credentials: Credentials.apiKey({ secretName: 'openai', key: 'api-key' }),
  });
  const anthropic = ProviderBackend.anthropic(platform, 'Anthropic', {
    name: 'anthropic',
    credentials: Credentials.apiKey({ secretName: 'anthropic', key: 'api-key' }),
  });
  return { app, platform, team, gateway, openai, anthropic };
}
