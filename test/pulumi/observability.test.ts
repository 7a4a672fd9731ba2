import { AIGateway, AIGatewayApp } from '../../lib/pulumi';
import { identityOf, kubeObjects, objectNamed, useMocks, waitForRPCs } from './harness';

describe('Pulumi AIGateway observability', () => {
  it('registers the same PodMonitors, PrometheusRule and dashboard ConfigMap as the cdk8s construct', async () => {
    const mocks = await useMocks();
    const app = new AIGatewayApp('ai', (app) => {
      new AIGateway(
        'edge',
        {
          namespace: 'ai',
          processor: { metricsNamespace: 'monitoring' },
          observability: { prometheus: true, grafanaDashboard: true, monitorLabels: { release: 'kps' } },
        },
        { parent: app },
      );
    });
    await app.done;
    await waitForRPCs();
    const objects = kubeObjects(mocks.registrations);
    const monitoring = objects.map(identityOf).filter((id) => /^(PodMonitor|PrometheusRule) /.test(id));
    expect(monitoring.sort()).toEqual([
      'PodMonitor ai/edge-envoy',
      'PodMonitor ai/edge-processor',
      'PrometheusRule ai/edge-ai-gateway',
    ]);
    const rule = objectNamed(objects, 'PrometheusRule', 'ai/edge-ai-gateway');
    expect(rule.type).toBe('kubernetes:monitoring.coreos.com/v1:PrometheusRule');
    expect((rule.inputs.metadata as { labels?: unknown }).labels).toEqual({ release: 'kps' });
    const dashboard = objectNamed(objects, 'ConfigMap', 'ai/edge-dashboard');
    expect((dashboard.inputs.metadata as { labels?: unknown }).labels).toEqual({ grafana_dashboard: '1' });
    const json = JSON.parse((dashboard.inputs.data as Record<string, string>)['edge-dashboard.json']);
    expect(json.title).toBe('AI gateway ai/edge');
  });
});
