import * as pulumi from '@pulumi/pulumi';
import * as cdk from '../../lib';
import {
  AIGateway,
  AIGatewayApp,
  AIRoute,
  Consumer,
  ProviderBackend,
  RateLimitRedis,
  SpendLimit,
} from '../../lib/pulumi';
import { Registration, kubeObjects, objectNamed, useMocks, valueOf, waitForRPCs } from './harness';

const RANDOM_PASSWORD = 'random:index/randomPassword:RandomPassword';

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

const processorConfig = (objects: Registration[], name: string) =>
  JSON.parse((objectNamed(objects, 'ConfigMap', name).inputs.data as Record<string, string>)['config.json']);

describe('Pulumi governance components', () => {
  it('generate consumer keys as Pulumi secrets in a Secret of the gateway namespace, not in outputs', async () => {
    const mocks = await useMocks({
      outputsFor: { [RANDOM_PASSWORD]: (inputs) => ({ result: `generated-${String(inputs.length)}` }) },
    });
    let consumer: Consumer | undefined;
    let limit: SpendLimit | undefined;
    const app = new AIGatewayApp('app', (app) => {
      RateLimitRedis.external('redis', { url: 'redis.example:6379' }, { parent: app });
      const gateway = new AIGateway('gw', { namespace: 'ai' }, { parent: app });
      const openai = ProviderBackend.openAI(
        'openai',
        { namespace: 'ai', credentials: cdk.Credentials.apiKey({ secretName: 'openai', key: 'api-key' }) },
        { parent: app },
      );
      new AIRoute(
        'chat',
        {
          gateway,
          namespace: 'ai',
          rules: [{ models: [cdk.ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
        },
        { parent: app },
      );
      consumer = new Consumer(
        'team-a',
        {
          target: gateway,
          generatedKeys: { secretName: 'team-a-keys', clientIds: ['team-a-ci', 'team-a-dev'] },
          keys: [cdk.ApiKey.fromSecret('team-a-legacy', ['team-a-old'])],
          budgets: [{ limit: cdk.Money.usd(500), per: cdk.RateLimitUnit.THIRTY_DAYS }],
        },
        { parent: app },
      );
      limit = new SpendLimit(
        'gateway-spend',
        { target: gateway, limit: cdk.Money.usd(10_000), per: cdk.RateLimitUnit.THIRTY_DAYS, shared: true },
        { parent: app },
      );
    });
    const objects = await registered(mocks.registrations, app);
    const passwords = mocks.registrations.filter((r) => r.type === RANDOM_PASSWORD);
    expect(passwords.map((p) => [p.name, p.inputs.length, p.inputs.special])).toEqual([
      ['team-a-team-a-ci', 48, false],
      ['team-a-team-a-dev', 48, false],
    ]);
    const secret = objectNamed(objects, 'Secret', 'ai/team-a-keys');
    expect(pulumi.runtime.isRpcSecret(secret.inputs.stringData)).toBe(true);
    expect(pulumi.runtime.unwrapRpcSecret(secret.inputs.stringData)).toEqual({
      'team-a-ci': 'generated-48',
      'team-a-dev': 'generated-48',
    });
    expect(JSON.stringify(objects.filter((r) => r !== secret).map((r) => r.inputs))).not.toContain('generated-48');
    const component = mocks.registrations.find((r) => r.type === 'ai-gateway:index:Consumer')!;
    expect(JSON.stringify(component.inputs)).not.toContain('generated-48');

    expect(objectNamed(objects, 'SecurityPolicy', 'ai/gw-api-keys').inputs.spec).toEqual({
      targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }],
      apiKeyAuth: {
        credentialRefs: [
          { group: '', kind: 'Secret', name: 'team-a-legacy' },
          { group: '', kind: 'Secret', name: 'team-a-keys' },
        ],
        extractFrom: [{ headers: ['authorization'] }, { headers: ['x-api-key'] }],
        forwardClientIDHeader: 'x-ai-gateway-client-id',
        sanitize: true,
      },
    });
    const config = processorConfig(objects, 'ai/gw-processor-config');
    expect(config.consumers.entries).toEqual([
      {
        id: 'team-a',
        clientIds: ['team-a-old', 'team-a-ci', 'team-a-dev'],
        limits: [
          {
            budget: 'team-a/Consumer/budgets[0]',
            metadataKey: 'consumer_usd_1e6_month',
            header: 'x-ai-gateway-limit-consumer-usd-1e6-month',
            requestsPerUnit: 500_000_000,
            unit: 'MONTH',
          },
        ],
      },
    ]);
    expect(config.routes[0]).toMatchObject({ consumerRequired: true, priceRequired: true });
    expect(await valueOf(consumer!.consumerId)).toBe('team-a');
    const keys = consumer!.generatedKeys;
    expect(await (keys as unknown as { isSecret: Promise<boolean> }).isSecret).toBe(true);
    expect(await valueOf(keys)).toEqual({ 'team-a-ci': 'generated-48', 'team-a-dev': 'generated-48' });
    expect(await valueOf(limit!.picoUsdPerUnit)).toBe(10_000_000);
    expect(await valueOf(limit!.metadataKey)).toBe('llm_cost_picousd_1e7');
  });

  it('rejects an empty list of client ids to generate, and a key length under 32', async () => {
    await useMocks();
    const app = new AIGatewayApp('app', (app) => {
      const gateway = new AIGateway('gw', { namespace: 'ai' }, { parent: app });
      expect(
        () =>
          new Consumer('team', { target: gateway, generatedKeys: { secretName: 'k', clientIds: [] } }, { parent: app }),
      ).toThrow('Consumer team: generatedKeys.clientIds must list at least one client id');
      expect(
        () =>
          new Consumer(
            'other',
            { target: gateway, generatedKeys: { secretName: 'k', clientIds: ['a'], length: 16 } },
            { parent: app },
          ),
      ).toThrow('Consumer other: generatedKeys.length 16 must be an integer from 32 to 256');
    });
    await app.done;
  });
});
