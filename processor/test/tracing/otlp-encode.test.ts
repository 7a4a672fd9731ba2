/**
 * Our OTLP encoder against the maintained one: for spans made by the SDK (every attribute type the processor sets and
 * more, parents local and remote, trace state, status codes, long and non-ASCII strings, empty values, large and
 * negative integers, events, links, several resources and scopes in one batch) and for hand-made spans with the
 * values the SDK's own validation does not let through (bytes, maps, dropped counts), both must produce the very
 * same bytes. The maintained serializer is the one the OTLP transport of this version ships with.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
  type Attributes,
  type Link,
} from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { encodeTraceRequest, SpanBatchWriter } from '../../src/tracing/otlp-encode';
import { collectingSpanProcessor } from '../support/collect-spans';

/** The maintained OTLP protobuf serializer (what the SDK's exporter sends), the reference for ours. */
const maintained = ProtobufTraceSerializer;

function expectSameBytes(spans: ReadableSpan[]): void {
  const theirs = Buffer.from(maintained.serializeRequest(spans) ?? new Uint8Array());
  const ours = Buffer.from(encodeTraceRequest(spans));
  expect(ours.toString('hex')).toBe(theirs.toString('hex'));
}

/** Spans of a provider, collected as the batch processor would hand them to the exporter. */
function recorder(serviceName: string, extra: Attributes = {}) {
  const spans: ReadableSpan[] = [];
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName, ...extra }),
    spanProcessors: [collectingSpanProcessor(spans)],
  });
  return { provider, spans };
}

const LONG_ASCII = 'x'.repeat(200);
const LONG_UNICODE = 'héllo wörld ✓ 日本語 🚀 '.repeat(40);
const HUGE = 'a'.repeat(20_000) + 'ü'.repeat(5_000);

/** Every value type an attribute can have, and the edges of each. */
const ALL_TYPES: Attributes = {
  'gen_ai.operation.name': 'chat',
  'gen_ai.request.model': 'gpt-4o',
  'ai_gateway.route': 'default/chat',
  'gen_ai.request.stream': true,
  'ai_gateway.request.body_truncated': false,
  'http.response.status_code': 200,
  'gen_ai.usage.input_tokens': 0,
  'gen_ai.usage.output_tokens': 127,
  'big.varint': 128,
  'int.2_31': 2 ** 31,
  'int.2_32': 2 ** 32,
  'int.2_40_plus': 2 ** 40 + 12345,
  'int.max_safe': Number.MAX_SAFE_INTEGER,
  'int.2_62': 2 ** 62,
  'int.negative': -1,
  'int.negative_large': -(2 ** 40) - 7,
  'int.min_int64': -(2 ** 63),
  'double.beyond_int64': 2 ** 64,
  'double.fraction': 1.5,
  'double.negative': -0.25,
  'double.nan': NaN,
  'double.infinity': Infinity,
  'gen_ai.response.finish_reasons': ['stop', 'length'],
  'array.numbers': [1, 2.5, -3],
  'array.booleans': [true, false],
  'array.with_null': ['a', null, 'b'],
  'array.empty': [],
  'string.empty': '',
  'string.long_ascii': LONG_ASCII,
  'string.unicode_short': 'é',
  'string.unicode_long': LONG_UNICODE,
  'string.huge': HUGE,
  'ключ.юникод': 'значение',
};

describe('encodeTraceRequest', () => {
  it('writes the same bytes as the maintained serializer for SDK spans of every kind', () => {
    const { provider, spans } = recorder('ai-gateway-processor', { 'service.version': '1.2.3' });
    const tracer = provider.getTracer('ai-gateway-processor');
    const scoped = provider.getTracer('other-scope', '0.1.0', { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' });

    tracer.startSpan('chat gpt-4o', { kind: SpanKind.CLIENT, attributes: ALL_TYPES }).end();
    tracer.startSpan('', { kind: SpanKind.INTERNAL }).end();

    const remote = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
      traceState: new TraceState('vendor=value,other=x'),
    });
    const child = tracer.startSpan('chat 日本語 🚀', { kind: SpanKind.CLIENT }, remote);
    child.setAttributes({ 'gen_ai.usage.input_tokens': 352, 'error.type': '500' });
    child.setStatus({ code: SpanStatusCode.ERROR, message: '500' });
    child.end();

    const local = tracer.startSpan('parent', { kind: SpanKind.SERVER });
    const grandchild = tracer.startSpan('local child', {}, trace.setSpan(ROOT_CONTEXT, local));
    grandchild.setStatus({ code: SpanStatusCode.OK });
    grandchild.addEvent('an event', { 'event.attr': 'v', n: 3 });
    grandchild.addEvent('no attributes');
    grandchild.end();
    local.setStatus({ code: SpanStatusCode.ERROR });
    local.end();

    const links: Link[] = [
      { context: local.spanContext() },
      {
        context: {
          traceId: 'ABCDEF0123456789abcdef0123456789',
          spanId: '0123456789ABCDEF',
          traceFlags: TraceFlags.NONE,
          isRemote: true,
          traceState: new TraceState('k=v'),
        },
        attributes: { 'link.attr': LONG_UNICODE },
      },
    ];
    scoped.startSpan('linked', { kind: SpanKind.PRODUCER, links }).end();
    scoped.startSpan('consumer', { kind: SpanKind.CONSUMER, attributes: { long: LONG_ASCII } }).end();

    // A second provider (another resource) in the same batch, and a third with an empty resource.
    const other = recorder('second-service');
    other.provider.getTracer('ai-gateway-processor').startSpan('second').end();
    const empty = new BasicTracerProvider({
      resource: resourceFromAttributes({}),
      spanProcessors: [collectingSpanProcessor(spans)],
    });
    empty.getTracer('').startSpan('no resource').end();

    const batch = [...spans.slice(0, 3), ...other.spans, ...spans.slice(3)];
    expect(batch.length).toBe(9);
    expectSameBytes(batch);
    for (const span of batch) expectSameBytes([span]);
    expectSameBytes([]);
  });

  it('grows its buffer for a batch larger than its first guess', () => {
    const { provider, spans } = recorder('big');
    const tracer = provider.getTracer('ai-gateway-processor');
    for (let i = 0; i < 40; i++) {
      tracer.startSpan(`span ${i}`, { attributes: { 'ai_gateway.response.body': i % 2 ? HUGE : LONG_UNICODE } }).end();
    }
    expectSameBytes(spans);
    expect(encodeTraceRequest(spans).length).toBeGreaterThan(40 * 640);
  });

  it('writes the same bytes for values the SDK does not validate away (bytes, maps, dropped counts)', () => {
    const { provider, spans } = recorder('hand-made');
    provider.getTracer('ai-gateway-processor').startSpan('base').end();
    const base = spans[0];
    const attributes = {
      bytes: new Uint8Array([0, 1, 2, 255]),
      map: { nested: 'yes', count: 2, deeper: { list: ['x', 1] } },
      nothing: undefined,
      none: null,
    } as unknown as Attributes;
    const made: ReadableSpan = {
      name: base.name,
      kind: base.kind,
      spanContext: () => ({ ...base.spanContext(), traceFlags: 0xff }),
      parentSpanContext: { traceId: base.spanContext().traceId, spanId: 'ffffffffffffffff', traceFlags: 0 },
      startTime: [0, 0],
      endTime: [18_000_000_000, 999_999_999],
      status: { code: SpanStatusCode.UNSET, message: '' },
      attributes,
      links: [],
      events: [{ name: 'e', time: [1_700_000_000, 123_456_789], attributes, droppedAttributesCount: 3 }],
      duration: [1, 0],
      ended: true,
      resource: base.resource,
      instrumentationScope: { name: 'hand', version: '', schemaUrl: '' },
      droppedAttributesCount: 300,
      droppedEventsCount: 2,
      droppedLinksCount: 1,
    };
    expectSameBytes([made, base]);
  });
});

describe('SpanBatchWriter', () => {
  it('writes the request of the spans added, last added first, as both encoders write it', () => {
    const spans: ReadableSpan[] = [];
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes(
        { 'service.name': 'batched', 'service.version': '1.2.3' },
        { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' },
      ),
      spanProcessors: [collectingSpanProcessor(spans)],
    });
    const tracer = provider.getTracer('scope', '0.1.0', { schemaUrl: 'https://opentelemetry.io/schemas/1.31.0' });
    for (let i = 0; i < 100; i++)
      tracer.startSpan(`span ${i}`, { kind: SpanKind.CLIENT, attributes: { ...ALL_TYPES, i } }).end();
    // Room for two spans at first: the buffer grows many times over.
    const batch = new SpanBatchWriter(spans[0].resource, spans[0].instrumentationScope, 2);
    for (const span of spans) batch.add(span);
    expect(batch.count).toBe(100);
    const reversed = [...spans].reverse();
    const body = Buffer.from(batch.finish()).toString('hex');
    expect(body).toBe(Buffer.from(encodeTraceRequest(reversed)).toString('hex'));
    expect(body).toBe(Buffer.from(maintained.serializeRequest(reversed) ?? new Uint8Array()).toString('hex'));
    expect(() => batch.add(spans[0])).toThrow('span batch already finished');
  });

  it('leaves nothing of a span it cannot encode', () => {
    const { provider, spans } = recorder('broken');
    const tracer = provider.getTracer('ai-gateway-processor');
    tracer.startSpan('before', { attributes: { a: LONG_UNICODE } }).end();
    tracer.startSpan('after', { attributes: { b: 1 } }).end();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    // Its other attributes are written before the cyclic one is reached (attributes are written last to first).
    const broken = { ...spans[0], spanContext: spans[0].spanContext, attributes: { x: cyclic, y: HUGE } };
    const batch = new SpanBatchWriter(spans[0].resource, spans[0].instrumentationScope, 1);
    batch.add(spans[0]);
    expect(() => batch.add(broken as unknown as ReadableSpan)).toThrow();
    batch.add(spans[1]);
    expect(batch.count).toBe(2);
    expect(Buffer.from(batch.finish()).toString('hex')).toBe(
      Buffer.from(encodeTraceRequest([spans[1], spans[0]])).toString('hex'),
    );
  });
});
