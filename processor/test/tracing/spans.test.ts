/**
 * Request tracing end to end: the built processor (dist/, as deployed) started with `--otlp-endpoint` exports its
 * spans over OTLP/HTTP to a local receiver; each span carries the GenAI attributes and continues the trace of the
 * `traceparent` Envoy forwarded. Spans reach the receiver when SIGTERM drains the processor (shutdown flushes them).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EnvoyClient, type UpstreamResponse } from '../support/envoy-client';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver';
import { openAIBackend, route, testConfig } from '../support/processor-harness';
import { copyDist, freePort, run, waitFor, type Running } from '../process/built';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_ID}-01`;
const SPAN_KIND_CLIENT = 3;
const STATUS_ERROR = 2;

const config = testConfig({
  backends: [openAIBackend('openai')],
  routes: [
    route(['gpt-4o'], [{ backend: 'openai', weight: 1, priority: 0 }], {
      rules: [
        {
          models: [{ type: 'Prefix', value: 'gpt-4o' }],
          backends: [{ backend: 'openai', weight: 1, priority: 0 }],
        },
      ],
    }),
  ],
});

const chatAnswer: UpstreamResponse = {
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1,
    model: 'gpt-4o-2024-08-06',
    choices: [{ index: 0, message: { role: 'assistant', content: 'hi "model": "not this"' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 },
  }),
};

function sse(events: unknown[]): string[] {
  return events.map((event) => `data: ${JSON.stringify(event)}\n\n`).concat('data: [DONE]\n\n');
}

const chunk = (delta: object, finish: string | null = null): object => ({
  id: 'chatcmpl-2',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'gpt-4o-mini-2024-07-18',
  choices: [{ index: 0, delta, finish_reason: finish }],
});

const streamAnswer: UpstreamResponse = {
  status: 200,
  headers: { 'content-type': 'text/event-stream' },
  body: sse([
    chunk({ role: 'assistant', content: '' }),
    chunk({ content: 'Hello' }),
    chunk({}, 'length'),
    {
      id: 'chatcmpl-2',
      object: 'chat.completion.chunk',
      created: 1,
      model: 'gpt-4o-mini-2024-07-18',
      choices: [],
      usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 },
    },
  ]),
};

describe('request tracing', () => {
  let dir: string;
  let configFile: string;
  let receiver: OtlpReceiver;
  let processor: (Running & { client: EnvoyClient; listen: string }) | undefined;

  beforeAll(() => {
    dir = copyDist('aigw-tracing-');
    configFile = path.join(dir, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify(config));
  }, 60_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  beforeEach(async () => {
    receiver = await startOtlpReceiver();
  });
  afterEach(async () => {
    processor?.client.close();
    processor = undefined;
    await receiver.close();
  });

  async function start(extra: string[] = []): Promise<Running & { client: EnvoyClient; listen: string }> {
    const listen = `127.0.0.1:${await freePort()}`;
    const running = run(dir, [
      '--config',
      configFile,
      '--secrets-dir',
      dir,
      '--listen',
      listen,
      '--admin',
      `127.0.0.1:${await freePort()}`,
      '--otlp-endpoint',
      receiver.url,
      '--otlp-service-name',
      'gw-test',
      ...extra,
    ]);
    await waitFor(() => running.stdout.length > 0, `the ready line (stderr: ${running.stderr()})`);
    processor = { ...running, client: new EnvoyClient(listen), listen };
    return processor;
  }

  /** Drains the processor (SIGTERM: its shutdown flushes the spans) and returns what the receiver got. */
  async function spansAfterDrain(count: number): Promise<ReceivedSpan[]> {
    const p = processor!;
    p.client.close();
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    return receiver.waitForSpans(count);
  }

  const ask = (
    p: { client: EnvoyClient },
    body: object,
    upstream: UpstreamResponse,
    headers: Record<string, string> = {},
  ) => p.client.exchange({ path: '/v1/chat/completions', body: JSON.stringify(body), headers }, () => upstream);

  it('exports a GenAI span for a buffered chat answer, child of the traceparent Envoy forwarded', async () => {
    const p = await start();
    const result = await ask(
      p,
      { model: 'gpt-4o', messages: [{ role: 'user', content: 'secret prompt' }] },
      chatAnswer,
      {
        traceparent: TRACEPARENT,
        tracestate: 'vendor=abc',
      },
    );
    expect(result.status).toBe(200);
    const [span] = await spansAfterDrain(1);
    expect(receiver.requests[0]).toEqual({ path: '/v1/traces', contentType: 'application/x-protobuf' });
    expect(span.traceId).toBe(TRACE_ID);
    expect(span.parentSpanId).toBe(PARENT_ID);
    expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(span.spanId).not.toBe(PARENT_ID);
    expect(span.name).toBe('chat gpt-4o');
    expect(span.kind).toBe(SPAN_KIND_CLIENT);
    expect(span.resource['service.name']).toBe('gw-test');
    expect(span.attributes).toEqual({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o',
      'gen_ai.response.model': 'gpt-4o-2024-08-06',
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.usage.input_tokens': 12,
      'gen_ai.usage.output_tokens': 5,
      'ai_gateway.route': 'default/chat',
      'ai_gateway.backend': 'openai',
      'ai_gateway.model_rule': 'gpt-4o*',
      'http.response.status_code': 200,
    });
    expect(span.status.code ?? 0).not.toBe(STATUS_ERROR);
    expect(BigInt(span.endTimeUnixNano)).toBeGreaterThan(BigInt(span.startTimeUnixNano));
    // Content is never recorded unless asked for.
    expect(JSON.stringify(span)).not.toContain('secret prompt');
  });

  it("continues Envoy's trace context from the stream's gRPC metadata before the request's header", async () => {
    const p = await start();
    const envoySpan = 'b7ad6b7169203331';
    // Envoy with tracing on: its span for the ext_proc call is in the stream metadata; the client's header is older.
    const envoy = new EnvoyClient(p.listen, {
      metadata: { traceparent: `00-${TRACE_ID}-${envoySpan}-01`, tracestate: 'envoy=1' },
    });
    try {
      await ask({ client: envoy }, { model: 'gpt-4o', messages: [] }, chatAnswer, {
        traceparent: `00-0af7651916cd43dd8448eb211c80319c-${PARENT_ID}-01`,
      });
    } finally {
      envoy.close();
    }
    const [span] = await spansAfterDrain(1);
    expect(span.traceId).toBe(TRACE_ID);
    expect(span.parentSpanId).toBe(envoySpan);
  });

  it('ends a streamed answer with its usage, response model and finish reason', async () => {
    const p = await start();
    const result = await ask(p, { model: 'gpt-4o-mini', stream: true, messages: [] }, streamAnswer, {
      traceparent: TRACEPARENT,
    });
    expect(result.streamed).toBe(true);
    const [span] = await spansAfterDrain(1);
    expect(span.parentSpanId).toBe(PARENT_ID);
    expect(span.traceId).toBe(TRACE_ID);
    expect(span.name).toBe('chat gpt-4o-mini');
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.request.stream': true,
      'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
      'gen_ai.response.finish_reasons': ['length'],
      'gen_ai.usage.input_tokens': 9,
      'gen_ai.usage.output_tokens': 2,
      'ai_gateway.model_rule': 'gpt-4o*',
    });
  });

  it('starts a new trace without traceparent; local replies and backend errors get an error status', async () => {
    const p = await start();
    expect((await ask(p, { model: 'llama-3', messages: [] }, chatAnswer)).status).toBe(404);
    const failing: UpstreamResponse = {
      status: 500,
      headers: { 'content-type': 'application/json' },
      body: '{"error":{"message":"boom"}}',
    };
    expect((await ask(p, { model: 'gpt-4o', messages: [] }, failing)).status).toBe(500);
    const spans = await spansAfterDrain(2);
    const local = spans.find((s) => s.attributes['http.response.status_code'] === 404)!;
    expect(local.parentSpanId).toBeUndefined();
    expect(local.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(local.traceId).not.toBe(TRACE_ID);
    expect(local.status.code).toBe(STATUS_ERROR);
    expect(local.attributes['error.type']).toBe('model_not_found');
    // Never routed: no GenAI request attributes from client input.
    expect(local.attributes['gen_ai.request.model']).toBeUndefined();
    const backend = spans.find((s) => s.attributes['http.response.status_code'] === 500)!;
    expect(backend.status.code).toBe(STATUS_ERROR);
    expect(backend.attributes['error.type']).toBe('500');
    expect(backend.attributes['ai_gateway.backend']).toBe('openai');
  });

  it('records prompt and completion only when asked, cut at the limit', async () => {
    const p = await start(['--trace-content-bytes', '24']);
    const body = { model: 'gpt-4o', messages: [{ role: 'user', content: 'a prompt longer than the limit' }] };
    await ask(p, body, chatAnswer);
    const [span] = await spansAfterDrain(1);
    expect(span.attributes['ai_gateway.request.body']).toBe(JSON.stringify(body).slice(0, 24));
    expect(span.attributes['ai_gateway.request.body_truncated']).toBe(true);
    expect(span.attributes['ai_gateway.response.body']).toBe(String(chatAnswer.body).slice(0, 24));
    expect(span.attributes['ai_gateway.response.body_truncated']).toBe(true);
  });

  it('honours an unsampled traceparent (nothing exported for that trace)', async () => {
    const p = await start();
    await ask(p, { model: 'gpt-4o', messages: [] }, chatAnswer, { traceparent: `00-${TRACE_ID}-${PARENT_ID}-00` });
    await ask(p, { model: 'gpt-4o', messages: [] }, chatAnswer, { traceparent: TRACEPARENT });
    const spans = await spansAfterDrain(1);
    // Give a wrongly exported unsampled span the time to arrive.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(spans).toHaveLength(1);
    expect(spans[0].parentSpanId).toBe(PARENT_ID);
  });
});
