/** Failover between priorities, fed by the response statuses the processor sees. */
import { openAIBackend, route, startTestProcessor, testConfig, type TestProcessor } from '../support/processor-harness';

describe('failover through the processor', () => {
  let processor: TestProcessor;
  beforeAll(async () => {
    processor = await startTestProcessor(
      testConfig({
        backends: [openAIBackend('primary'), openAIBackend('secondary')],
        routes: [
          route(
            ['gpt-4o'],
            [
              { backend: 'primary', weight: 1, priority: 0 },
              { backend: 'secondary', weight: 1, priority: 1 },
            ],
          ),
        ],
        circuitBreaker: { failureThreshold: 2, openDurationMs: 200 },
      }),
    );
  });
  afterAll(() => processor.close());

  async function send(status: number): Promise<string> {
    let backend = '';
    await processor.client.exchange({ path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' }, (request) => {
      backend = request.headers['x-ai-gateway-backend']!;
      return { status, headers: { 'content-type': 'application/json' }, body: '{}' };
    });
    return backend;
  }

  async function breakerGauge(): Promise<string> {
    const metric = processor.app.metrics.registry.getSingleMetric('ai_gateway_backend_circuit_open')!;
    const { values } = await metric.get();
    return values.map((v) => `${String(v.labels.gen_ai_provider_name)}=${v.value}`).join(' ');
  }

  it('moves to the next priority after repeated 5xx/429 and probes the first one again later', async () => {
    expect(await breakerGauge()).toBe('primary=0 secondary=0');
    expect(await send(500)).toBe('primary');
    expect(await send(429)).toBe('primary');
    expect(await breakerGauge()).toBe('primary=1 secondary=0');
    expect(await send(200)).toBe('secondary');
    expect(await send(200)).toBe('secondary');
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await send(503)).toBe('primary'); // half-open probe fails: open again
    expect(await send(200)).toBe('secondary');
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await send(200)).toBe('primary'); // probe succeeds: closed
    expect(await breakerGauge()).toBe('primary=0 secondary=0');
    expect(await send(400)).toBe('primary'); // client errors do not count
    expect(await send(400)).toBe('primary');
    expect(await send(200)).toBe('primary');
  });
});
