import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { App, Chart } from 'cdk8s';
import * as cdk from '../../lib';
import { AIGateway, AIRoute, ManagedCredentials, ProviderBackend, RateLimitRedis, TokenRateLimit } from '../../lib/pulumi';
import type { KubeObject } from '../../lib/pulumi';
import { Registration, isKnown, isUnknownInput, kubeObjects, settle, useMocks, valueOf } from './harness';

async function registered(registrations: Registration[], ...components: pulumi.Resource[]): Promise<Registration[]> {
  await settle(...components);
  let seen = -1;
  while (registrations.length !== seen) {
    seen = registrations.length;
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  return kubeObjects(registrations);
}

const parentName = (registrations: Registration[], child: Registration) => registrations.find((r) => r.urn === child.parent)?.name;

describe('AIGateway', () => {
  it('renders the cdk8s AIGateway under the component, named after it, with its outputs', async () => {
    const mocks = await useMocks();
    const gateway = new AIGateway('edge', { namespace: 'ai' });
    const objects = await registered(mocks.registrations, gateway);

    const chart = new Chart(new App(), 'direct');
    new cdk.AIGateway(chart, 'Gateway', { name: 'edge', namespace: 'ai' });
    const expected = (chart.toJson() as KubeObject[]).map((o) => `${o.kind} ${o.metadata?.name}`).sort();
    expect(objects.map((r) => `${r.type.split(':').pop()} ${r.name.split('/').pop()?.split(':').pop()}`).sort()).toEqual(expected);
    for (const object of objects) expect(parentName(mocks.registrations, object)).toBe('edge');
    expect(objects.find((r) => r.type.endsWith(':Gateway'))!.name).toBe('edge:ai/edge');
    expect(objects.find((r) => r.type.endsWith(':GatewayClass'))!.name).toBe('edge:edge');

    expect(await valueOf(gateway.gatewayName)).toBe('edge');
    expect(await valueOf(gateway.gatewayNamespace)).toBe('ai');
    expect(await valueOf(gateway.processorServiceName)).toBe('edge-processor');
    expect(await valueOf(gateway.configMapName)).toBe('edge-processor-config');
  });

  it('passes the user provider down to every object', async () => {
    const mocks = await useMocks();
    const provider = new k8s.Provider('other-cluster', {});
    const gateway = new AIGateway('edge', { namespace: 'ai' }, { provider });
    const objects = await registered(mocks.registrations, gateway);
    const providerUrn = await valueOf(provider.urn);
    expect(objects.length).toBeGreaterThan(5);
    for (const object of objects) expect(object.provider.startsWith(`${providerUrn}::`)).toBe(true);
  });

  it('keeps the construct name default when the Pulumi name is not a Kubernetes name, and honours constructPath', async () => {
    const mocks = await useMocks();
    const gateway = new AIGateway('Edge_Gateway', { namespace: 'ai', constructPath: 'platform/Gateway' });
    await registered(mocks.registrations, gateway);
    const chart = new Chart(new App(), 'platform');
    const direct = new cdk.AIGateway(chart, 'Gateway', { namespace: 'ai' });
    expect(await valueOf(gateway.gatewayName)).toBe(direct.gatewayName);
  });

  it('rejects a malformed or taken constructPath', async () => {
    const mocks = await useMocks();
    expect(() => new AIGateway('a', { constructPath: 'platform' })).toThrow(
      'AIGateway "a": invalid constructPath "platform": expected "<chart id>/<construct id>"',
    );
    const taken = new AIGateway('b', { constructPath: 'platform/Gateway' });
    expect(() => new AIGateway('c', { constructPath: 'platform/Gateway' })).toThrow(
      'AIGateway "c": construct path "platform/Gateway" is already taken by AIGateway "b"',
    );
    await registered(mocks.registrations, taken);
  });
});

describe('AIRoute, ProviderBackend and TokenRateLimit', () => {
  it('attach to a Gateway by reference with Output namespaces, budgets rendered into the route they target', async () => {
    const mocks = await useMocks();
    const infra = new k8s.core.v1.Namespace('infra', { metadata: { name: 'infra' } });
    const team = new k8s.core.v1.Namespace('team', { metadata: { name: 'team' } });
    const teamNamespace = team.metadata.name;
    const vllm = ProviderBackend.kubernetesService('vllm', { namespace: teamNamespace, serviceName: 'vllm', port: 8000 });
    const route = new AIRoute('llama', {
      gateway: AIGateway.fromGatewayName('shared', infra.metadata.name),
      namespace: teamNamespace,
      hostnames: [pulumi.output('llm.example.com')],
      rules: [{ models: [cdk.ModelMatch.prefix('llama-')], backends: [{ backend: vllm }] }],
    });
    const budget = new TokenRateLimit('llama-budget', { target: route, limit: 1000, per: cdk.RateLimitUnit.MINUTE });
    const objects = await registered(mocks.registrations, vllm, route, budget);

    const httpRoute = objects.find((r) => r.type.endsWith(':HTTPRoute'))!;
    expect(httpRoute.name).toBe('llama:team/llama');
    expect(httpRoute.inputs.spec).toMatchObject({
      hostnames: ['llm.example.com'],
      parentRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'shared', namespace: 'infra' }],
    });
    expect(httpRoute.dependencies).toEqual(expect.arrayContaining([await valueOf(team.urn), await valueOf(infra.urn)]));
    const policy = objects.find((r) => r.type.endsWith(':BackendTrafficPolicy'))!;
    expect(parentName(mocks.registrations, policy)).toBe('llama');
    expect(objects.filter((r) => parentName(mocks.registrations, r) === 'llama-budget')).toEqual([]);
    // A route on a foreign Gateway brings its own processor.
    expect(objects.filter((r) => r.type.endsWith(':Deployment')).map((r) => r.name)).toEqual(['llama:team/llama-processor']);
    expect(await valueOf(budget.metadataKey)).toBe('llm_total_token');
    expect(await valueOf(route.processorServiceName)).toBe('llama-processor');
    expect(await valueOf(vllm.hostname)).toBe('vllm.team.svc.cluster.local');
  });

  it('creates a managed Secret in the backend namespace by default and mounts it into the gateway processor', async () => {
    const mocks = await useMocks();
    const gateway = new AIGateway('gw', { namespace: 'ai' });
    const openai = ProviderBackend.openAI('openai', {
      namespace: 'ai',
      credentials: ManagedCredentials.bearerToken({ value: pulumi.secret('tok-123'), secretName: 'openai-token' }),
    });
    new AIRoute('r', { gateway, namespace: 'ai', rules: [{ models: [cdk.ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }] });
    const objects = await registered(mocks.registrations, gateway, openai);
    const secret = objects.find((r) => r.type === 'kubernetes:core/v1:Secret')!;
    expect(secret.name).toBe('openai:ai/openai-token');
    expect(pulumi.runtime.unwrapRpcSecret(secret.inputs.stringData)).toEqual({ token: 'tok-123' });
    const configMap = objects.find((r) => r.type === 'kubernetes:core/v1:ConfigMap')!;
    const config = JSON.parse((configMap.inputs.data as Record<string, string>)['config.json']);
    expect(config.backends[0].auth).toEqual({ type: 'BearerToken', secret: { secretName: 'openai-token', key: 'token' } });
    expect(JSON.stringify(objects.filter((r) => r !== secret).map((r) => r.inputs))).not.toContain('tok-123');
  });

  it('refuses an output of a component of the same program part as an input (it could never resolve)', async () => {
    const mocks = await useMocks();
    const gateway = new AIGateway('gw', { namespace: 'ai' });
    const backend = ProviderBackend.kubernetesService('vllm', { namespace: 'ai', serviceName: 'vllm', port: 8000 });
    const rules = [{ models: [cdk.ModelMatch.exact('llama')], backends: [{ backend }] }];
    expect(() => new AIRoute('r1', { gateway, namespace: gateway.gatewayNamespace, rules })).toThrow(
      'AIRoute "r1": an input is an output of AIGateway "gw", which is rendered together with it',
    );
    expect(() => new AIRoute('r2', { gateway, namespace: backend.namespace.apply((n) => `${n}`), rules })).toThrow(
      'AIRoute "r2": an input is an output of ProviderBackend "vllm"',
    );
    await registered(mocks.registrations, gateway, backend);
    // Once rendered, the outputs are ordinary inputs for the next part of the program.
    const later = ProviderBackend.kubernetesService('vllm-2', { namespace: gateway.gatewayNamespace, serviceName: 'vllm-2', port: 8000 });
    expect(await valueOf(later.namespace)).toBe('ai');
  });

  it('exposes the Envoy Gateway Helm values of an external Redis given as an Output', async () => {
    await useMocks();
    const redis = RateLimitRedis.external('cache', { url: pulumi.output('redis.cache.svc:6379') });
    expect(await valueOf(redis.url)).toBe('redis.cache.svc:6379');
    expect(await valueOf(redis.helmValues)).toMatchObject({ config: { envoyGateway: { rateLimit: { backend: { redis: { url: 'redis.cache.svc:6379' } } } } } });
  });
});

describe('ManagedCredentials', () => {
  it('hands the construct model the same credentials as a reference to the Secret it creates', () => {
    const ref = (secretName: string, key: string) => ({ secretName, key, namespace: 'ai' });
    const value = pulumi.secret('x');
    expect(ManagedCredentials.apiKey({ value, secretName: 'k' }).key).toBe('api-key');
    expect(ManagedCredentials.bearerToken({ value, secretName: 'k' }).key).toBe('token');
    expect(ManagedCredentials.gcpServiceAccountKey({ value, secretName: 'k', key: 'sa.json' }).key).toBe('sa.json');
    const aws = ManagedCredentials.awsSharedCredentials({ value, secretName: 'aws' }, { profile: 'bedrock', perRequestCredentials: true });
    expect(aws.key).toBe('credentials');
    expect(aws._toCredentials(ref('aws', aws.key))._toConfig('us-east-1')).toEqual(
      cdk.Credentials.awsSharedCredentials(ref('aws', 'credentials'), { profile: 'bedrock', perRequestCredentials: true })._toConfig('us-east-1'),
    );
    const gcp = ManagedCredentials.gcpServiceAccountKey({ value, secretName: 'gcp' });
    expect(gcp._toCredentials(ref('gcp', gcp.key)).secrets).toEqual([ref('gcp', 'service-account.json')]);
    expect(gcp._toCredentials(ref('gcp', gcp.key)).kind).toBe('GCPServiceAccountKey');
  });
});

describe('during preview with unknown inputs', () => {
  it('registers every object with unknown inputs when the inputs only fill in values', async () => {
    const mocks = await useMocks({ preview: true, unknownOutputsFor: ['kubernetes:core/v1:Namespace'] });
    const namespace = new k8s.core.v1.Namespace('ai', { metadata: { name: 'ai' } });
    const ai = namespace.metadata.name;
    const gateway = new AIGateway('gw', { namespace: ai, allowedRoutes: cdk.AllowedRoutes.allNamespaces() });
    const openai = ProviderBackend.openAI('openai', {
      namespace: ai,
      credentials: ManagedCredentials.apiKey({ value: pulumi.secret('sk-1'), secretName: 'openai' }),
    });
    const route = new AIRoute('chat', {
      gateway,
      namespace: ai,
      rules: [{ models: [cdk.ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
    });
    const objects = (await registered(mocks.registrations, gateway, openai, route)).filter((r) => r.type !== 'kubernetes:core/v1:Namespace');
    expect(objects.map((r) => r.name)).toEqual(expect.arrayContaining(['gw:gw-input-1/gw', 'chat:gw-input-1/chat', 'openai:gw-input-1/openai']));
    for (const object of objects) {
      expect(object.inputs.kind).toBeDefined();
      expect(isUnknownInput(object.inputs.metadata)).toBe(true);
    }
    expect(await isKnown(gateway.gatewayNamespace)).toBe(false);
  });

  it('runs the example while its namespaces are unknown, leaving out only what cannot be planned', async () => {
    const mocks = await useMocks({ preview: true, unknownOutputsFor: ['kubernetes:core/v1:Namespace'] });
    pulumi.runtime.setAllConfig({ 'project:openaiApiKey': 'sk-a', 'project:anthropicApiKey': 'sk-b' }, ['project:openaiApiKey', 'project:anthropicApiKey']);
    const warnings: string[] = [];
    const warn = jest.spyOn(pulumi.log, 'warn').mockImplementation(async (message) => void warnings.push(message));
    const example = require('../../examples/pulumi/index') as typeof import('../../examples/pulumi/index');
    await settle();
    const objects = (await registered(mocks.registrations)).filter((r) => r.type !== 'kubernetes:core/v1:Namespace');
    warn.mockRestore();

    expect(await isKnown(example.gatewayName)).toBe(false);
    const components = mocks.registrations.filter((r) => r.type.startsWith('ai-gateway:index:')).map((r) => r.name).sort();
    expect(components).toEqual(['ai-gateway', 'anthropic', 'bedrock', 'chat', 'model-budget', 'openai', 'redis', 'tenant-budget']);
    // The route's namespace is checked against the gateway's allowedRoutes, which a placeholder cannot pass.
    expect(warnings).toEqual([expect.stringMatching(/^the objects of AIRoute "chat", TokenRateLimit "model-budget" cannot be planned while some inputs are unknown/)]);
    const owners = new Set(objects.map((r) => parentName(mocks.registrations, r)));
    expect([...owners].sort()).toEqual(['ai-gateway', 'anthropic', 'bedrock', 'openai', 'redis']);
    expect(objects.length).toBeGreaterThan(15);
    for (const object of objects) expect(isUnknownInput(object.inputs.metadata)).toBe(true);
  });
});
