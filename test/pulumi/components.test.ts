import { randomBytes } from 'node:crypto';
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { App, Chart, Duration } from 'cdk8s';
import * as cdk from '../../lib';
import {
  AIGateway,
  AIGatewayApp,
  AIRoute,
  ManagedCredentials,
  ProviderBackend,
  RateLimitRedis,
  TokenRateLimit,
} from '../../lib/pulumi';
import type { KubeObject } from '../../lib/pulumi';
import {
  Registration,
  identityOf,
  isKnown,
  isUnknownInput,
  kubeObjects,
  objectNamed,
  useMocks,
  valueOf,
  waitForRPCs,
} from './harness';

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

const parentName = (registrations: Registration[], child: Registration) =>
  registrations.find((r) => r.urn === child.parent)?.name;
const sortedIdentities = (objects: readonly KubeObject[]) =>
  objects.map((o) => `${o.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`).sort();
const processorConfig = (objects: Registration[], name: string) =>
  JSON.parse((objectNamed(objects, 'ConfigMap', name).inputs.data as Record<string, string>)['config.json']);

describe('AIGatewayApp', () => {
  it(
    'builds a program that awaits between the gateway and its routes, with a gateway and a ' + 'route of the same name',
    async () => {
      const mocks = await useMocks();
      const team = new k8s.core.v1.Namespace('team', { metadata: { name: 'team' } });
      const app = new AIGatewayApp('ai', async (app) => {
        const gateway = new AIGateway(
          'shared',
          { namespace: 'ai', allowedRoutes: cdk.AllowedRoutes.allNamespaces() },
          { parent: app },
        );
        const vllm = ProviderBackend.kubernetesService(
          'shared',
          { namespace: 'ai', serviceName: 'vllm', port: 8000 },
          { parent: app },
        );
        // Values a program typically awaits: another resource's output, a lookup, an output of the gateway itself
        // (component outputs do not wait for the app).
        const teamNamespace = await valueOf(team.metadata.name);
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect(await valueOf(gateway.processorServiceName)).toBe('shared-processor');
        const route = new AIRoute('shared', {
          gateway,
          namespace: teamNamespace!,
          requestTimeout: Duration.seconds(90),
          rules: [{ models: [cdk.ModelMatch.prefix('llama-')], backends: [{ backend: vllm }] }],
        });
        await Promise.resolve();
        new TokenRateLimit('shared', { target: route, limit: 1000, per: cdk.RateLimitUnit.MINUTE });
        // Budgets need a RateLimitRedis in the app; an external one emits no objects.
        RateLimitRedis.external('shared', { url: 'redis.example:6379' }, { parent: app });
        return { routeName: route.routeName };
      });
      const objects = await registered(mocks.registrations, app);

      // Exactly what cdk8s synthesizes for the same constructs in one App.
      const chart = new Chart(new App(), 'direct');
      const gateway = new cdk.AIGateway(chart, 'Gateway', {
        name: 'shared',
        namespace: 'ai',
        allowedRoutes: cdk.AllowedRoutes.allNamespaces(),
      });
      const vllm = cdk.ProviderBackend.kubernetesService(chart, 'Backend', {
        namespace: 'ai',
        serviceName: 'vllm',
        port: 8000,
      });
      const route = new cdk.AIRoute(chart, 'Route', {
        name: 'shared',
        gateway,
        namespace: 'team',
        requestTimeout: Duration.seconds(90),
        rules: [{ models: [cdk.ModelMatch.prefix('llama-')], backends: [{ backend: vllm }] }],
      });
      new cdk.TokenRateLimit(chart, 'Budget', { target: route, limit: 1000, per: cdk.RateLimitUnit.MINUTE });
      cdk.RateLimitRedis.external(chart, 'Redis', { url: 'redis.example:6379' });
      const expected = chart.toJson() as KubeObject[];
      const ours = objects.filter((r) => r.type !== 'kubernetes:core/v1:Namespace');
      expect(ours.map(identityOf).sort()).toEqual(sortedIdentities(expected));

      // The route and the budget, created after the awaits, are in the gateway's processor config and budget policy.
      const config = processorConfig(objects, 'ai/shared-processor-config');
      expect(config.routes.map((r: { name: string }) => r.name)).toEqual(['team/shared']);
      expect(config.costs.map((c: { metadataKey: string }) => c.metadataKey)).toEqual(['llm_total_token']);
      expect(objectNamed(objects, 'BackendTrafficPolicy', 'ai/shared-budgets').inputs.spec).toMatchObject({
        rateLimit: { global: { rules: [expect.objectContaining({ limit: { requests: 1000, unit: 'Minute' } })] } },
      });
      // The processor drains for the route's 90 s timeout.
      const deployment = objectNamed(objects, 'Deployment', 'ai/shared-processor').inputs as {
        spec: { template: { spec: { terminationGracePeriodSeconds: number } } };
      };
      expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBe(100);

      // Same name, three types: distinct components, each owning its own objects.
      const components = mocks.registrations.filter(
        (r) => r.type.startsWith('ai-gateway:index:') && r.type !== 'ai-gateway:index:AIGatewayApp',
      );
      expect(components.map((r) => `${r.type} ${r.name}`).sort()).toEqual([
        'ai-gateway:index:AIGateway shared',
        'ai-gateway:index:AIRoute shared',
        'ai-gateway:index:ProviderBackend shared',
        'ai-gateway:index:RateLimitRedis shared',
        'ai-gateway:index:TokenRateLimit shared',
      ]);
      const ownerType = (kind: string, name: string) =>
        mocks.registrations.find((r) => r.urn === objectNamed(objects, kind, name).parent)?.type;
      expect(ownerType('Gateway', 'ai/shared')).toBe('ai-gateway:index:AIGateway');
      expect(ownerType('HTTPRoute', 'team/shared')).toBe('ai-gateway:index:AIRoute');
      // Grants shared by the backends of a namespace belong to the app, whichever backend needed one first.
      expect(ownerType('ReferenceGrant', 'ai/ai-services-from-team')).toBe('ai-gateway:index:AIGatewayApp');
      expect(await valueOf(app.result.routeName)).toBe('shared');
    },
  );

  it(
    'refuses a component created after the program function returned, or outside any app, ' + 'saying what to do',
    async () => {
      await useMocks();
      let gateway!: AIGateway;
      const app = new AIGatewayApp('ai', (app) => {
        gateway = new AIGateway('gw', { namespace: 'ai' }, { parent: app });
      });
      await app.done;
      const backend = () =>
        ProviderBackend.kubernetesService(
          'late',
          { namespace: 'ai', serviceName: 'vllm', port: 8000 },
          { parent: app },
        );
      expect(backend).toThrow(
        'ProviderBackend "late": AIGatewayApp "ai" has already built its model (its program function has returned); ' +
          'create every component of the app inside that function, before it returns (awaiting inside it is fine)',
      );
      expect(
        () => new TokenRateLimit('late-budget', { target: gateway, limit: 1, per: cdk.RateLimitUnit.MINUTE }),
      ).toThrow('TokenRateLimit "late-budget": AIGatewayApp "ai" has already built its model');
      expect(() => new AIGateway('loose', { namespace: 'ai' })).toThrow(
        'AIGateway "loose" is not part of an AIGatewayApp: create AI gateway components inside new ' +
          'AIGatewayApp(name, (app) => { ... }) and pass { parent: app }',
      );
      await waitForRPCs();
    },
  );

  it(
    "takes components below a component of the user's inside the app, and passes the app's " + 'provider down',
    async () => {
      const mocks = await useMocks();
      const provider = new k8s.Provider('cluster-a', {});
      class Platform extends pulumi.ComponentResource {
        constructor(name: string, opts: pulumi.ComponentResourceOptions) {
          super('example:index:Platform', name, {}, opts);
          new AIGateway('gw', { namespace: 'ai' }, { parent: this });
          this.registerOutputs({});
        }
      }
      const app = new AIGatewayApp('ai', (app) => void new Platform('platform', { parent: app }), {
        providers: [provider],
      });
      const objects = await registered(mocks.registrations, app);
      const gateway = mocks.registrations.find((r) => r.type === 'ai-gateway:index:AIGateway')!;
      expect(gateway.parent).toBe(mocks.registrations.find((r) => r.type === 'example:index:Platform')!.urn);
      // Not directly below the app: no alias to the stack root (the user chose this place).
      expect(gateway.aliases).toEqual([]);
      const providerUrn = await valueOf(provider.urn);
      expect(objects.length).toBeGreaterThan(5);
      for (const object of objects) expect(object.provider.startsWith(`${providerUrn}::`)).toBe(true);
    },
  );

  it('refuses components of two apps referring to each other', async () => {
    await useMocks();
    let gateway!: AIGateway;
    const first = new AIGatewayApp('first', (app) => {
      gateway = new AIGateway('gw', { namespace: 'ai' }, { parent: app });
    });
    const second = new AIGatewayApp('second', (app) => {
      const backend = ProviderBackend.kubernetesService(
        'vllm',
        { namespace: 'ai', serviceName: 'vllm', port: 8000 },
        { parent: app },
      );
      expect(
        () =>
          new AIRoute('r', {
            gateway,
            namespace: 'ai',
            rules: [{ models: [cdk.ModelMatch.exact('m')], backends: [{ backend }] }],
          }),
      ).toThrow(
        'AIRoute "r" refers to a component of AIGatewayApp "second" but belongs to AIGatewayApp ' +
          '"first": components that refer to each other must be in the same app',
      );
    });
    await Promise.all([first.done, second.done]);
    await waitForRPCs();
  });
});

describe('AIGateway', () => {
  it(
    'renders the cdk8s AIGateway under the component, named after it, with its outputs and its ' + 'resources',
    async () => {
      const mocks = await useMocks();
      let gateway!: AIGateway;
      const app = new AIGatewayApp('app', (app) => {
        gateway = new AIGateway('edge', { namespace: 'ai' }, { parent: app });
      });
      const objects = await registered(mocks.registrations, app);

      const chart = new Chart(new App(), 'direct');
      new cdk.AIGateway(chart, 'Gateway', { name: 'edge', namespace: 'ai' });
      expect(objects.map(identityOf).sort()).toEqual(sortedIdentities(chart.toJson() as KubeObject[]));
      for (const object of objects) expect(parentName(mocks.registrations, object)).toBe('edge');
      expect(objectNamed(objects, 'Gateway', 'ai/edge').name).toBe('edge:Gateway');
      expect(objectNamed(objects, 'GatewayClass', 'edge').name).toBe('edge:GatewayClass');

      expect(await valueOf(gateway.gatewayName)).toBe('edge');
      expect(await valueOf(gateway.gatewayNamespace)).toBe('ai');
      expect(await valueOf(gateway.processorServiceName)).toBe('edge-processor');
      expect(await valueOf(gateway.configMapName)).toBe('edge-processor-config');

      const resources = await gateway.kubernetesResources();
      expect(resources.map((r) => `${r.kind} ${r.path}`)).toContainEqual('Deployment Processor/Deployment/Resource');
      const deployment = resources.find((r) => r.kind === 'Deployment')!.resource;
      expect(deployment).toBeInstanceOf(k8s.apps.v1.Deployment);
      expect(await valueOf(deployment.urn)).toBe(objectNamed(objects, 'Deployment', 'ai/edge-processor').urn);

      // A resource of the user's that waits for the gateway's objects.
      const gatewayObjects: Promise<pulumi.Resource[]> = gateway
        .kubernetesResources()
        .then((children) => children.map((child) => child.resource));
      const after = new k8s.core.v1.ConfigMap(
        'after-gateway',
        { metadata: { name: 'after', namespace: 'ai' } },
        { dependsOn: gatewayObjects },
      );
      await valueOf(after.urn);
      await waitForRPCs();
      const registration = mocks.registrations.find((r) => r.name === 'after-gateway')!;
      expect(registration.dependencies).toEqual(expect.arrayContaining(objects.map((r) => r.urn)));
    },
  );

  it('registers every ConfigMap of a processor config split into parts under the gateway', async () => {
    const mocks = await useMocks();
    const app = new AIGatewayApp('app', (app) => {
      const gateway = new AIGateway('edge', { namespace: 'ai' }, { parent: app });
      const vllm = ProviderBackend.kubernetesService(
        'vllm',
        { namespace: 'ai', serviceName: 'vllm', port: 8000 },
        { parent: app },
      );
      // Random text does not compress: the config is split over two ConfigMaps.
      const override = randomBytes(1_600_000).toString('base64');
      new AIRoute('r', {
        gateway,
        namespace: 'ai',
        rules: [{ models: [cdk.ModelMatch.exact('m')], backends: [{ backend: vllm, modelNameOverride: override }] }],
      });
    });
    const objects = await registered(mocks.registrations, app);
    const configMaps = objects.filter((o) => identityOf(o).startsWith('ConfigMap ai/edge-processor-config'));
    expect(configMaps.map(identityOf).sort()).toEqual([
      'ConfigMap ai/edge-processor-config',
      'ConfigMap ai/edge-processor-config-2',
    ]);
    for (const configMap of configMaps) expect(parentName(mocks.registrations, configMap)).toBe('edge');
    const deployment = objectNamed(objects, 'Deployment', 'ai/edge-processor').inputs as {
      spec: { template: { spec: { volumes: { name: string; projected?: unknown }[] } } };
    };
    expect(deployment.spec.template.spec.volumes.find((v) => v.name === 'config')).toEqual({
      name: 'config',
      projected: {
        sources: [{ configMap: { name: 'edge-processor-config' } }, { configMap: { name: 'edge-processor-config-2' } }],
      },
    });
  });

  it('takes Outputs for namespace, hostname, annotations and replicas', async () => {
    const mocks = await useMocks();
    const app = new AIGatewayApp('app', (app) => {
      new AIGateway(
        'edge',
        {
          namespace: pulumi.output('ai'),
          http: { hostname: pulumi.output('llm.example.com') },
          processor: {
            replicas: pulumi.output(3),
            serviceAccountAnnotations: { 'eks.amazonaws.com/role-arn': pulumi.output('arn:aws:iam::1:role/r') },
          },
        },
        { parent: app },
      );
    });
    const objects = await registered(mocks.registrations, app);
    expect((objectNamed(objects, 'Deployment', 'ai/edge-processor').inputs.spec as { replicas: number }).replicas).toBe(
      3,
    );
    expect(objectNamed(objects, 'Gateway', 'ai/edge').inputs.spec).toMatchObject({
      listeners: [{ hostname: 'llm.example.com' }],
    });
    expect(objectNamed(objects, 'ServiceAccount', 'ai/edge-processor').inputs.metadata).toMatchObject({
      annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::1:role/r' },
    });
  });

  it("derives Envoy's limits from the replicas Output, like the cdk8s constructs", async () => {
    const mocks = await useMocks();
    const app = new AIGatewayApp('app', (app) => {
      const gateway = new AIGateway(
        'edge',
        { namespace: 'ai', processor: { replicas: pulumi.output(3), streamsPerReplica: 1_000 } },
        { parent: app },
      );
      const vllm = ProviderBackend.kubernetesService(
        'vllm',
        { namespace: 'ai', serviceName: 'vllm', port: 8000 },
        { parent: app },
      );
      new AIRoute(
        'chat',
        {
          gateway,
          namespace: 'ai',
          rules: [{ models: [cdk.ModelMatch.prefix('llama-')], backends: [{ backend: vllm }] }],
        },
        { parent: app },
      );
      new AIRoute(
        'small',
        {
          gateway,
          namespace: 'ai',
          maxParallelRequestsPerBackend: 32,
          rules: [{ models: [cdk.ModelMatch.prefix('phi-')], backends: [{ backend: vllm }] }],
        },
        { parent: app },
      );
    });
    const objects = await registered(mocks.registrations, app);
    const spec = (kind: string, name: string) => objectNamed(objects, kind, name).inputs.spec as any;
    expect(spec('EnvoyExtensionPolicy', 'ai/edge-processor').extProc[0].backendSettings.circuitBreaker).toEqual({
      maxParallelRequests: 3_000,
      maxPendingRequests: 3_000,
    });
    // The route with the default limit shares the processor's policy of the namespace.
    expect(spec('BackendTrafficPolicy', 'ai/edge-processor').circuitBreaker.maxParallelRequests).toBe(3_000);
    expect(spec('BackendTrafficPolicy', 'ai/small').circuitBreaker.maxParallelRequests).toBe(32);
    // The shared policy belongs to the gateway's processor; a route with a limit of its own keeps its own policy.
    const resourceName = (name: string) => objectNamed(objects, 'BackendTrafficPolicy', name).urn.split('::').pop();
    expect(resourceName('ai/edge-processor')).toBe('edge:Processor/TrafficPolicy');
    expect(resourceName('ai/small')).toBe('small:TrafficPolicy');
  });

  it('passes the user provider down to every object', async () => {
    const mocks = await useMocks();
    const provider = new k8s.Provider('other-cluster', {});
    const app = new AIGatewayApp('app', (app) => {
      new AIGateway('edge', { namespace: 'ai' }, { parent: app, provider });
    });
    const objects = await registered(mocks.registrations, app);
    const providerUrn = await valueOf(provider.urn);
    expect(objects.length).toBeGreaterThan(5);
    for (const object of objects) expect(object.provider.startsWith(`${providerUrn}::`)).toBe(true);
  });

  it(
    'keeps the construct name default when the Pulumi name is not a Kubernetes name, and ' + 'honours constructPath',
    async () => {
      const mocks = await useMocks();
      let gateway!: AIGateway;
      const app = new AIGatewayApp('app', (app) => {
        gateway = new AIGateway(
          'Edge_Gateway',
          { namespace: 'ai', constructPath: 'platform/Gateway' },
          { parent: app },
        );
      });
      await registered(mocks.registrations, app);
      const chart = new Chart(new App(), 'platform');
      const direct = new cdk.AIGateway(chart, 'Gateway', { namespace: 'ai' });
      expect(await valueOf(gateway.gatewayName)).toBe(direct.gatewayName);
    },
  );

  it('rejects a malformed or taken constructPath', async () => {
    await useMocks();
    const app = new AIGatewayApp('app', (app) => {
      expect(() => new AIGateway('a', { constructPath: 'platform' }, { parent: app })).toThrow(
        'AIGateway "a": invalid constructPath "platform": expected "<chart id>/<construct id>"',
      );
      new AIGateway('b', { constructPath: 'platform/Gateway' }, { parent: app });
      expect(() => new AIGateway('c', { constructPath: 'platform/Gateway' }, { parent: app })).toThrow(
        'AIGateway "c": construct path "platform/Gateway" is already taken by AIGateway "b"',
      );
    });
    await app.done;
    await waitForRPCs();
  });
});

describe('AIRoute, ProviderBackend and TokenRateLimit', () => {
  it(
    'attach to a Gateway by reference with Output namespaces, budgets rendered into the route ' + 'they target',
    async () => {
      const mocks = await useMocks();
      const infra = new k8s.core.v1.Namespace('infra', { metadata: { name: 'infra' } });
      const team = new k8s.core.v1.Namespace('team', { metadata: { name: 'team' } });
      const teamNamespace = team.metadata.name;
      const app = new AIGatewayApp('app', (app) => {
        const vllm = ProviderBackend.kubernetesService(
          'vllm',
          { namespace: teamNamespace, serviceName: 'vllm', port: 8000 },
          { parent: app },
        );
        const route = new AIRoute('llama', {
          gateway: AIGateway.fromGatewayName('shared', infra.metadata.name),
          namespace: teamNamespace,
          hostnames: [pulumi.output('llm.example.com')],
          rules: [{ models: [cdk.ModelMatch.prefix('llama-')], backends: [{ backend: vllm }] }],
        });
        const budget = new TokenRateLimit('llama-budget', {
          target: route,
          limit: 1000,
          per: cdk.RateLimitUnit.MINUTE,
        });
        RateLimitRedis.external('redis', { url: 'redis.example:6379' }, { parent: app });
        return { vllm, route, budget };
      });
      const objects = await registered(mocks.registrations, app);
      const { vllm, route, budget } = await app.done;

      const httpRoute = objectNamed(objects, 'HTTPRoute', 'team/llama');
      expect(httpRoute.name).toBe('llama:HTTPRoute');
      expect(httpRoute.inputs.spec).toMatchObject({
        hostnames: ['llm.example.com'],
        parentRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'shared', namespace: 'infra' }],
      });
      expect(httpRoute.dependencies).toEqual(
        expect.arrayContaining([await valueOf(team.urn), await valueOf(infra.urn)]),
      );
      const policy = objects.find((r) => r.type.endsWith(':BackendTrafficPolicy'))!;
      expect(parentName(mocks.registrations, policy)).toBe('llama');
      expect(objects.filter((r) => parentName(mocks.registrations, r) === 'llama-budget')).toEqual([]);
      // A route on a foreign Gateway brings its own processor.
      expect(objects.filter((r) => r.type.endsWith(':Deployment')).map(identityOf)).toEqual([
        'Deployment team/llama-processor',
      ]);
      expect(await valueOf(budget.metadataKey)).toBe('llm_total_token');
      expect(await valueOf(route.processorServiceName)).toBe('llama-processor');
      expect(await valueOf(vllm.hostname)).toBe('vllm.team.svc.cluster.local');
    },
  );

  it(
    'creates a managed Secret in the backend namespace by default and mounts it into the ' + 'gateway processor',
    async () => {
      const mocks = await useMocks();
      const app = new AIGatewayApp('app', (app) => {
        const gateway = new AIGateway('gw', { namespace: 'ai' }, { parent: app });
        const openai = ProviderBackend.openAI(
          'openai',
          {
            namespace: 'ai',
            credentials: ManagedCredentials.bearerToken({
              value: pulumi.secret('tok-123'),
              secretName: 'openai-token',
            }),
          },
          { parent: app },
        );
        new AIRoute('r', {
          gateway,
          namespace: 'ai',
          rules: [{ models: [cdk.ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
        });
      });
      const objects = await registered(mocks.registrations, app);
      const secret = objectNamed(objects, 'Secret', 'ai/openai-token');
      expect(secret.name).toBe('openai:ManagedSecret/openai-token');
      expect(pulumi.runtime.unwrapRpcSecret(secret.inputs.stringData)).toEqual({ token: 'tok-123' });
      const config = processorConfig(objects, 'ai/gw-processor-config');
      expect(config.backends[0].auth).toEqual({
        type: 'BearerToken',
        secret: { secretName: 'openai-token', key: 'token' },
      });
      expect(JSON.stringify(objects.filter((r) => r !== secret).map((r) => r.inputs))).not.toContain('tok-123');
    },
  );

  it('takes outputs of earlier components of the same app as inputs', async () => {
    const mocks = await useMocks();
    const app = new AIGatewayApp('app', (app) => {
      const gateway = new AIGateway('gw', { namespace: pulumi.output('ai') }, { parent: app });
      const backend = ProviderBackend.kubernetesService(
        'vllm',
        { namespace: gateway.gatewayNamespace, serviceName: 'vllm', port: 8000 },
        { parent: app },
      );
      const route = new AIRoute('r', {
        gateway,
        namespace: backend.namespace.apply((n) => `${n}`),
        rules: [{ models: [cdk.ModelMatch.exact('llama')], backends: [{ backend }] }],
      });
      return { backend, route };
    });
    const objects = await registered(mocks.registrations, app);
    const { backend, route } = await app.done;
    expect(await valueOf(backend.namespace)).toBe('ai');
    expect(await valueOf(route.namespace)).toBe('ai');
    expect(objectNamed(objects, 'HTTPRoute', 'ai/r').inputs.spec).toMatchObject({
      rules: [{ backendRefs: [{ name: 'vllm', port: 8000 }] }, {}],
    });
    expect(processorConfig(objects, 'ai/gw-processor-config').routes.map((r: { name: string }) => r.name)).toEqual([
      'ai/r',
    ]);
  });

  it('exposes the Envoy Gateway Helm values of an external Redis given as an Output', async () => {
    await useMocks();
    const app = new AIGatewayApp('app', (app) =>
      RateLimitRedis.external('cache', { url: pulumi.output('redis.cache.svc:6379') }, { parent: app }),
    );
    const redis = await app.done;
    expect(await valueOf(redis.url)).toBe('redis.cache.svc:6379');
    expect(await valueOf(redis.helmValues)).toMatchObject({
      config: { envoyGateway: { rateLimit: { backend: { redis: { url: 'redis.cache.svc:6379' } } } } },
    });
  });
});

describe('ManagedCredentials', () => {
  it('hands the construct model the same credentials as a reference to the Secret it creates', () => {
    const ref = (secretName: string, key: string) => ({ secretName, key, namespace: 'ai' });
    const value = pulumi.secret('x');
    expect(ManagedCredentials.apiKey({ value, secretName: 'k' }).key).toBe('api-key');
    expect(ManagedCredentials.bearerToken({ value, secretName: 'k' }).key).toBe('token');
    expect(ManagedCredentials.gcpServiceAccountKey({ value, secretName: 'k', key: 'sa.json' }).key).toBe('sa.json');
    const aws = ManagedCredentials.awsSharedCredentials(
      { value, secretName: 'aws' },
      { profile: 'bedrock', perRequestCredentials: true },
    );
    expect(aws.key).toBe('credentials');
    expect(aws._toCredentials(ref('aws', aws.key))._toConfig('us-east-1')).toEqual(
      cdk.Credentials.awsSharedCredentials(ref('aws', 'credentials'), {
        profile: 'bedrock',
        perRequestCredentials: true,
      })._toConfig('us-east-1'),
    );
    const gcp = ManagedCredentials.gcpServiceAccountKey({ value, secretName: 'gcp' });
    expect(gcp._toCredentials(ref('gcp', gcp.key)).secrets).toEqual([ref('gcp', 'service-account.json')]);
    expect(gcp._toCredentials(ref('gcp', gcp.key)).kind).toBe('GCPServiceAccountKey');
  });
});

/** A program whose namespace comes from another resource: unknown in a first preview, known in `up`. */
function namespacedProgram(): AIGatewayApp<{ gateway: AIGateway }> {
  const ai = new k8s.core.v1.Namespace('ai', { metadata: { name: 'ai' } }).metadata.name;
  return new AIGatewayApp('app', async (app) => {
    const gateway = new AIGateway(
      'gw',
      { namespace: ai, allowedRoutes: cdk.AllowedRoutes.allNamespaces() },
      { parent: app },
    );
    const openai = ProviderBackend.openAI(
      'openai',
      { namespace: ai, credentials: ManagedCredentials.apiKey({ value: pulumi.secret('sk-1'), secretName: 'openai' }) },
      { parent: app },
    );
    await Promise.resolve();
    new AIRoute('chat', {
      gateway,
      namespace: ai,
      rules: [{ models: [cdk.ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
    });
    return { gateway };
  });
}

describe('during preview with unknown inputs', () => {
  it('registers every object with unknown inputs, under the names `up` gives them', async () => {
    const preview = await useMocks({ preview: true, unknownOutputsFor: ['kubernetes:core/v1:Namespace'] });
    const previewApp = namespacedProgram();
    const planned = (await registered(preview.registrations, previewApp)).filter(
      (r) => r.type !== 'kubernetes:core/v1:Namespace',
    );
    for (const object of planned) {
      expect(object.inputs.kind).toBeDefined();
      expect(isUnknownInput(object.inputs.metadata)).toBe(true);
    }
    expect(await isKnown((await previewApp.done).gateway.gatewayNamespace)).toBe(false);

    const up = await useMocks();
    const applied = (await registered(up.registrations, namespacedProgram())).filter(
      (r) => r.type !== 'kubernetes:core/v1:Namespace',
    );
    expect(applied.map((r) => r.urn).sort()).toEqual(planned.map((r) => r.urn).sort());
    expect(applied.length).toBeGreaterThan(10);
  });

  it("keeps a shared backend grant's URN when the backend that needed it first is removed", async () => {
    const grantWith = async (backendNames: readonly string[]) => {
      const mocks = await useMocks();
      const app = new AIGatewayApp('app', (app) => {
        const gateway = new AIGateway(
          'gw',
          { namespace: 'ai', allowedRoutes: cdk.AllowedRoutes.fromNamespaces('team') },
          { parent: app },
        );
        const backends = backendNames.map((name) =>
          ProviderBackend.kubernetesService(
            name,
            { namespace: 'models', serviceName: name, port: 8000 },
            { parent: app },
          ),
        );
        new AIRoute('chat', {
          gateway,
          namespace: 'team',
          rules: backendNames.map((name, i) => ({
            models: [cdk.ModelMatch.exact(name)],
            backends: [{ backend: backends[i] }],
          })),
        });
      });
      const objects = await registered(mocks.registrations, app);
      const grant = objectNamed(objects, 'ReferenceGrant', 'models/ai-services-from-team');
      // The app lists it among its own resources (what a dependsOn on the grants waits for).
      const own = await app.kubernetesResources();
      expect(own.map((r) => `${r.kind} ${r.path}`)).toEqual([
        'ReferenceGrant AIBackendGrants/models.ai-services-from-team',
      ]);
      return { urn: grant.urn, to: (grant.inputs.spec as { to: { name: string }[] }).to.map((t) => t.name) };
    };
    const both = await grantWith(['vllm', 'tgi']);
    const withoutFirst = await grantWith(['tgi']);
    expect(both.to).toEqual(['vllm', 'tgi']);
    expect(withoutFirst.to).toEqual(['tgi']);
    expect(withoutFirst.urn).toBe(both.urn);
    expect(both.urn).toMatch(
      /AIGatewayApp\$kubernetes:gateway.networking.k8s.io\/v1beta1:ReferenceGrant::app:AIBackendGrants\//,
    );
  });

  it('leaves out, with a warning, a route whose admission a placeholder cannot show', async () => {
    const mocks = await useMocks({ preview: true, unknownOutputsFor: ['kubernetes:core/v1:Namespace'] });
    const warnings: string[] = [];
    const warn = jest.spyOn(pulumi.log, 'warn').mockImplementation(async (message) => void warnings.push(message));
    const team = new k8s.core.v1.Namespace('team', { metadata: { name: 'team' } }).metadata.name;
    const app = new AIGatewayApp('app', (app) => {
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
    });
    const objects = await registered(mocks.registrations, app);
    warn.mockRestore();
    expect(warnings).toEqual([
      expect.stringMatching(
        /^the objects of AIRoute "chat" cannot be planned while some inputs are unknown; .*does not admit routes from this namespace/,
      ),
    ]);
    // The in-cluster backend emits objects only for routes of other namespaces; the route is left out.
    const owners = new Set(
      objects.filter((r) => r.type !== 'kubernetes:core/v1:Namespace').map((r) => parentName(mocks.registrations, r)),
    );
    expect([...owners]).toEqual(['gw']);
  });

  it(
    'runs the example while its namespaces are unknown, planning every object under the URN ' + '`up` gives it',
    async () => {
      type Example = typeof import('../../examples/pulumi/index');
      const config = () =>
        pulumi.runtime.setAllConfig({ 'project:openaiApiKey': 'sk-a', 'project:anthropicApiKey': 'sk-b' }, [
          'project:openaiApiKey',
          'project:anthropicApiKey',
        ]);
      const run = async (preview: boolean) => {
        const mocks = await useMocks(
          preview ? { preview: true, unknownOutputsFor: ['kubernetes:core/v1:Namespace'] } : {},
        );
        config();
        let example!: Example;
        jest.isolateModules(() => {
          example = require('../../examples/pulumi/index') as Example;
        });
        await valueOf(example.gatewayName);
        await waitForRPCs();
        return { example, registrations: mocks.registrations };
      };
      const warnings: string[] = [];
      const warn = jest.spyOn(pulumi.log, 'warn').mockImplementation(async (message) => void warnings.push(message));
      const preview = await run(true);
      warn.mockRestore();
      const planned = kubeObjects(preview.registrations).filter((r) => r.type !== 'kubernetes:core/v1:Namespace');

      expect(await isKnown(preview.example.gatewayName)).toBe(false);
      expect(warnings).toEqual([]);
      const owners = new Set(planned.map((r) => parentName(preview.registrations, r)));
      expect([...owners].sort()).toEqual([
        'ai-gateway',
        'ai-gateway-example',
        'anthropic',
        'bedrock',
        'chat',
        'openai',
        'redis',
      ]);
      for (const object of planned) expect(isUnknownInput(object.inputs.metadata)).toBe(true);

      const up = await run(false);
      // Per route namespace, the gateway and each backend grant the route access, and the gateway's processor has an
      // EnvoyExtensionPolicy and a 404 filter: whether those objects exist, and their names, follow the namespace's
      // value, so only they are named after a placeholder in the preview.
      const perNamespace =
        /(:ReferenceGrant::[a-z-]+:((Processor\/)?ReferenceGrant-|AIBackendGrants\/))|(::[a-z-]+:Processor\/(ExtensionPolicy|NotFound)-)/;
      const urns = (registrations: readonly Registration[]) => registrations.map((r) => r.urn).sort();
      const grants = (registrations: readonly Registration[]) =>
        urns(registrations)
          .filter((urn) => perNamespace.test(urn))
          .map((urn) => urn.split('::').pop());
      expect(urns(preview.registrations).filter((urn) => !perNamespace.test(urn))).toEqual(
        urns(up.registrations).filter((urn) => !perNamespace.test(urn)),
      );
      expect(grants(up.registrations)).toEqual([
        'ai-gateway:Processor/ExtensionPolicy-team-chat',
        'ai-gateway:Processor/NotFound-team-chat',
        'ai-gateway:Processor/ReferenceGrant-team-chat',
        // One grant for the three backends, the app's.
        'ai-gateway-example:AIBackendGrants/ai-platform.ai-backends-from-team-chat',
      ]);
      expect(grants(preview.registrations)).toEqual(
        // The shared grant's name holds the backends' namespace too (the first namespace input, the Redis').
        grants(up.registrations).map((name) =>
          name!.replace('team-chat', 'ai-gateway-input-2').replace('ai-platform.', 'redis-input-1.'),
        ),
      );
      // Every object `up` registers was planned, under a placeholder name where the namespace decides it.
      const created = kubeObjects(up.registrations).filter((r) => r.type !== 'kubernetes:core/v1:Namespace');
      expect(planned.length).toBe(created.length);
      expect(planned.length).toBeGreaterThan(20);
    },
  );
});
