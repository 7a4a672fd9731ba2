import { Chart, Testing } from 'cdk8s';
import {
  AIGateway,
  AIRoute,
  AllowedRoutes,
  Credentials,
  GatewayReference,
  ModelMatch,
  ProviderBackend,
  type AIGatewayProps,
  type AIRouteProps,
} from '../lib';
import { DEFAULT_STREAMS_PER_REPLICA } from '../lib/processor';
import { findOne, routePolicy, synthAll } from './support/synth';

/** An AIGateway with the given processor settings and one AIRoute on it (extra route props allowed). */
function gatewayWithRoute(processor: AIGatewayProps['processor'], route: Partial<AIRouteProps> = {}) {
  const app = Testing.app();
  const chart = new Chart(app, 'platform', { namespace: 'platform' });
  const gateway = new AIGateway(chart, 'Gateway', {
    name: 'gw',
    allowedRoutes: AllowedRoutes.sameNamespace(),
    processor,
  });
  const openai = ProviderBackend.openAI(chart, 'OpenAI', {
    name: 'openai',
    credentials: Credentials.apiKey({ secretName: 'openai', key: 'api-key' }),
  });
  new AIRoute(chart, 'Route', {
    name: 'chat',
    gateway,
    rules: [{ models: [ModelMatch.prefix('gpt-')], backends: [{ backend: openai }] }],
    ...route,
  });
  return { app, gateway };
}

const processorBreaker = (all: ReturnType<typeof synthAll>) =>
  findOne(all, 'EnvoyExtensionPolicy').spec.extProc[0].backendSettings.circuitBreaker;
const backendBreaker = (all: ReturnType<typeof synthAll>, namespace = 'platform') =>
  routePolicy(all, 'BackendTrafficPolicy', `${namespace}/chat`).spec.circuitBreaker;

describe("Envoy's concurrency limits", () => {
  it('cap the requests each proxy sends the processor at replicas × streamsPerReplica', () => {
    const { app, gateway } = gatewayWithRoute({ replicas: 3, streamsPerReplica: 4_000 });
    const all = synthAll(app);
    expect(gateway.processor.maxParallelRequestsPerProxy).toBe(12_000);
    expect(processorBreaker(all)).toEqual({ maxParallelRequests: 12_000, maxPendingRequests: 12_000 });
  });

  it('default to 10,000 streams per processor replica', () => {
    const { app, gateway } = gatewayWithRoute({ replicas: 5 });
    expect(DEFAULT_STREAMS_PER_REPLICA).toBe(10_000);
    expect(gateway.processor.maxParallelRequestsPerProxy).toBe(50_000);
    expect(processorBreaker(synthAll(app)).maxParallelRequests).toBe(50_000);
  });

  it("give every backend cluster of a route the processor's limit unless the route sets its own", () => {
    const derived = synthAll(gatewayWithRoute({ replicas: 3, streamsPerReplica: 4_000 }).app);
    expect(backendBreaker(derived)).toEqual({
      maxConnections: 12_000,
      maxPendingRequests: 12_000,
      maxParallelRequests: 12_000,
    });
    // The default comes from the processor's policy of the namespace; a limit of its own, from the route's policy.
    expect(routePolicy(derived, 'BackendTrafficPolicy', 'platform/chat').metadata.name).toBe('gw-processor');
    const own = synthAll(gatewayWithRoute({}, { maxParallelRequestsPerBackend: 64 }).app);
    expect(backendBreaker(own)).toEqual({ maxConnections: 64, maxPendingRequests: 64, maxParallelRequests: 64 });
    expect(routePolicy(own, 'BackendTrafficPolicy', 'platform/chat').metadata.name).toBe('chat');
    // The processor's own limit does not follow the route's.
    expect(processorBreaker(own).maxParallelRequests).toBe(20_000);
  });

  it("derive a route's own processor limit from the route's processor settings", () => {
    const app = Testing.app();
    const team = new Chart(app, 'team', { namespace: 'team' });
    const openai = ProviderBackend.openAI(team, 'OpenAI', {
      name: 'openai',
      credentials: Credentials.apiKey({ secretName: 'openai', key: 'k' }),
    });
    const route = new AIRoute(team, 'Route', {
      name: 'chat',
      gateway: GatewayReference.fromName('shared', 'infra'),
      processor: { replicas: 4, streamsPerReplica: 2_500 },
      rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
    });
    const all = synthAll(app);
    expect(route.processor.maxParallelRequestsPerProxy).toBe(10_000);
    expect(processorBreaker(all).maxParallelRequests).toBe(10_000);
    expect(backendBreaker(all, 'team').maxParallelRequests).toBe(10_000);
    // On a Gateway this app does not manage, the route policy merges into whatever the Gateway carries.
    expect(findOne(all, 'BackendTrafficPolicy', 'chat').spec.mergeType).toBe('StrategicMerge');
  });

  describe('throw', () => {
    it.each([0, -1, 1.5, Number.NaN])('for streamsPerReplica %p', (streams) => {
      expect(() => gatewayWithRoute({ streamsPerReplica: streams })).toThrow(
        `platform/Gateway/Processor: invalid processor.streamsPerReplica ${streams}: must be a positive integer`,
      );
    });

    it("when replicas × streamsPerReplica exceeds the CRD's uint32 field", () => {
      expect(() => gatewayWithRoute({ replicas: 2, streamsPerReplica: 2_147_483_648 })).toThrow(
        'platform/Gateway/Processor: invalid processor.streamsPerReplica 2147483648: replicas × streamsPerReplica ' +
          "(2 × 2147483648) is Envoy's request limit for the processor, and the EnvoyExtensionPolicy field " +
          'spec.extProc[].backendSettings.circuitBreaker.maxParallelRequests holds at most 4294967295',
      );
    });

    it.each([0, -5, 2.5, 4_294_967_296])('for maxParallelRequestsPerBackend %p', (limit) => {
      expect(() => gatewayWithRoute({}, { maxParallelRequestsPerBackend: limit })).toThrow(
        `platform/Route: invalid maxParallelRequestsPerBackend ${limit}: must be an integer from 1 to 4294967295 ` +
          '(the BackendTrafficPolicy field spec.circuitBreaker.maxParallelRequests); 0 would refuse every request',
      );
    });
  });
});
