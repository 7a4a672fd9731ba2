import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { ApiObject, Chart } from 'cdk8s';
import { AIGatewayApp, Cdk8sChart } from '../../lib/pulumi';
import { creationOrder, dependencyIndices, referencesOf } from '../../lib/pulumi/dependencies';
import { collectEventuals, mapEventuals, placeholderText } from '../../lib/pulumi/inputs';
import { resourceClassFor } from '../../lib/pulumi/kinds';
import { KubeObject } from '../../lib/pulumi/objects';
import { legacyName, logicalName } from '../../lib/pulumi/renderer';
import { isKnown, isUnknownInput, kubeObjects, useMocks, valueOf, waitForRPCs } from './harness';

const ROOT = path.resolve(__dirname, '..', '..');

const ns = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
const object = (
  apiVersion: string,
  kind: string,
  namespace: string,
  name: string,
  body: Record<string, unknown> = {},
): KubeObject => ({
  apiVersion,
  kind,
  metadata: { name, namespace },
  ...body,
});

const deployment = object('apps/v1', 'Deployment', 'gw', 'processor', {
  spec: {
    template: {
      spec: {
        serviceAccountName: 'processor',
        containers: [{ name: 'p', env: [{ name: 'K', valueFrom: { secretKeyRef: { name: 'env', key: 'k' } } }] }],
        volumes: [
          { name: 'config', configMap: { name: 'processor-config' } },
          { name: 'openai', secret: { secretName: 'openai' } },
        ],
      },
    },
  },
});

function names(objects: readonly KubeObject[], indices: readonly number[]): string[] {
  return indices.map((i) => `${objects[i].kind}/${objects[i].metadata?.name}`);
}

describe('dependencyIndices', () => {
  it('orders a Deployment after its namespace, ServiceAccount, ConfigMap and Secrets', () => {
    const objects = [
      deployment,
      object('v1', 'ConfigMap', 'gw', 'processor-config'),
      object('v1', 'Secret', 'gw', 'openai'),
      object('v1', 'Secret', 'gw', 'env'),
      object('v1', 'ServiceAccount', 'gw', 'processor'),
      object('v1', 'ServiceAccount', 'other', 'processor'),
      ns('gw'),
    ];
    expect(names(objects, dependencyIndices(objects)[0]).sort()).toEqual(
      ['ConfigMap/processor-config', 'Namespace/gw', 'Secret/env', 'Secret/openai', 'ServiceAccount/processor'].sort(),
    );
    expect(names(objects, creationOrder(objects, dependencyIndices(objects)))).toEqual([
      'Namespace/gw',
      'ConfigMap/processor-config',
      'Secret/openai',
      'Secret/env',
      'ServiceAccount/processor',
      'Deployment/processor',
      'ServiceAccount/processor',
    ]);
  });

  it('orders Gateway API and Envoy Gateway objects after what they reference, policies after their targets', () => {
    const objects = [
      object('gateway.envoyproxy.io/v1alpha1', 'EnvoyExtensionPolicy', 'gw', 'ext-proc', {
        spec: {
          targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'ai' }],
          extProc: [{ backendRefs: [{ name: 'processor', port: 1063 }] }],
        },
      }),
      object('gateway.networking.k8s.io/v1', 'HTTPRoute', 'team', 'chat', {
        spec: {
          parentRefs: [{ name: 'ai', namespace: 'gw' }],
          rules: [{ backendRefs: [{ group: 'gateway.envoyproxy.io', kind: 'Backend', name: 'openai' }] }],
        },
      }),
      object('gateway.networking.k8s.io/v1', 'Gateway', 'gw', 'ai', { spec: { gatewayClassName: 'eg' } }),
      { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'eg' } },
      object('v1', 'Service', 'gw', 'processor'),
      object('gateway.envoyproxy.io/v1alpha1', 'Backend', 'team', 'openai'),
      object('gateway.networking.k8s.io/v1', 'BackendTLSPolicy', 'team', 'openai', {
        spec: { targetRefs: [{ group: 'gateway.envoyproxy.io', kind: 'Backend', name: 'openai' }] },
      }),
    ];
    const deps = dependencyIndices(objects);
    expect(names(objects, deps[0])).toEqual(['Gateway/ai', 'Service/processor']);
    expect(names(objects, deps[1])).toEqual(['Gateway/ai', 'Backend/openai']);
    expect(names(objects, deps[2])).toEqual(['GatewayClass/eg']);
    expect(names(objects, deps[6])).toEqual(['Backend/openai']);
    const order = names(objects, creationOrder(objects, deps));
    expect(order.indexOf('Service/processor')).toBeLessThan(order.indexOf('EnvoyExtensionPolicy/ext-proc'));
    expect(order.indexOf('GatewayClass/eg')).toBeLessThan(order.indexOf('Gateway/ai'));
  });

  it('makes a cross-namespace reference wait for the ReferenceGrant that admits it, and only that one', () => {
    const objects = [
      object('gateway.networking.k8s.io/v1', 'HTTPRoute', 'team', 'chat', {
        spec: {
          rules: [
            { backendRefs: [{ group: 'gateway.envoyproxy.io', kind: 'Backend', name: 'openai', namespace: 'shared' }] },
          ],
        },
      }),
      object('gateway.networking.k8s.io/v1beta1', 'ReferenceGrant', 'shared', 'from-team', {
        spec: {
          from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'team' }],
          to: [{ group: 'gateway.envoyproxy.io', kind: 'Backend' }],
        },
      }),
      object('gateway.networking.k8s.io/v1beta1', 'ReferenceGrant', 'shared', 'from-elsewhere', {
        spec: { from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'elsewhere' }], to: [] },
      }),
      object('gateway.envoyproxy.io/v1alpha1', 'Backend', 'shared', 'openai'),
    ];
    expect(names(objects, dependencyIndices(objects)[0])).toEqual(['ReferenceGrant/from-team', 'Backend/openai']);
  });

  it('orders custom objects after the CustomResourceDefinition of their kind', () => {
    const objects = [
      object('example.com/v1', 'Widget', 'gw', 'w'),
      {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: 'widgets.example.com' },
        spec: { group: 'example.com', names: { kind: 'Widget' } },
      },
    ];
    expect(names(objects, dependencyIndices(objects)[0])).toEqual(['CustomResourceDefinition/widgets.example.com']);
  });

  it('ignores references to objects that are not rendered, and metadata', () => {
    const route = object('gateway.networking.k8s.io/v1', 'HTTPRoute', 'team', 'chat', {
      spec: { parentRefs: [{ name: 'existing-gateway', namespace: 'infra' }] },
    });
    expect(referencesOf(route)).toEqual([
      { group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'infra', name: 'existing-gateway' },
    ]);
    expect(dependencyIndices([route])).toEqual([[]]);
  });

  it('throws on a cycle, naming the objects in it', () => {
    const a = object('example.com/v1', 'A', 'n', 'a', { spec: { ref: { kind: 'B', name: 'b' } } });
    const b = object('example.com/v1', 'B', 'n', 'b', { spec: { ref: { kind: 'A', name: 'a' } } });
    expect(() => creationOrder([a, b], dependencyIndices([a, b]))).toThrow(
      'objects depend on each other in a cycle: A n/a -> B n/b -> A n/a',
    );
  });
});

describe('inputs', () => {
  it('makes placeholders that are DNS labels, per owner and index', () => {
    expect(placeholderText('My_Gateway.X', 2)).toBe('my-gateway-x-input-2');
    expect(placeholderText('__', 1)).toBe('pulumi-input-1');
    const long = placeholderText('a'.repeat(100), 12);
    expect(long).toBe(`${'a'.repeat(63 - '-input-12'.length)}-input-12`);
    expect(long).toHaveLength(63);
  });

  it('replaces Outputs and Promises inside arrays and plain objects, and nothing inside class instances', () => {
    const output = pulumi.output('x');
    const promise = Promise.resolve('y');
    class Holder {
      constructor(readonly inner: unknown) {}
    }
    const holder = new Holder(output);
    const props = { a: output, list: [promise, 'plain', { deep: output }], holder };
    expect(collectEventuals(props)).toEqual([output, promise]);
    expect(mapEventuals(props, (input) => (input === output ? 'X' : 'Y'))).toEqual({
      a: 'X',
      list: ['Y', 'plain', { deep: 'X' }],
      holder,
    });
  });
});

describe('resourceClassFor / logicalName', () => {
  it('uses typed classes for built-in kinds and CustomResource for CRD kinds', () => {
    expect(resourceClassFor('v1', 'ConfigMap')).toBe(k8s.core.v1.ConfigMap);
    expect(resourceClassFor('apps/v1', 'Deployment')).toBe(k8s.apps.v1.Deployment);
    expect(resourceClassFor('policy/v1', 'PodDisruptionBudget')).toBe(k8s.policy.v1.PodDisruptionBudget);
    expect(resourceClassFor('networking.k8s.io/v1', 'NetworkPolicy')).toBe(k8s.networking.v1.NetworkPolicy);
    expect(resourceClassFor('gateway.networking.k8s.io/v1', 'HTTPRoute')).toBe(k8s.apiextensions.CustomResource);
    expect(resourceClassFor('gateway.envoyproxy.io/v1alpha1', 'Backend')).toBe(k8s.apiextensions.CustomResource);
  });

  it('refuses a built-in kind it has no class for', () => {
    expect(() => resourceClassFor('apps/v1', 'Widget')).toThrow(
      '@pulumi/kubernetes has no resource class for built-in kind apps/v1 Widget',
    );
  });

  it('names resources from the component and the construct path, aliased to the names from namespace and name', () => {
    expect(logicalName('gw', 'Processor/Service/Resource')).toBe('gw:Processor/Service/Resource');
    expect(legacyName('gw', object('v1', 'Service', 'ai', 'processor'))).toBe('gw:ai/processor');
    expect(legacyName('gw', ns('ai'))).toBe('gw:ai');
  });
});

/** A hand-made chart: namespace, config, service account, workload, service, a policy pointing at the service. */
function buildSample(chart: Chart, props: { namespace: string; greeting: string }): void {
  const { namespace } = props;
  new ApiObject(chart, 'ns', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  new ApiObject(chart, 'config', {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'config', namespace },
    data: { greeting: props.greeting },
  });
  new ApiObject(chart, 'sa', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'app', namespace } });
  new ApiObject(chart, 'deploy', {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'app', namespace },
    spec: {
      selector: { matchLabels: { app: 'app' } },
      template: {
        metadata: { labels: { app: 'app' } },
        spec: {
          serviceAccountName: 'app',
          containers: [{ name: 'app', image: 'app:1' }],
          volumes: [{ name: 'config', configMap: { name: 'config' } }],
        },
      },
    },
  });
  new ApiObject(chart, 'svc', {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'app', namespace },
    spec: { selector: { app: 'app' }, ports: [{ port: 80 }] },
  });
  new ApiObject(chart, 'policy', {
    apiVersion: 'gateway.envoyproxy.io/v1alpha1',
    kind: 'EnvoyExtensionPolicy',
    metadata: { name: 'ext', namespace },
    spec: { extProc: [{ backendRefs: [{ name: 'app', port: 80 }] }] },
  });
}

/** Runs `program` in an app and waits until its objects are registered; returns what the program returned. */
async function inApp<T>(program: (app: pulumi.ComponentResource) => T): Promise<T> {
  const app = new AIGatewayApp('app', program);
  const result = await app.done;
  await waitForRPCs();
  return result;
}

describe('Cdk8sChart under mocks', () => {
  it('registers every synthesized object under the component, ordered, with the user provider', async () => {
    const mocks = await useMocks();
    const provider = new k8s.Provider('cluster', {});
    const component = await inApp(
      (app) =>
        new Cdk8sChart(
          'sample',
          { props: { namespace: 'demo', greeting: 'hi' }, build: buildSample },
          { parent: app, providers: [provider] },
        ),
    );

    const objects = kubeObjects(mocks.registrations);
    const componentUrn = await valueOf(component.urn);
    const providerUrn = await valueOf(provider.urn);
    expect(objects.map((r) => `${r.type} ${r.name}`).sort()).toEqual(
      [
        'kubernetes:core/v1:Namespace sample:ns',
        'kubernetes:core/v1:ConfigMap sample:config',
        'kubernetes:core/v1:ServiceAccount sample:sa',
        'kubernetes:apps/v1:Deployment sample:deploy',
        'kubernetes:core/v1:Service sample:svc',
        'kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyExtensionPolicy sample:policy',
      ].sort(),
    );
    for (const registration of objects) {
      expect(registration.parent).toBe(componentUrn);
      expect(registration.provider).toContain(providerUrn);
    }
    const urnOf = (name: string, type: string) => objects.find((r) => r.name === name && r.type.endsWith(type))!.urn;
    const deploymentDeps = objects.find((r) => r.type === 'kubernetes:apps/v1:Deployment')!.dependencies;
    expect(deploymentDeps.sort()).toEqual(
      [
        urnOf('sample:ns', 'Namespace'),
        urnOf('sample:config', 'ConfigMap'),
        urnOf('sample:sa', 'ServiceAccount'),
      ].sort(),
    );
    expect(objects.find((r) => r.type.endsWith('EnvoyExtensionPolicy'))!.dependencies.sort()).toEqual(
      [urnOf('sample:ns', 'Namespace'), urnOf('sample:svc', 'Service')].sort(),
    );

    const chart = new Chart(new (await import('cdk8s')).App(), 'direct');
    buildSample(chart, { namespace: 'demo', greeting: 'hi' });
    expect(await valueOf(component.manifests)).toEqual(chart.toJson());
    const byName = (a: KubeObject, b: KubeObject) =>
      `${a.kind}/${a.metadata?.name}`.localeCompare(`${b.kind}/${b.metadata?.name}`);
    expect(objects.map(({ inputs }) => inputs as unknown as KubeObject).sort(byName)).toEqual(
      chart.toJson().sort(byName),
    );
  });

  it('resolves Output inputs before building, and the objects depend on the resources behind them', async () => {
    const mocks = await useMocks();
    const namespace = new k8s.core.v1.Namespace('team', { metadata: { name: 'team-a' } });
    await inApp(
      (app) =>
        new Cdk8sChart(
          'resolved',
          { props: { namespace: namespace.metadata.name, greeting: pulumi.output('hello') }, build: buildSample },
          { parent: app },
        ),
    );
    const objects = kubeObjects(mocks.registrations).filter((r) => r.name.startsWith('resolved:'));
    const config = objects.find((r) => r.type.endsWith('ConfigMap'))!;
    expect(config.inputs).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'config', namespace: 'team-a' },
      data: { greeting: 'hello' },
    });
    expect(config.dependencies).toContain(await valueOf(namespace.urn));
    expect(config.name).toBe('resolved:config');
  });

  it(
    'plans the objects with placeholders and registers them with unknown inputs when an input ' +
      'is unknown during preview',
    async () => {
      const mocks = await useMocks({ preview: true, unknownOutputsFor: ['kubernetes:core/v1:Namespace'] });
      const namespace = new k8s.core.v1.Namespace('team', { metadata: { name: 'team-a' } });
      const component = await inApp(
        (app) =>
          new Cdk8sChart(
            'preview',
            { props: { namespace: namespace.metadata.name, greeting: 'hi' }, build: buildSample },
            { parent: app },
          ),
      );
      const objects = kubeObjects(mocks.registrations).filter((r) => r.name.startsWith('preview:'));
      expect(objects).toHaveLength(6);
      for (const registration of objects) {
        expect(registration.inputs.kind).toBeDefined();
        expect(isUnknownInput(registration.inputs.metadata)).toBe(true);
      }
      // Named as in `up`, from the construct path; the old-style alias carries the placeholder.
      const config = objects.find((r) => r.name === 'preview:config')!;
      expect(config.aliases).toContainEqual(expect.objectContaining({ name: 'preview:preview-input-1/config' }));
      expect(await valueOf(component.manifests)).toBeUndefined();
    },
  );

  // Failures after construction surface as unhandled rejections (Pulumi's way to fail the run), which jest
  // would attribute to the test itself; these programs run in their own process.
  it.each([
    ['invalid-props', 'broken: invalid prop "x"'],
    ['invalid-output', 'Cdk8sChart got namespace "Not-Valid"'],
    ['construct-validation', 'Validation failed with the following errors:\n  [validated] needs at least one route'],
    [
      'secret-outside-processor-namespace',
      'openai/ProviderBackend: invalid credentials.namespace "elsewhere": Secret "openai-key" ' +
        'must be in namespace "ai"',
    ],
    ['program-throws', 'lookup failed'],
  ])('fails the run when the model cannot be built (%s)', (scenario, message) => {
    const run = spawnSync(
      path.join(ROOT, 'node_modules', '.bin', 'tsx'),
      [path.join(__dirname, 'programs', 'failing.ts'), scenario],
      {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(message);
  });

  it(
    'registers nothing but does not fail when the model cannot be planned from placeholders ' + 'during preview',
    async () => {
      const mocks = await useMocks({ preview: true, unknownOutputsFor: ['kubernetes:core/v1:Namespace'] });
      const namespace = new k8s.core.v1.Namespace('team', { metadata: { name: 'team-a' } });
      const component = await inApp(
        (app) =>
          new Cdk8sChart(
            'picky',
            {
              props: { namespace: namespace.metadata.name },
              build: (chart, props) => {
                if (props.namespace !== 'team-a') throw new Error(`namespace ${props.namespace} is not admitted`);
                new ApiObject(chart, 'c', {
                  apiVersion: 'v1',
                  kind: 'ConfigMap',
                  metadata: { name: 'c', namespace: props.namespace },
                });
              },
            },
            { parent: app },
          ),
      );
      expect(kubeObjects(mocks.registrations).filter((r) => r.name.startsWith('picky:'))).toEqual([]);
      expect(await isKnown(component.manifests)).toBe(false);
    },
  );

  it("refuses a chart's manifests as an input of the same app (they resolve once the app is built)", async () => {
    await useMocks();
    await inApp((app) => {
      const first = new Cdk8sChart('first', { props: {}, build: () => undefined }, { parent: app });
      expect(
        () => new Cdk8sChart('second', { props: { other: first.manifests }, build: () => undefined }, { parent: app }),
      ).toThrow(
        'Cdk8sChart "second": an input is an output of Cdk8sChart "first", which only resolves once ' +
          'AIGatewayApp "app" is built',
      );
    });
  });

  it('lets components of different types share a name, and refuses two of one type', async () => {
    await useMocks();
    await inApp((app) => {
      new Cdk8sChart('twin', { props: {}, build: () => undefined }, { parent: app });
      expect(() => new Cdk8sChart('twin', { props: {}, build: () => undefined }, { parent: app })).toThrow(
        'Cdk8sChart "twin": construct path "twin/Cdk8sChart" is already taken by Cdk8sChart "twin"',
      );
    });
  });
});
