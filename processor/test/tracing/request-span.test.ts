/**
 * Our request span record against the SDK's span: for the same parent context, sampler, ids, times, attributes and
 * status, `RequestSpans` must hand the span processor a span that the maintained OTLP serializer (and our encoder)
 * writes to the very same bytes as the span the SDK's tracer ends, and sample exactly the spans the SDK samples.
 */
import {
  defaultTextMapGetter,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
  type Attributes,
  type Context,
  type SpanStatus,
} from '@opentelemetry/api';
import { TraceState, W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type IdGenerator,
  type ReadableSpan,
  type Sampler,
} from '@opentelemetry/sdk-trace-base';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { encodeTraceRequest } from '../../src/tracing/otlp-encode';
import { RequestSpans } from '../../src/tracing/otel';
import { collectingSpanProcessor } from '../support/collect-spans';

/** The maintained OTLP protobuf serializer (what the SDK's exporter sends), the reference for ours. */
const maintained = ProtobufTraceSerializer;

/** Ids from a list, the same sequence for both tracers. */
function ids(traceIds: string[], spanIds: string[]): IdGenerator {
  let t = 0;
  let s = 0;
  return {
    generateTraceId: () => traceIds[t++ % traceIds.length],
    generateSpanId: () => spanIds[s++ % spanIds.length],
  };
}

const TRACE_IDS = [
  '0af7651916cd43dd8448eb211c80319c',
  'ffffffffffffffffffffffffffffffff',
  '00000000000000000000000000000001',
];
const SPAN_IDS = ['b7ad6b7169203331', '00000000000000ff', 'ffffffffffffffff'];

interface SpanInput {
  name: string;
  parent: Context;
  startMs: number;
  endMs: number;
  attributes: Attributes;
  status?: SpanStatus;
}

/** The spans each side hands its span processor, for the same inputs in the same order. */
function bothSides(sampler: () => Sampler, inputs: SpanInput[]): { sdk: ReadableSpan[]; ours: ReadableSpan[] } {
  const resource = resourceFromAttributes({ 'service.name': 'ai-gateway-processor' });
  const sdk: ReadableSpan[] = [];
  const provider = new BasicTracerProvider({
    resource,
    sampler: sampler(),
    idGenerator: ids(TRACE_IDS, SPAN_IDS),
    spanProcessors: [collectingSpanProcessor(sdk)],
  });
  const tracer = provider.getTracer('ai-gateway-processor');
  const ours: ReadableSpan[] = [];
  const spans = new RequestSpans({
    resource,
    sampler: sampler(),
    idGenerator: ids(TRACE_IDS, SPAN_IDS),
    ended: (span) => ours.push(span),
  });
  for (const input of inputs) {
    const span = tracer.startSpan(input.name, { kind: SpanKind.CLIENT, startTime: input.startMs }, input.parent);
    span.setAttributes(input.attributes);
    if (input.status) span.setStatus(input.status);
    span.end(input.endMs);
    const started = spans.start(input.name, input.parent, input.startMs);
    if (started) spans.end(started, input.endMs, input.attributes, input.status ?? { code: SpanStatusCode.UNSET });
  }
  return { sdk, ours };
}

function hex(bytes: Uint8Array | undefined): string {
  return Buffer.from(bytes ?? new Uint8Array()).toString('hex');
}

function expectSameSpans(side: { sdk: ReadableSpan[]; ours: ReadableSpan[] }, count: number): void {
  expect(side.ours).toHaveLength(count);
  expect(side.sdk).toHaveLength(count);
  const theirs = hex(maintained.serializeRequest(side.sdk));
  expect(hex(maintained.serializeRequest(side.ours))).toBe(theirs);
  expect(hex(encodeTraceRequest(side.ours))).toBe(theirs);
}

const remoteParent = (traceFlags: TraceFlags, traceState?: TraceState): Context =>
  trace.setSpanContext(ROOT_CONTEXT, {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags,
    isRemote: true,
    traceState,
  });

/** Epoch milliseconds with a fraction (not exact in a double: both sides round the same value). */
const START = 1_765_000_000_123 + 0.4567;

const REQUEST_ATTRIBUTES: Attributes = {
  'gen_ai.operation.name': 'chat',
  'gen_ai.provider.name': 'openai',
  'gen_ai.request.model': 'gpt-4o',
  'ai_gateway.route': 'default/chat',
  'ai_gateway.backend': 'openai',
  'gen_ai.request.stream': true,
  'ai_gateway.consumer': 'acme',
  'http.response.status_code': 200,
  'gen_ai.usage.input_tokens': 352,
  'gen_ai.usage.output_tokens': 72,
  'gen_ai.response.model': 'gpt-4o-2024-08-06',
  'gen_ai.response.finish_reasons': ['stop', 'length'],
  'ai_gateway.response.body': 'héllo wörld ✓ 日本語 🚀',
};

const alwaysOn = () => new ParentBasedSampler({ root: new AlwaysOnSampler() });

describe('RequestSpans', () => {
  it('ends spans the SDK would export byte for byte: new traces, remote parents, trace state, error status', () => {
    const inputs: SpanInput[] = [
      {
        name: 'chat gpt-4o',
        parent: ROOT_CONTEXT,
        startMs: START,
        endMs: START + 12.3456789,
        attributes: REQUEST_ATTRIBUTES,
      },
      {
        name: 'chat gpt-4o',
        parent: remoteParent(TraceFlags.SAMPLED, new TraceState('vendor=value,other=x')),
        startMs: START + 0.000001,
        endMs: START + 1000.999999,
        attributes: { 'gen_ai.request.model': 'gpt-4o', 'error.type': '502', 'http.response.status_code': 502 },
        status: { code: SpanStatusCode.ERROR, message: '502' },
      },
      {
        name: 'ai_gateway.request',
        parent: remoteParent(TraceFlags.SAMPLED),
        startMs: 1_765_000_000_999 + 0.9999,
        endMs: 1_765_000_001_000 + 0.0001,
        attributes: {},
      },
      { name: '', parent: ROOT_CONTEXT, startMs: START, endMs: START, attributes: { 'string.empty': '' } },
    ];
    expectSameSpans(bothSides(alwaysOn, inputs), inputs.length);
  });

  it('continues what the W3C propagator reads from a traceparent as the SDK does, valid or not', () => {
    const propagator = new W3CTraceContextPropagator();
    const parent = (traceparent: string): Context =>
      propagator.extract(ROOT_CONTEXT, { traceparent }, defaultTextMapGetter);
    const inputs: SpanInput[] = [
      // An all-zero trace id, an all-zero parent id, and no traceparent at all: new traces.
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      'not a traceparent',
      // Flag bits besides "sampled": a sampled parent.
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03',
    ].map((traceparent) => ({
      name: 'chat m',
      parent: parent(traceparent),
      startMs: START,
      endMs: START + 1,
      attributes: { 'gen_ai.request.model': 'm' },
    }));
    const sides = bothSides(alwaysOn, inputs);
    expectSameSpans(sides, 4);
    expect(sides.ours.map((span) => span.parentSpanContext?.spanId)).toEqual([
      undefined,
      undefined,
      undefined,
      '00f067aa0ba902b7',
    ]);
  });

  it('samples exactly what the SDK samples: unsampled parents, and ratios by trace id', () => {
    const span = (parent: Context): SpanInput => ({
      name: 'chat m',
      parent,
      startMs: START,
      endMs: START + 5,
      attributes: { 'gen_ai.request.model': 'm' },
    });
    const unsampledParent = bothSides(alwaysOn, [span(remoteParent(TraceFlags.NONE)), span(ROOT_CONTEXT)]);
    expectSameSpans(unsampledParent, 1);
    // Three new traces at a ratio of one half: the ratio sampler keeps some of these ids and not others.
    const ratio = () => new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0.5) });
    const byRatio = bothSides(ratio, [span(ROOT_CONTEXT), span(ROOT_CONTEXT), span(ROOT_CONTEXT)]);
    expect(byRatio.ours.length).toBeGreaterThan(0);
    expect(byRatio.ours.length).toBeLessThan(3);
    expectSameSpans(byRatio, byRatio.sdk.length);
  });

  it("takes the sampler's trace state and attributes as the SDK does", () => {
    const sampler = (): Sampler => ({
      shouldSample: () => ({
        decision: SamplingDecision.RECORD_AND_SAMPLED,
        attributes: { 'sampler.rule': 'all', 'gen_ai.request.model': 'replaced' },
        traceState: new TraceState('sampler=yes'),
      }),
      toString: () => 'test',
    });
    const inputs: SpanInput[] = [
      {
        name: 'chat m',
        parent: ROOT_CONTEXT,
        startMs: START,
        endMs: START + 1,
        attributes: { 'gen_ai.request.model': 'm', n: 1 },
      },
    ];
    expectSameSpans(bothSides(sampler, inputs), 1);
  });
});
