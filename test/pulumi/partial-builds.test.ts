import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import * as cdk from '../../lib';
import { AIGateway, AIGatewayApp, AIRoute, ProviderBackend, RateLimitRedis, TokenRateLimit } from '../../lib/pulumi';
import { type Registration, kubeObjects, useMocks, waitForRPCs } from './harness';

/** Waits for the app's model and until no further registration arrives; returns the Kubernetes objects. */
async function registered(registrations: Registration[], app: { readonly done: Promise<unknown> }) {
  await app.done;
  await waitForRPCs();
  let seen = -1;
  while (registrations.length !== seen) {
    seen = registrations.length;
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  return kubeObjects(registrations);
}

describe('AIGatewayApp partial builds', () => {
  it('skip app-wide checks: a preview without the one route serving a budget model plans the rest', async () => {
    const mocks = await useMocks({ preview: true, unknownOutputsFor: ['kubernetes:core/v1:Namespace'] });
    const warnings: string[] = [];
    const warn = jest.spyOn(pulumi.log, 'warn').mockImplementation(async (message) => void warnings.push(message));
    const team = new k8s.core.v1.Namespace('team', { metadata: { name: 'team' } }).metadata.name;
    const app = new AIGatewayApp('app', (app) => {
      RateLimitRedis.external('redis', { url: 'redis.example:6379' }, { parent: app });
      const gateway = new AIGateway(
        'gw',
        { namespace: 'ai', allowedRoutes: cdk.AllowedRoutes.fromNamespaces('team') },
        { parent: app },
      );
      const backend = ProviderBackend.kubernetesService(
        'vllm',
        { namespace: 'ai', serviceName: 'vllm', port: 8000 },
        { parent: app },
      );
      new AIRoute('chat', {
        gateway,
        namespace: team,
        rules: [{ models: [cdk.ModelMatch.exact('llama')], backends: [{ backend }] }],
      });
      new TokenRateLimit('llama', {
        target: gateway,
        limit: 1000,
        per: cdk.RateLimitUnit.MINUTE,
        models: cdk.ModelScope.only('llama'),
      });
    });
    const objects = await registered(mocks.registrations, app);
    warn.mockRestore();
    // Only the route is left out (its namespace is a placeholder the gateway does not admit); the budget, whose
    // model only that route serves, is planned with the gateway: the build without the route is partial.
    expect(warnings).toEqual([
      expect.stringMatching(/^the objects of AIRoute "chat" cannot be planned while some inputs are unknown; /),
    ]);
    const kinds = objects.filter((r) => r.type !== 'kubernetes:core/v1:Namespace').map((r) => r.type.split(':').pop());
    expect(kinds).toEqual(expect.arrayContaining(['Gateway', 'BackendTrafficPolicy']));
  });
});
