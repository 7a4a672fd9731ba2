/**
 * `npx tsx bench/tracing-span.bench.ts` (not part of `npm run bench`): the span path of one request alone, in this
 * process — start, route, response facts, end, batch, serialize, export over OTLP/HTTP to a sink in a child process
 * — as CPU per span, for profiling tracing (`node --import tsx --cpu-prof bench/tracing-span.bench.ts`).
 * BENCH_SPANS=<n> spans (default 200,000); BENCH_TRACEPARENT=1 continues a remote parent instead of starting traces;
 * BENCH_SSE=1 reads a 50-chunk stream instead of one JSON answer.
 *
 * Then the OTLP encoding alone, ours (src/tracing/otlp-encode.ts) against the maintained serializer the OTLP
 * transport ships with, on the same batches of 512 spans like the processor's (a small request's attributes), in
 * alternating rounds: the median CPU per span of each (BENCH_SERIALIZER_ROUNDS, default 15, of
 * BENCH_SERIALIZER_BATCHES batches each, default 200). BENCH_SERIALIZER_ONLY=1 runs only this part.
 *
 * Then the span itself, ours (`RequestSpans` of src/tracing/otel.ts) against the SDK's tracer and span, each
 * started, given a small request's attributes and ended into the same encoding span processor (exports discarded),
 * in alternating rounds (BENCH_RECORD_ROUNDS, default 15, of BENCH_RECORD_SPANS spans, default 20,000): the median
 * CPU per span of each. BENCH_RECORD_ONLY=1 runs only this part. Last, the ids of a span of a new trace, ours
 * (src/tracing/ids.ts) against the SDK's generator, in alternating rounds.
 */
import { spawn } from 'node:child_process';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  ParentBasedSampler,
  RandomIdGenerator,
  type IdGenerator,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { createTracer, SPAN_BATCH_MAX_BYTES, SPAN_QUEUE_MAX_BYTES } from '../src/tracing';
import { PooledIdGenerator } from '../src/tracing/ids';
import { RequestSpans } from '../src/tracing/otel';
import { EncodingBatchSpanProcessor } from '../src/tracing/span-batches';
import { encodeTraceRequest } from '../src/tracing/otlp-encode';
import type { TokenUsage } from '../src/translate/types';
import { collectingSpanProcessor } from '../test/support/collect-spans';

const JSON_ANSWER = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-123',
    object: 'chat.completion',
    model: 'gpt-4o-2024-08-06',
    choices: [
      { index: 0, message: { role: 'assistant', content: 'Hello! How can I help? '.repeat(8) }, finish_reason: 'stop' },
    ],
    usage: { prompt_tokens: 352, completion_tokens: 72, total_tokens: 424 },
  }),
);
const SSE_CHUNK = Buffer.from(
  `data: ${JSON.stringify({
    id: 'chatcmpl-123',
    object: 'chat.completion.chunk',
    model: 'gpt-4o',
    choices: [{ index: 0, delta: { content: 'token ' }, finish_reason: null }],
  })}\n\n`,
);
const USAGE: TokenUsage = { input: 352, output: 72, total: 424, cachedInput: 0, reasoning: 0 };
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

async function spanPath(): Promise<void> {
  const sink = spawn(
    process.execPath,
    [
      '-e',
      "const s = require('node:http').createServer((q, r) => { q.resume(); q.on('end', () => " +
        "r.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()); });" +
        "s.listen(0, '127.0.0.1', () => console.log(s.address().port));",
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<string>((resolve) =>
    sink.stdout.once('data', (data: Buffer) => resolve(data.toString().trim())),
  );
  const tracer = createTracer({
    endpoint: `http://127.0.0.1:${port}/v1/traces`,
    serviceName: 'bench',
    samplingRatio: 1,
    contentMaxBytes: 0,
  });
  const count = Number(process.env.BENCH_SPANS ?? 200_000);
  const traceparent = process.env.BENCH_TRACEPARENT ? TRACEPARENT : undefined;
  const chunks = process.env.BENCH_SSE ? Array.from({ length: 50 }, () => SSE_CHUNK) : [JSON_ANSWER];
  const one = (): void => {
    const span = tracer.start(traceparent, undefined);
    span.routed({
      api: 'OpenAI',
      operation: 'chat',
      requestModel: 'gpt-4o',
      upstreamModel: 'gpt-4o',
      modelRule: 'gpt-4o',
      route: 'default/chat',
      backend: 'openai',
      backendSchema: 'OpenAI',
      consumer: 'acme',
      stream: chunks.length > 1,
    });
    span.responseStatus(200);
    for (const chunk of chunks) span.responseBytes(chunk);
    span.end({ usage: USAGE });
  };
  await cpuPerCall(one, 10_000);
  const perSpan = await cpuPerCall(one, count);
  await tracer.shutdown(10_000);
  console.log(`${perSpan.toFixed(2)} µs of CPU per span (${count} spans, ${chunks.length} response chunk(s) each)`);
  sink.kill();
}

/**
 * CPU µs per call of `one` over `calls` calls, in batches of 500 with a turn of the event loop between them, as a busy
 * server runs: exports happen in between.
 */
async function cpuPerCall(one: () => void, calls: number): Promise<number> {
  const before = process.cpuUsage();
  for (let done = 0; done < calls;) {
    for (let i = 0; i < 500 && done < calls; i++, done++) one();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / calls;
}

const SMALL_REQUEST_ATTRIBUTES: Attributes = {
  'gen_ai.operation.name': 'chat',
  'gen_ai.provider.name': 'openai',
  'gen_ai.request.model': 'gpt-4o',
  'ai_gateway.route': 'default/chat',
  'ai_gateway.backend': 'openai',
  'ai_gateway.consumer': 'acme',
  'http.response.status_code': 200,
  'gen_ai.usage.input_tokens': 352,
  'gen_ai.usage.output_tokens': 72,
  'gen_ai.response.model': 'gpt-4o-2024-08-06',
  'gen_ai.response.finish_reasons': ['stop'],
};

/** A batch of the spans a small request makes (the attributes the processor sets for one), as the SDK ends them. */
function smallRequestSpans(count: number): ReadableSpan[] {
  const spans: ReadableSpan[] = [];
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'ai-gateway-processor' }),
    spanProcessors: [collectingSpanProcessor(spans)],
  });
  const tracer = provider.getTracer('ai-gateway-processor');
  for (let i = 0; i < count; i++) {
    const span = tracer.startSpan('chat gpt-4o', { kind: SpanKind.CLIENT });
    span.setAttributes(SMALL_REQUEST_ATTRIBUTES);
    span.end();
  }
  return spans;
}

type Encode = (spans: ReadableSpan[]) => Uint8Array | undefined;

/** Ours against the maintained serializer (the one the installed OTLP transport depends on), alternating. */
function serializers(): void {
  const maintained: { serializeRequest: Encode } = ProtobufTraceSerializer;
  const batch = smallRequestSpans(512);
  const theirs = Buffer.from(maintained.serializeRequest(batch) ?? []);
  const ours = Buffer.from(encodeTraceRequest(batch));
  if (!ours.equals(theirs)) throw new Error('the two encodings differ');
  const batches = Number(process.env.BENCH_SERIALIZER_BATCHES ?? 200);
  const rounds = Number(process.env.BENCH_SERIALIZER_ROUNDS ?? 15);
  const time = (encode: Encode): number => {
    const before = process.cpuUsage();
    for (let i = 0; i < batches; i++) encode(batch);
    const used = process.cpuUsage(before);
    return (used.user + used.system) / (batches * batch.length);
  };
  const encoders: [string, Encode][] = [
    ['maintained', (spans) => maintained.serializeRequest(spans)],
    ['ours', encodeTraceRequest],
  ];
  for (const [, encode] of encoders) time(encode); // warm up both
  const results = new Map<string, number[]>(encoders.map(([name]) => [name, []]));
  const ratios: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? encoders : [...encoders].reverse();
    const perSpan = new Map(order.map(([name, encode]) => [name, time(encode)]));
    for (const [name, value] of perSpan) results.get(name)?.push(value);
    ratios.push((perSpan.get('ours') ?? 0) / (perSpan.get('maintained') ?? 1));
  }
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  console.log(
    `OTLP encoding of a 512-span batch, ${(ours.length / batch.length).toFixed(0)} bytes per span, ${rounds} rounds:`,
  );
  for (const [name, values] of results) console.log(`  ${name}: ${median(values).toFixed(3)} µs of CPU per span`);
  console.log(`  ours / maintained: ${median(ratios).toFixed(3)} (median of per-round ratios)`);
}

/** Our span record against the SDK's span, into the same encoding span processor (exports discarded). */
async function spanRecords(): Promise<void> {
  const processor = () =>
    new EncodingBatchSpanProcessor(
      { export: (_batch, done) => done({ code: 0 }), shutdown: () => Promise.resolve() },
      {
        maxQueueSize: 2048,
        maxExportBatchSize: 512,
        maxExportBatchBytes: SPAN_BATCH_MAX_BYTES,
        maxQueueBytes: SPAN_QUEUE_MAX_BYTES,
        scheduledDelayMillis: 2000,
        exportTimeoutMillis: 10_000,
      },
    );
  const resource = resourceFromAttributes({ 'service.name': 'bench' });
  const sampler = () => new ParentBasedSampler({ root: new AlwaysOnSampler() });
  const sdkProcessor = processor();
  const tracer = new BasicTracerProvider({ resource, sampler: sampler(), spanProcessors: [sdkProcessor] }).getTracer(
    'ai-gateway-processor',
  );
  const oursProcessor = processor();
  const ours = new RequestSpans({
    resource,
    sampler: sampler(),
    idGenerator: new RandomIdGenerator(),
    ended: (span) => oursProcessor.onEnd(span),
  });
  const now = () => performance.timeOrigin + performance.now();
  const paths: [string, () => void][] = [
    [
      'SDK span',
      () => {
        const span = tracer.startSpan('chat gpt-4o', { kind: SpanKind.CLIENT, startTime: now() }, ROOT_CONTEXT);
        span.setAttributes(SMALL_REQUEST_ATTRIBUTES);
        span.end();
      },
    ],
    [
      'ours',
      () => {
        const span = ours.start('chat gpt-4o', ROOT_CONTEXT, now());
        if (span) ours.end(span, now(), SMALL_REQUEST_ATTRIBUTES, { code: SpanStatusCode.UNSET });
      },
    ],
  ];
  const spans = Number(process.env.BENCH_RECORD_SPANS ?? 20_000);
  const rounds = Number(process.env.BENCH_RECORD_ROUNDS ?? 15);
  const time = (one: () => void): Promise<number> => cpuPerCall(one, spans);
  for (const [, one] of paths) await time(one); // warm up both
  const results = new Map<string, number[]>(paths.map(([name]) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, one] of round % 2 === 0 ? paths : [...paths].reverse()) results.get(name)?.push(await time(one));
  }
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  console.log(`A small request's span started, given its attributes, ended and encoded, ${rounds} rounds:`);
  for (const [name, values] of results) console.log(`  ${name}: ${median(values).toFixed(3)} µs of CPU per span`);
  await Promise.all([sdkProcessor.shutdown(), oursProcessor.shutdown()]);
}

/** A new trace's ids (a trace id and a span id), ours against the SDK's generator, in alternating rounds. */
function idGenerators(): void {
  const generators: [string, IdGenerator][] = [
    ['SDK RandomIdGenerator', new RandomIdGenerator()],
    ['ours', new PooledIdGenerator()],
  ];
  const count = 200_000;
  const time = (ids: IdGenerator): number => {
    const before = process.cpuUsage();
    let digits = 0;
    for (let i = 0; i < count; i++) digits += ids.generateTraceId().length + ids.generateSpanId().length;
    const used = process.cpuUsage(before);
    if (digits !== count * 48) throw new Error('ids of the wrong length');
    return ((used.user + used.system) / count) * 1000;
  };
  for (const [, ids] of generators) time(ids);
  const results = new Map<string, number[]>(generators.map(([name]) => [name, []]));
  for (let round = 0; round < 11; round++) {
    for (const [name, ids] of round % 2 === 0 ? generators : [...generators].reverse())
      results.get(name)?.push(time(ids));
  }
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  console.log('Ids of a span of a new trace, 11 rounds:');
  for (const [name, values] of results) console.log(`  ${name}: ${median(values).toFixed(0)} ns of CPU per span`);
}

async function main(): Promise<void> {
  if (process.env.BENCH_RECORD_ONLY) return spanRecords();
  if (!process.env.BENCH_SERIALIZER_ONLY) await spanPath();
  serializers();
  if (!process.env.BENCH_SERIALIZER_ONLY) await spanRecords();
  if (!process.env.BENCH_SERIALIZER_ONLY) idGenerators();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
