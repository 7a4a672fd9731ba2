/**
 * `examples/pulumi/index.ts` run under mocks: it registers, object for object, what `cdk8s synth` emits for
 * `examples/cdk8s/main.ts`, plus the two API-key Secrets Pulumi creates from config secrets; every object
 * under its component, the keys only in secret inputs, objects ordered by their references.
 */
import * as pulumi from '@pulumi/pulumi';
import { App } from 'cdk8s';
import { buildExample } from '../../examples/cdk8s/main';
import type { KubeObject } from '../../lib/pulumi';
import { Registration, isSecretInput, kubeObjects, settle, unwrapSecret, useMocks, valueOf } from './harness';

const OPENAI_KEY = 'sk-test-openai-0123456789';
const ANTHROPIC_KEY = 'sk-ant-test-9876543210';

type Example = typeof import('../../examples/pulumi/index');

let registrations: Registration[];
let example: Example;
let monitorState: string;

beforeAll(async () => {
  const mocks = await useMocks();
  pulumi.runtime.setAllConfig(
    { 'project:openaiApiKey': OPENAI_KEY, 'project:anthropicApiKey': ANTHROPIC_KEY },
    ['project:openaiApiKey', 'project:anthropicApiKey'],
  );
  example = require('../../examples/pulumi/index') as Example;
  await valueOf(example.gatewayName);
  await settle();
  await waitForRegistrations(mocks.registrations);
  registrations = mocks.registrations;
  const monitor = pulumi.runtime.getMonitor() as unknown as { resources: Map<string, { urn: string; state: unknown }> };
  monitorState = JSON.stringify([...monitor.resources.values()].filter((r) => !r.urn.includes('kubernetes:core/v1:Secret::')));
});

/** Registration finishes asynchronously after the outputs resolve; wait until the count stops changing. */
async function waitForRegistrations(list: readonly Registration[]): Promise<void> {
  let seen = -1;
  while (list.length !== seen) {
    seen = list.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const identity = (object: KubeObject) =>
  `${object.apiVersion} ${object.kind} ${object.metadata?.namespace ?? ''}/${object.metadata?.name}`;

function cdk8sObjects(): KubeObject[] {
  const app = new App();
  buildExample(app);
  return app.charts.flatMap((chart) => chart.toJson() as KubeObject[]);
}

const componentType = (urn: string) => urn.split('::')[2]?.split('$')[0];
const byUrn = () => new Map(registrations.map((r) => [r.urn, r]));
const managedSecrets = () =>
  kubeObjects(registrations).filter((r) => r.type === 'kubernetes:core/v1:Secret' && componentType(r.urn) === 'ai-gateway:index:ProviderBackend');

describe('the Pulumi example', () => {
  it('registers exactly the objects cdk8s synthesizes for the cdk8s example, plus the managed API-key Secrets', () => {
    const expected = cdk8sObjects().sort((a, b) => identity(a).localeCompare(identity(b)));
    const secrets = managedSecrets();
    const actual = kubeObjects(registrations)
      .filter((r) => !secrets.includes(r))
      .map((r) => r.inputs as unknown as KubeObject)
      .sort((a, b) => identity(a).localeCompare(identity(b)));
    expect(actual.map(identity)).toEqual(expected.map(identity));
    expect(actual).toEqual(expected);
    expect(expected.length).toBeGreaterThan(20);
  });

  it('creates the Secrets the processor mounts, from the config secrets, with the values only in secret inputs', () => {
    const secrets = managedSecrets();
    expect(secrets.map((s) => s.name).sort()).toEqual(['anthropic:ai-platform/anthropic-api-key', 'openai:ai-platform/openai-api-key']);
    for (const secret of secrets) {
      expect(secret.inputs.metadata).toEqual({ name: secret.name.split('/')[1], namespace: 'ai-platform' });
      expect(isSecretInput(secret.inputs.stringData)).toBe(true);
      expect(secret.inputs.data).toBeUndefined();
    }
    const values = Object.fromEntries(secrets.map((s) => [s.name, unwrapSecret(s.inputs.stringData)]));
    expect(values).toEqual({
      'anthropic:ai-platform/anthropic-api-key': { 'api-key': ANTHROPIC_KEY },
      'openai:ai-platform/openai-api-key': { 'api-key': OPENAI_KEY },
    });

    const deployment = kubeObjects(registrations).find((r) => r.name === 'ai-gateway:ai-platform/ai-gateway-processor' && r.type.endsWith('Deployment'))!;
    const volumes = (deployment.inputs as { spec: { template: { spec: { volumes: { secret?: { secretName: string } }[] } } } }).spec.template.spec.volumes;
    expect(volumes.flatMap((v) => (v.secret ? [v.secret.secretName] : [])).sort()).toEqual(['anthropic-api-key', 'openai-api-key']);
    for (const secret of secrets) expect(deployment.dependencies).toContain(secret.urn);
  });

  it('keeps the API keys out of every other resource, ConfigMaps and component outputs included', async () => {
    const others = registrations.filter((r) => !managedSecrets().includes(r));
    const text = JSON.stringify(others.map((r) => r.inputs));
    expect(text).not.toContain(OPENAI_KEY);
    expect(text).not.toContain(ANTHROPIC_KEY);
    const configMap = kubeObjects(registrations).find((r) => r.type === 'kubernetes:core/v1:ConfigMap')!;
    expect(JSON.stringify(configMap.inputs)).toContain('openai-api-key');
    expect(monitorState).not.toContain(OPENAI_KEY);
    expect(monitorState).not.toContain(ANTHROPIC_KEY);
  });

  it('parents every object to the component whose construct emitted it', () => {
    const urns = byUrn();
    const owner = (type: string, name: string) => {
      const registration = kubeObjects(registrations).find((r) => r.type.endsWith(`:${type}`) && r.name.endsWith(`/${name}`));
      if (!registration) throw new Error(`no ${type} ${name}`);
      return urns.get(registration.parent)?.name;
    };
    expect(owner('Gateway', 'ai-gateway')).toBe('ai-gateway');
    expect(owner('ConfigMap', 'ai-gateway-processor-config')).toBe('ai-gateway');
    expect(owner('BackendTrafficPolicy', 'ai-gateway-budgets')).toBe('ai-gateway');
    expect(owner('Deployment', 'redis')).toBe('redis');
    expect(owner('Backend', 'openai')).toBe('openai');
    expect(owner('BackendTLSPolicy', 'bedrock-us-east-1-tls')).toBe('bedrock');
    expect(owner('HTTPRoute', 'chat')).toBe('chat');
    expect(owner('EnvoyExtensionPolicy', 'chat-processor')).toBe('chat');
    expect(owner('ReferenceGrant', 'ai-gateway-processor-from-team-chat')).toBe('ai-gateway');

    for (const registration of kubeObjects(registrations)) {
      if (registration.type === 'kubernetes:core/v1:Namespace') {
        // The example's own resources (under mocks there is no Stack resource to parent them).
        expect(urns.get(registration.parent)).toBeUndefined();
        continue;
      }
      const parent = urns.get(registration.parent);
      expect(parent?.type).toMatch(/^ai-gateway:index:(AIGateway|AIRoute|ProviderBackend|RateLimitRedis)$/);
      expect(registration.name.startsWith(`${parent!.name}:`)).toBe(true);
      expect(registration.urn).toContain(`${parent!.type}$${registration.type}::`);
    }
  });

  it('orders objects after what they reference', () => {
    const urnOf = (type: string, name: string) =>
      kubeObjects(registrations).find((r) => r.type.endsWith(`:${type}`) && r.name.endsWith(name))!.urn;
    const depsOf = (type: string, name: string) =>
      kubeObjects(registrations).find((r) => r.type.endsWith(`:${type}`) && r.name.endsWith(name))!.dependencies;
    expect(depsOf('HTTPRoute', 'team-chat/chat')).toEqual(
      expect.arrayContaining([urnOf('Gateway', 'ai-platform/ai-gateway'), urnOf('Namespace', 'team-chat'), urnOf('HTTPRouteFilter', 'chat-not-found')]),
    );
    // The grants admitting HTTPRoutes to the Backends (the processor's grant admits EnvoyExtensionPolicies).
    expect(depsOf('HTTPRoute', 'team-chat/chat')).toEqual(
      expect.arrayContaining(registrations.filter((r) => r.type.endsWith(':ReferenceGrant') && !r.name.endsWith('processor-from-team-chat')).map((r) => r.urn)),
    );
    // The route's EnvoyExtensionPolicy waits for its HTTPRoute, the processor Service and the grant admitting it there.
    expect(depsOf('EnvoyExtensionPolicy', 'team-chat/chat-processor')).toEqual(
      expect.arrayContaining([
        urnOf('Service', 'ai-platform/ai-gateway-processor'),
        urnOf('HTTPRoute', 'team-chat/chat'),
        urnOf('ReferenceGrant', 'ai-platform/ai-gateway-processor-from-team-chat'),
      ]),
    );
    expect(depsOf('Deployment', 'ai-platform/ai-gateway-processor')).toEqual(
      expect.arrayContaining([urnOf('ConfigMap', 'ai-gateway-processor-config'), urnOf('ServiceAccount', 'ai-platform/ai-gateway-processor')]),
    );
    expect(depsOf('Gateway', 'ai-platform/ai-gateway')).toContain(urnOf('GatewayClass', 'ai-gateway'));
  });

  it('exports the names a user needs', async () => {
    expect(await valueOf(example.gatewayName)).toBe('ai-gateway');
    expect(await valueOf(example.gatewayNamespace)).toBe('ai-platform');
    expect(await valueOf(example.processorService)).toBe('ai-gateway-processor');
    expect(await valueOf(example.processorConfigMap)).toBe('ai-gateway-processor-config');
    expect(await valueOf(example.chatRoute)).toBe('chat');
    expect(await valueOf(example.envoyGatewayHelmValues)).toEqual({
      config: {
        envoyGateway: {
          extensionApis: { enableBackend: true },
          rateLimit: { backend: { type: 'Redis', redis: { url: 'redis.ai-platform.svc.cluster.local:6379' } } },
          // The rate-limit service authenticates to Redis with the password Redis itself requires.
          provider: {
            type: 'Kubernetes',
            kubernetes: { rateLimitDeployment: { container: { env: [{ name: 'REDIS_AUTH', valueFrom: { secretKeyRef: { name: 'redis-auth', key: 'password' } } }] } } },
          },
        },
      },
    });
  });
});
