import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { EnvoyProxyReference, ProxyMergeType } from '../../lib';
import { AIGateway, AIGatewayApp } from '../../lib/pulumi';
import { kubeObjects, objectNamed, useMocks, waitForRPCs } from './harness';

describe('Pulumi AIGateway EnvoyProxy', () => {
  it('registers the same EnvoyProxy and Gateway parametersRef as the cdk8s construct', async () => {
    const mocks = await useMocks();
    const app = new AIGatewayApp('ai', (app) => {
      new AIGateway(
        'edge',
        {
          namespace: 'ai',
          proxy: {
            autoscaling: { maxReplicas: 6 },
            resources: { memory: { request: Size.mebibytes(256) }, cpu: { request: kplus.Cpu.millis(250) } },
            mergeType: ProxyMergeType.jsonMerge(),
          },
          observability: { otlpEndpoint: 'http://otel.observability.svc:4318' },
        },
        { parent: app },
      );
      new AIGateway(
        'own',
        { namespace: 'ai', envoyProxy: EnvoyProxyReference.fromName('platform-proxy') },
        { parent: app },
      );
    });
    await app.done;
    await waitForRPCs();
    const objects = kubeObjects(mocks.registrations);
    const proxy = objectNamed(objects, 'EnvoyProxy', 'ai/edge-proxy');
    expect(proxy.type).toBe('kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy');
    const spec = proxy.inputs.spec as any;
    expect(spec.mergeType).toBe('JSONMerge');
    expect(spec.provider.kubernetes).toEqual({
      envoyDeployment: { container: { resources: { requests: { cpu: '250m', memory: '256Mi' } } } },
      envoyHpa: { minReplicas: 1, maxReplicas: 6 },
    });
    expect(spec.telemetry.tracing.provider.backendRefs).toEqual([
      { group: '', kind: 'Service', name: 'otel', namespace: 'observability', port: 4317 },
    ]);
    expect(spec.telemetry.accessLog.settings[0].sinks).toEqual([{ type: 'File', file: { path: '/dev/stdout' } }]);
    const edge = objectNamed(objects, 'Gateway', 'ai/edge');
    expect((edge.inputs.spec as any).infrastructure).toEqual({
      parametersRef: { group: 'gateway.envoyproxy.io', kind: 'EnvoyProxy', name: 'edge-proxy' },
    });
    const own = objectNamed(objects, 'Gateway', 'ai/own');
    expect((own.inputs.spec as any).infrastructure.parametersRef.name).toBe('platform-proxy');
    expect(objects.filter((o) => o.type.endsWith(':EnvoyProxy')).length).toBe(1);
  });
});
