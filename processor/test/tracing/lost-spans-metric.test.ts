/** With tracing on, the spans the tracer lost are a counter read from it at each scrape; without it, no series. */
import { Metrics } from '../../src/metrics';

describe('ai_gateway_trace_spans_lost_total', () => {
  it("reads the tracer's counts at each scrape, by reason", async () => {
    const metrics = new Metrics();
    const lost = { dropped: 0, failed: 0 };
    metrics.reportLostSpans(() => lost);
    const series = async () =>
      (await metrics.registry.getSingleMetricAsString('ai_gateway_trace_spans_lost_total'))
        .split('\n')
        .filter((line) => line.startsWith('ai_gateway_trace_spans_lost_total{'));
    expect(await series()).toEqual([
      'ai_gateway_trace_spans_lost_total{reason="dropped"} 0',
      'ai_gateway_trace_spans_lost_total{reason="export_failed"} 0',
    ]);
    lost.dropped = 3;
    lost.failed = 512;
    expect(await series()).toEqual([
      'ai_gateway_trace_spans_lost_total{reason="dropped"} 3',
      'ai_gateway_trace_spans_lost_total{reason="export_failed"} 512',
    ]);
  });

  it('does not exist without tracing', async () => {
    expect(await new Metrics().registry.metrics()).not.toContain('ai_gateway_trace_spans_lost_total');
  });
});
