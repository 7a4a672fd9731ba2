import * as pulumi from '@pulumi/pulumi';
import { App, Chart, Duration } from 'cdk8s';
import * as cdk from '../../lib';
import { AIGateway, AIGatewayApp, AIRoute, ProviderBackend } from '../../lib/pulumi';
import type { KubeObject } from '../../lib/pulumi';
import { Registration, identityOf, kubeObjects, objectNamed, useMocks, waitForRPCs } from './harness';

/** Waits for the app's model and until no further registration arrives; returns the Kubernetes objects. */
async function registered(
  registrations: Registration[],
  app: { readonly done: Promise<unknown> },
): Promise<Registration[]> {
  await app.done;
  await waitForRPCs();
  let seen = -1;
  while (registrations.length !== seen) {
    seen = registrations.length;
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  return kubeObjects(registrations);
}

const fallback = () => cdk.Fallback.onFailure({ statusCodes: [429, 503], attemptTimeout: Duration.seconds(45) });
const apiKey = (secretName: string) => cdk.Credentials.apiKey({ secretName, key: 'api-key' });

describe('Pulumi AIRoute with a fallback rule', () => {
  it('renders what cdk8s synthesizes: the fallback in the config and the full-duplex policy', async () => {
    const mocks = await useMocks();
    const app = new AIGatewayApp('ai', (app) => {
      const gateway = new AIGateway('gw', { namespace: 'ai' }, { parent: app });
      const openai = ProviderBackend.openAI(
        'openai',
        { namespace: 'ai', credentials: apiKey('openai') },
        { parent: app },
      );
      const anthropic = ProviderBackend.anthropic(
        'anthropic',
        { namespace: 'ai', credentials: apiKey('anthropic') },
        { parent: app },
      );
      new AIRoute(
        'chat',
        {
          gateway,
          // An Output: the route is first planned with a placeholder namespace, then rendered with this one.
          namespace: pulumi.output('ai'),
          rules: [
            {
              models: [cdk.ModelMatch.prefix('gpt-')],
              backends: [{ backend: openai }, { backend: anthropic, priority: 1, modelNameOverride: 'claude-4' }],
              fallback: fallback(),
            },
          ],
        },
        { parent: app },
      );
      new AIRoute(
        'plain',
        {
          gateway,
          namespace: 'ai',
          pathPrefix: '/plain/v1',
          rules: [{ models: [cdk.ModelMatch.prefix('gpt-')], backends: [{ backend: openai }] }],
        },
        { parent: app },
      );
    });
    const objects = await registered(mocks.registrations, app);

    const chart = new Chart(new App(), 'direct');
    const gateway = new cdk.AIGateway(chart, 'Gateway', { name: 'gw', namespace: 'ai' });
    const openai = cdk.ProviderBackend.openAI(chart, 'OpenAI', {
      name: 'openai',
      namespace: 'ai',
      credentials: apiKey('openai'),
    });
    const anthropic = cdk.ProviderBackend.anthropic(chart, 'Anthropic', {
      name: 'anthropic',
      namespace: 'ai',
      credentials: apiKey('anthropic'),
    });
    new cdk.AIRoute(chart, 'Chat', {
      name: 'chat',
      gateway,
      namespace: 'ai',
      rules: [
        {
          models: [cdk.ModelMatch.prefix('gpt-')],
          backends: [{ backend: openai }, { backend: anthropic, priority: 1, modelNameOverride: 'claude-4' }],
          fallback: fallback(),
        },
      ],
    });
    new cdk.AIRoute(chart, 'Plain', {
      name: 'plain',
      gateway,
      namespace: 'ai',
      pathPrefix: '/plain/v1',
      rules: [{ models: [cdk.ModelMatch.prefix('gpt-')], backends: [{ backend: openai }] }],
    });
    const expected = chart.toJson() as KubeObject[];
    const expectedNamed = (kind: string, name: string) =>
      expected.find((o) => o.kind === kind && `${o.metadata?.namespace}/${o.metadata?.name}` === name)!;

    expect(objects.map(identityOf).sort()).toEqual(
      expected
        .map((o) => `${o.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`)
        .sort(),
    );
    for (const name of ['ai/gw-processor', 'ai/gw-processor-full-duplex']) {
      const policy = objectNamed(objects, 'EnvoyExtensionPolicy', name).inputs;
      expect(policy.spec).toEqual(expectedNamed('EnvoyExtensionPolicy', name).spec);
    }
    expect(
      (objectNamed(objects, 'EnvoyExtensionPolicy', 'ai/gw-processor-full-duplex').inputs.spec as any).extProc[0]
        .processingMode.response.body,
    ).toBe('FullDuplexStreamed');
    for (const name of ['ai/chat', 'ai/plain']) {
      const route = objectNamed(objects, 'HTTPRoute', name).inputs.metadata as { labels: unknown };
      expect(route.labels).toEqual(expectedNamed('HTTPRoute', name).metadata?.labels);
    }

    const config = JSON.parse(
      (objectNamed(objects, 'ConfigMap', 'ai/gw-processor-config').inputs.data as Record<string, string>)[
        'config.json'
      ],
    );
    expect(config.routes.map((r: any) => [r.name, r.rules[0].fallback])).toEqual([
      [
        'ai/chat',
        { statuses: [429, 503], connectionFailures: true, timeouts: true, maxAttempts: 2, attemptTimeoutMs: 45_000 },
      ],
      ['ai/plain', undefined],
    ]);
  });
});
