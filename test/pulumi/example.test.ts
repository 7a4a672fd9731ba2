/**
 * `examples/pulumi/index.ts` run under mocks: it registers, object for object, what `cdk8s synth` emits for
 * `examples/cdk8s/main.ts`, plus the two API-key Secrets Pulumi creates from config secrets; every object
 * under its component, the keys only in secret inputs, objects ordered by their references.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { App } from 'cdk8s';
import { buildExample } from '../../examples/cdk8s/main';
import type { KubeObject } from '../../lib/pulumi';
import {
  Registration,
  identityOf,
  isSecretInput,
  kubeObjects,
  objectNamed,
  settle,
  unwrapSecret,
  useMocks,
  valueOf,
} from './harness';

const OPENAI_KEY = 'sk-test-openai-0123456789';
const ANTHROPIC_KEY = 'sk-ant-test-9876543210';

type Example = typeof import('../../examples/pulumi/index');

let registrations: Registration[];
let example: Example;
let monitorState: string;

beforeAll(async () => {
  const mocks = await useMocks();
  pulumi.runtime.setAllConfig({ 'project:openaiApiKey': OPENAI_KEY, 'project:anthropicApiKey': ANTHROPIC_KEY }, [
    'project:openaiApiKey',
    'project:anthropicApiKey',
  ]);
  example = require('../../examples/pulumi/index') as Example;
  await valueOf(example.gatewayName);
  await settle();
  await waitForRegistrations(mocks.registrations);
  registrations = mocks.registrations;
  const monitor = pulumi.runtime.getMonitor() as unknown as { resources: Map<string, { urn: string; state: unknown }> };
  monitorState = JSON.stringify(
    [...monitor.resources.values()].filter((r) => !r.urn.includes('kubernetes:core/v1:Secret::')),
  );
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
  kubeObjects(registrations).filter(
    (r) => r.type === 'kubernetes:core/v1:Secret' && componentType(r.urn) === 'ai-gateway:index:ProviderBackend',
  );

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
    expect(secrets.map((s) => s.name).sort()).toEqual([
      'anthropic:ManagedSecret/anthropic-api-key',
      'openai:ManagedSecret/openai-api-key',
    ]);
    for (const secret of secrets) {
      expect(secret.inputs.metadata).toEqual({ name: secret.name.split('/')[1], namespace: 'ai-platform' });
      // Stacks deployed before names followed construct paths keep the Secret (same URN through the alias).
      const [component, secretName] = [secret.name.split(':')[0], secret.name.split('/')[1]];
      expect(secret.aliases).toContainEqual({
        name: `${component}:ai-platform/${secretName}`,
        parentUrn: `urn:pulumi:stack::project::ai-gateway:index:ProviderBackend::${component}`,
      });
      expect(isSecretInput(secret.inputs.stringData)).toBe(true);
      expect(secret.inputs.data).toBeUndefined();
    }
    const values = Object.fromEntries(secrets.map((s) => [identityOf(s), unwrapSecret(s.inputs.stringData)]));
    expect(values).toEqual({
      'Secret ai-platform/anthropic-api-key': { 'api-key': ANTHROPIC_KEY },
      'Secret ai-platform/openai-api-key': { 'api-key': OPENAI_KEY },
    });

    const deployment = objectNamed(registrations, 'Deployment', 'ai-platform/ai-gateway-processor');
    const volumes = (
      deployment.inputs as { spec: { template: { spec: { volumes: { secret?: { secretName: string } }[] } } } }
    ).spec.template.spec.volumes;
    expect(volumes.flatMap((v) => (v.secret ? [v.secret.secretName] : [])).sort()).toEqual([
      'anthropic-api-key',
      'openai-api-key',
    ]);
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
    const owner = (type: string, name: string) => urns.get(objectNamed(registrations, type, name).parent)?.name;
    expect(owner('Gateway', 'ai-platform/ai-gateway')).toBe('ai-gateway');
    expect(owner('ConfigMap', 'ai-platform/ai-gateway-processor-config')).toBe('ai-gateway');
    expect(owner('BackendTrafficPolicy', 'ai-platform/ai-gateway-budgets')).toBe('ai-gateway');
    expect(owner('Deployment', 'ai-platform/redis')).toBe('redis');
    expect(owner('Backend', 'ai-platform/openai')).toBe('openai');
    expect(owner('Backend', 'ai-platform/bedrock-us-east-1')).toBe('bedrock');
    expect(owner('HTTPRoute', 'team-chat/chat')).toBe('chat');
    // The processor's policy for the routes of team-chat is the gateway's (one per route namespace).
    expect(owner('EnvoyExtensionPolicy', 'team-chat/ai-gateway-processor-ai-platform')).toBe('ai-gateway');
    expect(owner('ReferenceGrant', 'ai-platform/ai-gateway-processor-from-team-chat')).toBe('ai-gateway');
    // The grant the backends of ai-platform share is the app's, aliased to where it was: below the backend the route
    // names first, with the construct id it had there.
    const grant = objectNamed(registrations, 'ReferenceGrant', 'ai-platform/ai-backends-from-team-chat');
    expect(urns.get(grant.parent)?.type).toBe('ai-gateway:index:AIGatewayApp');
    expect(grant.name).toBe('ai-gateway-example:AIBackendGrants/ai-platform.ai-backends-from-team-chat');
    const anthropic = registrations.find(
      (r) => r.type === 'ai-gateway:index:ProviderBackend' && r.name === 'anthropic',
    )!;
    expect(grant.aliases.filter((alias) => alias.name !== undefined)).toEqual(
      expect.arrayContaining([
        { name: 'anthropic:ReferenceGrant-team-chat', parentUrn: anthropic.urn },
        { name: 'anthropic:ai-platform/ai-backends-from-team-chat', parentUrn: anthropic.urn },
      ]),
    );
    // Resource names follow construct paths (never input values); the old `<component>:<namespace>/<name>` is an alias.
    const deployment = objectNamed(registrations, 'Deployment', 'ai-platform/ai-gateway-processor');
    expect(deployment.name).toBe('ai-gateway:Processor/Deployment/Resource');
    // Below the gateway as it is now, and below the gateway as it was at the stack root: the URN the object had.
    // (@pulumi/kubernetes adds its own aliases for older API versions of the kind.)
    expect(deployment.aliases.filter((alias) => alias.name !== undefined)).toEqual([
      { name: 'ai-gateway:ai-platform/ai-gateway-processor', parentUrn: deployment.parent },
      {
        name: 'ai-gateway:ai-platform/ai-gateway-processor',
        parentUrn: 'urn:pulumi:stack::project::ai-gateway:index:AIGateway::ai-gateway',
      },
    ]);

    for (const registration of kubeObjects(registrations)) {
      if (registration.type === 'kubernetes:core/v1:Namespace') {
        // The example's own resources (under mocks there is no Stack resource to parent them).
        expect(urns.get(registration.parent)).toBeUndefined();
        continue;
      }
      const parent = urns.get(registration.parent);
      expect(parent?.type).toMatch(
        /^ai-gateway:index:(AIGateway|AIRoute|ProviderBackend|RateLimitRedis|AIGatewayApp)$/,
      );
      expect(registration.name.startsWith(`${parent!.name}:`)).toBe(true);
      expect(registration.urn).toContain(`${parent!.type}$${registration.type}::`);
    }
    // Every component sits in the app, with an alias to the stack root where components used to be.
    const app = registrations.find((r) => r.type === 'ai-gateway:index:AIGatewayApp')!;
    for (const component of registrations.filter((r) => r.type.startsWith('ai-gateway:index:') && r !== app)) {
      expect(component.parent).toBe(app.urn);
      expect(component.aliases).toEqual([{ noParent: true }]);
    }
  });

  it('keeps every URN of a stack deployed with the version before AIGatewayApp, through aliases', () => {
    // test/pulumi/fixtures/example-urns-0.x.json: every URN the previous version (components at the stack root,
    // objects named <component>:<namespace>/<name>) registered for this example under the same mocks.
    const before = JSON.parse(
      fs.readFileSync(path.join(__dirname, 'fixtures', 'example-urns-0.x.json'), 'utf8'),
    ) as string[];
    const qualifiedType = (urn: string) => urn.split('::')[2];
    const known = new Set<string>();
    for (const registration of registrations) {
      known.add(registration.urn);
      for (const alias of registration.aliases) {
        const type = alias.type ?? registration.type;
        const name = alias.name ?? registration.name;
        if (alias.noParent) known.add(`urn:pulumi:stack::project::${type}::${name}`);
        else if (alias.parentUrn)
          known.add(`urn:pulumi:stack::project::${qualifiedType(alias.parentUrn)}$${type}::${name}`);
      }
    }
    // Replaced on purpose: the route's own EnvoyExtensionPolicy and 404 filter gave way to the gateway processor's
    // for the route namespace, objects of other names (docs/pulumi.md, "Upgrading: one EnvoyExtensionPolicy and 404
    // filter per namespace"); and each backend's grant to team-chat gave way to one grant naming the three backends
    // (docs/pulumi.md, "Upgrading: one ReferenceGrant for up to 16 backends"). Removed on purpose: each backend's
    // BackendTLSPolicy, whose settings the Backend holds now (docs/pulumi.md, "Upgrading: TLS settings in the
    // Backend").
    const backendGrant = (backend: string) =>
      'urn:pulumi:stack::project::ai-gateway:index:ProviderBackend$kubernetes:gateway.networking.k8s.io/v1beta1:' +
      `ReferenceGrant::${backend}`;
    const replaced = [
      backendGrant('anthropic:ai-platform/anthropic-from-team-chat'),
      backendGrant('bedrock:ai-platform/bedrock-us-east-1-from-team-chat'),
      backendGrant('openai:ai-platform/openai-from-team-chat'),
      'urn:pulumi:stack::project::ai-gateway:index:AIRoute$kubernetes:gateway.envoyproxy.io/v1alpha1:' +
        'EnvoyExtensionPolicy::chat:team-chat/chat-processor',
      'urn:pulumi:stack::project::ai-gateway:index:AIRoute$kubernetes:gateway.envoyproxy.io/v1alpha1:' +
        'HTTPRouteFilter::chat:team-chat/chat-not-found',
      ...[
        'anthropic:ai-platform/anthropic-tls',
        'bedrock:ai-platform/bedrock-us-east-1-tls',
        'openai:ai-platform/openai-tls',
      ].map(
        (name) =>
          'urn:pulumi:stack::project::ai-gateway:index:ProviderBackend$kubernetes:gateway.networking.k8s.io/v1:' +
          `BackendTLSPolicy::${name}`,
      ),
    ];
    expect(before).toEqual(expect.arrayContaining(replaced));
    expect(before.length).toBeGreaterThan(35);
    expect(before.filter((urn) => !known.has(urn) && !replaced.includes(urn))).toEqual([]);
  });

  it('orders objects after what they reference', () => {
    const urnOf = (type: string, name: string) => objectNamed(registrations, type, name).urn;
    const depsOf = (type: string, name: string) => objectNamed(registrations, type, name).dependencies;
    expect(depsOf('HTTPRoute', 'team-chat/chat')).toEqual(
      expect.arrayContaining([
        urnOf('Gateway', 'ai-platform/ai-gateway'),
        urnOf('Namespace', 'team-chat'),
        urnOf('HTTPRouteFilter', 'team-chat/ai-gateway-processor-ai-platform-not-found'),
      ]),
    );
    // The grants admitting HTTPRoutes to the Backends (the processor's grant admits EnvoyExtensionPolicies).
    expect(depsOf('HTTPRoute', 'team-chat/chat')).toEqual(
      expect.arrayContaining(
        registrations
          .filter((r) => r.type.endsWith(':ReferenceGrant') && !identityOf(r).endsWith('processor-from-team-chat'))
          .map((r) => r.urn),
      ),
    );
    // The processor's EnvoyExtensionPolicy in the routes' namespace waits for the processor Service and the grant
    // admitting it there. It selects the HTTPRoutes by label, so no route waits for it nor it for a route.
    expect(depsOf('EnvoyExtensionPolicy', 'team-chat/ai-gateway-processor-ai-platform')).toEqual(
      expect.arrayContaining([
        urnOf('Service', 'ai-platform/ai-gateway-processor'),
        urnOf('ReferenceGrant', 'ai-platform/ai-gateway-processor-from-team-chat'),
      ]),
    );
    expect(depsOf('Deployment', 'ai-platform/ai-gateway-processor')).toEqual(
      expect.arrayContaining([
        urnOf('ConfigMap', 'ai-platform/ai-gateway-processor-config'),
        urnOf('ServiceAccount', 'ai-platform/ai-gateway-processor'),
      ]),
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
            kubernetes: {
              rateLimitDeployment: {
                container: {
                  env: [{ name: 'REDIS_AUTH', valueFrom: { secretKeyRef: { name: 'redis-auth', key: 'password' } } }],
                },
              },
            },
          },
        },
      },
    });
  });
});
