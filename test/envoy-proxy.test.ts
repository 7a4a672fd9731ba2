import {
  BACKEND_HEADER,
  CONSUMER_HEADER,
  METADATA_NAMESPACE,
  MODEL_HEADER,
  ROUTE_HEADER,
  TOKEN_METADATA_KEYS,
  parseProcessorConfig,
} from '@ai-gateway-constructs/processor-config';
import { Chart, Duration, Size, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import {
  AIGateway,
  AIRoute,
  EnvoyProxyReference,
  GatewayClass,
  ModelMatch,
  Money,
  ProxyDeployMode,
  ProxyMergeType,
  RateLimitRedis,
  RateLimitUnit,
  SpendLimit,
  TokenCost,
  TokenRateLimit,
  type AIGatewayProps,
} from '../lib';
import { translate } from '../lib/dataplane/translate';
import { accessLogFields } from '../lib/envoy-proxy';
import { gatewayFixture } from './support/fixtures';
import type { Manifest } from './support/manifests';
import { findAll, findOne, synthAll } from './support/synth';

function gateway(props: AIGatewayProps = {}) {
  const app = Testing.app();
  const chart = new Chart(app, 'platform', { namespace: 'platform' });
  new AIGateway(chart, 'Gateway', { name: 'gw', ...props });
  return { app, manifests: () => synthAll(app) };
}

const envoyProxies = (manifests: readonly Manifest[]) => findAll(manifests, 'EnvoyProxy') as any[];
const gatewaySpec = (manifests: readonly Manifest[]) => findOne(manifests, 'Gateway', 'gw').spec;
const accessLogJson = (proxy: any): Record<string, string> => proxy.spec.telemetry.accessLog.settings[0].format.json;

describe('AIGateway EnvoyProxy', () => {
  it('emits no EnvoyProxy and no parametersRef without proxy settings or observability', () => {
    const all = gateway({ processor: { metricsNamespace: 'monitoring' } }).manifests();
    expect(envoyProxies(all)).toEqual([]);
    expect(gatewaySpec(all).infrastructure).toBeUndefined();
  });

  it('sizes the proxy pods and merges over the GatewayClass EnvoyProxy by default', () => {
    const all = gateway({
      proxy: {
        replicas: 3,
        resources: {
          cpu: { request: kplus.Cpu.millis(500), limit: kplus.Cpu.units(2) },
          memory: { request: Size.mebibytes(256), limit: Size.gibibytes(1) },
        },
      },
      proxyDrainTimeout: Duration.seconds(600),
    }).manifests();
    const proxy = findOne(all, 'EnvoyProxy', 'gw-proxy');
    expect(proxy.apiVersion).toBe('gateway.envoyproxy.io/v1alpha1');
    expect(proxy.metadata.namespace).toBe('platform');
    expect(proxy.spec).toEqual({
      mergeType: 'StrategicMerge',
      provider: {
        type: 'Kubernetes',
        kubernetes: {
          envoyDeployment: {
            replicas: 3,
            container: {
              resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { cpu: '2', memory: '1024Mi' } },
            },
          },
        },
      },
      shutdown: { drainTimeout: '600s' },
    });
    expect(gatewaySpec(all).infrastructure).toEqual({
      parametersRef: { group: 'gateway.envoyproxy.io', kind: 'EnvoyProxy', name: 'gw-proxy' },
    });
  });

  it('autoscales the proxy pods with an HPA, and takes another merge type', () => {
    const proxy = findOne(
      gateway({
        proxy: {
          autoscaling: { minReplicas: 2, maxReplicas: 10, cpuUtilization: 60 },
          mergeType: ProxyMergeType.jsonMerge(),
        },
      }).manifests(),
      'EnvoyProxy',
    );
    expect(proxy.spec.mergeType).toBe('JSONMerge');
    expect(proxy.spec.provider.kubernetes).toEqual({
      envoyHpa: {
        minReplicas: 2,
        maxReplicas: 10,
        metrics: [
          { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } },
        ],
      },
    });
    const defaults = findOne(gateway({ proxy: { autoscaling: { maxReplicas: 4 } } }).manifests(), 'EnvoyProxy');
    expect(defaults.spec.provider.kubernetes).toEqual({ envoyHpa: { minReplicas: 1, maxReplicas: 4 } });
    const replaced = findOne(
      gateway({ proxy: { replicas: 2, mergeType: ProxyMergeType.replace() } }).manifests(),
      'EnvoyProxy',
    );
    expect(replaced.spec.mergeType).toBeUndefined();
  });

  it('logs JSON to stdout with the metadata keys the processor writes and the consumer, never credentials', () => {
    const fixture = gatewayFixture();
    RateLimitRedis.external(fixture.platform, 'Redis', { url: 'redis.example:6379' });
    const edge = new AIGateway(fixture.platform, 'Edge', {
      name: 'edge',
      processor: { metricsNamespace: 'monitoring' },
      observability: { prometheus: true },
    });
    new AIRoute(fixture.platform, 'Chat', {
      name: 'chat',
      gateway: edge,
      rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: fixture.openai }] }],
    });
    new SpendLimit(fixture.platform, 'Monthly', { target: edge, limit: Money.usd(500), per: RateLimitUnit.DAY });
    new TokenRateLimit(fixture.platform, 'Weighted', {
      target: edge,
      limit: 1000,
      per: RateLimitUnit.MINUTE,
      cost: TokenCost.expression('input_tokens + 2 * output_tokens'),
    });
    const all = synthAll(fixture.app);
    const proxy = findOne(all, 'EnvoyProxy', 'edge-proxy');
    const setting = proxy.spec.telemetry.accessLog.settings[0];
    expect(setting.sinks).toEqual([{ type: 'File', file: { path: '/dev/stdout' } }]);
    expect(setting.format.type).toBe('JSON');
    const json = accessLogJson(proxy);
    for (const field of ['%START_TIME%', '%RESPONSE_CODE%', '%RESPONSE_FLAGS%', '%RESPONSE_CODE_DETAILS%'])
      expect(Object.values(json)).toContain(field);
    for (const field of ['%DURATION%', '%UPSTREAM_CLUSTER%', '%UPSTREAM_HOST%', '%REQ(X-REQUEST-ID)%'])
      expect(Object.values(json)).toContain(field);
    expect(json.consumer).toBe(`%REQ(${CONSUMER_HEADER})%`);
    expect(json.model).toBe(`%REQ(${MODEL_HEADER})%`);
    // The backend header is removed by the backend's route rule before the log is written: the cluster names it.
    expect(json.backend).toBeUndefined();
    expect(Object.values(json)).not.toContain(`%REQ(${BACKEND_HEADER})%`);
    // Explicitly on, so a GatewayClass EnvoyProxy that turned the access log off does not win the merge.
    expect(proxy.spec.telemetry.accessLog.disable).toBe(false);

    // Every metadata key the log reads is one the processor writes: its five token counts and its config's costs.
    const configMap = findOne(all, 'ConfigMap', 'edge-processor-config') as any;
    const costs = parseProcessorConfig(JSON.parse(configMap.data['config.json'])).costs.map((c) => c.metadataKey);
    expect(costs.length).toBe(2);
    const written = [...Object.values(TOKEN_METADATA_KEYS), ...costs].sort();
    const read = Object.values(json)
      .flatMap((value) => [...value.matchAll(/%DYNAMIC_METADATA\(([^:)]+):([^)]+)\)%/g)])
      .map((m) => {
        expect(m[1]).toBe(METADATA_NAMESPACE);
        return m[2];
      })
      .sort();
    expect(read).toEqual(written);

    // No header that carries credentials, and the path without its query (API keys travel there too).
    const text = JSON.stringify(json).toLowerCase();
    for (const secret of ['authorization', 'x-api-key', 'cookie', 'x-goog-api-key', 'api-key'])
      expect(text).not.toContain(secret);
    expect(json.path).toBe('%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%');
    expect(text).not.toMatch(/%req\(:path\)%/);
    // The PodMonitor scrapes the proxies' Prometheus endpoint: kept on over the GatewayClass's settings.
    expect(proxy.spec.telemetry.metrics).toEqual({ prometheus: { disable: false } });
    expect(findOne(all, 'PodMonitor', 'edge-envoy').spec.podMetricsEndpoints[0].path).toBe('/stats/prometheus');

    // The local data plane still loads the gateway with its EnvoyProxy.
    const model = translate(all);
    expect(JSON.stringify(model)).toContain('edge');
  });

  it('traces Envoy to the collector of observability.otlpEndpoint over OTLP/gRPC, with the sampling ratio', () => {
    const service = findOne(
      gateway({
        observability: { otlpEndpoint: 'http://otel-collector.observability.svc:4318', traceSamplingRatio: 0.25 },
      }).manifests(),
      'EnvoyProxy',
    );
    expect(service.spec.telemetry.tracing).toEqual({
      provider: {
        type: 'OpenTelemetry',
        backendRefs: [{ group: '', kind: 'Service', name: 'otel-collector', namespace: 'observability', port: 4317 }],
      },
      samplingFraction: { numerator: 250000, denominator: 1000000 },
    });
    // The access log is on with a collector as well.
    expect(accessLogJson(service).response_flags).toBe('%RESPONSE_FLAGS%');
    const host = findOne(
      gateway({
        observability: { otlpEndpoint: 'http://collector.example:4318/v1/traces' },
        proxy: { otlpGrpcPort: 14317, accessLog: false },
      }).manifests(),
      'EnvoyProxy',
    );
    expect(host.spec.telemetry).toEqual({
      tracing: { provider: { type: 'OpenTelemetry', host: 'collector.example', port: 14317 } },
    });
    // An https collector: the processor traces, Envoy (plaintext gRPC only) does not unless asked.
    const tls = findOne(
      gateway({ observability: { otlpEndpoint: 'https://otel.example:4318' } }).manifests(),
      'EnvoyProxy',
    );
    expect(tls.spec.telemetry.tracing).toBeUndefined();
    expect(() =>
      gateway({ observability: { otlpEndpoint: 'https://otel.example:4318' }, proxy: { tracing: true } }),
    ).toThrow(
      'platform/Gateway: invalid proxy.tracing true: Envoy exports its spans over plaintext OTLP/gRPC to the host of ' +
        'observability.otlpEndpoint, which is an https URL; reference an EnvoyProxy of your own (envoyProxy) for a ' +
        'TLS collector',
    );
    expect(() => gateway({ proxy: { tracing: true } })).toThrow(
      'platform/Gateway: invalid proxy.tracing true: Envoy sends its spans to observability.otlpEndpoint; set it',
    );
  });

  it('references an EnvoyProxy of the user instead, and refuses proxy settings it would not reach', () => {
    const all = gateway({
      envoyProxy: EnvoyProxyReference.fromName('platform-proxy'),
      observability: { otlpEndpoint: 'http://otel.observability.svc:4318' },
    }).manifests();
    expect(envoyProxies(all)).toEqual([]);
    expect(gatewaySpec(all).infrastructure).toEqual({
      parametersRef: { group: 'gateway.envoyproxy.io', kind: 'EnvoyProxy', name: 'platform-proxy' },
    });
    expect(() =>
      gateway({ envoyProxy: EnvoyProxyReference.fromName('platform-proxy'), proxy: { replicas: 2 } }),
    ).toThrow(
      'platform/Gateway: invalid proxy.replicas 2: the gateway uses the EnvoyProxy "platform-proxy" of envoyProxy, ' +
        'which this setting would not reach; set it there, or drop envoyProxy',
    );
    expect(() => gateway({ envoyProxy: EnvoyProxyReference.fromName('Not_A_Name') })).toThrow(
      /platform\/Gateway: invalid envoyProxy "Not_A_Name"/,
    );
  });

  it('refuses proxy settings under merged gateways, where Envoy Gateway ignores a Gateway EnvoyProxy', () => {
    const merged = (props: AIGatewayProps) =>
      gateway({
        gatewayClass: GatewayClass.fromName('shared'),
        processor: { proxyDeployMode: ProxyDeployMode.mergedGateways() },
        ...props,
      });
    expect(() => merged({ proxy: { replicas: 2 } })).toThrow(
      "platform/Gateway: invalid proxy.replicas 2: Envoy Gateway ignores a Gateway's EnvoyProxy when the " +
        'EnvoyProxy of its GatewayClass "shared" merges gateways (processor.proxyDeployMode is mergedGateways); ' +
        "set it on the GatewayClass's EnvoyProxy instead",
    );
    expect(() => merged({ envoyProxy: EnvoyProxyReference.fromName('mine') })).toThrow(
      /platform\/Gateway: invalid envoyProxy \{"envoyProxyName":"mine"\}: Envoy Gateway ignores/,
    );
    expect(() => merged({ proxy: { accessLog: true } })).toThrow(/invalid proxy.accessLog true: Envoy Gateway ignores/);
    // What observability would turn on is left to the GatewayClass's EnvoyProxy.
    const all = merged({ observability: { otlpEndpoint: 'http://otel.observability.svc:4318' } }).manifests();
    expect(envoyProxies(all)).toEqual([]);
    expect(gatewaySpec(all).infrastructure).toBeUndefined();
    expect(merged({ proxy: { accessLog: false } }).manifests()).toBeDefined();
  });

  it("logs a cost whose key is one of the log's own fields under cost_<key>, not in its place", () => {
    const fields = accessLogFields(['route', 'weighted']);
    expect(fields.route).toBe(`%REQ(${ROUTE_HEADER})%`);
    expect(fields.cost_route).toBe('%DYNAMIC_METADATA(io.envoy.ai_gateway:route)%');
    expect(fields.weighted).toBe('%DYNAMIC_METADATA(io.envoy.ai_gateway:weighted)%');
  });

  it("leaves a platform GatewayClass's EnvoyProxy alone unless proxy settings ask for one", () => {
    const platformClass = (props: AIGatewayProps) =>
      gateway({ gatewayClass: GatewayClass.fromName('shared'), ...props });
    const observed = platformClass({ observability: { otlpEndpoint: 'http://otel.observability.svc:4318' } });
    const quiet = observed.manifests();
    expect(envoyProxies(quiet)).toEqual([]);
    expect(gatewaySpec(quiet).infrastructure).toBeUndefined();
    const asked = platformClass({
      observability: { otlpEndpoint: 'http://otel.observability.svc:4318' },
      proxy: { accessLog: true },
    }).manifests();
    const [proxy] = envoyProxies(asked);
    expect(proxy.spec.telemetry.accessLog.settings).toHaveLength(1);
    // Tracing stays the class's unless asked for too.
    expect(proxy.spec.telemetry.tracing).toBeUndefined();
  });

  it('refuses replica settings that cannot work, naming the prop', () => {
    expect(() => gateway({ proxy: { replicas: 2, autoscaling: { maxReplicas: 4 } } })).toThrow(
      'platform/Gateway: invalid proxy.replicas 2: the HorizontalPodAutoscaler of proxy.autoscaling sets the number ' +
        'of proxy pods; set one of the two',
    );
    expect(() => gateway({ proxy: { replicas: 0 } })).toThrow(
      'platform/Gateway: invalid proxy.replicas 0: must be a positive integer',
    );
    expect(() => gateway({ proxy: { autoscaling: { minReplicas: 5, maxReplicas: 4 } } })).toThrow(
      'platform/Gateway: invalid proxy.autoscaling.minReplicas 5: must not exceed proxy.autoscaling.maxReplicas (4)',
    );
    expect(() => gateway({ proxy: { autoscaling: { maxReplicas: 2.5 } } })).toThrow(
      'platform/Gateway: invalid proxy.autoscaling.maxReplicas 2.5: must be a positive integer',
    );
    expect(() =>
      gateway({ observability: { otlpEndpoint: 'http://otel:4318' }, proxy: { otlpGrpcPort: 70000 } }),
    ).toThrow('platform/Gateway: invalid proxy.otlpGrpcPort 70000: must be an integer between 1 and 65535');
    expect(() =>
      gateway({ observability: { otlpEndpoint: 'https://otel.example:4318' }, proxy: { otlpGrpcPort: 4317 } }),
    ).toThrow(
      "platform/Gateway: invalid proxy.otlpGrpcPort 4317: is the port of Envoy's tracing, which is off: it needs an " +
        'http observability.otlpEndpoint, and proxy.tracing not false',
    );
  });
});
