/**
 * A request that failed over: its one span is routed to the first backend, told each fallback attempt, and ends with
 * the answering attempt's status and usage (the OpenTelemetry side is the built processor's, see spans.test.ts; the
 * SDK's exporter cannot load inside Jest).
 */
import type { RequestSpan, RequestTracer, SpanOutcome, SpanRoute } from '../../src/tracing';
import { duplexExchange } from '../support/duplex-envoy';
import { FakeEgress } from '../support/fake-egress';
import { openAIBackend, route, startTestProcessor, testConfig } from '../support/processor-harness';

class RecordingSpan implements RequestSpan {
  readonly calls: Array<[string, unknown]> = [];
  routed(route: SpanRoute): void {
    this.calls.push(['routed', route.backend]);
  }
  requestBody(): void {}
  responseStatus(status: number): void {
    this.calls.push(['responseStatus', status]);
  }
  responseBytes(): void {}
  fellBack(backend: string, attempt: number): void {
    this.calls.push(['fellBack', [backend, attempt]]);
  }
  private ended = false;
  /** Once, as RequestSpan promises (the session ends the span again when the stream closes). */
  end(outcome: SpanOutcome): void {
    if (this.ended) return;
    this.ended = true;
    this.calls.push(['end', { total: outcome.usage?.total, errorType: outcome.errorType, status: outcome.status }]);
  }
}

it('tells the request span each attempt and ends it with the answering attempt', async () => {
  const spans: RecordingSpan[] = [];
  const tracer: RequestTracer = {
    lostSpans: () => ({ dropped: 0, failed: 0 }),
    start: () => {
      const span = new RecordingSpan();
      spans.push(span);
      return span;
    },
    shutdown: () => Promise.resolve(),
  };
  const egress = new FakeEgress();
  egress.handlers.set('second', () => ({
    status: 503,
    headers: { 'content-type': 'application/json' },
    body: (async function* () {
      yield Buffer.from('{"error":{"message":"busy too"}}');
    })(),
  }));
  egress.handlers.set('third', () => ({
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: (async function* () {
      yield Buffer.from(
        JSON.stringify({
          id: 'c1',
          object: 'chat.completion',
          model: 'gpt-4o',
          choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 6, completion_tokens: 2, total_tokens: 8 },
        }),
      );
    })(),
  }));
  const config = testConfig({
    backends: [openAIBackend('first'), openAIBackend('second'), openAIBackend('third')],
    routes: [
      route(
        ['gpt-4o'],
        [
          { backend: 'first', weight: 1, priority: 0 },
          { backend: 'second', weight: 1, priority: 1 },
          { backend: 'third', weight: 1, priority: 2 },
        ],
      ),
    ],
  });
  config.routes[0].rules[0].fallback = {
    statuses: [503],
    connectionFailures: true,
    timeouts: true,
    maxAttempts: 3,
    attemptTimeoutMs: 1000,
  };
  const processor = await startTestProcessor(config, { egress });
  Object.assign(processor.app.processor, { tracer });
  try {
    const result = await duplexExchange(
      processor.client,
      { path: '/v1/chat/completions', body: JSON.stringify({ model: 'gpt-4o', messages: [] }) },
      () => ({ status: 503, chunks: ['busy'] }),
    );
    expect(result.status).toBe(200);
  } finally {
    await processor.close();
  }
  expect(spans).toHaveLength(1);
  expect(spans[0].calls).toEqual([
    ['routed', 'first'],
    ['fellBack', ['second', 2]],
    ['fellBack', ['third', 3]],
    ['responseStatus', 200],
    ['end', { total: 8, errorType: undefined, status: undefined }],
  ]);
});
