import { ApiObject, Chart, Duration, JsonPatch, Testing } from 'cdk8s';
import { Construct } from 'constructs';
import {
  AIGateway,
  AIRoute,
  Credentials,
  GatewayClass,
  GatewayReference,
  ModelMatch,
  ProviderBackend,
  ProxyDeployMode,
} from '../lib';
import { Processor } from '../lib/processor';
import { customResource } from '../lib/crds';
import { GatewayModel, type RouteFragment } from '../lib/gateway-model';
import { gatewayFixture } from './support/fixtures';
import { type Manifest } from './support/manifests';
import { findAll, findOne, synthAll } from './support/synth';

/** The processor Deployment's shutdown settings as synthesized. */
function shutdownOf(all: Manifest[], name = 'gw-processor'): { delayMs: string; drainMs: string; grace: number } {
  const pod = (findOne(all, 'Deployment', name) as any).spec.template.spec;
  const args: string[] = pod.containers[0].args;
  const value = (flag: string) => {
    const at = args.indexOf(flag);
    expect(at).toBeGreaterThanOrEqual(0);
    return args[at + 1];
  };
  return {
    delayMs: value('--shutdown-delay-ms'),
    drainMs: value('--drain-timeout-ms'),
    grace: pod.terminationGracePeriodSeconds,
  };
}

function routeWith(
  fixture: ReturnType<typeof gatewayFixture>,
  id: string,
  model: string,
  props: Partial<ConstructorParameters<typeof AIRoute>[2]> = {},
) {
  return new AIRoute(fixture.team, id, {
    name: id.toLowerCase(),
    gateway: fixture.gateway,
    rules: [{ models: [ModelMatch.exact(model)], backends: [{ backend: fixture.openai }] }],
    ...props,
  });
}

describe('processor shutdown derived from the routes', () => {
  it('serves for 5 s after SIGTERM, then drains for at least 25 s; the grace period covers both', () => {
    const { app } = gatewayFixture();
    expect(shutdownOf(synthAll(app))).toEqual({ delayMs: '5000', drainMs: '25000', grace: 35 });
  });

  it(
    'drains for as long as the longest route timeout (the example: 120 s), whichever route and ' + 'namespace it is on',
    () => {
      const fixture = gatewayFixture();
      routeWith(fixture, 'Short', 'a', { requestTimeout: Duration.seconds(30) });
      routeWith(fixture, 'Long', 'b', { requestTimeout: Duration.seconds(120) });
      new AIRoute(fixture.platform, 'Local', {
        name: 'local',
        gateway: fixture.gateway,
        rules: [{ models: [ModelMatch.exact('c')], backends: [{ backend: fixture.openai }] }],
        requestTimeout: Duration.seconds(45),
      });
      expect(shutdownOf(synthAll(fixture.app))).toEqual({ delayMs: '5000', drainMs: '120000', grace: 130 });
      expect(fixture.gateway.processor.shutdown()).toEqual({
        delayMs: 5000,
        drainTimeoutMs: 120_000,
        streamIdleTimeoutMs: 300_000,
        terminationGracePeriodSeconds: 130,
        longestRequest: { route: 'team/long', ms: 120_000 },
      });
    },
  );

  it(
    'raises the stuck-stream watchdog above the longest request (a slow answer sends no ' +
      'ext_proc message meanwhile)',
    () => {
      const fixture = gatewayFixture();
      routeWith(fixture, 'Slow', 'slow', { requestTimeout: Duration.minutes(10) });
      expect(fixture.gateway.processor.shutdown().streamIdleTimeoutMs).toBe(660_000);
      const deployment = synthAll(fixture.app).find(
        (o) => o.kind === 'Deployment' && JSON.stringify(o).includes('--stream-idle-timeout-ms'),
      );
      const args = (
        deployment as unknown as { spec: { template: { spec: { containers: Array<{ args: string[] }> } } } }
      ).spec.template.spec.containers[0].args;
      expect(args[args.indexOf('--stream-idle-timeout-ms') + 1]).toBe('660000');
    },
  );

  it('counts a route added after the gateway was first rendered (the Deployment reads the routes at synth)', () => {
    const fixture = gatewayFixture();
    expect(shutdownOf(synthAll(fixture.app)).drainMs).toBe('25000');
    routeWith(fixture, 'Late', 'late', { requestTimeout: Duration.minutes(10) });
    expect(shutdownOf(synthAll(fixture.app))).toEqual({ delayMs: '5000', drainMs: '600000', grace: 610 });
  });

  it('rounds a timeout up to whole seconds', () => {
    const fixture = gatewayFixture();
    routeWith(fixture, 'Odd', 'odd', { requestTimeout: Duration.millis(90_001) });
    expect(shutdownOf(synthAll(fixture.app))).toEqual({ delayMs: '5000', drainMs: '91000', grace: 101 });
  });

  it("does not multiply the route timeout by the retries: Envoy's route timeout covers every attempt", () => {
    const fixture = gatewayFixture();
    routeWith(fixture, 'Retried', 'r', {
      requestTimeout: Duration.seconds(120),
      retry: { attempts: 2, perTryTimeout: Duration.seconds(100) },
    });
    const all = synthAll(fixture.app);
    // The retry policy is there, and the drain is the route timeout.
    expect(findOne(all, 'BackendTrafficPolicy', 'retried').spec.retry).toMatchObject({
      numRetries: 2,
      perRetry: { timeout: '100s' },
    });
    expect(findOne(all, 'HTTPRoute', 'retried').spec.rules[0].timeouts).toEqual({ request: '120s' });
    expect(shutdownOf(all).drainMs).toBe('120000');
  });

  it("reads the processor's traffic policy of the namespace for the routes it selects, as its own policy", () => {
    const fixture = gatewayFixture();
    const route = routeWith(fixture, 'Open', 'o');
    const objects = route.node.findAll().filter((c): c is ApiObject => ApiObject.isApiObject(c));
    expect(objects.some((o) => o.kind === 'BackendTrafficPolicy')).toBe(false);
    // An AIRoute's rules always carry a request timeout; without one (an escape hatch here), the shared policy holds
    // only the circuit breaker, so the route has no bound.
    objects
      .find((o) => o.kind === 'HTTPRoute')!
      .addJsonPatch(JsonPatch.replace('/spec/rules/0/timeouts/request', '0s'));
    expect(() => fixture.gateway.processor.shutdown()).toThrow(
      'team/Open: invalid requestTimeout "0s": route "team/open" has no request timeout',
    );
    // What that policy carries (here retries, through an escape hatch) counts for the routes it selects.
    const shared = route.processor.node.findChild('TrafficPolicy-team') as ApiObject;
    expect([shared.kind, shared.name]).toEqual(['BackendTrafficPolicy', 'gw-processor-platform']);
    shared.addJsonPatch(JsonPatch.add('/spec/retry', { numRetries: 1, perRetry: { timeout: '30s' } }));
    expect(fixture.gateway.processor.shutdown().longestRequest).toEqual({ route: 'team/open', ms: 60_000 });
  });

  it("gives a route on a Gateway not managed here its own processor with that route's drain", () => {
    const app = Testing.app();
    const team = new Chart(app, 'team', { namespace: 'team' });
    const openai = ProviderBackend.openAI(team, 'OpenAI', {
      name: 'openai',
      credentials: Credentials.apiKey({ secretName: 'openai', key: 'k' }),
    });
    new AIRoute(team, 'Chat', {
      name: 'chat',
      gateway: GatewayReference.fromName('shared', 'infra'),
      rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: openai }] }],
      requestTimeout: Duration.seconds(300),
    });
    expect(shutdownOf(synthAll(app), 'chat-processor')).toEqual({ delayMs: '5000', drainMs: '300000', grace: 310 });
  });

  it("checks the proxies' drain when the gateway is told it, naming the route and the EnvoyProxy fix", () => {
    const app = Testing.app();
    const platform = new Chart(app, 'platform', { namespace: 'platform' });
    const gateway = new AIGateway(platform, 'Gateway', { name: 'gw', proxyDrainTimeout: Duration.seconds(60) });
    const openai = ProviderBackend.openAI(platform, 'OpenAI', {
      name: 'openai',
      credentials: Credentials.apiKey({ secretName: 'openai', key: 'k' }),
    });
    new AIRoute(platform, 'Chat', {
      name: 'chat',
      gateway,
      rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: openai }] }],
      requestTimeout: Duration.seconds(120),
    });
    expect(() => synthAll(app)).toThrow(
      'platform/Gateway/Processor: invalid proxyDrainTimeout "60000ms": route "platform/chat" ' +
        "allows requests of 120000 ms, and a proxy rollout cuts what still runs after the proxies' " +
        "drain; set spec.shutdown.drainTimeout to at least 120s on the EnvoyProxy of the gateway's " +
        'proxies and pass the same value here',
    );

    const enough = Testing.app();
    const chart = new Chart(enough, 'platform', { namespace: 'platform' });
    const drained = new AIGateway(chart, 'Gateway', { name: 'gw', proxyDrainTimeout: Duration.seconds(120) });
    const backend = ProviderBackend.openAI(chart, 'OpenAI', {
      name: 'openai',
      credentials: Credentials.apiKey({ secretName: 'openai', key: 'k' }),
    });
    new AIRoute(chart, 'Chat', {
      name: 'chat',
      gateway: drained,
      rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend }] }],
      requestTimeout: Duration.seconds(120),
    });
    expect(shutdownOf(synthAll(enough)).drainMs).toBe('120000');
  });

  it("throws if the proxies' drain is not a positive whole number of milliseconds", () => {
    const app = Testing.app();
    expect(
      () => new AIGateway(new Chart(app, 'platform'), 'Gateway', { name: 'gw', proxyDrainTimeout: Duration.millis(0) }),
    ).toThrow(/platform\/Gateway: invalid proxyDrainTimeout "0ms": must be a positive whole number of milliseconds/);
  });
});

/** A route of the processor's model whose HTTPRoute (and retry policy) are emitted below `scope`. */
function routeFragment(scope: Construct, name: string, namespace: string): RouteFragment {
  const route = { name: `${namespace}/${name}`, endpoints: [], hostnames: [], rules: [], requiredHeaders: [] };
  return { scope, name, namespace, route, backends: [], mutatedHeaders: [], modelMatches: [] };
}

/** A processor with one hand-written HTTPRoute (and retry policy) in its model, as Envoy Gateway would read them. */
function processorWithRoute(rule: Record<string, unknown>, retry?: Record<string, unknown>, requestTimeout?: string) {
  const app = Testing.app();
  const chart = new Chart(app, 'team', { namespace: 'team' });
  const model = new GatewayModel();
  const processor = new Processor(chart, 'Processor', {
    baseName: 'p',
    namespace: 'team',
    gateway: { name: 'shared', namespace: 'infra' },
    envoyGatewayNamespace: 'envoy-gateway-system',
    maxRequestBodyBytes: 1024 * 1024,
    model,
  });
  const route = new Construct(chart, 'Route');
  customResource(
    route,
    'HTTPRoute',
    'gateway.networking.k8s.io/v1',
    'HTTPRoute',
    { name: 'r', namespace: 'team' },
    {
      parentRefs: [{ name: 'shared', namespace: 'infra' }],
      rules: [
        { backendRefs: [{ name: 'svc', port: 80 }], ...rule },
        { filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x', value: 'y' }] } }] },
      ],
    },
  );
  if (retry || requestTimeout) {
    customResource(
      route,
      'Policy',
      'gateway.envoyproxy.io/v1alpha1',
      'BackendTrafficPolicy',
      { name: 'r', namespace: 'team' },
      {
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'r' }],
        ...(retry ? { retry } : {}),
        ...(requestTimeout ? { timeout: { http: { requestTimeout } } } : {}),
      },
    );
  }
  model.addRoute(routeFragment(route, 'r', 'team'));
  return { app, model, processor };
}

describe('processor drain from the HTTPRoute as Envoy Gateway translates it', () => {
  it("uses Envoy's 15 s route timeout for a rule without one (the drain floor still applies)", () => {
    expect(processorWithRoute({}).processor.shutdown().longestRequest).toEqual({ route: 'team/r', ms: 15_000 });
  });

  it("takes the BackendTrafficPolicy request timeout when the rule sets none, and the rule's own when it does", () => {
    expect(processorWithRoute({}, undefined, '2m').processor.shutdown().drainTimeoutMs).toBe(120_000);
    expect(
      processorWithRoute({ timeouts: { request: '1h1m1s' } }, undefined, '2m').processor.shutdown().drainTimeoutMs,
    ).toBe(3_661_000);
  });

  it('adds up the tries only when the route timeout is disabled', () => {
    const { processor } = processorWithRoute(
      { timeouts: { request: '0s' } },
      { numRetries: 3, perRetry: { timeout: '30s', backOff: { baseInterval: '1s', maxInterval: '2s' } } },
    );
    expect(processor.shutdown().longestRequest).toEqual({ route: 'team/r', ms: 4 * 30_000 + 3 * 2_000 });
  });

  it('throws for a route whose requests have no bound', () => {
    expect(() => processorWithRoute({ timeouts: { request: '0s' } }).processor.shutdown()).toThrow(
      'team/Route: invalid requestTimeout "0s": route "team/r" has no request timeout, so no ' +
        'drain time can cover its requests',
    );
    expect(() => processorWithRoute({}, undefined, '0ms').processor.shutdown()).toThrow(
      'team/Route: invalid requestTimeout "0ms": route "team/r" has no request timeout',
    );
  });

  it('throws if the attached scope emits no HTTPRoute of that name', () => {
    const { app, model, processor } = processorWithRoute({});
    model.addRoute(routeFragment(new Construct(app.charts[0], 'Empty'), 'missing', 'team'));
    expect(() => processor.shutdown()).toThrow(
      'team/Empty: invalid route "team/missing": has no HTTPRoute beside it; the processor ' +
        'derives its drain time from the route timeouts',
    );
  });
});

describe('processor NetworkPolicy for each Envoy Gateway deploy mode', () => {
  const grpcFrom = (all: Manifest[], name = 'gw-processor') => {
    const policy = findOne(all, 'NetworkPolicy', name);
    expect(policy.spec.ingress[0].ports).toEqual([{ protocol: 'TCP', port: 9002 }]);
    return policy.spec.ingress[0].from;
  };

  function gateway(props: ConstructorParameters<typeof AIGateway>[2]) {
    const app = Testing.app();
    new AIGateway(new Chart(app, 'platform', { namespace: 'platform' }), 'Gateway', { name: 'gw', ...props });
    return synthAll(app);
  }

  it('admits the proxies Envoy Gateway runs for this Gateway in its namespace by default', () => {
    expect(grpcFrom(gateway({}))).toEqual([
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'envoy-gateway-system' } },
        podSelector: {
          matchLabels: {
            'gateway.envoyproxy.io/owning-gateway-name': 'gw',
            'gateway.envoyproxy.io/owning-gateway-namespace': 'platform',
          },
        },
      },
    ]);
  });

  it('admits merged proxies by their GatewayClass label (mergeGateways)', () => {
    const all = gateway({
      gatewayClass: GatewayClass.fromName('eg'),
      envoyGatewayNamespace: 'eg-system',
      processor: { proxyDeployMode: ProxyDeployMode.mergedGateways() },
    });
    expect(grpcFrom(all)).toEqual([
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'eg-system' } },
        podSelector: { matchLabels: { 'gateway.envoyproxy.io/owning-gatewayclass': 'eg' } },
      },
    ]);
    // Naming the same class again is fine.
    const named = gateway({
      gatewayClass: GatewayClass.fromName('eg'),
      processor: { proxyDeployMode: ProxyDeployMode.mergedGateways('eg') },
    });
    expect(grpcFrom(named)[0].podSelector).toEqual({
      matchLabels: { 'gateway.envoyproxy.io/owning-gatewayclass': 'eg' },
    });
  });

  it("admits the proxies in the Gateway's own namespace (GatewayNamespace deploy type)", () => {
    const expected = [
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'platform' } },
        podSelector: {
          matchLabels: {
            'gateway.envoyproxy.io/owning-gateway-name': 'gw',
            'gateway.envoyproxy.io/owning-gateway-namespace': 'platform',
          },
        },
      },
    ];
    expect(grpcFrom(gateway({ processor: { proxyDeployMode: ProxyDeployMode.gatewayNamespace() } }))).toEqual(expected);
    expect(
      grpcFrom(
        gateway({
          envoyGatewayNamespace: 'platform',
          processor: { proxyDeployMode: ProxyDeployMode.gatewayNamespace() },
        }),
      ),
    ).toEqual(expected);
  });

  it('throws for merged proxies on a GatewayClass this gateway emits (it has no EnvoyProxy merging gateways)', () => {
    expect(() => gateway({ processor: { proxyDeployMode: ProxyDeployMode.mergedGateways() } })).toThrow(
      'platform/Gateway: invalid processor.proxyDeployMode "mergedGateways": the GatewayClass ' +
        '"gw" emitted here has no EnvoyProxy with mergeGateways: true, so Envoy Gateway runs this ' +
        "gateway's own proxies; use GatewayClass.fromName() with a class whose parametersRef " +
        'EnvoyProxy merges gateways',
    );
  });

  it("throws for merged proxies of another class than the gateway's", () => {
    expect(() =>
      gateway({
        gatewayClass: GatewayClass.fromName('eg'),
        processor: { proxyDeployMode: ProxyDeployMode.mergedGateways('other') },
      }),
    ).toThrow(
      'platform/Gateway/Processor: invalid processor.proxyDeployMode ' +
        '"mergedGateways(\\"other\\")": the gateway\'s GatewayClass is "eg"; merged proxies carry ' +
        'the label of that class',
    );
  });

  it('throws for an Envoy Gateway namespace that the GatewayNamespace mode would ignore', () => {
    expect(() =>
      gateway({
        envoyGatewayNamespace: 'eg-system',
        processor: { proxyDeployMode: ProxyDeployMode.gatewayNamespace() },
      }),
    ).toThrow(
      'platform/Gateway: invalid envoyGatewayNamespace "eg-system": with ' +
        'ProxyDeployMode.gatewayNamespace() the proxies run in the gateway\'s namespace "platform"; ' +
        'leave envoyGatewayNamespace unset',
    );
  });

  it('lets a route on a Gateway not managed here name the merged class, and requires it', () => {
    const build = (mode: ProxyDeployMode) => {
      const app = Testing.app();
      const team = new Chart(app, 'team', { namespace: 'team' });
      const openai = ProviderBackend.openAI(team, 'OpenAI', {
        name: 'openai',
        credentials: Credentials.apiKey({ secretName: 'openai', key: 'k' }),
      });
      new AIRoute(team, 'Chat', {
        name: 'chat',
        gateway: GatewayReference.fromName('shared', 'infra'),
        rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: openai }] }],
        processor: { proxyDeployMode: mode },
      });
      return synthAll(app);
    };
    expect(grpcFrom(build(ProxyDeployMode.mergedGateways('shared-class')), 'chat-processor')[0].podSelector).toEqual({
      matchLabels: { 'gateway.envoyproxy.io/owning-gatewayclass': 'shared-class' },
    });
    expect(() => build(ProxyDeployMode.mergedGateways())).toThrow(
      'team/Chat/Processor: invalid processor.proxyDeployMode "mergedGateways": merged proxies ' +
        'are selected by their GatewayClass, and the class of Gateway "infra/shared" is unknown ' +
        "here; name it: ProxyDeployMode.mergedGateways('<gatewayclass>')",
    );
  });

  it('keeps the metrics rule beside the proxies rule', () => {
    const all = gateway({
      gatewayClass: GatewayClass.fromName('eg'),
      processor: { proxyDeployMode: ProxyDeployMode.mergedGateways(), metricsNamespace: 'monitoring' },
    });
    expect(findOne(all, 'NetworkPolicy').spec.ingress[1]).toEqual({
      from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
      ports: [{ protocol: 'TCP', port: 9090 }],
    });
    expect(findAll(all, 'NetworkPolicy')).toHaveLength(1);
  });
});
