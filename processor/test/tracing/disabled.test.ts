/**
 * Tracing off (the default): the OpenTelemetry SDK is never loaded, the processor holds no tracer, and a collector
 * listening where one could be configured gets nothing.
 */
import { startOtlpReceiver } from '../support/otlp-receiver';
import { startTestProcessor, testConfig } from '../support/processor-harness';

// Any load of the SDK side of tracing fails the test.
jest.mock('../../src/tracing/otel', () => {
  throw new Error('the OpenTelemetry SDK was loaded with tracing off');
});

it('sends nothing and does no tracer work when tracing is off', async () => {
  const receiver = await startOtlpReceiver();
  const processor = await startTestProcessor(testConfig());
  try {
    expect(processor.app.tracer).toBeUndefined();
    expect(processor.app.processor.tracer).toBeUndefined();
    const result = await processor.client.exchange(
      {
        path: '/v1/chat/completions',
        body: JSON.stringify({ model: 'gpt-4o', messages: [] }),
        headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
      },
      () => ({
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: '{"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}',
      }),
    );
    expect(result.status).toBe(200);
  } finally {
    await processor.close();
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(receiver.requests).toEqual([]);
  await receiver.close();
});
